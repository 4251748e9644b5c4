//! Compact JWS with RS256, the only form ID tokens take. Written here rather than taken
//! from a JWT crate: signing needs our own persisted aws-lc-rs keys, and the format is
//! three base64url parts (RFC 7515 §7.1); tests verify our tokens with `jsonwebtoken`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::keys::SigningKeys;
use crate::{IdentityError, TokenError};

/// Signs `claims` with the signing key: `header.payload.signature`.
pub fn encode(keys: &SigningKeys, claims: &Value) -> Result<String, IdentityError> {
    let header = json!({"alg": "RS256", "kid": keys.signing_kid(), "typ": "JWT"});
    let mut token = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = keys.sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(sig));
    Ok(token)
}

/// Whether `token` has the shape of a JWS (three dot-separated parts), whatever its validity.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && !token.starts_with(crate::access::PREFIX)
}

/// Checks the signature and returns the claims. Times (`exp`, `iat`) are the caller's to
/// check; this only proves that one of our keys signed these bytes.
pub fn decode(keys: &SigningKeys, token: &str) -> Result<Value, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed(
            "not three dot-separated parts".into(),
        ));
    };
    let part = |what: &str, b64: &str| {
        URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|e| TokenError::Malformed(format!("the {what} is not base64url: {e}")))
    };
    let header: Value = serde_json::from_slice(&part("header", h)?)
        .map_err(|e| TokenError::Malformed(format!("the header is not JSON: {e}")))?;
    if header["alg"] != "RS256" {
        return Err(TokenError::Malformed(format!(
            "algorithm {} is not RS256",
            header["alg"]
        )));
    }
    let kid = header["kid"].as_str().unwrap_or_default();
    let sig = part("signature", s)?;
    let signed = &token[..h.len() + 1 + p.len()];
    if !keys.verify(kid, signed.as_bytes(), &sig) {
        return Err(TokenError::BadSignature);
    }
    serde_json::from_slice(&part("payload", p)?)
        .map_err(|e| TokenError::Malformed(format!("the payload is not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let keys = SigningKeys::load_or_create(&dir.path().join("k"), 0, 100).unwrap();
        let token = encode(&keys, &json!({"sub": "1", "aud": "x"})).unwrap();
        assert!(looks_like_jwt(&token));
        assert_eq!(decode(&keys, &token).unwrap()["aud"], "x");

        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(json!({"sub": "1", "aud": "y"}).to_string());
        parts[1] = &forged;
        assert!(matches!(
            decode(&keys, &parts.join(".")),
            Err(TokenError::BadSignature)
        ));
        assert!(matches!(
            decode(&keys, "a.b"),
            Err(TokenError::Malformed(_))
        ));
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode("{}")
        );
        assert!(matches!(
            decode(&keys, &none),
            Err(TokenError::Malformed(_))
        ));
    }
}
