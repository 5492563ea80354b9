//! `backup`: a dump of the database now, the list of dumps, or a schedule.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use crate::backup;
use crate::config;
use crate::context::Context;
use crate::error::{Failure, Result};
use crate::output::Outcome;
use crate::schedule;

#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    /// Write the dump to this directory [default: `[backup] dir` of the
    /// configuration]
    #[arg(long, value_name = "DIR")]
    pub(crate) output: Option<PathBuf>,
    /// How many dumps to keep in the directory; older ones are deleted
    /// [default: `[backup] keep`]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) keep: Option<u32>,
    /// Install a systemd timer and service that run this backup: daily, weekly
    /// or a systemd calendar expression such as "*-*-* 03:30"
    #[arg(long, value_name = "WHEN", conflicts_with_all = ["unschedule", "list"])]
    pub(crate) schedule: Option<String>,
    /// Remove the timer and service that `--schedule` installed
    #[arg(long, conflicts_with_all = ["list", "output", "keep"])]
    pub(crate) unschedule: bool,
    /// List the backups in the directory, oldest first, and the schedule
    #[arg(long, conflicts_with = "keep")]
    pub(crate) list: bool,
}

#[allow(clippy::cast_precision_loss)]
fn size(bytes: u64) -> String {
    let mut value = bytes as f64;
    for unit in ["B", "KiB", "MiB", "GiB"] {
        if value < 1024.0 || unit == "GiB" {
            return if unit == "B" {
                format!("{bytes} B")
            } else {
                format!("{value:.1} {unit}")
            };
        }
        value /= 1024.0;
    }
    format!("{bytes} B")
}

fn directory(ctx: &Context, args: &BackupArgs) -> Result<PathBuf> {
    match &args.output {
        Some(dir) => backup::check_output_dir(&ctx.deployment, dir),
        None => Ok(ctx.deployment.backup.dir.clone()),
    }
}

pub(crate) async fn run(
    ctx: &Context,
    args: &BackupArgs,
    config_flag: Option<&Path>,
) -> Result<Outcome> {
    if args.unschedule {
        return unschedule(ctx);
    }
    let dir = directory(ctx, args)?;
    if let Some(when) = &args.schedule {
        return install(ctx, args, &dir, when, config_flag);
    }
    if args.list {
        return list(ctx, &dir);
    }
    let keep = args.keep.unwrap_or(ctx.deployment.backup.keep);
    ctx.ui.note(format!(
        "dumping {} from {} into {}",
        ctx.deployment.config.postgres.database,
        ctx.deployment.config.postgres.container_name,
        dir.display()
    ));
    let (made, removed) = backup::run(ctx, &dir, keep as usize).await?;
    let m = &made.manifest;
    let mut human = format!(
        "backup: wrote {} ({}, PostgreSQL {}, sha256 {})",
        made.dump.display(),
        size(m.size),
        m.postgres_version,
        m.sha256
    );
    for path in &removed {
        let _ = write!(human, "\nremoved the old backup {}", path.display());
    }
    Outcome::ok(
        json!({
            "ok": true,
            "backup": made,
            "removed": removed,
            "keep": keep,
        }),
        human,
    )
}

fn list(ctx: &Context, dir: &Path) -> Result<Outcome> {
    let backups = backup::list(&ctx.deployment, dir);
    let schedule = schedule::state(ctx);
    let mut human = String::new();
    if backups.is_empty() {
        let _ = writeln!(human, "no backups in {}", dir.display());
    }
    for b in &backups {
        let _ = writeln!(
            human,
            "{}  {:>10}  PostgreSQL {}  {}",
            b.manifest.created,
            size(b.manifest.size),
            b.manifest.postgres_version,
            b.dump.display()
        );
    }
    let _ = write!(human, "{}", describe_schedule(&schedule));
    Outcome::ok(
        json!({ "directory": dir, "backups": backups, "schedule": schedule }),
        human,
    )
}

pub(crate) fn describe_schedule(state: &schedule::State) -> String {
    match (state.installed, &state.next_run) {
        (false, _) => {
            "schedule: none (install one with `immich-db backup --schedule daily`)".into()
        }
        (true, Some(next)) => format!(
            "schedule: {} ({}), next run {next}",
            state.calendar.as_deref().unwrap_or("?"),
            state.timer
        ),
        (true, None) => format!(
            "schedule: {} ({}), timer {}",
            state.calendar.as_deref().unwrap_or("?"),
            state.timer,
            if state.active { "active" } else { "not active" }
        ),
    }
}

fn install(
    ctx: &Context,
    args: &BackupArgs,
    dir: &Path,
    when: &str,
    config_flag: Option<&Path>,
) -> Result<Outcome> {
    let calendar = schedule::check_calendar(when)?;
    let exe = std::env::current_exe()
        .map_err(|e| Failure::failed(format!("cannot find this program's path: {e}")))?;
    let mut command = vec![exe.display().to_string()];
    let origin = config::load(config_flag)?.origin;
    if let Some(path) = origin.path() {
        let path = std::fs::canonicalize(path)
            .map_err(|e| Failure::bad_input(format!("cannot resolve {}: {e}", path.display())))?;
        command.push("--config".into());
        command.push(path.display().to_string());
    }
    command.push("backup".into());
    if args.output.is_some() {
        command.push("--output".into());
        command.push(dir.display().to_string());
    }
    if let Some(keep) = args.keep {
        command.push("--keep".into());
        command.push(keep.to_string());
    }
    let (units, state) = schedule::install(ctx, &calendar, &command)?;
    let human = format!(
        "installed {} and {} in {}\n{}",
        units.timer,
        units.service,
        ctx.deployment.backup.unit_dir.display(),
        describe_schedule(&state)
    );
    Outcome::ok(
        json!({ "ok": true, "units": units, "schedule": state, "command": command }),
        human,
    )
}

fn unschedule(ctx: &Context) -> Result<Outcome> {
    let removed = schedule::remove(ctx)?;
    let units = schedule::units(&ctx.deployment);
    let human = if removed {
        format!("removed {} and {}", units.timer, units.service)
    } else {
        "no backup schedule was installed".to_owned()
    };
    Outcome::ok(
        json!({ "ok": true, "removed": removed, "units": units }),
        human,
    )
}

/// The last backup and the schedule, for `status`.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Summary {
    pub(crate) directory: PathBuf,
    pub(crate) count: usize,
    pub(crate) last: Option<backup::Backup>,
    pub(crate) schedule: schedule::State,
}

pub(crate) fn summary(ctx: &Context) -> Summary {
    let dir = ctx.deployment.backup.dir.clone();
    let mut backups = backup::list(&ctx.deployment, &dir);
    Summary {
        count: backups.len(),
        last: backups.pop(),
        schedule: schedule::state(ctx),
        directory: dir,
    }
}

impl Summary {
    /// Two lines for `status`.
    pub(crate) fn render(&self) -> String {
        let last = match &self.last {
            Some(b) => format!(
                "last backup: {} ({}, {} backup(s) in {})",
                b.manifest.created,
                size(b.manifest.size),
                self.count,
                self.directory.display()
            ),
            None => format!("last backup: none in {}", self.directory.display()),
        };
        format!("{last}\n{}", describe_schedule(&self.schedule))
    }
}
