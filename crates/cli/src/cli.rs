//! The command line: global flags and one subcommand per task.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    /// Configuration file [default: `$IMMICH_DB_CONFIG`, else
    /// `~/.config/immich-db/config.toml`, else the built-in defaults]
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Print the result as JSON on standard output
    #[arg(long, global = true)]
    pub(crate) json: bool,

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
    /// changing nothing else (for review, another host, or git)
    #[command(
        after_help = "Examples:\n  immich-db render --output ./units\n  immich-db render --podman 4.9.3 --rootless --output ./units"
    )]
    Render(crate::commands::render::RenderArgs),
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
    Backup(crate::commands::backup::BackupArgs),
    /// Check a backup's checksum, load it into the running PostgreSQL, then
    /// verify (refuses a database that is not empty unless --force)
    #[command(
        after_help = "Example:\n  immich-db restore /mnt/btrfs-pool/backups/immich-20251108T030000Z.dump"
    )]
    Restore(crate::commands::restore::RestoreArgs),
    /// List, show or rotate the deployment's secrets
    #[command(subcommand, after_help = "Example:\n  immich-db secrets list")]
    Secrets(crate::commands::secrets::SecretsCommand),
    /// Audit the copy-on-write state of the deployment's directories, or repair
    /// database files that NOCOW never reached
    #[command(subcommand, after_help = "Example:\n  immich-db storage audit")]
    Storage(crate::commands::storage::StorageCommand),
    /// Print a shell completion script (bash, zsh or fish)
    #[command(
        after_help = "Example:\n  immich-db completions bash > ~/.local/share/bash-completion/completions/immich-db"
    )]
    Completions(crate::commands::completions::CompletionsArgs),
    /// Print the manual page, or write one page per command into a directory
    #[command(after_help = "Example:\n  immich-db manpage | man -l -")]
    Manpage(crate::commands::completions::ManpageArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Write the default configuration, with a comment on every key
    #[command(after_help = "Example:\n  immich-db config init ~/.config/immich-db/config.toml")]
    Init {
        /// Where to write it [default: ~/.config/immich-db/config.toml]
        file: Option<PathBuf>,
        /// Replace an existing file
        #[arg(long)]
        force: bool,
    },
    /// Print the configuration in effect, and where it came from
    #[command(after_help = "Example:\n  immich-db config show")]
    Show,
}

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

#[derive(Debug, Subcommand)]
pub(crate) enum QuadletCommand {
    /// Print the canonical rendering of each unit file
    #[command(
        after_help = "Example:\n  immich-db quadlet fmt --check ~/.config/containers/systemd/*.container"
    )]
    Fmt {
        /// Unit files to format
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Rewrite the files in place
        #[arg(long, conflicts_with = "check")]
        write: bool,
        /// Change nothing; exit 1 when a file is not in canonical form
        #[arg(long)]
        check: bool,
    },
    /// Check a set of unit files together (exit 1 on errors)
    #[command(after_help = "Example:\n  immich-db quadlet lint ~/.config/containers/systemd")]
    Lint {
        /// Directories (or unit files) to check
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The podman release the units are for [default: the installed podman,
        /// else the latest known]
        #[arg(long, value_name = "X.Y.Z")]
        podman: Option<String>,
        /// The units are for the system manager (boot target multi-user.target)
        #[arg(long)]
        system: bool,
    },
}
