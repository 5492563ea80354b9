//! `plan`, `deploy`, `verify` and `destroy`.

use std::fmt::Write as _;

use homelab_immich::deploy::DeployOptions;
use homelab_immich::destroy::DestroyOptions;
use homelab_immich::{Layer, Result};

use crate::args::{DeployArgs, DestroyArgs};
use crate::output::Reply;
use crate::terminal::confirm;

fn options(args: &DeployArgs) -> DeployOptions {
    DeployOptions::new().allow_non_btrfs(args.allow_non_btrfs)
}

pub(crate) async fn plan(layer: &Layer, args: &DeployArgs) -> Result<Reply> {
    let report = layer.plan(&options(args)).await?;
    let mut human = String::new();
    for w in report.preconditions.warnings() {
        let fix = w.fix.as_deref().map(|f| format!(" (fix: {f})"));
        let _ = writeln!(human, "warning: {}{}", w.detail, fix.unwrap_or_default());
    }
    let _ = write!(human, "{}", report.plan);
    Reply::new(&report, human)
}

pub(crate) async fn deploy(layer: &Layer, args: &DeployArgs) -> Result<Reply> {
    let report = layer.deploy(&options(args)).await?;
    let human = match &report.verification {
        Some(verification) => format!(
            "{verification}\ndeploy: done; {} change(s), all checks passed",
            report.done.len()
        ),
        None => "No changes: the deployment is as configured; nothing was restarted.".into(),
    };
    Ok(Reply::new(&report, human)?.changed(report.changed))
}

pub(crate) async fn verify(layer: &Layer) -> Result<Reply> {
    let verification = layer.verify().await;
    Ok(Reply::new(&verification, verification.to_string())?.failed_if(!verification.ok))
}

pub(crate) async fn destroy(layer: &Layer, args: &DestroyArgs) -> Result<Reply> {
    if (args.purge_data || args.purge_secrets) && !args.yes {
        let mut what = Vec::new();
        if args.purge_data {
            what.push("delete the data directories (the databases and the ML cache)".to_owned());
        }
        if args.purge_secrets {
            what.push(format!(
                "delete the secrets {}",
                layer.deployment().secret_names().join(", ")
            ));
        }
        confirm(&what.join(" and "), Some("It cannot be undone."))?;
    }
    let options = DestroyOptions::new()
        .purge_data(args.purge_data)
        .purge_secrets(args.purge_secrets);
    let report = layer.destroy(&options).await?;
    let mut human = if report.done.is_empty() {
        "Nothing to remove.".to_owned()
    } else {
        format!("destroy: done ({} step(s))", report.done.len())
    };
    if report.kept_data {
        human.push_str("\nkept the data directories (use --purge-data to delete them)");
    }
    if report.kept_secrets {
        human.push_str("\nkept the secrets (use --purge-secrets to delete them)");
    }
    Ok(Reply::new(&report, human)?.changed(!report.done.is_empty()))
}
