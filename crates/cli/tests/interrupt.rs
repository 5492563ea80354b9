//! Deploy killed (SIGKILL, through the debug-build fault hook) at each step
//! boundary; deploy again reaches the same verified state with the same secrets.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

mod common;

use std::os::unix::process::ExitStatusExt as _;

use common::{TestDeployment, text};
use immich_db_testhost::require_host;

fn killed_at(step: &str) {
    let host = require_host!();
    let d = TestDeployment::new(host, &format!("int{}", &step[..3]));
    let config = d.config();
    let out = d
        .command(&config, &["deploy"])
        .env("IMMICH_DB_FAULT_AT", step)
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(9),
        "not killed at {step}: {}",
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
    killed_at("network");
}
#[test]
fn killed_before_storage() {
    killed_at("storage");
}
#[test]
fn killed_before_secrets() {
    killed_at("secrets");
}
#[test]
fn killed_before_the_container_units() {
    killed_at("units");
}
#[test]
fn killed_before_daemon_reload() {
    killed_at("reload");
}
#[test]
fn killed_before_start() {
    killed_at("start");
}
#[test]
fn killed_while_waiting_for_health() {
    killed_at("health");
}
#[test]
fn killed_before_verify() {
    killed_at("verify");
}
