//! Progress for a person, on standard error: a line per phase, change and
//! warning; a spinner per service waited for on a terminal (a line per change
//! of state elsewhere); bytes moved.

use std::collections::BTreeMap;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::sync::Mutex;
use std::time::Duration;

use homelab_immich::progress::{Event, Progress};
use homelab_immich::{Error, Result};

/// How much to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verbosity {
    /// Nothing (`--quiet`, `--json`).
    Quiet,
    /// Lines and spinners.
    Normal,
}

/// The terminal's view of an operation.
#[derive(Debug)]
pub(crate) struct Terminal {
    verbosity: Verbosity,
    live: bool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    multi: Option<indicatif::MultiProgress>,
    spinners: BTreeMap<String, indicatif::ProgressBar>,
    /// The state last printed per service, without a terminal.
    shown: BTreeMap<String, String>,
    bytes: Option<indicatif::ProgressBar>,
}

impl Terminal {
    pub(crate) fn new(verbosity: Verbosity) -> Self {
        Self {
            verbosity,
            live: verbosity == Verbosity::Normal && std::io::stderr().is_terminal(),
            state: Mutex::new(State::default()),
        }
    }

    fn line(text: &str) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
    }

    fn spinner(state: &mut State, service: &str) -> indicatif::ProgressBar {
        if let Some(bar) = state.spinners.get(service) {
            return bar.clone();
        }
        let multi = state
            .multi
            .get_or_insert_with(indicatif::MultiProgress::new)
            .clone();
        let style =
            indicatif::ProgressStyle::with_template("{spinner} {prefix}: {msg} ({elapsed})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
        let bar = multi.add(indicatif::ProgressBar::new_spinner());
        bar.set_style(style);
        bar.set_prefix(service.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        state.spinners.insert(service.to_owned(), bar.clone());
        bar
    }
}

impl Progress for Terminal {
    fn event(&self, event: Event<'_>) {
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            Event::Phase(what) => Self::line(what),
            Event::Done(what) => Self::line(&format!("  {what}")),
            Event::Warning(what) => Self::line(&format!("warning: {what}")),
            Event::Service {
                service,
                state: now,
            } if self.live => {
                Self::spinner(&mut state, service).set_message(now.to_owned());
            }
            Event::Service {
                service,
                state: now,
            } => {
                if state.shown.get(service).is_none_or(|last| last != now) {
                    state.shown.insert(service.to_owned(), now.to_owned());
                    Self::line(&format!("  {service}: {now}"));
                }
            }
            Event::Ready { service, after } => {
                let text = format!("healthy after {:.1} s", after.as_secs_f64());
                if self.live {
                    Self::spinner(&mut state, service).finish_with_message(text);
                } else {
                    Self::line(&format!("  {service}: {text}"));
                }
            }
            Event::WaitOver => {
                if let Some(multi) = state.multi.take() {
                    let _ = multi.clear();
                }
                state.spinners.clear();
            }
            Event::Bytes { what, done, total } if self.live => {
                let bar = state.bytes.get_or_insert_with(|| {
                    let bar = indicatif::ProgressBar::new(total.unwrap_or(0));
                    let template = if total.is_some() {
                        "{prefix}: {bytes}/{total_bytes} ({bytes_per_sec}, {eta})"
                    } else {
                        "{prefix}: {bytes} ({bytes_per_sec})"
                    };
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(template)
                            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                    );
                    bar.set_prefix(what.to_owned());
                    bar
                });
                bar.set_position(done);
            }
            Event::Bytes { .. } | _ => {}
        }
    }
}

/// Asks on the terminal before going on: `what` is what the command will do,
/// `warning` what the user must know first (such as that it cannot be
/// undone). Without a terminal it refuses and changes nothing.
pub(crate) fn confirm(what: &str, warning: Option<&str>) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(
            Error::bad_input(format!("refusing to {what} without confirmation"))
                .help("pass --yes to confirm; nothing was changed"),
        );
    }
    let warning = warning.map(|w| format!(" {w}")).unwrap_or_default();
    eprint!("This will {what}.{warning} Type `yes` to go on: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(Error::bad_input("not confirmed").help("nothing was changed"))
    }
}
