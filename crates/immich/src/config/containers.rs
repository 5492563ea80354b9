//! What each container gets beyond its image and the layer's own settings:
//! extra environment variables and `podman run` options, PostgreSQL's storage
//! type, a fixed address on the network and a port published on the host;
//! checked, and resolved into typed values. The `[server]` section's
//! containers too.
//!
//! Everything here is written into unit files, which are readable by anyone
//! who can read the unit directory, and every variable is in the environment
//! of every process of the container: a value that looks like a secret is
//! refused, with the way to pass it as a Podman secret instead.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use homelab_quadlet::{IpNet, IpNetExt as _};
use serde::Serialize;

use super::Loaded;
use crate::error::{Error, Result};

/// One container's extra settings, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ContainerSettings {
    /// Extra environment variables, by name.
    pub environment: Vec<(String, String)>,
    /// Extra `podman run` options, as words.
    pub podman_args: Vec<String>,
    /// Where its port is published on the host.
    pub publish: Option<SocketAddr>,
    /// Its fixed address on the network.
    pub ip: Option<Ipv4Addr>,
}

/// PostgreSQL's storage type, for Immich's image (`DB_STORAGE_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum StorageType {
    /// Solid-state storage (the image's default).
    #[serde(rename = "SSD")]
    Ssd,
    /// Spinning disks: the image tunes PostgreSQL for sequential access.
    #[serde(rename = "HDD")]
    Hdd,
}

impl StorageType {
    /// The value of `DB_STORAGE_TYPE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ssd => "SSD",
            Self::Hdd => "HDD",
        }
    }
}

/// Every container's extra settings, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Containers {
    /// PostgreSQL's.
    pub postgres: ContainerSettings,
    /// PostgreSQL's `DB_STORAGE_TYPE` (`None`: the image's default).
    pub storage_type: Option<StorageType>,
    /// Valkey's.
    pub valkey: ContainerSettings,
    /// The Immich server's (`[server]`).
    pub server: ContainerSettings,
    /// Immich's machine learning (`[server]`).
    pub ml: ContainerSettings,
}

/// The environment variables the tool sets itself in each container: they have
/// keys of their own.
const POSTGRES_OWN: &[(&str, &str)] = &[
    ("POSTGRES_USER", "[postgres] user"),
    ("POSTGRES_DB", "[postgres] database"),
    ("POSTGRES_PASSWORD", "[postgres] password_secret"),
    ("POSTGRES_PASSWORD_FILE", "[postgres] password_secret"),
    ("POSTGRES_INITDB_ARGS", "[postgres] initdb_args"),
    ("DB_STORAGE_TYPE", "[postgres] storage_type"),
    ("PGDATA", "[storage] postgres_dir"),
];
const SERVER_OWN: &[(&str, &str)] = &[
    ("DB_HOSTNAME", "[postgres] container_name"),
    ("DB_USERNAME", "[postgres] user"),
    ("DB_DATABASE_NAME", "[postgres] database"),
    ("DB_PASSWORD_FILE", "[postgres] password_secret"),
    ("DB_URL", "the [postgres] keys"),
    ("REDIS_HOSTNAME", "[valkey] container_name"),
    ("REDIS_PASSWORD_FILE", "[valkey] password_secret"),
    ("REDIS_URL", "the [valkey] keys"),
    ("IMMICH_MACHINE_LEARNING_URL", "[server] ml_container_name"),
];

/// Parts of a variable's name that say it holds a secret.
const SECRET_WORDS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "SECRET",
    "TOKEN",
    "CREDENTIAL",
    "PRIVATE_KEY",
    "API_KEY",
    "APIKEY",
    "AUTH",
];

/// Whether a variable's name says that it holds a secret: a `*_FILE` variable
/// names a file, which is how a secret is given.
pub(crate) fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    !upper.ends_with("_FILE") && SECRET_WORDS.iter().any(|w| upper.contains(w))
}

/// `podman run` options the tool sets itself, with the key that sets them.
const MANAGED_OPTIONS: &[(&str, &str)] = &[
    ("--name", "container_name"),
    ("--network", "[network]"),
    ("--net", "[network]"),
    ("--pod", "[network]"),
    ("--userns", "the rootless mode"),
    ("--publish", "publish"),
    ("-p", "publish"),
    ("--ip", "ip"),
    ("--env", "environment"),
    ("-e", "environment"),
    ("--health-cmd", "the health check"),
    ("--health-interval", "the health check"),
    ("--health-retries", "the health check"),
    ("--health-timeout", "the health check"),
    ("--health-start-period", "the health check"),
    ("--health-on-failure", "the health check"),
    ("--health-startup-cmd", "the health check"),
    ("--health-startup-interval", "the health check"),
    ("--health-startup-retries", "the health check"),
    ("--health-startup-success", "the health check"),
    ("--health-startup-timeout", "the health check"),
    ("--no-healthcheck", "the health check"),
    ("--sdnotify", "the health check"),
    ("--rm", "the unit"),
    ("--replace", "the unit"),
    ("--cidfile", "the unit"),
    ("--detach", "the unit"),
    ("-d", "the unit"),
];

/// A character that cannot go through a unit file unchanged: systemd reads
/// `%` as a specifier, and a backslash or a control character as an escape.
fn bad_char(value: &str) -> Option<char> {
    value
        .chars()
        .find(|c| c.is_control() || *c == '%' || *c == '\\')
}

/// Where the keys of one container are, and which names are its own.
struct Keys<'a> {
    section: &'static str,
    environment: &'static str,
    podman_args: &'static str,
    own: &'a [(&'a str, &'a str)],
}

struct Checker<'a> {
    loaded: &'a Loaded,
}

impl Checker<'_> {
    fn fail(&self, section: &str, key: &str, what: String, help: impl Into<String>) -> Error {
        Error::bad_input(what)
            .at(self.loaded.locate(section, key))
            .help(help)
    }

    fn fail_entry(
        &self,
        section: &str,
        key: &str,
        entry: &str,
        what: String,
        help: impl Into<String>,
    ) -> Error {
        Error::bad_input(what)
            .at(self.loaded.locate_entry(section, key, entry))
            .help(help)
    }

    fn environment(
        &self,
        keys: &Keys<'_>,
        values: &BTreeMap<String, String>,
    ) -> Result<Vec<(String, String)>> {
        let (section, key) = (keys.section, keys.environment);
        let mut out = Vec::new();
        for (name, value) in values {
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(self.fail_entry(
                    section,
                    key,
                    name,
                    format!(
                        "`{section}.{key}` has a variable named {name:?}, which is not a valid name"
                    ),
                    "name variables with letters, digits and `_`, starting with a letter or `_`",
                ));
            }
            if let Some((_, own)) = keys.own.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return Err(self.fail_entry(
                    section,
                    key,
                    name,
                    format!(
                        "`{section}.{key}` sets {name}, which immich-db sets itself from {own}"
                    ),
                    format!("remove {name} from `{key}` and set {own} instead"),
                ));
            }
            if looks_secret(name) {
                return Err(self.fail_entry(
                    section,
                    key,
                    name,
                    format!(
                        "`{section}.{key}` sets {name}, which looks like a secret: its value would be written into the unit file and be in the environment of every process in the container"
                    ),
                    format!(
                        "store it as a Podman secret (`printf %s VALUE | podman secret create NAME -`) and mount it with podman_args = [\"--secret=NAME,type=mount,target=NAME\"]; where the image reads {name}_FILE, set {name}_FILE = \"/run/secrets/NAME\""
                    ),
                ));
            }
            if let Some(bad) = bad_char(value) {
                return Err(self.fail_entry(
                    section,
                    key,
                    name,
                    format!(
                        "`{section}.{key}.{name}` contains `{}`, which cannot be passed through a unit file unchanged",
                        bad.escape_default()
                    ),
                    "use a value without `%`, `\\` or control characters",
                ));
            }
            out.push((name.clone(), value.clone()));
        }
        Ok(out)
    }

    fn podman_args(&self, keys: &Keys<'_>, words: &[String]) -> Result<Vec<String>> {
        let (section, key) = (keys.section, keys.podman_args);
        if let Some(first) = words.first()
            && !first.starts_with('-')
        {
            return Err(self.fail(
                section,
                key,
                format!("`{section}.{key}` starts with {first:?}, which is not an option"),
                "list `podman run` options, such as podman_args = [\"--cpus=2\", \"--memory=1g\"]",
            ));
        }
        for word in words {
            if word.is_empty() {
                return Err(self.fail(
                    section,
                    key,
                    format!("`{section}.{key}` has an empty word"),
                    "remove the empty entry",
                ));
            }
            if let Some(bad) = bad_char(word) {
                return Err(self.fail(
                    section,
                    key,
                    format!(
                        "`{section}.{key}` has {word:?}, with `{}`, which cannot be passed through a unit file unchanged",
                        bad.escape_default()
                    ),
                    "use options without `%`, `\\` or control characters",
                ));
            }
            if !word.starts_with('-') {
                continue;
            }
            let option = word.split_once('=').map_or(word.as_str(), |(o, _)| o);
            let managed = MANAGED_OPTIONS.iter().find(|(name, _)| {
                option == *name
                    // `-eX=Y` and `-p5432:5432`: a short option with its value.
                    || (name.len() == 2 && !option.starts_with("--") && option.starts_with(name))
            });
            if let Some((name, by)) = managed {
                return Err(self.fail(
                    section,
                    key,
                    format!(
                        "`{section}.{key}` has {word:?}: immich-db sets {name} itself, from {by}"
                    ),
                    format!("remove it from `{key}`; set {by} instead"),
                ));
            }
        }
        Ok(words.to_vec())
    }

    /// A port published on the host; on a loopback address only when `loopback`.
    fn publish(
        &self,
        section: &str,
        value: Option<&str>,
        loopback: bool,
        port: u16,
    ) -> Result<Option<SocketAddr>> {
        let Some(value) = value else {
            return Ok(None);
        };
        let example = format!("127.0.0.1:{port}");
        let at: SocketAddr = value.parse().map_err(|_| {
            self.fail(
                section,
                "publish",
                format!("`{section}.publish` = {value:?} is not ADDRESS:PORT"),
                format!("write it as {example:?} (an IPv6 address in brackets: \"[::1]:{port}\")"),
            )
        })?;
        if at.port() == 0 {
            return Err(self.fail(
                section,
                "publish",
                format!("`{section}.publish` = {value:?} has port 0"),
                format!("choose a port, such as {example:?}"),
            ));
        }
        if loopback && !at.ip().is_loopback() {
            return Err(self.fail(
                section,
                "publish",
                format!(
                    "`{section}.publish` = {value:?} is not on a loopback address: the database would be reachable from other hosts"
                ),
                format!(
                    "publish it on 127.0.0.1 or [::1] for clients on this host, such as {example:?}; clients on other hosts belong on the network, or behind a tunnel"
                ),
            ));
        }
        Ok(Some(at))
    }

    /// A fixed address inside the subnet: not its network, broadcast or
    /// gateway address.
    fn ip(
        &self,
        section: &str,
        value: Option<&str>,
        subnet: IpNet,
        gateway: IpAddr,
    ) -> Result<Option<Ipv4Addr>> {
        let Some(value) = value else {
            return Ok(None);
        };
        let ip: Ipv4Addr = value.parse().map_err(|_| {
            self.fail(
                section,
                "ip",
                format!("`{section}.ip` = {value:?} is not an IPv4 address"),
                format!("give an address inside {subnet}, such as one near its end"),
            )
        })?;
        let addr = IpAddr::V4(ip);
        if !subnet.contains(&addr) {
            return Err(self.fail(
                section,
                "ip",
                format!("`{section}.ip` = {ip} is outside the subnet {subnet}"),
                format!("give an address inside {subnet}"),
            ));
        }
        if subnet.is_reserved(addr) || addr == gateway {
            return Err(self.fail(
                section,
                "ip",
                format!(
                    "`{section}.ip` = {ip} is the network, broadcast or gateway address of {subnet}"
                ),
                "give a host address other than the gateway",
            ));
        }
        Ok(Some(ip))
    }
}

/// Checks the extra settings of every container and resolves them.
pub(crate) fn resolve(loaded: &Loaded, subnet: IpNet, gateway: IpAddr) -> Result<Containers> {
    let c = Checker { loaded };
    let config = &loaded.config;
    let pg = &config.postgres;
    let vk = &config.valkey;
    let server = &config.server;

    let storage_type = match pg.storage_type.as_deref() {
        None => None,
        Some(v) if v.eq_ignore_ascii_case("ssd") => Some(StorageType::Ssd),
        Some(v) if v.eq_ignore_ascii_case("hdd") => Some(StorageType::Hdd),
        Some(other) => {
            return Err(c.fail(
                "postgres",
                "storage_type",
                format!("`postgres.storage_type` = {other:?} is neither \"SSD\" nor \"HDD\""),
                "write storage_type = \"HDD\" for a database on spinning disks, \"SSD\" otherwise, or remove the key for the image's default",
            ));
        }
    };

    let keys = |section, environment, podman_args, own| Keys {
        section,
        environment,
        podman_args,
        own,
    };
    let postgres = ContainerSettings {
        environment: c.environment(
            &keys("postgres", "environment", "podman_args", POSTGRES_OWN),
            &pg.environment,
        )?,
        podman_args: c.podman_args(
            &keys("postgres", "environment", "podman_args", POSTGRES_OWN),
            &pg.podman_args,
        )?,
        publish: c.publish(
            "postgres",
            pg.publish.as_deref(),
            true,
            crate::direct::POSTGRES_PORT,
        )?,
        ip: c.ip("postgres", pg.ip.as_deref(), subnet, gateway)?,
    };
    let valkey = ContainerSettings {
        environment: c.environment(
            &keys("valkey", "environment", "podman_args", &[]),
            &vk.environment,
        )?,
        podman_args: c.podman_args(
            &keys("valkey", "environment", "podman_args", &[]),
            &vk.podman_args,
        )?,
        publish: c.publish(
            "valkey",
            vk.publish.as_deref(),
            true,
            crate::direct::VALKEY_PORT,
        )?,
        ip: c.ip("valkey", vk.ip.as_deref(), subnet, gateway)?,
    };
    if let (Some(a), Some(b)) = (postgres.ip, valkey.ip)
        && a == b
    {
        return Err(c.fail(
            "valkey",
            "ip",
            format!("`valkey.ip` and `postgres.ip` are both {a}"),
            "give each container its own address",
        ));
    }
    if vk.auto_update {
        check_auto_update(&c, &vk.image)?;
    }

    let server_publish = if server.publish.is_empty() {
        None
    } else {
        c.publish(
            "server",
            Some(&server.publish),
            false,
            crate::server::SERVER_PORT,
        )?
    };
    let server_settings = ContainerSettings {
        environment: c.environment(
            &keys("server", "environment", "podman_args", SERVER_OWN),
            &server.environment,
        )?,
        podman_args: c.podman_args(
            &keys("server", "environment", "podman_args", &[]),
            &server.podman_args,
        )?,
        publish: server_publish,
        ip: None,
    };
    let ml = ContainerSettings {
        environment: c.environment(
            &keys("server", "ml_environment", "ml_podman_args", &[]),
            &server.ml_environment,
        )?,
        podman_args: c.podman_args(
            &keys("server", "ml_environment", "ml_podman_args", &[]),
            &server.ml_podman_args,
        )?,
        publish: None,
        ip: None,
    };
    let published = [
        ("postgres", postgres.publish),
        ("valkey", valkey.publish),
        ("server", server_settings.publish),
    ];
    for (i, (section, at)) in published.iter().enumerate() {
        let Some(at) = at else { continue };
        if let Some((other, _)) = published[..i]
            .iter()
            .find(|(_, o)| o.is_some_and(|o| o.port() == at.port()))
        {
            // Said where the file sets it: the server's is published by default.
            let (here, there) = if loaded
                .locate(section, "publish")
                .contains("built-in default")
            {
                (*other, *section)
            } else {
                (*section, *other)
            };
            return Err(c.fail(
                here,
                "publish",
                format!(
                    "`{here}.publish` and `{there}.publish` both publish port {}",
                    at.port()
                ),
                "give each service its own port on the host",
            ));
        }
    }
    check_server(&c, loaded)?;
    Ok(Containers {
        postgres,
        storage_type,
        valkey,
        server: server_settings,
        ml,
    })
}

/// `podman auto-update` with the registry policy pulls the image again by its
/// name from its registry.
fn check_auto_update(c: &Checker<'_>, image: &str) -> Result<()> {
    let Ok(parsed) = homelab_podman::ImageRef::parse(image) else {
        // The image's own check names what is wrong with it.
        return Ok(());
    };
    let why = if parsed.digest().is_some() {
        Some("it is pinned by digest, so there is never anything newer to pull")
    } else if parsed.registry().is_none() {
        Some("podman auto-update needs a fully qualified name (REGISTRY/PATH:TAG)")
    } else if parsed.is_local() {
        Some("it is a local image (localhost/...), which no registry serves")
    } else {
        None
    };
    match why {
        Some(why) => Err(c.fail(
            "valkey",
            "auto_update",
            format!("`valkey.auto_update` is on, but `valkey.image` = {image:?} cannot be updated from a registry: {why}"),
            "name the image with its registry and a tag, such as docker.io/valkey/valkey:8, or set auto_update = false (`immich-db update` updates from local images too)",
        )),
        None => Ok(()),
    }
}

/// `[server]`: its images and container names.
fn check_server(c: &Checker<'_>, loaded: &Loaded) -> Result<()> {
    let config = &loaded.config;
    let server = &config.server;
    for (key, image) in [("image", &server.image), ("ml_image", &server.ml_image)] {
        homelab_podman::ImageRef::parse(image).map_err(|e| {
            let why = match e {
                homelab_podman::Error::InvalidImageReference { reason, .. } => reason,
                other => other.to_string(),
            };
            c.fail(
                "server",
                key,
                format!("`server.{key}` = {image:?} is not a valid image reference: {why}"),
                "write it as REGISTRY/PATH:TAG, such as ghcr.io/immich-app/immich-server:v2.2.0",
            )
        })?;
    }
    let taken = [
        ("postgres.container_name", &config.postgres.container_name),
        ("valkey.container_name", &config.valkey.container_name),
    ];
    let network_service = format!("{}-network", config.network.name);
    for (key, name) in [
        ("container_name", &server.container_name),
        ("ml_container_name", &server.ml_container_name),
    ] {
        super::validate::check_name(name).map_err(|why| {
            c.fail(
                "server",
                key,
                format!("`server.{key}` = {name:?} is not a valid container name: {why}"),
                "use letters, digits, `_`, `.` and `-`, starting with a letter or digit (no spaces or slashes)",
            )
        })?;
        if let Some((other, _)) = taken.iter().find(|(_, n)| *n == name) {
            return Err(c.fail(
                "server",
                key,
                format!("`server.{key}` and `{other}` are both {name:?}"),
                "give each container its own name",
            ));
        }
        if *name == network_service {
            return Err(c.fail(
                "server",
                key,
                format!("`server.{key}` = {name:?} would take the name of the network's service"),
                "choose another container name",
            ));
        }
    }
    if server.container_name == server.ml_container_name {
        return Err(c.fail(
            "server",
            "ml_container_name",
            format!(
                "`server.ml_container_name` and `server.container_name` are both {:?}",
                server.container_name
            ),
            "give each container its own name",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::{Deployment, Origin, parse, validate};
    use crate::error::ErrorKind;

    fn check(text: &str) -> crate::error::Result<Deployment> {
        validate(&parse(
            text,
            Origin::Flag {
                path: "t.toml".into(),
            },
        )?)
    }

    #[test]
    fn extra_settings_are_resolved() {
        let d = check(
            "[postgres]\nstorage_type = \"hdd\"\npublish = \"127.0.0.1:15432\"\nip = \"10.89.5.10\"\npodman_args = [\"--cpus=2\", \"--memory\", \"1g\"]\n[postgres.environment]\nTZ = \"Europe/Oslo\"\n\n[valkey]\nauto_update = true\npublish = \"[::1]:16379\"\nenvironment = { VALKEY_EXTRA_FLAGS = \"--save 60 1\" }\n",
        )
        .unwrap();
        let c = &d.containers;
        assert_eq!(c.storage_type, Some(super::StorageType::Hdd));
        assert_eq!(
            c.postgres.environment,
            [("TZ".to_owned(), "Europe/Oslo".to_owned())]
        );
        assert_eq!(c.postgres.podman_args, ["--cpus=2", "--memory", "1g"]);
        assert_eq!(c.postgres.publish, Some("127.0.0.1:15432".parse().unwrap()));
        assert_eq!(c.postgres.ip, Some("10.89.5.10".parse().unwrap()));
        assert_eq!(c.valkey.publish, Some("[::1]:16379".parse().unwrap()));
        assert_eq!(
            c.server.publish,
            Some("127.0.0.1:2283".parse().unwrap()),
            "the server is published on loopback by default"
        );
        let defaults = check("").unwrap();
        assert_eq!(defaults.containers.storage_type, None);
        assert_eq!(defaults.containers.postgres.publish, None);
    }

    /// Each bad extra setting fails with exit 2, at the line of its key (or of
    /// the variable in an environment table).
    #[test]
    fn bad_extra_settings_name_key_and_line() {
        let cases: &[(&str, &str)] = &[
            (
                "[postgres]\nstorage_type = \"nvme\"\n",
                "t.toml:2:1 ([postgres] storage_type)",
            ),
            (
                "[postgres]\nenvironment = { POSTGRES_PASSWORD = \"x\" }\n",
                "t.toml:2:17 ([postgres] environment.POSTGRES_PASSWORD)",
            ),
            (
                "[postgres.environment]\nTZ = \"UTC\"\nMY_API_TOKEN = \"abc\"\n",
                "t.toml:3:1 ([postgres] environment.MY_API_TOKEN)",
            ),
            (
                "[valkey]\nenvironment = { \"1X\" = \"y\" }\n",
                "t.toml:2:17 ([valkey] environment.1X)",
            ),
            (
                "[valkey]\nenvironment = { A = \"50%\" }\n",
                "t.toml:2:17 ([valkey] environment.A)",
            ),
            (
                "[postgres]\nenvironment = { PGDATA = \"/x\" }\n",
                "t.toml:2:17 ([postgres] environment.PGDATA)",
            ),
            (
                "[server]\nenvironment = { DB_HOSTNAME = \"other\" }\n",
                "t.toml:2:17 ([server] environment.DB_HOSTNAME)",
            ),
            (
                "[server]\nml_environment = { HF_TOKEN = \"x\" }\n",
                "t.toml:2:20 ([server] ml_environment.HF_TOKEN)",
            ),
            (
                "[postgres]\npodman_args = [\"cpus=2\"]\n",
                "t.toml:2:1 ([postgres] podman_args)",
            ),
            (
                "[postgres]\npodman_args = [\"--env=A=b\"]\n",
                "t.toml:2:1 ([postgres] podman_args)",
            ),
            (
                "[valkey]\npodman_args = [\"-p6379:6379\"]\n",
                "t.toml:2:1 ([valkey] podman_args)",
            ),
            (
                "[valkey]\npodman_args = [\"--network\", \"host\"]\n",
                "t.toml:2:1 ([valkey] podman_args)",
            ),
            (
                "[valkey]\npodman_args = [\"--label=a=%n\"]\n",
                "t.toml:2:1 ([valkey] podman_args)",
            ),
            (
                "[server]\nml_podman_args = [\"--health-cmd=true\"]\n",
                "t.toml:2:1 ([server] ml_podman_args)",
            ),
            (
                "[postgres]\npublish = \"0.0.0.0:5432\"\n",
                "t.toml:2:1 ([postgres] publish)",
            ),
            (
                "[postgres]\npublish = \"5432\"\n",
                "t.toml:2:1 ([postgres] publish)",
            ),
            (
                "[valkey]\npublish = \"127.0.0.1:0\"\n",
                "t.toml:2:1 ([valkey] publish)",
            ),
            (
                "[postgres]\npublish = \"127.0.0.1:2283\"\n",
                "t.toml:2:1 ([postgres] publish)",
            ),
            (
                "[postgres]\nip = \"10.89.6.10\"\n",
                "t.toml:2:1 ([postgres] ip)",
            ),
            (
                "[postgres]\nip = \"10.89.5.1\"\n",
                "t.toml:2:1 ([postgres] ip)",
            ),
            (
                "[postgres]\nip = \"10.89.5.255\"\n",
                "t.toml:2:1 ([postgres] ip)",
            ),
            ("[valkey]\nip = \"fd00::5\"\n", "t.toml:2:1 ([valkey] ip)"),
            (
                "[postgres]\nip = \"10.89.5.9\"\n[valkey]\nip = \"10.89.5.9\"\n",
                "t.toml:4:1 ([valkey] ip)",
            ),
            (
                "[valkey]\nauto_update = true\nimage = \"localhost/valkey:8\"\n",
                "t.toml:2:1 ([valkey] auto_update)",
            ),
            (
                "[valkey]\nauto_update = true\nimage = \"valkey/valkey:8\"\n",
                "t.toml:2:1 ([valkey] auto_update)",
            ),
            (
                "[valkey]\nauto_update = true\nimage = \"docker.io/valkey/valkey:8@sha256:a137a2b60aca1a75130022d6bb96af423fefae4eb55faf395732db3544803280\"\n",
                "t.toml:2:1 ([valkey] auto_update)",
            ),
            (
                "[server]\nimage = \"Immich/Server\"\n",
                "t.toml:2:1 ([server] image)",
            ),
            (
                "[server]\ncontainer_name = \"redis-immich\"\n",
                "t.toml:2:1 ([server] container_name)",
            ),
            (
                "[server]\nml_container_name = \"immich-server\"\n",
                "t.toml:2:1 ([server] ml_container_name)",
            ),
            (
                "[server]\npublish = \"localhost:2283\"\n",
                "t.toml:2:1 ([server] publish)",
            ),
        ];
        for (text, location) in cases {
            let err = check(text).expect_err(text);
            assert_eq!(err.kind, ErrorKind::BadInput, "{text}: {err}");
            assert_eq!(err.location.as_deref(), Some(*location), "{text}\n{err}");
            assert!(err.help.is_some(), "{text}");
        }
    }

    #[test]
    fn a_secret_is_refused_with_the_way_to_pass_it() {
        let err = check("[postgres]\nenvironment = { SMTP_PASSWORD = \"hunter2\" }\n").unwrap_err();
        assert!(err.what.contains("looks like a secret"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let help = err.help.unwrap();
        assert!(help.contains("podman secret create"), "{help}");
        assert!(help.contains("SMTP_PASSWORD_FILE"), "{help}");
        // A variable naming a file is how a secret is given: accepted.
        let d = check(
            "[server]\nenvironment = { SMTP_PASSWORD_FILE = \"/run/secrets/smtp\" }\npodman_args = [\"--secret=smtp,type=mount,target=smtp\"]\n",
        )
        .unwrap();
        assert_eq!(d.containers.server.environment.len(), 1);
    }

    #[test]
    fn the_server_may_be_published_anywhere_or_nowhere() {
        let d = check("[server]\npublish = \"0.0.0.0:8080\"\n").unwrap();
        assert_eq!(
            d.containers.server.publish,
            Some("0.0.0.0:8080".parse().unwrap())
        );
        let d = check("[server]\npublish = \"\"\n").unwrap();
        assert_eq!(d.containers.server.publish, None);
    }

    #[test]
    fn digest_pinned_images_are_accepted() {
        let d = check(
            "[postgres]\nimage = \"ghcr.io/immich-app/postgres:14-vectorchord0.4.3-pgvectors0.2.0@sha256:32324a2f41df5de9efe1af166b7008c3f55646f8d0e00d9550c16c9822366b4a\"\n[valkey]\nimage = \"docker.io/valkey/valkey@sha256:a137a2b60aca1a75130022d6bb96af423fefae4eb55faf395732db3544803280\"\n",
        )
        .unwrap();
        assert!(d.config.postgres.image.contains("@sha256:"));
    }
}
