//! Containers under runc, end to end: the test images pulled into a store, run with limits,
//! logs, exit codes, OOM, SIGTERM then SIGKILL, in their own network namespace, and nothing
//! left behind.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use image::{ImageRecord, ImageSource, Quiet, RegistryOptions, Store};
use runtime::container::{
    become_subreaper, Container, ContainerSpec, Ids, Limits, ProcessSpec, User,
};
use runtime::logs::Stream;
use runtime::runc::{OciRuntime, Runtime};

struct Env {
    _dir: tempfile::TempDir,
    store: Store,
    runtime: Runtime,
    state: std::path::PathBuf,
}

fn env() -> Option<Env> {
    if !testkit::require(&["runc", "busybox"], true) {
        return None;
    }
    become_subreaper().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("data")).unwrap();
    let runtime = Runtime::new(OciRuntime::Runc, &dir.path().join("runc"));
    let state = dir.path().join("instances");
    std::fs::create_dir(&state).unwrap();
    Some(Env {
        _dir: dir,
        store,
        runtime,
        state,
    })
}

fn pull(env: &Env, name: &str) -> ImageRecord {
    let cat = testkit::catalogue().unwrap();
    pull_source(env, &format!("oci:{}", cat.image(name).path.display()))
}

/// Pulls a local source (`oci:DIR[:TAG]`) into the test's store.
fn pull_source(env: &Env, source: &str) -> ImageRecord {
    let source = ImageSource::parse(source).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(env.store.pull(&source, &RegistryOptions::default(), &Quiet))
        .unwrap()
        .record
}

/// An OCI layout whose config says linux/amd64 while its /probe is an aarch64 ELF.
fn lying_arm64_image(env: &Env) -> ImageRecord {
    use testkit::layer::{aarch64_exit0_elf, Compression, LayerBuilder};
    use testkit::layout::{Flavor, ImageConfig, ImageSink, Layout};
    let dir = env.state.join("lying-layout");
    let mut builder = LayerBuilder::new();
    builder.file("probe", 0o755, &aarch64_exit0_elf()).unwrap();
    let layer = builder.finish(Compression::Gzip).unwrap();
    let config = ImageConfig {
        architecture: "amd64".into(),
        entrypoint: vec!["/probe".into()],
        working_dir: "/".into(),
        ..Default::default()
    };
    let mut layout = Layout::create(&dir).unwrap();
    let desc = layout.put_image(Flavor::Oci, &config, &[layer]).unwrap();
    layout.tag(&desc, "latest");
    layout.finish().unwrap();
    pull_source(env, &format!("oci:{}:latest", dir.display()))
}

fn unique_id(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn spec(id: &str, argv: &[&str], env: &[(&str, &str)]) -> ContainerSpec {
    ContainerSpec {
        id: id.into(),
        name: "main".into(),
        process: ProcessSpec {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cwd: "/".into(),
            user: User::Ids(Ids::default()),
        },
        limits: Limits {
            memory_bytes: 128 << 20,
            cpu_millis: 1000,
            pids: 256,
        },
        hostname: id.into(),
        netns: None,
        shared_namespaces: None,
        hosts: vec![],
        volumes: vec![],
        dmi_product_name: None,
    }
}

/// Nothing of a container remains: no runc state, no mount, no cgroup, no directory.
fn assert_gone(env: &Env, id: &str) {
    assert!(
        !env.runtime.list().unwrap().contains(&id.to_string()),
        "runc still knows {id}"
    );
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains(id), "a mount of {id} remains");
    assert!(
        !Path::new(&format!("/sys/fs/cgroup/memory/homerun/{id}")).exists(),
        "memory cgroup of {id} remains"
    );
    assert!(
        !env.state.join(id).exists(),
        "state directory of {id} remains"
    );
}

const PATIENCE: Duration = Duration::from_secs(60);

/// Docker's 14 default capabilities as the kernel prints the set: CHOWN, DAC_OVERRIDE,
/// FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT,
/// MKNOD, AUDIT_WRITE, SETFCAP.
const DOCKER_CAP_MASK: &str = "00000000a80425fb";

#[test]
fn a_shell_container_runs_to_its_exit_code_with_ordered_logs() {
    let Some(env) = env() else { return };
    let image = pull(&env, "busybox");
    let id = unique_id("sh");
    let c = Container::start(
        &spec(&id, &["/bin/sh", "-c", "for i in 1 2 3; do echo out $i; done; echo err >&2; echo \"$GREETING $(hostname) $(id -u)\"; exit 3"], &[("PATH", "/bin"), ("GREETING", "hello")]),
        &env.store, &image, &env.runtime, &env.state,
    )
    .unwrap();
    let exit = c.wait(PATIENCE).expect("the container exits");
    assert_eq!(
        (exit.code, exit.signal, exit.oom_killed),
        (Some(3), None, false)
    );
    c.destroy();
    // The log threads finish at EOF; entries are in arrival order per stream.
    assert_gone(&env, &id);
}

#[test]
fn logs_are_captured_in_order_per_stream() {
    let Some(env) = env() else { return };
    let image = pull(&env, "busybox");
    let id = unique_id("logs");
    let c = Container::start(
        &spec(&id, &["/bin/sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done; echo oops >&2; echo \"$GREETING $(hostname)\""], &[("PATH", "/bin"), ("GREETING", "hello")]),
        &env.store, &image, &env.runtime, &env.state,
    )
    .unwrap();
    assert_eq!(c.wait(PATIENCE).unwrap().code, Some(0));
    let logs = c.logs().clone();
    c.destroy();
    let stdout: Vec<String> = logs
        .entries()
        .into_iter()
        .filter(|e| e.stream == Stream::Stdout)
        .map(|e| e.text)
        .collect();
    assert_eq!(
        stdout,
        [
            "line 1",
            "line 2",
            "line 3",
            "line 4",
            "line 5",
            &format!("hello {id}")
        ]
    );
    let stderr: Vec<String> = logs
        .entries()
        .into_iter()
        .filter(|e| e.stream == Stream::Stderr)
        .map(|e| e.text)
        .collect();
    assert_eq!(stderr, ["oops"]);
    assert_gone(&env, &id);
}

#[test]
fn sigterm_then_sigkill_after_the_grace_period() {
    let Some(env) = env() else { return };
    let image = pull(&env, "probe");
    // The probe drains politely.
    let id = unique_id("term");
    let c = Container::start(
        &spec(&id, &["/probe", "job"], &[("PROBE_SLEEP_MS", "600000")]),
        &env.store,
        &image,
        &env.runtime,
        &env.state,
    )
    .unwrap();
    wait_for_line(&c, "\"probe\":\"job\"");
    let _ = c.wait(Duration::ZERO);
    let exit = c.stop(Duration::from_secs(20)).unwrap();
    assert_eq!(
        exit.code,
        Some(143),
        "the probe saw SIGTERM and exited: {exit:?}"
    );
    assert!(c
        .logs()
        .entries()
        .iter()
        .any(|e| e.text == "probe: SIGTERM received"));
    c.destroy();
    assert_gone(&env, &id);

    // One that ignores SIGTERM is killed once the grace period is over.
    let id = unique_id("kill");
    let c = Container::start(
        &spec(
            &id,
            &["/probe", "job"],
            &[("PROBE_SLEEP_MS", "600000"), ("PROBE_IGNORE_SIGTERM", "1")],
        ),
        &env.store,
        &image,
        &env.runtime,
        &env.state,
    )
    .unwrap();
    wait_for_line(&c, "\"probe\":\"job\"");
    let exit = c.stop(Duration::from_secs(1)).unwrap();
    assert_eq!(exit.signal, Some(libc::SIGKILL), "{exit:?}");
    assert!(c
        .logs()
        .entries()
        .iter()
        .any(|e| e.text == "probe: SIGTERM received (ignored)"));
    c.destroy();
    assert_gone(&env, &id);
}

fn wait_for_line(c: &Container, needle: &str) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while !c.logs().entries().iter().any(|e| e.text.contains(needle)) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {needle:?} in {:?}",
            c.logs().entries()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn allocating_past_the_memory_limit_is_an_oom_kill() {
    let Some(env) = env() else { return };
    let image = pull(&env, "probe");
    let id = unique_id("oom");
    let mut s = spec(
        &id,
        &["/probe", "job"],
        &[("PROBE_ALLOC_MIB", "256"), ("PROBE_SLEEP_MS", "60000")],
    );
    s.limits.memory_bytes = 64 << 20;
    let c = Container::start(&s, &env.store, &image, &env.runtime, &env.state).unwrap();
    let exit = c.wait(PATIENCE).expect("the OOM killer ends it");
    assert_eq!(exit.signal, Some(libc::SIGKILL), "{exit:?}");
    assert!(exit.oom_killed, "{exit:?}");
    c.destroy();
    assert_gone(&env, &id);
}

#[test]
fn bad_requests_are_refused_and_leave_nothing() {
    let Some(env) = env() else { return };
    let image = pull(&env, "busybox");
    let id = unique_id("bad");
    let err = Container::start(
        &spec(&id, &["/no/such/binary"], &[]),
        &env.store,
        &image,
        &env.runtime,
        &env.state,
    )
    .err()
    .expect("a missing entrypoint is refused");
    assert!(err.to_string().contains("/no/such/binary"), "{err}");
    assert_gone(&env, &id);
    // An image that says amd64 but ships an aarch64 executable.
    let lying = lying_arm64_image(&env);
    let id = unique_id("arm");
    let err = Container::start(
        &spec(&id, &["/probe"], &[]),
        &env.store,
        &lying,
        &env.runtime,
        &env.state,
    )
    .err()
    .expect("a foreign executable is refused");
    assert!(
        err.to_string().contains("/probe is an aarch64 executable"),
        "{err}"
    );
    assert_gone(&env, &id);

    let mut s = spec(&unique_id("tiny"), &["/bin/true"], &[]);
    s.limits.memory_bytes = 1 << 20;
    assert!(Container::start(&s, &env.store, &image, &env.runtime, &env.state).is_err());
    assert!(Container::start(
        &spec("Bad/Id", &["/bin/true"], &[]),
        &env.store,
        &image,
        &env.runtime,
        &env.state
    )
    .is_err());
}

/// Removes the test's network (attachment and bridge) also when the test fails.
struct NetGuard {
    network: Option<runtime::net::Network>,
    attachment: Option<runtime::net::Attachment>,
}

impl Drop for NetGuard {
    fn drop(&mut self) {
        if let (Some(a), Some(n)) = (self.attachment.take(), self.network.as_ref()) {
            let _ = a.release(n);
        }
        if let Some(n) = self.network.take() {
            let _ = n.teardown();
        }
    }
}

/// The probe image as an instance: its own network namespace on a bridge, reachable from
/// the host at instance-ip:PORT, and what it reports is the contract's sandbox.
#[test]
fn the_probe_serves_from_its_own_network_namespace() {
    let Some(env) = env() else { return };
    let image = pull(&env, "probe");
    let pid = std::process::id();
    let config = runtime::net::NetworkConfig {
        bridge: format!("hrc{:x}", pid % 0xfffff),
        // 10.252.0.0/16 is the container tests' own range (the net tests use others).
        subnet: format!("10.252.{}.0/24", pid % 256),
        state_dir: env.state.join("net"),
    };
    let mut net = NetGuard {
        network: Some(runtime::net::Network::setup(config).unwrap()),
        attachment: None,
    };
    let id = unique_id("srv").replace('-', "");
    let attachment = net.network.as_ref().unwrap().attach(&id).unwrap();
    let addr = std::net::SocketAddr::from((attachment.address, 8080));
    let gateway = net.network.as_ref().unwrap().gateway();
    let mut s = spec(
        &id,
        &["/probe"],
        &[("PORT", "8080"), ("K_SERVICE", "hello")],
    );
    s.netns = Some(attachment.netns_path.clone());
    s.hosts = vec![(
        gateway.to_string(),
        vec!["metadata.google.internal".into(), "metadata".into()],
    )];
    s.limits.cpu_millis = 500;
    net.attachment = Some(attachment);

    let c = Container::start(&s, &env.store, &image, &env.runtime, &env.state).unwrap();
    assert!(
        testkit::http::wait_listening(addr, PATIENCE),
        "probe not reachable at {addr}: {:?}",
        c.logs().entries()
    );
    let report = testkit::http::get(addr, "/", PATIENCE).unwrap().json();
    assert_eq!(report["env"]["PORT"], "8080");
    assert_eq!(report["env"]["K_SERVICE"], "hello");
    assert_eq!(
        report["pid"], 1,
        "the container's process is PID 1 of its namespace"
    );
    assert_eq!(report["hostname"], id);
    assert_eq!(report["stdin"], "eof");
    assert_eq!(report["files"]["/tmp"]["mode"], "1777");
    assert_eq!(report["cgroup"]["memory_limit_bytes"], 128u64 << 20);
    assert_eq!(report["cgroup"]["cpu_limit"], 0.5);
    let hosts = report["files"]["/etc/hosts"]["type"].clone();
    assert_eq!(hosts, "file");
    // Docker's default capabilities and seccomp profile, no_new_privs, cgroup files read-only.
    assert_eq!(report["security"]["no_new_privs"], "1");
    assert_eq!(
        report["security"]["seccomp"], "2",
        "a seccomp filter is installed"
    );
    assert_eq!(report["security"]["cap_eff"], DOCKER_CAP_MASK);
    assert_eq!(report["security"]["cap_bnd"], DOCKER_CAP_MASK);
    let writable = report["cgroup"]["writable"].as_object().unwrap();
    assert!(
        !writable.is_empty() && writable.values().all(|w| w == false),
        "{writable:?}"
    );
    let root = report["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["target"] == "/")
        .cloned()
        .unwrap();
    assert_eq!(root["fstype"], "overlay");
    // Writing /tmp lands in the memory-backed upper layer, not in the shared image layer.
    let w = testkit::http::get(addr, "/write?mib=1", PATIENCE).unwrap();
    assert_eq!(w.status, 200);
    let exit = c.stop(Duration::from_secs(10)).unwrap();
    assert_eq!(exit.code, Some(0), "the probe exits 0 on SIGTERM");
    c.destroy();
    drop(net);
    assert_gone(&env, &id);
    let netns = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&netns.stdout).contains(&id),
        "the network namespace is gone"
    );
}

/// The first generation environment: the same bundle under gVisor's runsc.
#[test]
fn a_job_runs_under_runsc() {
    if !testkit::require(&["runsc"], true) {
        return;
    }
    let Some(env) = env() else { return };
    let runsc = Runtime::new(OciRuntime::Runsc, &env.state.join("runsc"));
    let image = pull(&env, "probe");
    let id = unique_id("gvisor");
    let c = Container::start(
        &spec(
            &id,
            &["/probe", "job"],
            &[("CLOUD_RUN_TASK_INDEX", "4"), ("PROBE_SLEEP_MS", "10")],
        ),
        &env.store,
        &image,
        &runsc,
        &env.state,
    )
    .unwrap();
    let exit = c.wait(PATIENCE).expect("the job ends");
    assert_eq!(exit.code, Some(0), "{exit:?}: {:?}", c.logs().entries());
    assert!(c
        .logs()
        .entries()
        .iter()
        .any(|e| e.text == "CLOUD_RUN_TASK_INDEX=4"));
    c.destroy();
    assert!(!env.state.join(&id).exists());
}

/// Fifty probe instances, each in its own network namespace, started and stopped at once:
/// every one serves, every one stops, and nothing of any of them remains.
#[test]
fn fifty_concurrent_instances_leave_nothing_behind() {
    let Some(env) = env() else { return };
    let image = pull(&env, "probe");
    let pid = std::process::id();
    let config = runtime::net::NetworkConfig {
        bridge: format!("hrf{:x}", pid % 0xfffff),
        subnet: format!("10.253.{}.0/24", pid % 256),
        state_dir: env.state.join("net"),
    };
    let network = runtime::net::Network::setup(config).unwrap();
    let guard = NetGuard {
        network: Some(network),
        attachment: None,
    };
    let network = guard.network.as_ref().unwrap();
    let ids: Vec<String> = (0..50)
        .map(|_| unique_id("many").replace('-', ""))
        .collect();
    let results: Vec<Result<String, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = ids
            .iter()
            .map(|id| {
                let (env, image) = (&env, &image);
                scope.spawn(move || -> Result<String, String> {
                    let attachment = network.attach(id).map_err(|e| e.to_string())?;
                    let mut s = spec(id, &["/probe"], &[("PORT", "8080")]);
                    s.netns = Some(attachment.netns_path.clone());
                    s.limits.memory_bytes = 64 << 20;
                    let outcome = (|| {
                        let c = Container::start(&s, &env.store, image, &env.runtime, &env.state)
                            .map_err(|e| e.to_string())?;
                        let addr = std::net::SocketAddr::from((attachment.address, 8080));
                        let served = testkit::http::wait_listening(addr, Duration::from_secs(120))
                            && testkit::http::get(addr, "/headers", PATIENCE)
                                .map(|r| r.status == 200)
                                .unwrap_or(false);
                        let exit = c.stop(Duration::from_secs(10)).map_err(|e| e.to_string())?;
                        c.destroy();
                        if !served {
                            return Err(format!("{id} never served"));
                        }
                        if exit.code != Some(0) {
                            return Err(format!("{id} ended with {exit:?}"));
                        }
                        Ok(id.clone())
                    })();
                    attachment.release(network).map_err(|e| e.to_string())?;
                    outcome
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} of 50 failed: {failures:?}",
        failures.len()
    );
    for id in &ids {
        assert_gone(&env, id);
    }
    drop(guard);
    let netns = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let left = String::from_utf8_lossy(&netns.stdout);
    assert!(
        ids.iter().all(|id| !left.contains(id.as_str())),
        "network namespaces remain: {left}"
    );
}
