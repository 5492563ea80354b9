//! `status`: per service the unit and container state, health, uptime,
//! restarts, memory and CPU; bytes per directory and on the pool; the last
//! backup.

use std::fmt::Write as _;

use homelab_immich::{Layer, Result};

use crate::output::{Reply, bytes};

fn duration(seconds: Option<u64>) -> String {
    match seconds {
        None => "-".into(),
        Some(s) if s < 120 => format!("{s}s"),
        Some(s) if s < 7200 => format!("{}m{:02}s", s / 60, s % 60),
        Some(s) if s < 172_800 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        Some(s) => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

pub(crate) async fn run(layer: &Layer) -> Result<Reply> {
    let status = layer.status().await;
    let mut human = String::new();
    let _ = writeln!(
        human,
        "{:<28} {:<20} {:<10} {:<10} {:>8} {:>8} {:>11} {:>11} {:>8}",
        "SERVICE", "UNIT", "CONTAINER", "HEALTH", "UPTIME", "RESTARTS", "MEMORY", "PEAK", "CPU"
    );
    for s in &status.services {
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
            s.cpu_seconds
                .map_or_else(|| "unknown".into(), |c| format!("{c:.1}s")),
        );
    }
    let _ = writeln!(
        human,
        "postgres data checksums: {}",
        match &status.checksums {
            None => "unknown (PostgreSQL could not be asked)".to_owned(),
            Some(c) if !c.enabled => "off".to_owned(),
            Some(c) if c.failures == 0 => "on, no failures".to_owned(),
            Some(c) => format!(
                "on, {} FAILURE(S){} (immich-db verify says what to do)",
                c.failures,
                c.last_failure
                    .as_deref()
                    .map(|t| format!(", the last at {t}"))
                    .unwrap_or_default()
            ),
        }
    );
    let _ = writeln!(human);
    for dir in &status.directories {
        let _ = writeln!(
            human,
            "{:<14} {:>11}  {}",
            dir.key,
            bytes(dir.bytes),
            dir.path
        );
    }
    let pool = &status.pool;
    let _ = writeln!(
        human,
        "pool {} ({}): {} used of {}, {} available",
        pool.path.display(),
        pool.filesystem.as_deref().unwrap_or("unknown"),
        bytes(pool.used),
        bytes(pool.size),
        bytes(pool.available)
    );
    let _ = write!(human, "{}", super::backup::summary(&status.backup));
    Reply::new(&status, human)
}
