//! Invoker access control through a real router: ingress, credentials, audiences, invokers,
//! what the instance sees, with a fake verifier and a fake instance on 127.0.0.1.

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use hyper::Response;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use router::{Access, Credential, Ingress, Verifier};

const URL: &str = "http://hello.localhost";
const SA: &str = "serviceAccount:caller@local.iam.gserviceaccount.com";
/// An ID token for `SA` with the service's URL as its audience.
const INVOKER: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpbnZva2VyIjp0cnVlfQ.c2lnbmF0dXJl";
/// The same, with a trailing slash on the audience.
const INVOKER_SLASH: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzbGFzaCI6dHJ1ZX0.c2lnbmF0dXJl";
/// An ID token for `SA` minted for another service.
const OTHER_AUDIENCE: &str = "eyJhbGciOiJSUzI1NiJ9.eyJvdGhlciI6dHJ1ZX0.c2lnbmF0dXJl";
/// A valid ID token for the service naming a member that is not an invoker.
const STRANGER: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdHJhbmdlciI6dHJ1ZX0.c2lnbmF0dXJl";
/// A JWT whose signature does not verify.
const FORGED: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpbnZva2VyIjp0cnVlfQ.Zm9yZ2Vk";
/// An opaque access token for `SA` (no audience).
const ACCESS_TOKEN: &str = "hr1-access-0123456789abcdef";

struct FakeVerifier {
    tokens: HashMap<&'static str, Credential>,
    calls: AtomicUsize,
}

impl FakeVerifier {
    fn new() -> Arc<Self> {
        let id = |member: &str, audience: &str| Credential {
            member: member.into(),
            audience: Some(audience.into()),
        };
        Arc::new(Self {
            tokens: HashMap::from([
                (INVOKER, id(SA, URL)),
                (INVOKER_SLASH, id(SA, "http://hello.localhost/")),
                (OTHER_AUDIENCE, id(SA, "http://other.localhost")),
                (STRANGER, id("user:stranger@example.com", URL)),
                (
                    ACCESS_TOKEN,
                    Credential {
                        member: SA.into(),
                        audience: None,
                    },
                ),
            ]),
            calls: AtomicUsize::new(0),
        })
    }
}

impl Verifier for FakeVerifier {
    fn verify(&self, bearer: &str) -> Result<Credential, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.tokens
            .get(bearer)
            .cloned()
            .ok_or_else(|| "bad signature".to_string())
    }
}

struct Setup {
    h: Harness,
    verifier: Arc<FakeVerifier>,
    reached: Arc<AtomicUsize>,
}

/// A router with the fake verifier, 127.0.0.2 as the only internal peer, and service
/// `hello` with `access` on an instance that echoes both credential headers.
async fn setup(access: Access) -> Setup {
    let verifier = FakeVerifier::new();
    let v: Arc<dyn Verifier> = verifier.clone();
    let h = start_options(move |o| {
        o.verifier = Some(v);
        o.internal = Some(Arc::new(|ip: IpAddr| {
            ip == IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))
        }));
    })
    .await;
    let reached = Arc::new(AtomicUsize::new(0));
    let r = reached.clone();
    let addr = upstream(handler(move |req| {
        r.fetch_add(1, Ordering::SeqCst);
        let get = |name: &str| {
            req.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_else(|| "-".into())
        };
        let body = format!(
            "authorization={}\nx-serverless-authorization={}",
            get("authorization"),
            get("x-serverless-authorization")
        );
        async move { Response::new(router::body::full(body)) }
    }))
    .await;
    h.route_with("hello", &[("hello-1", 100)], &[], access);
    h.instance("hello-1", "a", addr, 100);
    Setup {
        h,
        verifier,
        reached,
    }
}

fn private(invokers: &[&str]) -> Access {
    Access {
        invokers: invokers.iter().map(|s| s.to_string()).collect(),
        audiences: vec![URL.into(), "http://blue---hello.localhost".into()],
        ..Access::default()
    }
}

/// GET `path` on `hello.localhost` with `headers`.
async fn call(s: &Setup, path: &str, headers: &[(&str, &str)]) -> (u16, hyper::HeaderMap, String) {
    call_with(&client(), s, path, headers).await
}

async fn call_with(
    c: &TestClient,
    s: &Setup,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, hyper::HeaderMap, String) {
    let mut req = hyper::Request::get(s.h.url(path)).header("host", "hello.localhost");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(c, &s.h, req.body(Full::default()).unwrap()).await
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn assert_forbidden(resp: &(u16, hyper::HeaderMap, String), path: &str) {
    let (status, headers, body) = resp;
    assert_eq!(*status, 403, "{body}");
    assert_eq!(headers["content-type"], "text/html; charset=UTF-8");
    assert!(headers.get("www-authenticate").is_none());
    assert!(body.contains("<title>403 Forbidden</title>"), "{body}");
    assert!(body.contains("<h1>Error: Forbidden</h1>"), "{body}");
    let line = format!(
        "<h2>Your client does not have permission to get URL <code>{path}</code> from this server.</h2>"
    );
    assert!(body.contains(&line), "{body}");
}

fn assert_unauthorized(resp: &(u16, hyper::HeaderMap, String), path: &str) {
    let (status, headers, body) = resp;
    assert_eq!(*status, 401, "{body}");
    assert_eq!(headers["content-type"], "text/html; charset=UTF-8");
    assert_eq!(
        headers["www-authenticate"],
        r#"Bearer error="invalid_token" error_description="The access token could not be verified""#
    );
    assert!(body.contains("<title>401 Unauthorized</title>"), "{body}");
    assert!(body.contains("<h1>Error: Unauthorized</h1>"), "{body}");
    let line = format!(
        "<h2>Your client does not have permission to the requested URL <code>{path}</code>.</h2>"
    );
    assert!(body.contains(&line), "{body}");
}

fn assert_not_found(resp: &(u16, hyper::HeaderMap, String)) {
    let (status, headers, body) = resp;
    assert_eq!(*status, 404, "{body}");
    assert_eq!(headers["content-type"], "text/html; charset=UTF-8");
    assert!(body.contains("<title>404 Page not found</title>"), "{body}");
    assert!(body.contains("<h1>Error: Page not found</h1>"), "{body}");
}

#[tokio::test]
async fn public_services_pass_everything_unchanged() {
    let s = setup(Access::public()).await;
    let (status, _, body) = call(&s, "/", &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "authorization=-\nx-serverless-authorization=-")
    );
    let (status, _, body) = call(
        &s,
        "/",
        &[
            ("authorization", &bearer(INVOKER)),
            ("x-serverless-authorization", &bearer(FORGED)),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        format!("authorization=Bearer {INVOKER}\nx-serverless-authorization=Bearer {FORGED}")
    );
    assert_eq!(
        s.verifier.calls.load(Ordering::SeqCst),
        0,
        "no token is checked"
    );

    // allUsers among the invokers is the same as public.
    let s = setup(private(&["allUsers"])).await;
    assert_eq!(call(&s, "/", &[]).await.0, 200);
}

#[tokio::test]
async fn no_credential_is_403() {
    let s = setup(private(&[SA])).await;
    let resp = call(&s, "/p?q=1&r=2", &[]).await;
    assert_forbidden(&resp, "/p?q=1&amp;r=2");
    assert_eq!(s.reached.load(Ordering::SeqCst), 0);
    assert_eq!(s.verifier.calls.load(Ordering::SeqCst), 0);
}

/// Bad signatures, other schemes, empty bearers and other audiences are 401; a valid token
/// naming a member without the role is 403. None reaches the instance.
#[tokio::test]
async fn refused_credentials() {
    let s = setup(private(&[SA])).await;
    let forged = bearer(FORGED);
    let other = bearer(OTHER_AUDIENCE);
    for (path, authorization) in [
        ("/", forged.as_str()),
        ("/x", "Basic dXNlcjpwdw=="),
        ("/", "Bearer"),
        ("/aud", other.as_str()),
    ] {
        let resp = call(&s, path, &[("authorization", authorization)]).await;
        assert_unauthorized(&resp, path);
    }
    let resp = call(&s, "/", &[("authorization", &bearer(STRANGER))]).await;
    assert_forbidden(&resp, "/");
    assert_eq!(s.reached.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn invoker_is_admitted_and_the_signature_is_removed() {
    let s = setup(private(&[SA])).await;
    let (status, _, body) = call(&s, "/", &[("authorization", &bearer(INVOKER))]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        "authorization=Bearer eyJhbGciOiJSUzI1NiJ9.eyJpbnZva2VyIjp0cnVlfQ.SIGNATURE_REMOVED_BY_GOOGLE\n\
         x-serverless-authorization=-"
    );
    // An audience with a trailing slash is the same URL.
    let (status, _, _) = call(&s, "/", &[("authorization", &bearer(INVOKER_SLASH))]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn serverless_authorization_is_preferred() {
    let s = setup(private(&[SA])).await;
    let (status, _, body) = call(
        &s,
        "/",
        &[
            ("x-serverless-authorization", &bearer(INVOKER)),
            ("authorization", "Bearer application-token"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        "authorization=Bearer application-token\n\
         x-serverless-authorization=Bearer eyJhbGciOiJSUzI1NiJ9.eyJpbnZva2VyIjp0cnVlfQ.SIGNATURE_REMOVED_BY_GOOGLE"
    );
    // The application's valid-looking Authorization does not rescue a bad one.
    let resp = call(
        &s,
        "/",
        &[
            ("x-serverless-authorization", &bearer(FORGED)),
            ("authorization", &bearer(INVOKER)),
        ],
    )
    .await;
    assert_unauthorized(&resp, "/");
}

#[tokio::test]
async fn all_authenticated_users() {
    let s = setup(private(&["allAuthenticatedUsers"])).await;
    let (status, _, body) = call(&s, "/", &[("authorization", &bearer(STRANGER))]).await;
    assert_eq!(status, 200, "{body}");
    assert_forbidden(&call(&s, "/", &[]).await, "/");
    assert_unauthorized(
        &call(&s, "/", &[("authorization", &bearer(FORGED))]).await,
        "/",
    );
}

#[tokio::test]
async fn access_tokens_have_no_audience_and_pass_unchanged() {
    let s = setup(private(&[SA])).await;
    let (status, _, body) = call(&s, "/", &[("authorization", &bearer(ACCESS_TOKEN))]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        format!("authorization=Bearer {ACCESS_TOKEN}\nx-serverless-authorization=-")
    );
}

#[tokio::test]
async fn no_verifier_refuses_every_credential() {
    let h = start().await;
    h.route_with("hello", &[("hello-1", 100)], &[], private(&[SA]));
    h.instance("hello-1", "a", named("one").await, 10);
    let req = hyper::Request::get(h.url("/"))
        .header("host", "hello.localhost")
        .header("authorization", bearer(INVOKER))
        .body(Full::default())
        .unwrap();
    assert_eq!(send(&client(), &h, req).await.0, 401);
}

fn behind(ingress: Ingress, access: Access) -> Access {
    Access { ingress, ..access }
}

/// A client whose connections come from 127.0.0.2, the test's one internal peer.
fn internal_client() -> TestClient {
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))));
    Client::builder(TokioExecutor::new()).build::<_, Full<Bytes>>(connector)
}

#[tokio::test]
async fn ingress_none_is_404_for_everyone() {
    let s = setup(behind(Ingress::None, Access::public())).await;
    assert_not_found(&call(&s, "/", &[]).await);
    assert_not_found(&call_with(&internal_client(), &s, "/", &[]).await);
    let s = setup(behind(Ingress::None, private(&[SA]))).await;
    assert_not_found(&call(&s, "/", &[("authorization", &bearer(INVOKER))]).await);
    assert_eq!(s.reached.load(Ordering::SeqCst), 0);
    assert_eq!(s.verifier.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn internal_only_admits_internal_peers() {
    let s = setup(behind(Ingress::InternalOnly, Access::public())).await;
    assert_not_found(&call(&s, "/", &[]).await);
    let (status, _, _) = call_with(&internal_client(), &s, "/", &[]).await;
    assert_eq!(status, 200);

    // Ingress and IAM are independent: an internal peer still needs the role.
    let s = setup(behind(Ingress::InternalOnly, private(&[SA]))).await;
    assert_forbidden(&call_with(&internal_client(), &s, "/", &[]).await, "/");
    let auth = bearer(INVOKER);
    let (status, _, _) = call_with(&internal_client(), &s, "/", &[("authorization", &auth)]).await;
    assert_eq!(status, 200);
    assert_not_found(&call(&s, "/", &[("authorization", &auth)]).await);
}
