//! Figures of the deploy, on the real test host; prints them:
//!
//! - deploy from nothing (images present, directories absent) to verified, against
//!   the floor measured in the same run: the same two containers started directly
//!   with `podman run` and polled every 100 ms until PostgreSQL accepts a login and
//!   Valkey answers PING (target: deploy at most 1.3 times the floor);
//! - a deploy with nothing to change (target: under 1 s; container IDs and start
//!   times unchanged);
//! - verify on a healthy deployment (target: under 2 s).
//!
//! Run with `cargo bench -p immich-db --bench deploy`.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a benchmark that prints

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{TestDeployment, text};
use immich_db_testhost::{Cleanup, Host, unique_name};

const ROUNDS: usize = 3;

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// The same two containers, started by hand, polled every 100 ms.
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
        "POSTGRES_INITDB_ARGS=--data-checksums",
        "--secret",
        &format!("{pg_secret},type=env,target=POSTGRES_PASSWORD"),
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
        &format!("{vk_secret},type=env,target=REDISCLI_AUTH"),
        "-v",
        &format!("{}:/data:Z", vk_dir.display()),
        &host.valkey_image,
        "sh",
        "-c",
        "printf 'requirepass %s\\n' \"$REDISCLI_AUTH\" | exec valkey-server -",
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
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let elapsed = start.elapsed();
    drop(cleanup);
    drop(d);
    elapsed
}

/// `immich-db deploy` from nothing to verified.
fn deploy_from_nothing(host: &'static Host) -> Duration {
    let d = TestDeployment::new(host, "bench");
    let config = d.config();
    let start = Instant::now();
    let out = d.command(&config, &["deploy"]).output().unwrap();
    let elapsed = start.elapsed();
    assert!(out.status.success(), "{}", text(&out));
    elapsed
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let Some(host) = immich_db_testhost::host("deploy benchmark") else {
        return;
    };

    let mut floors = Vec::new();
    let mut deploys = Vec::new();
    for round in 1..=ROUNDS {
        let f = floor(host);
        let d = deploy_from_nothing(host);
        println!("round {round}: floor {}, deploy {}", secs(f), secs(d));
        floors.push(f);
        deploys.push(d);
    }
    let (f, d) = (median(floors), median(deploys));
    let ratio = d.as_secs_f64() / f.as_secs_f64();
    println!(
        "deploy from nothing to verified: {} (median of {ROUNDS}); floor (podman run + polling): {}; ratio {ratio:.2} (target <= 1.30)",
        secs(d),
        secs(f)
    );

    let dep = TestDeployment::new(host, "bench");
    dep.run_ok(&["deploy"]);
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
