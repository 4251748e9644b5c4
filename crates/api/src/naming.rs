//! Names, ids and URLs the platform makes: revision, execution and task ids as Cloud
//! Run makes them, UUID4 uids, etags, service and tag URLs, project numbers and the
//! default service account.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::execution::Execution;
use crate::job::Job;
use crate::json::{to_value, EnumEncoding};
use crate::revision::Revision;
use crate::service::{RevisionTemplate, Service};
use crate::task::Task;

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::getrandom(&mut buf).expect("the operating system's random source works");
    buf
}

/// Three random lowercase letters (`abc`), the end of a generated revision id.
pub fn random_revision_suffix() -> String {
    let mut out = String::with_capacity(3);
    while out.len() < 3 {
        for b in random_bytes::<8>() {
            // 234 = 9 * 26: drop the bytes that would bias the letters.
            if b < 234 && out.len() < 3 {
                out.push((b'a' + b % 26) as char);
            }
        }
    }
    out
}

/// A revision id as Cloud Run generates it: `{service}-{generation, 5 digits}-{3 random
/// lowercase letters}`, like `hello-00002-xoz`. `random` is the last part.
pub fn revision_id(service_id: &str, generation: i64, random: &str) -> String {
    format!("{service_id}-{generation:05}-{random}")
}

/// [`revision_id`] with a fresh random part.
pub fn generate_revision_id(service_id: &str, generation: i64) -> String {
    revision_id(service_id, generation, &random_revision_suffix())
}

/// The revision id for a revision suffix (gcloud's `--revision-suffix`):
/// `{service}-{suffix}`, what a client puts in `template.revision`.
pub fn revision_id_from_suffix(service_id: &str, suffix: &str) -> String {
    format!("{service_id}-{suffix}")
}

/// The id of the revision `template` makes at `generation`: the template's `revision`
/// when it names one, else a generated id.
pub fn revision_id_for_template(
    service_id: &str,
    generation: i64,
    template: &RevisionTemplate,
) -> String {
    if template.revision.is_empty() {
        generate_revision_id(service_id, generation)
    } else {
        template.revision.clone()
    }
}

/// Five random lowercase letters and digits (`x7k2p`), the end of an execution id.
pub fn random_execution_suffix() -> String {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(5);
    while out.len() < 5 {
        for b in random_bytes::<8>() {
            // 252 = 7 * 36: drop the bytes that would bias the characters.
            if b < 252 && out.len() < 5 {
                out.push(ALPHABET[(b % 36) as usize] as char);
            }
        }
    }
    out
}

/// An execution id as Cloud Run makes them: `{job}-{5 random lowercase letters and
/// digits}`, like `hello-x7k2p`. `random` is the last part.
pub fn execution_id(job_id: &str, random: &str) -> String {
    format!("{job_id}-{random}")
}

/// [`execution_id`] with a fresh random part.
pub fn generate_execution_id(job_id: &str) -> String {
    execution_id(job_id, &random_execution_suffix())
}

/// The id of task `index` of an execution: `{execution_id}-{index}` (`hello-x7k2p-0`).
/// Cloud Run's own task id format could not be confirmed; this one is unique in its
/// execution and keeps the index readable.
pub fn task_id(execution_id: &str, index: i32) -> String {
    format!("{execution_id}-{index}")
}

/// A random UUID (version 4), a resource's `uid`.
pub fn new_uid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A random operation id (32 hex digits).
pub fn new_operation_id() -> String {
    hex::encode(random_bytes::<16>())
}

/// An etag: a hash of the resource's JSON (its `etag` member left out), quoted as
/// AIP-154 asks (`"\"3f2a...\""`). The same content always gives the same etag.
pub fn etag<T: Serialize>(resource: &T) -> String {
    let mut value = to_value(resource, EnumEncoding::Name);
    if let Some(map) = value.as_object_mut() {
        map.remove("etag");
    }
    // serde_json's maps are ordered by key here (no preserve_order), and BTreeMaps
    // throughout the types: the text is canonical.
    let digest = Sha256::digest(value.to_string().as_bytes());
    format!("\"{}\"", hex::encode(&digest[..16]))
}

impl Service {
    /// The service's etag as of now (see [`etag`]).
    pub fn compute_etag(&self) -> String {
        etag(self)
    }
}

impl Revision {
    /// The revision's etag as of now (see [`etag`]).
    pub fn compute_etag(&self) -> String {
        etag(self)
    }
}

impl Job {
    /// The job's etag as of now (see [`etag`]).
    pub fn compute_etag(&self) -> String {
        etag(self)
    }
}

impl Execution {
    /// The execution's etag as of now (see [`etag`]).
    pub fn compute_etag(&self) -> String {
        etag(self)
    }
}

impl Task {
    /// The task's etag as of now (see [`etag`]).
    pub fn compute_etag(&self) -> String {
        etag(self)
    }
}

/// A project's number: stable, 12 digits, made of the sha256 of its id (the first 8
/// bytes as a big-endian u64, mod 9 x 10^11, plus 10^11).
pub fn project_number(project_id: &str) -> u64 {
    let digest = Sha256::digest(project_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) % 900_000_000_000 + 100_000_000_000
}

/// The service account revisions and tasks run as when their template names none:
/// Cloud Run's default compute account, `{project_number}-compute@developer.gserviceaccount.com`.
pub fn default_service_account(project_id: &str) -> String {
    format!(
        "{}-compute@developer.gserviceaccount.com",
        project_number(project_id)
    )
}

/// Where services are reached: `http://{service}.{domain}:{port}` in the default
/// project, `http://{service}.{project}.{domain}:{port}` in others, and
/// `{tag}---{service}...` for a traffic tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The project whose services have the short host name (`--project`, `local`).
    pub default_project: String,
    /// `--domain`, `localhost` by default.
    pub domain: String,
    /// The ingress port.
    pub port: u16,
    /// `http` (or `https` when the ingress listens with TLS).
    pub scheme: String,
}

impl Endpoint {
    /// An HTTP endpoint.
    pub fn new(default_project: impl Into<String>, domain: impl Into<String>, port: u16) -> Self {
        Endpoint {
            default_project: default_project.into(),
            domain: domain.into(),
            port,
            scheme: "http".into(),
        }
    }

    /// The host name of a service: `{service}.{domain}` or `{service}.{project}.{domain}`.
    pub fn service_host(&self, project: &str, service_id: &str) -> String {
        if project == self.default_project {
            format!("{service_id}.{}", self.domain)
        } else {
            format!("{service_id}.{project}.{}", self.domain)
        }
    }

    /// The host name of a tag: `{tag}---{service}.{domain}` (or with the project).
    pub fn tag_host(&self, project: &str, service_id: &str, tag: &str) -> String {
        self.service_host(project, &format!("{tag}---{service_id}"))
    }

    /// The service's URL, its `uri`.
    pub fn service_uri(&self, project: &str, service_id: &str) -> String {
        format!(
            "{}://{}:{}",
            self.scheme,
            self.service_host(project, service_id),
            self.port
        )
    }

    /// A tag's URL (a traffic status `uri`).
    pub fn tag_uri(&self, project: &str, service_id: &str, tag: &str) -> String {
        format!(
            "{}://{}:{}",
            self.scheme,
            self.tag_host(project, service_id, tag),
            self.port
        )
    }

    /// The service and tag (if any) a request's `Host` names, as `(project, service,
    /// tag)`, the project `None` for the default one. The port, if any, is ignored. The
    /// tag is what comes before the first `---` (validation keeps `---` out of tags; a
    /// service id may still hold one, so a router that finds no such tag should also try
    /// the whole label as the service).
    pub fn parse_host<'a>(
        &self,
        host: &'a str,
    ) -> Option<(Option<&'a str>, &'a str, Option<&'a str>)> {
        let host = match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        let rest = host.strip_suffix(self.domain.as_str())?.strip_suffix('.')?;
        let (label, project) = match rest.split_once('.') {
            Some((label, project)) if !project.contains('.') => (label, Some(project)),
            Some(_) => return None,
            None => (rest, None),
        };
        let (tag, service) = match label.split_once("---") {
            Some((tag, service)) => (Some(tag), service),
            None => (None, label),
        };
        if service.is_empty() || tag == Some("") || project == Some("") {
            return None;
        }
        Some((project, service, tag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid4() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(new_uid(), u);
    }

    #[test]
    fn project_numbers() {
        let n = project_number("local");
        assert_eq!(n, project_number("local"));
        assert_eq!(n.to_string().len(), 12);
        assert_ne!(n, project_number("other"));
        for id in ["a", "my-project", "x-123456"] {
            assert!((100_000_000_000..1_000_000_000_000).contains(&project_number(id)));
        }
        assert_eq!(
            default_service_account("local"),
            format!("{n}-compute@developer.gserviceaccount.com")
        );
    }

    #[test]
    fn hosts() {
        let e = Endpoint::new("local", "localhost", 8080);
        assert_eq!(
            e.parse_host("hello.localhost:8080"),
            Some((None, "hello", None))
        );
        assert_eq!(e.parse_host("hello.localhost"), Some((None, "hello", None)));
        assert_eq!(
            e.parse_host("v2---hello.other.localhost"),
            Some((Some("other"), "hello", Some("v2")))
        );
        assert_eq!(e.parse_host("localhost"), None);
        assert_eq!(e.parse_host("a.b.c.localhost"), None);
        assert_eq!(e.parse_host("hello.example.com"), None);
    }
}
