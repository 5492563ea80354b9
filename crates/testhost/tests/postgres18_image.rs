//! The PostgreSQL 18 test image that `scripts/provision` builds: laid out as the
//! official PostgreSQL 18 images are (its configuration says where the data
//! lives), it initialises a cluster in the mounted volume and serves pgvector as
//! root (dropping to postgres), as another user (`--user`), and as the rootless
//! user with `--userns keep-id`, as rootless deployments run it; the cluster
//! outlives its container.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::time::Duration;

use immich_db_testhost::{
    Cleanup, Host, require_host, require_rootless_host, unique_name, wait_for,
};

/// Where the official PostgreSQL 18 images mount their volume and keep the
/// cluster.
const VOLUME: &str = "/var/lib/postgresql";
const PGDATA: &str = "/var/lib/postgresql/18/docker";

/// Starts the image with `dir` mounted at its volume and `extra` options; the
/// password reaches podman through its environment, never its arguments.
fn start(host: &Host, cleanup: &mut Cleanup, dir: &Path, extra: &[&str]) -> String {
    let name = unique_name("pg18");
    cleanup.container(&name);
    let mut cmd = host.command("podman");
    cmd.args(["run", "-d", "--name", &name, "-e", "POSTGRES_PASSWORD"])
        .args(extra)
        .arg("-v")
        .arg(format!("{}:{VOLUME}:Z", dir.display()))
        .arg(&host.postgres18_image)
        .env("POSTGRES_PASSWORD", unique_name("pw"));
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "podman run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Over TCP only once initialisation is over and the real server runs.
    wait_for(
        "PostgreSQL 18 to accept connections",
        Duration::from_secs(90),
        || {
            host.podman(["exec", &name, "pg_isready", "-q", "-h", "127.0.0.1"])
                .status
                .success()
                .then_some(())
        },
    );
    name
}

/// Runs `sql` with psql in the container over its local socket.
fn psql(host: &Host, container: &str, sql: &str) -> String {
    host.podman_ok([
        "exec",
        container,
        "psql",
        "-X",
        "-U",
        "postgres",
        "-v",
        "ON_ERROR_STOP=1",
        "-Atc",
        sql,
    ])
    .trim()
    .to_owned()
}

/// pgvector works, and the server runs on the cluster in the image's PGDATA.
fn check_server(host: &Host, container: &str) {
    psql(host, container, "CREATE EXTENSION vector");
    assert_eq!(
        psql(host, container, "SELECT '[1,2,3]'::vector <-> '[1,2,5]'"),
        "2"
    );
    assert_eq!(
        psql(host, container, "SHOW data_directory"),
        PGDATA,
        "the server runs on another cluster"
    );
    assert!(psql(host, container, "SHOW server_version").starts_with("18."));
}

/// The cluster as the host sees it in the mounted directory: its major version
/// and the owner of its directory.
fn cluster_on_host(dir: &Path) -> (String, u32) {
    let cluster = dir.join("18/docker");
    let version = std::fs::read_to_string(cluster.join("PG_VERSION")).unwrap_or_else(|e| {
        panic!(
            "no cluster in the mounted directory ({}): {e}",
            cluster.display()
        )
    });
    (
        version.trim().to_owned(),
        std::fs::metadata(&cluster).unwrap().uid(),
    )
}

#[test]
fn layout_and_first_start_as_root_and_as_another_user() {
    let host = require_host!();
    // The image says where the data lives: PGDATA inside its one volume.
    let config = host.podman_ok([
        "image",
        "inspect",
        "--format",
        "{{range .Config.Env}}{{println .}}{{end}}volumes:{{range $v, $_ := .Config.Volumes}} {{$v}}{{end}}",
        &host.postgres18_image,
    ]);
    assert!(
        config.lines().any(|l| l == format!("PGDATA={PGDATA}")),
        "{config}"
    );
    assert!(config.lines().any(|l| l == "PG_MAJOR=18"), "{config}");
    assert!(
        config.lines().any(|l| l == format!("volumes: {VOLUME}")),
        "{config}"
    );
    // The same query on the 17 image tells the other layout apart.
    let config17 = host.podman_ok([
        "image",
        "inspect",
        "--format",
        "{{range .Config.Env}}{{println .}}{{end}}",
        &host.postgres_image,
    ]);
    assert!(
        config17
            .lines()
            .any(|l| l == "PGDATA=/var/lib/postgresql/data"),
        "{config17}"
    );
    // Debian's own cluster is not in the image's volume.
    let listing = host.podman_ok([
        "run",
        "--rm",
        "--entrypoint",
        "ls",
        &host.postgres18_image,
        "-A",
        VOLUME,
    ]);
    assert_eq!(listing.trim(), "", "{VOLUME} in the image holds {listing}");
    let postgres_uid: u32 = host
        .podman_ok([
            "run",
            "--rm",
            "--entrypoint",
            "id",
            &host.postgres18_image,
            "-u",
            "postgres",
        ])
        .trim()
        .parse()
        .unwrap();

    let mut cleanup = Cleanup::new(host);

    // As root: the entrypoint creates the cluster's directory for postgres (the
    // volume's directory must let postgres through, as PGDATA's parents).
    let as_root = host.btrfs_dir("pg18-root");
    std::fs::set_permissions(
        as_root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let container = start(host, &mut cleanup, as_root.path(), &[]);
    check_server(host, &container);
    assert_eq!(
        cluster_on_host(as_root.path()),
        ("18".to_owned(), postgres_uid)
    );
    // The cluster outlives its container: a new one finds the table.
    psql(host, &container, "CREATE TABLE kept AS SELECT 42 AS answer");
    host.podman_ok(["rm", "--force", "--time", "10", &container]);
    let again = start(host, &mut cleanup, as_root.path(), &[]);
    assert_eq!(psql(host, &again, "SELECT answer FROM kept"), "42");
    let logs = host.podman(["logs", &again]);
    assert!(
        !String::from_utf8_lossy(&logs.stderr).contains("initialising")
            && !String::from_utf8_lossy(&logs.stdout).contains("initialising"),
        "the second container initialised a new cluster"
    );

    // As a user that is neither root nor postgres, in a directory it owns.
    let other = host.btrfs_dir("pg18-user");
    std::fs::set_permissions(
        other.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let chown = host
        .command("chown")
        .arg("1234:1234")
        .arg(other.path())
        .output()
        .unwrap();
    assert!(chown.status.success());
    let container = start(host, &mut cleanup, other.path(), &["--user", "1234:1234"]);
    check_server(host, &container);
    assert_eq!(cluster_on_host(other.path()), ("18".to_owned(), 1234));
}

#[test]
fn first_start_rootless_with_keep_id() {
    let host = require_rootless_host!();
    let user = host.user.clone().unwrap();
    let mut cleanup = Cleanup::new(host);
    // The user's own directory, as a rootless deployment's pool.
    let dir = host.btrfs_dir("pg18-rootless");
    let container = start(host, &mut cleanup, dir.path(), &["--userns", "keep-id"]);
    check_server(host, &container);
    // The container ran as the user itself: the cluster is the user's on the host.
    assert_eq!(cluster_on_host(dir.path()), ("18".to_owned(), user.uid));
    let id = host.podman_ok(["exec", &container, "id", "-u"]);
    assert_eq!(id.trim(), user.uid.to_string());
}
