//! google/cloud/run/v2/task.proto: one task of an execution, run to completion and
//! retried up to `maxRetries`. Tasks are written by the controller
//! ([`Task::for_execution`]), never by the API.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::condition::{types, Condition, ConditionState};
use crate::defaults::{effective_max_retries, effective_task_timeout};
use crate::execution::Execution;
use crate::json::is_default;
use crate::k8s::{Container, Volume};
use crate::naming::{new_uid, task_id};
use crate::status::Status;
use crate::vendor::{ExecutionEnvironment, NodeSelector, VpcAccess};
use crate::wkt::{Duration, Timestamp};

/// A task (output only).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Task {
    /// `projects/{p}/locations/{l}/jobs/{job}/executions/{execution}/tasks/{task}`.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    #[serde(skip_serializing_if = "is_default")]
    pub uid: String,
    #[serde(with = "crate::json::int64", skip_serializing_if = "is_default")]
    pub generation: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_default")]
    pub annotations: BTreeMap<String, String>,
    #[serde(alias = "create_time", skip_serializing_if = "Option::is_none")]
    pub create_time: Option<Timestamp>,
    #[serde(alias = "scheduled_time", skip_serializing_if = "Option::is_none")]
    pub scheduled_time: Option<Timestamp>,
    #[serde(alias = "start_time", skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    #[serde(alias = "completion_time", skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Timestamp>,
    #[serde(alias = "update_time", skip_serializing_if = "Option::is_none")]
    pub update_time: Option<Timestamp>,
    #[serde(alias = "delete_time", skip_serializing_if = "Option::is_none")]
    pub delete_time: Option<Timestamp>,
    #[serde(alias = "expire_time", skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<Timestamp>,
    /// The job's id (`hello`).
    #[serde(skip_serializing_if = "is_default")]
    pub job: String,
    /// The execution's id (`hello-x7k2p`).
    #[serde(skip_serializing_if = "is_default")]
    pub execution: String,
    #[serde(skip_serializing_if = "is_default")]
    pub containers: Vec<Container>,
    #[serde(skip_serializing_if = "is_default")]
    pub volumes: Vec<Volume>,
    /// A plain `int32` here (the template's is `optional`).
    #[serde(
        alias = "max_retries",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub max_retries: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(alias = "service_account", skip_serializing_if = "is_default")]
    pub service_account: String,
    #[serde(alias = "execution_environment", skip_serializing_if = "is_default")]
    pub execution_environment: ExecutionEnvironment,
    #[serde(skip_serializing_if = "is_default")]
    pub reconciling: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub conditions: Vec<Condition>,
    #[serde(
        alias = "observed_generation",
        with = "crate::json::int64",
        skip_serializing_if = "is_default"
    )]
    pub observed_generation: i64,
    /// 0 to `taskCount - 1`, unique in its execution.
    #[serde(with = "crate::json::int32", skip_serializing_if = "is_default")]
    pub index: i32,
    /// How many times it was retried.
    #[serde(with = "crate::json::int32", skip_serializing_if = "is_default")]
    pub retried: i32,
    #[serde(alias = "last_attempt_result", skip_serializing_if = "Option::is_none")]
    pub last_attempt_result: Option<TaskAttemptResult>,
    #[serde(alias = "encryption_key", skip_serializing_if = "is_default")]
    pub encryption_key: String,
    #[serde(alias = "vpc_access", skip_serializing_if = "Option::is_none")]
    pub vpc_access: Option<VpcAccess>,
    #[serde(alias = "log_uri", skip_serializing_if = "is_default")]
    pub log_uri: String,
    #[serde(alias = "satisfies_pzs", skip_serializing_if = "is_default")]
    pub satisfies_pzs: bool,
    #[serde(alias = "node_selector", skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<NodeSelector>,
    #[serde(
        alias = "gpu_zonal_redundancy_disabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub gpu_zonal_redundancy_disabled: Option<bool>,
    #[serde(skip_serializing_if = "is_default")]
    pub etag: String,
}

/// How a task's attempt ended. At most one of `exitCode` and `termSignal` is set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskAttemptResult {
    /// `OK` (code 0) when the attempt succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(
        alias = "exit_code",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub exit_code: i32,
    /// The signal that ended the container (SIGKILL: 9), when the system ended it.
    #[serde(
        alias = "term_signal",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub term_signal: i32,
}

/// The answer to `ListTasks`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListTasksResponse {
    #[serde(skip_serializing_if = "is_default")]
    pub tasks: Vec<Task>,
    #[serde(alias = "next_page_token", skip_serializing_if = "is_default")]
    pub next_page_token: String,
}

impl Task {
    /// Task `index` of `execution`, as the controller writes it before it runs: its
    /// name (`{execution}/tasks/{task_id(execution id, index)}`), `job` and
    /// `execution` ids, labels and annotations of the execution, containers, volumes,
    /// `maxRetries` (3 when the template leaves it out), `timeout` (600 s when left
    /// out), service account, execution environment and the rest of the execution's
    /// task template; a fresh uid, generation 1, `reconciling`, the `Completed` and
    /// `ResourcesAvailable` conditions pending, create and update times now and the
    /// etag.
    pub fn for_execution(execution: &Execution, index: i32) -> Task {
        let now = Timestamp::now();
        let template = execution.template.clone().unwrap_or_default();
        let max_retries = effective_max_retries(&template);
        let timeout = effective_task_timeout(&template);
        let crate::job::TaskTemplate {
            containers,
            volumes,
            max_retries: _,
            timeout: _,
            service_account,
            execution_environment,
            encryption_key,
            vpc_access,
            node_selector,
            gpu_zonal_redundancy_disabled,
        } = template;
        let job = if execution.job.is_empty() {
            execution
                .job_name()
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_string()
        } else {
            execution.job.clone()
        };
        let mut task = Task {
            name: format!(
                "{}/tasks/{}",
                execution.name,
                task_id(execution.id(), index)
            ),
            uid: new_uid(),
            generation: 1,
            labels: execution.labels.clone(),
            annotations: execution.annotations.clone(),
            create_time: Some(now),
            update_time: Some(now),
            job,
            execution: execution.id().to_string(),
            containers,
            volumes,
            max_retries,
            timeout: Some(timeout),
            service_account,
            execution_environment,
            reconciling: true,
            conditions: [types::COMPLETED, types::RESOURCES_AVAILABLE]
                .into_iter()
                .map(|kind| Condition {
                    last_transition_time: Some(now),
                    ..Condition::new(kind, ConditionState::Pending)
                })
                .collect(),
            index,
            encryption_key,
            vpc_access,
            node_selector,
            gpu_zonal_redundancy_disabled,
            ..Default::default()
        };
        task.etag = task.compute_etag();
        task
    }

    /// The task id, the last segment of its name.
    pub fn id(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or("")
    }

    /// The full name of the parent execution.
    pub fn execution_name(&self) -> &str {
        self.name.rsplit_once("/tasks/").map_or("", |(e, _)| e)
    }
}
