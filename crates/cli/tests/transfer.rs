//! The way over, on the real test host: a deployment with rows and a vector
//! column, backed up; a second PostgreSQL in a container of the test's own
//! (on a network the test created, published on loopback only) set up as
//! CloudNativePG sets up a cluster's database (an owner that is not a
//! superuser, the extensions created beforehand); `restore --target` with the
//! password on standard input or in a file; the rows read back with psql.
//! And what it refuses, with the target unchanged: a password in the URL, a
//! wrong password, a target out of reach, a corrupt backup, a `pg_restore`
//! older than the backup, a target that is not empty without --force. No
//! podman call it makes holds the password in its arguments or environment.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

mod common;
mod ops;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{TestDeployment, binary, text};
use immich_db_testhost::{Host, require_host, require_rootless_host, wait_for};
use ops::{code, config_with_backup, json, run_ok, sql};

/// The target role's password: with `:` and `\`, which a password file
/// escapes.
const TARGET_PASSWORD: &str = "tgt:Pw\\K9move";
/// The target's superuser's password (set up by the test alone).
const SUPERUSER_PASSWORD: &str = "superTargetPw31";

/// The second PostgreSQL, standing in for the cluster's.
struct TargetDb {
    container: String,
    port: u16,
}

/// Starts the target on a network of its own, published on loopback only,
/// with the role and database CloudNativePG would make and `vector` created
/// by the superuser, as its `postInitApplicationSQL` does.
fn start_target(d: &mut TestDeployment) -> TargetDb {
    let host = d.host;
    let network = format!("{}-tnet", d.name);
    let (subnet, _) = host.free_subnet();
    d.cleanup.network(&network);
    host.podman_ok(["network", "create", "--subnet", &subnet, &network]);
    let secret = format!("{}-tsu", d.name);
    d.cleanup.secret(&secret);
    d.create_secret(&secret, SUPERUSER_PASSWORD);
    let container = format!("{}-target", d.name);
    d.cleanup.container(&container);
    host.podman_ok([
        "run",
        "-d",
        "--name",
        &container,
        "--network",
        &network,
        "-p",
        "127.0.0.1::5432",
        "--secret",
        &format!("{secret},type=env,target=POSTGRES_PASSWORD"),
        "-e",
        "POSTGRES_USER=postgres",
        &host.postgres_image,
    ]);
    wait_for("the target PostgreSQL", Duration::from_secs(90), || {
        host.podman(["exec", &container, "pg_isready", "-q", "-h", "127.0.0.1"])
            .status
            .success()
            .then_some(())
    });
    let setup = format!(
        "CREATE ROLE immich LOGIN PASSWORD '{TARGET_PASSWORD}';\n\
         CREATE DATABASE immich OWNER immich;\n\
         \\c immich\n\
         CREATE EXTENSION vector;\n"
    );
    superuser_sql(host, &container, &setup);
    let published = host.podman_ok(["port", &container, "5432/tcp"]);
    let port = published
        .trim()
        .strip_prefix("127.0.0.1:")
        .unwrap_or_else(|| panic!("published elsewhere than loopback: {published}"))
        .parse()
        .unwrap();
    TargetDb { container, port }
}

/// SQL run by the target's superuser over the container's local socket, the
/// statements on standard input.
fn superuser_sql(host: &Host, container: &str, statements: &str) {
    let mut child = host
        .command("podman")
        .args([
            "exec",
            "-i",
            container,
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .args(["-U", "postgres", "-d", "postgres"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(statements.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

/// psql from the host to the target over loopback, as its role: the oracle.
fn target_sql(target: &TargetDb, statement: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-X",
            "-w",
            "-h",
            "127.0.0.1",
            "-p",
            &target.port.to_string(),
        ])
        .args([
            "-U",
            "immich",
            "-d",
            "immich",
            "-v",
            "ON_ERROR_STOP=1",
            "-Atc",
            statement,
        ])
        .env("PGPASSWORD", TARGET_PASSWORD)
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .unwrap();
    assert!(out.status.success(), "psql {statement:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A `podman` ahead of the real one on the PATH that records the arguments
/// and environment of every call, then runs the real one.
struct PodmanLog {
    dir: tempfile::TempDir,
    path: String,
}

impl PodmanLog {
    fn new(host: &Host) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let real = String::from_utf8(
            Command::new("sh")
                .args(["-c", "command -v podman"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let log = dir.path().join("calls.log");
        let script = dir.path().join("podman");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n{{ printf 'ARGV:'; printf ' %s' \"$@\"; printf '\\n'; env | sed 's/^/ENV: /'; }} >> {}\nexec {} \"$@\"\n",
                log.display(),
                real.trim()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(&log, "").unwrap();
        host.give(dir.path());
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Self { dir, path }
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("calls.log")).unwrap()
    }
}

/// `immich-db restore ARGS` as the host's user, with `stdin` on its standard
/// input and the recording `podman` first on its PATH.
fn restore(
    d: &TestDeployment,
    config: &Path,
    log: &PodmanLog,
    args: &[&str],
    stdin: &str,
) -> Output {
    let mut cmd = d.host.command("env");
    cmd.arg(format!("PATH={}", log.path))
        .arg(d.host.executable(Path::new(binary())))
        .arg("--config")
        .arg(config)
        .arg("restore")
        .args(args)
        .env_remove("IMMICH_DB_FAULT_AT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Asserts a refusal: its exit code, words of its message, no password in
/// what it said, and the target as it was.
fn refused(out: &Output, exit: i32, words: &[&str], target: &TargetDb, tables: &str) {
    let said = text(out);
    assert_eq!(code(out), Some(exit), "{said}");
    for word in words {
        assert!(said.contains(word), "{word:?} not in: {said}");
    }
    assert!(
        !said.contains(TARGET_PASSWORD),
        "the password is in: {said}"
    );
    assert_eq!(
        target_sql(
            target,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        tables
    );
}

/// A copy of the backup in a directory of its own, its manifest changed by
/// `manifest` and its dump by `dump`.
fn altered_copy(
    host: &Host,
    dump: &Path,
    manifest: impl Fn(&mut serde_json::Value),
    dump_bytes: impl Fn(&mut Vec<u8>),
) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(dump.file_name().unwrap());
    let mut bytes = std::fs::read(dump).unwrap();
    dump_bytes(&mut bytes);
    std::fs::write(&copy, &bytes).unwrap();
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dump.with_extension("json")).unwrap())
            .unwrap();
    manifest(&mut m);
    std::fs::write(copy.with_extension("json"), m.to_string()).unwrap();
    host.give(dir.path());
    (dir, copy)
}

#[test]
fn a_backup_moves_to_another_postgresql() {
    migrate(require_host!());
}

#[test]
fn a_backup_moves_to_another_postgresql_rootless() {
    migrate(require_rootless_host!());
}

fn migrate(host: &'static Host) {
    let mut d = TestDeployment::new(host, "mv");
    let config = config_with_backup(&d, "");
    run_ok(&d, &config, &["deploy"]);

    // Rows with a vector column, a sequence, a comment and a second table.
    sql(
        &d,
        "CREATE EXTENSION IF NOT EXISTS vector; \
         CREATE TABLE albums (id serial PRIMARY KEY, name text NOT NULL); \
         CREATE TABLE assets (id int PRIMARY KEY, album int REFERENCES albums, path text NOT NULL, embedding vector(3)); \
         COMMENT ON TABLE assets IS 'the photos'; \
         INSERT INTO albums (name) VALUES ('summer'), ('winter'); \
         INSERT INTO assets SELECT g, 1 + g % 2, 'photo-' || g || '.jpg', ARRAY[g, g + 1, g + 2]::vector \
         FROM generate_series(1, 3000) g",
    );
    let check = "SELECT count(*), sum(id), max(path) FROM assets; \
                 SELECT embedding::text FROM assets WHERE id = 7; \
                 SELECT id FROM assets ORDER BY embedding <-> '[7,8,9.2]' LIMIT 1; \
                 SELECT string_agg(name, ',' ORDER BY id) FROM albums; \
                 SELECT nextval('albums_id_seq')";
    let report = json(&d, &config, &["backup"]);
    let dump = PathBuf::from(report["backup"]["dump"].as_str().unwrap());
    let expected = sql(&d, check);

    let target = start_target(&mut d);
    let url = format!("postgresql://immich@127.0.0.1:{}/immich", target.port);
    let log = PodmanLog::new(host);
    let dump_arg = dump.to_str().unwrap();
    let stdin_args = |extra: &[&'static str]| {
        let mut args = vec!["--target", url.as_str(), "--password-stdin"];
        args.extend_from_slice(extra);
        args.push(dump_arg);
        args
    };
    let line = format!("{TARGET_PASSWORD}\n");

    // Refused, each with the target unchanged (no table in it).
    let with_password = format!(
        "postgresql://immich:{TARGET_PASSWORD}@127.0.0.1:{}/immich",
        target.port
    );
    let out = restore(
        &d,
        &config,
        &log,
        &["--target", &with_password, "--password-stdin", dump_arg],
        &line,
    );
    refused(
        &out,
        2,
        &["holds a password", "--password-stdin"],
        &target,
        "0",
    );
    let out = restore(&d, &config, &log, &stdin_args(&[]), "not-the-password\n");
    refused(&out, 2, &["refused the password of immich"], &target, "0");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = format!("postgresql://immich@127.0.0.1:{closed}/immich");
    let out = restore(
        &d,
        &config,
        &log,
        &["--target", &nowhere, "--password-stdin", dump_arg],
        &line,
    );
    refused(
        &out,
        3,
        &["cannot reach PostgreSQL at 127.0.0.1"],
        &target,
        "0",
    );
    let (_keep, corrupt) = altered_copy(
        host,
        &dump,
        |_| {},
        |b| {
            let middle = b.len() / 2;
            b[middle] ^= 0x20;
        },
    );
    let out = restore(
        &d,
        &config,
        &log,
        &[
            "--target",
            &url,
            "--password-stdin",
            corrupt.to_str().unwrap(),
        ],
        &line,
    );
    refused(&out, 2, &["corrupt", "SHA-256"], &target, "0");
    // The manifest says a newer PostgreSQL made it; the dump's checksum
    // still holds: the deployment's pg_restore 17 is too old for it.
    let (_keep, newer) = altered_copy(
        host,
        &dump,
        |m| m["postgres_version"] = "99.1".into(),
        |_| {},
    );
    let out = restore(
        &d,
        &config,
        &log,
        &[
            "--target",
            &url,
            "--password-stdin",
            newer.to_str().unwrap(),
        ],
        &line,
    );
    refused(
        &out,
        3,
        &[
            "older than the backup's PostgreSQL 99.1",
            "[postgres] image",
        ],
        &target,
        "0",
    );

    // Loaded, the password on standard input.
    let out = restore(
        &d,
        &config,
        &log,
        &["--json", "--target", &url, "--password-stdin", dump_arg],
        &line,
    );
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["changed"], true);
    assert_eq!(report["command"], "restore");
    assert_eq!(report["target"], url.as_str());
    assert_eq!(report["manifest"]["database"], "immich");
    assert_eq!(report["restored"], dump_arg);
    assert_eq!(report["relations_before"], 0);
    assert_eq!(report["tables_restored"], 2, "{report:#}");
    assert_eq!(report["tables_after"], 2, "{report:#}");
    assert_eq!(report["replaced_existing"], false);
    // The role is not a superuser, as under CloudNativePG.
    assert_eq!(report["comments_restored"], false);
    assert!(
        report["pg_restore"]["version"]
            .as_str()
            .unwrap()
            .starts_with("17"),
        "{report:#}"
    );
    assert!(!text(&out).contains(TARGET_PASSWORD));
    // psql reads the rows back, vectors and sequence included, owned by the
    // target's role.
    assert_eq!(target_sql(&target, check), expected);
    assert_eq!(
        target_sql(
            &target,
            "SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables WHERE schemaname = 'public'"
        ),
        "immich"
    );
    assert!(
        expected.starts_with("3000|4501500|photo-999.jpg\n[7,8,9]\n7\nsummer,winter\n"),
        "{expected}"
    );

    // Now it is not empty: refused without --force, unchanged.
    target_sql(
        &target,
        "INSERT INTO assets VALUES (9001, 1, 'after.jpg', '[0,0,0]')",
    );
    let out = restore(&d, &config, &log, &stdin_args(&[]), &line);
    refused(&out, 2, &["not empty", "--force"], &target, "2");
    assert_eq!(target_sql(&target, "SELECT count(*) FROM assets"), "3001");

    // With --force, the password in a file: what the role owned is dropped,
    // the backup loaded again; the extension the superuser made stays.
    let secret_dir = tempfile::tempdir().unwrap();
    let file = secret_dir.path().join("password");
    std::fs::write(&file, &line).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    host.give(secret_dir.path());
    let out = restore(
        &d,
        &config,
        &log,
        &[
            "--json",
            "--force",
            "--target",
            &url,
            "--password-file",
            file.to_str().unwrap(),
            dump_arg,
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["replaced_existing"], true, "{report:#}");
    assert_eq!(target_sql(&target, check), expected);
    assert_eq!(
        target_sql(&target, "SELECT count(*) FROM assets WHERE id = 9001"),
        "0"
    );
    let owner = host.podman_ok([
        "exec",
        &target.container,
        "psql",
        "-X",
        "-U",
        "postgres",
        "-d",
        "immich",
        "-Atc",
        "SELECT extowner::regrole FROM pg_extension WHERE extname = 'vector'",
    ]);
    assert_eq!(owner.trim(), "postgres");

    // The podman calls: containers of the deployment's image, removed at
    // exit, with the host's network; the password in none of their
    // arguments or environments, escaped or not.
    let calls = log.calls();
    assert!(
        calls.lines().any(
            |l| l.starts_with("ARGV: run --rm --pull=never --network host")
                && l.contains(&host.postgres_image)
        ),
        "{calls}"
    );
    for form in [TARGET_PASSWORD, "tgt\\:Pw\\\\K9move", "Pw\\K9move"] {
        assert!(!calls.contains(form), "a podman call holds the password");
    }
    // Nothing of the load is left: no container of the image but the two.
    let left = host.podman_ok(["ps", "-a", "--format", "{{.Names}} {{.Command}}"]);
    assert!(!left.contains("pg_restore"), "{left}");
}
