//! `restore`: checks a backup, then loads it into the running PostgreSQL and
//! verifies the deployment.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use crate::backup;
use crate::context::Context;
use crate::error::{Failure, Result};
use crate::lock;
use crate::output::Outcome;
use crate::verify;

#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// The backup: a `.dump` file written by `immich-db backup` (or its
    /// `.json` manifest)
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// Restore into a database that is not empty: the objects the backup holds
    /// are dropped and created again from it
    #[arg(long)]
    pub(crate) force: bool,
}

pub(crate) async fn run(ctx: &Context, args: &RestoreArgs) -> Result<Outcome> {
    let ui = ctx.ui;
    let pg = &ctx.deployment.config.postgres;
    // The file is checked before anything else is looked at or touched.
    let checked = backup::check(&args.file)?;
    ui.note(format!(
        "{}: checksum and size match its manifest (PostgreSQL {}, {})",
        checked.dump.display(),
        checked.manifest.postgres_version,
        checked.manifest.created
    ));
    let _lock = lock::acquire(&lock::lock_path(
        &ctx.deployment,
        ctx.runtime_dir.as_deref(),
    ))?;
    backup::require_postgres(ctx).await?;
    if checked.manifest.database != pg.database {
        ui.note(format!(
            "note: the backup is of database {}; it is restored into {}",
            checked.manifest.database, pg.database
        ));
    }
    let relations = backup::user_relations(ctx).await?;
    if relations > 0 && !args.force {
        return Err(Failure::bad_input(format!(
            "the database {} is not empty ({relations} table(s), view(s) or sequence(s)): refusing to restore over it",
            pg.database
        ))
        .help(format!(
            "nothing was changed; to replace what the backup holds, run `immich-db restore --force {}` (take a backup first)",
            args.file.display()
        )));
    }
    ui.note(format!(
        "restoring into {} in {}{}",
        pg.database,
        pg.container_name,
        if relations > 0 {
            " (dropping the objects the backup holds first)"
        } else {
            ""
        }
    ));
    backup::restore(ctx, &checked, relations > 0).await?;
    ui.note("verifying");
    let verification = verify::verify(ctx).await;
    let failed = !verification.ok;
    let human = format!(
        "{}\nrestore: loaded {} into {}",
        verification.render(),
        checked.dump.display(),
        pg.database
    );
    Ok(Outcome::ok(
        json!({
            "ok": !failed,
            "restored": checked.dump,
            "manifest": checked.manifest,
            "replaced_existing": relations > 0,
            "verify": verification,
        }),
        human,
    )?
    .failed_if(failed))
}
