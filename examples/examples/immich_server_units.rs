//! Needs no host.
//!
//! The next step after the database layer: the Immich server and its
//! machine-learning container as Quadlet units, rendered with
//! `homelab-quadlet` and linted together with a sketch of the database layer
//! (the `photos` network, `postgresql-immich` and `redis-immich`: the file
//! names, services and secrets `immich-db deploy` uses with its defaults;
//! `immich-db plan` shows the exact files it writes).
//!
//! - The server `Requires=` and comes `After=` both database services; its
//!   `DB_PASSWORD` and `REDIS_PASSWORD` come from the same Podman secrets the
//!   databases use, as environment variables set by podman (`Secret=...,
//!   type=env`), never written in a unit file.
//! - The machine-learning container sits only on an internal network
//!   (`Internal=true`, no route out) that the server shares with it. With no
//!   route out it cannot download models: put them in its cache directory
//!   first, or start it once on an ordinary network.
//!
//! Run it with `cargo run -p immich-db-examples --example immich_server_units`;
//! give a directory to also write the files there (for example
//! `~/.config/containers/systemd`, then `systemctl --user daemon-reload`).

use std::path::PathBuf;
use std::process::ExitCode;

use homelab_quadlet::{
    Container, ContainerUnit, Duration, HealthInterval, InstallSection, KeyValue, Network,
    NetworkUnit, Notify, PodmanVersion, RestartPolicy, Secret, ServiceSection, Severity, TimeSpan,
    UnitSection, UnitSet, VolumeMount, lint,
};

/// Where the seed's deployment keeps things.
const POOL: &str = "/mnt/btrfs-pool";
const LIBRARY: &str = "/mnt/btrfs-pool/subvol3-opptak/immich";
const ML_CACHE: &str = "/mnt/btrfs-pool/subvol7-containers/immich-ml-cache";
/// Immich's moving tag for its latest release; pin a version (`v2.x.y`) in a
/// real deployment.
const IMMICH_VERSION: &str = "release";

fn unit(description: &str) -> UnitSection {
    UnitSection {
        description: Some(description.to_owned()),
        ..UnitSection::default()
    }
}

fn always(timeout_s: u64) -> ServiceSection {
    ServiceSection {
        restart: Some(RestartPolicy::Always),
        timeout_start_sec: Some(TimeSpan::from_secs(timeout_s)),
        ..ServiceSection::default()
    }
}

fn health(c: &mut Container, command: &str) {
    c.health_cmd = Some(command.to_owned());
    c.health_interval = Some(HealthInterval::Every(Duration::from_secs(30)));
    c.health_startup_cmd = Some(command.to_owned());
    c.health_startup_interval = Some(HealthInterval::Every(Duration::from_secs(2)));
    c.health_startup_retries = Some(300);
    c.notify = Some(Notify::Healthy);
}

/// A sketch of the database layer, under the names `immich-db deploy` gives it
/// with its defaults (its own units differ in detail: Valkey reads its password
/// from a mounted secret file, for one).
fn database_layer() -> Result<Vec<(String, String)>, homelab_quadlet::Error> {
    let network = NetworkUnit {
        unit: unit("Network of the Immich database layer"),
        network: Network {
            subnet: vec!["10.89.5.0/24".parse().expect("a valid subnet")],
            gateway: vec!["10.89.5.1".parse().expect("a valid address")],
            ..Network::default()
        },
        install: InstallSection::default_target(),
        ..NetworkUnit::default()
    };
    let mut postgres = Container {
        image: Some("ghcr.io/immich-app/postgres:14-vectorchord0.4.3-pgvectors0.2.0".into()),
        container_name: Some("postgresql-immich".into()),
        network: vec!["photos.network".into()],
        environment: vec![
            KeyValue::new("POSTGRES_USER", "immich"),
            KeyValue::new("POSTGRES_DB", "immich"),
        ],
        secret: vec![Secret::env("postgres-password", "POSTGRES_PASSWORD")],
        volume: vec![
            VolumeMount::bind(
                format!("{POOL}/subvol7-containers/postgresql-immich"),
                "/var/lib/postgresql/data",
            )
            .with_option("Z"),
        ],
        shm_size: Some("128m".into()),
        ..Container::default()
    };
    health(&mut postgres, "pg_isready -h 127.0.0.1 -U immich -d immich");
    let mut valkey = Container {
        image: Some("docker.io/valkey/valkey:8".into()),
        container_name: Some("redis-immich".into()),
        network: vec!["photos.network".into()],
        secret: vec![Secret::env("redis-password", "REDISCLI_AUTH")],
        volume: vec![
            VolumeMount::bind(format!("{POOL}/subvol7-containers/redis-immich"), "/data")
                .with_option("Z"),
        ],
        ..Container::default()
    };
    // The password reaches valkey-server on its standard input, not in its
    // arguments (`%%` is a literal `%` for systemd).
    valkey.exec = Some(
        r#"sh -c 'printf "requirepass %%s\n" "$REDISCLI_AUTH" | exec valkey-server -'"#.to_owned(),
    );
    health(&mut valkey, "valkey-cli ping");
    let container = |description: &str, c: Container, timeout: u64| ContainerUnit {
        unit: unit(description),
        container: c,
        service: always(timeout),
        install: InstallSection::default_target(),
        ..ContainerUnit::default()
    };
    Ok(vec![
        ("photos.network".into(), network.render()?),
        (
            "postgresql-immich.container".into(),
            container("PostgreSQL for Immich", postgres, 900).render()?,
        ),
        (
            "redis-immich.container".into(),
            container("Valkey for Immich", valkey, 300).render()?,
        ),
    ])
}

/// The Immich server, its machine-learning container and their internal
/// network.
fn immich() -> Result<Vec<(String, String)>, homelab_quadlet::Error> {
    let ml_network = NetworkUnit {
        unit: unit("Internal network between the Immich server and machine learning"),
        network: Network {
            internal: Some(true),
            ..Network::default()
        },
        install: InstallSection::default_target(),
        ..NetworkUnit::default()
    };

    let databases = vec![
        "postgresql-immich.service".to_owned(),
        "redis-immich.service".to_owned(),
    ];
    // Both images bring their own health checks.
    let server = Container {
        image: Some(format!("ghcr.io/immich-app/immich-server:{IMMICH_VERSION}")),
        container_name: Some("immich-server".into()),
        // The database network (which also orders the server after its
        // service) and the internal one shared with machine learning.
        network: vec!["photos.network".into(), "immich-ml.network".into()],
        publish_port: vec!["127.0.0.1:2283:2283".into()],
        environment: vec![
            KeyValue::new("DB_HOSTNAME", "postgresql-immich"),
            KeyValue::new("DB_USERNAME", "immich"),
            KeyValue::new("DB_DATABASE_NAME", "immich"),
            KeyValue::new("REDIS_HOSTNAME", "redis-immich"),
            KeyValue::new("IMMICH_MACHINE_LEARNING_URL", "http://immich-ml:3003"),
        ],
        secret: vec![
            Secret::env("postgres-password", "DB_PASSWORD"),
            Secret::env("redis-password", "REDIS_PASSWORD"),
            Secret::env("immich-jwt-secret", "JWT_SECRET"),
        ],
        volume: vec![VolumeMount::bind(LIBRARY, "/data").with_option("Z")],
        ..Container::default()
    };
    let server = ContainerUnit {
        unit: UnitSection {
            requires: databases.clone(),
            after: databases,
            ..unit("Immich server")
        },
        container: server,
        service: always(900),
        install: InstallSection::default_target(),
        ..ContainerUnit::default()
    };

    let ml = Container {
        image: Some(format!(
            "ghcr.io/immich-app/immich-machine-learning:{IMMICH_VERSION}"
        )),
        container_name: Some("immich-ml".into()),
        network: vec!["immich-ml.network".into()],
        volume: vec![VolumeMount::bind(ML_CACHE, "/cache").with_option("Z")],
        ..Container::default()
    };
    let ml = ContainerUnit {
        unit: unit("Immich machine learning"),
        container: ml,
        service: always(900),
        install: InstallSection::default_target(),
        ..ContainerUnit::default()
    };

    Ok(vec![
        ("immich-ml.network".into(), ml_network.render()?),
        ("immich-server.container".into(), server.render()?),
        ("immich-ml.container".into(), ml.render()?),
    ])
}

fn main() -> ExitCode {
    let target = PodmanVersion::new(5, 4, 2);
    let (database, server) = match (database_layer(), immich()) {
        (Ok(d), Ok(s)) => (d, s),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("cannot render a unit: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut set = UnitSet::new();
    for (name, text) in database.iter().chain(&server) {
        if let Err(e) = set.insert(name, text) {
            eprintln!("{name}: {e}");
            return ExitCode::FAILURE;
        }
    }
    for (name, text) in &server {
        let service = set
            .get(name)
            .map_or_else(String::new, |u| format!(" (service {})", u.names.service));
        println!("# {name}{service}\n{text}");
    }

    let findings = lint(&set, target);
    for finding in &findings {
        println!("{finding}");
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    println!(
        "lint: {} unit(s) checked together for podman {target}: {errors} error(s), {} other finding(s)",
        database.len() + server.len(),
        findings.len() - errors
    );

    // Without the database layer in the set, the server's dependencies point
    // at units nothing generates: the lint says so.
    let mut alone = UnitSet::new();
    for (name, text) in &server {
        let _ = alone.insert(name, text);
    }
    let missing = lint(&alone, target)
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    println!("lint without the database layer: {missing} error(s), as expected");

    if let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) {
        for (name, text) in &server {
            let path = dir.join(name);
            if let Err(e) = std::fs::write(&path, text) {
                eprintln!("cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            println!("wrote {}", path.display());
        }
    }
    if errors > 0 || missing == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
