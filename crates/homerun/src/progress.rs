//! Live progress of a pull: one bar per layer (bytes of total, rate), redrawn from the
//! counters the pull updates as bytes arrive.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use image::PullProgress;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

type Counters = Arc<Mutex<HashMap<String, (ProgressBar, Arc<AtomicU64>)>>>;

pub struct Bars {
    multi: MultiProgress,
    bars: Counters,
    done: Arc<AtomicBool>,
    ticker: Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn short(digest: &str) -> String {
    digest
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect()
}

impl Bars {
    pub fn new() -> Self {
        let bars: Counters = Arc::default();
        let done = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (bars, done) = (bars.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    for (bar, bytes) in bars.lock().unwrap_or_else(|e| e.into_inner()).values() {
                        bar.set_position(bytes.load(Ordering::Relaxed));
                    }
                    // Parked, not slept: `finish` unparks it, so a pull never waits for a tick.
                    std::thread::park_timeout(Duration::from_millis(100));
                }
            })
        };
        Self {
            multi: MultiProgress::new(),
            bars,
            done,
            ticker: Mutex::new(Some(ticker)),
        }
    }

    pub fn finish(&self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }

    fn line(&self, text: String) {
        // Printed through the MultiProgress so bars are not torn; plain when not a terminal.
        if self.multi.is_hidden() {
            eprintln!("{text}");
        } else {
            let _ = self.multi.println(text);
        }
    }
}

impl PullProgress for Bars {
    fn resolved(&self, manifest_digest: &str, layers: &[(String, Option<u64>)]) {
        self.line(format!(
            "resolved {manifest_digest}: {} layers",
            layers.len()
        ));
    }

    fn layer_started(&self, digest: &str, size: Option<u64>, bytes: Arc<AtomicU64>) {
        let bar = self.multi.add(ProgressBar::new(size.unwrap_or(0)));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(short(digest));
        self.bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(digest.to_string(), (bar, bytes));
    }

    fn layer_done(&self, digest: &str, cached: bool) {
        if cached {
            self.line(format!("{} already present", short(digest)));
            return;
        }
        if let Some((bar, bytes)) = self
            .bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(digest)
        {
            bar.set_position(bytes.load(Ordering::Relaxed));
            bar.finish();
            if self.multi.is_hidden() {
                eprintln!(
                    "{} pulled ({})",
                    short(digest),
                    indicatif::HumanBytes(bytes.load(Ordering::Relaxed))
                );
            }
        }
    }
}
