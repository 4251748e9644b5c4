//! Authentication and authorization of every route, when [`ApiState::auth`] is set.
//!
//! A request needs `Authorization: Bearer TOKEN`, which the [`Authenticator`] turns into
//! a [`Caller`]:
//!
//! - no token: 401 `UNAUTHENTICATED`, "Request is missing required authentication
//!   credential...", with `WWW-Authenticate: Bearer realm="homerun"`;
//! - a token the authenticator refuses: 401 `UNAUTHENTICATED`, "Request had invalid
//!   authentication credentials..." and its reason;
//! - [`Caller::Admin`] may do everything;
//! - a [`Caller::Member`] needs the route's permission ([`need`]: `run.services.get`
//!   for `GET .../services/{s}`...) under the union of the project's policy and the
//!   resource's own (a service's or job's, also for their revisions, executions and
//!   tasks; a secret's); without it, 403 `PERMISSION_DENIED` "Permission 'P' denied on
//!   resource 'R' (or it may not exist)." before anything is read, so a denial tells
//!   nothing of the resource. `:testIamPermissions` needs no permission (it answers with
//!   the caller's own). A path the table does not know is a 404 for members.
//!
//! Some requests need more of a member than their route's permission, which depends on
//! the body and on what is stored; the handlers check it (`require`,
//! `require_act_as`), after validation, also with `validateOnly`:
//!
//! - a service or job template that makes a new revision (a service's create, or an
//!   update that changes its template) or a new job template (a job's create, or an
//!   update that changes its template) needs `iam.serviceAccounts.actAs` ([`ACT_AS`]) on
//!   the service account it runs as, after the defaults (the default compute account
//!   counts), under the policy of the account's project and the account's own
//!   ([`service_account_project`]); else 403 "Permission 'iam.serviceAccounts.actAs'
//!   denied on service account EMAIL (or it may not exist)." ([`act_as_denied`]);
//! - a service's create with `invokerIamDisabled: true`, or an update that changes
//!   `invokerIamDisabled`, needs `run.services.setIamPolicy` on the service (making it
//!   public is setting who may invoke it);
//! - a job's `:run` with overrides (not empty) needs `run.jobs.runWithOverrides` on the
//!   job; the overrides cannot change the service account.
//!
//! The caller is put in the request's extensions for the handlers (`testIamPermissions`,
//! the checks above); without authentication there is none, and handlers take the caller
//! as the admin.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;

use store::{Store, StoreError};

use super::{all_records, blocking, error_response, split_verb, store_status, ApiState};
use crate::auth::{AuthFailure, Authenticator, Caller};
use crate::iam::{load_policy, IAM_POLICY_KIND};
use crate::json::EnumEncoding;
use crate::names::validate_project_id;
use crate::naming::{default_service_account, project_number};
use crate::status::{Code, ErrorInfo, Status};

/// The message of a request without credentials (Google's).
pub const MISSING_CREDENTIALS: &str = "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
/// The start of the message of a request with bad credentials (Google's).
pub const INVALID_CREDENTIALS: &str = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
/// The `WWW-Authenticate` of a 401.
pub const WWW_AUTHENTICATE: &str = "Bearer realm=\"homerun\"";

/// What a request needs of a member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// Not a path of the API: members get a 404 (the admin goes on to the router's).
    Unknown,
    /// Any authenticated caller.
    Authenticated,
    /// `permission` on `resource` (the name in the denial), under the union of
    /// `policies` (the names of the policies that count, the project's first).
    Permission {
        permission: &'static str,
        resource: String,
        policies: Vec<String>,
    },
}

/// `UNAUTHENTICATED`: no credentials.
pub fn missing_credentials() -> Status {
    Status::new(Code::Unauthenticated, MISSING_CREDENTIALS).with_detail(ErrorInfo {
        reason: "CREDENTIALS_MISSING".into(),
        domain: "googleapis.com".into(),
        metadata: BTreeMap::from([("service".into(), "run.googleapis.com".into())]),
    })
}

/// `UNAUTHENTICATED`: credentials the authenticator refused.
pub fn invalid_credentials(failure: &AuthFailure) -> Status {
    Status::new(
        Code::Unauthenticated,
        format!("{INVALID_CREDENTIALS} ({})", failure.message),
    )
}

/// `PERMISSION_DENIED` in Cloud Run's words.
pub fn permission_denied(permission: &str, resource: &str) -> Status {
    let domain = match permission.split('.').next() {
        Some("secretmanager") => "secretmanager.googleapis.com",
        Some("resourcemanager") => "cloudresourcemanager.googleapis.com",
        _ => "run.googleapis.com",
    };
    Status::new(
        Code::PermissionDenied,
        format!("Permission '{permission}' denied on resource '{resource}' (or it may not exist)."),
    )
    .with_detail(ErrorInfo {
        reason: "IAM_PERMISSION_DENIED".into(),
        domain: domain.into(),
        metadata: BTreeMap::from([
            ("permission".into(), permission.into()),
            ("resource".into(), resource.into()),
        ]),
    })
}

/// The token of `Authorization: Bearer TOKEN` (the scheme in any case).
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

/// The middleware of [`super::router`]: see the module documentation.
pub(crate) async fn require_auth(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(auth) = state.auth.clone() else {
        return next.run(request).await;
    };
    let token = bearer(request.headers());
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let checked = blocking(move || {
        let caller = authenticate(auth.as_ref(), token.as_deref())?;
        authorize(&state, &caller, &method, &path)?;
        Ok(caller)
    })
    .await;
    match checked {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(status) => refusal(&status),
    }
}

/// The answer to a refused request: the status in Google's envelope, with
/// `WWW-Authenticate` on a 401.
pub fn refusal(status: &Status) -> Response {
    let mut response = error_response(status, EnumEncoding::Name);
    if status.code() == Code::Unauthenticated {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(WWW_AUTHENTICATE),
        );
    }
    response
}

/// The caller of a request to a route served beside the API (homerun's logs and IAM
/// Credentials routes), authenticated as the API's own routes are; the error is the 401
/// to answer.
pub fn authenticate_headers(
    auth: &dyn Authenticator,
    headers: &HeaderMap,
) -> Result<Caller, Box<Response>> {
    authenticate(auth, bearer(headers).as_deref()).map_err(|status| Box::new(refusal(&status)))
}

fn authenticate(auth: &dyn Authenticator, token: Option<&str>) -> Result<Caller, Status> {
    let token = token.ok_or_else(missing_credentials)?;
    auth.authenticate(token).map_err(|failure| {
        tracing::debug!(reason = %failure, "bearer token refused");
        invalid_credentials(&failure)
    })
}

/// Whether `caller` may make the request `method path` (see the module documentation).
pub fn authorize(
    state: &ApiState,
    caller: &Caller,
    method: &Method,
    path: &str,
) -> Result<(), Status> {
    if *caller == Caller::Admin {
        return Ok(());
    }
    match need(method, path) {
        Need::Unknown => Err(Status::not_found(
            "The requested URL was not found on this server.",
        )),
        Need::Authenticated => Ok(()),
        Need::Permission {
            permission,
            resource,
            policies,
        } => require(state, caller, permission, &resource, &policies),
    }
}

/// Whether `member` holds `permission` under the union of the policies named `policies`.
fn holds(
    state: &ApiState,
    member: &str,
    permission: &str,
    policies: &[String],
) -> Result<bool, Status> {
    let loaded = policies
        .iter()
        .map(|name| load_policy(state.store.as_ref(), name))
        .collect::<Result<Vec<_>, _>>()
        .map_err(store_status)?;
    let refs: Vec<_> = loaded.iter().collect();
    Ok(crate::iam::policy_allows(&refs, member, permission))
}

/// Fails with [`permission_denied`] on `resource` unless `caller` holds `permission`
/// under the union of the policies named `policies` (the admin holds everything).
pub(crate) fn require(
    state: &ApiState,
    caller: &Caller,
    permission: &str,
    resource: &str,
    policies: &[String],
) -> Result<(), Status> {
    let Caller::Member(member) = caller else {
        return Ok(());
    };
    if holds(state, member, permission, policies)? {
        Ok(())
    } else {
        tracing::debug!(member, permission, resource, "permission denied");
        Err(permission_denied(permission, resource))
    }
}

/// `PERMISSION_DENIED` of a service account the caller may not act as (Cloud Run's
/// words); `name` the account's resource name (`projects/P/serviceAccounts/EMAIL`,
/// `projects/-/...` when its project is unknown).
pub fn act_as_denied(email: &str, name: &str) -> Status {
    Status::new(
        Code::PermissionDenied,
        format!("Permission '{ACT_AS}' denied on service account {email} (or it may not exist)."),
    )
    .with_detail(ErrorInfo {
        reason: "IAM_PERMISSION_DENIED".into(),
        domain: "iam.googleapis.com".into(),
        metadata: BTreeMap::from([
            ("permission".into(), ACT_AS.into()),
            ("resource".into(), name.into()),
        ]),
    })
}

/// The permission a member needs on the service account a new revision or job template
/// runs as.
pub const ACT_AS: &str = "iam.serviceAccounts.actAs";

/// The project service account `email` belongs to: `P` for `x@P.iam.gserviceaccount.com`;
/// for the default compute account `N-compute@developer.gserviceaccount.com` the project
/// whose [`project_number`] is `N`: `resource_project` (the project of the service or
/// job that names it) when its number is `N`, else one an IAM policy is stored in
/// (`projects/X...`); `None` when there is none, or for any other email. The email's
/// case does not matter.
pub fn service_account_project(
    store: &dyn Store,
    email: &str,
    resource_project: &str,
) -> Result<Option<String>, StoreError> {
    let email = email.to_ascii_lowercase();
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Ok(None);
    };
    if let Some(project) = domain.strip_suffix(".iam.gserviceaccount.com") {
        return Ok(validate_project_id(project)
            .is_ok()
            .then(|| project.to_string()));
    }
    if domain != "developer.gserviceaccount.com" {
        return Ok(None);
    }
    let number = match local.strip_suffix("-compute") {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => return Ok(None),
    };
    let Ok(number) = number.parse::<u64>() else {
        return Ok(None);
    };
    if project_number(resource_project) == number {
        return Ok(Some(resource_project.to_string()));
    }
    let projects: BTreeSet<String> = all_records(store, IAM_POLICY_KIND, "")?
        .into_iter()
        .filter_map(|r| {
            let rest = r.name.strip_prefix("projects/")?;
            Some(rest.split('/').next().unwrap_or(rest).to_string())
        })
        .collect();
    Ok(projects.into_iter().find(|p| project_number(p) == number))
}

/// Fails with [`act_as_denied`] unless `caller` may act as the service account `email`
/// (empty: the default compute account of `resource_project`), which a service's or
/// job's template in `resource_project` names: `iam.serviceAccounts.actAs` under the
/// policy of the account's project ([`service_account_project`]; an account of no
/// known project is refused) and the account's own (`projects/P/serviceAccounts/EMAIL`,
/// when stored). The admin may act as anyone.
pub(crate) fn require_act_as(
    state: &ApiState,
    caller: &Caller,
    email: &str,
    resource_project: &str,
) -> Result<(), Status> {
    let Caller::Member(member) = caller else {
        return Ok(());
    };
    let default;
    let email = if email.is_empty() {
        default = default_service_account(resource_project);
        default.as_str()
    } else {
        email
    };
    let project = service_account_project(state.store.as_ref(), email, resource_project)
        .map_err(store_status)?;
    let allowed = match &project {
        Some(p) => holds(
            state,
            member,
            ACT_AS,
            &[
                format!("projects/{p}"),
                format!("projects/{p}/serviceAccounts/{email}"),
            ],
        )?,
        None => false,
    };
    if allowed {
        return Ok(());
    }
    let name = format!(
        "projects/{}/serviceAccounts/{email}",
        project.as_deref().unwrap_or("-")
    );
    tracing::debug!(member, account = email, "actAs denied");
    Err(act_as_denied(email, &name))
}

/// Decodes `%XX` escapes (as axum's `Path` does), leaving malformed ones as they are.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What [`pick`] chose: a permission on `resource`, counting the project's policy
/// and, when given, the policy of `owner` (the service, job or secret the resource is
/// or belongs to); or what else it needs.
fn on(
    choice: Option<Result<&'static str, Need>>,
    project: &str,
    resource: String,
    owner: Option<String>,
) -> Need {
    match choice {
        Some(Ok(permission)) => {
            let mut policies = vec![format!("projects/{project}")];
            policies.extend(owner);
            Need::Permission {
                permission,
                resource,
                policies,
            }
        }
        Some(Err(need)) => need,
        None => Need::Unknown,
    }
}

/// The permission for `method` among `(method, verb, permission)` choices; the IAM
/// verbs of a resource with its permission prefix (`run.services`) are added.
fn pick(
    method: &Method,
    verb: Option<&str>,
    prefix: Option<&str>,
    choices: &[(Method, Option<&str>, &'static str)],
) -> Option<Result<&'static str, Need>> {
    if let (Some(prefix), Some(v)) = (prefix, verb) {
        let get = *method == Method::GET || *method == Method::POST;
        match v {
            "getIamPolicy" if get => return Some(Ok(iam_permission(prefix, false))),
            "setIamPolicy" if *method == Method::POST => {
                return Some(Ok(iam_permission(prefix, true)))
            }
            "testIamPermissions" if *method == Method::POST => {
                return Some(Err(Need::Authenticated))
            }
            _ => {}
        }
    }
    choices
        .iter()
        .find(|(m, v, _)| m == method && *v == verb)
        .map(|(_, _, p)| Ok(*p))
}

fn iam_permission(prefix: &str, set: bool) -> &'static str {
    match (prefix, set) {
        ("run.services", false) => "run.services.getIamPolicy",
        ("run.services", true) => "run.services.setIamPolicy",
        ("run.jobs", false) => "run.jobs.getIamPolicy",
        ("run.jobs", true) => "run.jobs.setIamPolicy",
        ("secretmanager.secrets", false) => "secretmanager.secrets.getIamPolicy",
        ("secretmanager.secrets", true) => "secretmanager.secrets.setIamPolicy",
        (_, false) => "resourcemanager.projects.getIamPolicy",
        (_, true) => "resourcemanager.projects.setIamPolicy",
    }
}

/// What a member needs for `method path`: the one table of the API's permissions.
pub fn need(method: &Method, path: &str) -> Need {
    let segments: Vec<String> = path
        .strip_prefix('/')
        .unwrap_or(path)
        .split('/')
        .map(percent_decode)
        .collect();
    if segments.iter().any(String::is_empty) {
        return Need::Unknown;
    }
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["v2", "projects", p, "locations", l, rest @ ..] => run_need(method, p, l, rest),
        ["v1", "projects", p] => {
            let (project, verb) = split_verb(p);
            let choice = pick(method, verb, Some("resourcemanager.projects"), &[]);
            on(choice, project, format!("projects/{project}"), None)
        }
        ["v1", "projects", p, "secrets", rest @ ..] => secret_need(method, p, rest),
        _ => Need::Unknown,
    }
}

fn run_need(method: &Method, p: &str, l: &str, rest: &[&str]) -> Need {
    use Method as M;
    let loc = format!("projects/{p}/locations/{l}");
    // A service or job by id, `-` (any) being no resource of its own.
    let owner = |coll: &str, id: &str| (id != "-").then(|| format!("{loc}/{coll}/{id}"));
    let found = |choice, resource, owner| on(choice, p, resource, owner);
    match rest {
        ["services"] => found(
            pick(
                method,
                None,
                None,
                &[
                    (M::GET, None, "run.services.list"),
                    (M::POST, None, "run.services.create"),
                ],
            ),
            loc.clone(),
            None,
        ),
        ["services", s] => {
            let (id, verb) = split_verb(s);
            found(
                pick(
                    method,
                    verb,
                    Some("run.services"),
                    &[
                        (M::GET, None, "run.services.get"),
                        (M::PATCH, None, "run.services.update"),
                        (M::DELETE, None, "run.services.delete"),
                    ],
                ),
                format!("{loc}/services/{id}"),
                owner("services", id),
            )
        }
        ["services", s, "revisions"] => found(
            pick(method, None, None, &[(M::GET, None, "run.revisions.list")]),
            owner("services", s).unwrap_or_else(|| loc.clone()),
            owner("services", s),
        ),
        ["services", s, "revisions", r] => found(
            pick(
                method,
                None,
                None,
                &[
                    (M::GET, None, "run.revisions.get"),
                    (M::DELETE, None, "run.revisions.delete"),
                ],
            ),
            format!("{loc}/services/{s}/revisions/{r}"),
            owner("services", s),
        ),
        ["jobs"] => found(
            pick(
                method,
                None,
                None,
                &[
                    (M::GET, None, "run.jobs.list"),
                    (M::POST, None, "run.jobs.create"),
                ],
            ),
            loc.clone(),
            None,
        ),
        ["jobs", j] => {
            let (id, verb) = split_verb(j);
            found(
                pick(
                    method,
                    verb,
                    Some("run.jobs"),
                    &[
                        (M::GET, None, "run.jobs.get"),
                        (M::PATCH, None, "run.jobs.update"),
                        (M::DELETE, None, "run.jobs.delete"),
                        (M::POST, Some("run"), "run.jobs.run"),
                    ],
                ),
                format!("{loc}/jobs/{id}"),
                owner("jobs", id),
            )
        }
        ["jobs", j, "executions"] => found(
            pick(method, None, None, &[(M::GET, None, "run.executions.list")]),
            owner("jobs", j).unwrap_or_else(|| loc.clone()),
            owner("jobs", j),
        ),
        ["jobs", j, "executions", e] => {
            let (id, verb) = split_verb(e);
            found(
                pick(
                    method,
                    verb,
                    None,
                    &[
                        (M::GET, None, "run.executions.get"),
                        (M::DELETE, None, "run.executions.delete"),
                        (M::POST, Some("cancel"), "run.executions.cancel"),
                    ],
                ),
                format!("{loc}/jobs/{j}/executions/{id}"),
                owner("jobs", j),
            )
        }
        ["jobs", j, "executions", e, "tasks"] => found(
            pick(method, None, None, &[(M::GET, None, "run.tasks.list")]),
            if *e == "-" {
                owner("jobs", j).unwrap_or_else(|| loc.clone())
            } else {
                format!("{loc}/jobs/{j}/executions/{e}")
            },
            owner("jobs", j),
        ),
        ["jobs", j, "executions", e, "tasks", t] => found(
            pick(method, None, None, &[(M::GET, None, "run.tasks.get")]),
            format!("{loc}/jobs/{j}/executions/{e}/tasks/{t}"),
            owner("jobs", j),
        ),
        ["operations"] => found(
            pick(method, None, None, &[(M::GET, None, "run.operations.list")]),
            loc.clone(),
            None,
        ),
        ["operations", o] => {
            let (id, verb) = split_verb(o);
            found(
                pick(
                    method,
                    verb,
                    None,
                    &[
                        (M::GET, None, "run.operations.get"),
                        (M::POST, Some("wait"), "run.operations.get"),
                        (M::DELETE, None, "run.operations.delete"),
                    ],
                ),
                format!("{loc}/operations/{id}"),
                None,
            )
        }
        _ => Need::Unknown,
    }
}

fn secret_need(method: &Method, p: &str, rest: &[&str]) -> Need {
    use Method as M;
    let project = format!("projects/{p}");
    let secret = |id: &str| format!("{project}/secrets/{id}");
    let (choice, resource, owner) = match rest {
        [] => (
            pick(
                method,
                None,
                None,
                &[
                    (M::GET, None, "secretmanager.secrets.list"),
                    (M::POST, None, "secretmanager.secrets.create"),
                ],
            ),
            project.clone(),
            None,
        ),
        [s] => {
            let (id, verb) = split_verb(s);
            (
                pick(
                    method,
                    verb,
                    Some("secretmanager.secrets"),
                    &[
                        (M::GET, None, "secretmanager.secrets.get"),
                        (M::DELETE, None, "secretmanager.secrets.delete"),
                        (M::POST, Some("addVersion"), "secretmanager.versions.add"),
                    ],
                ),
                secret(id),
                Some(secret(id)),
            )
        }
        [s, "versions"] => (
            pick(
                method,
                None,
                None,
                &[(M::GET, None, "secretmanager.versions.list")],
            ),
            secret(s),
            Some(secret(s)),
        ),
        [s, "versions", v] => {
            let (id, verb) = split_verb(v);
            (
                pick(
                    method,
                    verb,
                    None,
                    &[
                        (M::GET, None, "secretmanager.versions.get"),
                        (M::POST, Some("enable"), "secretmanager.versions.enable"),
                        (M::POST, Some("disable"), "secretmanager.versions.disable"),
                        (M::POST, Some("destroy"), "secretmanager.versions.destroy"),
                    ],
                ),
                format!("{}/versions/{id}", secret(s)),
                Some(secret(s)),
            )
        }
        _ => (None, String::new(), None),
    };
    on(choice, p, resource, owner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permission(method: Method, path: &str) -> (&'static str, String, Vec<String>) {
        match need(&method, path) {
            Need::Permission {
                permission,
                resource,
                policies,
            } => (permission, resource, policies),
            other => panic!("{method} {path}: {other:?}"),
        }
    }

    const LOC: &str = "/v2/projects/p/locations/l";

    #[test]
    fn table() {
        let cases = [
            (
                Method::GET,
                format!("{LOC}/services"),
                "run.services.list",
                "projects/p/locations/l",
                1,
            ),
            (
                Method::POST,
                format!("{LOC}/services"),
                "run.services.create",
                "projects/p/locations/l",
                1,
            ),
            (
                Method::GET,
                format!("{LOC}/services/s"),
                "run.services.get",
                "projects/p/locations/l/services/s",
                2,
            ),
            (
                Method::PATCH,
                format!("{LOC}/services/s"),
                "run.services.update",
                "projects/p/locations/l/services/s",
                2,
            ),
            (
                Method::DELETE,
                format!("{LOC}/services/s"),
                "run.services.delete",
                "projects/p/locations/l/services/s",
                2,
            ),
            (
                Method::GET,
                format!("{LOC}/services/s:getIamPolicy"),
                "run.services.getIamPolicy",
                "projects/p/locations/l/services/s",
                2,
            ),
            (
                Method::POST,
                format!("{LOC}/services/s%3AsetIamPolicy"),
                "run.services.setIamPolicy",
                "projects/p/locations/l/services/s",
                2,
            ),
            (
                Method::GET,
                format!("{LOC}/services/s/revisions"),
                "run.revisions.list",
                "projects/p/locations/l/services/s",
                2,
            ),
            (
                Method::GET,
                format!("{LOC}/services/-/revisions"),
                "run.revisions.list",
                "projects/p/locations/l",
                1,
            ),
            (
                Method::DELETE,
                format!("{LOC}/services/s/revisions/s-1"),
                "run.revisions.delete",
                "projects/p/locations/l/services/s/revisions/s-1",
                2,
            ),
            (
                Method::POST,
                format!("{LOC}/jobs/j:run"),
                "run.jobs.run",
                "projects/p/locations/l/jobs/j",
                2,
            ),
            (
                Method::POST,
                format!("{LOC}/jobs/j:setIamPolicy"),
                "run.jobs.setIamPolicy",
                "projects/p/locations/l/jobs/j",
                2,
            ),
            (
                Method::POST,
                format!("{LOC}/jobs/j/executions/e:cancel"),
                "run.executions.cancel",
                "projects/p/locations/l/jobs/j/executions/e",
                2,
            ),
            (
                Method::GET,
                format!("{LOC}/jobs/-/executions/-/tasks"),
                "run.tasks.list",
                "projects/p/locations/l",
                1,
            ),
            (
                Method::GET,
                format!("{LOC}/jobs/j/executions/e/tasks/t"),
                "run.tasks.get",
                "projects/p/locations/l/jobs/j/executions/e/tasks/t",
                2,
            ),
            (
                Method::POST,
                format!("{LOC}/operations/o:wait"),
                "run.operations.get",
                "projects/p/locations/l/operations/o",
                1,
            ),
            (
                Method::DELETE,
                format!("{LOC}/operations/o"),
                "run.operations.delete",
                "projects/p/locations/l/operations/o",
                1,
            ),
            (
                Method::POST,
                "/v1/projects/p:setIamPolicy".into(),
                "resourcemanager.projects.setIamPolicy",
                "projects/p",
                1,
            ),
            (
                Method::POST,
                "/v1/projects/p:getIamPolicy".into(),
                "resourcemanager.projects.getIamPolicy",
                "projects/p",
                1,
            ),
            (
                Method::POST,
                "/v1/projects/p/secrets".into(),
                "secretmanager.secrets.create",
                "projects/p",
                1,
            ),
            (
                Method::POST,
                "/v1/projects/p/secrets/s:addVersion".into(),
                "secretmanager.versions.add",
                "projects/p/secrets/s",
                2,
            ),
            (
                Method::GET,
                "/v1/projects/p/secrets/s/versions/latest".into(),
                "secretmanager.versions.get",
                "projects/p/secrets/s/versions/latest",
                2,
            ),
            (
                Method::POST,
                "/v1/projects/p/secrets/s/versions/2:destroy".into(),
                "secretmanager.versions.destroy",
                "projects/p/secrets/s/versions/2",
                2,
            ),
        ];
        for (method, path, p, resource, policies) in cases {
            let (got, r, pol) = permission(method.clone(), &path);
            assert_eq!(
                (got, r.as_str(), pol.len()),
                (p, resource, policies),
                "{method} {path}"
            );
            assert!(crate::iam::known_permission(got), "{got} is in no role");
            assert_eq!(pol[0], "projects/p");
        }
        assert_eq!(
            need(
                &Method::POST,
                &format!("{LOC}/services/s:testIamPermissions")
            ),
            Need::Authenticated
        );
        for (method, path) in [
            (Method::PUT, format!("{LOC}/services/s")),
            (Method::POST, format!("{LOC}/services/s:frobnicate")),
            (
                Method::GET,
                "/v1/projects/p/secrets/s/versions/1:access".to_string(),
            ),
            (
                Method::POST,
                "/v1/projects/p/secrets/s/versions/1:access".to_string(),
            ),
            (
                Method::GET,
                "/v2/projects/p/locations/l/services/".to_string(),
            ),
            (Method::GET, "/healthz".to_string()),
        ] {
            assert_eq!(need(&method, &path), Need::Unknown, "{method} {path}");
        }
    }

    #[test]
    fn service_account_projects() {
        use store::{MemStore, Op, Precondition};
        let store = MemStore::new();
        let project =
            |email: &str, resource: &str| service_account_project(&store, email, resource).unwrap();
        let some = |p: &str| Some(p.to_string());
        assert_eq!(project("a@p.iam.gserviceaccount.com", "q"), some("p"));
        assert_eq!(project("A@P.IAM.gserviceaccount.com", "q"), some("p"));
        assert_eq!(project("a@P_x.iam.gserviceaccount.com", "q"), None);
        assert_eq!(project("a@example.com", "q"), None);
        assert_eq!(project("nobody", "q"), None);
        assert_eq!(project(&default_service_account("q"), "q"), some("q"));
        let other = default_service_account("other");
        assert_eq!(project(&other, "q"), None);
        assert_eq!(
            project("+1-compute@developer.gserviceaccount.com", "q"),
            None
        );
        assert_eq!(
            project("x-compute@developer.gserviceaccount.com", "q"),
            None
        );
        store
            .transact(vec![Op::put(
                IAM_POLICY_KIND,
                "projects/other/locations/l/services/s",
                serde_json::json!({}),
                Precondition::Any,
            )])
            .unwrap();
        assert_eq!(project(&other, "q"), some("other"));
        assert_eq!(project(&other.to_uppercase(), "q"), some("other"));
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("a%3Ab"), "a:b");
        assert_eq!(percent_decode("a%3"), "a%3");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }
}
