//! google/cloud/run/v2/k8s.min.proto: containers, their resources, ports, volumes and
//! probes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::json::{is_default, proto_enum};

/// A container of a revision: the ingress container (the one with a port) or a
/// sidecar.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Container {
    /// A DNS label (RFC 1123); required when there are several containers.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// Required. The image reference.
    #[serde(skip_serializing_if = "is_default")]
    pub image: String,
    /// Entrypoint (the image's ENTRYPOINT if empty).
    #[serde(skip_serializing_if = "is_default")]
    pub command: Vec<String>,
    /// Arguments (the image's CMD if empty).
    #[serde(skip_serializing_if = "is_default")]
    pub args: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub env: Vec<EnvVar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// At most one; only the ingress container has one.
    #[serde(skip_serializing_if = "is_default")]
    pub ports: Vec<ContainerPort>,
    #[serde(alias = "volume_mounts", skip_serializing_if = "is_default")]
    pub volume_mounts: Vec<VolumeMount>,
    #[serde(alias = "working_dir", skip_serializing_if = "is_default")]
    pub working_dir: String,
    #[serde(alias = "liveness_probe", skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Probe>,
    #[serde(alias = "startup_probe", skip_serializing_if = "Option::is_none")]
    pub startup_probe: Option<Probe>,
    /// Names of the containers that must start before this one.
    #[serde(alias = "depends_on", skip_serializing_if = "is_default")]
    pub depends_on: Vec<String>,
}

/// Compute resources of a container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResourceRequirements {
    /// `cpu` and `memory` only (`"1"`, `"512Mi"`).
    #[serde(skip_serializing_if = "is_default")]
    pub limits: BTreeMap<String, String>,
    /// CPU only while requests are served. Cloud Run's default is `true` when
    /// `resources` is absent, but once `resources` is given the caller must set it
    /// (proto3 cannot tell an unset bool from `false`).
    #[serde(alias = "cpu_idle", skip_serializing_if = "is_default")]
    pub cpu_idle: bool,
    /// More CPU while the instance starts.
    #[serde(alias = "startup_cpu_boost", skip_serializing_if = "is_default")]
    pub startup_cpu_boost: bool,
}

/// An environment variable: a literal value or a secret's (`valueSource.secretKeyRef`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EnvVar {
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// oneof `values`: a literal (`$(VAR)` expanded), present even when empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// oneof `values`: a Secret Manager reference.
    #[serde(alias = "value_source", skip_serializing_if = "Option::is_none")]
    pub value_source: Option<EnvVarSource>,
}

impl EnvVar {
    /// `name=value`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_source: None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EnvVarSource {
    #[serde(alias = "secret_key_ref", skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeySelector>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SecretKeySelector {
    #[serde(skip_serializing_if = "is_default")]
    pub secret: String,
    #[serde(skip_serializing_if = "is_default")]
    pub version: String,
}

/// The port the container listens on; `name` is the protocol, `http1` or `h2c`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerPort {
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    #[serde(
        alias = "container_port",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub container_port: i32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VolumeMount {
    /// The name of one of the template's volumes.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    #[serde(alias = "mount_path", skip_serializing_if = "is_default")]
    pub mount_path: String,
}

/// A volume: exactly one of the sources. homerun supports `emptyDir` and `secret`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Volume {
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretVolumeSource>,
    #[serde(alias = "cloud_sql_instance", skip_serializing_if = "Option::is_none")]
    pub cloud_sql_instance: Option<CloudSqlInstance>,
    #[serde(alias = "empty_dir", skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<EmptyDirVolumeSource>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SecretVolumeSource {
    #[serde(skip_serializing_if = "is_default")]
    pub secret: String,
    #[serde(skip_serializing_if = "is_default")]
    pub items: Vec<VersionToPath>,
    #[serde(
        alias = "default_mode",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub default_mode: i32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VersionToPath {
    #[serde(skip_serializing_if = "is_default")]
    pub path: String,
    #[serde(skip_serializing_if = "is_default")]
    pub version: String,
    #[serde(with = "crate::json::int32", skip_serializing_if = "is_default")]
    pub mode: i32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CloudSqlInstance {
    #[serde(skip_serializing_if = "is_default")]
    pub instances: Vec<String>,
}

proto_enum! {
    /// `EmptyDirVolumeSource.Medium`.
    pub enum Medium = "google.cloud.run.v2.EmptyDirVolumeSource.Medium" {
        Unspecified = 0 => "MEDIUM_UNSPECIFIED",
        Memory = 1 => "MEMORY",
    }
}

/// An in-memory (tmpfs) volume.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EmptyDirVolumeSource {
    #[serde(skip_serializing_if = "is_default")]
    pub medium: Medium,
    /// A memory quantity (`"256Mi"`); empty: half the memory of all containers.
    #[serde(alias = "size_limit", skip_serializing_if = "is_default")]
    pub size_limit: String,
}

/// A health check: exactly one of `httpGet`, `tcpSocket`, `grpc`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Probe {
    #[serde(
        alias = "initial_delay_seconds",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub initial_delay_seconds: i32,
    #[serde(
        alias = "timeout_seconds",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub timeout_seconds: i32,
    #[serde(
        alias = "period_seconds",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub period_seconds: i32,
    #[serde(
        alias = "failure_threshold",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub failure_threshold: i32,
    #[serde(alias = "http_get", skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpGetAction>,
    #[serde(alias = "tcp_socket", skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpSocketAction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcAction>,
}

/// `HTTPGetAction`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpGetAction {
    /// Defaults to `/`.
    #[serde(skip_serializing_if = "is_default")]
    pub path: String,
    #[serde(alias = "http_headers", skip_serializing_if = "is_default")]
    pub http_headers: Vec<HttpHeader>,
    /// Defaults to the container's port.
    #[serde(with = "crate::json::int32", skip_serializing_if = "is_default")]
    pub port: i32,
}

/// `HTTPHeader`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpHeader {
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    #[serde(skip_serializing_if = "is_default")]
    pub value: String,
}

/// `TCPSocketAction`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TcpSocketAction {
    /// Defaults to the container's port.
    #[serde(with = "crate::json::int32", skip_serializing_if = "is_default")]
    pub port: i32,
}

/// `GRPCAction`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GrpcAction {
    /// Defaults to the container's port.
    #[serde(with = "crate::json::int32", skip_serializing_if = "is_default")]
    pub port: i32,
    /// The `service` of the `grpc.health.v1` HealthCheckRequest.
    #[serde(skip_serializing_if = "is_default")]
    pub service: String,
}
