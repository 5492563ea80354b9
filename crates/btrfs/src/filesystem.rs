//! Which filesystem a path is on, and how full that filesystem is.

use std::fmt;
use std::path::Path;

use crate::error::{Result, from_errno};

/// The filesystem a path lives on, from the magic number `statfs(2)` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Filesystem {
    /// BTRFS.
    Btrfs,
    /// ext2, ext3 or ext4 (they share one magic number).
    Ext4,
    /// XFS.
    Xfs,
    /// tmpfs.
    Tmpfs,
    /// ramfs.
    Ramfs,
    /// ZFS.
    Zfs,
    /// bcachefs.
    Bcachefs,
    /// F2FS.
    F2fs,
    /// overlayfs (for example a container's root filesystem).
    Overlay,
    /// NFS.
    Nfs,
    /// FAT (vfat, msdos).
    Fat,
    /// exFAT.
    Exfat,
    /// A FUSE filesystem.
    Fuse,
    /// Any other filesystem.
    Other {
        /// The magic number (`f_type` of `statfs(2)`).
        magic: u32,
    },
}

impl Filesystem {
    const KNOWN: [(u32, Self); 13] = [
        (0x9123_683e, Self::Btrfs),
        (0x0000_ef53, Self::Ext4),
        (0x5846_5342, Self::Xfs),
        (0x0102_1994, Self::Tmpfs),
        (0x8584_58f6, Self::Ramfs),
        (0x2fc1_2fc1, Self::Zfs),
        (0xca45_1a4e, Self::Bcachefs),
        (0xf2f5_2010, Self::F2fs),
        (0x794c_7630, Self::Overlay),
        (0x0000_6969, Self::Nfs),
        (0x0000_4d44, Self::Fat),
        (0x2011_bab0, Self::Exfat),
        (0x6573_5546, Self::Fuse),
    ];

    /// The filesystem with this `statfs(2)` magic number.
    pub fn from_magic(magic: u32) -> Self {
        Self::KNOWN
            .iter()
            .find(|(m, _)| *m == magic)
            .map_or(Self::Other { magic }, |(_, fs)| *fs)
    }

    /// Its `statfs(2)` magic number.
    pub fn magic(self) -> u32 {
        match self {
            Self::Other { magic } => magic,
            known => Self::KNOWN
                .iter()
                .find(|(_, fs)| *fs == known)
                .map_or(0, |(m, _)| *m),
        }
    }

    /// Whether this is BTRFS.
    pub fn is_btrfs(self) -> bool {
        self == Self::Btrfs
    }
}

impl fmt::Display for Filesystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Btrfs => "btrfs",
            Self::Ext4 => "ext4",
            Self::Xfs => "xfs",
            Self::Tmpfs => "tmpfs",
            Self::Ramfs => "ramfs",
            Self::Zfs => "zfs",
            Self::Bcachefs => "bcachefs",
            Self::F2fs => "f2fs",
            Self::Overlay => "overlayfs",
            Self::Nfs => "nfs",
            Self::Fat => "vfat",
            Self::Exfat => "exfat",
            Self::Fuse => "a FUSE filesystem",
            Self::Other { magic } => return write!(f, "a filesystem with magic {magic:#x}"),
        };
        f.write_str(name)
    }
}

/// How big a filesystem is and how much of it is used, in bytes, as `df` reports
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// The filesystem the figures are for.
    pub filesystem: Filesystem,
    /// Total size.
    pub size: u64,
    /// Bytes in use.
    pub used: u64,
    /// Bytes an unprivileged writer can still use.
    pub available: u64,
}

fn statfs(path: &Path) -> Result<rustix::fs::StatFs> {
    rustix::fs::statfs(path).map_err(|e| from_errno(path, "reading the filesystem of", e))
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
/// [`Error::NotFound`](crate::Error::NotFound), [`Error::PermissionDenied`](crate::Error::PermissionDenied), [`Error::NotADirectory`](crate::Error::NotADirectory) when
/// a parent is not one, or [`Error::Io`](crate::Error::Io).
pub fn filesystem(path: impl AsRef<Path>) -> Result<Filesystem> {
    let path = path.as_ref();
    Ok(Filesystem::from_magic(magic_of(&statfs(path)?)))
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

/// The filesystem of `path`, or of its nearest existing ancestor when `path` does
/// not exist yet; `None` when not even `/` can be examined.
pub(crate) fn filesystem_of_nearest(path: &Path) -> Option<Filesystem> {
    path.ancestors()
        .filter(|p| !p.as_os_str().is_empty())
        .find_map(|p| filesystem(p).ok())
        .or_else(|| filesystem(".").ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn magic_numbers_round_trip() {
        for (magic, fs) in Filesystem::KNOWN {
            assert_eq!(Filesystem::from_magic(magic), fs);
            assert_eq!(fs.magic(), magic);
        }
        let other = Filesystem::from_magic(0x1234);
        assert_eq!(other, Filesystem::Other { magic: 0x1234 });
        assert_eq!(other.magic(), 0x1234);
        assert_eq!(other.to_string(), "a filesystem with magic 0x1234");
    }

    #[test]
    fn proc_is_not_btrfs() {
        assert!(!is_btrfs("/proc").unwrap());
        assert_eq!(
            filesystem("/proc").unwrap(),
            Filesystem::Other { magic: 0x9fa0 }
        );
    }

    #[test]
    fn a_missing_path_is_reported_with_its_name() {
        let err = filesystem("/nonexistent/idbt-no-such-dir").unwrap_err();
        assert!(matches!(err, Error::NotFound { ref path } if path.ends_with("idbt-no-such-dir")));
    }
}
