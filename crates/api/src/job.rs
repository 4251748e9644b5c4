//! google/cloud/run/v2/job.proto, execution_template.proto and task_template.proto:
//! jobs, the executions they are run as, and `RunJobRequest` with its overrides.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::json::{is_default, proto_enum};
use crate::k8s::{Container, EnvVar, Volume};
use crate::vendor::{
    BinaryAuthorization, ExecutionEnvironment, LaunchStage, NodeSelector, VpcAccess,
};
use crate::wkt::{Duration, Timestamp};

/// A job: the template its executions are made of and, output only, what the platform
/// observed (executions made, the latest one, conditions).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Job {
    /// `projects/{project}/locations/{location}/jobs/{job}`; ignored on create (made of
    /// the parent and `jobId`).
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Output only: a UUID4.
    #[serde(skip_serializing_if = "is_default")]
    pub uid: String,
    /// Output only: bumped by every change of the desired state.
    #[serde(with = "crate::json::int64", skip_serializing_if = "is_default")]
    pub generation: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_default")]
    pub annotations: BTreeMap<String, String>,
    #[serde(alias = "create_time", skip_serializing_if = "Option::is_none")]
    pub create_time: Option<Timestamp>,
    #[serde(alias = "update_time", skip_serializing_if = "Option::is_none")]
    pub update_time: Option<Timestamp>,
    #[serde(alias = "delete_time", skip_serializing_if = "Option::is_none")]
    pub delete_time: Option<Timestamp>,
    #[serde(alias = "expire_time", skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "is_default")]
    pub creator: String,
    #[serde(alias = "last_modifier", skip_serializing_if = "is_default")]
    pub last_modifier: String,
    #[serde(skip_serializing_if = "is_default")]
    pub client: String,
    #[serde(alias = "client_version", skip_serializing_if = "is_default")]
    pub client_version: String,
    #[serde(alias = "launch_stage", skip_serializing_if = "is_default")]
    pub launch_stage: LaunchStage,
    #[serde(
        alias = "binary_authorization",
        skip_serializing_if = "Option::is_none"
    )]
    pub binary_authorization: Option<BinaryAuthorization>,
    /// Required: what executions are made of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<ExecutionTemplate>,
    #[serde(
        alias = "observed_generation",
        with = "crate::json::int64",
        skip_serializing_if = "is_default"
    )]
    pub observed_generation: i64,
    /// Output only: the `Ready` condition.
    #[serde(alias = "terminal_condition", skip_serializing_if = "Option::is_none")]
    pub terminal_condition: Option<Condition>,
    #[serde(skip_serializing_if = "is_default")]
    pub conditions: Vec<Condition>,
    /// Output only: how many executions were made of this job.
    #[serde(
        alias = "execution_count",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub execution_count: i32,
    /// Output only: the latest execution made.
    #[serde(
        alias = "latest_created_execution",
        skip_serializing_if = "Option::is_none"
    )]
    pub latest_created_execution: Option<ExecutionReference>,
    #[serde(skip_serializing_if = "is_default")]
    pub reconciling: bool,
    #[serde(alias = "satisfies_pzs", skip_serializing_if = "is_default")]
    pub satisfies_pzs: bool,
    /// oneof `create_execution`: an execution started when the job is created (refused
    /// by homerun's validation).
    #[serde(
        alias = "start_execution_token",
        skip_serializing_if = "Option::is_none"
    )]
    pub start_execution_token: Option<String>,
    /// oneof `create_execution` (refused by homerun's validation).
    #[serde(alias = "run_execution_token", skip_serializing_if = "Option::is_none")]
    pub run_execution_token: Option<String>,
    /// Output only: see [`crate::naming::etag`].
    #[serde(skip_serializing_if = "is_default")]
    pub etag: String,
}

/// What an execution is made of.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExecutionTemplate {
    #[serde(skip_serializing_if = "is_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_default")]
    pub annotations: BTreeMap<String, String>,
    /// Tasks at once, at most `taskCount`; 0: as many as the platform allows.
    #[serde(with = "crate::json::int32", skip_serializing_if = "is_default")]
    pub parallelism: i32,
    /// Tasks to run, 1 by default, at most 10 000.
    #[serde(
        alias = "task_count",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub task_count: i32,
    /// Required: what each task runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<TaskTemplate>,
}

/// What a task runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskTemplate {
    #[serde(skip_serializing_if = "is_default")]
    pub containers: Vec<Container>,
    #[serde(skip_serializing_if = "is_default")]
    pub volumes: Vec<Volume>,
    /// oneof `retries` (explicit presence): retries per task before it fails; 3 when
    /// absent, 0 to 10.
    #[serde(
        alias = "max_retries",
        with = "crate::json::opt_int32",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_retries: Option<i32>,
    /// Per attempt: 600 s by default, at most 168 h.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(alias = "service_account", skip_serializing_if = "is_default")]
    pub service_account: String,
    #[serde(alias = "execution_environment", skip_serializing_if = "is_default")]
    pub execution_environment: ExecutionEnvironment,
    #[serde(alias = "encryption_key", skip_serializing_if = "is_default")]
    pub encryption_key: String,
    #[serde(alias = "vpc_access", skip_serializing_if = "Option::is_none")]
    pub vpc_access: Option<VpcAccess>,
    /// GPUs (refused by homerun's validation).
    #[serde(alias = "node_selector", skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<NodeSelector>,
    /// `optional bool`.
    #[serde(
        alias = "gpu_zonal_redundancy_disabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub gpu_zonal_redundancy_disabled: Option<bool>,
}

proto_enum! {
    /// `ExecutionReference.CompletionStatus`.
    pub enum CompletionStatus = "google.cloud.run.v2.ExecutionReference.CompletionStatus" {
        Unspecified = 0 => "COMPLETION_STATUS_UNSPECIFIED",
        Succeeded = 1 => "EXECUTION_SUCCEEDED",
        Failed = 2 => "EXECUTION_FAILED",
        Running = 3 => "EXECUTION_RUNNING",
        Pending = 4 => "EXECUTION_PENDING",
        Cancelled = 5 => "EXECUTION_CANCELLED",
    }
}

/// A job's pointer to one of its executions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExecutionReference {
    /// The execution's full name.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    #[serde(alias = "create_time", skip_serializing_if = "Option::is_none")]
    pub create_time: Option<Timestamp>,
    #[serde(alias = "completion_time", skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Timestamp>,
    #[serde(alias = "delete_time", skip_serializing_if = "Option::is_none")]
    pub delete_time: Option<Timestamp>,
    #[serde(alias = "completion_status", skip_serializing_if = "is_default")]
    pub completion_status: CompletionStatus,
}

/// The answer to `ListJobs`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListJobsResponse {
    #[serde(skip_serializing_if = "is_default")]
    pub jobs: Vec<Job>,
    #[serde(alias = "next_page_token", skip_serializing_if = "is_default")]
    pub next_page_token: String,
}

/// The body of `POST /v2/{name=projects/*/locations/*/jobs/*}:run`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RunJobRequest {
    /// The job's full name (the path's; ignored in the body).
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    #[serde(alias = "validate_only", skip_serializing_if = "is_default")]
    pub validate_only: bool,
    /// When set, the job's current etag.
    #[serde(skip_serializing_if = "is_default")]
    pub etag: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overrides: Option<Overrides>,
}

/// `RunJobRequest.Overrides`: what this one execution changes of the job's template.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Overrides {
    #[serde(alias = "container_overrides", skip_serializing_if = "is_default")]
    pub container_overrides: Vec<ContainerOverride>,
    /// Replaces the template's `taskCount` when not 0.
    #[serde(
        alias = "task_count",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub task_count: i32,
    /// Replaces the task template's `timeout` when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// `RunJobRequest.Overrides.ContainerOverride`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerOverride {
    /// The container's name; empty names the job's only container.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Replaces the container's args when not empty.
    #[serde(skip_serializing_if = "is_default")]
    pub args: Vec<String>,
    /// Merged into the container's env by name (a name given replaces its value, a new
    /// one is added).
    #[serde(skip_serializing_if = "is_default")]
    pub env: Vec<EnvVar>,
    /// Clears the container's args (with no `args`).
    #[serde(alias = "clear_args", skip_serializing_if = "is_default")]
    pub clear_args: bool,
}

impl Job {
    /// The job id, the last segment of its name.
    pub fn id(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or("")
    }

    /// The task template's containers (none without a template).
    pub fn containers(&self) -> &[Container] {
        self.template
            .as_ref()
            .and_then(|t| t.template.as_ref())
            .map_or(&[], |t| &t.containers)
    }
}

impl ContainerOverride {
    /// The index of the container of `containers` this override is for: the one named
    /// so, or the only one when the name is empty.
    pub fn container_index(&self, containers: &[Container]) -> Option<usize> {
        if self.name.is_empty() {
            return (containers.len() == 1).then_some(0);
        }
        containers.iter().position(|c| c.name == self.name)
    }

    /// Applies the override to its container: args replaced (or cleared), env merged
    /// by name.
    pub fn apply_to(&self, c: &mut Container) {
        if self.clear_args {
            c.args.clear();
        } else if !self.args.is_empty() {
            c.args = self.args.clone();
        }
        for e in &self.env {
            match c.env.iter_mut().find(|have| have.name == e.name) {
                Some(have) => *have = e.clone(),
                None => c.env.push(e.clone()),
            }
        }
    }
}

impl Overrides {
    /// Applies the overrides to a copy of a job's execution template: container args
    /// and env, `taskCount`, the task `timeout`. Overrides naming no container of the
    /// template are skipped (validation reports them). A `parallelism` above the new
    /// task count is lowered to it.
    pub fn apply(&self, template: &ExecutionTemplate) -> ExecutionTemplate {
        let mut out = template.clone();
        let task = out.template.get_or_insert_with(Default::default);
        for o in &self.container_overrides {
            if let Some(i) = o.container_index(&task.containers) {
                o.apply_to(&mut task.containers[i]);
            }
        }
        if let Some(t) = self.timeout {
            task.timeout = Some(t);
        }
        if self.task_count != 0 {
            out.task_count = self.task_count;
        }
        if out.task_count > 0 && out.parallelism > out.task_count {
            out.parallelism = out.task_count;
        }
        out
    }
}
