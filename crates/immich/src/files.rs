//! Writing files that no reader may ever see half written: unit files, backup
//! manifests, manual pages.

use std::path::Path;

/// Writes `content` to `path` atomically, creating the directory when missing
/// ([`homelab_quadlet::write_atomic`]). The error is the system's alone: callers
/// say which file they were writing.
pub(crate) fn write_atomic(path: &Path, content: &[u8]) -> std::io::Result<()> {
    homelab_quadlet::write_atomic(path, content).map_err(|e| match e {
        homelab_quadlet::Error::Write { source, .. } => source,
        other => std::io::Error::other(other),
    })
}
