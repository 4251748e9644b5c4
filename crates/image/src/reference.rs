//! Image references as Docker and Cloud Run read them, and the local image sources
//! (OCI layouts and archives) homerun also accepts.
//!
//! The grammar is docker/distribution's: `[host[:port]/]path[:tag][@sha256:hex]`, with
//! Docker Hub's defaults (`busybox` is `docker.io/library/busybox:latest`).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::str::FromStr;

/// Where unqualified names live.
const DOCKER_HUB: &str = "docker.io";
/// Docker Hub's legacy name, which Docker treats as the same registry.
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
const DEFAULT_TAG: &str = "latest";
/// docker/distribution's limit on `registry/repository`.
const NAME_MAX_LEN: usize = 255;
const TAG_MAX_LEN: usize = 128;
/// Transports skopeo knows that homerun does not, refused by name rather than misread
/// as a registry host.
const UNSUPPORTED_TRANSPORTS: &[&str] = &[
    "containers-storage",
    "dir",
    "docker-daemon",
    "ostree",
    "sif",
    "tarball",
];

/// A parsed, normalised registry image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Parses `[host[:port]/]path[:tag][@sha256:hex]`, applying Docker Hub's defaults.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        parse_reference(input).map_err(|problem| ReferenceError::new(input, problem))
    }

    /// The registry host, with its port if one was given (`docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path within the registry (`library/busybox`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag: as written, or `latest` when neither tag nor digest was given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The `sha256:...` digest, if one was given.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// What goes in `/v2/<name>/manifests/<reference>`: the digest when there is one,
    /// since it pins the content, else the tag.
    pub fn reference_for_api(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or(DEFAULT_TAG)
    }

    /// Whether the registry is on this machine (localhost, 127.0.0.0/8 or ::1). Docker
    /// speaks plain HTTP to such registries, and so does homerun.
    pub fn is_loopback(&self) -> bool {
        let host = host_without_port(&self.registry);
        host == "localhost"
            || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
            || host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse::<Ipv6Addr>().ok())
                .is_some_and(|ip| ip.is_loopback())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Where an image comes from: a registry, or a local OCI layout or archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// `docker://REF` or a bare `REF`.
    Registry(Reference),
    /// `oci:DIR[:tag]`: an OCI image layout directory; without a tag the layout must
    /// hold exactly one image.
    OciLayout { dir: PathBuf, tag: Option<String> },
    /// `oci-archive:FILE`: a tar of an OCI image layout.
    OciArchive(PathBuf),
    /// `docker-archive:FILE`: a tar as written by `docker save`.
    DockerArchive(PathBuf),
}

impl ImageSource {
    /// Parses a source in skopeo's transport syntax; anything without a transport
    /// prefix is a registry reference.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        parse_source(input).map_err(|problem| ReferenceError::new(input, problem))
    }
}

impl FromStr for ImageSource {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ImageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Registry(reference) => write!(f, "docker://{reference}"),
            Self::OciLayout { dir, tag: None } => write!(f, "oci:{}", dir.display()),
            Self::OciLayout {
                dir,
                tag: Some(tag),
            } => write!(f, "oci:{}:{tag}", dir.display()),
            Self::OciArchive(file) => write!(f, "oci-archive:{}", file.display()),
            Self::DockerArchive(file) => write!(f, "docker-archive:{}", file.display()),
        }
    }
}

/// A reference or image source that cannot be used, quoting the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reference {input:?}: {problem}")]
pub struct ReferenceError {
    input: String,
    problem: ReferenceProblem,
}

impl ReferenceError {
    fn new(input: &str, problem: ReferenceProblem) -> Self {
        Self {
            input: input.to_owned(),
            problem,
        }
    }

    /// The text that failed to parse.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// What is wrong with it.
    pub fn problem(&self) -> &ReferenceProblem {
        &self.problem
    }
}

/// What is wrong with a reference or image source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceProblem {
    #[error("it is empty")]
    Empty,
    #[error("repository name must be lowercase")]
    Uppercase,
    #[error("repository name has an empty path component")]
    EmptyPathComponent,
    #[error(
        "path component {0:?} is invalid: use lowercase letters and digits, \
         separated by '.', '_', '__' or dashes"
    )]
    InvalidPathComponent(String),
    #[error(
        "registry host {0:?} is invalid: expected a host name, an IPv4 address or a \
         bracketed IPv6 address, optionally followed by ':port'"
    )]
    InvalidRegistry(String),
    #[error("name is {0} characters long; the limit is {NAME_MAX_LEN}")]
    NameTooLong(usize),
    #[error(
        "tag {0:?} is invalid: up to {TAG_MAX_LEN} letters, digits, '_', '.' or '-', \
         not starting with '.' or '-'"
    )]
    InvalidTag(String),
    #[error(transparent)]
    Digest(#[from] DigestError),
    #[error("the {0} transport needs a path")]
    EmptyPath(&'static str),
    #[error("tag {0:?} of an OCI layout may only hold letters, digits, '.', '_' and '-'")]
    InvalidLayoutTag(String),
    #[error(
        "the {0}: transport is not supported; use docker://, oci:, oci-archive: or docker-archive:"
    )]
    UnsupportedTransport(String),
}

/// Why a digest string is unacceptable. Shared with manifest parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest algorithm {0:?} is not supported; only sha256 is")]
    UnsupportedAlgorithm(String),
    #[error("digest {0:?} is not \"sha256:\" followed by 64 lowercase hex digits")]
    Malformed(String),
}

/// Checks that `digest` is `sha256:` followed by 64 lowercase hex digits.
pub fn validate_digest(digest: &str) -> Result<(), DigestError> {
    match digest.split_once(':') {
        Some((algorithm, _)) if algorithm != "sha256" && is_digest_algorithm(algorithm) => {
            Err(DigestError::UnsupportedAlgorithm(algorithm.to_owned()))
        }
        Some(("sha256", hex))
            if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            Ok(())
        }
        _ => Err(DigestError::Malformed(digest.to_owned())),
    }
}

/// The distribution grammar's algorithm names (`sha512`, `multihash+base58`), so that a
/// well-formed but unsupported algorithm is named as such rather than called garbage.
fn is_digest_algorithm(algorithm: &str) -> bool {
    algorithm.split(['+', '.', '_', '-']).all(|part| {
        part.starts_with(|c: char| c.is_ascii_alphabetic())
            && part.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

fn parse_reference(input: &str) -> Result<Reference, ReferenceProblem> {
    if input.is_empty() {
        return Err(ReferenceProblem::Empty);
    }
    let (name_and_tag, digest) = match input.split_once('@') {
        Some((rest, digest)) => {
            validate_digest(digest)?;
            (rest, Some(digest.to_owned()))
        }
        None => (input, None),
    };
    // A ':' followed by a '/' belongs to a registry port, not a tag.
    let (name, tag) = match name_and_tag.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => {
            if !is_valid_tag(tag) {
                return Err(ReferenceProblem::InvalidTag(tag.to_owned()));
            }
            (name, Some(tag.to_owned()))
        }
        _ => (name_and_tag, None),
    };
    if name.is_empty() {
        return Err(ReferenceProblem::Empty);
    }

    let (registry, path) = split_registry(name);
    if !is_valid_registry(registry) {
        return Err(ReferenceProblem::InvalidRegistry(registry.to_owned()));
    }
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ReferenceProblem::Uppercase);
    }
    for component in path.split('/') {
        if component.is_empty() {
            return Err(ReferenceProblem::EmptyPathComponent);
        }
        if !is_valid_path_component(component) {
            return Err(ReferenceProblem::InvalidPathComponent(component.to_owned()));
        }
    }

    let registry = if registry == DOCKER_HUB_LEGACY {
        DOCKER_HUB
    } else {
        registry
    };
    // Docker Hub keeps its official images under `library/`.
    let repository = if registry == DOCKER_HUB && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_owned()
    };
    let name_len = registry.len() + 1 + repository.len();
    if name_len > NAME_MAX_LEN {
        return Err(ReferenceProblem::NameTooLong(name_len));
    }

    let tag = match (tag, &digest) {
        (None, None) => Some(DEFAULT_TAG.to_owned()),
        (tag, _) => tag,
    };
    Ok(Reference {
        registry: registry.to_owned(),
        repository,
        tag,
        digest,
    })
}

/// Splits off the registry host: the first component is one only if it looks like a
/// host (has a '.' or ':', or is `localhost`), as Docker decides.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first, rest),
        _ => (DOCKER_HUB, name),
    }
}

fn host_without_port(registry: &str) -> &str {
    if registry.starts_with('[') {
        match registry.find(']') {
            Some(end) => &registry[..=end],
            None => registry,
        }
    } else {
        registry.split_once(':').map_or(registry, |(host, _)| host)
    }
}

fn is_valid_registry(registry: &str) -> bool {
    let host = host_without_port(registry);
    let port_ok = match &registry[host.len()..] {
        "" => true,
        rest => rest.strip_prefix(':').is_some_and(|port| {
            port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok()
        }),
    };
    let host_ok = match host.strip_prefix('[') {
        Some(bracketed) => bracketed
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<Ipv6Addr>().is_ok()),
        None => !host.is_empty() && host.split('.').all(is_valid_domain_label),
    };
    host_ok && port_ok
}

/// `[A-Za-z0-9]` or `[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]`.
fn is_valid_domain_label(label: &str) -> bool {
    !label.is_empty()
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_valid_path_component(component: &str) -> bool {
    let is_alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    component.starts_with(is_alnum)
        && component.ends_with(is_alnum)
        && component
            .split(is_alnum)
            .filter(|separator| !separator.is_empty())
            .all(|separator| {
                matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-')
            })
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_valid_tag(tag: &str) -> bool {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    tag.len() <= TAG_MAX_LEN
        && tag.bytes().next().is_some_and(is_word)
        && tag.bytes().all(|b| is_word(b) || b == b'.' || b == b'-')
}

fn parse_source(input: &str) -> Result<ImageSource, ReferenceProblem> {
    if let Some(rest) = input.strip_prefix("oci:") {
        return parse_oci_layout(rest);
    }
    if let Some(file) = input.strip_prefix("oci-archive:") {
        return non_empty_path("oci-archive:", file).map(ImageSource::OciArchive);
    }
    if let Some(file) = input.strip_prefix("docker-archive:") {
        return non_empty_path("docker-archive:", file).map(ImageSource::DockerArchive);
    }
    if let Some(reference) = input.strip_prefix("docker://") {
        return parse_reference(reference).map(ImageSource::Registry);
    }
    if let Some((transport, _)) = input.split_once(':') {
        if UNSUPPORTED_TRANSPORTS.contains(&transport) {
            return Err(ReferenceProblem::UnsupportedTransport(transport.to_owned()));
        }
    }
    parse_reference(input).map(ImageSource::Registry)
}

/// `DIR[:tag]`, splitting at the last ':' only when no '/' follows it (skopeo's rule),
/// so that `oci:/a:b/c` is the directory `/a:b/c`.
fn parse_oci_layout(rest: &str) -> Result<ImageSource, ReferenceProblem> {
    let (dir, tag) = match rest.rsplit_once(':') {
        Some((dir, tag)) if !tag.contains('/') => (dir, Some(tag)),
        _ => (rest, None),
    };
    let dir = non_empty_path("oci:", dir)?;
    if let Some(tag) = tag {
        let valid = !tag.is_empty()
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid {
            return Err(ReferenceProblem::InvalidLayoutTag(tag.to_owned()));
        }
    }
    Ok(ImageSource::OciLayout {
        dir,
        tag: tag.map(str::to_owned),
    })
}

fn non_empty_path(transport: &'static str, path: &str) -> Result<PathBuf, ReferenceProblem> {
    if path.is_empty() {
        Err(ReferenceProblem::EmptyPath(transport))
    } else {
        Ok(PathBuf::from(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parse(input: &str) -> Reference {
        Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"))
    }

    fn error(input: &str) -> String {
        match Reference::parse(input) {
            Ok(reference) => panic!("{input} parsed as {reference}"),
            Err(e) => e.to_string(),
        }
    }

    fn parts(input: &str) -> (String, String, Option<String>, Option<String>) {
        let r = parse(input);
        (
            r.registry().to_owned(),
            r.repository().to_owned(),
            r.tag().map(str::to_owned),
            r.digest().map(str::to_owned),
        )
    }

    #[test]
    fn docker_hub_defaults() {
        let r = parse("busybox");
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.repository(), "library/busybox");
        assert_eq!(r.tag(), Some("latest"));
        assert_eq!(r.digest(), None);
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");

        assert_eq!(parse("user/app:v1").to_string(), "docker.io/user/app:v1");
        assert_eq!(
            parse("docker.io/busybox").to_string(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            parse("index.docker.io/library/busybox:1.36").to_string(),
            "docker.io/library/busybox:1.36"
        );
        assert_eq!(parse("index.docker.io/user/app").registry(), "docker.io");
    }

    #[test]
    fn registry_hosts_need_a_dot_colon_or_localhost() {
        assert_eq!(
            parts("gcr.io/project/app:v2"),
            (
                "gcr.io".into(),
                "project/app".into(),
                Some("v2".into()),
                None
            )
        );
        assert_eq!(parse("localhost/app").registry(), "localhost");
        assert_eq!(parse("localhost:5000/app").registry(), "localhost:5000");
        assert_eq!(parse("registry:5000/app").registry(), "registry:5000");
        // No dot, colon or localhost: a Docker Hub user.
        let r = parse("myregistry/app");
        assert_eq!(
            (r.registry(), r.repository()),
            ("docker.io", "myregistry/app")
        );
        // A single-component name is never a registry, even `localhost`.
        assert_eq!(
            parse("localhost").to_string(),
            "docker.io/library/localhost:latest"
        );
        assert_eq!(
            parse("localhost:5000").to_string(),
            "docker.io/library/localhost:5000"
        );
    }

    #[test]
    fn ports_and_tags() {
        let r = parse("127.0.0.1:5000/a/b:1.0");
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "a/b");
        assert_eq!(r.tag(), Some("1.0"));
        assert_eq!(r.to_string(), "127.0.0.1:5000/a/b:1.0");
        // The port's ':' is not a tag separator.
        assert_eq!(parse("example.com:443/app").tag(), Some("latest"));
        assert!(error("example.com:port/app")
            .contains(r#"registry host "example.com:port" is invalid"#));
        assert!(error("example.com:99999/app").contains("registry host"));
        assert!(error("-bad.com/app").contains(r#"registry host "-bad.com""#));
    }

    #[test]
    fn ipv6_hosts() {
        let r = parse("[::1]:5000/x");
        assert_eq!(r.registry(), "[::1]:5000");
        assert_eq!(r.repository(), "x");
        assert_eq!(r.tag(), Some("latest"));
        assert!(r.is_loopback());
        assert_eq!(
            parse("[2001:db8::1]/a/b:t").to_string(),
            "[2001:db8::1]/a/b:t"
        );
        assert!(!parse("[2001:db8::1]/a").is_loopback());
        assert!(error("[not-ip]:5000/x").contains("registry host"));
        assert!(error("[::1/x").contains("registry host"));
    }

    #[test]
    fn loopback_registries() {
        assert!(parse("localhost:5000/a").is_loopback());
        assert!(parse("localhost/a").is_loopback());
        assert!(parse("127.0.0.1:5000/a").is_loopback());
        assert!(parse("127.8.9.10/a").is_loopback());
        assert!(parse("[0:0:0:0:0:0:0:1]:80/a").is_loopback());
        assert!(!parse("busybox").is_loopback());
        assert!(!parse("128.0.0.1/a").is_loopback());
        assert!(!parse("localhost.example.com/a").is_loopback());
    }

    #[test]
    fn path_components() {
        assert_eq!(parse("user/a.b_c__d---e").repository(), "user/a.b_c__d---e");
        for ok in ["a0", "a-b", "a--b", "a.b", "a_b", "a__b", "0"] {
            parse(ok);
        }
        for bad in ["a___b", "a..b", "-a", "a-", ".a", "a_", "a._b", "a+b"] {
            let message = error(bad);
            assert!(message.contains("path component"), "{bad}: {message}");
        }
        assert!(error("a//b").contains("empty path component"));
        assert!(error("example.com/").contains("empty path component"));
        assert!(error("a/").contains("empty path component"));
    }

    #[test]
    fn uppercase_is_refused_in_the_path_only() {
        assert_eq!(
            error("Foo/bar"),
            r#"invalid reference "Foo/bar": repository name must be lowercase"#
        );
        assert!(error("example.com/App").contains("must be lowercase"));
        // Host names are case-insensitive, and tags may have capitals.
        assert_eq!(
            parse("Example.COM/app:V1").to_string(),
            "Example.COM/app:V1"
        );
    }

    #[test]
    fn tag_grammar() {
        let longest = "t".repeat(128);
        assert_eq!(
            parse(&format!("app:{longest}")).tag(),
            Some(longest.as_str())
        );
        assert!(error(&format!("app:{longest}x")).contains("tag"));
        assert_eq!(parse("app:_under.score-1").tag(), Some("_under.score-1"));
        for bad in ["app:", "app:.x", "app:-x", "app:a+b"] {
            assert!(error(bad).contains("is invalid: up to 128"), "{bad}");
        }
    }

    #[test]
    fn digests() {
        let digest = format!("sha256:{HEX}");
        let r = parse(&format!("127.0.0.1:5000/a/b@{digest}"));
        assert_eq!(r.tag(), None, "no default tag when pinned by digest");
        assert_eq!(r.digest(), Some(digest.as_str()));
        assert_eq!(r.reference_for_api(), digest);
        assert_eq!(r.to_string(), format!("127.0.0.1:5000/a/b@{digest}"));

        assert_eq!(
            error(&format!("busybox@sha512:{HEX}{HEX}")),
            r#"invalid reference "busybox@sha512:"#.to_owned()
                + HEX
                + HEX
                + r#"": digest algorithm "sha512" is not supported; only sha256 is"#
        );
        for bad in [
            "busybox@sha256:abc".to_owned(),
            format!("busybox@sha256:{}", HEX.to_uppercase()),
            format!("busybox@sha256:{HEX}0"),
            format!("busybox@{HEX}"),
            "busybox@".to_owned(),
            format!("busybox@sha256:{HEX}@sha256:{HEX}"),
        ] {
            let message = error(&bad);
            assert!(
                message.contains("64 lowercase hex digits"),
                "{bad}: {message}"
            );
        }
    }

    #[test]
    fn tag_and_digest_together() {
        let digest = format!("sha256:{HEX}");
        let r = parse(&format!("gcr.io/p/app:v1@{digest}"));
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.digest(), Some(digest.as_str()));
        assert_eq!(r.reference_for_api(), digest, "the digest wins");
        assert_eq!(r.to_string(), format!("gcr.io/p/app:v1@{digest}"));
        assert_eq!(parse("busybox:1.36").reference_for_api(), "1.36");
        assert_eq!(parse("busybox").reference_for_api(), "latest");
    }

    #[test]
    fn name_length_limit() {
        let component = "a".repeat(60);
        let path = [component.as_str(); 4].join("/");
        // 9 + 1 + 243 = 253 characters.
        parse(&format!("docker.io/{path}"));
        let too_long = format!("example.com/{path}/abcd");
        assert!(error(&too_long).contains("name is 260 characters long; the limit is 255"));
    }

    #[test]
    fn empty_and_odd_inputs() {
        assert_eq!(error(""), r#"invalid reference "": it is empty"#);
        assert!(error(":tag").contains("it is empty"));
        assert!(error(" busybox").contains("path component"));
        assert!(error("/busybox").contains("empty path component"));
    }

    #[test]
    fn from_str_matches_parse() {
        let r: Reference = "busybox:1".parse().expect("valid");
        assert_eq!(r, parse("busybox:1"));
        assert!("Foo".parse::<Reference>().is_err());
    }

    #[test]
    fn error_exposes_input_and_problem() {
        let e = Reference::parse("Foo/bar").expect_err("uppercase");
        assert_eq!(e.input(), "Foo/bar");
        assert_eq!(e.problem(), &ReferenceProblem::Uppercase);
    }

    fn source(input: &str) -> ImageSource {
        ImageSource::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"))
    }

    fn source_error(input: &str) -> String {
        match ImageSource::parse(input) {
            Ok(s) => panic!("{input} parsed as {s:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn registry_sources() {
        assert_eq!(source("busybox"), ImageSource::Registry(parse("busybox")));
        assert_eq!(
            source("docker://localhost:5000/a:b"),
            ImageSource::Registry(parse("localhost:5000/a:b"))
        );
        assert_eq!(
            source("docker://busybox").to_string(),
            "docker://docker.io/library/busybox:latest"
        );
        assert!(source_error("docker://").contains("it is empty"));
        assert!(source_error("docker://Foo")
            .contains(r#""docker://Foo": repository name must be lowercase"#));
    }

    #[test]
    fn oci_layouts_with_and_without_tags() {
        assert_eq!(
            source("oci:/images/app"),
            ImageSource::OciLayout {
                dir: "/images/app".into(),
                tag: None
            }
        );
        assert_eq!(
            source("oci:/images/app:v1"),
            ImageSource::OciLayout {
                dir: "/images/app".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            source("oci:relative:latest"),
            ImageSource::OciLayout {
                dir: "relative".into(),
                tag: Some("latest".into())
            }
        );
        // The last ':' is followed by a '/', so it is part of the directory.
        assert_eq!(
            source("oci:/a:b/c"),
            ImageSource::OciLayout {
                dir: "/a:b/c".into(),
                tag: None
            }
        );
        assert_eq!(
            source("oci:/a:b/c:t"),
            ImageSource::OciLayout {
                dir: "/a:b/c".into(),
                tag: Some("t".into())
            }
        );
        assert_eq!(
            source("oci:/images/app:v1").to_string(),
            "oci:/images/app:v1"
        );
        assert_eq!(source("oci:/images/app").to_string(), "oci:/images/app");
    }

    #[test]
    fn oci_layout_errors() {
        assert_eq!(
            source_error("oci:"),
            r#"invalid reference "oci:": the oci: transport needs a path"#
        );
        assert!(source_error("oci::v1").contains("the oci: transport needs a path"));
        assert!(source_error("oci:/x:").contains(r#"tag "" of an OCI layout"#));
        assert!(source_error("oci:/x:a b").contains(r#"tag "a b" of an OCI layout"#));
    }

    #[test]
    fn archives() {
        assert_eq!(
            source("oci-archive:/tmp/app.tar"),
            ImageSource::OciArchive("/tmp/app.tar".into())
        );
        assert_eq!(
            source("docker-archive:/tmp/app:1.tar"),
            ImageSource::DockerArchive("/tmp/app:1.tar".into())
        );
        assert_eq!(source("oci-archive:x.tar").to_string(), "oci-archive:x.tar");
        assert_eq!(
            source("docker-archive:x.tar").to_string(),
            "docker-archive:x.tar"
        );
        assert!(source_error("oci-archive:").contains("the oci-archive: transport needs a path"));
        assert!(
            source_error("docker-archive:").contains("the docker-archive: transport needs a path")
        );
    }

    #[test]
    fn other_transports_are_named() {
        assert_eq!(
            source_error("containers-storage:app"),
            r#"invalid reference "containers-storage:app": the containers-storage: transport is not supported; use docker://, oci:, oci-archive: or docker-archive:"#
        );
        assert!(source_error("dir:/tmp/x").contains("the dir: transport"));
        // A name that merely looks like a transport is still a reference with a tag.
        assert_eq!(
            source("ubuntu:22.04"),
            ImageSource::Registry(parse("ubuntu:22.04"))
        );
    }

    #[test]
    fn validate_digest_directly() {
        assert_eq!(validate_digest(&format!("sha256:{HEX}")), Ok(()));
        assert_eq!(
            validate_digest("md5:abc"),
            Err(DigestError::UnsupportedAlgorithm("md5".into()))
        );
        assert_eq!(
            validate_digest("sha256"),
            Err(DigestError::Malformed("sha256".into()))
        );
        assert_eq!(
            validate_digest(":abc"),
            Err(DigestError::Malformed(":abc".into()))
        );
    }
}
