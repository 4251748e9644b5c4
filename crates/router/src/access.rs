//! Invoker access control, as Cloud Run does it, checked once a request's service is known
//! and before it takes a slot on an instance.
//!
//! 1. Ingress. [`Ingress::None`] refuses everyone; [`Ingress::InternalOnly`] refuses peers
//!    that the platform's `internal` test (homerun's own instances on its bridge) does not
//!    recognise. Both answer 404 with Google's "Page not found" page, as Cloud Run does for
//!    a request that its ingress setting keeps out.
//! 2. Authentication, unless the service is public (`allUsers` holds the invoker role, or
//!    IAM is disabled for invocation). The credential is `X-Serverless-Authorization` when
//!    present (the `Authorization` header is then the application's and is passed through
//!    untouched), else `Authorization`, in both cases `Bearer TOKEN`.
//!    - no credential: 403;
//!    - a credential that is not a bearer token, or that the [`Verifier`] rejects (bad
//!      signature, expired, malformed), or an ID token whose audience is none of the
//!      service's: 401, with `WWW-Authenticate: Bearer error="invalid_token"
//!      error_description="The access token could not be verified"`;
//!    - a valid credential whose member is not an invoker (and the invokers do not include
//!      `allAuthenticatedUsers`): 403.
//!
//!    Refusals carry Google's short HTML error pages (`text/html; charset=UTF-8`).
//! 3. What reaches the container: when an ID token (a JWT) was checked, the header that
//!    carried it goes on with the JWT's signature replaced by `SIGNATURE_REMOVED_BY_GOOGLE`,
//!    so the container can read the claims but cannot replay the token. Access tokens (no
//!    audience) and every header of a public service go on unchanged.
//!
//! Audiences match exactly, ignoring one trailing `/` on either side. A public service
//! costs one field read: the verifier is only called for private services.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Response, StatusCode, Uri};

use crate::body::{full, ProxyBody};

/// The header Cloud Run reads a credential from before `Authorization`.
pub const SERVERLESS_AUTHORIZATION: &str = "x-serverless-authorization";

/// What replaces a checked ID token's signature on its way to the container.
pub const SIGNATURE_REMOVED: &str = "SIGNATURE_REMOVED_BY_GOOGLE";

/// The IAM member that makes a service public when it holds the invoker role.
pub const ALL_USERS: &str = "allUsers";

/// The IAM member that admits any caller with a valid credential.
pub const ALL_AUTHENTICATED_USERS: &str = "allAuthenticatedUsers";

/// The value of `WWW-Authenticate` on a 401, as Cloud Run sends it.
pub const INVALID_TOKEN_CHALLENGE: &str =
    r#"Bearer error="invalid_token" error_description="The access token could not be verified""#;

/// Which peers may reach a service at all (the service's `ingress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Ingress {
    /// `INGRESS_TRAFFIC_ALL`: anyone.
    #[default]
    All,
    /// `INGRESS_TRAFFIC_INTERNAL_ONLY`: only peers the platform calls internal.
    InternalOnly,
    /// `INGRESS_TRAFFIC_NONE`: nobody.
    None,
}

/// Who may invoke one service. The default is Cloud Run's: reachable by all, private, no
/// invokers, so every request is refused until the controller says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Access {
    pub ingress: Ingress,
    /// `allUsers` holds `roles/run.invoker`, or the service has `invokerIamDisabled`.
    pub public: bool,
    /// IAM members holding `roles/run.invoker`: `serviceAccount:a@b`, `user:x@y`,
    /// `allAuthenticatedUsers` (`allUsers` here counts as `public`).
    pub invokers: Vec<String>,
    /// Accepted ID-token audiences: the service's URLs, its tag URLs, its
    /// `customAudiences`.
    pub audiences: Vec<String>,
}

impl Access {
    /// Anyone may invoke the service from anywhere.
    pub fn public() -> Self {
        Self {
            public: true,
            ..Self::default()
        }
    }

    fn is_public(&self) -> bool {
        self.public || self.invokers.iter().any(|m| m == ALL_USERS)
    }

    /// Whether `member` holds the invoker role, directly or through
    /// `allAuthenticatedUsers`. Emails compare without regard to ASCII case.
    pub fn admits(&self, member: &str) -> bool {
        self.invokers
            .iter()
            .any(|m| m == ALL_AUTHENTICATED_USERS || m.eq_ignore_ascii_case(member))
    }

    /// Whether an ID token for `audience` is one for this service.
    pub fn accepts_audience(&self, audience: &str) -> bool {
        let audience = without_slash(audience);
        self.audiences.iter().any(|a| without_slash(a) == audience)
    }
}

fn without_slash(s: &str) -> &str {
    s.strip_suffix('/').unwrap_or(s)
}

/// A verified credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The IAM member it names: `serviceAccount:a@b`, `user:x@y`.
    pub member: String,
    /// The audience of an ID token (a JWT); `None` for an opaque access token.
    pub audience: Option<String>,
}

/// Checks bearer tokens (signature, expiry, issuer); implemented outside the router.
pub trait Verifier: Send + Sync {
    /// `bearer` is the token alone, without the `Bearer ` scheme. The error says why the
    /// token was refused; it goes to the router's debug log only.
    fn verify(&self, bearer: &str) -> Result<Credential, String>;
}

/// The platform's test for "this peer is one of homerun's own instances".
pub type InternalPeers = Arc<dyn Fn(IpAddr) -> bool + Send + Sync>;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The service's ingress keeps this peer out (404).
    Ingress,
    /// A private service and no credential (403).
    NoCredential,
    /// The credential is not a bearer token or could not be verified (401).
    InvalidToken(String),
    /// An ID token for another audience (401).
    WrongAudience(String),
    /// A valid credential whose member is not an invoker (403).
    NotInvoker(String),
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::Ingress => StatusCode::NOT_FOUND,
            Refusal::NoCredential | Refusal::NotInvoker(_) => StatusCode::FORBIDDEN,
            Refusal::InvalidToken(_) | Refusal::WrongAudience(_) => StatusCode::UNAUTHORIZED,
        }
    }

    /// The answer Cloud Run gives, naming the request's path (and query) where it does.
    pub fn response(&self, uri: &Uri) -> Response<ProxyBody> {
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let status = self.status();
        let body: Bytes = match status {
            StatusCode::FORBIDDEN => Bytes::from(format!(
                "{HEAD}<title>403 Forbidden</title>\n</head>\n{BODY}<h1>Error: Forbidden</h1>\n\
                 <h2>Your client does not have permission to get URL <code>{}</code> from this server.</h2>\n{TAIL}",
                escape(path)
            )),
            StatusCode::UNAUTHORIZED => Bytes::from(format!(
                "{HEAD}<title>401 Unauthorized</title>\n</head>\n{BODY}<h1>Error: Unauthorized</h1>\n\
                 <h2>Your client does not have permission to the requested URL <code>{}</code>.</h2>\n{TAIL}",
                escape(path)
            )),
            _ => Bytes::from_static(NOT_FOUND_PAGE.as_bytes()),
        };
        let mut r = Response::new(full(body));
        *r.status_mut() = status;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=UTF-8"),
        );
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(INVALID_TOKEN_CHALLENGE),
            );
        }
        r
    }
}

const HEAD: &str =
    "<html><head>\n<meta http-equiv=\"content-type\" content=\"text/html;charset=utf-8\">\n";
const BODY: &str = "<body text=#000000 bgcolor=#ffffff>\n";
const TAIL: &str = "<h2></h2>\n</body></html>\n";
const NOT_FOUND_PAGE: &str =
    "<html><head>\n<meta http-equiv=\"content-type\" content=\"text/html;charset=utf-8\">\n\
<title>404 Page not found</title>\n</head>\n<body text=#000000 bgcolor=#ffffff>\n\
<h1>Error: Page not found</h1>\n<h2>The requested URL was not found on this server.</h2>\n\
<h2></h2>\n</body></html>\n";

fn escape(s: &str) -> Cow<'_, str> {
    if !s.contains(['<', '>', '&', '"', '\'']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A header to set on the request before it goes on: the checked ID token with its
/// signature removed, in the header that carried it.
pub type Rewrite = Option<(HeaderName, HeaderValue)>;

/// Decides whether a request from `peer` with `headers` may invoke a service with
/// `access`. `internal` is the platform's test for its own instances (none: no peer is
/// internal); `verifier` checks tokens (none: no token is valid).
pub fn check(
    access: &Access,
    headers: &HeaderMap,
    peer: IpAddr,
    internal: Option<&(dyn Fn(IpAddr) -> bool + Send + Sync)>,
    verifier: Option<&dyn Verifier>,
) -> Result<Rewrite, Refusal> {
    match access.ingress {
        Ingress::All => {}
        Ingress::InternalOnly if internal.is_some_and(|f| f(peer)) => {}
        Ingress::InternalOnly | Ingress::None => return Err(Refusal::Ingress),
    }
    if access.is_public() {
        return Ok(None);
    }
    let serverless = HeaderName::from_static(SERVERLESS_AUTHORIZATION);
    let (name, value) = match headers.get(&serverless) {
        Some(v) => (serverless, v),
        None => match headers.get(header::AUTHORIZATION) {
            Some(v) => (header::AUTHORIZATION, v),
            None => return Err(Refusal::NoCredential),
        },
    };
    let Some(token) = bearer(value) else {
        return Err(Refusal::InvalidToken(format!(
            "{name} is not a bearer token"
        )));
    };
    let Some(verifier) = verifier else {
        return Err(Refusal::InvalidToken("no verifier configured".into()));
    };
    let credential = verifier.verify(token).map_err(Refusal::InvalidToken)?;
    if let Some(audience) = &credential.audience {
        if !access.accepts_audience(audience) {
            return Err(Refusal::WrongAudience(audience.clone()));
        }
    }
    if !access.admits(&credential.member) {
        return Err(Refusal::NotInvoker(credential.member));
    }
    if credential.audience.is_none() {
        return Ok(None);
    }
    Ok(strip_signature(value).map(|v| (name, v)))
}

/// The token of `Bearer TOKEN` (scheme in any case, one or more spaces).
fn bearer(value: &HeaderValue) -> Option<&str> {
    let (scheme, token) = value.to_str().ok()?.split_once(' ')?;
    let token = token.trim_start_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' '))
        .then_some(token)
}

/// `Bearer HEADER.PAYLOAD.SIGNATURE` → `Bearer HEADER.PAYLOAD.SIGNATURE_REMOVED_BY_GOOGLE`;
/// `None` when the value does not hold a JWT.
fn strip_signature(value: &HeaderValue) -> Option<HeaderValue> {
    let token = bearer(value)?;
    if token.split('.').count() != 3 {
        return None;
    }
    let value = value.to_str().ok()?;
    let cut = value.rfind('.')? + 1;
    HeaderValue::from_str(&format!("{}{SIGNATURE_REMOVED}", &value[..cut])).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(bearer(&v("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&v("bearer  a.b.c")), Some("a.b.c"));
        assert_eq!(bearer(&v("Basic dXNlcjpwdw==")), None);
        assert_eq!(bearer(&v("Bearer")), None);
        assert_eq!(bearer(&v("Bearer a b")), None);
    }

    #[test]
    fn signatures_are_removed_from_jwts_only() {
        let v = HeaderValue::from_static("Bearer eyJh.eyJz.c2ln");
        assert_eq!(
            strip_signature(&v).unwrap(),
            "Bearer eyJh.eyJz.SIGNATURE_REMOVED_BY_GOOGLE"
        );
        assert!(strip_signature(&HeaderValue::from_static("Bearer opaque")).is_none());
        assert!(strip_signature(&HeaderValue::from_static("Bearer a.b")).is_none());
    }

    #[test]
    fn audiences_ignore_one_trailing_slash() {
        let access = Access {
            audiences: vec!["https://hello.localhost/".into(), "custom".into()],
            ..Access::default()
        };
        assert!(access.accepts_audience("https://hello.localhost"));
        assert!(access.accepts_audience("https://hello.localhost/"));
        assert!(access.accepts_audience("custom/"));
        assert!(!access.accepts_audience("https://hello.localhost//"));
        assert!(!access.accepts_audience("https://HELLO.localhost"));
        assert!(!access.accepts_audience("https://other.localhost"));
    }

    #[test]
    fn members() {
        let access = Access {
            invokers: vec!["serviceAccount:a@p.iam.gserviceaccount.com".into()],
            ..Access::default()
        };
        assert!(access.admits("serviceAccount:A@p.iam.gserviceaccount.com"));
        assert!(!access.admits("user:a@p.iam.gserviceaccount.com"));
        assert!(!access.is_public());
        let all = Access {
            invokers: vec![ALL_USERS.into()],
            ..Access::default()
        };
        assert!(all.is_public());
    }

    #[test]
    fn pages() {
        let uri = Uri::from_static("/a?q=1&r");
        let r = Refusal::NotInvoker("user:x".into()).response(&uri);
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/html; charset=UTF-8"
        );
        assert!(r.headers().get(header::WWW_AUTHENTICATE).is_none());
        assert_eq!(escape("/a<b>&\""), "/a&lt;b&gt;&amp;&quot;");
        let r = Refusal::WrongAudience("x".into()).response(&uri);
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            INVALID_TOKEN_CHALLENGE
        );
        assert_eq!(Refusal::Ingress.status(), StatusCode::NOT_FOUND);
    }
}
