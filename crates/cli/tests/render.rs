//! `render` writes the units deploy writes, for any podman release from 4.4 on:
//! each release's own Quadlet generator converts them with no error, with health
//! checks in every release, and before 5.0 a service is held starting until its
//! container is healthy, on the real systemd and podman of the test host.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{TestDeployment, text};
use immich_db_testhost::{require_host, shared};

/// The generators beside the repository, by release.
const RELEASES: [&str; 4] = ["4.4.4", "4.9.3", "5.0.3", "5.8.2"];

/// What a generator makes of the units in `dir`: its standard output, and its
/// standard error (where every release reports a unit it refuses).
fn generate(generator: &Path, dir: &Path, user: bool) -> (String, String) {
    let mut cmd = Command::new(generator);
    cmd.env("QUADLET_UNIT_DIRS", dir).arg("-dryrun");
    if user {
        cmd.arg("-user");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        generator.display(),
        text(&out)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The generated service named `name` (its `---name---` block).
fn service<'a>(generated: &'a str, name: &str) -> &'a str {
    let start = generated
        .find(&format!("---{name}---"))
        .unwrap_or_else(|| panic!("no {name} in:\n{generated}"));
    let rest = &generated[start + name.len() + 6..];
    rest.find("\n---").map_or(rest, |end| &rest[..end])
}

fn render(d: &TestDeployment, config: &Path, out: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json", "render", "--output"];
    let out = out.to_str().unwrap();
    all.push(out);
    all.extend_from_slice(args);
    let run = d.command(config, &all).output().unwrap();
    assert!(run.status.success(), "render {args:?}: {}", text(&run));
    serde_json::from_slice(&run.stdout).unwrap()
}

/// Checks what `generator` (of `release`) makes of the units rendered for it.
fn conforms(d: &TestDeployment, generator: &Path, release: &str) {
    let old = release.starts_with('4');
    for (variant, args, scope) in [
        ("rootful", ["--rootful"], "user"),
        ("rootless", ["--rootless"], "user"),
        ("system", ["--rootful"], "system"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        d.host.give(dir.path());
        let config = d.write_config(
            &format!("{variant}.toml"),
            &d.config_text(
                &[("systemd", "unit_dir", None)],
                &[("systemd", &format!("scope = {scope:?}"))],
            ),
        );
        let mut render_args = vec!["--podman", release];
        render_args.extend(args);
        let report = render(d, &config, dir.path(), &render_args);
        assert_eq!(report["podman"], release, "{report:#}");
        assert_eq!(report["files"].as_array().unwrap().len(), 3, "{report:#}");
        let (generated, errors) = generate(generator, dir.path(), scope == "user");
        let what = format!("podman {release}, {variant}");
        assert!(
            !errors.to_lowercase().contains("error") && !errors.contains("converting"),
            "{what}: the generator refused a unit:\n{errors}"
        );
        let network = service(&generated, &format!("{}-network.service", d.name));
        assert!(network.contains(&d.subnet), "{what}: {network}");
        for container in [&d.pg, &d.vk] {
            let unit = service(&generated, &format!("{container}.service"));
            let exec = unit
                .lines()
                .find(|l| l.starts_with("ExecStart="))
                .unwrap_or_else(|| panic!("{what}: no ExecStart= in {unit}"));
            // Health checks in every release.
            assert!(exec.contains("--health-cmd"), "{what}: {exec}");
            assert!(exec.contains("--health-startup-cmd"), "{what}: {exec}");
            assert!(exec.contains("--secret"), "{what}: {exec}");
            // Readiness: podman's own wait from 5.0, a wait after start before.
            let waits = unit.contains("ExecStartPost=/bin/sh -c 'until podman healthcheck run");
            if old {
                assert!(exec.contains("--sdnotify=conmon"), "{what}: {exec}");
                assert!(waits, "{what}: {unit}");
            } else {
                assert!(exec.contains("--sdnotify=healthy"), "{what}: {exec}");
                assert!(!waits, "{what}: {unit}");
            }
            assert_eq!(
                exec.contains("--userns keep-id") || exec.contains("--userns=keep-id"),
                variant == "rootless",
                "{what}: {exec}"
            );
            let boot = if scope == "system" {
                "multi-user.target"
            } else {
                "default.target"
            };
            assert!(unit.contains(&format!("WantedBy={boot}")), "{what}: {unit}");
        }
        assert!(
            service(&generated, &format!("{}.service", d.pg)).contains("--shm-size"),
            "{what}"
        );
    }
}

#[test]
fn every_generator_from_4_4_converts_the_units_rendered_for_it() {
    let host = require_host!();
    let d = TestDeployment::new(host, "rndr");
    let mut checked = Vec::new();
    for release in RELEASES {
        let Some(generator) = shared(&format!("podman-quadlet/quadlet-{release}")) else {
            eprintln!(
                "SKIPPED the podman {release} generator: ../shared/podman-quadlet is not beside the repository (set IMMICH_DB_SHARED to its folder)"
            );
            continue;
        };
        conforms(&d, &generator, release);
        checked.push(release);
    }
    // The installed podman's own generator, on the units deploy writes.
    let installed = PathBuf::from("/usr/libexec/podman/quadlet");
    let version = host.podman_ok(["version", "--format", "{{.Client.Version}}"]);
    conforms(&d, &installed, version.trim());
    checked.push(version.trim());
    eprintln!(
        "the generators of podman {} convert the units",
        checked.join(", ")
    );
}

#[test]
fn render_changes_nothing_but_its_directory_and_says_so() {
    let host = require_host!();
    let d = TestDeployment::new(host, "rndo");
    let config = d.config();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("units");
    let first = render(&d, &config, &out, &["--podman", "5.4.2"]);
    assert!(
        first["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["written"] == "created"),
        "{first:#}"
    );
    let again = render(&d, &config, &out, &["--podman", "5.4.2"]);
    assert!(
        again["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["written"] == "unchanged"),
        "{again:#}"
    );
    // The same text as deploy would write for that release.
    let plan = d.run_ok(&["--json", "plan"]);
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    for unit in plan["plan"]["units"].as_array().unwrap() {
        let name = Path::new(unit["path"].as_str().unwrap())
            .file_name()
            .unwrap()
            .to_owned();
        assert!(out.join(&name).exists(), "{}", name.to_string_lossy());
    }
    // Nothing else changed: no unit written, no directory, no secret.
    assert!(d.leftovers().is_empty(), "{:?}", d.leftovers());
    // A release without Quadlet, or not a release, is bad input.
    for bad in ["4.3.1", "five"] {
        let run = d
            .command(
                &config,
                &["render", "--podman", bad, "--output", out.to_str().unwrap()],
            )
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(2), "{bad}: {}", text(&run));
    }
}

/// `systemctl --user start` of a unit written for podman 4.9.3, on this host's
/// podman: whether the container was healthy the moment the start returned.
fn healthy_when_started(d: &TestDeployment, config: &Path, keep_wait: bool) -> String {
    let units = d.host.quadlet_dir();
    render(d, config, &units, &["--podman", "4.9.3"]);
    let file = units.join(format!("{}.container", d.pg));
    let unit = std::fs::read_to_string(&file).unwrap();
    assert!(unit.contains("ExecStartPost="), "{unit}");
    if !keep_wait {
        let mut without = String::new();
        for line in unit.lines().filter(|l| !l.starts_with("ExecStartPost=")) {
            without.push_str(line);
            without.push('\n');
        }
        std::fs::write(&file, without).unwrap();
    }
    // An empty database directory (it keeps its NOCOW attribute): initialising
    // a database takes seconds.
    for entry in std::fs::read_dir(d.postgres_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }
    d.host.systemctl_ok(["daemon-reload"]);
    let service = format!("{}.service", d.pg);
    d.host.systemctl_ok(["start", &service]);
    let health = d
        .host
        .podman_ok(["inspect", "--format", "{{.State.Health.Status}}", &d.pg])
        .trim()
        .to_owned();
    d.host.systemctl_ok(["stop", &service]);
    health
}

#[test]
fn before_podman_5_a_service_is_started_only_once_its_container_is_healthy() {
    let host = require_host!();
    let d = TestDeployment::new(host, "r49");
    // The network, directories and secrets, as deploy makes them.
    d.json_ok("deploy");
    d.run_ok(&["destroy"]);
    let config = d.config();
    // Control: without the wait, systemd counts the service started while the
    // database still initialises.
    let health = healthy_when_started(&d, &config, false);
    assert_ne!(
        health, "healthy",
        "the control saw a healthy container at once"
    );
    // With it, not before the health check passes.
    let health = healthy_when_started(&d, &config, true);
    assert_eq!(health, "healthy");
    // deploy writes the units for the installed podman again, and they verify.
    let report = d.json_ok("deploy");
    assert_eq!(report["verify"]["ok"], true, "{report:#}");
}
