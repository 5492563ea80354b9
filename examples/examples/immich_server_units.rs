//! Needs no host.
//!
//! The next step after the database layer: the Immich server and its
//! machine-learning container as Quadlet units, rendered with
//! `homelab-quadlet` and linted together with the database layer's own units,
//! as `homelab-immich` renders them from a configuration (the defaults here;
//! give a configuration file to use yours).
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
//! Run it with `cargo run -p immich-db-examples --example immich_server_units
//! [CONFIG [DIR]]`; give a directory to also write the server's files there
//! (for example `~/.config/containers/systemd`, then `systemctl --user
//! daemon-reload`).

use std::path::PathBuf;
use std::process::ExitCode;

use homelab_immich::Deployment;
use homelab_immich::config::{self, Loaded};
use homelab_immich::desired;
use homelab_quadlet::{
    Container, ContainerUnit, InstallSection, KeyValue, Network, NetworkUnit, PodmanVersion,
    RestartPolicy, Secret, ServiceSection, Severity, TimeSpan, UnitSection, UnitSet, VolumeMount,
    lint,
};

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

/// The database layer's units, as `immich-db deploy` writes them for podman
/// `target`.
fn database_layer(deployment: &Deployment, target: PodmanVersion) -> Vec<(String, String)> {
    desired::units(deployment, target)
        .into_iter()
        .map(|u| (u.file_name, u.content))
        .collect()
}

/// The Immich server, its machine-learning container and their internal
/// network.
fn immich(deployment: &Deployment) -> Result<Vec<(String, String)>, homelab_quadlet::Error> {
    let c = &deployment.config;
    let service = |container: &str| format!("{container}.service");
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
        service(&c.postgres.container_name),
        service(&c.valkey.container_name),
    ];
    // Both images bring their own health checks.
    let server = Container {
        image: Some(format!("ghcr.io/immich-app/immich-server:{IMMICH_VERSION}")),
        container_name: Some("immich-server".into()),
        // The database network (which also orders the server after its
        // service) and the internal one shared with machine learning.
        network: vec![deployment.network_unit_file(), "immich-ml.network".into()],
        publish_port: vec!["127.0.0.1:2283:2283".into()],
        environment: vec![
            KeyValue::new("DB_HOSTNAME", &c.postgres.container_name),
            KeyValue::new("DB_USERNAME", &c.postgres.user),
            KeyValue::new("DB_DATABASE_NAME", &c.postgres.database),
            KeyValue::new("REDIS_HOSTNAME", &c.valkey.container_name),
            KeyValue::new("IMMICH_MACHINE_LEARNING_URL", "http://immich-ml:3003"),
        ],
        secret: vec![
            Secret::env(&c.postgres.password_secret, "DB_PASSWORD"),
            Secret::env(&c.valkey.password_secret, "REDIS_PASSWORD"),
        ],
        volume: vec![
            VolumeMount::bind(deployment.dirs.library.display().to_string(), "/data")
                .with_option("Z"),
        ],
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
        volume: vec![
            VolumeMount::bind(deployment.dirs.ml_cache.display().to_string(), "/cache")
                .with_option("Z"),
        ],
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
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let loaded = match args.next() {
        Some(file) => config::load(Some(&file)),
        None => Ok(Loaded::defaults()),
    };
    let deployment = match loaded.and_then(|l| l.validate()) {
        Ok(deployment) => deployment,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let database = database_layer(&deployment, target);
    let server = match immich(&deployment) {
        Ok(server) => server,
        Err(e) => {
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

    if let Some(dir) = args.next() {
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
