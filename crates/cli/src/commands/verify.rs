//! `verify`: the checklist; exit 1 when a check of error severity fails.

use crate::context::Context;
use crate::error::Result;
use crate::output::Outcome;

pub(crate) async fn run(ctx: &Context) -> Result<Outcome> {
    let verification = crate::verify::verify(ctx).await;
    let failed = !verification.ok;
    Ok(Outcome::ok(&verification, verification.render())?.failed_if(failed))
}
