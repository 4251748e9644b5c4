//! `homerun deploy SERVICE --image IMG ...`: gcloud's `run deploy`. Creates the service
//! when it does not exist, else reads it, changes what the flags say in its template
//! (keeping everything else, as gcloud does: a deploy with only `--image` keeps the env
//! vars) and writes the whole service back; then follows the operation and prints the
//! URL.

use anyhow::{anyhow, bail};
use clap::{Args, ValueEnum};
use serde_json::Value;

use api::iam::ALL_USERS;
use api::{
    Container, ContainerPort, EnumEncoding, ExecutionEnvironment, IngressTraffic,
    ResourceRequirements, RevisionTemplate, Service, TrafficTarget, TrafficTargetAllocationType,
};

use super::args::{parse_count, parse_duration_secs, split_list, EnvArgs};
use super::client::ApiClient;
use super::iam::{self, INVOKER_ROLE};
use super::operation::{follow, step};
use super::output::OutputArgs;
use super::secret_flags::{apply_env_and_secrets, SecretArgs};
use super::view::{serving_revisions, short_name};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExecutionEnvironmentArg {
    Gen1,
    Gen2,
}

impl From<ExecutionEnvironmentArg> for ExecutionEnvironment {
    fn from(e: ExecutionEnvironmentArg) -> Self {
        match e {
            ExecutionEnvironmentArg::Gen1 => ExecutionEnvironment::Gen1,
            ExecutionEnvironmentArg::Gen2 => ExecutionEnvironment::Gen2,
        }
    }
}

/// `--ingress`: where requests may come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum IngressArg {
    /// From anywhere.
    All,
    /// From homerun's own instances only.
    Internal,
    /// From nowhere.
    None,
}

impl From<IngressArg> for IngressTraffic {
    fn from(i: IngressArg) -> Self {
        match i {
            IngressArg::All => IngressTraffic::All,
            IngressArg::Internal => IngressTraffic::InternalOnly,
            IngressArg::None => IngressTraffic::None,
        }
    }
}

#[derive(Args, Debug, Clone, Default)]
pub struct DeployArgs {
    /// The service's id (created if it does not exist).
    pub service: String,
    /// The container image (required to create a service).
    #[arg(long)]
    pub image: Option<String>,
    /// The port the container listens on (given to it as $PORT).
    #[arg(long)]
    pub port: Option<u16>,
    /// The container speaks HTTP/2 cleartext (h2c) end to end.
    #[arg(long, overrides_with = "no_use_http2")]
    pub use_http2: bool,
    /// The container speaks HTTP/1.1 (the default).
    #[arg(long, overrides_with = "use_http2")]
    pub no_use_http2: bool,
    /// Requests an instance serves at once (a number, or "default").
    #[arg(long)]
    pub concurrency: Option<String>,
    /// Instances kept running (a number, or "default").
    #[arg(long)]
    pub min_instances: Option<String>,
    /// The most instances (a number, or "default").
    #[arg(long)]
    pub max_instances: Option<String>,
    /// The memory limit (512Mi, 1Gi...).
    #[arg(long)]
    pub memory: Option<String>,
    /// The CPU limit (1, 2, 0.5...).
    #[arg(long)]
    pub cpu: Option<String>,
    /// The request timeout (300, 300s, 5m...).
    #[arg(long)]
    pub timeout: Option<String>,
    #[command(flatten)]
    pub env: EnvArgs,
    /// The entrypoint, comma-separated ("" for the image's).
    #[arg(long, allow_hyphen_values = true)]
    pub command: Option<String>,
    /// The arguments, comma-separated ("" for the image's).
    #[arg(long, allow_hyphen_values = true)]
    pub args: Option<String>,
    /// The sandbox generation.
    #[arg(long, value_enum)]
    pub execution_environment: Option<ExecutionEnvironmentArg>,
    /// More CPU while an instance starts.
    #[arg(long, overrides_with = "no_cpu_boost")]
    pub cpu_boost: bool,
    /// No extra CPU at startup (the default).
    #[arg(long, overrides_with = "cpu_boost")]
    pub no_cpu_boost: bool,
    /// CPU only while requests are served (the default).
    #[arg(long, overrides_with = "no_cpu_throttling")]
    pub cpu_throttling: bool,
    /// CPU always allocated, between requests too.
    #[arg(long, overrides_with = "cpu_throttling")]
    pub no_cpu_throttling: bool,
    /// The service account the revision runs as (its identity at the metadata server).
    #[arg(long)]
    pub service_account: Option<String>,
    #[command(flatten)]
    pub secrets: SecretArgs,
    /// Anyone may call the service: allUsers gets roles/run.invoker.
    #[arg(long, overrides_with = "no_allow_unauthenticated")]
    pub allow_unauthenticated: bool,
    /// Only callers holding roles/run.invoker (allUsers loses it). A new service is
    /// private unless --allow-unauthenticated.
    #[arg(long, overrides_with = "allow_unauthenticated")]
    pub no_allow_unauthenticated: bool,
    /// Where requests may come from.
    #[arg(long, value_enum)]
    pub ingress: Option<IngressArg>,
    /// Requests need a token of a principal holding roles/run.invoker (the default).
    #[arg(long, overrides_with = "no_invoker_iam_check")]
    pub invoker_iam_check: bool,
    /// No invoker check: the service is public whatever its IAM policy says.
    #[arg(long, overrides_with = "invoker_iam_check")]
    pub no_invoker_iam_check: bool,
    /// AUDIENCE,...: the audiences ID tokens may name besides the service's URLs,
    /// replacing the others.
    #[arg(long, conflicts_with_all = ["add_custom_audiences", "remove_custom_audiences", "clear_custom_audiences"])]
    pub set_custom_audiences: Option<String>,
    /// AUDIENCE,...: custom audiences added.
    #[arg(long, conflicts_with = "clear_custom_audiences")]
    pub add_custom_audiences: Option<String>,
    /// AUDIENCE,...: custom audiences removed.
    #[arg(long, conflicts_with = "clear_custom_audiences")]
    pub remove_custom_audiences: Option<String>,
    /// Remove every custom audience.
    #[arg(long)]
    pub clear_custom_audiences: bool,
    /// A traffic tag for the new revision (its own URL).
    #[arg(long)]
    pub tag: Option<String>,
    /// Keep traffic where it is: the new revision gets none.
    #[arg(long)]
    pub no_traffic: bool,
    /// The new revision is named SERVICE-SUFFIX.
    #[arg(long)]
    pub revision_suffix: Option<String>,
    /// Return once the change is accepted, without waiting for it.
    #[arg(long = "async")]
    pub run_async: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// A flag pair `--x` / `--no-x`: `None` when neither is given.
fn flag_pair(on: bool, off: bool) -> Option<bool> {
    match (on, off) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

/// The container's resources, made as Cloud Run's defaults would (CPU only during
/// requests) when absent: once `resources` is sent, `cpuIdle` is the client's to set.
fn resources(c: &mut Container) -> &mut ResourceRequirements {
    c.resources.get_or_insert_with(|| ResourceRequirements {
        cpu_idle: true,
        ..Default::default()
    })
}

fn apply_container_flags(c: &mut Container, args: &DeployArgs) -> anyhow::Result<()> {
    if let Some(image) = &args.image {
        c.image = image.clone();
    }
    if let Some(port) = args.port {
        match c.ports.first_mut() {
            Some(p) => p.container_port = i32::from(port),
            None => c.ports.push(ContainerPort {
                name: String::new(),
                container_port: i32::from(port),
            }),
        }
    }
    if let Some(http2) = flag_pair(args.use_http2, args.no_use_http2) {
        if c.ports.is_empty() {
            c.ports.push(ContainerPort::default());
        }
        c.ports[0].name = if http2 { "h2c" } else { "http1" }.into();
    }
    if let Some(memory) = &args.memory {
        resources(c).limits.insert("memory".into(), memory.clone());
    }
    if let Some(cpu) = &args.cpu {
        resources(c).limits.insert("cpu".into(), cpu.clone());
    }
    if let Some(boost) = flag_pair(args.cpu_boost, args.no_cpu_boost) {
        resources(c).startup_cpu_boost = boost;
    }
    if let Some(throttling) = flag_pair(args.cpu_throttling, args.no_cpu_throttling) {
        resources(c).cpu_idle = throttling;
    }
    if let Some(command) = &args.command {
        c.command = split_list(command);
    }
    if let Some(a) = &args.args {
        c.args = split_list(a);
    }
    Ok(())
}

fn apply_template_flags(t: &mut RevisionTemplate, args: &DeployArgs) -> anyhow::Result<()> {
    if t.containers.is_empty() {
        t.containers.push(Container::default());
    }
    let ingress = t.ingress_container_index().ok_or_else(|| {
        anyhow!(
            "the service has several containers and not exactly one with a port: deploy changes the ingress container only"
        )
    })?;
    apply_container_flags(&mut t.containers[ingress], args)?;
    apply_env_and_secrets(
        &args.env,
        &args.secrets,
        &mut t.containers,
        ingress,
        &mut t.volumes,
    )?;
    if let Some(c) = &args.concurrency {
        t.max_instance_request_concurrency = parse_count(c, "--concurrency")?;
    }
    if let Some(n) = &args.min_instances {
        t.scaling
            .get_or_insert_with(Default::default)
            .min_instance_count = parse_count(n, "--min-instances")?;
    }
    if let Some(n) = &args.max_instances {
        t.scaling
            .get_or_insert_with(Default::default)
            .max_instance_count = parse_count(n, "--max-instances")?;
    }
    if let Some(timeout) = &args.timeout {
        t.timeout = Some(api::Duration::from_secs(parse_duration_secs(
            timeout,
            "--timeout",
        )?));
    }
    if let Some(env) = args.execution_environment {
        t.execution_environment = env.into();
    }
    if let Some(account) = &args.service_account {
        t.service_account = account.clone();
    }
    Ok(())
}

/// `--ingress`, `--[no-]invoker-iam-check` and the custom audiences flags: the
/// service's own fields.
fn apply_service_flags(service: &mut Service, args: &DeployArgs) {
    if let Some(ingress) = args.ingress {
        service.ingress = ingress.into();
    }
    if let Some(check) = flag_pair(args.invoker_iam_check, args.no_invoker_iam_check) {
        service.invoker_iam_disabled = !check;
    }
    let audiences = &mut service.custom_audiences;
    if args.clear_custom_audiences {
        audiences.clear();
    }
    if let Some(set) = &args.set_custom_audiences {
        *audiences = split_list(set);
    }
    if let Some(remove) = &args.remove_custom_audiences {
        let removed = split_list(remove);
        audiences.retain(|a| !removed.contains(a));
    }
    if let Some(add) = &args.add_custom_audiences {
        for a in split_list(add) {
            if !audiences.contains(&a) {
                audiences.push(a);
            }
        }
    }
    audiences.dedup();
}

/// `--[no-]allow-unauthenticated`, after the service is written: `allUsers` as invoker
/// or not. A new service without either flag stays private (gcloud, not prompting). A
/// failure is a warning with the command that would do it, as gcloud's.
async fn apply_invoker_flags(client: &ApiClient, args: &DeployArgs, existing: bool) {
    let Some(public) = flag_pair(args.allow_unauthenticated, args.no_allow_unauthenticated) else {
        return;
    };
    if !public && !existing {
        return;
    }
    step("Setting IAM Policy...");
    if let Err(e) = iam::set_public(client, &args.service, public).await {
        let verb = if public { "add" } else { "remove" };
        eprintln!(
            "homerun: warning: setting the IAM policy failed ({}); try `homerun services {verb}-iam-policy-binding {} --member={ALL_USERS} --role={INVOKER_ROLE}`",
            crate::error_chain(&e),
            args.service
        );
    }
}

/// The revision id this deploy names explicitly: from `--revision-suffix`, or generated
/// as the API would (`{service}-{generation:05}-{abc}`) when `--tag` must name it.
fn explicit_revision_id(args: &DeployArgs, next_generation: i64) -> Option<String> {
    match (&args.revision_suffix, &args.tag) {
        (Some(suffix), _) => Some(api::naming::revision_id_from_suffix(&args.service, suffix)),
        (None, Some(_)) => Some(api::naming::generate_revision_id(
            &args.service,
            next_generation,
        )),
        (None, None) => None,
    }
}

/// Changes `service` (the stored one, or a new one) as the flags say. `existing`: whether
/// it is stored already. Returns the new revision's id when this deploy names it.
pub fn apply_deploy_flags(
    service: &mut Service,
    args: &DeployArgs,
    existing: bool,
) -> anyhow::Result<Option<String>> {
    if !existing && args.no_traffic {
        bail!("--no-traffic not supported when creating a new service.");
    }
    apply_service_flags(service, args);
    let template = service.template.get_or_insert_with(Default::default);
    // A name from an earlier deploy would clash: every deploy names its own revision or
    // lets the API do it.
    template.revision.clear();
    apply_template_flags(template, args)?;
    let revision = explicit_revision_id(args, service.generation + 1);
    if let Some(id) = &revision {
        template.revision = id.clone();
    }

    if args.no_traffic {
        // LATEST would move to the new revision: pin its share where it is now.
        let current = if service.latest_ready_revision.is_empty() {
            short_name(&service.latest_created_revision).to_string()
        } else {
            short_name(&service.latest_ready_revision).to_string()
        };
        if service.traffic.is_empty() {
            service.traffic.push(TrafficTarget::latest(100));
        }
        for t in &mut service.traffic {
            if t.kind != TrafficTargetAllocationType::Revision && t.percent > 0 {
                if current.is_empty() {
                    bail!(
                        "--no-traffic: service [{}] has no revision to keep serving the traffic",
                        args.service
                    );
                }
                t.kind = TrafficTargetAllocationType::Revision;
                t.revision = current.clone();
            }
        }
    }
    if let (Some(tag), Some(id)) = (&args.tag, &revision) {
        if service.traffic.is_empty() {
            service.traffic.push(TrafficTarget::latest(100));
        }
        // The tag moves to the new revision.
        for t in &mut service.traffic {
            if t.tag == *tag {
                t.tag.clear();
            }
        }
        service
            .traffic
            .retain(|t| t.percent > 0 || !t.tag.is_empty());
        service
            .traffic
            .push(TrafficTarget::revision(id.clone(), 0).with_tag(tag.clone()));
    }
    Ok(revision)
}

fn latest_created_of(operation: &Value) -> Option<String> {
    let op: api::Operation = api::json::from_value(operation.clone()).ok()?;
    let service = op.metadata.as_ref()?.as_service()?;
    Some(short_name(&service.latest_created_revision).to_string()).filter(|s| !s.is_empty())
}

pub async fn run(client: &ApiClient, args: DeployArgs) -> anyhow::Result<()> {
    let service_id = args.service.clone();
    eprintln!(
        "Deploying container to homerun service [{service_id}] in project [{}] region [{}]",
        client.project, client.region
    );
    let stored = client.get_service(&service_id).await?;
    let existing = stored.is_some();
    let previous_revision;
    let operation = match stored {
        None => {
            if args.image.is_none() {
                bail!("--image is required to create service [{service_id}]");
            }
            let mut service = Service::default();
            apply_deploy_flags(&mut service, &args, false)?;
            previous_revision = String::new();
            let body = api::json::to_value(&service, EnumEncoding::Name);
            client.create_service(&service_id, &body).await?
        }
        Some(value) => {
            let mut service: Service = api::json::from_value(value)
                .map_err(|e| anyhow!("the API answered with an unreadable service: {e}"))?;
            previous_revision = short_name(&service.latest_created_revision).to_string();
            apply_deploy_flags(&mut service, &args, true)?;
            // No etag: the API retries by itself when the controller wrote status
            // meanwhile, and a deploy replaces what it read anyway.
            service.etag.clear();
            let body = api::json::to_value(&service, EnumEncoding::Name);
            client.update_service(&service_id, &body, "").await?
        }
    };
    let new_revision = latest_created_of(&operation).filter(|r| *r != previous_revision);
    match &new_revision {
        Some(r) => step(&format!("Created revision [{r}].")),
        None => step("Nothing changed: no new revision."),
    }
    apply_invoker_flags(client, &args, existing).await;
    if args.run_async {
        let name = operation.get("name").and_then(Value::as_str).unwrap_or("");
        eprintln!("Deploying asynchronously: operation [{name}].");
        if !args.output.print_structured(&operation)? {
            println!("{name}");
        }
        return Ok(());
    }
    follow(client, operation, &service_id, new_revision.as_deref()).await?;
    eprintln!("Done.");
    let value = client
        .get_service(&service_id)
        .await?
        .ok_or_else(|| anyhow!("service [{service_id}] was deleted meanwhile"))?;
    let service: Service = api::json::from_value(value.clone())
        .map_err(|e| anyhow!("the API answered with an unreadable service: {e}"))?;
    let revision =
        new_revision.unwrap_or_else(|| short_name(&service.latest_created_revision).into());
    let percent: i32 = serving_revisions(&service)
        .iter()
        .filter(|(r, _)| *r == revision)
        .map(|(_, p)| p)
        .sum();
    eprintln!(
        "Service [{service_id}] revision [{revision}] has been deployed and is serving {percent} percent of traffic."
    );
    if let Some(tag) = &args.tag {
        let uri = service
            .traffic_statuses
            .iter()
            .find(|t| t.tag == *tag && !t.uri.is_empty())
            .map(|t| t.uri.clone())
            .unwrap_or_else(|| service.uri.replacen("://", &format!("://{tag}---"), 1));
        eprintln!("The revision can be reached directly at {uri}");
    }
    if !args.output.print_structured(&value)? {
        println!("Service URL: {}", service.uri);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::{EnvVar, TrafficTarget};

    fn args(service: &str) -> DeployArgs {
        DeployArgs {
            service: service.into(),
            ..Default::default()
        }
    }

    #[test]
    fn tag_names_the_new_revision_and_keeps_the_split() {
        let mut s = Service {
            generation: 3,
            template: Some(RevisionTemplate {
                revision: "hello-old".into(),
                containers: vec![Container {
                    image: "old".into(),
                    env: vec![EnvVar::new("KEEP", "1")],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            traffic: vec![
                TrafficTarget::latest(100),
                TrafficTarget::revision("hello-00002-abc", 0).with_tag("next"),
            ],
            ..Default::default()
        };
        let mut a = args("hello");
        a.image = Some("new".into());
        a.tag = Some("next".into());
        let id = apply_deploy_flags(&mut s, &a, true).unwrap().unwrap();
        assert!(id.starts_with("hello-00004-"), "{id}");
        let t = s.template.as_ref().unwrap();
        assert_eq!(t.revision, id);
        assert_eq!(t.containers[0].image, "new");
        assert_eq!(t.containers[0].env, [EnvVar::new("KEEP", "1")]);
        assert_eq!(
            s.traffic,
            [
                TrafficTarget::latest(100),
                TrafficTarget::revision(id, 0).with_tag("next")
            ]
        );
    }

    #[test]
    fn no_traffic_pins_latest_and_is_refused_on_create() {
        let mut s = Service {
            latest_ready_revision: "projects/p/locations/l/services/hello/revisions/hello-1".into(),
            traffic: vec![TrafficTarget::latest(100)],
            ..Default::default()
        };
        let mut a = args("hello");
        a.no_traffic = true;
        a.revision_suffix = Some("v2".into());
        assert_eq!(
            apply_deploy_flags(&mut s, &a, true).unwrap().as_deref(),
            Some("hello-v2")
        );
        assert_eq!(s.traffic, [TrafficTarget::revision("hello-1", 100)]);
        let err = apply_deploy_flags(&mut Service::default(), &a, false).unwrap_err();
        assert!(err.to_string().contains("--no-traffic"), "{err}");
    }

    #[test]
    fn env_flags_in_gcloud_order() {
        let mut t = RevisionTemplate {
            containers: vec![Container {
                env: vec![EnvVar::new("A", "1"), EnvVar::new("B", "2")],
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut a = args("s");
        a.env.remove_env_vars = Some("A".into());
        a.env.update_env_vars = Some("B=3,C=4".into());
        apply_template_flags(&mut t, &a).unwrap();
        assert_eq!(
            t.containers[0].env,
            [EnvVar::new("B", "3"), EnvVar::new("C", "4")]
        );
    }

    #[test]
    fn service_flags_ingress_invoker_check_and_audiences() {
        let mut s = Service {
            custom_audiences: vec!["a".into(), "b".into()],
            ..Default::default()
        };
        let mut a = args("s");
        a.ingress = Some(IngressArg::Internal);
        a.no_invoker_iam_check = true;
        a.remove_custom_audiences = Some("a".into());
        a.add_custom_audiences = Some("c,b".into());
        a.secrets.set_secrets = Some("TOKEN=tok:1,/etc/app/key=key:latest".into());
        apply_deploy_flags(&mut s, &a, true).unwrap();
        assert_eq!(s.ingress, IngressTraffic::InternalOnly);
        assert!(s.invoker_iam_disabled);
        assert_eq!(s.custom_audiences, ["b", "c"]);
        let t = s.template.as_ref().unwrap();
        assert_eq!(t.containers[0].env[0].name, "TOKEN");
        assert_eq!(t.containers[0].volume_mounts[0].mount_path, "/etc/app");
        assert_eq!(t.volumes[0].secret.as_ref().unwrap().secret, "key");

        let mut b = args("s");
        b.invoker_iam_check = true;
        b.set_custom_audiences = Some("x".into());
        apply_deploy_flags(&mut s, &b, true).unwrap();
        assert!(!s.invoker_iam_disabled);
        assert_eq!(s.custom_audiences, ["x"]);
        assert_eq!(s.ingress, IngressTraffic::InternalOnly, "kept");
        let mut c = args("s");
        c.clear_custom_audiences = true;
        c.ingress = Some(IngressArg::None);
        apply_deploy_flags(&mut s, &c, true).unwrap();
        assert!(s.custom_audiences.is_empty());
        assert_eq!(s.ingress, IngressTraffic::None);
    }
}
