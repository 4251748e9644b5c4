//! One task attempt: its own instance (no port, no `PORT`; the `CLOUD_RUN_*` variables),
//! run to its exit, its timeout (SIGTERM, the grace period, SIGKILL, as the contract
//! says) or its cancellation; its logs kept as JSON lines in a file of its own.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use image::ImageRecord;
use runtime::instance::{ContainerDef, Instance, InstanceEvent, InstanceSpec, MemoryVolume, Node};
use tokio::sync::watch;

use super::progress::AttemptEnd;
use crate::spec::ContainerPlan;

/// Everything one attempt needs.
pub(crate) struct AttemptSpec {
    pub instance_id: String,
    pub containers: Vec<ContainerPlan>,
    /// One per container.
    pub images: Vec<ImageRecord>,
    pub volumes: Vec<MemoryVolume>,
    /// `CLOUD_RUN_JOB`, `CLOUD_RUN_EXECUTION`, `CLOUD_RUN_TASK_INDEX`,
    /// `CLOUD_RUN_TASK_ATTEMPT`, `CLOUD_RUN_TASK_COUNT`.
    pub env: Vec<(String, String)>,
    pub hosts: Vec<(String, Vec<String>)>,
    pub identities: Option<std::sync::Arc<crate::identity::Identities>>,
    pub identity: std::sync::Arc<crate::identity::IdentityPlan>,
    pub timeout: Duration,
    pub grace: Duration,
    /// Where its log lines go.
    pub log_path: PathBuf,
}

/// Runs one attempt to its end. `cancel` turning true stops it (SIGTERM, grace, SIGKILL).
pub(crate) async fn run(
    node: &Node,
    spec: AttemptSpec,
    mut cancel: watch::Receiver<bool>,
) -> AttemptEnd {
    let failed = |message: String| AttemptEnd {
        exit_code: None,
        signal: None,
        message,
        succeeded: false,
    };
    let mut instance_spec = InstanceSpec {
        id: spec.instance_id.clone(),
        containers: spec
            .containers
            .iter()
            .zip(&spec.images)
            .map(|(c, image)| ContainerDef {
                name: c.name.clone(),
                image: image.clone(),
                overrides: c.overrides.clone(),
                user: None,
                port: None,
                limits: c.limits,
                volume_mounts: c.volume_mounts.clone(),
                depends_on: c.depends_on.clone(),
                startup_probe: c.startup_probe.clone(),
                liveness_probe: c.liveness_probe.clone(),
            })
            .collect(),
        volumes: spec.volumes.clone(),
        file_volumes: Vec::new(),
        platform_env: spec.env.clone(),
        hosts: spec.hosts.clone(),
        cpu_boost: false,
    };
    // Held until the attempt's instance is stopped.
    let _registration = match crate::identity::prepare(
        spec.identities.as_deref(),
        &spec.identity,
        &mut instance_spec,
    ) {
        Ok(r) => r,
        Err(e) => return failed(format!("The task could not start: {e}")),
    };
    // Not raced with `cancel`: a start is undone completely only by its own failure path
    // or a stop, so a cancel that comes meanwhile is seen right after.
    let started = Instance::start(instance_spec, node).await;
    let instance = match started {
        Ok(i) => i,
        Err(e) => return failed(format!("The task could not start: {e}")),
    };
    let logs = instance.logs().clone();
    let end = tokio::select! {
        event = instance.watch() => match event {
            InstanceEvent::Exited { container, exit } => {
                let succeeded = exit.code == Some(0);
                let message = if exit.oom_killed {
                    format!("Container '{container}' was killed: it exceeded its memory limit.")
                } else if let Some(code) = exit.code {
                    if succeeded {
                        String::new()
                    } else {
                        format!("Container '{container}' exited with code {code}.")
                    }
                } else {
                    format!(
                        "Container '{container}' was killed by signal {}.",
                        exit.signal.unwrap_or_default()
                    )
                };
                AttemptEnd { exit_code: exit.code, signal: exit.signal, message, succeeded }
            }
            InstanceEvent::Unhealthy { container, reason } => {
                failed(format!("Container '{container}' failed its liveness probe: {reason}"))
            }
        },
        () = tokio::time::sleep(spec.timeout) => {
            let exit = stopped_exit(instance.stop(spec.grace).await);
            tokio::task::block_in_place(|| write_logs(&spec.log_path, &logs));
            return AttemptEnd {
                exit_code: exit.0,
                signal: exit.1,
                message: format!(
                    "The task attempt reached its timeout of {}s: it was sent SIGTERM, then SIGKILL after {}s.",
                    spec.timeout.as_secs(),
                    spec.grace.as_secs()
                ),
                succeeded: false,
            };
        }
        () = cancelled(&mut cancel) => {
            let exit = stopped_exit(instance.stop(spec.grace).await);
            tokio::task::block_in_place(|| write_logs(&spec.log_path, &logs));
            return AttemptEnd {
                exit_code: exit.0,
                signal: exit.1,
                message: "The task was cancelled.".into(),
                succeeded: false,
            };
        }
    };
    // Sidecars still running get SIGTERM and the grace period.
    instance.stop(spec.grace).await;
    tokio::task::block_in_place(|| write_logs(&spec.log_path, &logs));
    end
}

/// Resolves once `cancel` turns true (never, if its sender is gone first).
async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    if cancel.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The first container's exit of a stopped instance.
fn stopped_exit(exits: Vec<(String, runtime::container::ExitInfo)>) -> (Option<i32>, Option<i32>) {
    exits
        .first()
        .map(|(_, e)| (e.code, e.signal))
        .unwrap_or_default()
}

/// The attempt's lines as JSON, one per line (time, stream, container, text, severity).
fn write_logs(path: &PathBuf, logs: &runtime::logs::LogBuffer) {
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for entry in logs.entries() {
            serde_json::to_writer(&mut out, &entry)?;
            out.write_all(b"\n")?;
        }
        out.flush()
    };
    if let Err(e) = write() {
        tracing::warn!(path = %path.display(), "writing the attempt's logs: {e}");
    }
}
