//! `plan`, `deploy`, `verify` and `destroy`.

use std::fmt::Write as _;
use std::io::{BufRead as _, IsTerminal as _, Write as _};

use homelab_immich::deploy::DeployOptions;
use homelab_immich::destroy::DestroyOptions;
use homelab_immich::{Error, Layer, Result};

use crate::args::{DeployArgs, DestroyArgs};
use crate::output::Reply;

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

/// Asks on the terminal before something that cannot be undone.
fn confirm(what: &str) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(
            Error::bad_input(format!("refusing to {what} without confirmation"))
                .help("pass --yes to confirm; nothing was changed"),
        );
    }
    eprint!("This will {what}. It cannot be undone. Type `yes` to go on: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(Error::bad_input("not confirmed").help("nothing was changed"))
    }
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
        confirm(&what.join(" and "))?;
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
