//! After homerun was killed (kill -9, a crash, a power cut on a machine whose state survives):
//! whatever its instances left is removed before anything new starts. Instances are not
//! re-adopted: their init processes were children of the dead process (so their exit status
//! is lost) and their log pipes are gone, so the platform starts them afresh instead, as
//! Cloud Run replaces an instance whose host failed.

use std::path::{Path, PathBuf};

use crate::error::{IoContext, RuntimeError};
use crate::instance::Node;

/// What `recover` removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    pub containers: usize,
    pub mounts: usize,
    pub netns: usize,
}

/// Removes every container in the node's runtime state directory (killing what still runs),
/// every mount under its instance state directory, its instance directories, and the
/// namespaces, veths and address leases of its network. Run it before starting instances.
pub fn recover(node: &Node) -> Result<Recovered, RuntimeError> {
    let mut report = Recovered::default();
    for id in node.runtime.list()? {
        node.runtime.delete(&id, true)?;
        report.containers += 1;
    }
    let mounts = mounts_under(&node.state_dir)?;
    // Deepest first: an overlay root before the tmpfs holding its upper directory.
    for mount in mounts.iter().rev() {
        crate::container::unmount(mount)?;
        report.mounts += 1;
    }
    let entries = match std::fs::read_dir(&node.state_dir) {
        Ok(entries) => entries.collect::<Result<Vec<_>, _>>(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
    .context(|| format!("listing {}", node.state_dir.display()))?;
    for entry in entries {
        let path = entry.path();
        std::fs::remove_dir_all(&path).context(|| format!("removing {}", path.display()))?;
    }
    let net = node
        .network
        .recover(&[])
        .map_err(|e| RuntimeError::Invalid(format!("recovering the network: {e}")))?;
    report.netns = net.netns_removed;
    Ok(report)
}

/// Mount points at or below `dir`, in the order they were mounted (parents first).
fn mounts_under(dir: &Path) -> Result<Vec<PathBuf>, RuntimeError> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .context(|| "reading /proc/self/mountinfo".into())?;
    Ok(text
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
        .filter(|target| target.starts_with(dir))
        .collect())
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(super::unescape(r"/a\040b\134c"), r"/a b\c");
        assert_eq!(super::unescape(r"/plain"), "/plain");
        assert_eq!(super::unescape(r"/end\04"), r"/end\04");
    }
}
