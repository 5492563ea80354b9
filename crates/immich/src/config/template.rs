//! The commented configuration file that `config init` writes.

use super::Config;

/// A TOML string literal.
fn quoted(value: &str) -> String {
    toml::Value::String(value.to_owned()).to_string()
}

/// The default configuration as a file with a comment on every key (what
/// `immich-db config init` writes).
pub fn template() -> String {
    let Config {
        network,
        storage,
        postgres,
        valkey,
        immich,
        systemd,
        backup,
        kubernetes,
        server,
    } = Config::default();
    let q = |v: &str| quoted(v);
    format!(
        r#"# immich-db configuration. Every key is optional: a missing key takes the value
# shown here. `immich-db config show` prints the configuration in effect.

[network]
# Name of the Quadlet network unit (<name>.network). Podman calls the network
# systemd-<name>, and its service is <name>-network.service.
name = {net_name}
# The network's subnet, in CIDR form.
subnet = {subnet}
# The gateway: an address inside the subnet, usually its first one.
gateway = {gateway}
# DNS servers given to the containers (IP addresses). Empty: Podman's own
# resolver, which also resolves the containers' names. For example:
# dns = ["192.0.2.53"]
dns = []

[storage]
# Mount point of the BTRFS pool. The directories below are relative to it
# unless absolute.
pool = {pool}
# PostgreSQL's data: created empty with copy-on-write off (NOCOW).
postgres_dir = {postgres_dir}
# Valkey's data: created empty with copy-on-write off (NOCOW).
valkey_dir = {valkey_dir}
# The photo library: copy-on-write kept, so BTRFS snapshots protect it.
library_dir = {library_dir}
# The machine-learning model cache: copy-on-write kept.
ml_cache_dir = {ml_cache_dir}

[postgres]
# Image of PostgreSQL with the vector extensions Immich needs.
image = {pg_image}
# Container name; the unit is <container_name>.container and its service
# <container_name>.service.
container_name = {pg_container}
# Database role Immich logs in as.
user = {pg_user}
# Database Immich uses.
database = {pg_database}
# Podman secret holding the role's password (created alphanumeric when missing,
# never regenerated).
password_secret = {pg_secret}
# Shared memory for the container (a number with b, k, m or g).
shm_size = {shm_size}
# Options for initdb when the database is first created.
initdb_args = {initdb_args}
# DB_STORAGE_TYPE of Immich's image, which tunes PostgreSQL for the disks:
# "HDD" for spinning disks, "SSD" otherwise. Unset: the image's default (SSD).
# storage_type = "HDD"
# For clients on this host: publish the port on a loopback address, or give
# the container a fixed address on the network (its address otherwise changes
# when it restarts). Clients in containers on the network use its name.
# publish = "127.0.0.1:5432"
# ip = "10.89.5.10"
# Extra `podman run` options, one word per entry. For example:
# podman_args = ["--cpus=2", "--memory=2g"]
podman_args = []
# Extra environment variables of the container. Never a secret: they are
# written into the unit file; variables whose names look like one are refused.
# For example: environment = {{ TZ = "Europe/Oslo" }}
environment = {{}}

[valkey]
# Image of Valkey (or Redis).
image = {vk_image}
# Container name; the unit is <container_name>.container.
container_name = {vk_container}
# Podman secret holding Valkey's password (created when missing, never
# regenerated).
password_secret = {vk_secret}
# Whether Valkey asks for that password. false runs it without one.
require_password = {require_password}
# Let `podman auto-update` (its timer, podman-auto-update.timer) pull a newer
# image from the registry and restart Valkey, rolled back when the health check
# fails (AutoUpdate=registry). `immich-db update` does it on demand.
auto_update = {auto_update}
# For clients on this host, as for PostgreSQL:
# publish = "127.0.0.1:6379"
# ip = "10.89.5.11"
# Extra `podman run` options, one word per entry.
podman_args = []
# Extra environment variables (never a secret). For example:
# environment = {{ VALKEY_EXTRA_FLAGS = "--save 60 1" }}
environment = {{}}

[immich]
# Podman secret of a JWT key (created when missing, never regenerated). Immich
# no longer reads JWT_SECRET (since early 2023); it is kept for deployments
# that still pass it.
jwt_secret = {jwt_secret}

[systemd]
# Which systemd manager runs the units: "user" (systemctl --user; enable
# lingering so they start at boot) or "system".
scope = {scope}
# Where the unit files go. Default: ~/.config/containers/systemd for "user",
# /etc/containers/systemd for "system". For example:
# unit_dir = "/etc/containers/systemd/users/1000"
{backup}{server}{kubernetes}"#,
        net_name = q(&network.name),
        subnet = q(&network.subnet),
        gateway = q(&network.gateway),
        pool = q(&storage.pool),
        postgres_dir = q(&storage.postgres_dir),
        valkey_dir = q(&storage.valkey_dir),
        library_dir = q(&storage.library_dir),
        ml_cache_dir = q(&storage.ml_cache_dir),
        pg_image = q(&postgres.image),
        pg_container = q(&postgres.container_name),
        pg_user = q(&postgres.user),
        pg_database = q(&postgres.database),
        pg_secret = q(&postgres.password_secret),
        shm_size = q(&postgres.shm_size),
        initdb_args = q(&postgres.initdb_args),
        vk_image = q(&valkey.image),
        vk_container = q(&valkey.container_name),
        vk_secret = q(&valkey.password_secret),
        require_password = valkey.require_password,
        auto_update = valkey.auto_update,
        jwt_secret = q(&immich.jwt_secret),
        scope = q(&systemd.scope),
        backup = super::backup::template(&backup),
        kubernetes = super::kubernetes::template(&kubernetes),
        server = super::server::template(&server),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Origin, parse};

    #[test]
    fn template_reads_back_as_the_defaults() {
        let loaded = parse(&template(), Origin::Defaults).unwrap();
        assert_eq!(loaded.config, Config::default());
    }

    #[test]
    fn every_key_has_a_comment_above_it() {
        let text = template();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.contains(" = ") && !line.starts_with('#') {
                assert!(lines[i - 1].starts_with('#'), "no comment above `{line}`");
            }
        }
        assert!(text.contains("# dns = ["), "a commented dns example");
    }
}
