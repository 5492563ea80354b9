//! `secrets list`, `secrets show`, `secrets set` and `secrets rotate`.

use std::fmt::Write as _;
use std::io::{BufRead as _, IsTerminal as _, Read as _, Write as _};

use homelab_immich::secrets::{Action, ConsumerChange};
use homelab_immich::{Error, Layer, Result};
use homelab_secrets::SecretValue;

use crate::args::SecretsCommand;
use crate::output::Reply;

pub(crate) async fn run(layer: &Layer, command: &SecretsCommand, json: bool) -> Result<Reply> {
    match command {
        SecretsCommand::List => list(layer).await,
        SecretsCommand::Show { name } => show(layer, name, json).await,
        SecretsCommand::Set { name } => {
            layer.secret_kind(name)?;
            let value = read_value(name)?;
            let report = layer.set_secret(name, &value).await?;
            let what = match report.consumer {
                ConsumerChange::AlreadyHad => "its consumer already used it",
                ConsumerChange::Rekeyed => "PostgreSQL's role has it as its password now",
                ConsumerChange::Restarted => "Valkey was restarted with it",
                ConsumerChange::AtNextStart => "its consumer reads it when it next starts",
                _ => "in use once the Immich server restarts",
            };
            let human = format!(
                "secrets set: {name} ({}) holds the value given; {what}",
                report.kind.describe()
            );
            Ok(Reply::new(&serde_json::json!({ "set": report }), human)?.changed(true))
        }
        SecretsCommand::Rotate { name } => {
            let report = layer.rotate_secret(name).await?;
            let human = match report.action {
                Action::FinishedInterrupted => format!(
                    "secrets rotate: finished an interrupted rotation of {name} ({}); its new value is in use",
                    report.kind.describe()
                ),
                _ => format!(
                    "secrets rotate: {name} ({}) has a new value{}",
                    report.kind.describe(),
                    // A key nothing reads is not "in use".
                    if report.kind.note().is_none() {
                        ", in use"
                    } else {
                        ""
                    }
                ),
            };
            Ok(Reply::new(&serde_json::json!({ "rotation": report }), human)?.changed(true))
        }
    }
}

async fn list(layer: &Layer) -> Result<Reply> {
    let listed = layer.secrets().await?;
    let mut human = String::new();
    let _ = writeln!(
        human,
        "{:<32} {:<8} {:<26} NOTES",
        "SECRET", "EXISTS", "USED AS"
    );
    for s in &listed.secrets {
        let mut notes = s.findings.clone();
        if notes.is_empty() && s.exists {
            notes.push("fits its policy".to_owned());
        }
        if let Some(note) = s.note {
            notes.push(note.to_owned());
        }
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
            notes.join("; ")
        );
    }
    for pair in &listed.near_duplicates {
        let _ = writeln!(
            human,
            "note: secrets `{}` and `{}` differ only in case or in `-`, `_` and `.`",
            pair.first, pair.second
        );
    }
    Reply::new(&listed, human)
}

/// Prints a value, but only on a terminal: a value in a pipe or a file ends up
/// in logs and backups.
async fn show(layer: &Layer, name: &str, json: bool) -> Result<Reply> {
    layer.secret_kind(name)?;
    let stdout = std::io::stdout();
    if json || !stdout.is_terminal() {
        return Err(Error::bad_input(format!(
            "refusing to print the value of {name}: standard output is not a terminal"
        ))
        .help("run it in a terminal, without --json and without redirecting its output; a value in a pipe or a file ends up in logs and backups"));
    }
    let value = layer.secret_value(name).await?;
    eprintln!(
        "warning: the value of {name} follows; anyone who can see this screen or its scrollback can read it. Clear the terminal when done."
    );
    let mut out = stdout.lock();
    out.write_all(value.expose())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(|e| Error::failed(format!("cannot write to the terminal: {e}")))?;
    Ok(Reply::empty())
}

/// The most bytes read for a value (podman stores less than 512000).
const MAX_VALUE: u64 = 512_000;

/// The value on standard input: asked for without echo on a terminal, else
/// all of it; one final line break is dropped.
fn read_value(name: &str) -> Result<SecretValue> {
    let stdin = std::io::stdin();
    let mut bytes = if stdin.is_terminal() {
        read_hidden(name)?
    } else {
        let mut bytes = Vec::new();
        stdin
            .lock()
            .take(MAX_VALUE)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::failed(format!("cannot read standard input: {e}")))?;
        bytes
    };
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    Ok(SecretValue::new(bytes))
}

/// A line typed on the terminal, not shown while it is typed.
fn read_hidden(name: &str) -> Result<Vec<u8>> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let failed =
        |e: &dyn std::fmt::Display| Error::failed(format!("cannot read the terminal: {e}"));
    let before = tcgetattr(&stdin).map_err(|e| failed(&e))?;
    let mut hidden = before.clone();
    hidden.local_modes.remove(LocalModes::ECHO);
    eprint!("value of {name} (not shown): ");
    tcsetattr(&stdin, OptionalActions::Flush, &hidden).map_err(|e| failed(&e))?;
    let mut line = Vec::new();
    let read = stdin.lock().take(MAX_VALUE).read_until(b'\n', &mut line);
    let restored = tcsetattr(&stdin, OptionalActions::Flush, &before);
    eprintln!();
    read.map_err(|e| failed(&e))?;
    restored.map_err(|e| failed(&e))?;
    Ok(line)
}
