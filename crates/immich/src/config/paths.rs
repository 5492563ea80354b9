//! The configuration's paths: directories relative to the pool, and the
//! default unit directories of each scope.

use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use super::Scope;

/// The four directories of the deployment, absolute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Dirs {
    /// PostgreSQL's data (NOCOW).
    pub postgres: PathBuf,
    /// Valkey's data (NOCOW).
    pub valkey: PathBuf,
    /// The photo library (copy-on-write).
    pub library: PathBuf,
    /// The machine-learning model cache (copy-on-write).
    pub ml_cache: PathBuf,
}

/// A directory of the deployment: relative to the pool, or absolute; never with
/// `..`.
pub(crate) fn resolve_dir(pool: &Path, value: &str) -> std::result::Result<PathBuf, String> {
    if value.is_empty() {
        return Err("it is empty".into());
    }
    let path = Path::new(value);
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err("it contains `..`".into());
    }
    let resolved = if path.is_absolute() {
        normalise(path)
    } else {
        normalise(&pool.join(path))
    };
    if resolved == Path::new("/") {
        return Err("it is the root directory".into());
    }
    Ok(resolved)
}

/// Drops `.` components and duplicate slashes.
pub(crate) fn normalise(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// `$XDG_CONFIG_HOME` when it is an absolute path, else `~/.config`.
pub(crate) fn config_home_from_env() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|home| PathBuf::from(home).join(".config"))
        })
}

/// The unit directory of a scope, when the configuration does not set one: the
/// one podman's generator reads, `$XDG_CONFIG_HOME/containers/systemd` (by
/// default `~/.config/containers/systemd`) for a user, `/etc/containers/systemd`
/// for the system.
pub(crate) fn default_unit_dir(scope: Scope, config_home: Option<&Path>) -> Option<PathBuf> {
    match scope {
        Scope::User => config_home.map(|config| config.join("containers/systemd")),
        Scope::System => Some("/etc/containers/systemd".into()),
    }
}

/// The unit directory for plain systemd units (not Quadlet) of a scope:
/// `$XDG_CONFIG_HOME/systemd/user` (by default `~/.config/systemd/user`) for a
/// user, `/etc/systemd/system` for the system.
pub(crate) fn default_systemd_unit_dir(
    scope: Scope,
    config_home: Option<&Path>,
) -> Option<PathBuf> {
    match scope {
        Scope::User => config_home.map(|config| config.join("systemd/user")),
        Scope::System => Some("/etc/systemd/system".into()),
    }
}
