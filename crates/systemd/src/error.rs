//! What can go wrong when asking a systemd manager.

/// A call to the manager that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `systemctl` ran and said no.
    #[error("`{command}` failed: {detail}")]
    Refused {
        /// The command, as a person would type it.
        command: String,
        /// What it printed on standard error, or its exit status.
        detail: String,
    },

    /// `systemctl` could not be run at all.
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        /// The command, as a person would type it.
        command: String,
        /// Why it could not run.
        #[source]
        source: std::io::Error,
    },

    /// The manager answered with something this crate cannot read.
    #[error("`{command}` answered what cannot be read: {detail}")]
    Unreadable {
        /// The command, as a person would type it.
        command: String,
        /// What was wrong with the answer.
        detail: String,
    },
}

impl Error {
    /// Whether the manager said it does not know a unit (`Unit x not found.`),
    /// as it does for a generated unit before its generator ran.
    pub fn is_unit_not_found(&self) -> bool {
        matches!(self, Self::Refused { detail, .. } if detail.contains("not found"))
    }

    /// Whether the manager could not be reached (no bus, no socket).
    pub fn is_unreachable(&self) -> bool {
        match self {
            Self::Refused { detail, .. } => detail.contains("Failed to connect"),
            Self::Spawn { .. } => true,
            Self::Unreadable { .. } => false,
        }
    }
}

/// The result of a call to the manager.
pub type Result<T, E = Error> = std::result::Result<T, E>;
