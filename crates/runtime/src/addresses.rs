//! Which instance has which address on the bridge: the metadata server identifies its
//! caller by the source address of the connection, so an instance gets only its own
//! identity. `Instance::start` records the address as soon as the instance's network is
//! attached (before any container starts, so a container calling the metadata server while
//! it starts up is already known) and its teardown forgets it, also after a failed start.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;

/// Instance ids by address, shared by a node's instances and whoever asks.
#[derive(Debug, Default)]
pub struct AddressBook {
    by_address: Mutex<HashMap<Ipv4Addr, String>>,
}

impl AddressBook {
    /// The id of the instance that holds `ip` now, if any.
    pub fn instance_at(&self, ip: Ipv4Addr) -> Option<String> {
        self.lock().get(&ip).cloned()
    }

    /// Records that `instance_id` holds `ip` (replacing whoever held it before). The runtime
    /// does this itself; it is public so that a metadata server can be tested without
    /// starting instances.
    pub fn insert(&self, ip: Ipv4Addr, instance_id: &str) {
        self.lock().insert(ip, instance_id.to_string());
    }

    /// Forgets `ip`, but only while `instance_id` holds it: an address released and leased
    /// again to another instance keeps that instance's entry.
    pub fn remove(&self, ip: Ipv4Addr, instance_id: &str) {
        let mut map = self.lock();
        if map.get(&ip).is_some_and(|holder| holder == instance_id) {
            map.remove(&ip);
        }
    }

    /// How many addresses are recorded.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Ipv4Addr, String>> {
        self.by_address.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_their_instance_until_it_forgets_them() {
        let book = AddressBook::default();
        let (a, b) = (Ipv4Addr::new(10, 88, 0, 2), Ipv4Addr::new(10, 88, 0, 3));
        assert_eq!(book.instance_at(a), None);
        assert!(book.is_empty());
        book.insert(a, "svc-1");
        book.insert(b, "svc-2");
        assert_eq!(book.instance_at(a).as_deref(), Some("svc-1"));
        assert_eq!(book.instance_at(b).as_deref(), Some("svc-2"));
        assert_eq!(book.len(), 2);
        book.remove(a, "svc-1");
        assert_eq!(book.instance_at(a), None);
        assert_eq!(book.instance_at(b).as_deref(), Some("svc-2"));
    }

    #[test]
    fn a_late_removal_spares_the_next_holder_of_the_address() {
        let book = AddressBook::default();
        let ip = Ipv4Addr::new(10, 88, 0, 9);
        book.insert(ip, "old");
        // The old instance's address was leased again before its teardown got here.
        book.insert(ip, "new");
        book.remove(ip, "old");
        assert_eq!(book.instance_at(ip).as_deref(), Some("new"));
        book.remove(ip, "new");
        assert!(book.is_empty());
    }
}
