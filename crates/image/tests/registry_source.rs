//! Integration tests for `image::source::registry` against a real registry: Debian's
//! `docker-registry` on loopback, fed with the repo's test images by skopeo. Also the
//! failures users meet: missing tags, refused credentials, dead or silent registries.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use futures_util::StreamExt as _;
use image::manifest::{self, ConfigSource, ManifestKind, Parsed};
use image::reference::Reference;
use image::source::registry::RegistrySource;
use image::source::{RawManifest, RegistryOptions, SourceError};
use sha2::{Digest as _, Sha256};
use testkit::Registry;

const TOOLS: &[&str] = &["docker-registry", "skopeo", "htpasswd", "busybox"];
const USER: &str = "alice";
const PASSWORD: &str = "wonderland";

/// Whether the registry tests can run here (they skip with a message outside CI).
fn prerequisites() -> bool {
    testkit::require(TOOLS, false)
}

fn catalogue() -> &'static testkit::Catalogue {
    testkit::catalogue().expect("building the test images")
}

/// Options that read credentials from `config` only, never from the user's own
/// `~/.docker/config.json` (and without touching process-wide environment variables).
fn options(config: &Path) -> RegistryOptions {
    RegistryOptions {
        docker_config: Some(config.to_path_buf()),
        ..RegistryOptions::default()
    }
}

/// A config.json path in `dir` that does not exist: anonymous access.
fn no_config(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("config.json")
}

fn write_config(dir: &tempfile::TempDir, json: &serde_json::Value) -> PathBuf {
    let path = dir.path().join("config.json");
    std::fs::write(&path, json.to_string()).expect("writing config.json");
    path
}

fn basic_auth(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

async fn open(reference: &str, options: &RegistryOptions) -> RegistrySource {
    let reference = Reference::parse(reference).expect("a valid reference");
    RegistrySource::new(&reference, options)
        .await
        .expect("opening the registry source")
}

/// Opens `reference` and fetches the manifest it names.
async fn fetch(reference: &str, options: &RegistryOptions) -> Result<RawManifest, SourceError> {
    open(reference, options).await.manifest(None).await
}

fn parse(raw: &RawManifest) -> Parsed {
    manifest::parse(&raw.bytes, raw.content_type.as_deref()).expect("a manifest homerun reads")
}

fn image_manifest(raw: &RawManifest) -> manifest::ImageManifest {
    match parse(raw) {
        Parsed::Image(image) => image,
        Parsed::Index(index) => panic!("expected an image manifest, got {:?}", index.kind),
    }
}

/// Reads a whole blob, returning its sha256 digest, its length and the announced length.
async fn read_blob(
    source: &RegistrySource,
    digest: &str,
    size: Option<u64>,
) -> (String, u64, Option<u64>) {
    let blob = source.blob(digest, size).await.expect("opening the blob");
    let announced = blob.length;
    let mut stream = blob.stream;
    let mut hasher = Sha256::new();
    let mut length = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("reading the blob");
        length += chunk.len() as u64;
        hasher.update(&chunk);
    }
    (
        format!("sha256:{}", hex::encode(hasher.finalize())),
        length,
        announced,
    )
}

#[tokio::test]
async fn probe_manifest_by_tag_and_by_digest() {
    if !prerequisites() {
        return;
    }
    let cat = catalogue();
    let registry = Registry::start().expect("starting the registry");
    let reference = registry.push(cat.image("probe")).expect("pushing probe");
    let dir = tempfile::tempdir().expect("temp dir");
    let options = options(&no_config(&dir));
    let expected = &cat.image("probe").digest;

    let source = open(&reference, &options).await;
    let by_tag = source.manifest(None).await.expect("manifest by tag");
    assert_eq!(&by_tag.digest, expected);
    assert_eq!(image_manifest(&by_tag).kind, ManifestKind::OciManifest);

    let by_digest = source
        .manifest(Some(expected))
        .await
        .expect("manifest by digest");
    assert_eq!(&by_digest.digest, expected);
    assert_eq!(by_digest.bytes, by_tag.bytes);

    // A reference that pins the digest itself.
    let pinned = format!("{}/homerun/probe@{expected}", registry.host());
    let by_reference = fetch(&pinned, &options)
        .await
        .expect("manifest of a pinned reference");
    assert_eq!(by_reference.bytes, by_tag.bytes);
}

#[tokio::test]
async fn docker_list_and_oci_index() {
    if !prerequisites() {
        return;
    }
    let cat = catalogue();
    let registry = Registry::start().expect("starting the registry");
    let dir = tempfile::tempdir().expect("temp dir");
    let options = options(&no_config(&dir));
    for (name, kind) in [
        ("probe-docker-list", ManifestKind::DockerList),
        ("probe-index", ManifestKind::OciIndex),
    ] {
        let reference = registry.push(cat.image(name)).expect("pushing the index");
        let source = open(&reference, &options).await;
        let raw = source.manifest(None).await.expect("fetching the index");
        assert_eq!(raw.digest, cat.image(name).digest, "{name}");
        let Parsed::Index(index) = parse(&raw) else {
            panic!("{name} parsed as an image manifest");
        };
        assert_eq!(index.kind, kind, "{name}");

        // The amd64 entry, fetched by digest from the same repository.
        let entry = index.select_linux_amd64().expect("an amd64 entry");
        let child = source
            .manifest(Some(&entry.digest))
            .await
            .expect("fetching the amd64 manifest");
        assert_eq!(child.digest, entry.digest, "{name}");
        assert!(!image_manifest(&child).layers.is_empty(), "{name}");
    }
}

#[tokio::test]
async fn layer_and_config_blobs_stream_intact() {
    if !prerequisites() {
        return;
    }
    let cat = catalogue();
    let registry = Registry::start().expect("starting the registry");
    let reference = registry.push(cat.image("probe")).expect("pushing probe");
    let dir = tempfile::tempdir().expect("temp dir");
    let source = open(&reference, &options(&no_config(&dir))).await;
    let image = image_manifest(&source.manifest(None).await.expect("manifest"));

    let ConfigSource::Blob(config) = &image.config else {
        panic!("an OCI manifest has a config blob");
    };
    let mut blobs = vec![(config.digest.clone(), config.size)];
    blobs.extend(image.layers.iter().map(|l| (l.digest.clone(), l.size)));
    for (digest, size) in blobs {
        let (actual, length, announced) = read_blob(&source, &digest, size).await;
        assert_eq!(actual, digest);
        assert_eq!(Some(length), size, "{digest}");
        assert_eq!(
            announced, size,
            "{digest}: the registry announces the length"
        );
    }
}

#[tokio::test]
async fn missing_tag_repository_and_blob_are_not_found() {
    if !prerequisites() {
        return;
    }
    let cat = catalogue();
    let registry = Registry::start().expect("starting the registry");
    registry.push(cat.image("probe")).expect("pushing probe");
    let dir = tempfile::tempdir().expect("temp dir");
    let options = options(&no_config(&dir));

    let missing_tag = format!("{}/homerun/probe:no-such-tag", registry.host());
    match fetch(&missing_tag, &options).await {
        Err(SourceError::NotFound { what, .. }) => {
            assert_eq!(what, format!("manifest {missing_tag}"));
        }
        other => panic!("expected NotFound, got {other:?}"),
    }

    let missing_repo = format!("{}/homerun/nothing-here:latest", registry.host());
    let result = fetch(&missing_repo, &options).await;
    assert!(
        matches!(result, Err(SourceError::NotFound { .. })),
        "{result:?}"
    );

    let source = open(&registry.reference("homerun/probe:latest"), &options).await;
    let absent = format!("sha256:{}", "0".repeat(64));
    match source.blob(&absent, None).await {
        Err(SourceError::NotFound { what, .. }) => assert_eq!(what, format!("blob {absent}")),
        Err(other) => panic!("expected NotFound, got {other:?}"),
        Ok(_) => panic!("expected NotFound, got a blob"),
    }
}

#[tokio::test]
async fn basic_auth_with_credentials_from_config_json() {
    if !prerequisites() {
        return;
    }
    let cat = catalogue();
    let registry = Registry::start_with_basic_auth(USER, PASSWORD).expect("starting the registry");
    let reference = registry.push(cat.image("probe")).expect("pushing probe");
    let host = registry.host();
    let configs = [
        serde_json::json!({"auths": {host.clone(): {"auth": basic_auth(USER, PASSWORD)}}}),
        serde_json::json!({"auths": {format!("http://{host}"): {"username": USER, "password": PASSWORD}}}),
    ];
    for config in configs {
        let dir = tempfile::tempdir().expect("temp dir");
        let source = open(&reference, &options(&write_config(&dir, &config))).await;
        let raw = source
            .manifest(None)
            .await
            .expect("manifest with credentials");
        assert_eq!(raw.digest, cat.image("probe").digest, "{config}");
        // Blob pulls carry the credentials too.
        let layer = &image_manifest(&raw).layers[0];
        let (digest, _, _) = read_blob(&source, &layer.digest, layer.size).await;
        assert_eq!(digest, layer.digest, "{config}");
    }
}

#[tokio::test]
async fn basic_auth_refusals_say_what_was_tried() {
    if !prerequisites() {
        return;
    }
    let cat = catalogue();
    let registry = Registry::start_with_basic_auth(USER, PASSWORD).expect("starting the registry");
    let reference = registry.push(cat.image("probe")).expect("pushing probe");
    let host = registry.host();

    // No config.json at all.
    let dir = tempfile::tempdir().expect("temp dir");
    let absent = no_config(&dir);
    let message = expect_unauthorized(fetch(&reference, &options(&absent)).await);
    assert!(message.contains("401"), "{message}");
    assert!(message.contains(&absent.display().to_string()), "{message}");
    assert!(
        message.contains(&format!("no credentials for {host}")),
        "{message}"
    );

    // A config.json with credentials for another registry only.
    let other =
        serde_json::json!({"auths": {"registry.example": {"auth": basic_auth(USER, PASSWORD)}}});
    let path = write_config(&dir, &other);
    let message = expect_unauthorized(fetch(&reference, &options(&path)).await);
    assert!(message.contains(&path.display().to_string()), "{message}");

    // The wrong password.
    let wrong = serde_json::json!({"auths": {host.clone(): {"auth": basic_auth(USER, "guess")}}});
    let path = write_config(&dir, &wrong);
    let message = expect_unauthorized(fetch(&reference, &options(&path)).await);
    assert!(message.contains("401"), "{message}");
    assert!(message.contains(USER), "{message}");

    // A credential helper, which homerun does not run.
    let helper = serde_json::json!({"credHelpers": {host.clone(): "secretservice"}});
    let path = write_config(&dir, &helper);
    let message = expect_unauthorized(fetch(&reference, &options(&path)).await);
    assert!(message.contains("credential helper"), "{message}");
    assert!(message.contains("not supported"), "{message}");
}

fn expect_unauthorized(result: Result<RawManifest, SourceError>) -> String {
    match result {
        Err(error @ SourceError::Unauthorized { .. }) => error.to_string(),
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_config_json_names_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.json");
    std::fs::write(&path, r#"{"auths": ["#).expect("writing config.json");
    let reference = Reference::parse("127.0.0.1:1/homerun/probe:latest").expect("reference");
    match RegistrySource::new(&reference, &options(&path)).await {
        Err(error @ SourceError::Invalid { .. }) => {
            assert!(
                error.to_string().contains(&path.display().to_string()),
                "{error}"
            );
        }
        Err(other) => panic!("expected Invalid, got {other:?}"),
        Ok(_) => panic!("a malformed config.json was accepted"),
    }
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    // A port that was free a moment ago: connecting is refused.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding");
        listener.local_addr().expect("address").port()
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let reference = format!("127.0.0.1:{port}/homerun/probe:latest");
    match fetch(&reference, &options(&no_config(&dir))).await {
        Err(error @ SourceError::Unreachable { .. }) => {
            assert!(error.to_string().contains("refused"), "{error}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_silent_registry_times_out() {
    // Accepts connections and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding");
    let addr = listener.local_addr().expect("address");
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let options = RegistryOptions {
        timeout: Duration::from_secs(2),
        ..options(&no_config(&dir))
    };
    let reference = format!("{addr}/homerun/probe:latest");
    let result = tokio::time::timeout(Duration::from_secs(20), fetch(&reference, &options))
        .await
        .expect("the timeout bounds the wait");
    silent.abort();
    match result {
        Err(error @ SourceError::Unreachable { .. }) => {
            assert!(error.to_string().contains("timed out after 2 s"), "{error}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

/// Registries address a signed schema1 manifest by the digest of its payload without the
/// signatures; the source checks and reports that digest, by tag and by digest.
#[tokio::test]
async fn schema1_signed_manifest_is_fetched_by_tag_and_digest() {
    if !prerequisites() {
        return;
    }
    let cat = catalogue();
    let registry = Registry::start().expect("starting the registry");
    let reference = registry
        .push_ref(
            &cat.image("probe").source,
            "homerun/probe-v1:latest",
            &["--format", "v2s1"],
        )
        .expect("pushing a schema1 manifest");
    let registry_digest = registry.inspect(&reference, &[]).expect("skopeo inspect")["Digest"]
        .as_str()
        .expect("a digest")
        .to_owned();
    let dir = tempfile::tempdir().expect("temp dir");
    let source = open(&reference, &options(&no_config(&dir))).await;

    // The registry digests the unsigned payload and signs anew per GET, so the body never
    // hashes to the registry digest; the payload digest does.
    for digest in [None, Some(registry_digest.as_str())] {
        let raw = source.manifest(digest).await.expect("schema1 manifest");
        assert_eq!(raw.digest, registry_digest);
        assert_eq!(
            raw.content_type.as_deref(),
            Some(image::manifest::DOCKER_MANIFEST_V1_SIGNED)
        );
        let parsed = image::manifest::parse(&raw.bytes, raw.content_type.as_deref()).unwrap();
        assert_eq!(parsed.kind(), image::manifest::ManifestKind::DockerV1Signed);
    }
}
