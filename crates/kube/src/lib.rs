//! Kubernetes manifests for Immich's database layer: PostgreSQL as a
//! CloudNativePG `Cluster`, Valkey as a Deployment with its volume and Service,
//! and the Secrets they take their passwords from.
//!
//! A [`DatabaseLayer`] describes the layer as immich-db's configuration does
//! for Podman (names, images, database, owner, `initdb` arguments, sizes, the
//! Secrets' names). [`DatabaseLayer::render`] turns it into [`Rendered`] files:
//!
//! - [`CLUSTER_FILE`]: the `Cluster` (`postgresql.cnpg.io/v1`, the [`cnpg`]
//!   types), with the password of its owner from a `kubernetes.io/basic-auth`
//!   Secret, checksums and the other `initdb` arguments as CloudNativePG's
//!   fields, the extensions Immich needs created once at set-up, and VectorChord
//!   loaded at start;
//! - [`VALKEY_FILE`]: Valkey's PersistentVolumeClaim, Deployment and Service
//!   (k8s-openapi's types), the password read from a mounted Secret through a
//!   pipe, with probes that match the Quadlet units' health checks;
//! - [`SECRETS_FILE`], only with [`Secrets::Included`]: the Secrets with their
//!   values, written with mode 0600. Otherwise no value is written anywhere;
//! - [`README_FILE`]: how to create the Secrets, apply the files, point
//!   Immich's Helm chart at them and move the data over.
//!
//! [`Rendered::write_to`] writes them into a directory.
//!
//! ```
//! use homelab_kube::{DatabaseLayer, Secrets, SecretValues, WriteOptions};
//! use homelab_secrets::SecretValue;
//!
//! let mut layer = DatabaseLayer::default();
//! layer.namespace = "photos".into();
//! layer.postgres.storage_size = "20Gi".into();
//!
//! // Only references to the Secrets: no value in any file.
//! let rendered = layer.render(Secrets::Referenced)?;
//! let cluster = rendered.file(homelab_kube::CLUSTER_FILE).unwrap().content();
//! assert!(cluster.contains("kind: Cluster"));
//! assert!(cluster.contains("dataChecksums: true"));
//! assert!(rendered.files().iter().all(|f| !f.holds_secrets()));
//!
//! // With the values, in a file of their own, mode 0600.
//! let values = SecretValues::new(SecretValue::new("pg-pass"), SecretValue::new("jwt"))
//!     .with_redis_password(SecretValue::new("valkey-pass"));
//! let rendered = layer.render(Secrets::Included(&values))?;
//! let dir = tempfile::tempdir()?;
//! let report = rendered.write_to(dir.path(), &WriteOptions::new())?;
//! let secrets = report.written.iter().find(|f| f.holds_secrets).unwrap();
//! assert_eq!(secrets.mode, 0o600);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Kubernetes version
//!
//! k8s-openapi builds its types for one Kubernetes version per program. The
//! default feature `pinned-kubernetes-version` picks 1.35; a program that picks
//! its own turns this crate's default features off (the crate builds with the
//! types of 1.33 to 1.37). The manifests use only fields that have long been
//! stable.

#![deny(missing_docs)]

pub mod cnpg;
mod error;
mod initdb;
mod objects;
mod readme;
mod render;
mod spec;
mod write;

pub use error::Error;
pub use render::{
    CLUSTER_FILE, ManifestFile, Note, README_FILE, Rendered, SECRETS_FILE, VALKEY_FILE,
};
pub use spec::{
    DEFAULT_POSTGRES_IMAGE, DatabaseLayer, PostgresCluster, SecretNames, SecretValues, Secrets,
    Valkey,
};
pub use write::{WriteOptions, WriteReport, WrittenFile};
