//! `server env` and `server units`: the Immich server's side of the wiring.

use std::fmt::Write as _;

use homelab_immich::render::Written;
use homelab_immich::server::{ServerUnits, ServerUnitsOptions, environment, render_units};
use homelab_immich::{Deployment, Layer, Result};

use crate::args::{ServerCommand, ServerUnitsArgs};
use crate::commands::render::files_written;
use crate::output::Reply;

/// What needs no host: the environment, and units written into a directory.
pub(crate) fn offline(deployment: &Deployment, command: &ServerCommand) -> Option<Result<Reply>> {
    match command {
        ServerCommand::Env => {
            let env = environment(deployment);
            Some(Reply::new(&env, env.env_file().trim_end().to_owned()))
        }
        ServerCommand::Units(args) if args.output.is_some() => {
            Some(render_units(deployment, &options(args)).and_then(|u| reply(&u)))
        }
        ServerCommand::Units(_) => None,
    }
}

/// Units into the deployment's unit directory, with a reload.
pub(crate) async fn run(layer: &Layer, command: &ServerCommand) -> Result<Reply> {
    match command {
        ServerCommand::Units(args) => reply(&layer.write_server_units(&options(args)).await?),
        ServerCommand::Env => {
            let env = layer.server_environment();
            Reply::new(&env, env.env_file().trim_end().to_owned())
        }
    }
}

fn options(args: &ServerUnitsArgs) -> ServerUnitsOptions {
    let mut options = ServerUnitsOptions::new();
    if let Some(dir) = &args.output {
        options = options.output(dir);
    }
    if let Some(podman) = &args.podman {
        options = options.podman(podman);
    }
    if args.rootless || args.rootful {
        options = options.rootless(args.rootless);
    }
    options
}

fn reply(units: &ServerUnits) -> Result<Reply> {
    let mut human = files_written(
        units
            .files
            .iter()
            .map(|f| (f.path.as_path(), f.service.as_str(), f.written)),
    );
    if units.reloaded {
        let _ = writeln!(human, "reloaded systemd (daemon-reload)");
    }
    let _ = write!(
        human,
        "server units: for podman {}; start them with `systemctl start {}` (add --user for a user's manager); their images are pulled at the first start",
        units.podman,
        units.services.join(" ")
    );
    let changed = units.files.iter().any(|f| f.written != Written::Unchanged);
    Ok(Reply::new(units, human)?.changed(changed))
}
