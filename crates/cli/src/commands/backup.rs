//! `backup` (now, `--list`, `--schedule`, `--unschedule`) and `restore`.

use std::fmt::Write as _;
use std::path::Path;

use homelab_immich::backups::{
    BackupMethod, BackupOptions, BackupSummary, Compressor, ScheduleRequest, ScheduleState,
};
use homelab_immich::{Error, Layer, Result};

use crate::args::{BackupArgs, BackupMethodArg, RestoreArgs};
use crate::output::{Reply, bytes};

fn options(args: &BackupArgs) -> BackupOptions {
    let mut options = BackupOptions::new();
    if let Some(dir) = &args.output {
        options = options.output(dir);
    }
    if let Some(keep) = args.keep {
        options = options.keep(keep);
    }
    if let Some(method) = args.method {
        options = options.method(match method {
            BackupMethodArg::PgDumpZstd => BackupMethod::PgDumpZstd,
            BackupMethodArg::HostZstd => BackupMethod::HostZstd,
        });
    }
    options
}

pub(crate) async fn run(layer: &Layer, args: &BackupArgs, config: Option<&Path>) -> Result<Reply> {
    if args.unschedule {
        let report = layer.unschedule_backups().await?;
        let human = if report.removed {
            format!(
                "removed {} and {}",
                report.units.timer, report.units.service
            )
        } else {
            "no backup schedule was installed".to_owned()
        };
        return Ok(Reply::new(&report, human)?.changed(report.removed));
    }
    if let Some(when) = &args.schedule {
        let program = std::env::current_exe()
            .map_err(|e| Error::failed(format!("cannot find this program's path: {e}")))?;
        let mut request = ScheduleRequest::new(when, program).options(options(args));
        if let Some(config) = config {
            request = request.config(config);
        }
        let report = layer.schedule_backups(&request).await?;
        let human = format!(
            "installed {} and {} in {}\n{}",
            report.units.timer,
            report.units.service,
            layer.deployment().backup.unit_dir.display(),
            schedule(&report.schedule)
        );
        return Ok(Reply::new(&report, human)?.changed(true));
    }
    if args.list {
        let list = layer.backups(&options(args)).await?;
        let mut human = String::new();
        if list.backups.is_empty() {
            let _ = writeln!(human, "no backups in {}", list.directory.display());
        }
        for b in &list.backups {
            let _ = writeln!(
                human,
                "{}  {:>10}  PostgreSQL {}  {}",
                b.manifest.created,
                bytes(Some(b.manifest.size)),
                b.manifest.postgres_version,
                b.dump.display()
            );
        }
        let _ = write!(human, "{}", schedule(&list.schedule));
        return Reply::new(&list, human);
    }
    let report = layer.backup(&options(args)).await?;
    let m = &report.backup.manifest;
    let compressed_by = match m.compression.by {
        Compressor::PgDump => "pg_dump",
        _ => "this host",
    };
    let mut human = format!(
        "backup: wrote {} ({}, zstd by {compressed_by}, PostgreSQL {}, sha256 {})",
        report.backup.dump.display(),
        bytes(Some(m.size)),
        m.postgres_version,
        m.sha256
    );
    for path in &report.removed {
        let _ = write!(human, "\nremoved the old backup {}", path.display());
    }
    Ok(Reply::new(&report, human)?.changed(true))
}

pub(crate) async fn restore(layer: &Layer, args: &RestoreArgs) -> Result<Reply> {
    let report = layer.restore(&args.file, args.force).await?;
    let mut human = format!("{}", report.verify);
    if let Some(dump) = &report.sql_dump {
        if !dump.left_out.is_empty() {
            let _ = write!(
                human,
                "\nleft out the dump's other databases: {}",
                dump.left_out.join(", ")
            );
        }
        if !dump.roles_created.is_empty() {
            let _ = write!(
                human,
                "\ncreated the dump's roles: {}",
                dump.roles_created.join(", ")
            );
        }
    }
    let _ = write!(
        human,
        "\nrestore: loaded {} into {} ({})",
        report.restored.display(),
        report.database,
        report.loaded.how
    );
    Ok(Reply::new(&report, human)?
        .changed(true)
        .failed_if(!report.ok))
}

/// The schedule, in a line.
fn schedule(state: &ScheduleState) -> String {
    match (state.installed, &state.next_run) {
        (false, _) => {
            "schedule: none (install one with `immich-db backup --schedule daily`)".into()
        }
        (true, Some(next)) => format!(
            "schedule: {} ({}), next run {}",
            state.calendar.as_deref().unwrap_or("?"),
            state.timer,
            next.format("%Y-%m-%d %H:%M:%S UTC")
        ),
        (true, None) => format!(
            "schedule: {} ({}), timer {}",
            state.calendar.as_deref().unwrap_or("?"),
            state.timer,
            if state.active { "active" } else { "not active" }
        ),
    }
}

/// The last backup and the schedule, two lines for `status`.
pub(crate) fn summary(summary: &BackupSummary) -> String {
    let last = match &summary.last {
        Some(b) => format!(
            "last backup: {} ({}, {} backup(s) in {})",
            b.manifest.created,
            bytes(Some(b.manifest.size)),
            summary.count,
            summary.directory.display()
        ),
        None => format!("last backup: none in {}", summary.directory.display()),
    };
    format!("{last}\n{}", schedule(&summary.schedule))
}
