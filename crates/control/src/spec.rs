//! A stored revision turned into what the platform's parts need: the router's revision
//! settings, the autoscaler's, and the runtime's instance spec (images aside: those are
//! pulled by the revision's owner). Pure, so it is tested without a machine.

use std::time::Duration;

use api::k8s::{Container, Probe};
use api::quantity::{parse_cpu, parse_memory};
use api::{ExecutionEnvironment, Revision};
use runtime::container::Limits;
use runtime::health::{ProbeAction, ProbeSpec};
use runtime::instance::MemoryVolume;
use runtime::process::ContainerOverrides;
use runtime::runc::OciRuntime;

use crate::ControlError;

/// Processes per container: generous for real servers, a bound on fork bombs.
const PIDS_LIMIT: i64 = 4096;

/// One container of a revision, ready for the runtime but for its image record.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerPlan {
    pub name: String,
    /// The image as the revision names it.
    pub image: String,
    pub overrides: ContainerOverrides,
    pub port: Option<u16>,
    pub limits: Limits,
    pub volume_mounts: Vec<(String, String)>,
    pub depends_on: Vec<String>,
    pub startup_probe: Option<ProbeSpec>,
    pub liveness_probe: Option<ProbeSpec>,
    /// Environment variables whose values are secrets, resolved at each instance's start
    /// (so `latest` is the latest then, as on Cloud Run); they follow the literal ones.
    pub secret_env: Vec<(String, SecretRef)>,
}

/// A secret version as a template names it: `secret` an id or `projects/P/secrets/S`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub secret: String,
    /// A number or `latest`.
    pub version: String,
}

impl std::fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.secret, self.version)
    }
}

/// A secret volume: files, each a secret version, in a read-only directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretVolumePlan {
    pub name: String,
    /// `(path within the volume, version, mode)`.
    pub files: Vec<(String, SecretRef, u32)>,
}

/// Everything the platform derives from one revision.
#[derive(Clone, Debug, PartialEq)]
pub struct RevisionPlan {
    /// The full resource name (`projects/p/locations/l/services/s/revisions/r`): the
    /// router's and autoscaler's key.
    pub name: String,
    pub project: String,
    pub service: String,
    /// The revision id (`s-00001-abc`): `K_REVISION`.
    pub revision: String,
    pub containers: Vec<ContainerPlan>,
    pub volumes: Vec<MemoryVolume>,
    pub secret_volumes: Vec<SecretVolumePlan>,
    /// The identity its instances get from the metadata server.
    pub service_account: String,
    pub runtime: OciRuntime,
    /// Requests at once per instance.
    pub concurrency: u32,
    pub min_instances: u32,
    pub max_instances: u32,
    /// The request timeout.
    pub timeout: Duration,
    /// HTTP/2 to the container (its port is named `h2c`).
    pub h2c: bool,
    /// CPU only while serving (Cloud Run's default, `cpuIdle`).
    pub cpu_idle: bool,
    pub cpu_boost: bool,
    /// The ingress container's CPU limit in millicores (the autoscaler's CPU target).
    pub cpu_millis: u64,
}

impl RevisionPlan {
    /// The plan of a stored revision (already defaulted and validated by the API). The
    /// ingress container is the one with a port, or the only one.
    pub fn from_revision(r: &Revision) -> Result<RevisionPlan, ControlError> {
        let invalid = |m: String| ControlError::Invalid(format!("revision {}: {m}", r.name));
        let parts: Vec<&str> = r.name.split('/').collect();
        let [_, project, _, _, _, service, _, revision] = parts[..] else {
            return Err(invalid("not a revision name".into()));
        };
        if r.containers.is_empty() {
            return Err(invalid("has no container".into()));
        }
        let ingress = if r.containers.len() == 1 {
            0
        } else {
            r.containers
                .iter()
                .position(|c| !c.ports.is_empty())
                .ok_or_else(|| invalid("no container has a port".into()))?
        };
        let mut containers = Vec::with_capacity(r.containers.len());
        let mut h2c = false;
        for (i, c) in r.containers.iter().enumerate() {
            let name = if c.name.is_empty() {
                format!("container-{i}")
            } else {
                c.name.clone()
            };
            let port = if i == ingress {
                let p = c.ports.first();
                h2c = p.is_some_and(|p| p.name == "h2c");
                let n = p.map(|p| p.container_port).unwrap_or(8080);
                Some(u16::try_from(n).map_err(|_| invalid(format!("port {n} is out of range")))?)
            } else {
                None
            };
            containers.push(container_plan(c, name, port).map_err(invalid)?);
        }
        let ingress_container = &r.containers[ingress];
        let resources = ingress_container.resources.clone().unwrap_or_default();
        let (volumes, secret_volumes) = volumes(&r.volumes).map_err(invalid)?;
        let scaling = r.scaling.clone().unwrap_or_default();
        let timeout = r
            .timeout
            .and_then(|t| t.to_std())
            .unwrap_or(Duration::from_secs(300));
        Ok(RevisionPlan {
            name: r.name.clone(),
            project: project.to_string(),
            service: service.to_string(),
            revision: revision.to_string(),
            cpu_millis: containers[ingress].limits.cpu_millis,
            containers,
            volumes,
            secret_volumes,
            service_account: r.service_account.clone(),
            runtime: match r.execution_environment {
                ExecutionEnvironment::Gen1 => OciRuntime::Runsc,
                _ => OciRuntime::Runc,
            },
            concurrency: u32::try_from(r.max_instance_request_concurrency.max(1)).unwrap_or(1),
            min_instances: u32::try_from(scaling.min_instance_count.max(0)).unwrap_or(0),
            max_instances: if scaling.max_instance_count > 0 {
                scaling.max_instance_count as u32
            } else {
                api::defaults::DEFAULT_MAX_INSTANCES as u32
            },
            timeout,
            h2c,
            cpu_idle: resources.cpu_idle,
            cpu_boost: resources.startup_cpu_boost,
        })
    }

    /// Each container's image, in order.
    pub fn images(&self) -> Vec<String> {
        self.containers.iter().map(|c| c.image.clone()).collect()
    }

    /// The router's view.
    pub fn router_settings(&self, mean_startup: Duration) -> router::RevisionSettings {
        router::RevisionSettings {
            name: self.name.clone(),
            protocol: if self.h2c {
                router::Protocol::H2c
            } else {
                router::Protocol::Http1
            },
            timeout: self.timeout,
            mean_startup,
            queue_timeout: None,
        }
    }

    /// The autoscaler's view.
    pub fn autoscaler_settings(&self) -> autoscaler::RevisionSettings {
        autoscaler::RevisionSettings {
            concurrency: self.concurrency,
            min_instances: self.min_instances,
            max_instances: self.max_instances.max(self.min_instances),
            cpu_limit_millis: u32::try_from(self.cpu_millis).unwrap_or(u32::MAX),
        }
    }

    /// `K_SERVICE`, `K_REVISION`, `K_CONFIGURATION` (the contract).
    pub fn platform_env(&self) -> Vec<(String, String)> {
        vec![
            ("K_SERVICE".into(), self.service.clone()),
            ("K_REVISION".into(), self.revision.clone()),
            ("K_CONFIGURATION".into(), self.service.clone()),
        ]
    }
}

/// Cloud Run's mode of secret files when neither the item nor the volume sets one.
const DEFAULT_SECRET_MODE: u32 = 0o444;

/// In-memory (`emptyDir`) and secret volumes; other kinds are refused by name.
pub(crate) fn volumes(
    volumes: &[api::Volume],
) -> Result<(Vec<MemoryVolume>, Vec<SecretVolumePlan>), String> {
    let mut memory = Vec::new();
    let mut secrets = Vec::new();
    for v in volumes {
        if let Some(e) = &v.empty_dir {
            memory.push(MemoryVolume {
                name: v.name.clone(),
                size_bytes: if e.size_limit.is_empty() {
                    None
                } else {
                    Some(parse_memory(&e.size_limit).map_err(|e| e.to_string())? as i64)
                },
            });
        } else if let Some(s) = &v.secret {
            let mode = |m: i32| match u32::try_from(m) {
                Ok(0) | Err(_) if s.default_mode > 0 => s.default_mode as u32,
                Ok(0) | Err(_) => DEFAULT_SECRET_MODE,
                Ok(m) => m,
            };
            let reference = |version: &str| SecretRef {
                secret: s.secret.clone(),
                version: if version.is_empty() {
                    "latest".into()
                } else {
                    version.to_string()
                },
            };
            let files = if s.items.is_empty() {
                // No items: one file named after the secret, its latest version.
                let file = s.secret.rsplit('/').next().unwrap_or_default().to_string();
                vec![(file, reference(""), mode(0))]
            } else {
                s.items
                    .iter()
                    .map(|i| (i.path.clone(), reference(&i.version), mode(i.mode)))
                    .collect()
            };
            secrets.push(SecretVolumePlan {
                name: v.name.clone(),
                files,
            });
        } else {
            return Err(format!(
                "volume {}: only in-memory (emptyDir) and secret volumes are supported",
                v.name
            ));
        }
    }
    Ok((memory, secrets))
}

pub(crate) fn container_plan(
    c: &Container,
    name: String,
    port: Option<u16>,
) -> Result<ContainerPlan, String> {
    let limits = c
        .resources
        .as_ref()
        .map(|r| r.limits.clone())
        .unwrap_or_default();
    let cpu_millis = match limits.get("cpu") {
        Some(cpu) => parse_cpu(cpu).map_err(|e| format!("container {name}: {e}"))?,
        None => 1000,
    };
    let memory_bytes = match limits.get("memory") {
        Some(m) => parse_memory(m).map_err(|e| format!("container {name}: {e}"))?,
        None => 512 << 20,
    };
    let mut env = Vec::with_capacity(c.env.len());
    let mut secret_env = Vec::new();
    for e in &c.env {
        let secret = e.value_source.as_ref().map(|s| s.secret_key_ref.as_ref());
        match (&e.value, secret) {
            (Some(v), _) => env.push((e.name.clone(), v.clone())),
            (None, Some(Some(s))) => secret_env.push((
                e.name.clone(),
                SecretRef {
                    secret: s.secret.clone(),
                    version: if s.version.is_empty() {
                        "latest".into()
                    } else {
                        s.version.clone()
                    },
                },
            )),
            (None, Some(None)) => {
                return Err(format!(
                    "container {name}: environment variable {} has a valueSource without a secretKeyRef",
                    e.name
                ))
            }
            (None, None) => env.push((e.name.clone(), String::new())),
        }
    }
    let default_port = port.unwrap_or(8080);
    let probe = |p: &Option<Probe>| -> Result<Option<ProbeSpec>, String> {
        p.as_ref()
            .map(|p| probe_spec(p, default_port).map_err(|e| format!("container {name}: {e}")))
            .transpose()
    };
    Ok(ContainerPlan {
        image: c.image.clone(),
        overrides: ContainerOverrides {
            command: (!c.command.is_empty()).then(|| c.command.clone()),
            args: (!c.args.is_empty()).then(|| c.args.clone()),
            env,
            working_dir: (!c.working_dir.is_empty()).then(|| c.working_dir.clone()),
        },
        port,
        limits: Limits {
            memory_bytes: i64::try_from(memory_bytes).unwrap_or(i64::MAX),
            cpu_millis,
            pids: PIDS_LIMIT,
        },
        volume_mounts: c
            .volume_mounts
            .iter()
            .map(|m| (m.name.clone(), m.mount_path.clone()))
            .collect(),
        depends_on: c.depends_on.clone(),
        startup_probe: probe(&c.startup_probe)?,
        liveness_probe: probe(&c.liveness_probe)?,
        secret_env,
        name,
    })
}

fn probe_spec(p: &Probe, default_port: u16) -> Result<ProbeSpec, String> {
    let port = |n: i32| -> Result<u16, String> {
        if n == 0 {
            Ok(default_port)
        } else {
            u16::try_from(n).map_err(|_| format!("probe port {n} is out of range"))
        }
    };
    let action = if let Some(h) = &p.http_get {
        ProbeAction::Http {
            port: port(h.port)?,
            path: if h.path.is_empty() {
                "/".into()
            } else {
                h.path.clone()
            },
            headers: h
                .http_headers
                .iter()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect(),
        }
    } else if let Some(g) = &p.grpc {
        ProbeAction::Grpc {
            port: port(g.port)?,
            service: (!g.service.is_empty()).then(|| g.service.clone()),
        }
    } else {
        ProbeAction::Tcp {
            port: port(p.tcp_socket.as_ref().map(|t| t.port).unwrap_or(0))?,
        }
    };
    let secs = |n: i32, default: u64| {
        if n > 0 {
            Duration::from_secs(n as u64)
        } else {
            Duration::from_secs(default)
        }
    };
    Ok(ProbeSpec {
        action,
        initial_delay: Duration::from_secs(p.initial_delay_seconds.max(0) as u64),
        timeout: secs(p.timeout_seconds, 1),
        period: secs(p.period_seconds, 10),
        failure_threshold: if p.failure_threshold > 0 {
            p.failure_threshold as u32
        } else {
            3
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::k8s::{ContainerPort, EnvVar, ResourceRequirements};
    use api::vendor::RevisionScaling;

    fn revision(containers: Vec<Container>) -> Revision {
        Revision {
            name: "projects/p/locations/l/services/hello/revisions/hello-00001-abc".into(),
            containers,
            max_instance_request_concurrency: 10,
            scaling: Some(RevisionScaling {
                min_instance_count: 1,
                max_instance_count: 5,
            }),
            timeout: Some(api::Duration::from_secs(30)),
            ..Default::default()
        }
    }

    #[test]
    fn ingress_container_settings() {
        let c = Container {
            image: "reg/probe".into(),
            args: vec!["serve".into()],
            env: vec![EnvVar::new("A", "1")],
            ports: vec![ContainerPort {
                name: "h2c".into(),
                container_port: 9000,
            }],
            resources: Some(ResourceRequirements {
                limits: [
                    ("cpu".into(), "2".into()),
                    ("memory".into(), "256Mi".into()),
                ]
                .into(),
                cpu_idle: true,
                startup_cpu_boost: true,
            }),
            ..Default::default()
        };
        let plan = RevisionPlan::from_revision(&revision(vec![c])).unwrap();
        assert_eq!(plan.project, "p");
        assert_eq!(plan.service, "hello");
        assert_eq!(plan.revision, "hello-00001-abc");
        assert_eq!(plan.concurrency, 10);
        assert_eq!((plan.min_instances, plan.max_instances), (1, 5));
        assert_eq!(plan.timeout, Duration::from_secs(30));
        assert!(plan.h2c && plan.cpu_idle && plan.cpu_boost);
        assert_eq!(plan.runtime, OciRuntime::Runc);
        let c = &plan.containers[0];
        assert_eq!(c.port, Some(9000));
        assert_eq!(c.limits.cpu_millis, 2000);
        assert_eq!(c.limits.memory_bytes, 256 << 20);
        assert_eq!(c.overrides.args, Some(vec!["serve".to_string()]));
        assert_eq!(c.overrides.command, None);
        assert_eq!(c.overrides.env, vec![("A".to_string(), "1".to_string())]);
        assert_eq!(
            plan.router_settings(Duration::ZERO).protocol,
            router::Protocol::H2c
        );
        assert_eq!(
            plan.platform_env(),
            vec![
                ("K_SERVICE".to_string(), "hello".to_string()),
                ("K_REVISION".to_string(), "hello-00001-abc".to_string()),
                ("K_CONFIGURATION".to_string(), "hello".to_string()),
            ]
        );
    }

    #[test]
    fn sidecar_has_no_port_and_probes_default_to_the_ingress_port() {
        let ingress = Container {
            name: "web".into(),
            image: "a".into(),
            ports: vec![ContainerPort {
                name: "http1".into(),
                container_port: 8081,
            }],
            liveness_probe: Some(Probe {
                http_get: Some(api::k8s::HttpGetAction::default()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let sidecar = Container {
            name: "side".into(),
            image: "b".into(),
            depends_on: vec!["web".into()],
            ..Default::default()
        };
        let mut r = revision(vec![sidecar, ingress]);
        r.execution_environment = ExecutionEnvironment::Gen1;
        let plan = RevisionPlan::from_revision(&r).unwrap();
        assert_eq!(plan.runtime, OciRuntime::Runsc);
        assert_eq!(plan.containers[0].port, None);
        assert_eq!(plan.containers[0].depends_on, vec!["web".to_string()]);
        assert_eq!(plan.containers[1].port, Some(8081));
        let live = plan.containers[1].liveness_probe.clone().unwrap();
        assert_eq!(
            live.action,
            ProbeAction::Http {
                port: 8081,
                path: "/".into(),
                headers: vec![]
            }
        );
        assert_eq!(live.failure_threshold, 3);
    }

    #[test]
    fn secrets_become_references_resolved_later() {
        let c = Container {
            image: "a".into(),
            env: vec![
                EnvVar::new("PLAIN", "1"),
                EnvVar {
                    name: "TOKEN".into(),
                    value: None,
                    value_source: Some(api::k8s::EnvVarSource {
                        secret_key_ref: Some(api::k8s::SecretKeySelector {
                            secret: "tok".into(),
                            version: String::new(),
                        }),
                    }),
                },
            ],
            ..Default::default()
        };
        let mut r = revision(vec![c]);
        r.service_account = "sa@p.iam.gserviceaccount.com".into();
        r.volumes = vec![
            api::Volume {
                name: "whole".into(),
                secret: Some(api::k8s::SecretVolumeSource {
                    secret: "projects/p/secrets/cert".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            api::Volume {
                name: "items".into(),
                secret: Some(api::k8s::SecretVolumeSource {
                    secret: "cfg".into(),
                    items: vec![
                        api::k8s::VersionToPath {
                            path: "a/one".into(),
                            version: "2".into(),
                            mode: 0o400,
                        },
                        api::k8s::VersionToPath {
                            path: "two".into(),
                            ..Default::default()
                        },
                    ],
                    default_mode: 0o440,
                }),
                ..Default::default()
            },
        ];
        let plan = RevisionPlan::from_revision(&r).unwrap();
        assert_eq!(plan.service_account, "sa@p.iam.gserviceaccount.com");
        let c = &plan.containers[0];
        assert_eq!(
            c.overrides.env,
            vec![("PLAIN".to_string(), "1".to_string())]
        );
        let latest = |s: &str| SecretRef {
            secret: s.into(),
            version: "latest".into(),
        };
        assert_eq!(c.secret_env, vec![("TOKEN".to_string(), latest("tok"))]);
        assert_eq!(
            plan.secret_volumes,
            vec![
                SecretVolumePlan {
                    name: "whole".into(),
                    files: vec![("cert".into(), latest("projects/p/secrets/cert"), 0o444)],
                },
                SecretVolumePlan {
                    name: "items".into(),
                    files: vec![
                        (
                            "a/one".into(),
                            SecretRef {
                                secret: "cfg".into(),
                                version: "2".into()
                            },
                            0o400
                        ),
                        ("two".into(), latest("cfg"), 0o440),
                    ],
                },
            ]
        );
        // The references' Debug shows names, never values (there are none here to show).
        assert_eq!(format!("{:?}", latest("tok")), "tok:latest");
    }

    #[test]
    fn foreign_volumes_are_refused_by_name() {
        let mut r = revision(vec![Container {
            image: "a".into(),
            ..Default::default()
        }]);
        r.volumes = vec![api::Volume {
            name: "sql".into(),
            cloud_sql_instance: Some(Default::default()),
            ..Default::default()
        }];
        let err = RevisionPlan::from_revision(&r).unwrap_err().to_string();
        assert!(err.contains("sql") && err.contains("supported"), "{err}");
    }
}
