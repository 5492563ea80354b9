//! The rootless user's systemd user manager stopped and started again, as at a
//! reboot of a host where the user has lingering: both services come back by
//! themselves, with the user's own podman. In a file of its own: it stops every
//! unit of that manager.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

mod common;

use std::time::Duration;

use common::TestDeployment;
use immich_db_testhost::require_rootless_host;

#[test]
fn rootless_services_come_back_after_the_user_manager_restarts() {
    let host = require_rootless_host!();
    let d = TestDeployment::new(host, "rboot");
    d.run_ok(&["deploy"]);
    let before = d.container_identity(&d.pg);

    host.restart_user_manager();

    d.wait_active(Duration::from_secs(180));
    assert_ne!(
        before,
        d.container_identity(&d.pg),
        "a new container after the restart"
    );
    d.json_ok("verify");
}
