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
use crate::plan::{self, FileChange, NetworkAction, Plan, ServiceAction, ServicePlan, UnitPlan};
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
            // Starting a container starts its network's service, which creates
            // the network; but a service still active from before would not
            // create it again.
            let props = ctx
                .systemd
                .show(&network_service, &["ActiveState"])
                .map_err(sys)?;
            if props.get("ActiveState").is_some_and(|s| s == "active") {
                ctx.systemd
                    .restart(std::slice::from_ref(&network_service), true)
                    .map_err(sys)?;
                done.push(ui, format!("created the network {}", d.podman_network()));
            }
        }
        NetworkAction::Keep => {}
    }
    let recreated = matches!(plan.network, NetworkAction::Recreate { .. });
    let mut waiting = Vec::new();
    let mut to_start = Vec::new();
    let mut to_restart = Vec::new();
    for service in &plan.services {
        let before = ctx
            .systemd
            .show(&service.service, UNIT_PROPERTIES)
            .map_err(sys)?;
        let since = systemd::timestamp_us(&before, "ActiveEnterTimestamp");
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
            since,
        });
    }
    let names =
        |list: &[&ServicePlan]| -> Vec<String> { list.iter().map(|s| s.service.clone()).collect() };
    if !to_start.is_empty() {
        ctx.systemd.reset_failed(&names(&to_start)).map_err(sys)?;
        ctx.systemd.start(&names(&to_start), false).map_err(sys)?;
        for s in &to_start {
            done.push(ui, format!("started {} ({})", s.service, s.reason));
        }
    }
    if !to_restart.is_empty() {
        ctx.systemd
            .restart(&names(&to_restart), false)
            .map_err(sys)?;
        for s in &to_restart {
            done.push(ui, format!("restarted {} ({})", s.service, s.reason));
        }
    }

    // Each service is verified as soon as it is healthy; what they share, once
    // both are.
    fault::point("health");
    let progress = Progress::new(ui, &waiting);
    let part = |role: Role| {
        let progress = &progress;
        let waiting = &waiting;
        async move {
            if let Some(w) = waiting.iter().find(|w| w.role == role) {
                wait_one(ctx, w, progress).await?;
            }
            Ok::<_, Failure>(match role {
                Role::Postgres => verify::postgres_part(ctx).await,
                _ => verify::valkey_part(ctx).await,
            })
        }
    };
    let (postgres, valkey) = tokio::join!(part(Role::Postgres), part(Role::Valkey));
    progress.finish();
    let (postgres, valkey) = (postgres?, valkey?);

    fault::point("verify");
    ui.note("verifying");
    let common = verify::common_part(ctx).await;
    Ok(verify::assemble(common, postgres, valkey))
}

/// A service deploy started (or found starting) and waits for.
#[derive(Debug)]
struct Waiting {
    service: String,
    role: Role,
    /// When it last became active before this deploy, to tell a restart apart.
    since: Option<i64>,
}

/// The live display: a spinner per service on a terminal, plain lines otherwise.
struct Progress {
    ui: Ui,
    start: Instant,
    bars: Option<(
        indicatif::MultiProgress,
        BTreeMap<String, indicatif::ProgressBar>,
    )>,
}

impl Progress {
    fn new(ui: Ui, waiting: &[Waiting]) -> Self {
        let bars = (ui.is_terminal() && !waiting.is_empty()).then(|| {
            let multi = indicatif::MultiProgress::new();
            let style =
                indicatif::ProgressStyle::with_template("{spinner} {prefix}: {msg} ({elapsed})")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
            let bars = waiting
                .iter()
                .map(|w| {
                    let bar = multi.add(indicatif::ProgressBar::new_spinner());
                    bar.set_style(style.clone());
                    bar.set_prefix(w.service.clone());
                    bar.enable_steady_tick(Duration::from_millis(120));
                    (w.service.clone(), bar)
                })
                .collect();
            (multi, bars)
        });
        Self {
            ui,
            start: Instant::now(),
            bars,
        }
    }

    /// Shows a state; `last` keeps plain output to one line per change.
    fn show(&self, service: &str, message: &str, last: &mut String) {
        if let Some(bar) = self.bars.as_ref().and_then(|(_, bars)| bars.get(service)) {
            bar.set_message(message.to_owned());
        } else if last != message {
            self.ui.note(format!("  {service}: {message}"));
            message.clone_into(last);
        }
    }

    fn healthy(&self, service: &str) {
        let after = format!("healthy after {:.1} s", self.start.elapsed().as_secs_f64());
        if let Some(bar) = self.bars.as_ref().and_then(|(_, bars)| bars.get(service)) {
            bar.finish_with_message(after);
        } else {
            self.ui.note(format!("  {service}: {after}"));
        }
    }

    fn finish(&self) {
        if let Some((multi, _)) = &self.bars {
            let _ = multi.clear();
        }
    }
}

/// Waits until a started service is active (with `Notify=healthy`, that is when
/// its container is healthy).
async fn wait_one(ctx: &Context, w: &Waiting, progress: &Progress) -> Result<()> {
    let limit = Duration::from_secs(
        match w.role {
            Role::Postgres => desired::POSTGRES_START_TIMEOUT_S,
            _ => desired::VALKEY_START_TIMEOUT_S,
        } + 30,
    );
    let container = match w.role {
        Role::Postgres => &ctx.deployment.config.postgres.container_name,
        _ => &ctx.deployment.config.valkey.container_name,
    };
    let service = &w.service;
    let mut last = String::new();
    loop {
        let props = ctx
            .systemd
            .show(service, UNIT_PROPERTIES)
            .map_err(|e| Failure::internal(e.to_string()))?;
        let state = props.get("ActiveState").cloned().unwrap_or_default();
        let entered = systemd::timestamp_us(&props, "ActiveEnterTimestamp");
        let fresh = match (w.since, entered) {
            (Some(before), Some(now)) => now > before,
            _ => true,
        };
        if state == "active" && fresh {
            progress.healthy(service);
            return Ok(());
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
                if info.state.running && info.health_status() == Some(&HealthStatus::Starting) =>
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
        progress.show(service, &format!("{state}, {health}"), &mut last);
        if progress.start.elapsed() > limit {
            return Err(Failure::internal(format!(
                "{service} did not become healthy within {} s",
                limit.as_secs()
            ))
            .help("see `immich-db status` and the service's journal"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    use crate::systemd::{FakeSystemd, Systemd as _};

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

    /// What the network service would create (it starts with the containers).
    fn network_created(f: &Fixture) {
        let d = &f.ctx.deployment;
        let _ = fake(&f.ctx).start(&[d.network_service()], true);
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
        // The fixture always holds a FakeSystemd.
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
                    "start postgresql-immich.service redis-immich.service",
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
                    "start postgresql-immich.service redis-immich.service",
                ]
            );
            assert_eq!(
                f.runtime.calls_to(homelab_podman::Operation::RemoveNetwork),
                ["systemd-photos"]
            );
        });
    }
}
