//! Identity and access through the router: authentication, IAM policies and their
//! enforcement, and secrets (whose values must appear in no answer).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::auth::{AuthFailure, Authenticator, Caller};
use api::http::{router, ApiState, IAM_POLICY_KIND, SECRET_KIND, SECRET_VERSION_KIND};
use api::naming::{default_service_account, project_number, Endpoint};
use api::secret::{resolve_secret, Sealer, SecretError};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use store::{MemStore, Op, Precondition, Store};
use tower::ServiceExt;

const LOC: &str = "/v2/projects/local/locations/local";
const SVC: &str = "/v2/projects/local/locations/local/services";
const DEV: &str = "serviceAccount:dev@local.iam.gserviceaccount.com";
const VIEWER: &str = "user:viewer@example.com";
const NOBODY: &str = "user:nobody@example.com";
const OWNER: &str = "user:owner@example.com";
const ACCESSOR: &str = "serviceAccount:app@local.iam.gserviceaccount.com";

/// Tokens are the callers' names, or `as:MEMBER`.
struct Tokens;

impl Authenticator for Tokens {
    fn authenticate(&self, bearer: &str) -> Result<Caller, AuthFailure> {
        if let Some(member) = bearer.strip_prefix("as:") {
            return Ok(Caller::Member(member.into()));
        }
        match bearer {
            "admin" => Ok(Caller::Admin),
            "dev" => Ok(Caller::Member(DEV.into())),
            "viewer" => Ok(Caller::Member(VIEWER.into())),
            "nobody" => Ok(Caller::Member(NOBODY.into())),
            "owner" => Ok(Caller::Member(OWNER.into())),
            "app" => Ok(Caller::Member(ACCESSOR.into())),
            "expired" => Err(AuthFailure::new("the token expired")),
            _ => Err(AuthFailure::new("unknown token")),
        }
    }
}

/// XOR with a key byte, the associated data in front (and checked).
struct Xor;

impl Sealer for Xor {
    fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut out = aad.to_vec();
        out.push(b'|');
        out.extend(plaintext.iter().map(|b| b ^ 0x5a));
        out
    }

    fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, String> {
        let rest = sealed
            .strip_prefix(aad)
            .and_then(|r| r.strip_prefix(b"|"))
            .ok_or("sealed for something else")?;
        Ok(rest.iter().map(|b| b ^ 0x5a).collect())
    }
}

struct Api {
    app: Router,
    store: Arc<MemStore>,
    state: ApiState,
    /// Every response body, to look for leaked secrets in.
    bodies: Mutex<Vec<String>>,
}

impl Api {
    fn with(auth: bool, sealer: bool) -> Api {
        let store = Arc::new(MemStore::new());
        let mut state = ApiState::new(
            store.clone(),
            "local",
            Endpoint::new("local", "localhost", 8080),
        );
        if auth {
            state = state.with_auth(Arc::new(Tokens));
        }
        if sealer {
            state = state.with_sealer(Arc::new(Xor));
        }
        Api {
            app: router(state.clone()),
            store,
            state,
            bodies: Mutex::new(Vec::new()),
        }
    }

    /// A request as `token` (none: no `Authorization`); the status, the body and the
    /// `WWW-Authenticate` header.
    async fn send(
        &self,
        token: Option<&str>,
        method: &str,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, Option<String>) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let body = body.map_or_else(Body::empty, |v| Body::from(v.to_string()));
        let resp = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let www = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        self.bodies.lock().unwrap().push(text.clone());
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}: {text}"))
        };
        (status, value, www)
    }

    async fn call(
        &self,
        token: Option<&str>,
        method: &str,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, value, _) = self.send(token, method, uri, body).await;
        (status, value)
    }

    async fn ok(&self, token: Option<&str>, method: &str, uri: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(token, method, uri, body).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{token:?} {method} {uri}: {value:#}"
        );
        value
    }

    /// The status and error status name of a call that fails.
    async fn fails(
        &self,
        token: Option<&str>,
        method: &str,
        uri: &str,
        body: Option<Value>,
    ) -> (u16, String, String) {
        let (status, value) = self.call(token, method, uri, body).await;
        assert_ne!(
            status,
            StatusCode::OK,
            "{token:?} {method} {uri}: {value:#}"
        );
        let e = &value["error"];
        (
            status.as_u16(),
            e["status"].as_str().unwrap_or("").to_string(),
            e["message"].as_str().unwrap_or("").to_string(),
        )
    }

    fn count(&self, kind: &str) -> usize {
        self.store.list(kind, "", 1000, None).unwrap().records.len()
    }
}

fn service_body() -> Value {
    json!({"template": {"containers": [{"image": "img"}]}})
}

fn policy(bindings: &[(&str, &[&str])]) -> Value {
    let bindings: Vec<Value> = bindings
        .iter()
        .map(|(role, members)| json!({"role": role, "members": members}))
        .collect();
    json!({"policy": {"bindings": bindings}})
}

/// The project's policy: dev a developer who may act as the project's service
/// accounts, viewer a viewer, owner an owner, app a secret accessor.
async fn grant_project_roles(api: &Api) {
    set_project_policy(
        api,
        "local",
        &[
            ("roles/run.developer", &[DEV]),
            ("roles/iam.serviceAccountUser", &[DEV]),
            ("roles/viewer", &[VIEWER]),
            ("roles/owner", &[OWNER]),
            ("roles/secretmanager.secretAccessor", &[ACCESSOR]),
        ],
    )
    .await;
}

/// Sets the policy of `project` as the admin.
async fn set_project_policy(api: &Api, project: &str, bindings: &[(&str, &[&str])]) {
    api.ok(
        Some("admin"),
        "POST",
        &format!("/v1/projects/{project}:setIamPolicy"),
        Some(policy(bindings)),
    )
    .await;
}

/// The default compute account of `project`.
fn default_account(project: &str) -> String {
    default_service_account(project)
}

/// Stores the policy of service account `email` of `project` (homerun has no route
/// that sets one).
fn put_account_policy(api: &Api, project: &str, email: &str, bindings: &[(&str, &[&str])]) {
    let doc = policy(bindings)["policy"].clone();
    api.store
        .transact(vec![Op::put(
            IAM_POLICY_KIND,
            format!("projects/{project}/serviceAccounts/{email}"),
            doc,
            Precondition::Any,
        )])
        .unwrap();
}

#[tokio::test]
async fn every_route_needs_a_valid_token() {
    let api = Api::with(true, true);
    for (method, uri) in [
        ("GET", SVC.to_string()),
        ("POST", format!("{SVC}?serviceId=hello")),
        ("GET", format!("{LOC}/operations")),
        ("GET", "/v1/projects/local/secrets".to_string()),
        ("POST", "/v1/projects/local:getIamPolicy".to_string()),
        ("GET", "/no/such/path".to_string()),
    ] {
        let (status, body, www) = api.send(None, method, &uri, Some(service_body())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
        assert_eq!(body["error"]["code"], 401);
        assert_eq!(
            body["error"]["message"],
            "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
        );
        assert_eq!(www.as_deref(), Some("Bearer realm=\"homerun\""));
    }
    // Not a bearer token.
    let req = Request::builder()
        .uri(SVC)
        .header("authorization", "Basic YTpi")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        api.app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    for token in ["expired", "garbage"] {
        let (status, body, www) = api.send(Some(token), "GET", SVC, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(
                "Request had invalid authentication credentials. Expected OAuth 2 access token"
            ),
            "{message}"
        );
        let reason = if token == "expired" {
            "the token expired"
        } else {
            "unknown token"
        };
        assert!(message.contains(reason), "{message}");
        assert_eq!(www.as_deref(), Some("Bearer realm=\"homerun\""));
    }
    assert_eq!(api.store.revision().unwrap(), 0, "nothing written");
    // The admin token does everything.
    api.ok(
        Some("admin"),
        "POST",
        &format!("{SVC}?serviceId=hello"),
        Some(service_body()),
    )
    .await;
    api.ok(Some("admin"), "GET", &format!("{SVC}/hello"), None)
        .await;
    api.ok(
        Some("admin"),
        "POST",
        &format!("{SVC}/hello:setIamPolicy"),
        Some(policy(&[("roles/run.invoker", &["allUsers"])])),
    )
    .await;
    api.ok(Some("admin"), "GET", "/v1/projects/local/secrets", None)
        .await;
    let (status, _) = api.call(Some("admin"), "GET", "/no/such/path", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    api.ok(Some("admin"), "DELETE", &format!("{SVC}/hello"), None)
        .await;
}

#[tokio::test]
async fn members_are_held_to_their_roles() {
    let api = Api::with(true, true);
    grant_project_roles(&api).await;
    let hello = format!("{SVC}/hello");

    // Without a role: denied, whether or not the resource exists, before anything else.
    let (code, status, message) = api.fails(Some("nobody"), "GET", &hello, None).await;
    assert_eq!((code, status.as_str()), (403, "PERMISSION_DENIED"));
    assert_eq!(
        message,
        "Permission 'run.services.get' denied on resource 'projects/local/locations/local/services/hello' (or it may not exist)."
    );
    let (code, _, message) = api
        .fails(
            Some("nobody"),
            "POST",
            &format!("{SVC}?serviceId=hello"),
            Some(service_body()),
        )
        .await;
    assert_eq!(code, 403);
    assert!(
        message
            .contains("'run.services.create' denied on resource 'projects/local/locations/local'"),
        "{message}"
    );
    let (_, body) = api.call(Some("nobody"), "GET", SVC, None).await;
    let info = &body["error"]["details"][0];
    assert_eq!(info["@type"], "type.googleapis.com/google.rpc.ErrorInfo");
    assert_eq!(info["reason"], "IAM_PERMISSION_DENIED");
    assert_eq!(info["metadata"]["permission"], "run.services.list");

    // A developer deploys, updates, reads the policy, runs jobs; may not set policies.
    api.ok(
        Some("dev"),
        "POST",
        &format!("{SVC}?serviceId=hello"),
        Some(service_body()),
    )
    .await;
    let op = api
        .ok(
            Some("dev"),
            "PATCH",
            &hello,
            Some(json!({"template": {"containers": [{"image": "img:2"}]}})),
        )
        .await;
    api.ok(
        Some("dev"),
        "GET",
        &format!("/v2/{}", op["name"].as_str().unwrap()),
        None,
    )
    .await;
    api.ok(Some("dev"), "GET", &format!("{hello}/revisions"), None)
        .await;
    api.ok(Some("dev"), "GET", &format!("{hello}:getIamPolicy"), None)
        .await;
    let (code, _, message) = api
        .fails(
            Some("dev"),
            "POST",
            &format!("{hello}:setIamPolicy"),
            Some(policy(&[("roles/run.invoker", &[DEV])])),
        )
        .await;
    assert_eq!(code, 403);
    assert!(message.contains("'run.services.setIamPolicy'"), "{message}");
    api.ok(
        Some("dev"),
        "POST",
        &format!("{LOC}/jobs?jobId=batch"),
        Some(json!({"template": {"template": {"containers": [{"image": "img"}]}}})),
    )
    .await;
    api.ok(
        Some("dev"),
        "POST",
        &format!("{LOC}/jobs/batch:run"),
        Some(json!({})),
    )
    .await;
    let (code, ..) = api
        .fails(
            Some("dev"),
            "POST",
            "/v1/projects/local:setIamPolicy",
            Some(policy(&[("roles/owner", &[DEV])])),
        )
        .await;
    assert_eq!(code, 403);

    // A viewer reads and nothing more.
    api.ok(Some("viewer"), "GET", SVC, None).await;
    api.ok(Some("viewer"), "GET", &hello, None).await;
    api.ok(
        Some("viewer"),
        "POST",
        &format!("{hello}:getIamPolicy"),
        Some(json!({})),
    )
    .await;
    api.ok(Some("viewer"), "GET", &format!("{LOC}/operations"), None)
        .await;
    api.ok(
        Some("viewer"),
        "GET",
        &format!("{LOC}/jobs/batch/executions"),
        None,
    )
    .await;
    for (method, uri, body) in [
        ("PATCH", hello.clone(), Some(service_body())),
        ("DELETE", hello.clone(), None),
        ("POST", format!("{hello}:setIamPolicy"), Some(policy(&[]))),
        ("POST", format!("{LOC}/jobs/batch:run"), Some(json!({}))),
        (
            "POST",
            format!("{SVC}?serviceId=other"),
            Some(service_body()),
        ),
    ] {
        let (code, ..) = api.fails(Some("viewer"), method, &uri, body).await;
        assert_eq!(code, 403, "{method} {uri}");
    }
    let tested = api
        .ok(
            Some("viewer"),
            "POST",
            &format!("{hello}:testIamPermissions"),
            Some(json!({"permissions": ["run.services.get", "run.services.update", "run.services.getIamPolicy", "run.nothing.at_all"]})),
        )
        .await;
    assert_eq!(
        tested,
        json!({"permissions": ["run.services.get", "run.services.getIamPolicy"]})
    );
    let tested = api
        .ok(
            Some("nobody"),
            "POST",
            &format!("{hello}:testIamPermissions"),
            Some(json!({"permissions": ["run.services.get"]})),
        )
        .await;
    assert_eq!(tested, json!({}));

    // A role on one service only: that service, not its siblings nor the list (and
    // acting as the service's account, on the account).
    api.ok(
        Some("admin"),
        "POST",
        &format!("{SVC}/hello:setIamPolicy"),
        Some(policy(&[("roles/run.developer", &[NOBODY])])),
    )
    .await;
    put_account_policy(
        &api,
        "local",
        &default_account("local"),
        &[("roles/iam.serviceAccountUser", &[NOBODY])],
    );
    api.ok(Some("nobody"), "GET", &hello, None).await;
    api.ok(
        Some("nobody"),
        "PATCH",
        &hello,
        Some(json!({"template": {"containers": [{"image": "img:3"}]}})),
    )
    .await;
    api.ok(Some("nobody"), "GET", &format!("{hello}/revisions"), None)
        .await;
    api.ok(
        Some("dev"),
        "POST",
        &format!("{SVC}?serviceId=other"),
        Some(service_body()),
    )
    .await;
    for uri in [
        format!("{SVC}/other"),
        SVC.to_string(),
        format!("{SVC}/-/revisions"),
    ] {
        let (code, ..) = api.fails(Some("nobody"), "GET", &uri, None).await;
        assert_eq!(code, 403, "{uri}");
    }

    // The project's owner sets the project's policy; the admin does everything.
    api.ok(
        Some("owner"),
        "POST",
        "/v1/projects/local:getIamPolicy",
        Some(json!({})),
    )
    .await;
    let got = api
        .ok(
            Some("viewer"),
            "POST",
            "/v1/projects/local:getIamPolicy",
            Some(json!({})),
        )
        .await;
    let mut changed = got.clone();
    changed["bindings"]
        .as_array_mut()
        .unwrap()
        .push(json!({"role": "roles/run.viewer", "members": [NOBODY]}));
    api.ok(
        Some("owner"),
        "POST",
        "/v1/projects/local:setIamPolicy",
        Some(json!({"policy": changed})),
    )
    .await;
    api.ok(Some("nobody"), "GET", &format!("{SVC}/other"), None)
        .await;
    api.ok(Some("admin"), "DELETE", &format!("{SVC}/other"), None)
        .await;
}

#[tokio::test]
async fn iam_policies_of_services_and_jobs() {
    let api = Api::with(false, false);
    let hello = format!("{SVC}/hello");
    let (code, status, _) = api
        .fails(None, "GET", &format!("{hello}:getIamPolicy"), None)
        .await;
    assert_eq!((code, status.as_str()), (404, "NOT_FOUND"));
    api.ok(
        None,
        "POST",
        &format!("{SVC}?serviceId=hello"),
        Some(service_body()),
    )
    .await;
    let empty = api
        .ok(
            None,
            "GET",
            &format!("{hello}:getIamPolicy?options.requestedPolicyVersion=3"),
            None,
        )
        .await;
    assert_eq!(empty, json!({"version": 1, "etag": "AAAAAAAAAAA="}));
    let (code, ..) = api
        .fails(
            None,
            "GET",
            &format!("{hello}:getIamPolicy?options.requestedPolicyVersion=2"),
            None,
        )
        .await;
    assert_eq!(code, 400);

    // Set: merged, versioned, etag'd; the controller hears of it.
    tokio::time::timeout(Duration::from_millis(100), api.state.changed.notified())
        .await
        .unwrap();
    let set = api
        .ok(
            None,
            "POST",
            &format!("{hello}:setIamPolicy"),
            Some(json!({"policy": {"bindings": [
            {"role": "roles/run.invoker", "members": ["allUsers", DEV]},
            {"role": "roles/run.invoker", "members": [DEV, VIEWER]},
        ], "etag": empty["etag"]}})),
        )
        .await;
    assert_eq!(
        set["bindings"],
        json!([{"role": "roles/run.invoker", "members": ["allUsers", DEV, VIEWER]}])
    );
    assert_eq!(set["version"], 1);
    assert_ne!(set["etag"], empty["etag"]);
    tokio::time::timeout(Duration::from_millis(100), api.state.changed.notified())
        .await
        .expect("setIamPolicy pokes changed");
    assert_eq!(
        api.ok(None, "POST", &format!("{hello}:getIamPolicy"), None)
            .await,
        set
    );

    // A stale etag: 409 ABORTED, nothing written.
    let (code, status, message) = api
        .fails(
            None,
            "POST",
            &format!("{hello}:setIamPolicy"),
            Some(json!({"policy": {"bindings": [], "etag": empty["etag"]}})),
        )
        .await;
    assert_eq!((code, status.as_str()), (409, "ABORTED"));
    assert_eq!(message, "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.");
    // An update mask without bindings keeps them.
    let kept = api
        .ok(
            None,
            "POST",
            &format!("{hello}:setIamPolicy"),
            Some(json!({"policy": {"etag": set["etag"]}, "updateMask": "etag"})),
        )
        .await;
    assert_eq!(kept["bindings"], set["bindings"]);

    // Bad members and roles are named.
    for (bad, field, words) in [
        (
            json!({"role": "roles/run.invoker", "members": [DEV, "alice@example.com"]}),
            "policy.bindings[0].members[1]",
            "roles/run.invoker",
        ),
        (
            json!({"role": "roles/run.invoker", "members": ["robot:x@y.z"]}),
            "policy.bindings[0].members[0]",
            "robot",
        ),
        (
            json!({"role": "roles/run.invokers", "members": [DEV]}),
            "policy.bindings[0].role",
            "not supported",
        ),
        (
            json!({"role": "run.invoker", "members": [DEV]}),
            "policy.bindings[0].role",
            "roles/",
        ),
    ] {
        let (_, body) = api
            .call(
                None,
                "POST",
                &format!("{hello}:setIamPolicy"),
                Some(json!({"policy": {"bindings": [bad]}})),
            )
            .await;
        assert_eq!(body["error"]["status"], "INVALID_ARGUMENT", "{body:#}");
        let v = &body["error"]["details"][0]["fieldViolations"][0];
        assert_eq!(v["field"], field, "{body:#}");
        assert!(
            v["description"].as_str().unwrap().contains(words),
            "{body:#}"
        );
    }
    let (code, ..) = api
        .fails(
            None,
            "POST",
            &format!("{hello}:setIamPolicy"),
            Some(json!({})),
        )
        .await;
    assert_eq!(code, 400, "a policy is required");
    let (code, ..) = api
        .fails(
            None,
            "POST",
            &format!("{hello}:frobnicate"),
            Some(json!({})),
        )
        .await;
    assert_eq!(code, 501);

    // The admin (no authentication) holds every known permission.
    let tested = api
        .ok(
            None,
            "POST",
            &format!("{hello}:testIamPermissions"),
            Some(json!({"permissions": ["run.services.setIamPolicy", "no.such.permission"]})),
        )
        .await;
    assert_eq!(
        tested,
        json!({"permissions": ["run.services.setIamPolicy"]})
    );
    let (code, ..) = api
        .fails(
            None,
            "POST",
            &format!("{hello}:testIamPermissions"),
            Some(json!({"permissions": ["run.*"]})),
        )
        .await;
    assert_eq!(code, 400);

    // The policy goes with the service.
    assert_eq!(api.count(IAM_POLICY_KIND), 1);
    api.ok(None, "DELETE", &hello, None).await;
    assert_eq!(api.count(IAM_POLICY_KIND), 0);
    api.ok(
        None,
        "POST",
        &format!("{SVC}?serviceId=hello"),
        Some(service_body()),
    )
    .await;
    assert_eq!(
        api.ok(None, "GET", &format!("{hello}:getIamPolicy"), None)
            .await,
        empty
    );

    // Jobs the same.
    let batch = format!("{LOC}/jobs/batch");
    api.ok(
        None,
        "POST",
        &format!("{LOC}/jobs?jobId=batch"),
        Some(json!({"template": {"template": {"containers": [{"image": "img"}]}}})),
    )
    .await;
    let set = api
        .ok(
            None,
            "POST",
            &format!("{batch}:setIamPolicy"),
            Some(policy(&[("roles/run.invoker", &[DEV])])),
        )
        .await;
    assert_eq!(
        api.ok(None, "GET", &format!("{batch}:getIamPolicy"), None)
            .await,
        set
    );
    api.ok(None, "DELETE", &batch, None).await;
    assert_eq!(api.count(IAM_POLICY_KIND), 0);
    let (code, ..) = api
        .fails(None, "POST", &format!("{batch}:getIamPolicy"), None)
        .await;
    assert_eq!(code, 404);

    // The project's policy.
    let project = api
        .ok(None, "POST", "/v1/projects/local:getIamPolicy", None)
        .await;
    assert_eq!(project["etag"], "AAAAAAAAAAA=");
    api.ok(
        None,
        "POST",
        "/v1/projects/local:setIamPolicy",
        Some(policy(&[("roles/run.developer", &[DEV])])),
    )
    .await;
    let loaded = api::iam::load_policy(api.store.as_ref(), "projects/local").unwrap();
    assert!(api::iam::policy_allows(
        &[&loaded],
        DEV,
        "run.services.update"
    ));
}

#[tokio::test]
async fn secrets_without_a_sealer_are_unavailable() {
    let api = Api::with(false, false);
    for (method, uri) in [
        ("GET", "/v1/projects/local/secrets"),
        ("POST", "/v1/projects/local/secrets?secretId=s"),
        ("POST", "/v1/projects/local/secrets/s:addVersion"),
        ("GET", "/v1/projects/local/secrets/s/versions/latest"),
    ] {
        let (code, status, message) = api.fails(None, method, uri, Some(json!({}))).await;
        assert_eq!(
            (code, status.as_str()),
            (503, "UNAVAILABLE"),
            "{method} {uri}"
        );
        assert!(message.contains("without a key"), "{message}");
    }
}

fn payload(value: &[u8]) -> Value {
    json!({"payload": {"data": STANDARD.encode(value)}})
}

#[tokio::test]
async fn secret_versions_and_their_values() {
    let api = Api::with(false, true);
    let secrets = "/v1/projects/local/secrets";
    let db = format!("{secrets}/db-pass");
    let resolve = |secret: &str, version: &str| {
        resolve_secret(api.store.as_ref(), &Xor, "local", secret, version)
    };

    // Create.
    let created = api
        .ok(
            None,
            "POST",
            &format!("{secrets}?secretId=db-pass"),
            Some(json!({"labels": {"team": "a"}})),
        )
        .await;
    assert_eq!(created["name"], "projects/local/secrets/db-pass");
    assert_eq!(created["replication"], json!({"automatic": {}}));
    assert!(created["createTime"].is_string());
    let (code, status, message) = api
        .fails(None, "POST", &format!("{secrets}?secretId=db-pass"), None)
        .await;
    assert_eq!((code, status.as_str()), (409, "ALREADY_EXISTS"));
    assert!(
        message.contains("projects/local/secrets/db-pass"),
        "{message}"
    );
    for bad in ["a.b", "", &"x".repeat(256)] {
        let (code, ..) = api
            .fails(None, "POST", &format!("{secrets}?secretId={bad}"), None)
            .await;
        assert_eq!(code, 400, "{bad}");
    }
    let (code, ..) = api
        .fails(None, "POST", &format!("{secrets}?secretId=x"), Some(json!({"replication": {"automatic": {}, "userManaged": {"replicas": [{"location": "l"}]}}})))
        .await;
    assert_eq!(code, 400);
    assert_eq!(api.ok(None, "GET", &db, None).await, created);
    let (code, ..) = api
        .fails(None, "GET", &format!("{secrets}/nope"), None)
        .await;
    assert_eq!(code, 404);
    let (code, ..) = api
        .fails(
            None,
            "POST",
            &format!("{secrets}/nope:addVersion"),
            Some(payload(b"x")),
        )
        .await;
    assert_eq!(code, 404);

    // Versions 1 and 2.
    let v1 = api
        .ok(
            None,
            "POST",
            &format!("{db}:addVersion"),
            Some(payload(b"hunter2")),
        )
        .await;
    assert_eq!(v1["name"], "projects/local/secrets/db-pass/versions/1");
    assert_eq!(v1["state"], "ENABLED");
    assert!(v1["createTime"].is_string());
    let crc = api::secret::crc32c(b"correct horse");
    let v2 = api
        .ok(None, "POST", &format!("{db}:addVersion"), Some(json!({"payload": {"data": STANDARD.encode(b"correct horse"), "dataCrc32c": crc.to_string()}})))
        .await;
    assert_eq!(v2["name"], "projects/local/secrets/db-pass/versions/2");
    assert_eq!(v2["clientSpecifiedPayloadChecksum"], true);
    for (bad, field) in [
        (
            json!({"payload": {"data": STANDARD.encode(b"x"), "dataCrc32c": "1"}}),
            "payload.dataCrc32c",
        ),
        (json!({"payload": {"data": "not base64!"}}), "payload.data"),
        (payload(&vec![b'x'; 64 * 1024 + 1]), "payload.data"),
        (json!({}), "payload"),
    ] {
        let (_, body) = api
            .call(None, "POST", &format!("{db}:addVersion"), Some(bad))
            .await;
        assert_eq!(
            body["error"]["details"][0]["fieldViolations"][0]["field"], field,
            "{body:#}"
        );
    }
    api.ok(None, "POST", &format!("{secrets}?secretId=big"), None)
        .await;
    api.ok(
        None,
        "POST",
        &format!("{secrets}/big:addVersion"),
        Some(payload(&vec![b'x'; 64 * 1024])),
    )
    .await;

    // List, newest first, and page.
    let list = api.ok(None, "GET", &format!("{db}/versions"), None).await;
    let names: Vec<&str> = list["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "projects/local/secrets/db-pass/versions/2",
            "projects/local/secrets/db-pass/versions/1"
        ]
    );
    assert_eq!(list["totalSize"], 2);
    let first = api
        .ok(None, "GET", &format!("{db}/versions?pageSize=1"), None)
        .await;
    assert_eq!(first["versions"][0]["name"], v2["name"]);
    let token = first["nextPageToken"].as_str().unwrap();
    let second = api
        .ok(
            None,
            "GET",
            &format!("{db}/versions?pageSize=1&pageToken={token}"),
            None,
        )
        .await;
    assert_eq!(second["versions"][0]["name"], v1["name"]);
    assert_eq!(second["nextPageToken"], Value::Null);
    let all = api.ok(None, "GET", secrets, None).await;
    assert_eq!(all["secrets"].as_array().unwrap().len(), 2);

    // latest: the highest enabled.
    assert_eq!(
        api.ok(None, "GET", &format!("{db}/versions/latest"), None)
            .await,
        v2
    );
    assert_eq!(resolve("db-pass", "latest").unwrap(), b"correct horse");
    assert_eq!(resolve("db-pass", "").unwrap(), b"correct horse");
    assert_eq!(resolve("db-pass", "1").unwrap(), b"hunter2");
    let by_number = format!("projects/{}/secrets/db-pass", project_number("local"));
    assert_eq!(resolve(&by_number, "1").unwrap(), b"hunter2");
    assert_eq!(
        resolve("projects/local/secrets/db-pass", "2").unwrap(),
        b"correct horse"
    );

    let disabled = api
        .ok(
            None,
            "POST",
            &format!("{db}/versions/2:disable"),
            Some(json!({"etag": v2["etag"]})),
        )
        .await;
    assert_eq!(disabled["state"], "DISABLED");
    let (code, ..) = api
        .fails(
            None,
            "POST",
            &format!("{db}/versions/2:enable"),
            Some(json!({"etag": v2["etag"]})),
        )
        .await;
    assert_eq!(code, 409, "a stale etag");
    assert_eq!(
        api.ok(None, "GET", &format!("{db}/versions/latest"), None)
            .await["name"],
        v1["name"]
    );
    assert_eq!(resolve("db-pass", "latest").unwrap(), b"hunter2");
    let err = resolve("db-pass", "2").unwrap_err();
    assert!(matches!(err, SecretError::NotEnabled { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "secret 'db-pass' version '2' is DISABLED, not ENABLED"
    );
    api.ok(None, "POST", &format!("{db}/versions/2:enable"), None)
        .await;
    assert_eq!(resolve("db-pass", "latest").unwrap(), b"correct horse");

    // Destroyed: kept, without its value.
    let destroyed = api
        .ok(None, "POST", &format!("{db}/versions/1:destroy"), None)
        .await;
    assert_eq!(destroyed["state"], "DESTROYED");
    assert!(destroyed["destroyTime"].is_string());
    let (code, status, _) = api
        .fails(None, "POST", &format!("{db}/versions/1:enable"), None)
        .await;
    assert_eq!((code, status.as_str()), (400, "FAILED_PRECONDITION"));
    assert_eq!(
        resolve("db-pass", "1").unwrap_err().to_string(),
        "secret 'db-pass' version '1' is DESTROYED, not ENABLED"
    );
    let doc = api
        .store
        .get(
            SECRET_VERSION_KIND,
            "projects/local/secrets/db-pass/versions/1",
        )
        .unwrap()
        .unwrap()
        .doc;
    assert!(doc.get("homerunSealed").is_none(), "{doc}");

    // Errors name the secret and the version.
    assert_eq!(
        resolve("db-pass", "7").unwrap_err().to_string(),
        "secret 'db-pass' version '7' not found"
    );
    assert_eq!(
        resolve("nope", "latest").unwrap_err().to_string(),
        "secret 'nope' not found"
    );
    assert!(resolve("db-pass", "current")
        .unwrap_err()
        .to_string()
        .contains("db-pass"));
    api.ok(None, "POST", &format!("{db}/versions/2:disable"), None)
        .await;
    assert_eq!(
        resolve("db-pass", "latest").unwrap_err().to_string(),
        "secret 'db-pass' version 'latest' not found"
    );
    let (code, ..) = api
        .fails(None, "GET", &format!("{db}/versions/latest"), None)
        .await;
    assert_eq!(code, 404);
    let (code, ..) = api
        .fails(None, "GET", &format!("{db}/versions/9"), None)
        .await;
    assert_eq!(code, 404);
    let (code, ..) = api
        .fails(None, "GET", &format!("{db}/versions/zero"), None)
        .await;
    assert_eq!(code, 400);

    // No way to read a value back.
    for method in ["GET", "POST"] {
        let (code, _, message) = api
            .fails(None, method, &format!("{db}/versions/2:access"), None)
            .await;
        assert_eq!(code, 501);
        assert!(
            message.contains("never returns a secret's value"),
            "{message}"
        );
    }

    // No answer ever held a value, in clear, in base64 or sealed.
    let sealed = api
        .store
        .list(
            SECRET_VERSION_KIND,
            "projects/local/secrets/db-pass",
            100,
            None,
        )
        .unwrap();
    let mut needles = vec![
        "hunter2".to_string(),
        "correct horse".to_string(),
        STANDARD.encode(b"hunter2"),
        STANDARD.encode(b"correct horse"),
    ];
    for r in &sealed.records {
        if let Some(s) = r.doc.get("homerunSealed") {
            needles.push(s.as_str().unwrap().to_string());
        }
    }
    assert_eq!(needles.len(), 5, "version 2 is stored sealed");
    assert!(!needles[4].contains(&STANDARD.encode(b"correct horse")));
    for body in api.bodies.lock().unwrap().iter() {
        for needle in &needles {
            assert!(!body.contains(needle.as_str()), "{needle} in {body}");
        }
    }

    // Deleting the secret deletes its versions.
    let (code, ..) = api
        .fails(None, "DELETE", &format!("{db}?etag=%22nope%22"), None)
        .await;
    assert_eq!(code, 409);
    assert_eq!(api.ok(None, "DELETE", &db, None).await, json!({}));
    assert_eq!(api.count(SECRET_KIND), 1);
    assert_eq!(
        api.store
            .list(
                SECRET_VERSION_KIND,
                "projects/local/secrets/db-pass",
                100,
                None
            )
            .unwrap()
            .records
            .len(),
        0
    );
    assert_eq!(
        resolve("db-pass", "latest").unwrap_err().to_string(),
        "secret 'db-pass' not found"
    );
    let (code, ..) = api.fails(None, "GET", &db, None).await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn secrets_need_their_roles() {
    let api = Api::with(true, true);
    grant_project_roles(&api).await;
    let secrets = "/v1/projects/local/secrets";
    let db = format!("{secrets}/db-pass");
    // run.developer has no secret permissions; the owner has them all.
    let (code, _, message) = api
        .fails(
            Some("dev"),
            "POST",
            &format!("{secrets}?secretId=db-pass"),
            None,
        )
        .await;
    assert_eq!(code, 403);
    assert!(
        message.contains("'secretmanager.secrets.create' denied on resource 'projects/local'"),
        "{message}"
    );
    api.ok(
        Some("owner"),
        "POST",
        &format!("{secrets}?secretId=db-pass"),
        None,
    )
    .await;
    api.ok(
        Some("owner"),
        "POST",
        &format!("{db}:addVersion"),
        Some(payload(b"s3cret")),
    )
    .await;
    // The accessor reads versions' metadata, adds none.
    api.ok(Some("app"), "GET", &format!("{db}/versions"), None)
        .await;
    api.ok(Some("app"), "GET", &format!("{db}/versions/1"), None)
        .await;
    let (code, ..) = api
        .fails(
            Some("app"),
            "POST",
            &format!("{db}:addVersion"),
            Some(payload(b"x")),
        )
        .await;
    assert_eq!(code, 403);
    let (code, ..) = api
        .fails(Some("nobody"), "GET", &format!("{db}/versions/1"), None)
        .await;
    assert_eq!(code, 403);
    // A grant on the one secret.
    api.ok(
        Some("owner"),
        "POST",
        &format!("{db}:setIamPolicy"),
        Some(policy(&[("roles/secretmanager.secretAccessor", &[NOBODY])])),
    )
    .await;
    api.ok(Some("nobody"), "GET", &format!("{db}/versions/1"), None)
        .await;
    let (code, ..) = api
        .fails(
            Some("nobody"),
            "GET",
            &format!("{secrets}/other/versions/1"),
            None,
        )
        .await;
    assert_eq!(code, 403);
    let (code, ..) = api.fails(Some("dev"), "DELETE", &db, None).await;
    assert_eq!(code, 403);
    api.ok(Some("owner"), "DELETE", &db, None).await;
    assert_eq!(
        api.count(IAM_POLICY_KIND),
        1,
        "only the project's policy is left"
    );
}

/// The message of an actAs denial.
fn act_as_denied(email: &str) -> String {
    format!("Permission 'iam.serviceAccounts.actAs' denied on service account {email} (or it may not exist).")
}

fn job_body() -> Value {
    json!({"template": {"template": {"containers": [{"image": "img"}]}}})
}

#[tokio::test]
async fn deploying_needs_act_as_on_the_service_account() {
    let api = Api::with(true, false);
    // A developer of the project, who may not act as its service accounts.
    set_project_policy(&api, "local", &[("roles/run.developer", &[DEV])]).await;
    let compute = default_account("local");
    let hello = format!("{SVC}/hello");

    // Create: the template's account is the default compute account after the defaults.
    for uri in [
        format!("{SVC}?serviceId=hello"),
        format!("{SVC}?serviceId=hello&validateOnly=true"),
    ] {
        let (_, body) = api
            .call(Some("dev"), "POST", &uri, Some(service_body()))
            .await;
        let e = &body["error"];
        assert_eq!(
            (e["code"].as_i64(), e["status"].as_str()),
            (Some(403), Some("PERMISSION_DENIED")),
            "{body:#}"
        );
        assert_eq!(e["message"], act_as_denied(&compute), "{body:#}");
        assert_eq!(
            e["details"][0]["metadata"]["permission"],
            "iam.serviceAccounts.actAs"
        );
        assert_eq!(
            e["details"][0]["metadata"]["resource"],
            format!("projects/local/serviceAccounts/{compute}")
        );
    }
    let (code, _, message) = api
        .fails(
            Some("dev"),
            "POST",
            &format!("{LOC}/jobs?jobId=batch"),
            Some(job_body()),
        )
        .await;
    assert_eq!((code, message), (403, act_as_denied(&compute)));
    // PATCH with allowMissing creates: the same.
    let (code, _, message) = api
        .fails(
            Some("dev"),
            "PATCH",
            &format!("{hello}?allowMissing=true"),
            Some(service_body()),
        )
        .await;
    assert_eq!((code, message), (403, act_as_denied(&compute)));
    assert_eq!(
        api.count("service") + api.count("job") + api.count("revision"),
        0
    );

    // Updates that make no new revision or job template need no actAs; those that do,
    // need it every time (not only when the account changes).
    api.ok(
        Some("admin"),
        "POST",
        &format!("{SVC}?serviceId=hello"),
        Some(service_body()),
    )
    .await;
    api.ok(
        Some("admin"),
        "POST",
        &format!("{LOC}/jobs?jobId=batch"),
        Some(job_body()),
    )
    .await;
    api.ok(
        Some("dev"),
        "PATCH",
        &format!("{hello}?updateMask=labels"),
        Some(json!({"labels": {"team": "a"}})),
    )
    .await;
    api.ok(
        Some("dev"),
        "PATCH",
        &format!("{LOC}/jobs/batch?updateMask=labels"),
        Some(json!({"labels": {"team": "a"}})),
    )
    .await;
    let image2 = json!({"template": {"containers": [{"image": "img:2"}]}});
    let (code, _, message) = api
        .fails(Some("dev"), "PATCH", &hello, Some(image2.clone()))
        .await;
    assert_eq!((code, message), (403, act_as_denied(&compute)));
    let (code, _, message) = api
        .fails(
            Some("dev"),
            "PATCH",
            &format!("{LOC}/jobs/batch"),
            Some(json!({"template": {"template": {"containers": [{"image": "img:2"}]}}})),
        )
        .await;
    assert_eq!((code, message), (403, act_as_denied(&compute)));
    assert_eq!(api.count("revision"), 1);

    // The account's own policy grants it.
    put_account_policy(
        &api,
        "local",
        &compute,
        &[("roles/iam.serviceAccountUser", &[DEV])],
    );
    api.ok(Some("dev"), "PATCH", &hello, Some(image2)).await;
    assert_eq!(api.count("revision"), 2);
    api.ok(
        Some("dev"),
        "PATCH",
        &format!("{LOC}/jobs/batch"),
        Some(json!({"template": {"template": {"containers": [{"image": "img:2"}]}}})),
    )
    .await;
    // ... that account only.
    let app = "app@local.iam.gserviceaccount.com";
    let with_account = |email: &str| json!({"template": {"serviceAccount": email, "containers": [{"image": "img"}]}});
    let (code, _, message) = api
        .fails(
            Some("dev"),
            "POST",
            &format!("{SVC}?serviceId=app"),
            Some(with_account(app)),
        )
        .await;
    assert_eq!((code, message), (403, act_as_denied(app)));

    // The project's policy: serviceAccountUser, editor and owner grant actAs on the
    // project's accounts; run.admin does not.
    let editor = "user:editor@example.com";
    let run_admin = "user:runadmin@example.com";
    set_project_policy(
        &api,
        "local",
        &[
            ("roles/run.developer", &[DEV]),
            ("roles/iam.serviceAccountUser", &[DEV]),
            ("roles/editor", &[editor]),
            ("roles/owner", &[OWNER]),
            ("roles/run.admin", &[run_admin]),
        ],
    )
    .await;
    for (i, token) in ["dev", "owner", &format!("as:{editor}")]
        .into_iter()
        .enumerate()
    {
        api.ok(
            Some(token),
            "POST",
            &format!("{SVC}?serviceId=app{i}"),
            Some(with_account(app)),
        )
        .await;
    }
    let (code, _, message) = api
        .fails(
            Some(&format!("as:{run_admin}")),
            "POST",
            &format!("{SVC}?serviceId=nope"),
            Some(with_account(app)),
        )
        .await;
    assert_eq!((code, message), (403, act_as_denied(app)));

    // An account of another project: that project's policy counts, not this one's;
    // its email in any case.
    let other = "worker@other.iam.gserviceaccount.com";
    let (code, _, message) = api
        .fails(
            Some("dev"),
            "POST",
            &format!("{SVC}?serviceId=w"),
            Some(with_account(other)),
        )
        .await;
    assert_eq!((code, message), (403, act_as_denied(other)));
    set_project_policy(&api, "other", &[("roles/iam.serviceAccountUser", &[DEV])]).await;
    api.ok(
        Some("dev"),
        "POST",
        &format!("{SVC}?serviceId=w"),
        Some(with_account(other)),
    )
    .await;
    api.ok(
        Some("dev"),
        "POST",
        &format!("{LOC}/jobs?jobId=w"),
        Some(json!({"template": {"template": {
            "serviceAccount": "Worker@Other.IAM.gserviceaccount.com",
            "containers": [{"image": "img"}],
        }}})),
    )
    .await;

    // The default compute account of another project: found by its number among the
    // projects with a policy; of a number no project has: refused, even to an owner.
    let other_compute = default_account("other");
    api.ok(
        Some("dev"),
        "POST",
        &format!("{SVC}?serviceId=oc"),
        Some(with_account(&other_compute)),
    )
    .await;
    let stranger = format!(
        "{}-compute@developer.gserviceaccount.com",
        project_number("nowhere")
    );
    for token in ["dev", "owner"] {
        let (_, body) = api
            .call(
                Some(token),
                "POST",
                &format!("{SVC}?serviceId=s"),
                Some(with_account(&stranger)),
            )
            .await;
        assert_eq!(body["error"]["code"], 403, "{body:#}");
        assert_eq!(body["error"]["message"], act_as_denied(&stranger));
        assert_eq!(
            body["error"]["details"][0]["metadata"]["resource"],
            format!("projects/-/serviceAccounts/{stranger}")
        );
    }
    // An email that is no service account of a project: refused.
    let (code, _, message) = api
        .fails(
            Some("owner"),
            "POST",
            &format!("{SVC}?serviceId=s"),
            Some(with_account("someone@example.com")),
        )
        .await;
    assert_eq!((code, message), (403, act_as_denied("someone@example.com")));
    // The admin acts as anyone.
    api.ok(
        Some("admin"),
        "POST",
        &format!("{SVC}?serviceId=s"),
        Some(with_account(&stranger)),
    )
    .await;
    // A job's run with overrides does not change the account: no actAs.
    set_project_policy(&api, "local", &[("roles/run.developer", &[DEV])]).await;
    api.ok(
        Some("dev"),
        "POST",
        &format!("{LOC}/jobs/batch:run"),
        Some(json!({"overrides": {"taskCount": 2}})),
    )
    .await;
}

#[tokio::test]
async fn running_a_job_with_overrides_needs_its_permission() {
    let api = Api::with(true, false);
    let invoker = "user:invoker@example.com";
    let executor = "user:executor@example.com";
    let overrider = "user:overrider@example.com";
    set_project_policy(
        &api,
        "local",
        &[
            ("roles/run.invoker", &[invoker]),
            ("roles/run.jobsExecutor", &[executor]),
            ("roles/run.jobsExecutorWithOverrides", &[overrider]),
            ("roles/run.developer", &[DEV]),
            ("roles/editor", &[VIEWER]),
        ],
    )
    .await;
    api.ok(
        Some("admin"),
        "POST",
        &format!("{LOC}/jobs?jobId=batch"),
        Some(job_body()),
    )
    .await;
    let run = format!("{LOC}/jobs/batch:run");
    let overrides = json!({"overrides": {"taskCount": 2}});
    let denied = "Permission 'run.jobs.runWithOverrides' denied on resource 'projects/local/locations/local/jobs/batch' (or it may not exist).";
    for member in [invoker, executor] {
        let token = format!("as:{member}");
        // Without overrides (or with empty ones): run.jobs.run is enough.
        for body in [
            json!({}),
            json!({"overrides": {}}),
            json!({"overrides": {"containerOverrides": []}}),
        ] {
            api.ok(Some(&token), "POST", &run, Some(body)).await;
        }
        for body in [
            overrides.clone(),
            json!({"overrides": {"containerOverrides": [{"args": ["x"]}]}}),
            json!({"overrides": {"timeout": "5s"}, "validateOnly": true}),
        ] {
            let (_, e) = api.call(Some(&token), "POST", &run, Some(body)).await;
            assert_eq!(e["error"]["code"], 403, "{member}: {e:#}");
            assert_eq!(e["error"]["status"], "PERMISSION_DENIED");
            assert_eq!(e["error"]["message"], denied, "{member}");
        }
    }
    // Before the job is read: the same for a job that does not exist.
    let (_, e) = api
        .call(
            Some(&format!("as:{invoker}")),
            "POST",
            &format!("{LOC}/jobs/nope:run"),
            Some(overrides.clone()),
        )
        .await;
    assert_eq!(e["error"]["code"], 403, "{e:#}");
    let executions = api.count("execution");
    assert_eq!(executions, 6);
    for token in [
        format!("as:{overrider}"),
        "dev".into(),
        "viewer".into(),
        "admin".into(),
    ] {
        api.ok(Some(&token), "POST", &run, Some(overrides.clone()))
            .await;
    }
    assert_eq!(api.count("execution"), executions + 4);
    // On the job's own policy.
    api.ok(
        Some("admin"),
        "POST",
        &format!("{LOC}/jobs/batch:setIamPolicy"),
        Some(policy(&[(
            "roles/run.jobsExecutorWithOverrides",
            &[invoker],
        )])),
    )
    .await;
    api.ok(
        Some(&format!("as:{invoker}")),
        "POST",
        &run,
        Some(overrides),
    )
    .await;
}

#[tokio::test]
async fn making_a_service_public_needs_set_iam_policy() {
    let api = Api::with(true, false);
    let run_admin = "user:runadmin@example.com";
    set_project_policy(
        &api,
        "local",
        &[
            ("roles/run.developer", &[DEV]),
            ("roles/iam.serviceAccountUser", &[DEV, run_admin]),
            ("roles/run.admin", &[run_admin]),
        ],
    )
    .await;
    let public =
        json!({"invokerIamDisabled": true, "template": {"containers": [{"image": "img"}]}});
    let denied = |s: &str| {
        format!("Permission 'run.services.setIamPolicy' denied on resource 'projects/local/locations/local/services/{s}' (or it may not exist).")
    };
    for uri in [
        format!("{SVC}?serviceId=pub"),
        format!("{SVC}?serviceId=pub&validateOnly=true"),
        format!("{SVC}/pub?allowMissing=true"),
    ] {
        let method = if uri.contains("allowMissing") {
            "PATCH"
        } else {
            "POST"
        };
        let (code, status, message) = api
            .fails(Some("dev"), method, &uri, Some(public.clone()))
            .await;
        assert_eq!((code, status.as_str()), (403, "PERMISSION_DENIED"), "{uri}");
        assert_eq!(message, denied("pub"), "{uri}");
    }
    assert_eq!(api.count("service"), 0);
    // Private: fine, explicitly or not.
    api.ok(
        Some("dev"),
        "POST",
        &format!("{SVC}?serviceId=pub"),
        Some(json!({"invokerIamDisabled": false, "template": {"containers": [{"image": "img"}]}})),
    )
    .await;
    let pub_uri = format!("{SVC}/pub");
    // Turning it on: denied, with or without a mask, also as a check only.
    for uri in [
        pub_uri.clone(),
        format!("{pub_uri}?updateMask=invokerIamDisabled"),
        format!("{pub_uri}?validateOnly=true"),
    ] {
        let (code, _, message) = api
            .fails(Some("dev"), "PATCH", &uri, Some(public.clone()))
            .await;
        assert_eq!((code, message), (403, denied("pub")), "{uri}");
    }
    // A mask that leaves it out changes nothing of it.
    api.ok(
        Some("dev"),
        "PATCH",
        &format!("{pub_uri}?updateMask=labels"),
        Some(json!({"invokerIamDisabled": true, "labels": {"a": "b"}})),
    )
    .await;
    // run.admin holds setIamPolicy.
    let admin_token = format!("as:{run_admin}");
    api.ok(Some(&admin_token), "PATCH", &pub_uri, Some(public.clone()))
        .await;
    let got = api.ok(Some("dev"), "GET", &pub_uri, None).await;
    assert_eq!(got["invokerIamDisabled"], true);
    // The developer may change the public service's other fields, not turn it off.
    api.ok(
        Some("dev"),
        "PATCH",
        &pub_uri,
        Some(json!({"invokerIamDisabled": true, "template": {"containers": [{"image": "img:2"}]}})),
    )
    .await;
    let (code, _, message) = api
        .fails(Some("dev"), "PATCH", &pub_uri, Some(service_body()))
        .await;
    assert_eq!((code, message), (403, denied("pub")));
    // A role on the service's own policy counts.
    api.ok(
        Some("admin"),
        "POST",
        &format!("{pub_uri}:setIamPolicy"),
        Some(policy(&[("roles/run.admin", &[DEV])])),
    )
    .await;
    api.ok(Some("dev"), "PATCH", &pub_uri, Some(service_body()))
        .await;
    assert_eq!(
        api.ok(Some("dev"), "GET", &pub_uri, None).await["invokerIamDisabled"],
        Value::Null
    );
    api.ok(
        Some(&admin_token),
        "POST",
        &format!("{SVC}?serviceId=open"),
        Some(public),
    )
    .await;
}

#[tokio::test]
async fn member_emails_compare_without_case() {
    let api = Api::with(true, false);
    let bound = [
        "user:Viewer@Example.COM",
        "serviceAccount:Dev@Local.iam.gserviceaccount.com",
    ];
    set_project_policy(
        &api,
        "local",
        &[
            ("roles/run.viewer", &bound[..1]),
            ("roles/run.developer", &bound[1..]),
            ("roles/iam.serviceAccountUser", &bound[1..]),
        ],
    )
    .await;
    // Stored as given.
    let got = api
        .ok(
            Some("admin"),
            "POST",
            "/v1/projects/local:getIamPolicy",
            None,
        )
        .await;
    assert_eq!(got["bindings"][0]["members"], json!([bound[0]]), "{got:#}");
    assert_eq!(got["bindings"][1]["members"], json!([bound[1]]), "{got:#}");
    for member in [
        "user:viewer@example.com",
        "user:VIEWER@EXAMPLE.COM",
        "user:Viewer@Example.COM",
    ] {
        api.ok(Some(&format!("as:{member}")), "GET", SVC, None)
            .await;
    }
    // The kind still counts, and so does every other letter.
    for member in [
        "serviceAccount:viewer@example.com",
        "user:viewer@example.co",
        "user:viewers@example.com",
    ] {
        let (code, ..) = api
            .fails(Some(&format!("as:{member}")), "GET", SVC, None)
            .await;
        assert_eq!(code, 403, "{member}");
    }
    // dev's token is all lowercase: the developer deploys (acting as the default account).
    api.ok(
        Some("dev"),
        "POST",
        &format!("{SVC}?serviceId=hello"),
        Some(service_body()),
    )
    .await;
    let tested = api
        .ok(
            Some("as:user:VIEWER@example.com"),
            "POST",
            &format!("{SVC}/hello:testIamPermissions"),
            Some(json!({"permissions": ["run.services.get", "run.services.update"]})),
        )
        .await;
    assert_eq!(tested, json!({"permissions": ["run.services.get"]}));
    // A service's invokers: one member however it is spelled.
    api.ok(
        Some("admin"),
        "POST",
        &format!("{SVC}/hello:setIamPolicy"),
        Some(policy(&[(
            "roles/run.invoker",
            &["user:A@b.co", "user:a@B.co"],
        )])),
    )
    .await;
    let service = api::iam::load_policy(
        api.store.as_ref(),
        "projects/local/locations/local/services/hello",
    )
    .unwrap();
    assert_eq!(
        service.bindings[0].members,
        ["user:A@b.co"],
        "merged on setIamPolicy"
    );
    let project = api::iam::load_policy(api.store.as_ref(), "projects/local").unwrap();
    let mut invokers = service.clone();
    invokers.bindings[0].members.push("user:a@b.CO".into());
    assert_eq!(
        api::iam::members_granted(&[&invokers, &project], "run.routes.invoke"),
        std::collections::BTreeSet::from([
            "serviceAccount:Dev@Local.iam.gserviceaccount.com".to_string(),
            "user:A@b.co".to_string(),
        ])
    );
}
