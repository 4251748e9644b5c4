//! The ingress: one hyper server for HTTP/1.1 and h2c that routes each request by Host and
//! traffic split, takes a slot on an instance (queueing if needed) and forwards the request
//! over pooled keep-alive connections, streaming both bodies and passing WebSocket
//! upgrades through.
//!
//! Status codes the router itself produces: 400 (bad request headers), 401 and 403 (invoker
//! access, see [`crate::access`]), 404 (no service at this Host, or one whose ingress keeps
//! the peer out), 413 (HTTP/1 body over the limit), 429 (no instance within the queue
//! wait), 502 (invalid response from the instance), 503 (the instance failed, or its
//! revision was removed), 504 (request timeout, counted from arrival).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::access::{self, InternalPeers, Verifier};
use crate::body::{full, LimitedBody, ProxyBody, UpstreamBody};
use crate::events::{Event, Events};
use crate::headers;
use crate::pool::{AcquireError, InstanceEnd, Pools, Protocol, QueueConfig, Slot};
use crate::rng::{RandomSource, SplitMix64};
use crate::table::SharedTable;

/// The body of a 429 from the activator queue, as Cloud Run words it.
/// How long a client may take to finish its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a failed request waits for the platform to say how its instance ended.
const END_VERDICT_WAIT: Duration = Duration::from_secs(1);

pub const NO_INSTANCE_MESSAGE: &str =
    "The request was aborted because there was no available instance.";

/// The scheme clients used to reach a listener (for X-Forwarded-Proto and Forwarded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Router-wide settings.
pub struct RouterOptions {
    pub queue: QueueConfig,
    /// Largest HTTP/1 request body (Cloud Run: 32 MiB).
    pub max_http1_body: u64,
    /// For the traffic split and new trace ids.
    pub rng: Arc<dyn RandomSource>,
    /// How long an idle keep-alive connection to an instance is kept.
    pub pool_idle_timeout: Duration,
    /// Checks the bearer tokens sent to private services; without one, private services
    /// refuse every credential (401).
    pub verifier: Option<Arc<dyn Verifier>>,
    /// Whether a peer is one of the platform's own instances, for
    /// [`crate::access::Ingress::InternalOnly`]; without it no peer is internal.
    pub internal: Option<InternalPeers>,
}

impl Default for RouterOptions {
    fn default() -> Self {
        Self {
            queue: QueueConfig::default(),
            max_http1_body: 32 << 20,
            rng: Arc::new(SplitMix64::from_entropy()),
            pool_idle_timeout: Duration::from_secs(90),
            verifier: None,
            internal: None,
        }
    }
}

type UpstreamClient = Client<HttpConnector, LimitedBody>;

/// The data plane: routing table, revision pools, upstream clients.
pub struct Router {
    table: SharedTable,
    pools: Pools,
    events: Arc<dyn Events>,
    rng: Arc<dyn RandomSource>,
    http1: UpstreamClient,
    h2c: UpstreamClient,
    max_http1_body: u64,
    verifier: Option<Arc<dyn Verifier>>,
    internal: Option<InternalPeers>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("pools", &self.pools)
            .finish_non_exhaustive()
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<ProxyBody> {
    let mut r = Response::new(full(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

impl Router {
    pub fn new(options: RouterOptions, events: Arc<dyn Events>) -> Arc<Self> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = |h2: bool| {
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(options.pool_idle_timeout)
                .http2_only(h2)
                .build(connector.clone())
        };
        Arc::new(Self {
            table: SharedTable::default(),
            pools: Pools::new(options.queue, events.clone()),
            events,
            rng: options.rng,
            http1: client(false),
            h2c: client(true),
            max_http1_body: options.max_http1_body,
            verifier: options.verifier,
            internal: options.internal,
        })
    }

    pub fn table(&self) -> &SharedTable {
        &self.table
    }

    pub fn pools(&self) -> &Pools {
        &self.pools
    }

    /// Serves `listener` until `shutdown` resolves, then stops accepting, lets every
    /// connection finish its in-flight requests and returns.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        scheme: Scheme,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        self.serve_with(listener, None, scheme, shutdown).await
    }

    /// Serves HTTPS (HTTP/1.1 and HTTP/2 by ALPN) on `listener` with `tls`, as
    /// [`Router::serve`] does HTTP.
    pub async fn serve_tls(
        self: Arc<Self>,
        listener: TcpListener,
        tls: crate::tls::Tls,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        self.serve_with(listener, Some(tls.acceptor()), Scheme::Https, shutdown)
            .await
    }

    async fn serve_with(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
        scheme: Scheme,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let router = self.clone();
                        let stop = stop_rx.clone();
                        let alive = alive_tx.clone();
                        let tls = tls.clone();
                        tokio::spawn(async move {
                            match tls {
                                None => router.serve_connection(TokioIo::new(stream), peer, scheme, stop).await,
                                Some(acceptor) => {
                                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                        Ok(Ok(stream)) => router.serve_connection(TokioIo::new(stream), peer, scheme, stop).await,
                                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                                    }
                                }
                            }
                            drop(alive);
                        });
                    }
                    Err(e) => {
                        // Out of descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                },
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        let _ = stop_tx.send(true);
        drop(alive_tx);
        let _ = alive_rx.recv().await;
        Ok(())
    }

    /// Serves one accepted connection (plain TCP here, TLS from a future listener), closing
    /// it gracefully once `stop` turns true.
    pub async fn serve_connection<I>(
        self: Arc<Self>,
        io: I,
        peer: SocketAddr,
        scheme: Scheme,
        mut stop: watch::Receiver<bool>,
    ) where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let router = self;
        let service = hyper::service::service_fn(move |req| {
            let router = router.clone();
            async move { Ok::<_, Infallible>(router.handle(req, peer, scheme).await) }
        });
        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        let conn = builder.serve_connection_with_upgrades(io, service);
        tokio::pin!(conn);
        let stopped = async {
            if !*stop.borrow_and_update() {
                let _ = stop.wait_for(|s| *s).await;
            }
        };
        let result = tokio::select! {
            r = conn.as_mut() => r,
            () = stopped => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }

    /// Routes and forwards one request. Never fails: errors become responses.
    pub async fn handle(
        self: &Arc<Self>,
        mut req: Request<Incoming>,
        peer: SocketAddr,
        scheme: Scheme,
    ) -> Response<ProxyBody> {
        let arrival = Instant::now();
        let http1 = req.version() < Version::HTTP_2;
        if let Err(e) = headers::validate(req.headers(), true) {
            return text(StatusCode::BAD_REQUEST, format!("Bad Request: {e}\n"));
        }
        let host = match req.headers().get(header::HOST) {
            Some(h) => h.to_str().ok().map(str::to_owned),
            None => req.uri().authority().map(|a| a.to_string()),
        };
        let Some(host) = host else {
            return text(StatusCode::BAD_REQUEST, "Bad Request: no Host\n");
        };
        let Some(route) = self.table.load().resolve(&host, &*self.rng) else {
            return text(
                StatusCode::NOT_FOUND,
                "Not Found: no service at this host.\n",
            );
        };
        match access::check(
            &route.access,
            req.headers(),
            peer.ip(),
            self.internal.as_deref(),
            self.verifier.as_deref(),
        ) {
            Ok(None) => {}
            Ok(Some((name, value))) => {
                req.headers_mut().insert(name, value);
            }
            Err(refusal) => {
                tracing::debug!(service = %route.service, %peer, ?refusal, "request refused");
                return refusal.response(req.uri());
            }
        }
        if http1 {
            let length = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if length.is_some_and(|n| n > self.max_http1_body) {
                return text(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large\n");
            }
        }
        let pool = self.pools.pool(&route.revision);
        let settings = pool.settings();
        let deadline = arrival + settings.timeout;
        let slot = match tokio::time::timeout_at(deadline, pool.acquire()).await {
            Err(_) => return timeout(),
            Ok(Err(AcquireError::QueueTimeout)) => {
                return text(StatusCode::TOO_MANY_REQUESTS, NO_INSTANCE_MESSAGE)
            }
            Ok(Err(AcquireError::RevisionRemoved)) => {
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service Unavailable: the revision was removed.\n",
                )
            }
            Ok(Ok(slot)) => slot,
        };

        let upgrade = http1 && headers::is_upgrade(req.headers());
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers, upgrade);
        if !parts.headers.contains_key(header::HOST) {
            if let Ok(v) = HeaderValue::from_str(&host) {
                parts.headers.insert(header::HOST, v);
            }
        }
        headers::set_forwarding(&mut parts.headers, peer.ip(), scheme.as_str());
        headers::set_trace(&mut parts.headers, &*self.rng);
        let h2c = settings.protocol == Protocol::H2c && !upgrade;
        parts.version = if h2c {
            Version::HTTP_2
        } else {
            Version::HTTP_11
        };
        parts.extensions = Default::default();
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        parts.uri = match format!("http://{}{path}", slot.addr()).parse::<Uri>() {
            Ok(u) => u,
            Err(_) => return text(StatusCode::BAD_REQUEST, "Bad Request: invalid target\n"),
        };
        let exceeded = Arc::new(AtomicBool::new(false));
        let limit = if http1 { self.max_http1_body } else { u64::MAX };
        let upstream_req =
            Request::from_parts(parts, LimitedBody::new(body, limit, exceeded.clone()));
        let client = if h2c { &self.h2c } else { &self.http1 };

        let mut resp = match tokio::time::timeout_at(deadline, client.request(upstream_req)).await {
            Err(_) => return timeout(),
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                if exceeded.load(Ordering::Relaxed) {
                    return text(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large\n");
                }
                return self.upstream_error(&e, slot).await;
            }
        };
        if headers::validate(resp.headers(), false).is_err() {
            return text(
                StatusCode::BAD_GATEWAY,
                "Bad Gateway: invalid response headers from the instance.\n",
            );
        }
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            if let Some(client_upgrade) = client_upgrade {
                let upstream_upgrade = hyper::upgrade::on(&mut resp);
                tokio::spawn(tunnel(client_upgrade, upstream_upgrade, deadline, slot));
                let (mut parts, _) = resp.into_parts();
                headers::strip_hop_by_hop(&mut parts.headers, true);
                parts.extensions = Default::default();
                return Response::from_parts(parts, full(""));
            }
        }
        let (mut parts, body) = resp.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers, false);
        headers::private_if_cookie(&mut parts.headers);
        parts.version = Version::HTTP_11;
        parts.extensions = Default::default();
        Response::from_parts(
            parts,
            UpstreamBody::new(body, deadline, Some(slot)).boxed_unsync(),
        )
    }

    /// The request could not get a response from the instance.
    async fn upstream_error(
        &self,
        e: &hyper_util::client::legacy::Error,
        slot: Slot,
    ) -> Response<ProxyBody> {
        let hyper_error =
            std::error::Error::source(e).and_then(|s| s.downcast_ref::<hyper::Error>());
        if let Some(h) = hyper_error {
            if h.is_parse() || h.is_parse_status() || h.is_parse_too_large() {
                return text(
                    StatusCode::BAD_GATEWAY,
                    "Bad Gateway: invalid response from the instance.\n",
                );
            }
            if h.is_user() || h.is_body_write_aborted() {
                // The client's own request body failed: not the instance's fault.
                return text(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: the request body could not be read.\n",
                );
            }
        }
        let revision = slot.revision().clone();
        let instance = slot.instance_id().clone();
        let error = format!("{e:?}");
        tracing::warn!(%revision, %instance, %error, "instance failed mid-request");
        slot.pool().remove_instance(&instance);
        let end = slot.end().clone();
        drop(slot);
        self.events.event(Event::InstanceFailed {
            revision,
            instance,
            error,
        });
        // An instance killed for its memory answers 500 (the contract); any other
        // failure 503. The platform's word comes within milliseconds of the exit.
        match end.wait(END_VERDICT_WAIT).await {
            Some(InstanceEnd::OutOfMemory) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error: the instance was stopped because it exceeded its memory limit.\n",
            ),
            _ => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable: the instance failed.\n",
            ),
        }
    }
}

fn timeout() -> Response<ProxyBody> {
    text(
        StatusCode::GATEWAY_TIMEOUT,
        "Gateway Timeout: the request reached its timeout.\n",
    )
}

/// Copies both ways between an upgraded client connection and an upgraded instance
/// connection until either side closes or the request's deadline passes. The slot is held
/// meanwhile: a WebSocket counts against the instance's concurrency.
async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    deadline: Instant,
    slot: Slot,
) {
    let (client, upstream) = match tokio::join!(client, upstream) {
        (Ok(c), Ok(u)) => (c, u),
        (c, u) => {
            tracing::debug!(client = ?c.err(), upstream = ?u.err(), "upgrade failed");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    let copied = tokio::time::timeout_at(
        deadline,
        tokio::io::copy_bidirectional(&mut client, &mut upstream),
    )
    .await;
    tracing::debug!(?copied, "upgraded connection ended");
    drop(slot);
}
