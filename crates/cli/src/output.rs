//! What a command hands back: an exit status, a JSON value and the same as text
//! for a person.

use std::io::{IsTerminal as _, Write as _};

use serde::Serialize;

use crate::error::{Exit, Failure, Result};

/// The result of a command that ran to its end.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// `None` for success, else why the exit status is not 0 (a failed check).
    pub(crate) exit: Option<Exit>,
    pub(crate) json: serde_json::Value,
    pub(crate) human: String,
}

impl Outcome {
    pub(crate) fn ok(json: impl Serialize, human: impl Into<String>) -> Result<Self> {
        Ok(Self {
            exit: None,
            json: to_json(&json)?,
            human: human.into(),
        })
    }

    pub(crate) fn failed_if(mut self, failed: bool) -> Self {
        if failed {
            self.exit = Some(Exit::CheckFailed);
        }
        self
    }
}

pub(crate) fn to_json(value: &impl Serialize) -> Result<serde_json::Value> {
    serde_json::to_value(value)
        .map_err(|e| Failure::failed(format!("cannot render the result as JSON: {e}")))
}

/// Where progress and notes go while a command runs: standard error, as lines,
/// unless `--json` asked for silence.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ui {
    pub(crate) json: bool,
}

impl Ui {
    /// A line of progress for a person.
    pub(crate) fn note(self, line: impl AsRef<str>) {
        if !self.json {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{}", line.as_ref());
        }
    }

    /// Whether a live display can be drawn.
    pub(crate) fn is_terminal(self) -> bool {
        !self.json && std::io::stderr().is_terminal()
    }
}
