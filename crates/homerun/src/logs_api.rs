//! Task attempts' logs over HTTP, beside the Admin API (Cloud Run keeps them in Cloud
//! Logging, which homerun has not): `GET /homerun/v1/projects/{p}/locations/{l}/jobs/{j}/
//! executions/{e}/logs?task=N&attempt=K` answers `{"entries": [...]}`, each entry an
//! attempt's line with its `task` and `attempt`, in task, attempt and time order. Without
//! `task` every task's, without `attempt` every attempt's. Like the Admin API it takes a
//! bearer token: the admin token, or a member holding `run.executions.get` on the project.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

/// Decides whether a request (its headers) may read the logs of `project`; the error is
/// the answer (401 or 403). `homerun up` passes the Admin API's rule.
pub type Authorize = Arc<dyn Fn(&HeaderMap, &str) -> Result<(), Box<Response>> + Send + Sync>;

#[derive(Clone)]
struct LogsState {
    logs_dir: PathBuf,
    region: String,
    authorize: Authorize,
}

#[derive(Deserialize)]
struct LogsQuery {
    task: Option<u32>,
    attempt: Option<u32>,
}

pub fn router(logs_dir: PathBuf, region: String, authorize: Authorize) -> Router {
    Router::new()
        .route(
            "/homerun/v1/projects/{project}/locations/{location}/jobs/{job}/executions/{execution}/logs",
            get(logs),
        )
        .with_state(LogsState {
            logs_dir,
            region,
            authorize,
        })
}

fn error(status: StatusCode, message: String) -> Response {
    let body = json!({"error": {"code": status.as_u16(), "message": message}});
    (status, Json(body)).into_response()
}

/// One path segment as an id: no separators, no dots (nothing outside the logs directory).
fn segment(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

async fn logs(
    State(state): State<LogsState>,
    UrlPath((project, location, job, execution)): UrlPath<(String, String, String, String)>,
    Query(q): Query<LogsQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = (state.authorize)(&headers, &project) {
        return *refused;
    }
    if location != state.region {
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "Location '{location}' is not found: this homerun serves location '{}'.",
                state.region
            ),
        );
    }
    if ![&project, &job, &execution].iter().all(|s| segment(s)) {
        return error(
            StatusCode::BAD_REQUEST,
            "project, job and execution must be resource ids".into(),
        );
    }
    let dir = state.logs_dir.join(&project).join(&job).join(&execution);
    match tokio::task::spawn_blocking(move || read(&dir, q.task, q.attempt)).await {
        Ok(Ok(entries)) => Json(json!({"entries": entries})).into_response(),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => error(
            StatusCode::NOT_FOUND,
            format!("No logs for execution '{execution}' of job '{job}'."),
        ),
        Ok(Err(e)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading logs: {e}"),
        ),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading logs: {e}"),
        ),
    }
}

fn numbered(dir: &Path) -> std::io::Result<Vec<(u32, PathBuf)>> {
    let mut out: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)?
        .flatten()
        .filter_map(|e| {
            let path = e.path();
            let n = path.file_stem()?.to_str()?.parse().ok()?;
            Some((n, path))
        })
        .collect();
    out.sort();
    Ok(out)
}

fn read(dir: &Path, task: Option<u32>, attempt: Option<u32>) -> std::io::Result<Vec<Value>> {
    let mut entries = Vec::new();
    for (index, task_dir) in numbered(dir)? {
        if task.is_some_and(|t| t != index) {
            continue;
        }
        for (n, file) in numbered(&task_dir)? {
            if attempt.is_some_and(|a| a != n) {
                continue;
            }
            for line in std::fs::read_to_string(&file)?.lines() {
                if let Ok(Value::Object(mut entry)) = serde_json::from_str::<Value>(line) {
                    entry.insert("task".into(), index.into());
                    entry.insert("attempt".into(), n.into());
                    entries.push(Value::Object(entry));
                }
            }
        }
    }
    Ok(entries)
}
