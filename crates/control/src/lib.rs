//! homerun's controller: it reconciles what the Admin API stored (services, revisions,
//! operations) with what runs.
//!
//! - [`Controller::run`] makes a pass on every store write (the API's `changed`
//!   notifier), on every revision verdict and every second: it reads all services and
//!   revisions, decides which revisions need a task ([`revision`]: new ones to prove
//!   they start, those traffic or a tag points at to serve), gives the router its table,
//!   retires the rest, and writes status (conditions, `latestReadyRevision`,
//!   `trafficStatuses`, `observedGeneration`) and finishes operations.
//! - A revision's task owns its instances ([`instance`]) and its autoscaler; the router's
//!   events reach it through [`EventSink`].
//! - [`spec`] turns a stored revision into the runtime's, router's and autoscaler's terms.

mod error;
pub mod identity;
mod images;
mod instance;
pub mod jobs;
mod reconcile;
mod revision;
pub mod spec;
mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use store::Store;
use tokio::sync::{mpsc, Notify};

pub use error::ControlError;
pub use identity::Identities;
use revision::{Message, Outcome};

/// How the controller runs instances.
#[derive(Clone)]
pub struct ControllerConfig {
    /// Services of this project also answer at `{service}.{domain}`.
    pub default_project: String,
    pub domain: String,
    /// How service and tag URLs are written in status.
    pub endpoint: api::Endpoint,
    /// The HTTPS ingress's port, if any: its URLs are audiences of ID tokens too.
    pub https_port: Option<u16>,
    pub autoscaler: autoscaler::Config,
    pub registry: image::RegistryOptions,
    /// Between SIGTERM and SIGKILL (the contract: 10 s).
    pub grace: Duration,
    /// `/etc/hosts` lines every instance gets.
    pub hosts: Vec<(String, Vec<String>)>,
    /// Where task attempts' logs are kept.
    pub logs_dir: std::path::PathBuf,
    /// Task attempts at once for an execution whose parallelism is 0, and the most
    /// otherwise.
    pub max_task_parallelism: u32,
    /// Instances' identities (the metadata server's directory) and secrets; None gives
    /// instances neither.
    pub identities: Option<Arc<Identities>>,
}

/// The router's events, handed to the task of the revision they concern. Give it to
/// [`router::Router::new`], then to [`Controller::new`].
///
/// It also gives CPU to instances throttled between requests (`cpuIdle`) right here, on
/// the request's path, before the request reaches the instance: the router sends an
/// instance's busy event before it forwards the request that made it busy.
#[derive(Clone, Default)]
pub struct EventSink {
    revisions: Arc<RwLock<HashMap<String, mpsc::UnboundedSender<Message>>>>,
    cpu: Arc<Mutex<HashMap<String, CpuEntry>>>,
}

struct CpuEntry {
    control: runtime::instance::CpuControl,
    /// The last busy/idle change applied (stale ones are dropped).
    seq: u64,
}

impl EventSink {
    /// Throttles `instance` between its requests from now on; the instance starts
    /// unthrottled until [`EventSink::throttle_if_unused`].
    pub(crate) fn register_cpu(&self, instance: &str, control: runtime::instance::CpuControl) {
        let mut map = lock(&self.cpu);
        let seq = map.get(instance).map_or(0, |e| e.seq);
        map.insert(instance.to_string(), CpuEntry { control, seq });
    }

    /// Throttles a registered instance no request has reached yet.
    pub(crate) fn throttle_if_unused(&self, instance: &str) {
        if let Some(e) = lock(&self.cpu).get(instance) {
            if e.seq == 0 {
                if let Err(err) = e.control.throttle(true) {
                    tracing::warn!(%instance, "throttling: {err}");
                }
            }
        }
    }

    /// Stops throttling `instance` (it is draining or gone) and gives it its CPU.
    pub(crate) fn unregister_cpu(&self, instance: &str) {
        if let Some(e) = lock(&self.cpu).remove(instance) {
            let _ = e.control.throttle(false);
        }
    }
}

impl router::Events for EventSink {
    fn event(&self, event: router::Event) {
        if let router::Event::InstanceBusy {
            instance,
            busy,
            seq,
            ..
        } = &event
        {
            if let Some(e) = lock(&self.cpu).get_mut(&**instance) {
                if *seq > e.seq {
                    e.seq = *seq;
                    if let Err(err) = e.control.throttle(!busy) {
                        tracing::warn!(%instance, "throttling: {err}");
                    }
                }
            }
        }
        let revision = match &event {
            router::Event::Demand(d) => &d.revision,
            router::Event::InstanceBusy { revision, .. }
            | router::Event::InstanceFailed { revision, .. } => revision,
        };
        let map = self.revisions.read().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = map.get(&**revision) {
            let _ = tx.send(Message::Router(event));
        }
    }
}

/// The reconciler. One per platform.
pub struct Controller {
    store: Arc<dyn Store>,
    config: ControllerConfig,
    platform: revision::Platform,
    sink: EventSink,
    outcomes_tx: mpsc::UnboundedSender<Outcome>,
    outcomes: tokio::sync::Mutex<mpsc::UnboundedReceiver<Outcome>>,
    /// Revisions with a task.
    tasks: Mutex<HashMap<String, Task>>,
    /// The revisions the last pass wanted a task for.
    wanted: Mutex<HashMap<String, bool>>,
    /// Verdicts of readiness checks not yet written to the store.
    verdicts: Mutex<HashMap<String, Result<(), String>>>,
    jobs: jobs::Jobs,
}

impl Controller {
    /// `runc` runs second generation revisions (and unspecified ones); `runsc`, when
    /// given, the first generation.
    pub fn new(
        store: Arc<dyn Store>,
        runc: runtime::instance::Node,
        runsc: Option<runtime::instance::Node>,
        router: Arc<router::Router>,
        sink: EventSink,
        config: ControllerConfig,
    ) -> Arc<Controller> {
        let (outcomes_tx, outcomes) = mpsc::unbounded_channel();
        let jobs = jobs::Jobs::new(
            jobs::execution::JobPlatform {
                runc: runc.clone(),
                runsc: runsc.clone(),
                registry: config.registry.clone(),
                grace: config.grace,
                hosts: config.hosts.clone(),
                logs_dir: config.logs_dir.clone(),
                identities: config.identities.clone(),
            },
            store.clone(),
            config.max_task_parallelism,
        );
        Arc::new(Controller {
            jobs,
            platform: revision::Platform {
                runc,
                runsc,
                router,
                sink: sink.clone(),
                autoscaler: config.autoscaler.clone(),
                registry: config.registry.clone(),
                grace: config.grace,
                epoch: Instant::now(),
                hosts: config.hosts.clone(),
                identities: config.identities.clone(),
            },
            store,
            config,
            sink,
            outcomes_tx,
            outcomes: tokio::sync::Mutex::new(outcomes),
            tasks: Mutex::new(HashMap::new()),
            wanted: Mutex::new(HashMap::new()),
            verdicts: Mutex::new(HashMap::new()),
        })
    }

    /// Reconciles until `shutdown` resolves, then retires every revision: instances leave
    /// routing, finish their requests and stop (SIGTERM, the grace period, SIGKILL).
    pub async fn run(
        self: Arc<Self>,
        changed: Arc<Notify>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut outcomes = self.outcomes.lock().await;
        loop {
            let this = self.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || this.pass()).await {
                tracing::error!("reconcile pass panicked: {e}");
            }
            tokio::select! {
                () = changed.notified() => {}
                Some(outcome) = outcomes.recv() => self.on_outcome(outcome),
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = &mut shutdown => break,
            }
            // Take whatever else arrived with it, then pass once.
            while let Ok(outcome) = outcomes.try_recv() {
                self.on_outcome(outcome);
            }
        }
        self.retire_all(&mut outcomes).await;
    }

    fn on_outcome(&self, outcome: Outcome) {
        match outcome {
            Outcome::Checked { revision, result } => {
                if let Err(e) = &result {
                    tracing::warn!(%revision, "revision failed its readiness check: {e}");
                } else {
                    tracing::info!(%revision, "revision ready");
                }
                lock(&self.verdicts).insert(revision, result);
            }
            Outcome::ExecutionEnded { execution } => self.jobs.ended(&execution),
            Outcome::Ended { revision } => {
                // Locks in one order everywhere: tasks, then senders.
                let mut tasks = lock(&self.tasks);
                let mut senders = self
                    .sink
                    .revisions
                    .write()
                    .unwrap_or_else(|e| e.into_inner());
                if senders.get(&revision).is_some_and(|tx| tx.is_closed()) {
                    senders.remove(&revision);
                    tasks.remove(&revision);
                    drop((tasks, senders));
                    // A revision wanted again keeps its pool (and the requests queued
                    // there) for the task the next pass starts.
                    if !lock(&self.wanted).contains_key(&revision) {
                        self.platform.router.pools().remove_revision(&revision);
                    }
                }
            }
        }
    }

    async fn retire_all(&self, outcomes: &mut mpsc::UnboundedReceiver<Outcome>) {
        lock(&self.wanted).clear();
        let senders: Vec<_> = {
            let map = self
                .sink
                .revisions
                .read()
                .unwrap_or_else(|e| e.into_inner());
            map.values().cloned().collect()
        };
        for tx in &senders {
            let _ = tx.send(Message::Retire);
        }
        // Executions stop without recording: the next start resumes them.
        self.jobs.stop_all();
        while !lock(&self.tasks).is_empty() || self.jobs.running() > 0 {
            match outcomes.recv().await {
                Some(o) => self.on_outcome(o),
                None => break,
            }
        }
    }

    /// Starts a task for `revision` unless one runs; one retiring serves on instead.
    fn ensure_task(&self, plan: spec::RevisionPlan, check: bool) {
        let mut tasks = lock(&self.tasks);
        if let Some(task) = tasks.get_mut(&plan.name) {
            if task.retiring && !check {
                let senders = self
                    .sink
                    .revisions
                    .read()
                    .unwrap_or_else(|e| e.into_inner());
                if let Some(tx) = senders.get(&plan.name) {
                    if tx.send(Message::Resume).is_ok() {
                        task.retiring = false;
                    }
                }
            }
            return;
        }
        let name = plan.name.clone();
        let tx = revision::spawn(self.platform.clone(), plan, check, self.outcomes_tx.clone());
        self.sink
            .revisions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone(), tx);
        tasks.insert(name, Task { retiring: false });
    }

    /// Asks every task not in `keep` to retire, and remembers `keep`. A revision no
    /// longer wanted whose task has already ended (a failed check) loses its pool here.
    fn retire_others(&self, keep: HashMap<String, bool>) {
        let mut tasks = lock(&self.tasks);
        for name in lock(&self.wanted).keys() {
            if !keep.contains_key(name) && !tasks.contains_key(name) {
                self.platform.router.pools().remove_revision(name);
            }
        }
        let senders = self
            .sink
            .revisions
            .read()
            .unwrap_or_else(|e| e.into_inner());
        for (name, task) in tasks.iter_mut() {
            if !keep.contains_key(name) && !task.retiring {
                if let Some(tx) = senders.get(name) {
                    tracing::info!(revision = %name, "retiring");
                    let _ = tx.send(Message::Retire);
                    task.retiring = true;
                }
            }
        }
        *lock(&self.wanted) = keep;
    }
}

/// What the controller knows of a revision's task.
#[derive(Clone, Copy, Debug)]
struct Task {
    /// Asked to retire.
    retiring: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
