//! Moving from an Immich docker-compose install.
//!
//! [`Layer::import`] reads the compose install's `.env` ([`ComposeEnv`]),
//! seeds the deployment's PostgreSQL password secret with the password the
//! compose database already has (through podman's secret store: never in an
//! argument, a log line or a file), records the role, the database and the
//! upload location in the configuration file (its comments kept), dumps the
//! running compose database with the library's backup (into the backup
//! directory, with its checksum and manifest), deploys, restores the dump
//! into the new PostgreSQL, and checks that it holds what the compose
//! database does (every table's rows, every index, view, sequence and
//! extension). The compose install is only read: its container keeps
//! running, and its data directory and `.env` are not touched.
//!
//! A rerun after an interruption finishes: what was written is kept, an
//! empty database gets the restore, and one that holds the compose
//! database's contents already is left as it is.

mod compose_env;

use std::path::PathBuf;

use homelab_secrets::{Policy, StoreError};
use serde::Serialize;

pub use compose_env::ComposeEnv;

use crate::backups::BackupOptions;
use crate::config::Loaded;
use crate::config::edit::{self, Change};
use crate::deploy::DeployOptions;
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::layout::{self, PostgresLayout};
use crate::progress::Event;
use crate::upgrade::compare;
use crate::verify::Verification;
use crate::{backup, lock};

/// The container name of the database in Immich's docker-compose file.
pub const COMPOSE_CONTAINER: &str = "immich_postgres";

/// What an import is asked to do.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ImportRequest {
    /// The compose install's `.env`.
    pub env: ComposeEnv,
    /// The compose database's container, running.
    pub source: String,
    /// The configuration, whose file records the role, the database and
    /// the upload location.
    pub config: Loaded,
    /// What the deploy accepts of the host.
    pub options: DeployOptions,
}

impl ImportRequest {
    /// An import of the compose install that `env` describes, from its
    /// container [`COMPOSE_CONTAINER`], recorded in `config`'s file.
    pub fn new(env: ComposeEnv, config: Loaded) -> Self {
        Self {
            env,
            source: COMPOSE_CONTAINER.to_owned(),
            config,
            options: DeployOptions::new(),
        }
    }

    /// From this container instead.
    #[must_use]
    pub fn source(mut self, container: impl Into<String>) -> Self {
        self.source = container.into();
        self
    }

    /// With these deploy options.
    #[must_use]
    pub fn options(mut self, options: DeployOptions) -> Self {
        self.options = options;
        self
    }
}

/// What became of the password secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Seeded {
    /// Created with the compose install's password.
    Created,
    /// There already, with that password.
    Kept,
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ImportReport {
    /// Whether anything was changed.
    pub changed: bool,
    /// The compose database's container, left running.
    pub source: String,
    /// The role.
    pub user: String,
    /// The database.
    pub database: String,
    /// The password secret, seeded with the compose install's password.
    pub secret: String,
    /// What became of it.
    pub seeded: Seeded,
    /// What Immich's rule for the password (only `A-Za-z0-9`) and the
    /// secret's policy find of it; empty when it meets them.
    pub password_findings: Vec<String>,
    /// The configuration file.
    pub config_file: PathBuf,
    /// The dump of the compose database, when this run took one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<PathBuf>,
    /// How many tables, indexes, sequences and extensions were compared.
    pub objects: usize,
    /// The compose database's data directory, left as it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_location: Option<PathBuf>,
    /// What was done, in order.
    pub done: Vec<String>,
    /// The checks after the import.
    #[serde(rename = "verify")]
    pub verification: Verification,
}

/// The compose database, as the checks found it.
struct Source {
    contents: Vec<String>,
    major: Option<u32>,
}

impl Layer {
    /// Imports the compose install `request` describes, as the module says:
    /// the secret seeded, the configuration written, the data dumped from
    /// the compose database and restored into the deployment, compared and
    /// verified. Bad input or a missing precondition changes nothing.
    pub async fn import(&self, request: &ImportRequest) -> Result<ImportReport> {
        let _lock = lock::acquire(&lock::lock_path(
            &self.deployment,
            self.runtime_dir.as_deref(),
        ))?;
        let env = &request.env;
        let mut done = Vec::new();
        let mut push = |ctx: &Layer, what: String| {
            ctx.tell(Event::Done(&what));
            done.push(what);
        };

        // Checks first: nothing changes unless they pass.
        self.tell(Event::Phase(&format!(
            "reading the compose database in {}",
            request.source
        )));
        let source = self.import_source(request).await?;
        let findings = password_findings(env);
        for finding in &findings {
            self.tell(Event::Warning(&format!(
                "the compose install's DB_PASSWORD: {finding}; it is kept (the database knows it); change it later with `immich-db secrets rotate {}`",
                self.deployment.config.postgres.password_secret
            )));
        }
        let seeded = self.import_secret_check(env).await?;
        self.import_target_check(request, source.major).await?;

        // The secret, then the configuration.
        let secret = self.deployment.config.postgres.password_secret.clone();
        if seeded == Seeded::Created {
            match self.secrets.create(&secret, &env.password).await {
                Ok(()) | Err(StoreError::AlreadyExists { .. }) => {}
                Err(e) => {
                    return Err(Error::failed(format!(
                        "cannot create the secret {secret}: {e}"
                    )));
                }
            }
            push(
                self,
                format!("created the secret {secret} with the compose install's password"),
            );
        }
        let mut changes = vec![
            Change::new("postgres", "user", &env.username),
            Change::new("postgres", "database", &env.database),
        ];
        if let Some(upload) = &env.upload_location {
            changes.push(Change::new(
                "storage",
                "library_dir",
                upload.display().to_string(),
            ));
        }
        let edited = edit::edit(&request.config, &changes)?;
        if edited.changed {
            push(
                self,
                format!(
                    "recorded [postgres] user {} and database {}{} in {}",
                    env.username,
                    env.database,
                    env.upload_location
                        .as_ref()
                        .map(|u| format!(", [storage] library_dir {}", u.display()))
                        .unwrap_or_default(),
                    edited.path.display()
                ),
            );
        }
        let target = self.derive(edited.deployment);

        // A deployment that holds the compose database's contents already
        // (a rerun after the restore) is left as it is.
        if let Ok(contents) = compare::contents(&target).await
            && contents == source.contents
        {
            let verification = target.verify().await;
            return Ok(ImportReport {
                changed: edited.changed || seeded == Seeded::Created,
                source: request.source.clone(),
                user: env.username.clone(),
                database: env.database.clone(),
                secret,
                seeded,
                password_findings: findings,
                config_file: edited.path,
                backup: None,
                objects: source.contents.len(),
                data_location: env.data_location.clone(),
                done,
                verification,
            });
        }

        // The dump, from the compose database, with the library's backup.
        let mut from_source = target.deployment.clone();
        from_source
            .config
            .postgres
            .container_name
            .clone_from(&request.source);
        let dumped = Box::pin(self.derive(from_source).backup(&BackupOptions::new())).await?;
        push(
            self,
            format!(
                "dumped {} from {} into {}",
                env.database,
                request.source,
                dumped.backup.dump.display()
            ),
        );

        // The deployment, then the restore into its empty database.
        let deployed = Box::pin(target.deploy_held(&request.options)).await?;
        for line in &deployed.done {
            push(self, line.clone());
        }
        let checked = backup::check(&dumped.backup.dump)?;
        let relations = backup::user_relations(&target).await?;
        if relations > 0 {
            return Err(Error::precondition(format!(
                "the database {} of the deployment holds {relations} table(s), view(s) or sequence(s) that are not the compose database's",
                env.database
            ))
            .help(format!(
                "nothing was restored; the compose database is dumped in {}: restore it with `immich-db restore --force {}` if the deployment's data can go",
                dumped.backup.dump.display(),
                dumped.backup.dump.display()
            )));
        }
        self.tell(Event::Phase(&format!(
            "restoring the dump into {} in {}",
            env.database, target.deployment.config.postgres.container_name
        )));
        backup::restore(&target, &checked, false).await?;
        let restored = compare::contents(&target).await?;
        compare::same(&source.contents, &restored, "the deployment's database")?;
        push(
            self,
            format!(
                "restored into {} and checked it: {} tables, indexes, sequences and extensions as in {}",
                target.deployment.config.postgres.container_name,
                restored.len(),
                request.source
            ),
        );
        push(
            self,
            format!(
                "the compose install is untouched: {} still runs{}",
                request.source,
                env.data_location
                    .as_ref()
                    .map(|d| format!(", its data stays in {}", d.display()))
                    .unwrap_or_default()
            ),
        );
        let verification = target.verify().await;
        Ok(ImportReport {
            changed: true,
            source: request.source.clone(),
            user: env.username.clone(),
            database: env.database.clone(),
            secret,
            seeded,
            password_findings: findings,
            config_file: edited.path,
            backup: Some(dumped.backup.dump.clone()),
            objects: restored.len(),
            data_location: env.data_location.clone(),
            done,
            verification,
        })
    }

    /// The compose database: running, reachable as the `.env`'s role, and
    /// what it holds.
    async fn import_source(&self, request: &ImportRequest) -> Result<Source> {
        let mut d = self.deployment.clone();
        d.config.postgres.container_name.clone_from(&request.source);
        d.config.postgres.user.clone_from(&request.env.username);
        d.config.postgres.database.clone_from(&request.env.database);
        let layer = self.derive(d);
        backup::require_running(
            &layer,
            &request.source,
            "the import dumps the compose database from it (start the compose install with `docker compose up -d database`, or name its container with --from-container)",
        )
        .await?;
        let version = backup::psql(
            &layer,
            "reading the compose database's version",
            "SHOW server_version;",
        )
        .await
        .map_err(|e| {
            Error::precondition(format!(
                "cannot read the database {} as {} in {}: {}",
                request.env.database, request.env.username, request.source, e.what
            ))
            .help(
                "check that the .env file is the one of that compose install; nothing was changed",
            )
        })?;
        let major = version
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok());
        let contents = compare::contents(&layer).await?;
        Ok(Source { contents, major })
    }

    /// Whether the password secret can be seeded: absent, or there with the
    /// compose install's password.
    async fn import_secret_check(&self, env: &ComposeEnv) -> Result<Seeded> {
        let secret = &self.deployment.config.postgres.password_secret;
        let failure =
            |e: StoreError| Error::failed(format!("cannot read the secret {secret}: {e}"));
        if !self.secrets.exists(secret).await.map_err(failure)? {
            return Ok(Seeded::Created);
        }
        let existing = self.secrets.read(secret).await.map_err(failure)?;
        if existing == env.password {
            Ok(Seeded::Kept)
        } else {
            Err(Error::precondition(format!(
                "the secret {secret} exists with another password than the compose install's DB_PASSWORD"
            ))
            .help(format!(
                "if no deployment uses it, remove it (`podman secret rm {secret}`) and run the import again; else set [postgres] password_secret to a new name; nothing was changed"
            )))
        }
    }

    /// Whether the deployment can take the import: its data directory holds
    /// no cluster, or one made for the `.env`'s role (a rerun); its image
    /// is not older than the compose database's server.
    async fn import_target_check(&self, request: &ImportRequest, from: Option<u32>) -> Result<()> {
        let d = &self.deployment;
        let image = &d.config.postgres.image;
        let target = match self.runtime.inspect_image(image).await {
            Ok(info) => PostgresLayout::of_image(&info, image),
            Err(_) => PostgresLayout::assumed(image),
        };
        if let (Some(from), Some(to)) = (from, target.major)
            && to < from
        {
            return Err(Error::precondition(format!(
                "the compose database is PostgreSQL {from}, the deployment's image {image} is PostgreSQL {to}: an older server cannot load its dump"
            ))
            .help(format!(
                "set [postgres] image to a PostgreSQL {from} (or newer) image with the extensions Immich uses; nothing was changed"
            )));
        }
        let cluster = layout::find_cluster(&d.dirs.postgres, &target).map_err(|e| {
            Error::precondition(format!(
                "cannot read the data directory {}: {e}",
                d.dirs.postgres.display()
            ))
            .help("run immich-db as the user who deploys")
        })?;
        if let Some(cluster) = cluster
            && d.config.postgres.user != request.env.username
        {
            return Err(Error::precondition(format!(
                "the data directory {} holds a PostgreSQL {} cluster made for the role {}, not the compose install's {}",
                cluster.dir.display(),
                cluster.major,
                d.config.postgres.user,
                request.env.username
            ))
            .help("import into a deployment that has no data yet: set [storage] postgres_dir to a new directory, or destroy this deployment with its data first; nothing was changed"));
        }
        Ok(())
    }
}

/// What Immich's rule (`A-Za-z0-9` only) and the PostgreSQL password's
/// policy find of the `.env`'s password; never the password.
fn password_findings(env: &ComposeEnv) -> Vec<String> {
    homelab_secrets::check(&env.password, &Policy::postgres_password())
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn env(password: &str) -> ComposeEnv {
        ComposeEnv::parse(
            &format!("DB_PASSWORD={password}\nDB_USERNAME=postgres\nDB_DATABASE_NAME=immich\n"),
            Path::new("/srv/immich/.env"),
        )
        .unwrap()
    }

    #[test]
    fn a_password_outside_immichs_rule_is_named_without_its_value() {
        let findings = password_findings(&env("pa$$-w0rd!Zq8Lm3Xv9Rt2"));
        assert!(!findings.is_empty());
        for finding in &findings {
            assert!(!finding.contains("pa$$"), "{finding}");
        }
        // Positive control: a long alphanumeric one (48 characters, as the
        // policy generates) meets it.
        assert_eq!(
            password_findings(&env(&"Xk2Lq9Zp4Rt7Vb1N".repeat(3))),
            Vec::<String>::new()
        );
    }
}
