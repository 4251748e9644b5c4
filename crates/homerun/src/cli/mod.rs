//! The gcloud-like verbs (`deploy`, `services ...`, `revisions ...`, `jobs ...`,
//! `executions ...`, `tasks ...`): clients of the Admin API only, at `--api-addr`, in
//! `--project` and `--region`.

mod args;
mod client;
pub mod deploy;
pub mod executions;
pub mod jobs;
mod knative;
mod operation;
mod output;
pub mod revisions;
pub mod services;
pub mod tasks;
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
    /// Create, change, run, list, describe and delete jobs.
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
    /// List, describe, cancel and delete executions of jobs; their tasks' logs.
    #[command(subcommand)]
    Executions(executions::ExecutionsCommand),
    /// List and describe the tasks of an execution.
    #[command(subcommand)]
    Tasks(tasks::TasksCommand),
}

pub async fn run(cmd: AdminApiCommand, platform: &PlatformArgs) -> anyhow::Result<()> {
    let client = client::ApiClient::new(platform)?;
    match cmd {
        AdminApiCommand::Deploy(args) => deploy::run(&client, *args).await,
        AdminApiCommand::Services(cmd) => services::run(&client, cmd).await,
        AdminApiCommand::Revisions(cmd) => revisions::run(&client, cmd).await,
        AdminApiCommand::Jobs(cmd) => jobs::run(&client, cmd).await,
        AdminApiCommand::Executions(cmd) => executions::run(&client, cmd).await,
        AdminApiCommand::Tasks(cmd) => tasks::run(&client, cmd).await,
    }
}
