//! Per revision: its ready instances, their in-flight requests, and the activator queue.
//!
//! [`RevisionPool::acquire`] returns a [`Slot`] on the least-loaded instance that has a free
//! slot; an instance never has more slots taken than its concurrency. When no slot is free
//! the request waits in the revision's queue (FIFO). Its arrival is reported at once as
//! [`Demand`] so that the autoscaler can start instances (the scale-from-zero path). A
//! freed slot, or a new instance, is handed to the oldest waiter directly, so a newcomer
//! never overtakes the queue. A waiter gives up after the revision's queue wait
//! ([`RevisionSettings::queue_wait`]).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use crate::events::{Demand, Event, Events};

/// How the router speaks to a revision's instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// HTTP/1.1 (Cloud Run's default).
    #[default]
    Http1,
    /// HTTP/2 with prior knowledge (the container port is named `h2c`).
    H2c,
}

/// What the router needs to know about a revision.
#[derive(Debug, Clone, PartialEq)]
pub struct RevisionSettings {
    pub name: String,
    pub protocol: Protocol,
    /// The request timeout, counted from the request's arrival (queueing included).
    pub timeout: Duration,
    /// Mean time for an instance of this revision to become ready (0 if unknown).
    pub mean_startup: Duration,
    /// Overrides the queue wait computed from [`QueueConfig`] and `mean_startup`.
    pub queue_timeout: Option<Duration>,
}

impl RevisionSettings {
    /// Cloud Run's defaults: HTTP/1, 300 s timeout.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            protocol: Protocol::Http1,
            timeout: Duration::from_secs(300),
            mean_startup: Duration::ZERO,
            queue_timeout: None,
        }
    }

    /// How long a request may wait for a slot: the override, else the larger of
    /// `config.min_wait` and `config.startup_factor` × the mean startup time.
    pub fn queue_wait(&self, config: &QueueConfig) -> Duration {
        self.queue_timeout.unwrap_or_else(|| {
            config
                .min_wait
                .max(self.mean_startup.mul_f64(config.startup_factor))
        })
    }
}

/// Queue policy shared by all revisions.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    /// The shortest queue wait (Cloud Run: 10 s).
    pub min_wait: Duration,
    /// Queue wait as a multiple of the mean startup time (Cloud Run: 3.5).
    pub startup_factor: f64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            min_wait: Duration::from_secs(10),
            startup_factor: 3.5,
        }
    }
}

/// A ready instance as the controller gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Unique among the revision's instances; reported back in events.
    pub id: String,
    pub addr: SocketAddr,
    /// Most requests in flight at once (0 is taken as 1).
    pub concurrency: usize,
    /// Where the platform says how the instance ended, so that the requests it had in
    /// flight get the right answer (500 for an OOM kill, as the contract says; else 503).
    pub end: EndSignal,
}

/// How an instance ended, as the platform saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceEnd {
    /// Its container exited or was stopped.
    Exited,
    /// The kernel's OOM killer ended it: its memory limit was exceeded.
    OutOfMemory,
}

/// Shared between the platform, which [`send`](EndSignal::send)s how an instance ended,
/// and the router, which waits for that when a request to it fails. Clones are the same
/// signal.
#[derive(Debug, Clone, Default)]
pub struct EndSignal(Arc<watch::Sender<Option<InstanceEnd>>>);

impl EndSignal {
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells how the instance ended (the first word counts).
    pub fn send(&self, end: InstanceEnd) {
        self.0.send_if_modified(|v| {
            if v.is_none() {
                *v = Some(end);
                true
            } else {
                false
            }
        });
    }

    /// Waits at most `within` for the verdict.
    pub async fn wait(&self, within: Duration) -> Option<InstanceEnd> {
        let mut rx = self.0.subscribe();
        let verdict = tokio::time::timeout(within, rx.wait_for(Option::is_some)).await;
        match verdict {
            Ok(Ok(v)) => *v,
            _ => None,
        }
    }
}

impl PartialEq for EndSignal {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for EndSignal {}

#[derive(Debug)]
struct Instance {
    id: Arc<str>,
    addr: SocketAddr,
    concurrency: usize,
    end: EndSignal,
    /// Busy/idle changes so far (see [`Event::InstanceBusy`]'s `seq`); changed under the
    /// pool's lock.
    busy_seq: std::sync::atomic::AtomicU64,
    /// Requests in flight; watched by [`Drain`].
    in_flight: watch::Sender<usize>,
}

impl Instance {
    fn next_busy_seq(&self) -> u64 {
        self.busy_seq
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1
    }

    fn load(&self) -> usize {
        *self.in_flight.borrow()
    }
}

/// Why [`RevisionPool::acquire`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AcquireError {
    #[error("The request was aborted because there was no available instance.")]
    QueueTimeout,
    #[error("the revision was removed while the request waited")]
    RevisionRemoved,
}

/// A revision's counters, for the autoscaler and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionStats {
    pub revision: Arc<str>,
    /// Routable instances (draining ones excluded).
    pub instances: usize,
    /// Sum of the routable instances' concurrency.
    pub capacity: usize,
    /// Requests being served, draining instances included.
    pub in_flight: usize,
    /// Requests waiting in the activator queue.
    pub queued: usize,
}

struct Waiter {
    id: u64,
    tx: oneshot::Sender<Slot>,
}

struct State {
    settings: Arc<RevisionSettings>,
    instances: Vec<Arc<Instance>>,
    waiters: VecDeque<Waiter>,
    next_waiter: u64,
    /// Rotates ties between equally loaded instances.
    rotate: usize,
    in_flight: usize,
    removed: bool,
}

/// One revision's instances and queue.
pub struct RevisionPool {
    name: Arc<str>,
    config: QueueConfig,
    events: Arc<dyn Events>,
    state: Mutex<State>,
}

impl std::fmt::Debug for RevisionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevisionPool")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A slot on one instance; released (and handed to the next waiter) on drop.
pub struct Slot {
    pool: Arc<RevisionPool>,
    instance: Arc<Instance>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("revision", &self.pool.name)
            .field("instance", &self.instance.id)
            .field("addr", &self.instance.addr)
            .finish()
    }
}

impl Slot {
    pub fn addr(&self) -> SocketAddr {
        self.instance.addr
    }

    pub fn instance_id(&self) -> &Arc<str> {
        &self.instance.id
    }

    /// How the instance ended, told by the platform.
    pub fn end(&self) -> &EndSignal {
        &self.instance.end
    }

    pub fn revision(&self) -> &Arc<str> {
        &self.pool.name
    }

    pub fn pool(&self) -> &Arc<RevisionPool> {
        &self.pool
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.pool.release(&self.instance);
    }
}

/// Resolves once a removed instance has no request in flight.
#[derive(Debug)]
pub struct Drain(watch::Receiver<usize>);

impl Drain {
    pub fn in_flight(&self) -> usize {
        *self.0.borrow()
    }

    pub async fn wait(mut self) {
        // An error means every slot (and the pool's entry) is gone: drained too.
        let _ = self.0.wait_for(|n| *n == 0).await;
    }
}

/// Work decided under the lock, done after it: events and hand-offs.
#[derive(Default)]
struct After {
    events: Vec<Event>,
    handoffs: Vec<(oneshot::Sender<Slot>, Arc<Instance>)>,
}

impl RevisionPool {
    pub fn new(
        settings: RevisionSettings,
        config: QueueConfig,
        events: Arc<dyn Events>,
    ) -> Arc<Self> {
        Arc::new(Self {
            name: Arc::from(settings.name.as_str()),
            config,
            events,
            state: Mutex::new(State {
                settings: Arc::new(settings),
                instances: Vec::new(),
                waiters: VecDeque::new(),
                next_waiter: 0,
                rotate: 0,
                in_flight: 0,
                removed: false,
            }),
        })
    }

    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn settings(&self) -> Arc<RevisionSettings> {
        self.lock().settings.clone()
    }

    /// Replaces the settings (the name stays); applies to requests arriving afterwards.
    pub fn set_settings(&self, settings: RevisionSettings) {
        self.lock().settings = Arc::new(settings);
    }

    pub fn stats(&self) -> RevisionStats {
        let s = self.lock();
        RevisionStats {
            revision: self.name.clone(),
            instances: s.instances.len(),
            capacity: s.instances.iter().map(|i| i.concurrency).sum(),
            in_flight: s.in_flight,
            queued: s.waiters.len(),
        }
    }

    /// Adds a ready instance and hands its slots to waiting requests. An id already present
    /// is left as it is.
    pub fn add_instance(self: &Arc<Self>, endpoint: Endpoint) {
        let mut after = After::default();
        {
            let mut s = self.lock();
            if s.removed || s.instances.iter().any(|i| *i.id == *endpoint.id) {
                return;
            }
            s.instances.push(Arc::new(Instance {
                id: Arc::from(endpoint.id.as_str()),
                addr: endpoint.addr,
                concurrency: endpoint.concurrency.max(1),
                end: endpoint.end,
                busy_seq: Default::default(),
                in_flight: watch::Sender::new(0),
            }));
            self.dispatch(&mut s, &mut after);
        }
        self.finish(after);
    }

    /// Takes an instance out of routing; its in-flight requests finish. `None` if unknown.
    pub fn remove_instance(&self, id: &str) -> Option<Drain> {
        let mut s = self.lock();
        let at = s.instances.iter().position(|i| &*i.id == id)?;
        let instance = s.instances.remove(at);
        Some(Drain(instance.in_flight.subscribe()))
    }

    /// The ids of the routable instances.
    pub fn instance_ids(&self) -> Vec<Arc<str>> {
        self.lock().instances.iter().map(|i| i.id.clone()).collect()
    }

    /// Fails every waiting request and takes every instance out of routing.
    fn close(&self) {
        let mut s = self.lock();
        s.removed = true;
        s.instances.clear();
        s.waiters.clear();
    }

    /// A slot on the least-loaded instance, waiting in the queue if none is free. Dropping
    /// the future leaves the queue.
    pub async fn acquire(self: &Arc<Self>) -> Result<Slot, AcquireError> {
        let mut after = After::default();
        let (id, mut rx, wait) = {
            let mut s = self.lock();
            if s.removed {
                return Err(AcquireError::RevisionRemoved);
            }
            if s.waiters.is_empty() {
                if let Some(instance) = self.reserve(&mut s, &mut after) {
                    drop(s);
                    self.finish(after);
                    return Ok(Slot {
                        pool: self.clone(),
                        instance,
                    });
                }
            }
            let id = s.next_waiter;
            s.next_waiter += 1;
            let (tx, rx) = oneshot::channel();
            s.waiters.push_back(Waiter { id, tx });
            after.events.push(Event::Demand(Demand {
                revision: self.name.clone(),
                queued: s.waiters.len(),
                in_flight: s.in_flight,
            }));
            (id, rx, s.settings.queue_wait(&self.config))
        };
        self.finish(after);
        let mut guard = Queued {
            pool: self,
            id: Some(id),
        };
        match tokio::time::timeout(wait, &mut rx).await {
            Ok(Ok(slot)) => {
                guard.id = None;
                Ok(slot)
            }
            Ok(Err(_)) => Err(AcquireError::RevisionRemoved),
            Err(_) => {
                // Leave the queue first: after that nobody can hand us a slot, so whatever
                // is in the channel now is final.
                drop(guard);
                rx.try_recv().map_err(|_| AcquireError::QueueTimeout)
            }
        }
    }

    /// Takes a slot on the least-loaded instance with one free.
    fn reserve(&self, s: &mut State, after: &mut After) -> Option<Arc<Instance>> {
        let n = s.instances.len();
        if n == 0 {
            return None;
        }
        let start = s.rotate % n;
        let mut best: Option<(usize, usize)> = None;
        for k in 0..n {
            let at = (start + k) % n;
            let i = &s.instances[at];
            let load = i.load();
            if load < i.concurrency && !matches!(best, Some((_, l)) if l <= load) {
                best = Some((at, load));
            }
        }
        let (at, load) = best?;
        s.rotate = at + 1;
        s.in_flight += 1;
        let instance = s.instances[at].clone();
        instance.in_flight.send_modify(|n| *n += 1);
        if load == 0 {
            after.events.push(Event::InstanceBusy {
                revision: self.name.clone(),
                instance: instance.id.clone(),
                busy: true,
                seq: instance.next_busy_seq(),
            });
        }
        Some(instance)
    }

    /// Hands free slots to the oldest waiters.
    fn dispatch(&self, s: &mut State, after: &mut After) {
        loop {
            while s.waiters.front().is_some_and(|w| w.tx.is_closed()) {
                s.waiters.pop_front();
            }
            if s.waiters.is_empty() {
                return;
            }
            let Some(instance) = self.reserve(s, after) else {
                return;
            };
            let waiter = s.waiters.pop_front().expect("checked above");
            after.handoffs.push((waiter.tx, instance));
        }
    }

    fn release(self: &Arc<Self>, instance: &Arc<Instance>) {
        let mut after = After::default();
        {
            let mut s = self.lock();
            s.in_flight -= 1;
            let mut now = 0;
            instance.in_flight.send_modify(|n| {
                *n -= 1;
                now = *n;
            });
            if now == 0 {
                after.events.push(Event::InstanceBusy {
                    revision: self.name.clone(),
                    instance: instance.id.clone(),
                    busy: false,
                    seq: instance.next_busy_seq(),
                });
            }
            self.dispatch(&mut s, &mut after);
        }
        self.finish(after);
    }

    fn finish(self: &Arc<Self>, after: After) {
        for event in after.events {
            self.events.event(event);
        }
        for (tx, instance) in after.handoffs {
            // A waiter that gave up meanwhile drops the slot, which releases it again.
            let _ = tx.send(Slot {
                pool: self.clone(),
                instance,
            });
        }
    }
}

/// Removes a waiter from the queue when its request stops waiting.
struct Queued<'a> {
    pool: &'a RevisionPool,
    id: Option<u64>,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.pool.lock().waiters.retain(|w| w.id != id);
        }
    }
}

/// Every revision's pool, by name.
pub struct Pools {
    config: QueueConfig,
    events: Arc<dyn Events>,
    revisions: RwLock<std::collections::HashMap<Arc<str>, Arc<RevisionPool>>>,
}

impl std::fmt::Debug for Pools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pools")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Pools {
    pub fn new(config: QueueConfig, events: Arc<dyn Events>) -> Self {
        Self {
            config,
            events,
            revisions: RwLock::default(),
        }
    }

    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    pub fn get(&self, revision: &str) -> Option<Arc<RevisionPool>> {
        self.revisions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(revision)
            .cloned()
    }

    /// The revision's pool, created with default settings if the controller has not
    /// declared it yet (so its demand is still reported).
    pub fn pool(&self, revision: &str) -> Arc<RevisionPool> {
        if let Some(p) = self.get(revision) {
            return p;
        }
        let mut map = self.revisions.write().unwrap_or_else(|e| e.into_inner());
        map.entry(Arc::from(revision))
            .or_insert_with(|| {
                RevisionPool::new(
                    RevisionSettings::new(revision),
                    self.config.clone(),
                    self.events.clone(),
                )
            })
            .clone()
    }

    /// Declares a revision or updates its settings.
    pub fn set_revision(&self, settings: RevisionSettings) -> Arc<RevisionPool> {
        let pool = self.pool(&settings.name);
        pool.set_settings(settings);
        pool
    }

    /// Forgets a revision: waiting requests fail, instances leave routing (in-flight
    /// requests finish).
    pub fn remove_revision(&self, revision: &str) {
        let removed = self
            .revisions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(revision);
        if let Some(p) = removed {
            p.close();
        }
    }

    pub fn add_instance(&self, revision: &str, endpoint: Endpoint) {
        self.pool(revision).add_instance(endpoint);
    }

    pub fn remove_instance(&self, revision: &str, id: &str) -> Option<Drain> {
        self.get(revision)?.remove_instance(id)
    }

    pub fn stats(&self) -> Vec<RevisionStats> {
        let pools: Vec<_> = self
            .revisions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        pools.iter().map(|p| p.stats()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::NoEvents;

    fn ep(id: &str, port: u16, concurrency: usize) -> Endpoint {
        Endpoint {
            id: id.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            concurrency,
            end: EndSignal::new(),
        }
    }

    fn pool(queue: Duration) -> Arc<RevisionPool> {
        let mut s = RevisionSettings::new("r");
        s.queue_timeout = Some(queue);
        RevisionPool::new(s, QueueConfig::default(), Arc::new(NoEvents))
    }

    #[test]
    fn queue_wait_policy() {
        let c = QueueConfig::default();
        let mut s = RevisionSettings::new("r");
        assert_eq!(s.queue_wait(&c), Duration::from_secs(10));
        s.mean_startup = Duration::from_secs(4);
        assert_eq!(s.queue_wait(&c), Duration::from_secs(14));
        s.queue_timeout = Some(Duration::from_secs(1));
        assert_eq!(s.queue_wait(&c), Duration::from_secs(1));
    }

    #[tokio::test]
    async fn least_loaded_and_limits() {
        let p = pool(Duration::from_millis(50));
        p.add_instance(ep("a", 1, 2));
        p.add_instance(ep("b", 2, 1));
        let s1 = p.acquire().await.unwrap();
        let s2 = p.acquire().await.unwrap();
        assert_ne!(s1.instance_id(), s2.instance_id(), "least loaded first");
        let s3 = p.acquire().await.unwrap();
        assert_eq!(&**s3.instance_id(), "a");
        assert_eq!(p.acquire().await.unwrap_err(), AcquireError::QueueTimeout);
        assert_eq!(p.stats().queued, 0);
        drop(s3);
        let s4 = p.acquire().await.unwrap();
        assert_eq!(&**s4.instance_id(), "a");
        assert_eq!(p.stats().in_flight, 3);
        drop((s1, s2, s4));
        assert_eq!(p.stats().in_flight, 0);
    }

    #[tokio::test]
    async fn fifo_handoff_and_drain() {
        let p = pool(Duration::from_secs(30));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for k in 0..3 {
            let p2 = p.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let slot = p2.acquire().await.unwrap();
                tx.send(k).unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
                drop(slot);
            });
            // Let each one join the queue in order.
            while p.stats().queued < k + 1 {
                tokio::task::yield_now().await;
            }
        }
        p.add_instance(ep("a", 1, 1));
        for k in 0..3 {
            assert_eq!(rx.recv().await, Some(k));
        }
        let held = p.acquire().await.unwrap();
        let drain = p.remove_instance("a").unwrap();
        assert_eq!(drain.in_flight(), 1);
        assert_eq!(p.stats().instances, 0);
        let waiting = tokio::spawn(drain.wait());
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(held);
        waiting.await.unwrap();
    }

    #[tokio::test]
    async fn removed_revision_fails_waiters() {
        let pools = Pools::new(QueueConfig::default(), Arc::new(NoEvents));
        let p = pools.pool("r");
        let w = tokio::spawn({
            let p = p.clone();
            async move { p.acquire().await.map(|_| ()) }
        });
        while p.stats().queued == 0 {
            tokio::task::yield_now().await;
        }
        pools.remove_revision("r");
        assert_eq!(w.await.unwrap(), Err(AcquireError::RevisionRemoved));
    }
}
