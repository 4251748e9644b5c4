//! The per-revision autoscaler: Knative's KPA decision (`pkg/autoscaler/scaling/
//! autoscaler.go`, `Scale`), Cloud Run's CPU target, the scale-down delay, min and max
//! instances and the scale-to-zero grace (`pkg/reconciler/autoscaling/kpa/scaler.go`,
//! `handleScaleToZero`). The crate documentation walks through the algorithm.

use std::time::Duration;

use crate::config::{Config, RevisionSettings};
use crate::delay::ScaleDownDelay;
use crate::stop::{self, InstanceIdle};
use crate::window::{Load, Sample};

/// Why the desired count is what it is (for logs and status; the count is what matters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Stable-window concurrency over the target.
    Concurrency,
    /// Stable-window CPU over the CPU target asked for more than concurrency did.
    Cpu,
    /// Panic mode: the larger of the stable and panic counts, never decreasing.
    Panic,
    /// The stable count was higher than the scale-up rate allows this evaluation.
    ScaleUpLimited,
    /// The stable count was lower than the scale-down rate allows this evaluation.
    ScaleDownLimited,
    /// A lower count has not yet held for `idle_timeout`.
    ScaleDownDelay,
    /// Raised to min instances.
    MinInstances,
    /// Lowered to max instances.
    MaxInstances,
    /// The load is gone, but the last instance stays until the stable window saw no
    /// request and the scale-to-zero grace passed.
    ScaleToZeroGrace,
    /// No load and nothing to keep: zero instances.
    ScaleToZero,
}

/// The outcome of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// Instances the revision should have (ready plus starting).
    pub desired: u32,
    /// Whether panic mode is on.
    pub panicking: bool,
    pub reason: Reason,
    /// Average requests in flight or queued over the stable window.
    pub stable_concurrency: f64,
    /// The same over the panic window.
    pub panic_concurrency: f64,
    /// Average CPU over the stable window, in millicores.
    pub stable_cpu_millis: f64,
}

impl Decision {
    /// Instances to start now, given those ready and those already starting.
    pub fn to_start(&self, ready: u32, starting: u32) -> u32 {
        self.desired.saturating_sub(ready.saturating_add(starting))
    }
}

#[derive(Debug, Clone, Copy)]
struct Panic {
    /// The last evaluation over the panic threshold (Knative's `panicTime`).
    last_over: Duration,
    /// The count panic mode holds (Knative's `maxPanicPods`).
    max_pods: u32,
}

/// The autoscaler of one revision. Pure: the caller supplies the time (as a [`Duration`]
/// since an epoch of its choosing) and the observations, and applies the decisions.
#[derive(Debug, Clone)]
pub struct Autoscaler {
    config: Config,
    settings: RevisionSettings,
    load: Load,
    delay: ScaleDownDelay,
    panic: Option<Panic>,
    /// The last time a request was seen in flight or queued.
    traffic_until: Option<Duration>,
    /// The count last asked for, by `decide` or `on_arrival`.
    last_desired: u32,
}

/// `ceil`, except that values within rounding noise of an integer are that integer (an
/// average of exactly 14 over a target of 7 must ask for 2, not 3).
fn ceil(x: f64) -> f64 {
    let r = x.round();
    if (x - r).abs() <= 1e-9 * r.abs().max(1.0) {
        r.max(0.0)
    } else {
        x.ceil().max(0.0)
    }
}

impl Autoscaler {
    pub fn new(config: Config, settings: RevisionSettings) -> Self {
        let longest = config.stable_window.max(config.panic_window);
        Self {
            load: Load::new(config.granularity, longest),
            delay: ScaleDownDelay::new(config.idle_timeout),
            config,
            settings,
            panic: None,
            traffic_until: None,
            last_desired: 0,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn settings(&self) -> &RevisionSettings {
        &self.settings
    }

    /// The count last asked for by [`Autoscaler::decide`] or [`Autoscaler::on_arrival`].
    pub fn desired(&self) -> u32 {
        self.last_desired
    }

    /// Records the revision's load from `sample.at` on. Call it about every second and
    /// whenever the load changes (each arrival and completion) for an exact average.
    /// Negative or non-finite values count as zero.
    pub fn record(&mut self, sample: Sample) {
        let clean = |v: f64| if v.is_finite() && v > 0.0 { v } else { 0.0 };
        let sample = Sample {
            at: sample.at,
            in_flight: clean(sample.in_flight),
            cpu_millis: clean(sample.cpu_millis),
        };
        let was_busy = self.load.current().is_some_and(|s| s.in_flight > 0.0);
        if was_busy || sample.in_flight > 0.0 {
            self.saw_traffic(sample.at);
        }
        self.load.record(sample);
    }

    fn saw_traffic(&mut self, at: Duration) {
        self.traffic_until = Some(self.traffic_until.map_or(at, |t| t.max(at)));
    }

    fn last_traffic(&self, now: Duration) -> Option<Duration> {
        if self.load.current().is_some_and(|s| s.in_flight > 0.0) {
            Some(now)
        } else {
            self.traffic_until
        }
    }

    /// A request found no free slot and waits in the activator queue, now `queued` deep.
    /// Returns the new desired count when it must rise at once, without waiting for the
    /// next tick: the activation from zero (the first queued request asks for one
    /// instance) and bursts beyond what the desired instances can hold at full
    /// concurrency. Demand is the larger of the last recorded in-flight count and
    /// `queued`, so record the arrival's sample first. A raise above one instance starts
    /// panic mode, so the next evaluations cannot undo it before the stable window
    /// catches up.
    pub fn on_arrival(&mut self, now: Duration, queued: u32) -> Option<u32> {
        self.saw_traffic(now);
        let in_flight = self.load.current().map_or(0.0, |s| s.in_flight);
        let demand = in_flight.max(f64::from(queued));
        // Full concurrency per instance here (not the 70 % target): this is the least
        // that serves every waiting request; the next evaluation adds the headroom.
        // Unlimited concurrency (0): one instance takes any burst.
        let needed = match self.settings.concurrency {
            0 => 1.0,
            c => ceil(demand / f64::from(c)).max(1.0),
        };
        let k = self.settings.bound(needed as u32);
        if k <= self.last_desired {
            return None;
        }
        if k > 1 {
            let held = self.panic.map_or(0, |p| p.max_pods);
            self.panic = Some(Panic {
                last_over: now,
                max_pods: held.max(k),
            });
        }
        self.last_desired = k;
        Some(k)
    }

    /// Evaluates the desired count at `now` (every `tick`; any time is fine), given the
    /// instances ready to serve and those still starting.
    pub fn decide(&mut self, now: Duration, ready: u32, starting: u32) -> Decision {
        let cfg = &self.config;
        self.load.advance(now);
        let stable = self.load.average(now, cfg.stable_window);
        let panic = self.load.average(now, cfg.panic_window);

        // Knative: desired pods = ceil(observed / target per pod), for both windows.
        let target = self.settings.target_concurrency(cfg);
        let dspc_concurrency = ceil(stable.concurrency / target);
        let dppc = ceil(panic.concurrency / target);
        // Cloud Run's CPU target, on the stable window only, while requests come.
        let dspc_cpu = match self.settings.target_cpu_millis(cfg) {
            Some(t) if stable.concurrency > 0.0 => ceil(stable.cpu_millis / t),
            _ => 0.0,
        };
        let dspc = dspc_concurrency.max(dspc_cpu);

        // Rate limits relative to the ready pods (at least one), as Knative.
        let ready_pods = f64::from(ready.max(1));
        let max_up = (cfg.max_scale_up_rate * ready_pods).ceil();
        let max_down = (ready_pods / cfg.max_scale_down_rate).floor();
        let stable_count = dspc.max(max_down).min(max_up) as u32;
        let panic_count = dppc.max(max_down).min(max_up) as u32;

        // Panic mode: entered when the panic window asks for `panic_threshold` times the
        // ready pods, extended while it does, left a stable window after it last did.
        let over = dppc / ready_pods >= cfg.panic_threshold;
        if over {
            self.panic = Some(Panic {
                last_over: now,
                max_pods: self.panic.map_or(0, |p| p.max_pods),
            });
        } else if self
            .panic
            .is_some_and(|p| p.last_over + cfg.stable_window < now)
        {
            self.panic = None;
        }

        let (mut desired, mut reason) = match &mut self.panic {
            Some(p) => {
                // Never decrease while panicking; provision for the larger window.
                p.max_pods = p.max_pods.max(stable_count).max(panic_count);
                (p.max_pods, Reason::Panic)
            }
            None => {
                let reason = if f64::from(stable_count) < dspc {
                    Reason::ScaleUpLimited
                } else if f64::from(stable_count) > dspc {
                    Reason::ScaleDownLimited
                } else if dspc_cpu > dspc_concurrency {
                    Reason::Cpu
                } else {
                    Reason::Concurrency
                };
                (stable_count, reason)
            }
        };

        // The delay remembers counts before the scale-down rate limit: that limit follows
        // the ready instances, which the delay itself keeps up, and remembering it would
        // hold every halving step for another whole delay.
        let wanted = match self.panic {
            Some(p) => p.max_pods,
            None => dspc.min(max_up) as u32,
        };
        let held = self.delay.apply(now, wanted);
        if held > desired {
            (desired, reason) = (held, Reason::ScaleDownDelay);
        }

        let bounded = self.settings.bound(desired);
        if bounded > desired {
            reason = Reason::MinInstances;
        } else if bounded < desired {
            reason = Reason::MaxInstances;
        }
        desired = bounded;

        if desired == 0 {
            // Knative's scale-to-zero: only once the stable window saw no request and the
            // grace passed; until then the last instance (if any) stays.
            let quiet = match self.last_traffic(now) {
                None => true,
                Some(t) => now >= t + self.config.stable_window + self.config.scale_to_zero_grace,
            };
            if !quiet && ready.saturating_add(starting) > 0 {
                (desired, reason) = (1, Reason::ScaleToZeroGrace);
            } else {
                reason = Reason::ScaleToZero;
            }
        }

        self.last_desired = desired;
        Decision {
            desired,
            panicking: self.panic.is_some(),
            reason,
            stable_concurrency: stable.concurrency,
            panic_concurrency: panic.concurrency,
            stable_cpu_millis: stable.cpu_millis,
        }
    }

    /// The instances to stop now, in order, given the desired count (from the last
    /// [`Decision`]) and every instance counting towards it, oldest first: the surplus
    /// over `desired` (idle ones first, longest idle first, then busy ones newest first,
    /// to be drained) and any instance idle for `max_idle`, never going below min
    /// instances.
    pub fn to_stop<Id: Clone>(
        &self,
        now: Duration,
        desired: u32,
        instances: &[InstanceIdle<Id>],
    ) -> Vec<Id> {
        stop::select(
            now,
            desired,
            self.settings.min_instances,
            self.config.max_idle,
            instances,
        )
    }
}
