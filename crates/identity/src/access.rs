//! Access tokens: opaque to their holders, checked by homerun alone. A token is
//! `hr1.` + base64url(JSON `{"sub": email, "exp": unix}`) + `.` + base64url(HMAC-SHA256),
//! keyed by a secret in the data directory, so checking one needs no lookup and tokens
//! survive a restart of homerun, as they would a restart of Google's token service.

use std::path::Path;

use aws_lc_rs::{constant_time, hmac};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::files::{read_private, write_private};
use crate::{random_bytes, IdentityError, TokenError};

pub(crate) const PREFIX: &str = "hr1.";

#[derive(Serialize, Deserialize)]
struct Payload {
    sub: String,
    exp: u64,
}

pub struct AccessKey {
    key: hmac::Key,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessKey(..)")
    }
}

impl AccessKey {
    pub fn load_or_create(path: &Path) -> Result<AccessKey, IdentityError> {
        let secret = match read_private(path)? {
            Some(s) if s.len() == 32 => s,
            Some(s) => {
                return Err(IdentityError::Corrupt(format!(
                    "{} holds {} bytes, not 32",
                    path.display(),
                    s.len()
                )))
            }
            None => {
                let s = random_bytes::<32>()?.to_vec();
                write_private(path, &s)?;
                s
            }
        };
        Ok(AccessKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
        })
    }

    /// A token for `email` valid until `exp` (Unix seconds).
    pub fn issue(&self, email: &str, exp: u64) -> String {
        let payload = serde_json::to_vec(&Payload {
            sub: email.to_string(),
            exp,
        })
        .expect("payload serializes");
        let body = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(payload));
        let tag = hmac::sign(&self.key, body.as_bytes());
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The email a token was issued to, if it is ours and unexpired at `now`.
    pub fn check(&self, token: &str, now: u64) -> Result<String, TokenError> {
        let Some((body, tag)) = token.rsplit_once('.') else {
            return Err(TokenError::Malformed("not an access token".into()));
        };
        let Some(payload) = body.strip_prefix(PREFIX) else {
            return Err(TokenError::Malformed("not an access token".into()));
        };
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed("not an access token".into()))?;
        let expected = hmac::sign(&self.key, body.as_bytes());
        if constant_time::verify_slices_are_equal(expected.as_ref(), &tag).is_err() {
            return Err(TokenError::BadSignature);
        }
        let payload: Payload = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or_else(|| TokenError::Malformed("an access token's payload".into()))?;
        if payload.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(payload.sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_checks_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        let key = AccessKey::load_or_create(&dir.path().join("a")).unwrap();
        let token = key.issue("sa@p.iam.gserviceaccount.com", 100);
        assert_eq!(
            key.check(&token, 99).unwrap(),
            "sa@p.iam.gserviceaccount.com"
        );
        assert!(matches!(key.check(&token, 100), Err(TokenError::Expired)));
        // Same key after a reload; another key refuses it.
        let again = AccessKey::load_or_create(&dir.path().join("a")).unwrap();
        assert!(again.check(&token, 50).is_ok());
        let other = AccessKey::load_or_create(&dir.path().join("b")).unwrap();
        assert!(matches!(
            other.check(&token, 50),
            Err(TokenError::BadSignature)
        ));
        // A changed payload fails the MAC.
        let (body, tag) = token.rsplit_once('.').unwrap();
        let forged = format!("{}x.{tag}", body);
        assert!(key.check(&forged, 50).is_err());
        assert!(key.check("Bearer nonsense", 50).is_err());
    }
}
