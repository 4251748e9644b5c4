//! Jobs: create, get, list, update (patch), delete, `:run`, and the IAM verbs
//! (`:getIamPolicy`, `:setIamPolicy`, `:testIamPermissions`, see [`super::iam`]).
//!
//! A job needs no deployment: nothing runs until it is run. So its mutations do not wait
//! for the controller: create, update and delete write the job and an operation that is
//! **already done**, its response (and metadata) the job, in one store transaction.
//!
//! - Create and update read the request's job (its output-only fields ignored), apply
//!   the `updateMask` (none or `*`: the writable fields replaced as a whole), fill in
//!   Cloud Run's defaults and validate it (400 with field violations named
//!   `job.template...`); a change of the desired state bumps `generation` (1 on
//!   create); the job is written ready: `observedGeneration` its generation, not
//!   `reconciling`, its `Ready` terminal condition `CONDITION_SUCCEEDED`. An update
//!   that changes nothing writes only its (done) operation. The `etag`, when given,
//!   must match (409 `ABORTED`); `allowMissing` creates a missing job.
//! - Delete removes the job, all its executions and all their tasks, and its IAM
//!   policy, in the same
//!   transaction as its (done) operation, whose response is the job with `deleteTime`
//!   set. The controller sees the deletions in the change log and stops what runs.
//!
//! `:run` (body `RunJobRequest`: `overrides`, `validateOnly`, `etag`) writes in one
//! transaction: a new [`Execution`] `{job}-{5 random}` made of the job's execution
//! template with the overrides applied (container args replaced or cleared, env merged
//! by name, `taskCount`, task `timeout`), `reconciling`, its `Completed` and
//! `ResourcesAvailable` conditions `CONDITION_PENDING`; the job with one more
//! `executionCount` and `latestCreatedExecution` naming it (`EXECUTION_PENDING`); and a
//! **running** operation whose metadata is the execution. The controller finishes that operation
//! when the execution ends ([`super::complete_operation`]).
//!
//! A member needs more than the route's permission for some of these (see
//! [`super::auth`]): `iam.serviceAccounts.actAs` on the service account (after the
//! defaults) of a new job template (a create, or an update that changes the template),
//! and `run.jobs.runWithOverrides` for a `:run` with overrides.
//!
//! `validateOnly` does every check and writes nothing: the operation returned is done,
//! its response the job (or, for `:run`, the execution) as it would be.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::response::Response;
use store::{Op, Precondition};

use super::auth::{require, require_act_as};
use super::iam::{caller_of, custom_method, delete_policy_op, policy_race, Target};
use super::{
    all_names, answer, blocking, check_etag, done_operation, error_response, invalid_field,
    json_response, list_page, mask, new_operation_name, parse_body, read_record, split_verb,
    store_status, to_doc, unimplemented_verb, ApiState, Params, EXECUTION_KIND, JOB_KIND,
    OPERATION_KIND, TASK_KIND,
};
use crate::auth::Caller;
use crate::condition::{types, Condition, ConditionState};
use crate::defaults::apply_job_defaults;
use crate::execution::Execution;
use crate::job::{
    CompletionStatus, ExecutionReference, Job, ListJobsResponse, Overrides, RunJobRequest,
};
use crate::json::to_value;
use crate::names::{validate_job_id, JobName};
use crate::naming::{generate_execution_id, new_uid};
use crate::operation::Operation;
use crate::status::Status;
use crate::validate::{validate_job, validate_overrides};
use crate::wkt::Timestamp;

type Q = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// How many times a mutation is retried when the job changed under it (the controller
/// writing status, another run) or a generated execution id was taken.
const ATTEMPTS: usize = 5;

pub(crate) async fn create(
    State(state): State<ApiState>,
    caller: Option<Extension<Caller>>,
    Path((project, location)): Path<(String, String)>,
    query: Q,
    body: Bytes,
) -> Response {
    let params = match Params::from_query(query) {
        Ok(p) => p,
        Err(e) => return error_response(&e, Default::default()),
    };
    let encoding = params.encoding();
    let caller = caller_of(caller);
    let result = blocking(move || {
        let parent = state.location(&project, &location)?;
        let job_id = params.str("jobId").unwrap_or("").to_string();
        if job_id.is_empty() {
            return Err(invalid_field("jobId", "required"));
        }
        validate_job_id(&job_id).map_err(|e| invalid_field("jobId", e.to_string()))?;
        let validate_only = params.bool("validateOnly")?;
        let request: Job = parse_body(&body, "job")?;
        create_job(&state, &caller, &parent.job(job_id), request, validate_only)
    })
    .await;
    json_response(result, encoding)
}

pub(crate) async fn list(
    State(state): State<ApiState>,
    Path((project, location)): Path<(String, String)>,
    query: Q,
) -> Response {
    let params = match Params::from_query(query) {
        Ok(p) => p,
        Err(e) => return error_response(&e, Default::default()),
    };
    let encoding = params.encoding();
    let result = blocking(move || {
        let parent = state.location(&project, &location)?;
        // Deleted jobs are gone at once: `showDeleted` is read and changes nothing.
        params.bool("showDeleted")?;
        let (jobs, next_page_token) =
            list_page(state.store.as_ref(), JOB_KIND, &parent.to_string(), &params)?;
        Ok(ListJobsResponse {
            jobs,
            next_page_token,
        })
    })
    .await;
    json_response(result, encoding)
}

pub(crate) async fn get(
    State(state): State<ApiState>,
    caller: Option<Extension<Caller>>,
    Path((project, location, job)): Path<(String, String, String)>,
    query: Q,
) -> Response {
    let caller = caller_of(caller);
    answer(query, move |params| {
        let (id, verb) = split_verb(&job);
        let name = job_name(&state, &project, &location, id)?;
        if verb.is_some() {
            return custom_method(
                &state,
                &job_target(&name),
                verb,
                true,
                &caller,
                &params,
                &[],
            );
        }
        Ok(to_value(&read_job(&state, &name)?.0, params.encoding()))
    })
    .await
}

pub(crate) async fn update(
    State(state): State<ApiState>,
    caller: Option<Extension<Caller>>,
    Path((project, location, job)): Path<(String, String, String)>,
    query: Q,
    body: Bytes,
) -> Response {
    let params = match Params::from_query(query) {
        Ok(p) => p,
        Err(e) => return error_response(&e, Default::default()),
    };
    let encoding = params.encoding();
    let caller = caller_of(caller);
    let result = blocking(move || {
        let name = job_name(&state, &project, &location, &job)?;
        let validate_only = params.bool("validateOnly")?;
        let allow_missing = params.bool("allowMissing")?;
        let paths = params.list("updateMask");
        let request: Job = parse_body(&body, "job")?;
        update_job(
            &state,
            &caller,
            &name,
            request,
            &paths,
            validate_only,
            allow_missing,
        )
    })
    .await;
    json_response(result, encoding)
}

pub(crate) async fn delete(
    State(state): State<ApiState>,
    Path((project, location, job)): Path<(String, String, String)>,
    query: Q,
) -> Response {
    let params = match Params::from_query(query) {
        Ok(p) => p,
        Err(e) => return error_response(&e, Default::default()),
    };
    let encoding = params.encoding();
    let result = blocking(move || {
        let name = job_name(&state, &project, &location, &job)?;
        let validate_only = params.bool("validateOnly")?;
        let etag = params.str("etag").unwrap_or("").to_string();
        delete_job(&state, &name, &etag, validate_only)
    })
    .await;
    json_response(result, encoding)
}

/// `POST .../jobs/{job}:run`, and the IAM verbs.
pub(crate) async fn post(
    State(state): State<ApiState>,
    caller: Option<Extension<Caller>>,
    Path((project, location, job)): Path<(String, String, String)>,
    query: Q,
    body: Bytes,
) -> Response {
    let params = match Params::from_query(query) {
        Ok(p) => p,
        Err(e) => return error_response(&e, Default::default()),
    };
    let encoding = params.encoding();
    let caller = caller_of(caller);
    let result = blocking(move || {
        let (id, verb) = split_verb(&job);
        let name = job_name(&state, &project, &location, id)?;
        if verb != Some("run") {
            return custom_method(
                &state,
                &job_target(&name),
                verb,
                false,
                &caller,
                &params,
                &body,
            );
        }
        let mut request: RunJobRequest = parse_body(&body, "")?;
        request.validate_only |= params.bool("validateOnly")?;
        let operation = run_job(&state, &caller, &name, request)?;
        Ok(to_value(&operation, encoding))
    })
    .await;
    json_response(result, encoding)
}

/// A job as the target of the IAM verbs.
fn job_target(name: &JobName) -> Target {
    Target::resource(
        JOB_KIND,
        name.to_string(),
        &name.project,
        job_not_found(name),
    )
}

/// The job a path names. A `:verb` custom method (`:getIamPolicy`...) is not
/// implemented.
fn job_name(state: &ApiState, project: &str, location: &str, job: &str) -> Result<JobName, Status> {
    let parent = state.location(project, location)?;
    if let (_, Some(verb)) = split_verb(job) {
        return Err(unimplemented_verb(verb));
    }
    validate_job_id(job).map_err(|e| invalid_field("name", e.to_string()))?;
    Ok(parent.job(job))
}

/// A job not found, in Cloud Run's words.
pub(crate) fn job_not_found(name: &JobName) -> Status {
    Status::not_found(format!(
        "Resource '{}' of kind 'JOB' in region '{}' in project '{}' does not exist.",
        name.job, name.location, name.project
    ))
}

/// The stored job and its store revision.
fn read_job(state: &ApiState, name: &JobName) -> Result<(Job, u64), Status> {
    read_record(state.store.as_ref(), JOB_KIND, &name.to_string(), || {
        job_not_found(name)
    })
}

/// The writable fields of `from` copied into `to` (every field listed, so that a field
/// added to [`Job`] is a compile error here until it is sorted).
fn copy_writable(from: Job, to: &mut Job) {
    let Job {
        name: _,
        uid: _,
        generation: _,
        labels,
        annotations,
        create_time: _,
        update_time: _,
        delete_time: _,
        expire_time: _,
        creator: _,
        last_modifier: _,
        client,
        client_version,
        launch_stage,
        binary_authorization,
        template,
        observed_generation: _,
        terminal_condition: _,
        conditions: _,
        execution_count: _,
        latest_created_execution: _,
        reconciling: _,
        satisfies_pzs: _,
        start_execution_token,
        run_execution_token,
        etag: _,
    } = from;
    to.labels = labels;
    to.annotations = annotations;
    to.client = client;
    to.client_version = client_version;
    to.launch_stage = launch_stage;
    to.binary_authorization = binary_authorization;
    to.template = template;
    to.start_execution_token = start_execution_token;
    to.run_execution_token = run_execution_token;
}

/// Only the writable fields of a job: its desired state.
fn spec_of(j: &Job) -> Job {
    let mut out = Job::default();
    copy_writable(j.clone(), &mut out);
    out
}

/// The new state of job `name` from `current` (none on create) and the desired state,
/// checked, with whether anything changed.
fn plan(name: &JobName, current: Option<&Job>, desired: Job) -> Result<(Job, bool), Status> {
    let mut desired = spec_of(&desired);
    desired.name = name.to_string();
    // Checked as sent (so that a missing template is reported as such), then again with
    // the defaults in.
    validate_job(&desired).map_err(Status::from)?;
    apply_job_defaults(&mut desired);
    validate_job(&desired).map_err(Status::from)?;

    let now = Timestamp::now();
    let mut job = match current {
        Some(c) if spec_of(c) == spec_of(&desired) => return Ok((c.clone(), false)),
        Some(c) => {
            let mut j = c.clone();
            copy_writable(desired, &mut j);
            j.generation = c.generation + 1;
            j
        }
        None => {
            let mut j = desired;
            j.uid = new_uid();
            j.generation = 1;
            j.create_time = Some(now);
            j
        }
    };
    job.name = name.to_string();
    job.update_time = Some(now);
    job.delete_time = None;
    // Nothing to deploy: the job is as asked at once.
    job.reconciling = false;
    job.observed_generation = job.generation;
    job.terminal_condition = Some(Condition {
        last_transition_time: Some(now),
        ..Condition::new(types::READY, ConditionState::Succeeded)
    });
    job.etag = job.compute_etag();
    Ok((job, true))
}

/// Writes a planned job (if it changed) and its done operation at once; `expected` is
/// the job's precondition.
fn commit(
    state: &ApiState,
    name: &JobName,
    job: Job,
    changed: bool,
    expected: Precondition,
) -> Result<Operation, store::StoreError> {
    let op_name = new_operation_name(&name.parent());
    let operation = done_operation(op_name.clone(), job.clone());
    let key = name.to_string();
    let first = if changed {
        Op::put(JOB_KIND, key, to_doc(&job), expected)
    } else {
        Op::check(JOB_KIND, key, expected)
    };
    state.store.transact(vec![
        first,
        Op::put(
            OPERATION_KIND,
            op_name,
            to_doc(&operation),
            Precondition::Absent,
        ),
    ])?;
    state.poke();
    Ok(operation)
}

/// A store error of a job mutation.
fn commit_status(e: store::StoreError, name: &JobName) -> Status {
    match e {
        store::StoreError::AlreadyExists { kind, .. } if kind == JOB_KIND => {
            Status::already_exists(format!("Resource '{}' already exists.", name.job))
        }
        store::StoreError::NotFound { kind, .. } if kind == JOB_KIND => job_not_found(name),
        other => store_status(other),
    }
}

/// What a create or update needs of a member beyond its route's permission (see
/// [`super::auth`]): `iam.serviceAccounts.actAs` on the service account (after the
/// defaults) of a new job template: on create, or when an update changes the template.
fn check_plan(
    state: &ApiState,
    caller: &Caller,
    name: &JobName,
    current: Option<&Job>,
    job: &Job,
    changed: bool,
) -> Result<(), Status> {
    if caller.member().is_none() || !changed {
        return Ok(());
    }
    if current.is_some_and(|c| c.template == job.template) {
        return Ok(());
    }
    let account = job
        .template
        .as_ref()
        .and_then(|t| t.template.as_ref())
        .map_or("", |t| t.service_account.as_str());
    require_act_as(state, caller, account, &name.project)
}

/// `CreateJob`; `caller` is held to what the module documentation says a member needs.
pub fn create_job(
    state: &ApiState,
    caller: &Caller,
    name: &JobName,
    request: Job,
    validate_only: bool,
) -> Result<Operation, Status> {
    let (job, _) = plan(name, None, request)?;
    check_plan(state, caller, name, None, &job, true)?;
    if validate_only {
        let existing = state
            .store
            .get(JOB_KIND, &name.to_string())
            .map_err(store_status)?;
        if existing.is_some() {
            return Err(Status::already_exists(format!(
                "Resource '{}' already exists.",
                name.job
            )));
        }
        return Ok(done_operation(new_operation_name(&name.parent()), job));
    }
    commit(state, name, job, true, Precondition::Absent).map_err(|e| commit_status(e, name))
}

/// `UpdateJob` (`paths`: the `updateMask`); `caller` is held to what the
/// module documentation says a member needs.
pub fn update_job(
    state: &ApiState,
    caller: &Caller,
    name: &JobName,
    request: Job,
    paths: &[String],
    validate_only: bool,
    allow_missing: bool,
) -> Result<Operation, Status> {
    for attempt in 1..=ATTEMPTS {
        let key = name.to_string();
        let record = state.store.get(JOB_KIND, &key).map_err(store_status)?;
        let Some(record) = record else {
            if allow_missing {
                return create_job(state, caller, name, request, validate_only);
            }
            return Err(job_not_found(name));
        };
        let current: Job = super::from_doc(JOB_KIND, &key, record.doc.clone())?;
        check_etag(&request.etag, &current.etag, &key)?;
        let desired = if mask::is_full(paths) {
            request.clone()
        } else {
            mask::apply_fields(&current, &request, paths, mask::JOB_WRITABLE, "job")?
        };
        let (job, changed) = plan(name, Some(&current), desired)?;
        check_plan(state, caller, name, Some(&current), &job, changed)?;
        if validate_only {
            return Ok(done_operation(new_operation_name(&name.parent()), job));
        }
        match commit(
            state,
            name,
            job,
            changed,
            Precondition::Revision(record.revision),
        ) {
            Ok(op) => return Ok(op),
            Err(e) if e.is_conflict() && attempt < ATTEMPTS => continue,
            Err(e) => return Err(commit_status(e, name)),
        }
    }
    unreachable!("the last attempt returns")
}

/// `DeleteJob`: see the module documentation.
pub fn delete_job(
    state: &ApiState,
    name: &JobName,
    etag: &str,
    validate_only: bool,
) -> Result<Operation, Status> {
    let key = name.to_string();
    let (mut job, revision) = read_job(state, name)?;
    check_etag(etag, &job.etag, &key)?;
    let now = Timestamp::now();
    job.delete_time = Some(now);
    job.update_time = Some(now);
    job.reconciling = false;
    let op_name = new_operation_name(&name.parent());
    let operation = done_operation(op_name.clone(), job);
    if validate_only {
        return Ok(operation);
    }
    let mut ops = vec![Op::delete(
        JOB_KIND,
        key.clone(),
        Precondition::Revision(revision),
    )];
    for kind in [EXECUTION_KIND, TASK_KIND] {
        ops.extend(
            all_names(state.store.as_ref(), kind, &key)?
                .into_iter()
                .map(|n| Op::delete(kind, n, Precondition::Exists)),
        );
    }
    ops.push(delete_policy_op(state, &key)?);
    ops.push(Op::put(
        OPERATION_KIND,
        op_name,
        to_doc(&operation),
        Precondition::Absent,
    ));
    state.store.transact(ops).map_err(|e| {
        if let Some(status) = policy_race(&e, &key) {
            return status;
        }
        match e {
            store::StoreError::Conflict { .. } => Status::aborted(format!(
                "The job '{}' changed while it was being deleted; retry.",
                name.job
            )),
            // An execution or task went meanwhile (the controller, a deletion).
            store::StoreError::NotFound { kind, .. } if kind != JOB_KIND => {
                Status::aborted(format!(
                    "The executions of job '{}' changed while it was being deleted; retry.",
                    name.job
                ))
            }
            other => commit_status(other, name),
        }
    })?;
    state.poke();
    Ok(operation)
}

/// `RunJob`: see the module documentation. With overrides (not empty) a member needs
/// `run.jobs.runWithOverrides` on the job, checked before the job is read.
pub fn run_job(
    state: &ApiState,
    caller: &Caller,
    name: &JobName,
    request: RunJobRequest,
) -> Result<Operation, Status> {
    let overrides = request.overrides.clone().unwrap_or_default();
    if overrides != Overrides::default() {
        let key = name.to_string();
        require(
            state,
            caller,
            "run.jobs.runWithOverrides",
            &key,
            &[format!("projects/{}", name.project), key.clone()],
        )?;
    }
    for attempt in 1..=ATTEMPTS {
        let key = name.to_string();
        let (mut job, revision) = read_job(state, name)?;
        check_etag(&request.etag, &job.etag, &key)?;
        validate_overrides(&overrides, &job).map_err(Status::from)?;
        let template = overrides.apply(&job.template.clone().unwrap_or_default());
        // What the overrides make must still be a valid job (as a whole, named so).
        let mut overridden = spec_of(&job);
        overridden.name = key.clone();
        overridden.template = Some(template.clone());
        validate_job(&overridden).map_err(Status::from)?;

        let now = Timestamp::now();
        let mut execution = Execution::from_job(&job, &generate_execution_id(&name.job), &template);
        execution.uid = new_uid();
        execution.create_time = Some(now);
        execution.update_time = Some(now);
        for c in &mut execution.conditions {
            c.last_transition_time = Some(now);
        }
        execution.etag = execution.compute_etag();

        job.execution_count += 1;
        job.latest_created_execution = Some(ExecutionReference {
            name: execution.name.clone(),
            create_time: Some(now),
            completion_status: CompletionStatus::Pending,
            ..Default::default()
        });
        job.etag = job.compute_etag();

        let op_name = new_operation_name(&name.parent());
        if request.validate_only {
            return Ok(done_operation(op_name, execution));
        }
        let operation = Operation::running(op_name.clone(), execution.clone());
        let ops = vec![
            Op::put(
                JOB_KIND,
                key.clone(),
                to_doc(&job),
                Precondition::Revision(revision),
            ),
            Op::put(
                EXECUTION_KIND,
                execution.name.clone(),
                to_doc(&execution),
                Precondition::Absent,
            ),
            Op::put(
                OPERATION_KIND,
                op_name,
                to_doc(&operation),
                Precondition::Absent,
            ),
        ];
        match state.store.transact(ops) {
            Ok(_) => {
                state.poke();
                return Ok(operation);
            }
            Err(e) if e.is_conflict() && attempt < ATTEMPTS => continue,
            // The random execution id was taken: draw another.
            Err(store::StoreError::AlreadyExists { kind, .. })
                if kind == EXECUTION_KIND && attempt < ATTEMPTS =>
            {
                continue
            }
            Err(e) => return Err(commit_status(e, name)),
        }
    }
    unreachable!("the last attempt returns")
}
