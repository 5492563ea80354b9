//! Making sure a secret exists ([`ensure`]) and replacing it on purpose
//! ([`rotate`]).

use crate::{
    Error, Finding, NearDuplicate, Policy, SecretStore, SecretValue, StoreError, check,
    near_duplicates, validate_name,
};

/// What [`ensure`] did.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ensured {
    /// The secret was missing and has been created from the policy's
    /// generator.
    Created,
    /// The secret already existed and was left exactly as it was.
    Kept {
        /// What the policy finds wrong with the existing value; empty when
        /// it is acceptable. Fixing it takes an explicit [`rotate`].
        findings: Vec<Finding>,
    },
}

/// Makes sure the secret `name` exists: creates it from the policy's
/// generator when it is missing, and keeps it untouched when it is there.
///
/// An existing secret is never regenerated: a database initialised with the
/// old password would no longer accept the new one. Instead, the existing
/// value is checked against `policy` and the findings are returned for the
/// caller to report; replacing it is a separate, explicit [`rotate`].
///
/// The name must pass [`validate_name`]; a rejected name changes nothing.
/// When someone else creates the secret between the existence check and the
/// creation, their value is kept and checked as if it had been there.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use homelab_secrets::{Ensured, MemoryStore, Policy, SecretStore, ensure};
///
/// let store = MemoryStore::new();
/// let policy = Policy::postgres_password();
/// assert_eq!(ensure(&store, "postgres-password", &policy).await?, Ensured::Created);
/// let first = store.read("postgres-password").await?;
///
/// // A second run keeps the value.
/// assert_eq!(
///     ensure(&store, "postgres-password", &policy).await?,
///     Ensured::Kept { findings: vec![] }
/// );
/// assert_eq!(store.read("postgres-password").await?, first);
/// # Ok::<(), homelab_secrets::Error>(())
/// # }).unwrap();
/// ```
pub async fn ensure<S>(store: &S, name: &str, policy: &Policy) -> Result<Ensured, Error>
where
    S: SecretStore + ?Sized,
{
    validate_name(name)?;
    if store.exists(name).await? {
        return keep(store, name, policy).await;
    }
    let value = policy.generator.generate()?;
    let findings = check(&value, policy);
    if !findings.is_empty() {
        return Err(Error::PolicyContradiction {
            name: name.to_owned(),
            consumer: policy.consumer.clone(),
            findings,
        });
    }
    match store.create(name, &value).await {
        Ok(()) => Ok(Ensured::Created),
        Err(StoreError::AlreadyExists { .. }) => keep(store, name, policy).await,
        Err(error) => Err(error.into()),
    }
}

async fn keep<S>(store: &S, name: &str, policy: &Policy) -> Result<Ensured, Error>
where
    S: SecretStore + ?Sized,
{
    let existing = store.read(name).await?;
    Ok(Ensured::Kept {
        findings: check(&existing, policy),
    })
}

/// Replaces the value of the existing secret `name` with `new_value`, and
/// returns the old value so the caller can undo the change (by rotating
/// back) if the consumer does not take the new one.
///
/// This is the only function here that overwrites a secret. It fails with
/// [`StoreError::NotFound`] (inside [`Error::Store`]) when the secret
/// does not exist; use [`ensure`] to create one. Check the new value with
/// [`check`] first if it does not come from a policy's generator.
///
/// Rotating changes only the stored secret: a consumer that keeps its own
/// copy (PostgreSQL stores the password hash in the database) must be told
/// the new value too, and containers see it only after they restart.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use homelab_secrets::{Generator, MemoryStore, SecretStore, SecretValue, rotate};
///
/// let store = MemoryStore::with_secrets([("api-key", SecretValue::new("old"))]);
/// let new = Generator::BASE64.generate()?;
/// let old = rotate(&store, "api-key", &new).await?;
/// assert_eq!(old.expose(), b"old");
/// assert_eq!(store.read("api-key").await?, new);
/// # Ok::<(), homelab_secrets::Error>(())
/// # }).unwrap();
/// ```
pub async fn rotate<S>(store: &S, name: &str, new_value: &SecretValue) -> Result<SecretValue, Error>
where
    S: SecretStore + ?Sized,
{
    crate::validate_podman_name(name)?;
    let old = store.read(name).await?;
    store.replace(name, new_value).await?;
    Ok(old)
}

/// All pairs of near-duplicate names among the secrets in `store` (see
/// [`near_duplicates`]), such as `redis_password` beside `redis-password`.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use homelab_secrets::{MemoryStore, SecretValue, near_duplicates_in};
///
/// let store = MemoryStore::with_secrets([
///     ("redis_password", SecretValue::new("a")),
///     ("redis-password", SecretValue::new("b")),
/// ]);
/// let pairs = near_duplicates_in(&store).await?;
/// assert_eq!(pairs[0].to_string(),
///     "secrets `redis-password` and `redis_password` differ only in case or in `-`, `_` and `.`");
/// # Ok::<(), homelab_secrets::Error>(())
/// # }).unwrap();
/// ```
pub async fn near_duplicates_in<S>(store: &S) -> Result<Vec<NearDuplicate>, Error>
where
    S: SecretStore + ?Sized,
{
    Ok(near_duplicates(store.list().await?))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::{Charset, Generator, MemoryStore, NameProblem};

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn creates_when_missing_with_the_policy_generator() {
        block_on(async {
            let store = MemoryStore::new();
            let policy = Policy::postgres_password();
            assert_eq!(
                ensure(&store, "postgres-password", &policy).await.unwrap(),
                Ensured::Created
            );
            let value = store.read("postgres-password").await.unwrap();
            assert_eq!(value.len(), 48);
            assert!(value.expose().iter().all(u8::is_ascii_alphanumeric));
            assert_eq!(store.list().await.unwrap(), ["postgres-password"]);
        });
    }

    #[test]
    fn keeps_an_existing_secret_and_reports_findings() {
        block_on(async {
            // The journal's password: base64 with the newline of `openssl rand`.
            let journal = SecretValue::new("q2nO0Z6nHq8oVhC3F4mJ7bXyTzR1sWkPd9LuEaGiY+M=\n");
            let store = MemoryStore::with_secrets([("postgres-password", journal.clone())]);
            let outcome = ensure(&store, "postgres-password", &Policy::postgres_password())
                .await
                .unwrap();
            let Ensured::Kept { findings } = outcome else {
                panic!("an existing secret must be kept, got {outcome:?}");
            };
            assert_eq!(
                findings,
                [
                    Finding::TrailingNewline,
                    Finding::Disallowed {
                        charset: Charset::Alphanumeric,
                        count: 2,
                        kinds: vec![crate::CharKind::Symbol]
                    }
                ]
            );
            assert_eq!(store.read("postgres-password").await.unwrap(), journal);
        });
    }

    #[test]
    fn repeated_ensure_never_changes_the_value() {
        block_on(async {
            let store = MemoryStore::new();
            let policy = Policy::signing_key();
            ensure(&store, "immich-jwt-secret", &policy).await.unwrap();
            let first = store.read("immich-jwt-secret").await.unwrap();
            for _ in 0..10 {
                assert_eq!(
                    ensure(&store, "immich-jwt-secret", &policy).await.unwrap(),
                    Ensured::Kept { findings: vec![] }
                );
            }
            assert_eq!(store.read("immich-jwt-secret").await.unwrap(), first);
        });
    }

    #[test]
    fn invalid_name_changes_nothing() {
        block_on(async {
            let store = MemoryStore::new();
            for (name, expected) in [
                ("", NameProblem::Empty),
                (
                    "a/b",
                    NameProblem::Forbidden {
                        character: '/',
                        offset: 1,
                    },
                ),
                (
                    "my secret",
                    NameProblem::NotPortable {
                        character: ' ',
                        offset: 2,
                    },
                ),
            ] {
                match ensure(&store, name, &Policy::postgres_password()).await {
                    Err(Error::InvalidName { problem, .. }) => assert_eq!(problem, expected),
                    other => panic!("{name:?}: expected InvalidName, got {other:?}"),
                }
            }
            assert!(store.list().await.unwrap().is_empty());
        });
    }

    #[test]
    fn contradictory_policy_stores_nothing() {
        block_on(async {
            let store = MemoryStore::new();
            let mut policy = Policy::postgres_password();
            policy.generator = Generator::BASE64;
            let error = ensure(&store, "postgres-password", &policy)
                .await
                .unwrap_err();
            assert!(
                matches!(error, Error::PolicyContradiction { ref name, .. } if name == "postgres-password"),
                "{error:?}"
            );
            assert!(error.to_string().contains("nothing was stored"), "{error}");
            assert!(!store.exists("postgres-password").await.unwrap());
        });
    }

    /// A store where another writer creates the secret right after
    /// `exists` has answered "no".
    struct Racing {
        inner: MemoryStore,
        theirs: SecretValue,
        creates: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl SecretStore for Racing {
        async fn list(&self) -> Result<Vec<String>, StoreError> {
            self.inner.list().await
        }
        async fn exists(&self, name: &str) -> Result<bool, StoreError> {
            let answer = self.inner.exists(name).await;
            self.inner.create(name, &self.theirs).await?;
            answer
        }
        async fn read(&self, name: &str) -> Result<SecretValue, StoreError> {
            self.inner.read(name).await
        }
        async fn create(&self, name: &str, value: &SecretValue) -> Result<(), StoreError> {
            self.creates.fetch_add(1, Ordering::SeqCst);
            self.inner.create(name, value).await
        }
        async fn replace(&self, _: &str, _: &SecretValue) -> Result<(), StoreError> {
            panic!("ensure must never replace a secret")
        }
        async fn remove(&self, name: &str) -> Result<(), StoreError> {
            self.inner.remove(name).await
        }
    }

    #[test]
    fn a_concurrent_creation_wins_and_is_kept() {
        block_on(async {
            let theirs = Generator::ALPHANUMERIC.generate().unwrap();
            let store = Racing {
                inner: MemoryStore::new(),
                theirs: theirs.clone(),
                creates: AtomicUsize::new(0),
            };
            let outcome = ensure(&store, "postgres-password", &Policy::postgres_password())
                .await
                .unwrap();
            assert_eq!(outcome, Ensured::Kept { findings: vec![] });
            assert_eq!(store.creates.load(Ordering::SeqCst), 1);
            assert_eq!(store.read("postgres-password").await.unwrap(), theirs);
        });
    }

    /// A store that fails every call, to see errors pass through with their
    /// context.
    #[derive(Debug)]
    struct Broken;

    fn broken(name: &str) -> StoreError {
        StoreError::Backend {
            name: Some(name.to_owned()),
            source: "connection refused".into(),
        }
    }

    #[async_trait::async_trait]
    impl SecretStore for Broken {
        async fn list(&self) -> Result<Vec<String>, StoreError> {
            Err(broken("*"))
        }
        async fn exists(&self, name: &str) -> Result<bool, StoreError> {
            Err(broken(name))
        }
        async fn read(&self, name: &str) -> Result<SecretValue, StoreError> {
            Err(broken(name))
        }
        async fn create(&self, name: &str, _: &SecretValue) -> Result<(), StoreError> {
            Err(broken(name))
        }
        async fn replace(&self, name: &str, _: &SecretValue) -> Result<(), StoreError> {
            Err(broken(name))
        }
        async fn remove(&self, name: &str) -> Result<(), StoreError> {
            Err(broken(name))
        }
    }

    #[test]
    fn store_failures_keep_their_context() {
        block_on(async {
            let error = ensure(&Broken, "postgres-password", &Policy::postgres_password())
                .await
                .unwrap_err();
            assert_eq!(
                error.to_string(),
                "secret store failed on secret `postgres-password`: connection refused"
            );
            let error = rotate(&Broken, "x", &SecretValue::new("y"))
                .await
                .unwrap_err();
            assert!(matches!(error, Error::Store(StoreError::Backend { .. })));
        });
    }

    #[test]
    fn rotate_replaces_and_returns_the_old_value() {
        block_on(async {
            let old = Generator::ALPHANUMERIC.generate().unwrap();
            let store = MemoryStore::with_secrets([("postgres-password", old.clone())]);
            let new = Generator::ALPHANUMERIC.generate().unwrap();
            let returned = rotate(&store, "postgres-password", &new).await.unwrap();
            assert_eq!(returned, old);
            assert_eq!(store.read("postgres-password").await.unwrap(), new);
            // Undo.
            rotate(&store, "postgres-password", &returned)
                .await
                .unwrap();
            assert_eq!(store.read("postgres-password").await.unwrap(), old);
        });
    }

    #[test]
    fn rotate_of_a_missing_secret_creates_nothing() {
        block_on(async {
            let store = MemoryStore::new();
            let error = rotate(&store, "missing", &SecretValue::new("v"))
                .await
                .unwrap_err();
            assert!(
                matches!(error, Error::Store(StoreError::NotFound { ref name }) if name == "missing"),
                "{error:?}"
            );
            assert!(store.list().await.unwrap().is_empty());
        });
    }

    #[test]
    fn works_through_a_trait_object() {
        block_on(async {
            let store: Box<dyn SecretStore> = Box::new(MemoryStore::new());
            assert_eq!(
                ensure(store.as_ref(), "a", &Policy::new("a"))
                    .await
                    .unwrap(),
                Ensured::Created
            );
        });
    }
}
