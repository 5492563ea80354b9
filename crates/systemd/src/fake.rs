//! A recording fake manager, for testing logic that drives one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone as _, Utc};

use crate::{ActiveState, Error, LoadState, Manager, Result, Scope, UnitState, Wait};

/// A manager whose units have states that start, stop and restart change, and
/// that records every call (`"start a.service b.service"`), so that a test can
/// assert what was asked and in which order.
///
/// ```
/// use homelab_systemd::{ActiveState, FakeManager, Manager, Wait};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let fake = FakeManager::new();
/// fake.start(&["db.service".to_owned()], Wait::Done).await?;
/// assert_eq!(fake.unit("db.service").await?.active, ActiveState::Active);
/// assert_eq!(fake.calls(), ["start db.service"]);
/// # Ok::<(), homelab_systemd::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FakeManager {
    scope: Scope,
    calls: Mutex<Vec<String>>,
    units: Mutex<BTreeMap<String, UnitState>>,
    unreachable: AtomicBool,
    failing_dependency: Mutex<Option<String>>,
    unknown_once: AtomicBool,
    failing_restarts: AtomicUsize,
    clock: Mutex<i64>,
}

impl Default for FakeManager {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeManager {
    /// A user manager that knows no unit.
    pub fn new() -> Self {
        Self {
            scope: Scope::User,
            calls: Mutex::new(Vec::new()),
            units: Mutex::new(BTreeMap::new()),
            unreachable: AtomicBool::new(false),
            failing_dependency: Mutex::new(None),
            unknown_once: AtomicBool::new(false),
            failing_restarts: AtomicUsize::new(0),
            clock: Mutex::new(0),
        }
    }

    /// The same, as the manager of `scope`.
    #[must_use]
    pub fn with_scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    /// Makes [`Manager::reachable`] fail, as when no manager runs.
    pub fn set_unreachable(&self, unreachable: bool) {
        self.unreachable.store(unreachable, Ordering::Relaxed);
    }

    /// A unit that fails whenever others are started, as a network's service
    /// does when its subnet is taken: the units started stay inactive, with no
    /// job left.
    pub fn fail_dependency(&self, unit: &str) {
        *lock(&self.failing_dependency) = Some(unit.to_owned());
    }

    /// The next start finds no such unit, as after another client's reload
    /// raced with this one.
    pub fn forget_units_once(&self) {
        self.unknown_once.store(true, Ordering::Relaxed);
    }

    /// The next `n` restarts fail, leaving their units failed.
    pub fn fail_restarts(&self, n: usize) {
        self.failing_restarts.store(n, Ordering::Relaxed);
    }

    /// Puts a unit in a state, as if something else had.
    pub fn set_state(&self, unit: &str, active: ActiveState) {
        let stamp = self.tick();
        let mut units = lock(&self.units);
        let state = units
            .entry(unit.to_owned())
            .or_insert_with(|| UnitState::unknown(unit));
        state.load = LoadState::Loaded;
        if active == ActiveState::Active {
            state.active_since = Some(stamp);
        }
        state.active = active;
        state.has_job = false;
    }

    /// The calls so far, in order.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }

    fn record(&self, call: String) {
        lock(&self.calls).push(call);
    }

    /// A clock that moves one second per change, so that each activation is
    /// later than the one before.
    fn tick(&self) -> DateTime<Utc> {
        let mut clock = lock(&self.clock);
        *clock += 1;
        Utc.timestamp_opt(1_893_456_000 + *clock, 0)
            .single()
            .unwrap_or_default()
    }

    fn refused(&self, verb: &str, units: &[String], detail: String) -> Error {
        Error::Refused {
            command: format!("systemctl{} {verb} {}", self.scope.flag(), units.join(" ")),
            detail,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[async_trait]
impl Manager for FakeManager {
    fn scope(&self) -> Scope {
        self.scope
    }

    async fn reachable(&self) -> Result<()> {
        if self.unreachable.load(Ordering::Relaxed) {
            return Err(Error::Refused {
                command: format!("systemctl{} is-system-running", self.scope.flag()),
                detail: "Failed to connect to bus".into(),
            });
        }
        Ok(())
    }

    async fn daemon_reload(&self) -> Result<()> {
        self.record("daemon-reload".into());
        Ok(())
    }

    async fn start(&self, units: &[String], _wait: Wait) -> Result<()> {
        self.record(format!("start {}", units.join(" ")));
        if self.unknown_once.swap(false, Ordering::Relaxed) {
            return Err(self.refused(
                "start",
                units,
                format!("Failed to start {}: Unit {0} not found.", units[0]),
            ));
        }
        if let Some(dependency) = lock(&self.failing_dependency).clone() {
            self.set_state(&dependency, ActiveState::Failed);
            return Ok(());
        }
        for unit in units {
            self.set_state(unit, ActiveState::Active);
        }
        Ok(())
    }

    async fn restart(&self, units: &[String], _wait: Wait) -> Result<()> {
        self.record(format!("restart {}", units.join(" ")));
        let fail = self
            .failing_restarts
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        for unit in units {
            self.set_state(
                unit,
                if fail {
                    ActiveState::Failed
                } else {
                    ActiveState::Active
                },
            );
        }
        if fail {
            return Err(self.refused(
                "restart",
                units,
                "Job failed because the control process exited with error code.".into(),
            ));
        }
        Ok(())
    }

    async fn stop(&self, units: &[String]) -> Result<()> {
        self.record(format!("stop {}", units.join(" ")));
        for unit in units {
            self.set_state(unit, ActiveState::Inactive);
        }
        Ok(())
    }

    async fn reset_failed(&self, _units: &[String]) -> Result<()> {
        Ok(())
    }

    async fn units(&self, units: &[&str]) -> Result<Vec<UnitState>> {
        let known = lock(&self.units);
        Ok(units
            .iter()
            .map(|unit| {
                known
                    .get(*unit)
                    .cloned()
                    .unwrap_or_else(|| UnitState::unknown(unit))
            })
            .collect())
    }
}
