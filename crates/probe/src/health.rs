//! Health endpoints for the platform's startup and liveness probes, with a switch tests flip:
//!
//! - `GET /healthz`: 200 `ok` while healthy, 503 `unhealthy` once not;
//! - `/healthz/fail` and `/healthz/recover` (any method): unhealthy, healthy again;
//! - `PROBE_UNHEALTHY_AFTER_MS=N`: unhealthy N ms after the server starts listening;
//! - `POST /grpc.health.v1.Health/Check`: the standard gRPC health service (h2c), answering
//!   `SERVING` or `NOT_SERVING` for the server (`service` "") or for "probe", and grpc-status 5
//!   (NOT_FOUND) for any other service name, as grpc-health does.
//!
//! The gRPC messages are encoded by hand: one string field in, one enum field out, and the
//! probe must stay a small static binary without a protobuf code generator in its build.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;

static UNHEALTHY: AtomicBool = AtomicBool::new(false);

/// `HealthCheckResponse.ServingStatus`.
const SERVING: u8 = 1;
const NOT_SERVING: u8 = 2;

/// gRPC status codes the service answers with.
const GRPC_OK: u16 = 0;
const GRPC_NOT_FOUND: u16 = 5;
const GRPC_INTERNAL: u16 = 13;

pub fn is_healthy() -> bool {
    !UNHEALTHY.load(Ordering::SeqCst)
}

fn set_healthy(healthy: bool, why: &str) {
    UNHEALTHY.store(!healthy, Ordering::SeqCst);
    let state = if healthy { "healthy" } else { "unhealthy" };
    say!("probe: {state} {why}");
}

/// Honours `PROBE_UNHEALTHY_AFTER_MS`; called once the server listens.
pub fn schedule_from_env() {
    let Ok(value) = std::env::var("PROBE_UNHEALTHY_AFTER_MS") else {
        return;
    };
    let Ok(ms) = value.trim().parse::<u64>() else {
        say_err!(
            "probe: PROBE_UNHEALTHY_AFTER_MS={value:?} is not a number of milliseconds; ignored"
        );
        return;
    };
    tokio::spawn(async move {
        crate::signals::sleep_ms(ms).await;
        set_healthy(
            false,
            &format!("after {ms} ms as told by PROBE_UNHEALTHY_AFTER_MS"),
        );
    });
}

pub async fn healthz() -> Response {
    if is_healthy() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unhealthy\n").into_response()
    }
}

pub async fn fail() -> Response {
    set_healthy(false, "as asked by /healthz/fail");
    (StatusCode::OK, "unhealthy\n").into_response()
}

pub async fn recover() -> Response {
    set_healthy(true, "as asked by /healthz/recover");
    (StatusCode::OK, "ok\n").into_response()
}

/// `grpc.health.v1.Health/Check`: a unary call answered with the message in the body and
/// `grpc-status: 0` in the trailers; errors are Trailers-Only (the status in the headers).
pub async fn grpc_check(req: Request) -> Response {
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return grpc_error(GRPC_INTERNAL, &format!("reading the request: {e}")),
    };
    let service = match unframe(&body).and_then(decode_service) {
        Ok(s) => s,
        Err(e) => {
            return grpc_error(
                GRPC_INTERNAL,
                &format!("grpc: error unmarshalling request: {e}"),
            )
        }
    };
    if !service.is_empty() && service != "probe" {
        return grpc_error(GRPC_NOT_FOUND, "unknown service");
    }
    let status = if is_healthy() { SERVING } else { NOT_SERVING };
    // HealthCheckResponse { status = 1 (varint) }, in a 5-byte gRPC frame.
    let message = Bytes::from(vec![0, 0, 0, 0, 2, 1 << 3, status]);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(GRPC_OK));
    let frames = stream::iter([
        Ok::<_, Infallible>(Frame::data(message)),
        Ok(Frame::trailers(trailers)),
    ]);
    (
        [(header::CONTENT_TYPE, "application/grpc")],
        Body::new(StreamBody::new(frames)),
    )
        .into_response()
}

/// A Trailers-Only answer: HTTP 200, the gRPC status in the headers, no body.
fn grpc_error(code: u16, message: &str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", HeaderValue::from(code));
    if let Ok(m) = HeaderValue::from_str(&percent_encode(message)) {
        headers.insert("grpc-message", m);
    }
    (headers, Body::empty()).into_response()
}

/// `grpc-message` is percent-encoded outside printable ASCII (and `%` itself).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b' '..=b'~' if b != b'%' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The message of a single uncompressed gRPC frame.
fn unframe(data: &[u8]) -> Result<&[u8], String> {
    let Some((prefix, rest)) = data.split_first_chunk::<5>() else {
        return Err(format!("{} bytes hold no gRPC frame", data.len()));
    };
    if prefix[0] != 0 {
        return Err("compressed messages are not supported".into());
    }
    let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    if rest.len() != len {
        return Err(format!("frame says {len} bytes, body has {}", rest.len()));
    }
    Ok(rest)
}

fn take_varint(buf: &mut &[u8]) -> Result<u64, String> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&b, rest) = buf.split_first().ok_or("truncated varint")?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint longer than 10 bytes".into())
}

fn take(buf: &mut &[u8], n: u64) -> Result<Vec<u8>, String> {
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n <= buf.len())
        .ok_or("truncated field")?;
    let (field, rest) = buf.split_at(n);
    *buf = rest;
    Ok(field.to_vec())
}

/// `HealthCheckRequest { string service = 1; }`, other fields skipped.
fn decode_service(mut buf: &[u8]) -> Result<String, String> {
    let mut service = String::new();
    while !buf.is_empty() {
        let key = take_varint(&mut buf)?;
        match (key >> 3, key & 7) {
            (1, 2) => {
                let len = take_varint(&mut buf)?;
                service = String::from_utf8(take(&mut buf, len)?)
                    .map_err(|_| "service is not UTF-8".to_string())?;
            }
            (_, 0) => {
                take_varint(&mut buf)?;
            }
            (_, 1) => {
                take(&mut buf, 8)?;
            }
            (_, 2) => {
                let len = take_varint(&mut buf)?;
                take(&mut buf, len)?;
            }
            (_, 5) => {
                take(&mut buf, 4)?;
            }
            (field, wire) => return Err(format!("wire type {wire} for field {field}")),
        }
    }
    Ok(service)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_requests() {
        assert_eq!(decode_service(b"").unwrap(), "");
        assert_eq!(decode_service(b"\x0a\x05probe").unwrap(), "probe");
        assert_eq!(
            decode_service(b"\x10\x01\x0a\x03abc\x15\x01\x02\x03\x04").unwrap(),
            "abc"
        );
        assert!(decode_service(b"\x0a\x05pro").is_err());
        assert!(decode_service(b"\x0a\x02\xff\xfe").is_err());
        assert!(decode_service(b"\x0b").is_err());
    }

    #[test]
    fn unframes_messages() {
        assert_eq!(
            unframe(b"\x00\x00\x00\x00\x07\x0a\x05probe").unwrap(),
            b"\x0a\x05probe"
        );
        assert_eq!(unframe(b"\x00\x00\x00\x00\x00").unwrap(), b"");
        assert!(unframe(b"\x00\x00").is_err());
        assert!(unframe(b"\x01\x00\x00\x00\x00").is_err());
        assert!(unframe(b"\x00\x00\x00\x00\x02\x0a").is_err());
    }

    #[test]
    fn encodes_grpc_messages() {
        assert_eq!(percent_encode("unknown service"), "unknown service");
        assert_eq!(percent_encode("100% é"), "100%25 %C3%A9");
    }
}
