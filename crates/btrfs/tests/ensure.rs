//! Ensuring directories on the real BTRFS pool, and that planning changes nothing.

// Test code: a failed unwrap is a failed test, helpers included.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

use common::{lsattr, lsattr_nocow};
use homelab_btrfs::{
    DirChange, DirSpec, Error, Filesystem, Nocow, Owner, attributes, ensure_dir, plan_dir,
    set_nocow,
};
use immich_db_testhost::require_host;

#[test]
fn a_new_database_directory_is_created_nocow_with_owner_and_mode() {
    let host = require_host!();
    let pool = host.btrfs_dir("ensure-new");
    let parent = pool.path().join("subvol7-containers");
    let dir = parent.join("postgresql-immich");
    let spec = DirSpec::new(&dir)
        .owner(999, 998)
        .mode(0o700)
        .nocow(Nocow::On);

    let plan = plan_dir(&spec).unwrap();
    let expected = vec![
        DirChange::CreatedParent {
            path: parent.clone(),
        },
        DirChange::Created,
        DirChange::NocowSet {
            existing_entries: 0,
        },
    ];
    assert_eq!(plan.changes, expected);
    // Planning changed nothing.
    assert!(!parent.exists());

    let report = ensure_dir(&spec).unwrap();
    assert_eq!(report.changes, expected, "ensure did what plan said");
    let meta = fs::metadata(&dir).unwrap();
    assert!(meta.is_dir());
    assert_eq!((meta.uid(), meta.gid()), (999, 998));
    assert_eq!(meta.permissions().mode() & 0o7777, 0o700);
    assert!(lsattr_nocow(&dir), "{}", lsattr(&dir));
    // The parent was created plainly: copy-on-write, owned by the caller.
    assert!(!lsattr_nocow(&parent));

    // Running it again finds it as asked.
    assert!(plan_dir(&spec).unwrap().is_unchanged());
    assert!(ensure_dir(&spec).unwrap().is_unchanged());

    // Files the service writes inherit NOCOW.
    let file = dir.join("PG_VERSION");
    fs::write(&file, b"17\n").unwrap();
    assert!(attributes(&file).unwrap().is_nocow());
}

#[test]
fn an_existing_directory_gets_only_what_differs() {
    let host = require_host!();
    let pool = host.btrfs_dir("ensure-existing");
    let dir = pool.path().join("redis-immich");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    // Files from before NOCOW: they stay copy-on-write, and the report says so.
    fs::write(dir.join("dump.rdb"), b"REDIS0011").unwrap();
    fs::write(dir.join("appendonly.aof"), b"*1\r\n").unwrap();

    let spec = DirSpec::new(&dir).owner(0, 0).mode(0o750).nocow(Nocow::On);
    let plan = plan_dir(&spec).unwrap();
    let expected = vec![
        DirChange::NocowSet {
            existing_entries: 2,
        },
        DirChange::ModeChanged {
            from: 0o755,
            to: 0o750,
        },
    ];
    assert_eq!(plan.changes, expected);
    assert!(!lsattr_nocow(&dir), "plan changed nothing");

    assert_eq!(ensure_dir(&spec).unwrap().changes, expected);
    assert!(lsattr_nocow(&dir));
    assert!(!lsattr_nocow(&dir.join("dump.rdb")));
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o7777,
        0o750
    );

    // Owner changes are reported with what was there before.
    let spec = spec.owner(1000, 1000);
    assert_eq!(
        ensure_dir(&spec).unwrap().changes,
        [DirChange::OwnerChanged {
            from: Owner { uid: 0, gid: 0 },
            to: Owner {
                uid: 1000,
                gid: 1000
            },
        }]
    );
    assert_eq!(fs::metadata(&dir).unwrap().uid(), 1000);
}

#[test]
fn nocow_off_below_a_nocow_parent_is_cleared_on_the_new_directory() {
    let host = require_host!();
    let pool = host.btrfs_dir("ensure-off");
    set_nocow(pool.path()).unwrap();
    let dir = pool.path().join("ml-cache");
    let spec = DirSpec::new(&dir).nocow(Nocow::Off);
    assert_eq!(
        ensure_dir(&spec).unwrap().changes,
        [DirChange::Created, DirChange::NocowCleared]
    );
    assert!(!lsattr_nocow(&dir));
    // Leave takes what the parent gives.
    let inherited = pool.path().join("inherited");
    let report = ensure_dir(&DirSpec::new(&inherited)).unwrap();
    assert_eq!(report.changes, [DirChange::Created]);
    assert!(lsattr_nocow(&inherited));
    // On where it is inherited needs nothing beyond creating it.
    let on = pool.path().join("on");
    assert_eq!(
        ensure_dir(&DirSpec::new(&on).nocow(Nocow::On))
            .unwrap()
            .changes,
        [DirChange::Created]
    );
    assert!(lsattr_nocow(&on));
}

#[test]
fn nocow_on_ext4_and_tmpfs_is_refused_before_anything_is_created() {
    let host = require_host!();
    let ext4 = host.ext4_dir("ensure-ext4");
    let tmpfs = host.tmpfs_dir("ensure-tmpfs");
    for (root, want) in [
        (ext4.path(), Filesystem::Ext4),
        (tmpfs.path(), Filesystem::Tmpfs),
    ] {
        let dir = root.join("a/b/postgres");
        let spec = DirSpec::new(&dir).mode(0o700).nocow(Nocow::On);
        for result in [plan_dir(&spec), ensure_dir(&spec)] {
            match result {
                Err(Error::NotSupported { path, filesystem }) => {
                    assert_eq!(path, dir);
                    assert_eq!(filesystem, want);
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(!root.join("a").exists(), "nothing was created");

        // Without NOCOW, ext4 and tmpfs are fine.
        let spec = DirSpec::new(&dir).mode(0o700).nocow(Nocow::Off);
        let report = ensure_dir(&spec).unwrap();
        assert_eq!(report.changes.len(), 3, "{:?}", report.changes);
        assert!(dir.is_dir());
        assert!(ensure_dir(&spec).unwrap().is_unchanged());
    }
}

#[test]
fn a_file_in_the_way_is_named_and_nothing_changes() {
    let host = require_host!();
    let pool = host.btrfs_dir("ensure-file");
    let file = pool.path().join("data");
    fs::write(&file, b"not a directory").unwrap();
    for spec in [
        DirSpec::new(&file).nocow(Nocow::On),
        DirSpec::new(file.join("postgres")).nocow(Nocow::On),
    ] {
        match ensure_dir(&spec) {
            Err(Error::NotADirectory { path }) => assert_eq!(path, file),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(fs::read(&file).unwrap(), b"not a directory");

    match ensure_dir(&DirSpec::new(pool.path().join("x")).mode(0o100_755)) {
        Err(Error::InvalidMode { mode, .. }) => assert_eq!(mode, 0o100_755),
        other => panic!("{other:?}"),
    }
    assert!(!pool.path().join("x").exists());
}
