//! Runs the probe binary as a child process and watches what it prints.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bounds for things that must happen eventually; never a performance assertion.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct Probe {
    child: Child,
    pub addr: SocketAddr,
    output: Arc<Mutex<Vec<String>>>,
}

/// Polls `check` until it yields a value; panics naming `what` after `PATIENCE`.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "waited {PATIENCE:?} for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn collect(stream: impl std::io::Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            into.lock().unwrap().push(line);
        }
    });
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

impl Probe {
    /// Starts a server that may crash on purpose: no core file lands in the work tree.
    pub fn start_without_core_dumps(env: &[(&str, &str)]) -> Self {
        Self::launch(&[], env, true)
    }

    /// Starts `probe ARGS` with exactly `env` (plus PORT for the server) and waits until it
    /// listens, unless `args` select job mode.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::launch(args, env, false)
    }

    fn launch(args: &[&str], env: &[(&str, &str)], no_core: bool) -> Self {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_probe"));
        cmd.args(args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if args.first() != Some(&"job") {
            cmd.env("PORT", port.to_string());
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        // A killed test binary leaves no probe running (some sleep for minutes).
        testkit::registry::die_with_parent(&mut cmd);
        if no_core {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe, as pre_exec requires.
            unsafe {
                cmd.pre_exec(|| {
                    let zero = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    if libc::setrlimit(libc::RLIMIT_CORE, &zero) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("spawning the probe");
        let output = Arc::new(Mutex::new(Vec::new()));
        collect(child.stdout.take().unwrap(), output.clone());
        collect(child.stderr.take().unwrap(), output.clone());
        let probe = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            output,
        };
        if args.first() != Some(&"job") {
            assert!(
                testkit::http::wait_listening(probe.addr, PATIENCE),
                "probe never listened; it printed {:?}",
                probe.lines()
            );
        }
        probe
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill has no memory effects; the pid is our own live child.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    pub fn lines(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    /// Waits until a printed line contains `needle`.
    pub fn wait_for_line(&self, needle: &str) -> String {
        eventually(&format!("a line with {needle:?}"), || {
            self.lines().into_iter().find(|l| l.contains(needle))
        })
    }

    pub fn wait(&mut self) -> ExitStatus {
        let child = &mut self.child;
        eventually("the probe to exit", || child.try_wait().unwrap())
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn get(&self, path: &str) -> testkit::http::Response {
        testkit::http::get(self.addr, path, PATIENCE).expect("GET")
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
