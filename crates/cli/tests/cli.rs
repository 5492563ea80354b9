//! The command line without the test host: configuration files, exit codes for
//! bad input, and the `quadlet fmt` / `quadlet lint` wrappers.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

use std::path::Path;
use std::process::{Command, Output};

fn immich_db(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_immich-db"))
        .args(args)
        .env_remove("IMMICH_DB_CONFIG")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn config_init_writes_a_commented_file_that_show_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sub/config.toml");
    let out = immich_db(&["config", "init", path(&file)]);
    assert!(out.status.success(), "{}", text(&out));
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.contains("# dns = [\"192.0.2.53\"]"), "{written}");
    assert!(written.contains("name = \"photos\""));

    // Never replaced without --force.
    std::fs::write(&file, "# mine\n").unwrap();
    let out = immich_db(&["config", "init", path(&file)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--force"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "# mine\n");
    let out = immich_db(&["config", "init", "--force", path(&file)]);
    assert!(out.status.success());

    let out = immich_db(&["--json", "config", "show", "--config", path(&file)]);
    assert!(out.status.success(), "{}", text(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["config"]["network"]["subnet"], "10.89.5.0/24");
    assert_eq!(shown["config"]["network"]["dns"], serde_json::json!([]));
    assert_eq!(shown["resolved"]["network"], "systemd-photos");
    assert_eq!(shown["source"]["kind"], "flag");

    // $IMMICH_DB_CONFIG is read when --config is not given.
    std::fs::write(&file, "[network]\nname = \"media\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_immich-db"))
        .args(["config", "show"])
        .env("IMMICH_DB_CONFIG", &file)
        .output()
        .unwrap();
    assert!(text(&out).contains("name = \"media\""), "{}", text(&out));
    assert!(text(&out).contains("IMMICH_DB_CONFIG"), "{}", text(&out));
}

#[test]
fn bad_configuration_exits_2_naming_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "[network]\nname = \"photos\"\ngateway = \"10.1.1.1\"\n",
    )
    .unwrap();
    for command in ["deploy", "plan", "verify", "status", "destroy"] {
        let out = immich_db(&["--config", path(&file), command]);
        assert_eq!(out.status.code(), Some(2), "{command}: {}", text(&out));
        let message = text(&out);
        assert!(
            message.contains("c.toml:3:1 ([network] gateway)"),
            "{message}"
        );
        assert!(
            message.contains("outside the subnet 10.89.5.0/24"),
            "{message}"
        );
        assert!(message.contains("help:"), "{message}");
    }
    let out = immich_db(&["--json", "--config", path(&file), "deploy"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["error"]["exit"], "bad-input");
    assert!(
        json["error"]["where"]
            .as_str()
            .unwrap()
            .contains("c.toml:3:1")
    );

    let out = immich_db(&["--config", path(&dir.path().join("missing.toml")), "plan"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("config init"), "{}", text(&out));
}

#[test]
fn every_command_shows_an_example_in_its_help() {
    for args in [
        vec!["--help"],
        vec!["plan", "--help"],
        vec!["deploy", "--help"],
        vec!["verify", "--help"],
        vec!["status", "--help"],
        vec!["destroy", "--help"],
        vec!["config", "init", "--help"],
        vec!["config", "show", "--help"],
        vec!["quadlet", "fmt", "--help"],
        vec!["quadlet", "lint", "--help"],
    ] {
        let out = immich_db(&args);
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out).contains("Example:"), "{args:?}: {}", text(&out));
    }
}

const NETWORK: &str = "[Unit]\nDescription=Photos Service Network\n\n[Network]\nSubnet=10.89.5.0/24\nGateway=10.89.5.1\n\n[Install]\nWantedBy=default.target\n";

#[test]
fn quadlet_fmt_prints_checks_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("photos.network");
    let messy = "[Network]\nSubnet = 10.89.5.0/24\n\n\n[Install]\nWantedBy=default.target\n";
    std::fs::write(&file, messy).unwrap();

    let out = immich_db(&["quadlet", "fmt", path(&file)]);
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(printed.contains("Subnet=10.89.5.0/24"), "{printed}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        messy,
        "fmt alone changes nothing"
    );

    let out = immich_db(&["quadlet", "fmt", "--check", path(&file)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let out = immich_db(&["quadlet", "fmt", "--write", path(&file)]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().trim_end(),
        printed.trim_end()
    );
    let out = immich_db(&["quadlet", "fmt", "--check", path(&file)]);
    assert!(out.status.success(), "{}", text(&out));

    std::fs::write(&file, "[Network\n").unwrap();
    let out = immich_db(&["quadlet", "fmt", path(&file)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("photos.network"), "{}", text(&out));
}

#[test]
fn quadlet_lint_reports_the_journal_mistakes_with_fixes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("photos.network"), NETWORK).unwrap();
    let wrong = "[Unit]\nAfter=systemd-photos-network.service\nRequires=systemd-photos-network.service\n\n\
                 [Container]\nImage=docker.io/valkey/valkey:8\nContainerName=redis-immich\n\
                 Network=systemd-photos.network\n\n[Service]\nRestart=always\n\n[Install]\nWantedBy=default.target\n";
    std::fs::write(dir.path().join("redis-immich.container"), wrong).unwrap();

    let out = immich_db(&[
        "--json",
        "quadlet",
        "lint",
        "--podman",
        "5.4.2",
        path(dir.path()),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let findings = report["findings"].as_array().unwrap();
    let fixes: Vec<&str> = findings.iter().filter_map(|f| f["fix"].as_str()).collect();
    assert!(
        fixes.iter().any(|f| f.contains("photos.network")),
        "{report:#}"
    );
    assert!(
        findings.iter().any(|f| f["message"]
            .as_str()
            .unwrap()
            .contains("systemd-photos-network.service")),
        "{report:#}"
    );
    let out = immich_db(&["quadlet", "lint", path(dir.path())]);
    assert!(
        text(&out).contains("redis-immich.container:"),
        "{}",
        text(&out)
    );

    // The corrected unit lints clean.
    let right = "[Unit]\nDescription=Redis for Immich\n\n[Container]\nImage=docker.io/valkey/valkey:8\n\
                 ContainerName=redis-immich\nNetwork=photos.network\n\n[Service]\nRestart=always\n\n\
                 [Install]\nWantedBy=default.target\n";
    std::fs::write(dir.path().join("redis-immich.container"), right).unwrap();
    let out = immich_db(&["quadlet", "lint", "--podman", "5.4.2", path(dir.path())]);
    assert!(out.status.success(), "{}", text(&out));

    let out = immich_db(&["quadlet", "lint", "--podman", "five", path(dir.path())]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // A file that does not parse is one error, reported once, at its line; from
    // podman 5.0 the generator then reads no file of its directory, and each of
    // them says so.
    std::fs::write(dir.path().join("broken.container"), "[Container]\nImage\n").unwrap();
    let out = immich_db(&["quadlet", "lint", "--podman", "5.4.2", path(dir.path())]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let human = text(&out);
    assert_eq!(human.matches("broken.container:2").count(), 1, "{human}");
    assert_eq!(
        human
            .matches("broken.container in the same directory")
            .count(),
        2,
        "{human}"
    );
    assert!(human.contains(": 3 error(s)"), "{human}");
    let out = immich_db(&["quadlet", "lint", "--podman", "4.9.3", path(dir.path())]);
    let human = text(&out);
    assert!(human.contains(": 1 error(s)"), "{human}");
}
