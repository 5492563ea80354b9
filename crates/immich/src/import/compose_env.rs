//! Immich's docker-compose `.env` file: the database's password, role and
//! name, and where the compose install keeps its data.
//!
//! The file is read as Docker Compose reads it: `KEY=VALUE` lines, `#`
//! comments, blank lines, an optional `export ` before the key, values in
//! single quotes taken as they are, values in double quotes with `\n`, `\"`
//! and `\\` escapes, and unquoted values trimmed and cut at ` #`. Relative
//! paths are relative to the file's directory, as Compose takes them.
//!
//! ```
//! use homelab_immich::import::ComposeEnv;
//!
//! let env = ComposeEnv::parse(
//!     "UPLOAD_LOCATION=./library\nDB_DATA_LOCATION=./postgres\n\
//!      DB_PASSWORD=Xk2Lq9Zp\nDB_USERNAME=postgres\nDB_DATABASE_NAME=immich\n",
//!     std::path::Path::new("/srv/immich/.env"),
//! )?;
//! assert_eq!(env.username, "postgres");
//! assert_eq!(env.database, "immich");
//! assert_eq!(env.password.expose(), b"Xk2Lq9Zp");
//! assert_eq!(env.upload_location.as_deref(), Some(std::path::Path::new("/srv/immich/library")));
//! // The password is never shown.
//! assert!(!format!("{env:?}").contains("Xk2Lq9Zp"));
//! # Ok::<(), homelab_immich::Error>(())
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use homelab_secrets::SecretValue;

use crate::error::{Error, Result};

/// What the import takes of Immich's `.env`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ComposeEnv {
    /// The file.
    pub path: PathBuf,
    /// `DB_PASSWORD`: the role's password.
    pub password: SecretValue,
    /// `DB_USERNAME`: the role Immich logs in as.
    pub username: String,
    /// `DB_DATABASE_NAME`: Immich's database.
    pub database: String,
    /// `DB_DATA_LOCATION`: the compose database's data directory, absolute.
    pub data_location: Option<PathBuf>,
    /// `UPLOAD_LOCATION`: the photo library, absolute.
    pub upload_location: Option<PathBuf>,
}

impl ComposeEnv {
    /// Reads the file at `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::bad_input(format!("cannot read Immich's .env file: {e}"))
                .at(path.display().to_string())
                .help("give the .env file next to Immich's docker-compose.yml")
        })?;
        Self::parse(&text, path)
    }

    /// Parses `text`, the content of the file at `path` (relative paths in
    /// it are taken from `path`'s directory). An error names the line and
    /// the key, never a value.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let mut values = parse_lines(text).map_err(|(line, why)| {
            Error::bad_input(format!("Immich's .env file: {why}"))
                .at(format!("{}:{line}", path.display()))
                .help("write each setting as KEY=VALUE, as Immich's example .env does")
        })?;
        let mut take = |key: &str| values.remove(key).filter(|v| !v.is_empty());
        let missing = |key: &str| {
            Error::bad_input(format!("Immich's .env file does not set {key}"))
                .at(path.display().to_string())
                .help(format!(
                    "give the .env file of the compose install (it sets {key}), or add {key}=..."
                ))
        };
        let password = take("DB_PASSWORD").ok_or_else(|| missing("DB_PASSWORD"))?;
        let username = take("DB_USERNAME").ok_or_else(|| missing("DB_USERNAME"))?;
        let database = take("DB_DATABASE_NAME").ok_or_else(|| missing("DB_DATABASE_NAME"))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let absolute = |value: String| {
            let p = PathBuf::from(value);
            if p.is_absolute() {
                normalise(&p)
            } else {
                normalise(&base.join(p))
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            password: SecretValue::new(password),
            username,
            database,
            data_location: take("DB_DATA_LOCATION").map(absolute),
            upload_location: take("UPLOAD_LOCATION").map(absolute),
        })
    }
}

/// A path without `.` components, and `..` taken off where it can be.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The settings of the file, by key (the last one wins); an error is the
/// line number and why, without the line's value.
fn parse_lines(text: &str) -> std::result::Result<BTreeMap<String, String>, (usize, String)> {
    let mut values = BTreeMap::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let number = index + 1;
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let trimmed = trimmed.strip_prefix("export ").unwrap_or(trimmed);
        let Some((key, raw)) = trimmed.split_once('=') else {
            return Err((number, "a line that is not KEY=VALUE".to_owned()));
        };
        let key = key.trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err((number, "a key that is not a variable name".to_owned()));
        }
        let raw = raw.trim_start();
        let value = if let Some(quote @ ('"' | '\'')) = raw.chars().next() {
            // A quoted value may go on over the next lines.
            let mut rest = raw[1..].to_owned();
            loop {
                if let Some(value) = quoted(&rest, quote) {
                    break value;
                }
                let Some((_, next)) = lines.next() else {
                    return Err((number, format!("the value of {key} has no closing quote")));
                };
                rest.push('\n');
                rest.push_str(next);
            }
        } else {
            let cut = raw.find(" #").or_else(|| raw.find("\t#"));
            raw[..cut.unwrap_or(raw.len())].trim_end().to_owned()
        };
        values.insert(key.to_owned(), value);
    }
    Ok(values)
}

/// The value in `rest` up to its closing `quote`, or `None` when it is not
/// closed. Double quotes take `\n`, `\t`, `\"` and `\\` escapes; single
/// quotes none.
fn quoted(rest: &str, quote: char) -> Option<String> {
    let mut value = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c == quote => return Some(value),
            '\\' if quote == '"' => match chars.next()? {
                'n' => value.push('\n'),
                't' => value.push('\t'),
                other @ ('"' | '\\' | '$') => value.push(other),
                other => {
                    value.push('\\');
                    value.push(other);
                }
            },
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ENV: &str = "/srv/immich/.env";

    #[test]
    fn immichs_example_file() {
        // As Immich's example .env lays it out, with the values changed.
        let text = "# You can find documentation for all the supported env variables at https://immich.app/docs/install/environment-variables\n\n# The location where your uploaded files are stored\nUPLOAD_LOCATION=./library\n\n# The location where your database files are stored. Network shares are not supported for the database\nDB_DATA_LOCATION=./postgres\n\n# To set a timezone, uncomment the next line and change Etc/UTC to a TZ identifier from this list: https://en.wikipedia.org/wiki/List_of_tz_database_time_zones#List\n# TZ=Etc/UTC\n\n# The Immich version to use. You can pin this to a specific version like \"v1.71.0\"\nIMMICH_VERSION=release\n\n# Connection secret for postgres. You should change it to a random password\n# Please use only the characters `A-Za-z0-9`, without special characters or spaces\nDB_PASSWORD=Xk2Lq9Zp\n\n# The values below this line do not need to be changed\n###################################################################################\nDB_USERNAME=postgres\nDB_DATABASE_NAME=immich\n";
        let env = ComposeEnv::parse(text, Path::new(ENV)).unwrap();
        assert_eq!(env.password.expose(), b"Xk2Lq9Zp");
        assert_eq!(env.username, "postgres");
        assert_eq!(env.database, "immich");
        assert_eq!(
            env.data_location.unwrap(),
            Path::new("/srv/immich/postgres")
        );
        assert_eq!(
            env.upload_location.unwrap(),
            Path::new("/srv/immich/library")
        );
    }

    #[test]
    fn quotes_comments_and_export() {
        let text = "export DB_PASSWORD='a b#c\\n'\nDB_USERNAME = \"im\\\"mich\"  # the role\nDB_DATABASE_NAME=photos # a comment\nUPLOAD_LOCATION=/mnt/photos/\nDB_DATA_LOCATION=../pg\n";
        let env = ComposeEnv::parse(text, Path::new(ENV)).unwrap();
        assert_eq!(env.password.expose(), b"a b#c\\n");
        assert_eq!(env.username, "im\"mich");
        assert_eq!(env.database, "photos");
        assert_eq!(env.upload_location.unwrap(), Path::new("/mnt/photos"));
        assert_eq!(env.data_location.unwrap(), Path::new("/srv/pg"));
        // Over two lines, in double quotes.
        let env = ComposeEnv::parse(
            "DB_PASSWORD=\"one\ntwo\"\nDB_USERNAME=u\nDB_DATABASE_NAME=d\n",
            Path::new(ENV),
        )
        .unwrap();
        assert_eq!(env.password.expose(), b"one\ntwo");
        assert_eq!(env.upload_location, None);
    }

    #[test]
    fn errors_name_the_line_and_key_but_never_the_password() {
        let e =
            ComposeEnv::parse("DB_USERNAME=u\nDB_DATABASE_NAME=d\n", Path::new(ENV)).unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::BadInput);
        assert!(e.what.contains("does not set DB_PASSWORD"), "{e}");
        let e = ComposeEnv::parse("DB_PASSWORD=\n", Path::new(ENV)).unwrap_err();
        assert!(e.what.contains("DB_PASSWORD"), "{e}");
        let e = ComposeEnv::parse("DB_PASSWORD='sEcReT\n", Path::new(ENV)).unwrap_err();
        assert_eq!(e.location.as_deref(), Some("/srv/immich/.env:1"), "{e}");
        assert!(e.what.contains("no closing quote"), "{e}");
        assert!(!e.to_string().contains("sEcReT"), "{e}");
        let e = ComposeEnv::parse("# x\nsEcReT\n", Path::new(ENV)).unwrap_err();
        assert_eq!(e.location.as_deref(), Some("/srv/immich/.env:2"), "{e}");
        assert!(!e.to_string().contains("sEcReT"), "{e}");
        // Positive control: the same password on a good line is read.
        let env = ComposeEnv::parse(
            "DB_PASSWORD=sEcReT\nDB_USERNAME=u\nDB_DATABASE_NAME=d",
            Path::new(ENV),
        )
        .unwrap();
        assert_eq!(env.password.expose(), b"sEcReT");
        assert!(!format!("{env:?}").contains("sEcReT"));
    }

    proptest! {
        #[test]
        fn any_text_parses_or_fails_without_panicking(text in "\\PC*") {
            let _ = parse_lines(&text);
        }

        #[test]
        fn a_written_value_reads_back(value in "[ -~]{0,40}") {
            // Single-quoted, as a person would write any value without a
            // single quote; else double-quoted with escapes.
            let line = if value.contains('\'') {
                format!("K=\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
            } else {
                format!("K='{value}'")
            };
            let values = parse_lines(&line).unwrap();
            prop_assert_eq!(&values["K"], &value);
        }
    }
}
