//! The command line: global flags and one subcommand per task. Every clap type
//! is in this module (the day-to-day operations in `operate`, the commands that
//! write or print files in `write`); every environment variable the command
//! reads is declared here.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod operate;
mod write;

pub(crate) use operate::{
    BackupArgs, DeployArgs, DestroyArgs, ImportArgs, RestoreArgs, SecretsCommand, ServiceArg,
    StorageCommand, UpdateArgs, UpgradeArgs,
};
pub(crate) use write::{
    CompletionsArgs, ConfigCommand, ManpageArgs, QuadletCommand, RenderArgs, ServerCommand,
    ServerUnitsArgs,
};

/// Deploy the database layer of Immich (PostgreSQL and Valkey) as Podman Quadlet
/// units on a BTRFS pool, and verify, inspect or remove it.
///
/// Exit codes: 0 success; 1 a check or lint failed; 2 bad input; 3 a host
/// precondition is missing; 4 a deploy (or a backup, restore, rotation or repair)
/// failed part-way: the message says what was done, and running it again resumes.
#[derive(Debug, Parser)]
#[command(name = "immich-db", version, max_term_width = 100)]
#[command(after_help = "Example:\n  immich-db config init && immich-db plan && immich-db deploy")]
pub(crate) struct Cli {
    /// Configuration file [default: ~/.config/immich-db/config.toml, else the
    /// built-in defaults]
    #[arg(long, global = true, value_name = "FILE", env = "IMMICH_DB_CONFIG")]
    pub(crate) config: Option<PathBuf>,

    /// Print the result as JSON on standard output (errors too), in one
    /// envelope: `schema_version`, `command`, `ok`, `changed` where it applies,
    /// and the command's own fields
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// Print nothing while working, only the result and errors
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,

    /// Say more while working: each step with its duration and every podman
    /// and systemctl call (-vv: everything)
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,

    /// The podman service's socket, as podman reads it (`unix:///PATH`)
    /// [default: podman's own socket for this user]
    #[arg(long, global = true, value_name = "URL", env = "CONTAINER_HOST")]
    pub(crate) url: Option<String>,

    /// The runtime directory of the user's systemd manager (for the user scope)
    /// [default: /run/user/UID]
    #[arg(long, global = true, value_name = "DIR", env = "XDG_RUNTIME_DIR")]
    pub(crate) runtime_dir: Option<PathBuf>,

    /// Where per-user configuration lives: the configuration file
    /// (immich-db/config.toml) and, for the user scope, the Quadlet units
    /// (containers/systemd) [default: $HOME/.config]
    #[arg(long, global = true, value_name = "DIR", env = "XDG_CONFIG_HOME")]
    pub(crate) config_home: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Write or show the configuration
    #[command(subcommand, after_help = "Example:\n  immich-db config show")]
    Config(ConfigCommand),
    /// Show what `deploy` would do, step by step, without changing anything
    #[command(after_help = "Example:\n  immich-db plan --config ./immich-db.toml")]
    Plan(DeployArgs),
    /// Check the host, then create or update the network, storage, secrets and
    /// units, start what changed, wait for health and verify
    #[command(after_help = "Example:\n  immich-db deploy")]
    Deploy(DeployArgs),
    /// Check the deployment against the operator's checklist
    #[command(after_help = "Example:\n  immich-db verify --json")]
    Verify,
    /// Show the state, health, resources and disk use of each service
    #[command(after_help = "Example:\n  immich-db status")]
    Status,
    /// Stop and remove the units, containers, network and backup schedule (data,
    /// backups and secrets are kept unless asked otherwise)
    #[command(after_help = "Example:\n  immich-db destroy --yes")]
    Destroy(DestroyArgs),
    /// Write the deployment's unit files for a podman release into a directory,
    /// changing nothing else (for review, another host, or git); or, with
    /// --kubernetes, the same layer as manifests for a Kubernetes cluster
    #[command(
        after_help = "Examples:\n  immich-db render --output ./units\n  immich-db render --podman 4.9.3 --rootless --output ./units\n  immich-db render --kubernetes --output ./k8s"
    )]
    Render(RenderArgs),
    /// Move PostgreSQL and Valkey to the newest image of their configured
    /// names: pull, restart, wait for the health check, and roll back to the
    /// image that ran before when the new one is not healthy in time
    #[command(
        after_help = "Examples:\n  immich-db update\n  immich-db update --service valkey --no-pull --timeout 60"
    )]
    Update(UpdateArgs),
    /// The Immich server's side: what it needs of this layer, and its units
    #[command(
        subcommand,
        after_help = "Examples:\n  immich-db server env\n  immich-db server units"
    )]
    Server(ServerCommand),
    /// Format and lint Quadlet unit files
    #[command(
        subcommand,
        after_help = "Example:\n  immich-db quadlet lint ~/.config/containers/systemd"
    )]
    Quadlet(QuadletCommand),
    /// Dump the Immich database to a file (`pg_dump`, custom format) with a
    /// checksum and a manifest, keeping the last N; or list the dumps, or run
    /// this on a schedule with a systemd timer
    #[command(
        after_help = "Examples:\n  immich-db backup\n  immich-db backup --list\n  immich-db backup --schedule daily"
    )]
    Backup(BackupArgs),
    /// Check a backup's checksum, load it into the running PostgreSQL, then
    /// verify (refuses a database that is not empty unless --force); or, with
    /// --target, into another PostgreSQL, such as a Kubernetes cluster's
    #[command(
        after_help = "Examples:\n  immich-db restore /mnt/btrfs-pool/backups/immich-20251108T030000Z.dump\n  kubectl -n immich get secret postgres-password -o jsonpath='{.data.password}' | base64 -d \\\n    | immich-db restore --target postgresql://immich@127.0.0.1:15432/immich --password-stdin \\\n        /mnt/btrfs-pool/backups/immich-20251108T030000Z.dump"
    )]
    Restore(RestoreArgs),
    /// Move PostgreSQL to a new major version: a backup, a new cluster in a
    /// fresh NOCOW directory beside the old one, the restore and its check,
    /// then the switch (the configuration file records the new image); or go
    /// back with --rollback
    #[command(
        after_help = "Examples:\n  immich-db upgrade --image ghcr.io/immich-app/postgres:18-vectorchord0.5.3\n  immich-db upgrade --rollback"
    )]
    Upgrade(UpgradeArgs),
    /// Move from an Immich docker-compose install: its .env's password
    /// seeds the secret, its role, database and upload location go into the
    /// configuration file, and its running database is dumped, deployed here
    /// and checked (the compose install is only read)
    #[command(after_help = "Example:\n  immich-db import --compose-env ~/immich-app/.env --yes")]
    Import(ImportArgs),
    /// List, show or rotate the deployment's secrets
    #[command(subcommand, after_help = "Example:\n  immich-db secrets list")]
    Secrets(SecretsCommand),
    /// Audit the copy-on-write state of the deployment's directories, or repair
    /// database files that NOCOW never reached
    #[command(subcommand, after_help = "Example:\n  immich-db storage audit")]
    Storage(StorageCommand),
    /// Print a shell completion script
    #[command(
        after_help = "Example:\n  immich-db completions bash > ~/.local/share/bash-completion/completions/immich-db"
    )]
    Completions(CompletionsArgs),
    /// Print the manual page, or write one page per command into a directory
    #[command(after_help = "Example:\n  immich-db manpage | man -l -")]
    Manpage(ManpageArgs),
}

impl Command {
    /// The subcommand's name, as typed.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Config(_) => "config",
            Self::Plan(_) => "plan",
            Self::Deploy(_) => "deploy",
            Self::Verify => "verify",
            Self::Status => "status",
            Self::Destroy(_) => "destroy",
            Self::Render(_) => "render",
            Self::Update(_) => "update",
            Self::Server(_) => "server",
            Self::Quadlet(_) => "quadlet",
            Self::Backup(_) => "backup",
            Self::Restore(_) => "restore",
            Self::Upgrade(_) => "upgrade",
            Self::Import(_) => "import",
            Self::Secrets(_) => "secrets",
            Self::Storage(_) => "storage",
            Self::Completions(_) => "completions",
            Self::Manpage(_) => "manpage",
        }
    }
}
