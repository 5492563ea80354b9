//! Control of the systemd manager that runs the units: `systemctl` for the scope,
//! behind a trait so that plan and deploy logic can be tested with a fake.
//!
//! Unit names are the only arguments ever passed: never a secret.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::config::Scope;

/// Why a `systemctl` call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SystemdError {
    /// The command, as a person would type it.
    pub(crate) command: String,
    /// What it printed on standard error, or why it could not run.
    pub(crate) detail: String,
}

impl fmt::Display for SystemdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` failed: {}", self.command, self.detail.trim())
    }
}

impl std::error::Error for SystemdError {}

pub(crate) type SystemdResult<T> = Result<T, SystemdError>;

/// The properties of a unit that deploy, verify and status read.
pub(crate) const UNIT_PROPERTIES: &[&str] = &[
    "LoadState",
    "ActiveState",
    "SubState",
    "NeedDaemonReload",
    "ActiveEnterTimestamp",
    "NRestarts",
    "MemoryCurrent",
    "MemoryPeak",
    "CPUUsageNSec",
    "Result",
    "ControlGroup",
];

/// What the tool asks of a systemd manager.
pub(crate) trait Systemd: Send + Sync {
    /// For tests that need the fake back.
    #[cfg(test)]
    fn as_any(&self) -> &dyn std::any::Any;
    /// Whether the manager answers; the error says why not.
    fn reachable(&self) -> SystemdResult<()>;
    /// `systemctl daemon-reload`: rerun the generators and reread the units.
    fn daemon_reload(&self) -> SystemdResult<()>;
    /// Start the units; with `wait == false` return once the jobs are queued.
    fn start(&self, units: &[String], wait: bool) -> SystemdResult<()>;
    /// Restart the units; with `wait == false` return once the jobs are queued.
    fn restart(&self, units: &[String], wait: bool) -> SystemdResult<()>;
    /// Stop the units and wait for them to stop.
    fn stop(&self, units: &[String]) -> SystemdResult<()>;
    /// Forget the failed state of the units (ignores units that are not failed).
    fn reset_failed(&self, units: &[String]) -> SystemdResult<()>;
    /// Properties of a unit (timestamps in microseconds, UTC). A unit that does
    /// not exist has `LoadState=not-found`.
    fn show(&self, unit: &str, properties: &[&str]) -> SystemdResult<BTreeMap<String, String>>;
    /// Watches, from the side, the start or restart job just queued for a
    /// unit, so that a caller learns the moment it ends without asking again
    /// and again. Where nothing can watch, the watch stays
    /// [`Job::Unwatched`] and the caller asks with [`show`](Self::show).
    fn watch_job(&self, _unit: &str) -> JobWatch {
        JobWatch::none()
    }
    /// [`show`](Self::show) of several units at once, in their order.
    fn show_all(
        &self,
        units: &[&str],
        properties: &[&str],
    ) -> SystemdResult<Vec<BTreeMap<String, String>>> {
        units.iter().map(|u| self.show(u, properties)).collect()
    }
}

/// What a [`JobWatch`] knows of the job it watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Job {
    /// The job has not ended: the unit is still starting.
    Running,
    /// The job is done: the unit has started (for `Type=notify`, it said it
    /// was ready).
    Done,
    /// The job failed; said once, the watch is [`Unwatched`](Self::Unwatched)
    /// from then on (systemd may restart the unit under a new job).
    Failed,
    /// Nothing watches: ask the manager.
    Unwatched,
}

/// A start or restart job, watched by a `systemctl start` that waits for it.
///
/// A start asked for a unit that already has a start or restart job queued
/// joins that job (systemd merges them) instead of adding one, so the waiting
/// `systemctl` ends exactly when the job does, and it asks nothing while it
/// waits. For a unit with no job queued, it is a start like any other: watch
/// only units just started or restarted, or found starting. Dropping the watch
/// stops that `systemctl`, never the job.
#[derive(Debug)]
pub(crate) struct JobWatch {
    child: Option<std::process::Child>,
    done: bool,
}

impl JobWatch {
    /// A watch that knows nothing.
    pub(crate) fn none() -> Self {
        Self {
            child: None,
            done: false,
        }
    }

    /// Where the job is; never blocks.
    pub(crate) fn poll(&mut self) -> Job {
        if self.done {
            return Job::Done;
        }
        let Some(child) = &mut self.child else {
            return Job::Unwatched;
        };
        match child.try_wait() {
            Ok(None) => Job::Running,
            Ok(Some(status)) => {
                self.child = None;
                self.done = status.success();
                if self.done { Job::Done } else { Job::Failed }
            }
            Err(_) => {
                self.stop();
                Job::Unwatched
            }
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for JobWatch {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The real manager, through `systemctl`.
#[derive(Debug, Clone)]
pub(crate) struct Systemctl {
    scope: Scope,
    runtime_dir: Option<PathBuf>,
}

impl Systemctl {
    pub(crate) fn new(scope: Scope) -> Self {
        // `systemctl --user` finds the manager through XDG_RUNTIME_DIR; a shell
        // reached through `su` or `sudo` often lacks it.
        let runtime_dir = match scope {
            Scope::User => Some(
                std::env::var_os("XDG_RUNTIME_DIR")
                    .filter(|v| !v.is_empty())
                    .map_or_else(
                        || {
                            PathBuf::from(format!(
                                "/run/user/{}",
                                rustix::process::getuid().as_raw()
                            ))
                        },
                        PathBuf::from,
                    ),
            ),
            Scope::System => None,
        };
        Self { scope, runtime_dir }
    }

    /// `$XDG_RUNTIME_DIR` given to `systemctl --user`.
    pub(crate) fn runtime_dir(&self) -> Option<&std::path::Path> {
        self.runtime_dir.as_deref()
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("systemctl");
        if self.scope == Scope::User {
            cmd.arg("--user");
        }
        if let Some(dir) = &self.runtime_dir {
            cmd.env("XDG_RUNTIME_DIR", dir);
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> SystemdResult<String> {
        let _step = crate::timings::step_of("systemctl", &args.join(" "));
        let mut cmd = self.command();
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let display = || {
            let scope = if self.scope == Scope::User {
                " --user"
            } else {
                ""
            };
            format!("systemctl{scope} {}", args.join(" "))
        };
        let out = cmd.output().map_err(|e| SystemdError {
            command: display(),
            detail: format!("cannot run systemctl: {e}"),
        })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            Err(SystemdError {
                command: display(),
                detail: if stderr.is_empty() {
                    out.status.to_string()
                } else {
                    stderr
                },
            })
        }
    }

    fn with_units(&self, verb: &[&str], units: &[String]) -> SystemdResult<()> {
        if units.is_empty() {
            return Ok(());
        }
        let mut args: Vec<&str> = verb.to_vec();
        args.extend(units.iter().map(String::as_str));
        self.run(&args).map(drop)
    }
}

impl Systemd for Systemctl {
    #[cfg(test)]
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn reachable(&self) -> SystemdResult<()> {
        let state = match self.run(&["is-system-running"]) {
            Ok(state) => state,
            // Exits non-zero for "degraded" or "starting", which still answer.
            Err(e)
                if !e.detail.contains("Failed to connect") && !e.detail.contains("cannot run") =>
            {
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        match state.trim() {
            "offline" | "unknown" => Err(SystemdError {
                command: "systemctl is-system-running".into(),
                detail: format!("the manager is {}", state.trim()),
            }),
            _ => Ok(()),
        }
    }

    fn daemon_reload(&self) -> SystemdResult<()> {
        self.run(&["daemon-reload"]).map(drop)
    }

    fn start(&self, units: &[String], wait: bool) -> SystemdResult<()> {
        let verb: &[&str] = if wait {
            &["start"]
        } else {
            &["start", "--no-block"]
        };
        self.with_units(verb, units)
    }

    fn restart(&self, units: &[String], wait: bool) -> SystemdResult<()> {
        let verb: &[&str] = if wait {
            &["restart"]
        } else {
            &["restart", "--no-block"]
        };
        self.with_units(verb, units)
    }

    fn stop(&self, units: &[String]) -> SystemdResult<()> {
        self.with_units(&["stop"], units)
    }

    fn reset_failed(&self, units: &[String]) -> SystemdResult<()> {
        // Fails for units that are not loaded: nothing to forget then.
        let _ = self.with_units(&["reset-failed"], units);
        Ok(())
    }

    fn watch_job(&self, unit: &str) -> JobWatch {
        let child = self
            .command()
            .args(["start", "--no-ask-password", "--", unit])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        JobWatch { child, done: false }
    }

    fn show(&self, unit: &str, properties: &[&str]) -> SystemdResult<BTreeMap<String, String>> {
        let props = properties.join(",");
        let out = self.run(&["show", "--timestamp=us+utc", "-p", &props, "--", unit])?;
        Ok(parse_show(&out))
    }

    fn show_all(
        &self,
        units: &[&str],
        properties: &[&str],
    ) -> SystemdResult<Vec<BTreeMap<String, String>>> {
        let props = properties.join(",");
        let mut args = vec!["show", "--timestamp=us+utc", "-p", &props, "--"];
        args.extend(units);
        let out = self.run(&args)?;
        let blocks = parse_show_all(&out);
        if blocks.len() == units.len() {
            Ok(blocks)
        } else {
            Err(SystemdError {
                command: format!("systemctl show {}", units.join(" ")),
                detail: format!(
                    "answered for {} unit(s) instead of {}",
                    blocks.len(),
                    units.len()
                ),
            })
        }
    }
}

/// Parses what `systemctl show` says of several units: a block of `KEY=VALUE`
/// lines each, blank lines between them.
pub(crate) fn parse_show_all(text: &str) -> Vec<BTreeMap<String, String>> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(parse_show)
        .collect()
}

/// Parses `KEY=VALUE` lines of `systemctl show`.
pub(crate) fn parse_show(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A number property, or `None` when systemd does not know it (`[not set]`, or
/// the all-ones "infinity" value).
pub(crate) fn number(props: &BTreeMap<String, String>, key: &str) -> Option<u64> {
    props
        .get(key)
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|v| *v != u64::MAX)
}

/// A timestamp property (`Wed 2026-11-25 16:58:59.399570 UTC`) as microseconds
/// since the epoch; `None` when empty.
pub(crate) fn timestamp_us(props: &BTreeMap<String, String>, key: &str) -> Option<i64> {
    let value = props.get(key)?.trim();
    let mut parts = value.split_whitespace();
    let _weekday = parts.next()?;
    let date = parts.next()?;
    let time = parts.next()?;
    if parts.next()? != "UTC" {
        return None;
    }
    let mut ymd = date.split('-').map(str::parse::<i64>);
    let (y, m, d) = (ymd.next()?.ok()?, ymd.next()?.ok()?, ymd.next()?.ok()?);
    let (hms, micros) = time.split_once('.').unwrap_or((time, "0"));
    let mut hms = hms.split(':').map(str::parse::<i64>);
    let (hh, mm, ss) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next()?.ok()?);
    let micros: i64 = format!("{micros:0<6}").get(..6)?.parse().ok()?;
    let days = days_from_civil(y, m, d);
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000) + micros)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A recording fake: units have states that the test sets and that start, stop
/// and restart change; every call is recorded.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct FakeSystemd {
    pub(crate) calls: std::sync::Mutex<Vec<String>>,
    pub(crate) units: std::sync::Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    pub(crate) unreachable: bool,
    /// A unit that fails whenever others are started, as a network's service
    /// does when its subnet is taken: the started units then stay inactive,
    /// with no job left.
    pub(crate) failing_dependency: Option<String>,
    /// The next start finds no such unit, as after another client's reload
    /// raced with this one.
    pub(crate) unknown_once: std::sync::atomic::AtomicBool,
    /// How many of the next restarts fail, leaving their unit failed.
    pub(crate) failing_restarts: std::sync::atomic::AtomicUsize,
    clock: std::sync::Mutex<i64>,
}

#[cfg(test)]
impl FakeSystemd {
    fn record(&self, call: String) {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(call);
    }

    fn tick(&self) -> String {
        let mut clock = self
            .clock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *clock += 1;
        format!("Wed 2030-01-01 00:00:{:02}.000000 UTC", *clock % 60)
    }

    fn set(&self, unit: &str, active: &str) {
        let stamp = self.tick();
        let mut units = self
            .units
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let props = units.entry(unit.to_owned()).or_default();
        props.insert("LoadState".into(), "loaded".into());
        props.insert("ActiveState".into(), active.into());
        if active == "active" {
            props.insert("ActiveEnterTimestamp".into(), stamp);
        }
    }

    /// The calls so far.
    pub(crate) fn calls(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
impl Systemd for FakeSystemd {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn reachable(&self) -> SystemdResult<()> {
        if self.unreachable {
            return Err(SystemdError {
                command: "systemctl --user is-system-running".into(),
                detail: "Failed to connect to bus".into(),
            });
        }
        Ok(())
    }

    fn daemon_reload(&self) -> SystemdResult<()> {
        self.record("daemon-reload".into());
        Ok(())
    }

    fn start(&self, units: &[String], _wait: bool) -> SystemdResult<()> {
        self.record(format!("start {}", units.join(" ")));
        if self
            .unknown_once
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            return Err(SystemdError {
                command: format!("systemctl --user start {}", units.join(" ")),
                detail: format!("Failed to start {}: Unit {0} not found.", units[0]),
            });
        }
        if let Some(dependency) = &self.failing_dependency {
            self.set(dependency, "failed");
            return Ok(());
        }
        for unit in units {
            self.set(unit, "active");
        }
        Ok(())
    }

    fn restart(&self, units: &[String], _wait: bool) -> SystemdResult<()> {
        self.record(format!("restart {}", units.join(" ")));
        let fail = self
            .failing_restarts
            .fetch_update(
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
                |n| n.checked_sub(1),
            )
            .is_ok();
        for unit in units {
            self.set(unit, if fail { "failed" } else { "active" });
        }
        if fail {
            return Err(SystemdError {
                command: format!("systemctl --user restart {}", units.join(" ")),
                detail: "Job failed because the control process exited with error code.".into(),
            });
        }
        Ok(())
    }

    fn stop(&self, units: &[String]) -> SystemdResult<()> {
        self.record(format!("stop {}", units.join(" ")));
        for unit in units {
            self.set(unit, "inactive");
        }
        Ok(())
    }

    fn reset_failed(&self, _units: &[String]) -> SystemdResult<()> {
        Ok(())
    }

    fn show(&self, unit: &str, properties: &[&str]) -> SystemdResult<BTreeMap<String, String>> {
        let units = self
            .units
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let known = units.get(unit);
        Ok(properties
            .iter()
            .map(|p| {
                let value = known.and_then(|k| k.get(*p)).cloned().unwrap_or_else(|| {
                    match (*p, known.is_some()) {
                        ("LoadState", false) => "not-found".into(),
                        ("ActiveState", _) => "inactive".into(),
                        ("NeedDaemonReload", _) => "no".into(),
                        _ => String::new(),
                    }
                });
                ((*p).to_owned(), value)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_units_are_read_in_their_order() {
        let text = "LoadState=loaded\nActiveState=active\nJob=\n\nLoadState=not-found\nActiveState=inactive\nJob=\n";
        let blocks = parse_show_all(text);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0]["ActiveState"], "active");
        assert_eq!(blocks[1]["LoadState"], "not-found");
        assert_eq!(blocks[1]["Job"], "");
        assert!(parse_show_all("").is_empty());
    }

    #[test]
    fn parses_show_output_and_timestamps() {
        let props = parse_show(
            "ActiveState=active\nActiveEnterTimestamp=Wed 2026-11-25 16:58:59.399570 UTC\nNRestarts=2\nMemoryCurrent=[not set]\nMemoryPeak=18446744073709551615\n",
        );
        assert_eq!(props["ActiveState"], "active");
        assert_eq!(number(&props, "NRestarts"), Some(2));
        assert_eq!(number(&props, "MemoryCurrent"), None);
        assert_eq!(number(&props, "MemoryPeak"), None);
        // date -u -d '2026-11-25 16:58:59' +%s = 1795625939
        assert_eq!(
            timestamp_us(&props, "ActiveEnterTimestamp"),
            Some(1_795_625_939_399_570)
        );
        assert_eq!(timestamp_us(&parse_show("T=\n"), "T"), None);
    }

    /// Polls until the watch knows more than that the job runs.
    fn settled(watch: &mut JobWatch) -> Job {
        for _ in 0..500 {
            match watch.poll() {
                Job::Running => std::thread::sleep(std::time::Duration::from_millis(10)),
                other => return other,
            }
        }
        panic!("the watched process never ended");
    }

    fn watching(program: &str) -> JobWatch {
        JobWatch {
            child: Some(Command::new(program).spawn().unwrap()),
            done: false,
        }
    }

    #[test]
    fn a_watch_says_done_for_good_and_failed_once() {
        let mut done = watching("true");
        assert_eq!(settled(&mut done), Job::Done);
        assert_eq!(done.poll(), Job::Done);

        let mut failed = watching("false");
        assert_eq!(settled(&mut failed), Job::Failed);
        assert_eq!(failed.poll(), Job::Unwatched);

        assert_eq!(JobWatch::none().poll(), Job::Unwatched);
    }

    #[test]
    fn dropping_a_watch_stops_its_process() {
        let mut watch = JobWatch {
            child: Some(Command::new("sleep").arg("60").spawn().unwrap()),
            done: false,
        };
        assert_eq!(watch.poll(), Job::Running);
        let pid = watch.child.as_ref().unwrap().id();
        drop(watch);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn fake_tracks_states_and_calls() {
        let fake = FakeSystemd::default();
        let unit = "a.service".to_owned();
        assert_eq!(
            fake.show(&unit, &["LoadState"]).unwrap()["LoadState"],
            "not-found"
        );
        fake.start(std::slice::from_ref(&unit), true).unwrap();
        assert_eq!(
            fake.show(&unit, &["ActiveState"]).unwrap()["ActiveState"],
            "active"
        );
        fake.stop(std::slice::from_ref(&unit)).unwrap();
        assert_eq!(fake.calls(), ["start a.service", "stop a.service"]);
    }
}
