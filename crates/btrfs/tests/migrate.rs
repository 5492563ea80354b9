//! Migrating copy-on-write files to NOCOW on the real BTRFS pool, including a
//! migration killed in the middle of its copy.

// Test code: a failed unwrap is a failed test, helpers included.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
mod common;

use std::fs::{self, File, FileTimes};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{FileExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use common::{chattr, lsattr, lsattr_nocow};
use homelab_btrfs::{
    Error, Filesystem, MigratedFile, Migration, ServiceState, attributes, audit, migrate_to_nocow,
    set_nocow,
};
use immich_db_testhost::require_host;

/// Set in the child process of the interrupted-migration test: the file it
/// migrates.
const CHILD_ENV: &str = "HOMELAB_BTRFS_TEST_MIGRATE_CHILD";
/// Where the child writes how far its copy got before it blocks.
const CHILD_SAYS_ENV: &str = "HOMELAB_BTRFS_TEST_MIGRATE_SAYS";

/// A mebibyte of reproducible bytes, different for every `block`: a fixed
/// pseudo-random mebibyte with the block number in its first eight bytes.
fn block(block: u64) -> Vec<u8> {
    static BASE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let base = BASE.get_or_init(|| {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut out = Vec::with_capacity(1 << 20);
        while out.len() < 1 << 20 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.extend_from_slice(&state.to_le_bytes());
        }
        out
    });
    let mut out = base.clone();
    out[..8].copy_from_slice(&block.to_le_bytes());
    out
}

/// Writes `mib` mebibytes of [`block`]s.
fn write_blocks(path: &Path, mib: u64) {
    let mut f = File::create(path).unwrap();
    for i in 0..mib {
        f.write_all(&block(i)).unwrap();
    }
    f.sync_all().unwrap();
}

/// Whether `path` holds exactly `mib` mebibytes of [`block`]s.
fn has_blocks(path: &Path, mib: u64) -> bool {
    let mut f = File::open(path).unwrap();
    if f.metadata().unwrap().len() != mib << 20 {
        return false;
    }
    let mut buf = vec![0u8; 1 << 20];
    (0..mib).all(|i| {
        f.read_exact(&mut buf).unwrap();
        buf == block(i)
    })
}

fn times(meta: &fs::Metadata) -> (i64, i64, i64, i64) {
    (
        meta.atime(),
        meta.atime_nsec(),
        meta.mtime(),
        meta.mtime_nsec(),
    )
}

/// A directory with copy-on-write files, which then gets NOCOW: the situation
/// the migration is for.
fn cow_files_in_nocow_dir(pool: &Path, files: &[(&str, &[u8])]) -> Vec<PathBuf> {
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|(name, data)| {
            let p = pool.join(name);
            fs::write(&p, data).unwrap();
            p
        })
        .collect();
    set_nocow(pool).unwrap();
    for p in &paths {
        assert!(!lsattr_nocow(p));
    }
    paths
}

#[test]
fn migrated_files_are_nocow_with_the_same_bytes_owner_mode_times_and_xattrs() {
    let host = require_host!();
    let pool = host.btrfs_dir("migrate-keep");
    let big = pool.path().join("16384");
    write_blocks(&big, 8);
    let paths = cow_files_in_nocow_dir(pool.path(), &[("PG_VERSION", b"17\n"), ("empty", b"")]);
    let small = &paths[0];
    let empty = &paths[1];

    // Owner, mode with a set-id bit, times with nanoseconds, a user xattr and the
    // attributes A and d.
    let stamp = |secs| SystemTime::UNIX_EPOCH + Duration::new(secs, 123_456_789);
    for (i, path) in [&big, small, empty].into_iter().enumerate() {
        std::os::unix::fs::chown(path, Some(999), Some(998 - u32::try_from(i).unwrap())).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o2640)).unwrap();
        rustix::fs::setxattr(
            path,
            "user.origin",
            format!("seed-{i}").as_bytes(),
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        chattr("+Ad", path);
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_times(
                FileTimes::new()
                    .set_accessed(stamp(1_700_000_000))
                    .set_modified(stamp(1_600_000_000)),
            )
            .unwrap();
    }
    let before: Vec<fs::Metadata> = [&big, small, empty]
        .iter()
        .map(|p| fs::metadata(p).unwrap())
        .collect();

    let report = migrate_to_nocow(&[&big, small, empty], &ServiceState::Stopped).unwrap();
    assert_eq!(
        report.migrated,
        [
            MigratedFile::new(&big, 8 << 20),
            MigratedFile::new(small, 3),
            MigratedFile::new(empty, 0),
        ]
    );
    assert_eq!(report.bytes(), (8 << 20) + 3);
    assert!(report.already_nocow.is_empty());

    for (i, (path, old)) in [&big, small, empty].into_iter().zip(&before).enumerate() {
        let new = fs::metadata(path).unwrap();
        // Times first: reading the file below would touch the access time.
        assert_eq!(times(&new), times(old), "{}", path.display());
        assert_ne!(new.ino(), old.ino(), "a new file took its place");
        assert_eq!((new.uid(), new.gid()), (old.uid(), old.gid()));
        assert_eq!(new.mode(), old.mode());
        assert_eq!(new.mode() & 0o7777, 0o2640);
        assert_eq!(new.len(), old.len());
        let mut value = [0u8; 16];
        let n = rustix::fs::getxattr(path, "user.origin", &mut value[..]).unwrap();
        assert_eq!(&value[..n], format!("seed-{i}").as_bytes());
        // No trace of the migration on the file.
        assert!(rustix::fs::getxattr_query(path, "user.homelab-btrfs.migrating").is_err());
        // e2fsprogs sees NOCOW and the kept attributes.
        assert_eq!(lsattr(path), "------dA-------C------", "{}", path.display());
        assert!(attributes(path).unwrap().is_nocow());
    }
    assert!(has_blocks(&big, 8));
    assert_eq!(fs::read(small).unwrap(), b"17\n");

    // The directory holds nothing else, and the audit is clean.
    let mut names: Vec<_> = fs::read_dir(pool.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["16384", "PG_VERSION", "empty"]);
    assert!(audit(pool.path()).unwrap().is_clean());

    // Again: nothing to do.
    let again = migrate_to_nocow(&[&big, small], &ServiceState::Stopped).unwrap();
    assert!(again.migrated.is_empty());
    assert_eq!(again.already_nocow, [big.clone(), small.clone()]);
}

#[test]
fn holes_stay_holes() {
    let host = require_host!();
    let pool = host.btrfs_dir("migrate-sparse");
    let sparse = pool.path().join("sparse");
    {
        let f = File::create(&sparse).unwrap();
        f.set_len(64 << 20).unwrap();
        f.write_all_at(b"middle", 32 << 20).unwrap();
        f.write_all_at(b"end", (64 << 20) - 3).unwrap();
        f.sync_all().unwrap();
    }
    set_nocow(pool.path()).unwrap();
    migrate_to_nocow(&[&sparse], &ServiceState::Stopped).unwrap();
    let meta = fs::metadata(&sparse).unwrap();
    assert_eq!(meta.len(), 64 << 20);
    assert!(
        meta.blocks() * 512 < 1 << 20,
        "{} bytes allocated",
        meta.blocks() * 512
    );
    assert!(lsattr_nocow(&sparse));
    let f = File::open(&sparse).unwrap();
    let mut buf = [0u8; 6];
    f.read_exact_at(&mut buf, 32 << 20).unwrap();
    assert_eq!(&buf, b"middle");
    f.read_exact_at(&mut buf[..3], (64 << 20) - 3).unwrap();
    assert_eq!(&buf[..3], b"end");
    f.read_exact_at(&mut buf, 1 << 20).unwrap();
    assert_eq!(buf, [0; 6]);
}

#[test]
fn a_running_service_is_refused_and_nothing_changes() {
    let host = require_host!();
    let pool = host.btrfs_dir("migrate-running");
    let paths = cow_files_in_nocow_dir(pool.path(), &[("dump.rdb", b"REDIS")]);
    let inode = fs::metadata(&paths[0]).unwrap().ino();
    match migrate_to_nocow(
        &paths,
        &ServiceState::Running {
            service: "redis-immich.service".into(),
        },
    ) {
        Err(Error::ServiceRunning { service }) => assert_eq!(service, "redis-immich.service"),
        other => panic!("{other:?}"),
    }
    assert_eq!(fs::metadata(&paths[0]).unwrap().ino(), inode);
    assert!(!lsattr_nocow(&paths[0]));
}

/// Whether an error is the one a case expects.
type Expected = fn(&Error) -> bool;

#[test]
fn bad_input_anywhere_in_the_list_changes_nothing() {
    let host = require_host!();
    let pool = host.btrfs_dir("migrate-bad");
    // Copy-on-write like the good files, so only what is wrong with them stops
    // the migration.
    let linked = pool.path().join("linked");
    fs::write(&linked, b"l").unwrap();
    fs::hard_link(&linked, pool.path().join("other-name")).unwrap();
    let immutable = pool.path().join("immutable");
    fs::write(&immutable, b"i").unwrap();
    let _guard = common::Immutable::set(&immutable);
    let paths = cow_files_in_nocow_dir(pool.path(), &[("a", b"a"), ("b", b"b")]);
    let symlink = pool.path().join("symlink");
    std::os::unix::fs::symlink(&paths[0], &symlink).unwrap();
    let missing = pool.path().join("missing");
    let ext4 = host.ext4_dir("migrate-bad");
    let ext4_file = ext4.path().join("f");
    fs::write(&ext4_file, b"e").unwrap();

    let inodes: Vec<u64> = paths
        .iter()
        .map(|p| fs::metadata(p).unwrap().ino())
        .collect();
    let cases: Vec<(PathBuf, Expected)> = vec![
        (missing.clone(), |e| matches!(e, Error::NotFound { .. })),
        (linked.clone(), |e| {
            matches!(e, Error::HardLinked { links: 2, .. })
        }),
        (symlink.clone(), |e| {
            matches!(e, Error::NotARegularFile { .. })
        }),
        (immutable.clone(), |e| matches!(e, Error::Immutable { .. })),
        (ext4_file.clone(), |e| {
            matches!(
                e,
                Error::NotSupported {
                    filesystem: Filesystem::Ext4,
                    ..
                }
            )
        }),
    ];
    for (bad, is_expected) in cases {
        let list = [paths[0].clone(), bad.clone(), paths[1].clone()];
        let err = migrate_to_nocow(&list, &ServiceState::Stopped).unwrap_err();
        assert!(is_expected(&err), "{}: {err:?}", bad.display());
        assert!(
            err.to_string().contains(&bad.display().to_string()),
            "{err}"
        );
        // Neither good file was touched.
        for (p, ino) in paths.iter().zip(&inodes) {
            assert_eq!(fs::metadata(p).unwrap().ino(), *ino);
            assert!(!lsattr_nocow(p));
        }
    }
}

#[test]
fn a_file_in_the_way_of_the_copy_is_not_deleted() {
    let host = require_host!();
    let pool = host.btrfs_dir("migrate-inway");
    let paths = cow_files_in_nocow_dir(pool.path(), &[("dump.rdb", b"REDIS")]);
    // A user's file with the temporary copy's name, not marked as a copy.
    let in_way = pool.path().join(".nocow-migrate~dump.rdb");
    fs::write(&in_way, b"precious").unwrap();
    match migrate_to_nocow(&paths, &ServiceState::Stopped) {
        Err(Error::TempFileInTheWay { path }) => assert_eq!(path, in_way),
        other => panic!("{other:?}"),
    }
    assert_eq!(fs::read(&in_way).unwrap(), b"precious");
    assert_eq!(fs::read(&paths[0]).unwrap(), b"REDIS");
}

/// Not a test by itself: the process the next test starts and kills. Once the
/// first chunk is copied it writes how far it got to the file the test named,
/// and blocks: it is killed with a copy that holds some data but not all,
/// whatever the host's speed.
#[test]
#[ignore = "run as a child process by interrupted_migration_keeps_the_original_and_a_rerun_finishes"]
fn migrate_child_process() {
    let path = std::env::var_os(CHILD_ENV).expect("run by the interrupted-migration test");
    let said = std::env::var_os(CHILD_SAYS_ENV).expect("run by the interrupted-migration test");
    Migration::new(&ServiceState::Stopped)
        .on_copied(|_, offset| {
            fs::write(&said, offset.to_string()).unwrap();
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        })
        .run(&[PathBuf::from(path)])
        .unwrap();
    panic!("the migration finished before it was killed");
}

#[test]
fn interrupted_migration_keeps_the_original_and_a_rerun_finishes() {
    const MIB: u64 = 256;
    let host = require_host!();
    let pool = host.btrfs_dir("migrate-kill");
    let file = pool.path().join("appendonly.aof");
    write_blocks(&file, MIB);
    set_nocow(pool.path()).unwrap();
    let before = fs::metadata(&file).unwrap();
    let temp = pool.path().join(".nocow-migrate~appendonly.aof");
    let says = tempfile::tempdir().unwrap();
    let says = says.path().join("copied");

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "migrate_child_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &file)
        .env(CHILD_SAYS_ENV, &says)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Killed once its copy holds the first chunk, while it waits in the hook
    // (which it does until killed: there is no race).
    let said = immich_db_testhost::wait_for("the first chunk", Duration::from_secs(120), || {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("the child ended before its copy started ({status}): {err}");
        }
        fs::read_to_string(&says).ok().filter(|s| !s.is_empty())
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let copied_at_kill: u64 = said.parse().unwrap();
    let left = fs::metadata(&temp)
        .expect("the killed run left its copy")
        .len();
    eprintln!(
        "killed the migration with {left} of {} bytes copied",
        MIB << 20
    );
    assert!(
        copied_at_kill > 0 && copied_at_kill < MIB << 20,
        "{copied_at_kill}"
    );
    assert!(left >= copied_at_kill && left < MIB << 20, "{left}");

    // The original is intact: same inode, same times, same bytes, still COW.
    let after = fs::metadata(&file).unwrap();
    assert_eq!(after.ino(), before.ino());
    assert_eq!(times(&after).2, times(&before).2);
    assert!(!lsattr_nocow(&file));
    assert!(has_blocks(&file, MIB));
    // The audit recognises the leftover as one.
    let report = audit(pool.path()).unwrap();
    assert_eq!(report.leftovers, std::slice::from_ref(&temp));
    assert_eq!(report.cow_files.len(), 1);

    // A second run removes the leftover and finishes the job.
    let report = migrate_to_nocow(&[&file], &ServiceState::Stopped).unwrap();
    assert_eq!(report.leftovers_removed, std::slice::from_ref(&temp));
    assert_eq!(report.migrated.len(), 1);
    assert!(!temp.exists());
    assert!(lsattr_nocow(&file));
    assert!(has_blocks(&file, MIB));
    assert!(audit(pool.path()).unwrap().is_clean());
}
