//! An image's root filesystem: an overlayfs mount of its shared, read-only layers with an
//! upper and work directory that the caller provides (the runtime puts them on
//! memory-backed storage charged to the instance).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::ImageError;

/// The kernel takes mount options in one page.
const MAX_MOUNT_OPTIONS: usize = 4095;

/// A mounted root filesystem; unmounted by [`Rootfs::unmount`] or on drop.
#[derive(Debug)]
pub struct Rootfs {
    target: PathBuf,
    mounted: bool,
}

fn cstring(path: &Path) -> Result<CString, ImageError> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| ImageError::Invalid(format!("path {} contains a NUL byte", path.display())))
}

/// Characters overlayfs' option parser gives meaning to.
fn check_option_path(path: &Path) -> Result<(), ImageError> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.iter().any(|b| matches!(b, b',' | b':' | b'\\')) {
        return Err(ImageError::Invalid(format!(
            "path {} contains ',', ':' or '\\', which overlayfs options cannot carry",
            path.display()
        )));
    }
    Ok(())
}

/// Values from <linux/mount.h> for the new mount API (stable kernel ABI).
mod uapi {
    pub const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
    pub const FSCONFIG_SET_STRING: libc::c_uint = 1;
    pub const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    pub const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;
    pub const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;
    pub const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
}

/// A file descriptor closed on drop.
struct Fd(libc::c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: we own this descriptor and close it once.
        unsafe { libc::close(self.0) };
    }
}

fn os_error(context: String) -> ImageError {
    ImageError::Io {
        context,
        source: std::io::Error::last_os_error(),
    }
}

/// Mounts overlayfs with the new mount API, one `lowerdir+` per layer (top first): no
/// option-string limit, so any number of layers. Needs Linux 6.8 or newer.
fn mount_layer_by_layer(
    layers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), ImageError> {
    // SAFETY: a valid NUL-terminated name; the result is checked.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), uapi::FSOPEN_CLOEXEC) };
    if fs < 0 {
        return Err(os_error("opening an overlayfs context (fsopen)".into()));
    }
    let fs = Fd(fs as libc::c_int);
    let set = |key: &std::ffi::CStr, value: &Path| -> Result<(), ImageError> {
        let c_value = cstring(value)?;
        // SAFETY: valid descriptor and NUL-terminated strings outliving the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.0,
                uapi::FSCONFIG_SET_STRING,
                key.as_ptr(),
                c_value.as_ptr(),
                0,
            )
        };
        if rc < 0 {
            let err = std::io::Error::last_os_error();
            let hint = if key == c"lowerdir+" && err.raw_os_error() == Some(libc::EINVAL) {
                " (overlayfs lowerdir+ needs Linux 6.8 or newer)"
            } else {
                ""
            };
            return Err(ImageError::Io {
                context: format!(
                    "overlayfs option {}={}{hint}",
                    key.to_string_lossy(),
                    value.display()
                ),
                source: err,
            });
        }
        Ok(())
    };
    for layer in layers.iter().rev() {
        set(c"lowerdir+", layer)?;
    }
    set(c"upperdir", upper)?;
    set(c"workdir", work)?;
    // SAFETY: valid descriptor; null key and value as FSCONFIG_CMD_CREATE requires.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.0,
            uapi::FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if rc < 0 {
        return Err(os_error(format!(
            "creating the overlay of {} layers",
            layers.len()
        )));
    }
    // SAFETY: valid descriptor; flags from the uapi.
    let mnt = unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.0,
            uapi::FSMOUNT_CLOEXEC,
            uapi::MOUNT_ATTR_NODEV,
        )
    };
    if mnt < 0 {
        return Err(os_error("fsmount of the overlay".into()));
    }
    let mnt = Fd(mnt as libc::c_int);
    let c_target = cstring(target)?;
    // SAFETY: valid descriptors and NUL-terminated paths.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.0,
            c"".as_ptr(),
            libc::AT_FDCWD,
            c_target.as_ptr(),
            uapi::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(os_error(format!(
            "attaching the overlay at {}",
            target.display()
        )));
    }
    Ok(())
}

/// Builds the overlayfs option string; `layers` are bottom first, as images list them.
pub fn overlay_options(
    layers: &[PathBuf],
    upper: &Path,
    work: &Path,
) -> Result<String, ImageError> {
    if layers.is_empty() {
        return Err(ImageError::Invalid(
            "an image needs at least one layer".into(),
        ));
    }
    for p in layers.iter().map(PathBuf::as_path).chain([upper, work]) {
        check_option_path(p)?;
    }
    // overlayfs wants the topmost lower layer first.
    let lower: Vec<String> = layers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    if options.len() > MAX_MOUNT_OPTIONS {
        return Err(ImageError::Invalid(format!(
            "{} layers make {} bytes of overlayfs options, over the kernel's {MAX_MOUNT_OPTIONS}",
            layers.len(),
            options.len()
        )));
    }
    Ok(options)
}

/// The classic `mount(2)` with every layer in one option string.
fn mount_with_options(options: &str, target: &Path) -> Result<(), ImageError> {
    let c_target = cstring(target)?;
    let c_options = CString::new(options)
        .map_err(|_| ImageError::Invalid("overlayfs options contain a NUL byte".into()))?;
    // SAFETY: every pointer is a valid NUL-terminated string that outlives the call.
    let rc = unsafe {
        libc::mount(
            c"overlay".as_ptr(),
            c_target.as_ptr(),
            c"overlay".as_ptr(),
            libc::MS_NODEV,
            c_options.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(os_error(format!(
            "mounting the image's overlay at {}",
            target.display()
        )));
    }
    Ok(())
}

impl Rootfs {
    /// Mounts the union of `layers` (bottom first) at `target`, writes going to `upper`.
    /// `upper` and `work` must be empty directories on the same filesystem. Layers that do
    /// not fit in one mount option string are given one by one (Linux 6.8+).
    pub fn mount(
        layers: &[PathBuf],
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> Result<Self, ImageError> {
        for layer in layers {
            if !layer.is_dir() {
                return Err(ImageError::Invalid(format!(
                    "layer directory {} is missing",
                    layer.display()
                )));
            }
        }
        match overlay_options(layers, upper, work) {
            Ok(options) => mount_with_options(&options, target)?,
            Err(ImageError::Invalid(why)) if why.contains("over the kernel's") => {
                mount_layer_by_layer(layers, upper, work, target)?
            }
            Err(e) => return Err(e),
        }
        Ok(Self {
            target: target.to_path_buf(),
            mounted: true,
        })
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    pub fn unmount(mut self) -> Result<(), ImageError> {
        self.unmount_inner()
    }

    fn unmount_inner(&mut self) -> Result<(), ImageError> {
        if !self.mounted {
            return Ok(());
        }
        let c_target = cstring(&self.target)?;
        // SAFETY: a valid NUL-terminated path.
        if unsafe { libc::umount2(c_target.as_ptr(), 0) } != 0 {
            return Err(ImageError::Io {
                context: format!("unmounting {}", self.target.display()),
                source: std::io::Error::last_os_error(),
            });
        }
        self.mounted = false;
        Ok(())
    }
}

impl Drop for Rootfs {
    fn drop(&mut self) {
        if let Err(e) = self.unmount_inner() {
            tracing::warn!("{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_list_the_top_layer_first_and_refuse_bad_paths() {
        let layers = vec![PathBuf::from("/l/bottom"), PathBuf::from("/l/top")];
        let o = overlay_options(&layers, Path::new("/u"), Path::new("/w")).unwrap();
        assert_eq!(o, "lowerdir=/l/top:/l/bottom,upperdir=/u,workdir=/w");
        assert!(overlay_options(&[], Path::new("/u"), Path::new("/w")).is_err());
        let bad = vec![PathBuf::from("/l/a:b")];
        assert!(overlay_options(&bad, Path::new("/u"), Path::new("/w")).is_err());
        let many: Vec<PathBuf> = (0..200)
            .map(|i| PathBuf::from(format!("/var/lib/homerun/images/layers/{i:064}")))
            .collect();
        let err = overlay_options(&many, Path::new("/u"), Path::new("/w")).unwrap_err();
        assert!(err.to_string().contains("over the kernel's"), "{err}");
    }
}
