//! Names and MAC addresses derived from bridge names, instance ids and addresses. Everything
//! here is a pure function of its input so that a restarted homerun finds what an earlier one
//! created.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::NetError;

/// Linux interface names are at most IFNAMSIZ - 1 bytes.
pub(crate) const MAX_IFNAME: usize = 15;
/// Instance ids become part of namespace names; "short" is a promise of the caller, this is
/// only the bound past which an id is surely a mistake.
pub(crate) const MAX_INSTANCE_ID: usize = 64;

pub(crate) const NETNS_PREFIX: &str = "hr-";
pub(crate) const VETH_PREFIX: &str = "hrv";
/// Where `ip netns` keeps its bind mounts (`/var/run` is `/run` on current distributions).
pub(crate) const NETNS_DIR: &str = "/var/run/netns";

pub(crate) fn validate_bridge_name(name: &str) -> Result<(), NetError> {
    let invalid = |why: &str| NetError::InvalidConfig(format!("bridge name {name:?}: {why}"));
    if name.is_empty() {
        return Err(invalid("is empty"));
    }
    if name.len() > MAX_IFNAME {
        return Err(invalid(&format!(
            "is {} characters; Linux interface names have at most {MAX_IFNAME}",
            name.len()
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(invalid(
            "may contain only ASCII letters, digits, '-', '_' and '.'",
        ));
    }
    // A leading '-' would read as an option to `ip`; "." and ".." are refused by the kernel.
    if name.starts_with('-') || name == "." || name == ".." {
        return Err(invalid("is not a usable interface name"));
    }
    Ok(())
}

pub(crate) fn validate_instance_id(id: &str) -> Result<(), NetError> {
    let invalid = |reason: String| NetError::InvalidInstanceId {
        id: id.to_string(),
        reason,
    };
    if id.is_empty() {
        return Err(invalid("is empty".into()));
    }
    if id.len() > MAX_INSTANCE_ID {
        return Err(invalid(format!(
            "is longer than {MAX_INSTANCE_ID} characters"
        )));
    }
    // Hyphens as in container ids (`svc-00001-abc-x1y2`), but not first: `ip` would read
    // a leading one as an option.
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') || id.starts_with('-') {
        return Err(invalid(
            "may contain only ASCII letters, digits and '-', and may not start with '-'".into(),
        ));
    }
    Ok(())
}

pub(crate) fn netns_name(instance_id: &str) -> String {
    format!("{NETNS_PREFIX}{instance_id}")
}

pub(crate) fn netns_path(netns: &str) -> PathBuf {
    PathBuf::from(NETNS_DIR).join(netns)
}

/// The instance id of a namespace homerun named, if it is one.
pub(crate) fn instance_of_netns(netns: &str) -> Option<&str> {
    netns
        .strip_prefix(NETNS_PREFIX)
        .filter(|id| validate_instance_id(id).is_ok())
}

/// `hrv` and 8 hex digits of a hash of the id: ids may be longer than the 12 characters an
/// interface name has left, and a fixed width keeps names uniform. A collision (1 in 2^32
/// per pair) makes `attach` fail with "File exists" rather than share an interface.
pub(crate) fn host_veth_name(instance_id: &str) -> String {
    format!("{VETH_PREFIX}{:08x}", fnv1a(instance_id.as_bytes()) as u32)
}

/// The bridge's MAC address. Left alone, a Linux bridge takes the lowest MAC of its ports and
/// changes it whenever ports come and go; instances then hold a stale ARP entry for the
/// gateway. A fixed, locally administered (0x02) unicast address derived from the name stays
/// the same across restarts and hosts.
pub(crate) fn bridge_mac(bridge: &str) -> String {
    let hash = fnv1a(bridge.as_bytes()).to_be_bytes();
    format_mac([0x02, hash[0], hash[1], hash[2], hash[3], hash[4]])
}

/// An instance's MAC address, derived from its IP address as the CNI bridge plugin does
/// (0a:58 followed by the four octets): when an address is reused, the gateway's and other
/// instances' ARP entries for it are still right. 0x0a is locally administered unicast and
/// never collides with `bridge_mac`, which starts with 0x02.
pub(crate) fn instance_mac(address: Ipv4Addr) -> String {
    let [a, b, c, d] = address.octets();
    format_mac([0x0a, 0x58, a, b, c, d])
}

fn format_mac(bytes: [u8; 6]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// FNV-1a, 64 bits: tiny, stable across Rust versions (unlike `DefaultHasher`), good enough
/// to spread names.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_names() {
        for good in ["hr0", "homerun0", "br-a.b_c", "abcdefghijklmno"] {
            validate_bridge_name(good).unwrap();
        }
        for bad in ["", "abcdefghijklmnop", "-br", "br 0", "br/0", "..", "bré"] {
            assert!(validate_bridge_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn instance_ids() {
        validate_instance_id("1a2b3c4d").unwrap();
        validate_instance_id("A9").unwrap();
        validate_instance_id("svc-00001-abc-x").unwrap();
        for bad in ["", "-ab", "a_b", "a/b", "../x", "a b", &"x".repeat(65)] {
            assert!(validate_instance_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn derived_names_are_stable_and_fit() {
        let veth = host_veth_name("1a2b3c4d");
        assert_eq!(veth, host_veth_name("1a2b3c4d"));
        assert_ne!(veth, host_veth_name("1a2b3c4e"));
        assert_eq!(veth.len(), 11);
        assert!(host_veth_name(&"z".repeat(64)).len() <= MAX_IFNAME);
        assert_eq!(netns_name("abc"), "hr-abc");
        assert_eq!(instance_of_netns("hr-abc"), Some("abc"));
        assert_eq!(instance_of_netns("hr-"), None);
        assert_eq!(instance_of_netns("other"), None);
    }

    #[test]
    fn macs() {
        let mac = bridge_mac("homerun0");
        assert_eq!(mac, bridge_mac("homerun0"));
        assert_ne!(mac, bridge_mac("homerun1"));
        assert!(mac.starts_with("02:"), "{mac}");
        assert_eq!(mac.len(), 17);
        assert_eq!(
            instance_mac(Ipv4Addr::new(10, 88, 0, 2)),
            "0a:58:0a:58:00:02"
        );
    }
}
