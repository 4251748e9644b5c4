//! The probe's one HTTP client: a plain-http HTTP/1.1 GET, to an address given as an IP
//! literal or a name from `/etc/hosts` (never DNS), as `/metadata` and `/fetch` use it.

use std::net::{IpAddr, SocketAddr};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use serde_json::{json, Value};

/// What a server answered.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Answer {
    /// `{"url", "status", "headers", "body"}`, the body as UTF-8 (lossy).
    pub fn to_json(&self, url: &str) -> Value {
        json!({
            "url": url,
            "status": self.status,
            "headers": self.headers,
            "body": String::from_utf8_lossy(&self.body),
        })
    }
}

/// `GET target` (path and query) from `authority` (`host[:port]`, resolved by [`resolve`]),
/// with `Host: host` and the extra `headers`. Errors name the URL and the step that failed.
pub async fn get(
    authority: &str,
    host: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Result<Answer, String> {
    let addr = resolve(authority)?;
    let url = format!("http://{authority}{target}");
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to {authority} ({addr}): {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake with {addr}: {e}"))?;
    tokio::spawn(conn);
    let mut req = hyper::Request::get(target).header("Host", host);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("building the request for {url}: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading the answer of {url}: {e}"))?
        .to_bytes();
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// `http://AUTHORITY[/PATH]` split into the authority and the path with its query (`/` when
/// there is none). Only plain http: the probe has no TLS.
pub fn split_url(url: &str) -> Result<(&str, &str), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("{url:?} is not an http:// URL (the probe speaks plain HTTP only)")
    })?;
    let (authority, target) = match rest.find(['/', '?']) {
        Some(at) if rest[at..].starts_with('/') => (&rest[..at], &rest[at..]),
        Some(_) => return Err(format!("{url:?}: a query needs a path before it (`/?...`)")),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("{url:?} names no host (or carries credentials)"));
    }
    Ok((authority, target))
}

/// `host[:port]` to a socket address, port 80 by default, names through `/etc/hosts` only.
pub fn resolve(host: &str) -> Result<SocketAddr, String> {
    if let Ok(sa) = host.parse::<SocketAddr>() {
        return Ok(sa);
    }
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) if !n.contains(':') => (
            n,
            p.parse::<u16>()
                .map_err(|_| format!("{host:?}: {p:?} is not a port"))?,
        ),
        _ => (host, 80),
    };
    let ip = match name.trim_matches(['[', ']']).parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => crate::hosts::lookup_in("/etc/hosts", name).ok_or_else(|| {
            format!("{name} is not in /etc/hosts (the probe resolves nothing else)")
        })?,
    };
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::{resolve, split_url};

    #[test]
    fn resolves_literals_and_ports() {
        assert_eq!(
            resolve("127.0.0.1:8181").unwrap().to_string(),
            "127.0.0.1:8181"
        );
        assert_eq!(resolve("10.1.2.3").unwrap().to_string(), "10.1.2.3:80");
        assert_eq!(resolve("[::1]:99").unwrap().to_string(), "[::1]:99");
        assert!(resolve("127.0.0.1:notaport").is_err());
    }

    #[test]
    fn urls_split_into_authority_and_target() {
        assert_eq!(
            split_url("http://10.0.0.1:8080/a/b?c=d").unwrap(),
            ("10.0.0.1:8080", "/a/b?c=d")
        );
        assert_eq!(split_url("http://metadata").unwrap(), ("metadata", "/"));
        for bad in [
            "https://10.0.0.1/",
            "10.0.0.1/",
            "http:///x",
            "http://u:p@h/",
            "http://h?x",
        ] {
            assert!(split_url(bad).is_err(), "{bad}");
        }
    }
}
