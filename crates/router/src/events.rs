//! What the router tells the rest of the platform: demand for a revision (a request joined
//! its activator queue), instances going busy or idle, and instances that failed.

use std::sync::Arc;

/// A revision's queue grew or shrank. Sent at once when a request starts waiting (this is
/// the scale-from-zero signal) and again when a waiting request leaves the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demand {
    pub revision: Arc<str>,
    /// Requests waiting for a slot, this one included.
    pub queued: usize,
    /// Requests being served by the revision's instances.
    pub in_flight: usize,
}

/// Everything [`Events`] reports, as one value (for channels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Demand(Demand),
    /// An instance went from idle to serving (`busy`) or back; for CPU throttling and idle
    /// timers.
    InstanceBusy {
        revision: Arc<str>,
        instance: Arc<str>,
        busy: bool,
        /// Grows with each busy/idle change of the instance, counted under the pool's
        /// lock: events are sent after it is released, so two may arrive swapped, and
        /// the one with the lower `seq` is then stale.
        seq: u64,
    },
    /// The router could not talk to the instance (connection refused or closed
    /// mid-request). The router has already taken it out of routing.
    InstanceFailed {
        revision: Arc<str>,
        instance: Arc<str>,
        error: String,
    },
}

/// The router's callbacks. They are called from request paths (never under a lock) and
/// must return quickly: hand the event to a channel or an atomic.
pub trait Events: Send + Sync + 'static {
    fn event(&self, event: Event);
}

/// Drops every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

impl Events for NoEvents {
    fn event(&self, _: Event) {}
}

impl Events for tokio::sync::mpsc::UnboundedSender<Event> {
    fn event(&self, event: Event) {
        let _ = self.send(event);
    }
}

impl<F: Fn(Event) + Send + Sync + 'static> Events for F {
    fn event(&self, event: Event) {
        self(event)
    }
}
