//! Files only root may read: keys and tokens live in the data directory with mode 0600,
//! written whole (a temporary file renamed over the old one), so a crash never leaves half
//! a key behind.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::IdentityError;

/// Writes `contents` to `path` with mode 0600, atomically.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> Result<(), IdentityError> {
    let io = |e| IdentityError::io("writing", path, e);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}

/// Reads a private file; `None` when it does not exist. A file others may read is refused
/// rather than trusted: someone loosened it, and its secret may be known.
pub(crate) fn read_private(path: &Path) -> Result<Option<Vec<u8>>, IdentityError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(IdentityError::io("reading", path, e)),
    };
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(IdentityError::Insecure(format!(
            "{} has mode {:o}: it must be readable by its owner only (chmod 600)",
            path.display(),
            meta.permissions().mode() & 0o777
        )));
    }
    fs::read(path)
        .map(Some)
        .map_err(|e| IdentityError::io("reading", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_0600_and_refuses_loose_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/key");
        assert_eq!(read_private(&path).unwrap(), None);
        write_private(&path, b"secret").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read_private(&path).unwrap().unwrap(), b"secret");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_private(&path).unwrap_err().to_string();
        assert!(err.contains("mode 644"), "{err}");
    }
}
