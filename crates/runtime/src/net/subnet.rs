//! IPv4 subnets in CIDR notation and the addresses inside them.

use std::fmt;
use std::net::Ipv4Addr;

use super::NetError;

/// Smallest and largest accepted prefix: a /8 is already 16 million instances, and a /30 is
/// the smallest subnet with room for a gateway and one instance.
pub(crate) const MIN_PREFIX: u8 = 8;
pub(crate) const MAX_PREFIX: u8 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    pub(crate) fn parse(text: &str) -> Result<Subnet, NetError> {
        let invalid = |why: &str| NetError::InvalidConfig(format!("subnet {text:?}: {why}"));
        let (addr, prefix) = text
            .split_once('/')
            .ok_or_else(|| invalid("expected IPv4 CIDR notation such as 10.88.0.0/16"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| invalid(&format!("{addr:?} is not an IPv4 address")))?;
        // `u8::from_str` accepts a leading '+', which is not CIDR.
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(&format!("{prefix:?} is not a prefix length")));
        }
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| invalid(&format!("{prefix:?} is not a prefix length")))?;
        if !(MIN_PREFIX..=MAX_PREFIX).contains(&prefix) {
            return Err(invalid(&format!(
                "prefix /{prefix} is outside /{MIN_PREFIX} to /{MAX_PREFIX}"
            )));
        }
        let subnet = Subnet {
            network: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        };
        if subnet.network != addr {
            return Err(invalid(&format!(
                "host bits are set; did you mean {subnet}?"
            )));
        }
        Ok(subnet)
    }

    pub(crate) fn prefix(&self) -> u8 {
        self.prefix
    }

    fn first(&self) -> u32 {
        u32::from(self.network)
    }

    fn broadcast(&self) -> u32 {
        self.first() | !mask(self.prefix)
    }

    /// The first host address, which the bridge takes (as Docker's does).
    pub(crate) fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.first() + 1)
    }

    /// Addresses instances may have, lowest first: everything but the network address, the
    /// gateway and the broadcast address.
    pub(crate) fn instance_addresses(&self) -> impl Iterator<Item = Ipv4Addr> {
        (self.first() + 2..self.broadcast()).map(Ipv4Addr::from)
    }

    pub(crate) fn capacity(&self) -> u32 {
        self.broadcast() - self.first() - 2
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    // Prefixes are 8..=30 here, so the shift never overflows.
    u32::MAX << (32 - u32::from(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_derives_addresses() {
        let s = Subnet::parse("10.88.0.0/16").unwrap();
        assert_eq!(s.to_string(), "10.88.0.0/16");
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(s.capacity(), 65533);
        let mut addrs = s.instance_addresses();
        assert_eq!(addrs.next(), Some(Ipv4Addr::new(10, 88, 0, 2)));
        assert_eq!(addrs.last(), Some(Ipv4Addr::new(10, 88, 255, 254)));
    }

    #[test]
    fn a_slash_30_has_one_instance_address() {
        let s = Subnet::parse("10.1.2.4/30").unwrap();
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 1, 2, 5));
        let addrs: Vec<_> = s.instance_addresses().collect();
        assert_eq!(addrs, vec![Ipv4Addr::new(10, 1, 2, 6)]);
        assert_eq!(s.capacity(), 1);
    }

    #[test]
    fn refuses_bad_cidrs() {
        for bad in [
            "",
            "10.0.0.0",
            "10.0.0/24",
            "300.0.0.0/24",
            "10.0.0.0/",
            "10.0.0.0/+24",
            "10.0.0.0/33",
            "10.0.0.0/31",
            "10.0.0.0/7",
            "10.0.0.1/24",
            "fd00::/64",
        ] {
            let err = Subnet::parse(bad).unwrap_err();
            assert!(matches!(err, NetError::InvalidConfig(_)), "{bad}: {err}");
        }
        let msg = Subnet::parse("10.0.0.1/24").unwrap_err().to_string();
        assert!(msg.contains("did you mean 10.0.0.0/24"), "{msg}");
    }
}
