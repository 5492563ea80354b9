//! PostgreSQL major upgrades, and their rollback.
//!
//! A server of one major does not start on another major's cluster, so an
//! upgrade moves the data: it takes a backup, prepares a fresh NOCOW data
//! directory beside the old one (`…-pg18`), starts the new major there as a
//! temporary container (`<container>-upgrade`, with the same password
//! secret), restores the backup into it (extensions included) and checks that
//! it holds what the old one does (every table's row count, every index,
//! view, sequence and extension). Only then does it switch: the configuration
//! file gets the new image and directory (its comments kept), and a deploy
//! writes the unit and restarts the service on the new cluster. The old
//! cluster stays where it was, for [`Layer::rollback_upgrade`].
//!
//! Until the switch the old cluster serves and nothing of the deployment is
//! changed; the restart is one systemd job, which systemd carries out even
//! if this process dies. So an upgrade killed at any step leaves the old or
//! the new cluster running. Its journal, beside the data directories, says
//! how far it got: the next `upgrade` starts an unfinished preparation over,
//! or finishes the switch.
//!
//! In debug builds the fault hook (`IMMICH_DB_FAULT_AT`) can stop an upgrade
//! after each step: `upgrade-backup` (journal written), `upgrade-prepare`
//! (backup taken), `upgrade-restore` (new cluster running, empty),
//! `upgrade-restored` (restored and verified), `upgrade-config` (temporary
//! container gone), `upgrade-switch` (configuration written), then the
//! deploy's own steps; and a rollback at `rollback-config` (journal marked)
//! and `rollback-switch` (configuration written).

pub(crate) mod compare;
mod journal;

use std::path::{Path, PathBuf};

use homelab_btrfs::Nocow;
use homelab_quadlet::PodmanVersion;
use homelab_systemd::{LoadState, Wait};
use serde::Serialize;

use journal::Journal;
pub use journal::{Phase, Side};

use crate::backups::BackupOptions;
use crate::config::edit::{self, Change};
use crate::config::{Deployment, Loaded};
use crate::deploy::{DeployOptions, DeployReport};
use crate::error::{Error, Result};
use crate::files::write_atomic;
use crate::layer::Layer;
use crate::layout::{self, PostgresLayout};
use crate::progress::Event;
use crate::verify::Verification;
use crate::{backup, desired, fault, lock, plan, preconditions};

/// What an upgrade is asked to do.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UpgradeRequest {
    /// The image of the new major.
    pub image: String,
    /// The configuration, whose file records the new image.
    pub config: Loaded,
    /// What the deploy that switches over accepts of the host.
    pub options: DeployOptions,
}

impl UpgradeRequest {
    /// An upgrade to `image`, recorded in `config`'s file.
    pub fn new(image: impl Into<String>, config: Loaded) -> Self {
        Self {
            image: image.into(),
            config,
            options: DeployOptions::new(),
        }
    }

    /// With these deploy options.
    #[must_use]
    pub fn options(mut self, options: DeployOptions) -> Self {
        self.options = options;
        self
    }
}

/// What an upgrade would do.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct UpgradePlan {
    /// The cluster that serves now.
    pub from: Side,
    /// The cluster it moves to.
    pub to: Side,
    /// The phase of an interrupted upgrade that this one resumes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumes: Option<Phase>,
    /// The steps, for a person; none when the upgrade is done already.
    pub steps: Vec<String>,
    /// The configuration file that records the new image.
    pub config_file: PathBuf,
}

impl std::fmt::Display for UpgradePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.steps.is_empty() {
            return write!(
                f,
                "No changes: PostgreSQL {} ({}) serves already.",
                self.to.major, self.to.image
            );
        }
        writeln!(
            f,
            "Upgrade PostgreSQL {} ({}) to {} ({}):",
            self.from.major, self.from.image, self.to.major, self.to.image
        )?;
        if let Some(phase) = self.resumes {
            writeln!(
                f,
                "   (resumes an interrupted upgrade: {})",
                phase.describe()
            )?;
        }
        for (i, step) in self.steps.iter().enumerate() {
            writeln!(f, "{}. {step}", i + 1)?;
        }
        Ok(())
    }
}

/// What an upgrade did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct UpgradeReport {
    /// Whether anything was changed.
    pub changed: bool,
    /// The cluster that served before.
    pub from: Side,
    /// The cluster that serves now.
    pub to: Side,
    /// The phase of the interrupted upgrade this one finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed: Option<Phase>,
    /// The backup taken before anything changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<PathBuf>,
    /// What was done, in order.
    pub done: Vec<String>,
    /// The configuration file that records the new image.
    pub config_file: PathBuf,
    /// The old cluster's directory, kept for a rollback.
    pub kept: PathBuf,
    /// The checks after the switch.
    #[serde(rename = "verify", skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
}

/// What a rollback did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RollbackReport {
    /// Whether anything was changed.
    pub changed: bool,
    /// Whether the upgrade had not switched over yet: it was abandoned, and
    /// its new cluster deleted.
    pub abandoned: bool,
    /// The cluster given up.
    pub from: Side,
    /// The cluster that serves now.
    pub to: Side,
    /// What was done, in order.
    pub done: Vec<String>,
    /// The given-up cluster's directory, when it is kept (it held the
    /// database after the switch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<PathBuf>,
    /// The checks after the rollback.
    #[serde(rename = "verify", skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
}

/// The name of the temporary container (and unit) of an upgrade's new
/// cluster.
fn temp_name(container: &str) -> String {
    format!("{container}-upgrade")
}

/// `[storage] postgres_dir` for the new major's directory, a sibling of the
/// current one: `db/postgres` gives `db/postgres-pg18`, and `db/postgres-pg18`
/// gives `db/postgres-pg19`. Its absolute path beside `current`.
fn sibling(value: &str, current: &Path, major: u32) -> (String, PathBuf) {
    let trimmed = value.trim_end_matches('/');
    let (head, name) = match trimmed.rsplit_once('/') {
        Some((head, name)) => (Some(head), name),
        None => (None, trimmed),
    };
    let base = match name.rsplit_once("-pg") {
        Some((base, n))
            if !base.is_empty() && !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) =>
        {
            base
        }
        _ => name,
    };
    let new_name = format!("{base}-pg{major}");
    let new_value = match head {
        Some(head) => format!("{head}/{new_name}"),
        None => new_name.clone(),
    };
    let parent = current.parent().unwrap_or(current);
    (new_value, parent.join(new_name))
}

/// What the checks before an upgrade found.
#[derive(Debug)]
struct Checked {
    from: Side,
    to: Side,
    to_layout: PostgresLayout,
    podman: PodmanVersion,
    nocow_possible: bool,
}

/// A failure of podman, as the upgrade's checks meet it.
fn podman_failure(doing: &str, e: &homelab_podman::Error) -> Error {
    Error::precondition(format!("Podman failed while {doing}: {e}"))
}

/// The image, pulled first when it is not here and a registry serves it.
async fn image_at_hand(ctx: &Layer, image: &str) -> Result<homelab_podman::ImageInfo> {
    match ctx.runtime.inspect_image(image).await {
        Ok(info) => return Ok(info),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(podman_failure(&format!("inspecting {image}"), &e)),
    }
    let local = homelab_podman::ImageRef::parse(image)
        .map_err(|e| {
            Error::bad_input(e.to_string()).help("give an image reference as podman reads it")
        })?
        .is_local();
    if local {
        return Err(
            Error::precondition(format!("the image {image} is not present")).help(
                "build or load it (`podman load`), or give another image; nothing was changed",
            ),
        );
    }
    ctx.tell(Event::Phase(&format!("pulling {image}")));
    ctx.runtime.pull_image(image).await.map_err(|e| {
        Error::precondition(format!(
            "the image {image} is not present and cannot be pulled: {e}"
        ))
        .help("check the reference and that its registry is reachable; nothing was changed")
    })
}

/// The sessions of other clients on the database: what they write after the
/// backup would not reach the new cluster.
async fn other_sessions(ctx: &Layer) -> Result<Vec<String>> {
    let out = backup::psql(
        ctx,
        "listing the database's sessions",
        "SELECT coalesce(nullif(application_name, ''), 'a client') || ' from ' \
         || coalesce(host(client_addr), 'the local socket') \
         FROM pg_stat_activity WHERE datname = current_database() \
         AND pid <> pg_backend_pid() AND backend_type = 'client backend' \
         AND state IS NOT NULL ORDER BY 1;",
    )
    .await?;
    Ok(out.lines().map(str::to_owned).collect())
}

impl Layer {
    /// The checks of an upgrade to `request.image`: the old cluster serves,
    /// the image is of a newer major, its directory is free, no other client
    /// is connected, the host is in order. Changes nothing (an image that is
    /// not here is pulled).
    async fn upgrade_checks(&self, request: &UpgradeRequest) -> Result<Checked> {
        let d = &self.deployment;
        let pg = &d.config.postgres;
        backup::require_running(
            self,
            &pg.container_name,
            "an upgrade backs the database up from it and restores it into the new major",
        )
        .await?;
        let running = self
            .runtime
            .inspect_container(&pg.container_name)
            .await
            .map_err(|e| podman_failure(&format!("inspecting {}", pg.container_name), &e))?;
        let from_image = running.image;
        let from_layout =
            PostgresLayout::of_image(&image_at_hand(self, &from_image).await?, &from_image);
        let cluster = layout::find_cluster(&d.dirs.postgres, &from_layout)
            .map_err(|e| {
                Error::precondition(format!(
                    "cannot read the data directory {}: {e}",
                    d.dirs.postgres.display()
                ))
                .help("run immich-db as the user who deployed")
            })?
            .ok_or_else(|| {
                Error::precondition(format!(
                    "there is no PostgreSQL cluster in {}",
                    d.dirs.postgres.display()
                ))
                .help("deploy first; with no data there is nothing to upgrade: set [postgres] image and deploy")
            })?;
        let to_info = image_at_hand(self, &request.image).await?;
        let to_layout = PostgresLayout::of_image(&to_info, &request.image);
        let Some(to_major) = to_layout.major else {
            return Err(Error::bad_input(format!(
                "cannot tell which PostgreSQL major the image {} is: it sets no PG_MAJOR and its tag does not start with one",
                request.image
            ))
            .help("give an image tagged with its major (postgres:18), or one that sets PG_MAJOR"));
        };
        if to_major == cluster.major {
            return Err(Error::bad_input(format!(
                "the image {} is PostgreSQL {to_major}, as the data already is: there is nothing to upgrade",
                request.image
            ))
            .help(format!(
                "set [postgres] image = {:?} and run `immich-db deploy`",
                request.image
            )));
        }
        if to_major < cluster.major {
            return Err(Error::bad_input(format!(
                "the image {} is PostgreSQL {to_major}, older than the data's PostgreSQL {}: a downgrade is not an upgrade",
                request.image, cluster.major
            ))
            .help("restore a backup made before the upgrade, or roll back with `immich-db upgrade --rollback` while its journal is there"));
        }
        let (to_value, to_path) =
            sibling(&d.config.storage.postgres_dir, &d.dirs.postgres, to_major);
        if std::fs::read_dir(&to_path).is_ok_and(|mut entries| entries.next().is_some()) {
            return Err(Error::precondition(format!(
                "the directory {} for the PostgreSQL {to_major} cluster exists and is not empty",
                to_path.display()
            ))
            .help("it may hold the cluster of an upgrade that was rolled back: move it away or delete it, then run the upgrade again; nothing was changed"));
        }
        // The host, as it is with the image that serves now.
        let mut current = d.clone();
        current.config.postgres.image.clone_from(&from_image);
        current.postgres_layout = from_layout;
        let host = preconditions::check(
            &self.derive(current),
            request.options.allow_non_btrfs,
            false,
        )
        .await
        .into_result()?;
        let sessions = other_sessions(self).await?;
        if !sessions.is_empty() {
            return Err(Error::precondition(format!(
                "other clients are connected to the database: {}",
                sessions.join(", ")
            ))
            .help("stop Immich's server and machine-learning containers first: what they write after the backup would be lost; nothing was changed"));
        }
        if let (Ok(used), Ok(free)) = (
            homelab_btrfs::disk_usage(&cluster.dir),
            homelab_btrfs::usage(to_path.parent().unwrap_or(&d.pool)),
        ) && free.available < used.allocated
        {
            return Err(Error::precondition(format!(
                "the pool has {} bytes free, the new cluster needs about {} (the old one's size)",
                free.available, used.allocated
            ))
            .help("free space on the pool; nothing was changed"));
        }
        Ok(Checked {
            from: Side {
                image: from_image,
                major: cluster.major,
                postgres_dir: d.config.storage.postgres_dir.clone(),
                path: d.dirs.postgres.clone(),
            },
            to: Side {
                image: request.image.clone(),
                major: to_major,
                postgres_dir: to_value,
                path: to_path,
            },
            to_layout,
            podman: host.podman_version.unwrap_or(PodmanVersion::V5_0),
            nocow_possible: host.nocow_possible,
        })
    }

    /// What [`Layer::upgrade`] would do, after its checks; changes nothing
    /// (an image that is not here is pulled).
    pub async fn plan_upgrade(&self, request: &UpgradeRequest) -> Result<UpgradePlan> {
        let config_file = edit::file_of(&request.config)?;
        let journal = journal::read(&journal::path(&self.deployment))?;
        let mut resumes = None;
        if let Some(j) = journal {
            match resume_or_not(self, &j, request)? {
                Resume::AlreadyDone => {
                    return Ok(UpgradePlan {
                        from: j.from,
                        to: j.to,
                        resumes: None,
                        steps: Vec::new(),
                        config_file,
                    });
                }
                Resume::From(phase) => {
                    let steps = switch_steps(&self.deployment, &j.from, &j.to, &config_file);
                    return Ok(UpgradePlan {
                        from: j.from,
                        to: j.to,
                        resumes: Some(phase),
                        steps,
                        config_file,
                    });
                }
                Resume::StartOver => resumes = Some(Phase::Preparing),
                Resume::Fresh => {}
            }
        }
        let checked = self.upgrade_checks(request).await?;
        let d = &self.deployment;
        let mut steps = vec![
            format!(
                "back up {} into {}",
                d.config.postgres.database,
                d.backup.dir.display()
            ),
            format!(
                "prepare {} (NOCOW) and start PostgreSQL {} there as {}, with the password secret {}",
                checked.to.path.display(),
                checked.to.major,
                temp_name(&d.config.postgres.container_name),
                d.config.postgres.password_secret
            ),
            format!(
                "restore the backup into it (extensions included), check that it holds what PostgreSQL {} does, and stop it",
                checked.from.major
            ),
        ];
        steps.extend(switch_steps(d, &checked.from, &checked.to, &config_file));
        Ok(UpgradePlan {
            from: checked.from,
            to: checked.to,
            resumes,
            steps,
            config_file,
        })
    }

    /// Upgrades PostgreSQL to the major of `request.image`: a backup, a new
    /// cluster in a fresh NOCOW directory, the restore and its check, then
    /// the switch (configuration file, unit, restart) and a verification.
    /// The old cluster stays for [`Layer::rollback_upgrade`]. Running it
    /// again after an interruption finishes it; after it is done, changes
    /// nothing.
    pub async fn upgrade(&self, request: &UpgradeRequest) -> Result<UpgradeReport> {
        let _lock = lock::acquire(&lock::lock_path(
            &self.deployment,
            self.runtime_dir.as_deref(),
        ))?;
        let path = journal::path(&self.deployment);
        let mut run = Run {
            ctx: self,
            path: path.clone(),
            done: Vec::new(),
        };
        let mut resumed = None;
        let mut journal = None;
        if let Some(j) = journal::read(&path)? {
            match resume_or_not(self, &j, request)? {
                Resume::AlreadyDone => {
                    let verification = Some(self.verify().await);
                    return Ok(UpgradeReport {
                        changed: false,
                        kept: j.from.path.clone(),
                        from: j.from,
                        to: j.to,
                        resumed: None,
                        backup: j.backup,
                        done: Vec::new(),
                        config_file: edit::file_of(&request.config)?,
                        verification,
                    });
                }
                Resume::From(phase) => {
                    self.tell(Event::Phase(&format!(
                        "resuming the interrupted upgrade to {} ({})",
                        j.to.image,
                        phase.describe()
                    )));
                    resumed = Some(phase);
                    journal = Some(j);
                }
                Resume::StartOver => {
                    self.tell(Event::Phase(&format!(
                        "starting the interrupted upgrade to {} over",
                        j.to.image
                    )));
                    run.abandon(&j).await?;
                    resumed = Some(Phase::Preparing);
                }
                Resume::Fresh => {}
            }
        }
        let mut j = if let Some(j) = journal {
            j
        } else {
            self.tell(Event::Phase("checking the deployment and the new image"));
            let checked = self.upgrade_checks(request).await?;
            let mut j = Journal::new(
                &self.deployment.config.postgres.container_name,
                checked.from.clone(),
                checked.to.clone(),
            );
            journal::write(&path, &j)?;
            fault::point("upgrade-backup");
            if let Err(failure) = Box::pin(run.prepare(&mut j, &checked)).await {
                return Err(run.undo_preparation(&j, failure).await);
            }
            j
        };
        if j.phase == Phase::Restored {
            run.stop_temporary(&j.container).await?;
            fault::point("upgrade-config");
            j.phase = Phase::Switching;
            journal::write(&path, &j)?;
        }
        let (deployed, config_file) = match run.switch(&j, &request.config, &request.options).await
        {
            Ok(switched) => switched,
            Err(mut failure) => {
                let again = format!(
                    "run `immich-db upgrade --image {}` again to finish the switch, or `immich-db upgrade --rollback` to go back to PostgreSQL {} (kept in {})",
                    j.to.image,
                    j.from.major,
                    j.from.path.display()
                );
                failure.help = Some(match failure.help.take() {
                    Some(help) => format!("{help}; then {again}"),
                    None => again,
                });
                failure.done.splice(0..0, run.done);
                return Err(failure);
            }
        };
        j.phase = Phase::Done;
        journal::write(&path, &j)?;
        run.push(format!(
            "PostgreSQL {} serves from {}; PostgreSQL {} is kept in {} for `immich-db upgrade --rollback`",
            j.to.major,
            j.to.path.display(),
            j.from.major,
            j.from.path.display()
        ));
        let verification = deployed.verification;
        Ok(UpgradeReport {
            changed: true,
            kept: j.from.path.clone(),
            from: j.from,
            to: j.to,
            resumed,
            backup: j.backup,
            done: run.done,
            config_file,
            verification,
        })
    }

    /// Goes back to the cluster from before the last upgrade: an upgrade that
    /// had not switched over is abandoned (its temporary container and new
    /// directory removed); one that had is undone (the configuration gets
    /// the old image and directory back, a deploy restarts the old cluster)
    /// and its new cluster is kept. What was written to the new cluster is
    /// not carried back.
    pub async fn rollback_upgrade(
        &self,
        config: &Loaded,
        options: &DeployOptions,
    ) -> Result<RollbackReport> {
        let _lock = lock::acquire(&lock::lock_path(
            &self.deployment,
            self.runtime_dir.as_deref(),
        ))?;
        let path = journal::path(&self.deployment);
        let Some(mut j) = journal::read(&path)? else {
            return Err(Error::bad_input("there is no upgrade to roll back").help(format!(
                "an upgrade keeps its journal at {} until the next one; without it, restore a backup made before the upgrade",
                path.display()
            )));
        };
        let mut run = Run {
            ctx: self,
            path: path.clone(),
            done: Vec::new(),
        };
        if matches!(j.phase, Phase::Preparing | Phase::Restored) {
            run.abandon(&j).await?;
            return Ok(RollbackReport {
                changed: true,
                abandoned: true,
                from: j.to,
                to: j.from,
                done: run.done,
                kept: None,
                verification: Some(self.verify().await),
            });
        }
        let old = old_cluster_layout(self, &j).await?;
        match layout::find_cluster(&j.from.path, &old) {
            Ok(Some(cluster)) if cluster.major == j.from.major => {}
            _ => {
                return Err(Error::precondition(format!(
                    "the PostgreSQL {} cluster is no longer in {}: there is nothing to go back to",
                    j.from.major,
                    j.from.path.display()
                ))
                .help("restore a backup made before the upgrade instead; nothing was changed"));
            }
        }
        j.phase = Phase::RollingBack;
        journal::write(&path, &j)?;
        fault::point("rollback-config");
        let edited = edit::edit(
            config,
            &[
                Change::new("postgres", "image", &j.from.image),
                Change::new("storage", "postgres_dir", &j.from.postgres_dir),
            ],
        )?;
        if edited.changed {
            run.push(format!(
                "recorded [postgres] image {} and [storage] postgres_dir {} in {}",
                j.from.image,
                j.from.postgres_dir,
                edited.path.display()
            ));
        }
        fault::point("rollback-switch");
        let back = self.derive(edited.deployment);
        let deployed = Box::pin(back.deploy_held(options))
            .await
            .map_err(|mut failure| {
                failure.help = Some(format!(
                    "{}; then run `immich-db upgrade --rollback` again",
                    failure
                        .help
                        .take()
                        .unwrap_or_else(|| "fix the cause above".into())
                ));
                failure
            })?;
        run.done.extend(deployed.done.iter().cloned());
        journal::remove(&path)?;
        run.push(format!(
            "PostgreSQL {} serves from {} again; the PostgreSQL {} cluster stays in {} (delete it when it is no longer needed)",
            j.from.major,
            j.from.path.display(),
            j.to.major,
            j.to.path.display()
        ));
        let verification = match deployed.verification {
            Some(v) => v,
            None => back.verify().await,
        };
        Ok(RollbackReport {
            changed: true,
            abandoned: false,
            kept: Some(j.to.path.clone()),
            from: j.to,
            to: j.from,
            done: run.done,
            verification: Some(verification),
        })
    }
}

/// What an upgrade makes of a journal it finds.
enum Resume {
    /// The upgrade to this image is done and configured: nothing to do.
    AlreadyDone,
    /// An interrupted upgrade to this image that goes on from the phase.
    From(Phase),
    /// An interrupted preparation, started over.
    StartOver,
    /// An earlier, finished upgrade: a new one starts.
    Fresh,
}

fn resume_or_not(ctx: &Layer, j: &Journal, request: &UpgradeRequest) -> Result<Resume> {
    let same = j.to.image == request.image;
    match j.phase {
        Phase::Preparing => Ok(Resume::StartOver),
        Phase::Restored | Phase::Switching if same => Ok(Resume::From(j.phase)),
        Phase::Restored | Phase::Switching => Err(Error::bad_input(format!(
            "an upgrade to {} is under way ({})",
            j.to.image,
            j.phase.describe()
        ))
        .help(format!(
            "finish it with `immich-db upgrade --image {}`, or undo it with `immich-db upgrade --rollback`",
            j.to.image
        ))),
        Phase::RollingBack => Err(Error::precondition(format!(
            "a rollback to PostgreSQL {} was interrupted",
            j.from.major
        ))
        .help("finish it with `immich-db upgrade --rollback`, then upgrade again")),
        Phase::Done
            if same
                && ctx.deployment.config.postgres.image == j.to.image
                && ctx.deployment.dirs.postgres == j.to.path =>
        {
            Ok(Resume::AlreadyDone)
        }
        Phase::Done => Ok(Resume::Fresh),
    }
}

/// The steps of the switch, for a person.
fn switch_steps(d: &Deployment, from: &Side, to: &Side, config_file: &Path) -> Vec<String> {
    vec![
        format!(
            "record [postgres] image {} and [storage] postgres_dir {} in {} (comments kept)",
            to.image,
            to.postgres_dir,
            config_file.display()
        ),
        format!(
            "restart {} on the PostgreSQL {} cluster (the same password secret) and verify",
            d.config.postgres.container_name, to.major
        ),
        format!(
            "keep the PostgreSQL {} cluster in {} for `immich-db upgrade --rollback`",
            from.major,
            from.path.display()
        ),
    ]
}

/// The layout of the image the old cluster was served by.
async fn old_cluster_layout(ctx: &Layer, j: &Journal) -> Result<PostgresLayout> {
    Ok(match ctx.runtime.inspect_image(&j.from.image).await {
        Ok(info) => PostgresLayout::of_image(&info, &j.from.image),
        Err(_) => PostgresLayout::assumed(&j.from.image),
    })
}

/// One run of an upgrade (or a rollback): the journal's place and what was
/// done.
struct Run<'a> {
    ctx: &'a Layer,
    path: PathBuf,
    done: Vec<String>,
}

impl Run<'_> {
    fn push(&mut self, what: String) {
        self.ctx.tell(Event::Done(&what));
        self.done.push(what);
    }

    /// The temporary deployment of the new cluster: its container, image,
    /// directory and layout.
    fn temporary(&self, j: &Journal, layout: &PostgresLayout) -> Deployment {
        let mut t = self.ctx.deployment.clone();
        t.config.postgres.container_name = temp_name(&j.container);
        t.config.postgres.image.clone_from(&j.to.image);
        t.dirs.postgres.clone_from(&j.to.path);
        t.postgres_layout = layout.clone();
        t
    }

    /// Backs up, prepares the new cluster's directory, starts the new major
    /// there, restores into it and checks it; the journal then says
    /// `restored`. The old cluster serves throughout.
    async fn prepare(&mut self, j: &mut Journal, checked: &Checked) -> Result<()> {
        let ctx = self.ctx;
        let report = ctx.backup(&BackupOptions::new()).await?;
        self.push(format!(
            "backed up {} into {}",
            ctx.deployment.config.postgres.database,
            report.backup.dump.display()
        ));
        j.backup = Some(report.backup.dump.clone());
        journal::write(&self.path, j)?;
        let original = compare::contents(ctx).await?;
        fault::point("upgrade-prepare");

        let t = self.temporary(j, &checked.to_layout);
        let dir = desired::dirs(&t)
            .into_iter()
            .find(|dir| dir.key == "postgres_dir")
            .ok_or_else(|| Error::failed("the deployment has no PostgreSQL directory"))?;
        let nocow = if checked.nocow_possible {
            Nocow::On
        } else {
            Nocow::Leave
        };
        homelab_btrfs::ensure_dir(&plan::dir_spec(&t, &dir, nocow))
            .map_err(|e| Error::failed(format!("cannot prepare {}: {e}", j.to.path.display())))?;
        self.push(format!(
            "prepared {}{}",
            j.to.path.display(),
            if checked.nocow_possible {
                " (NOCOW)"
            } else {
                ""
            }
        ));

        let unit = temporary_unit(&t, checked.podman, j);
        write_atomic(&unit.path(&t), unit.content.as_bytes())
            .map_err(|e| Error::failed(format!("cannot write {}: {e}", unit.path(&t).display())))?;
        ctx.systemd.daemon_reload().await?;
        ctx.tell(Event::Phase(&format!(
            "starting PostgreSQL {} in {} (a first start initialises the cluster)",
            j.to.major, t.config.postgres.container_name
        )));
        ctx.systemd
            .start(std::slice::from_ref(&unit.service), Wait::Done)
            .await
            .map_err(|e| {
                Error::failed(format!(
                    "PostgreSQL {} did not start in {}: {e}",
                    j.to.major, t.config.postgres.container_name
                ))
                .help(format!(
                    "see `journalctl --user -u {}` (or without --user for the system scope)",
                    unit.service
                ))
            })?;
        self.push(format!(
            "started PostgreSQL {} ({}) in {}",
            j.to.major, j.to.image, t.config.postgres.container_name
        ));
        fault::point("upgrade-restore");

        let temp = ctx.derive(t);
        let checked_backup = backup::check(&report.backup.dump)?;
        ctx.tell(Event::Phase(&format!(
            "restoring the backup into PostgreSQL {}",
            j.to.major
        )));
        backup::restore(&temp, &checked_backup, false).await?;
        let restored = compare::contents(&temp).await?;
        compare::same(
            &original,
            &restored,
            &format!("the PostgreSQL {} cluster", j.to.major),
        )?;
        self.push(format!(
            "restored into PostgreSQL {} and checked it: {} tables, indexes, sequences and extensions as in PostgreSQL {}",
            j.to.major,
            restored.len(),
            j.from.major
        ));
        j.phase = Phase::Restored;
        journal::write(&self.path, j)?;
        fault::point("upgrade-restored");
        Ok(())
    }

    /// A preparation that failed: the temporary container and the new
    /// directory go, the journal too; the failure says that the deployment
    /// is as it was.
    async fn undo_preparation(&mut self, j: &Journal, failure: Error) -> Error {
        let backup = j
            .backup
            .as_ref()
            .map(|b| format!(" (the backup {} is kept)", b.display()))
            .unwrap_or_default();
        let mut failure = failure;
        match self.abandon(j).await {
            Ok(()) => {
                failure.help = Some(format!(
                    "{}; PostgreSQL {} serves as before{backup}, and nothing of the upgrade is left",
                    failure.help.take().unwrap_or_else(|| {
                        "fix the cause above, then run the upgrade again".into()
                    }),
                    j.from.major
                ));
            }
            Err(cleanup) => {
                failure.help = Some(format!(
                    "PostgreSQL {} serves as before{backup}; cleaning up failed too ({}): `immich-db upgrade --rollback` removes what is left",
                    j.from.major, cleanup.what
                ));
            }
        }
        failure.done = std::mem::take(&mut self.done);
        failure
    }

    /// Stops and removes the temporary container's unit, if it is there.
    async fn stop_temporary(&mut self, container: &str) -> Result<()> {
        let ctx = self.ctx;
        let name = temp_name(container);
        let service = format!("{name}.service");
        let file = ctx.deployment.unit_dir.join(format!("{name}.container"));
        let state = ctx.systemd.unit(&service).await?;
        if state.load == LoadState::Loaded && state.active.is_running() {
            ctx.systemd.stop(std::slice::from_ref(&service)).await?;
            self.push(format!("stopped {name}"));
        }
        match std::fs::remove_file(&file) {
            Ok(()) => {
                ctx.systemd.daemon_reload().await?;
                self.push(format!("removed {}", file.display()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::failed(format!(
                    "cannot remove {}: {e}",
                    file.display()
                )));
            }
        }
        // Quadlet removes its container on stop; one left by a kill goes too.
        match ctx.runtime.remove_container(&name, true).await {
            Ok(()) => self.push(format!("removed the container {name}")),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(podman_failure(&format!("removing {name}"), &e)),
        }
        Ok(())
    }

    /// Gives up an upgrade that has not switched over: its temporary
    /// container, its new directory and its journal go.
    async fn abandon(&mut self, j: &Journal) -> Result<()> {
        self.stop_temporary(&j.container).await?;
        if j.to.path == self.ctx.deployment.dirs.postgres {
            // Never the directory the configuration serves from.
            return Err(Error::failed(format!(
                "the upgrade's new directory {} is the configured one: it is not deleted",
                j.to.path.display()
            )));
        }
        remove_dir(self.ctx, &j.to.path).await?;
        self.push(format!("deleted {}", j.to.path.display()));
        journal::remove(&self.path)?;
        self.push(format!(
            "abandoned the upgrade to PostgreSQL {}; PostgreSQL {} serves as before",
            j.to.major, j.from.major
        ));
        Ok(())
    }

    /// Records the new image and directory in the configuration file, and
    /// deploys it: the unit is rewritten and the service restarted on the
    /// new cluster, then verified.
    async fn switch(
        &mut self,
        j: &Journal,
        config: &Loaded,
        options: &DeployOptions,
    ) -> Result<(DeployReport, PathBuf)> {
        let edited = edit::edit(
            config,
            &[
                Change::new("postgres", "image", &j.to.image),
                Change::new("storage", "postgres_dir", &j.to.postgres_dir),
            ],
        )?;
        if edited.changed {
            self.push(format!(
                "recorded [postgres] image {} and [storage] postgres_dir {} in {}",
                j.to.image,
                j.to.postgres_dir,
                edited.path.display()
            ));
        }
        fault::point("upgrade-switch");
        let new = self.ctx.derive(edited.deployment);
        let mut deployed = Box::pin(new.deploy_held(options)).await?;
        self.done.extend(deployed.done.iter().cloned());
        if deployed.verification.is_none() {
            deployed.verification = Some(new.verify().await);
        }
        Ok((deployed, edited.path))
    }
}

/// The temporary unit of the new cluster: PostgreSQL's unit for the new
/// image, directory and container, not started at boot.
fn temporary_unit(t: &Deployment, podman: PodmanVersion, j: &Journal) -> desired::Unit {
    let mut unit = desired::postgres_unit(t, podman);
    let mut content = format!(
        "# The PostgreSQL {} cluster of an upgrade by `immich-db upgrade`; it goes when the upgrade switches over.\n",
        j.to.major
    );
    let mut in_install = false;
    for line in unit.content.lines() {
        if line.starts_with('[') {
            in_install = line == "[Install]";
        }
        if !in_install {
            content.push_str(line);
            content.push('\n');
        }
    }
    unit.content = content;
    unit
}

/// Removes a directory tree the upgrade made; in rootless podman's user
/// namespace when the user cannot.
async fn remove_dir(ctx: &Layer, dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && ctx.deployment.rootless => {
            crate::userns::remove_dir_all(dir)
                .await
                .map_err(|why| Error::failed(format!("cannot delete {}: {why}", dir.display())))
        }
        Err(e) => Err(Error::failed(format!(
            "cannot delete {}: {e}",
            dir.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Loaded as ConfigLoaded, validate};

    #[test]
    fn the_new_directory_is_a_sibling_named_after_the_major() {
        let (value, path) = sibling("db/postgres", Path::new("/pool/db/postgres"), 18);
        assert_eq!(value, "db/postgres-pg18");
        assert_eq!(path, Path::new("/pool/db/postgres-pg18"));
        let (value, path) = sibling("db/postgres-pg18/", Path::new("/pool/db/postgres-pg18"), 19);
        assert_eq!(value, "db/postgres-pg19");
        assert_eq!(path, Path::new("/pool/db/postgres-pg19"));
        let (value, _) = sibling("/srv/pg", Path::new("/srv/pg"), 18);
        assert_eq!(value, "/srv/pg-pg18");
        let (value, _) = sibling("postgres", Path::new("/pool/postgres"), 18);
        assert_eq!(value, "postgres-pg18");
        // Not a major: kept as part of the name.
        let (value, _) = sibling("db/-pg", Path::new("/pool/db/-pg"), 18);
        assert_eq!(value, "db/-pg-pg18");
        let (value, _) = sibling("db/x-pgdata", Path::new("/pool/db/x-pgdata"), 18);
        assert_eq!(value, "db/x-pgdata-pg18");
    }

    #[test]
    fn the_temporary_unit_is_the_new_image_on_the_new_directory_and_not_started_at_boot() {
        let d = validate(&ConfigLoaded::defaults()).unwrap();
        let from = Side {
            image: d.config.postgres.image.clone(),
            major: 14,
            postgres_dir: d.config.storage.postgres_dir.clone(),
            path: d.dirs.postgres.clone(),
        };
        let to = Side {
            image: "docker.io/library/postgres:18".into(),
            major: 18,
            postgres_dir: "x-pg18".into(),
            path: "/pool/x-pg18".into(),
        };
        let j = Journal::new(&d.config.postgres.container_name, from, to);
        let layout = PostgresLayout::assumed("docker.io/library/postgres:18");
        let run_ctx = d.clone();
        let mut t = run_ctx;
        t.config.postgres.container_name = temp_name(&j.container);
        t.config.postgres.image.clone_from(&j.to.image);
        t.dirs.postgres.clone_from(&j.to.path);
        t.postgres_layout = layout;
        let unit = temporary_unit(&t, PodmanVersion::V5_4, &j);
        assert_eq!(unit.file_name, "postgresql-immich-upgrade.container");
        assert_eq!(unit.service, "postgresql-immich-upgrade.service");
        let text = &unit.content;
        assert!(
            text.contains("Image=docker.io/library/postgres:18\n"),
            "{text}"
        );
        assert!(
            text.contains("Volume=/pool/x-pg18:/var/lib/postgresql:Z\n"),
            "{text}"
        );
        assert!(
            text.contains("ContainerName=postgresql-immich-upgrade\n"),
            "{text}"
        );
        assert!(
            text.contains("Secret=postgres-password,type=mount,target=postgres-password\n"),
            "{text}"
        );
        assert!(!text.contains("[Install]"), "{text}");
        assert!(!text.contains("WantedBy="), "{text}");
        assert!(text.contains("[Service]\n"), "{text}");
        // It still parses as a Quadlet unit.
        let mut set = homelab_quadlet::UnitSet::new();
        set.insert(&unit.file_name, text).unwrap();
    }
}
