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

use api::auth::Caller;
use api::Status;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
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

/// The caller of a request to homerun's own routes, by the Admin API's rules (the admin,
/// or a service account by its access token), or the 401 to answer.
pub fn caller(authority: &Arc<Authority>, headers: &HeaderMap) -> Result<Caller, Box<Response>> {
    api::http::auth::authenticate_headers(&Tokens(authority.clone()), headers)
}

/// Whether `caller` holds `permission` on `project` (the project's IAM policy).
fn project_allows(
    store: &dyn store::Store,
    caller: &Caller,
    project: &str,
    permission: &str,
) -> bool {
    match caller {
        Caller::Admin => true,
        Caller::Member(_) => {
            let policy =
                api::iam::load_policy(store, &format!("projects/{project}")).unwrap_or_default();
            caller.may(&[&policy], permission)
        }
    }
}

fn refuse(status: Status) -> Response {
    api::http::auth::refusal(&status)
}

/// The logs API's rule: the caller holds `run.executions.get` on the project.
pub fn logs_authorizer(
    authority: Arc<Authority>,
    store: Arc<dyn store::Store>,
) -> crate::logs_api::Authorize {
    Arc::new(move |headers: &HeaderMap, project: &str| {
        let caller = caller(&authority, headers)?;
        let permission = "run.executions.get";
        if project_allows(&*store, &caller, project, permission) {
            Ok(())
        } else {
            Err(Box::new(refuse(api::http::auth::permission_denied(
                permission,
                &format!("projects/{project}"),
            ))))
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
        return refuse(Status::invalid_argument(
            "The project of a service account's name must be '-'.",
        ));
    }
    let Some((email, verb)) = method.rsplit_once(':') else {
        return refuse(Status::not_found(format!("No method {method}.")));
    };
    let permission = match verb {
        "generateIdToken" => "iam.serviceAccounts.getOpenIdToken",
        "generateAccessToken" => "iam.serviceAccounts.getAccessToken",
        _ => return refuse(Status::not_found(format!("No method {verb}."))),
    };
    if !email.contains('@') {
        return refuse(Status::invalid_argument(format!(
            "'{email}' is not a service account's email."
        )));
    }
    if let Caller::Member(_) = caller {
        // A member may not mint tokens of an account homerun cannot place in a project.
        let sa_project =
            api::http::auth::service_account_project(&*s.store, email, &s.default_project)
                .unwrap_or_default();
        let allowed =
            sa_project.is_some_and(|p| project_allows(&*s.store, &caller, &p, permission));
        if !allowed {
            return refuse(api::http::auth::permission_denied(
                permission,
                &format!("projects/-/serviceAccounts/{email}"),
            ));
        }
    }
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let now = identity::now();
    if verb == "generateIdToken" {
        let audience = body["audience"].as_str().unwrap_or_default();
        if audience.is_empty() {
            return refuse(Status::invalid_argument("audience is required."));
        }
        return match s.authority.id_token(email, audience, now) {
            Ok(token) => Json(json!({ "token": token })).into_response(),
            Err(e @ identity::IdentityError::Invalid(_)) => {
                refuse(Status::invalid_argument(e.to_string()))
            }
            Err(e) => refuse(Status::internal(e.to_string())),
        };
    }
    let t = s.authority.access_token(email, now);
    let expire = api::Timestamp::from_unix(t.expires_at as i64);
    Json(json!({ "accessToken": t.token, "expireTime": expire })).into_response()
}
