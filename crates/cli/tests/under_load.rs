//! The tool at work on a deployment under load: with pgbench
//! writing to PostgreSQL and a client writing to Valkey, a deploy with
//! nothing to change, verify, status and a backup restart nothing and make
//! no transaction or write fail. `benches/load.rs` prints the figures.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

mod common;
mod load;

use common::{TestDeployment, text};
use immich_db_testhost::{Host, require_host, require_rootless_host};
use load::{Load, identities};

fn under_load(host: &'static Host) {
    let d = TestDeployment::new(host, "load");
    d.run_ok(&["deploy"]);
    let before = identities(&d);

    let mut load = Load::start(&d, 2, 30);
    let out = d.run_ok(&["deploy"]);
    assert!(text(&out).contains("No changes"), "{}", text(&out));
    for command in ["verify", "status", "backup"] {
        d.run_ok(&[command]);
    }
    assert!(
        load.running(),
        "the load ended before the commands did: make it longer"
    );
    let report = load.finish(&d);

    assert!(report.pgbench_ok, "{}", report.pgbench_output);
    assert_eq!(report.failed_transactions, 0, "{}", report.pgbench_output);
    assert!(report.transactions > 100, "{}", report.pgbench_output);
    assert_eq!(report.valkey_errors, 0, "{report:?}");
    assert!(report.valkey_writes > 100, "{report:?}");
    assert_eq!(report.valkey_counter, report.valkey_writes, "{report:?}");
    assert_eq!(before, identities(&d), "a service was restarted");
}

#[test]
fn under_load_deploy_verify_status_and_backup_restart_nothing_and_fail_no_transaction() {
    under_load(require_host!());
}

#[test]
fn rootless_under_load_deploy_verify_status_and_backup_restart_nothing_and_fail_no_transaction() {
    under_load(require_rootless_host!());
}
