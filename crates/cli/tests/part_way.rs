//! A deploy that cannot finish, on the real test host: Valkey's image is one that
//! cannot run Valkey. Deploy stops with exit code 4, says what it did and how to
//! go on; with the image fixed, deploy again resumes, keeps the secrets it made
//! the first time, and verifies.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

mod common;

use common::{TestDeployment, text};
use immich_db_testhost::require_host;

#[test]
fn a_service_that_cannot_start_stops_deploy_part_way_and_deploy_again_resumes() {
    let host = require_host!();
    let d = TestDeployment::new(host, "part");
    // The PostgreSQL image has no valkey-server: its container exits at once,
    // every time systemd restarts it.
    let wrong_image = format!("{:?}", host.postgres_image);
    let broken = d.write_config(
        "broken.toml",
        &d.config_text(&[("valkey", "image", Some(&wrong_image))], &[]),
    );
    let out = d.command(&broken, &["--json", "deploy"]).output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = &report["error"];
    assert_eq!(report["ok"], false, "{report:#}");
    assert_eq!(error["exit"], "failed", "{report:#}");
    let what = error["what"].as_str().unwrap();
    assert!(
        what.contains(&format!("{}.service", d.vk)) && what.contains("failed to start"),
        "{report:#}"
    );
    let done: Vec<&str> = error["done"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for secret in d.secrets() {
        assert!(
            done.iter().any(|s| s.contains(secret)),
            "{secret} not in {done:?}"
        );
    }
    assert!(
        error["help"]
            .as_str()
            .unwrap()
            .contains("running `immich-db deploy` again resumes"),
        "{report:#}"
    );
    // The human message says the same on standard error.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("done before it stopped:"), "{stderr}");
    let secrets: Vec<Option<String>> = d.secrets().iter().map(|s| d.secret_value(s)).collect();
    assert!(secrets.iter().all(Option::is_some));
    // What did start is left running.
    assert_eq!(d.is_active(&format!("{}.service", d.pg)), "active");

    // Fixed: deploy resumes and reaches the verified state, with the same secrets.
    d.json_ok("deploy");
    d.json_ok("verify");
    for (name, before) in d.secrets().iter().zip(&secrets) {
        assert_eq!(&d.secret_value(name), before, "{name}");
    }
}
