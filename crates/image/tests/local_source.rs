//! Integration tests for `image::source::local`: the catalogue's OCI layouts and archives,
//! and damaged or hostile ones built here.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use image::manifest::{self, Compression, ConfigSource, ManifestKind, Parsed};
use image::reference::ImageSource;
use image::source::local::LocalSource;
use image::source::SourceError;
use sha2::{Digest, Sha256};
use testkit::Catalogue;

const LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
const LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";

/// The test images, or None (after saying why) when busybox is missing outside CI.
fn fixtures() -> Option<&'static Catalogue> {
    if !testkit::require(&["busybox"], false) {
        return None;
    }
    Some(testkit::catalogue().expect("building the test images"))
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn layout(dir: &Path, tag: Option<&str>) -> ImageSource {
    ImageSource::OciLayout {
        dir: dir.to_owned(),
        tag: tag.map(Into::into),
    }
}

async fn open(source: &ImageSource) -> LocalSource {
    match LocalSource::open(source).await {
        Ok(opened) => opened,
        Err(e) => panic!("opening {source}: {e}"),
    }
}

async fn open_err(source: &ImageSource) -> SourceError {
    match LocalSource::open(source).await {
        Ok(_) => panic!("{source} opened, but should have been refused"),
        Err(e) => e,
    }
}

/// The blob's bytes and the length its source announced.
async fn read_blob(source: &LocalSource, digest: &str) -> (Vec<u8>, Option<u64>) {
    let blob = source.blob(digest).await.expect("blob");
    let mut stream = blob.stream;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.expect("blob chunk"));
    }
    (bytes, blob.length)
}

async fn image_manifest(source: &LocalSource, digest: Option<&str>) -> manifest::ImageManifest {
    let raw = source.manifest(digest).await.expect("manifest");
    match manifest::parse(&raw.bytes, raw.content_type.as_deref()).expect("parses") {
        Parsed::Image(image) => image,
        Parsed::Index(_) => panic!("expected an image manifest, got an index"),
    }
}

fn config_digest(image: &manifest::ImageManifest) -> (String, Option<u64>) {
    match &image.config {
        ConfigSource::Blob(descriptor) => (descriptor.digest.clone(), descriptor.size),
        ConfigSource::Embedded(_) => panic!("expected a config blob"),
    }
}

/// Streams the config and every layer, checking each against its descriptor.
async fn check_every_blob(source: &LocalSource, image: &manifest::ImageManifest) {
    let config = config_digest(image);
    let layers = image.layers.iter().map(|l| (l.digest.clone(), l.size));
    for (digest, size) in std::iter::once(config).chain(layers) {
        let (bytes, length) = read_blob(source, &digest).await;
        assert_eq!(sha256(&bytes), digest);
        assert_eq!(Some(bytes.len() as u64), size, "{digest}");
        assert_eq!(length, size, "{digest}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A copy of the `probe` layout to damage.
fn probe_copy(cat: &Catalogue) -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = temp.path().join("probe");
    copy_dir(&cat.image("probe").path, &dir);
    (temp, dir)
}

fn message(e: &SourceError) -> String {
    e.to_string()
}

/// Builds a tar entry by entry, writing names as raw header bytes so that names the `tar`
/// crate's own builder refuses (`../evil`) can be written.
struct TarWriter {
    builder: tar::Builder<Vec<u8>>,
}

impl TarWriter {
    fn new() -> Self {
        Self {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, name: &str, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_size(size);
        let field = &mut header.as_old_mut().name;
        assert!(name.len() <= field.len(), "test names fit the old header");
        field[..name.len()].copy_from_slice(name.as_bytes());
        header
    }

    fn file(mut self, name: &str, data: &[u8]) -> Self {
        let mut header = Self::header(tar::EntryType::Regular, name, data.len() as u64);
        header.set_cksum();
        self.builder.append(&header, data).expect("append");
        self
    }

    fn symlink(mut self, name: &str, target: &str) -> Self {
        let mut header = Self::header(tar::EntryType::Symlink, name, 0);
        let field = &mut header.as_old_mut().linkname;
        field[..target.len()].copy_from_slice(target.as_bytes());
        header.set_cksum();
        self.builder.append(&header, &[][..]).expect("append");
        self
    }

    fn write(self, path: &Path) {
        fs::write(path, self.builder.into_inner().expect("finish")).expect("write tar");
    }
}

/// A small but real layer tar.
fn layer_tar(content: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, "hello", content)
        .expect("append");
    builder.into_inner().expect("finish")
}

fn docker_list(config: &str, tags: &[&str], layers: &[&str]) -> String {
    serde_json::json!([{ "Config": config, "RepoTags": tags, "Layers": layers }]).to_string()
}

fn manifest_json(raw: &image::source::RawManifest) -> serde_json::Value {
    serde_json::from_slice(&raw.bytes).expect("manifest JSON")
}

// ---------------------------------------------------------------------------------------
// OCI image layouts.

#[tokio::test]
async fn layout_by_tag_and_without_tag() {
    let Some(cat) = fixtures() else { return };
    let probe = cat.image("probe");
    for tag in [Some("latest"), None] {
        let source = open(&layout(&probe.path, tag)).await;
        let raw = source.manifest(None).await.expect("manifest");
        assert_eq!(raw.digest, probe.digest, "tag {tag:?}");
        assert_eq!(raw.digest, sha256(&raw.bytes));
        assert_eq!(raw.content_type.as_deref(), Some(probe.media_type.as_str()));
        let parsed = manifest::parse(&raw.bytes, raw.content_type.as_deref()).expect("parses");
        assert_eq!(parsed.kind(), ManifestKind::OciManifest);
        // Fetching the same manifest by digest gives the same bytes.
        let again = source
            .manifest(Some(&probe.digest))
            .await
            .expect("by digest");
        assert_eq!(again.bytes, raw.bytes);
    }
}

#[tokio::test]
async fn index_entries_resolve_by_digest() {
    let Some(cat) = fixtures() else { return };
    for name in ["probe-index", "arm64-only"] {
        let image = cat.image(name);
        let source = open(&layout(&image.path, Some("latest"))).await;
        let raw = source.manifest(None).await.expect("index");
        assert_eq!(raw.digest, image.digest);
        let Parsed::Index(index) =
            manifest::parse(&raw.bytes, raw.content_type.as_deref()).expect("parses")
        else {
            panic!("{name} is an index");
        };
        assert_eq!(index.manifests.len(), image.platforms.len());
        for entry in &index.manifests {
            let resolved = image_manifest(&source, Some(&entry.digest)).await;
            assert_eq!(resolved.kind, ManifestKind::OciManifest);
            let raw = source.manifest(Some(&entry.digest)).await.expect("entry");
            assert_eq!(raw.digest, entry.digest);
            assert_eq!(Some(raw.bytes.len() as u64), entry.size);
        }
        if name == "probe-index" {
            let amd64 = index.select_linux_amd64().expect("amd64 entry");
            let chosen = image_manifest(&source, Some(&amd64.digest)).await;
            check_every_blob(&source, &chosen).await;
        }
    }
}

#[tokio::test]
async fn every_blob_of_the_layers_image_streams_intact() {
    let Some(cat) = fixtures() else { return };
    let source = open(&layout(&cat.image("layers").path, None)).await;
    let image = image_manifest(&source, None).await;
    assert_eq!(image.layers.len(), 3);
    let compressions: Vec<_> = image.layers.iter().map(|l| l.compression).collect();
    assert_eq!(
        compressions,
        [Compression::Gzip, Compression::None, Compression::Zstd]
    );
    check_every_blob(&source, &image).await;
}

#[tokio::test]
async fn layout_errors_name_the_file_and_the_problem() {
    let Some(cat) = fixtures() else { return };

    let (_temp, dir) = probe_copy(cat);
    fs::remove_file(dir.join("index.json")).expect("rm");
    match open_err(&layout(&dir, None)).await {
        SourceError::NotFound { what, source_name } => {
            assert_eq!(what, "index.json");
            assert_eq!(source_name, dir.display().to_string());
        }
        other => panic!("unexpected error: {other}"),
    }

    let (_temp, dir) = probe_copy(cat);
    fs::remove_file(dir.join("oci-layout")).expect("rm");
    assert!(matches!(
        open_err(&layout(&dir, None)).await,
        SourceError::NotFound { what, .. } if what == "oci-layout"
    ));

    let (_temp, dir) = probe_copy(cat);
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"2.0.0"}"#).expect("write");
    let e = open_err(&layout(&dir, None)).await;
    assert!(
        matches!(e, SourceError::Invalid { .. }) && message(&e).contains("\"2.0.0\""),
        "{e}"
    );

    let (_temp, dir) = probe_copy(cat);
    fs::write(dir.join("index.json"), "{\"manifests\": [").expect("write");
    let e = open_err(&layout(&dir, None)).await;
    let text = message(&e);
    assert!(
        text.starts_with(&format!(
            "{}: malformed JSON: ",
            dir.join("index.json").display()
        )),
        "{text}"
    );

    let e = open_err(&layout(&cat.image("probe").path, Some("nope"))).await;
    let text = message(&e);
    assert!(matches!(e, SourceError::Invalid { .. }), "{text}");
    assert!(
        text.ends_with("index.json: no image is tagged \"nope\"; the tags present are latest"),
        "{text}"
    );

    let missing = tempfile::tempdir().expect("tempdir").path().join("absent");
    assert!(matches!(
        open_err(&layout(&missing, None)).await,
        SourceError::Io { .. }
    ));
}

#[tokio::test]
async fn untagged_layout_with_several_images_lists_the_tags() {
    let Some(cat) = fixtures() else { return };
    let (_temp, dir) = probe_copy(cat);
    let path = dir.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
    let manifests = index["manifests"].as_array_mut().expect("manifests");
    let mut second = manifests[0].clone();
    second["annotations"]["org.opencontainers.image.ref.name"] = "stable".into();
    manifests.push(second);
    fs::write(&path, index.to_string()).expect("write");

    let text = message(&open_err(&layout(&dir, None)).await);
    assert!(
        text.ends_with("lists 2 images, so a tag must be given (oci:DIR:TAG); the tags present are latest, stable"),
        "{text}"
    );
    let stable = open(&layout(&dir, Some("stable"))).await;
    let raw = stable.manifest(None).await.expect("manifest");
    assert_eq!(raw.digest, cat.image("probe").digest);
}

#[tokio::test]
async fn missing_blobs_are_not_found() {
    let Some(cat) = fixtures() else { return };
    let (_temp, dir) = probe_copy(cat);
    let source = open(&layout(&dir, Some("latest"))).await;
    let image = image_manifest(&source, None).await;
    let layer = image.layers[0].digest.clone();
    let hex = layer.trim_start_matches("sha256:");
    fs::remove_file(dir.join("blobs/sha256").join(hex)).expect("rm");
    match source.blob(&layer).await {
        Err(SourceError::NotFound { what, source_name }) => {
            assert_eq!(what, format!("blob {layer}"));
            assert_eq!(source_name, dir.display().to_string());
        }
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("a removed blob was served"),
    }

    // A manifest named by index.json but absent.
    let manifest_hex = cat.image("probe").digest.trim_start_matches("sha256:");
    fs::remove_file(dir.join("blobs/sha256").join(manifest_hex)).expect("rm");
    assert!(matches!(
        source.manifest(None).await,
        Err(SourceError::NotFound { what, .. }) if what == format!("blob {}", cat.image("probe").digest)
    ));
}

#[tokio::test]
async fn oversized_manifests_are_refused() {
    let Some(cat) = fixtures() else { return };
    let (_temp, dir) = probe_copy(cat);
    let hex = cat.image("probe").digest.trim_start_matches("sha256:");
    let big = vec![b' '; image::manifest::MAX_MANIFEST_BYTES + 1];
    fs::write(dir.join("blobs/sha256").join(hex), big).expect("write");
    let source = open(&layout(&dir, None)).await;
    assert!(matches!(
        source.manifest(None).await,
        Err(SourceError::TooLarge { size, .. }) if size == image::manifest::MAX_MANIFEST_BYTES as u64 + 1
    ));
}

#[tokio::test]
async fn digests_cannot_name_paths() {
    let Some(cat) = fixtures() else { return };
    let layout_source = open(&layout(&cat.image("probe").path, None)).await;
    let docker_source = open(&ImageSource::DockerArchive(
        cat.archive("probe-docker-archive").to_owned(),
    ))
    .await;
    for source in [&layout_source, &docker_source] {
        for digest in [
            "sha256:../../etc/passwd",
            "sha256:/etc/passwd",
            "../../../etc/passwd",
            "sha512:00",
        ] {
            let blob = source.blob(digest).await;
            assert!(
                matches!(blob, Err(SourceError::Invalid { .. })),
                "blob {digest} was not refused as invalid"
            );
            let manifest = source.manifest(Some(digest)).await;
            assert!(
                matches!(manifest, Err(SourceError::Invalid { .. })),
                "manifest {digest} was not refused as invalid"
            );
        }
    }
}

#[tokio::test]
async fn registry_references_are_not_local() {
    let source = ImageSource::parse("docker.io/library/busybox:latest").expect("parses");
    assert!(matches!(
        open_err(&source).await,
        SourceError::Invalid { .. }
    ));
}

// ---------------------------------------------------------------------------------------
// oci-archive.

#[tokio::test]
async fn oci_archive_matches_the_layout() {
    let Some(cat) = fixtures() else { return };
    let source = open(&ImageSource::OciArchive(
        cat.archive("probe-oci-archive").to_owned(),
    ))
    .await;
    let raw = source.manifest(None).await.expect("manifest");
    assert_eq!(raw.digest, cat.image("probe").digest);
    let image = image_manifest(&source, None).await;
    check_every_blob(&source, &image).await;
}

#[tokio::test]
async fn oci_archive_entries_with_dot_slash_prefixes() {
    let Some(cat) = fixtures() else { return };
    // Rebuild the probe layout as a tar whose every name starts with `./`.
    let probe = &cat.image("probe").path;
    let mut writer = TarWriter::new();
    for name in ["oci-layout", "index.json"] {
        writer = writer.file(
            &format!("./{name}"),
            &fs::read(probe.join(name)).expect("read"),
        );
    }
    for entry in fs::read_dir(probe.join("blobs/sha256")).expect("blobs") {
        let entry = entry.expect("entry");
        let name = format!(
            "./blobs/sha256/{}",
            entry.file_name().to_str().expect("utf-8")
        );
        writer = writer.file(&name, &fs::read(entry.path()).expect("read"));
    }
    let temp = tempfile::tempdir().expect("tempdir");
    let archive = temp.path().join("probe.tar");
    writer.write(&archive);
    let source = open(&ImageSource::OciArchive(archive)).await;
    let image = image_manifest(&source, None).await;
    assert_eq!(
        source.manifest(None).await.expect("manifest").digest,
        cat.image("probe").digest
    );
    check_every_blob(&source, &image).await;
}

#[tokio::test]
async fn hostile_and_broken_archives_are_refused() {
    let temp = tempfile::tempdir().expect("tempdir");

    let evil = temp.path().join("evil.tar");
    TarWriter::new()
        .file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .file("../evil", b"outside")
        .write(&evil);
    for source in [
        ImageSource::OciArchive(evil.clone()),
        ImageSource::DockerArchive(evil.clone()),
    ] {
        let e = open_err(&source).await;
        let text = message(&e);
        assert!(matches!(e, SourceError::Invalid { .. }), "{text}");
        assert!(
            text.starts_with(&format!(
                "{}: refusing archive entry \"../evil\"",
                evil.display()
            )),
            "{text}"
        );
    }

    let absolute = temp.path().join("absolute.tar");
    TarWriter::new().file("/etc/passwd", b"x").write(&absolute);
    let text = message(&open_err(&ImageSource::OciArchive(absolute)).await);
    assert!(text.contains("absolute names are not allowed"), "{text}");

    let not_tar = temp.path().join("not.tar");
    fs::write(&not_tar, "this is not a tar archive\n".repeat(100)).expect("write");
    let e = open_err(&ImageSource::OciArchive(not_tar.clone())).await;
    let text = message(&e);
    assert!(
        text.starts_with(&format!(
            "{}: not a readable tar archive",
            not_tar.display()
        )),
        "{text}"
    );

    let short = temp.path().join("short.tar");
    fs::write(&short, "short").expect("write");
    let text = message(&open_err(&ImageSource::DockerArchive(short)).await);
    assert!(text.contains("not a readable tar archive"), "{text}");

    let truncated = temp.path().join("truncated.tar");
    let whole = {
        TarWriter::new()
            .file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
            .file("index.json", &[b' '; 2000])
            .write(&truncated);
        fs::read(&truncated).expect("read")
    };
    fs::write(&truncated, &whole[..1024 + 512]).expect("truncate");
    let text = message(&open_err(&ImageSource::OciArchive(truncated)).await);
    assert!(
        text.ends_with("the archive is truncated: entry \"index.json\" runs past its end"),
        "{text}"
    );

    let empty = temp.path().join("empty.tar");
    fs::write(&empty, "").expect("write");
    let text = message(&open_err(&ImageSource::OciArchive(empty)).await);
    assert!(text.contains("empty or not a tar archive"), "{text}");

    let no_index = temp.path().join("no-index.tar");
    TarWriter::new()
        .file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .write(&no_index);
    assert!(matches!(
        open_err(&ImageSource::OciArchive(no_index.clone())).await,
        SourceError::NotFound { what, source_name }
            if what == "index.json" && source_name == no_index.display().to_string()
    ));

    let missing = temp.path().join("absent.tar");
    assert!(matches!(
        open_err(&ImageSource::OciArchive(missing)).await,
        SourceError::Io { .. }
    ));
}

// ---------------------------------------------------------------------------------------
// docker-archive.

/// The bytes of one entry of a tar file.
fn tar_entry(archive_path: &Path, wanted: &str) -> Vec<u8> {
    let mut archive = tar::Archive::new(fs::File::open(archive_path).expect("open"));
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        if entry.path().expect("path").to_str() == Some(wanted) {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).expect("read");
            return bytes;
        }
    }
    panic!("no {wanted} in {}", archive_path.display());
}

#[tokio::test]
async fn docker_archive_becomes_a_schema2_manifest() {
    let Some(cat) = fixtures() else { return };
    let archive = cat.archive("probe-docker-archive");
    let source = open(&ImageSource::DockerArchive(archive.to_owned())).await;
    let raw = source.manifest(None).await.expect("manifest");
    assert_eq!(
        raw.content_type.as_deref(),
        Some(manifest::DOCKER_MANIFEST_V2)
    );
    assert_eq!(raw.digest, sha256(&raw.bytes));
    let image = image_manifest(&source, None).await;
    assert_eq!(image.kind, ManifestKind::DockerV2);

    // The config digest is the sha256 of the config file as stored.
    let list: serde_json::Value =
        serde_json::from_slice(&tar_entry(archive, "manifest.json")).expect("manifest.json");
    let config_name = list[0]["Config"].as_str().expect("Config");
    let config_bytes = tar_entry(archive, config_name);
    let (config, config_size) = config_digest(&image);
    assert_eq!(config, sha256(&config_bytes));
    assert_eq!(config_size, Some(config_bytes.len() as u64));
    assert_eq!(
        manifest_json(&raw)["config"]["mediaType"],
        manifest::DOCKER_CONFIG
    );
    assert_eq!(read_blob(&source, &config).await.0, config_bytes);

    // One plain-tar layer, served byte for byte.
    assert_eq!(image.layers.len(), 1);
    assert_eq!(image.layers[0].compression, Compression::None);
    assert_eq!(manifest_json(&raw)["layers"][0]["mediaType"], LAYER_TAR);
    let layer_name = list[0]["Layers"][0].as_str().expect("Layers");
    let layer_bytes = tar_entry(archive, layer_name);
    let (streamed, length) = read_blob(&source, &image.layers[0].digest).await;
    assert_eq!(sha256(&streamed), image.layers[0].digest);
    assert_eq!(Some(streamed.len() as u64), image.layers[0].size);
    assert_eq!(length, image.layers[0].size);
    assert!(streamed == layer_bytes, "the layer is served as stored");

    // The synthesized manifest is also reachable by its digest, and nothing else is.
    let again = source.manifest(Some(&raw.digest)).await.expect("by digest");
    assert_eq!(again.bytes, raw.bytes);
    let other = sha256(b"other");
    assert!(matches!(
        source.manifest(Some(&other)).await,
        Err(SourceError::NotFound { .. })
    ));
    assert!(matches!(
        source.blob(&other).await,
        Err(SourceError::NotFound { what, .. }) if what == format!("blob {other}")
    ));
}

#[tokio::test]
async fn docker_archive_newer_form_and_compressed_layers() {
    let temp = tempfile::tempdir().expect("tempdir");
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let plain = layer_tar(b"plain");
    let gzip = {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&layer_tar(b"gzip")).expect("gzip");
        encoder.finish().expect("gzip")
    };
    let zstd = zstd::encode_all(&layer_tar(b"zstd")[..], 3).expect("zstd");
    let blob_name = |bytes: &[u8]| format!("blobs/sha256/{}", &sha256(bytes)[7..]);

    // Docker 25+: blobs under blobs/sha256, plus a legacy `<id>/layer.tar` symlink to one.
    let archive = temp.path().join("new.tar");
    let list = docker_list(
        &blob_name(config),
        &["example/app:1"],
        &[&blob_name(&plain), "legacy/layer.tar", &blob_name(&zstd)],
    );
    TarWriter::new()
        .file(&blob_name(config), config)
        .file(&blob_name(&plain), &plain)
        .file(&blob_name(&gzip), &gzip)
        .file(&blob_name(&zstd), &zstd)
        .symlink("legacy/layer.tar", &format!("../{}", blob_name(&gzip)))
        .file("manifest.json", list.as_bytes())
        .write(&archive);

    let source = open(&ImageSource::DockerArchive(archive)).await;
    let raw = source.manifest(None).await.expect("manifest");
    let json = manifest_json(&raw);
    assert_eq!(json["schemaVersion"], 2);
    assert_eq!(json["mediaType"], manifest::DOCKER_MANIFEST_V2);
    assert_eq!(json["config"]["digest"], sha256(config));
    let expected = [
        (&plain, LAYER_TAR),
        (&gzip, LAYER_GZIP),
        (&zstd, LAYER_ZSTD),
    ];
    for (i, (bytes, media_type)) in expected.iter().enumerate() {
        assert_eq!(json["layers"][i]["mediaType"], *media_type);
        assert_eq!(json["layers"][i]["digest"], sha256(bytes));
        assert_eq!(json["layers"][i]["size"], bytes.len());
    }
    let image = image_manifest(&source, None).await;
    check_every_blob(&source, &image).await;
}

#[tokio::test]
async fn docker_archive_errors() {
    let temp = tempfile::tempdir().expect("tempdir");
    let config = b"{}";
    let layer = layer_tar(b"x");

    let malformed = temp.path().join("malformed.tar");
    TarWriter::new()
        .file("manifest.json", b"[{\"Config\": ")
        .write(&malformed);
    let e = open_err(&ImageSource::DockerArchive(malformed.clone())).await;
    let text = message(&e);
    assert!(matches!(e, SourceError::Invalid { .. }), "{text}");
    assert!(
        text.starts_with(&format!(
            "manifest.json in {}: malformed JSON: ",
            malformed.display()
        )),
        "{text}"
    );

    let no_list = temp.path().join("no-list.tar");
    TarWriter::new().file("c.json", config).write(&no_list);
    assert!(matches!(
        open_err(&ImageSource::DockerArchive(no_list)).await,
        SourceError::NotFound { what, .. } if what == "manifest.json"
    ));

    let empty_list = temp.path().join("empty-list.tar");
    TarWriter::new()
        .file("manifest.json", b"[]")
        .write(&empty_list);
    let text = message(&open_err(&ImageSource::DockerArchive(empty_list.clone())).await);
    assert_eq!(
        text,
        format!("manifest.json in {}: lists no images", empty_list.display())
    );

    let several = temp.path().join("several.tar");
    let list = serde_json::json!([
        {"Config": "c.json", "RepoTags": ["a:1", "a:2"], "Layers": ["l.tar"]},
        {"Config": "c.json", "RepoTags": null, "Layers": ["l.tar"]},
    ]);
    TarWriter::new()
        .file("c.json", config)
        .file("l.tar", &layer)
        .file("manifest.json", list.to_string().as_bytes())
        .write(&several);
    let text = message(&open_err(&ImageSource::DockerArchive(several)).await);
    assert!(
        text.ends_with(
            "lists 2 images (a:1 a:2, <untagged>); a docker-archive: source must hold exactly one"
        ),
        "{text}"
    );

    let missing_layer = temp.path().join("missing-layer.tar");
    TarWriter::new()
        .file("c.json", config)
        .file(
            "manifest.json",
            docker_list("c.json", &["a:1"], &["gone/layer.tar"]).as_bytes(),
        )
        .write(&missing_layer);
    match open_err(&ImageSource::DockerArchive(missing_layer.clone())).await {
        SourceError::NotFound { what, source_name } => {
            assert_eq!(what, "layer \"gone/layer.tar\" named by manifest.json");
            assert_eq!(source_name, missing_layer.display().to_string());
        }
        other => panic!("unexpected error: {other}"),
    }

    let escaping = temp.path().join("escaping.tar");
    TarWriter::new()
        .file("c.json", config)
        .file(
            "manifest.json",
            docker_list("c.json", &[], &["../../etc/passwd"]).as_bytes(),
        )
        .write(&escaping);
    let text = message(&open_err(&ImageSource::DockerArchive(escaping)).await);
    assert!(
        text.contains("refusing layer \"../../etc/passwd\""),
        "{text}"
    );

    // A symlink pointing outside the archive resolves to nothing.
    let outside = temp.path().join("outside.tar");
    TarWriter::new()
        .file("c.json", config)
        .symlink("l.tar", "../../etc/passwd")
        .file(
            "manifest.json",
            docker_list("c.json", &[], &["l.tar"]).as_bytes(),
        )
        .write(&outside);
    assert!(matches!(
        open_err(&ImageSource::DockerArchive(outside)).await,
        SourceError::NotFound { .. }
    ));
}
