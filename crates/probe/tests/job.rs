//! The probe's job mode (`probe job`).

mod common;

use common::Probe;

fn task_env<'a>(
    index: &'a str,
    attempt: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("CLOUD_RUN_JOB", "batch"),
        ("CLOUD_RUN_EXECUTION", "batch-x7k2p"),
        ("CLOUD_RUN_TASK_INDEX", index),
        ("CLOUD_RUN_TASK_ATTEMPT", attempt),
        ("CLOUD_RUN_TASK_COUNT", "4"),
    ];
    env.extend_from_slice(extra);
    env
}

fn records(path: &std::path::Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').map(str::to_string).collect())
        .collect()
}

#[test]
fn prints_task_variables_and_records_start_and_end() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record");
    let rec = record.to_str().unwrap();
    let mut probe = Probe::start(
        &["job", "extra-arg"],
        &task_env("2", "0", &[("PROBE_RECORD", rec)]),
    );
    assert!(probe.wait().success(), "{:?}", probe.lines());
    let lines = probe.lines();
    for want in [
        "CLOUD_RUN_JOB=batch",
        "CLOUD_RUN_EXECUTION=batch-x7k2p",
        "CLOUD_RUN_TASK_INDEX=2",
        "CLOUD_RUN_TASK_ATTEMPT=0",
        "CLOUD_RUN_TASK_COUNT=4",
    ] {
        assert!(lines.iter().any(|l| l == want), "{want} not in {lines:?}");
    }
    let json_line = lines.iter().find(|l| l.starts_with('{')).unwrap();
    let j: serde_json::Value = serde_json::from_str(json_line).unwrap();
    assert_eq!(j["argv"][1], "job");
    assert_eq!(j["argv"][2], "extra-arg");
    let r = records(&record);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0][..3], ["start", "2", "0"]);
    assert_eq!(r[1][..3], ["end", "2", "0"]);
    let (t0, t1): (u128, u128) = (r[0][3].parse().unwrap(), r[1][3].parse().unwrap());
    assert!(t0 <= t1);
}

#[test]
fn listed_indexes_fail_until_the_attempt_bound() {
    let fail = [("PROBE_FAIL_INDEXES", "1,3"), ("PROBE_FAIL_ATTEMPTS", "2")];
    for (index, attempt, code) in [
        ("1", "0", 1),
        ("1", "1", 1),
        ("1", "2", 0),
        ("2", "0", 0),
        ("3", "0", 1),
    ] {
        let mut probe = Probe::start(&["job"], &task_env(index, attempt, &fail));
        assert_eq!(
            probe.wait().code(),
            Some(code),
            "index {index} attempt {attempt}"
        );
    }
}

#[test]
fn sigterm_ends_a_task_with_143() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record");
    let extra = [
        ("PROBE_SLEEP_MS", "600000"),
        ("PROBE_RECORD", record.to_str().unwrap()),
    ];
    let mut probe = Probe::start(&["job"], &task_env("0", "0", &extra));
    probe.wait_for_line("CLOUD_RUN_TASK_INDEX=0");
    // The handler is installed before anything is printed or recorded.
    probe.signal(libc::SIGTERM);
    assert_eq!(probe.wait().code(), Some(143));
    probe.wait_for_line("probe: SIGTERM received");
    let r = records(&record);
    assert_eq!(r.last().unwrap()[0], "sigterm");
}

#[test]
fn a_task_can_ignore_sigterm_and_hold_memory() {
    let extra = [
        ("PROBE_SLEEP_MS", "600000"),
        ("PROBE_IGNORE_SIGTERM", "1"),
        ("PROBE_ALLOC_MIB", "8"),
    ];
    let mut probe = Probe::start(&["job"], &task_env("0", "0", &extra));
    probe.wait_for_line("holding 8 MiB");
    assert!(
        common::rss_kib(probe.pid()) >= 8 * 1024,
        "the memory is really held"
    );
    probe.signal(libc::SIGTERM);
    probe.wait_for_line("SIGTERM received (ignored)");
    assert!(probe.is_running());
    probe.signal(libc::SIGKILL);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(probe.wait().signal(), Some(libc::SIGKILL));
}
