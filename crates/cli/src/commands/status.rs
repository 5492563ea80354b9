//! `status`: per service the unit and container state, health, uptime, restarts,
//! memory and CPU; bytes per directory and on the pool.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::storage::{PoolUsage, pool_usage};
use crate::context::Context;
use crate::desired;
use crate::error::Result;
use crate::output::Outcome;
use crate::systemd::{self, UNIT_PROPERTIES};

#[derive(Debug, Serialize)]
struct Service {
    #[serde(rename = "service")]
    unit: String,
    container: String,
    unit_state: String,
    container_state: String,
    health: String,
    uptime_seconds: Option<u64>,
    restarts: Option<u64>,
    memory_bytes: Option<u64>,
    memory_peak_bytes: Option<u64>,
    cpu_seconds: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Directory {
    key: &'static str,
    path: String,
    bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Status {
    services: Vec<Service>,
    directories: Vec<Directory>,
    pool: PoolUsage,
    backup: super::backup::Summary,
}

#[allow(clippy::cast_precision_loss)]
fn bytes(n: Option<u64>) -> String {
    let Some(n) = n else {
        return "unknown".into();
    };
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

fn duration(seconds: Option<u64>) -> String {
    match seconds {
        None => "-".into(),
        Some(s) if s < 120 => format!("{s}s"),
        Some(s) if s < 7200 => format!("{}m", s / 60),
        Some(s) if s < 172_800 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        Some(s) => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

pub(crate) async fn run(ctx: &Context) -> Result<Outcome> {
    let d = &ctx.deployment;
    let mut services = Vec::new();
    for unit in desired::unit_names(d).into_iter().skip(1) {
        let container = match unit.role {
            desired::Role::Postgres => d.config.postgres.container_name.clone(),
            _ => d.config.valkey.container_name.clone(),
        };
        let props = ctx
            .systemd
            .show(&unit.service, UNIT_PROPERTIES)
            .unwrap_or_default();
        let unit_state = match (props.get("ActiveState"), props.get("SubState")) {
            (Some(a), Some(s)) if !a.is_empty() => format!("{a} ({s})"),
            _ => "unknown".into(),
        };
        let info = ctx.runtime.inspect_container(&container).await.ok();
        let stats = if info.as_ref().is_some_and(|i| i.state.running) {
            ctx.runtime.container_stats(&container).await.ok()
        } else {
            None
        };
        let uptime_seconds = info
            .as_ref()
            .and_then(|i| i.uptime(SystemTime::now()))
            .map(|u| u.as_secs());
        // systemd's accounting first, then podman's statistics, then the
        // service's own cgroup (a rootless service on cgroup v1 has neither).
        let cgroup = props
            .get("ControlGroup")
            .map(|cg| crate::cgroup::usage(cg))
            .unwrap_or_default();
        let memory_bytes = systemd::number(&props, "MemoryCurrent")
            .or_else(|| stats.as_ref().map(|s| s.memory_current))
            .or(cgroup.memory_current);
        let memory_peak_bytes = systemd::number(&props, "MemoryPeak")
            .or_else(|| stats.as_ref().and_then(|s| s.memory_peak))
            .or(cgroup.memory_peak);
        #[allow(clippy::cast_precision_loss)]
        let cpu_seconds = systemd::number(&props, "CPUUsageNSec")
            .map(|ns| ns as f64 / 1e9)
            .or_else(|| stats.as_ref().map(|s| s.cpu_time.as_secs_f64()))
            .or_else(|| cgroup.cpu.map(|c| c.as_secs_f64()));
        services.push(Service {
            unit: unit.service,
            container_state: info
                .as_ref()
                .map_or_else(|| "absent".into(), |i| i.state.status.to_string()),
            health: info
                .as_ref()
                .and_then(|i| i.health_status().map(ToString::to_string))
                .unwrap_or_else(|| "unknown".into()),
            restarts: systemd::number(&props, "NRestarts"),
            container,
            unit_state,
            uptime_seconds,
            memory_bytes,
            memory_peak_bytes,
            cpu_seconds,
        });
    }
    let directories: Vec<Directory> = desired::dirs(d)
        .into_iter()
        .map(|dir| Directory {
            key: dir.key,
            bytes: homelab_btrfs::disk_usage(&dir.path)
                .ok()
                .map(|u| u.allocated),
            path: dir.path.display().to_string(),
        })
        .collect();
    let pool = pool_usage(ctx);

    let mut human = String::new();
    let _ = writeln!(
        human,
        "{:<28} {:<20} {:<10} {:<10} {:>8} {:>8} {:>11} {:>11} {:>8}",
        "SERVICE", "UNIT", "CONTAINER", "HEALTH", "UPTIME", "RESTARTS", "MEMORY", "PEAK", "CPU"
    );
    for s in &services {
        let _ = writeln!(
            human,
            "{:<28} {:<20} {:<10} {:<10} {:>8} {:>8} {:>11} {:>11} {:>8}",
            s.unit,
            s.unit_state,
            s.container_state,
            s.health,
            duration(s.uptime_seconds),
            s.restarts
                .map_or_else(|| "unknown".into(), |r| r.to_string()),
            bytes(s.memory_bytes),
            bytes(s.memory_peak_bytes),
            s.cpu_seconds.map_or_else(
                || "unknown".into(),
                |c| format!("{:.1}s", Duration::from_secs_f64(c).as_secs_f64())
            ),
        );
    }
    let _ = writeln!(human);
    for dir in &directories {
        let _ = writeln!(
            human,
            "{:<14} {:>11}  {}",
            dir.key,
            bytes(dir.bytes),
            dir.path
        );
    }
    let _ = writeln!(
        human,
        "pool {} ({}): {} used of {}, {} available",
        pool.path.display(),
        pool.filesystem.as_deref().unwrap_or("unknown"),
        bytes(pool.used),
        bytes(pool.size),
        bytes(pool.available)
    );
    let backup = super::backup::summary(ctx);
    let _ = writeln!(human, "{}", backup.render());
    Outcome::ok(
        Status {
            services,
            directories,
            pool,
            backup,
        },
        human,
    )
}
