//! `restore --target URL`: a backup loaded into another PostgreSQL.

use homelab_immich::transfer::{self, PasswordSource, Target, TargetRestore};
use homelab_immich::{Deployment, Error, Progress, Result};

use crate::args::RestoreArgs;
use crate::output::Reply;

pub(crate) async fn restore(
    deployment: &Deployment,
    args: &RestoreArgs,
    progress: &dyn Progress,
) -> Result<Reply> {
    let url = args
        .target
        .as_deref()
        .ok_or_else(|| Error::failed("restore to a target without --target"))?;
    // The URL is checked before the password is read.
    let target = Target::parse(url)?;
    let source = match &args.password_file {
        Some(file) => PasswordSource::File(file.clone()),
        None => PasswordSource::Stdin,
    };
    let password = transfer::read_password(&source)?;
    let request = TargetRestore::new(&args.file, target, password).force(args.force);
    let report = transfer::restore(deployment, &request, progress).await?;
    let m = &report.manifest;
    let human = format!(
        "restore: loaded {} (database {}, PostgreSQL {}, {}) into {} (PostgreSQL {}) with pg_restore {}: \
         {} table(s) created, {} relation(s) there now ({} before){}{}",
        report.restored.display(),
        m.database,
        m.postgres_version,
        m.created,
        report.target,
        report.server_version,
        report.pg_restore.version,
        report.tables_restored,
        report.relations_after,
        report.relations_before,
        if report.replaced_existing {
            " (dropped first, --force)"
        } else {
            ""
        },
        if report.comments_restored {
            ""
        } else {
            "; comments left out (the role is not a superuser)"
        },
    );
    Ok(Reply::new(&report, human)?.changed(true))
}
