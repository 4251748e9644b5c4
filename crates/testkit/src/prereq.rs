//! Prerequisites of system tests: under `CI=true` a missing one fails the test; elsewhere
//! the test is skipped with a message saying why.

use std::path::Path;

/// Debian package that provides each tool the tests use.
const PACKAGES: &[(&str, &str)] = &[
    ("docker-registry", "docker-registry"),
    ("skopeo", "skopeo"),
    ("htpasswd", "apache2-utils"),
    ("umoci", "umoci"),
    ("runc", "runc"),
    ("runsc", "runsc"),
    ("busybox", "busybox-static"),
];

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

pub fn find_tool(tool: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

fn package_of(tool: &str) -> &str {
    PACKAGES
        .iter()
        .find(|(t, _)| *t == tool)
        .map(|(_, p)| *p)
        .unwrap_or(tool)
}

/// True when every tool is installed (and, with `root`, we are root). Otherwise panics in CI
/// and returns false elsewhere, after printing what is missing.
pub fn require(tools: &[&str], root: bool) -> bool {
    let mut missing: Vec<String> = tools
        .iter()
        .filter(|t| find_tool(t).is_none() && !Path::new(t).is_file())
        .map(|t| format!("{t} (apt-get install {})", package_of(t)))
        .collect();
    // SAFETY: geteuid has no preconditions.
    if root && unsafe { libc::geteuid() } != 0 {
        missing.push("root privileges".into());
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!("missing prerequisites: {}", missing.join(", "));
    if in_ci() {
        panic!("{msg} (CI=true: system tests may not skip; run scripts/setup.sh)");
    }
    // Straight to stderr: the test harness captures `eprintln!` of passing tests, and a skip
    // must be seen (scripts/test.sh counts these lines).
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {msg}; run scripts/setup.sh to install them"
    );
    false
}
