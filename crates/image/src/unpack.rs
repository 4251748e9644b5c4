//! Safe, streaming unpacking of one image layer into a directory that becomes an
//! overlayfs lower layer.
//!
//! The layer tar is hostile input. The guarantees, in the order [`unpack_layer`] enforces
//! them:
//!
//! * **Atomic.** Entries land in a fresh sibling directory `<dest>.partial-<random>`, which
//!   is renamed to `dest` (without replacing anything) only once the whole stream was
//!   read and hashed. On any error, or a panic, the partial directory is removed.
//! * **Nothing escapes the layer.** Entry names lose leading `/` and `./` (as Docker and
//!   containerd do) but any `..` component is refused. Every parent directory is resolved
//!   with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` relative to the layer root,
//!   and the final component is then created with an `*at` call that never follows a
//!   symlink. So a symlink stored by the layer is kept as is, and writing through it
//!   works only while it stays inside the layer (`lib -> usr/lib` then `lib/x` lands in
//!   `usr/lib/x`); one that leaves the layer (`evil -> /etc`, `evil -> ../..`) makes the
//!   entry fail with [`UnpackError::Escapes`]. RESOLVE_BENEATH was chosen over
//!   RESOLVE_IN_ROOT because silently re-rooting an absolute symlink would write to a
//!   different place than the image author could see, while a real layer (made from a
//!   file system) never writes through a symlink at all.
//! * **Overlayfs whiteouts.** `DIR/.wh.NAME` becomes the character device 0/0 `DIR/NAME`
//!   and `DIR/.wh..wh..opq` sets `trusted.overlay.opaque=y` on `DIR`. Since those two are
//!   the only way a layer may speak to overlayfs, `trusted.overlay.*` xattrs carried in the
//!   tar are refused.
//! * **No devices, names in UTF-8.** Block and character devices are refused, FIFOs are
//!   kept; a name that is not UTF-8 fails the unpack (Cloud Run refuses such images).
//! * **Metadata kept.** Mode (setuid, setgid and sticky included), numeric owner, mtime
//!   and `SCHILY.xattr.*` PAX xattrs. Directory mtimes are set last, once nothing is
//!   added to them any more. Hard links carry no metadata of their own: they share the
//!   inode of their target.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString, OsStr};
use std::fmt;
use std::fs;
use std::hash::BuildHasher;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// How the layer blob is compressed: the one enum the manifest parser also yields.
pub use crate::manifest::Compression;

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

/// What a successful [`unpack_layer`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackSummary {
    /// `sha256:<hex>` of the uncompressed tar stream: the layer's OCI diff_id.
    pub diff_id: String,
    /// Tar entries processed (PAX global headers not counted).
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer destination {0:?} already exists")]
    DestinationExists(PathBuf),
    #[error("layer destination {0:?} has no parent directory or no file name")]
    InvalidDestination(PathBuf),
    #[error("layer entry name is not UTF-8: \"{0}\"")]
    NonUtf8Name(String),
    #[error("layer entry {path:?} links to a name that is not UTF-8: \"{target}\"")]
    NonUtf8LinkTarget { path: String, target: String },
    #[error("layer entry {path:?} has an empty name")]
    EmptyName { path: String },
    #[error("layer entry {path:?} escapes the layer ({reason})")]
    Escapes { path: String, reason: String },
    #[error("layer entry {path:?} is a {kind} device ({major}:{minor}); devices are not allowed")]
    Device {
        path: String,
        kind: &'static str,
        major: u32,
        minor: u32,
    },
    #[error("layer entry {path:?} is not a valid whiteout: {reason}")]
    InvalidWhiteout { path: String, reason: &'static str },
    #[error("layer entry {path:?} is a hard link to {target:?}, which is not in the layer")]
    HardLinkTargetMissing { path: String, target: String },
    #[error("layer entry {path:?} is a hard link to {target:?}: {reason}")]
    InvalidHardLink {
        path: String,
        target: String,
        reason: &'static str,
    },
    #[error("layer entry {path:?} has unsupported tar entry type {kind}")]
    UnsupportedType { path: String, kind: String },
    #[error("layer entry {path:?} sets the reserved overlayfs xattr {name:?}")]
    ReservedXattr { path: String, name: String },
    #[error("layer entry {path:?} has an invalid header: {reason}")]
    InvalidHeader { path: String, reason: String },
    #[error(
        "layer entry {path:?} is truncated: header says {expected} bytes, stream had {actual}"
    )]
    Truncated {
        path: String,
        expected: u64,
        actual: u64,
    },
    #[error("reading the {compression} layer stream failed: {source}")]
    Stream {
        compression: Compression,
        #[source]
        source: io::Error,
    },
    #[error("reading the layer tar failed: {0}")]
    Tar(#[source] io::Error),
    #[error("{action} {path:?} failed: {source}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
}

/// Unpacks one layer blob, read from `reader` and decompressed per `compression`, into the
/// new directory `dest`, which must not exist yet. See the module docs for the rules.
pub fn unpack_layer(
    reader: impl Read,
    compression: Compression,
    dest: &Path,
) -> Result<UnpackSummary, UnpackError> {
    let stream_error = |source| UnpackError::Stream {
        compression,
        source,
    };
    let decompressed = decompressor(reader, compression).map_err(stream_error)?;
    let staging = Staging::create(dest)?;

    let mut archive = tar::Archive::new(HashingReader::new(decompressed));
    let unpacked = unpack_entries(&mut archive, staging.root.as_fd());
    let mut stream = archive.into_inner();
    // The tar crate reports a failing source as a tar error; name the real cause.
    let counts = unpacked.map_err(|err| stream.take_error().map_or(err, stream_error))?;
    let diff_id = stream.finish().map_err(stream_error)?;

    staging.commit()?;
    Ok(UnpackSummary {
        diff_id,
        entries: counts.entries,
        bytes: counts.bytes,
    })
}

fn decompressor<'r>(
    reader: impl Read + 'r,
    compression: Compression,
) -> io::Result<Box<dyn Read + 'r>> {
    Ok(match compression {
        Compression::None => Box::new(reader),
        // Multi-member: some tools write a layer as several concatenated gzip members.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(reader)?),
    })
}

/// The `.partial-*` sibling of `dest` that entries are unpacked into. Removed on drop
/// unless [`Staging::commit`] renamed it to `dest`.
struct Staging {
    path: PathBuf,
    dest: PathBuf,
    root: OwnedFd,
    committed: bool,
}

impl Staging {
    const MAX_NAME_ATTEMPTS: u32 = 16;

    fn create(dest: &Path) -> Result<Self, UnpackError> {
        match fs::symlink_metadata(dest) {
            Ok(_) => return Err(UnpackError::DestinationExists(dest.to_path_buf())),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(dest_io("checking layer destination", dest, source)),
        }
        let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
            return Err(UnpackError::InvalidDestination(dest.to_path_buf()));
        };
        let path = Self::create_unique_dir(parent, name)?;
        match Self::prepare_root(&path) {
            Ok(root) => Ok(Staging {
                path,
                dest: dest.to_path_buf(),
                root,
                committed: false,
            }),
            Err(err) => {
                // Best effort: the directory is still empty, the error is what matters.
                let _ = fs::remove_dir(&path);
                Err(err)
            }
        }
    }

    fn create_unique_dir(parent: &Path, name: &OsStr) -> Result<PathBuf, UnpackError> {
        let mut last_error = None;
        for _ in 0..Self::MAX_NAME_ATTEMPTS {
            let suffix =
                std::collections::hash_map::RandomState::new().hash_one(std::process::id());
            let mut partial_name = name.to_os_string();
            partial_name.push(format!(".partial-{suffix:016x}"));
            let path = parent.join(partial_name);
            match fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(path),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => last_error = Some(err),
                Err(source) => return Err(dest_io("creating staging directory", &path, source)),
            }
        }
        let source = last_error.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists));
        Err(dest_io("creating staging directory", parent, source))
    }

    /// The layer root ends up 0755 whatever the umask; its fd anchors every resolution.
    fn prepare_root(path: &Path) -> Result<OwnedFd, UnpackError> {
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))
            .map_err(|source| dest_io("setting mode of staging directory", path, source))?;
        let root = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|source| dest_io("opening staging directory", path, source))?;
        Ok(OwnedFd::from(root))
    }

    /// Flushes the layer to disk, then makes it visible under `dest` in one rename, so a
    /// crash never leaves a `dest` with missing contents.
    fn commit(mut self) -> Result<(), UnpackError> {
        sys::syncfs(self.root.as_fd())
            .map_err(|source| dest_io("syncing layer", &self.path, source))?;
        match sys::rename_noreplace(&self.path, &self.dest) {
            Ok(()) => {
                self.committed = true;
                Ok(())
            }
            Err(err) if err.raw_os_error() == Some(libc::EEXIST) => {
                Err(UnpackError::DestinationExists(self.dest.clone()))
            }
            Err(source) => Err(dest_io("renaming staging directory to", &self.dest, source)),
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: there is no one left to report a failure to.
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

fn dest_io(action: &'static str, path: &Path, source: io::Error) -> UnpackError {
    UnpackError::Io {
        action,
        path: path.display().to_string(),
        source,
    }
}

/// Hashes everything read through it, and keeps the source's own error so that a
/// decompression failure is not reported as a malformed tar.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    error: Option<io::Error>,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            error: None,
        }
    }

    fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    /// Reads what the tar parser left (the end-of-archive blocks and record padding
    /// belong to the diff_id too) and returns the `sha256:<hex>` digest.
    fn finish(mut self) -> io::Result<String> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(format!("sha256:{}", hex::encode(self.hasher.finalize())))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                Ok(n)
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => Err(err),
            Err(err) => {
                let copy = io::Error::new(err.kind(), err.to_string());
                self.error = Some(err);
                Err(copy)
            }
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    entries: u64,
    bytes: u64,
}

fn unpack_entries<R: Read>(
    archive: &mut tar::Archive<R>,
    root: BorrowedFd<'_>,
) -> Result<Counts, UnpackError> {
    let mut layer = Layer::new(root);
    let mut counts = Counts::default();
    for entry in archive.entries().map_err(UnpackError::Tar)? {
        let mut entry = entry.map_err(UnpackError::Tar)?;
        if entry.header().entry_type().is_pax_global_extensions() {
            continue;
        }
        counts.entries += 1;
        counts.bytes += layer.unpack_entry(&mut entry)?;
    }
    layer.apply_directory_times()?;
    Ok(counts)
}

/// A normalised entry name: the raw name for messages, and its components without empty,
/// `.` or `..` ones (the last is refused).
#[derive(Debug, Clone, PartialEq, Eq)]
struct EntryPath {
    display: String,
    components: Vec<CString>,
}

impl EntryPath {
    fn parse(raw: &[u8]) -> Result<Self, UnpackError> {
        let display = std::str::from_utf8(raw)
            .map_err(|_| UnpackError::NonUtf8Name(raw.escape_ascii().to_string()))?;
        Self::from_name(display, display)
    }

    /// Parses `name` (an entry name or a hard link target) on behalf of entry `owner`.
    fn from_name(owner: &str, name: &str) -> Result<Self, UnpackError> {
        if name.is_empty() {
            return Err(UnpackError::EmptyName {
                path: owner.to_string(),
            });
        }
        let mut components = Vec::new();
        for component in name.split('/') {
            match component {
                "" | "." => {}
                ".." => {
                    let reason = if owner == name {
                        "\"..\" component".to_string()
                    } else {
                        format!("hard link target {name:?} has a \"..\" component")
                    };
                    return Err(UnpackError::Escapes {
                        path: owner.to_string(),
                        reason,
                    });
                }
                _ => components.push(CString::new(component).map_err(|_| {
                    UnpackError::InvalidHeader {
                        path: owner.to_string(),
                        reason: format!("name {name:?} contains a NUL byte"),
                    }
                })?),
            }
        }
        Ok(EntryPath {
            display: owner.to_string(),
            components,
        })
    }

    fn is_root(&self) -> bool {
        self.components.is_empty()
    }

    fn split_last(&self) -> Option<(&CString, &[CString])> {
        self.components.split_last()
    }

    fn file_name(&self) -> Option<&CStr> {
        self.components.last().map(CString::as_c_str)
    }
}

/// `a/b/c` for the components, `.` for none: a path relative to the layer root.
fn join_relative(components: &[CString]) -> CString {
    if components.is_empty() {
        return c".".to_owned();
    }
    let joined = components
        .iter()
        .map(|component| component.as_bytes())
        .collect::<Vec<_>>()
        .join(&b'/');
    // Components come from CStrings and a '/' separator: no NUL can appear.
    CString::new(joined).unwrap_or_else(|_| c".".to_owned())
}

/// How an entry name speaks to overlayfs.
#[derive(Debug, PartialEq, Eq)]
enum Whiteout<'a> {
    /// `.wh..wh..opq`: hide everything lower layers have in the parent directory.
    Opaque,
    /// `.wh.NAME`: hide `NAME` of lower layers.
    Name(&'a CStr),
}

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

fn classify_whiteout(path: &EntryPath) -> Result<Option<Whiteout<'_>>, UnpackError> {
    let Some(name) = path.file_name() else {
        return Ok(None);
    };
    let Some(hidden) = name.to_bytes().strip_prefix(WHITEOUT_PREFIX) else {
        return Ok(None);
    };
    if name.to_bytes() == OPAQUE_MARKER {
        return Ok(Some(Whiteout::Opaque));
    }
    let invalid = |reason| UnpackError::InvalidWhiteout {
        path: path.display.clone(),
        reason,
    };
    match hidden {
        b"" => Err(invalid("it names no file")),
        b"." | b".." => Err(invalid("it names \".\" or \"..\"")),
        // The hidden name is a suffix of a NUL-free component, so it is NUL-free.
        _ => Ok(Some(Whiteout::Name(&name[WHITEOUT_PREFIX.len()..]))),
    }
}

const OPAQUE_XATTR: &CStr = c"trusted.overlay.opaque";
const RESERVED_XATTR_PREFIX: &[u8] = b"trusted.overlay.";
const PAX_XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";

/// Metadata of one entry, from its header and PAX records.
struct Metadata {
    mode: libc::mode_t,
    uid: libc::uid_t,
    gid: libc::gid_t,
    mtime: libc::timespec,
    xattrs: Vec<(CString, Vec<u8>)>,
}

impl Metadata {
    fn read<R: Read>(entry: &mut tar::Entry<'_, R>, path: &EntryPath) -> Result<Self, UnpackError> {
        let invalid = |reason: String| UnpackError::InvalidHeader {
            path: path.display.clone(),
            reason,
        };
        let header = entry.header();
        let raw = header.as_old();
        let mode =
            lenient(header.mode(), &raw.mode).map_err(|err| invalid(err.to_string()))? & 0o7777;
        // PAX uid/gid are already folded into the header by the tar crate.
        let uid = lenient(header.uid(), &raw.uid).map_err(|err| invalid(err.to_string()))?;
        let gid = lenient(header.gid(), &raw.gid).map_err(|err| invalid(err.to_string()))?;
        let header_mtime =
            lenient(header.mtime(), &raw.mtime).map_err(|err| invalid(err.to_string()))?;
        let uid =
            libc::uid_t::try_from(uid).map_err(|_| invalid(format!("uid {uid} is too large")))?;
        let gid =
            libc::gid_t::try_from(gid).map_err(|_| invalid(format!("gid {gid} is too large")))?;
        let mut mtime = libc::timespec {
            tv_sec: i64::try_from(header_mtime).unwrap_or(i64::MAX),
            tv_nsec: 0,
        };
        let mut xattrs = Vec::new();
        if let Some(extensions) = entry.pax_extensions().map_err(UnpackError::Tar)? {
            for extension in extensions {
                let extension = extension.map_err(UnpackError::Tar)?;
                let key = extension.key_bytes();
                if key == b"mtime" {
                    let value = String::from_utf8_lossy(extension.value_bytes());
                    mtime = parse_pax_time(&value)
                        .ok_or_else(|| invalid(format!("PAX mtime {value:?} is not a time")))?;
                } else if let Some(name) = key.strip_prefix(PAX_XATTR_PREFIX) {
                    xattrs.push((xattr_name(name, path)?, extension.value_bytes().to_vec()));
                }
            }
        }
        Ok(Metadata {
            mode,
            uid,
            gid,
            mtime,
            xattrs,
        })
    }
}

/// Reads an empty numeric header field (all NULs or spaces) as zero, as Go's archive/tar
/// (and so Docker) does, instead of failing like the tar crate.
fn lenient<T: Default>(value: io::Result<T>, raw_field: &[u8]) -> io::Result<T> {
    match value {
        Err(_) if raw_field.iter().all(|&byte| byte == 0 || byte == b' ') => Ok(T::default()),
        value => value,
    }
}

fn xattr_name(name: &[u8], path: &EntryPath) -> Result<CString, UnpackError> {
    if name.starts_with(RESERVED_XATTR_PREFIX) {
        return Err(UnpackError::ReservedXattr {
            path: path.display.clone(),
            name: String::from_utf8_lossy(name).into_owned(),
        });
    }
    CString::new(name).map_err(|_| UnpackError::InvalidHeader {
        path: path.display.clone(),
        reason: format!(
            "xattr name {:?} contains a NUL byte",
            name.escape_ascii().to_string()
        ),
    })
}

/// Parses a PAX time, `SECONDS[.FRACTION]`, possibly negative.
fn parse_pax_time(value: &str) -> Option<libc::timespec> {
    let (negative, unsigned) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let (seconds, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if seconds.is_empty() || !seconds.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds: i64 = seconds.parse().ok()?;
    // Nanoseconds: the first nine fraction digits, right-padded with zeros.
    let nanos = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0_i64, |acc, digit| acc * 10 + i64::from(digit - b'0'));
    let (tv_sec, tv_nsec) = match (negative, nanos) {
        (false, _) => (seconds, nanos),
        (true, 0) => (-seconds, 0),
        (true, _) => (-seconds - 1, 1_000_000_000 - nanos),
    };
    Some(libc::timespec { tv_sec, tv_nsec })
}

/// What was at an entry's place before it was created.
#[derive(Debug, PartialEq, Eq)]
enum Previous {
    Nothing,
    /// A directory that the new directory entry merges into.
    KeptDirectory,
}

/// The layer being unpacked: its root fd and the directory mtimes still to apply.
struct Layer<'fd> {
    root: BorrowedFd<'fd>,
    directory_times: BTreeMap<CString, libc::timespec>,
    buffer: Vec<u8>,
}

impl<'fd> Layer<'fd> {
    const COPY_BUFFER_SIZE: usize = 256 * 1024;
    /// openat2 with RESOLVE_BENEATH fails with EAGAIN when a rename races the lookup.
    const RESOLVE_ATTEMPTS: u32 = 8;

    fn new(root: BorrowedFd<'fd>) -> Self {
        Layer {
            root,
            directory_times: BTreeMap::new(),
            buffer: vec![0; Self::COPY_BUFFER_SIZE],
        }
    }

    /// Unpacks one entry; returns the bytes of regular-file content written.
    fn unpack_entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<u64, UnpackError> {
        let path = EntryPath::parse(&entry.path_bytes())?;
        let kind = entry.header().entry_type();
        if let Some(whiteout) = classify_whiteout(&path)? {
            let metadata = Metadata::read(entry, &path)?;
            self.whiteout(&path, whiteout, &metadata)?;
            return Ok(0);
        }
        if path.is_root() {
            // `./` is a common first entry; the layer root itself stays 0755 root.
            return match kind {
                tar::EntryType::Directory => Ok(0),
                _ => Err(UnpackError::EmptyName {
                    path: path.display.clone(),
                }),
            };
        }
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let metadata = Metadata::read(entry, &path)?;
                let expected = entry.size();
                self.regular_file(&path, &metadata, entry, expected)
            }
            tar::EntryType::Directory => {
                let metadata = Metadata::read(entry, &path)?;
                self.directory(&path, &metadata).map(|()| 0)
            }
            tar::EntryType::Symlink => {
                let metadata = Metadata::read(entry, &path)?;
                let target = link_target(entry, &path)?;
                self.symlink(&path, &target, &metadata).map(|()| 0)
            }
            tar::EntryType::Link => {
                let target = link_target(entry, &path)?;
                self.hard_link(&path, &target).map(|()| 0)
            }
            tar::EntryType::Fifo => {
                let metadata = Metadata::read(entry, &path)?;
                self.fifo(&path, &metadata).map(|()| 0)
            }
            tar::EntryType::Block => Err(device_error(entry.header(), &path, "block")),
            tar::EntryType::Char => Err(device_error(entry.header(), &path, "character")),
            other => Err(UnpackError::UnsupportedType {
                path: path.display.clone(),
                kind: format!("{other:?}"),
            }),
        }
    }

    fn regular_file(
        &mut self,
        path: &EntryPath,
        metadata: &Metadata,
        data: &mut impl Read,
        expected: u64,
    ) -> Result<u64, UnpackError> {
        let (parent, name) = self.prepare_place(path, false)?;
        let file =
            sys::create_file(parent.as_fd(), name).map_err(io_error("creating file", path))?;
        let mut file = fs::File::from(file);
        let written = self.copy_data(data, expected, &mut file, path)?;
        apply_fd_metadata(file.as_fd(), metadata, path)?;
        sys::set_fd_times(file.as_fd(), metadata.mtime)
            .map_err(io_error("setting mtime of", path))?;
        Ok(written)
    }

    /// Streams one entry's content into `file`, checking it is as long as its header says.
    fn copy_data(
        &mut self,
        data: &mut impl Read,
        expected: u64,
        file: &mut fs::File,
        path: &EntryPath,
    ) -> Result<u64, UnpackError> {
        let mut written = 0_u64;
        loop {
            let read = match data.read(&mut self.buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(UnpackError::Tar(err)),
            };
            file.write_all(&self.buffer[..read])
                .map_err(io_error("writing file", path))?;
            written += read as u64;
        }
        // A stream that ends inside an entry reads as a short entry, not as an error.
        if written != expected {
            return Err(UnpackError::Truncated {
                path: path.display.clone(),
                expected,
                actual: written,
            });
        }
        Ok(written)
    }

    fn directory(&mut self, path: &EntryPath, metadata: &Metadata) -> Result<(), UnpackError> {
        let (parent, name) = self.prepare_place(path, true)?;
        let previous = self.clear_place(parent.as_fd(), name, true, path)?;
        if previous == Previous::Nothing {
            sys::make_dir(parent.as_fd(), name, 0o700)
                .map_err(io_error("creating directory", path))?;
        }
        let directory = sys::open_child_dir(parent.as_fd(), name)
            .map_err(io_error("opening directory", path))?;
        apply_fd_metadata(directory.as_fd(), metadata, path)?;
        self.directory_times
            .insert(join_relative(&path.components), metadata.mtime);
        Ok(())
    }

    fn symlink(
        &mut self,
        path: &EntryPath,
        target: &[u8],
        metadata: &Metadata,
    ) -> Result<(), UnpackError> {
        let target = CString::new(target).map_err(|_| UnpackError::InvalidHeader {
            path: path.display.clone(),
            reason: "symlink target contains a NUL byte".to_string(),
        })?;
        let (parent, name) = self.prepare_place(path, false)?;
        sys::make_symlink(&target, parent.as_fd(), name)
            .map_err(io_error("creating symlink", path))?;
        // No chmod: symlink modes mean nothing on Linux.
        apply_at_metadata(parent.as_fd(), name, metadata, None, path)
    }

    fn fifo(&mut self, path: &EntryPath, metadata: &Metadata) -> Result<(), UnpackError> {
        let (parent, name) = self.prepare_place(path, false)?;
        sys::make_fifo(parent.as_fd(), name).map_err(io_error("creating fifo", path))?;
        apply_at_metadata(parent.as_fd(), name, metadata, Some(metadata.mode), path)
    }

    fn hard_link(&mut self, path: &EntryPath, target: &[u8]) -> Result<(), UnpackError> {
        let target_name =
            std::str::from_utf8(target).map_err(|_| UnpackError::NonUtf8LinkTarget {
                path: path.display.clone(),
                target: target.escape_ascii().to_string(),
            })?;
        let target = EntryPath::from_name(&path.display, target_name)?;
        let invalid = |reason| UnpackError::InvalidHardLink {
            path: path.display.clone(),
            target: target_name.to_string(),
            reason,
        };
        let Some((target_file, target_parent)) = target.split_last() else {
            return Err(invalid("the target is the layer root"));
        };
        if target.components == path.components {
            return Err(invalid("the entry links to itself"));
        }
        // Resolve the target first, without creating anything: it must already exist.
        let target_dir = match self.resolve_dir(target_parent) {
            Ok(dir) => dir,
            Err(err) if is_missing(&err) => return Err(missing_target(path, target_name)),
            Err(err) => return Err(self.resolve_error(path, target_parent, err)),
        };
        let (parent, name) = self.prepare_place(path, false)?;
        match sys::make_hard_link(target_dir.as_fd(), target_file, parent.as_fd(), name) {
            Ok(()) => Ok(()),
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {
                Err(missing_target(path, target_name))
            }
            Err(err) if err.raw_os_error() == Some(libc::EPERM) => {
                Err(invalid("the target is a directory or may not be linked"))
            }
            Err(source) => Err(io_error("creating hard link", path)(source)),
        }
    }

    fn whiteout(
        &mut self,
        path: &EntryPath,
        whiteout: Whiteout<'_>,
        metadata: &Metadata,
    ) -> Result<(), UnpackError> {
        let parent_components = path.split_last().map_or(&[][..], |(_, parent)| parent);
        let parent = self.open_parent(path, parent_components)?;
        match whiteout {
            Whiteout::Opaque => sys::set_fd_xattr(parent.as_fd(), OPAQUE_XATTR, b"y")
                .map_err(io_error("marking directory opaque for", path)),
            Whiteout::Name(name) => {
                self.clear_place(parent.as_fd(), name, false, path)?;
                sys::make_whiteout(parent.as_fd(), name)
                    .map_err(io_error("creating whiteout for", path))?;
                // The mode stays 0000 as overlayfs and Docker make it; owner and time are kept.
                let owner_only = Metadata {
                    xattrs: Vec::new(),
                    ..*metadata
                };
                apply_at_metadata(parent.as_fd(), name, &owner_only, None, path)
            }
        }
    }

    /// Opens the parent directory of `path` (creating missing ones) and removes whatever
    /// sits at its name, unless `keep_directory` and that is a directory.
    fn prepare_place<'p>(
        &mut self,
        path: &'p EntryPath,
        keep_directory: bool,
    ) -> Result<(OwnedFd, &'p CStr), UnpackError> {
        let Some((name, parent_components)) = path.split_last() else {
            return Err(UnpackError::EmptyName {
                path: path.display.clone(),
            });
        };
        let parent = self.open_parent(path, parent_components)?;
        if !keep_directory {
            self.clear_place(parent.as_fd(), name, false, path)?;
        }
        Ok((parent, name.as_c_str()))
    }

    /// Removes what an earlier entry put at `parent/name`: the later entry wins.
    fn clear_place(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &CStr,
        keep_directory: bool,
        path: &EntryPath,
    ) -> Result<Previous, UnpackError> {
        let Some(existing) =
            sys::stat_nofollow(parent, name).map_err(io_error("inspecting", path))?
        else {
            return Ok(Previous::Nothing);
        };
        if existing.st_mode & libc::S_IFMT != libc::S_IFDIR {
            sys::unlink(parent, name, 0).map_err(io_error("removing earlier entry", path))?;
            return Ok(Previous::Nothing);
        }
        if keep_directory {
            return Ok(Previous::KeptDirectory);
        }
        sys::remove_tree(parent, name).map_err(io_error("removing earlier directory", path))?;
        self.forget_directory_times(path);
        Ok(Previous::Nothing)
    }

    /// Drops the pending mtimes of a removed directory tree, so that a directory later
    /// implied at the same place does not inherit them.
    fn forget_directory_times(&mut self, removed: &EntryPath) {
        let removed = join_relative(&removed.components);
        let mut prefix = removed.as_bytes().to_vec();
        prefix.push(b'/');
        self.directory_times
            .retain(|path, _| path != &removed && !path.as_bytes().starts_with(&prefix));
    }

    /// Opens `parent_components` beneath the layer root, creating missing directories
    /// (0755, owned by the unpacking user) as the tar implies them.
    fn open_parent(
        &mut self,
        path: &EntryPath,
        parent_components: &[CString],
    ) -> Result<OwnedFd, UnpackError> {
        match self.resolve_dir(parent_components) {
            Ok(dir) => return Ok(dir),
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {}
            Err(err) => return Err(self.resolve_error(path, parent_components, err)),
        }
        // Slow path, taken once per missing directory: walk down, creating as needed.
        let mut dir = self
            .resolve_dir(&[])
            .map_err(io_error("opening layer root for", path))?;
        for depth in 1..=parent_components.len() {
            let prefix = &parent_components[..depth];
            dir = match self.resolve_dir(prefix) {
                Ok(next) => next,
                Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {
                    make_implied_dir(dir.as_fd(), &prefix[depth - 1], path)?
                }
                Err(err) => return Err(self.resolve_error(path, prefix, err)),
            };
        }
        Ok(dir)
    }

    fn resolve_dir(&self, components: &[CString]) -> io::Result<OwnedFd> {
        let relative = join_relative(components);
        let mut attempts = 0;
        loop {
            match sys::open_dir_beneath(self.root, &relative) {
                Err(err)
                    if err.raw_os_error() == Some(libc::EAGAIN)
                        && attempts < Self::RESOLVE_ATTEMPTS =>
                {
                    attempts += 1;
                }
                result => return result,
            }
        }
    }

    fn resolve_error(
        &self,
        path: &EntryPath,
        components: &[CString],
        err: io::Error,
    ) -> UnpackError {
        let directory = join_relative(components);
        let directory = directory.to_string_lossy();
        match err.raw_os_error() {
            Some(libc::EXDEV) => UnpackError::Escapes {
                path: path.display.clone(),
                reason: format!("{directory:?} leads outside the layer through a symlink"),
            },
            Some(libc::ELOOP) => UnpackError::Escapes {
                path: path.display.clone(),
                reason: format!("{directory:?} goes through a symlink loop or a magic link"),
            },
            _ => io_error("resolving parent directory of", path)(err),
        }
    }

    /// Sets directory mtimes last: creating entries inside a directory changes its mtime.
    fn apply_directory_times(&self) -> Result<(), UnpackError> {
        for (relative, mtime) in &self.directory_times {
            let directory = match sys::open_dir_beneath_nofollow(self.root, relative) {
                Ok(directory) => directory,
                // Replaced by a later entry (or removed with its parent): nothing to do.
                Err(err) if is_missing(&err) || err.raw_os_error() == Some(libc::ELOOP) => continue,
                Err(source) => {
                    return Err(UnpackError::Io {
                        action: "opening directory to set its mtime",
                        path: relative.to_string_lossy().into_owned(),
                        source,
                    })
                }
            };
            sys::set_fd_times(directory.as_fd(), *mtime).map_err(|source| UnpackError::Io {
                action: "setting mtime of",
                path: relative.to_string_lossy().into_owned(),
                source,
            })?;
        }
        Ok(())
    }
}

fn is_missing(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR))
}

fn missing_target(path: &EntryPath, target: &str) -> UnpackError {
    UnpackError::HardLinkTargetMissing {
        path: path.display.clone(),
        target: target.to_string(),
    }
}

fn make_implied_dir(
    parent: BorrowedFd<'_>,
    name: &CStr,
    path: &EntryPath,
) -> Result<OwnedFd, UnpackError> {
    let action = "creating implied parent directory for";
    sys::make_dir(parent, name, 0o755).map_err(io_error(action, path))?;
    let dir = sys::open_child_dir(parent, name).map_err(io_error(action, path))?;
    // SAFETY: geteuid and getegid cannot fail and touch no memory.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    // Explicit owner and mode: a setgid parent would otherwise pass on its group and bit.
    std::os::unix::fs::fchown(&dir, Some(uid), Some(gid)).map_err(io_error(action, path))?;
    sys::chmod_fd(dir.as_fd(), 0o755).map_err(io_error(action, path))?;
    Ok(dir)
}

fn link_target<R: Read>(
    entry: &tar::Entry<'_, R>,
    path: &EntryPath,
) -> Result<Vec<u8>, UnpackError> {
    entry
        .link_name_bytes()
        .map(|target| target.into_owned())
        .ok_or_else(|| UnpackError::InvalidHeader {
            path: path.display.clone(),
            reason: "link entry without a target".to_string(),
        })
}

fn device_error(header: &tar::Header, path: &EntryPath, kind: &'static str) -> UnpackError {
    let number = |value: io::Result<Option<u32>>| value.ok().flatten().unwrap_or(0);
    UnpackError::Device {
        path: path.display.clone(),
        kind,
        major: number(header.device_major()),
        minor: number(header.device_minor()),
    }
}

/// Owner, then mode (chown clears setuid/setgid), then xattrs (chown clears
/// `security.capability`), all through an open fd.
fn apply_fd_metadata(
    fd: BorrowedFd<'_>,
    metadata: &Metadata,
    path: &EntryPath,
) -> Result<(), UnpackError> {
    std::os::unix::fs::fchown(fd, Some(metadata.uid), Some(metadata.gid))
        .map_err(io_error("setting owner of", path))?;
    sys::chmod_fd(fd, metadata.mode).map_err(io_error("setting mode of", path))?;
    for (name, value) in &metadata.xattrs {
        sys::set_fd_xattr(fd, name, value).map_err(io_error("setting xattr of", path))?;
    }
    Ok(())
}

/// The same order as [`apply_fd_metadata`], for entries that cannot be opened for
/// writing (symlinks, FIFOs, whiteouts): by name in `parent`, never following a symlink.
fn apply_at_metadata(
    parent: BorrowedFd<'_>,
    name: &CStr,
    metadata: &Metadata,
    mode: Option<libc::mode_t>,
    path: &EntryPath,
) -> Result<(), UnpackError> {
    sys::chown_nofollow(parent, name, metadata.uid, metadata.gid)
        .map_err(io_error("setting owner of", path))?;
    if let Some(mode) = mode {
        sys::chmod_at(parent, name, mode).map_err(io_error("setting mode of", path))?;
    }
    for (xattr, value) in &metadata.xattrs {
        sys::set_xattr_nofollow(parent, name, xattr, value)
            .map_err(io_error("setting xattr of", path))?;
    }
    sys::set_times_nofollow(parent, name, metadata.mtime)
        .map_err(io_error("setting mtime of", path))
}

fn io_error<'p>(
    action: &'static str,
    path: &'p EntryPath,
) -> impl FnOnce(io::Error) -> UnpackError + 'p {
    move |source| UnpackError::Io {
        action,
        path: path.display.clone(),
        source,
    }
}

/// Thin wrappers over the `*at` system calls, each taking a directory fd and a single
/// path component (or a path resolved beneath the layer root).
mod sys {
    use super::*;

    fn check(ret: libc::c_int) -> io::Result<()> {
        if ret == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    fn open_beneath(
        root: BorrowedFd<'_>,
        relative: &CStr,
        flags: libc::c_int,
    ) -> io::Result<OwnedFd> {
        // SAFETY: open_how is a plain C struct of integers, for which all zeros is valid
        // (and required for fields this code does not set).
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (flags | libc::O_CLOEXEC) as u64;
        how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: `relative` is a valid NUL-terminated string and `how` a valid open_how
        // whose size is passed along; both outlive the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root.as_raw_fd(),
                relative.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd =
            RawFd::try_from(ret).map_err(|_| io::Error::other("openat2 returned an invalid fd"))?;
        // SAFETY: openat2 succeeded, so `fd` is a fresh descriptor nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Opens the directory at `relative` without leaving the tree under `root`.
    pub fn open_dir_beneath(root: BorrowedFd<'_>, relative: &CStr) -> io::Result<OwnedFd> {
        open_beneath(root, relative, libc::O_RDONLY | libc::O_DIRECTORY)
    }

    /// Like [`open_dir_beneath`], but fails if the last component is a symlink.
    pub fn open_dir_beneath_nofollow(root: BorrowedFd<'_>, relative: &CStr) -> io::Result<OwnedFd> {
        open_beneath(
            root,
            relative,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        )
    }

    fn open_at(
        parent: BorrowedFd<'_>,
        name: &CStr,
        flags: libc::c_int,
        mode: libc::mode_t,
    ) -> io::Result<OwnedFd> {
        // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
        let fd = unsafe {
            libc::openat(
                parent.as_raw_fd(),
                name.as_ptr(),
                flags | libc::O_CLOEXEC,
                mode,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: openat succeeded, so `fd` is a fresh descriptor nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Creates a new, empty regular file; fails if anything (a symlink included) is there.
    pub fn create_file(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
        open_at(
            parent,
            name,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
            0o600,
        )
    }

    /// Opens the directory `name` in `parent`, refusing a symlink.
    pub fn open_child_dir(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
        open_at(
            parent,
            name,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        )
    }

    pub fn make_dir(parent: BorrowedFd<'_>, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
        // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
        check(unsafe { libc::mkdirat(parent.as_raw_fd(), name.as_ptr(), mode) })
    }

    pub fn make_symlink(target: &CStr, parent: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
        // SAFETY: both strings are valid, NUL-terminated and outlive the call.
        check(unsafe { libc::symlinkat(target.as_ptr(), parent.as_raw_fd(), name.as_ptr()) })
    }

    pub fn make_fifo(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
        // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
        check(unsafe { libc::mkfifoat(parent.as_raw_fd(), name.as_ptr(), 0o600) })
    }

    /// The overlayfs whiteout: a character device 0/0.
    pub fn make_whiteout(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
        let device = libc::makedev(0, 0);
        // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
        check(unsafe { libc::mknodat(parent.as_raw_fd(), name.as_ptr(), libc::S_IFCHR, device) })
    }

    /// Hard link; flags 0 so that a symlink target is linked itself, never followed.
    pub fn make_hard_link(
        target_parent: BorrowedFd<'_>,
        target_name: &CStr,
        parent: BorrowedFd<'_>,
        name: &CStr,
    ) -> io::Result<()> {
        // SAFETY: both names are valid NUL-terminated strings that outlive the call.
        check(unsafe {
            libc::linkat(
                target_parent.as_raw_fd(),
                target_name.as_ptr(),
                parent.as_raw_fd(),
                name.as_ptr(),
                0,
            )
        })
    }

    pub fn stat_nofollow(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<Option<libc::stat>> {
        // SAFETY: stat is a plain C struct for which all zeros is valid.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `name` is a valid NUL-terminated string and `stat` a writable stat
        // buffer, both outliving the call.
        let ret = unsafe {
            libc::fstatat(
                parent.as_raw_fd(),
                name.as_ptr(),
                &mut stat,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        match check(ret) {
            Ok(()) => Ok(Some(stat)),
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(err) => Err(err),
        }
    }

    pub fn unlink(parent: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> io::Result<()> {
        // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
        check(unsafe { libc::unlinkat(parent.as_raw_fd(), name.as_ptr(), flags) })
    }

    /// Removes the directory `name` in `parent` and everything in it. std's
    /// `remove_dir_all` never follows symlinks inside the tree; the path goes through
    /// the `/proc/self/fd` link of the already beneath-resolved parent.
    pub fn remove_tree(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
        let mut path = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
        path.extend_from_slice(name.to_bytes());
        fs::remove_dir_all(Path::new(OsStr::from_bytes(&path)))
    }

    pub fn chmod_fd(fd: BorrowedFd<'_>, mode: libc::mode_t) -> io::Result<()> {
        // SAFETY: fchmod only reads its integer arguments.
        check(unsafe { libc::fchmod(fd.as_raw_fd(), mode) })
    }

    /// chmod by name; used only for a FIFO this code has just created, so following a
    /// symlink cannot happen (and Linux cannot chmod a symlink anyway).
    pub fn chmod_at(parent: BorrowedFd<'_>, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
        // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
        check(unsafe { libc::fchmodat(parent.as_raw_fd(), name.as_ptr(), mode, 0) })
    }

    pub fn chown_nofollow(
        parent: BorrowedFd<'_>,
        name: &CStr,
        uid: libc::uid_t,
        gid: libc::gid_t,
    ) -> io::Result<()> {
        // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
        check(unsafe {
            libc::fchownat(
                parent.as_raw_fd(),
                name.as_ptr(),
                uid,
                gid,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })
    }

    pub fn set_fd_xattr(fd: BorrowedFd<'_>, name: &CStr, value: &[u8]) -> io::Result<()> {
        // SAFETY: `name` is NUL-terminated and `value` points to `value.len()` readable
        // bytes; both outlive the call.
        check(unsafe {
            libc::fsetxattr(
                fd.as_raw_fd(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        })
    }

    /// lsetxattr on `parent/name` via `/proc/self/fd`: the parent link is followed (it is
    /// the beneath-resolved directory), `name` itself is not. There is no `lsetxattrat`.
    pub fn set_xattr_nofollow(
        parent: BorrowedFd<'_>,
        name: &CStr,
        xattr: &CStr,
        value: &[u8],
    ) -> io::Result<()> {
        let mut path = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
        path.extend_from_slice(name.to_bytes());
        let path = CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: `path` and `xattr` are NUL-terminated and `value` points to
        // `value.len()` readable bytes; all outlive the call.
        check(unsafe {
            libc::lsetxattr(
                path.as_ptr(),
                xattr.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        })
    }

    /// Access and modification time both set to `mtime`: tars carry no useful atime.
    fn both_times(mtime: libc::timespec) -> [libc::timespec; 2] {
        [mtime, mtime]
    }

    pub fn set_fd_times(fd: BorrowedFd<'_>, mtime: libc::timespec) -> io::Result<()> {
        let times = both_times(mtime);
        // SAFETY: `times` is an array of two timespecs, as futimens requires.
        check(unsafe { libc::futimens(fd.as_raw_fd(), times.as_ptr()) })
    }

    pub fn set_times_nofollow(
        parent: BorrowedFd<'_>,
        name: &CStr,
        mtime: libc::timespec,
    ) -> io::Result<()> {
        let times = both_times(mtime);
        // SAFETY: `name` is NUL-terminated and `times` is an array of two timespecs;
        // both outlive the call.
        check(unsafe {
            libc::utimensat(
                parent.as_raw_fd(),
                name.as_ptr(),
                times.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })
    }

    pub fn syncfs(fd: BorrowedFd<'_>) -> io::Result<()> {
        // SAFETY: syncfs only reads its integer argument.
        check(unsafe { libc::syncfs(fd.as_raw_fd()) })
    }

    /// rename(2) that fails with EEXIST instead of replacing `to`.
    pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
        let c_path = |path: &Path| {
            CString::new(path.as_os_str().as_bytes())
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
        };
        let (from, to) = (c_path(from)?, c_path(to)?);
        // SAFETY: both paths are valid NUL-terminated strings that outlive the call.
        check(unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                from.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn components(name: &str) -> Vec<String> {
        let path = EntryPath::parse(name.as_bytes()).expect("valid name");
        path.components
            .iter()
            .map(|component| component.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn entry_names_lose_leading_slashes_dots_and_empty_components() {
        assert_eq!(components("./usr/bin/sh"), ["usr", "bin", "sh"]);
        assert_eq!(components("/usr//bin/./sh/"), ["usr", "bin", "sh"]);
        assert_eq!(components("///etc"), ["etc"]);
        assert!(components("./").is_empty());
        assert!(components("/").is_empty());
    }

    #[test]
    fn dotdot_anywhere_is_refused_with_the_entry_path() {
        for name in ["../etc/passwd", "a/../../b", "a/..", ".."] {
            let err = EntryPath::parse(name.as_bytes()).expect_err(name);
            assert_eq!(
                err.to_string(),
                format!("layer entry {name:?} escapes the layer (\"..\" component)")
            );
        }
    }

    #[test]
    fn empty_and_non_utf8_names_are_refused() {
        let err = EntryPath::parse(b"").expect_err("empty");
        assert!(matches!(err, UnpackError::EmptyName { .. }));
        let err = EntryPath::parse(b"caf\xe9").expect_err("latin-1");
        assert_eq!(
            err.to_string(),
            r#"layer entry name is not UTF-8: "caf\xe9""#
        );
    }

    #[test]
    fn whiteout_names_are_classified() {
        let classify = |name: &str| {
            let path = EntryPath::parse(name.as_bytes()).expect("valid name");
            classify_whiteout(&path).map(|whiteout| {
                whiteout.map(|whiteout| match whiteout {
                    Whiteout::Opaque => "<opaque>".to_string(),
                    Whiteout::Name(name) => name.to_string_lossy().into_owned(),
                })
            })
        };
        assert_eq!(classify("a/.wh.b").expect("ok"), Some("b".to_string()));
        assert_eq!(
            classify("a/.wh..wh..opq").expect("ok"),
            Some("<opaque>".to_string())
        );
        assert_eq!(
            classify(".wh..wh.plnk").expect("ok"),
            Some(".wh.plnk".to_string())
        );
        assert_eq!(classify("a/b.wh.c").expect("ok"), None);
        assert_eq!(classify(".wh.x/y").expect("ok"), None);
        for invalid in ["a/.wh.", ".wh..", ".wh..."] {
            assert!(
                matches!(classify(invalid), Err(UnpackError::InvalidWhiteout { .. })),
                "{invalid}"
            );
        }
    }

    #[test]
    fn pax_times_parse_with_fractions_and_signs() {
        let parse = |value| parse_pax_time(value).map(|time| (time.tv_sec, time.tv_nsec));
        assert_eq!(parse("1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(parse("1700000000.25"), Some((1_700_000_000, 250_000_000)));
        assert_eq!(parse("1.1234567891"), Some((1, 123_456_789)));
        assert_eq!(parse("-1.5"), Some((-2, 500_000_000)));
        assert_eq!(parse("-3"), Some((-3, 0)));
        for invalid in ["", ".5", "1e9", "1.5x", "--1", "x"] {
            assert_eq!(parse(invalid), None, "{invalid}");
        }
    }

    #[test]
    fn empty_numeric_fields_read_as_zero() {
        let not_a_number = || io::Error::other("not a number");
        assert_eq!(
            lenient::<u64>(Err(not_a_number()), b"\0\0  \0").expect("empty"),
            0
        );
        assert!(lenient::<u64>(Err(not_a_number()), b"12x\0").is_err());
        assert_eq!(lenient(Ok(7_u64), b"0000007\0").expect("number"), 7);
    }

    #[test]
    fn relative_paths_join_components() {
        let path = EntryPath::parse(b"./a/b/c").expect("valid name");
        assert_eq!(join_relative(&path.components).as_bytes(), b"a/b/c");
        assert_eq!(join_relative(&[]).as_bytes(), b".");
    }

    #[test]
    fn reserved_overlay_xattrs_are_refused() {
        let path = EntryPath::parse(b"f").expect("valid name");
        assert!(matches!(
            xattr_name(b"trusted.overlay.redirect", &path),
            Err(UnpackError::ReservedXattr { .. })
        ));
        assert_eq!(
            xattr_name(b"user.note", &path).expect("allowed").as_bytes(),
            b"user.note"
        );
    }

    #[test]
    fn device_error_names_path_and_numbers() {
        let err = UnpackError::Device {
            path: "dev/sda".to_string(),
            kind: "block",
            major: 8,
            minor: 0,
        };
        assert_eq!(
            err.to_string(),
            r#"layer entry "dev/sda" is a block device (8:0); devices are not allowed"#
        );
    }
}
