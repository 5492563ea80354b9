//! Faults on the real test host, each as root's manager and as the
//! rootless user's: a network service that fails; a unit edited by hand
//! (drift); a restart that fails, then starts; destroy with a backup schedule;
//! two deploys at once and SIGINT mid-deploy; a backup cut short by a full
//! disk, a restore that `pg_restore` cannot finish, a repair cut short by an
//! immutable file (exit 4 each, nothing half-done left); a pool off BTRFS.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

mod common;
mod ops;

use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{TestDeployment, first_word, lsattr_flags, text};
use immich_db_testhost::{Host, require_host, require_rootless_host};
use ops::{code, config_with_backup, json, run, run_ok, sql};

/// A drop-in for `service` in the manager's runtime unit directory, removed
/// (and the manager reloaded) by the returned guard's drop or `remove`.
struct DropIn<'a> {
    d: &'a TestDeployment,
    path: PathBuf,
}

impl<'a> DropIn<'a> {
    fn new(d: &'a TestDeployment, service: &str, text: &str) -> Self {
        let dir = d.dropin_dir(service);
        let path = dir.join("immich-db-test-fault.conf");
        std::fs::write(&path, text).unwrap();
        d.host.systemctl_ok(["daemon-reload"]);
        Self { d, path }
    }

    /// Removes it now (its drop does the work).
    fn remove(self) {
        drop(self);
    }
}

impl Drop for DropIn<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
        let _ = self.d.host.systemctl(["daemon-reload"]);
    }
}

/// A command that fails the first time it runs (it leaves `flag` behind), for
/// an `ExecStartPre=` of a drop-in.
fn fails_once(flag: &Path) -> String {
    format!(
        "/bin/sh -c 'test -e {0} || {{ touch {0}; exit 1; }}'",
        flag.display()
    )
}

fn service_faults(host: &'static Host) {
    let mut d = TestDeployment::new(host, "fault");
    d.keep_logs();
    let units = ops::backup_unit_dir(&d);
    let base = format!("{}-backup", d.pg);
    for name in [format!("{base}.timer"), format!("{base}.service")] {
        d.cleanup.unit(&name);
    }
    d.cleanup
        .file(units.join(format!("{base}.service")))
        .file(units.join(format!("{base}.timer")))
        .file(units.join(format!("timers.target.wants/{base}.timer")));
    let config = config_with_backup(&d, "");
    let flags = tempfile::tempdir().unwrap();
    host.give(flags.path());

    // A network service that fails: deploy stops at once, exit 4, naming it
    // and what was done; once it is fixed, deploy resumes.
    let network = format!("{}-network.service", d.name);
    let broken = DropIn::new(&d, &network, "[Service]\nExecStartPre=/bin/false\n");
    let started = std::time::Instant::now();
    let out = run(&d, &config, &["--json", "deploy"]);
    assert_eq!(code(&out), Some(4), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let what = report["error"]["what"].as_str().unwrap();
    assert!(
        what.contains(&format!("the network's service {network} failed")),
        "{report:#}"
    );
    assert!(
        !report["error"]["done"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
    // Not the services' start limit (15 minutes) waited out.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(120),
        "{:?}",
        started.elapsed()
    );
    broken.remove();
    let report = json(&d, &config, &["deploy"]);
    assert_eq!(report["verify"]["ok"], true, "{report:#}");

    // Drift: a unit edited by hand. plan shows it, deploy puts it back and
    // restarts only its service.
    let pg_unit = host.quadlet_dir().join(format!("{}.container", d.pg));
    let written = std::fs::read_to_string(&pg_unit).unwrap();
    assert!(written.contains("ShmSize=128m\n"), "{written}");
    std::fs::write(&pg_unit, written.replace("ShmSize=128m\n", "ShmSize=64m\n")).unwrap();
    let out = run_ok(&d, &config, &["plan"]);
    let plan = text(&out);
    assert!(
        plan.contains("-ShmSize=64m") && plan.contains("+ShmSize=128m"),
        "{plan}"
    );
    assert!(
        plan.contains(&format!("restart {}.service", d.pg)),
        "{plan}"
    );
    let (pg, vk) = (d.container_identity(&d.pg), d.container_identity(&d.vk));
    let report = json(&d, &config, &["deploy"]);
    assert_eq!(report["verify"]["ok"], true, "{report:#}");
    assert_eq!(std::fs::read_to_string(&pg_unit).unwrap(), written);
    assert_ne!(d.container_identity(&d.pg), pg);
    assert_eq!(d.container_identity(&d.vk), vk);
    let out = run_ok(&d, &config, &["plan"]);
    assert!(text(&out).contains("No changes"), "{}", text(&out));

    // A restart that fails, then starts: Valkey's rotation restarts it, its
    // first start fails, systemd (or the rotation) starts it again.
    let flag = flags.path().join("valkey-failed-once");
    let vk_service = format!("{}.service", d.vk);
    let once = DropIn::new(
        &d,
        &vk_service,
        &format!("[Service]\nExecStartPre={}\n", fails_once(&flag)),
    );
    let before = d.secret_value(&d.vk_secret).unwrap();
    let out = run(&d, &config, &["--json", "secrets", "rotate", &d.vk_secret]);
    assert_eq!(code(&out), Some(0), "{}\n{}", text(&out), d.logs_tail());
    assert!(
        flag.exists(),
        "the restart did not fail: the test proves nothing"
    );
    let after = d.secret_value(&d.vk_secret).unwrap();
    assert_ne!(after, before);
    assert_eq!(d.valkey_ping(Some(&after)), "PONG");
    assert!(d.valkey_ping(Some(&before)).contains("WRONGPASS"));
    once.remove();
    json(&d, &config, &["verify"]);

    // destroy takes the backup schedule with it.
    json(&d, &config, &["backup", "--schedule", "daily"]);
    assert_eq!(d.is_active(&format!("{base}.timer")), "active");
    run_ok(&d, &config, &["destroy"]);
    for file in [
        units.join(format!("{base}.service")),
        units.join(format!("{base}.timer")),
    ] {
        assert!(!file.exists(), "{}", file.display());
    }
    ops::assert_timer_gone(&d, &units, &base);
}

#[test]
fn a_failed_network_drift_a_failed_restart_and_destroy_with_a_schedule() {
    service_faults(require_host!());
}

#[test]
fn rootless_a_failed_network_drift_a_failed_restart_and_destroy_with_a_schedule() {
    service_faults(require_rootless_host!());
}

/// Whether the process ended by the signal (or, under `runuser`, said so
/// with 128 + the signal).
fn ended_by(out: &Output, signal: i32) -> bool {
    out.status.signal() == Some(signal) || out.status.code() == Some(128 + signal)
}

fn at_once_and_interrupted(host: &'static Host) {
    let d = TestDeployment::new(host, "twice");
    let config = d.config();
    // The first deploy waits while its services start.
    let first = d.start_held(&config, &["deploy"], "health");
    let out = d.run(&["--json", "deploy"]);
    assert_eq!(code(&out), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("another immich-db deploy"),
        "{}",
        text(&out)
    );
    let secrets: Vec<Option<String>> = d.secrets().iter().map(|s| d.secret_value(s)).collect();
    assert!(secrets.iter().all(Option::is_some));

    // SIGINT there: it ends; a deploy again converges, with the same secrets.
    let out = first.signal("-INT");
    assert!(ended_by(&out, 2), "{}: {}", out.status, text(&out));
    let report = d.json_ok("deploy");
    assert_eq!(report["verify"]["ok"], true, "{report:#}");
    let now: Vec<Option<String>> = d.secrets().iter().map(|s| d.secret_value(s)).collect();
    assert_eq!(now, secrets);

    // Two at once again, on a change: the second refused, the first finishes.
    let changed = d.write_config(
        "changed.toml",
        &d.config_text(&[], &[("postgres", "shm_size = \"256m\"")]),
    );
    let first = d.start_held(&changed, &["--json", "deploy"], "start");
    let out = d.command(&changed, &["deploy"]).output().unwrap();
    assert_eq!(code(&out), Some(3), "{}", text(&out));
    let out = first.release();
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verify"]["ok"], true, "{report:#}");
    let out = d.command(&changed, &["deploy"]).output().unwrap();
    assert!(text(&out).contains("No changes"), "{}", text(&out));
}

#[test]
fn two_deploys_at_once_and_sigint_mid_deploy() {
    at_once_and_interrupted(require_host!());
}

#[test]
fn rootless_two_deploys_at_once_and_sigint_mid_deploy() {
    at_once_and_interrupted(require_rootless_host!());
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped: a
/// disk that fills up.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn new(host: &Host, size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("idbt-small-disk")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        host.give(dir.path());
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills it up to `left` bytes free.
    fn fill(&self, left: u64) -> PathBuf {
        let stat = rustix::fs::statvfs(self.path()).unwrap();
        let free = stat.f_bavail * stat.f_frsize;
        let filler = self.path().join("filler");
        let file = std::fs::File::create(&filler).unwrap();
        file.set_len(free.saturating_sub(left)).unwrap();
        // tmpfs gives the pages when they are written.
        let out = std::process::Command::new("dd")
            .args(["if=/dev/zero", "conv=notrunc", "bs=64k", "status=none"])
            .arg(format!("of={}", filler.display()))
            .arg(format!("count={}", free.saturating_sub(left) / 65536))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

fn sha256(host: &Host, path: &Path) -> String {
    first_word(&host.command("sha256sum").arg(path).output().unwrap())
}

fn cut_short(host: &'static Host) {
    let d = TestDeployment::new(host, "cut");
    let disk = SmallDisk::new(host, "8m");
    let config = config_with_backup(
        &d,
        &format!("dir = {:?}\n", disk.path().display().to_string()),
    );
    run_ok(&d, &config, &["deploy"]);
    sql(
        &d,
        "CREATE TABLE albums (id int PRIMARY KEY, name text); INSERT INTO albums SELECT g, 'album ' || g FROM generate_series(1, 100) g",
    );
    let first = json(&d, &config, &["backup"]);
    let dump = PathBuf::from(first["backup"]["dump"].as_str().unwrap());
    let files = [
        dump.clone(),
        dump.with_extension("json"),
        PathBuf::from(format!("{}.sha256", dump.display())),
    ];
    let sums: Vec<String> = files.iter().map(|f| sha256(host, f)).collect();

    // A backup on a disk that fills up: exit 4, no partial dump left, the
    // older backup byte for byte as it was.
    sql(
        &d,
        "CREATE TABLE photos (id int PRIMARY KEY, path text); INSERT INTO photos SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) FROM generate_series(1, 60000) g",
    );
    let filler = disk.fill(256 << 10);
    let out = run(&d, &config, &["--json", "backup"]);
    assert_eq!(code(&out), Some(4), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["error"]["what"]
            .as_str()
            .unwrap()
            .contains("No space left"),
        "{report:#}"
    );
    let names: Vec<String> = std::fs::read_dir(disk.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("partial")), "{names:?}");
    assert_eq!(
        names
            .iter()
            .filter(|n| Path::new(n).extension().is_some_and(|e| e == "dump"))
            .count(),
        1,
        "{names:?}"
    );
    let now: Vec<String> = files.iter().map(|f| sha256(host, f)).collect();
    assert_eq!(now, sums);
    let listed = json(&d, &config, &["backup", "--list"]);
    assert_eq!(listed["backups"].as_array().unwrap().len(), 1, "{listed:#}");
    std::fs::remove_file(&filler).unwrap();
    sql(&d, "DROP TABLE photos");

    // A restore that pg_restore cannot finish (the backup's table belongs to
    // a role that is gone): exit 4; it loads into a database of its own that
    // never replaces the deployment's, so the database is as it was.
    sql(
        &d,
        "CREATE ROLE keeper; CREATE TABLE kept (id int); INSERT INTO kept VALUES (1), (2); ALTER TABLE kept OWNER TO keeper",
    );
    let second = json(&d, &config, &["backup"]);
    let second = second["backup"]["dump"].as_str().unwrap().to_owned();
    sql(
        &d,
        "DROP TABLE kept; DROP ROLE keeper; DELETE FROM albums WHERE id > 50",
    );
    let out = run(&d, &config, &["--json", "restore", "--force", &second]);
    assert_eq!(code(&out), Some(4), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let what = report["error"]["what"].as_str().unwrap();
    assert!(
        what.contains("the database is as it was") && what.contains("keeper"),
        "{report:#}"
    );
    assert_eq!(sql(&d, "SELECT count(*) FROM albums"), "50");
    assert_eq!(
        sql(
            &d,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'kept'"
        ),
        "0"
    );
    sql(&d, "CREATE ROLE keeper");
    run_ok(&d, &config, &["restore", "--force", &second]);
    assert_eq!(sql(&d, "SELECT count(*) FROM albums"), "100");
    assert_eq!(sql(&d, "SELECT count(*) FROM kept"), "2");

    // A repair that cannot rewrite a file (immutable, and copy-on-write):
    // exit 4, PostgreSQL running again; once the file may change, it finishes.
    let stray = d.postgres_dir().join("stray-copy-on-write");
    let cow = d.library_dir().join("stray-copy-on-write");
    std::fs::write(&cow, vec![7u8; 1 << 20]).unwrap();
    host.give(&cow);
    std::fs::rename(&cow, &stray).unwrap();
    assert!(!lsattr_flags(host, &stray).contains('C'));
    let chattr = |flag: &str| {
        let out = std::process::Command::new("chattr")
            .arg(flag)
            .arg(&stray)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    };
    chattr("+i");
    let out = run(&d, &config, &["--json", "storage", "fix-nocow"]);
    chattr("-i");
    assert_eq!(code(&out), Some(4), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["error"]["what"]
            .as_str()
            .unwrap()
            .contains("stray-copy-on-write"),
        "{report:#}"
    );
    d.wait_active(std::time::Duration::from_secs(120));
    // PostgreSQL runs again; verify fails on the file left copy-on-write,
    // and on nothing else.
    let out = run(&d, &config, &["--json", "verify"]);
    assert_eq!(code(&out), Some(1), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["storage postgres_dir"], "{report:#}");
    let out = run_ok(&d, &config, &["--json", "storage", "fix-nocow"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    assert!(lsattr_flags(host, &stray).contains('C'));
    assert_eq!(sql(&d, "SELECT count(*) FROM albums"), "100");
}

#[test]
fn a_backup_a_restore_and_a_repair_cut_short_leave_nothing_half_done() {
    cut_short(require_host!());
}

#[test]
fn rootless_a_backup_a_restore_and_a_repair_cut_short_leave_nothing_half_done() {
    cut_short(require_rootless_host!());
}

fn off_btrfs(host: &'static Host) {
    for (kind, dir) in [
        ("ext4", host.ext4_dir("anb")),
        ("tmpfs", host.tmpfs_dir("anb")),
    ] {
        let d = TestDeployment::new(host, "anb");
        host.give(dir.path());
        let pool = format!("{:?}", dir.path().display().to_string());
        let config = d.write_config(
            "config.toml",
            &d.config_text(&[("storage", "pool", Some(&pool))], &[]),
        );
        let out = d.command(&config, &["deploy"]).output().unwrap();
        assert_eq!(code(&out), Some(3), "{kind}: {}", text(&out));
        assert!(
            text(&out).contains("--allow-non-btrfs"),
            "{kind}: {}",
            text(&out)
        );
        let out = d
            .command(&config, &["--json", "deploy", "--allow-non-btrfs"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{kind}: {}", text(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["verify"]["ok"], true, "{kind}: {report:#}");
        let warned = report["warnings"].to_string();
        assert!(warned.contains("not BTRFS"), "{kind}: {report:#}");
        let out = d.command(&config, &["--json", "verify"]).output().unwrap();
        assert!(out.status.success(), "{kind}: {}", text(&out));
        let verification: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let storage = verification["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "storage postgres_dir")
            .unwrap();
        assert_eq!(storage["severity"], "warning", "{kind}: {storage}");
        assert!(
            storage["detail"].as_str().unwrap().contains(kind),
            "{kind}: {storage}"
        );
        let password = d.secret_value(&d.pg_secret).unwrap();
        let out = d.psql(&password, "SELECT 1");
        assert!(out.status.success(), "{kind}: {}", text(&out));
        let out = d
            .command(&config, &["destroy", "--purge-data", "--yes"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{kind}: {}", text(&out));
    }
}

#[test]
fn a_pool_off_btrfs_is_refused_unless_allowed_and_then_verifies() {
    off_btrfs(require_host!());
}

#[test]
fn rootless_a_pool_off_btrfs_is_refused_unless_allowed_and_then_verifies() {
    off_btrfs(require_rootless_host!());
}
