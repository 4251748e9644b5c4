//! Job mode (`probe job`): behaves as a Cloud Run job task that tests can steer.
//!
//! - prints every `CLOUD_RUN_*` variable and a JSON line with argv and the whole environment;
//! - appends `start INDEX ATTEMPT UNIX_MS` and `end INDEX ATTEMPT UNIX_MS` to `$PROBE_RECORD`;
//! - sleeps `PROBE_SLEEP_MS`, holds `PROBE_ALLOC_MIB` MiB meanwhile;
//! - exits 1 when its index is in `PROBE_FAIL_INDEXES` (comma list) and its attempt is below
//!   `PROBE_FAIL_ATTEMPTS` (default 1);
//! - on SIGTERM prints `probe: SIGTERM received` and exits 143, unless `PROBE_IGNORE_SIGTERM=1`;
//! - for each metadata path in `PROBE_METADATA` (comma list) prints one JSON line
//!   `{"metadata": PATH, "status", "body"}` of the metadata server's answer, so tests see a
//!   task's identity in its logs.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::signals;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn record(event: &str, index: u64, attempt: u64) {
    let Ok(path) = std::env::var("PROBE_RECORD") else {
        return;
    };
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    // One short O_APPEND write per line, so concurrent tasks never interleave inside a line.
    let line = format!("{event} {index} {attempt} {ms}\n");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        say_err!("probe: cannot append to PROBE_RECORD={path}: {e}");
    }
}

/// Whether this attempt was told to fail.
pub fn told_to_fail(indexes: &str, index: u64, attempt: u64, fail_attempts: u64) -> bool {
    attempt < fail_attempts
        && indexes
            .split(',')
            .filter_map(|s| s.trim().parse::<u64>().ok())
            .any(|i| i == index)
}

pub async fn run() -> ExitCode {
    let mut sigterm = signals::Sigterm::install();
    let cloud_run: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("CLOUD_RUN_"))
        .collect();
    for (k, v) in &cloud_run {
        say!("{k}={v}");
    }
    let env: BTreeMap<String, String> = std::env::vars().collect();
    say!(
        "{}",
        json!({ "probe": "job", "argv": std::env::args().collect::<Vec<_>>(), "env": env })
    );
    let index = env_u64("CLOUD_RUN_TASK_INDEX", 0);
    let attempt = env_u64("CLOUD_RUN_TASK_ATTEMPT", 0);
    record("start", index, attempt);
    let paths = std::env::var("PROBE_METADATA").unwrap_or_default();
    for path in paths.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let line = match crate::metadata::fetch(path).await {
            Ok(answer) => {
                json!({"metadata": path, "status": answer["status"], "body": answer["body"]})
            }
            Err(e) => json!({"metadata": path, "error": e}),
        };
        say!("{line}");
    }

    let alloc_mib = env_u64("PROBE_ALLOC_MIB", 0) as usize;
    let Some(bytes) = alloc_mib.checked_mul(1 << 20) else {
        say_err!("probe: PROBE_ALLOC_MIB={alloc_mib} is too large");
        return ExitCode::from(1);
    };
    let held = vec![0xA5u8; bytes];
    if alloc_mib > 0 {
        say!("probe: holding {alloc_mib} MiB");
    }

    tokio::select! {
        _ = signals::sleep_ms(signals::env_ms("PROBE_SLEEP_MS")) => {}
        _ = sigterm.recv() => {
            record("sigterm", index, attempt);
            return ExitCode::from(143);
        }
    }
    drop(held);

    record("end", index, attempt);
    let indexes = std::env::var("PROBE_FAIL_INDEXES").unwrap_or_default();
    if told_to_fail(&indexes, index, attempt, env_u64("PROBE_FAIL_ATTEMPTS", 1)) {
        say_err!("probe: task {index} attempt {attempt} fails as told by PROBE_FAIL_INDEXES");
        return ExitCode::from(1);
    }
    say!("probe: task {index} attempt {attempt} succeeded");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::told_to_fail;

    #[test]
    fn fails_listed_indexes_below_the_attempt_bound() {
        assert!(told_to_fail("1, 3", 3, 0, 1));
        assert!(!told_to_fail("1,3", 3, 1, 1));
        assert!(told_to_fail("1,3", 3, 1, 2));
        assert!(!told_to_fail("1,3", 2, 0, 5));
        assert!(!told_to_fail("", 0, 0, 5));
    }
}
