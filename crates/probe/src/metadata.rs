//! A client for the metadata server, as Google's auth libraries reach it: the host comes from
//! `GCE_METADATA_HOST` or is `metadata.google.internal`, resolved through `/etc/hosts` only,
//! and every request carries `Metadata-Flavor: Google`.

use serde_json::Value;

use crate::client::{self, Answer};

/// `GET /computeMetadata/v1/PATH` (PATH may carry a query): the URL asked and the answer.
pub async fn get(path: &str) -> Result<(String, Answer), String> {
    let host = std::env::var("GCE_METADATA_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "metadata.google.internal".to_string());
    let target = format!("/computeMetadata/v1/{}", path.trim_start_matches('/'));
    let answer = client::get(&host, &host, &target, &[("Metadata-Flavor", "Google")]).await?;
    Ok((format!("http://{host}{target}"), answer))
}

/// What `/metadata` answers: `{"url", "status", "headers", "body"}`.
pub async fn fetch(path: &str) -> Result<Value, String> {
    let (url, answer) = get(path).await?;
    Ok(answer.to_json(&url))
}

/// The body of a 200 answer to `path`, else an error naming the path and what came back.
async fn get_ok(path: &str) -> Result<String, String> {
    let (url, answer) = get(path).await?;
    let body = String::from_utf8_lossy(&answer.body).into_owned();
    if answer.status != 200 {
        return Err(format!(
            "the metadata server answered {} to {url}: {}",
            answer.status,
            body.trim()
        ));
    }
    Ok(body)
}

/// An ID token (a JWT) for `audience`, from the default service account.
pub async fn id_token(audience: &str) -> Result<String, String> {
    let path = format!(
        "instance/service-accounts/default/identity?audience={}",
        query_value(audience)
    );
    Ok(get_ok(&path).await?.trim().to_string())
}

/// The default service account's access token (`access_token` of the `token` answer).
pub async fn access_token() -> Result<String, String> {
    let body = get_ok("instance/service-accounts/default/token").await?;
    let token: Value = serde_json::from_str(&body)
        .map_err(|e| format!("the token answer is not JSON ({e}): {body}"))?;
    token["access_token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("the token answer has no access_token: {body}"))
}

/// Percent-encodes what a query value may not hold as it is (`&`, `#`, `+`, `%`, spaces...).
fn query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:/@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::query_value;

    #[test]
    fn audiences_are_encoded_for_the_query() {
        assert_eq!(
            query_value("http://svc.example:8080/a"),
            "http://svc.example:8080/a"
        );
        assert_eq!(query_value("a b&c=d#e+f%"), "a%20b%26c%3Dd%23e%2Bf%25");
    }
}
