//! `import --compose-env PATH/.env`: move from an Immich docker-compose
//! install.

use std::fmt::Write as _;

use homelab_immich::config::Loaded;
use homelab_immich::deploy::DeployOptions;
use homelab_immich::import::{ComposeEnv, ImportRequest};
use homelab_immich::{Layer, Result};

use super::upgrade::{failed, lines};
use crate::args::ImportArgs;
use crate::output::Reply;
use crate::terminal::confirm;

pub(crate) async fn run(layer: &Layer, args: &ImportArgs, config: &Loaded) -> Result<Reply> {
    let env = ComposeEnv::read(&args.compose_env)?;
    let request = ImportRequest::new(env, config.clone())
        .source(&args.from_container)
        .options(DeployOptions::new().allow_non_btrfs(args.deploy.allow_non_btrfs));
    if !args.yes {
        confirm(
            &format!(
                "seed the password secret from {}, record its role, database and upload location in the configuration file, deploy, and load a dump of {} into the new PostgreSQL (the compose install is only read)",
                args.compose_env.display(),
                request.source
            ),
            None,
        )?;
    }
    let report = layer.import(&request).await?;
    let mut human = lines(&report.done);
    for finding in &report.password_findings {
        let _ = writeln!(human, "warning: DB_PASSWORD: {finding}");
    }
    let _ = write!(
        human,
        "import: {} of {} serves {} as {} ({} objects as in {})",
        report.database, report.source, report.database, report.user, report.objects, report.source
    );
    let failed = failed(Some(&report.verification), &mut human);
    Ok(Reply::new(&report, human)?
        .changed(report.changed)
        .failed_if(failed))
}
