//! Secrets on the real test host, on one deployment: `secrets list` and
//! `secrets show`; rotation of the PostgreSQL password, the Valkey password and
//! the JWT key, each checked from outside the tool; and rotations killed at
//! every step, which the next run finishes or undoes so that the database and
//! the secret agree.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

mod common;
mod ops;

use common::{ArgumentLog, TestDeployment, text};
use immich_db_testhost::{Host, require_host, require_rootless_host};
use ops::{code, json, run, run_ok};

/// What a rotation killed at a step leaves, and what the next one does.
struct Kill {
    /// The fault point it is killed at.
    point: &'static str,
    /// Whether the consumer then accepts the value stored in the secret.
    consumer_has_stored: bool,
    /// Whether the journal secret is there.
    journal: bool,
    /// What the next rotation says it did (`rotation.action`).
    next: &'static str,
}

/// PostgreSQL: journal, `ALTER ROLE`, the secret replaced, the journal removed.
const POSTGRES_KILLS: [Kill; 4] = [
    Kill {
        point: "rotate-pending",
        consumer_has_stored: true,
        journal: true,
        next: "rotated",
    },
    Kill {
        point: "rotate-consumer",
        consumer_has_stored: false,
        journal: true,
        next: "finished-interrupted",
    },
    Kill {
        point: "rotate-replaced",
        consumer_has_stored: true,
        journal: true,
        next: "finished-interrupted",
    },
    Kill {
        point: "rotate-cleared",
        consumer_has_stored: true,
        journal: false,
        next: "rotated",
    },
];

/// Valkey: journal, the secret replaced, Valkey restarted, the journal removed.
const VALKEY_KILLS: [Kill; 4] = [
    Kill {
        point: "rotate-pending",
        consumer_has_stored: true,
        journal: true,
        next: "rotated",
    },
    Kill {
        point: "rotate-replaced",
        consumer_has_stored: false,
        journal: true,
        next: "finished-interrupted",
    },
    Kill {
        point: "rotate-consumer",
        consumer_has_stored: true,
        journal: true,
        next: "finished-interrupted",
    },
    Kill {
        point: "rotate-cleared",
        consumer_has_stored: true,
        journal: false,
        next: "rotated",
    },
];

/// The JWT key: journal, the secret replaced, the journal removed.
const JWT_KILLS: [Kill; 3] = [
    Kill {
        point: "rotate-pending",
        consumer_has_stored: true,
        journal: true,
        next: "finished-interrupted",
    },
    Kill {
        point: "rotate-replaced",
        consumer_has_stored: true,
        journal: true,
        next: "finished-interrupted",
    },
    Kill {
        point: "rotate-cleared",
        consumer_has_stored: true,
        journal: false,
        next: "rotated",
    },
];

/// Whether a file below `dir` holds `value`.
fn found_below(dir: &std::path::Path, value: &str) -> Option<std::path::PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if meta.is_file()
            && !path
                .parent()
                .is_some_and(|p| p.ends_with("userdata/secrets"))
            && std::fs::read(&path)
                .is_ok_and(|b| b.windows(value.len()).any(|w| w == value.as_bytes()))
        {
            return Some(path);
        }
    }
    None
}

/// PostgreSQL over TCP from the host accepts `password`.
fn postgres_accepts(d: &TestDeployment, password: &str) -> bool {
    let out = d.psql(password, "SELECT 1");
    if out.status.success() {
        return true;
    }
    let message = text(&out);
    assert!(
        message.contains("password authentication failed"),
        "psql failed for another reason: {}",
        message.replace(password, "[password]")
    );
    false
}

fn valkey_accepts(d: &TestDeployment, password: &str) -> bool {
    let answer = d.valkey_ping(Some(password));
    answer == "PONG"
}

fn verify_ok(d: &TestDeployment, config: &std::path::Path) {
    let report = json(d, config, &["verify"]);
    assert_eq!(report["ok"], true, "{report:#}");
}

fn pending_exists(d: &TestDeployment, secret: &str) -> bool {
    d.host
        .podman(["secret", "exists", &format!("{secret}.rotating")])
        .status
        .success()
}

/// Runs `secrets rotate` with the fault hook at `point` and asserts that it
/// was killed there.
fn rotate_killed_at(d: &TestDeployment, config: &std::path::Path, secret: &str, point: &str) {
    let out = d
        .command(config, &["secrets", "rotate", secret])
        .env("IMMICH_DB_FAULT_AT", point)
        .output()
        .unwrap();
    assert!(common::killed(&out), "{point}: not killed: {}", text(&out));
}

/// A rotation of `secret` killed at `kill.point`: the state it leaves, as
/// `accepts` (the consumer asked from outside), `secrets list` and verify say;
/// then the next rotation.
fn killed_then_rerun(
    d: &TestDeployment,
    config: &std::path::Path,
    secret: &str,
    kill: &Kill,
    accepts: impl Fn(&str) -> bool,
) {
    let point = kill.point;
    let before = d.secret_value(secret).unwrap();
    rotate_killed_at(d, config, secret, point);
    let stored = d.secret_value(secret).unwrap();
    assert_eq!(
        accepts(&stored),
        kill.consumer_has_stored,
        "{secret} at {point}"
    );
    assert_eq!(
        pending_exists(d, secret),
        kill.journal,
        "{secret} at {point}"
    );
    let listed = json(d, config, &["secrets", "list"]);
    let entry = listed["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == secret)
        .unwrap();
    assert_eq!(
        entry["pending_rotation"], kill.journal,
        "{secret} at {point}"
    );
    // verify names the interrupted rotation, and fails where the consumer
    // refuses the stored value.
    let out = run(d, config, &["--json", "verify"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == format!("rotation {secret}").as_str());
    assert_eq!(
        check.is_some(),
        kill.journal,
        "{secret} at {point}: {report:#}"
    );
    if let Some(check) = check {
        assert_eq!(check["ok"], false, "{point}");
    }
    assert_eq!(
        code(&out),
        Some(i32::from(!kill.consumer_has_stored)),
        "{secret} at {point}: {report:#}"
    );

    let next = json(d, config, &["secrets", "rotate", secret]);
    assert_eq!(
        next["rotation"]["action"], kill.next,
        "{secret} at {point}: {next:#}"
    );
    let after = d.secret_value(secret).unwrap();
    assert_ne!(after, before, "{secret} at {point}");
    assert!(accepts(&after), "{secret} at {point}");
    assert!(!pending_exists(d, secret), "{secret} at {point}");
    if secret != d.jwt_secret {
        assert!(
            !accepts(&before),
            "{secret} at {point}: the old password still works"
        );
    }
}

#[test]
fn list_show_rotate_and_recover_interrupted_rotations() {
    rotations(require_host!());
}

#[test]
fn rootless_list_show_rotate_and_recover_interrupted_rotations() {
    rotations(require_rootless_host!());
}

fn rotations(host: &'static Host) {
    let mut d = TestDeployment::new(host, "rot");
    for secret in [
        d.pg_secret.clone(),
        d.vk_secret.clone(),
        d.jwt_secret.clone(),
    ] {
        d.cleanup.secret(&format!("{secret}.rotating"));
    }
    let lookalike = d.pg_secret.replace('-', "_");
    d.cleanup.secret(&lookalike);
    let config = d.config();
    run_ok(&d, &config, &["deploy"]);
    let first = ops::secret_values(&d);
    d.create_secret(&lookalike, "left over");

    // list: every secret, its policy, the look-alike; never a value.
    let out = run_ok(&d, &config, &["--json", "secrets", "list"]);
    ops::assert_no_secret(&text(&out), &first, "secrets list --json");
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let secrets = listed["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 3, "{listed:#}");
    for s in secrets {
        assert_eq!(s["exists"], true, "{listed:#}");
        assert_eq!(s["findings"].as_array().unwrap().len(), 0, "{listed:#}");
        assert_eq!(s["pending_rotation"], false, "{listed:#}");
    }
    // Immich reads the passwords; the JWT key it no longer reads, and the
    // list says so.
    let used: Vec<&serde_json::Value> = secrets.iter().map(|s| &s["used_by_immich"]).collect();
    assert_eq!(used, [true, true, false], "{listed:#}");
    assert!(
        secrets[2]["note"].as_str().unwrap().contains("JWT_SECRET"),
        "{listed:#}"
    );
    let out = run_ok(&d, &config, &["secrets", "list"]);
    let jwt_line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with(&d.jwt_secret))
        .unwrap()
        .to_owned();
    assert!(jwt_line.contains("not used by Immich"), "{jwt_line}");
    assert_eq!(secrets[0]["name"], d.pg_secret.as_str());
    assert_eq!(secrets[0]["near_duplicates"][0], lookalike.as_str());
    let out = run_ok(&d, &config, &["secrets", "list"]);
    ops::assert_no_secret(&text(&out), &first, "secrets list");
    assert!(text(&out).contains(&lookalike), "{}", text(&out));

    // show: refused into a pipe, printed on a terminal with a warning.
    let out = run(&d, &config, &["secrets", "show", &d.pg_secret]);
    assert_eq!(code(&out), Some(2), "{}", text(&out));
    ops::assert_no_secret(&text(&out), &first, "a refused secrets show");
    assert!(text(&out).contains("not a terminal"), "{}", text(&out));
    let shown = host
        .command("script")
        .args(["-q", "-e", "-c"])
        .arg(format!(
            "{} --config {} secrets show {}",
            common::binary(),
            config.display(),
            d.pg_secret
        ))
        .arg("/dev/null")
        .output()
        .unwrap();
    assert!(shown.status.success(), "secrets show on a terminal failed");
    let screen = text(&shown);
    assert!(
        screen.contains(&first[0]),
        "the value is not on the terminal"
    );
    assert!(screen.contains("warning"), "no warning on the terminal");
    let out = run(&d, &config, &["secrets", "show", "no-such-secret"]);
    assert_eq!(code(&out), Some(2), "{}", text(&out));
    assert!(text(&out).contains(&d.pg_secret), "{}", text(&out));

    // The PostgreSQL password: a new value the database takes and the old one
    // refused; no password in the arguments of a call it makes.
    let calls = ArgumentLog::new(host);
    let canary = format!("canary{}", d.name.replace('-', ""));
    let planted = host
        .command("podman")
        .env("PATH", calls.path())
        .args(["secret", "exists", &canary])
        .output()
        .unwrap();
    assert_eq!(planted.status.code(), Some(1), "{}", text(&planted));
    let out = d
        .command(&config, &["secrets", "rotate", &d.pg_secret])
        .env("PATH", calls.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let pg_new = d.secret_value(&d.pg_secret).unwrap();
    assert_ne!(pg_new, first[0]);
    assert!(pg_new.len() >= 32 && pg_new.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(postgres_accepts(&d, &pg_new));
    assert!(!postgres_accepts(&d, &first[0]));
    assert!(!pending_exists(&d, &d.pg_secret));
    // The check finds what is there: the canary, and the rotation's calls.
    assert_eq!(calls.found(std::slice::from_ref(&canary)), [0]);
    assert!(
        calls.calls().contains("podman --version"),
        "{}",
        calls.calls()
    );
    assert!(
        calls.found(&[first[0].clone(), pg_new.clone()]).is_empty(),
        "a password appeared in the arguments of a call"
    );
    ops::assert_no_secret(
        &text(&out),
        &[first[0].clone(), pg_new.clone()],
        "rotate's output",
    );
    let static_dir = host
        .podman_ok(["inspect", "--format", "{{.StaticDir}}", &d.pg])
        .trim()
        .to_owned();
    // No exec session of the rotation left the password in the container's
    // files. (Podman's copy of the secret mounted into the container,
    // `userdata/secrets/NAME`, holds it: the unit asks for it as a file.)
    let found = found_below(std::path::Path::new(&static_dir), &pg_new);
    assert!(found.is_none(), "the new password is in {found:?}");
    verify_ok(&d, &config);

    // The Valkey password.
    let out = run_ok(&d, &config, &["secrets", "rotate", &d.vk_secret]);
    let vk_new = d.secret_value(&d.vk_secret).unwrap();
    assert_ne!(vk_new, first[1]);
    assert!(valkey_accepts(&d, &vk_new));
    assert!(!valkey_accepts(&d, &first[1]));
    assert!(d.valkey_ping(None).contains("NOAUTH"));
    ops::assert_no_secret(
        &text(&out),
        &[first[1].clone(), vk_new.clone()],
        "rotate's output",
    );
    verify_ok(&d, &config);

    // The JWT key: replaced; Immich does not read it, so no claim that
    // sessions end.
    let out = run_ok(&d, &config, &["secrets", "rotate", &d.jwt_secret]);
    assert!(
        text(&out).contains("unused since early 2023"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("session"), "{}", text(&out));
    assert_ne!(d.secret_value(&d.jwt_secret).unwrap(), first[2]);
    assert!(!pending_exists(&d, &d.jwt_secret));

    // A name that is not the deployment's: bad input, nothing changed.
    let out = run(&d, &config, &["secrets", "rotate", &lookalike]);
    assert_eq!(code(&out), Some(2), "{}", text(&out));

    // Killed after each step: the state each kill leaves, exactly; then run
    // again, the consumer accepts exactly the stored value, the old one no
    // longer, and the journal is gone.
    for kill in &POSTGRES_KILLS {
        killed_then_rerun(&d, &config, &d.pg_secret, kill, |p| postgres_accepts(&d, p));
    }
    verify_ok(&d, &config);
    for kill in &VALKEY_KILLS {
        killed_then_rerun(&d, &config, &d.vk_secret, kill, |p| valkey_accepts(&d, p));
    }
    verify_ok(&d, &config);
    // The JWT key has no consumer to change: killed after its other steps, the
    // next rotate finishes what was begun.
    for kill in &JWT_KILLS {
        killed_then_rerun(&d, &config, &d.jwt_secret, kill, |_| true);
    }
    verify_ok(&d, &config);
}
