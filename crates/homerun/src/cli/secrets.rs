//! `homerun secrets create|list|describe|delete`, `secrets versions add|list` and the IAM
//! verbs (who may read a secret: `roles/secretmanager.secretAccessor`): gcloud's
//! `secrets` over homerun's Secret Manager (v1 REST). A value goes in from a
//! file or stdin and never comes back: the API has no access method, and nothing here
//! prints what it read.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{anyhow, Context};
use clap::Subcommand;
use serde_json::Value;

use super::client::{ApiClient, IamResource};
use super::iam::{self, IamCommand};
use super::output::{OutputArgs, Table};
use super::view::short_name;

#[derive(Subcommand, Debug)]
pub enum SecretsCommand {
    /// Create a secret, with a first version from --data-file.
    Create {
        /// The secret's id.
        secret: String,
        /// The first version's value: a file, or `-` for stdin.
        #[arg(long)]
        data_file: Option<PathBuf>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// List the project's secrets.
    List {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Show a secret (never its value).
    Describe {
        /// The secret's id.
        secret: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Delete a secret and its versions.
    Delete {
        /// The secret's id.
        secret: String,
        /// Accepted for gcloud's sake: homerun never prompts.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Add and list the versions of a secret.
    #[command(subcommand)]
    Versions(VersionsCommand),
    #[command(flatten)]
    Iam(IamCommand),
}

#[derive(Subcommand, Debug)]
pub enum VersionsCommand {
    /// Add a version: the secret's new value, from a file or stdin.
    Add {
        /// The secret's id.
        secret: String,
        /// The value: a file, or `-` for stdin.
        #[arg(long)]
        data_file: PathBuf,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// List the versions of a secret (never their values).
    List {
        /// The secret's id.
        secret: String,
        #[command(flatten)]
        output: OutputArgs,
    },
}

fn not_found(client: &ApiClient, secret: &str) -> anyhow::Error {
    anyhow!(
        "secret [{secret}] does not exist in project [{}]",
        client.project
    )
}

/// The bytes of `--data-file` (`-`: stdin), as they are.
fn read_data(file: &PathBuf) -> anyhow::Result<Vec<u8>> {
    let mut data = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin()
            .read_to_end(&mut data)
            .context("reading the secret's value from stdin")?;
    } else {
        data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    }
    Ok(data)
}

fn text(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Adds a version, says so, and returns it.
async fn add_version(client: &ApiClient, secret: &str, data: &[u8]) -> anyhow::Result<Value> {
    let version = client.add_secret_version(secret, data).await?;
    eprintln!(
        "Created version [{}] of the secret [{secret}].",
        short_name(&text(&version, "name"))
    );
    Ok(version)
}

pub async fn run(client: &ApiClient, cmd: SecretsCommand) -> anyhow::Result<()> {
    match cmd {
        SecretsCommand::Create {
            secret,
            data_file,
            output,
        } => {
            // Read first: a file that cannot be read makes no empty secret.
            let data = data_file.as_ref().map(read_data).transpose()?;
            let created = client.create_secret(&secret).await?;
            eprintln!("Created secret [{secret}].");
            if let Some(data) = data {
                add_version(client, &secret, &data).await?;
            }
            output.print_structured(&created)?;
            Ok(())
        }
        SecretsCommand::List { output } => {
            let Some(secrets) = output.items_for_table(client.list_secrets().await?)? else {
                return Ok(());
            };
            let mut table = Table::new(["NAME", "CREATED", "REPLICATION_POLICY", "LOCATIONS"]);
            for s in &secrets {
                let automatic = s.pointer("/replication/automatic").is_some();
                table.row(vec![
                    short_name(&text(s, "name")).to_string(),
                    text(s, "createTime"),
                    if automatic {
                        "automatic"
                    } else {
                        "user_managed"
                    }
                    .into(),
                    "-".into(),
                ]);
            }
            print!("{}", table.render());
            Ok(())
        }
        SecretsCommand::Describe { secret, output } => {
            let value = client
                .get_secret(&secret)
                .await?
                .ok_or_else(|| not_found(client, &secret))?;
            output.print_or_yaml(&value)
        }
        SecretsCommand::Delete { secret, quiet: _ } => {
            client.delete_secret(&secret).await?;
            eprintln!("Deleted secret [{secret}].");
            Ok(())
        }
        SecretsCommand::Versions(VersionsCommand::Add {
            secret,
            data_file,
            output,
        }) => {
            let data = read_data(&data_file)?;
            let version = add_version(client, &secret, &data).await?;
            output.print_structured(&version)?;
            Ok(())
        }
        SecretsCommand::Versions(VersionsCommand::List { secret, output }) => {
            let Some(versions) =
                output.items_for_table(client.list_secret_versions(&secret).await?)?
            else {
                return Ok(());
            };
            let mut table = Table::new(["NAME", "STATE", "CREATED", "DESTROYED"]);
            for v in &versions {
                let destroyed = text(v, "destroyTime");
                table.row(vec![
                    short_name(&text(v, "name")).to_string(),
                    text(v, "state").to_lowercase(),
                    text(v, "createTime"),
                    if destroyed.is_empty() {
                        "-".into()
                    } else {
                        destroyed
                    },
                ]);
            }
            print!("{}", table.render());
            Ok(())
        }
        SecretsCommand::Iam(cmd) => iam::run(client, cmd, IamResource::Secret).await,
    }
}
