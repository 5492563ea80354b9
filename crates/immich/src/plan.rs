//! What `deploy` would change: unit files (with diffs), directories, secrets, the
//! network, and which services to start or restart. `plan` prints it; `deploy`
//! carries it out.

use std::path::PathBuf;

use homelab_btrfs::{DirChange, DirSpec, Nocow};
use homelab_quadlet::PodmanVersion;
use serde::Serialize;

use crate::config::Deployment;
use crate::desired::{self, Cow, Dir, Role, Unit};
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::layout::PostgresLayout;
use homelab_systemd::{ActiveState, LoadState, UnitState};

/// How a file compares with what it must be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "lowercase")]
#[non_exhaustive]
pub enum FileChange {
    /// It does not exist.
    Create,
    /// It exists with other content.
    Update {
        /// A unified diff from the file on disk to the configured one.
        diff: String,
    },
    /// It is as configured.
    Unchanged,
}

/// A unit file and how it changes.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct UnitPlan {
    /// What the unit is for.
    pub role: Role,
    /// Where it goes.
    pub path: PathBuf,
    /// The service the generator makes of it.
    pub service: String,
    /// How the file changes.
    #[serde(flatten)]
    pub change: FileChange,
    /// The unit as it must be.
    #[serde(skip)]
    pub unit: Unit,
}

/// A directory and what ensuring it changes.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct DirPlan {
    /// The directory.
    #[serde(flatten)]
    pub dir: Dir,
    /// Whether NOCOW is asked for (false when the pool is not BTRFS and the
    /// operator chose to proceed).
    pub nocow: bool,
    /// What ensuring it changes, for a person.
    pub changes: Vec<String>,
    #[serde(skip)]
    pub(crate) spec: DirSpec,
}

/// A secret and whether it must be created.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct SecretPlan {
    /// Its name.
    pub name: String,
    /// Whether it exists (an existing secret is never regenerated).
    pub exists: bool,
}

/// What happens to the Podman network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
#[non_exhaustive]
pub enum NetworkAction {
    /// It exists as configured.
    Keep,
    /// It does not exist: its service creates it.
    Create,
    /// It exists with other settings: stop its containers, remove it, create it
    /// again.
    Recreate {
        /// What differs.
        reason: String,
    },
}

/// What happens to a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ServiceAction {
    /// It runs as configured.
    Keep,
    /// It does not run: start it.
    Start,
    /// It runs with an older unit or network: restart it.
    Restart,
    /// It is starting already (an earlier deploy started it): wait for it.
    Wait,
}

/// A service and what happens to it.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ServicePlan {
    /// The service.
    pub service: String,
    /// What it is for.
    pub role: Role,
    /// What happens to it.
    pub action: ServiceAction,
    /// Why.
    pub reason: String,
    /// When it last became active before this plan (to tell a restart apart).
    #[serde(skip)]
    pub active_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Whether systemd holds it as failed.
    #[serde(skip)]
    pub failed: bool,
}

/// A lint finding on the units about to be written.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct LintNote {
    /// Whether podman's generator would refuse the unit.
    pub error: bool,
    /// The finding, for a person.
    pub text: String,
}

/// Everything `deploy` would do.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Plan {
    /// What the quadlet lint says of the units (checked before they are written).
    pub lint: Vec<LintNote>,
    /// The unit files.
    pub units: Vec<UnitPlan>,
    /// The data directories.
    pub directories: Vec<DirPlan>,
    /// The secrets.
    pub secrets: Vec<SecretPlan>,
    /// Whether systemd must reread the units.
    pub daemon_reload: bool,
    /// The network.
    pub network: NetworkAction,
    /// Whether the network's service is active (it would not create a missing
    /// network again).
    #[serde(skip)]
    pub network_service_active: bool,
    /// The services.
    pub services: Vec<ServicePlan>,
}

impl Plan {
    /// Whether deploy has nothing to do.
    pub fn is_empty(&self) -> bool {
        self.units.iter().all(|u| u.change == FileChange::Unchanged)
            && self.directories.iter().all(|d| d.changes.is_empty())
            && self.secrets.iter().all(|s| s.exists)
            && !self.daemon_reload
            && self.network == NetworkAction::Keep
            && self
                .services
                .iter()
                .all(|s| s.action == ServiceAction::Keep)
    }
}

impl std::fmt::Display for Plan {
    /// The plan as text for a person, step by step.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

impl Plan {
    fn text(&self) -> String {
        use std::fmt::Write as _;
        if self.is_empty() {
            return "No changes: the deployment is as configured.".into();
        }
        let mut out = String::new();
        for note in &self.lint {
            let _ = writeln!(out, "lint: {}", note.text);
        }
        let mut step = 0;
        let mut heading = |out: &mut String, title: &str| {
            step += 1;
            let _ = writeln!(out, "{step}. {title}");
        };
        heading(&mut out, "Unit files");
        for unit in &self.units {
            match &unit.change {
                FileChange::Create => {
                    let _ = writeln!(out, "   create {}", unit.path.display());
                    for line in unit.unit.content.lines() {
                        let _ = writeln!(out, "     + {line}");
                    }
                }
                FileChange::Update { diff } => {
                    let _ = writeln!(out, "   update {}", unit.path.display());
                    for line in diff.lines() {
                        let _ = writeln!(out, "     {line}");
                    }
                }
                FileChange::Unchanged => {
                    let _ = writeln!(out, "   unchanged {}", unit.path.display());
                }
            }
        }
        heading(&mut out, "Directories");
        for dir in &self.directories {
            let attr = match (dir.dir.cow, dir.nocow) {
                (Cow::Off, true) => "NOCOW",
                (Cow::Off, false) => "NOCOW not possible (not BTRFS)",
                (Cow::On, _) => "copy-on-write",
            };
            if dir.changes.is_empty() {
                let _ = writeln!(out, "   unchanged {} ({attr})", dir.dir.path.display());
            } else {
                let _ = writeln!(
                    out,
                    "   {} ({attr}): {}",
                    dir.dir.path.display(),
                    dir.changes.join("; ")
                );
            }
        }
        heading(&mut out, "Secrets (values are never shown)");
        for secret in &self.secrets {
            let what = if secret.exists {
                "exists, kept"
            } else {
                "create (generated)"
            };
            let _ = writeln!(out, "   {}: {what}", secret.name);
        }
        heading(&mut out, "Network");
        let _ = writeln!(
            out,
            "   {}",
            match &self.network {
                NetworkAction::Keep => "exists as configured".to_owned(),
                NetworkAction::Create => "created by its service at start".to_owned(),
                NetworkAction::Recreate { reason } =>
                    format!("recreate ({reason}): its containers stop first"),
            }
        );
        heading(&mut out, "systemd");
        let _ = writeln!(
            out,
            "   daemon-reload: {}",
            if self.daemon_reload {
                "yes"
            } else {
                "not needed"
            }
        );
        for service in &self.services {
            let action = match service.action {
                ServiceAction::Keep => "keep",
                ServiceAction::Start => "start",
                ServiceAction::Restart => "restart",
                ServiceAction::Wait => "wait for",
            };
            let _ = writeln!(out, "   {action} {} ({})", service.service, service.reason);
        }
        out
    }
}

/// A unified diff of two texts.
pub(crate) fn diff(old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(2)
        .header("on disk", "configured")
        .to_string()
}

/// How each unit file compares with the desired one.
pub(crate) fn unit_plans(deployment: &Deployment, podman: PodmanVersion) -> Result<Vec<UnitPlan>> {
    desired::units(deployment, podman)
        .into_iter()
        .map(|unit| {
            let path = unit.path(deployment);
            let change = match std::fs::read_to_string(&path) {
                Ok(existing) if existing == unit.content => FileChange::Unchanged,
                Ok(existing) => FileChange::Update {
                    diff: diff(&existing, &unit.content),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileChange::Create,
                Err(e) => {
                    return Err(Error::precondition(format!(
                        "cannot read the unit file {}: {e}",
                        path.display()
                    ))
                    .help("check the permissions of the unit directory"));
                }
            };
            Ok(UnitPlan {
                role: unit.role,
                path,
                service: unit.service.clone(),
                change,
                unit,
            })
        })
        .collect()
}

pub(crate) fn describe(change: &DirChange) -> String {
    match change {
        DirChange::CreatedParent { path } => format!("create parent {}", path.display()),
        DirChange::Created => "create".into(),
        DirChange::OwnerChanged { from, to } => format!(
            "change owner {}:{} to {}:{}",
            from.uid, from.gid, to.uid, to.gid
        ),
        DirChange::ModeChanged { from, to } => format!("change mode {from:o} to {to:o}"),
        DirChange::NocowSet { existing_entries } if *existing_entries > 0 => format!(
            "set NOCOW ({existing_entries} existing entries keep copy-on-write: audit them)"
        ),
        DirChange::NocowSet { .. } => "set NOCOW".into(),
        DirChange::NocowCleared => "keep copy-on-write (clear the inherited NOCOW)".into(),
    }
}

/// How a directory of the deployment must be. PostgreSQL's data directory,
/// where a rootful image mounts it above its cluster's own directory (the
/// layout of PostgreSQL 18's images), must let the container's server pass
/// through: root makes it, and the server runs as the image's own user.
pub(crate) fn dir_spec(deployment: &Deployment, dir: &Dir, nocow: Nocow) -> DirSpec {
    let spec = DirSpec::new(&dir.path).nocow(nocow);
    if dir.key == "postgres_dir"
        && !deployment.rootless
        && deployment.postgres_layout.mount_is_parent()
    {
        spec.mode(0o755)
    } else {
        spec
    }
}

/// The directories and what ensuring each would change.
pub(crate) fn dir_plans(deployment: &Deployment, nocow_possible: bool) -> Result<Vec<DirPlan>> {
    desired::dirs(deployment)
        .into_iter()
        .map(|dir| {
            let nocow = match (dir.cow, nocow_possible) {
                (Cow::Off, true) => Nocow::On,
                (Cow::On, true) => Nocow::Off,
                (_, false) => Nocow::Leave,
            };
            let spec = dir_spec(deployment, &dir, nocow);
            let report = homelab_btrfs::plan_dir(&spec).map_err(|e| {
                let help = match &e {
                    homelab_btrfs::Error::PermissionDenied { path, .. } => {
                        Some(deployment.rootless.then(|| crate::userns::foreign_owner_help(path)).flatten().unwrap_or_else(|| {
                            "run immich-db as the directory's owner (or as root), and check that \
                             neither it nor its parent is immutable (lsattr -d)"
                                .to_owned()
                        }))
                    }
                    _ => None,
                };
                Error::precondition(format!(
                    "the directory {} cannot be prepared: {e}",
                    dir.path.display()
                ))
                .at(format!("[storage] {}", dir.key))
                .help(help.unwrap_or_else(|| {
                    "fix the path in the configuration, or remove what is in the way".into()
                }))
            })?;
            Ok(DirPlan {
                nocow: nocow == Nocow::On,
                changes: report.changes.iter().map(describe).collect(),
                dir,
                spec,
            })
        })
        .collect()
}

/// Whether a service must be started or restarted.
///
/// `unit_changed`: its unit file is written by this deploy. `unit_written`:
/// when its (unchanged) unit file was last written; if that is after the
/// service last became active, an earlier deploy wrote it and stopped before
/// the restart.
pub(crate) fn decide_service(
    unit_changed: bool,
    network_recreated: bool,
    unit: &UnitState,
    unit_written: Option<chrono::DateTime<chrono::Utc>>,
) -> (ServiceAction, String) {
    let state = &unit.active;
    if *state == ActiveState::Activating && !unit_changed && !network_recreated {
        return (ServiceAction::Wait, "it is starting".into());
    }
    if !state.is_running() {
        return (ServiceAction::Start, format!("it is {state}"));
    }
    if network_recreated {
        return (ServiceAction::Restart, "its network is recreated".into());
    }
    if unit_changed {
        return (ServiceAction::Restart, "its unit file changes".into());
    }
    if let (Some(written), Some(since)) = (unit_written, unit.active_since)
        && written > since
    {
        return (
            ServiceAction::Restart,
            "its unit file changed after it started".into(),
        );
    }
    (ServiceAction::Keep, format!("{state}, up to date"))
}

fn modified(path: &std::path::Path) -> Option<chrono::DateTime<chrono::Utc>> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(modified.into())
}

/// Whether the existing Podman network matches the configuration.
pub(crate) async fn network_action(ctx: &Layer) -> Result<NetworkAction> {
    let d = &ctx.deployment;
    let name = d.podman_network();
    let exists = ctx
        .runtime
        .network_exists(&name)
        .await
        .map_err(|e| ctx.podman_failure("checking the network", &e))?;
    if !exists {
        return Ok(NetworkAction::Create);
    }
    let info = ctx
        .runtime
        .inspect_network(&name)
        .await
        .map_err(|e| ctx.podman_failure("inspecting the network", &e))?;
    let subnets: Vec<String> = info.subnets.iter().map(|s| s.subnet.to_string()).collect();
    let gateways: Vec<String> = info
        .subnets
        .iter()
        .filter_map(|s| s.gateway.map(|g| g.to_string()))
        .collect();
    let want_subnet = d.subnet.to_string();
    let want_gateway = d.gateway.to_string();
    if subnets != [want_subnet.clone()] {
        return Ok(NetworkAction::Recreate {
            reason: format!(
                "its subnet is {} instead of {want_subnet}",
                subnets.join(", ")
            ),
        });
    }
    if gateways != [want_gateway.clone()] {
        return Ok(NetworkAction::Recreate {
            reason: format!(
                "its gateway is {} instead of {want_gateway}",
                gateways.join(", ")
            ),
        });
    }
    let mut dns = info.dns_servers.clone();
    dns.sort();
    let mut want_dns = d.dns.clone();
    want_dns.sort();
    if dns != want_dns {
        return Ok(NetworkAction::Recreate {
            reason: "its DNS servers differ".into(),
        });
    }
    Ok(NetworkAction::Keep)
}

/// What systemd says of the deployment's units, in the order of
/// [`desired::unit_names`]: what [`plan_given`] needs of the manager.
pub(crate) async fn unit_states(ctx: &Layer) -> homelab_systemd::Result<Vec<UnitState>> {
    let units = desired::unit_names(&ctx.deployment);
    let names: Vec<&str> = units.iter().map(|u| u.service.as_str()).collect();
    ctx.systemd.units(&names).await
}

/// Computes the whole plan, changing nothing. The units are linted for the
/// podman release given; an error finding stops here, before anything is written.
#[cfg(test)]
pub(crate) async fn plan(
    ctx: &Layer,
    nocow_possible: bool,
    podman: Option<PodmanVersion>,
) -> Result<Plan> {
    plan_given(ctx, nocow_possible, podman, None, unit_states(ctx).await).await
}

/// [`plan`], with the units' states asked of systemd beforehand (by
/// [`unit_states`]). PostgreSQL's unit and directory follow the image's
/// `layout` where the host checks inspected it, else the deployment's own.
pub(crate) async fn plan_given(
    ctx: &Layer,
    nocow_possible: bool,
    podman: Option<PodmanVersion>,
    layout: Option<&PostgresLayout>,
    states: homelab_systemd::Result<Vec<UnitState>>,
) -> Result<Plan> {
    let inspected;
    let d = match layout {
        Some(layout) => {
            let mut d = ctx.deployment.clone();
            d.postgres_layout = layout.clone();
            inspected = d;
            &inspected
        }
        None => &ctx.deployment,
    };
    // The units are written for the installed release: its generator reads
    // them. Where it cannot be told, the host checks have failed already.
    let podman = podman.unwrap_or(PodmanVersion::V5_0);
    let units = unit_plans(d, podman)?;
    let desired: Vec<Unit> = units.iter().map(|u| u.unit.clone()).collect();
    let lint: Vec<LintNote> = desired::lint(&desired, podman, d.scope)
        .iter()
        .map(|f| LintNote {
            error: f.severity == homelab_quadlet::Severity::Error,
            text: f.to_string(),
        })
        .collect();
    if let Some(error) = lint.iter().find(|n| n.error) {
        return Err(Error::precondition(format!(
            "the units this configuration gives do not pass the Quadlet lint: {}",
            error.text
        ))
        .help("change the configuration (or upgrade podman) so that the units are valid; nothing was changed"));
    }
    let directories = dir_plans(d, nocow_possible)?;
    let mut secrets = Vec::new();
    for name in d.secret_names() {
        let exists = ctx
            .secrets
            .exists(name)
            .await
            .map_err(|e| Error::precondition(format!("cannot read the secret store: {e}")))?;
        secrets.push(SecretPlan {
            name: name.to_owned(),
            exists,
        });
    }
    let missing = |name: &str| secrets.iter().any(|s| s.name == name && !s.exists);
    if missing(&d.config.postgres.password_secret)
        && crate::set::database_initialised(&d.dirs.postgres)
    {
        return Err(crate::set::lost_postgres_password(ctx));
    }
    // Valkey reads its password from the secret when it starts: one that
    // runs while its secret is created anew restarts to take it.
    let valkey_secret_new =
        d.config.valkey.require_password && missing(&d.config.valkey.password_secret);
    let network = network_action(ctx).await?;

    let mut daemon_reload = units.iter().any(|u| u.change != FileChange::Unchanged);
    let mut services = Vec::new();
    let mut network_service_active = false;
    let all = states.map_err(|e| Error::precondition(e.to_string()))?;
    for (unit, state) in units.iter().zip(all) {
        let loaded = state.load == LoadState::Loaded;
        daemon_reload |= !loaded || state.need_daemon_reload;
        if unit.role == Role::Network {
            network_service_active = state.active == ActiveState::Active;
            continue;
        }
        let changed = unit.change != FileChange::Unchanged;
        let recreate = matches!(network, NetworkAction::Recreate { .. });
        let (mut action, mut reason) =
            decide_service(changed, recreate, &state, modified(&unit.path));
        if unit.role == Role::Valkey && valkey_secret_new && action == ServiceAction::Keep {
            action = ServiceAction::Restart;
            reason = "its password secret is created anew".into();
        }
        services.push(ServicePlan {
            service: unit.service.clone(),
            role: unit.role,
            action,
            reason,
            active_since: state.active_since,
            failed: state.active == ActiveState::Failed,
        });
    }
    // An earlier deploy may have written a unit and stopped before the reload:
    // whatever is restarted or recreated must run from the units on disk.
    daemon_reload |= matches!(network, NetworkAction::Recreate { .. })
        || services.iter().any(|s| s.action == ServiceAction::Restart);
    Ok(Plan {
        lint,
        units,
        directories,
        secrets,
        daemon_reload,
        network,
        network_service_active,
        services,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(active: ActiveState, since: Option<chrono::DateTime<chrono::Utc>>) -> UnitState {
        let mut state = UnitState::unknown("db.service");
        state.load = LoadState::Loaded;
        state.active = active;
        state.active_since = since;
        state
    }

    #[test]
    fn a_stopped_service_starts() {
        let stopped = unit(ActiveState::Inactive, None);
        assert_eq!(
            decide_service(false, false, &stopped, None).0,
            ServiceAction::Start
        );
        let failed = unit(ActiveState::Failed, None);
        assert_eq!(
            decide_service(true, true, &failed, None).0,
            ServiceAction::Start
        );
    }

    #[test]
    fn a_starting_service_is_waited_for() {
        let starting = unit(ActiveState::Activating, None);
        assert_eq!(
            decide_service(false, false, &starting, None).0,
            ServiceAction::Wait
        );
        assert_eq!(
            decide_service(true, false, &starting, None).0,
            ServiceAction::Restart
        );
    }

    #[test]
    fn only_what_changed_restarts() {
        let since = chrono::DateTime::from_timestamp(1_795_625_939, 399_570_000).unwrap();
        let active = unit(ActiveState::Active, Some(since));
        let before = Some(since - chrono::TimeDelta::microseconds(1));
        let after = Some(since + chrono::TimeDelta::microseconds(1));
        assert_eq!(
            decide_service(false, false, &active, before).0,
            ServiceAction::Keep
        );
        assert_eq!(
            decide_service(true, false, &active, before).0,
            ServiceAction::Restart
        );
        assert_eq!(
            decide_service(false, true, &active, before).0,
            ServiceAction::Restart
        );
        // Written by a deploy that stopped before restarting it.
        assert_eq!(
            decide_service(false, false, &active, after).0,
            ServiceAction::Restart
        );
    }

    #[test]
    fn diff_shows_changed_lines() {
        let d = diff("a\nb\n", "a\nc\n");
        assert!(d.contains("-b\n") && d.contains("+c\n"), "{d}");
    }
}
