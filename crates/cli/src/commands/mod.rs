//! One module per subcommand.

pub(crate) mod backup;
pub(crate) mod completions;
pub(crate) mod config;
pub(crate) mod deploy;
pub(crate) mod destroy;
pub(crate) mod plan;
pub(crate) mod quadlet;
pub(crate) mod render;
pub(crate) mod restore;
pub(crate) mod secrets;
pub(crate) mod status;
pub(crate) mod storage;
pub(crate) mod verify;
