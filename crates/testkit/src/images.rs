//! The catalogue of test images, built by the repo itself from the static probe and Debian's
//! busybox-static: no network, no Docker daemon.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::layer::{aarch64_exit0_elf, sha256_digest, Compression, Layer, LayerBuilder};
use crate::layout::{self, DirLayout, Flavor, ImageConfig, ImageSink, Layout};

pub const TAG: &str = "latest";
/// The builder's sources, part of the fingerprint.
const BUILDER_SOURCES: &[&str] = &[
    include_str!("images.rs"),
    include_str!("layout.rs"),
    include_str!("layer.rs"),
];

/// What the images are made of; equal fingerprints mean equal images.
pub fn fingerprint(probe: &[u8], busybox: &[u8]) -> String {
    let mut all = Vec::new();
    for part in [probe, busybox] {
        all.extend_from_slice(sha256_digest(part).as_bytes());
    }
    for source in BUILDER_SOURCES {
        all.extend_from_slice(sha256_digest(source.as_bytes()).as_bytes());
    }
    sha256_digest(&all)
}
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One image of the catalogue, stored as an OCI image layout or a skopeo `dir:` layout.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TestImage {
    pub name: String,
    /// The layout directory (absolute).
    pub path: PathBuf,
    /// The skopeo source reference: `oci:DIR:TAG` or `dir:DIR`.
    pub source: String,
    pub tag: String,
    /// Digest and media type of what the tag points at (a manifest, an index or a list).
    pub digest: String,
    pub media_type: String,
    /// `os/arch` of every platform the image offers.
    pub platforms: Vec<String>,
    pub description: String,
}

/// What the catalogue builder wrote.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Catalogue {
    /// sha256 over the probe binary, busybox and the builder's own sources: any change to
    /// what goes into the images rebuilds them.
    pub fingerprint: String,
    pub images: BTreeMap<String, TestImage>,
    /// Archives for the local sources: `oci-archive:` and `docker-archive:` files.
    pub archives: BTreeMap<String, PathBuf>,
    /// Paths that must exist (and must not) once the `layers` image is assembled.
    pub layers_present: Vec<String>,
    pub layers_absent: Vec<String>,
}

impl Catalogue {
    pub fn image(&self, name: &str) -> &TestImage {
        self.images
            .get(name)
            .unwrap_or_else(|| panic!("no test image {name:?} in the catalogue"))
    }

    /// Whether every file the catalogue names is still on disk.
    pub fn is_complete(&self) -> bool {
        self.images.values().all(|i| i.path.is_dir()) && self.archives.values().all(|a| a.is_file())
    }

    pub fn archive(&self, name: &str) -> &Path {
        self.archives
            .get(name)
            .unwrap_or_else(|| panic!("no test archive {name:?} in the catalogue"))
    }
}

pub fn uncompressed(layer: &Layer) -> Result<Vec<u8>> {
    match layer.compression {
        Compression::None => Ok(layer.bytes.clone()),
        Compression::Gzip => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&layer.bytes[..])
                .read_to_end(&mut out)
                .context(|| "gunzip".into())?;
            Ok(out)
        }
        Compression::Zstd => zstd::decode_all(&layer.bytes[..]).context(|| "unzstd".into()),
    }
}

fn probe_config(arch: &str) -> ImageConfig {
    ImageConfig {
        architecture: arch.into(),
        env: vec![PATH_ENV.into(), "PROBE_IMAGE=1".into()],
        entrypoint: vec!["/probe".into()],
        cmd: vec![],
        working_dir: "/".into(),
        user: String::new(),
        exposed_ports: vec!["8080/tcp".into()],
        labels: vec![(
            "org.opencontainers.image.title".into(),
            "homerun probe".into(),
        )],
    }
}

/// Builds every test image under `out`, from the static probe at `probe` and the static
/// busybox at `busybox`.
pub fn build_all(out: &Path, probe: &Path, busybox: &Path) -> Result<Catalogue> {
    let probe_bytes = fs::read(probe).context(|| format!("reading {}", probe.display()))?;
    let busybox_bytes = fs::read(busybox).context(|| format!("reading {}", busybox.display()))?;
    fs::create_dir_all(out.join("archives")).context(|| format!("creating {}", out.display()))?;
    let mut images = BTreeMap::new();
    let mut add = |name: &str,
                   path: PathBuf,
                   source: String,
                   desc: &layout::Descriptor,
                   platforms: &[&str],
                   description: &str| {
        images.insert(
            name.to_string(),
            TestImage {
                name: name.into(),
                path,
                source,
                tag: TAG.into(),
                digest: desc.digest.clone(),
                media_type: desc.media_type.clone(),
                platforms: platforms.iter().map(|p| p.to_string()).collect(),
                description: description.into(),
            },
        );
    };
    // Each image in an OCI layout of its own, tagged `latest`.
    let oci = |name: &str| Layout::create(&out.join("oci").join(name));
    let tagged = |mut l: Layout, d: &layout::Descriptor| -> Result<(PathBuf, String)> {
        l.tag(d, TAG);
        let dir = l.finish()?;
        let source = format!("oci:{}:{TAG}", dir.display());
        Ok((dir, source))
    };
    let docker = |name: &str| DirLayout::create(&out.join("dir").join(name));
    let topped = |l: DirLayout, d: &layout::Descriptor| -> Result<(PathBuf, String)> {
        let dir = l.finish(d)?;
        let source = format!("dir:{}", dir.display());
        Ok((dir, source))
    };

    let probe_layer = LayerBuilder::new()
        .file("probe", 0o755, &probe_bytes)?
        .to_owned_finish(Compression::Gzip)?;
    let arm_layer = LayerBuilder::new()
        .file("probe", 0o755, &aarch64_exit0_elf())?
        .to_owned_finish(Compression::Gzip)?;
    let amd64 = probe_config("amd64");
    let arm64 = probe_config("arm64");

    // probe: the everyday single-platform OCI image.
    let l = oci("probe")?;
    let d = l.put_image(Flavor::Oci, &amd64, std::slice::from_ref(&probe_layer))?;
    let (p, src) = tagged(l, &d)?;
    add(
        "probe",
        p,
        src,
        &d,
        &["linux/amd64"],
        "the static probe alone, OCI manifest",
    );

    // probe-nonroot: the probe as an unprivileged USER, in a WorkingDir it owns.
    let home = LayerBuilder::new()
        .dir_owned("srv", 0o755, 65532, 65532)?
        .to_owned_finish(Compression::Gzip)?;
    let nonroot = ImageConfig {
        user: "65532:65532".into(),
        working_dir: "/srv".into(),
        ..amd64.clone()
    };
    let l = oci("probe-nonroot")?;
    let d = l.put_image(Flavor::Oci, &nonroot, &[probe_layer.clone(), home])?;
    let (p, src) = tagged(l, &d)?;
    add(
        "probe-nonroot",
        p,
        src,
        &d,
        &["linux/amd64"],
        "the probe with USER 65532:65532 and WorkingDir /srv",
    );

    // probe-index and arm64-only: multi-platform OCI indexes.
    let l = oci("probe-index")?;
    let a = l.put_image(Flavor::Oci, &amd64, std::slice::from_ref(&probe_layer))?;
    let b = l.put_image(Flavor::Oci, &arm64, std::slice::from_ref(&arm_layer))?;
    let d = l.put_index(Flavor::Oci, &[b.clone(), a])?;
    let (p, src) = tagged(l, &d)?;
    add(
        "probe-index",
        p,
        src,
        &d,
        &["linux/arm64", "linux/amd64"],
        "OCI index: arm64 (listed first) and amd64",
    );
    let l = oci("arm64-only")?;
    let b = l.put_image(Flavor::Oci, &arm64, std::slice::from_ref(&arm_layer))?;
    let d = l.put_index(Flavor::Oci, &[b])?;
    let (p, src) = tagged(l, &d)?;
    add(
        "arm64-only",
        p,
        src,
        &d,
        &["linux/arm64"],
        "OCI index with arm64 only: must be refused",
    );

    // The same image in Docker's formats.
    let l = docker("probe-docker")?;
    let d = l.put_image(Flavor::Docker, &amd64, std::slice::from_ref(&probe_layer))?;
    let (p, src) = topped(l, &d)?;
    add(
        "probe-docker",
        p,
        src,
        &d,
        &["linux/amd64"],
        "Docker v2 schema2 manifest",
    );
    let l = docker("probe-docker-list")?;
    let a = l.put_image(Flavor::Docker, &amd64, std::slice::from_ref(&probe_layer))?;
    let b = l.put_image(Flavor::Docker, &arm64, std::slice::from_ref(&arm_layer))?;
    let d = l.put_index(Flavor::Docker, &[b, a])?;
    let (p, src) = topped(l, &d)?;
    add(
        "probe-docker-list",
        p,
        src,
        &d,
        &["linux/arm64", "linux/amd64"],
        "Docker manifest list: arm64 and amd64",
    );

    // layers: whiteouts, an opaque directory, links, modes, xattrs, all three compressions.
    let (layers, present, absent) = layered(&probe_bytes)?;
    let l = oci("layers")?;
    let d = l.put_image(Flavor::Oci, &amd64, &layers)?;
    let (p, src) = tagged(l, &d)?;
    add(
        "layers",
        p,
        src,
        &d,
        &["linux/amd64"],
        "three layers (gzip, tar, zstd) with whiteouts and an opaque dir",
    );

    // busybox: a shell image for shell-driven tests.
    let bb = busybox_layer(&busybox_bytes, busybox)?;
    let shell = ImageConfig {
        architecture: "amd64".into(),
        env: vec![PATH_ENV.into()],
        cmd: vec!["sh".into()],
        working_dir: "/".into(),
        ..Default::default()
    };
    let l = oci("busybox")?;
    let d = l.put_image(Flavor::Oci, &shell, std::slice::from_ref(&bb))?;
    let (p, src) = tagged(l, &d)?;
    add(
        "busybox",
        p,
        src,
        &d,
        &["linux/amd64"],
        "Debian's busybox-static with its applets, Cmd sh",
    );

    let mut archives = BTreeMap::new();
    let oci_archive = out.join("archives/probe.oci.tar");
    layout::write_oci_archive(&images["probe"].path, &oci_archive)?;
    archives.insert("probe-oci-archive".to_string(), oci_archive);
    let docker_archive = out.join("archives/probe.docker.tar");
    layout::write_docker_archive(
        &amd64,
        std::slice::from_ref(&probe_layer),
        "homerun/probe:latest",
        &docker_archive,
    )?;
    archives.insert("probe-docker-archive".to_string(), docker_archive);

    let catalogue = Catalogue {
        fingerprint: fingerprint(&probe_bytes, &busybox_bytes),
        images,
        archives,
        layers_present: present,
        layers_absent: absent,
    };
    let path = out.join("catalogue.json");
    fs::write(
        &path,
        serde_json::to_vec_pretty(&catalogue).map_err(|e| Error::Invalid(e.to_string()))?,
    )
    .context(|| format!("writing {}", path.display()))?;
    Ok(catalogue)
}

trait FinishOwned {
    fn to_owned_finish(&mut self, c: Compression) -> Result<Layer>;
}

impl FinishOwned for LayerBuilder {
    fn to_owned_finish(&mut self, c: Compression) -> Result<Layer> {
        std::mem::take(self).finish(c)
    }
}

/// Three layers whose union is known: returns them with the paths present and absent after
/// applying them in order.
fn layered(probe: &[u8]) -> Result<(Vec<Layer>, Vec<String>, Vec<String>)> {
    let mut base = LayerBuilder::new();
    base.file("probe", 0o755, probe)?
        .dir("etc", 0o755)?
        .file(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )?
        .dir("data", 0o755)?
        .file("data/keep", 0o644, b"kept\n")?
        .file("data/gone", 0o644, b"deleted by layer 1\n")?
        .dir("data/sub", 0o700)?
        .file("data/sub/deep", 0o600, b"deep\n")?
        .hardlink("data/keep-hard", "data/keep")?
        .symlink("data/keep-link", "/data/keep")?
        .dir("opq", 0o755)?
        .file("opq/old1", 0o644, b"hidden by the opaque dir\n")?
        .file("opq/old2", 0o644, b"hidden by the opaque dir\n")?
        .file("usr-bin-suid", 0o4755, b"#!/bin/false\n")?
        .file_with_xattrs(
            "data/xattr",
            0o644,
            b"has xattrs\n",
            &[("user.homerun", b"layer0")],
        )?;
    let base = base.finish(Compression::Gzip)?;

    let mut middle = LayerBuilder::new();
    middle
        .whiteout("data/gone")?
        .dir("opq", 0o755)?
        .opaque("opq")?
        .file("opq/new", 0o644, b"added with the opaque marker\n")?
        .file("data/added", 0o640, b"added by layer 1\n")?;
    let middle = middle.finish(Compression::None)?;

    let mut top = LayerBuilder::new();
    top.dir("data/sub", 0o755)?
        .whiteout("data/sub/deep")?
        .file("data/zstd", 0o644, b"from a zstd layer\n")?;
    let top = top.finish(Compression::Zstd)?;

    let present = [
        "probe",
        "etc/passwd",
        "data/keep",
        "data/keep-hard",
        "data/keep-link",
        "data/xattr",
        "data/added",
        "data/zstd",
        "data/sub",
        "opq/new",
        "usr-bin-suid",
    ];
    let absent = ["data/gone", "data/sub/deep", "opq/old1", "opq/old2"];
    Ok((
        vec![base, middle, top],
        present.iter().map(|s| s.to_string()).collect(),
        absent.iter().map(|s| s.to_string()).collect(),
    ))
}

/// `/bin/busybox` with a symlink per applet, the way Debian's busybox image lays it out.
fn busybox_layer(busybox: &[u8], path: &Path) -> Result<Layer> {
    let out = std::process::Command::new(path)
        .arg("--list")
        .output()
        .context(|| format!("running {} --list", path.display()))?;
    if !out.status.success() {
        return Err(Error::Command {
            command: format!("{} --list", path.display()),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        });
    }
    let mut b = LayerBuilder::new();
    b.dir("bin", 0o755)?
        .file("bin/busybox", 0o755, busybox)?
        .dir("tmp", 0o1777)?
        .dir("etc", 0o755)?
        .file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n")?;
    for applet in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        if applet != "busybox" && !applet.contains('/') {
            b.symlink(&format!("bin/{applet}"), "busybox")?;
        }
    }
    b.finish(Compression::Gzip)
}
