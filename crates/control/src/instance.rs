//! One running instance, owned by a task of its own: it starts the instance, hands its
//! endpoint to the router, follows its health, throttles its CPU when told, and at the end
//! drains it out of routing and stops it (SIGTERM, the grace period, SIGKILL).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use runtime::instance::{Instance, InstanceEvent, InstanceSpec, Node};
use tokio::sync::mpsc;

/// What the revision tells one of its instances.
#[derive(Debug)]
pub(crate) enum Command {
    /// Out of routing, let in-flight requests finish (at most `drain`), then stop.
    Stop { drain: Duration },
}

/// What an instance tells its revision.
#[derive(Debug)]
pub(crate) enum Report {
    /// Started and in routing, or failed to start (the error names the container, the
    /// reason and its last log lines).
    Started {
        id: Arc<str>,
        result: Result<Duration, String>,
    },
    /// Gone: stopped as asked, or ended on its own (`reason`).
    Ended {
        id: Arc<str>,
        reason: Option<String>,
    },
}

/// The parts of the platform an instance needs.
#[derive(Clone)]
pub(crate) struct InstanceContext {
    pub node: Node,
    pub router: Arc<router::Router>,
    /// Throttles the instance's CPU between requests when `cpu_idle`.
    pub sink: crate::EventSink,
    pub cpu_idle: bool,
    /// The router's key of the revision.
    pub revision: String,
    pub concurrency: usize,
    pub port: Option<u16>,
    pub grace: Duration,
    pub identities: Option<Arc<crate::identity::Identities>>,
    pub identity: Arc<crate::identity::IdentityPlan>,
}

/// The live side of an instance's task, kept by its revision.
pub(crate) struct Handle {
    pub id: Arc<str>,
    pub commands: mpsc::UnboundedSender<Command>,
    /// CPU time used so far, in nanoseconds, refreshed about every second.
    pub cpu_nanos: Arc<AtomicU64>,
}

/// Starts the task of one instance.
pub(crate) fn spawn(
    context: InstanceContext,
    spec: InstanceSpec,
    reports: mpsc::UnboundedSender<Report>,
) -> Handle {
    let id: Arc<str> = Arc::from(spec.id.as_str());
    let (tx, rx) = mpsc::unbounded_channel();
    let cpu_nanos = Arc::new(AtomicU64::new(0));
    tokio::spawn(run(
        context,
        spec,
        rx,
        reports,
        id.clone(),
        cpu_nanos.clone(),
    ));
    Handle {
        id,
        commands: tx,
        cpu_nanos,
    }
}

async fn run(
    ctx: InstanceContext,
    mut spec: InstanceSpec,
    mut commands: mpsc::UnboundedReceiver<Command>,
    reports: mpsc::UnboundedSender<Report>,
    id: Arc<str>,
    cpu_nanos: Arc<AtomicU64>,
) {
    let started = Instant::now();
    // Held until the instance is stopped: the metadata server knows it meanwhile.
    let _registration =
        match crate::identity::prepare(ctx.identities.as_deref(), &ctx.identity, &mut spec) {
            Ok(r) => r,
            Err(e) => {
                let _ = reports.send(Report::Started {
                    id: id.clone(),
                    result: Err(e),
                });
                return;
            }
        };
    let mut instance = match Instance::start(spec, &ctx.node).await {
        Ok(i) => i,
        Err(e) => {
            let _ = reports.send(Report::Started {
                id: id.clone(),
                result: Err(e.to_string()),
            });
            return;
        }
    };
    let took = started.elapsed();
    let end = router::EndSignal::new();
    let endpoint = |instance: &Instance| router::Endpoint {
        id: id.to_string(),
        addr: SocketAddr::new(instance.address().into(), ctx.port.unwrap_or(8080)),
        concurrency: ctx.concurrency,
        end: end.clone(),
    };
    if ctx.cpu_idle {
        ctx.sink.register_cpu(&id, instance.cpu_control());
    }
    if ctx.port.is_some() {
        ctx.router
            .pools()
            .add_instance(&ctx.revision, endpoint(&instance));
    }
    if ctx.cpu_idle {
        ctx.sink.throttle_if_unused(&id);
    }
    tracing::info!(revision = %ctx.revision, instance = %id, ?took, "instance ready");
    let _ = reports.send(Report::Started {
        id: id.clone(),
        result: Ok(took),
    });

    let mut sample = tokio::time::interval(Duration::from_secs(1));
    let reason = loop {
        tokio::select! {
            event = instance.watch() => match event {
                InstanceEvent::Exited { container, exit } => {
                    // Its in-flight requests learn why (500 for an OOM kill).
                    end.send(if exit.oom_killed {
                        router::InstanceEnd::OutOfMemory
                    } else {
                        router::InstanceEnd::Exited
                    });
                    ctx.router.pools().remove_instance(&ctx.revision, &id);
                    break Some(format!("container {container} exited ({})", describe_exit(&exit)));
                }
                InstanceEvent::Unhealthy { container, reason } => {
                    // Cloud Run restarts a container whose liveness probe fails; its
                    // in-flight requests are lost with it.
                    tracing::warn!(instance = %id, %container, %reason, "liveness probe failed: restarting");
                    ctx.router.pools().remove_instance(&ctx.revision, &id);
                    if let Err(e) = instance.restart().await {
                        break Some(format!("restart after a failed liveness probe: {e}"));
                    }
                    if ctx.cpu_idle {
                        // New containers, new cgroups.
                        ctx.sink.register_cpu(&id, instance.cpu_control());
                    }
                    if ctx.port.is_some() {
                        ctx.router.pools().add_instance(&ctx.revision, endpoint(&instance));
                    }
                }
            },
            command = commands.recv() => match command {
                Some(Command::Stop { drain }) => {
                    // Its full CPU while it finishes its requests and handles SIGTERM.
                    ctx.sink.unregister_cpu(&id);
                    if let Some(d) = ctx.router.pools().remove_instance(&ctx.revision, &id) {
                        let _ = tokio::time::timeout(drain, d.wait()).await;
                    }
                    break None;
                }
                None => {
                    ctx.router.pools().remove_instance(&ctx.revision, &id);
                    break None;
                }
            },
            _ = sample.tick() => {
                cpu_nanos.store(instance.cpu_usage().as_nanos() as u64, Ordering::Relaxed);
            }
        }
    };
    ctx.sink.unregister_cpu(&id);
    let exits = instance.stop(ctx.grace).await;
    tracing::info!(revision = %ctx.revision, instance = %id, ?exits, "instance stopped");
    let _ = reports.send(Report::Ended { id, reason });
}

fn describe_exit(exit: &runtime::container::ExitInfo) -> String {
    if exit.oom_killed {
        "killed: out of memory".into()
    } else if let Some(code) = exit.code {
        format!("exit code {code}")
    } else if let Some(signal) = exit.signal {
        format!("killed by signal {signal}")
    } else {
        "ended".into()
    }
}
