//! The BTRFS ioctls that rustix does not wrap: subvolume creation, snapshots,
//! subvolume deletion and the subvolume flags.
//!
//! This is the only module of the crate with `unsafe` code. Each call passes a
//! `#[repr(C)]` argument laid out as in `linux/btrfs.h` (sizes checked at compile
//! time) through rustix's typed ioctl patterns.
//!
//! References: `ioctl_btrfs(2)` and `linux/btrfs.h`.

#![allow(unsafe_code)]

use rustix::fd::{AsFd, AsRawFd, BorrowedFd};
use rustix::io::{self, Errno};
use rustix::ioctl::{Getter, Setter, ioctl, opcode};

const BTRFS_IOCTL_MAGIC: u8 = 0x94;
/// `BTRFS_PATH_NAME_MAX`: the name field of `btrfs_ioctl_vol_args` holds this many
/// bytes plus the terminating NUL.
const PATH_NAME_MAX: usize = 4087;
/// `BTRFS_SUBVOL_NAME_MAX`: the same for `btrfs_ioctl_vol_args_v2`.
const SUBVOL_NAME_MAX: usize = 4039;
/// `BTRFS_SUBVOL_RDONLY`: a read-only subvolume (flag of `SNAP_CREATE_V2` and
/// `SUBVOL_GETFLAGS`).
pub(crate) const SUBVOL_RDONLY: u64 = 1 << 1;

/// `struct btrfs_ioctl_vol_args`.
#[repr(C)]
struct VolArgs {
    fd: i64,
    name: [u8; PATH_NAME_MAX + 1],
}

/// `struct btrfs_ioctl_vol_args_v2`, with the union of `size`/`qgroup_inherit` and
/// `unused[4]` as `unused`, and the union of `name`/`devid`/`subvolid` as `name`.
#[repr(C)]
struct VolArgsV2 {
    fd: i64,
    transid: u64,
    flags: u64,
    unused: [u64; 4],
    name: [u8; SUBVOL_NAME_MAX + 1],
}

// The kernel encodes the argument size in the opcode and copies exactly this many
// bytes: a layout mistake must not compile.
const _: () = assert!(size_of::<VolArgs>() == 4096);
const _: () = assert!(size_of::<VolArgsV2>() == 4096);

const SUBVOL_CREATE: rustix::ioctl::Opcode = opcode::write::<VolArgs>(BTRFS_IOCTL_MAGIC, 14);
const SNAP_DESTROY: rustix::ioctl::Opcode = opcode::write::<VolArgs>(BTRFS_IOCTL_MAGIC, 15);
const SNAP_CREATE_V2: rustix::ioctl::Opcode = opcode::write::<VolArgsV2>(BTRFS_IOCTL_MAGIC, 23);
const SUBVOL_GETFLAGS: rustix::ioctl::Opcode = opcode::read::<u64>(BTRFS_IOCTL_MAGIC, 25);

/// Copies a single path component into a NUL-terminated name buffer.
fn fill_name<const N: usize>(buf: &mut [u8; N], name: &[u8]) -> io::Result<()> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(Errno::INVAL);
    }
    if name.contains(&0) {
        return Err(Errno::INVAL);
    }
    // NAME_MAX of a directory entry is stricter than the buffer.
    if name.len() > 255 || name.len() >= N {
        return Err(Errno::NAMETOOLONG);
    }
    buf[..name.len()].copy_from_slice(name);
    buf[name.len()] = 0;
    Ok(())
}

fn vol_args(name: &[u8]) -> io::Result<VolArgs> {
    let mut args = VolArgs {
        fd: 0,
        name: [0; PATH_NAME_MAX + 1],
    };
    fill_name(&mut args.name, name)?;
    Ok(args)
}

/// `ioctl(parent, BTRFS_IOC_SUBVOL_CREATE)`: creates the subvolume `name` in the
/// directory `parent`.
#[doc(alias = "BTRFS_IOC_SUBVOL_CREATE")]
pub(crate) fn subvol_create(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let args = vol_args(name)?;
    // SAFETY: SUBVOL_CREATE is `_IOW(0x94, 14, struct btrfs_ioctl_vol_args)`; the
    // kernel reads exactly `size_of::<VolArgs>()` bytes from the pointer Setter
    // passes, and VolArgs has that struct's layout (size asserted above) with a
    // NUL-terminated name.
    unsafe {
        let ctl = Setter::<SUBVOL_CREATE, VolArgs>::new(args);
        ioctl(parent, ctl)
    }
}

/// `ioctl(parent, BTRFS_IOC_SNAP_DESTROY)`: deletes the subvolume `name` in the
/// directory `parent`.
#[doc(alias = "BTRFS_IOC_SNAP_DESTROY")]
pub(crate) fn snap_destroy(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let args = vol_args(name)?;
    // SAFETY: SNAP_DESTROY is `_IOW(0x94, 15, struct btrfs_ioctl_vol_args)`, read
    // by the kernel exactly as for SUBVOL_CREATE above.
    unsafe {
        let ctl = Setter::<SNAP_DESTROY, VolArgs>::new(args);
        ioctl(parent, ctl)
    }
}

/// `ioctl(parent, BTRFS_IOC_SNAP_CREATE_V2)` with `BTRFS_SUBVOL_RDONLY`: creates
/// `name` in `parent` as a read-only snapshot of the subvolume open as `source`.
#[doc(alias = "BTRFS_IOC_SNAP_CREATE_V2")]
pub(crate) fn snap_create_readonly(
    parent: BorrowedFd<'_>,
    name: &[u8],
    source: BorrowedFd<'_>,
) -> io::Result<()> {
    let mut args = VolArgsV2 {
        fd: i64::from(source.as_raw_fd()),
        transid: 0,
        flags: SUBVOL_RDONLY,
        unused: [0; 4],
        name: [0; SUBVOL_NAME_MAX + 1],
    };
    fill_name(&mut args.name, name)?;
    // SAFETY: SNAP_CREATE_V2 is `_IOW(0x94, 23, struct btrfs_ioctl_vol_args_v2)`;
    // the kernel reads exactly `size_of::<VolArgsV2>()` bytes. `fd` is a
    // descriptor borrowed for the duration of the call; the qgroup-inherit union
    // is zeroed because its flag (BTRFS_SUBVOL_QGROUP_INHERIT) is not set, so the
    // kernel follows no pointer out of the struct.
    unsafe {
        let ctl = Setter::<SNAP_CREATE_V2, VolArgsV2>::new(args);
        ioctl(parent, ctl)
    }
}

/// `ioctl(fd, BTRFS_IOC_SUBVOL_GETFLAGS)`: the flags of the subvolume whose root
/// directory is open as `fd` (`SUBVOL_RDONLY` for a read-only one).
#[doc(alias = "BTRFS_IOC_SUBVOL_GETFLAGS")]
pub(crate) fn subvol_getflags(fd: impl AsFd) -> io::Result<u64> {
    // SAFETY: SUBVOL_GETFLAGS is `_IOR(0x94, 25, __u64)`: the kernel writes one u64
    // into the buffer Getter provides.
    unsafe {
        let ctl = Getter::<SUBVOL_GETFLAGS, u64>::new();
        ioctl(fd, ctl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcodes_match_the_kernel_header() {
        // Values of the _IOW/_IOR macros in linux/btrfs.h on x86_64 and aarch64.
        assert_eq!(SUBVOL_CREATE, 0x5000_940e);
        assert_eq!(SNAP_DESTROY, 0x5000_940f);
        assert_eq!(SNAP_CREATE_V2, 0x5000_9417);
        assert_eq!(SUBVOL_GETFLAGS, 0x8008_9419);
    }

    #[test]
    fn names_are_single_components() {
        let mut buf = [0u8; 16];
        assert_eq!(fill_name(&mut buf, b""), Err(Errno::INVAL));
        assert_eq!(fill_name(&mut buf, b".."), Err(Errno::INVAL));
        assert_eq!(fill_name(&mut buf, b"a/b"), Err(Errno::INVAL));
        assert_eq!(fill_name(&mut buf, b"a\0b"), Err(Errno::INVAL));
        assert_eq!(fill_name(&mut buf, &[b'x'; 16]), Err(Errno::NAMETOOLONG));
        assert_eq!(fill_name(&mut buf, b"snap"), Ok(()));
        assert_eq!(&buf[..5], b"snap\0");
    }
}
