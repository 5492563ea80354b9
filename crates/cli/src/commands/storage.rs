//! `storage audit` and `storage fix-nocow`.

use std::fmt::Write as _;

use homelab_immich::storage::StorageAudit;
use homelab_immich::{Layer, Result};

use crate::args::StorageCommand;
use crate::output::Reply;

pub(crate) async fn run(layer: &Layer, command: &StorageCommand) -> Result<Reply> {
    match command {
        StorageCommand::Audit => {
            let audit = layer.audit_storage();
            Ok(Reply::new(&audit, render(&audit))?.failed_if(!audit.ok))
        }
        StorageCommand::FixNocow => {
            let repair = layer.fix_nocow().await?;
            let mut human = render(&repair.audit);
            if let Some(v) = &repair.verify {
                let _ = write!(human, "\n{v}");
            }
            if repair.done.is_empty() {
                human.push_str("\nfix-nocow: nothing to repair in the database directories");
            } else {
                let _ = write!(human, "\nfix-nocow: done ({} step(s))", repair.done.len());
            }
            let changed = !repair.done.is_empty();
            Ok(Reply::new(&repair, human)?
                .changed(changed)
                .failed_if(!repair.ok))
        }
    }
}

fn render(audit: &StorageAudit) -> String {
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
