//! Helpers for the tests of backups, rotation and storage repair: a test
//! deployment with a `[backup]` section, and the binary's JSON output.

#![allow(dead_code)] // each test file uses a different part
#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

use std::path::PathBuf;
use std::process::Output;

use crate::common::{TestDeployment, succeeded, text};

/// Where the tests put the backup timer and service: the user manager's
/// runtime unit directory, which a reboot empties.
pub(crate) fn backup_unit_dir(d: &TestDeployment) -> PathBuf {
    d.host.runtime_dir.join("systemd/user")
}

/// The deployment's configuration with a `[backup]` section.
pub(crate) fn config_with_backup(d: &TestDeployment, backup: &str) -> PathBuf {
    let text = format!(
        "{}[backup]\nunit_dir = {:?}\n{backup}",
        d.config_text(&[], &[]),
        backup_unit_dir(d).display().to_string()
    );
    d.write_config("config.toml", &text)
}

/// Runs the binary with `config`.
pub(crate) fn run(d: &TestDeployment, config: &std::path::Path, args: &[&str]) -> Output {
    d.command(config, args).output().unwrap()
}

/// Runs the binary with `config` and asserts it succeeded.
pub(crate) fn run_ok(d: &TestDeployment, config: &std::path::Path, args: &[&str]) -> Output {
    succeeded(run(d, config, args), args)
}

/// Runs the binary with `--json` and returns what it printed.
pub(crate) fn json(
    d: &TestDeployment,
    config: &std::path::Path,
    args: &[&str],
) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = run_ok(d, config, &all);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("immich-db {args:?} printed no JSON ({e}):\n{}", text(&out)))
}

/// The exit code.
pub(crate) fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

/// `psql` inside the PostgreSQL container over its local socket, as the
/// deployment's role; its trimmed output, or a panic with psql's error.
pub(crate) fn sql(d: &TestDeployment, statement: &str) -> String {
    sql_in(d, &d.pg, statement)
}

/// [`sql`] in another PostgreSQL container, with the same role and database.
pub(crate) fn sql_in(d: &TestDeployment, container: &str, statement: &str) -> String {
    let out = d.host.podman([
        "exec",
        container,
        "psql",
        "-X",
        "-U",
        "immich",
        "-d",
        "immich",
        "-v",
        "ON_ERROR_STOP=1",
        "-Atc",
        statement,
    ]);
    assert!(out.status.success(), "psql {statement:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Asserts that `haystack` does not hold any of the values, without printing
/// them.
pub(crate) fn assert_no_secret(haystack: &str, values: &[String], what: &str) {
    for (i, value) in values.iter().enumerate() {
        assert!(
            !value.is_empty() && !haystack.contains(value.as_str()),
            "{what} holds the value of secret #{i}"
        );
    }
}

/// The values of the deployment's three secrets.
pub(crate) fn secret_values(d: &TestDeployment) -> Vec<String> {
    d.secrets()
        .iter()
        .map(|s| d.secret_value(s).expect("the secret exists"))
        .collect()
}

/// Asserts that the backup timer `base` is gone: no enabling link in the unit
/// directory `units`, and the manager no longer knows it.
pub(crate) fn assert_timer_gone(d: &TestDeployment, units: &std::path::Path, base: &str) {
    assert!(
        units
            .join(format!("timers.target.wants/{base}.timer"))
            .symlink_metadata()
            .is_err()
    );
    let load = d.host.systemctl_ok([
        "show",
        "-p",
        "LoadState",
        "--value",
        &format!("{base}.timer"),
    ]);
    assert_eq!(load.trim(), "not-found");
}
