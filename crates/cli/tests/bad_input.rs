//! Malformed configurations and missing host pieces: each gives exit 2 or 3, a
//! message that names the key or the line, and leaves the host unchanged (no
//! unit file, directory, secret or network).

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

mod common;

use common::{TestDeployment, text};
use immich_db_testhost::require_host;

struct Case {
    what: &'static str,
    text: String,
    exit: i32,
    /// Something the message must contain: the key or `file:line`.
    mentions: String,
}

#[test]
fn malformed_configurations_change_nothing() {
    let host = require_host!();
    let d = TestDeployment::new(host, "bad");
    let missing_pool = d.pool.path().join("not-there");
    let ext4 = host.ext4_dir("bad");
    let cfg = |replace: &[(&str, &str, Option<&str>)]| d.config_text(replace, &[]);
    let line_of =
        |text: &str, needle: &str| text.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
    let mut cases = Vec::new();
    let mut case = |what, text: String, exit, mentions: String| {
        cases.push(Case {
            what,
            text,
            exit,
            mentions,
        });
    };

    let t = format!("{}\n[network\n", cfg(&[]));
    let line = t.lines().count();
    case("syntax error", t, 2, format!("config.toml:{line}"));
    let t = d.config_text(&[], &[("network", "subnett = \"10.0.0.0/24\"")]);
    let line = line_of(&t, "subnett");
    case("unknown key", t, 2, format!("config.toml:{line}"));
    let t = d.config_text(&[], &[("postgres", "password = \"hunter2\"")]);
    let line = line_of(&t, "password =");
    case("unknown key password", t, 2, format!("config.toml:{line}"));
    let t = format!("{}[unknown]\nkey = 1\n", cfg(&[]));
    let line = line_of(&t, "[unknown]");
    case(
        "unknown section",
        t.clone(),
        2,
        format!("config.toml:{line}:2"),
    );
    case("unknown section", t, 2, "unknown section `unknown`".into());
    let t = cfg(&[("valkey", "require_password", None)]) + "";
    let t = t.replace("[valkey]\n", "[valkey]\nrequire_password = \"yes\"\n");
    case("wrong type", t, 2, "require_password".into());

    for (what, section, key, value) in [
        ("network name with a space", "network", "name", "\"my net\""),
        ("network name with a slash", "network", "name", "\"a/b\""),
        (
            "subnet without prefix",
            "network",
            "subnet",
            "\"10.213.0.0\"",
        ),
        (
            "subnet not an address",
            "network",
            "subnet",
            "\"10.213.300.0/24\"",
        ),
        (
            "subnet prefix too long",
            "network",
            "subnet",
            "\"10.213.0.0/33\"",
        ),
        (
            "subnet with host bits",
            "network",
            "subnet",
            "\"10.213.0.9/24\"",
        ),
        (
            "gateway outside the subnet",
            "network",
            "gateway",
            "\"192.0.2.1\"",
        ),
        (
            "gateway not an address",
            "network",
            "gateway",
            "\"gateway\"",
        ),
        ("relative pool", "storage", "pool", "\"pool\""),
        ("pool with ..", "storage", "pool", "\"/mnt/../pool\""),
        (
            "directory escaping the pool",
            "storage",
            "valkey_dir",
            "\"../valkey\"",
        ),
        (
            "two services share a directory",
            "storage",
            "valkey_dir",
            "\"db/postgres\"",
        ),
        (
            "nested directories",
            "storage",
            "ml_cache_dir",
            "\"library/ml\"",
        ),
        (
            "invalid image reference",
            "postgres",
            "image",
            "\"Postgres Image\"",
        ),
        (
            "image with an empty tag",
            "valkey",
            "image",
            "\"valkey/valkey:\"",
        ),
        (
            "container name with a space",
            "postgres",
            "container_name",
            "\"pg immich\"",
        ),
        (
            "container name with a slash",
            "valkey",
            "container_name",
            "\"a/b\"",
        ),
        (
            "two services share a container name",
            "valkey",
            "container_name",
            "PG",
        ),
        ("user with a dash", "postgres", "user", "\"im-mich\""),
        ("invalid shm size", "postgres", "shm_size", "\"lots\""),
        (
            "secret name with a comma",
            "postgres",
            "password_secret",
            "\"a,b\"",
        ),
        (
            "two secrets share a name",
            "immich",
            "jwt_secret",
            "PGSECRET",
        ),
        ("unknown scope", "systemd", "scope", "\"global\""),
        (
            "relative unit directory",
            "systemd",
            "unit_dir",
            "\"units\"",
        ),
        (
            "unknown storage type",
            "postgres",
            "storage_type",
            "\"nvme\"",
        ),
        (
            "a database published beyond loopback",
            "postgres",
            "publish",
            "\"0.0.0.0:5432\"",
        ),
        (
            "a fixed address outside the subnet",
            "valkey",
            "ip",
            "\"192.0.2.7\"",
        ),
        (
            "a podman option the tool sets",
            "valkey",
            "podman_args",
            "[\"--network=host\"]",
        ),
        (
            "automatic updates of a local image",
            "valkey",
            "auto_update",
            "true",
        ),
    ] {
        let value = value
            .replace("PGSECRET", &format!("{:?}", d.pg_secret))
            .replace("PG", &format!("{:?}", d.pg));
        let t = if d
            .entries()
            .iter()
            .any(|(s, k, _)| *s == section && *k == key)
        {
            cfg(&[(section, key, Some(&value))])
        } else {
            d.config_text(&[], &[(section, &format!("{key} = {value}"))])
        };
        let header = line_of(&t, &format!("[{section}]"));
        let line = header
            + t.lines()
                .skip(header)
                .position(|l| l.starts_with(&format!("{key} = {value}")))
                .unwrap()
            + 1;
        case(
            what,
            t,
            2,
            format!("config.toml:{line}:1 ([{section}] {key})"),
        );
    }

    // A secret as a plain environment variable: refused at its own line, the
    // value not repeated.
    let t = d.config_text(
        &[],
        &[("postgres", "environment = { SMTP_PASSWORD = \"hunter2\" }")],
    );
    let line = line_of(&t, "environment = { SMTP");
    case(
        "a secret in an environment variable",
        t,
        2,
        format!("config.toml:{line}:17 ([postgres] environment.SMTP_PASSWORD)"),
    );

    // Host preconditions (exit 3).
    let p = format!("{:?}", missing_pool.display().to_string());
    case(
        "pool missing",
        cfg(&[("storage", "pool", Some(&p))]),
        3,
        missing_pool.display().to_string(),
    );
    let p = format!("{:?}", ext4.path().display().to_string());
    case(
        "pool not on BTRFS",
        cfg(&[("storage", "pool", Some(&p))]),
        3,
        "not BTRFS".into(),
    );
    case(
        "image missing",
        cfg(&[(
            "valkey",
            "image",
            Some("\"localhost/idbt-no-such/valkey:1\""),
        )]),
        3,
        "localhost/idbt-no-such/valkey:1".into(),
    );

    assert!(cases.len() >= 25, "{} cases", cases.len());
    for c in &cases {
        let config = d.write_config("config.toml", &c.text);
        for command in ["deploy", "plan"] {
            let out = d.command(&config, &[command]).output().unwrap();
            let message = text(&out);
            assert_eq!(
                out.status.code(),
                Some(c.exit),
                "{}: {command}: {message}\n{}",
                c.what,
                c.text
            );
            assert!(
                message.contains(&c.mentions),
                "{}: the message does not mention {:?}:\n{message}",
                c.what,
                c.mentions
            );
            assert!(
                message.contains("help:"),
                "{}: no help in:\n{message}",
                c.what
            );
            assert!(!message.contains("hunter2"), "{}: {message}", c.what);
            let left = d.leftovers();
            assert!(left.is_empty(), "{}: {command} left {left:?}", c.what);
        }
        // --json carries the same error.
        let out = d.command(&config, &["--json", "deploy"]).output().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["ok"], false, "{}", c.what);
    }
    // The ext4 directory is untouched too.
    assert_eq!(std::fs::read_dir(ext4.path()).unwrap().count(), 0);

    // With the explicit flag, plan accepts a pool off BTRFS (and says so).
    let p = format!("{:?}", ext4.path().display().to_string());
    let config = d.write_config("config.toml", &cfg(&[("storage", "pool", Some(&p))]));
    let out = d
        .command(&config, &["plan", "--allow-non-btrfs"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("not BTRFS"), "{}", text(&out));
    assert!(d.leftovers().is_empty());
}

#[test]
fn a_second_deploy_at_once_is_refused() {
    let host = require_host!();
    let d = TestDeployment::new(host, "lock");
    let lock = host.runtime_dir.join(format!("immich-db.{}.lock", d.name));
    // Another process holds the deployment's lock.
    let mut holder = host
        .command("flock")
        .arg("--exclusive")
        .arg(&lock)
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    immich_db_testhost::wait_for(
        "the lock to be held",
        std::time::Duration::from_secs(10),
        || {
            let out = host
                .command("flock")
                .arg("--nonblock")
                .arg(&lock)
                .arg("true")
                .output()
                .unwrap();
            (!out.status.success()).then_some(())
        },
    );
    let out = d.run(&["deploy"]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("another immich-db deploy"),
        "{}",
        text(&out)
    );
    assert!(d.leftovers().is_empty(), "{:?}", d.leftovers());
}
