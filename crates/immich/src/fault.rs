//! A fault hook for tests: in debug builds, `IMMICH_DB_FAULT_AT=<step>` makes
//! deploy kill itself with SIGKILL when it reaches that step boundary, as a power
//! cut or `kill -9` would. Release builds have no hook.

/// The step boundaries of a deploy, in order: `network`, `storage`, `secrets`,
/// `units`, `reload`, `start`, `health`, `verify`.
///
/// The environment variable naming the step to die at.
#[cfg(debug_assertions)]
pub(crate) const FAULT_ENV: &str = "IMMICH_DB_FAULT_AT";

/// Dies here if asked to (debug builds only).
#[cfg(debug_assertions)]
pub(crate) fn point(step: &str) {
    if std::env::var(FAULT_ENV).is_ok_and(|v| v == step) {
        eprintln!("{FAULT_ENV}={step}: killing deploy here");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        std::process::abort();
    }
}

/// Release builds carry no fault hook.
#[cfg(not(debug_assertions))]
pub(crate) fn point(_step: &str) {}
