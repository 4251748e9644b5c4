//! One execution's task: it pulls the images, then runs task attempts as
//! [`Progress`] says (each its own instance, see [`attempt`]), writes every change through
//! [`Records`], and ends when every task has ended, or when cancelled or deleted.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use image::RegistryOptions;
use runtime::instance::{MemoryVolume, Node};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::attempt::{self, AttemptSpec};
use super::progress::{AttemptEnd, ExecutionEnd, Progress, TaskProgress};
use crate::spec::ContainerPlan;

/// What an execution runs, from its stored record.
#[derive(Clone, Debug)]
pub(crate) struct ExecutionPlan {
    /// Full resource name.
    pub name: String,
    pub project: String,
    pub job: String,
    /// The execution id (`CLOUD_RUN_EXECUTION`).
    pub execution: String,
    pub task_count: u32,
    pub parallelism: u32,
    pub max_retries: u32,
    pub timeout: Duration,
    pub containers: Vec<ContainerPlan>,
    pub volumes: Vec<MemoryVolume>,
    /// The tasks' service account and secrets.
    pub identity: Arc<crate::identity::IdentityPlan>,
    /// Tasks as stored, when resuming after a stop.
    pub resumed: Option<Vec<TaskProgress>>,
}

/// Where an execution's progress goes (the store, through the API's types).
pub(crate) trait Records: Send + Sync + 'static {
    /// The tasks exist, with their state.
    fn tasks(&self, tasks: &[TaskProgress]);
    /// An attempt started.
    fn attempt_started(&self, task: &TaskProgress);
    /// An attempt ended; `task` is the task's state after it.
    fn attempt_ended(&self, task: &TaskProgress);
    /// The execution's counters changed.
    fn progress(&self, progress: &Progress);
    /// The execution ended, with a message for a failure.
    fn ended(&self, progress: &Progress, end: ExecutionEnd, message: &str);
}

/// What reaches an execution's task.
#[derive(Debug)]
pub(crate) enum Message {
    /// Stop running tasks (SIGTERM, grace, SIGKILL); start no more; record cancelled.
    Cancel,
    /// The execution's record is gone: stop everything, record nothing.
    Deleted,
}

/// The platform's parts an execution uses.
#[derive(Clone)]
pub(crate) struct JobPlatform {
    pub runc: Node,
    pub runsc: Option<Node>,
    pub registry: RegistryOptions,
    pub grace: Duration,
    pub hosts: Vec<(String, Vec<String>)>,
    /// `DATA_DIR/logs`: see [`log_path`].
    pub logs_dir: PathBuf,
    pub identities: Option<Arc<crate::identity::Identities>>,
}

/// Starts the task of one execution; `done` hears when it ends.
pub(crate) fn spawn(
    platform: JobPlatform,
    plan: ExecutionPlan,
    gen1: bool,
    records: Arc<dyn Records>,
    done: mpsc::UnboundedSender<crate::revision::Outcome>,
) -> mpsc::UnboundedSender<Message> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let execution = plan.name.clone();
        run(platform, plan, gen1, records, rx).await;
        let _ = done.send(crate::revision::Outcome::ExecutionEnded { execution });
    });
    tx
}

/// Where an attempt's logs are kept: `{project}/{job}/{execution}/{index}/{attempt}.jsonl`
/// below the logs directory.
pub fn log_path(
    logs_dir: &std::path::Path,
    project: &str,
    job: &str,
    execution: &str,
    index: u32,
    attempt: u32,
) -> PathBuf {
    logs_dir
        .join(project)
        .join(job)
        .join(execution)
        .join(index.to_string())
        .join(format!("{attempt}.jsonl"))
}

async fn run(
    platform: JobPlatform,
    plan: ExecutionPlan,
    gen1: bool,
    records: Arc<dyn Records>,
    mut messages: mpsc::UnboundedReceiver<Message>,
) {
    let mut progress = match plan.resumed.clone() {
        Some(tasks) => Progress::resume(tasks, plan.parallelism, plan.max_retries),
        None => Progress::new(plan.task_count, plan.parallelism, plan.max_retries),
    };
    blocking(|| records.tasks(&progress.tasks));
    let node = if gen1 {
        match &platform.runsc {
            Some(n) => n.clone(),
            None => {
                fail_all(&mut progress, "The first generation execution environment (gVisor, runsc) is not available on this machine.");
                blocking(|| {
                    records.ended(&progress, ExecutionEnd::Failed, "runsc is not installed")
                });
                return;
            }
        }
    } else {
        platform.runc.clone()
    };

    let images = crate::images::pull(
        node.clone(),
        plan.containers.iter().map(|c| c.image.clone()).collect(),
        platform.registry.clone(),
    );
    tokio::pin!(images);
    let images = tokio::select! {
        pulled = &mut images => match pulled {
            Ok(images) => images,
            Err(e) => {
                fail_all(&mut progress, &e);
                blocking(|| records.ended(&progress, ExecutionEnd::Failed, &e));
                return;
            }
        },
        message = messages.recv() => {
            if !matches!(message, Some(Message::Deleted) | None) {
                progress.cancel();
                blocking(|| records.ended(&progress, ExecutionEnd::Cancelled, ""));
            }
            return;
        }
    };

    let (cancel_tx, cancel_rx) = watch::channel(false);
    let mut running: JoinSet<(u32, AttemptEnd)> = JoinSet::new();
    let mut deleted = false;
    let mut closed = false;
    let mut attempt_ids: HashMap<u32, u32> = HashMap::new();
    loop {
        for index in progress.start_next() {
            let task = &progress.tasks[index as usize];
            let attempt = task.attempt;
            blocking(|| records.attempt_started(task));
            attempt_ids.insert(index, attempt);
            let spec = AttemptSpec {
                instance_id: instance_id(&plan.execution, index, attempt),
                containers: plan.containers.clone(),
                images: images.clone(),
                volumes: plan.volumes.clone(),
                env: vec![
                    ("CLOUD_RUN_JOB".into(), plan.job.clone()),
                    ("CLOUD_RUN_EXECUTION".into(), plan.execution.clone()),
                    ("CLOUD_RUN_TASK_INDEX".into(), index.to_string()),
                    ("CLOUD_RUN_TASK_ATTEMPT".into(), attempt.to_string()),
                    ("CLOUD_RUN_TASK_COUNT".into(), plan.task_count.to_string()),
                ],
                hosts: platform.hosts.clone(),
                identities: platform.identities.clone(),
                identity: plan.identity.clone(),
                timeout: plan.timeout,
                grace: platform.grace,
                log_path: log_path(
                    &platform.logs_dir,
                    &plan.project,
                    &plan.job,
                    &plan.execution,
                    index,
                    attempt,
                ),
            };
            let node = node.clone();
            let cancel = cancel_rx.clone();
            running.spawn(async move { (index, attempt::run(&node, spec, cancel).await) });
        }
        if running.is_empty() {
            break;
        }
        if !deleted {
            blocking(|| records.progress(&progress));
        }
        tokio::select! {
            Some(joined) = running.join_next() => match joined {
                Ok((index, end)) => {
                    progress.attempt_ended(index, end);
                    if !deleted {
                        blocking(|| records.attempt_ended(&progress.tasks[index as usize]));
                    }
                }
                Err(e) => tracing::error!(execution = %plan.name, "a task attempt panicked: {e}"),
            },
            message = messages.recv(), if !closed => {
                match message {
                    Some(Message::Cancel) => {}
                    Some(Message::Deleted) => deleted = true,
                    None => { closed = true; deleted = true; }
                }
                if !progress.is_cancelled() {
                    progress.cancel();
                    let _ = cancel_tx.send(true);
                    if !deleted {
                        blocking(|| records.progress(&progress));
                    }
                }
            }
        }
    }
    if deleted {
        return;
    }
    let end = progress.end().unwrap_or(ExecutionEnd::Failed);
    let message = match end {
        ExecutionEnd::Failed => progress
            .first_failure()
            .map(|t| {
                let last = t.last.as_ref();
                format!(
                    "Task {} failed after {} attempt(s): {}",
                    t.index,
                    t.attempt + 1,
                    last.map(|l| l.message.as_str()).unwrap_or("it failed")
                )
            })
            .unwrap_or_else(|| "The execution failed.".into()),
        ExecutionEnd::Cancelled => "The execution was cancelled.".into(),
        ExecutionEnd::Succeeded => String::new(),
    };
    blocking(|| records.ended(&progress, end, &message));
}

/// Runs a store write (SQLite, blocking) without stalling the runtime's other tasks.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

/// Marks every task failed with `message`: the execution could not run at all (retries
/// would fail the same way).
fn fail_all(progress: &mut Progress, message: &str) {
    for t in progress.tasks.iter_mut() {
        t.status = super::progress::TaskStatus::Failed;
        t.last = Some(AttemptEnd {
            exit_code: None,
            signal: None,
            message: message.to_string(),
            succeeded: false,
        });
    }
}

/// `[a-z0-9-]`, at most 40: the execution id's end (its random part) keeps attempts of
/// different executions apart.
fn instance_id(execution: &str, index: u32, attempt: u32) -> String {
    let suffix = format!("-{index}-{attempt}");
    let keep = 40 - suffix.len().min(20);
    let start = execution.len().saturating_sub(keep);
    format!("{}{suffix}", execution[start..].trim_start_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_fit_the_runtime() {
        let id = instance_id("a-very-long-job-name-that-goes-on-and-on-x1y2z", 9999, 10);
        assert!(id.len() <= 40, "{id}");
        assert!(id.ends_with("-9999-10"));
        assert!(id.contains("x1y2z"));
        assert_eq!(instance_id("job-abcde", 0, 0), "job-abcde-0-0");
    }
}
