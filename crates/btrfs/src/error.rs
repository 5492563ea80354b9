//! The one error type of this crate.
//!
//! Errors are plain data: the code that fails looks up what the error names
//! (the filesystem, the file in the way) before it builds one, and nothing here
//! touches the host. Messages say what failed and on what; advice on what to do
//! about it depends on who runs the caller and is the caller's to give.

use std::io;
use std::path::{Path, PathBuf};

use rustix::io::Errno;

use crate::filesystem::Filesystem;

/// What can go wrong. Every variant names the path it is about; none of them
/// leaves the host changed unless its text says so.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The path does not exist.
    #[error("{} does not exist", path.display())]
    NotFound {
        /// The missing path.
        path: PathBuf,
    },

    /// The kernel refused an operation for lack of permission (`EACCES`/`EPERM`).
    #[error("permission denied while {action} {}", path.display())]
    PermissionDenied {
        /// The path the operation was refused on.
        path: PathBuf,
        /// What was being done, for example `"setting NOCOW on"`.
        action: &'static str,
    },

    /// The path, or a parent it goes through, exists but is not a directory.
    #[error("{} is not a directory", path.display())]
    NotADirectory {
        /// The path that is not a directory: where a parent is in the way,
        /// that parent.
        path: PathBuf,
    },

    /// The path is not a regular file (a directory, link, device, ...).
    #[error("{} is not a regular file", path.display())]
    NotARegularFile {
        /// The path.
        path: PathBuf,
    },

    /// The filesystem has no NOCOW attribute: `EOPNOTSUPP` (or `ENOTTY` on older
    /// kernels) from ext4, XFS, tmpfs and others.
    #[error(
        "{} is on {filesystem}, not BTRFS: NOCOW has no effect here",
        path.display()
    )]
    NotSupported {
        /// The path the attribute was asked for.
        path: PathBuf,
        /// The filesystem it is on.
        filesystem: Filesystem,
    },

    /// A subvolume operation on a path that is not on BTRFS.
    #[error(
        "{} is on {filesystem}, not BTRFS: subvolumes and snapshots exist only on BTRFS",
        path.display()
    )]
    NotBtrfs {
        /// The path.
        path: PathBuf,
        /// The filesystem it is on.
        filesystem: Filesystem,
    },

    /// BTRFS accepted the request but did not change NOCOW: it changes only on
    /// empty files, and silently keeps the old state on a file that holds data.
    #[error(
        "BTRFS kept {} {} because the file already holds {size} bytes: NOCOW changes only on empty files",
        path.display(),
        if *wanted { "copy-on-write (+C ignored)" } else { "NOCOW (-C ignored)" }
    )]
    NocowIgnored {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The state asked for: `true` for NOCOW.
        wanted: bool,
    },

    /// NOCOW and compression exclude each other on BTRFS (`EINVAL`).
    #[error(
        "{} is compressed (attribute c): BTRFS cannot combine compression with NOCOW",
        path.display()
    )]
    NocowConflictsWithCompression {
        /// The file or directory.
        path: PathBuf,
    },

    /// The filesystem or subvolume is read-only (`EROFS`), for example a read-only
    /// snapshot.
    #[error("{} is on a read-only filesystem or snapshot", path.display())]
    ReadOnly {
        /// The path.
        path: PathBuf,
    },

    /// Something already exists where a new subvolume or snapshot was to be made.
    #[error("{} already exists", path.display())]
    AlreadyExists {
        /// The path.
        path: PathBuf,
    },

    /// The path is on BTRFS but is an ordinary directory, not a subvolume.
    #[error("{} is not a BTRFS subvolume", path.display())]
    NotASubvolume {
        /// The path.
        path: PathBuf,
    },

    /// Deleting was refused because the subvolume is writable: only read-only
    /// snapshots are deleted by this crate, so live data cannot be destroyed.
    #[error(
        "{} is a writable subvolume, not a read-only snapshot: refusing to delete it",
        path.display()
    )]
    NotReadOnlySnapshot {
        /// The path.
        path: PathBuf,
    },

    /// The path has no usable last component (`/`, `..`, or a name longer than 255
    /// bytes).
    #[error("{} does not name a new directory entry (it must end in a name of at most 255 bytes, not / or ..)", path.display())]
    InvalidName {
        /// The path.
        path: PathBuf,
    },

    /// A mode outside the permission bits `0o7777`.
    #[error("mode {mode:#o} for {} is not a permission mode (at most 0o7777)", path.display())]
    InvalidMode {
        /// The directory the mode was for.
        path: PathBuf,
        /// The mode given.
        mode: u32,
    },

    /// A migration was asked for while the service using the files runs: copying
    /// a file that is being written would lose the writes made during the copy.
    #[error(
        "{service} is running: its files are not migrated to NOCOW while it may write to them (nothing was changed)"
    )]
    ServiceRunning {
        /// The service, as the caller named it.
        service: String,
    },

    /// The file has other hard links, which a rewrite would detach from it.
    #[error(
        "{} has {links} hard links: rewriting it would split them",
        path.display()
    )]
    HardLinked {
        /// The file.
        path: PathBuf,
        /// Its link count.
        links: u64,
    },

    /// The file is immutable or append-only (attribute `i` or `a`) and cannot be
    /// replaced.
    #[error(
        "{} is immutable or append-only (attribute i or a): it cannot be replaced",
        path.display()
    )]
    Immutable {
        /// The file.
        path: PathBuf,
    },

    /// The file changed while it was being copied; the copy was discarded and the
    /// original kept.
    #[error(
        "{} changed while it was copied: something is still writing to it; the copy was discarded and the original kept",
        path.display()
    )]
    ChangedDuringCopy {
        /// The file.
        path: PathBuf,
    },

    /// Not enough free space for the copy a migration needs.
    #[error(
        "not enough space to rewrite {}: it needs {needed} bytes, {available} are available",
        path.display()
    )]
    NoSpace {
        /// The file.
        path: PathBuf,
        /// Bytes the copy needs.
        needed: u64,
        /// Bytes available.
        available: u64,
    },

    /// A file with the name of a migration's temporary copy exists but was not made
    /// by a migration, so it is left alone.
    #[error(
        "{} is in the way of a migration's temporary copy and was not made by one, so it was left alone",
        path.display()
    )]
    TempFileInTheWay {
        /// The file in the way.
        path: PathBuf,
    },

    /// Text that is not the attribute column `lsattr` prints.
    #[error(
        "{text:?} is not an lsattr attribute column: expected 22 characters, each '-' or the letter of its column (in the order suSDiadAcEjItTeCxFNPVm); the first wrong one is at index {position}"
    )]
    InvalidAttributes {
        /// The text given.
        text: String,
        /// Zero-based index of the first character that does not fit.
        position: usize,
    },

    /// An extended attribute could not be read or written.
    #[error("cannot copy extended attribute {name} of {}: {source}", path.display())]
    Xattr {
        /// The file.
        path: PathBuf,
        /// The attribute's name.
        name: String,
        /// The system error.
        source: io::Error,
    },

    /// Any other system error, with what was being done.
    #[error("error while {action} {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// What was being done, for example `"copying"`.
        action: &'static str,
        /// The system error (with its errno).
        source: io::Error,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The variant that explains `errno` from an operation on `path`. It only
/// sorts: the callers that can tell more (the filesystem behind `EOPNOTSUPP`,
/// the parent behind `ENOTDIR`) look that up themselves.
pub(crate) fn from_errno(path: &Path, action: &'static str, errno: Errno) -> Error {
    let path = path.to_path_buf();
    match errno {
        Errno::NOENT => Error::NotFound { path },
        Errno::ACCESS | Errno::PERM => Error::PermissionDenied { path, action },
        Errno::NOTDIR => Error::NotADirectory { path },
        Errno::ROFS => Error::ReadOnly { path },
        Errno::NAMETOOLONG => Error::InvalidName { path },
        other => Error::Io {
            path,
            action,
            source: other.into(),
        },
    }
}

/// The same for a `std::io::Error`.
pub(crate) fn from_io(path: &Path, action: &'static str, err: io::Error) -> Error {
    match err.raw_os_error() {
        Some(raw) => from_errno(path, action, Errno::from_raw_os_error(raw)),
        None => Error::Io {
            path: path.to_path_buf(),
            action,
            source: err,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errnos_map_to_their_variants() {
        let p = Path::new("/srv/data");
        assert!(matches!(
            from_errno(p, "opening", Errno::NOENT),
            Error::NotFound { .. }
        ));
        assert!(matches!(
            from_errno(p, "opening", Errno::ACCESS),
            Error::PermissionDenied {
                action: "opening",
                ..
            }
        ));
        assert!(matches!(
            from_errno(p, "opening", Errno::PERM),
            Error::PermissionDenied { .. }
        ));
        assert!(matches!(
            from_errno(p, "opening", Errno::ROFS),
            Error::ReadOnly { .. }
        ));
        match from_errno(p, "opening", Errno::NOTDIR) {
            Error::NotADirectory { path } => assert_eq!(path, p),
            other => panic!("{other:?}"),
        }
        match from_errno(p, "copying", Errno::IO) {
            Error::Io { source, action, .. } => {
                assert_eq!(action, "copying");
                assert_eq!(source.raw_os_error(), Some(Errno::IO.raw_os_error()));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn not_supported_says_nocow_has_no_effect() {
        let err = Error::NotSupported {
            path: "/mnt/ext4/pg".into(),
            filesystem: Filesystem::Ext4,
        };
        let text = err.to_string();
        assert!(
            text.contains("/mnt/ext4/pg is on ext4, not BTRFS"),
            "{text}"
        );
        assert!(text.contains("NOCOW has no effect here"), "{text}");
    }

    #[test]
    fn permission_denied_says_what_was_refused_and_no_more() {
        let err = from_errno(Path::new("/srv/pg"), "creating", Errno::ACCESS);
        assert_eq!(err.to_string(), "permission denied while creating /srv/pg");
    }
}
