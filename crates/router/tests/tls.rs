//! The HTTPS listener: a self-signed certificate for the domain, HTTP/1.1 and h2 by ALPN,
//! requests routed as over HTTP with `X-Forwarded-Proto: https`; PEM files load, and bad
//! ones are refused by name.

mod common;

use std::sync::Arc;

use common::{handler, upstream};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use router::{Router, RouterOptions, RoutingTable, ServiceRoutes, Tls, TrafficTarget};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

async fn https_get(addr: std::net::SocketAddr, cert_pem: &str, alpn: &[u8]) -> (String, String) {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("hello.example.test").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let negotiated = String::from_utf8_lossy(tls.get_ref().1.alpn_protocol().unwrap()).into_owned();
    let io = TokioIo::new(tls);
    let req = hyper::Request::get("https://hello.example.test/")
        .header("host", "hello.example.test")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = if negotiated == "h2" {
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .unwrap();
        tokio::spawn(conn);
        send.send_request(req).await.unwrap()
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        send.send_request(req).await.unwrap()
    };
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (negotiated, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn serves_https_with_a_self_signed_certificate() {
    // webpki (like browsers) takes no wildcard over a single label such as
    // `*.localhost`, so this test serves a two-label domain.
    let (tls, cert_pem, _key) = Tls::self_signed("example.test").unwrap();
    let router = Router::new(RouterOptions::default(), Arc::new(router::NoEvents));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        router
            .clone()
            .serve_tls(listener, tls, std::future::pending()),
    );
    let up = upstream(handler(
        |req: hyper::Request<hyper::body::Incoming>| async move {
            let proto = req
                .headers()
                .get("x-forwarded-proto")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            hyper::Response::new(router::body::full(proto))
        },
    ))
    .await;
    router.table().store(RoutingTable::new(
        "example.test",
        "local",
        [ServiceRoutes {
            project: "local".into(),
            service: "hello".into(),
            traffic: vec![TrafficTarget {
                revision: "r".into(),
                percent: 100,
            }],
            tags: vec![],
            access: router::Access::public(),
        }],
    ));
    router.pools().add_instance(
        "r",
        router::Endpoint {
            id: "a".into(),
            addr: up,
            concurrency: 10,
            end: Default::default(),
        },
    );
    for alpn in [&b"http/1.1"[..], b"h2"] {
        let (negotiated, body) = https_get(addr, &cert_pem, alpn).await;
        assert_eq!(negotiated.as_bytes(), alpn);
        assert_eq!(body, "https");
    }
}

#[test]
fn pem_files_load_and_bad_ones_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = Tls::self_signed("example.test").unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, &cert).unwrap();
    std::fs::write(&key_path, &key).unwrap();
    Tls::from_pem_files(&cert_path, &key_path).unwrap();

    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let err = Tls::from_pem_files(&empty, &key_path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("empty.pem"), "{err}");
    let err = Tls::from_pem_files(&cert_path, &dir.path().join("missing.pem"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.pem"), "{err}");
}
