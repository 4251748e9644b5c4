//! Where homerun's identity provider meets the parts that check credentials: the Admin API
//! ([`api::auth::Authenticator`]), the router ([`router::Verifier`]) and the store of
//! secrets ([`api::Sealer`]) all go through one [`identity::Authority`]. Beside them, the
//! IAM Credentials API's two token methods, so an operator (the admin token) or a member
//! holding `roles/iam.serviceAccountTokenCreator` gets a service account's tokens outside
//! any instance:
//!
//! | method | path |
//! | --- | --- |
//! | `POST` | `/v1/projects/-/serviceAccounts/{email}:generateIdToken` (`{"audience", "includeEmail"}` → `{"token"}`) |
//! | `POST` | `/v1/projects/-/serviceAccounts/{email}:generateAccessToken` (`{"scope"}` → `{"accessToken", "expireTime"}`) |

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use identity::{Authority, Verified};
use serde_json::{json, Value};

/// Tokens as the API and the router take them.
#[derive(Clone)]
pub struct Tokens(pub Arc<Authority>);

impl api::auth::Authenticator for Tokens {
    fn authenticate(&self, bearer: &str) -> Result<api::auth::Caller, api::auth::AuthFailure> {
        match self.0.verify(bearer, identity::now()) {
            Ok(Verified::Admin) => Ok(api::auth::Caller::Admin),
            // Google's APIs take access tokens; an ID token is for the service it names
            // (and reaches that service's code, which must not replay it here).
            Ok(Verified::ServiceAccount {
                audience: Some(_), ..
            }) => Err(api::auth::AuthFailure::new(ID_TOKEN_REFUSED)),
            Ok(Verified::ServiceAccount { email, .. }) => {
                Ok(api::auth::Caller::Member(format!("serviceAccount:{email}")))
            }
            Err(e) => Err(api::auth::AuthFailure::new(e.to_string())),
        }
    }
}

impl router::Verifier for Tokens {
    fn verify(&self, bearer: &str) -> Result<router::Credential, String> {
        match self.0.verify(bearer, identity::now()) {
            // The admin token administers the platform; it is not an identity that
            // invokes services (and would reach the container's headers if it did).
            Ok(Verified::Admin) => Err("the admin token does not invoke services".into()),
            // Cloud Run admits invokers by ID token only; an access token would also be
            // forwarded to the container, which could replay it against the API.
            Ok(Verified::ServiceAccount { audience: None, .. }) => {
                Err("an access token does not invoke services: send an ID token".into())
            }
            Ok(Verified::ServiceAccount { email, audience }) => Ok(router::Credential {
                member: format!("serviceAccount:{email}"),
                audience,
            }),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Secrets sealed with the data directory's key.
pub struct Seal(pub Arc<Authority>);

impl api::Sealer for Seal {
    fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        // Sealing fails only if the system's random source does, which nothing survives.
        self.0
            .sealing()
            .seal(plaintext, aad)
            .expect("sealing a secret (the system random source failed)")
    }

    fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, String> {
        self.0
            .sealing()
            .open(sealed, aad)
            .map_err(|e| e.to_string())
    }
}

#[derive(Clone)]
struct CredentialsState {
    authority: Arc<Authority>,
    store: Arc<dyn store::Store>,
    default_project: String,
}

/// The IAM Credentials routes (see the module documentation).
pub fn credentials_router(
    authority: Arc<Authority>,
    store: Arc<dyn store::Store>,
    default_project: String,
) -> Router {
    Router::new()
        .route(
            "/v1/projects/{project}/serviceAccounts/{method}",
            post(generate),
        )
        .with_state(CredentialsState {
            authority,
            store,
            default_project,
        })
}

const ID_TOKEN_REFUSED: &str =
    "an ID token does not authenticate to this API: send an OAuth 2 access token";

fn error(status: StatusCode, rpc: &str, message: String) -> Response {
    let body = json!({"error": {"code": status.as_u16(), "message": message, "status": rpc}});
    (status, Json(body)).into_response()
}

/// The caller of a request to homerun's own routes (the admin, or a service account by
/// its access token), or the 401 to answer.
pub fn caller(authority: &Authority, headers: &HeaderMap) -> Result<Verified, Box<Response>> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let unauthenticated =
        |message: String| Box::new(error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message));
    let Some(bearer) = bearer else {
        return Err(unauthenticated(
            "Request is missing required authentication credential. Expected OAuth 2 access token."
                .into(),
        ));
    };
    match authority.verify(bearer.trim(), identity::now()) {
        Ok(Verified::ServiceAccount {
            audience: Some(_), ..
        }) => Err(unauthenticated(format!(
            "Request had invalid authentication credentials: {ID_TOKEN_REFUSED}"
        ))),
        Ok(v) => Ok(v),
        Err(e) => Err(unauthenticated(format!(
            "Request had invalid authentication credentials: {e}"
        ))),
    }
}

/// The project a service account belongs to: `x@P.iam.gserviceaccount.com` is P's; the
/// default compute account `N-compute@developer.gserviceaccount.com` is the project whose
/// number is N, looked for among the projects homerun has records of. None: unknown.
fn service_account_project(
    store: &dyn store::Store,
    default_project: &str,
    email: &str,
) -> Option<String> {
    let (_, domain) = email.split_once('@')?;
    if let Some(project) = domain.strip_suffix(".iam.gserviceaccount.com") {
        return Some(project.to_string());
    }
    let number: u64 = email
        .strip_suffix("-compute@developer.gserviceaccount.com")?
        .parse()
        .ok()?;
    let matches = |p: &str| api::naming::project_number(p) == number;
    if matches(default_project) {
        return Some(default_project.to_string());
    }
    for kind in [
        api::http::SERVICE_KIND,
        api::http::JOB_KIND,
        api::iam::IAM_POLICY_KIND,
    ] {
        let mut token: Option<String> = None;
        loop {
            let page = store.list(kind, "", 0, token.as_deref()).ok()?;
            for r in &page.records {
                if let Some(p) = r
                    .name
                    .strip_prefix("projects/")
                    .and_then(|n| n.split('/').next())
                {
                    if matches(p) {
                        return Some(p.to_string());
                    }
                }
            }
            match page.next_page_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
    }
    None
}

/// Whether `caller` holds `permission` on `project` (the project's IAM policy).
pub fn project_allows(
    store: &dyn store::Store,
    caller: &Verified,
    project: &str,
    permission: &str,
) -> bool {
    match caller {
        Verified::Admin => true,
        Verified::ServiceAccount { email, .. } => {
            let policy =
                api::iam::load_policy(store, &format!("projects/{project}")).unwrap_or_default();
            api::iam::policy_allows(&[&policy], &format!("serviceAccount:{email}"), permission)
        }
    }
}

/// The logs API's rule: the caller holds `run.executions.get` on the project.
pub fn logs_authorizer(
    authority: Arc<Authority>,
    store: Arc<dyn store::Store>,
) -> crate::logs_api::Authorize {
    Arc::new(move |headers: &HeaderMap, project: &str| {
        let caller = caller(&authority, headers)?;
        if project_allows(&*store, &caller, project, "run.executions.get") {
            Ok(())
        } else {
            Err(Box::new(error(
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                format!("Permission 'run.executions.get' denied on resource 'projects/{project}' (or it may not exist)."),
            )))
        }
    })
}

async fn generate(
    State(s): State<CredentialsState>,
    Path((project, method)): Path<(String, String)>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    let caller = match caller(&s.authority, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if project != "-" {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "The project of a service account's name must be '-'.".into(),
        );
    }
    let Some((email, verb)) = method.rsplit_once(':') else {
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("No method {method}."),
        );
    };
    let permission = match verb {
        "generateIdToken" => "iam.serviceAccounts.getOpenIdToken",
        "generateAccessToken" => "iam.serviceAccounts.getAccessToken",
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("No method {verb}."),
            )
        }
    };
    if !email.contains('@') {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            format!("'{email}' is not a service account's email."),
        );
    }
    let sa_project = service_account_project(&*s.store, &s.default_project, email);
    let allowed = match (&caller, &sa_project) {
        (Verified::Admin, _) => true,
        (_, Some(project)) => project_allows(&*s.store, &caller, project, permission),
        // A member may not mint tokens of an account homerun cannot place in a project.
        (_, None) => false,
    };
    if !allowed {
        return error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            format!("Permission '{permission}' denied on resource (or it may not exist)."),
        );
    }
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let now = identity::now();
    if verb == "generateIdToken" {
        let audience = body["audience"].as_str().unwrap_or_default();
        if audience.is_empty() {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "audience is required.".into(),
            );
        }
        return match s.authority.id_token(email, audience, now) {
            Ok(token) => Json(json!({ "token": token })).into_response(),
            Err(e @ identity::IdentityError::Invalid(_)) => {
                error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", e.to_string())
            }
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string()),
        };
    }
    let t = s.authority.access_token(email, now);
    let expire = api::Timestamp::from_unix(t.expires_at as i64);
    Json(json!({ "accessToken": t.token, "expireTime": expire })).into_response()
}
