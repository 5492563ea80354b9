//! Deploy from nothing on the real test host, check the result independently of
//! the tool, deploy again (nothing changes), then faults and data safety.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

mod common;

use std::io::BufRead as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{ArgumentLog, TestDeployment, lsattr_flags, text};
use immich_db_testhost::{Host, require_host, require_rootless_host, wait_for};

#[test]
fn deploy_from_nothing_verifies_and_a_second_deploy_changes_nothing() {
    from_nothing(require_host!());
}

#[test]
fn rootless_deploy_from_nothing_verifies_and_a_second_deploy_changes_nothing() {
    from_nothing(require_rootless_host!());
}

fn from_nothing(host: &'static Host) {
    let d = TestDeployment::new(host, "e2e");

    let report = d.json_ok("deploy");
    assert_eq!(report["changed"], true);
    assert_eq!(report["verify"]["ok"], true, "{report:#}");

    // verify, as JSON.
    let verification = d.json_ok("verify");
    let checks = verification["checks"].as_array().unwrap();
    assert!(checks.len() >= 12, "{verification:#}");
    for check in checks {
        for key in ["name", "ok", "severity", "detail"] {
            assert!(check.get(key).is_some(), "{check}");
        }
    }
    // The host is on the network of rootful podman's containers: the login and
    // the PINGs go straight to them. Run in the containers, they agree.
    let detail = |v: &serde_json::Value, name: &str| {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no check {name}: {v:#}"))["detail"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let login = detail(&verification, "postgres login");
    if host.is_rootless() {
        // The host is not on the network of rootless podman's containers.
        assert!(login.contains("over TCP in the container"), "{login}");
    } else {
        assert!(login.contains("over TCP from the host to "), "{login}");
    }
    let config = d.config();
    let out = d
        .command(&config, &["--json", "verify"])
        .env("IMMICH_DB_CHECK_IN_CONTAINER", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let in_container: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(in_container["ok"], true, "{in_container:#}");
    let login = detail(&in_container, "postgres login");
    assert!(login.contains("over TCP in the container"), "{login}");
    for name in [
        "valkey ping",
        "valkey password",
        "postgres vector extension",
    ] {
        assert_eq!(
            detail(&in_container, name),
            detail(&verification, name),
            "{name}"
        );
    }
    // A password the database does not know is a refused login, either way.
    let stored = d.secret_value(&d.pg_secret).unwrap();
    d.replace_secret(&d.pg_secret, "NotThePassword0123456789abcdefXYZ");
    for in_container in [false, true] {
        let mut verify = d.command(&config, &["--json", "verify"]);
        if in_container {
            verify.env("IMMICH_DB_CHECK_IN_CONTAINER", "1");
        }
        let out = verify.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let login = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "postgres login")
            .unwrap();
        assert_eq!(login["ok"], false, "{login}");
        assert!(
            login["detail"]
                .as_str()
                .unwrap()
                .contains("password authentication failed"),
            "{login}"
        );
    }
    d.replace_secret(&d.pg_secret, &stored);

    // Independent checks. The data directories are the deploying user's, also
    // where a container's server wrote them (rootless: the user itself runs it).
    if let Some(user) = &host.user {
        for dir in [d.postgres_dir(), d.valkey_dir(), d.library_dir()] {
            let meta = std::fs::metadata(&dir).unwrap();
            assert_eq!(
                (meta.uid(), meta.gid()),
                (user.uid, user.gid),
                "{}",
                dir.display()
            );
        }
        let top = host.podman_ok(["top", &d.pg, "huser"]);
        assert!(
            top.lines().skip(1).all(|l| l.trim() == user.name),
            "PostgreSQL runs as another host user:\n{top}"
        );
    }
    let out = d.run_ok(&["--json", "storage", "audit"]);
    let audit: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(audit["ok"], true, "{audit:#}");
    // NOCOW on the database directories, not the library.
    assert!(lsattr_flags(host, &d.postgres_dir()).contains('C'));
    assert!(lsattr_flags(host, &d.valkey_dir()).contains('C'));
    assert!(!lsattr_flags(host, &d.library_dir()).contains('C'));
    assert!(lsattr_flags(host, &d.postgres_dir().join("PG_VERSION")).contains('C'));

    // The network, with its subnet, gateway and both containers.
    let inspect = host.podman_ok(["network", "inspect", &d.podman_network()]);
    let network: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let subnets = &network[0]["subnets"];
    assert_eq!(subnets[0]["subnet"], d.subnet.as_str(), "{inspect}");
    assert_eq!(subnets[0]["gateway"], d.gateway.as_str(), "{inspect}");
    let members: Vec<&str> = network[0]["containers"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        members.contains(&d.pg.as_str()) && members.contains(&d.vk.as_str()),
        "{inspect}"
    );

    // The units.
    for unit in [format!("{}.service", d.pg), format!("{}.service", d.vk)] {
        assert_eq!(d.is_active(&unit), "active", "{unit}");
    }
    for file in d.unit_files() {
        let content = std::fs::read_to_string(&file).unwrap();
        assert!(
            content.contains("[Install]\nWantedBy=default.target"),
            "{content}"
        );
    }

    // PostgreSQL over TCP with the password from the secret, and not without it.
    let pg_password = d.secret_value(&d.pg_secret).unwrap();
    assert!(pg_password.len() >= 32);
    assert!(
        pg_password.bytes().all(|b| b.is_ascii_alphanumeric()),
        "alphanumeric"
    );
    let out = d.psql(&pg_password, "SELECT current_database()");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "immich");
    let out = d.psql("wrong-password", "SELECT 1");
    assert!(!out.status.success());

    // Valkey with and without the password.
    let vk_password = d.secret_value(&d.vk_secret).unwrap();
    assert_eq!(d.valkey_ping(Some(&vk_password)), "PONG");
    assert!(
        d.valkey_ping(None).contains("NOAUTH"),
        "{}",
        d.valkey_ping(None)
    );
    assert!(d.secret_value(&d.jwt_secret).is_some());

    // A second deploy changes nothing and restarts nothing.
    let before = [d.container_identity(&d.pg), d.container_identity(&d.vk)];
    let units_before: Vec<_> = d
        .unit_files()
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().modified().unwrap())
        .collect();
    let out = d.run_ok(&["deploy"]);
    assert!(text(&out).contains("No changes"), "{}", text(&out));
    let out = d.run_ok(&["--json", "deploy"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["changed"], false, "{report:#}");
    assert_eq!(
        before,
        [d.container_identity(&d.pg), d.container_identity(&d.vk)]
    );
    let units_after: Vec<_> = d
        .unit_files()
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().modified().unwrap())
        .collect();
    assert_eq!(units_before, units_after);
    let out = d.run_ok(&["plan"]);
    assert!(text(&out).contains("No changes"), "{}", text(&out));
    assert_eq!(d.secret_value(&d.pg_secret).unwrap(), pg_password);

    // status, as JSON.
    let out = d.run_ok(&["--json", "status"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let services = status["services"].as_array().unwrap();
    assert_eq!(services.len(), 2);
    for s in services {
        assert!(
            s["unit_state"].as_str().unwrap().starts_with("active"),
            "{status:#}"
        );
        assert_eq!(s["health"], "healthy", "{status:#}");
        assert_eq!(s["container_state"], "running", "{status:#}");
        let memory = s["memory_bytes"].as_u64().unwrap();
        assert!(memory > 0, "{status:#}");
        assert!(
            s["memory_peak_bytes"].as_u64().unwrap() >= memory,
            "{status:#}"
        );
        assert!(s["cpu_seconds"].as_f64().unwrap() > 0.0, "{status:#}");
        assert!(s["uptime_seconds"].as_u64().unwrap() < 600, "{status:#}");
        assert_eq!(s["restarts"], 0, "{status:#}");
    }
    assert!(
        status["directories"][0]["bytes"].as_u64().unwrap() > 1_000_000,
        "{status:#}"
    );
    assert!(status["pool"]["size"].as_u64().unwrap() > 0);
    let out = d.run_ok(&["status"]);
    assert!(text(&out).contains(&format!("{}.service", d.pg)));

    // A fault: the PostgreSQL container is killed; systemd starts it again.
    let killed = d.container_identity(&d.pg);
    host.podman_ok(["kill", &d.pg]);
    wait_for("PostgreSQL to come back", Duration::from_secs(120), || {
        let out = host.podman([
            "inspect",
            "--format",
            "{{.Id}} {{.State.StartedAt}} {{.State.Health.Status}}",
            &d.pg,
        ]);
        let now = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (out.status.success()
            && !killed.starts_with(now.split(' ').next().unwrap_or(""))
            && now.ends_with("healthy")
            && !now.ends_with("unhealthy"))
        .then_some(())
    });
    d.wait_active(Duration::from_secs(60));
    d.json_ok("verify");
    let restarts = host.systemctl_ok([
        "show",
        "-p",
        "NRestarts",
        "--value",
        &format!("{}.service", d.pg),
    ]);
    assert!(restarts.trim().parse::<u32>().unwrap() >= 1, "{restarts}");
    // status counts the restart.
    let out = d.run_ok(&["--json", "status"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pg = status["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["container"] == d.pg.as_str())
        .unwrap();
    assert!(pg["restarts"].as_u64().unwrap() >= 1, "{status:#}");
}

#[test]
fn data_and_secrets_survive_destroy_and_a_new_deploy() {
    data_survives(require_host!());
}

#[test]
fn rootless_data_and_secrets_survive_destroy_and_a_new_deploy() {
    data_survives(require_rootless_host!());
}

fn data_survives(host: &'static Host) {
    let d = TestDeployment::new(host, "keep");
    d.run_ok(&["deploy"]);
    let secrets: Vec<_> = d
        .secrets()
        .iter()
        .map(|s| d.secret_value(s).unwrap())
        .collect();
    let pg_password = &secrets[0];
    let out = d.psql(
        pg_password,
        "CREATE TABLE photos (id int PRIMARY KEY, name text); INSERT INTO photos VALUES (1, 'first'), (2, 'second')",
    );
    assert!(out.status.success(), "{}", text(&out));

    // destroy without purge: units, containers and network go; data and secrets stay.
    let out = d.run_ok(&["destroy"]);
    assert!(
        text(&out).contains("kept the data directories"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains(&format!("stopped {}.service", d.pg)),
        "{}",
        text(&out)
    );
    for file in d.unit_files() {
        assert!(!file.exists(), "{}", file.display());
    }
    assert!(!host.podman(["container", "exists", &d.pg]).status.success());
    assert!(
        !host
            .podman(["network", "exists", &d.podman_network()])
            .status
            .success()
    );
    assert!(d.postgres_dir().join("PG_VERSION").exists());
    for (name, value) in d.secrets().iter().zip(&secrets) {
        assert_eq!(d.secret_value(name).as_ref(), Some(value), "{name}");
    }

    // A new deploy finds the data.
    d.run_ok(&["deploy"]);
    let out = d.psql(pg_password, "SELECT name FROM photos ORDER BY id");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "first\nsecond\n");
    for (name, value) in d.secrets().iter().zip(&secrets) {
        assert_eq!(d.secret_value(name).as_ref(), Some(value), "{name}");
    }

    // Purging needs a confirmation; without a terminal, --yes.
    let out = d.run(&["destroy", "--purge-data"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(d.postgres_dir().join("PG_VERSION").exists());
    d.run_ok(&["destroy", "--purge-data", "--purge-secrets", "--yes"]);
    assert!(!d.postgres_dir().exists());
    for name in d.secrets() {
        assert!(d.secret_value(name).is_none(), "{name}");
    }
    let out = d.run_ok(&["destroy"]);
    assert!(text(&out).contains("Nothing to remove."), "{}", text(&out));
}

#[test]
fn no_secret_reaches_a_command_line_a_written_file_or_the_output() {
    let host = require_host!();
    let d = TestDeployment::new(host, "hyg");
    // An existing PostgreSQL password as the journal made it (base64): kept, and
    // reported with the fix.
    let old_password = "q2nO0Z6nHq8oVhC3F4mJ7bXyTzR1sWkPd9LuEaGiY+M=";
    d.create_secret(&d.pg_secret, old_password);
    // Every call deploy (and verify) makes to podman, systemctl and psql.
    let calls = ArgumentLog::new(host);
    // The check's positive control: a canary that a leaky program put in an
    // argument is found.
    let canary = format!("canary{}", d.name.replace('-', ""));
    let planted = host
        .command("podman")
        .env("PATH", calls.path())
        .args(["secret", "exists", &canary])
        .output()
        .unwrap();
    assert_eq!(planted.status.code(), Some(1), "{}", text(&planted));
    assert_eq!(calls.found(std::slice::from_ref(&canary)), [0]);
    let config = d.config();
    let deploy = common::succeeded(
        d.command(&config, &["deploy"])
            .env("PATH", calls.path())
            .output()
            .unwrap(),
        &["deploy"],
    );
    // While verify runs its commands in the containers, podman keeps each
    // command's process description, environment included, in a file of the
    // container's directory (`<session>/exec-process-*`).
    let values: Vec<String> = d
        .secrets()
        .iter()
        .map(|s| d.secret_value(s).unwrap())
        .collect();
    let container_dirs: Vec<PathBuf> = [&d.pg, &d.vk]
        .iter()
        .map(|c| {
            PathBuf::from(
                host.podman_ok(["inspect", "--format", "{{.StaticDir}}", c])
                    .trim(),
            )
        })
        .collect();
    let scan_stop = Arc::new(AtomicBool::new(false));
    let scanner = {
        let stop = scan_stop.clone();
        let values = values.clone();
        std::thread::spawn(move || scan_while(&stop, &container_dirs, &values))
    };
    // In the containers: the way that runs commands there with the secrets.
    let deploy_json = common::succeeded(
        d.command(&config, &["--json", "verify"])
            .env("IMMICH_DB_CHECK_IN_CONTAINER", "1")
            .env("PATH", calls.path())
            .output()
            .unwrap(),
        &["--json", "verify"],
    );
    scan_stop.store(true, Ordering::Relaxed);
    let scan = scanner.join().unwrap();
    // The tool's own calls went through the scripts: podman's version, and
    // systemd asked of the deployment's units.
    let logged = calls.calls();
    assert!(logged.contains("podman --version"), "{logged}");
    assert!(
        logged.contains("systemctl --user show") && logged.contains(&d.pg),
        "{logged}"
    );
    assert_eq!(calls.found(std::slice::from_ref(&canary)), [0]);
    assert!(
        scan.exec_files_seen > 0,
        "the scan saw no command's process file: it proves nothing"
    );
    assert!(
        scan.found.is_empty(),
        "a secret is in the containers' files: {:?}",
        scan.found
    );
    assert_eq!(
        values[0], old_password,
        "an existing secret is never regenerated"
    );
    assert!(
        text(&deploy).contains(&format!("immich-db secrets rotate {}", d.pg_secret)),
        "{}",
        text(&deploy)
    );
    let verification: serde_json::Value = serde_json::from_slice(&deploy_json.stdout).unwrap();
    assert_eq!(verification["ok"], true, "{verification:#}");
    let warning = verification["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == format!("secret {}", d.pg_secret).as_str())
        .unwrap();
    assert_eq!(warning["severity"], "warning", "{warning}");
    assert_eq!(warning["ok"], false, "{warning}");
    let mut written = Vec::new();
    for file in d.unit_files() {
        written.push((file.display().to_string(), std::fs::read(&file).unwrap()));
    }
    let lock = host.runtime_dir.join(format!("immich-db.{}.lock", d.name));
    written.push((lock.display().to_string(), std::fs::read(&lock).unwrap()));
    written.push(("deploy output".into(), text(&deploy).into_bytes()));
    written.push(("verify output".into(), text(&deploy_json).into_bytes()));
    // What the services logged: the containers' logs, and what systemd shows of
    // the services (their journal, where the host keeps one).
    for container in [&d.pg, &d.vk] {
        let logs = host.podman(["logs", container.as_str()]);
        assert!(logs.status.success(), "{}", text(&logs));
        assert!(!logs.stdout.is_empty() || !logs.stderr.is_empty());
        written.push((format!("the logs of {container}"), text(&logs).into_bytes()));
        let service = format!("{container}.service");
        let status = host.systemctl(["status", "--lines=200", "--no-pager", &service]);
        written.push((
            format!("systemctl status {service}"),
            text(&status).into_bytes(),
        ));
        let journal = host
            .command("journalctl")
            .args(["--user", "--no-pager", "-u", &service])
            .output()
            .unwrap();
        written.push((
            format!("the journal of {service}"),
            text(&journal).into_bytes(),
        ));
    }
    assert!(
        calls.found(&values).is_empty(),
        "a secret appeared in the arguments of a call: #{:?}",
        calls.found(&values)
    );
    for value in &values {
        assert!(value.len() >= 32);
        let needle = value.as_bytes();
        for (what, bytes) in &written {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "a secret appeared in {what}"
            );
        }
    }
}

#[test]
fn a_changed_setting_restarts_only_its_service_and_a_new_subnet_recreates_the_network() {
    let host = require_host!();
    let d = TestDeployment::new(host, "chg");
    d.run_ok(&["deploy"]);
    let pg_before = d.container_identity(&d.pg);
    let vk_before = d.container_identity(&d.vk);

    // A PostgreSQL setting: only PostgreSQL restarts.
    let config = d.write_config(
        "config.toml",
        &d.config_text(&[], &[("postgres", "shm_size = \"256m\"")]),
    );
    let out = d.command(&config, &["plan"]).output().unwrap();
    assert!(text(&out).contains("+ShmSize=256m"), "{}", text(&out));
    let out = d.command(&config, &["deploy"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("restarted {}.service", d.pg)),
        "{}",
        text(&out)
    );
    assert_ne!(pg_before, d.container_identity(&d.pg));
    assert_eq!(vk_before, d.container_identity(&d.vk));
    let shm = host.podman_ok(["inspect", "--format", "{{.HostConfig.ShmSize}}", &d.pg]);
    assert_eq!(shm.trim(), (256 * 1024 * 1024).to_string());

    // A new subnet: the network is recreated and both containers join it.
    let (subnet, gateway) = host.free_subnet();
    let config = d.write_config(
        "config.toml",
        &d.config_text(
            &[
                ("network", "subnet", Some(&format!("{subnet:?}"))),
                ("network", "gateway", Some(&format!("{gateway:?}"))),
            ],
            &[("postgres", "shm_size = \"256m\"")],
        ),
    );
    let out = d.command(&config, &["--json", "deploy"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verify"]["ok"], true, "{report:#}");
    let inspect = host.podman_ok(["network", "inspect", &d.podman_network()]);
    let network: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(
        network[0]["subnets"][0]["subnet"],
        subnet.as_str(),
        "{inspect}"
    );
    assert_eq!(
        network[0]["containers"].as_object().unwrap().len(),
        2,
        "{inspect}"
    );
    assert_ne!(vk_before, d.container_identity(&d.vk));
    let out = d.command(&config, &["deploy"]).output().unwrap();
    assert!(text(&out).contains("No changes"), "{}", text(&out));
}

/// `valkey-cli ARGS` from the host to the deployment's Valkey, with the
/// password in the client's environment.
fn valkey_cli(d: &TestDeployment, password: &str, args: &[&str]) -> String {
    let ip = d.container_ip(&d.vk);
    let out = d
        .host
        .command("valkey-cli")
        .args(["-h", &ip])
        .args(args)
        .env("REDISCLI_AUTH", password)
        .output()
        .unwrap();
    text(&out).trim().to_owned()
}

#[test]
fn valkey_stops_at_once_saves_its_data_and_keeps_it_over_a_restart() {
    let host = require_host!();
    let d = TestDeployment::new(host, "vkstop");
    d.run_ok(&["deploy"]);
    let service = format!("{}.service", d.vk);

    // valkey-server itself is PID 1 of the container, so SIGTERM reaches it.
    let top = host.podman_ok(["top", &d.vk, "pid", "args"]);
    let pid1 = top
        .lines()
        .find(|l| l.split_whitespace().next() == Some("1"))
        .unwrap_or_default();
    assert!(pid1.contains("valkey-server"), "{top}");
    let password = d.secret_value(&d.vk_secret).unwrap();
    assert!(!top.contains(&password));

    assert_eq!(valkey_cli(&d, &password, &["set", "album:1", "kept"]), "OK");

    // Valkey's output from now until it ends (the container is removed when
    // it stops). A SAVE shows that the output is followed.
    let mut attach = host
        .command("podman")
        .args(["attach", "--no-stdin", "--sig-proxy=false", &d.vk])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = attach.stdout.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines_tx.send(line);
        }
    });
    let mut log: Vec<String> = Vec::new();
    let following = Instant::now();
    'follow: loop {
        assert!(following.elapsed() < Duration::from_secs(30), "{log:#?}");
        assert_eq!(valkey_cli(&d, &password, &["save"]), "OK");
        let asked = Instant::now();
        while asked.elapsed() < Duration::from_millis(500) {
            if let Ok(line) = lines.recv_timeout(Duration::from_millis(50)) {
                let saved = line.contains("DB saved on disk");
                log.push(line);
                if saved {
                    break 'follow;
                }
            }
        }
    }

    let dump = d.valkey_dir().join("dump.rdb");
    let saved_before = std::fs::metadata(&dump).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    host.systemctl_ok(["stop", &service]);
    let ended = Instant::now();
    while attach.try_wait().unwrap().is_none() && ended.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = attach.kill();
    let _ = attach.wait();
    reader.join().unwrap();
    log.extend(lines.try_iter());
    let log = log.join("\n");
    // Valkey itself got SIGTERM and shut down on its own: it logged the signal,
    // its final save and its exit, which a SIGKILL after the stop timeout
    // would have cut short. (How long that took depends on what else the host
    // does; what happened does not.)
    let Some((_, shutdown)) = log.split_once("Received SIGTERM") else {
        panic!("Valkey got no SIGTERM:\n{log}");
    };
    assert!(shutdown.contains("DB saved on disk"), "{log}");
    assert!(shutdown.contains("ready to exit"), "{log}");
    assert!(
        std::fs::metadata(&dump).unwrap().modified().unwrap() > saved_before,
        "the final save did not reach {}",
        dump.display()
    );

    // Started again, it has the data written before.
    host.systemctl_ok(["start", &service]);
    d.wait_active(Duration::from_secs(60));
    assert_eq!(valkey_cli(&d, &password, &["get", "album:1"]), "kept");
    d.json_ok("verify");
}

/// What a scan of the containers' directories found.
#[derive(Debug, Default)]
struct Scan {
    /// `exec-process-*` files read (a command was running in a container).
    exec_files_seen: usize,
    /// Files that held a secret value.
    found: std::collections::BTreeSet<PathBuf>,
}

/// Reads every file below `dirs` again and again until `stop`, looking for
/// `values`. The copy podman keeps of a secret mounted into the container
/// (`secrets/`) holds it by design and is skipped.
fn scan_while(stop: &AtomicBool, dirs: &[PathBuf], values: &[String]) -> Scan {
    fn walk(dir: &Path, scan: &mut Scan, values: &[String]) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if entry.file_name() != "secrets" {
                    walk(&path, scan, values);
                }
            } else if kind.is_file()
                && let Ok(bytes) = std::fs::read(&path)
            {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with("exec-process-")
                {
                    scan.exec_files_seen += 1;
                }
                for value in values {
                    let needle = value.as_bytes();
                    if bytes.windows(needle.len()).any(|w| w == needle) {
                        scan.found.insert(path.clone());
                    }
                }
            }
        }
    }
    let mut scan = Scan::default();
    while !stop.load(Ordering::Relaxed) {
        for dir in dirs {
            walk(dir, &mut scan, values);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    scan
}

#[test]
fn purge_carries_on_past_a_failure_and_a_rerun_finishes() {
    purge_carries_on(require_host!());
}

#[test]
fn rootless_purge_carries_on_past_a_failure_and_a_rerun_finishes() {
    purge_carries_on(require_rootless_host!());
}

fn purge_carries_on(host: &'static Host) {
    let d = TestDeployment::new(host, "purge");
    d.run_ok(&["deploy"]);
    // A file nobody may delete (immutable) in the ML cache: its directory stays.
    let ml_cache = d.pool.path().join("ml-cache");
    let stuck = ml_cache.join("model.bin");
    std::fs::write(&stuck, b"weights").unwrap();
    let chattr = |flag: &str| {
        let out = std::process::Command::new("chattr")
            .arg(flag)
            .arg(&stuck)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    };
    chattr("+i");
    // Rootless: what a container wrote as a subordinate UID of the user (as
    // Valkey did under an earlier immich-db) is removed in its namespace.
    if host.is_rootless() {
        host.podman_ok([
            "unshare",
            "chown",
            "-R",
            "1:1",
            d.valkey_dir().to_str().unwrap(),
        ]);
    }
    let out = d.run(&[
        "--json",
        "destroy",
        "--purge-data",
        "--purge-secrets",
        "--yes",
    ]);
    chattr("-i");
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let what = report["error"]["what"].as_str().unwrap();
    assert!(
        what.contains(&format!("delete {}", ml_cache.display())),
        "{report:#}"
    );
    assert!(
        report["error"]["help"]
            .as_str()
            .unwrap()
            .contains("run the same destroy again"),
        "{report:#}"
    );
    // Everything after the failure was done too.
    let done: Vec<&str> = report["error"]["done"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for secret in d.secrets() {
        assert!(
            done.contains(&format!("deleted the secret {secret}").as_str()),
            "{done:?}"
        );
        assert!(d.secret_value(secret).is_none(), "{secret}");
    }
    assert!(!d.postgres_dir().exists());
    assert!(!d.valkey_dir().exists(), "{done:?}");
    assert!(ml_cache.exists());
    // Once the cause is gone, the same command finishes.
    let out = d.run_ok(&[
        "--json",
        "destroy",
        "--purge-data",
        "--purge-secrets",
        "--yes",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    assert!(!ml_cache.exists());
    assert!(
        // The test's own directory and the backups, which purging data keeps.
        d.leftovers()
            .iter()
            .all(|l| l.ends_with("/db") || l.ends_with("/backups")),
        "{:?}",
        d.leftovers()
    );
}

#[test]
fn rootless_data_an_earlier_deploy_left_to_a_subordinate_uid_is_named_with_its_fix() {
    let host = require_rootless_host!();
    let d = TestDeployment::new(host, "adopt");
    d.run_ok(&["deploy"]);
    let pg_password = d.secret_value(&d.pg_secret).unwrap();
    let out = d.psql(
        &pg_password,
        "CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)",
    );
    assert!(out.status.success(), "{}", text(&out));
    d.run_ok(&["destroy"]);
    // As PostgreSQL's entrypoint left it under rootless podman without keep-id:
    // the data directory mode 0700, owned by a subordinate UID of the user.
    let dir = d.postgres_dir();
    host.podman_ok(["unshare", "chown", "-R", "100:102", dir.to_str().unwrap()]);
    let out = d.run(&["--json", "plan"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let help = report["error"]["help"].as_str().unwrap();
    let fix = format!("podman unshare chown -R 0:0 {}", dir.display());
    assert!(help.contains(&fix), "{report:#}");
    // The fix it names works, and the data is there.
    host.podman_ok(["unshare", "chown", "-R", "0:0", dir.to_str().unwrap()]);
    d.json_ok("deploy");
    let out = d.psql(&pg_password, "SELECT x FROM kept");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "7",
        "{}",
        text(&out)
    );
}
