//! A machine with systemd as PID 1, for tests of the system scope.
//!
//! PID 1 of the test host is not systemd, so the system manager cannot be tested
//! there. A [`SystemMachine`] is a privileged podman container of the image that
//! `scripts/provision` builds (`scripts/system-machine`, recipe in
//! `scripts/images/system-host`): Debian trixie with systemd as PID 1 and podman,
//! runc, netavark and aardvark-dns inside, configured as the test host is (runc,
//! the same ulimits). Inside it, `systemctl` talks to a real system manager, the
//! podman system generator reads `/etc/containers/systemd`, `Notify=healthy`
//! works, and `multi-user.target` is the boot target's part it is on a server.
//!
//! How it is made to work on this machine kind (cgroups in hybrid v1/v2 mode):
//! - `--cgroupns=private`, so that the cgroup paths the machine's systemd
//!   creates are the paths its podman and runc see. Podman refuses a private
//!   cgroup namespace with cgroups v1 in its systemd mode, so the machine runs
//!   with `--systemd=false` and gets what that mode would give it: tmpfs on
//!   `/run`, `/run/lock` and `/tmp`, `container=podman` and `SIGRTMIN+3` as the
//!   stop signal (the last two from the image);
//! - `--network none`: the machine has loopback only, and the networks its
//!   podman creates live in the machine's own network namespace. Nothing in it
//!   can reach an outside address;
//! - its podman storage is an anonymous volume (kept over a [`reboot`], removed
//!   with the machine), and the test images come from a read-only store that
//!   provisioning fills (podman's additional image store), so no image is
//!   loaded when a machine starts.
//!
//! Rules, as for every real-host test: a machine has a unique name
//! ([`unique_name`]), and dropping it removes the container
//! and its volume, also when the test panics. What a test binds into it (a
//! directory on the BTRFS pool, the binary under test) stays the test's to
//! remove: bind the pool directory of a [`TempDir`](tempfile::TempDir) declared
//! before the machine, so that it is removed after.
//!
//! [`reboot`]: SystemMachine::reboot

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{Host, env_or, host_required, run, unique_name};

/// The image of the machine, as `scripts/system-machine` names it.
fn machine_image() -> String {
    env_or(
        "IMMICH_DB_TEST_SYSTEM_IMAGE",
        "localhost/immich-db-test/system-host:latest",
    )
}

/// The read-only image store the machines mount (`scripts/system-machine`).
fn image_store() -> PathBuf {
    let state = env_or("IMMICH_DB_TEST_STATE", "/var/lib/immich-db-test");
    PathBuf::from(env_or(
        "IMMICH_DB_TEST_SYSTEM_STORE",
        &format!("{state}/system-images"),
    ))
    .join("storage")
}

/// Where the store appears inside a machine (its `storage.conf` says so).
const STORE_IN_MACHINE: &str = "/var/lib/containers/test-images";

/// How long a machine may take to boot.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// Whether machines can be started here; the error says what is missing.
pub fn system_machine_ready(host: &Host) -> Result<(), String> {
    let mut problems = String::new();
    let image = machine_image();
    if !host.podman(["image", "exists", &image]).status.success() {
        let _ = writeln!(problems, "- the machine image {image} is missing");
    }
    let store = image_store();
    if !store.join("overlay-images/images.json").is_file() {
        let _ = writeln!(
            problems,
            "- the machine's image store {} is missing",
            store.display()
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Whether to run a test that needs a [`SystemMachine`]: `true` when machines
/// can be started; else `false` after a visible `SKIPPED` line, or a panic where
/// real-host tests must run (CI).
pub fn system_machine_available(host: &Host, test: &str) -> bool {
    match system_machine_ready(host) {
        Ok(()) => true,
        Err(problems) if host_required() => panic!(
            "the system-manager test machine is not set up:\n{problems}Set it up with `sudo scripts/provision --yes` (see the README)."
        ),
        Err(problems) => {
            eprintln!(
                "SKIPPED {test}: the system-manager test machine is not set up:\n{problems}  (run `sudo scripts/provision --yes`; CI never skips)"
            );
            false
        }
    }
}

/// Return from the calling test after a visible `SKIPPED` line when no
/// [`SystemMachine`] can be started (a failure in CI). Use it after
/// [`require_host!`](crate::require_host), with the host it gave.
#[macro_export]
macro_rules! require_system_machine {
    ($host:expr) => {
        if !$crate::system_machine_available(
            $host,
            concat!(module_path!(), " (", file!(), ":", line!(), ")"),
        ) {
            return;
        }
    };
}

/// What to start a [`SystemMachine`] with.
#[derive(Debug)]
#[must_use = "a builder does nothing until `start`"]
pub struct SystemMachineBuilder {
    host: Host,
    name: String,
    binds: Vec<(PathBuf, PathBuf, bool)>,
    systemd: bool,
}

impl SystemMachineBuilder {
    /// Binds a host directory (or file) at the same path inside, writable.
    pub fn bind(mut self, path: impl AsRef<Path>) -> Self {
        let path = path.as_ref().to_path_buf();
        self.binds.push((path.clone(), path, false));
        self
    }

    /// Binds a host file (or directory) read-only at `inside`.
    pub fn bind_ro(mut self, path: impl AsRef<Path>, inside: impl AsRef<Path>) -> Self {
        self.binds.push((
            path.as_ref().to_path_buf(),
            inside.as_ref().to_path_buf(),
            true,
        ));
        self
    }

    /// Starts the machine with `sleep infinity` as PID 1 instead of systemd: a
    /// host without a system manager, for tests of what refuses to run there.
    pub fn without_systemd(mut self) -> Self {
        self.systemd = false;
        self
    }

    /// Starts the machine and, unless [`without_systemd`](Self::without_systemd),
    /// waits until its system manager says `running` or `degraded`.
    ///
    /// Panics when it does not start or boot; the machine is removed then.
    pub fn start(self) -> SystemMachine {
        for (path, _, _) in &self.binds {
            assert!(
                path.exists(),
                "cannot bind {} into a machine: it does not exist",
                path.display()
            );
        }
        let mut cmd = self.host.command("podman");
        cmd.args(["run", "--detach", "--name", &self.name, "--hostname"])
            .arg(&self.name)
            .args([
                "--privileged",
                "--systemd=false",
                "--cgroupns=private",
                "--network=none",
                "--pids-limit=-1",
                "--tmpfs=/run:rw,exec,mode=755",
                "--tmpfs=/run/lock",
                "--tmpfs=/tmp:rw,exec,mode=1777",
                "--volume=/var/lib/containers/storage",
                "--label=immich-db-test.system-machine=1",
            ])
            .arg(format!(
                "--volume={}:{STORE_IN_MACHINE}:ro",
                image_store().display()
            ));
        for (path, inside, read_only) in &self.binds {
            cmd.arg(format!(
                "--volume={}:{}{}",
                path.display(),
                inside.display(),
                if *read_only { ":ro" } else { "" }
            ));
        }
        cmd.arg(machine_image());
        if !self.systemd {
            cmd.args(["sleep", "infinity"]);
        }
        let started = Instant::now();
        // From here on, dropping the machine removes whatever podman made.
        let mut machine = SystemMachine {
            host: self.host,
            name: self.name,
            boot_time: Duration::ZERO,
        };
        let out = run(&mut cmd);
        assert!(
            out.status.success(),
            "cannot start the machine {}: {}{}",
            machine.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if self.systemd {
            machine.wait_running(started);
            machine.boot_time = started.elapsed();
        }
        machine
    }
}

/// A machine with systemd as PID 1 and podman inside, removed when dropped. See
/// the [module documentation](crate::system).
///
/// ```no_run
/// # fn demo(host: &immich_db_testhost::Host) {
/// use immich_db_testhost::SystemMachine;
///
/// let pool = host.btrfs_dir("demo");
/// let machine = SystemMachine::builder(host, "demo").bind(pool.path()).start();
/// assert_eq!(machine.exec_ok(["cat", "/proc/1/comm"]).trim(), "systemd");
/// machine.systemctl_ok(["daemon-reload"]);
/// # }
/// ```
#[derive(Debug)]
pub struct SystemMachine {
    host: Host,
    name: String,
    boot_time: Duration,
}

impl SystemMachine {
    /// A machine named `idbt-PREFIX-XXXXXXXX`, to be started.
    pub fn builder(host: &Host, prefix: &str) -> SystemMachineBuilder {
        SystemMachineBuilder {
            host: host.clone(),
            name: unique_name(prefix),
            binds: Vec::new(),
            systemd: true,
        }
    }

    /// The container's name (also the machine's host name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long the machine took to boot, from `podman run` until the manager
    /// said `running` or `degraded` (zero for a machine without systemd).
    pub fn boot_time(&self) -> Duration {
        self.boot_time
    }

    /// `podman exec` into the machine, as root, with no standard input.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.host.command("podman");
        cmd.args(["exec", &self.name]).args(args);
        cmd
    }

    /// Runs a command in the machine, returning its output whatever its exit
    /// status.
    pub fn exec<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(&mut self.command(args))
    }

    /// Runs a command in the machine and returns its standard output; panics,
    /// with both outputs, when it fails.
    pub fn exec_ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.exec(&args);
        assert!(
            out.status.success(),
            "{args:?} in the machine {} failed ({}):\n{}{}",
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a command in the machine with environment variables. They travel by
    /// name (`podman exec --env NAME`), their values in podman's own
    /// environment: a password given this way is in no command line.
    pub fn exec_with_env<I, S>(&self, vars: &[(&str, &str)], args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.host.command("podman");
        cmd.arg("exec");
        for (name, value) in vars {
            cmd.args(["--env", name]).env(name, value);
        }
        cmd.arg(&self.name).args(args);
        run(&mut cmd)
    }

    /// Runs a command in the machine with `input` on its standard input.
    pub fn exec_with_input<I, S>(&self, args: I, input: &[u8]) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.host.command("podman");
        cmd.args(["exec", "--interactive", &self.name])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let written = child.stdin.take().map(|mut stdin| stdin.write_all(input));
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        if let Some(Err(e)) = written {
            panic!("cannot write to {cmd:?}: {e}");
        }
        out
    }

    /// Writes a file in the machine (creating its directory), mode 0644.
    pub fn write_file(&self, path: &str, contents: &str) {
        let out = self.exec_with_input(
            [
                "sh",
                "-c",
                "mkdir -p \"$(dirname \"$1\")\" && cat >\"$1\" && chmod 0644 \"$1\"",
                "write_file",
                path,
            ],
            contents.as_bytes(),
        );
        assert!(
            out.status.success(),
            "cannot write {path} in the machine {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `systemctl ARGS` (the system manager) in the machine, whatever its exit
    /// status.
    pub fn systemctl<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(["systemctl"]);
        cmd.args(args);
        run(&mut cmd)
    }

    /// `systemctl ARGS` in the machine; its standard output, or a panic.
    pub fn systemctl_ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all = vec![OsStr::new("systemctl").to_owned()];
        all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self.exec_ok(all)
    }

    /// One property of a unit (`systemctl show -p NAME --value UNIT`).
    pub fn unit_property(&self, unit: &str, property: &str) -> String {
        self.systemctl_ok(["show", "-p", property, "--value", unit])
            .trim()
            .to_owned()
    }

    /// The machine's podman: `podman ARGS` inside, whatever its exit status.
    pub fn podman<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(["podman"]);
        cmd.args(args);
        run(&mut cmd)
    }

    /// `podman ARGS` inside; its standard output, or a panic.
    pub fn podman_ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all = vec![OsStr::new("podman").to_owned()];
        all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self.exec_ok(all)
    }

    /// What the manager says of itself (`systemctl is-system-running`).
    pub fn state(&self) -> String {
        let out = self.systemctl(["is-system-running"]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// What systemd says of a unit and its last journal lines, for a test that
    /// waited for it in vain.
    pub fn diagnose(&self, unit: &str) -> String {
        let status = self.systemctl(["status", "--no-pager", "--lines=0", unit]);
        let journal = self.exec([
            "journalctl",
            "--no-pager",
            "--lines=40",
            "--output=short-precise",
            "-u",
            unit,
        ]);
        format!(
            "systemctl status {unit}:\n{}{}\njournal of {unit}:\n{}",
            String::from_utf8_lossy(&status.stdout),
            String::from_utf8_lossy(&status.stderr),
            String::from_utf8_lossy(&journal.stdout),
        )
    }

    /// Shuts the machine down as systemd does (`podman stop`: `SIGRTMIN+3`, the
    /// services stop in order) and boots it again; returns once the manager
    /// runs, with what it starts at boot started. Files and the podman storage
    /// are kept; `/run` and `/tmp` start empty. Returns how long the boot took
    /// (from `podman start`).
    pub fn reboot(&self) -> Duration {
        self.host.podman_ok(["stop", "--time", "90", &self.name]);
        let started = Instant::now();
        self.host.podman_ok(["start", &self.name]);
        self.wait_running(started);
        started.elapsed()
    }

    /// Waits until the manager says `running` or `degraded`; panics with what
    /// it says when it does not within [`BOOT_TIMEOUT`] or the container ends.
    fn wait_running(&self, since: Instant) {
        let mut state = String::new();
        while since.elapsed() < BOOT_TIMEOUT {
            state = self.state();
            match state.as_str() {
                "running" => return,
                "degraded" => {
                    let failed = self.systemctl(["--failed", "--no-legend", "--plain"]);
                    eprintln!(
                        "machine {} is degraded:\n{}",
                        self.name,
                        String::from_utf8_lossy(&failed.stdout)
                    );
                    return;
                }
                _ => {}
            }
            let running =
                self.host
                    .podman(["inspect", "--format", "{{.State.Running}}", &self.name]);
            if String::from_utf8_lossy(&running.stdout).trim() == "false" {
                let logs = self.host.podman(["logs", "--tail=40", &self.name]);
                panic!(
                    "the machine {} ended while booting:\n{}{}",
                    self.name,
                    String::from_utf8_lossy(&logs.stdout),
                    String::from_utf8_lossy(&logs.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let jobs = self.systemctl(["list-jobs", "--no-pager"]);
        panic!(
            "the machine {} did not boot within {BOOT_TIMEOUT:?} (state {state:?}); jobs:\n{}",
            self.name,
            String::from_utf8_lossy(&jobs.stdout)
        );
    }
}

impl Drop for SystemMachine {
    fn drop(&mut self) {
        // Everything the machine's podman made (containers, networks, secrets)
        // lives in the machine: removing it with its volume removes them all.
        let _ = self
            .host
            .podman(["rm", "--force", "--time", "0", "--volumes", &self.name]);
    }
}
