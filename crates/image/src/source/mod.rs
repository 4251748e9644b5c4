//! Where an image's manifests and blobs come from: a registry (Registry HTTP API v2) or a
//! local OCI layout or archive. The pull pipeline sees only [`Source`].

pub mod local;
pub mod registry;

use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;

use crate::reference::ImageSource;

/// A manifest, index or list as fetched, before parsing.
#[derive(Clone, Debug)]
pub struct RawManifest {
    pub bytes: Vec<u8>,
    /// The media type the source declared (a registry's Content-Type, a descriptor's
    /// mediaType), when it declared one.
    pub content_type: Option<String>,
    /// `sha256:` of `bytes`.
    pub digest: String,
}

/// A blob being read: the bytes as they arrive, unverified (the caller verifies digest and
/// size while consuming them).
pub struct Blob {
    /// The length the source announced, if any.
    pub length: Option<u64>,
    pub stream: Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>,
}

/// How to reach registries.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// Hosts (`host[:port]`) spoken to over plain HTTP besides loopback ones.
    pub insecure_hosts: Vec<String>,
    /// A Docker-style `config.json`; when None, `$DOCKER_CONFIG/config.json` then
    /// `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
    /// Bound on connecting and on each read, so an unreachable registry fails instead of
    /// hanging.
    pub timeout: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            insecure_hosts: Vec::new(),
            docker_config: None,
            timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The registry refused us: no credentials, or the ones we have were rejected.
    #[error("registry {registry} refused access: {detail}")]
    Unauthorized { registry: String, detail: String },
    #[error("registry {registry} is unreachable: {detail}")]
    Unreachable { registry: String, detail: String },
    #[error("{what} not found in {source_name}")]
    NotFound { what: String, source_name: String },
    #[error("{what} is {size} bytes, over the {limit}-byte limit")]
    TooLarge { what: String, size: u64, limit: u64 },
    #[error("{source_name}: {detail}")]
    Invalid { source_name: String, detail: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// An opened image source.
pub enum Source {
    Registry(registry::RegistrySource),
    Local(local::LocalSource),
}

impl Source {
    pub async fn open(image: &ImageSource, options: &RegistryOptions) -> Result<Self, SourceError> {
        match image {
            ImageSource::Registry(reference) => Ok(Self::Registry(
                registry::RegistrySource::new(reference, options).await?,
            )),
            local => Ok(Self::Local(local::LocalSource::open(local).await?)),
        }
    }

    /// The manifest the source's reference names (tag or digest), or the one with `digest`.
    pub async fn manifest(&self, digest: Option<&str>) -> Result<RawManifest, SourceError> {
        match self {
            Self::Registry(r) => r.manifest(digest).await,
            Self::Local(l) => l.manifest(digest).await,
        }
    }

    pub async fn blob(&self, digest: &str, size: Option<u64>) -> Result<Blob, SourceError> {
        match self {
            Self::Registry(r) => r.blob(digest, size).await,
            Self::Local(l) => l.blob(digest).await,
        }
    }
}
