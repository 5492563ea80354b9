//! Migration throughput against `cp` of the same files.
//!
//! On the test host's BTRFS pool (`IMMICH_DB_TEST_BTRFS`, default
//! `/mnt/immich-db-test/btrfs`): 16 copy-on-write files of 32 mebibytes in a directory
//! that then gets NOCOW, the state of a database directory where `chattr +C` came
//! too late. Each round copies them with `cp --reflink=never` into a NOCOW
//! directory (a real copy, as the migration makes; cp's default on BTRFS would
//! only share extents), syncs, then migrates them in place. The migration syncs
//! every file and directory it writes, so cp is also shown followed by `sync`.
//! The page cache holds the sources for both. Median of three rounds.
//!
//! `cargo bench -p homelab-btrfs --bench migrate_vs_cp`

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const FILES: usize = 16;
const FILE_MIB: usize = 32;
const ROUNDS: usize = 3;

fn sync(dir: &Path) {
    let ok = Command::new("sync")
        .arg("-f")
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "sync -f failed");
}

/// Copy-on-write files of pseudo-random bytes in `dir`, which then gets NOCOW.
fn make_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::create_dir(dir).expect("create the source directory");
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut chunk = vec![0u8; 1 << 20];
    let paths: Vec<PathBuf> = (0..FILES)
        .map(|i| {
            let path = dir.join(format!("{:05}", 16_384 + i));
            let mut f = std::fs::File::create(&path).expect("create a source file");
            for _ in 0..FILE_MIB {
                for word in chunk.chunks_exact_mut(8) {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    word.copy_from_slice(&state.to_le_bytes());
                }
                f.write_all(&chunk).expect("write a source file");
            }
            path
        })
        .collect();
    sync(dir);
    homelab_btrfs::set_nocow(dir).expect("set NOCOW on the source directory");
    paths
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn main() {
    // Skips with a visible line where the test host is not set up.
    let Some(host) = immich_db_testhost::host("migrate_vs_cp") else {
        return;
    };
    let scratch = host.btrfs_dir("bench-migrate");
    let mib = u32::try_from(FILES * FILE_MIB).expect("a few hundred mebibytes");
    let bytes = f64::from(mib) * 1024.0 * 1024.0;
    let (mut cp, mut cp_sync, mut migrate) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let source = scratch.path().join(format!("source-{round}"));
        let target = scratch.path().join(format!("cp-{round}"));
        let files = make_files(&source);
        std::fs::create_dir(&target).expect("create the cp target");
        homelab_btrfs::set_nocow(&target).expect("set NOCOW on the cp target");

        let start = Instant::now();
        let ok = Command::new("cp")
            .arg("--reflink=never")
            .args(&files)
            .arg(&target)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cp failed");
        cp.push(start.elapsed());
        sync(&target);
        cp_sync.push(start.elapsed());

        let start = Instant::now();
        let report = homelab_btrfs::migrate_to_nocow(&files, &homelab_btrfs::ServiceState::Stopped)
            .expect("migrate");
        migrate.push(start.elapsed());
        assert_eq!(report.migrated.len(), FILES);
        for f in &files {
            assert!(
                homelab_btrfs::attributes(f).expect("attributes").is_nocow(),
                "{} is not NOCOW",
                f.display()
            );
        }
        std::fs::remove_dir_all(&source).expect("remove the round's files");
        std::fs::remove_dir_all(&target).expect("remove the round's copies");
    }
    let (cp, cp_sync, migrate) = (median(cp), median(cp_sync), median(migrate));
    let rate = |d: Duration| bytes / d.as_secs_f64() / (1024.0 * 1024.0);
    println!(
        "migrate_vs_cp: {FILES} files of {FILE_MIB} MiB ({} MiB), median of {ROUNDS} rounds",
        FILES * FILE_MIB
    );
    println!(
        "  cp --reflink=never          {:7.0} MiB/s  ({:.2} s)",
        rate(cp),
        cp.as_secs_f64()
    );
    println!(
        "  cp --reflink=never + sync   {:7.0} MiB/s  ({:.2} s)",
        rate(cp_sync),
        cp_sync.as_secs_f64()
    );
    println!(
        "  migrate_to_nocow            {:7.0} MiB/s  ({:.2} s)   {:.2}x cp, {:.2}x cp + sync",
        rate(migrate),
        migrate.as_secs_f64(),
        rate(migrate) / rate(cp),
        rate(migrate) / rate(cp_sync)
    );
}
