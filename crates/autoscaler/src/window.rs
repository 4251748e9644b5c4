//! Time-weighted windowed averages of the revision's load.
//!
//! The platform reports the revision's load as a step function: a [`Sample`] says "from
//! `at` on, this many requests are in flight (or queued) and the instances use this much
//! CPU", until the next sample. [`Load`] integrates that function into fixed-width buckets
//! (Knative's `TimedFloat64Buckets`, 1 s wide by default) and answers "what was the average
//! over the last `w`" for the stable and the panic window alike.
//!
//! Being time-weighted, the average does not depend on how often samples come: a sample on
//! every arrival and completion gives the exact mean concurrency (what Knative's
//! queue-proxy measures), a sample per second gives a sampled approximation of it. A window
//! older than the first sample is averaged over the time actually observed, as Knative does,
//! so a fresh revision is not diluted by the time before it existed. The oldest bucket of a
//! window is counted in proportion to its overlap, so the window is `w` long exactly.

use std::time::Duration;

/// One observation of the whole revision, at `at` (time since an epoch the caller chooses;
/// tests use a fake clock).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub at: Duration,
    /// Requests in flight on the instances plus requests waiting in the activator queue.
    pub in_flight: f64,
    /// CPU used by all the revision's instances, in millicores (1000 = one busy core).
    pub cpu_millis: f64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Which bucket (`time / granularity`) the slot holds; slots of other indices are stale.
    index: u64,
    /// ∫ in_flight dt over the observed part of the bucket, in request-seconds.
    concurrency: f64,
    /// ∫ cpu dt, in millicore-seconds.
    cpu: f64,
}

/// Averages of a [`Sample`] step function over trailing windows.
#[derive(Debug, Clone)]
pub struct Load {
    granularity: u64,
    buckets: Vec<Bucket>,
    /// The sample in force and the time up to which it has been integrated.
    current: Option<(Sample, u64)>,
    first_at: u64,
}

/// Windowed averages at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Averages {
    pub concurrency: f64,
    pub cpu_millis: f64,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Load {
    /// Buckets `granularity` wide, enough of them for windows up to `longest`.
    pub fn new(granularity: Duration, longest: Duration) -> Self {
        let granularity = nanos(granularity).max(1);
        let slots = nanos(longest).div_ceil(granularity) + 2;
        Self {
            granularity,
            buckets: vec![
                Bucket {
                    index: u64::MAX,
                    ..Bucket::default()
                };
                usize::try_from(slots).unwrap_or(usize::MAX)
            ],
            current: None,
            first_at: 0,
        }
    }

    /// The value in force now, if any sample came.
    pub fn current(&self) -> Option<Sample> {
        self.current.map(|(s, _)| s)
    }

    /// Makes `sample` the value in force from `sample.at` on. A sample older than the
    /// previous one is taken as happening at the previous one's time.
    pub fn record(&mut self, sample: Sample) {
        let at = nanos(sample.at);
        match self.current {
            None => {
                self.first_at = at;
                self.current = Some((sample, at));
            }
            Some((_, until)) => {
                let at = at.max(until);
                self.advance_to(at);
                self.current = Some((sample, at));
            }
        }
    }

    /// Integrates the value in force up to `now`.
    pub fn advance(&mut self, now: Duration) {
        self.advance_to(nanos(now));
    }

    fn advance_to(&mut self, now: u64) {
        let Some((sample, mut t)) = self.current else {
            return;
        };
        // Buckets older than the ring would be overwritten anyway: skip them, so a long
        // quiet spell costs no more than one ring's worth of work.
        let ring = self.buckets.len() as u64 * self.granularity;
        if now.saturating_sub(t) > ring {
            t = t.max((now - ring) / self.granularity * self.granularity);
        }
        while t < now {
            let index = t / self.granularity;
            let end = ((index + 1) * self.granularity).min(now);
            let secs = (end - t) as f64 / 1e9;
            let bucket = self.slot(index);
            bucket.concurrency += sample.in_flight * secs;
            bucket.cpu += sample.cpu_millis * secs;
            t = end;
        }
        self.current = Some((sample, t));
    }

    fn slot(&mut self, index: u64) -> &mut Bucket {
        let len = self.buckets.len() as u64;
        let bucket = &mut self.buckets[(index % len) as usize];
        if bucket.index != index {
            *bucket = Bucket {
                index,
                ..Bucket::default()
            };
        }
        bucket
    }

    /// Averages over `[now - window, now]` (call [`Load::advance`] to `now` first).
    /// Nothing recorded yet: zeros. No time observed yet: the value in force.
    pub fn average(&self, now: Duration, window: Duration) -> Averages {
        let Some((sample, until)) = self.current else {
            return Averages::default();
        };
        let now = nanos(now).min(until);
        let start = now.saturating_sub(nanos(window)).max(self.first_at);
        if start >= now {
            return Averages {
                concurrency: sample.in_flight,
                cpu_millis: sample.cpu_millis,
            };
        }
        let g = self.granularity;
        let len = self.buckets.len() as u64;
        let mut sum = Averages::default();
        for index in start / g..=(now - 1) / g {
            let bucket = &self.buckets[(index % len) as usize];
            if bucket.index != index {
                continue;
            }
            // The bucket's integral covers [max(index·g, first_at), min((index+1)·g, now)];
            // count the part of it after `start`, assuming the load even within a bucket.
            let lo = (index * g).max(self.first_at);
            let hi = ((index + 1) * g).min(now);
            if hi <= lo {
                continue;
            }
            let share = (hi - lo.max(start)) as f64 / (hi - lo) as f64;
            sum.concurrency += bucket.concurrency * share;
            sum.cpu_millis += bucket.cpu * share;
        }
        let secs = (now - start) as f64 / 1e9;
        Averages {
            concurrency: sum.concurrency / secs,
            cpu_millis: sum.cpu_millis / secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(at_ms: u64, in_flight: f64) -> Sample {
        Sample {
            at: Duration::from_millis(at_ms),
            in_flight,
            cpu_millis: in_flight * 100.0,
        }
    }

    fn avg(load: &mut Load, now_ms: u64, window_s: u64) -> Averages {
        let now = Duration::from_millis(now_ms);
        load.advance(now);
        load.average(now, Duration::from_secs(window_s))
    }

    #[test]
    fn constant_load_averages_to_itself() {
        let mut load = Load::new(Duration::from_secs(1), Duration::from_secs(60));
        load.record(s(500, 7.0));
        for now in [500, 700, 1_000, 6_500, 61_000, 200_300] {
            let a = avg(&mut load, now, 60);
            assert!((a.concurrency - 7.0).abs() < 1e-9, "{now}: {a:?}");
            assert!((a.cpu_millis - 700.0).abs() < 1e-6, "{now}: {a:?}");
        }
    }

    #[test]
    fn time_weighted_not_sample_weighted() {
        let mut load = Load::new(Duration::from_secs(1), Duration::from_secs(60));
        // 4 in flight for 1 s, then 0 for 3 s, with many samples in the first second.
        for ms in (0..1_000).step_by(10) {
            load.record(s(ms, 4.0));
        }
        load.record(s(1_000, 0.0));
        let a = avg(&mut load, 4_000, 60);
        assert!((a.concurrency - 1.0).abs() < 1e-9, "{a:?}");
    }

    #[test]
    fn windows_forget_old_load_exactly() {
        let mut load = Load::new(Duration::from_secs(1), Duration::from_secs(60));
        load.record(s(0, 10.0));
        load.record(s(30_000, 0.0));
        // 6 s window entirely after the load: zero.
        assert_eq!(avg(&mut load, 40_000, 6).concurrency, 0.0);
        // 60 s window at 60 s: half of it loaded.
        assert!((avg(&mut load, 60_000, 60).concurrency - 5.0).abs() < 1e-9);
        // At 89.5 s the window starts at 29.5 s: half a second of load left.
        let a = avg(&mut load, 89_500, 60).concurrency;
        assert!((a - 0.5 * 10.0 / 60.0).abs() < 1e-9, "{a}");
        assert_eq!(avg(&mut load, 90_000, 60).concurrency, 0.0);
    }

    #[test]
    fn ring_wraps_without_stale_buckets() {
        let mut load = Load::new(Duration::from_secs(1), Duration::from_secs(6));
        load.record(s(0, 3.0));
        load.record(s(2_000, 0.0));
        // Long silence, then a second burst; the old bucket slots must not leak in.
        load.record(s(100_000, 1.0));
        let a = avg(&mut load, 103_000, 6).concurrency;
        assert!((a - 0.5).abs() < 1e-9, "{a}");
    }
}
