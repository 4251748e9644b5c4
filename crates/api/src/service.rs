//! google/cloud/run/v2/service.proto, revision_template.proto and traffic_target.proto.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::json::{is_default, proto_enum};
use crate::k8s::{Container, Volume};
use crate::vendor::{
    BinaryAuthorization, BuildConfig, EncryptionKeyRevocationAction, ExecutionEnvironment,
    IngressTraffic, LaunchStage, NodeSelector, RevisionScaling, ServiceMesh, ServiceScaling,
    VpcAccess,
};
use crate::wkt::{Duration, Timestamp};

/// A service: its desired state (template, traffic...) and, output only, its
/// observed state (conditions, revisions, traffic statuses, uri).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Service {
    /// `projects/{project}/locations/{location}/services/{service}`; ignored on create
    /// (made of the parent and `serviceId`).
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// At most 512 characters.
    #[serde(skip_serializing_if = "is_default")]
    pub description: String,
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
    /// Arbitrary client identifier (gcloud sets `gcloud`).
    #[serde(skip_serializing_if = "is_default")]
    pub client: String,
    #[serde(alias = "client_version", skip_serializing_if = "is_default")]
    pub client_version: String,
    #[serde(skip_serializing_if = "is_default")]
    pub ingress: IngressTraffic,
    #[serde(alias = "launch_stage", skip_serializing_if = "is_default")]
    pub launch_stage: LaunchStage,
    #[serde(
        alias = "binary_authorization",
        skip_serializing_if = "Option::is_none"
    )]
    pub binary_authorization: Option<BinaryAuthorization>,
    /// Required: what revisions are made of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<RevisionTemplate>,
    /// Empty: 100 % to the latest ready revision.
    #[serde(skip_serializing_if = "is_default")]
    pub traffic: Vec<TrafficTarget>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaling: Option<ServiceScaling>,
    #[serde(alias = "invoker_iam_disabled", skip_serializing_if = "is_default")]
    pub invoker_iam_disabled: bool,
    #[serde(alias = "default_uri_disabled", skip_serializing_if = "is_default")]
    pub default_uri_disabled: bool,
    /// Output only: every URL serving the service.
    #[serde(skip_serializing_if = "is_default")]
    pub urls: Vec<String>,
    #[serde(alias = "custom_audiences", skip_serializing_if = "is_default")]
    pub custom_audiences: Vec<String>,
    /// Output only: the generation serving traffic.
    #[serde(
        alias = "observed_generation",
        with = "crate::json::int64",
        skip_serializing_if = "is_default"
    )]
    pub observed_generation: i64,
    /// Output only: the `Ready` condition.
    #[serde(alias = "terminal_condition", skip_serializing_if = "Option::is_none")]
    pub terminal_condition: Option<Condition>,
    /// Output only: `ConfigurationsReady`, `RoutesReady`.
    #[serde(skip_serializing_if = "is_default")]
    pub conditions: Vec<Condition>,
    /// Output only: the revision's full name
    /// (`projects/p/locations/l/services/hello/revisions/hello-00001-abc`; traffic
    /// targets and statuses use the bare id).
    #[serde(alias = "latest_ready_revision", skip_serializing_if = "is_default")]
    pub latest_ready_revision: String,
    /// Output only: the revision's full name.
    #[serde(alias = "latest_created_revision", skip_serializing_if = "is_default")]
    pub latest_created_revision: String,
    #[serde(alias = "traffic_statuses", skip_serializing_if = "is_default")]
    pub traffic_statuses: Vec<TrafficTargetStatus>,
    /// Output only: the main URL.
    #[serde(skip_serializing_if = "is_default")]
    pub uri: String,
    #[serde(alias = "satisfies_pzs", skip_serializing_if = "is_default")]
    pub satisfies_pzs: bool,
    #[serde(alias = "build_config", skip_serializing_if = "Option::is_none")]
    pub build_config: Option<BuildConfig>,
    /// Output only: the platform is still bringing the service to its desired state.
    #[serde(skip_serializing_if = "is_default")]
    pub reconciling: bool,
    /// Output only: see [`crate::naming::etag`].
    #[serde(skip_serializing_if = "is_default")]
    pub etag: String,
}

/// What a revision is made of.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RevisionTemplate {
    /// The revision's id (`{service}-{suffix}`); generated when empty.
    #[serde(skip_serializing_if = "is_default")]
    pub revision: String,
    #[serde(skip_serializing_if = "is_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_default")]
    pub annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaling: Option<RevisionScaling>,
    #[serde(alias = "vpc_access", skip_serializing_if = "Option::is_none")]
    pub vpc_access: Option<VpcAccess>,
    /// Request timeout, 300 s by default, at most 3600 s.
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
    /// Requests per instance at once; 0: 80, or 1 below one CPU.
    #[serde(
        alias = "max_instance_request_concurrency",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub max_instance_request_concurrency: i32,
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
    #[serde(alias = "session_affinity", skip_serializing_if = "is_default")]
    pub session_affinity: bool,
    #[serde(alias = "health_check_disabled", skip_serializing_if = "is_default")]
    pub health_check_disabled: bool,
    #[serde(alias = "node_selector", skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<NodeSelector>,
}

proto_enum! {
    /// How a traffic target names its revision.
    pub enum TrafficTargetAllocationType = "google.cloud.run.v2.TrafficTargetAllocationType" {
        Unspecified = 0 => "TRAFFIC_TARGET_ALLOCATION_TYPE_UNSPECIFIED",
        Latest = 1 => "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST",
        Revision = 2 => "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION",
    }
}

/// A share of the traffic: to the latest ready revision or to a named one, with an
/// optional tag (its own URL, `{tag}---{service}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TrafficTarget {
    #[serde(rename = "type", skip_serializing_if = "is_default")]
    pub kind: TrafficTargetAllocationType,
    /// The revision id, for `TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION`.
    #[serde(skip_serializing_if = "is_default")]
    pub revision: String,
    #[serde(with = "crate::json::int32", skip_serializing_if = "is_default")]
    pub percent: i32,
    #[serde(skip_serializing_if = "is_default")]
    pub tag: String,
}

impl TrafficTarget {
    /// `percent` of the traffic to the latest ready revision.
    pub fn latest(percent: i32) -> Self {
        TrafficTarget {
            kind: TrafficTargetAllocationType::Latest,
            percent,
            ..Default::default()
        }
    }

    /// `percent` of the traffic to `revision`.
    pub fn revision(revision: impl Into<String>, percent: i32) -> Self {
        TrafficTarget {
            kind: TrafficTargetAllocationType::Revision,
            revision: revision.into(),
            percent,
            ..Default::default()
        }
    }

    /// The target with a tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = tag.into();
        self
    }
}

/// Output only: where traffic actually goes, with each tag's URL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TrafficTargetStatus {
    #[serde(rename = "type", skip_serializing_if = "is_default")]
    pub kind: TrafficTargetAllocationType,
    #[serde(skip_serializing_if = "is_default")]
    pub revision: String,
    #[serde(with = "crate::json::int32", skip_serializing_if = "is_default")]
    pub percent: i32,
    #[serde(skip_serializing_if = "is_default")]
    pub tag: String,
    #[serde(skip_serializing_if = "is_default")]
    pub uri: String,
}

/// The answer to `ListServices`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListServicesResponse {
    #[serde(skip_serializing_if = "is_default")]
    pub services: Vec<Service>,
    #[serde(alias = "next_page_token", skip_serializing_if = "is_default")]
    pub next_page_token: String,
}

impl Service {
    /// The template's containers (none without a template).
    pub fn containers(&self) -> &[Container] {
        self.template.as_ref().map_or(&[], |t| &t.containers)
    }
}

impl RevisionTemplate {
    /// The index of the ingress container: the one with a port, or the only container.
    /// `None` when that is ambiguous (several containers, not exactly one with a port).
    pub fn ingress_container_index(&self) -> Option<usize> {
        if self.containers.len() == 1 {
            return Some(0);
        }
        let mut with_ports = self
            .containers
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.ports.is_empty());
        match (with_ports.next(), with_ports.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    }
}
