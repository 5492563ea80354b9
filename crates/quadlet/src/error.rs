//! The error type of this crate.

use std::io;
use std::path::PathBuf;

use crate::naming::UnitKind;
use crate::release::PodmanVersion;
use crate::syntax::{EntryError, ParseError};
use crate::values::ValueError;

/// Everything that can go wrong reading, building or writing Quadlet units.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text is not valid unit syntax.
    #[error("{}:{}:{}: {source}", file.display(), source.line, source.column)]
    Parse {
        /// The file (or the name it was given).
        file: PathBuf,
        /// Line, column and what is wrong.
        #[source]
        source: ParseError,
    },
    /// A file or directory could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The path.
        path: PathBuf,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// A file is not UTF-8 text.
    #[error("{}: not UTF-8 text; unit files must be UTF-8", path.display())]
    NotUtf8 {
        /// The path.
        path: PathBuf,
    },
    /// A value is not valid for its key.
    #[error("{}:{line}: `{key}=` in [{section}]: {source}", file.display())]
    InvalidValue {
        /// The file.
        file: PathBuf,
        /// 1-based line of the entry (0 when not read from a file).
        line: usize,
        /// The section.
        section: String,
        /// The key.
        key: String,
        /// What is wrong with the value.
        #[source]
        source: Box<ValueError>,
    },
    /// A key or value cannot be written as a unit file line.
    #[error("{}: in [{section}]: {source}", file.display())]
    Unwritable {
        /// The file being rendered.
        file: PathBuf,
        /// The section.
        section: String,
        /// What cannot be written.
        #[source]
        source: EntryError,
    },
    /// The file name does not have a Quadlet extension.
    #[error("{}: not a Quadlet file name; use the extension .container, .network, .volume, .pod, .kube, .image, .build or .artifact", file.display())]
    NotQuadlet {
        /// The file.
        file: PathBuf,
    },
    /// The file is of another kind than the type reading it.
    #[error("{}: a .{found} file, not a .{expected} file", file.display())]
    WrongKind {
        /// The file.
        file: PathBuf,
        /// The kind the caller asked for.
        expected: UnitKind,
        /// The kind of the file name.
        found: UnitKind,
    },
    /// The main section of the file is missing.
    #[error("{}: no [{section}] section; a .{kind} file needs one", file.display())]
    MissingSection {
        /// The file.
        file: PathBuf,
        /// The kind of file.
        kind: UnitKind,
        /// The missing section.
        section: &'static str,
    },
    /// A key (or value) needs a newer podman than the target, and cannot be written
    /// another way for it.
    #[error(
        "{}: `{key}=` in [{section}] needs podman {since} or later, but the target is podman {target}; \
         remove it or target a newer podman",
        file.display()
    )]
    TooNew {
        /// The file.
        file: PathBuf,
        /// The section.
        section: String,
        /// The key.
        key: String,
        /// The first podman release that supports it.
        since: PodmanVersion,
        /// The podman release rendered for.
        target: PodmanVersion,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
