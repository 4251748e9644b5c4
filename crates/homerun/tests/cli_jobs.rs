//! The jobs verbs (`jobs`, `executions`, `tasks`) against the real Admin API, served
//! in-process over a `MemStore` on a loopback port, by running the built `homerun`
//! binary, as tests/cli.rs does for services.
//!
//! Nothing runs tasks here, so a small fake controller (a thread of each test) does what
//! the real one does to an execution's records, one step every [`STEP`]: it writes the
//! tasks (`Task::for_execution`), runs them `parallelism` at a time (a task succeeds in
//! one step, or fails when its container has `FAIL=1`, retried up to `maxRetries`),
//! writes the execution's counts and `Completed` condition, the job's latest execution
//! status, a log line per attempt where the real one keeps them
//! (`control::jobs::execution::log_path`), and finishes the `:run` and `:cancel`
//! operations with `api::complete_operation` as the real controller does (a failed or
//! cancelled execution fails its `:run`). A cancelled execution's tasks stop at the next
//! pass. The logs are served beside the API by homerun's own logs API
//! (src/logs_api.rs), as `homerun up` serves them. That is enough for a test of the CLI
//! alone; the real controller is tested with `homerun up` (tests/jobs.rs).
//!
//! The API and the logs authenticate as `homerun up`'s do (an `identity::Authority` in
//! the test's data directory, whose admin token the CLI reads with `--data-dir`).

#[path = "../src/auth.rs"]
#[allow(dead_code)]
mod auth;
#[path = "../src/logs_api.rs"]
mod logs_api;

use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::condition::{types, ExecutionReason};
use api::http::{EXECUTION_KIND, JOB_KIND, OPERATION_KIND, TASK_KIND};
use api::{
    CompletionStatus, Condition, ConditionState, Endpoint, Execution, Job, Operation, Status, Task,
    TaskAttemptResult, Timestamp,
};
use serde_json::{json, Value};
use store::{MemStore, Precondition, Store};

const PARENT: &str = "projects/local/locations/local";
/// How long the fake controller takes for one step of an execution.
const STEP: Duration = Duration::from_millis(300);

struct Platform {
    addr: SocketAddr,
    store: Arc<MemStore>,
    stop: Arc<AtomicBool>,
    /// The attempts' logs.
    _logs: tempfile::TempDir,
    /// The data directory: the admin token and the identity keys.
    data: tempfile::TempDir,
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The API (and the logs) on 127.0.0.1, and the fake controller.
fn platform() -> Platform {
    let store = Arc::new(MemStore::new());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let data = tempfile::tempdir().unwrap();
    let authority = Arc::new(
        identity::Authority::open_at(
            data.path(),
            &format!("http://{addr}"),
            identity::now(),
            false,
        )
        .unwrap(),
    );
    let state = api::ApiState::new(
        store.clone() as Arc<dyn Store>,
        "local",
        Endpoint::new("local", "localhost", 8080),
    )
    .with_auth(Arc::new(auth::Tokens(authority.clone())))
    .with_sealer(Arc::new(auth::Seal(authority.clone())));
    let logs_dir = tempfile::tempdir().unwrap();
    let logs = logs_dir.path().to_path_buf();
    let logs_router = logs_api::router(
        logs.clone(),
        "local".into(),
        auth::logs_authorizer(authority, store.clone() as Arc<dyn Store>),
    );
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, api::router(state).merge(logs_router))
                .await
                .unwrap();
        });
    });
    let stop = Arc::new(AtomicBool::new(false));
    {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut last_step = HashMap::new();
            while !stop.load(Ordering::Relaxed) {
                for record in store.list(EXECUTION_KIND, PARENT, 0, None).unwrap().records {
                    step_execution(store.as_ref(), &logs, &mut last_step, record);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
    }
    Platform {
        addr,
        store,
        stop,
        _logs: logs_dir,
        data,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum TaskState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

fn task_state(t: &Task) -> TaskState {
    let completed = t.conditions.iter().find(|c| c.kind == types::COMPLETED);
    match completed.map(|c| (c.state, c.execution_reason)) {
        Some((ConditionState::Succeeded, _)) => TaskState::Succeeded,
        Some((ConditionState::Failed, Some(ExecutionReason::Cancelled))) => TaskState::Cancelled,
        Some((ConditionState::Failed, _)) => TaskState::Failed,
        Some((ConditionState::Reconciling, _)) => TaskState::Running,
        _ => TaskState::Pending,
    }
}

fn set_task_state(t: &mut Task, state: TaskState, message: &str) {
    let now = Timestamp::now();
    let condition = match state {
        TaskState::Pending => Condition::new(types::COMPLETED, ConditionState::Pending),
        TaskState::Running => Condition::new(types::COMPLETED, ConditionState::Reconciling),
        TaskState::Succeeded => Condition::new(types::COMPLETED, ConditionState::Succeeded),
        TaskState::Failed => Condition::new(types::COMPLETED, ConditionState::Failed)
            .with_execution_reason(ExecutionReason::NonZeroExitCode)
            .with_message(message),
        TaskState::Cancelled => Condition::new(types::COMPLETED, ConditionState::Failed)
            .with_execution_reason(ExecutionReason::Cancelled)
            .with_message(message),
    };
    t.conditions.retain(|c| c.kind != types::COMPLETED);
    t.conditions.push(condition);
    match state {
        TaskState::Running if t.start_time.is_none() => t.start_time = Some(now),
        TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled => {
            t.completion_time = Some(now);
            t.reconciling = false;
        }
        _ => {}
    }
    t.update_time = Some(now);
}

/// A write of the fake controller; one the API raced (a deletion) is dropped.
fn put<T: serde::Serialize>(
    store: &MemStore,
    kind: &str,
    name: &str,
    value: &T,
    expected: Precondition,
) {
    let doc = api::json::to_value(value, api::EnumEncoding::Name);
    let _ = store.put(kind, name, doc, expected);
}

/// One attempt of a task ends: its log line, and whether it succeeded.
fn attempt(logs: &Path, e: &Execution, t: &mut Task) -> bool {
    let c = &t.containers[0];
    let fails = c
        .env
        .iter()
        .any(|v| v.name == "FAIL" && v.value.as_deref() == Some("1"));
    let entry = json!({
        "time": Timestamp::now().to_string(),
        "stream": "stdout",
        "container": "job",
        "text": format!("task {} says {}", t.index, c.args.join(" ")),
        "severity": null,
    });
    let path: PathBuf = control::jobs::execution::log_path(
        logs,
        "local",
        &t.job,
        e.id(),
        t.index as u32,
        t.retried as u32,
    );
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut file = std::fs::File::create(&path).unwrap();
    writeln!(file, "{entry}").unwrap();
    t.last_attempt_result = Some(TaskAttemptResult {
        exit_code: if fails { 1 } else { 0 },
        ..Default::default()
    });
    !fails
}

/// The fake controller's step of one execution (see the module documentation).
fn step_execution(
    store: &MemStore,
    logs: &Path,
    last_step: &mut HashMap<String, Instant>,
    record: store::Record,
) {
    let mut e: Execution = api::json::from_value(record.doc).unwrap();
    if e.completion_time.is_some() {
        return;
    }
    let cancelling = e
        .completed_condition()
        .is_some_and(|c| c.execution_reason == Some(ExecutionReason::Cancelling));
    if !cancelling && last_step.get(&e.name).is_some_and(|t| t.elapsed() < STEP) {
        return;
    }
    last_step.insert(e.name.clone(), Instant::now());
    let mut tasks: Vec<Task> = store
        .list(TASK_KIND, &e.name, 0, None)
        .unwrap()
        .records
        .into_iter()
        .map(|r| api::json::from_value(r.doc).unwrap())
        .collect();
    tasks.sort_by_key(|t| t.index);
    let mut changed: Vec<usize> = Vec::new();
    let created = tasks.is_empty();
    if created {
        tasks = (0..e.task_count.max(1))
            .map(|i| Task::for_execution(&e, i))
            .collect();
        changed.extend(0..tasks.len());
        e.start_time = Some(Timestamp::now());
    } else if cancelling {
        for (i, t) in tasks.iter_mut().enumerate() {
            if matches!(task_state(t), TaskState::Pending | TaskState::Running) {
                set_task_state(t, TaskState::Cancelled, "The task was cancelled.");
                changed.push(i);
            }
        }
    } else {
        for (i, t) in tasks.iter_mut().enumerate() {
            if task_state(t) != TaskState::Running {
                continue;
            }
            if attempt(logs, &e, t) {
                set_task_state(t, TaskState::Succeeded, "");
            } else if t.retried < t.max_retries {
                t.retried += 1;
            } else {
                let message = format!("Task {} failed: the container exited with code 1.", t.id());
                set_task_state(t, TaskState::Failed, &message);
            }
            changed.push(i);
        }
    }
    // Start tasks up to parallelism, unless one failed (then the rest never run).
    let failed = tasks.iter().any(|t| task_state(t) == TaskState::Failed);
    let parallelism = match e.parallelism {
        0 => usize::MAX,
        n => n as usize,
    };
    for i in 0..tasks.len() {
        let running = tasks
            .iter()
            .filter(|t| task_state(t) == TaskState::Running)
            .count();
        if cancelling || task_state(&tasks[i]) != TaskState::Pending {
            continue;
        }
        if failed {
            set_task_state(&mut tasks[i], TaskState::Cancelled, "The task never ran.");
            changed.push(i);
        } else if running < parallelism {
            set_task_state(&mut tasks[i], TaskState::Running, "");
            changed.push(i);
        }
    }
    for i in changed {
        let t = &mut tasks[i];
        t.etag = String::new();
        t.etag = t.compute_etag();
        let expected = if created {
            Precondition::Absent
        } else {
            Precondition::Exists
        };
        put(store, TASK_KIND, &t.name.clone(), t, expected);
    }

    let count = |s: TaskState| tasks.iter().filter(|t| task_state(t) == s).count() as i32;
    e.running_count = count(TaskState::Running);
    e.succeeded_count = count(TaskState::Succeeded);
    e.failed_count = count(TaskState::Failed);
    e.cancelled_count = count(TaskState::Cancelled);
    e.retried_count = tasks.iter().map(|t| t.retried).sum();
    let ended = e.running_count == 0 && count(TaskState::Pending) == 0;
    let end = ended.then(|| {
        if cancelling {
            (
                CompletionStatus::Cancelled,
                ExecutionReason::Cancelled,
                "The execution was cancelled.".to_string(),
            )
        } else if let Some(t) = tasks.iter().find(|t| task_state(t) == TaskState::Failed) {
            let message = t.conditions.last().unwrap().message.clone();
            (
                CompletionStatus::Failed,
                ExecutionReason::NonZeroExitCode,
                message,
            )
        } else {
            (
                CompletionStatus::Succeeded,
                ExecutionReason::Undefined,
                format!("Execution {} has completed successfully.", e.id()),
            )
        }
    });
    if let Some((status, reason, message)) = &end {
        let state = if *status == CompletionStatus::Succeeded {
            ConditionState::Succeeded
        } else {
            ConditionState::Failed
        };
        let mut c = Condition::new(types::COMPLETED, state).with_message(message.clone());
        if *reason != ExecutionReason::Undefined {
            c = c.with_execution_reason(*reason);
        }
        e.conditions.retain(|c| c.kind != types::COMPLETED);
        e.conditions.insert(0, c);
        e.completion_time = Some(Timestamp::now());
        e.reconciling = false;
    } else if e.running_count > 0 && !cancelling {
        for c in &mut e.conditions {
            if c.kind == types::COMPLETED && c.state == ConditionState::Pending {
                *c = Condition::new(types::COMPLETED, ConditionState::Reconciling);
            }
        }
    }
    e.etag = String::new();
    e.etag = e.compute_etag();
    let doc = api::json::to_value(&e, api::EnumEncoding::Name);
    // The API may have written meanwhile (a cancel): the next pass tries again.
    if store
        .put(
            EXECUTION_KIND,
            &e.name,
            doc.clone(),
            Precondition::Revision(record.revision),
        )
        .is_err()
    {
        last_step.remove(&e.name);
        return;
    }
    let Some((status, _, message)) = end else {
        return;
    };
    if let Some(j) = store.get(JOB_KIND, e.job_name()).unwrap() {
        let mut job: Job = api::json::from_value(j.doc).unwrap();
        if let Some(latest) = job.latest_created_execution.as_mut() {
            if latest.name == e.name {
                latest.completion_status = status;
                latest.completion_time = e.completion_time;
                job.etag = job.compute_etag();
                put(
                    store,
                    JOB_KIND,
                    &job.name.clone(),
                    &job,
                    Precondition::Revision(j.revision),
                );
            }
        }
    }
    for record in store.list(OPERATION_KIND, PARENT, 0, None).unwrap().records {
        let op: Operation = api::json::from_value(record.doc).unwrap();
        let Some(meta) = op.metadata.as_ref().and_then(|m| m.as_execution()) else {
            continue;
        };
        if op.done || meta.name != e.name {
            continue;
        }
        let is_cancel = meta
            .completed_condition()
            .is_some_and(|c| c.execution_reason == Some(ExecutionReason::Cancelling));
        let result = if status == CompletionStatus::Succeeded || is_cancel {
            Ok(doc.clone())
        } else {
            Err(Status::failed_precondition(message.clone()))
        };
        api::complete_operation(store, &op.name, result).unwrap();
    }
}

impl Platform {
    fn homerun(&self, args: &[&str]) -> Output {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_homerun"));
        for (k, _) in std::env::vars() {
            if k.starts_with("HOMERUN_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("--api-addr")
            .arg(self.addr.to_string())
            .arg("--data-dir")
            .arg(self.data.path())
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs homerun and expects success.
    fn ok(&self, args: &[&str]) -> Output {
        let out = self.homerun(args);
        assert!(
            out.status.success(),
            "homerun {args:?} failed\nstdout: {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        out
    }

    /// Runs homerun and expects a failure: its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.homerun(args);
        assert!(
            !out.status.success(),
            "homerun {args:?} succeeded\nstdout: {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stderr)
    }

    fn job(&self, id: &str) -> Job {
        let record = self
            .store
            .get(JOB_KIND, &format!("{PARENT}/jobs/{id}"))
            .unwrap()
            .unwrap_or_else(|| panic!("job {id} is not stored"));
        api::json::from_value(record.doc).unwrap()
    }

    fn execution(&self, id: &str) -> Option<Execution> {
        let job = id.rsplit_once('-').unwrap().0;
        self.store
            .get(
                EXECUTION_KIND,
                &format!("{PARENT}/jobs/{job}/executions/{id}"),
            )
            .unwrap()
            .map(|r| api::json::from_value(r.doc).unwrap())
    }

    /// Waits for the fake controller to end an execution.
    fn ended(&self, id: &str) -> Execution {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let e = self.execution(id).unwrap();
            if e.completion_time.is_some() {
                return e;
            }
            assert!(Instant::now() < deadline, "execution {id} never ended");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The execution id a verb printed on stdout.
fn printed_id(out: &Output) -> String {
    let id = text(&out.stdout).trim().to_string();
    assert!(
        !id.is_empty() && !id.contains(char::is_whitespace),
        "{id:?}"
    );
    id
}

#[test]
fn jobs_create_with_every_flag_list_describe_and_formats() {
    let p = platform();
    let out = p.ok(&[
        "jobs",
        "create",
        "report",
        "--image",
        "example/report:1",
        "--tasks",
        "4",
        "--parallelism",
        "2",
        "--max-retries",
        "5",
        "--task-timeout",
        "1h30m",
        "--set-env-vars",
        "A=1,B=two",
        "--cpu",
        "2",
        "--memory",
        "1Gi",
        "--command",
        "/bin/report",
        "--args=-v,--out=x",
        "--service-account",
        "runner@example.com",
        "--execution-environment",
        "gen2",
    ]);
    let stderr = text(&out.stderr);
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(
        stderr.contains("Creating homerun job [report] in project [local] region [local]"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Job [report] has successfully been created."),
        "{stderr}"
    );
    assert!(stderr.contains("homerun jobs execute report"), "{stderr}");

    let j = p.job("report");
    let t = j.template.as_ref().unwrap();
    assert_eq!((t.task_count, t.parallelism), (4, 2));
    let task = t.template.as_ref().unwrap();
    assert_eq!(task.max_retries, Some(5));
    assert_eq!(task.timeout, Some(api::Duration::from_secs(5400)));
    assert_eq!(task.service_account, "runner@example.com");
    assert_eq!(task.execution_environment, api::ExecutionEnvironment::Gen2);
    let c = &task.containers[0];
    assert_eq!(c.image, "example/report:1");
    assert_eq!(
        c.env,
        [api::EnvVar::new("A", "1"), api::EnvVar::new("B", "two")]
    );
    let r = c.resources.as_ref().unwrap();
    assert_eq!(r.limits["cpu"], "2");
    assert_eq!(r.limits["memory"], "1Gi");
    assert_eq!(c.command, ["/bin/report"]);
    assert_eq!(c.args, ["-v", "--out=x"]);
    assert_eq!(j.execution_count, 0);

    // Defaults are the API's.
    p.ok(&["jobs", "create", "plain", "--image", "example/plain"]);
    let j = p.job("plain");
    let t = j.template.as_ref().unwrap();
    assert_eq!(t.task_count, 1);
    assert_eq!(t.template.as_ref().unwrap().max_retries, Some(3));

    let out = p.ok(&["jobs", "describe", "report"]);
    let described = text(&out.stdout);
    assert!(
        described.starts_with("✔ Job report in region local\n\nNever executed\n"),
        "{described}"
    );
    for line in [
        "Image:",
        "example/report:1",
        "Command:",
        "/bin/report",
        "Args:",
        "-v --out=x",
        "  A=1\n",
        "Tasks:",
        "Parallelism:",
        "Max retries:",
        "Task timeout:",
        "5400s",
        "runner@example.com",
    ] {
        assert!(described.contains(line), "{line:?} in {described}");
    }
    assert!(!described.contains("CPU allocation"), "{described}");

    let out = p.ok(&["jobs", "describe", "report", "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], format!("{PARENT}/jobs/report"));
    assert_eq!(v["template"]["taskCount"], 4);
    let out = p.ok(&["jobs", "describe", "report", "--format", "yaml"]);
    let y: Value = serde_norway::from_slice(&out.stdout).unwrap();
    assert_eq!(y, v);

    let out = p.ok(&["jobs", "list"]);
    let table = text(&out.stdout);
    assert!(table.starts_with("   JOB "), "{table}");
    assert!(
        table.contains("report") && table.contains("plain"),
        "{table}"
    );
    let out = p.ok(&["jobs", "list", "--format", "json"]);
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.len(), 2);

    // With --format json, create prints the job.
    let out = p.ok(&[
        "jobs", "create", "third", "--image", "x", "--format", "json",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], format!("{PARENT}/jobs/third"));

    // Errors: no image, a job that exists, a task count the API refuses, --wait alone.
    let stderr = p.fails(&["jobs", "create", "noimage"]);
    assert!(
        stderr.contains("homerun: --image is required to create job [noimage]"),
        "{stderr}"
    );
    let stderr = p.fails(&["jobs", "create", "report", "--image", "x"]);
    assert!(
        stderr.contains("homerun: Resource 'report' already exists."),
        "{stderr}"
    );
    let stderr = p.fails(&["jobs", "create", "big", "--image", "x", "--tasks", "20000"]);
    assert!(
        stderr.contains("homerun: ") && stderr.contains("taskCount"),
        "{stderr}"
    );
    let stderr = p.fails(&["jobs", "create", "w", "--image", "x", "--wait"]);
    assert!(stderr.contains("--execute-now"), "{stderr}");
    let stderr = p.fails(&["jobs", "describe", "nothing"]);
    assert!(
        stderr.contains("homerun: job [nothing] does not exist in project [local] region [local]"),
        "{stderr}"
    );
}

#[test]
fn jobs_update_keeps_what_is_not_given() {
    let p = platform();
    p.ok(&[
        "jobs",
        "create",
        "etl",
        "--image",
        "example/etl:1",
        "--tasks",
        "3",
        "--set-env-vars",
        "A=1,B=2",
        "--memory",
        "1Gi",
        "--args",
        "run",
    ]);
    let out = p.ok(&[
        "jobs",
        "update",
        "etl",
        "--image",
        "example/etl:2",
        "--update-env-vars",
        "B=3,C=4",
        "--max-retries",
        "1",
    ]);
    assert!(
        text(&out.stderr).contains("Job [etl] has successfully been updated."),
        "{}",
        text(&out.stderr)
    );
    let j = p.job("etl");
    assert_eq!(j.generation, 2);
    let t = j.template.as_ref().unwrap();
    assert_eq!(t.task_count, 3);
    let task = t.template.as_ref().unwrap();
    assert_eq!(task.max_retries, Some(1));
    let c = &task.containers[0];
    assert_eq!(c.image, "example/etl:2");
    assert_eq!(
        c.env,
        [
            api::EnvVar::new("A", "1"),
            api::EnvVar::new("B", "3"),
            api::EnvVar::new("C", "4")
        ]
    );
    assert_eq!(c.resources.as_ref().unwrap().limits["memory"], "1Gi");
    assert_eq!(c.args, ["run"]);

    p.ok(&[
        "jobs",
        "update",
        "etl",
        "--remove-env-vars",
        "A",
        "--tasks",
        "2",
        "--args",
        "",
    ]);
    let j = p.job("etl");
    let t = j.template.as_ref().unwrap();
    assert_eq!(t.task_count, 2);
    let c = &t.template.as_ref().unwrap().containers[0];
    assert_eq!(
        c.env,
        [api::EnvVar::new("B", "3"), api::EnvVar::new("C", "4")]
    );
    assert!(c.args.is_empty());
    assert_eq!(c.image, "example/etl:2");

    // The same again changes nothing.
    let out = p.ok(&["jobs", "update", "etl", "--tasks", "2"]);
    assert!(
        text(&out.stderr).contains("Nothing changed."),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(p.job("etl").generation, 3);

    let stderr = p.fails(&["jobs", "update", "nothing", "--image", "x"]);
    assert!(
        stderr.contains("homerun: job [nothing] does not exist"),
        "{stderr}"
    );
    let stderr = p.fails(&["jobs", "update", "etl", "--max-retries", "11"]);
    assert!(stderr.contains("maxRetries"), "{stderr}");

    // An update may run the job at once.
    let out = p.ok(&[
        "jobs",
        "update",
        "etl",
        "--image",
        "example/etl:3",
        "--execute-now",
    ]);
    let id = printed_id(&out);
    assert!(id.starts_with("etl-"), "{id}");
    assert_eq!(
        p.execution(&id).unwrap().template.unwrap().containers[0].image,
        "example/etl:3"
    );
}

#[test]
fn execute_wait_follows_the_progress_to_success() {
    let p = platform();
    p.ok(&[
        "jobs",
        "create",
        "batch",
        "--image",
        "example/batch",
        "--tasks",
        "3",
        "--parallelism",
        "1",
        "--args",
        "go",
    ]);
    let out = p.ok(&["jobs", "execute", "batch", "--wait"]);
    let id = printed_id(&out);
    assert!(id.starts_with("batch-"), "{id}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("Created execution [{id}].")),
        "{stderr}"
    );
    // Plain lines (stderr is not a terminal), from pending to the end.
    assert!(
        stderr.contains(&format!(
            "Execution [{id}] pending: 0 succeeded, 0 failed, 0 running of 3 tasks\n"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "Execution [{id}] succeeded: 3 succeeded, 0 failed, 0 running of 3 tasks\n"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("Execution [{id}] has successfully completed.")),
        "{stderr}"
    );
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(&format!("Execution [{id}] ")) && l.contains(" of 3 tasks"))
        .collect();
    let mut unique = lines.clone();
    unique.dedup();
    assert_eq!(lines, unique, "a line only when the progress changes");

    let e = p.execution(&id).unwrap();
    assert_eq!(e.succeeded_count, 3);
    let j = p.job("batch");
    assert_eq!(j.execution_count, 1);

    let out = p.ok(&["jobs", "describe", "batch"]);
    let described = text(&out.stdout);
    assert!(described.contains("Executed 1 time\n"), "{described}");
    assert!(
        described.contains(&format!("with execution {id} (succeeded)")),
        "{described}"
    );

    let out = p.ok(&["executions", "describe", &id]);
    let described = text(&out.stdout);
    assert!(
        described.starts_with(&format!("✔ Execution {id} in region local\n")),
        "{described}"
    );
    assert!(described.contains("Job:"), "{described}");
    assert!(
        described.contains("State:          succeeded"),
        "{described}"
    );
    assert!(
        described.contains("3 succeeded, 0 failed, 0 running"),
        "{described}"
    );
    assert!(described.contains("example/batch"), "{described}");
    let out = p.ok(&["executions", "describe", &id, "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["succeededCount"], 3);

    // --execute-now --wait on create, and the list of both executions.
    let out = p.ok(&[
        "jobs",
        "create",
        "once",
        "--image",
        "example/once",
        "--execute-now",
        "--wait",
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["succeededCount"], 1);
    let second = v["name"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();

    let out = p.ok(&["executions", "list"]);
    let table = text(&out.stdout);
    assert!(table.contains(&id) && table.contains(&second), "{table}");
    assert!(
        table.contains("3 / 3") && table.contains("1 / 1"),
        "{table}"
    );
    let out = p.ok(&["executions", "list", "--job", "batch", "--format", "json"]);
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0]["name"],
        format!("{PARENT}/jobs/batch/executions/{id}")
    );

    let out = p.ok(&["tasks", "list", "--execution", &id]);
    let table = text(&out.stdout);
    for i in 0..3 {
        assert!(table.contains(&format!("{id}-{i}")), "{table}");
    }
    assert_eq!(table.matches("succeeded").count(), 3, "{table}");
    let out = p.ok(&["tasks", "list", "--execution", &id, "--format", "yaml"]);
    let tasks: Vec<Value> = serde_norway::from_slice(&out.stdout).unwrap();
    assert_eq!(tasks.len(), 3);
    let out = p.ok(&["tasks", "describe", &format!("{id}-1")]);
    let described = text(&out.stdout);
    assert!(
        described.starts_with(&format!("✔ Task {id}-1 in region local\n")),
        "{described}"
    );
    assert!(
        described.contains("Last attempt:  exit code 0"),
        "{described}"
    );
    let stderr = p.fails(&["tasks", "list", "--execution", "batch-zzzzz"]);
    assert!(
        stderr.contains("homerun: execution [batch-zzzzz] does not exist"),
        "{stderr}"
    );
}

#[test]
fn execute_with_overrides_for_one_execution() {
    let p = platform();
    p.ok(&[
        "jobs",
        "create",
        "tool",
        "--image",
        "example/tool",
        "--args",
        "a",
        "--set-env-vars",
        "MODE=slow,KEEP=1",
    ]);
    let out = p.ok(&[
        "jobs",
        "execute",
        "tool",
        "--tasks",
        "2",
        "--task-timeout",
        "90s",
        "--args=--fast,b",
        "--update-env-vars",
        "MODE=fast,NEW=2",
    ]);
    let id = printed_id(&out);
    assert!(
        text(&out.stderr).contains(&format!("Execution [{id}] has started.")),
        "{}",
        text(&out.stderr)
    );
    let e = p.execution(&id).unwrap();
    assert_eq!(e.task_count, 2);
    let t = e.template.as_ref().unwrap();
    assert_eq!(t.timeout, Some(api::Duration::from_secs(90)));
    let c = &t.containers[0];
    assert_eq!(c.args, ["--fast", "b"]);
    assert_eq!(
        c.env,
        [
            api::EnvVar::new("MODE", "fast"),
            api::EnvVar::new("KEEP", "1"),
            api::EnvVar::new("NEW", "2")
        ]
    );
    // The job is as it was.
    let j = p.job("tool");
    let c = &j
        .template
        .as_ref()
        .unwrap()
        .template
        .as_ref()
        .unwrap()
        .containers[0];
    assert_eq!(c.args, ["a"]);
    assert_eq!(j.template.as_ref().unwrap().task_count, 1);

    // --args "" runs without the job's args.
    let out = p.ok(&["jobs", "execute", "tool", "--args", "", "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = v["name"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    assert!(p.execution(&id).unwrap().template.unwrap().containers[0]
        .args
        .is_empty());

    let stderr = p.fails(&["jobs", "execute", "tool", "--tasks", "20000"]);
    assert!(stderr.contains("taskCount"), "{stderr}");
    let stderr = p.fails(&["jobs", "execute", "nothing", "--wait"]);
    assert!(
        stderr.contains("homerun: Resource 'nothing' of kind 'JOB'"),
        "{stderr}"
    );
}

#[test]
fn a_failed_execution_fails_the_command_with_its_message() {
    let p = platform();
    p.ok(&[
        "jobs",
        "create",
        "flaky",
        "--image",
        "example/flaky",
        "--tasks",
        "2",
        "--parallelism",
        "1",
        "--max-retries",
        "1",
        "--set-env-vars",
        "FAIL=1",
    ]);
    let out = p.homerun(&["jobs", "execute", "flaky", "--wait"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    let latest = p.job("flaky").latest_created_execution.unwrap().name;
    let id = latest.rsplit('/').next().unwrap().to_string();
    assert!(
        stderr.contains(&format!(
            "Execution [{id}] failed: 0 succeeded, 1 failed, 0 running, 1 cancelled of 2 tasks (1 retried)\n"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "homerun: Task {id}-0 failed: the container exited with code 1."
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("homerun executions logs {id}")),
        "{stderr}"
    );

    let out = p.ok(&["executions", "describe", &id]);
    let described = text(&out.stdout);
    assert!(described.starts_with("✖ Execution"), "{described}");
    assert!(described.contains("Status:         Task"), "{described}");
    let out = p.ok(&["tasks", "list", "--execution", &id]);
    let table = text(&out.stdout);
    assert!(
        table.contains("failed") && table.contains("cancelled"),
        "{table}"
    );
    assert!(table.contains("exit code 1"), "{table}");

    // The two attempts of task 0 logged.
    let out = p.ok(&["executions", "logs", &id]);
    let logs = text(&out.stdout);
    assert_eq!(logs.lines().count(), 2, "{logs}");
    assert!(logs.contains("[task 0 attempt 0] task 0 says"), "{logs}");
    assert!(logs.contains("[task 0 attempt 1] task 0 says"), "{logs}");
}

#[test]
fn logs_of_task_attempts() {
    let p = platform();
    p.ok(&[
        "jobs",
        "create",
        "hello",
        "--image",
        "example/hello",
        "--tasks",
        "2",
        "--args",
        "hi,there",
    ]);
    let out = p.ok(&["jobs", "execute", "hello", "--wait"]);
    let id = printed_id(&out);

    let out = p.ok(&["executions", "logs", &id]);
    let logs = text(&out.stdout);
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines.len(), 2, "{logs}");
    for (i, line) in lines.iter().enumerate() {
        // TIME [task N attempt K] TEXT, the time first.
        let (time, rest) = line.split_once(' ').unwrap();
        assert!(time.ends_with('Z') && time.contains('T'), "{line}");
        assert_eq!(rest, format!("[task {i} attempt 0] task {i} says hi there"));
    }

    let out = p.ok(&["executions", "logs", &id, "--task", "1"]);
    let logs = text(&out.stdout);
    assert_eq!(logs.lines().count(), 1, "{logs}");
    assert!(logs.contains("[task 1 attempt 0]"), "{logs}");
    let out = p.ok(&["executions", "logs", &id, "--task", "1", "--attempt", "3"]);
    assert!(out.stdout.is_empty());

    let out = p.ok(&["executions", "logs", &id, "--format", "json"]);
    let entries: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1]["task"], 1);
    assert_eq!(entries[1]["text"], "task 1 says hi there");

    // An execution with no logs yet, and one that does not exist.
    p.ok(&[
        "jobs",
        "create",
        "quiet",
        "--image",
        "example/quiet",
        "--tasks",
        "50",
        "--parallelism",
        "1",
    ]);
    let out = p.ok(&["jobs", "execute", "quiet"]);
    let quiet = printed_id(&out);
    // Its first attempt ends a step after it starts: no logs yet, or a few.
    let out = p.ok(&["executions", "logs", &quiet]);
    assert!(
        text(&out.stdout).lines().count() < 50,
        "{}",
        text(&out.stdout)
    );
    let stderr = p.fails(&["executions", "logs", "hello-zzzzz"]);
    assert!(
        stderr.contains("homerun: execution [hello-zzzzz] does not exist"),
        "{stderr}"
    );
    let stderr = p.fails(&["executions", "logs", "nohyphen"]);
    assert!(stderr.contains("is not an execution id"), "{stderr}");
}

#[test]
fn cancel_and_delete_executions_and_jobs() {
    let p = platform();
    p.ok(&[
        "jobs",
        "create",
        "long",
        "--image",
        "example/long",
        "--tasks",
        "100",
        "--parallelism",
        "1",
    ]);
    let out = p.ok(&["jobs", "execute", "long"]);
    let id = printed_id(&out);
    let out = p.ok(&["executions", "cancel", &id]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("Execution [{id}] has been cancelled.")),
        "{stderr}"
    );
    let e = p.ended(&id);
    assert!(e.cancelled_count > 0, "{e:?}");
    let completed = e.completed_condition().unwrap();
    assert_eq!(completed.execution_reason, Some(ExecutionReason::Cancelled));
    assert!(
        stderr.contains(&format!("Execution [{id}] cancelled: ")),
        "{stderr}"
    );
    let out = p.ok(&["executions", "list"]);
    assert!(
        text(&out.stdout).contains("cancelled"),
        "{}",
        text(&out.stdout)
    );

    // An ended execution cannot be cancelled again.
    let stderr = p.fails(&["executions", "cancel", &id]);
    assert!(stderr.contains("homerun: "), "{stderr}");

    // A run followed with --wait and cancelled meanwhile fails.
    let out = p.ok(&["jobs", "execute", "long"]);
    let second = printed_id(&out);
    let out = p.ok(&["executions", "cancel", &second, "--async"]);
    assert!(
        text(&out.stdout).starts_with(&format!("{PARENT}/operations/")),
        "{}",
        text(&out.stdout)
    );
    p.ended(&second);

    let out = p.ok(&["executions", "delete", &id, "--quiet"]);
    assert!(
        text(&out.stderr).contains(&format!("Deleted execution [{id}].")),
        "{}",
        text(&out.stderr)
    );
    assert!(p.execution(&id).is_none());
    assert!(p
        .store
        .list(
            TASK_KIND,
            &format!("{PARENT}/jobs/long/executions/{id}"),
            0,
            None
        )
        .unwrap()
        .records
        .is_empty());
    let stderr = p.fails(&["executions", "describe", &id]);
    assert!(
        stderr.contains(&format!("homerun: execution [{id}] does not exist")),
        "{stderr}"
    );

    let out = p.ok(&["jobs", "delete", "long"]);
    assert!(
        text(&out.stderr).contains("Deleted job [long]."),
        "{}",
        text(&out.stderr)
    );
    assert!(p
        .store
        .get(JOB_KIND, &format!("{PARENT}/jobs/long"))
        .unwrap()
        .is_none());
    assert!(p.execution(&second).is_none());
    let out = p.ok(&["executions", "list"]);
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("Listed 0 items."));
    let stderr = p.fails(&["jobs", "delete", "long"]);
    assert!(
        stderr.contains("homerun: Resource 'long' of kind 'JOB'"),
        "{stderr}"
    );
}

#[test]
fn a_followed_execution_deleted_meanwhile_ends_the_wait() {
    let p = platform();
    p.ok(&[
        "jobs",
        "create",
        "slow",
        "--image",
        "example/slow",
        "--tasks",
        "100",
        "--parallelism",
        "1",
    ]);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_homerun"))
        .args(["--api-addr", &p.addr.to_string(), "--data-dir"])
        .arg(p.data.path())
        .args(["jobs", "execute", "slow", "--wait"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let id = loop {
        let records = p
            .store
            .list(EXECUTION_KIND, &format!("{PARENT}/jobs/slow"), 0, None)
            .unwrap()
            .records;
        if let Some(r) = records.first() {
            break r.name.rsplit('/').next().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no execution");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Running, and seen so by the follower first (however loaded the machine).
    while p.execution(&id).is_none_or(|e| e.running_count == 0) {
        assert!(Instant::now() < deadline, "execution {id} never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500));
    p.ok(&["executions", "delete", &id]);
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("homerun: execution [{id}] was deleted")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("Execution [{id}] running: ")),
        "{stderr}"
    );
}

#[test]
fn jobs_with_secrets_a_service_account_and_iam_policies() {
    let p = platform();
    let dir = tempfile::tempdir().unwrap();
    let value = dir.path().join("value");
    std::fs::write(&value, "the-token").unwrap();
    p.ok(&[
        "secrets",
        "create",
        "api-token",
        "--data-file",
        value.to_str().unwrap(),
    ]);
    let sa = "batch@local.iam.gserviceaccount.com";
    p.ok(&[
        "jobs",
        "create",
        "sync",
        "--image",
        "example/sync:1",
        "--service-account",
        sa,
        "--set-env-vars",
        "MODE=full",
        "--set-secrets",
        "TOKEN=api-token:1,/secrets/token=api-token:latest",
    ]);
    let job = p.job("sync");
    let task = job.template.as_ref().unwrap().template.as_ref().unwrap();
    assert_eq!(task.service_account, sa);
    let c = &task.containers[0];
    assert_eq!(c.env[0], api::EnvVar::new("MODE", "full"));
    let r = c.env[1]
        .value_source
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!((r.secret.as_str(), r.version.as_str()), ("api-token", "1"));
    assert_eq!(c.volume_mounts[0].mount_path, "/secrets");
    let v = task.volumes[0].secret.as_ref().unwrap();
    assert_eq!(
        (v.items[0].path.as_str(), v.items[0].version.as_str()),
        ("token", "latest")
    );
    let out = p.ok(&["jobs", "describe", "sync"]);
    let described = text(&out.stdout);
    assert!(
        described.contains("TOKEN=secret api-token:1")
            && described.contains("/secrets/token=secret api-token:latest")
            && !described.contains("the-token\n"),
        "{described}"
    );

    // update changes the secrets it names, keeping the rest.
    p.ok(&[
        "jobs",
        "update",
        "sync",
        "--remove-secrets",
        "/secrets/token",
        "--update-secrets",
        "OTHER=api-token:latest",
    ]);
    let job = p.job("sync");
    let task = job.template.as_ref().unwrap().template.as_ref().unwrap();
    let names: Vec<&str> = task.containers[0]
        .env
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(names, ["MODE", "TOKEN", "OTHER"]);
    assert!(task.volumes.is_empty() && task.containers[0].volume_mounts.is_empty());
    assert_eq!(task.service_account, sa, "kept");

    // The job's IAM policy: who may run it.
    let member = format!("serviceAccount:{sa}");
    let out = p.ok(&[
        "jobs",
        "add-iam-policy-binding",
        "sync",
        "--member",
        &member,
        "--role",
        "roles/run.invoker",
        "--format",
        "json",
    ]);
    let policy: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(policy["bindings"][0]["members"], json!([member]));
    assert!(text(&out.stderr).contains("Updated IAM policy for job [sync]."));
    let out = p.ok(&["jobs", "get-iam-policy", "sync", "--format", "json"]);
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(read, policy);
    p.ok(&[
        "jobs",
        "remove-iam-policy-binding",
        "sync",
        "--member",
        &member,
        "--role",
        "roles/run.invoker",
    ]);
    let out = p.ok(&["jobs", "get-iam-policy", "sync", "--format", "json"]);
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(read.get("bindings").is_none(), "{read}");
}
