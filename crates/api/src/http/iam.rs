//! IAM policies over REST, `google.iam.v1`'s methods as custom verbs:
//!
//! - services, jobs and secrets: `GET|POST {resource}:getIamPolicy`
//!   (`options.requestedPolicyVersion` in the query or the body), `POST
//!   {resource}:setIamPolicy` (`{"policy", "updateMask"}`), `POST
//!   {resource}:testIamPermissions` (`{"permissions"}`: the subset the caller holds);
//!   the resource must exist (404);
//! - the project, as Cloud Resource Manager v1 serves it: `POST
//!   /v1/projects/{p}:getIamPolicy`, `:setIamPolicy`, `:testIamPermissions`.
//!
//! A policy is stored as [`crate::iam`] describes, its etag the record's store revision.
//! `setIamPolicy` validates the policy (roles homerun knows, members of the IAM forms;
//! 400 naming the binding), merges bindings of the same role, and writes it in one
//! transaction with a check that the resource still exists; with an `etag` that is not
//! the current one it is 409 `ABORTED`, and the write itself is conditional on that
//! revision, so two read-modify-writes cannot both win. `updateMask` may name
//! `bindings`, `etag` and `version` (empty: `bindings,etag`); without `bindings` the
//! bindings stay. Then `changed` is poked (the controller rebuilds who may invoke
//! what). A resource's deletion deletes its policy in the same transaction
//! (`delete_policy_op`).

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::response::Response;
use serde_json::Value;
use store::{Op, Precondition, StoreError};

use super::{
    answer, invalid_field, parse_body, split_verb, store_status, unimplemented_verb, ApiState,
    Params, Q,
};
use crate::auth::Caller;
use crate::iam::{
    etag_revision, known_permission, load_policy, policy_etag, validate_policy,
    GetIamPolicyRequest, Policy, SetIamPolicyRequest, TestIamPermissions, IAM_POLICY_KIND,
};
use crate::json::{to_value, EnumEncoding};
use crate::names::validate_project_id;
use crate::status::Status;

/// The message of a `setIamPolicy` whose etag is not the current one (IAM's).
pub const CONCURRENT_POLICY_CHANGE: &str = "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.";

/// What a policy is attached to.
pub(crate) struct Target {
    /// The resource's full name: the policy's key.
    pub name: String,
    /// Its project.
    pub project: String,
    /// The store kind holding the resource; `None` for a project (which always exists).
    pub kind: Option<&'static str>,
    /// The answer when the resource does not exist.
    pub not_found: Status,
}

impl Target {
    /// A resource of `kind` in `project`.
    pub(crate) fn resource(
        kind: &'static str,
        name: String,
        project: &str,
        not_found: Status,
    ) -> Self {
        Target {
            name,
            project: project.to_string(),
            kind: Some(kind),
            not_found,
        }
    }

    /// The names of the policies whose union governs the resource.
    fn policies(&self) -> Vec<String> {
        let project = format!("projects/{}", self.project);
        let mut out = vec![project.clone()];
        if self.name != project {
            out.push(self.name.clone());
        }
        out
    }

    fn check_exists(&self, state: &ApiState) -> Result<(), Status> {
        match self.kind {
            Some(kind)
                if state
                    .store
                    .get(kind, &self.name)
                    .map_err(store_status)?
                    .is_none() =>
            {
                Err(self.not_found.clone())
            }
            _ => Ok(()),
        }
    }
}

/// The caller a handler acts for: the authenticated one, or the admin when the API
/// has no authentication.
pub(crate) fn caller_of(caller: Option<Extension<Caller>>) -> Caller {
    caller.map_or(Caller::Admin, |Extension(c)| c)
}

/// Serves an IAM verb on `target`: `getIamPolicy` (also on GET), `setIamPolicy` and
/// `testIamPermissions`; any other verb is not implemented.
pub(crate) fn custom_method(
    state: &ApiState,
    target: &Target,
    verb: Option<&str>,
    is_get: bool,
    caller: &Caller,
    params: &Params,
    body: &[u8],
) -> Result<Value, Status> {
    match (verb, is_get) {
        (Some("getIamPolicy"), _) => Ok(to_json(&get_iam_policy(state, target, params, body)?)),
        (Some("setIamPolicy"), false) => Ok(to_json(&set_iam_policy(
            state,
            target,
            parse_body(body, "")?,
        )?)),
        (Some("testIamPermissions"), false) => Ok(to_json(&test_iam_permissions(
            state,
            target,
            caller,
            parse_body(body, "")?,
        )?)),
        (Some(verb), _) => Err(unimplemented_verb(verb)),
        (None, _) => Err(Status::unimplemented(
            "This method is not supported on this resource.",
        )),
    }
}

/// An IAM message as JSON (they hold no enums).
fn to_json<T: serde::Serialize>(message: &T) -> Value {
    to_value(message, EnumEncoding::Name)
}

/// `getIamPolicy`.
pub(crate) fn get_iam_policy(
    state: &ApiState,
    target: &Target,
    params: &Params,
    body: &[u8],
) -> Result<Policy, Status> {
    let request: GetIamPolicyRequest = parse_body(body, "")?;
    let requested = match params.str("options.requestedPolicyVersion") {
        Some(v) if !v.is_empty() => v.trim().parse::<i32>().map_err(|_| {
            invalid_field(
                "options.requestedPolicyVersion",
                format!("Invalid value for an int32: \"{v}\""),
            )
        })?,
        _ => request.options.map_or(0, |o| o.requested_policy_version),
    };
    if ![0, 1, 3].contains(&requested) {
        return Err(invalid_field(
            "options.requestedPolicyVersion",
            format!("invalid policy version {requested}: use 1 or 3"),
        ));
    }
    target.check_exists(state)?;
    load_policy(state.store.as_ref(), &target.name).map_err(store_status)
}

/// The paths of a `setIamPolicy` update mask.
fn mask_paths(mask: &str) -> Result<Vec<String>, Status> {
    let paths: Vec<String> = mask
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect();
    if paths.is_empty() {
        return Ok(vec!["bindings".into(), "etag".into()]);
    }
    for p in &paths {
        if !matches!(p.as_str(), "bindings" | "etag" | "version") {
            return Err(invalid_field(
                "updateMask",
                format!(
                    "\"{p}\" is not a field of a policy homerun sets (bindings, etag, version)"
                ),
            ));
        }
    }
    Ok(paths)
}

/// `setIamPolicy`: see the module documentation.
pub(crate) fn set_iam_policy(
    state: &ApiState,
    target: &Target,
    request: SetIamPolicyRequest,
) -> Result<Policy, Status> {
    let requested = request
        .policy
        .ok_or_else(|| invalid_field("policy", "required"))?;
    let paths = mask_paths(&request.update_mask)?;
    validate_policy(&requested, "policy").map_err(Status::from)?;
    target.check_exists(state)?;
    let current = state
        .store
        .get(IAM_POLICY_KIND, &target.name)
        .map_err(store_status)?;
    let current_revision = current.as_ref().map_or(0, |r| r.revision);
    let aborted = || Status::aborted(CONCURRENT_POLICY_CHANGE);
    let etag = requested.etag.trim();
    if !etag.is_empty() && etag_revision(etag) != Some(current_revision) {
        return Err(aborted());
    }
    let policy = if paths.iter().any(|p| p == "bindings") {
        requested.normalized()
    } else {
        load_policy(state.store.as_ref(), &target.name)
            .map_err(store_status)?
            .normalized()
    };
    let expected = match (etag.is_empty(), current_revision) {
        (true, _) => Precondition::Any,
        (false, 0) => Precondition::Absent,
        (false, r) => Precondition::Revision(r),
    };
    let mut ops = Vec::with_capacity(2);
    if let Some(kind) = target.kind {
        ops.push(Op::check(kind, target.name.clone(), Precondition::Exists));
    }
    ops.push(Op::put(
        IAM_POLICY_KIND,
        target.name.clone(),
        to_json(&policy),
        expected,
    ));
    let revisions = state.store.transact(ops).map_err(|e| match e {
        StoreError::NotFound { kind, .. } if Some(kind.as_str()) == target.kind => {
            target.not_found.clone()
        }
        StoreError::Conflict { .. } | StoreError::AlreadyExists { .. } => aborted(),
        other => store_status(other),
    })?;
    state.poke();
    tracing::info!(resource = %target.name, bindings = policy.bindings.len(), "IAM policy set");
    Ok(Policy {
        etag: policy_etag(*revisions.last().unwrap_or(&0)),
        ..policy
    })
}

/// `testIamPermissions`: the permissions asked for that the caller holds on the target.
pub(crate) fn test_iam_permissions(
    state: &ApiState,
    target: &Target,
    caller: &Caller,
    request: TestIamPermissions,
) -> Result<TestIamPermissions, Status> {
    for (i, p) in request.permissions.iter().enumerate() {
        if p.is_empty() {
            return Err(invalid_field(
                &format!("permissions[{i}]"),
                "must not be empty",
            ));
        }
        if p.contains('*') {
            return Err(invalid_field(
                &format!("permissions[{i}]"),
                format!("Permission {p} is invalid: wildcards are not allowed"),
            ));
        }
    }
    target.check_exists(state)?;
    let policies = target
        .policies()
        .iter()
        .map(|n| load_policy(state.store.as_ref(), n))
        .collect::<Result<Vec<_>, _>>()
        .map_err(store_status)?;
    let refs: Vec<&Policy> = policies.iter().collect();
    Ok(TestIamPermissions {
        permissions: request
            .permissions
            .into_iter()
            .filter(|p| known_permission(p) && caller.may(&refs, p))
            .collect(),
    })
}

/// The op that takes `name`'s policy with it in a deletion's transaction: its deletion
/// at the revision read, or a check that there is still none (so a policy set
/// meanwhile fails the deletion rather than outliving the resource).
pub(crate) fn delete_policy_op(state: &ApiState, name: &str) -> Result<Op, Status> {
    Ok(
        match state
            .store
            .get(IAM_POLICY_KIND, name)
            .map_err(store_status)?
        {
            Some(r) => Op::delete(IAM_POLICY_KIND, name, Precondition::Revision(r.revision)),
            None => Op::check(IAM_POLICY_KIND, name, Precondition::Absent),
        },
    )
}

/// A deletion that lost a race with `setIamPolicy` on the resource's policy.
pub(crate) fn policy_race(e: &StoreError, resource: &str) -> Option<Status> {
    match e {
        StoreError::Conflict { kind, .. } | StoreError::AlreadyExists { kind, .. }
            if kind == IAM_POLICY_KIND =>
        {
            Some(Status::aborted(format!(
                "The IAM policy of '{}' changed while it was being deleted; retry.",
                resource.rsplit('/').next().unwrap_or(resource)
            )))
        }
        _ => None,
    }
}

/// `POST /v1/projects/{project}:getIamPolicy|:setIamPolicy|:testIamPermissions`.
pub(crate) async fn project(
    State(state): State<ApiState>,
    caller: Option<Extension<Caller>>,
    Path(project): Path<String>,
    query: Q,
    body: Bytes,
) -> Response {
    let caller = caller_of(caller);
    answer(query, move |params| {
        let (id, verb) = split_verb(&project);
        validate_project_id(id).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let target = Target {
            name: format!("projects/{id}"),
            project: id.to_string(),
            kind: None,
            not_found: Status::not_found(format!("Project '{id}' not found.")),
        };
        custom_method(&state, &target, verb, false, &caller, &params, &body)
    })
    .await
}
