//! `homerun up` end to end, under runc, with the probe image: deploy, serve, scale to zero
//! and back, new revisions, traffic splits and tags, failed revisions that keep traffic
//! where it was, concurrency, the activator queue's 429, request timeouts, crashes, a
//! kill -9 and recovery, and a drain on SIGTERM that leaves nothing behind.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::platform::{Platform, FAST_SCALING, PATIENCE};

fn platform(net: u8, extra: &[&str]) -> Option<Platform> {
    if !testkit::require(&["runc", "ip", "iptables"], true) {
        return None;
    }
    let mut args = FAST_SCALING.to_vec();
    args.extend_from_slice(extra);
    Some(Platform::start(env!("CARGO_BIN_EXE_homerun"), net, &args))
}

fn image(name: &str) -> String {
    let cat = testkit::catalogue().unwrap();
    format!("oci:{}", cat.image(name).path.display())
}

fn probe_service(env: &[(&str, &str)]) -> Value {
    let env: Vec<Value> = env
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    json!({"template": {"containers": [{"image": image("probe"), "env": env}]}})
}

/// The probe's report of its own environment.
fn env_of(report: &Value) -> &serde_json::Map<String, Value> {
    report["env"].as_object().expect("the probe's env")
}

fn short(name: &str) -> String {
    name.rsplit('/').next().unwrap().to_string()
}

fn ok_response(op: &Value) -> &Value {
    assert!(op["error"].is_null(), "operation failed: {op}");
    &op["response"]
}

/// Stops the platform with SIGTERM and checks it exited 0 and left nothing.
fn stop_clean(mut p: Platform) {
    let status = p.terminate();
    assert!(status.success(), "homerun exited {status}:\n{}", p.logs());
    let left = p.leftovers();
    assert!(left.is_empty(), "left behind: {left:?}\n{}", p.logs());
}

#[test]
fn deploy_scale_to_zero_revisions_split_tags_and_delete() {
    let Some(p) = platform(201, &[]) else { return };
    let op = p.create_service("hello", &probe_service(&[]));
    let service = ok_response(&op);
    let port = p.ingress.port();
    assert_eq!(service["uri"], format!("http://hello.localhost:{port}"));
    assert_eq!(service["terminalCondition"]["state"], "CONDITION_SUCCEEDED");
    let rev1 = service["latestReadyRevision"].as_str().unwrap().to_string();
    assert_eq!(rev1, service["latestCreatedRevision"].as_str().unwrap());
    assert!(short(&rev1).starts_with("hello-00001-"), "{rev1}");

    let r = p.get("hello", "/");
    assert_eq!(r.status, 200, "{}", r.text());
    let report = r.json();
    let env = env_of(&report);
    assert_eq!(env["K_SERVICE"], "hello");
    assert_eq!(env["K_CONFIGURATION"], "hello");
    assert_eq!(env["K_REVISION"], short(&rev1).as_str());
    assert_eq!(env["PORT"], "8080");

    // Scale to zero once idle, and back from zero on the next request.
    assert!(
        p.wait_containers(|c| c.is_empty()),
        "still running after the idle period: {:?}",
        p.containers()
    );
    let r = p.get("hello", "/");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(p.containers().len(), 1, "{:?}", p.containers());

    // A new template is a new revision, and LATEST moves to it once it is ready.
    let op = p.update_service("hello", "", &probe_service(&[("FOO", "bar")]));
    let service = ok_response(&op);
    let rev2 = service["latestReadyRevision"].as_str().unwrap().to_string();
    assert!(short(&rev2).starts_with("hello-00002-"), "{rev2}");
    let report = p.get("hello", "/").json();
    assert_eq!(env_of(&report)["FOO"], "bar");
    assert_eq!(env_of(&report)["K_REVISION"], short(&rev2).as_str());

    // Half and half, and a tag on the old revision.
    let traffic = json!({"traffic": [
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": short(&rev1), "percent": 50},
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": short(&rev2), "percent": 50},
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": short(&rev1), "tag": "old"},
    ]});
    let op = p.update_service("hello", "traffic", &traffic);
    let service = ok_response(&op);
    let statuses = service["trafficStatuses"].as_array().unwrap();
    assert_eq!(statuses.len(), 3, "{service}");
    assert_eq!(
        statuses[2]["uri"],
        format!("http://old---hello.localhost:{port}")
    );
    let mut seen = BTreeSet::new();
    for _ in 0..40 {
        let r = p.get("hello", "/");
        assert_eq!(r.status, 200, "{}", r.text());
        seen.insert(
            env_of(&r.json())["K_REVISION"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(
        seen,
        BTreeSet::from([short(&rev1), short(&rev2)]),
        "40 requests split 50/50"
    );
    for _ in 0..5 {
        let r = p.request("old---hello.localhost", "GET", "/");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(env_of(&r.json())["K_REVISION"], short(&rev1).as_str());
    }

    // Revisions are listed with their conditions.
    let (status, list) = p.call(
        "GET",
        &format!("{}/services/hello/revisions", p.location()),
        None,
    );
    assert_eq!(status, 200);
    let revisions = list["revisions"].as_array().unwrap();
    assert_eq!(revisions.len(), 2, "{list}");
    for r in revisions {
        let ready = r["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready["state"], "CONDITION_SUCCEEDED", "{r}");
    }

    let (status, op) = p.call("DELETE", &format!("{}/services/hello", p.location()), None);
    assert_eq!(status, 200, "{op}");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let r = p.get("hello", "/");
        if r.status == 404 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still served after delete: {}",
            r.status
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        p.wait_containers(|c| c.is_empty()),
        "instances of a deleted service still run: {:?}",
        p.containers()
    );
    stop_clean(p);
}

#[test]
fn a_revision_that_cannot_start_fails_and_traffic_stays() {
    let Some(p) = platform(202, &[]) else { return };
    let op = p.create_service("keep", &probe_service(&[]));
    let rev1 = ok_response(&op)["latestReadyRevision"]
        .as_str()
        .unwrap()
        .to_string();

    let cases = [
        (
            json!({"template": {"containers": [{"image": "oci:/nonexistent/layout"}]}}),
            "Image 'oci:/nonexistent/layout'",
        ),
        (
            json!({"template": {"containers": [{"image": image("probe"), "command": ["/no/such/binary"]}]}}),
            "/no/such/binary",
        ),
        (
            json!({"template": {"containers": [{"image": image("busybox"),
                "command": ["/bin/sh", "-c", "echo going down; exit 3"]}]}}),
            "going down",
        ),
    ];
    for (template, expected) in cases {
        let op = p.update_service("keep", "", &template);
        let message = op["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("is not ready and cannot serve traffic") && message.contains(expected),
            "expected a failure naming {expected:?}: {op}"
        );
        let service = p.service("keep");
        assert_eq!(service["terminalCondition"]["state"], "CONDITION_FAILED");
        assert_eq!(service["latestReadyRevision"], rev1.as_str());
        let failed = service["latestCreatedRevision"].as_str().unwrap();
        assert_ne!(failed, rev1);
        let (_, revision) = p.call("GET", &format!("/v2/{failed}"), None);
        let ready = revision["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap()
            .clone();
        assert_eq!(ready["state"], "CONDITION_FAILED", "{revision}");
        assert!(ready["message"].as_str().unwrap().contains(expected));
        // The old revision still takes every request.
        let r = p.get("keep", "/");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(env_of(&r.json())["K_REVISION"], short(&rev1).as_str());
    }
    stop_clean(p);
}

#[test]
fn concurrency_one_queue_timeout_request_timeout_and_crash() {
    let Some(p) = platform(203, &["--queue-wait", "1s"]) else {
        return;
    };
    let service = json!({"template": {
        "maxInstanceRequestConcurrency": 1,
        "timeout": "2s",
        "scaling": {"maxInstanceCount": 1},
        "containers": [{"image": image("probe")}],
    }});
    ok_response(&p.create_service("one", &service));

    // One request at a time on the only instance: a second one waits in the queue and
    // gets the 429 after the queue wait.
    let slow = {
        let ingress = p.ingress;
        std::thread::spawn(move || {
            testkit::http::request(
                ingress,
                "GET",
                "/sleep?ms=1800",
                &[("Host", "one.localhost")],
                b"",
                PATIENCE,
            )
            .unwrap()
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let queued = p.get("one", "/");
    assert_eq!(queued.status, 429, "{}", queued.text());
    assert!(
        queued
            .text()
            .contains("The request was aborted because there was no available instance."),
        "{}",
        queued.text()
    );
    assert_eq!(slow.join().unwrap().status, 200);

    // Past the revision's timeout: 504, and the instance keeps serving.
    let r = p.get("one", "/sleep?ms=4000");
    assert_eq!(r.status, 504, "{}", r.text());
    let deadline = Instant::now() + PATIENCE;
    loop {
        let r = p.get("one", "/");
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not served after a 504: {}",
            r.status
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // An instance that crashes mid-request: that request is a 503, and a new instance
    // serves the next.
    let r = p.get("one", "/crash");
    assert_eq!(r.status, 503, "{}", r.text());
    let deadline = Instant::now() + PATIENCE;
    loop {
        let r = p.get("one", "/");
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not served after a crash: {}",
            r.status
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop_clean(p);
}

#[test]
fn scales_out_with_load_and_back_in() {
    let Some(p) = platform(204, &[]) else { return };
    let service = json!({"template": {
        "maxInstanceRequestConcurrency": 1,
        "scaling": {"maxInstanceCount": 4},
        "containers": [{"image": image("probe")}],
    }});
    ok_response(&p.create_service("wide", &service));
    // Four requests at once with one slot per instance need four instances.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let ingress = p.ingress;
            std::thread::spawn(move || {
                testkit::http::request(
                    ingress,
                    "GET",
                    "/sleep?ms=3000",
                    &[("Host", "wide.localhost")],
                    b"",
                    PATIENCE,
                )
                .unwrap()
            })
        })
        .collect();
    assert!(
        p.wait_containers(|c| c.len() == 4),
        "four requests at concurrency 1: {:?}",
        p.containers()
    );
    for t in threads {
        let r = t.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert!(
        p.wait_containers(|c| c.is_empty()),
        "did not scale back to zero: {:?}",
        p.containers()
    );
    stop_clean(p);
}

#[test]
fn min_instances_survive_a_kill_and_recovery() {
    let Some(mut p) = platform(205, &[]) else {
        return;
    };
    let service = json!({"template": {
        "scaling": {"minInstanceCount": 1},
        "containers": [{"image": image("probe")}],
    }});
    ok_response(&p.create_service("warm", &service));
    assert!(p.wait_containers(|c| c.len() == 1), "{:?}", p.containers());
    let before = p.containers();

    p.kill();
    p.restart();
    // The old instance is gone, a new one serves, min instances holds.
    assert!(
        p.wait_containers(|c| c.len() == 1 && c != before.as_slice()),
        "after recovery: {:?} (before: {before:?})\n{}",
        p.containers(),
        p.logs()
    );
    let r = p.get("warm", "/");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(env_of(&r.json())["K_SERVICE"], "warm");
    stop_clean(p);
}

#[test]
fn https_ingress_with_a_self_signed_certificate() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let https = format!("127.0.0.1:{port}");
    let Some(p) = platform(206, &["--https-addr", &https, "--domain", "example.test"]) else {
        return;
    };
    ok_response(&p.create_service("secure", &probe_service(&[])));
    let cert = p.data.path().join("tls/cert.pem");
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "60", "--http2", "--cacert"])
        .arg(&cert)
        .args([
            "--resolve",
            &format!("secure.example.test:{port}:127.0.0.1"),
            "-w",
            "\n%{http_version} %{http_code}",
            &format!("https://secure.example.test:{port}/"),
        ])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (body, status) = text.rsplit_once('\n').unwrap();
    assert_eq!(status, "2 200", "HTTP/2 over TLS: {text}");
    let report: Value = serde_json::from_str(body).unwrap();
    assert_eq!(env_of(&report)["K_SERVICE"], "secure");
    let r = p.request("secure.example.test", "GET", "/headers");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["version"], "HTTP/1.1");

    // A port named h2c: HTTP/2 from the router to the container, whatever the client spoke.
    let h2c = json!({"template": {"containers": [{
        "image": image("probe"),
        "ports": [{"name": "h2c", "containerPort": 8080}],
    }]}});
    ok_response(&p.create_service("grpcish", &h2c));
    let r = p.request("grpcish.example.test", "GET", "/headers");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["version"], "HTTP/2.0");
    stop_clean(p);
}

#[test]
fn first_generation_runs_under_runsc() {
    if !testkit::require(&["runsc"], true) {
        return;
    }
    let Some(p) = platform(207, &[]) else { return };
    let service = json!({"template": {
        "executionEnvironment": "EXECUTION_ENVIRONMENT_GEN1",
        "containers": [{"image": image("probe")}],
    }});
    ok_response(&p.create_service("gvisor", &service));
    assert!(p.containers().is_empty(), "gen1 must not run under runc");
    let r = p.get("gvisor", "/");
    assert_eq!(r.status, 200, "{}", r.text());
    let report = r.json();
    assert_eq!(env_of(&report)["K_SERVICE"], "gvisor");
    assert_eq!(
        p.containers_of("runsc").len(),
        1,
        "{:?}",
        p.containers_of("runsc")
    );
    stop_clean(p);
}

/// The CFS quota of a container, read from the host (cgroup v1 or v2).
fn cpu_quota(container: &str) -> Option<String> {
    let v1 = format!("/sys/fs/cgroup/cpu/homerun/{container}/cpu.cfs_quota_us");
    let v2 = format!("/sys/fs/cgroup/homerun/{container}/cpu.max");
    std::fs::read_to_string(v1)
        .or_else(|_| std::fs::read_to_string(v2))
        .ok()
        .map(|s| s.split_whitespace().next().unwrap_or_default().to_string())
}

#[test]
fn cpu_is_throttled_between_requests_unless_asked_not_to() {
    let Some(p) = platform(208, &[]) else { return };
    let service = |cpu_idle: bool| {
        json!({"template": {
            "scaling": {"minInstanceCount": 1},
            "containers": [{
                "image": image("probe"),
                "resources": {"limits": {"cpu": "1", "memory": "512Mi"}, "cpuIdle": cpu_idle},
            }],
        }})
    };
    ok_response(&p.create_service("idle", &service(true)));
    assert!(p.wait_containers(|c| c.len() == 1));
    let container = p.containers().remove(0);
    // Idle: throttled to 1 ms per 100 ms.
    let throttled = "1000";
    let wait_quota = |want: &str| {
        let deadline = Instant::now() + PATIENCE;
        while cpu_quota(&container).as_deref() != Some(want) {
            assert!(
                Instant::now() < deadline,
                "quota of {container}: {:?}, want {want}",
                cpu_quota(&container)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_quota(throttled);
    // While a request runs, the whole CPU is back (the probe reads its own cgroup).
    let report = p.get("idle", "/").json();
    assert_eq!(report["cgroup"]["cpu_limit"], 1.0, "{}", report["cgroup"]);
    wait_quota(throttled);

    // cpuIdle false (gcloud's --no-cpu-throttling): a new revision whose instance keeps
    // its CPU while idle.
    ok_response(&p.update_service("idle", "", &service(false)));
    assert!(p.wait_containers(|c| c.len() == 1 && c[0] != container));
    let kept = p.containers().remove(0);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(cpu_quota(&kept).as_deref(), Some("100000"), "cpuIdle false");
    stop_clean(p);
}
