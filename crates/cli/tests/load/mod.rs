//! A load on a test deployment while the tool works on it:
//! `pgbench` against PostgreSQL (run in its container, over the local socket)
//! and a client writing to Valkey (`valkey-cli` in its container, one `INCR`
//! after another, the password on its standard input), each reporting what
//! failed.

#![allow(dead_code)] // the test and the bench use different parts
#![allow(unreachable_pub, clippy::unwrap_used)] // test support; helpers fail the test by panicking

use std::io::Write as _;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::common::{TestDeployment, text};

/// What the load did.
#[derive(Debug)]
pub struct LoadReport {
    /// Transactions pgbench completed.
    pub transactions: u64,
    /// Transactions that failed (pgbench counts serialization and deadlock
    /// failures; an error that ends a client makes pgbench exit non-zero).
    pub failed_transactions: u64,
    /// pgbench's transactions per second.
    pub tps: f64,
    /// pgbench's average latency in milliseconds.
    pub latency_ms: f64,
    /// Whether pgbench itself succeeded (no client aborted).
    pub pgbench_ok: bool,
    /// Writes Valkey acknowledged.
    pub valkey_writes: u64,
    /// Answers to writes that were errors, or a writer that ended badly.
    pub valkey_errors: u64,
    /// The counter's value afterwards, as Valkey says.
    pub valkey_counter: u64,
    /// What pgbench printed, for a failed assertion.
    pub pgbench_output: String,
}

/// The two load generators, running.
pub struct Load {
    pgbench: Child,
    valkey: Child,
}

/// `podman exec` in the deployment's PostgreSQL container, over the local
/// socket (which trusts the server's own user): no password needed.
fn pgbench_command(d: &TestDeployment, args: &[&str]) -> std::process::Command {
    let mut cmd = d.host.command("podman");
    cmd.args(["exec", &d.pg, "pgbench", "-U", "immich", "-d", "immich"])
        .args(args);
    cmd
}

impl Load {
    /// Creates pgbench's tables (scale `scale`), then starts both generators
    /// for about `seconds`.
    pub fn start(d: &TestDeployment, scale: u32, seconds: u32) -> Self {
        let out = pgbench_command(d, &["-i", "-q", "-s", &scale.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "pgbench -i: {}", text(&out));
        let pgbench = pgbench_command(d, &["-n", "-c", "4", "-j", "2", "-T", &seconds.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // One INCR every 5 ms: about 200 writes a second.
        let repeat = (u64::from(seconds) * 1000 / 5).to_string();
        let password = d.secret_value(&d.vk_secret).unwrap();
        let mut valkey = d
            .host
            .command("podman")
            .args(["exec", "-i", &d.vk, "sh", "-c"])
            .arg(format!(
                "IFS= read -r REDISCLI_AUTH && export REDISCLI_AUTH && exec valkey-cli --no-auth-warning -r {repeat} -i 0.005 INCR load:counter"
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = valkey.stdin.take().unwrap();
        stdin.write_all(format!("{password}\n").as_bytes()).unwrap();
        drop(stdin);
        // Both have connected before the caller starts its work.
        std::thread::sleep(Duration::from_secs(2));
        Self { pgbench, valkey }
    }

    /// Whether both generators still run.
    pub fn running(&mut self) -> bool {
        self.pgbench.try_wait().unwrap().is_none() && self.valkey.try_wait().unwrap().is_none()
    }

    /// Waits for both to end and says what they did.
    pub fn finish(self, d: &TestDeployment) -> LoadReport {
        let pgbench = self.pgbench.wait_with_output().unwrap();
        let valkey = self.valkey.wait_with_output().unwrap();
        let output = text(&pgbench);
        let first_word = |prefix: &str| -> Option<&str> {
            output.lines().find_map(|line| {
                let rest = line.trim().strip_prefix(prefix)?;
                rest.split_whitespace().next()
            })
        };
        let number = |prefix: &str| -> Option<f64> { first_word(prefix)?.parse().ok() };
        // "12345" with -T, "12345/12345" with -t.
        let count =
            |prefix: &str| -> Option<u64> { first_word(prefix)?.split('/').next()?.parse().ok() };
        let (mut writes, mut errors) = (0, 0);
        for line in String::from_utf8_lossy(&valkey.stdout).lines() {
            if line.trim().parse::<u64>().is_ok() {
                writes += 1;
            } else if !line.trim().is_empty() {
                errors += 1;
            }
        }
        if !valkey.status.success() || !valkey.stderr.is_empty() {
            errors += 1;
        }
        let password = d.secret_value(&d.vk_secret).unwrap();
        let mut get = d
            .host
            .command("podman")
            .args(["exec", "-i", &d.vk, "sh", "-c"])
            .arg("IFS= read -r REDISCLI_AUTH && export REDISCLI_AUTH && exec valkey-cli --no-auth-warning GET load:counter")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        get.stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        let counter = get.wait_with_output().unwrap();
        LoadReport {
            transactions: count("number of transactions actually processed:").unwrap_or(0),
            failed_transactions: count("number of failed transactions:").unwrap_or(0),
            tps: number("tps =").unwrap_or(0.0),
            latency_ms: number("latency average =").unwrap_or(0.0),
            pgbench_ok: pgbench.status.success(),
            valkey_writes: writes,
            valkey_errors: errors,
            valkey_counter: String::from_utf8_lossy(&counter.stdout)
                .trim()
                .parse()
                .unwrap_or(0),
            pgbench_output: output,
        }
    }
}

/// The two services' restart counts and their containers' IDs and start
/// times: what "restarted nothing" compares.
pub fn identities(d: &TestDeployment) -> Vec<String> {
    let mut all = Vec::new();
    for (container, unit) in [
        (&d.pg, format!("{}.service", d.pg)),
        (&d.vk, format!("{}.service", d.vk)),
    ] {
        all.push(d.container_identity(container));
        all.push(
            d.host
                .systemctl_ok(["show", "-p", "NRestarts,ActiveEnterTimestamp", &unit])
                .trim()
                .to_owned(),
        );
    }
    all
}
