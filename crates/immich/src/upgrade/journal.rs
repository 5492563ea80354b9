//! The journal of an upgrade: a small file beside the data directories that
//! says which step an upgrade reached, so that a run killed anywhere is
//! finished (or undone) by the next one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Deployment;
use crate::error::{Error, Result};
use crate::files::write_atomic;

/// The layout of the journal file.
const FORMAT: u32 = 1;

/// How far an upgrade got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Phase {
    /// Backing up, preparing the new cluster and restoring into it; the old
    /// cluster serves, untouched. An interrupted upgrade here starts over.
    Preparing,
    /// The new cluster holds the restored database and it verified; the old
    /// one still serves.
    Restored,
    /// The configuration and the unit are being switched to the new cluster.
    Switching,
    /// The new cluster serves; the old one is kept for a rollback.
    Done,
    /// A rollback to the old cluster is under way.
    RollingBack,
}

impl Phase {
    /// The phase, for a person.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Preparing => "preparing the new cluster",
            Self::Restored => "the new cluster restored and verified",
            Self::Switching => "switching to the new cluster",
            Self::Done => "done",
            Self::RollingBack => "rolling back",
        }
    }
}

/// One side of an upgrade: a cluster, the image that serves it and where it
/// is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Side {
    /// The image.
    pub image: String,
    /// PostgreSQL's major version.
    pub major: u32,
    /// `[storage] postgres_dir` as the configuration writes it.
    pub postgres_dir: String,
    /// The data directory.
    pub path: PathBuf,
}

/// What the journal file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Journal {
    pub(crate) format: u32,
    pub(crate) phase: Phase,
    /// The PostgreSQL container the upgrade is of.
    pub(crate) container: String,
    pub(crate) from: Side,
    pub(crate) to: Side,
    /// The backup taken at the start.
    pub(crate) backup: Option<PathBuf>,
    /// When the upgrade started (RFC 3339).
    pub(crate) started: String,
}

impl Journal {
    pub(crate) fn new(container: &str, from: Side, to: Side) -> Self {
        Self {
            format: FORMAT,
            phase: Phase::Preparing,
            container: container.to_owned(),
            from,
            to,
            backup: None,
            started: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

/// Where the journal of the deployment's upgrades is: beside PostgreSQL's data
/// directories (the old and the new are siblings), named after its container.
pub(crate) fn path(d: &Deployment) -> PathBuf {
    let parent = d
        .dirs
        .postgres
        .parent()
        .map_or_else(|| d.pool.clone(), Path::to_path_buf);
    parent.join(format!(
        ".{}.upgrade.json",
        d.config.postgres.container_name
    ))
}

/// The journal, if an upgrade left one.
pub(crate) fn read(path: &Path) -> Result<Option<Journal>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::precondition(format!(
                "cannot read the upgrade journal {}: {e}",
                path.display()
            ))
            .help("run immich-db as the user who upgraded"));
        }
    };
    let journal: Journal = serde_json::from_str(&text).map_err(|e| {
        Error::precondition(format!(
            "the upgrade journal {} is not valid: {e}",
            path.display()
        ))
        .help("it records an upgrade's progress; move it away only once the deployment runs as configured")
    })?;
    if journal.format != FORMAT {
        return Err(Error::precondition(format!(
            "the upgrade journal {} has format {}, this immich-db reads format {FORMAT}",
            path.display(),
            journal.format
        ))
        .help("finish the upgrade with the immich-db that started it"));
    }
    Ok(Some(journal))
}

/// Writes the journal, atomically.
pub(crate) fn write(path: &Path, journal: &Journal) -> Result<()> {
    let text = serde_json::to_string_pretty(journal)
        .map_err(|e| Error::failed(format!("cannot render the upgrade journal: {e}")))?;
    write_atomic(path, format!("{text}\n").as_bytes()).map_err(|e| {
        Error::failed(format!(
            "cannot write the upgrade journal {}: {e}",
            path.display()
        ))
    })
}

/// Removes the journal.
pub(crate) fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::failed(format!(
            "cannot remove the upgrade journal {}: {e}",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(major: u32, dir: &str) -> Side {
        Side {
            image: format!("pg:{major}"),
            major,
            postgres_dir: dir.into(),
            path: PathBuf::from("/pool").join(dir),
        }
    }

    #[test]
    fn a_journal_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".pg.upgrade.json");
        assert!(read(&path).unwrap().is_none());
        let mut journal = Journal::new("pg", side(17, "db/pg"), side(18, "db/pg-pg18"));
        journal.phase = Phase::Restored;
        journal.backup = Some("/pool/backups/immich.dump".into());
        write(&path, &journal).unwrap();
        let back = read(&path).unwrap().unwrap();
        assert_eq!(back.phase, Phase::Restored);
        assert_eq!(back.to, journal.to);
        assert_eq!(back.backup, journal.backup);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"phase\": \"restored\""), "{text}");
        remove(&path).unwrap();
        remove(&path).unwrap();
        assert!(read(&path).unwrap().is_none());
        std::fs::write(&path, "{").unwrap();
        let e = read(&path).unwrap_err();
        assert!(e.what.contains("not valid"), "{e}");
    }
}
