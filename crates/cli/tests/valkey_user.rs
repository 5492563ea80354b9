//! Valkey runs as its image's unprivileged user (the image's entrypoint drops
//! root), or as the deploying user with rootless podman, never as root; its
//! password stays out of every argument, and its data directory keeps working:
//! the NOCOW audit, `dump.rdb` across a restart, purge.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

mod common;

use std::os::unix::fs::MetadataExt as _;
use std::time::Duration;

use common::{TestDeployment, lsattr_flags, text};
use immich_db_testhost::{
    Cleanup, Host, require_host, require_rootless_host, unique_name, wait_for,
};

#[test]
fn valkey_runs_as_its_images_user_and_keeps_its_data() {
    valkey_user(require_host!());
}

#[test]
fn rootless_valkey_runs_as_the_deploying_user_and_keeps_its_data() {
    valkey_user(require_rootless_host!());
}

/// `valkey-cli ARGS` to the deployment's Valkey from where its address is
/// reachable, with the password in the client's environment.
fn valkey_cli(d: &TestDeployment, password: &str, args: &[&str]) -> String {
    let ip = d.container_ip(&d.vk);
    let out = d
        .on_network("valkey-cli")
        .args(["-h", &ip])
        .args(args)
        .env("REDISCLI_AUTH", password)
        .output()
        .unwrap();
    text(&out).trim().to_owned()
}

/// `podman top` of the container: each process's fields.
fn top(d: &TestDeployment, fields: &[&str]) -> Vec<Vec<String>> {
    let mut args = vec!["top", d.vk.as_str()];
    args.extend_from_slice(fields);
    d.host
        .podman_ok(&args)
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

fn valkey_user(host: &'static Host) {
    // The test image under a registry's name (`.invalid` never resolves, and
    // nothing is pulled: the image is there), with automatic updates asked
    // for. The name goes after the deployment's container (dropped first).
    let name = format!("registry.invalid/{}/valkey:8", unique_name("vkuser"));
    let mut image = Cleanup::new(host);
    image.image(&name);
    host.podman_ok(["tag", &host.valkey_image, &name]);
    let d = TestDeployment::new(host, "vkuser");
    let config = d.write_config(
        "valkey.toml",
        &d.config_text(
            &[("valkey", "image", Some(&format!("{name:?}")))],
            &[("valkey", "auto_update = true")],
        ),
    );
    let out = d.command(&config, &["--json", "deploy"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verify"]["ok"], true, "{report:#}");
    // podman auto-update finds the container by its label (never run here: it
    // would ask the registry).
    let policy = host.podman_ok([
        "inspect",
        "--format",
        "{{index .Config.Labels \"io.containers.autoupdate\"}}",
        &d.vk,
    ]);
    assert_eq!(policy.trim(), "registry");
    let password = d.secret_value(&d.vk_secret).unwrap();

    // Who runs the server, as podman tells: in the container and on the host.
    let users = top(&d, &["user", "huser"]);
    assert!(!users.is_empty());
    for row in &users {
        let (user, huser) = (&row[0], &row[1]);
        match &host.user {
            // Rootful: the image's own user, which is not root on the host.
            None => {
                assert_eq!(user, "valkey", "{users:?}");
                assert!(huser != "root" && huser != "0", "{users:?}");
            }
            // Rootless: the deploying user, in the container and on the host.
            Some(deployer) => {
                assert_eq!(huser, &deployer.name, "{users:?}");
                assert_eq!(user, &deployer.name, "{users:?}");
            }
        }
    }
    // The server is PID 1 (it gets SIGTERM on stop); the password is in no
    // process's arguments.
    let processes = top(&d, &["pid", "args"]);
    let pid1 = processes.iter().find(|p| p[0] == "1").unwrap();
    assert!(pid1[1].contains("valkey-server"), "{processes:?}");
    for p in &processes {
        assert!(
            !p.join(" ").contains(&password),
            "the password is in an argument"
        );
    }
    // verify says the same.
    let out = d.command(&config, &["--json", "verify"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let verify: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = verify["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == format!("user {}", d.vk))
        .unwrap_or_else(|| panic!("{verify:#}"));
    assert_eq!(check["ok"], true, "{check}");

    // Its data: written, saved, there after a restart.
    assert_eq!(valkey_cli(&d, &password, &["set", "album:1", "kept"]), "OK");
    assert_eq!(valkey_cli(&d, &password, &["save"]), "OK");
    let dump = d.valkey_dir().join("dump.rdb");
    let meta = std::fs::metadata(&dump).unwrap();
    match &host.user {
        None => assert_ne!(meta.uid(), 0, "dump.rdb is root's"),
        Some(deployer) => assert_eq!(meta.uid(), deployer.uid),
    }
    assert!(
        lsattr_flags(host, &dump).contains('C'),
        "dump.rdb is not NOCOW"
    );
    let service = format!("{}.service", d.vk);
    host.systemctl_ok(["restart", &service]);
    wait_for("Valkey to answer again", Duration::from_secs(60), || {
        (valkey_cli(&d, &password, &["ping"]) == "PONG").then_some(())
    });
    assert_eq!(valkey_cli(&d, &password, &["get", "album:1"]), "kept");
    let out = d
        .command(&config, &["--json", "storage", "audit"])
        .output()
        .unwrap();
    let audit: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(audit["ok"], true, "{audit:#}");

    // Purged with the rest.
    let out = d
        .command(&config, &["destroy", "--purge-data", "--yes"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!d.valkey_dir().exists());
}
