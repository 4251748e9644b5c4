//! Cloud Run Admin API v2 resources for homerun: `Service`, `Revision` and the
//! long-running `Operation`, with the proto3 JSON mapping of the google/cloud/run/v2
//! protos, Cloud Run's defaults and validation, and the names, ids and URLs the
//! platform makes, and the REST API serving them over a store.
//!
//! - [`json`]: reading and writing messages (`int64` as strings, enums as names or
//!   numbers, `null` as default, parse errors naming their field);
//! - [`service`], [`revision`], [`k8s`], [`vendor`], [`condition`], [`operation`],
//!   [`wkt`]: the messages, field for field as in the protos;
//! - [`status`]: `google.rpc.Status` with `BadRequest` field violations, and the HTTP
//!   error body;
//! - [`defaults`] fills in Cloud Run's defaults ([`defaults::apply_service_defaults`]);
//! - [`validate`] checks a service as Cloud Run does ([`validate::validate_service`]);
//! - [`names`]: `projects/{p}/locations/{l}/services/{s}` and the like, service ids;
//! - [`naming`]: revision ids (`hello-00002-xoz`), uids, etags, service and tag URLs;
//! - [`quantity`]: CPU and memory quantities;
//! - [`http`]: the REST handlers (an axum `Router` over a `store::Store`), and
//!   [`http::complete_operation`] for the controller. The rest of the crate does no
//!   I/O.

pub mod json;

pub mod condition;
pub mod defaults;
pub mod http;
pub mod k8s;
pub mod names;
pub mod naming;
pub mod operation;
pub mod quantity;
pub mod revision;
pub mod service;
pub mod status;
pub mod validate;
pub mod vendor;
pub mod wkt;

pub use condition::{Condition, ConditionState};
pub use http::{complete_operation, router, ApiState};
pub use json::EnumEncoding;
pub use k8s::{Container, ContainerPort, EnvVar, Probe, ResourceRequirements, Volume, VolumeMount};
pub use names::{LocationName, NameError, OperationName, RevisionName, ServiceName};
pub use naming::Endpoint;
pub use operation::Operation;
pub use revision::Revision;
pub use service::{
    RevisionTemplate, Service, TrafficTarget, TrafficTargetAllocationType, TrafficTargetStatus,
};
pub use status::{BadRequest, Code, FieldViolation, Status};
pub use vendor::{ExecutionEnvironment, IngressTraffic, LaunchStage, RevisionScaling};
pub use wkt::{Any, Duration, Timestamp};
