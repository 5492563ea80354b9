//! The part of CloudNativePG's `Cluster` (`postgresql.cnpg.io/v1`) that this
//! crate writes.
//!
//! Field names and types follow the `Cluster` CustomResourceDefinition of
//! CloudNativePG 1.30; the tests validate rendered clusters against that
//! schema. Absent options are left out, so CloudNativePG's defaults apply.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// The API group and version of the `Cluster` kind.
pub const API_VERSION: &str = "postgresql.cnpg.io/v1";
/// The kind.
pub const KIND: &str = "Cluster";

/// A PostgreSQL cluster run by CloudNativePG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Cluster {
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// Always [`KIND`].
    pub kind: String,
    /// Name, namespace and labels.
    pub metadata: ObjectMeta,
    /// What the cluster is to be.
    pub spec: ClusterSpec,
}

/// `spec` of a [`Cluster`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ClusterSpec {
    /// Number of instances: one primary, the rest replicas.
    pub instances: i64,
    /// The PostgreSQL image.
    pub image_name: String,
    /// Server configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgresql: Option<PostgresConfiguration>,
    /// How the cluster is created.
    pub bootstrap: Bootstrap,
    /// The instances' data volumes.
    pub storage: Storage,
}

/// `spec.postgresql`: the server's configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PostgresConfiguration {
    /// Libraries loaded when the server starts (the CRD spells this key in
    /// snake case).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared_preload_libraries: Vec<String>,
}

/// `spec.bootstrap`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Bootstrap {
    /// Create a new cluster with `initdb`.
    pub initdb: Initdb,
}

/// `spec.bootstrap.initdb`: a new, empty cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Initdb {
    /// The application's database.
    pub database: String,
    /// The role that owns it.
    pub owner: String,
    /// The Secret with the owner's password, of type
    /// `kubernetes.io/basic-auth` (keys `username` and `password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretReference>,
    /// `initdb --data-checksums`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_checksums: Option<bool>,
    /// `initdb --encoding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// `initdb --locale`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// `initdb --lc-collate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale_collate: Option<String>,
    /// `initdb --lc-ctype`.
    #[serde(
        default,
        rename = "localeCType",
        skip_serializing_if = "Option::is_none"
    )]
    pub locale_ctype: Option<String>,
    /// `initdb --locale-provider`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale_provider: Option<String>,
    /// `initdb --icu-locale`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icu_locale: Option<String>,
    /// `initdb --wal-segsize`, in megabytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_segment_size: Option<i64>,
    /// SQL run as superuser in the application's database once it exists.
    #[serde(
        default,
        rename = "postInitApplicationSQL",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub post_init_application_sql: Vec<String>,
}

/// A Secret in the cluster's namespace, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SecretReference {
    /// The Secret's name.
    pub name: String,
}

impl SecretReference {
    /// The Secret called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

/// `spec.storage`: each instance's data volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Storage {
    /// The volume's size, a Kubernetes quantity (`10Gi`).
    pub size: String,
    /// The StorageClass; absent for the cluster's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
}
