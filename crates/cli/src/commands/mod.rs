//! One module per subcommand.

pub(crate) mod config;
pub(crate) mod deploy;
pub(crate) mod destroy;
pub(crate) mod plan;
pub(crate) mod quadlet;
pub(crate) mod status;
pub(crate) mod verify;
