//! `upgrade --image IMAGE` and `upgrade --rollback`.

use std::fmt::Write as _;

use homelab_immich::config::Loaded;
use homelab_immich::deploy::DeployOptions;
use homelab_immich::upgrade::UpgradeRequest;
use homelab_immich::verify::Verification;
use homelab_immich::{Layer, Result};

use crate::args::UpgradeArgs;
use crate::output::Reply;
use crate::terminal::confirm;

pub(crate) async fn run(layer: &Layer, args: &UpgradeArgs, config: &Loaded) -> Result<Reply> {
    let options = DeployOptions::new().allow_non_btrfs(args.deploy.allow_non_btrfs);
    if args.rollback {
        if !args.yes {
            confirm(
                "go back to the PostgreSQL cluster from before the last upgrade; what was written \
                 to the database since the upgrade is not carried back",
                None,
            )?;
        }
        let report = layer.rollback_upgrade(config, &options).await?;
        let mut human = lines(&report.done);
        let _ = write!(
            human,
            "upgrade --rollback: PostgreSQL {} ({}) serves from {}",
            report.to.major,
            report.to.image,
            report.to.path.display()
        );
        let failed = failed(report.verification.as_ref(), &mut human);
        return Ok(Reply::new(&report, human)?
            .changed(report.changed)
            .failed_if(failed));
    }
    let image = args.image.clone().unwrap_or_default();
    let request = UpgradeRequest::new(image, config.clone()).options(options);
    if !args.yes {
        let plan = layer.plan_upgrade(&request).await?;
        if plan.steps.is_empty() {
            return Ok(Reply::new(&plan, plan.to_string())?.changed(false));
        }
        eprint!("{plan}");
        confirm("upgrade PostgreSQL as above", None)?;
    }
    let report = layer.upgrade(&request).await?;
    let mut human = lines(&report.done);
    if report.changed {
        let _ = write!(
            human,
            "upgrade: PostgreSQL {} ({}) serves from {}; PostgreSQL {} is kept in {}",
            report.to.major,
            report.to.image,
            report.to.path.display(),
            report.from.major,
            report.kept.display()
        );
    } else {
        let _ = write!(
            human,
            "No changes: PostgreSQL {} ({}) serves already.",
            report.to.major, report.to.image
        );
    }
    let failed = failed(report.verification.as_ref(), &mut human);
    Ok(Reply::new(&report, human)?
        .changed(report.changed)
        .failed_if(failed))
}

/// What was done, a line each.
pub(super) fn lines(done: &[String]) -> String {
    let mut out = String::new();
    for line in done {
        let _ = writeln!(out, "- {line}");
    }
    out
}

/// Adds a failed verification to the text; whether it failed.
pub(super) fn failed(verification: Option<&Verification>, human: &mut String) -> bool {
    match verification {
        Some(v) if !v.ok => {
            let _ = write!(human, "\n{v}");
            true
        }
        _ => false,
    }
}
