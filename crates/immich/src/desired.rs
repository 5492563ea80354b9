//! The desired state of a deployment: the three Quadlet units and the four
//! directories, derived from the configuration alone.

use std::path::PathBuf;

use homelab_quadlet::{
    AutoUpdate, Code, Container, ContainerUnit, Duration, Finding, HealthInterval, InstallSection,
    KeyValue, LintOptions, Network, NetworkUnit, Notify, PodmanVersion, RawEntry, RestartPolicy,
    Scope as LintScope, Secret, ServiceSection, Severity, TimeSpan, UnitKind, UnitSection, UnitSet,
    VolumeMount, naming,
};
use serde::Serialize;

use crate::config::containers::ContainerSettings;
use crate::config::{Deployment, Scope};

/// The first line of every unit this tool writes.
pub const HEADER: &str =
    "# Written by immich-db from its configuration: edit that and run `immich-db deploy`.";

/// The first line of the Immich server's and machine learning's units.
pub const SERVER_HEADER: &str =
    "# Written by immich-db from its configuration: edit that and run `immich-db server units`.";

/// How long systemd waits for PostgreSQL to become healthy: a first
/// initialisation, or an image pull, can take minutes.
pub const POSTGRES_START_TIMEOUT_S: u64 = 900;
/// How long systemd waits for Valkey to become healthy.
pub const VALKEY_START_TIMEOUT_S: u64 = 300;

/// Where the PostgreSQL password is mounted in its container (under
/// `/run/secrets`).
pub const POSTGRES_SECRET_FILE: &str = "postgres-password";
/// Where the Valkey password is mounted in its container (under
/// `/run/secrets`).
pub const VALKEY_SECRET_FILE: &str = "valkey-password";

/// Where the PostgreSQL container sees the backup directory, read-only: a
/// restore's `pg_restore` reads the dump there in place, with parallel jobs.
pub const BACKUP_MOUNT: &str = "/var/lib/immich-db-backups";

/// Valkey's command: the server reads its `requirepass` line from standard
/// input, which is a FIFO that this shell opens both ways, fills from the
/// mounted secret and closes; then the shell becomes the image's entrypoint
/// (`docker-entrypoint.sh`, as in the official image) with `valkey-server -`.
/// The entrypoint does what it does for any start: as root, it gives the data
/// directory to the image's unprivileged user and runs itself again as that
/// user (with `setpriv`, keeping standard input), then becomes the server. So
/// the server runs as the image's user, not as root, and is the container's
/// PID 1, which gets `SIGTERM` on stop (and saves its data); the password is in
/// no process's arguments, no environment and no file but the mounted secret,
/// and the FIFO is unlinked before the server starts. `read` and `printf` are
/// shell builtins. For systemd, `%%` is a literal `%`.
fn valkey_command() -> String {
    format!(
        "sh -c 'f=/tmp/valkey-config; rm -f \"$f\"; mkfifo -m 600 \"$f\" \
         && exec 3<>\"$f\" 4<\"$f\" && rm -f \"$f\" \
         && {{ IFS= read -r p || [ -n \"$p\" ]; }} </run/secrets/{VALKEY_SECRET_FILE} \
         && printf \"requirepass %%s\\n\" \"$p\" >&3 && p= \
         && exec {VALKEY_ENTRYPOINT} valkey-server - <&4 4<&- 3>&-'"
    )
}

/// The entrypoint of Valkey's official image, which drops root for the image's
/// `valkey` user.
pub const VALKEY_ENTRYPOINT: &str = "docker-entrypoint.sh";

/// PostgreSQL's health check, run by podman with `/bin/sh -c`.
///
/// Over TCP on purpose: while the image initialises a new database it runs a
/// temporary server without TCP, so this passes only once the real one runs.
///
/// `pg_isready` comes from the server's own directory when the image names its
/// major version in `PG_MAJOR`, as the official image does: there, `pg_isready`
/// on the `PATH` is Debian's Perl wrapper, which costs ten times what the check
/// does, and the check runs every second while the server starts.
pub(crate) fn postgres_health_command(user: &str, database: &str) -> String {
    format!(
        "b=/usr/lib/postgresql/$PG_MAJOR/bin/pg_isready; [ -x \"$b\" ] || b=pg_isready; \
         exec \"$b\" -h 127.0.0.1 -U {user} -d {database}"
    )
}

/// Valkey's health check: PING with the mounted password answers PONG (an
/// answer without the password, `NOAUTH`, would also exit 0). Podman runs it
/// with `/bin/sh -c`.
fn valkey_health_command() -> String {
    format!(
        "{{ IFS= read -r REDISCLI_AUTH || [ -n \"$REDISCLI_AUTH\" ]; }} \
         </run/secrets/{VALKEY_SECRET_FILE} && export REDISCLI_AUTH \
         && test \"$(valkey-cli --no-auth-warning ping)\" = PONG"
    )
}

/// What a unit is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Role {
    /// The Podman network both containers join.
    Network,
    /// PostgreSQL.
    Postgres,
    /// Valkey.
    Valkey,
    /// The Immich server (`immich-db server units`).
    Server,
    /// Immich's machine learning (`immich-db server units`).
    MachineLearning,
}

/// A unit file as it must be on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unit {
    /// What it is for.
    pub role: Role,
    /// File name in the unit directory (`photos.network`).
    pub file_name: String,
    /// The service systemd runs for it (`photos-network.service`).
    pub service: String,
    /// The file's text.
    pub content: String,
}

impl Unit {
    /// Where it goes: in the deployment's unit directory.
    pub fn path(&self, deployment: &Deployment) -> PathBuf {
        deployment.unit_dir.join(&self.file_name)
    }
}

/// Whether copy-on-write is to be off in a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Cow {
    /// Databases: NOCOW, set while the directory is empty.
    Off,
    /// Library and caches: copy-on-write, so snapshots protect them.
    On,
}

/// A directory of the deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Dir {
    /// Its configuration key (`postgres_dir`).
    pub key: &'static str,
    /// Where it is.
    pub path: PathBuf,
    /// Whether copy-on-write is off.
    pub cow: Cow,
}

/// The four directories, databases first.
pub fn dirs(deployment: &Deployment) -> Vec<Dir> {
    let d = &deployment.dirs;
    vec![
        Dir {
            key: "postgres_dir",
            path: d.postgres.clone(),
            cow: Cow::Off,
        },
        Dir {
            key: "valkey_dir",
            path: d.valkey.clone(),
            cow: Cow::Off,
        },
        Dir {
            key: "library_dir",
            path: d.library.clone(),
            cow: Cow::On,
        },
        Dir {
            key: "ml_cache_dir",
            path: d.ml_cache.clone(),
            cow: Cow::On,
        },
    ]
}

/// What starts the units at boot: `default.target` of a user's manager,
/// `multi-user.target` of the system manager.
fn install(scope: Scope) -> InstallSection {
    match scope {
        Scope::User => InstallSection::default_target(),
        Scope::System => InstallSection {
            wanted_by: vec!["multi-user.target".to_owned()],
            ..InstallSection::default()
        },
    }
}

fn described(description: &str) -> UnitSection {
    UnitSection {
        description: Some(description.to_owned()),
        ..UnitSection::default()
    }
}

/// The rendered text with the header line above it.
fn with_header(rendered: std::result::Result<String, homelab_quadlet::Error>) -> String {
    match rendered {
        Ok(text) => format!("{HEADER}\n{text}"),
        // Every value comes from a checked configuration and fits on one line; a
        // unit that cannot be rendered is written as a comment that the lint
        // before writing reports.
        Err(e) => format!("{HEADER}\n# cannot render this unit: {e}\n"),
    }
}

/// The network unit, for podman release `podman`.
pub fn network_unit(deployment: &Deployment, podman: PodmanVersion) -> Unit {
    let unit = NetworkUnit {
        unit: described("Network of the Immich database layer"),
        network: Network {
            subnet: vec![deployment.subnet],
            gateway: vec![deployment.gateway],
            dns: deployment.dns.clone(),
            ..Network::default()
        },
        install: install(deployment.scope),
        ..NetworkUnit::default()
    };
    Unit {
        role: Role::Network,
        file_name: deployment.network_unit_file(),
        service: deployment.network_service(),
        content: with_header(unit.render_for(podman)),
    }
}

/// Health checks: a startup check every second so readiness is seen within about
/// a second, then a calm regular check; systemd counts the service as started
/// once the container is healthy.
fn health(c: &mut Container, command: &str) {
    c.health_cmd = Some(command.to_owned());
    c.health_interval = Some(HealthInterval::Every(Duration::from_secs(30)));
    c.health_timeout = Some(Duration::from_secs(5));
    c.health_retries = Some(5);
    c.health_startup_cmd = Some(command.to_owned());
    c.health_startup_interval = Some(HealthInterval::Every(Duration::from_secs(1)));
    c.health_startup_timeout = Some(Duration::from_secs(5));
    c.health_startup_retries = Some(900);
    c.notify = Some(Notify::Healthy);
}

fn service(timeout_s: u64) -> ServiceSection {
    ServiceSection {
        restart: Some(RestartPolicy::Always),
        // A second between a crash and the next start: a container that
        // cannot run restarts at a calm pace, not ten times a second.
        restart_sec: Some(TimeSpan::from_secs(1)),
        timeout_start_sec: Some(TimeSpan::from_secs(timeout_s)),
        ..ServiceSection::default()
    }
}

/// The `[Unit]` section of a container's service, which comes back however
/// often it ends: systemd's default start limit (five starts within ten
/// seconds) would otherwise leave a database that was killed a sixth time in
/// quick succession failed for good, with `Restart=always` in its unit.
fn always_back(description: &str) -> UnitSection {
    UnitSection {
        other: vec![RawEntry::new("StartLimitIntervalSec", "0")],
        ..described(description)
    }
}

/// The PostgreSQL container unit, for podman release `podman`.
pub fn postgres_unit(deployment: &Deployment, podman: PodmanVersion) -> Unit {
    let pg = &deployment.config.postgres;
    let mut c = Container {
        image: Some(pg.image.clone()),
        container_name: Some(pg.container_name.clone()),
        network: vec![deployment.network_unit_file()],
        environment: vec![
            KeyValue::new("POSTGRES_USER", &pg.user),
            KeyValue::new("POSTGRES_DB", &pg.database),
            KeyValue::new(
                "POSTGRES_PASSWORD_FILE",
                format!("/run/secrets/{POSTGRES_SECRET_FILE}"),
            ),
        ],
        // A file, not an environment variable: every command run in the
        // container (health checks, verify's login) inherits the container's
        // environment, and podman writes each one's environment to a file.
        secret: vec![Secret::mount(&pg.password_secret, POSTGRES_SECRET_FILE)],
        // Where the image keeps its data: PostgreSQL 18's images mount the
        // parent of their versioned cluster directory.
        volume: vec![
            VolumeMount::bind(
                deployment.dirs.postgres.display().to_string(),
                &deployment.postgres_layout.mount,
            )
            .with_option("Z"),
            VolumeMount::bind(deployment.backup.dir.display().to_string(), BACKUP_MOUNT)
                .with_option("ro"),
        ],
        shm_size: Some(pg.shm_size.clone()),
        user_ns: rootless_user_ns(deployment),
        ..Container::default()
    };
    if !pg.initdb_args.is_empty() {
        c.environment
            .push(KeyValue::new("POSTGRES_INITDB_ARGS", &pg.initdb_args));
    }
    if let Some(storage) = deployment.containers.storage_type {
        c.environment
            .push(KeyValue::new("DB_STORAGE_TYPE", storage.as_str()));
    }
    extras(
        &mut c,
        &deployment.containers.postgres,
        crate::direct::POSTGRES_PORT,
        podman,
    );
    health(&mut c, &postgres_health_command(&pg.user, &pg.database));
    let unit = ContainerUnit {
        unit: always_back("PostgreSQL for Immich"),
        container: c,
        service: service(POSTGRES_START_TIMEOUT_S),
        install: install(deployment.scope),
        ..ContainerUnit::default()
    };
    Unit {
        role: Role::Postgres,
        file_name: container_file(&pg.container_name),
        service: naming::default_service_name(
            &container_file(&pg.container_name),
            UnitKind::Container,
        ),
        content: with_header(unit.render_for(podman)),
    }
}

/// Rootless podman runs a container's processes as the deploying user
/// (`UserNS=keep-id`), not as a subordinate UID: the data directories stay the
/// user's, so that every directory operation of this tool (NOCOW audit and
/// repair, disk use, removal) works as that user. The images start as that user
/// too, and their entrypoints then run the server as it.
fn rootless_user_ns(deployment: &Deployment) -> Option<String> {
    deployment.rootless.then(|| "keep-id".to_owned())
}

/// What the configuration adds to a container, for podman release `podman`:
/// its extra environment and podman options, its fixed address, its port
/// published on the host.
fn extras(c: &mut Container, settings: &ContainerSettings, port: u16, podman: PodmanVersion) {
    for (name, value) in &settings.environment {
        c.environment.push(KeyValue::new(name, value));
    }
    if !settings.podman_args.is_empty() {
        c.push_podman_args(&settings.podman_args);
    }
    if let Some(at) = settings.publish {
        // `[::1]:6379` is how podman writes an IPv6 host address too.
        c.publish_port.push(format!("{at}:{port}"));
    }
    if let Some(ip) = settings.ip {
        // `IP=` arrived in 4.5; before, the option itself.
        if podman >= PodmanVersion::V4_5 {
            c.ip = Some(ip);
        } else {
            c.push_podman_args(["--ip".to_owned(), ip.to_string()]);
        }
    }
}

/// `AutoUpdate=registry`, for podman release `podman`: before 4.6 as the label
/// that the key stands for.
fn auto_update(c: &mut Container, podman: PodmanVersion) {
    if podman >= PodmanVersion::V4_6 {
        c.auto_update = Some(AutoUpdate::Registry);
    } else {
        c.label
            .push(KeyValue::new("io.containers.autoupdate", "registry"));
    }
}

/// The unit file of a container, named as the container.
fn container_file(container: &str) -> String {
    format!("{container}.{}", UnitKind::Container.extension())
}

/// The Valkey container unit, for podman release `podman`.
pub fn valkey_unit(deployment: &Deployment, podman: PodmanVersion) -> Unit {
    let vk = &deployment.config.valkey;
    let mut c = Container {
        image: Some(vk.image.clone()),
        container_name: Some(vk.container_name.clone()),
        network: vec![deployment.network_unit_file()],
        volume: vec![
            VolumeMount::bind(deployment.dirs.valkey.display().to_string(), "/data")
                .with_option("Z"),
        ],
        user_ns: rootless_user_ns(deployment),
        ..Container::default()
    };
    if vk.require_password {
        c.secret = vec![Secret {
            // Readable by root alone in a rootful container. In a rootless one
            // the container's processes run as the deploying user, whose own
            // runtime directory holds the file; no other user can reach it.
            mode: (!deployment.rootless).then_some(0o400),
            ..Secret::mount(&vk.password_secret, VALKEY_SECRET_FILE)
        }];
        c.exec = Some(valkey_command());
        health(&mut c, &valkey_health_command());
    } else {
        health(&mut c, "valkey-cli ping");
    }
    if vk.auto_update {
        auto_update(&mut c, podman);
    }
    extras(
        &mut c,
        &deployment.containers.valkey,
        crate::direct::VALKEY_PORT,
        podman,
    );
    let unit = ContainerUnit {
        unit: always_back("Valkey for Immich"),
        container: c,
        service: service(VALKEY_START_TIMEOUT_S),
        install: install(deployment.scope),
        ..ContainerUnit::default()
    };
    Unit {
        role: Role::Valkey,
        file_name: container_file(&vk.container_name),
        service: naming::default_service_name(
            &container_file(&vk.container_name),
            UnitKind::Container,
        ),
        content: with_header(unit.render_for(podman)),
    }
}

/// Lints the three units together, as the generator of podman release `podman`
/// will read them, for the scope.
pub fn lint(units: &[Unit], podman: PodmanVersion, scope: Scope) -> Vec<Finding> {
    let mut set = UnitSet::new();
    let mut findings = Vec::new();
    for unit in units {
        if let Err(e) = set.insert(&unit.file_name, &unit.content) {
            findings.push(Finding::new(
                unit.file_name.clone(),
                Severity::Error,
                Code::ParseError,
                e.to_string(),
            ));
        }
    }
    let options = LintOptions {
        target: podman,
        scope: match scope {
            crate::config::Scope::User => LintScope::User,
            crate::config::Scope::System => LintScope::System,
        },
    };
    findings.extend(options.run(&set));
    findings
}

/// All three units, network first, for podman release `podman`.
pub fn units(deployment: &Deployment, podman: PodmanVersion) -> Vec<Unit> {
    vec![
        network_unit(deployment, podman),
        postgres_unit(deployment, podman),
        valkey_unit(deployment, podman),
    ]
}

/// The Immich server's unit, for podman release `podman`: on the layer's
/// network, after both databases (which it requires) and the machine learning
/// (which it wants), the library at `/data`, and the passwords as files mounted
/// from the layer's own secrets ([`crate::server::environment`]). The image's
/// own health check is kept.
pub fn server_unit(deployment: &Deployment, podman: PodmanVersion) -> Unit {
    let cfg = &deployment.config;
    let server = &cfg.server;
    let env = crate::server::environment(deployment);
    let mut c = Container {
        image: Some(server.image.clone()),
        container_name: Some(server.container_name.clone()),
        network: vec![deployment.network_unit_file()],
        environment: env
            .variables
            .iter()
            .map(|(k, v)| KeyValue::new(k, v))
            .collect(),
        secret: env
            .secrets
            .iter()
            .map(|s| Secret {
                // The server runs as root in a rootful container; in a rootless
                // one root is the deploying user.
                mode: (!deployment.rootless).then_some(0o400),
                ..Secret::mount(&s.secret, s.target())
            })
            .collect(),
        volume: vec![
            VolumeMount::bind(deployment.dirs.library.display().to_string(), "/data")
                .with_option("Z"),
            VolumeMount::bind("/etc/localtime", "/etc/localtime").with_option("ro"),
        ],
        ..Container::default()
    };
    c.environment.push(KeyValue::new(
        "IMMICH_MACHINE_LEARNING_URL",
        format!(
            "http://{}:{}",
            server.ml_container_name,
            crate::server::ML_PORT
        ),
    ));
    extras(
        &mut c,
        &deployment.containers.server,
        crate::server::SERVER_PORT,
        podman,
    );
    let databases = vec![
        format!("{}.service", cfg.postgres.container_name),
        format!("{}.service", cfg.valkey.container_name),
    ];
    let ml = format!("{}.service", server.ml_container_name);
    let mut after = databases.clone();
    after.push(ml.clone());
    let unit = ContainerUnit {
        unit: UnitSection {
            requires: databases,
            wants: vec![ml],
            after,
            ..always_back("Immich server")
        },
        container: c,
        service: service(POSTGRES_START_TIMEOUT_S),
        install: install(deployment.scope),
        ..ContainerUnit::default()
    };
    let file_name = container_file(&server.container_name);
    Unit {
        role: Role::Server,
        service: naming::default_service_name(&file_name, UnitKind::Container),
        file_name,
        content: with_header(unit.render_for(podman)).replacen(HEADER, SERVER_HEADER, 1),
    }
}

/// Immich's machine-learning unit, for podman release `podman`: on the layer's
/// network, which is not internal, so that it can download its models into the
/// model cache at `/cache`; the server reaches it by its name.
pub fn machine_learning_unit(deployment: &Deployment, podman: PodmanVersion) -> Unit {
    let server = &deployment.config.server;
    let mut c = Container {
        image: Some(server.ml_image.clone()),
        container_name: Some(server.ml_container_name.clone()),
        network: vec![deployment.network_unit_file()],
        volume: vec![
            VolumeMount::bind(deployment.dirs.ml_cache.display().to_string(), "/cache")
                .with_option("Z"),
        ],
        ..Container::default()
    };
    extras(
        &mut c,
        &deployment.containers.ml,
        crate::server::ML_PORT,
        podman,
    );
    let unit = ContainerUnit {
        unit: always_back("Immich machine learning"),
        container: c,
        service: service(POSTGRES_START_TIMEOUT_S),
        install: install(deployment.scope),
        ..ContainerUnit::default()
    };
    let file_name = container_file(&server.ml_container_name);
    Unit {
        role: Role::MachineLearning,
        service: naming::default_service_name(&file_name, UnitKind::Container),
        file_name,
        content: with_header(unit.render_for(podman)).replacen(HEADER, SERVER_HEADER, 1),
    }
}

/// The Immich server's and machine learning's units (not among [`units`]: only
/// `immich-db server units` writes them).
pub fn server_units(deployment: &Deployment, podman: PodmanVersion) -> Vec<Unit> {
    vec![
        server_unit(deployment, podman),
        machine_learning_unit(deployment, podman),
    ]
}

/// A unit's names: its file and its service.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnitName {
    /// What it is for.
    pub role: Role,
    /// File name in the unit directory (`photos.network`).
    pub file_name: String,
    /// The service systemd runs for it (`photos-network.service`).
    pub service: String,
}

impl UnitName {
    /// Where it goes: in the deployment's unit directory.
    pub fn path(&self, deployment: &Deployment) -> PathBuf {
        deployment.unit_dir.join(&self.file_name)
    }
}

/// The names of the three units, network first: what a unit is called does not
/// depend on the podman release it is written for.
pub fn unit_names(deployment: &Deployment) -> Vec<UnitName> {
    let container = |role, name: &str| {
        let file_name = container_file(name);
        UnitName {
            role,
            service: naming::default_service_name(&file_name, UnitKind::Container),
            file_name,
        }
    };
    vec![
        UnitName {
            role: Role::Network,
            file_name: deployment.network_unit_file(),
            service: deployment.network_service(),
        },
        container(Role::Postgres, &deployment.config.postgres.container_name),
        container(Role::Valkey, &deployment.config.valkey.container_name),
    ]
}

/// The names of the Immich server's and machine learning's units.
pub fn server_unit_names(deployment: &Deployment) -> Vec<UnitName> {
    let server = &deployment.config.server;
    [
        (Role::Server, &server.container_name),
        (Role::MachineLearning, &server.ml_container_name),
    ]
    .into_iter()
    .map(|(role, name)| {
        let file_name = container_file(name);
        UnitName {
            role,
            service: naming::default_service_name(&file_name, UnitKind::Container),
            file_name,
        }
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Loaded, validate};

    fn defaults() -> Deployment {
        validate(&Loaded::defaults()).unwrap()
    }

    #[test]
    fn units_follow_the_naming_rules() {
        let d = defaults();
        let units = units(&d, PodmanVersion::V5_4);
        let names: Vec<_> = units
            .iter()
            .map(|u| (u.file_name.as_str(), u.service.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("photos.network", "photos-network.service"),
                ("postgresql-immich.container", "postgresql-immich.service"),
                ("redis-immich.container", "redis-immich.service"),
            ]
        );
        for unit in &units {
            assert!(
                unit.content
                    .contains("[Install]\nWantedBy=default.target\n")
            );
        }
        assert!(units[1].content.contains("Network=photos.network\n"));
        assert!(
            units[1]
                .content
                .contains("Secret=postgres-password,type=mount,target=postgres-password\n")
        );
        assert!(
            units[1]
                .content
                .contains("Environment=POSTGRES_PASSWORD_FILE=/run/secrets/postgres-password\n")
        );
        assert!(
            units[2]
                .content
                .contains("Secret=redis-password,type=mount,target=valkey-password,mode=0400\n")
        );
        assert!(!units[0].content.contains("DNS="));
    }

    #[test]
    fn no_password_travels_in_an_environment_variable() {
        // Commands run in a container inherit its environment, and podman
        // writes each one's environment to a file: the passwords are files.
        let d = defaults();
        for unit in units(&d, PodmanVersion::V5_4) {
            assert!(!unit.content.contains("type=env"), "{}", unit.content);
            assert!(!unit.content.contains("REDISCLI_AUTH="), "{}", unit.content);
        }
    }

    #[test]
    fn valkey_becomes_pid_1_and_reads_its_password_from_a_fifo() {
        let exec = valkey_command();
        // The server is exec'd by the shell, not run in a pipeline's subshell.
        assert!(!exec.replace("||", "").contains('|'), "{exec}");
        // Through the image's entrypoint, which drops root for its user.
        assert!(
            exec.contains("&& exec docker-entrypoint.sh valkey-server - <&4"),
            "{exec}"
        );
        // The FIFO is unlinked before the server starts; the password is read
        // by builtins from the mounted secret.
        assert!(exec.contains("mkfifo -m 600"), "{exec}");
        assert!(exec.contains(&format!("</run/secrets/{VALKEY_SECRET_FILE}")));
        // `%%` is a literal `%` for systemd.
        assert!(exec.contains("requirepass %%s"), "{exec}");
        assert!(!exec.replace("%%", "").contains('%'), "{exec}");
    }

    #[test]
    fn units_lint_clean_for_every_podman_from_4_4() {
        let d = defaults();
        for podman in [
            PodmanVersion::V4_4,
            PodmanVersion::new(4, 9, 3),
            PodmanVersion::V5_0,
            PodmanVersion::new(5, 4, 2),
            PodmanVersion::LATEST_KNOWN,
        ] {
            let units = units(&d, podman);
            let errors: Vec<String> = lint(&units, podman, Scope::User)
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .map(ToString::to_string)
                .collect();
            assert!(errors.is_empty(), "{podman}: {errors:#?}");
            for unit in &units[1..] {
                // Health checks in every release; readiness waited for.
                assert!(unit.content.contains("health-cmd") || unit.content.contains("HealthCmd="));
                let waits = unit.content.contains("Notify=healthy");
                let polls = unit
                    .content
                    .contains("ExecStartPost=/bin/sh -c 'until podman healthcheck run ");
                assert_eq!(
                    (waits, polls),
                    (podman >= PodmanVersion::V5_0, podman < PodmanVersion::V5_0),
                    "{podman}: {}",
                    unit.content
                );
            }
        }
    }

    #[test]
    fn rootless_containers_run_as_the_user() {
        let mut d = defaults();
        d.rootless = false;
        for unit in &units(&d, PodmanVersion::V5_4)[1..] {
            assert!(!unit.content.contains("UserNS="), "{}", unit.content);
        }
        d.rootless = true;
        let rootless = units(&d, PodmanVersion::V5_4);
        for unit in &rootless[1..] {
            assert!(
                unit.content.contains("UserNS=keep-id\n"),
                "{}",
                unit.content
            );
        }
        assert!(
            rootless[2]
                .content
                .contains("Secret=redis-password,type=mount,target=valkey-password\n"),
            "{}",
            rootless[2].content
        );
    }

    #[test]
    fn system_units_start_with_multi_user_target() {
        let mut d = defaults();
        d.scope = Scope::System;
        for unit in units(&d, PodmanVersion::V5_4) {
            assert!(
                unit.content
                    .contains("[Install]\nWantedBy=multi-user.target\n"),
                "{}",
                unit.content
            );
        }
    }

    #[test]
    fn names_are_those_of_the_units() {
        let d = defaults();
        let names = unit_names(&d);
        for (unit, name) in units(&d, PodmanVersion::V5_4).iter().zip(&names) {
            assert_eq!(
                (unit.role, &unit.file_name, &unit.service),
                (name.role, &name.file_name, &name.service)
            );
        }
    }

    #[test]
    fn rendering_is_deterministic() {
        let d = defaults();
        assert_eq!(
            units(&d, PodmanVersion::V5_4),
            units(&d, PodmanVersion::V5_4)
        );
    }

    /// The releases whose generators the units are written for.
    const RELEASES: [PodmanVersion; 5] = [
        PodmanVersion::V4_4,
        PodmanVersion::new(4, 9, 3),
        PodmanVersion::V5_0,
        PodmanVersion::new(5, 4, 2),
        PodmanVersion::LATEST_KNOWN,
    ];

    fn configured(text: &str) -> Deployment {
        let loaded = crate::config::parse(text, crate::config::Origin::Defaults).unwrap();
        validate(&loaded).unwrap()
    }

    fn errors(units: &[Unit], podman: PodmanVersion) -> Vec<String> {
        lint(units, podman, Scope::User)
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn extra_settings_are_written_into_the_units_for_every_podman() {
        let d = configured(
            "[postgres]\nstorage_type = \"HDD\"\npublish = \"127.0.0.1:15432\"\nip = \"10.89.5.10\"\npodman_args = [\"--cpus=2\", \"--label\", \"a b\"]\nenvironment = { TZ = \"Europe/Oslo\" }\n[valkey]\nauto_update = true\npublish = \"[::1]:16379\"\nip = \"10.89.5.11\"\nenvironment = { VALKEY_EXTRA_FLAGS = \"--save 60 1\" }\n",
        );
        for podman in RELEASES {
            let units = units(&d, podman);
            assert!(
                errors(&units, podman).is_empty(),
                "{podman}: {:#?}",
                errors(&units, podman)
            );
        }
        let units = units(&d, PodmanVersion::new(5, 4, 2));
        let (pg, vk) = (&units[1].content, &units[2].content);
        for line in [
            "Environment=DB_STORAGE_TYPE=HDD\n",
            "Environment=TZ=Europe/Oslo\n",
            "PodmanArgs=--cpus=2 --label \"a b\"\n",
            "PublishPort=127.0.0.1:15432:5432\n",
            "IP=10.89.5.10\n",
        ] {
            assert!(pg.contains(line), "{line}: {pg}");
        }
        for line in [
            "AutoUpdate=registry\n",
            "Environment=\"VALKEY_EXTRA_FLAGS=--save 60 1\"\n",
            "PublishPort=[::1]:16379:6379\n",
            "IP=10.89.5.11\n",
        ] {
            assert!(vk.contains(line), "{line}: {vk}");
        }
        // Nothing extra without the keys.
        let plain = super::units(&defaults(), PodmanVersion::new(5, 4, 2));
        for unit in &plain {
            for key in [
                "DB_STORAGE_TYPE",
                "PodmanArgs=",
                "PublishPort=",
                "IP=",
                "AutoUpdate=",
            ] {
                assert!(!unit.content.contains(key), "{key}: {}", unit.content);
            }
        }
    }

    #[test]
    fn server_units_join_the_layer_and_mount_its_secrets_for_every_podman() {
        let d = defaults();
        for podman in RELEASES {
            let server = server_units(&d, podman);
            let mut all = units(&d, podman);
            all.extend(server.iter().cloned());
            assert!(
                errors(&all, podman).is_empty(),
                "{podman}: {:#?}",
                errors(&all, podman)
            );
            // Alone, their dependencies point at units nothing generates.
            assert!(!errors(&server, podman).is_empty(), "{podman}");
        }
        let server = server_units(&d, PodmanVersion::new(5, 4, 2));
        let (srv, ml) = (&server[0].content, &server[1].content);
        assert_eq!(
            (server[0].file_name.as_str(), server[1].file_name.as_str()),
            (
                "immich-server.container",
                "immich-machine-learning.container"
            )
        );
        for line in [
            "Requires=postgresql-immich.service redis-immich.service\n",
            "Network=photos.network\n",
            "Environment=DB_PASSWORD_FILE=/run/secrets/immich-db-password\n",
            "Secret=postgres-password,type=mount,target=immich-db-password,mode=0400\n",
            "Secret=redis-password,type=mount,target=immich-redis-password,mode=0400\n",
            "Volume=/mnt/btrfs-pool/subvol3-opptak/immich:/data:Z\n",
            "PublishPort=127.0.0.1:2283:2283\n",
            "Environment=IMMICH_MACHINE_LEARNING_URL=http://immich-machine-learning:3003\n",
        ] {
            assert!(srv.contains(line), "{line}: {srv}");
        }
        assert!(
            !srv.contains("type=env") && !srv.contains("PASSWORD="),
            "{srv}"
        );
        assert!(ml.contains("Network=photos.network\n"), "{ml}");
        assert!(
            ml.contains("Volume=/mnt/btrfs-pool/subvol7-containers/immich-ml-cache:/cache:Z\n"),
            "{ml}"
        );
        // The layer's network has a route out, for the models.
        assert!(
            !units(&d, PodmanVersion::new(5, 4, 2))[0]
                .content
                .contains("Internal=")
        );
        assert!(srv.starts_with(SERVER_HEADER), "{srv}");
    }

    #[test]
    fn valkey_without_password_has_no_secret() {
        let mut d = defaults();
        d.config.valkey.require_password = false;
        let unit = valkey_unit(&d, PodmanVersion::V5_4);
        assert!(!unit.content.contains("Secret="));
        assert!(!unit.content.contains("Exec="));
    }
}
