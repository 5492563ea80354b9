//! What `deploy` would change: unit files (with diffs), directories, secrets, the
//! network, and which services to start or restart. `plan` prints it; `deploy`
//! carries it out.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use homelab_btrfs::{DirChange, DirSpec, Nocow};
use homelab_quadlet::PodmanVersion;
use serde::Serialize;

use crate::config::Deployment;
use crate::context::Context;
use crate::desired::{self, Cow, Dir, Role, Unit};
use crate::error::{Failure, Result};
use crate::systemd::{self, UNIT_PROPERTIES};

/// How a file compares with what it must be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "lowercase")]
pub(crate) enum FileChange {
    Create,
    Update { diff: String },
    Unchanged,
}

/// A unit file and how it changes.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct UnitPlan {
    pub(crate) role: Role,
    pub(crate) path: PathBuf,
    pub(crate) service: String,
    #[serde(flatten)]
    pub(crate) change: FileChange,
    #[serde(skip)]
    pub(crate) unit: Unit,
}

/// A directory and what ensuring it changes.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DirPlan {
    #[serde(flatten)]
    pub(crate) dir: Dir,
    /// Whether NOCOW is asked for (false when the pool is not BTRFS and the
    /// operator chose to proceed).
    pub(crate) nocow: bool,
    pub(crate) changes: Vec<String>,
    #[serde(skip)]
    pub(crate) spec: DirSpec,
}

/// A secret and whether it must be created.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SecretPlan {
    pub(crate) name: String,
    pub(crate) exists: bool,
}

/// What happens to the Podman network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub(crate) enum NetworkAction {
    /// It exists as configured.
    Keep,
    /// It does not exist: its service creates it.
    Create,
    /// It exists with other settings: stop its containers, remove it, create it
    /// again.
    Recreate { reason: String },
}

/// What happens to a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ServiceAction {
    Keep,
    Start,
    Restart,
    /// It is starting already (an earlier deploy started it): wait for it.
    Wait,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ServicePlan {
    pub(crate) service: String,
    pub(crate) role: Role,
    pub(crate) action: ServiceAction,
    pub(crate) reason: String,
    /// When it last became active before this plan (to tell a restart apart).
    #[serde(skip)]
    pub(crate) active_since: Option<i64>,
    /// Whether systemd holds it as failed.
    #[serde(skip)]
    pub(crate) failed: bool,
}

/// A lint finding on the units about to be written.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LintNote {
    pub(crate) error: bool,
    pub(crate) text: String,
}

/// Everything `deploy` would do.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Plan {
    /// What the quadlet lint says of the units (checked before they are written).
    pub(crate) lint: Vec<LintNote>,
    pub(crate) units: Vec<UnitPlan>,
    pub(crate) directories: Vec<DirPlan>,
    pub(crate) secrets: Vec<SecretPlan>,
    pub(crate) daemon_reload: bool,
    pub(crate) network: NetworkAction,
    /// Whether the network's service is active (it would not create a missing
    /// network again).
    #[serde(skip)]
    pub(crate) network_service_active: bool,
    pub(crate) services: Vec<ServicePlan>,
}

impl Plan {
    /// Whether deploy has nothing to do.
    pub(crate) fn is_empty(&self) -> bool {
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

    /// The plan as text for a person.
    pub(crate) fn render(&self) -> String {
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
                    return Err(Failure::precondition(format!(
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
            let spec = DirSpec::new(&dir.path).nocow(nocow);
            let report = homelab_btrfs::plan_dir(&spec).map_err(|e| {
                let help = match &e {
                    homelab_btrfs::Error::PermissionDenied { path, .. } if deployment.rootless => {
                        crate::userns::foreign_owner_help(path)
                    }
                    _ => None,
                };
                Failure::precondition(format!(
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
/// `unit_changed`: its unit file is written by this deploy. `unit_mtime_us`: when
/// its (unchanged) unit file was last written; if that is after the service last
/// became active, an earlier deploy wrote it and stopped before the restart.
pub(crate) fn decide_service(
    unit_changed: bool,
    network_recreated: bool,
    props: &BTreeMap<String, String>,
    unit_mtime_us: Option<i64>,
) -> (ServiceAction, String) {
    let state = props.get("ActiveState").map_or("unknown", String::as_str);
    if state == "activating" && !unit_changed && !network_recreated {
        return (ServiceAction::Wait, "it is starting".into());
    }
    let running = matches!(state, "active" | "activating" | "reloading");
    if !running {
        return (ServiceAction::Start, format!("it is {state}"));
    }
    if network_recreated {
        return (ServiceAction::Restart, "its network is recreated".into());
    }
    if unit_changed {
        return (ServiceAction::Restart, "its unit file changes".into());
    }
    let since = systemd::timestamp_us(props, "ActiveEnterTimestamp");
    if let (Some(written), Some(since)) = (unit_mtime_us, since)
        && written > since
    {
        return (
            ServiceAction::Restart,
            "its unit file changed after it started".into(),
        );
    }
    (ServiceAction::Keep, format!("{state}, up to date"))
}

fn mtime_us(path: &std::path::Path) -> Option<i64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let d = modified.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(d.as_micros()).ok()
}

/// Whether the existing Podman network matches the configuration.
pub(crate) async fn network_action(ctx: &Context) -> Result<NetworkAction> {
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
pub(crate) fn unit_states(ctx: &Context) -> systemd::SystemdResult<Vec<BTreeMap<String, String>>> {
    let units = desired::unit_names(&ctx.deployment);
    let names: Vec<&str> = units.iter().map(|u| u.service.as_str()).collect();
    ctx.systemd.show_all(&names, UNIT_PROPERTIES)
}

/// Computes the whole plan, changing nothing. The units are linted for the
/// podman release given; an error finding stops here, before anything is written.
pub(crate) async fn plan(
    ctx: &Context,
    nocow_possible: bool,
    podman: Option<PodmanVersion>,
) -> Result<Plan> {
    plan_given(ctx, nocow_possible, podman, unit_states(ctx)).await
}

/// [`plan`], with the units' states asked of systemd beforehand (by
/// [`unit_states`]).
pub(crate) async fn plan_given(
    ctx: &Context,
    nocow_possible: bool,
    podman: Option<PodmanVersion>,
    states: systemd::SystemdResult<Vec<BTreeMap<String, String>>>,
) -> Result<Plan> {
    let d = &ctx.deployment;
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
        return Err(Failure::precondition(format!(
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
            .map_err(|e| Failure::precondition(format!("cannot read the secret store: {e}")))?;
        secrets.push(SecretPlan {
            name: name.to_owned(),
            exists,
        });
    }
    let network = network_action(ctx).await?;

    let mut daemon_reload = units.iter().any(|u| u.change != FileChange::Unchanged);
    let mut services = Vec::new();
    let mut network_service_active = false;
    let all = states.map_err(|e| Failure::precondition(e.to_string()))?;
    for (unit, props) in units.iter().zip(all) {
        let loaded = props.get("LoadState").is_some_and(|s| s == "loaded");
        let stale = props.get("NeedDaemonReload").is_some_and(|s| s == "yes");
        daemon_reload |= !loaded || stale;
        if unit.role == Role::Network {
            network_service_active = props.get("ActiveState").is_some_and(|s| s == "active");
            continue;
        }
        let changed = unit.change != FileChange::Unchanged;
        let recreate = matches!(network, NetworkAction::Recreate { .. });
        let (action, reason) = decide_service(changed, recreate, &props, mtime_us(&unit.path));
        services.push(ServicePlan {
            service: unit.service.clone(),
            role: unit.role,
            action,
            reason,
            active_since: systemd::timestamp_us(&props, "ActiveEnterTimestamp"),
            failed: props.get("ActiveState").is_some_and(|s| s == "failed"),
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
    use crate::systemd::parse_show;

    #[test]
    fn a_stopped_service_starts() {
        let props = parse_show("ActiveState=inactive\n");
        assert_eq!(
            decide_service(false, false, &props, None).0,
            ServiceAction::Start
        );
        let props = parse_show("ActiveState=failed\n");
        assert_eq!(
            decide_service(true, true, &props, None).0,
            ServiceAction::Start
        );
    }

    #[test]
    fn a_starting_service_is_waited_for() {
        let props = parse_show("ActiveState=activating\n");
        assert_eq!(
            decide_service(false, false, &props, None).0,
            ServiceAction::Wait
        );
        assert_eq!(
            decide_service(true, false, &props, None).0,
            ServiceAction::Restart
        );
    }

    #[test]
    fn only_what_changed_restarts() {
        let props = parse_show(
            "ActiveState=active\nActiveEnterTimestamp=Wed 2026-11-25 16:58:59.399570 UTC\n",
        );
        let since = systemd::timestamp_us(&props, "ActiveEnterTimestamp").unwrap();
        assert_eq!(
            decide_service(false, false, &props, Some(since - 1)).0,
            ServiceAction::Keep
        );
        assert_eq!(
            decide_service(true, false, &props, Some(since - 1)).0,
            ServiceAction::Restart
        );
        assert_eq!(
            decide_service(false, true, &props, Some(since - 1)).0,
            ServiceAction::Restart
        );
        // Written by a deploy that stopped before restarting it.
        assert_eq!(
            decide_service(false, false, &props, Some(since + 1)).0,
            ServiceAction::Restart
        );
    }

    #[test]
    fn diff_shows_changed_lines() {
        let d = diff("a\nb\n", "a\nc\n");
        assert!(d.contains("-b\n") && d.contains("+c\n"), "{d}");
    }
}
