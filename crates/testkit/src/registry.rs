//! A real registry for tests: Debian's `docker-registry` (the CNCF distribution registry) on
//! a free loopback port with its own storage, fed with `skopeo copy`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::error::{Error, IoContext, Result};
use crate::images::TestImage;

/// Basic-auth credentials of a registry started with htpasswd.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    pub fn skopeo_arg(&self) -> String {
        format!("{}:{}", self.username, self.password)
    }
}

/// A running registry. Dropping it stops the process and deletes its storage.
pub struct Registry {
    child: Child,
    addr: SocketAddr,
    credentials: Option<Credentials>,
    dir: TempDir,
}

fn free_loopback_port() -> Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").context(|| "binding a free loopback port".into())?;
    l.local_addr().context(|| "reading the free port".into())
}

impl Registry {
    /// An anonymous registry.
    pub fn start() -> Result<Self> {
        Self::launch(None)
    }

    /// A registry that demands HTTP basic auth (htpasswd, bcrypt) for every request.
    pub fn start_with_basic_auth(username: &str, password: &str) -> Result<Self> {
        Self::launch(Some(Credentials {
            username: username.into(),
            password: password.into(),
        }))
    }

    fn launch(credentials: Option<Credentials>) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("homerun-registry-")
            .tempdir()
            .context(|| "creating the registry directory".into())?;
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).context(|| format!("creating {}", storage.display()))?;
        let mut auth = String::new();
        if let Some(c) = &credentials {
            let htpasswd = dir.path().join("htpasswd");
            run(Command::new("htpasswd")
                .args(["-B", "-b", "-c"])
                .arg(&htpasswd)
                .args([&c.username, &c.password]))?;
            auth = format!(
                "auth:\n  htpasswd:\n    realm: homerun-test\n    path: {}\n",
                htpasswd.display()
            );
        }
        // The port is free now; a race with another process is possible but rare, and ends in
        // a clear start error rather than a hang.
        let addr = free_loopback_port()?;
        // schema1 is off by default in distribution 2.8; the image tests push one on purpose.
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: {addr}\n  secret: homerun-test-{}\n\
                 compatibility:\n  schema1:\n    enabled: true\n{auth}",
                storage.display(),
                std::process::id()
            ),
        )
        .context(|| format!("writing {}", config.display()))?;
        let log = std::fs::File::create(dir.path().join("registry.log"))
            .context(|| "creating the registry log".into())?;
        let mut cmd = Command::new("docker-registry");
        die_with_parent(&mut cmd);
        let child = cmd
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context(|| "registry log".into())?)
            .stderr(log)
            .spawn()
            .context(|| "starting docker-registry".into())?;
        let mut registry = Self {
            child,
            addr,
            credentials,
            dir,
        };
        registry.wait_ready()?;
        Ok(registry)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::RegistryStart {
                    addr: self.addr.to_string(),
                    reason: format!("exited with {status}: {}", self.log()),
                });
            }
            // Exactly the answer this registry gives: another process that won a race for the
            // port answers otherwise, and then the child exits with "address in use".
            let expected = if self.credentials.is_some() { 401 } else { 200 };
            if http_status(self.addr, "/v2/") == Some(expected) {
                if let Ok(None) = self.child.try_wait() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(Error::RegistryStart {
                    addr: self.addr.to_string(),
                    reason: format!("no answer on /v2/ within 20 s: {}", self.log()),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the registry wrote to its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `127.0.0.1:PORT`, the host part of image references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The image reference `HOST:PORT/REPO` for a repository path with tag or digest.
    pub fn reference(&self, repo: &str) -> String {
        format!("{}/{repo}", self.host())
    }

    /// Copies `source` (any skopeo transport) to `repo` (e.g. `homerun/probe:latest`) with
    /// the registry's credentials, keeping every platform of an index. `extra` goes to skopeo
    /// as is (for example `--format v2s1`). Returns the pushed reference.
    pub fn push_ref(&self, source: &str, repo: &str, extra: &[&str]) -> Result<String> {
        let dest = self.reference(repo);
        let mut cmd = Command::new("skopeo");
        cmd.args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
        ]);
        if let Some(c) = &self.credentials {
            cmd.arg("--dest-creds").arg(c.skopeo_arg());
        }
        if !extra.contains(&"--format") {
            cmd.arg("--all");
        }
        cmd.args(extra).arg(source).arg(format!("docker://{dest}"));
        run(&mut cmd)?;
        Ok(dest)
    }

    /// Pushes a catalogue image as `homerun/NAME:latest`.
    pub fn push(&self, image: &TestImage) -> Result<String> {
        self.push_ref(
            &image.source,
            &format!("homerun/{}:{}", image.name, image.tag),
            &[],
        )
    }

    /// `skopeo inspect` of a reference in this registry, with the registry's credentials.
    pub fn inspect(&self, reference: &str, extra: &[&str]) -> Result<Value> {
        let mut cmd = Command::new("skopeo");
        cmd.args(["--insecure-policy", "inspect", "--tls-verify=false"]);
        if let Some(c) = &self.credentials {
            cmd.arg("--creds").arg(c.skopeo_arg());
        }
        cmd.args(extra).arg(format!("docker://{reference}"));
        let out = run(&mut cmd)?;
        serde_json::from_slice(&out).map_err(|source| Error::Json {
            path: PathBuf::from(format!("skopeo inspect {reference}")),
            source,
        })
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes the kernel kill `cmd`'s process when the thread that spawned it ends, so a test
/// process that is itself killed leaves no registry behind. A `Registry` therefore lives
/// no longer than the thread (the test) that started it.
pub fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Runs a command to completion, returning stdout or an error carrying stderr.
pub fn run(cmd: &mut Command) -> Result<Vec<u8>> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .context(|| format!("running {shown}"))?;
    if !out.status.success() {
        return Err(Error::Command {
            command: shown,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}

/// The status code of a plain `GET` on loopback, or None when nothing answers.
pub fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Whether `path` is inside the registry's storage (for assertions on what it holds).
pub fn blob_path(storage: &Path, digest: &str) -> PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    storage
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}
