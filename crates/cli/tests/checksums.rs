//! PostgreSQL's data checksum failures, as `pg_stat_database` counts them, in
//! `verify` and `status`: a healthy database passes, and one whose table file
//! was corrupted on disk (a real page changed behind PostgreSQL's back, on the
//! BTRFS pool) fails `verify` with exit 1, naming the count, while the fast
//! readiness check keeps the service up.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

mod common;

use std::io::{Seek as _, SeekFrom, Write as _};
use std::time::Duration;

use common::{TestDeployment, named_check, text};
use immich_db_testhost::{Host, require_host, require_rootless_host, wait_for};

#[test]
fn a_corrupt_page_fails_verify_and_shows_in_status() {
    checksum_failure(require_host!());
}

#[test]
fn rootless_a_corrupt_page_fails_verify_and_shows_in_status() {
    checksum_failure(require_rootless_host!());
}

/// `psql -Atc SQL` in the PostgreSQL container, as the database's owner over
/// the container's local socket: whether it succeeded, and what it printed.
fn sql(d: &TestDeployment, query: &str) -> (bool, String) {
    let out = d.host.podman([
        "exec", &d.pg, "psql", "-U", "immich", "-d", "immich", "-Atc", query,
    ]);
    (out.status.success(), text(&out).trim().to_owned())
}

fn status(d: &TestDeployment) -> serde_json::Value {
    let out = d.run_ok(&["--json", "status"]);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn checksum_failure(host: &'static Host) {
    let d = TestDeployment::new(host, "cksum");
    d.json_ok("deploy");

    // A table with a few pages of rows.
    let (ok, out) = sql(
        &d,
        "CREATE TABLE albums (id int, name text); \
         INSERT INTO albums SELECT i, 'album ' || i FROM generate_series(1, 2000) i; \
         CHECKPOINT; SELECT pg_relation_filepath('albums')",
    );
    assert!(ok, "{out}");
    let relation = out.lines().last().unwrap().to_owned();
    assert!(relation.starts_with("base/"), "{out}");

    // The healthy database: checksums on, no failure, in verify and status.
    let report = d.json_ok("verify");
    let sums = named_check(&report, "postgres data checksums");
    assert_eq!(sums["ok"], true, "{sums}");
    assert!(
        sums["detail"].as_str().unwrap().contains("no failures"),
        "{sums}"
    );
    let healthy = status(&d);
    assert_eq!(healthy["checksums"]["enabled"], true, "{healthy:#}");
    assert_eq!(healthy["checksums"]["failures"], 0, "{healthy:#}");

    // PostgreSQL stopped, a byte pattern written into the tuples of the
    // table's first page on disk, PostgreSQL started again.
    let service = format!("{}.service", d.pg);
    host.systemctl_ok(["stop", &service]);
    let file = d.postgres_dir().join(&relation);
    {
        let mut f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        // Page 0 is 8 KiB; its tuples fill it from the end.
        f.seek(SeekFrom::Start(8192 - 512)).unwrap();
        f.write_all(&[0x5a; 64]).unwrap();
        f.sync_all().unwrap();
    }
    host.systemctl_ok(["start", &service]);

    // Reading the table finds the page; PostgreSQL counts the failure.
    let (ok, out) = sql(&d, "SELECT count(*) FROM albums");
    assert!(!ok, "the corrupt page was read without an error: {out}");
    assert!(out.contains("invalid page"), "{out}");

    // verify fails with exit 1, naming the count; the service stays up.
    let config = d.config();
    let failed = wait_for(
        "verify to count the failure",
        Duration::from_secs(30),
        || {
            let out = d.command(&config, &["--json", "verify"]).output().unwrap();
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            (named_check(&report, "postgres data checksums")["ok"] == false)
                .then_some((out, report))
        },
    );
    let (out, report) = failed;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(report["ok"], false, "{report:#}");
    let detail = named_check(&report, "postgres data checksums")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.starts_with("1 checksum failure(s)"), "{detail}");
    assert_eq!(
        named_check(&report, &format!("health {}", d.pg))["ok"],
        true
    );
    let human = d.command(&config, &["verify"]).output().unwrap();
    assert_eq!(human.status.code(), Some(1));
    assert!(
        text(&human).contains("FAIL postgres data checksums: 1 checksum failure(s)"),
        "{}",
        text(&human)
    );
    let after = status(&d);
    assert_eq!(after["checksums"]["failures"], 1, "{after:#}");
    assert!(after["checksums"]["last_failure"].is_string(), "{after:#}");
    let human = d.run_ok(&["status"]);
    assert!(
        text(&human).contains("postgres data checksums: on, 1 FAILURE(S)"),
        "{}",
        text(&human)
    );
}
