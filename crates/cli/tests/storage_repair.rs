//! Storage repair on the real test host: PostgreSQL initialised in a
//! copy-on-write directory that is made NOCOW only afterwards (the operator's
//! `chattr +C` after the first start), found by `storage audit`, repaired by
//! `storage fix-nocow`: every file is NOCOW and the database still works.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

mod common;
mod ops;

use std::path::Path;
use std::time::Duration;

use common::{TestDeployment, text};
use immich_db_testhost::{Host, require_host, require_rootless_host, wait_for};
use ops::{code, run, run_ok};

/// Every file and directory below `dir` (itself included) with its attribute
/// letters, as `lsattr` prints them.
fn attributes(host: &immich_db_testhost::Host, dir: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let out = host.command("lsattr").arg("-d").arg(dir).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out2 = host.command("lsattr").arg("-R").arg(dir).output().unwrap();
    assert!(out2.status.success(), "{}", text(&out2));
    for line in String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out2.stdout).lines())
    {
        if let Some((flags, path)) = line.split_once(' ')
            && flags.len() > 10
            && flags.chars().all(|c| c == '-' || c.is_ascii_alphabetic())
        {
            found.push((flags.to_owned(), path.trim().to_owned()));
        }
    }
    found
}

/// `chattr FLAG path`, as the operator runs it.
fn chattr(host: &immich_db_testhost::Host, flag: &str, path: &Path) {
    let out = host.command("chattr").arg(flag).arg(path).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_database_initialised_before_nocow_is_found_and_repaired() {
    repaired(require_host!());
}

#[test]
fn rootless_a_database_initialised_before_nocow_is_found_and_repaired() {
    repaired(require_rootless_host!());
}

fn repaired(host: &'static Host) {
    let mut d = TestDeployment::new(host, "fix");
    let init = format!("{}-init", d.pg);
    d.cleanup.container(&init);
    let password = "Initialised4BeforeNocowWasSet0123456789abcdefgh";
    d.create_secret(&d.pg_secret, password);

    // PostgreSQL initialises its data directory while it is copy-on-write.
    let data = d.postgres_dir();
    std::fs::create_dir_all(&data).unwrap();
    host.give(d.pool.path());
    // Rootless, as a deploy runs it: as the user (see the README).
    let userns = if host.is_rootless() {
        "keep-id"
    } else {
        "host"
    };
    host.podman_ok([
        "run",
        "-d",
        "--userns",
        userns,
        "--name",
        &init,
        "--network",
        "none",
        "--secret",
        &format!("{},type=env,target=POSTGRES_PASSWORD", d.pg_secret),
        "-e",
        "POSTGRES_USER=immich",
        "-e",
        "POSTGRES_DB=immich",
        "-v",
        &format!("{}:/var/lib/postgresql/data:Z", data.display()),
        &host.postgres_image,
    ]);
    wait_for("PostgreSQL to initialise", Duration::from_secs(120), || {
        host.podman([
            "exec",
            &init,
            "pg_isready",
            "-h",
            "127.0.0.1",
            "-U",
            "immich",
            "-d",
            "immich",
        ])
        .status
        .success()
        .then_some(())
    });
    ops::sql_in(
        &d,
        &init,
        "CREATE TABLE albums (id int PRIMARY KEY, title text); \
         INSERT INTO albums SELECT g, 'album ' || g FROM generate_series(1, 20000) g; CHECKPOINT",
    );
    host.podman_ok(["stop", "--time", "30", &init]);
    host.podman_ok(["rm", &init]);
    let cow_before = attributes(host, &data)
        .iter()
        .filter(|(flags, _)| !flags.contains('C'))
        .count();
    assert!(cow_before > 100, "{cow_before}");

    // The operator's fix that came too late: NOCOW on the directory only.
    chattr(host, "+C", &data);
    let config = d.config();
    let out = run(&d, &config, &["deploy"]);
    // Deploy runs the database but its verify flags the copy-on-write files: a
    // failed check (exit 1) that names the repair.
    assert_eq!(code(&out), Some(1), "{}", text(&out));
    assert!(text(&out).contains("copy-on-write"), "{}", text(&out));
    assert!(
        text(&out).contains("immich-db storage fix-nocow"),
        "{}",
        text(&out)
    );
    // The storage step already warned, before anything started.
    assert!(
        text(&out).contains("were there before NOCOW and stay copy-on-write"),
        "{}",
        text(&out)
    );
    d.wait_active(Duration::from_secs(120));

    // The audit finds them; exit 1.
    let out = run(&d, &config, &["--json", "storage", "audit"]);
    assert_eq!(code(&out), Some(1), "{}", text(&out));
    let audit: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let postgres = &audit["directories"][0];
    assert_eq!(postgres["key"], "postgres_dir");
    assert_eq!(postgres["nocow"], true);
    let cow_files = postgres["cow_files"].as_u64().unwrap();
    assert!(cow_files > 100, "{audit:#}");
    assert!(postgres["cow_dirs"].as_u64().unwrap() > 0, "{audit:#}");
    assert!(!postgres["problems"].as_array().unwrap().is_empty());
    assert!(audit["pool"]["size"].as_u64().unwrap() > 0);
    assert_eq!(
        audit["directories"][2]["problems"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // The repair: stop, rewrite, start, verify.
    let started_before = d.container_identity(&d.pg);
    let out = run_ok(&d, &config, &["--json", "storage", "fix-nocow"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["verify"]["ok"], true, "{report:#}");
    let done = report["done"].to_string();
    assert!(
        done.contains("stopped") && done.contains("started"),
        "{report:#}"
    );
    assert_ne!(d.container_identity(&d.pg), started_before);

    // Every file and directory is NOCOW now, by lsattr.
    let after = attributes(host, &data);
    assert!(after.len() > 100, "{}", after.len());
    let still_cow: Vec<_> = after.iter().filter(|(f, _)| !f.contains('C')).collect();
    assert!(still_cow.is_empty(), "{still_cow:?}");
    // The database works, with its data, over TCP with the stored password.
    let out = d.psql(password, "SELECT count(*), max(id) FROM albums");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "20000|20000");
    let out = d.psql(
        password,
        "INSERT INTO albums VALUES (20001, 'after the repair')",
    );
    assert!(out.status.success(), "{}", text(&out));
    run_ok(&d, &config, &["storage", "audit"]);
    run_ok(&d, &config, &["verify"]);
    // Nothing left to do the second time, and nothing restarted.
    let identity = d.container_identity(&d.pg);
    let out = run_ok(&d, &config, &["storage", "fix-nocow"]);
    assert!(text(&out).contains("nothing to repair"), "{}", text(&out));
    assert_eq!(d.container_identity(&d.pg), identity);

    // NOCOW where copy-on-write was intended is a finding too.
    let library = d.library_dir();
    chattr(host, "+C", &library);
    let out = run(&d, &config, &["storage", "audit"]);
    assert_eq!(code(&out), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("copy-on-write was intended"),
        "{}",
        text(&out)
    );
    chattr(host, "-C", &library);
}
