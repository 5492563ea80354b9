//! The desired state of a deployment: the three Quadlet units and the four
//! directories, derived from the configuration alone.

use std::path::PathBuf;

use serde::Serialize;

use crate::config::Deployment;

/// The first line of every unit this tool writes.
pub(crate) const HEADER: &str =
    "# Written by immich-db from its configuration: edit that and run `immich-db deploy`.";

/// How long systemd waits for PostgreSQL to become healthy: a first
/// initialisation, or an image pull, can take minutes.
pub(crate) const POSTGRES_START_TIMEOUT_S: u64 = 900;
/// How long systemd waits for Valkey to become healthy.
pub(crate) const VALKEY_START_TIMEOUT_S: u64 = 300;

/// What a unit is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    Network,
    Postgres,
    Valkey,
}

/// A unit file as it must be on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unit {
    pub(crate) role: Role,
    /// File name in the unit directory (`photos.network`).
    pub(crate) file_name: String,
    /// The service systemd runs for it (`photos-network.service`).
    pub(crate) service: String,
    pub(crate) content: String,
}

impl Unit {
    pub(crate) fn path(&self, deployment: &Deployment) -> PathBuf {
        deployment.unit_dir.join(&self.file_name)
    }
}

/// Whether copy-on-write is to be off in a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Cow {
    /// Databases: NOCOW, set while the directory is empty.
    Off,
    /// Library and caches: copy-on-write, so snapshots protect them.
    On,
}

/// A directory of the deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Dir {
    pub(crate) key: &'static str,
    pub(crate) path: PathBuf,
    pub(crate) cow: Cow,
}

/// The four directories, databases first.
pub(crate) fn dirs(deployment: &Deployment) -> Vec<Dir> {
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

/// Builds `[section]` blocks of `key=value` lines.
#[derive(Default)]
struct Writer {
    text: String,
}

impl Writer {
    fn section(&mut self, name: &str) -> &mut Self {
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        self.text.push('[');
        self.text.push_str(name);
        self.text.push_str("]\n");
        self
    }

    fn key(&mut self, key: &str, value: impl AsRef<str>) -> &mut Self {
        self.text.push_str(key);
        self.text.push('=');
        self.text.push_str(value.as_ref());
        self.text.push('\n');
        self
    }

    fn finish(&mut self) -> String {
        format!("{HEADER}\n{}", std::mem::take(&mut self.text))
    }
}

/// The network unit.
pub(crate) fn network_unit(deployment: &Deployment) -> Unit {
    let mut w = Writer::default();
    w.section("Unit")
        .key("Description", "Network of the Immich database layer");
    w.section("Network")
        .key("Subnet", deployment.subnet.to_string())
        .key("Gateway", deployment.gateway.to_string());
    for dns in &deployment.dns {
        w.key("DNS", dns.to_string());
    }
    w.section("Install").key("WantedBy", "default.target");
    Unit {
        role: Role::Network,
        file_name: deployment.network_unit_file(),
        service: deployment.network_service(),
        content: w.finish(),
    }
}

/// The PostgreSQL container unit.
pub(crate) fn postgres_unit(deployment: &Deployment) -> Unit {
    let pg = &deployment.config.postgres;
    // Over TCP on purpose: while the image initialises a new database it runs a
    // temporary server without TCP, so this passes only once the real one runs.
    let ready = format!("pg_isready -h 127.0.0.1 -U {} -d {}", pg.user, pg.database);
    let mut w = Writer::default();
    w.section("Unit")
        .key("Description", "PostgreSQL for Immich");
    w.section("Container")
        .key("Image", &pg.image)
        .key("ContainerName", &pg.container_name)
        .key("Network", deployment.network_unit_file())
        .key("Environment", format!("POSTGRES_USER={}", pg.user))
        .key("Environment", format!("POSTGRES_DB={}", pg.database));
    if !pg.initdb_args.is_empty() {
        w.key(
            "Environment",
            quote_if_needed(&format!("POSTGRES_INITDB_ARGS={}", pg.initdb_args)),
        );
    }
    w.key(
        "Secret",
        format!("{},type=env,target=POSTGRES_PASSWORD", pg.password_secret),
    )
    .key(
        "Volume",
        format!(
            "{}:/var/lib/postgresql/data:Z",
            deployment.dirs.postgres.display()
        ),
    )
    .key("ShmSize", &pg.shm_size);
    health(&mut w, &ready);
    service(&mut w, POSTGRES_START_TIMEOUT_S);
    Unit {
        role: Role::Postgres,
        file_name: format!("{}.container", pg.container_name),
        service: format!("{}.service", pg.container_name),
        content: w.finish(),
    }
}

/// The Valkey container unit.
pub(crate) fn valkey_unit(deployment: &Deployment) -> Unit {
    let vk = &deployment.config.valkey;
    let mut w = Writer::default();
    w.section("Unit").key("Description", "Valkey for Immich");
    w.section("Container")
        .key("Image", &vk.image)
        .key("ContainerName", &vk.container_name)
        .key("Network", deployment.network_unit_file());
    if vk.require_password {
        // valkey-cli reads REDISCLI_AUTH, so the health check authenticates by
        // itself; the server reads its configuration from standard input, so the
        // password is in no process's arguments and not in this file. `%%` is a
        // literal `%` for systemd; printf is a shell builtin.
        w.key(
            "Secret",
            format!("{},type=env,target=REDISCLI_AUTH", vk.password_secret),
        )
        .key(
            "Exec",
            r#"sh -c 'printf "requirepass %%s\n" "$REDISCLI_AUTH" | exec valkey-server -'"#,
        );
    }
    w.key(
        "Volume",
        format!("{}:/data:Z", deployment.dirs.valkey.display()),
    );
    health(&mut w, "valkey-cli ping");
    service(&mut w, VALKEY_START_TIMEOUT_S);
    Unit {
        role: Role::Valkey,
        file_name: format!("{}.container", vk.container_name),
        service: format!("{}.service", vk.container_name),
        content: w.finish(),
    }
}

/// Health checks: a startup check every second so readiness is seen within about
/// a second, then a calm regular check; systemd counts the service as started
/// once the container is healthy.
fn health(w: &mut Writer, command: &str) {
    w.key("HealthCmd", command)
        .key("HealthInterval", "30s")
        .key("HealthTimeout", "5s")
        .key("HealthRetries", "5")
        .key("HealthStartupCmd", command)
        .key("HealthStartupInterval", "1s")
        .key("HealthStartupTimeout", "5s")
        .key("HealthStartupRetries", "900")
        .key("Notify", "healthy");
}

fn service(w: &mut Writer, timeout_s: u64) {
    w.section("Service")
        .key("Restart", "always")
        .key("TimeoutStartSec", timeout_s.to_string());
    w.section("Install").key("WantedBy", "default.target");
}

/// Quotes a value that holds spaces, as systemd reads `Environment=`.
fn quote_if_needed(value: &str) -> String {
    if value.contains([' ', '\t', '"', '\'']) {
        format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        value.to_owned()
    }
}

/// All three units, network first.
pub(crate) fn units(deployment: &Deployment) -> Vec<Unit> {
    vec![
        network_unit(deployment),
        postgres_unit(deployment),
        valkey_unit(deployment),
    ]
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
        let units = units(&d);
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
                .contains("Secret=postgres-password,type=env,target=POSTGRES_PASSWORD\n")
        );
        assert!(
            units[2]
                .content
                .contains("Secret=redis-password,type=env,target=REDISCLI_AUTH\n")
        );
        assert!(!units[0].content.contains("DNS="));
    }

    #[test]
    fn rendering_is_deterministic() {
        let d = defaults();
        assert_eq!(units(&d), units(&d));
    }

    #[test]
    fn valkey_without_password_has_no_secret() {
        let mut d = defaults();
        d.config.valkey.require_password = false;
        let unit = valkey_unit(&d);
        assert!(!unit.content.contains("Secret="));
        assert!(!unit.content.contains("Exec="));
    }
}
