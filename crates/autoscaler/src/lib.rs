//! homerun's autoscaler: how many instances a revision should have, and which to stop.
//!
//! It is a pure module. It does no I/O, never sleeps and has no clock: every call takes
//! the time as a [`Duration`](std::time::Duration) since an epoch the caller chooses, so tests drive it with a
//! fake clock and replay minutes of traffic in microseconds. One [`Autoscaler`] serves one
//! revision. The platform
//!
//! - [`record`](Autoscaler::record)s the revision's load (requests in flight plus requests
//!   queued in the activator, and CPU used) about every second and on every arrival and
//!   completion;
//! - calls [`on_arrival`](Autoscaler::on_arrival) when a request finds no free slot, and
//!   starts instances at once if it returns a higher count (scale from zero, bursts);
//! - calls [`decide`](Autoscaler::decide) every [`Config::tick`] (2 s) with the ready and
//!   starting instances, starts [`Decision::to_start`] instances, and stops those that
//!   [`to_stop`](Autoscaler::to_stop) names, draining busy ones first.
//!
//! # The algorithm
//!
//! It follows Knative Serving's Pod Autoscaler (KPA): `Scale` in
//! `pkg/autoscaler/scaling/autoscaler.go` and `handleScaleToZero` in
//! `pkg/reconciler/autoscaling/kpa/scaler.go`, with Knative's default settings, which are
//! Cloud Run's. Each evaluation:
//!
//! 1. **Observe.** Average the load, time-weighted, over the *stable window* (60 s) and
//!    the *panic window* (6 s, 10 % of the stable window); see [`window`].
//! 2. **Desired counts.** With a target per instance of `concurrency × 0.7`
//!    (`target_utilization`), `stable = ceil(stable average / target)` and
//!    `panic = ceil(panic average / target)`. Cloud Run also scales on CPU, aiming at 60 %
//!    of the CPU limit: `cpu = ceil(stable CPU average / (0.6 × limit))`, and the stable
//!    count is the larger of the two. CPU counts only while requests come (an instance
//!    without requests does not hold the revision up), and only over the stable window: a
//!    saturated instance is at most 1/0.6 of its target, which is no burst.
//! 3. **Rate limits.** Both counts are kept within `[floor(ready / 2), ceil(1000 × ready)]`
//!    (`max_scale_down_rate`, `max_scale_up_rate`; `ready` counts at least 1).
//! 4. **Panic mode.** When `panic count / ready ≥ 2` (`panic_threshold`, 200 %) the
//!    autoscaler panics: it asks for the larger of the stable and panic counts and never
//!    less than it asked for before, until a whole stable window has passed since the
//!    panic condition last held. Bursts are met within seconds and not undone before the
//!    stable window has caught up with them.
//! 5. **Scale-down delay.** A lower count is applied only once it has held for
//!    `idle_timeout` (Knative's `scale-down-delay`): instances the load no longer needs
//!    stay idle and warm for that long, then go. Increases apply at once.
//! 6. **Bounds.** Clamp to `[min_instances, max_instances]`.
//! 7. **Scale to zero.** Zero only once the stable window saw no request *and* the
//!    `scale_to_zero_grace` (30 s) passed after it; until then the last instance stays.
//!    With the defaults the last instance is stopped 60 s + max(30 s, 60 s) = 2 minutes
//!    after the last request (to within a tick).
//!
//! Activation: requests queued in the activator count as load, so demand is visible
//! before any instance exists; and the first request queued at zero makes
//! [`on_arrival`](Autoscaler::on_arrival) ask for one instance at once (Knative's
//! activation scale of 1: any load asks for at least one), without waiting for the tick.
//! Later arrivals that outgrow the desired instances at full concurrency raise the count
//! the same way and start panic mode.
//!
//! Stopping (see [`stop`]): the surplus over the desired count goes, idle instances first;
//! min instances are always kept warm; and, the container contract, no instance above min
//! instances stays idle longer than `max_idle` (15 minutes).
//!
//! Every window, period and ratio is in [`Config`], whose [`Default`] is Cloud Run's;
//! [`Config::speed_up`] divides every duration for fast platform tests.

pub mod config;
pub mod delay;
pub mod scaler;
pub mod stop;
pub mod window;

pub use config::{Config, InvalidConfig, RevisionSettings};
pub use scaler::{Autoscaler, Decision, Reason};
pub use stop::InstanceIdle;
pub use window::Sample;
