//! One revision's owner: a task that pulls its images, proves a new revision can start
//! (the deploy-time readiness check), and then keeps as many instances as its autoscaler
//! asks for, starting them on demand (scale from zero: the router's first queued request
//! reaches it at once) and draining and stopping the surplus.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use autoscaler::{Autoscaler, InstanceIdle, Sample};
use image::{ImageRecord, RegistryOptions};
use runtime::instance::{ContainerDef, InstanceSpec, Node};
use tokio::sync::mpsc;

use crate::instance::{self, Command, Handle, InstanceContext, Report};
use crate::spec::RevisionPlan;

/// What reaches a revision's task.
#[derive(Debug)]
pub(crate) enum Message {
    /// From the router.
    Router(router::Event),
    /// Drain and stop every instance, then end.
    Retire,
    /// Wanted again while retiring: keep serving.
    Resume,
}

/// What a revision's task tells the controller.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The readiness check's verdict (only for revisions started with `check`).
    Checked {
        revision: String,
        result: Result<(), String>,
    },
    /// The task ended (retired, or its check failed).
    Ended { revision: String },
    /// An execution's task ended (see [`crate::jobs`]).
    ExecutionEnded { execution: String },
}

/// The platform's parts a revision uses.
#[derive(Clone)]
pub(crate) struct Platform {
    pub runc: Node,
    pub runsc: Option<Node>,
    pub router: Arc<router::Router>,
    /// Throttles idle instances' CPU on the request path.
    pub sink: crate::EventSink,
    pub autoscaler: autoscaler::Config,
    pub registry: RegistryOptions,
    pub grace: Duration,
    /// The autoscaler's clock starts here.
    pub epoch: Instant,
    /// `/etc/hosts` lines every instance gets.
    pub hosts: Vec<(String, Vec<String>)>,
    /// Instances' identities and secrets; None in tests without them.
    pub identities: Option<Arc<crate::identity::Identities>>,
}

/// Starts a revision's task. `check`: the revision has not yet shown it can start, so one
/// instance starts now and the verdict goes to `outcomes`.
pub(crate) fn spawn(
    platform: Platform,
    plan: RevisionPlan,
    check: bool,
    outcomes: mpsc::UnboundedSender<Outcome>,
) -> mpsc::UnboundedSender<Message> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let name = plan.name.clone();
        run(platform, plan, check, rx, &outcomes).await;
        let _ = outcomes.send(Outcome::Ended { revision: name });
    });
    tx
}

struct Live {
    handle: Handle,
    ready: bool,
    stopping: bool,
    /// A request is in flight (the router's busy/idle events).
    busy: bool,
    /// Since when it has had no request (the autoscaler's clock); None while serving.
    idle_since: Option<Duration>,
    /// The last busy/idle change seen (stale events are dropped).
    busy_seq: u64,
}

struct State {
    platform: Platform,
    plan: Arc<RevisionPlan>,
    node: Node,
    images: Vec<ImageRecord>,
    scaler: Autoscaler,
    /// Oldest first.
    instances: Vec<Live>,
    reports_tx: mpsc::UnboundedSender<Report>,
    /// Mean startup time (for the router's queue wait), an exponential average.
    mean_startup: Option<Duration>,
    /// After failed starts, none before this (backing off).
    hold_starts_until: Option<Instant>,
    failures: u32,
    next_id: u32,
    /// Its instances' service account and secrets.
    identity: Arc<crate::identity::IdentityPlan>,
    /// CPU nanoseconds of the instances at the last sample, to compute a rate.
    last_cpu: Option<(Instant, u64)>,
    /// The rate computed then, in millicores.
    cpu_rate: f64,
}

async fn run(
    platform: Platform,
    plan: RevisionPlan,
    check: bool,
    mut messages: mpsc::UnboundedReceiver<Message>,
    outcomes: &mpsc::UnboundedSender<Outcome>,
) {
    let name = plan.name.clone();
    let node = match plan.runtime {
        runtime::runc::OciRuntime::Runc => platform.runc.clone(),
        runtime::runc::OciRuntime::Runsc => match &platform.runsc {
            Some(n) => n.clone(),
            None => {
                let _ = outcomes.send(Outcome::Checked {
                    revision: name,
                    result: Err("the first generation execution environment (gVisor, runsc) is not available on this machine".into()),
                });
                return;
            }
        },
    };
    platform
        .router
        .pools()
        .set_revision(plan.router_settings(Duration::ZERO));

    // Images first: a revision whose image cannot be had fails its check with that reason.
    // Requests that arrive meanwhile wait in the pool's queue; the first tick after the
    // pull sees them.
    let pull = crate::images::pull(node.clone(), plan.images(), platform.registry.clone());
    tokio::pin!(pull);
    let images = loop {
        tokio::select! {
            pulled = &mut pull => match pulled {
                Ok(images) => break images,
                Err(e) if check => {
                    let _ = outcomes.send(Outcome::Checked {
                        revision: name,
                        result: Err(e),
                    });
                    return;
                }
                Err(e) => {
                    // A revision that was ready once: its image may come back (a
                    // registry restarting); retry.
                    tracing::warn!(revision = %name, "pulling: {e}; retrying in 5 s");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    pull.set(crate::images::pull(node.clone(), plan.images(), platform.registry.clone()));
                }
            },
            message = messages.recv() => match message {
                Some(Message::Retire) | None => return,
                Some(Message::Router(_) | Message::Resume) => {}
            },
        }
    };

    let (reports_tx, mut reports) = mpsc::unbounded_channel();
    let identity = Arc::new(crate::identity::IdentityPlan::new(
        &plan.project,
        &plan.service_account,
        &plan.containers,
        &plan.secret_volumes,
    ));
    let mut state = State {
        scaler: Autoscaler::new(platform.autoscaler.clone(), plan.autoscaler_settings()),
        platform,
        plan: Arc::new(plan),
        node,
        images,
        instances: Vec::new(),
        reports_tx,
        mean_startup: None,
        hold_starts_until: None,
        failures: 0,
        next_id: 0,
        identity,
        last_cpu: None,
        cpu_rate: 0.0,
    };
    let mut checking = check;
    if check {
        // The deploy counts as activity (as Knative's initial scale): the instance that
        // proves the revision stays until the scale-to-zero grace has passed.
        let now = state.now();
        state.scaler.on_arrival(now, 0);
        state.start_instances(1);
    }
    let mut tick = tokio::time::interval(state.platform.autoscaler.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut retiring = false;
    let mut closed = false;
    loop {
        tokio::select! {
            message = messages.recv(), if !closed => match message {
                Some(Message::Router(event)) if !retiring => state.on_router_event(event),
                Some(Message::Router(_)) => {}
                Some(Message::Retire) if !retiring => {
                    retiring = true;
                    state.stop_all();
                }
                Some(Message::Retire) => {}
                // Wanted again before its instances were gone: serve on; the autoscaler
                // starts what the load needs.
                Some(Message::Resume) => retiring = false,
                None => {
                    closed = true;
                    if !retiring {
                        retiring = true;
                        state.stop_all();
                    }
                }
            },
            Some(report) = reports.recv() => {
                let verdict = state.on_report(report);
                if checking {
                    if let Some(result) = verdict {
                        checking = false;
                        let failed = result.is_err();
                        let _ = outcomes.send(Outcome::Checked { revision: state.plan.name.clone(), result });
                        if failed {
                            retiring = true;
                            state.stop_all();
                        }
                    }
                }
                if retiring && state.instances.is_empty() {
                    break;
                }
            }
            _ = tick.tick(), if !retiring => state.on_tick(),
        }
        if retiring && state.instances.is_empty() {
            break;
        }
    }
    // The controller removes the pool if the revision is still unwanted: requests
    // queued for a revision wanted again must not fail.
}

impl State {
    fn now(&self) -> Duration {
        self.platform.epoch.elapsed()
    }

    fn active(&self) -> impl Iterator<Item = &Live> {
        self.instances.iter().filter(|l| !l.stopping)
    }

    fn counts(&self) -> (u32, u32) {
        let ready = self.active().filter(|l| l.ready).count() as u32;
        let starting = self.active().filter(|l| !l.ready).count() as u32;
        (ready, starting)
    }

    fn instance_spec(&mut self) -> InstanceSpec {
        self.next_id += 1;
        let service: String = self.plan.service.chars().take(20).collect();
        // 64 random bits: ids must not collide across projects and runtimes (the metadata
        // server's directory refuses a second instance with an id in use).
        let id = format!(
            "{}-{:08x}{:08x}",
            service.trim_end_matches('-'),
            random_u32(),
            random_u32() ^ self.next_id
        );
        InstanceSpec {
            id,
            containers: self
                .plan
                .containers
                .iter()
                .zip(&self.images)
                .map(|(c, image)| ContainerDef {
                    name: c.name.clone(),
                    image: image.clone(),
                    overrides: c.overrides.clone(),
                    user: None,
                    port: c.port,
                    limits: c.limits,
                    volume_mounts: c.volume_mounts.clone(),
                    depends_on: c.depends_on.clone(),
                    startup_probe: c.startup_probe.clone(),
                    liveness_probe: c.liveness_probe.clone(),
                })
                .collect(),
            volumes: self.plan.volumes.clone(),
            file_volumes: Vec::new(),
            platform_env: self.plan.platform_env(),
            hosts: self.platform.hosts.clone(),
            cpu_boost: self.plan.cpu_boost,
        }
    }

    fn start_instances(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        if self.hold_starts_until.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let ingress_port = self.plan.containers.iter().find_map(|c| c.port);
        for _ in 0..n {
            let spec = self.instance_spec();
            let context = InstanceContext {
                node: self.node.clone(),
                router: self.platform.router.clone(),
                sink: self.platform.sink.clone(),
                cpu_idle: self.plan.cpu_idle,
                revision: self.plan.name.clone(),
                concurrency: self.plan.concurrency as usize,
                port: ingress_port,
                grace: self.platform.grace,
                identities: self.platform.identities.clone(),
                identity: self.identity.clone(),
            };
            let handle = instance::spawn(context, spec, self.reports_tx.clone());
            self.instances.push(Live {
                handle,
                ready: false,
                stopping: false,
                busy: false,
                idle_since: None,
                busy_seq: 0,
            });
        }
    }

    fn find(&mut self, id: &str) -> Option<&mut Live> {
        self.instances.iter_mut().find(|l| &*l.handle.id == id)
    }

    /// Handles an instance's report; for a start, returns its verdict.
    fn on_report(&mut self, report: Report) -> Option<Result<(), String>> {
        match report {
            Report::Started { id, result } => match result {
                Ok(took) => {
                    self.failures = 0;
                    self.hold_starts_until = None;
                    self.mean_startup = Some(match self.mean_startup {
                        None => took,
                        Some(m) => m.mul_f64(0.8) + took.mul_f64(0.2),
                    });
                    self.platform
                        .router
                        .pools()
                        .pool(&self.plan.name)
                        .set_settings(
                            self.plan
                                .router_settings(self.mean_startup.unwrap_or_default()),
                        );
                    let now = self.now();
                    if let Some(live) = self.find(&id) {
                        live.ready = true;
                        // A request may already have reached it (busy came first).
                        if !live.busy {
                            live.idle_since = Some(now);
                        }
                    }
                    Some(Ok(()))
                }
                Err(e) => {
                    tracing::warn!(revision = %self.plan.name, instance = %id, "instance failed to start: {e}");
                    self.instances.retain(|l| *l.handle.id != *id);
                    self.failures += 1;
                    let backoff = Duration::from_millis(250 << self.failures.min(6));
                    self.hold_starts_until = Some(Instant::now() + backoff);
                    Some(Err(e))
                }
            },
            Report::Ended { id, reason } => {
                if let Some(reason) = reason {
                    tracing::warn!(revision = %self.plan.name, instance = %id, "instance ended: {reason}");
                    // An instance that dies on its own is replaced, but not in a tight
                    // loop: the same backoff as a failed start.
                    self.failures += 1;
                    let backoff = Duration::from_millis(250 << self.failures.min(6));
                    self.hold_starts_until = Some(Instant::now() + backoff);
                }
                self.instances.retain(|l| *l.handle.id != *id);
                None
            }
        }
    }

    fn on_router_event(&mut self, event: router::Event) {
        let now = self.now();
        match event {
            router::Event::Demand(d) => {
                let cpu_millis = self.cpu_millis();
                self.scaler.record(Sample {
                    at: now,
                    in_flight: (d.queued + d.in_flight) as f64,
                    cpu_millis,
                });
                if let Some(desired) = self.scaler.on_arrival(now, d.queued as u32) {
                    let (ready, starting) = self.counts();
                    self.start_instances(desired.saturating_sub(ready + starting));
                }
            }
            router::Event::InstanceBusy {
                instance,
                busy,
                seq,
                ..
            } => {
                // CPU throttling happened on the request path (`EventSink`); this is
                // for the idle timers.
                if let Some(live) = self.find(&instance) {
                    if seq > live.busy_seq {
                        live.busy_seq = seq;
                        live.busy = busy;
                        live.idle_since = if busy { None } else { Some(now) };
                    }
                }
            }
            router::Event::InstanceFailed {
                instance, error, ..
            } => {
                tracing::warn!(revision = %self.plan.name, %instance, %error, "the router lost an instance: stopping it");
                let grace = self.platform.grace;
                if let Some(live) = self.find(&instance) {
                    live.stopping = true;
                    let _ = live.handle.commands.send(Command::Stop { drain: grace });
                }
            }
        }
    }

    /// The instances' CPU use since the last sample, in millicores.
    fn cpu_millis(&mut self) -> f64 {
        let total: u64 = self
            .instances
            .iter()
            .map(|l| l.handle.cpu_nanos.load(Ordering::Relaxed))
            .sum();
        let now = Instant::now();
        let rate = match self.last_cpu {
            Some((at, before)) if now > at && total >= before => {
                let secs = (now - at).as_secs_f64();
                if secs < 0.5 {
                    // Too close to the last sample for a meaningful rate.
                    return self.cpu_rate;
                }
                (total - before) as f64 / 1e6 / secs
            }
            _ => 0.0,
        };
        self.last_cpu = Some((now, total));
        self.cpu_rate = rate;
        rate
    }

    fn on_tick(&mut self) {
        let now = self.now();
        let stats = self.platform.router.pools().pool(&self.plan.name).stats();
        let cpu = self.cpu_millis();
        self.scaler.record(Sample {
            at: now,
            in_flight: (stats.in_flight + stats.queued) as f64,
            cpu_millis: cpu,
        });
        let (ready, starting) = self.counts();
        let decision = self.scaler.decide(now, ready, starting);
        self.start_instances(decision.to_start(ready, starting));
        let candidates: Vec<InstanceIdle<Arc<str>>> = self
            .active()
            .map(|l| InstanceIdle {
                id: l.handle.id.clone(),
                idle_since: if l.ready { l.idle_since } else { None },
            })
            .collect();
        let to_stop = self.scaler.to_stop(now, decision.desired, &candidates);
        let drain = self.plan.timeout;
        for id in to_stop {
            if let Some(live) = self.find(&id) {
                tracing::info!(instance = %id, ?decision, "scaling down");
                live.stopping = true;
                let _ = live.handle.commands.send(Command::Stop { drain });
            }
        }
    }

    fn stop_all(&mut self) {
        let drain = self.plan.timeout;
        for live in self.instances.iter_mut() {
            if !live.stopping {
                live.stopping = true;
                let _ = live.handle.commands.send(Command::Stop { drain });
            }
        }
    }
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    getrandom::getrandom(&mut b).unwrap_or_default();
    u32::from_le_bytes(b)
}
