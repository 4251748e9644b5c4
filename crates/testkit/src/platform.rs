//! A `homerun up` process for end-to-end tests and benchmarks: its own data directory,
//! loopback ports, bridge and /24, and helpers to call its Admin API and its ingress.
//! Dropping it stops the platform (SIGTERM, then SIGKILL after a minute) and removes a
//! bridge a failed run left.
//!
//! Admin API calls carry the admin token `homerun up` wrote to its data directory.
//! Services made with [`Platform::create_service`] are public (`invokerIamDisabled`, as
//! `deploy --allow-unauthenticated` would make them) unless their JSON says otherwise;
//! tests of invoker IAM make private ones.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::http::{self, Response};
use crate::registry::die_with_parent;

/// The autoscaler settings tests run with: a minute of Cloud Run behaviour in seconds.
pub const FAST_SCALING: &[&str] = &[
    "--stable-window",
    "4s",
    "--panic-window",
    "1s",
    "--scale-to-zero-grace",
    "1s",
    "--idle-timeout",
    "1s",
    "--autoscale-tick",
    "200ms",
    "--grace",
    "3s",
];

/// How long a test waits for anything the platform does (a liveness bound: a slow
/// machine is not a failure).
pub const PATIENCE: Duration = Duration::from_secs(120);

pub struct Platform {
    child: Option<Child>,
    pub data: tempfile::TempDir,
    pub api: SocketAddr,
    pub ingress: SocketAddr,
    pub bridge: String,
    pub project: String,
    /// The subnet's third octet (10.240.`net`.0/24).
    pub net: u8,
    log: PathBuf,
    binary: PathBuf,
    args: Vec<String>,
}

/// `service` with `invokerIamDisabled: true` unless it sets the field.
fn public_unless_said(service: &Value) -> Value {
    let mut service = service.clone();
    if let Some(fields) = service.as_object_mut() {
        fields
            .entry("invokerIamDisabled")
            .or_insert(Value::Bool(true));
    }
    service
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Platform {
    /// Starts `homerun up` (the binary at `binary`) on bridge and subnet number `net`
    /// (10.240.`net`.0/24; each test its own), with `extra` flags after `up`.
    pub fn start(binary: impl AsRef<Path>, net: u8, extra: &[&str]) -> Platform {
        let binary = binary.as_ref();
        static N: AtomicU32 = AtomicU32::new(0);
        let bridge = format!(
            "hrp{}x{}",
            std::process::id() % 10_000,
            N.fetch_add(1, Ordering::Relaxed)
        );
        let data = tempfile::tempdir().expect("a data directory");
        let api = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let ingress = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut args: Vec<String> = vec![
            "--data-dir".into(),
            data.path().display().to_string(),
            "--api-addr".into(),
            api.to_string(),
            "up".into(),
            "--ingress-addr".into(),
            ingress.to_string(),
            "--bridge".into(),
            bridge.clone(),
            "--subnet".into(),
            format!("10.240.{net}.0/24"),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let log = data.path().join("homerun.log");
        let mut platform = Platform {
            child: None,
            data,
            api,
            ingress,
            bridge,
            project: "local".into(),
            net,
            log,
            binary: binary.to_path_buf(),
            args,
        };
        platform.spawn();
        platform
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the platform's log file");
        let mut cmd = Command::new(&self.binary);
        cmd.args(&self.args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        die_with_parent(&mut cmd);
        self.child = Some(cmd.spawn().expect("running homerun up"));
        // Ready once the API answers (its port is bound before recovery and setup).
        let deadline = Instant::now() + PATIENCE;
        let probe = format!("{}/services", self.location());
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("homerun up exited with {status}:\n{}", self.logs());
            }
            // The token file is written before the API listens.
            let auth = self.authorization();
            let answered = !auth.is_empty()
                && http::request(
                    self.api,
                    "GET",
                    &probe,
                    &[("Authorization", &auth)],
                    b"",
                    Duration::from_secs(5),
                )
                .is_ok_and(|r| r.status == 200);
            if answered {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "homerun up is not answering after {PATIENCE:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the platform process still runs, for failure messages.
    fn child_status(&self) -> String {
        match &self.child {
            None => "not running".into(),
            Some(c) => {
                let path = format!("/proc/{}/stat", c.id());
                match std::fs::read_to_string(path) {
                    Ok(stat) => format!(
                        "pid {} state {}",
                        c.id(),
                        stat.split(' ').nth(2).unwrap_or("?")
                    ),
                    Err(_) => format!("pid {} gone", c.id()),
                }
            }
        }
    }

    /// What the platform printed so far.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// `/v2/projects/{project}/locations/local` and the rest.
    pub fn location(&self) -> String {
        format!("/v2/projects/{}/locations/local", self.project)
    }

    /// The admin token `homerun up` wrote (empty before it did).
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data.path().join("admin-token"))
            .map(|t| t.trim().to_string())
            .unwrap_or_default()
    }

    fn authorization(&self) -> String {
        let token = self.admin_token();
        if token.is_empty() {
            token
        } else {
            format!("Bearer {token}")
        }
    }

    /// One Admin API call with the admin token: status and JSON body.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.call_as(&self.authorization(), method, path, body)
    }

    /// One Admin API call with `authorization` as the `Authorization` header (none when
    /// empty): status and JSON body.
    pub fn call_as(
        &self,
        authorization: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut headers = vec![("Content-Type", "application/json")];
        if !authorization.is_empty() {
            headers.push(("Authorization", authorization));
        }
        let r = http::request(self.api, method, path, &headers, body.as_bytes(), PATIENCE)
            .unwrap_or_else(|e| {
                let status = self.child_status();
                panic!("{method} {path}: {e} (homerun: {status})\n{}", self.logs())
            });
        let value = if r.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&r.body).unwrap_or_else(|_| Value::String(r.text()))
        };
        (r.status, value)
    }

    /// Waits for a long-running operation (by its full name) to be done; returns it.
    pub fn wait(&self, operation: &Value) -> Value {
        let name = operation["name"].as_str().expect("an operation name");
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (status, op) = self.call(
                "POST",
                &format!("/v2/{name}:wait"),
                Some(&json!({"timeout": "10s"})),
            );
            assert_eq!(status, 200, "{op}");
            if op["done"] == true {
                return op;
            }
            assert!(
                Instant::now() < deadline,
                "operation {name} not done after {PATIENCE:?}:\n{}",
                self.logs()
            );
        }
    }

    /// Creates a service and waits for its operation; returns the finished operation.
    /// The service is public unless `service` sets `invokerIamDisabled` itself.
    pub fn create_service(&self, id: &str, service: &Value) -> Value {
        let service = public_unless_said(service);
        let (status, op) = self.call(
            "POST",
            &format!("{}/services?serviceId={id}", self.location()),
            Some(&service),
        );
        assert_eq!(status, 200, "creating {id}: {op}");
        self.wait(&op)
    }

    /// Patches a service (`mask` is the updateMask, empty for all) and waits. A patch of
    /// every field keeps the service public unless `service` says otherwise.
    pub fn update_service(&self, id: &str, mask: &str, service: &Value) -> Value {
        let mut path = format!("{}/services/{id}", self.location());
        let service = if mask.is_empty() {
            public_unless_said(service)
        } else {
            path.push_str(&format!("?updateMask={mask}"));
            service.clone()
        };
        let (status, op) = self.call("PATCH", &path, Some(&service));
        assert_eq!(status, 200, "updating {id}: {op}");
        self.wait(&op)
    }

    pub fn service(&self, id: &str) -> Value {
        let (status, s) = self.call("GET", &format!("{}/services/{id}", self.location()), None);
        assert_eq!(status, 200, "{s}");
        s
    }

    /// A request through the ingress with `Host: {host}`.
    pub fn request(&self, host: &str, method: &str, path: &str) -> Response {
        self.request_with(host, method, path, &[])
    }

    /// A request through the ingress with `Host: {host}` and more headers.
    pub fn request_with(
        &self,
        host: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut all = vec![("Host", host)];
        all.extend_from_slice(headers);
        http::request(self.ingress, method, path, &all, b"", PATIENCE)
            .unwrap_or_else(|e| panic!("{method} {host}{path}: {e}\n{}", self.logs()))
    }

    /// The bridge's gateway: where instances reach the metadata server (port 80).
    pub fn gateway(&self) -> std::net::Ipv4Addr {
        std::net::Ipv4Addr::new(10, 240, self.net, 1)
    }

    /// `GET path` on `{service}.localhost`.
    pub fn get(&self, service: &str, path: &str) -> Response {
        self.request(&format!("{service}.localhost"), "GET", path)
    }

    /// SIGTERM, and the exit status once homerun has drained and stopped.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("a running platform");
        // SAFETY: kill with a pid we own and a valid signal.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "homerun did not stop within {PATIENCE:?} of SIGTERM:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: the platform dies without cleaning up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts `homerun up` again on the same data directory, ports and bridge.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or kill the platform first");
        self.spawn();
    }

    /// The containers runc runs for this platform now (`runc list`).
    pub fn containers(&self) -> Vec<String> {
        self.containers_of("runc")
    }

    /// The containers `runtime` (runc or runsc) runs for this platform now.
    pub fn containers_of(&self, runtime: &str) -> Vec<String> {
        let root = self.data.path().join(runtime);
        if !root.exists() {
            return Vec::new();
        }
        // runc takes `-q`; runsc's Go flags only `-quiet`, which runc takes too.
        let out = Command::new(runtime)
            .arg("--root")
            .arg(root)
            .args(["list", "--quiet"])
            .output()
            .unwrap_or_else(|e| panic!("{runtime} list: {e}"));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Polls until `pred` holds for the running containers; false after [`PATIENCE`].
    pub fn wait_containers(&self, pred: impl Fn(&[String]) -> bool) -> bool {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if pred(&self.containers()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// What a stopped platform must not have left: mounts below its data directory,
    /// instance directories, its bridge, containers, and address leases (each with its
    /// network namespace, if that is still there).
    pub fn leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        let data = self.data.path().canonicalize().unwrap_or_default();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for line in mounts.lines() {
            if let Some(point) = line.split(' ').nth(4) {
                if Path::new(point).starts_with(&data) {
                    found.push(format!("mount {point}"));
                }
            }
        }
        if Path::new("/sys/class/net").join(&self.bridge).exists() {
            found.push(format!("bridge {}", self.bridge));
        }
        for runtime in ["runc", "runsc"] {
            let dir = self.data.path().join("instances").join(runtime);
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                found.push(format!("instance directory {}", e.path().display()));
            }
        }
        let leases = self
            .data
            .path()
            .join("net")
            .join(format!("leases-{}.json", self.bridge));
        let leases: serde_json::Map<String, Value> = std::fs::read_to_string(leases)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        for (address, id) in leases {
            let id = id.as_str().unwrap_or_default();
            let netns = Path::new("/var/run/netns").join(format!("hr-{id}"));
            found.push(format!(
                "lease {address} of {id} (network namespace {})",
                if netns.exists() { "present" } else { "gone" }
            ));
        }
        found.extend(
            self.containers()
                .into_iter()
                .map(|c| format!("container {c}")),
        );
        found
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.terminate()));
        }
        if Path::new("/sys/class/net").join(&self.bridge).exists() {
            let _ = Command::new("ip")
                .args(["link", "del", &self.bridge])
                .status();
        }
    }
}
