//! Directory work in the user namespace of rootless podman (`podman unshare`),
//! where the user owns what a container wrote as one of its subordinate IDs.
//! Deploy runs rootless containers as the user itself (`UserNS=keep-id`), so
//! this is needed only for directories an earlier deploy left otherwise.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

/// Removes `dir` and everything below it, inside the user namespace; it stays
/// on `dir`'s own filesystem. The error says why not.
pub(crate) async fn remove_dir_all(dir: &Path) -> Result<(), String> {
    let out = tokio::process::Command::new("podman")
        .args(["unshare", "rm", "-rf", "--one-file-system", "--"])
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run podman unshare: {e}"))?;
    if out.status.success() && !dir.exists() {
        Ok(())
    } else {
        Err(format!(
            "podman unshare rm -rf {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// For a directory the user cannot enter: who owns it, and how to give it back
/// to the user, when it is not the user's own.
pub(crate) fn foreign_owner_help(dir: &Path) -> Option<String> {
    let meta = std::fs::symlink_metadata(dir).ok()?;
    let uid = rustix::process::getuid().as_raw();
    (meta.uid() != uid).then(|| {
        format!(
            "{} belongs to UID {}: a container wrote it as another user (a deploy \
             without UserNS=keep-id, as an earlier immich-db made). Stop its service, \
             give it back to yourself with `podman unshare chown -R 0:0 {}`, then \
             deploy again",
            dir.display(),
            meta.uid(),
            dir.display()
        )
    })
}
