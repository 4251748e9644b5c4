//! Instance start benchmark (the runtime issue): from the call that starts an instance of the
//! cached probe image until its port accepts connections (the startup probe, polled every
//! millisecond), over N starts, against bare `runc run` of an equivalent prepared bundle in
//! the same run. Run as root: `scripts/bench-start.sh`.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use image::{ImageSource, Quiet, RegistryOptions, Store};
use runtime::cgroup::Layout;
use runtime::container::{become_subreaper, Limits};
use runtime::instance::{ContainerDef, Instance, InstanceSpec, Node};
use runtime::net::{NetPool, Network, NetworkConfig};
use runtime::runc::{OciRuntime, Runtime};

fn wait_listening(addr: SocketAddr) -> Duration {
    let start = Instant::now();
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(50)).is_ok() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{addr} never listened"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// This process's resident set, KiB.
fn rss_kib() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn summary(name: &str, mut ms: Vec<f64>) {
    ms.sort_by(|a, b| a.total_cmp(b));
    let pick = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{name:<44} median {:7.1} ms  p95 {:7.1} ms  min {:7.1}  max {:7.1}  (n={})",
        pick(0.5),
        pick(0.95),
        ms[0],
        ms[ms.len() - 1],
        ms.len()
    );
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    become_subreaper().expect("subreaper");
    let work = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&work.path().join("data")).expect("store");
    let cat = testkit::catalogue().expect("test images");
    let source = ImageSource::parse(&format!("oci:{}", cat.image("probe").path.display())).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let image = rt
        .block_on(store.pull(&source, &RegistryOptions::default(), &Quiet))
        .expect("pull")
        .record;
    let network = Network::setup(NetworkConfig {
        bridge: "hrbench0".into(),
        subnet: "10.254.0.0/24".into(),
        state_dir: work.path().join("net"),
    })
    .expect("network");
    let network = Arc::new(network);
    let node = |kind: OciRuntime, dir: &str| {
        let state_dir = work.path().join(dir);
        std::fs::create_dir_all(&state_dir).unwrap();
        Node {
            store: store.clone(),
            runtime: Runtime::new(kind, &work.path().join(format!("{dir}-root"))),
            network: network.clone(),
            state_dir,
            cgroups: Arc::new(Layout::detect().expect("cgroups")),
            netpool: None,
            addresses: Default::default(),
        }
    };
    let spec = |id: String| InstanceSpec {
        id,
        containers: vec![ContainerDef {
            name: "app".into(),
            image: image.clone(),
            overrides: Default::default(),
            user: None,
            port: Some(8080),
            limits: Limits {
                memory_bytes: 512 << 20,
                cpu_millis: 1000,
                pids: 1024,
            },
            volume_mounts: vec![],
            depends_on: vec![],
            startup_probe: None,
            liveness_probe: None,
        }],
        volumes: vec![],
        file_volumes: vec![],
        platform_env: vec![("K_SERVICE".into(), "bench".into())],
        hosts: vec![],
        cpu_boost: false,
    };

    // The network namespace on its own.
    let mut attach = Vec::new();
    for i in 0..runs {
        let t = Instant::now();
        let a = network.attach(&format!("att{i}")).expect("attach");
        attach.push(t.elapsed().as_secs_f64() * 1000.0);
        a.release(&network).expect("release");
    }

    // homerun: from the call to Instance::start until it returns, i.e. until the default
    // startup probe (TCP on PORT, polled fast) passed: network namespace, overlay root over
    // the cached layers, tmpfs upper, bundle, runc run, probe.
    let runc_node = node(OciRuntime::Runc, "runc");
    let mut homerun = Vec::new();
    for i in 0..runs {
        let t = Instant::now();
        let instance = rt
            .block_on(Instance::start(spec(format!("bench{i}")), &runc_node))
            .expect("start");
        homerun.push(t.elapsed().as_secs_f64() * 1000.0);
        rt.block_on(instance.stop(Duration::from_secs(10)));
    }

    // The same with a pool of network namespaces made ahead of time (the platform's
    // setting): the namespace is no longer on the start's path.
    let mut pooled_node = node(OciRuntime::Runc, "pooled");
    let pool = NetPool::new(network.clone(), 4);
    pooled_node.netpool = Some(pool.clone());
    let mut pooled = Vec::new();
    for i in 0..runs {
        // Measure starts, not the pool's refill rate: wait until it is full again.
        while pool.ready() < 4 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let t = Instant::now();
        let instance = rt
            .block_on(Instance::start(spec(format!("pool{i}")), &pooled_node))
            .expect("start");
        pooled.push(t.elapsed().as_secs_f64() * 1000.0);
        rt.block_on(instance.stop(Duration::from_secs(10)));
    }
    pool.close();

    // homerun's own memory per running instance: its resident size with `runs` instances
    // running, less its size before them, divided by their number (the containers are other
    // processes; this is the bookkeeping: threads, buffers, handles).
    let before = rss_kib();
    let running: Vec<Instance> = (0..runs)
        .map(|i| {
            rt.block_on(Instance::start(spec(format!("mem{i}")), &runc_node))
                .expect("start")
        })
        .collect();
    let per_instance_kib = (rss_kib() - before) as f64 / runs as f64;
    for instance in running {
        rt.block_on(instance.stop(Duration::from_secs(10)));
    }

    // The same under gVisor (Cloud Run's first generation), fewer runs: it is slower.
    let runsc_node = node(OciRuntime::Runsc, "runsc");
    let mut gvisor = Vec::new();
    for i in 0..runs.min(20) {
        let t = Instant::now();
        let instance = rt
            .block_on(Instance::start(spec(format!("gv{i}")), &runsc_node))
            .expect("start under runsc");
        gvisor.push(t.elapsed().as_secs_f64() * 1000.0);
        rt.block_on(instance.stop(Duration::from_secs(10)));
    }

    // Baseline: bare `runc run --detach` of an equivalent prepared bundle (the probe layer
    // unpacked once, the same config.json homerun writes), until the port answers.
    let bundle = work.path().join("bundle");
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(rootfs.join("tmp")).unwrap();
    std::fs::copy(
        store
            .layer_dir(&image.layers[0].digest)
            .unwrap()
            .join("probe"),
        rootfs.join("probe"),
    )
    .unwrap();
    let root = work.path().join("bare");
    let mut bare = Vec::new();
    for i in 0..runs {
        let id = format!("bare{i}");
        let a = network.attach(&id).expect("attach");
        write_bare_config(&bundle, &a.netns_path, &id);
        let t = Instant::now();
        let status = Command::new("runc")
            .arg("--root")
            .arg(&root)
            .args(["run", "--detach", "--bundle"])
            .arg(&bundle)
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("runc run");
        assert!(status.success(), "runc run failed");
        wait_listening(SocketAddr::from((a.address, 8080)));
        bare.push(t.elapsed().as_secs_f64() * 1000.0);
        let _ = Command::new("runc")
            .arg("--root")
            .arg(&root)
            .args(["delete", "--force", &id])
            .status();
        a.release(&network).expect("release");
    }
    // The bridge: a fresh handle on it (setup is idempotent) takes it down.
    Network::setup(network.config().clone())
        .and_then(Network::teardown)
        .expect("teardown");
    // The baseline's parent cgroups, now empty.
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::remove_dir(hierarchy.path().join("homerun-bench"));
    }

    summary("network namespace attach (part of homerun's)", attach);
    summary("homerun Instance::start, runc (until ready)", homerun);
    summary("  the same, network namespace pooled", pooled);
    summary("homerun Instance::start, runsc (until ready)", gvisor);
    summary("baseline: bare runc run until listening", bare);
    println!("homerun's own memory per running instance: {per_instance_kib:.0} KiB (n={runs})");
}

/// The same `config.json` homerun writes (seccomp, capabilities, limits, namespaces), over
/// a prepared read-only rootfs instead of the overlay: the equivalent bundle.
fn write_bare_config(bundle: &Path, netns: &Path, id: &str) {
    runtime::bundle::write_bare_bundle(
        bundle,
        &bundle.join("rootfs"),
        vec!["/probe".into()],
        vec![("PORT".into(), "8080".into())],
        Limits {
            memory_bytes: 512 << 20,
            cpu_millis: 1000,
            pids: 1024,
        },
        Some(netns),
        id,
    )
    .expect("bundle");
}
