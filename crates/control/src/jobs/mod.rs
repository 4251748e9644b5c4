//! Jobs: executions of N tasks, some in parallel, each attempt its own instance, retried on
//! failure.
//!
//! - [`progress`]: the rules, pure;
//! - [`attempt`]: one task attempt as an instance, to its exit, timeout or cancellation;
//! - [`execution`]: one execution's task, running attempts as the rules say;
//! - [`records`]: its progress in the store, in the API's terms.
//!
//! Every controller pass hands [`Jobs::pass`] the stored executions: one not finished and
//! not running gets a task (an execution interrupted by a stop resumes: its attempts that
//! were running count as failed attempts and are retried within `maxRetries`); one whose
//! `Completed` condition says `CANCELLING` is cancelled; one whose record is gone is
//! stopped.

pub(crate) mod attempt;
pub mod execution;
pub mod progress;
pub(crate) mod records;
pub(crate) mod schedule;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use api::condition::ExecutionReason;
use api::http::TASK_KIND;
use api::{Execution, ExecutionEnvironment, Task};
use store::Store;
use tokio::sync::mpsc;

use crate::lock;
use crate::revision::Outcome;
use execution::{ExecutionPlan, JobPlatform, Message};

pub(crate) struct Jobs {
    pub platform: JobPlatform,
    pub store: Arc<dyn Store>,
    /// Attempts at once when an execution's parallelism is 0 (`homerun up
    /// --max-task-parallelism`), and at most that otherwise.
    pub max_parallelism: u32,
    running: Mutex<HashMap<String, mpsc::UnboundedSender<Message>>>,
    cancelled: Mutex<HashSet<String>>,
}

impl Jobs {
    pub fn new(platform: JobPlatform, store: Arc<dyn Store>, max_parallelism: u32) -> Self {
        Jobs {
            platform,
            store,
            max_parallelism: max_parallelism.max(1),
            running: Mutex::new(HashMap::new()),
            cancelled: Mutex::new(HashSet::new()),
        }
    }

    /// Starts, cancels or stops execution tasks to match `executions` (all stored ones).
    pub fn pass(&self, executions: &[Execution], outcomes: &mpsc::UnboundedSender<Outcome>) {
        let mut running = lock(&self.running);
        let present: HashSet<&str> = executions.iter().map(|e| e.name.as_str()).collect();
        for (name, tx) in running.iter() {
            if !present.contains(name.as_str()) {
                let _ = tx.send(Message::Deleted);
            }
        }
        for e in executions {
            if e.is_finished() {
                continue;
            }
            let cancelling = e
                .completed_condition()
                .is_some_and(|c| c.execution_reason == Some(ExecutionReason::Cancelling));
            if let Some(tx) = running.get(&e.name) {
                if cancelling && lock(&self.cancelled).insert(e.name.clone()) {
                    let _ = tx.send(Message::Cancel);
                }
                continue;
            }
            // Tasks exist when the execution ran before homerun stopped.
            let mine: Vec<Task> =
                match crate::reconcile::list_under(&*self.store, TASK_KIND, &e.name) {
                    Ok(tasks) => tasks.into_iter().map(|(t, _)| t).collect(),
                    Err(err) => {
                        tracing::warn!(execution = %e.name, "reading its tasks: {err}");
                        continue;
                    }
                };
            let plan = match self.plan(e, &mine) {
                Ok(p) => p,
                Err(message) => {
                    tracing::warn!(execution = %e.name, "cannot run: {message}");
                    continue;
                }
            };
            let gen1 = e
                .template
                .as_ref()
                .is_some_and(|t| t.execution_environment == ExecutionEnvironment::Gen1);
            let records = Arc::new(records::StoreRecords {
                store: self.store.clone(),
                execution: e.name.clone(),
            });
            let tx = execution::spawn(self.platform.clone(), plan, gen1, records, outcomes.clone());
            if cancelling {
                lock(&self.cancelled).insert(e.name.clone());
                let _ = tx.send(Message::Cancel);
            }
            running.insert(e.name.clone(), tx);
        }
    }

    /// An execution's task ended.
    pub fn ended(&self, execution: &str) {
        lock(&self.running).remove(execution);
        lock(&self.cancelled).remove(execution);
    }

    /// Stops every execution (the platform is shutting down): running attempts are
    /// stopped and their executions resume at the next start.
    pub fn running(&self) -> usize {
        lock(&self.running).len()
    }

    pub fn stop_all(&self) {
        for tx in lock(&self.running).values() {
            let _ = tx.send(Message::Deleted);
        }
    }

    fn plan(&self, e: &Execution, tasks: &[Task]) -> Result<ExecutionPlan, String> {
        let template = e.template.clone().unwrap_or_default();
        let containers = template
            .containers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let name = if c.name.is_empty() {
                    format!("container-{i}")
                } else {
                    c.name.clone()
                };
                crate::spec::container_plan(c, name, None)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let task_count = u32::try_from(e.task_count.max(1)).unwrap_or(1);
        let parallelism = match u32::try_from(e.parallelism).unwrap_or(0) {
            0 => self.max_parallelism,
            p => p.min(self.max_parallelism),
        };
        let resumed = (!tasks.is_empty()).then(|| {
            let mut progress: Vec<progress::TaskProgress> = (0..task_count)
                .map(|index| progress::TaskProgress {
                    index,
                    status: progress::TaskStatus::Pending,
                    attempt: 0,
                    retried: 0,
                    last: None,
                })
                .collect();
            for t in tasks {
                let p = records::task_progress(t);
                if let Some(slot) = progress.get_mut(p.index as usize) {
                    *slot = p;
                }
            }
            progress
        });
        let (volumes, secret_volumes) = crate::spec::volumes(&template.volumes)?;
        let project = e.name.split('/').nth(1).unwrap_or_default().to_string();
        Ok(ExecutionPlan {
            name: e.name.clone(),
            project: project.clone(),
            job: e.job.clone(),
            execution: e.id().to_string(),
            task_count,
            parallelism,
            max_retries: u32::try_from(api::defaults::effective_max_retries(&template))
                .unwrap_or(3),
            timeout: api::defaults::effective_task_timeout(&template)
                .to_std()
                .unwrap_or(std::time::Duration::from_secs(600)),
            identity: Arc::new(crate::identity::IdentityPlan::new(
                &project,
                &template.service_account,
                &containers,
                &secret_volumes,
            )),
            containers,
            volumes,
            resumed,
        })
    }
}
