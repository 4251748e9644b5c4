//! The `homerun` binary: CLI verbs and platform wiring. Verbs appear here only once they work.

mod images;
mod progress;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Pull, list and remove images.
    #[command(subcommand)]
    Images(images::ImagesCommand),
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Images(cmd) => runtime.block_on(images::run(cmd, &cli.data_dir)),
    }
}
