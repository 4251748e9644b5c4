//! Validation as Cloud Run does it, every problem reported as a `BadRequest` field
//! violation named by its path (`service.template.containers[0].resources.limits.cpu`).
//!
//! Unset fields are judged by their defaults (cpu 1, memory 512Mi...), so a service may
//! be validated before or after [`crate::defaults::apply_service_defaults`]. Output-only
//! fields are not checked (a client may send back what it read).
//!
//! The rules (Cloud Run's documented limits, and homerun's own where it supports less):
//!
//! - `name` is `projects/{p}/locations/{l}/services/{s}`, the service id lowercase
//!   letters, digits and hyphens, starting with a letter, at most 49 characters;
//!   description at most 512 characters;
//! - labels: keys and values of lowercase letters, digits, `_` and `-`, keys starting
//!   with a letter, at most 63 characters; no label or annotation in the
//!   `run.googleapis.com`, `cloud.googleapis.com`, `serving.knative.dev` or
//!   `autoscaling.knative.dev` namespaces;
//! - `template.revision`, when set, is `{service}-{suffix}`, a DNS label of at most 63
//!   characters;
//! - scaling counts are not negative, min ≤ max; timeout more than 0 and at most 3600 s;
//!   concurrency 0 (default) to 1000, and 1 when the instance has less than one CPU;
//! - 1 to 10 containers; names DNS labels, required and unique when there are several;
//!   exactly one container (the ingress container) with a port when there are several;
//!   at most one port per container, named `http1` or `h2c`, 1 to 65535; `dependsOn`
//!   names other containers, without cycles; an image; env names neither empty nor
//!   containing `=` nor reserved (`PORT`, `K_SERVICE`, `K_REVISION`,
//!   `K_CONFIGURATION`); a value or a `valueSource.secretKeyRef`, whose `secret` is
//!   `SECRET` or `projects/PROJECT/secrets/SECRET` and `version` a number, `latest`
//!   or empty (`latest`). Whether the secret exists is not checked here: a revision
//!   that cannot resolve it fails with `SECRETS_ACCESS_CHECK_FAILED`, as on Cloud Run;
//! - CPU: 0.08 to 1 by thousandths, or 1, 2, 4, 6 or 8. Below 1 CPU: CPU only during
//!   requests (`cpuIdle`), not the gen2 environment, memory at most 512Mi below 0.5 CPU
//!   and 1Gi below 1. Memory: at least 128Mi (512Mi on gen2); per CPU at most
//!   4Gi (1), 8Gi (2), 16Gi (4), 24Gi (6), 32Gi (8) and at least 2Gi (4), 4Gi (6, 8);
//!   the instance in total at most 8 CPU and 32Gi;
//! - probes: exactly one of `httpGet`, `tcpSocket`, `grpc` (liveness: not TCP); initial
//!   delay 0 to 240 s (startup) or 3600 s (liveness); period 1 to 240 s or 3600 s;
//!   timeout 1 to 3600 s and not over the period; failure threshold at least 1; a port
//!   when the container exposes none; an HTTP path starting with `/`;
//! - volumes: named (unique DNS labels), exactly one source, `emptyDir` (its
//!   `sizeLimit` a memory quantity) or `secret` (a secret as above; `items[].path`
//!   relative, without `..`, each once; `items[].version` as an env's; `mode` and
//!   `defaultMode` 0 to 0777; no items: one file named after the secret, its latest
//!   version); no Cloud SQL; mounts name a volume, at an absolute path without
//!   `:`, not `/` nor under `/dev`, `/proc`, `/sys`, once per container;
//! - traffic: `LATEST` targets name no revision, `REVISION` targets name one of this
//!   service's (`{service}-...`); percents 0 to 100 adding up to 100; tags unique
//!   DNS labels starting with a letter, without `---`, and with the service id at most
//!   46 characters together;
//! - ingress `INGRESS_TRAFFIC_ALL`, `INGRESS_TRAFFIC_INTERNAL_ONLY` or
//!   `INGRESS_TRAFFIC_NONE` (homerun has no load balancer); at most 100
//!   `customAudiences`, none empty;
//! - no GPU (`nodeSelector`).
//!
//! Jobs share the container, resource, volume, label and annotation rules (the same
//! code); what differs for them is listed at [`validate_job_at`], and a run's overrides
//! are checked by [`validate_overrides`].

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::defaults::{
    container_cpu_millis, effective_concurrency, effective_max_instances, DEFAULT_MEMORY,
    MAX_CONCURRENCY, MAX_TIMEOUT,
};
use crate::defaults::{effective_task_count, MAX_MAX_RETRIES, MAX_TASK_COUNT, MAX_TASK_TIMEOUT};
use crate::job::{ExecutionTemplate, Job, Overrides, TaskTemplate};
use crate::k8s::{Container, EnvVar, Probe, SecretVolumeSource, Volume};
use crate::names::{validate_revision_id, JobName, ServiceName};
use crate::quantity::{format_cpu, format_memory, parse_cpu, parse_memory, GI, MI};
use crate::secret::{parse_secret_ref, validate_version_ref};
use crate::service::{RevisionTemplate, Service, TrafficTarget, TrafficTargetAllocationType};
use crate::status::BadRequest;
use crate::vendor::{ExecutionEnvironment, IngressTraffic};
use crate::wkt::Duration;

/// The most containers an instance may have.
pub const MAX_CONTAINERS: usize = 10;
/// The longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 512;
/// A tag and the service id together, at most (Cloud Run's limit).
pub const MAX_TAG_AND_SERVICE_LEN: usize = 46;
/// Label and annotation namespaces reserved to the platform.
pub const RESERVED_KEY_PREFIXES: [&str; 4] = [
    "run.googleapis.com",
    "cloud.googleapis.com",
    "serving.knative.dev",
    "autoscaling.knative.dev",
];
/// Environment variables the platform sets.
pub const RESERVED_ENV: [&str; 4] = ["PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"];
/// Environment variables the platform sets in a job's tasks.
pub const RESERVED_JOB_ENV: [&str; 5] = [
    "CLOUD_RUN_JOB",
    "CLOUD_RUN_EXECUTION",
    "CLOUD_RUN_TASK_INDEX",
    "CLOUD_RUN_TASK_ATTEMPT",
    "CLOUD_RUN_TASK_COUNT",
];
/// The longest a job's startup probe may take: failureThreshold x periodSeconds.
pub const MAX_JOB_STARTUP_SECONDS: i64 = 600;
/// The largest file mode of a secret volume's files: 0777.
pub const MAX_FILE_MODE: i32 = 0o777;
/// The most custom audiences a service may have.
pub const MAX_CUSTOM_AUDIENCES: usize = 100;

/// Validates a service as a request carries it (its `name` set: on create the API
/// layer makes it of the parent and `serviceId`). Paths start with `service.`.
pub fn validate_service(service: &Service) -> Result<(), BadRequest> {
    let mut out = BadRequest::default();
    check_service(service, "service", &mut out);
    out.into_result()
}

/// [`validate_service`] with another root for the paths (`""` for none).
pub fn validate_service_at(service: &Service, root: &str) -> Result<(), BadRequest> {
    let mut out = BadRequest::default();
    check_service(service, root, &mut out);
    out.into_result()
}

/// Validates a job as a request carries it (its `name` set: on create the API layer
/// makes it of the parent and `jobId`). Paths start with `job.`. See
/// [`validate_job_at`].
pub fn validate_job(job: &Job) -> Result<(), BadRequest> {
    validate_job_at(job, "job")
}

/// [`validate_job`] with another root for the paths (`""` for none).
///
/// The rules for jobs, beyond those shared with services (labels, annotations,
/// containers, resources, volumes, env, probes, GPUs):
///
/// - `name` is `projects/{p}/locations/{l}/jobs/{j}`, the job id lowercase letters,
///   digits and hyphens, starting with a letter, at most 63 characters;
/// - `template` and `template.template` are required; `taskCount` 0 (1) or 1 to
///   10 000; `parallelism` 0 (as many as the platform allows) to `taskCount`;
///   `maxRetries` 0 to 10; the task `timeout` more than 0 and at most 168 h;
/// - containers need no port (one given is checked as for services); several
///   containers need names but no ingress container; liveness probes are refused
///   (jobs take startup probes only, and failureThreshold x periodSeconds at most
///   600 s); `cpuIdle` is not checked (a task has its CPU all along); the platform's
///   `CLOUD_RUN_*` variables are reserved;
/// - `startExecutionToken` and `runExecutionToken` (an execution started on create)
///   are refused: homerun runs a job on `:run` only.
pub fn validate_job_at(job: &Job, root: &str) -> Result<(), BadRequest> {
    let mut out = BadRequest::default();
    check_job(job, root, &mut out);
    out.into_result()
}

/// Validates the overrides of a `RunJobRequest` for `job` (defaults applied), paths
/// under `overrides.`: each container override names one of the job's containers (or
/// none when there is only one) once, with `args` or `clearArgs` but not both and env
/// as a container's; `taskCount` 0 (the job's) or 1 to 10 000; `timeout` as a task
/// template's.
pub fn validate_overrides(overrides: &Overrides, job: &Job) -> Result<(), BadRequest> {
    let mut out = BadRequest::default();
    let p = "overrides";
    let containers = job.containers();
    let mut seen = HashSet::new();
    for (i, o) in overrides.container_overrides.iter().enumerate() {
        let op = format!("{p}.containerOverrides[{i}]");
        match o.container_index(containers) {
            Some(index) => {
                if !seen.insert(index) {
                    out.add(
                        join(&op, "name"),
                        "the container is overridden twice".to_string(),
                    );
                }
            }
            None if o.name.is_empty() => out.add(
                join(&op, "name"),
                "required when the job has several containers",
            ),
            None => out.add(
                join(&op, "name"),
                format!("the job has no container named \"{}\"", o.name),
            ),
        }
        if o.clear_args && !o.args.is_empty() {
            out.add(join(&op, "clearArgs"), "set args or clearArgs, not both");
        }
        check_env(&o.env, &op, &RESERVED_JOB_ENV, &mut out);
    }
    if !(0..=MAX_TASK_COUNT).contains(&overrides.task_count) {
        out.add(
            join(p, "taskCount"),
            format!("must be between 1 and {MAX_TASK_COUNT}"),
        );
    }
    if let Some(t) = overrides.timeout {
        check_timeout(t, MAX_TASK_TIMEOUT, &join(p, "timeout"), &mut out);
    }
    out.into_result()
}

fn check_job(j: &Job, root: &str, out: &mut BadRequest) {
    if j.name.is_empty() {
        out.add(join(root, "name"), "required");
    } else if let Err(e) = j.name.parse::<JobName>() {
        out.add(join(root, "name"), e.to_string());
    }
    check_labels(&j.labels, &join(root, "labels"), out);
    check_annotations(&j.annotations, &join(root, "annotations"), out);
    if let Err(e) = crate::schedule::schedules_of(&j.annotations) {
        out.add(
            key_path(
                &join(root, "annotations"),
                crate::schedule::SCHEDULES_ANNOTATION,
            ),
            e,
        );
    }
    if let Some(b) = &j.binary_authorization {
        if b.use_default.is_some() && b.policy.is_some() {
            out.add(
                join(root, "binaryAuthorization"),
                "set useDefault or policy, not both",
            );
        }
    }
    match (&j.start_execution_token, &j.run_execution_token) {
        (Some(_), Some(_)) => out.add(
            join(root, "startExecutionToken"),
            "set startExecutionToken or runExecutionToken, not both",
        ),
        (Some(_), None) => out.add(
            join(root, "startExecutionToken"),
            "executions started on create are not supported by homerun: create the job, then run it",
        ),
        (None, Some(_)) => out.add(
            join(root, "runExecutionToken"),
            "executions started on create are not supported by homerun: create the job, then run it",
        ),
        (None, None) => {}
    }
    match &j.template {
        None => out.add(join(root, "template"), "required"),
        Some(t) => check_execution_template(t, &join(root, "template"), out),
    }
}

fn check_execution_template(t: &ExecutionTemplate, p: &str, out: &mut BadRequest) {
    check_labels(&t.labels, &join(p, "labels"), out);
    check_annotations(&t.annotations, &join(p, "annotations"), out);
    let task_count_ok = (0..=MAX_TASK_COUNT).contains(&t.task_count);
    if !task_count_ok {
        out.add(
            join(p, "taskCount"),
            format!("must be between 1 and {MAX_TASK_COUNT}"),
        );
    }
    if t.parallelism < 0 {
        out.add(join(p, "parallelism"), "must not be negative");
    } else if task_count_ok && t.parallelism > effective_task_count(t) {
        out.add(
            join(p, "parallelism"),
            format!("must not exceed taskCount ({})", effective_task_count(t)),
        );
    }
    match &t.template {
        None => out.add(join(p, "template"), "required"),
        Some(task) => check_task_template(task, &join(p, "template"), out),
    }
}

fn check_task_template(t: &TaskTemplate, p: &str, out: &mut BadRequest) {
    if let Some(n) = t.max_retries {
        if !(0..=MAX_MAX_RETRIES).contains(&n) {
            out.add(
                join(p, "maxRetries"),
                format!("must be between 0 and {MAX_MAX_RETRIES}"),
            );
        }
    }
    if let Some(timeout) = t.timeout {
        check_timeout(timeout, MAX_TASK_TIMEOUT, &join(p, "timeout"), out);
    }
    if t.node_selector.is_some() {
        out.add(join(p, "nodeSelector"), "GPUs are not supported by homerun");
    }
    check_volumes(&t.volumes, &join(p, "volumes"), out);
    check_containers(
        &t.containers,
        &t.volumes,
        t.execution_environment,
        p,
        Workload::Job,
        out,
    );
}

fn join(base: &str, field: &str) -> String {
    if base.is_empty() {
        field.to_string()
    } else {
        format!("{base}.{field}")
    }
}

/// `base.key` for identifier-like keys, `base["key"]` otherwise.
fn key_path(base: &str, key: &str) -> String {
    let ident = !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !key.as_bytes()[0].is_ascii_digit();
    if ident {
        join(base, key)
    } else {
        format!("{base}[{key:?}]")
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn check_service(s: &Service, root: &str, out: &mut BadRequest) {
    let service_id = if s.name.is_empty() {
        out.add(join(root, "name"), "required");
        None
    } else {
        match s.name.parse::<ServiceName>() {
            Ok(n) => Some(n.service),
            Err(e) => {
                out.add(join(root, "name"), e.to_string());
                None
            }
        }
    };
    if s.description.chars().count() > MAX_DESCRIPTION_CHARS {
        out.add(
            join(root, "description"),
            format!("at most {MAX_DESCRIPTION_CHARS} characters"),
        );
    }
    check_labels(&s.labels, &join(root, "labels"), out);
    check_annotations(&s.annotations, &join(root, "annotations"), out);
    if let Some(b) = &s.binary_authorization {
        if b.use_default.is_some() && b.policy.is_some() {
            out.add(
                join(root, "binaryAuthorization"),
                "set useDefault or policy, not both",
            );
        }
    }
    if s.ingress == IngressTraffic::InternalLoadBalancer {
        out.add(
            join(root, "ingress"),
            "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER is not supported: homerun has no load balancer (use INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_NONE)",
        );
    }
    if s.custom_audiences.len() > MAX_CUSTOM_AUDIENCES {
        out.add(
            join(root, "customAudiences"),
            format!("at most {MAX_CUSTOM_AUDIENCES} custom audiences"),
        );
    }
    for (i, a) in s.custom_audiences.iter().enumerate() {
        if a.trim().is_empty() {
            out.add(format!("{root}.customAudiences[{i}]"), "must not be empty");
        }
    }
    if let Some(sc) = &s.scaling {
        let p = join(root, "scaling");
        if sc.min_instance_count < 0 {
            out.add(join(&p, "minInstanceCount"), "must not be negative");
        }
        if sc.manual_instance_count.is_some_and(|n| n < 0) {
            out.add(join(&p, "manualInstanceCount"), "must not be negative");
        }
    }
    match &s.template {
        None => out.add(join(root, "template"), "required"),
        Some(t) => check_template(t, service_id.as_deref(), &join(root, "template"), out),
    }
    check_traffic(
        &s.traffic,
        service_id.as_deref(),
        &join(root, "traffic"),
        out,
    );
}

fn reserved_prefix(key: &str) -> Option<&'static str> {
    let namespace = key.split_once('/').map_or("", |(ns, _)| ns);
    RESERVED_KEY_PREFIXES
        .into_iter()
        .find(|p| namespace == *p || namespace.ends_with(&format!(".{p}")))
}

fn check_reserved(map: &BTreeMap<String, String>, base: &str, what: &str, out: &mut BadRequest) {
    for key in map.keys() {
        if let Some(p) = reserved_prefix(key) {
            out.add(
                key_path(base, key),
                format!("{what} in the {p} namespace are reserved to the platform"),
            );
        }
    }
}

fn is_label_text(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_lowercase() || c.is_ascii_digit() || c.is_numeric() || c == '_' || c == '-')
}

pub(crate) fn check_labels(labels: &BTreeMap<String, String>, base: &str, out: &mut BadRequest) {
    check_reserved(labels, base, "labels", out);
    for (key, value) in labels {
        if reserved_prefix(key).is_some() {
            continue;
        }
        let first_ok = key.chars().next().is_some_and(char::is_lowercase);
        if key.chars().count() > 63 || !first_ok || !is_label_text(key) {
            out.add(
                key_path(base, key),
                "label keys are 1 to 63 lowercase letters, digits, '_' or '-', starting with a letter",
            );
        }
        if value.chars().count() > 63 || !is_label_text(value) {
            out.add(
                key_path(base, key),
                "label values are at most 63 lowercase letters, digits, '_' or '-'",
            );
        }
    }
}

pub(crate) fn check_annotations(
    annotations: &BTreeMap<String, String>,
    base: &str,
    out: &mut BadRequest,
) {
    check_reserved(annotations, base, "annotations", out);
    for key in annotations.keys() {
        if key.is_empty() {
            out.add(key_path(base, key), "annotation keys must not be empty");
        }
    }
}

fn check_template(t: &RevisionTemplate, service_id: Option<&str>, p: &str, out: &mut BadRequest) {
    if !t.revision.is_empty() {
        let path = join(p, "revision");
        if let Err(e) = validate_revision_id(&t.revision) {
            out.add(&path, e.to_string());
        } else if let Some(sid) = service_id {
            let prefix = format!("{sid}-");
            if !t.revision.starts_with(&prefix) || t.revision.len() == prefix.len() {
                out.add(
                    &path,
                    format!("a revision name must be the service name, a hyphen and a suffix: \"{prefix}...\""),
                );
            }
        }
    }
    check_labels(&t.labels, &join(p, "labels"), out);
    check_annotations(&t.annotations, &join(p, "annotations"), out);

    if let Some(sc) = &t.scaling {
        let sp = join(p, "scaling");
        if sc.min_instance_count < 0 {
            out.add(join(&sp, "minInstanceCount"), "must not be negative");
        }
        if sc.max_instance_count < 0 {
            out.add(join(&sp, "maxInstanceCount"), "must not be negative");
        }
        let max = effective_max_instances(t);
        if sc.min_instance_count > max && sc.max_instance_count >= 0 {
            out.add(
                join(&sp, "minInstanceCount"),
                format!("must not exceed maxInstanceCount ({max})"),
            );
        }
    }

    if let Some(timeout) = t.timeout {
        check_timeout(timeout, MAX_TIMEOUT, &join(p, "timeout"), out);
    }

    let concurrency_path = join(p, "maxInstanceRequestConcurrency");
    let concurrency = t.max_instance_request_concurrency;
    if concurrency < 0 {
        out.add(&concurrency_path, "must not be negative");
    } else if concurrency > MAX_CONCURRENCY {
        out.add(
            &concurrency_path,
            format!("must be at most {MAX_CONCURRENCY}"),
        );
    }

    if t.node_selector.is_some() {
        out.add(join(p, "nodeSelector"), "GPUs are not supported by homerun");
    }

    check_volumes(&t.volumes, &join(p, "volumes"), out);
    check_containers(
        &t.containers,
        &t.volumes,
        t.execution_environment,
        p,
        Workload::Service,
        out,
    );

    // Below one CPU in total: one request at a time.
    if !t.containers.is_empty() {
        let total: u64 = t.containers.iter().map(container_cpu_millis).sum();
        if total < 1000
            && (0..=MAX_CONCURRENCY).contains(&concurrency)
            && effective_concurrency(t) > 1
        {
            out.add(
                &concurrency_path,
                format!(
                    "must be 1 when the instance has less than 1 CPU ({} requested)",
                    format_cpu(total)
                ),
            );
        }
    }
}

/// A timeout: a valid duration, more than 0 and at most `max`.
fn check_timeout(timeout: Duration, max: Duration, path: &str, out: &mut BadRequest) {
    let mixed_signs =
        (timeout.seconds > 0 && timeout.nanos < 0) || (timeout.seconds < 0 && timeout.nanos > 0);
    if mixed_signs || !(-999_999_999..=999_999_999).contains(&timeout.nanos) {
        out.add(path, "not a valid duration");
    } else if timeout.as_nanos() <= 0 {
        out.add(path, "must be more than 0s");
    } else if timeout.as_nanos() > max.as_nanos() {
        out.add(path, format!("must be at most {}s", max.seconds));
    }
}

fn check_volumes(volumes: &[Volume], p: &str, out: &mut BadRequest) {
    let mut seen = HashSet::new();
    for (i, v) in volumes.iter().enumerate() {
        let vp = format!("{p}[{i}]");
        if v.name.is_empty() {
            out.add(join(&vp, "name"), "required");
        } else if !is_dns_label(&v.name) {
            out.add(
                join(&vp, "name"),
                "must be a DNS label: lowercase letters, digits and hyphens, at most 63",
            );
        } else if !seen.insert(v.name.as_str()) {
            out.add(
                join(&vp, "name"),
                format!("duplicate volume name \"{}\"", v.name),
            );
        }
        let sources = [
            v.secret.is_some(),
            v.cloud_sql_instance.is_some(),
            v.empty_dir.is_some(),
        ];
        match sources.iter().filter(|s| **s).count() {
            0 => out.add(
                &vp,
                "a volume needs exactly one source (homerun supports emptyDir and secret)",
            ),
            1 => {}
            _ => out.add(&vp, "a volume has exactly one source"),
        }
        if let Some(s) = &v.secret {
            check_secret_volume(s, &join(&vp, "secret"), out);
        }
        if v.cloud_sql_instance.is_some() {
            out.add(
                join(&vp, "cloudSqlInstance"),
                "Cloud SQL volumes are not supported by homerun",
            );
        }
        if let Some(e) = &v.empty_dir {
            if !e.size_limit.is_empty() {
                match parse_memory(&e.size_limit) {
                    Ok(0) => out.add(join(&vp, "emptyDir.sizeLimit"), "must be more than 0"),
                    Ok(_) => {}
                    Err(err) => out.add(join(&vp, "emptyDir.sizeLimit"), err.to_string()),
                }
            }
        }
    }
}

/// What the containers checked run as: a service's revision (an ingress container
/// serving requests) or a job's tasks (run to completion, listening on nothing).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    Service,
    Job,
}

impl Workload {
    /// The environment variables the platform sets for this workload.
    fn reserved_env(self) -> &'static [&'static str] {
        match self {
            Workload::Service => &RESERVED_ENV,
            Workload::Job => &RESERVED_JOB_ENV,
        }
    }
}

fn check_containers(
    containers: &[Container],
    volumes: &[Volume],
    environment: ExecutionEnvironment,
    p: &str,
    workload: Workload,
    out: &mut BadRequest,
) {
    let cp = join(p, "containers");
    if containers.is_empty() {
        out.add(&cp, "at least one container is required");
        return;
    }
    if containers.len() > MAX_CONTAINERS {
        out.add(&cp, format!("at most {MAX_CONTAINERS} containers"));
    }
    let several = containers.len() > 1;
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, c) in containers.iter().enumerate() {
        let path = format!("{cp}[{i}].name");
        if c.name.is_empty() {
            if several {
                out.add(path, "required when there are several containers");
            }
        } else if !is_dns_label(&c.name) {
            out.add(
                path,
                "must be a DNS label: lowercase letters, digits and hyphens, at most 63",
            );
        } else if names.insert(c.name.as_str(), i).is_some() {
            out.add(path, format!("duplicate container name \"{}\"", c.name));
        }
    }
    if several && workload == Workload::Service {
        let with_ports = containers.iter().filter(|c| !c.ports.is_empty()).count();
        if with_ports != 1 {
            out.add(
                &cp,
                format!(
                    "exactly one container (the ingress container) must have a port; {with_ports} have one"
                ),
            );
        }
    }

    let volumes: HashSet<&str> = volumes.iter().map(|v| v.name.as_str()).collect();
    let gen2 = environment == ExecutionEnvironment::Gen2;
    let mut total_cpu = 0u64;
    let mut total_memory = 0u64;
    for (i, c) in containers.iter().enumerate() {
        let path = format!("{cp}[{i}]");
        // A service's ingress container gets port 8080 when it names none; a job's
        // containers get no port.
        let has_port = !c.ports.is_empty() || (!several && workload == Workload::Service);
        let (cpu, memory) = check_container(c, &path, &volumes, gen2, has_port, workload, out);
        if cpu < 1000 && gen2 {
            out.add(
                join(p, "executionEnvironment"),
                format!(
                    "containers[{i}] has less than 1 CPU, which needs the first generation execution environment"
                ),
            );
        }
        total_cpu += cpu;
        total_memory += memory;
    }
    if several {
        if total_cpu > 8000 {
            out.add(
                &cp,
                format!(
                    "the containers' CPU adds up to {}, more than 8",
                    format_cpu(total_cpu)
                ),
            );
        }
        if total_memory > 32 * GI {
            out.add(
                &cp,
                format!(
                    "the containers' memory adds up to {}, more than 32Gi",
                    format_memory(total_memory)
                ),
            );
        }
    }
    check_depends_on(containers, &names, &cp, out);
}

/// Checks one container; returns its CPU (millicores) and memory (bytes) for the
/// instance totals (the defaults when unset or invalid).
fn check_container(
    c: &Container,
    p: &str,
    volumes: &HashSet<&str>,
    gen2: bool,
    has_port: bool,
    workload: Workload,
    out: &mut BadRequest,
) -> (u64, u64) {
    if c.image.trim().is_empty() {
        out.add(join(p, "image"), "required");
    } else if c.image.chars().any(char::is_whitespace) {
        out.add(join(p, "image"), "an image reference has no whitespace");
    }
    if !c.working_dir.is_empty() && !c.working_dir.starts_with('/') {
        out.add(join(p, "workingDir"), "must be an absolute path");
    }
    check_env(&c.env, p, workload.reserved_env(), out);

    let (cpu, memory) = check_resources(c, p, gen2, workload, out);

    let pp = join(p, "ports");
    if c.ports.len() > 1 {
        out.add(&pp, "at most one port");
    }
    for (i, port) in c.ports.iter().enumerate() {
        if !matches!(port.name.as_str(), "" | "http1" | "h2c") {
            out.add(format!("{pp}[{i}].name"), "must be http1 or h2c");
        }
        if !(0..=65535).contains(&port.container_port) {
            out.add(
                format!("{pp}[{i}].containerPort"),
                "must be between 1 and 65535",
            );
        }
    }

    let mut mount_paths = HashSet::new();
    for (i, m) in c.volume_mounts.iter().enumerate() {
        let mp = format!("{p}.volumeMounts[{i}]");
        if m.name.is_empty() {
            out.add(join(&mp, "name"), "required");
        } else if !volumes.contains(m.name.as_str()) {
            out.add(
                join(&mp, "name"),
                format!("no volume is named \"{}\"", m.name),
            );
        }
        let path = m.mount_path.as_str();
        let trimmed = path.trim_end_matches('/');
        if path.is_empty() {
            out.add(join(&mp, "mountPath"), "required");
        } else if !path.starts_with('/') {
            out.add(join(&mp, "mountPath"), "must be an absolute path");
        } else if path.contains(':') {
            out.add(join(&mp, "mountPath"), "must not contain ':'");
        } else if trimmed.is_empty()
            || ["/dev", "/proc", "/sys"]
                .iter()
                .any(|r| trimmed == *r || trimmed.starts_with(&format!("{r}/")))
        {
            out.add(
                join(&mp, "mountPath"),
                format!("{path} is reserved to the platform"),
            );
        } else if !mount_paths.insert(trimmed) {
            out.add(join(&mp, "mountPath"), format!("{path} is mounted twice"));
        }
    }

    if let Some(probe) = &c.startup_probe {
        check_probe(
            probe,
            ProbeKind::Startup,
            has_port,
            &join(p, "startupProbe"),
            out,
        );
    }
    if let (Some(probe), Workload::Job) = (&c.startup_probe, workload) {
        let period = if probe.period_seconds == 0 {
            10
        } else {
            probe.period_seconds
        } as i64;
        let threshold = if probe.failure_threshold == 0 {
            3
        } else {
            probe.failure_threshold
        } as i64;
        if period > 0 && threshold > 0 && period * threshold > MAX_JOB_STARTUP_SECONDS {
            out.add(
                join(p, "startupProbe"),
                format!(
                    "failureThreshold x periodSeconds must not exceed {MAX_JOB_STARTUP_SECONDS} seconds for a job, not {}",
                    period * threshold
                ),
            );
        }
    }
    if let Some(probe) = &c.liveness_probe {
        if workload == Workload::Job {
            out.add(
                join(p, "livenessProbe"),
                "liveness probes are not supported for jobs (startup probes are)",
            );
        } else {
            check_probe(
                probe,
                ProbeKind::Liveness,
                has_port,
                &join(p, "livenessProbe"),
                out,
            );
        }
    }
    (cpu, memory)
}

/// A container's (or a container override's) env under `p`: names given, without
/// `=`, not reserved; values not too long; a `valueSource` a `secretKeyRef` with a
/// secret and a version (empty, `latest` or a number).
fn check_env(env: &[EnvVar], p: &str, reserved: &[&str], out: &mut BadRequest) {
    for (i, e) in env.iter().enumerate() {
        let ep = format!("{p}.env[{i}]");
        if e.name.is_empty() {
            out.add(join(&ep, "name"), "required");
        } else if e.name.contains('=') {
            out.add(join(&ep, "name"), "must not contain '='");
        } else if e.name.len() > 32768 {
            out.add(join(&ep, "name"), "at most 32768 characters");
        } else if reserved.contains(&e.name.as_str()) {
            out.add(
                join(&ep, "name"),
                format!("{} is reserved: the platform sets it", e.name),
            );
        }
        if e.value.as_ref().is_some_and(|v| v.len() > 32768) {
            out.add(join(&ep, "value"), "at most 32768 bytes");
        }
        if e.value.is_some() && e.value_source.is_some() {
            out.add(&ep, "set value or valueSource, not both");
        }
        if let Some(source) = &e.value_source {
            let sp = join(&ep, "valueSource.secretKeyRef");
            match &source.secret_key_ref {
                None => out.add(sp, "required"),
                Some(r) => {
                    check_secret_ref(&r.secret, &join(&sp, "secret"), out);
                    if let Err(err) = validate_version_ref(&r.version) {
                        out.add(join(&sp, "version"), err);
                    }
                }
            }
        }
    }
}

/// A template's secret reference: `SECRET` or `projects/PROJECT/secrets/SECRET`.
fn check_secret_ref(secret: &str, path: &str, out: &mut BadRequest) {
    if secret.is_empty() {
        out.add(path, "required");
    } else if let Err(e) = parse_secret_ref("-", secret) {
        out.add(path, e);
    }
}

/// A secret volume: its secret, and each item's path (relative, without `..`, once
/// each), version and mode; modes within 0 to 0777.
fn check_secret_volume(s: &SecretVolumeSource, p: &str, out: &mut BadRequest) {
    check_secret_ref(&s.secret, &join(p, "secret"), out);
    if !(0..=MAX_FILE_MODE).contains(&s.default_mode) {
        out.add(
            join(p, "defaultMode"),
            format!("must be between 0 and 0777 (octal; {MAX_FILE_MODE} in decimal)"),
        );
    }
    let mut paths = HashSet::new();
    for (i, item) in s.items.iter().enumerate() {
        let ip = format!("{p}.items[{i}]");
        let path = item.path.as_str();
        if path.is_empty() {
            out.add(join(&ip, "path"), "required");
        } else if path.starts_with('/') {
            out.add(
                join(&ip, "path"),
                "must be relative to the volume's mount path",
            );
        } else if path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            out.add(
                join(&ip, "path"),
                "must not hold '..', '.' or empty components",
            );
        } else if !paths.insert(path) {
            out.add(join(&ip, "path"), format!("{path} is given twice"));
        }
        if let Err(e) = validate_version_ref(&item.version) {
            out.add(join(&ip, "version"), e);
        }
        if !(0..=MAX_FILE_MODE).contains(&item.mode) {
            out.add(
                join(&ip, "mode"),
                format!("must be between 0 and 0777 (octal; {MAX_FILE_MODE} in decimal)"),
            );
        }
    }
}

/// The memory range Cloud Run allows for a CPU (millicores).
fn memory_bounds(cpu: u64, gen2: bool) -> (u64, u64) {
    let (min, max) = match cpu {
        0..=499 => (128 * MI, 512 * MI),
        500..=999 => (128 * MI, GI),
        1000 => (128 * MI, 4 * GI),
        2000 => (128 * MI, 8 * GI),
        4000 => (2 * GI, 16 * GI),
        6000 => (4 * GI, 24 * GI),
        _ => (4 * GI, 32 * GI),
    };
    (if gen2 { min.max(512 * MI) } else { min }, max)
}

fn check_resources(
    c: &Container,
    p: &str,
    gen2: bool,
    workload: Workload,
    out: &mut BadRequest,
) -> (u64, u64) {
    let rp = join(p, "resources");
    let lp = join(&rp, "limits");
    let limits = c.resources.as_ref().map(|r| &r.limits);
    let cpu_idle = c.resources.as_ref().is_none_or(|r| r.cpu_idle);
    if let Some(limits) = limits {
        for key in limits.keys() {
            if key != "cpu" && key != "memory" {
                out.add(
                    key_path(&lp, key),
                    "only cpu and memory limits are supported",
                );
            }
        }
    }
    let cpu_path = key_path(&lp, "cpu");
    let memory_path = key_path(&lp, "memory");
    let mut cpu_ok = true;
    let cpu = match limits.and_then(|l| l.get("cpu")) {
        None => 1000,
        Some(s) => match parse_cpu(s) {
            Err(e) => {
                out.add(&cpu_path, e.to_string());
                cpu_ok = false;
                1000
            }
            Ok(m) => {
                if m < 80 {
                    out.add(&cpu_path, "must be at least 0.08");
                    cpu_ok = false;
                } else if m > 8000 {
                    out.add(&cpu_path, "must be at most 8");
                    cpu_ok = false;
                } else if m > 1000 && m % 1000 != 0 {
                    out.add(
                        &cpu_path,
                        "above 1, CPU must be a whole number: 2, 4, 6 or 8",
                    );
                    cpu_ok = false;
                } else if m >= 1000 && ![1000, 2000, 4000, 6000, 8000].contains(&m) {
                    out.add(&cpu_path, "must be between 0.08 and 1, or 1, 2, 4, 6 or 8");
                    cpu_ok = false;
                }
                m
            }
        },
    };
    // A task has its CPU all along: `cpuIdle` means nothing for jobs.
    if cpu_ok && cpu < 1000 && !cpu_idle && workload == Workload::Service {
        out.add(
            join(&rp, "cpuIdle"),
            "less than 1 CPU needs CPU allocated only during requests (cpuIdle: true)",
        );
    }
    let memory_text = limits
        .and_then(|l| l.get("memory"))
        .map_or(DEFAULT_MEMORY, String::as_str);
    let memory = match parse_memory(memory_text) {
        Err(e) => {
            out.add(&memory_path, e.to_string());
            return (cpu, 512 * MI);
        }
        Ok(m) => m,
    };
    if memory > 32 * GI {
        out.add(&memory_path, "must be at most 32Gi");
    } else if cpu_ok {
        let (min, max) = memory_bounds(cpu, gen2);
        if memory < min || memory > max {
            let why = if memory < 512 * MI && gen2 {
                " (the second generation execution environment needs at least 512Mi)".to_string()
            } else {
                String::new()
            };
            out.add(
                &memory_path,
                format!(
                    "for {} CPU, memory must be between {} and {} inclusive, not {memory_text}{why}",
                    format_cpu(cpu),
                    format_memory(min),
                    format_memory(max),
                ),
            );
        }
    }
    (cpu, memory)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ProbeKind {
    Startup,
    Liveness,
}

fn check_probe(probe: &Probe, kind: ProbeKind, has_port: bool, p: &str, out: &mut BadRequest) {
    let actions = [
        probe.http_get.is_some(),
        probe.tcp_socket.is_some(),
        probe.grpc.is_some(),
    ];
    if actions.iter().filter(|a| **a).count() != 1 {
        out.add(p, "exactly one of httpGet, tcpSocket or grpc must be set");
    }
    if kind == ProbeKind::Liveness && probe.tcp_socket.is_some() {
        out.add(
            join(p, "tcpSocket"),
            "liveness probes support httpGet and grpc only",
        );
    }
    let max_period = if kind == ProbeKind::Startup {
        240
    } else {
        3600
    };
    if !(0..=max_period).contains(&probe.initial_delay_seconds) {
        out.add(
            join(p, "initialDelaySeconds"),
            format!("must be between 0 and {max_period}"),
        );
    }
    let timeout = if probe.timeout_seconds == 0 {
        1
    } else {
        probe.timeout_seconds
    };
    let period = if probe.period_seconds == 0 {
        10
    } else {
        probe.period_seconds
    };
    let mut bounds_ok = true;
    if !(1..=3600).contains(&timeout) {
        out.add(join(p, "timeoutSeconds"), "must be between 1 and 3600");
        bounds_ok = false;
    }
    if !(1..=max_period).contains(&period) {
        out.add(
            join(p, "periodSeconds"),
            format!("must be between 1 and {max_period}"),
        );
        bounds_ok = false;
    }
    if bounds_ok && timeout > period {
        out.add(
            join(p, "timeoutSeconds"),
            format!("must not exceed periodSeconds ({period})"),
        );
    }
    if probe.failure_threshold < 0 {
        out.add(join(p, "failureThreshold"), "must be at least 1");
    }
    let mut check_port = |port: i32, path: String| {
        if port == 0 && !has_port {
            out.add(
                path,
                "required: the container exposes no port to default to",
            );
        } else if !(0..=65535).contains(&port) {
            out.add(path, "must be between 1 and 65535");
        }
    };
    if let Some(h) = &probe.http_get {
        check_port(h.port, join(p, "httpGet.port"));
    }
    if let Some(t) = &probe.tcp_socket {
        check_port(t.port, join(p, "tcpSocket.port"));
    }
    if let Some(g) = &probe.grpc {
        check_port(g.port, join(p, "grpc.port"));
    }
    if let Some(h) = &probe.http_get {
        if !h.path.is_empty() && !h.path.starts_with('/') {
            out.add(join(p, "httpGet.path"), "must start with '/'");
        }
        for (i, header) in h.http_headers.iter().enumerate() {
            let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            if header.name.is_empty() || !header.name.bytes().all(token) {
                out.add(
                    format!("{p}.httpGet.httpHeaders[{i}].name"),
                    "must be an HTTP header name",
                );
            }
            if header
                .value
                .bytes()
                .any(|b| b == b'\r' || b == b'\n' || b == 0)
            {
                out.add(
                    format!("{p}.httpGet.httpHeaders[{i}].value"),
                    "must not contain CR, LF or NUL",
                );
            }
        }
    }
}

fn check_depends_on(
    containers: &[Container],
    names: &HashMap<&str, usize>,
    cp: &str,
    out: &mut BadRequest,
) {
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); containers.len()];
    for (i, c) in containers.iter().enumerate() {
        for (j, dep) in c.depends_on.iter().enumerate() {
            let path = format!("{cp}[{i}].dependsOn[{j}]");
            match names.get(dep.as_str()) {
                None => out.add(path, format!("no container is named \"{dep}\"")),
                Some(&k) if k == i => out.add(path, "a container cannot depend on itself"),
                Some(&k) => edges[i].push(k),
            }
        }
    }
    // Depth-first search for cycles; each cycle reported once, at its first container.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        i: usize,
        edges: &[Vec<usize>],
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
        cycles: &mut Vec<Vec<usize>>,
    ) {
        marks[i] = Mark::Open;
        stack.push(i);
        for &k in &edges[i] {
            match marks[k] {
                Mark::New => visit(k, edges, marks, stack, cycles),
                Mark::Open => {
                    let start = stack.iter().position(|&s| s == k).unwrap_or(0);
                    cycles.push(stack[start..].to_vec());
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks[i] = Mark::Done;
    }
    let mut marks = vec![Mark::New; containers.len()];
    let mut cycles = Vec::new();
    for i in 0..containers.len() {
        if marks[i] == Mark::New {
            visit(i, &edges, &mut marks, &mut Vec::new(), &mut cycles);
        }
    }
    for cycle in cycles {
        let first = *cycle.iter().min().unwrap_or(&0);
        let mut names: Vec<&str> = cycle.iter().map(|&i| containers[i].name.as_str()).collect();
        names.push(names[0]);
        out.add(
            format!("{cp}[{first}].dependsOn"),
            format!("dependency cycle: {}", names.join(" -> ")),
        );
    }
}

fn check_traffic(
    traffic: &[TrafficTarget],
    service_id: Option<&str>,
    p: &str,
    out: &mut BadRequest,
) {
    if traffic.is_empty() {
        return;
    }
    let mut sum: i64 = 0;
    let mut percents_ok = true;
    let mut tags = HashSet::new();
    for (i, t) in traffic.iter().enumerate() {
        let tp = format!("{p}[{i}]");
        let kind = match t.kind {
            TrafficTargetAllocationType::Unspecified if t.revision.is_empty() => {
                TrafficTargetAllocationType::Latest
            }
            TrafficTargetAllocationType::Unspecified => TrafficTargetAllocationType::Revision,
            k => k,
        };
        match kind {
            TrafficTargetAllocationType::Latest if !t.revision.is_empty() => out.add(
                join(&tp, "revision"),
                "must be empty for TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST",
            ),
            TrafficTargetAllocationType::Revision if t.revision.is_empty() => out.add(
                join(&tp, "revision"),
                "required for TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION",
            ),
            TrafficTargetAllocationType::Revision => {
                if let Err(e) = validate_revision_id(&t.revision) {
                    out.add(join(&tp, "revision"), e.to_string());
                } else if let Some(sid) = service_id {
                    if !t.revision.starts_with(&format!("{sid}-")) {
                        out.add(
                            join(&tp, "revision"),
                            format!("\"{}\" is not a revision of service \"{sid}\"", t.revision),
                        );
                    }
                }
            }
            _ => {}
        }
        if !(0..=100).contains(&t.percent) {
            out.add(join(&tp, "percent"), "must be between 0 and 100");
            percents_ok = false;
        }
        sum += t.percent as i64;
        if !t.tag.is_empty() {
            let path = join(&tp, "tag");
            if !is_dns_label(&t.tag) || !t.tag.as_bytes()[0].is_ascii_lowercase() {
                out.add(
                    &path,
                    "a tag is lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen",
                );
            } else if t.tag.contains("---") {
                out.add(&path, "a tag must not contain \"---\"");
            } else if service_id
                .is_some_and(|sid| sid.len() + t.tag.len() > MAX_TAG_AND_SERVICE_LEN)
            {
                out.add(
                    &path,
                    format!("the tag and the service name together must not exceed {MAX_TAG_AND_SERVICE_LEN} characters"),
                );
            } else if !tags.insert(t.tag.as_str()) {
                out.add(&path, format!("duplicate tag \"{}\"", t.tag));
            }
        }
    }
    if percents_ok && sum != 100 {
        out.add(p, format!("traffic percents must add up to 100, not {sum}"));
    }
}
