//! Generate, hold and check the secrets of a homelab service, kept in a
//! Podman-style secret store.
//!
//! - [`SecretValue`] holds a secret's bytes, zeroizes them on drop and prints
//!   as `[redacted]`.
//! - [`Generator`] makes new values from the kernel's CSPRNG with at least 256
//!   bits of entropy, as base64 (what `openssl rand -base64 32` prints) or
//!   alphanumeric (for passwords that end up in connection URLs).
//! - [`SecretStore`] is where named secrets live; `homelab-podman`
//!   implements it for Podman, and [`MemoryStore`] is an in-memory store for
//!   tests.
//! - [`ensure`] creates a missing secret and keeps an existing one, never
//!   regenerating it; [`rotate`] is the explicit replacement.
//! - [`Policy`] says what a consumer needs of a value; [`check`] reports
//!   [`Finding`]s (not alphanumeric, trailing newline, too little entropy)
//!   without revealing the value.
//! - [`validate_name`] checks names, and [`near_duplicates`] finds look-alike
//!   names such as `redis_password` beside `redis-password`.
//!
//! # Example
//!
//! Setting up the three secrets of an Immich database layer, where an
//! earlier attempt left a base64 PostgreSQL password with a trailing newline
//! and a `redis_password`:
//!
//! ```
//! use homelab_secrets::{
//!     Charset, Ensured, Finding, MemoryStore, Policy, SecretValue, ensure, near_duplicates_in,
//! };
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = MemoryStore::with_secrets([
//!     ("postgres-password", SecretValue::new("q2nO0Z6nHq8oVhC3F4mJ7bXyTzR1sWkPd9LuEaGiY+M=\n")),
//!     ("redis_password", SecretValue::new("left over")),
//! ]);
//!
//! // The existing PostgreSQL password is kept (the database was initialised
//! // with it) but reported.
//! let Ensured::Kept { findings } =
//!     ensure(&store, "postgres-password", &Policy::postgres_password()).await?
//! else {
//!     panic!("an existing secret is never replaced");
//! };
//! assert_eq!(findings[0], Finding::TrailingNewline);
//! assert_eq!(findings[1].to_string(),
//!     "the value has 2 character(s) outside A-Za-z0-9 (symbols)");
//!
//! // The missing ones are generated.
//! assert_eq!(ensure(&store, "redis-password", &Policy::valkey_password()).await?, Ensured::Created);
//! assert_eq!(ensure(&store, "immich-jwt-secret", &Policy::signing_key()).await?, Ensured::Created);
//!
//! // And the look-alike is pointed out.
//! let pairs = near_duplicates_in(&store).await?;
//! assert_eq!((pairs[0].first.as_str(), pairs[0].second.as_str()),
//!     ("redis-password", "redis_password"));
//! # Ok::<(), homelab_secrets::Error>(())
//! # }).unwrap();
//! ```

#![deny(missing_docs)]

mod alphabet;
mod ensure;
mod error;
mod finding;
mod generate;
mod memory;
mod name;
mod policy;
mod random;
mod store;
mod value;

pub use alphabet::Alphabet;
pub use ensure::{Ensured, ensure, near_duplicates_in, rotate};
pub use error::{Error, NameProblem, Result};
pub use finding::{CharKind, Charset, Finding};
pub use generate::{Generator, MIN_ENTROPY_BITS};
pub use memory::MemoryStore;
pub use name::{
    MAX_NAME_BYTES, NearDuplicate, near_duplicates, near_duplicates_of, validate_name,
    validate_podman_name,
};
pub use policy::{Policy, check};
pub use store::{SecretStore, StoreError};
pub use value::SecretValue;
