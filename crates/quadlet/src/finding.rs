//! What the checks of [`lint`](mod@crate::lint) report, shared by lint's own checks
//! and the generator's refusals (`rules`): findings, their codes and severities,
//! and the systemd manager the units are for.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing is wrong.
    Info,
    /// Probably a mistake.
    Warning,
    /// The unit will not generate, start or behave as written.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
        })
    }
}

/// The stable code of a finding (see the table in the [module docs](mod@crate::lint)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Code {
    /// The file is not unit syntax.
    ParseError,
    /// A value the generator refuses.
    InvalidValue,
    /// A key the generator does not know.
    UnknownKey,
    /// A key or file kind newer than the target podman.
    TooNew,
    /// The main section is missing.
    MissingSection,
    /// A container without an image.
    MissingImage,
    /// A key the file needs is missing.
    MissingKey,
    /// Keys the generator refuses together.
    ConflictingKeys,
    /// A reference the generator cannot resolve.
    UnknownUnit,
    /// A value the generator crashes on.
    GeneratorCrash,
    /// A value podman or systemd reject when the service starts.
    UnusableValue,
    /// A value whose meaning is newer than the target podman.
    ValueTooNew,
    /// A dependency on a Quadlet-style service no unit generates.
    UnknownDependency,
    /// A secret in a plain environment variable.
    SecretInEnvironment,
    /// A private `SELinux` relabel of a shared host path.
    SharedPrivateRelabel,
    /// Two files generating the same service.
    DuplicateService,
    /// `Network=` by name without a dependency on the network's service.
    MissingNetworkDependency,
    /// No `[Install]` section.
    MissingInstall,
    /// `WantedBy=multi-user.target` in a user unit.
    UserUnitMultiUserTarget,
    /// A section nothing reads.
    UnknownSection,
    /// A final continuation the generator drops.
    OpenContinuation,
    /// `Network=` by name where the file would add the dependencies.
    NetworkByName,
}

impl Code {
    /// The code as written in output: `unknown-unit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ParseError => "parse-error",
            Self::InvalidValue => "invalid-value",
            Self::UnknownKey => "unknown-key",
            Self::TooNew => "too-new",
            Self::MissingSection => "missing-section",
            Self::MissingImage => "missing-image",
            Self::MissingKey => "missing-key",
            Self::ConflictingKeys => "conflicting-keys",
            Self::UnknownUnit => "unknown-unit",
            Self::GeneratorCrash => "generator-crash",
            Self::UnusableValue => "unusable-value",
            Self::ValueTooNew => "value-too-new",
            Self::UnknownDependency => "unknown-dependency",
            Self::SecretInEnvironment => "secret-in-environment",
            Self::SharedPrivateRelabel => "shared-private-relabel",
            Self::DuplicateService => "duplicate-service",
            Self::MissingNetworkDependency => "missing-network-dependency",
            Self::MissingInstall => "missing-install",
            Self::UserUnitMultiUserTarget => "user-unit-multi-user-target",
            Self::UnknownSection => "unknown-section",
            Self::OpenContinuation => "open-continuation",
            Self::NetworkByName => "network-by-name",
        }
    }

    /// The severity findings of this code have.
    pub fn severity(self) -> Severity {
        match self {
            Self::MissingNetworkDependency
            | Self::MissingInstall
            | Self::UserUnitMultiUserTarget
            | Self::UnknownSection
            | Self::OpenContinuation => Severity::Warning,
            Self::NetworkByName => Severity::Info,
            _ => Severity::Error,
        }
    }

    /// Whether a finding of this code means that the generator refuses the file:
    /// it writes no service for it (and says so, or skips the file, or crashes).
    /// The other errors are found only when the service runs.
    ///
    /// ```
    /// use homelab_quadlet::Code;
    ///
    /// assert!(Code::UnknownKey.is_refusal());
    /// assert!(!Code::DuplicateService.is_refusal());
    /// ```
    pub fn is_refusal(self) -> bool {
        matches!(
            self,
            Self::ParseError
                | Self::InvalidValue
                | Self::UnknownKey
                | Self::TooNew
                | Self::MissingSection
                | Self::MissingImage
                | Self::MissingKey
                | Self::ConflictingKeys
                | Self::UnknownUnit
                | Self::GeneratorCrash
        )
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem (or remark) about one place of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Finding {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when the finding is about a line.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// How bad it is.
    pub severity: Severity,
    /// The stable code.
    pub code: Code,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: Option<String>,
}

impl Finding {
    /// A finding about the whole of `file`; [`line`](Self::line),
    /// [`column`](Self::column) and [`fix`](Self::fix) add the rest.
    ///
    /// ```
    /// use homelab_quadlet::{Code, Finding, Severity};
    ///
    /// let finding = Finding::new("db.container", Severity::Error, Code::ParseError, "not unit syntax")
    ///     .line(3)
    ///     .fix("end the section header with `]`");
    /// assert_eq!(
    ///     finding.to_string(),
    ///     "db.container:3: error[parse-error]: not unit syntax\n  fix: end the section header with `]`"
    /// );
    /// ```
    pub fn new(
        file: impl Into<PathBuf>,
        severity: Severity,
        code: Code,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            line: None,
            column: None,
            severity,
            code,
            message: message.into(),
            fix: None,
        }
    }

    /// About this 1-based line.
    #[must_use]
    pub fn line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }

    /// About this 1-based column of its line.
    #[must_use]
    pub fn column(mut self, column: usize) -> Self {
        self.column = Some(column);
        self
    }

    /// With this fix.
    #[must_use]
    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

impl fmt::Display for Finding {
    /// `file:line:column: severity[code]: message`, then `  fix: ...` on its own line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}[{}]: {}", self.severity, self.code, self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n  fix: {fix}")?;
        }
        Ok(())
    }
}

/// Which systemd manager runs the units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// A user's manager (`systemctl --user`): boot target `default.target`.
    #[default]
    User,
    /// The system manager: boot target `multi-user.target`.
    System,
}

impl Scope {
    pub(crate) fn boot_target(self) -> &'static str {
        match self {
            Self::User => "default.target",
            Self::System => "multi-user.target",
        }
    }
}
