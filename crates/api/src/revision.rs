//! google/cloud/run/v2/revision.proto: the immutable snapshot a template change makes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::json::is_default;
use crate::k8s::{Container, Volume};
use crate::service::{RevisionTemplate, Service};
use crate::vendor::{
    EncryptionKeyRevocationAction, ExecutionEnvironment, LaunchStage, NodeSelector,
    RevisionScaling, ServiceMesh, VpcAccess,
};
use crate::wkt::{Duration, Timestamp};

/// A revision (output only as a whole: revisions are made by changing a service).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Revision {
    /// `projects/{project}/locations/{location}/services/{service}/revisions/{revision}`.
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
    #[serde(alias = "update_time", skip_serializing_if = "Option::is_none")]
    pub update_time: Option<Timestamp>,
    #[serde(alias = "delete_time", skip_serializing_if = "Option::is_none")]
    pub delete_time: Option<Timestamp>,
    #[serde(alias = "expire_time", skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<Timestamp>,
    #[serde(alias = "launch_stage", skip_serializing_if = "is_default")]
    pub launch_stage: LaunchStage,
    /// The parent service's full name.
    #[serde(skip_serializing_if = "is_default")]
    pub service: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaling: Option<RevisionScaling>,
    #[serde(alias = "vpc_access", skip_serializing_if = "Option::is_none")]
    pub vpc_access: Option<VpcAccess>,
    #[serde(
        alias = "max_instance_request_concurrency",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub max_instance_request_concurrency: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(alias = "service_account", skip_serializing_if = "is_default")]
    pub service_account: String,
    #[serde(skip_serializing_if = "is_default")]
    pub containers: Vec<Container>,
    #[serde(skip_serializing_if = "is_default")]
    pub volumes: Vec<Volume>,
    #[serde(alias = "execution_environment", skip_serializing_if = "is_default")]
    pub execution_environment: ExecutionEnvironment,
    #[serde(alias = "encryption_key", skip_serializing_if = "is_default")]
    pub encryption_key: String,
    #[serde(alias = "service_mesh", skip_serializing_if = "Option::is_none")]
    pub service_mesh: Option<ServiceMesh>,
    #[serde(
        alias = "encryption_key_revocation_action",
        skip_serializing_if = "is_default"
    )]
    pub encryption_key_revocation_action: EncryptionKeyRevocationAction,
    #[serde(
        alias = "encryption_key_shutdown_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub encryption_key_shutdown_duration: Option<Duration>,
    #[serde(skip_serializing_if = "is_default")]
    pub reconciling: bool,
    /// `Ready`, `ContainerHealthy`, `ResourcesAvailable`, `Active`...
    #[serde(skip_serializing_if = "is_default")]
    pub conditions: Vec<Condition>,
    #[serde(
        alias = "observed_generation",
        with = "crate::json::int64",
        skip_serializing_if = "is_default"
    )]
    pub observed_generation: i64,
    #[serde(alias = "log_uri", skip_serializing_if = "is_default")]
    pub log_uri: String,
    #[serde(alias = "satisfies_pzs", skip_serializing_if = "is_default")]
    pub satisfies_pzs: bool,
    #[serde(alias = "session_affinity", skip_serializing_if = "is_default")]
    pub session_affinity: bool,
    #[serde(alias = "scaling_status", skip_serializing_if = "Option::is_none")]
    pub scaling_status: Option<RevisionScalingStatus>,
    #[serde(alias = "node_selector", skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<NodeSelector>,
    #[serde(skip_serializing_if = "is_default")]
    pub etag: String,
}

/// `RevisionScalingStatus`: the instances the platform keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RevisionScalingStatus {
    #[serde(
        alias = "desired_min_instance_count",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub desired_min_instance_count: i32,
}

/// The answer to `ListRevisions`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListRevisionsResponse {
    #[serde(skip_serializing_if = "is_default")]
    pub revisions: Vec<Revision>,
    #[serde(alias = "next_page_token", skip_serializing_if = "is_default")]
    pub next_page_token: String,
}

impl Revision {
    /// A new revision of `service` (whose `name` is its full name) named `revision_id`,
    /// made of the service's template (apply the defaults to the service first). The
    /// status (conditions, `reconciling`...), `uid`, `etag` and times are left for the
    /// caller.
    pub fn from_service(service: &Service, revision_id: &str) -> Revision {
        let template = service.template.clone().unwrap_or_default();
        let RevisionTemplate {
            revision: _,
            labels,
            annotations,
            scaling,
            vpc_access,
            timeout,
            service_account,
            containers,
            volumes,
            execution_environment,
            encryption_key,
            max_instance_request_concurrency,
            service_mesh,
            encryption_key_revocation_action,
            encryption_key_shutdown_duration,
            session_affinity,
            health_check_disabled: _,
            node_selector,
        } = template;
        Revision {
            name: format!("{}/revisions/{revision_id}", service.name),
            generation: 1,
            labels,
            annotations,
            launch_stage: service.launch_stage,
            service: service.name.clone(),
            scaling,
            vpc_access,
            max_instance_request_concurrency,
            timeout,
            service_account,
            containers,
            volumes,
            execution_environment,
            encryption_key,
            service_mesh,
            encryption_key_revocation_action,
            encryption_key_shutdown_duration,
            session_affinity,
            node_selector,
            ..Default::default()
        }
    }

    /// The revision id, the last segment of its name.
    pub fn id(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or("")
    }
}
