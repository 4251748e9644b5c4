//! Pulling an image into the store: resolve the reference to a linux/amd64 manifest, fetch
//! and verify the config, then fetch, verify and unpack the layers concurrently. A layer the
//! store has is never transferred again; a failed pull leaves nothing it created behind.

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use serde_json::Value;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::error::{ImageError, IoContext};
use crate::manifest::{self, ConfigSource, ImageManifest, Layer, Parsed};
use crate::reference::ImageSource;
use crate::source::{RegistryOptions, Source};
use crate::store::{ImageRecord, LayerLock, LayerRecord, LockMode, Store};
use crate::unpack::unpack_layer;
use crate::verify::VerifyingReader;

/// Layers fetched at once.
const CONCURRENT_LAYERS: usize = 4;
/// Image configs are small JSON documents; a larger "config" is refused unread.
const MAX_CONFIG_BYTES: u64 = 8 * 1024 * 1024;

/// Told what a pull is doing, for progress bars. Every method has a no-op default.
pub trait PullProgress: Send + Sync {
    /// The reference resolved to `manifest_digest`, with these layers (digest, size).
    fn resolved(&self, _manifest_digest: &str, _layers: &[(String, Option<u64>)]) {}
    /// A layer transfer starts; `bytes` counts what has arrived, live.
    fn layer_started(&self, _digest: &str, _size: Option<u64>, _bytes: Arc<AtomicU64>) {}
    /// A layer is in the store, transferred now (`cached` false) or already there.
    fn layer_done(&self, _digest: &str, _cached: bool) {}
}

/// A progress sink that ignores everything.
pub struct Quiet;
impl PullProgress for Quiet {}

/// What a pull decided and what it transferred.
#[derive(Clone, Debug)]
pub struct PullOutcome {
    pub record: ImageRecord,
    /// Layers transferred by this pull (the others were in the store).
    pub layers_fetched: usize,
}

/// Normalises a source so that the same image always gets the same record key: local
/// paths become absolute.
pub fn canonical_source(image: &ImageSource) -> Result<ImageSource, ImageError> {
    let abs = |p: &Path| std::path::absolute(p).context(|| format!("resolving {}", p.display()));
    Ok(match image {
        ImageSource::Registry(r) => ImageSource::Registry(r.clone()),
        ImageSource::OciLayout { dir, tag } => ImageSource::OciLayout {
            dir: abs(dir)?,
            tag: tag.clone(),
        },
        ImageSource::OciArchive(p) => ImageSource::OciArchive(abs(p)?),
        ImageSource::DockerArchive(p) => ImageSource::DockerArchive(abs(p)?),
    })
}

/// The key an image is recorded under: the bare reference for registries
/// (`docker.io/library/busybox:latest`), the source with an absolute path for local ones.
pub fn record_reference(image: &ImageSource) -> Result<String, ImageError> {
    Ok(match canonical_source(image)? {
        ImageSource::Registry(r) => r.to_string(),
        local => local.to_string(),
    })
}

impl Store {
    /// Pulls `image` (registry reference or local source) into the store.
    pub async fn pull(
        &self,
        image: &ImageSource,
        options: &RegistryOptions,
        progress: &dyn PullProgress,
    ) -> Result<PullOutcome, ImageError> {
        let image = canonical_source(image)?;
        let reference = record_reference(&image)?;
        let source = Source::open(&image, options).await?;
        let (manifest, manifest_digest, index_digest) = resolve(&source).await?;
        let layers: Vec<(String, Option<u64>)> = manifest
            .layers
            .iter()
            .map(|l| (l.digest.clone(), l.size))
            .collect();
        progress.resolved(&manifest_digest, &layers);

        // Held shared until the record is written: prune waits, so nothing this pull
        // fetched or found can vanish before the record references it.
        let store_lock = self.blocking(|s| s.lock_store(LockMode::Shared)).await?;
        let mut created = Created::default();
        let result = self
            .pull_content(&source, &manifest, progress, &mut created)
            .await;
        let result = result.and_then(|(config_digest, layers)| {
            let record = ImageRecord {
                reference,
                manifest_digest,
                index_digest,
                config_digest,
                layers,
                pulled_at: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
            };
            self.put_record(&record).map(|()| record)
        });
        match result {
            Ok(record) => Ok(PullOutcome {
                record,
                layers_fetched: created.layers.len(),
            }),
            Err(e) => {
                self.roll_back(created, store_lock);
                Err(e)
            }
        }
    }

    async fn pull_content(
        &self,
        source: &Source,
        manifest: &ImageManifest,
        progress: &dyn PullProgress,
        created: &mut Created,
    ) -> Result<(String, Vec<LayerRecord>), ImageError> {
        let (config_digest, config) = self.fetch_config(source, manifest, created).await?;
        manifest::check_config_platform(&config)?;
        let diff_ids = expected_diff_ids(&config, manifest.layers.len())?;

        // One job per distinct blob: an image may list the same layer twice.
        let mut distinct: Vec<(&Layer, Option<String>)> = Vec::new();
        for (layer, diff_id) in manifest.layers.iter().zip(&diff_ids) {
            if !distinct.iter().any(|(l, _)| l.digest == layer.digest) {
                distinct.push((layer, diff_id.clone()));
            }
        }
        let jobs = distinct
            .into_iter()
            .map(|(layer, diff_id)| self.ensure_layer(source, layer, diff_id, progress));
        let done: Vec<Result<LayerDone, ImageError>> = futures_util::stream::iter(jobs)
            .buffered(CONCURRENT_LAYERS)
            .collect()
            .await;
        let mut records = Vec::new();
        let mut first_error = None;
        // Every outcome is looked at, so that layers created before a failure are rolled back.
        for outcome in done {
            match outcome {
                Ok(d) => {
                    if d.created {
                        created.layers.push(d.record.digest.clone());
                    }
                    records.push(d.record);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        // Back in the manifest's order, repeats included.
        manifest
            .layers
            .iter()
            .zip(&diff_ids)
            .map(|(layer, expected)| {
                let record = records
                    .iter()
                    .find(|r| r.digest == layer.digest)
                    .cloned()
                    .ok_or_else(|| {
                        ImageError::Invalid(format!("layer {} was not pulled", layer.digest))
                    })?;
                check_diff_id(&record, expected.as_deref())?;
                Ok(record)
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|layers| (config_digest, layers))
    }

    async fn fetch_config(
        &self,
        source: &Source,
        manifest: &ImageManifest,
        created: &mut Created,
    ) -> Result<(String, Value), ImageError> {
        let (digest, bytes) = match &manifest.config {
            ConfigSource::Embedded(value) => {
                let bytes = serde_json::to_vec(value)
                    .map_err(|e| ImageError::Invalid(format!("schema1 config: {e}")))?;
                let digest = manifest::digest_of(&bytes);
                if self.read_blob(&digest)?.is_none() {
                    self.put_blob(&digest, &bytes)?;
                    created.config = Some(digest.clone());
                }
                (digest, bytes)
            }
            ConfigSource::Blob(desc) => match self.read_blob(&desc.digest)? {
                Some(bytes) => (desc.digest.clone(), bytes),
                None => {
                    // Under the blob's lock, so that two pulls fetch it once.
                    let digest = desc.digest.clone();
                    let _lock = self
                        .blocking(move |s| s.lock_layer(&digest, LockMode::Exclusive))
                        .await?;
                    match self.read_blob(&desc.digest)? {
                        Some(bytes) => (desc.digest.clone(), bytes),
                        None => {
                            let bytes = fetch_small_blob(source, &desc.digest, desc.size).await?;
                            self.put_blob(&desc.digest, &bytes)?;
                            created.config = Some(desc.digest.clone());
                            (desc.digest.clone(), bytes)
                        }
                    }
                }
            },
        };
        let config: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::Invalid(format!("image config {digest} is not JSON: {e}")))?;
        Ok((digest, config))
    }

    /// Makes one layer present, transferring it only when the store lacks it.
    async fn ensure_layer(
        &self,
        source: &Source,
        layer: &Layer,
        expected_diff_id: Option<String>,
        progress: &dyn PullProgress,
    ) -> Result<LayerDone, ImageError> {
        let digest = layer.digest.clone();
        // A present layer needs no lock: layers never change, and prune waits for this pull.
        if let Some(record) = self.present_layer(&digest)? {
            progress.layer_done(&digest, true);
            return Ok(LayerDone {
                record,
                created: false,
            });
        }
        // Absent: one puller fetches it, others wait here and then find it present. Nothing
        // else is held while waiting, so this cannot deadlock.
        let lock = {
            let digest = digest.clone();
            self.blocking(move |s| s.lock_layer(&digest, LockMode::Exclusive))
                .await?
        };
        if let Some(record) = self.present_layer(&digest)? {
            progress.layer_done(&digest, true);
            return Ok(LayerDone {
                record,
                created: false,
            });
        }
        let blob = source.blob(&digest, layer.size).await?;
        let counter = Arc::new(AtomicU64::new(0));
        progress.layer_started(&digest, layer.size.or(blob.length), counter.clone());
        let reader = SyncIoBridge::new(StreamReader::new(blob.stream));
        let (layer, expected) = (layer.clone(), expected_diff_id);
        // The lock moves into the task: if this pull is cancelled, the unpack still runs to
        // its end under the lock, and nobody else touches the digest meanwhile.
        let record = self
            .blocking(move |s| {
                let _lock = lock;
                s.unpack_verified(reader, &layer, expected, counter)
            })
            .await?;
        progress.layer_done(&digest, false);
        Ok(LayerDone {
            record,
            created: true,
        })
    }

    fn present_layer(&self, digest: &str) -> Result<Option<LayerRecord>, ImageError> {
        if !self.layer_dir(digest)?.is_dir() {
            return Ok(None);
        }
        self.layer_info(digest)
    }

    /// Unpacks a layer stream into a temporary directory, verifies the blob digest and size
    /// and the diff ID, renames it into place, and only then writes its metadata. The caller
    /// holds the layer's exclusive lock.
    fn unpack_verified(
        &self,
        reader: impl std::io::Read,
        layer: &Layer,
        expected_diff_id: Option<String>,
        counter: Arc<AtomicU64>,
    ) -> Result<LayerRecord, ImageError> {
        let what = format!("layer {}", layer.digest);
        let dest = self.layer_dir(&layer.digest)?;
        // A directory without metadata is what a crash or an interrupted delete left.
        if dest.exists() {
            std::fs::remove_dir_all(&dest)
                .context(|| format!("removing the incomplete {}", dest.display()))?;
        }
        let tmp = self.unverified_layer_dir(&layer.digest)?;
        let mut verifying = VerifyingReader::new(reader, layer.size, counter);
        let unpacked = unpack_layer(&mut verifying, layer.compression, &tmp);
        let summary = match unpacked {
            Ok(s) => s,
            Err(source) => {
                // A corrupt or cut blob often shows up first as a decompression error; when the
                // blob itself is bad, that is the root cause and is reported instead.
                return match verifying.finish(&what, &layer.digest) {
                    Err(e) => Err(e),
                    Ok(_) => Err(ImageError::Unpack {
                        digest: layer.digest.clone(),
                        source,
                    }),
                };
            }
        };
        let record = verifying
            .finish(&what, &layer.digest)
            .map(|size| LayerRecord {
                digest: layer.digest.clone(),
                diff_id: summary.diff_id,
                size,
            });
        let committed = record.and_then(|record| {
            check_diff_id(&record, expected_diff_id.as_deref())?;
            std::fs::rename(&tmp, &dest).context(|| format!("moving {what} into place"))?;
            self.put_layer_info(&record).map(|()| record)
        });
        if committed.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
            let _ = std::fs::remove_dir_all(&dest);
        }
        committed
    }

    /// Runs blocking store work (locks, unpacking) off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Store) -> Result<T, ImageError> + Send + 'static,
    ) -> Result<T, ImageError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(|e| ImageError::Invalid(format!("store task failed: {e}")))?
    }

    /// Removes what a failed pull created (its new layers and config), but only when no other
    /// pull is running: another may already be using them. What stays is complete and
    /// unreferenced, and goes at the next prune.
    fn roll_back(&self, created: Created, store_lock: LayerLock) {
        if !store_lock.try_upgrade() {
            return;
        }
        for digest in &created.layers {
            if let Err(e) = self.delete_layer(digest) {
                tracing::warn!("rolling back layer {digest}: {e}");
            }
        }
        if let Some(config) = &created.config {
            let referenced = self
                .list()
                .map(|records| records.iter().any(|r| &r.config_digest == config))
                .unwrap_or(true);
            if !referenced {
                if let Ok(path) = self.blob_path(config) {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
}

/// What this pull created, to undo on failure.
#[derive(Default)]
struct Created {
    layers: Vec<String>,
    config: Option<String>,
}

struct LayerDone {
    record: LayerRecord,
    created: bool,
}

/// The layer's content must be what the image config says it is.
fn check_diff_id(record: &LayerRecord, expected: Option<&str>) -> Result<(), ImageError> {
    match expected {
        Some(expected) if expected != record.diff_id => Err(ImageError::DigestMismatch {
            what: format!("uncompressed layer {} (diff ID)", record.digest),
            expected: expected.to_string(),
            actual: record.diff_id.clone(),
        }),
        _ => Ok(()),
    }
}

/// Resolves the source's reference to an image manifest: an index or list is narrowed to
/// its linux/amd64 entry. Returns the manifest, its digest and the index digest if any.
async fn resolve(source: &Source) -> Result<(ImageManifest, String, Option<String>), ImageError> {
    let top = source.manifest(None).await?;
    match manifest::parse(&top.bytes, top.content_type.as_deref())? {
        Parsed::Image(m) => Ok((m, top.digest, None)),
        Parsed::Index(index) => {
            let entry = index.select_linux_amd64()?;
            let raw = source.manifest(Some(&entry.digest)).await?;
            if raw.digest != entry.digest {
                return Err(ImageError::DigestMismatch {
                    what: "linux/amd64 manifest".into(),
                    expected: entry.digest.clone(),
                    actual: raw.digest,
                });
            }
            match manifest::parse(&raw.bytes, raw.content_type.as_deref())? {
                Parsed::Image(m) => Ok((m, raw.digest, Some(top.digest))),
                Parsed::Index(_) => Err(ImageError::Invalid(format!(
                    "the linux/amd64 entry {} of index {} is itself an index",
                    entry.digest, top.digest
                ))),
            }
        }
    }
}

/// The config's `rootfs.diff_ids`, one per layer, or None each (schema1 has none).
fn expected_diff_ids(config: &Value, layers: usize) -> Result<Vec<Option<String>>, ImageError> {
    match config["rootfs"]["diff_ids"].as_array() {
        None => Ok(vec![None; layers]),
        Some(ids) if ids.len() == layers => {
            Ok(ids.iter().map(|v| v.as_str().map(str::to_string)).collect())
        }
        Some(ids) => Err(ImageError::Invalid(format!(
            "image config lists {} diff IDs for {layers} layers",
            ids.len()
        ))),
    }
}

async fn fetch_small_blob(
    source: &Source,
    digest: &str,
    size: Option<u64>,
) -> Result<Vec<u8>, ImageError> {
    if size.is_some_and(|s| s > MAX_CONFIG_BYTES) {
        return Err(ImageError::TooLarge {
            what: format!("config {digest}"),
            limit: MAX_CONFIG_BYTES,
        });
    }
    let blob = source.blob(digest, size).await?;
    let mut bytes = Vec::new();
    let mut stream = blob.stream;
    while let Some(chunk) = stream
        .try_next()
        .await
        .context(|| format!("reading config {digest}"))?
    {
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ImageError::TooLarge {
                what: format!("config {digest}"),
                limit: MAX_CONFIG_BYTES,
            });
        }
    }
    if let Some(expected) = size {
        if bytes.len() as u64 != expected {
            return Err(ImageError::SizeMismatch {
                what: format!("config {digest}"),
                expected,
                actual: bytes.len() as u64,
            });
        }
    }
    Ok(bytes)
}
