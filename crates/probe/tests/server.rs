//! The probe's server mode, endpoint by endpoint.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use common::{Probe, PATIENCE};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Body as _;
use hyper::body::Bytes;

#[test]
fn refuses_to_start_without_a_valid_port() {
    for port in [None, Some("0"), Some("http"), Some("70000")] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_probe"));
        cmd.env_clear();
        if let Some(p) = port {
            cmd.env("PORT", p);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "PORT={port:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("PORT"),
            "PORT={port:?}"
        );
    }
}

#[test]
fn root_reports_the_sandbox() {
    let probe = Probe::start(&[], &[("K_SERVICE", "hello")]);
    let r = probe.get("/");
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["env"]["K_SERVICE"], "hello");
    assert_eq!(j["env"]["PORT"], probe.addr.port().to_string());
    assert_eq!(j["stdin"], "eof");
    for key in [
        "uid", "gid", "euid", "hostname", "cwd", "mounts", "cgroup", "files",
    ] {
        assert!(!j[key].is_null(), "{key} missing");
    }
    assert_eq!(j["files"]["/dev/null"]["type"], "char");
    assert_eq!(j["files"]["/dev/null"]["major"], 1);
    assert_eq!(j["files"]["/dev/fd"]["type"], "symlink");
    assert_eq!(j["files"]["/dev/fd"]["link"], "/proc/self/fd");
    assert_eq!(j["pid"], probe.pid());
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let cap_eff = own
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim();
    assert_eq!(
        j["security"]["cap_eff"], cap_eff,
        "the probe reports the kernel's view"
    );
    assert!(j["security"]["seccomp"].is_string());
}

async fn h1(probe: &Probe) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let s = tokio::net::TcpStream::connect(probe.addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn.with_upgrades());
    sender
}

#[tokio::test]
async fn headers_are_echoed_over_http1_and_h2c() {
    let probe = Probe::start(&[], &[]);
    let mut sender = h1(&probe).await;
    let req = hyper::Request::post("/headers?x=1")
        .header("Host", "svc.example")
        .header("X-Probe", "a")
        .header("X-Probe", "b")
        .body(Full::new(Bytes::from_static(b"12345")))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let j: serde_json::Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(j["request_line"], "POST /headers?x=1 HTTP/1.1");
    assert_eq!(j["body_bytes"], 5);
    let probes: Vec<&str> = j["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h[0] == "x-probe")
        .map(|h| h[1].as_str().unwrap())
        .collect();
    assert_eq!(probes, ["a", "b"]);

    // HTTP/2 with prior knowledge on the same port (h2c), as Cloud Run speaks it end to end.
    let s = tokio::net::TcpStream::connect(probe.addr).await.unwrap();
    let (mut h2, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(s),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get(format!("http://{}/headers", probe.addr))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = h2.send_request(req).await.unwrap();
    assert_eq!(resp.version(), hyper::Version::HTTP_2);
    let j: serde_json::Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(j["version"], "HTTP/2.0");
}

#[test]
fn status_sleep_and_malformed_parameters() {
    let probe = Probe::start(&[], &[]);
    assert_eq!(probe.get("/status?code=418").status, 418);
    assert_eq!(probe.get("/status?code=503").status, 503);
    let bad = probe.get("/status?code=teapot");
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("code"), "{}", bad.text());
    for refused in ["99", "101", "600", "999"] {
        assert_eq!(
            probe.get(&format!("/status?code={refused}")).status,
            400,
            "{refused}"
        );
    }
    let empty = probe.get("/status?code=204");
    assert_eq!(empty.status, 204);
    assert!(empty.body.is_empty() && empty.header("content-length").is_none());
    assert_eq!(probe.get("/sleep?ms=20").json()["slept_ms"], 20);
    assert_eq!(probe.get("/sleep?ms=-1").status, 400);
    assert_eq!(probe.get("/no/such/path").status, 404);
}

/// Removes a file when the test ends, also on failure.
struct Remove(std::path::PathBuf);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn alloc_keeps_memory_and_write_fills_tmp() {
    let probe = Probe::start(&[], &[("TMPDIR", "/var/tmp")]);
    assert_eq!(probe.get("/alloc?mib=4").json()["held_mib"], 4);
    assert_eq!(probe.get("/alloc?mib=6").json()["held_mib"], 10);
    assert!(
        common::rss_kib(probe.pid()) >= 10 * 1024,
        "allocated pages are touched"
    );
    assert_eq!(
        probe.get("/alloc?mib=17592186044416").status,
        400,
        "overflowing size"
    );

    // Under /tmp itself, whatever TMPDIR says: /tmp is the memory-backed path under test.
    let w = probe.get("/write?mib=3").json();
    let path = Remove(std::path::PathBuf::from(w["path"].as_str().unwrap()));
    assert!(path.0.starts_with("/tmp/"), "{:?}", path.0);
    assert_eq!(std::fs::metadata(&path.0).unwrap().len(), 3 << 20);
}

#[test]
fn cookie_and_logs() {
    let probe = Probe::start(&[], &[]);
    let r = probe.get("/cookie");
    assert_eq!(r.header("set-cookie"), Some("probe=1; Path=/; HttpOnly"));
    assert_eq!(probe.get("/log?lines=3&text=hello").status, 200);
    assert_eq!(
        probe
            .get("/log?lines=1&stream=stderr&severity=WARNING&text=structured")
            .status,
        200
    );
    probe.wait_for_line("hello 2");
    let lines = probe.lines();
    let pos = |t: &str| lines.iter().position(|l| l == t).unwrap();
    assert!(pos("hello 0") < pos("hello 1") && pos("hello 1") < pos("hello 2"));
    let structured = probe.wait_for_line("structured 0");
    let j: serde_json::Value = serde_json::from_str(&structured).unwrap();
    assert_eq!(j["severity"], "WARNING");
}

#[tokio::test]
async fn stream_sends_separate_chunks() {
    let probe = Probe::start(&[], &[]);
    let mut sender = h1(&probe).await;
    let req = hyper::Request::get("/stream?chunks=3&ms=300")
        .header("Host", "probe")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.headers()["transfer-encoding"], "chunked");
    let mut body = resp.into_body();
    // The first chunk arrives on its own, long before the body is complete: it is streamed,
    // not buffered.
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "chunk 0\n");
    assert!(!body.is_end_stream());
    let mut frames = vec![String::from_utf8(first.to_vec()).unwrap()];
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            frames.push(String::from_utf8(data.to_vec()).unwrap());
        }
    }
    assert_eq!(frames, ["chunk 0\n", "chunk 1\n", "chunk 2\n"]);
}

#[tokio::test]
async fn websocket_echoes() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let probe = Probe::start(&[], &[]);
    let (mut ws, resp) = tokio_tungstenite::connect_async(format!("ws://{}/ws", probe.addr))
        .await
        .unwrap();
    assert_eq!(resp.status(), 101);
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hello"));
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::binary(vec![1u8, 2, 3])
    );
    ws.close(None).await.unwrap();
    // The probe answers the close handshake instead of dropping the connection.
    let reply = ws.next().await;
    assert!(matches!(reply, Some(Ok(Message::Close(_)))), "{reply:?}");
}

/// A one-shot HTTP server on loopback that answers `reply` and returns the request it got.
async fn one_shot(reply: &'static [u8]) -> (std::net::SocketAddr, tokio::task::JoinHandle<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = vec![0u8; 8192];
        let n = s.read(&mut buf).await.unwrap();
        let req = String::from_utf8_lossy(&buf[..n]).into_owned();
        s.write_all(reply).await.unwrap();
        req
    });
    (addr, task)
}

/// A one-shot metadata server that records the flavor header it was sent.
async fn fake_metadata() -> (std::net::SocketAddr, tokio::task::JoinHandle<String>) {
    one_shot(b"HTTP/1.1 200 OK\r\nMetadata-Flavor: Google\r\nContent-Length: 10\r\n\r\nmy-project")
        .await
}

/// GET on the probe from a blocking thread (the probe is dropped there too).
async fn probe_get(probe: Probe, path: String) -> testkit::http::Response {
    tokio::task::spawn_blocking(move || {
        let r = probe.get(&path);
        drop(probe);
        r
    })
    .await
    .unwrap()
}

const UPSTREAM_REPLY: &[u8] =
    b"HTTP/1.1 201 Created\r\nX-Upstream: yes\r\nContent-Length: 5\r\n\r\nhello";

#[tokio::test]
async fn fetch_sends_an_id_token_from_the_metadata_server() {
    let (metadata, token_request) = one_shot(
        b"HTTP/1.1 200 OK\r\nMetadata-Flavor: Google\r\nContent-Length: 9\r\n\r\neyJ.a.b\r\n",
    )
    .await;
    let (upstream, upstream_request) = one_shot(UPSTREAM_REPLY).await;
    let probe = Probe::start(&[], &[("GCE_METADATA_HOST", &metadata.to_string())]);
    let r = probe_get(
        probe,
        format!(
            "/fetch?url=http://{upstream}/call/me&host=svc.example&auth=id-token\
             &audience=http://svc.example/%26x&header=X-Serverless-Authorization"
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["status"], 201);
    assert_eq!(j["body"], "hello");
    assert!(
        j["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h[0] == "x-upstream" && h[1] == "yes"),
        "{j}"
    );
    let asked = token_request.await.unwrap();
    assert!(
        asked.starts_with(
            "GET /computeMetadata/v1/instance/service-accounts/default/identity?audience=http://svc.example/%26x HTTP/1.1"
        ),
        "{asked}"
    );
    assert!(
        asked.to_lowercase().contains("metadata-flavor: google"),
        "{asked}"
    );
    let sent = upstream_request.await.unwrap();
    assert!(sent.starts_with("GET /call/me HTTP/1.1"), "{sent}");
    let lower = sent.to_lowercase();
    assert!(lower.contains("host: svc.example\r\n"), "{sent}");
    assert!(
        lower.contains("x-serverless-authorization: bearer eyj.a.b\r\n"),
        "{sent}"
    );
    assert!(!lower.contains("\r\nauthorization:"), "{sent}");
}

#[tokio::test]
async fn fetch_sends_an_access_token_and_fails_with_502_without_one() {
    let (metadata, token_request) = one_shot(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 69\r\n\r\n\
          {\"access_token\":\"ya29.tok\",\"expires_in\":3599,\"token_type\":\"Bearer\"}  ",
    )
    .await;
    let (upstream, upstream_request) = one_shot(UPSTREAM_REPLY).await;
    let probe = Probe::start(&[], &[("GCE_METADATA_HOST", &metadata.to_string())]);
    let r = probe_get(
        probe,
        format!("/fetch?url=http://{upstream}&auth=access-token"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(token_request
        .await
        .unwrap()
        .starts_with("GET /computeMetadata/v1/instance/service-accounts/default/token HTTP/1.1"));
    let sent = upstream_request.await.unwrap().to_lowercase();
    assert!(sent.starts_with("get / http/1.1"), "{sent}");
    assert!(sent.contains(&format!("host: {upstream}\r\n")), "{sent}");
    assert!(
        sent.contains("authorization: bearer ya29.tok\r\n"),
        "{sent}"
    );

    // The metadata server refuses: the upstream is never called.
    let (metadata, _) =
        one_shot(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n\r\nnope\r\n").await;
    let probe = Probe::start(&[], &[("GCE_METADATA_HOST", &metadata.to_string())]);
    let r = probe_get(probe, "/fetch?url=http://127.0.0.1:9/&auth=id-token".into()).await;
    assert_eq!(r.status, 502, "{}", r.text());
    let error = r.json()["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("403") && error.contains("identity"),
        "{error}"
    );
}

#[test]
fn fetch_refuses_what_it_cannot_do() {
    let probe = Probe::start(&[], &[]);
    for bad in [
        "/fetch",
        "/fetch?url=https://127.0.0.1/",
        "/fetch?url=127.0.0.1/",
        "/fetch?url=http://127.0.0.1/&auth=basic",
    ] {
        let r = probe.get(bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    let r = probe.get("/fetch?url=http://no-such-name.example/");
    assert_eq!(r.status, 502);
    assert!(r.text().contains("/etc/hosts"), "{}", r.text());
    // Nothing listens on the discard port: the connection error is the answer.
    let r = probe.get("/fetch?url=http://127.0.0.1:9/");
    assert_eq!(r.status, 502);
    assert!(
        r.text().contains("connecting to 127.0.0.1:9"),
        "{}",
        r.text()
    );
}

#[test]
fn file_reports_contents_mode_and_whether_it_opens_for_writing() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key");
    std::fs::write(&path, "s3cr3t\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let probe = Probe::start(&[], &[]);
    let r = probe.get(&format!("/file?path={}", path.display()));
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["path"], path.display().to_string());
    assert_eq!(j["contents"], "s3cr3t\n");
    assert_eq!(j["mode"], "640");
    assert_eq!(j["type"], "file");
    assert_eq!(j["writable"], true);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "s3cr3t\n",
        "left as it was"
    );

    let j = probe
        .get(&format!("/file?path={}", dir.path().display()))
        .json();
    assert_eq!(j["type"], "dir");
    assert!(j["contents"].is_null() && j["error"].is_string(), "{j}");
    assert_eq!(j["writable"], false);

    let missing = probe.get(&format!("/file?path={}/nope", dir.path().display()));
    assert_eq!(missing.status, 404);
    assert!(missing.json()["error"].is_string());
    assert_eq!(probe.get("/file?path=relative").status, 400);
    assert_eq!(probe.get("/file").status, 400);
}

#[tokio::test]
async fn metadata_is_fetched_with_the_google_flavor_header() {
    let (addr, server) = fake_metadata().await;
    let probe = Probe::start(&[], &[("GCE_METADATA_HOST", &addr.to_string())]);
    let r = probe_get(probe, "/metadata?path=project/project-id".into()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["status"], 200);
    assert_eq!(j["body"], "my-project");
    let req = server.await.unwrap();
    assert!(
        req.starts_with("GET /computeMetadata/v1/project/project-id HTTP/1.1"),
        "{req}"
    );
    assert!(
        req.to_lowercase().contains("metadata-flavor: google"),
        "{req}"
    );
}

#[test]
fn metadata_names_resolve_through_etc_hosts_only() {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    if hosts.contains("metadata.google.internal") {
        eprintln!("SKIPPED: this machine's /etc/hosts names metadata.google.internal");
        return;
    }
    let probe = Probe::start(&[], &[]);
    let r = probe.get("/metadata?path=project/project-id");
    assert_eq!(r.status, 502);
    assert!(r.text().contains("/etc/hosts"), "{}", r.text());
}

#[test]
fn exit_and_crash_end_the_process() {
    let mut probe = Probe::start(&[], &[]);
    let _ = testkit::http::get(probe.addr, "/exit?code=7", PATIENCE);
    assert_eq!(probe.wait().code(), Some(7));

    let mut probe = Probe::start_without_core_dumps(&[]);
    let _ = testkit::http::get(probe.addr, "/crash", PATIENCE);
    assert_eq!(probe.wait().signal(), Some(libc::SIGABRT));
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_then_exits_zero() {
    let mut probe = Probe::start(&[], &[("PROBE_DRAIN_MS", "10000")]);
    let mut sender = h1(&probe).await;
    let req = hyper::Request::get("/stream?chunks=2&ms=500")
        .header("Host", "probe")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let mut body = sender.send_request(req).await.unwrap().into_body();
    // The first chunk proves the request is in flight when SIGTERM arrives.
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "chunk 0\n");
    probe.signal(libc::SIGTERM);
    let rest = body
        .collect()
        .await
        .expect("in-flight request completes during the drain");
    assert_eq!(rest.to_bytes(), "chunk 1\n");
    probe.wait_for_line("probe: SIGTERM received");
    let status = tokio::task::spawn_blocking(move || probe.wait())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sigterm_without_drain_exits_at_once() {
    let mut probe = Probe::start(&[], &[]);
    let addr = probe.addr;
    let in_flight =
        std::thread::spawn(move || testkit::http::get(addr, "/sleep?ms=60000", PATIENCE));
    std::thread::sleep(Duration::from_millis(100));
    probe.signal(libc::SIGTERM);
    assert_eq!(probe.wait().code(), Some(0));
    assert!(
        in_flight.join().unwrap().is_err(),
        "the connection died with the process"
    );
}

#[test]
fn ignored_sigterm_keeps_serving() {
    let mut probe = Probe::start(&[], &[("PROBE_IGNORE_SIGTERM", "1")]);
    probe.signal(libc::SIGTERM);
    probe.wait_for_line("SIGTERM received (ignored)");
    assert_eq!(probe.get("/").status, 200);
    assert!(probe.is_running());
    probe.signal(libc::SIGKILL);
    assert_eq!(probe.wait().signal(), Some(libc::SIGKILL));
}

#[test]
fn startup_delay_comes_before_listening() {
    let probe = Probe::start(&[], &[("PROBE_STARTUP_DELAY_MS", "200")]);
    probe.wait_for_line("listening on");
    let lines = probe.lines();
    let delay = lines
        .iter()
        .position(|l| l.contains("delaying startup by 200 ms"));
    let listen = lines
        .iter()
        .position(|l| l.contains("listening on 0.0.0.0:"));
    assert!(
        delay.is_some() && listen.is_some() && delay < listen,
        "{lines:?}"
    );
}
