//! Jobs benchmark (the jobs issue): an execution of N tasks (default 1000) running `true`
//! in the busybox test image, P at once (default 50), through `homerun up` (the release
//! binary `target/release/homerun`, started by testkit's harness on 10.240.245.0/24 with
//! `--max-task-parallelism P`): the wall time from the `:run` call until its operation is
//! done, tasks per second, and every task succeeded (the execution's `succeededCount` is N,
//! nothing failed or retried). Baseline in the same run: N bare `runc run` (foreground:
//! create, start, wait, delete) of an equivalent bundle, P at once: the same `config.json`
//! homerun writes (`runtime::bundle::write_bare_bundle`: seccomp, capabilities, limits,
//! namespaces; the job's default limits, the image's PATH and the `CLOUD_RUN_*` variables)
//! over the busybox layer unpacked once into a plain directory, with a fresh network
//! namespace made by runc instead of one attached to the bridge.
//!
//! Repetitions alternate (homerun, baseline, homerun, ...) so that the machine's other load
//! falls on both alike. Beside the wall times: the tasks' own start and completion times
//! from the store (the time until the first attempt started, the attempts' durations, how
//! many ran at once on average, the time from the last completion until the operation was
//! done), the CPU time homerun and its children (runc, the containers) used per task, and
//! how busy the machine was (all cores, steal included) during each run.
//!
//! Run as root: `scripts/bench-jobs.sh` (or `cargo run --release -p homerun --example
//! jobs_bench`). Settings: `BENCH_TASKS` (1000), `BENCH_PARALLELISM` (50), `BENCH_REPS` (3),
//! `BENCH_ONLY` (`homerun` or `bare`: one side only, e.g. under `perf record -a`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use image::{ImageSource, Quiet, RegistryOptions, Store};
use runtime::container::Limits;
use serde_json::{json, Value};
use testkit::platform::Platform;

/// The platform's bridge and subnet number: 10.240.245.0/24.
const NET: u8 = 245;

/// The longest a run may take (1000 tasks at 1 task/s, and some).
const RUN_PATIENCE: Duration = Duration::from_secs(1800);

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The job's container limits (homerun's defaults for a job without `resources`) and its
/// pids limit.
const LIMITS: Limits = Limits {
    memory_bytes: 512 << 20,
    cpu_millis: 1000,
    pids: 4096,
};

/// Machine-wide CPU counters from `/proc/stat`, in clock ticks: (busy, steal, total).
fn machine_ticks() -> (u64, u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let line = stat.lines().next().expect("the cpu line");
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest times are inside user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v[4];
    (total - idle, v[7], total)
}

/// utime + stime, and cutime + cstime (children waited for), of `pid`, in clock ticks.
fn process_ticks(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the process's stat");
    let (_, tail) = stat.rsplit_once(") ").expect("stat's fields");
    // The fields after the command: state is field 3, utime field 14.
    let f: Vec<u64> = tail
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    (f[0] + f[1], f[2] + f[3])
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `homerun up` child of this process (the only platform this benchmark runs).
fn homerun_pid() -> u32 {
    let me = std::process::id();
    let children =
        std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")).unwrap_or_default();
    children
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "homerun")
        })
        .expect("the homerun up child process")
}

/// What one run used besides its wall time.
struct Usage {
    wall: Duration,
    /// CPU seconds of the process doing the work itself, and of its children (waited for).
    own_cpu: f64,
    children_cpu: f64,
    /// Shares of all cores during the run: busy (steal included), steal, and busy outside
    /// the processes measured (other load on the machine, and kernel threads: the network
    /// namespaces' cleanup runs in kworkers).
    busy: f64,
    steal: f64,
    unaccounted: f64,
    /// The busy share of all cores over a quiet second before the run: the machine's other
    /// load (and what is left of the previous run's).
    quiet_busy: f64,
}

/// Measures `run` (returning its wall time) with the CPU counters of `pid` around it (and
/// this process's own, which waits on the platform's API for the homerun runs).
fn measured(pid: u32, run: impl FnOnce() -> Duration) -> Usage {
    let hz = clock_ticks();
    let q0 = machine_ticks();
    std::thread::sleep(Duration::from_secs(1));
    let q1 = machine_ticks();
    let me = std::process::id();
    let (m0, p0, s0) = (machine_ticks(), process_ticks(pid), process_ticks(me));
    let wall = run();
    let (m1, p1, s1) = (machine_ticks(), process_ticks(pid), process_ticks(me));
    let total = (m1.2 - m0.2).max(1) as f64;
    let ours = if pid == me {
        (p1.0 - p0.0) + (p1.1 - p0.1)
    } else {
        (p1.0 - p0.0) + (p1.1 - p0.1) + (s1.0 - s0.0)
    };
    Usage {
        wall,
        own_cpu: (p1.0 - p0.0) as f64 / hz,
        children_cpu: (p1.1 - p0.1) as f64 / hz,
        busy: (m1.0 - m0.0) as f64 / total,
        steal: (m1.1 - m0.1) as f64 / total,
        unaccounted: (m1.0 - m0.0).saturating_sub(ours) as f64 / total,
        quiet_busy: (q1.0 - q0.0) as f64 / (q1.2 - q0.2).max(1) as f64,
    }
}

fn report(rep: usize, name: &str, u: &Usage, tasks_n: usize) {
    println!(
        "rep {rep} {name}: {:7.2} s, {:6.1} tasks/s; CPU per task {:5.1} ms own + {:5.1} ms children; all cores busy {:3.0}% (steal {:.1}%, outside the measured processes {:.0}%); quiet second before: {:.0}% busy",
        u.wall.as_secs_f64(),
        tasks_n as f64 / u.wall.as_secs_f64(),
        u.own_cpu * 1000.0 / tasks_n as f64,
        u.children_cpu * 1000.0 / tasks_n as f64,
        u.busy * 100.0,
        u.steal * 100.0,
        u.unaccounted * 100.0,
        u.quiet_busy * 100.0
    );
}

fn job_body(image: &str, tasks: usize, parallelism: usize) -> Value {
    json!({"template": {
        "taskCount": tasks,
        "parallelism": parallelism,
        "template": {
            "maxRetries": 0,
            "containers": [{"image": image, "command": ["true"]}],
        },
    }})
}

fn create_job(p: &Platform, id: &str, body: &Value) {
    let (status, op) = p.call(
        "POST",
        &format!("{}/jobs?jobId={id}", p.location()),
        Some(body),
    );
    assert_eq!(status, 200, "creating job {id}: {op}");
    let op = p.wait(&op);
    assert!(op["error"].is_null(), "creating job {id}: {op}");
}

/// `:run`, then `:wait` until the operation is done (the harness's own wait gives up after
/// two minutes, too soon for a slow run). Returns the operation, the time it took and when
/// it started.
fn run_and_wait(p: &Platform, job: &str) -> (Value, Duration, SystemTime) {
    let at = SystemTime::now();
    let started = Instant::now();
    let (status, op) = p.call(
        "POST",
        &format!("{}/jobs/{job}:run", p.location()),
        Some(&json!({})),
    );
    assert_eq!(status, 200, "running {job}: {op}");
    let name = op["name"].as_str().expect("an operation name").to_string();
    loop {
        let (status, op) = p.call(
            "POST",
            &format!("/v2/{name}:wait"),
            Some(&json!({"timeout": "60s"})),
        );
        assert_eq!(status, 200, "{op}");
        if op["done"] == true {
            return (op, started.elapsed(), at);
        }
        assert!(
            started.elapsed() < RUN_PATIENCE,
            "{name} not done after {RUN_PATIENCE:?}"
        );
    }
}

fn timestamp(v: &Value) -> Option<SystemTime> {
    let t: api::Timestamp = v.as_str()?.parse().ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(t.seconds as u64, t.nanos as u32))
}

/// Every task of `execution`, page by page.
fn tasks(p: &Platform, execution: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let (status, v) = p.call(
            "GET",
            &format!("/v2/{execution}/tasks?pageSize=500&pageToken={token}"),
            None,
        );
        assert_eq!(status, 200, "{v}");
        out.extend(v["tasks"].as_array().cloned().unwrap_or_default());
        match v["nextPageToken"].as_str() {
            Some(t) if !t.is_empty() => token = t.to_string(),
            _ => return out,
        }
    }
}

/// What the tasks' own times say about one homerun run.
struct Breakdown {
    /// From the `:run` call until the first attempt started.
    to_first_start: Duration,
    /// From the last attempt's completion until the operation was seen done.
    after_last_end: Duration,
    /// Attempt durations (start to completion as recorded), ms, sorted.
    attempt_ms: Vec<f64>,
    /// Attempts in flight on average between the first start and the last completion.
    concurrency: f64,
}

fn breakdown(tasks: &[Value], run_at: SystemTime, done_at: SystemTime) -> Breakdown {
    let mut spans: Vec<(SystemTime, SystemTime)> = tasks
        .iter()
        .map(|t| {
            (
                timestamp(&t["startTime"]).unwrap_or_else(|| panic!("no startTime: {t}")),
                timestamp(&t["completionTime"]).unwrap_or_else(|| panic!("no completionTime: {t}")),
            )
        })
        .collect();
    spans.sort();
    let first = spans.iter().map(|s| s.0).min().unwrap();
    let last = spans.iter().map(|s| s.1).max().unwrap();
    let since = |a: SystemTime, b: SystemTime| b.duration_since(a).unwrap_or_default();
    let mut attempt_ms: Vec<f64> = spans
        .iter()
        .map(|(s, e)| since(*s, *e).as_secs_f64() * 1000.0)
        .collect();
    attempt_ms.sort_by(|a, b| a.total_cmp(b));
    let busy: f64 = attempt_ms.iter().sum::<f64>() / 1000.0;
    Breakdown {
        to_first_start: since(run_at, first),
        after_last_end: since(last, done_at),
        attempt_ms,
        concurrency: busy / since(first, last).as_secs_f64().max(1e-9),
    }
}

fn pick(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

/// One homerun repetition: `:run`, wait, check, and the tasks' times.
fn homerun_run(p: &Platform, pid: u32, tasks_n: usize) -> (Usage, Breakdown) {
    let mut result = None;
    let usage = measured(pid, || {
        let (op, wall, at) = run_and_wait(p, "bench");
        result = Some((op, at));
        wall
    });
    let (op, run_at) = result.unwrap();
    let done_at = run_at + usage.wall;
    assert!(op["error"].is_null(), "the execution failed: {op}");
    let name = op["metadata"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("no execution in {op}"))
        .to_string();
    let (status, execution) = p.call("GET", &format!("/v2/{name}"), None);
    assert_eq!(status, 200, "{execution}");
    let count = |field: &str| execution[field].as_u64().unwrap_or(0);
    assert_eq!(
        count("succeededCount"),
        tasks_n as u64,
        "every task succeeded: {execution}"
    );
    for field in [
        "failedCount",
        "cancelledCount",
        "retriedCount",
        "runningCount",
    ] {
        assert_eq!(count(field), 0, "{field}: {execution}");
    }
    let all = tasks(p, &name);
    assert_eq!(all.len(), tasks_n, "the execution's tasks");
    for t in &all {
        let completed = t["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Completed"))
            .unwrap_or_else(|| panic!("no Completed condition: {t}"));
        assert_eq!(completed["state"], "CONDITION_SUCCEEDED", "{t}");
    }
    let b = breakdown(&all, run_at, done_at);
    (usage, b)
}

/// The baseline's bundles: the busybox layer unpacked once (`rootfs`), and one bundle
/// directory per slot of parallelism (each slot runs its containers one after another).
struct Baseline {
    root: PathBuf,
    slots: Vec<PathBuf>,
}

fn prepare_baseline(work: &Path, image_ref: &str, tasks_n: usize, parallelism: usize) -> Baseline {
    let store = Store::open(&work.join("store")).expect("an image store");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let source = ImageSource::parse(image_ref).expect("the image reference");
    let image = rt
        .block_on(store.pull(&source, &RegistryOptions::default(), &Quiet))
        .expect("pulling the busybox image")
        .record;
    assert_eq!(image.layers.len(), 1, "the busybox image has one layer");
    let rootfs = work.join("rootfs");
    let status = Command::new("cp")
        .arg("-a")
        .arg(store.layer_dir(&image.layers[0].digest).unwrap())
        .arg(&rootfs)
        .status()
        .expect("cp");
    assert!(status.success(), "copying the busybox layer");
    // `true` is busybox's applet: a symlink on the image's PATH.
    let applet = std::fs::read_link(rootfs.join("bin/true")).expect("/bin/true in the image");
    assert_eq!(
        applet,
        Path::new("busybox"),
        "/bin/true is busybox's applet"
    );
    // The image's own environment (PATH), as homerun gives it, and the task variables.
    let config: Value = serde_json::from_slice(
        &store
            .read_blob(&image.config_digest)
            .unwrap()
            .expect("the image config"),
    )
    .unwrap();
    let env: Vec<(String, String)> = config["config"]["Env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str()?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let slots = (0..parallelism)
        .map(|slot| {
            let dir = work.join(format!("slot{slot}"));
            std::fs::create_dir_all(&dir).unwrap();
            let mut env = env.clone();
            env.extend([
                ("CLOUD_RUN_JOB".into(), "bare".into()),
                ("CLOUD_RUN_EXECUTION".into(), "bare-00000".into()),
                ("CLOUD_RUN_TASK_INDEX".into(), slot.to_string()),
                ("CLOUD_RUN_TASK_ATTEMPT".into(), "0".into()),
                ("CLOUD_RUN_TASK_COUNT".into(), tasks_n.to_string()),
            ]);
            runtime::bundle::write_bare_bundle(
                &dir,
                &rootfs,
                vec!["true".into()],
                env,
                LIMITS,
                None,
                &format!("slot{slot}"),
            )
            .expect("a bare bundle");
            dir
        })
        .collect();
    Baseline {
        root: work.join("runc-root"),
        slots,
    }
}

/// `runc run` (foreground: it creates, starts, waits for and deletes the container).
fn bare_run(b: &Baseline, slot: usize, id: &str) -> bool {
    Command::new("runc")
        .arg("--root")
        .arg(&b.root)
        .args(["run", "--bundle"])
        .arg(&b.slots[slot])
        .arg(id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// N bare runs, P at once (one thread per slot taking the next task).
fn baseline_run(b: &Arc<Baseline>, rep: usize, tasks_n: usize) -> Usage {
    measured(std::process::id(), || {
        let next = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let threads: Vec<_> = (0..b.slots.len())
            .map(|slot| {
                let (b, next, failed) = (b.clone(), next.clone(), failed.clone());
                std::thread::spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= tasks_n {
                        return;
                    }
                    if !bare_run(&b, slot, &format!("bare{rep}-{i}")) {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let wall = started.elapsed();
        assert_eq!(
            failed.load(Ordering::SeqCst),
            0,
            "bare runc run failed for some tasks"
        );
        wall
    })
}

fn summary(name: &str, usages: &[Usage], tasks_n: usize) -> f64 {
    let mut s: Vec<f64> = usages.iter().map(|u| u.wall.as_secs_f64()).collect();
    s.sort_by(|a, b| a.total_cmp(b));
    let mut cpu: Vec<f64> = usages
        .iter()
        .map(|u| (u.own_cpu + u.children_cpu) * 1000.0 / tasks_n as f64)
        .collect();
    cpu.sort_by(|a, b| a.total_cmp(b));
    let median = pick(&s, 0.5);
    println!(
        "{name:<36} wall median {median:6.2} s (min {:6.2}, max {:6.2}) = {:5.1} tasks/s (min {:5.1}, max {:5.1}); CPU per task median {:5.1} ms (n={})",
        s[0],
        s[s.len() - 1],
        tasks_n as f64 / median,
        tasks_n as f64 / s[s.len() - 1],
        tasks_n as f64 / s[0],
        pick(&cpu, 0.5),
        s.len()
    );
    median
}

fn main() {
    let tasks_n = setting("BENCH_TASKS", 1000);
    let parallelism = setting("BENCH_PARALLELISM", 50);
    let reps = setting("BENCH_REPS", 3);
    assert!(
        testkit::require(&["runc", "ip", "iptables"], true),
        "the jobs benchmark runs as root with runc, ip and iptables"
    );
    let binary = testkit::workspace_root().join("target/release/homerun");
    assert!(
        binary.is_file(),
        "{} is missing: cargo build --release -p homerun",
        binary.display()
    );
    let cat = testkit::catalogue().expect("the test images (testkit build-images)");
    let image = format!("oci:{}", cat.image("busybox").path.display());

    let work = tempfile::tempdir().expect("a work directory");
    let baseline = Arc::new(prepare_baseline(work.path(), &image, tasks_n, parallelism));
    // One bare run first: runc's mount points in the shared rootfs, caches warm.
    assert!(
        bare_run(&baseline, 0, "bare-warmup"),
        "bare runc run of true"
    );

    let max = parallelism.to_string();
    let p = Platform::start(&binary, NET, &["--max-task-parallelism", &max]);
    // The API listens before the bridge and the namespace pool are up; let them settle.
    std::thread::sleep(Duration::from_secs(1));
    let pid = homerun_pid();
    // A one-task job first: the image is pulled into the platform's store, `true` runs.
    create_job(&p, "warmup", &job_body(&image, 1, 1));
    let (op, ..) = run_and_wait(&p, "warmup");
    assert!(op["error"].is_null(), "the warm-up execution: {op}");
    create_job(&p, "bench", &job_body(&image, tasks_n, parallelism));

    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    println!(
        "{tasks_n} tasks of `true` (busybox), parallelism {parallelism}, {reps} repetitions; load average before: {}",
        load_average()
    );
    let mut homerun = Vec::new();
    let mut bare = Vec::new();
    let mut breakdowns = Vec::new();
    for rep in 0..reps {
        if only != "bare" {
            let (usage, b) = homerun_run(&p, pid, tasks_n);
            report(rep, "homerun", &usage, tasks_n);
            homerun.push(usage);
            breakdowns.push(b);
        }
        if only != "homerun" {
            let usage = baseline_run(&baseline, rep, tasks_n);
            report(rep, "bare runc run", &usage, tasks_n);
            bare.push(usage);
        }
    }

    let logs = p.logs();
    drop(p);
    // The baseline's parent cgroups, now empty.
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::remove_dir(hierarchy.path().join("homerun-bench"));
    }

    println!();
    println!("{tasks_n} tasks of `true` (busybox), parallelism {parallelism}");
    let h = (!homerun.is_empty())
        .then(|| summary("homerun up, :run to operation done", &homerun, tasks_n));
    let b =
        (!bare.is_empty()).then(|| summary("baseline: bare runc run, P at once", &bare, tasks_n));
    if let (Some(h), Some(b)) = (h, b) {
        println!("homerun / baseline (median wall): {:.2}x", h / b);
    }
    for (rep, b) in breakdowns.iter().enumerate() {
        println!(
            "  homerun rep {rep}: first attempt started {:.2} s after :run; attempts median {:.0} ms, p95 {:.0} ms, max {:.0} ms; {:.1} in flight on average; done {:.2} s after the last completion",
            b.to_first_start.as_secs_f64(),
            pick(&b.attempt_ms, 0.5),
            pick(&b.attempt_ms, 0.95),
            b.attempt_ms[b.attempt_ms.len() - 1],
            b.concurrency,
            b.after_last_end.as_secs_f64()
        );
    }
    let warnings = logs
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .count();
    println!(
        "homerun's log: {} lines, {warnings} warnings or errors",
        logs.lines().count()
    );
}
