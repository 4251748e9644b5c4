//! Builds the static probe and the image catalogue once, shared by every test process.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::error::{Error, IoContext, Result};
use crate::images::{self, Catalogue};

pub const BUSYBOX: &str = "/bin/busybox";

/// The workspace root (this crate lives in `crates/testkit`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Holds an exclusive `flock` on a file while alive: test processes run in parallel.
/// The lock is released when the file closes.
struct FileLock(#[allow(dead_code)] fs::File);

impl FileLock {
    fn acquire(path: &Path) -> Result<Self> {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .context(|| format!("opening lock {}", path.display()))?;
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor is valid while `file` lives; flock has no memory effects.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(Error::Io {
                context: format!("locking {}", path.display()),
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(Self(file))
    }
}

/// Builds the probe as a fully static x86_64 binary (or takes `$HOMERUN_PROBE_BIN`).
///
/// It has its own target directory: the crt-static flag must not reach proc-macros, and the
/// outer `cargo test` must not contend for the same build lock.
pub fn static_probe() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("HOMERUN_PROBE_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let root = workspace_root();
    let target_dir = root.join("target/static");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(&cargo)
        .current_dir(&root)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .args(["build", "--release", "--locked", "-p", "probe"])
        .args(["--target", "x86_64-unknown-linux-gnu", "--target-dir"])
        .arg(&target_dir)
        .output()
        .context(|| "running cargo to build the static probe".into())?;
    if !out.status.success() {
        return Err(Error::Command {
            command: "cargo build --release -p probe (crt-static)".into(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        });
    }
    Ok(target_dir.join("x86_64-unknown-linux-gnu/release/probe"))
}

/// Builds (or reuses) the test images under `target/testimages`, once per process and under
/// a lock across processes. Rebuilt when the probe binary changed.
pub fn catalogue() -> Result<&'static Catalogue> {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    if let Some(c) = CATALOGUE.get() {
        return Ok(c);
    }
    let out = workspace_root().join("target/testimages");
    fs::create_dir_all(&out).context(|| format!("creating {}", out.display()))?;
    let _lock = FileLock::acquire(&out.with_extension("lock"))?;
    let probe = static_probe()?;
    let probe_bytes = fs::read(&probe).context(|| format!("reading {}", probe.display()))?;
    let busybox = fs::read(BUSYBOX)
        .context(|| format!("reading {BUSYBOX} (apt-get install busybox-static)"))?;
    let fingerprint = images::fingerprint(&probe_bytes, &busybox);
    let index = out.join("catalogue.json");
    let existing: Option<Catalogue> = fs::read(&index)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let built = match existing {
        Some(c) if c.fingerprint == fingerprint && c.is_complete() => c,
        _ => images::build_all(&out, &probe, Path::new(BUSYBOX))?,
    };
    Ok(CATALOGUE.get_or_init(|| built))
}
