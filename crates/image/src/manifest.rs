//! Parsing every manifest kind Cloud Run accepts: OCI manifests and indexes, Docker
//! schema2 manifests and manifest lists, and Docker schema1 (signed or not).
//!
//! Single-image kinds are unified into [`ImageManifest`]; multi-platform kinds into
//! [`Index`], from which the linux/amd64 entry is chosen.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::reference::{validate_digest, DigestError};

/// Largest manifest accepted, as containerd and the distribution registry limit it.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_MANIFEST_V1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Every manifest media type [`parse`] reads, most preferred first: what a registry
/// request's `Accept` header should list.
pub const ACCEPTED_MEDIA_TYPES: [&str; 6] = [
    OCI_INDEX,
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    DOCKER_MANIFEST_V2,
    DOCKER_MANIFEST_V1_SIGNED,
    DOCKER_MANIFEST_V1,
];

/// The annotation BuildKit puts on index entries that hold provenance/SBOM data.
const REFERENCE_TYPE_ANNOTATION: &str = "vnd.docker.reference.type";
const ATTESTATION_MANIFEST: &str = "attestation-manifest";

/// Which kind of manifest a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ManifestKind {
    OciManifest,
    OciIndex,
    DockerV2,
    DockerList,
    DockerV1,
    DockerV1Signed,
}

impl ManifestKind {
    /// The kind a media type names, if it is a manifest type homerun reads.
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        [
            Self::OciManifest,
            Self::OciIndex,
            Self::DockerV2,
            Self::DockerList,
            Self::DockerV1,
            Self::DockerV1Signed,
        ]
        .into_iter()
        .find(|kind| kind.media_type().eq_ignore_ascii_case(media_type))
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Self::OciManifest => OCI_MANIFEST,
            Self::OciIndex => OCI_INDEX,
            Self::DockerV2 => DOCKER_MANIFEST_V2,
            Self::DockerList => DOCKER_MANIFEST_LIST,
            Self::DockerV1 => DOCKER_MANIFEST_V1,
            Self::DockerV1Signed => DOCKER_MANIFEST_V1_SIGNED,
        }
    }
}

/// A parsed manifest: one image, or an index of per-platform images.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Image(ImageManifest),
    Index(Index),
}

impl Parsed {
    pub fn kind(&self) -> ManifestKind {
        match self {
            Self::Image(image) => image.kind,
            Self::Index(index) => index.kind,
        }
    }
}

/// A content descriptor: what a manifest says about a blob or another manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: Option<u64>,
    pub platform: Option<Platform>,
    #[serde(default)]
    pub urls: Vec<String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// BuildKit's provenance/SBOM entries, which are not runnable images.
    fn is_attestation(&self) -> bool {
        self.annotations
            .get(REFERENCE_TYPE_ANNOTATION)
            .is_some_and(|kind| kind == ATTESTATION_MANIFEST)
            || self
                .platform
                .as_ref()
                .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// An OCI image index or Docker manifest list.
#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    pub kind: ManifestKind,
    pub manifests: Vec<Descriptor>,
}

impl Index {
    /// The linux/amd64 image, skipping attestations and entries without a platform.
    /// A baseline build (no variant, or `v1`) is preferred over `v2`..`v4`, which need
    /// newer CPU features.
    pub fn select_linux_amd64(&self) -> Result<&Descriptor, ManifestError> {
        let runnable = || {
            self.manifests
                .iter()
                .filter(|d| !d.is_attestation())
                .filter_map(|d| d.platform.as_ref().map(|platform| (d, platform)))
        };
        let amd64 = || runnable().filter(|(_, p)| p.os == "linux" && p.architecture == "amd64");
        let baseline = amd64().find(|(_, p)| matches!(p.variant.as_deref(), None | Some("v1")));
        if let Some((descriptor, _)) = baseline.or_else(|| amd64().next()) {
            return Ok(descriptor);
        }
        let mut found: Vec<String> = Vec::new();
        for (_, platform) in runnable() {
            let platform = platform.to_string();
            if !found.contains(&platform) {
                found.push(platform);
            }
        }
        Err(ManifestError::NoLinuxAmd64 { found })
    }
}

/// A single-platform image, whatever kind of manifest described it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageManifest {
    pub kind: ManifestKind,
    pub config: ConfigSource,
    /// Base layer first.
    pub layers: Vec<Layer>,
}

/// Where the image config comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigSource {
    /// OCI and schema2: a blob to fetch (its media type already checked).
    Blob(Descriptor),
    /// Schema1: an OCI-style config built from the newest `v1Compatibility` entry,
    /// with `architecture`, `os`, `created` and `config`. It has no `rootfs.diff_ids`:
    /// schema1 never recorded uncompressed layer digests, so they are unknown.
    Embedded(Value),
}

/// One filesystem layer to fetch and apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub digest: String,
    pub size: Option<u64>,
    pub compression: Compression,
    /// Where a non-distributable (foreign) layer may be fetched from instead of the
    /// registry; empty otherwise.
    pub urls: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression a layer media type implies, if it is a layer type homerun reads.
    pub fn from_layer_media_type(media_type: &str) -> Option<Self> {
        match media_type {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar" => Some(Self::None),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Some(Self::Gzip),
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Some(Self::Zstd),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("manifest is not valid JSON: {0}")]
    NotJson(String),
    #[error("manifest JSON is not an object")]
    NotAnObject,
    #[error("unsupported manifest media type {0:?}")]
    UnknownMediaType(String),
    #[error(
        "cannot tell what kind of manifest this is: the content type is {content_type} \
         and the JSON has no mediaType and no recognisable schemaVersion"
    )]
    UnknownKind { content_type: String },
    #[error("malformed {media_type} manifest: {detail}")]
    Malformed {
        media_type: &'static str,
        detail: String,
    },
    #[error("{media_type} manifest has schemaVersion {found}; expected {expected}")]
    SchemaVersion {
        media_type: &'static str,
        found: String,
        expected: u64,
    },
    #[error("{context} has a bad digest: {problem}")]
    BadDigest {
        context: String,
        problem: DigestError,
    },
    #[error("layer {digest} has unsupported media type {media_type:?}")]
    UnknownLayerMediaType { media_type: String, digest: String },
    #[error(
        "config {digest} has media type {media_type:?}, which is not a container image \
         config (expected {OCI_CONFIG} or {DOCKER_CONFIG})"
    )]
    UnknownConfigMediaType { media_type: String, digest: String },
    #[error("schema1 manifest has {layers} fsLayers but {history} history entries")]
    Schema1LengthMismatch { layers: usize, history: usize },
    #[error("schema1 manifest has no layers")]
    Schema1Empty,
    #[error("schema1 history[{index}].v1Compatibility is not a JSON object: {detail}")]
    Schema1BadHistory { index: usize, detail: String },
    #[error("no linux/amd64 image in the index; {}", describe_platforms(.found))]
    NoLinuxAmd64 { found: Vec<String> },
    #[error("manifest digest is {actual}, but {expected} was requested")]
    DigestMismatch { expected: String, actual: String },
    #[error("the image config says {found}; only linux/amd64 images can run")]
    WrongPlatform { found: String },
}

fn describe_platforms(found: &[String]) -> String {
    if found.is_empty() {
        "it lists no platforms".to_owned()
    } else {
        format!("it has {}", found.join(", "))
    }
}

/// Parses a manifest. Its kind comes from `content_type` when that names a manifest
/// type, else from the JSON's `mediaType`, else from its shape (registries sometimes
/// answer `application/json`).
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Parsed, ManifestError> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge {
            size: bytes.len(),
            limit: MAX_MANIFEST_BYTES,
        });
    }
    let document: Value =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::NotJson(e.to_string()))?;
    if !document.is_object() {
        return Err(ManifestError::NotAnObject);
    }
    let kind = detect_kind(&document, content_type)?;
    match kind {
        ManifestKind::OciIndex | ManifestKind::DockerList => {
            parse_index(kind, document).map(Parsed::Index)
        }
        ManifestKind::OciManifest | ManifestKind::DockerV2 => {
            parse_image(kind, document).map(Parsed::Image)
        }
        ManifestKind::DockerV1 | ManifestKind::DockerV1Signed => {
            parse_schema1(kind, document).map(Parsed::Image)
        }
    }
}

fn detect_kind(
    document: &Value,
    content_type: Option<&str>,
) -> Result<ManifestKind, ManifestError> {
    // Drop parameters such as `; charset=utf-8`.
    let header = content_type.map(|ct| ct.split_once(';').map_or(ct, |(mime, _)| mime).trim());
    if let Some(kind) = header.and_then(ManifestKind::from_media_type) {
        return Ok(kind);
    }
    match document.get("mediaType") {
        Some(Value::String(media_type)) => {
            return ManifestKind::from_media_type(media_type)
                .ok_or_else(|| ManifestError::UnknownMediaType(media_type.clone()));
        }
        Some(other) => {
            return Err(ManifestError::UnknownMediaType(other.to_string()));
        }
        None => {}
    }
    // OCI made mediaType optional at first, so old OCI documents are told by shape.
    match document.get("schemaVersion").and_then(Value::as_u64) {
        Some(1) if document.get("signatures").is_some() => Ok(ManifestKind::DockerV1Signed),
        Some(1) => Ok(ManifestKind::DockerV1),
        Some(2) if document.get("manifests").is_some() => Ok(ManifestKind::OciIndex),
        Some(2) if document.get("config").is_some() => Ok(ManifestKind::OciManifest),
        _ => Err(ManifestError::UnknownKind {
            content_type: header.map_or_else(|| "missing".to_owned(), |h| format!("{h:?}")),
        }),
    }
}

fn deserialize<T: serde::de::DeserializeOwned>(
    kind: ManifestKind,
    document: Value,
) -> Result<T, ManifestError> {
    serde_json::from_value(document).map_err(|e| ManifestError::Malformed {
        media_type: kind.media_type(),
        detail: e.to_string(),
    })
}

fn check_schema_version(
    kind: ManifestKind,
    found: Option<u64>,
    expected: u64,
) -> Result<(), ManifestError> {
    if found == Some(expected) {
        return Ok(());
    }
    Err(ManifestError::SchemaVersion {
        media_type: kind.media_type(),
        found: found.map_or_else(|| "missing".to_owned(), |v| v.to_string()),
        expected,
    })
}

fn check_digest(context: impl FnOnce() -> String, digest: &str) -> Result<(), ManifestError> {
    validate_digest(digest).map_err(|problem| ManifestError::BadDigest {
        context: context(),
        problem,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawIndex {
    schema_version: Option<u64>,
    manifests: Vec<Descriptor>,
}

fn parse_index(kind: ManifestKind, document: Value) -> Result<Index, ManifestError> {
    let raw: RawIndex = deserialize(kind, document)?;
    check_schema_version(kind, raw.schema_version, 2)?;
    for (i, entry) in raw.manifests.iter().enumerate() {
        check_digest(|| format!("manifests[{i}]"), &entry.digest)?;
    }
    Ok(Index {
        kind,
        manifests: raw.manifests,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawImageManifest {
    schema_version: Option<u64>,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

fn parse_image(kind: ManifestKind, document: Value) -> Result<ImageManifest, ManifestError> {
    let raw: RawImageManifest = deserialize(kind, document)?;
    check_schema_version(kind, raw.schema_version, 2)?;

    let config = raw.config;
    check_digest(|| "config".to_owned(), &config.digest)?;
    if config.media_type != OCI_CONFIG && config.media_type != DOCKER_CONFIG {
        return Err(ManifestError::UnknownConfigMediaType {
            media_type: config.media_type,
            digest: config.digest,
        });
    }

    let layers =
        raw.layers
            .into_iter()
            .enumerate()
            .map(|(i, layer)| {
                check_digest(|| format!("layers[{i}]"), &layer.digest)?;
                let compression = Compression::from_layer_media_type(&layer.media_type)
                    .ok_or_else(|| ManifestError::UnknownLayerMediaType {
                        media_type: layer.media_type.clone(),
                        digest: layer.digest.clone(),
                    })?;
                Ok(Layer {
                    digest: layer.digest,
                    size: layer.size,
                    compression,
                    urls: layer.urls,
                })
            })
            .collect::<Result<_, ManifestError>>()?;

    Ok(ImageManifest {
        kind,
        config: ConfigSource::Blob(config),
        layers,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSchema1 {
    schema_version: Option<u64>,
    architecture: Option<String>,
    fs_layers: Vec<FsLayer>,
    history: Vec<V1History>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FsLayer {
    blob_sum: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V1History {
    v1_compatibility: String,
}

/// The runtime settings carried over from a schema1 image's config.
const SCHEMA1_CONFIG_KEYS: [&str; 7] = [
    "Env",
    "Entrypoint",
    "Cmd",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Labels",
];

fn parse_schema1(kind: ManifestKind, document: Value) -> Result<ImageManifest, ManifestError> {
    // The JWS signatures are not checked: Docker never verified them either, and the
    // content is pinned by its payload digest or trusted by tag like every other kind.
    let raw: RawSchema1 = deserialize(kind, document)?;
    check_schema_version(kind, raw.schema_version, 1)?;
    if raw.fs_layers.len() != raw.history.len() {
        return Err(ManifestError::Schema1LengthMismatch {
            layers: raw.fs_layers.len(),
            history: raw.history.len(),
        });
    }
    let history = raw
        .history
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let bad = |detail: String| ManifestError::Schema1BadHistory { index, detail };
            match serde_json::from_str(&entry.v1_compatibility) {
                Ok(Value::Object(fields)) => Ok(fields),
                Ok(other) => Err(bad(format!("found {other}"))),
                Err(e) => Err(bad(e.to_string())),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Both lists run newest first; the newest entry describes the whole image.
    let newest = history.first().ok_or(ManifestError::Schema1Empty)?;
    let config = schema1_config(newest, raw.architecture.as_deref());

    let mut layers = Vec::new();
    for (i, (fs_layer, entry)) in raw.fs_layers.iter().zip(&history).enumerate().rev() {
        check_digest(|| format!("fsLayers[{i}]"), &fs_layer.blob_sum)?;
        // Throwaway entries record metadata-only steps (CMD, ENV) with an empty layer.
        if entry.get("throwaway") == Some(&Value::Bool(true)) {
            continue;
        }
        layers.push(Layer {
            digest: fs_layer.blob_sum.clone(),
            size: None,
            compression: Compression::Gzip,
            urls: Vec::new(),
        });
    }

    Ok(ImageManifest {
        kind,
        config: ConfigSource::Embedded(config),
        layers,
    })
}

fn schema1_config(newest: &Map<String, Value>, manifest_architecture: Option<&str>) -> Value {
    let mut config = Map::new();
    let architecture = newest
        .get("architecture")
        .cloned()
        .or_else(|| manifest_architecture.map(Value::from));
    if let Some(architecture) = architecture {
        config.insert("architecture".to_owned(), architecture);
    }
    for key in ["os", "created"] {
        if let Some(value) = newest.get(key) {
            config.insert(key.to_owned(), value.clone());
        }
    }
    let mut runtime = Map::new();
    if let Some(Value::Object(settings)) = newest.get("config") {
        for key in SCHEMA1_CONFIG_KEYS {
            match settings.get(key) {
                Some(Value::Null) | None => {}
                Some(value) => {
                    runtime.insert(key.to_owned(), value.clone());
                }
            }
        }
    }
    config.insert("config".to_owned(), Value::Object(runtime));
    Value::Object(config)
}

/// The digest a registry gives a signed schema1 manifest: that of its payload, the document
/// without its `signatures`, which libtrust rebuilds from the JWS protected header as the
/// first `formatLength` bytes of the body followed by the base64url `formatTail`. The body
/// itself never hashes to it, since the registry signs anew on every GET.
pub fn signed_schema1_payload_digest(bytes: &[u8]) -> Result<String, ManifestError> {
    use base64::Engine as _;
    let malformed = |detail: String| ManifestError::Malformed {
        media_type: DOCKER_MANIFEST_V1_SIGNED,
        detail,
    };
    let b64 = |text: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|e| malformed(format!("bad base64url in the signature header: {e}")))
    };
    let doc: Value =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::NotJson(e.to_string()))?;
    let protected = doc["signatures"][0]["protected"]
        .as_str()
        .ok_or_else(|| malformed("no signatures[0].protected header".into()))?;
    let header: Value = serde_json::from_slice(&b64(protected)?)
        .map_err(|e| malformed(format!("signature header is not JSON: {e}")))?;
    let length = header["formatLength"]
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n <= bytes.len())
        .ok_or_else(|| malformed("formatLength is missing or past the end".into()))?;
    let tail = b64(header["formatTail"]
        .as_str()
        .ok_or_else(|| malformed("no formatTail".into()))?)?;
    let mut payload = bytes[..length].to_vec();
    payload.extend_from_slice(&tail);
    Ok(digest_of(&payload))
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Checks a manifest fetched by digest against that digest.
pub fn verify_digest(bytes: &[u8], expected: &str) -> Result<(), ManifestError> {
    check_digest(|| "the expected manifest".to_owned(), expected)?;
    let actual = digest_of(bytes);
    if actual == expected {
        Ok(())
    } else {
        Err(ManifestError::DigestMismatch {
            expected: expected.to_owned(),
            actual,
        })
    }
}

/// Refuses an image config that is not for linux/amd64, the only platform homerun runs.
pub fn check_config_platform(config: &Value) -> Result<(), ManifestError> {
    let field = |name: &str| config.get(name).and_then(Value::as_str);
    match (field("os"), field("architecture")) {
        (Some("linux"), Some("amd64")) => Ok(()),
        (os, architecture) => {
            let mut found = format!(
                "{}/{}",
                os.unwrap_or("<no os>"),
                architecture.unwrap_or("<no architecture>")
            );
            if let Some(variant) = field("variant") {
                found = format!("{found}/{variant}");
            }
            Err(ManifestError::WrongPlatform { found })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Taken from the busybox test image.
    const BUSYBOX_OCI: &str = r#"{
  "config": {
    "digest": "sha256:84c92737af7070fb8e8b317b93b5199c1988cb934bf409a731e7eee9121b2639",
    "mediaType": "application/vnd.oci.image.config.v1+json",
    "size": 544
  },
  "layers": [
    {
      "digest": "sha256:d2ed5e72a42adc3675de05c4678cb2bb435e68ce3f1f099c7084dbd4e64bb58d",
      "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
      "size": 1035965
    }
  ],
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "schemaVersion": 2
}"#;

    const THREE_LAYERS_OCI: &str = r#"{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {
    "mediaType": "application/vnd.oci.image.config.v1+json",
    "digest": "sha256:a7d1e975267d998f743664c5ddb9c32f8dd43211b46a17222aa973cbe10ae291",
    "size": 1069
  },
  "layers": [
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
      "digest": "sha256:2b32875deca9bf9950814f543d3fc5c3dd09129a35d6a0783094e5ba3bb82bb2",
      "size": 1828966
    },
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar",
      "digest": "sha256:8732f2e34e2d943828a70442f221c9c61973f66c8b1697b961afeddf22a54d76",
      "size": 4608
    },
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
      "digest": "sha256:9ddfcf2dc7edb068e7b756607c06888ca311d0688363b446acd47085e50c0d0d",
      "size": 141
    }
  ],
  "annotations": { "org.opencontainers.image.created": "2024-01-01T00:00:00Z" }
}"#;

    const DOCKER_V2: &str = r#"{
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
  "config": {
    "mediaType": "application/vnd.docker.container.image.v1+json",
    "size": 707,
    "digest": "sha256:13dd4998e5bb4381e4a23dd6996c9d6ea243c6349ec6bd2cad5fee2572898816"
  },
  "layers": [
    {
      "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
      "size": 1234,
      "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
      "urls": ["https://example.com/base-layer"]
    },
    {
      "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
      "size": 1827087,
      "digest": "sha256:b0637b5b15bdbd2d394f0cd4b02228b586c926d7ffcad59b89a9f2edd3e443e8"
    },
    {
      "mediaType": "application/vnd.docker.image.rootfs.diff.tar",
      "size": 10240,
      "digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222"
    }
  ]
}"#;

    // As BuildKit pushes it: two images plus their attestation manifests.
    const OCI_INDEX_WITH_ATTESTATIONS: &str = r#"{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "sha256:f6a59c658acca8350ab498041861cc624ffe7cf597a14f55fce38b760d5948b3",
      "size": 476,
      "platform": { "architecture": "arm64", "os": "linux", "variant": "v8" }
    },
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "sha256:4d0e9a9637329c4aeb09aa840dbf5da7ae724a205d732cbfdaa12e8646e2d0af",
      "size": 480,
      "platform": { "architecture": "amd64", "os": "linux" }
    },
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333",
      "size": 566,
      "annotations": {
        "vnd.docker.reference.digest": "sha256:4d0e9a9637329c4aeb09aa840dbf5da7ae724a205d732cbfdaa12e8646e2d0af",
        "vnd.docker.reference.type": "attestation-manifest"
      },
      "platform": { "architecture": "unknown", "os": "unknown" }
    }
  ]
}"#;

    const DOCKER_LIST: &str = r#"{
  "manifests": [
    {
      "digest": "sha256:6613b484490ae624d6e56a55f15a9544b17cde97ca2a28d891368296a882111d",
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "platform": { "architecture": "arm64", "os": "linux", "variant": "v8" },
      "size": 498
    },
    {
      "digest": "sha256:7b3c43c9912ef39977617e39307cde5fac36dcfbfd6f5d2a146778add499d121",
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "platform": { "architecture": "amd64", "os": "linux" },
      "size": 502
    }
  ],
  "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
  "schemaVersion": 2
}"#;

    // Newest first: a throwaway CMD step, an ADD layer, then the base layer.
    const SCHEMA1_SIGNED: &str = r##"{
   "schemaVersion": 1,
   "name": "library/hello-world",
   "tag": "latest",
   "architecture": "amd64",
   "fsLayers": [
      { "blobSum": "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4" },
      { "blobSum": "sha256:03f4658f8b782e12230c1783426bd3bacce651ce582a4ffb6fbbfa2079428ecb" },
      { "blobSum": "sha256:6c8d3d6e8aa7e7d5bb49bd7e1a5e8a14ad1d1b4b4f2a1f9e2e0f8d6a0b4c5d6e" }
   ],
   "history": [
      {
         "v1Compatibility": "{\"architecture\":\"amd64\",\"config\":{\"Hostname\":\"8e2caa5a514b\",\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],\"Cmd\":[\"/hello\"],\"Entrypoint\":null,\"WorkingDir\":\"/srv\",\"User\":\"1000:1000\",\"ExposedPorts\":{\"8080/tcp\":{}},\"Labels\":{\"maintainer\":\"someone\"}},\"container\":\"8e2caa5a514b\",\"created\":\"2016-09-23T18:08:50.537223822Z\",\"docker_version\":\"1.12.1\",\"id\":\"e1e8d1e5d6a5e58b2b1e3d8b0a4ac8ea7c3a5a1d4e3b8b1c1f8f1f6f3e3f9d1a\",\"os\":\"linux\",\"parent\":\"9b4f9ad2b5c2a8b8d3b6a0f6d3c0c9f5c8d1e8f1a9d2c6b0e5f4a3b2c1d0e9f8\",\"throwaway\":true}"
      },
      {
         "v1Compatibility": "{\"id\":\"9b4f9ad2b5c2a8b8d3b6a0f6d3c0c9f5c8d1e8f1a9d2c6b0e5f4a3b2c1d0e9f8\",\"parent\":\"1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d\",\"created\":\"2016-09-23T18:08:50.2Z\",\"container_config\":{\"Cmd\":[\"/bin/sh -c #(nop) COPY file:a9b7c2 in /\"]}}"
      },
      {
         "v1Compatibility": "{\"id\":\"1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d\",\"created\":\"2016-09-20T18:08:50.1Z\",\"container_config\":{\"Cmd\":[\"/bin/sh -c #(nop) ADD file:0a1b2c in /\"]}}"
      }
   ],
   "signatures": [
      {
         "header": {
            "jwk": {
               "crv": "P-256",
               "kid": "OD6I:6DRK:JXEJ:KBM4:255X:NSAA:MUSF:E4VM:ZI6W:CUN2:L4Z6:LSF4",
               "kty": "EC",
               "x": "3gAwX48IQ5oaYQAYSxor6rYYc_6yjuLCjtQ9LUakg4A",
               "y": "t72ge6kIA1XOjqjVoEOiPPAURltJFBMGDSQvEGVB010"
            },
            "alg": "ES256"
         },
         "signature": "XREm0L8WNn27Ga_iE_vRnTxVMhhYY0Zst_FfkKopg6gWSoTOZTuW4rK0fg_IqnKkEKlbD83tD46LKEGi5aIVFg",
         "protected": "eyJmb3JtYXRMZW5ndGgiOjY2MjgsImZvcm1hdFRhaWwiOiJDbjAiLCJ0aW1lIjoiMjAxNS0wNC0wOFQxODo1Mjo1OVoifQ"
      }
   ]
}"##;

    const SCHEMA1_UNSIGNED: &str = r#"{
   "schemaVersion": 1,
   "name": "team/app",
   "tag": "v1",
   "architecture": "amd64",
   "fsLayers": [
      { "blobSum": "sha256:03f4658f8b782e12230c1783426bd3bacce651ce582a4ffb6fbbfa2079428ecb" }
   ],
   "history": [
      { "v1Compatibility": "{\"id\":\"abc\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"/app\"]}}" }
   ]
}"#;

    fn parse_ok(bytes: &str, content_type: Option<&str>) -> Parsed {
        parse(bytes.as_bytes(), content_type).unwrap_or_else(|e| panic!("{e}"))
    }

    fn image(bytes: &str, content_type: Option<&str>) -> ImageManifest {
        match parse_ok(bytes, content_type) {
            Parsed::Image(image) => image,
            Parsed::Index(index) => panic!("expected an image, got {index:?}"),
        }
    }

    fn index(bytes: &str) -> Index {
        match parse_ok(bytes, None) {
            Parsed::Index(index) => index,
            Parsed::Image(image) => panic!("expected an index, got {image:?}"),
        }
    }

    fn error(bytes: &str, content_type: Option<&str>) -> String {
        match parse(bytes.as_bytes(), content_type) {
            Ok(parsed) => panic!("expected an error, got {parsed:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn edited(sample: &str, edit: impl FnOnce(&mut Value)) -> String {
        let mut value: Value = serde_json::from_str(sample).expect("sample is JSON");
        edit(&mut value);
        value.to_string()
    }

    fn index_of(platforms: Value) -> String {
        let manifests: Vec<Value> = platforms
            .as_array()
            .expect("array")
            .iter()
            .enumerate()
            .map(|(i, platform)| {
                json!({
                    "mediaType": OCI_MANIFEST,
                    "digest": format!("sha256:{}", format!("{i:x}").repeat(64)),
                    "size": 100,
                    "platform": platform,
                })
            })
            .collect();
        json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests }).to_string()
    }

    #[test]
    fn oci_manifest() {
        let manifest = image(BUSYBOX_OCI, Some(OCI_MANIFEST));
        assert_eq!(manifest.kind, ManifestKind::OciManifest);
        let ConfigSource::Blob(config) = &manifest.config else {
            panic!("OCI config is a blob")
        };
        assert_eq!(config.media_type, OCI_CONFIG);
        assert_eq!(
            config.digest,
            "sha256:84c92737af7070fb8e8b317b93b5199c1988cb934bf409a731e7eee9121b2639"
        );
        assert_eq!(config.size, Some(544));
        assert_eq!(
            manifest.layers,
            vec![Layer {
                digest: "sha256:d2ed5e72a42adc3675de05c4678cb2bb435e68ce3f1f099c7084dbd4e64bb58d"
                    .into(),
                size: Some(1035965),
                compression: Compression::Gzip,
                urls: vec![],
            }]
        );
    }

    #[test]
    fn oci_layer_compressions_in_order() {
        let manifest = image(THREE_LAYERS_OCI, None);
        let compressions: Vec<_> = manifest.layers.iter().map(|l| l.compression).collect();
        assert_eq!(
            compressions,
            [Compression::Gzip, Compression::None, Compression::Zstd]
        );
        assert_eq!(manifest.layers[2].size, Some(141));
    }

    #[test]
    fn media_type_sources() {
        // From the JSON when the header is generic or absent.
        assert_eq!(
            parse_ok(BUSYBOX_OCI, Some("application/json")).kind(),
            ManifestKind::OciManifest
        );
        assert_eq!(parse_ok(DOCKER_V2, None).kind(), ManifestKind::DockerV2);
        // Header parameters and case do not matter.
        let header = "Application/VND.oci.image.manifest.v1+json; charset=utf-8";
        assert_eq!(
            parse_ok(BUSYBOX_OCI, Some(header)).kind(),
            ManifestKind::OciManifest
        );
        // A known header wins over the body.
        assert_eq!(
            parse_ok(DOCKER_V2, Some(OCI_MANIFEST)).kind(),
            ManifestKind::OciManifest
        );
        // Old OCI documents without mediaType are told by shape.
        let bare = edited(BUSYBOX_OCI, |v| {
            v.as_object_mut().map(|o| o.remove("mediaType"));
        });
        assert_eq!(
            parse_ok(&bare, Some("application/json")).kind(),
            ManifestKind::OciManifest
        );
        let bare_index = edited(OCI_INDEX_WITH_ATTESTATIONS, |v| {
            v.as_object_mut().map(|o| o.remove("mediaType"));
        });
        assert_eq!(parse_ok(&bare_index, None).kind(), ManifestKind::OciIndex);
    }

    #[test]
    fn unknown_media_types() {
        let artifact = edited(BUSYBOX_OCI, |v| {
            v["mediaType"] = json!("application/vnd.oci.artifact.manifest.v1+json");
        });
        assert_eq!(
            error(&artifact, Some("application/json")),
            r#"unsupported manifest media type "application/vnd.oci.artifact.manifest.v1+json""#
        );
        assert_eq!(
            error(r#"{"hello": "world"}"#, Some("text/plain")),
            "cannot tell what kind of manifest this is: the content type is \"text/plain\" \
             and the JSON has no mediaType and no recognisable schemaVersion"
        );
        assert!(error(r#"{"schemaVersion": 3}"#, None).contains("the content type is missing"));
        assert!(
            error(r#"{"mediaType": 7}"#, None).contains("unsupported manifest media type \"7\"")
        );
    }

    #[test]
    fn docker_schema2_with_foreign_and_uncompressed_layers() {
        let manifest = image(DOCKER_V2, Some(DOCKER_MANIFEST_V2));
        assert_eq!(manifest.kind, ManifestKind::DockerV2);
        let ConfigSource::Blob(config) = &manifest.config else {
            panic!("schema2 config is a blob")
        };
        assert_eq!(config.media_type, DOCKER_CONFIG);
        let layers = &manifest.layers;
        assert_eq!(layers.len(), 3);
        assert_eq!(layers[0].compression, Compression::Gzip);
        assert_eq!(layers[0].urls, ["https://example.com/base-layer"]);
        assert_eq!(layers[1].compression, Compression::Gzip);
        assert_eq!(layers[2].compression, Compression::None);
    }

    #[test]
    fn every_layer_media_type() {
        let cases = [
            ("application/vnd.oci.image.layer.v1.tar", Compression::None),
            (
                "application/vnd.oci.image.layer.v1.tar+gzip",
                Compression::Gzip,
            ),
            (
                "application/vnd.oci.image.layer.v1.tar+zstd",
                Compression::Zstd,
            ),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar",
                Compression::None,
            ),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                Compression::Gzip,
            ),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
                Compression::Zstd,
            ),
            (
                "application/vnd.docker.image.rootfs.diff.tar",
                Compression::None,
            ),
            (
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                Compression::Gzip,
            ),
            (
                "application/vnd.docker.image.rootfs.diff.tar.zstd",
                Compression::Zstd,
            ),
            (
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                Compression::Gzip,
            ),
        ];
        for (media_type, compression) in cases {
            let sample = edited(BUSYBOX_OCI, |v| {
                v["layers"][0]["mediaType"] = json!(media_type)
            });
            assert_eq!(
                image(&sample, None).layers[0].compression,
                compression,
                "{media_type}"
            );
        }
    }

    #[test]
    fn unknown_layer_media_type_names_type_and_digest() {
        let sample = edited(THREE_LAYERS_OCI, |v| {
            v["layers"][1]["mediaType"] = json!("application/vnd.oci.image.layer.v1.tar+encrypted");
        });
        assert_eq!(
            error(&sample, None),
            "layer sha256:8732f2e34e2d943828a70442f221c9c61973f66c8b1697b961afeddf22a54d76 \
             has unsupported media type \"application/vnd.oci.image.layer.v1.tar+encrypted\""
        );
    }

    #[test]
    fn artifact_configs_are_refused() {
        let helm = edited(BUSYBOX_OCI, |v| {
            v["config"]["mediaType"] = json!("application/vnd.cncf.helm.config.v1+json");
        });
        let message = error(&helm, None);
        assert!(message.starts_with(
            "config sha256:84c92737af7070fb8e8b317b93b5199c1988cb934bf409a731e7eee9121b2639 \
             has media type \"application/vnd.cncf.helm.config.v1+json\", which is not a container image config"
        ), "{message}");
    }

    #[test]
    fn bad_digests_are_refused_everywhere() {
        let config = edited(BUSYBOX_OCI, |v| v["config"]["digest"] = json!("sha256:abc"));
        assert_eq!(
            error(&config, None),
            "config has a bad digest: digest \"sha256:abc\" is not \"sha256:\" followed by 64 lowercase hex digits"
        );
        let layer = edited(THREE_LAYERS_OCI, |v| {
            v["layers"][2]["digest"] = json!(format!("sha512:{}", "a".repeat(128)));
        });
        assert_eq!(
            error(&layer, None),
            "layers[2] has a bad digest: digest algorithm \"sha512\" is not supported; only sha256 is"
        );
        let upper = edited(DOCKER_LIST, |v| {
            v["manifests"][1]["digest"] = json!(format!("sha256:{}", "A".repeat(64)));
        });
        assert!(error(&upper, None).starts_with("manifests[1] has a bad digest"));
        let schema1 = edited(SCHEMA1_SIGNED, |v| {
            v["fsLayers"][0]["blobSum"] = json!("nope")
        });
        assert!(error(&schema1, None).starts_with("fsLayers[0] has a bad digest: digest \"nope\""));
    }

    #[test]
    fn schema_versions() {
        let v1 = edited(BUSYBOX_OCI, |v| v["schemaVersion"] = json!(1));
        assert_eq!(
            error(&v1, None),
            "application/vnd.oci.image.manifest.v1+json manifest has schemaVersion 1; expected 2"
        );
        let missing = edited(DOCKER_LIST, |v| {
            v.as_object_mut().map(|o| o.remove("schemaVersion"));
        });
        assert!(error(&missing, None).contains("manifest has schemaVersion missing; expected 2"));
        let schema1_as_2 = edited(SCHEMA1_UNSIGNED, |v| v["schemaVersion"] = json!(2));
        assert!(
            error(&schema1_as_2, Some(DOCKER_MANIFEST_V1)).contains("schemaVersion 2; expected 1")
        );
    }

    #[test]
    fn malformed_documents() {
        assert!(error("{not json", None).starts_with("manifest is not valid JSON: "));
        assert_eq!(error("[1, 2]", None), "manifest JSON is not an object");
        let no_layers = edited(BUSYBOX_OCI, |v| {
            v.as_object_mut().map(|o| o.remove("layers"));
        });
        assert_eq!(
            error(&no_layers, None),
            "malformed application/vnd.oci.image.manifest.v1+json manifest: missing field `layers`"
        );
    }

    #[test]
    fn size_limit() {
        let padded = format!(
            "{}{}",
            BUSYBOX_OCI,
            " ".repeat(MAX_MANIFEST_BYTES - BUSYBOX_OCI.len())
        );
        assert_eq!(padded.len(), MAX_MANIFEST_BYTES);
        image(&padded, None);
        let over = format!("{padded} ");
        assert_eq!(
            error(&over, None),
            "manifest is 4194305 bytes, over the 4194304-byte limit"
        );
    }

    #[test]
    fn oci_index_skips_attestations() {
        let index = index(OCI_INDEX_WITH_ATTESTATIONS);
        assert_eq!(index.kind, ManifestKind::OciIndex);
        assert_eq!(index.manifests.len(), 3);
        let chosen = index.select_linux_amd64().expect("has amd64");
        assert_eq!(
            chosen.digest,
            "sha256:4d0e9a9637329c4aeb09aa840dbf5da7ae724a205d732cbfdaa12e8646e2d0af"
        );
        assert_eq!(chosen.media_type, OCI_MANIFEST);
        assert_eq!(chosen.size, Some(480));
    }

    #[test]
    fn attestation_annotation_alone_is_skipped() {
        // Even if it claimed linux/amd64, an attestation is not the image.
        let sample = edited(OCI_INDEX_WITH_ATTESTATIONS, |v| {
            v["manifests"][2]["platform"] = json!({"os": "linux", "architecture": "amd64"});
            let manifests = v["manifests"].as_array_mut().expect("array");
            manifests.remove(1);
        });
        assert_eq!(
            index(&sample)
                .select_linux_amd64()
                .map(|d| d.digest.clone()),
            Err(ManifestError::NoLinuxAmd64 {
                found: vec!["linux/arm64/v8".into()]
            })
        );
    }

    #[test]
    fn docker_manifest_list() {
        let index = index(DOCKER_LIST);
        assert_eq!(index.kind, ManifestKind::DockerList);
        let chosen = index.select_linux_amd64().expect("has amd64");
        assert_eq!(
            chosen.digest,
            "sha256:7b3c43c9912ef39977617e39307cde5fac36dcfbfd6f5d2a146778add499d121"
        );
        assert_eq!(chosen.media_type, DOCKER_MANIFEST_V2);
        assert_eq!(
            index.manifests[0]
                .platform
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("linux/arm64/v8")
        );
    }

    #[test]
    fn no_amd64_lists_every_platform() {
        let sample = index_of(json!([
            {"os": "linux", "architecture": "arm64", "variant": "v8"},
            {"os": "linux", "architecture": "s390x"},
            {"os": "linux", "architecture": "s390x"},
            {"os": "unknown", "architecture": "unknown"},
            {"os": "windows", "architecture": "amd64"},
        ]));
        let err = index(&sample)
            .select_linux_amd64()
            .expect_err("no linux/amd64");
        assert_eq!(
            err.to_string(),
            "no linux/amd64 image in the index; it has linux/arm64/v8, linux/s390x, windows/amd64"
        );
    }

    #[test]
    fn entries_without_platform_are_skipped() {
        let sample = edited(DOCKER_LIST, |v| {
            for entry in v["manifests"].as_array_mut().expect("array") {
                entry.as_object_mut().map(|o| o.remove("platform"));
            }
        });
        assert_eq!(
            index(&sample)
                .select_linux_amd64()
                .expect_err("none")
                .to_string(),
            "no linux/amd64 image in the index; it lists no platforms"
        );
    }

    #[test]
    fn amd64_baseline_is_preferred_over_newer_variants() {
        let sample = index_of(json!([
            {"os": "linux", "architecture": "amd64", "variant": "v3"},
            {"os": "linux", "architecture": "amd64"},
        ]));
        let mixed = index(&sample);
        assert_eq!(
            mixed.select_linux_amd64().map(|d| &d.digest),
            Ok(&mixed.manifests[1].digest)
        );
        // With no baseline build, a newer variant is still taken.
        let only_v3 = index(&index_of(json!([
            {"os": "linux", "architecture": "amd64", "variant": "v3"},
        ])));
        assert_eq!(
            only_v3.select_linux_amd64().map(|d| &d.digest),
            Ok(&only_v3.manifests[0].digest)
        );
    }

    #[test]
    fn signed_schema1() {
        let manifest = image(SCHEMA1_SIGNED, Some(DOCKER_MANIFEST_V1_SIGNED));
        assert_eq!(manifest.kind, ManifestKind::DockerV1Signed);
        // Reversed to base first, with the throwaway CMD layer dropped.
        let digests: Vec<_> = manifest.layers.iter().map(|l| l.digest.as_str()).collect();
        assert_eq!(
            digests,
            [
                "sha256:6c8d3d6e8aa7e7d5bb49bd7e1a5e8a14ad1d1b4b4f2a1f9e2e0f8d6a0b4c5d6e",
                "sha256:03f4658f8b782e12230c1783426bd3bacce651ce582a4ffb6fbbfa2079428ecb",
            ]
        );
        assert!(manifest
            .layers
            .iter()
            .all(|l| l.compression == Compression::Gzip && l.size.is_none()));
        assert_eq!(
            manifest.config,
            ConfigSource::Embedded(json!({
                "architecture": "amd64",
                "os": "linux",
                "created": "2016-09-23T18:08:50.537223822Z",
                "config": {
                    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                    "Cmd": ["/hello"],
                    "WorkingDir": "/srv",
                    "User": "1000:1000",
                    "ExposedPorts": {"8080/tcp": {}},
                    "Labels": {"maintainer": "someone"},
                },
            }))
        );
    }

    #[test]
    fn schema1_detected_without_a_media_type() {
        // Registries sometimes answer schema1 as application/json.
        assert_eq!(
            parse_ok(SCHEMA1_SIGNED, Some("application/json")).kind(),
            ManifestKind::DockerV1Signed
        );
        let manifest = image(SCHEMA1_UNSIGNED, Some("application/json"));
        assert_eq!(manifest.kind, ManifestKind::DockerV1);
        assert_eq!(manifest.layers.len(), 1);
        // The architecture falls back to the manifest's own field.
        let ConfigSource::Embedded(config) = &manifest.config else {
            panic!("schema1 config is embedded")
        };
        assert_eq!(
            config,
            &json!({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/app"]}})
        );
        assert_eq!(check_config_platform(config), Ok(()));
    }

    #[test]
    fn schema1_errors() {
        let mismatch = edited(SCHEMA1_SIGNED, |v| {
            v["history"].as_array_mut().map(Vec::pop);
        });
        assert_eq!(
            error(&mismatch, None),
            "schema1 manifest has 3 fsLayers but 2 history entries"
        );
        let empty = edited(SCHEMA1_UNSIGNED, |v| {
            v["fsLayers"] = json!([]);
            v["history"] = json!([]);
        });
        assert_eq!(error(&empty, None), "schema1 manifest has no layers");
        let bad_history = edited(SCHEMA1_SIGNED, |v| {
            v["history"][1]["v1Compatibility"] = json!("{oops")
        });
        assert!(error(&bad_history, None)
            .starts_with("schema1 history[1].v1Compatibility is not a JSON object: "));
        let not_object = edited(SCHEMA1_SIGNED, |v| {
            v["history"][0]["v1Compatibility"] = json!("[]")
        });
        assert_eq!(
            error(&not_object, None),
            "schema1 history[0].v1Compatibility is not a JSON object: found []"
        );
    }

    #[test]
    fn digest_verification() {
        let digest = digest_of(b"");
        assert_eq!(
            digest,
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(verify_digest(b"", &digest), Ok(()));
        assert_eq!(
            verify_digest(b"tampered", &digest).map_err(|e| e.to_string()),
            Err(format!(
                "manifest digest is {}, but {digest} was requested",
                digest_of(b"tampered")
            ))
        );
        assert_eq!(
            verify_digest(b"", "sha256:E3B0").map_err(|e| e.to_string()),
            Err("the expected manifest has a bad digest: digest \"sha256:E3B0\" is not \"sha256:\" followed by 64 lowercase hex digits".into())
        );
        let busybox = "sha256:96c410f923517233a357907a30201b990f73e2b12f8b00e6adb6b5b08e27b2d2";
        assert_eq!(
            verify_digest(BUSYBOX_OCI.as_bytes(), busybox),
            Ok(()),
            "fixture bytes"
        );
    }

    #[test]
    fn config_platform() {
        assert_eq!(
            check_config_platform(&json!({"os": "linux", "architecture": "amd64"})),
            Ok(())
        );
        let message = |config: Value| check_config_platform(&config).map_err(|e| e.to_string());
        assert_eq!(
            message(json!({"os": "linux", "architecture": "arm64", "variant": "v8"})),
            Err("the image config says linux/arm64/v8; only linux/amd64 images can run".into())
        );
        assert_eq!(
            message(json!({"os": "windows", "architecture": "amd64"})),
            Err("the image config says windows/amd64; only linux/amd64 images can run".into())
        );
        assert_eq!(
            message(json!({"config": {}})),
            Err(
                "the image config says <no os>/<no architecture>; only linux/amd64 images can run"
                    .into()
            )
        );
    }

    #[test]
    fn platform_display() {
        let platform = |variant: Option<&str>| Platform {
            os: "linux".into(),
            architecture: "arm".into(),
            variant: variant.map(Into::into),
        };
        assert_eq!(platform(None).to_string(), "linux/arm");
        assert_eq!(platform(Some("v7")).to_string(), "linux/arm/v7");
    }

    #[test]
    fn media_type_names_round_trip() {
        for media_type in ACCEPTED_MEDIA_TYPES {
            let kind = ManifestKind::from_media_type(media_type).expect("known");
            assert_eq!(kind.media_type(), media_type);
        }
        assert_eq!(ManifestKind::from_media_type(OCI_CONFIG), None);
    }
}
