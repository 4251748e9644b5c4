//! The test images pushed by skopeo into a real `docker-registry`, seen by `skopeo inspect`.

use serde_json::Value;
use testkit::layout::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use testkit::{catalogue, require, Registry};

fn prerequisites() -> bool {
    require(&["docker-registry", "skopeo", "htpasswd", "busybox"], false)
}

fn platforms(index: &Value) -> Vec<String> {
    let mut p: Vec<String> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    p.sort();
    p
}

#[test]
fn probe_image_is_linux_amd64_with_its_config() {
    if !prerequisites() {
        return;
    }
    let cat = catalogue().expect("test images");
    let registry = Registry::start().expect("registry");
    let image = cat.image("probe");
    let reference = registry.push(image).expect("skopeo copy");

    let summary = registry.inspect(&reference, &[]).expect("inspect");
    assert_eq!(summary["Architecture"], "amd64");
    assert_eq!(summary["Os"], "linux");
    assert_eq!(summary["Digest"], image.digest.as_str());
    assert_eq!(summary["Layers"].as_array().unwrap().len(), 1);

    let config = registry
        .inspect(&reference, &["--config"])
        .expect("inspect --config");
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    let c = &config["config"];
    assert_eq!(c["Entrypoint"], serde_json::json!(["/probe"]));
    assert_eq!(c["WorkingDir"], "/");
    assert!(c["ExposedPorts"]["8080/tcp"].is_object(), "{c}");
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        env.iter().any(|e| e.starts_with("PATH=/usr/local/sbin")),
        "{env:?}"
    );

    let raw = registry
        .inspect(&reference, &["--raw"])
        .expect("inspect --raw");
    assert_eq!(raw["mediaType"], OCI_MANIFEST);
    assert_eq!(
        raw["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );

    // The blob the registry stores is the layer we built, byte for byte.
    let layer_digest = raw["layers"][0]["digest"].as_str().unwrap();
    let stored = std::fs::read(testkit::registry::blob_path(
        &registry.storage(),
        layer_digest,
    ))
    .unwrap();
    assert_eq!(testkit::layer::sha256_digest(&stored), layer_digest);
}

#[test]
fn every_catalogue_image_pushes_with_its_manifest_kind() {
    if !prerequisites() {
        return;
    }
    let cat = catalogue().expect("test images");
    let registry = Registry::start().expect("registry");
    let expect = [
        ("probe", OCI_MANIFEST),
        ("probe-nonroot", OCI_MANIFEST),
        ("probe-index", OCI_INDEX),
        ("arm64-only", OCI_INDEX),
        ("probe-docker", DOCKER_MANIFEST),
        ("probe-docker-list", DOCKER_LIST),
        ("layers", OCI_MANIFEST),
        ("busybox", OCI_MANIFEST),
    ];
    assert_eq!(
        cat.images.len(),
        expect.len(),
        "a catalogue image has no check here"
    );
    for (name, media_type) in expect {
        let image = cat.image(name);
        let reference = registry
            .push(image)
            .unwrap_or_else(|e| panic!("pushing {name}: {e}"));
        let raw = registry
            .inspect(&reference, &["--raw"])
            .expect("inspect --raw");
        assert_eq!(raw["mediaType"], media_type, "{name}");
        if name != "layers" {
            // Pushing keeps digests: a client resolving the tag gets what we built.
            let raw_bytes = testkit::registry::run(
                std::process::Command::new("skopeo")
                    .args([
                        "--insecure-policy",
                        "inspect",
                        "--raw",
                        "--tls-verify=false",
                    ])
                    .arg(format!("docker://{reference}")),
            )
            .unwrap();
            assert_eq!(
                testkit::layer::sha256_digest(&raw_bytes),
                image.digest,
                "{name}"
            );
        }
        if media_type == OCI_INDEX || media_type == DOCKER_LIST {
            let mut want = image.platforms.clone();
            want.sort();
            assert_eq!(platforms(&raw), want, "{name}");
        }
    }
    let nonroot = registry
        .inspect(
            &registry.reference("homerun/probe-nonroot:latest"),
            &["--config"],
        )
        .unwrap();
    assert_eq!(nonroot["config"]["User"], "65532:65532");
    assert_eq!(nonroot["config"]["WorkingDir"], "/srv");
    // skopeo compresses a plain-tar layer on its way into a registry (containers/image asks
    // registries for compressed layers, and skopeo 1.9 ignores --dest-decompress there);
    // zstd and gzip pass as they are. Plain-tar layers reach homerun through local sources.
    assert_eq!(
        layer_types(&registry, "homerun/layers:latest"),
        [
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+zstd"
        ]
    );
}

fn layer_types(registry: &Registry, repo: &str) -> Vec<String> {
    let raw = registry
        .inspect(&registry.reference(repo), &["--raw"])
        .unwrap();
    raw["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn archives_are_readable_by_skopeo() {
    if !prerequisites() {
        return;
    }
    let cat = catalogue().expect("test images");
    let registry = Registry::start().expect("registry");
    for (name, transport) in [
        ("probe-oci-archive", "oci-archive"),
        ("probe-docker-archive", "docker-archive"),
    ] {
        let source = format!("{transport}:{}", cat.archive(name).display());
        let reference = registry
            .push_ref(&source, &format!("homerun/{name}:latest"), &[])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let config = registry.inspect(&reference, &["--config"]).unwrap();
        assert_eq!(
            config["config"]["Entrypoint"],
            serde_json::json!(["/probe"]),
            "{name}"
        );
        assert_eq!(config["architecture"], "amd64", "{name}");
    }
}

#[test]
fn basic_auth_registry_refuses_anonymous_clients() {
    if !prerequisites() {
        return;
    }
    let cat = catalogue().expect("test images");
    let registry = Registry::start_with_basic_auth("homerun", "s3cret-pass").expect("registry");
    let reference = registry
        .push(cat.image("probe"))
        .expect("push with credentials");

    let anonymous = testkit::registry::run(
        std::process::Command::new("skopeo")
            .args(["--insecure-policy", "inspect", "--tls-verify=false"])
            .arg(format!("docker://{reference}")),
    )
    .expect_err("anonymous inspect must fail");
    let msg = anonymous.to_string();
    assert!(
        msg.contains("401") || msg.to_lowercase().contains("unauthorized"),
        "{msg}"
    );

    let wrong = testkit::registry::run(
        std::process::Command::new("skopeo")
            .args([
                "--insecure-policy",
                "inspect",
                "--tls-verify=false",
                "--creds",
                "homerun:wrong",
            ])
            .arg(format!("docker://{reference}")),
    )
    .expect_err("wrong password must fail");
    assert!(
        wrong.to_string().to_lowercase().contains("unauthorized")
            || wrong.to_string().contains("401"),
        "{wrong}"
    );

    assert_eq!(
        registry.inspect(&reference, &[]).unwrap()["Architecture"],
        "amd64"
    );
    assert_eq!(
        testkit::registry::http_status(registry.addr(), "/v2/"),
        Some(401)
    );
}

#[test]
fn schema1_conversion_is_available_for_the_image_tests() {
    if !prerequisites() {
        return;
    }
    let cat = catalogue().expect("test images");
    let registry = Registry::start().expect("registry");
    let reference = registry
        .push_ref(
            &cat.image("probe").source,
            "homerun/probe-v2s1:latest",
            &["--format", "v2s1"],
        )
        .expect("push as schema1");
    let raw = registry.inspect(&reference, &["--raw"]).unwrap();
    assert_eq!(raw["schemaVersion"], 1, "{raw}");
    assert_eq!(raw["architecture"], "amd64");
}
