//! Generate, hold and check secrets kept in a Podman-style secret store.

mod memory;
mod store;
mod value;

pub use memory::MemoryStore;
pub use store::{SecretStore, StoreError};
pub use value::SecretValue;
