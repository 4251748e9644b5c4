//! One container's whole life: a memory-backed writable layer, the overlay root over the
//! image's shared layers, the bundle, runc create and start, log capture, exit and OOM
//! detection, SIGTERM then SIGKILL after the grace period, and cleanup of every piece.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use image::rootfs::Rootfs;
use image::{ImageRecord, Lease, Store};

use crate::bundle::{write_bundle, BundleSpec};
use crate::error::{IoContext, RuntimeError};
use crate::logs::{capture, LogBuffer, Stream};
use crate::runc::Runtime;

/// Bytes of log kept per container.
const LOG_BYTES: usize = 1 << 20;

/// The container's process: argv, environment, working directory and user. Its `Debug`
/// shows the environment's names but not its values, and of argv (where `$(VAR)` has been
/// expanded) the program and the number of arguments: values may be secrets.
#[derive(Clone)]
pub struct ProcessSpec {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub user: User,
}

impl std::fmt::Debug for ProcessSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let program = self.argv.first().map(String::as_str).unwrap_or_default();
        f.debug_struct("ProcessSpec")
            .field(
                "argv",
                &format_args!(
                    "[{program:?}, <{} more>]",
                    self.argv.len().saturating_sub(1)
                ),
            )
            .field("env", &crate::process::EnvNames(&self.env))
            .field("cwd", &self.cwd)
            .field("user", &self.user)
            .finish()
    }
}

/// Who the process runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum User {
    /// Numeric ids, used as given.
    Ids(Ids),
    /// A Docker `USER` value (`name`, `uid:gid`, ...), resolved in the image's own
    /// `/etc/passwd` and `/etc/group` once its root is mounted.
    Image(String),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// cgroup limits of one container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: i64,
    /// Thousandths of a vCPU (1000 = one vCPU).
    pub cpu_millis: u64,
    pub pids: i64,
}

/// A host directory (an instance's in-memory volume) bind-mounted into the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeMount {
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
}

/// What a container needs besides its image.
#[derive(Clone, Debug)]
pub struct ContainerSpec {
    /// Short, unique, `[a-z0-9-]`: names the runc container, the state directory, the cgroup.
    pub id: String,
    /// The container's name within its instance, as its log entries carry it.
    pub name: String,
    pub process: ProcessSpec,
    pub limits: Limits,
    pub hostname: String,
    pub netns: Option<PathBuf>,
    /// IPC and UTS namespaces to join (bind-mounted namespace files, the instance's), as
    /// the containers of a pod share them; None makes fresh ones.
    pub shared_namespaces: Option<(PathBuf, PathBuf)>,
    /// Extra `/etc/hosts` lines (address, names), e.g. the metadata server.
    pub hosts: Vec<(String, Vec<String>)>,
    pub volumes: Vec<VolumeMount>,
    /// What `/sys/class/dmi/id/product_name` reads (Cloud Run's second generation says
    /// `Google Compute Engine`); None leaves `/sys/class` as the kernel shows it.
    pub dmi_product_name: Option<String>,
}

/// How a container ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitInfo {
    /// Exit code when it exited, None when a signal ended it.
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// The memory cgroup's OOM killer ended a process of the container.
    pub oom_killed: bool,
}

/// Makes this process the reaper of orphans below it, so a container's init (whose parent,
/// `runc create`, exits at once) is reparented to us and its exit status is ours to read.
pub fn become_subreaper() -> Result<(), RuntimeError> {
    // SAFETY: prctl with integer arguments has no memory effects.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error())
            .context(|| "becoming a child subreaper".into());
    }
    Ok(())
}

type ExitSlot = Arc<(Mutex<Option<ExitInfo>>, Condvar)>;
/// The exit, published for async waiters too.
type ExitWatch = tokio::sync::watch::Sender<Option<ExitInfo>>;

pub struct Container {
    id: String,
    dir: PathBuf,
    runtime: Runtime,
    cgroups_path: String,
    rootfs: Option<Rootfs>,
    rw_mounted: bool,
    created: bool,
    pid: i32,
    exit: ExitSlot,
    exit_watch: ExitWatch,
    logs: Arc<LogBuffer>,
    log_threads: Vec<std::thread::JoinHandle<()>>,
    _lease: Option<Lease>,
}

fn cstring(p: &Path) -> Result<CString, RuntimeError> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| RuntimeError::Invalid(format!("{} has a NUL byte", p.display())))
}

/// Mounts a tmpfs of at most `size` bytes; its pages are charged to the writer's memory cgroup.
pub(crate) fn mount_tmpfs(target: &Path, size: i64, mode: u32) -> Result<(), RuntimeError> {
    let t = cstring(target)?;
    let options = CString::new(format!("size={size},mode={mode:o}"))
        .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
    // SAFETY: valid NUL-terminated strings outliving the call.
    let rc = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            t.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NODEV | libc::MS_NOSUID,
            options.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .context(|| format!("mounting tmpfs at {}", target.display()));
    }
    Ok(())
}

/// Makes a mounted tmpfs read-only, for everyone (the host included) from now on.
pub(crate) fn remount_read_only(target: &Path) -> Result<(), RuntimeError> {
    let t = cstring(target)?;
    // SAFETY: a valid NUL-terminated path; null source, type and data are allowed on remount.
    let rc = unsafe {
        libc::mount(
            std::ptr::null(),
            t.as_ptr(),
            std::ptr::null(),
            libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NODEV | libc::MS_NOSUID,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .context(|| format!("remounting {} read-only", target.display()));
    }
    Ok(())
}

pub(crate) fn unmount(target: &Path) -> Result<(), RuntimeError> {
    let t = cstring(target)?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(std::io::Error::last_os_error())
            .context(|| format!("unmounting {}", target.display()));
    }
    Ok(())
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 48
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Paths no volume may cover: the kernel's filesystems (Cloud Run refuses `/dev`, `/proc`,
/// `/sys` and everything under them) and the files the platform itself provides.
const PROTECTED: [&str; 3] = ["/dev", "/proc", "/sys"];
const PLATFORM_FILES: [&str; 3] = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"];

/// A volume's mount path: absolute, normalised, and not over a protected path.
pub fn validate_mount_path(path: &str) -> Result<(), RuntimeError> {
    let refuse = |why: &str| {
        Err(RuntimeError::Invalid(format!(
            "volume mount path {path:?} {why}"
        )))
    };
    if !path.starts_with('/') {
        return refuse("is not absolute");
    }
    if path
        .split('/')
        .skip(1)
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return refuse("is not a normalised path (no empty, `.` or `..` parts, no trailing /)");
    }
    if path.len() > 4096 || path.contains('\0') || path.contains(',') || path.contains(':') {
        return refuse("is too long or holds NUL, `,` or `:`");
    }
    for p in PROTECTED {
        if path == p || path.starts_with(&format!("{p}/")) {
            return refuse(&format!(
                "is {p} or under it, which Cloud Run does not allow"
            ));
        }
    }
    if path == "/" {
        return refuse("would cover the whole root filesystem");
    }
    if PLATFORM_FILES.contains(&path) || path == "/etc" {
        return refuse("would cover a file the platform provides (/etc/hosts, /etc/hostname, /etc/resolv.conf)");
    }
    Ok(())
}

/// The host's CPUs and memory, which no container's limits may exceed.
pub(crate) fn host_capacity() -> (u64, i64) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    // SAFETY: sysconf with constant names has no memory effects.
    let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    (cpus * 1000, pages.max(0) as i64 * page.max(0) as i64)
}

/// Limits this machine can honour.
pub fn validate_limits(limits: &Limits) -> Result<(), RuntimeError> {
    let invalid = |m: String| Err(RuntimeError::Invalid(m));
    let (host_cpu_millis, host_memory) = host_capacity();
    if limits.memory_bytes < (6 << 20) {
        return invalid(format!(
            "memory limit {} bytes is below the 6 MiB minimum",
            limits.memory_bytes
        ));
    }
    if limits.memory_bytes > host_memory {
        return invalid(format!(
            "memory limit {} MiB is more than this machine has ({} MiB)",
            limits.memory_bytes >> 20,
            host_memory >> 20
        ));
    }
    if limits.cpu_millis < 10 {
        return invalid(format!(
            "CPU limit {} mCPU is below the 10 mCPU minimum",
            limits.cpu_millis
        ));
    }
    if limits.cpu_millis > host_cpu_millis {
        return invalid(format!(
            "CPU limit {} vCPU is more than this machine's {} CPUs",
            limits.cpu_millis as f64 / 1000.0,
            host_cpu_millis / 1000
        ));
    }
    if limits.pids < 1 {
        return invalid(format!("PIDs limit {} must be at least 1", limits.pids));
    }
    Ok(())
}

/// Refuses a spec that cannot run, before anything is created.
fn validate(spec: &ContainerSpec) -> Result<(), RuntimeError> {
    let invalid = |m: String| Err(RuntimeError::Invalid(m));
    if !valid_id(&spec.id) {
        return invalid(format!(
            "container id {:?} must be 1-48 of [a-z0-9-]",
            spec.id
        ));
    }
    validate_limits(&spec.limits)?;
    if spec.process.argv.is_empty() {
        return invalid("the container has no command to run".into());
    }
    let mut seen = std::collections::HashSet::new();
    for v in &spec.volumes {
        validate_mount_path(&v.destination)?;
        if !seen.insert(v.destination.as_str()) {
            return invalid(format!("two volumes are mounted at {}", v.destination));
        }
    }
    Ok(())
}

impl Container {
    /// Creates and starts the container, with its own log buffer. On failure everything done
    /// so far is undone.
    pub fn start(
        spec: &ContainerSpec,
        store: &Store,
        image: &ImageRecord,
        runtime: &Runtime,
        state_dir: &Path,
    ) -> Result<Self, RuntimeError> {
        let logs = Arc::new(LogBuffer::new(LOG_BYTES));
        Self::start_with_logs(spec, store, image, runtime, state_dir, logs)
    }

    /// As `start`, with the output going to `logs` (an instance's buffer, shared by its
    /// containers; entries carry the container's name).
    pub fn start_with_logs(
        spec: &ContainerSpec,
        store: &Store,
        image: &ImageRecord,
        runtime: &Runtime,
        state_dir: &Path,
        logs: Arc<LogBuffer>,
    ) -> Result<Self, RuntimeError> {
        validate(spec)?;
        let dir = state_dir.join(&spec.id);
        std::fs::create_dir(&dir).context(|| format!("creating {}", dir.display()))?;
        let mut container = Self {
            id: spec.id.clone(),
            dir,
            runtime: runtime.clone(),
            cgroups_path: format!("/homerun/{}", spec.id),
            rootfs: None,
            rw_mounted: false,
            created: false,
            pid: 0,
            exit: Arc::new((Mutex::new(None), Condvar::new())),
            exit_watch: tokio::sync::watch::Sender::new(None),
            logs,
            log_threads: Vec::new(),
            _lease: None,
        };
        match container.bring_up(spec, store, image) {
            Ok(()) => Ok(container),
            Err(e) => {
                container.destroy();
                Err(e)
            }
        }
    }

    fn bring_up(
        &mut self,
        spec: &ContainerSpec,
        store: &Store,
        image: &ImageRecord,
    ) -> Result<(), RuntimeError> {
        self._lease = Some(store.lease(image)?);
        // The writable layer lives in memory: its pages are charged to the container's
        // memory cgroup, so writing files uses instance memory (the contract).
        let rw = self.dir.join("rw");
        std::fs::create_dir(&rw).context(|| format!("creating {}", rw.display()))?;
        mount_tmpfs(&rw, spec.limits.memory_bytes, 0o755)?;
        self.rw_mounted = true;
        let (upper, work, root) = (rw.join("upper"), rw.join("work"), self.dir.join("rootfs"));
        for d in [&upper, &work, &root] {
            std::fs::create_dir(d).context(|| format!("creating {}", d.display()))?;
        }
        let tmp = upper.join("tmp");
        std::fs::create_dir(&tmp).context(|| format!("creating {}", tmp.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))
            .context(|| format!("chmod {}", tmp.display()))?;
        self.rootfs = Some(Rootfs::mount(
            &store.layer_dirs(image)?,
            &upper,
            &work,
            &root,
        )?);
        // A missing or foreign executable gets a clear error here, not one from inside runc.
        let process = &spec.process;
        crate::entrypoint::check_executable(&root, &process.argv, &process.env, &process.cwd)?;
        let ids = match &process.user {
            User::Ids(ids) => ids.clone(),
            User::Image(user) => {
                let (uid, gid, additional_gids) = crate::process::resolve_user(user, &root)
                    .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
                Ids {
                    uid,
                    gid,
                    additional_gids,
                }
            }
        };

        let etc = self.dir.join("etc");
        std::fs::create_dir(&etc).context(|| format!("creating {}", etc.display()))?;
        let mut hosts =
            String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        for (addr, names) in &spec.hosts {
            hosts.push_str(&format!("{addr}\t{}\n", names.join(" ")));
        }
        std::fs::write(etc.join("hosts"), hosts).context(|| "writing hosts".into())?;
        std::fs::write(etc.join("hostname"), format!("{}\n", spec.hostname))
            .context(|| "writing hostname".into())?;
        let resolv = std::fs::read("/etc/resolv.conf").unwrap_or_default();
        std::fs::write(etc.join("resolv.conf"), resolv).context(|| "writing resolv.conf".into())?;
        let dmi_dir = match &spec.dmi_product_name {
            Some(name) => {
                let dir = self.dir.join("dmi");
                let id = dir.join("dmi/id");
                std::fs::create_dir_all(&id).context(|| format!("creating {}", id.display()))?;
                // Client libraries detect Google's platform from these: Python's google-auth
                // and Go's metadata package read product_name, Node's gcp-metadata
                // bios_vendor.
                for (file, value) in [
                    ("product_name", name.as_str()),
                    ("sys_vendor", "Google"),
                    ("bios_vendor", "Google"),
                ] {
                    std::fs::write(id.join(file), format!("{value}\n"))
                        .context(|| format!("writing {file}"))?;
                }
                Some(dir)
            }
            None => None,
        };

        write_bundle(
            &self.dir,
            &BundleSpec {
                rootfs: root,
                process: process.clone(),
                ids,
                limits: spec.limits,
                hostname: spec.hostname.clone(),
                netns: spec.netns.clone(),
                shared_namespaces: spec.shared_namespaces.clone(),
                volumes: spec.volumes.clone(),
                dmi_dir,
                etc_dir: etc,
                cgroups_path: self.cgroups_path.clone(),
            },
        )?;

        let (out_r, out_w) = std::io::pipe().context(|| "creating a stdout pipe".into())?;
        let (err_r, err_w) = std::io::pipe().context(|| "creating a stderr pipe".into())?;
        let started = self.runtime.run_detached(
            &self.id,
            &self.dir,
            Stdio::from(out_w),
            Stdio::from(err_w),
            &self.dir.join("runc.log"),
        );
        self.log_threads.push(capture(
            out_r,
            self.logs.clone(),
            spec.name.clone(),
            Stream::Stdout,
        ));
        self.log_threads.push(capture(
            err_r,
            self.logs.clone(),
            spec.name.clone(),
            Stream::Stderr,
        ));
        // runc may have created the container before failing: `delete --force` cleans up.
        self.created = true;
        self.pid = started?;
        self.watch_exit();
        Ok(())
    }

    /// A thread waits for the init process (ours as subreaper) and records how it ended,
    /// once the log threads have read everything: an exit is only seen with its last lines.
    /// (When init dies the kernel kills the rest of its PID namespace, so the pipes close.)
    fn watch_exit(&mut self) {
        let (pid, slot, exit_watch) = (self.pid, self.exit.clone(), self.exit_watch.clone());
        let memory = crate::cgroup::Layout::host()
            .map(|layout| crate::cgroup::Cgroup::new(layout, &self.cgroups_path));
        let log_threads: Vec<_> = self.log_threads.drain(..).collect();
        tracked().insert(pid);
        std::thread::spawn(move || {
            let mut status = 0;
            // SAFETY: waitpid on a specific pid with a valid status pointer.
            let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
            tracked().remove(&pid);
            let (code, signal) = if rc == pid {
                if libc::WIFEXITED(status) {
                    (Some(libc::WEXITSTATUS(status)), None)
                } else {
                    (None, Some(libc::WTERMSIG(status)))
                }
            } else {
                // Not our child (no subreaper): wait until it is gone, status unknown.
                // SAFETY: signal 0 only checks existence.
                while unsafe { libc::kill(pid, 0) } == 0 {
                    std::thread::sleep(Duration::from_millis(20));
                }
                (None, None)
            };
            // Only an init killed by SIGKILL was ended by the OOM killer; a worker it killed
            // while init went on and exited on its own does not make the exit an OOM.
            let oom_killed = signal == Some(libc::SIGKILL)
                && memory.as_ref().is_some_and(|cgroup| cgroup.oom_kills() > 0);
            for t in log_threads {
                let _ = t.join();
            }
            let exit = ExitInfo {
                code,
                signal,
                oom_killed,
            };
            let (lock, cv) = &*slot;
            *lock.lock().unwrap_or_else(|e| e.into_inner()) = Some(exit);
            cv.notify_all();
            exit_watch.send_replace(Some(exit));
        });
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn logs(&self) -> &Arc<LogBuffer> {
        &self.logs
    }

    /// Waits for the container to end, at most `timeout`; None if it still runs.
    pub fn wait(&self, timeout: Duration) -> Option<ExitInfo> {
        let (lock, cv) = &*self.exit;
        let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = cv
            .wait_timeout_while(guard, timeout, |exit| exit.is_none())
            .unwrap_or_else(|e| e.into_inner());
        *guard
    }

    /// Resolves when the container has ended (at once if it has).
    pub async fn exited(&self) -> ExitInfo {
        let mut rx = self.exit_watch.subscribe();
        loop {
            if let Some(exit) = *rx.borrow_and_update() {
                return exit;
            }
            // The sender lives in `self`, which outlives this borrow.
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    pub fn cgroups_path(&self) -> &str {
        &self.cgroups_path
    }

    /// SIGTERM to every process, then SIGKILL once `grace` has passed (the contract: 10 s).
    pub fn stop(&self, grace: Duration) -> Result<ExitInfo, RuntimeError> {
        if let Some(exit) = self.wait(Duration::ZERO) {
            return Ok(exit);
        }
        // SIGTERM to init only, as Docker and Cloud Run do: a server's main process then
        // drains its workers itself. A container that exits between the check and the kill
        // makes runc fail: fine.
        let _ = self.runtime.kill(&self.id, "TERM", false);
        if let Some(exit) = self.wait(grace) {
            return Ok(exit);
        }
        let _ = self.runtime.kill(&self.id, "KILL", true);
        self.wait(Duration::from_secs(30)).ok_or_else(|| {
            RuntimeError::Invalid(format!("container {} survived SIGKILL for 30 s", self.id))
        })
    }

    /// Removes every trace: the runc container and its cgroup, the mounts, the directory.
    pub fn destroy(mut self) {
        self.teardown();
    }

    fn teardown(&mut self) {
        if self.created {
            match self.runtime.delete(&self.id, true) {
                // `run` failed after runc had cleaned up itself: nothing to delete.
                Err(RuntimeError::Command { stderr, .. }) if stderr.contains("does not exist") => {}
                Err(e) => tracing::warn!("deleting container {}: {e}", self.id),
                Ok(()) => {}
            }
            if self.runtime.kind() == crate::runc::OciRuntime::Runsc {
                // The sandbox may take a moment to exit after `delete`; other instances'
                // sandboxes stay alive, so this waits at most 200 ms.
                for _ in 0..20 {
                    if reap_runsc_leftovers() == 0 {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                // runsc leaves the container's (empty) cgroups behind; runc removes them.
                if let Some(layout) = crate::cgroup::Layout::host() {
                    for dir in crate::cgroup::Cgroup::new(layout, &self.cgroups_path).dirs() {
                        let _ = std::fs::remove_dir(dir);
                    }
                }
            }
            self.created = false;
        }
        for t in self.log_threads.drain(..) {
            let _ = t.join();
        }
        if let Some(rootfs) = self.rootfs.take() {
            if let Err(e) = rootfs.unmount() {
                tracing::warn!("{e}");
            }
        }
        if self.rw_mounted {
            if let Err(e) = unmount(&self.dir.join("rw")) {
                tracing::warn!("{e}");
            }
            self.rw_mounted = false;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("removing {}: {e}", self.dir.display());
            }
        }
        self._lease = None;
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Container inits whose exit a watcher thread is waiting for: never reaped by anyone else.
fn tracked() -> std::sync::MutexGuard<'static, std::collections::BTreeSet<i32>> {
    static TRACKED: Mutex<std::collections::BTreeSet<i32>> =
        Mutex::new(std::collections::BTreeSet::new());
    TRACKED.lock().unwrap_or_else(|e| e.into_inner())
}

/// runsc's sandbox and gofer processes (re-executions of runsc, named `exe`) outlive the
/// `runsc` command that started them, so as child subreaper homerun inherits them; once they
/// exit they stay zombies unless reaped. Only dead children named `exe` that no watcher
/// waits for are reaped, one pid at a time, so no other child's exit status is taken
/// (`std::process::Command` waits on its own children by pid).
/// Returns how many such children are still alive.
fn reap_runsc_leftovers() -> usize {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut alive = 0;
    for entry in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let mut rest = stat[close + 1..].split_whitespace();
        let (state, ppid) = (rest.next(), rest.next());
        let Ok(pid) = stat[..open].trim().parse::<i32>() else {
            continue;
        };
        if comm != "exe" || ppid != Some(me.as_str()) || tracked().contains(&pid) {
            continue;
        }
        if state != Some("Z") {
            alive += 1;
        } else {
            let mut status = 0;
            // SAFETY: waitpid on a specific zombie child with WNOHANG and a valid pointer.
            unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        }
    }
    alive
}
