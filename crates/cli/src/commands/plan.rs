//! `plan`: what `deploy` would do, changing nothing.

use std::fmt::Write as _;

use serde_json::json;

use crate::context::Context;
use crate::error::Result;
use crate::output::Outcome;
use crate::{plan, preconditions};

pub(crate) async fn run(
    ctx: &Context,
    allow_non_btrfs: bool,
    probe: Option<preconditions::HostProbe>,
) -> Result<Outcome> {
    let report = preconditions::check(ctx, allow_non_btrfs, false, probe)
        .await
        .into_result()?;
    let plan = plan::plan(ctx, report.nocow_possible, report.podman_version).await?;
    let mut human = String::new();
    for w in report.warnings() {
        let _ = writeln!(
            human,
            "warning: {}{}",
            w.detail,
            w.fix
                .as_deref()
                .map(|f| format!(" (fix: {f})"))
                .unwrap_or_default()
        );
    }
    human.push_str(&plan.render());
    Outcome::ok(
        json!({
            "changes": !plan.is_empty(),
            "preconditions": report,
            "plan": plan,
        }),
        human,
    )
}
