//! Network namespaces attached ahead of time. Making one (namespace, veth pair, address,
//! routes: a dozen `ip` commands) is about a quarter of a cold start, so the platform keeps
//! a few ready and an instance takes one instead of waiting; a background thread refills
//! the pool. Pooled namespaces are named by pool ids, not instance ids; recovery after a
//! crash removes them like any other namespace of the bridge.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{Attachment, Network};

pub struct NetPool {
    network: Arc<Network>,
    target: usize,
    ready: Mutex<Vec<Attachment>>,
    next: AtomicU64,
    refilling: AtomicBool,
    closed: AtomicBool,
}

impl NetPool {
    /// A pool keeping `target` namespaces ready; it starts filling at once.
    pub fn new(network: Arc<Network>, target: usize) -> Arc<NetPool> {
        let pool = Arc::new(NetPool {
            network,
            target,
            ready: Mutex::new(Vec::new()),
            next: AtomicU64::new(0),
            refilling: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        pool.refill();
        pool
    }

    /// A ready namespace, if one is; the pool refills behind it.
    pub fn take(self: &Arc<Self>) -> Option<Attachment> {
        let taken = self.lock().pop();
        self.refill();
        taken
    }

    /// How many are ready now.
    pub fn ready(&self) -> usize {
        self.lock().len()
    }

    /// Releases every ready namespace and stops refilling (platform shutdown).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let ready: Vec<Attachment> = self.lock().drain(..).collect();
        for a in ready {
            if let Err(e) = a.release(&self.network) {
                tracing::warn!("releasing a pooled network namespace: {e}");
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Attachment>> {
        self.ready.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One refilling thread at a time, until the pool is full or closed.
    fn refill(self: &Arc<Self>) {
        if self.closed.load(Ordering::SeqCst) || self.refilling.swap(true, Ordering::SeqCst) {
            return;
        }
        let pool = self.clone();
        std::thread::spawn(move || {
            while !pool.closed.load(Ordering::SeqCst) && pool.ready() < pool.target {
                let id = format!(
                    "pool{}x{}",
                    std::process::id(),
                    pool.next.fetch_add(1, Ordering::Relaxed)
                );
                match pool.network.attach(&id) {
                    Ok(a) if !pool.closed.load(Ordering::SeqCst) => pool.lock().push(a),
                    Ok(a) => {
                        let _ = a.release(&pool.network);
                    }
                    Err(e) => {
                        // Instances then attach their own; the next take tries again.
                        tracing::warn!("filling the network namespace pool: {e}");
                        break;
                    }
                }
            }
            pool.refilling.store(false, Ordering::SeqCst);
        });
    }
}
