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
    /// The command stopped part-way or could not be carried out (a deploy, a
    /// backup, a rotation, a repair: the host failed under it); the message says
    /// what was done, and running the command again resumes.
    Failed,
}

impl Exit {
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::CheckFailed => 1,
            Self::BadInput => 2,
            Self::Precondition => 3,
            Self::Failed => 4,
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
///   - A PROBLEM, when several things are wrong at once
///     --> ITS PLACE
///     help: ITS FIX
///   done: ...
///   help: HOW TO FIX
/// ```
///
/// and as an object under `"error"` with `--json` (the problems as a
/// `problems` list of `{what, where, help}`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Failure {
    pub(crate) exit: Exit,
    pub(crate) what: String,
    #[serde(rename = "where", skip_serializing_if = "Option::is_none")]
    pub(crate) location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) help: Option<String>,
    /// When several things are wrong at once: each, with its own place and fix.
    /// (A boxed slice keeps a `Result` of this small.)
    #[serde(skip_serializing_if = "<[Problem]>::is_empty")]
    pub(crate) problems: Box<[Problem]>,
    /// For a deploy that stopped part-way: the steps that were completed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) done: Vec<String>,
}

/// One of several things wrong at once.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Problem {
    pub(crate) what: String,
    #[serde(rename = "where", skip_serializing_if = "Option::is_none")]
    pub(crate) location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) help: Option<String>,
}

impl Failure {
    pub(crate) fn new(exit: Exit, what: impl Into<String>) -> Self {
        Self {
            exit,
            what: what.into(),
            location: None,
            help: None,
            problems: Box::default(),
            done: Vec::new(),
        }
    }

    pub(crate) fn bad_input(what: impl Into<String>) -> Self {
        Self::new(Exit::BadInput, what)
    }

    pub(crate) fn precondition(what: impl Into<String>) -> Self {
        Self::new(Exit::Precondition, what)
    }

    pub(crate) fn failed(what: impl Into<String>) -> Self {
        Self::new(Exit::Failed, what)
    }

    pub(crate) fn at(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Lists the things wrong, each with its own place and fix.
    pub(crate) fn problems(mut self, problems: Vec<Problem>) -> Self {
        self.problems = problems.into_boxed_slice();
        self
    }

    /// Turns this failure into a deploy that stopped part-way after `done`.
    pub(crate) fn part_way(mut self, done: Vec<String>) -> Self {
        self.exit = Exit::Failed;
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
        for problem in &*self.problems {
            write!(f, "\n  - {}", problem.what)?;
            if let Some(location) = &problem.location {
                write!(f, "\n    --> {location}")?;
            }
            if let Some(help) = &problem.help {
                write!(f, "\n    help: {help}")?;
            }
        }
        if !self.done.is_empty() {
            if self.exit == Exit::Failed {
                write!(f, "\n  done before it stopped:")?;
            } else {
                write!(f, "\n  done:")?;
            }
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
    fn several_problems_each_have_their_place_and_fix() {
        let problem = |what: &str, location: &str, help: &str| Problem {
            what: what.into(),
            location: Some(location.into()),
            help: Some(help.into()),
        };
        let failure = Failure::precondition("2 host preconditions are not met")
            .problems(vec![
                problem("the pool /p does not exist", "pool", "mount it"),
                problem("podman 4.3 is too old", "podman", "install podman 5"),
            ])
            .help("nothing was changed");
        assert_eq!(
            failure.to_string(),
            "error: 2 host preconditions are not met\n  - the pool /p does not exist\n    --> pool\n    help: mount it\n  - podman 4.3 is too old\n    --> podman\n    help: install podman 5\n  help: nothing was changed"
        );
        let json = serde_json::to_value(&failure).unwrap();
        assert_eq!(json["exit"], "precondition");
        assert_eq!(json["what"], "2 host preconditions are not met");
        assert_eq!(json["help"], "nothing was changed");
        assert_eq!(json["problems"][1]["where"], "podman");
        assert_eq!(json["problems"][1]["help"], "install podman 5");
        assert_eq!(json["problems"].as_array().unwrap().len(), 2);
        // One failure alone has no list.
        let one = serde_json::to_value(Failure::precondition("x")).unwrap();
        assert!(one.get("problems").is_none(), "{one}");
    }

    #[test]
    fn part_way_says_what_was_done_and_that_deploy_resumes() {
        let failure =
            Failure::failed("systemctl start failed").part_way(vec!["network unit written".into()]);
        assert_eq!(failure.exit, Exit::Failed);
        let text = failure.to_string();
        assert!(text.contains("network unit written"), "{text}");
        assert!(text.contains("deploy` again resumes"), "{text}");
    }
}
