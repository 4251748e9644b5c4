//! A container's cgroup, read and adjusted directly through cgroupfs, under cgroup v1
//! (including the "hybrid" layout: v1 controllers plus an empty v2 tree at
//! `/sys/fs/cgroup/unified`) and under pure cgroup v2.
//!
//! runc creates each container's cgroup at its `cgroupsPath` (`/homerun/<id>`) relative to the
//! mount point of every hierarchy. What the platform does per request (CPU boost and idle
//! throttling, freezing an idle instance, reading usage) is a write or read of one or two small
//! files there: microseconds, where a `runc update` or `runc pause` would fork and exec a
//! process each time.
//!
//! Which layout the host has is read from `/proc/self/mountinfo` ([`Layout::detect`]), never
//! guessed from paths: a v1 hierarchy is a `cgroup` mount whose super options name its
//! controllers (`rw,cpu,cpuacct` when co-mounted), v2 is the `cgroup2` mount. [`Cgroup`] then
//! puts both behind one interface, as youki's libcgroups does.
//!
//! The file names used, v1 / v2:
//!
//! | operation     | v1                                      | v2                              |
//! |---------------|-----------------------------------------|---------------------------------|
//! | CPU quota     | `cpu.cfs_period_us`, `cpu.cfs_quota_us` | `cpu.max`                       |
//! | freeze, thaw  | `freezer.state`                         | `cgroup.freeze`, `cgroup.events` |
//! | CPU time used | `cpuacct.usage` (ns)                    | `cpu.stat` `usage_usec`         |
//! | memory in use | `memory.usage_in_bytes`                 | `memory.current`                |
//! | OOM kills     | `memory.oom_control` `oom_kill`         | `memory.events` `oom_kill`      |
//! | processes     | `cgroup.procs`                          | `cgroup.procs`                  |

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use crate::bundle::CPU_PERIOD_US;
use crate::error::{IoContext, RuntimeError};

/// The smallest CFS quota the kernel accepts (1 ms; below it `cpu.cfs_quota_us` and `cpu.max`
/// answer EINVAL). [`Cgroup::set_cpu`] raises smaller quotas to this: 1 ms per 100 ms period
/// is 10 millicores, which is as near zero as Cloud Run's idle throttling can get.
pub const MIN_QUOTA_US: u64 = 1_000;

/// How long [`Cgroup::freeze`] and [`Cgroup::thaw`] wait for the kernel to report the new
/// state. Freezing a running cgroup completes in a few milliseconds; one throttled by its
/// CPU quota takes until its next quota (up to a period, 100 ms); a task stuck in an
/// uninterruptible sleep (a hung FUSE or NFS call) can hold it up indefinitely.
pub const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);

/// The v1 controllers the kernel has (`/proc/cgroups`); anything else in a v1 mount's super
/// options (`rw`, `xattr`, `noprefix`, `release_agent=…`, …) is a mount flag.
const V1_CONTROLLERS: &[&str] = &[
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "debug",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
];

/// The controllers homerun operates on; the host is treated as v1 when any of them is mounted
/// as a v1 hierarchy (a v2 host may still mount a stray v1 hierarchy such as `name=systemd`
/// or `net_cls`, which does not make it a v1 host).
const USED_CONTROLLERS: &[&str] = &["cpu", "cpuacct", "memory", "freezer", "pids"];

/// Where the host's cgroup hierarchies are mounted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// cgroup v1: one mount per hierarchy (the legacy and the hybrid layouts).
    V1 {
        /// The mount point of each controller's hierarchy: `cpu`, `cpuacct`, `memory`, …;
        /// named hierarchies as `name=systemd`. Co-mounted controllers (`cpu,cpuacct`) share
        /// one path.
        controllers: BTreeMap<String, PathBuf>,
        /// The v2 tree of a hybrid host (`/sys/fs/cgroup/unified`). It has no controllers
        /// homerun uses, but runc creates each container's cgroup there too.
        unified: Option<PathBuf>,
    },
    /// cgroup v2: one tree (normally `/sys/fs/cgroup`).
    V2 { root: PathBuf },
}

/// One mount from `/proc/self/mountinfo` that is a cgroup hierarchy.
struct CgroupMount {
    /// The mount's root within the hierarchy ("/" unless a subtree is bind-mounted).
    root: String,
    mount_point: PathBuf,
    /// None for cgroup2; the controllers (and `name=` names) for v1.
    v1: Option<Vec<String>>,
}

impl Layout {
    /// The host's layout, from `/proc/self/mountinfo`.
    pub fn detect() -> Result<Self, RuntimeError> {
        let file = "/proc/self/mountinfo";
        let text = std::fs::read_to_string(file).context(|| format!("reading {file}"))?;
        Self::from_mountinfo(&text).map_err(|e| RuntimeError::Invalid(format!("{file}: {e}")))
    }

    /// This host's layout, detected once per process (mounts of cgroup hierarchies do not
    /// change under a running platform); None where it cannot be read.
    pub fn host() -> Option<&'static Layout> {
        static HOST: std::sync::OnceLock<Option<Layout>> = std::sync::OnceLock::new();
        HOST.get_or_init(|| Layout::detect().ok()).as_ref()
    }

    /// The layout described by a mountinfo text (see proc(5)).
    pub fn from_mountinfo(text: &str) -> Result<Self, String> {
        let mounts: Vec<CgroupMount> = text.lines().filter_map(parse_mountinfo_line).collect();
        let mut controllers: BTreeMap<String, (PathBuf, bool)> = BTreeMap::new();
        let mut v2: Option<(PathBuf, bool)> = None;
        for m in &mounts {
            // The same hierarchy can be mounted more than once (bind mounts of a subtree
            // elsewhere); the mount of its root wins, then the first one listed.
            let at_root = m.root == "/";
            let better = |old: &Option<&(PathBuf, bool)>| match old {
                None => true,
                Some((_, old_at_root)) => at_root && !old_at_root,
            };
            match &m.v1 {
                Some(names) => {
                    for name in names {
                        if better(&controllers.get(name)) {
                            controllers.insert(name.clone(), (m.mount_point.clone(), at_root));
                        }
                    }
                }
                None => {
                    let canonical = m.mount_point == Path::new("/sys/fs/cgroup");
                    let replace = match &v2 {
                        None => true,
                        Some((old, old_at_root)) => {
                            old != Path::new("/sys/fs/cgroup")
                                && (canonical || (at_root && !old_at_root))
                        }
                    };
                    if replace {
                        v2 = Some((m.mount_point.clone(), at_root));
                    }
                }
            }
        }
        if USED_CONTROLLERS
            .iter()
            .any(|c| controllers.contains_key(*c))
        {
            return Ok(Layout::V1 {
                controllers: controllers
                    .into_iter()
                    .map(|(name, (path, _))| (name, path))
                    .collect(),
                unified: v2.map(|(path, _)| path),
            });
        }
        match v2 {
            Some((root, _)) => Ok(Layout::V2 { root }),
            None => Err("no cgroup hierarchy is mounted (neither cgroup2 nor a v1 \
                         hierarchy of cpu, cpuacct, memory, freezer or pids)"
                .into()),
        }
    }

    /// Where the hierarchy holding `controller` is mounted (`name=systemd` for a named v1
    /// hierarchy). On v2 that is the one root, whether or not the controller is enabled.
    pub fn mount_point(&self, controller: &str) -> Option<&Path> {
        match self {
            Layout::V1 { controllers, .. } => controllers.get(controller).map(PathBuf::as_path),
            Layout::V2 { root } => Some(root),
        }
    }

    /// Every hierarchy runc makes a container's cgroup in, each once, sorted: on v1 every
    /// mounted hierarchy (named ones included) and a hybrid host's v2 tree; on v2 the root.
    pub fn hierarchies(&self) -> Vec<&Path> {
        match self {
            Layout::V1 {
                controllers,
                unified,
            } => {
                let set: BTreeSet<&Path> = controllers
                    .values()
                    .chain(unified)
                    .map(PathBuf::as_path)
                    .collect();
                set.into_iter().collect()
            }
            Layout::V2 { root } => vec![root.as_path()],
        }
    }
}

/// A mountinfo line if it is a cgroup or cgroup2 mount:
/// `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPER_OPTIONS`.
fn parse_mountinfo_line(line: &str) -> Option<CgroupMount> {
    let fields: Vec<&str> = line.split(' ').collect();
    // The optional fields vary in number; " - " ends them.
    let sep = fields.iter().skip(6).position(|f| *f == "-")? + 6;
    let fstype = *fields.get(sep + 1)?;
    let root = unescape(fields.get(3)?).into_string().ok()?;
    let mount_point = PathBuf::from(unescape(fields.get(4)?));
    let v1 = match fstype {
        "cgroup2" => None,
        "cgroup" => {
            let super_options = fields.get(sep + 3).copied().unwrap_or("");
            Some(
                super_options
                    .split(',')
                    .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                    .map(str::to_string)
                    .collect(),
            )
        }
        _ => return None,
    };
    Some(CgroupMount {
        root,
        mount_point,
        v1,
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
pub(crate) fn unescape(field: &str) -> OsString {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| {
            bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)) && d[0] <= b'3'
        });
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    OsString::from_vec(out)
}

/// A cgroup path relative to each hierarchy's mount point: `/homerun/x` is `homerun/x`. Only
/// plain names: `..` would leave the hierarchy, and an empty path is the root cgroup, which
/// homerun must never freeze or throttle.
fn relative(cgroups_path: &str) -> Result<PathBuf, RuntimeError> {
    let mut rel = PathBuf::new();
    for (i, component) in Path::new(cgroups_path).components().enumerate() {
        match component {
            Component::RootDir if i == 0 => {}
            Component::Normal(name) => rel.push(name),
            _ => {
                return Err(RuntimeError::Invalid(format!(
                    "cgroup path {cgroups_path:?}: only plain names may follow the leading /"
                )))
            }
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(RuntimeError::Invalid(format!(
            "cgroup path {cgroups_path:?} is the root cgroup"
        )));
    }
    Ok(rel)
}

/// One container's cgroup: the host's layout and the container's `cgroupsPath`.
///
/// Every method is one or two reads or writes of cgroupfs files (freeze and thaw then poll
/// until the kernel reports the new state), so all are cheap enough for every request; they
/// block, briefly, so async code that cares may call them from `spawn_blocking`.
#[derive(Clone, Debug)]
pub struct Cgroup {
    layout: Layout,
    /// As given, for messages.
    path: String,
    /// Relative to each mount point; an error when the path was not acceptable.
    rel: Result<PathBuf, String>,
}

impl Cgroup {
    /// The cgroup at `cgroups_path` (`/homerun/<id>`, as in the container's `config.json`).
    /// A path with `..` or naming the root cgroup is refused by every operation.
    pub fn new(layout: &Layout, cgroups_path: &str) -> Self {
        Self {
            layout: layout.clone(),
            path: cgroups_path.to_string(),
            rel: relative(cgroups_path).map_err(|e| e.to_string()),
        }
    }

    /// The path given to [`Cgroup::new`].
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The cgroup's directory in every hierarchy (see [`Layout::hierarchies`]).
    pub fn dirs(&self) -> Vec<PathBuf> {
        match &self.rel {
            Ok(rel) => self
                .layout
                .hierarchies()
                .into_iter()
                .map(|h| h.join(rel))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The cgroup's directory in the hierarchy of `controller`.
    fn dir(&self, controller: &str) -> Result<PathBuf, RuntimeError> {
        let rel = self
            .rel
            .as_ref()
            .map_err(|e| RuntimeError::Invalid(e.clone()))?;
        let mount = self.layout.mount_point(controller).ok_or_else(|| {
            RuntimeError::Invalid(format!(
                "cgroup {}: the v1 `{controller}` controller is not mounted \
                 (/proc/self/mountinfo)",
                self.path
            ))
        })?;
        Ok(mount.join(rel))
    }

    fn is_v2(&self) -> bool {
        matches!(self.layout, Layout::V2 { .. })
    }

    /// Limits the cgroup to `millis` thousandths of a CPU: a CFS quota of `millis × 100` µs
    /// per 100 ms period (so 1000 is one full CPU, 2000 two). Quotas under [`MIN_QUOTA_US`]
    /// (`millis` < 10) are raised to it, the least the kernel accepts.
    pub fn set_cpu(&self, millis: u64) -> Result<(), RuntimeError> {
        let quota = quota_us(millis);
        if self.is_v2() {
            // One write sets both, atomically.
            let file = self.dir("cpu")?.join("cpu.max");
            return write_value(&file, &cpu_max_value(quota));
        }
        let dir = self.dir("cpu")?;
        let period_file = dir.join("cpu.cfs_period_us");
        let quota_file = dir.join("cpu.cfs_quota_us");
        let period = CPU_PERIOD_US.to_string();
        // The kernel checks each write against the other value already there (and against
        // the parent's limit): if the period cannot go first, the quota can (as runc does).
        match write_value(&period_file, &period) {
            Err(RuntimeError::Io { source, .. }) if source.raw_os_error() == Some(libc::EINVAL) => {
                write_value(&quota_file, &quota.to_string())?;
                write_value(&period_file, &period)
            }
            Err(e) => Err(e),
            Ok(()) => write_value(&quota_file, &quota.to_string()),
        }
    }

    /// The CPU limit in thousandths of a CPU, read back from the quota and period (rounded to
    /// the nearest; a clamped quota reads back as 10). A cgroup without a quota is an error:
    /// homerun always sets one.
    pub fn cpu_millis(&self) -> Result<u64, RuntimeError> {
        let dir = self.dir("cpu")?;
        let (file, quota, period) = if self.is_v2() {
            let file = dir.join("cpu.max");
            let text = read_value(&file)?;
            let (quota, period) = parse_cpu_max(&text).ok_or_else(|| unexpected(&file, &text))?;
            (file, quota, period)
        } else {
            let quota_file = dir.join("cpu.cfs_quota_us");
            let text = read_value(&quota_file)?;
            let quota: i64 = text
                .trim()
                .parse()
                .map_err(|_| unexpected(&quota_file, &text))?;
            let period_file = dir.join("cpu.cfs_period_us");
            let period = parse_u64(&period_file, &read_value(&period_file)?)?;
            // -1 is v1's "no limit".
            (quota_file, u64::try_from(quota).ok(), period)
        };
        match quota {
            Some(quota) if period > 0 => Ok(millis_of(quota, period)),
            _ => Err(RuntimeError::Invalid(format!(
                "{}: no CPU quota is set",
                file.display()
            ))),
        }
    }

    /// Stops every process of the cgroup, returning once the kernel reports it frozen (or
    /// failing after [`FREEZE_TIMEOUT`], having thawed it again so nothing stays half frozen).
    /// Frozen processes keep their memory but get no CPU time at all.
    ///
    /// A process stops only when it next runs, so a cgroup that has used up its CPU quota
    /// freezes only once the next period gives it CPU again: up to 100 ms later (measured
    /// 8-43 ms at 250 millis on a loaded 2-vCPU VM, against 0.2-5 ms unthrottled).
    pub fn freeze(&self) -> Result<(), RuntimeError> {
        let dir = self.dir("freezer")?;
        if self.is_v2() {
            let file = dir.join("cgroup.freeze");
            write_value(&file, "1")?;
            if !self.wait_v2_frozen(&dir, true)? {
                let _ = write_value(&file, "0");
                return Err(RuntimeError::Invalid(format!(
                    "{} not reporting `frozen 1` after {FREEZE_TIMEOUT:?}; thawed again",
                    dir.join("cgroup.events").display()
                )));
            }
            return Ok(());
        }
        let file = dir.join("freezer.state");
        write_value(&file, "FROZEN")?;
        let mut state = String::new();
        let frozen = poll(|attempt| {
            // A task that forks or enters a syscall at the wrong moment can keep the state at
            // FREEZING; writing FROZEN again makes the kernel try every task again (runc
            // does the same).
            if attempt % 20 == 19 {
                write_value(&file, "FROZEN")?;
            }
            state = read_value(&file)?.trim().to_string();
            Ok(state == "FROZEN")
        })?;
        if !frozen {
            let _ = write_value(&file, "THAWED");
            return Err(RuntimeError::Invalid(format!(
                "{} still {state} after {FREEZE_TIMEOUT:?}; thawed again",
                file.display()
            )));
        }
        Ok(())
    }

    /// Lets the cgroup's processes run again, returning once the kernel reports it thawed (a
    /// cgroup whose parent is frozen stays frozen: that is an error after [`FREEZE_TIMEOUT`]).
    pub fn thaw(&self) -> Result<(), RuntimeError> {
        let dir = self.dir("freezer")?;
        if self.is_v2() {
            write_value(&dir.join("cgroup.freeze"), "0")?;
            if !self.wait_v2_frozen(&dir, false)? {
                return Err(RuntimeError::Invalid(format!(
                    "{} still reporting `frozen 1` after {FREEZE_TIMEOUT:?}",
                    dir.join("cgroup.events").display()
                )));
            }
            return Ok(());
        }
        let file = dir.join("freezer.state");
        write_value(&file, "THAWED")?;
        let mut state = String::new();
        let thawed = poll(|_| {
            state = read_value(&file)?.trim().to_string();
            Ok(state == "THAWED")
        })?;
        if !thawed {
            return Err(RuntimeError::Invalid(format!(
                "{} still {state} after {FREEZE_TIMEOUT:?}",
                file.display()
            )));
        }
        Ok(())
    }

    /// Waits for v2's `cgroup.events` to say `frozen 1` (or `frozen 0`).
    fn wait_v2_frozen(&self, dir: &Path, frozen: bool) -> Result<bool, RuntimeError> {
        let file = dir.join("cgroup.events");
        let want = u64::from(frozen);
        poll(|_| {
            let text = read_value(&file)?;
            let value = keyed(&text, "frozen").ok_or_else(|| unexpected(&file, &text))?;
            Ok(value == want)
        })
    }

    /// CPU time used by the cgroup's processes (and those gone from it) since it was made.
    pub fn cpu_usage(&self) -> Result<Duration, RuntimeError> {
        if self.is_v2() {
            let file = self.dir("cpu")?.join("cpu.stat");
            let text = read_value(&file)?;
            let usec = keyed(&text, "usage_usec").ok_or_else(|| unexpected(&file, &text))?;
            return Ok(Duration::from_micros(usec));
        }
        let file = self.dir("cpuacct")?.join("cpuacct.usage");
        Ok(Duration::from_nanos(parse_u64(&file, &read_value(&file)?)?))
    }

    /// Memory charged to the cgroup, in bytes (page cache and kernel memory included).
    pub fn memory_current(&self) -> Result<u64, RuntimeError> {
        let name = if self.is_v2() {
            "memory.current"
        } else {
            "memory.usage_in_bytes"
        };
        let file = self.dir("memory")?.join(name);
        parse_u64(&file, &read_value(&file)?)
    }

    /// How many processes the memory cgroup's OOM killer has killed; 0 when the counter cannot
    /// be read (the cgroup is gone, or a v1 kernel older than 4.13 has no such line).
    pub fn oom_kills(&self) -> u64 {
        let name = if self.is_v2() {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        self.dir("memory")
            .ok()
            .and_then(|dir| std::fs::read_to_string(dir.join(name)).ok())
            .and_then(|text| keyed(&text, "oom_kill"))
            .unwrap_or(0)
    }

    /// The processes in the cgroup (thread group ids, from `cgroup.procs`).
    pub fn pids(&self) -> Result<Vec<i32>, RuntimeError> {
        // runc puts the container in every hierarchy; on v1 any controller's will do.
        let controller = ["pids", "memory", "cpu", "cpuacct", "freezer"]
            .into_iter()
            .find(|c| self.layout.mount_point(c).is_some())
            .unwrap_or("pids");
        let file = self.dir(controller)?.join("cgroup.procs");
        let text = read_value(&file)?;
        text.split_whitespace()
            .map(|pid| pid.parse().map_err(|_| unexpected(&file, &text)))
            .collect()
    }

    /// Whether the cgroup's directory exists in any of its hierarchies (one that is only
    /// partly removed still exists).
    pub fn exists(&self) -> bool {
        self.dirs().iter().any(|d| d.is_dir())
    }
}

/// Removes the leftover cgroups under `parent` (`homerun`) whose names are not in `keep`, in
/// every hierarchy: recovery after a crashed homerun, whose containers' cgroups outlive it.
/// Only empty cgroups go (rmdir, with their empty descendants first); one that still has
/// processes is left where it is, with a warning, and nothing is ever killed. Returns the
/// names that are now gone from every hierarchy after this call removed them somewhere,
/// sorted.
pub fn remove_stale(
    layout: &Layout,
    parent: &str,
    keep: &[String],
) -> Result<Vec<String>, RuntimeError> {
    let parent_rel = relative(parent)?;
    let mut removed = BTreeSet::new();
    let mut in_use = BTreeSet::new();
    for hierarchy in layout.hierarchies() {
        let dir = hierarchy.join(&parent_rel);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).context(|| format!("listing {}", dir.display())),
        };
        for entry in entries {
            let entry = entry.context(|| format!("listing {}", dir.display()))?;
            // A cgroup is a directory; the rest are the parent's control files.
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if keep.contains(&name) {
                continue;
            }
            if remove_empty_tree(&entry.path())? {
                removed.insert(name);
            } else {
                tracing::warn!(
                    "cgroup {} still has processes: left in place",
                    entry.path().display()
                );
                in_use.insert(name);
            }
        }
    }
    Ok(removed.difference(&in_use).cloned().collect())
}

/// rmdir of a cgroup after its child cgroups, deepest first. False when some part of it is
/// still in use (EBUSY: a process in it, or a child cgroup that is).
fn remove_empty_tree(dir: &Path) -> Result<bool, RuntimeError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        // Removed meanwhile (by runc, or another homerun's recovery).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e).context(|| format!("listing {}", dir.display())),
    };
    let mut empty = true;
    for entry in entries {
        let entry = entry.context(|| format!("listing {}", dir.display()))?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            empty &= remove_empty_tree(&entry.path())?;
        }
    }
    if !empty {
        return Ok(false);
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(false),
        Err(e) => Err(e).context(|| format!("removing cgroup {}", dir.display())),
    }
}

/// Calls `check(attempt)` until it says done, sleeping a little longer each time (50 µs up to
/// 1 ms: a throttled cgroup takes tens of milliseconds, and polling late adds to that), for
/// at most [`FREEZE_TIMEOUT`]. False on timeout.
fn poll(mut check: impl FnMut(u32) -> Result<bool, RuntimeError>) -> Result<bool, RuntimeError> {
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    let mut pause = Duration::from_micros(50);
    let mut attempt = 0;
    loop {
        if check(attempt)? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(1));
        attempt += 1;
    }
}

/// Writes a control file in one write(2), as cgroupfs wants, without creating or truncating.
fn write_value(file: &Path, value: &str) -> Result<(), RuntimeError> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(file)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .context(|| format!("writing {value:?} to {}", file.display()))
}

fn read_value(file: &Path) -> Result<String, RuntimeError> {
    std::fs::read_to_string(file).context(|| format!("reading {}", file.display()))
}

fn unexpected(file: &Path, text: &str) -> RuntimeError {
    RuntimeError::Invalid(format!(
        "{}: unexpected content {:?}",
        file.display(),
        text.trim_end()
    ))
}

fn parse_u64(file: &Path, text: &str) -> Result<u64, RuntimeError> {
    text.trim().parse().map_err(|_| unexpected(file, text))
}

/// The value of `key` in a flat keyed file (`KEY VALUE` lines: cpu.stat, memory.events,
/// cgroup.events, memory.oom_control).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// The CFS quota for `millis` thousandths of a CPU per [`CPU_PERIOD_US`], at least
/// [`MIN_QUOTA_US`].
fn quota_us(millis: u64) -> u64 {
    (millis.saturating_mul(CPU_PERIOD_US) / 1000).max(MIN_QUOTA_US)
}

/// v2's `cpu.max` line: `QUOTA PERIOD`.
fn cpu_max_value(quota_us: u64) -> String {
    format!("{quota_us} {CPU_PERIOD_US}")
}

/// v2's `cpu.max` read back: (quota, None for `max`; period).
fn parse_cpu_max(text: &str) -> Option<(Option<u64>, u64)> {
    let mut words = text.split_whitespace();
    let quota = match words.next()? {
        "max" => None,
        n => Some(n.parse().ok()?),
    };
    let period = words.next()?.parse().ok()?;
    words.next().is_none().then_some((quota, period))
}

/// A quota over a period in thousandths of a CPU, rounded to the nearest.
fn millis_of(quota_us: u64, period_us: u64) -> u64 {
    let millis = (u128::from(quota_us) * 1000 + u128::from(period_us) / 2) / u128::from(period_us);
    u64::try_from(millis).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Debian 12 host booted with `systemd.unified_cgroup_hierarchy=0`: v1 controllers,
    /// `cpu,cpuacct` and `net_cls,net_prio` co-mounted (with symlinks, which mountinfo does not
    /// list), the `name=systemd` hierarchy and the v2 tree at `unified`.
    const HYBRID: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
25 23 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
37 25 0:29 /docker /mnt/cpu\\040copy rw,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
27 25 0:25 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
31 25 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
32 25 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
33 25 0:31 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,freezer
34 25 0:32 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,pids
35 25 0:33 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:19 - cgroup cgroup rw,net_cls,net_prio
36 25 0:34 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:20 - cgroup cgroup rw,cpuset,clone_children
";

    /// Debian 12's default: cgroup2 alone at /sys/fs/cgroup.
    const PURE_V2: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 23 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
40 23 0:24 /system.slice /mnt/sub rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn hybrid_layout_from_mountinfo() {
        let layout = Layout::from_mountinfo(HYBRID).unwrap();
        let cpu = Path::new("/sys/fs/cgroup/cpu,cpuacct");
        assert_eq!(layout.mount_point("cpu"), Some(cpu));
        // The mount of the hierarchy's root wins over a bind-mounted subtree listed later.
        assert_eq!(layout.mount_point("cpuacct"), Some(cpu));
        assert_eq!(
            layout.mount_point("memory"),
            Some(Path::new("/sys/fs/cgroup/memory"))
        );
        assert_eq!(
            layout.mount_point("name=systemd"),
            Some(Path::new("/sys/fs/cgroup/systemd"))
        );
        // Mount flags are not controllers.
        assert_eq!(layout.mount_point("xattr"), None);
        assert_eq!(layout.mount_point("clone_children"), None);
        assert_eq!(layout.mount_point("blkio"), None);
        let Layout::V1 { unified, .. } = &layout else {
            panic!("not v1: {layout:?}")
        };
        assert_eq!(
            unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        let hierarchies: Vec<&str> = layout
            .hierarchies()
            .iter()
            .map(|p| p.to_str().unwrap())
            .collect();
        assert_eq!(
            hierarchies,
            [
                "/sys/fs/cgroup/cpu,cpuacct",
                "/sys/fs/cgroup/cpuset",
                "/sys/fs/cgroup/freezer",
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/net_cls,net_prio",
                "/sys/fs/cgroup/pids",
                "/sys/fs/cgroup/systemd",
                "/sys/fs/cgroup/unified",
            ]
        );

        let cg = Cgroup::new(&layout, "/homerun/abc");
        assert_eq!(
            cg.dir("cpuacct").unwrap(),
            Path::new("/sys/fs/cgroup/cpu,cpuacct/homerun/abc")
        );
        assert_eq!(cg.dirs().len(), 8);
    }

    #[test]
    fn this_hosts_separate_cpu_and_cpuacct_mounts() {
        // What the machine homerun was written on has: no co-mounting, no systemd.
        let text = "\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        let layout = Layout::from_mountinfo(text).unwrap();
        assert_eq!(
            layout.mount_point("cpuacct"),
            Some(Path::new("/sys/fs/cgroup/cpuacct"))
        );
        assert_eq!(layout.mount_point("memory"), None);
        let err = Cgroup::new(&layout, "/homerun/x")
            .memory_current()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("`memory` controller is not mounted"),
            "{err}"
        );
    }

    #[test]
    fn pure_v2_layout_from_mountinfo() {
        let layout = Layout::from_mountinfo(PURE_V2).unwrap();
        assert_eq!(
            layout,
            Layout::V2 {
                root: "/sys/fs/cgroup".into()
            }
        );
        assert_eq!(layout.hierarchies(), [Path::new("/sys/fs/cgroup")]);
        let cg = Cgroup::new(&layout, "/homerun/abc");
        assert_eq!(cg.dirs(), [PathBuf::from("/sys/fs/cgroup/homerun/abc")]);
    }

    #[test]
    fn v2_host_with_a_stray_v1_hierarchy_is_v2() {
        let text = format!(
            "{PURE_V2}50 26 0:50 / /run/compat rw - cgroup cgroup rw,xattr,name=systemd\n\
             51 26 0:51 / /run/net_cls rw - cgroup cgroup rw,net_cls\n"
        );
        assert!(matches!(
            Layout::from_mountinfo(&text).unwrap(),
            Layout::V2 { .. }
        ));
    }

    #[test]
    fn no_cgroups_mounted() {
        let text = "22 27 0:21 / /proc rw,relatime - proc proc rw\n";
        let err = Layout::from_mountinfo(text).unwrap_err();
        assert!(err.contains("no cgroup hierarchy"), "{err}");
        assert!(Layout::from_mountinfo("").is_err());
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape(r"/mnt/a\040b\011c\134d"), "/mnt/a b\tc\\d");
        // Not an escape: left as it is.
        assert_eq!(unescape(r"/mnt/x\9y\"), r"/mnt/x\9y\");
        let line = r"37 25 0:29 / /mnt/my\040cgroup rw shared:1 master:2 - cgroup cgroup rw,memory";
        let m = parse_mountinfo_line(line).unwrap();
        assert_eq!(m.mount_point, Path::new("/mnt/my cgroup"));
        assert_eq!(m.v1, Some(vec!["memory".to_string()]));
    }

    #[test]
    fn cgroup_paths() {
        assert_eq!(relative("/homerun/x").unwrap(), Path::new("homerun/x"));
        assert_eq!(relative("homerun/x").unwrap(), Path::new("homerun/x"));
        for bad in ["/", "", "/homerun/../..", "../x", "//"] {
            assert!(relative(bad).is_err(), "{bad:?}");
        }
        let layout = Layout::from_mountinfo(PURE_V2).unwrap();
        let cg = Cgroup::new(&layout, "/../etc");
        assert!(!cg.exists());
        assert_eq!(cg.oom_kills(), 0);
        assert!(cg.dirs().is_empty());
        let err = cg.freeze().unwrap_err().to_string();
        assert!(err.contains("only plain names"), "{err}");
    }

    #[test]
    fn cpu_values() {
        assert_eq!(quota_us(250), 25_000);
        assert_eq!(quota_us(1000), 100_000);
        assert_eq!(quota_us(4000), 400_000);
        // Below the kernel's 1 ms minimum.
        assert_eq!(quota_us(9), MIN_QUOTA_US);
        assert_eq!(quota_us(0), MIN_QUOTA_US);
        assert_eq!(quota_us(u64::MAX), u64::MAX / 1000);
        assert_eq!(cpu_max_value(25_000), "25000 100000");
        assert_eq!(
            parse_cpu_max("25000 100000\n"),
            Some((Some(25_000), 100_000))
        );
        assert_eq!(parse_cpu_max("max 100000\n"), Some((None, 100_000)));
        assert_eq!(parse_cpu_max("25000"), None);
        assert_eq!(parse_cpu_max("25000 100000 7"), None);
        assert_eq!(millis_of(25_000, 100_000), 250);
        assert_eq!(millis_of(MIN_QUOTA_US, 100_000), 10);
        assert_eq!(millis_of(50_000, 200_000), 250);
        assert_eq!(millis_of(1, 3), 333);
        for millis in [10, 250, 1000, 2500, 80_000] {
            assert_eq!(millis_of(quota_us(millis), CPU_PERIOD_US), millis);
        }
    }

    #[test]
    fn keyed_files() {
        let oom_control = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed(oom_control, "oom_kill"), Some(3));
        let events = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(keyed(events, "oom_kill"), Some(2));
        assert_eq!(keyed("populated 1\nfrozen 1\n", "frozen"), Some(1));
        let stat = "usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\n";
        assert_eq!(keyed(stat, "usage_usec"), Some(1_234_567));
        assert_eq!(keyed(stat, "nr_throttled"), None);
    }
}
