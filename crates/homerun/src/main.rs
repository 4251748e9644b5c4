//! The `homerun` binary: CLI verbs and platform wiring. Verbs appear here only once they work.

use clap::Parser;

/// A self-hosted Cloud Run: deploy an OCI image, get a URL.
#[derive(Parser, Debug)]
#[command(name = "homerun", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let _cli = Cli::parse();
    Ok(())
}
