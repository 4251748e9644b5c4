//! The gcloud-like verbs (`deploy`, `services ...`, `revisions ...`): clients of the Admin
//! API only, at `--api-addr`, in `--project` and `--region`.

mod args;
mod client;
pub mod deploy;
mod knative;
mod operation;
mod output;
pub mod revisions;
pub mod services;
mod traffic;
mod view;

use clap::Subcommand;

use crate::PlatformArgs;

/// The verbs that talk to the Admin API.
#[derive(Subcommand, Debug)]
pub enum AdminApiCommand {
    /// Deploy a container image to a service, creating it if need be.
    Deploy(Box<deploy::DeployArgs>),
    /// List, describe and delete services; route their traffic; replace them from YAML.
    #[command(subcommand)]
    Services(services::ServicesCommand),
    /// List and describe revisions.
    #[command(subcommand)]
    Revisions(revisions::RevisionsCommand),
}

pub async fn run(cmd: AdminApiCommand, platform: &PlatformArgs) -> anyhow::Result<()> {
    let client = client::ApiClient::new(platform)?;
    match cmd {
        AdminApiCommand::Deploy(args) => deploy::run(&client, *args).await,
        AdminApiCommand::Services(cmd) => services::run(&client, cmd).await,
        AdminApiCommand::Revisions(cmd) => revisions::run(&client, cmd).await,
    }
}
