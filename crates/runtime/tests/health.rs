//! Health probes against the probe workload run as a plain host process on a free loopback
//! port (no container, no root), and against tiny hand-made servers for what the probe cannot
//! show (the request a probe sends, an attempt that never gets an answer). Only 127.0.0.1 is
//! ever contacted. Time bounds here are patience, never performance assertions.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use runtime::health::{
    check, wait_startup, watch_liveness, ProbeAction, ProbeKind, ProbeSpec, PROBE_USER_AGENT,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Bounds for things that must happen eventually.
const PATIENCE: Duration = Duration::from_secs(60);
const SECOND: Duration = Duration::from_secs(1);

/// The probe binary of this build's profile, next to the test binary's `deps` directory.
/// Built once per test process: `cargo test -p runtime` alone does not build other packages'
/// binaries, and a binary left from an older build could lack the endpoints tested here.
fn probe_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        // TARGET/PROFILE/deps/health-HASH
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary lives in PROFILE/deps");
        let target_dir = profile_dir.parent().expect("PROFILE lives in a target dir");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let out = Command::new(cargo)
            .current_dir(&root)
            .args(["build", "--quiet", "-p", "probe", "--profile", profile])
            .arg("--target-dir")
            .arg(target_dir)
            .stdin(Stdio::null())
            .output()
            .expect("running cargo build -p probe");
        assert!(
            out.status.success(),
            "cargo build -p probe failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = profile_dir.join("probe");
        assert!(bin.is_file(), "no probe binary at {}", bin.display());
        bin
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The probe serving on a free port, killed when dropped (and when this test process dies).
struct Probe {
    child: Child,
    port: u16,
}

impl Probe {
    /// Starts the probe without waiting for it to listen.
    fn spawn(env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut cmd = Command::new(probe_bin());
        cmd.env_clear()
            .env("PORT", port.to_string())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        testkit::registry::die_with_parent(&mut cmd);
        let child = cmd.spawn().expect("spawning the probe");
        Self { child, port }
    }

    /// Starts the probe and waits until it listens.
    fn start(env: &[(&str, &str)]) -> Self {
        let probe = Self::spawn(env);
        assert!(
            testkit::http::wait_listening(probe.addr(), PATIENCE),
            "the probe never listened on {}",
            probe.addr()
        );
        probe
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::new(LOCALHOST, self.port)
    }

    fn get(&self, path: &str) -> u16 {
        testkit::http::get(self.addr(), path, PATIENCE)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .status
    }

    fn http(&self, path: &str) -> ProbeAction {
        ProbeAction::Http {
            port: self.port,
            path: path.into(),
            headers: vec![],
        }
    }

    fn grpc(&self, service: Option<&str>) -> ProbeAction {
        ProbeAction::Grpc {
            port: self.port,
            service: service.map(String::from),
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A probe spec with a short period, so budgets and liveness play out in seconds.
fn quick(action: ProbeAction, failure_threshold: u32) -> ProbeSpec {
    ProbeSpec {
        action,
        initial_delay: Duration::ZERO,
        timeout: SECOND,
        period: SECOND,
        failure_threshold,
    }
}

#[tokio::test]
async fn tcp_passes_on_a_listener_and_fails_when_refused() {
    let probe = Probe::start(&[]);
    let tcp = ProbeAction::Tcp { port: probe.port };
    assert_eq!(check(LOCALHOST, &tcp, SECOND).await, Ok(()));
    let nothing = ProbeAction::Tcp { port: free_port() };
    let err = check(LOCALHOST, &nothing, SECOND).await.unwrap_err();
    assert_eq!(err, "connection refused");
}

#[tokio::test]
async fn http_passes_on_2xx_and_3xx_only_and_follows_the_health_switch() {
    let probe = Probe::start(&[]);
    assert_eq!(
        check(LOCALHOST, &probe.http("/healthz"), SECOND).await,
        Ok(())
    );
    assert_eq!(
        check(LOCALHOST, &probe.http("/status?code=302"), SECOND).await,
        Ok(())
    );
    assert_eq!(
        check(LOCALHOST, &probe.http("/status?code=503"), SECOND).await,
        Err("HTTP 503".into())
    );
    assert_eq!(
        check(LOCALHOST, &probe.http("/status?code=400"), SECOND).await,
        Err("HTTP 400".into())
    );
    assert_eq!(
        check(LOCALHOST, &probe.http("/no/such/path"), SECOND).await,
        Err("HTTP 404".into())
    );

    assert_eq!(probe.get("/healthz/fail"), 200);
    assert_eq!(probe.get("/healthz"), 503);
    assert_eq!(
        check(LOCALHOST, &probe.http("/healthz"), SECOND).await,
        Err("HTTP 503".into())
    );
    assert_eq!(probe.get("/healthz/recover"), 200);
    assert_eq!(
        check(LOCALHOST, &probe.http("/healthz"), SECOND).await,
        Ok(())
    );
}

/// Accepts one connection on a free loopback port and hands back what `serve` made of it.
async fn one_connection<F, Fut, T>(serve: F) -> (u16, tokio::task::JoinHandle<T>)
where
    F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + Send,
    T: Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        serve(stream).await
    });
    (port, task)
}

#[tokio::test]
async fn http_sends_the_kubelet_headers_and_its_own() {
    let (port, request) = one_connection(|mut stream| async move {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the probe closed before sending a whole request");
            head.extend_from_slice(&buf[..n]);
        }
        stream
            .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        String::from_utf8(head).unwrap().to_ascii_lowercase()
    })
    .await;
    let action = ProbeAction::Http {
        port,
        path: "/ready?deep=1".into(),
        headers: vec![("X-Custom".into(), "yes".into())],
    };
    assert_eq!(check(LOCALHOST, &action, PATIENCE).await, Ok(()));
    let head = tokio::time::timeout(PATIENCE, request)
        .await
        .unwrap()
        .unwrap();
    assert!(head.starts_with("get /ready?deep=1 http/1.1\r\n"), "{head}");
    assert!(
        head.contains(&format!("\r\nhost: 127.0.0.1:{port}\r\n")),
        "{head}"
    );
    assert!(
        head.contains(&format!("\r\nuser-agent: {PROBE_USER_AGENT}\r\n")),
        "{head}"
    );
    assert!(head.contains("\r\nx-custom: yes\r\n"), "{head}");
}

#[tokio::test]
async fn an_attempt_without_an_answer_times_out() {
    let (port, held) = one_connection(|stream| async move {
        // Accept and say nothing until the test ends.
        tokio::time::sleep(PATIENCE).await;
        drop(stream);
    })
    .await;
    let action = ProbeAction::Http {
        port,
        path: "/".into(),
        headers: vec![],
    };
    let err = check(LOCALHOST, &action, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(err, "timed out after 300ms");
    held.abort();
}

#[tokio::test]
async fn grpc_health_reports_serving_not_serving_and_unknown_services() {
    let probe = Probe::start(&[]);
    for service in [None, Some(""), Some("probe")] {
        assert_eq!(
            check(LOCALHOST, &probe.grpc(service), SECOND).await,
            Ok(()),
            "service {service:?}"
        );
    }
    let err = check(LOCALHOST, &probe.grpc(Some("other")), SECOND)
        .await
        .unwrap_err();
    assert!(err.contains("NOT_FOUND"), "{err}");

    assert_eq!(probe.get("/healthz/fail"), 200);
    for service in [None, Some("probe")] {
        assert_eq!(
            check(LOCALHOST, &probe.grpc(service), SECOND).await,
            Err("gRPC status NOT_SERVING".into()),
            "service {service:?}"
        );
    }
    assert_eq!(probe.get("/healthz/recover"), 200);
    assert_eq!(check(LOCALHOST, &probe.grpc(None), SECOND).await, Ok(()));
}

#[tokio::test]
async fn grpc_against_a_plain_http1_server_fails() {
    let (port, _task) = one_connection(|mut stream| async move {
        let mut buf = [0u8; 1024];
        let _ = stream.read(&mut buf).await;
        let _ = stream
            .write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            .await;
    })
    .await;
    let action = ProbeAction::Grpc {
        port,
        service: None,
    };
    assert!(check(LOCALHOST, &action, PATIENCE).await.is_err());
}

#[tokio::test]
async fn startup_sees_a_container_that_starts_listening_late() {
    for http in [false, true] {
        let probe = Probe::spawn(&[("PROBE_STARTUP_DELAY_MS", "300")]);
        let action = if http {
            probe.http("/healthz")
        } else {
            ProbeAction::Tcp { port: probe.port }
        };
        let spec = ProbeSpec {
            action,
            initial_delay: Duration::ZERO,
            timeout: SECOND,
            period: PATIENCE,
            failure_threshold: 1,
        };
        let outcome = wait_startup(LOCALHOST, &spec).await;
        assert_eq!(outcome, Ok(()), "{}", spec.action);
        assert_eq!(probe.get("/healthz"), 200);
    }
}

#[tokio::test]
async fn startup_fails_when_its_budget_runs_out() {
    let spec = quick(ProbeAction::Tcp { port: free_port() }, 2);
    let failure = tokio::time::timeout(PATIENCE, wait_startup(LOCALHOST, &spec))
        .await
        .expect("the startup budget is 2 s")
        .unwrap_err();
    assert_eq!(failure.probe, ProbeKind::Startup);
    assert_eq!(failure.reason, "connection refused");
    assert!(
        failure.attempts > 2,
        "polled fast, not once a period: {failure:?}"
    );
    assert!(failure
        .to_string()
        .starts_with("startup probe failed after "));

    // A container that listens but never becomes healthy fails with the HTTP reason.
    let probe = Probe::start(&[]);
    assert_eq!(probe.get("/healthz/fail"), 200);
    let failure = wait_startup(LOCALHOST, &quick(probe.http("/healthz"), 1))
        .await
        .unwrap_err();
    assert_eq!(failure.reason, "HTTP 503");
}

#[tokio::test]
async fn liveness_fails_after_the_threshold_of_consecutive_failures() {
    for grpc in [false, true] {
        let probe = Probe::start(&[("PROBE_UNHEALTHY_AFTER_MS", "1500")]);
        let action = if grpc {
            probe.grpc(None)
        } else {
            probe.http("/healthz")
        };
        let spec = quick(action, 2);
        let failure = tokio::time::timeout(PATIENCE, watch_liveness(LOCALHOST, &spec))
            .await
            .expect("liveness gives up once the probe turns unhealthy");
        assert_eq!(failure.probe, ProbeKind::Liveness);
        assert_eq!(failure.attempts, 2);
        let expected = if grpc {
            "gRPC status NOT_SERVING"
        } else {
            "HTTP 503"
        };
        assert_eq!(failure.reason, expected);
    }
}

#[tokio::test]
async fn liveness_stays_quiet_while_healthy_and_fails_once_the_container_is_gone() {
    let mut probe = Probe::start(&[]);
    let spec = quick(probe.http("/healthz"), 1);
    let watch = watch_liveness(LOCALHOST, &spec);
    tokio::pin!(watch);
    assert!(
        tokio::time::timeout(Duration::from_millis(3500), &mut watch)
            .await
            .is_err(),
        "a healthy container never fails its liveness probe"
    );
    probe.child.kill().unwrap();
    probe.child.wait().unwrap();
    let failure = tokio::time::timeout(PATIENCE, &mut watch)
        .await
        .expect("liveness gives up once nothing listens");
    assert_eq!(failure.attempts, 1);
    assert_eq!(failure.reason, "connection refused");
}
