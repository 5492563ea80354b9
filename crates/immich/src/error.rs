//! What went wrong, where, and how to fix it: the one error of this library,
//! data that the caller renders (the `immich-db` binary prints it and maps its
//! [`ErrorKind`] to an exit code).

use std::fmt;

use serde::Serialize;

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// A check or a lint failed.
    CheckFailed,
    /// The command line or the configuration is wrong; nothing was changed.
    BadInput,
    /// Something the host must provide is missing; nothing was changed.
    Precondition,
    /// The operation stopped part-way or could not be carried out (a deploy, a
    /// backup, a rotation, a repair: the host failed under it); the error says
    /// what was done, and running it again resumes.
    Failed,
}

/// A failure, rendered for a person as
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
/// and serialised as an object (the problems as a `problems` list of `{what,
/// where, help}`).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Error {
    /// What kind of failure it is.
    #[serde(rename = "exit")]
    pub kind: ErrorKind,
    /// What went wrong.
    pub what: String,
    /// Where: a configuration key and line, a path, a precondition.
    #[serde(rename = "where", skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// When several things are wrong at once: each, with its own place and fix.
    /// (A boxed slice keeps a `Result` of this small.)
    #[serde(skip_serializing_if = "<[Problem]>::is_empty")]
    pub problems: Box<[Problem]>,
    /// For an operation that stopped part-way: the steps that were completed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub done: Vec<String>,
}

/// One of several things wrong at once.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Problem {
    /// What is wrong.
    pub what: String,
    /// Where.
    #[serde(rename = "where", skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Problem {
    /// A problem, with its place and fix where known.
    pub fn new(what: impl Into<String>, location: Option<String>, help: Option<String>) -> Self {
        Self {
            what: what.into(),
            location,
            help,
        }
    }
}

impl Error {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, what: impl Into<String>) -> Self {
        Self {
            kind,
            what: what.into(),
            location: None,
            help: None,
            problems: Box::default(),
            done: Vec::new(),
        }
    }

    /// Bad input: the command line or the configuration.
    pub fn bad_input(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadInput, what)
    }

    /// A missing host precondition.
    pub fn precondition(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::Precondition, what)
    }

    /// An operation that could not be carried out.
    pub fn failed(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, what)
    }

    /// Says where.
    #[must_use]
    pub fn at(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }

    /// Says how to fix it.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Lists the things wrong, each with its own place and fix.
    #[must_use]
    pub fn problems(mut self, problems: Vec<Problem>) -> Self {
        self.problems = problems.into_boxed_slice();
        self
    }

    /// Turns this failure into a deploy that stopped part-way after `done`.
    #[must_use]
    pub fn part_way(mut self, done: Vec<String>) -> Self {
        self.kind = ErrorKind::Failed;
        self.done = done;
        let resume = "running `immich-db deploy` again resumes from where it stopped";
        self.help = Some(match self.help.take() {
            Some(help) => format!("{help}; then {resume}"),
            None => format!("fix the cause above; {resume}"),
        });
        self
    }
}

impl fmt::Display for Error {
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
            if self.kind == ErrorKind::Failed {
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

impl std::error::Error for Error {}

/// A systemd manager that refused or could not be asked: the operation could
/// not be carried out.
impl From<homelab_systemd::Error> for Error {
    fn from(e: homelab_systemd::Error) -> Self {
        Self::failed(e.to_string())
    }
}

/// The result of an operation of this library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_where_and_help() {
        let failure = Error::bad_input("`subnet` is not a CIDR")
            .at("config.toml:3:10 ([network] subnet)")
            .help("write it as 10.89.5.0/24");
        let text = failure.to_string();
        assert_eq!(
            text,
            "error: `subnet` is not a CIDR\n  --> config.toml:3:10 ([network] subnet)\n  help: write it as 10.89.5.0/24"
        );
        assert_eq!(failure.kind, ErrorKind::BadInput);
    }

    #[test]
    fn several_problems_each_have_their_place_and_fix() {
        let problem = |what: &str, location: &str, help: &str| Problem {
            what: what.into(),
            location: Some(location.into()),
            help: Some(help.into()),
        };
        let failure = Error::precondition("2 host preconditions are not met")
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
        let one = serde_json::to_value(Error::precondition("x")).unwrap();
        assert!(one.get("problems").is_none(), "{one}");
    }

    #[test]
    fn part_way_says_what_was_done_and_that_deploy_resumes() {
        let failure =
            Error::failed("systemctl start failed").part_way(vec!["network unit written".into()]);
        assert_eq!(failure.kind, ErrorKind::Failed);
        let text = failure.to_string();
        assert!(text.contains("network unit written"), "{text}");
        assert!(text.contains("deploy` again resumes"), "{text}");
    }
}
