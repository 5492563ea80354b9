//! `update`: each service on the newest image of its name, health-gated, rolled
//! back when the new image is not healthy in time.

use std::fmt::Write as _;
use std::time::Duration;

use homelab_immich::update::{Outcome, Service, UpdateOptions};
use homelab_immich::{Layer, Result};

use crate::args::{ServiceArg, UpdateArgs};
use crate::output::Reply;

pub(crate) async fn run(layer: &Layer, args: &UpdateArgs) -> Result<Reply> {
    let mut options = UpdateOptions::new()
        .pull(!args.no_pull)
        .gate(Duration::from_secs(args.timeout));
    if let Some(service) = args.service {
        options = options.service(match service {
            ServiceArg::Postgres => Service::Postgres,
            ServiceArg::Valkey => Service::Valkey,
        });
    }
    let report = layer.update(&options).await?;
    let mut human = String::new();
    for s in &report.services {
        let short = |id: &str| id.get(..12).unwrap_or(id).to_owned();
        let what = match &s.outcome {
            Outcome::UpToDate => format!("runs the newest {} already", s.image),
            Outcome::Pinned => format!(
                "{} is pinned by digest: change the digest in the configuration and deploy",
                s.image
            ),
            Outcome::Updated { healthy_after_s } => format!(
                "moved from image {} to {} of {}, healthy after {healthy_after_s:.1} s (the old image stays in local storage until `podman image prune`)",
                short(&s.previous),
                short(&s.candidate),
                s.image
            ),
            Outcome::RolledBack { reason } => format!(
                "ROLLED BACK: image {} of {} was {reason}; {} runs image {} again, and {} names it",
                short(&s.candidate),
                s.image,
                s.unit,
                short(&s.previous),
                s.image
            ),
            _ => "done".to_owned(),
        };
        let _ = writeln!(human, "{}: {what}", s.unit);
    }
    human.push_str(if report.rolled_back() {
        "update: a new image failed its health check and was rolled back"
    } else if report.changed() {
        "update: done"
    } else {
        "update: nothing to update"
    });
    let changed = report.changed();
    let failed = report.rolled_back();
    Ok(Reply::new(&report, human)?
        .changed(changed)
        .failed_if(failed))
}
