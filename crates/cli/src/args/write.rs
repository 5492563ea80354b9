//! The arguments of the commands that write or print files: configuration,
//! rendered units and manifests, the Immich server's units, Quadlet checks,
//! shell completions and manual pages.

use std::path::PathBuf;

use clap::{Args, Subcommand};

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
pub(crate) struct RenderArgs {
    /// The directory to write the unit files (or manifests) into (created when
    /// missing)
    #[arg(long, short = 'o', value_name = "DIR")]
    pub(crate) output: PathBuf,
    #[command(flatten)]
    pub(crate) kubernetes: KubernetesArgs,
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

/// `render --kubernetes` and its own flag.
#[derive(Debug, Args)]
pub(crate) struct KubernetesArgs {
    /// Write Kubernetes manifests instead: a CloudNativePG Cluster, Valkey with
    /// its volume and Service, the Secrets' references and a README (how to
    /// apply them, point Immich at them and move the data over)
    #[arg(
        id = "kubernetes",
        long = "kubernetes",
        conflicts_with_all = ["podman", "rootless", "rootful"]
    )]
    pub(crate) enabled: bool,
    /// With --kubernetes: write the Secrets with their values, read from the
    /// Podman secret store, into 01-secrets.yaml (mode 0600)
    #[arg(long, requires = "kubernetes")]
    pub(crate) include_secrets: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ServerCommand {
    /// Print what the Immich server needs to reach this layer: host names,
    /// user, database, and the passwords as files mounted from the layer's
    /// Podman secrets (never their values)
    #[command(after_help = "Example:\n  immich-db server env > immich-server.env")]
    Env,
    /// Write the Immich server's and machine learning's units (on the layer's
    /// network, with the library and the model cache) into the unit directory
    /// and reload systemd, or only into a directory; start them with systemctl
    #[command(
        after_help = "Examples:\n  immich-db server units\n  immich-db server units --podman 4.9.3 --output ./units"
    )]
    Units(ServerUnitsArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ServerUnitsArgs {
    /// Write them into this directory only (created when missing) [default:
    /// the deployment's unit directory, then reload systemd]
    #[arg(long, short = 'o', value_name = "DIR")]
    pub(crate) output: Option<PathBuf>,
    /// The podman release they are for [default: the installed podman, else
    /// the newest release this tool knows]
    #[arg(long, value_name = "X.Y.Z")]
    pub(crate) podman: Option<String>,
    /// Units for rootless podman [default: as the user running this]
    #[arg(long, conflicts_with = "rootful", requires = "output")]
    pub(crate) rootless: bool,
    /// Units for rootful podman [default: as the user running this]
    #[arg(long, requires = "output")]
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
