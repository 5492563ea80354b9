//! `storage audit` and `storage fix-nocow`: the deployment's directories against
//! their intended copy-on-write state, and the repair of database files that
//! NOCOW never reached.

use std::path::{Path, PathBuf};

use homelab_btrfs::{AuditReport, ServiceState};
use serde::Serialize;

use crate::desired::{self, Cow, Dir};
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::lock;
use crate::progress::Event;
use crate::verify;

/// How many copy-on-write files a report names (the count is always complete).
const EXAMPLES: usize = 5;

/// One directory against its intended copy-on-write state.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct DirAudit {
    /// Its configuration key.
    pub key: &'static str,
    /// Where it is.
    pub path: PathBuf,
    /// Whether copy-on-write is to be on or off.
    pub intended: Cow,
    /// Whether it exists.
    pub exists: bool,
    /// Whether the directory itself is NOCOW (`None`: no such attribute here).
    pub nocow: Option<bool>,
    /// Copy-on-write files inside a NOCOW directory.
    pub cow_files: usize,
    /// Their bytes.
    pub cow_bytes: u64,
    /// Copy-on-write directories inside a NOCOW directory.
    pub cow_dirs: usize,
    /// Temporary copies an interrupted repair left.
    pub leftovers: usize,
    /// A few of the copy-on-write files.
    pub examples: Vec<PathBuf>,
    /// How many files it holds.
    pub files: Option<u64>,
    /// Bytes allocated on disk.
    pub allocated_bytes: Option<u64>,
    /// What is wrong, for a person.
    pub problems: Vec<String>,
}

/// The pool's filesystem and how full it is (`None` where it cannot be read).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PoolUsage {
    /// The pool's mount point.
    pub path: PathBuf,
    /// Its filesystem.
    pub filesystem: Option<String>,
    /// Its size in bytes.
    pub size: Option<u64>,
    /// Bytes used.
    pub used: Option<u64>,
    /// Bytes available.
    pub available: Option<u64>,
}

/// The deployment's directories against their intended copy-on-write state.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct StorageAudit {
    /// Whether every directory is as intended.
    pub ok: bool,
    /// Each directory.
    pub directories: Vec<DirAudit>,
    /// The pool.
    pub pool: PoolUsage,
}

/// What a NOCOW repair did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct NocowRepair {
    /// Whether the directories are as intended now and the deployment verifies.
    pub ok: bool,
    /// What was done, in order.
    pub done: Vec<String>,
    /// The audit after the repair.
    pub audit: StorageAudit,
    /// The checks after the databases were started again.
    pub verify: Option<crate::verify::Verification>,
}

impl Layer {
    /// Audits the deployment's directories: copy-on-write files inside the
    /// NOCOW database directories, NOCOW where copy-on-write was intended, and
    /// usage.
    pub fn audit_storage(&self) -> StorageAudit {
        audit_all(self).0
    }

    /// Stops each database whose directory holds copy-on-write files, rewrites
    /// them as NOCOW, starts it again and verifies.
    pub async fn fix_nocow(&self) -> Result<NocowRepair> {
        fix_nocow(self).await
    }
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

pub(crate) fn pool_usage(ctx: &Layer) -> PoolUsage {
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

fn audit_all(ctx: &Layer) -> (StorageAudit, Vec<(Dir, Option<AuditReport>)>) {
    let mut directories = Vec::new();
    let mut reports = Vec::new();
    for dir in desired::dirs(&ctx.deployment) {
        let (a, report) = audit_dir(&dir);
        directories.push(a);
        reports.push((dir, report));
    }
    let ok = directories.iter().all(|d| d.problems.is_empty());
    (
        StorageAudit {
            ok,
            directories,
            pool: pool_usage(ctx),
        },
        reports,
    )
}

/// The service and container that use a database directory.
fn service_of(ctx: &Layer, dir: &Dir) -> (String, String) {
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
        |e: homelab_btrfs::Error| Error::failed(format!("cannot repair {}: {e}", root.display()));
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

async fn fix_nocow(ctx: &Layer) -> Result<NocowRepair> {
    let _lock = lock::acquire(&lock::lock_path(
        &ctx.deployment,
        ctx.runtime_dir.as_deref(),
    ))?;
    let (_, reports) = audit_all(ctx);
    let mut done: Vec<String> = Vec::new();
    let mut note = |what: String| {
        ctx.tell(Event::Done(&what));
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
                    Error::precondition(format!("cannot audit {}", dir.path.display()))
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
            .unit(&service)
            .await
            .is_ok_and(|u| u.active == homelab_systemd::ActiveState::Active);
        ctx.systemd
            .stop(std::slice::from_ref(&service))
            .await
            .map_err(|e| Error::failed(e.to_string()))?;
        note(format!("stopped {service}"));
        let still_running = ctx
            .runtime
            .inspect_container(&container)
            .await
            .is_ok_and(|info| info.state.running);
        let result = if still_running {
            Err(Error::precondition(format!(
                "the container {container} still runs after {service} stopped: it is not run by that unit"
            ))
            .help(format!("stop it (`podman stop {container}`), then run fix-nocow again")))
        } else {
            repair(&dir.path, &report)
        };
        if was_active {
            // Started again whatever happened: the database must not stay down.
            let started = ctx
                .systemd
                .start(std::slice::from_ref(&service), homelab_systemd::Wait::Done)
                .await;
            match (&result, started) {
                (_, Ok(())) => {
                    note(format!("started {service}"));
                    restarted = true;
                }
                (Ok(_), Err(e)) => return Err(Error::failed(e.to_string())),
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
            .map_err(|e| Error::failed(format!("cannot audit {}: {e}", dir.path.display())))?;
        if needs_fix(&after) {
            return Err(Error::failed(format!(
                "{} still holds {} copy-on-write file(s) after the repair",
                dir.path.display(),
                after.cow_files.len()
            ))
            .help("run `immich-db storage audit` for the list, then fix-nocow again"));
        }
    }
    let (audit, _) = audit_all(ctx);
    let verify = if restarted {
        ctx.tell(Event::Phase("verifying"));
        Some(verify::verify(ctx).await)
    } else {
        None
    };
    Ok(NocowRepair {
        ok: audit.ok && verify.as_ref().is_none_or(|v| v.ok),
        done,
        audit,
        verify,
    })
}
