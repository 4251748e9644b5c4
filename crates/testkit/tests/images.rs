//! The test images are what they claim: checked by tools nobody here wrote (skopeo, umoci)
//! and by running the probe from the image with nothing else beside it.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use testkit::registry::run;
use testkit::{catalogue, require};

/// Absolute: the children run with an empty environment, so no PATH lookup.
const CHROOT: &str = "/usr/sbin/chroot";

/// Unpacks an image with umoci (which knows gzip only, so skopeo first recompresses).
fn umoci_unpack(source: &str, skopeo_global: &[&str], work: &Path) -> std::path::PathBuf {
    let layout = work.join("gzip");
    run(Command::new("skopeo")
        .args(["--insecure-policy"])
        .args(skopeo_global)
        .args([
            "copy",
            "--quiet",
            "--dest-compress",
            "--dest-compress-format",
            "gzip",
        ])
        .arg(source)
        .arg(format!("oci:{}:t", layout.display())))
    .expect("skopeo recompress");
    let bundle = work.join("bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:t", layout.display()))
        .arg(&bundle))
    .expect("umoci unpack");
    bundle.join("rootfs")
}

#[test]
fn layered_image_unpacks_to_the_declared_union() {
    if !require(&["skopeo", "umoci", "busybox"], true) {
        return;
    }
    let cat = catalogue().expect("test images");
    let work = tempfile::tempdir().unwrap();
    let root = umoci_unpack(&cat.image("layers").source, &[], work.path());
    for p in &cat.layers_present {
        assert!(root.join(p).symlink_metadata().is_ok(), "{p} should exist");
    }
    for p in &cat.layers_absent {
        assert!(
            root.join(p).symlink_metadata().is_err(),
            "{p} should be whited out"
        );
    }
    let mode = |p: &str| root.join(p).symlink_metadata().unwrap().mode() & 0o7777;
    assert_eq!(mode("usr-bin-suid"), 0o4755);
    assert_eq!(mode("data/added"), 0o640);
    assert_eq!(
        mode("data/sub"),
        0o755,
        "the top layer's mode for data/sub wins"
    );
    let ino = |p: &str| root.join(p).metadata().unwrap().ino();
    assert_eq!(ino("data/keep"), ino("data/keep-hard"));
    assert_eq!(
        std::fs::read_link(root.join("data/keep-link")).unwrap(),
        Path::new("/data/keep")
    );
    assert_eq!(
        std::fs::read(root.join("opq/new")).unwrap(),
        b"added with the opaque marker\n"
    );
    let mut value = [0u8; 16];
    let path = std::ffi::CString::new(
        root.join("data/xattr")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    // SAFETY: both pointers are valid for the lengths given.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            c"user.homerun".as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    assert_eq!(
        n,
        6,
        "xattr user.homerun: {}",
        std::io::Error::last_os_error()
    );
    assert_eq!(&value[..6], b"layer0");
}

#[test]
fn busybox_image_has_a_working_shell() {
    if !require(&["skopeo", "umoci", "busybox"], true) {
        return;
    }
    let cat = catalogue().expect("test images");
    let work = tempfile::tempdir().unwrap();
    let root = umoci_unpack(&cat.image("busybox").source, &[], work.path());
    let out = Command::new(CHROOT)
        .arg(&root)
        .args(["/bin/sh", "-c", "echo $((6*7)) && ls /bin | grep -cx true"])
        .env_clear()
        .env("PATH", "/bin")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n1\n");
}

#[test]
fn arm64_entries_hold_an_aarch64_executable() {
    if !require(&["skopeo", "umoci", "busybox"], true) {
        return;
    }
    let cat = catalogue().expect("test images");
    let work = tempfile::tempdir().unwrap();
    let root = umoci_unpack(
        &cat.image("arm64-only").source,
        &["--override-arch", "arm64"],
        work.path(),
    );
    let elf = std::fs::read(root.join("probe")).unwrap();
    assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 183, "EM_AARCH64");
}

/// The ELF has no interpreter (static) and is x86_64.
#[test]
fn probe_binary_is_static_x86_64() {
    let probe = testkit::static_probe().expect("static probe");
    let elf = std::fs::read(&probe).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 62, "EM_X86_64");
    let phoff = u64::from_le_bytes(elf[32..40].try_into().unwrap()) as usize;
    let phentsize = u16::from_le_bytes([elf[54], elf[55]]) as usize;
    let phnum = u16::from_le_bytes([elf[56], elf[57]]) as usize;
    let interp = (0..phnum).any(|i| {
        let off = phoff + i * phentsize;
        u32::from_le_bytes(elf[off..off + 4].try_into().unwrap()) == 3 // PT_INTERP
    });
    assert!(!interp, "{} has a PT_INTERP: not static", probe.display());
    assert!(std::fs::metadata(&probe).unwrap().permissions().mode() & 0o111 != 0);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child when the test ends, also on failure.
struct Reaper(std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get_root(port: u16) -> serde_json::Value {
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(
        testkit::http::wait_listening(addr, Duration::from_secs(30)),
        "probe never listened"
    );
    let r = testkit::http::get(addr, "/", Duration::from_secs(10)).unwrap();
    assert_eq!(r.status, 200);
    r.json()
}

#[test]
fn probe_runs_with_an_empty_environment_plus_port() {
    let probe = testkit::static_probe().expect("static probe");
    let port = free_port();
    let _child = Reaper(
        Command::new(&probe)
            .env_clear()
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let report = get_root(port);
    assert_eq!(
        report["env"],
        serde_json::json!({ "PORT": port.to_string() })
    );
    assert_eq!(report["argv"][0], probe.display().to_string());
    assert_eq!(report["stdin"], "eof");
    assert_eq!(report["files"]["/dev/null"]["type"], "char");
    assert!(report["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["target"] == "/"));
}

/// Unpacked alone into a directory and chrooted, the probe still serves: the image needs
/// nothing but the binary.
#[test]
fn probe_serves_from_its_bare_image_root() {
    if !require(&["busybox"], true) {
        return;
    }
    let cat = catalogue().expect("test images");
    let image = cat.image("probe");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            image
                .path
                .join("blobs/sha256")
                .join(image.digest.trim_start_matches("sha256:")),
        )
        .unwrap(),
    )
    .unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let blob = std::fs::File::open(image.path.join("blobs/sha256").join(layer)).unwrap();
    let root = tempfile::tempdir().unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(blob))
        .unpack(root.path())
        .unwrap();
    let entries: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["probe"], "the probe image holds the binary alone");

    let port = free_port();
    let _child = Reaper(
        Command::new(CHROOT)
            .arg(root.path())
            .arg("/probe")
            .env_clear()
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let report = get_root(port);
    assert_eq!(report["cwd"], "/");
    assert_eq!(report["argv"], serde_json::json!(["/probe"]));
    assert!(
        report["files"]["/etc/hosts"]["error"].is_string(),
        "no /etc/hosts in a bare root"
    );
}
