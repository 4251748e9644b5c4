//! The acceptance test by Google's own client: `tests/python/cloud_run_client.py` drives
//! `homerun up` with `google.cloud.run_v2` (pip package `google-cloud-run`) over REST:
//! create, serve through the ingress, a new revision, list revisions, a 50/50 split,
//! delete; with the admin token as its credential (an anonymous one and a wrong token get
//! a 401), the service private until its own `set_iam_policy` makes it public, and an ID
//! token from IAM Credentials' `generateIdToken` verified by PyJWT and by google-auth
//! against homerun's JWKS. `tests/python/cloud_run_jobs.py` does the same for
//! jobs (`JobsClient`, `ExecutionsClient`, `TasksClient`) with the probe in job mode:
//! create, run (a retry), list executions and tasks, run with overrides, a failing run,
//! cancel, delete. The platform must then stop cleanly and leave nothing behind.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testkit::platform::{Platform, FAST_SCALING};

/// The services test's bridge subnet (10.240.200.0/24): no other test uses it.
const NET: u8 = 200;
/// The jobs test's (10.240.199.0/24), as unused.
const JOBS_NET: u8 = 199;
/// The script is killed past this.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// What the scripts import beyond the standard library: Google's client (pip package
/// `google-cloud-run`, which brings google-auth) and PyJWT with its RS256 backend (`pyjwt`
/// and `cryptography`; google-auth also needs PyJWT to verify a token against a JWKS).
const PYTHON_MODULES: &str = "google.cloud.run_v2, jwt, cryptography";

/// Whether `python3` can import [`PYTHON_MODULES`]. In CI their absence fails the test;
/// elsewhere the test is skipped with a `SKIPPED:` line.
fn python_client() -> bool {
    let out = Command::new("python3")
        .args(["-c", &format!("import {PYTHON_MODULES}")])
        .output();
    let why = match out {
        Ok(o) if o.status.success() => return true,
        Ok(o) => format!(
            "python3 cannot import {PYTHON_MODULES}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => format!("python3 does not run: {e}"),
    };
    if testkit::in_ci() {
        panic!("{why} (CI=true: system tests may not skip; run scripts/setup.sh)");
    }
    // Straight to stderr, as testkit::require: scripts/test.sh counts these lines.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {why}; run scripts/setup.sh (python3 -m pip install google-cloud-run pyjwt[crypto])"
    );
    false
}

/// Copies `from` line by line to this test's output and into `into`.
fn tee(from: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            println!("{line}");
            let mut all = into.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
        }
    })
}

#[test]
fn google_cloud_run_python_client() {
    run_script(
        "cloud_run_client.py",
        NET,
        &[("HOMERUN_SERVICE", "pyclient")],
    );
}

#[test]
fn google_cloud_run_python_client_jobs() {
    run_script("cloud_run_jobs.py", JOBS_NET, &[("HOMERUN_JOB", "pyjob")]);
}

/// Runs `tests/python/{script}` against a `homerun up` of its own on subnet `net`, with
/// `HOMERUN_API`, `HOMERUN_INGRESS`, `HOMERUN_TOKEN` (the admin token), `HOMERUN_IMAGE`
/// (the probe), `HOMERUN_PROJECT`, `HOMERUN_REGION` and `vars` in its environment; it must
/// exit 0, and the platform must then stop cleanly and leave nothing behind.
fn run_script(script: &str, net: u8, vars: &[(&str, &str)]) {
    if !testkit::require(&["runc", "ip", "iptables"], true) || !python_client() {
        return;
    }
    let cat = testkit::catalogue().expect("the test images");
    let image = format!("oci:{}", cat.image("probe").path.display());
    let mut platform = Platform::start(env!("CARGO_BIN_EXE_homerun"), net, FAST_SCALING);
    let token = platform.admin_token();
    assert!(
        !token.is_empty(),
        "homerun up wrote no admin token to {}:\n{}",
        platform.data.path().join("admin-token").display(),
        platform.logs()
    );

    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .env("HOMERUN_API", platform.api.to_string())
        .env("HOMERUN_INGRESS", platform.ingress.to_string())
        .env("HOMERUN_TOKEN", &token)
        .env("HOMERUN_IMAGE", &image)
        .env("HOMERUN_PROJECT", &platform.project)
        .env("HOMERUN_REGION", "local")
        .envs(vars.iter().copied())
        .env("PYTHONUNBUFFERED", "1")
        // Loopback only: a proxy from the environment must not see the Admin API calls.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    testkit::registry::die_with_parent(&mut cmd);
    let mut child = cmd.spawn().expect("running python3");
    let output = Arc::new(Mutex::new(String::new()));
    let readers = [
        tee(child.stdout.take().unwrap(), output.clone()),
        tee(child.stderr.take().unwrap(), output.clone()),
    ];

    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for python3") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for r in readers {
        let _ = r.join();
    }
    let output = output.lock().unwrap().clone();
    match status {
        None => panic!(
            "{} did not finish within {SCRIPT_TIMEOUT:?}; killed. Its output:\n{output}\n\
             The platform's log:\n{}",
            script.display(),
            platform.logs()
        ),
        Some(s) => assert!(
            s.success(),
            "{} exited with {s}. Its output:\n{output}\nThe platform's log:\n{}",
            script.display(),
            platform.logs()
        ),
    }

    let status = platform.terminate();
    assert!(
        status.success(),
        "homerun exited {status}:\n{}",
        platform.logs()
    );
    let left = platform.leftovers();
    assert!(
        left.is_empty(),
        "left behind: {left:?}\n{}",
        platform.logs()
    );
}
