//! One deploy (or destroy) at a time for a deployment.

use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use crate::config::{Deployment, Scope};
use crate::error::{Error, Result};

/// An exclusive lock held until dropped (the kernel releases it when the process
/// ends, however it ends).
#[derive(Debug)]
pub(crate) struct DeployLock {
    _file: File,
}

/// Where the lock of a deployment lives: the user's runtime directory, or
/// `/run/lock` for the system scope. The network names the deployment.
pub(crate) fn lock_path(deployment: &Deployment, runtime_dir: Option<&Path>) -> PathBuf {
    let dir = match (deployment.scope, runtime_dir) {
        (Scope::User, Some(dir)) => dir.to_path_buf(),
        _ => PathBuf::from("/run/lock"),
    };
    dir.join(format!("immich-db.{}.lock", deployment.config.network.name))
}

/// Takes the lock at `path` or says who holds it.
pub(crate) fn acquire(path: &Path) -> Result<DeployLock> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| {
            Error::precondition(format!("cannot open the lock file {}: {e}", path.display()))
                .help("check that the runtime directory exists and is writable")
        })?;
    if let Err(e) = flock(&file, FlockOperation::NonBlockingLockExclusive) {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        let who = if holder.is_empty() {
            String::new()
        } else {
            format!(" (process {holder})")
        };
        let failure = if e == rustix::io::Errno::WOULDBLOCK {
            Error::precondition(format!(
                "another immich-db deploy or destroy of this deployment is running{who}"
            ))
            .help("wait for it to finish, then run the command again")
        } else {
            Error::precondition(format!("cannot lock {}: {e}", path.display()))
        };
        return Err(failure.at(path.display().to_string()));
    }
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "{}", std::process::id());
    let _ = file.flush();
    Ok(DeployLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = acquire(&path).unwrap();
        let err = acquire(&path).unwrap_err();
        assert!(err.what.contains("another immich-db deploy"), "{err}");
        assert!(err.what.contains(&std::process::id().to_string()), "{err}");
        drop(held);
        acquire(&path).unwrap();
    }
}
