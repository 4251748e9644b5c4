//! `homerun services list|describe|delete|update-traffic|replace`, and the IAM verbs
//! (`add-iam-policy-binding`, `remove-iam-policy-binding`, `get-iam-policy`).

use std::io::Read;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use api::{EnumEncoding, Service};

use super::args::{parse_dict, split_list};
use super::client::{ApiClient, IamResource};
use super::iam::{self, IamCommand};
use super::operation::{follow, step};
use super::output::{ready_mark, OutputArgs, Table};
use super::traffic::{updated_traffic, TrafficChange};
use super::view::{ingress_text, service_ready, short_name, traffic_text, SpecView};

#[derive(Subcommand, Debug)]
pub enum ServicesCommand {
    /// List the services.
    List {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Show a service.
    Describe {
        /// The service's id.
        service: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Delete a service and its revisions.
    Delete {
        /// The service's id.
        service: String,
        /// Accepted for gcloud's sake: homerun never prompts.
        #[arg(short, long)]
        quiet: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Change where a service's traffic goes, and its tags.
    UpdateTraffic(UpdateTrafficArgs),
    /// Create or replace a service from a Knative `serving.knative.dev/v1` Service YAML
    /// (as Cloud Run accepts), or a v2 Service in YAML or JSON. FILE `-` is stdin.
    Replace {
        /// The YAML or JSON file, or `-` for stdin.
        file: PathBuf,
        /// Return once the change is accepted, without waiting for it.
        #[arg(long = "async")]
        run_async: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    #[command(flatten)]
    Iam(IamCommand),
}

#[derive(Args, Debug)]
pub struct UpdateTrafficArgs {
    /// The service's id.
    pub service: String,
    /// REVISION=PERCENT,...: these revisions get these percents (LATEST: the latest
    /// ready one); the rest stays on the others in proportion.
    #[arg(long, conflicts_with = "to_latest")]
    pub to_revisions: Option<String>,
    /// All traffic to the latest ready revision.
    #[arg(long)]
    pub to_latest: bool,
    /// TAG=PERCENT,...: to the revisions these tags name; TAG=REVISION,... sets tags
    /// like --update-tags.
    #[arg(long, conflicts_with = "to_latest")]
    pub to_tags: Option<String>,
    /// TAG=REVISION,...: tags set or moved (traffic unchanged).
    #[arg(long)]
    pub update_tags: Option<String>,
    /// TAG,...: tags removed.
    #[arg(long)]
    pub remove_tags: Option<String>,
    /// Remove every tag.
    #[arg(long)]
    pub clear_tags: bool,
    /// Return once the change is accepted, without waiting for it.
    #[arg(long = "async")]
    pub run_async: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

fn parse_service(value: Value) -> anyhow::Result<Service> {
    api::json::from_value(value)
        .map_err(|e| anyhow!("the API answered with an unreadable service: {e}"))
}

fn not_found(client: &ApiClient, service: &str) -> anyhow::Error {
    anyhow!(
        "service [{service}] does not exist in project [{}] region [{}]",
        client.project,
        client.region
    )
}

pub async fn run(client: &ApiClient, cmd: ServicesCommand) -> anyhow::Result<()> {
    match cmd {
        ServicesCommand::List { output } => list(client, output).await,
        ServicesCommand::Describe { service, output } => describe(client, &service, output).await,
        ServicesCommand::Delete {
            service,
            quiet: _,
            output,
        } => {
            let operation = client.delete_service(&service).await?;
            follow(client, operation.clone(), &service, None).await?;
            if !output.print_structured(&operation)? {
                eprintln!("Deleted service [{service}].");
            }
            Ok(())
        }
        ServicesCommand::UpdateTraffic(args) => update_traffic(client, args).await,
        ServicesCommand::Replace {
            file,
            run_async,
            output,
        } => replace(client, &file, run_async, output).await,
        ServicesCommand::Iam(cmd) => iam::run(client, cmd, IamResource::Service).await,
    }
}

async fn list(client: &ApiClient, output: OutputArgs) -> anyhow::Result<()> {
    let Some(values) = output.items_for_table(client.list_services().await?)? else {
        return Ok(());
    };
    let mut table = Table::new([
        "",
        "SERVICE",
        "REGION",
        "URL",
        "LATEST REVISION",
        "LAST DEPLOYED AT",
    ]);
    for value in values {
        let s = parse_service(value)?;
        table.row(vec![
            ready_mark(service_ready(&s)).to_string(),
            short_name(&s.name).to_string(),
            client.region.clone(),
            s.uri.clone(),
            short_name(&s.latest_created_revision).to_string(),
            s.update_time.map(|t| t.to_string()).unwrap_or_default(),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

/// The text view of a service.
pub fn describe_text(s: &Service, region: &str) -> String {
    let mut out = format!(
        "{} Service {} in region {region}\n\n",
        ready_mark(service_ready(s)),
        short_name(&s.name)
    );
    out.push_str(&format!("URL:     {}\n", s.uri));
    out.push_str(&format!("Ingress: {}\n", ingress_text(s.ingress)));
    out.push_str(&traffic_text(s));
    if let Some(ready) = service_ready(s) {
        if !ready.message.is_empty() {
            out.push_str(&format!("Status:  {}\n", ready.message));
        }
    }
    out.push('\n');
    let updated = s.update_time.map(|t| t.to_string()).unwrap_or_default();
    out.push_str(&format!("Last updated on {updated}:\n"));
    out.push_str(&format!(
        "  Revision {}\n",
        short_name(&s.latest_created_revision)
    ));
    if let Some(t) = &s.template {
        out.push_str(&SpecView::of_template(t).render("  "));
    }
    out
}

async fn describe(client: &ApiClient, service: &str, output: OutputArgs) -> anyhow::Result<()> {
    let value = client
        .get_service(service)
        .await?
        .ok_or_else(|| not_found(client, service))?;
    if !output.print_structured(&value)? {
        print!("{}", describe_text(&parse_service(value)?, &client.region));
    }
    Ok(())
}

/// `--to-tags`: `TAG=PERCENT` routes traffic to the tag's revision (gcloud's meaning),
/// `TAG=REVISION` sets the tag (a revision id starts with a letter, so never parses as a
/// number).
fn add_to_tags(value: &str, change: &mut TrafficChange) -> anyhow::Result<()> {
    for (tag, target) in parse_dict(value, "--to-tags")? {
        match target.trim().parse::<i32>() {
            Ok(p) => change.to_tags.push((tag, p)),
            Err(_) => change.update_tags.push((tag, target)),
        }
    }
    Ok(())
}

fn percents(value: &str, flag: &str) -> anyhow::Result<Vec<(String, i32)>> {
    parse_dict(value, flag)?
        .into_iter()
        .map(|(k, v)| match v.trim().parse::<i32>() {
            Ok(p) => Ok((k, p)),
            Err(_) => bail!("{flag}: \"{v}\" is not a percent"),
        })
        .collect()
}

fn traffic_change(args: &UpdateTrafficArgs) -> anyhow::Result<TrafficChange> {
    let mut change = TrafficChange {
        to_latest: args.to_latest,
        clear_tags: args.clear_tags,
        ..Default::default()
    };
    if let Some(v) = &args.to_revisions {
        change.to_revisions = percents(v, "--to-revisions")?;
    }
    if let Some(v) = &args.to_tags {
        add_to_tags(v, &mut change)?;
    }
    if let Some(v) = &args.update_tags {
        change.update_tags.extend(parse_dict(v, "--update-tags")?);
    }
    if let Some(v) = &args.remove_tags {
        change.remove_tags = split_list(v);
    }
    let asks_nothing = !change.to_latest
        && change.to_revisions.is_empty()
        && change.to_tags.is_empty()
        && change.update_tags.is_empty()
        && change.remove_tags.is_empty()
        && !change.clear_tags;
    if asks_nothing {
        bail!("say where traffic goes: --to-revisions, --to-latest, --to-tags, --update-tags, --remove-tags or --clear-tags");
    }
    Ok(change)
}

async fn update_traffic(client: &ApiClient, args: UpdateTrafficArgs) -> anyhow::Result<()> {
    let change = traffic_change(&args)?;
    let service = parse_service(
        client
            .get_service(&args.service)
            .await?
            .ok_or_else(|| not_found(client, &args.service))?,
    )?;
    let traffic = updated_traffic(&service.traffic, &change)?;
    let body = json!({
        "traffic": api::json::to_value(&traffic, EnumEncoding::Name),
    });
    eprintln!("Updating traffic of homerun service [{}]...", args.service);
    let operation = client
        .update_service(&args.service, &body, "traffic")
        .await?;
    if args.run_async {
        return finish_async(&operation, &args.output);
    }
    step("Routing traffic...");
    follow(client, operation, &args.service, None).await?;
    eprintln!("Done.");
    let value = client
        .get_service(&args.service)
        .await?
        .ok_or_else(|| not_found(client, &args.service))?;
    if !args.output.print_structured(&value)? {
        let s = parse_service(value)?;
        println!("URL: {}", s.uri);
        print!("{}", traffic_text(&s));
    }
    Ok(())
}

/// A mutation accepted and not waited for (`--async`): its operation's name.
pub fn finish_async(operation: &Value, output: &OutputArgs) -> anyhow::Result<()> {
    let name = operation.get("name").and_then(Value::as_str).unwrap_or("");
    eprintln!("Accepted: operation [{name}].");
    if !output.print_structured(operation)? {
        println!("{name}");
    }
    Ok(())
}

fn read_file(file: &PathBuf) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the service from stdin")?;
        return Ok(text);
    }
    std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
}

async fn replace(
    client: &ApiClient,
    file: &PathBuf,
    run_async: bool,
    output: OutputArgs,
) -> anyhow::Result<()> {
    let text = read_file(file)?;
    let converted = super::knative::service_from_text(&text)
        .with_context(|| format!("reading the service in {}", file.display()))?;
    for warning in &converted.warnings {
        eprintln!("homerun: warning: {warning}");
    }
    let service_id = converted.service_id;
    let body = api::json::to_value(&converted.service, EnumEncoding::Name);
    eprintln!(
        "Applying new configuration to homerun service [{service_id}] in project [{}] region [{}]",
        client.project, client.region
    );
    let stored = client.get_service(&service_id).await?;
    let previous_revision = match &stored {
        Some(v) => short_name(&parse_service(v.clone())?.latest_created_revision).to_string(),
        None => String::new(),
    };
    let operation = match stored {
        None => client.create_service(&service_id, &body).await?,
        Some(_) => client.update_service(&service_id, &body, "").await?,
    };
    if run_async {
        return finish_async(&operation, &output);
    }
    let op: api::Operation = api::json::from_value(operation.clone())
        .map_err(|e| anyhow!("the API answered with an unreadable operation: {e}"))?;
    let new_revision = op
        .metadata
        .as_ref()
        .and_then(|m| m.as_service())
        .map(|s| short_name(&s.latest_created_revision).to_string())
        .filter(|r| !r.is_empty() && *r != previous_revision);
    match &new_revision {
        Some(r) => step(&format!("Created revision [{r}].")),
        None => step("No new revision: the template is unchanged."),
    }
    follow(client, operation, &service_id, new_revision.as_deref()).await?;
    eprintln!("Done.");
    let value = client
        .get_service(&service_id)
        .await?
        .ok_or_else(|| not_found(client, &service_id))?;
    if !output.print_structured(&value)? {
        let s = parse_service(value)?;
        eprintln!("New configuration has been applied to service [{service_id}].");
        println!("Service URL: {}", s.uri);
    }
    Ok(())
}
