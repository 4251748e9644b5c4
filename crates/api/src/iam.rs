//! IAM: policies (`google.iam.v1.Policy`), the predefined roles homerun knows and the
//! permissions each grants, and whether a member holds a permission.
//!
//! A policy is stored under the kind [`IAM_POLICY_KIND`], keyed by the full name of the
//! resource it is attached to: `projects/{p}` for a project,
//! `projects/{p}/locations/{l}/services/{s}`, `.../jobs/{j}`, `projects/{p}/secrets/{s}`.
//! What a member may do on a resource is the union of the project's policy and the
//! resource's own ([`policy_allows`]); [`load_policy`] reads one (empty when there is
//! none). Its `etag` is the store revision of the record ([`policy_etag`]), so a
//! read-modify-write can be checked against concurrent changes.
//!
//! Roles ([`ROLES`], the one table): `roles/owner` everything; `roles/editor`
//! everything but setting project or secret policies and reading secret values;
//! `roles/viewer` reads; `roles/run.admin` all of `run.*`; `roles/run.developer`
//! `run.*` but `setIamPolicy`; `roles/run.viewer` Cloud Run reads (policies included);
//! `roles/run.invoker` `run.routes.invoke` and `run.jobs.run`;
//! `roles/run.servicesInvoker` `run.routes.invoke`; `roles/run.jobsExecutor`
//! (`...WithOverrides`) running and cancelling jobs; `roles/secretmanager.admin` all of
//! `secretmanager.*`; `roles/secretmanager.secretAccessor` a version's value
//! (`secretmanager.versions.access`) and the versions' metadata;
//! `roles/secretmanager.viewer` secrets' metadata; `roles/iam.serviceAccountUser`
//! `iam.serviceAccounts.actAs` (owner and editor too); `roles/iam.serviceAccountTokenCreator`
//! a service account's tokens (`iam.serviceAccounts.getAccessToken`,
//! `getOpenIdToken`...: not even owners hold these, as in IAM);
//! `roles/iam.serviceAccountOpenIdTokenCreator` its ID tokens.
//!
//! Members are stored as given; `user:`, `serviceAccount:` and `group:` members compare
//! by their email without regard to ASCII case ([`same_member`]), as the router does.
//!
//! Bindings with a `condition` are kept but grant nothing: homerun does not evaluate
//! conditions, and a condition can only narrow a grant.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use store::{Store, StoreError};

use crate::json::is_default;
use crate::status::BadRequest;

/// The store kind of IAM policies.
pub const IAM_POLICY_KIND: &str = "iamPolicy";
/// The most members a policy may hold (IAM's limit).
pub const MAX_POLICY_MEMBERS: usize = 1500;

/// The member that stands for anyone, authenticated or not.
pub const ALL_USERS: &str = "allUsers";
/// The member that stands for any authenticated member.
pub const ALL_AUTHENTICATED_USERS: &str = "allAuthenticatedUsers";

/// `google.iam.v1.Policy`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Policy {
    /// 1, or 3 when a binding has a condition.
    #[serde(with = "crate::json::int32", skip_serializing_if = "is_default")]
    pub version: i32,
    #[serde(skip_serializing_if = "is_default")]
    pub bindings: Vec<Binding>,
    /// `bytes` (base64 in JSON): the store revision of the policy ([`policy_etag`]).
    #[serde(skip_serializing_if = "is_default")]
    pub etag: String,
}

/// `google.iam.v1.Binding`: a role granted to members.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Binding {
    #[serde(skip_serializing_if = "is_default")]
    pub role: String,
    #[serde(skip_serializing_if = "is_default")]
    pub members: Vec<String>,
    /// Kept, never evaluated: a conditional binding grants nothing in homerun.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<Expr>,
}

/// `google.type.Expr`: a binding's condition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Expr {
    #[serde(skip_serializing_if = "is_default")]
    pub expression: String,
    #[serde(skip_serializing_if = "is_default")]
    pub title: String,
    #[serde(skip_serializing_if = "is_default")]
    pub description: String,
    #[serde(skip_serializing_if = "is_default")]
    pub location: String,
}

/// `google.iam.v1.GetPolicyOptions`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GetPolicyOptions {
    #[serde(
        alias = "requested_policy_version",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub requested_policy_version: i32,
}

/// `google.iam.v1.GetIamPolicyRequest` (its `resource` is the path).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GetIamPolicyRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<GetPolicyOptions>,
}

/// `google.iam.v1.SetIamPolicyRequest` (its `resource` is the path).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SetIamPolicyRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// A `FieldMask`: comma-separated paths; empty means `bindings,etag`.
    #[serde(alias = "update_mask", skip_serializing_if = "is_default")]
    pub update_mask: String,
}

/// `google.iam.v1.TestIamPermissionsRequest` and its response (the permissions held).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TestIamPermissions {
    #[serde(skip_serializing_if = "is_default")]
    pub permissions: Vec<String>,
}

const RUN_READ: &[&str] = &[
    "run.services.get",
    "run.services.list",
    "run.services.getIamPolicy",
    "run.revisions.get",
    "run.revisions.list",
    "run.configurations.get",
    "run.configurations.list",
    "run.routes.get",
    "run.routes.list",
    "run.jobs.get",
    "run.jobs.list",
    "run.jobs.getIamPolicy",
    "run.executions.get",
    "run.executions.list",
    "run.tasks.get",
    "run.tasks.list",
    "run.operations.get",
    "run.operations.list",
    "run.locations.get",
    "run.locations.list",
];
const RUN_WRITE: &[&str] = &[
    "run.services.create",
    "run.services.update",
    "run.services.delete",
    "run.revisions.delete",
    "run.jobs.create",
    "run.jobs.update",
    "run.jobs.delete",
    "run.jobs.run",
    "run.jobs.runWithOverrides",
    "run.executions.delete",
    "run.executions.cancel",
    "run.operations.delete",
    "run.routes.invoke",
];
const RUN_SET_IAM: &[&str] = &["run.services.setIamPolicy", "run.jobs.setIamPolicy"];
const RUN_INVOKE: &[&str] = &["run.routes.invoke"];
const RUN_JOBS_RUN: &[&str] = &["run.jobs.run"];
const RUN_JOBS_EXECUTE: &[&str] = &["run.jobs.run", "run.executions.cancel"];
const RUN_JOBS_OVERRIDE: &[&str] = &["run.jobs.runWithOverrides"];
const SECRETS_READ: &[&str] = &[
    "secretmanager.secrets.get",
    "secretmanager.secrets.list",
    "secretmanager.secrets.getIamPolicy",
    "secretmanager.versions.get",
    "secretmanager.versions.list",
];
const SECRETS_WRITE: &[&str] = &[
    "secretmanager.secrets.create",
    "secretmanager.secrets.update",
    "secretmanager.secrets.delete",
    "secretmanager.versions.add",
    "secretmanager.versions.enable",
    "secretmanager.versions.disable",
    "secretmanager.versions.destroy",
];
const SECRETS_SET_IAM: &[&str] = &["secretmanager.secrets.setIamPolicy"];
const SECRETS_ACCESS: &[&str] = &["secretmanager.versions.access"];
const SECRET_VERSIONS_READ: &[&str] =
    &["secretmanager.versions.get", "secretmanager.versions.list"];
const PROJECT_READ: &[&str] = &[
    "resourcemanager.projects.get",
    "resourcemanager.projects.getIamPolicy",
];
const PROJECT_SET_IAM: &[&str] = &["resourcemanager.projects.setIamPolicy"];
const SA_ACT_AS: &[&str] = &["iam.serviceAccounts.actAs"];
const SA_ID_TOKEN: &[&str] = &["iam.serviceAccounts.getOpenIdToken"];
const SA_TOKENS: &[&str] = &[
    "iam.serviceAccounts.getAccessToken",
    "iam.serviceAccounts.getOpenIdToken",
    "iam.serviceAccounts.implicitDelegation",
    "iam.serviceAccounts.signBlob",
    "iam.serviceAccounts.signJwt",
];

/// Every role homerun knows, with the permission groups it grants: the one table.
pub const ROLES: &[(&str, &[&[&str]])] = &[
    (
        "roles/owner",
        &[
            RUN_READ,
            RUN_WRITE,
            RUN_SET_IAM,
            SECRETS_READ,
            SECRETS_WRITE,
            SECRETS_SET_IAM,
            SECRETS_ACCESS,
            PROJECT_READ,
            PROJECT_SET_IAM,
            SA_ACT_AS,
        ],
    ),
    (
        "roles/editor",
        &[
            RUN_READ,
            RUN_WRITE,
            RUN_SET_IAM,
            SECRETS_READ,
            SECRETS_WRITE,
            PROJECT_READ,
            SA_ACT_AS,
        ],
    ),
    ("roles/viewer", &[RUN_READ, SECRETS_READ, PROJECT_READ]),
    ("roles/run.admin", &[RUN_READ, RUN_WRITE, RUN_SET_IAM]),
    ("roles/run.developer", &[RUN_READ, RUN_WRITE]),
    ("roles/run.viewer", &[RUN_READ]),
    ("roles/run.invoker", &[RUN_INVOKE, RUN_JOBS_RUN]),
    ("roles/run.servicesInvoker", &[RUN_INVOKE]),
    ("roles/run.jobsExecutor", &[RUN_JOBS_EXECUTE]),
    (
        "roles/run.jobsExecutorWithOverrides",
        &[RUN_JOBS_EXECUTE, RUN_JOBS_OVERRIDE],
    ),
    (
        "roles/secretmanager.admin",
        &[SECRETS_READ, SECRETS_WRITE, SECRETS_SET_IAM, SECRETS_ACCESS],
    ),
    (
        "roles/secretmanager.secretAccessor",
        &[SECRETS_ACCESS, SECRET_VERSIONS_READ],
    ),
    ("roles/secretmanager.viewer", &[SECRETS_READ]),
    ("roles/iam.serviceAccountUser", &[SA_ACT_AS]),
    ("roles/iam.serviceAccountTokenCreator", &[SA_TOKENS]),
    ("roles/iam.serviceAccountOpenIdTokenCreator", &[SA_ID_TOKEN]),
];

fn role_groups(role: &str) -> Option<&'static [&'static [&'static str]]> {
    ROLES.iter().find(|(r, _)| *r == role).map(|(_, g)| *g)
}

/// Whether `role` grants `permission` (an unknown role grants nothing).
pub fn role_grants(role: &str, permission: &str) -> bool {
    role_groups(role).is_some_and(|groups| groups.iter().any(|g| g.contains(&permission)))
}

/// Whether homerun knows `role`.
pub fn known_role(role: &str) -> bool {
    role_groups(role).is_some()
}

/// Whether some role grants `permission`.
pub fn known_permission(permission: &str) -> bool {
    ROLES.iter().any(|(role, _)| role_grants(role, permission))
}

/// The roles that grant `permission` (`run.routes.invoke`: owner, editor, run.admin,
/// run.developer, run.invoker, run.servicesInvoker).
pub fn roles_granting(permission: &str) -> Vec<&'static str> {
    ROLES
        .iter()
        .filter(|(role, _)| role_grants(role, permission))
        .map(|(role, _)| *role)
        .collect()
}

/// Whether two members are the same one: `user:`, `serviceAccount:` and `group:` members
/// by their email without regard to ASCII case (as IAM and the router compare them), the
/// others exactly. Members are stored as given.
pub fn same_member(a: &str, b: &str) -> bool {
    match (email_member(a), email_member(b)) {
        (Some((ka, ea)), Some((kb, eb))) => ka == kb && ea.eq_ignore_ascii_case(eb),
        _ => a == b,
    }
}

/// The kind and email of a `user:`, `serviceAccount:` or `group:` member.
fn email_member(member: &str) -> Option<(&str, &str)> {
    let (kind, email) = member.split_once(':')?;
    matches!(kind, "user" | "serviceAccount" | "group").then_some((kind, email))
}

/// A member as [`same_member`] compares it: its email in lowercase.
fn member_key(member: &str) -> String {
    match email_member(member) {
        Some((kind, email)) => format!("{kind}:{}", email.to_ascii_lowercase()),
        None => member.to_string(),
    }
}

/// Whether a binding's member `bound` covers the caller `member`: the same member
/// ([`same_member`]: emails without regard to case), `allUsers` (anyone), or
/// `allAuthenticatedUsers` (any member). An anonymous caller is `""` (or `allUsers`).
pub fn member_matches(bound: &str, member: &str) -> bool {
    let anonymous = member.is_empty() || member == ALL_USERS;
    bound == ALL_USERS
        || (bound == ALL_AUTHENTICATED_USERS && !anonymous)
        || (!anonymous && same_member(bound, member))
}

/// Whether `member` holds `permission` under the union of `policies` (a project's and a
/// resource's). Pass `""` for an anonymous caller (only `allUsers` bindings count).
/// Bindings with a condition grant nothing. Emails compare without regard to case.
pub fn policy_allows(policies: &[&Policy], member: &str, permission: &str) -> bool {
    policies.iter().any(|p| {
        p.bindings.iter().any(|b| {
            b.condition.is_none()
                && role_grants(&b.role, permission)
                && b.members.iter().any(|m| member_matches(m, member))
        })
    })
}

/// The members that hold `permission` under the union of `policies`, as bound
/// (`allUsers` and `allAuthenticatedUsers` included as such): for access lists, such as
/// who may invoke a service (`run.routes.invoke`). Members that differ only in the case
/// of their email are one member, listed once (its first spelling in byte order).
pub fn members_granted(policies: &[&Policy], permission: &str) -> BTreeSet<String> {
    let mut by_key: BTreeMap<String, &String> = BTreeMap::new();
    for m in policies
        .iter()
        .flat_map(|p| &p.bindings)
        .filter(|b| b.condition.is_none() && role_grants(&b.role, permission))
        .flat_map(|b| &b.members)
    {
        by_key
            .entry(member_key(m))
            .and_modify(|kept| {
                if m < *kept {
                    *kept = m;
                }
            })
            .or_insert(m);
    }
    by_key.into_values().cloned().collect()
}

/// The etag of a policy at store revision `revision` (0: no policy stored yet): the
/// revision's 8 big-endian bytes in base64.
pub fn policy_etag(revision: u64) -> String {
    STANDARD.encode(revision.to_be_bytes())
}

/// The store revision an etag of [`policy_etag`] stands for (`None` when it is not one).
pub fn etag_revision(etag: &str) -> Option<u64> {
    let bytes = decode_base64(etag.trim())?;
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// Decodes proto3 JSON `bytes`: standard or URL-safe base64, padded or not.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let lenient =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    GeneralPurpose::new(&base64::alphabet::STANDARD, lenient)
        .decode(text)
        .or_else(|_| GeneralPurpose::new(&base64::alphabet::URL_SAFE, lenient).decode(text))
        .ok()
}

/// Encodes proto3 JSON `bytes`.
pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The policy attached to `resource` (its full name), with its etag; an empty one (no
/// bindings, the etag of revision 0) when none is stored.
pub fn load_policy(store: &dyn Store, resource: &str) -> Result<Policy, StoreError> {
    let Some(record) = store.get(IAM_POLICY_KIND, resource)? else {
        return Ok(Policy {
            version: 1,
            bindings: Vec::new(),
            etag: policy_etag(0),
        });
    };
    let mut policy: Policy = crate::json::from_value(record.doc).map_err(|status| {
        StoreError::Corrupt(format!(
            "the IAM policy of {resource} is unreadable: {}",
            status.message
        ))
    })?;
    policy.version = policy.version.max(1);
    policy.etag = policy_etag(record.revision);
    Ok(policy)
}

impl Policy {
    /// Grants `role` to `member` (a no-op when it already holds it unconditionally, under
    /// its email in any case: [`same_member`]).
    pub fn add_member(&mut self, role: &str, member: &str) {
        match self
            .bindings
            .iter_mut()
            .find(|b| b.role == role && b.condition.is_none())
        {
            Some(b) if b.members.iter().any(|m| same_member(m, member)) => {}
            Some(b) => b.members.push(member.to_string()),
            None => self.bindings.push(Binding {
                role: role.to_string(),
                members: vec![member.to_string()],
                condition: None,
            }),
        }
    }

    /// Takes `role` from `member` (its unconditional binding, its email in any case:
    /// [`same_member`]); whether it held it.
    pub fn remove_member(&mut self, role: &str, member: &str) -> bool {
        let mut removed = false;
        for b in self
            .bindings
            .iter_mut()
            .filter(|b| b.role == role && b.condition.is_none())
        {
            let before = b.members.len();
            b.members.retain(|m| !same_member(m, member));
            removed |= b.members.len() != before;
        }
        self.bindings.retain(|b| !b.members.is_empty());
        removed
    }

    /// The policy as stored: bindings of the same role and condition merged, members
    /// once each (emails without regard to case, the first spelling kept), bindings without members dropped, `version` 3 when a binding has a
    /// condition and 1 otherwise; no etag.
    pub fn normalized(&self) -> Policy {
        let mut bindings: Vec<Binding> = Vec::new();
        for b in &self.bindings {
            let at = match bindings
                .iter()
                .position(|o| o.role == b.role && o.condition == b.condition)
            {
                Some(i) => i,
                None => {
                    bindings.push(Binding {
                        role: b.role.clone(),
                        members: Vec::new(),
                        condition: b.condition.clone(),
                    });
                    bindings.len() - 1
                }
            };
            for m in &b.members {
                if !bindings[at].members.iter().any(|o| same_member(o, m)) {
                    bindings[at].members.push(m.clone());
                }
            }
        }
        bindings.retain(|b| !b.members.is_empty());
        let version = if bindings.iter().any(|b| b.condition.is_some()) {
            3
        } else {
            1
        };
        Policy {
            version,
            bindings,
            etag: String::new(),
        }
    }
}

fn is_domain(d: &str) -> bool {
    d.contains('.')
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn is_email(e: &str) -> bool {
    match e.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !local.contains('@')
                && !local
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
                && is_domain(domain)
        }
        None => false,
    }
}

/// Checks an IAM member: `user:EMAIL`, `serviceAccount:EMAIL`, `group:EMAIL`,
/// `domain:DOMAIN`, `allUsers` or `allAuthenticatedUsers`.
pub fn validate_member(member: &str) -> Result<(), String> {
    const FORMS: &str = "user:EMAIL, serviceAccount:EMAIL, group:EMAIL, domain:DOMAIN, allUsers or allAuthenticatedUsers";
    if member == ALL_USERS || member == ALL_AUTHENTICATED_USERS {
        return Ok(());
    }
    let Some((kind, id)) = member.split_once(':') else {
        return Err(format!("'{member}' is not a member: use {FORMS}"));
    };
    match kind {
        "user" | "serviceAccount" | "group" if is_email(id) => Ok(()),
        "user" | "serviceAccount" | "group" => Err(format!(
            "'{id}' in member '{member}' is not an email address"
        )),
        "domain" if is_domain(id) => Ok(()),
        "domain" => Err(format!("'{id}' in member '{member}' is not a domain name")),
        _ => Err(format!(
            "the member type '{kind}' of '{member}' is not supported: use {FORMS}"
        )),
    }
}

/// Checks a role: `roles/NAME`, one homerun knows ([`ROLES`]).
pub fn validate_role(role: &str) -> Result<(), String> {
    if role.is_empty() {
        return Err("required".into());
    }
    if !role.starts_with("roles/") {
        return Err(format!(
            "'{role}' is not a predefined role (roles/NAME); homerun has no custom roles"
        ));
    }
    if known_role(role) {
        return Ok(());
    }
    let known: Vec<&str> = ROLES.iter().map(|(r, _)| *r).collect();
    Err(format!(
        "the role '{role}' is not supported by homerun; the roles are {}",
        known.join(", ")
    ))
}

/// Checks a policy as `setIamPolicy` takes it, paths under `root` (`policy`): each
/// binding's role and members (named by the binding's role), conditions with an
/// expression and a title and only in version 3 policies, at most
/// [`MAX_POLICY_MEMBERS`] members, `version` 0, 1 or 3.
pub fn validate_policy(policy: &Policy, root: &str) -> Result<(), BadRequest> {
    let mut out = BadRequest::default();
    let field = |f: &str| {
        if root.is_empty() {
            f.to_string()
        } else {
            format!("{root}.{f}")
        }
    };
    if ![0, 1, 3].contains(&policy.version) {
        out.add(
            field("version"),
            format!("invalid policy version {}: use 1 or 3", policy.version),
        );
    }
    let mut members = HashSet::new();
    for (i, b) in policy.bindings.iter().enumerate() {
        let bp = field(&format!("bindings[{i}]"));
        if let Err(e) = validate_role(&b.role) {
            out.add(format!("{bp}.role"), e);
        }
        for (j, m) in b.members.iter().enumerate() {
            if let Err(e) = validate_member(m) {
                out.add(
                    format!("{bp}.members[{j}]"),
                    format!("in the binding of role '{}': {e}", b.role),
                );
            }
            members.insert(m.as_str());
        }
        if let Some(c) = &b.condition {
            if c.expression.trim().is_empty() {
                out.add(format!("{bp}.condition.expression"), "required");
            }
            if c.title.trim().is_empty() {
                out.add(format!("{bp}.condition.title"), "required");
            }
            if policy.version != 3 {
                out.add(
                    field("version"),
                    format!(
                        "must be 3: the binding of role '{}' has a condition",
                        b.role
                    ),
                );
            }
        }
    }
    if members.len() > MAX_POLICY_MEMBERS {
        out.add(
            field("bindings"),
            format!(
                "a policy holds at most {MAX_POLICY_MEMBERS} members, not {}",
                members.len()
            ),
        );
    }
    out.into_result()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(bindings: &[(&str, &[&str])]) -> Policy {
        let mut p = Policy::default();
        for (role, members) in bindings {
            for m in *members {
                p.add_member(role, m);
            }
        }
        p
    }

    #[test]
    fn roles() {
        for role in ["roles/owner", "roles/editor", "roles/run.admin"] {
            assert!(role_grants(role, "run.services.setIamPolicy"), "{role}");
            assert!(role_grants(role, "run.routes.invoke"), "{role}");
        }
        assert!(role_grants("roles/run.developer", "run.services.update"));
        assert!(role_grants(
            "roles/run.developer",
            "run.services.getIamPolicy"
        ));
        assert!(!role_grants(
            "roles/run.developer",
            "run.services.setIamPolicy"
        ));
        assert!(!role_grants("roles/run.developer", "run.jobs.setIamPolicy"));
        for role in ["roles/viewer", "roles/run.viewer"] {
            assert!(role_grants(role, "run.services.get"));
            assert!(role_grants(role, "run.operations.list"));
            assert!(!role_grants(role, "run.services.update"), "{role}");
            assert!(!role_grants(role, "run.routes.invoke"), "{role}");
        }
        assert!(role_grants("roles/run.invoker", "run.routes.invoke"));
        assert!(!role_grants("roles/run.invoker", "run.services.get"));
        assert!(role_grants(
            "roles/owner",
            "resourcemanager.projects.setIamPolicy"
        ));
        assert!(!role_grants(
            "roles/editor",
            "resourcemanager.projects.setIamPolicy"
        ));
        assert!(!role_grants(
            "roles/editor",
            "secretmanager.versions.access"
        ));
        assert!(role_grants(
            "roles/secretmanager.secretAccessor",
            "secretmanager.versions.access"
        ));
        assert!(!role_grants("roles/nope", "run.services.get"));
        assert!(role_grants(
            "roles/iam.serviceAccountTokenCreator",
            "iam.serviceAccounts.getAccessToken"
        ));
        assert!(!role_grants(
            "roles/owner",
            "iam.serviceAccounts.getAccessToken"
        ));
        assert!(validate_role("roles/iam.serviceAccountTokenCreator").is_ok());
        assert_eq!(
            roles_granting("run.routes.invoke"),
            [
                "roles/owner",
                "roles/editor",
                "roles/run.admin",
                "roles/run.developer",
                "roles/run.invoker",
                "roles/run.servicesInvoker"
            ]
        );
    }

    #[test]
    fn allows() {
        let sa = "serviceAccount:a@p.iam.gserviceaccount.com";
        let project = policy(&[("roles/run.viewer", &[sa])]);
        let service = policy(&[("roles/run.invoker", &["user:b@example.com"])]);
        let both = [&project, &service];
        assert!(policy_allows(&both, sa, "run.services.get"));
        assert!(!policy_allows(&both, sa, "run.routes.invoke"));
        assert!(policy_allows(
            &both,
            "user:b@example.com",
            "run.routes.invoke"
        ));
        assert!(!policy_allows(
            &both,
            "user:c@example.com",
            "run.routes.invoke"
        ));
        assert!(!policy_allows(&both, "", "run.routes.invoke"));

        let public = policy(&[("roles/run.invoker", &[ALL_USERS])]);
        assert!(policy_allows(&[&public], "", "run.routes.invoke"));
        assert!(policy_allows(&[&public], sa, "run.routes.invoke"));
        let authenticated = policy(&[("roles/run.invoker", &[ALL_AUTHENTICATED_USERS])]);
        assert!(!policy_allows(&[&authenticated], "", "run.routes.invoke"));
        assert!(policy_allows(&[&authenticated], sa, "run.routes.invoke"));

        let mut conditional = policy(&[("roles/run.invoker", &[sa])]);
        conditional.bindings[0].condition = Some(Expr {
            expression: "true".into(),
            title: "t".into(),
            ..Default::default()
        });
        assert!(!policy_allows(&[&conditional], sa, "run.routes.invoke"));
        assert_eq!(
            members_granted(&both, "run.routes.invoke"),
            BTreeSet::from(["user:b@example.com".to_string()])
        );
    }

    #[test]
    fn emails_without_case() {
        assert!(same_member("user:A@Example.com", "user:a@example.COM"));
        assert!(same_member(
            "serviceAccount:X@p.iam.gserviceaccount.com",
            "serviceAccount:x@P.IAM.gserviceaccount.com"
        ));
        assert!(same_member("group:G@x.co", "group:g@x.co"));
        assert!(!same_member("user:a@x.co", "group:a@x.co"));
        assert!(!same_member("user:a@x.co", "serviceAccount:a@x.co"));
        assert!(!same_member("user:a@x.co", "user:b@x.co"));
        assert!(!same_member("allUsers", "allusers"));
        assert!(!same_member("domain:X.co", "domain:x.co"));
        assert!(member_matches("user:A@x.co", "user:a@X.CO"));
        assert!(!member_matches("user:A@x.co", ""));

        let p = policy(&[("roles/run.invoker", &["user:Bob@x.co", "user:bob@X.co"])]);
        assert_eq!(p.bindings[0].members, ["user:Bob@x.co"], "added once");
        assert!(policy_allows(&[&p], "user:BOB@x.co", "run.routes.invoke"));
        let other = policy(&[("roles/run.invoker", &["user:bob@x.co", "user:Al@x.co"])]);
        assert_eq!(
            members_granted(&[&p, &other], "run.routes.invoke"),
            BTreeSet::from(["user:Al@x.co".to_string(), "user:Bob@x.co".to_string()])
        );
        let doubled = Policy {
            bindings: vec![Binding {
                role: "roles/run.invoker".into(),
                members: vec!["user:z@x.co".into(), "user:Z@x.co".into()],
                condition: None,
            }],
            ..Default::default()
        };
        assert_eq!(doubled.normalized().bindings[0].members, ["user:z@x.co"]);
        let mut p = p;
        assert!(p.remove_member("roles/run.invoker", "user:bob@x.co"));
        assert!(p.bindings.is_empty());
    }

    #[test]
    fn members_and_roles() {
        for ok in [
            "user:a@example.com",
            "serviceAccount:123-compute@developer.gserviceaccount.com",
            "group:g@example.com",
            "domain:example.com",
            "allUsers",
            "allAuthenticatedUsers",
        ] {
            assert_eq!(validate_member(ok), Ok(()), "{ok}");
        }
        for bad in [
            "a@example.com",
            "user:nobody",
            "robot:x@y.z",
            "domain:x",
            "user:",
        ] {
            assert!(validate_member(bad).is_err(), "{bad}");
        }
        assert!(validate_role("roles/run.invoker").is_ok());
        assert!(validate_role("run.invoker").is_err());
        assert!(validate_role("roles/run.invokers")
            .unwrap_err()
            .contains("not supported"));
    }

    #[test]
    fn normalizing_and_editing() {
        let mut p = Policy {
            bindings: vec![
                Binding {
                    role: "roles/run.invoker".into(),
                    members: vec!["user:a@b.co".into(), "user:a@b.co".into()],
                    condition: None,
                },
                Binding {
                    role: "roles/run.invoker".into(),
                    members: vec!["user:c@b.co".into()],
                    condition: None,
                },
                Binding {
                    role: "roles/run.viewer".into(),
                    members: vec![],
                    condition: None,
                },
            ],
            ..Default::default()
        };
        p = p.normalized();
        assert_eq!(p.version, 1);
        assert_eq!(p.bindings.len(), 1);
        assert_eq!(p.bindings[0].members, ["user:a@b.co", "user:c@b.co"]);
        assert!(p.remove_member("roles/run.invoker", "user:a@b.co"));
        assert!(!p.remove_member("roles/run.invoker", "user:a@b.co"));
        p.add_member("roles/run.invoker", "user:c@b.co");
        assert_eq!(p.bindings[0].members, ["user:c@b.co"]);
        assert!(p.remove_member("roles/run.invoker", "user:c@b.co"));
        assert!(p.bindings.is_empty());
    }

    #[test]
    fn etags() {
        assert_eq!(policy_etag(0), "AAAAAAAAAAA=");
        assert_eq!(etag_revision(&policy_etag(42)), Some(42));
        assert_eq!(etag_revision("AAAAAAAAACo"), Some(42));
        assert_eq!(etag_revision("ACAB"), None);
        assert_eq!(etag_revision("%%"), None);
    }
}
