//! `[server]`: the Immich server and its machine-learning container, as
//! `immich-db server units` writes them from the same configuration as the
//! database layer: on the layer's network, with the library and the model cache
//! of `[storage]`, the passwords mounted from the layer's Podman secrets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `[server]` as written in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Image of the Immich server.
    pub image: String,
    /// Container name of the server; also its unit file name.
    pub container_name: String,
    /// Where the server's port (2283) is published on the host
    /// (`"127.0.0.1:2283"`); empty: not published.
    pub publish: String,
    /// Image of Immich's machine learning.
    pub ml_image: String,
    /// Container name of the machine learning; the server reaches it by this
    /// name.
    pub ml_container_name: String,
    /// Extra `podman run` options of the server, as words.
    pub podman_args: Vec<String>,
    /// Extra `podman run` options of the machine learning, as words.
    pub ml_podman_args: Vec<String>,
    /// Extra environment variables of the server (no secrets), such as `TZ`.
    pub environment: BTreeMap<String, String>,
    /// Extra environment variables of the machine learning (no secrets).
    pub ml_environment: BTreeMap<String, String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            image: "ghcr.io/immich-app/immich-server:release".into(),
            container_name: "immich-server".into(),
            publish: "127.0.0.1:2283".into(),
            ml_image: "ghcr.io/immich-app/immich-machine-learning:release".into(),
            ml_container_name: "immich-machine-learning".into(),
            podman_args: Vec::new(),
            ml_podman_args: Vec::new(),
            environment: BTreeMap::new(),
            ml_environment: BTreeMap::new(),
        }
    }
}

/// The `[server]` part of the commented configuration file.
pub(crate) fn template(server: &ServerConfig) -> String {
    let q = |v: &str| toml::Value::String(v.to_owned()).to_string();
    format!(
        r#"
[server]
# The Immich server and its machine learning, for `immich-db server units`
# (opt-in: `deploy` does not write them). They join the network above; the
# server mounts the library (/data), the machine learning the model cache
# (/cache), and the passwords come from the secrets above, as files.
# Image of the Immich server; pin a release (v2.x.y) in a real deployment.
image = {image}
# Container name of the server; its unit is <container_name>.container.
container_name = {container_name}
# Where the server's port 2283 is published on the host ("" for nowhere).
publish = {publish}
# Image of Immich's machine learning; use the server's release.
ml_image = {ml_image}
# Container name of the machine learning; the server reaches it by this name.
ml_container_name = {ml_container_name}
# Extra `podman run` options of the server, one word per entry. For example:
# podman_args = ["--memory=4g"]
podman_args = []
# Extra `podman run` options of the machine learning.
ml_podman_args = []
# Extra environment variables of the server (never a secret: they are written
# into the unit file). For example:
# environment = {{ TZ = "Europe/Oslo" }}
environment = {{}}
# Extra environment variables of the machine learning (never a secret).
ml_environment = {{}}
"#,
        image = q(&server.image),
        container_name = q(&server.container_name),
        publish = q(&server.publish),
        ml_image = q(&server.ml_image),
        ml_container_name = q(&server.ml_container_name),
    )
}
