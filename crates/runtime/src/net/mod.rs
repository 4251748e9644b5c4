//! Instance networking as Docker's bridge driver does it: one Linux bridge per network with
//! the subnet's first address as gateway, IPv4 forwarding and a MASQUERADE rule for traffic
//! leaving the host; per instance a network namespace `hr-<id>` whose `eth0` is one end of a
//! veth pair plugged into the bridge, with an address leased from a persisted IPAM and a
//! default route via the gateway.
//!
//! The kernel is driven through the `ip` (iproute2) and `iptables` commands, run by absolute
//! path, rather than netlink sockets: that is the intended design (no netlink dependency, and
//! every failing step names a command line an operator can rerun). See `command`.
//!
//! FORWARD-chain rules as Docker's (out from the bridge, only replies in) keep instances
//! reachable on hosts whose FORWARD policy is DROP; above them, one rejects everything from
//! the bridge to 169.254.169.254, which homerun never routes (its metadata server is on the
//! gateway), so a client looking for a cloud's metadata server there fails at once.
//!
//! The bridge and every veth take the MTU of the interface holding the host's default route
//! (1500 when there is none), so instances never send packets the uplink cannot carry.
//!
//! Not done here, on purpose: published ports (DNAT), IPv6.

mod bridge;
mod command;
mod error;
mod instance;
mod ipam;
mod names;
mod pool;
mod recover;
mod subnet;

use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use error::NetError;
pub use pool::NetPool;

use ipam::Ipam;
use subnet::Subnet;

/// What a network is made of. The same config always yields the same bridge, gateway and
/// leases file, so a restarted homerun finds its network again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// Name of the Linux bridge: at most 15 characters of `[A-Za-z0-9_.-]`.
    pub bridge: String,
    /// IPv4 subnet in CIDR notation, e.g. "10.88.0.0/16", with a prefix from /8 to /30.
    pub subnet: String,
    /// Where leases persist (`leases-<bridge>.json`) and the bridge's lock file lives.
    pub state_dir: PathBuf,
}

/// A bridge network that is set up on this host.
#[derive(Debug)]
pub struct Network {
    config: NetworkConfig,
    subnet: Subnet,
    ipam: Ipam,
    /// The MTU of the host's uplink, which the bridge and every veth take: a larger one
    /// would send packets the uplink has to fragment or drop once NATed out.
    mtu: u32,
}

/// One instance's place on a network. Keep it to release the instance's networking later;
/// `recover` cleans up after those that were lost in a crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub instance_id: String,
    /// Name of the network namespace, `hr-<instance id>`.
    pub netns: String,
    /// The namespace's bind mount, `/var/run/netns/<netns>`: what a runtime spec joins.
    pub netns_path: PathBuf,
    /// The address of the instance's `eth0`.
    pub address: Ipv4Addr,
    /// The subnet's prefix length, which `eth0`'s address carries.
    pub prefix: u8,
    /// The host end of the veth pair, a port of the bridge.
    pub host_veth: String,
}

/// What `Network::recover` removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub netns_removed: usize,
    pub veths_removed: usize,
    pub leases_freed: usize,
}

impl Network {
    /// Creates or completes the network on this host; running it again changes nothing.
    /// The config is validated before anything is created, the state directory included.
    pub fn setup(config: NetworkConfig) -> Result<Network, NetError> {
        names::validate_bridge_name(&config.bridge)?;
        let subnet = Subnet::parse(&config.subnet)?;
        if config.state_dir.as_os_str().is_empty() {
            return Err(NetError::InvalidConfig("state_dir is empty".into()));
        }
        fs::create_dir_all(&config.state_dir).map_err(|e| {
            NetError::io("creating the network state directory", &config.state_dir, e)
        })?;
        let network = Network {
            ipam: Ipam::new(&config.state_dir, &config.bridge),
            config,
            subnet,
            mtu: bridge::uplink_mtu(),
        };
        let bridge = &network.config.bridge;
        // Two processes setting up one bridge at once would race between check and change.
        let _lock = network.ipam.lock(&format!("setting up bridge {bridge}"))?;
        bridge::ensure_bridge(bridge, &subnet, network.mtu)?;
        bridge::enable_forwarding()?;
        bridge::ensure_masquerade(bridge, &subnet)?;
        bridge::ensure_forward_rules(bridge)?;
        bridge::prepare_netns_dir()?;
        Ok(network)
    }

    /// The bridge's address, the instances' default route.
    pub fn gateway(&self) -> Ipv4Addr {
        self.subnet.gateway()
    }

    /// The MTU of the bridge and the instances' interfaces (the host uplink's).
    pub fn mtu(&self) -> u32 {
        self.mtu
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// Gives an instance its own network namespace, plugged into the bridge, with an
    /// address and a default route. On failure everything done so far is undone and the
    /// error names the failed step. `instance_id` is 1 to 64 ASCII letters, digits and '-'.
    pub fn attach(&self, instance_id: &str) -> Result<Attachment, NetError> {
        instance::attach(self, instance_id)
    }

    /// After a crash of homerun: removes this network's namespaces and veths of instances
    /// not in `live_instance_ids`, and leases of such instances or whose namespace is gone.
    /// Run it before attaching anything: an attach in progress is not yet live.
    pub fn recover(&self, live_instance_ids: &[String]) -> Result<RecoveryReport, NetError> {
        recover::recover(self, live_instance_ids)
    }

    /// Removes the MASQUERADE rule and the bridge, for a platform shutting down for good.
    /// Release attachments first; leases stay in the state directory. IPv4 forwarding stays
    /// on, since other software on the host may rely on it.
    pub fn teardown(self) -> Result<(), NetError> {
        let bridge = &self.config.bridge;
        let _lock = self.ipam.lock(&format!("tearing down bridge {bridge}"))?;
        let rule = bridge::remove_masquerade(bridge, &self.subnet);
        let forward = bridge::remove_forward_rules(bridge);
        let link = bridge::remove_bridge(bridge);
        rule.and(forward).and(link)
    }
}

impl Attachment {
    /// Deletes the instance's veth pair and namespace and frees its address. Pieces that
    /// are already gone are not errors, so a release can be retried.
    pub fn release(self, network: &Network) -> Result<(), NetError> {
        instance::remove(
            network,
            &self.instance_id,
            Some(&self.host_veth),
            Some(&self.netns),
            Some(self.address),
        )
    }
}
