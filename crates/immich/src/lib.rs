//! The Immich database layer (PostgreSQL and Valkey) as Podman Quadlet units run
//! by systemd, on a BTRFS pool with copy-on-write off for the databases, with
//! its passwords as Podman secrets: everything the `immich-db` command does, as
//! a library that other programs call.
//!
//! A configuration is loaded and checked into a [`Deployment`]; a [`Layer`] is
//! that deployment on this host (its systemd manager, podman, secret store),
//! and every operation is a method of it: [`Layer::plan`], [`Layer::deploy`],
//! [`Layer::verify`], [`Layer::status`], [`Layer::destroy`], backups, restores
//! and secret rotations. Each returns a report that serialises (the binary's
//! `--json`) and displays (its text); progress goes to a [`Progress`] the
//! caller implements.
//!
//! ```no_run
//! use std::sync::Arc;
//! use homelab_immich::{Access, Layer, config, progress::Recorder};
//!
//! # async fn example() -> homelab_immich::Result<()> {
//! let deployment = config::load(None)?.validate()?;
//! let layer = Layer::connect(deployment, &Access::new())
//!     .await?
//!     .with_progress(Arc::new(Recorder::new()));
//! let plan = layer.plan(&Default::default()).await?;
//! println!("{}", plan.plan);
//! let deployed = layer.deploy(&Default::default()).await?;
//! assert!(deployed.verification().is_none_or(|v| v.ok));
//! # Ok(())
//! # }
//! ```
//!
//! Past one host: [`kubernetes::render`] writes the same layer as Kubernetes
//! manifests (a CloudNativePG `Cluster`, Valkey, the Secrets), and
//! [`transfer::restore`] loads a backup into any PostgreSQL this host reaches,
//! such as that cluster's.
//!
//! Nothing here ever puts a password in a process's arguments, a log line, a
//! unit file or a file it writes.

#![deny(missing_docs)]

mod backup;
pub mod backups;
mod cgroup;
pub mod config;
mod db_settings;
pub mod deploy;
pub mod desired;
pub mod destroy;
mod direct;
mod error;
mod exec_secret;
mod fault;
mod files;
pub mod import;
pub mod kubernetes;
mod layer;
pub mod layout;
mod lock;
mod pipe;
pub mod plan;
pub mod preconditions;
pub mod progress;
pub mod render;
mod rotate;
mod schedule;
pub mod secrets;
pub mod server;
mod set;
mod sql_dump;
pub mod status;
pub mod storage;
mod swap;
pub mod transfer;
pub mod update;
pub mod upgrade;
mod userns;
pub mod verify;

pub use config::Deployment;
pub use error::{Error, ErrorKind, Problem, Result};
pub use layer::{Access, Layer};
pub use progress::Progress;
