//! The one error type of instance networking. Every message names the step that failed (and
//! for which bridge or instance), so an operator can tell what homerun was doing at the time.

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The network configuration was refused before anything was created.
    #[error("invalid network config: {0}")]
    InvalidConfig(String),
    #[error("invalid instance id {id:?}: {reason}")]
    InvalidInstanceId { id: String, reason: String },
    /// `ip` or `iptables` ran and failed; `stderr` is what it said.
    #[error("{step}: {command} failed: {stderr}")]
    Command {
        step: String,
        command: String,
        stderr: String,
    },
    /// `ip` or `iptables` could not be started at all.
    #[error("{step}: cannot run {command}: {source}")]
    Spawn {
        step: String,
        command: String,
        #[source]
        source: io::Error,
    },
    /// A command succeeded but printed something this module does not understand.
    #[error("{step}: unexpected output of {command}: {detail}")]
    Output {
        step: String,
        command: String,
        detail: String,
    },
    #[error("{step}: {}: {source}", path.display())]
    Io {
        step: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{step}: {} is not a valid lease file: {source}", path.display())]
    LeaseFile {
        step: String,
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "allocating an address for instance {instance_id}: subnet {subnet} is exhausted \
         (all {capacity} instance addresses are leased)"
    )]
    Exhausted {
        instance_id: String,
        subnet: String,
        capacity: u32,
    },
    #[error("allocating an address for instance {instance_id}: it already holds {address}")]
    AlreadyLeased {
        instance_id: String,
        address: Ipv4Addr,
    },
    /// `setup` found an existing link with the bridge's name that is not a bridge.
    #[error(
        "setting up bridge {bridge}: a link of that name exists but is a {kind}, not a bridge"
    )]
    NotABridge { bridge: String, kind: String },
}

impl NetError {
    pub(crate) fn io(step: impl Into<String>, path: impl Into<PathBuf>, source: io::Error) -> Self {
        NetError::Io {
            step: step.into(),
            path: path.into(),
            source,
        }
    }
}
