//! Writes images as OCI image layouts (`oci:DIR:TAG` for skopeo), in OCI or Docker media
//! types, plus the two archive formats homerun reads without a registry.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{Error, IoContext, Result};
use crate::layer::{sha256_digest, Layer};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Which family of media types a manifest uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Oci,
    Docker,
}

/// A content descriptor (digest, size, media type, optional platform).
#[derive(Clone, Debug)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    pub platform: Option<(String, String)>,
}

impl Descriptor {
    fn to_json(&self) -> Value {
        let mut v =
            json!({ "mediaType": self.media_type, "digest": self.digest, "size": self.size });
        if let Some((os, arch)) = &self.platform {
            v["platform"] = json!({ "os": os, "architecture": arch });
            if arch == "arm64" {
                v["platform"]["variant"] = json!("v8");
            }
        }
        v
    }
}

/// An image configuration, as `docker inspect` shows its `Config` part.
#[derive(Clone, Debug, Default)]
pub struct ImageConfig {
    pub architecture: String,
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub exposed_ports: Vec<String>,
    pub labels: Vec<(String, String)>,
}

impl ImageConfig {
    fn to_json(&self, layers: &[Layer]) -> Value {
        let mut config = json!({
            "Env": self.env,
            "WorkingDir": self.working_dir,
        });
        if !self.entrypoint.is_empty() {
            config["Entrypoint"] = json!(self.entrypoint);
        }
        if !self.cmd.is_empty() {
            config["Cmd"] = json!(self.cmd);
        }
        if !self.user.is_empty() {
            config["User"] = json!(self.user);
        }
        if !self.exposed_ports.is_empty() {
            config["ExposedPorts"] = Value::Object(
                self.exposed_ports
                    .iter()
                    .map(|p| (p.clone(), json!({})))
                    .collect(),
            );
        }
        if !self.labels.is_empty() {
            config["Labels"] = Value::Object(
                self.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect(),
            );
        }
        json!({
            "created": "2023-11-14T22:13:20Z",
            "author": "homerun testkit",
            "architecture": self.architecture,
            "os": "linux",
            "config": config,
            "rootfs": { "type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>() },
            "history": layers.iter().enumerate().map(|(i, _)| json!({
                "created": "2023-11-14T22:13:20Z",
                "created_by": format!("homerun testkit layer {i}"),
            })).collect::<Vec<_>>(),
        })
    }
}

/// Where images are written: an OCI image layout (`oci:DIR:TAG`) or skopeo's directory
/// format (`dir:DIR`). skopeo 1.9 reads only OCI media types from an OCI layout, so the
/// Docker-format images go into `dir:` layouts.
pub trait ImageSink {
    fn put_blob(&self, bytes: &[u8], media_type: &str) -> Result<Descriptor>;

    /// Stores a manifest, index or list. The default stores it as a blob (OCI layout).
    fn put_manifest(&self, bytes: &[u8], media_type: &str) -> Result<Descriptor> {
        self.put_blob(bytes, media_type)
    }

    /// Writes config, layers and manifest of a single-platform image.
    fn put_image(
        &self,
        flavor: Flavor,
        config: &ImageConfig,
        layers: &[Layer],
    ) -> Result<Descriptor> {
        let (manifest_type, config_type) = match flavor {
            Flavor::Oci => (OCI_MANIFEST, OCI_CONFIG),
            Flavor::Docker => (DOCKER_MANIFEST, DOCKER_CONFIG),
        };
        let config_desc = self.put_blob(&to_json_bytes(&config.to_json(layers))?, config_type)?;
        let mut layer_descs = Vec::new();
        for layer in layers {
            let media_type = match flavor {
                Flavor::Oci => layer.oci_media_type(),
                Flavor::Docker => layer.docker_media_type()?,
            };
            layer_descs.push(self.put_blob(&layer.bytes, media_type)?.to_json());
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": config_desc.to_json(),
            "layers": layer_descs,
        });
        let mut desc = self.put_manifest(&to_json_bytes(&manifest)?, manifest_type)?;
        desc.platform = Some(("linux".into(), config.architecture.clone()));
        Ok(desc)
    }

    /// Writes an OCI index or a Docker manifest list over `manifests`.
    fn put_index(&self, flavor: Flavor, manifests: &[Descriptor]) -> Result<Descriptor> {
        let media_type = match flavor {
            Flavor::Oci => OCI_INDEX,
            Flavor::Docker => DOCKER_LIST,
        };
        let index = json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": manifests.iter().map(Descriptor::to_json).collect::<Vec<_>>(),
        });
        self.put_manifest(&to_json_bytes(&index)?, media_type)
    }
}

fn to_json_bytes(value: &Value) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(|e| Error::Invalid(format!("serialising JSON: {e}")))
}

fn fresh_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).context(|| format!("removing old {}", dir.display()))?;
    }
    fs::create_dir_all(dir).context(|| format!("creating {}", dir.display()))
}

fn write_named(path: &Path, bytes: &[u8], media_type: &str) -> Result<Descriptor> {
    fs::write(path, bytes).context(|| format!("writing {}", path.display()))?;
    Ok(Descriptor {
        media_type: media_type.to_string(),
        digest: sha256_digest(bytes),
        size: bytes.len() as u64,
        platform: None,
    })
}

fn hex_of(bytes: &[u8]) -> String {
    sha256_digest(bytes)
        .trim_start_matches("sha256:")
        .to_string()
}

/// An OCI image layout directory being written.
pub struct Layout {
    dir: PathBuf,
    tagged: Vec<Value>,
}

impl Layout {
    pub fn create(dir: &Path) -> Result<Self> {
        fresh_dir(dir)?;
        fs::create_dir_all(dir.join("blobs/sha256"))
            .context(|| format!("creating {}", dir.display()))?;
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
            .context(|| format!("writing {}/oci-layout", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            tagged: Vec::new(),
        })
    }

    /// Names `desc` in `index.json` with a tag (`org.opencontainers.image.ref.name`).
    pub fn tag(&mut self, desc: &Descriptor, tag: &str) {
        let mut v = desc.to_json();
        v.as_object_mut().map(|o| o.remove("platform"));
        v["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
        self.tagged.push(v);
    }

    pub fn finish(self) -> Result<PathBuf> {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": self.tagged,
        });
        let path = self.dir.join("index.json");
        fs::write(&path, to_json_bytes(&index)?)
            .context(|| format!("writing {}", path.display()))?;
        Ok(self.dir)
    }
}

impl ImageSink for Layout {
    fn put_blob(&self, bytes: &[u8], media_type: &str) -> Result<Descriptor> {
        write_named(
            &self.dir.join("blobs/sha256").join(hex_of(bytes)),
            bytes,
            media_type,
        )
    }
}

/// skopeo's `dir:` format (version 1.1): blobs named by hex digest, the top manifest in
/// `manifest.json`, a list's instance manifests in `HEX.manifest.json`.
pub struct DirLayout {
    dir: PathBuf,
}

impl DirLayout {
    pub fn create(dir: &Path) -> Result<Self> {
        fresh_dir(dir)?;
        fs::write(dir.join("version"), "Directory Transport Version: 1.1\n")
            .context(|| format!("writing {}/version", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// Makes `top` the manifest that `dir:DIR` resolves to.
    pub fn finish(self, top: &Descriptor) -> Result<PathBuf> {
        let from = self.dir.join(format!(
            "{}.manifest.json",
            top.digest.trim_start_matches("sha256:")
        ));
        let to = self.dir.join("manifest.json");
        fs::rename(&from, &to)
            .context(|| format!("renaming {} to {}", from.display(), to.display()))?;
        Ok(self.dir)
    }
}

impl ImageSink for DirLayout {
    fn put_blob(&self, bytes: &[u8], media_type: &str) -> Result<Descriptor> {
        write_named(&self.dir.join(hex_of(bytes)), bytes, media_type)
    }

    fn put_manifest(&self, bytes: &[u8], media_type: &str) -> Result<Descriptor> {
        let name = format!("{}.manifest.json", hex_of(bytes));
        write_named(&self.dir.join(name), bytes, media_type)
    }
}

/// `oci-archive:` format: the layout directory as a tar.
pub fn write_oci_archive(layout: &Path, archive: &Path) -> Result<()> {
    let file = fs::File::create(archive).context(|| format!("creating {}", archive.display()))?;
    let mut tar = tar::Builder::new(file);
    tar.mode(tar::HeaderMode::Deterministic);
    tar.append_dir_all(".", layout)
        .context(|| format!("archiving {}", layout.display()))?;
    tar.finish()
        .context(|| format!("finishing {}", archive.display()))
}

/// `docker-archive:` format, as `docker save` writes it: `manifest.json`, the config, and
/// each layer as an uncompressed tar named by its diff ID.
pub fn write_docker_archive(
    config: &ImageConfig,
    layers: &[Layer],
    repo_tag: &str,
    archive: &Path,
) -> Result<()> {
    let config_bytes = serde_json::to_vec(&config.to_json(layers))
        .map_err(|e| Error::Invalid(format!("config: {e}")))?;
    let config_name = format!(
        "{}.json",
        sha256_digest(&config_bytes).trim_start_matches("sha256:")
    );
    let mut layer_names = Vec::new();
    let file = fs::File::create(archive).context(|| format!("creating {}", archive.display()))?;
    let mut tar = tar::Builder::new(file);
    let mut add = |name: &str, data: &[u8]| -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(crate::layer::MTIME);
        tar.append_data(&mut h, name, data)
            .context(|| format!("adding {name} to {}", archive.display()))
    };
    add(&config_name, &config_bytes)?;
    for layer in layers {
        let raw = crate::images::uncompressed(layer)?;
        let name = format!("{}/layer.tar", layer.diff_id.trim_start_matches("sha256:"));
        add(&name, &raw)?;
        layer_names.push(name);
    }
    let manifest =
        json!([{ "Config": config_name, "RepoTags": [repo_tag], "Layers": layer_names }]);
    add("manifest.json", manifest.to_string().as_bytes())?;
    tar.into_inner()
        .context(|| format!("finishing {}", archive.display()))?;
    Ok(())
}
