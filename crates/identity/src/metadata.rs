//! The metadata server, as Cloud Run's answers its instances at `metadata.google.internal`:
//! project, region, instance id, the service account's email, access tokens and ID tokens,
//! under `/computeMetadata/v1/`, with GCE's rules:
//!
//! - every answer carries `Metadata-Flavor: Google`; a request under `/computeMetadata/`
//!   without that header, or with `X-Forwarded-For` (it came through a proxy), gets 403;
//! - directories end with `/` and list their entries one per line (subdirectories with a
//!   trailing `/`); a directory asked without the slash is redirected (301) to it;
//! - `?recursive=true` answers a directory as JSON, its keys in lowerCamelCase as GCE
//!   writes them; `?alt=json|text` chooses the encoding.
//!
//! The caller is known by its source address alone: the [`Directory`] maps it to the
//! instance that holds it and that instance to its identity, so an instance gets only its
//! own identity, and anything that is not a live instance (the host included) gets 403.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Map, Value};

use crate::authority::{now, Authority};

/// The scope every access token has, as a Cloud Run instance's default.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Who an instance is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceIdentity {
    pub project_id: String,
    pub project_number: u64,
    /// The location (`--region`).
    pub region: String,
    /// The service account's email.
    pub service_account: String,
    /// `instance/id`: unique per instance, a long hex string as Cloud Run's.
    pub instance_id: String,
}

type Resolver = dyn Fn(IpAddr) -> Option<String> + Send + Sync;

/// Instances' identities by instance id, and which instance holds an address.
pub struct Directory {
    identities: RwLock<HashMap<String, Arc<InstanceIdentity>>>,
    /// Source address → instance id (the runtime's address book).
    resolve: Box<Resolver>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory").finish_non_exhaustive()
    }
}

impl Directory {
    pub fn new(resolve: impl Fn(IpAddr) -> Option<String> + Send + Sync + 'static) -> Directory {
        Directory {
            identities: RwLock::new(HashMap::new()),
            resolve: Box::new(resolve),
        }
    }

    /// Registers an instance before it starts, so it is known from its first request.
    /// An id already registered is refused: two instances must never share an identity
    /// entry (the caller picks another id or fails the start).
    pub fn register(
        &self,
        instance: &str,
        identity: InstanceIdentity,
    ) -> Result<Arc<InstanceIdentity>, String> {
        use std::collections::hash_map::Entry;
        let mut map = self.identities.write().unwrap_or_else(|e| e.into_inner());
        match map.entry(instance.to_string()) {
            Entry::Occupied(_) => Err(format!(
                "instance id {instance} is already registered with the metadata server"
            )),
            Entry::Vacant(v) => Ok(v.insert(Arc::new(identity)).clone()),
        }
    }

    /// Removes `instance`'s entry if it is still `registered` (not another's since).
    pub fn unregister(&self, instance: &str, registered: &Arc<InstanceIdentity>) {
        let mut map = self.identities.write().unwrap_or_else(|e| e.into_inner());
        if map
            .get(instance)
            .is_some_and(|e| Arc::ptr_eq(e, registered))
        {
            map.remove(instance);
        }
    }

    /// The identity of whoever sends from `ip`.
    pub fn caller(&self, ip: IpAddr) -> Option<Arc<InstanceIdentity>> {
        let instance = (self.resolve)(ip)?;
        self.identities
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&instance)
            .cloned()
    }

    /// Whether any instance holds `ip`.
    pub fn is_instance(&self, ip: IpAddr) -> bool {
        self.caller(ip).is_some()
    }
}

#[derive(Clone)]
struct Metadata {
    authority: Arc<Authority>,
    directory: Arc<Directory>,
}

/// The metadata server's routes; serve them with `into_make_service_with_connect_info`.
pub fn router(authority: Arc<Authority>, directory: Arc<Directory>) -> Router {
    Router::new().fallback(answer).with_state(Metadata {
        authority,
        directory,
    })
}

/// Serves the metadata server on `listener` (homerun's bridge gateway, port 80) until
/// `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    authority: Arc<Authority>,
    directory: Arc<Directory>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(authority, directory).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

const TEXT: &str = "application/text";
const JSON: &str = "application/json";

fn reply(status: StatusCode, content_type: &str, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert("metadata-flavor", HeaderValue::from_static("Google"));
    h.insert(
        header::SERVER,
        HeaderValue::from_static("Metadata Server for Serverless"),
    );
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    r
}

fn forbidden(why: &str) -> Response {
    reply(
        StatusCode::FORBIDDEN,
        "text/html; charset=UTF-8",
        format!("{why}\n"),
    )
}

fn not_found() -> Response {
    reply(
        StatusCode::NOT_FOUND,
        "text/html; charset=UTF-8",
        "Not Found\n",
    )
}

fn bad_request(why: &str) -> Response {
    reply(
        StatusCode::BAD_REQUEST,
        "text/html; charset=UTF-8",
        format!("{why}\n"),
    )
}

async fn answer(
    State(m): State<Metadata>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let Some(caller) = m.directory.caller(peer.ip()) else {
        return forbidden(&format!(
            "homerun's metadata server answers homerun's instances only; {} is not one.",
            peer.ip()
        ));
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "Method Not Allowed\n");
    }
    let path = req.uri().path().to_string();
    if path == "/" {
        return reply(StatusCode::OK, TEXT, "computeMetadata/\n");
    }
    let Some(rest) = path.strip_prefix("/computeMetadata/") else {
        return not_found();
    };
    if req.headers().contains_key("x-forwarded-for") {
        return forbidden(
            "Your client does not have permission to get URL from this server. \
             Request had X-Forwarded-For header and was rejected.",
        );
    }
    let flavor_ok = req
        .headers()
        .get("metadata-flavor")
        .is_some_and(|v| v.as_bytes() == b"Google")
        || req
            .headers()
            .get("x-google-metadata-request")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
    if !flavor_ok {
        return forbidden(
            "Your client does not have permission to get URL from this server. \
             Missing Metadata-Flavor:Google header.",
        );
    }
    if rest.is_empty() {
        return reply(StatusCode::OK, TEXT, "v1/\n");
    }
    let Some(rest) = rest
        .strip_prefix("v1/")
        .or(if rest == "v1" { Some("") } else { None })
    else {
        return not_found();
    };
    // Form-decoded, as GCE reads its query (audiences are percent-encoded URLs).
    let Ok(Query(q)) = Query::<HashMap<String, String>>::try_from_uri(req.uri()) else {
        return bad_request("the query string is malformed");
    };
    let is_dir = rest.is_empty() || rest.ends_with('/');
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();

    // Tokens are made on request, not part of the tree.
    if let [.., "service-accounts", account, leaf @ ("token" | "identity")] = segments.as_slice() {
        if !is_dir && segments.len() == 4 && segments[0] == "instance" {
            if *account != "default" && *account != caller.service_account {
                return not_found();
            }
            return token(&m.authority, &caller, leaf, &q);
        }
    }

    let tree = tree(&caller);
    let mut node = &tree;
    for s in &segments {
        match node.get(*s) {
            Some(n) => node = n,
            None => return not_found(),
        }
    }
    let alt = q.get("alt").map(String::as_str);
    let recursive = q.get("recursive").is_some_and(|v| v == "true" || v == "1");
    match (node, is_dir) {
        (Value::Object(_), false) => {
            let mut r = reply(
                StatusCode::MOVED_PERMANENTLY,
                "text/html; charset=UTF-8",
                "",
            );
            if let Ok(v) = HeaderValue::from_str(&format!("{path}/")) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        (Value::Object(_), true) if recursive => {
            let json = camel_case(node);
            if alt == Some("text") {
                let mut lines = Vec::new();
                flatten(&json, "", &mut lines);
                reply(StatusCode::OK, TEXT, lines.join(""))
            } else {
                reply(StatusCode::OK, JSON, json.to_string())
            }
        }
        (Value::Object(map), true) => {
            let names: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    if v.is_object() {
                        format!("{k}/")
                    } else {
                        k.clone()
                    }
                })
                .collect();
            if alt == Some("json") {
                reply(StatusCode::OK, JSON, json!(names).to_string())
            } else {
                reply(
                    StatusCode::OK,
                    TEXT,
                    names.iter().map(|n| format!("{n}\n")).collect::<String>(),
                )
            }
        }
        (_, true) => not_found(),
        (leaf, false) => {
            if alt == Some("json") {
                reply(StatusCode::OK, JSON, leaf.to_string())
            } else {
                reply(StatusCode::OK, TEXT, text(leaf))
            }
        }
    }
}

fn token(
    authority: &Authority,
    caller: &InstanceIdentity,
    leaf: &str,
    q: &HashMap<String, String>,
) -> Response {
    let now = now();
    if leaf == "token" {
        let t = authority.access_token(&caller.service_account, now);
        let body = json!({
            "access_token": t.token,
            "expires_in": t.expires_in,
            "token_type": "Bearer",
        });
        return reply(StatusCode::OK, JSON, body.to_string());
    }
    let audience = q.get("audience").map(String::as_str).unwrap_or_default();
    if audience.is_empty() {
        return bad_request("non-empty audience parameter required");
    }
    if audience.len() > crate::MAX_AUDIENCE {
        return bad_request(&format!(
            "the audience is longer than {} bytes",
            crate::MAX_AUDIENCE
        ));
    }
    match authority.id_token(&caller.service_account, audience, now) {
        Ok(t) => reply(StatusCode::OK, "text/html; charset=utf-8", t),
        Err(e) => {
            tracing::error!(error = %e, "signing an ID token");
            reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                TEXT,
                "Internal Server Error\n",
            )
        }
    }
}

/// An instance's metadata; `null` marks entries answered on request (tokens).
fn tree(c: &InstanceIdentity) -> Value {
    let account = json!({
        "aliases": ["default"],
        "email": c.service_account,
        "identity": null,
        "scopes": [CLOUD_PLATFORM_SCOPE],
        "token": null,
    });
    let mut accounts = Map::new();
    accounts.insert("default".into(), account.clone());
    accounts.insert(c.service_account.clone(), account);
    json!({
        "instance": {
            "id": c.instance_id,
            "region": format!("projects/{}/regions/{}", c.project_number, c.region),
            "service-accounts": accounts,
            "zone": format!("projects/{}/zones/{}-1", c.project_number, c.region),
        },
        "project": {
            "numeric-project-id": c.project_number,
            "project-id": c.project_id,
        },
    })
}

/// Recursive answers: GCE's lowerCamelCase keys (`project-id` → `projectId`) except
/// service accounts' emails; request-time entries left out.
fn camel_case(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| {
                    let key = if k.contains('@') {
                        k.clone()
                    } else {
                        let mut out = String::new();
                        let mut upper = false;
                        for ch in k.chars() {
                            if ch == '-' {
                                upper = true;
                            } else if upper {
                                out.extend(ch.to_uppercase());
                                upper = false;
                            } else {
                                out.push(ch);
                            }
                        }
                        out
                    };
                    (key, camel_case(v))
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(|i| format!("{}\n", text(i))).collect(),
        other => other.to_string(),
    }
}

fn flatten(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(v, &format!("{prefix}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten(item, &format!("{prefix}/{i}"), out);
            }
        }
        leaf => out.push(format!("{prefix} {}\n", text(leaf))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Verified;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    const INSTANCE_IP: &str = "10.1.2.3";

    fn setup() -> (Router, Arc<Authority>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let authority = Arc::new(Authority::open(dir.path(), "http://issuer.test").unwrap());
        let directory = Arc::new(Directory::new(|ip| {
            (ip.to_string() == INSTANCE_IP).then(|| "inst-1".to_string())
        }));
        let registered = directory.register(
            "inst-1",
            InstanceIdentity {
                project_id: "proj".into(),
                project_number: 123456789012,
                region: "local".into(),
                service_account: "sa-1@proj.iam.gserviceaccount.com".into(),
                instance_id: "00ab".into(),
            },
        );
        assert!(registered.is_ok());
        (router(authority.clone(), directory), authority, dir)
    }

    async fn get(
        app: &Router,
        from: &str,
        uri: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let mut req = Request::get(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = req.body(Body::empty()).unwrap();
        let addr: SocketAddr = format!("{from}:40000").parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(addr));
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    const FLAVOR: &[(&str, &str)] = &[("Metadata-Flavor", "Google")];

    #[tokio::test]
    async fn answers_an_instance_its_own_identity() {
        let (app, _, _dir) = setup();
        let v1 = "/computeMetadata/v1";
        for (path, want) in [
            ("project/project-id", "proj"),
            ("project/numeric-project-id", "123456789012"),
            ("instance/region", "projects/123456789012/regions/local"),
            ("instance/zone", "projects/123456789012/zones/local-1"),
            ("instance/id", "00ab"),
            (
                "instance/service-accounts/default/email",
                "sa-1@proj.iam.gserviceaccount.com",
            ),
            (
                "instance/service-accounts/sa-1@proj.iam.gserviceaccount.com/email",
                "sa-1@proj.iam.gserviceaccount.com",
            ),
            ("instance/service-accounts/default/aliases", "default\n"),
            (
                "instance/service-accounts/default/scopes",
                "https://www.googleapis.com/auth/cloud-platform\n",
            ),
            (
                "instance/service-accounts/",
                "default/\nsa-1@proj.iam.gserviceaccount.com/\n",
            ),
            (
                "instance/service-accounts/default/",
                "aliases\nemail\nidentity\nscopes\ntoken\n",
            ),
            ("project/", "numeric-project-id\nproject-id\n"),
        ] {
            let (status, headers, body) =
                get(&app, INSTANCE_IP, &format!("{v1}/{path}"), FLAVOR).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            assert_eq!(body, want, "{path}");
            assert_eq!(headers["metadata-flavor"], "Google");
        }
        let (status, _, body) = get(
            &app,
            INSTANCE_IP,
            &format!("{v1}/project/project-id?alt=json"),
            FLAVOR,
        )
        .await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "\"proj\""));
        let (status, headers, _) = get(&app, INSTANCE_IP, &format!("{v1}/project"), FLAVOR).await;
        assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
        assert_eq!(headers["location"], "/computeMetadata/v1/project/");
        let (status, headers, body) =
            get(&app, INSTANCE_IP, &format!("{v1}/?recursive=true"), FLAVOR).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/json");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["project"]["projectId"], "proj");
        assert_eq!(v["project"]["numericProjectId"], 123456789012u64);
        assert_eq!(
            v["instance"]["serviceAccounts"]["default"]["email"],
            "sa-1@proj.iam.gserviceaccount.com"
        );
        assert!(v["instance"]["serviceAccounts"]["default"]
            .get("token")
            .is_none());
        let (_, _, body) = get(
            &app,
            INSTANCE_IP,
            &format!("{v1}/project/?recursive=true&alt=text"),
            FLAVOR,
        )
        .await;
        assert_eq!(body, "/numericProjectId 123456789012\n/projectId proj\n");
        for missing in [
            "project/nope",
            "instance/service-accounts/other@x/email",
            "instance/service-accounts/other@x/token",
        ] {
            let (status, _, _) = get(&app, INSTANCE_IP, &format!("{v1}/{missing}"), FLAVOR).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
        }
        // google-auth's ping: the root, with the header, answers with the flavor header.
        let (status, headers, _) = get(&app, INSTANCE_IP, "/", FLAVOR).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["metadata-flavor"], "Google");
    }

    #[tokio::test]
    async fn issues_tokens_that_verify() {
        let (app, authority, _dir) = setup();
        let v1 = "/computeMetadata/v1/instance/service-accounts/default";
        let (status, headers, body) = get(&app, INSTANCE_IP, &format!("{v1}/token"), FLAVOR).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/json");
        let t: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(t["token_type"], "Bearer");
        assert_eq!(t["expires_in"], 3599);
        assert_eq!(
            authority
                .verify(t["access_token"].as_str().unwrap(), now())
                .unwrap(),
            Verified::ServiceAccount {
                email: "sa-1@proj.iam.gserviceaccount.com".into(),
                audience: None
            }
        );
        let (status, _, body) = get(&app, INSTANCE_IP, &format!("{v1}/identity"), FLAVOR).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("audience"), "{body}");
        let (status, _, token) = get(
            &app,
            INSTANCE_IP,
            &format!("{v1}/identity?audience=http%3A%2F%2Fb.localhost%3A8080&format=full"),
            FLAVOR,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            authority.verify(&token, now()).unwrap(),
            Verified::ServiceAccount {
                email: "sa-1@proj.iam.gserviceaccount.com".into(),
                audience: Some("http://b.localhost:8080".into())
            }
        );
    }

    #[tokio::test]
    async fn refuses_strangers_proxies_and_requests_without_the_flavor() {
        let (app, _, _dir) = setup();
        let path = "/computeMetadata/v1/project/project-id";
        let (status, headers, body) = get(&app, "10.1.2.4", path, FLAVOR).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(headers["metadata-flavor"], "Google");
        assert!(body.contains("10.1.2.4"), "{body}");
        let (status, _, _) = get(&app, "10.1.2.4", "/", FLAVOR).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _, body) = get(&app, INSTANCE_IP, path, &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.contains("Metadata-Flavor"), "{body}");
        let (status, _, _) = get(&app, INSTANCE_IP, path, &[("Metadata-Flavor", "google")]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _, body) = get(
            &app,
            INSTANCE_IP,
            path,
            &[
                ("Metadata-Flavor", "Google"),
                ("X-Forwarded-For", "1.2.3.4"),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.contains("X-Forwarded-For"), "{body}");
    }

    #[test]
    fn an_instance_id_registers_once_and_only_its_holder_unregisters_it() {
        let d = Directory::new(|_| Some("i".to_string()));
        let id = |sa: &str| InstanceIdentity {
            project_id: "p".into(),
            project_number: 1,
            region: "r".into(),
            service_account: sa.into(),
            instance_id: "x".into(),
        };
        let first = d.register("i", id("a@p")).unwrap();
        assert!(d.register("i", id("b@p")).is_err());
        assert_eq!(
            d.caller([10, 0, 0, 2].into()).unwrap().service_account,
            "a@p"
        );
        d.unregister("i", &first);
        let second = d.register("i", id("b@p")).unwrap();
        // A stale holder's unregister leaves the new entry.
        d.unregister("i", &first);
        assert_eq!(
            d.caller([10, 0, 0, 2].into()).unwrap().service_account,
            "b@p"
        );
        d.unregister("i", &second);
        assert!(d.caller([10, 0, 0, 2].into()).is_none());
    }

    #[tokio::test]
    async fn queries_are_form_decoded() {
        let (app, authority, _dir) = setup();
        let (status, _, token) = get(
            &app,
            INSTANCE_IP,
            "/computeMetadata/v1/instance/service-accounts/default/identity?audience=a+b%2Fc%3Fd",
            FLAVOR,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            authority.verify(&token, now()).unwrap(),
            Verified::ServiceAccount {
                email: "sa-1@proj.iam.gserviceaccount.com".into(),
                audience: Some("a b/c?d".into())
            }
        );
    }
}
