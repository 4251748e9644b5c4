//! Which instances are stopped: the surplus (idle first), never min instances, and none
//! above min kept idle past `max_idle`.

mod common;

use std::time::Duration;

use autoscaler::{Autoscaler, Config, InstanceIdle};
use common::*;

fn idle(id: &'static str, since: u64) -> InstanceIdle<&'static str> {
    InstanceIdle {
        id,
        idle_since: Some(secs(since)),
    }
}

fn busy(id: &'static str) -> InstanceIdle<&'static str> {
    InstanceIdle {
        id,
        idle_since: None,
    }
}

fn scaler(min: u32) -> Autoscaler {
    Autoscaler::new(Config::default(), settings(80, min, 100))
}

#[test]
fn surplus_goes_longest_idle_first() {
    let a = scaler(0);
    let all = [busy("a"), idle("b", 10), idle("c", 5), idle("d", 20)];
    assert_eq!(a.to_stop(secs(30), 2, &all), ["c", "b"]);
    assert_eq!(a.to_stop(secs(30), 4, &all), Vec::<&str>::new());
    assert_eq!(a.to_stop(secs(30), 9, &all), Vec::<&str>::new());
}

#[test]
fn busy_surplus_is_drained_newest_first_after_the_idle() {
    let a = scaler(0);
    let all = [busy("a"), busy("b"), idle("c", 29), busy("d")];
    assert_eq!(a.to_stop(secs(30), 1, &all), ["c", "d", "b"]);
    assert_eq!(a.to_stop(secs(30), 0, &all), ["c", "d", "b", "a"]);
}

#[test]
fn min_instances_are_never_stopped() {
    let a = scaler(2);
    let all = [idle("a", 0), idle("b", 0), idle("c", 0)];
    // Desired 0 (no load), hours idle: one goes, two stay warm.
    assert_eq!(a.to_stop(secs(5 * 3600), 0, &all), ["a"]);
    assert_eq!(a.to_stop(secs(5 * 3600), 0, &all[..2]), Vec::<&str>::new());
}

#[test]
fn none_above_min_stays_idle_past_max_idle() {
    let a = scaler(1);
    let now = secs(3600);
    let fifteen = Duration::from_secs(15 * 60);
    let all = [
        busy("a"),
        InstanceIdle {
            id: "b",
            idle_since: Some(now - fifteen),
        },
        InstanceIdle {
            id: "c",
            idle_since: Some(now - fifteen + secs(1)),
        },
    ];
    // The desired count still counts all three, but the contract wins for "b".
    assert_eq!(a.to_stop(now, 3, &all), ["b"]);
    // Only min instances left: kept however long idle.
    let a = scaler(3);
    assert_eq!(a.to_stop(now, 3, &all), Vec::<&str>::new());
}

#[test]
fn after_a_burst_idle_instances_above_min_are_stopped_and_min_kept() {
    let mut sim = Sim::new(Config::default(), settings(80, 1, 100));
    sim.run(secs(120), |_| requests(200.0));
    assert_eq!(sim.ready, 4);
    let ids = ["i0", "i1", "i2", "i3"];
    // All four went idle when the load stopped at 120 s.
    let instances: Vec<_> = ids.iter().map(|&id| idle(id, 120)).collect();
    sim.run(secs(60), |_| requests(0.0));
    // Within the scale-down delay: kept idle and warm.
    let d = sim.scaler.decide(sim.now, 4, 0);
    assert_eq!(d.desired, 4);
    assert!(sim
        .scaler
        .to_stop(sim.now, d.desired, &instances)
        .is_empty());
    // Later the surplus goes, min instances stay.
    let mut a = Autoscaler::new(Config::default(), settings(80, 1, 100));
    let mut ready = 0;
    for t in (0..1800).step_by(2) {
        let load = if t < 120 { 200.0 } else { 0.0 };
        a.record(autoscaler::Sample {
            at: secs(t),
            in_flight: load,
            cpu_millis: 0.0,
        });
        let d = a.decide(secs(t), ready, 0);
        let live: Vec<_> = ids[..ready as usize]
            .iter()
            .map(|&id| if t < 120 { busy(id) } else { idle(id, 120) })
            .collect();
        let stop = a.to_stop(secs(t), d.desired, &live);
        if d.desired > ready {
            assert!(stop.is_empty());
            ready = d.desired;
        } else {
            assert_eq!(stop.len() as u32, ready - d.desired);
            ready -= stop.len() as u32;
        }
        assert!(ready >= 1);
    }
    assert_eq!(ready, 1);
}
