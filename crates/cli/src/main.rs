//! `immich-db`: deploy the database layer of Immich (PostgreSQL and Valkey) as
//! Podman Quadlet units on a BTRFS pool, then verify, inspect or remove it.
//!
//! The binary parses its command line and composes the `homelab-*` libraries; it
//! keeps no logic of its own that a library should own.

mod backup;
mod cgroup;
mod cli;
mod commands;
mod config;
mod context;
mod desired;
mod direct;
mod error;
mod exec_secret;
mod fault;
mod files;
mod lock;
mod output;
mod plan;
mod preconditions;
mod rotate;
mod schedule;
mod scram;
mod systemd;
mod timings;
mod userns;
mod verify;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command, ConfigCommand};
use crate::error::{Failure, Result};
use crate::output::{Outcome, Ui};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(outcome) => {
            let mut out = std::io::stdout().lock();
            let _ = if json {
                writeln!(out, "{:#}", outcome.json)
            } else if outcome.human.is_empty() {
                Ok(())
            } else {
                writeln!(out, "{}", outcome.human.trim_end())
            };
            outcome.exit.map_or(ExitCode::SUCCESS, ExitCode::from)
        }
        Err(failure) => {
            if json {
                let _ = writeln!(
                    std::io::stdout().lock(),
                    "{:#}",
                    serde_json::json!({ "ok": false, "error": failure })
                );
            }
            eprintln!("{failure}");
            ExitCode::from(failure.exit)
        }
    }
}

fn run(cli: Cli) -> Result<Outcome> {
    let ui = Ui { json: cli.json };
    let command = match cli.command {
        Command::Config(ConfigCommand::Init { file, force }) => {
            return commands::config::init(file.as_deref(), force);
        }
        Command::Config(ConfigCommand::Show) => {
            return commands::config::show(&config::load(cli.config.as_deref())?);
        }
        Command::Quadlet(command) => return commands::quadlet::run(&command),
        Command::Completions(args) => return commands::completions::completions(&args),
        Command::Manpage(args) => return commands::completions::manpage(&args),
        other => other,
    };
    // Bad input is found before anything on the host is touched.
    let deployment = config::validate(&config::load(cli.config.as_deref())?)?;
    if let Command::Render(args) = &command {
        return commands::render::run(&deployment, args);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("cannot start the async runtime: {e}")))?;
    let config_flag = cli.config.clone();
    runtime.block_on(async move {
        // The commands that check the host ask podman's version and the systemd
        // manager while podman's service is reached.
        let probe = matches!(command, Command::Plan(_) | Command::Deploy(_))
            .then(|| preconditions::HostProbe::start(deployment.scope));
        let ctx = context::Context::connect(deployment, ui).await?;
        match command {
            Command::Plan(args) => commands::plan::run(&ctx, args.allow_non_btrfs, probe).await,
            Command::Deploy(args) => commands::deploy::run(&ctx, &args, probe).await,
            Command::Verify => commands::verify::run(&ctx).await,
            Command::Status => commands::status::run(&ctx).await,
            Command::Destroy(args) => commands::destroy::run(&ctx, &args).await,
            Command::Backup(args) => {
                commands::backup::run(&ctx, &args, config_flag.as_deref()).await
            }
            Command::Restore(args) => commands::restore::run(&ctx, &args).await,
            Command::Secrets(command) => commands::secrets::run(&ctx, &command).await,
            Command::Storage(command) => commands::storage::run(&ctx, &command).await,
            Command::Config(_)
            | Command::Render(_)
            | Command::Quadlet(_)
            | Command::Completions(_)
            | Command::Manpage(_) => Err(Failure::failed("handled above")),
        }
    })
}
