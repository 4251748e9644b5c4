//! Integration tests for `image::unpack`: every rule of safe layer unpacking, with tars
//! built here (hostile ones byte by byte) and the real three-layer test image.

use std::ffi::CString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use image::unpack::{unpack_layer, Compression, UnpackError, UnpackSummary};
use sha2::{Digest, Sha256};

const MTIME: u64 = 1_700_000_000;

fn effective_ids() -> (u32, u32) {
    // SAFETY: geteuid and getegid cannot fail and touch no memory.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// Tests that need root (foreign owners, trusted.* xattrs) skip without it, except in CI
/// where they must run.
fn running_as_root(test: &str) -> bool {
    if std::env::var("CI").as_deref() == Ok("true") || effective_ids().0 == 0 {
        return true;
    }
    eprintln!("skipping {test}: needs root (set CI=true to force)");
    false
}

/// Builds a layer tar entry by entry, writing names as raw header bytes so that hostile
/// names the `tar` crate's own builder would refuse can be tested.
struct LayerTar {
    builder: tar::Builder<Vec<u8>>,
}

impl LayerTar {
    fn new() -> Self {
        LayerTar {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, name: &[u8], mode: u32, size: u64) -> tar::Header {
        let (uid, gid) = effective_ids();
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(uid.into());
        header.set_gid(gid.into());
        header.set_mtime(MTIME);
        header.set_size(size);
        let field = &mut header.as_old_mut().name;
        assert!(name.len() <= field.len(), "test names fit the old header");
        field[..name.len()].copy_from_slice(name);
        header
    }

    fn append(mut self, mut header: tar::Header, data: &[u8]) -> Self {
        header.set_cksum();
        self.builder
            .append(&header, data)
            .expect("append to in-memory tar");
        self
    }

    fn entry(
        self,
        kind: tar::EntryType,
        name: &[u8],
        mode: u32,
        data: &[u8],
        adjust: impl FnOnce(&mut tar::Header),
    ) -> Self {
        let mut header = Self::header(kind, name, mode, data.len() as u64);
        adjust(&mut header);
        self.append(header, data)
    }

    fn file(self, name: &str, contents: &str) -> Self {
        self.entry(
            tar::EntryType::Regular,
            name.as_bytes(),
            0o644,
            contents.as_bytes(),
            |_| {},
        )
    }

    fn raw_file(self, name: &[u8]) -> Self {
        self.entry(tar::EntryType::Regular, name, 0o644, b"x", |_| {})
    }

    fn dir(self, name: &str, mode: u32) -> Self {
        self.entry(
            tar::EntryType::Directory,
            name.as_bytes(),
            mode,
            b"",
            |_| {},
        )
    }

    fn link(self, kind: tar::EntryType, name: &str, target: &str) -> Self {
        self.entry(kind, name.as_bytes(), 0o777, b"", |header| {
            let field = &mut header.as_old_mut().linkname;
            field[..target.len()].copy_from_slice(target.as_bytes());
        })
    }

    fn symlink(self, name: &str, target: &str) -> Self {
        self.link(tar::EntryType::Symlink, name, target)
    }

    fn hard_link(self, name: &str, target: &str) -> Self {
        self.link(tar::EntryType::Link, name, target)
    }

    fn device(self, kind: tar::EntryType, name: &str, major: u32, minor: u32) -> Self {
        self.entry(kind, name.as_bytes(), 0o600, b"", |header| {
            header.set_device_major(major).expect("device major");
            header.set_device_minor(minor).expect("device minor");
        })
    }

    /// A PAX extended header ('x') for the next entry.
    fn pax(self, records: &[(&str, &[u8])]) -> Self {
        let mut body = Vec::new();
        for (key, value) in records {
            body.extend(pax_record(key, value));
        }
        self.entry(
            tar::EntryType::XHeader,
            b"PaxHeaders/entry",
            0o644,
            &body,
            |_| {},
        )
    }

    fn bytes(self) -> Vec<u8> {
        self.builder.into_inner().expect("finish in-memory tar")
    }
}

/// One `LEN key=value\n` PAX record; LEN counts its own digits.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3;
    let mut length = rest + 1;
    while length != rest + length.to_string().len() {
        length = rest + length.to_string().len();
    }
    let mut record = format!("{length} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

fn sha256_id(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip")
}

/// A layer unpacked into `<tempdir>/layer`.
struct Unpacked {
    parent: tempfile::TempDir,
    dest: PathBuf,
    result: Result<UnpackSummary, UnpackError>,
}

impl Unpacked {
    fn summary(&self) -> &UnpackSummary {
        match &self.result {
            Ok(summary) => summary,
            Err(err) => panic!("unpack failed: {err}"),
        }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dest.join(relative)
    }

    fn error(&self) -> String {
        match &self.result {
            Ok(summary) => panic!("unpack succeeded: {summary:?}"),
            Err(err) => err.to_string(),
        }
    }

    /// Nothing at `dest` and no `.partial-*` sibling: the parent is empty again.
    fn assert_nothing_left(&self) {
        assert!(
            fs::symlink_metadata(&self.dest).is_err(),
            "dest exists after a failure"
        );
        let leftovers: Vec<_> = fs::read_dir(self.parent.path())
            .expect("read parent")
            .map(|entry| entry.expect("dir entry").file_name())
            .collect();
        assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    }
}

fn unpack_compressed(data: &[u8], compression: Compression) -> Unpacked {
    let parent = tempfile::tempdir().expect("tempdir");
    let dest = parent.path().join("layer");
    let result = unpack_layer(data, compression, &dest);
    Unpacked {
        parent,
        dest,
        result,
    }
}

fn unpack(tar: &[u8]) -> Unpacked {
    unpack_compressed(tar, Compression::None)
}

/// Unpacks `tar`, expects an error containing `expected`, and checks nothing is left.
fn assert_refused(tar: &[u8], expected: &str) -> Unpacked {
    let unpacked = unpack(tar);
    let message = unpacked.error();
    assert!(
        message.contains(expected),
        "error {message:?} lacks {expected:?}"
    );
    unpacked.assert_nothing_left();
    unpacked
}

fn lgetxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let path = CString::new(path.as_os_str().as_bytes()).expect("path without NUL");
    let name = CString::new(name).expect("name without NUL");
    let mut value = vec![0_u8; 256];
    // SAFETY: both strings are NUL-terminated and `value` has `value.len()` writable bytes.
    let size = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    let size = usize::try_from(size).ok()?;
    value.truncate(size);
    Some(value)
}

fn assert_empty_dir(path: &Path) {
    let entries: Vec<_> = fs::read_dir(path).expect("read dir").collect();
    assert!(entries.is_empty(), "{path:?} was written to: {entries:?}");
}

// ---- basics, compression, diff_id ----

#[test]
fn unpacks_files_directories_symlinks_and_implied_parents() {
    let tar = LayerTar::new()
        .dir("etc", 0o755)
        .file("etc/hostname", "box\n")
        .symlink("etc/localtime", "/usr/share/zoneinfo/UTC")
        .file("usr/bin/tool", "#!/bin/sh\n")
        .bytes();
    let unpacked = unpack(&tar);
    let summary = unpacked.summary();
    assert_eq!(summary.entries, 4);
    assert_eq!(summary.bytes, 4 + 10);
    assert_eq!(
        fs::read_to_string(unpacked.path("etc/hostname")).expect("read"),
        "box\n"
    );
    assert_eq!(
        fs::read_link(unpacked.path("etc/localtime")).expect("readlink"),
        Path::new("/usr/share/zoneinfo/UTC")
    );
    let (uid, _) = effective_ids();
    for implied in ["usr", "usr/bin"] {
        let metadata = fs::symlink_metadata(unpacked.path(implied)).expect("implied dir");
        assert!(metadata.is_dir());
        assert_eq!(metadata.mode() & 0o7777, 0o755, "{implied}");
        assert_eq!(metadata.uid(), uid, "{implied}");
    }
    let root = fs::metadata(&unpacked.dest).expect("layer root");
    assert_eq!(root.mode() & 0o7777, 0o755);
}

#[test]
fn leading_dot_slash_and_slash_are_stripped() {
    let tar = LayerTar::new()
        .dir("./", 0o700)
        .file("./a", "a")
        .file("/b", "b")
        .file("//c/./d", "d")
        .bytes();
    let unpacked = unpack(&tar);
    assert_eq!(unpacked.summary().entries, 4);
    assert_eq!(fs::read_to_string(unpacked.path("a")).expect("a"), "a");
    assert_eq!(fs::read_to_string(unpacked.path("b")).expect("b"), "b");
    assert_eq!(fs::read_to_string(unpacked.path("c/d")).expect("d"), "d");
    // A `./` entry does not change the layer root.
    let root = fs::metadata(&unpacked.dest).expect("layer root");
    assert_eq!(root.mode() & 0o7777, 0o755);
}

#[test]
fn diff_id_is_sha256_of_the_raw_tar() {
    let tar = LayerTar::new().file("hello", "world").bytes();
    let unpacked = unpack(&tar);
    assert_eq!(unpacked.summary().diff_id, sha256_id(&tar));
}

#[test]
fn gzip_stream_unpacks_and_hashes_the_uncompressed_tar() {
    let tar = LayerTar::new().file("dir/file", "gzipped").bytes();
    let unpacked = unpack_compressed(&gzip(&tar), Compression::Gzip);
    assert_eq!(unpacked.summary().diff_id, sha256_id(&tar));
    assert_eq!(
        fs::read_to_string(unpacked.path("dir/file")).expect("read"),
        "gzipped"
    );
}

#[test]
fn zstd_stream_unpacks_and_hashes_the_uncompressed_tar() {
    let tar = LayerTar::new().file("dir/file", "zstd").bytes();
    let compressed = zstd::encode_all(&tar[..], 3).expect("zstd");
    let unpacked = unpack_compressed(&compressed, Compression::Zstd);
    assert_eq!(unpacked.summary().diff_id, sha256_id(&tar));
    assert_eq!(
        fs::read_to_string(unpacked.path("dir/file")).expect("read"),
        "zstd"
    );
}

#[test]
fn corrupt_gzip_stream_leaves_nothing() {
    let tar = LayerTar::new().file("a", &"x".repeat(100_000)).bytes();
    let mut compressed = gzip(&tar);
    compressed.truncate(compressed.len() / 2);
    let unpacked = unpack_compressed(&compressed, Compression::Gzip);
    assert!(unpacked.result.is_err());
    unpacked.assert_nothing_left();

    let unpacked = unpack_compressed(b"not zstd at all", Compression::Zstd);
    assert!(unpacked.error().contains("zstd"), "{}", unpacked.error());
    unpacked.assert_nothing_left();

    let unpacked = unpack_compressed(b"not gzip at all", Compression::Gzip);
    assert!(unpacked.error().contains("gzip"), "{}", unpacked.error());
    unpacked.assert_nothing_left();
}

#[test]
fn truncated_tar_entry_is_refused() {
    let tar = LayerTar::new().file("big", &"x".repeat(4096)).bytes();
    let unpacked = unpack(&tar[..512 + 1000]);
    assert!(
        unpacked.error().contains("\"big\" is truncated"),
        "{}",
        unpacked.error()
    );
    unpacked.assert_nothing_left();
}

#[test]
fn existing_destination_is_refused_and_untouched() {
    let parent = tempfile::tempdir().expect("tempdir");
    let dest = parent.path().join("layer");
    fs::create_dir(&dest).expect("mkdir");
    fs::write(dest.join("mine"), "keep").expect("write");
    let tar = LayerTar::new().file("a", "a").bytes();
    let err = unpack_layer(&tar[..], Compression::None, &dest).expect_err("dest exists");
    assert!(matches!(err, UnpackError::DestinationExists(_)), "{err}");
    assert_eq!(fs::read_to_string(dest.join("mine")).expect("read"), "keep");
    assert_eq!(fs::read_dir(parent.path()).expect("read").count(), 1);
}

#[test]
fn large_files_stream_through() {
    const SIZE: u64 = 64 * 1024 * 1024;
    // Generated lazily: neither the test nor the unpacker ever holds the file in memory.
    let tar_stream = || {
        let mut header = LayerTar::header(tar::EntryType::Regular, b"big", 0o644, SIZE);
        header.set_cksum();
        io::Cursor::new(header.as_bytes().to_vec())
            .chain(io::repeat(b'z').take(SIZE))
            .chain(io::repeat(0).take(1024))
    };
    let mut hasher = Sha256::new();
    io::copy(&mut tar_stream(), &mut hasher).expect("hash");
    let expected = format!("sha256:{}", hex::encode(hasher.finalize()));

    let parent = tempfile::tempdir().expect("tempdir");
    let dest = parent.path().join("layer");
    let summary = unpack_layer(tar_stream(), Compression::None, &dest).expect("unpack");
    assert_eq!(summary.bytes, SIZE);
    assert_eq!(summary.diff_id, expected);
    assert_eq!(fs::metadata(dest.join("big")).expect("big").len(), SIZE);
}

#[test]
fn gnu_long_names_are_decoded() {
    let long = format!("{}/file", "d".repeat(150));
    let mut builder = tar::Builder::new(Vec::new());
    let (uid, gid) = effective_ids();
    let mut header = tar::Header::new_gnu();
    header.set_size(4);
    header.set_mode(0o644);
    header.set_uid(uid.into());
    header.set_gid(gid.into());
    builder
        .append_data(&mut header, &long, &b"long"[..])
        .expect("append");
    let tar = builder.into_inner().expect("finish");
    let unpacked = unpack(&tar);
    unpacked.summary();
    assert_eq!(
        fs::read_to_string(unpacked.path(&long)).expect("read"),
        "long"
    );
}

// ---- refused names ----

#[test]
fn dotdot_components_are_refused() {
    for name in ["../etc/passwd", "a/../../x", "a/.."] {
        let tar = LayerTar::new().raw_file(name.as_bytes()).bytes();
        assert_refused(
            &tar,
            &format!("layer entry {name:?} escapes the layer (\"..\" component)"),
        );
    }
}

#[test]
fn empty_names_are_refused() {
    let tar = LayerTar::new().file("fine", "x").raw_file(b"").bytes();
    assert_refused(&tar, "has an empty name");
    let tar = LayerTar::new().raw_file(b"./").bytes();
    assert_refused(&tar, "layer entry \"./\" has an empty name");
}

#[test]
fn non_utf8_names_are_refused() {
    let tar = LayerTar::new().raw_file(b"caf\xe9").bytes();
    assert_refused(&tar, r#"layer entry name is not UTF-8: "caf\xe9""#);
}

// ---- symlinks and hard links never lead outside ----

#[test]
fn absolute_symlink_to_outside_cannot_be_written_through() {
    let outside = tempfile::tempdir().expect("outside");
    let target = outside.path().to_str().expect("utf-8 tempdir");
    let tar = LayerTar::new()
        .symlink("evil", target)
        .file("evil/pwned", "owned")
        .bytes();
    assert_refused(&tar, "layer entry \"evil/pwned\" escapes the layer");
    assert_empty_dir(outside.path());

    let tar = LayerTar::new()
        .symlink("evil", target)
        .dir("evil/sub", 0o755)
        .bytes();
    assert_refused(&tar, "layer entry \"evil/sub\" escapes the layer");
    assert_empty_dir(outside.path());
}

#[test]
fn dotdot_symlink_chains_cannot_be_written_through() {
    let cases = [
        LayerTar::new()
            .symlink("evil", "..")
            .file("evil/pwned", "x"),
        LayerTar::new()
            .dir("d", 0o755)
            .symlink("d/up", "../..")
            .file("d/up/pwned", "x"),
        LayerTar::new()
            .symlink("a", ".")
            .symlink("b", "a/a/..")
            .file("b/pwned", "x"),
        LayerTar::new()
            .dir("d", 0o755)
            .symlink("d/up", "..")
            .symlink("d/upup", "up/..")
            .file("d/upup/pwned", "x"),
        LayerTar::new()
            .symlink("evil", "..")
            .file("evil/new/pwned", "x"),
    ];
    for tar in cases {
        let unpacked = assert_refused(&tar.bytes(), "pwned\" escapes the layer");
        let leftovers = fs::read_dir(unpacked.parent.path())
            .expect("parent")
            .count();
        assert_eq!(leftovers, 0);
    }
}

#[test]
fn symlink_inside_the_layer_may_be_written_through() {
    let tar = LayerTar::new()
        .dir("usr/lib", 0o755)
        .symlink("lib", "usr/lib")
        .file("lib/libc.so", "elf")
        .bytes();
    let unpacked = unpack(&tar);
    unpacked.summary();
    assert_eq!(
        fs::read_to_string(unpacked.path("usr/lib/libc.so")).expect("read"),
        "elf"
    );
    assert!(fs::symlink_metadata(unpacked.path("lib"))
        .expect("lib")
        .is_symlink());
}

#[test]
fn symlink_entries_may_point_anywhere() {
    let tar = LayerTar::new()
        .symlink("shadow", "/etc/shadow")
        .symlink("up", "../../../../x")
        .bytes();
    let unpacked = unpack(&tar);
    unpacked.summary();
    assert_eq!(
        fs::read_link(unpacked.path("shadow")).expect("readlink"),
        Path::new("/etc/shadow")
    );
    assert_eq!(
        fs::read_link(unpacked.path("up")).expect("readlink"),
        Path::new("../../../../x")
    );
}

#[test]
fn a_file_replacing_a_symlink_does_not_follow_it() {
    let outside = tempfile::tempdir().expect("outside");
    let target = outside.path().join("victim");
    let tar = LayerTar::new()
        .symlink("f", target.to_str().expect("utf-8 tempdir"))
        .file("f", "replaced")
        .bytes();
    let unpacked = unpack(&tar);
    unpacked.summary();
    let metadata = fs::symlink_metadata(unpacked.path("f")).expect("f");
    assert!(metadata.is_file());
    assert_eq!(
        fs::read_to_string(unpacked.path("f")).expect("read"),
        "replaced"
    );
    assert_empty_dir(outside.path());
}

#[test]
fn hard_links_link_to_earlier_entries() {
    let tar = LayerTar::new()
        .file("data/keep", "kept")
        .hard_link("data/keep-hard", "data/keep")
        .hard_link("other/alias", "./data/keep")
        .bytes();
    let unpacked = unpack(&tar);
    assert_eq!(unpacked.summary().entries, 3);
    let original = fs::metadata(unpacked.path("data/keep")).expect("keep");
    for link in ["data/keep-hard", "other/alias"] {
        assert_eq!(
            fs::metadata(unpacked.path(link)).expect(link).ino(),
            original.ino()
        );
    }
    assert_eq!(original.nlink(), 3);
}

#[test]
fn hard_links_outside_the_layer_are_refused() {
    let tar = LayerTar::new().hard_link("passwd", "/etc/passwd").bytes();
    assert_refused(
        &tar,
        "is a hard link to \"/etc/passwd\", which is not in the layer",
    );

    let tar = LayerTar::new().hard_link("x", "../../x").bytes();
    assert_refused(
        &tar,
        "layer entry \"x\" escapes the layer (hard link target \"../../x\"",
    );

    let tar = LayerTar::new()
        .symlink("evil", "/etc")
        .hard_link("passwd", "evil/passwd")
        .bytes();
    assert_refused(&tar, "layer entry \"passwd\" escapes the layer");

    let tar = LayerTar::new()
        .symlink("evil", "../..")
        .hard_link("passwd", "evil/etc/passwd")
        .bytes();
    assert_refused(&tar, "layer entry \"passwd\" escapes the layer");
}

#[test]
fn hard_links_to_missing_entries_are_refused() {
    let tar = LayerTar::new()
        .file("a", "a")
        .hard_link("b", "nope")
        .bytes();
    assert_refused(
        &tar,
        "layer entry \"b\" is a hard link to \"nope\", which is not in the layer",
    );
    let tar = LayerTar::new().hard_link("b", "missing/dir/file").bytes();
    assert_refused(&tar, "which is not in the layer");
}

// ---- devices, FIFOs, whiteouts ----

#[test]
fn devices_are_refused_with_their_numbers() {
    let tar = LayerTar::new()
        .device(tar::EntryType::Block, "dev/sda", 8, 0)
        .bytes();
    assert_refused(
        &tar,
        "layer entry \"dev/sda\" is a block device (8:0); devices are not allowed",
    );
    let tar = LayerTar::new()
        .device(tar::EntryType::Char, "dev/null", 1, 3)
        .bytes();
    assert_refused(&tar, "\"dev/null\" is a character device (1:3)");
    // A whiteout is spelled `.wh.NAME`, never as a device in the tar.
    let tar = LayerTar::new()
        .device(tar::EntryType::Char, "gone", 0, 0)
        .bytes();
    assert_refused(&tar, "\"gone\" is a character device (0:0)");
}

#[test]
fn fifos_are_created() {
    let tar = LayerTar::new()
        .entry(tar::EntryType::Fifo, b"run/pipe", 0o640, b"", |_| {})
        .bytes();
    let unpacked = unpack(&tar);
    unpacked.summary();
    let metadata = fs::symlink_metadata(unpacked.path("run/pipe")).expect("fifo");
    assert!(metadata.file_type().is_fifo());
    assert_eq!(metadata.mode() & 0o7777, 0o640);
}

#[test]
fn whiteouts_become_character_devices_0_0() {
    if !running_as_root("whiteouts_become_character_devices_0_0") {
        return;
    }
    let tar = LayerTar::new()
        .dir("data", 0o755)
        .file("data/.wh.gone", "")
        .file("deep/dir/.wh.x", "")
        .file(".wh..wh.plnk", "")
        .bytes();
    let unpacked = unpack(&tar);
    unpacked.summary();
    for (whiteout, marker) in [
        ("data/gone", "data/.wh.gone"),
        ("deep/dir/x", "deep/dir/.wh.x"),
        (".wh.plnk", ".wh..wh.plnk"),
    ] {
        let metadata = fs::symlink_metadata(unpacked.path(whiteout)).expect(whiteout);
        assert!(metadata.file_type().is_char_device(), "{whiteout}");
        assert_eq!(metadata.rdev(), 0, "{whiteout}");
        assert!(
            fs::symlink_metadata(unpacked.path(marker)).is_err(),
            "{marker}"
        );
    }
}

#[test]
fn a_whiteout_replaces_an_earlier_entry_of_that_name() {
    if !running_as_root("a_whiteout_replaces_an_earlier_entry_of_that_name") {
        return;
    }
    let tar = LayerTar::new()
        .file("d/x/file", "x")
        .file("d/.wh.x", "")
        .bytes();
    let unpacked = unpack(&tar);
    unpacked.summary();
    let metadata = fs::symlink_metadata(unpacked.path("d/x")).expect("whiteout");
    assert!(metadata.file_type().is_char_device());
}

#[test]
fn opaque_markers_set_the_overlay_xattr() {
    if !running_as_root("opaque_markers_set_the_overlay_xattr") {
        return;
    }
    let tar = LayerTar::new()
        .dir("opq", 0o755)
        .file("opq/.wh..wh..opq", "")
        .file("opq/new", "new")
        .file("implied/dir/.wh..wh..opq", "")
        .bytes();
    let unpacked = unpack(&tar);
    unpacked.summary();
    for dir in ["opq", "implied/dir"] {
        assert!(unpacked.path(dir).is_dir(), "{dir}");
        assert_eq!(
            lgetxattr(&unpacked.path(dir), "trusted.overlay.opaque").as_deref(),
            Some(&b"y"[..]),
            "{dir}"
        );
    }
    assert!(fs::symlink_metadata(unpacked.path("opq/.wh..wh..opq")).is_err());
    assert_eq!(
        fs::read_to_string(unpacked.path("opq/new")).expect("new"),
        "new"
    );
    assert_eq!(
        lgetxattr(&unpacked.path("implied"), "trusted.overlay.opaque"),
        None
    );
}

#[test]
fn whiteouts_without_a_name_are_refused() {
    let tar = LayerTar::new().file("a/.wh.", "").bytes();
    assert_refused(&tar, "layer entry \"a/.wh.\" is not a valid whiteout");
    let tar = LayerTar::new().file(".wh...", "").bytes();
    assert_refused(&tar, "is not a valid whiteout");
}

// ---- metadata ----

#[test]
fn special_mode_bits_are_kept() {
    let tar = LayerTar::new()
        .entry(tar::EntryType::Regular, b"bin/su", 0o4755, b"elf", |_| {})
        .entry(tar::EntryType::Regular, b"bin/wall", 0o2755, b"elf", |_| {})
        .dir("tmp", 0o1777)
        .dir("private", 0o700)
        .bytes();
    let unpacked = unpack(&tar);
    unpacked.summary();
    for (path, mode) in [
        ("bin/su", 0o4755),
        ("bin/wall", 0o2755),
        ("tmp", 0o1777),
        ("private", 0o700),
    ] {
        let metadata = fs::symlink_metadata(unpacked.path(path)).expect(path);
        assert_eq!(metadata.mode() & 0o7777, mode, "{path}");
    }
}

#[test]
fn owners_are_kept_and_setuid_survives_chown() {
    if !running_as_root("owners_are_kept_and_setuid_survives_chown") {
        return;
    }
    let owned = |header: &mut tar::Header| {
        header.set_uid(1234);
        header.set_gid(5678);
    };
    let tar = LayerTar::new()
        .entry(tar::EntryType::Directory, b"home/user", 0o2750, b"", owned)
        .entry(
            tar::EntryType::Regular,
            b"home/user/tool",
            0o6755,
            b"elf",
            owned,
        )
        .entry(
            tar::EntryType::Symlink,
            b"home/user/link",
            0o777,
            b"",
            |header| {
                owned(header);
                header.as_old_mut().linkname[..4].copy_from_slice(b"tool");
            },
        )
        .entry(tar::EntryType::Fifo, b"home/user/pipe", 0o600, b"", owned)
        .bytes();
    let unpacked = unpack(&tar);
    unpacked.summary();
    for (path, mode) in [
        ("home/user", Some(0o2750)),
        ("home/user/tool", Some(0o6755)),
        ("home/user/link", None),
        ("home/user/pipe", Some(0o600)),
    ] {
        let metadata = fs::symlink_metadata(unpacked.path(path)).expect(path);
        assert_eq!((metadata.uid(), metadata.gid()), (1234, 5678), "{path}");
        if let Some(mode) = mode {
            assert_eq!(metadata.mode() & 0o7777, mode, "{path}");
        }
    }
    let implied = fs::metadata(unpacked.path("home")).expect("home");
    assert_eq!((implied.uid(), implied.gid()), (0, 0));
}

#[test]
fn mtimes_are_kept_for_files_symlinks_fifos_and_directories() {
    let tar = LayerTar::new()
        .dir("dir", 0o755)
        .file("dir/file", "x")
        .symlink("dir/link", "file")
        .entry(tar::EntryType::Fifo, b"dir/pipe", 0o644, b"", |_| {})
        .dir("dir/sub", 0o755)
        .pax(&[("mtime", b"1600000000.25")])
        .file("dir/sub/precise", "later entry in an earlier dir")
        .bytes();
    let unpacked = unpack(&tar);
    unpacked.summary();
    for path in ["dir", "dir/file", "dir/link", "dir/pipe", "dir/sub"] {
        let metadata = fs::symlink_metadata(unpacked.path(path)).expect(path);
        assert_eq!(metadata.mtime(), MTIME as i64, "{path}");
    }
    let precise = fs::metadata(unpacked.path("dir/sub/precise")).expect("precise");
    assert_eq!(
        (precise.mtime(), precise.mtime_nsec()),
        (1_600_000_000, 250_000_000)
    );
}

#[test]
fn pax_xattrs_are_kept() {
    let tar = LayerTar::new()
        .pax(&[("SCHILY.xattr.user.note", b"hello")])
        .file("file", "x")
        .pax(&[("SCHILY.xattr.user.dir", b"\x00binary\xff")])
        .dir("dir", 0o755)
        .bytes();
    let unpacked = unpack(&tar);
    unpacked.summary();
    assert_eq!(
        lgetxattr(&unpacked.path("file"), "user.note").as_deref(),
        Some(&b"hello"[..])
    );
    assert_eq!(
        lgetxattr(&unpacked.path("dir"), "user.dir").as_deref(),
        Some(&b"\x00binary\xff"[..])
    );
}

#[test]
fn security_capabilities_survive_chown() {
    if !running_as_root("security_capabilities_survive_chown") {
        return;
    }
    // VFS_CAP_REVISION_2 with CAP_NET_RAW (bit 13) permitted and effective.
    let capability: [u8; 20] = [
        0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let tar = LayerTar::new()
        .pax(&[("SCHILY.xattr.security.capability", &capability)])
        .entry(
            tar::EntryType::Regular,
            b"bin/ping",
            0o755,
            b"elf",
            |header| {
                header.set_uid(1000);
            },
        )
        .bytes();
    let unpacked = unpack(&tar);
    unpacked.summary();
    assert_eq!(
        lgetxattr(&unpacked.path("bin/ping"), "security.capability").as_deref(),
        Some(&capability[..])
    );
}

#[test]
fn reserved_overlay_xattrs_are_refused() {
    let tar = LayerTar::new()
        .pax(&[("SCHILY.xattr.trusted.overlay.redirect", b"/etc")])
        .dir("d", 0o755)
        .bytes();
    assert_refused(&tar, "layer entry \"d\" sets the reserved overlayfs xattr");
}

#[test]
fn later_entries_replace_earlier_ones() {
    let tar = LayerTar::new()
        .file("a", "one")
        .file("a", "two")
        .file("d/inner", "x")
        .file("d", "now a file")
        .dir("m", 0o755)
        .file("m/keep", "kept")
        .dir("m", 0o700)
        .bytes();
    let unpacked = unpack(&tar);
    unpacked.summary();
    assert_eq!(fs::read_to_string(unpacked.path("a")).expect("a"), "two");
    assert_eq!(
        fs::read_to_string(unpacked.path("d")).expect("d"),
        "now a file"
    );
    assert_eq!(
        fs::read_to_string(unpacked.path("m/keep")).expect("keep"),
        "kept"
    );
    let merged = fs::metadata(unpacked.path("m")).expect("m");
    assert_eq!(merged.permissions().mode() & 0o7777, 0o700);
}

#[test]
fn a_directory_entry_replaces_an_earlier_file() {
    let tar = LayerTar::new()
        .file("f", "was a file")
        .dir("f", 0o755)
        .file("f/inner", "now a dir")
        .bytes();
    let unpacked = unpack(&tar);
    unpacked.summary();
    assert_eq!(
        fs::read_to_string(unpacked.path("f/inner")).expect("inner"),
        "now a dir"
    );
}

// ---- the real test image ----

fn read_json(path: &Path) -> serde_json::Value {
    let text = fs::read(path).unwrap_or_else(|err| panic!("reading {path:?}: {err}"));
    serde_json::from_slice(&text).unwrap_or_else(|err| panic!("parsing {path:?}: {err}"))
}

fn blob_path(layout: &Path, digest: &serde_json::Value) -> PathBuf {
    let digest = digest.as_str().expect("digest string");
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    layout.join("blobs/sha256").join(hex)
}

#[test]
fn real_three_layer_image_unpacks_with_matching_diff_ids() {
    let layout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/testimages/oci/layers");
    if !layout.is_dir() {
        eprintln!("skipping: {layout:?} missing; run `cargo run -p testkit -- build-images`");
        return;
    }
    if !running_as_root("real_three_layer_image_unpacks_with_matching_diff_ids") {
        return;
    }
    let index = read_json(&layout.join("index.json"));
    let manifest = read_json(&blob_path(&layout, &index["manifests"][0]["digest"]));
    let config = read_json(&blob_path(&layout, &manifest["config"]["digest"]));
    let layers = manifest["layers"].as_array().expect("layers");
    let diff_ids = config["rootfs"]["diff_ids"].as_array().expect("diff_ids");
    assert_eq!(layers.len(), 3);
    assert_eq!(diff_ids.len(), layers.len());

    let parent = tempfile::tempdir().expect("tempdir");
    for (i, (layer, diff_id)) in layers.iter().zip(diff_ids).enumerate() {
        let media_type = layer["mediaType"].as_str().expect("mediaType");
        let compression = if media_type.ends_with("+gzip") {
            Compression::Gzip
        } else if media_type.ends_with("+zstd") {
            Compression::Zstd
        } else {
            Compression::None
        };
        let blob = fs::File::open(blob_path(&layout, &layer["digest"])).expect("open blob");
        let dest = parent.path().join(format!("layer-{i}"));
        let summary = unpack_layer(io::BufReader::new(blob), compression, &dest)
            .unwrap_or_else(|err| panic!("layer {i} ({media_type}): {err}"));
        assert_eq!(
            Some(summary.diff_id.as_str()),
            diff_id.as_str(),
            "layer {i}"
        );
        assert!(summary.entries > 0, "layer {i}");
    }
    let layer = |i: usize, path: &str| parent.path().join(format!("layer-{i}")).join(path);
    let keep = fs::metadata(layer(0, "data/keep")).expect("data/keep");
    let keep_hard = fs::metadata(layer(0, "data/keep-hard")).expect("data/keep-hard");
    assert_eq!(keep.ino(), keep_hard.ino());
    assert_eq!(
        fs::read_link(layer(0, "data/keep-link")).expect("keep-link"),
        Path::new("/data/keep")
    );
    let gone = fs::symlink_metadata(layer(1, "data/gone")).expect("whiteout");
    assert!(gone.file_type().is_char_device() && gone.rdev() == 0);
    assert_eq!(
        lgetxattr(&layer(1, "opq"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    let deep = fs::symlink_metadata(layer(2, "data/sub/deep")).expect("whiteout");
    assert!(deep.file_type().is_char_device());
    assert!(fs::metadata(layer(0, "probe")).expect("probe").len() > 0);
    let suid = fs::metadata(layer(0, "usr-bin-suid")).expect("usr-bin-suid");
    assert_eq!(suid.mode() & 0o7777, 0o4755);
    assert_eq!(
        lgetxattr(&layer(0, "data/xattr"), "user.homerun").as_deref(),
        Some(&b"layer0"[..])
    );

    let names: Vec<_> = fs::read_dir(parent.path())
        .expect("parent")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 3, "only the three layers remain: {names:?}");
}
