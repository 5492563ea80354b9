//! Podman's secret store as a [`SecretStore`], for both runtimes, so that the
//! secrets crate's logic (ensure, rotate, near-duplicates) works on podman.

use homelab_secrets::{SecretStore, SecretValue, StoreError};

use crate::error::Error;
use crate::fake::FakeRuntime;
use crate::model::SecretOptions;
use crate::podman::Podman;
use crate::runtime::Runtime;

fn store_error(name: Option<&str>, error: Error) -> StoreError {
    match error {
        Error::NotFound { name, .. } => StoreError::NotFound { name },
        Error::AlreadyExists { name, .. } => StoreError::AlreadyExists { name },
        other => StoreError::Backend {
            name: name.map(str::to_owned),
            source: Box::new(other),
        },
    }
}

async fn list(rt: &impl Runtime) -> Result<Vec<String>, StoreError> {
    let secrets = rt.list_secrets().await.map_err(|e| store_error(None, e))?;
    Ok(secrets.into_iter().map(|s| s.name).collect())
}

// Podman looks a secret up by its name, or else by a prefix of its ID: asked for
// a name that no secret has, it may answer with another secret. The store speaks
// of exact names only, so every call that names one secret checks the list first.
async fn exists(rt: &impl Runtime, name: &str) -> Result<bool, StoreError> {
    Ok(list(rt).await?.iter().any(|n| n == name))
}

async fn require(rt: &impl Runtime, name: &str) -> Result<(), StoreError> {
    if exists(rt, name).await? {
        Ok(())
    } else {
        Err(StoreError::NotFound { name: name.into() })
    }
}

async fn read(rt: &impl Runtime, name: &str) -> Result<SecretValue, StoreError> {
    require(rt, name).await?;
    rt.read_secret(name)
        .await
        .map_err(|e| store_error(Some(name), e))
}

async fn create(rt: &impl Runtime, name: &str, value: &SecretValue) -> Result<(), StoreError> {
    rt.create_secret(name, value, &SecretOptions::default())
        .await
        .map(drop)
        .map_err(|e| store_error(Some(name), e))
}

async fn replace(rt: &impl Runtime, name: &str, value: &SecretValue) -> Result<(), StoreError> {
    // Podman's replace creates the secret when it is missing; the store's
    // contract says a missing secret is NotFound and nothing changes.
    require(rt, name).await?;
    let options = SecretOptions {
        replace: true,
        ..SecretOptions::default()
    };
    rt.create_secret(name, value, &options)
        .await
        .map(drop)
        .map_err(|e| store_error(Some(name), e))
}

async fn remove(rt: &impl Runtime, name: &str) -> Result<(), StoreError> {
    require(rt, name).await?;
    rt.remove_secret(name)
        .await
        .map_err(|e| store_error(Some(name), e))
}

macro_rules! secret_store_for {
    ($ty:ty) => {
        #[async_trait::async_trait]
        impl SecretStore for $ty {
            async fn list(&self) -> Result<Vec<String>, StoreError> {
                list(self).await
            }
            async fn exists(&self, name: &str) -> Result<bool, StoreError> {
                exists(self, name).await
            }
            async fn read(&self, name: &str) -> Result<SecretValue, StoreError> {
                read(self, name).await
            }
            async fn create(&self, name: &str, value: &SecretValue) -> Result<(), StoreError> {
                create(self, name, value).await
            }
            async fn replace(&self, name: &str, value: &SecretValue) -> Result<(), StoreError> {
                replace(self, name, value).await
            }
            async fn remove(&self, name: &str) -> Result<(), StoreError> {
                remove(self, name).await
            }
        }
    };
}

secret_store_for!(Podman);
secret_store_for!(FakeRuntime);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_fake_behaves_as_a_store() {
        let fake = FakeRuntime::new();
        let store: &dyn SecretStore = &fake;
        store.create("a", &SecretValue::new("1")).await.unwrap();
        assert!(matches!(
            store.create("a", &SecretValue::new("2")).await,
            Err(StoreError::AlreadyExists { .. })
        ));
        assert_eq!(store.read("a").await.unwrap().expose(), b"1");
        assert!(matches!(
            store.replace("b", &SecretValue::new("2")).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(!store.exists("b").await.unwrap());
        store.replace("a", &SecretValue::new("2")).await.unwrap();
        assert_eq!(store.read("a").await.unwrap().expose(), b"2");
        assert_eq!(store.list().await.unwrap(), ["a"]);
        store.remove("a").await.unwrap();
        assert!(matches!(
            store.remove("a").await,
            Err(StoreError::NotFound { .. })
        ));
        let e = store.create("e", &SecretValue::new("")).await.unwrap_err();
        assert!(
            matches!(&e, StoreError::Backend { name: Some(n), .. } if n == "e"),
            "{e:?}"
        );
        assert!(e.to_string().contains("empty"), "{e}");
    }
}
