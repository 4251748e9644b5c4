//! google/cloud/run/v2/condition.proto.

use serde::{Deserialize, Serialize};

use crate::json::{is_default, proto_enum};
use crate::wkt::Timestamp;

proto_enum! {
    /// `Condition.State`.
    pub enum ConditionState = "google.cloud.run.v2.Condition.State" {
        Unspecified = 0 => "STATE_UNSPECIFIED",
        Pending = 1 => "CONDITION_PENDING",
        Reconciling = 2 => "CONDITION_RECONCILING",
        Failed = 3 => "CONDITION_FAILED",
        Succeeded = 4 => "CONDITION_SUCCEEDED",
    }
}

proto_enum! {
    /// `Condition.Severity`.
    pub enum Severity = "google.cloud.run.v2.Condition.Severity" {
        Unspecified = 0 => "SEVERITY_UNSPECIFIED",
        Error = 1 => "ERROR",
        Warning = 2 => "WARNING",
        Info = 3 => "INFO",
    }
}

proto_enum! {
    /// `Condition.CommonReason` (number 2 and 5 are unused in the proto).
    pub enum CommonReason = "google.cloud.run.v2.Condition.CommonReason" {
        Undefined = 0 => "COMMON_REASON_UNDEFINED",
        Unknown = 1 => "UNKNOWN",
        RevisionFailed = 3 => "REVISION_FAILED",
        ProgressDeadlineExceeded = 4 => "PROGRESS_DEADLINE_EXCEEDED",
        ContainerMissing = 6 => "CONTAINER_MISSING",
        ContainerPermissionDenied = 7 => "CONTAINER_PERMISSION_DENIED",
        ContainerImageUnauthorized = 8 => "CONTAINER_IMAGE_UNAUTHORIZED",
        ContainerImageAuthorizationCheckFailed = 9 => "CONTAINER_IMAGE_AUTHORIZATION_CHECK_FAILED",
        EncryptionKeyPermissionDenied = 10 => "ENCRYPTION_KEY_PERMISSION_DENIED",
        EncryptionKeyCheckFailed = 11 => "ENCRYPTION_KEY_CHECK_FAILED",
        SecretsAccessCheckFailed = 12 => "SECRETS_ACCESS_CHECK_FAILED",
        WaitingForOperation = 13 => "WAITING_FOR_OPERATION",
        ImmediateRetry = 14 => "IMMEDIATE_RETRY",
        PostponedRetry = 15 => "POSTPONED_RETRY",
        Internal = 16 => "INTERNAL",
        VpcNetworkNotFound = 17 => "VPC_NETWORK_NOT_FOUND",
    }
}

proto_enum! {
    /// `Condition.RevisionReason`.
    pub enum RevisionReason = "google.cloud.run.v2.Condition.RevisionReason" {
        Undefined = 0 => "REVISION_REASON_UNDEFINED",
        Pending = 1 => "PENDING",
        Reserve = 2 => "RESERVE",
        Retired = 3 => "RETIRED",
        Retiring = 4 => "RETIRING",
        Recreating = 5 => "RECREATING",
        HealthCheckContainerError = 6 => "HEALTH_CHECK_CONTAINER_ERROR",
        CustomizedPathResponsePending = 7 => "CUSTOMIZED_PATH_RESPONSE_PENDING",
        MinInstancesNotProvisioned = 8 => "MIN_INSTANCES_NOT_PROVISIONED",
        ActiveRevisionLimitReached = 9 => "ACTIVE_REVISION_LIMIT_REACHED",
        NoDeployment = 10 => "NO_DEPLOYMENT",
        HealthCheckSkipped = 11 => "HEALTH_CHECK_SKIPPED",
        MinInstancesWarming = 12 => "MIN_INSTANCES_WARMING",
    }
}

proto_enum! {
    /// `Condition.ExecutionReason` (jobs).
    pub enum ExecutionReason = "google.cloud.run.v2.Condition.ExecutionReason" {
        Undefined = 0 => "EXECUTION_REASON_UNDEFINED",
        JobStatusServicePollingError = 1 => "JOB_STATUS_SERVICE_POLLING_ERROR",
        NonZeroExitCode = 2 => "NON_ZERO_EXIT_CODE",
        Cancelled = 3 => "CANCELLED",
        Cancelling = 4 => "CANCELLING",
        Deleted = 5 => "DELETED",
    }
}

/// A status condition (`Ready`, `ConfigurationsReady`, `RoutesReady`...). `reason`,
/// `revisionReason` and `executionReason` are a oneof: at most one is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Condition {
    #[serde(rename = "type", skip_serializing_if = "is_default")]
    pub kind: String,
    #[serde(skip_serializing_if = "is_default")]
    pub state: ConditionState,
    #[serde(skip_serializing_if = "is_default")]
    pub message: String,
    #[serde(
        alias = "last_transition_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_transition_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "is_default")]
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<CommonReason>,
    #[serde(alias = "revision_reason", skip_serializing_if = "Option::is_none")]
    pub revision_reason: Option<RevisionReason>,
    #[serde(alias = "execution_reason", skip_serializing_if = "Option::is_none")]
    pub execution_reason: Option<ExecutionReason>,
}

impl Condition {
    /// The condition `kind` ("Ready"...) in `state`, now.
    pub fn new(kind: impl Into<String>, state: ConditionState) -> Self {
        Condition {
            kind: kind.into(),
            state,
            last_transition_time: Some(Timestamp::now()),
            ..Default::default()
        }
    }

    /// The condition with a message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// The condition with a common reason (clearing the other reasons of the oneof).
    pub fn with_reason(mut self, reason: CommonReason) -> Self {
        self.reason = Some(reason);
        self.revision_reason = None;
        self.execution_reason = None;
        self
    }

    /// The condition with a revision reason (clearing the other reasons of the oneof).
    pub fn with_revision_reason(mut self, reason: RevisionReason) -> Self {
        self.reason = None;
        self.revision_reason = Some(reason);
        self.execution_reason = None;
        self
    }

    /// The condition with an execution reason (clearing the other reasons of the oneof).
    pub fn with_execution_reason(mut self, reason: ExecutionReason) -> Self {
        self.reason = None;
        self.revision_reason = None;
        self.execution_reason = Some(reason);
        self
    }

    /// The condition with a severity.
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }
}

/// The condition types Cloud Run services, revisions, jobs, executions and tasks
/// report.
pub mod types {
    /// The resource is ready (a service's `terminalCondition`).
    pub const READY: &str = "Ready";
    /// The service's latest revision is ready.
    pub const CONFIGURATIONS_READY: &str = "ConfigurationsReady";
    /// The service's traffic is routed as asked.
    pub const ROUTES_READY: &str = "RoutesReady";
    /// A revision's containers passed their health checks.
    pub const CONTAINER_HEALTHY: &str = "ContainerHealthy";
    /// A revision's resources (image, instances) are available.
    pub const RESOURCES_AVAILABLE: &str = "ResourcesAvailable";
    /// A revision may receive traffic.
    pub const ACTIVE: &str = "Active";
    /// An execution (or a task) ran to its end: `CONDITION_SUCCEEDED` or
    /// `CONDITION_FAILED` once it has; `CONDITION_RECONCILING` while it is cancelled.
    pub const COMPLETED: &str = "Completed";
}
