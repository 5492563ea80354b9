//! `deploy`: every precondition first, then the network unit, storage, secrets,
//! container units, `daemon-reload`, start or restart what changed, wait for
//! health, verify.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use homelab_btrfs::ensure_dir;
use homelab_podman::HealthStatus;
use homelab_secrets::{Ensured, Policy, ensure};
use serde_json::json;

use crate::cli::DeployArgs;
use crate::context::Context;
use crate::desired::{self, Role};
use crate::error::{Failure, Result};
use crate::fault;
use crate::files::write_atomic;
use crate::lock;
use crate::output::{Outcome, Ui};
use crate::plan::{self, FileChange, NetworkAction, Plan, ServiceAction, UnitPlan};
use crate::preconditions;
use crate::systemd::{self, UNIT_PROPERTIES};
use crate::verify;

/// What a deploy did, for the report and for a failure part-way.
#[derive(Debug, Default)]
pub(crate) struct Done(pub(crate) Vec<String>);

impl Done {
    fn push(&mut self, ui: Ui, what: String) {
        ui.note(format!("  {what}"));
        self.0.push(what);
    }
    fn fail(&self, failure: Failure) -> Failure {
        failure.part_way(self.0.clone())
    }
}

fn write_unit(unit: &UnitPlan) -> std::io::Result<()> {
    write_atomic(&unit.path, unit.unit.content.as_bytes())
}

pub(crate) async fn run(ctx: &Context, args: &DeployArgs) -> Result<Outcome> {
    let ui = ctx.ui;
    let d = &ctx.deployment;
    let lock_path = lock::lock_path(d, ctx.runtime_dir.as_deref());
    let _lock = lock::acquire(&lock_path)?;

    ui.note("checking the host");
    let report = preconditions::check(ctx, args.allow_non_btrfs, true)
        .await
        .into_result()?;
    let warnings: Vec<_> = report.warnings().cloned().collect();
    for w in &warnings {
        ui.note(format!(
            "warning: {}{}",
            w.detail,
            w.fix
                .as_deref()
                .map(|f| format!(" (fix: {f})"))
                .unwrap_or_default()
        ));
    }
    let plan = plan::plan(ctx, report.nocow_possible, report.podman_version).await?;
    if plan.is_empty() {
        return Outcome::ok(
            json!({"ok": true, "changed": false, "done": [], "warnings": warnings}),
            "No changes: the deployment is as configured; nothing was restarted.",
        );
    }

    let mut done = Done::default();
    let outcome = apply(ctx, &plan, &mut done).await;
    match outcome {
        Ok(verification) => {
            let failed = !verification.ok;
            if failed {
                let list: Vec<String> = verification
                    .checks
                    .iter()
                    .filter(|c| !c.ok && c.severity == verify::Severity::Error)
                    .map(|c| format!("{}: {}", c.name, c.detail))
                    .collect();
                return Err(done.fail(
                    Failure::new(
                        crate::error::Exit::DeployFailed,
                        format!("the deployment does not verify: {}", list.join("; ")),
                    )
                    .help("run `immich-db verify` and `immich-db status` for details"),
                ));
            }
            let human = format!(
                "{}\ndeploy: done; {} change(s), all checks passed",
                verification.render(),
                done.0.len()
            );
            Outcome::ok(
                json!({
                    "ok": true,
                    "changed": true,
                    "done": done.0,
                    "warnings": warnings,
                    "plan": plan,
                    "verify": verification,
                }),
                human,
            )
        }
        Err(failure) => Err(done.fail(failure)),
    }
}

fn policy_for(ctx: &Context, name: &str) -> Policy {
    let c = &ctx.deployment.config;
    if name == c.postgres.password_secret {
        Policy::postgres_password()
    } else if name == c.valkey.password_secret {
        Policy::valkey_password()
    } else {
        Policy::signing_key()
    }
}

pub(crate) async fn apply(
    ctx: &Context,
    plan: &Plan,
    done: &mut Done,
) -> Result<verify::Verification> {
    let ui = ctx.ui;
    let d = &ctx.deployment;

    fault::point("network");
    for unit in plan.units.iter().filter(|u| u.role == Role::Network) {
        if unit.change != FileChange::Unchanged {
            write_unit(unit).map_err(|e| {
                Failure::internal(format!("cannot write {}: {e}", unit.path.display()))
            })?;
            done.push(
                ui,
                format!("wrote the network unit {}", unit.path.display()),
            );
        }
    }

    fault::point("storage");
    for dir in &plan.directories {
        if dir.changes.is_empty() {
            continue;
        }
        let report = ensure_dir(&dir.spec).map_err(|e| {
            Failure::internal(format!("cannot prepare {}: {e}", dir.dir.path.display()))
                .at(format!("[storage] {}", dir.dir.key))
        })?;
        if !report.is_unchanged() {
            let changes: Vec<String> = report.changes.iter().map(plan::describe).collect();
            done.push(
                ui,
                format!(
                    "prepared {} ({})",
                    dir.dir.path.display(),
                    changes.join("; ")
                ),
            );
        }
    }

    fault::point("secrets");
    for secret in &plan.secrets {
        let policy = policy_for(ctx, &secret.name);
        match ensure(ctx.secrets.as_ref(), &secret.name, &policy).await {
            Ok(Ensured::Created) => {
                done.push(
                    ui,
                    format!("created the secret {} (generated)", secret.name),
                );
            }
            Ok(Ensured::Kept { findings }) => {
                for finding in findings {
                    ui.note(format!(
                        "warning: secret {}: {finding}; fix: immich-db secrets rotate {}",
                        secret.name, secret.name
                    ));
                }
            }
            Ok(_) => {}
            Err(e) => {
                return Err(Failure::internal(format!(
                    "cannot ensure the secret {}: {e}",
                    secret.name
                )));
            }
        }
    }

    fault::point("units");
    for unit in plan.units.iter().filter(|u| u.role != Role::Network) {
        if unit.change != FileChange::Unchanged {
            write_unit(unit).map_err(|e| {
                Failure::internal(format!("cannot write {}: {e}", unit.path.display()))
            })?;
            done.push(ui, format!("wrote the unit {}", unit.path.display()));
        }
    }

    fault::point("reload");
    if plan.daemon_reload {
        ctx.systemd
            .daemon_reload()
            .map_err(|e| Failure::internal(e.to_string()))?;
        done.push(ui, "reloaded systemd (daemon-reload)".into());
    }

    fault::point("start");
    let containers: Vec<String> = plan.services.iter().map(|s| s.service.clone()).collect();
    let network_service = d.network_service();
    let sys = |e: systemd::SystemdError| Failure::internal(e.to_string());
    match &plan.network {
        NetworkAction::Recreate { reason } => {
            ui.note(format!("  recreating the network ({reason})"));
            ctx.systemd.stop(&containers).map_err(sys)?;
            ctx.systemd
                .stop(std::slice::from_ref(&network_service))
                .map_err(sys)?;
            match ctx.runtime.remove_network(&d.podman_network()).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(ctx.podman_failure("removing the old network", &e)),
            }
            ctx.systemd
                .start(std::slice::from_ref(&network_service), true)
                .map_err(sys)?;
            done.push(ui, format!("recreated the network {}", d.podman_network()));
        }
        NetworkAction::Create => {
            // A network service still active from before would not create it
            // again.
            ctx.systemd
                .restart(std::slice::from_ref(&network_service), true)
                .map_err(sys)?;
            done.push(ui, format!("created the network {}", d.podman_network()));
        }
        NetworkAction::Keep => {}
    }
    let mut waiting = Vec::new();
    for service in &plan.services {
        let before = ctx
            .systemd
            .show(&service.service, UNIT_PROPERTIES)
            .map_err(sys)?;
        let since = systemd::timestamp_us(&before, "ActiveEnterTimestamp");
        let recreated = matches!(plan.network, NetworkAction::Recreate { .. });
        let action = if recreated {
            ServiceAction::Start
        } else {
            service.action
        };
        match action {
            ServiceAction::Keep => continue,
            ServiceAction::Wait => {}
            ServiceAction::Start => {
                ctx.systemd
                    .reset_failed(std::slice::from_ref(&service.service))
                    .map_err(sys)?;
                ctx.systemd
                    .start(std::slice::from_ref(&service.service), false)
                    .map_err(sys)?;
                done.push(
                    ui,
                    format!("started {} ({})", service.service, service.reason),
                );
            }
            ServiceAction::Restart => {
                ctx.systemd
                    .restart(std::slice::from_ref(&service.service), false)
                    .map_err(sys)?;
                done.push(
                    ui,
                    format!("restarted {} ({})", service.service, service.reason),
                );
            }
        }
        waiting.push((service.service.clone(), service.role, since));
    }

    fault::point("health");
    wait_for_health(ctx, &waiting).await?;

    fault::point("verify");
    ui.note("verifying");
    Ok(verify::verify(ctx).await)
}

/// Waits until every started service is active (with `Notify=healthy`, that is
/// when its container is healthy), showing progress.
async fn wait_for_health(ctx: &Context, waiting: &[(String, Role, Option<i64>)]) -> Result<()> {
    if waiting.is_empty() {
        return Ok(());
    }
    let ui = ctx.ui;
    let start = Instant::now();
    let limit = Duration::from_secs(desired::POSTGRES_START_TIMEOUT_S + 30);
    let bars = ui.is_terminal().then(|| {
        let multi = indicatif::MultiProgress::new();
        let style =
            indicatif::ProgressStyle::with_template("{spinner} {prefix}: {msg} ({elapsed})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
        let bars: BTreeMap<String, indicatif::ProgressBar> = waiting
            .iter()
            .map(|(service, _, _)| {
                let bar = multi.add(indicatif::ProgressBar::new_spinner());
                bar.set_style(style.clone());
                bar.set_prefix(service.clone());
                bar.enable_steady_tick(Duration::from_millis(120));
                (service.clone(), bar)
            })
            .collect();
        (multi, bars)
    });
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    let mut pending: Vec<&(String, Role, Option<i64>)> = waiting.iter().collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for entry in pending {
            let (service, role, since) = entry;
            let props = ctx
                .systemd
                .show(service, UNIT_PROPERTIES)
                .map_err(|e| Failure::internal(e.to_string()))?;
            let state = props.get("ActiveState").cloned().unwrap_or_default();
            let entered = systemd::timestamp_us(&props, "ActiveEnterTimestamp");
            let fresh = match (since, entered) {
                (Some(before), Some(now)) => now > *before,
                _ => true,
            };
            let container = match role {
                Role::Postgres => &ctx.deployment.config.postgres.container_name,
                _ => &ctx.deployment.config.valkey.container_name,
            };
            if state == "active" && fresh {
                let message = "healthy".to_owned();
                if let Some((_, bars)) = &bars {
                    if let Some(bar) = bars.get(service) {
                        bar.finish_with_message(message);
                    }
                } else {
                    ui.note(format!(
                        "  {service}: healthy after {:.1} s",
                        start.elapsed().as_secs_f64()
                    ));
                }
                continue;
            }
            if state == "failed" {
                let logs = ctx
                    .runtime
                    .container_logs(container, 15)
                    .await
                    .map(|lines| {
                        lines
                            .into_iter()
                            .map(|l| l.text)
                            .collect::<Vec<_>>()
                            .join("\n    ")
                    })
                    .unwrap_or_default();
                return Err(Failure::internal(format!(
                    "{service} failed to start{}",
                    if logs.is_empty() {
                        String::new()
                    } else {
                        format!("; the container's last lines:\n    {logs}")
                    }
                ))
                .help(format!(
                    "see `journalctl --user -u {service}` (or without --user for the system scope)"
                )));
            }
            let health = match ctx.runtime.inspect_container(container).await {
                Ok(info)
                    if info.state.running
                        && info.health_status() == Some(&HealthStatus::Starting) =>
                {
                    // Podman's own timer runs the startup check once a second;
                    // running it now as well sees readiness sooner. The service
                    // still becomes active only through `Notify=healthy`.
                    match ctx.runtime.run_health_check(container).await {
                        Ok(h) => h.status.to_string(),
                        Err(_) => HealthStatus::Starting.to_string(),
                    }
                }
                Ok(info) => info
                    .health_status()
                    .map_or_else(|| info.state.status.to_string(), ToString::to_string),
                Err(_) => "no container yet".into(),
            };
            let message = format!("{state}, {health}");
            if let Some((_, bars)) = &bars {
                if let Some(bar) = bars.get(service) {
                    bar.set_message(message);
                }
            } else if last.get(service) != Some(&message) {
                ui.note(format!("  {service}: {message}"));
                last.insert(service.clone(), message);
            }
            still.push(entry);
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if start.elapsed() > limit {
            let names: Vec<&str> = pending.iter().map(|(s, _, _)| s.as_str()).collect();
            return Err(Failure::internal(format!(
                "{} did not become healthy within {} s",
                names.join(", "),
                limit.as_secs()
            ))
            .help("see `immich-db status` and the service's journal"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some((multi, _)) = bars {
        let _ = multi.clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Deploy logic against the recording fakes of systemd and Podman; the real
    //! parts are exercised by the tests in `tests/`.

    use std::sync::Arc;

    use homelab_podman::{FakeRuntime, ImageInfo, NetworkInfo, NetworkSubnet};

    use super::*;
    use crate::config::{Loaded, Origin, parse, validate};
    use crate::output::Ui;
    use crate::systemd::FakeSystemd;

    struct Fixture {
        _dir: tempfile::TempDir,
        ctx: Context,
        runtime: FakeRuntime,
    }

    fn fixture(extra: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[storage]\npool = {:?}\n[systemd]\nunit_dir = {:?}\n{extra}",
            dir.path().join("pool").display().to_string(),
            dir.path().join("units").display().to_string(),
        );
        std::fs::create_dir(dir.path().join("pool")).unwrap();
        let loaded: Loaded = parse(&text, Origin::Defaults).unwrap();
        let deployment = validate(&loaded).unwrap();
        let runtime = FakeRuntime::new();
        for image in [
            &deployment.config.postgres.image,
            &deployment.config.valkey.image,
        ] {
            runtime.add_image(&ImageInfo {
                id: "0".repeat(64),
                digest: None,
                tags: vec![image.clone()],
                created: None,
                size: 1,
                labels: std::collections::BTreeMap::new(),
                architecture: None,
                os: None,
            });
        }
        let ctx = Context {
            deployment,
            systemd: Box::new(FakeSystemd::default()),
            runtime: Arc::new(runtime.clone()),
            secrets: Arc::new(runtime.clone()),
            ui: Ui { json: true },
            runtime_dir: Some(dir.path().to_path_buf()),
        };
        Fixture {
            _dir: dir,
            ctx,
            runtime,
        }
    }

    /// What the network service would create.
    fn network_created(f: &Fixture) {
        let d = &f.ctx.deployment;
        f.runtime.add_network(NetworkInfo {
            name: d.podman_network(),
            id: "1".repeat(64),
            driver: "bridge".into(),
            interface: None,
            subnets: vec![NetworkSubnet {
                subnet: homelab_podman::Cidr::new(d.subnet.address(), d.subnet.prefix()).unwrap(),
                gateway: Some(d.gateway),
            }],
            dns_servers: Vec::new(),
            dns_enabled: true,
            internal: false,
            labels: std::collections::BTreeMap::new(),
            containers: std::collections::BTreeMap::new(),
        });
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn fake(ctx: &Context) -> &FakeSystemd {
        // SAFETY-free downcast: the fixture always holds a FakeSystemd.
        let any: &dyn std::any::Any = ctx.systemd.as_any();
        any.downcast_ref().unwrap()
    }

    #[test]
    fn from_nothing_then_no_changes() {
        let f = fixture("");
        block_on(async {
            let plan = plan::plan(&f.ctx, false, Some((5, 4, 2))).await.unwrap();
            assert!(plan.units.iter().all(|u| u.change == FileChange::Create));
            assert!(plan.secrets.iter().all(|s| !s.exists));
            assert!(plan.daemon_reload);
            assert_eq!(plan.network, NetworkAction::Create);
            assert!(
                plan.services
                    .iter()
                    .all(|s| s.action == ServiceAction::Start)
            );

            let mut done = Done::default();
            let _ = apply(&f.ctx, &plan, &mut done).await.unwrap();
            let calls = fake(&f.ctx).calls();
            assert_eq!(
                calls,
                [
                    "daemon-reload",
                    "restart photos-network.service",
                    "start postgresql-immich.service",
                    "start redis-immich.service",
                ]
            );
            for unit in &plan.units {
                assert_eq!(
                    std::fs::read_to_string(&unit.path).unwrap(),
                    unit.unit.content
                );
            }
            let pg = f.runtime.secret_value("postgres-password").unwrap();
            assert!(pg.expose().iter().all(u8::is_ascii_alphanumeric));
            assert!(f.runtime.secret_value("redis-password").is_some());
            assert!(f.runtime.secret_value("immich-jwt-secret").is_some());

            network_created(&f);
            let again = plan::plan(&f.ctx, false, Some((5, 4, 2))).await.unwrap();
            assert!(again.is_empty(), "{}", again.render());
            assert_eq!(
                again.render(),
                "No changes: the deployment is as configured."
            );
            // Secrets are never regenerated.
            let mut done = Done::default();
            let _ = apply(&f.ctx, &again, &mut done).await.unwrap();
            assert_eq!(f.runtime.secret_value("postgres-password").unwrap(), pg);
        });
    }

    #[test]
    fn only_the_changed_unit_restarts() {
        let mut f = fixture("");
        block_on(async {
            let plan = plan::plan(&f.ctx, false, Some((5, 4, 2))).await.unwrap();
            let _ = apply(&f.ctx, &plan, &mut Done::default()).await.unwrap();
            network_created(&f);
        });
        f.ctx.deployment.config.postgres.shm_size = "256m".into();
        block_on(async {
            let plan = plan::plan(&f.ctx, false, Some((5, 4, 2))).await.unwrap();
            let pg = &plan.units[1];
            let FileChange::Update { diff } = &pg.change else {
                panic!("{:?}", pg.change)
            };
            assert!(
                diff.contains("-ShmSize=128m") && diff.contains("+ShmSize=256m"),
                "{diff}"
            );
            assert_eq!(plan.units[2].change, FileChange::Unchanged);
            let actions: Vec<_> = plan.services.iter().map(|s| s.action).collect();
            assert_eq!(actions, [ServiceAction::Restart, ServiceAction::Keep]);
            assert_eq!(plan.network, NetworkAction::Keep);
            assert!(plan.daemon_reload);
            let before = fake(&f.ctx).calls().len();
            let _ = apply(&f.ctx, &plan, &mut Done::default()).await.unwrap();
            assert_eq!(
                fake(&f.ctx).calls()[before..],
                ["daemon-reload", "restart postgresql-immich.service"]
            );
        });
    }

    #[test]
    fn a_changed_subnet_recreates_the_network_and_restarts_both() {
        let mut f = fixture("");
        block_on(async {
            let plan = plan::plan(&f.ctx, false, Some((5, 4, 2))).await.unwrap();
            let _ = apply(&f.ctx, &plan, &mut Done::default()).await.unwrap();
            network_created(&f);
        });
        f.ctx.deployment.subnet = "10.99.0.0/24".parse().unwrap();
        f.ctx.deployment.gateway = "10.99.0.1".parse().unwrap();
        block_on(async {
            let plan = plan::plan(&f.ctx, false, Some((5, 4, 2))).await.unwrap();
            assert!(
                matches!(plan.network, NetworkAction::Recreate { .. }),
                "{:?}",
                plan.network
            );
            assert!(
                plan.services
                    .iter()
                    .all(|s| s.action == ServiceAction::Restart)
            );
            let before = fake(&f.ctx).calls().len();
            let _ = apply(&f.ctx, &plan, &mut Done::default()).await.unwrap();
            assert_eq!(
                fake(&f.ctx).calls()[before..],
                [
                    "daemon-reload",
                    "stop postgresql-immich.service redis-immich.service",
                    "stop photos-network.service",
                    "start photos-network.service",
                    "start postgresql-immich.service",
                    "start redis-immich.service",
                ]
            );
            assert_eq!(
                f.runtime.calls_to(homelab_podman::Operation::RemoveNetwork),
                ["systemd-photos"]
            );
        });
    }
}
