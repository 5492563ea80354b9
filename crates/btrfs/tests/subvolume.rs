//! Subvolumes and read-only snapshots on the real BTRFS pool, checked with
//! btrfs-progs.

// Test code: a failed unwrap is a failed test, helpers included.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use homelab_btrfs::{
    Error, Filesystem, create_subvolume, delete_snapshot, is_readonly_subvolume, is_subvolume,
    snapshot_readonly,
};
use immich_db_testhost::require_host;

/// Deletes the listed subvolumes with btrfs-progs when dropped, newest first, so
/// that a failing test leaves no read-only snapshot its scratch directory cannot
/// remove. Declared after the scratch directory, so it drops before it.
struct Subvolumes(Vec<PathBuf>);

impl Drop for Subvolumes {
    fn drop(&mut self) {
        for path in self.0.iter().rev() {
            if path.exists() {
                let _ = Command::new("btrfs")
                    .args(["subvolume", "delete"])
                    .arg(path)
                    .output();
            }
        }
    }
}

/// What `btrfs subvolume show` says, or `None` when it says this is no subvolume.
fn btrfs_show(path: &Path) -> Option<String> {
    let out = Command::new("btrfs")
        .args(["subvolume", "show"])
        .arg(path)
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_subvolume_is_created_detected_and_snapshotted_read_only() {
    let host = require_host!();
    let pool = host.btrfs_dir("subvol");
    let mut cleanup = Subvolumes(Vec::new());
    let subvol = pool.path().join("subvol7-containers");
    let snapshots = pool.path().join("snapshots");
    fs::create_dir(&snapshots).unwrap();
    let snap = snapshots.join("subvol7-containers-2025-11-08");

    cleanup.0.push(subvol.clone());
    create_subvolume(&subvol).unwrap();
    assert!(is_subvolume(&subvol).unwrap());
    assert!(!is_readonly_subvolume(&subvol).unwrap());
    let show = btrfs_show(&subvol).expect("btrfs-progs sees a subvolume");
    let flags = show
        .lines()
        .find(|l| l.trim_start().starts_with("Flags:"))
        .expect("btrfs subvolume show prints the flags");
    assert!(!flags.contains("readonly"), "{show}");
    // An ordinary directory is not one, for both.
    assert!(!is_subvolume(&snapshots).unwrap());
    assert!(btrfs_show(&snapshots).is_none());

    let data = subvol.join("postgresql-immich");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("PG_VERSION"), b"17\n").unwrap();

    cleanup.0.push(snap.clone());
    snapshot_readonly(&subvol, &snap).unwrap();
    assert!(is_subvolume(&snap).unwrap());
    assert!(is_readonly_subvolume(&snap).unwrap());
    let show = btrfs_show(&snap).expect("btrfs-progs sees the snapshot");
    assert!(show.contains("readonly"), "{show}");
    assert_eq!(
        fs::read(snap.join("postgresql-immich/PG_VERSION")).unwrap(),
        b"17\n"
    );
    // It is read-only for real, and later changes to the source do not reach it.
    let err = fs::write(snap.join("postgresql-immich/new"), b"x").unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(rustix::io::Errno::ROFS.raw_os_error())
    );
    fs::write(data.join("PG_VERSION"), b"18\n").unwrap();
    assert_eq!(
        fs::read(snap.join("postgresql-immich/PG_VERSION")).unwrap(),
        b"17\n"
    );
    // Attribute changes on it are refused with their own error.
    match homelab_btrfs::set_nocow(snap.join("postgresql-immich")) {
        Err(Error::ReadOnly { .. }) => {}
        other => panic!("{other:?}"),
    }

    // A second snapshot with the same name is refused.
    match snapshot_readonly(&subvol, &snap) {
        Err(Error::AlreadyExists { path }) => assert_eq!(path, snap),
        other => panic!("{other:?}"),
    }
    match create_subvolume(&subvol) {
        Err(Error::AlreadyExists { path }) => assert_eq!(path, subvol),
        other => panic!("{other:?}"),
    }

    // Only read-only snapshots are deleted; a writable subvolume is refused.
    match delete_snapshot(&subvol) {
        Err(Error::NotReadOnlySnapshot { path }) => assert_eq!(path, subvol),
        other => panic!("{other:?}"),
    }
    assert!(subvol.join("postgresql-immich/PG_VERSION").exists());
    delete_snapshot(&snap).unwrap();
    assert!(!snap.exists());
    match delete_snapshot(&snapshots) {
        Err(Error::NotASubvolume { path }) => assert_eq!(path, snapshots),
        other => panic!("{other:?}"),
    }
}

#[test]
fn only_subvolumes_can_be_snapshotted() {
    let host = require_host!();
    let pool = host.btrfs_dir("subvol-plain");
    let _cleanup = Subvolumes(vec![pool.path().join("snap")]);
    let plain = pool.path().join("plain");
    fs::create_dir(&plain).unwrap();
    match snapshot_readonly(&plain, pool.path().join("snap")) {
        Err(Error::NotASubvolume { path }) => assert_eq!(path, plain),
        other => panic!("{other:?}"),
    }
    assert!(!pool.path().join("snap").exists());
    // The pool's top level is a subvolume (inode 256 of tree 5).
    assert!(is_subvolume(&host.btrfs).unwrap());
    match create_subvolume(pool.path().join("missing/sub")) {
        Err(Error::NotFound { .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn subvolumes_off_btrfs_are_refused() {
    let host = require_host!();
    let ext4 = host.ext4_dir("subvol-ext4");
    let tmpfs = host.tmpfs_dir("subvol-tmpfs");
    for (dir, want) in [
        (ext4.path(), Filesystem::Ext4),
        (tmpfs.path(), Filesystem::Tmpfs),
    ] {
        assert!(!is_subvolume(dir).unwrap());
        let target = dir.join("sub");
        match create_subvolume(&target) {
            Err(Error::NotBtrfs { filesystem, .. }) => assert_eq!(filesystem, want),
            other => panic!("{other:?}"),
        }
        assert!(!target.exists());
        match snapshot_readonly(dir, dir.join("snap")) {
            Err(Error::NotBtrfs { path, filesystem }) => {
                assert_eq!(path, dir);
                assert_eq!(filesystem, want);
                let text = Error::NotBtrfs { path, filesystem }.to_string();
                assert!(text.contains("not BTRFS"), "{text}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn creating_in_an_immutable_directory_is_permission_denied() {
    let host = require_host!();
    let pool = host.btrfs_dir("subvol-perm");
    let locked = pool.path().join("locked");
    fs::create_dir(&locked).unwrap();
    let chattr = |flag: &str| {
        let ok = Command::new("chattr")
            .arg(flag)
            .arg(&locked)
            .status()
            .unwrap()
            .success();
        assert!(ok);
    };
    chattr("+i");
    let result = create_subvolume(locked.join("sub"));
    chattr("-i");
    match result {
        Err(Error::PermissionDenied { path, .. }) => assert_eq!(path, locked.join("sub")),
        other => panic!("{other:?}"),
    }
}
