//! The audit on the real BTRFS pool, checked against `lsattr -R` and against a
//! plain walk of the same tree.

// Test code: a failed unwrap is a failed test, helpers included.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use homelab_btrfs::{
    Attributes, Error, Filesystem, SkipReason, audit, audit_with_threads, disk_usage, set_nocow,
};
use immich_db_testhost::require_host;

/// Regular files `lsattr -R` shows without `C`, below `root`.
fn cow_files_by_lsattr(root: &Path) -> BTreeSet<PathBuf> {
    let out = Command::new("lsattr").arg("-R").arg(root).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(attrs, _)| attrs.parse::<Attributes>().is_ok())
        .filter(|(attrs, _)| !attrs.contains('C'))
        .map(|(_, path)| PathBuf::from(path))
        .filter(|path| path.is_file())
        .collect()
}

/// Files, bytes and allocated bytes below `dir`, by a plain recursive walk.
fn walk(dir: &Path) -> (u64, u64, u64) {
    let mut total = (0, 0, 0);
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = fs::symlink_metadata(entry.path()).unwrap();
        if meta.is_dir() {
            let (f, b, a) = walk(&entry.path());
            total = (total.0 + f, total.1 + b, total.2 + a);
        } else if meta.is_file() {
            total = (
                total.0 + 1,
                total.1 + meta.len(),
                total.2 + meta.blocks() * 512,
            );
        }
    }
    total
}

#[test]
fn finds_the_files_that_predate_nocow_with_their_sizes() {
    let host = require_host!();
    let pool = host.btrfs_dir("audit-basic");
    let root = pool.path().join("postgresql-immich");
    fs::create_dir_all(root.join("base/1")).unwrap();
    fs::create_dir_all(root.join("global")).unwrap();
    // Written before +C: copy-on-write.
    fs::write(root.join("PG_VERSION"), b"17\n").unwrap();
    fs::write(root.join("base/1/1259"), vec![1u8; 8192]).unwrap();
    fs::write(root.join("global/pg_control"), vec![2u8; 20_000]).unwrap();
    set_nocow(&root).unwrap();
    // Written after: NOCOW where the directory is, COW below old directories.
    fs::create_dir(root.join("pg_wal")).unwrap();
    fs::write(
        root.join("pg_wal/000000010000000000000001"),
        vec![3u8; 65_536],
    )
    .unwrap();
    fs::write(root.join("postmaster.pid"), b"1\n").unwrap();
    fs::write(root.join("base/1/2608"), vec![4u8; 16_384]).unwrap();

    let report = audit(&root).unwrap();
    assert!(report.root_nocow);
    let found: Vec<(PathBuf, u64)> = report
        .cow_files
        .iter()
        .map(|f| (f.path.clone(), f.size))
        .collect();
    assert_eq!(
        found,
        [
            (root.join("PG_VERSION"), 3),
            (root.join("base/1/1259"), 8192),
            (root.join("base/1/2608"), 16_384),
            (root.join("global/pg_control"), 20_000),
        ]
    );
    assert_eq!(report.cow_bytes(), 3 + 8192 + 16_384 + 20_000);
    assert_eq!(
        report.cow_dirs,
        [root.join("base"), root.join("base/1"), root.join("global")]
    );
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert!(!report.is_clean());

    // lsattr -R, the independent witness, sees the same copy-on-write files.
    let by_lsattr = cow_files_by_lsattr(&root);
    let ours: BTreeSet<PathBuf> = report.cow_files.iter().map(|f| f.path.clone()).collect();
    assert_eq!(ours, by_lsattr);

    // Usage per directory matches a plain walk.
    for usage in &report.dirs {
        let (files, bytes, allocated) = walk(&usage.path);
        assert_eq!(
            (usage.files, usage.bytes, usage.allocated),
            (files, bytes, allocated),
            "{}",
            usage.path.display()
        );
    }
    let total = report.total().unwrap();
    assert_eq!(total.path, root);
    assert_eq!(total.files, 6);
    let dirs: Vec<&Path> = report.dirs.iter().map(|d| d.path.as_path()).collect();
    assert_eq!(dirs.len(), 5, "{dirs:?}");
}

#[test]
fn a_tree_that_was_nocow_from_the_start_is_clean() {
    let host = require_host!();
    let pool = host.btrfs_dir("audit-clean");
    set_nocow(pool.path()).unwrap();
    fs::create_dir_all(pool.path().join("a/b")).unwrap();
    fs::write(pool.path().join("a/b/f"), b"data").unwrap();
    let report = audit(pool.path()).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert!(cow_files_by_lsattr(pool.path()).is_empty());

    // A COW tree has nothing to report either: nothing below it asked for NOCOW.
    let cow = host.btrfs_dir("audit-cow");
    fs::write(cow.path().join("photo.jpg"), b"jpeg").unwrap();
    let report = audit(cow.path()).unwrap();
    assert!(!report.root_nocow);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.total().unwrap().files, 1);
}

#[test]
fn a_wide_tree_gives_the_same_answer_with_any_number_of_threads() {
    let host = require_host!();
    let pool = host.btrfs_dir("audit-wide");
    let root = pool.path();
    for d in 0..40 {
        let dir = root.join(format!("d{d:02}"));
        fs::create_dir(&dir).unwrap();
        for f in 0..25 {
            fs::write(dir.join(format!("old{f}")), vec![0u8; f * 100]).unwrap();
        }
    }
    set_nocow(root).unwrap();
    for d in 0..40 {
        // Half of the directories get NOCOW too, so their new files are NOCOW.
        let dir = root.join(format!("d{d:02}"));
        if d % 2 == 0 {
            set_nocow(&dir).unwrap();
        }
        for f in 0..10 {
            fs::write(dir.join(format!("new{f}")), b"new").unwrap();
        }
    }
    // Hard links count once in the usage.
    fs::hard_link(root.join("d00/old24"), root.join("d01/link")).unwrap();

    let by_lsattr = cow_files_by_lsattr(root);
    assert_eq!(by_lsattr.len(), 40 * 25 + 20 * 10 + 1);
    let mut totals = Vec::new();
    for threads in [1, 2, 8] {
        let report = audit_with_threads(root, threads).unwrap();
        let ours: BTreeSet<PathBuf> = report.cow_files.iter().map(|f| f.path.clone()).collect();
        assert_eq!(ours, by_lsattr, "{threads} threads");
        assert_eq!(report.cow_dirs.len(), 20);
        assert_eq!(report.dirs.len(), 41);
        totals.push(report.total().unwrap().clone());
    }
    assert!(totals.windows(2).all(|w| w[0] == w[1]), "{totals:?}");
    let total = &totals[0];
    assert_eq!(total.files, 40 * 35);
    let per_dir: u64 = (0..25).map(|f| f * 100).sum();
    assert_eq!(total.bytes, 40 * per_dir + 40 * 10 * 3);
}

#[test]
fn leftovers_of_a_migration_are_listed_apart() {
    let host = require_host!();
    let pool = host.btrfs_dir("audit-leftover");
    let root = pool.path();
    fs::write(root.join("dump.rdb"), b"old").unwrap();
    // Named like a temporary copy but not marked as one: a user's file, audited
    // as any other.
    let lookalike = root.join(".nocow-migrate~notes");
    fs::write(&lookalike, b"mine").unwrap();
    set_nocow(root).unwrap();
    let leftover = root.join(".nocow-migrate~dump.rdb");
    fs::write(&leftover, b"partial").unwrap();
    rustix::fs::setxattr(
        &leftover,
        "user.homelab-btrfs.migrating",
        b"dump.rdb",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();

    let report = audit(root).unwrap();
    assert_eq!(report.leftovers, [leftover]);
    let cow: Vec<&Path> = report.cow_files.iter().map(|f| f.path.as_path()).collect();
    assert_eq!(cow, [lookalike.as_path(), root.join("dump.rdb").as_path()]);
}

/// Unmounts a test's mount when dropped, also when the test fails.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A small tmpfs mounted at `root/mnt`, unmounted when dropped.
fn mount_tmpfs_below(root: &Path) -> Unmount {
    let mnt = root.join("mnt");
    fs::create_dir(&mnt).unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1M", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(status.success());
    Unmount(mnt)
}

#[test]
fn other_mounts_are_skipped() {
    let host = require_host!();
    let pool = host.btrfs_dir("audit-mount");
    let root = pool.path();
    set_nocow(root).unwrap();
    let mounted = mount_tmpfs_below(root);
    let mnt = &mounted.0;
    fs::write(mnt.join("elsewhere"), b"x").unwrap();

    let report = audit(root).unwrap();
    assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
    assert_eq!(&report.skipped[0].path, mnt);
    assert!(matches!(report.skipped[0].reason, SkipReason::OtherMount));
    assert!(report.cow_files.is_empty());
}

#[test]
fn roots_that_cannot_be_audited_are_errors() {
    let host = require_host!();
    let ext4 = host.ext4_dir("audit-ext4");
    match audit(ext4.path()) {
        Err(Error::NotSupported { path, filesystem }) => {
            assert_eq!(path, ext4.path());
            assert_eq!(filesystem, Filesystem::Ext4);
        }
        other => panic!("{other:?}"),
    }
    let pool = host.btrfs_dir("audit-errors");
    let missing = pool.path().join("missing");
    match audit(&missing) {
        Err(Error::NotFound { path }) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }
    let file = pool.path().join("file");
    fs::write(&file, b"x").unwrap();
    match audit(&file) {
        Err(Error::NotADirectory { path }) => assert_eq!(path, file),
        other => panic!("{other:?}"),
    }
}

#[test]
fn disk_usage_measures_a_tree_on_any_filesystem() {
    let host = require_host!();
    let dirs = [
        host.btrfs_dir("usage"),
        host.ext4_dir("usage"),
        host.tmpfs_dir("usage"),
    ];
    for dir in &dirs {
        let root = dir.path();
        fs::create_dir_all(root.join("base/1")).unwrap();
        fs::write(root.join("PG_VERSION"), b"17\n").unwrap();
        fs::write(root.join("base/1/1259"), vec![1u8; 8192]).unwrap();
        fs::write(root.join("base/1/2608"), vec![2u8; 100_000]).unwrap();
        // A hard link counts once; a symbolic link is not a file's data; a
        // file named like a migration's temporary copy is a file like any other.
        fs::hard_link(root.join("base/1/2608"), root.join("base/link")).unwrap();
        std::os::unix::fs::symlink("base/1/1259", root.join("symlink")).unwrap();
        fs::write(root.join(".nocow-migrate~x"), b"data").unwrap();

        let usage = disk_usage(root).unwrap();
        assert_eq!(usage.path, root);
        assert_eq!((usage.files, usage.bytes), (4, 3 + 8192 + 100_000 + 4));
        // The plain walk counts the linked file twice.
        let (files, bytes, allocated) = walk(root);
        let linked = fs::metadata(root.join("base/link")).unwrap().blocks() * 512;
        assert!(linked >= 100_000, "{linked}");
        assert_eq!(
            (usage.files, usage.bytes, usage.allocated),
            (files - 1, bytes - 100_000, allocated - linked),
            "{}",
            root.display()
        );
    }
    // On BTRFS, the audit's total says the same.
    let root = dirs[0].path();
    assert_eq!(
        audit(root).unwrap().total(),
        Some(&disk_usage(root).unwrap())
    );
}

#[test]
fn disk_usage_stays_on_the_root_mount_and_refuses_what_is_no_directory() {
    let host = require_host!();
    let pool = host.btrfs_dir("usage-mount");
    let root = pool.path();
    fs::write(root.join("here"), vec![1u8; 4096]).unwrap();
    let mounted = mount_tmpfs_below(root);
    let mnt = &mounted.0;
    fs::write(mnt.join("elsewhere"), vec![2u8; 8192]).unwrap();
    let usage = disk_usage(root).unwrap();
    assert_eq!((usage.files, usage.bytes), (1, 4096));

    let missing = root.join("missing");
    match disk_usage(&missing) {
        Err(Error::NotFound { path }) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }
    let file = root.join("here");
    match disk_usage(&file) {
        Err(Error::NotADirectory { path }) => assert_eq!(path, file),
        other => panic!("{other:?}"),
    }
}
