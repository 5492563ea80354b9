//! Helpers shared by the real-host tests: e2fsprogs as the independent witness.

use std::path::Path;
use std::process::Command;

/// The attribute column `lsattr -d` prints for `path`.
pub(crate) fn lsattr(path: &Path) -> String {
    let out = Command::new("lsattr").arg("-d").arg(path).output().unwrap();
    assert!(
        out.status.success(),
        "lsattr -d {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().next().unwrap().to_owned()
}

/// Whether `lsattr -d` shows `C` for `path`.
pub(crate) fn lsattr_nocow(path: &Path) -> bool {
    lsattr(path).contains('C')
}

/// Runs `chattr ARGS path`, which must succeed.
pub(crate) fn chattr(args: &str, path: &Path) {
    let out = Command::new("chattr").arg(args).arg(path).output().unwrap();
    assert!(
        out.status.success(),
        "chattr {args} {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Clears attribute `i` of a path when dropped, so that a test that made it
/// immutable leaves it removable even when it fails.
pub(crate) struct Immutable<'a>(pub(crate) &'a Path);

impl<'a> Immutable<'a> {
    /// Makes `path` immutable (`chattr +i`) until the guard drops.
    pub(crate) fn set(path: &'a Path) -> Self {
        chattr("+i", path);
        Self(path)
    }
}

impl Drop for Immutable<'_> {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(self.0).status();
    }
}
