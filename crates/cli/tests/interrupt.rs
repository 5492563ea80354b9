//! Deploy killed (SIGKILL, through the debug-build fault hook) at each step
//! boundary; deploy again reaches the same verified state with the same secrets.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

mod common;

use common::{TestDeployment, text};
use immich_db_testhost::{Host, require_host, require_rootless_host};

fn killed_at(host: &'static Host, step: &str) {
    let d = TestDeployment::new(host, &format!("int{}", &step[..3]));
    let config = d.config();
    let out = d
        .command(&config, &["deploy"])
        .env("IMMICH_DB_FAULT_AT", step)
        .output()
        .unwrap();
    assert!(
        common::killed(&out),
        "not killed at {step} ({}): {}",
        out.status,
        text(&out)
    );
    let secrets_after_kill: Vec<Option<String>> =
        d.secrets().iter().map(|s| d.secret_value(s)).collect();

    d.json_ok("deploy");
    d.json_ok("verify");
    for (name, before) in d.secrets().iter().zip(&secrets_after_kill) {
        let now = d.secret_value(name);
        assert!(now.is_some(), "{name}");
        if before.is_some() {
            assert_eq!(
                &now, before,
                "the secret {name} changed after the kill at {step}"
            );
        }
    }
    let out = d.run_ok(&["deploy"]);
    assert!(text(&out).contains("No changes"), "{}", text(&out));
}

#[test]
fn killed_before_the_network_unit() {
    killed_at(require_host!(), "network");
}
#[test]
fn rootless_killed_before_the_network_unit() {
    killed_at(require_rootless_host!(), "network");
}
#[test]
fn killed_before_storage() {
    killed_at(require_host!(), "storage");
}
#[test]
fn rootless_killed_before_storage() {
    killed_at(require_rootless_host!(), "storage");
}
#[test]
fn killed_before_secrets() {
    killed_at(require_host!(), "secrets");
}
#[test]
fn rootless_killed_before_secrets() {
    killed_at(require_rootless_host!(), "secrets");
}
#[test]
fn killed_before_the_container_units() {
    killed_at(require_host!(), "units");
}
#[test]
fn rootless_killed_before_the_container_units() {
    killed_at(require_rootless_host!(), "units");
}
#[test]
fn killed_before_daemon_reload() {
    killed_at(require_host!(), "reload");
}
#[test]
fn rootless_killed_before_daemon_reload() {
    killed_at(require_rootless_host!(), "reload");
}
#[test]
fn killed_before_start() {
    killed_at(require_host!(), "start");
}
#[test]
fn rootless_killed_before_start() {
    killed_at(require_rootless_host!(), "start");
}
#[test]
fn killed_while_waiting_for_health() {
    killed_at(require_host!(), "health");
}
#[test]
fn rootless_killed_while_waiting_for_health() {
    killed_at(require_rootless_host!(), "health");
}
#[test]
fn killed_before_verify() {
    killed_at(require_host!(), "verify");
}
#[test]
fn rootless_killed_before_verify() {
    killed_at(require_rootless_host!(), "verify");
}
