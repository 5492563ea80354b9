//! The kinds of filesystem a path can be on, and how full one is: plain data,
//! which [`filesystem()`](crate::filesystem()) and [`usage`](crate::usage) read
//! from the kernel.

use std::fmt;

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
#[non_exhaustive]
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
