//! A registry speaking the Registry HTTP API v2 (the OCI distribution API), reached
//! through `oci-client`, which does the HTTP, the token dance and basic auth.
//!
//! What this module adds is what users read when something goes wrong: credentials come
//! from a Docker-style `config.json`, and every failure is classified (refused access,
//! unreachable, not found, anything else) with a detail saying what was tried.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use futures_util::TryStreamExt as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError, OciEnvelope, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::Client;
use serde::Deserialize;

use super::{Blob, RawManifest, RegistryOptions, SourceError};
use crate::manifest::{
    digest_of, signed_schema1_payload_digest, ACCEPTED_MEDIA_TYPES, DOCKER_MANIFEST_V1_SIGNED,
    MAX_MANIFEST_BYTES,
};
use crate::reference::Reference;

/// Docker Hub's registry as [`Reference`] normalises it.
const DOCKER_HUB: &str = "docker.io";
/// Every name `docker login` has stored Docker Hub credentials under, once scheme and
/// path are stripped (`https://index.docker.io/v1/` is the classic key).
/// What `/v2/NAME/manifests/REFERENCE` asks for when a reference has neither tag nor digest.
const DEFAULT_API_REFERENCE: &str = "latest";
const DOCKER_HUB_ALIASES: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];

/// One image repository in one registry, with the credentials to read it.
pub struct RegistrySource {
    client: Client,
    /// For manifests: a plain GET, see [`RegistrySource::get_manifest`].
    http: reqwest::Client,
    reference: Reference,
    auth: RegistryAuth,
    /// What the credential lookup found, so that a refusal can say what was tried.
    credentials: CredentialLookup,
    /// Whether the registry is spoken to over plain HTTP rather than HTTPS.
    plain_http: bool,
    timeout: Duration,
}

impl RegistrySource {
    /// Prepares to read `reference`'s repository: finds credentials and builds the HTTP
    /// client (plain HTTP for loopback and `options.insecure_hosts`, HTTPS otherwise).
    /// Nothing is sent to the registry yet.
    pub async fn new(
        reference: &Reference,
        options: &RegistryOptions,
    ) -> Result<Self, SourceError> {
        let credentials = CredentialLookup::load(options, reference.registry()).await?;
        let auth = credentials.auth();
        let plain_http = speaks_plain_http(reference, options);
        let client = Client::try_from(client_config(plain_http, options.timeout)).map_err(|e| {
            SourceError::Invalid {
                source_name: registry_name(reference),
                detail: format!("cannot set up the HTTP client: {}", error_chain(&e)),
            }
        })?;
        let http = reqwest::Client::builder()
            .connect_timeout(options.timeout)
            .read_timeout(options.timeout)
            .build()
            .map_err(|e| SourceError::Invalid {
                source_name: registry_name(reference),
                detail: format!("cannot set up the HTTP client: {}", error_chain(&e)),
            })?;
        let source = Self {
            client,
            http,
            reference: reference.clone(),
            auth,
            credentials,
            plain_http,
            timeout: options.timeout,
        };
        // The manifest calls hand oci-client the credentials themselves; blob pulls do not,
        // so register them up front for every request.
        let target = source.oci_reference(None);
        source
            .client
            .store_auth_if_needed(target.resolve_registry(), &source.auth)
            .await;
        Ok(source)
    }

    /// Fetches the manifest (or index, or list) the reference names, or the one with
    /// `digest` in the same repository.
    pub async fn manifest(&self, digest: Option<&str>) -> Result<RawManifest, SourceError> {
        let wanted = digest.or(self.reference.digest());
        let what = self.manifest_name(wanted);
        let target = self.oci_reference(wanted);
        let (bytes, content_type) = self.get_manifest(&target, &what).await?;
        // A signed schema1 manifest never hashes to its registry digest: the registry digests
        // the unsigned payload and signs anew on every GET. Its payload digest is the one to
        // check and to record.
        let actual = if content_type.as_deref() == Some(DOCKER_MANIFEST_V1_SIGNED) {
            signed_schema1_payload_digest(&bytes)
                .map_err(|e| self.invalid(format!("{what}: {e}")))?
        } else {
            digest_of(&bytes)
        };
        if let Some(expected) = wanted.filter(|expected| *expected != actual) {
            return Err(self.invalid(format!(
                "{what} has digest {actual}, not the {expected} requested"
            )));
        }
        Ok(RawManifest {
            bytes,
            content_type,
            digest: actual,
        })
    }

    /// GETs a manifest with oci-client's credentials (its token flow, or Basic).
    ///
    /// Not oci-client's own raw pull: that one insists the body hash to the registry's
    /// `Docker-Content-Digest`, which a signed schema1 manifest never does, and it hands back
    /// neither the Content-Type nor a way to stop reading an oversized body.
    async fn get_manifest(
        &self,
        target: &oci_client::Reference,
        what: &str,
    ) -> Result<(Vec<u8>, Option<String>), SourceError> {
        let source_name = registry_name(&self.reference);
        let token = self
            .client
            .auth(target, &self.auth, oci_client::RegistryOperation::Pull)
            .await
            .map_err(|e| self.classify(e, what, &source_name))?;
        let scheme = if self.plain_http { "http" } else { "https" };
        let reference = target
            .digest()
            .or(target.tag())
            .unwrap_or(DEFAULT_API_REFERENCE);
        let url = format!(
            "{scheme}://{}/v2/{}/manifests/{reference}",
            target.resolve_registry(),
            target.repository()
        );
        let mut request = self
            .http
            .get(&url)
            .header(reqwest::header::ACCEPT, ACCEPTED_MEDIA_TYPES.join(", "));
        request = match (&token, &self.auth) {
            (Some(token), _) => request.bearer_auth(token),
            (None, RegistryAuth::Basic(user, password)) => request.basic_auth(user, Some(password)),
            _ => request,
        };
        let transport = |e: reqwest::Error| {
            let failure = Transport {
                timed_out: e.is_timeout(),
                connect: e.is_connect(),
            };
            self.unreachable(failure, &e)
        };
        let response = request.send().await.map_err(transport)?;
        match response.status().as_u16() {
            200 => {}
            401 => return Err(self.unauthorized("401 Unauthorized")),
            403 => return Err(self.unauthorized("403 Forbidden")),
            404 => return Err(not_found(what, &source_name)),
            code => {
                // Enough of the registry's error document to explain, never all of it.
                let body = response.text().await.unwrap_or_default();
                let excerpt: String = body.trim().chars().take(512).collect();
                return Err(self.invalid(format!("{what}: HTTP {code}: {excerpt}")));
            }
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned());
        let too_large = |size: u64| SourceError::TooLarge {
            what: what.to_owned(),
            size,
            limit: MAX_MANIFEST_BYTES as u64,
        };
        if let Some(length) = response
            .content_length()
            .filter(|l| *l > MAX_MANIFEST_BYTES as u64)
        {
            return Err(too_large(length));
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.try_next().await.map_err(transport)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_MANIFEST_BYTES {
                return Err(too_large(body.len() as u64));
            }
        }
        Ok((body, content_type))
    }

    /// Starts streaming the blob `digest` from the repository. The bytes are not verified
    /// here: the caller checks digest and size as it consumes them.
    pub async fn blob(&self, digest: &str, size: Option<u64>) -> Result<Blob, SourceError> {
        let what = format!("blob {digest}");
        let target = self.oci_reference(None);
        let sized = self
            .client
            .pull_blob_stream(&target, digest)
            .await
            .map_err(|e| self.classify(e, &what, &repository_name(&self.reference)))?;
        if let (Some(announced), Some(expected)) = (sized.content_length, size) {
            if announced != expected {
                tracing::debug!(
                    digest,
                    announced,
                    expected,
                    "registry announces another size"
                );
            }
        }
        let context = format!("reading {what} from {}", self.reference.registry());
        let stream = sized
            .stream
            .map_err(move |e| io::Error::new(e.kind(), format!("{context}: {}", error_chain(&e))));
        Ok(Blob {
            length: sized.content_length,
            stream: Box::pin(stream),
        })
    }

    /// The oci-client reference for this repository, by `digest` or else by tag.
    fn oci_reference(&self, digest: Option<&str>) -> oci_client::Reference {
        let registry = self.reference.registry().to_owned();
        let repository = self.reference.repository().to_owned();
        match digest {
            Some(digest) => oci_client::Reference::with_digest(registry, repository, digest.into()),
            None => oci_client::Reference::with_tag(
                registry,
                repository,
                self.reference.reference_for_api().to_owned(),
            ),
        }
    }

    /// `manifest 127.0.0.1:5000/x:y` or `manifest 127.0.0.1:5000/x@sha256:...`.
    fn manifest_name(&self, digest: Option<&str>) -> String {
        let repository = repository_name(&self.reference);
        match digest {
            Some(digest) => format!("manifest {repository}@{digest}"),
            None => format!(
                "manifest {repository}:{}",
                self.reference.reference_for_api()
            ),
        }
    }

    /// Turns an oci-client error about `what` (read from `source_name`) into what a user
    /// should read.
    fn classify(&self, error: OciDistributionError, what: &str, source_name: &str) -> SourceError {
        match error {
            OciDistributionError::UnauthorizedError { .. } => self.unauthorized("401 Unauthorized"),
            OciDistributionError::AuthenticationFailure(reason) => {
                self.unauthorized(&format!("the token request failed ({})", reason.trim()))
            }
            OciDistributionError::RegistryError { envelope, .. } => {
                self.classify_envelope(&envelope, what, source_name)
            }
            OciDistributionError::ServerError { code, message, .. } => {
                self.classify_status(code, &message, what, source_name)
            }
            OciDistributionError::RequestError(e) => {
                let failure = Transport {
                    timed_out: e.is_timeout(),
                    connect: e.is_connect(),
                };
                self.unreachable(failure, &e)
            }
            OciDistributionError::DigestError(DigestError::VerificationError {
                expected,
                actual,
            }) => self.invalid(digest_mismatch(what, &expected, &actual)),
            other => self.invalid(format!("{what}: {}", error_chain(&other))),
        }
    }

    /// A registry's error document: its codes say what went wrong when the status alone
    /// (which oci-client drops for these) would not.
    fn classify_envelope(
        &self,
        envelope: &OciEnvelope,
        what: &str,
        source_name: &str,
    ) -> SourceError {
        let codes = || envelope.errors.iter().map(|e| &e.code);
        if codes().any(|c| *c == OciErrorCode::Unauthorized) {
            return self.unauthorized("401 Unauthorized");
        }
        if codes().any(|c| *c == OciErrorCode::Denied) {
            return self.unauthorized("403 Forbidden");
        }
        if codes().any(is_not_found_code) {
            return not_found(what, source_name);
        }
        let messages: Vec<String> = envelope
            .errors
            .iter()
            .map(|e| format!("{}: {}", code_name(&e.code), e.message))
            .collect();
        self.invalid(format!("{what}: {}", messages.join("; ")))
    }

    /// An error status without an error document.
    fn classify_status(
        &self,
        code: u16,
        message: &str,
        what: &str,
        source_name: &str,
    ) -> SourceError {
        match code {
            401 => self.unauthorized("401 Unauthorized"),
            403 => self.unauthorized("403 Forbidden"),
            404 => not_found(what, source_name),
            _ => self.invalid(format!("{what}: HTTP {code}: {}", message.trim())),
        }
    }

    fn unauthorized(&self, status: &str) -> SourceError {
        SourceError::Unauthorized {
            registry: self.reference.registry().to_owned(),
            detail: format!(
                "{status}; {}",
                self.credentials.describe(self.reference.registry())
            ),
        }
    }

    fn unreachable(&self, failure: Transport, error: &(dyn StdError + 'static)) -> SourceError {
        let chain = error_chain(error);
        let detail = if failure.timed_out {
            format!("timed out after {}", seconds(self.timeout))
        } else if has_io_kind(error, io::ErrorKind::ConnectionRefused) {
            format!("connection to {} refused", self.reference.registry())
        } else if failure.connect && chain.contains("dns error") {
            format!("cannot resolve the host name: {chain}")
        } else if failure.connect && !self.plain_http {
            // The classic cause is HTTPS spoken to a plain-HTTP registry.
            format!(
                "cannot connect over HTTPS ({chain}); if it only speaks plain HTTP, \
                 list it as an insecure host"
            )
        } else {
            chain
        };
        SourceError::Unreachable {
            registry: self.reference.registry().to_owned(),
            detail,
        }
    }

    fn invalid(&self, detail: String) -> SourceError {
        SourceError::Invalid {
            source_name: registry_name(&self.reference),
            detail,
        }
    }
}

/// Loopback registries and the insecure hosts get plain HTTP, as Docker does it.
fn speaks_plain_http(reference: &Reference, options: &RegistryOptions) -> bool {
    reference.is_loopback()
        || options
            .insecure_hosts
            .iter()
            .any(|host| host.eq_ignore_ascii_case(reference.registry()))
}

/// The oci-client configuration: one scheme for the one registry this source talks to,
/// and `timeout` on connecting and on each read.
fn client_config(plain_http: bool, timeout: Duration) -> ClientConfig {
    ClientConfig {
        protocol: if plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        connect_timeout: Some(timeout),
        read_timeout: Some(timeout),
        // Indexes are returned raw and resolved by the caller, never by oci-client.
        platform_resolver: None,
        ..ClientConfig::default()
    }
}

/// How a request failed below HTTP, as reqwest tells it.
#[derive(Clone, Copy)]
struct Transport {
    timed_out: bool,
    connect: bool,
}

fn not_found(what: &str, source_name: &str) -> SourceError {
    SourceError::NotFound {
        what: what.to_owned(),
        source_name: source_name.to_owned(),
    }
}

fn is_not_found_code(code: &OciErrorCode) -> bool {
    matches!(
        code,
        OciErrorCode::ManifestUnknown
            | OciErrorCode::BlobUnknown
            | OciErrorCode::NameUnknown
            | OciErrorCode::NotFound
            | OciErrorCode::ManifestBlobUnknown
    )
}

/// The code as the registry wrote it (`MANIFEST_INVALID`).
fn code_name(code: &OciErrorCode) -> String {
    match serde_json::to_value(code) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{code:?}"),
    }
}

fn registry_name(reference: &Reference) -> String {
    format!("registry {}", reference.registry())
}

fn repository_name(reference: &Reference) -> String {
    format!("{}/{}", reference.registry(), reference.repository())
}

/// oci-client refuses a manifest whose bytes do not hash to the digest asked for or to
/// the registry's Docker-Content-Digest. Besides corruption, that is what a signed schema1
/// manifest looks like: registries address it by its payload without the signatures,
/// which its bytes cannot reproduce, and oci-client offers no way to fetch it unchecked.
fn digest_mismatch(what: &str, expected: &str, actual: &str) -> String {
    format!(
        "{what} hashes to {actual}, but the registry or the reference says {expected}: \
         it is corrupt"
    )
}

/// `2 s`, or `1.5 s` for a fractional timeout.
fn seconds(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

/// An error and its causes, `: `-separated, skipping causes their parent already quotes:
/// reqwest's own message ("error sending request") says little without them.
fn error_chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

fn has_io_kind(error: &(dyn StdError + 'static), kind: io::ErrorKind) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == kind)
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// The outcome of looking for this registry's credentials in a Docker `config.json`.
struct CredentialLookup {
    /// The file consulted, or None when neither DOCKER_CONFIG nor HOME says where it is.
    path: Option<PathBuf>,
    found: Found,
}

#[derive(Clone, PartialEq, Eq)]
enum Found {
    /// There is no config.json (or nowhere to look for one).
    NoFile,
    /// The file has nothing for this registry.
    NoEntry,
    /// The file leaves this registry to a credential helper, which homerun does not run.
    Helper(String),
    /// Inline credentials, from `auths[key]`.
    Inline {
        key: String,
        username: String,
        password: String,
    },
}

// By hand, to keep the password out of logs and test failures.
impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoFile => f.write_str("NoFile"),
            Self::NoEntry => f.write_str("NoEntry"),
            Self::Helper(helper) => f.debug_tuple("Helper").field(helper).finish(),
            Self::Inline { key, username, .. } => f
                .debug_struct("Inline")
                .field("key", key)
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

impl CredentialLookup {
    /// Reads the config.json `options` point at (or the default one) for `registry`.
    async fn load(options: &RegistryOptions, registry: &str) -> Result<Self, SourceError> {
        let Some(path) = config_path(options) else {
            return Ok(Self {
                path: None,
                found: Found::NoFile,
            });
        };
        let found = match tokio::fs::read(&path).await {
            Ok(text) => {
                find_credentials(&text, registry).map_err(|detail| SourceError::Invalid {
                    source_name: path.display().to_string(),
                    detail: format!("malformed Docker config: {detail}"),
                })?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Found::NoFile,
            Err(source) => {
                return Err(SourceError::Io {
                    context: format!("reading Docker config {}", path.display()),
                    source,
                })
            }
        };
        Ok(Self {
            path: Some(path),
            found,
        })
    }

    fn auth(&self) -> RegistryAuth {
        match &self.found {
            Found::Inline {
                username, password, ..
            } => RegistryAuth::Basic(username.clone(), password.clone()),
            _ => RegistryAuth::Anonymous,
        }
    }

    /// What was looked for and found, for a refusal's detail.
    fn describe(&self, registry: &str) -> String {
        let Some(path) = &self.path else {
            return format!(
                "no credentials for {registry}: neither DOCKER_CONFIG nor HOME is set, so there is no config.json to read"
            );
        };
        let path = path.display();
        match &self.found {
            Found::NoFile => format!("no credentials for {registry} in {path} (no such file)"),
            Found::NoEntry => format!("no credentials for {registry} in {path}"),
            Found::Helper(helper) => format!(
                "{path} leaves {registry} to credential helper docker-credential-{helper}, but \
                 credential helpers are not supported; add an \"auths\" entry for {registry}"
            ),
            Found::Inline { key, username, .. } => format!(
                "the credentials of user {username:?} (auths[{key:?}] in {path}) were not accepted"
            ),
        }
    }
}

/// `options.docker_config`, else `$DOCKER_CONFIG/config.json`, else
/// `$HOME/.docker/config.json`.
fn config_path(options: &RegistryOptions) -> Option<PathBuf> {
    if let Some(path) = &options.docker_config {
        return Some(path.clone());
    }
    let non_empty = |name| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(dir) = non_empty("DOCKER_CONFIG") {
        return Some(Path::new(&dir).join("config.json"));
    }
    non_empty("HOME").map(|home| Path::new(&home).join(".docker/config.json"))
}

/// The parts of config.json homerun reads.
#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

/// An `auths` entry. `identitytoken` and `registrytoken` are ignored: they are OAuth
/// tokens for registries homerun reaches anonymously or with a password.
#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// Finds `registry`'s credentials in the text of a config.json. The error is what is
/// wrong with the file.
fn find_credentials(text: &[u8], registry: &str) -> Result<Found, String> {
    let config: DockerConfig = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    // An exact key first, then any key naming the same host (URL keys, Docker Hub's
    // aliases), in key order so the choice is stable.
    let exact = config.auths.get_key_value(registry);
    let by_host = config
        .auths
        .iter()
        .filter(|(key, _)| names_registry(key, registry));
    for (key, entry) in exact.into_iter().chain(by_host) {
        if let Some((username, password)) = entry_credentials(key, entry)? {
            return Ok(Found::Inline {
                key: key.clone(),
                username,
                password,
            });
        }
    }
    let helper = config
        .cred_helpers
        .iter()
        .find(|(key, _)| names_registry(key, registry))
        .map(|(_, helper)| helper)
        .or(config.creds_store.as_ref())
        .filter(|helper| !helper.is_empty());
    Ok(match helper {
        Some(helper) => Found::Helper(helper.clone()),
        None => Found::NoEntry,
    })
}

/// The credentials an `auths` entry holds, if it holds any (with a credential store,
/// Docker leaves empty entries behind).
fn entry_credentials(key: &str, entry: &AuthEntry) -> Result<Option<(String, String)>, String> {
    if let Some(auth) = entry
        .auth
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        let bad = |why: &str| format!("auths[{key:?}].auth {why}");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth)
            .map_err(|e| bad(&format!("is not base64: {e}")))?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad("is not UTF-8 text"))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| bad("does not decode to \"user:password\""))?;
        return Ok(Some((username.to_owned(), password.to_owned())));
    }
    match (&entry.username, &entry.password) {
        (Some(username), Some(password)) if !username.is_empty() => {
            Ok(Some((username.clone(), password.clone())))
        }
        _ => Ok(None),
    }
}

/// Whether a config.json key (`host[:port]`, or a URL such as `https://host[:port]/v1/`)
/// names `registry`.
fn names_registry(key: &str, registry: &str) -> bool {
    let without_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = without_scheme.split('/').next().unwrap_or(without_scheme);
    if registry == DOCKER_HUB {
        DOCKER_HUB_ALIASES
            .iter()
            .any(|alias| host.eq_ignore_ascii_case(alias))
    } else {
        host.eq_ignore_ascii_case(registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline(key: &str, username: &str, password: &str) -> Found {
        Found::Inline {
            key: key.into(),
            username: username.into(),
            password: password.into(),
        }
    }

    fn base64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    fn find(config: &str, registry: &str) -> Result<Found, String> {
        find_credentials(config.as_bytes(), registry)
    }

    #[test]
    fn bare_host_key_with_base64_auth() {
        let config = format!(
            r#"{{"auths": {{"127.0.0.1:5000": {{"auth": "{}"}}}}}}"#,
            base64("alice:s3cret:with:colons")
        );
        assert_eq!(
            find(&config, "127.0.0.1:5000"),
            Ok(inline("127.0.0.1:5000", "alice", "s3cret:with:colons"))
        );
    }

    #[test]
    fn url_keys_match_their_host() {
        for key in [
            "https://registry.example:5000",
            "http://registry.example:5000",
            "https://registry.example:5000/v2/",
        ] {
            let config = format!(
                r#"{{"auths": {{"{key}": {{"auth": "{}"}}}}}}"#,
                base64("u:p")
            );
            assert_eq!(
                find(&config, "registry.example:5000"),
                Ok(inline(key, "u", "p")),
                "key {key}"
            );
        }
    }

    #[test]
    fn another_port_or_host_does_not_match() {
        let config = format!(
            r#"{{"auths": {{"registry.example:5001": {{"auth": "{0}"}},
                           "https://other.example": {{"auth": "{0}"}}}}}}"#,
            base64("u:p")
        );
        assert_eq!(find(&config, "registry.example:5000"), Ok(Found::NoEntry));
        assert_eq!(find(&config, "registry.example"), Ok(Found::NoEntry));
    }

    #[test]
    fn docker_hub_classic_key() {
        let config = format!(
            r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{}"}}}}}}"#,
            base64("hubuser:hubpass")
        );
        assert_eq!(
            find(&config, "docker.io"),
            Ok(inline("https://index.docker.io/v1/", "hubuser", "hubpass"))
        );
    }

    #[test]
    fn exact_key_wins_over_url_key() {
        let config = format!(
            r#"{{"auths": {{"http://host:1": {{"auth": "{}"}}, "host:1": {{"auth": "{}"}}}}}}"#,
            base64("url:x"),
            base64("exact:y")
        );
        assert_eq!(find(&config, "host:1"), Ok(inline("host:1", "exact", "y")));
    }

    #[test]
    fn username_and_password_fields() {
        let config =
            r#"{"auths": {"host:1": {"username": "bob", "password": "pw", "identitytoken": ""}}}"#;
        assert_eq!(find(config, "host:1"), Ok(inline("host:1", "bob", "pw")));
    }

    #[test]
    fn helper_is_noted_when_no_inline_entry() {
        let config = r#"{"auths": {"host:1": {}}, "credHelpers": {"host:1": "pass"}}"#;
        assert_eq!(find(config, "host:1"), Ok(Found::Helper("pass".into())));
        let config = r#"{"credsStore": "desktop"}"#;
        assert_eq!(find(config, "host:1"), Ok(Found::Helper("desktop".into())));
    }

    #[test]
    fn inline_entry_beats_helper() {
        let config = format!(
            r#"{{"auths": {{"host:1": {{"auth": "{}"}}}}, "credsStore": "desktop"}}"#,
            base64("u:p")
        );
        assert_eq!(find(&config, "host:1"), Ok(inline("host:1", "u", "p")));
    }

    #[test]
    fn empty_or_missing_sections_mean_no_entry() {
        assert_eq!(find("{}", "host:1"), Ok(Found::NoEntry));
        assert_eq!(find(r#"{"auths": {}}"#, "host:1"), Ok(Found::NoEntry));
    }

    #[test]
    fn bad_auth_values_are_errors() {
        let not_base64 = r#"{"auths": {"host:1": {"auth": "***"}}}"#;
        assert!(find(not_base64, "host:1").is_err_and(|e| e.contains("not base64")));
        let no_colon = format!(
            r#"{{"auths": {{"host:1": {{"auth": "{}"}}}}}}"#,
            base64("user")
        );
        assert!(find(&no_colon, "host:1").is_err_and(|e| e.contains("user:password")));
        // Another registry's broken entry is none of this registry's business.
        assert_eq!(find(not_base64, "host:2"), Ok(Found::NoEntry));
    }

    #[test]
    fn debug_hides_the_password() {
        let shown = format!("{:?}", inline("k", "u", "hunter2"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[tokio::test]
    async fn malformed_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{ not json").expect("write config");
        let options = RegistryOptions {
            docker_config: Some(path.clone()),
            ..RegistryOptions::default()
        };
        let error = CredentialLookup::load(&options, "host:1")
            .await
            .err()
            .expect("malformed config is refused");
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(matches!(error, SourceError::Invalid { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn missing_file_means_anonymous_and_says_where_it_looked() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config.json");
        let options = RegistryOptions {
            docker_config: Some(path.clone()),
            ..RegistryOptions::default()
        };
        let lookup = CredentialLookup::load(&options, "host:1")
            .await
            .expect("missing file is fine");
        assert_eq!(lookup.found, Found::NoFile);
        assert!(matches!(lookup.auth(), RegistryAuth::Anonymous));
        let described = lookup.describe("host:1");
        assert!(
            described.contains(&path.display().to_string()),
            "{described}"
        );
        assert!(
            described.contains("no credentials for host:1"),
            "{described}"
        );
    }

    #[test]
    fn helper_description_says_unsupported() {
        let lookup = CredentialLookup {
            path: Some("/x/config.json".into()),
            found: Found::Helper("pass".into()),
        };
        let described = lookup.describe("host:1");
        assert!(described.contains("docker-credential-pass"), "{described}");
        assert!(described.contains("not supported"), "{described}");
    }

    #[test]
    fn timeouts_read_naturally() {
        assert_eq!(seconds(Duration::from_secs(2)), "2 s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
    }
}
