//! Backups as operations of a [`Layer`]: a dump now, the dumps there are, a
//! schedule that makes them, a restore, and the summary `status` shows.

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use crate::backup::{
    Algorithm, Backup, BackupMethod, Compression, Compressor, Loaded, Manifest, Setting,
};
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::progress::Event;
pub use crate::schedule::{State as ScheduleState, Units as ScheduleUnits};
pub use crate::sql_dump::{SqlDump, SqlDumpKind};
use crate::verify::Verification;
use crate::{backup, lock, schedule, sql_dump, verify};

/// Where a backup goes, how many are kept and how it is compressed; `None`
/// takes the configuration's `[backup]` values and, for the method, the one
/// for the server's major version ([`BackupMethod::for_major`]).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct BackupOptions {
    /// The directory of the dumps.
    pub output: Option<PathBuf>,
    /// How many dumps to keep there; older ones are deleted.
    pub keep: Option<u32>,
    /// How the dump is compressed.
    pub method: Option<BackupMethod>,
}

impl BackupOptions {
    /// The configuration's values.
    pub fn new() -> Self {
        Self::default()
    }

    /// Another directory.
    #[must_use]
    pub fn output(mut self, dir: impl Into<PathBuf>) -> Self {
        self.output = Some(dir.into());
        self
    }

    /// Another number of dumps to keep.
    #[must_use]
    pub fn keep(mut self, keep: u32) -> Self {
        self.keep = Some(keep);
        self
    }

    /// This compression method, whatever the server's major version (a
    /// server whose `pg_dump` lacks zstd still falls back to
    /// [`BackupMethod::HostZstd`]).
    #[must_use]
    pub fn method(mut self, method: BackupMethod) -> Self {
        self.method = Some(method);
        self
    }
}

/// A backup just made.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BackupReport {
    /// The new backup.
    pub backup: Backup,
    /// Older backups deleted to keep `keep`.
    pub removed: Vec<PathBuf>,
    /// How many are kept.
    pub keep: u32,
}

/// The backups in a directory, oldest first, and the schedule.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BackupList {
    /// The directory.
    pub directory: PathBuf,
    /// Its backups, oldest first.
    pub backups: Vec<Backup>,
    /// The backup schedule.
    pub schedule: ScheduleState,
}

/// What a schedule runs: this program with its configuration, into a
/// directory, keeping a number of dumps.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScheduleRequest {
    /// When: `daily`, `weekly`, or a systemd calendar expression.
    pub when: String,
    /// The program the service runs (`immich-db`).
    pub program: PathBuf,
    /// The configuration file it is given, if any.
    pub config: Option<PathBuf>,
    /// [`BackupOptions`] for each run.
    pub options: BackupOptions,
}

impl ScheduleRequest {
    /// A schedule `when` that runs `program backup`.
    pub fn new(when: impl Into<String>, program: impl Into<PathBuf>) -> Self {
        Self {
            when: when.into(),
            program: program.into(),
            config: None,
            options: BackupOptions::default(),
        }
    }

    /// With `--config FILE`.
    #[must_use]
    pub fn config(mut self, file: impl Into<PathBuf>) -> Self {
        self.config = Some(file.into());
        self
    }

    /// With these options for each run.
    #[must_use]
    pub fn options(mut self, options: BackupOptions) -> Self {
        self.options = options;
        self
    }
}

/// A schedule just installed.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Scheduled {
    /// The timer and service.
    pub units: ScheduleUnits,
    /// The schedule now.
    pub schedule: ScheduleState,
    /// The command the service runs.
    pub command: Vec<String>,
}

/// A schedule removed, or none there.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Unscheduled {
    /// Whether there was one.
    pub removed: bool,
    /// Its timer and service.
    pub units: ScheduleUnits,
}

/// The last backup and the schedule, as `status` shows them.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BackupSummary {
    /// The directory of the dumps.
    pub directory: PathBuf,
    /// How many are there.
    pub count: usize,
    /// The newest.
    pub last: Option<Backup>,
    /// The schedule.
    pub schedule: ScheduleState,
}

/// A restore just done, with the verification after it.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RestoreReport {
    /// Whether the deployment verified after it.
    pub ok: bool,
    /// The file restored.
    pub restored: PathBuf,
    /// The database it was restored into.
    pub database: String,
    /// The manifest of a backup made by this tool; none for one of Immich's.
    pub manifest: Option<Manifest>,
    /// What one of Immich's own backups (an SQL dump) held; none for a backup
    /// made by this tool.
    pub sql_dump: Option<SqlDump>,
    /// How it was loaded.
    pub loaded: Loaded,
    /// Whether a database that held relations was replaced.
    pub replaced_existing: bool,
    /// The checks after the restore.
    pub verify: Verification,
}

/// A file to restore, checked before anything is touched.
enum Restorable {
    /// A backup of this tool, with its manifest.
    Backup(backup::Checked),
    /// An SQL dump, such as Immich's own nightly backup.
    SqlDump(sql_dump::Checked),
}

impl Layer {
    /// The directory of the dumps: the option's, checked, else the
    /// configuration's.
    fn backup_dir(&self, options: &BackupOptions) -> Result<PathBuf> {
        match &options.output {
            Some(dir) => backup::check_output_dir(&self.deployment, dir),
            None => Ok(self.deployment.backup.dir.clone()),
        }
    }

    /// Dumps the database now (`pg_dump` in its container, custom format) into
    /// a file written atomically with a checksum and a manifest, then deletes
    /// the oldest beyond the number kept.
    ///
    /// The dump is compressed with zstd at level 1, by `pg_dump` itself on
    /// PostgreSQL 16 and later, else on the host, on every core, as the
    /// uncompressed dump streams out of the container (see [`BackupMethod`]).
    /// The database's and its roles' settings (`ALTER DATABASE … SET`,
    /// `pg_db_role_setting`), which a custom-format dump leaves out, are
    /// recorded in the manifest. Progress: [`Event::Bytes`] of the dump.
    pub async fn backup(&self, options: &BackupOptions) -> Result<BackupReport> {
        let dir = self.backup_dir(options)?;
        let keep = options.keep.unwrap_or(self.deployment.backup.keep);
        let pg = &self.deployment.config.postgres;
        self.tell(Event::Phase(&format!(
            "dumping {} from {} into {}",
            pg.database,
            pg.container_name,
            dir.display()
        )));
        let (backup, removed) = backup::run(self, &dir, keep as usize, options.method).await?;
        Ok(BackupReport {
            backup,
            removed,
            keep,
        })
    }

    /// The backups in the directory, oldest first, and the schedule.
    pub async fn backups(&self, options: &BackupOptions) -> Result<BackupList> {
        let directory = self.backup_dir(options)?;
        Ok(BackupList {
            backups: backup::list(&self.deployment, &directory),
            schedule: schedule::state(self).await,
            directory,
        })
    }

    /// Installs a systemd timer and service (in `[backup] unit_dir`) that run
    /// the backup on a schedule; replaces one installed before.
    pub async fn schedule_backups(&self, request: &ScheduleRequest) -> Result<Scheduled> {
        let calendar = schedule::check_calendar(&request.when)?;
        let dir = self.backup_dir(&request.options)?;
        let mut command = vec![request.program.display().to_string()];
        if let Some(path) = &request.config {
            let path = std::fs::canonicalize(path)
                .map_err(|e| Error::bad_input(format!("cannot resolve {}: {e}", path.display())))?;
            command.push("--config".into());
            command.push(path.display().to_string());
        }
        command.push("backup".into());
        if request.options.output.is_some() {
            command.push("--output".into());
            command.push(dir.display().to_string());
        }
        if let Some(keep) = request.options.keep {
            command.push("--keep".into());
            command.push(keep.to_string());
        }
        let (units, schedule) = schedule::install(self, &calendar, &command).await?;
        Ok(Scheduled {
            units,
            schedule,
            command,
        })
    }

    /// Removes the backup schedule, if there is one; the backups stay.
    pub async fn unschedule_backups(&self) -> Result<Unscheduled> {
        let removed = schedule::remove(self).await?;
        Ok(Unscheduled {
            removed,
            units: schedule::units(&self.deployment),
        })
    }

    /// The last backup and the schedule.
    pub async fn backup_summary(&self) -> BackupSummary {
        let directory = self.deployment.backup.dir.clone();
        let mut backups = backup::list(&self.deployment, &directory);
        BackupSummary {
            count: backups.len(),
            last: backups.pop(),
            schedule: schedule::state(self).await,
            directory,
        }
    }

    /// Loads a backup into the running PostgreSQL, then verifies the
    /// deployment. `file` is either a backup made by [`Layer::backup`] (its
    /// dump or its manifest) or an SQL dump, gzip'd or not, such as Immich's
    /// own nightly `immich-db-backup-*.sql.gz` (`pg_dumpall`) or a `pg_dump`
    /// in plain format.
    ///
    /// The file is checked first, before anything is touched: a backup
    /// against its manifest (size, SHA-256, format), an SQL dump by reading it
    /// whole (gzip intact, complete). A database that holds relations is
    /// refused unless `force`. The backup is loaded into a new database that
    /// replaces the deployment's only once it is complete, so a failed
    /// restore changes nothing. A backup's recorded settings are set again;
    /// an SQL dump's roles and `search_path` are handled as Immich's own
    /// restore instructions do (see the README). Progress: [`Event::Bytes`].
    pub async fn restore(&self, file: &Path, force: bool) -> Result<RestoreReport> {
        let pg = &self.deployment.config.postgres;
        let restorable = self.checked_restorable(file).await?;
        let _lock = lock::acquire(&lock::lock_path(
            &self.deployment,
            self.runtime_dir.as_deref(),
        ))?;
        backup::require_postgres(self).await?;
        let relations = backup::require_empty(self, force, file).await?;
        self.tell(Event::Phase(&format!(
            "restoring into {} in {}{}",
            pg.database,
            pg.container_name,
            if relations > 0 {
                " (replacing the database that is there)"
            } else {
                ""
            }
        )));
        let (manifest, sql_dump, loaded) = match restorable {
            Restorable::Backup(checked) => {
                let loaded = backup::restore(self, &checked, force).await?;
                (Some(checked.manifest), None, loaded)
            }
            Restorable::SqlDump(checked) => {
                let (dump, loaded) = sql_dump::restore(self, &checked, force).await?;
                (None, Some(dump), loaded)
            }
        };
        self.tell(Event::Done(&format!(
            "loaded {}: {}",
            file.display(),
            loaded.how
        )));
        self.tell(Event::Phase("verifying"));
        let verification = verify::verify(self).await;
        Ok(RestoreReport {
            ok: verification.ok,
            restored: file.to_path_buf(),
            database: pg.database.clone(),
            manifest,
            sql_dump,
            loaded,
            replaced_existing: relations > 0,
            verify: verification,
        })
    }

    /// Checks a file before a restore: a backup of this tool by its
    /// manifest, an SQL dump by reading it whole.
    async fn checked_restorable(&self, file: &Path) -> Result<Restorable> {
        let pg = &self.deployment.config.postgres;
        if !backup::has_manifest(file)
            && let Some(decode) = sql_dump::sniff(file)
        {
            self.tell(Event::Phase(&format!(
                "{}: reading the SQL dump through before restoring it",
                file.display()
            )));
            let checked = sql_dump::check(file, decode, &pg.database).await?;
            self.tell(Event::Phase(&format!(
                "{}: a complete {} dump{}{}",
                file.display(),
                match checked.kind() {
                    SqlDumpKind::Cluster => "pg_dumpall",
                    SqlDumpKind::Database => "pg_dump",
                },
                checked
                    .dumped_from()
                    .map(|v| format!(" of PostgreSQL {v}"))
                    .unwrap_or_default(),
                checked
                    .database()
                    .map(|d| format!("; restoring its database {d}"))
                    .unwrap_or_default()
            )));
            return Ok(Restorable::SqlDump(checked));
        }
        let checked = backup::check(file)?;
        self.tell(Event::Phase(&format!(
            "{}: checksum and size match its manifest (PostgreSQL {}, {})",
            checked.dump.display(),
            checked.manifest.postgres_version,
            checked.manifest.created
        )));
        if checked.manifest.database != pg.database {
            self.tell(Event::Warning(&format!(
                "the backup is of database {}; it is restored into {}",
                checked.manifest.database, pg.database
            )));
        }
        Ok(Restorable::Backup(checked))
    }
}
