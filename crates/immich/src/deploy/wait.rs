//! Waiting for a service deploy started: until its container is healthy (seen
//! within a fraction of a second of readiness), then until systemd counts its
//! unit active.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use homelab_podman::HealthStatus;
use homelab_systemd::{ActiveState, Job, JobWatch, UnitState, WaitError, WaitFor};
use tokio::sync::oneshot;

use crate::desired::{self, Role};
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::progress::Event;

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

/// How many times systemd may restart a service deploy waits for before deploy
/// counts it failed: the units have no start limit (a database killed many
/// times comes back each time), so systemd itself never gives up on a
/// container that cannot start.
const MAX_RESTARTS: u64 = 3;

/// How often a starting service's container is looked for until it runs.
const NO_CONTAINER_POLL: Duration = Duration::from_millis(200);

/// A service deploy started (or found starting) and waits for.
#[derive(Debug)]
pub(super) struct Waiting {
    pub(super) service: String,
    pub(super) role: Role,
    /// When it last became active before this deploy, to tell a restart apart.
    pub(super) since: Option<DateTime<Utc>>,
}

impl Waiting {
    /// What counts as this service having started.
    fn target(&self, limit: Duration) -> WaitFor<'_> {
        WaitFor::new(&self.service, limit)
            .after(self.since)
            .every(POLL / 2)
            .restarts_at_most(MAX_RESTARTS)
    }
}

/// How a service was found ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ready {
    /// Its unit is active: with `Notify=healthy`, its container was healthy.
    Active,
    /// Its container's health check, run here, passed; the unit becomes active
    /// once podman has told systemd so.
    Healthy,
}

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

/// The failure of a service that systemd gave up on, with the container's last
/// lines, or the network's service when that is what failed.
async fn start_failed(ctx: &Layer, service: &str, container: &str) -> Error {
    let network_service = ctx.deployment.network_service();
    let flag = ctx.systemd.scope().flag();
    // A container's service starts only once the network's is active: when
    // that one is not (failed, or already reset to inactive by a job that
    // failed with it), it is the cause.
    let network = ctx
        .systemd
        .unit(&network_service)
        .await
        .ok()
        .filter(|u| u.active != ActiveState::Active);
    if let Some(network) = network {
        return Error::failed(format!(
            "{service} did not start: the network's service {network_service} failed (it is {}, result {}; it creates the network {})",
            network.active,
            network.result,
            ctx.deployment.podman_network()
        ))
        .help(format!(
            "see `systemctl{flag} status {network_service}` and its journal; a subnet taken meanwhile by another network makes it fail"
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
    Error::failed(format!(
        "{service} failed to start{}",
        if logs.is_empty() {
            String::new()
        } else {
            format!("; the container's last lines:\n    {logs}")
        }
    ))
    .help(format!("see `journalctl{flag} -u {service}`"))
}

fn too_slow(service: &str, limit: Duration) -> Error {
    Error::failed(format!(
        "{service} did not become healthy within {} s",
        limit.as_secs()
    ))
    .help("see `immich-db status` and the service's journal")
}

/// Whether a process's network namespace holds a TCP socket (of IP version 4
/// or 6), from the kernel's socket counts for it (`/proc/PID/net/sockstat`, a
/// constant-time read); `None` when they cannot be read. In a database
/// container that starts, the first TCP socket is the server listening.
pub(super) fn tcp_in_use(pid: u32) -> Option<bool> {
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
pub(super) fn tcp_sockets(sockstat: &str) -> u64 {
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

/// What the wait knows of the unit and when it last asked.
struct Seen {
    at: Instant,
    unit: UnitState,
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
pub(super) async fn healthy(
    ctx: &Layer,
    w: &Waiting,
    container: &str,
    running_seen: &mut Option<oneshot::Sender<()>>,
    job: &mut JobWatch,
) -> Result<Ready> {
    let start = Instant::now();
    let limit = start_limit(w.role);
    let target = w.target(limit);
    let service = &w.service;
    let show = |state: &str| {
        ctx.tell(Event::Service { service, state });
    };
    let ready = |how: Ready| {
        ctx.tell(Event::Ready {
            service,
            after: start.elapsed(),
        });
        Ok(how)
    };
    // What was last seen, and when: the unit (from a process) and the
    // container (from podman) are asked again only every so often while the
    // server starts, so that asking does not slow it down.
    let mut seen: Option<Seen> = None;
    let mut running: Option<(Instant, u32)> = None;
    let mut checked: Option<Instant> = None;
    let mut first_restarts: Option<Option<u64>> = None;
    loop {
        let round = Instant::now();
        if start.elapsed() > limit {
            return Err(too_slow(service, limit));
        }
        // While its server starts in a container that runs, the unit is asked
        // about once a second, and hardly at all while its job is watched:
        // each question is a process, and the host has little to spare while
        // a database initialises.
        let ask_again = match job.poll() {
            Job::Done => return ready(Ready::Active),
            Job::Running => WATCHED_POLL,
            Job::Failed => Duration::ZERO,
            Job::Unwatched if running.is_some_and(|(_, pid)| process_alive(pid)) => SLOW_POLL,
            Job::Unwatched => POLL * 3,
        };
        let current = match seen.take() {
            Some(s) if s.unit.active == ActiveState::Activating && s.at.elapsed() < ask_again => s,
            _ => Seen {
                at: round,
                unit: ctx
                    .systemd
                    .unit(service)
                    .await
                    .map_err(|e| Error::failed(e.to_string()))?,
            },
        };
        if target.reached(&current.unit) {
            return ready(Ready::Active);
        }
        let first = *first_restarts.get_or_insert(current.unit.restarts);
        if current.unit.gave_up() || target.restarted_too_often(first, &current.unit) {
            return Err(start_failed(ctx, service, container).await);
        }
        let activating = current.unit.active == ActiveState::Activating;
        let shown = current.unit.active.to_string();
        seen = Some(current);
        if !activating {
            running = None;
            show(&shown);
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
                        return ready(Ready::Healthy);
                    }
                    let pid = info.state.pid.unwrap_or_default();
                    running = Some((round, pid));
                    Some(pid)
                }
                Ok(info) => {
                    show(&format!("{shown}, {}", info.state.status));
                    None
                }
                Err(_) => {
                    show(&format!("{shown}, no container yet"));
                    None
                }
            },
        };
        if let Some(pid) = pid {
            match tcp_in_use(pid) {
                Some(false) => show(&format!("{shown}, starting, not listening yet")),
                // Listening (or unknown): the health check says whether it
                // serves.
                _ if checked.is_none_or(|at| at.elapsed() >= POLL) => {
                    checked = Some(Instant::now());
                    tracing::debug!(container, "run health check");
                    match ctx.runtime.run_health_check(container).await {
                        Ok(h) if h.status == HealthStatus::Healthy => {
                            return ready(Ready::Healthy);
                        }
                        Ok(h) => show(&format!("{shown}, {}", h.status)),
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
/// podman tells systemd within a fraction of a second.
pub(super) async fn active(
    ctx: &Layer,
    w: &Waiting,
    container: &str,
    job: &mut JobWatch,
) -> Result<UnitState> {
    let limit = start_limit(w.role);
    match w.target(limit).wait(ctx.systemd.as_ref(), job).await {
        Ok(state) => Ok(state),
        Err(WaitError::GaveUp(_)) => Err(start_failed(ctx, &w.service, container).await),
        Err(WaitError::TooSlow { .. }) => Err(too_slow(&w.service, limit)),
        Err(e) => Err(Error::failed(e.to_string())),
    }
}
