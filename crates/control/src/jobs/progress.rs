//! One execution's progress as Cloud Run runs it, without I/O: which task attempts to start
//! (index order, at most `parallelism` at once), what an attempt's end means (success; a
//! retry while `maxRetries` allows; the task failed), and when the execution is done.
//!
//! The rules: exit 0 succeeds; a non-zero exit, an OOM kill or a timeout fails the attempt,
//! which is retried until `maxRetries`. The execution succeeds when every task succeeded
//! and fails once any task exhausted its retries: tasks running then finish, no new one
//! starts, and the tasks that never started count as cancelled. A cancelled execution
//! starts nothing more, and its running tasks are stopped and counted as cancelled.

/// Where one task is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskStatus {
    /// Waiting for a slot; `attempt` is the attempt it will run.
    Pending,
    Running,
    Succeeded,
    /// Its last attempt failed and no retry is left.
    Failed,
    Cancelled,
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptEnd {
    /// The exit code when the container exited, None when a signal ended it.
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// What happened, for `lastAttemptResult.status.message`.
    pub message: String,
    pub succeeded: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskProgress {
    pub index: u32,
    pub status: TaskStatus,
    /// The attempt running, or to run next (0 first).
    pub attempt: u32,
    /// Attempts retried so far.
    pub retried: u32,
    pub last: Option<AttemptEnd>,
}

/// How an execution ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecutionEnd {
    Succeeded,
    Failed,
    Cancelled,
}

/// The counters Cloud Run shows on an execution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub running: u32,
    pub succeeded: u32,
    pub failed: u32,
    pub cancelled: u32,
    /// Tasks that were retried at least once.
    pub retried: u32,
}

#[derive(Clone, Debug)]
pub struct Progress {
    pub tasks: Vec<TaskProgress>,
    /// Attempts at once; 0 is taken as all tasks.
    pub parallelism: u32,
    pub max_retries: u32,
    cancelled: bool,
}

impl Progress {
    pub fn new(task_count: u32, parallelism: u32, max_retries: u32) -> Self {
        Self {
            tasks: (0..task_count)
                .map(|index| TaskProgress {
                    index,
                    status: TaskStatus::Pending,
                    attempt: 0,
                    retried: 0,
                    last: None,
                })
                .collect(),
            parallelism,
            max_retries,
            cancelled: false,
        }
    }

    /// An execution that was running when the platform stopped: attempts that were
    /// running count as failed attempts (retried within `maxRetries`).
    pub fn resume(tasks: Vec<TaskProgress>, parallelism: u32, max_retries: u32) -> Self {
        let mut p = Self {
            tasks,
            parallelism,
            max_retries,
            cancelled: false,
        };
        let running: Vec<u32> = p
            .tasks
            .iter()
            .filter(|t| t.status == TaskStatus::Running)
            .map(|t| t.index)
            .collect();
        for index in running {
            p.attempt_ended(
                index,
                AttemptEnd {
                    exit_code: None,
                    signal: None,
                    message: "The attempt was interrupted: homerun stopped while it ran.".into(),
                    succeeded: false,
                },
            );
        }
        p
    }

    fn running(&self) -> usize {
        self.tasks
            .iter()
            .filter(|t| t.status == TaskStatus::Running)
            .count()
    }

    fn any_failed(&self) -> bool {
        self.tasks.iter().any(|t| t.status == TaskStatus::Failed)
    }

    /// The tasks to start now (marked running), lowest index first.
    pub fn start_next(&mut self) -> Vec<u32> {
        if self.cancelled || self.any_failed() {
            return Vec::new();
        }
        let limit = if self.parallelism == 0 {
            self.tasks.len()
        } else {
            self.parallelism as usize
        };
        let free = limit.saturating_sub(self.running());
        let picked: Vec<u32> = self
            .tasks
            .iter()
            .filter(|t| t.status == TaskStatus::Pending)
            .take(free)
            .map(|t| t.index)
            .collect();
        for &i in &picked {
            self.tasks[i as usize].status = TaskStatus::Running;
        }
        picked
    }

    /// Records how a running attempt of `index` ended; returns the task's new status.
    pub fn attempt_ended(&mut self, index: u32, end: AttemptEnd) -> TaskStatus {
        let cancelled = self.cancelled;
        let max_retries = self.max_retries;
        let t = &mut self.tasks[index as usize];
        if t.status != TaskStatus::Running {
            return t.status.clone();
        }
        t.status = if end.succeeded {
            TaskStatus::Succeeded
        } else if cancelled {
            TaskStatus::Cancelled
        } else if t.attempt < max_retries {
            t.attempt += 1;
            t.retried += 1;
            TaskStatus::Pending
        } else {
            TaskStatus::Failed
        };
        t.last = Some(end);
        let status = t.status.clone();
        if status == TaskStatus::Failed {
            // Nothing new starts; what never started is cancelled.
            for t in self.tasks.iter_mut() {
                if t.status == TaskStatus::Pending {
                    t.status = TaskStatus::Cancelled;
                }
            }
        }
        status
    }

    /// Cancels: nothing new starts; pending tasks are cancelled at once, running ones when
    /// their attempt ends (the caller stops them). Returns the running indexes to stop.
    pub fn cancel(&mut self) -> Vec<u32> {
        self.cancelled = true;
        let mut running = Vec::new();
        for t in self.tasks.iter_mut() {
            match t.status {
                TaskStatus::Pending => t.status = TaskStatus::Cancelled,
                TaskStatus::Running => running.push(t.index),
                _ => {}
            }
        }
        running
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    /// The end, once no task runs or waits.
    pub fn end(&self) -> Option<ExecutionEnd> {
        if self
            .tasks
            .iter()
            .any(|t| matches!(t.status, TaskStatus::Pending | TaskStatus::Running))
        {
            return None;
        }
        Some(if self.cancelled {
            ExecutionEnd::Cancelled
        } else if self.any_failed() {
            ExecutionEnd::Failed
        } else {
            ExecutionEnd::Succeeded
        })
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for t in &self.tasks {
            // Cloud Run's `retriedCount`: tasks retried at least once, not retries.
            c.retried += u32::from(t.retried > 0);
            match t.status {
                TaskStatus::Running => c.running += 1,
                TaskStatus::Succeeded => c.succeeded += 1,
                TaskStatus::Failed => c.failed += 1,
                TaskStatus::Cancelled => c.cancelled += 1,
                TaskStatus::Pending => {}
            }
        }
        c
    }

    /// The first failed task, for the execution's message.
    pub fn first_failure(&self) -> Option<&TaskProgress> {
        self.tasks.iter().find(|t| t.status == TaskStatus::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> AttemptEnd {
        AttemptEnd {
            exit_code: Some(0),
            signal: None,
            message: String::new(),
            succeeded: true,
        }
    }

    fn fail(code: i32) -> AttemptEnd {
        AttemptEnd {
            exit_code: Some(code),
            signal: None,
            message: format!("exit {code}"),
            succeeded: false,
        }
    }

    #[test]
    fn parallelism_bounds_what_runs_and_indexes_go_in_order() {
        let mut p = Progress::new(5, 2, 3);
        assert_eq!(p.start_next(), vec![0, 1]);
        assert_eq!(p.start_next(), Vec::<u32>::new());
        p.attempt_ended(1, ok());
        assert_eq!(p.start_next(), vec![2]);
        for i in [0, 2] {
            p.attempt_ended(i, ok());
        }
        assert_eq!(p.start_next(), vec![3, 4]);
        p.attempt_ended(3, ok());
        p.attempt_ended(4, ok());
        assert_eq!(p.end(), Some(ExecutionEnd::Succeeded));
        assert_eq!(p.counts().succeeded, 5);
    }

    #[test]
    fn zero_parallelism_runs_everything_at_once() {
        let mut p = Progress::new(4, 0, 0);
        assert_eq!(p.start_next(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_failed_attempt_is_retried_until_max_retries() {
        let mut p = Progress::new(1, 1, 2);
        assert_eq!(p.start_next(), vec![0]);
        assert_eq!(p.attempt_ended(0, fail(1)), TaskStatus::Pending);
        assert_eq!(p.tasks[0].attempt, 1);
        assert_eq!(p.start_next(), vec![0]);
        assert_eq!(p.attempt_ended(0, fail(1)), TaskStatus::Pending);
        assert_eq!(p.start_next(), vec![0]);
        assert_eq!(p.attempt_ended(0, fail(7)), TaskStatus::Failed);
        assert_eq!(p.end(), Some(ExecutionEnd::Failed));
        let c = p.counts();
        assert_eq!((c.failed, c.retried), (1, 1), "one task, retried twice");
        assert_eq!(p.tasks[0].retried, 2);
        assert_eq!(
            p.first_failure().unwrap().last.as_ref().unwrap().exit_code,
            Some(7)
        );
    }

    #[test]
    fn retry_then_success_counts_the_retry() {
        let mut p = Progress::new(2, 2, 3);
        p.start_next();
        p.attempt_ended(0, fail(1));
        p.attempt_ended(1, ok());
        assert_eq!(p.start_next(), vec![0]);
        p.attempt_ended(0, ok());
        assert_eq!(p.end(), Some(ExecutionEnd::Succeeded));
        assert_eq!(p.counts().retried, 1);
        assert_eq!(p.tasks[0].retried, 1);
    }

    #[test]
    fn an_exhausted_task_stops_new_starts_and_running_ones_finish() {
        let mut p = Progress::new(4, 2, 0);
        p.start_next();
        p.attempt_ended(0, fail(2));
        // Task 1 still runs; 2 and 3 never start.
        assert_eq!(p.start_next(), Vec::<u32>::new());
        assert_eq!(p.end(), None);
        p.attempt_ended(1, ok());
        assert_eq!(p.end(), Some(ExecutionEnd::Failed));
        let c = p.counts();
        assert_eq!((c.succeeded, c.failed, c.cancelled), (1, 1, 2));
    }

    #[test]
    fn cancel_stops_running_and_cancels_pending() {
        let mut p = Progress::new(3, 1, 3);
        p.start_next();
        assert_eq!(p.cancel(), vec![0]);
        assert_eq!(p.start_next(), Vec::<u32>::new());
        // The stopped attempt ends with SIGTERM: cancelled, not retried.
        p.attempt_ended(
            0,
            AttemptEnd {
                exit_code: Some(143),
                signal: None,
                message: "cancelled".into(),
                succeeded: false,
            },
        );
        assert_eq!(p.end(), Some(ExecutionEnd::Cancelled));
        let c = p.counts();
        assert_eq!((c.cancelled, c.retried), (3, 0));
    }

    #[test]
    fn resuming_counts_interrupted_attempts_as_failed() {
        let mut before = Progress::new(2, 2, 1);
        before.start_next();
        before.attempt_ended(1, ok());
        let mut p = Progress::resume(before.tasks.clone(), 2, 1);
        assert_eq!(p.tasks[0].status, TaskStatus::Pending);
        assert_eq!(p.tasks[0].attempt, 1);
        assert_eq!(p.start_next(), vec![0]);
        let mut exhausted = p.clone();
        exhausted.tasks[0].status = TaskStatus::Running;
        let again = Progress::resume(exhausted.tasks, 2, 1);
        assert_eq!(again.tasks[0].status, TaskStatus::Failed);
        assert_eq!(again.end(), Some(ExecutionEnd::Failed));
    }
}
