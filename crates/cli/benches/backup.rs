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
//! - `immich-db backup` as it runs on this server (PostgreSQL 17: `pg_dump -Fc
//!   -Z zstd:1` in the container);
//! - `immich-db backup --method host-zstd`: what it does on PostgreSQL 14 and
//!   15, whose `pg_dump` has no zstd (`-Z0`, compressed on the host on every
//!   core as it streams).
//!
//! The table prints, for each, the three goals side by side: time against the
//! floor (at most 1.5x), speed-up against Immich's job (at least 5x), size
//! against Immich's file (at most 1.0); and whether the tool's backups meet
//! them.
//!
//! Every file written by the bench itself is read through SHA-256 on its way,
//! as the tool checksums its backups. Then restores, each checked against the
//! original with a fingerprint of every row: plain `pg_restore` of the floor's
//! file from standard input into a new database, in one transaction (the
//! reference), and `immich-db restore --force` of each of the tool's backups,
//! which replaces the database (file checked, loaded into a new database with
//! `pg_restore -j N` reading it in place, swapped in; verify follows, and fails
//! here only because the container is not run by a unit).
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
    /// `immich-db backup`, with this `--method` if any.
    Tool(Option<&'static str>),
}

impl Method {
    fn label(self) -> String {
        match self {
            Self::Floor => "floor: pg_dump -Fc -Z0 to the host".into(),
            Self::Immich => "Immich's job: pg_dumpall | gzip".into(),
            Self::Tool(None) => "immich-db backup (PostgreSQL 17: pg_dump -Z zstd:1)".into(),
            Self::Tool(Some(method)) => format!("immich-db backup --method {method}"),
        }
    }

    fn file_name(self) -> String {
        match self {
            Self::Floor => "floor.dump".into(),
            Self::Immich => "immich.sql.gz".into(),
            Self::Tool(None) => "tool.dump".into(),
            Self::Tool(Some(method)) => format!("tool-{method}"),
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
    /// SHA-256.
    fn dump_to(&self, args: &[&str], path: &Path) -> u64 {
        let mut cmd = self.exec(false, &["pg_dump", "-U", "immich", "-d", "immich"]);
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut file = Hashing::create(path);
        pump(stdout, &mut file);
        finished(child, "pg_dump");
        file.finish()
    }

    /// Runs one backup; returns its time and size. The bench's own files stay
    /// at [`Bench::path`]; the tool's backups stay where it wrote them, and
    /// their paths are returned.
    fn backup(&self, method: Method) -> (Measured, Option<PathBuf>) {
        let path = self.path(method);
        let _ = std::fs::remove_file(&path);
        let start = Instant::now();
        let size = match method {
            Method::Floor => self.dump_to(&["-Fc", "-Z0"], &path),
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
            Method::Tool(how) => {
                let (measured, dump) = self.tool_backup(how);
                return (measured, Some(dump));
            }
        };
        (
            Measured {
                time: start.elapsed(),
                size,
            },
            None,
        )
    }

    /// `immich-db backup [--method M]`; its dump stays in the backup
    /// directory. The tool reaches podman through its API socket, which
    /// root's systemd user manager serves: when another test restarts that
    /// manager meanwhile, the backup is tried again once it answers.
    fn tool_backup(&self, method: Option<&str>) -> (Measured, PathBuf) {
        let mut args = vec!["--json", "backup"];
        if let Some(method) = method {
            args.extend(["--method", method]);
        }
        let mut attempts = 0;
        let (time, out) = loop {
            let start = Instant::now();
            let out = self.d.command(&self.config, &args).output().unwrap();
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
        (Measured { time, size }, dump)
    }

    /// `immich-db restore --force FILE`: the deployment's database replaced
    /// by the backup. Its verify fails (no unit runs the container); the
    /// restore itself must have loaded the file.
    fn tool_restore(&self, file: &Path) -> String {
        let out = self
            .d
            .command(
                &self.config,
                &["--json", "restore", "--force", file.to_str().unwrap()],
            )
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("immich-db restore printed no report ({e}): {}", text(&out))
        });
        assert!(
            report["loaded"]["how"].is_string(),
            "immich-db restore: {}",
            text(&out)
        );
        report["loaded"]["how"].as_str().unwrap().to_owned()
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
    fn restore_stdin(&self, file: &Path, database: &str) {
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
        pump(File::open(file).unwrap(), &mut stdin);
        drop(stdin);
        finished(child, "pg_restore");
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

    let methods = [
        Method::Floor,
        Method::Immich,
        Method::Tool(None),
        Method::Tool(Some("host-zstd")),
    ];
    let mut results: Vec<Vec<Measured>> = vec![Vec::new(); methods.len()];
    let mut tool_files: Vec<Option<PathBuf>> = vec![None; methods.len()];
    for round in 0..rounds {
        print!("round {}:", round + 1);
        for k in 0..methods.len() {
            let i = (k + round) % methods.len();
            let (m, dump) = bench.backup(methods[i]);
            print!(" {} {}", methods[i].file_name(), secs(m.time));
            std::io::stdout().flush().unwrap();
            results[i].push(m);
            // The last round's files stay for the restores; others go.
            let last = round + 1 == rounds;
            match dump {
                Some(dump) if last => tool_files[i] = Some(dump),
                Some(dump) => remove_backup(&dump),
                None if last && methods[i] == Method::Floor => {}
                None => {
                    let _ = std::fs::remove_file(bench.path(methods[i]));
                }
            }
        }
        println!("; load average {}", load_average());
    }

    let floor = &results[0];
    let immich = &results[1];
    println!();
    println!(
        "{:<58} {:>9} {:>8} {:>9} {:>10} {:>11}",
        "backup (median of rounds)", "time", "size", "/ floor", "vs Immich", "size/Immich"
    );
    let mut met = true;
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
        let verdict = match method {
            Method::Tool(_) => {
                let ok = to_floor <= 1.5 && speed_up >= 5.0 && size_ratio <= 1.0;
                met &= ok;
                if ok { "  goals met" } else { "  GOALS MISSED" }
            }
            _ => "",
        };
        println!(
            "{:<58} {:>9} {:>8} {:>9} {:>10} {:>11}{verdict}",
            method.label(),
            secs(time),
            mb(size),
            format!("{to_floor:.2}x"),
            format!("{speed_up:.1}x"),
            format!("{size_ratio:.2}")
        );
    }
    println!(
        "goals: time <= 1.5x the floor, >= 5x faster than Immich's job, size <= Immich's: {}",
        if met { "met" } else { "MISSED" }
    );

    if restore_rounds > 0 {
        restores(&bench, &methods, &tool_files, restore_rounds, &original);
    }
    for dump in tool_files.into_iter().flatten() {
        remove_backup(&dump);
    }
}

/// Removes a backup of the tool: its dump, checksum and manifest.
fn remove_backup(dump: &Path) {
    let name = dump.file_name().unwrap().to_string_lossy().into_owned();
    let base = name
        .strip_suffix(".dump.zst")
        .or_else(|| name.strip_suffix(".dump"))
        .unwrap()
        .to_owned();
    let _ = std::fs::remove_file(dump);
    let _ = std::fs::remove_file(dump.with_file_name(format!("{name}.sha256")));
    let _ = std::fs::remove_file(dump.with_file_name(format!("{base}.json")));
}

/// Restores, side by side in each round: plain `pg_restore` of the floor's
/// file into a new database (the reference), and `immich-db restore --force`
/// of each of the tool's backups; the rows checked after each.
fn restores(
    bench: &Bench,
    methods: &[Method],
    tool_files: &[Option<PathBuf>],
    rounds: usize,
    original: &str,
) {
    // The plain reference first, then each tool backup.
    let mut cases: Vec<(String, Option<PathBuf>)> = vec![(
        "plain: pg_restore of floor.dump from stdin, one transaction".into(),
        None,
    )];
    for (method, file) in methods.iter().zip(tool_files) {
        if let Some(file) = file {
            cases.push((
                format!("immich-db restore --force of {}", method.file_name()),
                Some(file.clone()),
            ));
        }
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    let mut hows: Vec<String> = vec![String::new(); cases.len()];
    for round in 0..rounds {
        print!("restore round {}:", round + 1);
        for k in 0..cases.len() {
            let i = (k + round) % cases.len();
            let time = match &cases[i].1 {
                None => {
                    let database = bench.new_database();
                    let start = Instant::now();
                    bench.restore_stdin(&bench.path(Method::Floor), &database);
                    let time = start.elapsed();
                    assert_eq!(bench.fingerprint(&database), original, "plain restore");
                    bench.sql(
                        "postgres",
                        &format!("DROP DATABASE {database} WITH (FORCE)"),
                    );
                    time
                }
                Some(file) => {
                    let start = Instant::now();
                    hows[i] = bench.tool_restore(file);
                    let time = start.elapsed();
                    assert_eq!(
                        bench.fingerprint("immich"),
                        original,
                        "the restore of {} differs",
                        file.display()
                    );
                    time
                }
            };
            print!(" {} {}", i, secs(time));
            std::io::stdout().flush().unwrap();
            times[i].push(time);
        }
        println!("; load average {}", load_average());
    }
    let plain = median_duration(times[0].clone());
    println!();
    println!(
        "{:<70} {:>9} {:>8}",
        "restore (median of rounds; rows checked)", "time", "/ plain"
    );
    let mut met = true;
    for (i, ((label, _), runs)) in cases.iter().zip(times).enumerate() {
        let time = median_duration(runs);
        let ratio = time.as_secs_f64() / plain.as_secs_f64();
        if i > 0 {
            met &= ratio <= 1.0;
        }
        println!(
            "{label:<70} {:>9} {:>8}",
            secs(time),
            format!("{ratio:.2}x")
        );
        if !hows[i].is_empty() {
            println!("    ({})", hows[i]);
        }
    }
    println!(
        "goal: every restore of the tool at most as long as the plain one: {}",
        if met { "met" } else { "MISSED" }
    );
}
