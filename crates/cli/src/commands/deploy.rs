//! `deploy`: every precondition first, then the network unit, storage, secrets,
//! container units, `daemon-reload`, start or restart what changed, wait for
//! health, verify.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use homelab_btrfs::ensure_dir;
use homelab_podman::HealthStatus;
use homelab_secrets::{Ensured, Policy, ensure};
use serde_json::json;
use tokio::sync::oneshot;

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
use crate::systemd::{self, Job, JobWatch};
use crate::timings;
use crate::verify;

/// How old the units' states asked beside the host checks may be when the plan
/// uses them.
const FRESH_STATES: Duration = Duration::from_secs(1);

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

/// The containers whose last health check did not pass, each with its state.
async fn unhealthy_containers(ctx: &Context) -> Vec<String> {
    let config = &ctx.deployment.config;
    let names = [
        &config.postgres.container_name,
        &config.valkey.container_name,
    ];
    let (postgres, valkey) = tokio::join!(
        ctx.runtime.inspect_container(names[0]),
        ctx.runtime.inspect_container(names[1])
    );
    names
        .iter()
        .zip([postgres, valkey])
        .filter_map(|(name, answer)| match answer {
            Ok(info) => match info.health_status() {
                Some(HealthStatus::Healthy) => None,
                Some(status) => Some(format!("{name} is {status}")),
                None => Some(format!("{name} has no health check")),
            },
            Err(e) => Some(format!("{name}: {e}")),
        })
        .collect()
}

fn write_unit(unit: &UnitPlan) -> std::io::Result<()> {
    write_atomic(&unit.path, unit.unit.content.as_bytes())
}

pub(crate) async fn run(
    ctx: &Context,
    args: &DeployArgs,
    probe: Option<preconditions::HostProbe>,
) -> Result<Outcome> {
    let ui = ctx.ui;
    let d = &ctx.deployment;
    let lock_path = lock::lock_path(d, ctx.runtime_dir.as_deref());
    let _lock = lock::acquire(&lock_path)?;

    ui.note("checking the host");
    let step = timings::step("preconditions");
    // While the host is checked, systemd is asked what the plan needs of it
    // (a blocking question: it runs once the checks have sent theirs). If the
    // checks took long (an image was pulled), it is asked again.
    let asked = Instant::now();
    let (report, states) = tokio::join!(
        preconditions::check(ctx, args.allow_non_btrfs, true, probe),
        async { plan::unit_states(ctx) }
    );
    let report = report.into_result()?;
    let states = if asked.elapsed() > FRESH_STATES {
        plan::unit_states(ctx)
    } else {
        states
    };
    step.end();
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
    let step = timings::step("plan");
    let plan = plan::plan_given(ctx, report.nocow_possible, report.podman_version, states).await?;
    step.end();
    if plan.is_empty() {
        // Nothing to change is not the same as working: a service whose container
        // is unhealthy fails the deploy, as the full verify would.
        let unhealthy = unhealthy_containers(ctx).await;
        if !unhealthy.is_empty() {
            return Err(Failure::new(
                crate::error::Exit::CheckFailed,
                format!(
                    "the deployment is as configured, but not healthy: {}",
                    unhealthy.join("; ")
                ),
            )
            .help(
                "nothing was changed; run `immich-db verify` and `immich-db status` for details",
            ));
        }
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
                // Every step was done: running deploy again would not help, so
                // this is a failed check, not a deploy stopped part-way.
                let mut failure = Failure::new(
                    crate::error::Exit::CheckFailed,
                    format!(
                        "deployed, but the deployment does not verify: {}",
                        list.join("; ")
                    ),
                )
                .help(
                    "run `immich-db verify` and `immich-db status` for details; \
                     copy-on-write files in a database directory are repaired by \
                     `immich-db storage fix-nocow`",
                );
                failure.done = done.0;
                return Err(failure);
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
    let step = timings::step("network unit");
    for unit in plan.units.iter().filter(|u| u.role == Role::Network) {
        if unit.change != FileChange::Unchanged {
            write_unit(unit).map_err(|e| {
                Failure::failed(format!("cannot write {}: {e}", unit.path.display()))
            })?;
            done.push(
                ui,
                format!("wrote the network unit {}", unit.path.display()),
            );
        }
    }

    step.end();
    fault::point("storage");
    let step = timings::step("storage");
    for dir in &plan.directories {
        if !dir.changes.is_empty() {
            let report = ensure_dir(&dir.spec).map_err(|e| {
                Failure::failed(format!("cannot prepare {}: {e}", dir.dir.path.display()))
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
        // BTRFS gives NOCOW only to files created after it was set: say at once
        // what an earlier start left copy-on-write.
        if dir.nocow
            && let Ok(audit) = homelab_btrfs::audit(&dir.dir.path)
            && !audit.cow_files.is_empty()
        {
            ui.note(format!(
                "warning: {} file(s) ({} bytes) in {} were there before NOCOW and stay \
                 copy-on-write (fix: immich-db storage fix-nocow)",
                audit.cow_files.len(),
                audit.cow_bytes(),
                dir.dir.path.display()
            ));
        }
    }

    step.end();
    fault::point("secrets");
    let step = timings::step("secrets");
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
                return Err(Failure::failed(format!(
                    "cannot ensure the secret {}: {e}",
                    secret.name
                )));
            }
        }
    }

    step.end();
    fault::point("units");
    let step = timings::step("container units");
    for unit in plan.units.iter().filter(|u| u.role != Role::Network) {
        if unit.change != FileChange::Unchanged {
            write_unit(unit).map_err(|e| {
                Failure::failed(format!("cannot write {}: {e}", unit.path.display()))
            })?;
            done.push(ui, format!("wrote the unit {}", unit.path.display()));
        }
    }

    step.end();
    fault::point("reload");
    let step = timings::step("daemon-reload");
    if plan.daemon_reload {
        ctx.systemd
            .daemon_reload()
            .map_err(|e| Failure::failed(e.to_string()))?;
        done.push(ui, "reloaded systemd (daemon-reload)".into());
    }

    step.end();
    fault::point("start");
    let step = timings::step("start");
    let containers: Vec<String> = plan.services.iter().map(|s| s.service.clone()).collect();
    let network_service = d.network_service();
    let sys = |e: systemd::SystemdError| Failure::failed(e.to_string());
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
            if plan.network_service_active {
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
    // PostgreSQL first, Valkey once PostgreSQL's container runs: two containers
    // created at the same moment take turns in podman's database and network
    // set-up, and PostgreSQL is the one a deploy waits for longest.
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
        for line in launch(ctx, plan, list, action).map_err(sys)? {
            done.push(ui, line);
        }
    }
    step.end();

    // Each service is verified as soon as its health check passes, while
    // systemd learns from podman that it is healthy; what they share, once
    // both are.
    fault::point("health");
    let progress = Progress::new(ui, &waiting);
    let (postgres_running, postgres_ran) = oneshot::channel();
    let mut postgres_running = Some(postgres_running);
    let mut postgres_ran = Some(postgres_ran);
    let held_done = std::cell::RefCell::new(Vec::new());
    let mut part = |role: Role, healthy: oneshot::Sender<()>| {
        let progress = &progress;
        let waiting = &waiting;
        let held_done = &held_done;
        let (mut running, ran) = match role {
            Role::Postgres => (postgres_running.take(), None),
            _ => (None, postgres_ran.take()),
        };
        async move {
            let container = match role {
                Role::Postgres => &d.config.postgres.container_name,
                _ => &d.config.valkey.container_name,
            };
            let service = format!("{container}.service");
            if let (Some((s, action)), Some(ran)) = (held, ran) {
                // PostgreSQL's container runs, or it has failed, or it takes
                // long: Valkey's turn.
                let _ = tokio::time::timeout(HOLD_LIMIT, ran).await;
                for line in launch(ctx, plan, &[s], action).map_err(sys)? {
                    ui.note(format!("  {line}"));
                    held_done.borrow_mut().push(line);
                }
            }
            let w = waiting.iter().find(|w| w.role == role);
            let mut job = w.map_or_else(JobWatch::none, |w| ctx.systemd.watch_job(&w.service));
            let ready = match w {
                Some(w) => {
                    let step = timings::step_of("healthy", &w.service);
                    let ready =
                        wait_healthy(ctx, w, container, progress, &mut running, &mut job).await;
                    drop(running);
                    step.end();
                    Some(ready?)
                }
                None => None,
            };
            let _ = healthy.send(());
            let _step = timings::step_of("verify", &service);
            let health = (ready == Some(Ready::Healthy))
                .then(|| verify::health_result(container, &HealthStatus::Healthy));
            let (active, checks) = tokio::join!(
                async {
                    match (w, ready) {
                        (Some(w), Some(Ready::Healthy)) => {
                            let step = timings::step_of("active", &w.service);
                            let active = wait_active(ctx, w, container, &mut job).await;
                            step.end();
                            active
                        }
                        _ => Ok(()),
                    }
                },
                async {
                    match role {
                        Role::Postgres => verify::postgres_service(ctx, health).await,
                        _ => verify::valkey_service(ctx, health).await,
                    }
                }
            );
            active?;
            // A unit deploy waited for was just seen active.
            let mut all = if ready.is_some() {
                verify::unit_result(&service, "active")
            } else {
                verify::unit_check(ctx, &service)
            };
            all.extend(checks);
            Ok::<_, Failure>(all)
        }
    };
    let (postgres_healthy, postgres_checked) = oneshot::channel();
    let (valkey_healthy, valkey_checked) = oneshot::channel();
    let common = async {
        // Both containers run, on the network, once both are healthy.
        let (a, b) = tokio::join!(postgres_checked, valkey_checked);
        (a.is_ok() && b.is_ok()).then_some(())?;
        fault::point("verify");
        let _step = timings::step("verify common");
        Some(verify::common_part(ctx).await)
    };
    let (postgres, valkey, common) = tokio::join!(
        part(Role::Postgres, postgres_healthy),
        part(Role::Valkey, valkey_healthy),
        common
    );
    progress.finish();
    done.0.extend(held_done.into_inner());
    let (postgres, valkey) = (postgres?, valkey?);
    let common = match common {
        Some(common) => common,
        None => verify::common_part(ctx).await,
    };
    Ok(verify::assemble(common, postgres, valkey))
}

/// Starts (after forgetting a failed state) or restarts the services, queuing
/// the jobs without waiting; what was done, a line each.
fn launch(
    ctx: &Context,
    plan: &Plan,
    services: &[&ServicePlan],
    action: ServiceAction,
) -> systemd::SystemdResult<Vec<String>> {
    if services.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = services.iter().map(|s| s.service.clone()).collect();
    let verb = if action == ServiceAction::Restart {
        loaded(ctx, plan, || ctx.systemd.restart(&names, false))?;
        "restarted"
    } else {
        let failed: Vec<String> = services
            .iter()
            .filter(|s| s.failed)
            .map(|s| s.service.clone())
            .collect();
        ctx.systemd.reset_failed(&failed)?;
        loaded(ctx, plan, || ctx.systemd.start(&names, false))?;
        "started"
    };
    Ok(services
        .iter()
        .map(|s| format!("{verb} {} ({})", s.service, s.reason))
        .collect())
}

/// Runs `call` (a start or restart); if systemd does not know a unit that this
/// deploy's reload generated, reloads once more and runs it again. Another
/// client's reload at the same moment can leave the manager without it.
fn loaded(
    ctx: &Context,
    plan: &Plan,
    call: impl Fn() -> systemd::SystemdResult<()>,
) -> systemd::SystemdResult<()> {
    match call() {
        Err(e) if plan.daemon_reload && e.detail.contains("not found") => {
            ctx.systemd.daemon_reload()?;
            call()
        }
        other => other,
    }
}

/// A service deploy started (or found starting) and waits for.
#[derive(Debug)]
struct Waiting {
    service: String,
    role: Role,
    /// When it last became active before this deploy, to tell a restart apart.
    since: Option<i64>,
}

/// How a service was found ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ready {
    /// Its unit is active: with `Notify=healthy`, its container was healthy.
    Active,
    /// Its container's health check, run here, passed; the unit becomes active
    /// once podman has told systemd so.
    Healthy,
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

/// How often a starting service's health check runs, and its unit is looked
/// at: as often as the floor a person would use.
const POLL: Duration = Duration::from_millis(100);

/// How often a starting server's listening socket is looked for (a read of the
/// kernel's socket counts; nothing runs in the container).
const PROBE: Duration = Duration::from_millis(20);

/// How often the unit and the container of a server that starts are looked at
/// while its container runs (its socket is looked for every [`PROBE`]).
const SLOW_POLL: Duration = Duration::from_secs(1);

/// How often the unit of a starting service is asked about while its job is
/// watched (the watch says when the job ends; this is a backstop).
const WATCHED_POLL: Duration = Duration::from_secs(5);

/// How often the end of a watched job is looked for once the container is
/// healthy (a look is a `waitpid`).
const JOB_POLL: Duration = Duration::from_millis(5);

/// How often a starting service's container is looked for until it runs.
const NO_CONTAINER_POLL: Duration = Duration::from_millis(200);

/// How long Valkey's start waits at most for PostgreSQL's container to run.
const HOLD_LIMIT: Duration = Duration::from_secs(5);

/// Whether a process runs (its `/proc` entry is there).
fn process_alive(pid: u32) -> bool {
    pid != 0 && std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// How long deploy waits for a service before it gives up.
fn start_limit(role: Role) -> Duration {
    Duration::from_secs(
        match role {
            Role::Postgres => desired::POSTGRES_START_TIMEOUT_S,
            _ => desired::VALKEY_START_TIMEOUT_S,
        } + 30,
    )
}

/// The state of a unit that deploy waits for.
#[derive(Debug)]
struct UnitState {
    /// `ActiveState`.
    state: String,
    /// Whether it became active after the deploy started or restarted it.
    fresh: bool,
    /// Whether systemd gave up on starting it: failed, or inactive with no job
    /// left (a unit it needs failed).
    gave_up: bool,
}

impl UnitState {
    fn of(ctx: &Context, w: &Waiting) -> Result<Self> {
        let props = ctx
            .systemd
            .show(&w.service, &["ActiveState", "ActiveEnterTimestamp", "Job"])
            .map_err(|e| Failure::failed(e.to_string()))?;
        let state = props.get("ActiveState").cloned().unwrap_or_default();
        let entered = systemd::timestamp_us(&props, "ActiveEnterTimestamp");
        let fresh = match (w.since, entered) {
            (Some(before), Some(now)) => now > before,
            _ => true,
        };
        let idle = props.get("Job").is_none_or(String::is_empty);
        let gave_up = state == "failed" || (state == "inactive" && idle);
        Ok(Self {
            state,
            fresh,
            gave_up,
        })
    }

    fn active(&self) -> bool {
        self.state == "active" && self.fresh
    }
}

/// The failure of a service that systemd gave up on, with the container's last
/// lines, or the network's service when that is what failed.
async fn start_failed(ctx: &Context, service: &str, container: &str) -> Failure {
    let network_service = ctx.deployment.network_service();
    let network_failed = ctx
        .systemd
        .show(&network_service, &["ActiveState"])
        .is_ok_and(|p| p.get("ActiveState").is_some_and(|s| s == "failed"));
    if network_failed {
        return Failure::failed(format!(
            "{service} did not start: the network's service {network_service} failed (it creates the network {})",
            ctx.deployment.podman_network()
        ))
        .help(format!(
            "see `systemctl --user status {network_service}` and its journal (or without --user for the system scope); a subnet taken meanwhile by another network makes it fail"
        ));
    }
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
    Failure::failed(format!(
        "{service} failed to start{}",
        if logs.is_empty() {
            String::new()
        } else {
            format!("; the container's last lines:\n    {logs}")
        }
    ))
    .help(format!(
        "see `journalctl --user -u {service}` (or without --user for the system scope)"
    ))
}

fn too_slow(service: &str, limit: Duration) -> Failure {
    Failure::failed(format!(
        "{service} did not become healthy within {} s",
        limit.as_secs()
    ))
    .help("see `immich-db status` and the service's journal")
}

/// Whether a process's network namespace holds a TCP socket (of IP version 4
/// or 6), from the kernel's socket counts for it (`/proc/PID/net/sockstat`, a
/// constant-time read); `None` when they cannot be read. In a database
/// container that starts, the first TCP socket is the server listening.
fn tcp_in_use(pid: u32) -> Option<bool> {
    let mut readable = false;
    for table in ["sockstat", "sockstat6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        readable = true;
        if tcp_sockets(&text) > 0 {
            return Some(true);
        }
    }
    readable.then_some(false)
}

/// The `inuse` count of the `TCP:` or `TCP6:` line of a sockstat table.
fn tcp_sockets(sockstat: &str) -> u64 {
    sockstat
        .lines()
        .filter_map(|line| {
            let rest = line
                .strip_prefix("TCP: ")
                .or_else(|| line.strip_prefix("TCP6: "))?;
            let mut words = rest.split_whitespace();
            (words.next()? == "inuse").then_some(())?;
            words.next()?.parse::<u64>().ok()
        })
        .sum()
}

/// Waits until a started service's container is healthy, or its unit active.
///
/// Until the server listens (its container holds a TCP socket, looked for every
/// [`PROBE`]), nothing runs in the container; then its health check runs here
/// every [`POLL`], which also tells podman, and through it systemd, that the
/// container is healthy. Where the socket counts cannot be read, the health
/// check runs every [`POLL`] from the start; podman's own timer runs it once a
/// second in any case. `running_seen` is told once the container runs. While
/// `job` watches the unit's job, the unit is not asked about: the watch says
/// when it is active, or that its start failed.
async fn wait_healthy(
    ctx: &Context,
    w: &Waiting,
    container: &str,
    progress: &Progress,
    running_seen: &mut Option<oneshot::Sender<()>>,
    job: &mut JobWatch,
) -> Result<Ready> {
    let limit = start_limit(w.role);
    let service = &w.service;
    let mut last = String::new();
    // What was last seen, and when: the unit (from a process) and the
    // container (from podman) are asked again only every so often while the
    // server starts, so that asking does not slow it down.
    let mut unit: Option<(Instant, UnitState)> = None;
    let mut running: Option<(Instant, u32)> = None;
    let mut checked: Option<Instant> = None;
    loop {
        let round = Instant::now();
        if progress.start.elapsed() > limit {
            return Err(too_slow(service, limit));
        }
        // While its server starts in a container that runs, the unit is asked
        // about once a second, and hardly at all while its job is watched:
        // each question is a process, and the host has little to spare while
        // a database initialises.
        let ask_again = match job.poll() {
            Job::Done => {
                progress.healthy(service);
                return Ok(Ready::Active);
            }
            Job::Running => WATCHED_POLL,
            Job::Failed => Duration::ZERO,
            Job::Unwatched if running.is_some_and(|(_, pid)| process_alive(pid)) => SLOW_POLL,
            Job::Unwatched => POLL * 3,
        };
        let (at, state) = match unit.take() {
            Some((at, state)) if state.state == "activating" && at.elapsed() < ask_again => {
                (at, state)
            }
            _ => (round, UnitState::of(ctx, w)?),
        };
        if state.active() {
            progress.healthy(service);
            return Ok(Ready::Active);
        }
        if state.gave_up {
            return Err(start_failed(ctx, service, container).await);
        }
        let activating = state.state == "activating";
        let shown = state.state.clone();
        unit = Some((at, state));
        if !activating {
            running = None;
            progress.show(service, &shown, &mut last);
            tokio::time::sleep(POLL / 2).await;
            continue;
        }
        // While the unit activates, the container of that name is the new one
        // (a restart removes the old one first).
        let pid = match running {
            Some((at, pid)) if at.elapsed() < SLOW_POLL && process_alive(pid) => Some(pid),
            _ => match ctx.runtime.inspect_container(container).await {
                Ok(info) if info.state.running => {
                    if let Some(seen) = running_seen.take() {
                        let _ = seen.send(());
                    }
                    if info.health_status() == Some(&HealthStatus::Healthy) {
                        progress.healthy(service);
                        return Ok(Ready::Healthy);
                    }
                    let pid = info.state.pid.unwrap_or_default();
                    running = Some((round, pid));
                    Some(pid)
                }
                Ok(info) => {
                    progress.show(
                        service,
                        &format!("{shown}, {}", info.state.status),
                        &mut last,
                    );
                    None
                }
                Err(_) => {
                    progress.show(service, &format!("{shown}, no container yet"), &mut last);
                    None
                }
            },
        };
        if let Some(pid) = pid {
            match tcp_in_use(pid) {
                Some(false) => {
                    progress.show(
                        service,
                        &format!("{shown}, starting, not listening yet"),
                        &mut last,
                    );
                }
                // Listening (or unknown): the health check says whether it
                // serves.
                _ if checked.is_none_or(|at| at.elapsed() >= POLL) => {
                    checked = Some(Instant::now());
                    timings::mark("run health check", container);
                    match ctx.runtime.run_health_check(container).await {
                        Ok(h) if h.status == HealthStatus::Healthy => {
                            timings::mark("healthy", container);
                            progress.healthy(service);
                            return Ok(Ready::Healthy);
                        }
                        Ok(h) => {
                            let status = format!("{shown}, {}", h.status);
                            progress.show(service, &status, &mut last);
                        }
                        // Gone meanwhile (a restart): look again.
                        Err(_) => running = None,
                    }
                }
                _ => {}
            }
        }
        let pause = if pid.is_some() {
            PROBE
        } else {
            NO_CONTAINER_POLL
        };
        tokio::time::sleep(pause.saturating_sub(round.elapsed())).await;
    }
}

/// Waits until the unit of a service whose container is healthy is active:
/// podman tells systemd within a fraction of a second. While `job` watches the
/// unit's job, its end is looked for every [`JOB_POLL`]; otherwise the unit is
/// asked about.
async fn wait_active(
    ctx: &Context,
    w: &Waiting,
    container: &str,
    job: &mut JobWatch,
) -> Result<()> {
    let limit = start_limit(w.role);
    let start = Instant::now();
    loop {
        match job.poll() {
            Job::Done => return Ok(()),
            Job::Running if start.elapsed() <= limit => {
                tokio::time::sleep(JOB_POLL).await;
                continue;
            }
            _ => {}
        }
        let unit = UnitState::of(ctx, w)?;
        if unit.active() {
            return Ok(());
        }
        if unit.gave_up {
            return Err(start_failed(ctx, &w.service, container).await);
        }
        if start.elapsed() > limit {
            return Err(too_slow(&w.service, limit));
        }
        tokio::time::sleep(POLL / 2).await;
    }
}

#[cfg(test)]
mod tests {
    //! Deploy logic against the recording fakes of systemd and Podman; the real
    //! parts are exercised by the tests in `tests/`.

    use std::sync::Arc;

    use homelab_podman::{FakeRuntime, ImageInfo, NetworkInfo, NetworkSubnet};
    use homelab_quadlet::PodmanVersion;

    use super::*;
    use crate::backup::tests::block_on;
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

    fn fake(ctx: &Context) -> &FakeSystemd {
        // The fixture always holds a FakeSystemd.
        let any: &dyn std::any::Any = ctx.systemd.as_any();
        any.downcast_ref().unwrap()
    }

    #[test]
    fn from_nothing_then_no_changes() {
        let f = fixture("");
        block_on(async {
            let plan = plan::plan(&f.ctx, false, Some(PodmanVersion::V5_4))
                .await
                .unwrap();
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
            let again = plan::plan(&f.ctx, false, Some(PodmanVersion::V5_4))
                .await
                .unwrap();
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
    fn nothing_to_change_still_needs_healthy_containers() {
        let f = fixture("");
        let with_health = |name: &str, status: HealthStatus| {
            let mut info = crate::backup::tests::running(name);
            info.health = Some(homelab_podman::Health {
                status,
                failing_streak: 0,
                log: Vec::new(),
            });
            info
        };
        block_on(async {
            let missing = unhealthy_containers(&f.ctx).await;
            assert_eq!(missing.len(), 2, "{missing:?}");
            f.runtime
                .add_container(with_health("postgresql-immich", HealthStatus::Healthy));
            f.runtime
                .add_container(with_health("redis-immich", HealthStatus::Unhealthy));
            assert_eq!(
                unhealthy_containers(&f.ctx).await,
                ["redis-immich is unhealthy"]
            );
            f.runtime
                .add_container(with_health("redis-immich", HealthStatus::Healthy));
            assert!(unhealthy_containers(&f.ctx).await.is_empty());
        });
    }

    #[test]
    fn tcp_sockets_are_counted_from_the_kernel_socket_counts() {
        let v4 = "sockets: used 2\nTCP: inuse 1 orphan 0 tw 0 alloc 3 mem 0\nUDP: inuse 0 mem 0\n";
        let v6 = "TCP6: inuse 2\nUDP6: inuse 0\n";
        let none = "sockets: used 0\nTCP: inuse 0 orphan 0 tw 4 alloc 1 mem 0\n";
        assert_eq!(tcp_sockets(v4), 1);
        assert_eq!(tcp_sockets(v6), 2);
        assert_eq!(tcp_sockets(none), 0);
        assert_eq!(tcp_sockets("UDP: inuse 3 mem 0\n"), 0);
        // This process's own counts can be read; a process that does not
        // exist has none.
        assert!(tcp_in_use(std::process::id()).is_some());
        assert_eq!(tcp_in_use(u32::MAX), None);
    }

    #[test]
    fn a_failed_network_service_fails_the_deploy_at_once() {
        // Its containers' start jobs are dropped and they stay inactive: the
        // deploy says so instead of waiting for them until its time limit.
        let mut f = fixture("");
        let mut systemd = FakeSystemd::default();
        systemd.failing_dependency = Some(f.ctx.deployment.network_service());
        f.ctx.systemd = Box::new(systemd);
        block_on(async {
            let plan = plan::plan(&f.ctx, false, Some(PodmanVersion::V5_4))
                .await
                .unwrap();
            let started = Instant::now();
            let err = apply(&f.ctx, &plan, &mut Done::default())
                .await
                .unwrap_err();
            assert!(started.elapsed() < Duration::from_secs(5));
            assert!(err.what.contains("photos-network.service failed"), "{err}");
            assert!(err.what.contains("systemd-photos"), "{err}");
        });
    }

    #[test]
    fn units_unknown_after_the_reload_are_reloaded_once_more() {
        let f = fixture("");
        fake(&f.ctx)
            .unknown_once
            .store(true, std::sync::atomic::Ordering::Relaxed);
        block_on(async {
            let plan = plan::plan(&f.ctx, false, Some(PodmanVersion::V5_4))
                .await
                .unwrap();
            apply(&f.ctx, &plan, &mut Done::default()).await.unwrap();
        });
        assert_eq!(
            fake(&f.ctx).calls(),
            [
                "daemon-reload",
                "start postgresql-immich.service",
                "daemon-reload",
                "start postgresql-immich.service",
                "start redis-immich.service",
            ]
        );
    }

    #[test]
    fn only_the_changed_unit_restarts() {
        let mut f = fixture("");
        block_on(async {
            let plan = plan::plan(&f.ctx, false, Some(PodmanVersion::V5_4))
                .await
                .unwrap();
            let _ = apply(&f.ctx, &plan, &mut Done::default()).await.unwrap();
            network_created(&f);
        });
        f.ctx.deployment.config.postgres.shm_size = "256m".into();
        block_on(async {
            let plan = plan::plan(&f.ctx, false, Some(PodmanVersion::V5_4))
                .await
                .unwrap();
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
            let plan = plan::plan(&f.ctx, false, Some(PodmanVersion::V5_4))
                .await
                .unwrap();
            let _ = apply(&f.ctx, &plan, &mut Done::default()).await.unwrap();
            network_created(&f);
        });
        f.ctx.deployment.subnet = "10.99.0.0/24".parse().unwrap();
        f.ctx.deployment.gateway = "10.99.0.1".parse().unwrap();
        block_on(async {
            let plan = plan::plan(&f.ctx, false, Some(PodmanVersion::V5_4))
                .await
                .unwrap();
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
