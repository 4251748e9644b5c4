//! The OCI bundle of one container: `config.json` generated with oci-spec from runc's
//! defaults (the same as `runc spec`: namespaces, /proc, /dev, /sys, masked and read-only
//! paths), tightened and filled in as Docker and Cloud Run do: Docker's capabilities and
//! seccomp profile, no_new_privs.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxMemoryBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder,
    MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec,
    UserBuilder,
};

use crate::container::{Ids, Limits, ProcessSpec, VolumeMount};
use crate::error::{IoContext, RuntimeError};

/// Open files per process, soft and hard: 2^20 as containerd gives, or as many as
/// homerun itself may have if that is fewer (runc cannot raise the hard limit past it).
pub fn nofile() -> u64 {
    let mut own = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    let hard = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut own) } == 0 {
        own.rlim_max
    } else {
        1024
    };
    hard.min(1 << 20)
}

/// CFS period: quota = vCPUs x period.
pub const CPU_PERIOD_US: u64 = 100_000;

/// Everything a container's `config.json` is made of.
#[derive(Clone, Debug)]
pub struct BundleSpec {
    pub rootfs: PathBuf,
    /// argv, env and cwd; the user is `ids`, already resolved.
    pub process: ProcessSpec,
    pub ids: Ids,
    pub limits: Limits,
    pub hostname: String,
    /// A network namespace to join (`/var/run/netns/NAME`); None makes a fresh empty one.
    pub netns: Option<PathBuf>,
    /// IPC and UTS namespace files to join instead of making new namespaces.
    pub shared_namespaces: Option<(PathBuf, PathBuf)>,
    pub volumes: Vec<VolumeMount>,
    /// A directory holding `dmi/id/product_name`, laid over the container's `/sys/class`.
    pub dmi_dir: Option<PathBuf>,
    /// `hosts`, `resolv.conf` and `hostname` files bind-mounted into `/etc`.
    pub etc_dir: PathBuf,
    /// Where runc puts the container's cgroup (relative to each hierarchy's root).
    pub cgroups_path: String,
}

/// Docker's default capability set.
const DOCKER_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

fn invalid(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Invalid(format!("building the OCI runtime spec: {e}"))
}

/// The runtime spec for `spec`.
pub fn runtime_spec(spec: &BundleSpec) -> Result<Spec, RuntimeError> {
    let caps: std::collections::HashSet<Capability> = DOCKER_CAPABILITIES.into_iter().collect();
    // Inheritable and ambient stay empty (oci-spec's defaults fill them), so a non-root
    // USER ends up with no effective capabilities, as under Docker.
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(std::collections::HashSet::new())
        .ambient(std::collections::HashSet::new())
        .build()
        .map_err(invalid)?;
    let user = UserBuilder::default()
        .uid(spec.ids.uid)
        .gid(spec.ids.gid)
        .additional_gids(spec.ids.additional_gids.clone())
        .build()
        .map_err(invalid)?;
    let process = ProcessBuilder::default()
        .terminal(false)
        .args(spec.process.argv.clone())
        .env(
            spec.process
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>(),
        )
        .cwd(spec.process.cwd.clone())
        .user(user)
        .capabilities(capabilities)
        .no_new_privileges(true)
        // oci-spec's default is 1024 open files; containerd (GKE, Kubernetes) gives 2^20.
        .rlimits(vec![PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .soft(nofile())
            .hard(nofile())
            .build()
            .map_err(invalid)?])
        .build()
        .map_err(invalid)?;

    let mut out = Spec::default();
    out.set_process(Some(process));
    out.set_root(Some(
        RootBuilder::default()
            .path(spec.rootfs.clone())
            .readonly(false)
            .build()
            .map_err(invalid)?,
    ));
    out.set_hostname(Some(spec.hostname.clone()));

    let mut mounts = out.mounts().clone().unwrap_or_default();
    for name in ["hosts", "resolv.conf", "hostname"] {
        mounts.push(
            MountBuilder::default()
                .destination(Path::new("/etc").join(name))
                .typ("bind")
                .source(spec.etc_dir.join(name))
                .options(vec![
                    "rbind".to_string(),
                    "ro".to_string(),
                    "nosuid".to_string(),
                    "nodev".to_string(),
                ])
                .build()
                .map_err(invalid)?,
        );
    }
    // A parent path before what is under it, or the later mount would hide the earlier.
    let mut volumes: Vec<&VolumeMount> = spec.volumes.iter().collect();
    volumes.sort_by_key(|v| v.destination.matches('/').count());
    for volume in volumes {
        let mut options = vec!["rbind".to_string(), "nosuid".into(), "nodev".into()];
        if volume.read_only {
            options.push("ro".into());
        }
        mounts.push(
            MountBuilder::default()
                .destination(PathBuf::from(&volume.destination))
                .typ("bind")
                .source(volume.source.clone())
                .options(options)
                .build()
                .map_err(invalid)?,
        );
    }
    if let Some(dmi) = &spec.dmi_dir {
        // There is no /sys/class/dmi on this kind of host and sysfs takes no new files, so a
        // read-only overlay puts homerun's `dmi/id/product_name` beside the classes of the
        // container's own sysfs (mounted at ROOTFS/sys just before: runc mounts in order,
        // before pivot_root, so the lower directory is the container's sysfs, not the host's).
        mounts.push(
            MountBuilder::default()
                .destination(PathBuf::from("/sys/class"))
                .typ("overlay")
                .source(PathBuf::from("overlay"))
                .options(vec![
                    "ro".to_string(),
                    format!(
                        "lowerdir={}:{}",
                        dmi.display(),
                        spec.rootfs.join("sys/class").display()
                    ),
                ])
                .build()
                .map_err(invalid)?,
        );
    }
    out.set_mounts(Some(mounts));

    let linux = out
        .linux_mut()
        .as_mut()
        .ok_or_else(|| invalid("runc defaults without a linux section"))?;
    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    namespaces.retain(|ns| ns.typ() != LinuxNamespaceType::Network);
    let mut network = LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Network);
    if let Some(path) = &spec.netns {
        network = network.path(path.clone());
    }
    namespaces.push(network.build().map_err(invalid)?);
    if let Some((ipc, uts)) = &spec.shared_namespaces {
        for (typ, path) in [
            (LinuxNamespaceType::Ipc, ipc),
            (LinuxNamespaceType::Uts, uts),
        ] {
            namespaces.retain(|ns| ns.typ() != typ);
            namespaces.push(
                LinuxNamespaceBuilder::default()
                    .typ(typ)
                    .path(path.clone())
                    .build()
                    .map_err(invalid)?,
            );
        }
    }
    if !namespaces
        .iter()
        .any(|ns| ns.typ() == LinuxNamespaceType::Cgroup)
    {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Cgroup)
                .build()
                .map_err(invalid)?,
        );
    }
    linux.set_namespaces(Some(namespaces));
    linux.set_cgroups_path(Some(PathBuf::from(&spec.cgroups_path)));
    linux.set_seccomp(Some(crate::seccomp::docker_default()));
    let quota = (spec.limits.cpu_millis * CPU_PERIOD_US / 1000) as i64;
    linux.set_resources(Some(
        LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(spec.limits.memory_bytes)
                    // Same as the limit: no swap beyond memory, as Cloud Run.
                    .swap(spec.limits.memory_bytes)
                    .build()
                    .map_err(invalid)?,
            )
            .cpu(
                LinuxCpuBuilder::default()
                    .quota(quota)
                    .period(CPU_PERIOD_US)
                    .build()
                    .map_err(invalid)?,
            )
            .pids(
                LinuxPidsBuilder::default()
                    .limit(spec.limits.pids)
                    .build()
                    .map_err(invalid)?,
            )
            .build()
            .map_err(invalid)?,
    ));
    Ok(out)
}

/// Writes `dir/config.json` for `spec`, readable by root only: it holds the process's
/// environment, secrets included.
pub fn write_bundle(dir: &Path, spec: &BundleSpec) -> Result<(), RuntimeError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let config = runtime_spec(spec)?;
    let path = dir.join("config.json");
    let json = serde_json::to_vec(&config)
        .map_err(|e| RuntimeError::Invalid(format!("writing {}: {e}", path.display())))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(&json))
        .context(|| format!("writing {}", path.display()))
}

/// A bundle to run outside homerun, for the benchmarks' baselines (bare `runc run`):
/// `dir/config.json` as homerun writes it ([`runtime_spec`]: seccomp, capabilities, limits,
/// namespaces, no_new_privs) over `rootfs`, a prepared plain directory instead of the
/// overlay, running `argv` with `env` as root, hostname `bare`, and `dir/etc` holding the
/// `hosts`, `hostname` and `resolv.conf` bind-mounted into `/etc`. `netns` is a network
/// namespace to join; None has runc make a fresh empty one. The container's cgroup is
/// `/homerun-bench/{id}` in each hierarchy (runc removes it; the caller removes the
/// empty `homerun-bench` parents at the end).
pub fn write_bare_bundle(
    dir: &Path,
    rootfs: &Path,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    limits: Limits,
    netns: Option<&Path>,
    id: &str,
) -> Result<(), RuntimeError> {
    let etc = dir.join("etc");
    std::fs::create_dir_all(&etc).context(|| format!("creating {}", etc.display()))?;
    for (name, text) in [
        ("hosts", "127.0.0.1\tlocalhost\n"),
        ("hostname", "bare\n"),
        ("resolv.conf", ""),
    ] {
        std::fs::write(etc.join(name), text).context(|| format!("writing {name}"))?;
    }
    let spec = BundleSpec {
        rootfs: rootfs.to_path_buf(),
        process: ProcessSpec {
            argv,
            env,
            cwd: "/".into(),
            user: crate::container::User::Ids(Ids::default()),
        },
        ids: Ids::default(),
        limits,
        hostname: "bare".into(),
        netns: netns.map(Path::to_path_buf),
        shared_namespaces: None,
        volumes: vec![],
        dmi_dir: None,
        etc_dir: etc,
        cgroups_path: format!("/homerun-bench/{id}"),
    };
    write_bundle(dir, &spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BundleSpec {
        BundleSpec {
            rootfs: "/r".into(),
            process: ProcessSpec {
                argv: vec!["/probe".into()],
                env: vec![("PORT".into(), "8080".into())],
                cwd: "/".into(),
                user: crate::container::User::Image("ignored".into()),
            },
            ids: Ids {
                uid: 65532,
                gid: 65532,
                additional_gids: vec![],
            },
            limits: Limits {
                memory_bytes: 512 << 20,
                cpu_millis: 500,
                pids: 1024,
            },
            hostname: "h".into(),
            netns: Some("/var/run/netns/hr-x".into()),
            shared_namespaces: None,
            volumes: vec![],
            dmi_dir: None,
            etc_dir: "/state/etc".into(),
            cgroups_path: "/homerun/x".into(),
        }
    }

    #[test]
    fn spec_carries_limits_namespaces_and_docker_capabilities() {
        let v = serde_json::to_value(runtime_spec(&sample()).unwrap()).unwrap();
        assert_eq!(v["process"]["args"][0], "/probe");
        assert_eq!(v["process"]["env"][0], "PORT=8080");
        assert_eq!(v["process"]["user"]["uid"], 65532);
        assert_eq!(v["process"]["noNewPrivileges"], true);
        let caps = &v["process"]["capabilities"];
        assert_eq!(caps["inheritable"], serde_json::json!([]));
        assert_eq!(caps["ambient"], serde_json::json!([]));
        assert_eq!(v["process"]["rlimits"][0]["type"], "RLIMIT_NOFILE");
        assert_eq!(v["process"]["rlimits"][0]["soft"], nofile());
        assert!(nofile() >= 1024);
        let bounding = v["process"]["capabilities"]["bounding"].as_array().unwrap();
        assert_eq!(bounding.len(), 14);
        assert!(!bounding.iter().any(|c| c == "CAP_SYS_ADMIN"));
        assert_eq!(v["linux"]["resources"]["memory"]["limit"], 512 << 20);
        assert_eq!(v["linux"]["resources"]["cpu"]["quota"], 50_000);
        assert_eq!(v["linux"]["resources"]["pids"]["limit"], 1024);
        let ns = v["linux"]["namespaces"].as_array().unwrap();
        let net = ns.iter().find(|n| n["type"] == "network").unwrap();
        assert_eq!(net["path"], "/var/run/netns/hr-x");
        for kind in ["pid", "ipc", "uts", "mount", "cgroup"] {
            assert!(ns.iter().any(|n| n["type"] == kind), "{kind}");
        }
        let mounts = v["mounts"].as_array().unwrap();
        assert!(mounts
            .iter()
            .any(|m| m["destination"] == "/etc/hosts" && m["source"] == "/state/etc/hosts"));
        assert!(v["linux"]["maskedPaths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "/proc/kcore"));
    }

    #[test]
    fn sidecars_join_ipc_and_uts_and_volumes_and_dmi_are_mounted() {
        let mut spec = sample();
        spec.shared_namespaces = Some(("/state/ns/ipc".into(), "/state/ns/uts".into()));
        spec.volumes = vec![VolumeMount {
            source: "/state/vol/cache".into(),
            destination: "/cache".into(),
            read_only: true,
        }];
        spec.dmi_dir = Some("/state/dmi".into());
        let v = serde_json::to_value(runtime_spec(&spec).unwrap()).unwrap();
        let ns = v["linux"]["namespaces"].as_array().unwrap();
        for kind in ["ipc", "uts"] {
            let found: Vec<_> = ns.iter().filter(|n| n["type"] == kind).collect();
            assert_eq!(found.len(), 1, "{kind}");
            assert_eq!(found[0]["path"], format!("/state/ns/{kind}"));
        }
        let mounts = v["mounts"].as_array().unwrap();
        let cache = mounts
            .iter()
            .find(|m| m["destination"] == "/cache")
            .unwrap();
        assert_eq!(cache["source"], "/state/vol/cache");
        assert!(cache["options"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "ro"));
        let dmi = mounts
            .iter()
            .find(|m| m["destination"] == "/sys/class")
            .unwrap();
        assert_eq!(dmi["type"], "overlay");
        assert!(dmi["options"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "lowerdir=/state/dmi:/r/sys/class"));
        // The overlay comes after the sysfs it builds on.
        let sys = mounts
            .iter()
            .position(|m| m["destination"] == "/sys")
            .unwrap();
        let class = mounts
            .iter()
            .position(|m| m["destination"] == "/sys/class")
            .unwrap();
        assert!(sys < class);
    }

    #[test]
    fn the_environment_stays_out_of_debug_output_and_config_json_is_root_only() {
        use std::os::unix::fs::PermissionsExt;
        let mut spec = sample();
        spec.process
            .env
            .push(("API_KEY".into(), "s3cr3t-value".into()));
        spec.process.argv.push("--key=s3cr3t-value".into());
        let debug = format!("{spec:?}");
        assert!(
            debug.contains("API_KEY") && debug.contains("\"/probe\""),
            "{debug}"
        );
        assert!(!debug.contains("s3cr3t"), "{debug}");
        let dir = tempfile::tempdir().unwrap();
        write_bundle(dir.path(), &spec).unwrap();
        let path = dir.path().join("config.json");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["process"]["env"][1], "API_KEY=s3cr3t-value");
    }
}
