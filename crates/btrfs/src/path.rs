//! Facts about the components of a path, which the code that fails on a path
//! looks up before it builds its error.

use std::path::{Path, PathBuf};

/// The directory an entry is in: its parent, or `.` for a bare name.
pub(crate) fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// After `ENOTDIR` on `path`: the first existing component of it that is not
/// a directory, which is what the user must look at; `path` itself when none
/// is found (the file was moved away meanwhile).
pub(crate) fn file_in_the_way(path: &Path) -> PathBuf {
    let mut ancestors: Vec<&Path> = path.ancestors().collect();
    ancestors.reverse();
    ancestors
        .into_iter()
        .filter(|p| !p.as_os_str().is_empty())
        .find(|p| std::fs::metadata(p).is_ok_and(|m| !m.is_dir()))
        .map_or_else(|| path.to_path_buf(), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_in_the_way_is_the_first_component_that_is_no_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert_eq!(file_in_the_way(&file.join("sub/dir")), file);
        assert_eq!(file_in_the_way(&file), file);
        // Nothing in the way: the path as given.
        let below = dir.path().join("missing/dir");
        assert_eq!(file_in_the_way(&below), below);
    }

    #[test]
    fn a_bare_name_is_in_the_current_directory() {
        assert_eq!(parent(Path::new("snap")), Path::new("."));
        assert_eq!(parent(Path::new("/pool/snaps/x")), Path::new("/pool/snaps"));
        assert_eq!(parent(Path::new("/")), Path::new("."));
    }
}
