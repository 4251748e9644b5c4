//! Pulling real images end to end: from Debian's docker-registry (pushed by skopeo) and from
//! local layouts and archives, into a store in a temporary directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use image::store::ImageRecord;
use image::{ImageError, ImageSource, Quiet, RegistryOptions, Store};
use testkit::{catalogue, require, Registry};

fn prerequisites() -> bool {
    require(&["docker-registry", "skopeo", "htpasswd", "busybox"], true)
}

fn options() -> RegistryOptions {
    RegistryOptions {
        timeout: Duration::from_secs(10),
        ..Default::default()
    }
}

async fn pull(store: &Store, reference: &str) -> Result<image::PullOutcome, ImageError> {
    pull_with(store, reference, &options()).await
}

async fn pull_with(
    store: &Store,
    reference: &str,
    options: &RegistryOptions,
) -> Result<image::PullOutcome, ImageError> {
    store
        .pull(&ImageSource::parse(reference).unwrap(), options, &Quiet)
        .await
}

/// Every file and directory under the store, for "nothing left behind" checks (lock files
/// are empty and harmless, and may stay).
fn store_contents(store: &Store) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.parent().is_some_and(|d| d.ends_with("locks")) {
                continue;
            }
            out.push(p.clone());
            if p.is_dir() && !p.is_symlink() {
                walk(&p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(store.root(), &mut out);
    out.sort();
    out
}

fn layer_file(store: &Store, record: &ImageRecord, index: usize, path: &str) -> PathBuf {
    store
        .layer_dir(&record.layers[index].digest)
        .unwrap()
        .join(path)
}

#[tokio::test]
async fn pulls_the_probe_once_and_reuses_its_layers() {
    if !prerequisites() {
        return;
    }
    let cat = catalogue().unwrap();
    let registry = Registry::start().unwrap();
    let reference = registry.push(cat.image("probe")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();

    let first = pull(&store, &reference).await.unwrap();
    assert_eq!(first.record.manifest_digest, cat.image("probe").digest);
    assert_eq!(first.layers_fetched, 1);
    let probe = layer_file(&store, &first.record, 0, "probe");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&probe).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    assert_eq!(store.list().unwrap(), vec![first.record.clone()]);

    // The second pull needs only the manifest: with the layer and config blobs gone from the
    // registry it still succeeds, so it transferred no known blob.
    let raw = registry.inspect(&reference, &["--raw"]).unwrap();
    for digest in [&raw["config"]["digest"], &raw["layers"][0]["digest"]] {
        let blob = testkit::registry::blob_path(&registry.storage(), digest.as_str().unwrap());
        std::fs::remove_file(blob).unwrap();
    }
    let second = pull(&store, &reference).await.unwrap();
    assert_eq!(second.layers_fetched, 0);
    assert_eq!(second.record.layers, first.record.layers);
}

#[tokio::test]
async fn concurrent_pulls_fetch_each_blob_once() {
    if !prerequisites() {
        return;
    }
    let cat = catalogue().unwrap();
    let registry = Registry::start().unwrap();
    let reference = registry.push(cat.image("layers")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path()).unwrap();
    let b = Store::open(dir.path()).unwrap();
    let (ra, rb) = tokio::join!(pull(&a, &reference), pull(&b, &reference));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(
        ra.layers_fetched + rb.layers_fetched,
        3,
        "each of the three layers fetched once"
    );
    assert_eq!(ra.record.layers, rb.record.layers);
    assert_eq!(a.present_layers().unwrap().len(), 3);
}

#[tokio::test]
async fn every_manifest_kind_resolves_to_linux_amd64() {
    if !prerequisites() {
        return;
    }
    let cat = catalogue().unwrap();
    let registry = Registry::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let amd64_manifest = cat.image("probe").digest.clone();
    for name in ["probe-index", "probe-docker", "probe-docker-list"] {
        let reference = registry.push(cat.image(name)).unwrap();
        let outcome = pull(&store, &reference)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let probe = layer_file(&store, &outcome.record, 0, "probe");
        let elf = std::fs::read(probe).unwrap();
        assert_eq!(
            u16::from_le_bytes([elf[18], elf[19]]),
            62,
            "{name}: x86_64 probe chosen"
        );
        if name == "probe-index" {
            assert_eq!(outcome.record.manifest_digest, amd64_manifest);
            assert_eq!(
                outcome.record.index_digest.as_deref(),
                Some(cat.image(name).digest.as_str())
            );
        }
        // The same layer blob in every format: unpacked once.
        assert_eq!(
            outcome.layers_fetched,
            usize::from(name == "probe-index"),
            "{name}"
        );
    }
    let v1 = registry
        .push_ref(
            &cat.image("probe").source,
            "homerun/probe-v1:latest",
            &["--format", "v2s1"],
        )
        .unwrap();
    let outcome = pull(&store, &v1).await.unwrap();
    assert!(layer_file(&store, &outcome.record, 0, "probe").is_file());
    // Recorded under the digest the registry serves it by (its payload's).
    let digest = registry.inspect(&v1, &[]).unwrap()["Digest"].clone();
    assert_eq!(outcome.record.manifest_digest, digest.as_str().unwrap());
}

#[tokio::test]
async fn an_arm64_only_index_is_refused_naming_its_platforms() {
    if !prerequisites() {
        return;
    }
    let cat = catalogue().unwrap();
    let registry = Registry::start().unwrap();
    let reference = registry.push(cat.image("arm64-only")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let before = store_contents(&store);
    let err = pull(&store, &reference).await.unwrap_err().to_string();
    assert!(
        err.contains("linux/amd64") && err.contains("linux/arm64"),
        "{err}"
    );
    assert_eq!(store_contents(&store), before);
}

#[tokio::test]
async fn basic_auth_uses_docker_config_credentials() {
    if !prerequisites() {
        return;
    }
    let cat = catalogue().unwrap();
    let registry = Registry::start_with_basic_auth("puller", "pa55word").unwrap();
    let reference = registry.push(cat.image("probe")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("data")).unwrap();
    let before = store_contents(&store);

    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, "{}").unwrap();
    let anonymous = RegistryOptions {
        docker_config: Some(empty),
        ..options()
    };
    let err = pull_with(&store, &reference, &anonymous)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("401"), "{err}");
    assert!(err.contains(&registry.host()), "{err}");
    assert_eq!(
        store_contents(&store),
        before,
        "a refused pull leaves nothing"
    );

    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"auths":{{"{}":{{"username":"puller","password":"pa55word"}}}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let with_creds = RegistryOptions {
        docker_config: Some(config),
        ..options()
    };
    pull_with(&store, &reference, &with_creds).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_registry_is_named_and_does_not_hang() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let before = store_contents(&store);
    let err = pull(&store, &format!("127.0.0.1:{port}/nothing/here:latest"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.contains("unreachable"), "{err}");

    // Accepts connections, never answers: the timeout ends the pull.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let short = RegistryOptions {
        timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let pulled = tokio::time::timeout(
        Duration::from_secs(120),
        pull_with(&store, &format!("{addr}/silent/image:latest"), &short),
    )
    .await
    .expect("the pull must give up on a silent registry");
    assert!(pulled.unwrap_err().to_string().contains(&addr.to_string()));
    drop(silent);
    assert_eq!(store_contents(&store), before);
}

/// Corrupts a layer blob in the registry's storage: the registry serves it as it is.
fn corrupt_layer(registry: &Registry, reference: &str, truncate: bool) -> String {
    let raw = registry.inspect(reference, &["--raw"]).unwrap();
    let digest = raw["layers"][0]["digest"].as_str().unwrap().to_string();
    let path = testkit::registry::blob_path(&registry.storage(), &digest);
    let mut bytes = std::fs::read(&path).unwrap();
    if truncate {
        bytes.truncate(bytes.len() / 2);
    } else {
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
    }
    std::fs::write(&path, bytes).unwrap();
    digest
}

#[tokio::test]
async fn a_corrupt_or_short_blob_is_refused_and_leaves_nothing() {
    if !prerequisites() {
        return;
    }
    let cat = catalogue().unwrap();
    for truncate in [false, true] {
        let registry = Registry::start().unwrap();
        let reference = registry.push(cat.image("probe")).unwrap();
        let digest = corrupt_layer(&registry, &reference, truncate);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let before = store_contents(&store);
        let err = pull(&store, &reference).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&digest), "{text}");
        if truncate {
            assert!(
                text.contains("bytes"),
                "a short blob is reported by size or as truncated: {text}"
            );
        } else {
            assert!(matches!(err, ImageError::DigestMismatch { .. }), "{text}");
        }
        assert_eq!(store_contents(&store), before, "truncate={truncate}");
    }
}

#[tokio::test]
async fn local_layouts_and_archives_pull_without_a_registry() {
    if !require(&["busybox"], true) {
        return;
    }
    let cat = catalogue().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let sources = [
        format!("oci:{}:latest", cat.image("probe").path.display()),
        format!("oci-archive:{}", cat.archive("probe-oci-archive").display()),
        format!(
            "docker-archive:{}",
            cat.archive("probe-docker-archive").display()
        ),
        format!("oci:{}", cat.image("layers").path.display()),
    ];
    for source in &sources {
        let outcome = pull(&store, source)
            .await
            .unwrap_or_else(|e| panic!("{source}: {e}"));
        assert!(
            layer_file(&store, &outcome.record, 0, "probe").is_file(),
            "{source}"
        );
    }
    assert_eq!(store.list().unwrap().len(), sources.len());
    // The same source named two ways is one record.
    let relative = pull(
        &store,
        &format!("oci:{}:latest", cat.image("probe").path.display()),
    )
    .await
    .unwrap();
    assert_eq!(relative.layers_fetched, 0);
    assert_eq!(store.list().unwrap().len(), sources.len());
}

#[tokio::test]
async fn prune_keeps_referenced_and_leased_layers() {
    if !require(&["busybox"], true) {
        return;
    }
    let cat = catalogue().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let oci = pull(
        &store,
        &format!("oci:{}", cat.image("probe").path.display()),
    )
    .await
    .unwrap()
    .record;
    let docker = pull(
        &store,
        &format!("oci:{}", cat.image("probe-nonroot").path.display()),
    )
    .await
    .unwrap()
    .record;
    assert_eq!(
        oci.layers[0], docker.layers[0],
        "the images share the probe layer"
    );
    assert_eq!(store.present_layers().unwrap().len(), 2);

    store.remove(&oci.reference).unwrap();
    let report = store.prune().unwrap();
    assert_eq!(report.layers, 0, "the shared layer is still referenced");

    let lease = store.lease(&docker).unwrap();
    store.remove(&docker.reference).unwrap();
    let report = store.prune().unwrap();
    assert_eq!(
        (report.layers, report.kept_in_use),
        (0, 2),
        "leased layers stay"
    );
    drop(lease);
    let report = store.prune().unwrap();
    assert_eq!(report.layers, 2);
    assert!(store.present_layers().unwrap().is_empty());
    assert!(matches!(
        store.remove(&oci.reference),
        Err(ImageError::NotFound(_))
    ));
}

#[tokio::test]
async fn the_layered_image_mounts_as_its_declared_union() {
    if !require(&["busybox"], true) {
        return;
    }
    let cat = catalogue().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("data")).unwrap();
    let record = pull(
        &store,
        &format!("oci:{}", cat.image("layers").path.display()),
    )
    .await
    .unwrap()
    .record;
    let (upper, work, target) = (
        dir.path().join("upper"),
        dir.path().join("work"),
        dir.path().join("rootfs"),
    );
    for d in [&upper, &work, &target] {
        std::fs::create_dir(d).unwrap();
    }
    let rootfs =
        image::rootfs::Rootfs::mount(&store.layer_dirs(&record).unwrap(), &upper, &work, &target)
            .unwrap();
    for p in &cat.layers_present {
        assert!(target.join(p).symlink_metadata().is_ok(), "{p} present");
    }
    for p in &cat.layers_absent {
        assert!(target.join(p).symlink_metadata().is_err(), "{p} whited out");
    }
    std::fs::write(target.join("data/new-file"), b"written").unwrap();
    assert_eq!(
        std::fs::read(upper.join("data/new-file")).unwrap(),
        b"written",
        "writes land in upper"
    );
    let layer_copy = store
        .layer_dir(&record.layers[0].digest)
        .unwrap()
        .join("data/new-file");
    assert!(!layer_copy.exists(), "the shared layer is untouched");
    rootfs.unmount().unwrap();
    assert!(!target.join("probe").exists(), "unmounted");
}

/// A tar of raw entries: names and types that `tar::Builder` would refuse to write.
fn raw_tar(entries: &[(&[u8], u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().expect("a GNU header").name[..name.len()].copy_from_slice(name);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_entry_type(tar::EntryType::new(*kind));
        if *kind == b'3' || *kind == b'4' {
            h.set_device_major(8).unwrap();
            h.set_device_minor(0).unwrap();
        }
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// An OCI layout holding one image whose single layer is `tar` (uncompressed) with the
/// given layer media type, and optionally a manifest padded past `pad` bytes.
fn custom_layout(dir: &Path, tar: &[u8], media_type: &str, pad: usize) -> String {
    layout_of(dir, &[(tar.to_vec(), media_type)], pad, &[])
}

/// An OCI layout of one image with these layers (bottom first). `corrupt` lists layer
/// positions whose stored blob is altered after the manifest was written.
fn layout_of(dir: &Path, layers: &[(Vec<u8>, &str)], pad: usize, corrupt: &[usize]) -> String {
    use serde_json::json;
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let digest = testkit::layer::sha256_digest(bytes);
        std::fs::write(blobs.join(digest.trim_start_matches("sha256:")), bytes).unwrap();
        json!({ "digest": digest, "size": bytes.len() })
    };
    let mut descriptors = Vec::new();
    for (i, (tar, media_type)) in layers.iter().enumerate() {
        let d = put(tar);
        if corrupt.contains(&i) {
            let path = blobs.join(d["digest"].as_str().unwrap().trim_start_matches("sha256:"));
            let mut bytes = tar.clone();
            let last = bytes.len() - 1;
            bytes[last] ^= 0xff;
            std::fs::write(path, bytes).unwrap();
        }
        descriptors
            .push(json!({ "mediaType": media_type, "digest": d["digest"], "size": d["size"] }));
    }
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|(t, _)| testkit::layer::sha256_digest(t))
        .collect();
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "config": { "Entrypoint": ["/probe"] },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let config = put(config.to_string().as_bytes());
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config["digest"], "size": config["size"] },
        "layers": descriptors,
    });
    if pad > 0 {
        manifest["annotations"] = json!({ "padding": "x".repeat(pad) });
    }
    let m = put(manifest.to_string().as_bytes());
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": m["digest"], "size": m["size"],
            "annotations": { "org.opencontainers.image.ref.name": "latest" },
        }],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    format!("oci:{}:latest", dir.display())
}

/// A layer holding one file.
fn one_file_layer(name: &str, data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, name, data).unwrap();
    b.into_inner().unwrap()
}

/// Bounds a pull that must finish: a deadlock fails the test instead of hanging the suite.
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(120), f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish: deadlock?"))
}

#[tokio::test]
async fn a_layer_listed_twice_is_fetched_once_and_mounted_once() {
    if !require(&[], true) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let store = Store::open(&work.path().join("data")).unwrap();
    let a = one_file_layer("a", b"a");
    let b = one_file_layer("b", b"b");
    let reference = layout_of(
        &work.path().join("repeat"),
        &[(a.clone(), PLAIN_TAR), (b, PLAIN_TAR), (a, PLAIN_TAR)],
        0,
        &[],
    );
    let outcome = bounded("pulling [A, B, A]", pull(&store, &reference))
        .await
        .unwrap();
    assert_eq!(outcome.record.layers.len(), 3);
    assert_eq!(outcome.layers_fetched, 2);
    assert_eq!(outcome.record.layers[0], outcome.record.layers[2]);
    let dirs = store.layer_dirs(&outcome.record).unwrap();
    assert_eq!(
        dirs.len(),
        2,
        "the repeated layer is mounted once, at its top place"
    );
    assert_eq!(
        dirs[1],
        store.layer_dir(&outcome.record.layers[2].digest).unwrap()
    );
}

#[tokio::test]
async fn pulls_sharing_layers_in_opposite_orders_do_not_deadlock() {
    if !require(&[], true) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let (a, b) = (
        one_file_layer("a", &[1u8; 4 << 20]),
        one_file_layer("b", &[2u8; 4 << 20]),
    );
    let x = layout_of(
        &work.path().join("x"),
        &[(a.clone(), PLAIN_TAR), (b.clone(), PLAIN_TAR)],
        0,
        &[],
    );
    let y = layout_of(
        &work.path().join("y"),
        &[(b, PLAIN_TAR), (a, PLAIN_TAR)],
        0,
        &[],
    );
    for round in 0..5 {
        let _ = std::fs::remove_dir_all(&data);
        let (s1, s2) = (Store::open(&data).unwrap(), Store::open(&data).unwrap());
        let (r1, r2) = bounded(&format!("round {round}"), async {
            tokio::join!(pull(&s1, &x), pull(&s2, &y))
        })
        .await;
        let (r1, r2) = (r1.unwrap(), r2.unwrap());
        assert_eq!(
            r1.layers_fetched + r2.layers_fetched,
            2,
            "round {round}: each layer fetched once"
        );
    }
}

#[tokio::test]
async fn a_failure_after_a_committed_layer_rolls_everything_back() {
    if !require(&[], true) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let store = Store::open(&work.path().join("data")).unwrap();
    let before = store_contents(&store);
    let layers = [
        (one_file_layer("good", b"good"), PLAIN_TAR),
        (one_file_layer("bad", b"bad"), PLAIN_TAR),
    ];
    let reference = layout_of(&work.path().join("half"), &layers, 0, &[1]);
    let err = pull(&store, &reference).await.unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert_eq!(
        store_contents(&store),
        before,
        "the good layer and the config are rolled back"
    );
}

const PLAIN_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

#[tokio::test]
async fn hostile_layers_and_bad_manifests_are_refused_and_leave_nothing() {
    if !require(&[], true) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let store = Store::open(&work.path().join("data")).unwrap();
    let before = store_contents(&store);
    let outside = work.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let symlink_target = format!("{}", outside.display());
    let cases: Vec<(&str, Vec<u8>, &str, usize, &str)> = vec![
        (
            "dotdot",
            raw_tar(&[(b"../escape", b'0', b"x")]),
            PLAIN_TAR,
            0,
            "escapes",
        ),
        (
            "absolute-dotdot",
            raw_tar(&[(b"/a/../../escape", b'0', b"x")]),
            PLAIN_TAR,
            0,
            "..",
        ),
        (
            "symlink",
            raw_tar(&[(b"evil", b'2', b""), (b"evil/pwned", b'0', b"x")]),
            PLAIN_TAR,
            0,
            "evil",
        ),
        (
            "hardlink",
            raw_tar(&[(b"hard", b'1', b"")]),
            PLAIN_TAR,
            0,
            "hard",
        ),
        (
            "device",
            raw_tar(&[(b"dev-sda", b'4', b"")]),
            PLAIN_TAR,
            0,
            "device",
        ),
        (
            "media-type",
            raw_tar(&[(b"ok", b'0', b"x")]),
            "application/x-homerun-unknown",
            0,
            "application/x-homerun-unknown",
        ),
        (
            "big-manifest",
            raw_tar(&[(b"ok", b'0', b"x")]),
            PLAIN_TAR,
            5 << 20,
            "limit",
        ),
    ];
    for (name, mut tar, media_type, pad, expect) in cases {
        if name == "symlink" || name == "hardlink" {
            // Point the link entry outside the layer.
            let mut h = tar::Header::from_byte_slice(&tar[..512]).clone();
            let target = if name == "symlink" {
                symlink_target.as_str()
            } else {
                "/etc/passwd"
            };
            h.set_link_name(target).unwrap();
            h.set_cksum();
            tar[..512].copy_from_slice(h.as_bytes());
        }
        let reference = custom_layout(&work.path().join(name), &tar, media_type, pad);
        let err = pull(&store, &reference).await.expect_err(name).to_string();
        assert!(err.contains(expect), "{name}: {err}");
        assert_eq!(
            store_contents(&store),
            before,
            "{name} left something behind"
        );
    }
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing was written outside"
    );
}

#[tokio::test]
async fn what_a_crashed_pull_left_is_never_used_and_is_cleaned_at_open() {
    if !require(&["busybox"], true) {
        return;
    }
    let cat = catalogue().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source = format!("oci:{}", cat.image("probe").path.display());
    let digest = {
        let store = Store::open(dir.path()).unwrap();
        let record = pull(&store, &source).await.unwrap().record;
        store.remove(&record.reference).unwrap();
        store.prune().unwrap();
        record.layers[0].digest.clone()
    };
    let hex = digest.trim_start_matches("sha256:");
    let layers = dir.path().join("images/layers");
    // A crash can leave: an unpack in progress, an unverified layer, or a layer directory
    // whose metadata was never written. None of them counts as the layer.
    for leftover in [
        format!("{hex}.partial-123"),
        format!("{hex}.unverified-1-2"),
        hex.to_string(),
    ] {
        std::fs::create_dir_all(layers.join(&leftover).join("half")).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        std::fs::read_dir(&layers).unwrap().count(),
        0,
        "leftovers removed at open"
    );
    assert!(!store.has_layer(&digest).unwrap());
    let outcome = pull(&store, &source).await.unwrap();
    assert_eq!(
        outcome.layers_fetched, 1,
        "the layer is fetched again, not taken from the leftovers"
    );
    assert!(layer_file(&store, &outcome.record, 0, "probe").is_file());
}
