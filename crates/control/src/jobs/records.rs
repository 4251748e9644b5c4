//! An execution's progress written to the store in the API's terms: Task records (their
//! `Completed` condition, `retried`, `lastAttemptResult`, times), the Execution's counters
//! and conditions, the job's `latestCreatedExecution`, and the operations (`:run`,
//! `:cancel`) finished when the execution ends.

use std::sync::Arc;

use api::condition::{types, ExecutionReason};
use api::http::{EXECUTION_KIND, JOB_KIND, OPERATION_KIND, TASK_KIND};
use api::job::CompletionStatus;
use api::{
    Condition, ConditionState, EnumEncoding, Execution, Job, Operation, Status, Task,
    TaskAttemptResult, Timestamp,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use store::{Precondition, Store};

use super::execution::Records;
use super::progress::{ExecutionEnd, Progress, TaskProgress, TaskStatus};

/// How many times a read-modify-write is retried when the record changed under it.
const ATTEMPTS: usize = 10;

pub(crate) struct StoreRecords {
    pub store: Arc<dyn Store>,
    /// The execution's full name.
    pub execution: String,
}

/// Reads `name`, applies `change`, writes it back if it changed; retried on conflicts.
/// A record that is gone is left gone.
pub(crate) fn update<T: Serialize + DeserializeOwned + PartialEq + Clone>(
    store: &dyn Store,
    kind: &str,
    name: &str,
    mut change: impl FnMut(&mut T),
) -> Option<T> {
    for _ in 0..ATTEMPTS {
        let record = match store.get(kind, name) {
            Ok(Some(r)) => r,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(kind, name, "reading: {e}");
                return None;
            }
        };
        let Ok(mut value) = api::json::from_value::<T>(record.doc) else {
            tracing::warn!(kind, name, "unreadable record");
            return None;
        };
        let before = value.clone();
        change(&mut value);
        if value == before {
            return Some(value);
        }
        let doc = api::json::to_value(&value, EnumEncoding::Name);
        match store.put(kind, name, doc, Precondition::Revision(record.revision)) {
            Ok(_) => return Some(value),
            Err(e) if e.is_conflict() => continue,
            Err(e) => {
                tracing::warn!(kind, name, "writing: {e}");
                return None;
            }
        }
    }
    tracing::warn!(kind, name, "gave up writing after {ATTEMPTS} conflicts");
    None
}

fn task_condition(t: &TaskProgress) -> Condition {
    let (state, reason) = match t.status {
        TaskStatus::Pending => (ConditionState::Pending, None),
        TaskStatus::Running => (ConditionState::Reconciling, None),
        TaskStatus::Succeeded => (ConditionState::Succeeded, None),
        TaskStatus::Failed => (
            ConditionState::Failed,
            Some(ExecutionReason::NonZeroExitCode),
        ),
        TaskStatus::Cancelled => (ConditionState::Failed, Some(ExecutionReason::Cancelled)),
    };
    let mut c = Condition::new(types::COMPLETED, state);
    c.execution_reason = reason;
    if matches!(t.status, TaskStatus::Failed | TaskStatus::Cancelled) {
        c.message = t
            .last
            .as_ref()
            .map(|l| l.message.clone())
            .unwrap_or_else(|| "The task was cancelled before it ran.".into());
    }
    c
}

/// A stored task's state, to resume an execution.
pub(crate) fn task_progress(t: &Task) -> TaskProgress {
    let completed = t.conditions.iter().find(|c| c.kind == types::COMPLETED);
    let status = match completed.map(|c| (c.state, c.execution_reason)) {
        Some((ConditionState::Succeeded, _)) => TaskStatus::Succeeded,
        Some((ConditionState::Failed, Some(ExecutionReason::Cancelled))) => TaskStatus::Cancelled,
        Some((ConditionState::Failed, _)) => TaskStatus::Failed,
        Some((ConditionState::Reconciling, _)) => TaskStatus::Running,
        _ => TaskStatus::Pending,
    };
    let retried = u32::try_from(t.retried).unwrap_or(0);
    TaskProgress {
        index: u32::try_from(t.index).unwrap_or(0),
        status,
        attempt: retried,
        retried,
        last: t
            .last_attempt_result
            .as_ref()
            .map(|r| super::progress::AttemptEnd {
                exit_code: Some(r.exit_code),
                signal: (r.term_signal != 0).then_some(r.term_signal),
                message: r
                    .status
                    .as_ref()
                    .map(|s| s.message.clone())
                    .unwrap_or_default(),
                succeeded: r.exit_code == 0,
            }),
    }
}

impl StoreRecords {
    fn task_name(&self, index: u32) -> String {
        let id = self.execution.rsplit('/').next().unwrap_or("");
        format!(
            "{}/tasks/{}",
            self.execution,
            api::naming::task_id(id, index as i32)
        )
    }

    fn write_task(&self, t: &TaskProgress, started: bool) {
        let now = Timestamp::now();
        update::<Task>(&*self.store, TASK_KIND, &self.task_name(t.index), |task| {
            let condition = task_condition(t);
            let same = task.conditions.iter().any(|c| {
                c.kind == types::COMPLETED
                    && c.state == condition.state
                    && c.message == condition.message
            });
            if !same {
                task.conditions.retain(|c| c.kind != types::COMPLETED);
                task.conditions.push(condition);
            }
            task.retried = t.retried as i32;
            if started {
                task.start_time = Some(now);
                task.completion_time = None;
                // Its images are there and its instance is being made.
                for c in task.conditions.iter_mut() {
                    if c.kind == types::RESOURCES_AVAILABLE && c.state != ConditionState::Succeeded
                    {
                        *c = Condition::new(types::RESOURCES_AVAILABLE, ConditionState::Succeeded);
                    }
                }
            }
            if let Some(last) = &t.last {
                task.last_attempt_result = Some(TaskAttemptResult {
                    status: Some(if last.succeeded {
                        Status::default()
                    } else {
                        Status::new(api::Code::Unknown, last.message.clone())
                    }),
                    exit_code: last.exit_code.unwrap_or(0),
                    term_signal: last.signal.unwrap_or(0),
                });
            }
            let finished = matches!(
                t.status,
                TaskStatus::Succeeded | TaskStatus::Failed | TaskStatus::Cancelled
            );
            task.reconciling = !finished;
            if finished && task.completion_time.is_none() {
                task.completion_time = Some(now);
            }
            task.update_time = Some(now);
            task.etag = String::new();
            task.etag = task.compute_etag();
        });
    }

    fn write_counts(
        &self,
        progress: &Progress,
        change: impl Fn(&mut Execution),
    ) -> Option<Execution> {
        let c = progress.counts();
        update::<Execution>(&*self.store, EXECUTION_KIND, &self.execution, |e| {
            let before = e.clone();
            e.running_count = c.running as i32;
            e.succeeded_count = c.succeeded as i32;
            e.failed_count = c.failed as i32;
            e.cancelled_count = c.cancelled as i32;
            e.retried_count = c.retried as i32;
            change(e);
            if *e != before {
                e.update_time = Some(Timestamp::now());
            }
            e.etag = String::new();
            e.etag = e.compute_etag();
        })
    }
}

impl Records for StoreRecords {
    fn tasks(&self, tasks: &[TaskProgress]) {
        let Ok(Some(record)) = self.store.get(EXECUTION_KIND, &self.execution) else {
            return;
        };
        let Ok(execution) = api::json::from_value::<Execution>(record.doc) else {
            return;
        };
        for t in tasks {
            let task = Task::for_execution(&execution, t.index as i32);
            let doc = api::json::to_value(&task, EnumEncoding::Name);
            // Present already when resuming.
            match self
                .store
                .put(TASK_KIND, &task.name, doc, Precondition::Absent)
            {
                Ok(_) => {}
                Err(e)
                    if e.is_conflict() || matches!(e, store::StoreError::AlreadyExists { .. }) => {}
                Err(e) => tracing::warn!(task = %task.name, "creating: {e}"),
            }
        }
        let now = Timestamp::now();
        update::<Execution>(&*self.store, EXECUTION_KIND, &self.execution, |e| {
            if e.start_time.is_none() {
                e.start_time = Some(now);
            }
        });
    }

    fn attempt_started(&self, task: &TaskProgress) {
        self.write_task(task, true);
    }

    fn attempt_ended(&self, task: &TaskProgress) {
        self.write_task(task, false);
    }

    fn progress(&self, progress: &Progress) {
        let cancelling = progress.is_cancelled();
        self.write_counts(progress, |e| {
            for c in e.conditions.iter_mut() {
                if c.kind == types::RESOURCES_AVAILABLE && c.state != ConditionState::Succeeded {
                    *c = Condition::new(types::RESOURCES_AVAILABLE, ConditionState::Succeeded);
                }
                if c.kind == types::COMPLETED && c.state == ConditionState::Pending && !cancelling {
                    *c = Condition::new(types::COMPLETED, ConditionState::Reconciling);
                }
            }
        });
    }

    fn ended(&self, progress: &Progress, end: ExecutionEnd, message: &str) {
        // Tasks that never ran or were stopped get their final state too.
        for t in &progress.tasks {
            if matches!(t.status, TaskStatus::Cancelled | TaskStatus::Failed) {
                self.write_task(t, false);
            }
        }
        let now = Timestamp::now();
        let (state, reason) = match end {
            ExecutionEnd::Succeeded => (ConditionState::Succeeded, None),
            ExecutionEnd::Failed => (
                ConditionState::Failed,
                Some(ExecutionReason::NonZeroExitCode),
            ),
            ExecutionEnd::Cancelled => (ConditionState::Failed, Some(ExecutionReason::Cancelled)),
        };
        let Some(execution) = self.write_counts(progress, |e| {
            let mut c = Condition::new(types::COMPLETED, state).with_message(message);
            c.execution_reason = reason;
            e.conditions.retain(|c| c.kind != types::COMPLETED);
            e.conditions.insert(0, c);
            e.reconciling = false;
            e.completion_time = Some(now);
            e.observed_generation = e.generation;
        }) else {
            return;
        };
        let status = match end {
            ExecutionEnd::Succeeded => CompletionStatus::Succeeded,
            ExecutionEnd::Failed => CompletionStatus::Failed,
            ExecutionEnd::Cancelled => CompletionStatus::Cancelled,
        };
        update::<Job>(&*self.store, JOB_KIND, execution.job_name(), |job| {
            if let Some(latest) = job.latest_created_execution.as_mut() {
                if latest.name == execution.name {
                    latest.completion_time = Some(now);
                    latest.completion_status = status;
                }
            }
        });
        finish_operations(&*self.store, &execution, end, message);
    }
}

/// Finishes the running operations (`:run`, `:cancel`) whose metadata is `execution`.
fn finish_operations(store: &dyn Store, execution: &Execution, end: ExecutionEnd, message: &str) {
    let location = execution
        .name
        .split("/jobs/")
        .next()
        .unwrap_or_default()
        .to_string();
    let mut token: Option<String> = None;
    loop {
        let Ok(page) = store.list(
            OPERATION_KIND,
            &location,
            store::MAX_PAGE_SIZE,
            token.as_deref(),
        ) else {
            return;
        };
        for record in page.records {
            let Ok(op) = api::json::from_value::<Operation>(record.doc) else {
                continue;
            };
            let Some(meta) = op.metadata.as_ref().and_then(|m| m.as_execution()) else {
                continue;
            };
            if op.done || meta.name != execution.name {
                continue;
            }
            // As Cloud Run: a cancelled execution's `:run` finishes without an error, its
            // response the execution (with its cancelled count); a failed one with the
            // failure.
            let failed = end == ExecutionEnd::Failed;
            let result = if failed {
                Err(Status::failed_precondition(message.to_string()))
            } else {
                Ok(api::json::to_value(execution, EnumEncoding::Name))
            };
            if let Err(e) = api::complete_operation(store, &op.name, result) {
                tracing::warn!(operation = %op.name, "finishing: {}", e.message);
            } else if failed {
                // The metadata shows the execution as it ended, as on success.
                update::<Operation>(store, OPERATION_KIND, &op.name, |o| {
                    o.metadata = Some(execution.clone().into());
                });
            }
        }
        match page.next_page_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return,
        }
    }
}
