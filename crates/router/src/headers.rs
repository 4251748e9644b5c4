//! The header policy of the contract: RFC 7230 checks, hop-by-hop headers, forwarding
//! headers (X-Forwarded-For, X-Forwarded-Proto, Forwarded), trace context (W3C
//! `traceparent` and `X-Cloud-Trace-Context`), and `Cache-Control: private` on responses
//! that set cookies.

use std::net::IpAddr;

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::rng::RandomSource;

/// Headers that describe one connection, never forwarded (RFC 7230 §6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether a field value is valid per RFC 7230 §3.2: VCHAR, obs-text, SP and HTAB, and no
/// leading or trailing whitespace.
pub fn valid_value(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    b.iter()
        .all(|&c| c == b'\t' || (0x20..0x7f).contains(&c) || c >= 0x80)
        && !b.first().is_some_and(|c| *c == b' ' || *c == b'\t')
        && !b.last().is_some_and(|c| *c == b' ' || *c == b'\t')
}

/// Why a header block is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("invalid value for header {0}")]
    Value(HeaderName),
    #[error("more than one Host header")]
    DuplicateHost,
    #[error("invalid Host header")]
    Host,
    #[error("conflicting Content-Length headers")]
    ContentLength,
}

/// RFC 7230 checks beyond what hyper's parser already enforces (names are tokens there).
pub fn validate(headers: &HeaderMap, request: bool) -> Result<(), HeaderError> {
    for (name, value) in headers {
        if !valid_value(value) {
            return Err(HeaderError::Value(name.clone()));
        }
    }
    let mut lengths = headers.get_all(header::CONTENT_LENGTH).iter();
    if let Some(first) = lengths.next() {
        if lengths.any(|v| v != first) {
            return Err(HeaderError::ContentLength);
        }
    }
    if request {
        let mut hosts = headers.get_all(header::HOST).iter();
        if let Some(host) = hosts.next() {
            if hosts.next().is_some() {
                return Err(HeaderError::DuplicateHost);
            }
            if host.is_empty()
                || host
                    .to_str()
                    .ok()
                    .and_then(|h| h.parse::<hyper::http::uri::Authority>().ok())
                    .is_none()
            {
                return Err(HeaderError::Host);
            }
        }
    }
    Ok(())
}

/// Whether the request asks for a protocol upgrade (HTTP/1.1 `Connection: upgrade`).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Removes hop-by-hop headers and those named in `Connection`. With `keep_upgrade`,
/// `Upgrade` and `Connection: upgrade` stay (a WebSocket handshake). `TE: trailers` stays
/// (gRPC needs it).
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    let trailers = headers
        .get(header::TE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
        });
    for name in named {
        if !(keep_upgrade && name == header::UPGRADE) {
            headers.remove(name);
        }
    }
    for name in HOP_BY_HOP {
        if keep_upgrade && (name == "upgrade" || name == "connection") {
            continue;
        }
        headers.remove(name);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    if trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Appends the client to `X-Forwarded-For` and `Forwarded`, sets `X-Forwarded-Proto`.
pub fn set_forwarding(headers: &mut HeaderMap, client: IpAddr, proto: &str) {
    let xff = HeaderName::from_static("x-forwarded-for");
    let previous: Vec<String> = headers
        .get_all(&xff)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    let mut value = previous.join(", ");
    if !value.is_empty() {
        value.push_str(", ");
    }
    value.push_str(&client.to_string());
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(xff, v);
    }
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static(if proto == "https" { "https" } else { "http" }),
    );
    // RFC 7239 §6: IPv6 addresses are quoted and bracketed.
    let node = match client {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("\"[{a}]\""),
    };
    let element = format!("for={node};proto={proto}");
    let forwarded = match headers.get(header::FORWARDED).and_then(|v| v.to_str().ok()) {
        Some(prev) if !prev.trim().is_empty() => format!("{prev}, {element}"),
        _ => element,
    };
    if let Ok(v) = HeaderValue::from_str(&forwarded) {
        headers.insert(header::FORWARDED, v);
    }
}

/// A trace: 128-bit trace id, 64-bit span id, sampled flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: u128,
    pub span_id: u64,
    pub sampled: bool,
}

impl TraceContext {
    /// `00-{trace}-{span}-{flags}`; refuses all-zero ids and unknown versions' bad shapes.
    pub fn parse_traceparent(v: &str) -> Option<Self> {
        let parts: Vec<&str> = v.trim().split('-').collect();
        if parts.len() < 4 || parts[0].len() != 2 || parts[0] == "ff" {
            return None;
        }
        if parts[0] == "00" && parts.len() != 4 {
            return None;
        }
        let hex =
            |s: &str, n| s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex(parts[0], 2) || !hex(parts[1], 32) || !hex(parts[2], 16) || !hex(parts[3], 2) {
            return None;
        }
        let trace_id = u128::from_str_radix(parts[1], 16).ok()?;
        let span_id = u64::from_str_radix(parts[2], 16).ok()?;
        let flags = u8::from_str_radix(parts[3], 16).ok()?;
        (trace_id != 0 && span_id != 0).then_some(Self {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// `TRACE_ID/SPAN_ID;o=OPTIONS` with a decimal span id; the span may be absent.
    pub fn parse_cloud(v: &str) -> Option<Self> {
        let (ids, options) = v.trim().split_once(';').unwrap_or((v.trim(), ""));
        let (trace, span) = ids.split_once('/').unwrap_or((ids, ""));
        if trace.len() != 32 {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok().filter(|t| *t != 0)?;
        let span_id = if span.is_empty() {
            0
        } else {
            span.parse().ok()?
        };
        let sampled = options.trim() == "o=1";
        Some(Self {
            trace_id,
            span_id,
            sampled,
        })
    }

    pub fn traceparent(&self) -> String {
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.span_id, self.sampled as u8
        )
    }

    pub fn cloud(&self) -> String {
        format!(
            "{:032x}/{};o={}",
            self.trace_id, self.span_id, self.sampled as u8
        )
    }
}

/// Keeps a valid `traceparent` and `X-Cloud-Trace-Context`; creates whichever is missing,
/// from the other when present, else from a new random trace.
pub fn set_trace(headers: &mut HeaderMap, rng: &dyn RandomSource) {
    let cloud_name = HeaderName::from_static("x-cloud-trace-context");
    let parent_name = HeaderName::from_static("traceparent");
    let parent = headers
        .get(&parent_name)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse_traceparent);
    let cloud = headers
        .get(&cloud_name)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse_cloud);
    let nonzero = || loop {
        let v = rng.next_u64();
        if v != 0 {
            break v;
        }
    };
    let ctx = match (parent, cloud) {
        (Some(p), _) => p,
        (None, Some(c)) => TraceContext {
            span_id: if c.span_id == 0 { nonzero() } else { c.span_id },
            ..c
        },
        (None, None) => TraceContext {
            trace_id: ((nonzero() as u128) << 64) | rng.next_u64() as u128,
            span_id: nonzero(),
            sampled: false,
        },
    };
    if parent.is_none() {
        headers.insert(
            parent_name,
            HeaderValue::from_str(&ctx.traceparent()).expect("hex"),
        );
        headers.remove("tracestate");
    }
    if cloud.is_none() {
        headers.insert(
            cloud_name,
            HeaderValue::from_str(&ctx.cloud()).expect("ascii"),
        );
    }
}

/// A response that sets a cookie must not be cached by shared caches.
pub fn private_if_cookie(headers: &mut HeaderMap) {
    if headers.contains_key(header::SET_COOKIE) && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    #[test]
    fn values() {
        assert!(valid_value(&HeaderValue::from_static("a b\tc")));
        assert!(valid_value(
            &HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()
        ));
        assert!(!valid_value(&HeaderValue::from_static(" lead")));
    }

    #[test]
    fn hosts_and_lengths() {
        let mut h = HeaderMap::new();
        h.append(header::HOST, HeaderValue::from_static("a.localhost"));
        assert!(validate(&h, true).is_ok());
        h.append(header::HOST, HeaderValue::from_static("b.localhost"));
        assert_eq!(validate(&h, true), Err(HeaderError::DuplicateHost));
        let mut h = HeaderMap::new();
        h.append(header::HOST, HeaderValue::from_static("a b"));
        assert_eq!(validate(&h, true), Err(HeaderError::Host));
        let mut h = HeaderMap::new();
        h.append(header::CONTENT_LENGTH, HeaderValue::from_static("1"));
        h.append(header::CONTENT_LENGTH, HeaderValue::from_static("2"));
        assert_eq!(validate(&h, false), Err(HeaderError::ContentLength));
    }

    #[test]
    fn hop_by_hop() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers, deflate"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(h["te"], "trailers");
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn forwarding() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        set_forwarding(&mut h, "127.0.0.1".parse().unwrap(), "http");
        set_forwarding(&mut h, "::1".parse().unwrap(), "http");
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.1, ::1");
        assert_eq!(
            h["forwarded"],
            "for=127.0.0.1;proto=http, for=\"[::1]\";proto=http"
        );
        assert_eq!(h["x-forwarded-proto"], "http");
    }

    #[test]
    fn trace() {
        let rng = SplitMix64::new(3);
        let mut h = HeaderMap::new();
        set_trace(&mut h, &rng);
        let p = TraceContext::parse_traceparent(h["traceparent"].to_str().unwrap()).unwrap();
        let c = TraceContext::parse_cloud(h["x-cloud-trace-context"].to_str().unwrap()).unwrap();
        assert_eq!(p, c);

        let kept = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut h = HeaderMap::new();
        h.insert("traceparent", HeaderValue::from_static(kept));
        set_trace(&mut h, &rng);
        assert_eq!(h["traceparent"], kept);
        assert_eq!(
            h["x-cloud-trace-context"],
            "4bf92f3577b34da6a3ce929d0e0e4736/67667974448284343;o=1"
        );

        let mut h = HeaderMap::new();
        h.insert(
            "x-cloud-trace-context",
            HeaderValue::from_static("105445aa7843bc8bf206b12000100000/1;o=1"),
        );
        set_trace(&mut h, &rng);
        assert_eq!(
            h["traceparent"],
            "00-105445aa7843bc8bf206b12000100000-0000000000000001-01"
        );
        assert_eq!(
            h["x-cloud-trace-context"],
            "105445aa7843bc8bf206b12000100000/1;o=1"
        );
    }

    #[test]
    fn cookie() {
        let mut h = HeaderMap::new();
        h.insert(header::SET_COOKIE, HeaderValue::from_static("a=b"));
        private_if_cookie(&mut h);
        assert_eq!(h[header::CACHE_CONTROL], "private");
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        private_if_cookie(&mut h);
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
    }
}
