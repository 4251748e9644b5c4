//! What the autoscaler is told: platform-wide [`Config`] (windows, periods, targets; the
//! `homerun up` flags) and per-revision [`RevisionSettings`] (concurrency, min and max
//! instances, CPU limit; from the revision template).

use std::fmt;
use std::time::Duration;

/// Platform-wide tuning. [`Config::default`] is Cloud Run's and Knative's behaviour;
/// tests shrink every duration with [`Config::speed_up`].
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Window over which the stable concurrency and CPU averages are taken
    /// (Knative `stable-window`, 60 s).
    pub stable_window: Duration,
    /// Shorter window that detects bursts (Knative `panic-window-percentage` 10 % of the
    /// stable window: 6 s).
    pub panic_window: Duration,
    /// Panic mode starts when the panic window asks for this many times the ready
    /// instances (Knative `panic-threshold-percentage` 200 %: 2.0).
    pub panic_threshold: f64,
    /// Fraction of the container concurrency each instance is aimed at
    /// (Knative `container-concurrency-target-percentage` 70 %: 0.7).
    pub target_utilization: f64,
    /// Fraction of the CPU limit each instance is aimed at (Cloud Run: 60 %: 0.6).
    pub cpu_target: f64,
    /// At most this many times the ready instances per evaluation
    /// (Knative `max-scale-up-rate`, 1000).
    pub max_scale_up_rate: f64,
    /// At least the ready instances divided by this per evaluation
    /// (Knative `max-scale-down-rate`, 2: halve at most).
    pub max_scale_down_rate: f64,
    /// After the stable window saw no request, the last instance stays this much longer
    /// before the revision goes to zero (Knative `scale-to-zero-grace-period`, 30 s).
    pub scale_to_zero_grace: Duration,
    /// An instance the load no longer needs is kept (idle, warm) this long before it is
    /// stopped: the desired count only falls once it has been lower for this long
    /// (Knative `scale-down-delay`). Zero stops surplus instances at once.
    pub idle_timeout: Duration,
    /// No instance above min instances is kept idle longer than this (the container
    /// contract: 15 minutes).
    pub max_idle: Duration,
    /// How often the platform calls [`Autoscaler::decide`](crate::Autoscaler::decide)
    /// (Knative's tick, 2 s). The autoscaler never waits for it: it is here so the
    /// platform reads every period from one place.
    pub tick: Duration,
    /// Width of one bucket of the windowed averages (Knative: 1 s). Both windows should be
    /// several buckets wide.
    pub granularity: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            stable_window: Duration::from_secs(60),
            panic_window: Duration::from_secs(6),
            panic_threshold: 2.0,
            target_utilization: 0.7,
            cpu_target: 0.6,
            max_scale_up_rate: 1000.0,
            max_scale_down_rate: 2.0,
            scale_to_zero_grace: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_idle: Duration::from_secs(15 * 60),
            tick: Duration::from_secs(2),
            granularity: Duration::from_secs(1),
        }
    }
}

impl Config {
    /// The same configuration with every duration divided by `factor` (at least 1 ms
    /// each), so platform tests see a minute of scaling behaviour in a fraction of the
    /// time. Ratios and rates are unchanged.
    pub fn speed_up(&self, factor: u32) -> Self {
        let f = factor.max(1);
        let s = |d: Duration| (d / f).max(Duration::from_millis(1));
        Self {
            stable_window: s(self.stable_window),
            panic_window: s(self.panic_window),
            scale_to_zero_grace: s(self.scale_to_zero_grace),
            idle_timeout: if self.idle_timeout.is_zero() {
                Duration::ZERO
            } else {
                s(self.idle_timeout)
            },
            max_idle: s(self.max_idle),
            tick: s(self.tick),
            granularity: s(self.granularity),
            ..self.clone()
        }
    }

    /// Checks the values make sense together: positive windows, the panic window within
    /// the stable window, at most 10 000 buckets per window, fractions in (0, 1], rates above 1, and an idle instance
    /// stopped by the scaling delays before `max_idle` would force it out.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let bad = |m: &str| Err(InvalidConfig(m.to_string()));
        if self.granularity.is_zero() || self.tick.is_zero() {
            return bad("granularity and tick must be positive");
        }
        if self.panic_window < self.granularity || self.stable_window < self.panic_window {
            return bad("need granularity <= panic_window <= stable_window");
        }
        if self.stable_window.as_nanos() / self.granularity.as_nanos() > 10_000 {
            return bad("stable_window must be at most 10000 granularity buckets");
        }
        if self.panic_threshold.is_nan() || self.panic_threshold < 1.0 {
            return bad("panic_threshold must be at least 1.0");
        }
        for (name, v) in [
            ("target_utilization", self.target_utilization),
            ("cpu_target", self.cpu_target),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return Err(InvalidConfig(format!("{name} must be in (0, 1]")));
            }
        }
        if !(self.max_scale_up_rate > 1.0 && self.max_scale_down_rate > 1.0) {
            return bad("max_scale_up_rate and max_scale_down_rate must be above 1.0");
        }
        let quiet_to_zero = self.stable_window + self.scale_to_zero_grace.max(self.idle_timeout);
        if quiet_to_zero > self.max_idle {
            return bad(
                "stable_window + max(scale_to_zero_grace, idle_timeout) must not exceed max_idle",
            );
        }
        Ok(())
    }
}

/// A configuration that [`Config::validate`] refused, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidConfig(pub String);

impl fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid autoscaler configuration: {}", self.0)
    }
}

impl std::error::Error for InvalidConfig {}

/// The scaling settings of one revision (its template's `maxInstanceRequestConcurrency`,
/// `scaling` and CPU limit). Revisions are immutable, so these never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevisionSettings {
    /// Requests one instance serves at once. 0 is read as Knative's "unlimited", aimed at
    /// Knative's default target of 100.
    pub concurrency: u32,
    /// Instances kept even without traffic (Cloud Run keeps them warm whatever happens).
    pub min_instances: u32,
    /// Upper bound; 0 means no bound (as Knative's `maxScale`).
    pub max_instances: u32,
    /// CPU limit of one instance in millicores; 0 turns CPU-based scaling off.
    pub cpu_limit_millis: u32,
}

impl Default for RevisionSettings {
    /// Cloud Run's defaults: concurrency 80, 0 to 100 instances, 1 vCPU.
    fn default() -> Self {
        Self {
            concurrency: 80,
            min_instances: 0,
            max_instances: 100,
            cpu_limit_millis: 1000,
        }
    }
}

impl RevisionSettings {
    /// The concurrency an instance is aimed at: `concurrency × target_utilization`.
    pub fn target_concurrency(&self, config: &Config) -> f64 {
        let c = if self.concurrency == 0 {
            100
        } else {
            self.concurrency
        };
        f64::from(c) * config.target_utilization
    }

    /// The CPU an instance is aimed at, in millicores (`None`: CPU scaling off).
    pub fn target_cpu_millis(&self, config: &Config) -> Option<f64> {
        (self.cpu_limit_millis > 0).then(|| f64::from(self.cpu_limit_millis) * config.cpu_target)
    }

    /// `n` within `[min_instances, max_instances]` (the maximum wins if they cross,
    /// as Knative's `applyBounds`).
    pub fn bound(&self, n: u32) -> u32 {
        let n = n.max(self.min_instances);
        if self.max_instances > 0 {
            n.min(self.max_instances)
        } else {
            n
        }
    }
}
