//! After homerun was killed (kill -9, a crash, a power cut on a machine whose state survives):
//! whatever its instances left is removed before anything new starts. Instances are not
//! re-adopted: their init processes were children of the dead process (so their exit status
//! is lost) and their log pipes are gone, so the platform starts them afresh instead, as
//! Cloud Run replaces an instance whose host failed.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use crate::cgroup::{Cgroup, Layout};
use crate::error::{IoContext, RuntimeError};
use crate::instance::Node;

/// The cgroup every container's cgroup is made under: its `cgroupsPath` is
/// `/homerun/<container id>` (see `container.rs`).
const CGROUP_PARENT: &str = "homerun";

/// What `recover` removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Containers deleted from the OCI runtime's state (killed first if they still ran).
    pub containers: usize,
    /// Mounts detached below the state directory.
    pub mounts: usize,
    /// Network namespaces of the node's network removed.
    pub netns: usize,
    /// Leftover container cgroups of the state directory's instances removed (from every
    /// hierarchy); `runc delete` normally removes them itself, so this is usually 0.
    pub cgroups: usize,
}

/// Removes every container in the node's runtime state directory (killing what still runs),
/// the leftover cgroups of the instances in its state directory, every mount below that
/// directory, its instance directories, and the namespaces, veths and address leases of its
/// network. Run it before starting instances.
///
/// Every step is tried even when an earlier one failed (one stuck container must not leave
/// the rest behind); the failures are then returned together, each naming what it concerns,
/// in one `RuntimeError::Invalid` that also gives what was removed.
pub fn recover(node: &Node) -> Result<Recovered, RuntimeError> {
    let mut report = Recovered::default();
    let mut failures = Vec::new();

    // mountinfo lists resolved paths: a state directory given through a symlink or a relative
    // path would match none of its mounts.
    let state_dir = match std::fs::canonicalize(&node.state_dir) {
        Ok(dir) if dir.parent().is_none() => {
            // Everything is below `/`: unmounting and removing it all would wreck the host.
            failures.push(format!(
                "state directory {}: is the root directory; its mounts and entries were left \
                 alone",
                node.state_dir.display()
            ));
            None
        }
        Ok(dir) => Some(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            failures.push(format!("state directory {}: {e}", node.state_dir.display()));
            None
        }
    };
    // Listed before anything is removed: the instance directories' names pick the cgroups
    // that are this node's to sweep.
    let entries = match &state_dir {
        Some(dir) => match list_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                failures.push(e.to_string());
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let instance_ids: HashSet<String> = entries
        .iter()
        .filter(|(_, is_dir)| *is_dir)
        .filter_map(|(path, _)| path.file_name()?.to_str())
        .filter(|name| is_instance_id(name))
        .map(str::to_string)
        .collect();

    match node.runtime.list() {
        Ok(ids) => {
            for id in ids {
                match node.runtime.delete(&id, true) {
                    Ok(()) => report.containers += 1,
                    Err(e) => failures.push(format!("container {id}: {e}")),
                }
            }
        }
        Err(e) => failures.push(format!("listing the runtime's containers: {e}")),
    }

    // After the deletes, which normally remove the cgroups themselves: what is left was
    // orphaned (runc's state lost, or a delete that failed half-way).
    match sweep_cgroups(&node.cgroups, &instance_ids) {
        Ok((removed, in_use)) => {
            report.cgroups = removed;
            failures.extend(
                in_use
                    .into_iter()
                    .map(|name| format!("cgroup /{CGROUP_PARENT}/{name}: still has processes")),
            );
        }
        Err(e) => failures.push(format!("cgroups under /{CGROUP_PARENT}: {e}")),
    }

    if let Some(dir) = &state_dir {
        match mounts_under(dir) {
            // Reverse mount order, so deepest first: an overlay root before the tmpfs holding
            // its upper directory (a sibling path, so path depth would not tell).
            Ok(mounts) => {
                for mount in mounts.iter().rev() {
                    match crate::container::unmount(mount) {
                        Ok(()) => report.mounts += 1,
                        // The error names the mount point.
                        Err(e) => failures.push(e.to_string()),
                    }
                }
            }
            Err(e) => failures.push(e.to_string()),
        }
        // remove_dir_all crosses mount points: an entry with a mount still below it (a failed
        // unmount) would have whatever is mounted there deleted, so it stays.
        match mounts_under(dir) {
            Ok(remaining) => {
                for (path, is_dir) in &entries {
                    if let Some(mount) = remaining.iter().find(|m| m.starts_with(path)) {
                        failures.push(format!(
                            "{}: left in place, {} is still mounted",
                            path.display(),
                            mount.display()
                        ));
                        continue;
                    }
                    let removed = if *is_dir {
                        std::fs::remove_dir_all(path)
                    } else {
                        std::fs::remove_file(path)
                    };
                    match removed {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => failures.push(format!("removing {}: {e}", path.display())),
                    }
                }
            }
            Err(e) => failures.push(format!(
                "{e}; the state directory's entries were left in place"
            )),
        }
    }

    match node.network.recover(&[]) {
        Ok(net) => report.netns = net.netns_removed,
        Err(e) => failures.push(format!("recovering the network: {e}")),
    }
    outcome(report, failures)
}

/// The report, or one error listing every failure (and what was removed regardless).
fn outcome(report: Recovered, failures: Vec<String>) -> Result<Recovered, RuntimeError> {
    if failures.is_empty() {
        return Ok(report);
    }
    Err(RuntimeError::Invalid(format!(
        "crash recovery failed {} time(s) (it removed {} container(s), {} cgroup(s), {} mount(s) \
         and {} network namespace(s) regardless): {}",
        failures.len(),
        report.containers,
        report.cgroups,
        report.mounts,
        report.netns,
        failures.join("; ")
    )))
}

/// The entries of `dir` as (path, whether it is a directory, not following symlinks).
fn list_dir(dir: &Path) -> Result<Vec<(PathBuf, bool)>, RuntimeError> {
    let what = || format!("listing {}", dir.display());
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).context(what)? {
        let entry = entry.context(what)?;
        let is_dir = entry.file_type().context(what)?.is_dir();
        entries.push((entry.path(), is_dir));
    }
    Ok(entries)
}

/// An instance id's characters (`instance::validate`): anything else in the state directory
/// is not an instance and names no cgroup.
fn is_instance_id(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Removes the empty cgroups under `/homerun` of the containers of `instance_ids`, leaving
/// every other one (another homerun's, with another state directory, may share the parent).
/// Returns how many were removed and the names of those still in use.
fn sweep_cgroups(
    layout: &Layout,
    instance_ids: &HashSet<String>,
) -> Result<(usize, Vec<String>), RuntimeError> {
    if instance_ids.is_empty() {
        return Ok((0, Vec::new()));
    }
    let mut children = BTreeSet::new();
    for dir in Cgroup::new(layout, &format!("/{CGROUP_PARENT}")).dirs() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            // A hierarchy not listed could hold a cgroup that is not stale, which remove_stale
            // would not know to keep: nothing is swept.
            Err(e) => return Err(e).context(|| format!("listing {}", dir.display())),
        };
        for entry in entries {
            let entry = entry.context(|| format!("listing {}", dir.display()))?;
            // A cgroup is a directory; the rest are the parent's control files.
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                children.insert(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    let (stale, keep) = stale_cgroups(children, instance_ids);
    if stale.is_empty() {
        // remove_stale removes all but `keep`: not calling it spares a cgroup created since
        // the listing.
        return Ok((0, Vec::new()));
    }
    let removed = crate::cgroup::remove_stale(layout, CGROUP_PARENT, &keep)?;
    // remove_stale only warns about a cgroup with processes left in it.
    let in_use = stale
        .into_iter()
        .filter(|name| !removed.contains(name))
        .filter(|name| Cgroup::new(layout, &format!("/{CGROUP_PARENT}/{name}")).exists())
        .collect();
    Ok((removed.len(), in_use))
}

/// Splits cgroup names into those of the containers of `instance_ids` (stale) and the rest
/// (to keep).
fn stale_cgroups(
    names: impl IntoIterator<Item = String>,
    instance_ids: &HashSet<String>,
) -> (Vec<String>, Vec<String>) {
    names
        .into_iter()
        .partition(|name| instance_of_cgroup(name).is_some_and(|id| instance_ids.contains(id)))
}

/// The instance id of a container cgroup's name, `<instance id>-<index>[r<restart>]`. The
/// suffix has no `-`, so the last `-` splits the name: instance `a`'s pattern cannot match
/// the cgroups of an instance `a-0` (`a-0-0`), as a plain prefix match would.
fn instance_of_cgroup(name: &str) -> Option<&str> {
    let (id, suffix) = name.rsplit_once('-')?;
    let (index, restart) = match suffix.split_once('r') {
        Some((index, restart)) => (index, Some(restart)),
        None => (suffix, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    // Not Option::is_none_or: it is newer than the workspace's rust-version (1.80).
    let restart_ok = match restart {
        Some(restart) => digits(restart),
        None => true,
    };
    (!id.is_empty() && digits(index) && restart_ok).then_some(id)
}

/// Mount points strictly below `dir` (a canonical path), in the order they were mounted
/// (parents first).
fn mounts_under(dir: &Path) -> Result<Vec<PathBuf>, RuntimeError> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .context(|| "reading /proc/self/mountinfo".into())?;
    Ok(mounts_below(&text, dir))
}

/// The mount points of a mountinfo text strictly below `dir`: never `dir` itself, which may
/// be a mount the host set up for homerun.
fn mounts_below(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(crate::cgroup::unescape(field)))
        .filter(|target| target.starts_with(dir) && target != dir)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::{Path, PathBuf};

    use super::Recovered;

    #[test]
    fn mountinfo_escapes_are_undone() {
        use crate::cgroup::unescape;
        assert_eq!(unescape(r"/a\040b\134c"), r"/a b\c");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/end\04"), r"/end\04");
    }

    #[test]
    fn only_mounts_strictly_below_the_directory() {
        let mountinfo = "\
22 1 0:21 / /proc rw,relatime - proc proc rw
60 1 0:50 / /var/lib/homerun rw - tmpfs tmpfs rw
61 60 0:51 / /var/lib/homerun/i1/containers/i1-0/rw rw - tmpfs tmpfs rw
62 60 0:52 / /var/lib/homerun/i1/containers/i1-0/rootfs rw - overlay overlay rw,lowerdir=/x
63 60 0:53 / /var/lib/homerun/i1/volumes/my\\040vol rw - tmpfs tmpfs rw
64 1 0:54 / /var/lib/homerun-old/i2/rw rw - tmpfs tmpfs rw
65 1 0:55 / /var/lib rw - ext4 /dev/sda1 rw
";
        let mounts = super::mounts_below(mountinfo, Path::new("/var/lib/homerun"));
        assert_eq!(
            mounts,
            [
                "/var/lib/homerun/i1/containers/i1-0/rw",
                "/var/lib/homerun/i1/containers/i1-0/rootfs",
                "/var/lib/homerun/i1/volumes/my vol",
            ]
            .map(PathBuf::from)
        );
        assert!(super::mounts_below(mountinfo, Path::new("/nowhere")).is_empty());
    }

    #[test]
    fn container_cgroup_names() {
        use super::instance_of_cgroup;
        assert_eq!(instance_of_cgroup("abc-0"), Some("abc"));
        assert_eq!(instance_of_cgroup("abc-12r3"), Some("abc"));
        assert_eq!(
            instance_of_cgroup("svc-00001-abc-1r10"),
            Some("svc-00001-abc")
        );
        for not_ours in [
            "abc",
            "abc-",
            "-0",
            "abc-x",
            "abc-0r",
            "abc-r1",
            "abc-0r1r2",
            "abc-0-",
        ] {
            assert_eq!(instance_of_cgroup(not_ours), None, "{not_ours:?}");
        }
    }

    #[test]
    fn stale_cgroups_are_those_of_the_state_directorys_instances() {
        let ids: HashSet<String> = ["a", "svc-1"].map(String::from).into();
        let names = [
            "a-0", "a-1r2", "a-0-0", "ab-0", "b-0", "svc-1-0", "svc-0", "a",
        ];
        let (stale, keep) = super::stale_cgroups(names.map(String::from), &ids);
        assert_eq!(stale, ["a-0", "a-1r2", "svc-1-0"]);
        // `a-0-0` belongs to an instance `a-0`, not to `a`.
        assert_eq!(keep, ["a-0-0", "ab-0", "b-0", "svc-0", "a"]);
        let (stale, keep) = super::stale_cgroups(names.map(String::from), &HashSet::new());
        assert!(stale.is_empty());
        assert_eq!(keep.len(), names.len());
    }

    #[test]
    fn instance_ids_in_the_state_directory() {
        assert!(super::is_instance_id("svc-00001-abc"));
        for not_an_id in ["", "lost+found", "Upper", ".tmp", "a b"] {
            assert!(!super::is_instance_id(not_an_id), "{not_an_id:?}");
        }
    }

    #[test]
    fn every_failure_is_reported_with_the_counts() {
        let report = Recovered {
            containers: 2,
            mounts: 4,
            netns: 1,
            cgroups: 0,
        };
        assert_eq!(super::outcome(report.clone(), Vec::new()).unwrap(), report);
        let failures = vec![
            "container a-0: runc delete failed".to_string(),
            "mount /s/a/rw: busy".to_string(),
        ];
        let err = super::outcome(report, failures).unwrap_err().to_string();
        assert!(err.contains("failed 2 time(s)"), "{err}");
        assert!(
            err.contains("2 container(s), 0 cgroup(s), 4 mount(s)"),
            "{err}"
        );
        assert!(
            err.contains("container a-0: runc delete failed; mount /s/a/rw: busy"),
            "{err}"
        );
    }
}
