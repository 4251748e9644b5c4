//! The RSA keys that sign ID tokens. They persist in one 0600 JSON file; the newest signs,
//! and the one before it stays published (and accepted) after a rotation, so tokens signed
//! just before a rotation verify until they expire, as Google keeps its previous key in its
//! JWKS.

use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{self, KeyPair as _, RsaPublicKeyComponents};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::files::{read_private, write_private};
use crate::IdentityError;

/// Keys kept published: the signing one and the one before it.
const KEYS_KEPT: usize = 2;

struct SigningKey {
    kid: String,
    created: u64,
    pair: KeyPair,
    public: PublicKeyComponents<Vec<u8>>,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    /// Unix seconds.
    created: u64,
    /// PKCS#8 DER, base64.
    pkcs8: String,
}

/// The signing keys, newest last.
pub struct SigningKeys {
    path: PathBuf,
    keys: Vec<SigningKey>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("SigningKeys")
            .field("path", &self.path)
            .field("kids", &kids)
            .finish()
    }
}

impl SigningKeys {
    /// Loads the keys at `path`, making the first one if there is none, and rotating when
    /// the signing key is older than `max_age_secs` (at `now`, Unix seconds).
    pub fn load_or_create(
        path: &Path,
        now: u64,
        max_age_secs: u64,
    ) -> Result<SigningKeys, IdentityError> {
        let mut keys = SigningKeys {
            path: path.to_path_buf(),
            keys: Vec::new(),
        };
        if let Some(bytes) = read_private(path)? {
            let stored: Vec<StoredKey> = serde_json::from_slice(&bytes)
                .map_err(|e| IdentityError::Corrupt(format!("{}: {e}", path.display())))?;
            for s in stored {
                let der = STANDARD.decode(&s.pkcs8).map_err(|e| {
                    IdentityError::Corrupt(format!("{}: key {}: {e}", path.display(), s.kid))
                })?;
                let pair = KeyPair::from_pkcs8(&der).map_err(|e| {
                    IdentityError::Corrupt(format!("{}: key {}: {e}", path.display(), s.kid))
                })?;
                keys.keys.push(SigningKey::new(pair, s.created));
            }
        }
        match keys.keys.last() {
            Some(k) if now.saturating_sub(k.created) < max_age_secs => {}
            _ => keys.rotate(now)?,
        }
        Ok(keys)
    }

    /// Makes a new signing key; the previous one stays published, older ones go.
    pub fn rotate(&mut self, now: u64) -> Result<(), IdentityError> {
        let pair = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| IdentityError::Crypto("generating an RSA key".into()))?;
        let mut keys = std::mem::take(&mut self.keys);
        keys.push(SigningKey::new(pair, now));
        let excess = keys.len().saturating_sub(KEYS_KEPT);
        keys.drain(..excess);
        let stored: Vec<StoredKey> = keys
            .iter()
            .map(|k| {
                let der = k
                    .pair
                    .as_der()
                    .map_err(|_| IdentityError::Crypto("encoding an RSA key".into()))?;
                Ok(StoredKey {
                    kid: k.kid.clone(),
                    created: k.created,
                    pkcs8: STANDARD.encode(der.as_ref()),
                })
            })
            .collect::<Result<_, IdentityError>>()?;
        let json = serde_json::to_vec_pretty(&stored).expect("keys serialize");
        write_private(&self.path, &json)?;
        self.keys = keys;
        tracing::info!(kid = %self.signing_kid(), "ID token signing key made");
        Ok(())
    }

    /// The key id of the key that signs.
    pub fn signing_kid(&self) -> &str {
        &self.keys.last().expect("at least one key").kid
    }

    /// RS256 (RSASSA-PKCS1-v1_5 with SHA-256) of `message` by the signing key.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, IdentityError> {
        let key = self.keys.last().expect("at least one key");
        let mut sig = vec![0; key.pair.public_modulus_len()];
        key.pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                message,
                &mut sig,
            )
            .map_err(|_| IdentityError::Crypto("signing".into()))?;
        Ok(sig)
    }

    /// Whether `sig` is an RS256 signature of `message` by the published key `kid`.
    pub fn verify(&self, kid: &str, message: &[u8], sig: &[u8]) -> bool {
        let Some(key) = self.keys.iter().find(|k| k.kid == kid) else {
            return false;
        };
        RsaPublicKeyComponents {
            n: key.public.n.as_slice(),
            e: key.public.e.as_slice(),
        }
        .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
        .is_ok()
    }

    /// The public keys as a JSON Web Key Set (RFC 7517), newest first as Google lists them.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .rev()
            .map(|k| {
                json!({
                    "kty": "RSA",
                    "alg": "RS256",
                    "use": "sig",
                    "kid": k.kid,
                    "n": URL_SAFE_NO_PAD.encode(&k.public.n),
                    "e": URL_SAFE_NO_PAD.encode(&k.public.e),
                })
            })
            .collect();
        json!({ "keys": keys })
    }
}

impl SigningKey {
    fn new(pair: KeyPair, created: u64) -> SigningKey {
        let public = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        // Google's kids are 40 hex digits; a hash of the modulus is stable and unique.
        let kid = hex::encode(&Sha256::digest(&public.n)[..20]);
        SigningKey {
            kid,
            created,
            pair,
            public,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persists_rotates_and_keeps_the_previous_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let mut keys = SigningKeys::load_or_create(&path, 1000, 100).unwrap();
        let first = keys.signing_kid().to_string();
        let sig = keys.sign(b"hello").unwrap();
        assert!(keys.verify(&first, b"hello", &sig));
        assert!(!keys.verify(&first, b"hellO", &sig));

        // Loaded again within its age: the same key.
        let again = SigningKeys::load_or_create(&path, 1050, 100).unwrap();
        assert_eq!(again.signing_kid(), first);
        assert!(again.verify(&first, b"hello", &sig));

        // Rotation keeps the previous key verifying; a second one drops it.
        keys.rotate(1200).unwrap();
        let second = keys.signing_kid().to_string();
        assert_ne!(second, first);
        assert!(keys.verify(&first, b"hello", &sig));
        assert_eq!(keys.jwks()["keys"].as_array().unwrap().len(), 2);
        assert_eq!(keys.jwks()["keys"][0]["kid"], second.as_str());
        keys.rotate(1300).unwrap();
        assert!(!keys.verify(&first, b"hello", &sig));

        // Too old at load: rotated.
        let aged = SigningKeys::load_or_create(&path, 5000, 100).unwrap();
        assert_ne!(aged.signing_kid(), keys.signing_kid());
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        write_private(&path, b"not json").unwrap();
        let err = SigningKeys::load_or_create(&path, 0, 100)
            .unwrap_err()
            .to_string();
        assert!(err.contains("keys.json"), "{err}");
    }
}
