//! Writing the rendered files into a directory.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::Error;
use crate::render::{MARK, ManifestFile, Rendered};

/// How [`Rendered::write_to`] treats files already in the directory.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct WriteOptions {
    /// Replace files of the same name that immich-db did not write.
    pub replace_foreign: bool,
}

impl WriteOptions {
    /// Files written earlier by immich-db are replaced; others are refused.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether files of the same name that immich-db did not write are
    /// replaced too.
    #[must_use]
    pub fn replace_foreign(mut self, replace: bool) -> Self {
        self.replace_foreign = replace;
        self
    }
}

/// One file written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WrittenFile {
    /// Where.
    pub path: PathBuf,
    /// Its permission bits (0600 or 0644).
    pub mode: u32,
    /// Whether it holds secret values.
    pub holds_secrets: bool,
}

/// What [`Rendered::write_to`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteReport {
    /// The files written, in order.
    pub written: Vec<WrittenFile>,
    /// Files in the directory that an earlier render wrote and this one did not
    /// (for example Secrets written with their values before): left as they
    /// are, and applied with the rest by `kubectl apply -f DIR`.
    pub left_in_place: Vec<PathBuf>,
}

impl Rendered {
    /// Writes the files into `dir`, creating it if needed: files with secret
    /// values with mode 0600 from the moment they exist, the others 0644.
    ///
    /// Each file is written under a temporary name and renamed into place,
    /// so that no one reads half a file. A file of the same name that
    /// immich-db did not write (its first line says so) is refused, before
    /// anything is written, unless [`WriteOptions::replace_foreign`] allows it.
    ///
    /// # Errors
    /// [`Error::NotADirectory`], [`Error::Directory`], [`Error::ForeignFile`],
    /// [`Error::Read`] or [`Error::Write`].
    pub fn write_to(&self, dir: &Path, options: &WriteOptions) -> Result<WriteReport, Error> {
        prepare_dir(dir)?;
        for file in &self.files {
            let path = dir.join(file.name());
            if !options.replace_foreign && is_foreign(&path)? {
                return Err(Error::ForeignFile { path });
            }
        }
        let mut written = Vec::new();
        for file in &self.files {
            let path = dir.join(file.name());
            write_file(&path, file)?;
            written.push(WrittenFile {
                path,
                mode: file.mode(),
                holds_secrets: file.holds_secrets(),
            });
        }
        sync_dir(dir)?;
        let left_in_place = earlier_files(dir, self)?;
        Ok(WriteReport {
            written,
            left_in_place,
        })
    }
}

fn prepare_dir(dir: &Path) -> Result<(), Error> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        // A link to a directory is the user's choice of place.
        Ok(m) if m.file_type().is_symlink() && dir.is_dir() => Ok(()),
        Ok(_) => Err(Error::NotADirectory {
            path: dir.to_owned(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|source| Error::Directory {
                path: dir.to_owned(),
                source,
            })
        }
        Err(source) => Err(Error::Directory {
            path: dir.to_owned(),
            source,
        }),
    }
}

/// Whether `path` holds something immich-db did not write: anything but a
/// regular file whose first line carries the mark.
fn is_foreign(path: &Path) -> Result<bool, Error> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(Error::Read {
            path: path.to_owned(),
            source,
        }),
        Ok(m) if !m.is_file() => Ok(true),
        Ok(_) => Ok(!has_mark(path)?),
    }
}

fn has_mark(path: &Path) -> Result<bool, Error> {
    let mut head = [0u8; 256];
    let mut file = File::open(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(Error::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        }
    }
    let head = &head[..filled];
    let first_line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    Ok(first_line.windows(MARK.len()).any(|w| w == MARK.as_bytes()))
}

/// Writes `file` to `path` through a temporary file created with its final
/// mode, so a file with secrets is never readable by others, not even while
/// it is written.
fn write_file(path: &Path, file: &ManifestFile) -> Result<(), Error> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp = dir.join(format!(
        ".{}.{}-{}.tmp",
        file.name(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let err = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let result = (|| {
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(file.mode())
            .open(&temp)?;
        // The umask may have taken bits away from a 0644 file; set them exactly.
        out.set_permissions(Permissions::from_mode(file.mode()))?;
        out.write_all(file.content().as_bytes())?;
        out.sync_all()?;
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result.map_err(err)
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| Error::Write {
            path: dir.to_owned(),
            source,
        })
}

/// Files in `dir` carrying the mark that this render did not write.
fn earlier_files(dir: &Path, rendered: &Rendered) -> Result<Vec<PathBuf>, Error> {
    let entries = fs::read_dir(dir).map_err(|source| Error::Directory {
        path: dir.to_owned(),
        source,
    })?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Directory {
            path: dir.to_owned(),
            source,
        })?;
        let name = entry.file_name();
        let ours = rendered.files().iter().any(|f| name == f.name());
        let regular = entry.file_type().is_ok_and(|t| t.is_file());
        if !ours && regular && !name.to_string_lossy().starts_with('.') {
            let path = entry.path();
            if has_mark(&path)? {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}
