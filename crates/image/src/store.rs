//! The image store on disk, under `DATA_DIR/images`:
//!
//! ```text
//! blobs/sha256/HEX       configs (verified), content-addressed
//! layers/HEX/            a layer unpacked once, named by its blob digest, shared read-only
//! layers/HEX.json        what is known of that layer (diff ID, sizes)
//! locks/store.lock       flock on the whole store: shared by every pull until its record
//!                        is written, exclusive for prune and for removing crash leftovers
//! locks/HEX.lock         flock per blob: exclusive while one puller fetches it, shared
//!                        while an instance runs on the layer (a lease)
//! records/KEY.json       one image: reference -> manifest digest -> config and layer chain
//! ```
//!
//! No lock is ever held while waiting for another, so pulls cannot deadlock whatever their
//! layers' order. Every write lands under a temporary name and is renamed into place, and a
//! layer's metadata is written only once its directory is complete, so a crash never leaves
//! a partial layer that is later used. Locks are `flock`s: they die with their process.
//! Lock files themselves stay (empty, one per digest ever fetched): removing one safely
//! while another process may be opening it is not worth its complexity.

use std::collections::BTreeSet;
use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{ImageError, IoContext};
use crate::manifest::digest_of;

/// One layer of an image, bottom first in a record.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LayerRecord {
    /// Digest of the blob as distributed (compressed).
    pub digest: String,
    /// Digest of the uncompressed tar.
    pub diff_id: String,
    /// Bytes of the blob as distributed.
    pub size: u64,
}

/// A pulled image.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageRecord {
    /// The source as the user named it, normalised (`docker.io/library/busybox:latest`,
    /// `oci:/path:tag`).
    pub reference: String,
    /// Digest of the image manifest (for an index: of the linux/amd64 entry).
    pub manifest_digest: String,
    /// Digest of the index or list the reference resolved to first, if any.
    pub index_digest: Option<String>,
    pub config_digest: String,
    pub layers: Vec<LayerRecord>,
    /// Seconds since the epoch.
    pub pulled_at: u64,
}

impl ImageRecord {
    /// Bytes of all layers as distributed.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}

/// The store's directory tree.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

fn hex_of(digest: &str) -> Result<&str, ImageError> {
    crate::reference::validate_digest(digest)
        .map_err(|e| ImageError::Invalid(format!("digest {digest:?}: {e}")))?;
    Ok(digest.trim_start_matches("sha256:"))
}

/// A name no other writer uses: process, a per-process counter and the time.
fn unique_suffix() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{n}-{nanos}", std::process::id())
}

/// Writes `bytes` to `path` durably: a fresh temporary sibling, fsync, rename. The
/// temporary file is removed on failure.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    use std::io::Write;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!("{file_name}.tmp-{}", unique_suffix()));
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e).context(|| format!("writing {}", path.display()));
    }
    Ok(())
}

impl Store {
    /// Opens (creating) the store under `data_dir/images`, and removes what interrupted
    /// pulls left, where no live process still holds the layer.
    pub fn open(data_dir: &Path) -> Result<Self, ImageError> {
        let root = data_dir.join("images");
        for dir in ["blobs/sha256", "layers", "locks", "records"] {
            fs::create_dir_all(root.join(dir))
                .context(|| format!("creating {}", root.join(dir).display()))?;
        }
        let store = Self { root };
        store.remove_crash_leftovers();
        Ok(store)
    }

    /// The store-wide lock: shared by pulls, exclusive for prune.
    pub(crate) fn lock_store(&self, mode: LockMode) -> Result<LayerLock, ImageError> {
        LayerLock::acquire(&self.root.join("locks/store.lock"), mode)
    }

    fn try_lock_store(&self) -> Result<Option<LayerLock>, ImageError> {
        LayerLock::try_exclusive(&self.root.join("locks/store.lock"))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn layer_dir(&self, digest: &str) -> Result<PathBuf, ImageError> {
        Ok(self.root.join("layers").join(hex_of(digest)?))
    }

    fn layer_meta(&self, digest: &str) -> Result<PathBuf, ImageError> {
        Ok(self
            .root
            .join("layers")
            .join(format!("{}.json", hex_of(digest)?)))
    }

    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, ImageError> {
        Ok(self.root.join("blobs/sha256").join(hex_of(digest)?))
    }

    fn record_path(&self, reference: &str) -> PathBuf {
        let key = digest_of(reference.as_bytes());
        self.root
            .join("records")
            .join(format!("{}.json", key.trim_start_matches("sha256:")))
    }

    /// Stores a small verified blob (a config) by its digest.
    pub fn put_blob(&self, digest: &str, bytes: &[u8]) -> Result<PathBuf, ImageError> {
        let actual = digest_of(bytes);
        if actual != digest {
            return Err(ImageError::DigestMismatch {
                what: "config blob".into(),
                expected: digest.into(),
                actual,
            });
        }
        let path = self.blob_path(digest)?;
        if !path.exists() {
            write_atomically(&path, bytes)?;
        }
        Ok(path)
    }

    pub fn read_blob(&self, digest: &str) -> Result<Option<Vec<u8>>, ImageError> {
        let path = self.blob_path(digest)?;
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).context(|| format!("reading {}", path.display())),
        }
    }

    pub fn has_layer(&self, digest: &str) -> Result<bool, ImageError> {
        Ok(self.layer_dir(digest)?.is_dir() && self.layer_meta(digest)?.is_file())
    }

    pub fn layer_info(&self, digest: &str) -> Result<Option<LayerRecord>, ImageError> {
        read_json(&self.layer_meta(digest)?)
    }

    /// Records what a layer is; written only after its directory is in place, so metadata
    /// always means a complete layer.
    pub(crate) fn put_layer_info(&self, info: &LayerRecord) -> Result<(), ImageError> {
        let bytes = serde_json::to_vec_pretty(info)
            .map_err(|e| ImageError::Invalid(format!("layer metadata: {e}")))?;
        write_atomically(&self.layer_meta(&info.digest)?, &bytes)
    }

    /// A temporary sibling for unpacking `digest` before it is verified.
    pub(crate) fn unverified_layer_dir(&self, digest: &str) -> Result<PathBuf, ImageError> {
        let hex = hex_of(digest)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        Ok(self
            .root
            .join("layers")
            .join(format!("{hex}.unverified-{}-{nanos}", std::process::id())))
    }

    /// Removes a layer's directory and metadata. The caller holds its exclusive lock.
    /// Metadata goes first: without it the layer is not present, whatever remains.
    pub(crate) fn delete_layer(&self, digest: &str) -> Result<(), ImageError> {
        let dir = self.layer_dir(digest)?;
        let meta = self.layer_meta(digest)?;
        match fs::remove_file(&meta) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).context(|| format!("removing {}", meta.display())),
        }
        remove_tree(&dir)
    }

    pub fn lock_layer(&self, digest: &str, mode: LockMode) -> Result<LayerLock, ImageError> {
        let path = self
            .root
            .join("locks")
            .join(format!("{}.lock", hex_of(digest)?));
        LayerLock::acquire(&path, mode)
    }

    pub fn try_lock_layer(&self, digest: &str) -> Result<Option<LayerLock>, ImageError> {
        let path = self
            .root
            .join("locks")
            .join(format!("{}.lock", hex_of(digest)?));
        LayerLock::try_exclusive(&path)
    }

    pub fn put_record(&self, record: &ImageRecord) -> Result<(), ImageError> {
        let bytes = serde_json::to_vec_pretty(record)
            .map_err(|e| ImageError::Invalid(format!("image record: {e}")))?;
        write_atomically(&self.record_path(&record.reference), &bytes)
    }

    pub fn get(&self, reference: &str) -> Result<Option<ImageRecord>, ImageError> {
        read_json(&self.record_path(reference))
    }

    /// Every image record, sorted by reference.
    pub fn list(&self) -> Result<Vec<ImageRecord>, ImageError> {
        let dir = self.root.join("records");
        let mut records = Vec::new();
        for path in dir_entries(&dir)? {
            if path.extension().is_some_and(|e| e == "json") {
                // A record that vanished since the listing (removed meanwhile) is skipped.
                records.extend(read_json::<ImageRecord>(&path)?);
            }
        }
        records.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(records)
    }

    /// Forgets an image. Its layers stay until `prune`.
    pub fn remove(&self, reference: &str) -> Result<ImageRecord, ImageError> {
        let record = self
            .get(reference)?
            .ok_or_else(|| ImageError::NotFound(reference.to_string()))?;
        let path = self.record_path(reference);
        fs::remove_file(&path).context(|| format!("removing {}", path.display()))?;
        Ok(record)
    }

    /// Layer directories of `record`, bottom first (overlayfs wants them top first). A
    /// layer listed twice (old images repeat the empty layer) is kept at its topmost place:
    /// overlayfs takes each lower directory once.
    pub fn layer_dirs(&self, record: &ImageRecord) -> Result<Vec<PathBuf>, ImageError> {
        let mut seen = BTreeSet::new();
        let mut dirs: Vec<PathBuf> = Vec::new();
        for layer in record.layers.iter().rev() {
            if seen.insert(layer.digest.as_str()) {
                dirs.push(self.layer_dir(&layer.digest)?);
            }
        }
        dirs.reverse();
        Ok(dirs)
    }

    /// Holds every layer of `record` for as long as the lease lives: `prune` never removes
    /// a leased layer. The runtime takes one per running instance.
    pub fn lease(&self, record: &ImageRecord) -> Result<Lease, ImageError> {
        let mut locks = Vec::new();
        for layer in &record.layers {
            let lock = self.lock_layer(&layer.digest, LockMode::Shared)?;
            if !self.has_layer(&layer.digest)? {
                return Err(ImageError::Invalid(format!(
                    "layer {} of {} is not in the store; pull the image again",
                    layer.digest, record.reference
                )));
            }
            locks.push(lock);
        }
        Ok(Lease { _locks: locks })
    }

    /// Removes layers and configs that no image record references and no lease holds.
    /// Waits for pulls in progress to finish first.
    pub fn prune(&self) -> Result<PruneReport, ImageError> {
        let _store = self.lock_store(LockMode::Exclusive)?;
        let mut report = PruneReport::default();
        let referenced = self.referenced_layers()?;
        for digest in self.present_layers()? {
            if referenced.contains(&digest) {
                continue;
            }
            let Some(_lock) = self.try_lock_layer(&digest)? else {
                report.kept_in_use += 1;
                continue;
            };
            report.bytes += self.layer_info(&digest)?.map(|i| i.size).unwrap_or(0);
            self.delete_layer(&digest)?;
            report.layers += 1;
        }
        let configs: BTreeSet<String> = self.list()?.into_iter().map(|r| r.config_digest).collect();
        let blobs = self.root.join("blobs/sha256");
        for path in dir_entries(&blobs)? {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            if let Some(name) = name {
                if !configs.contains(&format!("sha256:{name}")) {
                    fs::remove_file(&path).context(|| format!("removing {}", path.display()))?;
                    report.configs += 1;
                }
            }
        }
        Ok(report)
    }

    fn referenced_layers(&self) -> Result<BTreeSet<String>, ImageError> {
        Ok(self
            .list()?
            .into_iter()
            .flat_map(|r| r.layers.into_iter().map(|l| l.digest))
            .collect())
    }

    /// Digests of the layers on disk (complete ones: directory and metadata).
    pub fn present_layers(&self) -> Result<Vec<String>, ImageError> {
        let dir = self.root.join("layers");
        let mut digests = Vec::new();
        for path in dir_entries(&dir)? {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if let Some(hex) = name.strip_suffix(".json") {
                digests.push(format!("sha256:{hex}"));
            }
        }
        digests.sort();
        Ok(digests)
    }

    /// Removes what crashed pulls left: `*.unverified-*` and `*.partial-*` directories,
    /// `*.tmp-*` files, and layer directories whose metadata was never written. Only when
    /// no other process is pulling (the store lock is free); a failure is logged, never
    /// fatal, so one stubborn leftover cannot make the store unusable.
    fn remove_crash_leftovers(&self) {
        let Ok(Some(_alone)) = self.try_lock_store() else {
            return;
        };
        for sub in ["layers", "records", "blobs/sha256"] {
            let dir = self.root.join(sub);
            let Ok(entries) = dir_entries(&dir) else {
                continue;
            };
            for path in entries {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let leftover = name.contains(".unverified-")
                    || name.contains(".partial-")
                    || name.contains(".tmp-")
                    || (sub == "layers"
                        && path.is_dir()
                        && !name.contains('.')
                        && !dir.join(format!("{name}.json")).exists());
                if !leftover {
                    continue;
                }
                let removed = if path.is_dir() {
                    remove_tree(&path)
                } else {
                    fs::remove_file(&path).context(|| format!("removing {}", path.display()))
                };
                if let Err(e) = removed {
                    tracing::warn!("leaving a crashed pull's leftover: {e}");
                }
            }
        }
    }
}

/// A JSON document from `path`, or None when there is no such file.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, ImageError> {
    match fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| ImageError::Invalid(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).context(|| format!("reading {}", path.display())),
    }
}

/// The paths in `dir`.
fn dir_entries(dir: &Path) -> Result<Vec<PathBuf>, ImageError> {
    fs::read_dir(dir)
        .and_then(|entries| entries.map(|e| e.map(|e| e.path())).collect())
        .context(|| format!("listing {}", dir.display()))
}

fn remove_tree(path: &Path) -> Result<(), ImageError> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).context(|| format!("removing {}", path.display())),
    }
}

/// What `prune` removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    pub layers: u64,
    pub configs: u64,
    /// Distributed bytes of the removed layers.
    pub bytes: u64,
    /// Unreferenced layers kept because an instance holds them.
    pub kept_in_use: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    Shared,
    Exclusive,
}

/// A held `flock` on a layer's lock file; released on drop.
#[derive(Debug)]
pub struct LayerLock {
    _file: fs::File,
}

impl LayerLock {
    fn open(path: &Path) -> Result<fs::File, ImageError> {
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .context(|| format!("opening lock {}", path.display()))
    }

    fn acquire(path: &Path, mode: LockMode) -> Result<Self, ImageError> {
        let file = Self::open(path)?;
        let op = match mode {
            LockMode::Shared => libc::LOCK_SH,
            LockMode::Exclusive => libc::LOCK_EX,
        };
        // SAFETY: the descriptor is valid while `file` lives; flock has no memory effects.
        if unsafe { libc::flock(file.as_raw_fd(), op) } != 0 {
            return Err(std::io::Error::last_os_error())
                .context(|| format!("locking {}", path.display()));
        }
        Ok(Self { _file: file })
    }

    /// Converts a held lock to exclusive without waiting; false when others hold it too.
    pub(crate) fn try_upgrade(&self) -> bool {
        // SAFETY: the descriptor is valid while `self` lives.
        unsafe { libc::flock(self._file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
    }

    fn try_exclusive(path: &Path) -> Result<Option<Self>, ImageError> {
        let file = Self::open(path)?;
        // SAFETY: as above.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Ok(None);
            }
            return Err(err).context(|| format!("locking {}", path.display()));
        }
        Ok(Some(Self { _file: file }))
    }
}

/// Shared locks on every layer of an image, for as long as an instance runs on it.
#[derive(Debug)]
pub struct Lease {
    _locks: Vec<LayerLock>,
}
