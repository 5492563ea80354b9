//! Backups on the real test host, on one deployment: rows written, backed up,
//! the table dropped, restored, the rows back; a restore over a database that
//! is not empty refused without --force; a corrupted backup refused with
//! nothing changed; old backups pruned; the schedule's timer and service
//! accepted by systemd and producing a backup; status showing both.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

mod common;
mod ops;

use std::path::{Path, PathBuf};

use common::{TestDeployment, first_word, lsattr_flags, text};
use immich_db_testhost::{Host, require_host, require_rootless_host};
use ops::{code, config_with_backup, json, run, run_ok, sql};

fn sha256sum(host: &immich_db_testhost::Host, path: &Path) -> String {
    first_word(&host.command("sha256sum").arg(path).output().unwrap())
}

fn dumps(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "dump"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

#[test]
fn backup_restore_prune_and_schedule() {
    backup_restore(require_host!());
}

#[test]
fn rootless_backup_restore_prune_and_schedule() {
    backup_restore(require_rootless_host!());
}

fn backup_restore(host: &'static Host) {
    let mut d = TestDeployment::new(host, "bk");
    let backups = d.pool.path().join("backups");
    let units = ops::backup_unit_dir(&d);
    let base = format!("{}-backup", d.pg);
    for name in [format!("{base}.timer"), format!("{base}.service")] {
        d.cleanup.unit(&name);
    }
    d.cleanup
        .file(units.join(format!("{base}.service")))
        .file(units.join(format!("{base}.timer")))
        .file(units.join(format!("timers.target.wants/{base}.timer")));
    let config = config_with_backup(&d, "keep = 2\n");
    run_ok(&d, &config, &["deploy"]);
    let secrets = ops::secret_values(&d);

    // Rows, then a backup.
    sql(
        &d,
        "CREATE TABLE assets (id int PRIMARY KEY, path text NOT NULL); \
         INSERT INTO assets SELECT g, 'photo-' || g || '.jpg' FROM generate_series(1, 5000) g",
    );
    let report = json(&d, &config, &["backup"]);
    let dump = PathBuf::from(report["backup"]["dump"].as_str().unwrap());
    assert!(dump.starts_with(&backups), "{report:#}");
    assert_eq!(dumps(&backups), std::slice::from_ref(&dump));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dump.with_extension("json")).unwrap())
            .unwrap();
    assert_eq!(manifest["database"], "immich");
    assert_eq!(manifest["container"], d.pg.as_str());
    assert!(
        manifest["postgres_version"]
            .as_str()
            .unwrap()
            .starts_with("17"),
        "{manifest:#}"
    );
    assert_eq!(
        manifest["size"].as_u64().unwrap(),
        std::fs::metadata(&dump).unwrap().len()
    );
    // The checksum, by an independent tool, in the manifest and the .sha256
    // file (which `sha256sum -c` accepts).
    let sum = sha256sum(host, &dump);
    assert_eq!(manifest["sha256"], sum.as_str());
    let check = host
        .command("sha256sum")
        .arg("-c")
        .arg(format!(
            "{}.sha256",
            dump.file_name().unwrap().to_string_lossy()
        ))
        .current_dir(&backups)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check));
    // PostgreSQL's own tool reads the archive and finds the table's data.
    let listing = host
        .command("sh")
        .arg("-c")
        .arg(format!(
            "podman exec -i {} pg_restore --list < {}",
            d.pg,
            dump.display()
        ))
        .output()
        .unwrap();
    assert!(listing.status.success(), "{}", text(&listing));
    assert!(
        String::from_utf8_lossy(&listing.stdout).contains("TABLE DATA public assets"),
        "{}",
        text(&listing)
    );
    // On copy-on-write storage, private to its owner, and no temporary left.
    assert!(!lsattr_flags(host, &backups).contains('C'));
    assert!(!lsattr_flags(host, &dump).contains('C'));
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&dump).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    for entry in std::fs::read_dir(&backups).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(!name.contains("partial"), "{name}");
    }
    ops::assert_no_secret(&report.to_string(), &secrets, "the backup's report");
    ops::assert_no_secret(
        &String::from_utf8_lossy(&std::fs::read(dump.with_extension("json")).unwrap()),
        &secrets,
        "the manifest",
    );

    // The table dropped, the backup restored: the rows are back.
    sql(&d, "DROP TABLE assets");
    let out = run_ok(&d, &config, &["restore", dump.to_str().unwrap()]);
    assert!(text(&out).contains("all checks passed"), "{}", text(&out));
    assert_eq!(
        sql(&d, "SELECT count(*), max(path) FROM assets"),
        "5000|photo-999.jpg"
    );

    // Now the database is not empty: refused without --force, unchanged.
    sql(
        &d,
        "INSERT INTO assets VALUES (9001, 'after-the-backup.jpg')",
    );
    let out = run(&d, &config, &["restore", dump.to_str().unwrap()]);
    assert_eq!(code(&out), Some(2), "{}", text(&out));
    assert!(text(&out).contains("not empty"), "{}", text(&out));
    assert!(text(&out).contains("--force"), "{}", text(&out));
    assert_eq!(sql(&d, "SELECT count(*) FROM assets"), "5001");

    // A corrupted copy: one byte changed. Refused, with nothing changed.
    let scratch = tempfile::tempdir().unwrap();
    let copy = scratch.path().join(dump.file_name().unwrap());
    let mut bytes = std::fs::read(&dump).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&copy, &bytes).unwrap();
    std::fs::copy(dump.with_extension("json"), copy.with_extension("json")).unwrap();
    host.give(scratch.path());
    let out = run(&d, &config, &["restore", "--force", copy.to_str().unwrap()]);
    assert_eq!(code(&out), Some(2), "{}", text(&out));
    let message = text(&out);
    assert!(
        message.contains("corrupt") && message.contains("SHA-256"),
        "{message}"
    );
    assert!(message.contains("nothing was changed"), "{message}");
    assert_eq!(sql(&d, "SELECT count(*) FROM assets"), "5001");
    // Truncated: refused as well.
    std::fs::write(&copy, &bytes[..bytes.len() - 100]).unwrap();
    let out = run(&d, &config, &["restore", "--force", copy.to_str().unwrap()]);
    assert_eq!(code(&out), Some(2), "{}", text(&out));
    assert_eq!(sql(&d, "SELECT count(*) FROM assets"), "5001");

    // With --force the backup replaces what it holds; rows written since go.
    run_ok(&d, &config, &["restore", "--force", dump.to_str().unwrap()]);
    assert_eq!(sql(&d, "SELECT count(*) FROM assets"), "5000");

    // Two more backups with keep = 2: the first is pruned.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    json(&d, &config, &["backup"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let third = json(&d, &config, &["backup"]);
    assert_eq!(third["removed"].as_array().unwrap().len(), 1, "{third:#}");
    let now = dumps(&backups);
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(!now.contains(&dump));
    assert!(!dump.with_extension("json").exists());
    let listed = json(&d, &config, &["backup", "--list"]);
    assert_eq!(listed["backups"].as_array().unwrap().len(), 2, "{listed:#}");
    assert_eq!(listed["schedule"]["installed"], false);

    // A schedule: units that systemd accepts, a timer that is active, and a
    // service that makes a backup when started.
    let scheduled = json(&d, &config, &["backup", "--schedule", "*-*-* 03:30"]);
    let service_path = units.join(format!("{base}.service"));
    let timer_path = units.join(format!("{base}.timer"));
    let verify = host
        .command("systemd-analyze")
        .args(["--user", "verify"])
        .arg(&service_path)
        .arg(&timer_path)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(
        !String::from_utf8_lossy(&verify.stderr).contains(&base),
        "{}",
        text(&verify)
    );
    assert_eq!(d.is_active(&format!("{base}.timer")), "active");
    assert!(
        scheduled["schedule"]["next_run"]
            .as_str()
            .unwrap()
            .contains("03:30:00"),
        "{scheduled:#}"
    );
    for file in [&service_path, &timer_path] {
        ops::assert_no_secret(
            &std::fs::read_to_string(file).unwrap(),
            &secrets,
            "a unit file",
        );
    }
    let before = dumps(&backups);
    host.systemctl_ok(["start", &format!("{base}.service")]);
    let after = dumps(&backups);
    assert_eq!(after.len(), 2, "{after:?}");
    let new: Vec<_> = after.iter().filter(|p| !before.contains(p)).collect();
    assert_eq!(
        new.len(),
        1,
        "the service made no new backup: {before:?} {after:?}"
    );
    let result = host.systemctl_ok([
        "show",
        "-p",
        "Result",
        "--value",
        &format!("{base}.service"),
    ]);
    assert_eq!(result.trim(), "success");

    // status shows the last backup and the next run.
    let status = json(&d, &config, &["status"]);
    assert_eq!(
        status["backup"]["last"]["dump"].as_str().unwrap(),
        new[0].to_str().unwrap(),
        "{status:#}"
    );
    assert!(
        status["backup"]["schedule"]["next_run"]
            .as_str()
            .is_some_and(|n| n.contains("03:30")),
        "{status:#}"
    );
    let out = run_ok(&d, &config, &["status"]);
    assert!(text(&out).contains("last backup: "), "{}", text(&out));
    assert!(text(&out).contains("next run"), "{}", text(&out));

    // A schedule that is not one is refused, and the installed one is kept.
    let out = run(&d, &config, &["backup", "--schedule", "every full moon"]);
    assert_eq!(code(&out), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--schedule"), "{}", text(&out));
    assert!(timer_path.exists());

    // Unscheduled: units and the enabling link gone, the timer unloaded.
    let out = run_ok(&d, &config, &["backup", "--unschedule"]);
    assert!(text(&out).contains("removed"), "{}", text(&out));
    assert!(!service_path.exists() && !timer_path.exists());
    ops::assert_timer_gone(&d, &units, &base);
    let out = run_ok(&d, &config, &["backup", "--unschedule"]);
    assert!(text(&out).contains("no backup schedule"), "{}", text(&out));
}

#[test]
fn a_backup_directory_inside_a_database_directory_is_refused() {
    let host = require_host!();
    let d = TestDeployment::new(host, "bkbad");
    let config = config_with_backup(&d, "dir = \"db/postgres/dumps\"\n");
    let out = run(&d, &config, &["backup"]);
    assert_eq!(code(&out), Some(2), "{}", text(&out));
    let message = text(&out);
    assert!(message.contains("[backup] dir"), "{message}");
    assert!(message.contains("NOCOW"), "{message}");
    // Nothing was created.
    assert!(d.leftovers().is_empty(), "{:?}", d.leftovers());
}
