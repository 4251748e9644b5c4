//! SIGTERM handling shared by server and job mode.

use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};

/// Reads a millisecond count from the environment, 0 when unset or malformed.
pub fn env_ms(name: &str) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

pub fn ignore_sigterm() -> bool {
    std::env::var("PROBE_IGNORE_SIGTERM").is_ok_and(|v| v == "1")
}

/// A SIGTERM handler, installed when created: create it before announcing readiness, so a
/// SIGTERM that comes early is still seen rather than killing the process outright.
pub struct Sigterm(Option<Signal>);

impl Sigterm {
    pub fn install() -> Self {
        match signal(SignalKind::terminate()) {
            Ok(s) => Self(Some(s)),
            Err(e) => {
                say_err!("probe: cannot install a SIGTERM handler: {e}");
                Self(None)
            }
        }
    }

    /// Waits for SIGTERM, printing the line tests look for. With `PROBE_IGNORE_SIGTERM=1`
    /// the signal is reported and ignored, so this never returns and the platform must
    /// SIGKILL.
    pub async fn recv(&mut self) {
        let Some(term) = self.0.as_mut() else {
            return std::future::pending().await;
        };
        loop {
            term.recv().await;
            if ignore_sigterm() {
                say!("probe: SIGTERM received (ignored)");
                continue;
            }
            say!("probe: SIGTERM received");
            return;
        }
    }
}

pub async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}
