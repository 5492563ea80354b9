//! Waiting until a started unit is active: the one loop every caller shares.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::{ActiveState, Job, JobWatch, Manager, UnitState};

/// How a wait for a unit ended, when it did not end active.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// The manager gave up starting it: it failed, or it is inactive with no
    /// job left (a unit it requires failed).
    #[error("{} did not start: it is {} ({})", .0.name, .0.active, .0.result)]
    GaveUp(Box<UnitState>),
    /// It was not active within the time given.
    #[error("{unit} was not active within {} s", limit.as_secs())]
    TooSlow {
        /// The unit.
        unit: String,
        /// The time it had.
        limit: Duration,
    },
    /// The manager could not be asked.
    #[error(transparent)]
    Manager(#[from] crate::Error),
}

/// What to wait for, and how often to look.
#[derive(Debug, Clone)]
pub struct WaitFor<'a> {
    unit: &'a str,
    since: Option<DateTime<Utc>>,
    limit: Duration,
    poll: Duration,
    max_restarts: Option<u64>,
}

impl<'a> WaitFor<'a> {
    /// A wait for `unit` to be active, for at most `limit`, asking every
    /// 50 ms.
    pub fn new(unit: &'a str, limit: Duration) -> Self {
        Self {
            unit,
            since: None,
            limit,
            poll: Duration::from_millis(50),
            max_restarts: None,
        }
    }

    /// Counts it active only once it became active after `since` (when it was
    /// active before a restart, say).
    #[must_use]
    pub fn after(mut self, since: Option<DateTime<Utc>>) -> Self {
        self.since = since;
        self
    }

    /// How often to ask the manager when no job is watched.
    #[must_use]
    pub fn every(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Gives up once the manager has restarted the unit more than `max` times
    /// since the wait's first look: a unit without a start limit that crashes
    /// at every start is restarted for ever, and never counts as failed.
    #[must_use]
    pub fn restarts_at_most(mut self, max: u64) -> Self {
        self.max_restarts = Some(max);
        self
    }

    /// Whether the manager restarted the unit more often than
    /// [`restarts_at_most`](Self::restarts_at_most) allows, given its
    /// `NRestarts` at the first look (`first`).
    pub fn restarted_too_often(&self, first: Option<u64>, state: &UnitState) -> bool {
        match (self.max_restarts, first, state.restarts) {
            (Some(max), Some(first), Some(now)) => now.saturating_sub(first) > max,
            _ => false,
        }
    }

    /// Whether `state` is what is waited for.
    pub fn reached(&self, state: &UnitState) -> bool {
        state.active == ActiveState::Active
            && match (self.since, state.active_since) {
                (Some(before), Some(now)) => now > before,
                _ => true,
            }
    }

    /// Waits until the unit is active, it failed, or the time is up. While
    /// `job` watches the unit's start job, the manager is asked only when the
    /// job has ended (and every few seconds, as a backstop).
    pub async fn wait(
        &self,
        manager: &dyn Manager,
        job: &mut JobWatch,
    ) -> Result<UnitState, WaitError> {
        const BACKSTOP: Duration = Duration::from_secs(5);
        let start = Instant::now();
        let mut asked: Option<Instant> = None;
        let mut first_restarts: Option<Option<u64>> = None;
        loop {
            let watched = job.poll();
            let ask = match watched {
                Job::Running => asked.is_none_or(|at| at.elapsed() >= BACKSTOP),
                Job::Done | Job::Failed | Job::Unwatched => true,
            };
            if ask {
                asked = Some(Instant::now());
                let state = manager.unit(self.unit).await?;
                if self.reached(&state) {
                    return Ok(state);
                }
                let first = *first_restarts.get_or_insert(state.restarts);
                if state.gave_up() || self.restarted_too_often(first, &state) {
                    return Err(WaitError::GaveUp(Box::new(state)));
                }
            }
            if start.elapsed() > self.limit {
                return Err(WaitError::TooSlow {
                    unit: self.unit.to_owned(),
                    limit: self.limit,
                });
            }
            let pause = if watched == Job::Running {
                Duration::from_millis(5)
            } else {
                self.poll
            };
            tokio::time::sleep(pause).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restarted(n: u64) -> UnitState {
        let mut state = UnitState::unknown("x.service");
        state.restarts = Some(n);
        state
    }

    #[test]
    fn restarts_count_from_the_first_look_and_only_when_limited() {
        let limited = WaitFor::new("x.service", Duration::from_secs(1)).restarts_at_most(3);
        assert!(!limited.restarted_too_often(Some(2), &restarted(5)));
        assert!(limited.restarted_too_often(Some(2), &restarted(6)));
        assert!(!limited.restarted_too_often(None, &restarted(60)));
        assert!(!limited.restarted_too_often(Some(0), &UnitState::unknown("x.service")));
        let unlimited = WaitFor::new("x.service", Duration::from_secs(1));
        assert!(!unlimited.restarted_too_often(Some(0), &restarted(60)));
    }
}
