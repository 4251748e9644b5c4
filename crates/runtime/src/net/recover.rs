//! Cleanup after a crash: whatever homerun created for instances that no longer run.

use std::collections::HashSet;
use std::fs;
use std::io;

use super::command::{delete_link, ip_json, link_exists};
use super::instance::delete_netns;
use super::names::{self, host_veth_name, netns_name, netns_path, NETNS_DIR, VETH_PREFIX};
use super::{NetError, Network, RecoveryReport};

pub(crate) fn recover(
    network: &Network,
    live_instance_ids: &[String],
) -> Result<RecoveryReport, NetError> {
    let live: HashSet<&str> = live_instance_ids.iter().map(String::as_str).collect();
    let mut report = RecoveryReport::default();
    remove_stale_namespaces(network, &live, &mut report)?;
    remove_stale_ports(network, &live, &mut report)?;
    free_stale_leases(network, &live, &mut report)?;
    Ok(report)
}

/// Namespaces of dead instances of this network. Another bridge's instances also have `hr-`
/// namespaces, so a namespace counts as this network's only if this network leases an
/// address to its instance or the instance's veth is a port of this bridge.
fn remove_stale_namespaces(
    network: &Network,
    live: &HashSet<&str>,
    report: &mut RecoveryReport,
) -> Result<(), NetError> {
    let leased: HashSet<String> = network
        .ipam
        .leases("recovering leases")?
        .into_values()
        .collect();
    let ports = bridge_ports(network)?;
    for netns in list_netns()? {
        let Some(id) = names::instance_of_netns(&netns) else {
            continue;
        };
        let veth = host_veth_name(id);
        if live.contains(id) || !(leased.contains(id) || ports.contains(&veth)) {
            continue;
        }
        if link_exists(&veth) {
            delete_link(&format!("deleting veth {veth} of instance {id}"), &veth)?;
            report.veths_removed += 1;
        }
        delete_netns(&netns, id)?;
        report.netns_removed += 1;
    }
    Ok(())
}

/// `hrv` ports of the bridge that belong to no live instance (a namespace deleted behind
/// homerun's back can leave its veth for a while, and a veth may outlive a failed cleanup).
fn remove_stale_ports(
    network: &Network,
    live: &HashSet<&str>,
    report: &mut RecoveryReport,
) -> Result<(), NetError> {
    let live_veths: HashSet<String> = live.iter().map(|id| host_veth_name(id)).collect();
    for port in bridge_ports(network)? {
        if port.starts_with(VETH_PREFIX) && !live_veths.contains(&port) {
            delete_link(&format!("deleting stale veth {port}"), &port)?;
            report.veths_removed += 1;
        }
    }
    Ok(())
}

/// Leases of instances that are not live or whose namespace no longer exists, with their
/// veth in case it left the bridge.
fn free_stale_leases(
    network: &Network,
    live: &HashSet<&str>,
    report: &mut RecoveryReport,
) -> Result<(), NetError> {
    let keep = |id: &str| live.contains(id) && netns_path(&netns_name(id)).exists();
    let stale = network.ipam.update("recovering leases", |leases| {
        let stale: Vec<String> = leases.values().filter(|id| !keep(id)).cloned().collect();
        leases.retain(|_, id| keep(id));
        Ok(stale)
    })?;
    report.leases_freed += stale.len();
    for id in stale {
        let veth = host_veth_name(&id);
        if link_exists(&veth) {
            delete_link(&format!("deleting veth {veth} of instance {id}"), &veth)?;
            report.veths_removed += 1;
        }
    }
    Ok(())
}

fn bridge_ports(network: &Network) -> Result<HashSet<String>, NetError> {
    let bridge = &network.config.bridge;
    let step = format!("listing the ports of bridge {bridge}");
    let links = ip_json(&step, &["link", "show", "master", bridge])?;
    Ok(links
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|link| link.get("ifname")?.as_str().map(str::to_string))
        .collect())
}

fn list_netns() -> Result<Vec<String>, NetError> {
    let entries = match fs::read_dir(NETNS_DIR) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(NetError::io("listing network namespaces", NETNS_DIR, e)),
    };
    let names = entries
        .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<Vec<_>>>();
    names.map_err(|e| NetError::io("listing network namespaces", NETNS_DIR, e))
}
