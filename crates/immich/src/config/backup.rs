//! `[backup]`: where database dumps go, how many are kept, and where the units
//! of a scheduled backup are written.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Loaded;
use super::Scope;
use super::paths::{Dirs, normalise, resolve_dir};
use crate::error::{Error, Result};

/// `[backup]` as written in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupConfig {
    /// The directory of the dumps: relative to the pool, or absolute.
    pub dir: String,
    /// How many dumps to keep; older ones are deleted after a new one is written.
    pub keep: u32,
    /// Where `backup --schedule` writes its timer and service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_dir: Option<String>,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            dir: "backups".into(),
            keep: 7,
            unit_dir: None,
        }
    }
}

/// `[backup]` resolved: absolute directories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BackupSettings {
    /// The directory of the dumps.
    pub dir: PathBuf,
    /// How many dumps are kept.
    pub keep: u32,
    /// Where a backup schedule's timer and service go.
    pub unit_dir: PathBuf,
}

fn fail(loaded: &Loaded, key: &str, what: String, help: &str) -> Error {
    Error::bad_input(what)
        .at(loaded.locate("backup", key))
        .help(help)
}

/// Whether `a` and `b` are the same directory or one holds the other.
pub(crate) fn overlaps(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Checks `[backup]`: the dump directory must stay off the NOCOW database
/// directories (NOCOW files have no BTRFS checksums, and snapshots of a NOCOW
/// directory do not protect it), `keep` is at least 1.
pub(crate) fn resolve(
    loaded: &Loaded,
    pool: &Path,
    dirs: &Dirs,
    scope: Scope,
) -> Result<BackupSettings> {
    let backup = &loaded.config.backup;
    let dir = resolve_dir(pool, &backup.dir).map_err(|why| {
        fail(
            loaded,
            "dir",
            format!(
                "`backup.dir` = {:?} is not a usable directory: {why}",
                backup.dir
            ),
            "give a path relative to the pool, or an absolute path",
        )
    })?;
    if dir == pool {
        return Err(fail(
            loaded,
            "dir",
            "`backup.dir` is the pool itself".into(),
            "give the dumps a directory of their own, such as \"backups\"",
        ));
    }
    for (key, database_dir) in [
        ("postgres_dir", &dirs.postgres),
        ("valkey_dir", &dirs.valkey),
    ] {
        if overlaps(&dir, database_dir) {
            return Err(fail(
                loaded,
                "dir",
                format!(
                    "`backup.dir` ({}) overlaps `storage.{key}` ({}), a NOCOW database directory",
                    dir.display(),
                    database_dir.display()
                ),
                "keep the dumps on copy-on-write storage outside the database directories, such as \"backups\"",
            ));
        }
    }
    if backup.keep == 0 {
        return Err(fail(
            loaded,
            "keep",
            "`backup.keep` is 0: every dump would be deleted as soon as it is written".into(),
            "keep at least 1 dump, such as keep = 7",
        ));
    }
    let unit_dir = match &backup.unit_dir {
        Some(value) => {
            let path = Path::new(value);
            if !path.is_absolute() {
                return Err(fail(
                    loaded,
                    "unit_dir",
                    format!("`backup.unit_dir` = {value:?} is not an absolute path"),
                    "give an absolute directory that the systemd manager reads units from, or remove the key",
                ));
            }
            normalise(path)
        }
        None => super::paths::default_systemd_unit_dir(scope, loaded.config_home.as_deref())
            .ok_or_else(|| {
                Error::precondition("cannot find the systemd unit directory: $HOME is not set")
                    .help("set HOME, or set `unit_dir` in [backup]")
            })?,
    };
    Ok(BackupSettings {
        dir,
        keep: backup.keep,
        unit_dir,
    })
}

/// The `[backup]` part of the commented configuration file.
pub(crate) fn template(backup: &BackupConfig) -> String {
    let q = |v: &str| toml::Value::String(v.to_owned()).to_string();
    format!(
        r#"
[backup]
# Where `immich-db backup` writes its dumps: relative to the pool, or absolute.
# Keep it on copy-on-write storage, never inside a database directory.
dir = {dir}
# How many dumps to keep; older ones are deleted after each new one.
keep = {keep}
# Where `immich-db backup --schedule` writes its timer and service. Default:
# ~/.config/systemd/user for the "user" scope, /etc/systemd/system for "system".
# For example:
# unit_dir = "/etc/systemd/user"
"#,
        dir = q(&backup.dir),
        keep = backup.keep,
    )
}

#[cfg(test)]
mod tests {
    use crate::config::{Origin, parse, validate};
    use crate::error::ErrorKind;

    fn check(text: &str) -> crate::error::Result<crate::config::Deployment> {
        validate(&parse(
            text,
            Origin::Flag {
                path: "t.toml".into(),
            },
        )?)
    }

    #[test]
    fn defaults_put_the_dumps_under_the_pool() {
        let d = check("").unwrap();
        assert_eq!(
            d.backup.dir,
            std::path::Path::new("/mnt/btrfs-pool/backups")
        );
        assert_eq!(d.backup.keep, 7);
    }

    #[test]
    fn malformed_backup_keys_name_key_and_line() {
        let cases: &[(&str, &str)] = &[
            (
                "[backup]\ndir = \"subvol7-containers/postgresql-immich/dumps\"\n",
                "t.toml:2:1 ([backup] dir)",
            ),
            (
                "[backup]\ndir = \"subvol7-containers\"\n",
                "t.toml:2:1 ([backup] dir)",
            ),
            (
                "[backup]\ndir = \"/mnt/btrfs-pool\"\n",
                "t.toml:2:1 ([backup] dir)",
            ),
            ("[backup]\ndir = \"../x\"\n", "t.toml:2:1 ([backup] dir)"),
            ("[backup]\nkeep = 0\n", "t.toml:2:1 ([backup] keep)"),
            (
                "[backup]\nunit_dir = \"units\"\n",
                "t.toml:2:1 ([backup] unit_dir)",
            ),
        ];
        for (text, location) in cases {
            let err = check(text).unwrap_err();
            assert_eq!(err.kind, ErrorKind::BadInput, "{text}: {err}");
            assert_eq!(err.location.as_deref(), Some(*location), "{text}: {err}");
            assert!(err.help.is_some(), "{text}: {err}");
        }
        let err = check("[backup]\nkeep = -1\n").unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadInput, "{err}");
        assert!(err.what.contains("[backup] keep"), "{err}");
    }
}
