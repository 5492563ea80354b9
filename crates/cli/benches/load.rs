//! Figures of the tool at work on a deployment under load, on the
//! real test host, as root's manager and as the rootless user's: pgbench (4
//! clients) against PostgreSQL and a client writing to Valkey for a minute,
//! while a deploy with nothing to change, verify (10 times), status and a
//! backup run. Prints how long each took (target for verify: under 2 s),
//! pgbench's throughput, latency and failed transactions, Valkey's writes and
//! errors, and whether a service was restarted (target: none, no failure).
//! `IMMICH_DB_LOAD_SIDES` names the sides (`root,rootless` by default);
//! `IMMICH_DB_BENCH_TRACE=1` runs verify with `-v` and prints the slowest
//! run's trace (each podman and systemd call with its time).
//!
//! ```sh
//! cargo bench -p immich-db --bench load
//! ```

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a benchmark that prints

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/load/mod.rs"]
mod load;

use std::time::{Duration, Instant};

use common::{TestDeployment, text};
use immich_db_testhost::Host;
use load::{Load, identities};

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn timed(d: &TestDeployment, args: &[&str]) -> Duration {
    timed_with_output(d, args).0
}

/// How long the command took, and what it printed.
fn timed_with_output(d: &TestDeployment, args: &[&str]) -> (Duration, String) {
    let start = Instant::now();
    let out = d.run_ok(args);
    let took = start.elapsed();
    if args == ["deploy"] {
        assert!(text(&out).contains("No changes"), "{}", text(&out));
    }
    (took, text(&out))
}

/// Whether `IMMICH_DB_BENCH_TRACE` asks for the slowest verify's trace.
fn trace() -> bool {
    std::env::var_os("IMMICH_DB_BENCH_TRACE").is_some_and(|v| !v.is_empty() && v != "0")
}

fn measure(host: &'static Host, who: &str) -> bool {
    println!("-- as {who}");
    let d = TestDeployment::new(host, "loadbench");
    d.run_ok(&["deploy"]);
    let before = identities(&d);
    let mut load = Load::start(&d, 10, 60);
    let deploy = timed(&d, &["deploy"]);
    let args: &[&str] = if trace() {
        &["-v", "verify"]
    } else {
        &["verify"]
    };
    let runs: Vec<(Duration, String)> = (0..10).map(|_| timed_with_output(&d, args)).collect();
    if trace()
        && let Some((took, out)) = runs.iter().max_by_key(|(took, _)| *took)
    {
        println!("the slowest verify ({}), traced:\n{out}", secs(*took));
    }
    let mut verify: Vec<Duration> = runs.into_iter().map(|(took, _)| took).collect();
    let status = timed(&d, &["status"]);
    let backup = timed(&d, &["backup"]);
    let covered = load.running();
    let report = load.finish(&d);
    let restarted = before != identities(&d);
    verify.sort();
    println!(
        "under load: deploy with nothing to change {}; verify median {}, slowest {} (10 runs; target < 2 s); status {}; backup {}",
        secs(deploy),
        secs(verify[verify.len() / 2]),
        secs(verify[verify.len() - 1]),
        secs(status),
        secs(backup)
    );
    println!(
        "the load: pgbench {} transactions, {:.0} tps, latency {:.1} ms average, {} failed (pgbench {}); Valkey {} writes, {} errors, counter {}; the load lasted past the commands: {covered}; a service restarted: {restarted}",
        report.transactions,
        report.tps,
        report.latency_ms,
        report.failed_transactions,
        if report.pgbench_ok { "ok" } else { "FAILED" },
        report.valkey_writes,
        report.valkey_errors,
        report.valkey_counter
    );
    if !report.pgbench_ok {
        println!("{}", report.pgbench_output);
    }
    covered
        && !restarted
        && report.pgbench_ok
        && report.failed_transactions == 0
        && report.valkey_errors == 0
        && verify[verify.len() - 1] < Duration::from_secs(2)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let sides = std::env::var("IMMICH_DB_LOAD_SIDES").unwrap_or_else(|_| "root,rootless".into());
    let mut ok = true;
    for side in sides.split(',').map(str::trim) {
        match side {
            "root" => {
                if let Some(host) = immich_db_testhost::host("load benchmark") {
                    ok &= measure(host, "root's user manager");
                }
            }
            "rootless" => match immich_db_testhost::rootless_host("load benchmark, rootless") {
                Some(host) => ok &= measure(host, "the rootless user's manager"),
                None => {
                    println!(
                        "rootless: not measured (the rootless side of the host is not set up)"
                    );
                }
            },
            other => panic!("IMMICH_DB_LOAD_SIDES: no side {other:?} (root, rootless)"),
        }
    }
    if !ok {
        println!("load: a target was missed");
        std::process::exit(1);
    }
}
