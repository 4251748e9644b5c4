//! Server mode: HTTP/1.1 and h2c (prior knowledge) on `0.0.0.0:$PORT`.
//!
//! Besides the sandbox report and the behaviours tests ask for (`/sleep`, `/status`,
//! `/alloc`, `/exit`, ...), two endpoints look at identity and secrets from inside:
//! `/fetch?url=http://IP:PORT/PATH[&host=H][&auth=none|id-token|access-token][&audience=A]
//! [&header=NAME]` calls another service (plain http, names from /etc/hosts only) with a
//! bearer token from the metadata server (the ID token's audience defaults to `http://H`)
//! and answers `{"url", "status", "headers", "body"}` of what came back, or 502 with
//! `{"error"}`; `/file?path=/ABS` answers the file's contents, mode, owner and whether it
//! opens for writing (404 when missing), for secret volumes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Json, Router};
use futures_util::stream;
use http_body_util::BodyExt;
use serde_json::json;

use crate::{client, health, metadata, report, signals};

type Params = Query<HashMap<String, String>>;

/// Memory handed out by `/alloc`, held until the process ends.
static HELD: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

pub async fn run() -> ExitCode {
    let mut sigterm = signals::Sigterm::install();
    let port = match std::env::var("PORT") {
        Ok(p) => p,
        Err(_) => {
            say_err!("probe: PORT is not set; Cloud Run's container contract says the platform sets it (run `probe job` for job mode)");
            return ExitCode::from(1);
        }
    };
    let port: u16 = match port.parse() {
        Ok(p) if p > 0 => p,
        _ => {
            say_err!("probe: PORT={port:?} is not a port number in 1-65535");
            return ExitCode::from(1);
        }
    };
    let delay = signals::env_ms("PROBE_STARTUP_DELAY_MS");
    if delay > 0 {
        say!("probe: delaying startup by {delay} ms");
        signals::sleep_ms(delay).await;
    }
    let listener = match tokio::net::TcpListener::bind(("0.0.0.0", port)).await {
        Ok(l) => l,
        Err(e) => {
            say_err!("probe: cannot listen on 0.0.0.0:{port}: {e}");
            return ExitCode::from(1);
        }
    };
    say!("probe: listening on 0.0.0.0:{port}");
    health::schedule_from_env();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router()).await {
            say_err!("probe: server failed: {e}");
            std::process::exit(1);
        }
    });
    sigterm.recv().await;
    // The listener stays open while draining: in-flight and late requests still get answers.
    let drain = signals::env_ms("PROBE_DRAIN_MS");
    if drain > 0 {
        say!("probe: draining for {drain} ms");
        signals::sleep_ms(drain).await;
    }
    say!("probe: exiting");
    ExitCode::SUCCESS
}

pub fn router() -> Router {
    Router::new()
        .route("/", any(|| async { Json(report::report()) }))
        .route("/headers", any(headers))
        .route("/sleep", any(sleep))
        .route("/status", any(status))
        .route("/alloc", any(alloc))
        .route("/write", any(write))
        .route("/crash", any(crash))
        .route("/exit", any(exit))
        .route("/cookie", any(cookie))
        .route("/stream", any(stream_chunks))
        .route("/log", any(log))
        .route("/ws", any(ws))
        .route("/metadata", any(metadata_proxy))
        .route("/fetch", any(fetch))
        .route("/file", any(file))
        .route("/healthz", any(health::healthz))
        .route("/healthz/fail", any(health::fail))
        .route("/healthz/recover", any(health::recover))
        .route("/grpc.health.v1.Health/Check", post(health::grpc_check))
}

/// A malformed request, answered 400 with a message naming the problem.
struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, self.0 + "\n").into_response()
    }
}

type Answer = Result<Response, BadRequest>;

/// Reads a numeric query parameter, with a default when absent and a 400 when malformed.
fn param<T: std::str::FromStr>(q: &Params, name: &str, default: T) -> Result<T, BadRequest> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| BadRequest(format!("query parameter {name}={v:?} is not a number"))),
    }
}

async fn headers(req: Request) -> Answer {
    let (parts, body) = req.into_parts();
    let version = format!("{:?}", parts.version);
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body_bytes = match body.collect().await {
        Ok(b) => b.to_bytes().len(),
        Err(e) => return Err(BadRequest(format!("cannot read the request body: {e}"))),
    };
    Ok(Json(json!({
        "request_line": format!("{} {} {}", parts.method, parts.uri, version),
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "version": version,
        "headers": headers,
        "body_bytes": body_bytes,
    }))
    .into_response())
}

async fn sleep(q: Params) -> Answer {
    let ms = param(&q, "ms", 0u64)?;
    signals::sleep_ms(ms).await;
    Ok(Json(json!({ "slept_ms": ms })).into_response())
}

/// Answers with the given final status. 1xx codes would leave the connection in an
/// undefined state, and codes past 599 are not HTTP, so both are refused.
async fn status(q: Params) -> Answer {
    let code = param(&q, "code", 200u16)?;
    let status = StatusCode::from_u16(code)
        .ok()
        .filter(|_| (200..=599).contains(&code))
        .ok_or_else(|| BadRequest(format!("{code} is not a final HTTP status (200-599)")))?;
    // 204 and 304 carry no body (RFC 9110).
    if code == 204 || code == 304 {
        return Ok(status.into_response());
    }
    Ok((status, format!("status {code}\n")).into_response())
}

/// N MiB in bytes, refusing sizes that do not fit in memory addresses.
fn mib_to_bytes(mib: usize) -> Result<usize, BadRequest> {
    mib.checked_mul(1 << 20)
        .ok_or_else(|| BadRequest(format!("mib={mib} is too large")))
}

async fn alloc(q: Params) -> Answer {
    let mib = param(&q, "mib", 0usize)?;
    // Touch every page so the memory is really charged to the cgroup.
    let block = vec![0xA5u8; mib_to_bytes(mib)?];
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    held.push(block);
    let total: usize = held.iter().map(Vec::len).sum();
    Ok(Json(json!({ "allocated_mib": mib, "held_mib": total >> 20 })).into_response())
}

/// Writes under `/tmp` itself (not `$TMPDIR`): the contract point under test is that `/tmp`
/// is memory-backed and charged to the instance.
async fn write(q: Params) -> Answer {
    let mib = param(&q, "mib", 0usize)?;
    mib_to_bytes(mib)?;
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let path =
        std::path::Path::new("/tmp").join(format!("probe-write-{}-{n}.bin", std::process::id()));
    let result = tokio::task::spawn_blocking({
        let path = path.clone();
        move || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&path)?;
            // Non-zero data: a zero page could be stored sparsely and not charged.
            let chunk = vec![0x5Au8; 1 << 20];
            for _ in 0..mib {
                f.write_all(&chunk)?;
            }
            f.sync_all()
        }
    })
    .await;
    Ok(match result {
        Ok(Ok(())) => {
            Json(json!({ "path": path.display().to_string(), "mib": mib })).into_response()
        }
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("writing {}: {e}\n", path.display()),
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    })
}

async fn crash() -> Response {
    say_err!("probe: crashing (abort) as asked by /crash");
    std::process::abort()
}

async fn exit(q: Params) -> Answer {
    let code = param(&q, "code", 0i32)?;
    say!("probe: exiting with code {code} as asked by /exit");
    std::process::exit(code)
}

async fn cookie() -> Response {
    (
        [(header::SET_COOKIE, "probe=1; Path=/; HttpOnly")],
        "cookie set\n",
    )
        .into_response()
}

async fn stream_chunks(q: Params) -> Answer {
    let chunks = param(&q, "chunks", 5u32)?;
    let ms = param(&q, "ms", 100u64)?;
    let body = stream::unfold(0u32, move |i| async move {
        if i >= chunks {
            return None;
        }
        if i > 0 {
            signals::sleep_ms(ms).await;
        }
        Some((
            Ok::<_, Infallible>(Bytes::from(format!("chunk {i}\n"))),
            i + 1,
        ))
    });
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from_stream(body))
        .unwrap_or_else(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()))
}

/// Prints numbered lines to stdout or stderr, plain or as Cloud Logging structured JSON.
async fn log(q: Params) -> Answer {
    let lines = param(&q, "lines", 1u32)?;
    let to_stderr = q.get("stream").is_some_and(|s| s == "stderr");
    let prefix = q.get("text").cloned().unwrap_or_else(|| "line".into());
    for i in 0..lines {
        let text = match q.get("severity") {
            Some(sev) => json!({ "severity": sev, "message": format!("{prefix} {i}") }).to_string(),
            None => format!("{prefix} {i}"),
        };
        if to_stderr {
            say_err!("{text}");
        } else {
            say!("{text}");
        }
    }
    Ok(Json(json!({ "lines": lines })).into_response())
}

async fn ws(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(echo)
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(msg)) = socket.recv().await {
        let reply = match msg {
            Message::Text(_) | Message::Binary(_) => msg,
            // The close reply is queued by the WebSocket layer and goes out on the next read;
            // keep reading until the handshake is done, so clients see a clean close.
            Message::Close(_) => continue,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        if socket.send(reply).await.is_err() {
            return;
        }
    }
}

/// An upstream answer as JSON; 502 with `{"error"}` when it failed, 504 after 10 s.
async fn upstream(
    what: &str,
    call: impl std::future::Future<Output = Result<serde_json::Value, String>>,
) -> Response {
    match tokio::time::timeout(Duration::from_secs(10), call).await {
        Ok(Ok(answer)) => Json(answer).into_response(),
        Ok(Err(e)) => (StatusCode::BAD_GATEWAY, Json(json!({ "error": e }))).into_response(),
        Err(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            Json(json!({ "error": format!("{what} did not answer within 10 s") })),
        )
            .into_response(),
    }
}

async fn metadata_proxy(q: Params) -> Response {
    let path = q.get("path").cloned().unwrap_or_default();
    upstream("metadata server", metadata::fetch(&path)).await
}

/// `GET url` (plain http; an IP literal or a name from /etc/hosts), with `Host: host` when
/// given and, for `auth=id-token` or `auth=access-token`, a bearer token from the metadata
/// server in `Authorization` (or the header named by `header`). An ID token's audience is
/// `audience`, by default `http://HOST` (the Host header sent).
async fn fetch(q: Params) -> Answer {
    let url = q
        .get("url")
        .ok_or_else(|| BadRequest("fetch needs url=http://HOST[:PORT]/PATH".into()))?;
    let (authority, target) = client::split_url(url).map_err(BadRequest)?;
    let host = q.get("host").map_or(authority, String::as_str).to_string();
    let auth = q.get("auth").map_or("none", String::as_str);
    if !["none", "id-token", "access-token"].contains(&auth) {
        return Err(BadRequest(format!(
            "auth={auth:?} is not none, id-token or access-token"
        )));
    }
    let audience = q
        .get("audience")
        .cloned()
        .unwrap_or_else(|| format!("http://{host}"));
    let header = q
        .get("header")
        .cloned()
        .unwrap_or_else(|| "Authorization".into());
    let call = async {
        let token = match auth {
            "id-token" => Some(metadata::id_token(&audience).await?),
            "access-token" => Some(metadata::access_token().await?),
            _ => None,
        };
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .as_deref()
            .map(|b| (header.as_str(), b))
            .into_iter()
            .collect();
        let answer = client::get(authority, &host, target, &headers).await?;
        Ok(answer.to_json(url))
    };
    Ok(upstream(&format!("{url} (or the metadata server)"), call).await)
}

/// A file as the container sees it: `{"path", "contents" (UTF-8, lossy), "mode" (octal),
/// "type", "uid", "gid", "writable"}` (opening it for writing succeeds; nothing is written).
/// 404 when it does not exist; a file that cannot be read has `"contents": null` and
/// `"error"`.
async fn file(q: Params) -> Answer {
    let path = q
        .get("path")
        .filter(|p| p.starts_with('/'))
        .ok_or_else(|| BadRequest("file needs path=/ABSOLUTE/PATH".into()))?;
    if let Err(e) = std::fs::symlink_metadata(path) {
        let status = if e.kind() == std::io::ErrorKind::NotFound {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        let body = json!({ "path": path, "error": e.to_string() });
        return Ok((status, Json(body)).into_response());
    }
    let mut answer = report::stat(path);
    answer["path"] = json!(path);
    match std::fs::read(path) {
        Ok(bytes) => answer["contents"] = json!(String::from_utf8_lossy(&bytes)),
        Err(e) => {
            answer["contents"] = serde_json::Value::Null;
            answer["error"] = json!(e.to_string());
        }
    }
    answer["writable"] = json!(report::open_for_write(path));
    Ok(Json(answer).into_response())
}
