//! Root filesystems over many layers: past the one-page limit of a mount option string.

use std::path::PathBuf;

#[test]
fn a_hundred_and_twenty_layers_mount_in_order() {
    if !testkit::require(&[], true) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    // Long paths, as under /var/lib/homerun/images/layers/<64 hex>.
    let base = work.path().join("images/layers");
    let layers: Vec<PathBuf> = (0..120)
        .map(|i| {
            let dir = base.join(format!("{i:064}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("file{i}")), i.to_string()).unwrap();
            // Every layer writes `top`: the highest layer must win.
            std::fs::write(dir.join("top"), i.to_string()).unwrap();
            dir
        })
        .collect();
    let options =
        image::rootfs::overlay_options(&layers, &work.path().join("u"), &work.path().join("w"));
    assert!(
        options.is_err(),
        "this many layers do not fit one option string"
    );
    let (upper, wdir, target) = (
        work.path().join("upper"),
        work.path().join("work"),
        work.path().join("root"),
    );
    for d in [&upper, &wdir, &target] {
        std::fs::create_dir(d).unwrap();
    }
    let rootfs = image::rootfs::Rootfs::mount(&layers, &upper, &wdir, &target).unwrap();
    assert_eq!(std::fs::read_to_string(target.join("top")).unwrap(), "119");
    for i in [0, 57, 119] {
        assert_eq!(
            std::fs::read_to_string(target.join(format!("file{i}"))).unwrap(),
            i.to_string()
        );
    }
    rootfs.unmount().unwrap();
    assert!(!target.join("top").exists());
}
