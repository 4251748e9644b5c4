//! `homerun revisions list [--service S] | describe REVISION`.

use anyhow::anyhow;
use clap::Subcommand;
use serde_json::Value;

use api::{Revision, Service};

use super::client::ApiClient;
use super::output::{ready_mark, OutputArgs, Table};
use super::view::{revision_ready, serving_revisions, short_name, SpecView};

#[derive(Subcommand, Debug)]
pub enum RevisionsCommand {
    /// List revisions, of one service or of all.
    List {
        /// Only this service's revisions.
        #[arg(long)]
        service: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Show a revision.
    Describe {
        /// The revision's id.
        revision: String,
        /// The revision's service (found from the revision's name when not given).
        #[arg(long)]
        service: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
}

fn parse_revision(value: Value) -> anyhow::Result<Revision> {
    api::json::from_value(value)
        .map_err(|e| anyhow!("the API answered with an unreadable revision: {e}"))
}

pub async fn run(client: &ApiClient, cmd: RevisionsCommand) -> anyhow::Result<()> {
    match cmd {
        RevisionsCommand::List { service, output } => {
            list(client, service.as_deref(), output).await
        }
        RevisionsCommand::Describe {
            revision,
            service,
            output,
        } => describe(client, &revision, service.as_deref(), output).await,
    }
}

async fn list(client: &ApiClient, service: Option<&str>, output: OutputArgs) -> anyhow::Result<()> {
    let Some(values) = output.items_for_table(client.list_revisions(service).await?)? else {
        return Ok(());
    };
    // Which revisions serve traffic is the services' to say.
    let services: Vec<Service> = match service {
        Some(s) => client.get_service(s).await?.into_iter().collect(),
        None => client.list_services().await?,
    }
    .into_iter()
    .filter_map(|v| api::json::from_value(v).ok())
    .collect();
    let serving: Vec<(String, i32)> = services.iter().flat_map(serving_revisions).collect();
    let mut table = Table::new(["", "REVISION", "ACTIVE", "SERVICE", "DEPLOYED"]);
    for value in values {
        let r = parse_revision(value)?;
        let id = r.id().to_string();
        let active = serving
            .iter()
            .find(|(s, _)| *s == id)
            .map(|(_, p)| format!("yes ({p}%)"))
            .unwrap_or_default();
        table.row(vec![
            ready_mark(revision_ready(&r)).to_string(),
            id,
            active,
            short_name(&r.service).to_string(),
            r.create_time.map(|t| t.to_string()).unwrap_or_default(),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

/// The services a revision id may belong to, longest first: a revision is named
/// `{service}-{suffix}`, and service ids may hold hyphens too.
fn candidate_services(revision: &str) -> Vec<&str> {
    revision
        .char_indices()
        .filter(|(_, c)| *c == '-')
        .map(|(i, _)| &revision[..i])
        .rev()
        .collect()
}

async fn describe(
    client: &ApiClient,
    revision: &str,
    service: Option<&str>,
    output: OutputArgs,
) -> anyhow::Result<()> {
    let candidates = match service {
        Some(s) => vec![s],
        None => candidate_services(revision),
    };
    let mut found = None;
    for service in candidates {
        if let Some(v) = client.get_revision(service, revision).await? {
            found = Some(v);
            break;
        }
    }
    let value = found.ok_or_else(|| {
        anyhow!(
            "revision [{revision}] does not exist in project [{}] region [{}]",
            client.project,
            client.region
        )
    })?;
    if output.print_structured(&value)? {
        return Ok(());
    }
    let r = parse_revision(value)?;
    let ready = revision_ready(&r);
    print!(
        "{} Revision {} in region {}\n\n",
        ready_mark(ready),
        r.id(),
        client.region
    );
    println!("Service:  {}", short_name(&r.service));
    if let Some(t) = r.create_time {
        println!("Deployed: {t}");
    }
    if let Some(c) = ready.filter(|c| !c.message.is_empty()) {
        println!("Status:   {}", c.message);
    }
    println!();
    print!("{}", SpecView::of_revision(&r).render(""));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_longest_first() {
        assert_eq!(
            candidate_services("my-app-00001-abc"),
            ["my-app-00001", "my-app", "my"]
        );
        assert!(candidate_services("plain").is_empty());
    }
}
