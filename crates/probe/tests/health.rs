//! The probe's health endpoints: `/healthz` and its switch, `PROBE_UNHEALTHY_AFTER_MS`, and the
//! gRPC health service over h2c.

mod common;

use common::{eventually, Probe};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

#[test]
fn healthz_follows_the_switch_whatever_the_method() {
    let probe = Probe::start(&[], &[]);
    let healthy = probe.get("/healthz");
    assert_eq!(healthy.status, 200);
    assert_eq!(healthy.text(), "ok\n");
    assert_eq!(probe.get("/healthz/fail").status, 200);
    let sick = probe.get("/healthz");
    assert_eq!(sick.status, 503);
    assert_eq!(sick.text(), "unhealthy\n");
    assert_eq!(probe.get("/healthz").status, 503, "it stays unhealthy");
    probe.wait_for_line("probe: unhealthy as asked by /healthz/fail");
    assert_eq!(probe.get("/healthz/recover").status, 200);
    assert_eq!(probe.get("/healthz").status, 200);

    // Any method flips it.
    let (status, _) = h1_post(&probe, "/healthz/fail");
    assert_eq!(status, 200);
    assert_eq!(probe.get("/healthz").status, 503);
    let (status, _) = h1_post(&probe, "/healthz/recover");
    assert_eq!(status, 200);
    assert_eq!(probe.get("/healthz").status, 200);
}

fn h1_post(probe: &Probe, path: &str) -> (u16, Bytes) {
    let addr = probe.addr;
    let path = path.to_string();
    runtime().block_on(async move {
        let s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(s))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::post(path)
            .header("Host", addr.to_string())
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.into_body().collect().await.unwrap().to_bytes())
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn turns_unhealthy_when_told_by_the_environment() {
    let probe = Probe::start(&[], &[("PROBE_UNHEALTHY_AFTER_MS", "300")]);
    eventually("/healthz to answer 503", || {
        (probe.get("/healthz").status == 503).then_some(())
    });
    probe.wait_for_line("probe: unhealthy after 300 ms as told by PROBE_UNHEALTHY_AFTER_MS");
    // /healthz/recover still wins afterwards.
    assert_eq!(probe.get("/healthz/recover").status, 200);
    assert_eq!(probe.get("/healthz").status, 200);

    let probe = Probe::start(&[], &[("PROBE_UNHEALTHY_AFTER_MS", "soon")]);
    probe.wait_for_line("PROBE_UNHEALTHY_AFTER_MS=\"soon\" is not a number");
    assert_eq!(probe.get("/healthz").status, 200);
}

/// What a gRPC health call answered.
#[derive(Debug)]
struct GrpcAnswer {
    http_status: u16,
    content_type: Option<String>,
    header_status: Option<String>,
    trailer_status: Option<String>,
    body: Bytes,
}

/// Calls `grpc.health.v1.Health/Check` over h2c with `body` as the request.
async fn grpc_call(probe: &Probe, body: &'static [u8]) -> GrpcAnswer {
    let s = tokio::net::TcpStream::connect(probe.addr).await.unwrap();
    let (mut h2, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(s),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::post(format!("http://{}/grpc.health.v1.Health/Check", probe.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(body)))
        .unwrap();
    let resp = h2.send_request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let collected = body.collect().await.unwrap();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    GrpcAnswer {
        http_status: parts.status.as_u16(),
        content_type: header("content-type"),
        header_status: header("grpc-status"),
        trailer_status: collected
            .trailers()
            .and_then(|t| t.get("grpc-status"))
            .map(|v| v.to_str().unwrap().to_string()),
        body: collected.to_bytes(),
    }
}

const SERVER: &[u8] = b"\x00\x00\x00\x00\x00";
const PROBE_SERVICE: &[u8] = b"\x00\x00\x00\x00\x07\x0a\x05probe";
const OTHER_SERVICE: &[u8] = b"\x00\x00\x00\x00\x07\x0a\x05other";
/// A framed HealthCheckResponse { status: SERVING } and { status: NOT_SERVING }.
const SERVING: &[u8] = b"\x00\x00\x00\x00\x02\x08\x01";
const NOT_SERVING: &[u8] = b"\x00\x00\x00\x00\x02\x08\x02";

#[tokio::test]
async fn grpc_health_answers_with_trailers() {
    let probe = Probe::start(&[], &[]);
    for request in [SERVER, PROBE_SERVICE] {
        let a = grpc_call(&probe, request).await;
        assert_eq!(a.http_status, 200, "{a:?}");
        assert_eq!(a.content_type.as_deref(), Some("application/grpc"));
        assert_eq!(a.trailer_status.as_deref(), Some("0"), "{a:?}");
        assert_eq!(a.header_status, None, "grpc-status is a trailer: {a:?}");
        assert_eq!(&a.body[..], SERVING);
    }

    let unknown = grpc_call(&probe, OTHER_SERVICE).await;
    assert_eq!(unknown.http_status, 200);
    assert_eq!(unknown.header_status.as_deref(), Some("5"), "{unknown:?}");
    assert!(unknown.body.is_empty());

    let malformed = grpc_call(&probe, b"\x00\x00\x00\x00\x09\x0a").await;
    assert_eq!(
        malformed.header_status.as_deref(),
        Some("13"),
        "{malformed:?}"
    );

    // Both health endpoints share one switch.
    assert_eq!(probe.get("/healthz/fail").status, 200);
    for request in [SERVER, PROBE_SERVICE] {
        let a = grpc_call(&probe, request).await;
        assert_eq!(a.trailer_status.as_deref(), Some("0"), "{a:?}");
        assert_eq!(&a.body[..], NOT_SERVING);
    }
    assert_eq!(probe.get("/healthz/recover").status, 200);
    assert_eq!(&grpc_call(&probe, SERVER).await.body[..], SERVING);
}
