//! The routing table: Host → service → revision.
//!
//! Hosts are `{service}.{domain}` (services of the default project only),
//! `{service}.{project}.{domain}`, and for tags `{tag}---{service}.{domain}` /
//! `{tag}---{service}.{project}.{domain}`. Matching ignores case, a port and a trailing dot.
//! The controller builds a whole new table on every change and swaps it in
//! ([`SharedTable::store`]); readers never wait for a writer's work.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::access::Access;
use crate::rng::RandomSource;

/// One traffic target: a revision and its share, in percent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficTarget {
    pub revision: String,
    pub percent: u32,
}

/// What the controller knows about one service's routes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceRoutes {
    pub project: String,
    pub service: String,
    /// Targets with a share of the service's URL. Shares need not sum to 100: a pick is
    /// weighted by them. Zero-percent targets are never picked.
    pub traffic: Vec<TrafficTarget>,
    /// Tag → revision, each with its own URL.
    pub tags: Vec<(String, String)>,
    /// Who may reach and invoke the service. The default is private (Cloud Run's): every
    /// request is refused until the controller names invokers or makes it public.
    pub access: Access,
}

/// The result of routing a Host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub project: Arc<str>,
    pub service: Arc<str>,
    pub revision: Arc<str>,
    pub tag: Option<Arc<str>>,
    /// The service's access policy, shared with the table.
    pub access: Arc<Access>,
}

#[derive(Debug)]
struct Service {
    project: Arc<str>,
    service: Arc<str>,
    /// (revision, weight), weights > 0.
    split: Vec<(Arc<str>, u64)>,
    total: u64,
    access: Arc<Access>,
}

#[derive(Debug, Clone)]
enum Target {
    Split,
    Tag(Arc<str>, Arc<str>),
}

#[derive(Debug, Clone)]
struct Route {
    service: Arc<Service>,
    target: Target,
}

/// An immutable routing table.
#[derive(Debug, Default)]
pub struct RoutingTable {
    hosts: HashMap<String, Route>,
}

impl RoutingTable {
    pub fn empty() -> Self {
        Self::default()
    }

    /// Builds the table for `domain` (e.g. `localhost`), where services of
    /// `default_project` also answer without the project label.
    pub fn new(
        domain: &str,
        default_project: &str,
        services: impl IntoIterator<Item = ServiceRoutes>,
    ) -> Self {
        let domain = normalize(domain).to_string();
        let mut hosts = HashMap::new();
        for s in services {
            let split: Vec<(Arc<str>, u64)> = s
                .traffic
                .iter()
                .filter(|t| t.percent > 0)
                .map(|t| (Arc::from(t.revision.as_str()), t.percent as u64))
                .collect();
            let service = Arc::new(Service {
                project: Arc::from(s.project.as_str()),
                service: Arc::from(s.service.as_str()),
                total: split.iter().map(|(_, w)| w).sum(),
                split,
                access: Arc::new(s.access),
            });
            let name = s.service.to_ascii_lowercase();
            let mut bases = vec![format!(
                "{name}.{}.{domain}",
                s.project.to_ascii_lowercase()
            )];
            if s.project == default_project {
                bases.push(format!("{name}.{domain}"));
            }
            for base in &bases {
                hosts.insert(
                    base.clone(),
                    Route {
                        service: service.clone(),
                        target: Target::Split,
                    },
                );
                for (tag, revision) in &s.tags {
                    hosts.insert(
                        format!("{}---{base}", tag.to_ascii_lowercase()),
                        Route {
                            service: service.clone(),
                            target: Target::Tag(
                                Arc::from(tag.as_str()),
                                Arc::from(revision.as_str()),
                            ),
                        },
                    );
                }
            }
        }
        Self { hosts }
    }

    /// Whether some service answers at `host`.
    pub fn contains(&self, host: &str) -> bool {
        self.hosts.contains_key(normalize(host).as_ref())
    }

    /// Routes `host` to a revision; `None` when no service answers there or the service
    /// has no traffic target with a share.
    pub fn resolve(&self, host: &str, rng: &dyn RandomSource) -> Option<Resolved> {
        let route = self.hosts.get(normalize(host).as_ref())?;
        let s = &route.service;
        let (revision, tag) = match &route.target {
            Target::Tag(tag, revision) => (revision.clone(), Some(tag.clone())),
            Target::Split => (pick(&s.split, s.total, rng)?, None),
        };
        Some(Resolved {
            project: s.project.clone(),
            service: s.service.clone(),
            revision,
            tag,
            access: s.access.clone(),
        })
    }
}

fn pick(split: &[(Arc<str>, u64)], total: u64, rng: &dyn RandomSource) -> Option<Arc<str>> {
    match split {
        [] => None,
        [(only, _)] => Some(only.clone()),
        _ => {
            let mut r = rng.below(total);
            for (revision, weight) in split {
                if r < *weight {
                    return Some(revision.clone());
                }
                r -= weight;
            }
            split.last().map(|(r, _)| r.clone())
        }
    }
}

/// Lowercases and strips a port and a trailing dot: `Hello.LocalHost.:8080` → `hello.localhost`.
fn normalize(host: &str) -> std::borrow::Cow<'_, str> {
    let mut h = host.trim();
    if let Some((name, port)) = h.rsplit_once(':') {
        if port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(']') && !name.contains(':') {
            h = name;
        }
    }
    let h = h.strip_suffix('.').unwrap_or(h);
    if h.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(h.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(h)
    }
}

/// The current table, replaced as a whole.
#[derive(Debug, Default)]
pub struct SharedTable(RwLock<Arc<RoutingTable>>);

impl SharedTable {
    pub fn new(table: RoutingTable) -> Self {
        Self(RwLock::new(Arc::new(table)))
    }

    pub fn load(&self) -> Arc<RoutingTable> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn store(&self, table: RoutingTable) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn table() -> RoutingTable {
        RoutingTable::new(
            "localhost",
            "local",
            [
                ServiceRoutes {
                    project: "local".into(),
                    service: "hello".into(),
                    traffic: vec![
                        TrafficTarget {
                            revision: "hello-1".into(),
                            percent: 25,
                        },
                        TrafficTarget {
                            revision: "hello-2".into(),
                            percent: 75,
                        },
                        TrafficTarget {
                            revision: "hello-3".into(),
                            percent: 0,
                        },
                    ],
                    tags: vec![("blue".into(), "hello-3".into())],
                    access: Access::public(),
                },
                ServiceRoutes {
                    project: "other".into(),
                    service: "api".into(),
                    traffic: vec![TrafficTarget {
                        revision: "api-1".into(),
                        percent: 100,
                    }],
                    tags: vec![],
                    access: Access::default(),
                },
            ],
        )
    }

    #[test]
    fn hosts() {
        let t = table();
        let rng = SplitMix64::new(1);
        for host in [
            "hello.localhost",
            "HELLO.LocalHost:8080",
            "hello.local.localhost",
            "hello.localhost.",
        ] {
            let r = t.resolve(host, &rng).unwrap_or_else(|| panic!("{host}"));
            assert_eq!(&*r.service, "hello");
            assert!(r.tag.is_none());
            assert_ne!(&*r.revision, "hello-3");
        }
        let r = t.resolve("blue---hello.localhost:80", &rng).unwrap();
        assert_eq!((&*r.revision, r.tag.as_deref()), ("hello-3", Some("blue")));
        assert!(t.resolve("blue---hello.local.localhost", &rng).is_some());
        assert_eq!(
            &*t.resolve("api.other.localhost", &rng).unwrap().revision,
            "api-1"
        );
        assert!(
            t.resolve("api.localhost", &rng).is_none(),
            "not the default project"
        );
        assert!(t.resolve("red---hello.localhost", &rng).is_none());
        assert!(t.resolve("localhost", &rng).is_none());
        assert!(t.resolve("[::1]:8080", &rng).is_none());
        assert!(
            t.resolve("blue---hello.localhost", &rng)
                .unwrap()
                .access
                .public
        );
        assert!(
            !t.resolve("api.other.localhost", &rng)
                .unwrap()
                .access
                .public
        );
    }

    #[test]
    fn split_is_weighted() {
        let t = table();
        let rng = SplitMix64::new(42);
        let n = 20_000;
        let ones = (0..n)
            .filter(|_| &*t.resolve("hello.localhost", &rng).unwrap().revision == "hello-1")
            .count();
        let share = ones as f64 / n as f64;
        assert!((0.22..0.28).contains(&share), "{share}");
    }

    #[test]
    fn swap() {
        let shared = SharedTable::default();
        assert!(!shared.load().contains("hello.localhost"));
        shared.store(table());
        assert!(shared.load().contains("hello.localhost"));
    }
}
