//! [`SecretStore`]: where named secrets live, and [`StoreError`].

use crate::SecretValue;

/// Where named secrets live.
///
/// `homelab-podman` implements this for Podman's secret store;
/// [`MemoryStore`](crate::MemoryStore) is an in-memory store for tests. The
/// logic in this crate ([`ensure`](crate::ensure), [`rotate`](crate::rotate),
/// [`near_duplicates`](crate::near_duplicates)) is written against this trait
/// only.
///
/// Implementations must store exactly the bytes they are given (no added
/// quoting, no trailing newline) and must never put a value in a process
/// argument, a log line or a file other than the store itself.
#[async_trait::async_trait]
pub trait SecretStore: Send + Sync {
    /// Names of all secrets in the store, in no particular order.
    async fn list(&self) -> Result<Vec<String>, StoreError>;

    /// Whether a secret called exactly `name` exists.
    ///
    /// Only an exact name counts. (`podman secret exists` and `inspect` also
    /// match a prefix of another secret's ID, so they cannot answer this on
    /// their own.)
    async fn exists(&self, name: &str) -> Result<bool, StoreError>;

    /// The value of the secret called `name`; [`StoreError::NotFound`] when
    /// there is none.
    async fn read(&self, name: &str) -> Result<SecretValue, StoreError>;

    /// Creates the secret `name`; [`StoreError::AlreadyExists`] when it is
    /// already there, in which case the existing value is left untouched.
    async fn create(&self, name: &str, value: &SecretValue) -> Result<(), StoreError>;

    /// Replaces the value of the existing secret `name`;
    /// [`StoreError::NotFound`] when there is none.
    async fn replace(&self, name: &str, value: &SecretValue) -> Result<(), StoreError>;

    /// Removes the secret `name`; [`StoreError::NotFound`] when there is none.
    async fn remove(&self, name: &str) -> Result<(), StoreError>;
}

/// Why a [`SecretStore`] operation failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No secret has this name.
    #[error("secret `{name}` does not exist")]
    NotFound {
        /// The name that was looked up.
        name: String,
    },
    /// A secret with this name already exists and was left untouched.
    #[error("secret `{name}` already exists")]
    AlreadyExists {
        /// The name that is taken.
        name: String,
    },
    /// The store itself failed (connection refused, permission denied, an
    /// unexpected reply, ...).
    #[error("secret store failed{}: {source}", name.as_deref().map(|n| format!(" on secret `{n}`")).unwrap_or_default())]
    Backend {
        /// The secret being worked on, when the failure concerns one.
        name: Option<String>,
        /// The underlying error. It must not contain a secret's value.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}
