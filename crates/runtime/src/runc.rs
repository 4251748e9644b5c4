//! The OCI runtime binary (runc, or runsc for gVisor) driven through its CLI, with its own
//! state directory so homerun's containers never mix with anyone else's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{IoContext, RuntimeError};

/// Which OCI runtime runs an instance: Cloud Run's second generation (full Linux, runc) or
/// first (gVisor sandbox, runsc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OciRuntime {
    Runc,
    Runsc,
}

impl OciRuntime {
    pub fn binary(self) -> &'static str {
        match self {
            Self::Runc => "runc",
            Self::Runsc => "runsc",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Runtime {
    kind: OciRuntime,
    root: PathBuf,
}

impl Runtime {
    pub fn new(kind: OciRuntime, root: &Path) -> Self {
        Self {
            kind,
            root: root.to_path_buf(),
        }
    }

    pub fn kind(&self) -> OciRuntime {
        self.kind
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(self.kind.binary());
        cmd.arg("--root").arg(&self.root);
        if self.kind == OciRuntime::Runsc {
            // Debian's runsc (2022) refuses its own netstack here ("cannot run with network
            // enabled in root network namespace") however the instance's namespace is given;
            // with host networking it uses that namespace, which is the instance's own.
            cmd.arg("--network=host");
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> Result<String, RuntimeError> {
        let mut cmd = self.command();
        cmd.args(args).stdin(Stdio::null());
        let shown = format!("{} {}", self.kind.binary(), args.join(" "));
        let out = cmd.output().context(|| format!("running {shown}"))?;
        if !out.status.success() {
            return Err(RuntimeError::Command {
                command: shown,
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `run --detach`: creates and starts the container in one invocation (one exec of the
    /// runtime fewer than `create` + `start`). Its stdout and stderr are the given pipes;
    /// runc's own messages go to `log` (JSON lines). Returns the init's host pid.
    pub fn run_detached(
        &self,
        id: &str,
        bundle: &Path,
        stdout: Stdio,
        stderr: Stdio,
        log: &Path,
    ) -> Result<i32, RuntimeError> {
        self.launch("run", &["--detach"], id, bundle, stdout, stderr, log)
    }

    /// `create`: the container's init is set up and waits for `start`. Returns its host pid.
    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        stdout: Stdio,
        stderr: Stdio,
        log: &Path,
    ) -> Result<i32, RuntimeError> {
        self.launch("create", &[], id, bundle, stdout, stderr, log)
    }

    #[allow(clippy::too_many_arguments)]
    fn launch(
        &self,
        verb: &str,
        flags: &[&str],
        id: &str,
        bundle: &Path,
        stdout: Stdio,
        stderr: Stdio,
        log: &Path,
    ) -> Result<i32, RuntimeError> {
        let pid_file = bundle.join("init.pid");
        let status = self
            .command()
            .arg("--log")
            .arg(log)
            .arg("--log-format")
            .arg("json")
            .arg(verb)
            .args(flags)
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .status()
            .context(|| format!("running {} {verb} {id}", self.kind.binary()))?;
        if !status.success() {
            return Err(RuntimeError::Command {
                command: format!("{} {verb} {id}", self.kind.binary()),
                status: status.to_string(),
                stderr: last_error(log),
            });
        }
        let pid = std::fs::read_to_string(&pid_file)
            .context(|| format!("reading {}", pid_file.display()))?;
        pid.trim().parse().map_err(|_| {
            RuntimeError::Invalid(format!("{} holds no pid: {pid:?}", pid_file.display()))
        })
    }

    pub fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(&["start", id]).map(drop)
    }

    /// Sends `signal` (e.g. "TERM", "KILL") to the container's init, or with `all` to every
    /// process of the container.
    pub fn kill(&self, id: &str, signal: &str, all: bool) -> Result<(), RuntimeError> {
        if all {
            self.run(&["kill", "--all", id, signal]).map(drop)
        } else {
            self.run(&["kill", id, signal]).map(drop)
        }
    }

    /// Removes the container's state (and its cgroup); `force` kills what still runs.
    pub fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        if force {
            self.run(&["delete", "--force", id]).map(drop)
        } else {
            self.run(&["delete", id]).map(drop)
        }
    }

    /// Ids of the containers in this runtime's state directory (for recovery after a crash).
    pub fn list(&self) -> Result<Vec<String>, RuntimeError> {
        let out = self.run(&["list", "--format", "json"])?;
        let v: serde_json::Value =
            serde_json::from_str(out.trim()).unwrap_or(serde_json::Value::Null);
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// The last error runc wrote to its JSON log, for a failed create.
fn last_error(log: &Path) -> String {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "error" || v["level"] == "fatal")
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .next_back()
        .unwrap_or_else(|| "no message in runc's log".into())
}
