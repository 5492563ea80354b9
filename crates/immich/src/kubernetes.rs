//! The deployment as Kubernetes manifests, for a homelab that moves to a
//! cluster: a CloudNativePG `Cluster`, Valkey with its volume and Service, the
//! Secrets (their values only when asked for, in a file of mode 0600) and a
//! README that says how to apply them and move the data over
//! (homelab-kube renders them).
//!
//! The names, database, role, `initdb` options, Valkey's image and the
//! secrets' names are the Podman deployment's; `[kubernetes]` adds the
//! namespace, CloudNativePG's PostgreSQL image, the instances and the volumes.
//! Without the Secrets' values nothing on the host is asked: no podman, no
//! systemd.
//!
//! ```
//! use homelab_immich::{Access, config, kubernetes};
//!
//! # async fn example() -> homelab_immich::Result<()> {
//! let deployment = config::Loaded::defaults().validate()?;
//! let dir = tempfile::tempdir().unwrap();
//! let options = kubernetes::KubernetesOptions::new(dir.path());
//! let report = kubernetes::render(&deployment, &options, &Access::new()).await?;
//! assert!(!report.secrets_included);
//! assert!(report.files.iter().all(|f| f.mode == "0644"));
//! # Ok(())
//! # }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(example()).unwrap();
//! ```

use std::path::PathBuf;

use homelab_kube::{DatabaseLayer, SecretValues, Secrets, WriteOptions};
use homelab_secrets::{SecretStore, SecretValue, StoreError};
use serde::Serialize;

use crate::config::Deployment;
use crate::config::kubernetes::key_of;
use crate::error::{Error, Result};
use crate::layer::Access;

/// What to render, and where.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KubernetesOptions {
    /// The directory to write the manifests into (created when missing).
    pub output: PathBuf,
    /// Whether the Secrets' values are written too (read from the Podman
    /// secret store, into a file of mode 0600).
    pub include_secrets: bool,
}

impl KubernetesOptions {
    /// The manifests without the Secrets' values, into `output`.
    pub fn new(output: impl Into<PathBuf>) -> Self {
        Self {
            output: output.into(),
            include_secrets: false,
        }
    }

    /// With the Secrets' values, or without.
    #[must_use]
    pub fn include_secrets(mut self, include: bool) -> Self {
        self.include_secrets = include;
        self
    }
}

/// One file written.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ManifestWritten {
    /// Where.
    pub path: PathBuf,
    /// Its permission bits, in octal (`0600` for the Secrets with their
    /// values, `0644` for the others).
    pub mode: String,
    /// Whether it holds secret values.
    pub holds_secrets: bool,
}

/// The manifests written.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct KubernetesRendered {
    /// The directory.
    pub directory: PathBuf,
    /// The namespace of the objects.
    pub namespace: String,
    /// The CloudNativePG `Cluster`'s name (Immich connects to `NAME-rw`).
    pub cluster: String,
    /// Valkey's Deployment and Service.
    pub valkey: String,
    /// The files, in the order to apply them; the README last.
    pub files: Vec<ManifestWritten>,
    /// Whether the Secrets' values were written (into a file of mode 0600).
    pub secrets_included: bool,
    /// Files an earlier render wrote and this one did not (the Secrets with
    /// their values, say), left as they were.
    pub left_in_place: Vec<PathBuf>,
    /// What the user should know about the manifests.
    pub notes: Vec<String>,
}

/// The deployment as homelab-kube's layer. Names that Kubernetes or
/// CloudNativePG cannot take are found when rendering, and named by their
/// configuration key.
pub fn database_layer(d: &Deployment) -> DatabaseLayer {
    let c = &d.config;
    let mut layer = DatabaseLayer::default();
    layer.postgres.name.clone_from(&c.postgres.container_name);
    layer.postgres.database.clone_from(&c.postgres.database);
    layer.postgres.owner.clone_from(&c.postgres.user);
    layer
        .postgres
        .initdb_args
        .clone_from(&c.postgres.initdb_args);
    layer.valkey.name.clone_from(&c.valkey.container_name);
    layer.valkey.image.clone_from(&c.valkey.image);
    layer.valkey.require_password = c.valkey.require_password;
    layer
        .secrets
        .postgres_password
        .clone_from(&c.postgres.password_secret);
    layer
        .secrets
        .redis_password
        .clone_from(&c.valkey.password_secret);
    layer
        .secrets
        .immich_jwt_secret
        .clone_from(&c.immich.jwt_secret);
    c.kubernetes.apply(&mut layer);
    layer
}

/// Renders the manifests into `options.output`. The Secrets' values, when
/// included, are read from the Podman secret store (reached through
/// `access`); otherwise nothing on the host is asked.
pub async fn render(
    d: &Deployment,
    options: &KubernetesOptions,
    access: &Access,
) -> Result<KubernetesRendered> {
    if options.include_secrets {
        let podman = access.connect_podman().await?;
        render_from(d, options, &podman).await
    } else {
        write(d, options, None)
    }
}

/// [`render`], with the Secrets' values (when included) read from `store`.
pub async fn render_from(
    d: &Deployment,
    options: &KubernetesOptions,
    store: &dyn SecretStore,
) -> Result<KubernetesRendered> {
    if !options.include_secrets {
        return write(d, options, None);
    }
    // The names are checked before any value is read.
    database_layer(d).validate().map_err(|e| layer_error(&e))?;
    let c = &d.config;
    let postgres = read(
        store,
        &c.postgres.password_secret,
        "[postgres] password_secret",
    )
    .await?;
    let jwt = read(store, &c.immich.jwt_secret, "[immich] jwt_secret").await?;
    let mut values = SecretValues::new(postgres, jwt);
    if c.valkey.require_password {
        let redis = read(store, &c.valkey.password_secret, "[valkey] password_secret").await?;
        values = values.with_redis_password(redis);
    }
    write(d, options, Some(&values))
}

async fn read(store: &dyn SecretStore, name: &str, key: &str) -> Result<SecretValue> {
    store.read(name).await.map_err(|e| match e {
        StoreError::NotFound { .. } => Error::precondition(format!(
            "the secret {name} ({key}) does not exist in Podman's secret store, so its value cannot be included"
        ))
        .help("deploy first (`immich-db deploy` creates it), or render without --include-secrets; nothing was written"),
        other => Error::precondition(format!("cannot read the secret {name}: {other}"))
            .help("nothing was written"),
    })
}

fn write(
    d: &Deployment,
    options: &KubernetesOptions,
    values: Option<&SecretValues>,
) -> Result<KubernetesRendered> {
    let layer = database_layer(d);
    let secrets = values.map_or(Secrets::Referenced, Secrets::Included);
    let rendered = layer.render(secrets).map_err(|e| layer_error(&e))?;
    let report = rendered
        .write_to(&options.output, &WriteOptions::new())
        .map_err(|e| layer_error(&e))?;
    let mut notes: Vec<String> = rendered.notes().iter().map(ToString::to_string).collect();
    if let Some(note) = older_postgres(d) {
        notes.push(note);
    }
    Ok(KubernetesRendered {
        directory: options.output.clone(),
        namespace: layer.namespace.clone(),
        cluster: layer.postgres.name.clone(),
        valkey: layer.valkey.name.clone(),
        files: report
            .written
            .iter()
            .map(|f| ManifestWritten {
                path: f.path.clone(),
                mode: format!("{:04o}", f.mode),
                holds_secrets: f.holds_secrets,
            })
            .collect(),
        secrets_included: values.is_some(),
        left_in_place: report.left_in_place,
        notes,
    })
}

/// The major version at the start of an image's tag (`…:16.9-0.4.3` is 16),
/// where the tag starts with one.
fn tag_major(image: &str) -> Option<u32> {
    let name = image.rsplit('/').next()?;
    let tag = name.split_once(':')?.1;
    let tag = tag.split('@').next()?;
    let digits: String = tag.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A note when the tags say that CloudNativePG's PostgreSQL is older than the
/// Podman deployment's: a backup from here would not load into it.
fn older_postgres(d: &Deployment) -> Option<String> {
    let here = &d.config.postgres.image;
    let there = &d.config.kubernetes.postgres_image;
    let (from, to) = (tag_major(here)?, tag_major(there)?);
    (to < from).then(|| {
        format!(
            "the cluster's PostgreSQL image {there} ([kubernetes] postgres_image) is PostgreSQL {to}, older than this host's {from} ({here}): a backup from here will not load into it; choose an image of PostgreSQL {from} or newer"
        )
    })
}

/// homelab-kube's error as this library's, with the configuration key.
fn layer_error(e: &homelab_kube::Error) -> Error {
    use homelab_kube::Error as K;
    let field = match e {
        K::InvalidName { field, .. }
        | K::InvalidSize { field, .. }
        | K::InvalidImage { field, .. } => *field,
        K::NoInstances => "postgres.instances",
        K::InitdbArgument { .. } => "postgres.initdb_args",
        K::ForeignFile { path } | K::NotADirectory { path } => {
            let what = match e {
                K::ForeignFile { .. } => "exists and was not written by immich-db",
                _ => "is not a directory",
            };
            return Error::bad_input(format!("{}: {what}", path.display()))
                .at("--output")
                .help(
                    "move it away, or choose another directory with --output; nothing was written",
                );
        }
        K::MissingSecretValue { secret } | K::InvalidSecretValue { secret, .. } => {
            return Error::precondition(e.to_string())
                .at(format!("the secret {secret}"))
                .help("render without --include-secrets and create the Secret by hand (the README says how); nothing was written");
        }
        _ => {
            return Error::failed(e.to_string())
                .help("check the output directory and its permissions");
        }
    };
    let (key, help) = match field {
        "postgres.name" => (
            "[postgres] container_name",
            "CloudNativePG names the cluster after it: 1 to 50 lower-case letters, digits and `-`, starting with a letter",
        ),
        "postgres.database" => (
            "[postgres] database",
            "Kubernetes needs lower-case letters, digits and `_` here",
        ),
        "postgres.owner" => (
            "[postgres] user",
            "Kubernetes needs lower-case letters, digits and `_` here",
        ),
        "postgres.initdb_args" => (
            "[postgres] initdb_args",
            "CloudNativePG takes only the initdb options it has fields for",
        ),
        "valkey.name" => (
            "[valkey] container_name",
            "the Deployment and Service are named after it: lower-case letters, digits and `-`, starting with a letter",
        ),
        "valkey.image" => ("[valkey] image", "give an image reference"),
        "secrets.postgres_password" => (
            "[postgres] password_secret",
            "a Kubernetes Secret's name is lower-case letters, digits, `-` and `.`",
        ),
        "secrets.redis_password" => (
            "[valkey] password_secret",
            "a Kubernetes Secret's name is lower-case letters, digits, `-` and `.`",
        ),
        "secrets.immich_jwt_secret" => (
            "[immich] jwt_secret",
            "a Kubernetes Secret's name is lower-case letters, digits, `-` and `.`",
        ),
        other => match key_of(other) {
            Some((key, help)) => {
                return Error::bad_input(format!("[kubernetes] {key}: {e}"))
                    .at(format!("[kubernetes] {key}"))
                    .help(help);
            }
            None => ("the configuration", "change the configuration"),
        },
    };
    Error::bad_input(format!("{key} cannot be used on Kubernetes: {e}"))
        .at(key)
        .help(format!(
            "{help}; change it, or render with another configuration; nothing was written"
        ))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use base64::Engine as _;
    use homelab_secrets::MemoryStore;

    use super::*;
    use crate::backup::tests::block_on;
    use crate::config::{Origin, parse};

    fn deployment(text: &str) -> Deployment {
        parse(text, Origin::Defaults).unwrap().validate().unwrap()
    }

    const CANARIES: [&str; 3] = ["pgCanary7Qx", "redisCanary4Lm", "jwtCanary2Wd"];

    fn store(d: &Deployment) -> MemoryStore {
        let store = MemoryStore::new();
        let c = &d.config;
        block_on(async {
            for (name, value) in [
                (&c.postgres.password_secret, CANARIES[0]),
                (&c.valkey.password_secret, CANARIES[1]),
                (&c.immich.jwt_secret, CANARIES[2]),
            ] {
                store.create(name, &SecretValue::new(value)).await.unwrap();
            }
        });
        store
    }

    fn all_text(dir: &std::path::Path) -> String {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect()
    }

    #[test]
    fn the_configuration_becomes_the_layer() {
        let d = deployment(
            "[postgres]\ncontainer_name = \"pg\"\nuser = \"photos\"\n[valkey]\nrequire_password = false\n\
             [kubernetes]\nnamespace = \"media\"\npostgres_storage = \"30Gi\"\nstorage_class = \"fast\"\n",
        );
        let layer = database_layer(&d);
        assert_eq!(layer.namespace, "media");
        assert_eq!(layer.postgres.name, "pg");
        assert_eq!(layer.postgres.owner, "photos");
        assert_eq!(layer.postgres.storage_size, "30Gi");
        assert_eq!(layer.valkey.storage_class.as_deref(), Some("fast"));
        assert!(!layer.valkey.require_password);
        assert_eq!(layer.postgres.image, homelab_kube::DEFAULT_POSTGRES_IMAGE);
    }

    #[test]
    fn without_secrets_no_value_is_read_or_written() {
        let d = deployment("");
        let dir = tempfile::tempdir().unwrap();
        // A store that holds the values: they must not be read, nor written.
        let report = block_on(render_from(
            &d,
            &KubernetesOptions::new(dir.path()),
            &store(&d),
        ))
        .unwrap();
        assert!(!report.secrets_included);
        assert_eq!(report.files.len(), 3);
        let text = all_text(dir.path());
        for canary in CANARIES {
            assert!(!text.contains(canary));
        }
        assert!(text.contains("kind: Cluster"));
    }

    #[test]
    fn with_secrets_the_values_are_in_one_file_of_mode_0600() {
        let d = deployment("");
        let dir = tempfile::tempdir().unwrap();
        let options = KubernetesOptions::new(dir.path()).include_secrets(true);
        let report = block_on(render_from(&d, &options, &store(&d))).unwrap();
        assert!(report.secrets_included);
        let secrets: Vec<_> = report.files.iter().filter(|f| f.holds_secrets).collect();
        assert_eq!(secrets.len(), 1);
        assert_eq!(secrets[0].mode, "0600");
        let mode = std::fs::metadata(&secrets[0].path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(&secrets[0].path).unwrap();
        for canary in CANARIES {
            let encoded = base64::engine::general_purpose::STANDARD.encode(canary);
            assert!(text.contains(&encoded), "{canary} is not in the Secrets");
        }
        assert!(report.notes.iter().any(|n| n.contains("0600")));
    }

    #[test]
    fn a_missing_secret_is_a_precondition_and_nothing_is_written() {
        let d = deployment("");
        let dir = tempfile::tempdir().unwrap();
        let options = KubernetesOptions::new(dir.path().join("out")).include_secrets(true);
        let err = block_on(render_from(&d, &options, &MemoryStore::new())).unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::Precondition, "{err}");
        assert!(err.what.contains("postgres-password"), "{err}");
        assert!(!dir.path().join("out").exists());
    }

    #[test]
    fn names_kubernetes_refuses_are_named_by_their_key() {
        let d = deployment("[postgres]\ncontainer_name = \"PG_immich\"\n");
        let dir = tempfile::tempdir().unwrap();
        let err = block_on(render_from(
            &d,
            &KubernetesOptions::new(dir.path().join("out")),
            &MemoryStore::new(),
        ))
        .unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::BadInput, "{err}");
        assert_eq!(err.location.as_deref(), Some("[postgres] container_name"));
        assert!(err.what.contains("PG_immich"), "{err}");
        assert!(!dir.path().join("out").exists());

        let d = deployment("[postgres]\ninitdb_args = \"--auth=trust\"\n");
        let err = write(&d, &KubernetesOptions::new(dir.path()), None).unwrap_err();
        assert_eq!(err.location.as_deref(), Some("[postgres] initdb_args"));
    }

    #[test]
    fn a_file_immich_db_did_not_write_is_refused() {
        let d = deployment("");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("README.md"), "mine\n").unwrap();
        let err = write(&d, &KubernetesOptions::new(dir.path()), None).unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::BadInput);
        assert_eq!(err.location.as_deref(), Some("--output"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("README.md")).unwrap(),
            "mine\n"
        );
    }

    #[test]
    fn an_older_cluster_postgres_is_noted() {
        assert_eq!(
            tag_major("ghcr.io/immich-app/postgres:14-vectorchord0.4.3"),
            Some(14)
        );
        assert_eq!(
            tag_major("ghcr.io/tensorchord/cloudnative-vectorchord:16.9-0.4.3"),
            Some(16)
        );
        assert_eq!(tag_major("localhost:5000/postgres"), None);
        assert_eq!(tag_major("localhost/postgres:latest"), None);
        let d = deployment("[postgres]\nimage = \"docker.io/library/postgres:17\"\n");
        let note = older_postgres(&d).unwrap();
        assert!(
            note.contains("PostgreSQL 16, older than this host's 17"),
            "{note}"
        );
        assert!(older_postgres(&deployment("")).is_none());
    }
}
