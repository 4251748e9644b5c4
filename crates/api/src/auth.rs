//! Who calls the Admin API: the [`Authenticator`] a bearer token goes through (the
//! `identity` crate implements it) and the [`Caller`] it makes of it.
//!
//! [`crate::http::ApiState::with_auth`] turns authentication on; then every route asks
//! for `Authorization: Bearer TOKEN` and checks the caller's permission (see
//! [`crate::iam`] for the roles and [`crate::http`] for the answers).

use crate::iam::{policy_allows, Policy};

/// Turns a bearer token into a caller.
pub trait Authenticator: Send + Sync {
    /// The caller `bearer` (the token, without `Bearer `) stands for, or why it does not
    /// stand for anyone (unknown, expired).
    fn authenticate(&self, bearer: &str) -> Result<Caller, AuthFailure>;
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Caller {
    /// homerun's admin token: may do everything.
    Admin,
    /// An IAM member (`serviceAccount:x@p.iam.gserviceaccount.com`, `user:a@b.c`): may do
    /// what the policies grant it.
    Member(String),
}

impl Caller {
    /// The member, `None` for the admin.
    pub fn member(&self) -> Option<&str> {
        match self {
            Caller::Admin => None,
            Caller::Member(m) => Some(m),
        }
    }

    /// Whether the caller holds `permission` under the union of `policies`.
    pub fn may(&self, policies: &[&Policy], permission: &str) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Member(m) => policy_allows(policies, m, permission),
        }
    }
}

/// A token that authenticates no one; the message says why ("the token expired").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AuthFailure {
    pub message: String,
}

impl AuthFailure {
    pub fn new(message: impl Into<String>) -> Self {
        AuthFailure {
            message: message.into(),
        }
    }
}
