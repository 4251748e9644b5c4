//! Which instances to stop.
//!
//! Two rules, both bounded below by min instances (Cloud Run keeps those warm whatever
//! happens):
//!
//! 1. **Surplus.** Instances beyond the desired count are stopped. The desired count has
//!    already waited out the stable window, panic mode and the scale-down delay
//!    (`idle_timeout`), so the surplus goes now. Idle instances go first, longest idle
//!    first; if the surplus is larger than the idle instances, busy ones follow, newest
//!    first (the caller lists instances oldest first), and the platform drains them (out of
//!    routing, in-flight requests finish, then SIGTERM).
//! 2. **Contract.** An instance idle for `max_idle` (15 minutes) is stopped even if the
//!    desired count still counts it.

use std::time::Duration;

/// One instance of the revision as the platform sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceIdle<Id> {
    pub id: Id,
    /// Since when it has had no request in flight; `None` while it serves one (or starts).
    pub idle_since: Option<Duration>,
}

/// The instances to stop, in the order to stop them. `instances` are all the revision's
/// instances that count towards the desired count, oldest first.
pub fn select<Id: Clone>(
    now: Duration,
    desired: u32,
    min_instances: u32,
    max_idle: Duration,
    instances: &[InstanceIdle<Id>],
) -> Vec<Id> {
    let n = instances.len();
    let floor = usize::try_from(min_instances).unwrap_or(usize::MAX);
    let removable = n.saturating_sub(floor);
    let surplus = n
        .saturating_sub(usize::try_from(desired).unwrap_or(usize::MAX))
        .min(removable);

    // Idle ones longest idle first (stable, so ties keep the oldest first), then busy
    // ones newest first.
    let mut idle: Vec<(Duration, usize)> = instances
        .iter()
        .enumerate()
        .filter_map(|(i, inst)| inst.idle_since.map(|since| (since, i)))
        .collect();
    idle.sort_by_key(|&(since, _)| since);
    let busy = instances
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, inst)| inst.idle_since.is_none())
        .map(|(i, _)| i);
    let order = idle.iter().map(|&(_, i)| i).chain(busy);

    let too_long_idle = idle
        .iter()
        .filter(|&&(since, _)| now.saturating_sub(since) >= max_idle)
        .count();
    let count = surplus.max(too_long_idle.min(removable));
    order.take(count).map(|i| instances[i].id.clone()).collect()
}
