//! Reading unit files, and writing them so that no reader ever sees half of one.

use std::fs::Permissions;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use crate::Error;

/// The text of a unit file.
pub(crate) fn read_text(path: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| Error::NotUtf8 {
        path: path.to_path_buf(),
    })
}

/// Writes `contents` to `path` atomically: into a temporary file beside it,
/// flushed to disk, then renamed over `path`, and the directory flushed too. A
/// reader (the generator on a `daemon-reload`, say) or a crash sees the old
/// file or the new one, never a mix; a failed write leaves the old file as it
/// was and no temporary behind.
///
/// The directory is created when missing. A file that is replaced keeps its
/// permissions; a new one gets `0644` less the umask. The temporary file's name
/// starts with a dot and ends in `.tmp`, so the generator, which reads only
/// files with a Quadlet extension, never takes it for a unit.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("containers/systemd/photos.network");
/// homelab_quadlet::write_atomic(&path, "[Network]\nSubnet=10.89.5.0/24\n")?;
/// homelab_quadlet::write_atomic(&path, "[Network]\nSubnet=10.89.6.0/24\n")?;
/// assert_eq!(std::fs::read_to_string(&path)?, "[Network]\nSubnet=10.89.6.0/24\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Write`] with `path` and the system error, when the directory, the
/// temporary file or the rename fails.
pub fn write_atomic(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> Result<(), Error> {
    let path = path.as_ref();
    let write_error = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(write_error)?;
    let existing = match std::fs::metadata(path) {
        Ok(meta) => Some(meta.permissions()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(write_error(e)),
    };
    let prefix = format!(
        ".{}.",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    );
    let mut temp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .permissions(Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(write_error)?;
    temp.write_all(contents.as_ref()).map_err(write_error)?;
    temp.as_file().sync_all().map_err(write_error)?;
    if let Some(permissions) = existing {
        std::fs::set_permissions(temp.path(), permissions).map_err(write_error)?;
    }
    // Dropping the temporary file on an error removes it.
    temp.persist(path).map_err(|e| write_error(e.error))?;
    // The rename is durable once the directory is.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn creates_the_directory_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("units/a.container");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, "two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(names(&dir.path().join("units")), ["a.container"]);
    }

    #[test]
    fn a_replaced_file_keeps_its_permissions_and_a_new_one_is_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.network");
        write_atomic(&path, "[Network]\n").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o600, 0o600, "{mode:o}");
        assert_eq!(mode & 0o044, 0o044 & !umask(), "{mode:o}");
        std::fs::set_permissions(&path, Permissions::from_mode(0o640)).unwrap();
        write_atomic(&path, "[Network]\nInternal=true\n").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_says_where() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a directory: the rename over it fails.
        let path = dir.path().join("a.container");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep"), "x").unwrap();
        let err = write_atomic(&path, "text").unwrap_err();
        assert!(
            matches!(&err, Error::Write { path: p, .. } if *p == path),
            "{err:?}"
        );
        assert_eq!(names(dir.path()), ["a.container"]);
        assert_eq!(names(&path), ["keep"]);
    }

    fn umask() -> u32 {
        let probe = tempfile::tempdir().unwrap();
        let file = probe.path().join("probe");
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&file)
            .unwrap();
        // `create_new` asks for 0666; what is missing is the umask.
        0o666 & !(std::fs::metadata(&file).unwrap().permissions().mode() & 0o666)
    }
}
