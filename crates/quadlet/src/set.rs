//! A set of Quadlet files read together, as the generator reads a directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::files::read_text;
use crate::naming::{UnitKind, UnitNames};
use crate::syntax::{Syntax, UnitFile};

/// One Quadlet file of a set.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SourceUnit {
    /// Where it was read from (its file name for units inserted from memory).
    pub path: PathBuf,
    /// Its kind.
    pub kind: UnitKind,
    /// Its text, parsed losslessly.
    pub file: UnitFile,
    /// The names it gives its service and podman object.
    pub names: UnitNames,
}

impl SourceUnit {
    /// The file name: `photos.network`.
    pub fn file_name(&self) -> &str {
        &self.names.file_name
    }
}

/// The Quadlet files of one or more directories (or named files), in file name
/// order, with the files that did not parse kept aside for reporting.
///
/// As with the generator, when two directories hold a file of the same name, the
/// first one read wins.
#[derive(Debug, Default)]
pub struct UnitSet {
    units: Vec<SourceUnit>,
    failures: Vec<Error>,
    by_name: HashMap<String, usize>,
    /// Every text read, in order, so that the set can be read again as an older
    /// generator reads unit syntax.
    inputs: Vec<Input>,
}

/// A text added to a set.
#[derive(Debug, Clone)]
struct Input {
    path: PathBuf,
    file_name: String,
    text: String,
}

impl UnitSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The Quadlet files of the given directories and files.
    ///
    /// # Errors
    /// [`Error::Read`] when a directory or file cannot be read, and
    /// [`Error::NotQuadlet`] for a named file without a Quadlet extension. Files
    /// that do not parse are not errors here: see [`UnitSet::failures`].
    pub fn load<I, P>(paths: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        let mut set = Self::new();
        for path in paths {
            let path = path.as_ref();
            let metadata = std::fs::metadata(path).map_err(|source| Error::Read {
                path: path.to_path_buf(),
                source,
            })?;
            if metadata.is_dir() {
                set.add_dir(path)?;
            } else {
                set.add_file(path)?;
            }
        }
        Ok(set)
    }

    /// Adds the Quadlet files directly inside `dir` (other files are skipped).
    ///
    /// # Errors
    /// [`Error::Read`] when the directory or one of its Quadlet files cannot be read.
    pub fn add_dir(&mut self, dir: &Path) -> Result<(), Error> {
        let read_error = |source| Error::Read {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_error)? {
            let path = entry.map_err(read_error)?.path();
            let is_quadlet = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| UnitKind::of_file_name(n).is_some());
            if is_quadlet && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        for path in paths {
            self.add_file(&path)?;
        }
        Ok(())
    }

    /// Adds one file.
    ///
    /// # Errors
    /// [`Error::NotQuadlet`] without a Quadlet extension, [`Error::Read`] when it
    /// cannot be read. A syntax error is recorded in [`UnitSet::failures`].
    pub fn add_file(&mut self, path: &Path) -> Result<(), Error> {
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| UnitKind::of_file_name(n).is_some())
            .ok_or_else(|| Error::NotQuadlet {
                file: path.to_path_buf(),
            })?
            .to_owned();
        let text = match read_text(path) {
            Ok(text) => text,
            Err(error @ Error::NotUtf8 { .. }) => {
                self.failures.push(error);
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        match UnitFile::parse(&text) {
            Ok(file) => self.push(path.to_path_buf(), &file_name, file),
            Err(source) => self.failures.push(Error::Parse {
                file: path.to_path_buf(),
                source,
            }),
        }
        self.inputs.push(Input {
            path: path.to_path_buf(),
            file_name,
            text,
        });
        Ok(())
    }

    /// Adds a unit from memory under `file_name`.
    ///
    /// # Errors
    /// [`Error::NotQuadlet`] without a Quadlet extension, [`Error::Parse`] for a
    /// syntax error (the set is then unchanged).
    pub fn insert(&mut self, file_name: &str, text: &str) -> Result<(), Error> {
        if UnitKind::of_file_name(file_name).is_none() {
            return Err(Error::NotQuadlet {
                file: PathBuf::from(file_name),
            });
        }
        let file = UnitFile::parse(text).map_err(|source| Error::Parse {
            file: PathBuf::from(file_name),
            source,
        })?;
        self.push(PathBuf::from(file_name), file_name, file);
        self.inputs.push(Input {
            path: PathBuf::from(file_name),
            file_name: file_name.to_owned(),
            text: text.to_owned(),
        });
        Ok(())
    }

    /// The same files read as a generator with `syntax` reads them: files may parse
    /// differently, or not at all.
    pub(crate) fn reparsed(&self, syntax: Syntax) -> Self {
        let mut set = Self::new();
        for input in &self.inputs {
            if set.by_name.contains_key(&input.file_name) {
                continue;
            }
            match UnitFile::parse_as(&input.text, syntax) {
                Ok(file) => set.push(input.path.clone(), &input.file_name, file),
                Err(source) => set.failures.push(Error::Parse {
                    file: input.path.clone(),
                    source,
                }),
            }
        }
        // Files that are not text fail in every syntax.
        for failure in &self.failures {
            if let Error::NotUtf8 { path } = failure {
                set.failures.push(Error::NotUtf8 { path: path.clone() });
            }
        }
        set.inputs.clone_from(&self.inputs);
        set
    }

    fn push(&mut self, path: PathBuf, file_name: &str, file: UnitFile) {
        if self.by_name.contains_key(file_name) {
            return;
        }
        let Ok(names) = UnitNames::of(file_name, &file) else {
            return;
        };
        self.by_name.insert(file_name.to_owned(), self.units.len());
        self.units.push(SourceUnit {
            path,
            kind: names.kind,
            file,
            names,
        });
    }

    /// The units, in the order they were added.
    pub fn units(&self) -> &[SourceUnit] {
        &self.units
    }

    /// The unit with this file name.
    pub fn get(&self, file_name: &str) -> Option<&SourceUnit> {
        self.by_name.get(file_name).map(|&i| &self.units[i])
    }

    /// The files that could not be read as unit syntax ([`Error::Parse`] or
    /// [`Error::NotUtf8`]).
    pub fn failures(&self) -> &[Error] {
        &self.failures
    }

    /// The unit generating this service (`photos-network.service`).
    pub fn by_service(&self, service: &str) -> Option<&SourceUnit> {
        self.units.iter().find(|u| u.names.service == service)
    }

    /// Whether the set has no units and no failures.
    pub fn is_empty(&self) -> bool {
        self.units.is_empty() && self.failures.is_empty()
    }
}
