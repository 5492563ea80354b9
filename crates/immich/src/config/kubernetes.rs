//! `[kubernetes]`: what `render --kubernetes` needs beyond the Podman
//! deployment's own keys: the namespace, CloudNativePG's PostgreSQL image, the
//! number of instances, and the volumes' sizes and class.

use serde::{Deserialize, Serialize};

use super::Loaded;
use crate::error::{Error, Result};

/// `[kubernetes]` as written in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KubernetesConfig {
    /// The namespace every object goes into, where Immich runs too.
    pub namespace: String,
    /// The PostgreSQL image CloudNativePG runs: one built for it, with
    /// VectorChord.
    pub postgres_image: String,
    /// How many PostgreSQL instances: one primary, the rest replicas.
    pub postgres_instances: u32,
    /// The size of each PostgreSQL instance's volume (a Kubernetes quantity).
    pub postgres_storage: String,
    /// The size of Valkey's volume.
    pub valkey_storage: String,
    /// The StorageClass of the volumes; `None`: the cluster's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        let layer = homelab_kube::DatabaseLayer::default();
        Self {
            namespace: layer.namespace,
            postgres_image: layer.postgres.image,
            postgres_instances: layer.postgres.instances,
            postgres_storage: layer.postgres.storage_size,
            valkey_storage: layer.valkey.storage_size,
            storage_class: None,
        }
    }
}

impl KubernetesConfig {
    /// Sets these keys on a layer.
    pub(crate) fn apply(&self, layer: &mut homelab_kube::DatabaseLayer) {
        layer.namespace.clone_from(&self.namespace);
        layer.postgres.image.clone_from(&self.postgres_image);
        layer.postgres.instances = self.postgres_instances;
        layer
            .postgres
            .storage_size
            .clone_from(&self.postgres_storage);
        layer.postgres.storage_class.clone_from(&self.storage_class);
        layer.valkey.storage_size.clone_from(&self.valkey_storage);
        layer.valkey.storage_class.clone_from(&self.storage_class);
    }
}

/// The `[kubernetes]` key a field of homelab-kube's layer comes from, and how
/// a valid value looks, where it is one of these keys.
pub(crate) fn key_of(field: &str) -> Option<(&'static str, &'static str)> {
    Some(match field {
        "namespace" => (
            "namespace",
            "a namespace is 1 to 63 lower-case letters, digits and `-`, such as \"immich\"",
        ),
        "postgres.image" => (
            "postgres_image",
            "give an image reference such as ghcr.io/tensorchord/cloudnative-vectorchord:16.9-0.4.3",
        ),
        "postgres.instances" => ("postgres_instances", "give 1 or more"),
        "postgres.storage_size" => (
            "postgres_storage",
            "give a size with a unit, such as 10Gi or 512Mi",
        ),
        "valkey.storage_size" => (
            "valkey_storage",
            "give a size with a unit, such as 1Gi or 512Mi",
        ),
        "postgres.storage_class" | "valkey.storage_class" => (
            "storage_class",
            "give the name of a StorageClass of the cluster (`kubectl get storageclass`), or remove the key",
        ),
        _ => return None,
    })
}

/// Checks `[kubernetes]` by homelab-kube's own rules, on a layer that is the
/// default but for these keys: an error names the key and its line.
pub(crate) fn check(loaded: &Loaded) -> Result<()> {
    let mut layer = homelab_kube::DatabaseLayer::default();
    loaded.config.kubernetes.apply(&mut layer);
    let Err(e) = layer.validate() else {
        return Ok(());
    };
    let field = match &e {
        homelab_kube::Error::InvalidName { field, .. }
        | homelab_kube::Error::InvalidSize { field, .. }
        | homelab_kube::Error::InvalidImage { field, .. } => *field,
        homelab_kube::Error::NoInstances => "postgres.instances",
        _ => "",
    };
    let (key, help) = key_of(field).unwrap_or((
        "namespace",
        "`immich-db config init` writes every key of [kubernetes] with a comment",
    ));
    // homelab-kube names its own field; the user knows the key.
    let what = e.to_string();
    let what = what
        .strip_prefix(field)
        .map_or(what.clone(), |rest| format!("`kubernetes.{key}`{rest}"));
    Err(Error::bad_input(what)
        .at(loaded.locate("kubernetes", key))
        .help(help))
}

/// The `[kubernetes]` part of the commented configuration file.
pub(crate) fn template(k: &KubernetesConfig) -> String {
    let q = |v: &str| toml::Value::String(v.to_owned()).to_string();
    format!(
        r#"
[kubernetes]
# Only for `immich-db render --kubernetes`, which writes this layer as manifests
# for a Kubernetes cluster with the CloudNativePG operator; the names, database,
# role, initdb options, Valkey image and secrets are those above.
# The namespace of every object, where Immich runs too.
namespace = {namespace}
# PostgreSQL's image under CloudNativePG: one built for it, with VectorChord
# (Immich's image for Podman does not run there). Its PostgreSQL must be as new
# as the one in [postgres] image, or a backup from here will not load into it.
postgres_image = {image}
# How many PostgreSQL instances: one primary, the rest replicas.
postgres_instances = {instances}
# The size of each PostgreSQL instance's volume, such as 10Gi or 512Mi.
postgres_storage = {pg_storage}
# The size of Valkey's volume.
valkey_storage = {vk_storage}
# The StorageClass of the volumes. Default: the cluster's default class. For
# example:
# storage_class = "local-path"
"#,
        namespace = q(&k.namespace),
        image = q(&k.postgres_image),
        instances = k.postgres_instances,
        pg_storage = q(&k.postgres_storage),
        vk_storage = q(&k.valkey_storage),
    )
}

#[cfg(test)]
mod tests {
    use crate::config::{Origin, parse, validate};
    use crate::error::ErrorKind;

    fn check(text: &str) -> crate::error::Result<crate::config::Deployment> {
        validate(&parse(
            text,
            Origin::Flag {
                path: "t.toml".into(),
            },
        )?)
    }

    #[test]
    fn defaults_are_homelab_kube_defaults() {
        let d = check("").unwrap();
        let k = &d.config.kubernetes;
        assert_eq!(k.namespace, "immich");
        assert_eq!(k.postgres_image, homelab_kube::DEFAULT_POSTGRES_IMAGE);
        assert_eq!(k.postgres_instances, 1);
        assert_eq!(k.storage_class, None);
        check(
            "[kubernetes]\nnamespace = \"photos\"\npostgres_storage = \"50Gi\"\nstorage_class = \"local-path\"\n",
        )
        .unwrap();
    }

    #[test]
    fn malformed_kubernetes_keys_name_key_and_line() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "[kubernetes]\nnamespace = \"Photos\"\n",
                "t.toml:2:1 ([kubernetes] namespace)",
                "`kubernetes.namespace` = \"Photos\"",
            ),
            (
                "[kubernetes]\npostgres_image = \"a b\"\n",
                "t.toml:2:1 ([kubernetes] postgres_image)",
                "`kubernetes.postgres_image` = \"a b\"",
            ),
            (
                "[kubernetes]\n\npostgres_instances = 0\n",
                "t.toml:3:1 ([kubernetes] postgres_instances)",
                "at least one instance",
            ),
            (
                "[kubernetes]\npostgres_storage = \"10GB\"\n",
                "t.toml:2:1 ([kubernetes] postgres_storage)",
                "`kubernetes.postgres_storage` = \"10GB\": not a storage size",
            ),
            (
                "[kubernetes]\nvalkey_storage = \"0\"\n",
                "t.toml:2:1 ([kubernetes] valkey_storage)",
                "not a storage size",
            ),
            (
                "[kubernetes]\nstorage_class = \"Fast_SSD\"\n",
                "t.toml:2:1 ([kubernetes] storage_class)",
                "`kubernetes.storage_class` = \"Fast_SSD\"",
            ),
        ];
        for (text, location, what) in cases {
            let err = check(text).expect_err(text);
            assert_eq!(err.kind, ErrorKind::BadInput, "{text}: {err}");
            assert_eq!(err.location.as_deref(), Some(*location), "{text}: {err}");
            assert!(err.what.contains(what), "{text}: {err}");
            assert!(err.help.is_some(), "{text}: {err}");
        }
        let err = check("[kubernetes]\npostgres_instances = -1\n").unwrap_err();
        assert!(
            err.what.contains("[kubernetes] postgres_instances"),
            "{err}"
        );
        let err = check("[kubernetes]\nnamspace = \"x\"\n").unwrap_err();
        assert!(err.what.contains("namspace"), "{err}");
    }
}
