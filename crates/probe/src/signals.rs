//! SIGTERM handling shared by server and job mode.

use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

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

/// Waits for SIGTERM, printing the line tests look for. With `PROBE_IGNORE_SIGTERM=1` the
/// signal is reported and ignored, so this never returns and the platform must SIGKILL.
pub async fn sigterm() {
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("probe: cannot install a SIGTERM handler: {e}");
            std::future::pending::<()>().await;
            unreachable!()
        }
    };
    loop {
        term.recv().await;
        if ignore_sigterm() {
            println!("probe: SIGTERM received (ignored)");
            continue;
        }
        println!("probe: SIGTERM received");
        return;
    }
}

pub async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}
