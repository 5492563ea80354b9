//! BTRFS subvolumes: creating one, telling one from a directory, and read-only
//! snapshots for backups.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use rustix::fd::{AsFd as _, OwnedFd};
use rustix::fs::{AtFlags, StatxFlags};
use rustix::io::Errno;

use crate::dir::open_dir;
use crate::error::{Error, Result, from_errno, from_io};
use crate::filesystem::Filesystem;
use crate::path;
use crate::statfs::{filesystem, filesystem_of_fd};
use crate::sys;

/// The inode number of every subvolume's root directory
/// (`BTRFS_FIRST_FREE_OBJECTID`).
const SUBVOLUME_ROOT_INODE: u64 = 256;

fn require_btrfs(path: &Path) -> Result<()> {
    match filesystem(path)? {
        Filesystem::Btrfs => Ok(()),
        filesystem => Err(Error::NotBtrfs {
            path: path.to_path_buf(),
            filesystem,
        }),
    }
}

/// The directory that will hold a new entry, and the entry's name.
fn split(path: &Path) -> Result<(PathBuf, &OsStr)> {
    let name = path.file_name().ok_or_else(|| Error::InvalidName {
        path: path.to_path_buf(),
    })?;
    if name.len() > 255 {
        return Err(Error::InvalidName {
            path: path.to_path_buf(),
        });
    }
    Ok((path::parent(path), name))
}

/// Whether `path` is the root of a BTRFS subvolume (or snapshot): a directory on
/// BTRFS with inode number 256. `false` for ordinary directories and for
/// anything not on BTRFS.
///
/// # Errors
/// [`Error::NotFound`], [`Error::PermissionDenied`], [`Error::Io`].
pub fn is_subvolume(path: impl AsRef<Path>) -> Result<bool> {
    let path = path.as_ref();
    let st = rustix::fs::statx(
        rustix::fs::CWD,
        path,
        AtFlags::empty(),
        StatxFlags::INO | StatxFlags::TYPE,
    )
    .map_err(|e| match e {
        Errno::NOTDIR => Error::NotADirectory {
            path: path::file_in_the_way(path),
        },
        e => from_errno(path, "examining", e),
    })?;
    let is_dir = rustix::fs::FileType::from_raw_mode(u32::from(st.stx_mode))
        == rustix::fs::FileType::Directory;
    Ok(is_dir && st.stx_ino == SUBVOLUME_ROOT_INODE && filesystem(path)?.is_btrfs())
}

/// Whether the subvolume at `path` is read-only (as the snapshots
/// [`snapshot_readonly`] takes are).
///
/// # Errors
/// [`Error::NotBtrfs`], [`Error::NotASubvolume`], [`Error::NotFound`],
/// [`Error::PermissionDenied`], [`Error::Io`].
#[doc(alias = "BTRFS_IOC_SUBVOL_GETFLAGS")]
pub fn is_readonly_subvolume(path: impl AsRef<Path>) -> Result<bool> {
    let path = path.as_ref();
    require_btrfs(path)?;
    if !is_subvolume(path)? {
        return Err(Error::NotASubvolume {
            path: path.to_path_buf(),
        });
    }
    let fd = open_dir(path, "reading the subvolume flags of")?;
    let flags = sys::subvol_getflags(&fd)
        .map_err(|e| from_errno(path, "reading the subvolume flags of", e))?;
    Ok(flags & sys::SUBVOL_RDONLY != 0)
}

/// The error of creating the subvolume or snapshot `path` in the directory
/// open as `parent`.
fn create_error(path: &Path, parent: &OwnedFd, action: &'static str, e: Errno) -> Error {
    match e {
        Errno::EXIST => Error::AlreadyExists {
            path: path.to_path_buf(),
        },
        Errno::INVAL => Error::InvalidName {
            path: path.to_path_buf(),
        },
        // The NOCOW-flavoured NotSupported would be misleading here.
        Errno::NOTTY | Errno::OPNOTSUPP => match filesystem_of_fd(parent, path) {
            Ok(filesystem) => Error::NotBtrfs {
                path: path.to_path_buf(),
                filesystem,
            },
            Err(e) => e,
        },
        e => from_errno(path, action, e),
    }
}

/// Creates an empty subvolume at `path` (`btrfs subvolume create`); its parent
/// must exist on BTRFS.
///
/// # Errors
/// [`Error::AlreadyExists`], [`Error::NotBtrfs`], [`Error::NotFound`] for a
/// missing parent, [`Error::InvalidName`], [`Error::PermissionDenied`],
/// [`Error::ReadOnly`], [`Error::Io`].
#[doc(alias = "BTRFS_IOC_SUBVOL_CREATE")]
pub fn create_subvolume(path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let (parent, name) = split(path)?;
    require_btrfs(&parent)?;
    let dir = open_dir(&parent, "creating a subvolume in")?;
    sys::subvol_create(dir.as_fd(), name.as_bytes())
        .map_err(|e| create_error(path, &dir, "creating the subvolume", e))
}

/// Takes a read-only snapshot of the subvolume `source` at `dest` (`btrfs
/// subvolume snapshot -r`): a consistent, unchangeable copy that shares all data
/// with the source, for backups. `dest` must not exist; its parent must be on the
/// same BTRFS filesystem.
///
/// A snapshot does not descend into subvolumes nested in `source`.
///
/// # Errors
/// [`Error::NotASubvolume`] when `source` is an ordinary directory,
/// [`Error::AlreadyExists`], [`Error::NotBtrfs`], [`Error::NotFound`],
/// [`Error::PermissionDenied`], [`Error::Io`] (`EXDEV` across filesystems).
#[doc(alias = "BTRFS_IOC_SNAP_CREATE_V2")]
pub fn snapshot_readonly(source: impl AsRef<Path>, dest: impl AsRef<Path>) -> Result<()> {
    let source = source.as_ref();
    let dest = dest.as_ref();
    require_btrfs(source)?;
    if !is_subvolume(source)? {
        return Err(Error::NotASubvolume {
            path: source.to_path_buf(),
        });
    }
    let (parent, name) = split(dest)?;
    require_btrfs(&parent)?;
    let src = open_dir(source, "snapshotting")?;
    let dir = open_dir(&parent, "creating a snapshot in")?;
    sys::snap_create_readonly(dir.as_fd(), name.as_bytes(), src.as_fd())
        .map_err(|e| create_error(dest, &dir, "creating the snapshot", e))
}

/// Deletes the read-only snapshot at `path` (`btrfs subvolume delete`), for
/// rotating backups. Writable subvolumes are refused with
/// [`Error::NotReadOnlySnapshot`]: they may hold live data, and this crate never
/// destroys that.
///
/// # Errors
/// [`Error::NotReadOnlySnapshot`], [`Error::NotASubvolume`], [`Error::NotBtrfs`],
/// [`Error::NotFound`], [`Error::PermissionDenied`] (deleting needs root, or the
/// `user_subvol_rm_allowed` mount option), [`Error::Io`].
#[doc(alias = "BTRFS_IOC_SNAP_DESTROY")]
pub fn delete_snapshot(path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    if !is_readonly_subvolume(path)? {
        return Err(Error::NotReadOnlySnapshot {
            path: path.to_path_buf(),
        });
    }
    // The ioctl takes a name in a directory: the snapshot's own, not a link's.
    let real = std::fs::canonicalize(path).map_err(|e| from_io(path, "resolving", e))?;
    let (parent, name) = split(&real)?;
    let dir = open_dir(&parent, "deleting a snapshot in")?;
    sys::snap_destroy(dir.as_fd(), name.as_bytes())
        .map_err(|e| from_errno(path, "deleting the snapshot", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_single_components() {
        assert!(matches!(
            split(Path::new("/")),
            Err(Error::InvalidName { .. })
        ));
        assert!(matches!(
            split(Path::new("/a/..")),
            Err(Error::InvalidName { .. })
        ));
        let long = format!("/pool/{}", "n".repeat(256));
        assert!(matches!(
            split(Path::new(&long)),
            Err(Error::InvalidName { .. })
        ));
        let (parent, name) = split(Path::new("/pool/snaps/2025-11-08")).unwrap();
        assert_eq!(parent, Path::new("/pool/snaps"));
        assert_eq!(name, "2025-11-08");
        let (parent, _) = split(Path::new("snap")).unwrap();
        assert_eq!(parent, Path::new("."));
    }

    #[test]
    fn proc_is_not_a_subvolume() {
        assert!(!is_subvolume("/proc").unwrap());
    }
}
