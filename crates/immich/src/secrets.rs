//! The deployment's secrets as operations of a [`Layer`]: what each is for and
//! whether it fits its policy (never its value), one value read for the user,
//! and a rotation.

use homelab_secrets::{SecretValue, StoreError, check, near_duplicates, near_duplicates_of};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::progress::Event;
pub use crate::rotate::{Action, Kind, RotateReport};
pub use crate::set::{ConsumerChange, SetReport};
use crate::{lock, rotate, set};

/// One of the deployment's secrets, without its value.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ListedSecret {
    /// Its name in the secret store.
    pub name: String,
    /// What it is for.
    pub kind: Kind,
    /// The configuration key that names it.
    pub key: &'static str,
    /// Whether it exists.
    pub exists: bool,
    /// What its consumer's policy finds wrong with the value.
    pub findings: Vec<String>,
    /// Whether an interrupted rotation left its journal.
    pub pending_rotation: bool,
    /// Other secrets with a name easily taken for it.
    pub near_duplicates: Vec<String>,
    /// Whether Immich itself reads it (the JWT secret: no longer).
    pub used_by_immich: bool,
    /// What to know of it beyond its policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
}

/// Two secrets in the store whose names are easily taken for each other.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct LookAlikes {
    /// One.
    pub first: String,
    /// The other.
    pub second: String,
}

/// The deployment's secrets, and look-alike names in the whole store.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct SecretList {
    /// The deployment's secrets.
    pub secrets: Vec<ListedSecret>,
    /// Look-alike pairs among all the store's secrets.
    pub near_duplicates: Vec<LookAlikes>,
}

impl Layer {
    /// The deployment's secrets: whether each exists, what its policy finds,
    /// look-alike names; never a value.
    pub async fn secrets(&self) -> Result<SecretList> {
        let all = self
            .secrets
            .list()
            .await
            .map_err(|e| Error::precondition(format!("cannot list the Podman secrets: {e}")))?;
        let mut secrets = Vec::new();
        for (name, kind) in rotate::deployment_secrets(self) {
            let (exists, findings) = match self.secrets.read(&name).await {
                Ok(value) => (
                    true,
                    check(&value, &kind.policy())
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                ),
                Err(StoreError::NotFound { .. }) => (false, Vec::new()),
                Err(e) => {
                    return Err(Error::precondition(format!(
                        "cannot read the secret {name}: {e}"
                    )));
                }
            };
            secrets.push(ListedSecret {
                used_by_immich: kind != Kind::JwtSecret,
                note: kind.note(),
                pending_rotation: all.contains(&rotate::pending_name(&name)),
                near_duplicates: near_duplicates_of(&name, &all),
                kind,
                key: kind.key(),
                exists,
                findings,
                name,
            });
        }
        let near_duplicates = near_duplicates(&all)
            .into_iter()
            .map(|pair| LookAlikes {
                first: pair.first,
                second: pair.second,
            })
            .collect();
        Ok(SecretList {
            secrets,
            near_duplicates,
        })
    }

    /// What one of the deployment's secrets is for; a name that is not one of
    /// them is bad input, and the error lists the names it has.
    pub fn secret_kind(&self, name: &str) -> Result<Kind> {
        rotate::kind_of(self, name)
    }

    /// The value of one of the deployment's secrets, for a user to copy (into a
    /// password manager, say). The caller decides where it may go.
    pub async fn secret_value(&self, name: &str) -> Result<SecretValue> {
        rotate::kind_of(self, name)?;
        self.secrets.read(name).await.map_err(|e| match e {
            StoreError::NotFound { .. } => {
                Error::precondition(format!("the secret {name} does not exist"))
                    .help("`immich-db deploy` creates it")
            }
            other => Error::precondition(format!("cannot read the secret {name}: {other}")),
        })
    }

    /// Sets a secret to `value` (one a user kept, say) and gives it to its
    /// consumer, so that verify passes: PostgreSQL's role gets it as its
    /// password where the database does not accept it yet (through a server
    /// started on the data directory for this when the deployment's does not
    /// run), and a running Valkey is restarted with it. A secret that does
    /// not open its database is never stored. A value the consumer cannot take
    /// (empty, whitespace or control characters) is bad input.
    pub async fn set_secret(&self, name: &str, value: &SecretValue) -> Result<SetReport> {
        rotate::kind_of(self, name)?;
        let _lock = lock::acquire(&lock::lock_path(
            &self.deployment,
            self.runtime_dir.as_deref(),
        ))?;
        self.tell(Event::Phase(&format!("setting {name}")));
        let report = set::set(self, name, value).await?;
        for warning in &report.warnings {
            self.tell(Event::Warning(warning));
        }
        Ok(report)
    }

    /// Replaces a secret with a new value and gives it to its consumer
    /// (PostgreSQL, Valkey), so that the two never disagree for good; finishes
    /// or undoes an interrupted rotation first.
    pub async fn rotate_secret(&self, name: &str) -> Result<RotateReport> {
        rotate::kind_of(self, name)?;
        let _lock = lock::acquire(&lock::lock_path(
            &self.deployment,
            self.runtime_dir.as_deref(),
        ))?;
        self.tell(Event::Phase(&format!("rotating {name}")));
        let report = rotate::rotate(self, name).await?;
        for warning in &report.warnings {
            self.tell(Event::Warning(warning));
        }
        Ok(report)
    }
}
