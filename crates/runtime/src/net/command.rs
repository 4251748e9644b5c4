//! Runs `ip` and `iptables`. Driving the kernel through these two commands rather than
//! netlink and nftables sockets is deliberate: the crate takes no netlink dependency, the
//! commands are on every host that can run containers, and each step an operator reads in an
//! error message is a command line they can paste into a shell.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use super::NetError;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Tool {
    Ip,
    Iptables,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Ip => "ip",
            Tool::Iptables => "iptables",
        }
    }

    /// Absolute path, so that a `PATH` set by whoever started homerun cannot substitute
    /// another program that runs as root.
    fn path(self) -> &'static Path {
        static IP: OnceLock<PathBuf> = OnceLock::new();
        static IPTABLES: OnceLock<PathBuf> = OnceLock::new();
        let cell = match self {
            Tool::Ip => &IP,
            Tool::Iptables => &IPTABLES,
        };
        cell.get_or_init(|| {
            let candidates = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
                .map(|dir| Path::new(dir).join(self.name()));
            // When none exists, the first candidate makes the spawn error name a real place.
            candidates
                .iter()
                .find(|p| p.is_file())
                .unwrap_or(&candidates[0])
                .clone()
        })
    }

    fn fixed_args(self) -> &'static [&'static str] {
        match self {
            Tool::Ip => &[],
            // Wait for the xtables lock instead of failing when another process (or another
            // of our threads) changes rules at the same moment.
            Tool::Iptables => &["-w"],
        }
    }
}

/// `ip link add ...` as a person would type it, for error messages.
fn render(tool: Tool, args: &[&str]) -> String {
    std::iter::once(tool.name())
        .chain(tool.fixed_args().iter().copied())
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ")
}

fn output(step: &str, tool: Tool, args: &[&str]) -> Result<Output, NetError> {
    Command::new(tool.path())
        .args(tool.fixed_args())
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .map_err(|source| NetError::Spawn {
            step: step.to_string(),
            command: render(tool, args),
            source,
        })
}

fn failure(step: &str, tool: Tool, args: &[&str], out: &Output) -> NetError {
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    NetError::Command {
        step: step.to_string(),
        command: render(tool, args),
        stderr: if stderr.is_empty() {
            format!("{} with no message", out.status)
        } else {
            stderr
        },
    }
}

/// Runs the command; success is exit status 0. Returns its standard output.
pub(crate) fn run(step: &str, tool: Tool, args: &[&str]) -> Result<String, NetError> {
    let out = output(step, tool, args)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(failure(step, tool, args, &out))
    }
}

/// Runs a yes/no question such as `iptables -C`: exit 0 is yes, exit 1 is no, anything else
/// (bad arguments, missing table) is an error.
pub(crate) fn probe(step: &str, tool: Tool, args: &[&str]) -> Result<bool, NetError> {
    let out = output(step, tool, args)?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(failure(step, tool, args, &out)),
    }
}

/// Runs `ip -j ...` and parses its JSON.
pub(crate) fn ip_json(step: &str, args: &[&str]) -> Result<serde_json::Value, NetError> {
    let mut full = vec!["-j"];
    full.extend_from_slice(args);
    let stdout = run(step, Tool::Ip, &full)?;
    // Some `ip` versions print nothing rather than `[]` when there is nothing to list.
    if stdout.trim().is_empty() {
        return Ok(serde_json::Value::Array(Vec::new()));
    }
    serde_json::from_str(&stdout).map_err(|e| NetError::Output {
        step: step.to_string(),
        command: render(Tool::Ip, &full),
        detail: e.to_string(),
    })
}

/// Whether a network interface of that name exists in homerun's own network namespace.
pub(crate) fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Deletes a link; one that is already gone is not an error (deletes race with the kernel
/// destroying a namespace, and with other cleanups).
pub(crate) fn delete_link(step: &str, name: &str) -> Result<(), NetError> {
    if !link_exists(name) {
        return Ok(());
    }
    match run(step, Tool::Ip, &["link", "del", "dev", name]) {
        Err(_) if !link_exists(name) => Ok(()),
        other => other.map(drop),
    }
}
