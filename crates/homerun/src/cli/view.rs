//! The text views of services, revisions, jobs and executions, gcloud's `describe`
//! layout.

use api::condition::types;
use api::{
    Condition, Container, ExecutionEnvironment, IngressTraffic, Revision, RevisionScaling, Service,
    TrafficTargetAllocationType, Volume,
};

use super::output::KeyLines;

/// The last segment of a resource name (`projects/.../revisions/hello-00001-abc`).
pub fn short_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// The `Ready` condition of a service (`terminalCondition`).
pub fn service_ready(s: &Service) -> Option<&Condition> {
    s.terminal_condition
        .as_ref()
        .or_else(|| s.conditions.iter().find(|c| c.kind == types::READY))
}

/// The `Ready` condition of a revision.
pub fn revision_ready(r: &Revision) -> Option<&Condition> {
    r.conditions.iter().find(|c| c.kind == types::READY)
}

pub fn ingress_text(i: IngressTraffic) -> &'static str {
    match i {
        IngressTraffic::All | IngressTraffic::Unspecified => "all",
        IngressTraffic::InternalOnly => "internal",
        IngressTraffic::InternalLoadBalancer => "internal-and-cloud-load-balancing",
        IngressTraffic::None => "none",
    }
}

/// One share of traffic as shown: percent, revision (or `LATEST`), tag and its URL.
struct TrafficLine {
    percent: i32,
    latest: bool,
    revision: String,
    tag: String,
    uri: String,
}

/// Where traffic goes: the observed split (`trafficStatuses`) when the platform has
/// written one, else the desired one.
fn traffic_lines(s: &Service) -> Vec<TrafficLine> {
    if !s.traffic_statuses.is_empty() {
        return s
            .traffic_statuses
            .iter()
            .map(|t| TrafficLine {
                percent: t.percent,
                latest: t.kind == TrafficTargetAllocationType::Latest,
                revision: t.revision.clone(),
                tag: t.tag.clone(),
                uri: t.uri.clone(),
            })
            .collect();
    }
    s.traffic
        .iter()
        .map(|t| TrafficLine {
            percent: t.percent,
            latest: t.kind != TrafficTargetAllocationType::Revision,
            revision: t.revision.clone(),
            tag: t.tag.clone(),
            uri: String::new(),
        })
        .collect()
}

/// The revision ids serving traffic (a percent above 0), LATEST resolved to the latest
/// ready revision (the latest created while none is ready).
pub fn serving_revisions(s: &Service) -> Vec<(String, i32)> {
    let latest = if s.latest_ready_revision.is_empty() {
        short_name(&s.latest_created_revision)
    } else {
        short_name(&s.latest_ready_revision)
    };
    let mut out: Vec<(String, i32)> = Vec::new();
    for line in traffic_lines(s).into_iter().filter(|l| l.percent > 0) {
        let revision = if line.latest && line.revision.is_empty() {
            latest.to_string()
        } else {
            line.revision
        };
        match out.iter_mut().find(|(r, _)| *r == revision) {
            Some((_, p)) => *p += line.percent,
            None => out.push((revision, line.percent)),
        }
    }
    out
}

/// `Traffic:` and one line per share, tags under their share.
pub fn traffic_text(s: &Service) -> String {
    let latest_ready = short_name(&s.latest_ready_revision);
    let mut out = String::from("Traffic:\n");
    for line in traffic_lines(s) {
        let target = if line.latest {
            if latest_ready.is_empty() {
                "LATEST".to_string()
            } else {
                format!("LATEST (currently {latest_ready})")
            }
        } else {
            line.revision.clone()
        };
        let percent = format!("{}%", line.percent);
        out.push_str(&format!("  {percent:<5}{target}\n"));
        if !line.tag.is_empty() {
            let uri = if line.uri.is_empty() {
                String::new()
            } else {
                format!(": {}", line.uri)
            };
            out.push_str(&format!("       {}{uri}\n", line.tag));
        }
    }
    out
}

/// What a revision runs: a template's or a revision's settings.
pub struct SpecView<'a> {
    pub containers: &'a [Container],
    pub volumes: &'a [Volume],
    pub scaling: Option<&'a RevisionScaling>,
    pub concurrency: i32,
    pub timeout: Option<api::Duration>,
    pub service_account: &'a str,
    pub execution_environment: ExecutionEnvironment,
}

impl<'a> SpecView<'a> {
    pub fn of_revision(r: &'a Revision) -> Self {
        SpecView {
            containers: &r.containers,
            volumes: &r.volumes,
            scaling: r.scaling.as_ref(),
            concurrency: r.max_instance_request_concurrency,
            timeout: r.timeout,
            service_account: &r.service_account,
            execution_environment: r.execution_environment,
        }
    }

    pub fn of_template(t: &'a api::RevisionTemplate) -> Self {
        SpecView {
            containers: &t.containers,
            volumes: &t.volumes,
            scaling: t.scaling.as_ref(),
            concurrency: t.max_instance_request_concurrency,
            timeout: t.timeout,
            service_account: &t.service_account,
            execution_environment: t.execution_environment,
        }
    }

    /// The key lines, indented by `indent`.
    pub fn render(&self, indent: &str) -> String {
        render_spec(
            self.containers,
            self.volumes,
            Workload::Service,
            &self.revision_lines(),
            indent,
        )
    }

    fn revision_lines(&self) -> KeyLines {
        let mut lines = KeyLines::new();
        if !self.service_account.is_empty() {
            lines.add("Service account", self.service_account);
        }
        lines.add("Concurrency", self.concurrency.to_string());
        let scaling = self.scaling.cloned().unwrap_or_default();
        lines.add("Min instances", scaling.min_instance_count.to_string());
        lines.add("Max instances", scaling.max_instance_count.to_string());
        if let Some(t) = self.timeout {
            lines.add("Timeout", t.to_string());
        }
        lines.add(
            "Execution environment",
            execution_environment_text(self.execution_environment),
        );
        lines
    }
}

pub fn execution_environment_text(e: ExecutionEnvironment) -> &'static str {
    match e {
        ExecutionEnvironment::Gen1 => "gen1",
        ExecutionEnvironment::Gen2 => "gen2",
        ExecutionEnvironment::Unspecified => "default",
    }
}

/// What containers run as: CPU allocation and startup boost are a service's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Service,
    Job,
}

/// The containers' key lines (each one's env vars and secret files under them; named
/// when there are several), then `settings`, all values aligned, indented by `indent`.
/// Secrets show as their names and versions: their values are never in the API's
/// answers.
pub fn render_spec(
    containers: &[Container],
    volumes: &[Volume],
    workload: Workload,
    settings: &KeyLines,
    indent: &str,
) -> String {
    let several = containers.len() > 1;
    let containers: Vec<(&Container, KeyLines)> = containers
        .iter()
        .map(|c| (c, container_lines(c, workload)))
        .collect();
    let width = containers
        .iter()
        .map(|(_, l)| l.key_width())
        .chain([settings.key_width()])
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (c, lines) in containers {
        let inner = if several {
            out.push_str(&format!("{indent}Container {}\n", c.name));
            format!("{indent}  ")
        } else {
            indent.to_string()
        };
        out.push_str(&lines.render_aligned(&inner, width));
        for e in &c.env {
            let value = match (&e.value, &e.value_source) {
                (Some(v), _) => v.clone(),
                (None, Some(src)) => match &src.secret_key_ref {
                    Some(s) => format!("secret {}:{}", s.secret, s.version),
                    None => String::new(),
                },
                (None, None) => String::new(),
            };
            out.push_str(&format!("{inner}  {}={value}\n", e.name));
        }
        let files = secret_files(c, volumes);
        if !files.is_empty() {
            out.push_str(&format!("{inner}Secret files:\n"));
        }
        for (path, value) in files {
            out.push_str(&format!("{inner}  {path}={value}\n"));
        }
    }
    out.push_str(&settings.render_aligned(indent, width));
    out
}

/// The files a container takes from secrets: `(path, "secret NAME:VERSION")`.
fn secret_files(c: &Container, volumes: &[Volume]) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for m in &c.volume_mounts {
        let Some(s) = volumes
            .iter()
            .find(|v| v.name == m.name)
            .and_then(|v| v.secret.as_ref())
        else {
            continue;
        };
        let dir = m.mount_path.trim_end_matches('/');
        if s.items.is_empty() {
            files.push((
                format!("{dir}/{}", s.secret),
                format!("secret {}:latest", s.secret),
            ));
        }
        for i in &s.items {
            files.push((
                format!("{dir}/{}", i.path),
                format!("secret {}:{}", s.secret, i.version),
            ));
        }
    }
    files
}

/// A container's key lines; its env vars follow them, one a line (then its secret files).
fn container_lines(c: &Container, workload: Workload) -> KeyLines {
    let mut lines = KeyLines::new();
    lines.add("Image", c.image.clone());
    if !c.command.is_empty() {
        lines.add("Command", c.command.join(" "));
    }
    if !c.args.is_empty() {
        lines.add("Args", c.args.join(" "));
    }
    if let Some(p) = c.ports.first() {
        lines.add("Port", format!("{} ({})", p.container_port, p.name));
    }
    if let Some(r) = &c.resources {
        lines.add(
            "Memory",
            r.limits.get("memory").cloned().unwrap_or_default(),
        );
        lines.add("CPU", r.limits.get("cpu").cloned().unwrap_or_default());
    }
    if let (Some(r), Workload::Service) = (&c.resources, workload) {
        let allocation = if r.cpu_idle {
            "during requests only"
        } else {
            "always"
        };
        lines.add("CPU allocation", allocation);
        let boost = if r.startup_cpu_boost {
            "enabled"
        } else {
            "disabled"
        };
        lines.add("Startup CPU boost", boost);
    }
    if !c.env.is_empty() {
        lines.add("Env vars", "");
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::TrafficTarget;

    #[test]
    fn serving_revisions_resolve_latest() {
        let s = Service {
            latest_created_revision: "projects/p/locations/l/services/s/revisions/s-2".into(),
            latest_ready_revision: "projects/p/locations/l/services/s/revisions/s-1".into(),
            traffic: vec![
                TrafficTarget::latest(60),
                TrafficTarget::revision("s-1", 40),
                TrafficTarget::revision("s-2", 0).with_tag("next"),
            ],
            ..Default::default()
        };
        assert_eq!(serving_revisions(&s), [("s-1".to_string(), 100)]);
        let text = traffic_text(&s);
        assert!(text.contains("60%  LATEST (currently s-1)"), "{text}");
        assert!(text.contains("0%   s-2\n       next\n"), "{text}");
    }

    #[test]
    fn secrets_show_as_names_and_versions() {
        use api::k8s::{EnvVarSource, SecretKeySelector, SecretVolumeSource, VersionToPath};
        let c = Container {
            image: "img".into(),
            env: vec![
                api::EnvVar::new("PLAIN", "1"),
                api::EnvVar {
                    name: "PASS".into(),
                    value: None,
                    value_source: Some(EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            secret: "db".into(),
                            version: "3".into(),
                        }),
                    }),
                },
            ],
            volume_mounts: vec![api::VolumeMount {
                name: "tls".into(),
                mount_path: "/etc/tls".into(),
            }],
            ..Default::default()
        };
        let volumes = [Volume {
            name: "tls".into(),
            secret: Some(SecretVolumeSource {
                secret: "tls".into(),
                items: vec![VersionToPath {
                    path: "key".into(),
                    version: "latest".into(),
                    mode: 0,
                }],
                default_mode: 0,
            }),
            ..Default::default()
        }];
        let text = render_spec(&[c], &volumes, Workload::Job, &KeyLines::new(), "");
        assert!(
            text.contains("Env vars:\n  PLAIN=1\n  PASS=secret db:3\nSecret files:\n  /etc/tls/key=secret tls:latest\n"),
            "{text}"
        );
    }
}
