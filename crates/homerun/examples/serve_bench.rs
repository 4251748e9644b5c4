//! Services benchmarks (the services issue), against the release binary
//! `target/release/homerun` started by testkit's `homerun up` harness, each part on its own
//! platform (data directory, loopback ports, bridge, 10.240.25x.0/24):
//!
//! 1. cold start: a request to a scaled-to-zero service (image in the store) until its
//!    response, N times, beside the instance start homerun logs (`instance ready took=`);
//! 2. warm overhead: wrk at 64 connections through the router against wrk straight to the
//!    instance's own address, alternating, same instance (min = max = 1 instance);
//! 3. burst: 0 to 200 concurrent clients (tokio and a minimal HTTP/1.1 keep-alive client
//!    of this file) on a service of concurrency 10: errors, and the time until 20
//!    instances run;
//! 4. homerun's resident memory with 100 idle instances against none, and its CPU per
//!    1000 requests/s over the router's wrk runs.
//!
//! Run as root: `scripts/bench-serve.sh` (or `cargo run --release -p homerun --example
//! serve_bench -- [cold] [warm] [burst] [memory]`; all four without arguments).
//! Settings: `BENCH_COLD` (samples, 30), `BENCH_WRK_SECS` (10), `BENCH_ROUNDS` (3),
//! `BENCH_BURST_SECS` (10), `BENCH_INSTANCES` (100).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use testkit::platform::Platform;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Short autoscaler windows: a scaled-to-zero service again within about three seconds of
/// its last request (scale-up on a request's arrival does not wait for any of them).
const BENCH_SCALING: &[&str] = &[
    "--stable-window",
    "2s",
    "--panic-window",
    "500ms",
    "--scale-to-zero-grace",
    "500ms",
    "--idle-timeout",
    "500ms",
    "--autoscale-tick",
    "100ms",
    "--grace",
    "3s",
];

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn probe_image() -> String {
    let cat = testkit::catalogue().expect("the test images (testkit build-images)");
    format!("oci:{}", cat.image("probe").path.display())
}

fn start(net: u8) -> Platform {
    let binary = testkit::workspace_root().join("target/release/homerun");
    assert!(
        binary.is_file(),
        "{} is missing: cargo build --release -p homerun",
        binary.display()
    );
    let p = Platform::start(&binary, net, BENCH_SCALING);
    // The namespace pool fills in the background once the platform answers.
    std::thread::sleep(Duration::from_secs(1));
    p
}

fn create(p: &Platform, id: &str, service: &Value) {
    let op = p.create_service(id, service);
    assert!(op["error"].is_null(), "creating {id} failed: {op}");
}

/// The `homerun up` process: the child of this process named homerun (one platform at a
/// time runs).
fn homerun_pid() -> u32 {
    let me = std::process::id();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((head, tail)) = stat.rsplit_once(") ") else {
            continue;
        };
        let comm = head.split_once(" (").map(|(_, c)| c).unwrap_or_default();
        let ppid: u32 = tail
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if ppid == me && comm == "homerun" {
            return pid;
        }
    }
    panic!("no homerun child process");
}

/// VmRSS of `pid`, KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of `pid` (all its threads), seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let tail = stat.rsplit_once(") ").unwrap().1;
    let f: Vec<f64> = tail
        .split_whitespace()
        .map(|s| s.parse().unwrap_or(0.0))
        .collect();
    // Fields 14 and 15 of proc(5); the tail starts at field 3.
    (f[11] + f[12]) / clock_ticks()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Sorted copy; the value at quantile `q` (nearest rank).
fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[((s.len() as f64 - 1.0) * q).round() as usize]
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// `median (min–max)` of a few rounds.
fn spread(v: &[f64], digits: usize) -> String {
    format!(
        "{:.d$} ({:.d$}–{:.d$})",
        quantile(v, 0.5),
        min(v),
        max(v),
        d = digits
    )
}

// ---------------------------------------------------------------------------------------
// homerun's log: `instance ready` lines.

#[derive(Debug, Clone)]
struct Ready {
    /// When it was logged, seconds since the epoch.
    at: f64,
    /// `took`: Instance::start until it returned (ready), ms.
    took_ms: f64,
    instance: String,
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `65.4321ms`, `1.2s`, `850.1µs` (Duration's Debug), in ms.
fn duration_ms(s: &str) -> Option<f64> {
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "s" => n * 1000.0,
        "ms" => n,
        "µs" | "us" => n / 1000.0,
        "ns" => n / 1e6,
        _ => return None,
    })
}

/// `2026-11-22T11:12:30.123456Z` in seconds since the epoch.
fn rfc3339(s: &str) -> Option<f64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let t: Vec<f64> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if d.len() != 3 || t.len() != 3 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m, day) = (if d[1] <= 2 { d[0] - 1 } else { d[0] }, d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + t[0] * 3600.0 + t[1] * 60.0 + t[2])
}

fn ready_lines(log: &str) -> Vec<Ready> {
    log.lines()
        .map(strip_ansi)
        .filter(|l| l.contains("instance ready"))
        .filter_map(|l| {
            let at = rfc3339(l.split_whitespace().next()?)?;
            let field = |name: &str| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix(name))
                    .map(str::to_string)
            };
            Some(Ready {
                at,
                took_ms: duration_ms(&field("took=")?)?,
                instance: field("instance=")?,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// 1. Cold start.

struct Cold {
    total_ms: Vec<f64>,
    start_ms: Vec<f64>,
    before_start_ms: Vec<f64>,
    after_ready_ms: Vec<f64>,
}

fn cold(samples: usize) -> Cold {
    let p = start(250);
    create(
        &p,
        "cold",
        &json!({"template": {"containers": [{"image": probe_image()}]}}),
    );
    let mut total_ms = Vec::new();
    let mut windows = Vec::new();
    for i in 0..samples {
        assert!(
            p.wait_containers(|c| c.is_empty()),
            "not scaled to zero: {:?}",
            p.containers()
        );
        // Scaled to zero for a while, as a real idle service is: the namespace pool has
        // refilled the namespace the last instance took.
        std::thread::sleep(Duration::from_millis(300));
        let wall = unix_now();
        let t = Instant::now();
        let r = p.get("cold", "/status");
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(r.status, 200, "cold request {i}: {}", r.text());
        total_ms.push(ms);
        windows.push((wall, wall + ms / 1000.0));
        eprintln!("cold start {:2}: {ms:6.1} ms", i + 1);
    }
    // Each request's instance: the one whose `instance ready` fell within its window.
    let ready = ready_lines(&p.logs());
    let (mut start_ms, mut before_start_ms, mut after_ready_ms) = (vec![], vec![], vec![]);
    for (from, to) in windows {
        let found: Vec<&Ready> = ready
            .iter()
            .filter(|r| r.instance.starts_with("cold-") && r.at >= from && r.at <= to + 0.002)
            .collect();
        if let [r] = found[..] {
            start_ms.push(r.took_ms);
            before_start_ms.push((r.at - r.took_ms / 1000.0 - from) * 1000.0);
            after_ready_ms.push((to - r.at) * 1000.0);
        } else {
            eprintln!(
                "cold start at {from:.3}: {} instance ready lines in its window",
                found.len()
            );
        }
    }
    Cold {
        total_ms,
        start_ms,
        before_start_ms,
        after_ready_ms,
    }
}

// ---------------------------------------------------------------------------------------
// 2. Warm overhead (wrk), and 4b. the router's CPU.

#[derive(Debug, Clone, Default)]
struct Wrk {
    rps: f64,
    requests: f64,
    p50_us: f64,
    p99_us: f64,
    errors: u64,
    /// wrk's own CPU, seconds.
    cpu_s: f64,
}

fn wrk_time_us(s: &str) -> Option<f64> {
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        "m" => n * 6e7,
        _ => return None,
    })
}

fn parse_wrk(out: &str) -> Wrk {
    let mut w = Wrk::default();
    for line in out.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => w.rps = v.parse().unwrap_or(0.0),
            ["50%", v] => w.p50_us = wrk_time_us(v).unwrap_or(f64::NAN),
            ["99%", v] => w.p99_us = wrk_time_us(v).unwrap_or(f64::NAN),
            [n, "requests", "in", ..] => w.requests = n.parse().unwrap_or(0.0),
            ["Non-2xx", "or", "3xx", "responses:", n] => w.errors += n.parse().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                w.errors += rest
                    .iter()
                    .filter_map(|x| x.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>()
            }
            _ => {}
        }
    }
    assert!(w.rps > 0.0, "wrk printed no rate:\n{out}");
    w
}

/// wrk for `secs` at `connections` on `url`, with `Host: host` when given; and the CPU
/// seconds the processes `pids` used meanwhile (each in the order given).
fn wrk(
    url: &str,
    host: Option<&str>,
    connections: u32,
    secs: u64,
    pids: &[u32],
) -> (Wrk, Vec<f64>) {
    let mut cmd = Command::new("wrk");
    cmd.arg(format!("-t{}", connections.min(2)))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{secs}s"))
        .args(["--latency", "--timeout", "10s"]);
    if let Some(h) = host {
        cmd.args(["-H", &format!("Host: {h}")]);
    }
    cmd.arg(url);
    let before: Vec<f64> = pids.iter().map(|p| cpu_seconds(*p)).collect();
    let children = children_cpu_seconds();
    let out = cmd.output().expect("running wrk (apt-get install wrk)");
    let wrk_cpu = children_cpu_seconds() - children;
    let cpu = pids
        .iter()
        .zip(before)
        .map(|(p, b)| cpu_seconds(*p) - b)
        .collect();
    assert!(out.status.success(), "wrk failed: {out:?}");
    let mut w = parse_wrk(&String::from_utf8_lossy(&out.stdout));
    w.cpu_s = wrk_cpu;
    (w, cpu)
}

/// cutime + cstime of this process: the CPU of the children it has waited for (wrk once
/// `output` returned), seconds.
fn children_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let tail = stat.rsplit_once(") ").unwrap().1;
    let f: Vec<f64> = tail
        .split_whitespace()
        .map(|s| s.parse().unwrap_or(0.0))
        .collect();
    // Fields 16 and 17 of proc(5).
    (f[13] + f[14]) / clock_ticks()
}

/// The processes of container `id` (`runc ps`).
fn container_pids(p: &Platform, id: &str) -> Vec<u32> {
    let out = Command::new("runc")
        .arg("--root")
        .arg(p.data.path().join("runc"))
        .args(["ps", "--format", "json", id])
        .output()
        .expect("runc ps");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "runc ps {id}: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The instance's own address: the leased address of the bridge that answers on 8080
/// (the others are the namespace pool's).
fn instance_addr(p: &Platform) -> SocketAddr {
    let leases = p
        .data
        .path()
        .join("net")
        .join(format!("leases-{}.json", p.bridge));
    let leases: BTreeMap<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(&leases).expect("the leases")).unwrap();
    let answering: Vec<SocketAddr> = leases
        .keys()
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 8080))
        .filter(|a| {
            testkit::http::get(*a, "/status", Duration::from_secs(2)).is_ok_and(|r| r.status == 200)
        })
        .collect();
    assert_eq!(answering.len(), 1, "leases {leases:?}: {answering:?}");
    answering[0]
}

struct Warm {
    direct: Vec<Wrk>,
    routed: Vec<Wrk>,
    routed_cpu: Vec<f64>,
    direct_cpu: Vec<f64>,
    app_direct_us: Vec<f64>,
    app_routed_us: Vec<f64>,
    direct1: Vec<Wrk>,
    routed1: Vec<Wrk>,
}

fn warm(secs: u64, rounds: usize) -> Warm {
    let p = start(251);
    create(
        &p,
        "warm",
        &json!({"template": {
            "maxInstanceRequestConcurrency": 1000,
            "scaling": {"minInstanceCount": 1, "maxInstanceCount": 1},
            // CPU always allocated: the direct runs do not go through the router, which
            // would otherwise see an idle instance and throttle it.
            "containers": [{"image": probe_image(),
                "resources": {"limits": {"cpu": "1", "memory": "512Mi"}, "cpuIdle": false}}],
        }}),
    );
    assert!(p.wait_containers(|c| c.len() == 1), "{:?}", p.containers());
    let pid = homerun_pid();
    let app = container_pids(&p, &p.containers()[0]);
    let mut pids = vec![pid];
    pids.extend(&app);
    let direct_url = format!("http://{}/status", instance_addr(&p));
    let routed_url = format!("http://{}/status", p.ingress);
    let host = Some("warm.localhost");
    // Warm-up: connections, the router's pool to the instance, page cache.
    wrk(&routed_url, host, 64, 2, &[]);
    wrk(&direct_url, None, 64, 2, &[]);
    let mut w = Warm {
        direct: vec![],
        routed: vec![],
        routed_cpu: vec![],
        direct_cpu: vec![],
        app_direct_us: vec![],
        app_routed_us: vec![],
        direct1: vec![],
        routed1: vec![],
    };
    // The instance's CPU per request, microseconds (all its processes).
    let app_us = |cpu: &[f64], w: &Wrk| 1e6 * cpu[1..].iter().sum::<f64>() / w.requests;
    for round in 0..rounds {
        let (d, dcpu) = wrk(&direct_url, None, 64, secs, &pids);
        let (r, rcpu) = wrk(&routed_url, host, 64, secs, &pids);
        let (d1, _) = wrk(&direct_url, None, 1, secs / 2, &[]);
        let (r1, _) = wrk(&routed_url, host, 1, secs / 2, &[]);
        eprintln!(
            "warm round {}: direct {:.0}/s p50 {:.0} us, router {:.0}/s p50 {:.0} us ({:.2} CPU s); 1 connection: {:.0} us / {:.0} us",
            round + 1,
            d.rps,
            d.p50_us,
            r.rps,
            r.p50_us,
            rcpu[0],
            d1.p50_us,
            r1.p50_us
        );
        w.app_direct_us.push(app_us(&dcpu, &d));
        w.app_routed_us.push(app_us(&rcpu, &r));
        w.routed_cpu.push(rcpu[0]);
        w.direct_cpu.push(dcpu[0]);
        w.direct.push(d);
        w.routed.push(r);
        w.direct1.push(d1);
        w.routed1.push(r1);
    }
    w
}

// ---------------------------------------------------------------------------------------
// 3. Burst: tokio clients, one keep-alive connection each.

struct Conn {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
}

fn invalid(m: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string())
}

/// One request on `conn`; its status, and whether the connection can be used again.
async fn exchange(conn: &mut Conn, request: &[u8]) -> std::io::Result<(u16, bool)> {
    conn.w.write_all(request).await?;
    let mut line = String::new();
    if conn.r.read_line(&mut line).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("status line"))?;
    let (mut length, mut chunked, mut close) = (None, false, false);
    loop {
        line.clear();
        if conn.r.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
            match k.as_str() {
                "content-length" => length = v.parse::<usize>().ok(),
                "transfer-encoding" => chunked = v.contains("chunked"),
                "connection" => close = v.contains("close"),
                _ => {}
            }
        }
    }
    let mut skip = vec![];
    if chunked {
        loop {
            line.clear();
            conn.r.read_line(&mut line).await?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| invalid("chunk size"))?;
            if size == 0 {
                loop {
                    line.clear();
                    if conn.r.read_line(&mut line).await? == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            skip.resize(size + 2, 0);
            conn.r.read_exact(&mut skip).await?;
        }
    } else if let Some(n) = length {
        skip.resize(n, 0);
        conn.r.read_exact(&mut skip).await?;
    } else if close {
        conn.r.read_to_end(&mut skip).await?;
    }
    Ok((status, !close))
}

#[derive(Default)]
struct Tally {
    ok: u64,
    statuses: BTreeMap<u16, u64>,
    io_errors: u64,
    first_error: Option<String>,
    latencies_ms: Vec<f64>,
    first_ok_ms: Option<f64>,
}

async fn client(
    addr: SocketAddr,
    request: Arc<Vec<u8>>,
    t0: Instant,
    until: Instant,
    max: usize,
    tally: Arc<Mutex<Tally>>,
) {
    let mut conn: Option<Conn> = None;
    for _ in 0..max {
        if Instant::now() >= until {
            break;
        }
        let t = Instant::now();
        let result = tokio::time::timeout(Duration::from_secs(60), async {
            if conn.is_none() {
                let (r, w) = TcpStream::connect(addr).await?.into_split();
                conn = Some(Conn {
                    r: BufReader::new(r),
                    w,
                });
            }
            exchange(conn.as_mut().unwrap(), &request).await
        })
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let mut tally = tally.lock().unwrap();
        match result {
            Ok((status, keep)) => {
                if !keep {
                    conn = None;
                }
                if status == 200 {
                    tally.ok += 1;
                    tally.latencies_ms.push(ms);
                    let since = t0.elapsed().as_secs_f64() * 1000.0;
                    if tally.first_ok_ms.is_none_or(|f| since < f) {
                        tally.first_ok_ms = Some(since);
                    }
                } else {
                    *tally.statuses.entry(status).or_default() += 1;
                }
            }
            Err(e) => {
                conn = None;
                tally.io_errors += 1;
                tally.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

struct Burst {
    tally: Tally,
    /// runc list: (ms since the burst began, containers).
    counts: Vec<(f64, usize)>,
    /// `instance ready` of the burst's instances, ms since the burst began.
    ready_ms: Vec<f64>,
    wall_ms: f64,
}

fn burst(clients: usize, secs: u64) -> Burst {
    let p = start(252);
    create(
        &p,
        "burst",
        &json!({"template": {
            "maxInstanceRequestConcurrency": 10,
            "scaling": {"maxInstanceCount": 100},
            "containers": [{"image": probe_image()}],
        }}),
    );
    assert!(
        p.wait_containers(|c| c.is_empty()),
        "not scaled to zero: {:?}",
        p.containers()
    );
    std::thread::sleep(Duration::from_millis(500));

    let request = Arc::new(
        b"GET /sleep?ms=100 HTTP/1.1\r\nHost: burst.localhost\r\nUser-Agent: serve-bench\r\n\r\n"
            .to_vec(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Mutex::new(Vec::new()));
    let wall = unix_now();
    let t0 = Instant::now();
    let watcher = {
        let (stop, counts) = (stop.clone(), counts.clone());
        let root: PathBuf = p.data.path().join("runc");
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let n = runc_count(&root);
                counts
                    .lock()
                    .unwrap()
                    .push((t0.elapsed().as_secs_f64() * 1000.0, n));
                std::thread::sleep(Duration::from_millis(25));
            }
        })
    };
    let tally = Arc::new(Mutex::new(Tally::default()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let until = t0 + Duration::from_secs(secs);
    rt.block_on(async {
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                tokio::spawn(client(
                    p.ingress,
                    request.clone(),
                    t0,
                    until,
                    10_000,
                    tally.clone(),
                ))
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let wall_ms = t0.elapsed().as_secs_f64() * 1000.0;
    stop.store(true, Ordering::SeqCst);
    watcher.join().unwrap();
    let mut ready: Vec<Ready> = ready_lines(&p.logs())
        .into_iter()
        .filter(|r| r.instance.starts_with("burst-") && r.at >= wall)
        .collect();
    ready.sort_by(|a, b| a.at.total_cmp(&b.at));
    eprintln!(
        "burst: instances (began, ready) ms after the burst began: {:?}",
        ready
            .iter()
            .map(|r| {
                let at = (r.at - wall) * 1000.0;
                ((at - r.took_ms).round() as i64, at.round() as i64)
            })
            .collect::<Vec<_>>()
    );
    let ready_ms: Vec<f64> = ready.iter().map(|r| (r.at - wall) * 1000.0).collect();
    let counts = std::mem::take(&mut *counts.lock().unwrap());
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    Burst {
        tally,
        counts,
        ready_ms,
        wall_ms,
    }
}

fn runc_count(root: &Path) -> usize {
    Command::new("runc")
        .arg("--root")
        .arg(root)
        .args(["list", "-q"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// 4. Memory with idle instances.

struct Memory {
    instances: usize,
    before_kib: u64,
    with_kib: u64,
    start_all_s: f64,
    idle_cpu_s: f64,
    idle_secs: f64,
}

fn memory(instances: usize) -> Memory {
    let p = start(253);
    let pid = homerun_pid();
    let sample = || {
        let v: Vec<f64> = (0..5)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(400));
                rss_kib(pid) as f64
            })
            .collect();
        quantile(&v, 0.5) as u64
    };
    let before_kib = sample();
    let t = Instant::now();
    create(
        &p,
        "idle",
        &json!({"template": {
            "scaling": {"minInstanceCount": instances, "maxInstanceCount": instances},
            "containers": [{"image": probe_image(),
                "resources": {"limits": {"cpu": "1", "memory": "128Mi"}, "cpuIdle": true}}],
        }}),
    );
    let deadline = Instant::now() + Duration::from_secs(600);
    while p.containers().len() < instances {
        assert!(
            Instant::now() < deadline,
            "{} of {instances} instances after 10 minutes",
            p.containers().len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let start_all_s = t.elapsed().as_secs_f64();
    // Every instance ready and idle (throttled) for a while.
    std::thread::sleep(Duration::from_secs(5));
    let with_kib = sample();
    let idle_secs = 10.0;
    let cpu = cpu_seconds(pid);
    std::thread::sleep(Duration::from_secs_f64(idle_secs));
    let idle_cpu_s = cpu_seconds(pid) - cpu;
    Memory {
        instances,
        before_kib,
        with_kib,
        start_all_s,
        idle_cpu_s,
        idle_secs,
    }
}

// ---------------------------------------------------------------------------------------
// The machine is shared: how much of each part ran beside a compiler.

/// Samples, every 500 ms, whether a compiler or linker, or a `homerun` that is not this
/// benchmark's (another engineer's tests), runs on the machine; `take` also gives the
/// steal time (`/proc/stat`) since the last `take`, and starts over.
struct Neighbours {
    /// Samples, with a compiler, with a foreign homerun.
    seen: Arc<Mutex<[u32; 3]>>,
    /// /proc/stat's steal and total jiffies at the last take.
    stat: Mutex<(f64, f64)>,
}

const COMPILERS: &[&str] = &[
    "rustc", "cc1", "cc1plus", "ld", "ld.lld", "rust-lld", "collect2",
];

/// Steal and total jiffies of all CPUs.
fn steal_total() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    (v.get(7).copied().unwrap_or(0.0), v.iter().sum())
}

impl Neighbours {
    fn start() -> Neighbours {
        let seen = Arc::new(Mutex::new([0u32; 3]));
        let s = seen.clone();
        std::thread::spawn(move || loop {
            let (mut compiler, mut homerun) = (false, false);
            let me = std::process::id().to_string();
            for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                let Ok(comm) = std::fs::read_to_string(e.path().join("comm")) else {
                    continue;
                };
                let comm = comm.trim();
                compiler |= COMPILERS.contains(&comm);
                if comm == "homerun" {
                    let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
                    let ppid = stat
                        .rsplit_once(") ")
                        .and_then(|(_, t)| t.split(' ').nth(1));
                    homerun |= ppid != Some(me.as_str());
                }
            }
            {
                let mut s = s.lock().unwrap();
                s[0] += 1;
                s[1] += u32::from(compiler);
                s[2] += u32::from(homerun);
            }
            std::thread::sleep(Duration::from_millis(500));
        });
        Neighbours {
            seen,
            stat: Mutex::new(steal_total()),
        }
    }

    /// What ran beside the part that just ended, and starts over.
    fn take(&self) -> String {
        let mut s = self.seen.lock().unwrap();
        let (steal, total) = steal_total();
        let mut last = self.stat.lock().unwrap();
        let pct = |n: u32| 100.0 * f64::from(n) / f64::from(s[0].max(1));
        let text = format!(
            "compiler in {:.0} %, another homerun in {:.0} % of {} samples; steal {:.1} %",
            pct(s[1]),
            pct(s[2]),
            s[0],
            100.0 * (steal - last.0) / (total - last.1).max(1.0)
        );
        *s = [0; 3];
        *last = (steal, total);
        text
    }
}

// ---------------------------------------------------------------------------------------

fn main() {
    if !testkit::require(&["runc", "ip", "iptables", "wrk"], true) {
        eprintln!("serve_bench: needs root, runc, ip, iptables and wrk");
        std::process::exit(1);
    }
    let parts: Vec<String> = std::env::args().skip(1).collect();
    let want = |p: &str| parts.is_empty() || parts.iter().any(|a| a == p);
    let neighbours = Neighbours::start();
    let mut table: Vec<(String, String)> = vec![];
    let mut row = |what: &str, value: String| {
        println!("{what:<62} {value}");
        table.push((what.into(), value));
    };

    if want("cold") {
        neighbours.take();
        let c = cold(setting("BENCH_COLD", 30) as usize);
        let stats = |v: &[f64]| {
            format!(
                "median {:.1} ms, p95 {:.1} ms, min {:.1}, max {:.1} (n={})",
                quantile(v, 0.5),
                quantile(v, 0.95),
                min(v),
                max(v),
                v.len()
            )
        };
        row(
            "cold start: request until response (target 100 / 200 ms)",
            stats(&c.total_ms),
        );
        if !c.start_ms.is_empty() {
            row(
                "  instance start (homerun's `instance ready took=`)",
                stats(&c.start_ms),
            );
            row(
                "  request arrived until the instance start began",
                stats(&c.before_start_ms),
            );
            row(
                "  instance ready until the response was read",
                stats(&c.after_ready_ms),
            );
        }
        row("  machine during this part", neighbours.take());
    }

    let mut router_cpu_per_krps = None;
    if want("warm") {
        neighbours.take();
        let w = warm(
            setting("BENCH_WRK_SECS", 10),
            setting("BENCH_ROUNDS", 3) as usize,
        );
        let rps = |v: &[Wrk]| v.iter().map(|w| w.rps).collect::<Vec<_>>();
        let p50 = |v: &[Wrk]| v.iter().map(|w| w.p50_us).collect::<Vec<_>>();
        let p99 = |v: &[Wrk]| v.iter().map(|w| w.p99_us).collect::<Vec<_>>();
        let ratio: Vec<f64> = w
            .routed
            .iter()
            .zip(&w.direct)
            .map(|(r, d)| 100.0 * r.rps / d.rps)
            .collect();
        let added: Vec<f64> = w
            .routed
            .iter()
            .zip(&w.direct)
            .map(|(r, d)| r.p50_us - d.p50_us)
            .collect();
        let added1: Vec<f64> = w
            .routed1
            .iter()
            .zip(&w.direct1)
            .map(|(r, d)| r.p50_us - d.p50_us)
            .collect();
        let errors: u64 = w
            .direct
            .iter()
            .chain(&w.routed)
            .chain(&w.direct1)
            .chain(&w.routed1)
            .map(|w| w.errors)
            .sum();
        row(
            "warm, 64 connections: direct requests/s",
            spread(&rps(&w.direct), 0),
        );
        row(
            "warm, 64 connections: router requests/s",
            spread(&rps(&w.routed), 0),
        );
        row(
            "  router / direct throughput, % (target >= 85)",
            spread(&ratio, 1),
        );
        row("  direct median latency, us", spread(&p50(&w.direct), 0));
        row("  router median latency, us", spread(&p50(&w.routed), 0));
        row(
            "  added median latency, us (target <= 100)",
            spread(&added, 0),
        );
        row(
            "  p99 latency direct / router, us",
            format!(
                "{} / {}",
                spread(&p99(&w.direct), 0),
                spread(&p99(&w.routed), 0)
            ),
        );
        row(
            "warm, 1 connection: median latency direct / router, us",
            format!(
                "{} / {}",
                spread(&p50(&w.direct1), 0),
                spread(&p50(&w.routed1), 0)
            ),
        );
        row(
            "  added median latency at 1 connection, us",
            spread(&added1, 0),
        );
        row(
            "warm: non-2xx responses and socket errors",
            errors.to_string(),
        );
        // CPU seconds per 1000 requests = cores per 1000 requests/s.
        let per_k: Vec<f64> = w
            .routed
            .iter()
            .zip(&w.routed_cpu)
            .map(|(r, cpu)| cpu / (r.requests / 1000.0))
            .collect();
        let idle: Vec<f64> = w.direct_cpu.clone();
        row(
            "homerun CPU per 1000 requests/s through the router, cores",
            spread(&per_k, 3),
        );
        let per_request: Vec<f64> = per_k.iter().map(|c| c * 1000.0).collect();
        row(
            "  i.e. homerun's CPU per routed request, us",
            spread(&per_request, 1),
        );
        row(
            "  homerun CPU during the direct runs (not routing), s per run",
            spread(&idle, 2),
        );
        row(
            "  for comparison: the instance's CPU per request, direct / routed, us",
            format!(
                "{} / {}",
                spread(&w.app_direct_us, 1),
                spread(&w.app_routed_us, 1)
            ),
        );
        let wrk_us = |v: &[Wrk]| {
            v.iter()
                .map(|w| 1e6 * w.cpu_s / w.requests)
                .collect::<Vec<_>>()
        };
        row(
            "  and wrk's CPU per request, direct / routed, us",
            format!(
                "{} / {}",
                spread(&wrk_us(&w.direct), 1),
                spread(&wrk_us(&w.routed), 1)
            ),
        );
        router_cpu_per_krps = Some(quantile(&per_k, 0.5));
        row("  machine during this part", neighbours.take());
    }

    if want("burst") {
        neighbours.take();
        let clients = 200;
        let b = burst(clients, setting("BENCH_BURST_SECS", 10));
        let t = &b.tally;
        let failed: u64 = t.statuses.values().sum::<u64>() + t.io_errors;
        let first20 = b
            .counts
            .iter()
            .find(|(_, n)| *n >= 20)
            .map(|(ms, _)| format!("{ms:.0} ms"))
            .unwrap_or_else(|| "never".into());
        let peak = b.counts.iter().map(|(_, n)| *n).max().unwrap_or(0);
        row(
            &format!("burst 0 -> {clients} clients (GET /sleep?ms=100, concurrency 10)"),
            format!(
                "{} ok, {failed} errors {:?}{} in {:.1} s",
                t.ok,
                t.statuses,
                t.first_error
                    .as_ref()
                    .map(|e| format!(" (io: {} e.g. {e})", t.io_errors))
                    .unwrap_or_default(),
                b.wall_ms / 1000.0
            ),
        );
        row(
            "  until 20 containers run (runc list, every 25 ms)",
            first20,
        );
        row(
            "  until the 20th instance was ready (homerun's log)",
            b.ready_ms
                .get(19)
                .map(|ms| format!("{ms:.0} ms"))
                .unwrap_or_else(|| format!("never ({} ready)", b.ready_ms.len())),
        );
        row(
            "  first instance ready / first response",
            format!(
                "{:.0} ms / {:.0} ms",
                b.ready_ms.first().copied().unwrap_or(f64::NAN),
                t.first_ok_ms.unwrap_or(f64::NAN)
            ),
        );
        row(
            "  instances at the peak / ready in the log",
            format!("{peak} / {}", b.ready_ms.len()),
        );
        if !t.latencies_ms.is_empty() {
            row(
                "  request latency",
                format!(
                    "median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                    quantile(&t.latencies_ms, 0.5),
                    quantile(&t.latencies_ms, 0.99),
                    max(&t.latencies_ms)
                ),
            );
        }
        row("  machine during this part", neighbours.take());
    }

    if want("memory") {
        neighbours.take();
        let m = memory(setting("BENCH_INSTANCES", 100) as usize);
        row(
            "homerun RSS, no instance",
            format!("{:.1} MiB", m.before_kib as f64 / 1024.0),
        );
        row(
            &format!("homerun RSS, {} idle instances", m.instances),
            format!("{:.1} MiB", m.with_kib as f64 / 1024.0),
        );
        row(
            "  per instance",
            format!(
                "{:.0} KiB",
                (m.with_kib as f64 - m.before_kib as f64) / m.instances as f64
            ),
        );
        row(
            &format!("  all {} running after", m.instances),
            format!("{:.1} s", m.start_all_s),
        );
        row(
            "  homerun CPU while they idle, % of a core",
            format!("{:.2}", 100.0 * m.idle_cpu_s / m.idle_secs),
        );
        row("  machine during this part", neighbours.take());
    }

    println!("\n| what | result |\n| --- | --- |");
    for (what, value) in &table {
        println!("| {} | {} |", what.trim(), value);
    }
    if let Some(c) = router_cpu_per_krps {
        println!(
            "\nrouter CPU: {:.1} % of a core per 1000 requests/s ({:.1} ms of CPU per 1000 requests)",
            c * 100.0,
            c * 1000.0
        );
    }
}
