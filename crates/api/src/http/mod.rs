//! The Cloud Run Admin API v2 over REST: an axum [`Router`] serving Services,
//! Revisions, Jobs, Executions, Tasks and Operations with the paths, verbs and JSON of
//! google/cloud/run/v2 (`service.proto`, `revision.proto`, `job.proto`,
//! `execution.proto`, `task.proto`) and google/longrunning/operations.proto, their IAM
//! policies (google/iam/v1, [`iam`]), the project's policy as Cloud Resource Manager v1
//! serves it, and secrets as Secret Manager v1 does ([`secrets`]), on top of a
//! [`Store`]. With [`ApiState::with_auth`] every route needs a bearer token and the
//! caller's permission ([`auth`]).
//!
//! | method | path |
//! | --- | --- |
//! | `POST` | `/v2/projects/{p}/locations/{l}/services?serviceId=&validateOnly=` |
//! | `GET` | `/v2/projects/{p}/locations/{l}/services?pageSize=&pageToken=&showDeleted=` |
//! | `GET` | `/v2/projects/{p}/locations/{l}/services/{s}` |
//! | `PATCH` | `/v2/projects/{p}/locations/{l}/services/{s}?updateMask=&validateOnly=&allowMissing=` |
//! | `DELETE` | `/v2/projects/{p}/locations/{l}/services/{s}?validateOnly=&etag=` |
//! | `GET` | `/v2/projects/{p}/locations/{l}/services/{s}/revisions?pageSize=&pageToken=` (`{s}` may be `-`) |
//! | `GET` | `/v2/projects/{p}/locations/{l}/services/{s}/revisions/{r}` |
//! | `DELETE` | `/v2/projects/{p}/locations/{l}/services/{s}/revisions/{r}?validateOnly=&etag=` |
//! | `POST` | `/v2/projects/{p}/locations/{l}/jobs?jobId=&validateOnly=` |
//! | `GET` | `/v2/projects/{p}/locations/{l}/jobs?pageSize=&pageToken=` |
//! | `GET` | `/v2/projects/{p}/locations/{l}/jobs/{j}` |
//! | `PATCH` | `/v2/projects/{p}/locations/{l}/jobs/{j}?updateMask=&validateOnly=&allowMissing=` |
//! | `DELETE` | `/v2/projects/{p}/locations/{l}/jobs/{j}?validateOnly=&etag=` |
//! | `POST` | `/v2/projects/{p}/locations/{l}/jobs/{j}:run` (body `{"overrides", "validateOnly", "etag"}`) |
//! | `GET` | `/v2/projects/{p}/locations/{l}/jobs/{j}/executions?pageSize=&pageToken=` (`{j}` may be `-`) |
//! | `GET` | `/v2/projects/{p}/locations/{l}/jobs/{j}/executions/{e}` |
//! | `DELETE` | `/v2/projects/{p}/locations/{l}/jobs/{j}/executions/{e}?validateOnly=&etag=` |
//! | `POST` | `/v2/projects/{p}/locations/{l}/jobs/{j}/executions/{e}:cancel` (body `{"validateOnly", "etag"}`) |
//! | `GET` | `/v2/projects/{p}/locations/{l}/jobs/{j}/executions/{e}/tasks?pageSize=&pageToken=` (`{e}`, or both, may be `-`) |
//! | `GET` | `/v2/projects/{p}/locations/{l}/jobs/{j}/executions/{e}/tasks/{t}` |
//! | `GET` | `/v2/projects/{p}/locations/{l}/operations?pageSize=&pageToken=` |
//! | `GET` | `/v2/projects/{p}/locations/{l}/operations/{o}` |
//! | `POST` | `/v2/projects/{p}/locations/{l}/operations/{o}:wait` (body `{"timeout": "10s"}`) |
//! | `DELETE` | `/v2/projects/{p}/locations/{l}/operations/{o}` |
//! | `GET`, `POST` | `/v2/projects/{p}/locations/{l}/services/{s}:getIamPolicy?options.requestedPolicyVersion=`, and `.../jobs/{j}:getIamPolicy` |
//! | `POST` | `.../services/{s}:setIamPolicy`, `:testIamPermissions`; `.../jobs/{j}:setIamPolicy`, `:testIamPermissions` |
//! | `POST` | `/v1/projects/{p}:getIamPolicy`, `:setIamPolicy`, `:testIamPermissions` |
//! | `POST`, `GET` | `/v1/projects/{p}/secrets?secretId=` (create), list |
//! | `GET`, `DELETE` | `/v1/projects/{p}/secrets/{s}` |
//! | `POST` | `/v1/projects/{p}/secrets/{s}:addVersion`, and its IAM verbs |
//! | `GET` | `/v1/projects/{p}/secrets/{s}/versions`, `.../versions/{v}` (`v` a number or `latest`) |
//! | `POST` | `/v1/projects/{p}/secrets/{s}/versions/{v}:disable`, `:enable`, `:destroy` |
//!
//! Query parameters are read in camelCase (as Google's REST clients send them) or
//! snake_case; `$alt=json;enum-encoding=int` writes enums as numbers (input takes both).
//! Errors are `google.rpc.Status` in Google's HTTP envelope
//! (`{"error": {"code": 404, "message", "status": "NOT_FOUND", "details": [...]}}`).
//!
//! Records live in the store under the kinds [`SERVICE_KIND`], [`REVISION_KIND`],
//! [`JOB_KIND`], [`EXECUTION_KIND`], [`TASK_KIND`], [`OPERATION_KIND`],
//! [`IAM_POLICY_KIND`] (keyed by the name of the resource the policy is attached to),
//! [`SECRET_KIND`] and [`SECRET_VERSION_KIND`], keyed by
//! their full resource names, as proto3 JSON with enums as names. After every write [`ApiState::changed`] is poked (`notify_one`, so a
//! reconciler that is not waiting at that moment still finds the permit).
//!
//! Mutations (create, update, delete, run, cancel) return an
//! [`Operation`]; see [`services`], [`revisions`],
//! [`jobs`] and [`executions`] for what each writes, and [`complete_operation`] for how
//! the controller finishes one. Tasks ([`tasks`]) are written by the controller only.

pub mod auth;
pub mod executions;
pub mod iam;
pub mod jobs;
mod mask;
pub mod operations;
pub mod revisions;
pub mod secrets;
pub mod services;
pub mod tasks;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use serde::Serialize;
use store::{Record, Store, StoreError};
use tokio::sync::Notify;

use crate::auth::Authenticator;
use crate::json::{self, EnumEncoding};
use crate::names::{validate_location_id, validate_project_id, LocationName};
use crate::naming::{new_operation_id, Endpoint};
use crate::operation::Operation;
use crate::secret::Sealer;
use crate::status::{FieldViolation, Status};
use crate::wkt::Any;

pub use crate::iam::IAM_POLICY_KIND;
pub use crate::secret::{SECRET_KIND, SECRET_VERSION_KIND};
pub use operations::complete_operation;

/// The store kind of services.
pub const SERVICE_KIND: &str = "service";
/// The store kind of revisions.
pub const REVISION_KIND: &str = "revision";
/// The store kind of long-running operations.
pub const OPERATION_KIND: &str = "operation";
/// The store kind of jobs.
pub const JOB_KIND: &str = "job";
/// The store kind of executions.
pub const EXECUTION_KIND: &str = "execution";
/// The store kind of tasks (written by the controller).
pub const TASK_KIND: &str = "task";

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// Where resources live.
    pub store: Arc<dyn Store>,
    /// The one location served (`--region`): every name's location must be this.
    pub region: String,
    /// How service URLs are made (default project, domain, ingress port, scheme).
    pub endpoint: Endpoint,
    /// Poked (`notify_one`) after every write, for the reconciler.
    pub changed: Arc<Notify>,
    /// Who callers are; `None`: no authentication, every caller is the admin.
    pub auth: Option<Arc<dyn Authenticator>>,
    /// What seals secret values; `None`: the secrets routes answer 503.
    pub sealer: Option<Arc<dyn Sealer>>,
}

impl ApiState {
    /// A state with a fresh `changed` notifier.
    pub fn new(store: Arc<dyn Store>, region: impl Into<String>, endpoint: Endpoint) -> Self {
        ApiState {
            store,
            region: region.into(),
            endpoint,
            changed: Arc::new(Notify::new()),
            auth: None,
            sealer: None,
        }
    }

    /// The state with authentication: every route then asks for a bearer token and
    /// checks the caller's permission (see [`auth`]).
    pub fn with_auth(mut self, auth: Arc<dyn Authenticator>) -> Self {
        self.auth = Some(auth);
        self
    }

    /// The state with a sealer for secret values (see [`secrets`]).
    pub fn with_sealer(mut self, sealer: Arc<dyn Sealer>) -> Self {
        self.sealer = Some(sealer);
        self
    }

    /// The state with a given `changed` notifier (the controller's).
    pub fn with_changed(mut self, changed: Arc<Notify>) -> Self {
        self.changed = changed;
        self
    }

    /// Checks a name's project and location: the project must be a DNS label (400),
    /// the location this homerun's region (404 otherwise, as a location that does not
    /// exist).
    pub fn location(&self, project: &str, location: &str) -> Result<LocationName, Status> {
        validate_project_id(project).map_err(|e| Status::invalid_argument(e.to_string()))?;
        validate_location_id(location).map_err(|e| Status::invalid_argument(e.to_string()))?;
        if location != self.region {
            return Err(Status::not_found(format!(
                "Location '{location}' is not found: this homerun serves location '{}'.",
                self.region
            )));
        }
        Ok(LocationName::new(project, location))
    }

    fn poke(&self) {
        self.changed.notify_one();
    }
}

/// The Admin API's routes (see the module documentation). Unknown paths get a 404 in
/// the error envelope.
pub fn router(state: ApiState) -> Router {
    const LOC: &str = "/v2/projects/{project}/locations/{location}";
    Router::new()
        .route(
            &format!("{LOC}/services"),
            with_fallback(get(services::list).post(services::create)),
        )
        .route(
            &format!("{LOC}/services/{{service}}"),
            with_fallback(
                get(services::get)
                    .patch(services::update)
                    .delete(services::delete)
                    .post(services::post),
            ),
        )
        .route(
            &format!("{LOC}/services/{{service}}/revisions"),
            with_fallback(get(revisions::list)),
        )
        .route(
            &format!("{LOC}/services/{{service}}/revisions/{{revision}}"),
            with_fallback(get(revisions::get).delete(revisions::delete)),
        )
        .route(
            &format!("{LOC}/jobs"),
            with_fallback(get(jobs::list).post(jobs::create)),
        )
        .route(
            &format!("{LOC}/jobs/{{job}}"),
            with_fallback(
                get(jobs::get)
                    .patch(jobs::update)
                    .delete(jobs::delete)
                    .post(jobs::post),
            ),
        )
        .route(
            &format!("{LOC}/jobs/{{job}}/executions"),
            with_fallback(get(executions::list)),
        )
        .route(
            &format!("{LOC}/jobs/{{job}}/executions/{{execution}}"),
            with_fallback(
                get(executions::get)
                    .delete(executions::delete)
                    .post(executions::post),
            ),
        )
        .route(
            &format!("{LOC}/jobs/{{job}}/executions/{{execution}}/tasks"),
            with_fallback(get(tasks::list)),
        )
        .route(
            &format!("{LOC}/jobs/{{job}}/executions/{{execution}}/tasks/{{task}}"),
            with_fallback(get(tasks::get)),
        )
        .route(
            &format!("{LOC}/operations"),
            with_fallback(get(operations::list)),
        )
        .route(
            &format!("{LOC}/operations/{{operation}}"),
            with_fallback(
                get(operations::get)
                    .post(operations::wait)
                    .delete(operations::delete),
            ),
        )
        .route("/v1/projects/{project}", with_fallback(post(iam::project)))
        .route(
            "/v1/projects/{project}/secrets",
            with_fallback(get(secrets::list).post(secrets::create)),
        )
        .route(
            "/v1/projects/{project}/secrets/{secret}",
            with_fallback(
                get(secrets::get)
                    .delete(secrets::delete)
                    .post(secrets::post),
            ),
        )
        .route(
            "/v1/projects/{project}/secrets/{secret}/versions",
            with_fallback(get(secrets::list_versions)),
        )
        .route(
            "/v1/projects/{project}/secrets/{secret}/versions/{version}",
            with_fallback(get(secrets::get_version).post(secrets::post_version)),
        )
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_auth,
        ))
        .with_state(state)
}

fn with_fallback(m: MethodRouter<ApiState>) -> MethodRouter<ApiState> {
    m.fallback(method_not_allowed)
}

async fn not_found(Query(q): Query<Vec<(String, String)>>) -> Response {
    let q = Params(q);
    error_response(
        &Status::not_found("The requested URL was not found on this server."),
        q.encoding(),
    )
}

async fn method_not_allowed() -> Response {
    error_response(
        &Status::unimplemented("This method is not supported on this resource."),
        EnumEncoding::Name,
    )
}

/// A request's query string, as the handlers take it.
pub(crate) type Q = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// The query parameters of a request.
#[derive(Clone, Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn from_query(
        q: Result<Query<Vec<(String, String)>>, QueryRejection>,
    ) -> Result<Params, Status> {
        q.map(|Query(q)| Params(q))
            .map_err(|e| Status::invalid_argument(format!("Invalid query string: {e}")))
    }

    /// Every value of a parameter, by its camelCase or snake_case name.
    fn all<'a>(&'a self, camel: &str) -> impl Iterator<Item = &'a str> + 'a {
        let snake = to_snake(camel);
        let camel = camel.to_string();
        self.0
            .iter()
            .filter(move |(k, _)| *k == camel || *k == snake)
            .map(|(_, v)| v.as_str())
    }

    /// The last value of a parameter.
    pub(crate) fn str(&self, camel: &str) -> Option<&str> {
        self.all(camel).last()
    }

    /// Values of a repeated or comma-separated parameter (a `FieldMask`).
    pub(crate) fn list(&self, camel: &str) -> Vec<String> {
        self.all(camel)
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    pub(crate) fn bool(&self, camel: &str) -> Result<bool, Status> {
        match self.str(camel) {
            None | Some("") => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => Ok(false),
            Some(v) => Err(invalid_field(
                camel,
                format!("Invalid value for a boolean: \"{v}\""),
            )),
        }
    }

    /// `pageSize`: 0 (the store's default) when absent, never negative.
    pub(crate) fn page_size(&self) -> Result<usize, Status> {
        match self.str("pageSize") {
            None | Some("") => Ok(0),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if (0..=i32::MAX as i64).contains(&n) => Ok(n as usize),
                Ok(_) => Err(invalid_field("pageSize", "must not be negative")),
                Err(_) => Err(invalid_field(
                    "pageSize",
                    format!("Invalid value for an int32: \"{v}\""),
                )),
            },
        }
    }

    pub(crate) fn page_token(&self) -> Option<&str> {
        self.str("pageToken").filter(|t| !t.is_empty())
    }

    /// The enum encoding `$alt` asks for.
    pub(crate) fn encoding(&self) -> EnumEncoding {
        EnumEncoding::from_alt(
            self.0
                .iter()
                .rev()
                .find(|(k, _)| k == "$alt" || k == "alt")
                .map(|(_, v)| v.as_str()),
        )
    }
}

fn to_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `INVALID_ARGUMENT` naming one field.
pub(crate) fn invalid_field(field: &str, description: impl Into<String>) -> Status {
    let description = description.into();
    Status::invalid_argument(format!("{field}: {description}"))
        .with_bad_request(vec![FieldViolation::new(field, description)])
}

/// A store failure as the API reports it.
pub(crate) fn store_status(e: StoreError) -> Status {
    match e {
        StoreError::NotFound { kind, name } => Status::not_found(format!(
            "Resource '{}' of kind '{}' does not exist.",
            short_name(&name),
            kind.to_uppercase()
        )),
        StoreError::AlreadyExists { kind, name, .. } => Status::already_exists(format!(
            "Resource '{}' of kind '{}' already exists.",
            short_name(&name),
            kind.to_uppercase()
        )),
        StoreError::Conflict { name, .. } => Status::aborted(format!(
            "Resource '{}' was modified concurrently; read it again and retry.",
            short_name(&name)
        )),
        StoreError::InvalidArgument(m) => Status::invalid_argument(m),
        other => {
            tracing::error!(error = %other, "store failure");
            Status::internal(format!("Internal error: {other}"))
        }
    }
}

fn short_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// Parses a stored document.
pub(crate) fn from_doc<T: serde::de::DeserializeOwned>(
    kind: &str,
    name: &str,
    doc: serde_json::Value,
) -> Result<T, Status> {
    json::from_value(doc).map_err(|e| {
        tracing::error!(kind, name, error = %e, "corrupt record");
        Status::internal(format!(
            "Internal error: the stored {kind} {name} is unreadable"
        ))
    })
}

/// One page of stored `kind` records under `parent`, parsed, with the token for the next
/// page (empty on the last), as the list methods answer.
pub(crate) fn list_page<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    kind: &str,
    parent: &str,
    params: &Params,
) -> Result<(Vec<T>, String), Status> {
    let page = store
        .list(kind, parent, params.page_size()?, params.page_token())
        .map_err(store_status)?;
    let items = page
        .records
        .into_iter()
        .map(|r| from_doc(kind, &r.name, r.doc))
        .collect::<Result<Vec<T>, Status>>()?;
    Ok((items, page.next_page_token.unwrap_or_default()))
}

/// A message as a stored document (enums as names).
pub(crate) fn to_doc<T: Serialize>(message: &T) -> serde_json::Value {
    json::to_value(message, EnumEncoding::Name)
}

/// Parses a request body; a parse error's field path is put under `root`
/// (`service.template...`). An empty body is the message's default.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
    root: &str,
) -> Result<T, Status> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    json::from_slice(body).map_err(|mut status| {
        for d in &mut status.details {
            if let crate::wkt::Any::BadRequest(b) = d {
                for v in &mut b.field_violations {
                    v.field = if v.field.is_empty() {
                        root.to_string()
                    } else if root.is_empty() {
                        v.field.clone()
                    } else {
                        format!("{root}.{}", v.field)
                    };
                }
            }
        }
        status
    })
}

/// A fresh operation name in `location`.
pub(crate) fn new_operation_name(location: &LocationName) -> String {
    location.operation(new_operation_id()).to_string()
}

/// An operation already done with `response` (validate-only answers, no-op updates,
/// deletions, job mutations).
pub(crate) fn done_operation(name: String, response: impl Into<Any> + Clone) -> Operation {
    let mut op = Operation::running(name, response.clone());
    op.succeed(response);
    op
}

/// The names of every stored `kind` record below `parent`, all pages (for deletions
/// that take a resource's children with it).
pub(crate) fn all_names(
    store: &dyn Store,
    kind: &str,
    parent: &str,
) -> Result<Vec<String>, Status> {
    Ok(all_records(store, kind, parent)
        .map_err(store_status)?
        .into_iter()
        .map(|r| r.name)
        .collect())
}

/// Every stored `kind` record below `parent`, all pages.
pub(crate) fn all_records(
    store: &dyn Store,
    kind: &str,
    parent: &str,
) -> Result<Vec<Record>, StoreError> {
    let mut records = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = store.list(kind, parent, store::MAX_PAGE_SIZE, token.as_deref())?;
        records.extend(page.records);
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => return Ok(records),
        }
    }
}

/// The stored `kind` record `name`, parsed, with its store revision; `not_found` when
/// there is none.
pub(crate) fn read_record<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    kind: &str,
    name: &str,
    not_found: impl FnOnce() -> Status,
) -> Result<(T, u64), Status> {
    let record = store
        .get(kind, name)
        .map_err(store_status)?
        .ok_or_else(not_found)?;
    Ok((from_doc(kind, name, record.doc)?, record.revision))
}

/// The `:verb` of a path's last segment (`hello:run` gives `("hello", Some("run"))`).
pub(crate) fn split_verb(segment: &str) -> (&str, Option<&str>) {
    match segment.split_once(':') {
        Some((id, verb)) => (id, Some(verb)),
        None => (segment, None),
    }
}

/// `UNIMPLEMENTED` for a custom method homerun does not serve.
pub(crate) fn unimplemented_verb(verb: &str) -> Status {
    Status::unimplemented(format!("The method :{verb} is not implemented by homerun."))
}

/// Runs store work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(Status::internal(format!("Internal error: {e}"))))
}

/// Runs `f` off the async threads with the request's parameters and answers in their
/// enum encoding.
pub(crate) async fn answer<T: serde::Serialize + Send + 'static>(
    query: Q,
    f: impl FnOnce(Params) -> Result<T, Status> + Send + 'static,
) -> Response {
    let params = match Params::from_query(query) {
        Ok(p) => p,
        Err(e) => return error_response(&e, Default::default()),
    };
    let encoding = params.encoding();
    json_response(blocking(move || f(params)).await, encoding)
}

/// A JSON response.
pub(crate) fn json_response<T: Serialize>(
    result: Result<T, Status>,
    encoding: EnumEncoding,
) -> Response {
    match result {
        Ok(message) => {
            let body = json::to_string(&message, encoding);
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
                Body::from(body),
            )
                .into_response()
        }
        Err(status) => error_response(&status, encoding),
    }
}

/// An error response: the status's HTTP code and Google's error envelope.
pub(crate) fn error_response(status: &Status, encoding: EnumEncoding) -> Response {
    let code =
        StatusCode::from_u16(status.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = status.to_http_body(encoding).to_string();
    (
        code,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        Body::from(body),
    )
        .into_response()
}

/// Strips the quotes and weak marker of an etag, for comparison.
pub(crate) fn etag_core(etag: &str) -> &str {
    let e = etag.trim();
    let e = e.strip_prefix("W/").unwrap_or(e);
    e.trim_matches('"')
}

/// `ABORTED` (409) unless `given` is empty or matches `current`.
pub(crate) fn check_etag(given: &str, current: &str, name: &str) -> Result<(), Status> {
    if given.is_empty() || etag_core(given) == etag_core(current) {
        Ok(())
    } else {
        Err(Status::aborted(format!(
            "The etag \"{}\" does not match the current etag of '{}'; read it again and retry.",
            etag_core(given),
            short_name(name)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params() {
        let p = Params(vec![
            ("validate_only".into(), "true".into()),
            ("updateMask".into(), "template,traffic".into()),
            ("update_mask".into(), "labels".into()),
            ("$alt".into(), "json;enum-encoding=int".into()),
        ]);
        assert!(p.bool("validateOnly").unwrap());
        assert!(!p.bool("allowMissing").unwrap());
        assert_eq!(p.list("updateMask"), ["template", "traffic", "labels"]);
        assert_eq!(p.encoding(), EnumEncoding::Int);
        assert_eq!(to_snake("pageToken"), "page_token");
    }

    #[test]
    fn etags() {
        assert!(check_etag("", "\"a\"", "x").is_ok());
        assert!(check_etag("\"a\"", "\"a\"", "x").is_ok());
        assert!(check_etag("W/\"a\"", "\"a\"", "x").is_ok());
        assert!(check_etag("a", "\"a\"", "x").is_ok());
        assert_eq!(
            check_etag("\"b\"", "\"a\"", "x").unwrap_err().http_status(),
            409
        );
    }
}
