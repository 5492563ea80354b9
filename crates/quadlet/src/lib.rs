//! Podman Quadlet units that parse, render, name and lint, agreeing with podman's
//! own generator.
//!
//! Quadlet files (`.container`, `.network`, `.volume`, `.pod`, `.kube`, `.image`,
//! `.build`, `.artifact`) use systemd unit syntax; podman's generator turns each
//! into a systemd service. This crate reads and writes them three ways:
//!
//! - [`UnitFile`]: the text, line for line. Parsing then rendering gives back the
//!   same bytes; edits touch only their lines; [`UnitFile::canonical`] is the
//!   formatted text, which the generator reads with the same meaning.
//! - Typed units ([`ContainerUnit`], [`NetworkUnit`], [`VolumeUnit`], [`PodUnit`]):
//!   one struct per section, `Option` for single keys, `Vec` for repeated ones,
//!   structured values ([`Secret`], [`VolumeMount`], [`IpNet`], [`Duration`]) that
//!   parse and display back. Keys and sections the model does not type are kept as
//!   written. Render with [`ContainerUnit::render`], or for an older podman with
//!   [`ContainerUnit::render_for`].
//! - A set of units ([`UnitSet`]) checked together by [`lint()`]: every check that
//!   makes the generator of the target podman release (4.4 to 5.8) refuse a file,
//!   as that release makes it, and the problems it lets through: dependencies on
//!   services nothing generates, values podman refuses when the service starts,
//!   secrets in plain environment variables, shared volumes relabelled privately.
//!
//! The naming rules (file → service, podman object, implied dependencies) live in
//! [`naming`]; which key arrived in which podman release in [`version`].
//! [`write_atomic`] puts a unit file in place so that the generator never reads
//! half of one.
//!
//! ```
//! use homelab_quadlet::{lint, ContainerUnit, PodmanVersion, Severity, UnitSet};
//!
//! let network = "[Network]\nSubnet=10.89.5.0/24\n\n[Install]\nWantedBy=default.target\n";
//! let container = "[Container]\nImage=docker.io/valkey/valkey:8\n\
//!                  Network=systemd-photos.network\n\n[Install]\nWantedBy=default.target\n";
//! let mut set = UnitSet::new();
//! set.insert("photos.network", network)?;
//! set.insert("redis.container", container)?;
//!
//! let findings = lint(&set, PodmanVersion::new(5, 4, 2));
//! let error = findings.iter().find(|f| f.severity == Severity::Error).unwrap();
//! assert_eq!(error.code.as_str(), "unknown-unit");
//! assert!(error.fix.as_deref().unwrap().contains("Network=photos.network"));
//!
//! // The typed view of the same file.
//! let unit = ContainerUnit::parse("redis.container", container)?;
//! assert_eq!(unit.container.network, ["systemd-photos.network"]);
//! # Ok::<(), homelab_quadlet::Error>(())
//! ```

#![deny(missing_docs)]

mod compat;
mod container;
mod error;
mod files;
mod finding;
mod fmt;
pub mod lint;
mod model;
pub mod naming;
mod network;
mod pod;
mod release;
mod rules;
mod set;
mod suggest;
pub mod syntax;
mod unit;
pub mod values;
pub mod version;
mod volume;
pub mod words;

pub use compat::adapt;
pub use container::Container;
pub use error::{Error, Result};
pub use files::write_atomic;
pub use fmt::{Formatted, format, format_file, format_in_place};
pub use lint::{Code, Finding, LintOptions, Scope, Severity, lint};
pub use model::{
    Body, InstallSection, QuadletSection, RawEntry, RawSection, ServiceSection, UnitSection,
};
pub use naming::{UnitKind, UnitNames};
pub use network::Network;
pub use pod::Pod;
pub use set::{SourceUnit, UnitSet};
pub use syntax::{Entry, ParseError, UnitFile};
pub use unit::{AnyUnit, ContainerUnit, NetworkUnit, PodUnit, VolumeUnit};
pub use values::{
    AutoUpdate, Duration, HealthInterval, HealthOnFailure, IpNet, IpNetExt, IpRange, KeyValue,
    Notify, PullPolicy, Relabel, RestartPolicy, Secret, SecretType, TimeSpan, VolumeMount,
    parse_ip_net,
};
pub use version::{KeyInfo, PodmanVersion, key_info};
pub use volume::Volume;
