//! Restores that apply entirely or not at all, also with parallel jobs: the
//! backup is loaded into a new database beside the deployment's, and only once
//! it is complete does it take the deployment database's name, in one
//! transaction (the old one is then dropped). A load that fails leaves the
//! deployment's database as it was; the new one is dropped.
//!
//! Databases an interrupted restore left behind carry names of their own
//! (`immich_db_restore_…`, `immich_db_replaced_…`) and are dropped by the next
//! restore.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::backup::psql_on;
use crate::db_settings::{ident, literal};
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::progress::Event;

/// The prefix of a database being restored.
const RESTORING: &str = "immich_db_restore_";
/// The prefix of a database a restore replaced, before it is dropped.
const REPLACED: &str = "immich_db_replaced_";

/// The database this tool connects to while it renames the deployment's:
/// `postgres`, or `template1` when the deployment's database is `postgres`.
pub(crate) fn maintenance_database(database: &str) -> &'static str {
    if database == "postgres" {
        "template1"
    } else {
        "postgres"
    }
}

/// A new, empty database that a restore loads, to replace the deployment's.
#[derive(Debug)]
pub(crate) struct Fresh {
    /// Its name.
    pub(crate) name: String,
    /// Where this tool connects meanwhile.
    pub(crate) maintenance: &'static str,
    /// The deployment's database, which it replaces.
    pub(crate) database: String,
}

fn stamp() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Drops what interrupted restores left: new databases never swapped in, and
/// replaced ones never dropped. Says which.
async fn drop_leftovers(ctx: &Layer, maintenance: &str) -> Result<()> {
    let names = psql_on(
        ctx,
        maintenance,
        "looking for databases an interrupted restore left",
        &format!(
            "SELECT datname FROM pg_database WHERE datname LIKE {} OR datname LIKE {} ORDER BY 1;",
            literal(&format!("{}%", RESTORING.replace('_', "\\_"))),
            literal(&format!("{}%", REPLACED.replace('_', "\\_")))
        ),
    )
    .await?;
    for name in names.lines().filter(|n| !n.is_empty()) {
        psql_on(
            ctx,
            maintenance,
            "dropping a database an interrupted restore left",
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE);", ident(name)),
        )
        .await?;
        ctx.tell(Event::Done(&format!(
            "dropped the database {name}, left by an interrupted restore"
        )));
    }
    Ok(())
}

impl Fresh {
    /// Creates the new database: empty (from `template0`), owned by the
    /// deployment's role, with the encoding and locale of the deployment's
    /// database.
    pub(crate) async fn create(ctx: &Layer) -> Result<Self> {
        let pg = &ctx.deployment.config.postgres;
        let maintenance = maintenance_database(&pg.database);
        drop_leftovers(ctx, maintenance).await?;
        let like = psql_on(
            ctx,
            maintenance,
            "reading the database's encoding and locale",
            &format!(
                "SELECT format(' ENCODING %L LC_COLLATE %L LC_CTYPE %L', \
                 pg_encoding_to_char(encoding), datcollate, datctype) \
                 FROM pg_database WHERE datname = {};",
                literal(&pg.database)
            ),
        )
        .await?;
        let name = format!("{RESTORING}{}", stamp());
        psql_on(
            ctx,
            maintenance,
            "creating the database to restore into",
            &format!(
                "CREATE DATABASE {} WITH TEMPLATE template0 OWNER {}{like};",
                ident(&name),
                ident(&pg.user)
            ),
        )
        .await?;
        Ok(Self {
            name,
            maintenance,
            database: pg.database.clone(),
        })
    }

    /// Drops the new database after a failed load; the deployment's is as it
    /// was.
    pub(crate) async fn abandon(self, ctx: &Layer) {
        if let Err(e) = psql_on(
            ctx,
            self.maintenance,
            "dropping the database of a failed restore",
            &format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE);",
                ident(&self.name)
            ),
        )
        .await
        {
            ctx.tell(Event::Warning(&format!(
                "the database {} of the failed restore is left ({}); the next restore drops it",
                self.name, e.what
            )));
        }
    }

    /// Gives the new database the deployment database's name: no new
    /// connections to the old one, those there ended, then both renamed in one
    /// transaction; the old one is dropped. Immich reconnects to the new one.
    pub(crate) async fn swap(self, ctx: &Layer) -> Result<()> {
        let old = format!("{REPLACED}{}", stamp());
        let exists = psql_on(
            ctx,
            self.maintenance,
            "looking for the database to replace",
            &format!(
                "SELECT count(*) FROM pg_database WHERE datname = {};",
                literal(&self.database)
            ),
        )
        .await?
            == "1";
        let rename_new = format!(
            "ALTER DATABASE {} RENAME TO {};",
            ident(&self.name),
            ident(&self.database)
        );
        if !exists {
            return psql_on(
                ctx,
                self.maintenance,
                "naming the restored database",
                &rename_new,
            )
            .await
            .map(drop);
        }
        let database = ident(&self.database);
        let swapped = psql_on(
            ctx,
            self.maintenance,
            "putting the restored database in place",
            &format!(
                "ALTER DATABASE {database} WITH ALLOW_CONNECTIONS false;\n\
                 SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity \
                 WHERE datname = {} AND pid <> pg_backend_pid();\n\
                 BEGIN;\n\
                 ALTER DATABASE {database} RENAME TO {};\n\
                 {rename_new}\n\
                 COMMIT;",
                literal(&self.database),
                ident(&old)
            ),
        )
        .await;
        if let Err(e) = swapped {
            // The renames are one transaction: the old database is still in
            // place, and takes connections again.
            let _ = psql_on(
                ctx,
                self.maintenance,
                "opening the database again",
                &format!("ALTER DATABASE {database} WITH ALLOW_CONNECTIONS true;"),
            )
            .await;
            self.abandon(ctx).await;
            return Err(e);
        }
        if let Err(e) = psql_on(
            ctx,
            self.maintenance,
            "dropping the replaced database",
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE);", ident(&old)),
        )
        .await
        {
            ctx.tell(Event::Warning(&format!(
                "the replaced database is left as {old} ({}); the next restore drops it",
                e.what
            )));
        }
        Ok(())
    }
}

/// The size of a database in bytes (what `pg_database_size` counts).
pub(crate) async fn database_size(ctx: &Layer, maintenance: &str, database: &str) -> Result<u64> {
    let size = psql_on(
        ctx,
        maintenance,
        "measuring the database",
        &format!("SELECT pg_database_size({});", literal(database)),
    )
    .await?;
    size.parse().map_err(|_| {
        Error::failed(format!(
            "psql answered {size:?} when asked for the database's size"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_maintenance_database_is_never_the_one_replaced() {
        assert_eq!(maintenance_database("immich"), "postgres");
        assert_eq!(maintenance_database("postgres"), "template1");
    }
}
