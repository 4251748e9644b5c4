//! Tasks: get, list. Tasks are written by the controller as it runs an execution
//! ([`crate::task::Task::for_execution`]), never by the API; they go when their
//! execution or job is deleted.
//!
//! The list's parent is an execution; `-` as the execution lists every execution's
//! tasks of the job, and `-` as both job and execution every task of the location (a
//! named execution under the `-` job is refused: execution ids are unique per job only).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;

use super::{
    blocking, error_response, invalid_field, json_response, list_page, read_record, split_verb,
    unimplemented_verb, ApiState, Params, TASK_KIND,
};
use crate::names::{
    validate_execution_id, validate_job_id, validate_task_id, ExecutionName, JobName, TaskName,
};
use crate::status::Status;
use crate::task::{ListTasksResponse, Task};

type Q = Result<Query<Vec<(String, String)>>, QueryRejection>;

pub(crate) async fn get(
    State(state): State<ApiState>,
    Path((project, location, job, execution, task)): Path<(String, String, String, String, String)>,
    query: Q,
) -> Response {
    let params = match Params::from_query(query) {
        Ok(p) => p,
        Err(e) => return error_response(&e, Default::default()),
    };
    let result = blocking(move || {
        let loc = state.location(&project, &location)?;
        if let (_, Some(verb)) = split_verb(&task) {
            return Err(unimplemented_verb(verb));
        }
        validate_job_id(&job).map_err(|e| invalid_field("name", e.to_string()))?;
        validate_execution_id(&execution).map_err(|e| invalid_field("name", e.to_string()))?;
        validate_task_id(&task).map_err(|e| invalid_field("name", e.to_string()))?;
        let name = loc.job(job).execution(execution).task(task);
        let (task, _): (Task, u64) =
            read_record(state.store.as_ref(), TASK_KIND, &name.to_string(), || {
                task_not_found(&name)
            })?;
        Ok(task)
    })
    .await;
    json_response(result, params.encoding())
}

pub(crate) async fn list(
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
        let loc = state.location(&project, &location)?;
        params.bool("showDeleted")?;
        let any_job = job == JobName::ANY;
        let any_execution = execution == ExecutionName::ANY;
        if !any_job {
            validate_job_id(&job).map_err(|e| invalid_field("parent", e.to_string()))?;
        }
        if !any_execution {
            validate_execution_id(&execution)
                .map_err(|e| invalid_field("parent", e.to_string()))?;
        }
        let parent = match (any_job, any_execution) {
            (true, true) => loc.to_string(),
            (false, true) => loc.job(job).to_string(),
            (false, false) => loc.job(job).execution(execution).to_string(),
            (true, false) => {
                return Err(invalid_field(
                    "parent",
                    "name the job of the execution (\"-\" as the job takes \"-\" as the execution only)",
                ))
            }
        };
        let (tasks, next_page_token) =
            list_page(state.store.as_ref(), TASK_KIND, &parent, &params)?;
        Ok(ListTasksResponse {
            tasks,
            next_page_token,
        })
    })
    .await;
    json_response(result, encoding)
}

fn task_not_found(name: &TaskName) -> Status {
    Status::not_found(format!(
        "Resource '{}' of kind 'TASK' in region '{}' in project '{}' does not exist.",
        name.task, name.location, name.project
    ))
}
