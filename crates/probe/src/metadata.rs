//! A client for the metadata server, as Google's auth libraries reach it: the host comes from
//! `GCE_METADATA_HOST` or is `metadata.google.internal`, resolved through `/etc/hosts` only.

use std::net::{IpAddr, SocketAddr};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use serde_json::{json, Value};

pub async fn fetch(path: &str) -> Result<Value, String> {
    let host = std::env::var("GCE_METADATA_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "metadata.google.internal".to_string());
    let addr = resolve(&host)?;
    let path = path.trim_start_matches('/');
    let url = format!("http://{host}/computeMetadata/v1/{path}");
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to {host} ({addr}): {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake with {addr}: {e}"))?;
    tokio::spawn(conn);
    let req = hyper::Request::get(format!("/computeMetadata/v1/{path}"))
        .header("Host", &host)
        .header("Metadata-Flavor", "Google")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("building the request for {url}: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status().as_u16();
    let headers: Vec<(String, String)> = resp
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
    Ok(json!({
        "url": url,
        "status": status,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    }))
}

/// `host[:port]` to a socket address, port 80 by default, names through `/etc/hosts` only.
fn resolve(host: &str) -> Result<SocketAddr, String> {
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
    use super::resolve;

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
}
