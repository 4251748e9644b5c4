//! Test support: a router on 127.0.0.1, fake instances (small hyper servers on 127.0.0.1)
//! and clients.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use router::body::ProxyBody;
use router::{
    Access, Event, Protocol, QueueConfig, RevisionSettings, Router, RouterOptions, RoutingTable,
    Scheme, ServiceRoutes, SplitMix64, TrafficTarget,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub type Handler = Arc<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<ProxyBody>> + Send>>
        + Send
        + Sync,
>;

pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<ProxyBody>> + Send + 'static,
{
    Arc::new(move |req| Box::pin(f(req)))
}

/// A fake instance: HTTP/1.1 and h2c (auto), with upgrades, on a free loopback port.
pub async fn upstream(h: Handler) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let h = h.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let h = h.clone();
                    async move { Ok::<_, Infallible>(h(req).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// An upstream that answers `text` to everything.
pub async fn named(text: &'static str) -> SocketAddr {
    upstream(handler(move |_| async move {
        Response::new(router::body::full(text))
    }))
    .await
}

pub struct Harness {
    pub router: Arc<Router>,
    pub addr: SocketAddr,
    pub events: mpsc::UnboundedReceiver<Event>,
}

pub async fn start() -> Harness {
    start_with(QueueConfig::default()).await
}

pub async fn start_with(queue: QueueConfig) -> Harness {
    start_options(|o| o.queue = queue).await
}

/// A router with the test defaults, then `f` applied to its options.
pub async fn start_options(f: impl FnOnce(&mut RouterOptions)) -> Harness {
    let (tx, events) = mpsc::unbounded_channel();
    let mut options = RouterOptions {
        rng: Arc::new(SplitMix64::new(12345)),
        ..RouterOptions::default()
    };
    f(&mut options);
    let router = Router::new(options, Arc::new(tx));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        router
            .clone()
            .serve(listener, Scheme::Http, std::future::pending()),
    );
    Harness {
        router,
        addr,
        events,
    }
}

impl Harness {
    /// One public service `name` in the default project with this traffic and tags.
    pub fn route(&self, name: &str, traffic: &[(&str, u32)], tags: &[(&str, &str)]) {
        self.route_with(name, traffic, tags, Access::public());
    }

    /// One service `name` in the default project with this traffic, tags and access.
    pub fn route_with(
        &self,
        name: &str,
        traffic: &[(&str, u32)],
        tags: &[(&str, &str)],
        access: Access,
    ) {
        self.router.table().store(RoutingTable::new(
            "localhost",
            "local",
            [ServiceRoutes {
                project: "local".into(),
                service: name.into(),
                traffic: traffic
                    .iter()
                    .map(|(r, p)| TrafficTarget {
                        revision: r.to_string(),
                        percent: *p,
                    })
                    .collect(),
                tags: tags
                    .iter()
                    .map(|(t, r)| (t.to_string(), r.to_string()))
                    .collect(),
                access,
            }],
        ));
    }

    pub fn revision(&self, name: &str, f: impl FnOnce(&mut RevisionSettings)) {
        let mut s = RevisionSettings::new(name);
        f(&mut s);
        self.router.pools().set_revision(s);
    }

    pub fn instance(&self, revision: &str, id: &str, addr: SocketAddr, concurrency: usize) {
        self.router.pools().add_instance(
            revision,
            router::Endpoint {
                id: id.into(),
                addr,
                concurrency,
                end: Default::default(),
            },
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Waits (without a time bound of its own) for an event matching `f`.
    pub async fn event(&mut self, f: impl Fn(&Event) -> bool) -> Event {
        loop {
            let e = tokio::time::timeout(Duration::from_secs(20), self.events.recv())
                .await
                .expect("no event in 20 s")
                .expect("events closed");
            if f(&e) {
                return e;
            }
        }
    }
}

pub type TestClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

pub fn h2_client() -> TestClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(HttpConnector::new())
}

/// GET `path` on the router with `Host: host`; returns status, headers and body text.
pub async fn get(h: &Harness, host: &str, path: &str) -> (u16, hyper::HeaderMap, String) {
    send(
        &client(),
        h,
        Request::get(h.url(path))
            .header("host", host)
            .body(Full::default())
            .unwrap(),
    )
    .await
}

pub async fn send(
    c: &TestClient,
    _h: &Harness,
    req: Request<Full<Bytes>>,
) -> (u16, hyper::HeaderMap, String) {
    let resp = tokio::time::timeout(Duration::from_secs(60), c.request(req))
        .await
        .expect("no response in 60 s")
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

pub fn h2c(s: &mut RevisionSettings) {
    s.protocol = Protocol::H2c;
}
