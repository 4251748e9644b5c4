//! homerun's identities, as Google's do it for Cloud Run:
//!
//! - [`Authority`]: the admin token, the RSA keys that sign ID tokens (RS256, published as
//!   a JWKS with an OpenID discovery document), opaque access tokens, and the key that
//!   seals secrets at rest; all persisted 0600 in the data directory.
//! - [`metadata`]: the metadata server instances reach at `metadata.google.internal`,
//!   which knows a caller by its source address ([`Directory`]).
//! - [`discovery_router`]: the discovery document and JWKS, served on the API's address.
//!
//! Which principal may do what is the API's business (`api::iam`); this crate only says who
//! a token speaks for.

mod access;
mod authority;
mod files;
mod jwt;
mod keys;
pub mod metadata;
mod seal;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};

pub use authority::{
    now, unique_id, AccessToken, Authority, Verified, ACCESS_TOKEN_LIFETIME_SECS,
    ID_TOKEN_LIFETIME_SECS,
};
pub use keys::SigningKeys;
pub use metadata::{Directory, InstanceIdentity};
pub use seal::SealingKey;

/// Where the discovery document says the JWKS is.
pub const JWKS_PATH: &str = "/oauth2/v3/certs";
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// The longest ID-token audience homerun signs (a URL; Google's limit is of this order).
pub const MAX_AUDIENCE: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Insecure(String),
    #[error("corrupt identity file: {0}")]
    Corrupt(String),
    #[error("crypto: {0}")]
    Crypto(String),
    /// A request homerun will not sign (an empty or oversized audience).
    #[error("{0}")]
    Invalid(String),
}

impl IdentityError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        IdentityError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
}

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], IdentityError> {
    let mut b = [0u8; N];
    aws_lc_rs::rand::fill(&mut b)
        .map_err(|_| IdentityError::Crypto("the system's random source failed".into()))?;
    Ok(b)
}

/// A new `instance/id`: 64 hex digits, unique per instance.
pub fn new_instance_id() -> String {
    hex::encode(random_bytes::<32>().unwrap_or_else(|_| {
        // The system random source failing is not something to serve instances through;
        // a time-derived id still keeps instances apart.
        let mut b = [0u8; 32];
        b[..16].copy_from_slice(
            &std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
                .to_be_bytes(),
        );
        b
    }))
}

/// The OpenID discovery document and the JWKS, unauthenticated, for the API's address.
pub fn discovery_router(authority: Arc<Authority>) -> Router {
    let a = authority.clone();
    Router::new()
        .route(
            DISCOVERY_PATH,
            get(move || async move { Json(a.discovery()) }),
        )
        .route(
            JWKS_PATH,
            get(move || async move { Json(authority.jwks()) }),
        )
}
