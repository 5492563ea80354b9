//! Soak of the deployment's recovery on the real test host: N
//! reboots (the systemd user manager stopped and started again, as at a
//! reboot) and N `podman kill`s of each service, as root's manager and as the
//! rootless user's. Prints, for each, how many came back healthy (their units
//! active and their containers' health checks passing) within 10 s of the
//! manager's start (of the kill), the median and the slowest time, and how
//! long the managers took to stop with the services (at a shutdown); a cycle
//! that is late or never comes back prints what systemd and podman said of
//! it, the manager's jobs while it waited, and the services' own output.
//!
//! It restarts the managers, which every other real-host test uses: run it
//! alone, with no other test on the host:
//!
//! ```sh
//! cargo bench -p immich-db --bench soak
//! ```
//!
//! `IMMICH_DB_SOAK_CYCLES` sets N (50 by default); `IMMICH_DB_SOAK_SIDES`
//! names the sides to soak (`root,rootless` by default). It exits 1 when a
//! cycle failed or was late.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a benchmark that prints

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{TestDeployment, text};
use immich_db_testhost::Host;

/// How soon after the manager's start (the kill) both services must be
/// healthy.
const TARGET: Duration = Duration::from_secs(10);

/// A shutdown longer than this is printed with the services' output (systemd
/// waits 90 s by default for a unit that does not stop).
const SLOW_SHUTDOWN: Duration = Duration::from_secs(10);

/// How long a cycle is waited for before it counts as not come back.
const GIVE_UP: Duration = Duration::from_secs(180);

/// How often the services are looked at while waited for.
const POLL: Duration = Duration::from_millis(100);

/// How the cycles of one kind went.
#[derive(Default)]
struct Tally {
    times: Vec<Duration>,
    failed: usize,
}

impl Tally {
    fn line(&self, what: &str) -> String {
        let mut sorted = self.times.clone();
        sorted.sort();
        let late = sorted.iter().filter(|t| **t > TARGET).count();
        let total = sorted.len() + self.failed;
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
        let slowest = sorted.last().copied().unwrap_or_default();
        format!(
            "{what}: {}/{total} healthy within {} s ({late} late, {} never back); median {:.2} s, slowest {:.2} s",
            sorted.len() - late,
            TARGET.as_secs(),
            self.failed,
            median.as_secs_f64(),
            slowest.as_secs_f64()
        )
    }

    fn all_good(&self) -> bool {
        self.failed == 0 && self.times.iter().all(|t| *t <= TARGET)
    }
}

/// The containers' IDs and health, as podman says.
fn containers(d: &TestDeployment) -> Vec<(String, String)> {
    let out = d.host.podman([
        "inspect",
        "--format",
        "{{.Id}} {{.State.Health.Status}}",
        &d.pg,
        &d.vk,
    ]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(id, health)| (id.to_owned(), health.to_owned()))
        .collect()
}

/// Waits until both units are active and both containers healthy, the
/// containers named in `replaced` being new ones; how long that took from
/// `since`, or `None` (after printing why) when it did not happen.
fn back(d: &TestDeployment, since: Instant, replaced: &[String], what: &str) -> Option<Duration> {
    let services = [format!("{}.service", d.pg), format!("{}.service", d.vk)];
    let mut jobs: Vec<String> = Vec::new();
    let mut asked_jobs = Instant::now();
    loop {
        let active = d.host.systemctl(["is-active", &services[0], &services[1]]);
        let states = String::from_utf8_lossy(&active.stdout).to_string();
        if states.lines().all(|l| l == "active") && states.lines().count() == 2 {
            let now = containers(d);
            let healthy = now.len() == 2
                && now.iter().all(|(id, health)| {
                    health == "healthy" && !replaced.iter().any(|old| old == id)
                });
            if healthy {
                let took = since.elapsed();
                if took > TARGET {
                    println!(
                        "  {what}: late ({:.2} s); the manager's jobs meanwhile:\n{}\n{}",
                        took.as_secs_f64(),
                        jobs.join("\n"),
                        d.logs_tail()
                    );
                }
                return Some(took);
            }
        }
        if asked_jobs.elapsed() >= Duration::from_secs(1) {
            asked_jobs = Instant::now();
            let listed = d.host.systemctl(["list-jobs", "--no-legend"]);
            jobs.push(format!(
                "  +{:.1} s: {}",
                since.elapsed().as_secs_f64(),
                text(&listed).trim().replace('\n', "\n          ")
            ));
        }
        if since.elapsed() > GIVE_UP {
            println!(
                "  {what}: not back within {} s\n{}\n  the manager's jobs meanwhile:\n{}\n{}",
                GIVE_UP.as_secs(),
                d.service_state(&services[0], &d.pg),
                jobs.join("\n"),
                d.service_state(&services[1], &d.vk)
            );
            return None;
        }
        std::thread::sleep(POLL);
    }
}

fn record(tally: &mut Tally, took: Option<Duration>) {
    match took {
        Some(t) => tally.times.push(t),
        None => tally.failed += 1,
    }
}

/// The cycles on one side of the host; whether all were in time.
fn soak(host: &'static Host, who: &str, cycles: usize) -> bool {
    println!("-- {who}: {cycles} cycles of each kind");
    let mut d = TestDeployment::new(host, "soak");
    d.keep_logs();
    d.run_ok(&["deploy"]);

    let mut reboots = Tally::default();
    let mut shutdowns = Vec::new();
    for i in 1..=cycles {
        let before: Vec<String> = containers(&d).into_iter().map(|(id, _)| id).collect();
        let stop = Instant::now();
        host.stop_user_manager();
        let stopped = stop.elapsed();
        if stopped > SLOW_SHUTDOWN {
            println!(
                "  reboot {i}: the manager took {:.2} s to stop\n{}",
                stopped.as_secs_f64(),
                d.logs_tail()
            );
        }
        shutdowns.push(stopped);
        let start = Instant::now();
        host.start_user_manager();
        record(
            &mut reboots,
            back(&d, start, &before, &format!("reboot {i}")),
        );
    }
    println!("{}", reboots.line(&format!("{who}, reboot")));
    shutdowns.sort();
    println!(
        "{who}, shutdown (the manager stopped with the services): median {:.2} s, slowest {:.2} s, {} over {} s",
        shutdowns
            .get(shutdowns.len() / 2)
            .copied()
            .unwrap_or_default()
            .as_secs_f64(),
        shutdowns.last().copied().unwrap_or_default().as_secs_f64(),
        shutdowns.iter().filter(|t| **t > SLOW_SHUTDOWN).count(),
        SLOW_SHUTDOWN.as_secs()
    );

    let mut kills = Vec::new();
    for (container, name) in [(d.pg.clone(), "PostgreSQL"), (d.vk.clone(), "Valkey")] {
        let mut tally = Tally::default();
        for i in 1..=cycles {
            let killed = d
                .host
                .podman_ok(["inspect", "--format", "{{.Id}}", &container])
                .trim()
                .to_owned();
            let start = Instant::now();
            d.host.podman_ok(["kill", &container]);
            record(
                &mut tally,
                back(&d, start, &[killed], &format!("kill {name} {i}")),
            );
        }
        println!("{}", tally.line(&format!("{who}, podman kill {name}")));
        kills.push(tally);
    }
    d.run_ok(&["verify"]);
    reboots.all_good() && kills.iter().all(Tally::all_good)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let cycles = std::env::var("IMMICH_DB_SOAK_CYCLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    let sides = std::env::var("IMMICH_DB_SOAK_SIDES").unwrap_or_else(|_| "root,rootless".into());
    let mut ok = true;
    for side in sides.split(',').map(str::trim) {
        let host = match side {
            "root" => immich_db_testhost::host("soak as root"),
            "rootless" => immich_db_testhost::rootless_host("soak as the rootless user"),
            other => panic!("IMMICH_DB_SOAK_SIDES: no side {other:?} (root, rootless)"),
        };
        let Some(host) = host else {
            println!("{side}: not soaked (that side of the host is not set up)");
            continue;
        };
        let who = if host.is_rootless() {
            "the rootless user's manager"
        } else {
            "root's user manager"
        };
        ok &= soak(host, who, cycles);
    }
    if !ok {
        println!("soak: some cycles failed or were late");
        std::process::exit(1);
    }
}
