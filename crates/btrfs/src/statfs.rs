//! Which filesystem a path is on and how full it is, from `statfs(2)`.

use std::path::Path;

use rustix::fd::AsFd;
use rustix::io::Errno;

use crate::error::{Error, Result, from_errno};
use crate::filesystem::{Filesystem, Usage};
use crate::path::file_in_the_way;

const ACTION: &str = "reading the filesystem of";

fn statfs(path: &Path) -> Result<rustix::fs::StatFs> {
    rustix::fs::statfs(path).map_err(|e| match e {
        Errno::NOTDIR => Error::NotADirectory {
            path: file_in_the_way(path),
        },
        e => from_errno(path, ACTION, e),
    })
}

#[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
fn magic_of(st: &rustix::fs::StatFs) -> u32 {
    // f_type is a signed word whose width differs between architectures; the
    // magic numbers are 32-bit values.
    st.f_type as u32
}

/// The filesystem `path` is on (`statfs(2)`).
///
/// # Errors
/// [`Error::NotFound`], [`Error::PermissionDenied`], [`Error::NotADirectory`]
/// naming the file in the way when a parent is not a directory, or
/// [`Error::Io`].
#[doc(alias = "statfs")]
pub fn filesystem(path: impl AsRef<Path>) -> Result<Filesystem> {
    let path = path.as_ref();
    Ok(Filesystem::from_magic(magic_of(&statfs(path)?)))
}

/// The filesystem of the file open as `fd` (`fstatfs(2)`); `path` names it in
/// an error.
pub(crate) fn filesystem_of_fd(fd: impl AsFd, path: &Path) -> Result<Filesystem> {
    rustix::fs::fstatfs(fd)
        .map(|st| Filesystem::from_magic(magic_of(&st)))
        .map_err(|e| from_errno(path, ACTION, e))
}

/// Whether `path` is on BTRFS.
///
/// # Errors
/// As [`filesystem`].
pub fn is_btrfs(path: impl AsRef<Path>) -> Result<bool> {
    filesystem(path).map(Filesystem::is_btrfs)
}

/// The size, used and available bytes of the filesystem `path` is on.
///
/// # Errors
/// As [`filesystem`].
#[allow(clippy::cast_sign_loss)]
pub fn usage(path: impl AsRef<Path>) -> Result<Usage> {
    let path = path.as_ref();
    let st = statfs(path)?;
    // A block size is small and positive.
    let block = st.f_bsize as u64;
    Ok(Usage {
        filesystem: Filesystem::from_magic(magic_of(&st)),
        size: st.f_blocks.saturating_mul(block),
        used: st.f_blocks.saturating_sub(st.f_bfree).saturating_mul(block),
        available: st.f_bavail.saturating_mul(block),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_is_not_btrfs() {
        assert!(!is_btrfs("/proc").unwrap());
        assert_eq!(
            filesystem("/proc").unwrap(),
            Filesystem::Other { magic: 0x9fa0 }
        );
        let proc = std::fs::File::open("/proc").unwrap();
        assert_eq!(
            filesystem_of_fd(&proc, Path::new("/proc")).unwrap(),
            Filesystem::Other { magic: 0x9fa0 }
        );
    }

    #[test]
    fn a_missing_path_is_reported_with_its_name() {
        let err = filesystem("/nonexistent/idbt-no-such-dir").unwrap_err();
        assert!(matches!(err, Error::NotFound { ref path } if path.ends_with("idbt-no-such-dir")));
    }

    #[test]
    fn a_file_in_the_way_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        match filesystem(file.join("below")) {
            Err(Error::NotADirectory { path }) => assert_eq!(path, file),
            other => panic!("{other:?}"),
        }
    }
}
