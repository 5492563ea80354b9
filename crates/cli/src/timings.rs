//! Where a command spends its time: with `IMMICH_DB_TIMINGS=1`, every timed step
//! prints its duration, and when it ended since the command started, to standard
//! error. Off otherwise, and then free.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// The environment variable that turns the timings on.
pub(crate) const TIMINGS_ENV: &str = "IMMICH_DB_TIMINGS";

static ENABLED: LazyLock<bool> =
    LazyLock::new(|| std::env::var(TIMINGS_ENV).is_ok_and(|v| v == "1"));

/// When the command started (the first use of this module).
static START: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Marks the start of the command; steps report their end relative to it.
pub(crate) fn start() {
    LazyLock::force(&START);
}

/// A timed step: reports when dropped.
#[derive(Debug)]
#[must_use = "a step reports when it is dropped"]
pub(crate) struct Step {
    name: &'static str,
    detail: Option<String>,
    begun: Instant,
}

impl Step {
    /// Ends the step now.
    pub(crate) fn end(self) {
        drop(self);
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if *ENABLED {
            report(self.name, self.detail.as_deref(), self.begun.elapsed());
        }
    }
}

fn report(name: &str, detail: Option<&str>, took: Duration) {
    eprintln!("{}", line(name, detail, took, START.elapsed()));
}

/// `timing: NAME [DETAIL]  TOOK ms (ends at AT ms)`.
fn line(name: &str, detail: Option<&str>, took: Duration, at: Duration) -> String {
    let name = detail.map_or_else(|| name.to_owned(), |d| format!("{name} {d}"));
    format!(
        "timing: {name:<32} {:>8.1} ms (ends at {:>8.1} ms)",
        took.as_secs_f64() * 1000.0,
        at.as_secs_f64() * 1000.0
    )
}

/// Starts timing a step.
pub(crate) fn step(name: &'static str) -> Step {
    LazyLock::force(&START);
    Step {
        name,
        detail: None,
        begun: Instant::now(),
    }
}

/// Starts timing a step of one thing (a service, a secret).
pub(crate) fn step_of(name: &'static str, what: &str) -> Step {
    let mut step = step(name);
    if *ENABLED {
        step.detail = Some(what.to_owned());
    }
    step
}

/// Reports a moment (something observed, not a step) since the command started.
pub(crate) fn mark(name: &'static str, what: &str) {
    if *ENABLED {
        report(name, Some(what), Duration::ZERO);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_the_step_its_duration_and_its_end() {
        let text = line(
            "wait for",
            Some("pg.service"),
            Duration::from_micros(1_234_500),
            Duration::from_secs(2),
        );
        assert!(text.starts_with("timing: wait for pg.service "), "{text}");
        assert!(text.ends_with(" 1234.5 ms (ends at   2000.0 ms)"), "{text}");
        assert_eq!(
            line("plan", None, Duration::ZERO, Duration::ZERO),
            format!("timing: {:<32}      0.0 ms (ends at      0.0 ms)", "plan")
        );
    }
}
