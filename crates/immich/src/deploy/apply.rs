//! Carrying out a plan, one phase after the other: the network unit, storage,
//! secrets, the container units, `daemon-reload`, starting what changed, and
//! waiting for each service while it is verified.

use std::sync::Mutex;
use std::time::Duration;

use homelab_btrfs::ensure_dir;
use homelab_podman::HealthStatus;
use homelab_secrets::{Ensured, ensure};
use homelab_systemd::{JobWatch, Wait};
use tokio::sync::oneshot;
use tracing::Instrument as _;

use super::wait::{self, Ready, Waiting};
use crate::desired::Role;
use crate::error::{Error, Result};
use crate::fault;
use crate::files::write_atomic;
use crate::layer::Layer;
use crate::plan::{self, FileChange, NetworkAction, Plan, ServiceAction, ServicePlan, UnitPlan};
use crate::progress::Event;
use crate::rotate::kind_of;
use crate::verify::{self, Verification};

/// How long Valkey's start waits at most for PostgreSQL's container to run.
const HOLD_LIMIT: Duration = Duration::from_secs(5);

/// What a deploy did, for the report and for a failure part-way. Services
/// started while others are waited for add to it from their own task.
#[derive(Debug)]
pub(super) struct Done<'a> {
    ctx: &'a Layer,
    lines: Mutex<Vec<String>>,
}

impl<'a> Done<'a> {
    pub(super) fn new(ctx: &'a Layer) -> Self {
        Self {
            ctx,
            lines: Mutex::new(Vec::new()),
        }
    }

    fn push(&self, what: String) {
        self.ctx.tell(Event::Done(&what));
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(what);
    }

    pub(super) fn into_lines(self) -> Vec<String> {
        self.lines
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Carries out `plan`, then verifies.
pub(super) async fn apply(ctx: &Layer, plan: &Plan, done: &mut Done<'_>) -> Result<Verification> {
    fault::point("network");
    tracing::debug_span!("network unit")
        .in_scope(|| write_units(plan, done, |role| role == Role::Network, "the network unit"))?;
    fault::point("storage");
    tracing::debug_span!("storage").in_scope(|| prepare_storage(ctx, plan, done))?;
    fault::point("secrets");
    ensure_secrets(ctx, plan, done)
        .instrument(tracing::debug_span!("secrets"))
        .await?;
    fault::point("units");
    tracing::debug_span!("container units")
        .in_scope(|| write_units(plan, done, |role| role != Role::Network, "the unit"))?;
    fault::point("reload");
    if plan.daemon_reload {
        ctx.systemd
            .daemon_reload()
            .instrument(tracing::debug_span!("daemon-reload"))
            .await?;
        done.push("reloaded systemd (daemon-reload)".into());
    }
    fault::point("start");
    let started = start_services(ctx, plan, done)
        .instrument(tracing::debug_span!("start"))
        .await?;
    fault::point("health");
    wait_and_verify(ctx, plan, done, started)
        .instrument(tracing::debug_span!("health and verify"))
        .await
}

/// Writes the unit files of the roles `which` selects that change.
fn write_units(
    plan: &Plan,
    done: &Done<'_>,
    which: impl Fn(Role) -> bool,
    what: &str,
) -> Result<()> {
    for unit in plan.units.iter().filter(|u| which(u.role)) {
        if unit.change != FileChange::Unchanged {
            write_unit(unit)
                .map_err(|e| Error::failed(format!("cannot write {}: {e}", unit.path.display())))?;
            done.push(format!("wrote {what} {}", unit.path.display()));
        }
    }
    Ok(())
}

fn write_unit(unit: &UnitPlan) -> std::io::Result<()> {
    write_atomic(&unit.path, unit.unit.content.as_bytes())
}

/// The directories, NOCOW set while they are empty; what an earlier start left
/// copy-on-write is said at once (BTRFS gives NOCOW only to new files).
fn prepare_storage(ctx: &Layer, plan: &Plan, done: &Done<'_>) -> Result<()> {
    for dir in &plan.directories {
        if !dir.changes.is_empty() {
            let report = ensure_dir(&dir.spec).map_err(|e| {
                Error::failed(format!("cannot prepare {}: {e}", dir.dir.path.display()))
                    .at(format!("[storage] {}", dir.dir.key))
            })?;
            if !report.is_unchanged() {
                let changes: Vec<String> = report.changes.iter().map(plan::describe).collect();
                done.push(format!(
                    "prepared {} ({})",
                    dir.dir.path.display(),
                    changes.join("; ")
                ));
            }
        }
        if dir.nocow
            && let Ok(audit) = homelab_btrfs::audit(&dir.dir.path)
            && !audit.cow_files.is_empty()
        {
            ctx.tell(Event::Warning(&format!(
                "{} file(s) ({} bytes) in {} were there before NOCOW and stay \
                 copy-on-write (fix: immich-db storage fix-nocow)",
                audit.cow_files.len(),
                audit.cow_bytes(),
                dir.dir.path.display()
            )));
        }
    }
    // PostgreSQL's unit mounts the backup directory (restores read dumps
    // there in place), so it must exist before the container starts.
    let backups = &ctx.deployment.backup.dir;
    if crate::backup::ensure_exists(backups)? {
        done.push(format!(
            "prepared the backup directory {}",
            backups.display()
        ));
    }
    Ok(())
}

/// Creates the secrets that are missing; an existing one is never
/// regenerated, and what its policy finds is a warning.
async fn ensure_secrets(ctx: &Layer, plan: &Plan, done: &Done<'_>) -> Result<()> {
    for secret in &plan.secrets {
        let policy = kind_of(ctx, &secret.name)?.policy();
        match ensure(ctx.secrets.as_ref(), &secret.name, &policy).await {
            Ok(Ensured::Created) => {
                done.push(format!("created the secret {} (generated)", secret.name));
            }
            Ok(Ensured::Kept { findings }) => {
                for finding in findings {
                    ctx.tell(Event::Warning(&format!(
                        "secret {}: {finding}; fix: immich-db secrets rotate {}",
                        secret.name, secret.name
                    )));
                }
            }
            Ok(_) => {}
            Err(e) => {
                return Err(Error::failed(format!(
                    "cannot ensure the secret {}: {e}",
                    secret.name
                )));
            }
        }
    }
    Ok(())
}

/// The services started, and Valkey's start when it waits for PostgreSQL's
/// container.
#[derive(Debug)]
struct Started<'p> {
    waiting: Vec<Waiting>,
    held: Option<(&'p ServicePlan, ServiceAction)>,
}

/// Recreates or creates the network where the plan says so, then starts or
/// restarts the services. PostgreSQL first, Valkey once PostgreSQL's container
/// runs: two containers created at the same moment take turns in podman's
/// database and network set-up, and PostgreSQL is the one a deploy waits for
/// longest.
async fn start_services<'p>(ctx: &Layer, plan: &'p Plan, done: &Done<'_>) -> Result<Started<'p>> {
    network(ctx, plan, done).await?;
    let recreated = matches!(plan.network, NetworkAction::Recreate { .. });
    let mut waiting = Vec::new();
    let mut to_start = Vec::new();
    let mut to_restart = Vec::new();
    for service in &plan.services {
        let action = if recreated {
            ServiceAction::Start
        } else {
            service.action
        };
        match action {
            ServiceAction::Keep => continue,
            ServiceAction::Wait => {}
            ServiceAction::Start => to_start.push(service),
            ServiceAction::Restart => to_restart.push(service),
        }
        waiting.push(Waiting {
            service: service.service.clone(),
            role: service.role,
            since: service.active_since,
        });
    }
    let postgres_starts = to_start
        .iter()
        .chain(&to_restart)
        .any(|s| s.role == Role::Postgres);
    let mut held = None;
    if postgres_starts {
        if let Some(i) = to_start.iter().position(|s| s.role == Role::Valkey) {
            held = Some((to_start.remove(i), ServiceAction::Start));
        } else if let Some(i) = to_restart.iter().position(|s| s.role == Role::Valkey) {
            held = Some((to_restart.remove(i), ServiceAction::Restart));
        }
    }
    for (list, action) in [
        (&to_start, ServiceAction::Start),
        (&to_restart, ServiceAction::Restart),
    ] {
        for line in launch(ctx, plan, list, action).await? {
            done.push(line);
        }
    }
    Ok(Started { waiting, held })
}

/// The network, as the plan says: recreated (its containers stop first),
/// created by its service, or kept.
async fn network(ctx: &Layer, plan: &Plan, done: &Done<'_>) -> Result<()> {
    let d = &ctx.deployment;
    let containers: Vec<String> = plan.services.iter().map(|s| s.service.clone()).collect();
    let network_service = [d.network_service()];
    match &plan.network {
        NetworkAction::Recreate { reason } => {
            ctx.tell(Event::Phase(&format!("recreating the network ({reason})")));
            ctx.systemd.stop(&containers).await?;
            ctx.systemd.stop(&network_service).await?;
            match ctx.runtime.remove_network(&d.podman_network()).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(ctx.podman_failure("removing the old network", &e)),
            }
            ctx.systemd.start(&network_service, Wait::Done).await?;
            done.push(format!("recreated the network {}", d.podman_network()));
        }
        // Starting a container starts its network's service, which creates
        // the network; but a service still active from before would not
        // create it again.
        NetworkAction::Create if plan.network_service_active => {
            ctx.systemd.restart(&network_service, Wait::Done).await?;
            done.push(format!("created the network {}", d.podman_network()));
        }
        NetworkAction::Create | NetworkAction::Keep => {}
    }
    Ok(())
}

/// Starts (after forgetting a failed state) or restarts the services, queuing
/// the jobs without waiting; what was done, a line each.
async fn launch(
    ctx: &Layer,
    plan: &Plan,
    services: &[&ServicePlan],
    action: ServiceAction,
) -> Result<Vec<String>> {
    if services.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = services.iter().map(|s| s.service.clone()).collect();
    let verb = if action == ServiceAction::Restart {
        queue(ctx, plan, &names, true).await?;
        "restarted"
    } else {
        let failed: Vec<String> = services
            .iter()
            .filter(|s| s.failed)
            .map(|s| s.service.clone())
            .collect();
        ctx.systemd.reset_failed(&failed).await?;
        queue(ctx, plan, &names, false).await?;
        "started"
    };
    Ok(services
        .iter()
        .map(|s| format!("{verb} {} ({})", s.service, s.reason))
        .collect())
}

/// Queues a start or restart; if systemd does not know a unit that this
/// deploy's reload generated, reloads once more and queues it again. Another
/// client's reload at the same moment can leave the manager without it.
async fn queue(ctx: &Layer, plan: &Plan, names: &[String], restart: bool) -> Result<()> {
    let call = || async {
        if restart {
            ctx.systemd.restart(names, Wait::Queued).await
        } else {
            ctx.systemd.start(names, Wait::Queued).await
        }
    };
    match call().await {
        Err(e) if plan.daemon_reload && e.is_unit_not_found() => {
            ctx.systemd.daemon_reload().await?;
            call().await.map_err(Error::from)
        }
        other => other.map_err(Error::from),
    }
}

/// Waits for each service started, verifying it as soon as its health check
/// passes while systemd learns from podman that it is healthy; and what they
/// share, once both are.
async fn wait_and_verify(
    ctx: &Layer,
    plan: &Plan,
    done: &Done<'_>,
    started: Started<'_>,
) -> Result<Verification> {
    let Started { waiting, held } = started;
    let (postgres_running, postgres_ran) = oneshot::channel();
    let (postgres_healthy, postgres_checked) = oneshot::channel();
    let (valkey_healthy, valkey_checked) = oneshot::channel();
    let common = async {
        // Both containers run, on the network, once both are healthy.
        let (a, b) = tokio::join!(postgres_checked, valkey_checked);
        (a.is_ok() && b.is_ok()).then_some(())?;
        fault::point("verify");
        Some(
            verify::common_part(ctx)
                .instrument(tracing::debug_span!("verify common"))
                .await,
        )
    };
    let postgres = Part {
        ctx,
        plan,
        done,
        role: Role::Postgres,
        waiting: &waiting,
    }
    .run(Some(postgres_running), None, postgres_healthy);
    let valkey = Part {
        ctx,
        plan,
        done,
        role: Role::Valkey,
        waiting: &waiting,
    }
    .run(None, held.map(|h| (h, postgres_ran)), valkey_healthy);
    let (postgres, valkey, common) = tokio::join!(postgres, valkey, common);
    ctx.tell(Event::WaitOver);
    let (postgres, valkey) = (postgres?, valkey?);
    let common = match common {
        Some(common) => common,
        None => verify::common_part(ctx).await,
    };
    Ok(verify::assemble(common, postgres, valkey))
}

/// One service's part of the wait: its start when it was held, the wait for
/// its health, and its checks.
struct Part<'a> {
    ctx: &'a Layer,
    plan: &'a Plan,
    done: &'a Done<'a>,
    role: Role,
    waiting: &'a [Waiting],
}

impl Part<'_> {
    async fn run(
        self,
        mut running: Option<oneshot::Sender<()>>,
        held: Option<((&ServicePlan, ServiceAction), oneshot::Receiver<()>)>,
        healthy: oneshot::Sender<()>,
    ) -> Result<verify::Checks> {
        let ctx = self.ctx;
        let d = &ctx.deployment;
        let container = match self.role {
            Role::Postgres => &d.config.postgres.container_name,
            _ => &d.config.valkey.container_name,
        };
        let service = format!("{container}.service");
        if let Some(((s, action), ran)) = held {
            // PostgreSQL's container runs, or it has failed, or it takes long:
            // Valkey's turn.
            let _ = tokio::time::timeout(HOLD_LIMIT, ran).await;
            for line in launch(ctx, self.plan, &[s], action).await? {
                self.done.push(line);
            }
        }
        let w = self.waiting.iter().find(|w| w.role == self.role);
        let mut job = w.map_or_else(JobWatch::none, |w| ctx.systemd.watch_job(&w.service));
        let ready = match w {
            Some(w) => {
                let ready = wait::healthy(ctx, w, container, &mut running, &mut job)
                    .instrument(tracing::debug_span!("healthy", service = %w.service))
                    .await;
                drop(running);
                Some(ready?)
            }
            None => None,
        };
        let _ = healthy.send(());
        let health = (ready == Some(Ready::Healthy))
            .then(|| verify::health_result(container, &HealthStatus::Healthy));
        let (active, checks) = tokio::join!(
            async {
                match (w, ready) {
                    (Some(w), Some(Ready::Healthy)) => wait::active(ctx, w, container, &mut job)
                        .instrument(tracing::debug_span!("active", service = %w.service))
                        .await
                        .map(Some),
                    _ => Ok(None),
                }
            },
            async {
                match self.role {
                    Role::Postgres => verify::postgres_service(ctx, health).await,
                    _ => verify::valkey_service(ctx, health).await,
                }
            }
        );
        active?;
        // A unit deploy waited for was just seen active.
        let mut all = if ready.is_some() {
            verify::unit_result(&service, &homelab_systemd::ActiveState::Active)
        } else {
            verify::unit_check(ctx, &service).await
        };
        all.extend(checks);
        Ok(all)
    }
}
