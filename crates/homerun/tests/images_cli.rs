//! `homerun images` end to end: pull from a real registry, list, remove, prune.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use testkit::{catalogue, require, Registry};

/// Runs homerun, killing it if it has not finished in five minutes (a hang fails the test
/// instead of the whole suite).
fn homerun(data_dir: &std::path::Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_homerun"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running homerun");
    let deadline = Instant::now() + Duration::from_secs(300);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("homerun {args:?} did not finish in 5 minutes");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn pull_list_rm_prune() {
    if !require(&["docker-registry", "skopeo", "busybox"], true) {
        return;
    }
    let cat = catalogue().unwrap();
    let registry = Registry::start().unwrap();
    let reference = registry.push(cat.image("layers")).unwrap();
    let data = tempfile::tempdir().unwrap();

    // skopeo compressed the plain-tar layer on push: the registry's digest is the one to expect.
    let digest = registry.inspect(&reference, &[]).unwrap()["Digest"]
        .as_str()
        .unwrap()
        .to_string();
    let pulled = ok(homerun(data.path(), &["images", "pull", &reference]));
    assert!(
        pulled.starts_with(&format!("{reference}: {digest}")),
        "{pulled}"
    );
    assert!(pulled.contains("3 layers, 3 fetched"), "{pulled}");
    let again = ok(homerun(data.path(), &["images", "pull", &reference]));
    assert!(again.contains("3 layers, 0 fetched"), "{again}");

    let list: serde_json::Value = serde_json::from_str(&ok(homerun(
        data.path(),
        &["images", "list", "--format", "json"],
    )))
    .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["reference"], reference);
    assert_eq!(list[0]["manifest_digest"], digest.as_str());
    let table = ok(homerun(data.path(), &["images", "list"]));
    assert!(
        table.lines().nth(1).unwrap().starts_with(&reference),
        "{table}"
    );

    ok(homerun(data.path(), &["images", "rm", &reference]));
    let pruned = ok(homerun(data.path(), &["images", "prune"]));
    assert!(pruned.starts_with("removed 3 layers"), "{pruned}");
    let list = ok(homerun(
        data.path(),
        &["images", "list", "--format", "json"],
    ));
    assert_eq!(list.trim(), "[]");
}

#[test]
fn bad_references_and_failed_pulls_exit_non_zero_with_the_reason() {
    let data = tempfile::tempdir().unwrap();
    let out = homerun(data.path(), &["images", "pull", "Not/Valid:ref"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("lowercase"),
        "{out:?}"
    );

    let out = homerun(data.path(), &["images", "rm", "busybox"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no image docker.io/library/busybox:latest"),
        "{out:?}"
    );
}
