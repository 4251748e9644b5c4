//! Header policy, body limits, streaming, WebSockets and h2c through the router.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::{Request, Response};
use router::body::full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An upstream that answers with the request's version and headers, one `name: value` a line.
async fn echo_headers() -> std::net::SocketAddr {
    upstream(handler(|req| async move {
        let mut out = format!("version: {:?}\n", req.version());
        for (k, v) in req.headers() {
            out.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
        }
        Response::new(full(out))
    }))
    .await
}

fn header_of<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
}

#[tokio::test]
async fn forwarding_and_trace_headers() {
    let h = start().await;
    h.route("hello", &[("hello-1", 100)], &[]);
    h.instance("hello-1", "a", echo_headers().await, 10);

    let (status, _, body) = get(&h, "hello.localhost:8080", "/").await;
    assert_eq!(status, 200);
    assert_eq!(header_of(&body, "host"), Some("hello.localhost:8080"));
    assert_eq!(header_of(&body, "x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(header_of(&body, "x-forwarded-proto"), Some("http"));
    assert_eq!(
        header_of(&body, "forwarded"),
        Some("for=127.0.0.1;proto=http")
    );
    let tp = header_of(&body, "traceparent").expect("traceparent created");
    assert_eq!(tp.len(), 55, "{tp}");
    let trace = &tp[3..35];
    let cloud = header_of(&body, "x-cloud-trace-context").expect("cloud trace created");
    assert!(cloud.starts_with(&format!("{trace}/")), "{cloud} vs {tp}");

    let kept = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let req = Request::get(h.url("/"))
        .header("host", "hello.localhost")
        .header("traceparent", kept)
        .header("x-forwarded-for", "203.0.113.9")
        .body(Default::default())
        .unwrap();
    let (_, _, body) = send(&client(), &h, req).await;
    assert_eq!(header_of(&body, "traceparent"), Some(kept));
    assert_eq!(
        header_of(&body, "x-cloud-trace-context"),
        Some("4bf92f3577b34da6a3ce929d0e0e4736/67667974448284343;o=1")
    );
    assert_eq!(
        header_of(&body, "x-forwarded-for"),
        Some("203.0.113.9, 127.0.0.1")
    );
}

#[tokio::test]
async fn set_cookie_makes_the_response_private() {
    let h = start().await;
    h.route("hello", &[("hello-1", 100)], &[]);
    let addr = upstream(handler(|req| async move {
        let mut r = Response::new(full("c"));
        r.headers_mut().insert("set-cookie", "a=b".parse().unwrap());
        if req.uri().path() == "/cached" {
            r.headers_mut()
                .insert("cache-control", "no-store".parse().unwrap());
        }
        r
    }))
    .await;
    h.instance("hello-1", "a", addr, 10);
    let (_, headers, _) = get(&h, "hello.localhost", "/").await;
    assert_eq!(headers["cache-control"], "private");
    assert_eq!(headers["set-cookie"], "a=b");
    let (_, headers, _) = get(&h, "hello.localhost", "/cached").await;
    assert_eq!(headers["cache-control"], "no-store");
}

/// Sends raw bytes to `addr` and returns the status of the first response.
async fn raw_status(addr: std::net::SocketAddr, request: &[u8]) -> u16 {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{head}"))
}

#[tokio::test]
async fn invalid_request_headers_are_400() {
    let h = start().await;
    h.route("hello", &[("hello-1", 100)], &[]);
    h.instance("hello-1", "a", named("ok").await, 10);
    assert_eq!(
        raw_status(h.addr, b"GET / HTTP/1.1\r\nHost: hello.localhost\r\n\r\n").await,
        200
    );
    assert_eq!(
        raw_status(
            h.addr,
            b"GET / HTTP/1.1\r\nHost: hello.localhost\r\nHost: x.localhost\r\n\r\n"
        )
        .await,
        400
    );
    assert_eq!(
        raw_status(
            h.addr,
            b"GET / HTTP/1.1\r\nHost: hello.localhost\r\nBad Header: x\r\n\r\n"
        )
        .await,
        400
    );
    assert_eq!(
        raw_status(
            h.addr,
            b"GET / HTTP/1.1\r\nHost: hello.localhost\r\nX-A: a\x01b\r\n\r\n"
        )
        .await,
        400
    );
}

#[tokio::test]
async fn invalid_response_headers_are_502() {
    let h = start().await;
    h.route("hello", &[("hello-1", 100)], &[]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 2\r\n\r\nok")
                    .await;
            });
        }
    });
    h.instance("hello-1", "a", addr, 10);
    assert_eq!(get(&h, "hello.localhost", "/").await.0, 502);
}

#[tokio::test]
async fn http1_bodies_over_32_mib_are_413() {
    let h = start().await;
    h.route("hello", &[("hello-1", 100)], &[]);
    let addr = upstream(handler(|req| async move {
        match req.into_body().collect().await {
            Ok(b) => Response::new(full(b.to_bytes().len().to_string())),
            Err(_) => Response::new(full("aborted")),
        }
    }))
    .await;
    h.instance("hello-1", "a", addr, 10);

    // Declared too large: refused before any byte of the body.
    let status = raw_status(
        h.addr,
        b"POST / HTTP/1.1\r\nHost: hello.localhost\r\nContent-Length: 33554433\r\n\r\n",
    )
    .await;
    assert_eq!(status, 413);

    // Exactly 32 MiB passes.
    let c = client();
    let req = Request::post(h.url("/"))
        .header("host", "hello.localhost")
        .body(http_body_util::Full::new(Bytes::from(vec![b'x'; 32 << 20])))
        .unwrap();
    let (status, _, body) = send(&c, &h, req).await;
    assert_eq!((status, body.as_str()), (200, "33554432"));

    // Chunked, growing past the limit: 413 too.
    let chunks = (0..33)
        .map(|_| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(vec![b'y'; 1 << 20]))));
    let body = StreamBody::new(futures_util::stream::iter(chunks));
    let c: hyper_util::client::legacy::Client<_, StreamBody<_>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let req = Request::post(h.url("/"))
        .header("host", "hello.localhost")
        .body(body)
        .unwrap();
    let resp = c.request(req).await.unwrap();
    assert_eq!(resp.status(), 413);
}

#[tokio::test]
async fn streamed_chunks_arrive_one_by_one() {
    let h = start().await;
    h.route("hello", &[("hello-1", 100)], &[]);
    let (go_tx, go_rx) = tokio::sync::watch::channel(false);
    let addr = upstream(handler(move |_| {
        let mut go = go_rx.clone();
        async move {
            let stream = async_stream(move |tx| async move {
                let _ = tx.send(Ok(Frame::data(Bytes::from_static(b"first")))).await;
                // The second chunk only exists once the client has seen the first.
                let _ = go.wait_for(|g| *g).await;
                let _ = tx
                    .send(Ok(Frame::data(Bytes::from_static(b"second"))))
                    .await;
            });
            Response::new(BodyExt::boxed_unsync(StreamBody::new(stream)))
        }
    }))
    .await;
    h.instance("hello-1", "a", addr, 10);
    let req = Request::get(h.url("/"))
        .header("host", "hello.localhost")
        .body(Default::default())
        .unwrap();
    let resp = client().request(req).await.unwrap();
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"first");
    go_tx.send(true).unwrap();
    let mut rest = Vec::new();
    while let Some(f) = body.frame().await {
        if let Ok(d) = f.unwrap().into_data() {
            rest.extend_from_slice(&d);
        }
    }
    assert_eq!(rest, b"second");
}

type FrameResult = Result<Frame<Bytes>, router::body::BoxError>;

/// A body stream fed by a task through a channel.
fn async_stream<F, Fut>(f: F) -> impl futures_util::Stream<Item = FrameResult> + Send
where
    F: FnOnce(tokio::sync::mpsc::Sender<FrameResult>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(f(tx));
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}

#[tokio::test]
async fn websocket_echo_through_the_router() {
    use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
    use tokio_tungstenite::tungstenite::protocol::{Message, Role};
    use tokio_tungstenite::WebSocketStream;

    let h = start().await;
    h.route("hello", &[("hello-1", 100)], &[]);
    let addr = upstream(handler(|mut req| async move {
        let key = req.headers().get("sec-websocket-key").cloned().unwrap();
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let upgraded = on.await.unwrap();
            let mut ws = WebSocketStream::from_raw_socket(
                hyper_util::rt::TokioIo::new(upgraded),
                Role::Server,
                None,
            )
            .await;
            while let Some(Ok(msg)) = ws.next().await {
                if msg.is_text() || msg.is_binary() {
                    ws.send(msg).await.unwrap();
                }
            }
        });
        Response::builder()
            .status(101)
            .header("upgrade", "websocket")
            .header("connection", "upgrade")
            .header("sec-websocket-accept", derive_accept_key(key.as_bytes()))
            .body(full(""))
            .unwrap()
    }))
    .await;
    h.instance("hello-1", "a", addr, 1);

    let tcp = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let (mut ws, resp) = tokio_tungstenite::client_async("ws://hello.localhost/ws", tcp)
        .await
        .unwrap();
    assert_eq!(resp.status(), 101);
    for text in ["hello", "again"] {
        ws.send(Message::text(text)).await.unwrap();
        let echo = ws.next().await.unwrap().unwrap();
        assert_eq!(echo.into_text().unwrap().as_str(), text);
    }
    // The socket holds the instance's only slot while open.
    let pool = h.router.pools().get("hello-1").unwrap();
    assert_eq!(pool.stats().in_flight, 1);
    ws.close(None).await.unwrap();
    drop(ws);
    while pool.stats().in_flight != 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn h2c_end_to_end() {
    let h = start().await;
    h.route("hello", &[("hello-1", 100)], &[]);
    h.revision("hello-1", h2c);
    h.instance("hello-1", "a", echo_headers().await, 100);
    // h2c from the client as well.
    let req = Request::get(h.url("/grpc"))
        .header("host", "hello.localhost")
        .header("te", "trailers")
        .body(Default::default())
        .unwrap();
    let (status, _, body) = send(&h2_client(), &h, req).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header_of(&body, "version"), Some("HTTP/2.0"), "{body}");
    assert_eq!(header_of(&body, "te"), Some("trailers"), "{body}");
    // HTTP/1.1 from the client, HTTP/2 to the instance.
    let (status, _, body) = get(&h, "hello.localhost", "/").await;
    assert_eq!(status, 200);
    assert_eq!(header_of(&body, "version"), Some("HTTP/2.0"), "{body}");
    assert_eq!(header_of(&body, "host"), Some("hello.localhost"), "{body}");
}
