//! The user manager stopped and started again, as at a reboot: both services
//! come back by themselves ([Install] WantedBy=default.target, no enable).
//! In a file of its own: it stops every user unit on the host.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

mod common;

use std::time::Duration;

use common::TestDeployment;
use immich_db_testhost::require_host;

#[test]
fn services_come_back_after_the_user_manager_restarts() {
    let host = require_host!();
    let d = TestDeployment::new(host, "boot");
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
