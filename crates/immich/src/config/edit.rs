//! Changing keys of the configuration file in place: what an upgrade records
//! (the new image) and an import writes (the database's role and name), with
//! every comment, the order of the keys and the layout of the file kept.

use std::path::PathBuf;

use serde::Serialize;
use toml_edit::{DocumentMut, Item, Table, Value};

use super::{Deployment, Loaded, Origin, parse, template};
use crate::error::{Error, Result};
use crate::files::write_atomic;

/// One key to set: `[section] key = "value"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Change {
    /// The section (`postgres`).
    pub section: String,
    /// The key (`image`).
    pub key: String,
    /// The string it is set to.
    pub value: String,
}

impl Change {
    /// `[section] key = "value"`.
    pub fn new(
        section: impl Into<String>,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        Self {
            section: section.into(),
            key: key.into(),
            value: value.into(),
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {} = {:?}", self.section, self.key, self.value)
    }
}

/// A configuration file after [`edit`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Edited {
    /// The file.
    pub path: PathBuf,
    /// Whether it was written (some key had another value, or the file did
    /// not exist).
    pub changed: bool,
    /// The configuration now in it.
    pub loaded: Loaded,
    /// What it resolves to.
    pub deployment: Deployment,
}

/// The file that `loaded` came from, or, for the built-in defaults, the one
/// [`edit`] creates: `immich-db/config.toml` in the per-user configuration
/// directory.
pub fn file_of(loaded: &Loaded) -> Result<PathBuf> {
    if let Some(path) = loaded.origin.path() {
        return Ok(path.to_path_buf());
    }
    loaded
        .config_home
        .as_deref()
        .map(|home| home.join("immich-db/config.toml"))
        .ok_or_else(|| {
            Error::bad_input(
                "there is no configuration file to write the change to, and $HOME is not set",
            )
            .help("give one with --config FILE (`immich-db config init FILE` writes one)")
        })
}

/// Sets the keys in the configuration file `loaded` came from (where it came
/// from the built-in defaults: in the commented file `config init` writes, at
/// [`file_of`]), keeping everything else as it is, comments included. The
/// result is checked as the file is when it is read; a configuration that
/// would not pass is refused and nothing is written.
pub fn edit(loaded: &Loaded, changes: &[Change]) -> Result<Edited> {
    let path = file_of(loaded)?;
    let (text, exists) = match std::fs::read_to_string(&path) {
        Ok(text) => (text, true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && loaded.origin.path().is_none() => {
            (template(), false)
        }
        Err(e) => {
            return Err(
                Error::bad_input(format!("cannot read the configuration file: {e}"))
                    .at(path.display().to_string()),
            );
        }
    };
    let mut document: DocumentMut = text.parse().map_err(|e| {
        Error::bad_input(format!("the configuration file is not valid TOML: {e}"))
            .at(path.display().to_string())
            .help("fix it, then run the command again; nothing was changed")
    })?;
    let mut written = !exists;
    for change in changes {
        written |= set(&mut document, change).map_err(|what| {
            Error::bad_input(what)
                .at(path.display().to_string())
                .help("fix the file by hand, then run the command again; nothing was changed")
        })?;
    }
    let new_text = document.to_string();
    let mut reloaded = parse(&new_text, Origin::Flag { path: path.clone() })?;
    reloaded.origin = match &loaded.origin {
        Origin::Defaults => Origin::Home { path: path.clone() },
        other => other.clone(),
    };
    reloaded.config_home.clone_from(&loaded.config_home);
    let deployment = reloaded.validate().map_err(|e| {
        let mut failure = e;
        failure.help = Some(format!(
            "{}; {} was not changed",
            failure
                .help
                .take()
                .unwrap_or_else(|| "fix the value".into()),
            path.display()
        ));
        failure
    })?;
    if written {
        write_atomic(&path, new_text.as_bytes()).map_err(|e| {
            Error::failed(format!("cannot write {}: {e}", path.display()))
                .help("check the permissions of the file and its directory")
        })?;
    }
    Ok(Edited {
        path,
        changed: written,
        loaded: reloaded,
        deployment,
    })
}

/// Sets one key; whether its value changed. A value's own comment (after it
/// on its line) stays with it.
fn set(document: &mut DocumentMut, change: &Change) -> std::result::Result<bool, String> {
    let Change {
        section,
        key,
        value,
    } = change;
    if !document.contains_key(section) {
        document.insert(section, Item::Table(Table::new()));
    }
    let Some(table) = document.get_mut(section).and_then(Item::as_table_like_mut) else {
        return Err(format!(
            "`{section}` in the configuration file is not a section"
        ));
    };
    match table.get_mut(key) {
        Some(Item::Value(old)) => {
            if old.as_str() == Some(value.as_str()) {
                return Ok(false);
            }
            let mut new = Value::from(value.as_str());
            *new.decor_mut() = old.decor().clone();
            *old = new;
        }
        Some(_) => {
            return Err(format!(
                "[{section}] {key} in the configuration file is not a value"
            ));
        }
        None => {
            table.insert(key, Item::Value(Value::from(value.as_str())));
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn loaded_from(dir: &Path, text: &str) -> (PathBuf, Loaded) {
        let path = dir.join("config.toml");
        std::fs::write(&path, text).unwrap();
        let loaded = super::super::load_in(Some(&path), Some(dir.to_path_buf())).unwrap();
        (path, loaded)
    }

    #[test]
    fn keys_change_and_comments_stay() {
        let dir = tempfile::tempdir().unwrap();
        let text = "# my deployment\n\n[postgres]\n# the image, pinned\nimage = \"a/pg:17\" # keep me\nuser = \"immich\"\n\n[valkey]\n# untouched\nrequire_password = true\n";
        let (path, loaded) = loaded_from(dir.path(), text);
        let edited = edit(
            &loaded,
            &[
                Change::new("postgres", "image", "a/pg:18"),
                Change::new("postgres", "database", "photos"),
                Change::new("storage", "library_dir", "/srv/photos"),
            ],
        )
        .unwrap();
        assert!(edited.changed);
        let written = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            written,
            "# my deployment\n\n[postgres]\n# the image, pinned\nimage = \"a/pg:18\" # keep me\nuser = \"immich\"\ndatabase = \"photos\"\n\n[valkey]\n# untouched\nrequire_password = true\n\n[storage]\nlibrary_dir = \"/srv/photos\"\n"
        );
        assert_eq!(edited.deployment.config.postgres.image, "a/pg:18");
        assert_eq!(edited.loaded.config.postgres.database, "photos");
        assert_eq!(file_of(&edited.loaded).unwrap(), path);
        // The same again changes nothing and writes nothing.
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        let again = edit(
            &edited.loaded,
            &[Change::new("postgres", "image", "a/pg:18")],
        )
        .unwrap();
        assert!(!again.changed);
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            before
        );
    }

    #[test]
    fn a_value_that_does_not_validate_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (path, loaded) = loaded_from(dir.path(), "[postgres]\nuser = \"immich\"\n");
        let e = edit(
            &loaded,
            &[Change::new("postgres", "user", "no spaces allowed")],
        )
        .unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::BadInput, "{e}");
        assert!(e.to_string().contains("was not changed"), "{e}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "[postgres]\nuser = \"immich\"\n"
        );
        std::fs::write(&path, "postgres = 1\n").unwrap();
        let e = edit(&loaded, &[Change::new("postgres", "user", "y")]).unwrap_err();
        assert!(e.what.contains("not a section"), "{e}");
    }

    #[test]
    fn the_defaults_become_the_commented_file() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = super::super::load_in(None, Some(dir.path().to_path_buf())).unwrap();
        assert_eq!(loaded.origin, Origin::Defaults);
        let edited = edit(&loaded, &[Change::new("postgres", "image", "a/pg:18")]).unwrap();
        assert_eq!(edited.path, dir.path().join("immich-db/config.toml"));
        assert!(edited.changed);
        let written = std::fs::read_to_string(&edited.path).unwrap();
        assert!(
            written.starts_with("# immich-db configuration."),
            "{written}"
        );
        assert!(written.contains("image = \"a/pg:18\"\n"), "{written}");
        // Set in [postgres] only, every other key of the template as it was.
        assert_eq!(
            written.matches("image = \"a/pg:18\"").count(),
            1,
            "{written}"
        );
        assert_eq!(
            written.matches("image = ").count(),
            template().matches("image = ").count(),
            "{written}"
        );
        assert!(matches!(edited.loaded.origin, Origin::Home { .. }));
    }
}
