//! What a command hands back, and how it is printed: one JSON envelope for
//! every command (`--json`), or text for a person.

use std::io::Write as _;

use homelab_immich::{Error, ErrorKind, Result};
use serde::Serialize;

/// The version of the JSON envelope's layout.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// The result of a command that ran to its end.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The command's own fields (an object).
    pub(crate) data: serde_json::Value,
    /// The same, for a person.
    pub(crate) human: String,
    /// Whether the command changed the host, where that applies.
    pub(crate) changed: Option<bool>,
    /// A check failed: exit 1, `"ok": false`.
    pub(crate) failed: bool,
}

impl Reply {
    /// A reply from a report that serialises.
    pub(crate) fn new(data: &impl Serialize, human: impl Into<String>) -> Result<Self> {
        let data = serde_json::to_value(data)
            .map_err(|e| Error::failed(format!("cannot render the result as JSON: {e}")))?;
        Ok(Self {
            data,
            human: human.into(),
            changed: None,
            failed: false,
        })
    }

    /// A reply with nothing to say (the command printed what it had to).
    pub(crate) fn empty() -> Self {
        Self {
            data: serde_json::json!({}),
            human: String::new(),
            changed: None,
            failed: false,
        }
    }

    /// Says whether the command changed the host.
    #[must_use]
    pub(crate) fn changed(mut self, changed: bool) -> Self {
        self.changed = Some(changed);
        self
    }

    /// Marks a failed check (exit 1).
    #[must_use]
    pub(crate) fn failed_if(mut self, failed: bool) -> Self {
        self.failed |= failed;
        self
    }
}

/// The exit code of a failure of this kind.
pub(crate) fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::CheckFailed => 1,
        ErrorKind::BadInput => 2,
        ErrorKind::Precondition => 3,
        _ => 4,
    }
}

/// The envelope every `--json` answer is in: the schema version, the command,
/// `ok`, `changed` where it applies, and the command's fields beside them.
fn envelope(
    command: &str,
    ok: bool,
    changed: Option<bool>,
    data: serde_json::Value,
) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    out.insert("schema_version".into(), SCHEMA_VERSION.into());
    out.insert("command".into(), command.into());
    match data {
        serde_json::Value::Object(fields) => {
            for (key, value) in fields {
                out.insert(key, value);
            }
        }
        serde_json::Value::Null => {}
        other => {
            out.insert("data".into(), other);
        }
    }
    out.insert("ok".into(), ok.into());
    if let Some(changed) = changed {
        out.insert("changed".into(), changed.into());
    }
    serde_json::Value::Object(out)
}

/// Prints a reply; returns the exit code.
pub(crate) fn print_reply(command: &str, json: bool, reply: &Reply) -> u8 {
    let mut out = std::io::stdout().lock();
    let _ = if json {
        let value = envelope(command, !reply.failed, reply.changed, reply.data.clone());
        writeln!(out, "{value:#}")
    } else if reply.human.is_empty() {
        Ok(())
    } else {
        writeln!(out, "{}", reply.human.trim_end())
    };
    u8::from(reply.failed)
}

/// Prints a failure (on standard error, and as the envelope on standard output
/// with `--json`); returns the exit code.
pub(crate) fn print_error(command: &str, json: bool, error: &Error) -> u8 {
    if json {
        let value = envelope(
            command,
            false,
            None,
            serde_json::json!({ "error": error, "exit_code": exit_code(error.kind) }),
        );
        let _ = writeln!(std::io::stdout().lock(), "{value:#}");
    }
    eprintln!("{error}");
    exit_code(error.kind)
}

/// A size for a person (`12.3 MiB`); `unknown` when not known.
pub(crate) fn bytes(n: Option<u64>) -> String {
    n.map_or_else(
        || "unknown".to_owned(),
        |n| indicatif::HumanBytes(n).to_string(),
    )
}
