//! The `homerun` binary: CLI verbs and platform wiring. Verbs appear here only once they work.

mod auth;
mod cli;
mod images;
mod logs_api;
mod progress;
mod up;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A self-hosted Cloud Run: deploy an OCI image, get a URL.
#[derive(Parser, Debug)]
#[command(name = "homerun", version, about)]
struct Cli {
    /// Where homerun keeps its state (images, records).
    #[arg(
        long,
        global = true,
        env = "HOMERUN_DATA_DIR",
        default_value = "/var/lib/homerun"
    )]
    data_dir: PathBuf,
    #[command(flatten)]
    platform: PlatformArgs,
    /// The bearer token the CLI sends to the Admin API (by default, the admin token `up`
    /// wrote to {data-dir}/admin-token).
    #[arg(long, global = true, env = "HOMERUN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// Where the platform's Admin API is and which namespace it serves: `up` serves there, every
/// other verb talks to it.
#[derive(Args, Debug, Clone)]
pub struct PlatformArgs {
    /// The Admin API's address (`up` listens there; the CLI talks to it).
    #[arg(
        long,
        global = true,
        env = "HOMERUN_API_ADDR",
        default_value = "127.0.0.1:8090"
    )]
    pub api_addr: std::net::SocketAddr,
    /// The project: the default project for `up`, the one the CLI works in.
    #[arg(long, global = true, env = "HOMERUN_PROJECT", default_value = "local")]
    pub project: String,
    /// The region (Cloud Run's location): the only one `up` serves.
    #[arg(long, global = true, env = "HOMERUN_REGION", default_value = "local")]
    pub region: String,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the platform in the foreground: Admin API, router, controller.
    Up(Box<up::UpArgs>),
    /// Pull, list and remove images.
    #[command(subcommand)]
    Images(images::ImagesCommand),
    #[command(flatten)]
    AdminApi(cli::AdminApiCommand),
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("homerun: {}", error_chain(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The whole chain on one line, what was being done then why, skipping a cause whose text
/// its parent already shows (library errors often carry their cause in their message).
fn error_chain(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if matches!(cli.command, Command::Up(_)) {
        // Instances' inits are reparented to this process, which reads their exits.
        runtime::container::become_subreaper()?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Up(args) => runtime.block_on(up::run(*args, &cli.platform, &cli.data_dir)),
        Command::Images(cmd) => runtime.block_on(images::run(cmd, &cli.data_dir)),
        Command::AdminApi(cmd) => {
            let credentials =
                cli::Credentials::new(cli.token, &cli.data_dir).for_api(cli.platform.api_addr);
            runtime.block_on(cli::run(cmd, &cli.platform, credentials))
        }
    }
}
