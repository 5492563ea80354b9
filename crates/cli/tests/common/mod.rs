//! A test deployment on the real test host: unique names, its own subnet, a pool
//! directory on the BTRFS scratch pool, the local images, units in the transient
//! Quadlet directory, and a cleanup that removes everything it may create.

#![allow(dead_code)] // each test file uses a different part
#![allow(unreachable_pub, clippy::unwrap_used, clippy::format_push_string)] // test support

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use immich_db_testhost::{Cleanup, Host, unique_name};

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_immich-db")
}

/// One deployment's names, directories and configuration file.
pub struct TestDeployment {
    // Dropped first: containers and units go before their directories.
    pub cleanup: Cleanup,
    pub host: &'static Host,
    pub name: String,
    pub subnet: String,
    pub gateway: String,
    pub pg: String,
    pub vk: String,
    pub pg_secret: String,
    pub vk_secret: String,
    pub jwt_secret: String,
    pub pool: tempfile::TempDir,
    pub config_dir: tempfile::TempDir,
    /// Where the services' output goes, once [`TestDeployment::keep_logs`]
    /// asked for it.
    pub logs: Option<tempfile::TempDir>,
}

impl TestDeployment {
    /// A deployment with fresh names; nothing is created on the host yet except
    /// the (empty) pool directory.
    pub fn new(host: &'static Host, prefix: &str) -> Self {
        let name = unique_name(prefix);
        let (subnet, gateway) = host.free_subnet();
        let pool = host.btrfs_dir(prefix);
        let config_dir = tempfile::tempdir().unwrap();
        host.give(config_dir.path());
        let mut cleanup = Cleanup::new(host);
        let pg = format!("{name}-pg");
        let vk = format!("{name}-vk");
        let pg_secret = format!("{name}-pgpw");
        let vk_secret = format!("{name}-vkpw");
        let jwt_secret = format!("{name}-jwt");
        let units = host.quadlet_dir();
        cleanup
            .secret(&pg_secret)
            .secret(&vk_secret)
            .secret(&jwt_secret)
            .network(&format!("systemd-{name}"))
            .file(units.join(format!("{name}.network")))
            .file(units.join(format!("{pg}.container")))
            .file(units.join(format!("{vk}.container")))
            .unit(&format!("{name}-network.service"))
            .container(&pg)
            .container(&vk)
            .unit(&format!("{pg}.service"))
            .unit(&format!("{vk}.service"))
            .file(units.join(format!("{name}-srv.container")))
            .file(units.join(format!("{name}-ml.container")))
            .file(host.runtime_dir.join(format!("immich-db.{name}.lock")));
        Self {
            cleanup,
            host,
            name,
            subnet,
            gateway,
            pg,
            vk,
            pg_secret,
            vk_secret,
            jwt_secret,
            pool,
            config_dir,
            logs: None,
        }
    }

    /// The services' own output (the servers', and podman's while it starts
    /// and stops their containers) appended to files from now on, by drop-ins
    /// in the manager's runtime unit directory: the test host keeps no
    /// journal. [`TestDeployment::service_state`] shows their last lines.
    pub fn keep_logs(&mut self) {
        let logs = tempfile::tempdir().unwrap();
        self.host.give(logs.path());
        for service in self.services() {
            let dir = self.dropin_dir(&service);
            let log = logs.path().join(format!("{service}.log"));
            let dropin = dir.join("immich-db-test-log.conf");
            std::fs::write(
                &dropin,
                format!(
                    "[Service]\nStandardOutput=append:{0}\nStandardError=append:{0}\n",
                    log.display()
                ),
            )
            .unwrap();
            self.host.give(&dir);
            self.cleanup.dir(&dir).file(&dropin);
        }
        self.host.systemctl_ok(["daemon-reload"]);
        self.logs = Some(logs);
    }

    /// The directory of drop-ins for `service` in the manager's runtime unit
    /// directory, created (each missing level the host's user's, so that the
    /// tool, run as that user, may write units beside it).
    pub fn dropin_dir(&self, service: &str) -> PathBuf {
        let dir = self
            .host
            .runtime_dir
            .join(format!("systemd/user/{service}.d"));
        let first_missing = dir
            .ancestors()
            .take_while(|p| !p.exists())
            .last()
            .map(Path::to_path_buf);
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(first) = first_missing {
            self.host.give(&first);
        }
        dir
    }

    /// The network's service and the two containers' services.
    pub fn services(&self) -> [String; 3] {
        [
            format!("{}-network.service", self.name),
            format!("{}.service", self.pg),
            format!("{}.service", self.vk),
        ]
    }

    /// The last lines of each service's output, where [`Self::keep_logs`]
    /// keeps it, and the managers' own lines about them in the kernel's log.
    pub fn logs_tail(&self) -> String {
        let mut out = String::new();
        if let Some(logs) = &self.logs {
            for service in self.services() {
                let text = std::fs::read_to_string(logs.path().join(format!("{service}.log")))
                    .unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                out.push_str(&format!("--- output of {service} (last 40 lines):\n"));
                for line in &lines[lines.len().saturating_sub(40)..] {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        let dmesg = Command::new("dmesg")
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default();
        let dmesg = String::from_utf8_lossy(&dmesg);
        let about: Vec<&str> = dmesg
            .lines()
            .filter(|l| l.contains(&self.name) || l.contains("Job ") || l.contains("timed out"))
            .collect();
        out.push_str("--- the managers' lines about it in the kernel's log (last 40):\n");
        for line in &about[about.len().saturating_sub(40)..] {
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// The configuration as (section, key, TOML value) entries.
    pub fn entries(&self) -> Vec<(&'static str, &'static str, String)> {
        let q = |s: &str| format!("{s:?}");
        vec![
            ("network", "name", q(&self.name)),
            ("network", "subnet", q(&self.subnet)),
            ("network", "gateway", q(&self.gateway)),
            (
                "storage",
                "pool",
                q(&self.pool.path().display().to_string()),
            ),
            ("storage", "postgres_dir", q("db/postgres")),
            ("storage", "valkey_dir", q("db/valkey")),
            ("storage", "library_dir", q("library")),
            ("storage", "ml_cache_dir", q("ml-cache")),
            ("postgres", "image", q(&self.host.postgres_image)),
            ("postgres", "container_name", q(&self.pg)),
            ("postgres", "password_secret", q(&self.pg_secret)),
            ("valkey", "image", q(&self.host.valkey_image)),
            ("valkey", "container_name", q(&self.vk)),
            ("valkey", "password_secret", q(&self.vk_secret)),
            ("immich", "jwt_secret", q(&self.jwt_secret)),
            ("server", "container_name", q(&format!("{}-srv", self.name))),
            (
                "server",
                "ml_container_name",
                q(&format!("{}-ml", self.name)),
            ),
            (
                "systemd",
                "unit_dir",
                q(&self.host.quadlet_dir().display().to_string()),
            ),
        ]
    }

    /// The configuration text with some entries replaced (`Some`) or removed
    /// (`None`), and raw lines appended to sections.
    pub fn config_text(
        &self,
        replace: &[(&str, &str, Option<&str>)],
        extra: &[(&str, &str)],
    ) -> String {
        let mut text = String::new();
        for section in [
            "network", "storage", "postgres", "valkey", "immich", "systemd", "server",
        ] {
            text.push_str(&format!("[{section}]\n"));
            for (s, key, value) in self.entries() {
                if s != section {
                    continue;
                }
                match replace.iter().find(|(rs, rk, _)| *rs == s && *rk == key) {
                    Some((_, _, Some(v))) => text.push_str(&format!("{key} = {v}\n")),
                    Some((_, _, None)) => {}
                    None => text.push_str(&format!("{key} = {value}\n")),
                }
            }
            for (s, line) in extra {
                if *s == section {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
        text
    }

    /// Writes a configuration file and returns its path.
    pub fn write_config(&self, file: &str, text: &str) -> PathBuf {
        let path = self.config_dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        self.host.give(&path);
        path
    }

    /// The valid configuration file.
    pub fn config(&self) -> PathBuf {
        self.write_config("config.toml", &self.config_text(&[], &[]))
    }

    pub fn postgres_dir(&self) -> PathBuf {
        self.pool.path().join("db/postgres")
    }
    pub fn valkey_dir(&self) -> PathBuf {
        self.pool.path().join("db/valkey")
    }
    pub fn library_dir(&self) -> PathBuf {
        self.pool.path().join("library")
    }
    pub fn unit_files(&self) -> Vec<PathBuf> {
        let units = self.host.quadlet_dir();
        vec![
            units.join(format!("{}.network", self.name)),
            units.join(format!("{}.container", self.pg)),
            units.join(format!("{}.container", self.vk)),
        ]
    }
    pub fn secrets(&self) -> [&str; 3] {
        [&self.pg_secret, &self.vk_secret, &self.jwt_secret]
    }
    pub fn podman_network(&self) -> String {
        format!("systemd-{}", self.name)
    }
    /// The address `.n` of the deployment's subnet.
    pub fn address(&self, n: u8) -> String {
        let prefix = self.gateway.rsplit_once('.').unwrap().0;
        format!("{prefix}.{n}")
    }
    /// The server's and machine learning's unit files (`server units`).
    pub fn server_unit_files(&self) -> Vec<PathBuf> {
        let units = self.host.quadlet_dir();
        vec![
            units.join(format!("{}-srv.container", self.name)),
            units.join(format!("{}-ml.container", self.name)),
        ]
    }

    /// A command running the binary with this deployment's configuration.
    pub fn command(&self, config: &Path, args: &[&str]) -> Command {
        let mut cmd = self.host.command(self.host.executable(Path::new(binary())));
        cmd.arg("--config").arg(config).args(args);
        cmd.env_remove("IMMICH_DB_FAULT_AT");
        cmd
    }

    /// Runs the binary with the valid configuration.
    pub fn run(&self, args: &[&str]) -> Output {
        let config = self.config();
        self.command(&config, args).output().unwrap()
    }

    /// Runs the binary and asserts it succeeded.
    pub fn run_ok(&self, args: &[&str]) -> Output {
        succeeded(self.run(args), args)
    }

    /// Runs the command with `--json`, asserts that it succeeded and said
    /// `"ok": true`, and returns what it said.
    pub fn json_ok(&self, command: &str) -> serde_json::Value {
        let out = self.run_ok(&["--json", command]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["ok"], true, "{command}: {report:#}");
        report
    }

    /// A secret's stored value.
    pub fn secret_value(&self, name: &str) -> Option<String> {
        let out = self.host.podman([
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

    /// The address of a container on the deployment's network.
    pub fn container_ip(&self, container: &str) -> String {
        let format = format!(
            "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
            self.podman_network()
        );
        self.host
            .podman_ok(["inspect", "--format", &format, container])
            .trim()
            .to_owned()
    }

    /// A command run where the containers' addresses are reachable: the host
    /// itself for rootful podman, the rootless network namespace of the user's
    /// podman for rootless.
    pub fn on_network(&self, program: &str) -> Command {
        if self.host.is_rootless() {
            let mut cmd = self.host.command("podman");
            cmd.args(["unshare", "--rootless-netns", program]);
            cmd
        } else {
            self.host.command(program)
        }
    }

    /// `psql` from outside the container, over TCP to it, with the password in
    /// psql's environment.
    pub fn psql(&self, password: &str, sql: &str) -> Output {
        let ip = self.container_ip(&self.pg);
        self.on_network("psql")
            .args(["-h", &ip, "-U", "immich", "-d", "immich", "-w", "-Atc", sql])
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .unwrap()
    }

    /// `valkey-cli ping` from outside the container, with the password in its
    /// environment or without one.
    pub fn valkey_ping(&self, password: Option<&str>) -> String {
        let ip = self.container_ip(&self.vk);
        let mut cmd = self.on_network("valkey-cli");
        cmd.args(["-h", &ip, "ping"]).env_remove("REDISCLI_AUTH");
        if let Some(p) = password {
            cmd.env("REDISCLI_AUTH", p);
        }
        let out = cmd.output().unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .trim()
        .to_owned()
    }

    /// `systemctl --user is-active UNIT`.
    pub fn is_active(&self, unit: &str) -> String {
        let out = self.host.systemctl(["is-active", unit]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Container ID and start time.
    pub fn container_identity(&self, container: &str) -> String {
        self.host
            .podman_ok([
                "inspect",
                "--format",
                "{{.Id}} {{.State.StartedAt}}",
                container,
            ])
            .trim()
            .to_owned()
    }

    /// Waits until both services are active again.
    pub fn wait_active(&self, timeout: Duration) {
        for (unit, container) in [
            (format!("{}.service", self.pg), &self.pg),
            (format!("{}.service", self.vk), &self.vk),
        ] {
            let start = std::time::Instant::now();
            while self.is_active(&unit) != "active" {
                assert!(
                    start.elapsed() < timeout,
                    "timed out after {timeout:?} waiting for {unit} to be active:\n{}",
                    self.service_state(&unit, container)
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// What systemd and podman say of a service and its container, for a test
    /// that waited for it in vain.
    pub fn service_state(&self, unit: &str, container: &str) -> String {
        let show = self.host.systemctl([
            "show",
            "-p",
            "ActiveState,SubState,Result,NRestarts,ActiveEnterTimestamp",
            unit,
        ]);
        let inspect = self.host.podman([
            "inspect",
            "--format",
            "{{.State.Status}} started {{.State.StartedAt}}; health {{.State.Health.Status}} after {{len .State.Health.Log}} check(s)",
            container,
        ]);
        let timers = self.host.systemctl(["list-timers", "--all", "--no-legend"]);
        let jobs = self.host.systemctl(["list-jobs", "--no-legend"]);
        format!(
            "systemd: {}podman: {}timers of the user manager:\n{}jobs of the user manager:\n{}{}",
            text(&show),
            text(&inspect),
            text(&timers),
            text(&jobs),
            self.logs_tail()
        )
    }

    /// Whether the host holds anything of this deployment: a unit file, a
    /// directory in the pool, a secret, a network or a container.
    pub fn leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        for file in self.unit_files() {
            if file.exists() {
                found.push(file.display().to_string());
            }
        }
        if let Ok(entries) = std::fs::read_dir(self.pool.path()) {
            for entry in entries.flatten() {
                found.push(entry.path().display().to_string());
            }
        }
        for secret in self.secrets() {
            if self
                .host
                .podman(["secret", "exists", secret])
                .status
                .success()
            {
                found.push(format!("secret {secret}"));
            }
        }
        if self
            .host
            .podman(["network", "exists", &self.podman_network()])
            .status
            .success()
        {
            found.push(format!("network {}", self.podman_network()));
        }
        for c in [&self.pg, &self.vk] {
            if self
                .host
                .podman(["container", "exists", c])
                .status
                .success()
            {
                found.push(format!("container {c}"));
            }
        }
        found
    }

    /// Creates a secret with a known value (on podman's standard input).
    pub fn create_secret(&self, name: &str, value: &str) {
        self.store_secret(&["secret", "create", name, "-"], value);
    }

    /// Gives an existing secret another value.
    pub fn replace_secret(&self, name: &str, value: &str) {
        self.store_secret(&["secret", "create", "--replace", name, "-"], value);
    }

    /// Runs `podman ARGS` with `value` on its standard input.
    fn store_secret(&self, args: &[&str], value: &str) {
        let mut child = self
            .host
            .command("podman")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(value.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
    }
}

/// Whether the binary was killed with SIGKILL (by the debug build's fault
/// hook): its own signal, or `runuser`'s exit code 128 + 9 for the rootless
/// user.
pub fn killed(out: &Output) -> bool {
    std::os::unix::process::ExitStatusExt::signal(&out.status) == Some(9)
        || out.status.code() == Some(128 + 9)
}

/// Both output streams as text.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The binary's output, once asserted that it succeeded.
pub fn succeeded(out: Output, args: &[&str]) -> Output {
    assert!(
        out.status.success(),
        "immich-db {args:?} failed ({}):\n{}",
        out.status,
        text(&out)
    );
    out
}

/// The first word a host tool printed (a checksum, attribute letters), once
/// asserted that it succeeded.
pub fn first_word(out: &Output) -> String {
    assert!(out.status.success(), "{}", text(out));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// The attribute letters `lsattr -d` shows for `path`.
pub fn lsattr_flags(host: &Host, path: &Path) -> String {
    first_word(&host.command("lsattr").arg("-d").arg(path).output().unwrap())
}

/// Programs the tool runs (`podman`, `systemctl`, `psql`), each replaced for a
/// command by a script first on its `PATH` that appends its arguments to a
/// log and runs the real program: every call the command makes is in the log,
/// however short-lived, where sampling `/proc` could miss it.
pub struct ArgumentLog {
    dir: tempfile::TempDir,
}

impl ArgumentLog {
    /// The scripts, for the programs `podman`, `systemctl` and `psql` as
    /// this host's `PATH` finds them, in a directory the host's user may use.
    pub fn new(host: &Host) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("calls.log");
        for program in ["podman", "systemctl", "psql"] {
            let real = Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .output()
                .unwrap();
            let real = String::from_utf8_lossy(&real.stdout).trim().to_owned();
            assert!(real.starts_with('/'), "{program} is not on the PATH");
            let script = dir.path().join(program);
            std::fs::write(
                &script,
                format!(
                    "#!/bin/sh\n{{ printf '%s' {program}; for a in \"$@\"; do printf ' %s' \"$a\"; done; printf '\\n'; }} >>'{}'\nexec {real} \"$@\"\n",
                    log.display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
        }
        host.give(dir.path());
        Self { dir }
    }

    /// The `PATH` that finds the scripts first.
    pub fn path(&self) -> std::ffi::OsString {
        let mut path = self.dir.path().as_os_str().to_owned();
        if let Some(rest) = std::env::var_os("PATH") {
            path.push(":");
            path.push(rest);
        }
        path
    }

    /// The calls logged so far, a line each.
    pub fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("calls.log")).unwrap_or_default()
    }

    /// Which of `values` appear in a logged call's arguments (their indexes).
    pub fn found(&self, values: &[String]) -> Vec<usize> {
        let calls = self.calls();
        values
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.is_empty() && calls.contains(v.as_str()))
            .map(|(i, _)| i)
            .collect()
    }
}

/// A command of the binary stopped at a step by the debug builds' hold hook
/// (`IMMICH_DB_HOLD_AT`): it waits there until released, so that a test acts
/// while it is there.
/// Dropped without [`Held::release`] or [`Held::signal`] (a test that failed
/// meanwhile), it is killed, so that the deployment's cleanup does not wait
/// for it.
pub struct Held {
    child: Option<std::process::Child>,
    dir: tempfile::TempDir,
    /// The held process's ID (the binary's own, also under `runuser`).
    pub pid: i32,
}

impl TestDeployment {
    /// Starts the binary with `args` and waits until it holds at `step`.
    /// SIGINT is at its default for it, as in a terminal's foreground: a test
    /// run started in the background by a shell without job control inherits
    /// it ignored, and [`Held::signal`] would then wait for ever.
    pub fn start_held(&self, config: &Path, args: &[&str], step: &str) -> Held {
        let dir = tempfile::tempdir().unwrap();
        self.host.give(dir.path());
        let release = dir.path().join("release");
        let mut cmd = self.host.command("env");
        cmd.arg("--default-signal=INT")
            .arg(self.host.executable(Path::new(binary())))
            .arg("--config")
            .arg(config)
            .args(args)
            .env_remove("IMMICH_DB_FAULT_AT");
        let mut child = cmd
            .env("IMMICH_DB_HOLD_AT", step)
            .env("IMMICH_DB_HOLD_FILE", &release)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let held = dir.path().join("release.held");
        let pid = immich_db_testhost::wait_for(
            &format!("immich-db {args:?} to hold at {step}"),
            Duration::from_secs(300),
            || {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!("immich-db {args:?} ended ({status}) before it reached {step}");
                }
                std::fs::read_to_string(&held)
                    .ok()
                    .and_then(|p| p.trim().parse().ok())
            },
        );
        Held {
            child: Some(child),
            dir,
            pid,
        }
    }
}

impl Held {
    /// Lets it go on, and waits for it to end.
    pub fn release(mut self) -> Output {
        std::fs::write(self.dir.path().join("release"), b"").unwrap();
        self.child.take().unwrap().wait_with_output().unwrap()
    }

    /// Sends it `signal` (`-INT`, `-TERM`), and waits for it to end (it is not
    /// released).
    pub fn signal(mut self, signal: &str) -> Output {
        let out = Command::new("kill")
            .arg(signal)
            .arg(self.pid.to_string())
            .output()
            .unwrap();
        assert!(out.status.success(), "kill {signal}: {}", text(&out));
        self.child.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The check called `name` in a JSON report of `verify`.
pub fn named_check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {report:#}"))
}
