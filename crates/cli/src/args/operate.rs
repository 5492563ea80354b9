//! The arguments of the day-to-day operations: deploy, destroy, update,
//! backup, restore, upgrade, import, secrets and storage.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// Proceed when the pool is not on BTRFS (NOCOW then has no effect)
    #[arg(long)]
    pub(crate) allow_non_btrfs: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DestroyArgs {
    /// Also delete the data directories (the databases and the ML cache; the
    /// library only when empty)
    #[arg(long)]
    pub(crate) purge_data: bool,
    /// Also delete the Podman secrets (the passwords are lost for good)
    #[arg(long)]
    pub(crate) purge_secrets: bool,
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
}

#[derive(Debug, Args)]
pub(crate) struct UpdateArgs {
    /// Update only this service [default: Valkey, then PostgreSQL]
    #[arg(long, value_enum)]
    pub(crate) service: Option<ServiceArg>,
    /// Do not pull: move to the newest local copy of each configured name
    /// (images named localhost/... are never pulled)
    #[arg(long)]
    pub(crate) no_pull: bool,
    /// How long a service on a new image has to become healthy before it is
    /// rolled back
    #[arg(long, value_name = "SECONDS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) timeout: u64,
}

/// A service of the layer.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ServiceArg {
    /// PostgreSQL
    Postgres,
    /// Valkey
    Valkey,
}

#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    /// Write the dump to this directory [default: `[backup] dir` of the
    /// configuration]
    #[arg(long, value_name = "DIR")]
    pub(crate) output: Option<PathBuf>,
    /// How many dumps to keep in the directory; older ones are deleted
    /// [default: `[backup] keep`]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) keep: Option<u32>,
    /// Install a systemd timer and service that run this backup: daily, weekly
    /// or a systemd calendar expression such as "*-*-* 03:30"
    #[arg(long, value_name = "WHEN", conflicts_with_all = ["unschedule", "list"])]
    pub(crate) schedule: Option<String>,
    /// Remove the timer and service that `--schedule` installed
    #[arg(long, conflicts_with_all = ["list", "output", "keep"])]
    pub(crate) unschedule: bool,
    /// List the backups in the directory, oldest first, and the schedule
    #[arg(long, conflicts_with = "keep")]
    pub(crate) list: bool,
    /// How to compress the dump [default: by the server's major version:
    /// pg-dump-zstd from PostgreSQL 16, host-zstd before]
    #[arg(long, value_enum, value_name = "METHOD", conflicts_with_all = ["list", "unschedule", "schedule"])]
    pub(crate) method: Option<BackupMethodArg>,
}

/// How `backup` compresses the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum BackupMethodArg {
    /// `pg_dump --compress=zstd:1` in the container (PostgreSQL 16 and later)
    PgDumpZstd,
    /// An uncompressed `pg_dump`, compressed with zstd on the host's cores as
    /// it streams
    HostZstd,
}

#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// The backup: a `.dump` or `.dump.zst` file written by `immich-db backup`
    /// (or its `.json` manifest), or one of Immich's own nightly backups
    /// (`immich-db-backup-*.sql.gz`, or any `pg_dump`/`pg_dumpall` in plain
    /// SQL, gzip'd or not)
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// Restore into a database that is not empty: the database is replaced by
    /// the backup once it is loaded (with --target: everything the target's
    /// user owns in its database is dropped first)
    #[arg(long)]
    pub(crate) force: bool,
    /// Load the backup into this PostgreSQL instead of the deployment's:
    /// postgresql://USER@HOST:PORT/DATABASE, without a password (loaded by the
    /// `pg_restore` of `[postgres] image`, with the host's network)
    #[arg(long, value_name = "URL", requires = "password")]
    pub(crate) target: Option<String>,
    /// Read the target's password from standard input
    #[arg(long, requires = "target", group = "password")]
    pub(crate) password_stdin: bool,
    /// Read the target's password from this file
    #[arg(long, value_name = "FILE", requires = "target", group = "password")]
    pub(crate) password_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SecretsCommand {
    /// The deployment's secrets: whether each exists, what its policy finds,
    /// look-alike names; never a value
    #[command(after_help = "Example:\n  immich-db secrets list --json")]
    List,
    /// Print one secret's value, only on a terminal (to copy it into a password
    /// manager)
    #[command(after_help = "Example:\n  immich-db secrets show postgres-password")]
    Show {
        /// The secret's name
        name: String,
    },
    /// Set a secret to a value read from standard input (never from the
    /// command line) and give it to its consumer: PostgreSQL's role gets it as
    /// its password, a running Valkey restarts with it. For a password kept in
    /// a password manager, or a lost one replaced
    #[command(
        after_help = "Example:\n  pass show homelab/immich-postgres | immich-db secrets set postgres-password\n\nOn a terminal the value is asked for and not shown. One final line break is dropped."
    )]
    Set {
        /// The secret's name
        name: String,
    },
    /// Replace a secret with a new value and give it to its consumer
    /// (PostgreSQL, Valkey); finishes or undoes an interrupted rotation first
    #[command(after_help = "Example:\n  immich-db secrets rotate postgres-password")]
    Rotate {
        /// The secret's name
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum StorageCommand {
    /// Audit the deployment's directories: copy-on-write files inside the NOCOW
    /// database directories, NOCOW where copy-on-write was intended, and usage
    /// (exit 1 when something is wrong)
    #[command(after_help = "Example:\n  immich-db storage audit --json")]
    Audit,
    /// Stop each database whose directory holds copy-on-write files, rewrite
    /// them as NOCOW, start it again and verify
    #[command(after_help = "Example:\n  immich-db storage fix-nocow")]
    FixNocow,
}

#[derive(Debug, Args)]
pub(crate) struct UpgradeArgs {
    /// The image of the new PostgreSQL major (with the extensions the
    /// database uses)
    #[arg(
        long,
        value_name = "IMAGE",
        required_unless_present = "rollback",
        conflicts_with = "rollback"
    )]
    pub(crate) image: Option<String>,
    /// Go back to the cluster from before the last upgrade (what was written
    /// to the database since is not carried back), or abandon an upgrade that
    /// has not switched over
    #[arg(long)]
    pub(crate) rollback: bool,
    /// Do not show the steps and ask for confirmation first
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
    #[command(flatten)]
    pub(crate) deploy: DeployArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The compose install's .env file (`DB_PASSWORD`, `DB_USERNAME`,
    /// `DB_DATABASE_NAME`, `DB_DATA_LOCATION`, `UPLOAD_LOCATION`)
    #[arg(long, value_name = "PATH")]
    pub(crate) compose_env: PathBuf,
    /// The compose database's container
    #[arg(long, value_name = "NAME", default_value = homelab_immich::import::COMPOSE_CONTAINER)]
    pub(crate) from_container: String,
    /// Do not ask for confirmation first
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
    #[command(flatten)]
    pub(crate) deploy: DeployArgs,
}
