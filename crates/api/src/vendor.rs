//! google/cloud/run/v2/vendor_settings.proto (scaling, ingress, execution environment,
//! VPC, Binary Authorization...) and google.api.LaunchStage.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::json::{is_default, proto_enum};

proto_enum! {
    /// Which traffic may reach the service.
    pub enum IngressTraffic = "google.cloud.run.v2.IngressTraffic" {
        Unspecified = 0 => "INGRESS_TRAFFIC_UNSPECIFIED",
        All = 1 => "INGRESS_TRAFFIC_ALL",
        InternalOnly = 2 => "INGRESS_TRAFFIC_INTERNAL_ONLY",
        InternalLoadBalancer = 3 => "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
        None = 4 => "INGRESS_TRAFFIC_NONE",
    }
}

proto_enum! {
    /// The sandbox generation (gen1: gVisor, gen2: a microVM on Cloud Run).
    pub enum ExecutionEnvironment = "google.cloud.run.v2.ExecutionEnvironment" {
        Unspecified = 0 => "EXECUTION_ENVIRONMENT_UNSPECIFIED",
        Gen1 = 1 => "EXECUTION_ENVIRONMENT_GEN1",
        Gen2 = 2 => "EXECUTION_ENVIRONMENT_GEN2",
    }
}

proto_enum! {
    pub enum EncryptionKeyRevocationAction = "google.cloud.run.v2.EncryptionKeyRevocationAction" {
        Unspecified = 0 => "ENCRYPTION_KEY_REVOCATION_ACTION_UNSPECIFIED",
        PreventNew = 1 => "PREVENT_NEW",
        Shutdown = 2 => "SHUTDOWN",
    }
}

proto_enum! {
    /// google.api.LaunchStage (note the numbers: UNIMPLEMENTED and PRELAUNCH come
    /// last).
    pub enum LaunchStage = "google.api.LaunchStage" {
        Unspecified = 0 => "LAUNCH_STAGE_UNSPECIFIED",
        Unimplemented = 6 => "UNIMPLEMENTED",
        Prelaunch = 7 => "PRELAUNCH",
        EarlyAccess = 1 => "EARLY_ACCESS",
        Alpha = 2 => "ALPHA",
        Beta = 3 => "BETA",
        Ga = 4 => "GA",
        Deprecated = 5 => "DEPRECATED",
    }
}

proto_enum! {
    pub enum VpcEgress = "google.cloud.run.v2.VpcAccess.VpcEgress" {
        Unspecified = 0 => "VPC_EGRESS_UNSPECIFIED",
        AllTraffic = 1 => "ALL_TRAFFIC",
        PrivateRangesOnly = 2 => "PRIVATE_RANGES_ONLY",
    }
}

proto_enum! {
    pub enum ScalingMode = "google.cloud.run.v2.ServiceScaling.ScalingMode" {
        Unspecified = 0 => "SCALING_MODE_UNSPECIFIED",
        Automatic = 1 => "AUTOMATIC",
        Manual = 2 => "MANUAL",
    }
}

/// Instance bounds of a revision.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RevisionScaling {
    #[serde(
        alias = "min_instance_count",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub min_instance_count: i32,
    /// 0 (unset) means the default, 100.
    #[serde(
        alias = "max_instance_count",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub max_instance_count: i32,
}

/// Service-level scaling (shared among the revisions that take traffic).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceScaling {
    #[serde(
        alias = "min_instance_count",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub min_instance_count: i32,
    #[serde(alias = "scaling_mode", skip_serializing_if = "is_default")]
    pub scaling_mode: ScalingMode,
    /// `optional int32`: present even when 0.
    #[serde(
        alias = "manual_instance_count",
        with = "crate::json::opt_int32",
        skip_serializing_if = "Option::is_none"
    )]
    pub manual_instance_count: Option<i32>,
}

/// VPC access (accepted and kept; homerun has no VPC).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VpcAccess {
    #[serde(skip_serializing_if = "is_default")]
    pub connector: String,
    #[serde(skip_serializing_if = "is_default")]
    pub egress: VpcEgress,
    #[serde(alias = "network_interfaces", skip_serializing_if = "is_default")]
    pub network_interfaces: Vec<NetworkInterface>,
}

/// `VpcAccess.NetworkInterface`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NetworkInterface {
    #[serde(skip_serializing_if = "is_default")]
    pub network: String,
    #[serde(skip_serializing_if = "is_default")]
    pub subnetwork: String,
    #[serde(skip_serializing_if = "is_default")]
    pub tags: Vec<String>,
}

/// Binary Authorization (accepted and kept). `useDefault` and `policy` are a oneof.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BinaryAuthorization {
    #[serde(alias = "use_default", skip_serializing_if = "Option::is_none")]
    pub use_default: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(alias = "breakglass_justification", skip_serializing_if = "is_default")]
    pub breakglass_justification: String,
}

/// Cloud Service Mesh (accepted and kept).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceMesh {
    #[serde(skip_serializing_if = "is_default")]
    pub mesh: String,
}

/// GPU selection (refused by homerun's validation: it has no GPUs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeSelector {
    #[serde(skip_serializing_if = "is_default")]
    pub accelerator: String,
}

/// Cloud Run functions' build settings (accepted and kept).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BuildConfig {
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    #[serde(alias = "source_location", skip_serializing_if = "is_default")]
    pub source_location: String,
    #[serde(alias = "function_target", skip_serializing_if = "is_default")]
    pub function_target: String,
    #[serde(alias = "image_uri", skip_serializing_if = "is_default")]
    pub image_uri: String,
    #[serde(alias = "base_image", skip_serializing_if = "is_default")]
    pub base_image: String,
    #[serde(alias = "enable_automatic_updates", skip_serializing_if = "is_default")]
    pub enable_automatic_updates: bool,
    #[serde(alias = "worker_pool", skip_serializing_if = "is_default")]
    pub worker_pool: String,
    #[serde(alias = "environment_variables", skip_serializing_if = "is_default")]
    pub environment_variables: BTreeMap<String, String>,
    #[serde(alias = "service_account", skip_serializing_if = "is_default")]
    pub service_account: String,
}
