//! Inode attributes (`FS_IOC_GETFLAGS`/`FS_IOC_SETFLAGS`): reading them, rendering
//! them as `lsattr` does, and switching NOCOW with a read-back check.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use bitflags::bitflags;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{FileType, IFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, Result, from_errno};
use crate::path::file_in_the_way;
use crate::statfs::filesystem_of_fd;

bitflags! {
    /// The inode attributes of a file or directory (`FS_*_FL` of
    /// `ioctl_iflags(2)`), as `chattr` sets and `lsattr` shows them.
    ///
    /// Bits this type does not name are kept (`from_bits_retain`), so writing back
    /// what was read never clears a flag the kernel knows and this crate does not.
    ///
    /// Its [`Display`](fmt::Display) is the attribute column of `lsattr`
    /// (e2fsprogs 1.47), for example `---------------C------` for NOCOW; it parses
    /// back with [`FromStr`].
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    #[doc(alias = "FS_IOC_GETFLAGS")]
    pub struct Attributes: u32 {
        /// `s`: secure deletion (`FS_SECRM_FL`).
        const SECURE_DELETION = 0x0000_0001;
        /// `u`: undeletable (`FS_UNRM_FL`).
        const UNDELETE = 0x0000_0002;
        /// `c`: compress (`FS_COMPR_FL`).
        const COMPRESS = 0x0000_0004;
        /// `S`: synchronous updates (`FS_SYNC_FL`).
        const SYNC = 0x0000_0008;
        /// `i`: immutable (`FS_IMMUTABLE_FL`).
        const IMMUTABLE = 0x0000_0010;
        /// `a`: append only (`FS_APPEND_FL`).
        const APPEND = 0x0000_0020;
        /// `d`: no dump (`FS_NODUMP_FL`).
        const NODUMP = 0x0000_0040;
        /// `A`: no access-time updates (`FS_NOATIME_FL`).
        const NOATIME = 0x0000_0080;
        /// `m`: do not compress (`FS_NOCOMP_FL`).
        const NOCOMPRESS = 0x0000_0400;
        /// `E`: encrypted (`FS_ENCRYPT_FL`).
        const ENCRYPTED = 0x0000_0800;
        /// `I`: hash-indexed directory (`FS_INDEX_FL`).
        const INDEXED = 0x0000_1000;
        /// `j`: data journalling (`FS_JOURNAL_DATA_FL`).
        const JOURNAL_DATA = 0x0000_4000;
        /// `t`: no tail merging (`FS_NOTAIL_FL`).
        const NOTAIL = 0x0000_8000;
        /// `D`: synchronous directory updates (`FS_DIRSYNC_FL`).
        const DIRSYNC = 0x0001_0000;
        /// `T`: top of a directory hierarchy (`FS_TOPDIR_FL`).
        const TOPDIR = 0x0002_0000;
        /// `e`: uses extents (`FS_EXTENT_FL`).
        const EXTENTS = 0x0008_0000;
        /// `V`: fs-verity protected (`FS_VERITY_FL`).
        const VERITY = 0x0010_0000;
        /// `C`: no copy-on-write (`FS_NOCOW_FL`).
        const NOCOW = 0x0080_0000;
        /// `x`: direct access (`FS_DAX_FL`).
        const DAX = 0x0200_0000;
        /// `N`: data stored inline (`FS_INLINE_DATA_FL`).
        const INLINE_DATA = 0x1000_0000;
        /// `P`: project hierarchy (`FS_PROJINHERIT_FL`).
        const PROJECT_INHERIT = 0x2000_0000;
        /// `F`: case-insensitive directory (`FS_CASEFOLD_FL`).
        const CASEFOLD = 0x4000_0000;
    }
}

/// The columns of `lsattr` (e2fsprogs 1.47), in order.
const LSATTR_COLUMNS: [(Attributes, char); 22] = [
    (Attributes::SECURE_DELETION, 's'),
    (Attributes::UNDELETE, 'u'),
    (Attributes::SYNC, 'S'),
    (Attributes::DIRSYNC, 'D'),
    (Attributes::IMMUTABLE, 'i'),
    (Attributes::APPEND, 'a'),
    (Attributes::NODUMP, 'd'),
    (Attributes::NOATIME, 'A'),
    (Attributes::COMPRESS, 'c'),
    (Attributes::ENCRYPTED, 'E'),
    (Attributes::JOURNAL_DATA, 'j'),
    (Attributes::INDEXED, 'I'),
    (Attributes::NOTAIL, 't'),
    (Attributes::TOPDIR, 'T'),
    (Attributes::EXTENTS, 'e'),
    (Attributes::NOCOW, 'C'),
    (Attributes::DAX, 'x'),
    (Attributes::CASEFOLD, 'F'),
    (Attributes::INLINE_DATA, 'N'),
    (Attributes::PROJECT_INHERIT, 'P'),
    (Attributes::VERITY, 'V'),
    (Attributes::NOCOMPRESS, 'm'),
];

impl Attributes {
    /// Whether copy-on-write is off (`C`).
    pub fn is_nocow(self) -> bool {
        self.contains(Self::NOCOW)
    }
}

impl fmt::Display for Attributes {
    /// The attribute column of `lsattr`: one letter per set attribute, `-`
    /// otherwise. Bits `lsattr` does not show are not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (flag, letter) in LSATTR_COLUMNS {
            let c = if self.contains(flag) { letter } else { '-' };
            fmt::Write::write_char(f, c)?;
        }
        Ok(())
    }
}

impl FromStr for Attributes {
    type Err = Error;

    /// Parses the attribute column `lsattr` prints (the first word of its line).
    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        let err = |position| Error::InvalidAttributes {
            text: text.to_owned(),
            position,
        };
        let mut attrs = Self::empty();
        let mut chars = text.chars();
        for (i, (flag, letter)) in LSATTR_COLUMNS.iter().enumerate() {
            match chars.next() {
                Some('-') => {}
                Some(c) if c == *letter => attrs |= *flag,
                _ => return Err(err(i)),
            }
        }
        if chars.next().is_some() {
            return Err(err(LSATTR_COLUMNS.len()));
        }
        Ok(attrs)
    }
}

/// What a NOCOW request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NocowChange {
    /// NOCOW was off and is now on.
    Set,
    /// NOCOW was on and is now off.
    Cleared,
    /// It already was as asked; nothing was changed.
    AlreadySo,
}

/// Opens a regular file or directory so that its attributes can be read and
/// written; anything else (device, socket, FIFO) is refused before it is opened.
pub(crate) fn open_for_attributes(path: &Path, action: &'static str) -> Result<(OwnedFd, u64)> {
    let st = rustix::fs::stat(path).map_err(|e| match e {
        Errno::NOTDIR => Error::NotADirectory {
            path: file_in_the_way(path),
        },
        e => from_errno(path, action, e),
    })?;
    let kind = FileType::from_raw_mode(st.st_mode);
    if kind != FileType::RegularFile && kind != FileType::Directory {
        return Err(Error::NotARegularFile {
            path: path.to_path_buf(),
        });
    }
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| from_errno(path, action, e))?;
    let size = if kind == FileType::RegularFile {
        u64::try_from(st.st_size).unwrap_or(0)
    } else {
        0
    };
    Ok((fd, size))
}

/// `FS_IOC_GETFLAGS` on an open file.
pub(crate) fn get(fd: impl AsFd, path: &Path) -> Result<Attributes> {
    let fd = fd.as_fd();
    match rustix::fs::ioctl_getflags(fd) {
        Ok(flags) => Ok(Attributes::from_bits_retain(flags.bits())),
        Err(Errno::OPNOTSUPP | Errno::NOTTY) => Err(Error::NotSupported {
            path: path.to_path_buf(),
            filesystem: filesystem_of_fd(fd, path)?,
        }),
        Err(e) => Err(from_errno(path, "reading the attributes of", e)),
    }
}

/// Turns NOCOW on or off on an open file or directory and reads it back.
/// `size` is the file's size (0 for directories), for the error BTRFS's silent
/// refusal on non-empty files becomes.
pub(crate) fn set_nocow_fd(
    fd: impl AsFd,
    path: &Path,
    nocow: bool,
    size: u64,
) -> Result<NocowChange> {
    let fd = fd.as_fd();
    let before = get(fd, path)?;
    if before.is_nocow() == nocow {
        return Ok(NocowChange::AlreadySo);
    }
    let wanted = before.difference(Attributes::NOCOW)
        | if nocow {
            Attributes::NOCOW
        } else {
            Attributes::empty()
        };
    let action = if nocow {
        "setting NOCOW on"
    } else {
        "clearing NOCOW on"
    };
    match rustix::fs::ioctl_setflags(fd, IFlags::from_bits_retain(wanted.bits())) {
        Ok(()) => {}
        Err(Errno::INVAL) if before.contains(Attributes::COMPRESS) && nocow => {
            return Err(Error::NocowConflictsWithCompression {
                path: path.to_path_buf(),
            });
        }
        Err(Errno::OPNOTSUPP | Errno::NOTTY) => {
            return Err(Error::NotSupported {
                path: path.to_path_buf(),
                filesystem: filesystem_of_fd(fd, path)?,
            });
        }
        Err(e) => return Err(from_errno(path, action, e)),
    }
    let after = get(fd, path)?;
    if after.is_nocow() != nocow {
        // Filesystems other than BTRFS that keep inode attributes (ext4, XFS)
        // take the request and drop the bit; BTRFS drops it on a file that
        // holds data.
        let filesystem = filesystem_of_fd(fd, path)?;
        return Err(if filesystem.is_btrfs() {
            Error::NocowIgnored {
                path: path.to_path_buf(),
                size,
                wanted: nocow,
            }
        } else {
            Error::NotSupported {
                path: path.to_path_buf(),
                filesystem,
            }
        });
    }
    Ok(if nocow {
        NocowChange::Set
    } else {
        NocowChange::Cleared
    })
}

/// The inode attributes of a file or directory (`FS_IOC_GETFLAGS`), following
/// symbolic links as `lsattr -d` does for the path it is given.
///
/// # Errors
/// [`Error::NotFound`], [`Error::PermissionDenied`], [`Error::NotARegularFile`] for
/// devices, sockets and FIFOs, [`Error::NotSupported`] on filesystems without
/// inode attributes.
#[doc(alias = "FS_IOC_GETFLAGS")]
#[doc(alias = "lsattr")]
pub fn attributes(path: impl AsRef<Path>) -> Result<Attributes> {
    let path = path.as_ref();
    let (fd, _) = open_for_attributes(path, "reading the attributes of")?;
    get(&fd, path)
}

/// Turns copy-on-write off (`chattr +C`), keeping every other attribute, and
/// checks that it took.
///
/// On a directory this makes files created in it afterwards NOCOW. On a regular
/// file it works only while the file is empty: BTRFS accepts the request on a
/// file that holds data but keeps it copy-on-write, which this function reports
/// as [`Error::NocowIgnored`] (see [`migrate_to_nocow`](crate::migrate_to_nocow)
/// for such files).
///
/// # Errors
/// [`Error::NotSupported`] on ext4, XFS, tmpfs and other filesystems without
/// NOCOW; [`Error::NocowIgnored`]; [`Error::NocowConflictsWithCompression`];
/// [`Error::ReadOnly`]; the errors of [`attributes`].
#[doc(alias = "FS_IOC_SETFLAGS")]
#[doc(alias = "chattr")]
pub fn set_nocow(path: impl AsRef<Path>) -> Result<NocowChange> {
    let path = path.as_ref();
    let (fd, size) = open_for_attributes(path, "setting NOCOW on")?;
    set_nocow_fd(&fd, path, true, size)
}

/// Turns copy-on-write back on (`chattr -C`), keeping every other attribute, and
/// checks that it took. Like setting, this changes nothing on a regular file that
/// holds data ([`Error::NocowIgnored`]).
///
/// # Errors
/// As [`set_nocow`].
pub fn clear_nocow(path: impl AsRef<Path>) -> Result<NocowChange> {
    let path = path.as_ref();
    let (fd, size) = open_for_attributes(path, "clearing NOCOW on")?;
    set_nocow_fd(&fd, path, false, size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bits_match_the_kernel_header_as_rustix_has_it() {
        assert_eq!(Attributes::NOCOW.bits(), IFlags::NOCOW.bits());
        assert_eq!(Attributes::IMMUTABLE.bits(), IFlags::IMMUTABLE.bits());
        assert_eq!(Attributes::APPEND.bits(), IFlags::APPEND.bits());
        assert_eq!(Attributes::COMPRESS.bits(), IFlags::COMPRESSED.bits());
        assert_eq!(Attributes::NOATIME.bits(), IFlags::NOATIME.bits());
        assert_eq!(Attributes::NODUMP.bits(), IFlags::NODUMP.bits());
        assert_eq!(Attributes::SYNC.bits(), IFlags::SYNC.bits());
        assert_eq!(Attributes::DIRSYNC.bits(), IFlags::DIRSYNC.bits());
        assert_eq!(Attributes::NOTAIL.bits(), IFlags::NOTAIL.bits());
        assert_eq!(Attributes::TOPDIR.bits(), IFlags::TOPDIR.bits());
        assert_eq!(Attributes::JOURNAL_DATA.bits(), IFlags::JOURNALING.bits());
        assert_eq!(
            Attributes::SECURE_DELETION.bits(),
            IFlags::SECURE_REMOVAL.bits()
        );
        assert_eq!(Attributes::UNDELETE.bits(), IFlags::UNRM.bits());
        assert_eq!(
            Attributes::PROJECT_INHERIT.bits(),
            IFlags::PROJECT_INHERIT.bits()
        );
    }

    #[test]
    fn renders_like_lsattr() {
        assert_eq!(Attributes::empty().to_string(), "----------------------");
        assert_eq!(Attributes::NOCOW.to_string(), "---------------C------");
        assert_eq!(Attributes::EXTENTS.to_string(), "--------------e-------");
        let mixed = Attributes::SYNC
            | Attributes::IMMUTABLE
            | Attributes::NODUMP
            | Attributes::NOATIME
            | Attributes::COMPRESS;
        assert_eq!(mixed.to_string(), "--S-i-dAc-------------");
        assert_eq!(Attributes::all().to_string(), "suSDiadAcEjItTeCxFNPVm");
    }

    #[test]
    fn bits_lsattr_does_not_show_are_kept_but_not_rendered() {
        let odd = Attributes::from_bits_retain(0x0000_0100 | Attributes::NOCOW.bits());
        assert_eq!(odd.to_string(), "---------------C------");
        assert_eq!(odd.bits() & 0x100, 0x100);
    }

    #[test]
    fn rejects_what_lsattr_would_not_print() {
        for (bad, position) in [
            ("", 0),
            ("C", 0),
            ("---------------c------", 15),
            ("---------------C-----", 21),
            ("---------------C-------", 22),
            ("---------------C------ /path", 22),
        ] {
            match bad.parse::<Attributes>() {
                Err(Error::InvalidAttributes { position: at, .. }) => {
                    assert_eq!(at, position, "{bad:?}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    proptest! {
        #[test]
        fn render_then_parse_gives_back_the_shown_bits(bits: u32) {
            let attrs = Attributes::from_bits_retain(bits);
            let parsed: Attributes = attrs.to_string().parse().unwrap();
            prop_assert_eq!(parsed, attrs.intersection(Attributes::all()));
        }

        #[test]
        fn parsing_random_text_never_panics(text in "\\PC{0,40}") {
            let _ = text.parse::<Attributes>();
        }

        #[test]
        fn lsattr_like_text_parses_exactly_when_each_letter_is_in_its_column(
            text in "[-sSuDiadAcEjItTeCxFNPVm]{20,24}"
        ) {
            // The oracle: the first index where the text is not '-' or that
            // column's letter, or is too short or too long.
            let letters: Vec<char> = "suSDiadAcEjItTeCxFNPVm".chars().collect();
            let chars: Vec<char> = text.chars().collect();
            let first_wrong = (0..=letters.len()).find(|&i| match (chars.get(i), letters.get(i)) {
                (Some(c), Some(l)) => *c != '-' && c != l,
                (None, None) => false,
                _ => true,
            });
            match text.parse::<Attributes>() {
                Ok(attrs) => {
                    prop_assert_eq!(first_wrong, None);
                    // A parsed column renders back to itself.
                    prop_assert_eq!(attrs.to_string(), text);
                }
                Err(Error::InvalidAttributes { position, text: given }) => {
                    prop_assert_eq!(Some(position), first_wrong);
                    prop_assert_eq!(given, text);
                }
                Err(other) => prop_assert!(false, "{other:?}"),
            }
        }
    }
}
