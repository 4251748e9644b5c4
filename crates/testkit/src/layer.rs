//! Builds image layers: tar archives of exact entries (whiteouts, links, modes, owners,
//! xattrs), compressed as an image manifest says.

use std::io::Write;

use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use crate::error::{IoContext, Result};

/// Every entry gets this mtime, so the same inputs make the same digests.
pub const MTIME: u64 = 1_700_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// A finished blob: its bytes and the digests a manifest and a config name it by.
#[derive(Clone, Debug)]
pub struct Layer {
    pub bytes: Vec<u8>,
    /// Digest of the blob as stored (compressed).
    pub digest: String,
    /// Digest of the uncompressed tar (`rootfs.diff_ids` in the config).
    pub diff_id: String,
    pub compression: Compression,
}

impl Layer {
    pub fn oci_media_type(&self) -> &'static str {
        match self.compression {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    pub fn docker_media_type(&self) -> Result<&'static str> {
        match self.compression {
            Compression::Gzip => Ok("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Compression::None => Ok("application/vnd.docker.image.rootfs.diff.tar"),
            Compression::Zstd => Err(crate::Error::Invalid(
                "Docker schema2 has no zstd layer type".into(),
            )),
        }
    }
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Appends entries to an in-memory tar.
pub struct LayerBuilder {
    tar: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

fn header(kind: EntryType, mode: u32, uid: u64, gid: u64, size: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_size(size);
    h.set_mtime(MTIME);
    h
}

impl LayerBuilder {
    pub fn new() -> Self {
        Self {
            tar: tar::Builder::new(Vec::new()),
        }
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> Result<&mut Self> {
        self.dir_owned(path, mode, 0, 0)
    }

    pub fn dir_owned(&mut self, path: &str, mode: u32, uid: u64, gid: u64) -> Result<&mut Self> {
        let mut h = header(EntryType::Directory, mode, uid, gid, 0);
        self.tar
            .append_data(&mut h, path, std::io::empty())
            .context(|| format!("tar entry {path}"))?;
        Ok(self)
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> Result<&mut Self> {
        let mut h = header(EntryType::Regular, mode, 0, 0, data.len() as u64);
        self.tar
            .append_data(&mut h, path, data)
            .context(|| format!("tar entry {path}"))?;
        Ok(self)
    }

    /// A regular file carrying extended attributes, as PAX `SCHILY.xattr.*` records.
    pub fn file_with_xattrs(
        &mut self,
        path: &str,
        mode: u32,
        data: &[u8],
        xattrs: &[(&str, &[u8])],
    ) -> Result<&mut Self> {
        let records: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
            .collect();
        self.tar
            .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), *v)))
            .context(|| format!("pax header for {path}"))?;
        self.file(path, mode, data)
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> Result<&mut Self> {
        let mut h = header(EntryType::Symlink, 0o777, 0, 0, 0);
        self.tar
            .append_link(&mut h, path, target)
            .context(|| format!("tar symlink {path}"))?;
        Ok(self)
    }

    pub fn hardlink(&mut self, path: &str, target: &str) -> Result<&mut Self> {
        let mut h = header(EntryType::Link, 0o644, 0, 0, 0);
        self.tar
            .append_link(&mut h, path, target)
            .context(|| format!("tar hard link {path}"))?;
        Ok(self)
    }

    /// Deletes `path` from the layers below (OCI whiteout `.wh.NAME`).
    pub fn whiteout(&mut self, path: &str) -> Result<&mut Self> {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let wh = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&wh, 0o644, b"")
    }

    /// Hides everything the layers below have in `dir` (OCI opaque whiteout).
    pub fn opaque(&mut self, dir: &str) -> Result<&mut Self> {
        self.file(
            &format!("{}/.wh..wh..opq", dir.trim_end_matches('/')),
            0o644,
            b"",
        )
    }

    pub fn finish(self, compression: Compression) -> Result<Layer> {
        let tar = self.tar.into_inner().context(|| "finishing tar".into())?;
        let diff_id = sha256_digest(&tar);
        let bytes = match compression {
            Compression::None => tar,
            Compression::Gzip => {
                let mut gz =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                gz.write_all(&tar).context(|| "gzip".into())?;
                gz.finish().context(|| "gzip".into())?
            }
            Compression::Zstd => zstd::encode_all(&tar[..], 3).context(|| "zstd".into())?,
        };
        Ok(Layer {
            digest: sha256_digest(&bytes),
            diff_id,
            bytes,
            compression,
        })
    }
}

/// The smallest real aarch64 Linux executable: `exit(0)`. It stands in the arm64 entries of
/// the multi-platform test images, whose point is that homerun must never pick them.
pub fn aarch64_exit0_elf() -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    let code: [u32; 3] = [
        0xd280_0000, // movz x0, #0
        0xd280_0ba8, // movz x8, #93 (exit)
        0xd400_0001, // svc #0
    ];
    let total = 64 + 56 + code.len() * 4;
    let mut elf = Vec::with_capacity(total);
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    elf.extend_from_slice(&[0; 8]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&(BASE + 64 + 56).to_le_bytes()); // entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // phoff
    elf.extend_from_slice(&0u64.to_le_bytes()); // shoff
    elf.extend_from_slice(&0u32.to_le_bytes()); // flags
    for v in [64u16, 56, 1, 64, 0, 0] {
        elf.extend_from_slice(&v.to_le_bytes());
    }
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // R+X
    for v in [0, BASE, BASE, total as u64, total as u64, 0x1000] {
        elf.extend_from_slice(&v.to_le_bytes());
    }
    for word in code {
        elf.extend_from_slice(&word.to_le_bytes());
    }
    elf
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn entries(layer: &Layer) -> Vec<(String, EntryType, u32)> {
        let raw = match layer.compression {
            Compression::None => layer.bytes.clone(),
            Compression::Gzip => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&layer.bytes[..])
                    .read_to_end(&mut out)
                    .unwrap();
                out
            }
            Compression::Zstd => zstd::decode_all(&layer.bytes[..]).unwrap(),
        };
        assert_eq!(sha256_digest(&raw), layer.diff_id);
        let mut ar = tar::Archive::new(&raw[..]);
        ar.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.entry_type(),
                    h.mode().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn whiteouts_links_and_modes_round_trip() {
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let mut b = LayerBuilder::new();
            b.dir("data", 0o755).unwrap();
            b.file("data/suid", 0o4755, b"x").unwrap();
            b.symlink("data/link", "/etc/passwd").unwrap();
            b.hardlink("data/hard", "data/suid").unwrap();
            b.whiteout("data/gone").unwrap();
            b.opaque("opq/").unwrap();
            let layer = b.finish(compression).unwrap();
            assert_eq!(layer.digest, sha256_digest(&layer.bytes));
            let got = entries(&layer);
            assert_eq!(got[1], ("data/suid".into(), EntryType::Regular, 0o4755));
            assert_eq!(got[2].1, EntryType::Symlink);
            assert_eq!(got[3].1, EntryType::Link);
            assert_eq!(got[4].0, "data/.wh.gone");
            assert_eq!(got[5].0, "opq/.wh..wh..opq");
        }
    }

    #[test]
    fn aarch64_elf_header_is_well_formed() {
        let elf = aarch64_exit0_elf();
        assert_eq!(&elf[..4], b"\x7fELF");
        assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 183);
        assert_eq!(elf.len(), 64 + 56 + 12);
    }
}
