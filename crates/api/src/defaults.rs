//! Cloud Run's defaults, filled in as Cloud Run returns them.
//!
//! - ingress `INGRESS_TRAFFIC_ALL`, launch stage `GA`;
//! - traffic: 100 % to the latest ready revision; a target's unspecified type is
//!   `REVISION` when it names a revision, else `LATEST`;
//! - scaling: min 0, max 100; timeout 300 s; concurrency 80, or 1 when the instance has
//!   less than one CPU;
//! - each container without `resources`: cpu `"1"`, memory `"512Mi"`, `cpuIdle: true`
//!   (with `resources` given, only the missing limits are filled: `cpuIdle` stays as
//!   sent, as on Cloud Run);
//! - the ingress container: port 8080 named `http1`, and the default TCP startup probe
//!   (240 s timeout and period, one failure);
//! - probes: timeout 1 s, period 10 s, failure threshold 3, the container's port,
//!   HTTP path `/`;
//! - `template.serviceAccount`: the project's default compute account
//!   ([`crate::naming::default_service_account`]) when the service's name gives the
//!   project.
//!
//! Jobs ([`apply_job_defaults`]): launch stage `GA`; `taskCount` 1 (`parallelism` 0
//! stays: as many as the platform allows); `maxRetries` 3, task `timeout` 600 s; each
//! container's limits cpu `"1"`, memory `"512Mi"` (no `cpuIdle`: a task has its CPU
//! all along) and the probe defaults above; the task template's `serviceAccount` as a
//! service's. No port and no startup probe are added: a job's containers listen on
//! nothing.

use crate::job::{ExecutionTemplate, Job, TaskTemplate};
use crate::k8s::{Container, ContainerPort, Probe, ResourceRequirements, TcpSocketAction};
use crate::names::{JobName, ServiceName};
use crate::naming::default_service_account;
use crate::quantity::parse_cpu;
use crate::service::{RevisionTemplate, Service, TrafficTarget, TrafficTargetAllocationType};
use crate::vendor::{IngressTraffic, LaunchStage, RevisionScaling};
use crate::wkt::Duration;

pub const DEFAULT_CPU: &str = "1";
pub const DEFAULT_MEMORY: &str = "512Mi";
pub const DEFAULT_PORT: i32 = 8080;
pub const DEFAULT_PORT_NAME: &str = "http1";
pub const DEFAULT_CONCURRENCY: i32 = 80;
/// Concurrency below one CPU (and the only value allowed there).
pub const FRACTIONAL_CPU_CONCURRENCY: i32 = 1;
pub const MAX_CONCURRENCY: i32 = 1000;
pub const DEFAULT_MAX_INSTANCES: i32 = 100;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// The default startup probe's timeout and period (seconds).
pub const DEFAULT_STARTUP_PROBE_SECONDS: i32 = 240;
pub const DEFAULT_PROBE_TIMEOUT_SECONDS: i32 = 1;
pub const DEFAULT_PROBE_PERIOD_SECONDS: i32 = 10;
pub const DEFAULT_PROBE_FAILURE_THRESHOLD: i32 = 3;
/// Tasks of an execution when the template says 0.
pub const DEFAULT_TASK_COUNT: i32 = 1;
pub const MAX_TASK_COUNT: i32 = 10_000;
/// Retries per task when the template leaves `maxRetries` out.
pub const DEFAULT_MAX_RETRIES: i32 = 3;
pub const MAX_MAX_RETRIES: i32 = 10;
/// A task attempt's timeout when the template sets none.
pub const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(600);
/// The longest task attempt: 168 hours (7 days).
pub const MAX_TASK_TIMEOUT: Duration = Duration::from_secs(168 * 3600);

/// Fills in every default of a service (see the module documentation). Idempotent.
pub fn apply_service_defaults(service: &mut Service) {
    if service.ingress == IngressTraffic::Unspecified {
        service.ingress = IngressTraffic::All;
    }
    if service.launch_stage == LaunchStage::Unspecified {
        service.launch_stage = LaunchStage::Ga;
    }
    let template = service.template.get_or_insert_with(Default::default);
    apply_template_defaults(template);
    if let Ok(name) = service.name.parse::<ServiceName>() {
        apply_service_account_default(&mut template.service_account, &name.project);
    }
    apply_traffic_defaults(&mut service.traffic);
}

/// An empty `serviceAccount` becomes the project's default compute account.
pub fn apply_service_account_default(service_account: &mut String, project_id: &str) {
    if service_account.is_empty() {
        *service_account = default_service_account(project_id);
    }
}

/// Traffic defaults: 100 % to the latest ready revision when empty; each target's type
/// inferred when unspecified.
pub fn apply_traffic_defaults(traffic: &mut Vec<TrafficTarget>) {
    if traffic.is_empty() {
        traffic.push(TrafficTarget::latest(100));
    }
    for t in traffic {
        if t.kind == TrafficTargetAllocationType::Unspecified {
            t.kind = if t.revision.is_empty() {
                TrafficTargetAllocationType::Latest
            } else {
                TrafficTargetAllocationType::Revision
            };
        }
    }
}

/// The template's defaults (see the module documentation). Idempotent.
pub fn apply_template_defaults(template: &mut RevisionTemplate) {
    let scaling = template
        .scaling
        .get_or_insert_with(RevisionScaling::default);
    if scaling.max_instance_count == 0 {
        scaling.max_instance_count = DEFAULT_MAX_INSTANCES;
    }
    if template.timeout.is_none() {
        template.timeout = Some(DEFAULT_TIMEOUT);
    }
    for c in &mut template.containers {
        apply_resource_defaults(c);
    }
    if template.max_instance_request_concurrency == 0 {
        template.max_instance_request_concurrency = default_concurrency(template);
    }
    let ingress = template.ingress_container_index();
    for (i, c) in template.containers.iter_mut().enumerate() {
        if Some(i) == ingress {
            apply_ingress_defaults(c);
        }
        apply_container_probe_defaults(c);
    }
}

/// Fills in every default of a job (see the module documentation). Idempotent.
pub fn apply_job_defaults(job: &mut Job) {
    if job.launch_stage == LaunchStage::Unspecified {
        job.launch_stage = LaunchStage::Ga;
    }
    let template = job.template.get_or_insert_with(Default::default);
    apply_execution_template_defaults(template);
    if let (Ok(name), Some(task)) = (job.name.parse::<JobName>(), template.template.as_mut()) {
        apply_service_account_default(&mut task.service_account, &name.project);
    }
}

/// An execution template's defaults: `taskCount` 1, and the task template's.
pub fn apply_execution_template_defaults(template: &mut ExecutionTemplate) {
    if template.task_count == 0 {
        template.task_count = DEFAULT_TASK_COUNT;
    }
    apply_task_template_defaults(template.template.get_or_insert_with(Default::default));
}

/// A task template's defaults: `maxRetries` 3, `timeout` 600 s, the containers' limits
/// (cpu 1, memory 512Mi) and probe defaults.
pub fn apply_task_template_defaults(template: &mut TaskTemplate) {
    if template.max_retries.is_none() {
        template.max_retries = Some(DEFAULT_MAX_RETRIES);
    }
    if template.timeout.is_none() {
        template.timeout = Some(DEFAULT_TASK_TIMEOUT);
    }
    for c in &mut template.containers {
        apply_limit_defaults(c.resources.get_or_insert_with(Default::default));
        apply_container_probe_defaults(c);
    }
}

/// The defaults of a container's startup and liveness probes (their port the
/// container's).
fn apply_container_probe_defaults(c: &mut Container) {
    let port = c.ports.first().map(|p| p.container_port).unwrap_or(0);
    for probe in [c.startup_probe.as_mut(), c.liveness_probe.as_mut()]
        .into_iter()
        .flatten()
    {
        apply_probe_defaults(probe, port);
    }
}

fn apply_resource_defaults(c: &mut Container) {
    let resources = c.resources.get_or_insert_with(|| ResourceRequirements {
        cpu_idle: true,
        ..Default::default()
    });
    apply_limit_defaults(resources);
}

/// The cpu and memory limits a container gets when it names none.
fn apply_limit_defaults(resources: &mut ResourceRequirements) {
    resources
        .limits
        .entry("cpu".into())
        .or_insert_with(|| DEFAULT_CPU.into());
    resources
        .limits
        .entry("memory".into())
        .or_insert_with(|| DEFAULT_MEMORY.into());
}

fn apply_ingress_defaults(c: &mut Container) {
    if c.ports.is_empty() {
        c.ports.push(ContainerPort::default());
    }
    for p in &mut c.ports {
        if p.name.is_empty() {
            p.name = DEFAULT_PORT_NAME.into();
        }
        if p.container_port == 0 {
            p.container_port = DEFAULT_PORT;
        }
    }
    if c.startup_probe.is_none() {
        c.startup_probe = Some(Probe {
            timeout_seconds: DEFAULT_STARTUP_PROBE_SECONDS,
            period_seconds: DEFAULT_STARTUP_PROBE_SECONDS,
            failure_threshold: 1,
            tcp_socket: Some(TcpSocketAction::default()),
            ..Default::default()
        });
    }
}

fn apply_probe_defaults(probe: &mut Probe, container_port: i32) {
    if probe.timeout_seconds == 0 {
        probe.timeout_seconds = DEFAULT_PROBE_TIMEOUT_SECONDS;
    }
    if probe.period_seconds == 0 {
        probe.period_seconds = DEFAULT_PROBE_PERIOD_SECONDS;
    }
    if probe.failure_threshold == 0 {
        probe.failure_threshold = DEFAULT_PROBE_FAILURE_THRESHOLD;
    }
    if let Some(h) = &mut probe.http_get {
        if h.path.is_empty() {
            h.path = "/".into();
        }
        if h.port == 0 {
            h.port = container_port;
        }
    }
    if let Some(t) = &mut probe.tcp_socket {
        if t.port == 0 {
            t.port = container_port;
        }
    }
    if let Some(g) = &mut probe.grpc {
        if g.port == 0 {
            g.port = container_port;
        }
    }
}

/// A container's CPU in millicores: its limit, 1000 when unset, and 1000 when it does
/// not parse (validation reports that).
pub fn container_cpu_millis(c: &Container) -> u64 {
    c.resources
        .as_ref()
        .and_then(|r| r.limits.get("cpu"))
        .map_or(1000, |cpu| parse_cpu(cpu).unwrap_or(1000))
}

/// The CPU of an instance: the sum over its containers, in millicores.
pub fn instance_cpu_millis(template: &RevisionTemplate) -> u64 {
    template.containers.iter().map(container_cpu_millis).sum()
}

/// The concurrency Cloud Run gives a template that sets none: 80, or 1 when its instance
/// has less than one CPU.
pub fn default_concurrency(template: &RevisionTemplate) -> i32 {
    if !template.containers.is_empty() && instance_cpu_millis(template) < 1000 {
        FRACTIONAL_CPU_CONCURRENCY
    } else {
        DEFAULT_CONCURRENCY
    }
}

/// The concurrency in effect: the template's, or the default.
pub fn effective_concurrency(template: &RevisionTemplate) -> i32 {
    match template.max_instance_request_concurrency {
        0 => default_concurrency(template),
        n => n,
    }
}

/// The maximum instance count in effect: the template's, or 100.
pub fn effective_max_instances(template: &RevisionTemplate) -> i32 {
    match template
        .scaling
        .as_ref()
        .map_or(0, |s| s.max_instance_count)
    {
        0 => DEFAULT_MAX_INSTANCES,
        n => n,
    }
}

/// The timeout in effect: the template's, or 300 s.
pub fn effective_timeout(template: &RevisionTemplate) -> Duration {
    template.timeout.unwrap_or(DEFAULT_TIMEOUT)
}

/// The task count in effect: the template's, or 1.
pub fn effective_task_count(template: &ExecutionTemplate) -> i32 {
    match template.task_count {
        0 => DEFAULT_TASK_COUNT,
        n => n,
    }
}

/// The retries per task in effect: the template's `maxRetries`, or 3.
pub fn effective_max_retries(template: &TaskTemplate) -> i32 {
    template.max_retries.unwrap_or(DEFAULT_MAX_RETRIES)
}

/// A task attempt's timeout in effect: the template's, or 600 s.
pub fn effective_task_timeout(template: &TaskTemplate) -> Duration {
    template.timeout.unwrap_or(DEFAULT_TASK_TIMEOUT)
}
