//! Cloud Run Admin API v2 resources for homerun: `Service`, `Revision`, `Job`,
//! `Execution`, `Task` and the long-running `Operation`, with the proto3 JSON mapping
//! of the google/cloud/run/v2 protos, Cloud Run's defaults and validation, and the
//! names, ids and URLs the platform makes, and the REST API serving them over a store.
//!
//! - [`json`]: reading and writing messages (`int64` as strings, enums as names or
//!   numbers, `null` as default, parse errors naming their field);
//! - [`service`], [`revision`], [`job`], [`execution`], [`task`], [`k8s`], [`vendor`],
//!   [`condition`], [`operation`], [`wkt`]: the messages, field for field as in the
//!   protos;
//! - [`status`]: `google.rpc.Status` with `BadRequest` field violations, and the HTTP
//!   error body;
//! - [`defaults`] fills in Cloud Run's defaults ([`defaults::apply_service_defaults`],
//!   [`defaults::apply_job_defaults`]);
//! - [`validate`] checks a service or a job as Cloud Run does
//!   ([`validate::validate_service`], [`validate::validate_job`]);
//! - [`names`]: `projects/{p}/locations/{l}/services/{s}`, `.../jobs/{j}` and the like,
//!   service and job ids;
//! - [`naming`]: revision ids (`hello-00002-xoz`), execution ids (`hello-x7k2p`), task
//!   ids, uids, etags, service and tag URLs;
//! - [`quantity`]: CPU and memory quantities;
//! - [`auth`]: the [`auth::Authenticator`] bearer tokens go through and the
//!   [`auth::Caller`] it makes;
//! - [`iam`]: IAM policies, the roles and their permissions ([`iam::role_grants`],
//!   [`iam::policy_allows`]) and [`iam::load_policy`];
//! - [`secret`]: Secret Manager's secrets and versions, the [`secret::Sealer`] of their
//!   values and [`secret::resolve_secret`] for the controller;
//! - [`http`]: the REST handlers (an axum `Router` over a `store::Store`), and
//!   [`http::complete_operation`] for the controller. Besides them only
//!   [`iam::load_policy`] and [`secret::resolve_secret`] read the store; the rest of the
//!   crate does no I/O.

pub mod json;

pub mod auth;
pub mod condition;
pub mod defaults;
pub mod execution;
pub mod http;
pub mod iam;
pub mod job;
pub mod k8s;
pub mod names;
pub mod naming;
pub mod operation;
pub mod quantity;
pub mod revision;
pub mod schedule;
pub mod secret;
pub mod service;
pub mod status;
pub mod task;
pub mod validate;
pub mod vendor;
pub mod wkt;

pub use auth::{AuthFailure, Authenticator, Caller};
pub use condition::{Condition, ConditionState};
pub use execution::Execution;
pub use http::{complete_operation, router, ApiState};
pub use iam::{load_policy, policy_allows, role_grants, Binding, Policy};
pub use job::{
    CompletionStatus, ContainerOverride, ExecutionReference, ExecutionTemplate, Job, Overrides,
    RunJobRequest, TaskTemplate,
};
pub use json::EnumEncoding;
pub use k8s::{Container, ContainerPort, EnvVar, Probe, ResourceRequirements, Volume, VolumeMount};
pub use names::{
    ExecutionName, JobName, LocationName, NameError, OperationName, RevisionName, ServiceName,
    TaskName,
};
pub use naming::Endpoint;
pub use operation::Operation;
pub use revision::Revision;
pub use secret::{resolve_secret, Sealer, Secret, SecretError, SecretVersion};
pub use service::{
    RevisionTemplate, Service, TrafficTarget, TrafficTargetAllocationType, TrafficTargetStatus,
};
pub use status::{BadRequest, Code, FieldViolation, Status};
pub use task::{Task, TaskAttemptResult};
pub use vendor::{ExecutionEnvironment, IngressTraffic, LaunchStage, RevisionScaling};
pub use wkt::{Any, Duration, Timestamp};
