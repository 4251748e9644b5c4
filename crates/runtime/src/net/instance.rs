//! One instance's share of the network: a network namespace `hr-<id>` whose `eth0` is one
//! end of a veth pair, the other end (`hrv<hash>`) a port of the bridge.

use std::net::Ipv4Addr;

use super::command::{delete_link, run, Tool};
use super::names::{self, host_veth_name, instance_mac, netns_name, netns_path};
use super::{Attachment, NetError, Network};

pub(crate) fn attach(network: &Network, instance_id: &str) -> Result<Attachment, NetError> {
    names::validate_instance_id(instance_id)?;
    let mut undo = Rollback::new(network, instance_id);

    let address = network.ipam.allocate(&network.subnet, instance_id)?;
    undo.lease = Some(address);

    let netns = netns_name(instance_id);
    run(
        &format!("creating network namespace {netns} for instance {instance_id}"),
        Tool::Ip,
        &["netns", "add", &netns],
    )?;
    undo.netns = Some(netns.clone());

    let veth = host_veth_name(instance_id);
    create_veth(&veth, &netns, address, network.mtu, instance_id)?;
    undo.veth = Some(veth.clone());

    let bridge = &network.config.bridge;
    run(
        &format!("attaching veth {veth} to bridge {bridge} for instance {instance_id}"),
        Tool::Ip,
        &["link", "set", "dev", &veth, "master", bridge, "up"],
    )?;
    configure_namespace(network, &netns, address, instance_id)?;
    // The host answers this address only at its own MAC: another instance cannot take it
    // over by ARP, which would let it complete TCP handshakes in its name (the metadata
    // server and the ingress's internal check know callers by source address). MACs are
    // derived from addresses, so an entry never goes stale when the address is reused.
    let mac = instance_mac(address);
    run(
        &format!("pinning {address} to {mac} on bridge {bridge} for instance {instance_id}"),
        Tool::Ip,
        &[
            "neigh",
            "replace",
            &address.to_string(),
            "lladdr",
            &mac,
            "nud",
            "permanent",
            "dev",
            bridge,
        ],
    )?;

    undo.disarm();
    Ok(Attachment {
        instance_id: instance_id.to_string(),
        netns_path: netns_path(&netns),
        netns,
        address,
        prefix: network.subnet.prefix(),
        host_veth: veth,
    })
}

/// Creates the pair with the peer directly inside the namespace as `eth0`: the peer never
/// exists in the host namespace, so it cannot clash with a host interface of that name.
fn create_veth(
    veth: &str,
    netns: &str,
    address: Ipv4Addr,
    mtu: u32,
    instance_id: &str,
) -> Result<(), NetError> {
    let mac = instance_mac(address);
    let mtu = mtu.to_string();
    run(
        &format!("creating veth {veth} for instance {instance_id}"),
        Tool::Ip,
        &[
            "link", "add", "name", veth, "mtu", &mtu, "type", "veth", "peer", "name", "eth0",
            "mtu", &mtu, "address", &mac, "netns", netns,
        ],
    )
    .map(drop)
}

fn configure_namespace(
    network: &Network,
    netns: &str,
    address: Ipv4Addr,
    instance_id: &str,
) -> Result<(), NetError> {
    let cidr = format!("{address}/{}", network.subnet.prefix());
    let gateway = network.gateway().to_string();
    let in_ns = |what: &str, args: &[&str]| {
        let mut full = vec!["-n", netns];
        full.extend_from_slice(args);
        run(
            &format!("{what} in {netns} for instance {instance_id}"),
            Tool::Ip,
            &full,
        )
        .map(drop)
    };
    in_ns(
        &format!("setting address {cidr} on eth0"),
        &["addr", "add", &cidr, "dev", "eth0"],
    )?;
    in_ns("bringing up lo", &["link", "set", "dev", "lo", "up"])?;
    in_ns("bringing up eth0", &["link", "set", "dev", "eth0", "up"])?;
    in_ns(
        &format!("adding the default route via {gateway}"),
        &["route", "add", "default", "via", &gateway, "dev", "eth0"],
    )
}

/// Removes whatever of an instance's networking exists; missing pieces are fine. The lease
/// is freed only once the veth and namespace are gone, so an address still configured
/// somewhere is never handed out again (`recover` frees it later).
pub(crate) fn remove(
    network: &Network,
    instance_id: &str,
    veth: Option<&str>,
    netns: Option<&str>,
    lease: Option<Ipv4Addr>,
) -> Result<(), NetError> {
    // The veth goes first: deleting it removes both ends at once, whereas a deleted
    // namespace is destroyed by the kernel later, and only once no process holds it.
    let veth_result = veth.map_or(Ok(()), |veth| {
        delete_link(
            &format!("deleting veth {veth} of instance {instance_id}"),
            veth,
        )
    });
    // Attempted even when the veth could not be deleted: the namespace may still go.
    let netns_result = netns.map_or(Ok(()), |netns| delete_netns(netns, instance_id));
    veth_result.and(netns_result)?;
    lease.map_or(Ok(()), |address| network.ipam.free(address, instance_id))
}

pub(crate) fn delete_netns(netns: &str, instance_id: &str) -> Result<(), NetError> {
    let path = netns_path(netns);
    if !path.exists() {
        return Ok(());
    }
    let step = format!("deleting network namespace {netns} of instance {instance_id}");
    match run(&step, Tool::Ip, &["netns", "del", netns]) {
        Err(_) if !path.exists() => Ok(()),
        other => other.map(drop),
    }
}

/// Undoes a half-done attach when dropped, unless disarmed; being a guard, it also cleans
/// up when a step panics.
struct Rollback<'a> {
    network: &'a Network,
    instance_id: &'a str,
    lease: Option<Ipv4Addr>,
    netns: Option<String>,
    veth: Option<String>,
}

impl<'a> Rollback<'a> {
    fn new(network: &'a Network, instance_id: &'a str) -> Self {
        Rollback {
            network,
            instance_id,
            lease: None,
            netns: None,
            veth: None,
        }
    }

    fn disarm(&mut self) {
        self.lease = None;
        self.netns = None;
        self.veth = None;
    }
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        if self.lease.is_none() && self.netns.is_none() && self.veth.is_none() {
            return;
        }
        if let Err(e) = remove(
            self.network,
            self.instance_id,
            self.veth.as_deref(),
            self.netns.as_deref(),
            self.lease,
        ) {
            // The attach error is what the caller gets; this one can only be logged, and
            // `recover` removes what is left.
            tracing::warn!(instance = self.instance_id, error = %e, "undoing a failed attach");
        }
    }
}
