//! google/cloud/run/v2/execution.proto: one run of a job, its tasks made of the job's
//! template with the run's overrides.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::condition::{types, Condition, ConditionState};
use crate::job::{ExecutionTemplate, Job, TaskTemplate};
use crate::json::is_default;
use crate::vendor::LaunchStage;
use crate::wkt::Timestamp;

/// An execution (output only as a whole: executions are made by running a job).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Execution {
    /// `projects/{project}/locations/{location}/jobs/{job}/executions/{execution}`.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    #[serde(skip_serializing_if = "is_default")]
    pub uid: String,
    #[serde(skip_serializing_if = "is_default")]
    pub creator: String,
    #[serde(with = "crate::json::int64", skip_serializing_if = "is_default")]
    pub generation: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_default")]
    pub annotations: BTreeMap<String, String>,
    #[serde(alias = "create_time", skip_serializing_if = "Option::is_none")]
    pub create_time: Option<Timestamp>,
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
    #[serde(alias = "launch_stage", skip_serializing_if = "is_default")]
    pub launch_stage: LaunchStage,
    /// The parent job's id (`hello`), as Cloud Run shows it.
    #[serde(skip_serializing_if = "is_default")]
    pub job: String,
    /// Tasks at once; 0: as many as the platform allows.
    #[serde(with = "crate::json::int32", skip_serializing_if = "is_default")]
    pub parallelism: i32,
    #[serde(
        alias = "task_count",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub task_count: i32,
    /// What each task runs (the job's, with the run's overrides).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<TaskTemplate>,
    #[serde(skip_serializing_if = "is_default")]
    pub reconciling: bool,
    /// `Completed`, `ResourcesAvailable`...
    #[serde(skip_serializing_if = "is_default")]
    pub conditions: Vec<Condition>,
    #[serde(
        alias = "observed_generation",
        with = "crate::json::int64",
        skip_serializing_if = "is_default"
    )]
    pub observed_generation: i64,
    #[serde(
        alias = "running_count",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub running_count: i32,
    #[serde(
        alias = "succeeded_count",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub succeeded_count: i32,
    #[serde(
        alias = "failed_count",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub failed_count: i32,
    #[serde(
        alias = "cancelled_count",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub cancelled_count: i32,
    #[serde(
        alias = "retried_count",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub retried_count: i32,
    #[serde(alias = "log_uri", skip_serializing_if = "is_default")]
    pub log_uri: String,
    #[serde(alias = "satisfies_pzs", skip_serializing_if = "is_default")]
    pub satisfies_pzs: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub etag: String,
}

/// The answer to `ListExecutions`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListExecutionsResponse {
    #[serde(skip_serializing_if = "is_default")]
    pub executions: Vec<Execution>,
    #[serde(alias = "next_page_token", skip_serializing_if = "is_default")]
    pub next_page_token: String,
}

/// The body of `POST /v2/{name=projects/*/locations/*/jobs/*/executions/*}:cancel`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CancelExecutionRequest {
    /// The execution's full name (the path's; ignored in the body).
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    #[serde(alias = "validate_only", skip_serializing_if = "is_default")]
    pub validate_only: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub etag: String,
}

impl Execution {
    /// A new execution of `job` (its `name` its full name, its defaults applied) named
    /// `execution_id`, made of `template` (the job's execution template with the run's
    /// overrides applied, see [`crate::job::Overrides::apply`]): labels, annotations,
    /// `parallelism`, `taskCount` and the task template copied, `job` the job id,
    /// `reconciling`, and the `Completed` and `ResourcesAvailable` conditions pending.
    /// `uid`, `etag` and times are left for the caller.
    pub fn from_job(job: &Job, execution_id: &str, template: &ExecutionTemplate) -> Execution {
        let ExecutionTemplate {
            labels,
            annotations,
            parallelism,
            task_count,
            template,
        } = template.clone();
        Execution {
            name: format!("{}/executions/{execution_id}", job.name),
            generation: 1,
            labels,
            annotations,
            launch_stage: job.launch_stage,
            job: job.id().to_string(),
            parallelism,
            task_count,
            template,
            reconciling: true,
            conditions: [types::COMPLETED, types::RESOURCES_AVAILABLE]
                .into_iter()
                .map(|kind| Condition::new(kind, ConditionState::Pending))
                .collect(),
            ..Default::default()
        }
    }

    /// The execution id, the last segment of its name.
    pub fn id(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or("")
    }

    /// The full name of the parent job (`projects/p/locations/l/jobs/j`).
    pub fn job_name(&self) -> &str {
        self.name
            .rsplit_once("/executions/")
            .map_or("", |(job, _)| job)
    }

    /// The `Completed` condition, if any.
    pub fn completed_condition(&self) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.kind == types::COMPLETED)
    }

    /// Whether the execution ran to its end (succeeded, failed or was cancelled): its
    /// `Completed` condition succeeded or failed, or it has a `completionTime`.
    pub fn is_finished(&self) -> bool {
        self.completion_time.is_some()
            || self.completed_condition().is_some_and(|c| {
                matches!(c.state, ConditionState::Succeeded | ConditionState::Failed)
            })
    }
}
