//! `homerun images ...`: the image store from the command line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use image::pull::record_reference;
use image::{ImageSource, RegistryOptions, Store};

#[derive(Subcommand, Debug)]
pub enum ImagesCommand {
    /// Pull an image: REF is a registry reference, oci:DIR[:TAG], oci-archive:FILE or
    /// docker-archive:FILE.
    Pull {
        reference: String,
        /// A registry host[:port] spoken to over plain HTTP (loopback ones always are).
        #[arg(
            long = "insecure-registry",
            env = "HOMERUN_INSECURE_REGISTRIES",
            value_delimiter = ','
        )]
        insecure: Vec<String>,
        /// A Docker config.json with registry credentials (default: $DOCKER_CONFIG, then
        /// ~/.docker/config.json).
        #[arg(long)]
        registry_config: Option<PathBuf>,
        /// Seconds to wait for a registry to connect or answer.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// List the images in the store.
    List {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Forget an image; its layers go at the next prune.
    Rm { reference: String },
    /// Remove layers no image uses and no instance holds.
    Prune,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

fn record_key(reference: &str) -> anyhow::Result<String> {
    Ok(record_reference(&ImageSource::parse(reference)?)?)
}

fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

pub async fn run(cmd: ImagesCommand, data_dir: &Path) -> anyhow::Result<()> {
    let store = Store::open(data_dir)
        .with_context(|| format!("opening the image store in {}", data_dir.display()))?;
    match cmd {
        ImagesCommand::Pull {
            reference,
            insecure,
            registry_config,
            timeout,
        } => {
            let source = ImageSource::parse(&reference)?;
            let options = RegistryOptions {
                insecure_hosts: insecure,
                docker_config: registry_config,
                timeout: Duration::from_secs(timeout),
            };
            let progress = crate::progress::Bars::new();
            let outcome = store.pull(&source, &options, &progress).await;
            progress.finish();
            let outcome = outcome.with_context(|| format!("pulling {reference}"))?;
            let r = &outcome.record;
            println!(
                "{}: {} ({} layers, {} fetched, {})",
                r.reference,
                r.manifest_digest,
                r.layers.len(),
                outcome.layers_fetched,
                human_bytes(r.size())
            );
        }
        ImagesCommand::List { format } => {
            let records = store.list()?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&records)?),
                Format::Table => {
                    println!("{:<60} {:<72} {:>10}", "REFERENCE", "DIGEST", "SIZE");
                    for r in records {
                        println!(
                            "{:<60} {:<72} {:>10}",
                            r.reference,
                            r.manifest_digest,
                            human_bytes(r.size())
                        );
                    }
                }
            }
        }
        ImagesCommand::Rm { reference } => {
            let removed = store.remove(&record_key(&reference)?)?;
            println!(
                "removed {} ({})",
                removed.reference, removed.manifest_digest
            );
        }
        ImagesCommand::Prune => {
            let report = store.prune()?;
            println!(
                "removed {} layers ({}) and {} configs; kept {} unused layers held by running instances",
                report.layers,
                human_bytes(report.bytes),
                report.configs,
                report.kept_in_use
            );
        }
    }
    Ok(())
}
