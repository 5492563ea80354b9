//! `destroy`: stops and removes the units, containers, network and backup
//! schedule; keeps the data directories, backups and secrets unless asked to
//! purge them.

use serde::Serialize;

use crate::desired;
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::lock;
use crate::progress::Event;
use crate::schedule;

/// What to delete besides the units, containers, network and backup schedule.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct DestroyOptions {
    /// Delete the data directories too (the databases and the ML cache; the
    /// library only when empty).
    pub purge_data: bool,
    /// Delete the secrets too (the passwords are lost for good).
    pub purge_secrets: bool,
}

impl DestroyOptions {
    /// Keep data and secrets.
    pub fn new() -> Self {
        Self::default()
    }

    /// Delete the data directories too.
    #[must_use]
    pub fn purge_data(mut self, yes: bool) -> Self {
        self.purge_data = yes;
        self
    }

    /// Delete the secrets too.
    #[must_use]
    pub fn purge_secrets(mut self, yes: bool) -> Self {
        self.purge_secrets = yes;
        self
    }
}

/// What destroy removed, and what it kept.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct DestroyReport {
    /// What was removed, in order.
    pub done: Vec<String>,
    /// Whether data directories are left (not asked to purge them).
    pub kept_data: bool,
    /// Whether secrets are left (not asked to purge them).
    pub kept_secrets: bool,
}

impl Layer {
    /// Stops and removes the units, containers, network and backup schedule;
    /// the data directories and secrets go only when `options` say so. Every
    /// step is tried also after one failed: the error lists what was done and
    /// what could not be, and running it again finishes the job.
    pub async fn destroy(&self, options: &DestroyOptions) -> Result<DestroyReport> {
        destroy(self, options).await
    }
}

async fn destroy(ctx: &Layer, args: &DestroyOptions) -> Result<DestroyReport> {
    let d = &ctx.deployment;
    let dirs = desired::dirs(d);
    let _lock = lock::acquire(&lock::lock_path(d, ctx.runtime_dir.as_deref()))?;
    // Every step is tried, also after one failed: what could not be removed is
    // listed, and running destroy again finishes the job.
    let mut steps = Steps::new(ctx);

    let mut units = desired::unit_names(d);
    // The Immich server's units, where `server units` wrote them: they require
    // the layer's services, and would fail at every boot without them.
    let server_units: Vec<desired::UnitName> = desired::server_unit_names(d)
        .into_iter()
        .filter(|u| u.path(d).exists())
        .collect();
    units.extend(server_units.iter().cloned());
    let containers: Vec<String> = units.iter().skip(1).map(|u| u.service.clone()).collect();
    let network_service = vec![d.network_service()];
    let names: Vec<&str> = containers
        .iter()
        .chain(&network_service)
        .map(String::as_str)
        .collect();
    let running: Vec<String> = ctx
        .systemd
        .units(&names)
        .await
        .map(|states| {
            states
                .into_iter()
                .filter(|s| {
                    !matches!(
                        s.active,
                        homelab_systemd::ActiveState::Inactive
                            | homelab_systemd::ActiveState::Failed
                    )
                })
                .map(|s| s.name)
                .collect()
        })
        .unwrap_or_default();
    // Units that are not loaded cannot be stopped: nothing runs then.
    let _ = ctx.systemd.stop(&containers).await;
    let _ = ctx.systemd.stop(&network_service).await;
    for unit in running {
        steps.done(format!("stopped {unit}"));
    }
    // The backup schedule runs pg_dump in a container that is going away; the
    // backups themselves stay.
    match schedule::remove(ctx).await {
        Ok(true) => steps.done("removed the backup schedule (the backups are kept)".into()),
        Ok(false) => {}
        Err(e) => steps.failed("remove the backup schedule", &e.what),
    }
    let mut removed_any = false;
    for unit in &units {
        let path = unit.path(d);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                removed_any = true;
                steps.done(format!("removed {}", path.display()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => steps.failed(&format!("remove {}", path.display()), &e.to_string()),
        }
    }
    if removed_any {
        match ctx.systemd.daemon_reload().await {
            Ok(()) => steps.done("reloaded systemd (daemon-reload)".into()),
            Err(e) => steps.failed("reload systemd", &e.to_string()),
        }
    }
    let mut all = containers.clone();
    all.extend(network_service);
    let _ = ctx.systemd.reset_failed(&all).await;
    let mut names = vec![
        &d.config.postgres.container_name,
        &d.config.valkey.container_name,
    ];
    if !server_units.is_empty() {
        names.extend([
            &d.config.server.container_name,
            &d.config.server.ml_container_name,
        ]);
    }
    for name in names {
        match ctx.runtime.remove_container(name, true).await {
            Ok(()) => steps.done(format!("removed the container {name}")),
            Err(e) if e.is_not_found() => {}
            Err(e) => steps.failed(&format!("remove the container {name}"), &e.to_string()),
        }
    }
    match ctx.runtime.remove_network(&d.podman_network()).await {
        Ok(()) => steps.done(format!("removed the network {}", d.podman_network())),
        Err(e) if e.is_not_found() => {}
        Err(e) => steps.failed(
            &format!("remove the network {}", d.podman_network()),
            &e.to_string(),
        ),
    }
    if args.purge_data {
        for dir in &dirs {
            purge_dir(ctx, dir, &mut steps).await;
        }
    }
    if args.purge_secrets {
        for name in d.secret_names() {
            match ctx.secrets.remove(name).await {
                Ok(()) => steps.done(format!("deleted the secret {name}")),
                Err(homelab_secrets::StoreError::NotFound { .. }) => {}
                Err(e) => steps.failed(&format!("delete the secret {name}"), &e.to_string()),
            }
        }
    }
    let Steps { done, failed, .. } = steps;
    if !failed.is_empty() {
        let mut failure = Error::failed(format!(
            "destroy could not {}",
            failed
                .iter()
                .map(|f| format!("{} ({})", f.what, f.why))
                .collect::<Vec<_>>()
                .join("; ")
        ))
        .help("fix the cause above, then run the same destroy again: it finishes the job");
        failure.done = done;
        return Err(failure);
    }
    let kept_data = !args.purge_data && dirs.iter().any(|dir| dir.path.exists());
    let mut kept_secrets = false;
    if !args.purge_secrets {
        for name in d.secret_names() {
            kept_secrets |= ctx.secrets.exists(name).await.unwrap_or(true);
        }
    }
    Ok(DestroyReport {
        done,
        kept_data,
        kept_secrets,
    })
}

/// A step that failed: what it was to do, and why it could not.
#[derive(Debug)]
struct Failed {
    what: String,
    why: String,
}

/// What destroy did, and what it could not do.
struct Steps<'a> {
    ctx: &'a Layer,
    done: Vec<String>,
    failed: Vec<Failed>,
}

impl<'a> Steps<'a> {
    fn new(ctx: &'a Layer) -> Self {
        Self {
            ctx,
            done: Vec::new(),
            failed: Vec::new(),
        }
    }

    fn done(&mut self, what: String) {
        self.ctx.tell(Event::Done(&what));
        self.done.push(what);
    }

    fn failed(&mut self, what: &str, why: &str) {
        self.ctx
            .tell(Event::Warning(&format!("could not {what}: {why}")));
        self.failed.push(Failed {
            what: what.to_owned(),
            why: why.trim().to_owned(),
        });
    }
}

/// Deletes a data directory (the photo library only when it is empty).
///
/// With rootless podman, what a container wrote as one of the user's
/// subordinate IDs (an earlier deploy without `UserNS=keep-id`) is removed in
/// the user's namespace, where the user owns it.
async fn purge_dir(ctx: &Layer, dir: &desired::Dir, steps: &mut Steps<'_>) {
    let library = dir.key == "library_dir";
    let result = if library {
        std::fs::remove_dir(&dir.path)
    } else {
        std::fs::remove_dir_all(&dir.path)
    };
    match result {
        Ok(()) => steps.done(format!("deleted {}", dir.path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) if library => {
            ctx.tell(Event::Done(&format!("kept {} ({e})", dir.path.display())));
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && ctx.deployment.rootless => {
            match crate::userns::remove_dir_all(&dir.path).await {
                Ok(()) => steps.done(format!(
                    "deleted {} (in the user namespace of rootless podman)",
                    dir.path.display()
                )),
                Err(why) => steps.failed(&format!("delete {}", dir.path.display()), &why),
            }
        }
        Err(e) => steps.failed(&format!("delete {}", dir.path.display()), &e.to_string()),
    }
}
