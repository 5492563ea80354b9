//! Moving from an Immich docker-compose install, on the real test host: a
//! compose-style PostgreSQL started with `podman run` (the role, database and
//! password of an `.env` of our own, its data in `DB_DATA_LOCATION`) is
//! imported with `import --compose-env`; the secret holds the `.env`'s
//! password, the configuration file its role, database and upload location
//! (comments kept), the deployed PostgreSQL its rows and vectors; the compose
//! container, its data and the `.env` stay as they were. Each checked from
//! outside the tool: psql in the containers and over TCP, `podman inspect`,
//! the files.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

mod common;
mod ops;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{TestDeployment, text};
use immich_db_testhost::{Host, require_host, require_rootless_host, unique_name};
use ops::{code, json, run};

/// The rows and the vector column the check compares.
const CONTENTS: &str =
    "SELECT count(*), max(name), round(sum(embedding <-> '[0,0,0]')::numeric, 3) FROM items";

/// `psql` in `container` as Immich's compose role, `postgres`.
fn sql_as_postgres(host: &Host, container: &str, statement: &str) -> String {
    let out = host.podman([
        "exec",
        container,
        "psql",
        "-X",
        "-U",
        "postgres",
        "-d",
        "immich",
        "-v",
        "ON_ERROR_STOP=1",
        "-Atc",
        statement,
    ]);
    assert!(out.status.success(), "psql {statement:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Writes a file of the test's own, readable only by its owner.
fn write_private(host: &Host, path: &Path, content: &str) {
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    host.give(path);
}

#[test]
fn import_from_a_compose_install() {
    import_from_compose(require_host!());
}

#[test]
fn rootless_import_from_a_compose_install() {
    import_from_compose(require_rootless_host!());
}

fn import_from_compose(host: &'static Host) {
    let mut d = TestDeployment::new(host, "imp");
    let compose = unique_name("impc");
    d.cleanup.container(&compose);

    // The compose install: its directory with the .env, the data and the
    // library, and its database as Immich's compose file runs it.
    let project = d.pool.path().join("immich-app");
    let data = project.join("postgres");
    let library = project.join("library");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&library).unwrap();
    std::fs::write(library.join("photo.jpg"), b"not really a photo").unwrap();
    host.give(&project);
    // Outside Immich's A-Za-z0-9 rule: kept, and named as such.
    let password = format!("Pw-{}", unique_name("x").replace('-', ""));
    let env_text = format!(
        "# Immich's .env\nUPLOAD_LOCATION=./library\nDB_DATA_LOCATION=./postgres\nIMMICH_VERSION=release\nDB_PASSWORD={password}\nDB_USERNAME=postgres\nDB_DATABASE_NAME=immich\n"
    );
    let env = project.join(".env");
    write_private(host, &env, &env_text);
    let podman_env = project.join("postgres.env");
    write_private(
        host,
        &podman_env,
        &format!(
            "POSTGRES_PASSWORD={password}\nPOSTGRES_USER=postgres\nPOSTGRES_DB=immich\nPOSTGRES_INITDB_ARGS=--data-checksums\n"
        ),
    );
    host.podman_ok([
        "run",
        "-d",
        "--name",
        &compose,
        "--network",
        "none",
        "--env-file",
        &podman_env.display().to_string(),
        "-v",
        &format!("{}:/var/lib/postgresql/data:Z", data.display()),
        &host.postgres_image,
    ]);
    let start = Instant::now();
    loop {
        // Listening on TCP: the entrypoint's own start is over.
        let ready = host
            .podman(["exec", &compose, "pg_isready", "-q", "-h", "127.0.0.1"])
            .status
            .success()
            && host
                .podman([
                    "exec", &compose, "psql", "-X", "-U", "postgres", "-d", "immich", "-Atc",
                    "SELECT 1",
                ])
                .status
                .success();
        if ready {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the compose database does not start: {}",
            text(&host.podman(["logs", &compose]))
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    sql_as_postgres(
        host,
        &compose,
        "CREATE EXTENSION vector; \
         CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, embedding vector(3)); \
         INSERT INTO items (name, embedding) SELECT 'item-' || lpad(i::text, 4, '0'), \
             ARRAY[i % 7, i % 11, i % 13]::real[]::vector FROM generate_series(1, 1000) i; \
         CREATE INDEX items_embedding ON items USING hnsw (embedding vector_l2_ops);",
    );
    let before = sql_as_postgres(host, &compose, CONTENTS);
    assert!(before.starts_with("1000|item-1000|"), "{before}");
    let identity = d.container_identity(&compose);

    let config = d.write_config(
        "config.toml",
        &d.config_text(&[], &[])
            .replacen("[postgres]\n", "[postgres]\n# Moved from compose.\n", 1),
    );
    let env_arg = env.display().to_string();

    // Bad input changes nothing: an .env without the password.
    let partial = project.join("partial.env");
    write_private(
        host,
        &partial,
        "DB_USERNAME=postgres\nDB_DATABASE_NAME=immich\n",
    );
    let out = run(
        &d,
        &config,
        &[
            "import",
            "--yes",
            "--compose-env",
            &partial.display().to_string(),
        ],
    );
    assert_eq!(code(&out), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("does not set DB_PASSWORD"),
        "{}",
        text(&out)
    );
    assert_eq!(d.secret_value(&d.pg_secret), None);
    // Without --yes and without a terminal: refused.
    let out = run(
        &d,
        &config,
        &[
            "import",
            "--compose-env",
            &env_arg,
            "--from-container",
            &compose,
        ],
    );
    assert_eq!(code(&out), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--yes"), "{}", text(&out));
    assert_eq!(d.secret_value(&d.pg_secret), None);

    // The import.
    let started = Instant::now();
    let out = d
        .command(
            &config,
            &[
                "--json",
                "import",
                "--yes",
                "--compose-env",
                &env_arg,
                "--from-container",
                &compose,
            ],
        )
        .output()
        .unwrap();
    let took = started.elapsed();
    ops::assert_no_secret(&text(&out), std::slice::from_ref(&password), "the output");
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("the import of 1,000 rows took {took:?}");
    assert_eq!(report["changed"], true, "{report:#}");
    assert_eq!(report["seeded"], "created", "{report:#}");
    assert_eq!(report["verify"]["ok"], true, "{report:#}");
    assert_eq!(report["user"], "postgres", "{report:#}");
    let findings = report["password_findings"].as_array().unwrap();
    assert!(
        !findings.is_empty(),
        "the '-' is outside A-Za-z0-9: {report:#}"
    );

    // The secret holds the .env's password; the deployed PostgreSQL holds the
    // rows and vectors, as the compose role, and takes that password over TCP.
    assert_eq!(d.secret_value(&d.pg_secret).unwrap(), password);
    assert_eq!(sql_as_postgres(host, &d.pg, CONTENTS), before);
    assert_eq!(
        sql_as_postgres(
            host,
            &d.pg,
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'items_embedding'"
        ),
        "1"
    );
    let ip = d.container_ip(&d.pg);
    let login = d
        .on_network("psql")
        .args(["-h", &ip, "-U", "postgres", "-d", "immich", "-w", "-Atc"])
        .arg("SELECT count(*) FROM items")
        .env("PGPASSWORD", &password)
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .unwrap();
    assert!(
        login.status.success(),
        "{}",
        text(&login).replace(&password, "[pw]")
    );
    assert_eq!(String::from_utf8_lossy(&login.stdout).trim(), "1000");
    assert!(d.postgres_dir().join("PG_VERSION").exists());

    // The configuration file: the role, database and upload location, the
    // comment kept, no password.
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(
        written.contains("[postgres]\n# Moved from compose.\n"),
        "{written}"
    );
    assert!(written.contains("user = \"postgres\"\n"), "{written}");
    assert!(written.contains("database = \"immich\"\n"), "{written}");
    assert!(
        written.contains(&format!(
            "library_dir = {:?}\n",
            library.display().to_string()
        )),
        "{written}"
    );
    ops::assert_no_secret(
        &written,
        std::slice::from_ref(&password),
        "the configuration",
    );
    for unit in d.unit_files() {
        let unit_text = std::fs::read_to_string(&unit).unwrap();
        ops::assert_no_secret(&unit_text, std::slice::from_ref(&password), "a unit file");
    }

    // The compose install is untouched: the same container still runs with
    // its rows, its .env and library are as they were.
    assert_eq!(d.container_identity(&compose), identity);
    assert_eq!(sql_as_postgres(host, &compose, CONTENTS), before);
    assert_eq!(std::fs::read_to_string(&env).unwrap(), env_text);
    assert_eq!(
        std::fs::read(library.join("photo.jpg")).unwrap(),
        b"not really a photo"
    );
    assert!(data.join("PG_VERSION").exists());

    // Again: nothing to do.
    let again = json(
        &d,
        &config,
        &[
            "import",
            "--yes",
            "--compose-env",
            &env_arg,
            "--from-container",
            &compose,
        ],
    );
    assert_eq!(again["changed"], false, "{again:#}");
    assert_eq!(again["seeded"], "kept", "{again:#}");
    assert_eq!(again["verify"]["ok"], true, "{again:#}");
    assert_eq!(sql_as_postgres(host, &d.pg, CONTENTS), before);
}
