//! Secrets, in Secret Manager v1's shapes: [`Secret`], [`SecretVersion`] and their
//! requests, the [`Sealer`] that encrypts values at rest (the `identity` crate
//! implements it), and [`resolve_secret`] for the controller.
//!
//! A secret is stored under [`SECRET_KIND`] as `projects/{p}/secrets/{s}`; its versions
//! under [`SECRET_VERSION_KIND`] as `.../versions/{n}`, numbered from 1, never reused.
//! A version record holds its value sealed (with the version's full name as associated
//! data), base64, in a member that no response type has: a value never leaves the
//! store through the API (there is no `:access`), only through [`resolve_secret`] into
//! the containers that name it.
//!
//! `latest` is the highest-numbered **enabled** version, here and in the API: what
//! `versions/latest` shows is what a container asking for `latest` gets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use store::{Store, StoreError};

use crate::iam::{decode_base64, encode_base64};
use crate::json::{is_default, proto_enum};
use crate::naming::project_number;
use crate::wkt::Timestamp;

/// The store kind of secrets.
pub const SECRET_KIND: &str = "secret";
/// The store kind of secret versions.
pub const SECRET_VERSION_KIND: &str = "secretVersion";
/// The largest secret value: 64 KiB, Secret Manager's limit.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// The longest secret id.
pub const MAX_SECRET_ID_LEN: usize = 255;
/// The member of a stored version document that holds the sealed value (base64).
pub(crate) const SEALED_MEMBER: &str = "homerunSealed";

/// Encrypts and decrypts secret values at rest (AES-256-GCM in the `identity` crate).
pub trait Sealer: Send + Sync {
    /// `plaintext` sealed, bound to `aad`.
    fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8>;
    /// The plaintext of `sealed`, if it was sealed with this key and `aad`.
    fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, String>;
}

/// `google.cloud.secretmanager.v1.Secret` (the fields homerun keeps).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Secret {
    /// Output only: `projects/{p}/secrets/{s}`.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// `automatic` when not given; homerun has one location, so it means nothing more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication: Option<Replication>,
    #[serde(alias = "create_time", skip_serializing_if = "Option::is_none")]
    pub create_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "is_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_default")]
    pub annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_default")]
    pub etag: String,
}

/// `Replication`: exactly one of `automatic` and `userManaged`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Replication {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automatic: Option<AutomaticReplication>,
    #[serde(alias = "user_managed", skip_serializing_if = "Option::is_none")]
    pub user_managed: Option<UserManagedReplication>,
}

/// `Replication.Automatic`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AutomaticReplication {}

/// `Replication.UserManaged`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UserManagedReplication {
    #[serde(skip_serializing_if = "is_default")]
    pub replicas: Vec<Replica>,
}

/// `Replication.UserManaged.Replica`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Replica {
    #[serde(skip_serializing_if = "is_default")]
    pub location: String,
}

proto_enum! {
    /// `SecretVersion.State`.
    pub enum SecretVersionState = "google.cloud.secretmanager.v1.SecretVersion.State" {
        Unspecified = 0 => "STATE_UNSPECIFIED",
        Enabled = 1 => "ENABLED",
        Disabled = 2 => "DISABLED",
        Destroyed = 3 => "DESTROYED",
    }
}

/// `google.cloud.secretmanager.v1.SecretVersion`: a version's metadata (its value is
/// never part of it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SecretVersion {
    /// `projects/{p}/secrets/{s}/versions/{n}`.
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    #[serde(alias = "create_time", skip_serializing_if = "Option::is_none")]
    pub create_time: Option<Timestamp>,
    #[serde(alias = "destroy_time", skip_serializing_if = "Option::is_none")]
    pub destroy_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "is_default")]
    pub state: SecretVersionState,
    #[serde(skip_serializing_if = "is_default")]
    pub etag: String,
    /// Whether `addVersion` was given a `dataCrc32c` (and checked it).
    #[serde(
        alias = "client_specified_payload_checksum",
        skip_serializing_if = "is_default"
    )]
    pub client_specified_payload_checksum: bool,
}

impl SecretVersion {
    /// The version's number (the last segment of its name), 0 when it has none.
    pub fn number(&self) -> u64 {
        self.name
            .rsplit('/')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// The version's etag as of now.
    pub fn compute_etag(&self) -> String {
        crate::naming::etag(self)
    }
}

impl Secret {
    /// The secret's etag as of now.
    pub fn compute_etag(&self) -> String {
        crate::naming::etag(self)
    }
}

/// `SecretPayload`: `data` is base64 (`bytes`); `dataCrc32c`, when given, is checked.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SecretPayload {
    #[serde(skip_serializing_if = "is_default")]
    pub data: String,
    #[serde(
        alias = "data_crc32c",
        with = "crate::json::opt_int64",
        skip_serializing_if = "Option::is_none"
    )]
    pub data_crc32c: Option<i64>,
}

impl std::fmt::Debug for SecretPayload {
    /// Never the data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretPayload")
            .field(
                "data",
                &format_args!("<{} base64 characters>", self.data.len()),
            )
            .field("data_crc32c", &self.data_crc32c)
            .finish()
    }
}

/// `AddSecretVersionRequest` (its `parent` is the path).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AddSecretVersionRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<SecretPayload>,
}

/// The body of `:disable`, `:enable` and `:destroy`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VersionStateRequest {
    #[serde(skip_serializing_if = "is_default")]
    pub etag: String,
}

/// `ListSecretsResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListSecretsResponse {
    #[serde(skip_serializing_if = "is_default")]
    pub secrets: Vec<Secret>,
    #[serde(alias = "next_page_token", skip_serializing_if = "is_default")]
    pub next_page_token: String,
}

/// `ListSecretVersionsResponse`: newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListSecretVersionsResponse {
    #[serde(skip_serializing_if = "is_default")]
    pub versions: Vec<SecretVersion>,
    #[serde(alias = "next_page_token", skip_serializing_if = "is_default")]
    pub next_page_token: String,
    #[serde(
        alias = "total_size",
        with = "crate::json::int32",
        skip_serializing_if = "is_default"
    )]
    pub total_size: i32,
}

/// Why a secret could not be resolved. Every message names the secret and the version.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// A malformed reference (secret or version).
    #[error("{0}")]
    Invalid(String),
    #[error("secret '{secret}' not found")]
    SecretNotFound { secret: String },
    #[error("secret '{secret}' version '{version}' not found")]
    VersionNotFound { secret: String, version: String },
    /// The version is disabled or destroyed.
    #[error("secret '{secret}' version '{version}' is {state}, not ENABLED")]
    NotEnabled {
        secret: String,
        version: String,
        state: &'static str,
    },
    /// The sealed value does not open (another key, damaged data).
    #[error("secret '{secret}' version '{version}' cannot be decrypted: {reason}")]
    Unsealable {
        secret: String,
        version: String,
        reason: String,
    },
    #[error("secret '{secret}' version '{version}': {source}")]
    Store {
        secret: String,
        version: String,
        #[source]
        source: Box<StoreError>,
    },
}

/// Checks a secret id: 1 to 255 ASCII letters, digits, `_` and `-`.
pub fn validate_secret_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("a secret id must not be empty".into());
    }
    if id.len() > MAX_SECRET_ID_LEN {
        return Err(format!(
            "the secret id '{id}' is longer than {MAX_SECRET_ID_LEN} characters"
        ));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "the secret id '{id}' may hold only ASCII letters, digits, '_' and '-'"
        ));
    }
    Ok(())
}

/// The project and id a template's secret reference names: `S` (a secret of
/// `project`) or `projects/P/secrets/S` (P an id, or `project`'s number).
pub fn parse_secret_ref(project: &str, secret: &str) -> Result<(String, String), String> {
    let (p, id) = match secret.split('/').collect::<Vec<_>>().as_slice() {
        [id] => (project.to_string(), id.to_string()),
        ["projects", p, "secrets", id] if !p.is_empty() => {
            let p = if *p == project_number(project).to_string() {
                project.to_string()
            } else {
                p.to_string()
            };
            (p, id.to_string())
        }
        _ => {
            return Err(format!(
                "'{secret}' is not a secret: use SECRET or projects/PROJECT/secrets/SECRET"
            ))
        }
    };
    validate_secret_id(&id)?;
    Ok((p, id))
}

/// Checks a version reference: empty (`latest`), `latest` or a positive number.
pub fn validate_version_ref(version: &str) -> Result<(), String> {
    match version {
        "" | "latest" => Ok(()),
        v if v.parse::<u64>().is_ok_and(|n| n > 0) && !v.starts_with('+') => Ok(()),
        v => Err(format!(
            "'{v}' is not a secret version: use latest or a version number (homerun has no version aliases)"
        )),
    }
}

/// `projects/{project}/secrets/{id}`.
pub fn secret_name(project: &str, id: &str) -> String {
    format!("projects/{project}/secrets/{id}")
}

/// A stored version: its metadata, its sealed value (none once destroyed) and its store
/// revision.
pub(crate) struct StoredVersion {
    pub version: SecretVersion,
    pub sealed: Option<Vec<u8>>,
    pub revision: u64,
}

/// A version's store document: its metadata and, apart, its sealed value.
pub(crate) fn version_doc(version: &SecretVersion, sealed: Option<&[u8]>) -> Value {
    let mut doc = crate::json::to_value(version, crate::json::EnumEncoding::Name);
    if let (Some(sealed), Some(map)) = (sealed, doc.as_object_mut()) {
        map.insert(SEALED_MEMBER.into(), Value::String(encode_base64(sealed)));
    }
    doc
}

/// A stored version document read back; the sealed value is taken out before the
/// metadata is parsed.
pub(crate) fn parse_version_doc(
    name: &str,
    mut doc: Value,
    revision: u64,
) -> Result<StoredVersion, StoreError> {
    let corrupt = |why: String| StoreError::Corrupt(format!("secret version {name}: {why}"));
    let sealed = match doc.as_object_mut().and_then(|m| m.remove(SEALED_MEMBER)) {
        None => None,
        Some(Value::String(s)) => Some(
            decode_base64(&s).ok_or_else(|| corrupt("the sealed value is not base64".into()))?,
        ),
        Some(_) => return Err(corrupt("the sealed value is not a string".into())),
    };
    let version: SecretVersion = crate::json::from_value(doc).map_err(|s| corrupt(s.message))?;
    Ok(StoredVersion {
        version,
        sealed,
        revision,
    })
}

/// Every version of the secret `secret_name`, newest (highest number) first.
pub(crate) fn stored_versions(
    store: &dyn Store,
    secret_name: &str,
) -> Result<Vec<StoredVersion>, StoreError> {
    let mut out = crate::http::all_records(store, SECRET_VERSION_KIND, secret_name)?
        .into_iter()
        .map(|r| parse_version_doc(&r.name, r.doc, r.revision))
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_by_key(|v| std::cmp::Reverse(v.version.number()));
    Ok(out)
}

/// The version `version` (`latest`, empty: the highest enabled one; else its number)
/// among `versions` (newest first).
pub(crate) fn pick_version(versions: Vec<StoredVersion>, version: &str) -> Option<StoredVersion> {
    match version {
        "" | "latest" => versions
            .into_iter()
            .find(|v| v.version.state == SecretVersionState::Enabled),
        n => {
            let n: u64 = n.parse().ok()?;
            versions.into_iter().find(|v| v.version.number() == n)
        }
    }
}

/// The value of a secret's version, for the containers that name it: `secret` is `S`
/// or `projects/P/secrets/S`, `version` a number, `latest` or empty (`latest`: the
/// highest enabled version). A missing secret or version, a disabled or destroyed
/// version, a value that does not open: errors naming the secret and the version.
pub fn resolve_secret(
    store: &dyn Store,
    sealer: &dyn Sealer,
    project: &str,
    secret: &str,
    version: &str,
) -> Result<Vec<u8>, SecretError> {
    let (p, id) = parse_secret_ref(project, secret).map_err(SecretError::Invalid)?;
    validate_version_ref(version)
        .map_err(|e| SecretError::Invalid(format!("secret '{id}': {e}")))?;
    let shown = if version.is_empty() {
        "latest"
    } else {
        version
    };
    let in_store = |source| SecretError::Store {
        secret: id.clone(),
        version: shown.to_string(),
        source: Box::new(source),
    };
    let name = secret_name(&p, &id);
    if store.get(SECRET_KIND, &name).map_err(in_store)?.is_none() {
        return Err(SecretError::SecretNotFound { secret: id });
    }
    let versions = stored_versions(store, &name).map_err(in_store)?;
    let Some(found) = pick_version(versions, version) else {
        return Err(SecretError::VersionNotFound {
            secret: id,
            version: shown.to_string(),
        });
    };
    if found.version.state != SecretVersionState::Enabled {
        return Err(SecretError::NotEnabled {
            secret: id,
            version: shown.to_string(),
            state: found.version.state.as_str(),
        });
    }
    let Some(sealed) = found.sealed else {
        return Err(SecretError::Unsealable {
            secret: id,
            version: shown.to_string(),
            reason: "the stored version holds no value".into(),
        });
    };
    sealer
        .open(&sealed, found.version.name.as_bytes())
        .map_err(|reason| SecretError::Unsealable {
            secret: id,
            version: shown.to_string(),
            reason,
        })
}

/// CRC32C (Castagnoli), as `dataCrc32c` is computed.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn references() {
        assert_eq!(
            parse_secret_ref("p", "db-pass").unwrap(),
            ("p".to_string(), "db-pass".to_string())
        );
        assert_eq!(
            parse_secret_ref("p", "projects/q/secrets/DB_pass").unwrap(),
            ("q".to_string(), "DB_pass".to_string())
        );
        let number = format!("projects/{}/secrets/s", project_number("p"));
        assert_eq!(parse_secret_ref("p", &number).unwrap().0, "p");
        for bad in [
            "",
            "a/b",
            "projects//secrets/s",
            "projects/p/secrets/a.b",
            "x y",
        ] {
            assert!(parse_secret_ref("p", bad).is_err(), "{bad}");
        }
        assert!(validate_secret_id(&"a".repeat(255)).is_ok());
        assert!(validate_secret_id(&"a".repeat(256)).is_err());
        for ok in ["", "latest", "1", "42"] {
            assert!(validate_version_ref(ok).is_ok(), "{ok}");
        }
        for bad in ["0", "-1", "+1", "current", "1.5"] {
            assert!(validate_version_ref(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn payload_debug_hides_the_data() {
        let p = SecretPayload {
            data: "c2VjcmV0".into(),
            data_crc32c: None,
        };
        assert!(!format!("{p:?}").contains("c2VjcmV0"));
    }
}
