//! Container health probes, as Cloud Run runs them against an instance
//! (<https://cloud.google.com/run/docs/configuring/healthchecks>).
//!
//! A container may declare a startup probe, which gates traffic until it first passes, and a
//! liveness probe, which has the container restarted once it fails `failureThreshold` times in
//! a row. Each probe is a TCP connect, an HTTP GET (200–399 passes) or a gRPC health check
//! (`grpc.health.v1.Health/Check`, `SERVING` passes). A container that declares no startup
//! probe gets Cloud Run's default: TCP on the ingress port, 240 s timeout, 240 s period,
//! threshold 1 ([`ProbeSpec::default_startup`]).
//!
//! Startup is polled fast rather than once a period (see [`wait_startup`]): the probe decides
//! when an instance takes its first request, so it is on the cold-start path.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::time::{Instant, MissedTickBehavior};

/// The `User-Agent` of HTTP and gRPC probes, after Kubernetes' `kube-probe/VERSION`, so that
/// workloads that recognise probe traffic by it keep doing so.
pub const PROBE_USER_AGENT: &str = "kube-probe/homerun";

/// Cloud Run's upper bound for `periodSeconds` and `initialDelaySeconds` (and so `timeoutSeconds`).
pub const MAX_SECONDS: u64 = 240;

/// The gRPC health service's method, from `grpc/health/v1/health.proto`.
pub const GRPC_HEALTH_CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// The first pause between startup attempts, doubled after each failure up to
/// [`STARTUP_MAX_PAUSE`].
const STARTUP_FIRST_PAUSE: Duration = Duration::from_millis(1);
const STARTUP_MAX_PAUSE: Duration = Duration::from_millis(20);

/// What one probe attempt does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeAction {
    /// Passes when a TCP connection to the port is accepted (it is closed at once).
    Tcp { port: u16 },
    /// `GET path` over HTTP/1.1; a status in 200–399 passes. `headers` are added to the
    /// request and replace the default `Host`, `User-Agent` or `Accept` of the same name.
    Http {
        port: u16,
        path: String,
        headers: Vec<(String, String)>,
    },
    /// `grpc.health.v1.Health/Check` over h2c (HTTP/2 with prior knowledge); `SERVING` passes.
    /// `None` (or an empty name) asks about the server as a whole.
    Grpc { port: u16, service: Option<String> },
}

impl ProbeAction {
    pub fn port(&self) -> u16 {
        match self {
            ProbeAction::Tcp { port }
            | ProbeAction::Http { port, .. }
            | ProbeAction::Grpc { port, .. } => *port,
        }
    }
}

impl fmt::Display for ProbeAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeAction::Tcp { port } => write!(f, "TCP port {port}"),
            ProbeAction::Http { port, path, .. } => write!(f, "HTTP GET port {port} {path}"),
            ProbeAction::Grpc {
                port,
                service: Some(s),
            } if !s.is_empty() => write!(f, "gRPC health port {port} service {s:?}"),
            ProbeAction::Grpc { port, .. } => write!(f, "gRPC health port {port}"),
        }
    }
}

/// A startup or liveness probe with Cloud Run's timing fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSpec {
    pub action: ProbeAction,
    /// `initialDelaySeconds`: how long after the container started the first attempt waits.
    pub initial_delay: Duration,
    /// `timeoutSeconds`: the bound of each attempt.
    pub timeout: Duration,
    /// `periodSeconds`: the time between liveness attempts.
    pub period: Duration,
    /// `failureThreshold`: consecutive failures before the probe fails.
    pub failure_threshold: u32,
}

impl ProbeSpec {
    /// A probe with Cloud Run's defaults: no initial delay, 1 s timeout, 10 s period,
    /// threshold 3.
    pub fn new(action: ProbeAction) -> Self {
        Self {
            action,
            initial_delay: Duration::ZERO,
            timeout: Duration::from_secs(1),
            period: Duration::from_secs(10),
            failure_threshold: 3,
        }
    }

    /// The startup probe Cloud Run uses when a container declares none: TCP on the ingress
    /// port, timeout 240 s, period 240 s, failure threshold 1.
    pub fn default_startup(port: u16) -> Self {
        Self {
            action: ProbeAction::Tcp { port },
            initial_delay: Duration::ZERO,
            timeout: Duration::from_secs(MAX_SECONDS),
            period: Duration::from_secs(MAX_SECONDS),
            failure_threshold: 1,
        }
    }

    /// How long a startup probe may take in all: `initial_delay + period * failure_threshold`
    /// (a threshold of 0 counts as 1).
    pub fn startup_budget(&self) -> Duration {
        self.initial_delay
            .saturating_add(self.period.saturating_mul(self.failure_threshold.max(1)))
    }

    /// Checks Cloud Run's limits; the message names the offending field as a service YAML
    /// spells it.
    pub fn validate(&self) -> Result<(), String> {
        let one = Duration::from_secs(1);
        let max = Duration::from_secs(MAX_SECONDS);
        if self.period < one || self.period > max {
            return Err(format!(
                "periodSeconds must be 1 to {MAX_SECONDS} seconds, got {}",
                human(self.period)
            ));
        }
        if self.timeout < one {
            return Err(format!(
                "timeoutSeconds must be at least 1 second, got {}",
                human(self.timeout)
            ));
        }
        if self.timeout > self.period {
            return Err(format!(
                "timeoutSeconds ({}) must not exceed periodSeconds ({})",
                human(self.timeout),
                human(self.period)
            ));
        }
        if self.initial_delay > max {
            return Err(format!(
                "initialDelaySeconds must be 0 to {MAX_SECONDS} seconds, got {}",
                human(self.initial_delay)
            ));
        }
        if self.failure_threshold < 1 {
            return Err("failureThreshold must be at least 1, got 0".into());
        }
        let kind = match &self.action {
            ProbeAction::Tcp { .. } => "tcpSocket",
            ProbeAction::Http { .. } => "httpGet",
            ProbeAction::Grpc { .. } => "grpc",
        };
        if self.action.port() == 0 {
            return Err(format!("{kind}.port must be 1 to 65535, got 0"));
        }
        if let ProbeAction::Http { path, headers, .. } = &self.action {
            if !path.starts_with('/') {
                return Err(format!("httpGet.path must start with '/', got {path:?}"));
            }
            if path.parse::<hyper::http::uri::PathAndQuery>().is_err() {
                return Err(format!("httpGet.path {path:?} is not a valid request path"));
            }
            for (name, value) in headers {
                if HeaderName::from_bytes(name.as_bytes()).is_err() {
                    return Err(format!(
                        "httpGet.httpHeaders: {name:?} is not a valid header name"
                    ));
                }
                if HeaderValue::from_str(value).is_err() {
                    return Err(format!(
                        "httpGet.httpHeaders: the value of {name} is not a valid header value"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Which probe failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    Startup,
    Liveness,
}

impl fmt::Display for ProbeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProbeKind::Startup => "startup",
            ProbeKind::Liveness => "liveness",
        })
    }
}

/// A probe that gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeFailure {
    pub probe: ProbeKind,
    /// Startup: every attempt made within the budget. Liveness: the consecutive failed
    /// attempts (the failure threshold).
    pub attempts: u32,
    /// The reason the last attempt failed.
    pub reason: String,
}

impl fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.attempts == 1 { "" } else { "s" };
        match self.probe {
            ProbeKind::Startup => write!(
                f,
                "startup probe failed after {} attempt{plural}: {}",
                self.attempts, self.reason
            ),
            ProbeKind::Liveness => write!(
                f,
                "liveness probe failed {} attempt{plural} in a row: {}",
                self.attempts, self.reason
            ),
        }
    }
}

impl std::error::Error for ProbeFailure {}

/// One attempt of `action` against `ip`, bounded by `timeout`. The error is a short reason:
/// "connection refused", "HTTP 503", "gRPC status NOT_SERVING", "timed out after 1s".
pub async fn check(ip: IpAddr, action: &ProbeAction, timeout: Duration) -> Result<(), String> {
    let addr = SocketAddr::new(ip, action.port());
    match tokio::time::timeout(timeout, attempt(addr, action, timeout)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("timed out after {}", human(timeout))),
    }
}

/// Waits for the startup probe to pass once. After `initial_delay` it is attempted at once and
/// then again after a pause that starts at 1 ms and doubles up to 20 ms, so a container is seen
/// within milliseconds of becoming ready rather than at the next period. Fails with the last
/// reason once the budget (`initial_delay + period * failure_threshold`, counted from the
/// call) is spent; an attempt running when the budget ends is cut short.
pub async fn wait_startup(ip: IpAddr, spec: &ProbeSpec) -> Result<(), ProbeFailure> {
    let addr = SocketAddr::new(ip, spec.action.port());
    let deadline = deadline_after(spec.startup_budget());
    tokio::time::sleep_until(deadline_after(spec.initial_delay).min(deadline)).await;
    let mut pause = STARTUP_FIRST_PAUSE;
    let mut attempts = 0u32;
    let mut last_reason: Option<String> = None;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let bound = spec.timeout.min(remaining);
        attempts = attempts.saturating_add(1);
        match tokio::time::timeout(bound, attempt(addr, &spec.action, spec.timeout)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(reason)) => last_reason = Some(reason),
            // An attempt cut short by the end of the budget says less than the one before.
            Err(_) if bound < spec.timeout && last_reason.is_some() => {}
            Err(_) => last_reason = Some(format!("timed out after {}", human(bound))),
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(ProbeFailure {
                probe: ProbeKind::Startup,
                attempts,
                reason: last_reason.unwrap_or_else(|| "no attempt finished".into()),
            });
        }
        tokio::time::sleep(pause.min(remaining)).await;
        pause = (pause * 2).min(STARTUP_MAX_PAUSE);
    }
}

/// Watches a running container: after `initial_delay`, one attempt every `period` (each
/// bounded by `timeout`). Resolves only once `failure_threshold` consecutive attempts have
/// failed; for a healthy container it never resolves, so callers race it against the
/// container's end.
pub async fn watch_liveness(ip: IpAddr, spec: &ProbeSpec) -> ProbeFailure {
    let threshold = spec.failure_threshold.max(1);
    // `interval` refuses a zero period; `validate` refuses it too.
    let period = spec.period.max(Duration::from_millis(1));
    let mut ticks = tokio::time::interval_at(deadline_after(spec.initial_delay), period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failures = 0u32;
    loop {
        ticks.tick().await;
        match check(ip, &spec.action, spec.timeout).await {
            Ok(()) => failures = 0,
            Err(reason) => {
                failures += 1;
                tracing::debug!(%ip, probe = %spec.action, failures, %reason, "liveness attempt failed");
                if failures >= threshold {
                    return ProbeFailure {
                        probe: ProbeKind::Liveness,
                        attempts: failures,
                        reason,
                    };
                }
            }
        }
    }
}

/// `now + d`, or a time far enough away to be never when that does not fit in an `Instant`.
fn deadline_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// A duration as a reason shows it: `1s`, `240s`, `300ms`.
fn human(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// One attempt without its time bound (`timeout` only travels as gRPC's `grpc-timeout`).
async fn attempt(addr: SocketAddr, action: &ProbeAction, timeout: Duration) -> Result<(), String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| io_reason(&e))?;
    let _ = stream.set_nodelay(true);
    match action {
        // As the kubelet does: an accepted connection passes and is closed at once.
        ProbeAction::Tcp { .. } => Ok(()),
        ProbeAction::Http { path, headers, .. } => http_get(stream, addr, path, headers).await,
        ProbeAction::Grpc { service, .. } => {
            grpc_check(stream, addr, service.as_deref().unwrap_or(""), timeout).await
        }
    }
}

async fn http_get(
    stream: TcpStream,
    addr: SocketAddr,
    path: &str,
    extra: &[(String, String)],
) -> Result<(), String> {
    let mut req = hyper::Request::get(path)
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("invalid probe path {path:?}: {e}"))?;
    let headers = req.headers_mut();
    headers.insert(header::HOST, header_value(&addr.to_string())?);
    headers.insert(
        header::USER_AGENT,
        HeaderValue::from_static(PROBE_USER_AGENT),
    );
    headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    add_headers(headers, extra)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| hyper_reason(&e))?;
    let status = with_connection(conn, async move {
        sender
            .send_request(req)
            .await
            .map(|resp| resp.status())
            .map_err(|e| hyper_reason(&e))
    })
    .await?;
    if (200..400).contains(&status.as_u16()) {
        Ok(())
    } else {
        Err(format!("HTTP {}", status.as_u16()))
    }
}

/// Adds the probe's own headers; a name given there replaces the default of the same name.
fn add_headers(headers: &mut HeaderMap, extra: &[(String, String)]) -> Result<(), String> {
    let mut replaced: Vec<HeaderName> = Vec::new();
    for (name, value) in extra {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid probe header name {name:?}"))?;
        if !replaced.contains(&name) {
            headers.remove(&name);
            replaced.push(name.clone());
        }
        headers.append(name, header_value(value)?);
    }
    Ok(())
}

fn header_value(value: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(value).map_err(|_| format!("invalid probe header value {value:?}"))
}

async fn grpc_check(
    stream: TcpStream,
    addr: SocketAddr,
    service: &str,
    timeout: Duration,
) -> Result<(), String> {
    let message = grpc_frame(&encode_health_check_request(service));
    let req = hyper::Request::post(format!("http://{addr}{GRPC_HEALTH_CHECK_PATH}"))
        .header(header::CONTENT_TYPE, "application/grpc")
        .header(header::TE, "trailers")
        .header(header::USER_AGENT, PROBE_USER_AGENT)
        // The deadline travels with the call, so the server can give up when the probe does.
        .header("grpc-timeout", format!("{}m", timeout.as_millis().max(1)))
        .body(Full::new(Bytes::from(message)))
        .map_err(|e| format!("invalid gRPC probe request: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP/2 handshake: {}", hyper_reason(&e)))?;
    with_connection(conn, async move {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| hyper_reason(&e))?;
        let (parts, body) = resp.into_parts();
        if parts.status != hyper::StatusCode::OK {
            return Err(format!(
                "HTTP {} from the gRPC server",
                parts.status.as_u16()
            ));
        }
        let collected = body.collect().await.map_err(|e| hyper_reason(&e))?;
        let trailers = collected.trailers().cloned();
        let data = collected.to_bytes();
        // A Trailers-Only answer (how errors usually come) carries grpc-status in its headers.
        let status_from = match &trailers {
            Some(t) if t.contains_key("grpc-status") => t,
            _ => &parts.headers,
        };
        grpc_outcome(status_from, &data)
    })
    .await
}

/// The verdict on a gRPC health answer: its `grpc-status` must be 0 and its message say
/// `SERVING`.
fn grpc_outcome(status_from: &HeaderMap, data: &[u8]) -> Result<(), String> {
    let code = status_from
        .get("grpc-status")
        .ok_or("gRPC answer without grpc-status")?;
    let code: u32 = code
        .to_str()
        .ok()
        .and_then(|c| c.trim().parse().ok())
        .ok_or_else(|| format!("gRPC answer with a malformed grpc-status {code:?}"))?;
    if code != 0 {
        let message = status_from
            .get("grpc-message")
            .map(|m| percent_decode(m.as_bytes()))
            .filter(|m| !m.is_empty())
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        return Err(format!(
            "grpc-status {code} ({}){message}",
            grpc_code_name(code)
        ));
    }
    let message = grpc_unframe(data)?;
    match decode_health_check_response(message)? {
        SERVING => Ok(()),
        other => Err(format!("gRPC status {}", serving_status_name(other))),
    }
}

/// Drives a client connection while `work` uses it; the connection is dropped (and its socket
/// closed) when `work` ends, so nothing outlives the attempt.
async fn with_connection<C, W, T>(conn: C, work: W) -> Result<T, String>
where
    C: Future<Output = Result<(), hyper::Error>>,
    W: Future<Output = Result<T, String>>,
{
    tokio::pin!(conn);
    tokio::pin!(work);
    let mut conn_done = false;
    loop {
        tokio::select! {
            outcome = &mut work => return outcome,
            ended = &mut conn, if !conn_done => {
                conn_done = true;
                // A connection closed cleanly may still have delivered the answer: let `work`
                // finish. One that failed fails the attempt.
                if let Err(e) = ended {
                    return Err(hyper_reason(&e));
                }
            }
        }
    }
}

/// "connection refused" rather than "Connection refused (os error 111)".
fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(at) => &text[..at],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => format!("{:?}", e.kind()),
    }
}

fn hyper_reason(e: &hyper::Error) -> String {
    use std::error::Error as _;
    match e.source() {
        Some(source) => match source.downcast_ref::<std::io::Error>() {
            Some(io) => format!("{e}: {}", io_reason(io)),
            None => format!("{e}: {source}"),
        },
        None => e.to_string(),
    }
}

// The gRPC health protocol by hand. The probe needs one request message (field 1, string
// `service`) and one response message (field 1, enum `status`) in gRPC's 5-byte framing;
// tonic and prost would bring a code generator (or hand-written derives), tower and a second
// HTTP/2 stack configuration to a crate that already speaks h2 through hyper, for what the
// few functions below do completely.

/// `HealthCheckResponse.ServingStatus` values.
const SERVING: u64 = 1;

fn serving_status_name(status: u64) -> String {
    match status {
        0 => "UNKNOWN".into(),
        1 => "SERVING".into(),
        2 => "NOT_SERVING".into(),
        3 => "SERVICE_UNKNOWN".into(),
        other => format!("{other} (not a serving status)"),
    }
}

fn grpc_code_name(code: u32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES.get(code as usize).copied().unwrap_or("unknown code")
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(buf: &mut &[u8]) -> Result<u64, String> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&b, rest) = buf.split_first().ok_or("truncated protobuf varint")?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("protobuf varint longer than 10 bytes".into())
}

fn skip(buf: &mut &[u8], n: u64) -> Result<(), String> {
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n <= buf.len())
        .ok_or("truncated protobuf field")?;
    *buf = &buf[n..];
    Ok(())
}

/// `HealthCheckRequest { string service = 1; }`; proto3 leaves an empty string out.
fn encode_health_check_request(service: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(service.len() + 3);
    if !service.is_empty() {
        out.push(1 << 3 | 2); // field 1, length-delimited
        put_varint(&mut out, service.len() as u64);
        out.extend_from_slice(service.as_bytes());
    }
    out
}

/// The `status` of a `HealthCheckResponse { ServingStatus status = 1; }` (0, UNKNOWN, when
/// absent, as proto3 says); other fields are skipped.
fn decode_health_check_response(mut buf: &[u8]) -> Result<u64, String> {
    let mut status = 0;
    while !buf.is_empty() {
        let key = take_varint(&mut buf)?;
        match (key >> 3, key & 7) {
            (1, 0) => status = take_varint(&mut buf)?,
            (_, 0) => {
                take_varint(&mut buf)?;
            }
            (_, 1) => skip(&mut buf, 8)?,
            (_, 2) => {
                let len = take_varint(&mut buf)?;
                skip(&mut buf, len)?;
            }
            (_, 5) => skip(&mut buf, 4)?,
            (field, wire) => {
                return Err(format!(
                    "unsupported protobuf wire type {wire} for field {field}"
                ))
            }
        }
    }
    Ok(status)
}

/// A gRPC length-prefixed message: compressed flag 0, then the length as u32 big-endian.
fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + message.len());
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// The one message of a unary gRPC answer.
fn grpc_unframe(data: &[u8]) -> Result<&[u8], String> {
    let Some((prefix, rest)) = data.split_first_chunk::<5>() else {
        return Err(format!(
            "gRPC answer of {} bytes holds no message",
            data.len()
        ));
    };
    if prefix[0] != 0 {
        // The request sent no grpc-accept-encoding, so a compressed answer is a server bug.
        return Err("gRPC answer is compressed, which the probe did not accept".into());
    }
    let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    if rest.len() != len {
        return Err(format!(
            "gRPC answer frames {len} bytes but carries {}",
            rest.len()
        ));
    }
    Ok(rest)
}

/// `grpc-message` is percent-encoded (gRPC over HTTP/2, "Responses").
fn percent_decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = raw
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (raw[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            let mut slice = buf.as_slice();
            assert_eq!(take_varint(&mut slice).unwrap(), v);
            assert!(slice.is_empty());
        }
        let mut out = Vec::new();
        put_varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        assert!(take_varint(&mut &[0x80u8][..]).is_err());
        assert!(take_varint(&mut &[0xffu8; 11][..]).is_err());
    }

    #[test]
    fn health_check_request_encoding() {
        assert_eq!(encode_health_check_request(""), Vec::<u8>::new());
        assert_eq!(
            encode_health_check_request("probe"),
            b"\x0a\x05probe".to_vec()
        );
        let long = "s".repeat(200);
        let encoded = encode_health_check_request(&long);
        assert_eq!(&encoded[..3], &[0x0a, 0xc8, 0x01]);
        assert_eq!(encoded.len(), 203);
        assert_eq!(grpc_frame(b"\x0a\x01x"), b"\x00\x00\x00\x00\x03\x0a\x01x");
        assert_eq!(grpc_frame(b""), [0, 0, 0, 0, 0]);
    }

    #[test]
    fn health_check_response_decoding() {
        assert_eq!(decode_health_check_response(b"\x08\x01").unwrap(), SERVING);
        assert_eq!(decode_health_check_response(b"\x08\x02").unwrap(), 2);
        // proto3: an absent status is UNKNOWN.
        assert_eq!(decode_health_check_response(b"").unwrap(), 0);
        // Unknown fields of every wire type are skipped; the last status wins.
        let mixed = b"\x10\x07\x1a\x02hi\x08\x02\x21\x01\x02\x03\x04\x05\x06\x07\x08\x2d\x01\x02\x03\x04\x08\x01";
        assert_eq!(decode_health_check_response(mixed).unwrap(), SERVING);
        assert!(decode_health_check_response(b"\x08").is_err());
        assert!(decode_health_check_response(b"\x1a\x05hi").is_err());
        assert!(decode_health_check_response(b"\x0b").is_err());
    }

    #[test]
    fn grpc_unframing() {
        assert_eq!(
            grpc_unframe(b"\x00\x00\x00\x00\x02\x08\x01").unwrap(),
            b"\x08\x01"
        );
        assert_eq!(grpc_unframe(b"\x00\x00\x00\x00\x00").unwrap(), b"");
        assert!(grpc_unframe(b"").is_err());
        assert!(grpc_unframe(b"\x00\x00\x00").is_err());
        assert!(grpc_unframe(b"\x01\x00\x00\x00\x02\x08\x01").is_err());
        assert!(grpc_unframe(b"\x00\x00\x00\x00\x03\x08\x01").is_err());
    }

    fn statuses(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn grpc_outcomes() {
        let ok = statuses(&[("grpc-status", "0")]);
        assert_eq!(grpc_outcome(&ok, b"\x00\x00\x00\x00\x02\x08\x01"), Ok(()));
        assert_eq!(
            grpc_outcome(&ok, b"\x00\x00\x00\x00\x02\x08\x02").unwrap_err(),
            "gRPC status NOT_SERVING"
        );
        assert_eq!(
            grpc_outcome(&ok, b"\x00\x00\x00\x00\x00").unwrap_err(),
            "gRPC status UNKNOWN"
        );
        let not_found = statuses(&[("grpc-status", "5"), ("grpc-message", "unknown%20service")]);
        assert_eq!(
            grpc_outcome(&not_found, b"").unwrap_err(),
            "grpc-status 5 (NOT_FOUND): unknown service"
        );
        assert!(grpc_outcome(&HeaderMap::new(), b"")
            .unwrap_err()
            .contains("without grpc-status"));
        assert!(grpc_outcome(&statuses(&[("grpc-status", "x")]), b"")
            .unwrap_err()
            .contains("malformed"));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode(b"a%20b%"), "a b%");
        assert_eq!(percent_decode(b"100%zz"), "100%zz");
        assert_eq!(percent_decode(b"caf%C3%A9"), "café");
    }

    fn http(path: &str) -> ProbeSpec {
        ProbeSpec::new(ProbeAction::Http {
            port: 8080,
            path: path.into(),
            headers: vec![],
        })
    }

    #[test]
    fn defaults_are_cloud_runs() {
        let spec = ProbeSpec::new(ProbeAction::Tcp { port: 8080 });
        assert_eq!(spec.timeout, Duration::from_secs(1));
        assert_eq!(spec.period, Duration::from_secs(10));
        assert_eq!(spec.failure_threshold, 3);
        assert_eq!(spec.initial_delay, Duration::ZERO);
        assert_eq!(spec.validate(), Ok(()));
        let startup = ProbeSpec::default_startup(8080);
        assert_eq!(startup.action, ProbeAction::Tcp { port: 8080 });
        assert_eq!(startup.timeout, Duration::from_secs(240));
        assert_eq!(startup.period, Duration::from_secs(240));
        assert_eq!(startup.failure_threshold, 1);
        assert_eq!(startup.startup_budget(), Duration::from_secs(240));
        assert_eq!(startup.validate(), Ok(()));
        let mut spec = http("/healthz");
        spec.initial_delay = Duration::from_secs(5);
        assert_eq!(spec.startup_budget(), Duration::from_secs(35));
        spec.failure_threshold = 0;
        assert_eq!(spec.startup_budget(), Duration::from_secs(15));
    }

    #[test]
    fn validation_names_the_field() {
        let secs = Duration::from_secs;
        type Change<'a> = Box<dyn Fn(&mut ProbeSpec) + 'a>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|s| s.period = secs(0)), "periodSeconds"),
            (Box::new(|s| s.period = secs(241)), "periodSeconds"),
            (
                Box::new(|s| s.timeout = Duration::from_millis(500)),
                "timeoutSeconds",
            ),
            (
                Box::new(|s| {
                    s.period = secs(5);
                    s.timeout = secs(6)
                }),
                "timeoutSeconds",
            ),
            (
                Box::new(|s| s.initial_delay = secs(241)),
                "initialDelaySeconds",
            ),
            (Box::new(|s| s.failure_threshold = 0), "failureThreshold"),
            (
                Box::new(|s| s.action = ProbeAction::Tcp { port: 0 }),
                "tcpSocket.port",
            ),
            (
                Box::new(|s| {
                    s.action = ProbeAction::Grpc {
                        port: 0,
                        service: None,
                    }
                }),
                "grpc.port",
            ),
            (Box::new(|s| *s = http("healthz")), "httpGet.path"),
            (Box::new(|s| *s = http("/a b")), "httpGet.path"),
            (
                Box::new(|s| {
                    s.action = ProbeAction::Http {
                        port: 8080,
                        path: "/".into(),
                        headers: vec![("bad name".into(), "v".into())],
                    }
                }),
                "httpGet.httpHeaders",
            ),
            (
                Box::new(|s| {
                    s.action = ProbeAction::Http {
                        port: 8080,
                        path: "/".into(),
                        headers: vec![("X-A".into(), "line\nbreak".into())],
                    }
                }),
                "httpGet.httpHeaders",
            ),
        ];
        for (change, field) in cases {
            let mut spec = http("/healthz");
            change(&mut spec);
            let err = spec.validate().unwrap_err();
            assert!(err.contains(field), "{err:?} should name {field}");
        }
        let mut edge = http("/healthz?full=1");
        edge.period = secs(240);
        edge.timeout = secs(240);
        edge.initial_delay = secs(240);
        edge.failure_threshold = 1;
        assert_eq!(edge.validate(), Ok(()));
    }

    #[test]
    fn probe_headers_replace_defaults() {
        let mut map = HeaderMap::new();
        map.insert(header::HOST, HeaderValue::from_static("10.0.0.2:8080"));
        map.insert(
            header::USER_AGENT,
            HeaderValue::from_static(PROBE_USER_AGENT),
        );
        add_headers(
            &mut map,
            &[
                ("Host".into(), "svc.example".into()),
                ("X-Probe".into(), "a".into()),
                ("x-probe".into(), "b".into()),
            ],
        )
        .unwrap();
        assert_eq!(map[header::HOST], "svc.example");
        assert_eq!(map[header::USER_AGENT], PROBE_USER_AGENT);
        let probes: Vec<_> = map.get_all("x-probe").iter().collect();
        assert_eq!(probes, ["a", "b"]);
    }

    #[test]
    fn reasons_and_displays() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(io_reason(&refused), "connection refused");
        let os = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(io_reason(&os), "connection refused");
        assert_eq!(human(Duration::from_secs(1)), "1s");
        assert_eq!(human(Duration::from_millis(300)), "300ms");
        let failure = ProbeFailure {
            probe: ProbeKind::Startup,
            attempts: 3,
            reason: "HTTP 503".into(),
        };
        assert_eq!(
            failure.to_string(),
            "startup probe failed after 3 attempts: HTTP 503"
        );
        let failure = ProbeFailure {
            probe: ProbeKind::Liveness,
            attempts: 3,
            reason: "connection refused".into(),
        };
        assert_eq!(
            failure.to_string(),
            "liveness probe failed 3 attempts in a row: connection refused"
        );
        assert_eq!(
            ProbeAction::Grpc {
                port: 50051,
                service: Some("probe".into())
            }
            .to_string(),
            "gRPC health port 50051 service \"probe\""
        );
    }
}
