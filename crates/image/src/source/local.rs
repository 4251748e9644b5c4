//! Local image sources: an OCI image layout directory (`oci:DIR[:tag]`), a tar of one
//! (`oci-archive:FILE`), and what `docker save` writes (`docker-archive:FILE`).
//!
//! Archives are never extracted: one pass over the tar headers records where each file's
//! bytes lie, and files are then served by seeking into the archive. Nothing is ever
//! written. Digests are checked by the caller, not here, except that every digest is
//! validated before it becomes part of a path, so none can name a file outside `blobs/`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::{Blob, RawManifest, SourceError};
use crate::manifest::{digest_of, DOCKER_CONFIG, DOCKER_MANIFEST_V2, MAX_MANIFEST_BYTES};
use crate::reference::{validate_digest, ImageSource};

/// The marker file of an OCI image layout, and its only version so far.
const OCI_LAYOUT_FILE: &str = "oci-layout";
const OCI_LAYOUT_VERSION: &str = "1.0.0";
const OCI_INDEX_FILE: &str = "index.json";
/// The annotation an OCI layout's `index.json` tags its images with.
const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// `docker save`'s list of the images in the archive.
const DOCKER_MANIFEST_FILE: &str = "manifest.json";

const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// Read size when streaming or hashing a blob.
const CHUNK: usize = 64 * 1024;
/// Bound on following links inside an archive, so a link cycle ends.
const MAX_LINK_HOPS: usize = 16;

/// An opened local image: an OCI layout (directory or archive) or a `docker save` archive.
#[derive(Debug)]
pub struct LocalSource {
    files: Files,
    image: LocalImage,
}

#[derive(Debug)]
enum LocalImage {
    /// An OCI layout: the `index.json` entry the source names, and every entry (whose media
    /// types are reported when one of them is fetched by digest).
    Layout {
        chosen: IndexEntry,
        listed: Vec<IndexEntry>,
    },
    /// A `docker save` archive: the schema2 manifest synthesized from its `manifest.json`,
    /// and the archive entry holding each blob, by digest.
    Docker {
        manifest: RawManifest,
        blobs: HashMap<String, String>,
    },
}

impl LocalSource {
    /// Opens an `oci:`, `oci-archive:` or `docker-archive:` source, reading its index (and
    /// hashing a docker archive's files, which name no digests of their own).
    pub async fn open(image: &ImageSource) -> Result<Self, SourceError> {
        match image {
            ImageSource::OciLayout { dir, tag } => {
                check_is_dir(dir).await?;
                Self::open_layout(Files::Dir(dir.clone()), tag.as_deref()).await
            }
            ImageSource::OciArchive(path) => {
                let owned = path.clone();
                let index = blocking(path, move || TarIndex::scan(&owned)).await?;
                Self::open_layout(Files::Archive(index), None).await
            }
            ImageSource::DockerArchive(path) => {
                let owned = path.clone();
                let (index, image) = blocking(path, move || open_docker_archive(&owned)).await?;
                Ok(Self {
                    files: Files::Archive(index),
                    image,
                })
            }
            ImageSource::Registry(reference) => Err(invalid(
                reference.to_string(),
                "a registry reference is not a local image source",
            )),
        }
    }

    /// The manifest or index the source names (`digest` None), or the one with `digest`
    /// (an entry of that index).
    pub async fn manifest(&self, digest: Option<&str>) -> Result<RawManifest, SourceError> {
        match (&self.image, digest) {
            (LocalImage::Layout { chosen, .. }, None) => {
                self.read_manifest(&chosen.digest, chosen.media_type.clone())
                    .await
            }
            (LocalImage::Layout { listed, .. }, Some(digest)) => {
                // A digest listed in index.json comes with a declared media type; one from
                // inside an index does not, and the document's own mediaType must serve.
                let media_type = listed
                    .iter()
                    .find(|entry| entry.digest == digest)
                    .and_then(|entry| entry.media_type.clone());
                self.read_manifest(digest, media_type).await
            }
            (LocalImage::Docker { manifest, .. }, None) => Ok(manifest.clone()),
            (LocalImage::Docker { manifest, .. }, Some(digest)) => {
                if manifest.digest == digest {
                    return Ok(manifest.clone());
                }
                self.check_digest(digest)?;
                Err(self.blob_not_found(digest))
            }
        }
    }

    /// A stream of the blob's bytes, unverified.
    pub async fn blob(&self, digest: &str) -> Result<Blob, SourceError> {
        let name = match &self.image {
            LocalImage::Layout { .. } => self.blob_name(digest)?,
            LocalImage::Docker { blobs, .. } => {
                self.check_digest(digest)?;
                blobs
                    .get(digest)
                    .cloned()
                    .ok_or_else(|| self.blob_not_found(digest))?
            }
        };
        let (reader, size) = self
            .files
            .open(&name)
            .await?
            .ok_or_else(|| self.blob_not_found(digest))?;
        Ok(Blob {
            length: Some(size),
            stream: Box::pin(ReaderStream::with_capacity(reader, CHUNK)),
        })
    }

    async fn open_layout(files: Files, tag: Option<&str>) -> Result<Self, SourceError> {
        check_layout_marker(&files).await?;
        let bytes = files.require_small(OCI_INDEX_FILE).await?;
        let index: LayoutIndex = parse_json(&files, OCI_INDEX_FILE, &bytes)?;
        let chosen = choose_entry(&index.manifests, tag)
            .map_err(|detail| invalid(files.describe(OCI_INDEX_FILE), detail))?
            .clone();
        validate_digest(&chosen.digest).map_err(|e| {
            invalid(
                files.describe(OCI_INDEX_FILE),
                format!("the chosen entry has a bad digest: {e}"),
            )
        })?;
        tracing::debug!(
            source = %files.location(),
            digest = %chosen.digest,
            "opened OCI image layout"
        );
        Ok(Self {
            files,
            image: LocalImage::Layout {
                chosen,
                listed: index.manifests,
            },
        })
    }

    async fn read_manifest(
        &self,
        digest: &str,
        media_type: Option<String>,
    ) -> Result<RawManifest, SourceError> {
        let name = self.blob_name(digest)?;
        let bytes = self
            .files
            .read_small(&name)
            .await?
            .ok_or_else(|| self.blob_not_found(digest))?;
        Ok(RawManifest {
            digest: digest_of(&bytes),
            bytes,
            content_type: media_type,
        })
    }

    /// Where an OCI layout keeps the blob: the digest is validated first, so the name
    /// cannot leave `blobs/sha256/`.
    fn blob_name(&self, digest: &str) -> Result<String, SourceError> {
        self.check_digest(digest)?;
        let hex = digest.trim_start_matches("sha256:");
        Ok(format!("blobs/sha256/{hex}"))
    }

    fn check_digest(&self, digest: &str) -> Result<(), SourceError> {
        validate_digest(digest)
            .map_err(|e| invalid(self.files.location(), format!("refusing digest: {e}")))
    }

    fn blob_not_found(&self, digest: &str) -> SourceError {
        SourceError::NotFound {
            what: format!("blob {digest}"),
            source_name: self.files.location(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Files: a directory or an indexed archive, read the same way.

/// A reader over one file's bytes.
type Reader = Pin<Box<dyn AsyncRead + Send>>;

/// Where a local source's files are.
#[derive(Debug)]
enum Files {
    Dir(PathBuf),
    Archive(TarIndex),
}

impl Files {
    /// The directory or archive, for messages.
    fn location(&self) -> String {
        match self {
            Self::Dir(dir) => dir.display().to_string(),
            Self::Archive(index) => index.location(),
        }
    }

    /// One file of the source, for messages.
    fn describe(&self, name: &str) -> String {
        match self {
            Self::Dir(dir) => dir.join(name).display().to_string(),
            Self::Archive(index) => index.describe(name),
        }
    }

    /// The file's bytes and length, or None when there is no such file.
    async fn open(&self, name: &str) -> Result<Option<(Reader, u64)>, SourceError> {
        match self {
            Self::Dir(dir) => open_in_dir(&dir.join(name)).await,
            Self::Archive(index) => index.open(name).await,
        }
    }

    /// A small file (a manifest or index) whole, refused over [`MAX_MANIFEST_BYTES`].
    async fn read_small(&self, name: &str) -> Result<Option<Vec<u8>>, SourceError> {
        let Some((reader, size)) = self.open(name).await? else {
            return Ok(None);
        };
        check_small(&self.describe(name), size)?;
        let mut bytes = Vec::new();
        // The bound guards against a file that grew after it was measured.
        reader
            .take(MAX_MANIFEST_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| io_error(format!("reading {}", self.describe(name)), e))?;
        check_small(&self.describe(name), bytes.len() as u64)?;
        Ok(Some(bytes))
    }

    /// Like [`Self::read_small`], for files the format requires.
    async fn require_small(&self, name: &str) -> Result<Vec<u8>, SourceError> {
        self.read_small(name)
            .await?
            .ok_or_else(|| SourceError::NotFound {
                what: name.to_owned(),
                source_name: self.location(),
            })
    }
}

async fn check_is_dir(dir: &Path) -> Result<(), SourceError> {
    let metadata = tokio::fs::metadata(dir)
        .await
        .map_err(|e| io_error(format!("opening OCI layout {}", dir.display()), e))?;
    if metadata.is_dir() {
        Ok(())
    } else {
        Err(invalid(
            dir.display().to_string(),
            "not a directory; an oci: source is an OCI image layout directory \
             (use oci-archive: for a tar of one)",
        ))
    }
}

async fn open_in_dir(path: &Path) -> Result<Option<(Reader, u64)>, SourceError> {
    let file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(format!("opening {}", path.display()), e)),
    };
    let metadata = file
        .metadata()
        .await
        .map_err(|e| io_error(format!("reading {}", path.display()), e))?;
    if !metadata.is_file() {
        return Err(invalid(path.display().to_string(), "not a regular file"));
    }
    Ok(Some((Box::pin(file), metadata.len())))
}

fn check_small(what: &str, size: u64) -> Result<(), SourceError> {
    if size > MAX_MANIFEST_BYTES as u64 {
        return Err(SourceError::TooLarge {
            what: what.to_owned(),
            size,
            limit: MAX_MANIFEST_BYTES as u64,
        });
    }
    Ok(())
}

fn parse_json<T: DeserializeOwned>(
    files: &Files,
    name: &str,
    bytes: &[u8],
) -> Result<T, SourceError> {
    serde_json::from_slice(bytes)
        .map_err(|e| invalid(files.describe(name), format!("malformed JSON: {e}")))
}

// ---------------------------------------------------------------------------------------
// OCI image layouts.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutMarker {
    image_layout_version: String,
}

#[derive(Deserialize)]
struct LayoutIndex {
    manifests: Vec<IndexEntry>,
}

/// A descriptor of `index.json`, reduced to what choosing and fetching need.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexEntry {
    media_type: Option<String>,
    digest: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

impl IndexEntry {
    fn tag(&self) -> Option<&str> {
        self.annotations
            .get(REF_NAME_ANNOTATION)
            .map(String::as_str)
    }
}

async fn check_layout_marker(files: &Files) -> Result<(), SourceError> {
    let bytes = files.require_small(OCI_LAYOUT_FILE).await?;
    let marker: LayoutMarker = parse_json(files, OCI_LAYOUT_FILE, &bytes)?;
    if marker.image_layout_version == OCI_LAYOUT_VERSION {
        return Ok(());
    }
    Err(invalid(
        files.describe(OCI_LAYOUT_FILE),
        format!(
            "imageLayoutVersion is {:?}; only {OCI_LAYOUT_VERSION:?} is supported",
            marker.image_layout_version
        ),
    ))
}

/// The entry a tag names, or without a tag the only entry.
fn choose_entry<'a>(
    entries: &'a [IndexEntry],
    tag: Option<&str>,
) -> Result<&'a IndexEntry, String> {
    match (tag, entries) {
        (Some(tag), _) => entries
            .iter()
            .find(|entry| entry.tag() == Some(tag))
            .ok_or_else(|| format!("no image is tagged {tag:?}; {}", TagList(entries))),
        (None, [only]) => Ok(only),
        (None, []) => Err("lists no images".to_owned()),
        (None, _) => Err(format!(
            "lists {} images, so a tag must be given (oci:DIR:TAG); {}",
            entries.len(),
            TagList(entries)
        )),
    }
}

/// The tags of a layout's entries, for messages.
struct TagList<'a>(&'a [IndexEntry]);

impl fmt::Display for TagList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tags: Vec<&str> = self.0.iter().filter_map(IndexEntry::tag).collect();
        if tags.is_empty() {
            write!(f, "it tags no images")
        } else {
            write!(f, "the tags present are {}", tags.join(", "))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tar archives, indexed in place.

/// Where one file's bytes lie in an archive.
#[derive(Clone, Copy, Debug)]
struct Span {
    offset: u64,
    size: u64,
}

/// A tar archive's regular files by normalized name (no `./`), links resolved.
#[derive(Debug)]
struct TarIndex {
    path: PathBuf,
    files: HashMap<String, Span>,
}

/// An archive entry as scanned, before links are resolved.
enum Node {
    File(Span),
    /// A link, by the normalized name of its target.
    Link(String),
}

impl TarIndex {
    /// Reads the archive's headers once (seeking past file data). Entries named absolutely
    /// or with `..` make the whole archive refused: no sound image has them, so they mean a
    /// damaged or hostile archive, and saying so is clearer than a later "not found".
    fn scan(path: &Path) -> Result<Self, SourceError> {
        let location = path.display().to_string();
        let file = std::fs::File::open(path)
            .map_err(|e| io_error(format!("opening archive {location}"), e))?;
        let archive_len = file
            .metadata()
            .map_err(|e| io_error(format!("reading archive {location}"), e))?
            .len();
        let not_a_tar =
            |e: io::Error| invalid(&location, format!("not a readable tar archive: {e}"));
        let mut archive = tar::Archive::new(file);
        let mut nodes = HashMap::new();
        let mut entries_seen = 0usize;
        for entry in archive.entries_with_seek().map_err(not_a_tar)? {
            let entry = entry.map_err(not_a_tar)?;
            entries_seen += 1;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let name = entry_name(&raw).map_err(|problem| {
                invalid(
                    &location,
                    format!("refusing archive entry {raw:?}: {problem}"),
                )
            })?;
            // Seeking past the end goes unnoticed while scanning; say so now rather than
            // serve a short file later.
            if entry.raw_file_position().saturating_add(entry.size()) > archive_len {
                return Err(invalid(
                    &location,
                    format!("the archive is truncated: entry {raw:?} runs past its end"),
                ));
            }
            if let Some(node) = scanned_node(&entry, &name) {
                // As with extraction, a later entry of the same name replaces an earlier one.
                nodes.insert(name, node);
            }
        }
        if entries_seen == 0 {
            return Err(invalid(
                location,
                "the file holds no tar entries: it is empty or not a tar archive",
            ));
        }
        Ok(Self {
            path: path.to_owned(),
            files: resolve_links(&nodes),
        })
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn describe(&self, name: &str) -> String {
        format!("{name} in {}", self.path.display())
    }

    async fn open(&self, name: &str) -> Result<Option<(Reader, u64)>, SourceError> {
        let Some(span) = self.files.get(name).copied() else {
            return Ok(None);
        };
        let context = || format!("reading {}", self.describe(name));
        let mut file = tokio::fs::File::open(&self.path)
            .await
            .map_err(|e| io_error(context(), e))?;
        file.seek(SeekFrom::Start(span.offset))
            .await
            .map_err(|e| io_error(context(), e))?;
        Ok(Some((Box::pin(file.take(span.size)), span.size)))
    }
}

/// What an entry contributes to the index: regular files and links; directories and
/// special files are of no use to an image source.
fn scanned_node<R: Read>(entry: &tar::Entry<'_, R>, name: &str) -> Option<Node> {
    if name.is_empty() {
        return None;
    }
    let kind = entry.header().entry_type();
    if kind.is_file() {
        return Some(Node::File(Span {
            offset: entry.raw_file_position(),
            size: entry.size(),
        }));
    }
    let target = entry.link_name_bytes()?;
    let target = String::from_utf8_lossy(&target);
    // A symlink is relative to its own directory (Docker 25+ writes `<id>/layer.tar ->
    // ../blobs/sha256/<hex>`); a hard link names another entry from the archive root.
    let resolved = if kind.is_symlink() {
        let parent = name.rsplit_once('/').map_or("", |(dir, _)| dir);
        link_target(parent, &target)
    } else if kind.is_hard_link() {
        link_target("", &target)
    } else {
        None
    };
    resolved.map(Node::Link)
}

/// An entry's name with `.` and empty components dropped, or why it is refused.
fn entry_name(raw: &str) -> Result<String, &'static str> {
    if raw.starts_with('/') {
        return Err("absolute names are not allowed");
    }
    let mut parts = Vec::new();
    for component in raw.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err("`..` in a name could reach outside the archive"),
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

/// A link target as an archive name, resolved lexically from `base`; None when it is
/// absolute or climbs above the archive root, where nothing of the archive can be.
fn link_target(base: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = base.split('/').filter(|part| !part.is_empty()).collect();
    for component in target.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// Every name that is or leads to a regular file, with that file's span. Dangling links,
/// links to directories and cycles are dropped: they cannot be served.
fn resolve_links(nodes: &HashMap<String, Node>) -> HashMap<String, Span> {
    nodes
        .iter()
        .filter_map(|(name, node)| follow_link(nodes, node).map(|span| (name.clone(), span)))
        .collect()
}

fn follow_link<'a>(nodes: &'a HashMap<String, Node>, mut node: &'a Node) -> Option<Span> {
    for _ in 0..MAX_LINK_HOPS {
        match node {
            Node::File(span) => return Some(*span),
            Node::Link(target) => node = nodes.get(target)?,
        }
    }
    None
}

// ---------------------------------------------------------------------------------------
// docker-archive: `docker save` output.

/// One image of `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveImage {
    config: String,
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// A Docker schema2 manifest, as synthesized for the archive.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Schema2 {
    schema_version: u32,
    media_type: &'static str,
    config: OutDescriptor,
    layers: Vec<OutDescriptor>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutDescriptor {
    media_type: &'static str,
    size: u64,
    digest: String,
}

/// A file of the archive, hashed.
struct Member {
    name: String,
    digest: String,
    size: u64,
    /// The first bytes, enough to recognise a compressed layer.
    head: Vec<u8>,
}

/// Scans the archive, reads `manifest.json` and hashes the config and layers it names:
/// `docker save` records no digests of stored files, so the manifest is built from them.
fn open_docker_archive(path: &Path) -> Result<(TarIndex, LocalImage), SourceError> {
    let index = TarIndex::scan(path)?;
    let mut file = std::fs::File::open(path)
        .map_err(|e| io_error(format!("opening archive {}", index.location()), e))?;
    let image = read_image_list(&mut file, &index)?;
    let config = hash_named(&mut file, &index, "config", &image.config)?;
    let layers = image
        .layers
        .iter()
        .map(|layer| hash_named(&mut file, &index, "layer", layer))
        .collect::<Result<Vec<_>, _>>()?;
    let (manifest, blobs) = docker_manifest(config, layers)
        .map_err(|e| invalid(index.location(), format!("building a manifest: {e}")))?;
    tracing::debug!(
        source = %index.location(),
        digest = %manifest.digest,
        "opened docker archive"
    );
    Ok((index, LocalImage::Docker { manifest, blobs }))
}

/// The one image `manifest.json` lists.
fn read_image_list(
    file: &mut std::fs::File,
    index: &TarIndex,
) -> Result<ArchiveImage, SourceError> {
    let described = index.describe(DOCKER_MANIFEST_FILE);
    let span = index
        .files
        .get(DOCKER_MANIFEST_FILE)
        .copied()
        .ok_or_else(|| SourceError::NotFound {
            what: DOCKER_MANIFEST_FILE.to_owned(),
            source_name: index.location(),
        })?;
    check_small(&described, span.size)?;
    let bytes = read_span(file, span).map_err(|e| io_error(format!("reading {described}"), e))?;
    let images: Vec<ArchiveImage> = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(&described, format!("malformed JSON: {e}")))?;
    only_image(images).map_err(|detail| invalid(described, detail))
}

/// A file `manifest.json` names (as `role`), hashed.
fn hash_named(
    file: &mut std::fs::File,
    index: &TarIndex,
    role: &str,
    name: &str,
) -> Result<Member, SourceError> {
    let normalized = entry_name(name).map_err(|problem| {
        invalid(
            index.describe(DOCKER_MANIFEST_FILE),
            format!("refusing {role} {name:?}: {problem}"),
        )
    })?;
    let span = index
        .files
        .get(&normalized)
        .copied()
        .ok_or_else(|| SourceError::NotFound {
            what: format!("{role} {name:?} named by {DOCKER_MANIFEST_FILE}"),
            source_name: index.location(),
        })?;
    hash_member(file, normalized, span)
        .map_err(|e| io_error(format!("reading {}", index.describe(name)), e))
}

/// The single image of `manifest.json`: the `docker-archive:` form names no tag, so an
/// archive of several images is ambiguous.
fn only_image(mut images: Vec<ArchiveImage>) -> Result<ArchiveImage, String> {
    if images.len() > 1 {
        let tags: Vec<String> = images
            .iter()
            .map(|image| match image.repo_tags.as_deref() {
                Some(tags) if !tags.is_empty() => tags.join(" "),
                _ => "<untagged>".to_owned(),
            })
            .collect();
        return Err(format!(
            "lists {} images ({}); a docker-archive: source must hold exactly one",
            images.len(),
            tags.join(", ")
        ));
    }
    images.pop().ok_or_else(|| "lists no images".to_owned())
}

/// The schema2 manifest describing the hashed files, and the archive entry of each blob
/// by digest.
fn docker_manifest(
    config: Member,
    layers: Vec<Member>,
) -> Result<(RawManifest, HashMap<String, String>), serde_json::Error> {
    let descriptor = |member: &Member, media_type| OutDescriptor {
        media_type,
        size: member.size,
        digest: member.digest.clone(),
    };
    let manifest = Schema2 {
        schema_version: 2,
        media_type: DOCKER_MANIFEST_V2,
        config: descriptor(&config, DOCKER_CONFIG),
        layers: layers
            .iter()
            .map(|layer| descriptor(layer, layer_media_type(&layer.head)))
            .collect(),
    };
    let bytes = serde_json::to_vec(&manifest)?;
    let blobs = std::iter::once(config)
        .chain(layers)
        .map(|member| (member.digest, member.name))
        .collect();
    let manifest = RawManifest {
        digest: digest_of(&bytes),
        bytes,
        content_type: Some(DOCKER_MANIFEST_V2.to_owned()),
    };
    Ok((manifest, blobs))
}

/// `docker save` stores layers as they were: usually plain tars, but compressed ones
/// appear too (containerd-backed daemons keep the registry's blobs).
fn layer_media_type(head: &[u8]) -> &'static str {
    if head.starts_with(GZIP_MAGIC) {
        DOCKER_LAYER_GZIP
    } else if head.starts_with(ZSTD_MAGIC) {
        DOCKER_LAYER_ZSTD
    } else {
        DOCKER_LAYER_TAR
    }
}

fn read_span(file: &mut std::fs::File, span: Span) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(span.offset))?;
    let mut bytes = Vec::new();
    file.take(span.size).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn hash_member(file: &mut std::fs::File, name: String, span: Span) -> io::Result<Member> {
    file.seek(SeekFrom::Start(span.offset))?;
    let mut digester = Digester::default();
    let copied = io::copy(&mut file.take(span.size), &mut digester)?;
    if copied != span.size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "the archive ends {} bytes into a {}-byte file",
                copied, span.size
            ),
        ));
    }
    Ok(Member {
        name,
        digest: format!("sha256:{}", hex::encode(digester.hasher.finalize())),
        size: span.size,
        head: digester.head,
    })
}

/// A sink that hashes what is written and keeps its first bytes.
#[derive(Default)]
struct Digester {
    hasher: Sha256,
    head: Vec<u8>,
}

impl Digester {
    const HEAD_LEN: usize = 4;
}

impl Write for Digester {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let wanted = Self::HEAD_LEN
            .saturating_sub(self.head.len())
            .min(buf.len());
        self.head.extend_from_slice(&buf[..wanted]);
        self.hasher.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Helpers.

/// Runs blocking work (tar scans, hashing) off the async threads.
async fn blocking<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> Result<T, SourceError> + Send + 'static,
) -> Result<T, SourceError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| io_error(format!("reading {}", path.display()), io::Error::other(e)))?
}

fn invalid(source_name: impl Into<String>, detail: impl Into<String>) -> SourceError {
    SourceError::Invalid {
        source_name: source_name.into(),
        detail: detail.into(),
    }
}

fn io_error(context: String, source: io::Error) -> SourceError {
    SourceError::Io { context, source }
}
