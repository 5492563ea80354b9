//! The command line: global flags and one subcommand per task. Every clap type
//! is here; every environment variable the command reads is declared here.

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
    /// changing nothing else (for review, another host, or git)
    #[command(
        after_help = "Examples:\n  immich-db render --output ./units\n  immich-db render --podman 4.9.3 --rootless --output ./units"
    )]
    Render(RenderArgs),
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
    /// verify (refuses a database that is not empty unless --force)
    #[command(
        after_help = "Example:\n  immich-db restore /mnt/btrfs-pool/backups/immich-20251108T030000Z.dump"
    )]
    Restore(RestoreArgs),
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
            Self::Quadlet(_) => "quadlet",
            Self::Backup(_) => "backup",
            Self::Restore(_) => "restore",
            Self::Secrets(_) => "secrets",
            Self::Storage(_) => "storage",
            Self::Completions(_) => "completions",
            Self::Manpage(_) => "manpage",
        }
    }
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

#[derive(Debug, Args)]
pub(crate) struct RenderArgs {
    /// The directory to write the unit files into (created when missing)
    #[arg(long, short = 'o', value_name = "DIR")]
    pub(crate) output: PathBuf,
    /// The podman release the units are for [default: the installed podman, else
    /// the newest release this tool knows]
    #[arg(long, value_name = "X.Y.Z")]
    pub(crate) podman: Option<String>,
    /// Units for rootless podman (an ordinary user's manager) [default: as the
    /// user running this]
    #[arg(long, conflicts_with = "rootful")]
    pub(crate) rootless: bool,
    /// Units for rootful podman (root's manager or the system's) [default: as the
    /// user running this]
    #[arg(long)]
    pub(crate) rootful: bool,
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
}

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
pub(crate) struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub(crate) struct ManpageArgs {
    /// Write immich-db.1 and one page per subcommand (immich-db-backup.1, ...)
    /// into this directory instead of printing immich-db.1
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
}
