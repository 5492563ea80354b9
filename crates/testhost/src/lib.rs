//! Test support for the real test host that `scripts/provision` sets up: podman 5
//! with Quadlet, root's systemd user manager, a loop-mounted BTRFS pool, an ext4 and
//! a tmpfs directory, and the local PostgreSQL (17 and 18) and Valkey images.
//!
//! Real-host tests start with [`require_host!`]. When the host is not set up, the
//! test fails if `CI` or `IMMICH_DB_REQUIRE_HOST` is set (the README's test command
//! sets it), saying how to set the host up; elsewhere it prints a visible `SKIPPED`
//! line and returns.
//!
//! Every test names what it creates with [`unique_name`] and registers it with a
//! [`Cleanup`], which removes it when dropped, also when the test panics.
//!
//! Tests of the systemd *system* manager run in a [`SystemMachine`]: a container
//! with systemd as PID 1 and podman inside (PID 1 of the test host is not
//! systemd). They start with [`require_host!`], then [`require_system_machine!`].

#![allow(clippy::missing_panics_doc)] // panicking is how test support fails a test

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub mod cnpg;
pub mod system;
pub use system::{
    SystemMachine, SystemMachineBuilder, system_machine_available, system_machine_ready,
};

/// The layout of the test host, as `scripts/test-host.env` defines it.
#[derive(Debug, Clone)]
pub struct Host {
    /// Mount point of the loop-mounted BTRFS scratch pool.
    pub btrfs: PathBuf,
    /// A directory on ext4.
    pub ext4: PathBuf,
    /// A directory on tmpfs.
    pub tmpfs: PathBuf,
    /// The local PostgreSQL image (with pgvector).
    pub postgres_image: String,
    /// The local PostgreSQL image of the next major, 18 (with pgvector), laid out
    /// as the official PostgreSQL 18 images are: the volume at
    /// `/var/lib/postgresql`, the cluster in `18/docker` below it.
    pub postgres18_image: String,
    /// The local Valkey image.
    pub valkey_image: String,
    /// `$XDG_RUNTIME_DIR` of the systemd user manager that runs the units.
    pub runtime_dir: PathBuf,
    /// The ordinary user whose rootless podman and systemd user manager this is,
    /// or `None` for root's.
    pub user: Option<User>,
}

/// An ordinary user of the test host, for rootless podman.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The login name.
    pub name: String,
    /// Its UID.
    pub uid: u32,
    /// Its primary GID.
    pub gid: u32,
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

impl Host {
    fn from_env() -> Self {
        let uid = current_uid();
        Self {
            btrfs: env_or("IMMICH_DB_TEST_BTRFS", "/mnt/immich-db-test/btrfs").into(),
            ext4: env_or("IMMICH_DB_TEST_EXT4", "/mnt/immich-db-test/ext4").into(),
            tmpfs: env_or("IMMICH_DB_TEST_TMPFS", "/mnt/immich-db-test/tmpfs").into(),
            postgres_image: env_or(
                "IMMICH_DB_TEST_POSTGRES_IMAGE",
                "localhost/immich-db-test/postgres:latest",
            ),
            postgres18_image: env_or(
                "IMMICH_DB_TEST_POSTGRES18_IMAGE",
                "localhost/immich-db-test/postgres:18",
            ),
            valkey_image: env_or(
                "IMMICH_DB_TEST_VALKEY_IMAGE",
                "localhost/immich-db-test/valkey:latest",
            ),
            runtime_dir: env_or("XDG_RUNTIME_DIR", &format!("/run/user/{uid}")).into(),
            user: None,
        }
    }

    /// The same host as seen by the rootless test user
    /// (`IMMICH_DB_TEST_ROOTLESS_USER`): its podman, its systemd user manager.
    fn rootless_from_env() -> Result<Self, String> {
        let name = env_or("IMMICH_DB_TEST_ROOTLESS_USER", "immich-db-rootless");
        let id = |flag: &str| -> Result<u32, String> {
            let out = Command::new("id")
                .args([flag, &name])
                .output()
                .map_err(|e| format!("cannot run id: {e}"))?;
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .map_err(|_| format!("- there is no user {name}\n"))
        };
        let (uid, gid) = (id("-u")?, id("-g")?);
        Ok(Self {
            runtime_dir: PathBuf::from(format!("/run/user/{uid}")),
            user: Some(User { name, uid, gid }),
            ..Self::from_env()
        })
    }

    /// Whether this is the rootless user's side of the host.
    pub fn is_rootless(&self) -> bool {
        self.user.is_some()
    }

    /// A command with the environment podman and `systemctl --user` need here,
    /// run as the host's user (through `runuser` for the rootless user).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = match &self.user {
            None => {
                let mut cmd = Command::new(program);
                cmd.env("XDG_RUNTIME_DIR", &self.runtime_dir)
                    .env("PODMAN_IGNORE_CGROUPSV1_WARNING", "1");
                cmd
            }
            Some(user) => {
                let mut cmd = Command::new("runuser");
                // Root's session bus is not the user's; its environment is kept
                // otherwise, as the caller sets it.
                cmd.args([
                    "-u",
                    &user.name,
                    "--",
                    "env",
                    "-u",
                    "DBUS_SESSION_BUS_ADDRESS",
                ])
                .arg(format!("XDG_RUNTIME_DIR={}", self.runtime_dir.display()))
                .arg("PODMAN_IGNORE_CGROUPSV1_WARNING=1")
                .arg(program)
                .current_dir("/");
                cmd
            }
        };
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Gives `path` (and what is below it) to the host's user: a no-op for root.
    pub fn give(&self, path: &Path) {
        if let Some(user) = &self.user {
            ok(Command::new("chown")
                .arg("-R")
                .arg(format!("{}:{}", user.uid, user.gid))
                .arg(path));
        }
    }

    /// A path of `program` that the host's user may run: the program itself, or
    /// for the rootless user where it cannot reach it (a checkout under root's
    /// home), a copy in a directory of the test host's, made once per program.
    pub fn executable(&self, program: &Path) -> PathBuf {
        static COPIES: std::sync::Mutex<Vec<(PathBuf, PathBuf)>> =
            std::sync::Mutex::new(Vec::new());
        let Some(user) = &self.user else {
            return program.to_path_buf();
        };
        let reachable = Command::new("runuser")
            .args(["-u", &user.name, "--", "test", "-x"])
            .arg(program)
            .status()
            .is_ok_and(|s| s.success());
        if reachable {
            return program.to_path_buf();
        }
        let mut copies = COPIES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, copy)) = copies.iter().find(|(p, _)| p == program) {
            return copy.clone();
        }
        let dir = PathBuf::from(env_or("IMMICH_DB_TEST_STATE", "/var/lib/immich-db-test"))
            .join("bin")
            .join(format!("{}-{}", std::process::id(), copies.len()));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let copy = dir.join(program.file_name().unwrap_or_else(|| OsStr::new("program")));
        std::fs::copy(program, &copy).unwrap_or_else(|e| {
            panic!(
                "cannot copy {} to {}: {e}",
                program.display(),
                copy.display()
            )
        });
        for level in [
            copy.parent(),
            copy.parent().and_then(Path::parent),
            Some(copy.as_path()),
        ]
        .into_iter()
        .flatten()
        {
            let mode = if level == copy { 0o755 } else { 0o711 };
            let _ =
                std::fs::set_permissions(level, std::os::unix::fs::PermissionsExt::from_mode(mode));
        }
        copies.push((program.to_path_buf(), copy.clone()));
        copy
    }

    /// Runs `podman ARGS`, returning its output whatever its exit status.
    pub fn podman<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(self.command("podman").args(args))
    }

    /// Runs `podman ARGS` and returns its standard output; panics when it fails.
    pub fn podman_ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command("podman");
        cmd.args(args);
        ok(&mut cmd)
    }

    /// Runs `systemctl --user ARGS`, returning its output whatever its exit status.
    pub fn systemctl<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(self.command("systemctl").arg("--user").args(args))
    }

    /// Runs `systemctl --user ARGS` and returns its standard output; panics when it
    /// fails.
    pub fn systemctl_ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command("systemctl");
        cmd.arg("--user").args(args);
        ok(&mut cmd)
    }

    /// The directory of transient Quadlet units that root's user generator reads
    /// (`$XDG_RUNTIME_DIR/containers/systemd`): tests put their units here, so
    /// nothing of theirs outlives a reboot or mixes with a user's own units.
    pub fn quadlet_dir(&self) -> PathBuf {
        self.runtime_dir.join("containers/systemd")
    }

    /// A fresh directory on the BTRFS pool, the host's user's, removed when the
    /// returned guard drops.
    pub fn btrfs_dir(&self, prefix: &str) -> tempfile::TempDir {
        let dir = scratch_dir(&self.btrfs, prefix);
        self.give(dir.path());
        dir
    }

    /// A fresh directory on ext4, removed when the returned guard drops.
    pub fn ext4_dir(&self, prefix: &str) -> tempfile::TempDir {
        scratch_dir(&self.ext4, prefix)
    }

    /// A fresh directory on tmpfs, removed when the returned guard drops.
    pub fn tmpfs_dir(&self, prefix: &str) -> tempfile::TempDir {
        scratch_dir(&self.tmpfs, prefix)
    }

    /// A /24 subnet in 10.213.0.0/16 that no podman network uses now, with its
    /// gateway (`.1`). Tests give it to the networks they create.
    pub fn free_subnet(&self) -> (String, String) {
        // Tests of one binary run side by side: a subnet handed out here is not
        // handed out again by this process, even before its network exists.
        static HANDED_OUT: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());
        let used = self.podman_ok([
            "network",
            "ls",
            "--format",
            "{{range .Subnets}}{{.Subnet}} {{end}}",
        ]);
        let mut handed_out = HANDED_OUT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let seed = unique_seed();
        for i in 0..256u32 {
            let octet = (seed.wrapping_add(i.wrapping_mul(97))) % 254 + 1;
            let subnet = format!("10.213.{octet}.0/24");
            if !handed_out.contains(&octet) && !used.split_whitespace().any(|s| s == subnet) {
                handed_out.push(octet);
                return (subnet, format!("10.213.{octet}.1"));
            }
        }
        panic!("no free /24 subnet left in 10.213.0.0/16");
    }
}

fn scratch_dir(parent: &Path, prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("idbt-{prefix}-"))
        .tempdir_in(parent)
        .unwrap_or_else(|e| {
            panic!(
                "cannot create a scratch directory in {}: {e}",
                parent.display()
            )
        })
}

fn current_uid() -> u32 {
    // /proc/self is ours: its owner is our uid, without a libc call.
    std::fs::metadata("/proc/self").map_or(0, |m| std::os::unix::fs::MetadataExt::uid(&m))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Why the host is not ready, or `Ok` with its layout.
fn probe() -> Result<Host, String> {
    let host = Host::from_env();
    let mut problems = String::new();
    let fs_type = |p: &Path| -> Option<String> {
        let out = Command::new("stat")
            .args(["-f", "-c", "%T"])
            .arg(p)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    for (path, want) in [
        (&host.btrfs, "btrfs"),
        (&host.ext4, "ext2/ext3"),
        (&host.tmpfs, "tmpfs"),
    ] {
        match fs_type(path) {
            Some(t) if t == want => {}
            Some(t) => {
                let _ = writeln!(problems, "- {} is {t}, not {want}", path.display());
            }
            None => {
                let _ = writeln!(problems, "- {} does not exist", path.display());
            }
        }
    }
    let version = host
        .command("podman")
        .args(["version", "--format", "{{.Client.Version}}"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match version {
        Some(v) if v.split('.').next().and_then(|m| m.parse::<u32>().ok()) >= Some(5) => {
            for image in [
                &host.postgres_image,
                &host.postgres18_image,
                &host.valkey_image,
            ] {
                let exists = host
                    .podman(["image", "exists", image.as_str()])
                    .status
                    .success();
                if !exists {
                    let _ = writeln!(problems, "- image {image} is missing");
                }
            }
        }
        Some(v) => {
            let _ = writeln!(problems, "- podman is {v}, not 5.x");
        }
        None => problems.push_str("- podman is not installed\n"),
    }
    let manager_state = || {
        let out = host.systemctl(["is-system-running"]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    // Just after a (test-driven) restart the manager answers but still says
    // "starting" while it runs its boot jobs: give those a moment, then accept it.
    let started = Instant::now();
    let mut state = manager_state();
    while state == "starting" && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
        state = manager_state();
    }
    if !matches!(state.as_str(), "running" | "degraded" | "starting") {
        let _ = writeln!(
            problems,
            "- root's systemd user manager is not running (state: {state:?})"
        );
    }
    if problems.is_empty() {
        Ok(host)
    } else {
        Err(problems)
    }
}

/// Why the rootless user's side of the host is not ready, or `Ok` with it.
fn probe_rootless() -> Result<Host, String> {
    let root = probe()?;
    let host = Host::rootless_from_env()?;
    let mut problems = String::new();
    let state = manager_script(&host, "state");
    let state = String::from_utf8_lossy(&state.stdout).trim().to_owned();
    if !matches!(state.as_str(), "running" | "degraded" | "starting") {
        let _ = writeln!(
            problems,
            "- the systemd user manager of {} is not running (state: {state:?})",
            host.user_name()
        );
    }
    for image in [
        &root.postgres_image,
        &root.postgres18_image,
        &root.valkey_image,
    ] {
        if !host
            .podman(["image", "exists", image.as_str()])
            .status
            .success()
        {
            let _ = writeln!(
                problems,
                "- image {image} is missing from {}'s storage",
                host.user_name()
            );
        }
    }
    if problems.is_empty() {
        Ok(host)
    } else {
        Err(problems)
    }
}

/// Runs `scripts/user-manager ACTION USER` for the host's user.
fn manager_script(host: &Host, action: &str) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/user-manager");
    run(Command::new(script).args([action, &host.user_name()]))
}

/// Whether real-host tests must run (and fail when the host is not set up).
pub fn host_required() -> bool {
    ["CI", "IMMICH_DB_REQUIRE_HOST"]
        .iter()
        .any(|k| std::env::var(k).is_ok_and(|v| !v.is_empty() && v != "0"))
}

/// The test host, or `None` (after printing why) where real-host tests may skip.
///
/// # Panics
/// When the host is not set up and [`host_required`] is true.
pub fn host(test: &str) -> Option<&'static Host> {
    static PROBE: OnceLock<Result<Host, String>> = OnceLock::new();
    match PROBE.get_or_init(probe) {
        Ok(host) => Some(host),
        Err(problems) if host_required() => panic!(
            "the real test host is not set up:\n{problems}Set it up with `sudo scripts/provision --yes` (see the README)."
        ),
        Err(problems) => {
            eprintln!(
                "SKIPPED {test}: the real test host is not set up:\n{problems}  (run `sudo scripts/provision --yes`; CI never skips)"
            );
            None
        }
    }
}

/// The test host as its rootless user sees it (that user's podman and systemd
/// user manager), or `None` (after printing why) where real-host tests may skip.
///
/// # Panics
/// When that side of the host is not set up and [`host_required`] is true.
pub fn rootless_host(test: &str) -> Option<&'static Host> {
    static PROBE: OnceLock<Result<Host, String>> = OnceLock::new();
    match PROBE.get_or_init(probe_rootless) {
        Ok(host) => Some(host),
        Err(problems) if host_required() => panic!(
            "the rootless side of the real test host is not set up:\n{problems}Set it up with `sudo scripts/provision --yes` (see the README)."
        ),
        Err(problems) => {
            eprintln!(
                "SKIPPED {test}: the rootless side of the real test host is not set up:\n{problems}  (run `sudo scripts/provision --yes`; CI never skips)"
            );
            None
        }
    }
}

/// The rootless side of the test host, or return from the calling test after a
/// visible `SKIPPED` line (a failure in CI).
#[macro_export]
macro_rules! require_rootless_host {
    () => {
        match $crate::rootless_host(concat!(module_path!(), " (", file!(), ":", line!(), ")")) {
            Some(host) => host,
            None => return,
        }
    };
}

/// The test host, or return from the calling test after a visible `SKIPPED` line
/// (a failure in CI).
#[macro_export]
macro_rules! require_host {
    () => {
        match $crate::host(concat!(module_path!(), " (", file!(), ":", line!(), ")")) {
            Some(host) => host,
            None => return,
        }
    };
}

fn unique_seed() -> u32 {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    nanos
        ^ std::process::id().rotate_left(16)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9)
}

/// A name no other test run uses: `idbt-PREFIX-XXXXXXXX` (lowercase, valid for
/// containers, networks, secrets, units and files).
pub fn unique_name(prefix: &str) -> String {
    format!("idbt-{prefix}-{:08x}", unique_seed())
}

/// Everything a test created, removed in reverse order when dropped (also when the
/// test panics). Removal errors are ignored: the thing may never have been created.
#[derive(Debug)]
pub struct Cleanup {
    host: Host,
    steps: Vec<Step>,
}

#[derive(Debug)]
enum Step {
    Container(String),
    Network(String),
    Secret(String),
    Unit(String),
    File(PathBuf),
    Dir(PathBuf),
    Image(String),
}

impl Cleanup {
    /// An empty cleanup list for this host.
    pub fn new(host: &Host) -> Self {
        Self {
            host: host.clone(),
            steps: Vec::new(),
        }
    }
    /// Remove this container (forcibly) at the end.
    pub fn container(&mut self, name: &str) -> &mut Self {
        self.steps.push(Step::Container(name.to_owned()));
        self
    }
    /// Remove this podman network at the end.
    pub fn network(&mut self, name: &str) -> &mut Self {
        self.steps.push(Step::Network(name.to_owned()));
        self
    }
    /// Remove this podman secret at the end.
    pub fn secret(&mut self, name: &str) -> &mut Self {
        self.steps.push(Step::Secret(name.to_owned()));
        self
    }
    /// Stop this systemd user unit and reset its failed state at the end.
    pub fn unit(&mut self, name: &str) -> &mut Self {
        self.steps.push(Step::Unit(name.to_owned()));
        self
    }
    /// Remove this file at the end, then reload the user manager if it was a unit
    /// file.
    pub fn file(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.steps.push(Step::File(path.into()));
        self
    }
    /// Remove this directory tree at the end.
    pub fn dir(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.steps.push(Step::Dir(path.into()));
        self
    }
    /// Remove this image name at the end (`podman rmi`, without force: the
    /// image itself goes only when no other name and no container uses it).
    pub fn image(&mut self, name: &str) -> &mut Self {
        self.steps.push(Step::Image(name.to_owned()));
        self
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut reload = false;
        while let Some(step) = self.steps.pop() {
            match step {
                Step::Container(name) => {
                    let _ = self.host.podman(["rm", "--force", "--time", "0", &name]);
                }
                Step::Network(name) => {
                    let _ = self.host.podman(["network", "rm", "--force", &name]);
                }
                Step::Secret(name) => {
                    let _ = self.host.podman(["secret", "rm", &name]);
                }
                Step::Unit(name) => {
                    let _ = self.host.systemctl(["stop", &name]);
                    let _ = self.host.systemctl(["reset-failed", &name]);
                }
                Step::File(path) => {
                    reload |= path.starts_with(self.host.quadlet_dir())
                        || path.extension().is_some_and(|e| {
                            ["container", "network", "volume", "pod", "service", "timer"]
                                .iter()
                                .any(|u| e == *u)
                        });
                    let _ = std::fs::remove_file(&path);
                }
                Step::Dir(path) => {
                    let _ = std::fs::remove_dir_all(&path);
                }
                Step::Image(name) => {
                    let _ = self.host.podman(["rmi", &name]);
                }
            }
        }
        if reload {
            let _ = self.host.systemctl(["daemon-reload"]);
        }
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or panics with `what` after
/// `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Host {
    /// The name of the host's user (`root` for root's side).
    pub fn user_name(&self) -> String {
        self.user
            .as_ref()
            .map_or_else(|| "root".to_owned(), |u| u.name.clone())
    }

    /// Stops the host's systemd user manager and starts it again, as a reboot
    /// would (without losing `$XDG_RUNTIME_DIR`): every user unit stops, then
    /// the manager starts what `default.target` wants. It is stopped and started
    /// by `scripts/user-manager`, as `scripts/provision` starts it. This disturbs
    /// every unit of that manager: only a test in a file of its own should call
    /// it.
    pub fn restart_user_manager(&self) {
        self.stop_user_manager();
        self.start_user_manager();
    }

    /// Stops the host's systemd user manager, as at a shutdown: every unit of
    /// it stops first. The same warning as for
    /// [`restart_user_manager`](Self::restart_user_manager) holds.
    pub fn stop_user_manager(&self) {
        let stop = manager_script(self, "stop");
        assert!(
            stop.status.success(),
            "stopping the user manager: {}",
            String::from_utf8_lossy(&stop.stderr)
        );
    }

    /// Starts the host's systemd user manager (after
    /// [`stop_user_manager`](Self::stop_user_manager)), as at a boot: it starts
    /// what `default.target` wants. Returns once the manager answers.
    pub fn start_user_manager(&self) {
        let start = manager_script(self, "start");
        assert!(
            start.status.success(),
            "starting the user manager: {}",
            String::from_utf8_lossy(&start.stderr)
        );
        if self.user.is_none() {
            // As scripts/provision points it: rootful podman's health-check
            // timers go to root's user manager.
            let _ = std::os::unix::fs::symlink(
                self.runtime_dir.join("systemd/private"),
                "/run/systemd/private.idbt-tmp",
            );
            let _ = std::fs::rename("/run/systemd/private.idbt-tmp", "/run/systemd/private");
        }
    }
}

/// A file or directory of the folder shared beside the repository (`../shared`:
/// podman's Quadlet generators of several releases, schemas), or `None` where it
/// is not there. `$IMMICH_DB_SHARED` names the folder where it is elsewhere. The
/// tool itself never reads it; tests that need it say that they skip without it.
pub fn shared(path: &str) -> Option<PathBuf> {
    let folder = std::env::var_os("IMMICH_DB_SHARED")
        .filter(|v| !v.is_empty())
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
            PathBuf::from,
        );
    let found = folder.join(path);
    found.exists().then_some(found)
}
