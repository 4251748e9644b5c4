//! A deterministic simulation of one revision under load, driven by a fake clock: the load
//! is a function of time, instances become ready `startup` after they are asked for,
//! CPU use is capped by the ready instances' limits, and requests that find no free slot
//! queue (and are told to the autoscaler at once, as the router does).

#![allow(dead_code)]

use std::time::Duration;

use autoscaler::{Autoscaler, Config, Decision, RevisionSettings, Sample};

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// What the clients ask for at an instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct Demand {
    /// Requests in flight or waiting.
    pub concurrency: f64,
    /// CPU the requests would use if unthrottled, in millicores.
    pub cpu_millis: f64,
}

pub fn requests(concurrency: f64) -> Demand {
    Demand {
        concurrency,
        cpu_millis: 0.0,
    }
}

pub struct Sim {
    pub now: Duration,
    pub scaler: Autoscaler,
    pub settings: RevisionSettings,
    pub ready: u32,
    /// When each starting instance becomes ready.
    pub starting: Vec<Duration>,
    pub startup: Duration,
    /// Sample period.
    pub step: Duration,
    tick: Duration,
    next_tick: Duration,
    /// Every decision, with its time and the ready count it was made with.
    pub log: Vec<(Duration, u32, Decision)>,
    /// When instances were asked for, one entry per instance.
    pub starts: Vec<Duration>,
}

impl Sim {
    pub fn new(config: Config, settings: RevisionSettings) -> Self {
        Self {
            now: Duration::ZERO,
            step: config.granularity,
            tick: config.tick,
            startup: config.tick,
            next_tick: Duration::ZERO,
            scaler: Autoscaler::new(config, settings),
            settings,
            ready: 0,
            starting: Vec::new(),
            log: Vec::new(),
            starts: Vec::new(),
        }
    }

    pub fn last(&self) -> &Decision {
        &self.log.last().expect("no decision yet").2
    }

    pub fn total(&self) -> u32 {
        self.ready + self.starting.len() as u32
    }

    /// Runs `length` more of simulated time under `load(now)`.
    pub fn run(&mut self, length: Duration, load: impl Fn(Duration) -> Demand) {
        let end = self.now + length;
        while self.now < end {
            let now = self.now;
            let before = self.starting.len();
            self.starting.retain(|&at| at > now);
            self.ready += (before - self.starting.len()) as u32;

            let demand = load(now);
            let cpu = demand
                .cpu_millis
                .min(f64::from(self.ready) * f64::from(self.settings.cpu_limit_millis));
            self.scaler.record(Sample {
                at: now,
                in_flight: demand.concurrency,
                cpu_millis: cpu,
            });
            let slots = f64::from(self.ready) * f64::from(self.settings.concurrency);
            if demand.concurrency > slots {
                let queued = (demand.concurrency - slots).ceil() as u32;
                if let Some(k) = self.scaler.on_arrival(now, queued) {
                    self.apply(k);
                }
            }
            if now >= self.next_tick {
                let d = self
                    .scaler
                    .decide(now, self.ready, self.starting.len() as u32);
                self.log.push((now, self.ready, d));
                self.apply(d.desired);
                self.next_tick += self.tick;
            }
            self.now += self.step;
        }
    }

    fn apply(&mut self, desired: u32) {
        let total = self.total();
        if desired > total {
            for _ in total..desired {
                self.starting.push(self.now + self.startup);
                self.starts.push(self.now);
            }
        } else {
            let mut surplus = total - desired;
            while surplus > 0 && self.starting.pop().is_some() {
                surplus -= 1;
            }
            self.ready -= surplus;
        }
    }

    /// Decisions made in `[from, to)`.
    pub fn between(&self, from: Duration, to: Duration) -> impl Iterator<Item = &Decision> {
        self.log
            .iter()
            .filter(move |(at, _, _)| *at >= from && *at < to)
            .map(|(_, _, d)| d)
    }

    /// The first decision at or after `at`.
    pub fn at(&self, at: Duration) -> &Decision {
        self.log
            .iter()
            .find(|(t, _, _)| *t >= at)
            .map(|(_, _, d)| d)
            .expect("no decision that late")
    }
}

/// Cloud Run's defaults without the scale-down delay, to watch Knative's decay alone.
pub fn no_delay() -> Config {
    Config {
        idle_timeout: Duration::ZERO,
        ..Config::default()
    }
}

pub fn settings(concurrency: u32, min: u32, max: u32) -> RevisionSettings {
    RevisionSettings {
        concurrency,
        min_instances: min,
        max_instances: max,
        ..RevisionSettings::default()
    }
}
