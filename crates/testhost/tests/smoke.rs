//! Proves the test host: a `.network` and a `.container` Quadlet unit run by root's
//! systemd user manager, with the local PostgreSQL image, its password as a Podman
//! secret in an environment variable, its data on the BTRFS pool with NOCOW, and a
//! health check that `Notify=healthy` waits for.

use std::io::Write as _;
use std::process::Stdio;
use std::time::Duration;

use immich_db_testhost::{Cleanup, require_host, unique_name, wait_for};

#[test]
fn quadlet_postgres_runs_healthy_on_the_btrfs_pool() {
    let host = require_host!();
    let name = unique_name("smoke");
    // Declared before the cleanup so that it is removed after the container.
    let data = host.btrfs_dir("smoke");
    let mut cleanup = Cleanup::new(host);
    let units = host.quadlet_dir();
    std::fs::create_dir_all(&units).unwrap();

    // The data directory: empty, NOCOW set by chattr (this test proves the host,
    // not the project's btrfs crate).
    let status = host
        .command("chattr")
        .arg("+C")
        .arg(data.path())
        .status()
        .unwrap();
    assert!(status.success());
    let lsattr = host
        .command("lsattr")
        .arg("-d")
        .arg(data.path())
        .output()
        .unwrap();
    let flags = String::from_utf8_lossy(&lsattr.stdout);
    assert!(
        flags.split_whitespace().next().unwrap().contains('C'),
        "{flags}"
    );

    // The password, on podman's standard input.
    let password = format!("Smoke{}", unique_name("pw").replace('-', ""));
    cleanup.secret(&name);
    let mut child = host
        .command("podman")
        .args(["secret", "create", &name, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());

    let (subnet, gateway) = host.free_subnet();
    let network_file = units.join(format!("{name}.network"));
    let container_file = units.join(format!("{name}.container"));
    cleanup.network(&format!("systemd-{name}"));
    cleanup.file(&network_file);
    cleanup.file(&container_file);
    cleanup.unit(&format!("{name}-network.service"));
    cleanup.container(&name);
    cleanup.unit(&format!("{name}.service"));

    std::fs::write(
        &network_file,
        format!("[Network]\nSubnet={subnet}\nGateway={gateway}\n"),
    )
    .unwrap();
    std::fs::write(
        &container_file,
        format!(
            "[Unit]\nDescription=test host smoke test\n\n\
             [Container]\nImage={image}\nContainerName={name}\nNetwork={name}.network\n\
             Environment=POSTGRES_USER=smoke\nEnvironment=POSTGRES_DB=smokedb\n\
             Secret={name},type=env,target=POSTGRES_PASSWORD\n\
             Volume={data}:/var/lib/postgresql/data:Z\nShmSize=128m\n\
             HealthCmd=pg_isready -h 127.0.0.1 -U smoke -d smokedb\nHealthInterval=30s\n\
             HealthStartupCmd=pg_isready -h 127.0.0.1 -U smoke -d smokedb\n\
             HealthStartupInterval=1s\nHealthStartupRetries=120\nNotify=healthy\n\n\
             [Service]\nTimeoutStartSec=120\n\n[Install]\nWantedBy=default.target\n",
            image = host.postgres_image,
            data = data.path().display(),
        ),
    )
    .unwrap();

    host.systemctl_ok(["daemon-reload"]);
    // With Notify=healthy, start returns once the health check has passed.
    host.systemctl_ok(["start", &format!("{name}.service")]);
    let active = host.systemctl(["is-active", &format!("{name}.service")]);
    assert_eq!(String::from_utf8_lossy(&active.stdout).trim(), "active");
    let health = host.podman_ok(["inspect", "--format", "{{.State.Health.Status}}", &name]);
    assert_eq!(health.trim(), "healthy");

    let databases = wait_for(
        "psql to list the databases",
        Duration::from_secs(30),
        || {
            let out = host.podman([
                "exec",
                &name,
                "psql",
                "-U",
                "smoke",
                "-d",
                "smokedb",
                "-Atc",
                "SELECT datname FROM pg_database",
            ]);
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        },
    );
    assert!(databases.lines().any(|l| l == "smokedb"), "{databases}");

    // Files PostgreSQL created inherited NOCOW from the directory.
    let version_file = data.path().join("PG_VERSION");
    let lsattr = host.command("lsattr").arg(&version_file).output().unwrap();
    let flags = String::from_utf8_lossy(&lsattr.stdout);
    assert!(
        flags.split_whitespace().next().unwrap().contains('C'),
        "{flags}"
    );

    drop(cleanup);
    // Everything it created is gone.
    assert!(!host.podman(["container", "exists", &name]).status.success());
    assert!(
        !host
            .podman(["network", "exists", &format!("systemd-{name}")])
            .status
            .success()
    );
    assert!(!host.podman(["secret", "exists", &name]).status.success());
    assert!(!container_file.exists());
}
