//! homerun as an identity provider: what `homerun up` keeps in `DATA_DIR/identity` and the
//! tokens it issues and checks.
//!
//! | file | what |
//! | --- | --- |
//! | `admin-token` (in the data directory itself) | the admin token, for the CLI on this machine |
//! | `identity/signing-keys.json` | the RSA keys of ID tokens |
//! | `identity/access-token.key` | the HMAC key of access tokens |
//! | `identity/secrets.key` | the AES-256-GCM key of secrets at rest |

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::constant_time;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::access::AccessKey;
use crate::files::{read_private, write_private};
use crate::keys::SigningKeys;
use crate::seal::SealingKey;
use crate::{jwt, random_bytes, IdentityError, TokenError};

/// ID tokens and access tokens live an hour, as Google's (access tokens 3599 s).
pub const ID_TOKEN_LIFETIME_SECS: u64 = 3600;
pub const ACCESS_TOKEN_LIFETIME_SECS: u64 = 3599;
/// The signing key is replaced at a start when older than this; the one before stays
/// published.
pub const SIGNING_KEY_MAX_AGE_SECS: u64 = 7 * 24 * 3600;
/// Tolerated clock difference when checking an ID token's times.
const CLOCK_SKEW_SECS: u64 = 30;
/// ID tokens remembered as verified. A caller sends the same token for up to an hour, and
/// an RS256 check costs ~25 us, a quarter of the router's own work per request; a lookup
/// costs well under one. When full, the memory is emptied (no eviction order to keep).
/// Keyed by the token's SHA-256, so an entry's size does not depend on the token's.
const VERIFIED_CACHE: usize = 4096;

/// Whom a bearer token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// The admin token: homerun's operator.
    Admin,
    /// A service account, by an access token (`audience` None) or an ID token.
    ServiceAccount {
        email: String,
        audience: Option<String>,
    },
}

/// An access token as the metadata server and `generateAccessToken` hand it out.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: String,
    pub expires_in: u64,
    /// Unix seconds.
    pub expires_at: u64,
}

pub struct Authority {
    issuer: String,
    admin_token: String,
    admin_token_path: PathBuf,
    keys: RwLock<SigningKeys>,
    access: AccessKey,
    sealing: SealingKey,
    /// SHA-256 of an ID token → (whom it speaks for, its `exp`).
    verified: Mutex<HashMap<[u8; 32], (Verified, u64)>>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("issuer", &self.issuer)
            .field("admin_token_path", &self.admin_token_path)
            .finish_non_exhaustive()
    }
}

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A service account's numeric unique id (the `sub` of its tokens): 21 digits, stable for
/// an email, as Google's are.
pub fn unique_id(email: &str) -> String {
    let h = Sha256::digest(email.as_bytes());
    let n = u128::from_be_bytes(h[..16].try_into().expect("16 bytes"));
    format!("1{:020}", n % 10u128.pow(20))
}

impl Authority {
    /// Opens (making what is missing) the identity files of `data_dir`. `issuer` is the URL
    /// at which the discovery document is served (the API's), and the `iss` of ID tokens.
    pub fn open(data_dir: &Path, issuer: &str) -> Result<Authority, IdentityError> {
        Self::open_at(data_dir, issuer, now(), false)
    }

    /// As [`Authority::open`], at `now`, rotating the signing key if `rotate`.
    pub fn open_at(
        data_dir: &Path,
        issuer: &str,
        now: u64,
        rotate: bool,
    ) -> Result<Authority, IdentityError> {
        let dir = data_dir.join("identity");
        let admin_token_path = data_dir.join("admin-token");
        let admin_token = match read_private(&admin_token_path)? {
            Some(t) => String::from_utf8(t)
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    IdentityError::Corrupt(format!(
                        "{} does not hold a token",
                        admin_token_path.display()
                    ))
                })?,
            None => {
                let token = format!("hra.{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()?));
                write_private(&admin_token_path, format!("{token}\n").as_bytes())?;
                tracing::info!(path = %admin_token_path.display(), "admin token made");
                token
            }
        };
        let mut keys = SigningKeys::load_or_create(
            &dir.join("signing-keys.json"),
            now,
            SIGNING_KEY_MAX_AGE_SECS,
        )?;
        if rotate {
            keys.rotate(now)?;
        }
        Ok(Authority {
            issuer: issuer.trim_end_matches('/').to_string(),
            admin_token,
            admin_token_path,
            keys: RwLock::new(keys),
            access: AccessKey::load_or_create(&dir.join("access-token.key"))?,
            sealing: SealingKey::load_or_create(&dir.join("secrets.key"))?,
            verified: Mutex::new(HashMap::new()),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn admin_token_path(&self) -> &Path {
        &self.admin_token_path
    }

    /// The key that seals secrets at rest.
    pub fn sealing(&self) -> &SealingKey {
        &self.sealing
    }

    /// An ID token for `email` with audience `audience`, valid for an hour from `now`.
    pub fn id_token(&self, email: &str, audience: &str, now: u64) -> Result<String, IdentityError> {
        if audience.is_empty() || audience.len() > crate::MAX_AUDIENCE {
            return Err(IdentityError::Invalid(format!(
                "an audience must be 1 to {} bytes",
                crate::MAX_AUDIENCE
            )));
        }
        let sub = unique_id(email);
        let claims = json!({
            "iss": self.issuer,
            "aud": audience,
            "azp": sub,
            "sub": sub,
            "email": email,
            "email_verified": true,
            "iat": now,
            "exp": now + ID_TOKEN_LIFETIME_SECS,
        });
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        jwt::encode(&keys, &claims)
    }

    /// An access token for `email`, valid for 3599 s from `now`.
    pub fn access_token(&self, email: &str, now: u64) -> AccessToken {
        let expires_at = now + ACCESS_TOKEN_LIFETIME_SECS;
        AccessToken {
            token: self.access.issue(email, expires_at),
            expires_in: ACCESS_TOKEN_LIFETIME_SECS,
            expires_at,
        }
    }

    /// Whom `bearer` (the token alone, without `Bearer `) speaks for at `now`.
    pub fn verify(&self, bearer: &str, now: u64) -> Result<Verified, TokenError> {
        if constant_time::verify_slices_are_equal(bearer.as_bytes(), self.admin_token.as_bytes())
            .is_ok()
        {
            return Ok(Verified::Admin);
        }
        if bearer.starts_with(crate::access::PREFIX) {
            let email = self.access.check(bearer, now)?;
            return Ok(Verified::ServiceAccount {
                email,
                audience: None,
            });
        }
        if !jwt::looks_like_jwt(bearer) {
            return Err(TokenError::Malformed(
                "neither an ID token nor an access token of this homerun".into(),
            ));
        }
        let key: [u8; 32] = Sha256::digest(bearer.as_bytes()).into();
        let remembered = self
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some((verified, exp)) = remembered {
            if exp + CLOCK_SKEW_SECS <= now {
                return Err(TokenError::Expired);
            }
            return Ok(verified);
        }
        self.verify_id_token(bearer, key, now)
    }

    /// Checks an ID token's signature, issuer and times, and remembers it when valid.
    fn verify_id_token(
        &self,
        bearer: &str,
        key: [u8; 32],
        now: u64,
    ) -> Result<Verified, TokenError> {
        let claims = {
            let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
            jwt::decode(&keys, bearer)?
        };
        if claims["iss"] != self.issuer.as_str() {
            return Err(TokenError::Malformed(format!(
                "issuer {} is not {}",
                claims["iss"], self.issuer
            )));
        }
        let exp = claims["exp"].as_u64().unwrap_or(0);
        if exp + CLOCK_SKEW_SECS <= now {
            return Err(TokenError::Expired);
        }
        if claims["iat"].as_u64().unwrap_or(u64::MAX) > now + CLOCK_SKEW_SECS {
            return Err(TokenError::Malformed("issued in the future".into()));
        }
        let (Some(email), Some(aud)) = (claims["email"].as_str(), claims["aud"].as_str()) else {
            return Err(TokenError::Malformed("no email or audience".into()));
        };
        let verified = Verified::ServiceAccount {
            email: email.to_string(),
            audience: Some(aud.to_string()),
        };
        let mut cache = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= VERIFIED_CACHE {
            cache.clear();
        }
        cache.insert(key, (verified.clone(), exp));
        Ok(verified)
    }

    /// The public keys as a JWKS (`/oauth2/v3/certs`).
    pub fn jwks(&self) -> Value {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).jwks()
    }

    /// The OpenID Provider metadata (`/.well-known/openid-configuration`).
    pub fn discovery(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}{}", self.issuer, crate::JWKS_PATH),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["aud", "azp", "email", "email_verified", "exp", "iat", "iss", "sub"],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_and_verifies_each_kind_of_token() {
        let dir = tempfile::tempdir().unwrap();
        let a = Authority::open_at(dir.path(), "http://127.0.0.1:8090/", 1000, false).unwrap();
        assert_eq!(a.issuer(), "http://127.0.0.1:8090");
        let admin = std::fs::read_to_string(dir.path().join("admin-token")).unwrap();
        assert_eq!(a.verify(admin.trim(), 1000).unwrap(), Verified::Admin);

        let email = "sa@p.iam.gserviceaccount.com";
        let id = a
            .id_token(email, "http://hello.localhost:8080", 1000)
            .unwrap();
        assert_eq!(
            a.verify(&id, 1001).unwrap(),
            Verified::ServiceAccount {
                email: email.into(),
                audience: Some("http://hello.localhost:8080".into())
            }
        );
        // Remembered as verified, and still expiring on time.
        assert!(a.verify(&id, 1002).is_ok());
        assert!(matches!(
            a.verify(&id, 1000 + 3600 + 31),
            Err(TokenError::Expired)
        ));

        let access = a.access_token(email, 1000);
        assert_eq!(access.expires_in, 3599);
        assert_eq!(
            a.verify(&access.token, 2000).unwrap(),
            Verified::ServiceAccount {
                email: email.into(),
                audience: None
            }
        );
        assert!(matches!(
            a.verify(&access.token, 5000),
            Err(TokenError::Expired)
        ));
        assert!(a.verify("hra.wrong", 1000).is_err());
        assert!(a.verify("", 1000).is_err());

        // Reopened: the same admin token and keys; another data directory's refuse them.
        let b = Authority::open_at(dir.path(), "http://127.0.0.1:8090", 1100, false).unwrap();
        assert!(b.verify(&id, 1100).is_ok());
        assert!(b.verify(admin.trim(), 1100).is_ok());
        let other = tempfile::tempdir().unwrap();
        let c = Authority::open_at(other.path(), "http://127.0.0.1:8090", 1100, false).unwrap();
        assert!(matches!(c.verify(&id, 1100), Err(TokenError::BadSignature)));
        assert!(c.verify(&access.token, 1100).is_err());

        // A token of another issuer (same keys) is refused.
        let d = Authority::open_at(dir.path(), "http://elsewhere", 1100, false).unwrap();
        assert!(d.verify(&id, 1100).is_err());
    }

    #[test]
    fn a_standard_jwt_library_verifies_id_tokens_against_the_jwks() {
        let dir = tempfile::tempdir().unwrap();
        let a = Authority::open_at(dir.path(), "http://issuer.test", now(), false).unwrap();
        let token = a
            .id_token("sa@p.iam.gserviceaccount.com", "aud-1", now())
            .unwrap();
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(a.jwks()).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&["aud-1"]);
        validation.set_issuer(&["http://issuer.test"]);
        let data = jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap();
        assert_eq!(data.claims["email"], "sa@p.iam.gserviceaccount.com");
        assert_eq!(data.claims["email_verified"], true);
        assert_eq!(data.claims["sub"].as_str().unwrap().len(), 21);
        validation.set_audience(&["aud-2"]);
        assert!(jsonwebtoken::decode::<Value>(&token, &key, &validation).is_err());
    }

    #[test]
    fn unique_ids_are_21_digits_and_stable() {
        let a = unique_id("a@b");
        assert_eq!(a.len(), 21);
        assert!(a.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(a, unique_id("a@b"));
        assert_ne!(a, unique_id("a@c"));
    }
}
