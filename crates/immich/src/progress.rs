//! How an operation tells its caller what it is doing while it runs: the
//! caller implements [`Progress`] (the `immich-db` binary draws lines and
//! spinners; a test records the events; [`Silent`] ignores them).

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Something an operation did or is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A phase begins ("checking the host").
    Phase(&'a str),
    /// A change was made (a line of the operation's report).
    Done(&'a str),
    /// Something the user should know; the operation goes on.
    Warning(&'a str),
    /// A service being waited for is in this state now.
    Service {
        /// The service.
        service: &'a str,
        /// Its state, in a few words.
        state: &'a str,
    },
    /// A service being waited for is ready.
    Ready {
        /// The service.
        service: &'a str,
        /// How long after the wait began.
        after: Duration,
    },
    /// No service is waited for any more.
    WaitOver,
    /// Bytes moved by a backup or a restore so far.
    Bytes {
        /// What moves them ("dump", "restore").
        what: &'a str,
        /// How many so far.
        done: u64,
        /// How many in all, where known.
        total: Option<u64>,
    },
}

/// Receives the events of an operation. It is called from the operation's
/// task and must not block for long.
pub trait Progress: Send + Sync + std::fmt::Debug {
    /// One event.
    fn event(&self, event: Event<'_>);
}

/// A [`Progress`] that ignores every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _event: Event<'_>) {}
}

/// A [`Progress`] that keeps every event as a line of text, for tests and
/// logs: `phase: …`, `done: …`, `warning: …`, `service S: …`, `ready S`,
/// `bytes WHAT: N`.
#[derive(Debug, Default)]
pub struct Recorder {
    lines: Mutex<Vec<String>>,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events so far, a line each.
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Progress for Recorder {
    fn event(&self, event: Event<'_>) {
        let line = match event {
            Event::Phase(what) => format!("phase: {what}"),
            Event::Done(what) => format!("done: {what}"),
            Event::Warning(what) => format!("warning: {what}"),
            Event::Service { service, state } => format!("service {service}: {state}"),
            Event::Ready { service, .. } => format!("ready {service}"),
            Event::WaitOver => "wait over".to_owned(),
            Event::Bytes { what, done, .. } => format!("bytes {what}: {done}"),
        };
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }
}
