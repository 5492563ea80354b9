//! The error type of this crate.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong rendering the manifests or writing them out.
///
/// Input errors name the field of [`DatabaseLayer`](crate::DatabaseLayer) they
/// come from (`postgres.storage_size`), so that a caller can point at its own
/// configuration key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A name is not valid for the Kubernetes object or PostgreSQL role it names.
    #[error("{field} = {value:?}: {rule}")]
    InvalidName {
        /// The field of the input.
        field: &'static str,
        /// The value given.
        value: String,
        /// The rule it breaks, phrased as what a valid one looks like.
        rule: &'static str,
    },
    /// A storage size is not a Kubernetes quantity of bytes.
    #[error(
        "{field} = {value:?}: not a storage size; write a number with a unit such as 10Gi, 512Mi or 1Ti"
    )]
    InvalidSize {
        /// The field of the input.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// An image reference is empty or contains white space.
    #[error("{field} = {value:?}: not an image reference such as docker.io/valkey/valkey:8")]
    InvalidImage {
        /// The field of the input.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// The number of PostgreSQL instances is zero.
    #[error("postgres.instances = 0: a cluster needs at least one instance")]
    NoInstances,
    /// An `initdb` argument has no CloudNativePG equivalent, or is malformed.
    #[error("postgres.initdb_args: {arg:?}: {reason}")]
    InitdbArgument {
        /// The argument as given.
        arg: String,
        /// What is wrong, and what is accepted.
        reason: String,
    },
    /// A PostgreSQL extension name is not a plain identifier.
    #[error(
        "postgres.extensions: {name:?} is not an extension name (lower-case letters, digits and `_`)"
    )]
    InvalidExtension {
        /// The name given.
        name: String,
    },
    /// A secret's value is needed to include the Secrets, and was not given.
    #[error(
        "the value of secret {secret:?} is needed to include the Secrets: give it, or render without them"
    )]
    MissingSecretValue {
        /// The Secret's name.
        secret: String,
    },
    /// A secret's value cannot go into a Kubernetes Secret as given.
    #[error("secret {secret:?}: {reason}")]
    InvalidSecretValue {
        /// The Secret's name.
        secret: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An object could not be turned into YAML.
    #[error("cannot write {object} as YAML: {source}")]
    Yaml {
        /// The object (`the Valkey Deployment`).
        object: &'static str,
        /// The serializer's error.
        #[source]
        source: serde_saphyr::ser::Error,
    },
    /// The output path exists and is not a directory.
    #[error("{}: not a directory; give a directory to write the manifests into", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// A file in the output directory was not written by this tool.
    #[error(
        "{}: exists and was not written by immich-db; move it away, choose another directory, or allow replacing it",
        path.display()
    )]
    ForeignFile {
        /// The path.
        path: PathBuf,
    },
    /// The output directory could not be created or read.
    #[error("cannot use directory {}: {source}", path.display())]
    Directory {
        /// The path.
        path: PathBuf,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The path.
        path: PathBuf,
        /// The system error.
        #[source]
        source: io::Error,
    },
}
