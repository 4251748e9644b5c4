//! One instance: an ingress container and its sidecars, like a pod. They share the
//! instance's network namespace (one address, `localhost` between them) and the first
//! container's IPC and UTS namespaces, and mount the instance's in-memory volumes. They start
//! in `dependsOn` order, each after those it depends on have started and passed their startup
//! probes; the instance is ready when every container is. Liveness probes and exits are
//! reported by `watch`; `restart` starts the containers afresh in the same network.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use image::{ImageRecord, Store};

use crate::cgroup::{Cgroup, Layout};
use crate::container::{
    validate_mount_path, Container, ContainerSpec, ExitInfo, Limits, ProcessSpec, User, VolumeMount,
};
use crate::error::{IoContext, RuntimeError};
use crate::health::{self, ProbeSpec};
use crate::logs::LogBuffer;
use crate::net::{Attachment, Network};
use crate::process::{self, ContainerOverrides, ImageProcess};
use crate::runc::{OciRuntime, Runtime};

/// Bytes of log kept per instance, all its containers together.
const LOG_BYTES: usize = 1 << 20;
/// Cloud Run's startup CPU boost lasts while the containers start and 10 s after.
const BOOST_AFTER_READY: Duration = Duration::from_secs(10);
/// CPU left to an idle instance when the platform throttles it between requests: the
/// kernel's smallest CFS quota (1 ms per 100 ms period), Cloud Run's "nearly zero".
const IDLE_CPU_MILLIS: u64 = 10;
/// Longest instance id: container ids append `-N` and a restart count, within runc's 48.
const MAX_ID: usize = 40;

/// One container of an instance, as a revision or task template describes it.
#[derive(Clone, Debug)]
pub struct ContainerDef {
    /// Unique within the instance; log entries carry it.
    pub name: String,
    pub image: ImageRecord,
    pub overrides: ContainerOverrides,
    /// Overrides the image's `USER`.
    pub user: Option<String>,
    /// The ingress container's port: it gets `PORT` and, unless it has its own, the default
    /// TCP startup probe on it. At most one container has one.
    pub port: Option<u16>,
    pub limits: Limits,
    /// `(volume name, mount path)`.
    pub volume_mounts: Vec<(String, String)>,
    /// Names of the containers that must have started (and passed their startup probes)
    /// before this one starts.
    pub depends_on: Vec<String>,
    pub startup_probe: Option<ProbeSpec>,
    pub liveness_probe: Option<ProbeSpec>,
}

/// An in-memory volume (`emptyDir` with medium Memory): a tmpfs shared by the instance's
/// containers; what is written is charged to the writer's memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryVolume {
    pub name: String,
    /// None: half the memory of all the instance's containers, as Cloud Run.
    pub size_bytes: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct InstanceSpec {
    /// `[a-z0-9-]`, at most 40: names the network namespace, containers and cgroups.
    pub id: String,
    pub containers: Vec<ContainerDef>,
    pub volumes: Vec<MemoryVolume>,
    /// `K_SERVICE`, `K_REVISION`, `K_CONFIGURATION` or the `CLOUD_RUN_*` job variables,
    /// overriding the image's and the template's; `PORT` is added for the ingress container.
    pub platform_env: Vec<(String, String)>,
    /// Extra `/etc/hosts` lines, e.g. `metadata.google.internal` on the gateway.
    pub hosts: Vec<(String, Vec<String>)>,
    /// Cloud Run's startup CPU boost: twice the CPU limit (within the machine) until the
    /// instance is ready and for 10 s after.
    pub cpu_boost: bool,
}

/// What the machine gives instances: images, the OCI runtime, the bridge, a state directory.
#[derive(Clone)]
pub struct Node {
    pub store: Store,
    pub runtime: Runtime,
    pub network: Arc<Network>,
    pub state_dir: PathBuf,
    pub cgroups: Arc<Layout>,
}

/// Something that needs the platform's attention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstanceEvent {
    /// A container ended (the instance is no longer whole).
    Exited { container: String, exit: ExitInfo },
    /// A container's liveness probe failed `failureThreshold` times in a row: restart it.
    Unhealthy { container: String, reason: String },
}

struct Running {
    name: String,
    container: Arc<Container>,
    /// The liveness probe's verdict: it runs from the moment the container passed its
    /// startup probe for as long as the container does, whoever watches.
    unhealthy: tokio::sync::watch::Receiver<Option<String>>,
    liveness_task: Option<tokio::task::JoinHandle<()>>,
    cpu_millis: u64,
}

pub struct Instance {
    spec: InstanceSpec,
    node: Node,
    dir: PathBuf,
    attachment: Option<Attachment>,
    volumes: Vec<PathBuf>,
    containers: Vec<Running>,
    logs: Arc<LogBuffer>,
    restarts: u32,
}

/// Checks everything that can be checked before anything is created, and returns the order
/// in which the containers start (indexes into `spec.containers`).
pub fn validate(spec: &InstanceSpec) -> Result<Vec<usize>, RuntimeError> {
    let invalid = |m: String| Err(RuntimeError::Invalid(m));
    if spec.id.is_empty()
        || spec.id.len() > MAX_ID
        || !spec
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return invalid(format!(
            "instance id {:?} must be 1-{MAX_ID} of [a-z0-9-]",
            spec.id
        ));
    }
    if spec.containers.is_empty() {
        return invalid("an instance needs at least one container".into());
    }
    let mut names = HashSet::new();
    for c in &spec.containers {
        if c.name.is_empty() || c.name.len() > 63 {
            return invalid(format!(
                "container name {:?} must be 1-63 characters",
                c.name
            ));
        }
        if !names.insert(c.name.as_str()) {
            return invalid(format!("two containers are named {:?}", c.name));
        }
    }
    let ingress: Vec<_> = spec
        .containers
        .iter()
        .filter(|c| c.port.is_some())
        .collect();
    if ingress.len() > 1 {
        return invalid(format!(
            "only one container may receive requests, but {} and {} both have a port",
            ingress[0].name, ingress[1].name
        ));
    }
    if let Some(c) = ingress.first() {
        if c.port == Some(0) {
            return invalid(format!("container {}: port 0 is outside 1-65535", c.name));
        }
    }
    let mut volume_names = HashSet::new();
    for v in &spec.volumes {
        if v.name.is_empty() || !volume_names.insert(v.name.as_str()) {
            return invalid(format!("volume name {:?} is empty or repeated", v.name));
        }
        if let Some(size) = v.size_bytes {
            if size < 4096 {
                return invalid(format!(
                    "volume {}: size limit {size} bytes is below one page",
                    v.name
                ));
            }
        }
    }
    for c in &spec.containers {
        for (volume, path) in &c.volume_mounts {
            if !volume_names.contains(volume.as_str()) {
                return invalid(format!(
                    "container {} mounts volume {volume:?}, which the instance does not define",
                    c.name
                ));
            }
            validate_mount_path(path)
                .map_err(|e| RuntimeError::Invalid(format!("container {}: {e}", c.name)))?;
        }
        for probe in [&c.startup_probe, &c.liveness_probe].into_iter().flatten() {
            probe
                .validate()
                .map_err(|e| RuntimeError::Invalid(format!("container {}: {e}", c.name)))?;
        }
        for dep in &c.depends_on {
            if dep == &c.name {
                return invalid(format!("container {} depends on itself", c.name));
            }
            if !names.contains(dep.as_str()) {
                return invalid(format!(
                    "container {} depends on {dep:?}, which is not in the instance",
                    c.name
                ));
            }
        }
    }
    start_order(&spec.containers)
}

/// A topological order of `dependsOn` (Kahn's algorithm, keeping the given order among
/// containers that are ready to start together); a cycle is refused with its members.
fn start_order(containers: &[ContainerDef]) -> Result<Vec<usize>, RuntimeError> {
    let index: HashMap<&str, usize> = containers
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    let mut waiting: Vec<usize> = containers.iter().map(|c| c.depends_on.len()).collect();
    let mut order = Vec::with_capacity(containers.len());
    let mut done = vec![false; containers.len()];
    while order.len() < containers.len() {
        let Some(next) = (0..containers.len()).find(|&i| !done[i] && waiting[i] == 0) else {
            let cycle: Vec<&str> = (0..containers.len())
                .filter(|&i| !done[i])
                .map(|i| containers[i].name.as_str())
                .collect();
            return Err(RuntimeError::Invalid(format!(
                "dependsOn has a cycle among containers {}",
                cycle.join(", ")
            )));
        };
        done[next] = true;
        order.push(next);
        for (i, c) in containers.iter().enumerate() {
            if !done[i] {
                waiting[i] -= c
                    .depends_on
                    .iter()
                    .filter(|d| index.get(d.as_str()) == Some(&next))
                    .count();
            }
        }
    }
    Ok(order)
}

/// Mode 0777, as Kubernetes gives an `emptyDir`, so a non-root container can write to it.
fn mount_volume(target: &Path, size: i64) -> Result<(), RuntimeError> {
    std::fs::create_dir(target).context(|| format!("creating {}", target.display()))?;
    crate::container::mount_tmpfs(target, size, 0o777)
}

impl Instance {
    /// Starts the instance and returns once every container has passed its startup probe.
    /// On failure everything is undone and the error names the container, the reason and
    /// its last log lines.
    pub async fn start(spec: InstanceSpec, node: &Node) -> Result<Instance, RuntimeError> {
        validate(&spec)?;
        let dir = node.state_dir.join(&spec.id);
        std::fs::create_dir(&dir).context(|| format!("creating {}", dir.display()))?;
        let mut instance = Instance {
            spec,
            node: node.clone(),
            dir,
            attachment: None,
            volumes: Vec::new(),
            containers: Vec::new(),
            logs: Arc::new(LogBuffer::new(LOG_BYTES)),
            restarts: 0,
        };
        let network = node.network.clone();
        let id = instance.spec.id.clone();
        let attached = tokio::task::spawn_blocking(move || network.attach(&id)).await;
        match attached {
            Ok(Ok(a)) => instance.attachment = Some(a),
            Ok(Err(e)) => {
                instance.teardown().await;
                return Err(RuntimeError::Invalid(format!(
                    "attaching the instance: {e}"
                )));
            }
            Err(e) => {
                instance.teardown().await;
                return Err(RuntimeError::Invalid(format!(
                    "attaching the instance: {e}"
                )));
            }
        }
        match instance.bring_up().await {
            Ok(()) => Ok(instance),
            Err(e) => {
                instance.teardown().await;
                Err(e)
            }
        }
    }

    pub fn id(&self) -> &str {
        &self.spec.id
    }

    /// The instance's address on the bridge: the ingress container listens at
    /// `address():PORT`.
    pub fn address(&self) -> Ipv4Addr {
        self.attachment
            .as_ref()
            .map(|a| a.address)
            .unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    /// Every container's output, in arrival order; entries carry the container's name.
    pub fn logs(&self) -> &Arc<LogBuffer> {
        &self.logs
    }

    /// How many times `restart` has run.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// The host pid of a container's init.
    pub fn pid(&self, container: &str) -> Option<i32> {
        self.running(container).map(|r| r.container.pid())
    }

    fn running(&self, container: &str) -> Option<&Running> {
        self.containers.iter().find(|r| r.name == container)
    }

    fn total_memory(&self) -> i64 {
        self.spec
            .containers
            .iter()
            .map(|c| c.limits.memory_bytes)
            .sum()
    }

    async fn bring_up(&mut self) -> Result<(), RuntimeError> {
        let order = start_order(&self.spec.containers)?;
        let generation = if self.restarts == 0 {
            String::new()
        } else {
            format!("r{}", self.restarts)
        };
        let volume_dir = self.dir.join(format!("volumes{generation}"));
        std::fs::create_dir(&volume_dir)
            .context(|| format!("creating {}", volume_dir.display()))?;
        let mut volume_paths = HashMap::new();
        for v in &self.spec.volumes {
            let path = volume_dir.join(&v.name);
            let size = v.size_bytes.unwrap_or(self.total_memory() / 2);
            mount_volume(&path, size)?;
            self.volumes.push(path.clone());
            volume_paths.insert(v.name.clone(), path);
        }
        let attachment = self
            .attachment
            .clone()
            .ok_or_else(|| RuntimeError::Invalid("the instance has no network".into()))?;
        let gen2 = self.node.runtime.kind() == OciRuntime::Runc;
        let (host_cpu_millis, _) = crate::container::host_capacity();
        let state = self.dir.join(format!("containers{generation}"));
        std::fs::create_dir(&state).context(|| format!("creating {}", state.display()))?;

        for index in order {
            let def = self.spec.containers[index].clone();
            let config = self
                .node
                .store
                .read_blob(&def.image.config_digest)?
                .ok_or_else(|| {
                    RuntimeError::Invalid(format!(
                        "image {} has no config blob in the store",
                        def.image.reference
                    ))
                })?;
            let config: serde_json::Value = serde_json::from_slice(&config).map_err(|e| {
                RuntimeError::Invalid(format!("image {}: config: {e}", def.image.reference))
            })?;
            let image_process = ImageProcess::from_config(&config);
            let mut platform = self.spec.platform_env.clone();
            if let Some(port) = def.port {
                platform.push(("PORT".into(), port.to_string()));
            }
            let env = process::merge_env(&image_process.env, &def.overrides.env, &platform);
            let argv = process::resolve_argv(&image_process, &def.overrides, &env)
                .map_err(|e| RuntimeError::Invalid(format!("container {}: {e}", def.name)))?;
            let cwd = process::working_dir(&image_process, &def.overrides)
                .map_err(|e| RuntimeError::Invalid(format!("container {}: {e}", def.name)))?;
            let user = def.user.clone().unwrap_or(image_process.user.clone());
            let mut limits = def.limits;
            if self.spec.cpu_boost {
                limits.cpu_millis = (limits.cpu_millis * 2).min(host_cpu_millis);
            }
            let spec = ContainerSpec {
                id: format!("{}-{index}{generation}", self.spec.id),
                name: def.name.clone(),
                process: ProcessSpec {
                    argv,
                    env,
                    cwd,
                    user: User::Image(user),
                },
                limits,
                hostname: self.spec.id.clone(),
                netns: Some(attachment.netns_path.clone()),
                // gVisor runs each container in its own sandbox, which cannot join another's
                // IPC or UTS namespace; the network namespace is still shared.
                share_ipc_uts_with: match self.containers.first() {
                    Some(first) if gen2 => Some(first.container.pid()),
                    _ => None,
                },
                hosts: self.spec.hosts.clone(),
                volumes: def
                    .volume_mounts
                    .iter()
                    .map(|(volume, path)| VolumeMount {
                        source: volume_paths[volume].clone(),
                        destination: path.clone(),
                        read_only: false,
                    })
                    .collect(),
                dmi_product_name: gen2.then(|| "Google Compute Engine".to_string()),
            };
            let (store, runtime, logs) = (
                self.node.store.clone(),
                self.node.runtime.clone(),
                self.logs.clone(),
            );
            let image = def.image.clone();
            let state_dir = state.clone();
            let container = tokio::task::spawn_blocking(move || {
                Container::start_with_logs(&spec, &store, &image, &runtime, &state_dir, logs)
            })
            .await
            .map_err(|e| RuntimeError::Invalid(format!("starting {}: {e}", def.name)))?
            .map_err(|e| RuntimeError::Invalid(format!("container {}: {e}", def.name)))?;
            let container = Arc::new(container);
            let (unhealthy_tx, unhealthy) = tokio::sync::watch::channel(None);
            self.containers.push(Running {
                name: def.name.clone(),
                container: container.clone(),
                unhealthy,
                liveness_task: None,
                cpu_millis: def.limits.cpu_millis,
            });
            let probe = def
                .startup_probe
                .clone()
                .or_else(|| def.port.map(ProbeSpec::default_startup));
            if let Some(probe) = probe {
                let address = std::net::IpAddr::V4(attachment.address);
                tokio::select! {
                    passed = health::wait_startup(address, &probe) => {
                        if let Err(failure) = passed {
                            return Err(self.not_ready(&def.name, &failure.to_string()));
                        }
                    }
                    exit = container.exited() => {
                        return Err(self.not_ready(&def.name, &describe_exit(&exit)));
                    }
                }
            }
            // Liveness probing begins once the container has started, as in Kubernetes.
            if let Some(probe) = def.liveness_probe.clone() {
                let address = std::net::IpAddr::V4(attachment.address);
                let task = tokio::spawn(async move {
                    let failure = health::watch_liveness(address, &probe).await;
                    let _ = unhealthy_tx.send(Some(failure.to_string()));
                });
                if let Some(running) = self.containers.last_mut() {
                    running.liveness_task = Some(task);
                }
            }
        }
        if self.spec.cpu_boost {
            self.end_boost_later();
        }
        Ok(())
    }

    /// The error for a container that did not become ready, with its last log lines.
    fn not_ready(&self, container: &str, reason: &str) -> RuntimeError {
        let last_logs = self
            .logs
            .entries()
            .into_iter()
            .filter(|e| e.container == container)
            .map(|e| e.text)
            .collect::<Vec<_>>();
        let tail = last_logs[last_logs.len().saturating_sub(10)..].to_vec();
        RuntimeError::NotReady {
            container: container.to_string(),
            reason: reason.to_string(),
            last_logs: tail,
        }
    }

    /// After the boost window, each container goes back to its own CPU limit.
    fn end_boost_later(&self) {
        let cgroups: Vec<(Cgroup, u64)> = self
            .containers
            .iter()
            .map(|r| {
                (
                    Cgroup::new(&self.node.cgroups, r.container.cgroups_path()),
                    r.cpu_millis,
                )
            })
            .collect();
        tokio::spawn(async move {
            tokio::time::sleep(BOOST_AFTER_READY).await;
            for (cgroup, millis) in cgroups {
                // The instance may be gone by now; its cgroup with it.
                let _ = cgroup.set_cpu(millis);
            }
        });
    }

    /// Resolves at the first event: a container exits, or a liveness probe fails its
    /// threshold. Cancel-safe and repeatable: the probes run on their own, so calling it
    /// again neither restarts them nor loses a verdict.
    pub async fn watch(&self) -> InstanceEvent {
        let mut waits = tokio::task::JoinSet::new();
        for r in &self.containers {
            let (name, container) = (r.name.clone(), r.container.clone());
            let mut unhealthy = r.unhealthy.clone();
            waits.spawn(async move {
                tokio::select! {
                    exit = container.exited() => InstanceEvent::Exited {
                        container: name,
                        exit,
                    },
                    Ok(verdict) = unhealthy.wait_for(Option::is_some) => InstanceEvent::Unhealthy {
                        container: name,
                        reason: verdict.clone().unwrap_or_default(),
                    },
                }
            });
        }
        // Dropping the set (when this future is dropped) aborts the other waits.
        loop {
            match waits.join_next().await {
                Some(Ok(event)) => return event,
                Some(Err(_)) => continue,
                None => return std::future::pending().await,
            }
        }
    }

    /// Kills every container (SIGKILL, as Cloud Run does on a failed liveness probe) and
    /// starts them afresh, in the same network namespace with fresh in-memory volumes.
    pub async fn restart(&mut self) -> Result<(), RuntimeError> {
        self.stop_containers(Duration::ZERO).await;
        self.unmount_volumes();
        self.restarts += 1;
        self.bring_up().await
    }

    /// Caps every container's CPU at nearly nothing (`true`) or gives it back its limit:
    /// Cloud Run's CPU allocated only during requests. A write to each cgroup, microseconds.
    pub fn throttle(&self, idle: bool) -> Result<(), RuntimeError> {
        for r in &self.containers {
            let cgroup = Cgroup::new(&self.node.cgroups, r.container.cgroups_path());
            cgroup.set_cpu(if idle { IDLE_CPU_MILLIS } else { r.cpu_millis })?;
        }
        Ok(())
    }

    /// Freezes (`true`) or thaws every container's processes.
    pub fn freeze(&self, frozen: bool) -> Result<(), RuntimeError> {
        for r in &self.containers {
            let cgroup = Cgroup::new(&self.node.cgroups, r.container.cgroups_path());
            if frozen {
                cgroup.freeze()?;
            } else {
                cgroup.thaw()?;
            }
        }
        Ok(())
    }

    /// Every container gets SIGTERM at once, then SIGKILL after `grace` (the contract: 10 s);
    /// then everything the instance had is removed. Returns how each container ended.
    pub async fn stop(mut self, grace: Duration) -> Vec<(String, ExitInfo)> {
        let exits = self.stop_containers(grace).await;
        self.teardown().await;
        exits
    }

    async fn stop_containers(&mut self, grace: Duration) -> Vec<(String, ExitInfo)> {
        // Frozen processes cannot act on SIGTERM.
        let _ = self.freeze(false);
        let running: Vec<Running> = self.containers.drain(..).collect();
        for r in &running {
            if let Some(task) = &r.liveness_task {
                task.abort();
            }
        }
        let stops: Vec<_> = running
            .into_iter()
            .map(|r| {
                tokio::task::spawn_blocking(move || {
                    let exit = r.container.stop(grace);
                    // The last reference: dropping it removes the container's every trace.
                    if let Ok(container) = Arc::try_unwrap(r.container) {
                        container.destroy();
                    }
                    (r.name, exit)
                })
            })
            .collect();
        let mut exits = Vec::new();
        for stop in stops {
            match stop.await {
                Ok((name, Ok(exit))) => exits.push((name, exit)),
                Ok((name, Err(e))) => tracing::warn!("stopping container {name}: {e}"),
                Err(e) => tracing::warn!("stopping a container: {e}"),
            }
        }
        exits
    }

    fn unmount_volumes(&mut self) {
        for path in self.volumes.drain(..) {
            if let Err(e) = crate::container::unmount(&path) {
                tracing::warn!("{e}");
            }
        }
    }

    async fn teardown(&mut self) {
        self.stop_containers(Duration::ZERO).await;
        self.unmount_volumes();
        if let Some(a) = self.attachment.take() {
            let network = self.node.network.clone();
            let released = tokio::task::spawn_blocking(move || a.release(&network)).await;
            if let Ok(Err(e)) = released {
                tracing::warn!("releasing the network of {}: {e}", self.spec.id);
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("removing {}: {e}", self.dir.display());
            }
        }
    }
}

fn describe_exit(exit: &ExitInfo) -> String {
    match (exit.oom_killed, exit.code, exit.signal) {
        (true, _, _) => "the container was killed for using more memory than its limit".into(),
        (_, Some(code), _) => format!("the container exited with code {code} before it was ready"),
        (_, _, Some(signal)) => {
            format!("the container was killed by signal {signal} before it was ready")
        }
        _ => "the container ended before it was ready".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str, deps: &[&str]) -> ContainerDef {
        ContainerDef {
            name: name.into(),
            image: ImageRecord {
                reference: "r".into(),
                manifest_digest: String::new(),
                index_digest: None,
                config_digest: String::new(),
                layers: vec![],
                pulled_at: 0,
            },
            overrides: ContainerOverrides::default(),
            user: None,
            port: None,
            limits: Limits {
                memory_bytes: 64 << 20,
                cpu_millis: 1000,
                pids: 100,
            },
            volume_mounts: vec![],
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            startup_probe: None,
            liveness_probe: None,
        }
    }

    fn spec(containers: Vec<ContainerDef>) -> InstanceSpec {
        InstanceSpec {
            id: "i".into(),
            containers,
            volumes: vec![],
            platform_env: vec![],
            hosts: vec![],
            cpu_boost: false,
        }
    }

    #[test]
    fn dependencies_start_first_and_ties_keep_their_order() {
        let s = spec(vec![
            def("app", &["db", "cache"]),
            def("cache", &[]),
            def("db", &["cache"]),
            def("log", &[]),
        ]);
        let order: Vec<_> = validate(&s)
            .unwrap()
            .into_iter()
            .map(|i| s.containers[i].name.clone())
            .collect();
        assert_eq!(order, ["cache", "db", "app", "log"]);
    }

    #[test]
    fn cycles_unknown_names_and_self_dependencies_are_refused() {
        let e = validate(&spec(vec![
            def("a", &["b"]),
            def("b", &["a"]),
            def("c", &[]),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("cycle among containers a, b"), "{e}");
        let e = validate(&spec(vec![def("a", &["zz"])]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("depends on \"zz\""), "{e}");
        let e = validate(&spec(vec![def("a", &["a"])]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("depends on itself"), "{e}");
    }

    #[test]
    fn ports_volumes_and_names_are_checked() {
        let mut a = def("a", &[]);
        a.port = Some(8080);
        let mut b = def("b", &[]);
        b.port = Some(8081);
        let e = validate(&spec(vec![a.clone(), b])).unwrap_err().to_string();
        assert!(e.contains("only one container may receive requests"), "{e}");
        a.port = Some(0);
        let e = validate(&spec(vec![a.clone()])).unwrap_err().to_string();
        assert!(e.contains("port 0 is outside 1-65535"), "{e}");
        a.port = Some(8080);
        a.volume_mounts = vec![("cache".into(), "/cache".into())];
        let e = validate(&spec(vec![a.clone()])).unwrap_err().to_string();
        assert!(e.contains("does not define"), "{e}");
        let mut s = spec(vec![a.clone()]);
        s.volumes = vec![MemoryVolume {
            name: "cache".into(),
            size_bytes: Some(1 << 20),
        }];
        assert!(validate(&s).is_ok());
        for bad in [
            "/proc/x",
            "/sys",
            "/dev/shm",
            "/",
            "relative",
            "/a/../b",
            "/etc/hosts",
        ] {
            s.containers[0].volume_mounts = vec![("cache".into(), bad.into())];
            let e = validate(&s).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
        let e = validate(&spec(vec![def("x", &[]), def("x", &[])]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("two containers are named \"x\""), "{e}");
        let mut s = spec(vec![def("x", &[])]);
        s.id = "Bad_Id".into();
        assert!(validate(&s)
            .unwrap_err()
            .to_string()
            .contains("instance id"));
    }
}
