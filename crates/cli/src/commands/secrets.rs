//! `secrets list`, `secrets show` and `secrets rotate`.

use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};

use clap::Subcommand;
use homelab_secrets::{NearDuplicate, StoreError, check, near_duplicates, near_duplicates_of};
use serde::Serialize;
use serde_json::json;

use crate::context::Context;
use crate::error::{Failure, Result};
use crate::lock;
use crate::output::Outcome;
use crate::rotate::{self, Kind, pending_name};

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
    /// Replace a secret with a new value and give it to its consumer
    /// (PostgreSQL, Valkey); finishes or undoes an interrupted rotation first
    #[command(after_help = "Example:\n  immich-db secrets rotate postgres-password")]
    Rotate {
        /// The secret's name
        name: String,
    },
}

pub(crate) async fn run(ctx: &Context, command: &SecretsCommand) -> Result<Outcome> {
    match command {
        SecretsCommand::List => list(ctx).await,
        SecretsCommand::Show { name } => show(ctx, name).await,
        SecretsCommand::Rotate { name } => {
            rotate::kind_of(ctx, name)?;
            let _lock = lock::acquire(&lock::lock_path(
                &ctx.deployment,
                ctx.runtime_dir.as_deref(),
            ))?;
            ctx.ui.note(format!("rotating {name}"));
            let report = rotate::rotate(ctx, name).await?;
            for warning in &report.warnings {
                ctx.ui.note(format!("warning: {warning}"));
            }
            let human = match report.action {
                rotate::Action::Rotated => format!(
                    "secrets rotate: {name} ({}) has a new value, in use",
                    report.kind.describe()
                ),
                rotate::Action::FinishedInterrupted => format!(
                    "secrets rotate: finished an interrupted rotation of {name} ({}); its new value is in use",
                    report.kind.describe()
                ),
            };
            Outcome::ok(json!({ "ok": true, "rotation": report }), human)
        }
    }
}

#[derive(Debug, Serialize)]
struct Listed {
    name: String,
    kind: Kind,
    key: &'static str,
    exists: bool,
    /// What the consumer's policy finds wrong with the value.
    findings: Vec<String>,
    /// An interrupted rotation's journal exists.
    pending_rotation: bool,
    near_duplicates: Vec<String>,
}

async fn list(ctx: &Context) -> Result<Outcome> {
    let all = ctx
        .secrets
        .list()
        .await
        .map_err(|e| Failure::precondition(format!("cannot list the Podman secrets: {e}")))?;
    let mut listed = Vec::new();
    for (name, kind) in rotate::deployment_secrets(ctx) {
        let (exists, findings) = match ctx.secrets.read(&name).await {
            Ok(value) => (
                true,
                check(&value, &kind.policy())
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            ),
            Err(StoreError::NotFound { .. }) => (false, Vec::new()),
            Err(e) => {
                return Err(Failure::precondition(format!(
                    "cannot read the secret {name}: {e}"
                )));
            }
        };
        let pending = pending_name(&name);
        listed.push(Listed {
            pending_rotation: all.contains(&pending),
            near_duplicates: near_duplicates_of(&name, &all),
            kind,
            key: kind.key(),
            exists,
            findings,
            name,
        });
    }
    let pairs: Vec<NearDuplicate> = near_duplicates(&all);
    let mut human = String::new();
    let _ = writeln!(
        human,
        "{:<32} {:<8} {:<26} NOTES",
        "SECRET", "EXISTS", "USED AS"
    );
    for s in &listed {
        let mut notes = s.findings.clone();
        if s.pending_rotation {
            notes.push(format!(
                "an interrupted rotation: run `immich-db secrets rotate {}` to finish or undo it",
                s.name
            ));
        }
        if !s.exists {
            notes.push("missing: `immich-db deploy` creates it".into());
        }
        for other in &s.near_duplicates {
            notes.push(format!("look-alike secret {other}"));
        }
        let _ = writeln!(
            human,
            "{:<32} {:<8} {:<26} {}",
            s.name,
            if s.exists { "yes" } else { "no" },
            s.kind.describe(),
            if notes.is_empty() {
                "fits its policy".to_owned()
            } else {
                notes.join("; ")
            }
        );
    }
    for pair in &pairs {
        let _ = writeln!(human, "note: {pair}");
    }
    let pairs_json: Vec<_> = pairs
        .iter()
        .map(|p| json!({ "first": p.first, "second": p.second }))
        .collect();
    Outcome::ok(
        json!({ "secrets": listed, "near_duplicates": pairs_json }),
        human,
    )
}

async fn show(ctx: &Context, name: &str) -> Result<Outcome> {
    rotate::kind_of(ctx, name)?;
    let stdout = std::io::stdout();
    if ctx.ui.json || !stdout.is_terminal() {
        return Err(Failure::bad_input(format!(
            "refusing to print the value of {name}: standard output is not a terminal"
        ))
        .help("run it in a terminal, without --json and without redirecting its output; a value in a pipe or a file ends up in logs and backups"));
    }
    let value = ctx.secrets.read(name).await.map_err(|e| match e {
        StoreError::NotFound { .. } => {
            Failure::precondition(format!("the secret {name} does not exist"))
                .help("`immich-db deploy` creates it")
        }
        other => Failure::precondition(format!("cannot read the secret {name}: {other}")),
    })?;
    ctx.ui.note(format!(
        "warning: the value of {name} follows; anyone who can see this screen or its scrollback can read it. Clear the terminal when done."
    ));
    let mut out = stdout.lock();
    out.write_all(value.expose())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(|e| Failure::failed(format!("cannot write to the terminal: {e}")))?;
    Ok(Outcome {
        exit: None,
        json: json!({}),
        human: String::new(),
    })
}
