//! `[systemd] scope = "system"` end to end, under a real systemd system manager:
//! in a machine with systemd as PID 1 and podman inside
//! ([`SystemMachine`]), as root, with the units in /etc/containers/systemd
//! (`unit_dir` left at its default), a pool directory on the BTRFS pool and the
//! local images. Deploy, verify, a deploy that changes nothing, a killed
//! container that systemd restarts, a reboot, destroy that keeps the data and
//! the secrets, a deploy that finds them again, and destroy with purging. And a
//! host without a system manager, where the system scope is refused.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use immich_db_testhost::{
    Host, SystemMachine, require_host, require_system_machine, unique_name, wait_for,
};

/// Where the binary under test is bound in the machine.
const BINARY: &str = "/usr/local/bin/immich-db";
/// The configuration file, in the machine.
const CONFIG: &str = "/etc/immich-db-test/config.toml";
/// The system scope's default unit directory.
const UNIT_DIR: &str = "/etc/containers/systemd";

/// One deployment's names in a machine.
struct SystemDeployment<'m> {
    machine: &'m SystemMachine,
    name: String,
    pg: String,
    vk: String,
    pg_secret: String,
    vk_secret: String,
    jwt_secret: String,
    pool: PathBuf,
}

impl<'m> SystemDeployment<'m> {
    /// Fresh names, and the configuration written in the machine.
    fn new(host: &Host, machine: &'m SystemMachine, pool: &Path) -> Self {
        let name = unique_name("sys");
        let d = Self {
            machine,
            pg: format!("{name}-pg"),
            vk: format!("{name}-vk"),
            pg_secret: format!("{name}-pgpw"),
            vk_secret: format!("{name}-vkpw"),
            jwt_secret: format!("{name}-jwt"),
            pool: pool.to_path_buf(),
            name,
        };
        machine.write_file(CONFIG, &d.config_text(host));
        d
    }

    /// As the user-scope tests configure it, with the system scope and no
    /// `unit_dir`.
    fn config_text(&self, host: &Host) -> String {
        // The machine has networks of its own; a subnet free on the host is
        // free there too.
        let (subnet, gateway) = host.free_subnet();
        format!(
            "[network]\nname = {name:?}\nsubnet = {subnet:?}\ngateway = {gateway:?}\n\n\
             [storage]\npool = {pool:?}\npostgres_dir = \"db/postgres\"\n\
             valkey_dir = \"db/valkey\"\nlibrary_dir = \"library\"\nml_cache_dir = \"ml-cache\"\n\n\
             [postgres]\nimage = {pg_image:?}\ncontainer_name = {pg:?}\npassword_secret = {pg_secret:?}\n\n\
             [valkey]\nimage = {vk_image:?}\ncontainer_name = {vk:?}\npassword_secret = {vk_secret:?}\n\n\
             [immich]\njwt_secret = {jwt:?}\n\n\
             [systemd]\nscope = \"system\"\n",
            name = self.name,
            pool = self.pool.display().to_string(),
            pg_image = host.postgres_image,
            pg = self.pg,
            pg_secret = self.pg_secret,
            vk_image = host.valkey_image,
            vk = self.vk,
            vk_secret = self.vk_secret,
            jwt = self.jwt_secret,
        )
    }

    /// `immich-db --config CONFIG ARGS` in the machine, as root.
    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec![BINARY, "--config", CONFIG];
        all.extend(args);
        self.machine.exec(all)
    }

    /// Runs `--json ARGS`, asserts exit 0, returns what it said.
    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend(args);
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "immich-db {all:?} failed ({}):\n{}",
            out.status,
            text(&out)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{all:?}: not JSON ({e}):\n{}", text(&out)))
    }

    /// [`json`](Self::json), and asserts `"ok": true`.
    fn json_ok(&self, args: &[&str]) -> serde_json::Value {
        let report = self.json(args);
        assert_eq!(report["ok"], true, "{args:?}: {report:#}");
        report
    }

    fn services(&self) -> [String; 3] {
        [
            format!("{}-network.service", self.name),
            format!("{}.service", self.pg),
            format!("{}.service", self.vk),
        ]
    }

    fn unit_files(&self) -> [String; 3] {
        [
            format!("{UNIT_DIR}/{}.network", self.name),
            format!("{UNIT_DIR}/{}.container", self.pg),
            format!("{UNIT_DIR}/{}.container", self.vk),
        ]
    }

    fn secrets(&self) -> [&str; 3] {
        [&self.pg_secret, &self.vk_secret, &self.jwt_secret]
    }

    fn postgres_dir(&self) -> PathBuf {
        self.pool.join("db/postgres")
    }

    fn data_dirs(&self) -> [PathBuf; 4] {
        [
            self.postgres_dir(),
            self.pool.join("db/valkey"),
            self.pool.join("library"),
            self.pool.join("ml-cache"),
        ]
    }

    /// The unit files' modification times, as `stat` in the machine says.
    fn unit_mtimes(&self) -> String {
        let mut args = vec!["stat", "-c", "%n %y"];
        let files = self.unit_files();
        args.extend(files.iter().map(String::as_str));
        self.machine.exec_ok(args)
    }

    fn file_exists(&self, path: &str) -> bool {
        self.machine.exec(["test", "-e", path]).status.success()
    }

    /// A secret's stored value, as the machine's podman has it.
    fn secret_value(&self, name: &str) -> Option<String> {
        let out = self.machine.podman([
            "secret",
            "inspect",
            "--showsecret",
            "--format",
            "{{.SecretData}}",
            name,
        ]);
        out.status.success().then(|| {
            String::from_utf8_lossy(&out.stdout)
                .trim_end_matches('\n')
                .to_owned()
        })
    }

    /// Container ID and start time.
    fn container_identity(&self, container: &str) -> String {
        self.machine
            .podman_ok([
                "inspect",
                "--format",
                "{{.Id}} {{.State.StartedAt}}",
                container,
            ])
            .trim()
            .to_owned()
    }

    /// `psql` in the PostgreSQL container, over its local socket.
    fn psql(&self, sql: &str) -> Output {
        self.machine.podman([
            "exec",
            &self.pg,
            "psql",
            "-U",
            "immich",
            "-d",
            "immich",
            "-v",
            "ON_ERROR_STOP=1",
            "-Atc",
            sql,
        ])
    }

    /// `psql` over TCP with a password, which travels in environment variables
    /// only (host → machine → container), never in a command line.
    fn login(&self, password: &str) -> Output {
        self.machine.exec_with_env(
            &[("PGPASSWORD", password)],
            [
                "podman",
                "exec",
                "--env",
                "PGPASSWORD",
                &self.pg,
                "psql",
                "-h",
                "127.0.0.1",
                "-U",
                "immich",
                "-d",
                "immich",
                "-w",
                "-Atc",
                "SELECT current_user",
            ],
        )
    }

    /// Waits until every service is active and both containers healthy.
    fn wait_healthy(&self, timeout: Duration) {
        for (service, container) in [
            (format!("{}.service", self.pg), &self.pg),
            (format!("{}.service", self.vk), &self.vk),
        ] {
            let start = Instant::now();
            loop {
                let active = self.machine.unit_property(&service, "ActiveState");
                let out = self.machine.podman([
                    "inspect",
                    "--format",
                    "{{.State.Health.Status}}",
                    container,
                ]);
                if active == "active" && String::from_utf8_lossy(&out.stdout).trim() == "healthy" {
                    break;
                }
                assert!(
                    start.elapsed() < timeout,
                    "timed out after {timeout:?} waiting for {service} to be active and healthy:\n{}",
                    self.machine.diagnose(&service)
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Both output streams as text.
fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn deploy_verify_restart_reboot_destroy_and_redeploy_under_the_system_manager() {
    let host = require_host!();
    require_system_machine!(host);
    let test_started = Instant::now();
    // Declared before the machine: removed after it.
    let pool = host.btrfs_dir("sys");
    let machine = SystemMachine::builder(host, "sys")
        .bind(pool.path())
        .bind_ro(env!("CARGO_BIN_EXE_immich-db"), BINARY)
        .start();
    eprintln!(
        "machine {} running {:?} after podman run",
        machine.name(),
        machine.boot_time()
    );
    let d = SystemDeployment::new(host, &machine, pool.path());

    // Deploy from nothing.
    let report = d.json_ok(&["deploy"]);
    assert_eq!(report["changed"], true, "{report:#}");
    assert_eq!(report["verify"]["ok"], true, "{report:#}");

    // The units are in the system scope's directory, for multi-user.target, and
    // the system manager runs what podman's system generator made of them.
    for file in d.unit_files() {
        let content = d.machine.exec_ok(["cat", &file]);
        assert!(
            content.contains("[Install]\nWantedBy=multi-user.target\n"),
            "{file}:\n{content}"
        );
    }
    for (service, file) in d.services().iter().zip(d.unit_files()) {
        assert_eq!(d.machine.unit_property(service, "SourcePath"), file);
        let generated = d.machine.unit_property(service, "FragmentPath");
        assert_eq!(generated, format!("/run/systemd/generator/{service}"));
        assert_eq!(
            d.machine.unit_property(service, "WantedBy"),
            "multi-user.target",
            "{service}"
        );
        assert_eq!(d.machine.unit_property(service, "ActiveState"), "active");
        // systemd's own reading of the generated unit.
        let verify = d
            .machine
            .exec(["systemd-analyze", "verify", generated.as_str()]);
        assert!(verify.status.success(), "{service}: {}", text(&verify));
    }
    // Nothing went to a user's manager.
    assert!(!d.file_exists("/root/.config/containers/systemd"));
    assert!(d.file_exists(&format!("/run/lock/immich-db.{}.lock", d.name)));

    // verify, as JSON, exit 0.
    let verification = d.json_ok(&["verify"]);
    assert!(
        verification["checks"].as_array().unwrap().len() >= 12,
        "{verification:#}"
    );

    // The stored password logs in over TCP; another does not.
    let pg_password = d.secret_value(&d.pg_secret).unwrap();
    let out = d.login(&pg_password);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "immich");
    assert!(
        !d.login("NotThePassword0123456789abcdefXYZ")
            .status
            .success()
    );

    // A second deploy changes nothing and restarts nothing.
    let before = [d.container_identity(&d.pg), d.container_identity(&d.vk)];
    let units_before = d.unit_mtimes();
    let report = d.json_ok(&["deploy"]);
    assert_eq!(report["changed"], false, "{report:#}");
    assert_eq!(
        before,
        [d.container_identity(&d.pg), d.container_identity(&d.vk)]
    );
    assert_eq!(units_before, d.unit_mtimes());

    // A killed PostgreSQL comes back: systemd restarts the service.
    let killed = d.container_identity(&d.pg);
    machine.podman_ok(["kill", &d.pg]);
    wait_for("PostgreSQL to come back", Duration::from_secs(120), || {
        let out = machine.podman([
            "inspect",
            "--format",
            "{{.Id}} {{.State.Health.Status}}",
            &d.pg,
        ]);
        let now = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let id = now.split(' ').next().unwrap_or_default();
        (out.status.success()
            && !id.is_empty()
            && !killed.starts_with(id)
            && now.ends_with(" healthy"))
        .then_some(())
    });
    d.wait_healthy(Duration::from_secs(60));
    let restarts: u32 = machine
        .unit_property(&format!("{}.service", d.pg), "NRestarts")
        .parse()
        .unwrap();
    assert!(restarts >= 1, "NRestarts={restarts}");
    d.json_ok(&["verify"]);
    // status reads the same of the system manager.
    let status = d.json(&["status"]);
    let services = status["services"].as_array().unwrap();
    assert_eq!(services.len(), 2, "{status:#}");
    for s in services {
        assert!(
            s["unit_state"].as_str().unwrap().starts_with("active"),
            "{status:#}"
        );
        assert_eq!(s["health"], "healthy", "{status:#}");
        let want = if s["container"] == d.pg.as_str() {
            restarts
        } else {
            0
        };
        assert_eq!(s["restarts"], want, "{status:#}");
    }

    // After a reboot, the manager starts the services by itself (no deploy, no
    // start): multi-user.target wants them.
    let boot = machine.reboot();
    eprintln!("machine rebooted in {boot:?}");
    d.wait_healthy(Duration::from_secs(120));
    d.json_ok(&["verify"]);

    // Rows to find again.
    let out = d.psql(
        "CREATE TABLE photos (id int PRIMARY KEY, name text); \
         INSERT INTO photos VALUES (1, 'first'), (2, 'second')",
    );
    assert!(out.status.success(), "{}", text(&out));
    let secrets: Vec<String> = d
        .secrets()
        .iter()
        .map(|s| d.secret_value(s).unwrap())
        .collect();

    // destroy: units, containers and network go; data and secrets stay.
    let report = d.json_ok(&["destroy"]);
    let done = report["done"].to_string();
    assert!(
        done.contains(&format!("stopped {}.service", d.pg)),
        "{report:#}"
    );
    for file in d.unit_files() {
        assert!(!d.file_exists(&file), "{file} is left");
    }
    for service in d.services() {
        assert_eq!(machine.unit_property(&service, "LoadState"), "not-found");
    }
    for container in [&d.pg, &d.vk] {
        assert!(
            !machine
                .podman(["container", "exists", container])
                .status
                .success()
        );
    }
    let network = format!("systemd-{}", d.name);
    assert!(
        !machine
            .podman(["network", "exists", &network])
            .status
            .success()
    );
    assert!(d.postgres_dir().join("PG_VERSION").is_file());
    for (name, value) in d.secrets().iter().zip(&secrets) {
        assert!(
            d.secret_value(name).as_ref() == Some(value),
            "{name} changed"
        );
    }

    // A new deploy finds the data and the secrets.
    let report = d.json_ok(&["deploy"]);
    assert_eq!(report["changed"], true, "{report:#}");
    let out = d.psql("SELECT name FROM photos ORDER BY id");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "first\nsecond\n");
    for (name, value) in d.secrets().iter().zip(&secrets) {
        assert!(
            d.secret_value(name).as_ref() == Some(value),
            "{name} changed"
        );
    }
    // The database still knows the first password.
    assert!(d.login(&secrets[0]).status.success());

    // Purging: the data directories and the secrets go too.
    d.json_ok(&["destroy", "--purge-data", "--purge-secrets", "--yes"]);
    for dir in d.data_dirs() {
        assert!(!dir.exists(), "{} is left", dir.display());
    }
    for name in d.secrets() {
        assert!(d.secret_value(name).is_none(), "{name} is left");
    }
    for file in d.unit_files() {
        assert!(!d.file_exists(&file), "{file} is left");
    }
    let out = d.run(&["destroy"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Nothing to remove."), "{}", text(&out));

    eprintln!(
        "system scope end to end: {:?} (machine boot {:?}, reboot {boot:?})",
        test_started.elapsed(),
        machine.boot_time()
    );
}

#[test]
fn without_a_system_manager_the_system_scope_is_refused_and_nothing_changes() {
    let host = require_host!();
    require_system_machine!(host);
    let pool = host.btrfs_dir("nosys");
    // The same machine, with PID 1 not systemd. (Not the test host itself:
    // there, /run/systemd/private leads to root's user manager, which answers
    // `systemctl` without --user.)
    let machine = SystemMachine::builder(host, "nosys")
        .bind(pool.path())
        .bind_ro(env!("CARGO_BIN_EXE_immich-db"), BINARY)
        .without_systemd()
        .start();
    assert_ne!(machine.exec_ok(["cat", "/proc/1/comm"]).trim(), "systemd");
    let d = SystemDeployment::new(host, &machine, pool.path());

    for command in ["deploy", "plan"] {
        let out = d.run(&["--json", command]);
        assert_eq!(out.status.code(), Some(3), "{command}: {}", text(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["error"]["exit"], "precondition", "{report:#}");
        // The configuration is otherwise good (BTRFS pool, local images): the
        // manager is the one problem (several would be a `problems` list).
        let problem = &report["error"];
        assert!(problem.get("problems").is_none(), "{command}: {report:#}");
        assert_eq!(problem["where"], "systemd", "{problem:#}");
        let what = problem["what"].as_str().unwrap();
        assert!(what.contains("does not answer"), "{problem:#}");
        assert!(what.contains("offline"), "{problem:#}");
        assert!(
            problem["help"].as_str().unwrap().contains("PID 1"),
            "{problem:#}"
        );
    }
    // Nothing changed: no unit, directory, secret or network.
    let units = machine.exec_ok(["ls", "-A", UNIT_DIR]);
    assert!(!units.contains(&d.name), "{units}");
    assert_eq!(std::fs::read_dir(pool.path()).unwrap().count(), 0);
    for name in d.secrets() {
        assert!(d.secret_value(name).is_none(), "{name}");
    }
    let network = format!("systemd-{}", d.name);
    assert!(
        !machine
            .podman(["network", "exists", &network])
            .status
            .success()
    );
}
