//! The audit of a 100,000-file tree against `lsattr -R` on the same tree.
//!
//! Builds the tree on the test host's BTRFS pool (`IMMICH_DB_TEST_BTRFS`, default
//! `/mnt/immich-db-test/btrfs`): a NOCOW root with 100 directories of 1,000 small
//! files, ten of those directories created before the root got NOCOW, so their
//! files are the copy-on-write ones the audit must find. Both tools read the
//! attributes of every file; each runs once to warm the caches, then the median
//! of five runs is compared.
//!
//! `cargo bench -p homelab-btrfs --bench audit_vs_lsattr`

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DIRS: usize = 100;
const FILES_PER_DIR: usize = 1_000;
const COW_DIRS: usize = 10;
const RUNS: usize = 5;

fn build_tree(root: &Path) {
    let payload = [b'x'; 100];
    let make = |d: usize| {
        let dir = root.join(format!("d{d:03}"));
        std::fs::create_dir(&dir).expect("create a directory of the tree");
        for f in 0..FILES_PER_DIR {
            std::fs::write(dir.join(format!("f{f:04}")), payload)
                .expect("write a file of the tree");
        }
    };
    // Made before NOCOW: these stay copy-on-write.
    for d in 0..COW_DIRS {
        make(d);
    }
    homelab_btrfs::set_nocow(root).expect("set NOCOW on the root");
    for d in COW_DIRS..DIRS {
        make(d);
    }
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn time<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed(), out)
}

fn lsattr_r(root: &Path) -> usize {
    let out = Command::new("lsattr")
        .arg("-R")
        .arg(root)
        .stderr(Stdio::null())
        .output()
        .expect("run lsattr -R");
    assert!(out.status.success(), "lsattr -R failed");
    // Copy-on-write regular files: attribute column without C, and a name in one
    // of the tree's directories (not the directories themselves).
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(attrs, path)| {
            !attrs.contains('C') && path.rsplit('/').next().is_some_and(|n| n.starts_with('f'))
        })
        .count()
}

fn main() {
    // Skips with a visible line where the test host is not set up.
    let Some(host) = immich_db_testhost::host("audit_vs_lsattr") else {
        return;
    };
    let scratch = host.btrfs_dir("bench-audit");
    let root = scratch.path();
    let (built, ()) = time(|| build_tree(root));
    let files = DIRS * FILES_PER_DIR;
    println!(
        "audit_vs_lsattr: {files} files in {DIRS} directories built in {:.1} s",
        built.as_secs_f64()
    );

    let expected = COW_DIRS * FILES_PER_DIR;
    let threads = homelab_btrfs::default_threads();
    // Warm-up runs, which also check that both find the same files.
    assert_eq!(lsattr_r(root), expected, "lsattr -R count");
    let report = homelab_btrfs::audit(root).expect("audit");
    assert_eq!(report.cow_files.len(), expected, "audit count");
    assert_eq!(report.total().map(|t| t.files), Some(files as u64));

    let lsattr = median((0..RUNS).map(|_| time(|| lsattr_r(root)).0).collect());
    let audit = median(
        (0..RUNS)
            .map(|_| time(|| homelab_btrfs::audit_with_threads(root, threads)).0)
            .collect(),
    );
    let audit_1 = median(
        (0..RUNS)
            .map(|_| time(|| homelab_btrfs::audit_with_threads(root, 1)).0)
            .collect(),
    );

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("  lsattr -R              {:8.1} ms", ms(lsattr));
    println!(
        "  audit, {threads:2} threads      {:8.1} ms   {:5.2}x faster than lsattr -R",
        ms(audit),
        lsattr.as_secs_f64() / audit.as_secs_f64()
    );
    println!(
        "  audit,  1 thread       {:8.1} ms   {:5.2}x faster than lsattr -R",
        ms(audit_1),
        lsattr.as_secs_f64() / audit_1.as_secs_f64()
    );
    println!(
        "  (medians of {RUNS} warm runs; {} CPUs; both found {expected} copy-on-write files)",
        std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get)
    );
}
