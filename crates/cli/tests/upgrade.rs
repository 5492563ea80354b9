//! PostgreSQL major upgrades on the real test host, from the local 17 image to
//! the local 18 image (laid out as the official 18 images are): `deploy`
//! refuses an image of another major than the data's; `upgrade` carries rows
//! and a vector column over, keeps the configuration's comments and the old
//! cluster; `upgrade --rollback` goes back to it; and an upgrade killed at
//! every step leaves one of the two clusters serving and is finished by the
//! next run. Each checked from outside the tool: psql in the container,
//! `podman inspect`, `lsattr`, the files.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

mod common;
mod ops;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{TestDeployment, lsattr_flags, text};
use immich_db_testhost::{Host, require_host, require_rootless_host};
use ops::{code, json, run, run_ok, sql};

/// The rows and the vector column every check compares.
const CONTENTS: &str =
    "SELECT count(*), max(name), round(sum(embedding <-> '[0,0,0]')::numeric, 3) FROM items";

/// A deployment whose configuration file has comments of its own, with its
/// upgrade's temporary container registered for cleanup.
fn deployment(host: &'static Host, prefix: &str) -> (TestDeployment, PathBuf) {
    let mut d = TestDeployment::new(host, prefix);
    let temp = format!("{}-upgrade", d.pg);
    d.cleanup
        .file(host.quadlet_dir().join(format!("{temp}.container")))
        .unit(&format!("{temp}.service"))
        .container(&temp);
    let config = d.write_config("config.toml", &commented(&d, &host.postgres_image));
    (d, config)
}

/// The test configuration with comments a user would have written, and the
/// PostgreSQL image given.
fn commented(d: &TestDeployment, image: &str) -> String {
    let image = format!("{image:?}");
    d.config_text(&[("postgres", "image", Some(&image))], &[])
        .replacen("[network]\n", "# My photos' database.\n[network]\n", 1)
        .replacen(
            "[postgres]\n",
            "[postgres]\n# Pinned by hand, see the upgrade notes.\n",
            1,
        )
}

/// Some rows with a vector column and an index on it.
fn fill(d: &TestDeployment) -> String {
    sql(
        d,
        "CREATE EXTENSION IF NOT EXISTS vector; \
         CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, embedding vector(3)); \
         INSERT INTO items (name, embedding) SELECT 'item-' || lpad(i::text, 4, '0'), \
             ARRAY[i % 7, i % 11, i % 13]::real[]::vector FROM generate_series(1, 1000) i; \
         CREATE INDEX items_embedding ON items USING hnsw (embedding vector_l2_ops);",
    );
    let contents = sql(d, CONTENTS);
    assert!(contents.starts_with("1000|item-1000|"), "{contents}");
    contents
}

/// The major of the server that answers in the container.
fn server_major(d: &TestDeployment) -> String {
    sql(d, "SHOW server_version")
        .split('.')
        .next()
        .unwrap()
        .to_owned()
}

/// The first word of the PostgreSQL container's `podman inspect` field.
fn inspect(d: &TestDeployment, format: &str) -> String {
    d.host
        .podman_ok(["inspect", "--format", format, &d.pg])
        .trim()
        .to_owned()
}

fn new_dir(d: &TestDeployment) -> PathBuf {
    d.pool.path().join("db/postgres-pg18")
}

/// Waits until the PostgreSQL service is active and answers.
fn serving(d: &TestDeployment) {
    let unit = format!("{}.service", d.pg);
    let start = Instant::now();
    loop {
        let answers = d
            .host
            .podman(["exec", &d.pg, "pg_isready", "-q", "-h", "127.0.0.1"])
            .status
            .success();
        if answers && d.is_active(&unit) == "active" {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "PostgreSQL does not serve:\n{}",
            d.service_state(&unit, &d.pg)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn upgrade_17_to_18_refusal_switch_and_rollback() {
    upgrade_and_roll_back(require_host!());
}

#[test]
fn rootless_upgrade_17_to_18_refusal_switch_and_rollback() {
    upgrade_and_roll_back(require_rootless_host!());
}

fn upgrade_and_roll_back(host: &'static Host) {
    let (d, config) = deployment(host, "upg");
    run_ok(&d, &config, &["deploy"]);
    let before = fill(&d);
    let password = d.secret_value(&d.pg_secret).unwrap();
    let unit_file = &d.unit_files()[1];
    let unit_before = std::fs::read_to_string(unit_file).unwrap();
    assert!(
        unit_before.contains(":/var/lib/postgresql/data:Z\n"),
        "the 17 image declares no volume: PGDATA is mounted\n{unit_before}"
    );
    let identity = d.container_identity(&d.pg);

    // The 18 image over the 17 cluster: refused before anything changes.
    let eighteen = d.write_config("config18.toml", &commented(&d, &host.postgres18_image));
    for command in ["deploy", "plan"] {
        let out = run(&d, &eighteen, &[command]);
        assert_eq!(code(&out), Some(3), "{command}: {}", text(&out));
        let message = text(&out);
        assert!(message.contains("PostgreSQL 17 cluster"), "{message}");
        assert!(message.contains("is PostgreSQL 18"), "{message}");
        assert!(
            message.contains(&format!(
                "immich-db upgrade --image {}",
                host.postgres18_image
            )),
            "{message}"
        );
        assert!(message.contains("nothing was changed"), "{message}");
    }
    assert_eq!(std::fs::read_to_string(unit_file).unwrap(), unit_before);
    assert_eq!(d.container_identity(&d.pg), identity);
    assert!(!new_dir(&d).exists());

    // Without --yes and without a terminal: the steps, then a refusal.
    let out = run(&d, &config, &["upgrade", "--image", &host.postgres18_image]);
    assert_eq!(code(&out), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("keep the PostgreSQL 17 cluster in"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("--yes"), "{}", text(&out));
    assert!(!new_dir(&d).exists());
    // A session of another client: refused, it would lose its writes.
    let mut client = d
        .host
        .command("podman")
        .args([
            "exec", "-i", &d.pg, "psql", "-X", "-U", "immich", "-d", "immich", "-q",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let out = run(
        &d,
        &config,
        &["upgrade", "--yes", "--image", &host.postgres18_image],
    );
    drop(client.stdin.take());
    let _ = client.wait();
    assert_eq!(code(&out), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("other clients are connected"),
        "{}",
        text(&out)
    );
    assert!(!new_dir(&d).exists());

    // The upgrade.
    let started = Instant::now();
    let report = json(
        &d,
        &config,
        &["upgrade", "--yes", "--image", &host.postgres18_image],
    );
    eprintln!(
        "the upgrade from 17 to 18 of 1,000 rows with vectors took {:?}",
        started.elapsed()
    );
    assert_eq!(report["changed"], true, "{report:#}");
    assert_eq!(report["from"]["major"], 17, "{report:#}");
    assert_eq!(report["to"]["major"], 18, "{report:#}");
    assert_eq!(report["verify"]["ok"], true, "{report:#}");
    let backup = PathBuf::from(report["backup"].as_str().unwrap());
    assert!(backup.exists(), "{report:#}");
    ops::assert_no_secret(
        &report.to_string(),
        std::slice::from_ref(&password),
        "the report",
    );

    // The server is 18, on the cluster in the image's PGDATA, in the new NOCOW
    // directory mounted where the image declares its volume; the rows and
    // vectors came along; the same secret logs in over TCP.
    assert_eq!(server_major(&d), "18");
    assert_eq!(
        sql(&d, "SHOW data_directory"),
        "/var/lib/postgresql/18/docker"
    );
    assert_eq!(sql(&d, CONTENTS), before);
    assert_eq!(
        sql(
            &d,
            "SELECT extname FROM pg_extension WHERE extname = 'vector'"
        ),
        "vector"
    );
    assert_eq!(
        sql(
            &d,
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'items_embedding'"
        ),
        "1"
    );
    assert_eq!(d.secret_value(&d.pg_secret).unwrap(), password);
    let login = d.psql(&password, "SELECT count(*) FROM items");
    assert!(
        login.status.success(),
        "{}",
        text(&login).replace(&password, "[pw]")
    );
    assert_eq!(String::from_utf8_lossy(&login.stdout).trim(), "1000");
    assert_eq!(
        inspect(&d, "{{.ImageName}}"),
        host.postgres18_image,
        "the container runs another image"
    );
    let unit = std::fs::read_to_string(unit_file).unwrap();
    assert!(
        unit.contains(&format!(
            "Volume={}:/var/lib/postgresql:Z\n",
            new_dir(&d).display()
        )),
        "{unit}"
    );
    assert!(lsattr_flags(host, &new_dir(&d)).contains('C'));
    assert!(lsattr_flags(host, &new_dir(&d).join("18/docker/base")).contains('C'));
    let mode = std::fs::metadata(new_dir(&d)).unwrap().permissions().mode() & 0o7777;
    if host.is_rootless() {
        let user = host.user.as_ref().unwrap();
        let owner = std::os::unix::fs::MetadataExt::uid(
            &std::fs::metadata(new_dir(&d).join("18/docker")).unwrap(),
        );
        assert_eq!(owner, user.uid, "the cluster is not the user's");
    } else {
        // The container's postgres passes through it to its cluster.
        assert_eq!(mode, 0o755, "{mode:o}");
    }
    // The configuration records the new image and directory, comments kept.
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(
        written.starts_with("# My photos' database.\n[network]\n"),
        "{written}"
    );
    assert!(
        written.contains("[postgres]\n# Pinned by hand, see the upgrade notes.\n"),
        "{written}"
    );
    assert!(
        written.contains(&format!("image = {:?}\n", host.postgres18_image)),
        "{written}"
    );
    assert!(
        written.contains("postgres_dir = \"db/postgres-pg18\"\n"),
        "{written}"
    );
    ops::assert_no_secret(
        &written,
        std::slice::from_ref(&password),
        "the configuration",
    );
    // The old cluster is kept as it was.
    assert_eq!(
        std::fs::read_to_string(d.postgres_dir().join("PG_VERSION")).unwrap(),
        "17\n"
    );
    assert!(
        !d.host
            .podman(["container", "exists", &format!("{}-upgrade", d.pg)])
            .status
            .success()
    );
    assert!(
        !d.host
            .quadlet_dir()
            .join(format!("{}-upgrade.container", d.pg))
            .exists()
    );

    // Again: nothing to do. A deploy changes nothing, quickly.
    let again = json(
        &d,
        &config,
        &["upgrade", "--yes", "--image", &host.postgres18_image],
    );
    assert_eq!(again["changed"], false, "{again:#}");
    let started = Instant::now();
    let deployed = json(&d, &config, &["deploy"]);
    let took = started.elapsed();
    assert_eq!(deployed["changed"], false, "{deployed:#}");
    eprintln!("a deploy that changes nothing after the upgrade took {took:?}");
    json(&d, &config, &["verify"]);

    // Written after the upgrade, then rolled back: 17 again, without it.
    sql(
        &d,
        "INSERT INTO items (name) VALUES ('zz-after-the-upgrade')",
    );
    let rolled = json(&d, &config, &["upgrade", "--rollback", "--yes"]);
    assert_eq!(rolled["abandoned"], false, "{rolled:#}");
    assert_eq!(rolled["verify"]["ok"], true, "{rolled:#}");
    assert_eq!(server_major(&d), "17");
    assert_eq!(sql(&d, CONTENTS), before);
    assert_eq!(inspect(&d, "{{.ImageName}}"), host.postgres_image);
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(
        written.contains(&format!("image = {:?}\n", host.postgres_image)),
        "{written}"
    );
    assert!(
        written.contains("postgres_dir = \"db/postgres\"\n"),
        "{written}"
    );
    assert!(written.contains("# Pinned by hand"), "{written}");
    // The 18 cluster stays (it held writes); nothing left to roll back.
    assert!(new_dir(&d).join("18/docker/PG_VERSION").exists());
    let out = run(&d, &config, &["upgrade", "--rollback", "--yes"]);
    assert_eq!(code(&out), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no upgrade to roll back"),
        "{}",
        text(&out)
    );
    // Its directory is in the way of a new upgrade until it goes.
    let out = run(
        &d,
        &config,
        &["upgrade", "--yes", "--image", &host.postgres18_image],
    );
    assert_eq!(code(&out), Some(3), "{}", text(&out));
    assert!(text(&out).contains("not empty"), "{}", text(&out));
    json(&d, &config, &["verify"]);
}

/// Where the fault hook stops an upgrade: each step of its own, then the
/// switch's deploy before its units, before it starts anything, and once
/// the restart is queued.
const UPGRADE_FAULTS: [&str; 9] = [
    "upgrade-backup",
    "upgrade-prepare",
    "upgrade-restore",
    "upgrade-restored",
    "upgrade-config",
    "upgrade-switch",
    "units",
    "start",
    "health",
];

#[test]
fn an_upgrade_killed_at_any_step_leaves_a_cluster_serving_and_a_rerun_finishes() {
    killed_upgrades(require_host!());
}

#[test]
fn rootless_an_upgrade_killed_at_any_step_leaves_a_cluster_serving_and_a_rerun_finishes() {
    killed_upgrades(require_rootless_host!());
}

fn killed_upgrades(host: &'static Host) {
    let (d, config) = deployment(host, "upgk");
    run_ok(&d, &config, &["deploy"]);
    let before = fill(&d);
    let upgrade = [
        "upgrade",
        "--yes",
        "--image",
        host.postgres18_image.as_str(),
    ];
    for point in UPGRADE_FAULTS {
        let out = d
            .command(&config, &upgrade)
            .env("IMMICH_DB_FAULT_AT", point)
            .output()
            .unwrap();
        assert!(common::killed(&out), "{point}: not killed: {}", text(&out));
        // One of the two clusters serves, with every row.
        serving(&d);
        let major = server_major(&d);
        assert!(major == "17" || major == "18", "{point}: {major}");
        assert_eq!(sql(&d, CONTENTS), before, "{point}");
        eprintln!("killed at {point}: PostgreSQL {major} serves");
        // The next run finishes.
        let report = json(&d, &config, &upgrade);
        assert_eq!(report["verify"]["ok"], true, "{point}: {report:#}");
        assert_eq!(server_major(&d), "18", "{point}");
        assert_eq!(sql(&d, CONTENTS), before, "{point}");
        assert!(
            !d.host
                .podman(["container", "exists", &format!("{}-upgrade", d.pg)])
                .status
                .success(),
            "{point}: the temporary container is left"
        );
        // Back to 17 for the next point; the 18 cluster goes.
        json(&d, &config, &["upgrade", "--rollback", "--yes"]);
        assert_eq!(server_major(&d), "17", "{point}");
        remove_tree(&new_dir(&d));
    }

    // A rollback killed once the configuration is written: 18 still serves,
    // and the next run finishes the rollback.
    json(&d, &config, &upgrade);
    let out = d
        .command(&config, &["upgrade", "--rollback", "--yes"])
        .env("IMMICH_DB_FAULT_AT", "rollback-switch")
        .output()
        .unwrap();
    assert!(common::killed(&out), "not killed: {}", text(&out));
    serving(&d);
    assert_eq!(server_major(&d), "18");
    json(&d, &config, &["upgrade", "--rollback", "--yes"]);
    assert_eq!(server_major(&d), "17");
    assert_eq!(sql(&d, CONTENTS), before);
    // An upgrade abandoned before its switch: nothing of it is left.
    remove_tree(&new_dir(&d));
    let out = d
        .command(&config, &upgrade)
        .env("IMMICH_DB_FAULT_AT", "upgrade-restored")
        .output()
        .unwrap();
    assert!(common::killed(&out), "not killed: {}", text(&out));
    let abandoned = json(&d, &config, &["upgrade", "--rollback", "--yes"]);
    assert_eq!(abandoned["abandoned"], true, "{abandoned:#}");
    assert!(!new_dir(&d).exists());
    assert_eq!(server_major(&d), "17");
    assert_eq!(sql(&d, CONTENTS), before);
}

/// Deletes a directory tree the test's deployment made (as root: also what a
/// container's user owns).
fn remove_tree(dir: &Path) {
    std::fs::remove_dir_all(dir).unwrap();
}
