//! The gcloud-like verbs (`deploy`, `services ...`, `revisions ...`, `jobs ...`,
//! `executions ...`, `tasks ...`, `projects ...`, `secrets ...`, `auth ...`): clients of
//! the Admin API only, at `--api-addr`, in `--project` and `--region`, with the bearer
//! token of `--token` or the admin token in `--data-dir`.

mod args;
mod auth;
mod client;
mod credentials;
pub mod deploy;
pub mod executions;
mod iam;
pub mod jobs;
mod knative;
mod operation;
mod output;
pub mod revisions;
mod secret_flags;
mod secrets;
pub mod services;
pub mod tasks;
mod traffic;
mod view;

use clap::Subcommand;

pub use credentials::Credentials;

use crate::PlatformArgs;

/// The verbs that talk to the Admin API.
#[derive(Subcommand, Debug)]
pub enum AdminApiCommand {
    /// Deploy a container image to a service, creating it if need be.
    Deploy(Box<deploy::DeployArgs>),
    /// List, describe and delete services; route their traffic; replace them from YAML;
    /// their IAM policies.
    #[command(subcommand)]
    Services(services::ServicesCommand),
    /// List and describe revisions.
    #[command(subcommand)]
    Revisions(revisions::RevisionsCommand),
    /// Create, change, run, list, describe and delete jobs; their IAM policies.
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
    /// List, describe, cancel and delete executions of jobs; their tasks' logs.
    #[command(subcommand)]
    Executions(executions::ExecutionsCommand),
    /// List and describe the tasks of an execution.
    #[command(subcommand)]
    Tasks(tasks::TasksCommand),
    /// The IAM policies of projects: who may use the Admin API.
    #[command(subcommand)]
    Projects(iam::IamCommand),
    /// Create, list, describe and delete secrets; add and list their versions; their IAM
    /// policies.
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
    /// Print tokens: a service account's identity or access token, or the CLI's own.
    #[command(subcommand)]
    Auth(auth::AuthCommand),
}

pub async fn run(
    cmd: AdminApiCommand,
    platform: &PlatformArgs,
    credentials: Credentials,
) -> anyhow::Result<()> {
    let client = client::ApiClient::new(platform, credentials)?;
    match cmd {
        AdminApiCommand::Deploy(args) => deploy::run(&client, *args).await,
        AdminApiCommand::Services(cmd) => services::run(&client, cmd).await,
        AdminApiCommand::Revisions(cmd) => revisions::run(&client, cmd).await,
        AdminApiCommand::Jobs(cmd) => jobs::run(&client, cmd).await,
        AdminApiCommand::Executions(cmd) => executions::run(&client, cmd).await,
        AdminApiCommand::Tasks(cmd) => tasks::run(&client, cmd).await,
        AdminApiCommand::Projects(cmd) => {
            iam::run(&client, cmd, client::IamResource::Project).await
        }
        AdminApiCommand::Secrets(cmd) => secrets::run(&client, cmd).await,
        AdminApiCommand::Auth(cmd) => auth::run(&client, cmd).await,
    }
}
