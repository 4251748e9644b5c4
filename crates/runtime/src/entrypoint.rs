//! Checks an instance's executable before anything runs: Cloud Run wants x86_64 Linux
//! executables, and a user deserves "/app/server is an aarch64 executable" rather than an
//! `exec format error` from deep inside runc.

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use crate::error::RuntimeError;

/// The PATH an image gets when it sets none (Docker's and runc's default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Symlinks followed before giving up, as the kernel does (ELOOP).
const MAX_LINKS: usize = 40;

const EM_X86_64: u16 = 62;

fn machine_name(machine: u16) -> String {
    match machine {
        3 => "i386".into(),
        40 => "arm".into(),
        183 => "aarch64".into(),
        243 => "riscv".into(),
        21 => "ppc64".into(),
        22 => "s390".into(),
        other => format!("machine type {other}"),
    }
}

fn invalid(msg: String) -> RuntimeError {
    RuntimeError::Invalid(msg)
}

/// Resolves `path` (absolute, as seen inside the container) to a host path under `root`,
/// following symlinks as if `root` were `/`: nothing outside `root` is ever looked at.
pub fn resolve_in_root(root: &Path, path: &Path) -> Result<PathBuf, RuntimeError> {
    let mut pending: Vec<std::ffi::OsString> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        let host = root.join(&candidate);
        match std::fs::symlink_metadata(&host) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(invalid(format!(
                        "{}: too many levels of symbolic links",
                        path.display()
                    )));
                }
                let target = std::fs::read_link(&host)
                    .map_err(|e| invalid(format!("reading link {}: {e}", candidate.display())))?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(n.to_os_string()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => resolved = candidate,
        }
    }
    Ok(root.join(resolved))
}

/// Finds the program the container will execute: `argv0` as a path (relative to `cwd`), or
/// looked up in the container's PATH.
fn locate(
    root: &Path,
    argv0: &str,
    env: &[(String, String)],
    cwd: &str,
) -> Result<(PathBuf, String), RuntimeError> {
    if argv0.contains('/') {
        let inside = Path::new(cwd).join(argv0);
        return Ok((
            resolve_in_root(root, &inside)?,
            inside.display().to_string(),
        ));
    }
    let given = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str());
    let path = given.unwrap_or(DEFAULT_PATH);
    for dir in path.split(':').filter(|d| d.starts_with('/')) {
        let inside = Path::new(dir).join(argv0);
        let host = resolve_in_root(root, &inside)?;
        if host.is_file() {
            return Ok((host, inside.display().to_string()));
        }
    }
    // The value of an environment variable is never put in a message (it may be a secret):
    // only the default PATH is shown.
    let searched = match given {
        Some(_) => "the directories of its PATH variable".to_string(),
        None => format!("the default {DEFAULT_PATH}, as it sets none"),
    };
    Err(invalid(format!(
        "the command {argv0:?} is not in the container's PATH (searched {searched})"
    )))
}

/// Checks that argv[0] names an x86_64 ELF or a script whose interpreter exists.
pub fn check_executable(
    root: &Path,
    argv: &[String],
    env: &[(String, String)],
    cwd: &str,
) -> Result<(), RuntimeError> {
    let argv0 = argv
        .first()
        .ok_or_else(|| invalid("the container has no command to run".into()))?;
    let (host, inside) = locate(root, argv0, env, cwd)?;
    check_file(root, &host, &inside, true)
}

fn check_file(
    root: &Path,
    host: &Path,
    inside: &str,
    allow_script: bool,
) -> Result<(), RuntimeError> {
    let meta = std::fs::metadata(host).map_err(|_| {
        invalid(format!(
            "the executable {inside} does not exist in the image"
        ))
    })?;
    if !meta.is_file() {
        return Err(invalid(format!(
            "the executable {inside} is not a regular file"
        )));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(invalid(format!(
            "the executable {inside} has no execute permission"
        )));
    }
    let mut head = [0u8; 256];
    let n = {
        use std::io::Read;
        let mut f =
            std::fs::File::open(host).map_err(|e| invalid(format!("opening {inside}: {e}")))?;
        f.read(&mut head)
            .map_err(|e| invalid(format!("reading {inside}: {e}")))?
    };
    let head = &head[..n];
    if head.starts_with(b"\x7fELF") {
        if head.len() < 20 {
            return Err(invalid(format!("{inside} is a truncated ELF file")));
        }
        let machine = u16::from_le_bytes([head[18], head[19]]);
        if head[4] != 2 || machine != EM_X86_64 {
            return Err(invalid(format!(
                "{inside} is an {} executable; Cloud Run and homerun run x86_64 Linux executables only",
                if head[4] != 2 && machine == EM_X86_64 { "x86 32-bit".to_string() } else { machine_name(machine) }
            )));
        }
        return Ok(());
    }
    if allow_script && head.starts_with(b"#!") {
        let line = head[2..].split(|b| *b == b'\n').next().unwrap_or_default();
        let line = String::from_utf8_lossy(line);
        let interpreter = line.split_whitespace().next().unwrap_or_default();
        if !interpreter.starts_with('/') {
            return Err(invalid(format!(
                "{inside} starts with #! but names no absolute interpreter"
            )));
        }
        let host = resolve_in_root(root, Path::new(interpreter))?;
        return check_file(root, &host, interpreter, false)
            .map_err(|e| invalid(format!("{inside} is a script for {interpreter}: {e}")));
    }
    Err(invalid(format!(
        "{inside} is neither an ELF executable nor a #! script"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, path: &str, data: &[u8], mode: u32) {
        let p = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn elf(machine: u16) -> Vec<u8> {
        let mut e = vec![0u8; 64];
        e[..4].copy_from_slice(b"\x7fELF");
        e[4] = 2;
        e[18..20].copy_from_slice(&machine.to_le_bytes());
        e
    }

    fn env(path: &str) -> Vec<(String, String)> {
        vec![("PATH".into(), path.into())]
    }

    #[test]
    fn finds_programs_through_path_and_links_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write(r, "/bin/busybox", &elf(EM_X86_64), 0o755);
        std::os::unix::fs::symlink("busybox", r.join("bin/sh")).unwrap();
        // An absolute link resolves inside the root, never on the host.
        std::os::unix::fs::symlink("/bin/busybox", r.join("bin/abs")).unwrap();
        std::os::unix::fs::symlink("../../../../../bin/busybox", r.join("bin/up")).unwrap();
        for cmd in ["sh", "/bin/sh", "abs", "up"] {
            check_executable(r, &[cmd.into()], &env("/bin"), "/")
                .unwrap_or_else(|e| panic!("{cmd}: {e}"));
        }
        write(r, "/app/run.sh", b"#!/bin/sh\necho hi\n", 0o755);
        check_executable(r, &["./run.sh".into()], &env("/bin"), "/app").unwrap();
    }

    #[test]
    fn refusals_name_the_file_and_the_reason() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write(r, "/arm", &elf(183), 0o755);
        write(r, "/noexec", &elf(EM_X86_64), 0o644);
        write(r, "/text", b"hello", 0o755);
        write(r, "/script", b"#!/usr/bin/python3\n", 0o755);
        let cases = [
            ("/arm", "aarch64"),
            ("/noexec", "no execute permission"),
            ("/text", "neither an ELF"),
            ("/script", "/usr/bin/python3"),
            ("/missing", "does not exist"),
            ("nowhere", "not in the container's PATH"),
        ];
        for (cmd, expect) in cases {
            let err = check_executable(r, &[cmd.into()], &env("/bin"), "/")
                .unwrap_err()
                .to_string();
            assert!(err.contains(expect), "{cmd}: {err}");
        }
    }

    #[test]
    fn a_given_path_is_not_shown_in_the_error() {
        let root = tempfile::tempdir().unwrap();
        let err = check_executable(root.path(), &["x".into()], &env("/s3cr3t/bin"), "/")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not in the container's PATH"), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
        let err = check_executable(root.path(), &["x".into()], &[], "/")
            .unwrap_err()
            .to_string();
        assert!(err.contains(DEFAULT_PATH), "{err}");
    }
}
