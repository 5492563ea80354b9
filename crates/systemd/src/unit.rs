//! What a manager says of a unit, parsed at the boundary into types.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

/// Whether a unit is running, as systemd's `ActiveState` says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ActiveState {
    /// Started (for `Type=notify`, it said it is ready).
    Active,
    /// Reloading its configuration.
    Reloading,
    /// Not running.
    Inactive,
    /// Stopped after a failure.
    Failed,
    /// Starting.
    Activating,
    /// Stopping.
    Deactivating,
    /// A state this crate does not know (a newer systemd's), as written.
    Other(String),
}

impl ActiveState {
    /// Reads systemd's word for it.
    pub fn parse(text: &str) -> Self {
        match text {
            "active" => Self::Active,
            "reloading" => Self::Reloading,
            "inactive" | "" => Self::Inactive,
            "failed" => Self::Failed,
            "activating" => Self::Activating,
            "deactivating" => Self::Deactivating,
            other => Self::Other(other.to_owned()),
        }
    }

    /// systemd's word for it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Active => "active",
            Self::Reloading => "reloading",
            Self::Inactive => "inactive",
            Self::Failed => "failed",
            Self::Activating => "activating",
            Self::Deactivating => "deactivating",
            Self::Other(other) => other,
        }
    }

    /// Whether it runs or is on its way there (`active`, `activating`,
    /// `reloading`).
    pub fn is_running(&self) -> bool {
        matches!(self, Self::Active | Self::Activating | Self::Reloading)
    }
}

impl fmt::Display for ActiveState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the manager has the unit's definition, as `LoadState` says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LoadState {
    /// Loaded.
    Loaded,
    /// No such unit (for a generated unit: its generator has not made it).
    NotFound,
    /// Masked: it cannot be started.
    Masked,
    /// Its file could not be read.
    Error,
    /// A state this crate does not know, as written.
    Other(String),
}

impl LoadState {
    /// Reads systemd's word for it.
    pub fn parse(text: &str) -> Self {
        match text {
            "loaded" => Self::Loaded,
            "not-found" | "" => Self::NotFound,
            "masked" => Self::Masked,
            "error" | "bad-setting" => Self::Error,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// The properties read for every unit, in the order `systemctl show` is asked
/// for them.
pub(crate) const PROPERTIES: &[&str] = &[
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "Result",
    "NeedDaemonReload",
    "ActiveEnterTimestamp",
    "NRestarts",
    "MemoryCurrent",
    "MemoryPeak",
    "CPUUsageNSec",
    "ControlGroup",
    "Job",
    "NextElapseUSecRealtime",
];

/// What a manager says of one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnitState {
    /// The unit's name, as asked for.
    pub name: String,
    /// Whether the manager has its definition.
    pub load: LoadState,
    /// Whether it runs.
    pub active: ActiveState,
    /// The finer state (`running`, `start-post`, `dead`, ...).
    pub sub: String,
    /// How its last run ended (`success`, `exit-code`, ...).
    pub result: String,
    /// Whether its file changed since the manager read it.
    pub need_daemon_reload: bool,
    /// When it last became active.
    pub active_since: Option<DateTime<Utc>>,
    /// How often the manager restarted it (`Restart=`).
    pub restarts: Option<u64>,
    /// Memory in use, where the manager accounts it.
    pub memory_current: Option<u64>,
    /// The most memory it used, where the manager accounts it.
    pub memory_peak: Option<u64>,
    /// CPU time used, where the manager accounts it.
    pub cpu_usage: Option<Duration>,
    /// Its control group (`/user.slice/…/db.service`).
    pub control_group: Option<String>,
    /// Whether a job (start, stop, restart) is queued or running for it.
    pub has_job: bool,
    /// For a timer: when it next elapses.
    pub next_elapse: Option<DateTime<Utc>>,
}

impl UnitState {
    /// A unit the manager does not know, inactive.
    pub fn unknown(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            load: LoadState::NotFound,
            active: ActiveState::Inactive,
            sub: "dead".to_owned(),
            result: String::new(),
            need_daemon_reload: false,
            active_since: None,
            restarts: None,
            memory_current: None,
            memory_peak: None,
            cpu_usage: None,
            control_group: None,
            has_job: false,
            next_elapse: None,
        }
    }

    /// Whether the manager gave up starting it: failed, or inactive with no job
    /// left (a unit it requires failed, and its start job went with it).
    pub fn gave_up(&self) -> bool {
        self.active == ActiveState::Failed
            || (self.active == ActiveState::Inactive && !self.has_job)
    }

    /// Reads one block of `systemctl show` (`KEY=VALUE` lines) for `name`.
    pub(crate) fn from_show(name: &str, block: &str) -> Self {
        let mut state = Self::unknown(name);
        for (key, value) in block.lines().filter_map(|l| l.split_once('=')) {
            match key {
                "LoadState" => state.load = LoadState::parse(value),
                "ActiveState" => state.active = ActiveState::parse(value),
                "SubState" => value.clone_into(&mut state.sub),
                "Result" => value.clone_into(&mut state.result),
                "NeedDaemonReload" => state.need_daemon_reload = value == "yes",
                "ActiveEnterTimestamp" => state.active_since = timestamp(value),
                "NRestarts" => state.restarts = number(value),
                "MemoryCurrent" => state.memory_current = number(value),
                "MemoryPeak" => state.memory_peak = number(value),
                "CPUUsageNSec" => state.cpu_usage = number(value).map(Duration::from_nanos),
                "ControlGroup" => {
                    state.control_group = (!value.is_empty()).then(|| value.to_owned());
                }
                "Job" => state.has_job = !value.is_empty() && value != "0",
                "NextElapseUSecRealtime" => state.next_elapse = timestamp(value),
                _ => {}
            }
        }
        state
    }
}

/// A number property, or `None` where systemd does not know it (`[not set]`,
/// or the all-ones "infinity").
fn number(value: &str) -> Option<u64> {
    value.parse::<u64>().ok().filter(|v| *v != u64::MAX)
}

/// A timestamp as `systemctl show --timestamp=us+utc` writes it
/// (`Wed 2026-11-25 16:58:59.399570 UTC`); `None` when empty or unreadable.
pub(crate) fn timestamp(value: &str) -> Option<DateTime<Utc>> {
    let rest = value.trim().strip_suffix(" UTC")?;
    // The weekday comes first.
    let (_, rest) = rest.split_once(' ')?;
    NaiveDateTime::parse_from_str(rest, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_of_show_is_read_into_types() {
        let state = UnitState::from_show(
            "db.service",
            "Id=db.service\nLoadState=loaded\nActiveState=active\nSubState=running\n\
             ActiveEnterTimestamp=Wed 2026-11-25 16:58:59.399570 UTC\nNRestarts=2\n\
             MemoryCurrent=[not set]\nMemoryPeak=18446744073709551615\nCPUUsageNSec=1500000000\n\
             ControlGroup=/app.slice/db.service\nJob=\nNeedDaemonReload=yes\n",
        );
        assert_eq!(state.load, LoadState::Loaded);
        assert_eq!(state.active, ActiveState::Active);
        assert_eq!(state.sub, "running");
        assert_eq!(state.restarts, Some(2));
        assert_eq!(state.memory_current, None);
        assert_eq!(state.memory_peak, None);
        assert_eq!(state.cpu_usage, Some(Duration::from_millis(1500)));
        assert_eq!(
            state.control_group.as_deref(),
            Some("/app.slice/db.service")
        );
        assert!(state.need_daemon_reload);
        assert!(!state.has_job);
        // date -u -d '2026-11-25 16:58:59' +%s = 1795625939
        let since = state.active_since.unwrap();
        assert_eq!(since.timestamp(), 1_795_625_939);
        assert_eq!(since.timestamp_subsec_micros(), 399_570);
    }

    #[test]
    fn what_is_not_said_is_unknown() {
        let state = UnitState::from_show("x.service", "");
        assert_eq!(state, UnitState::unknown("x.service"));
        assert!(state.gave_up());
        assert_eq!(timestamp(""), None);
        assert_eq!(timestamp("n/a"), None);
        assert_eq!(
            ActiveState::parse("frobnicating"),
            ActiveState::Other("frobnicating".into())
        );
        assert_eq!(ActiveState::parse("frobnicating").as_str(), "frobnicating");
    }

    #[test]
    fn a_unit_starting_has_not_given_up() {
        let starting = UnitState::from_show("a", "ActiveState=inactive\nJob=42\n");
        assert!(!starting.gave_up());
        let failed = UnitState::from_show("a", "ActiveState=failed\nJob=\n");
        assert!(failed.gave_up());
        assert!(ActiveState::Activating.is_running());
        assert!(!ActiveState::Failed.is_running());
    }
}
