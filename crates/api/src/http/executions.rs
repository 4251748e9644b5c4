//! Executions: get, list (`-` as the job lists every job's), delete, and `:cancel`.
//!
//! Executions are made by `:run` only ([`super::jobs`]).
//!
//! - Delete removes the execution and its tasks at once, in the same transaction as an
//!   operation already done whose response is the execution with `deleteTime` set. A
//!   running execution may be deleted: the controller sees the deletion and stops its
//!   tasks.
//! - `:cancel` (body `{"validateOnly", "etag"}`) refuses an execution that already
//!   ended (`FAILED_PRECONDITION`); otherwise it writes the execution with its
//!   `Completed` condition `CONDITION_RECONCILING`, `executionReason: CANCELLING` and
//!   `reconciling`, and a **running** operation whose metadata is that execution, in
//!   one transaction. The controller stops the tasks and finishes the operation
//!   ([`super::complete_operation`]) once the execution ended.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use store::{Op, Precondition};

use super::{
    all_names, blocking, check_etag, done_operation, error_response, invalid_field, json_response,
    list_page, new_operation_name, parse_body, read_record, split_verb, store_status, to_doc,
    unimplemented_verb, ApiState, Params, EXECUTION_KIND, OPERATION_KIND, TASK_KIND,
};
use crate::condition::{types, Condition, ConditionState, ExecutionReason};
use crate::execution::{CancelExecutionRequest, Execution, ListExecutionsResponse};
use crate::names::{validate_execution_id, validate_job_id, ExecutionName, JobName};
use crate::operation::Operation;
use crate::status::Status;
use crate::wkt::Timestamp;

type Q = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// How many times `:cancel` is retried when the execution changed under it (the
/// controller writing progress).
const ATTEMPTS: usize = 5;

pub(crate) async fn get(
    State(state): State<ApiState>,
    Path((project, location, job, execution)): Path<(String, String, String, String)>,
    query: Q,
) -> Response {
    let params = match Params::from_query(query) {
        Ok(p) => p,
        Err(e) => return error_response(&e, Default::default()),
    };
    let result = blocking(move || {
        let name = execution_name(&state, &project, &location, &job, &execution)?;
        Ok(read_execution(&state, &name)?.0)
    })
    .await;
    json_response(result, params.encoding())
}

pub(crate) async fn list(
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
        let loc = state.location(&project, &location)?;
        params.bool("showDeleted")?;
        let parent = if job == JobName::ANY {
            loc.to_string()
        } else {
            validate_job_id(&job).map_err(|e| invalid_field("parent", e.to_string()))?;
            loc.job(job).to_string()
        };
        let (executions, next_page_token) =
            list_page(state.store.as_ref(), EXECUTION_KIND, &parent, &params)?;
        Ok(ListExecutionsResponse {
            executions,
            next_page_token,
        })
    })
    .await;
    json_response(result, encoding)
}

pub(crate) async fn delete(
    State(state): State<ApiState>,
    Path((project, location, job, execution)): Path<(String, String, String, String)>,
    query: Q,
) -> Response {
    let params = match Params::from_query(query) {
        Ok(p) => p,
        Err(e) => return error_response(&e, Default::default()),
    };
    let encoding = params.encoding();
    let result = blocking(move || {
        let name = execution_name(&state, &project, &location, &job, &execution)?;
        let validate_only = params.bool("validateOnly")?;
        let etag = params.str("etag").unwrap_or("").to_string();
        delete_execution(&state, &name, &etag, validate_only)
    })
    .await;
    json_response(result, encoding)
}

/// `POST .../executions/{e}:cancel`; other verbs are not implemented.
pub(crate) async fn post(
    State(state): State<ApiState>,
    Path((project, location, job, execution)): Path<(String, String, String, String)>,
    query: Q,
    body: Bytes,
) -> Response {
    let params = match Params::from_query(query) {
        Ok(p) => p,
        Err(e) => return error_response(&e, Default::default()),
    };
    let encoding = params.encoding();
    let result = blocking(move || {
        let (id, verb) = split_verb(&execution);
        match verb {
            Some("cancel") => {}
            Some(verb) => return Err(unimplemented_verb(verb)),
            None => {
                return Err(Status::unimplemented(
                    "This method is not supported on this resource.",
                ))
            }
        }
        let name = execution_name(&state, &project, &location, &job, id)?;
        let mut request: CancelExecutionRequest = parse_body(&body, "")?;
        request.validate_only |= params.bool("validateOnly")?;
        cancel_execution(&state, &name, &request.etag, request.validate_only)
    })
    .await;
    json_response(result, encoding)
}

fn execution_name(
    state: &ApiState,
    project: &str,
    location: &str,
    job: &str,
    execution: &str,
) -> Result<ExecutionName, Status> {
    let loc = state.location(project, location)?;
    if let (_, Some(verb)) = split_verb(execution) {
        return Err(unimplemented_verb(verb));
    }
    validate_job_id(job).map_err(|e| invalid_field("name", e.to_string()))?;
    validate_execution_id(execution).map_err(|e| invalid_field("name", e.to_string()))?;
    Ok(loc.job(job).execution(execution))
}

/// An execution not found, in Cloud Run's words.
pub(crate) fn execution_not_found(name: &ExecutionName) -> Status {
    Status::not_found(format!(
        "Resource '{}' of kind 'EXECUTION' in region '{}' in project '{}' does not exist.",
        name.execution, name.location, name.project
    ))
}

fn read_execution(state: &ApiState, name: &ExecutionName) -> Result<(Execution, u64), Status> {
    read_record(
        state.store.as_ref(),
        EXECUTION_KIND,
        &name.to_string(),
        || execution_not_found(name),
    )
}

/// `DeleteExecution`: see the module documentation.
pub fn delete_execution(
    state: &ApiState,
    name: &ExecutionName,
    etag: &str,
    validate_only: bool,
) -> Result<Operation, Status> {
    let key = name.to_string();
    let (mut execution, revision) = read_execution(state, name)?;
    check_etag(etag, &execution.etag, &key)?;
    let now = Timestamp::now();
    execution.delete_time = Some(now);
    execution.update_time = Some(now);
    let op_name = new_operation_name(&name.parent().parent());
    let operation = done_operation(op_name.clone(), execution);
    if validate_only {
        return Ok(operation);
    }
    let mut ops = vec![Op::delete(
        EXECUTION_KIND,
        key.clone(),
        Precondition::Revision(revision),
    )];
    ops.extend(
        all_names(state.store.as_ref(), TASK_KIND, &key)?
            .into_iter()
            .map(|n| Op::delete(TASK_KIND, n, Precondition::Exists)),
    );
    ops.push(Op::put(
        OPERATION_KIND,
        op_name,
        to_doc(&operation),
        Precondition::Absent,
    ));
    state.store.transact(ops).map_err(|e| match e {
        store::StoreError::NotFound { kind, .. } if kind == EXECUTION_KIND => {
            execution_not_found(name)
        }
        store::StoreError::Conflict { .. } | store::StoreError::NotFound { .. } => {
            Status::aborted(format!(
                "The execution '{}' changed while it was being deleted; retry.",
                name.execution
            ))
        }
        other => store_status(other),
    })?;
    state.poke();
    Ok(operation)
}

/// `CancelExecution`: see the module documentation.
pub fn cancel_execution(
    state: &ApiState,
    name: &ExecutionName,
    etag: &str,
    validate_only: bool,
) -> Result<Operation, Status> {
    let key = name.to_string();
    for attempt in 1..=ATTEMPTS {
        let (mut execution, revision) = read_execution(state, name)?;
        check_etag(etag, &execution.etag, &key)?;
        if execution.is_finished() {
            return Err(Status::failed_precondition(format!(
                "Execution '{}' has already completed; it cannot be cancelled.",
                name.execution
            )));
        }
        let now = Timestamp::now();
        let cancelling = Condition {
            last_transition_time: Some(now),
            ..Condition::new(types::COMPLETED, ConditionState::Reconciling)
                .with_execution_reason(ExecutionReason::Cancelling)
                .with_message("The execution is being cancelled.")
        };
        match execution
            .conditions
            .iter_mut()
            .find(|c| c.kind == types::COMPLETED)
        {
            Some(c) => *c = cancelling,
            None => execution.conditions.insert(0, cancelling),
        }
        execution.reconciling = true;
        execution.update_time = Some(now);
        execution.etag = execution.compute_etag();
        let op_name = new_operation_name(&name.parent().parent());
        if validate_only {
            return Ok(done_operation(op_name, execution));
        }
        let operation = Operation::running(op_name.clone(), execution.clone());
        let ops = vec![
            Op::put(
                EXECUTION_KIND,
                key.clone(),
                to_doc(&execution),
                Precondition::Revision(revision),
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
            Err(store::StoreError::NotFound { .. }) => return Err(execution_not_found(name)),
            Err(e) => return Err(store_status(e)),
        }
    }
    unreachable!("the last attempt returns")
}
