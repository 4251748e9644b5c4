//! Long-running operations: get, list, wait, delete, and [`complete_operation`] for the
//! controller.
//!
//! `:wait` reads the operation until it is done or its timeout passes (the request's
//! `timeout`, at most [`MAX_WAIT`]; [`DEFAULT_WAIT`] when none is given) and returns it
//! as it then is, done or not. It polls the store (every few milliseconds at first,
//! backing off to [`POLL_MAX`]) because operations are completed by the controller
//! through the store, not through this process's memory.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde_json::Value;
use store::{Precondition, Store};

use super::{
    blocking, error_response, from_doc, invalid_field, json_response, list_page, parse_body,
    store_status, to_doc, ApiState, Params, OPERATION_KIND,
};
use crate::names::OperationName;
use crate::operation::{ListOperationsResponse, Operation, WaitOperationRequest};
use crate::status::Status;
use crate::wkt::{Any, TypeUrl};

type Q = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// How long `:wait` waits without a `timeout`.
pub const DEFAULT_WAIT: StdDuration = StdDuration::from_secs(60);
/// The longest `:wait`.
pub const MAX_WAIT: StdDuration = StdDuration::from_secs(600);
/// The longest pause between two reads of a waited operation.
pub const POLL_MAX: StdDuration = StdDuration::from_millis(100);

pub(crate) async fn get(
    State(state): State<ApiState>,
    Path((project, location, operation)): Path<(String, String, String)>,
    query: Q,
) -> Response {
    let params = match Params::from_query(query) {
        Ok(p) => p,
        Err(e) => return error_response(&e, Default::default()),
    };
    let result = blocking(move || {
        let name = operation_name(&state, &project, &location, &operation)?;
        read_operation(&*state.store, &name).map(|(op, _)| op)
    })
    .await;
    json_response(result, params.encoding())
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
        // `filter` is accepted and not applied.
        let (operations, next_page_token) = list_page(
            state.store.as_ref(),
            OPERATION_KIND,
            &parent.to_string(),
            &params,
        )?;
        Ok(ListOperationsResponse {
            operations,
            next_page_token,
        })
    })
    .await;
    json_response(result, encoding)
}

/// `DELETE .../operations/{o}`: forgets the operation (it does not cancel it); answers
/// `google.protobuf.Empty`.
pub(crate) async fn delete(
    State(state): State<ApiState>,
    Path((project, location, operation)): Path<(String, String, String)>,
    query: Q,
) -> Response {
    let params = match Params::from_query(query) {
        Ok(p) => p,
        Err(e) => return error_response(&e, Default::default()),
    };
    let result = blocking(move || {
        let name = operation_name(&state, &project, &location, &operation)?;
        state
            .store
            .delete(OPERATION_KIND, &name.to_string(), Precondition::Any)
            .map_err(|e| match e {
                store::StoreError::NotFound { .. } => operation_not_found(&name),
                other => store_status(other),
            })?;
        state.poke();
        Ok(serde_json::Map::new())
    })
    .await;
    json_response(result, params.encoding())
}

/// `POST .../operations/{o}:wait`.
pub(crate) async fn wait(
    State(state): State<ApiState>,
    Path((project, location, operation)): Path<(String, String, String)>,
    query: Q,
    body: Bytes,
) -> Response {
    let params = match Params::from_query(query) {
        Ok(p) => p,
        Err(e) => return error_response(&e, Default::default()),
    };
    let encoding = params.encoding();
    let result = wait_operation(state, project, location, operation, body).await;
    json_response(result, encoding)
}

async fn wait_operation(
    state: ApiState,
    project: String,
    location: String,
    operation: String,
    body: Bytes,
) -> Result<Operation, Status> {
    let Some(id) = operation.strip_suffix(":wait") else {
        return Err(match operation.split_once(':') {
            Some((_, verb)) => {
                Status::unimplemented(format!("The method :{verb} is not implemented by homerun."))
            }
            None => Status::not_found("The requested URL was not found on this server."),
        });
    };
    let name = operation_name(&state, &project, &location, id)?;
    let request: WaitOperationRequest = parse_body(&body, "")?;
    let timeout = match request.timeout {
        None => DEFAULT_WAIT,
        Some(t) => t
            .to_std()
            .ok_or_else(|| invalid_field("timeout", "must not be negative"))?
            .min(MAX_WAIT),
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let store: Arc<dyn Store> = state.store.clone();
    let mut pause = StdDuration::from_millis(2);
    loop {
        let (store, name2) = (store.clone(), name.clone());
        let op = blocking(move || read_operation(&*store, &name2).map(|(op, _)| op)).await?;
        let now = tokio::time::Instant::now();
        if op.done || now >= deadline {
            return Ok(op);
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(POLL_MAX);
    }
}

fn operation_name(
    state: &ApiState,
    project: &str,
    location: &str,
    operation: &str,
) -> Result<OperationName, Status> {
    let loc = state.location(project, location)?;
    if let Some((_, verb)) = operation.split_once(':') {
        return Err(Status::unimplemented(format!(
            "The method :{verb} is not implemented by homerun."
        )));
    }
    let name = loc.operation(operation);
    name.to_string()
        .parse::<OperationName>()
        .map_err(|e| invalid_field("name", e.to_string()))
}

fn operation_not_found(name: &OperationName) -> Status {
    Status::not_found(format!("Operation '{name}' does not exist."))
}

fn read_operation(store: &dyn Store, name: &OperationName) -> Result<(Operation, u64), Status> {
    let key = name.to_string();
    let record = store
        .get(OPERATION_KIND, &key)
        .map_err(store_status)?
        .ok_or_else(|| operation_not_found(name))?;
    Ok((from_doc(OPERATION_KIND, &key, record.doc)?, record.revision))
}

/// Finishes an operation: `done`, with `response` (the resource as proto3 JSON, packed
/// as a `google.protobuf.Any` by its `name`: a `Task` for `.../tasks/...`, an
/// `Execution` for `.../executions/...`, a
/// `Revision` for `.../revisions/...`, a `Job` for `.../jobs/...`, else a `Service`;
/// an `@type` member, if present, decides instead) or `error`. The
/// operation's metadata becomes the response too, as Cloud Run's finished operations
/// carry the final resource. Completing an operation again replaces its result. For
/// the controller; `op_name` is the full name
/// (`projects/p/locations/l/operations/id`).
pub fn complete_operation(
    store: &dyn Store,
    op_name: &str,
    result: Result<Value, Status>,
) -> Result<Operation, Status> {
    let name: OperationName = op_name
        .parse()
        .map_err(|e: crate::names::NameError| Status::invalid_argument(e.to_string()))?;
    let response = match result {
        Ok(value) => Ok(pack(value)?),
        Err(status) => Err(status),
    };
    loop {
        let (mut op, revision) = read_operation(store, &name)?;
        match &response {
            Ok(any) => {
                op.metadata = Some(any.clone());
                op.succeed(any.clone());
            }
            Err(status) => op.fail(status.clone()),
        }
        match store.put(
            OPERATION_KIND,
            op_name,
            to_doc(&op),
            Precondition::Revision(revision),
        ) {
            Ok(_) => return Ok(op),
            Err(e) if e.is_conflict() => continue,
            Err(e) => return Err(store_status(e)),
        }
    }
}

/// A resource as an `Any`.
fn pack(mut value: Value) -> Result<Any, Status> {
    let Some(map) = value.as_object_mut() else {
        return Err(Status::invalid_argument(
            "an operation's response is a JSON object",
        ));
    };
    if !map.contains_key("@type") {
        let name = map.get("name").and_then(Value::as_str).unwrap_or("");
        let type_url = if name.contains("/tasks/") {
            <crate::task::Task as TypeUrl>::TYPE_URL
        } else if name.contains("/executions/") {
            <crate::execution::Execution as TypeUrl>::TYPE_URL
        } else if name.contains("/revisions/") {
            <crate::revision::Revision as TypeUrl>::TYPE_URL
        } else if name.contains("/jobs/") {
            <crate::job::Job as TypeUrl>::TYPE_URL
        } else {
            <crate::service::Service as TypeUrl>::TYPE_URL
        };
        map.insert("@type".into(), Value::String(type_url.into()));
    }
    crate::json::from_value(value)
}
