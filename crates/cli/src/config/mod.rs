//! The configuration file: its keys and defaults, where it is read from, and the
//! checks that turn it into a [`Deployment`].

pub(crate) mod backup;
mod template;
pub(crate) mod validate;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Failure, Result};

pub(crate) use template::template;
pub(crate) use validate::{Deployment, Scope, validate};

/// The environment variable naming the configuration file when `--config` is not
/// given.
pub(crate) const CONFIG_ENV: &str = "IMMICH_DB_CONFIG";

/// The configuration, as written in the file (every key has a default).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    pub(crate) network: NetworkConfig,
    pub(crate) storage: StorageConfig,
    pub(crate) postgres: PostgresConfig,
    pub(crate) valkey: ValkeyConfig,
    pub(crate) immich: ImmichConfig,
    pub(crate) systemd: SystemdConfig,
    pub(crate) backup: backup::BackupConfig,
}

/// `[network]`: the Podman network both containers join.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct NetworkConfig {
    /// The name of the `.network` unit (without the extension); Podman names the
    /// network `systemd-<name>`.
    pub(crate) name: String,
    pub(crate) subnet: String,
    pub(crate) gateway: String,
    pub(crate) dns: Vec<String>,
}

/// `[storage]`: the BTRFS pool and the directories on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct StorageConfig {
    pub(crate) pool: String,
    pub(crate) postgres_dir: String,
    pub(crate) valkey_dir: String,
    pub(crate) library_dir: String,
    pub(crate) ml_cache_dir: String,
}

/// `[postgres]`: the PostgreSQL container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct PostgresConfig {
    pub(crate) image: String,
    pub(crate) container_name: String,
    pub(crate) user: String,
    pub(crate) database: String,
    pub(crate) password_secret: String,
    pub(crate) shm_size: String,
    pub(crate) initdb_args: String,
}

/// `[valkey]`: the Valkey container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ValkeyConfig {
    pub(crate) image: String,
    pub(crate) container_name: String,
    pub(crate) password_secret: String,
    pub(crate) require_password: bool,
}

/// `[immich]`: what the Immich server will need from this layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ImmichConfig {
    pub(crate) jwt_secret: String,
}

/// `[systemd]`: which manager runs the units, and where their files go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct SystemdConfig {
    pub(crate) scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) unit_dir: Option<String>,
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
pub(crate) enum Origin {
    /// `--config FILE`.
    Flag { path: PathBuf },
    /// `$IMMICH_DB_CONFIG`.
    Env { path: PathBuf },
    /// `~/.config/immich-db/config.toml`.
    Home { path: PathBuf },
    /// No file: the built-in defaults.
    Defaults,
}

impl Origin {
    pub(crate) fn path(&self) -> Option<&Path> {
        match self {
            Self::Flag { path } | Self::Env { path } | Self::Home { path } => Some(path),
            Self::Defaults => None,
        }
    }

    pub(crate) fn describe(&self) -> String {
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
pub(crate) struct Loaded {
    pub(crate) config: Config,
    pub(crate) origin: Origin,
    text: Option<String>,
}

/// The default location of the configuration file: `$XDG_CONFIG_HOME` or
/// `~/.config`, then `immich-db/config.toml`.
pub(crate) fn home_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".config"))
        })?;
    Some(base.join("immich-db/config.toml"))
}

/// Finds and reads the configuration: `--config`, else `$IMMICH_DB_CONFIG`, else
/// `~/.config/immich-db/config.toml` when it exists, else the defaults.
pub(crate) fn load(flag: Option<&Path>) -> Result<Loaded> {
    let origin = if let Some(path) = flag {
        Origin::Flag { path: path.into() }
    } else if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty()) {
        Origin::Env { path: path.into() }
    } else {
        match home_config_path() {
            Some(path) if path.exists() => Origin::Home { path },
            _ => Origin::Defaults,
        }
    };
    let Some(path) = origin.path() else {
        return Ok(Loaded {
            config: Config::default(),
            origin,
            text: None,
        });
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        let failure = Failure::bad_input(format!("cannot read the configuration file: {e}"))
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
    parse(&text, origin)
}

/// Parses a configuration file's text.
pub(crate) fn parse(text: &str, origin: Origin) -> Result<Loaded> {
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
        Failure::bad_input(format!("invalid configuration: {message}"))
            .at(location)
            .help(help)
    })?;
    Ok(Loaded {
        config,
        origin,
        text: Some(text.to_owned()),
    })
}

impl Loaded {
    /// The built-in defaults.
    #[cfg(test)]
    pub(crate) fn defaults() -> Self {
        Self {
            config: Config::default(),
            origin: Origin::Defaults,
            text: None,
        }
    }

    /// `FILE:LINE:COLUMN ([section] key)` for a key, or where it would be.
    pub(crate) fn locate(&self, section: &str, key: &str) -> String {
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

/// The byte offset of `key` in `[section]`, from the spans the TOML parser keeps.
fn key_offset(text: &str, section: &str, key: &str) -> Option<usize> {
    let document = toml::de::DeTable::parse(text).ok()?;
    let table = document.get_ref().get(section)?.get_ref().as_table()?;
    let (found, _) = table.get_key_value(key)?;
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
        assert_eq!(err.exit, crate::error::Exit::BadInput);
        assert!(err.what.contains("subnett"), "{err}");
        assert_eq!(err.location.as_deref(), Some("test.toml:3:1"));
    }

    #[test]
    fn unknown_section_names_the_section_and_line() {
        let err = file("[network]\nname = \"x\"\n\n[netwrok]\nname = \"y\"\n").unwrap_err();
        assert_eq!(err.exit, crate::error::Exit::BadInput);
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
