//! `status`: per service the unit and container state, health, uptime, restarts,
//! memory and CPU; bytes per directory and on the pool.

use std::time::SystemTime;

use serde::Serialize;

use crate::backups::BackupSummary;
use crate::desired;
use crate::layer::Layer;
use crate::storage::{PoolUsage, pool_usage};

/// One service: its unit, its container, and what they use.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Service {
    /// The systemd service.
    #[serde(rename = "service")]
    pub unit: String,
    /// Its container.
    pub container: String,
    /// The unit's state (`active (running)`).
    pub unit_state: String,
    /// The container's state (`running`, `absent`).
    pub container_state: String,
    /// The container's health (`healthy`, `unknown`).
    pub health: String,
    /// How long the container has run.
    pub uptime_seconds: Option<u64>,
    /// How often systemd restarted the service.
    pub restarts: Option<u64>,
    /// Memory in use.
    pub memory_bytes: Option<u64>,
    /// The most memory used.
    pub memory_peak_bytes: Option<u64>,
    /// CPU time used.
    pub cpu_seconds: Option<f64>,
}

/// One data directory and the space it takes.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Directory {
    /// Its configuration key (`postgres_dir`).
    pub key: &'static str,
    /// Where it is.
    pub path: String,
    /// Bytes allocated on disk.
    pub bytes: Option<u64>,
}

/// PostgreSQL's data checksums, as `pg_stat_database` counts their failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Checksums {
    /// Whether data checksums are on (`initdb --data-checksums`).
    pub enabled: bool,
    /// Pages whose checksum did not match, in all databases, since the
    /// statistics were last reset.
    pub failures: u64,
    /// When the last one was found.
    pub last_failure: Option<String>,
}

impl Checksums {
    /// From `on|3|2026-12-04 03:35:57+00` (the last part absent when there was
    /// no failure).
    pub(crate) fn parse(line: &str) -> Option<Self> {
        let mut parts = line.trim().split('|');
        let enabled = match parts.next()? {
            "on" => true,
            "off" => false,
            _ => return None,
        };
        let failures = parts.next()?.parse().ok()?;
        let last_failure = parts.next().filter(|t| !t.is_empty()).map(str::to_owned);
        Some(Self {
            enabled,
            failures,
            last_failure,
        })
    }
}

/// The state of the deployment: services, directories, the pool, backups.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Status {
    /// PostgreSQL and Valkey.
    pub services: Vec<Service>,
    /// PostgreSQL's data checksums (absent when PostgreSQL could not be
    /// asked).
    pub checksums: Option<Checksums>,
    /// The data directories.
    pub directories: Vec<Directory>,
    /// The pool.
    pub pool: PoolUsage,
    /// The last backup and the schedule.
    pub backup: BackupSummary,
}

impl Layer {
    /// Per service the unit and container state, health, uptime, restarts,
    /// memory and CPU; bytes per directory and on the pool; the last backup.
    pub async fn status(&self) -> Status {
        status(self).await
    }
}

/// PostgreSQL's data checksums, asked with the stored password.
async fn checksums(ctx: &Layer) -> Option<Checksums> {
    let secret = &ctx.deployment.config.postgres.password_secret;
    let password = ctx.secrets.read(secret).await.ok()?;
    match crate::verify::postgres_login(ctx, &password).await {
        crate::verify::Login::Done { facts, .. } => facts.checksums,
        _ => None,
    }
}

async fn status(ctx: &Layer) -> Status {
    let d = &ctx.deployment;
    let mut services = Vec::new();
    for unit in desired::unit_names(d).into_iter().skip(1) {
        let container = match unit.role {
            desired::Role::Postgres => d.config.postgres.container_name.clone(),
            _ => d.config.valkey.container_name.clone(),
        };
        let systemd = ctx.systemd.unit(&unit.service).await.ok();
        let unit_state = systemd
            .as_ref()
            .map_or_else(|| "unknown".into(), |s| format!("{} ({})", s.active, s.sub));
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
        let cgroup = systemd
            .as_ref()
            .and_then(|s| s.control_group.as_deref())
            .map(crate::cgroup::usage)
            .unwrap_or_default();
        let memory_bytes = systemd
            .as_ref()
            .and_then(|s| s.memory_current)
            .or_else(|| stats.as_ref().map(|s| s.memory_current))
            .or(cgroup.memory_current);
        let memory_peak_bytes = systemd
            .as_ref()
            .and_then(|s| s.memory_peak)
            .or_else(|| stats.as_ref().and_then(|s| s.memory_peak))
            .or(cgroup.memory_peak);
        let cpu_seconds = systemd
            .as_ref()
            .and_then(|s| s.cpu_usage)
            .or_else(|| stats.as_ref().map(|s| s.cpu_time))
            .or(cgroup.cpu)
            .map(|c| c.as_secs_f64());
        services.push(Service {
            unit: unit.service,
            container_state: info
                .as_ref()
                .map_or_else(|| "absent".into(), |i| i.state.status.to_string()),
            health: info
                .as_ref()
                .and_then(|i| i.health_status().map(ToString::to_string))
                .unwrap_or_else(|| "unknown".into()),
            restarts: systemd.as_ref().and_then(|s| s.restarts),
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

    Status {
        services,
        checksums: checksums(ctx).await,
        directories,
        pool,
        backup: ctx.backup_summary().await,
    }
}

#[cfg(test)]
mod tests {
    use super::Checksums;

    #[test]
    fn checksum_answers_are_read() {
        assert_eq!(
            Checksums::parse("on|0"),
            Some(Checksums {
                enabled: true,
                failures: 0,
                last_failure: None
            })
        );
        let failed = Checksums::parse("on|3|2026-12-04 03:35:57.1+00\n").unwrap();
        assert_eq!(failed.failures, 3);
        assert_eq!(
            failed.last_failure.as_deref(),
            Some("2026-12-04 03:35:57.1+00")
        );
        assert!(!Checksums::parse("off|0").unwrap().enabled);
        for bad in ["", "on", "maybe|0", "on|x"] {
            assert_eq!(Checksums::parse(bad), None, "{bad}");
        }
    }
}
