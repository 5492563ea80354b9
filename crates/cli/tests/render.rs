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

/// `server units --output DIR` with the configuration: the server's and
/// machine learning's units.
fn render_server(
    d: &TestDeployment,
    config: &Path,
    out: &Path,
    args: &[&str],
) -> serde_json::Value {
    let mut all = vec!["--json", "server", "units", "--output"];
    all.push(out.to_str().unwrap());
    all.extend_from_slice(args);
    let run = d.command(config, &all).output().unwrap();
    assert!(
        run.status.success(),
        "server units {args:?}: {}",
        text(&run)
    );
    serde_json::from_slice(&run.stdout).unwrap()
}

/// Every extra setting of the containers, in a configuration's sections.
fn extras(d: &TestDeployment) -> Vec<(&'static str, String)> {
    vec![
        ("postgres", "storage_type = \"HDD\"".to_owned()),
        ("postgres", "publish = \"127.0.0.1:15432\"".to_owned()),
        ("postgres", format!("ip = \"{}\"", d.address(10))),
        ("postgres", "podman_args = [\"--cpus=1\"]".to_owned()),
        ("postgres", "environment = { TZ = \"UTC\" }".to_owned()),
        ("valkey", "auto_update = true".to_owned()),
        ("valkey", "publish = \"127.0.0.1:16379\"".to_owned()),
        ("valkey", format!("ip = \"{}\"", d.address(11))),
        ("server", "environment = { TZ = \"UTC\" }".to_owned()),
        ("server", "ml_podman_args = [\"--memory=4g\"]".to_owned()),
    ]
}

/// Checks what `generator` (of `release`) makes of the units rendered for it:
/// the layer's, with and without every extra setting, and the server's.
fn conforms(d: &TestDeployment, generator: &Path, release: &str) {
    let old = release.starts_with('4');
    for (variant, args, scope) in [
        ("rootful", ["--rootful"], "user"),
        ("rootless", ["--rootless"], "user"),
        ("system", ["--rootful"], "system"),
        ("extras", ["--rootful"], "user"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        d.host.give(dir.path());
        let scope_line = format!("scope = {scope:?}");
        let mut extra: Vec<(&str, String)> = vec![("systemd", scope_line)];
        let mut replace = vec![("systemd", "unit_dir", None)];
        // AutoUpdate=registry needs an image a registry serves; render pulls
        // nothing.
        let registry_image = "\"docker.io/valkey/valkey:8\"";
        if variant == "extras" {
            extra.extend(extras(d));
            replace.push(("valkey", "image", Some(registry_image)));
        }
        let extra: Vec<(&str, &str)> = extra.iter().map(|(s, l)| (*s, l.as_str())).collect();
        let config = d.write_config(&format!("{variant}.toml"), &d.config_text(&replace, &extra));
        let mut render_args = vec!["--podman", release];
        render_args.extend(args);
        let report = render(d, &config, dir.path(), &render_args);
        assert_eq!(report["podman"], release, "{report:#}");
        assert_eq!(report["files"].as_array().unwrap().len(), 3, "{report:#}");
        let server = render_server(d, &config, dir.path(), &render_args);
        assert_eq!(server["files"].as_array().unwrap().len(), 2, "{server:#}");
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
        server_conforms(d, &generated, &what, variant);
        if variant == "extras" {
            extras_conform(d, &generated, &what);
        }
    }
}

/// Whether a command line has `OPTION VALUE` or `OPTION=VALUE` (generators
/// write either).
fn option(exec: &str, option: &str, value: &str) -> bool {
    exec.contains(&format!("{option} {value}")) || exec.contains(&format!("{option}={value}"))
}

/// The first `ExecStart=` of a generated service.
fn exec_start<'a>(generated: &'a str, name: &str, what: &str) -> &'a str {
    let unit = service(generated, name);
    unit.lines()
        .find(|l| l.starts_with("ExecStart="))
        .unwrap_or_else(|| panic!("{what}: no ExecStart= in {unit}"))
}

/// The server and machine learning as the generator makes them: on the
/// layer's network (which has a route out), after the databases, with the
/// passwords mounted from the layer's secrets and only their paths in the
/// environment.
fn server_conforms(d: &TestDeployment, generated: &str, what: &str, variant: &str) {
    let network = format!("systemd-{}", d.name);
    let srv_service = format!("{}-srv.service", d.name);
    let srv = exec_start(generated, &srv_service, what);
    let ml = exec_start(generated, &format!("{}-ml.service", d.name), what);
    for exec in [srv, ml] {
        assert!(option(exec, "--network", &network), "{what}: {exec}");
        assert!(!exec.contains("--userns"), "{what}: {exec}");
    }
    assert!(
        srv.contains(&format!(
            "--secret {},type=mount,target=immich-db-password",
            d.pg_secret
        )),
        "{what}: {srv}"
    );
    assert!(
        srv.contains(&format!(
            "--secret {},type=mount,target=immich-redis-password",
            d.vk_secret
        )),
        "{what}: {srv}"
    );
    for env in [
        "DB_PASSWORD_FILE=/run/secrets/immich-db-password".to_owned(),
        "REDIS_PASSWORD_FILE=/run/secrets/immich-redis-password".to_owned(),
        format!("DB_HOSTNAME={}", d.pg),
        format!("REDIS_HOSTNAME={}", d.vk),
        format!("IMMICH_MACHINE_LEARNING_URL=http://{}-ml:3003", d.name),
    ] {
        assert!(srv.contains(&env), "{what}: {env} in {srv}");
    }
    assert!(!srv.contains("DB_PASSWORD="), "{what}: {srv}");
    assert!(
        srv.contains(&format!("{}:/data", d.library_dir().display())),
        "{what}: {srv}"
    );
    assert!(
        ml.contains(&format!(
            "{}:/cache",
            d.pool.path().join("ml-cache").display()
        )),
        "{what}: {ml}"
    );
    assert!(srv.contains("127.0.0.1:2283:2283"), "{what}: {srv}");
    let unit = service(generated, &srv_service);
    assert!(
        unit.contains(&format!("Requires={}.service {}.service", d.pg, d.vk)),
        "{what}: {unit}"
    );
    // The network has a route out: the machine learning downloads its models.
    let net = exec_start(generated, &format!("{}-network.service", d.name), what);
    assert!(!net.contains("--internal"), "{what}: {net}");
    if variant == "extras" {
        assert!(srv.contains("TZ=UTC"), "{what}: {srv}");
        assert!(ml.contains("--memory=4g"), "{what}: {ml}");
    }
}

/// Every extra setting reaches `podman run`.
fn extras_conform(d: &TestDeployment, generated: &str, what: &str) {
    let pg = exec_start(generated, &format!("{}.service", d.pg), what);
    let vk = exec_start(generated, &format!("{}.service", d.vk), what);
    for part in [
        "DB_STORAGE_TYPE=HDD".to_owned(),
        "TZ=UTC".to_owned(),
        "--cpus=1".to_owned(),
        "127.0.0.1:15432:5432".to_owned(),
    ] {
        assert!(pg.contains(&part), "{what}: {part} in {pg}");
    }
    assert!(option(pg, "--ip", &d.address(10)), "{what}: {pg}");
    assert!(option(vk, "--ip", &d.address(11)), "{what}: {vk}");
    for part in [
        "io.containers.autoupdate=registry".to_owned(),
        "127.0.0.1:16379:6379".to_owned(),
    ] {
        assert!(vk.contains(&part), "{what}: {part} in {vk}");
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
