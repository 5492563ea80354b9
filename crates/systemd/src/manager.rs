//! What a program asks of a systemd manager.

use std::fmt;

use async_trait::async_trait;

use crate::{JobWatch, Result, UnitState};

/// Which manager: a user's own (`systemctl --user`) or the system's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The calling user's manager.
    User,
    /// The system manager (needs root).
    System,
}

impl Scope {
    /// The target that starts a unit at boot in this scope: `default.target`
    /// of a user's manager, `multi-user.target` of the system's.
    pub fn boot_target(self) -> &'static str {
        match self {
            Self::User => "default.target",
            Self::System => "multi-user.target",
        }
    }

    /// `--user` for the user scope, for commands shown to a person.
    pub fn flag(self) -> &'static str {
        match self {
            Self::User => " --user",
            Self::System => "",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::User => "user",
            Self::System => "system",
        })
    }
}

/// Whether a start, restart or stop returns once its jobs are queued, or once
/// they are done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Return once the jobs are queued (`--no-block`).
    Queued,
    /// Return once they are done (a start: the unit is active, or failed).
    Done,
}

/// A systemd manager. Unit names are the only arguments ever passed: never a
/// secret.
#[async_trait]
pub trait Manager: Send + Sync + fmt::Debug {
    /// Which manager this is.
    fn scope(&self) -> Scope;

    /// Whether the manager answers; the error says why not.
    async fn reachable(&self) -> Result<()>;

    /// `daemon-reload`: rerun the generators and reread the units.
    async fn daemon_reload(&self) -> Result<()>;

    /// Starts the units.
    async fn start(&self, units: &[String], wait: Wait) -> Result<()>;

    /// Restarts the units (starts those that do not run).
    async fn restart(&self, units: &[String], wait: Wait) -> Result<()>;

    /// Stops the units and waits until they have stopped.
    async fn stop(&self, units: &[String]) -> Result<()>;

    /// Forgets the failed state of the units; units that are not failed, or not
    /// loaded, are left alone.
    async fn reset_failed(&self, units: &[String]) -> Result<()>;

    /// What the manager says of the units, in their order. A unit it does not
    /// know is [`LoadState::NotFound`](crate::LoadState::NotFound).
    async fn units(&self, units: &[&str]) -> Result<Vec<UnitState>>;

    /// [`units`](Self::units) of one unit.
    async fn unit(&self, unit: &str) -> Result<UnitState> {
        let mut states = self.units(&[unit]).await?;
        Ok(states.pop().unwrap_or_else(|| UnitState::unknown(unit)))
    }

    /// Watches, from the side, the start or restart job just queued for a
    /// unit, so that the caller learns the moment it ends without asking again
    /// and again. Where nothing can watch, the watch says
    /// [`Job::Unwatched`](crate::Job::Unwatched).
    fn watch_job(&self, _unit: &str) -> JobWatch {
        JobWatch::none()
    }
}
