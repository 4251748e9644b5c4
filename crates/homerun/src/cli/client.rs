//! The Admin API over HTTP, as the CLI uses it: JSON in and out, `google.rpc.Status`
//! errors turned into [`ApiError`], long-running operations waited for with `:wait`;
//! and homerun's own logs of task attempts beside it.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use reqwest::Method;
use serde_json::{json, Value};

use super::credentials::Credentials;
use crate::PlatformArgs;

/// How long to wait for the API to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an ordinary call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Beyond a `:wait`'s own timeout, how long its answer may take to arrive.
const WAIT_MARGIN: Duration = Duration::from_secs(30);

/// An error the API answered with (`{"error": {"code", "message", "status", "details"}}`),
/// or an operation's `error`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status (for an operation's error, the one its rpc code maps to).
    pub http_status: u16,
    /// The rpc code's name (`INVALID_ARGUMENT`), when known.
    pub status: String,
    pub message: String,
    /// `(field, description)` of every `google.rpc.BadRequest` field violation.
    pub violations: Vec<(String, String)>,
    /// What the CLI adds (for a 401 or 403: where its token came from).
    pub hint: Option<String>,
}

impl ApiError {
    /// From an HTTP error body; `None` when the body is not Google's error envelope.
    fn from_http_body(http_status: u16, body: &[u8]) -> Option<ApiError> {
        let value: Value = serde_json::from_slice(body).ok()?;
        let error = value.get("error")?;
        Some(ApiError {
            http_status,
            status: error
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            violations: violations_of(error.get("details")),
            hint: None,
        })
    }

    /// From an operation's `error` (a `google.rpc.Status`, its code the rpc number).
    pub fn from_status(status: &api::Status) -> ApiError {
        let violations = status
            .bad_request()
            .map(|b| {
                b.field_violations
                    .iter()
                    .map(|v| (v.field.clone(), v.description.clone()))
                    .collect()
            })
            .unwrap_or_default();
        ApiError {
            http_status: status.http_status(),
            status: status.code().as_str().to_string(),
            message: status.message.clone(),
            violations,
            hint: None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.http_status == 404
    }

    /// A concurrent change won (an etag that no longer matches): 409 `ABORTED`.
    pub fn is_aborted(&self) -> bool {
        self.http_status == 409 && self.status == "ABORTED"
    }
}

fn violations_of(details: Option<&Value>) -> Vec<(String, String)> {
    let Some(details) = details.and_then(Value::as_array) else {
        return Vec::new();
    };
    details
        .iter()
        .filter_map(|d| d.get("fieldViolations").and_then(Value::as_array))
        .flatten()
        .map(|v| {
            let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            (text("field"), text("description"))
        })
        .collect()
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "the API answered {} {}", self.http_status, self.status)?;
        } else {
            f.write_str(&self.message)?;
        }
        // The API's messages usually list the violations already; name any they do not.
        let unnamed: Vec<String> = self
            .violations
            .iter()
            .map(|(field, description)| {
                if field.is_empty() {
                    description.clone()
                } else {
                    format!("{field}: {description}")
                }
            })
            .filter(|v| !self.message.contains(v.as_str()))
            .collect();
        if !unnamed.is_empty() {
            write!(f, " ({})", unnamed.join("; "))?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "{}", after_message(&self.message, hint))?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// `hint` as it follows a message: a sentence of its own after a full stop, else after
/// a colon.
fn after_message(message: &str, hint: &str) -> String {
    if message.ends_with('.') {
        let mut chars = hint.chars();
        let first: String = chars
            .next()
            .map(|c| c.to_uppercase().collect())
            .unwrap_or_default();
        format!(" {first}{}.", chars.as_str())
    } else {
        format!(": {hint}")
    }
}

/// A resource as the API answered it (`what`: `job`, `execution`...).
pub fn parse_resource<T: serde::de::DeserializeOwned>(
    value: Value,
    what: &str,
) -> anyhow::Result<T> {
    api::json::from_value(value)
        .map_err(|e| anyhow::anyhow!("the API answered with an unreadable {what}: {e}"))
}

/// Whether an error is the API saying 404.
pub fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ApiError>()
        .is_some_and(ApiError::is_not_found)
}

/// Whether an error is the API saying 409 `ABORTED` (see [`ApiError::is_aborted`]).
pub fn is_aborted(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ApiError>()
        .is_some_and(ApiError::is_aborted)
}

/// A client of one project and location of the Admin API.
pub struct ApiClient {
    http: reqwest::Client,
    addr: SocketAddr,
    pub credentials: Credentials,
    pub project: String,
    pub region: String,
}

impl ApiClient {
    pub fn new(platform: &PlatformArgs, credentials: Credentials) -> anyhow::Result<ApiClient> {
        let http = reqwest::Client::builder()
            // The API is homerun's own: never through a proxy from the environment.
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .context("building the HTTP client")?;
        Ok(ApiClient {
            http,
            addr: platform.api_addr,
            credentials,
            project: platform.project.clone(),
            region: platform.region.clone(),
        })
    }

    /// `/v2/projects/{p}/locations/{l}`.
    fn location_path(&self) -> String {
        format!(
            "/v2/projects/{}/locations/{}",
            encode(&self.project),
            encode(&self.region)
        )
    }

    fn service_path(&self, service: &str) -> String {
        format!("{}/services/{}", self.location_path(), encode(service))
    }

    /// One call: `path` below the API's root, query pairs, an optional JSON body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let mut url = format!("http://{}{path}", self.addr);
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&encode(k));
            url.push('=');
            url.push_str(&encode(v));
        }
        tracing::debug!(%method, %url, "API call");
        let mut request = self.http.request(method, &url).timeout(timeout);
        if let Some(token) = self.credentials.token() {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        if !status.is_success() {
            let hint = self.credentials.hint(status.as_u16());
            return Err(match ApiError::from_http_body(status.as_u16(), &bytes) {
                Some(e) => ApiError { hint, ..e }.into(),
                None => {
                    let hint = hint.map(|h| format!(": {h}")).unwrap_or_default();
                    anyhow::anyhow!(
                        "the homerun API at {} answered {status}: {}{hint}",
                        self.addr,
                        String::from_utf8_lossy(&bytes).trim()
                    )
                }
            });
        }
        serde_json::from_slice(&bytes)
            .with_context(|| format!("the homerun API at {} answered with bad JSON", self.addr))
    }

    fn transport_error(&self, e: reqwest::Error) -> anyhow::Error {
        if e.is_connect() {
            anyhow::anyhow!(
                "cannot reach the homerun API at {}: is `homerun up` running?",
                self.addr
            )
        } else if e.is_timeout() {
            anyhow::anyhow!("the homerun API at {} did not answer in time", self.addr)
        } else {
            anyhow::Error::new(e).context(format!("talking to the homerun API at {}", self.addr))
        }
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Value> {
        self.call(Method::GET, path, query, None, CALL_TIMEOUT)
            .await
    }

    /// Every item of a paged list (`items_key`: `services`, `revisions`, `jobs`...).
    async fn list_all(&self, path: &str, items_key: &str) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut token = String::new();
        loop {
            let mut query = vec![("pageSize", "1000")];
            if !token.is_empty() {
                query.push(("pageToken", token.as_str()));
            }
            let page = self.get(path, &query).await?;
            if let Some(Value::Array(page_items)) = page.get(items_key) {
                items.extend(page_items.iter().cloned());
            }
            match page.get("nextPageToken").and_then(Value::as_str) {
                Some(next) if !next.is_empty() => token = next.to_string(),
                _ => return Ok(items),
            }
        }
    }

    /// The resource at `path`, or `None` when the API says 404.
    async fn get_opt(&self, path: &str) -> anyhow::Result<Option<Value>> {
        match self.get(path, &[]).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A `PATCH` with an `updateMask` (empty: none sent, every writable field replaced).
    async fn patch(&self, path: &str, body: &Value, update_mask: &str) -> anyhow::Result<Value> {
        let query: Vec<(&str, &str)> = if update_mask.is_empty() {
            Vec::new()
        } else {
            vec![("updateMask", update_mask)]
        };
        self.call(Method::PATCH, path, &query, Some(body), CALL_TIMEOUT)
            .await
    }

    async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::DELETE, path, &[], None, CALL_TIMEOUT)
            .await
    }

    async fn post(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: &Value,
    ) -> anyhow::Result<Value> {
        self.call(Method::POST, path, query, Some(body), CALL_TIMEOUT)
            .await
    }

    /// The service, or `None` when it does not exist.
    pub async fn get_service(&self, service: &str) -> anyhow::Result<Option<Value>> {
        self.get_opt(&self.service_path(service)).await
    }

    pub async fn list_services(&self) -> anyhow::Result<Vec<Value>> {
        self.list_all(&format!("{}/services", self.location_path()), "services")
            .await
    }

    /// `CreateService`: the operation.
    pub async fn create_service(&self, service_id: &str, service: &Value) -> anyhow::Result<Value> {
        let path = format!("{}/services", self.location_path());
        self.post(&path, &[("serviceId", service_id)], service)
            .await
    }

    /// `UpdateService` (`update_mask` empty: every writable field replaced): the operation.
    pub async fn update_service(
        &self,
        service_id: &str,
        service: &Value,
        update_mask: &str,
    ) -> anyhow::Result<Value> {
        self.patch(&self.service_path(service_id), service, update_mask)
            .await
    }

    /// `DeleteService`: the operation.
    pub async fn delete_service(&self, service_id: &str) -> anyhow::Result<Value> {
        self.delete(&self.service_path(service_id)).await
    }

    /// The revisions of a service, or of every service (`None`).
    pub async fn list_revisions(&self, service: Option<&str>) -> anyhow::Result<Vec<Value>> {
        let parent = self.service_path(service.unwrap_or(api::ServiceName::ANY));
        self.list_all(&format!("{parent}/revisions"), "revisions")
            .await
    }

    /// The revision, or `None` when it does not exist.
    pub async fn get_revision(
        &self,
        service: &str,
        revision: &str,
    ) -> anyhow::Result<Option<Value>> {
        let path = format!(
            "{}/revisions/{}",
            self.service_path(service),
            encode(revision)
        );
        self.get_opt(&path).await
    }

    fn job_path(&self, job: &str) -> String {
        format!("{}/jobs/{}", self.location_path(), encode(job))
    }

    fn execution_path(&self, job: &str, execution: &str) -> String {
        format!("{}/executions/{}", self.job_path(job), encode(execution))
    }

    /// The job, or `None` when it does not exist.
    pub async fn get_job(&self, job: &str) -> anyhow::Result<Option<Value>> {
        self.get_opt(&self.job_path(job)).await
    }

    pub async fn list_jobs(&self) -> anyhow::Result<Vec<Value>> {
        self.list_all(&format!("{}/jobs", self.location_path()), "jobs")
            .await
    }

    /// `CreateJob`: the operation.
    pub async fn create_job(&self, job_id: &str, job: &Value) -> anyhow::Result<Value> {
        let path = format!("{}/jobs", self.location_path());
        self.post(&path, &[("jobId", job_id)], job).await
    }

    /// `UpdateJob` (`update_mask` empty: every writable field replaced): the operation.
    pub async fn update_job(
        &self,
        job_id: &str,
        job: &Value,
        update_mask: &str,
    ) -> anyhow::Result<Value> {
        self.patch(&self.job_path(job_id), job, update_mask).await
    }

    /// `DeleteJob` (its executions and tasks with it): the operation.
    pub async fn delete_job(&self, job_id: &str) -> anyhow::Result<Value> {
        self.delete(&self.job_path(job_id)).await
    }

    /// `RunJob` (`request`: a `RunJobRequest`): the operation, its metadata the new
    /// execution.
    pub async fn run_job(&self, job_id: &str, request: &Value) -> anyhow::Result<Value> {
        let path = format!("{}:run", self.job_path(job_id));
        self.post(&path, &[], request).await
    }

    /// The executions of a job, or of every job (`None`).
    pub async fn list_executions(&self, job: Option<&str>) -> anyhow::Result<Vec<Value>> {
        let parent = self.job_path(job.unwrap_or(api::JobName::ANY));
        self.list_all(&format!("{parent}/executions"), "executions")
            .await
    }

    /// The execution, or `None` when it does not exist.
    pub async fn get_execution(&self, job: &str, execution: &str) -> anyhow::Result<Option<Value>> {
        self.get_opt(&self.execution_path(job, execution)).await
    }

    /// `DeleteExecution`: the operation.
    pub async fn delete_execution(&self, job: &str, execution: &str) -> anyhow::Result<Value> {
        self.delete(&self.execution_path(job, execution)).await
    }

    /// `CancelExecution`: the operation, done once the execution has stopped.
    pub async fn cancel_execution(&self, job: &str, execution: &str) -> anyhow::Result<Value> {
        let path = format!("{}:cancel", self.execution_path(job, execution));
        self.post(&path, &[], &json!({})).await
    }

    /// The tasks of an execution.
    pub async fn list_tasks(&self, job: &str, execution: &str) -> anyhow::Result<Vec<Value>> {
        let parent = self.execution_path(job, execution);
        self.list_all(&format!("{parent}/tasks"), "tasks").await
    }

    /// The task, or `None` when it does not exist.
    pub async fn get_task(
        &self,
        job: &str,
        execution: &str,
        task: &str,
    ) -> anyhow::Result<Option<Value>> {
        let path = format!(
            "{}/tasks/{}",
            self.execution_path(job, execution),
            encode(task)
        );
        self.get_opt(&path).await
    }

    /// The log entries of an execution's task attempts (homerun's own API beside the
    /// Admin API: `GET /homerun/v1/.../executions/{e}/logs?task=&attempt=`), `None` when
    /// there are none.
    pub async fn execution_logs(
        &self,
        job: &str,
        execution: &str,
        task: Option<u32>,
        attempt: Option<u32>,
    ) -> anyhow::Result<Option<Vec<Value>>> {
        let path = format!(
            "/homerun/v1/projects/{}/locations/{}/jobs/{}/executions/{}/logs",
            encode(&self.project),
            encode(&self.region),
            encode(job),
            encode(execution)
        );
        let (task, attempt) = (task.map(|t| t.to_string()), attempt.map(|a| a.to_string()));
        let mut query = Vec::new();
        if let Some(t) = &task {
            query.push(("task", t.as_str()));
        }
        if let Some(a) = &attempt {
            query.push(("attempt", a.as_str()));
        }
        match self.get(&path, &query).await {
            Ok(v) => Ok(Some(
                v.get("entries")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            )),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The IAM policy of a service, a job, a secret or a project.
    pub async fn get_iam_policy(&self, resource: &IamResource) -> anyhow::Result<Value> {
        match resource {
            IamResource::Project(_) => {
                let path = format!("{}:getIamPolicy", self.iam_path(resource));
                self.post(&path, &[], &json!({})).await
            }
            _ => {
                let path = format!("{}:getIamPolicy", self.iam_path(resource));
                self.get(&path, &[]).await
            }
        }
    }

    /// `:setIamPolicy` (`policy` with the etag it was read with): the policy written.
    pub async fn set_iam_policy(
        &self,
        resource: &IamResource,
        policy: &Value,
    ) -> anyhow::Result<Value> {
        let path = format!("{}:setIamPolicy", self.iam_path(resource));
        self.post(&path, &[], &json!({ "policy": policy })).await
    }

    fn iam_path(&self, resource: &IamResource) -> String {
        match resource {
            IamResource::Service(id) => self.service_path(id),
            IamResource::Job(id) => self.job_path(id),
            IamResource::Secret(id) => self.secret_path(id),
            IamResource::Project(p) => format!("/v1/projects/{}", encode(p)),
        }
    }

    /// `/v1/projects/{p}/secrets`.
    fn secrets_path(&self) -> String {
        format!("/v1/projects/{}/secrets", encode(&self.project))
    }

    /// A secret's path: its id in this project, or its full name.
    fn secret_path(&self, secret: &str) -> String {
        if secret.starts_with("projects/") {
            format!("/v1/{}", encode(secret))
        } else {
            format!("{}/{}", self.secrets_path(), encode(secret))
        }
    }

    /// `CreateSecret` (automatic replication, no version yet): the secret.
    pub async fn create_secret(&self, secret_id: &str) -> anyhow::Result<Value> {
        let body = json!({ "replication": { "automatic": {} } });
        self.post(&self.secrets_path(), &[("secretId", secret_id)], &body)
            .await
    }

    pub async fn list_secrets(&self) -> anyhow::Result<Vec<Value>> {
        self.list_all(&self.secrets_path(), "secrets").await
    }

    /// The secret (never its value: there is none in a secret), or `None`.
    pub async fn get_secret(&self, secret: &str) -> anyhow::Result<Option<Value>> {
        self.get_opt(&self.secret_path(secret)).await
    }

    /// `DeleteSecret`, its versions with it.
    pub async fn delete_secret(&self, secret: &str) -> anyhow::Result<Value> {
        self.delete(&self.secret_path(secret)).await
    }

    /// `AddSecretVersion`: the version (without its value).
    pub async fn add_secret_version(&self, secret: &str, data: &[u8]) -> anyhow::Result<Value> {
        let path = format!("{}:addVersion", self.secret_path(secret));
        let body = json!({ "payload": { "data": base64(data) } });
        self.post(&path, &[], &body).await
    }

    pub async fn list_secret_versions(&self, secret: &str) -> anyhow::Result<Vec<Value>> {
        let path = format!("{}/versions", self.secret_path(secret));
        self.list_all(&path, "versions").await
    }

    fn service_account_path(email: &str) -> String {
        format!("/v1/projects/-/serviceAccounts/{}", encode(email))
    }

    /// IAM Credentials' `generateIdToken` for a service account: the token.
    pub async fn generate_id_token(&self, email: &str, audience: &str) -> anyhow::Result<String> {
        let path = format!("{}:generateIdToken", Self::service_account_path(email));
        let body = json!({ "audience": audience, "includeEmail": true });
        let answer = self.post(&path, &[], &body).await?;
        token_of(&answer, "token")
    }

    /// IAM Credentials' `generateAccessToken` for a service account: the token.
    pub async fn generate_access_token(
        &self,
        email: &str,
        scopes: &[String],
    ) -> anyhow::Result<String> {
        let path = format!("{}:generateAccessToken", Self::service_account_path(email));
        let answer = self.post(&path, &[], &json!({ "scope": scopes })).await?;
        token_of(&answer, "accessToken")
    }

    /// `:wait` on an operation (its full name) for at most `timeout`: the operation as
    /// it then is, done or not.
    pub async fn wait_operation(&self, name: &str, timeout: Duration) -> anyhow::Result<Value> {
        let path = format!("/v2/{name}:wait");
        let body = json!({ "timeout": format!("{}s", timeout.as_secs().max(1)) });
        self.call(Method::POST, &path, &[], Some(&body), timeout + WAIT_MARGIN)
            .await
    }
}

/// What an IAM policy is set on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IamResource {
    /// A service of the client's project and region, by id.
    Service(String),
    /// A job of the client's project and region, by id.
    Job(String),
    /// A secret of the client's project, by id.
    Secret(String),
    /// A project, by id.
    Project(String),
}

impl IamResource {
    /// `service [hello]`, as messages name it.
    pub fn describe(&self) -> String {
        match self {
            IamResource::Service(id) => format!("service [{id}]"),
            IamResource::Job(id) => format!("job [{id}]"),
            IamResource::Secret(id) => format!("secret [{id}]"),
            IamResource::Project(p) => format!("project [{p}]"),
        }
    }
}

fn token_of(answer: &Value, key: &str) -> anyhow::Result<String> {
    answer
        .get(key)
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("the API answered with no {key}"))
}

/// Standard base64 with padding (proto3 JSON's `bytes`).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters, `/` (names are
/// paths) and `@` (a path character: service accounts' emails stay as they are).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/' | b'@') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_envelope_names_violations_the_message_leaves_out() {
        let body = json!({"error": {
            "code": 400,
            "message": "service.template.containers[0].image: required",
            "status": "INVALID_ARGUMENT",
            "details": [{
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [
                    {"field": "service.template.containers[0].image", "description": "required"},
                    {"field": "service.traffic[0].percent", "description": "must add up to 100"}
                ]
            }]
        }});
        let e = ApiError::from_http_body(400, body.to_string().as_bytes()).unwrap();
        assert_eq!(e.status, "INVALID_ARGUMENT");
        assert_eq!(
            e.to_string(),
            "service.template.containers[0].image: required (service.traffic[0].percent: must add up to 100)"
        );
        assert!(ApiError::from_http_body(502, b"Bad Gateway").is_none());
    }

    #[test]
    fn hints_follow_the_message() {
        let mut e = ApiError::from_http_body(
            401,
            br#"{"error": {"code": 401, "message": "Missing credential.", "status": "UNAUTHENTICATED"}}"#,
        )
        .unwrap();
        e.hint = Some("no token: pass --token".into());
        assert_eq!(e.to_string(), "Missing credential. No token: pass --token.");
        e.message = "denied".into();
        assert_eq!(e.to_string(), "denied: no token: pass --token");
    }

    #[test]
    fn encoding() {
        assert_eq!(encode("a b/c"), "a%20b/c");
        assert_eq!(encode("x=1&y"), "x%3D1%26y");
        assert_eq!(encode("sa@p.iam"), "sa@p.iam");
    }

    #[test]
    fn base64_of_bytes() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xff, 0xfe, 0x00, 0x10]), "//4AEA==");
    }
}
