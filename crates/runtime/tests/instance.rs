//! Instances end to end under runc (and the contract under runsc): sidecars on localhost
//! with shared IPC and UTS namespaces, dependsOn order, in-memory and file volumes, the
//! address book, the DMI product
//! name, startup and liveness probes, restarts, CPU throttling and freezing, and recovery
//! after a crash, each leaving nothing behind.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use image::{ImageRecord, ImageSource, Quiet, RegistryOptions, Store};
use runtime::cgroup::Layout;
use runtime::container::{become_subreaper, Limits};
use runtime::health::{ProbeAction, ProbeSpec};
use runtime::instance::{
    ContainerDef, FileVolume, Instance, InstanceEvent, InstanceSpec, MemoryVolume, Node, VolumeFile,
};
use runtime::net::{NetPool, Network, NetworkConfig};
use runtime::process::ContainerOverrides;
use runtime::runc::{OciRuntime, Runtime};
use runtime::RuntimeError;
use serde_json::Value;

struct Env {
    _dir: tempfile::TempDir,
    node: Node,
}

impl Drop for Env {
    fn drop(&mut self) {
        // The bridge is the test's own; a fresh handle on it (setup is idempotent) removes it.
        if let Ok(network) = Network::setup(self.node.network.config().clone()) {
            let _ = network.teardown();
        }
    }
}

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id() % 100_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A node with its own bridge and /24 (10.251.N.0/24, N from the test's number).
fn env(kind: OciRuntime, net_number: u8) -> Option<Env> {
    let tool = match kind {
        OciRuntime::Runc => "runc",
        OciRuntime::Runsc => "runsc",
    };
    if !testkit::require(&[tool, "ip", "iptables"], true) {
        return None;
    }
    become_subreaper().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("data")).unwrap();
    let network = Network::setup(NetworkConfig {
        bridge: format!("hrti{}x{net_number}", std::process::id() % 10_000),
        subnet: format!("10.251.{net_number}.0/24"),
        state_dir: dir.path().join("net"),
    })
    .unwrap();
    let state_dir = dir.path().join("instances");
    std::fs::create_dir(&state_dir).unwrap();
    let node = Node {
        store,
        runtime: Runtime::new(kind, &dir.path().join("runc")),
        network: Arc::new(network),
        state_dir,
        cgroups: Arc::new(Layout::detect().unwrap()),
        netpool: None,
        addresses: Default::default(),
    };
    Some(Env { _dir: dir, node })
}

fn pull(env: &Env, name: &str) -> ImageRecord {
    let cat = testkit::catalogue().unwrap();
    let source = ImageSource::parse(&format!("oci:{}", cat.image(name).path.display())).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(
        env.node
            .store
            .pull(&source, &RegistryOptions::default(), &Quiet),
    )
    .unwrap()
    .record
}

fn container(name: &str, image: &ImageRecord) -> ContainerDef {
    ContainerDef {
        name: name.into(),
        image: image.clone(),
        overrides: ContainerOverrides::default(),
        user: None,
        port: None,
        limits: Limits {
            memory_bytes: 128 << 20,
            cpu_millis: 500,
            pids: 256,
        },
        volume_mounts: vec![],
        depends_on: vec![],
        startup_probe: None,
        liveness_probe: None,
    }
}

fn with_env(mut c: ContainerDef, vars: &[(&str, &str)]) -> ContainerDef {
    c.overrides
        .env
        .extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    c
}

fn shell(mut c: ContainerDef, script: &str) -> ContainerDef {
    c.overrides.command = Some(vec!["/bin/sh".into(), "-c".into(), script.into()]);
    c
}

fn instance_spec(id: &str, containers: Vec<ContainerDef>) -> InstanceSpec {
    InstanceSpec {
        id: id.into(),
        containers,
        volumes: vec![],
        file_volumes: vec![],
        platform_env: vec![
            ("K_SERVICE".into(), "svc".into()),
            ("K_REVISION".into(), "svc-00001-abc".into()),
            ("K_CONFIGURATION".into(), "svc".into()),
        ],
        hosts: vec![],
        cpu_boost: false,
    }
}

fn get_json(addr: SocketAddr, path: &str) -> Value {
    let response = testkit::http::get(addr, path, Duration::from_secs(30)).unwrap();
    assert_eq!(response.status, 200, "GET {path}: {}", response.text());
    response.json()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Nothing of the instance remains: no runc container, mount, netns or state directory.
fn assert_gone(env: &Env, id: &str) {
    let ours = |name: &str| name == id || name.starts_with(&format!("{id}-"));
    let left = env.node.runtime.list().unwrap();
    assert!(!left.iter().any(|c| ours(c)), "runc still knows {left:?}");
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(
        !mounts.contains(&format!("/{id}/")),
        "a mount of {id} remains"
    );
    for hierarchy in ["memory", "cpu", "pids", "freezer"] {
        let parent = Path::new("/sys/fs/cgroup").join(hierarchy).join("homerun");
        let leftover: Vec<String> = std::fs::read_dir(&parent)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| ours(n))
            .collect();
        assert!(
            leftover.is_empty(),
            "{hierarchy} cgroups remain: {leftover:?}"
        );
    }
    let leases = std::fs::read_to_string(env.node.network.config().state_dir.join("leases.json"))
        .unwrap_or_default();
    assert!(
        !leases.contains(&format!("\"{id}\"")),
        "a lease of {id} remains: {leases}"
    );
    let netns = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&netns.stdout).contains(id),
        "netns of {id} remains"
    );
    assert!(
        !env.node.state_dir.join(id).exists(),
        "state of {id} remains"
    );
}

fn ns_of(pid: i32, kind: &str) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap()
}

#[test]
fn a_sidecar_is_reachable_on_localhost_and_shares_ipc_and_uts_but_not_pid() {
    let Some(env) = env(OciRuntime::Runc, 1) else {
        return;
    };
    let probe = pull(&env, "probe");
    let busybox = pull(&env, "busybox");
    let id = unique("side");
    let mut ingress = with_env(
        container("app", &probe),
        &[("GCE_METADATA_HOST", "localhost:8081")],
    );
    ingress.port = Some(8080);
    let mut sidecar = with_env(container("helper", &probe), &[("PORT", "8081")]);
    sidecar.startup_probe = Some(ProbeSpec::new(ProbeAction::Tcp { port: 8081 }));
    let envdump = shell(
        container("envdump", &busybox),
        "env; echo END; exec sleep 600",
    );
    let spec = instance_spec(&id, vec![ingress, sidecar, envdump]);
    let rt = rt();
    let instance = rt.block_on(Instance::start(spec, &env.node)).unwrap();
    let addr = SocketAddr::from((instance.address(), 8080));

    // The ingress container reaches the sidecar on localhost.
    let fetched = get_json(addr, "/metadata?path=x");
    assert!(fetched.get("error").is_none(), "{fetched}");
    assert_eq!(
        fetched["status"], 404,
        "the sidecar's probe answered: {fetched}"
    );
    assert_eq!(fetched["url"], "http://localhost:8081/computeMetadata/v1/x");

    // PORT for the ingress container only; the platform's K_* variables for all.
    let report = get_json(addr, "/");
    assert_eq!(report["env"]["PORT"], "8080");
    assert_eq!(report["env"]["K_SERVICE"], "svc");
    // The whole environment has been printed once END is.
    let lines = wait_for_line(&instance, "envdump", |l| l == "END");
    assert!(
        lines.iter().any(|l| l == "K_REVISION=svc-00001-abc"),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.starts_with("PORT=")), "{lines:?}");

    let (a, b, c) = (
        instance.pid("app").unwrap(),
        instance.pid("helper").unwrap(),
        instance.pid("envdump").unwrap(),
    );
    for kind in ["net", "ipc", "uts"] {
        assert_eq!(ns_of(a, kind), ns_of(b, kind), "{kind}");
        assert_eq!(ns_of(a, kind), ns_of(c, kind), "{kind}");
    }
    assert_ne!(ns_of(a, "pid"), ns_of(b, "pid"));
    assert_ne!(ns_of(a, "mnt"), ns_of(b, "mnt"));
    // Cloud Run's second generation names its machine, as client libraries check.
    assert_eq!(report["dmi_product_name"], "Google Compute Engine");
    // The rest of /sys/class is the container's own sysfs (its network namespace's eth0),
    // seen through the container's root.
    let list = |dir: &str| -> Vec<String> {
        std::fs::read_dir(format!("/proc/{a}/root{dir}"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    let net = list("/sys/class/net");
    assert!(net.contains(&"eth0".to_string()), "{net:?}");
    let dmi = list("/sys/class/dmi/id");
    assert!(dmi.contains(&"bios_vendor".to_string()), "{dmi:?}");

    let exits = rt.block_on(instance.stop(Duration::from_secs(10)));
    assert_eq!(exits.len(), 3);
    assert_gone(&env, &id);
}

#[test]
fn containers_start_in_depends_on_order_after_startup_probes() {
    let Some(env) = env(OciRuntime::Runc, 2) else {
        return;
    };
    let probe = pull(&env, "probe");
    let id = unique("deps");
    let mut app = container("app", &probe);
    app.port = Some(8080);
    app.depends_on = vec!["db".into()];
    // The dependency takes 400 ms to listen: the app must not start before it does.
    let mut db = with_env(
        container("db", &probe),
        &[("PORT", "9000"), ("PROBE_STARTUP_DELAY_MS", "400")],
    );
    db.startup_probe = Some(ProbeSpec {
        action: ProbeAction::Tcp { port: 9000 },
        initial_delay: Duration::ZERO,
        timeout: Duration::from_secs(1),
        period: Duration::from_secs(10),
        failure_threshold: 6,
    });
    let rt = rt();
    let instance = rt
        .block_on(Instance::start(
            instance_spec(&id, vec![app, db]),
            &env.node,
        ))
        .unwrap();
    // The app's process began only once the db listened, which takes the db 400 ms
    // after its own start: start times (clock ticks since boot) are at least that apart.
    let ticks = |pid: i32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after_name = stat.rsplit(')').next().unwrap();
        after_name
            .split_whitespace()
            .nth(19)
            .unwrap()
            .parse()
            .unwrap()
    };
    // SAFETY: sysconf with a constant name.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    let (db, app) = (
        ticks(instance.pid("db").unwrap()),
        ticks(instance.pid("app").unwrap()),
    );
    assert!(
        app >= db + 4 * hz / 10,
        "app started {} ticks after db, before db could listen",
        app as i64 - db as i64
    );
    let report = get_json(SocketAddr::from((instance.address(), 8080)), "/");
    assert_eq!(report["env"]["PORT"], "8080");
    rt.block_on(instance.stop(Duration::from_secs(10)));
    assert_gone(&env, &id);
}

#[test]
fn in_memory_volumes_are_shared_sized_and_refuse_writes_past_their_limit() {
    let Some(env) = env(OciRuntime::Runc, 3) else {
        return;
    };
    let busybox = pull(&env, "busybox");
    let id = unique("vol");
    let mut writer = shell(
        container("writer", &busybox),
        "echo hello > /shared/greeting; \
         dd if=/dev/zero of=/shared/big bs=1M count=16 2>&1; echo dd=$?; exec sleep 600",
    );
    writer.volume_mounts = vec![("cache".into(), "/shared".into())];
    let mut reader = shell(
        container("reader", &busybox),
        "until [ -f /data/greeting ]; do sleep 0.05; done; cat /data/greeting; \
         grep ' /data ' /proc/mounts; exec sleep 600",
    );
    reader.volume_mounts = vec![("cache".into(), "/data".into())];
    reader.depends_on = vec!["writer".into()];
    let mut spec = instance_spec(&id, vec![writer, reader]);
    spec.volumes = vec![MemoryVolume {
        name: "cache".into(),
        size_bytes: Some(4 << 20),
    }];
    let rt = rt();
    let instance = rt.block_on(Instance::start(spec, &env.node)).unwrap();
    let lines = wait_for_lines(&instance, "reader", 2);
    assert_eq!(lines[0], "hello");
    assert!(
        lines[1].contains("tmpfs") && lines[1].contains("size=4096k"),
        "{lines:?}"
    );
    let writer_lines = wait_for_line(&instance, "writer", |l| l.starts_with("dd="));
    assert!(
        writer_lines
            .iter()
            .any(|l| l.contains("No space left on device")),
        "{writer_lines:?}"
    );
    assert!(writer_lines.iter().any(|l| l == "dd=1"), "{writer_lines:?}");
    // The writer survived the full volume: the instance is whole.
    rt.block_on(async {
        let watched = tokio::time::timeout(Duration::from_millis(300), instance.watch()).await;
        assert!(watched.is_err(), "{watched:?}");
    });
    rt.block_on(instance.stop(Duration::from_secs(10)));
    assert_gone(&env, &id);
}

/// The container's lines once they satisfy `done`, polled for up to 30 s.
fn wait_for_logs(
    instance: &Instance,
    container: &str,
    what: &str,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    for _ in 0..600 {
        let lines: Vec<String> = instance
            .logs()
            .entries()
            .into_iter()
            .filter(|e| e.container == container)
            .map(|e| e.text)
            .collect();
        if done(&lines) {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{container} never wrote {what}: {:?}",
        instance.logs().entries()
    );
}

/// The container's lines once one satisfies `found`.
fn wait_for_line(
    instance: &Instance,
    container: &str,
    found: impl Fn(&str) -> bool,
) -> Vec<String> {
    wait_for_logs(instance, container, "the line", |lines| {
        lines.iter().any(|l| found(l))
    })
}

fn wait_for_lines(instance: &Instance, container: &str, n: usize) -> Vec<String> {
    wait_for_logs(instance, container, &format!("{n} lines"), |lines| {
        lines.len() >= n
    })
}

#[test]
fn an_instance_that_never_gets_ready_fails_with_its_logs_and_leaves_nothing() {
    let Some(env) = env(OciRuntime::Runc, 4) else {
        return;
    };
    let probe = pull(&env, "probe");
    let busybox = pull(&env, "busybox");
    let rt = rt();

    // Exits before listening.
    let id = unique("crash");
    let mut c = shell(container("app", &busybox), "echo boom; exit 3");
    c.port = Some(8080);
    let err = rt
        .block_on(Instance::start(instance_spec(&id, vec![c]), &env.node))
        .err()
        .expect("a crashing container cannot be ready");
    match &err {
        RuntimeError::NotReady {
            container,
            reason,
            last_logs,
        } => {
            assert_eq!(container, "app");
            assert!(reason.contains("exited with code 3"), "{reason}");
            assert_eq!(last_logs, &vec!["boom".to_string()]);
        }
        other => panic!("{other}"),
    }
    assert_gone(&env, &id);

    // Runs but never listens: the startup probe's budget (1 s period x 2) runs out.
    let id = unique("deaf");
    let mut c = with_env(container("app", &probe), &[("PROBE_SLEEP_MS", "600000")]);
    c.overrides.args = Some(vec!["job".into()]);
    c.port = Some(8080);
    c.startup_probe = Some(ProbeSpec {
        action: ProbeAction::Http {
            port: 8080,
            path: "/".into(),
            headers: vec![],
        },
        initial_delay: Duration::ZERO,
        timeout: Duration::from_secs(1),
        period: Duration::from_secs(1),
        failure_threshold: 2,
    });
    let err = rt
        .block_on(Instance::start(instance_spec(&id, vec![c]), &env.node))
        .err()
        .expect("a deaf container cannot be ready");
    let text = err.to_string();
    assert!(
        text.contains("container app did not become ready"),
        "{text}"
    );
    assert!(text.contains("startup probe"), "{text}");
    assert_gone(&env, &id);

    // Refused before anything is made.
    let id = unique("bad");
    let mut c = container("app", &probe);
    c.port = Some(8080);
    c.volume_mounts = vec![("v".into(), "/proc/sys".into())];
    let mut spec = instance_spec(&id, vec![c]);
    spec.volumes = vec![MemoryVolume {
        name: "v".into(),
        size_bytes: None,
    }];
    let err = rt.block_on(Instance::start(spec, &env.node)).err().unwrap();
    assert!(err.to_string().contains("\"/proc/sys\""), "{err}");
    let mut c = container("app", &probe);
    c.limits.cpu_millis = 1_000_000;
    let err = rt
        .block_on(Instance::start(instance_spec(&id, vec![c]), &env.node))
        .err()
        .unwrap();
    assert!(err.to_string().contains("more than this machine"), "{err}");
    assert_gone(&env, &id);
}

#[test]
fn a_failed_liveness_probe_is_reported_and_restart_brings_the_instance_back() {
    let Some(env) = env(OciRuntime::Runc, 5) else {
        return;
    };
    let probe = pull(&env, "probe");
    let id = unique("live");
    // Healthy long enough for the gRPC startup probe to pass on a slow machine, then not.
    let mut c = with_env(
        container("app", &probe),
        &[("PROBE_UNHEALTHY_AFTER_MS", "2000")],
    );
    c.port = Some(8080);
    c.startup_probe = Some(ProbeSpec {
        action: ProbeAction::Grpc {
            port: 8080,
            service: None,
        },
        initial_delay: Duration::ZERO,
        timeout: Duration::from_secs(1),
        period: Duration::from_secs(10),
        failure_threshold: 3,
    });
    c.liveness_probe = Some(ProbeSpec {
        action: ProbeAction::Http {
            port: 8080,
            path: "/healthz".into(),
            headers: vec![],
        },
        initial_delay: Duration::ZERO,
        timeout: Duration::from_secs(1),
        period: Duration::from_secs(1),
        failure_threshold: 2,
    });
    let rt = rt();
    let mut instance = rt
        .block_on(Instance::start(instance_spec(&id, vec![c]), &env.node))
        .unwrap();
    let first_pid = instance.pid("app").unwrap();
    let event = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(60), instance.watch()).await })
        .expect("the liveness probe never failed");
    match event {
        InstanceEvent::Unhealthy { container, reason } => {
            assert_eq!(container, "app");
            assert!(reason.contains("503"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    rt.block_on(instance.restart()).unwrap();
    assert_eq!(instance.restarts(), 1);
    assert_ne!(instance.pid("app").unwrap(), first_pid);
    let report = get_json(SocketAddr::from((instance.address(), 8080)), "/");
    assert_eq!(report["env"]["PORT"], "8080");
    rt.block_on(instance.stop(Duration::from_secs(10)));
    assert_gone(&env, &id);
}

/// The process's cgroup file for `controller`, read from `/proc/PID/cgroup`: the v1
/// hierarchy's `v1_file` (this host is hybrid), or the v2 tree's `v2_file` on a pure v2 host.
/// Returns the file's text and whether it is the v2 one.
fn cgroup_file(pid: i32, controller: &str, v1_file: &str, v2_file: &str) -> (String, bool) {
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    // v1 `N:cpu,cpuacct:/path` (hybrid) or v2 `0::/path`.
    for line in cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        let rel = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == controller) {
            let file = Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(rel)
                .join(v1_file);
            return (std::fs::read_to_string(file).unwrap(), false);
        }
        if controllers.is_empty() && Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            let file = Path::new("/sys/fs/cgroup").join(rel).join(v2_file);
            return (std::fs::read_to_string(file).unwrap(), true);
        }
    }
    panic!("no {controller} cgroup in {cgroup}");
}

/// The v1 freezer's state of the process's cgroup, or v2's `cgroup.events` read as the
/// same words.
fn freezer_state(pid: i32) -> String {
    match cgroup_file(pid, "freezer", "freezer.state", "cgroup.events") {
        (events, true) if events.contains("frozen 1") => "FROZEN".into(),
        (_, true) => "THAWED".into(),
        (state, false) => state.trim().to_string(),
    }
}

fn quota_us(pid: i32) -> i64 {
    let (text, _) = cgroup_file(pid, "cpu", "cpu.cfs_quota_us", "cpu.max");
    // v1 holds the quota alone, v2 `QUOTA PERIOD`.
    text.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn cpu_is_boosted_at_startup_throttled_when_idle_and_processes_freeze() {
    let Some(env) = env(OciRuntime::Runc, 6) else {
        return;
    };
    let probe = pull(&env, "probe");
    let id = unique("cpu");
    let mut c = container("app", &probe);
    c.port = Some(8080);
    c.limits.cpu_millis = 500;
    let mut spec = instance_spec(&id, vec![c]);
    spec.cpu_boost = true;
    let rt = rt();
    let instance = rt.block_on(Instance::start(spec, &env.node)).unwrap();
    let pid = instance.pid("app").unwrap();
    // Boosted: twice the 0.5 vCPU limit (the 10 s boost window has just begun).
    assert_eq!(quota_us(pid), 100_000);
    instance.throttle(true).unwrap();
    assert_eq!(quota_us(pid), 1_000);
    // Back from idle within the boost window: boosted again, not cut to the limit.
    instance.throttle(false).unwrap();
    assert_eq!(quota_us(pid), 100_000);

    let addr = SocketAddr::from((instance.address(), 8080));
    rt.block_on(instance.freeze(true)).unwrap();
    assert_eq!(freezer_state(pid), "FROZEN");
    // A frozen server cannot answer (the kernel still accepts the connection).
    let answered = testkit::http::get(addr, "/", Duration::from_millis(300));
    assert!(answered.is_err(), "{answered:?}");
    rt.block_on(instance.freeze(false)).unwrap();
    assert_eq!(freezer_state(pid), "THAWED");
    assert_eq!(get_json(addr, "/")["env"]["PORT"], "8080");
    rt.block_on(instance.stop(Duration::from_secs(10)));
    assert_gone(&env, &id);
}

#[test]
fn the_contract_holds_under_runsc() {
    let Some(env) = env(OciRuntime::Runsc, 7) else {
        return;
    };
    let probe = pull(&env, "probe");
    let id = unique("gvisor");
    let mut c = container("app", &probe);
    c.port = Some(8080);
    let rt = rt();
    let instance = rt
        .block_on(Instance::start(instance_spec(&id, vec![c]), &env.node))
        .unwrap();
    let addr = SocketAddr::from((instance.address(), 8080));
    let mut report = get_json(addr, "/");
    // The probe's one-byte read of stdin runs on its own thread, which gVisor may not have
    // scheduled yet when the first request comes: it must end in EOF, never data.
    for _ in 0..100 {
        if report["stdin"] != "blocked" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        report = get_json(addr, "/");
    }
    assert_eq!(report["env"]["PORT"], "8080");
    assert_eq!(report["env"]["K_SERVICE"], "svc");
    assert_eq!(report["env"]["K_REVISION"], "svc-00001-abc");
    assert_eq!(report["env"]["K_CONFIGURATION"], "svc");
    assert_eq!(report["uid"], 0);
    assert_eq!(report["cwd"], "/");
    assert_eq!(report["hostname"], id.as_str());
    assert_eq!(report["stdin"], "eof");
    assert_eq!(report["pid"], 1);
    assert_eq!(report["files"]["/tmp"]["mode"], "1777");
    let exits = rt.block_on(instance.stop(Duration::from_secs(10)));
    assert_eq!(exits.len(), 1);
    assert_gone(&env, &id);
    // runsc's sandbox and gofer, inherited by homerun as subreaper, were reaped: no zombie
    // `exe` child remains (the other tests here run runc, whose processes have other names).
    let me = std::process::id().to_string();
    let zombies: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            let after: Vec<&str> = stat
                .rsplit(')')
                .next()
                .unwrap()
                .split_whitespace()
                .collect();
            stat.contains("(exe)") && after[0] == "Z" && after[1] == me
        })
        .collect();
    assert!(zombies.is_empty(), "{zombies:?}");
}

#[test]
fn recovery_after_a_crash_removes_what_the_instances_left() {
    let Some(env) = env(OciRuntime::Runc, 8) else {
        return;
    };
    let probe = pull(&env, "probe");
    let busybox = pull(&env, "busybox");
    let id = unique("crashed");
    let mut app = container("app", &probe);
    app.port = Some(8080);
    app.volume_mounts = vec![("v".into(), "/v".into())];
    let sidecar = shell(container("side", &busybox), "exec sleep 600");
    let mut spec = instance_spec(&id, vec![app, sidecar]);
    spec.volumes = vec![MemoryVolume {
        name: "v".into(),
        size_bytes: None,
    }];
    let rt = rt();
    let instance = rt.block_on(Instance::start(spec, &env.node)).unwrap();
    let pids = [instance.pid("app").unwrap(), instance.pid("side").unwrap()];
    // homerun dies: nothing of its own cleanup runs.
    std::mem::forget(instance);
    let recovered = runtime::recovery::recover(&env.node).unwrap();
    assert_eq!(recovered.containers, 2, "{recovered:?}");
    // Two overlay roots, two writable tmpfs layers, one volume, the IPC and UTS
    // namespace files.
    assert_eq!(recovered.mounts, 7, "{recovered:?}");
    assert_eq!(recovered.netns, 1, "{recovered:?}");
    for pid in pids {
        // The waiter threads reap them; give them a moment.
        let mut alive = true;
        for _ in 0..200 {
            alive = Path::new(&format!("/proc/{pid}")).exists();
            if !alive {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!alive, "process {pid} survived recovery");
    }
    assert_gone(&env, &id);
    // A second recovery finds nothing, and the node starts instances again.
    assert_eq!(
        runtime::recovery::recover(&env.node).unwrap(),
        runtime::recovery::Recovered::default()
    );
}

#[test]
fn a_default_volume_is_half_the_memory_an_exit_is_reported_and_a_failing_sidecar_undoes_all() {
    let Some(env) = env(OciRuntime::Runc, 9) else {
        return;
    };
    let busybox = pull(&env, "busybox");
    let rt = rt();

    // Two containers of 128 MiB: the volume defaults to 128 MiB, as Cloud Run sizes it.
    let id = unique("half");
    let mut a = shell(
        container("a", &busybox),
        "grep ' /v ' /proc/mounts; exec sleep 600",
    );
    a.volume_mounts = vec![("v".into(), "/v".into())];
    let b = shell(container("b", &busybox), "sleep 0.3; exit 7");
    let mut spec = instance_spec(&id, vec![a, b]);
    spec.volumes = vec![MemoryVolume {
        name: "v".into(),
        size_bytes: None,
    }];
    let instance = rt.block_on(Instance::start(spec, &env.node)).unwrap();
    let lines = wait_for_line(&instance, "a", |l| l.contains(" /v "));
    assert!(
        lines.iter().any(|l| l.contains("size=131072k")),
        "{lines:?}"
    );
    let event = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(60), instance.watch()).await })
        .expect("b's exit was never reported");
    match event {
        InstanceEvent::Exited { container, exit } => {
            assert_eq!(container, "b");
            assert_eq!(exit.code, Some(7));
        }
        other => panic!("{other:?}"),
    }
    rt.block_on(instance.stop(Duration::from_secs(10)));
    assert_gone(&env, &id);

    // A sidecar that dies before it is ready takes the started ingress container with it.
    let id = unique("sidefail");
    let good = shell(container("good", &busybox), "exec sleep 600");
    let mut bad = shell(container("bad", &busybox), "echo no config; exit 2");
    bad.startup_probe = Some(ProbeSpec::new(ProbeAction::Tcp { port: 9999 }));
    let err = rt
        .block_on(Instance::start(
            instance_spec(&id, vec![good, bad]),
            &env.node,
        ))
        .err()
        .expect("a failing sidecar fails the instance");
    let text = err.to_string();
    assert!(
        text.contains("container bad did not become ready"),
        "{text}"
    );
    assert!(
        text.contains("exited with code 2") && text.contains("no config"),
        "{text}"
    );
    assert_gone(&env, &id);

    // An instance dropped without stop (a cancelled start, a panic) removes everything too.
    let id = unique("dropped");
    let c = shell(container("c", &busybox), "exec sleep 600");
    let instance = rt
        .block_on(Instance::start(instance_spec(&id, vec![c]), &env.node))
        .unwrap();
    drop(instance);
    assert_gone(&env, &id);
}

#[test]
fn instances_take_pooled_network_namespaces_and_the_pool_refills_and_closes_clean() {
    let Some(mut env) = env(OciRuntime::Runc, 10) else {
        return;
    };
    let probe = pull(&env, "probe");
    let pool = NetPool::new(env.node.network.clone(), 2);
    env.node.netpool = Some(pool.clone());
    let wait_full = || {
        for _ in 0..600 {
            if pool.ready() == 2 {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the pool never filled: {} ready", pool.ready());
    };
    wait_full();
    let rt = rt();
    let id = unique("pooled");
    let mut c = container("app", &probe);
    c.port = Some(8080);
    let instance = rt
        .block_on(Instance::start(instance_spec(&id, vec![c]), &env.node))
        .unwrap();
    let report = get_json(SocketAddr::from((instance.address(), 8080)), "/");
    assert_eq!(report["env"]["PORT"], "8080");
    rt.block_on(instance.stop(Duration::from_secs(10)));
    assert_gone(&env, &id);
    // Refilled behind the instance, then emptied on close: no namespace of ours remains.
    wait_full();
    pool.close();
    assert_eq!(pool.ready(), 0);
    let netns = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let prefix = format!("hr-pool{}x", std::process::id());
    assert!(
        !String::from_utf8_lossy(&netns.stdout).contains(&prefix),
        "pooled namespaces remain"
    );
}

#[test]
fn writing_files_past_the_memory_limit_is_an_oom_kill() {
    let Some(env) = env(OciRuntime::Runc, 11) else {
        return;
    };
    let probe = pull(&env, "probe");
    let id = unique("wfs");
    let mut c = container("app", &probe);
    c.port = Some(8080);
    c.limits.memory_bytes = 64 << 20;
    let rt = rt();
    let instance = rt
        .block_on(Instance::start(instance_spec(&id, vec![c]), &env.node))
        .unwrap();
    let addr = SocketAddr::from((instance.address(), 8080));
    // The writable layer is memory: 200 MiB of files cannot fit in 64 MiB.
    let answer = testkit::http::get(addr, "/write?mib=200", Duration::from_secs(60));
    assert!(
        answer.as_ref().map_or(true, |r| r.status != 200),
        "{answer:?}"
    );
    let event = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(60), instance.watch()).await })
        .expect("the write never ended the instance");
    match event {
        InstanceEvent::Exited { container, exit } => {
            assert_eq!(container, "app");
            assert!(exit.oom_killed, "{exit:?}");
        }
        other => panic!("{other:?}"),
    }
    rt.block_on(instance.stop(Duration::from_secs(10)));
    assert_gone(&env, &id);
}

#[test]
fn the_image_user_and_working_dir_apply_and_a_template_user_overrides_them() {
    let Some(env) = env(OciRuntime::Runc, 12) else {
        return;
    };
    let nonroot = pull(&env, "probe-nonroot");
    let rt = rt();
    for (user, uid) in [(None, 65532), (Some("1234:5678"), 1234)] {
        let id = unique("user");
        let mut c = container("app", &nonroot);
        c.port = Some(8080);
        c.user = user.map(str::to_string);
        let instance = rt
            .block_on(Instance::start(instance_spec(&id, vec![c]), &env.node))
            .unwrap();
        let report = get_json(SocketAddr::from((instance.address(), 8080)), "/");
        assert_eq!(report["uid"], uid, "{user:?}");
        assert_eq!(report["euid"], uid, "{user:?}");
        assert_eq!(report["cwd"], "/srv");
        // A non-root user holds no capabilities, as under Docker.
        assert_eq!(
            report["security"]["cap_eff"], "0000000000000000",
            "{report}"
        );
        rt.block_on(instance.stop(Duration::from_secs(10)));
        assert_gone(&env, &id);
    }
}

fn volume_file(path: &str, contents: &str, mode: u32) -> VolumeFile {
    VolumeFile {
        path: path.into(),
        contents: contents.as_bytes().to_vec(),
        mode,
    }
}

#[test]
fn a_file_volume_is_read_only_readable_as_its_modes_say_and_gone_after_stop() {
    let Some(env) = env(OciRuntime::Runc, 13) else {
        return;
    };
    let probe = pull(&env, "probe");
    let busybox = pull(&env, "busybox");
    let rt = rt();
    let id = unique("files");
    // The probe listens late, so the start is seen half-way.
    let mut app = with_env(
        container("app", &probe),
        &[("PROBE_STARTUP_DELAY_MS", "1500")],
    );
    app.port = Some(8080);
    app.user = Some("65532:65532".into());
    app.volume_mounts = vec![("secrets".into(), "/secrets".into())];
    let mut root = shell(
        container("root", &busybox),
        "echo x > /s/key 2>&1; echo write=$?; touch /s/new 2>&1; echo touch=$?; \
         cat /s/private; echo; exec sleep 600",
    );
    root.volume_mounts = vec![("secrets".into(), "/s".into())];
    let mut spec = instance_spec(&id, vec![app, root]);
    spec.file_volumes = vec![FileVolume {
        name: "secrets".into(),
        files: vec![
            volume_file("key", "s3cr3t", 0o444),
            volume_file("nested/dir/cert.pem", "-----CERT-----\n", 0o444),
            volume_file("private", "root only", 0o400),
        ],
    }];
    let node = env.node.clone();
    let starting = rt.spawn(async move { Instance::start(spec, &node).await });
    // The address is known before any container is ready (before any starts, in fact).
    let mut known_while_starting = false;
    while !starting.is_finished() {
        if env.node.addresses.len() == 1 {
            known_while_starting = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let instance = rt.block_on(starting).unwrap().unwrap();
    assert!(
        known_while_starting,
        "the address was recorded only once ready"
    );
    let address = instance.address();
    assert_eq!(env.node.addresses.instance_at(address), Some(id.clone()));

    let app = SocketAddr::from((address, 8080));
    let key = get_json(app, "/file?path=/secrets/key");
    assert_eq!(key["contents"], "s3cr3t");
    assert_eq!(key["mode"], "444");
    assert_eq!(key["uid"], 0);
    assert_eq!(key["writable"], false, "{key}");
    let cert = get_json(app, "/file?path=/secrets/nested/dir/cert.pem");
    assert_eq!(cert["contents"], "-----CERT-----\n");
    let dir = get_json(app, "/file?path=/secrets/nested/dir");
    assert_eq!((&dir["type"], &dir["mode"]), (&"dir".into(), &"755".into()));
    // 0400 and root's: the probe's user may not read it.
    let private = get_json(app, "/file?path=/secrets/private");
    assert!(private["contents"].is_null(), "{private}");
    assert!(
        private["error"].as_str().unwrap().contains("denied"),
        "{private}"
    );
    let report = get_json(app, "/");
    let mount = report["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["target"] == "/secrets")
        .cloned()
        .expect("the volume is mounted at /secrets");
    assert_eq!(mount["fstype"], "tmpfs");
    assert!(
        mount["options"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "ro"),
        "{mount}"
    );
    // Root may read everything, and write nothing (the shell's own complaint comes on
    // stderr, so in any order).
    let lines = wait_for_lines(&instance, "root", 5);
    for expected in [
        "/bin/sh: can't create /s/key: Read-only file system",
        "write=1",
        "touch: /s/new: Read-only file system",
        "touch=1",
        "root only",
    ] {
        assert!(lines.iter().any(|l| l == expected), "{expected}: {lines:?}");
    }
    // On the host, only root may look where the files are.
    let files = env.node.state_dir.join(&id).join("files");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&files).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert!(std::fs::write(files.join("secrets/key"), "x").is_err());

    rt.block_on(instance.stop(Duration::from_secs(10)));
    assert_eq!(env.node.addresses.instance_at(address), None);
    assert!(env.node.addresses.is_empty());
    assert_gone(&env, &id);

    // A start that fails after the files were written leaves no mount and no address.
    let id = unique("filesfail");
    let mut bad = shell(container("bad", &busybox), "cat /s/key; exit 3");
    bad.volume_mounts = vec![("secrets".into(), "/s".into())];
    bad.startup_probe = Some(ProbeSpec::new(ProbeAction::Tcp { port: 9999 }));
    let mut spec = instance_spec(&id, vec![bad]);
    spec.file_volumes = vec![FileVolume {
        name: "secrets".into(),
        files: vec![volume_file("key", "s3cr3t", 0o444)],
    }];
    let err = rt
        .block_on(Instance::start(spec, &env.node))
        .err()
        .expect("the container exits before it is ready");
    assert!(err.to_string().contains("exited with code 3"), "{err}");
    assert!(env.node.addresses.is_empty());
    assert_gone(&env, &id);
}
