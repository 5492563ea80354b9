//! `immich-db`: deploy the database layer of Immich (PostgreSQL and Valkey) as
//! Podman Quadlet units on a BTRFS pool, then verify, inspect or remove it.
//!
//! The binary parses its command line, calls one operation of the
//! `homelab-immich` library per command, and renders the result; the logic
//! lives in the library.

mod args;
mod commands;
mod output;
mod terminal;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory as _, FromArgMatches as _};
use homelab_immich::config::{self, Loaded, Origin};
use homelab_immich::{Access, Error, Layer, Result};

use crate::args::{Cli, Command};
use crate::output::Reply;
use crate::terminal::{Terminal, Verbosity};

fn main() -> ExitCode {
    // A usage error under --json is answered as JSON too.
    let json = std::env::args_os().any(|a| a == "--json");
    let matches = match Cli::command().try_get_matches() {
        Ok(matches) => matches,
        Err(e) => return usage_error(&e, json),
    };
    let config_from_env =
        matches.value_source("config") == Some(clap::parser::ValueSource::EnvVariable);
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e, json),
    };
    init_logging(cli.verbose);
    let name = cli.command.name();
    let json = cli.json;
    let code = match run(cli, config_from_env) {
        Ok(reply) => output::print_reply(name, json, &reply),
        Err(error) => output::print_error(name, json, &error),
    };
    ExitCode::from(code)
}

/// Help and version go to standard output as clap prints them; other usage
/// errors exit 2, as bad input (as JSON under `--json`).
fn usage_error(e: &clap::Error, json: bool) -> ExitCode {
    if !e.use_stderr() {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    if !json {
        let _ = e.print();
        return ExitCode::from(2);
    }
    let rendered = e.render().to_string();
    let what = rendered
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ");
    let error = Error::bad_input(what).help("see `immich-db --help`; nothing was changed");
    ExitCode::from(output::print_error("", true, &error))
}

/// `-v` shows each step with its duration and every podman and systemctl call;
/// `-vv` everything the libraries say.
fn init_logging(verbose: u8) {
    let filter = match verbose {
        0 => return,
        1 => "homelab_immich=debug,homelab_systemd=debug,homelab_podman=debug",
        _ => "trace",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}

/// The configuration the command line names.
fn load(cli: &Cli, from_env: bool) -> Result<Loaded> {
    let home = cli
        .config_home
        .clone()
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|home| std::path::PathBuf::from(home).join(".config"))
        });
    let mut loaded = config::load_in(cli.config.as_deref(), home)?;
    if from_env && let Origin::Flag { path } = &loaded.origin {
        loaded.origin = Origin::Env { path: path.clone() };
    }
    Ok(loaded)
}

fn run(cli: Cli, config_from_env: bool) -> Result<Reply> {
    match &cli.command {
        Command::Config(command) => {
            return commands::config::run(command, || load(&cli, config_from_env));
        }
        Command::Quadlet(command) => return commands::quadlet::run(command),
        Command::Completions(args) => return commands::completions::completions(args),
        Command::Manpage(args) => return commands::completions::manpage(args),
        _ => {}
    }
    // Bad input is found before anything on the host is touched.
    let loaded = load(&cli, config_from_env)?;
    let deployment = loaded.validate()?;
    let verbosity = if cli.quiet || cli.json {
        Verbosity::Quiet
    } else {
        Verbosity::Normal
    };
    match &cli.command {
        // Neither needs the deployment's services: no systemd manager, and
        // the podman service only for the secrets' values.
        Command::Render(args) if args.kubernetes.enabled => {
            let access = if args.kubernetes.include_secrets {
                access(&cli)?
            } else {
                Access::new()
            };
            return block_on(commands::render::kubernetes(&deployment, args, &access));
        }
        Command::Render(args) => return commands::render::run(&deployment, args),
        Command::Restore(args) if args.target.is_some() => {
            let progress = Terminal::new(verbosity);
            return block_on(commands::transfer::restore(&deployment, args, &progress));
        }
        _ => {}
    }
    if let Command::Server(command) = &cli.command
        && let Some(reply) = commands::server::offline(&deployment, command)
    {
        return reply;
    }
    let access = access(&cli)?;
    block_on(async move {
        let layer = Layer::connect(deployment, &access)
            .await?
            .with_progress(Arc::new(Terminal::new(verbosity)));
        commands::run(&layer, &cli, &loaded).await
    })
}

/// How the host's services are reached, as the command line and environment
/// say.
fn access(cli: &Cli) -> Result<Access> {
    let mut access = Access::new();
    if let Some(url) = &cli.url {
        access = access.container_host(url)?;
    }
    if let Some(dir) = &cli.runtime_dir {
        access = access.runtime_dir(dir);
    }
    Ok(access)
}

/// Runs an operation of the library to its end, on this thread.
fn block_on<T>(operation: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::failed(format!("cannot start the async runtime: {e}")))?
        .block_on(operation)
}
