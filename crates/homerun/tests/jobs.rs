//! Jobs end to end under runc with the probe's job mode: the task variables, retries,
//! parallelism (from the probe's own start/end record), exhausted retries, timeouts
//! (SIGTERM, then SIGKILL after the grace period), cancellation, overrides for one
//! execution, and an execution interrupted by a kill -9 that resumes.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::platform::{Platform, FAST_SCALING, PATIENCE};

fn platform(net: u8) -> Option<Platform> {
    if !testkit::require(&["runc", "ip", "iptables"], true) {
        return None;
    }
    Some(Platform::start(
        env!("CARGO_BIN_EXE_homerun"),
        net,
        FAST_SCALING,
    ))
}

fn probe_image() -> String {
    let cat = testkit::catalogue().unwrap();
    format!("oci:{}", cat.image("probe").path.display())
}

/// A job of the probe in job mode, its record on stdout.
fn job(tasks: u32, parallelism: u32, retries: u32, timeout: &str, env: &[(&str, &str)]) -> Value {
    let mut vars = vec![json!({"name": "PROBE_RECORD", "value": "/dev/stdout"})];
    vars.extend(env.iter().map(|(k, v)| json!({"name": k, "value": v})));
    json!({"template": {
        "taskCount": tasks,
        "parallelism": parallelism,
        "template": {
            "maxRetries": retries,
            "timeout": timeout,
            "containers": [{"image": probe_image(), "args": ["job"], "env": vars}],
        },
    }})
}

fn create_job(p: &Platform, id: &str, body: &Value) {
    let (status, op) = p.call(
        "POST",
        &format!("{}/jobs?jobId={id}", p.location()),
        Some(body),
    );
    assert_eq!(status, 200, "{op}");
    let op = p.wait(&op);
    assert!(op["error"].is_null(), "{op}");
}

/// `:run`, returning the operation (not waited).
fn run(p: &Platform, id: &str, overrides: Option<Value>) -> Value {
    let body = match overrides {
        Some(o) => json!({"overrides": o}),
        None => json!({}),
    };
    let (status, op) = p.call(
        "POST",
        &format!("{}/jobs/{id}:run", p.location()),
        Some(&body),
    );
    assert_eq!(status, 200, "{op}");
    op
}

fn execution_name(op: &Value) -> String {
    op["metadata"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("no execution in {op}"))
        .to_string()
}

fn get(p: &Platform, name: &str) -> Value {
    let (status, v) = p.call("GET", &format!("/v2/{name}"), None);
    assert_eq!(status, 200, "{v}");
    v
}

fn tasks(p: &Platform, execution: &str) -> Vec<Value> {
    let (status, v) = p.call("GET", &format!("/v2/{execution}/tasks?pageSize=1000"), None);
    assert_eq!(status, 200, "{v}");
    let mut tasks = v["tasks"].as_array().cloned().unwrap_or_default();
    tasks.sort_by_key(|t| t["index"].as_i64().unwrap_or(0));
    tasks
}

/// Every attempt's log lines: (index, attempt) → texts.
fn attempt_logs(p: &Platform, job: &str, execution: &str) -> BTreeMap<(u32, u32), Vec<String>> {
    let id = execution.rsplit('/').next().unwrap();
    let dir = p
        .data
        .path()
        .join("logs")
        .join(&p.project)
        .join(job)
        .join(id);
    let mut out = BTreeMap::new();
    for index_dir in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let index_dir = index_dir.unwrap().path();
        let index: u32 = index_dir
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        for file in std::fs::read_dir(&index_dir).unwrap() {
            let file = file.unwrap().path();
            let attempt: u32 = file.file_stem().unwrap().to_str().unwrap().parse().unwrap();
            out.insert((index, attempt), texts(&file));
        }
    }
    out
}

fn texts(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["text"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

/// The probe's `start|end|sigterm INDEX ATTEMPT UNIX_MS` records.
fn records(lines: &[String]) -> Vec<(String, u32, u32, u64)> {
    lines
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f[..] {
                [event @ ("start" | "end" | "sigterm"), i, a, ms] => Some((
                    event.to_string(),
                    i.parse().ok()?,
                    a.parse().ok()?,
                    ms.parse().ok()?,
                )),
                _ => None,
            }
        })
        .collect()
}

/// The probe's JSON line with its environment.
fn probe_env(lines: &[String]) -> serde_json::Map<String, Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| v.get("env").and_then(|e| e.as_object().cloned()))
        .unwrap_or_else(|| panic!("no environment line in {lines:?}"))
}

/// SIGTERM: homerun exits 0 and leaves nothing.
fn stop_clean(mut p: Platform) {
    let status = p.terminate();
    assert!(status.success(), "homerun exited {status}:\n{}", p.logs());
    let left = p.leftovers();
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn completed(execution: &Value) -> Value {
    execution["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Completed")
        .cloned()
        .unwrap()
}

#[test]
fn variables_retries_and_parallelism() {
    let Some(p) = platform(210) else { return };
    create_job(
        &p,
        "batch",
        &job(
            6,
            2,
            2,
            "60s",
            &[("PROBE_FAIL_INDEXES", "1,4"), ("PROBE_SLEEP_MS", "300")],
        ),
    );
    let op = p.wait(&run(&p, "batch", None));
    assert!(op["error"].is_null(), "{op}");
    let execution = &op["response"];
    let name = execution["name"].as_str().unwrap().to_string();
    let id = name.rsplit('/').next().unwrap();
    assert!(
        id.starts_with("batch-") && id.len() == "batch-".len() + 5,
        "{id}"
    );
    assert_eq!(execution["succeededCount"], 6, "{execution}");
    assert_eq!(execution["retriedCount"], 2);
    assert!(execution["failedCount"].is_null() || execution["failedCount"] == 0);
    assert_eq!(completed(execution)["state"], "CONDITION_SUCCEEDED");

    let tasks = tasks(&p, &name);
    assert_eq!(tasks.len(), 6);
    for t in &tasks {
        let index = t["index"].as_i64().unwrap_or(0);
        let retried = t["retried"].as_i64().unwrap_or(0);
        assert_eq!(retried, if index == 1 || index == 4 { 1 } else { 0 }, "{t}");
        assert_eq!(completed(t)["state"], "CONDITION_SUCCEEDED", "{t}");
    }

    let logs = attempt_logs(&p, "batch", &name);
    assert_eq!(
        logs.len(),
        8,
        "six tasks, two of them twice: {:?}",
        logs.keys()
    );
    let mut events = Vec::new();
    for ((index, attempt), lines) in &logs {
        let env = probe_env(lines);
        assert_eq!(env["CLOUD_RUN_JOB"], "batch");
        assert_eq!(env["CLOUD_RUN_EXECUTION"], id);
        assert_eq!(env["CLOUD_RUN_TASK_INDEX"], index.to_string().as_str());
        assert_eq!(env["CLOUD_RUN_TASK_ATTEMPT"], attempt.to_string().as_str());
        assert_eq!(env["CLOUD_RUN_TASK_COUNT"], "6");
        assert!(!env.contains_key("PORT"), "jobs get no PORT");
        events.extend(records(lines));
    }
    // Never more than two attempts at once, by the probe's own clock.
    events.sort_by_key(|(event, _, _, ms)| (*ms, event != "end"));
    let (mut now, mut most) = (0i32, 0i32);
    for (event, ..) in &events {
        match event.as_str() {
            "start" => now += 1,
            "end" => now -= 1,
            _ => {}
        }
        most = most.max(now);
    }
    assert_eq!(events.iter().filter(|e| e.0 == "start").count(), 8);
    assert!(most <= 2, "{most} attempts ran at once: {events:?}");
    assert_eq!(most, 2, "parallelism 2 was used");

    // The same logs over HTTP, by task and attempt.
    let (status, logs) = p.call(
        "GET",
        &format!(
            "/homerun/v1/projects/{}/locations/local/jobs/batch/executions/{id}/logs?task=1&attempt=1",
            p.project
        ),
        None,
    );
    assert_eq!(status, 200, "{logs}");
    let entries = logs["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(
        entries.iter().all(|e| e["task"] == 1 && e["attempt"] == 1),
        "{logs}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["text"].as_str().unwrap().starts_with("end 1 1 ")),
        "{logs}"
    );
    let (status, _) = p.call(
        "GET",
        "/homerun/v1/projects/local/locations/local/jobs/batch/executions/..%2f..%2fetc/logs",
        None,
    );
    assert_ne!(status, 200, "a path outside the logs is refused");

    let (_, job) = p.call("GET", &format!("{}/jobs/batch", p.location()), None);
    assert_eq!(job["executionCount"], 1, "{job}");
    assert_eq!(job["latestCreatedExecution"]["name"], name.as_str());
    assert_eq!(
        job["latestCreatedExecution"]["completionStatus"],
        "EXECUTION_SUCCEEDED"
    );
    stop_clean(p);
}

#[test]
fn exhausted_retries_fail_the_execution_and_timeouts_stop_attempts() {
    let Some(p) = platform(211) else { return };
    create_job(
        &p,
        "doomed",
        &job(
            2,
            2,
            1,
            "60s",
            &[("PROBE_FAIL_INDEXES", "0"), ("PROBE_FAIL_ATTEMPTS", "9")],
        ),
    );
    let op = p.wait(&run(&p, "doomed", None));
    let message = op["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains("Task 0") && message.contains("exited with code 1"),
        "{op}"
    );
    let execution = get(&p, &execution_name(&op));
    assert_eq!(execution["failedCount"], 1, "{execution}");
    assert_eq!(execution["succeededCount"], 1);
    assert_eq!(execution["retriedCount"], 1);
    assert_eq!(completed(&execution)["state"], "CONDITION_FAILED");
    let t0 = &tasks(&p, execution["name"].as_str().unwrap())[0];
    assert_eq!(t0["lastAttemptResult"]["exitCode"], 1, "{t0}");

    // A timeout: SIGTERM (the probe records it and exits 143), no retry left.
    create_job(
        &p,
        "slow",
        &job(1, 1, 0, "2s", &[("PROBE_SLEEP_MS", "30000")]),
    );
    let op = p.wait(&run(&p, "slow", None));
    assert!(
        op["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("timeout"),
        "{op}"
    );
    let name = execution_name(&op);
    let logs = attempt_logs(&p, "slow", &name);
    let lines = &logs[&(0, 0)];
    assert!(records(lines).iter().any(|r| r.0 == "sigterm"), "{lines:?}");
    let t = &tasks(&p, &name)[0];
    assert_eq!(t["lastAttemptResult"]["exitCode"], 143, "{t}");

    // One that ignores SIGTERM is killed after the grace period (3 s here).
    create_job(
        &p,
        "stubborn",
        &job(
            1,
            1,
            0,
            "2s",
            &[("PROBE_SLEEP_MS", "30000"), ("PROBE_IGNORE_SIGTERM", "1")],
        ),
    );
    let started = Instant::now();
    let op = p.wait(&run(&p, "stubborn", None));
    assert!(op["error"].is_object(), "{op}");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "SIGKILL came late"
    );
    let t = &tasks(&p, &execution_name(&op))[0];
    assert_eq!(t["lastAttemptResult"]["termSignal"], 9, "{t}");
    stop_clean(p);
}

#[test]
fn cancel_and_overrides() {
    let Some(p) = platform(212) else { return };
    create_job(
        &p,
        "long",
        &job(4, 1, 3, "120s", &[("PROBE_SLEEP_MS", "30000")]),
    );
    let op = run(&p, "long", None);
    let name = execution_name(&op);
    let deadline = Instant::now() + PATIENCE;
    while get(&p, &name)["runningCount"] != 1 {
        assert!(
            Instant::now() < deadline,
            "never running: {}",
            get(&p, &name)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, cancel) = p.call("POST", &format!("/v2/{name}:cancel"), Some(&json!({})));
    assert_eq!(status, 200, "{cancel}");
    let cancel = p.wait(&cancel);
    assert!(cancel["error"].is_null(), "{cancel}");
    let execution = get(&p, &name);
    assert_eq!(execution["cancelledCount"], 4, "{execution}");
    assert!(execution["retriedCount"].is_null() || execution["retriedCount"] == 0);
    // As Cloud Run: the run's operation ends without an error, its response the
    // cancelled execution.
    let run_op = p.wait(&op);
    assert!(run_op["error"].is_null(), "{run_op}");
    assert_eq!(run_op["response"]["cancelledCount"], 4, "{run_op}");
    for t in tasks(&p, &name) {
        assert_eq!(completed(&t)["executionReason"], "CANCELLED", "{t}");
    }

    // Overrides change one execution only.
    create_job(&p, "over", &job(1, 1, 0, "60s", &[("GREETING", "job")]));
    let op = p.wait(&run(
        &p,
        "over",
        Some(json!({
            "taskCount": 2,
            "containerOverrides": [{"args": ["job", "extra"], "env": [{"name": "GREETING", "value": "override"}]}],
        })),
    ));
    assert!(op["error"].is_null(), "{op}");
    let name = execution_name(&op);
    assert_eq!(op["response"]["taskCount"], 2);
    let logs = attempt_logs(&p, "over", &name);
    assert_eq!(logs.len(), 2);
    for lines in logs.values() {
        assert_eq!(probe_env(lines)["GREETING"], "override");
        assert_eq!(probe_env(lines)["CLOUD_RUN_TASK_COUNT"], "2");
    }
    let op = p.wait(&run(&p, "over", None));
    let logs = attempt_logs(&p, "over", &execution_name(&op));
    assert_eq!(logs.len(), 1);
    assert_eq!(probe_env(&logs[&(0, 0)])["GREETING"], "job");
    stop_clean(p);
}

#[test]
fn an_execution_interrupted_by_a_kill_resumes_and_retries() {
    let Some(mut p) = platform(213) else { return };
    create_job(
        &p,
        "survivor",
        &job(2, 2, 3, "120s", &[("PROBE_SLEEP_MS", "4000")]),
    );
    let op = run(&p, "survivor", None);
    let name = execution_name(&op);
    let deadline = Instant::now() + PATIENCE;
    while get(&p, &name)["runningCount"] != 2 {
        assert!(
            Instant::now() < deadline,
            "never running: {}",
            get(&p, &name)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    p.kill();
    p.restart();
    let op = p.wait(&op);
    assert!(op["error"].is_null(), "{op}\n{}", p.logs());
    let execution = get(&p, &name);
    assert_eq!(execution["succeededCount"], 2, "{execution}");
    assert_eq!(
        execution["retriedCount"], 2,
        "both interrupted attempts were retried"
    );
    stop_clean(p);
}

#[test]
fn a_schedule_starts_executions() {
    let Some(p) = platform(214) else { return };
    create_job(&p, "minutely", &job(1, 1, 0, "60s", &[]));
    // gcloud's way: the CLI writes the job's schedule.
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_homerun"))
            .arg("--api-addr")
            .arg(p.api.to_string())
            // The CLI finds the admin token in the data directory, as on the same machine.
            .arg("--data-dir")
            .arg(p.data.path())
            .args(args)
            .output()
            .unwrap()
    };
    let out = cli(&[
        "jobs",
        "schedule",
        "minutely",
        "--cron",
        "* * * * *",
        "--time-zone",
        "Europe/Paris",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["jobs", "schedule", "minutely", "--cron", "* * *"]);
    assert!(!out.status.success(), "a bad schedule is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("3 fields"));
    let (_, stored) = p.call("GET", &format!("{}/jobs/minutely", p.location()), None);
    let schedules: Value = serde_json::from_str(
        stored["annotations"]["homerun.dev/schedules"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        schedules,
        json!([{"cron": "* * * * *", "timeZone": "Europe/Paris"}])
    );
    // A bad schedule is refused by name.
    let mut bad = job(1, 1, 0, "60s", &[]);
    bad["annotations"] = json!({"homerun.dev/schedules": "[{\"cron\": \"every minute\"}]"});
    let (status, err) = p.call(
        "POST",
        &format!("{}/jobs?jobId=bad", p.location()),
        Some(&bad),
    );
    assert_eq!(status, 400, "{err}");
    assert!(err.to_string().contains("homerun.dev/schedules"), "{err}");

    // The next minute boundary starts one (at most a minute away).
    let deadline = Instant::now() + PATIENCE;
    let execution = loop {
        let (_, job) = p.call("GET", &format!("{}/jobs/minutely", p.location()), None);
        if let Some(name) = job["latestCreatedExecution"]["name"].as_str() {
            break name.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no scheduled run: {job}\n{}",
            p.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let deadline = Instant::now() + PATIENCE;
    while get(&p, &execution)["succeededCount"] != 1 {
        assert!(Instant::now() < deadline, "{}", get(&p, &execution));
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = cli(&["jobs", "schedule", "minutely", "--clear"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, stored) = p.call("GET", &format!("{}/jobs/minutely", p.location()), None);
    assert!(
        stored["annotations"]["homerun.dev/schedules"].is_null(),
        "{stored}"
    );
    stop_clean(p);
}

#[test]
fn busybox_tasks_exit_codes_and_an_oom_kill() {
    let Some(p) = platform(215) else { return };
    let cat = testkit::catalogue().unwrap();
    let busybox = format!("oci:{}", cat.image("busybox").path.display());
    let script = "echo task $CLOUD_RUN_TASK_INDEX of $CLOUD_RUN_TASK_COUNT; exit $((CLOUD_RUN_TASK_INDEX % 2))";
    create_job(
        &p,
        "shell",
        &json!({"template": {"taskCount": 4, "parallelism": 4, "template": {
            "maxRetries": 0,
            "containers": [{"image": busybox, "command": ["/bin/sh", "-c", script]}],
        }}}),
    );
    let op = p.wait(&run(&p, "shell", None));
    assert!(op["error"].is_object(), "odd tasks exit 1: {op}");
    let name = execution_name(&op);
    let execution = get(&p, &name);
    // All four ran at once: the failures stop nothing that already runs.
    assert_eq!(execution["succeededCount"], 2, "{execution}");
    assert_eq!(execution["failedCount"], 2, "{execution}");
    let logs = attempt_logs(&p, "shell", &name);
    assert_eq!(logs[&(2, 0)], vec!["task 2 of 4".to_string()]);
    for t in tasks(&p, &name) {
        let index = t["index"].as_i64().unwrap_or(0);
        let code = t["lastAttemptResult"]["exitCode"].as_i64().unwrap_or(0);
        assert_eq!(code, index % 2, "{t}");
    }

    // Past its memory limit: an OOM kill fails the attempt.
    let mut hungry = job(1, 1, 0, "60s", &[("PROBE_ALLOC_MIB", "400")]);
    hungry["template"]["template"]["containers"][0]["resources"] =
        json!({"limits": {"cpu": "1", "memory": "128Mi"}});
    create_job(&p, "hungry", &hungry);
    let op = p.wait(&run(&p, "hungry", None));
    let message = op["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("memory limit"), "{op}");
    stop_clean(p);
}
