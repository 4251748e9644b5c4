//! The OCI bundle of one container: `config.json` generated with oci-spec from runc's
//! defaults (the same as `runc spec`: namespaces, /proc, /dev, /sys, masked and read-only
//! paths), tightened and filled in as Docker and Cloud Run do: Docker's capabilities and
//! seccomp profile, no_new_privs.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxMemoryBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder,
    MountBuilder, ProcessBuilder, RootBuilder, Spec, UserBuilder,
};

use crate::error::RuntimeError;

/// CFS period: quota = vCPUs x period.
pub const CPU_PERIOD_US: u64 = 100_000;

/// Everything a container's `config.json` is made of.
#[derive(Clone, Debug)]
pub struct BundleSpec {
    pub rootfs: PathBuf,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub hostname: String,
    /// A network namespace to join (`/var/run/netns/NAME`); None makes a fresh empty one.
    pub netns: Option<PathBuf>,
    pub memory_bytes: i64,
    /// CPU limit in thousandths of a vCPU (1000 = one vCPU).
    pub cpu_millis: u64,
    pub pids: i64,
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
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .build()
        .map_err(invalid)?;
    let user = UserBuilder::default()
        .uid(spec.uid)
        .gid(spec.gid)
        .additional_gids(spec.additional_gids.clone())
        .build()
        .map_err(invalid)?;
    let process = ProcessBuilder::default()
        .terminal(false)
        .args(spec.argv.clone())
        .env(
            spec.env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>(),
        )
        .cwd(spec.cwd.clone())
        .user(user)
        .capabilities(capabilities)
        .no_new_privileges(true)
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
    let quota = (spec.cpu_millis * CPU_PERIOD_US / 1000) as i64;
    linux.set_resources(Some(
        LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(spec.memory_bytes)
                    // Same as the limit: no swap beyond memory, as Cloud Run.
                    .swap(spec.memory_bytes)
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
                    .limit(spec.pids)
                    .build()
                    .map_err(invalid)?,
            )
            .build()
            .map_err(invalid)?,
    ));
    Ok(out)
}

/// Writes `dir/config.json` for `spec`.
pub fn write_bundle(dir: &Path, spec: &BundleSpec) -> Result<(), RuntimeError> {
    let config = runtime_spec(spec)?;
    let path = dir.join("config.json");
    config
        .save(&path)
        .map_err(|e| RuntimeError::Invalid(format!("writing {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BundleSpec {
        BundleSpec {
            rootfs: "/r".into(),
            argv: vec!["/probe".into()],
            env: vec![("PORT".into(), "8080".into())],
            cwd: "/".into(),
            uid: 65532,
            gid: 65532,
            additional_gids: vec![],
            hostname: "h".into(),
            netns: Some("/var/run/netns/hr-x".into()),
            memory_bytes: 512 << 20,
            cpu_millis: 500,
            pids: 1024,
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
}
