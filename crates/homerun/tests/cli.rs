//! The CLI verbs against the real Admin API, served in-process over a `MemStore` on a
//! loopback port, by running the built `homerun` binary.
//!
//! The API authenticates as `homerun up`'s does: with an `identity::Authority` in a data
//! directory of the test's (its admin token in `admin-token`, which the CLI reads with
//! `--data-dir`), its secrets sealed with the same authority, and the IAM Credentials
//! routes of `homerun up` (src/auth.rs) beside it. A test may arm a competing writer
//! of an IAM policy ([`Platform::race`]): it changes the policy just before the CLI's
//! next `:setIamPolicy` arrives.
//!
//! Nothing reconciles here, so a small fake controller (a thread of each test) does what
//! the real one does to a mutation's records: it marks the service and its new revision
//! ready, writes traffic statuses and completes the operation with
//! `api::complete_operation`. That is enough for a test of the CLI alone; the real
//! controller is tested with `homerun up`.

#[path = "../src/auth.rs"]
#[allow(dead_code)]
mod auth;
#[path = "../src/logs_api.rs"]
#[allow(dead_code)]
mod logs_api;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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
    /// The data directory: the admin token and the identity keys.
    data: tempfile::TempDir,
    authority: Arc<identity::Authority>,
    /// The policy (its resource's full name) a competing writer changes before each of
    /// the next N `:setIamPolicy` calls.
    race: Arc<Mutex<Option<(String, u32)>>>,
}

/// The member the competing writer of a policy adds.
const RACER: &str = "user:racer@example.com";

/// A competing writer: before an armed `:setIamPolicy`, the policy gets [`RACER`] as an
/// invoker, so the etag the CLI read no longer matches.
async fn race_layer(
    race: Arc<Mutex<Option<(String, u32)>>>,
    store: Arc<MemStore>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if request.uri().path().ends_with(":setIamPolicy") {
        let mut armed = race.lock().unwrap();
        if let Some((name, left)) = armed.as_mut() {
            let mut policy = api::iam::load_policy(store.as_ref(), name).unwrap();
            policy.add_member("roles/run.invoker", RACER);
            policy.etag.clear();
            let doc = api::json::to_value(&policy, api::EnumEncoding::Name);
            store
                .put(api::iam::IAM_POLICY_KIND, name, doc, Precondition::Any)
                .unwrap();
            *left -= 1;
            if *left == 0 {
                *armed = None;
            }
        }
    }
    next.run(request).await
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The API on 127.0.0.1, with authentication and secrets, and the fake controller.
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
    let race = Arc::new(Mutex::new(None));
    let routes = api::router(state)
        .merge(auth::credentials_router(
            authority.clone(),
            store.clone() as Arc<dyn Store>,
            "local".into(),
        ))
        .layer(axum::middleware::from_fn({
            let (race, store) = (race.clone(), store.clone());
            move |request, next| race_layer(race.clone(), store.clone(), request, next)
        }));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, routes).await.unwrap();
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
    Platform {
        addr,
        store,
        stop,
        data,
        authority,
        race,
    }
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
    /// Runs homerun as on `up`'s machine: the admin token from the data directory.
    fn homerun(&self, args: &[&str]) -> Output {
        run_homerun(&self.addr.to_string(), self.data.path(), args)
    }

    /// Runs homerun and expects a failure: its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.homerun(args);
        assert!(
            !out.status.success(),
            "homerun {args:?} succeeded\nstdout: {}",
            text(&out.stdout)
        );
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
        text(&out.stderr)
    }

    /// Arms the competing writer of `resource`'s policy for the next `times` writes.
    fn race(&self, resource: &str, times: u32) {
        *self.race.lock().unwrap() = Some((resource.to_string(), times));
    }

    fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data.path().join("admin-token"))
            .unwrap()
            .trim()
            .to_string()
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

/// Runs homerun against the API at `addr` with `--data-dir data_dir`, no HOMERUN_*
/// variable but those `args` starting with `HOMERUN_` set (`HOMERUN_TOKEN=...`).
fn run_homerun(addr: &str, data_dir: &Path, args: &[&str]) -> Output {
    run_homerun_with_stdin(addr, data_dir, args, None)
}

/// [`run_homerun`] with `stdin` as its standard input (none: /dev/null).
fn run_homerun_with_stdin(
    addr: &str,
    data_dir: &Path,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_homerun"));
    for (k, _) in std::env::vars() {
        if k.starts_with("HOMERUN_") {
            cmd.env_remove(k);
        }
    }
    let (env, args): (Vec<&str>, Vec<&str>) = args.iter().partition(|a| a.starts_with("HOMERUN_"));
    for e in env {
        let (k, v) = e.split_once('=').unwrap();
        cmd.env(k, v);
    }
    cmd.arg("--api-addr")
        .arg(addr)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args);
    let Some(input) = stdin else {
        return cmd.stdin(std::process::Stdio::null()).output().unwrap();
    };
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
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
    let out = run_homerun_with_stdin(
        &p.addr.to_string(),
        p.data.path(),
        &["services", "replace", "-"],
        Some(changed.as_bytes()),
    );
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
    let nowhere = tempfile::tempdir().unwrap();
    let out = run_homerun(&closed.to_string(), nowhere.path(), &["services", "list"]);
    assert!(!out.status.success());
    assert_eq!(
        text(&out.stderr).trim(),
        format!("homerun: cannot reach the homerun API at {closed}: is `homerun up` running?")
    );
}

/// A service account of the test project.
const SA: &str = "runner@local.iam.gserviceaccount.com";

#[test]
fn credentials_from_the_data_dir_the_flag_or_the_environment() {
    let p = platform();
    let addr = p.addr.to_string();
    let admin = p.admin_token();
    let empty = tempfile::tempdir().unwrap();
    let missing = empty.path().join("admin-token");

    // The admin token from --data-dir (every other test does this too).
    p.ok(&["services", "list"]);

    // No token anywhere: the API's 401, where the CLI looked and how to give one.
    let out = run_homerun(&addr, empty.path(), &["services", "list"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Request is missing required authentication credential")
            && stderr.contains("--token and HOMERUN_TOKEN are not set")
            && stderr.contains(&format!("{} does not exist", missing.display()))
            && stderr.contains("pass --token TOKEN"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    // --token, or HOMERUN_TOKEN, instead of the file.
    let out = run_homerun(
        &addr,
        empty.path(),
        &["--token", &admin, "services", "list"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let env = format!("HOMERUN_TOKEN={admin}");
    let out = run_homerun(&addr, empty.path(), &[&env, "services", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A token the API refuses: its message, and which token it was (never the token).
    let out = run_homerun(
        &addr,
        p.data.path(),
        &["--token", "hra.wrong", "services", "list"],
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Request had invalid authentication credentials")
            && stderr.contains("the token of --token (or HOMERUN_TOKEN) was refused")
            && !stderr.contains("hra.wrong"),
        "{stderr}"
    );

    // A service account's token: 403 until the project's policy grants it a role.
    let sa = p.authority.access_token(SA, identity::now()).token;
    let out = run_homerun(&addr, empty.path(), &["--token", &sa, "services", "list"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Permission 'run.services.list' denied")
            && stderr.contains("This used the token of --token (or HOMERUN_TOKEN)."),
        "{stderr}"
    );
    p.ok(&[
        "projects",
        "add-iam-policy-binding",
        "local",
        "--member",
        &format!("serviceAccount:{SA}"),
        "--role",
        "roles/run.viewer",
    ]);
    let out = run_homerun(&addr, empty.path(), &["--token", &sa, "services", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // The token the CLI uses, alone on stdout.
    let out = p.ok(&["auth", "print-access-token"]);
    assert_eq!(text(&out.stdout), format!("{admin}\n"));
    let out = run_homerun(&addr, empty.path(), &["auth", "print-access-token"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&format!("{} does not exist", missing.display())),
        "{}",
        text(&out.stderr)
    );
}

/// The policy `get-iam-policy` prints in JSON.
fn policy(p: &Platform, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["get-iam-policy", "--format", "json"]);
    // `services get-iam-policy NAME`: the verb goes before the name.
    let name = args.remove(1);
    args.insert(2, name);
    serde_json::from_slice(&p.ok(&args).stdout).unwrap()
}

/// The members holding `role` in a policy.
fn members(policy: &Value, role: &str) -> Vec<String> {
    policy["bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["role"] == role)
        .flat_map(|b| b["members"].as_array().unwrap().clone())
        .map(|m| m.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn deploy_allow_unauthenticated_ingress_invoker_check_and_audiences() {
    let p = platform();
    // A new service without either flag stays private.
    p.ok(&["deploy", "private", "--image", "example/p:1"]);
    assert!(members(&policy(&p, &["services", "private"]), "roles/run.invoker").is_empty());

    let out = p.ok(&[
        "deploy",
        "public",
        "--image",
        "example/p:1",
        "--allow-unauthenticated",
        "--ingress",
        "internal",
        "--no-invoker-iam-check",
        "--set-custom-audiences",
        "https://a.example,https://b.example",
    ]);
    assert!(
        text(&out.stderr).contains("Setting IAM Policy..."),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        members(&policy(&p, &["services", "public"]), "roles/run.invoker"),
        ["allUsers"]
    );
    let s = p.service("public");
    assert_eq!(s.ingress, api::IngressTraffic::InternalOnly);
    assert!(s.invoker_iam_disabled);
    assert_eq!(
        s.custom_audiences,
        ["https://a.example", "https://b.example"]
    );

    // Again: nothing to add; the other flags change only what they name.
    p.ok(&[
        "deploy",
        "public",
        "--allow-unauthenticated",
        "--invoker-iam-check",
        "--remove-custom-audiences",
        "https://a.example",
        "--add-custom-audiences",
        "https://c.example",
    ]);
    let s = p.service("public");
    assert_eq!(s.ingress, api::IngressTraffic::InternalOnly);
    assert!(!s.invoker_iam_disabled);
    assert_eq!(
        s.custom_audiences,
        ["https://b.example", "https://c.example"]
    );
    assert_eq!(
        members(&policy(&p, &["services", "public"]), "roles/run.invoker"),
        ["allUsers"]
    );

    // --no-allow-unauthenticated takes allUsers out, and only it.
    p.ok(&[
        "services",
        "add-iam-policy-binding",
        "public",
        "--member",
        &format!("serviceAccount:{SA}"),
        "--role",
        "roles/run.invoker",
    ]);
    p.ok(&[
        "deploy",
        "public",
        "--no-allow-unauthenticated",
        "--ingress",
        "none",
        "--clear-custom-audiences",
    ]);
    assert_eq!(
        members(&policy(&p, &["services", "public"]), "roles/run.invoker"),
        [format!("serviceAccount:{SA}")]
    );
    let s = p.service("public");
    assert_eq!(s.ingress, api::IngressTraffic::None);
    assert!(s.custom_audiences.is_empty());
}

#[test]
fn iam_policy_bindings_of_services_projects_and_secrets() {
    let p = platform();
    p.ok(&["deploy", "hello", "--image", "example/hello:1"]);
    let alice = "user:alice@example.com";

    let out = p.ok(&[
        "services",
        "add-iam-policy-binding",
        "hello",
        "--member",
        alice,
        "--role",
        "roles/run.invoker",
    ]);
    assert!(text(&out.stderr).contains("Updated IAM policy for service [hello]."));
    // The policy as gcloud prints it: YAML.
    let printed: Value = serde_norway::from_slice(&out.stdout).unwrap();
    assert_eq!(members(&printed, "roles/run.invoker"), [alice]);
    let etag = printed["etag"].as_str().unwrap().to_string();

    // Holding the role already: nothing is written.
    let out = p.ok(&[
        "services",
        "add-iam-policy-binding",
        "hello",
        "--member",
        alice,
        "--role",
        "roles/run.invoker",
        "--format",
        "json",
    ]);
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["etag"], etag.as_str());
    assert_eq!(again, policy(&p, &["services", "hello"]));
    let out = p.ok(&["services", "get-iam-policy", "hello"]);
    assert!(text(&out.stdout).contains(alice), "{}", text(&out.stdout));

    p.ok(&[
        "services",
        "remove-iam-policy-binding",
        "hello",
        "--member",
        alice,
        "--role",
        "roles/run.invoker",
    ]);
    assert!(members(&policy(&p, &["services", "hello"]), "roles/run.invoker").is_empty());
    let stderr = p.fails(&[
        "services",
        "remove-iam-policy-binding",
        "hello",
        "--member",
        alice,
        "--role",
        "roles/run.invoker",
    ]);
    assert!(
        stderr.contains("Policy binding with the specified principal [user:alice@example.com] and role [roles/run.invoker] not found"),
        "{stderr}"
    );

    // Members are checked here, roles by the API; a service that does not exist is 404.
    let stderr = p.fails(&[
        "services",
        "add-iam-policy-binding",
        "hello",
        "--member",
        "alice@example.com",
        "--role",
        "roles/run.invoker",
    ]);
    assert!(stderr.contains("is not a member"), "{stderr}");
    let stderr = p.fails(&[
        "services",
        "add-iam-policy-binding",
        "hello",
        "--member",
        alice,
        "--role",
        "roles/run.nothing",
    ]);
    assert!(stderr.contains("roles/run.nothing"), "{stderr}");
    let stderr = p.fails(&["services", "get-iam-policy", "nothing"]);
    assert!(stderr.contains("homerun: "), "{stderr}");

    // The project's and a secret's, the same way.
    p.ok(&[
        "projects",
        "add-iam-policy-binding",
        "local",
        "--member",
        alice,
        "--role",
        "roles/run.developer",
    ]);
    assert_eq!(
        members(&policy(&p, &["projects", "local"]), "roles/run.developer"),
        [alice]
    );
    p.ok(&[
        "projects",
        "remove-iam-policy-binding",
        "local",
        "--member",
        alice,
        "--role",
        "roles/run.developer",
    ]);
    assert!(members(&policy(&p, &["projects", "local"]), "roles/run.developer").is_empty());
    p.ok(&["secrets", "create", "db"]);
    p.ok(&[
        "secrets",
        "add-iam-policy-binding",
        "db",
        "--member",
        &format!("serviceAccount:{SA}"),
        "--role",
        "roles/secretmanager.secretAccessor",
    ]);
    assert_eq!(
        members(
            &policy(&p, &["secrets", "db"]),
            "roles/secretmanager.secretAccessor"
        ),
        [format!("serviceAccount:{SA}")]
    );
}

#[test]
fn secrets_create_versions_list_describe_delete_never_print_values() {
    let p = platform();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("value");
    const FIRST: &str = "first-secret-value";
    const SECOND: &str = "second-secret-value";
    std::fs::write(&file, FIRST).unwrap();
    let mut outputs = Vec::new();

    let out = p.ok(&[
        "secrets",
        "create",
        "db",
        "--data-file",
        file.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Created secret [db].")
            && stderr.contains("Created version [1] of the secret [db]."),
        "{stderr}"
    );
    outputs.push(out);
    let out = run_homerun_with_stdin(
        &p.addr.to_string(),
        p.data.path(),
        &["secrets", "versions", "add", "db", "--data-file", "-"],
        Some(SECOND.as_bytes()),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("Created version [2] of the secret [db]."));
    outputs.push(out);

    let out = p.ok(&["secrets", "versions", "list", "db"]);
    let table = text(&out.stdout);
    assert!(
        table.starts_with("NAME") && table.contains("enabled") && table.contains("\n2 "),
        "{table}"
    );
    outputs.push(out);
    let out = p.ok(&["secrets", "versions", "list", "db", "--format", "json"]);
    let versions: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(versions.len(), 2);
    outputs.push(out);

    p.ok(&["secrets", "create", "other"]);
    let out = p.ok(&["secrets", "list"]);
    let table = text(&out.stdout);
    assert!(
        table.contains("db") && table.contains("other") && table.contains("automatic"),
        "{table}"
    );
    outputs.push(out);
    let out = p.ok(&["secrets", "describe", "db"]);
    let described: Value = serde_norway::from_slice(&out.stdout).unwrap();
    assert_eq!(described["name"], "projects/local/secrets/db");
    outputs.push(out);
    let out = p.ok(&["secrets", "describe", "db", "--format", "json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json, described);
    outputs.push(out);

    for out in &outputs {
        for value in [FIRST, SECOND] {
            assert!(!text(&out.stdout).contains(value) && !text(&out.stderr).contains(value));
        }
    }

    let stderr = p.fails(&["secrets", "create", "db"]);
    assert!(stderr.contains("homerun: "), "{stderr}");
    let stderr = p.fails(&[
        "secrets",
        "versions",
        "add",
        "db",
        "--data-file",
        dir.path().join("missing").to_str().unwrap(),
    ]);
    assert!(stderr.contains("reading "), "{stderr}");

    let out = p.ok(&["secrets", "delete", "db", "--quiet"]);
    assert!(text(&out.stderr).contains("Deleted secret [db]."));
    let stderr = p.fails(&["secrets", "describe", "db"]);
    assert!(
        stderr.contains("secret [db] does not exist in project [local]"),
        "{stderr}"
    );
}

#[test]
fn deploy_with_secrets_as_env_vars_and_files() {
    let p = platform();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("value");
    std::fs::write(&file, "the-password").unwrap();
    for s in ["db", "tls"] {
        p.ok(&[
            "secrets",
            "create",
            s,
            "--data-file",
            file.to_str().unwrap(),
        ]);
    }
    p.ok(&[
        "deploy",
        "app",
        "--image",
        "example/app:1",
        "--set-env-vars",
        "MODE=prod",
        "--set-secrets",
        "DB_PASS=db:1,/etc/db/pass=db:latest,/etc/tls/key=tls:1",
        "--service-account",
        SA,
    ]);
    let s = p.service("app");
    let t = s.template.as_ref().unwrap();
    assert_eq!(t.service_account, SA);
    let c = &t.containers[0];
    assert_eq!(c.env[0], api::EnvVar::new("MODE", "prod"));
    let secret = c.env[1].value_source.as_ref().unwrap();
    let r = secret.secret_key_ref.as_ref().unwrap();
    assert_eq!(
        (
            c.env[1].name.as_str(),
            r.secret.as_str(),
            r.version.as_str()
        ),
        ("DB_PASS", "db", "1")
    );
    let mounts: Vec<(&str, &str)> = c
        .volume_mounts
        .iter()
        .map(|m| (m.mount_path.as_str(), m.name.as_str()))
        .collect();
    assert_eq!(mounts, [("/etc/db", "db"), ("/etc/tls", "tls")]);
    let db = t.volumes.iter().find(|v| v.name == "db").unwrap();
    let source = db.secret.as_ref().unwrap();
    assert_eq!(source.secret, "db");
    assert_eq!(source.items[0].path, "pass");
    assert_eq!(source.items[0].version, "latest");

    // describe shows where secrets go, never their values.
    let out = p.ok(&["services", "describe", "app"]);
    let described = text(&out.stdout);
    assert!(
        described.contains("DB_PASS=secret db:1")
            && described.contains("/etc/db/pass=secret db:latest")
            && described.contains("/etc/tls/key=secret tls:1")
            && !described.contains("the-password"),
        "{described}"
    );

    // Update and remove keep the rest; --set-env-vars leaves secrets alone.
    p.ok(&[
        "deploy",
        "app",
        "--update-secrets",
        "/etc/db/user=db:1",
        "--remove-secrets",
        "DB_PASS,/etc/tls/key",
        "--set-env-vars",
        "MODE=test",
    ]);
    let s = p.service("app");
    let t = s.template.as_ref().unwrap();
    let c = &t.containers[0];
    assert_eq!(c.env, [api::EnvVar::new("MODE", "test")]);
    assert_eq!(c.volume_mounts.len(), 1);
    assert_eq!(t.volumes.len(), 1);
    let items: Vec<&str> = t.volumes[0]
        .secret
        .as_ref()
        .unwrap()
        .items
        .iter()
        .map(|i| i.path.as_str())
        .collect();
    assert_eq!(items, ["pass", "user"]);

    // A value over a secret's name, or a secret without its version: refused here.
    let stderr = p.fails(&["deploy", "app", "--update-secrets", "MODE=db:1"]);
    assert!(stderr.contains("--remove-env-vars=MODE"), "{stderr}");
    let stderr = p.fails(&["deploy", "app", "--update-secrets", "PASS=db"]);
    assert!(
        stderr.contains("No secret version specified for PASS. Use PASS:latest"),
        "{stderr}"
    );

    p.ok(&["deploy", "app", "--clear-secrets"]);
    let s = p.service("app");
    let t = s.template.as_ref().unwrap();
    assert!(t.volumes.is_empty() && t.containers[0].volume_mounts.is_empty());
    assert_eq!(t.containers[0].env, [api::EnvVar::new("MODE", "test")]);
}

#[test]
fn auth_prints_a_service_accounts_tokens() {
    let p = platform();
    let audience = "http://hello.localhost:8080";
    let out = p.ok(&[
        "auth",
        "print-identity-token",
        "--impersonate-service-account",
        SA,
        "--audiences",
        audience,
    ]);
    let stdout = text(&out.stdout);
    let token = stdout.strip_suffix('\n').unwrap();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    match p.authority.verify(token, identity::now()).unwrap() {
        identity::Verified::ServiceAccount { email, audience: a } => {
            assert_eq!(email, SA);
            assert_eq!(a.as_deref(), Some(audience));
        }
        other => panic!("{other:?}"),
    }

    let out = p.ok(&[
        "auth",
        "print-access-token",
        "--impersonate-service-account",
        SA,
    ]);
    let stdout = text(&out.stdout);
    let token = stdout.strip_suffix('\n').unwrap();
    assert!(!token.contains('\n'));
    match p.authority.verify(token, identity::now()).unwrap() {
        identity::Verified::ServiceAccount { email, audience } => {
            assert_eq!(email, SA);
            assert_eq!(audience, None);
        }
        other => panic!("{other:?}"),
    }

    // A service account's access token may not mint tokens without the role.
    let out = run_homerun(
        &p.addr.to_string(),
        p.data.path(),
        &[
            "--token",
            token,
            "auth",
            "print-identity-token",
            "--impersonate-service-account",
            SA,
            "--audiences",
            audience,
        ],
    );
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("iam.serviceAccounts.getOpenIdToken"),
        "{stderr}"
    );
}

#[test]
fn iam_changes_retry_once_when_another_writer_came_between() {
    let p = platform();
    p.ok(&["deploy", "hello", "--image", "example/hello:1"]);
    let bob = "user:bob@example.com";
    let add = [
        "services",
        "add-iam-policy-binding",
        "hello",
        "--member",
        bob,
        "--role",
        "roles/run.invoker",
    ];
    // One write lost to another writer: read again, change again, written.
    p.race(&format!("{PARENT}/services/hello"), 1);
    p.ok(&add);
    assert_eq!(
        members(&policy(&p, &["services", "hello"]), "roles/run.invoker"),
        [RACER, bob]
    );

    // Lost twice: the API's ABORTED, as it said it.
    p.ok(&[
        "services",
        "remove-iam-policy-binding",
        "hello",
        "--member",
        bob,
        "--role",
        "roles/run.invoker",
    ]);
    p.race(&format!("{PARENT}/services/hello"), 2);
    let stderr = p.fails(&add);
    assert!(stderr.contains("concurrent policy changes"), "{stderr}");

    // deploy --allow-unauthenticated retries the same way.
    p.race(&format!("{PARENT}/services/hello"), 1);
    p.ok(&["deploy", "hello", "--allow-unauthenticated"]);
    assert_eq!(
        members(&policy(&p, &["services", "hello"]), "roles/run.invoker"),
        [RACER, "allUsers"]
    );
    // When it cannot, the deploy stands, with a warning saying what to run.
    p.race(&format!("{PARENT}/services/hello"), 2);
    let out = p.ok(&["deploy", "hello", "--no-allow-unauthenticated"]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("homerun: warning: setting the IAM policy failed")
            && stderr.contains("try `homerun services remove-iam-policy-binding hello --member=allUsers --role=roles/run.invoker`"),
        "{stderr}"
    );
    assert_eq!(
        text(&out.stdout),
        "Service URL: http://hello.localhost:8080\n"
    );
}
