//! The host side shared by all instances of a network: the bridge with its gateway address,
//! IPv4 forwarding, the MASQUERADE rule that lets instances reach beyond the host and the
//! FORWARD rules (out, replies in, never to 169.254.169.254). Each function checks before it
//! changes, so `setup` can run at every start of homerun.

use std::fs;
use std::io;

use super::command::{self, ip_json, link_exists, probe, run, Tool};
use super::names::{self, NETNS_DIR};
use super::subnet::Subnet;
use super::NetError;

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";
/// `/sys/class/net/<dev>/addr_assign_type` of an address someone set explicitly.
const NET_ADDR_SET: &str = "3";

/// Creates the bridge if missing, pins its MAC address, gives it the gateway address and
/// brings it up.
pub(crate) fn ensure_bridge(bridge: &str, subnet: &Subnet, mtu: u32) -> Result<(), NetError> {
    let mac = names::bridge_mac(bridge);
    let step = format!("creating bridge {bridge}");
    match link_kind(&step, bridge)? {
        None => {
            run(
                &step,
                Tool::Ip,
                &[
                    "link", "add", "name", bridge, "address", &mac, "type", "bridge",
                ],
            )?;
        }
        Some(kind) if kind == "bridge" => {}
        Some(kind) => {
            return Err(NetError::NotABridge {
                bridge: bridge.to_string(),
                kind,
            })
        }
    }
    ensure_mac(bridge, &mac)?;
    run(
        &format!("setting the MTU of bridge {bridge}"),
        Tool::Ip,
        &["link", "set", "dev", bridge, "mtu", &mtu.to_string()],
    )?;
    ensure_gateway(bridge, subnet)?;
    run(
        &format!("bringing up bridge {bridge}"),
        Tool::Ip,
        &["link", "set", "dev", bridge, "up"],
    )?;
    Ok(())
}

/// The MTU of the interface holding the host's IPv4 default route, or 1500 without one.
pub(crate) fn uplink_mtu() -> u32 {
    const DEFAULT: u32 = 1500;
    let step = "reading the host's default route";
    let dev = match command::ip_json(step, &["-4", "route", "show", "default"]) {
        Ok(routes) => routes[0]["dev"].as_str().map(str::to_string),
        Err(_) => None,
    };
    let Some(dev) = dev else { return DEFAULT };
    command::ip_json(step, &["link", "show", "dev", &dev])
        .ok()
        .and_then(|links| links[0]["mtu"].as_u64())
        .map_or(DEFAULT, |mtu| mtu.clamp(576, 65535) as u32)
}

/// The link's kind ("bridge", "veth", ...; "device" for a plain one), or None if absent.
fn link_kind(step: &str, name: &str) -> Result<Option<String>, NetError> {
    if !link_exists(name) {
        return Ok(None);
    }
    let links = ip_json(step, &["-d", "link", "show", "dev", name])?;
    let kind = links
        .get(0)
        .and_then(|link| link.get("linkinfo"))
        .and_then(|info| info.get("info_kind"))
        .and_then(|kind| kind.as_str())
        .unwrap_or("device");
    Ok(Some(kind.to_string()))
}

/// A bridge created by an older homerun, or by hand, may have a kernel-chosen MAC address
/// that follows its ports; setting it explicitly (even to the same value) marks it as set,
/// after which the kernel leaves it alone.
fn ensure_mac(bridge: &str, mac: &str) -> Result<(), NetError> {
    let sys = |file: &str| {
        fs::read_to_string(format!("/sys/class/net/{bridge}/{file}"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    if sys("address") == mac && sys("addr_assign_type") == NET_ADDR_SET {
        return Ok(());
    }
    run(
        &format!("setting the MAC address of bridge {bridge}"),
        Tool::Ip,
        &["link", "set", "dev", bridge, "address", mac],
    )
    .map(drop)
}

fn ensure_gateway(bridge: &str, subnet: &Subnet) -> Result<(), NetError> {
    let step = format!("assigning the gateway address to bridge {bridge}");
    let gateway = subnet.gateway().to_string();
    let links = ip_json(&step, &["-4", "addr", "show", "dev", bridge])?;
    let present = links
        .get(0)
        .and_then(|link| link.get("addr_info"))
        .and_then(|infos| infos.as_array())
        .into_iter()
        .flatten()
        .any(|info| {
            info.get("local").and_then(|l| l.as_str()) == Some(gateway.as_str())
                && info.get("prefixlen").and_then(|p| p.as_u64())
                    == Some(u64::from(subnet.prefix()))
        });
    if !present {
        let cidr = format!("{gateway}/{}", subnet.prefix());
        run(&step, Tool::Ip, &["addr", "add", &cidr, "dev", bridge])?;
    }
    Ok(())
}

/// Instances reach anything but each other through the host's routing. Forwarding is a
/// host-wide switch that other software may rely on too, so teardown leaves it on.
pub(crate) fn enable_forwarding() -> Result<(), NetError> {
    let step = "enabling IPv4 forwarding";
    let current = fs::read_to_string(IP_FORWARD).map_err(|e| NetError::io(step, IP_FORWARD, e))?;
    if current.trim() == "1" {
        return Ok(());
    }
    fs::write(IP_FORWARD, "1").map_err(|e| NetError::io(step, IP_FORWARD, e))
}

/// `-t nat POSTROUTING -s SUBNET ! -o BRIDGE -j MASQUERADE`, with the given action.
fn masquerade_args<'a>(action: &'a str, subnet: &'a str, bridge: &'a str) -> [&'a str; 11] {
    [
        "-t",
        "nat",
        action,
        "POSTROUTING",
        "-s",
        subnet,
        "!",
        "-o",
        bridge,
        "-j",
        "MASQUERADE",
    ]
}

/// Traffic from instances leaving through any other interface takes the host's address.
pub(crate) fn ensure_masquerade(bridge: &str, subnet: &Subnet) -> Result<(), NetError> {
    let step = format!("adding the MASQUERADE rule for {subnet} on bridge {bridge}");
    let subnet = subnet.to_string();
    if !probe(
        &step,
        Tool::Iptables,
        &masquerade_args("-C", &subnet, bridge),
    )? {
        run(
            &step,
            Tool::Iptables,
            &masquerade_args("-A", &subnet, bridge),
        )?;
    }
    Ok(())
}

/// Deletes every copy of the rule (a crash between check and add elsewhere could have left
/// two), and no other rule.
pub(crate) fn remove_masquerade(bridge: &str, subnet: &Subnet) -> Result<(), NetError> {
    let step = format!("removing the MASQUERADE rule for {subnet} on bridge {bridge}");
    let subnet = subnet.to_string();
    while probe(
        &step,
        Tool::Iptables,
        &masquerade_args("-C", &subnet, bridge),
    )? {
        run(
            &step,
            Tool::Iptables,
            &masquerade_args("-D", &subnet, bridge),
        )?;
    }
    Ok(())
}

/// The address clouds serve their metadata on. homerun's metadata server is on the gateway
/// instead, and this address is never routed: a client that looks for a metadata server
/// here (one that does not know homerun) is refused at once rather than left hanging or,
/// on a host in a cloud, answered by the host's own metadata server.
pub(crate) const CLOUD_METADATA: &str = "169.254.169.254/32";

/// The FORWARD rules that let instances out on a host whose FORWARD policy is DROP (as with
/// Docker installed), as Docker's bridge driver adds them: anything from the bridge, and
/// only replies (established or related connections) to it, so nothing outside can open a
/// connection to an instance through the host. Last, the one that must come first in the
/// chain: nothing from the bridge to [`CLOUD_METADATA`] (REJECT, so the sender hears it).
fn forward_rules(bridge: &str) -> [Vec<&str>; 3] {
    [
        vec!["FORWARD", "-i", bridge, "-j", "ACCEPT"],
        vec![
            "FORWARD",
            "-o",
            bridge,
            "-m",
            "conntrack",
            "--ctstate",
            "RELATED,ESTABLISHED",
            "-j",
            "ACCEPT",
        ],
        vec![
            "FORWARD",
            "-i",
            bridge,
            "-d",
            CLOUD_METADATA,
            "-j",
            "REJECT",
        ],
    ]
}

fn with_action<'a>(action: &'a str, rule: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![action];
    args.extend_from_slice(rule);
    args
}

/// A change to FORWARD, by index into [`forward_rules`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Insert at the top of the chain.
    Insert(usize),
    /// Delete every copy.
    Remove(usize),
}

/// What makes FORWARD hold every rule, with the REJECT (the last) above the ACCEPTs, given
/// which are present: each missing rule is inserted at the top, and a REJECT that an
/// inserted ACCEPT would now precede goes back to the top. Nothing when all are there, so
/// `setup` at every start of homerun changes nothing.
fn forward_changes(present: [bool; 3]) -> Vec<Change> {
    const REJECT: usize = 2;
    let mut changes: Vec<Change> = (0..REJECT)
        .filter(|&i| !present[i])
        .map(Change::Insert)
        .collect();
    if present[REJECT] && !changes.is_empty() {
        changes.push(Change::Remove(REJECT));
    }
    if !present[REJECT] || !changes.is_empty() {
        changes.push(Change::Insert(REJECT));
    }
    changes
}

/// Inserted at the top of FORWARD, before rules that would drop the traffic.
pub(crate) fn ensure_forward_rules(bridge: &str) -> Result<(), NetError> {
    let step = format!("adding the FORWARD rules for bridge {bridge}");
    let rules = forward_rules(bridge);
    let mut present = [false; 3];
    for (i, rule) in rules.iter().enumerate() {
        present[i] = probe(&step, Tool::Iptables, &with_action("-C", rule))?;
    }
    for change in forward_changes(present) {
        match change {
            Change::Insert(i) => {
                run(&step, Tool::Iptables, &with_action("-I", &rules[i]))?;
            }
            Change::Remove(i) => {
                while probe(&step, Tool::Iptables, &with_action("-C", &rules[i]))? {
                    run(&step, Tool::Iptables, &with_action("-D", &rules[i]))?;
                }
            }
        }
    }
    Ok(())
}

/// Deletes every copy of each rule, and no other rule.
pub(crate) fn remove_forward_rules(bridge: &str) -> Result<(), NetError> {
    let step = format!("removing the FORWARD rules for bridge {bridge}");
    for rule in forward_rules(bridge) {
        while probe(&step, Tool::Iptables, &with_action("-C", &rule))? {
            run(&step, Tool::Iptables, &with_action("-D", &rule))?;
        }
    }
    Ok(())
}

pub(crate) fn remove_bridge(bridge: &str) -> Result<(), NetError> {
    command::delete_link(&format!("deleting bridge {bridge}"), bridge)
}

/// The first `ip netns add` on a host turns the namespace directory into a shared mount
/// point; several running that first time at once can stack mounts and hide namespaces from
/// each other. Doing it once here, under the bridge lock, means concurrent attaches never
/// race on it. The throwaway namespace's name does not start with `hr-`, so `recover` never
/// mistakes it for an instance's.
pub(crate) fn prepare_netns_dir() -> Result<(), NetError> {
    let step = "preparing the network namespace directory";
    if netns_dir_is_mounted().map_err(|e| NetError::io(step, "/proc/self/mountinfo", e))? {
        return Ok(());
    }
    let probe_ns = format!("hrsetup{}", std::process::id());
    run(step, Tool::Ip, &["netns", "add", &probe_ns])?;
    run(step, Tool::Ip, &["netns", "del", &probe_ns])?;
    Ok(())
}

fn netns_dir_is_mounted() -> io::Result<bool> {
    let mounts = fs::read_to_string("/proc/self/mountinfo")?;
    let canonical = fs::canonicalize(NETNS_DIR).ok();
    Ok(mounts.lines().any(|line| {
        // The fifth field is the mount point.
        line.split(' ').nth(4).is_some_and(|point| {
            point == NETNS_DIR || canonical.as_deref().is_some_and(|c| c.as_os_str() == point)
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_rules_accept_out_and_replies_and_reject_the_cloud_metadata_address() {
        let rules = forward_rules("hr0");
        assert_eq!(rules[0].join(" "), "FORWARD -i hr0 -j ACCEPT");
        assert_eq!(
            rules[1].join(" "),
            "FORWARD -o hr0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
        );
        assert_eq!(
            rules[2].join(" "),
            "FORWARD -i hr0 -d 169.254.169.254/32 -j REJECT"
        );
        assert_eq!(with_action("-C", &rules[0])[..2], ["-C", "FORWARD"]);
    }

    #[test]
    fn the_reject_ends_above_the_accepts_and_a_complete_chain_is_left_alone() {
        use Change::{Insert, Remove};
        // Every start after the first: nothing to do.
        assert_eq!(forward_changes([true, true, true]), []);
        // A fresh host: each at the top in turn, so the REJECT ends first.
        assert_eq!(
            forward_changes([false, false, false]),
            [Insert(0), Insert(1), Insert(2)]
        );
        // A chain from before the REJECT existed.
        assert_eq!(forward_changes([true, true, false]), [Insert(2)]);
        // An ACCEPT that goes on top would pass what the REJECT is for: it goes back above.
        assert_eq!(
            forward_changes([false, true, true]),
            [Insert(0), Remove(2), Insert(2)]
        );
        assert_eq!(
            forward_changes([true, false, true]),
            [Insert(1), Remove(2), Insert(2)]
        );
    }
}
