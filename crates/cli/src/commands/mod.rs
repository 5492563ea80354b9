//! One module per subcommand: it calls one operation of the library and
//! renders the result.

pub(crate) mod backup;
pub(crate) mod completions;
pub(crate) mod config;
pub(crate) mod deploy;
pub(crate) mod import;
pub(crate) mod quadlet;
pub(crate) mod render;
pub(crate) mod secrets;
pub(crate) mod server;
pub(crate) mod status;
pub(crate) mod storage;
pub(crate) mod transfer;
pub(crate) mod update;
pub(crate) mod upgrade;

use homelab_immich::config::Loaded;
use homelab_immich::{Layer, Result};

use crate::args::{Cli, Command};
use crate::output::Reply;

/// Runs a subcommand that works on the deployment, whose configuration is
/// `config`.
pub(crate) async fn run(layer: &Layer, cli: &Cli, config: &Loaded) -> Result<Reply> {
    match &cli.command {
        Command::Plan(args) => deploy::plan(layer, args).await,
        Command::Deploy(args) => deploy::deploy(layer, args).await,
        Command::Verify => deploy::verify(layer).await,
        Command::Destroy(args) => deploy::destroy(layer, args).await,
        Command::Status => status::run(layer).await,
        Command::Backup(args) => backup::run(layer, args, cli.config.as_deref()).await,
        Command::Restore(args) => backup::restore(layer, args).await,
        Command::Secrets(command) => secrets::run(layer, command, cli.json).await,
        Command::Storage(command) => storage::run(layer, command).await,
        Command::Update(args) => update::run(layer, args).await,
        Command::Server(command) => server::run(layer, command).await,
        Command::Upgrade(args) => upgrade::run(layer, args, config).await,
        Command::Import(args) => import::run(layer, args, config).await,
        Command::Config(_)
        | Command::Render(_)
        | Command::Quadlet(_)
        | Command::Completions(_)
        | Command::Manpage(_) => Err(homelab_immich::Error::failed(format!(
            "{} needs no deployment",
            cli.command.name()
        ))),
    }
}
