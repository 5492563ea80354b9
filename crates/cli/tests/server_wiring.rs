//! The Immich server's side of the wiring, on the real test host: the extra
//! settings of the containers reach them (environment, podman options,
//! `DB_STORAGE_TYPE`), clients on the host reach PostgreSQL on its published
//! loopback port and Valkey on its fixed address across restarts, `server env`
//! names what the server needs without a password, and `server units` writes
//! the server's and machine learning's units, which podman's own generator and
//! the systemd manager load (they are not started: Immich's images cannot be
//! pulled here), and which `destroy` removes with the layer's.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

mod common;

use std::process::Command;

use common::{TestDeployment, named_check, text};
use immich_db_testhost::{Host, require_host, require_rootless_host};

#[test]
fn host_clients_and_the_server_units_are_wired_to_the_layer() {
    wiring(require_host!());
}

#[test]
fn rootless_host_clients_and_the_server_units_are_wired_to_the_layer() {
    wiring(require_rootless_host!());
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `psql` from the host to the published port, with the password in psql's
/// environment.
fn psql_published(d: &TestDeployment, port: u16, password: &str) -> String {
    let out = d
        .host
        .command("psql")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args([
            "-U",
            "immich",
            "-d",
            "immich",
            "-w",
            "-Atc",
            "SELECT 40 + 2",
        ])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// What the installed podman's generator makes of the files, copied alone into
/// a directory: its standard output and standard error.
fn generate(files: &[std::path::PathBuf]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    for file in files {
        std::fs::copy(file, dir.path().join(file.file_name().unwrap())).unwrap();
    }
    let out = Command::new("/usr/libexec/podman/quadlet")
        .env("QUADLET_UNIT_DIRS", dir.path())
        .args(["-dryrun", "-user"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn wiring(host: &'static Host) {
    let d = TestDeployment::new(host, "wire");
    let port = free_port();
    let valkey_ip = d.address(211);
    // Valkey pinned by digest alone.
    let digest = host
        .podman_ok([
            "image",
            "inspect",
            "--format",
            "{{.Digest}}",
            &host.valkey_image,
        ])
        .trim()
        .to_owned();
    let repo = host.valkey_image.rsplit_once(':').unwrap().0;
    let valkey_image = format!("{repo}@{digest}");
    let config = d.write_config(
        "wiring.toml",
        &d.config_text(
            &[("valkey", "image", Some(&format!("{valkey_image:?}")))],
            &[
                ("postgres", &format!("publish = \"127.0.0.1:{port}\"")),
                ("postgres", "storage_type = \"hdd\""),
                ("postgres", "podman_args = [\"--label=idbt.extra=yes\"]"),
                ("postgres", "environment = { TZ = \"UTC\" }"),
                ("valkey", &format!("ip = \"{valkey_ip}\"")),
                ("valkey", "environment = { IDBT_NOTE = \"two words\" }"),
            ],
        ),
    );
    let run = |args: &[&str]| {
        let out = d.command(&config, args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        out
    };
    let json = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_slice(&run(&all).stdout).unwrap()
    };
    let report = json(&["deploy"]);
    assert_eq!(report["verify"]["ok"], true, "{report:#}");
    let published = named_check(&report["verify"], &format!("published {}", d.pg));
    assert_eq!(published["ok"], true, "{published}");

    // The extra settings reached the containers.
    let env = host.podman_ok(["inspect", "--format", "{{json .Config.Env}}", &d.pg]);
    for var in ["DB_STORAGE_TYPE=HDD", "TZ=UTC"] {
        assert!(env.contains(var), "{var} in {env}");
    }
    let labels = host.podman_ok(["inspect", "--format", "{{json .Config.Labels}}", &d.pg]);
    assert!(labels.contains("\"idbt.extra\":\"yes\""), "{labels}");
    let env = host.podman_ok(["inspect", "--format", "{{json .Config.Env}}", &d.vk]);
    assert!(env.contains("IDBT_NOTE=two words"), "{env}");

    // Clients on the host: PostgreSQL on its published loopback port, across
    // a restart that may change its address on the network; Valkey on its
    // fixed address, the same after a restart.
    let pg_password = d.secret_value(&d.pg_secret).unwrap();
    let vk_password = d.secret_value(&d.vk_secret).unwrap();
    assert_eq!(psql_published(&d, port, &pg_password), "42");
    assert_eq!(d.container_ip(&d.vk), valkey_ip);
    assert_eq!(d.valkey_ping(Some(&vk_password)), "PONG");
    for service in [&d.pg, &d.vk] {
        host.systemctl_ok(["restart", &format!("{service}.service")]);
    }
    assert_eq!(psql_published(&d, port, &pg_password), "42");
    assert_eq!(d.container_ip(&d.vk), valkey_ip);
    assert_eq!(d.valkey_ping(Some(&vk_password)), "PONG");
    let report = json(&["verify"]);
    assert_eq!(report["ok"], true, "{report:#}");

    // What the server needs: names and password files, never a password.
    let out = run(&["server", "env"]);
    let env = String::from_utf8_lossy(&out.stdout).into_owned();
    for secret in [&pg_password, &vk_password] {
        assert!(
            !text(&out).contains(secret.as_str()),
            "a password in server env"
        );
    }
    for line in [
        format!("DB_HOSTNAME={}", d.pg),
        "DB_USERNAME=immich".to_owned(),
        "DB_DATABASE_NAME=immich".to_owned(),
        "DB_PASSWORD_FILE=/run/secrets/immich-db-password".to_owned(),
        format!("REDIS_HOSTNAME={}", d.vk),
        "REDIS_PASSWORD_FILE=/run/secrets/immich-redis-password".to_owned(),
        format!("# Clients on the host reach postgres at 127.0.0.1:{port} (published)."),
    ] {
        assert!(env.lines().any(|l| l == line), "{line} in:\n{env}");
    }
    let report = json(&["server", "env"]);
    assert_eq!(report["variables"]["DB_HOSTNAME"], d.pg.as_str());
    assert_eq!(report["secrets"][0]["secret"], d.pg_secret.as_str());

    // The server's units: written into the unit directory, loaded by the
    // manager (generated by podman's generator), not started.
    let report = json(&["server", "units"]);
    assert_eq!(report["reloaded"], true, "{report:#}");
    assert_eq!(report["files"].as_array().unwrap().len(), 2);
    let files = d.server_unit_files();
    for file in &files {
        assert!(file.exists(), "{}", file.display());
    }
    let srv = format!("{}-srv.service", d.name);
    let ml = format!("{}-ml.service", d.name);
    for unit in [&srv, &ml] {
        let show = host.systemctl_ok(["show", "-p", "LoadState,ActiveState", unit]);
        assert!(show.contains("LoadState=loaded"), "{unit}: {show}");
        assert!(show.contains("ActiveState=inactive"), "{unit}: {show}");
    }
    // The lint and podman's generator agree that the five units are clean.
    let mut all = d.unit_files();
    all.extend(files.iter().cloned());
    let mut lint = vec!["quadlet", "lint"];
    let names: Vec<String> = all.iter().map(|p| p.display().to_string()).collect();
    lint.extend(names.iter().map(String::as_str));
    run(&lint);
    let (generated, errors) = generate(&all);
    assert!(!errors.to_lowercase().contains("error"), "{errors}");
    assert!(generated.contains(&format!("---{srv}---")), "{generated}");
    // Again: nothing changes, nothing reloads.
    let report = json(&["server", "units"]);
    assert_eq!(report["reloaded"], false, "{report:#}");
    assert!(
        report["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["written"] == "unchanged"),
        "{report:#}"
    );

    // destroy removes them with the layer's units.
    let out = run(&["destroy"]);
    for file in files.iter().chain(&d.unit_files()) {
        assert!(
            !file.exists(),
            "{} after destroy: {}",
            file.display(),
            text(&out)
        );
    }
    let show = host.systemctl(["show", "-p", "LoadState", &srv]);
    assert!(
        String::from_utf8_lossy(&show.stdout).contains("LoadState=not-found"),
        "{}",
        text(&show)
    );
}
