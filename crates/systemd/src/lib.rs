//! A systemd manager behind an async trait: start, restart and stop units, read
//! their state as types (an [`ActiveState`] enum, timestamps as
//! [`chrono::DateTime`]), watch a start job end, and wait until a unit is
//! active, all with one [`Manager`] trait that the real [`Systemctl`] and the
//! recording [`FakeManager`] implement.
//!
//! ```
//! use std::time::Duration;
//! use homelab_systemd::{FakeManager, JobWatch, Manager, Wait, WaitFor};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let manager = FakeManager::new();
//! let units = ["db.service".to_owned()];
//! manager.start(&units, Wait::Queued).await?;
//! let state = WaitFor::new("db.service", Duration::from_secs(5))
//!     .wait(&manager, &mut JobWatch::none())
//!     .await?;
//! assert!(state.active_since.is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Only unit names are ever passed to `systemctl`: never a secret.

#![deny(missing_docs)]

mod error;
mod fake;
mod job;
mod manager;
mod systemctl;
mod unit;
mod wait;

pub use error::{Error, Result};
pub use fake::FakeManager;
pub use job::{Job, JobWatch};
pub use manager::{Manager, Scope, Wait};
pub use systemctl::Systemctl;
pub use unit::{ActiveState, LoadState, UnitState};
pub use wait::{WaitError, WaitFor};
