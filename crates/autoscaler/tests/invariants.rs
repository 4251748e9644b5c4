//! Seeded random loads and settings (deterministic: a fixed xorshift generator), checking
//! what must hold at every evaluation whatever the traffic.

mod common;

use std::time::Duration;

use autoscaler::{Autoscaler, Config, RevisionSettings, Sample};
use common::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A piecewise-constant load: `(start, level)` segments.
fn random_load(rng: &mut Rng, length: u64) -> Vec<(u64, f64)> {
    let mut t = 0;
    let mut segments = Vec::new();
    while t < length {
        let level = match rng.below(4) {
            0 => 0.0,
            1 => rng.below(20) as f64,
            2 => rng.below(300) as f64,
            _ => rng.below(3000) as f64,
        };
        segments.push((t, level));
        t += 1 + rng.below(120);
    }
    segments
}

fn level(segments: &[(u64, f64)], t: Duration) -> f64 {
    let s = t.as_secs();
    segments
        .iter()
        .rev()
        .find(|&&(start, _)| start <= s)
        .map_or(0.0, |&(_, l)| l)
}

#[test]
fn invariants_hold_under_random_load() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..60 {
        let min = rng.below(4) as u32;
        let max = if rng.below(5) == 0 {
            0
        } else {
            min.max(1) + rng.below(60) as u32
        };
        let s = RevisionSettings {
            concurrency: [1, 10, 80, 250][rng.below(4) as usize],
            min_instances: min,
            max_instances: max,
            cpu_limit_millis: [0, 1000, 2000][rng.below(3) as usize],
        };
        let cfg = if rng.below(2) == 0 {
            Config::default()
        } else {
            no_delay()
        };
        let segments = random_load(&mut rng, 1200);
        let mut sim = Sim::new(cfg.clone(), s);
        sim.startup = secs(rng.below(6));
        let cpu_per_request = rng.below(200) as f64;
        sim.run(secs(1200), |t| Demand {
            concurrency: level(&segments, t),
            cpu_millis: level(&segments, t) * cpu_per_request,
        });

        let quiet = cfg.stable_window + cfg.scale_to_zero_grace;
        let mut previous: Option<&autoscaler::Decision> = None;
        for (at, ready, d) in &sim.log {
            let ctx = format!("round {round} at {at:?}: {s:?} ready {ready} {d:?}");
            assert!(d.desired >= min, "{ctx}");
            if max > 0 {
                assert!(d.desired <= max, "{ctx}");
            }
            // At most halving per evaluation.
            let floor = ready.max(&1) / 2;
            assert!(
                d.desired >= floor.min(if max > 0 { max } else { u32::MAX }),
                "{ctx}"
            );
            // Load present: at least one instance.
            if level(&segments, *at) > 0.0 {
                assert!(d.desired >= 1, "{ctx}");
            }
            // Zero only after a quiet stable window and grace.
            if d.desired == 0 {
                let from = at.saturating_sub(quiet);
                let mut t = from;
                while t <= *at {
                    assert_eq!(level(&segments, t), 0.0, "{ctx}: load at {t:?}");
                    t += secs(1);
                }
            }
            // Panic mode never decreases the count.
            if let Some(p) = previous {
                if p.panicking && d.panicking {
                    assert!(d.desired >= p.desired, "{ctx} after {p:?}");
                }
            }
            assert!(d.stable_concurrency.is_finite() && d.panic_concurrency.is_finite());
            previous = Some(d);
        }
    }
}

#[test]
fn garbage_samples_are_harmless() {
    let mut a = Autoscaler::new(Config::default(), RevisionSettings::default());
    for (i, v) in [f64::NAN, f64::INFINITY, -5.0, f64::NEG_INFINITY, 1e300]
        .into_iter()
        .enumerate()
    {
        a.record(Sample {
            at: secs(i as u64),
            in_flight: v,
            cpu_millis: v,
        });
        let d = a.decide(secs(i as u64), 1, 0);
        assert!(d.desired <= 100);
    }
    // Time going backwards is taken as no time passing.
    a.record(Sample {
        at: secs(1),
        in_flight: 3.0,
        cpu_millis: 0.0,
    });
    let d = a.decide(secs(0), 1, 0);
    assert!(d.desired >= 1);
}
