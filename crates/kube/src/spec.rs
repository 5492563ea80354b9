//! What to render: the database layer as the caller's configuration describes it.

use homelab_secrets::SecretValue;

use crate::error::Error;

/// The database layer of Immich on a Kubernetes cluster: a CloudNativePG
/// `Cluster` for PostgreSQL, Valkey with its volume and Service, and the Secrets
/// they read their passwords from.
///
/// [`DatabaseLayer::default`] is immich-db's default configuration; set the
/// fields that the configuration changes. Every name is checked when rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DatabaseLayer {
    /// The namespace every object goes into, and where Immich runs
    /// (default `immich`).
    pub namespace: String,
    /// PostgreSQL, run by CloudNativePG.
    pub postgres: PostgresCluster,
    /// Valkey, the Redis-compatible queue and cache.
    pub valkey: Valkey,
    /// The names of the Secrets.
    pub secrets: SecretNames,
}

/// PostgreSQL as a CloudNativePG `Cluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PostgresCluster {
    /// The `Cluster`'s name (default `postgresql-immich`). CloudNativePG names its
    /// Services after it: Immich connects to `NAME-rw`.
    pub name: String,
    /// The PostgreSQL image (default [`DEFAULT_POSTGRES_IMAGE`]). CloudNativePG
    /// runs only images built for it, with PostgreSQL's version as the tag's
    /// first part, and Immich needs VectorChord in it.
    pub image: String,
    /// The database Immich uses (default `immich`).
    pub database: String,
    /// The role that owns it, Immich's user (default `immich`).
    pub owner: String,
    /// The arguments given to `initdb` on the Podman host
    /// (`POSTGRES_INITDB_ARGS`, default `--data-checksums`), turned into
    /// CloudNativePG's fields. Accepted: `--data-checksums` (`-k`),
    /// `--encoding` (`-E`), `--locale`, `--lc-collate`, `--lc-ctype`,
    /// `--locale-provider`, `--icu-locale` and `--wal-segsize`.
    pub initdb_args: String,
    /// The size of each instance's data volume (default `10Gi`).
    pub storage_size: String,
    /// The StorageClass of the data volumes; `None` takes the cluster's default.
    pub storage_class: Option<String>,
    /// How many instances: one primary, the rest replicas (default 1).
    pub instances: u32,
    /// Extensions created in the database when the cluster is first set up,
    /// with those they need (default `vchord`, which brings `vector`, and
    /// `earthdistance`, which brings `cube`).
    pub extensions: Vec<String>,
    /// Libraries the server loads at start (default `vchord.so`, which
    /// VectorChord needs).
    pub shared_preload_libraries: Vec<String>,
}

/// Valkey as a Deployment with a PersistentVolumeClaim and a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Valkey {
    /// The name of the Deployment, its Service and (with `-data`) its volume
    /// claim (default `redis-immich`). Immich connects to the Service.
    pub name: String,
    /// The image (default `docker.io/valkey/valkey:8`).
    pub image: String,
    /// The size of the data volume (default `1Gi`).
    pub storage_size: String,
    /// The StorageClass of the data volume; `None` takes the cluster's default.
    pub storage_class: Option<String>,
    /// Whether clients must give the password (default `true`).
    pub require_password: bool,
    /// The user and group Valkey runs as (default 999, the `valkey` user of
    /// the official image).
    pub run_as: u32,
}

/// The names of the Secrets, as the Podman secrets on the host are named.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecretNames {
    /// PostgreSQL's password for [`PostgresCluster::owner`] (default
    /// `postgres-password`). Of type `kubernetes.io/basic-auth`, with keys
    /// `username` and `password`, as CloudNativePG requires.
    pub postgres_password: String,
    /// Valkey's password (default `redis-password`), key `password`.
    pub redis_password: String,
    /// Immich's session signing key (default `immich-jwt-secret`), key
    /// `secret`.
    pub immich_jwt_secret: String,
}

/// The values of the Secrets, for a render that includes them.
///
/// ```
/// use homelab_kube::SecretValues;
/// use homelab_secrets::SecretValue;
///
/// let values = SecretValues::new(SecretValue::new("pg-pass"), SecretValue::new("jwt"))
///     .with_redis_password(SecretValue::new("hunter2"));
/// let shown = format!("{values:?}");
/// assert!(shown.contains("[redacted]") && !shown.contains("hunter2"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretValues {
    pub(crate) postgres_password: SecretValue,
    pub(crate) redis_password: Option<SecretValue>,
    pub(crate) immich_jwt_secret: SecretValue,
}

impl SecretValues {
    /// The PostgreSQL password and Immich's signing key; Valkey's password is
    /// added with [`SecretValues::with_redis_password`] when Valkey requires one.
    pub fn new(postgres_password: SecretValue, immich_jwt_secret: SecretValue) -> Self {
        Self {
            postgres_password,
            redis_password: None,
            immich_jwt_secret,
        }
    }

    /// Adds Valkey's password.
    #[must_use]
    pub fn with_redis_password(mut self, value: SecretValue) -> Self {
        self.redis_password = Some(value);
        self
    }
}

/// Whether the Secrets' values go into the rendered files.
#[derive(Debug, Clone, Copy)]
pub enum Secrets<'a> {
    /// Only referred to by name and key: no value is written anywhere, and the
    /// README says how to create them.
    Referenced,
    /// Written into a file of their own (`01-secrets.yaml`, mode 0600).
    Included(&'a SecretValues),
}

/// The PostgreSQL image of the `Cluster` unless the configuration names
/// another: VectorChord on PostgreSQL 16, built for CloudNativePG, with the
/// VectorChord release of immich-db's Podman image.
///
/// Immich's own `ghcr.io/immich-app/postgres` image runs under Podman but
/// lacks what CloudNativePG needs of an image.
pub const DEFAULT_POSTGRES_IMAGE: &str = "ghcr.io/tensorchord/cloudnative-vectorchord:16.9-0.4.3";

impl Default for DatabaseLayer {
    fn default() -> Self {
        Self {
            namespace: "immich".into(),
            postgres: PostgresCluster::default(),
            valkey: Valkey::default(),
            secrets: SecretNames::default(),
        }
    }
}

impl Default for PostgresCluster {
    fn default() -> Self {
        Self {
            name: "postgresql-immich".into(),
            image: DEFAULT_POSTGRES_IMAGE.into(),
            database: "immich".into(),
            owner: "immich".into(),
            initdb_args: "--data-checksums".into(),
            storage_size: "10Gi".into(),
            storage_class: None,
            instances: 1,
            extensions: vec!["vchord".into(), "earthdistance".into()],
            shared_preload_libraries: vec!["vchord.so".into()],
        }
    }
}

impl Default for Valkey {
    fn default() -> Self {
        Self {
            name: "redis-immich".into(),
            image: "docker.io/valkey/valkey:8".into(),
            storage_size: "1Gi".into(),
            storage_class: None,
            require_password: true,
            run_as: 999,
        }
    }
}

impl Default for SecretNames {
    fn default() -> Self {
        Self {
            postgres_password: "postgres-password".into(),
            redis_password: "redis-password".into(),
            immich_jwt_secret: "immich-jwt-secret".into(),
        }
    }
}

impl DatabaseLayer {
    /// Checks every field, as [`DatabaseLayer::render`] does before it builds
    /// anything: a caller can check its own configuration early, and point
    /// at its key with the error's field name.
    ///
    /// ```
    /// let mut layer = homelab_kube::DatabaseLayer::default();
    /// layer.postgres.storage_size = "lots".into();
    /// let err = layer.validate().unwrap_err();
    /// assert!(err.to_string().starts_with("postgres.storage_size"));
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::InvalidSize`], [`Error::InvalidImage`],
    /// [`Error::NoInstances`], [`Error::InitdbArgument`] or
    /// [`Error::InvalidExtension`].
    pub fn validate(&self) -> Result<(), Error> {
        dns_label(
            "namespace",
            &self.namespace,
            63,
            "a namespace is 1 to 63 lower-case letters, digits and `-`, starting and ending with a letter or digit",
        )?;
        let pg = &self.postgres;
        // CloudNativePG names Services, Pods and Jobs after the cluster, with
        // suffixes, and refuses names longer than 50 characters.
        dns_label(
            "postgres.name",
            &pg.name,
            50,
            "a cluster name is 1 to 50 lower-case letters, digits and `-`, starting with a letter and ending with a letter or digit",
        )?;
        starts_with_letter("postgres.name", &pg.name)?;
        image("postgres.image", &pg.image)?;
        role("postgres.database", &pg.database)?;
        role("postgres.owner", &pg.owner)?;
        size("postgres.storage_size", &pg.storage_size)?;
        if let Some(class) = &pg.storage_class {
            subdomain("postgres.storage_class", class)?;
        }
        if pg.instances == 0 {
            return Err(Error::NoInstances);
        }
        for name in &pg.extensions {
            if name.is_empty()
                || name.len() > 63
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(Error::InvalidExtension { name: name.clone() });
            }
        }
        for library in &pg.shared_preload_libraries {
            if library.is_empty()
                || !library.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'$' | b'/')
                })
            {
                return Err(Error::InvalidName {
                    field: "postgres.shared_preload_libraries",
                    value: library.clone(),
                    rule: "a library is a file name such as vchord.so",
                });
            }
        }
        crate::initdb::parse(&pg.initdb_args)?;

        let vk = &self.valkey;
        // The Service is named as the Deployment, and a Service's name is a
        // DNS label that starts with a letter; `-data` is added for the claim.
        dns_label(
            "valkey.name",
            &vk.name,
            58,
            "a Valkey name is 1 to 58 lower-case letters, digits and `-`, starting with a letter and ending with a letter or digit",
        )?;
        starts_with_letter("valkey.name", &vk.name)?;
        image("valkey.image", &vk.image)?;
        size("valkey.storage_size", &vk.storage_size)?;
        if let Some(class) = &vk.storage_class {
            subdomain("valkey.storage_class", class)?;
        }

        let s = &self.secrets;
        subdomain("secrets.postgres_password", &s.postgres_password)?;
        subdomain("secrets.redis_password", &s.redis_password)?;
        subdomain("secrets.immich_jwt_secret", &s.immich_jwt_secret)?;
        let mut names = vec![&s.postgres_password, &s.immich_jwt_secret];
        if vk.require_password {
            names.push(&s.redis_password);
        }
        for (i, a) in names.iter().enumerate() {
            if names[..i].contains(a) {
                return Err(Error::InvalidName {
                    field: "secrets",
                    value: (*a).clone(),
                    rule: "each Secret needs a name of its own",
                });
            }
        }
        Ok(())
    }
}

/// A DNS label of at most `max` characters (RFC 1123).
fn dns_label(
    field: &'static str,
    value: &str,
    max: usize,
    rule: &'static str,
) -> Result<(), Error> {
    let bytes = value.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= max
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-';
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            field,
            value: value.to_owned(),
            rule,
        })
    }
}

fn starts_with_letter(field: &'static str, value: &str) -> Result<(), Error> {
    if value.as_bytes().first().is_some_and(u8::is_ascii_lowercase) {
        Ok(())
    } else {
        Err(Error::InvalidName {
            field,
            value: value.to_owned(),
            rule: "this name must start with a lower-case letter",
        })
    }
}

/// A DNS subdomain: dot-separated labels, at most 253 characters.
fn subdomain(field: &'static str, value: &str) -> Result<(), Error> {
    const RULE: &str = "a Kubernetes name is lower-case letters, digits, `-` and `.`, at most 253 characters, each dot-separated part starting and ending with a letter or digit";
    if value.is_empty() || value.len() > 253 {
        return Err(Error::InvalidName {
            field,
            value: value.to_owned(),
            rule: RULE,
        });
    }
    for part in value.split('.') {
        dns_label(field, part, 63, RULE)?;
    }
    Ok(())
}

/// A PostgreSQL role or database name that needs no quoting anywhere.
fn role(field: &'static str, value: &str) -> Result<(), Error> {
    let bytes = value.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 63
        && (bytes[0].is_ascii_lowercase() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            field,
            value: value.to_owned(),
            rule: "a PostgreSQL name here is 1 to 63 lower-case letters, digits and `_`, starting with a letter or `_`",
        })
    }
}

fn image(field: &'static str, value: &str) -> Result<(), Error> {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(Error::InvalidImage {
            field,
            value: value.to_owned(),
        })
    } else {
        Ok(())
    }
}

/// A Kubernetes quantity of bytes above zero: digits, an optional fraction,
/// and a binary or decimal suffix (`10Gi`, `1.5T`, `500000000`).
fn size(field: &'static str, value: &str) -> Result<(), Error> {
    const SUFFIXES: [&str; 13] = [
        "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E",
    ];
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, suffix) = value.split_at(split);
    let mut parts = number.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let fraction = parts.next();
    let well_formed = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
        && SUFFIXES.contains(&suffix);
    let above_zero = number.bytes().any(|b| (b'1'..=b'9').contains(&b));
    if well_formed && above_zero {
        Ok(())
    } else {
        Err(Error::InvalidSize {
            field,
            value: value.to_owned(),
        })
    }
}

#[cfg(test)]
// As callers outside the crate must: the structs are `#[non_exhaustive]`.
#[allow(clippy::field_reassign_with_default)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass() {
        DatabaseLayer::default().validate().unwrap();
    }

    #[test]
    fn sizes() {
        for ok in ["10Gi", "1", "1.5T", "512Mi", "0.5Gi", "100k"] {
            size("s", ok).unwrap();
        }
        for bad in [
            "", "Gi", "0", "0Gi", "10 Gi", "10gi", "1.Gi", ".5Gi", "-1Gi", "10GB", "1e3",
        ] {
            assert!(size("s", bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn names() {
        let mut layer = DatabaseLayer::default();
        layer.namespace = "Immich".into();
        assert!(matches!(
            layer.validate(),
            Err(Error::InvalidName {
                field: "namespace",
                ..
            })
        ));

        let mut layer = DatabaseLayer::default();
        layer.postgres.name = "1pg".into();
        assert!(matches!(
            layer.validate(),
            Err(Error::InvalidName {
                field: "postgres.name",
                ..
            })
        ));

        let mut layer = DatabaseLayer::default();
        layer.postgres.owner = "immich; drop".into();
        assert!(matches!(
            layer.validate(),
            Err(Error::InvalidName {
                field: "postgres.owner",
                ..
            })
        ));

        let mut layer = DatabaseLayer::default();
        layer.postgres.extensions.push("vchord\"; --".into());
        assert!(matches!(
            layer.validate(),
            Err(Error::InvalidExtension { .. })
        ));

        let mut layer = DatabaseLayer::default();
        layer.secrets.redis_password = "postgres-password".into();
        assert!(matches!(
            layer.validate(),
            Err(Error::InvalidName {
                field: "secrets",
                ..
            })
        ));
        // Without a Valkey password its Secret does not exist, so its name is free.
        layer.valkey.require_password = false;
        layer.validate().unwrap();

        let mut layer = DatabaseLayer::default();
        layer.secrets.immich_jwt_secret = "a..b".into();
        assert!(layer.validate().is_err());
        layer.secrets.immich_jwt_secret = "immich.jwt-secret".into();
        layer.validate().unwrap();
    }

    proptest::proptest! {
        #[test]
        fn any_size_text_is_judged_without_panicking(text in "\\PC{0,12}") {
            let _ = size("s", &text);
        }

        #[test]
        fn sizes_in_the_documented_form_pass(n in 1u32..100_000, suffix in "(|Ki|Mi|Gi|Ti|k|M|G)") {
            size("s", &format!("{n}{suffix}")).unwrap();
        }
    }

    #[test]
    fn errors_say_what_and_how() {
        let mut layer = DatabaseLayer::default();
        layer.valkey.storage_size = "lots".into();
        let message = layer.validate().unwrap_err().to_string();
        assert!(message.contains("valkey.storage_size"), "{message}");
        assert!(message.contains("10Gi"), "{message}");
    }
}
