//! `GET /`: everything the container contract lets a workload observe about its sandbox.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::sync::atomic::{AtomicU8, Ordering};

use serde_json::{json, Value};

const STDIN_PENDING: u8 = 0;
const STDIN_EOF: u8 = 1;
const STDIN_DATA: u8 = 2;
const STDIN_ERROR: u8 = 3;
static STDIN_STATE: AtomicU8 = AtomicU8::new(STDIN_PENDING);

/// Learns whether stdin is at EOF (the contract) without ever blocking a request: when
/// `poll` says a read would not block (EOF, data or an error: `/dev/null` under the
/// contract) the byte is read at once, so the answer is settled before the server listens
/// and cannot lose a race with the first `GET /` on a CPU-starved instance; otherwise a
/// thread waits for it and `GET /` reports "blocked" meanwhile.
pub fn watch_stdin() {
    fn read_one() -> u8 {
        use std::io::Read;
        let mut byte = [0u8; 1];
        match std::io::stdin().read(&mut byte) {
            Ok(0) => STDIN_EOF,
            Ok(_) => STDIN_DATA,
            Err(_) => STDIN_ERROR,
        }
    }
    let mut fd = libc::pollfd {
        fd: 0,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout. A closed fd 0 polls as ready (POLLNVAL) and
    // its read fails at once: "error".
    let ready = unsafe { libc::poll(&mut fd, 1, 0) } == 1;
    if ready {
        STDIN_STATE.store(read_one(), Ordering::SeqCst);
        return;
    }
    std::thread::spawn(|| STDIN_STATE.store(read_one(), Ordering::SeqCst));
}

fn stdin_state() -> &'static str {
    match STDIN_STATE.load(Ordering::SeqCst) {
        STDIN_EOF => "eof",
        STDIN_DATA => "data",
        STDIN_ERROR => "error",
        _ => "blocked",
    }
}

const STAT_PATHS: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/fd",
    "/dev/stdin",
    "/dev/stdout",
    "/dev/stderr",
    "/tmp",
    "/etc/resolv.conf",
    "/etc/hosts",
];

/// Cgroup files a workload reads to learn its limits, v2 first, then the v1 hierarchy.
const CGROUP_FILES: &[&str] = &[
    "/sys/fs/cgroup/memory.max",
    "/sys/fs/cgroup/cpu.max",
    "/sys/fs/cgroup/pids.max",
    "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
    "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
    "/sys/fs/cgroup/cpu/cpu.shares",
    "/sys/fs/cgroup/pids/pids.max",
];

pub fn report() -> Value {
    let env: BTreeMap<String, String> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    // SAFETY: these libc calls take no arguments and cannot fail.
    let (uid, euid, gid, egid) = unsafe {
        (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        )
    };
    json!({
        "env": env,
        "argv": std::env::args().collect::<Vec<_>>(),
        "uid": uid,
        "euid": euid,
        "gid": gid,
        "egid": egid,
        "pid": std::process::id(),
        "cwd": std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_else(|e| format!("error: {e}")),
        "hostname": hostname(),
        "stdin": stdin_state(),
        "files": STAT_PATHS.iter().map(|p| (p.to_string(), stat(p))).collect::<BTreeMap<_, _>>(),
        "mounts": mounts(),
        "cgroup": cgroup(),
        "dmi_product_name": read_trimmed("/sys/class/dmi/id/product_name"),
        "security": security(),
    })
}

/// What `/proc/self/status` says of the process's privileges: no_new_privs, the seccomp
/// mode (2 = filter) and the capability sets, as the kernel enforces them.
fn security() -> Value {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(':')))
            .map(|v| v.trim().to_string())
    };
    json!({
        "no_new_privs": field("NoNewPrivs"),
        "seccomp": field("Seccomp"),
        "cap_eff": field("CapEff"),
        "cap_bnd": field("CapBnd"),
    })
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length; gethostname NUL-terminates within it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return format!("error: {}", std::io::Error::last_os_error());
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim_end().to_string())
}

pub fn stat(path: &str) -> Value {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) => return json!({ "error": e.to_string() }),
    };
    let ft = meta.file_type();
    let kind = if ft.is_symlink() {
        "symlink"
    } else if ft.is_dir() {
        "dir"
    } else if ft.is_file() {
        "file"
    } else if ft.is_char_device() {
        "char"
    } else if ft.is_block_device() {
        "block"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else {
        "unknown"
    };
    let mut out = json!({
        "type": kind,
        "mode": format!("{:o}", meta.mode() & 0o7777),
        "uid": meta.uid(),
        "gid": meta.gid(),
    });
    if ft.is_char_device() || ft.is_block_device() {
        let rdev = meta.rdev();
        out["major"] = json!(libc::major(rdev));
        out["minor"] = json!(libc::minor(rdev));
    }
    if ft.is_symlink() {
        out["link"] = json!(std::fs::read_link(path)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|e| format!("error: {e}")));
    }
    out
}

/// Parses `/proc/self/mounts`, undoing the octal escapes the kernel writes for spaces etc.
fn mounts() -> Value {
    let text = match std::fs::read_to_string("/proc/self/mounts") {
        Ok(t) => t,
        Err(e) => return json!({ "error": e.to_string() }),
    };
    Value::Array(text.lines().filter_map(parse_mount_line).collect())
}

fn parse_mount_line(line: &str) -> Option<Value> {
    let mut f = line.split(' ');
    let source = unescape_mount(f.next()?);
    let target = unescape_mount(f.next()?);
    let fstype = f.next()?.to_string();
    let options: Vec<String> = f.next()?.split(',').map(str::to_string).collect();
    Some(json!({ "source": source, "target": target, "fstype": fstype, "options": options }))
}

fn unescape_mount(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        if let Some(d) = octal {
            out.push(
                d.iter()
                    .fold(0u8, |acc, b| acc.wrapping_mul(8) + (b - b'0')),
            );
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn cgroup() -> Value {
    let files: BTreeMap<&str, Option<String>> =
        CGROUP_FILES.iter().map(|p| (*p, read_trimmed(p))).collect();
    let writable: BTreeMap<&str, bool> = CGROUP_FILES
        .iter()
        .filter(|p| std::path::Path::new(p).exists())
        .map(|p| (*p, open_for_write(p)))
        .collect();
    json!({
        "files": files,
        "writable": writable,
        "self": read_trimmed("/proc/self/cgroup"),
        "memory_limit_bytes": memory_limit(&files),
        "cpu_limit": cpu_limit(&files),
    })
}

/// Opens for writing without writing anything: a read-only mount answers EROFS.
pub fn open_for_write(path: &str) -> bool {
    std::fs::OpenOptions::new().write(true).open(path).is_ok()
}

fn memory_limit(files: &BTreeMap<&str, Option<String>>) -> Option<u64> {
    let v2 = files.get("/sys/fs/cgroup/memory.max").cloned().flatten();
    let v1 = files
        .get("/sys/fs/cgroup/memory/memory.limit_in_bytes")
        .cloned()
        .flatten();
    v2.or(v1).and_then(|s| s.parse().ok())
}

/// The CPU limit in vCPUs, from `cpu.max` (v2) or the CFS quota and period (v1).
fn cpu_limit(files: &BTreeMap<&str, Option<String>>) -> Option<f64> {
    let get = |k: &str| files.get(k).cloned().flatten();
    if let Some(max) = get("/sys/fs/cgroup/cpu.max") {
        let mut parts = max.split_whitespace();
        let quota: f64 = parts.next()?.parse().ok()?;
        let period: f64 = parts.next()?.parse().ok()?;
        return Some(quota / period);
    }
    let quota: f64 = get("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")?.parse().ok()?;
    let period: f64 = get("/sys/fs/cgroup/cpu/cpu.cfs_period_us")?.parse().ok()?;
    (quota > 0.0).then_some(quota / period)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_lines_unescape_spaces() {
        let m = parse_mount_line("tmpfs /my\\040dir tmpfs rw,nosuid,size=1024k 0 0").unwrap();
        assert_eq!(m["target"], "/my dir");
        assert_eq!(m["options"][2], "size=1024k");
    }

    #[test]
    fn cpu_limit_from_v2_and_v1() {
        let mut f = BTreeMap::new();
        f.insert("/sys/fs/cgroup/cpu.max", Some("50000 100000".to_string()));
        assert_eq!(cpu_limit(&f), Some(0.5));
        let mut f = BTreeMap::new();
        f.insert("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", Some("200000".into()));
        f.insert(
            "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
            Some("100000".into()),
        );
        assert_eq!(cpu_limit(&f), Some(2.0));
        f.insert("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", Some("-1".into()));
        assert_eq!(cpu_limit(&f), None);
    }
}
