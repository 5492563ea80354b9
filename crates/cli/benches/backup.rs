//! Figures of database backups on the real test host; prints them.
//!
//! One PostgreSQL 17 container, as `immich-db deploy` runs it (the same image,
//! data directory on the pool with NOCOW, environment, secret and shared memory),
//! but started with `podman run`: a restart of the systemd user manager by
//! another test on the host would stop a deployed service half-way through.
//! `immich-db backup` runs against it by its name, with a deployment's
//! configuration. It is filled with an Immich-like data set made inside PostgreSQL (`backup-data.sql`: 300,000
//! asset rows and 100,000 embeddings of 512 dimensions). Then, side by side in
//! each round (the order turns from round to round, the host's speed drifts),
//! every way of backing it up writes its file into one directory of the BTRFS
//! pool, synced to disk before the clock stops:
//!
//! - the floor: `pg_dump -Fc -Z0` in the container, streamed to the host (the
//!   time to read the database, with nothing compressed);
//! - Immich's own nightly job: `pg_dumpall --clean --if-exists | gzip
//!   --rsyncable`, gzip on the host at its default level;
//! - `immich-db backup` as it is (`pg_dump -Fc`, zlib at its default level in
//!   the container);
//! - `pg_dump -Fc` compressing in the container: `-Z zstd:1` and `-Z lz4`
//!   (PostgreSQL 16 and later), `-Z 1` (zlib's fastest, the best PostgreSQL 14
//!   can do itself);
//! - `pg_dump -Fc -Z0` streamed to the host and compressed there on every core
//!   with the `zstd` crate (libzstd's worker threads), levels 1 and 3: what
//!   PostgreSQL 14 and 15, whose `pg_dump` has no zstd, can get; and the same with
//!   the `zstd` command (`-T0`) where the host has it, as a cross-check;
//! - the directory format with parallel jobs, `-Fd -j N -Z zstd:1`, into the
//!   container's own storage, then streamed out as a tar archive.
//!
//! Every file written in this process is read through SHA-256 on its way, as
//! the tool checksums its backups. Then restores of the floor's file and of the
//! best candidates, each into a new database, checked against the original with
//! a fingerprint of every row: `pg_restore` from standard input in one
//! transaction (as `immich-db restore` does), and `pg_restore` reading the file
//! from the backup directory, which the container mounts read-only, in one
//! transaction or with `-j N` (a file the host compressed is decompressed by the
//! host into that directory first, within the time measured).
//!
//! The table gives each method's median time and its file's size, its time
//! against the floor (the median of each round's ratio) and its speed-up against
//! Immich's job. The host's load is printed: on a busy host, run it again.
//!
//! Run with `cargo bench -p immich-db --bench backup`.
//! `IMMICH_DB_BENCH_ROUNDS` (default 3) and `IMMICH_DB_BENCH_RESTORE_ROUNDS`
//! (default 3) change the rounds, `IMMICH_DB_BENCH_ASSETS` the size of the data
//! set (default 300000 assets, a third as many embeddings).

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a benchmark that prints

#[path = "../tests/common/mod.rs"]
mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestDeployment, text};
use immich_db_testhost::{Host, unique_name};
use sha2::{Digest as _, Sha256};

/// The data set, made inside PostgreSQL.
const DATA: &str = include_str!("backup-data.sql");
/// Rounds of backups: each method once per round; the medians are printed.
const ROUNDS: usize = 3;
/// Rounds of restores.
const RESTORE_ROUNDS: usize = 3;
/// What the pool must have free: the database, and the files of one round.
const FREE_NEEDED: u64 = 4 << 30;
/// Where the container sees the backup directory (read-only).
const MOUNTED: &str = "/var/lib/immich-db-backups";
/// Chunks read from a pipe.
const CHUNK: usize = 1 << 20;

/// One way to back up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    /// `pg_dump -Fc -Z0` to the host.
    Floor,
    /// `pg_dumpall --clean --if-exists | gzip --rsyncable`.
    Immich,
    /// `immich-db backup`.
    Tool,
    /// `pg_dump -Fc -Z SPEC` in the container.
    InContainer(&'static str),
    /// `pg_dump -Fc -Z0`, compressed on the host with the zstd crate on every
    /// core at this level.
    HostZstd(i32),
    /// The same with the `zstd` command.
    HostZstdCommand(i32),
    /// `pg_dump -Fd -j N -Z SPEC` in the container, then tar to the host.
    Directory(&'static str),
}

impl Method {
    fn label(self, jobs: usize) -> String {
        match self {
            Self::Floor => "floor: pg_dump -Fc -Z0 to the host".into(),
            Self::Immich => "Immich's job: pg_dumpall | gzip".into(),
            Self::Tool => "immich-db backup today (-Fc, zlib default)".into(),
            Self::InContainer(spec) => format!("pg_dump -Fc -Z {spec} in the container"),
            Self::HostZstd(level) => {
                format!("pg_dump -Fc -Z0 | host zstd crate, level {level}, all cores")
            }
            Self::HostZstdCommand(level) => {
                format!("pg_dump -Fc -Z0 | host zstd -T0 -{level} (command)")
            }
            Self::Directory(spec) => format!("pg_dump -Fd -j {jobs} -Z {spec}, tar to the host"),
        }
    }

    fn file_name(self) -> String {
        match self {
            Self::Floor => "floor.dump".into(),
            Self::Immich => "immich.sql.gz".into(),
            Self::Tool => "tool.dump".into(),
            Self::InContainer(spec) => format!("in-container-{}.dump", spec.replace(':', "-")),
            Self::HostZstd(level) => format!("host-zstd-{level}.dump.zst"),
            Self::HostZstdCommand(level) => format!("host-zstd-command-{level}.dump.zst"),
            Self::Directory(spec) => format!("directory-{}.tar", spec.replace(':', "-")),
        }
    }
}

/// A measured backup: how long it took, how big its file is.
#[derive(Debug, Clone, Copy)]
struct Measured {
    time: Duration,
    size: u64,
}

/// The deployment, its data set and where the files go.
struct Bench {
    host: &'static Host,
    d: TestDeployment,
    config: PathBuf,
    out: tempfile::TempDir,
    /// Parallel jobs and compression threads: the host's cores.
    jobs: usize,
    /// Whether the host has the `zstd` command.
    zstd_command: bool,
}

/// A writer that digests what passes through, as the tool checksums backups.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl Hashing<File> {
    fn create(path: &Path) -> Self {
        Self {
            inner: File::create(path).unwrap(),
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// Syncs the file; returns its size.
    fn finish(self) -> u64 {
        self.inner.sync_all().unwrap();
        std::hint::black_box(self.hasher.finalize());
        self.size
    }
}

/// Copies `from` into `to` in large chunks.
fn pump(mut from: impl Read, to: &mut impl Write) {
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let n = from.read(&mut buffer).unwrap();
        if n == 0 {
            break;
        }
        to.write_all(&buffer[..n]).unwrap();
    }
}

/// Waits for a child, panicking with its standard error when it failed.
fn finished(child: Child, what: &str) {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{what} failed: {}", text(&out));
}

/// Reads `last`'s output into `path` through SHA-256; both children must
/// succeed.
fn into_file(mut last: Child, last_name: &str, path: &Path, first: Child, first_name: &str) -> u64 {
    let mut file = Hashing::create(path);
    pump(last.stdout.take().unwrap(), &mut file);
    finished(last, last_name);
    finished(first, first_name);
    file.finish()
}

fn median_duration(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn mb(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // sizes to print
    let mb = bytes as f64 / 1e6;
    format!("{mb:.0} MB")
}

fn env_number(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

impl Bench {
    /// `podman exec [-i] CONTAINER ARGS`: inside the container, over its local
    /// socket as the deployment's role, so no password is needed anywhere.
    fn exec(&self, stdin: bool, args: &[&str]) -> Command {
        let mut cmd = self.host.command("podman");
        cmd.arg("exec");
        if stdin {
            cmd.arg("-i");
        }
        cmd.arg(&self.d.pg).args(args);
        cmd
    }

    /// Runs SQL with psql in the container; returns its output.
    fn sql(&self, database: &str, sql: &str) -> String {
        let out = self
            .exec(
                false,
                &[
                    "psql",
                    "-X",
                    "-q",
                    "-U",
                    "immich",
                    "-d",
                    database,
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-Atc",
                    sql,
                ],
            )
            .output()
            .unwrap();
        assert!(out.status.success(), "psql {sql:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Every row of the data set, summed up: equal in two databases when they
    /// hold the same rows.
    fn fingerprint(&self, database: &str) -> String {
        self.sql(
            database,
            "SELECT (SELECT count(*) || ' assets ' || sum(hashtext(a::text)::bigint) FROM asset a) \
             || ', ' || (SELECT count(*) || ' embeddings ' || sum(hashtext(s::text)::bigint) FROM smart_search s)",
        )
    }

    fn path(&self, method: Method) -> PathBuf {
        self.out.path().join(method.file_name())
    }

    /// `pg_dump ARGS` in the container, its output streamed to `path` through
    /// SHA-256 (and zstd on every core at `level`, when given).
    fn dump_to(&self, args: &[&str], path: &Path, level: Option<i32>) -> u64 {
        let mut cmd = self.exec(false, &["pg_dump", "-U", "immich", "-d", "immich"]);
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut file = Hashing::create(path);
        match level {
            None => pump(stdout, &mut file),
            Some(level) => {
                let mut encoder = zstd::stream::write::Encoder::new(&mut file, level).unwrap();
                encoder
                    .multithread(u32::try_from(self.jobs).unwrap())
                    .unwrap();
                pump(stdout, &mut encoder);
                encoder.finish().unwrap();
            }
        }
        finished(child, "pg_dump");
        file.finish()
    }

    /// Runs one backup; returns its time and size, its file left in place.
    fn backup(&self, method: Method) -> Measured {
        let path = self.path(method);
        let _ = std::fs::remove_file(&path);
        let jobs = self.jobs.to_string();
        let start = Instant::now();
        let size = match method {
            Method::Floor => self.dump_to(&["-Fc", "-Z0"], &path, None),
            Method::InContainer(spec) => self.dump_to(&["-Fc", "-Z", spec], &path, None),
            Method::HostZstd(level) => self.dump_to(&["-Fc", "-Z0"], &path, Some(level)),
            Method::HostZstdCommand(level) => {
                let mut dump = self
                    .exec(
                        false,
                        &["pg_dump", "-U", "immich", "-d", "immich", "-Fc", "-Z0"],
                    )
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let zstd = Command::new("zstd")
                    .args(["-q", "-T0", &format!("-{level}"), "-c"])
                    .stdin(dump.stdout.take().unwrap())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                into_file(zstd, "zstd", &path, dump, "pg_dump")
            }
            Method::Immich => {
                let mut dump = self
                    .exec(
                        false,
                        &["pg_dumpall", "--clean", "--if-exists", "-U", "immich"],
                    )
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let gzip = Command::new("gzip")
                    .arg("--rsyncable")
                    .stdin(dump.stdout.take().unwrap())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                into_file(gzip, "gzip", &path, dump, "pg_dumpall")
            }
            Method::Tool => return self.tool_backup(&path),
            Method::Directory(spec) => {
                let dir = format!("/tmp/{}", unique_name("dir"));
                let script = format!(
                    "pg_dump -U immich -d immich -Fd -j {jobs} -Z {spec} -f {dir} && tar -C {dir} -cf - .; s=$?; rm -rf {dir}; exit $s"
                );
                let mut child = self
                    .exec(false, &["sh", "-c", &script])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let mut file = Hashing::create(&path);
                pump(child.stdout.take().unwrap(), &mut file);
                finished(child, "pg_dump -Fd");
                file.finish()
            }
        };
        Measured {
            time: start.elapsed(),
            size,
        }
    }

    /// `immich-db backup`, its dump renamed to `path`, its checksum and
    /// manifest removed. The tool reaches podman through its API socket, which
    /// root's systemd user manager serves: when another test restarts that
    /// manager meanwhile, the backup is tried again once it answers.
    fn tool_backup(&self, path: &Path) -> Measured {
        let mut attempts = 0;
        let (time, out) = loop {
            let start = Instant::now();
            let out = self
                .d
                .command(&self.config, &["--json", "backup"])
                .output()
                .unwrap();
            let time = start.elapsed();
            attempts += 1;
            if out.status.success() || attempts == 3 {
                break (time, out);
            }
            eprintln!(
                "immich-db backup failed; trying again once podman's service answers: {}",
                text(&out)
            );
            immich_db_testhost::wait_for("podman's API service", Duration::from_secs(300), || {
                let socket = self.host.runtime_dir.join("podman/podman.sock");
                self.host
                    .podman(["--url", &format!("unix://{}", socket.display()), "info"])
                    .status
                    .success()
                    .then_some(())
            });
        };
        assert!(out.status.success(), "immich-db backup: {}", text(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let dump = PathBuf::from(report["backup"]["dump"].as_str().unwrap());
        let size = std::fs::metadata(&dump).unwrap().len();
        std::fs::rename(&dump, path).unwrap();
        for entry in std::fs::read_dir(self.out.path()).unwrap().flatten() {
            let other = entry.path();
            if other
                .extension()
                .is_some_and(|e| e == "json" || e == "sha256")
            {
                std::fs::remove_file(other).unwrap();
            }
        }
        Measured { time, size }
    }

    /// A new empty database for a restore.
    fn new_database(&self) -> String {
        let name = unique_name("restore").replace('-', "_");
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        name
    }

    /// `pg_restore` in the container from its standard input, in one
    /// transaction, as `immich-db restore` runs it; the input is the file, or
    /// the file decompressed on the host.
    fn restore_stdin(&self, file: &Path, database: &str, host_zstd: bool) {
        let mut child = self
            .exec(
                true,
                &[
                    "pg_restore",
                    "-w",
                    "--single-transaction",
                    "--exit-on-error",
                    "-U",
                    "immich",
                    "-d",
                    database,
                ],
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = File::open(file).unwrap();
        if host_zstd {
            zstd::stream::copy_decode(input, &mut stdin).unwrap();
        } else {
            pump(input, &mut stdin);
        }
        drop(stdin);
        finished(child, "pg_restore");
    }

    /// `pg_restore` in the container reading the file itself from the
    /// backup directory, which the container mounts read-only: in one
    /// transaction, or with `-j N`. A file the host compressed is first
    /// decompressed by the host into that directory.
    fn restore_mounted(&self, file: &Path, database: &str, host_zstd: bool, parallel: bool) {
        let plain = if host_zstd {
            let plain = self
                .out
                .path()
                .join(format!("{}.dump", unique_name("plain")));
            let mut output = File::create(&plain).unwrap();
            zstd::stream::copy_decode(File::open(file).unwrap(), &mut output).unwrap();
            Some(plain)
        } else {
            None
        };
        let name = plain
            .as_deref()
            .unwrap_or(file)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let inside = format!("{MOUNTED}/{name}");
        let jobs = self.jobs.to_string();
        let mut args = vec!["pg_restore", "-w", "--exit-on-error"];
        if parallel {
            args.extend(["-j", &jobs]);
        } else {
            args.push("--single-transaction");
        }
        args.extend(["-U", "immich", "-d", database, &inside]);
        let out = self.exec(false, &args).output().unwrap();
        if let Some(plain) = plain {
            std::fs::remove_file(plain).unwrap();
        }
        assert!(out.status.success(), "pg_restore: {}", text(&out));
    }
}

/// Starts the deployment's PostgreSQL container as its unit would (without
/// systemd), and waits until it accepts connections over TCP.
fn start_postgres(host: &Host, d: &TestDeployment, backups: &Path) {
    let data = d.postgres_dir();
    std::fs::create_dir_all(&data).unwrap();
    let chattr = host
        .command("chattr")
        .arg("+C")
        .arg(&data)
        .output()
        .unwrap();
    assert!(chattr.status.success(), "chattr +C: {}", text(&chattr));
    d.create_secret(&d.pg_secret, &unique_name("Pw").replace('-', ""));
    host.podman_ok([
        "run",
        "-d",
        "--name",
        &d.pg,
        "-e",
        "POSTGRES_USER=immich",
        "-e",
        "POSTGRES_DB=immich",
        "-e",
        "POSTGRES_PASSWORD_FILE=/run/secrets/postgres-password",
        "-e",
        "POSTGRES_INITDB_ARGS=--data-checksums",
        "--secret",
        &format!("{},type=mount,target=postgres-password", d.pg_secret),
        "-v",
        &format!("{}:/var/lib/postgresql/data:Z", data.display()),
        // The backup directory, read-only, for restores that read a file.
        "-v",
        &format!("{}:{MOUNTED}:ro", backups.display()),
        "--shm-size",
        "128m",
        &host.postgres_image,
    ]);
    immich_db_testhost::wait_for("PostgreSQL to start", Duration::from_secs(120), || {
        host.podman(["exec", &d.pg, "pg_isready", "-q", "-h", "127.0.0.1"])
            .status
            .success()
            .then_some(())
    });
}

/// One restore case: which backup, and how.
#[derive(Debug, Clone, Copy)]
struct Restore {
    from: Method,
    how: How,
}

/// How a restore reads its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    /// Streamed into `pg_restore`'s standard input through `podman exec`, one
    /// transaction (as `immich-db restore` does now).
    Stdin,
    /// Read by `pg_restore` from the mounted backup directory, one transaction.
    Mounted,
    /// Read by `pg_restore -j N` from the mounted backup directory.
    MountedParallel,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let Some(host) = immich_db_testhost::host("backup benchmark") else {
        return;
    };
    let rounds = env_number("IMMICH_DB_BENCH_ROUNDS", ROUNDS).max(1);
    let restore_rounds = env_number("IMMICH_DB_BENCH_RESTORE_ROUNDS", RESTORE_ROUNDS);
    let assets = env_number("IMMICH_DB_BENCH_ASSETS", 300_000);
    let free = host
        .command("df")
        .args(["--output=avail", "-B1"])
        .arg(&host.btrfs)
        .output()
        .unwrap();
    let free: u64 = String::from_utf8_lossy(&free.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        free >= FREE_NEEDED,
        "the pool {} has {} free; the benchmark needs {}",
        host.btrfs.display(),
        mb(free),
        mb(FREE_NEEDED)
    );
    let jobs = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let zstd_command = Command::new("zstd")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());

    let d = TestDeployment::new(host, "bkbench");
    let out = host.btrfs_dir("bkbench-files");
    let backup_units = host.runtime_dir.join("systemd/user");
    let config = d.write_config(
        "config.toml",
        &format!(
            "{}[backup]\ndir = {:?}\nkeep = 100\nunit_dir = {:?}\n",
            d.config_text(&[], &[]),
            out.path().display().to_string(),
            backup_units.display().to_string()
        ),
    );
    let started = Instant::now();
    start_postgres(host, &d, out.path());
    let bench = Bench {
        host,
        d,
        config,
        out,
        jobs,
        zstd_command,
    };
    println!(
        "PostgreSQL started in {}; load average {}; {} cores",
        secs(started.elapsed()),
        load_average(),
        jobs
    );

    let start = Instant::now();
    let mut load = bench
        .exec(
            true,
            &[
                "psql",
                "-X",
                "-q",
                "-U",
                "immich",
                "-d",
                "immich",
                "-v",
                &format!("assets={assets}"),
                "-f",
                "-",
            ],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    load.stdin
        .take()
        .unwrap()
        .write_all(DATA.as_bytes())
        .unwrap();
    finished(load, "loading the data set");
    let sizes = bench.sql(
        "immich",
        "SELECT pg_size_pretty(pg_database_size('immich')) || ' (assets ' || \
         pg_size_pretty(pg_total_relation_size('asset')) || ', embeddings ' || \
         pg_size_pretty(pg_total_relation_size('smart_search')) || ')'",
    );
    let original = bench.fingerprint("immich");
    println!(
        "data set made in {}: {original}; database {sizes}",
        secs(start.elapsed())
    );

    let mut methods = vec![
        Method::Floor,
        Method::Immich,
        Method::Tool,
        Method::InContainer("zstd:1"),
        Method::InContainer("lz4"),
        Method::InContainer("1"),
        Method::HostZstd(1),
        Method::HostZstd(3),
    ];
    if bench.zstd_command {
        methods.push(Method::HostZstdCommand(1));
        methods.push(Method::HostZstdCommand(3));
    }
    methods.push(Method::Directory("zstd:1"));

    let mut results: Vec<Vec<Measured>> = vec![Vec::new(); methods.len()];
    for round in 0..rounds {
        print!("round {}:", round + 1);
        for k in 0..methods.len() {
            let i = (k + round) % methods.len();
            let m = bench.backup(methods[i]);
            print!(" {} {}", methods[i].file_name(), secs(m.time));
            std::io::stdout().flush().unwrap();
            results[i].push(m);
            // The last round's files stay for the restores; others go.
            let keep = round + 1 == rounds
                && matches!(
                    methods[i],
                    Method::Floor
                        | Method::Tool
                        | Method::InContainer("zstd:1")
                        | Method::HostZstd(1)
                );
            if !keep {
                let _ = std::fs::remove_file(bench.path(methods[i]));
            }
        }
        println!("; load average {}", load_average());
    }

    let floor = &results[0];
    let immich = &results[1];
    println!();
    println!(
        "{:<58} {:>9} {:>8} {:>9} {:>10} {:>10}",
        "backup (median of rounds)", "time", "size", "/ floor", "vs Immich", "size/Immich"
    );
    for (method, runs) in methods.iter().zip(&results) {
        let time = median_duration(runs.iter().map(|m| m.time).collect());
        let size = runs.last().unwrap().size;
        let to_floor = median(
            runs.iter()
                .zip(floor)
                .map(|(m, f)| m.time.as_secs_f64() / f.time.as_secs_f64())
                .collect(),
        );
        let speed_up = median(
            runs.iter()
                .zip(immich)
                .map(|(m, i)| i.time.as_secs_f64() / m.time.as_secs_f64())
                .collect(),
        );
        #[allow(clippy::cast_precision_loss)] // ratios to print
        let size_ratio = size as f64 / immich.last().unwrap().size as f64;
        println!(
            "{:<58} {:>9} {:>8} {:>9} {:>10} {:>10}",
            method.label(bench.jobs),
            secs(time),
            mb(size),
            format!("{to_floor:.2}x"),
            format!("{speed_up:.1}x"),
            format!("{size_ratio:.2}")
        );
    }
    println!("goals: time <= 1.5x the floor, >= 5x faster than Immich's job, size <= Immich's");

    if restore_rounds == 0 {
        return;
    }
    let case = |from, how| Restore { from, how };
    let cases = [
        case(Method::Floor, How::Stdin),
        case(Method::Floor, How::MountedParallel),
        case(Method::Tool, How::Stdin),
        case(Method::InContainer("zstd:1"), How::Stdin),
        case(Method::InContainer("zstd:1"), How::Mounted),
        case(Method::InContainer("zstd:1"), How::MountedParallel),
        case(Method::HostZstd(1), How::Stdin),
        case(Method::HostZstd(1), How::MountedParallel),
    ];
    let mut restores: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    for round in 0..restore_rounds {
        print!("restore round {}:", round + 1);
        for k in 0..cases.len() {
            let i = (k + round) % cases.len();
            let case = cases[i];
            let file = bench.path(case.from);
            let host_zstd = matches!(case.from, Method::HostZstd(_));
            let database = bench.new_database();
            let start = Instant::now();
            match case.how {
                How::Stdin => bench.restore_stdin(&file, &database, host_zstd),
                How::Mounted => bench.restore_mounted(&file, &database, host_zstd, false),
                How::MountedParallel => {
                    bench.restore_mounted(&file, &database, host_zstd, true);
                }
            }
            let time = start.elapsed();
            // The rows are all back, as they were.
            assert_eq!(
                bench.fingerprint(&database),
                original,
                "the restore of {} differs",
                case.from.file_name()
            );
            bench.sql(
                "postgres",
                &format!("DROP DATABASE {database} WITH (FORCE)"),
            );
            print!(
                " {}{} {}",
                case.from.file_name(),
                match case.how {
                    How::Stdin => "",
                    How::Mounted => " mounted",
                    How::MountedParallel => " mounted -j",
                },
                secs(time)
            );
            std::io::stdout().flush().unwrap();
            restores[i].push(time);
        }
        println!("; load average {}", load_average());
    }
    let plain = median_duration(restores[0].clone());
    println!();
    println!(
        "{:<90} {:>9} {:>8}",
        "restore into a new database (median of rounds; rows checked)", "time", "/ plain"
    );
    for (case, times) in cases.iter().zip(restores) {
        let time = median_duration(times);
        let host_zstd = matches!(case.from, Method::HostZstd(_));
        let how = match (case.how, host_zstd) {
            (How::Stdin, false) => "pg_restore from stdin, one transaction".to_owned(),
            (How::Stdin, true) => {
                "decompressed on the host into pg_restore's stdin, one transaction".to_owned()
            }
            (How::Mounted, _) => "pg_restore reads the mounted file, one transaction".to_owned(),
            (How::MountedParallel, false) => {
                format!("pg_restore -j {} reads the mounted file", bench.jobs)
            }
            (How::MountedParallel, true) => format!(
                "decompressed on the host into the mounted directory, pg_restore -j {}",
                bench.jobs
            ),
        };
        println!(
            "{:<90} {:>9} {:>8}",
            format!("{}: {how}", case.from.file_name()),
            secs(time),
            format!("{:.2}x", time.as_secs_f64() / plain.as_secs_f64())
        );
    }
}
