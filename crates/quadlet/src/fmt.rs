//! Canonical formatting of unit files (`quadlet fmt`).

use std::path::Path;

use crate::Error;
use crate::files::{read_text, write_atomic};
use crate::syntax::{ParseError, UnitFile};

/// The canonical text of a file, and whether it differs from the original.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Formatted {
    /// The canonical text.
    pub text: String,
    /// Whether it differs from the input.
    pub changed: bool,
}

/// Formats unit file text: same meaning to podman's generator, canonical whitespace
/// (see [`UnitFile::canonical`]). Formatting formatted text changes nothing.
///
/// ```
/// use homelab_quadlet::format;
///
/// let out = format("[Container]\n  Image = docker.io/library/alpine\n\n\n[Install]\nWantedBy=default.target")?;
/// assert_eq!(out.text, "[Container]\nImage=docker.io/library/alpine\n\n[Install]\nWantedBy=default.target\n");
/// assert!(out.changed);
/// assert!(!format(&out.text)?.changed);
/// # Ok::<(), homelab_quadlet::ParseError>(())
/// ```
///
/// # Errors
/// [`ParseError`] when the text is not unit syntax; nothing is formatted then.
pub fn format(text: &str) -> Result<Formatted, ParseError> {
    let canonical = UnitFile::parse(text)?.canonical();
    Ok(Formatted {
        changed: canonical != text,
        text: canonical,
    })
}

/// Formats the file at `path` (without changing it).
///
/// # Errors
/// [`Error::Read`], [`Error::NotUtf8`], or [`Error::Parse`] with the path, line and
/// column.
pub fn format_file(path: &Path) -> Result<Formatted, Error> {
    let text = read_text(path)?;
    format(&text).map_err(|source| Error::Parse {
        file: path.to_path_buf(),
        source,
    })
}

/// Rewrites the file at `path` in its canonical form when it is not already;
/// returns whether it changed. The new text replaces the old atomically and keeps
/// the file's permissions ([`write_atomic`]); a file with a syntax error is left
/// untouched.
///
/// # Errors
/// As [`format_file`], and [`Error::Write`] when the new text cannot be written.
pub fn format_in_place(path: &Path) -> Result<bool, Error> {
    let formatted = format_file(path)?;
    if !formatted.changed {
        return Ok(false);
    }
    write_atomic(path, formatted.text)?;
    Ok(true)
}
