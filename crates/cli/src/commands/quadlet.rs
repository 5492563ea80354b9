//! `quadlet fmt` and `quadlet lint`: thin wrappers over the quadlet library.

use crate::cli::QuadletCommand;
use crate::error::{Failure, Result};
use crate::output::Outcome;

pub(crate) fn run(_command: &QuadletCommand) -> Result<Outcome> {
    Err(Failure::internal("quadlet commands are not available yet"))
}
