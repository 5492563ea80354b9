//! The real user managers of the test host, root's and the rootless user's:
//! units started, their start job watched, waited for, read as types, stopped;
//! a unit that fails is given up on.
//!
//! A user's manager answers only that user, so the rootless case runs this test
//! binary again as that user (`as_the_user`, ignored otherwise).

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use homelab_systemd::{
    ActiveState, LoadState, Manager, Scope, Systemctl, UnitState, Wait, WaitError, WaitFor,
};
use immich_db_testhost::{require_host, require_rootless_host, unique_name};

/// Set in the environment of this binary run again as the rootless user.
const INNER: &str = "IMMICH_DB_SYSTEMD_TEST_AS_USER";

/// Unit files in the manager's runtime unit directory (which a reboot
/// empties), stopped and removed when dropped, also when the test panics.
struct Units {
    runtime_dir: PathBuf,
    names: Vec<String>,
}

impl Units {
    fn dir(&self) -> PathBuf {
        self.runtime_dir.join("systemd/user")
    }

    fn add(&mut self, name: &str, body: &str) {
        std::fs::create_dir_all(self.dir()).unwrap();
        std::fs::write(self.dir().join(name), body).unwrap();
        self.names.push(name.to_owned());
    }
}

impl Drop for Units {
    fn drop(&mut self) {
        let systemctl = |args: &[&str]| {
            let _ = Command::new("systemctl")
                .arg("--user")
                .args(args)
                .env("XDG_RUNTIME_DIR", &self.runtime_dir)
                .output();
        };
        for name in &self.names {
            systemctl(&["stop", name]);
            systemctl(&["reset-failed", name]);
            let _ = std::fs::remove_file(self.dir().join(name));
        }
        systemctl(&["daemon-reload"]);
    }
}

async fn starts_waits_and_stops(runtime_dir: &Path) {
    let mut units = Units {
        runtime_dir: runtime_dir.to_path_buf(),
        names: Vec::new(),
    };
    let good = format!("{}.service", unique_name("sd"));
    let bad = format!("{}.service", unique_name("sdf"));
    units.add(
        &good,
        "[Service]\nType=notify\nNotifyAccess=all\n\
         ExecStart=/bin/sh -c 'sleep 0.5; systemd-notify --ready; exec sleep 300'\n",
    );
    units.add(&bad, "[Service]\nType=notify\nExecStart=/bin/false\n");
    let systemd = Systemctl::new(Scope::User).with_runtime_dir(runtime_dir);
    systemd.reachable().await.unwrap();
    systemd.daemon_reload().await.unwrap();

    let before = systemd.unit(&good).await.unwrap();
    assert_eq!(before.load, LoadState::Loaded);
    assert_eq!(before.active, ActiveState::Inactive);

    let started = chrono::Utc::now();
    systemd
        .start(std::slice::from_ref(&good), Wait::Queued)
        .await
        .unwrap();
    let state = wait(&systemd, &good).await.unwrap();
    assert_eq!(state.active, ActiveState::Active);
    assert_eq!(state.sub, "running");
    // It said it was ready half a second after its start.
    let since = state.active_since.unwrap();
    let after = since - started;
    assert!(
        after >= chrono::TimeDelta::milliseconds(400) && after < chrono::TimeDelta::seconds(30),
        "active {after} after the start"
    );
    assert!(
        state.control_group.as_deref().unwrap().ends_with(&good),
        "{state:?}"
    );

    systemd.stop(std::slice::from_ref(&good)).await.unwrap();
    assert_eq!(
        systemd.unit(&good).await.unwrap().active,
        ActiveState::Inactive
    );

    systemd
        .start(std::slice::from_ref(&bad), Wait::Queued)
        .await
        .unwrap();
    match wait(&systemd, &bad).await {
        Err(WaitError::GaveUp(state)) => {
            assert_eq!(state.active, ActiveState::Failed);
            assert_eq!(state.result, "exit-code");
        }
        other => panic!("{other:?}"),
    }
    let missing = systemd.unit("idbt-no-such-unit.service").await.unwrap();
    assert_eq!(missing.load, LoadState::NotFound);
}

async fn wait(systemd: &Systemctl, unit: &str) -> Result<UnitState, WaitError> {
    let mut job = systemd.watch_job(unit);
    WaitFor::new(unit, Duration::from_secs(30))
        .wait(systemd, &mut job)
        .await
}

#[tokio::test]
async fn root_user_manager_starts_waits_and_stops() {
    let host = require_host!();
    starts_waits_and_stops(&host.runtime_dir).await;
}

#[test]
fn rootless_user_manager_starts_waits_and_stops() {
    let host = require_rootless_host!();
    let me = host.executable(&std::env::current_exe().unwrap());
    let out = host
        .command(me)
        .args(["--exact", "as_the_user", "--ignored", "--nocapture"])
        .env(INNER, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}

/// The scenario, as the user this binary runs as (see
/// `rootless_user_manager_starts_waits_and_stops`).
#[tokio::test]
#[ignore = "run as the rootless user by rootless_user_manager_starts_waits_and_stops"]
async fn as_the_user() {
    assert!(
        std::env::var_os(INNER).is_some(),
        "run by rootless_user_manager_starts_waits_and_stops"
    );
    let runtime_dir = PathBuf::from(std::env::var_os("XDG_RUNTIME_DIR").unwrap());
    starts_waits_and_stops(&runtime_dir).await;
}
