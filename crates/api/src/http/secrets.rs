//! Secrets over REST, as Secret Manager v1 serves them:
//!
//! | method | path |
//! | --- | --- |
//! | `POST` | `/v1/projects/{p}/secrets?secretId=` (body a `Secret`: `replication`, `labels`, `annotations`) |
//! | `GET` | `/v1/projects/{p}/secrets?pageSize=&pageToken=` |
//! | `GET` | `/v1/projects/{p}/secrets/{s}` |
//! | `DELETE` | `/v1/projects/{p}/secrets/{s}?etag=` |
//! | `POST` | `/v1/projects/{p}/secrets/{s}:addVersion` (body `{"payload": {"data", "dataCrc32c"}}`) |
//! | `GET` | `/v1/projects/{p}/secrets/{s}/versions?pageSize=&pageToken=` (newest first) |
//! | `GET` | `/v1/projects/{p}/secrets/{s}/versions/{v}` (`v` a number or `latest`) |
//! | `POST` | `/v1/projects/{p}/secrets/{s}/versions/{v}:disable`, `:enable`, `:destroy` (body `{"etag"}`) |
//! | `GET`, `POST` | `/v1/projects/{p}/secrets/{s}:getIamPolicy`; `POST` `:setIamPolicy`, `:testIamPermissions` ([`super::iam`]) |
//!
//! There is no `:access`: a secret's value never appears in a response (issue 7). It
//! goes in through `:addVersion` (base64, at most 64 KiB, its `dataCrc32c` checked when
//! given), is sealed by [`crate::secret::Sealer`] with the version's full name as
//! associated data, and comes out only through [`crate::secret::resolve_secret`], into
//! containers. Versions are numbered from 1 and kept when destroyed (their value
//! dropped); `latest` is the highest enabled one. Deleting a secret deletes its
//! versions and its IAM policy in the same transaction. Every write pokes `changed`.
//!
//! Without a sealer ([`ApiState::with_sealer`]) every route answers 503 `UNAVAILABLE`.

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::response::Response;
use serde_json::{json, Value};
use store::{Op, Precondition, StoreError};

use super::iam::{caller_of, custom_method, delete_policy_op, policy_race, Target};
use super::{
    all_names, answer, check_etag, invalid_field, list_page, parse_body, read_record, split_verb,
    store_status, to_doc, unimplemented_verb, ApiState, Q,
};
use crate::auth::Caller;
use crate::iam::decode_base64;
use crate::json::to_value;
use crate::names::validate_project_id;
use crate::secret::{
    crc32c, pick_version, secret_name, stored_versions, validate_secret_id, version_doc,
    AddSecretVersionRequest, AutomaticReplication, ListSecretVersionsResponse, ListSecretsResponse,
    Replication, Sealer, Secret, SecretVersion, SecretVersionState, StoredVersion,
    VersionStateRequest, MAX_PAYLOAD_BYTES, SECRET_KIND, SECRET_VERSION_KIND,
};
use crate::status::{BadRequest, Status};
use crate::validate::{check_annotations, check_labels};
use crate::wkt::Timestamp;

/// How many times `:addVersion` draws the next number when another took it.
const ATTEMPTS: usize = 5;

/// Why there is no `:access`.
pub const NO_ACCESS: &str = "homerun never returns a secret's value through its API: containers take it as an environment variable (valueSource.secretKeyRef) or as files (a secret volume).";

/// The sealer, or 503.
fn sealer(state: &ApiState) -> Result<&dyn Sealer, Status> {
    state.sealer.as_deref().ok_or_else(|| {
        Status::unavailable(
            "Secrets are not available: this homerun was started without a key to seal them with.",
        )
    })
}

/// The secret a path names (`{secret}` without a verb), checked; the sealer is there.
fn secret_path(state: &ApiState, project: &str, secret: &str) -> Result<String, Status> {
    sealer(state)?;
    validate_project_id(project).map_err(|e| Status::invalid_argument(e.to_string()))?;
    validate_secret_id(secret).map_err(|e| invalid_field("name", e))?;
    Ok(secret_name(project, secret))
}

fn secret_not_found(name: &str) -> Status {
    Status::not_found(format!("Secret [{name}] not found."))
}

/// The stored secret and its store revision.
fn read_secret(state: &ApiState, name: &str) -> Result<(Secret, u64), Status> {
    read_record(state.store.as_ref(), SECRET_KIND, name, || {
        secret_not_found(name)
    })
}

fn secret_target(project: &str, name: String) -> Target {
    let not_found = secret_not_found(&name);
    Target::resource(SECRET_KIND, name, project, not_found)
}

pub(crate) async fn create(
    State(state): State<ApiState>,
    Path(project): Path<String>,
    query: Q,
    body: Bytes,
) -> Response {
    answer(query, move |params| {
        sealer(&state)?;
        validate_project_id(&project).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let id = params.str("secretId").unwrap_or("").to_string();
        if id.is_empty() {
            return Err(invalid_field("secretId", "required"));
        }
        validate_secret_id(&id).map_err(|e| invalid_field("secretId", e))?;
        let request: Secret = parse_body(&body, "secret")?;
        create_secret(&state, &secret_name(&project, &id), request)
    })
    .await
}

pub(crate) async fn list(
    State(state): State<ApiState>,
    Path(project): Path<String>,
    query: Q,
) -> Response {
    answer(query, move |params| {
        sealer(&state)?;
        validate_project_id(&project).map_err(|e| Status::invalid_argument(e.to_string()))?;
        // `filter` is accepted and not applied.
        let (secrets, next_page_token) = list_page(
            state.store.as_ref(),
            SECRET_KIND,
            &format!("projects/{project}"),
            &params,
        )?;
        Ok(ListSecretsResponse {
            secrets,
            next_page_token,
        })
    })
    .await
}

pub(crate) async fn get(
    State(state): State<ApiState>,
    caller: Option<Extension<Caller>>,
    Path((project, secret)): Path<(String, String)>,
    query: Q,
) -> Response {
    let caller = caller_of(caller);
    answer(query, move |params| {
        let (id, verb) = split_verb(&secret);
        let name = secret_path(&state, &project, id)?;
        if verb.is_some() {
            let target = secret_target(&project, name);
            return custom_method(&state, &target, verb, true, &caller, &params, &[]);
        }
        Ok(to_value(&read_secret(&state, &name)?.0, params.encoding()))
    })
    .await
}

pub(crate) async fn delete(
    State(state): State<ApiState>,
    Path((project, secret)): Path<(String, String)>,
    query: Q,
) -> Response {
    answer(query, move |params| {
        let (id, verb) = split_verb(&secret);
        if let Some(verb) = verb {
            return Err(unimplemented_verb(verb));
        }
        let name = secret_path(&state, &project, id)?;
        delete_secret(&state, &name, params.str("etag").unwrap_or(""))
    })
    .await
}

/// `POST .../secrets/{secret}:addVersion`, and the IAM verbs.
pub(crate) async fn post(
    State(state): State<ApiState>,
    caller: Option<Extension<Caller>>,
    Path((project, secret)): Path<(String, String)>,
    query: Q,
    body: Bytes,
) -> Response {
    let caller = caller_of(caller);
    answer(query, move |params| {
        let (id, verb) = split_verb(&secret);
        let name = secret_path(&state, &project, id)?;
        if verb == Some("addVersion") {
            let request: AddSecretVersionRequest = parse_body(&body, "")?;
            let version = add_version(&state, &name, request)?;
            return Ok(to_value(&version, params.encoding()));
        }
        let target = secret_target(&project, name);
        custom_method(&state, &target, verb, false, &caller, &params, &body)
    })
    .await
}

pub(crate) async fn list_versions(
    State(state): State<ApiState>,
    Path((project, secret)): Path<(String, String)>,
    query: Q,
) -> Response {
    answer(query, move |params| {
        let name = secret_path(&state, &project, &secret)?;
        read_secret(&state, &name)?;
        // `filter` is accepted and not applied.
        let versions = stored_versions(state.store.as_ref(), &name).map_err(store_status)?;
        let total_size = versions.len() as i32;
        let after: Option<u64> = match params.page_token() {
            None => None,
            Some(t) => Some(
                t.parse()
                    .map_err(|_| invalid_field("pageToken", "not a page token of this list"))?,
            ),
        };
        let size = match params.page_size()? {
            0 => store::DEFAULT_PAGE_SIZE,
            n => n.min(store::MAX_PAGE_SIZE),
        };
        let mut page: Vec<SecretVersion> = versions
            .into_iter()
            .map(|v| v.version)
            .filter(|v| after.is_none_or(|a| v.number() < a))
            .take(size + 1)
            .collect();
        let next_page_token = if page.len() > size {
            page.truncate(size);
            page.last()
                .map(|v| v.number().to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListSecretVersionsResponse {
            versions: page,
            next_page_token,
            total_size,
        })
    })
    .await
}

pub(crate) async fn get_version(
    State(state): State<ApiState>,
    Path((project, secret, version)): Path<(String, String, String)>,
    query: Q,
) -> Response {
    answer(query, move |_| {
        let name = secret_path(&state, &project, &secret)?;
        match split_verb(&version) {
            (_, Some("access")) => Err(Status::unimplemented(NO_ACCESS)),
            (_, Some(verb)) => Err(unimplemented_verb(verb)),
            (v, None) => Ok(find_version(&state, &name, v)?.version),
        }
    })
    .await
}

/// `POST .../versions/{version}:disable|:enable|:destroy`.
pub(crate) async fn post_version(
    State(state): State<ApiState>,
    Path((project, secret, version)): Path<(String, String, String)>,
    query: Q,
    body: Bytes,
) -> Response {
    answer(query, move |_| {
        let name = secret_path(&state, &project, &secret)?;
        let (v, verb) = split_verb(&version);
        let verb = match verb {
            Some(verb @ ("disable" | "enable" | "destroy")) => verb,
            Some("access") => return Err(Status::unimplemented(NO_ACCESS)),
            Some(verb) => return Err(unimplemented_verb(verb)),
            None => {
                return Err(Status::unimplemented(
                    "This method is not supported on this resource.",
                ))
            }
        };
        let request: VersionStateRequest = parse_body(&body, "")?;
        change_state(&state, &name, v, verb, &request.etag)
    })
    .await
}

/// Checks a secret as `create` takes it (paths under `secret.`).
fn validate_secret(secret: &Secret) -> Result<(), Status> {
    let mut out = BadRequest::default();
    check_labels(&secret.labels, "secret.labels", &mut out);
    check_annotations(&secret.annotations, "secret.annotations", &mut out);
    if secret.labels.len() > 64 {
        out.add("secret.labels", "at most 64 labels");
    }
    if let Some(r) = &secret.replication {
        match (&r.automatic, &r.user_managed) {
            (Some(_), Some(_)) => out.add(
                "secret.replication",
                "set automatic or userManaged, not both",
            ),
            (None, None) => out.add("secret.replication", "set automatic or userManaged"),
            (None, Some(u)) => {
                if u.replicas.is_empty() {
                    out.add(
                        "secret.replication.userManaged.replicas",
                        "at least one replica",
                    );
                }
                for (i, replica) in u.replicas.iter().enumerate() {
                    if replica.location.is_empty() {
                        out.add(
                            format!("secret.replication.userManaged.replicas[{i}].location"),
                            "required",
                        );
                    }
                }
            }
            (Some(_), None) => {}
        }
    }
    out.into_result().map_err(Status::from)
}

/// `CreateSecret`.
fn create_secret(state: &ApiState, name: &str, request: Secret) -> Result<Secret, Status> {
    validate_secret(&request)?;
    let mut secret = Secret {
        name: name.to_string(),
        replication: Some(request.replication.unwrap_or(Replication {
            automatic: Some(AutomaticReplication {}),
            user_managed: None,
        })),
        create_time: Some(Timestamp::now()),
        labels: request.labels,
        annotations: request.annotations,
        etag: String::new(),
    };
    secret.etag = secret.compute_etag();
    state
        .store
        .put(SECRET_KIND, name, to_doc(&secret), Precondition::Absent)
        .map_err(|e| match e {
            StoreError::AlreadyExists { .. } => {
                Status::already_exists(format!("Secret [{name}] already exists."))
            }
            other => store_status(other),
        })?;
    state.poke();
    tracing::info!(secret = name, "secret created");
    Ok(secret)
}

/// `DeleteSecret`: the secret, its versions and its policy at once.
fn delete_secret(state: &ApiState, name: &str, etag: &str) -> Result<Value, Status> {
    let (secret, revision) = read_secret(state, name)?;
    check_etag(etag, &secret.etag, name)?;
    let mut ops = vec![Op::delete(
        SECRET_KIND,
        name,
        Precondition::Revision(revision),
    )];
    ops.extend(
        all_names(state.store.as_ref(), SECRET_VERSION_KIND, name)?
            .into_iter()
            .map(|n| Op::delete(SECRET_VERSION_KIND, n, Precondition::Exists)),
    );
    ops.push(delete_policy_op(state, name)?);
    state.store.transact(ops).map_err(|e| {
        if let Some(status) = policy_race(&e, name) {
            return status;
        }
        match e {
            StoreError::NotFound { kind, .. } if kind == SECRET_KIND => secret_not_found(name),
            StoreError::Conflict { .. } | StoreError::NotFound { .. } => Status::aborted(format!(
                "The secret [{name}] changed while it was being deleted; retry."
            )),
            other => store_status(other),
        }
    })?;
    state.poke();
    tracing::info!(secret = name, "secret deleted");
    Ok(json!({}))
}

/// `AddSecretVersion`: the next number, the value sealed.
fn add_version(
    state: &ApiState,
    name: &str,
    request: AddSecretVersionRequest,
) -> Result<SecretVersion, Status> {
    let sealer = sealer(state)?;
    let payload = request
        .payload
        .ok_or_else(|| invalid_field("payload", "required"))?;
    let data = decode_base64(&payload.data)
        .ok_or_else(|| invalid_field("payload.data", "not base64 (the value of a bytes field)"))?;
    if data.len() > MAX_PAYLOAD_BYTES {
        return Err(invalid_field(
            "payload.data",
            format!(
                "a secret version holds at most {MAX_PAYLOAD_BYTES} bytes (64 KiB), not {}",
                data.len()
            ),
        ));
    }
    if let Some(expected) = payload.data_crc32c {
        if expected != crc32c(&data) as i64 {
            return Err(invalid_field(
                "payload.dataCrc32c",
                "does not match the CRC32C of payload.data: the data was damaged on the way",
            ));
        }
    }
    for attempt in 1..=ATTEMPTS {
        read_secret(state, name)?;
        let next = all_names(state.store.as_ref(), SECRET_VERSION_KIND, name)?
            .iter()
            .filter_map(|n| n.rsplit('/').next()?.parse::<u64>().ok())
            .max()
            .unwrap_or(0)
            + 1;
        let mut version = SecretVersion {
            name: format!("{name}/versions/{next}"),
            create_time: Some(Timestamp::now()),
            state: SecretVersionState::Enabled,
            client_specified_payload_checksum: payload.data_crc32c.is_some(),
            ..Default::default()
        };
        version.etag = version.compute_etag();
        let sealed = sealer.seal(&data, version.name.as_bytes());
        let ops = vec![
            Op::check(SECRET_KIND, name, Precondition::Exists),
            Op::put(
                SECRET_VERSION_KIND,
                version.name.clone(),
                version_doc(&version, Some(&sealed)),
                Precondition::Absent,
            ),
        ];
        match state.store.transact(ops) {
            Ok(_) => {
                state.poke();
                tracing::info!(version = %version.name, "secret version added");
                return Ok(version);
            }
            Err(StoreError::AlreadyExists { .. }) if attempt < ATTEMPTS => continue,
            Err(StoreError::NotFound { .. }) => return Err(secret_not_found(name)),
            Err(e) => return Err(store_status(e)),
        }
    }
    Err(Status::aborted(format!(
        "Versions of [{name}] were added concurrently; retry."
    )))
}

/// The version `version` (a number or `latest`) of the secret `name`, which must exist.
fn find_version(state: &ApiState, name: &str, version: &str) -> Result<StoredVersion, Status> {
    if version.is_empty() || crate::secret::validate_version_ref(version).is_err() {
        return Err(invalid_field(
            "name",
            format!("'{version}' is not a secret version: use a version number or latest"),
        ));
    }
    read_secret(state, name)?;
    let versions = stored_versions(state.store.as_ref(), name).map_err(store_status)?;
    pick_version(versions, version).ok_or_else(|| {
        if version == "latest" {
            Status::not_found(format!(
                "Secret [{name}] has no enabled version for versions/latest to name."
            ))
        } else {
            Status::not_found(format!(
                "Secret Version [{name}/versions/{version}] not found."
            ))
        }
    })
}

/// `EnableSecretVersion`, `DisableSecretVersion`, `DestroySecretVersion`.
fn change_state(
    state: &ApiState,
    name: &str,
    version: &str,
    verb: &str,
    etag: &str,
) -> Result<SecretVersion, Status> {
    let found = find_version(state, name, version)?;
    let mut v = found.version;
    check_etag(etag, &v.etag, &v.name)?;
    if v.state == SecretVersionState::Destroyed {
        return Err(Status::failed_precondition(format!(
            "SecretVersion [{}] is in DESTROYED state.",
            v.name
        )));
    }
    let mut sealed = found.sealed;
    match verb {
        "enable" => v.state = SecretVersionState::Enabled,
        "disable" => v.state = SecretVersionState::Disabled,
        _ => {
            v.state = SecretVersionState::Destroyed;
            v.destroy_time = Some(Timestamp::now());
            sealed = None;
        }
    }
    v.etag = v.compute_etag();
    state
        .store
        .put(
            SECRET_VERSION_KIND,
            &v.name,
            version_doc(&v, sealed.as_deref()),
            Precondition::Revision(found.revision),
        )
        .map_err(|e| match e {
            StoreError::Conflict { .. } | StoreError::NotFound { .. } => Status::aborted(format!(
                "SecretVersion [{}] changed concurrently; read it again and retry.",
                v.name
            )),
            other => store_status(other),
        })?;
    state.poke();
    tracing::info!(version = %v.name, state = v.state.as_str(), "secret version changed");
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_is_checked() {
        let mut s = Secret {
            replication: Some(Replication::default()),
            ..Default::default()
        };
        assert!(validate_secret(&s).is_err());
        s.replication = Some(Replication {
            automatic: Some(AutomaticReplication {}),
            user_managed: None,
        });
        assert!(validate_secret(&s).is_ok());
    }
}
