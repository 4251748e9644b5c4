//! `homerun up`: the platform in the foreground. State under the data directory (SQLite
//! records, images, leases, instance state), runc (and runsc when installed), homerun's
//! own bridge; the Admin API, the ingress router and the controller in one process.
//! SIGTERM or Ctrl-C drains: the ingress stops taking connections and finishes its
//! requests, every instance gets SIGTERM and the grace period, the bridge goes, and the
//! process exits 0. After a kill -9 the next start removes what the old process left
//! (containers, mounts, namespaces, cgroups) and the controller brings every service
//! back.
//!
//! Identity and access (issue 7): the Admin API takes bearer tokens (the admin token
//! written to `DATA_DIR/admin-token` at the first start, or a service account's access
//! token); the router admits callers of private services by their ID tokens; the metadata
//! server answers instances on the bridge gateway, port 80; the OpenID discovery document
//! and JWKS are on the API's address. See the `identity` crate and `auth`.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use runtime::cgroup::Layout;
use runtime::instance::Node;
use runtime::net::{NetPool, Network, NetworkConfig};
use runtime::runc::{OciRuntime, Runtime};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use crate::PlatformArgs;

/// Network namespaces kept attached ahead of time (a quarter of a cold start).
const NETPOOL_SIZE: usize = 4;

#[derive(Args, Debug, Clone)]
pub struct UpArgs {
    /// Where services are served (HTTP/1.1 and h2c).
    #[arg(long, env = "HOMERUN_INGRESS_ADDR", default_value = "0.0.0.0:8080")]
    pub ingress_addr: SocketAddr,
    /// Also serve HTTPS here (HTTP/1.1 and HTTP/2 by ALPN).
    #[arg(long, env = "HOMERUN_HTTPS_ADDR")]
    pub https_addr: Option<SocketAddr>,
    /// The HTTPS certificate chain (PEM); without it homerun makes a self-signed one for
    /// `{domain}` and `*.{domain}`, kept in the data directory.
    #[arg(long, env = "HOMERUN_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The HTTPS private key (PEM).
    #[arg(long, env = "HOMERUN_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Service URLs are `http://{service}.{domain}:{port}`.
    #[arg(long, env = "HOMERUN_DOMAIN", default_value = "localhost")]
    pub domain: String,
    /// The Linux bridge instances attach to (at most 15 characters).
    #[arg(long, env = "HOMERUN_BRIDGE", default_value = "homerun0")]
    pub bridge: String,
    /// The instances' subnet; the bridge takes its first address.
    #[arg(long, env = "HOMERUN_SUBNET", default_value = "10.88.0.0/16")]
    pub subnet: String,
    /// Registry hosts (`host[:port]`) spoken to over plain HTTP besides loopback ones.
    #[arg(
        long = "insecure-registry",
        env = "HOMERUN_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    pub insecure_registries: Vec<String>,
    /// Between SIGTERM and SIGKILL when an instance stops (the contract: 10s).
    #[arg(long, env = "HOMERUN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub grace: Duration,
    /// Task attempts at once for an execution whose parallelism is 0 (and the most for
    /// any execution).
    #[arg(long, env = "HOMERUN_MAX_TASK_PARALLELISM", default_value_t = 100)]
    pub max_task_parallelism: u32,
    /// The `iss` of the ID tokens homerun signs, where its discovery document is served
    /// (`{issuer}/.well-known/openid-configuration`); by default `http://{api-addr}`.
    #[arg(long, env = "HOMERUN_ISSUER")]
    pub issuer: Option<String>,
    /// Make a new ID-token signing key at this start (the previous one stays published
    /// until tokens it signed have expired). Keys also rotate by themselves weekly.
    #[arg(long)]
    pub rotate_signing_key: bool,
    #[command(flatten)]
    pub scaling: ScalingArgs,
}

/// The autoscaler's windows and periods (Cloud Run's by default; tests shrink them).
#[derive(Args, Debug, Clone)]
pub struct ScalingArgs {
    /// Window of the stable concurrency average (Knative's stable window).
    #[arg(long, env = "HOMERUN_STABLE_WINDOW", default_value = "60s", value_parser = parse_duration)]
    pub stable_window: Duration,
    /// Window that detects bursts.
    #[arg(long, env = "HOMERUN_PANIC_WINDOW", default_value = "6s", value_parser = parse_duration)]
    pub panic_window: Duration,
    /// After the stable window saw no request, the last instance stays this long.
    #[arg(long, env = "HOMERUN_SCALE_TO_ZERO_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub scale_to_zero_grace: Duration,
    /// An instance the load no longer needs stays idle this long before it stops.
    #[arg(long, env = "HOMERUN_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// No instance above min instances stays idle longer (the contract: 15 minutes).
    #[arg(long, env = "HOMERUN_MAX_IDLE", default_value = "15m", value_parser = parse_duration)]
    pub max_idle: Duration,
    /// How often the autoscaler decides.
    #[arg(long, env = "HOMERUN_AUTOSCALE_TICK", default_value = "2s", value_parser = parse_duration)]
    pub autoscale_tick: Duration,
    /// The shortest time a request waits for an instance before its 429 (Cloud Run: 10s;
    /// longer when instances start slowly: 3.5 times their mean startup).
    #[arg(long, env = "HOMERUN_QUEUE_WAIT", default_value = "10s", value_parser = parse_duration)]
    pub queue_wait: Duration,
}

impl ScalingArgs {
    fn config(&self) -> anyhow::Result<autoscaler::Config> {
        let granularity =
            (self.panic_window / 6).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let config = autoscaler::Config {
            stable_window: self.stable_window,
            panic_window: self.panic_window,
            scale_to_zero_grace: self.scale_to_zero_grace,
            idle_timeout: self.idle_timeout,
            max_idle: self.max_idle,
            tick: self.autoscale_tick,
            granularity,
            ..autoscaler::Config::default()
        };
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("autoscaler settings: {}", e.0))?;
        Ok(config)
    }
}

/// `90s`, `500ms`, `2m`, `1h`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (like 10s, 500ms, 2m)"))?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: the unit must be ms, s, m or h")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{s:?}: {e}"))
}

pub async fn run(args: UpArgs, platform: &PlatformArgs, data_dir: &Path) -> anyhow::Result<()> {
    let autoscaler = args.scaling.config()?;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let records: Arc<dyn store::Store> = Arc::new(
        store::SqliteStore::open(data_dir.join("homerun.db"))
            .context("opening the platform's records")?,
    );
    let images = image::Store::open(data_dir).context("opening the image store")?;
    let issuer = args
        .issuer
        .clone()
        .unwrap_or_else(|| format!("http://{}", platform.api_addr));
    let authority = Arc::new(
        identity::Authority::open_at(data_dir, &issuer, identity::now(), args.rotate_signing_key)
            .context("opening homerun's identity files")?,
    );
    // Bind first: a port in use is refused before anything is set up.
    let ingress = TcpListener::bind(args.ingress_addr)
        .await
        .with_context(|| format!("listening on {} (--ingress-addr)", args.ingress_addr))?;
    let api_listener = TcpListener::bind(platform.api_addr)
        .await
        .with_context(|| format!("listening on {} (--api-addr)", platform.api_addr))?;
    let ingress_port = ingress.local_addr()?.port();
    let https = match args.https_addr {
        None => None,
        Some(addr) => {
            let tls = load_tls(&args, data_dir)?;
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr} (--https-addr)"))?;
            Some((listener, tls))
        }
    };

    let network_config = NetworkConfig {
        bridge: args.bridge.clone(),
        subnet: args.subnet.clone(),
        state_dir: data_dir.join("net"),
    };
    let network = Arc::new(
        Network::setup(network_config.clone())
            .with_context(|| format!("setting up the bridge {}", args.bridge))?,
    );
    let cgroups = Arc::new(Layout::detect().context("reading the host's cgroup layout")?);
    // One book for both runtimes: the metadata server knows every instance by address.
    let addresses = Arc::new(runtime::AddressBook::default());
    let directory = {
        let addresses = addresses.clone();
        Arc::new(identity::Directory::new(move |ip| match ip {
            std::net::IpAddr::V4(v4) => addresses.instance_at(v4),
            std::net::IpAddr::V6(_) => None,
        }))
    };
    let gateway = network.gateway();
    // Instances reach the metadata server and the ingress (service to service) on the
    // bridge's own address; the bridge exists now, so these can be bound.
    let metadata_listener = TcpListener::bind((gateway, 80))
        .await
        .with_context(|| format!("listening on {gateway}:80 for the metadata server"))?;
    let internal_ingress = if args.ingress_addr.ip().is_unspecified() {
        // The ingress already listens on every address, the gateway's included.
        None
    } else {
        Some(
            TcpListener::bind((gateway, ingress_port))
                .await
                .with_context(|| format!("listening on {gateway}:{ingress_port} for instances"))?,
        )
    };
    let node_for = |kind: OciRuntime, name: &str| -> anyhow::Result<Node> {
        let state_dir = data_dir.join("instances").join(name);
        std::fs::create_dir_all(&state_dir)
            .with_context(|| format!("creating {}", state_dir.display()))?;
        Ok(Node {
            store: images.clone(),
            runtime: Runtime::new(kind, &data_dir.join(name)),
            network: network.clone(),
            state_dir,
            cgroups: cgroups.clone(),
            netpool: None,
            addresses: addresses.clone(),
        })
    };
    let mut runc = node_for(OciRuntime::Runc, "runc")?;
    let mut runsc = if binary_exists("runsc") {
        Some(node_for(OciRuntime::Runsc, "runsc")?)
    } else {
        tracing::warn!("runsc is not installed: first generation revisions will fail");
        None
    };
    // What a killed homerun left goes before anything starts.
    for node in std::iter::once(&runc).chain(runsc.as_ref()) {
        let recovered = runtime::recovery::recover(node).with_context(|| {
            format!("cleaning up after the last run ({:?})", node.runtime.kind())
        })?;
        if recovered != Default::default() {
            tracing::warn!(?recovered, "removed what the last run left");
        }
    }
    let netpool = NetPool::new(network.clone(), NETPOOL_SIZE);
    runc.netpool = Some(netpool.clone());
    if let Some(n) = runsc.as_mut() {
        n.netpool = Some(netpool.clone());
    }

    let sink = control::EventSink::default();
    let tokens = crate::auth::Tokens(authority.clone());
    let internal: router::InternalPeers = {
        let directory = directory.clone();
        Arc::new(move |ip| directory.is_instance(ip))
    };
    let router = router::Router::new(
        router::RouterOptions {
            queue: router::QueueConfig {
                min_wait: args.scaling.queue_wait,
                ..Default::default()
            },
            verifier: Some(Arc::new(tokens.clone())),
            internal: Some(internal),
            ..Default::default()
        },
        Arc::new(sink.clone()),
    );
    let endpoint = api::Endpoint::new(&platform.project, &args.domain, ingress_port);
    let changed = Arc::new(Notify::new());
    let sealer: Arc<dyn api::Sealer> = Arc::new(crate::auth::Seal(authority.clone()));
    let api_state = api::ApiState::new(records.clone(), &platform.region, endpoint.clone())
        .with_changed(changed.clone())
        .with_auth(Arc::new(tokens))
        .with_sealer(sealer.clone());
    let identities = Arc::new(control::Identities {
        directory: directory.clone(),
        store: records.clone(),
        sealer,
        region: platform.region.clone(),
        metadata_ip: gateway,
    });
    let credentials = crate::auth::credentials_router(
        authority.clone(),
        records.clone(),
        platform.project.clone(),
    );
    let controller = control::Controller::new(
        records.clone(),
        runc,
        runsc,
        router.clone(),
        sink,
        control::ControllerConfig {
            default_project: platform.project.clone(),
            domain: args.domain.clone(),
            endpoint,
            https_port: args.https_addr.map(|a| a.port()),
            autoscaler,
            registry: image::RegistryOptions {
                insecure_hosts: args.insecure_registries.clone(),
                ..Default::default()
            },
            grace: args.grace,
            hosts: vec![(
                gateway.to_string(),
                vec!["metadata.google.internal".into(), "metadata".into()],
            )],
            logs_dir: data_dir.join("logs"),
            max_task_parallelism: args.max_task_parallelism,
            identities: Some(identities),
        },
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    // The controller retires instances only once the ingress has finished its requests.
    let (retire_tx, retire_rx) = watch::channel(false);
    let controller_task = tokio::spawn(controller.run(changed, stopped(retire_rx)));
    let ingress_task = tokio::spawn(router.clone().serve(
        ingress,
        router::Scheme::Http,
        stopped(stop_rx.clone()),
    ));
    let internal_task = internal_ingress.map(|listener| {
        tokio::spawn(
            router
                .clone()
                .serve(listener, router::Scheme::Http, stopped(stop_rx.clone())),
        )
    });
    // Instances may ask for tokens until they are gone: it stops after the controller.
    let (metadata_stop_tx, metadata_stop_rx) = watch::channel(false);
    let metadata_task = tokio::spawn(identity::metadata::serve(
        metadata_listener,
        authority.clone(),
        directory,
        stopped(metadata_stop_rx),
    ));
    let https_task = https.map(|(listener, tls)| {
        tokio::spawn(
            router
                .clone()
                .serve_tls(listener, tls, stopped(stop_rx.clone())),
        )
    });
    let api_task = tokio::spawn(
        axum::serve(
            api_listener,
            api::router(api_state)
                .merge(crate::logs_api::router(
                    data_dir.join("logs"),
                    platform.region.clone(),
                    crate::auth::logs_authorizer(authority.clone(), records),
                ))
                .merge(credentials)
                .merge(identity::discovery_router(authority.clone())),
        )
        .with_graceful_shutdown(stopped(stop_rx.clone()))
        .into_future(),
    );
    println!(
        "homerun is up: services at http://{{service}}.{}:{ingress_port} (ingress {}), Admin API at http://{}",
        args.domain, args.ingress_addr, platform.api_addr
    );
    if let Some(addr) = args.https_addr {
        println!("HTTPS on {addr}");
    }
    println!(
        "admin token: {} (the CLI on this machine reads it); metadata server for instances at http://{gateway}:80",
        authority.admin_token_path().display()
    );

    wait_for_signal().await?;
    eprintln!("homerun: shutting down: draining requests and stopping instances");
    let _ = stop_tx.send(true);
    // Routing stops first and in-flight requests finish; then the instances go.
    ingress_task.await?.context("serving the ingress")?;
    if let Some(task) = https_task {
        task.await?.context("serving HTTPS")?;
    }
    if let Some(task) = internal_task {
        task.await?.context("serving the ingress to instances")?;
    }
    let _ = retire_tx.send(true);
    controller_task.await?;
    let _ = metadata_stop_tx.send(true);
    api_task.await?.context("serving the Admin API")?;
    metadata_task
        .await?
        .context("serving the metadata server")?;
    netpool.close();
    drop(network);
    Network::setup(network_config)
        .and_then(Network::teardown)
        .context("removing the bridge")?;
    eprintln!("homerun: stopped");
    Ok(())
}

/// The given certificate, or the self-signed one kept in `DATA_DIR/tls` (made on first
/// use; the key is readable by root only).
fn load_tls(args: &UpArgs, data_dir: &Path) -> anyhow::Result<router::Tls> {
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        return router::Tls::from_pem_files(cert, key).context("loading --tls-cert/--tls-key");
    }
    let dir = data_dir.join("tls");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert.exists() && key.exists() {
        return router::Tls::from_pem_files(&cert, &key)
            .with_context(|| format!("loading the certificate in {}", dir.display()));
    }
    let (tls, cert_pem, key_pem) = router::Tls::self_signed(&args.domain)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(&cert, cert_pem).with_context(|| format!("writing {}", cert.display()))?;
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&key)
            .with_context(|| format!("writing {}", key.display()))?;
        f.write_all(key_pem.as_bytes())?;
    }
    eprintln!(
        "homerun: made a self-signed certificate for {0} and *.{0}: {1}",
        args.domain,
        cert.display()
    );
    Ok(tls)
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("handling SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

fn binary_exists(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("10 parsecs").unwrap_err().contains("unit"));
        assert!(parse_duration("soon").is_err());
    }
}
