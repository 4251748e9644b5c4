//! The CLI verbs against the real Admin API, served in-process over a `MemStore` on a
//! loopback port, by running the built `homerun` binary.
//!
//! Nothing reconciles here, so a small fake controller (a thread of each test) does what
//! the real one does to a mutation's records: it marks the service and its new revision
//! ready, writes traffic statuses and completes the operation with
//! `api::complete_operation`. That is enough for a test of the CLI alone; the real
//! controller is tested with `homerun up`.

use std::net::{SocketAddr, TcpListener};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use api::condition::types;
use api::http::{OPERATION_KIND, REVISION_KIND, SERVICE_KIND};
use api::{
    Condition, ConditionState, Endpoint, Operation, Revision, Service, Status,
    TrafficTargetAllocationType, TrafficTargetStatus,
};
use serde_json::Value;
use store::{MemStore, Precondition, Store};

const PARENT: &str = "projects/local/locations/local";
/// Images the fake controller refuses, as a controller whose pull failed would.
const FAILING_IMAGE: &str = "example/broken";

struct Platform {
    addr: SocketAddr,
    store: Arc<MemStore>,
    stop: Arc<AtomicBool>,
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The API on 127.0.0.1, and the fake controller.
fn platform() -> Platform {
    let store = Arc::new(MemStore::new());
    let state = api::ApiState::new(
        store.clone() as Arc<dyn Store>,
        "local",
        Endpoint::new("local", "localhost", 8080),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, api::router(state)).await.unwrap();
        });
    });
    let stop = Arc::new(AtomicBool::new(false));
    {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                complete_running_operations(store.as_ref());
                std::thread::sleep(Duration::from_millis(20));
            }
        });
    }
    Platform { addr, store, stop }
}

fn ready(kind: &str) -> Condition {
    Condition::new(kind, ConditionState::Succeeded)
}

/// The fake controller's one pass (see the module documentation).
fn complete_running_operations(store: &MemStore) {
    let page = store.list(OPERATION_KIND, PARENT, 0, None).unwrap();
    for record in page.records {
        let op: Operation = api::json::from_value(record.doc).unwrap();
        if op.done {
            continue;
        }
        let Some(service) = op.metadata.as_ref().and_then(|m| m.as_service()) else {
            continue;
        };
        let Some(stored) = store.get(SERVICE_KIND, &service.name).unwrap() else {
            continue;
        };
        let mut s: Service = api::json::from_value(stored.doc).unwrap();
        if s.containers().iter().any(|c| c.image == FAILING_IMAGE) {
            let status = Status::failed_precondition(format!(
                "Revision '{}' is not ready: the image {FAILING_IMAGE} cannot be pulled.",
                s.latest_created_revision.rsplit('/').next().unwrap()
            ));
            api::complete_operation(store, &op.name, Err(status)).unwrap();
            continue;
        }
        if let Some(r) = store
            .get(REVISION_KIND, &s.latest_created_revision)
            .unwrap()
        {
            let mut revision: Revision = api::json::from_value(r.doc).unwrap();
            revision.reconciling = false;
            revision.conditions = vec![ready(types::READY)];
            store
                .put(
                    REVISION_KIND,
                    &revision.name,
                    api::json::to_value(&revision, api::EnumEncoding::Name),
                    Precondition::Revision(r.revision),
                )
                .unwrap();
        }
        s.latest_ready_revision = s.latest_created_revision.clone();
        s.reconciling = false;
        s.observed_generation = s.generation;
        s.terminal_condition = Some(ready(types::READY));
        s.conditions = vec![
            ready(types::CONFIGURATIONS_READY),
            ready(types::ROUTES_READY),
        ];
        let endpoint = Endpoint::new("local", "localhost", 8080);
        s.traffic_statuses = s
            .traffic
            .iter()
            .map(|t| TrafficTargetStatus {
                kind: t.kind,
                revision: t.revision.clone(),
                percent: t.percent,
                tag: t.tag.clone(),
                uri: if t.tag.is_empty() {
                    String::new()
                } else {
                    endpoint.tag_uri("local", s.name.rsplit('/').next().unwrap(), &t.tag)
                },
            })
            .collect();
        s.etag = s.compute_etag();
        let doc = api::json::to_value(&s, api::EnumEncoding::Name);
        // The API may have written meanwhile: the next pass tries again.
        if store
            .put(
                SERVICE_KIND,
                &s.name,
                doc.clone(),
                Precondition::Revision(stored.revision),
            )
            .is_ok()
        {
            api::complete_operation(store, &op.name, Ok(doc)).unwrap();
        }
    }
}

impl Platform {
    fn homerun(&self, args: &[&str]) -> Output {
        run_homerun(&self.addr.to_string(), args)
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

    fn service(&self, id: &str) -> Service {
        let record = self
            .store
            .get(SERVICE_KIND, &format!("{PARENT}/services/{id}"))
            .unwrap()
            .unwrap_or_else(|| panic!("service {id} is not stored"));
        api::json::from_value(record.doc).unwrap()
    }

    fn revision_ids(&self, id: &str) -> Vec<String> {
        self.store
            .list(REVISION_KIND, &format!("{PARENT}/services/{id}"), 0, None)
            .unwrap()
            .records
            .into_iter()
            .map(|r| r.name.rsplit('/').next().unwrap().to_string())
            .collect()
    }
}

fn run_homerun(addr: &str, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_homerun"));
    for (k, _) in std::env::vars() {
        if k.starts_with("HOMERUN_") {
            cmd.env_remove(k);
        }
    }
    cmd.arg("--api-addr")
        .arg(addr)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn short(name: &str) -> String {
    name.rsplit('/').next().unwrap().to_string()
}

#[test]
fn deploy_creates_a_service_with_every_flag() {
    let p = platform();
    let out = p.ok(&[
        "deploy",
        "hello",
        "--image",
        "example/hello:1",
        "--port",
        "9000",
        "--use-http2",
        "--concurrency",
        "5",
        "--min-instances",
        "1",
        "--max-instances",
        "3",
        "--memory",
        "1Gi",
        "--cpu",
        "2",
        "--timeout",
        "1m",
        "--set-env-vars",
        "A=1,B=two",
        "--command",
        "/bin/app",
        "--args=-v,--name=x",
        "--execution-environment",
        "gen2",
        "--cpu-boost",
        "--no-cpu-throttling",
        "--service-account",
        "runner@example.com",
    ]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(stdout, "Service URL: http://hello.localhost:8080\n");
    assert!(
        stderr.contains("Created revision [hello-00001-"),
        "{stderr}"
    );
    assert!(stderr.contains("Waiting for revision"), "{stderr}");
    assert!(stderr.contains("Routing traffic..."), "{stderr}");
    assert!(
        stderr.contains("is serving 100 percent of traffic"),
        "{stderr}"
    );

    let s = p.service("hello");
    let t = s.template.as_ref().unwrap();
    let c = &t.containers[0];
    assert_eq!(c.image, "example/hello:1");
    assert_eq!(c.ports[0].container_port, 9000);
    assert_eq!(c.ports[0].name, "h2c");
    assert_eq!(t.max_instance_request_concurrency, 5);
    let scaling = t.scaling.as_ref().unwrap();
    assert_eq!(
        (scaling.min_instance_count, scaling.max_instance_count),
        (1, 3)
    );
    let r = c.resources.as_ref().unwrap();
    assert_eq!(r.limits["memory"], "1Gi");
    assert_eq!(r.limits["cpu"], "2");
    assert!(!r.cpu_idle, "--no-cpu-throttling");
    assert!(r.startup_cpu_boost);
    assert_eq!(t.timeout, Some(api::Duration::from_secs(60)));
    assert_eq!(
        c.env,
        [api::EnvVar::new("A", "1"), api::EnvVar::new("B", "two")]
    );
    assert_eq!(c.command, ["/bin/app"]);
    assert_eq!(c.args, ["-v", "--name=x"]);
    assert_eq!(t.execution_environment, api::ExecutionEnvironment::Gen2);
    assert_eq!(t.service_account, "runner@example.com");
    assert_eq!(p.revision_ids("hello").len(), 1);
}

#[test]
fn deploy_again_keeps_what_is_not_given() {
    let p = platform();
    p.ok(&[
        "deploy",
        "web",
        "--image",
        "example/web:1",
        "--set-env-vars",
        "A=1,B=2",
        "--concurrency",
        "7",
        "--memory",
        "1Gi",
    ]);
    p.ok(&["deploy", "web", "--image", "example/web:2"]);
    let s = p.service("web");
    let t = s.template.as_ref().unwrap();
    let c = &t.containers[0];
    assert_eq!(c.image, "example/web:2");
    assert_eq!(
        c.env,
        [api::EnvVar::new("A", "1"), api::EnvVar::new("B", "2")]
    );
    assert_eq!(t.max_instance_request_concurrency, 7);
    let r = c.resources.as_ref().unwrap();
    assert_eq!(r.limits["memory"], "1Gi");
    assert!(r.cpu_idle, "CPU throttled unless asked otherwise");
    assert_eq!(s.generation, 2);
    assert_eq!(p.revision_ids("web").len(), 2);

    p.ok(&[
        "deploy",
        "web",
        "--update-env-vars",
        "B=3,C=4",
        "--remove-env-vars",
        "A",
    ]);
    let s = p.service("web");
    assert_eq!(
        s.containers()[0].env,
        [api::EnvVar::new("B", "3"), api::EnvVar::new("C", "4")]
    );
    assert_eq!(s.containers()[0].image, "example/web:2");
}

#[test]
fn deploy_with_no_traffic_and_a_tag() {
    let p = platform();
    let out = p.homerun(&["deploy", "blue", "--image", "x", "--no-traffic"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr)
            .contains("homerun: --no-traffic not supported when creating a new service."),
        "{}",
        text(&out.stderr)
    );

    p.ok(&["deploy", "blue", "--image", "example/blue:1"]);
    let first = short(&p.service("blue").latest_created_revision);
    let out = p.ok(&[
        "deploy",
        "blue",
        "--image",
        "example/blue:2",
        "--no-traffic",
        "--tag",
        "green",
    ]);
    let stderr = text(&out.stderr);
    let s = p.service("blue");
    let second = short(&s.latest_created_revision);
    assert_ne!(first, second);
    assert!(second.starts_with("blue-00002-"), "{second}");
    assert_eq!(
        s.traffic,
        [
            api::TrafficTarget::revision(first.clone(), 100),
            api::TrafficTarget::revision(second.clone(), 0).with_tag("green"),
        ]
    );
    assert!(
        stderr.contains(&format!(
            "revision [{second}] has been deployed and is serving 0 percent of traffic"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("reached directly at http://green---blue.localhost:8080"),
        "{stderr}"
    );

    let out = p.ok(&[
        "deploy",
        "blue",
        "--image",
        "example/blue:3",
        "--revision-suffix",
        "v3",
    ]);
    assert!(text(&out.stderr).contains("Created revision [blue-v3]."));
    assert_eq!(short(&p.service("blue").latest_created_revision), "blue-v3");
}

#[test]
fn update_traffic_splits_tags_and_goes_back_to_latest() {
    let p = platform();
    p.ok(&[
        "deploy",
        "shop",
        "--image",
        "example/shop:1",
        "--revision-suffix",
        "a",
    ]);
    p.ok(&[
        "deploy",
        "shop",
        "--image",
        "example/shop:2",
        "--revision-suffix",
        "b",
    ]);
    let out = p.ok(&[
        "services",
        "update-traffic",
        "shop",
        "--to-revisions",
        "shop-a=30,shop-b=70",
    ]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("30%  shop-a"), "{stdout}");
    assert_eq!(
        p.service("shop").traffic,
        [
            api::TrafficTarget::revision("shop-a", 30),
            api::TrafficTarget::revision("shop-b", 70),
        ]
    );

    p.ok(&[
        "services",
        "update-traffic",
        "shop",
        "--to-tags",
        "old=shop-a",
    ]);
    assert_eq!(
        p.service("shop").traffic,
        [
            api::TrafficTarget::revision("shop-a", 30).with_tag("old"),
            api::TrafficTarget::revision("shop-b", 70),
        ]
    );

    p.ok(&["services", "update-traffic", "shop", "--to-tags", "old=100"]);
    assert_eq!(
        p.service("shop").traffic,
        [api::TrafficTarget::revision("shop-a", 100).with_tag("old")]
    );

    p.ok(&["services", "update-traffic", "shop", "--to-latest"]);
    let traffic = p.service("shop").traffic;
    assert_eq!(traffic[0].kind, TrafficTargetAllocationType::Latest);
    assert_eq!(traffic[0].percent, 100);
    assert_eq!(
        traffic[1],
        api::TrafficTarget::revision("shop-a", 0).with_tag("old")
    );

    let out = p.homerun(&[
        "services",
        "update-traffic",
        "shop",
        "--to-revisions",
        "shop-zzz=100",
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .contains("homerun: service.traffic[0].revision: Revision 'shop-zzz' does not exist."),
        "{stderr}"
    );
}

const KNATIVE: &str = r#"
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: kn
  annotations:
    run.googleapis.com/ingress: all
    serving.knative.dev/creator: someone@example.com
spec:
  template:
    metadata:
      name: kn-first
      annotations:
        autoscaling.knative.dev/minScale: "2"
        autoscaling.knative.dev/maxScale: "9"
        run.googleapis.com/execution-environment: gen1
        run.googleapis.com/cpu-throttling: "false"
        run.googleapis.com/startup-cpu-boost: "true"
    spec:
      containerConcurrency: 40
      timeoutSeconds: 30
      containers:
      - image: example/kn:1
        args: ["--listen", "8081"]
        env:
        - name: MODE
          value: fast
        ports:
        - name: http1
          containerPort: 8081
        resources:
          limits:
            cpu: "1"
            memory: 256Mi
  traffic:
  - percent: 100
    latestRevision: true
"#;

#[test]
fn replace_takes_a_knative_service() {
    let p = platform();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kn.yaml");
    std::fs::write(&file, KNATIVE).unwrap();
    let out = p.ok(&["services", "replace", file.to_str().unwrap()]);
    assert_eq!(text(&out.stdout), "Service URL: http://kn.localhost:8080\n");

    let s = p.service("kn");
    assert_eq!(s.ingress, api::IngressTraffic::All);
    assert!(s.annotations.is_empty(), "{:?}", s.annotations);
    let t = s.template.as_ref().unwrap();
    assert_eq!(t.revision, "kn-first");
    assert_eq!(short(&s.latest_created_revision), "kn-first");
    let scaling = t.scaling.as_ref().unwrap();
    assert_eq!(
        (scaling.min_instance_count, scaling.max_instance_count),
        (2, 9)
    );
    assert_eq!(t.execution_environment, api::ExecutionEnvironment::Gen1);
    assert_eq!(t.max_instance_request_concurrency, 40);
    assert_eq!(t.timeout, Some(api::Duration::from_secs(30)));
    let c = &t.containers[0];
    assert_eq!(c.image, "example/kn:1");
    assert_eq!(c.args, ["--listen", "8081"]);
    assert_eq!(c.env, [api::EnvVar::new("MODE", "fast")]);
    assert_eq!(c.ports[0].container_port, 8081);
    let r = c.resources.as_ref().unwrap();
    assert_eq!(r.limits["memory"], "256Mi");
    assert!(!r.cpu_idle);
    assert!(r.startup_cpu_boost);
    assert_eq!(s.traffic.len(), 1);
    assert_eq!(s.traffic[0].kind, TrafficTargetAllocationType::Latest);

    // Replacing again changes the existing service, here through stdin.
    let changed = KNATIVE
        .replace("example/kn:1", "example/kn:2")
        .replace("kn-first", "kn-second");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_homerun"))
        .args([
            "--api-addr",
            &p.addr.to_string(),
            "services",
            "replace",
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(changed.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = p.service("kn");
    assert_eq!(s.containers()[0].image, "example/kn:2");
    assert_eq!(short(&s.latest_created_revision), "kn-second");
    assert_eq!(s.generation, 2);
}

#[test]
fn formats_list_describe_and_delete() {
    let p = platform();
    p.ok(&["deploy", "one", "--image", "example/one:1"]);
    p.ok(&["deploy", "two", "--image", "example/two:1"]);

    let out = p.ok(&["services", "describe", "one", "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], format!("{PARENT}/services/one"));
    assert_eq!(v["uri"], "http://one.localhost:8080");

    let out = p.ok(&["services", "describe", "one", "--format", "yaml"]);
    let y: Value = serde_norway::from_slice(&out.stdout).unwrap();
    assert_eq!(y, v);

    let out = p.ok(&["services", "describe", "one"]);
    let described = text(&out.stdout);
    assert!(
        described.starts_with("✔ Service one in region local"),
        "{described}"
    );
    assert!(described.contains("Image:"), "{described}");
    assert!(described.contains("example/one:1"), "{described}");

    let out = p.ok(&["services", "list", "--format", "json"]);
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.len(), 2);
    let out = p.ok(&["services", "list"]);
    let table = text(&out.stdout);
    assert!(
        table.contains("SERVICE") && table.contains("http://two.localhost:8080"),
        "{table}"
    );

    let out = p.ok(&["revisions", "list", "--service", "one", "--format", "json"]);
    let revisions: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(revisions.len(), 1);
    let revision = short(revisions[0]["name"].as_str().unwrap());
    let out = p.ok(&["revisions", "list"]);
    let table = text(&out.stdout);
    assert!(
        table.contains(&revision) && table.contains("yes (100%)"),
        "{table}"
    );
    let out = p.ok(&["revisions", "describe", &revision]);
    let described = text(&out.stdout);
    assert!(
        described.contains(&format!("Revision {revision}")),
        "{described}"
    );
    assert!(described.contains("example/one:1"), "{described}");

    let out = p.ok(&["services", "delete", "one", "--quiet"]);
    assert!(text(&out.stderr).contains("Deleted service [one]."));
    assert!(p
        .store
        .get(SERVICE_KIND, &format!("{PARENT}/services/one"))
        .unwrap()
        .is_none());
    assert!(p.revision_ids("one").is_empty());
    let out = p.homerun(&["services", "delete", "one"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("homerun: Resource 'one' of kind 'SERVICE'"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn api_errors_exit_non_zero_with_the_message() {
    let p = platform();
    let out = p.homerun(&["deploy", "cpu", "--image", "x", "--cpu", "3"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("homerun: ")
            && stderr.contains("service.template.containers[0].resources.limits.cpu"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    let out = p.homerun(&["deploy", "Bad_Name", "--image", "x"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("homerun: "),
        "{}",
        text(&out.stderr)
    );

    // The operation itself fails: its message, and no URL.
    let out = p.homerun(&["deploy", "broken", "--image", FAILING_IMAGE]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("homerun: Revision 'broken-00001-") && stderr.contains("cannot be pulled"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    let out = p.homerun(&["revisions", "describe", "nothing-00001-abc"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("revision [nothing-00001-abc] does not exist"));
}

#[test]
fn an_unreachable_api_gets_a_hint() {
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let out = run_homerun(&closed.to_string(), &["services", "list"]);
    assert!(!out.status.success());
    assert_eq!(
        text(&out.stderr).trim(),
        format!("homerun: cannot reach the homerun API at {closed}: is `homerun up` running?")
    );
}
