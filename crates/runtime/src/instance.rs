//! One instance: an ingress container and its sidecars, like a pod. They share the
//! instance's network namespace (one address, `localhost` between them) and the first
//! container's IPC and UTS namespaces, and mount the instance's in-memory volumes and its
//! file volumes (secrets: a small tmpfs each, written before anything starts and mounted
//! read-only). The containers start in `dependsOn` order, each after those it depends on
//! have started and passed their startup probes; the instance is ready when every container
//! is. Liveness probes and exits are reported by `watch`; `restart` starts the containers
//! afresh in the same network. The instance's address is in the node's `AddressBook` from
//! the moment its network is attached until its teardown.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use image::{ImageRecord, Store};

use crate::addresses::AddressBook;
use crate::cgroup::{Cgroup, Layout};
use crate::container::{
    validate_mount_path, Container, ContainerSpec, ExitInfo, Limits, ProcessSpec, User, VolumeMount,
};
use crate::error::{IoContext, RuntimeError};
use crate::health::{self, ProbeSpec};
use crate::logs::LogBuffer;
use crate::net::{Attachment, NetPool, Network};
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

/// A volume of files the platform provides (a secret volume): a small tmpfs holding `files`,
/// written once before any container starts and mounted read-only into each container that
/// mounts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileVolume {
    /// Unique among the instance's volumes, memory and file ones together.
    pub name: String,
    pub files: Vec<VolumeFile>,
}

/// One file of a [`FileVolume`]. Its `Debug` shows the length of `contents`, never the bytes:
/// they are secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct VolumeFile {
    /// Relative to the volume's root; may name subdirectories (`a/b/key`), which are made
    /// with mode 0755. No empty, `.` or `..` parts.
    pub path: String,
    pub contents: Vec<u8>,
    /// Permission bits (at most 0o777), e.g. 0o444; the file is owned by root.
    pub mode: u32,
}

impl std::fmt::Debug for VolumeFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VolumeFile")
            .field("path", &self.path)
            .field("contents", &crate::process::Redacted(self.contents.len()))
            .field("mode", &format_args!("{:#o}", self.mode))
            .finish()
    }
}

#[derive(Clone, Debug)]
pub struct InstanceSpec {
    /// `[a-z0-9-]`, at most 40: names the network namespace, containers and cgroups.
    pub id: String,
    pub containers: Vec<ContainerDef>,
    pub volumes: Vec<MemoryVolume>,
    /// Volumes of files (secrets), mounted read-only.
    pub file_volumes: Vec<FileVolume>,
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
    /// Network namespaces made ahead of time; None attaches each instance's on start.
    pub netpool: Option<Arc<NetPool>>,
    /// Which instance has which address: each instance records its own from the moment
    /// its network is attached until its teardown.
    pub addresses: Arc<AddressBook>,
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

/// CPU state shared with the task that ends the startup boost.
#[derive(Default)]
struct CpuState {
    boosted: AtomicBool,
    /// Throttled to nearly nothing between requests; also pauses liveness probes, which
    /// could not get an answer from a starved container.
    idle: AtomicBool,
    frozen: AtomicBool,
}

pub struct Instance {
    spec: InstanceSpec,
    node: Node,
    dir: PathBuf,
    attachment: Option<Attachment>,
    /// Bind-mounted IPC and UTS namespaces every container joins (runc only).
    namespaces: Vec<PathBuf>,
    volumes: Vec<PathBuf>,
    containers: Vec<Running>,
    logs: Arc<LogBuffer>,
    restarts: u32,
    cpu: Arc<CpuState>,
    /// Wakes liveness tasks when `idle` or `frozen` change.
    cpu_changed: Arc<tokio::sync::watch::Sender<()>>,
    boost_task: Option<tokio::task::JoinHandle<()>>,
}

/// What starting one container needs, prepared before anything starts.
struct Prepared {
    index: usize,
    spec: ContainerSpec,
    image: ImageRecord,
    startup: Option<ProbeSpec>,
    liveness: Option<ProbeSpec>,
    cpu_millis: u64,
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
    let names_of_volumes = spec
        .volumes
        .iter()
        .map(|v| &v.name)
        .chain(spec.file_volumes.iter().map(|v| &v.name));
    for name in names_of_volumes {
        validate_volume_name(name)?;
        if !volume_names.insert(name.as_str()) {
            return invalid(format!("two volumes are named {name:?}"));
        }
    }
    for v in &spec.file_volumes {
        validate_files(v)?;
    }
    for v in &spec.volumes {
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
        crate::container::validate_limits(&c.limits)
            .map_err(|e| RuntimeError::Invalid(format!("container {}: {e}", c.name)))?;
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

/// A volume's name names its directory on the host: one plain path component.
fn validate_volume_name(name: &str) -> Result<(), RuntimeError> {
    if name.is_empty()
        || name.len() > 253
        || name == "."
        || name == ".."
        || name.contains(['/', '\0'])
    {
        return Err(RuntimeError::Invalid(format!(
            "volume name {name:?} must be 1-253 characters, without `/` or NUL, and not `.` or `..`"
        )));
    }
    Ok(())
}

/// A file volume's paths: relative, normalised, each once, and no file where another
/// needs a directory; modes within 0o777.
fn validate_files(volume: &FileVolume) -> Result<(), RuntimeError> {
    let refuse = |path: &str, why: &str| {
        Err(RuntimeError::Invalid(format!(
            "volume {}: file path {path:?} {why}",
            volume.name
        )))
    };
    let mut files = HashSet::new();
    for f in &volume.files {
        let path = f.path.as_str();
        if path.is_empty() {
            return refuse(path, "is empty");
        }
        if path.starts_with('/') {
            return refuse(path, "is absolute (it must be relative to the volume)");
        }
        if path.contains('\0') || path.len() > 4096 {
            return refuse(path, "holds NUL or is longer than 4096 bytes");
        }
        if path
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return refuse(
                path,
                "is not a normalised path (no empty, `.` or `..` parts, no trailing /)",
            );
        }
        if path.split('/').any(|part| part.len() > 255) {
            return refuse(path, "has a part longer than 255 bytes");
        }
        if f.mode > 0o777 {
            return refuse(
                path,
                &format!(
                    "has mode {:#o}; only permission bits (at most 0o777) are allowed",
                    f.mode
                ),
            );
        }
        if !files.insert(path) {
            return refuse(path, "is given twice");
        }
    }
    for f in &volume.files {
        let mut parent = f.path.as_str();
        while let Some((dir, _)) = parent.rsplit_once('/') {
            if files.contains(dir) {
                return refuse(
                    dir,
                    &format!("is a file, but {:?} needs it to be a directory", f.path),
                );
            }
            parent = dir;
        }
    }
    Ok(())
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

impl Instance {
    /// Starts the instance and returns once every container has passed its startup probe.
    /// On failure (or if this future is dropped) everything is undone; the error names the
    /// container, the reason and its last log lines.
    pub async fn start(spec: InstanceSpec, node: &Node) -> Result<Instance, RuntimeError> {
        validate(&spec)?;
        let dir = node.state_dir.join(&spec.id);
        std::fs::create_dir(&dir).context(|| format!("creating {}", dir.display()))?;
        let mut instance = Instance {
            spec,
            node: node.clone(),
            dir,
            attachment: None,
            namespaces: Vec::new(),
            volumes: Vec::new(),
            containers: Vec::new(),
            logs: Arc::new(LogBuffer::new(LOG_BYTES)),
            restarts: 0,
            cpu: Arc::new(CpuState::default()),
            cpu_changed: Arc::new(tokio::sync::watch::Sender::new(())),
            boost_task: None,
        };
        let pooled = node.netpool.as_ref().and_then(|pool| pool.take());
        let attached = match pooled {
            Some(attachment) => Ok(attachment),
            None => {
                let network = node.network.clone();
                let id = instance.spec.id.clone();
                tokio::task::spawn_blocking(move || network.attach(&id))
                    .await
                    .map_err(|e| RuntimeError::Invalid(format!("attaching the instance: {e}")))?
            }
        };
        // From here on, `instance` undoes everything when dropped, also mid-way.
        let attachment =
            attached.map_err(|e| RuntimeError::Invalid(format!("attaching the instance: {e}")))?;
        // Known by its address before any container runs: one that calls the metadata server
        // while it starts up gets its own identity. Teardown forgets it with the attachment.
        node.addresses.insert(attachment.address, &instance.spec.id);
        instance.attachment = Some(attachment);
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

    /// CPU time used by every container of the instance so far (the autoscaler's CPU
    /// signal: its rate over a window is the instance's CPU use). Containers whose cgroup
    /// cannot be read count as zero.
    pub fn cpu_usage(&self) -> Duration {
        self.containers
            .iter()
            .filter_map(|r| {
                Cgroup::new(&self.node.cgroups, r.container.cgroups_path())
                    .cpu_usage()
                    .ok()
            })
            .sum()
    }

    /// How many times `restart` has run.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// The host pid of a container's init.
    pub fn pid(&self, container: &str) -> Option<i32> {
        self.containers
            .iter()
            .find(|r| r.name == container)
            .map(|r| r.container.pid())
    }

    fn total_memory(&self) -> i64 {
        self.spec
            .containers
            .iter()
            .map(|c| c.limits.memory_bytes)
            .sum()
    }

    /// Volumes, shared namespaces, then the containers: each starts as soon as those it
    /// depends on are ready, so independent containers start together, as Cloud Run does.
    async fn bring_up(&mut self) -> Result<(), RuntimeError> {
        let generation = if self.restarts == 0 {
            String::new()
        } else {
            format!("r{}", self.restarts)
        };
        let gen2 = self.node.runtime.kind() == OciRuntime::Runc;
        let volume_paths = self.mount_volumes(&generation)?;
        // A lone container has nobody to share with: it makes its own namespaces.
        if gen2 && self.spec.containers.len() > 1 {
            self.pin_namespaces(&generation).await?;
        }
        let state = self.dir.join(format!("containers{generation}"));
        std::fs::create_dir(&state).context(|| format!("creating {}", state.display()))?;
        let mut prepared: Vec<Option<Prepared>> = Vec::new();
        for index in 0..self.spec.containers.len() {
            prepared.push(Some(self.prepare(
                index,
                &generation,
                &volume_paths,
                gen2,
            )?));
        }
        self.cpu
            .boosted
            .store(self.spec.cpu_boost, Ordering::SeqCst);

        let count = self.spec.containers.len();
        let mut ready = vec![false; count];
        let mut starting = tokio::task::JoinSet::new();
        let mut probing = tokio::task::JoinSet::new();
        let address = std::net::IpAddr::V4(self.address());
        let mut failure = None;
        while failure.is_none() && ready.iter().any(|r| !r) {
            for (index, slot) in prepared.iter_mut().enumerate() {
                let deps_ready = self.spec.containers[index].depends_on.iter().all(|d| {
                    self.spec
                        .containers
                        .iter()
                        .zip(&ready)
                        .any(|(c, r)| &c.name == d && *r)
                });
                if slot.is_some() && deps_ready {
                    let Some(p) = slot.take() else { continue };
                    let (store, runtime, logs) = (
                        self.node.store.clone(),
                        self.node.runtime.clone(),
                        self.logs.clone(),
                    );
                    let state_dir = state.clone();
                    starting.spawn_blocking(move || {
                        let started = Container::start_with_logs(
                            &p.spec, &store, &p.image, &runtime, &state_dir, logs,
                        );
                        (p, started)
                    });
                }
            }
            tokio::select! {
                Some(joined) = starting.join_next() => match joined {
                    Ok((p, Ok(container))) => {
                        let container = Arc::new(container);
                        let name = self.spec.containers[p.index].name.clone();
                        let (unhealthy_tx, unhealthy) = tokio::sync::watch::channel(None);
                        self.containers.push(Running {
                            name: name.clone(),
                            container: container.clone(),
                            unhealthy,
                            liveness_task: None,
                            cpu_millis: p.cpu_millis,
                        });
                        let liveness = p.liveness.clone();
                        match p.startup.clone() {
                            Some(probe) => {
                                probing.spawn(async move {
                                    let outcome = tokio::select! {
                                        passed = health::wait_startup(address, &probe) => passed.map_err(|f| f.to_string()),
                                        exit = container.exited() => Err(describe_exit(&exit)),
                                    };
                                    (p.index, name, liveness, unhealthy_tx, outcome)
                                });
                            }
                            None => {
                                probing.spawn(async move { (p.index, name, liveness, unhealthy_tx, Ok(())) });
                            }
                        }
                    }
                    Ok((p, Err(e))) => {
                        let name = &self.spec.containers[p.index].name;
                        failure = Some(RuntimeError::Invalid(format!("container {name}: {e}")));
                    }
                    Err(e) => failure = Some(RuntimeError::Invalid(format!("starting a container: {e}"))),
                },
                Some(joined) = probing.join_next() => match joined {
                    Ok((index, name, liveness, unhealthy_tx, Ok(()))) => {
                        ready[index] = true;
                        if let Some(probe) = liveness {
                            let task = self.spawn_liveness(address, probe, unhealthy_tx);
                            if let Some(r) = self.containers.iter_mut().find(|r| r.name == name) {
                                r.liveness_task = Some(task);
                            }
                        }
                    }
                    Ok((_, name, _, _, Err(reason))) => failure = Some(self.not_ready(&name, &reason)),
                    Err(e) => failure = Some(RuntimeError::Invalid(format!("probing a container: {e}"))),
                },
            }
        }
        if let Some(failure) = failure {
            // Probes stop now; starts in flight finish, and their containers are kept so
            // that teardown removes them.
            probing.abort_all();
            while probing.join_next().await.is_some() {}
            while let Some(joined) = starting.join_next().await {
                if let Ok((p, Ok(container))) = joined {
                    self.containers.push(Running {
                        name: self.spec.containers[p.index].name.clone(),
                        container: Arc::new(container),
                        unhealthy: tokio::sync::watch::channel(None).1,
                        liveness_task: None,
                        cpu_millis: p.cpu_millis,
                    });
                }
            }
            return Err(failure);
        }
        if self.spec.cpu_boost {
            self.end_boost_later();
        }
        Ok(())
    }

    /// The container's final spec: argv, env and working directory from the image and
    /// the template, the platform's variables, limits (boosted), mounts, namespaces.
    fn prepare(
        &self,
        index: usize,
        generation: &str,
        volume_paths: &HashMap<String, (PathBuf, bool)>,
        gen2: bool,
    ) -> Result<Prepared, RuntimeError> {
        let def = &self.spec.containers[index];
        let fail = |e: String| RuntimeError::Invalid(format!("container {}: {e}", def.name));
        let config = self
            .node
            .store
            .read_blob(&def.image.config_digest)?
            .ok_or_else(|| {
                fail(format!(
                    "image {} has no config in the store",
                    def.image.reference
                ))
            })?;
        let config: serde_json::Value = serde_json::from_slice(&config)
            .map_err(|e| fail(format!("image {}: config: {e}", def.image.reference)))?;
        let image_process = ImageProcess::from_config(&config);
        let mut platform = self.spec.platform_env.clone();
        if let Some(port) = def.port {
            platform.push(("PORT".into(), port.to_string()));
        }
        let env = process::merge_env(&image_process.env, &def.overrides.env, &platform);
        let argv = process::resolve_argv(&image_process, &def.overrides, &env)
            .map_err(|e| fail(e.to_string()))?;
        let cwd = process::working_dir(&image_process, &def.overrides)
            .map_err(|e| fail(e.to_string()))?;
        let user = def.user.clone().unwrap_or(image_process.user.clone());
        let mut limits = def.limits;
        if self.spec.cpu_boost {
            limits.cpu_millis = boosted(limits.cpu_millis);
        }
        let attachment = self
            .attachment
            .as_ref()
            .ok_or_else(|| RuntimeError::Invalid("the instance has no network".into()))?;
        let mut volumes = Vec::new();
        for (volume, path) in &def.volume_mounts {
            let (source, read_only) = volume_paths
                .get(volume)
                .ok_or_else(|| fail(format!("volume {volume:?} is not defined")))?;
            volumes.push(VolumeMount {
                source: source.clone(),
                destination: path.clone(),
                read_only: *read_only,
            });
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
            shared_namespaces: match self.namespaces.as_slice() {
                [ipc, uts] => Some((ipc.clone(), uts.clone())),
                _ => None,
            },
            hosts: self.spec.hosts.clone(),
            volumes,
            dmi_product_name: gen2.then(|| "Google Compute Engine".to_string()),
        };
        Ok(Prepared {
            index,
            spec,
            image: def.image.clone(),
            startup: def
                .startup_probe
                .clone()
                .or_else(|| def.port.map(ProbeSpec::default_startup)),
            liveness: def.liveness_probe.clone(),
            cpu_millis: def.limits.cpu_millis,
        })
    }

    /// Every volume's host directory by name, with whether containers mount it read-only:
    /// in-memory volumes are fresh tmpfs mounts, file volumes tmpfs mounts holding their
    /// files, read-only once written.
    fn mount_volumes(
        &mut self,
        generation: &str,
    ) -> Result<HashMap<String, (PathBuf, bool)>, RuntimeError> {
        let volume_dir = self.dir.join(format!("volumes{generation}"));
        std::fs::create_dir(&volume_dir)
            .context(|| format!("creating {}", volume_dir.display()))?;
        let mut paths = HashMap::new();
        for v in self.spec.volumes.clone() {
            let path = volume_dir.join(&v.name);
            let size = v.size_bytes.unwrap_or(self.total_memory() / 2);
            std::fs::create_dir(&path).context(|| format!("creating {}", path.display()))?;
            // Mode 0777, as Kubernetes gives an `emptyDir`, so a non-root user can write.
            crate::container::mount_tmpfs(&path, size, 0o777)?;
            self.volumes.push(path.clone());
            paths.insert(v.name, (path, false));
        }
        if !self.spec.file_volumes.is_empty() {
            // Only root may look in here on the host: the files are secrets. Containers see
            // each volume through their own (read-only) mount of it, whatever its parents.
            let files_dir = self.dir.join(format!("files{generation}"));
            std::fs::create_dir(&files_dir)
                .context(|| format!("creating {}", files_dir.display()))?;
            set_mode(&files_dir, 0o700)?;
            for v in &self.spec.file_volumes {
                let path = files_dir.join(&v.name);
                std::fs::create_dir(&path).context(|| format!("creating {}", path.display()))?;
                crate::container::mount_tmpfs(&path, file_volume_size(v), 0o755)?;
                // Unmounted at teardown from here on, whatever fails next.
                self.volumes.push(path.clone());
                write_files(&path, v)?;
                crate::container::remount_read_only(&path)?;
                paths.insert(v.name.clone(), (path, true));
            }
        }
        Ok(paths)
    }

    /// The IPC and UTS namespaces the containers share, made first and kept by bind mounts
    /// (as `ip netns` keeps network namespaces): every container joins them by path, so
    /// none depends on another's process, whose pid could be reused once it exits.
    async fn pin_namespaces(&mut self, generation: &str) -> Result<(), RuntimeError> {
        let dir = self.dir.join(format!("ns{generation}"));
        std::fs::create_dir(&dir).context(|| format!("creating {}", dir.display()))?;
        let (ipc, uts) = (dir.join("ipc"), dir.join("uts"));
        for f in [&ipc, &uts] {
            std::fs::write(f, b"").context(|| format!("creating {}", f.display()))?;
        }
        let mut unshare = tokio::process::Command::new("unshare");
        unshare
            .arg(format!("--ipc={}", ipc.display()))
            .arg(format!("--uts={}", uts.display()))
            .arg("true");
        // Both files are unmounted on teardown from here on (a file unshare did not mount
        // just logs a warning then).
        self.namespaces.extend([ipc, uts]);
        let out = unshare
            .output()
            .await
            .context(|| "running unshare to make the instance's IPC and UTS namespaces".into())?;
        if !out.status.success() {
            return Err(RuntimeError::Command {
                command: "unshare --ipc --uts".into(),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }

    /// The error for a container that did not become ready, with its last log lines.
    fn not_ready(&self, container: &str, reason: &str) -> RuntimeError {
        let lines: Vec<String> = self
            .logs
            .entries()
            .into_iter()
            .filter(|e| e.container == container)
            .map(|e| e.text)
            .collect();
        RuntimeError::NotReady {
            container: container.to_string(),
            reason: reason.to_string(),
            last_logs: lines[lines.len().saturating_sub(10)..].to_vec(),
        }
    }

    /// The liveness probe of one container, paused while the instance is idle-throttled or
    /// frozen (a starved container cannot answer; Cloud Run gives probes CPU).
    fn spawn_liveness(
        &self,
        address: std::net::IpAddr,
        probe: ProbeSpec,
        verdict: tokio::sync::watch::Sender<Option<String>>,
    ) -> tokio::task::JoinHandle<()> {
        let cpu = self.cpu.clone();
        let mut changed = self.cpu_changed.subscribe();
        tokio::spawn(async move {
            loop {
                while cpu.idle.load(Ordering::SeqCst) || cpu.frozen.load(Ordering::SeqCst) {
                    if changed.changed().await.is_err() {
                        return;
                    }
                }
                tokio::select! {
                    failure = health::watch_liveness(address, &probe) => {
                        let _ = verdict.send(Some(failure.to_string()));
                        return;
                    }
                    // Paused: the count of failures starts again afterwards.
                    Ok(()) = changed.changed() => continue,
                }
            }
        })
    }

    /// The CPU each container gets now: almost none when idle, twice its limit during the
    /// startup boost, its limit otherwise.
    fn apply_cpu(&self) -> Result<(), RuntimeError> {
        apply_cpu(&self.cpu, &self.cpu_cgroups())
    }

    fn cpu_cgroups(&self) -> Vec<(Cgroup, u64)> {
        self.containers
            .iter()
            .map(|r| {
                (
                    Cgroup::new(&self.node.cgroups, r.container.cgroups_path()),
                    r.cpu_millis,
                )
            })
            .collect()
    }

    /// A handle that throttles this instance's CPU as [`Instance::throttle`] does, from any
    /// thread and synchronously (a few cgroup writes): the router's request path gives an
    /// idle instance its CPU back before the request reaches it. Valid until `restart`
    /// (the containers' cgroups change then: take a new one).
    pub fn cpu_control(&self) -> CpuControl {
        CpuControl {
            cpu: self.cpu.clone(),
            changed: self.cpu_changed.clone(),
            cgroups: self.cpu_cgroups(),
        }
    }

    /// After the boost window, each container goes back to its own CPU limit (unless the
    /// instance is idle, in which case it stays throttled).
    fn end_boost_later(&mut self) {
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
        let cpu = self.cpu.clone();
        self.boost_task = Some(tokio::spawn(async move {
            tokio::time::sleep(BOOST_AFTER_READY).await;
            cpu.boosted.store(false, Ordering::SeqCst);
            if !cpu.idle.load(Ordering::SeqCst) {
                for (cgroup, millis) in cgroups {
                    if let Err(e) = cgroup.set_cpu(millis) {
                        tracing::warn!("ending the CPU boost: {e}");
                    }
                }
            }
        }));
    }

    /// Resolves at the first event: a container exits, or a liveness probe fails its
    /// threshold. Cancel-safe and repeatable: the probes run on their own, so calling it
    /// again neither restarts them nor loses a verdict.
    pub async fn watch(&self) -> InstanceEvent {
        if self.containers.is_empty() {
            return std::future::pending().await;
        }
        let waits = self.containers.iter().map(|r| {
            Box::pin(async move {
                let mut unhealthy = r.unhealthy.clone();
                tokio::select! {
                    exit = r.container.exited() => InstanceEvent::Exited {
                        container: r.name.clone(),
                        exit,
                    },
                    Ok(verdict) = unhealthy.wait_for(Option::is_some) => InstanceEvent::Unhealthy {
                        container: r.name.clone(),
                        reason: verdict.clone().unwrap_or_default(),
                    },
                }
            })
        });
        futures_util::future::select_all(waits).await.0
    }

    /// Kills every container (SIGKILL, as Cloud Run does on a failed liveness probe) and
    /// starts them afresh, in the same network namespace with fresh in-memory volumes and
    /// namespaces. If that fails the instance holds no containers; stop it.
    pub async fn restart(&mut self) -> Result<(), RuntimeError> {
        self.stop_containers(Duration::ZERO).await;
        self.release_mounts();
        self.restarts += 1;
        let started = self.bring_up().await;
        if started.is_err() {
            self.stop_containers(Duration::ZERO).await;
            self.release_mounts();
        }
        started
    }

    /// Caps every container's CPU at nearly nothing (`true`) or gives it back (its limit,
    /// or the boost while that lasts): Cloud Run's CPU allocated only during requests.
    /// A write to each cgroup: microseconds.
    pub fn throttle(&self, idle: bool) -> Result<(), RuntimeError> {
        self.cpu.idle.store(idle, Ordering::SeqCst);
        self.cpu_changed.send_replace(());
        self.apply_cpu()
    }

    /// Freezes (`true`) or thaws every container's processes. Freezing waits until the
    /// kernel reports them frozen (up to a few hundred ms for a busy, throttled one).
    pub async fn freeze(&self, frozen: bool) -> Result<(), RuntimeError> {
        self.cpu.frozen.store(frozen, Ordering::SeqCst);
        self.cpu_changed.send_replace(());
        let cgroups: Vec<Cgroup> = self
            .containers
            .iter()
            .map(|r| Cgroup::new(&self.node.cgroups, r.container.cgroups_path()))
            .collect();
        tokio::task::spawn_blocking(move || {
            for cgroup in cgroups {
                if frozen {
                    cgroup.freeze()?;
                } else {
                    cgroup.thaw()?;
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| RuntimeError::Invalid(format!("freezing: {e}")))?
    }

    /// Every container gets SIGTERM at once, then SIGKILL after `grace` (the contract: 10 s);
    /// then everything the instance had is removed. Returns how each container ended.
    pub async fn stop(mut self, grace: Duration) -> Vec<(String, ExitInfo)> {
        let exits = self.stop_containers(grace).await;
        self.teardown().await;
        exits
    }

    async fn stop_containers(&mut self, grace: Duration) -> Vec<(String, ExitInfo)> {
        if let Some(task) = self.boost_task.take() {
            task.abort();
        }
        if self.cpu.frozen.load(Ordering::SeqCst) {
            // Frozen processes cannot act on SIGTERM.
            let _ = self.freeze(false).await;
        }
        let running: Vec<Running> = self.containers.drain(..).collect();
        let stops: Vec<_> = running
            .into_iter()
            .map(|r| {
                if let Some(task) = &r.liveness_task {
                    task.abort();
                }
                tokio::task::spawn_blocking(move || r.stop_and_destroy(grace))
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

    /// Unmounts the volumes and the pinned namespaces.
    fn release_mounts(&mut self) {
        unmount_all(self.volumes.drain(..).chain(self.namespaces.drain(..)));
    }

    async fn teardown(&mut self) {
        self.stop_containers(Duration::ZERO).await;
        let network = self.node.network.clone();
        let mut rest = self.take_leftovers();
        let _ = tokio::task::spawn_blocking(move || rest.cleanup(&network)).await;
    }
}

/// What remains to undo once the containers are gone (or, from `Drop`, whatever remains).
struct Leftovers {
    id: String,
    dir: PathBuf,
    attachment: Option<Attachment>,
    mounts: Vec<PathBuf>,
    containers: Vec<Running>,
}

impl Leftovers {
    /// Synchronous and best effort: every step is tried, failures are logged.
    fn cleanup(&mut self, network: &Network) {
        for r in self.containers.drain(..) {
            if let Some(task) = &r.liveness_task {
                task.abort();
            }
            let _ = r.stop_and_destroy(Duration::ZERO);
        }
        unmount_all(self.mounts.drain(..));
        if let Some(a) = self.attachment.take() {
            if let Err(e) = a.release(network) {
                tracing::warn!("releasing the network of {}: {e}", self.id);
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("removing {}: {e}", self.dir.display());
            }
        }
    }
}

impl Instance {
    fn take_leftovers(&mut self) -> Leftovers {
        if let Some(task) = self.boost_task.take() {
            task.abort();
        }
        let attachment = self.attachment.take();
        if let Some(a) = &attachment {
            // Before the address is released, so it is never listed for a next holder.
            self.node.addresses.remove(a.address, &self.spec.id);
        }
        Leftovers {
            id: self.spec.id.clone(),
            dir: std::mem::take(&mut self.dir),
            attachment,
            mounts: self
                .volumes
                .drain(..)
                .chain(self.namespaces.drain(..))
                .collect(),
            containers: self.containers.drain(..).collect(),
        }
    }
}

/// An instance dropped without `stop` (a cancelled `start`, a panic, a forgotten handle)
/// still removes everything: containers killed, mounts, network and directory released.
impl Drop for Instance {
    fn drop(&mut self) {
        if self.dir.as_os_str().is_empty() {
            return;
        }
        let mut rest = self.take_leftovers();
        rest.cleanup(&self.node.network);
    }
}

impl Running {
    /// Stops the container (SIGTERM, `grace`, SIGKILL) and removes every trace of it. Blocks.
    fn stop_and_destroy(self, grace: Duration) -> (String, Result<ExitInfo, RuntimeError>) {
        let exit = self.container.stop(grace);
        // Nothing else holds the container (watch borrows it), so this is the last
        // reference and every trace goes with it.
        match Arc::try_unwrap(self.container) {
            Ok(container) => container.destroy(),
            Err(_) => tracing::warn!("container {} is still shared", self.name),
        }
        (self.name, exit)
    }
}

/// Writes each container's CFS quota for the instance's CPU state: nearly nothing when
/// idle, twice the limit while boosted, else the limit.
fn apply_cpu(cpu: &CpuState, cgroups: &[(Cgroup, u64)]) -> Result<(), RuntimeError> {
    for (cgroup, limit) in cgroups {
        let millis = if cpu.idle.load(Ordering::SeqCst) {
            IDLE_CPU_MILLIS
        } else if cpu.boosted.load(Ordering::SeqCst) {
            boosted(*limit)
        } else {
            *limit
        };
        cgroup.set_cpu(millis)?;
    }
    Ok(())
}

/// See [`Instance::cpu_control`].
#[derive(Clone)]
pub struct CpuControl {
    cpu: Arc<CpuState>,
    changed: Arc<tokio::sync::watch::Sender<()>>,
    cgroups: Vec<(Cgroup, u64)>,
}

impl CpuControl {
    /// As [`Instance::throttle`].
    pub fn throttle(&self, idle: bool) -> Result<(), RuntimeError> {
        self.cpu.idle.store(idle, Ordering::SeqCst);
        self.changed.send_replace(());
        apply_cpu(&self.cpu, &self.cgroups)
    }
}

/// A file volume's tmpfs: just room for its files (each takes its started pages; tmpfs
/// charges directories no pages) and a page more. Nothing is written to it afterwards.
fn file_volume_size(volume: &FileVolume) -> i64 {
    const PAGE: i64 = 4096;
    let pages: i64 = volume
        .files
        .iter()
        .map(|f| f.contents.len().div_ceil(PAGE as usize) as i64)
        .sum();
    (pages + 1) * PAGE
}

fn set_mode(path: &std::path::Path, mode: u32) -> Result<(), RuntimeError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .context(|| format!("chmod {mode:o} {}", path.display()))
}

/// Writes a file volume's files below `root` (a fresh, empty tmpfs; the paths are
/// validated): directories 0755, each file with its mode whatever the umask, owned by us
/// (root). Errors name the volume and the path, never the contents.
fn write_files(root: &std::path::Path, volume: &FileVolume) -> Result<(), RuntimeError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let what = |path: &str| format!("writing file {path:?} of volume {}", volume.name);
    for f in &volume.files {
        let mut dir = root.to_path_buf();
        let mut parts: Vec<&str> = f.path.split('/').collect();
        let name = parts.pop().unwrap_or_default();
        for part in parts {
            dir.push(part);
            if !dir.is_dir() {
                std::fs::create_dir(&dir).context(|| what(&f.path))?;
                set_mode(&dir, 0o755)?;
            }
        }
        let path = dir.join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .context(|| what(&f.path))?;
        file.write_all(&f.contents).context(|| what(&f.path))?;
        file.set_permissions(std::fs::Permissions::from_mode(f.mode))
            .context(|| what(&f.path))?;
    }
    Ok(())
}

/// Best effort: each failure is logged and the rest still unmounted.
fn unmount_all(paths: impl Iterator<Item = PathBuf>) {
    for path in paths {
        if let Err(e) = crate::container::unmount(&path) {
            tracing::warn!("{e}");
        }
    }
}

/// Twice a container's CPU, within the machine: the startup boost.
fn boosted(cpu_millis: u64) -> u64 {
    let (host_cpu_millis, _) = crate::container::host_capacity();
    (cpu_millis * 2).min(host_cpu_millis)
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
            file_volumes: vec![],
            platform_env: vec![],
            hosts: vec![],
            cpu_boost: false,
        }
    }

    fn file(path: &str, contents: &str, mode: u32) -> VolumeFile {
        VolumeFile {
            path: path.into(),
            contents: contents.as_bytes().to_vec(),
            mode,
        }
    }

    fn with_secrets(files: Vec<VolumeFile>) -> InstanceSpec {
        let mut a = def("a", &[]);
        a.volume_mounts = vec![("secrets".into(), "/secrets".into())];
        let mut s = spec(vec![a]);
        s.file_volumes = vec![FileVolume {
            name: "secrets".into(),
            files,
        }];
        s
    }

    #[test]
    fn file_volume_paths_are_checked_and_errors_name_the_volume_and_path() {
        let ok = with_secrets(vec![
            file("key", "k", 0o444),
            file("nested/dir/cert.pem", "c", 0o400),
            file("nested/other", "o", 0o644),
        ]);
        assert!(validate(&ok).is_ok());
        for (files, expect) in [
            (
                vec![file("/etc/key", "", 0o444)],
                "\"/etc/key\" is absolute",
            ),
            (
                vec![file("a/../b", "", 0o444)],
                "\"a/../b\" is not a normalised",
            ),
            (vec![file("..", "", 0o444)], "\"..\" is not a normalised"),
            (
                vec![file("a//b", "", 0o444)],
                "\"a//b\" is not a normalised",
            ),
            (
                vec![file("dir/", "", 0o444)],
                "\"dir/\" is not a normalised",
            ),
            (vec![file("", "", 0o444)], "\"\" is empty"),
            (
                vec![file("k", "", 0o444), file("k", "", 0o400)],
                "\"k\" is given twice",
            ),
            (
                vec![file("a", "", 0o444), file("a/b", "", 0o444)],
                "\"a\" is a file, but \"a/b\" needs it",
            ),
            (vec![file("k", "", 0o4755)], "mode 0o4755"),
        ] {
            let e = validate(&with_secrets(files)).unwrap_err().to_string();
            assert!(e.starts_with("volume secrets: file path "), "{e}");
            assert!(e.contains(expect), "{expect}: {e}");
        }
    }

    #[test]
    fn volume_names_are_unique_across_kinds_and_plain_path_components() {
        let mut s = with_secrets(vec![]);
        s.volumes = vec![MemoryVolume {
            name: "secrets".into(),
            size_bytes: None,
        }];
        let e = validate(&s).unwrap_err().to_string();
        assert!(e.contains("two volumes are named \"secrets\""), "{e}");
        for bad in ["", ".", "..", "a/b", "../up"] {
            let mut s = with_secrets(vec![]);
            s.file_volumes[0].name = bad.into();
            s.containers[0].volume_mounts = vec![(bad.into(), "/secrets".into())];
            let e = validate(&s).unwrap_err().to_string();
            assert!(e.contains(&format!("volume name {bad:?}")), "{bad}: {e}");
            let mut s = spec(vec![def("a", &[])]);
            s.volumes = vec![MemoryVolume {
                name: bad.into(),
                size_bytes: None,
            }];
            assert!(validate(&s).is_err(), "{bad}");
        }
    }

    #[test]
    fn volume_file_debug_shows_the_length_not_the_contents() {
        let debug = format!("{:?}", with_secrets(vec![file("key", "hunter2", 0o444)]));
        assert!(
            debug.contains("\"key\"") && debug.contains("<7 bytes>"),
            "{debug}"
        );
        assert!(debug.contains("0o444"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn files_are_written_with_their_modes_below_0755_directories() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let volume = FileVolume {
            name: "v".into(),
            files: vec![
                file("top", "1", 0o444),
                file("a/b/deep", "22", 0o600),
                file("a/side", "333", 0o640),
            ],
        };
        write_files(root.path(), &volume).unwrap();
        let mode = |p: &str| {
            std::fs::metadata(root.path().join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("top"), 0o444);
        assert_eq!(mode("a/b/deep"), 0o600);
        assert_eq!(mode("a/side"), 0o640);
        assert_eq!(mode("a"), 0o755);
        assert_eq!(mode("a/b"), 0o755);
        assert_eq!(std::fs::read(root.path().join("a/b/deep")).unwrap(), b"22");
        // A page for each file's started pages, one more.
        assert_eq!(file_volume_size(&volume), 4 * 4096);
        let big = FileVolume {
            name: "big".into(),
            files: vec![VolumeFile {
                path: "f".into(),
                contents: vec![0; 4097],
                mode: 0o444,
            }],
        };
        assert_eq!(file_volume_size(&big), 3 * 4096);
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
