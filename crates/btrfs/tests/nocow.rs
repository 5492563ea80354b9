//! NOCOW and inode attributes on the test host's real BTRFS pool, cross-checked
//! with e2fsprogs, and the "not supported" answers of ext4 and tmpfs.

// Test code: a failed unwrap is a failed test, helpers included.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
mod common;

use std::fs;

use common::{Immutable, chattr, lsattr, lsattr_nocow};
use homelab_btrfs::{
    Attributes, Error, Filesystem, NocowChange, attributes, clear_nocow, filesystem, is_btrfs,
    set_nocow, usage,
};
use immich_db_testhost::require_host;

#[test]
fn nocow_set_on_a_new_directory_is_read_back_and_inherited() {
    let host = require_host!();
    let dir = host.btrfs_dir("nocow-dir");
    let dir = dir.path();
    assert!(!attributes(dir).unwrap().is_nocow());

    assert_eq!(set_nocow(dir).unwrap(), NocowChange::Set);
    assert!(attributes(dir).unwrap().is_nocow());
    assert!(lsattr_nocow(dir), "lsattr -d shows no C: {}", lsattr(dir));
    // Asking again changes nothing.
    assert_eq!(set_nocow(dir).unwrap(), NocowChange::AlreadySo);

    // Files and directories created afterwards inherit it.
    let file = dir.join("base.dat");
    fs::write(&file, b"written after +C").unwrap();
    let sub = dir.join("pg_wal");
    fs::create_dir(&sub).unwrap();
    let nested = sub.join("000000010000000000000001");
    fs::write(&nested, vec![7u8; 64 * 1024]).unwrap();
    for path in [&file, &sub, &nested] {
        assert!(attributes(path).unwrap().is_nocow(), "{}", path.display());
        assert!(lsattr_nocow(path), "{}", path.display());
    }

    // Clearing works on the directory and keeps its other attributes.
    chattr("+A", dir);
    assert_eq!(clear_nocow(dir).unwrap(), NocowChange::Cleared);
    let attrs = attributes(dir).unwrap();
    assert!(!attrs.is_nocow());
    assert!(attrs.contains(Attributes::NOATIME), "{attrs}");
    assert_eq!(lsattr(dir), attrs.to_string());
    assert_eq!(clear_nocow(dir).unwrap(), NocowChange::AlreadySo);
}

#[test]
fn nocow_on_a_file_that_holds_data_is_reported_as_ignored() {
    let host = require_host!();
    let dir = host.btrfs_dir("nocow-ignored");
    let file = dir.path().join("dump.rdb");
    fs::write(&file, vec![1u8; 10_000]).unwrap();

    match set_nocow(&file) {
        Err(Error::NocowIgnored { path, size, wanted }) => {
            assert_eq!(path, file);
            assert_eq!(size, 10_000);
            assert!(wanted);
        }
        other => panic!("expected NocowIgnored, got {other:?}"),
    }
    // It really was ignored: e2fsprogs agrees.
    assert!(!lsattr_nocow(&file), "{}", lsattr(&file));
    let text = set_nocow(&file).unwrap_err().to_string();
    assert!(
        text.contains("+C ignored") && text.contains("10000 bytes"),
        "{text}"
    );

    // The same in the other direction: a file that inherited NOCOW and holds
    // data keeps it.
    let nocow_dir = dir.path().join("db");
    fs::create_dir(&nocow_dir).unwrap();
    set_nocow(&nocow_dir).unwrap();
    let inherited = nocow_dir.join("table");
    fs::write(&inherited, vec![2u8; 4096]).unwrap();
    match clear_nocow(&inherited) {
        Err(Error::NocowIgnored { wanted, size, .. }) => {
            assert!(!wanted);
            assert_eq!(size, 4096);
        }
        other => panic!("expected NocowIgnored, got {other:?}"),
    }
    assert!(lsattr_nocow(&inherited));

    // An empty file takes it.
    let empty = dir.path().join("empty");
    fs::File::create(&empty).unwrap();
    assert_eq!(set_nocow(&empty).unwrap(), NocowChange::Set);
    assert!(lsattr_nocow(&empty));
}

#[test]
fn nocow_set_by_chattr_is_read_by_this_crate() {
    let host = require_host!();
    let dir = host.btrfs_dir("nocow-chattr");
    let sub = dir.path().join("redis");
    fs::create_dir(&sub).unwrap();
    assert!(!attributes(&sub).unwrap().is_nocow());
    chattr("+C", &sub);
    assert!(attributes(&sub).unwrap().is_nocow());
    assert_eq!(set_nocow(&sub).unwrap(), NocowChange::AlreadySo);
    chattr("-C", &sub);
    assert!(!attributes(&sub).unwrap().is_nocow());
}

#[test]
fn nocow_conflicts_with_compression() {
    let host = require_host!();
    let dir = host.btrfs_dir("nocow-compress");
    let file = dir.path().join("f");
    fs::File::create(&file).unwrap();
    chattr("+c", &file);
    match set_nocow(&file) {
        Err(Error::NocowConflictsWithCompression { path }) => assert_eq!(path, file),
        other => panic!("{other:?}"),
    }
    assert_eq!(lsattr(&file), "--------c-------------");
}

#[test]
fn rendering_matches_lsattr_on_the_same_files() {
    let host = require_host!();
    let btrfs = host.btrfs_dir("nocow-render");
    let ext4 = host.ext4_dir("nocow-render");
    let tmpfs = host.tmpfs_dir("nocow-render");
    let mut paths = vec![
        btrfs.path().to_path_buf(),
        ext4.path().to_path_buf(),
        tmpfs.path().to_path_buf(),
    ];
    let mut guards = Vec::new();
    for (name, flags) in [
        ("plain", ""),
        ("nocow", "+C"),
        ("noatime-nodump", "+Ad"),
        ("sync", "+S"),
        ("compressed", "+c"),
        ("nocompress", "+m"),
        ("appendonly", "+a"),
        ("immutable", "+i"),
        ("dirsync-dir", "+D"),
    ] {
        let path = btrfs.path().join(name);
        if name.ends_with("-dir") {
            fs::create_dir(&path).unwrap();
        } else {
            fs::File::create(&path).unwrap();
        }
        if !flags.is_empty() {
            chattr(flags, &path);
        }
        if flags.contains('i') || flags.contains('a') {
            guards.push(path.clone());
        }
        paths.push(path);
    }
    let ext4_file = ext4.path().join("file");
    fs::write(&ext4_file, b"ext4 data").unwrap();
    paths.push(ext4_file);
    let tmpfs_file = tmpfs.path().join("file");
    fs::write(&tmpfs_file, b"tmpfs data").unwrap();
    chattr("+A", &tmpfs_file);
    paths.push(tmpfs_file);

    let result = std::panic::catch_unwind(|| {
        for path in &paths {
            let ours = attributes(path).unwrap().to_string();
            assert_eq!(ours, lsattr(path), "{}", path.display());
            // And what lsattr prints parses back to the same attributes.
            let parsed: Attributes = lsattr(path).parse().unwrap();
            assert_eq!(parsed.to_string(), ours);
        }
    });
    for path in &guards {
        chattr("-ia", path);
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn ext4_and_tmpfs_answer_not_supported() {
    let host = require_host!();
    let ext4 = host.ext4_dir("nocow-ext4");
    let tmpfs = host.tmpfs_dir("nocow-tmpfs");
    for (dir, want) in [
        (ext4.path(), Filesystem::Ext4),
        (tmpfs.path(), Filesystem::Tmpfs),
    ] {
        assert_eq!(filesystem(dir).unwrap(), want);
        assert!(!is_btrfs(dir).unwrap());
        let before = lsattr(dir);
        match set_nocow(dir) {
            Err(Error::NotSupported { path, filesystem }) => {
                assert_eq!(path, dir);
                assert_eq!(filesystem, want);
            }
            other => panic!("{}: expected NotSupported, got {other:?}", dir.display()),
        }
        let text = set_nocow(dir).unwrap_err().to_string();
        assert!(text.contains("not BTRFS"), "{text}");
        assert!(text.contains("NOCOW has no effect here"), "{text}");
        // Nothing changed, and clearing what cannot be set is already so.
        assert_eq!(lsattr(dir), before);
        assert_eq!(clear_nocow(dir).unwrap(), NocowChange::AlreadySo);
    }
}

#[test]
fn missing_paths_and_non_directories_are_named() {
    let host = require_host!();
    let dir = host.btrfs_dir("nocow-errors");
    let missing = dir.path().join("missing");
    match set_nocow(&missing) {
        Err(Error::NotFound { path }) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }
    match attributes(&missing) {
        Err(Error::NotFound { path }) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }
    let file = dir.path().join("file");
    fs::write(&file, b"x").unwrap();
    match set_nocow(file.join("below")) {
        Err(Error::NotADirectory { path }) => assert_eq!(path, file),
        other => panic!("{other:?}"),
    }
    // A FIFO is never opened (that would block).
    let fifo = dir.path().join("fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    match set_nocow(&fifo) {
        Err(Error::NotARegularFile { path }) => assert_eq!(path, fifo),
        other => panic!("{other:?}"),
    }
}

#[test]
fn permission_denied_is_its_own_error() {
    let host = require_host!();
    let dir = host.btrfs_dir("nocow-perm");
    // Root passes permission checks, but nobody may create an entry in an
    // immutable directory.
    let locked = dir.path().join("locked");
    fs::create_dir(&locked).unwrap();
    let _guard = Immutable::set(&locked);
    match homelab_btrfs::ensure_dir(&homelab_btrfs::DirSpec::new(locked.join("sub"))) {
        Err(Error::PermissionDenied { path, action }) => {
            assert_eq!(path, locked.join("sub"));
            assert_eq!(action, "creating");
        }
        other => panic!("{other:?}"),
    }
    assert!(!locked.join("sub").exists());
}

#[test]
fn usage_reports_the_pool() {
    let host = require_host!();
    let dir = host.btrfs_dir("nocow-usage");
    let u = usage(dir.path()).unwrap();
    assert_eq!(u.filesystem, Filesystem::Btrfs);
    assert!(
        u.size > 0 && u.used <= u.size && u.available <= u.size,
        "{u:?}"
    );
    // df, the independent witness, agrees. Other tests write to the pool at the
    // same time, so used and available may have moved a little in between.
    let out = std::process::Command::new("df")
        .args(["--block-size=1", "--output=size,used,avail"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let figures: Vec<u64> = text
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(u.size, figures[0]);
    let near = |a: u64, b: u64| a.abs_diff(b) <= 64 << 20;
    assert!(near(u.used, figures[1]), "{u:?} vs df {figures:?}");
    assert!(near(u.available, figures[2]), "{u:?} vs df {figures:?}");
}
