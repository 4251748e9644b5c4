//! Secrets at rest: AES-256-GCM under a key in the data directory (0600). A sealed value is
//! `hs1` + a random 96-bit nonce + ciphertext and tag; the additional data (the secret
//! version's name) binds a ciphertext to its record, so one cannot be moved onto another.

use std::path::Path;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

use crate::files::{read_private, write_private};
use crate::{random_bytes, IdentityError};

const MAGIC: &[u8] = b"hs1";

pub struct SealingKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

impl SealingKey {
    pub fn load_or_create(path: &Path) -> Result<SealingKey, IdentityError> {
        let secret = match read_private(path)? {
            Some(s) if s.len() == 32 => s,
            Some(s) => {
                return Err(IdentityError::Corrupt(format!(
                    "{} holds {} bytes, not a 32-byte key",
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
        let key = UnboundKey::new(&AES_256_GCM, &secret)
            .map_err(|_| IdentityError::Crypto("loading the sealing key".into()))?;
        Ok(SealingKey {
            key: LessSafeKey::new(key),
        })
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, IdentityError> {
        let nonce = random_bytes::<NONCE_LEN>()?;
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| IdentityError::Crypto("sealing".into()))?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + buf.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, IdentityError> {
        let rest = sealed
            .strip_prefix(MAGIC)
            .filter(|r| r.len() >= NONCE_LEN)
            .ok_or_else(|| IdentityError::Crypto("not a sealed value".into()))?;
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| IdentityError::Crypto("a sealed value's nonce".into()))?;
        let mut buf = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| {
                IdentityError::Crypto(
                    "a sealed value does not open with this data directory's key".into(),
                )
            })?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_opens_and_binds_to_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let key = SealingKey::load_or_create(&dir.path().join("s")).unwrap();
        let sealed = key
            .seal(b"hunter2", b"projects/p/secrets/s/versions/1")
            .unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(
            key.open(&sealed, b"projects/p/secrets/s/versions/1")
                .unwrap(),
            b"hunter2"
        );
        assert!(key
            .open(&sealed, b"projects/p/secrets/s/versions/2")
            .is_err());
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(key
            .open(&flipped, b"projects/p/secrets/s/versions/1")
            .is_err());
        // Two seals of one value differ (fresh nonces).
        assert_ne!(
            sealed,
            key.seal(b"hunter2", b"projects/p/secrets/s/versions/1")
                .unwrap()
        );
        let again = SealingKey::load_or_create(&dir.path().join("s")).unwrap();
        assert_eq!(
            again
                .open(&sealed, b"projects/p/secrets/s/versions/1")
                .unwrap(),
            b"hunter2"
        );
    }
}
