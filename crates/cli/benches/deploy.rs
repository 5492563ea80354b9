//! Figures of the deploy, on the real test host; prints them:
//!
//! - deploy from nothing (images present, directories absent) to verified, against
//!   the floor measured in the same run: the same two containers started directly
//!   with `podman run` and polled every 100 ms until PostgreSQL accepts a login and
//!   Valkey answers PING (target: deploy at most 1.3 times the floor). Each
//!   measurement starts once the disks are quiet, and which of the two goes
//!   first alternates from round to round. Deploy talks to podman's API
//!   service; where a socket starts that service on demand (and it stops after
//!   some seconds without clients), deploy is measured both with the
//!   service running and, when the host lets it go idle, with the service stopped
//!   so that deploy's first request starts it; with the time the service takes to
//!   start on its own;
//! - a deploy with nothing to change (target: under 1 s; container IDs and start
//!   times unchanged);
//! - verify on a healthy deployment (target: under 2 s).
//!
//! The host's disks are shared and their speed drifts from minute to minute,
//! more than the difference measured; so besides the ratio of the medians, the
//! bench prints the median of each round's ratio, a deploy against the floor
//! measured just before or after it.
//!
//! Run with `cargo bench -p immich-db --bench deploy`; with
//! `IMMICH_DB_BENCH_TIMINGS=1`, each deploy's steps (its `-v` output) are
//! printed too.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a benchmark that prints

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{TestDeployment, text};
use immich_db_testhost::{Cleanup, Host, unique_name};

/// Rounds of floor and deploys: the host drifts more between rounds than the
/// difference measured, so the medians need many. `IMMICH_DB_BENCH_ROUNDS`
/// gives another number (0 measures only the steady state).
const ROUNDS: usize = 11;

/// With this set to 1, each deploy's own account of its steps is printed.
const SHOW_TIMINGS_ENV: &str = "IMMICH_DB_BENCH_TIMINGS";

/// How often the floor looks whether both services are ready.
const POLL: Duration = Duration::from_millis(100);

/// Valkey's command in the unit (without systemd's `%%` escape): the server is
/// PID 1 and reads its `requirepass` line from a FIFO filled from the mounted
/// secret.
const VALKEY_COMMAND: &str = "f=/tmp/valkey-config; rm -f \"$f\"; mkfifo -m 600 \"$f\" \
    && exec 3<>\"$f\" 4<\"$f\" && rm -f \"$f\" \
    && { IFS= read -r p || [ -n \"$p\" ]; } </run/secrets/valkey-password \
    && printf \"requirepass %s\\n\" \"$p\" >&3 \
    && exec valkey-server - <&4 4<&- 3>&-";

/// Waits until what earlier measurements wrote and removed is on disk, so that no
/// measurement pays for the clean-up of the one before (removing a PostgreSQL
/// data directory leaves the pool and its loop device busy for seconds).
fn settle(host: &Host) {
    let _ = host.command("sync").status();
    let _ = host
        .command("btrfs")
        .args(["filesystem", "sync"])
        .arg(&host.btrfs)
        .output();
    std::thread::sleep(Duration::from_secs(1));
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// The same two containers, started by hand, polled every 100 ms from the host:
/// a PostgreSQL login over TCP with the password, and PING with the password.
fn floor(host: &'static Host) -> Duration {
    let name = unique_name("floor");
    let data = host.btrfs_dir("floor");
    let mut cleanup = Cleanup::new(host);
    let (subnet, gateway) = host.free_subnet();
    let network = format!("systemd-{name}");
    let (pg, vk) = (format!("{name}-pg"), format!("{name}-vk"));
    let (pg_secret, vk_secret) = (format!("{name}-pgpw"), format!("{name}-vkpw"));
    cleanup
        .secret(&pg_secret)
        .secret(&vk_secret)
        .network(&network)
        .container(&pg)
        .container(&vk);
    // Secrets exist beforehand, as in any deployment they outlive.
    let d = TestDeployment::new(host, "floorpw");
    let pg_password = format!("Floor{}", unique_name("p").replace('-', ""));
    let vk_password = format!("Floor{}", unique_name("v").replace('-', ""));
    d.create_secret(&pg_secret, &pg_password);
    d.create_secret(&vk_secret, &vk_password);
    let pg_dir = data.path().join("pg");
    let vk_dir = data.path().join("vk");

    settle(host);
    let start = Instant::now();
    std::fs::create_dir_all(&pg_dir).unwrap();
    std::fs::create_dir_all(&vk_dir).unwrap();
    for dir in [&pg_dir, &vk_dir] {
        assert!(
            host.command("chattr")
                .arg("+C")
                .arg(dir)
                .status()
                .unwrap()
                .success()
        );
    }
    host.podman_ok([
        "network",
        "create",
        "--subnet",
        &subnet,
        "--gateway",
        &gateway,
        &network,
    ]);
    host.podman_ok([
        "run",
        "-d",
        "--name",
        &pg,
        "--network",
        &network,
        "-e",
        "POSTGRES_USER=immich",
        "-e",
        "POSTGRES_DB=immich",
        "-e",
        "POSTGRES_PASSWORD_FILE=/run/secrets/postgres-password",
        "-e",
        "POSTGRES_INITDB_ARGS=--data-checksums",
        "--secret",
        &format!("{pg_secret},type=mount,target=postgres-password"),
        "-v",
        &format!("{}:/var/lib/postgresql/data:Z", pg_dir.display()),
        "--shm-size",
        "128m",
        &host.postgres_image,
    ]);
    host.podman_ok([
        "run",
        "-d",
        "--name",
        &vk,
        "--network",
        &network,
        "--secret",
        &format!("{vk_secret},type=mount,target=valkey-password,mode=0400"),
        "-v",
        &format!("{}:/data:Z", vk_dir.display()),
        &host.valkey_image,
        "sh",
        "-c",
        VALKEY_COMMAND,
    ]);
    let ip = |c: &str| {
        host.podman_ok([
            "inspect",
            "--format",
            &format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}"),
            c,
        ])
        .trim()
        .to_owned()
    };
    let (pg_ip, vk_ip) = (ip(&pg), ip(&vk));
    let (mut pg_ready, mut vk_ready) = (false, false);
    while !(pg_ready && vk_ready) {
        let round = Instant::now();
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the floor never got ready"
        );
        if !pg_ready {
            pg_ready = host
                .command("psql")
                .args([
                    "-h", &pg_ip, "-U", "immich", "-d", "immich", "-w", "-Atc", "SELECT 1",
                ])
                .env("PGPASSWORD", &pg_password)
                .env("PGCONNECT_TIMEOUT", "2")
                .output()
                .unwrap()
                .status
                .success();
        }
        if !vk_ready {
            let out = host
                .command("valkey-cli")
                .args(["-h", &vk_ip, "ping"])
                .env("REDISCLI_AUTH", &vk_password)
                .output()
                .unwrap();
            vk_ready = String::from_utf8_lossy(&out.stdout).trim() == "PONG";
        }
        if !(pg_ready && vk_ready) {
            std::thread::sleep(POLL.saturating_sub(round.elapsed()));
        }
    }
    let elapsed = start.elapsed();
    drop(cleanup);
    drop(d);
    elapsed
}

/// podman's API socket, and whether a systemd socket starts its service on
/// demand (then the service stops by itself when idle).
struct ApiService {
    socket: PathBuf,
    on_demand: bool,
}

impl ApiService {
    fn find(host: &Host) -> Self {
        let socket = host.runtime_dir.join("podman/podman.sock");
        let on_demand = host
            .systemctl(["is-active", "podman.socket"])
            .status
            .success();
        Self { socket, on_demand }
    }

    /// Asks the service for `/_ping`; returns how long the answer took.
    fn ping(&self) -> Duration {
        let start = Instant::now();
        let mut stream = UnixStream::connect(&self.socket).unwrap();
        stream
            .write_all(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        start.elapsed()
    }

    /// Makes sure the service runs (and will for the next seconds).
    fn start(&self) {
        let _ = self.ping();
    }

    /// Waits until the service has stopped by itself for want of clients
    /// (other clients on the host may keep it busy: then `false`).
    fn idle(&self, host: &Host) -> bool {
        if !self.on_demand {
            return false;
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if !host
                .systemctl(["is-active", "podman.service"])
                .status
                .success()
            {
                return true;
            }
            std::thread::sleep(POLL);
        }
        false
    }
}

/// A duration as `tracing` prints it (`1.23ms`, `456µs`, `2.1s`).
fn tracing_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ns" => value / 1e9,
        "µs" | "us" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

/// A deploy's own account of one step (`-v`: the step's span, closed with its
/// busy and idle time).
fn timing(stderr: &str, step: &str) -> Option<Duration> {
    stderr.lines().find_map(|line| {
        let rest = line.split_once(&format!("{step}:"))?.1;
        rest.contains("close").then_some(())?;
        let field = |name: &str| {
            rest.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .and_then(tracing_duration)
        };
        Some(field("time.busy=")? + field("time.idle=")?)
    })
}

/// `immich-db deploy` from nothing to verified, and how long it took to reach
/// podman; `None` when podman's service was to be idle and did not go idle.
fn deploy_from_nothing(
    host: &'static Host,
    api: &ApiService,
    running: bool,
) -> Option<(Duration, Duration)> {
    let d = TestDeployment::new(host, "bench");
    let config = d.config();
    settle(host);
    if running {
        api.start();
    } else if !api.idle(host) {
        return None;
    }
    let start = Instant::now();
    let out = d.command(&config, &["-v", "deploy"]).output().unwrap();
    let elapsed = start.elapsed();
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    if std::env::var_os(SHOW_TIMINGS_ENV).is_some_and(|v| v == "1") {
        eprintln!("{stderr}");
    }
    let connect = timing(&stderr, "connect to podman").unwrap_or_default();
    Some((elapsed, connect))
}

/// How long podman's service takes to answer its first request when the socket
/// has to start it.
fn service_start(host: &Host, api: &ApiService) -> Option<Duration> {
    api.idle(host).then(|| api.ping())
}

fn report(what: &str, deploys: &[Duration], floors: &[Duration], extra: &str) {
    let (d, f) = (median(deploys.to_vec()), median(floors.to_vec()));
    let mut ratios: Vec<f64> = deploys
        .iter()
        .zip(floors)
        .map(|(d, f)| d.as_secs_f64() / f.as_secs_f64())
        .collect();
    ratios.sort_by(f64::total_cmp);
    println!(
        "deploy from nothing to verified, {what}: {} (median of {}); floor (podman run + polling): {} (median of {}); ratio of the medians {:.2}; median of the rounds' ratios {:.2} (target <= 1.30){extra}",
        secs(d),
        deploys.len(),
        secs(f),
        floors.len(),
        d.as_secs_f64() / f.as_secs_f64(),
        ratios[ratios.len() / 2]
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let Some(host) = immich_db_testhost::host("deploy benchmark") else {
        return;
    };
    let api = ApiService::find(host);

    let mut floors = Vec::new();
    let mut warm = Vec::new();
    let mut cold = Vec::new();
    // The floors of the rounds where the idle case was measured.
    let mut cold_floors = Vec::new();
    let mut cold_connects = Vec::new();
    let mut starts = Vec::new();
    let rounds = std::env::var("IMMICH_DB_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ROUNDS);
    for round in 1..=rounds {
        // Which goes first alternates, so that neither always meets the host in
        // the state the other leaves it in.
        let (f, (w, w_connect)) = if round % 2 == 1 {
            let f = floor(host);
            (f, deploy_from_nothing(host, &api, true).unwrap())
        } else {
            let w = deploy_from_nothing(host, &api, true).unwrap();
            (floor(host), w)
        };
        print!(
            "round {round}: floor {}, deploy {} (podman service running; reaching it {})",
            secs(f),
            secs(w),
            secs(w_connect)
        );
        floors.push(f);
        warm.push(w);
        if api.on_demand {
            match deploy_from_nothing(host, &api, false) {
                Some((c, c_connect)) => {
                    print!(
                        ", deploy {} (podman service idle; reaching it {})",
                        secs(c),
                        secs(c_connect)
                    );
                    cold.push(c);
                    cold_floors.push(f);
                    cold_connects.push(c_connect);
                }
                None => print!("; podman's service never went idle (other clients)"),
            }
            if let Some(s) = service_start(host, &api) {
                print!("; the service alone starts in {}", secs(s));
                starts.push(s);
            }
        }
        println!();
    }
    if !warm.is_empty() {
        report("podman service running", &warm, &floors, "");
    }
    if !cold.is_empty() && !starts.is_empty() {
        report(
            "podman service idle",
            &cold,
            &cold_floors,
            &format!(
                "; of which reaching podman {} (its service starts in {} on this host)",
                secs(median(cold_connects)),
                secs(median(starts))
            ),
        );
    }

    steady_state(host, "root's user manager");
    match immich_db_testhost::rootless_host("deploy benchmark, rootless") {
        Some(rootless) => steady_state(rootless, "the rootless user's manager"),
        None => println!("rootless: not measured (the rootless side of the host is not set up)"),
    }
}

/// Deploy from nothing once, then the no-change deploy and verify, as `who`.
fn steady_state(host: &'static Host, who: &str) {
    println!("-- as {who}");
    let dep = TestDeployment::new(host, "bench");
    let start = Instant::now();
    dep.run_ok(&["deploy"]);
    println!("deploy from nothing: {}", secs(start.elapsed()));
    let before = [
        dep.container_identity(&dep.pg),
        dep.container_identity(&dep.vk),
    ];
    let mut no_change = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let out = dep.run_ok(&["deploy"]);
        no_change.push(start.elapsed());
        assert!(text(&out).contains("No changes"), "{}", text(&out));
    }
    let after = [
        dep.container_identity(&dep.pg),
        dep.container_identity(&dep.vk),
    ];
    println!(
        "deploy with nothing to change: {} (median of 5; target < 1 s); container IDs and start times unchanged: {}",
        secs(median(no_change)),
        before == after
    );
    assert_eq!(before, after);

    let mut verify = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        dep.run_ok(&["verify"]);
        verify.push(start.elapsed());
    }
    println!(
        "verify on a healthy deployment: {} (median of 5; target < 2 s)",
        secs(median(verify))
    );
}
