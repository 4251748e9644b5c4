//! The secrets flags of `deploy` and `jobs create|update` (`--set-secrets`,
//! `--update-secrets`, `--remove-secrets`, `--clear-secrets`), as gcloud reads them.
//!
//! A key is an env var name (`DB_PASS=db-pass:3`: the env var takes the secret's
//! version 3) or, when it starts with `/`, a file (`/etc/db/pass=db-pass:latest`: a
//! secret volume of that secret, mounted at `/etc/db`, with an item `pass` for that
//! version). A directory holds files of one secret only, as on Cloud Run. The value is
//! `SECRET:VERSION` (`latest` or a number; required), or another project's
//! `projects/P/secrets/SECRET[:VERSION]` (`latest` when left out).
//!
//! The env var flags (`--set-env-vars`...) own the env vars with values, these flags
//! the ones set from secrets: `--set-secrets` replaces every secret env var and secret
//! mount of the container, and leaves the others. Removals of both kinds happen before
//! additions of either, so a name can change kind in one command.

use std::collections::HashSet;

use anyhow::bail;
use clap::Args;

use api::k8s::{EnvVarSource, SecretKeySelector, SecretVolumeSource, VersionToPath};
use api::{Container, EnvVar, Volume, VolumeMount};

use super::args::{is_secret_env, parse_dict, split_list, EnvArgs};

/// A secret's version, as a flag names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRef {
    /// The secret's id, or `projects/P/secrets/S` for another project's.
    pub secret: String,
    /// `latest` or a version number.
    pub version: String,
}

/// Secret ids as Secret Manager takes them: letters, digits, `-` and `_`, at most 255.
fn is_secret_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Parses the value of one `KEY=VALUE` of a secrets flag (`key` names it in errors).
pub fn parse_secret_ref(key: &str, value: &str) -> anyhow::Result<SecretRef> {
    if let Some(rest) = value.strip_prefix("projects/") {
        // Another project's: projects/P/secrets/S, then :V or /versions/V, or neither.
        let Some((project, rest)) = rest.split_once("/secrets/") else {
            bail!("[{value}] is not a secret: use SECRET:VERSION or projects/PROJECT/secrets/SECRET:VERSION");
        };
        let (secret, version) = match rest.split_once("/versions/") {
            Some((s, v)) => (s, v),
            None => match rest.split_once(':') {
                Some((s, v)) => (s, v),
                None => (rest, "latest"),
            },
        };
        if project.is_empty() || project.contains('/') || !is_secret_id(secret) {
            bail!("[{value}] is not a valid secret name");
        }
        if version.is_empty() {
            bail!("[{value}]: the version is empty (a number, or latest)");
        }
        return Ok(SecretRef {
            secret: format!("projects/{project}/secrets/{secret}"),
            version: version.to_string(),
        });
    }
    let (secret, version) = match value.split(':').collect::<Vec<_>>()[..] {
        [_] => bail!(
            "No secret version specified for {key}. Use {key}:latest to reference the latest version."
        ),
        [secret, version] => (secret, version),
        _ => bail!("Invalid secret spec [{value}]"),
    };
    if !is_secret_id(secret) {
        bail!("[{secret}] is not a valid secret name");
    }
    if version.is_empty() {
        bail!("[{value}]: the version is empty (a number, or latest)");
    }
    Ok(SecretRef {
        secret: secret.to_string(),
        version: version.to_string(),
    })
}

/// The secrets flags of a command that writes a template.
#[derive(Args, Debug, Clone, Default)]
pub struct SecretArgs {
    /// KEY=SECRET:VERSION,...: env vars (KEY a name) and files (KEY a path, /DIR/FILE)
    /// from secrets, replacing every other secret of the container.
    #[arg(long, conflicts_with_all = ["update_secrets", "remove_secrets", "clear_secrets"])]
    pub set_secrets: Option<String>,
    /// KEY=SECRET:VERSION,...: secret env vars and files set or changed, the others kept.
    #[arg(long, conflicts_with = "clear_secrets")]
    pub update_secrets: Option<String>,
    /// KEY,...: secret env vars (names) and files (paths) removed.
    #[arg(long, conflicts_with = "clear_secrets")]
    pub remove_secrets: Option<String>,
    /// Remove every secret env var and file.
    #[arg(long)]
    pub clear_secrets: bool,
}

impl SecretArgs {
    fn parse(&self) -> anyhow::Result<SecretChanges> {
        let mut changes = SecretChanges {
            clear: self.clear_secrets || self.set_secrets.is_some(),
            removes: self
                .remove_secrets
                .as_deref()
                .map(split_list)
                .unwrap_or_default(),
            ..Default::default()
        };
        let given = [
            ("--set-secrets", &self.set_secrets),
            ("--update-secrets", &self.update_secrets),
        ];
        for (flag, value) in given {
            let Some(value) = value else { continue };
            for (key, v) in parse_dict(value, flag)? {
                let r = parse_secret_ref(&key, &v).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
                if key.starts_with('/') {
                    split_file_path(&key).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
                    changes.files.push((key, r));
                } else {
                    changes.env.push((key, r));
                }
            }
        }
        for key in changes.removes.iter().filter(|k| k.starts_with('/')) {
            split_file_path(key).map_err(|e| anyhow::anyhow!("--remove-secrets: {e}"))?;
        }
        Ok(changes)
    }
}

/// What the secrets flags ask, parsed.
#[derive(Debug, Default)]
struct SecretChanges {
    /// Every secret env var and mount of the container goes first.
    clear: bool,
    /// Env var names and file paths removed.
    removes: Vec<String>,
    /// Env vars set from secrets, in order.
    env: Vec<(String, SecretRef)>,
    /// Files (absolute paths) set from secrets, in order.
    files: Vec<(String, SecretRef)>,
}

/// `/dir/file` as the mount's directory and the item's path.
fn split_file_path(path: &str) -> anyhow::Result<(&str, &str)> {
    match path.rsplit_once('/') {
        Some((dir, file)) if !dir.is_empty() && !file.is_empty() => Ok((dir, file)),
        Some((_, "")) => bail!("[{path}] names no file: give the file's path, like {path}FILE"),
        _ => bail!(
            "[{path}]: a secret file is mounted in a directory of its own, like /secrets{path}"
        ),
    }
}

/// Changes the env vars and secret mounts of `containers[index]`, and the `volumes` of
/// its template, as the env var and secrets flags say (see the module documentation).
pub fn apply_env_and_secrets(
    env: &EnvArgs,
    secrets: &SecretArgs,
    containers: &mut [Container],
    index: usize,
    volumes: &mut Vec<Volume>,
) -> anyhow::Result<()> {
    let changes = secrets.parse()?;
    env.prune(&mut containers[index].env);
    changes.prune(containers, index, volumes);
    env.add(&mut containers[index].env)?;
    changes.add(containers, index, volumes)?;
    // A secret volume no container mounts any more goes with its last mount.
    let mounted: HashSet<String> = containers
        .iter()
        .flat_map(|c| c.volume_mounts.iter().map(|m| m.name.clone()))
        .collect();
    volumes.retain(|v| v.secret.is_none() || mounted.contains(&v.name));
    Ok(())
}

fn secret_env(name: &str, r: &SecretRef) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: None,
        value_source: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                secret: r.secret.clone(),
                version: r.version.clone(),
            }),
        }),
    }
}

fn secret_source<'v>(volumes: &'v mut [Volume], name: &str) -> Option<&'v mut SecretVolumeSource> {
    volumes
        .iter_mut()
        .find(|v| v.name == name)
        .and_then(|v| v.secret.as_mut())
}

fn is_secret_volume(volumes: &[Volume], name: &str) -> bool {
    volumes.iter().any(|v| v.name == name && v.secret.is_some())
}

/// Names of volumes the other containers mount.
fn mounted_elsewhere(containers: &[Container], index: usize) -> HashSet<String> {
    containers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != index)
        .flat_map(|(_, c)| c.volume_mounts.iter().map(|m| m.name.clone()))
        .collect()
}

/// A volume name (a DNS label) for a new volume of `secret`, unused in `volumes`.
fn unique_volume_name(secret: &str, volumes: &[Volume]) -> String {
    let id = secret.rsplit('/').next().unwrap_or(secret);
    let mut base: String = id
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .collect();
    base.truncate(50);
    let base = base.trim_matches('-');
    let base = if base.is_empty() { "secret" } else { base };
    let taken = |n: &str| volumes.iter().any(|v| v.name == n);
    if !taken(base) {
        return base.to_string();
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|n| !taken(n))
        .expect("some suffix is free")
}

/// Gives the container's mount at `dir` a volume of its own (a copy of the one it
/// shares with other mounts or containers), so that changing it changes nothing else.
fn own_volume(containers: &mut [Container], index: usize, volumes: &mut Vec<Volume>, dir: &str) {
    let c = &containers[index];
    let Some(name) = c
        .volume_mounts
        .iter()
        .find(|m| m.mount_path == dir)
        .map(|m| m.name.clone())
    else {
        return;
    };
    let shared = c.volume_mounts.iter().filter(|m| m.name == name).count() > 1
        || mounted_elsewhere(containers, index).contains(&name);
    if !shared {
        return;
    }
    let Some(volume) = volumes.iter().find(|v| v.name == name).cloned() else {
        return;
    };
    let secret = volume.secret.as_ref().map(|s| s.secret.clone());
    let copy = Volume {
        name: unique_volume_name(secret.as_deref().unwrap_or(&name), volumes),
        ..volume
    };
    for m in &mut containers[index].volume_mounts {
        if m.mount_path == dir {
            m.name = copy.name.clone();
        }
    }
    volumes.push(copy);
}

impl SecretChanges {
    /// `--clear-secrets`, `--set-secrets`' clearing and `--remove-secrets`.
    fn prune(&self, containers: &mut [Container], index: usize, volumes: &mut Vec<Volume>) {
        let c = &mut containers[index];
        if self.clear {
            c.env.retain(|e| !is_secret_env(e));
            c.volume_mounts
                .retain(|m| !is_secret_volume(volumes, &m.name));
            return;
        }
        c.env
            .retain(|e| !(is_secret_env(e) && self.removes.contains(&e.name)));
        for path in self.removes.iter().filter(|k| k.starts_with('/')) {
            let Ok((dir, file)) = split_file_path(path) else {
                continue;
            };
            let c = &containers[index];
            let Some(mount) = c.volume_mounts.iter().find(|m| m.mount_path == dir) else {
                continue;
            };
            if !is_secret_volume(volumes, &mount.name) {
                continue;
            }
            own_volume(containers, index, volumes, dir);
            let c = &mut containers[index];
            let name = c
                .volume_mounts
                .iter()
                .find(|m| m.mount_path == dir)
                .map(|m| m.name.clone())
                .unwrap_or_default();
            let Some(source) = secret_source(volumes, &name) else {
                continue;
            };
            source.items.retain(|i| i.path != file);
            if source.items.is_empty() {
                c.volume_mounts.retain(|m| m.mount_path != dir);
            }
        }
    }

    /// `--set-secrets` and `--update-secrets`' env vars and files.
    fn add(
        &self,
        containers: &mut [Container],
        index: usize,
        volumes: &mut Vec<Volume>,
    ) -> anyhow::Result<()> {
        let c = &mut containers[index];
        for (name, r) in &self.env {
            match c.env.iter_mut().find(|e| e.name == *name) {
                Some(e) if !is_secret_env(e) => bail!(
                    "env var [{name}] has a value: remove it with --remove-env-vars={name} to set it from a secret"
                ),
                Some(e) => *e = secret_env(name, r),
                None => c.env.push(secret_env(name, r)),
            }
        }

        // The new files, by directory: one secret a directory.
        let mut dirs: Vec<(String, SecretVolumeSource)> = Vec::new();
        for (path, r) in &self.files {
            let (dir, file) = split_file_path(path)?;
            let item = VersionToPath {
                path: file.to_string(),
                version: r.version.clone(),
                mode: 0,
            };
            match dirs.iter_mut().find(|(d, _)| d == dir) {
                Some((_, source)) => {
                    if source.secret != r.secret {
                        bail!("Cannot update secret at [{path}] because a different secret is already mounted in the same directory.");
                    }
                    source.items.retain(|i| i.path != item.path);
                    source.items.push(item);
                }
                None => dirs.push((
                    dir.to_string(),
                    SecretVolumeSource {
                        secret: r.secret.clone(),
                        items: vec![item],
                        default_mode: 0,
                    },
                )),
            }
        }

        for (dir, source) in dirs {
            let existing = containers[index]
                .volume_mounts
                .iter()
                .find(|m| m.mount_path == dir)
                .map(|m| m.name.clone());
            let Some(name) = existing else {
                let name = unique_volume_name(&source.secret, volumes);
                volumes.push(Volume {
                    name: name.clone(),
                    secret: Some(source),
                    ..Default::default()
                });
                containers[index].volume_mounts.push(VolumeMount {
                    name,
                    mount_path: dir,
                });
                continue;
            };
            if !is_secret_volume(volumes, &name) {
                bail!("Cannot update mount [{dir}] because its mounted volume is of a different source type.");
            }
            own_volume(containers, index, volumes, &dir);
            let name = containers[index]
                .volume_mounts
                .iter()
                .find(|m| m.mount_path == dir)
                .map(|m| m.name.clone())
                .unwrap_or(name);
            let stored = secret_source(volumes, &name).expect("a secret volume");
            if stored.secret == source.secret {
                // The same secret: the files given change or join the others.
                for item in source.items {
                    match stored.items.iter_mut().find(|i| i.path == item.path) {
                        Some(i) => *i = item,
                        None => stored.items.push(item),
                    }
                }
            } else {
                // Another secret may take the directory only if it replaces every file.
                let given: HashSet<&str> = source.items.iter().map(|i| i.path.as_str()).collect();
                if !stored.items.iter().all(|i| given.contains(i.path.as_str())) {
                    bail!("Multiple secrets are specified for directory [{dir}]. Cloud Run only supports one secret per directory");
                }
                *stored = SecretVolumeSource {
                    default_mode: stored.default_mode,
                    ..source
                };
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// The flags as a command line takes them.
    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        env: EnvArgs,
        #[command(flatten)]
        secrets: SecretArgs,
    }

    fn flags(args: &[&str]) -> anyhow::Result<Flags> {
        Ok(Flags::try_parse_from(
            std::iter::once("test").chain(args.iter().copied()),
        )?)
    }

    /// Applies the flags `args` to the first of `containers`.
    fn apply(
        containers: &mut [Container],
        volumes: &mut Vec<Volume>,
        args: &[&str],
    ) -> anyhow::Result<()> {
        let f = flags(args)?;
        apply_env_and_secrets(&f.env, &f.secrets, containers, 0, volumes)
    }

    fn r(secret: &str, version: &str) -> SecretRef {
        SecretRef {
            secret: secret.into(),
            version: version.into(),
        }
    }

    fn secret_of(e: &EnvVar) -> (&str, &str) {
        let s = e
            .value_source
            .as_ref()
            .and_then(|s| s.secret_key_ref.as_ref())
            .unwrap();
        (s.secret.as_str(), s.version.as_str())
    }

    fn items(v: &Volume) -> Vec<(&str, &str)> {
        v.secret
            .as_ref()
            .unwrap()
            .items
            .iter()
            .map(|i| (i.path.as_str(), i.version.as_str()))
            .collect()
    }

    fn mount(name: &str, path: &str) -> VolumeMount {
        VolumeMount {
            name: name.into(),
            mount_path: path.into(),
        }
    }

    #[test]
    fn references_as_gcloud_writes_them() {
        assert_eq!(parse_secret_ref("K", "db:3").unwrap(), r("db", "3"));
        assert_eq!(
            parse_secret_ref("K", "DB_pass-1:latest").unwrap(),
            r("DB_pass-1", "latest")
        );
        assert_eq!(
            parse_secret_ref("K", "projects/other/secrets/db").unwrap(),
            r("projects/other/secrets/db", "latest")
        );
        assert_eq!(
            parse_secret_ref("K", "projects/123/secrets/db:2").unwrap(),
            r("projects/123/secrets/db", "2")
        );
        assert_eq!(
            parse_secret_ref("K", "projects/123/secrets/db/versions/4").unwrap(),
            r("projects/123/secrets/db", "4")
        );
        let e = parse_secret_ref("DB", "db").unwrap_err().to_string();
        assert_eq!(
            e,
            "No secret version specified for DB. Use DB:latest to reference the latest version."
        );
        assert!(parse_secret_ref("K", "a:b:c").is_err());
        assert!(parse_secret_ref("K", "bad/name:1").is_err());
        assert!(parse_secret_ref("K", "db:").is_err());
    }

    #[test]
    fn set_secrets_makes_env_vars_and_a_volume_per_directory() {
        let mut containers = vec![Container {
            env: vec![EnvVar::new("PLAIN", "1")],
            ..Default::default()
        }];
        let mut volumes = Vec::new();
        apply(
            &mut containers,
            &mut volumes,
            &[
                "--set-secrets",
                "DB_PASS=db:3,/etc/tls/cert=tls:latest,/etc/tls/key=tls:2,/run/token=Api_Token:1",
            ],
        )
        .unwrap();
        let c = &containers[0];
        assert_eq!(c.env.len(), 2);
        assert_eq!(c.env[0], EnvVar::new("PLAIN", "1"));
        assert_eq!(c.env[1].name, "DB_PASS");
        assert_eq!(secret_of(&c.env[1]), ("db", "3"));
        assert_eq!(
            c.volume_mounts,
            [mount("tls", "/etc/tls"), mount("api-token", "/run")]
        );
        assert_eq!(volumes[0].secret.as_ref().unwrap().secret, "tls");
        assert_eq!(items(&volumes[0]), [("cert", "latest"), ("key", "2")]);
        assert_eq!(volumes[1].name, "api-token");
        assert_eq!(volumes[1].secret.as_ref().unwrap().secret, "Api_Token");

        // --set-secrets again replaces every secret, keeping the literal env var.
        apply(
            &mut containers,
            &mut volumes,
            &["--set-secrets", "OTHER=db:latest"],
        )
        .unwrap();
        let c = &containers[0];
        assert_eq!(c.env.len(), 2);
        assert_eq!(c.env[1].name, "OTHER");
        assert!(c.volume_mounts.is_empty());
        assert!(volumes.is_empty(), "{volumes:?}");
    }

    #[test]
    fn update_remove_and_clear() {
        let mut containers = vec![Container {
            volume_mounts: vec![mount("cache", "/cache")],
            ..Default::default()
        }];
        let mut volumes = vec![Volume {
            name: "cache".into(),
            empty_dir: Some(Default::default()),
            ..Default::default()
        }];
        let (c, v) = (&mut containers, &mut volumes);
        apply(c, v, &["--update-secrets", "A=a:1,/s/one=s:1"]).unwrap();
        apply(
            c,
            v,
            &["--update-secrets", "B=b:2,A=a:2,/s/two=s:2,/s/one=s:3"],
        )
        .unwrap();
        let env: Vec<(&str, (&str, &str))> = c[0]
            .env
            .iter()
            .map(|e| (e.name.as_str(), secret_of(e)))
            .collect();
        assert_eq!(env, [("A", ("a", "2")), ("B", ("b", "2"))]);
        assert_eq!(items(&v[1]), [("one", "3"), ("two", "2")]);

        // Another secret in the same directory: refused unless it replaces every file;
        // a secret over the emptyDir's mount: refused.
        let err = apply(c, v, &["--update-secrets", "/s/one=t:1"]).unwrap_err();
        assert!(
            err.to_string().contains("one secret per directory"),
            "{err}"
        );
        let err = apply(c, v, &["--update-secrets", "/cache/x=s:1"]).unwrap_err();
        assert!(err.to_string().contains("different source type"), "{err}");
        let err = apply(c, v, &["--update-secrets", "/d/a=s:1,/d/b=t:1"]).unwrap_err();
        assert!(err.to_string().contains("different secret"), "{err}");
        apply(c, v, &["--update-secrets", "/s/one=t:1,/s/two=t:1"]).unwrap();
        assert_eq!(v[1].secret.as_ref().unwrap().secret, "t");
        apply(c, v, &["--update-secrets", "/s/one=s:3,/s/two=s:2"]).unwrap();

        apply(c, v, &["--remove-secrets", "A,/s/one,NOPE,/nowhere/x"]).unwrap();
        assert_eq!(c[0].env.len(), 1);
        assert_eq!(c[0].env[0].name, "B");
        assert_eq!(items(&v[1]), [("two", "2")]);

        // The directory's last file takes its volume with it.
        apply(c, v, &["--remove-secrets", "/s/two"]).unwrap();
        assert_eq!(c[0].volume_mounts.len(), 1);
        assert_eq!(v.len(), 1);

        apply(c, v, &["--update-secrets", "/s/x=s:1"]).unwrap();
        apply(c, v, &["--clear-secrets"]).unwrap();
        assert!(c[0].env.is_empty());
        assert_eq!(c[0].volume_mounts, [mount("cache", "/cache")]);
        assert_eq!(v.len(), 1, "the emptyDir stays");
    }

    #[test]
    fn a_name_is_a_value_or_a_secret() {
        let mut containers = vec![Container {
            env: vec![EnvVar::new("X", "1")],
            ..Default::default()
        }];
        let (c, v) = (&mut containers, &mut Vec::new());
        let err = apply(c, v, &["--update-secrets", "X=x:1"]).unwrap_err();
        assert!(err.to_string().contains("--remove-env-vars=X"), "{err}");
        // Removing the value and setting the secret in one command is fine.
        apply(
            c,
            v,
            &["--remove-env-vars", "X", "--update-secrets", "X=x:1"],
        )
        .unwrap();
        assert!(is_secret_env(&c[0].env[0]));
        // --set-env-vars and --clear-env-vars leave secrets alone; a value over one is
        // refused.
        apply(c, v, &["--clear-env-vars"]).unwrap();
        assert_eq!(c[0].env.len(), 1);
        let err = apply(c, v, &["--set-env-vars", "X=2"]).unwrap_err();
        assert!(err.to_string().contains("--remove-secrets=X"), "{err}");
        apply(c, v, &["--set-env-vars", "X=2", "--remove-secrets", "X"]).unwrap();
        assert_eq!(c[0].env, [EnvVar::new("X", "2")]);
    }

    #[test]
    fn shared_volumes_are_copied_before_a_change() {
        let mut containers = vec![
            Container {
                volume_mounts: vec![mount("s", "/s")],
                ..Default::default()
            },
            Container {
                name: "sidecar".into(),
                volume_mounts: vec![mount("s", "/s")],
                ..Default::default()
            },
        ];
        let mut volumes = vec![Volume {
            name: "s".into(),
            secret: Some(SecretVolumeSource {
                secret: "s".into(),
                items: vec![VersionToPath {
                    path: "a".into(),
                    version: "1".into(),
                    mode: 0,
                }],
                default_mode: 0,
            }),
            ..Default::default()
        }];
        apply(
            &mut containers,
            &mut volumes,
            &["--update-secrets", "/s/b=s:2"],
        )
        .unwrap();
        assert_eq!(containers[0].volume_mounts, [mount("s-2", "/s")]);
        assert_eq!(containers[1].volume_mounts, [mount("s", "/s")]);
        assert_eq!(items(&volumes[0]), [("a", "1")]);
        assert_eq!(items(&volumes[1]), [("a", "1"), ("b", "2")]);
    }

    #[test]
    fn malformed_flags() {
        let bad = |args: &[&str]| {
            apply(&mut [Container::default()], &mut Vec::new(), args)
                .unwrap_err()
                .to_string()
        };
        assert!(bad(&["--update-secrets", "/x=s:1"]).contains("directory of its own"));
        assert!(bad(&["--update-secrets", "/x/=s:1"]).contains("names no file"));
        assert!(bad(&["--remove-secrets", "/x"]).contains("directory of its own"));
        assert!(
            bad(&["--update-secrets", "/d/x=s"]).contains("No secret version specified for /d/x")
        );
        assert!(
            bad(&["--set-secrets", "A=a:1", "--update-secrets", "B=b:1"])
                .contains("cannot be used with")
        );
        assert!(bad(&["--clear-secrets", "--remove-secrets", "A"]).contains("cannot be used with"));
    }
}
