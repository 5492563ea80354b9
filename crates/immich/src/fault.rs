//! Fault hooks for tests: in debug builds, `IMMICH_DB_FAULT_AT=<step>` makes
//! deploy kill itself with SIGKILL when it reaches that step boundary, as a power
//! cut or `kill -9` would; `IMMICH_DB_HOLD_AT=<step>` with
//! `IMMICH_DB_HOLD_FILE=<path>` makes it stop there, say so in `<path>.held`
//! (its process ID), and wait until `<path>` exists, so that a test acts while
//! it is there (another deploy, a signal) without guessing when. Release builds
//! have no hook.

/// The step boundaries of a deploy, in order: `network`, `storage`, `secrets`,
/// `units`, `reload`, `start`, `health`, `verify`.
///
/// The environment variable naming the step to die at.
#[cfg(debug_assertions)]
pub(crate) const FAULT_ENV: &str = "IMMICH_DB_FAULT_AT";

/// The environment variable naming the step to wait at.
#[cfg(debug_assertions)]
const HOLD_ENV: &str = "IMMICH_DB_HOLD_AT";

/// The environment variable naming the file whose existence ends the wait.
#[cfg(debug_assertions)]
const HOLD_FILE_ENV: &str = "IMMICH_DB_HOLD_FILE";

/// Dies, or waits, here if asked to (debug builds only).
#[cfg(debug_assertions)]
pub(crate) fn point(step: &str) {
    if std::env::var(FAULT_ENV).is_ok_and(|v| v == step) {
        eprintln!("{FAULT_ENV}={step}: killing deploy here");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        std::process::abort();
    }
    if std::env::var(HOLD_ENV).is_ok_and(|v| v == step)
        && let Some(release) = std::env::var_os(HOLD_FILE_ENV)
    {
        let release = std::path::PathBuf::from(release);
        let mut held = release.clone().into_os_string();
        held.push(".held");
        eprintln!("{HOLD_ENV}={step}: waiting for {}", release.display());
        let _ = std::fs::write(&held, std::process::id().to_string());
        // The whole process waits: nothing else it does goes on meanwhile.
        while !release.exists() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Release builds carry no fault hook.
#[cfg(not(debug_assertions))]
pub(crate) fn point(_step: &str) {}
