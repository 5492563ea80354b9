//! A deployment and the host parts it is carried out with: the systemd manager,
//! the container runtime, the secret store, and where progress goes.

use std::path::PathBuf;
use std::sync::Arc;

use homelab_podman::{ConnectOptions, Podman, Runtime};
use homelab_secrets::SecretStore;
use homelab_systemd::{Manager, Systemctl};

use tracing::Instrument as _;

use crate::config::Deployment;
use crate::error::{Error, Result};
use crate::preconditions::HostProbe;
use crate::progress::{Event, Progress, Silent};

/// The Immich database layer of one [`Deployment`], on this host: what every
/// operation (plan, deploy, verify, status, backup, restore, rotate, destroy)
/// is a method of.
///
/// [`Layer::connect`] reaches the real systemd manager and podman service;
/// [`Layer::new`] takes any implementations (the fakes of `homelab-systemd`
/// and `homelab-podman` for tests).
pub struct Layer {
    pub(crate) deployment: Deployment,
    pub(crate) systemd: Arc<dyn Manager>,
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) secrets: Arc<dyn SecretStore>,
    pub(crate) progress: Arc<dyn Progress>,
    /// `$XDG_RUNTIME_DIR` of the user scope (for the lock).
    pub(crate) runtime_dir: Option<PathBuf>,
    /// The host's early questions, asked while podman was reached, for the
    /// first check of the host to take.
    pub(crate) probe: std::sync::Mutex<Option<HostProbe>>,
}

impl std::fmt::Debug for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layer")
            .field("deployment", &self.deployment)
            .field("systemd", &self.systemd)
            .field("progress", &self.progress)
            .finish_non_exhaustive()
    }
}

/// How the host's services are reached: podman's socket, and the runtime
/// directory through which a user's systemd manager is reached. By default,
/// podman's own sockets for this user and `$XDG_RUNTIME_DIR` (else
/// `/run/user/UID`).
#[derive(Debug, Clone, Default)]
pub struct Access {
    podman: Option<PathBuf>,
    runtime_dir: Option<PathBuf>,
}

impl Access {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The podman socket a `CONTAINER_HOST` value (`unix:///run/podman/podman.sock`,
    /// as podman reads it) names; remote connections are not supported.
    pub fn container_host(mut self, url: &str) -> Result<Self> {
        match url.strip_prefix("unix://") {
            Some(path) if path.starts_with('/') => {
                self.podman = Some(PathBuf::from(path));
                Ok(self)
            }
            _ => Err(Error::bad_input(format!(
                "CONTAINER_HOST={url:?} is not a local podman socket"
            ))
            .help("give it as unix:///PATH/podman.sock, or unset it to use podman's own socket")),
        }
    }

    /// The runtime directory of the user's systemd manager.
    #[must_use]
    pub fn runtime_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.runtime_dir = Some(dir.into());
        self
    }
}

impl Access {
    /// The podman service, through the socket given or podman's own.
    pub(crate) async fn connect_podman(&self) -> Result<Podman> {
        let options = match &self.podman {
            Some(socket) => ConnectOptions::new().socket(socket),
            None => ConnectOptions::new(),
        };
        Podman::connect_with(&options)
            .instrument(tracing::debug_span!("connect to podman"))
            .await
            .map_err(|e| {
                Error::precondition(format!("cannot reach the Podman service: {e}")).help(
                    "start it with `systemctl --user start podman.socket` (or `systemctl start podman.socket` as root)",
                )
            })
    }
}

impl Layer {
    /// The layer, with the parts given, reporting no progress.
    pub fn new(
        deployment: Deployment,
        systemd: Arc<dyn Manager>,
        runtime: Arc<dyn Runtime>,
        secrets: Arc<dyn SecretStore>,
    ) -> Self {
        Self {
            deployment,
            systemd,
            runtime,
            secrets,
            progress: Arc::new(Silent),
            runtime_dir: None,
            probe: std::sync::Mutex::new(None),
        }
    }

    /// Connects to the real systemd manager of the deployment's scope and the
    /// podman service.
    pub async fn connect(deployment: Deployment, access: &Access) -> Result<Self> {
        let mut systemctl = Systemctl::new(deployment.scope);
        if let Some(dir) = &access.runtime_dir {
            systemctl = systemctl.with_runtime_dir(dir);
        }
        let runtime_dir = systemctl.runtime_dir().map(std::path::Path::to_path_buf);
        let systemd: Arc<dyn Manager> = Arc::new(systemctl);
        // podman's version and whether the manager answers are asked while
        // podman's service is reached, which may first have to start.
        let probe = HostProbe::start(systemd.clone());
        let podman = Arc::new(access.connect_podman().await?);
        let mut layer = Self::new(deployment, systemd, podman.clone(), podman);
        layer.runtime_dir = runtime_dir;
        layer.probe = std::sync::Mutex::new(Some(probe));
        Ok(layer)
    }

    /// The same layer, reporting progress to `progress`.
    #[must_use]
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// The same layer, taking its lock in `dir` (the user manager's runtime
    /// directory by default).
    #[must_use]
    pub fn with_runtime_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.runtime_dir = Some(dir.into());
        self
    }

    /// The deployment.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// The same host parts for another deployment: the configuration an
    /// upgrade or an import is about to put in place, or a temporary
    /// container's.
    pub(crate) fn derive(&self, deployment: Deployment) -> Self {
        Self {
            deployment,
            systemd: self.systemd.clone(),
            runtime: self.runtime.clone(),
            secrets: self.secrets.clone(),
            progress: self.progress.clone(),
            runtime_dir: self.runtime_dir.clone(),
            probe: std::sync::Mutex::new(None),
        }
    }

    /// Tells the caller's progress of an event.
    pub(crate) fn tell(&self, event: Event<'_>) {
        self.progress.event(event);
    }

    /// A failure of a Podman call, saying what was being done.
    #[allow(clippy::unused_self)] // a method, so call sites read as ctx.podman_failure
    pub(crate) fn podman_failure(&self, doing: &str, error: &homelab_podman::Error) -> Error {
        Error::precondition(format!("Podman failed while {doing}: {error}"))
    }
}
