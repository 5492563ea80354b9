//! BTRFS for database directories: copy-on-write off (NOCOW), audits of the files
//! it never reached, their migration, and subvolumes, all through system calls and
//! ioctls, without running `chattr`, `lsattr` or `btrfs`.
//!
//! Databases such as PostgreSQL and Valkey rewrite their files in place; on BTRFS
//! each such write is copy-on-write, which fragments the files and multiplies
//! writes. Turning copy-on-write off (`chattr +C`) on their data directory before
//! the first file is written avoids that. This crate:
//!
//! - tells whether a path is on BTRFS and how full the filesystem is
//!   ([`filesystem`], [`is_btrfs`], [`usage`]);
//! - reads inode attributes and renders them as `lsattr` does ([`attributes`],
//!   [`Attributes`]), and sets or clears NOCOW keeping the other attributes,
//!   checking by reading back that it took ([`set_nocow`], [`clear_nocow`]): BTRFS
//!   silently ignores `+C` on a file that holds data, and that is reported as
//!   [`Error::NocowIgnored`], not hidden;
//! - makes sure a directory exists with owner, mode and NOCOW state, and says what
//!   that changed or would change ([`ensure_dir`], [`plan_dir`]);
//! - audits a tree for copy-on-write files below NOCOW directories, with a
//!   parallel walk that also sums the bytes used per directory ([`audit`]);
//!   the same walk measures a tree on any filesystem ([`disk_usage`]);
//! - rewrites such files into NOCOW copies, safely even when interrupted
//!   ([`migrate_to_nocow`]);
//! - creates subvolumes, recognises them, and takes read-only snapshots
//!   ([`create_subvolume`], [`is_subvolume`], [`snapshot_readonly`]).
//!
//! On ext4, XFS, tmpfs and other filesystems, asking for NOCOW fails with
//! [`Error::NotSupported`], whose message says that NOCOW has no effect there.
//!
//! # Examples
//!
//! Attributes render and parse as the attribute column of `lsattr`:
//!
//! ```
//! use homelab_btrfs::Attributes;
//!
//! let attrs: Attributes = "---------------C------".parse()?;
//! assert!(attrs.is_nocow());
//! assert_eq!((attrs | Attributes::NOATIME).to_string(), "-------A-------C------");
//! # Ok::<(), homelab_btrfs::Error>(())
//! ```
//!
//! Which filesystem a path is on:
//!
//! ```
//! let fs = homelab_btrfs::filesystem("/proc")?;
//! assert!(!fs.is_btrfs());
//! println!("/proc is on {fs}");
//! # Ok::<(), homelab_btrfs::Error>(())
//! ```
//!
//! Preparing a PostgreSQL data directory (this changes the host):
//!
//! ```no_run
//! use homelab_btrfs::{DirChange, DirSpec, Nocow, ensure_dir};
//!
//! let spec = DirSpec::new("/mnt/btrfs-pool/subvol7-containers/postgresql-immich")
//!     .owner(999, 999)
//!     .mode(0o700)
//!     .nocow(Nocow::On);
//! // What would change, without changing anything:
//! println!("{:?}", homelab_btrfs::plan_dir(&spec)?.changes);
//! let report = ensure_dir(&spec)?;
//! if report.is_unchanged() {
//!     println!("{} already as asked", report.path.display());
//! }
//! for change in &report.changes {
//!     if let DirChange::NocowSet { existing_entries } = change
//!         && *existing_entries > 0
//!     {
//!         println!("{existing_entries} entries predate NOCOW: audit and migrate them");
//!     }
//! }
//! # Ok::<(), homelab_btrfs::Error>(())
//! ```

#![deny(missing_docs)]

mod attributes;
mod audit;
mod dir;
mod error;
mod filesystem;
mod migrate;
mod path;
mod statfs;
mod subvolume;
mod sys;

pub use attributes::{Attributes, NocowChange, attributes, clear_nocow, set_nocow};
pub use audit::{
    AuditReport, CowFile, DirUsage, SkipReason, Skipped, audit, audit_with_threads,
    default_threads, disk_usage,
};
pub use dir::{DirChange, DirReport, DirSpec, Nocow, Owner, ensure_dir, plan_dir};
pub use error::{Error, Result};
pub use filesystem::{Filesystem, Usage};
pub use migrate::{
    MigrateReport, MigratedFile, Migration, ServiceState, clean_leftovers, migrate_to_nocow,
};
pub use statfs::{filesystem, is_btrfs, usage};
pub use subvolume::{
    create_subvolume, delete_snapshot, is_readonly_subvolume, is_subvolume, snapshot_readonly,
};
