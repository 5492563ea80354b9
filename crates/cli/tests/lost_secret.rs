//! A lost secret on the real test host: a deploy never generates a
//! PostgreSQL password for a database initialised with another one (exit 3,
//! nothing created, the way back named); `secrets set` gives a kept password
//! back, or gives the database a new one (through the running server, or one
//! started on the data directory for this); Valkey, which keeps no password in
//! its data, takes a new secret by restarting. Each state is checked from
//! outside the tool: psql and valkey-cli with the stored value.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

mod common;

use std::io::Write as _;
use std::os::unix::process::ExitStatusExt as _;
use std::process::{Output, Stdio};

use common::{TestDeployment, text};
use immich_db_testhost::{Host, require_host, require_rootless_host};

/// `immich-db --json secrets set NAME` with `input` on standard input.
fn set(d: &TestDeployment, name: &str, input: &str, fault: Option<&str>) -> Output {
    let config = d.config();
    let mut cmd = d.command(&config, &["--json", "secrets", "set", name]);
    if let Some(point) = fault {
        cmd.env("IMMICH_DB_FAULT_AT", point);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that refuses its arguments exits without reading: the write
    // then fails, and its output says why.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    child.wait_with_output().unwrap()
}

/// `secrets set` that must succeed; what its report says the consumer needed.
fn set_ok(d: &TestDeployment, name: &str, value: &str) -> String {
    let out = set(d, name, &format!("{value}\n"), None);
    let shown = text(&out).replace(value, "[the value]");
    assert!(out.status.success(), "secrets set {name}: {shown}");
    assert!(
        !text(&out).contains(value),
        "the value was printed: {shown}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    report["set"]["consumer"].as_str().unwrap().to_owned()
}

/// Whether PostgreSQL, asked over TCP from outside, accepts `password`.
fn postgres_accepts(d: &TestDeployment, password: &str) -> bool {
    let out = d.psql(password, "SELECT 1");
    if out.status.success() {
        return true;
    }
    let message = text(&out).replace(password, "[password]");
    assert!(
        message.contains("password authentication failed"),
        "psql failed for another reason: {message}"
    );
    false
}

fn rows(d: &TestDeployment, password: &str) -> String {
    let out = d.psql(password, "SELECT name FROM albums ORDER BY id");
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn secret_exists(d: &TestDeployment, name: &str) -> bool {
    d.host.podman(["secret", "exists", name]).status.success()
}

/// A deploy (or plan) refused before it changes anything, naming the way back.
fn refused(d: &TestDeployment, command: &str) {
    let out = d.run(&["--json", command]);
    assert_eq!(out.status.code(), Some(3), "{command}: {}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let help = report["error"]["help"].as_str().unwrap();
    assert!(
        help.contains(&format!("immich-db secrets set {}", d.pg_secret)),
        "{report:#}"
    );
    assert!(
        report["error"]["what"]
            .as_str()
            .unwrap()
            .contains("initialised"),
        "{report:#}"
    );
    assert!(
        !secret_exists(d, &d.pg_secret),
        "{command} created the secret"
    );
    assert!(!secret_exists(d, &format!("{}.rotating", d.pg_secret)));
}

fn lost(host: &'static Host) {
    let mut d = TestDeployment::new(host, "lost");
    for secret in [d.pg_secret.clone(), d.vk_secret.clone()] {
        d.cleanup.secret(&format!("{secret}.rotating"));
    }
    let helper = format!("{}-secret-set", d.pg);
    d.cleanup.container(&helper);
    d.json_ok("deploy");
    let first = d.secret_value(&d.pg_secret).unwrap();
    let out = d.psql(
        &first,
        "CREATE TABLE albums (id int PRIMARY KEY, name text); INSERT INTO albums VALUES (1, 'summer'), (2, 'winter')",
    );
    assert!(out.status.success(), "{}", text(&out));
    let running = d.container_identity(&d.pg);

    // Lost while the database runs: refused, nothing created, nothing restarted.
    host.podman_ok(["secret", "rm", &d.pg_secret]);
    refused(&d, "plan");
    refused(&d, "deploy");
    assert_eq!(d.container_identity(&d.pg), running);

    // Given back from a password manager: stored, nothing else changes.
    assert_eq!(set_ok(&d, &d.pg_secret, &first), "already-had");
    assert_eq!(d.secret_value(&d.pg_secret).unwrap(), first);
    assert_eq!(d.container_identity(&d.pg), running);
    d.json_ok("verify");
    let out = d.run_ok(&["deploy"]);
    assert!(text(&out).contains("No changes"), "{}", text(&out));

    // Lost for good on a host whose services are gone (a reinstalled host
    // that keeps its pool): refused again.
    d.run_ok(&["destroy"]);
    host.podman_ok(["secret", "rm", &d.pg_secret]);
    refused(&d, "deploy");
    assert!(d.unit_files().iter().all(|f| !f.exists()));

    // A set cut short once the database has the new password: the secret is
    // still missing (never one that does not open the database), and deploy
    // still refuses.
    let second = "SecondPassword0fTheAlbums4Immich0123456789";
    let out = set(&d, &d.pg_secret, second, Some("set-consumer"));
    assert!(
        out.status.signal() == Some(9) || out.status.code() == Some(128 + 9),
        "not killed: {}",
        text(&out)
    );
    assert!(!secret_exists(&d, &d.pg_secret));
    refused(&d, "deploy");

    // Run again: the server started for it (and the one the cut left) gone,
    // the database has the password, the secret holds it.
    assert_eq!(set_ok(&d, &d.pg_secret, second), "already-had");
    assert!(
        !host
            .podman(["container", "exists", &helper])
            .status
            .success(),
        "{helper} was left behind"
    );
    assert_eq!(d.secret_value(&d.pg_secret).unwrap(), second);
    let report = d.json_ok("deploy");
    assert_eq!(report["verify"]["ok"], true, "{report:#}");
    assert!(postgres_accepts(&d, second));
    assert!(!postgres_accepts(&d, &first));
    assert_eq!(rows(&d, second), "summer\nwinter");

    // Lost for good, services stopped, a new value given in one go.
    d.run_ok(&["destroy"]);
    host.podman_ok(["secret", "rm", &d.pg_secret]);
    let third = "ThirdPassword0fTheAlbums4Immich0123456789";
    assert_eq!(set_ok(&d, &d.pg_secret, third), "rekeyed");
    d.json_ok("deploy");
    assert!(postgres_accepts(&d, third));
    assert!(!postgres_accepts(&d, second));

    // A new value while it runs: the running server's role gets it, without
    // a restart.
    let running = d.container_identity(&d.pg);
    let fourth = "FourthPassword0fTheAlbums4Immich0123456789";
    assert_eq!(set_ok(&d, &d.pg_secret, fourth), "rekeyed");
    assert_eq!(d.container_identity(&d.pg), running);
    assert!(postgres_accepts(&d, fourth));
    assert!(!postgres_accepts(&d, third));
    assert!(!secret_exists(&d, &format!("{}.rotating", d.pg_secret)));
    d.json_ok("verify");
    assert_eq!(rows(&d, fourth), "summer\nwinter");

    // Valkey's secret lost while it runs: deploy makes a new one and restarts
    // Valkey with it.
    let vk_first = d.secret_value(&d.vk_secret).unwrap();
    let vk_running = d.container_identity(&d.vk);
    host.podman_ok(["secret", "rm", &d.vk_secret]);
    let report = d.json_ok("deploy");
    assert_eq!(report["verify"]["ok"], true, "{report:#}");
    let vk_new = d.secret_value(&d.vk_secret).unwrap();
    assert_ne!(vk_new, vk_first);
    assert_ne!(d.container_identity(&d.vk), vk_running);
    assert_eq!(d.valkey_ping(Some(&vk_new)), "PONG");
    assert!(d.valkey_ping(Some(&vk_first)).contains("WRONGPASS"));

    // And set from a password manager: restarted with it.
    let vk_kept = "Kept-Valkey-Password_0123456789abcdefXYZ";
    assert_eq!(set_ok(&d, &d.vk_secret, vk_kept), "restarted");
    assert_eq!(d.valkey_ping(Some(vk_kept)), "PONG");
    assert!(d.valkey_ping(Some(&vk_new)).contains("WRONGPASS"));
    d.json_ok("verify");

    // A value the consumer cannot take, or a name that is not the
    // deployment's: bad input, nothing changed.
    for (name, input) in [
        (d.pg_secret.as_str(), "two words\n"),
        (d.pg_secret.as_str(), "\n"),
        ("no-such-secret", "Whatever0123456789\n"),
    ] {
        let out = set(&d, name, input, None);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
    }
    assert_eq!(d.secret_value(&d.pg_secret).unwrap(), fourth);
    d.json_ok("verify");
}

#[test]
fn a_lost_postgresql_password_is_refused_then_given_back_or_replaced() {
    lost(require_host!());
}

#[test]
fn rootless_a_lost_postgresql_password_is_refused_then_given_back_or_replaced() {
    lost(require_rootless_host!());
}
