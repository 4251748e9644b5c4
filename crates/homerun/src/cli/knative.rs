//! The Knative `serving.knative.dev/v1` Service that Cloud Run accepts (its v1 API, what
//! `gcloud run services replace` reads), converted to the v2 [`Service`].
//!
//! Cloud Run's annotations become v2 fields (`autoscaling.knative.dev/minScale` the
//! template's scaling, `run.googleapis.com/cpu-throttling` each container's `cpuIdle`,
//! and so on); output-only ones an exported YAML carries (`serving.knative.dev/creator`,
//! `status`...) are dropped quietly; other annotations and fields homerun does not know
//! in the platform's namespaces are dropped with a warning, since v2 refuses them as
//! annotations. A document without `apiVersion` is read as a v2 Service (what
//! `services describe --format yaml` prints).

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context};
use serde::de::{self, Deserializer};
use serde::Deserialize;
use serde_json::Value;

use api::k8s::{
    CloudSqlInstance, EmptyDirVolumeSource, EnvVarSource, Medium, SecretKeySelector,
    SecretVolumeSource, VersionToPath,
};
use api::vendor::{ServiceScaling, VpcAccess, VpcEgress};
use api::{
    Container, ContainerPort, EnvVar, ExecutionEnvironment, IngressTraffic, LaunchStage, Probe,
    ResourceRequirements, RevisionScaling, RevisionTemplate, Service, TrafficTarget, Volume,
    VolumeMount,
};

use super::args::parse_bool;

/// A converted service: its id, the v2 service, and what was dropped on the way.
#[derive(Debug)]
pub struct Converted {
    pub service_id: String,
    pub service: Service,
    pub warnings: Vec<String>,
}

/// Reads a Knative Service (or a v2 Service) from YAML or JSON text.
pub fn service_from_text(text: &str) -> anyhow::Result<Converted> {
    let value: Value = serde_norway::from_str(text).context("not valid YAML")?;
    if value.get("apiVersion").is_none() && value.get("kind").is_none() {
        return v2_service(value);
    }
    let knative: KService =
        serde_json::from_value(value).map_err(|e| anyhow!("not a Knative Service: {e}"))?;
    from_knative(knative)
}

fn v2_service(value: Value) -> anyhow::Result<Converted> {
    let service: Service =
        api::json::from_value(value).map_err(|e| anyhow!("not a v2 Service: {e}"))?;
    let service_id = service.name.rsplit('/').next().unwrap_or("").to_string();
    if service_id.is_empty() {
        bail!("the service has no name");
    }
    Ok(Converted {
        service_id,
        service,
        warnings: Vec::new(),
    })
}

/// A YAML scalar taken as text: annotations are strings, but `maxScale: 3` unquoted is
/// common.
#[derive(Clone, Debug, Default, PartialEq)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Text(s)),
            Value::Number(n) => Ok(Text(n.to_string())),
            Value::Bool(b) => Ok(Text(b.to_string())),
            Value::Null => Ok(Text(String::new())),
            other => Err(de::Error::custom(format!("expected a string, not {other}"))),
        }
    }
}

/// A whole number, written as a number or a string of digits.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Int(i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        let n = match &value {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        n.map(Int)
            .ok_or_else(|| de::Error::custom(format!("expected a whole number, not {value}")))
    }
}

impl Int {
    fn as_i32(self, path: &str) -> anyhow::Result<i32> {
        i32::try_from(self.0).map_err(|_| anyhow!("{path}: {} is out of range", self.0))
    }
}

type Extra = BTreeMap<String, Value>;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct KService {
    api_version: String,
    kind: String,
    metadata: KMetadata,
    spec: KServiceSpec,
    /// Output only.
    #[allow(dead_code)]
    status: Value,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct KMetadata {
    name: String,
    labels: BTreeMap<String, Text>,
    annotations: BTreeMap<String, Text>,
    #[serde(flatten)]
    extra: Extra,
}

/// Metadata an exported resource carries that a new one does not need.
const OUTPUT_ONLY_METADATA: &[&str] = &[
    "namespace",
    "uid",
    "selfLink",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "ownerReferences",
    "managedFields",
];

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct KServiceSpec {
    template: KTemplate,
    traffic: Vec<KTraffic>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct KTemplate {
    metadata: KMetadata,
    spec: KRevisionSpec,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct KRevisionSpec {
    container_concurrency: Option<Int>,
    timeout_seconds: Option<Int>,
    service_account_name: String,
    containers: Vec<KContainer>,
    volumes: Vec<KVolume>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct KContainer {
    name: String,
    image: String,
    command: Vec<Text>,
    args: Vec<Text>,
    env: Vec<KEnvVar>,
    ports: Vec<KPort>,
    resources: KResources,
    volume_mounts: Vec<KVolumeMount>,
    working_dir: String,
    startup_probe: Option<Value>,
    liveness_probe: Option<Value>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct KEnvVar {
    name: String,
    value: Option<Text>,
    value_from: Option<KEnvVarSource>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct KEnvVarSource {
    secret_key_ref: Option<KSecretKeyRef>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct KSecretKeyRef {
    name: String,
    key: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct KPort {
    name: String,
    container_port: Option<Int>,
    /// Always TCP on Cloud Run.
    #[allow(dead_code)]
    protocol: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct KResources {
    limits: BTreeMap<String, Text>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct KVolumeMount {
    name: String,
    mount_path: String,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct KVolume {
    name: String,
    empty_dir: Option<KEmptyDir>,
    secret: Option<KSecretVolume>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct KEmptyDir {
    medium: String,
    size_limit: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct KSecretVolume {
    secret_name: String,
    items: Vec<KKeyToPath>,
    default_mode: Option<Int>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct KKeyToPath {
    key: String,
    path: String,
    mode: Option<Int>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct KTraffic {
    percent: Option<Int>,
    revision_name: String,
    latest_revision: Option<bool>,
    tag: String,
    #[serde(flatten)]
    extra: Extra,
}

/// Traffic members an exported service carries that a request does not need.
const OUTPUT_ONLY_TRAFFIC: &[&str] = &["url", "configurationName"];

/// Service annotations that are output only (an exported YAML has them).
const OUTPUT_ONLY_SERVICE_ANNOTATIONS: &[&str] = &[
    "serving.knative.dev/creator",
    "serving.knative.dev/lastModifier",
    "run.googleapis.com/operation-id",
    "run.googleapis.com/ingress-status",
    "run.googleapis.com/urls",
    "run.googleapis.com/satisfiesPzs",
];

fn is_reserved(key: &str) -> bool {
    let namespace = key.split('/').next().unwrap_or("");
    api::validate::RESERVED_KEY_PREFIXES
        .iter()
        .any(|p| namespace == *p || namespace.ends_with(&format!(".{p}")))
}

/// What is collected while converting.
struct Conversion {
    warnings: Vec<String>,
}

impl Conversion {
    fn ignore_extra(&mut self, extra: &Extra, path: &str, quiet: &[&str]) {
        for key in extra.keys().filter(|k| !quiet.contains(&k.as_str())) {
            self.warnings.push(format!(
                "ignoring {path}.{key}: homerun does not support it"
            ));
        }
    }

    fn ignore_annotation(&mut self, path: &str, key: &str) {
        self.warnings.push(format!(
            "ignoring {path}[{key:?}]: homerun does not support it"
        ));
    }

    /// Labels, those in the platform's namespaces dropped (v2 refuses them).
    fn labels(&mut self, labels: BTreeMap<String, Text>, path: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (k, Text(v)) in labels {
            if k == "cloud.googleapis.com/location" {
                continue;
            }
            if is_reserved(&k) {
                self.ignore_annotation(path, &k);
            } else {
                out.insert(k, v);
            }
        }
        out
    }
}

fn ingress(value: &str) -> anyhow::Result<IngressTraffic> {
    Ok(match value {
        "all" => IngressTraffic::All,
        "internal" => IngressTraffic::InternalOnly,
        "internal-and-cloud-load-balancing" => IngressTraffic::InternalLoadBalancer,
        "none" => IngressTraffic::None,
        other => bail!(
            "run.googleapis.com/ingress: \"{other}\" is not all, internal or internal-and-cloud-load-balancing"
        ),
    })
}

fn count(value: &str, what: &str) -> anyhow::Result<i32> {
    value
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| anyhow!("{what}: \"{value}\" is not a count"))
}

fn from_knative(k: KService) -> anyhow::Result<Converted> {
    if k.api_version != "serving.knative.dev/v1" || k.kind != "Service" {
        bail!(
            "expected apiVersion serving.knative.dev/v1 and kind Service, not {} {}",
            k.api_version,
            k.kind
        );
    }
    let service_id = k.metadata.name.clone();
    if service_id.is_empty() {
        bail!("metadata.name is required");
    }
    let mut cv = Conversion {
        warnings: Vec::new(),
    };
    cv.ignore_extra(&k.extra, "", &["status"]);
    cv.ignore_extra(&k.metadata.extra, "metadata", OUTPUT_ONLY_METADATA);
    cv.ignore_extra(&k.spec.extra, "spec", &[]);

    let mut service = Service {
        labels: cv.labels(k.metadata.labels, "metadata.labels"),
        ..Default::default()
    };
    for (key, Text(v)) in k.metadata.annotations {
        let path = format!("metadata.annotations[{key:?}]");
        match key.as_str() {
            "run.googleapis.com/ingress" => service.ingress = ingress(&v)?,
            "run.googleapis.com/launch-stage" => {
                service.launch_stage = LaunchStage::from_name(&v.to_ascii_uppercase())
                    .ok_or_else(|| anyhow!("{path}: \"{v}\" is not a launch stage"))?
            }
            "run.googleapis.com/description" => service.description = v,
            "run.googleapis.com/invoker-iam-disabled" => {
                service.invoker_iam_disabled = parse_bool(&v, &path)?
            }
            "run.googleapis.com/default-url-disabled" => {
                service.default_uri_disabled = parse_bool(&v, &path)?
            }
            "run.googleapis.com/client-name" => service.client = v,
            "run.googleapis.com/client-version" => service.client_version = v,
            "run.googleapis.com/minScale" => {
                service
                    .scaling
                    .get_or_insert_with(ServiceScaling::default)
                    .min_instance_count = count(&v, &path)?
            }
            "run.googleapis.com/custom-audiences" => {
                service.custom_audiences = serde_json::from_str(&v)
                    .with_context(|| format!("{path}: not a JSON list of strings"))?
            }
            k if OUTPUT_ONLY_SERVICE_ANNOTATIONS.contains(&k) => {}
            k if is_reserved(k) => cv.ignore_annotation("metadata.annotations", k),
            _ => {
                service.annotations.insert(key, v);
            }
        }
    }
    service.template = Some(template(&mut cv, k.spec.template)?);
    service.traffic = k
        .spec
        .traffic
        .into_iter()
        .enumerate()
        .map(|(i, t)| traffic_target(&mut cv, t, i))
        .collect::<anyhow::Result<_>>()?;
    Ok(Converted {
        service_id,
        service,
        warnings: cv.warnings,
    })
}

fn traffic_target(cv: &mut Conversion, t: KTraffic, i: usize) -> anyhow::Result<TrafficTarget> {
    let path = format!("spec.traffic[{i}]");
    cv.ignore_extra(&t.extra, &path, OUTPUT_ONLY_TRAFFIC);
    let percent = t.percent.unwrap_or_default().as_i32(&path)?;
    let target = match (t.latest_revision, t.revision_name.is_empty()) {
        (Some(true), false) => bail!("{path}: latestRevision and revisionName exclude each other"),
        (Some(false), true) => bail!("{path}: latestRevision false needs a revisionName"),
        (_, false) => TrafficTarget::revision(t.revision_name, percent),
        (_, true) => TrafficTarget::latest(percent),
    };
    Ok(target.with_tag(t.tag))
}

/// Template-wide settings that v2 keeps per container.
#[derive(Default)]
struct ContainerWide {
    cpu_throttling: Option<bool>,
    startup_cpu_boost: Option<bool>,
    depends_on: BTreeMap<String, Vec<String>>,
}

fn template(cv: &mut Conversion, t: KTemplate) -> anyhow::Result<RevisionTemplate> {
    cv.ignore_extra(&t.extra, "spec.template", &[]);
    cv.ignore_extra(
        &t.metadata.extra,
        "spec.template.metadata",
        OUTPUT_ONLY_METADATA,
    );
    let spec = t.spec;
    cv.ignore_extra(&spec.extra, "spec.template.spec", &[]);
    let mut out = RevisionTemplate {
        revision: t.metadata.name,
        labels: cv.labels(t.metadata.labels, "spec.template.metadata.labels"),
        service_account: spec.service_account_name,
        ..Default::default()
    };
    let mut wide = ContainerWide::default();
    let mut cloud_sql: Vec<String> = Vec::new();
    for (key, Text(v)) in t.metadata.annotations {
        let path = format!("spec.template.metadata.annotations[{key:?}]");
        match key.as_str() {
            "autoscaling.knative.dev/minScale" => {
                out.scaling
                    .get_or_insert_with(RevisionScaling::default)
                    .min_instance_count = count(&v, &path)?
            }
            "autoscaling.knative.dev/maxScale" => {
                out.scaling
                    .get_or_insert_with(RevisionScaling::default)
                    .max_instance_count = count(&v, &path)?
            }
            "run.googleapis.com/execution-environment" => {
                out.execution_environment = match v.as_str() {
                    "gen1" => ExecutionEnvironment::Gen1,
                    "gen2" => ExecutionEnvironment::Gen2,
                    other => bail!("{path}: \"{other}\" is not gen1 or gen2"),
                }
            }
            "run.googleapis.com/cpu-throttling" => {
                wide.cpu_throttling = Some(parse_bool(&v, &path)?)
            }
            "run.googleapis.com/startup-cpu-boost" => {
                wide.startup_cpu_boost = Some(parse_bool(&v, &path)?)
            }
            "run.googleapis.com/sessionAffinity" => out.session_affinity = parse_bool(&v, &path)?,
            "run.googleapis.com/container-dependencies" => {
                wide.depends_on = serde_json::from_str(&v).with_context(|| {
                    format!("{path}: not a JSON object of container names to lists of names")
                })?
            }
            "run.googleapis.com/vpc-access-connector" => {
                out.vpc_access
                    .get_or_insert_with(VpcAccess::default)
                    .connector = v
            }
            "run.googleapis.com/vpc-access-egress" => {
                out.vpc_access.get_or_insert_with(VpcAccess::default).egress = match v.as_str() {
                    "all" | "all-traffic" => VpcEgress::AllTraffic,
                    "private-ranges-only" => VpcEgress::PrivateRangesOnly,
                    other => bail!("{path}: \"{other}\" is not all-traffic or private-ranges-only"),
                }
            }
            "run.googleapis.com/encryption-key" => out.encryption_key = v,
            "run.googleapis.com/cloudsql-instances" => {
                cloud_sql = v
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            }
            // gcloud's bookkeeping, no v2 field.
            "run.googleapis.com/client-name" | "run.googleapis.com/client-version" => {}
            k if is_reserved(k) => cv.ignore_annotation("spec.template.metadata.annotations", k),
            _ => {
                out.annotations.insert(key, v);
            }
        }
    }
    if let Some(c) = spec.container_concurrency {
        out.max_instance_request_concurrency =
            c.as_i32("spec.template.spec.containerConcurrency")?;
    }
    if let Some(t) = spec.timeout_seconds {
        out.timeout = Some(api::Duration::from_secs(t.0));
    }
    for (i, c) in spec.containers.into_iter().enumerate() {
        let path = format!("spec.template.spec.containers[{i}]");
        out.containers.push(container(cv, c, &path, &wide)?);
    }
    for (i, v) in spec.volumes.into_iter().enumerate() {
        let path = format!("spec.template.spec.volumes[{i}]");
        out.volumes.push(volume(v, &path)?);
    }
    if !cloud_sql.is_empty() {
        // What Cloud Run makes of the annotation: a volume mounted at /cloudsql.
        out.volumes.push(Volume {
            name: "cloudsql".into(),
            cloud_sql_instance: Some(CloudSqlInstance {
                instances: cloud_sql,
            }),
            ..Default::default()
        });
        if let Some(i) = out.ingress_container_index() {
            out.containers[i].volume_mounts.push(VolumeMount {
                name: "cloudsql".into(),
                mount_path: "/cloudsql".into(),
            });
        }
    }
    Ok(out)
}

fn probe(value: Option<Value>, path: &str) -> anyhow::Result<Option<Probe>> {
    value
        .map(|v| api::json::from_value(v).map_err(|e| anyhow!("{path}: {e}")))
        .transpose()
}

fn container(
    cv: &mut Conversion,
    c: KContainer,
    path: &str,
    wide: &ContainerWide,
) -> anyhow::Result<Container> {
    cv.ignore_extra(&c.extra, path, &[]);
    cv.ignore_extra(
        &c.resources.extra,
        &format!("{path}.resources"),
        &["requests"],
    );
    let env = c
        .env
        .into_iter()
        .enumerate()
        .map(|(j, e)| {
            let source = e.value_from.map(|from| {
                cv.ignore_extra(&from.extra, &format!("{path}.env[{j}].valueFrom"), &[]);
                EnvVarSource {
                    secret_key_ref: from.secret_key_ref.map(|s| SecretKeySelector {
                        secret: s.name,
                        version: s.key,
                    }),
                }
            });
            EnvVar {
                name: e.name,
                value: match (&e.value, &source) {
                    (Some(Text(v)), _) => Some(v.clone()),
                    (None, Some(_)) => None,
                    (None, None) => Some(String::new()),
                },
                value_source: source,
            }
        })
        .collect();
    let ports = c
        .ports
        .into_iter()
        .enumerate()
        .map(|(j, p)| {
            Ok(ContainerPort {
                name: p.name,
                container_port: p
                    .container_port
                    .unwrap_or_default()
                    .as_i32(&format!("{path}.ports[{j}].containerPort"))?,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let volume_mounts = c
        .volume_mounts
        .into_iter()
        .enumerate()
        .map(|(j, m)| {
            cv.ignore_extra(&m.extra, &format!("{path}.volumeMounts[{j}]"), &[]);
            VolumeMount {
                name: m.name,
                mount_path: m.mount_path,
            }
        })
        .collect();
    let depends_on = wide.depends_on.get(&c.name).cloned().unwrap_or_default();
    Ok(Container {
        name: c.name,
        image: c.image,
        command: c.command.into_iter().map(|Text(s)| s).collect(),
        args: c.args.into_iter().map(|Text(s)| s).collect(),
        env,
        resources: Some(ResourceRequirements {
            limits: c
                .resources
                .limits
                .into_iter()
                .map(|(k, Text(v))| (k, v))
                .collect(),
            // Cloud Run's default: CPU only during requests.
            cpu_idle: wide.cpu_throttling.unwrap_or(true),
            startup_cpu_boost: wide.startup_cpu_boost.unwrap_or(false),
        }),
        ports,
        volume_mounts,
        working_dir: c.working_dir,
        liveness_probe: probe(c.liveness_probe, &format!("{path}.livenessProbe"))?,
        startup_probe: probe(c.startup_probe, &format!("{path}.startupProbe"))?,
        depends_on,
    })
}

fn volume(v: KVolume, path: &str) -> anyhow::Result<Volume> {
    // A source homerun has no v2 equivalent for cannot be dropped: a mount would dangle.
    if let Some(source) = v.extra.keys().next() {
        bail!("{path}.{source}: homerun supports emptyDir volumes only");
    }
    let empty_dir = v
        .empty_dir
        .map(|e| {
            let medium = match e.medium.as_str() {
                "" => Medium::Unspecified,
                "Memory" => Medium::Memory,
                other => bail!("{path}.emptyDir.medium: \"{other}\" is not Memory"),
            };
            Ok(EmptyDirVolumeSource {
                medium,
                size_limit: e.size_limit.0,
            })
        })
        .transpose()?;
    let secret = v
        .secret
        .map(|s| -> anyhow::Result<SecretVolumeSource> {
            Ok(SecretVolumeSource {
                secret: s.secret_name,
                items: s
                    .items
                    .into_iter()
                    .map(|i| -> anyhow::Result<VersionToPath> {
                        Ok(VersionToPath {
                            path: i.path,
                            version: i.key,
                            mode: i.mode.unwrap_or_default().as_i32(path)?,
                        })
                    })
                    .collect::<anyhow::Result<_>>()?,
                default_mode: s.default_mode.unwrap_or_default().as_i32(path)?,
            })
        })
        .transpose()?;
    Ok(Volume {
        name: v.name,
        secret,
        cloud_sql_instance: None,
        empty_dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::TrafficTargetAllocationType;

    const YAML: &str = r#"
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
  namespace: "123456"
  labels:
    team: web
    cloud.googleapis.com/location: us-central1
  annotations:
    run.googleapis.com/ingress: internal
    serving.knative.dev/creator: someone@example.com
    owner: me
spec:
  template:
    metadata:
      name: hello-v3
      annotations:
        autoscaling.knative.dev/minScale: "1"
        autoscaling.knative.dev/maxScale: 7
        run.googleapis.com/execution-environment: gen2
        run.googleapis.com/cpu-throttling: "false"
        run.googleapis.com/startup-cpu-boost: "true"
        run.googleapis.com/secrets: x
        client.knative.dev/user-image: example/hello
    spec:
      containerConcurrency: 20
      timeoutSeconds: 120
      serviceAccountName: runner@example.iam.gserviceaccount.com
      containers:
      - image: example/hello:3
        command: [/bin/hello]
        args: [--port, 9000]
        env:
        - name: GREETING
          value: hi
        - name: TOKEN
          valueFrom:
            secretKeyRef: {name: token, key: latest}
        ports:
        - name: h2c
          containerPort: 9000
        resources:
          limits:
            cpu: "2"
            memory: 1Gi
        startupProbe:
          httpGet: {path: /ready}
          periodSeconds: 2
  traffic:
  - percent: 90
    latestRevision: true
  - percent: 10
    revisionName: hello-v2
    tag: old
status:
  url: https://hello.run.app
"#;

    #[test]
    fn knative_service_becomes_v2() {
        let c = service_from_text(YAML).unwrap();
        assert_eq!(c.service_id, "hello");
        let s = c.service;
        assert_eq!(s.ingress, IngressTraffic::InternalOnly);
        assert_eq!(s.labels, BTreeMap::from([("team".into(), "web".into())]));
        assert_eq!(
            s.annotations,
            BTreeMap::from([("owner".into(), "me".into())])
        );
        let t = s.template.unwrap();
        assert_eq!(t.revision, "hello-v3");
        assert_eq!(
            t.scaling,
            Some(RevisionScaling {
                min_instance_count: 1,
                max_instance_count: 7
            })
        );
        assert_eq!(t.execution_environment, ExecutionEnvironment::Gen2);
        assert_eq!(t.max_instance_request_concurrency, 20);
        assert_eq!(t.timeout, Some(api::Duration::from_secs(120)));
        assert_eq!(t.service_account, "runner@example.iam.gserviceaccount.com");
        assert_eq!(
            t.annotations,
            BTreeMap::from([(
                "client.knative.dev/user-image".into(),
                "example/hello".into()
            )])
        );
        let c0 = &t.containers[0];
        assert_eq!(c0.image, "example/hello:3");
        assert_eq!(c0.command, ["/bin/hello"]);
        assert_eq!(c0.args, ["--port", "9000"]);
        assert_eq!(c0.env[0], EnvVar::new("GREETING", "hi"));
        assert_eq!(
            c0.env[1].value_source.as_ref().unwrap().secret_key_ref,
            Some(SecretKeySelector {
                secret: "token".into(),
                version: "latest".into()
            })
        );
        assert_eq!(
            c0.ports,
            [ContainerPort {
                name: "h2c".into(),
                container_port: 9000
            }]
        );
        let r = c0.resources.as_ref().unwrap();
        assert_eq!(r.limits["cpu"], "2");
        assert_eq!(r.limits["memory"], "1Gi");
        assert!(!r.cpu_idle);
        assert!(r.startup_cpu_boost);
        let p = c0.startup_probe.as_ref().unwrap();
        assert_eq!(p.http_get.as_ref().unwrap().path, "/ready");
        assert_eq!(p.period_seconds, 2);
        assert_eq!(s.traffic[0], TrafficTarget::latest(90));
        assert_eq!(s.traffic[1].kind, TrafficTargetAllocationType::Revision);
        assert_eq!(
            s.traffic[1],
            TrafficTarget::revision("hello-v2", 10).with_tag("old")
        );
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("run.googleapis.com/secrets"));
    }

    #[test]
    fn defaults_and_refusals() {
        let minimal = "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: a}\nspec:\n  template:\n    spec:\n      containers: [{image: x}]\n";
        let c = service_from_text(minimal).unwrap();
        let r = c.service.template.unwrap().containers[0]
            .resources
            .clone()
            .unwrap();
        assert!(r.cpu_idle, "CPU throttled by default");
        assert!(c.service.traffic.is_empty());

        let job = "apiVersion: run.googleapis.com/v1\nkind: Job\nmetadata: {name: a}\n";
        assert!(service_from_text(job).is_err());
        let nameless = "apiVersion: serving.knative.dev/v1\nkind: Service\nspec: {}\n";
        assert!(service_from_text(nameless).is_err());
        let csi = "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: a}\nspec:\n  template:\n    spec:\n      volumes: [{name: v, csi: {driver: gcsfuse.run.googleapis.com}}]\n";
        let err = service_from_text(csi).unwrap_err();
        assert!(format!("{err:#}").contains("volumes[0].csi"), "{err:#}");
    }

    #[test]
    fn v2_documents_pass_through() {
        let v2 = "name: projects/local/locations/local/services/web\ntemplate:\n  containers:\n  - image: x\n";
        let c = service_from_text(v2).unwrap();
        assert_eq!(c.service_id, "web");
        assert_eq!(c.service.containers()[0].image, "x");
    }
}
