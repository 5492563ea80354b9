//! The configuration file: its keys and defaults, where it is read from, and the
//! checks that turn it into a [`Deployment`].

pub mod backup;
pub mod containers;
pub mod edit;
pub mod kubernetes;
mod paths;
pub mod server;
mod template;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use homelab_systemd::Scope;
pub use paths::Dirs;
pub use template::template;
pub use validate::{Deployment, validate};

/// The environment variable naming the configuration file when `--config` is not
/// given.
pub const CONFIG_ENV: &str = "IMMICH_DB_CONFIG";

/// The configuration, as written in the file (every key has a default).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[network]`.
    pub network: NetworkConfig,
    /// `[storage]`.
    pub storage: StorageConfig,
    /// `[postgres]`.
    pub postgres: PostgresConfig,
    /// `[valkey]`.
    pub valkey: ValkeyConfig,
    /// `[immich]`.
    pub immich: ImmichConfig,
    /// `[systemd]`.
    pub systemd: SystemdConfig,
    /// `[backup]`.
    pub backup: backup::BackupConfig,
    /// `[kubernetes]`.
    pub kubernetes: kubernetes::KubernetesConfig,
    /// `[server]`: the Immich server and its machine learning, for
    /// `immich-db server units`.
    pub server: server::ServerConfig,
}

/// `[network]`: the Podman network both containers join.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// The name of the `.network` unit (without the extension); Podman names the
    /// network `systemd-<name>`.
    pub name: String,
    /// The network's subnet, in CIDR form.
    pub subnet: String,
    /// The gateway: an address inside the subnet.
    pub gateway: String,
    /// DNS servers given to the containers; empty: podman's own resolver.
    pub dns: Vec<String>,
}

/// `[storage]`: the BTRFS pool and the directories on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Mount point of the BTRFS pool.
    pub pool: String,
    /// PostgreSQL's data directory (NOCOW), relative to the pool unless absolute.
    pub postgres_dir: String,
    /// Valkey's data directory (NOCOW).
    pub valkey_dir: String,
    /// The photo library (copy-on-write kept).
    pub library_dir: String,
    /// The machine-learning model cache (copy-on-write kept).
    pub ml_cache_dir: String,
}

/// `[postgres]`: the PostgreSQL container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    /// Image of PostgreSQL with the vector extensions Immich needs.
    pub image: String,
    /// Container name; also the unit file name.
    pub container_name: String,
    /// Database role Immich logs in as.
    pub user: String,
    /// Database Immich uses.
    pub database: String,
    /// Podman secret holding the role's password.
    pub password_secret: String,
    /// Shared memory for the container.
    pub shm_size: String,
    /// Options for initdb when the database is first created.
    pub initdb_args: String,
    /// `DB_STORAGE_TYPE` for Immich's image, which tunes PostgreSQL for it:
    /// `"SSD"` or `"HDD"` (unset: the image's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_type: Option<String>,
    /// A port published on a loopback address of the host, for clients on the
    /// host (`"127.0.0.1:5432"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<String>,
    /// A fixed address on the network, inside the subnet (`IP=`: version 4
    /// addresses only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Extra `podman run` options, as words (`["--cpus=2"]`).
    pub podman_args: Vec<String>,
    /// Extra environment variables of the container (no secrets: they are
    /// written into the unit file).
    pub environment: BTreeMap<String, String>,
}

/// `[valkey]`: the Valkey container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValkeyConfig {
    /// Image of Valkey (or Redis).
    pub image: String,
    /// Container name; also the unit file name.
    pub container_name: String,
    /// Podman secret holding Valkey's password.
    pub password_secret: String,
    /// Whether Valkey asks for that password.
    pub require_password: bool,
    /// Whether `podman auto-update` pulls a newer image from the registry
    /// (`AutoUpdate=registry`).
    pub auto_update: bool,
    /// A port published on a loopback address of the host, for clients on the
    /// host (`"127.0.0.1:6379"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<String>,
    /// A fixed address on the network, inside the subnet (`IP=`: version 4
    /// addresses only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Extra `podman run` options, as words.
    pub podman_args: Vec<String>,
    /// Extra environment variables of the container (no secrets).
    pub environment: BTreeMap<String, String>,
}

/// `[immich]`: what the Immich server will need from this layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImmichConfig {
    /// Podman secret of a JWT key, kept for deployments that still pass it:
    /// Immich no longer reads `JWT_SECRET` (since early 2023).
    pub jwt_secret: String,
}

/// `[systemd]`: which manager runs the units, and where their files go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SystemdConfig {
    /// Which systemd manager runs the units: `"user"` or `"system"`.
    pub scope: String,
    /// Where the unit files go (default: the Quadlet directory of the scope).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_dir: Option<String>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            name: "photos".into(),
            subnet: "10.89.5.0/24".into(),
            gateway: "10.89.5.1".into(),
            // The address in the operator's journal is their own LAN's resolver:
            // nobody else should inherit it.
            dns: Vec::new(),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            pool: "/mnt/btrfs-pool".into(),
            postgres_dir: "subvol7-containers/postgresql-immich".into(),
            valkey_dir: "subvol7-containers/redis-immich".into(),
            library_dir: "subvol3-opptak/immich".into(),
            ml_cache_dir: "subvol7-containers/immich-ml-cache".into(),
        }
    }
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            image: "ghcr.io/immich-app/postgres:14-vectorchord0.4.3-pgvectors0.2.0".into(),
            container_name: "postgresql-immich".into(),
            user: "immich".into(),
            database: "immich".into(),
            password_secret: "postgres-password".into(),
            shm_size: "128m".into(),
            initdb_args: "--data-checksums".into(),
            storage_type: None,
            publish: None,
            ip: None,
            podman_args: Vec::new(),
            environment: BTreeMap::new(),
        }
    }
}

impl Default for ValkeyConfig {
    fn default() -> Self {
        Self {
            image: "docker.io/valkey/valkey:8".into(),
            container_name: "redis-immich".into(),
            password_secret: "redis-password".into(),
            require_password: true,
            auto_update: false,
            publish: None,
            ip: None,
            podman_args: Vec::new(),
            environment: BTreeMap::new(),
        }
    }
}

impl Default for ImmichConfig {
    fn default() -> Self {
        Self {
            jwt_secret: "immich-jwt-secret".into(),
        }
    }
}

impl Default for SystemdConfig {
    fn default() -> Self {
        Self {
            scope: "user".into(),
            unit_dir: None,
        }
    }
}

/// Where the effective configuration came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Origin {
    /// `--config FILE`.
    Flag {
        /// The file.
        path: PathBuf,
    },
    /// `$IMMICH_DB_CONFIG`.
    Env {
        /// The file.
        path: PathBuf,
    },
    /// `~/.config/immich-db/config.toml`.
    Home {
        /// The file.
        path: PathBuf,
    },
    /// No file: the built-in defaults.
    Defaults,
}

impl Origin {
    /// The file, where there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Flag { path } | Self::Env { path } | Self::Home { path } => Some(path),
            Self::Defaults => None,
        }
    }

    /// Where it came from, for a person.
    pub fn describe(&self) -> String {
        match self {
            Self::Flag { path } => format!("{} (from --config)", path.display()),
            Self::Env { path } => format!("{} (from ${CONFIG_ENV})", path.display()),
            Self::Home { path } => path.display().to_string(),
            Self::Defaults => "built-in defaults (no configuration file)".into(),
        }
    }
}

/// A configuration and the text it was read from, so that every error can name
/// the line of the key it is about.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Where it came from.
    pub origin: Origin,
    text: Option<String>,
    /// The per-user configuration directory.
    config_home: Option<PathBuf>,
}

/// The default location of the configuration file: `immich-db/config.toml` in
/// `$XDG_CONFIG_HOME`, else in `~/.config`.
pub fn home_config_path() -> Option<PathBuf> {
    paths::config_home_from_env().map(|base| base.join("immich-db/config.toml"))
}

/// Finds and reads the configuration: `flag` (`--config`), else
/// `$IMMICH_DB_CONFIG`, else `~/.config/immich-db/config.toml` when it exists,
/// else the defaults. `$XDG_CONFIG_HOME` (else `~/.config`) is where per-user
/// configuration lives.
pub fn load(flag: Option<&Path>) -> Result<Loaded> {
    let home = paths::config_home_from_env();
    if flag.is_none()
        && let Some(path) = std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty())
    {
        let path = PathBuf::from(path);
        let mut loaded = load_in(Some(&path), home)?;
        loaded.origin = Origin::Env { path };
        return Ok(loaded);
    }
    load_in(flag, home)
}

/// [`load`] with the per-user configuration directory given (`None`: there
/// is none; the user scope then needs `[systemd] unit_dir`), and the file
/// given or not: no environment variable is read.
pub fn load_in(file: Option<&Path>, config_home: Option<PathBuf>) -> Result<Loaded> {
    let origin = if let Some(path) = file {
        Origin::Flag { path: path.into() }
    } else {
        match config_home
            .as_deref()
            .map(|home| home.join("immich-db/config.toml"))
        {
            Some(path) if path.exists() => Origin::Home { path },
            _ => Origin::Defaults,
        }
    };
    let Some(path) = origin.path() else {
        return Ok(Loaded {
            config: Config::default(),
            origin,
            text: None,
            config_home,
        });
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        let failure = Error::bad_input(format!("cannot read the configuration file: {e}"))
            .at(origin.describe());
        if e.kind() == std::io::ErrorKind::NotFound {
            failure.help(format!(
                "create it with `immich-db config init {}`, or point --config at an existing file",
                path.display()
            ))
        } else {
            failure
        }
    })?;
    let mut loaded = parse(&text, origin)?;
    loaded.config_home = config_home;
    Ok(loaded)
}

/// Parses a configuration file's text.
pub fn parse(text: &str, origin: Origin) -> Result<Loaded> {
    let config: Config = toml::from_str(text).map_err(|e| {
        let name = origin
            .path()
            .map_or_else(|| "configuration".into(), |p| p.display().to_string());
        let location = match e.span() {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                format!("{name}:{line}:{column}")
            }
            None => name,
        };
        let mut message = e.message().trim().to_owned();
        let key = e.span().and_then(|span| key_at(text, span.start));
        // A table at the top level that is not one of ours is a section header.
        let section_header = key.is_none()
            && e.span()
                .is_some_and(|span| text.get(..span.start).is_some_and(|t| t.ends_with('[')));
        if let Some((section, key)) = key {
            message = format!("[{section}] {key}: {message}");
        } else if section_header && message.starts_with("unknown field") {
            message = message.replacen("unknown field", "unknown section", 1);
        }
        let help = if section_header {
            "remove the section or fix its name; `immich-db config init` writes every known section with a comment"
        } else if message.contains("unknown field") {
            "remove the key or fix its spelling; `immich-db config init` writes every known key with a comment"
        } else {
            "fix the TOML at that line; `immich-db config init` writes a valid file to start from"
        };
        Error::bad_input(format!("invalid configuration: {message}"))
            .at(location)
            .help(help)
    })?;
    Ok(Loaded {
        config,
        origin,
        text: Some(text.to_owned()),
        config_home: paths::config_home_from_env(),
    })
}

impl Loaded {
    /// Checks every key and resolves the configuration into a [`Deployment`];
    /// an error names the key, its line and the fix.
    pub fn validate(&self) -> Result<Deployment> {
        validate(self)
    }

    /// The built-in defaults.
    pub fn defaults() -> Self {
        Self {
            config: Config::default(),
            origin: Origin::Defaults,
            text: None,
            config_home: paths::config_home_from_env(),
        }
    }

    /// `FILE:LINE:COLUMN ([section] key)` for a key, or where it would be.
    pub fn locate(&self, section: &str, key: &str) -> String {
        let what = format!("[{section}] {key}");
        let (Some(text), Some(path)) = (&self.text, self.origin.path()) else {
            return format!("{what} (built-in default)");
        };
        match key_offset(text, section, key) {
            Some(offset) => {
                let (line, column) = line_column(text, offset);
                format!("{}:{line}:{column} ({what})", path.display())
            }
            None => format!("{} ({what}, built-in default)", path.display()),
        }
    }
}

impl Loaded {
    /// `FILE:LINE:COLUMN ([section] key.entry)` for an entry of a table-valued
    /// key (`[postgres] environment`), else where the key itself is.
    pub fn locate_entry(&self, section: &str, key: &str, entry: &str) -> String {
        let what = format!("[{section}] {key}.{entry}");
        let (Some(text), Some(path)) = (&self.text, self.origin.path()) else {
            return format!("{what} (built-in default)");
        };
        match entry_offset(text, section, key, entry) {
            Some(offset) => {
                let (line, column) = line_column(text, offset);
                format!("{}:{line}:{column} ({what})", path.display())
            }
            None => self.locate(section, key),
        }
    }
}

/// Writes the commented default configuration to `file` (or
/// [`home_config_path`]), refusing to replace an existing file unless `force`;
/// returns where it was written.
pub fn init(file: Option<&Path>, force: bool) -> Result<PathBuf> {
    use std::io::Write as _;
    let path = match file {
        Some(path) => path.to_path_buf(),
        None => home_config_path().ok_or_else(|| {
            Error::bad_input("cannot find the default configuration path: $HOME is not set")
                .help("give the file to write: `immich-db config init FILE`")
        })?,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            Error::bad_input(format!(
                "cannot create the directory {}: {e}",
                parent.display()
            ))
        })?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut out = options.open(&path).map_err(|e| {
        let failure = Error::bad_input(format!("cannot write {}: {e}", path.display()));
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            failure.help("it is kept as it is; pass --force to replace it, or choose another file")
        } else {
            failure
        }
    })?;
    out.write_all(template().as_bytes())
        .and_then(|()| out.sync_all())
        .map_err(|e| Error::failed(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

/// What a configuration resolves to.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Resolved {
    /// The podman network's name.
    pub network: String,
    /// The pool.
    pub pool: PathBuf,
    /// The data directories.
    pub directories: Dirs,
    /// Where the unit files go.
    pub unit_dir: PathBuf,
    /// Which manager runs them.
    pub scope: String,
}

/// The configuration in effect, where it came from, and what it resolves to.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Shown {
    /// Where it came from.
    pub source: Origin,
    /// The configuration.
    pub config: Config,
    /// What it resolves to.
    pub resolved: Resolved,
    /// The configuration as TOML.
    #[serde(skip)]
    pub toml: String,
}

/// The configuration in effect, after checking it.
pub fn show(loaded: &Loaded) -> Result<Shown> {
    let deployment = validate(loaded)?;
    let toml = toml::to_string_pretty(&loaded.config)
        .map_err(|e| Error::failed(format!("cannot render the configuration: {e}")))?;
    Ok(Shown {
        source: loaded.origin.clone(),
        config: loaded.config.clone(),
        resolved: Resolved {
            network: deployment.podman_network(),
            pool: deployment.pool.clone(),
            directories: deployment.dirs.clone(),
            unit_dir: deployment.unit_dir.clone(),
            scope: deployment.scope.to_string(),
        },
        toml,
    })
}

/// The byte offset of `key` in `[section]`, from the spans the TOML parser keeps.
fn key_offset(text: &str, section: &str, key: &str) -> Option<usize> {
    let document = toml::de::DeTable::parse(text).ok()?;
    let table = document.get_ref().get(section)?.get_ref().as_table()?;
    let (found, _) = table.get_key_value(key)?;
    Some(found.span().start)
}

/// The byte offset of `entry` in the table `key` of `[section]`.
fn entry_offset(text: &str, section: &str, key: &str, entry: &str) -> Option<usize> {
    let document = toml::de::DeTable::parse(text).ok()?;
    let table = document.get_ref().get(section)?.get_ref().as_table()?;
    let inner = table.get(key)?.get_ref().as_table()?;
    let (found, _) = inner.get_key_value(entry)?;
    Some(found.span().start)
}

/// The `[section] key` whose value holds the byte offset.
fn key_at(text: &str, offset: usize) -> Option<(String, String)> {
    let document = toml::de::DeTable::parse(text).ok()?;
    for (section, table) in document.get_ref() {
        let Some(entries) = table.get_ref().as_table() else {
            continue;
        };
        for (key, value) in entries {
            if value.span().contains(&offset) || key.span().contains(&offset) {
                return Some((section.get_ref().to_string(), key.get_ref().to_string()));
            }
        }
    }
    None
}

/// One-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.chars().count(), |nl| {
        before[nl + 1..].chars().count()
    }) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Result<Loaded> {
        parse(
            text,
            Origin::Flag {
                path: "test.toml".into(),
            },
        )
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        let loaded = file("").unwrap();
        assert_eq!(loaded.config, Config::default());
        assert!(loaded.config.network.dns.is_empty());
    }

    #[test]
    fn unknown_key_names_the_key_and_line() {
        let err = file("[network]\nname = \"x\"\nsubnett = \"10.0.0.0/24\"\n").unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::BadInput);
        assert!(err.what.contains("subnett"), "{err}");
        assert_eq!(err.location.as_deref(), Some("test.toml:3:1"));
    }

    #[test]
    fn unknown_section_names_the_section_and_line() {
        let err = file("[network]\nname = \"x\"\n\n[netwrok]\nname = \"y\"\n").unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::BadInput);
        assert!(err.what.contains("unknown section `netwrok`"), "{err}");
        assert!(err.help.as_deref().unwrap().contains("section"), "{err}");
        assert_eq!(err.location.as_deref(), Some("test.toml:4:2"));
    }

    #[test]
    fn syntax_error_names_the_line() {
        let err = file("[network]\nname = \"x\n").unwrap_err();
        assert!(
            err.location.as_deref().unwrap().starts_with("test.toml:2:"),
            "{err}"
        );
    }

    #[test]
    fn wrong_type_names_the_key_and_line() {
        let err = file("[valkey]\nrequire_password = \"yes\"\n").unwrap_err();
        assert!(err.what.contains("[valkey] require_password"), "{err}");
        assert!(
            err.location.as_deref().unwrap().starts_with("test.toml:2:"),
            "{err}"
        );
    }

    #[test]
    fn locate_finds_keys_and_defaults() {
        let loaded = file("# c\n[postgres]\n  user = \"a\"\n").unwrap();
        assert_eq!(
            loaded.locate("postgres", "user"),
            "test.toml:3:3 ([postgres] user)"
        );
        assert_eq!(
            loaded.locate("postgres", "database"),
            "test.toml ([postgres] database, built-in default)"
        );
        assert_eq!(
            Loaded::defaults().locate("network", "name"),
            "[network] name (built-in default)"
        );
    }

    #[test]
    fn line_column_counts_from_one() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
    }
}
