//! Deterministic simulations of the autoscaler with a fake clock: steady load, steps,
//! bursts, decay, scale to zero, bounds, concurrency 1, CPU-bound load, scale from zero.

mod common;

use autoscaler::{Autoscaler, Config, Reason, RevisionSettings, Sample};
use common::*;

fn expected(load: f64, concurrency: u32) -> u32 {
    (load / (0.7 * f64::from(concurrency))).ceil() as u32
}

#[test]
fn steady_load_converges_to_load_over_target() {
    for (load, concurrency) in [
        (1.0, 80),
        (56.0, 80),
        (57.0, 80),
        (200.0, 80),
        (500.0, 80),
        (35.0, 10),
        (3.0, 1),
        (1000.0, 1000),
    ] {
        let mut sim = Sim::new(Config::default(), settings(concurrency, 0, 1000));
        sim.run(secs(300), |_| requests(load));
        let want = expected(load, concurrency);
        assert_eq!(
            sim.last().desired,
            want,
            "load {load} at concurrency {concurrency}"
        );
        assert_eq!(sim.ready, want, "load {load} at concurrency {concurrency}");
        // Converged, not oscillating: the last two minutes asked for the same count.
        assert!(sim.between(secs(180), secs(300)).all(|d| d.desired == want));
    }
}

#[test]
fn gentle_step_up_follows_the_stable_window_without_panic() {
    let mut sim = Sim::new(Config::default(), settings(80, 0, 100));
    sim.run(secs(120), |_| requests(100.0));
    assert_eq!(sim.last().desired, 2);
    // 100 → 150: the panic window asks for 3 of 2 ready, under 200 %.
    sim.run(secs(120), |_| requests(150.0));
    assert!(sim.between(secs(120), secs(240)).all(|d| !d.panicking));
    let reached = sim
        .log
        .iter()
        .find(|(at, _, d)| *at >= secs(120) && d.desired == 3)
        .map(|(at, _, _)| *at - secs(120))
        .expect("never reached 3");
    assert!(reached < secs(60), "took {reached:?}");
    assert_eq!(sim.last().desired, 3);
    assert_eq!(sim.last().reason, Reason::Concurrency);
}

#[test]
fn sharp_step_up_panics_and_reaches_the_new_count_within_seconds() {
    let mut sim = Sim::new(Config::default(), settings(80, 0, 100));
    sim.run(secs(120), |_| requests(50.0));
    assert_eq!(sim.last().desired, 1);
    sim.run(secs(180), |_| requests(300.0));
    let want = expected(300.0, 80);
    assert_eq!(want, 6);
    assert!(sim.at(secs(122)).panicking);
    let reached = sim
        .log
        .iter()
        .find(|(at, _, d)| *at >= secs(120) && d.desired >= want)
        .map(|(at, _, _)| *at - secs(120))
        .expect("never reached");
    assert!(reached <= secs(8), "took {reached:?}");
    assert_eq!(sim.last().desired, want);
    assert!(!sim.last().panicking);
}

#[test]
fn burst_panics_and_never_scales_down_while_panicking() {
    let cfg = Config::default();
    let mut sim = Sim::new(cfg.clone(), settings(80, 0, 100));
    let burst = secs(120)..secs(130);
    let load = move |t| requests(if burst.contains(&t) { 400.0 } else { 20.0 });
    sim.run(secs(600), load);

    let panicking: Vec<_> = sim.log.iter().filter(|(_, _, d)| d.panicking).collect();
    let (first, _, _) = panicking.first().expect("no panic");
    assert!(
        *first >= secs(120) && *first <= secs(124),
        "panic at {first:?}"
    );
    assert_eq!(
        sim.log.iter().map(|(_, _, d)| d.desired).max(),
        Some(expected(400.0, 80))
    );
    // In panic mode the count never decreases.
    for pair in panicking.windows(2) {
        assert!(pair[1].2.desired >= pair[0].2.desired, "{pair:?}");
    }
    // Panic lasts a stable window past the last evaluation over the threshold, which is
    // in the burst: nothing decreases before the burst's start plus the stable window.
    let peak_at = sim.log.iter().find(|(_, _, d)| d.desired == 8).unwrap().0;
    assert!(sim
        .between(peak_at, secs(120) + cfg.stable_window)
        .all(|d| d.desired == 8 && d.panicking));
    // Back to one instance, out of panic, once the burst left the stable window.
    assert_eq!(sim.last().desired, 1);
    assert!(!sim.last().panicking);
}

#[test]
fn decay_back_to_min_after_the_stable_window() {
    let mut sim = Sim::new(no_delay(), settings(80, 2, 100));
    sim.run(secs(180), |_| requests(500.0));
    assert_eq!(sim.last().desired, 9);
    sim.run(secs(120), |_| requests(0.0));
    // The stable average decays linearly over the window: halfway, 250 in flight.
    assert_eq!(sim.at(secs(210)).desired, expected(250.0, 80));
    assert_eq!(sim.at(secs(180) + secs(60)).desired, 2);
    assert_eq!(sim.at(secs(180) + secs(60)).reason, Reason::MinInstances);
    // Monotone, and never under min instances.
    let decay: Vec<u32> = sim
        .between(secs(180), secs(300))
        .map(|d| d.desired)
        .collect();
    assert!(decay.windows(2).all(|w| w[1] <= w[0]), "{decay:?}");
    assert!(decay.iter().all(|&d| d >= 2));
    assert_eq!(sim.ready, 2);
}

#[test]
fn scale_down_delay_keeps_instances_for_idle_timeout() {
    let cfg = Config::default();
    assert_eq!(cfg.idle_timeout, secs(60));
    let mut sim = Sim::new(cfg, settings(80, 2, 100));
    sim.run(secs(180), |_| requests(500.0));
    sim.run(secs(240), |_| requests(0.0));
    // The count decided at the end of the load is held for idle_timeout.
    assert!(sim.between(secs(180), secs(238)).all(|d| d.desired == 9));
    assert_eq!(sim.at(secs(200)).reason, Reason::ScaleDownDelay);
    // Then it follows the decay, a minute late, down to min.
    assert_eq!(sim.at(secs(180) + secs(60) + secs(62)).desired, 2);
    assert_eq!(sim.ready, 2);
}

#[test]
fn scale_down_is_at_most_halving_per_evaluation() {
    let mut sim = Sim::new(no_delay(), settings(10, 0, 100));
    sim.run(secs(120), |_| requests(350.0));
    assert_eq!(sim.last().desired, 50);
    // A sudden drop to nothing: the count may at most halve each tick.
    sim.run(secs(120), |_| requests(0.0));
    for w in sim.log.windows(2).filter(|w| w[0].0 >= secs(120)) {
        assert!(w[1].2.desired >= w[1].1 / 2, "{w:?}");
    }
    // The stable window empties gradually, so the limit only shows with a short window.
    let fast = Config {
        stable_window: secs(6),
        ..no_delay()
    };
    let mut sim = Sim::new(fast, settings(10, 0, 100));
    sim.run(secs(60), |_| requests(350.0));
    sim.run(secs(30), |_| requests(0.0));
    let after: Vec<_> = sim.between(secs(60), secs(90)).collect();
    assert!(after.iter().any(|d| d.reason == Reason::ScaleDownLimited));
    for w in sim.log.windows(2).filter(|w| w[0].0 >= secs(60)) {
        assert!(w[1].2.desired >= w[1].1 / 2, "{w:?}");
    }
}

#[test]
fn scale_to_zero_waits_for_stable_window_and_grace() {
    let mut sim = Sim::new(no_delay(), settings(80, 0, 100));
    sim.run(secs(300), |t| {
        requests(if t < secs(30) { 10.0 } else { 0.0 })
    });
    // Last request at 30 s; the stable window is quiet at 90 s; grace ends at 120 s.
    assert!(sim.between(secs(0), secs(120)).all(|d| d.desired == 1));
    assert!(sim
        .between(secs(92), secs(120))
        .all(|d| d.reason == Reason::ScaleToZeroGrace));
    assert_eq!(sim.at(secs(120)).desired, 0);
    assert_eq!(sim.at(secs(120)).reason, Reason::ScaleToZero);
    assert_eq!(sim.total(), 0);

    // With the default scale-down delay, zero comes at 30 + 60 + max(30, 60) s.
    let mut sim = Sim::new(Config::default(), settings(80, 0, 100));
    sim.run(secs(300), |t| {
        requests(if t < secs(30) { 10.0 } else { 0.0 })
    });
    // (Within a tick: the delay counts from the last evaluation that still asked for one.)
    assert!(sim.between(secs(0), secs(148)).all(|d| d.desired == 1));
    assert!(sim
        .between(secs(90), secs(148))
        .all(|d| d.reason == Reason::ScaleDownDelay));
    assert_eq!(sim.at(secs(150)).desired, 0);
    assert_eq!(sim.total(), 0);
}

#[test]
fn a_request_during_the_grace_keeps_the_instance() {
    let mut sim = Sim::new(no_delay(), settings(80, 0, 100));
    // A lone short request at 100 s, inside the grace that would have ended at 120 s.
    sim.run(secs(300), |t| {
        requests(if t < secs(30) || t == secs(100) {
            1.0
        } else {
            0.0
        })
    });
    assert!(sim.between(secs(0), secs(190)).all(|d| d.desired == 1));
    assert_eq!(sim.at(secs(192)).desired, 0);
}

#[test]
fn min_and_max_instances_bound_the_count() {
    let mut sim = Sim::new(Config::default(), settings(80, 0, 3));
    sim.run(secs(120), |_| requests(1000.0));
    assert_eq!(sim.last().desired, 3);
    assert_eq!(sim.last().reason, Reason::MaxInstances);
    assert!(sim.log.iter().all(|(_, _, d)| d.desired <= 3));
    assert!(sim.starts.len() <= 3);

    let mut sim = Sim::new(Config::default(), settings(80, 5, 10));
    sim.run(secs(60), |_| requests(0.0));
    assert!(sim.log.iter().all(|(_, _, d)| d.desired == 5));
    assert_eq!(sim.last().reason, Reason::MinInstances);
    assert_eq!(sim.ready, 5);
    sim.run(secs(120), |_| requests(2000.0));
    assert_eq!(sim.last().desired, 10);

    // max_instances 0: no bound, as Knative's maxScale.
    let mut sim = Sim::new(Config::default(), settings(10, 0, 0));
    sim.run(secs(120), |_| requests(7000.0));
    assert_eq!(sim.last().desired, 1000);
}

#[test]
fn concurrency_one() {
    let mut sim = Sim::new(Config::default(), settings(1, 0, 100));
    sim.run(secs(120), |t| {
        requests(if t >= secs(10) { 3.0 } else { 0.0 })
    });
    // ceil(3 / 0.7) = 5: one request each plus the 30 % headroom.
    assert_eq!(sim.last().desired, 5);
    assert_eq!(sim.ready, 5);
    // The three requests queued at 10 s asked for three instances at once.
    assert_eq!(sim.starts.iter().filter(|&&t| t == secs(10)).count(), 3);
}

#[test]
fn cpu_bound_load_scales_on_cpu_at_sixty_percent() {
    let mut sim = Sim::new(Config::default(), settings(80, 0, 100));
    // 4 requests (one instance by concurrency) that want 2.5 cores.
    let load = |_| Demand {
        concurrency: 4.0,
        cpu_millis: 2500.0,
    };
    sim.run(secs(900), load);
    // ceil(2500 / (0.6 × 1000)) = 5.
    assert_eq!(sim.last().desired, 5);
    assert_eq!(sim.last().reason, Reason::Cpu);
    assert!(sim.log.iter().all(|(_, _, d)| !d.panicking));
    assert!((sim.last().stable_cpu_millis - 2500.0).abs() < 1e-6);

    // CPU without requests holds nothing up.
    let mut sim = Sim::new(no_delay(), settings(80, 0, 100));
    sim.run(secs(60), load);
    sim.run(secs(200), |_| Demand {
        concurrency: 0.0,
        cpu_millis: 800.0,
    });
    assert_eq!(sim.last().desired, 0);
}

#[test]
fn first_arrival_at_zero_asks_for_one_instance_at_once() {
    let mut a = Autoscaler::new(Config::default(), RevisionSettings::default());
    for t in 0..10 {
        let d = a.decide(secs(2 * t), 0, 0);
        assert_eq!((d.desired, d.reason), (0, Reason::ScaleToZero));
    }
    let now = secs(20) + ms(300);
    a.record(Sample {
        at: now,
        in_flight: 1.0,
        cpu_millis: 0.0,
    });
    assert_eq!(a.on_arrival(now, 1), Some(1));
    // More requests that one instance holds ask for nothing more.
    a.record(Sample {
        at: now + ms(50),
        in_flight: 2.0,
        cpu_millis: 0.0,
    });
    assert_eq!(a.on_arrival(now + ms(50), 2), None);
    // The next tick keeps it.
    let d = a.decide(secs(22), 0, 1);
    assert_eq!(d.desired, 1);
    assert!(!d.panicking);

    // Even with no sample recorded, the arrival alone activates and holds one instance.
    let mut a = Autoscaler::new(Config::default(), RevisionSettings::default());
    assert_eq!(a.decide(secs(0), 0, 0).desired, 0);
    assert_eq!(a.on_arrival(secs(1), 1), Some(1));
    assert_eq!(a.decide(secs(2), 0, 1).desired, 1);
    // Min instances already running: the arrival changes nothing.
    let mut a = Autoscaler::new(Config::default(), settings(80, 2, 10));
    assert_eq!(a.decide(secs(0), 0, 0).desired, 2);
    assert_eq!(a.on_arrival(secs(1), 1), None);
}

#[test]
fn scale_from_zero_in_the_simulation_starts_before_the_tick() {
    let mut sim = Sim::new(Config::default(), settings(80, 0, 100));
    sim.run(secs(60), |t| requests(if t >= secs(5) { 1.0 } else { 0.0 }));
    // 5 s is between ticks (4 s, 6 s): the instance was asked for on arrival.
    assert_eq!(sim.starts.first(), Some(&secs(5)));
    assert_eq!(sim.starts.len(), 1);
}

#[test]
fn burst_from_zero_asks_for_the_whole_burst_on_arrival() {
    // The burst benchmark: 0 → 200 concurrent clients on concurrency 10.
    let mut a = Autoscaler::new(Config::default(), settings(10, 0, 100));
    a.decide(secs(0), 0, 0);
    a.record(Sample {
        at: secs(1),
        in_flight: 200.0,
        cpu_millis: 0.0,
    });
    assert_eq!(a.on_arrival(secs(1), 200), Some(20));
    let d = a.decide(secs(2), 0, 20);
    assert!(d.panicking);
    assert_eq!(d.desired, expected(200.0, 10));
    // The panic holds it while the burst lasts and the stable window catches up.
    for t in 2..30 {
        a.record(Sample {
            at: secs(2 * t) - secs(1),
            in_flight: 200.0,
            cpu_millis: 0.0,
        });
        assert_eq!(a.decide(secs(2 * t), 29, 0).desired, 29);
    }
}

#[test]
fn speed_up_scales_time_and_nothing_else() {
    let slow = Config::default();
    let fast = slow.speed_up(100);
    fast.validate().unwrap();
    assert_eq!(fast.stable_window, ms(600));
    assert_eq!(fast.max_idle, secs(9));
    let load = |unit: std::time::Duration| {
        move |t: std::time::Duration| {
            let s = t.as_nanos() / unit.as_nanos();
            requests(match s {
                0..=99 => 30.0,
                100..=109 => 600.0,
                110..=199 => 100.0,
                _ => 0.0,
            })
        }
    };
    let mut a = Sim::new(slow, settings(80, 0, 100));
    a.run(secs(400), load(secs(1)));
    let mut b = Sim::new(fast, settings(80, 0, 100));
    b.run(ms(4000), load(ms(10)));
    let da: Vec<_> = a
        .log
        .iter()
        .map(|(_, r, d)| (*r, d.desired, d.reason))
        .collect();
    let db: Vec<_> = b
        .log
        .iter()
        .map(|(_, r, d)| (*r, d.desired, d.reason))
        .collect();
    assert_eq!(da, db);
    assert!(da.iter().any(|&(_, _, r)| r == Reason::Panic));
    assert!(da.iter().any(|&(_, _, r)| r == Reason::ScaleToZero));
}

#[test]
fn defaults_are_cloud_runs() {
    let c = Config::default();
    c.validate().unwrap();
    assert_eq!(c.stable_window, secs(60));
    assert_eq!(c.panic_window, secs(6));
    assert_eq!(c.panic_threshold, 2.0);
    assert_eq!(c.target_utilization, 0.7);
    assert_eq!(c.cpu_target, 0.6);
    assert_eq!(c.max_scale_up_rate, 1000.0);
    assert_eq!(c.max_scale_down_rate, 2.0);
    assert_eq!(c.scale_to_zero_grace, secs(30));
    assert_eq!(c.max_idle, secs(15 * 60));
    assert_eq!(c.tick, secs(2));
    let s = RevisionSettings::default();
    assert_eq!(
        (s.concurrency, s.min_instances, s.max_instances),
        (80, 0, 100)
    );

    let bad = Config {
        idle_timeout: secs(15 * 60),
        ..Config::default()
    };
    assert!(bad.validate().is_err());
    let bad = Config {
        panic_window: secs(120),
        ..Config::default()
    };
    assert!(bad.validate().is_err());
}
