//! [`MemoryStore`]: a [`SecretStore`] held in memory, for tests.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use crate::{SecretStore, SecretValue, StoreError};

/// A [`SecretStore`] kept in process memory.
///
/// It behaves like a real store (the same errors for missing and existing
/// names) so that code written against [`SecretStore`] can be tested fast,
/// beside tests against the real store. Values are zeroized when removed,
/// replaced, or when the store is dropped.
///
/// ```
/// # tokio_test_block_on(async {
/// use homelab_secrets::{MemoryStore, SecretStore, SecretValue, StoreError};
///
/// let store = MemoryStore::new();
/// store.create("db-password", &SecretValue::new("s3cret")).await?;
/// assert_eq!(store.read("db-password").await?.expose(), b"s3cret");
/// assert!(matches!(
///     store.create("db-password", &SecretValue::new("other")).await,
///     Err(StoreError::AlreadyExists { .. })
/// ));
/// # Ok::<(), StoreError>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    secrets: Mutex<BTreeMap<String, SecretValue>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding the given secrets, for setting up a test.
    pub fn with_secrets<N, I>(secrets: I) -> Self
    where
        N: Into<String>,
        I: IntoIterator<Item = (N, SecretValue)>,
    {
        Self {
            secrets: Mutex::new(
                secrets
                    .into_iter()
                    .map(|(name, value)| (name.into(), value))
                    .collect(),
            ),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, SecretValue>> {
        // A panic while holding the lock cannot leave the map half-updated
        // (every change is a single insert or remove), so a poisoned lock is
        // still safe to use.
        self.secrets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl SecretStore for MemoryStore {
    async fn list(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.lock().keys().cloned().collect())
    }

    async fn exists(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.lock().contains_key(name))
    }

    async fn read(&self, name: &str) -> Result<SecretValue, StoreError> {
        self.lock()
            .get(name)
            .cloned()
            .ok_or_else(|| StoreError::NotFound { name: name.into() })
    }

    async fn create(&self, name: &str, value: &SecretValue) -> Result<(), StoreError> {
        let mut secrets = self.lock();
        if secrets.contains_key(name) {
            return Err(StoreError::AlreadyExists { name: name.into() });
        }
        secrets.insert(name.into(), value.clone());
        Ok(())
    }

    async fn replace(&self, name: &str, value: &SecretValue) -> Result<(), StoreError> {
        match self.lock().get_mut(name) {
            Some(stored) => {
                *stored = value.clone();
                Ok(())
            }
            None => Err(StoreError::NotFound { name: name.into() }),
        }
    }

    async fn remove(&self, name: &str) -> Result<(), StoreError> {
        match self.lock().remove(name) {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound { name: name.into() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn behaves_like_a_store() {
        block_on(async {
            let store = MemoryStore::new();
            assert!(store.list().await.unwrap().is_empty());
            assert!(!store.exists("a").await.unwrap());
            assert!(matches!(
                store.read("a").await,
                Err(StoreError::NotFound { name }) if name == "a"
            ));
            assert!(matches!(
                store.replace("a", &SecretValue::new("x")).await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(matches!(
                store.remove("a").await,
                Err(StoreError::NotFound { .. })
            ));

            store.create("a", &SecretValue::new("one")).await.unwrap();
            assert!(store.exists("a").await.unwrap());
            assert!(!store.exists("A").await.unwrap());
            assert!(matches!(
                store.create("a", &SecretValue::new("two")).await,
                Err(StoreError::AlreadyExists { name }) if name == "a"
            ));
            assert_eq!(store.read("a").await.unwrap().expose(), b"one");

            store
                .replace("a", &SecretValue::new("three"))
                .await
                .unwrap();
            assert_eq!(store.read("a").await.unwrap().expose(), b"three");

            store.create("b", &SecretValue::new("")).await.unwrap();
            assert_eq!(store.list().await.unwrap(), ["a", "b"]);
            store.remove("a").await.unwrap();
            assert_eq!(store.list().await.unwrap(), ["b"]);
        });
    }

    #[test]
    fn stores_exact_bytes() {
        block_on(async {
            let bytes: Vec<u8> = (0..=255).collect();
            let store = MemoryStore::new();
            store
                .create("all-bytes", &SecretValue::new(bytes.clone()))
                .await
                .unwrap();
            assert_eq!(store.read("all-bytes").await.unwrap().expose(), &bytes[..]);
        });
    }

    #[test]
    fn debug_does_not_show_values() {
        let store = MemoryStore::with_secrets([("a", SecretValue::new("hunter2"))]);
        let debug = format!("{store:?}");
        assert!(debug.contains("\"a\""), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
