//! What a command works with: the checked configuration, the systemd manager,
//! the container runtime and the secret store.

use std::sync::Arc;

use homelab_podman::{Podman, Runtime};
use homelab_secrets::SecretStore;

use crate::config::Deployment;
use crate::error::{Failure, Result};
use crate::output::Ui;
use crate::systemd::{Systemctl, Systemd};
use crate::timings;

/// The parts a command composes.
pub(crate) struct Context {
    pub(crate) deployment: Deployment,
    pub(crate) systemd: Box<dyn Systemd>,
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) secrets: Arc<dyn SecretStore>,
    pub(crate) ui: Ui,
    /// `$XDG_RUNTIME_DIR` of the user scope (for the lock).
    pub(crate) runtime_dir: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("deployment", &self.deployment)
            .field("ui", &self.ui)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// Connects to the real manager and the real Podman service.
    pub(crate) async fn connect(deployment: Deployment, ui: Ui) -> Result<Self> {
        timings::start();
        let step = timings::step("connect to podman");
        let systemctl = Systemctl::new(deployment.scope);
        let runtime_dir = systemctl.runtime_dir().map(std::path::Path::to_path_buf);
        let podman = Podman::connect().await.map_err(|e| {
            Failure::precondition(format!("cannot reach the Podman service: {e}"))
                .help("start it with `systemctl --user start podman.socket` (or `systemctl start podman.socket` as root)")
        })?;
        let podman = Arc::new(podman);
        step.end();
        Ok(Self {
            deployment,
            systemd: Box::new(systemctl),
            runtime: podman.clone(),
            secrets: podman,
            ui,
            runtime_dir,
        })
    }

    /// A failure of a Podman call, saying what was being done.
    #[allow(clippy::unused_self)] // a method, so call sites read as ctx.podman_failure
    pub(crate) fn podman_failure(&self, doing: &str, error: &homelab_podman::Error) -> Failure {
        Failure::precondition(format!("Podman failed while {doing}: {error}"))
    }
}
