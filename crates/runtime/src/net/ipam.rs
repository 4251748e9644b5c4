//! Address management. Leases live in `leases-<bridge>.json` under the state directory, a JSON
//! object from address to instance id, so that they survive a restart of homerun. Every
//! read-modify-write happens under an exclusive `flock` on `net-<bridge>.lock`, which
//! serialises threads (each takes the lock through its own open file description) as well as
//! processes; the file is replaced by writing a temporary file and renaming it over, so a
//! crash leaves either the old or the new leases, never half of them.
//!
//! Allocation takes the lowest free address. That keeps addresses small and predictable; the
//! cost, reusing an address right after it was released, is what the address-derived instance
//! MAC (see `names::instance_mac`) makes harmless for ARP caches.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::subnet::Subnet;
use super::NetError;

/// Address → instance id.
pub(crate) type Leases = BTreeMap<Ipv4Addr, String>;

#[derive(Debug)]
pub(crate) struct Ipam {
    leases_path: PathBuf,
    lock_path: PathBuf,
}

/// Holds the exclusive lock until dropped (closing the file releases the `flock`).
#[derive(Debug)]
pub(crate) struct StateLock {
    _file: File,
}

impl Ipam {
    pub(crate) fn new(state_dir: &Path, bridge: &str) -> Ipam {
        Ipam {
            leases_path: state_dir.join(format!("leases-{bridge}.json")),
            lock_path: state_dir.join(format!("net-{bridge}.lock")),
        }
    }

    /// Takes the bridge's exclusive lock, waiting for other holders. `setup` and `teardown`
    /// hold it too, so that two processes never configure the same bridge at once.
    pub(crate) fn lock(&self, step: &str) -> Result<StateLock, NetError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&self.lock_path)
            .map_err(|e| NetError::io(step, &self.lock_path, e))?;
        loop {
            // SAFETY: the descriptor belongs to `file`, which is open for the whole call.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(StateLock { _file: file });
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(NetError::io(step, &self.lock_path, err));
            }
        }
    }

    /// A snapshot of the leases.
    pub(crate) fn leases(&self, step: &str) -> Result<Leases, NetError> {
        let _lock = self.lock(step)?;
        self.read(step)
    }

    /// Leases the lowest free instance address of `subnet` to `instance_id`.
    pub(crate) fn allocate(
        &self,
        subnet: &Subnet,
        instance_id: &str,
    ) -> Result<Ipv4Addr, NetError> {
        self.update("allocating an address", |leases| {
            if let Some((address, _)) = leases.iter().find(|(_, id)| *id == instance_id) {
                return Err(NetError::AlreadyLeased {
                    instance_id: instance_id.to_string(),
                    address: *address,
                });
            }
            let address = subnet
                .instance_addresses()
                .find(|a| !leases.contains_key(a))
                .ok_or_else(|| NetError::Exhausted {
                    instance_id: instance_id.to_string(),
                    subnet: subnet.to_string(),
                    capacity: subnet.capacity(),
                })?;
            leases.insert(address, instance_id.to_string());
            Ok(address)
        })
    }

    /// Frees `address` if `instance_id` holds it; a lease that is gone or was handed to
    /// another instance is left alone (release is idempotent).
    pub(crate) fn free(&self, address: Ipv4Addr, instance_id: &str) -> Result<(), NetError> {
        self.update("freeing an address", |leases| {
            if leases.get(&address).is_some_and(|id| id == instance_id) {
                leases.remove(&address);
            }
            Ok(())
        })
    }

    /// Read-modify-write under the lock; writes only when `change` changed something.
    pub(crate) fn update<T>(
        &self,
        step: &str,
        change: impl FnOnce(&mut Leases) -> Result<T, NetError>,
    ) -> Result<T, NetError> {
        let _lock = self.lock(step)?;
        let before = self.read(step)?;
        let mut leases = before.clone();
        let result = change(&mut leases)?;
        if leases != before {
            self.write(step, &leases)?;
        }
        Ok(result)
    }

    fn read(&self, step: &str) -> Result<Leases, NetError> {
        let text = match fs::read_to_string(&self.leases_path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Leases::new()),
            Err(e) => return Err(NetError::io(step, &self.leases_path, e)),
        };
        serde_json::from_str(&text).map_err(|source| NetError::LeaseFile {
            step: step.to_string(),
            path: self.leases_path.clone(),
            source,
        })
    }

    fn write(&self, step: &str, leases: &Leases) -> Result<(), NetError> {
        // One fixed temporary name is enough: only the lock holder writes.
        let tmp = self.leases_path.with_extension("json.tmp");
        let mut json = serde_json::to_vec_pretty(leases).map_err(|source| NetError::LeaseFile {
            step: step.to_string(),
            path: self.leases_path.clone(),
            source,
        })?;
        json.push(b'\n');
        let write_tmp = || -> io::Result<()> {
            let mut file = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(&json)?;
            // Durable before it replaces the old file, or a power cut could leave it empty.
            file.sync_all()
        };
        write_tmp().map_err(|e| NetError::io(step, &tmp, e))?;
        fs::rename(&tmp, &self.leases_path).map_err(|e| NetError::io(step, &self.leases_path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_lowest_free_and_frees() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam::new(dir.path(), "br0");
        let subnet = Subnet::parse("10.9.0.0/29").unwrap();
        let a = ipam.allocate(&subnet, "a").unwrap();
        let b = ipam.allocate(&subnet, "b").unwrap();
        assert_eq!(
            (a, b),
            (Ipv4Addr::new(10, 9, 0, 2), Ipv4Addr::new(10, 9, 0, 3))
        );
        assert!(matches!(
            ipam.allocate(&subnet, "a"),
            Err(NetError::AlreadyLeased { .. })
        ));
        ipam.free(a, "b").unwrap(); // not b's: left alone
        assert_eq!(ipam.leases("t").unwrap().len(), 2);
        ipam.free(a, "a").unwrap();
        assert_eq!(ipam.allocate(&subnet, "c").unwrap(), a);
        let text = fs::read_to_string(dir.path().join("leases-br0.json")).unwrap();
        assert!(text.contains("\"10.9.0.2\": \"c\""), "{text}");
    }

    #[test]
    fn exhaustion_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam::new(dir.path(), "br0");
        let subnet = Subnet::parse("10.9.0.0/29").unwrap();
        for id in ["a", "b", "c", "d", "e"] {
            ipam.allocate(&subnet, id).unwrap();
        }
        let err = ipam.allocate(&subnet, "f").unwrap_err();
        assert!(err.to_string().contains("exhausted"), "{err}");
    }

    #[test]
    fn threads_never_share_an_address() {
        let dir = tempfile::tempdir().unwrap();
        let subnet = Subnet::parse("10.9.0.0/24").unwrap();
        let addresses: Vec<Ipv4Addr> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..32)
                .map(|i| {
                    let (dir, subnet) = (dir.path(), &subnet);
                    s.spawn(move || {
                        Ipam::new(dir, "br0")
                            .allocate(subnet, &format!("i{i}"))
                            .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let distinct: std::collections::BTreeSet<_> = addresses.iter().collect();
        assert_eq!(distinct.len(), 32);
        assert_eq!(Ipam::new(dir.path(), "br0").leases("t").unwrap().len(), 32);
    }
}
