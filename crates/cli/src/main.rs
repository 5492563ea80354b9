//! `immich-db`: deploy the database layer of Immich (PostgreSQL and Valkey) as
//! Podman Quadlet units on a BTRFS pool, then verify, inspect or remove it.
//!
//! The binary parses its command line and composes the `homelab-*` libraries; it
//! keeps no logic of its own that a library should own.

mod cli;
mod commands;
mod config;
mod error;
mod fault;
mod files;
mod lock;
mod output;
mod systemd;

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
    match cli.command {
        Command::Config(ConfigCommand::Init { file, force }) => {
            commands::config::init(file.as_deref(), force)
        }
        Command::Config(ConfigCommand::Show) => {
            commands::config::show(&config::load(cli.config.as_deref())?)
        }
        _ => {
            let _ = ui;
            Err(Failure::internal("not yet available"))
        }
    }
}
