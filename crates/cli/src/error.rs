//! The command's failures: what went wrong, where, how to fix it, and the exit code
//! each kind of failure maps to.

use std::fmt;
use std::process::ExitCode;

use serde::Serialize;

/// The exit codes, as the documentation of the command lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Exit {
    /// A check or a lint failed.
    CheckFailed,
    /// The command line or the configuration is wrong.
    BadInput,
    /// Something the host must provide is missing.
    Precondition,
    /// A deploy stopped part-way.
    DeployFailed,
    /// The tool itself failed in a way none of the above describes (a bug, or
    /// the host failing under it).
    Internal,
}

impl Exit {
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::CheckFailed => 1,
            Self::BadInput => 2,
            Self::Precondition => 3,
            Self::DeployFailed => 4,
            Self::Internal => 70,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

/// A failure of the command, rendered for a person as
///
/// ```text
/// error: WHAT
///   --> WHERE
///   done: ...
///   help: HOW TO FIX
/// ```
///
/// and as an object under `"error"` with `--json`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Failure {
    pub(crate) exit: Exit,
    pub(crate) what: String,
    #[serde(rename = "where", skip_serializing_if = "Option::is_none")]
    pub(crate) location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) help: Option<String>,
    /// For a deploy that stopped part-way: the steps that were completed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) done: Vec<String>,
}

impl Failure {
    pub(crate) fn new(exit: Exit, what: impl Into<String>) -> Self {
        Self {
            exit,
            what: what.into(),
            location: None,
            help: None,
            done: Vec::new(),
        }
    }

    pub(crate) fn bad_input(what: impl Into<String>) -> Self {
        Self::new(Exit::BadInput, what)
    }

    pub(crate) fn precondition(what: impl Into<String>) -> Self {
        Self::new(Exit::Precondition, what)
    }

    pub(crate) fn internal(what: impl Into<String>) -> Self {
        Self::new(Exit::Internal, what)
    }

    pub(crate) fn at(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Turns this failure into a deploy that stopped part-way after `done`.
    pub(crate) fn part_way(mut self, done: Vec<String>) -> Self {
        self.exit = Exit::DeployFailed;
        self.done = done;
        let resume = "running `immich-db deploy` again resumes from where it stopped";
        self.help = Some(match self.help.take() {
            Some(help) => format!("{help}; then {resume}"),
            None => format!("fix the cause above; {resume}"),
        });
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.what)?;
        if let Some(location) = &self.location {
            write!(f, "\n  --> {location}")?;
        }
        if !self.done.is_empty() {
            write!(f, "\n  done before it stopped:")?;
            for step in &self.done {
                write!(f, "\n    - {step}")?;
            }
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

pub(crate) type Result<T, E = Failure> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_where_and_help() {
        let failure = Failure::bad_input("`subnet` is not a CIDR")
            .at("config.toml:3:10 ([network] subnet)")
            .help("write it as 10.89.5.0/24");
        let text = failure.to_string();
        assert_eq!(
            text,
            "error: `subnet` is not a CIDR\n  --> config.toml:3:10 ([network] subnet)\n  help: write it as 10.89.5.0/24"
        );
        assert_eq!(ExitCode::from(failure.exit), ExitCode::from(2));
    }

    #[test]
    fn part_way_says_what_was_done_and_that_deploy_resumes() {
        let failure = Failure::internal("systemctl start failed")
            .part_way(vec!["network unit written".into()]);
        assert_eq!(failure.exit, Exit::DeployFailed);
        let text = failure.to_string();
        assert!(text.contains("network unit written"), "{text}");
        assert!(text.contains("deploy` again resumes"), "{text}");
    }
}
