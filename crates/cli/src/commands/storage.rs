//! `storage audit` and `storage fix-nocow`: the deployment's directories against
//! their intended copy-on-write state, and the repair of database files that
//! NOCOW never reached.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use homelab_btrfs::{AuditReport, ServiceState};
use serde::Serialize;
use serde_json::json;

use crate::context::Context;
use crate::desired::{self, Cow, Dir};
use crate::error::{Failure, Result};
use crate::lock;
use crate::output::Outcome;
use crate::verify;

#[derive(Debug, Subcommand)]
pub(crate) enum StorageCommand {
    /// Audit the deployment's directories: copy-on-write files inside the NOCOW
    /// database directories, NOCOW where copy-on-write was intended, and usage
    /// (exit 1 when something is wrong)
    #[command(after_help = "Example:\n  immich-db storage audit --json")]
    Audit,
    /// Stop each database whose directory holds copy-on-write files, rewrite
    /// them as NOCOW, start it again and verify
    #[command(after_help = "Example:\n  immich-db storage fix-nocow")]
    FixNocow,
}

/// How many copy-on-write files a report names (the count is always complete).
const EXAMPLES: usize = 5;

#[derive(Debug, Serialize)]
struct DirAudit {
    key: &'static str,
    path: PathBuf,
    intended: Cow,
    exists: bool,
    /// Whether the directory itself is NOCOW (`None`: no such attribute here).
    nocow: Option<bool>,
    cow_files: usize,
    cow_bytes: u64,
    cow_dirs: usize,
    leftovers: usize,
    /// A few of the copy-on-write files.
    examples: Vec<PathBuf>,
    files: Option<u64>,
    allocated_bytes: Option<u64>,
    problems: Vec<String>,
}

/// The pool's filesystem and how full it is (`None` where it cannot be read).
#[derive(Debug, Serialize)]
pub(crate) struct PoolUsage {
    pub(crate) path: PathBuf,
    pub(crate) filesystem: Option<String>,
    pub(crate) size: Option<u64>,
    pub(crate) used: Option<u64>,
    pub(crate) available: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Audit {
    ok: bool,
    directories: Vec<DirAudit>,
    pool: PoolUsage,
}

/// What needs fixing in a NOCOW directory, from its audit.
fn needs_fix(report: &AuditReport) -> bool {
    !report.root_nocow
        || !report.cow_files.is_empty()
        || !report.cow_dirs.is_empty()
        || !report.leftovers.is_empty()
}

fn audit_dir(dir: &Dir) -> (DirAudit, Option<AuditReport>) {
    let mut a = DirAudit {
        key: dir.key,
        path: dir.path.clone(),
        intended: dir.cow,
        exists: dir.path.is_dir(),
        nocow: None,
        cow_files: 0,
        cow_bytes: 0,
        cow_dirs: 0,
        leftovers: 0,
        examples: Vec::new(),
        files: None,
        allocated_bytes: None,
        problems: Vec::new(),
    };
    if !a.exists {
        a.problems
            .push("missing: `immich-db deploy` creates it".into());
        return (a, None);
    }
    let report = match homelab_btrfs::audit(&dir.path) {
        Ok(report) => report,
        Err(e) => {
            a.problems.push(e.to_string());
            return (a, None);
        }
    };
    a.nocow = Some(report.root_nocow);
    a.cow_files = report.cow_files.len();
    a.cow_bytes = report.cow_bytes();
    a.cow_dirs = report.cow_dirs.len();
    a.leftovers = report.leftovers.len();
    a.examples = report
        .cow_files
        .iter()
        .take(EXAMPLES)
        .map(|f| f.path.clone())
        .collect();
    a.files = report.total().map(|t| t.files);
    a.allocated_bytes = report.total().map(|t| t.allocated);
    match dir.cow {
        Cow::Off => {
            if !report.root_nocow {
                a.problems
                    .push("the directory is copy-on-write; new database files will be too".into());
            }
            if !report.cow_files.is_empty() {
                a.problems.push(format!(
                    "{} file(s) ({} bytes) are copy-on-write inside it",
                    report.cow_files.len(),
                    report.cow_bytes()
                ));
            }
            if !report.cow_dirs.is_empty() {
                a.problems.push(format!(
                    "{} directory(ies) inside it are copy-on-write",
                    report.cow_dirs.len()
                ));
            }
            if !report.leftovers.is_empty() {
                a.problems.push(format!(
                    "{} temporary copy(ies) of an interrupted migration are left",
                    report.leftovers.len()
                ));
            }
        }
        Cow::On => {
            if report.root_nocow {
                a.problems.push(
                    "the directory is NOCOW, but copy-on-write was intended: its new files get no checksums and snapshots do not protect them (fix: chattr -C, for new files)".into(),
                );
            }
        }
    }
    for skipped in &report.skipped {
        a.problems.push(format!(
            "not audited: {} ({:?})",
            skipped.path.display(),
            skipped.reason
        ));
    }
    (a, Some(report))
}

pub(crate) fn pool_usage(ctx: &Context) -> PoolUsage {
    let pool = &ctx.deployment.pool;
    let usage = homelab_btrfs::usage(pool).ok();
    PoolUsage {
        path: pool.clone(),
        filesystem: usage.map(|u| u.filesystem.to_string()),
        size: usage.map(|u| u.size),
        used: usage.map(|u| u.used),
        available: usage.map(|u| u.available),
    }
}

fn render(audit: &Audit) -> String {
    let mut human = String::new();
    for d in &audit.directories {
        let state = match (d.exists, d.nocow) {
            (false, _) => "missing",
            (true, Some(true)) => "NOCOW",
            (true, Some(false)) => "copy-on-write",
            (true, None) => "unknown",
        };
        let _ = writeln!(
            human,
            "{} {:<13} {:<14} {:>12}  {}",
            if d.problems.is_empty() {
                "ok  "
            } else {
                "FAIL"
            },
            d.key,
            state,
            d.allocated_bytes
                .map_or_else(|| "-".to_owned(), |b| format!("{b} B")),
            d.path.display()
        );
        for p in &d.problems {
            let _ = writeln!(human, "       {p}");
        }
        for e in &d.examples {
            let _ = writeln!(human, "       e.g. {}", e.display());
        }
    }
    let p = &audit.pool;
    let _ = writeln!(
        human,
        "pool {} ({}): {} of {} bytes used, {} available",
        p.path.display(),
        p.filesystem.as_deref().unwrap_or("unknown"),
        p.used.map_or_else(|| "?".into(), |v| v.to_string()),
        p.size.map_or_else(|| "?".into(), |v| v.to_string()),
        p.available.map_or_else(|| "?".into(), |v| v.to_string()),
    );
    human.push_str(if audit.ok {
        "storage audit: every directory is as intended"
    } else {
        "storage audit: problems found; `immich-db storage fix-nocow` repairs the database directories"
    });
    human
}

fn audit_all(ctx: &Context) -> (Audit, Vec<(Dir, Option<AuditReport>)>) {
    let mut directories = Vec::new();
    let mut reports = Vec::new();
    for dir in desired::dirs(&ctx.deployment) {
        let (a, report) = audit_dir(&dir);
        directories.push(a);
        reports.push((dir, report));
    }
    let ok = directories.iter().all(|d| d.problems.is_empty());
    (
        Audit {
            ok,
            directories,
            pool: pool_usage(ctx),
        },
        reports,
    )
}

pub(crate) async fn run(ctx: &Context, command: &StorageCommand) -> Result<Outcome> {
    match command {
        StorageCommand::Audit => {
            let (audit, _) = audit_all(ctx);
            let failed = !audit.ok;
            Ok(Outcome::ok(&audit, render(&audit))?.failed_if(failed))
        }
        StorageCommand::FixNocow => fix_nocow(ctx).await,
    }
}

/// The service and container that use a database directory.
fn service_of(ctx: &Context, dir: &Dir) -> (String, String) {
    let c = &ctx.deployment.config;
    let container = if dir.key == "postgres_dir" {
        &c.postgres.container_name
    } else {
        &c.valkey.container_name
    };
    (format!("{container}.service"), container.clone())
}

/// Makes every directory and file below `root` NOCOW; the service is stopped.
fn repair(root: &Path, report: &AuditReport) -> Result<(usize, u64)> {
    let failed =
        |e: homelab_btrfs::Error| Failure::failed(format!("cannot repair {}: {e}", root.display()));
    homelab_btrfs::set_nocow(root).map_err(failed)?;
    for dir in &report.cow_dirs {
        homelab_btrfs::set_nocow(dir).map_err(failed)?;
    }
    let files: Vec<&Path> = report.cow_files.iter().map(|f| f.path.as_path()).collect();
    let migrated =
        homelab_btrfs::migrate_to_nocow(&files, &ServiceState::Stopped).map_err(failed)?;
    let mut leftover_dirs: Vec<&Path> =
        report.leftovers.iter().filter_map(|p| p.parent()).collect();
    leftover_dirs.dedup();
    for dir in leftover_dirs {
        homelab_btrfs::clean_leftovers(dir).map_err(failed)?;
    }
    Ok((migrated.migrated.len(), migrated.bytes()))
}

async fn fix_nocow(ctx: &Context) -> Result<Outcome> {
    let ui = ctx.ui;
    let _lock = lock::acquire(&lock::lock_path(
        &ctx.deployment,
        ctx.runtime_dir.as_deref(),
    ))?;
    let (_, reports) = audit_all(ctx);
    let mut done: Vec<String> = Vec::new();
    let mut note = |what: String| {
        ui.note(format!("  {what}"));
        done.push(what);
    };
    let mut restarted = false;
    for (dir, report) in reports {
        if dir.cow != Cow::Off {
            continue;
        }
        let Some(report) = report else {
            if dir.path.is_dir() {
                return Err(
                    Failure::precondition(format!("cannot audit {}", dir.path.display()))
                        .help("run `immich-db storage audit` to see why"),
                );
            }
            continue;
        };
        if !needs_fix(&report) {
            continue;
        }
        let (service, container) = service_of(ctx, &dir);
        let was_active = ctx
            .systemd
            .show(&service, &["ActiveState"])
            .is_ok_and(|p| p.get("ActiveState").is_some_and(|s| s == "active"));
        ctx.systemd
            .stop(std::slice::from_ref(&service))
            .map_err(|e| Failure::failed(e.to_string()))?;
        note(format!("stopped {service}"));
        let still_running = ctx
            .runtime
            .inspect_container(&container)
            .await
            .is_ok_and(|info| info.state.running);
        let result = if still_running {
            Err(Failure::precondition(format!(
                "the container {container} still runs after {service} stopped: it is not run by that unit"
            ))
            .help(format!("stop it (`podman stop {container}`), then run fix-nocow again")))
        } else {
            repair(&dir.path, &report)
        };
        if was_active {
            // Started again whatever happened: the database must not stay down.
            let started = ctx.systemd.start(std::slice::from_ref(&service), true);
            match (&result, started) {
                (_, Ok(())) => {
                    note(format!("started {service}"));
                    restarted = true;
                }
                (Ok(_), Err(e)) => return Err(Failure::failed(e.to_string())),
                (Err(_), Err(_)) => {}
            }
        }
        let (files, bytes) = result?;
        note(format!(
            "{}: NOCOW set on the directory and {} subdirectory(ies); {files} file(s) ({bytes} bytes) rewritten as NOCOW",
            dir.path.display(),
            report.cow_dirs.len()
        ));
        let after = homelab_btrfs::audit(&dir.path)
            .map_err(|e| Failure::failed(format!("cannot audit {}: {e}", dir.path.display())))?;
        if needs_fix(&after) {
            return Err(Failure::failed(format!(
                "{} still holds {} copy-on-write file(s) after the repair",
                dir.path.display(),
                after.cow_files.len()
            ))
            .help("run `immich-db storage audit` for the list, then fix-nocow again"));
        }
    }
    let (audit, _) = audit_all(ctx);
    if done.is_empty() {
        let failed = !audit.ok;
        let mut human = render(&audit);
        human.push_str("\nfix-nocow: nothing to repair in the database directories");
        return Ok(Outcome::ok(
            json!({ "ok": audit.ok, "done": done, "audit": audit }),
            human,
        )?
        .failed_if(failed));
    }
    let verification = if restarted {
        ui.note("verifying");
        Some(verify::verify(ctx).await)
    } else {
        None
    };
    let failed = !audit.ok || verification.as_ref().is_some_and(|v| !v.ok);
    let mut human = render(&audit);
    if let Some(v) = &verification {
        human = format!("{human}\n{}", v.render());
    }
    let _ = write!(human, "\nfix-nocow: done ({} step(s))", done.len());
    Ok(Outcome::ok(
        json!({ "ok": !failed, "done": done, "audit": audit, "verify": verification }),
        human,
    )?
    .failed_if(failed))
}
