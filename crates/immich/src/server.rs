//! The Immich server's side of the wiring: what the server needs to reach this
//! database layer (host names, user, database, the passwords as files mounted
//! from the layer's own Podman secrets, never as values), and the server's and
//! machine learning's unit files written from the same configuration.
//!
//! Immich reads `DB_PASSWORD_FILE` and `REDIS_PASSWORD_FILE` (its "Docker
//! secrets" variables) in place of `DB_PASSWORD` and `REDIS_PASSWORD`: the
//! server gets the paths, podman mounts the files.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use homelab_quadlet::{PodmanVersion, Severity};
use serde::Serialize;

use crate::config::Deployment;
use crate::desired::{self, Unit};
use crate::error::{Error, Result};
use crate::files::write_atomic;
use crate::layer::Layer;
use crate::render::Written;

/// The port the Immich server listens on in its container.
pub const SERVER_PORT: u16 = 2283;

/// The port Immich's machine learning listens on in its container.
pub const ML_PORT: u16 = 3003;

/// Where the server finds the PostgreSQL password (under `/run/secrets`).
pub const DB_PASSWORD_FILE: &str = "immich-db-password";

/// Where the server finds Valkey's password (under `/run/secrets`).
pub const REDIS_PASSWORD_FILE: &str = "immich-redis-password";

/// A Podman secret mounted as a file, and the variable that names the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SecretFile {
    /// The Podman secret (the one the database uses).
    pub secret: String,
    /// The file in the container.
    pub path: String,
    /// The variable that tells Immich where the file is.
    pub variable: String,
}

impl SecretFile {
    /// The secret's name under `/run/secrets`.
    pub fn target(&self) -> &str {
        self.path.trim_start_matches("/run/secrets/")
    }
}

/// How a client on the host reaches one of the databases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HostAccess {
    /// `postgres` or `valkey`.
    pub service: &'static str,
    /// A port published on the host (`[..] publish`).
    pub published: Option<SocketAddr>,
    /// A fixed address on the network (`[..] ip`), reachable from the host
    /// where podman runs as root.
    pub fixed: Option<SocketAddr>,
}

/// What the Immich server needs of this database layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ServerEnvironment {
    /// Variables with their values, in order: no password is among them.
    #[serde(serialize_with = "as_map")]
    pub variables: Vec<(String, String)>,
    /// The passwords, as Podman secrets mounted as files.
    pub secrets: Vec<SecretFile>,
    /// The network's unit file (`Network=` of a Quadlet unit).
    pub network_unit: String,
    /// The network's name in podman (`--network`).
    pub network: String,
    /// Where clients on the host reach the databases, where configured.
    pub host_access: Vec<HostAccess>,
}

impl ServerEnvironment {
    /// As an environment file: one `KEY=VALUE` a line, with comments that say
    /// how to mount the secrets.
    pub fn env_file(&self) -> String {
        let mut out = String::from(
            "# The Immich server's settings for this database layer (immich-db server env).\n\
             # The passwords are files mounted from the layer's Podman secrets:\n",
        );
        for s in &self.secrets {
            let _ = writeln!(
                out,
                "#   --secret {},type=mount,target={}   (Quadlet: Secret={},type=mount,target={})",
                s.secret,
                s.target(),
                s.secret,
                s.target()
            );
        }
        let _ = writeln!(
            out,
            "# on the network {} (Quadlet: Network={}).",
            self.network, self.network_unit
        );
        for (name, value) in &self.variables {
            let _ = writeln!(out, "{name}={value}");
        }
        for access in &self.host_access {
            let mut ways = Vec::new();
            if let Some(at) = access.published {
                ways.push(format!("{at} (published)"));
            }
            if let Some(at) = access.fixed {
                ways.push(format!("{at} (fixed address on the network)"));
            }
            let _ = writeln!(
                out,
                "# Clients on the host reach {} at {}.",
                access.service,
                ways.join(" or ")
            );
        }
        out
    }
}

/// Pairs as a JSON object, in their order.
fn as_map<S: serde::Serializer>(
    pairs: &[(String, String)],
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap as _;
    let mut map = serializer.serialize_map(Some(pairs.len()))?;
    for (k, v) in pairs {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

/// What the Immich server needs of the deployment: host names (the containers'
/// names on the network), user and database, and the passwords as files.
pub fn environment(d: &Deployment) -> ServerEnvironment {
    let c = &d.config;
    let mut variables = vec![
        ("DB_HOSTNAME".to_owned(), c.postgres.container_name.clone()),
        ("DB_USERNAME".to_owned(), c.postgres.user.clone()),
        ("DB_DATABASE_NAME".to_owned(), c.postgres.database.clone()),
        (
            "DB_PASSWORD_FILE".to_owned(),
            format!("/run/secrets/{DB_PASSWORD_FILE}"),
        ),
        ("REDIS_HOSTNAME".to_owned(), c.valkey.container_name.clone()),
    ];
    let mut secrets = vec![SecretFile {
        secret: c.postgres.password_secret.clone(),
        path: format!("/run/secrets/{DB_PASSWORD_FILE}"),
        variable: "DB_PASSWORD_FILE".to_owned(),
    }];
    if c.valkey.require_password {
        variables.push((
            "REDIS_PASSWORD_FILE".to_owned(),
            format!("/run/secrets/{REDIS_PASSWORD_FILE}"),
        ));
        secrets.push(SecretFile {
            secret: c.valkey.password_secret.clone(),
            path: format!("/run/secrets/{REDIS_PASSWORD_FILE}"),
            variable: "REDIS_PASSWORD_FILE".to_owned(),
        });
    }
    let mut host_access = Vec::new();
    for (service, settings, port) in [
        (
            "postgres",
            &d.containers.postgres,
            crate::direct::POSTGRES_PORT,
        ),
        ("valkey", &d.containers.valkey, crate::direct::VALKEY_PORT),
    ] {
        if settings.publish.is_some() || settings.ip.is_some() {
            host_access.push(HostAccess {
                service,
                published: settings.publish,
                fixed: settings.ip.map(|ip| SocketAddr::new(ip.into(), port)),
            });
        }
    }
    ServerEnvironment {
        variables,
        secrets,
        network_unit: d.network_unit_file(),
        network: d.podman_network(),
        host_access,
    }
}

/// What to write the server's units for, and where.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ServerUnitsOptions {
    /// A directory to write them into instead of the deployment's unit
    /// directory (then systemd is not reloaded).
    pub output: Option<PathBuf>,
    /// The podman release they are for (`None`: the installed one).
    pub podman: Option<String>,
    /// For rootless or rootful podman (`None`: as the user running this).
    pub rootless: Option<bool>,
}

impl ServerUnitsOptions {
    /// Into the deployment's unit directory, for the installed podman.
    pub fn new() -> Self {
        Self::default()
    }

    /// Into another directory (no reload).
    #[must_use]
    pub fn output(mut self, dir: impl Into<PathBuf>) -> Self {
        self.output = Some(dir.into());
        self
    }

    /// For another podman release (`X.Y.Z`).
    #[must_use]
    pub fn podman(mut self, release: impl Into<String>) -> Self {
        self.podman = Some(release.into());
        self
    }

    /// For rootless or rootful podman.
    #[must_use]
    pub fn rootless(mut self, rootless: bool) -> Self {
        self.rootless = Some(rootless);
        self
    }
}

/// One unit file of the server's.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ServerUnitFile {
    /// Where it was written.
    pub path: PathBuf,
    /// The service the generator makes of it.
    pub service: String,
    /// What happened to the file.
    pub written: Written,
}

/// The server's unit files, written.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ServerUnits {
    /// The podman release they are for.
    pub podman: PodmanVersion,
    /// The files.
    pub files: Vec<ServerUnitFile>,
    /// Whether systemd was reloaded (they went into the unit directory and
    /// one changed).
    pub reloaded: bool,
    /// The services to start.
    pub services: Vec<String>,
}

/// The server's and machine learning's units for podman `podman`, linted
/// together with the layer's own: an error finding is refused.
pub fn units(deployment: &Deployment, podman: PodmanVersion) -> Result<Vec<Unit>> {
    let server = desired::server_units(deployment, podman);
    let mut all = desired::units(deployment, podman);
    all.extend(server.iter().cloned());
    let errors: Vec<String> = desired::lint(&all, podman, deployment.scope)
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(ToString::to_string)
        .collect();
    if !errors.is_empty() {
        return Err(Error::bad_input(format!(
            "the server's units for podman {podman} would not pass its generator: {}",
            errors.join("; ")
        ))
        .help("change [server] in the configuration, or write them for a newer podman; nothing was written"));
    }
    Ok(server)
}

/// Writes `units` into `dir`, each only when it differs.
fn write_all(dir: &Path, units: &[Unit]) -> Result<Vec<ServerUnitFile>> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::failed(format!("cannot create {}: {e}", dir.display()))
            .help("check the directory and its permissions")
    })?;
    let mut files = Vec::new();
    for unit in units {
        let path = dir.join(&unit.file_name);
        let written = match std::fs::read_to_string(&path) {
            Ok(existing) if existing == unit.content => Written::Unchanged,
            Ok(_) => Written::Updated,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Written::Created,
            Err(e) => {
                return Err(
                    Error::failed(format!("cannot read {}: {e}", path.display()))
                        .help("check the permissions of the directory"),
                );
            }
        };
        if written != Written::Unchanged {
            write_atomic(&path, unit.content.as_bytes()).map_err(|e| {
                Error::failed(format!("cannot write {}: {e}", path.display()))
                    .help("check the directory and its permissions")
            })?;
        }
        files.push(ServerUnitFile {
            path,
            service: unit.service.clone(),
            written,
        });
    }
    Ok(files)
}

/// Writes the server's units into a directory for a podman release, changing
/// nothing else: [`Layer::write_server_units`] without a host.
pub fn render_units(deployment: &Deployment, options: &ServerUnitsOptions) -> Result<ServerUnits> {
    let Some(output) = &options.output else {
        return Err(Error::bad_input("no output directory given")
            .help("give the directory to write the units into"));
    };
    let podman = crate::render::target(options.podman.as_deref())?;
    let mut deployment = deployment.clone();
    if let Some(rootless) = options.rootless {
        deployment.rootless = rootless;
    }
    let units = units(&deployment, podman)?;
    Ok(ServerUnits {
        podman,
        files: write_all(output, &units)?,
        reloaded: false,
        services: units.iter().map(|u| u.service.clone()).collect(),
    })
}

impl Layer {
    /// What the Immich server needs of this layer.
    pub fn server_environment(&self) -> ServerEnvironment {
        environment(&self.deployment)
    }

    /// Writes the Immich server's and machine learning's units (opt-in: a
    /// deploy does not write them) into the deployment's unit directory and
    /// reloads systemd when one changed; or, with an output directory, only
    /// writes them there. They are linted together with the layer's units
    /// first. Starting them is left to the caller (`systemctl start`): their
    /// images are large, and pulled at the first start.
    pub async fn write_server_units(&self, options: &ServerUnitsOptions) -> Result<ServerUnits> {
        if options.output.is_some() {
            return render_units(&self.deployment, options);
        }
        let podman = crate::render::target(options.podman.as_deref())?;
        let units = units(&self.deployment, podman)?;
        let files = write_all(&self.deployment.unit_dir, &units)?;
        let reloaded = files.iter().any(|f| f.written != Written::Unchanged);
        if reloaded {
            self.systemd.daemon_reload().await?;
        }
        Ok(ServerUnits {
            podman,
            files,
            reloaded,
            services: units.iter().map(|u| u.service.clone()).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Loaded, Origin, parse, validate};

    fn deployment(text: &str) -> Deployment {
        validate(&parse(text, Origin::Defaults).unwrap()).unwrap()
    }

    #[test]
    fn the_server_gets_names_and_password_files_never_values() {
        let d = validate(&Loaded::defaults()).unwrap();
        let env = environment(&d);
        let vars: Vec<(&str, &str)> = env
            .variables
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            vars,
            [
                ("DB_HOSTNAME", "postgresql-immich"),
                ("DB_USERNAME", "immich"),
                ("DB_DATABASE_NAME", "immich"),
                ("DB_PASSWORD_FILE", "/run/secrets/immich-db-password"),
                ("REDIS_HOSTNAME", "redis-immich"),
                ("REDIS_PASSWORD_FILE", "/run/secrets/immich-redis-password"),
            ]
        );
        assert_eq!(env.secrets[0].secret, "postgres-password");
        assert_eq!(env.secrets[1].secret, "redis-password");
        assert_eq!(env.secrets[1].target(), "immich-redis-password");
        let text = env.env_file();
        assert!(
            text.contains("--secret postgres-password,type=mount,target=immich-db-password"),
            "{text}"
        );
        assert!(!text.contains("DB_PASSWORD="), "{text}");
        assert!(!text.contains("REDIS_PASSWORD="), "{text}");
        assert!(env.host_access.is_empty());
    }

    #[test]
    fn without_a_valkey_password_there_is_no_redis_password_file() {
        let d = deployment("[valkey]\nrequire_password = false\n");
        let env = environment(&d);
        assert!(
            env.variables
                .iter()
                .all(|(k, _)| !k.starts_with("REDIS_PASSWORD"))
        );
        assert_eq!(env.secrets.len(), 1);
    }

    #[test]
    fn host_access_is_said_where_configured() {
        let d = deployment(
            "[postgres]\npublish = \"127.0.0.1:15432\"\n[valkey]\nip = \"10.89.5.11\"\n",
        );
        let env = environment(&d);
        assert_eq!(env.host_access.len(), 2);
        assert_eq!(
            env.host_access[0].published,
            Some("127.0.0.1:15432".parse().unwrap())
        );
        assert_eq!(
            env.host_access[1].fixed,
            Some("10.89.5.11:6379".parse().unwrap())
        );
        let text = env.env_file();
        assert!(
            text.contains("reach postgres at 127.0.0.1:15432 (published)"),
            "{text}"
        );
        assert!(
            text.contains("reach valkey at 10.89.5.11:6379 (fixed"),
            "{text}"
        );
    }
}
