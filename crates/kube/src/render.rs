//! Turning a [`DatabaseLayer`] into manifest files.

use std::fmt;

use serde::Serialize;
use zeroize::{Zeroize, Zeroizing};

use crate::error::Error;
use crate::objects;
use crate::readme;
use crate::spec::{DatabaseLayer, Secrets};

/// The words every file this crate writes carries on its first line; a file
/// without them is not replaced unless the caller says so.
pub(crate) const MARK: &str = "Written by immich-db";

/// The first line of every YAML file.
const YAML_HEADER: &str = "# Written by immich-db from its configuration (`immich-db render --kubernetes`): change that and render again.\n";

/// The Secrets with their values; written only when they are included.
pub const SECRETS_FILE: &str = "01-secrets.yaml";
/// The CloudNativePG `Cluster`.
pub const CLUSTER_FILE: &str = "02-postgres-cluster.yaml";
/// Valkey's volume claim, Deployment and Service.
pub const VALKEY_FILE: &str = "03-valkey.yaml";
/// How to apply the files, create the Secrets, point Immich at the layer and
/// move the data over.
pub const README_FILE: &str = "README.md";

/// One rendered file.
///
/// Its [`Debug`](fmt::Debug) output shows the name and size, never the
/// content, which may hold secret values; the content is wiped from memory
/// when the file is dropped.
pub struct ManifestFile {
    name: &'static str,
    content: Zeroizing<String>,
    holds_secrets: bool,
}

impl ManifestFile {
    /// The file's name in the output directory.
    pub fn name(&self) -> &str {
        self.name
    }

    /// The file's text.
    pub fn content(&self) -> &str {
        &self.content
    }

    /// Whether the text holds secret values (then it is written with mode
    /// 0600).
    pub fn holds_secrets(&self) -> bool {
        self.holds_secrets
    }

    /// The permission bits it is written with: 0600 for a file with secret
    /// values, 0644 for the others.
    pub fn mode(&self) -> u32 {
        if self.holds_secrets { 0o600 } else { 0o644 }
    }
}

impl fmt::Debug for ManifestFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManifestFile")
            .field("name", &self.name)
            .field("bytes", &self.content.len())
            .field("holds_secrets", &self.holds_secrets)
            .finish()
    }
}

/// Something the caller should tell the user about the rendered manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Note {
    /// The PostgreSQL image is Immich's image for Docker and Podman, which
    /// CloudNativePG cannot run.
    PodmanPostgresImage {
        /// The image.
        image: String,
    },
    /// Valkey accepts clients without a password.
    ValkeyWithoutPassword,
    /// The Secrets' values are in [`SECRETS_FILE`].
    SecretsIncluded,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PodmanPostgresImage { image } => write!(
                f,
                "{image} is Immich's image for Docker and Podman; CloudNativePG needs an image built for it, such as {}",
                crate::DEFAULT_POSTGRES_IMAGE
            ),
            Self::ValkeyWithoutPassword => f.write_str(
                "Valkey takes clients without a password: anything that reaches its Service can use it",
            ),
            Self::SecretsIncluded => write!(
                f,
                "{SECRETS_FILE} holds the passwords (mode 0600): keep it out of version control and delete it once applied"
            ),
        }
    }
}

/// The rendered manifests: the files, in the order to apply them, and notes
/// for the user.
#[derive(Debug)]
pub struct Rendered {
    pub(crate) files: Vec<ManifestFile>,
    notes: Vec<Note>,
}

impl Rendered {
    /// The files, in the order to apply them; the README last.
    pub fn files(&self) -> &[ManifestFile] {
        &self.files
    }

    /// The file called `name`, if it was rendered.
    pub fn file(&self, name: &str) -> Option<&ManifestFile> {
        self.files.iter().find(|f| f.name == name)
    }

    /// What the user should be told.
    pub fn notes(&self) -> &[Note] {
        &self.notes
    }
}

/// The YAML of several objects, one document each, under the header line.
struct Documents(Zeroizing<String>);

impl Documents {
    fn new() -> Self {
        Self(Zeroizing::new(YAML_HEADER.to_owned()))
    }

    fn push(&mut self, object: &'static str, value: &impl Serialize) -> Result<(), Error> {
        let yaml = Zeroizing::new(
            serde_saphyr::to_string(value).map_err(|source| Error::Yaml { object, source })?,
        );
        self.0.push_str("---\n");
        self.0.push_str(&yaml);
        if !yaml.ends_with('\n') {
            self.0.push('\n');
        }
        Ok(())
    }
}

impl DatabaseLayer {
    /// Renders the manifests: the CloudNativePG `Cluster`, Valkey's volume
    /// claim, Deployment and Service, the README, and with
    /// [`Secrets::Included`] the Secrets with their values.
    ///
    /// Nothing is written; see [`Rendered::write_to`].
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::InvalidSize`], [`Error::InvalidImage`],
    /// [`Error::NoInstances`], [`Error::InitdbArgument`] or
    /// [`Error::InvalidExtension`] for a field that cannot be rendered;
    /// [`Error::MissingSecretValue`] or [`Error::InvalidSecretValue`] for
    /// included Secrets without a usable value.
    pub fn render(&self, secrets: Secrets<'_>) -> Result<Rendered, Error> {
        self.validate()?;
        let mut files = Vec::new();
        let mut notes = Vec::new();

        if let Secrets::Included(values) = secrets {
            let mut objects = objects::secrets(self, values)?;
            let mut docs = Documents::new();
            let written = objects
                .iter()
                .try_for_each(|secret| docs.push("a Secret", secret));
            // The values' copies in the typed objects are wiped like the others.
            for secret in &mut objects {
                if let Some(data) = &mut secret.data {
                    for value in data.values_mut() {
                        value.0.zeroize();
                    }
                }
            }
            written?;
            files.push(ManifestFile {
                name: SECRETS_FILE,
                content: docs.0,
                holds_secrets: true,
            });
            notes.push(Note::SecretsIncluded);
        }

        let mut cluster = Documents::new();
        cluster.push("the CloudNativePG Cluster", &objects::cluster(self)?)?;
        files.push(ManifestFile {
            name: CLUSTER_FILE,
            content: cluster.0,
            holds_secrets: false,
        });

        let mut valkey = Documents::new();
        valkey.push(
            "Valkey's PersistentVolumeClaim",
            &objects::valkey_claim(self),
        )?;
        valkey.push("Valkey's Deployment", &objects::valkey_deployment(self))?;
        valkey.push("Valkey's Service", &objects::valkey_service(self))?;
        files.push(ManifestFile {
            name: VALKEY_FILE,
            content: valkey.0,
            holds_secrets: false,
        });

        if self.postgres.image.contains("immich-app/postgres") {
            notes.push(Note::PodmanPostgresImage {
                image: self.postgres.image.clone(),
            });
        }
        if !self.valkey.require_password {
            notes.push(Note::ValkeyWithoutPassword);
        }
        let included = matches!(secrets, Secrets::Included(_));
        files.push(ManifestFile {
            name: README_FILE,
            content: Zeroizing::new(readme::text(self, included, &notes)),
            holds_secrets: false,
        });
        Ok(Rendered { files, notes })
    }
}
