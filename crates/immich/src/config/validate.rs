//! Checks every key of a [`Config`] and resolves it into a [`Deployment`]: typed
//! addresses, absolute directories, the unit directory for the scope.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use homelab_quadlet::values::ValueError;
use homelab_quadlet::{IpNet, IpNetExt as _};
use serde::Serialize;

use super::paths::{Dirs, default_unit_dir, normalise, resolve_dir};
use super::{Config, Loaded, Scope};
use crate::error::{Error, Result};

/// A configuration that passed every check, with its values resolved.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Deployment {
    /// The configuration, as written.
    #[serde(flatten)]
    pub config: Config,
    /// The network's subnet.
    #[serde(skip)]
    pub subnet: IpNet,
    /// The network's gateway.
    #[serde(skip)]
    pub gateway: IpAddr,
    /// DNS servers for the containers.
    #[serde(skip)]
    pub dns: Vec<IpAddr>,
    /// The pool's mount point.
    #[serde(skip)]
    pub pool: PathBuf,
    /// The data directories.
    #[serde(skip)]
    pub dirs: Dirs,
    /// Which manager runs the units.
    #[serde(skip)]
    pub scope: Scope,
    /// Where the unit files go.
    #[serde(skip)]
    pub unit_dir: PathBuf,
    /// Where backups go, how many are kept, where their schedule's units go.
    #[serde(skip)]
    pub backup: super::backup::BackupSettings,
    /// Whether podman runs rootless: the tool runs as an ordinary user.
    #[serde(skip)]
    pub rootless: bool,
    /// Where the PostgreSQL image keeps its data: what the image's
    /// configuration says once the host was checked (`plan` and `deploy`
    /// inspect it), until then what the official images of the major its tag
    /// names do.
    #[serde(skip)]
    pub postgres_layout: crate::layout::PostgresLayout,
    /// Each container's extra settings: environment, podman options, a fixed
    /// address, a published port.
    #[serde(skip)]
    pub containers: super::containers::Containers,
}

impl Deployment {
    /// The name Podman gives the network of `<name>.network`.
    pub fn podman_network(&self) -> String {
        homelab_quadlet::naming::default_resource_name(&self.network_unit_file())
    }

    /// The unit file of the network.
    pub fn network_unit_file(&self) -> String {
        format!(
            "{}.{}",
            self.config.network.name,
            homelab_quadlet::UnitKind::Network.extension()
        )
    }

    /// The service the generator makes of the network unit.
    pub fn network_service(&self) -> String {
        homelab_quadlet::naming::default_service_name(
            &self.network_unit_file(),
            homelab_quadlet::UnitKind::Network,
        )
    }

    /// The secrets this deployment needs, in the order they are ensured.
    pub fn secret_names(&self) -> Vec<&str> {
        let mut names = vec![self.config.postgres.password_secret.as_str()];
        if self.config.valkey.require_password {
            names.push(&self.config.valkey.password_secret);
        }
        names.push(&self.config.immich.jwt_secret);
        names
    }
}

/// A name for a unit, a container or a secret: a letter or digit first, then
/// letters, digits, `_`, `.` or `-` (Podman's rule; it also keeps unit file
/// names and `Secret=` options unambiguous).
pub(super) fn check_name(value: &str) -> std::result::Result<(), String> {
    if value.is_empty() {
        return Err("it is empty".into());
    }
    if value.len() > 200 {
        return Err(format!(
            "it is {} characters long (at most 200)",
            value.len()
        ));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        let what = match bad {
            ' ' => "a space".to_owned(),
            '/' => "a slash".to_owned(),
            c => format!("`{}`", c.escape_default()),
        };
        return Err(format!("it contains {what}"));
    }
    if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("it must start with a letter or a digit".into());
    }
    Ok(())
}

/// A PostgreSQL role or database name that needs no quoting anywhere.
fn check_identifier(value: &str) -> std::result::Result<(), String> {
    if value.is_empty() {
        return Err("it is empty".into());
    }
    if value.len() > 63 {
        return Err(format!(
            "it is {} bytes long (PostgreSQL allows 63)",
            value.len()
        ));
    }
    if !value.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return Err("it must start with a letter or `_`".into());
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(format!(
            "it contains `{}` (use letters, digits and `_`)",
            bad.escape_default()
        ));
    }
    Ok(())
}

/// Podman's size syntax: a number and an optional unit `b`, `k`, `m` or `g`.
fn check_size(value: &str) -> std::result::Result<(), String> {
    let digits = value.trim_end_matches(|c: char| "bkmgBKMG".contains(c));
    let unit_len = value.len() - digits.len();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || unit_len > 1 {
        return Err("write a number with an optional unit b, k, m or g, such as 128m".into());
    }
    if digits.bytes().all(|b| b == b'0') {
        return Err("it is zero".into());
    }
    Ok(())
}

/// Collects the checks of one configuration; the first failure is the answer.
struct Checker<'a> {
    loaded: &'a Loaded,
}

impl Checker<'_> {
    fn fail(&self, section: &str, key: &str, what: String, help: impl Into<String>) -> Error {
        Error::bad_input(what)
            .at(self.loaded.locate(section, key))
            .help(help)
    }

    fn name(&self, section: &str, key: &str, value: &str, kind: &str) -> Result<()> {
        check_name(value).map_err(|why| {
            self.fail(
                section,
                key,
                format!("`{section}.{key}` = {value:?} is not a valid {kind} name: {why}"),
                "use letters, digits, `_`, `.` and `-`, starting with a letter or digit (no spaces or slashes)",
            )
        })
    }
}

/// Checks every key and resolves the configuration.
pub fn validate(loaded: &Loaded) -> Result<Deployment> {
    let c = Checker { loaded };
    let config = &loaded.config;

    // [network]
    let network = &config.network;
    c.name("network", "name", &network.name, "network unit")?;
    let bad_subnet = |why: String, help: String| {
        c.fail(
            "network",
            "subnet",
            format!(
                "`network.subnet` = {:?} is not a valid subnet: {why}",
                network.subnet
            ),
            help,
        )
    };
    let subnet: IpNet =
        homelab_quadlet::parse_ip_net(&network.subnet).map_err(|e: ValueError| {
            bad_subnet(
                e.reason,
                "write an IPv4 or IPv6 subnet in CIDR form, such as 10.89.5.0/24".into(),
            )
        })?;
    if subnet.has_host_bits() {
        let network = subnet.trunc();
        return Err(bad_subnet(
            format!("host bits are set (the subnet would be {network})"),
            format!("write `subnet = \"{network}\"`"),
        ));
    }
    let gateway: IpAddr = network.gateway.parse().map_err(|_| {
        c.fail(
            "network",
            "gateway",
            format!(
                "`network.gateway` = {:?} is not an IP address",
                network.gateway
            ),
            format!("write an address inside {subnet}, usually its first one"),
        )
    })?;
    if !subnet.contains(&gateway) {
        return Err(c.fail(
            "network",
            "gateway",
            format!("`network.gateway` = {gateway} is outside the subnet {subnet}"),
            "choose a gateway inside the subnet (usually its first address), or fix the subnet",
        ));
    }
    if subnet.is_reserved(gateway) {
        return Err(c.fail(
            "network",
            "gateway",
            format!(
                "`network.gateway` = {gateway} is the network or broadcast address of {subnet}"
            ),
            "choose a host address inside the subnet, usually its first one",
        ));
    }
    let mut dns = Vec::new();
    for (i, server) in network.dns.iter().enumerate() {
        let ip: IpAddr = server.parse().map_err(|_| {
            c.fail(
                "network",
                "dns",
                format!("`network.dns[{i}]` = {server:?} is not an IP address"),
                "list DNS servers by address, such as dns = [\"192.0.2.53\"]",
            )
        })?;
        dns.push(ip);
    }

    // [storage]
    let storage = &config.storage;
    let pool = Path::new(&storage.pool);
    if !pool.is_absolute() {
        return Err(c.fail(
            "storage",
            "pool",
            format!(
                "`storage.pool` = {:?} is not an absolute path",
                storage.pool
            ),
            "give the mount point of the BTRFS pool, such as /mnt/btrfs-pool",
        ));
    }
    if pool.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(c.fail(
            "storage",
            "pool",
            format!("`storage.pool` = {:?} contains `..`", storage.pool),
            "give the pool's path without `..`",
        ));
    }
    let pool = normalise(pool);
    if pool == Path::new("/") {
        return Err(c.fail(
            "storage",
            "pool",
            "`storage.pool` is the root directory".into(),
            "give the mount point of the BTRFS pool, such as /mnt/btrfs-pool",
        ));
    }
    let mut resolved = BTreeMap::new();
    for (key, value) in [
        ("postgres_dir", &storage.postgres_dir),
        ("valkey_dir", &storage.valkey_dir),
        ("library_dir", &storage.library_dir),
        ("ml_cache_dir", &storage.ml_cache_dir),
    ] {
        let dir = resolve_dir(&pool, value).map_err(|why| {
            c.fail(
                "storage",
                key,
                format!("`storage.{key}` = {value:?} is not a usable directory: {why}"),
                "give a path relative to the pool, or an absolute path",
            )
        })?;
        if dir == pool {
            return Err(c.fail(
                "storage",
                key,
                format!("`storage.{key}` is the pool itself"),
                "give each service its own directory under the pool",
            ));
        }
        for (other_key, other) in &resolved {
            let (a, b): (&PathBuf, &PathBuf) = (&dir, other);
            if a == b || a.starts_with(b) || b.starts_with(a) {
                let how = if a == b {
                    "the same directory as"
                } else {
                    "nested with"
                };
                return Err(c.fail(
                    "storage",
                    key,
                    format!(
                        "`storage.{key}` ({}) is {how} `storage.{other_key}` ({})",
                        a.display(),
                        b.display()
                    ),
                    "give every service a directory of its own; databases need NOCOW and the library keeps copy-on-write",
                ));
            }
        }
        resolved.insert(key, dir);
    }
    let dir = |key: &str| resolved.get(key).cloned().unwrap_or_default();
    let dirs = Dirs {
        postgres: dir("postgres_dir"),
        valkey: dir("valkey_dir"),
        library: dir("library_dir"),
        ml_cache: dir("ml_cache_dir"),
    };

    // [postgres] and [valkey]
    let pg = &config.postgres;
    let vk = &config.valkey;
    for (section, image) in [("postgres", &pg.image), ("valkey", &vk.image)] {
        homelab_podman::ImageRef::parse(image).map_err(|e| {
            let why = match e {
                homelab_podman::Error::InvalidImageReference { reason, .. } => reason,
                other => other.to_string(),
            };
            c.fail(
                section,
                "image",
                format!("`{section}.image` = {image:?} is not a valid image reference: {why}"),
                "write it as REGISTRY/PATH:TAG, such as docker.io/valkey/valkey:8",
            )
        })?;
    }
    c.name(
        "postgres",
        "container_name",
        &pg.container_name,
        "container",
    )?;
    c.name("valkey", "container_name", &vk.container_name, "container")?;
    if pg.container_name == vk.container_name {
        return Err(c.fail(
            "valkey",
            "container_name",
            format!(
                "`valkey.container_name` and `postgres.container_name` are both {:?}",
                vk.container_name
            ),
            "give each container its own name",
        ));
    }
    for (section, name) in [
        ("postgres", &pg.container_name),
        ("valkey", &vk.container_name),
    ] {
        if *name == format!("{}-network", network.name) {
            return Err(c.fail(
                section,
                "container_name",
                format!("`{section}.container_name` = {name:?} would take the name of the network's service"),
                "choose another container name",
            ));
        }
    }
    for (key, value) in [("user", &pg.user), ("database", &pg.database)] {
        check_identifier(value).map_err(|why| {
            c.fail(
                "postgres",
                key,
                format!("`postgres.{key}` = {value:?} is not a valid PostgreSQL name: {why}"),
                "use letters, digits and `_`, starting with a letter",
            )
        })?;
    }
    check_size(&pg.shm_size).map_err(|why| {
        c.fail(
            "postgres",
            "shm_size",
            format!(
                "`postgres.shm_size` = {:?} is not a size: {why}",
                pg.shm_size
            ),
            "write a size such as 128m or 1g",
        )
    })?;
    if let Some(bad) = pg
        .initdb_args
        .chars()
        .find(|ch| ch.is_control() || *ch == '%' || *ch == '\\')
    {
        return Err(c.fail(
            "postgres",
            "initdb_args",
            format!(
                "`postgres.initdb_args` contains `{}`, which cannot be passed through a unit file unchanged",
                bad.escape_default()
            ),
            "use plain initdb options such as --data-checksums",
        ));
    }

    // Secrets
    let mut secrets: Vec<(&str, &str, &str)> = vec![
        ("postgres", "password_secret", &pg.password_secret),
        ("valkey", "password_secret", &vk.password_secret),
        ("immich", "jwt_secret", &config.immich.jwt_secret),
    ];
    for (section, key, value) in &secrets {
        homelab_secrets::validate_name(value).map_err(|e| {
            c.fail(
                section,
                key,
                format!("`{section}.{key}` is not a valid secret name: {e}"),
                "use letters, digits, `_`, `.` and `-`, starting with a letter or digit (no spaces, slashes or commas)",
            )
        })?;
    }
    if !vk.require_password {
        secrets.remove(1);
    }
    for (i, (section, key, value)) in secrets.iter().enumerate() {
        if let Some((other_section, other_key, _)) =
            secrets[..i].iter().find(|(_, _, other)| other == value)
        {
            return Err(c.fail(
                section,
                key,
                format!("`{section}.{key}` and `{other_section}.{other_key}` name the same secret {value:?}"),
                "give each secret its own name: one leaked or rotated password must not affect the others",
            ));
        }
    }

    // [systemd]
    let scope = match config.systemd.scope.as_str() {
        "user" => Scope::User,
        "system" => Scope::System,
        other => {
            return Err(c.fail(
                "systemd",
                "scope",
                format!("`systemd.scope` = {other:?} is neither \"user\" nor \"system\""),
                "write scope = \"user\" (the user's systemd manager) or \"system\"",
            ));
        }
    };
    let unit_dir = match &config.systemd.unit_dir {
        Some(dir) => {
            let path = Path::new(dir);
            if !path.is_absolute() {
                return Err(c.fail(
                    "systemd",
                    "unit_dir",
                    format!("`systemd.unit_dir` = {dir:?} is not an absolute path"),
                    "give an absolute directory that the Quadlet generator reads, or remove the key",
                ));
            }
            normalise(path)
        }
        None => default_unit_dir(scope, loaded.config_home.as_deref()).ok_or_else(|| {
            Error::precondition("cannot find the unit directory: $HOME is not set")
                .help("set HOME, or set `unit_dir` in [systemd]")
        })?,
    };

    let backup = super::backup::resolve(loaded, &pool, &dirs, scope)?;
    super::kubernetes::check(loaded)?;
    let containers = super::containers::resolve(loaded, subnet, gateway)?;

    Ok(Deployment {
        config: config.clone(),
        subnet,
        gateway,
        dns,
        pool,
        dirs,
        scope,
        unit_dir,
        backup,
        rootless: !rustix::process::geteuid().is_root(),
        postgres_layout: crate::layout::PostgresLayout::assumed(&config.postgres.image),
        containers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Origin, parse};
    use crate::error::ErrorKind;

    fn check(text: &str) -> Result<Deployment> {
        let loaded = parse(
            text,
            Origin::Flag {
                path: "t.toml".into(),
            },
        )?;
        validate(&loaded)
    }

    /// Each malformed configuration fails with exit 2, at the line of its key.
    #[test]
    fn malformed_configurations_name_key_and_line() {
        let cases: &[(&str, &str)] = &[
            (
                "[network]\nname = \"my net\"\n",
                "t.toml:2:1 ([network] name)",
            ),
            ("[network]\nname = \"a/b\"\n", "t.toml:2:1 ([network] name)"),
            ("[network]\nname = \"\"\n", "t.toml:2:1 ([network] name)"),
            (
                "[network]\nsubnet = \"10.89.5.0\"\n",
                "t.toml:2:1 ([network] subnet)",
            ),
            (
                "[network]\nsubnet = \"10.89.5.0/40\"\n",
                "t.toml:2:1 ([network] subnet)",
            ),
            (
                "[network]\nsubnet = \"10.89.500.0/24\"\n",
                "t.toml:2:1 ([network] subnet)",
            ),
            (
                "[network]\nsubnet = \"10.89.5.7/24\"\n",
                "t.toml:2:1 ([network] subnet)",
            ),
            (
                "[network]\ngateway = \"10.89.6.1\"\n",
                "t.toml:2:1 ([network] gateway)",
            ),
            (
                "[network]\ngateway = \"10.89.5.0\"\n",
                "t.toml:2:1 ([network] gateway)",
            ),
            (
                "[network]\ngateway = \"gw\"\n",
                "t.toml:2:1 ([network] gateway)",
            ),
            (
                "[network]\ndns = [\"dns.example\"]\n",
                "t.toml:2:1 ([network] dns)",
            ),
            (
                "[storage]\npool = \"btrfs-pool\"\n",
                "t.toml:2:1 ([storage] pool)",
            ),
            ("[storage]\npool = \"/\"\n", "t.toml:2:1 ([storage] pool)"),
            (
                "[storage]\npool = \"/mnt/../x\"\n",
                "t.toml:2:1 ([storage] pool)",
            ),
            (
                "[storage]\nvalkey_dir = \"../escape\"\n",
                "t.toml:2:1 ([storage] valkey_dir)",
            ),
            (
                "[storage]\nvalkey_dir = \"subvol7-containers/postgresql-immich\"\n",
                "t.toml:2:1 ([storage] valkey_dir)",
            ),
            (
                "[storage]\nml_cache_dir = \"subvol3-opptak/immich/ml\"\n",
                "t.toml:2:1 ([storage] ml_cache_dir)",
            ),
            (
                "[storage]\nlibrary_dir = \"\"\n",
                "t.toml:2:1 ([storage] library_dir)",
            ),
            (
                "[postgres]\nimage = \"Immich/Postgres\"\n",
                "t.toml:2:1 ([postgres] image)",
            ),
            (
                "[valkey]\nimage = \"valkey:\"\n",
                "t.toml:2:1 ([valkey] image)",
            ),
            (
                "[valkey]\nimage = \"docker.io/valkey/valkey:8 x\"\n",
                "t.toml:2:1 ([valkey] image)",
            ),
            (
                "[postgres]\ncontainer_name = \"pg immich\"\n",
                "t.toml:2:1 ([postgres] container_name)",
            ),
            (
                "[valkey]\ncontainer_name = \"postgresql-immich\"\n",
                "t.toml:2:1 ([valkey] container_name)",
            ),
            (
                "[postgres]\nuser = \"im-mich\"\n",
                "t.toml:2:1 ([postgres] user)",
            ),
            (
                "[postgres]\ndatabase = \"1db\"\n",
                "t.toml:2:1 ([postgres] database)",
            ),
            (
                "[postgres]\nshm_size = \"lots\"\n",
                "t.toml:2:1 ([postgres] shm_size)",
            ),
            (
                "[postgres]\nshm_size = \"0\"\n",
                "t.toml:2:1 ([postgres] shm_size)",
            ),
            (
                "[postgres]\npassword_secret = \"pg,pw\"\n",
                "t.toml:2:1 ([postgres] password_secret)",
            ),
            (
                "[immich]\njwt_secret = \"postgres-password\"\n",
                "t.toml:2:1 ([immich] jwt_secret)",
            ),
            (
                "[systemd]\nscope = \"global\"\n",
                "t.toml:2:1 ([systemd] scope)",
            ),
            (
                "[systemd]\nunit_dir = \"units\"\n",
                "t.toml:2:1 ([systemd] unit_dir)",
            ),
            (
                "[postgres]\ninitdb_args = \"--x=%h\"\n",
                "t.toml:2:1 ([postgres] initdb_args)",
            ),
        ];
        for (text, location) in cases {
            let err = check(text).expect_err(text);
            assert_eq!(err.kind, ErrorKind::BadInput, "{text}");
            assert_eq!(err.location.as_deref(), Some(*location), "{text}\n{err}");
            assert!(err.help.is_some(), "{text}");
        }
    }

    /// What is wrong with a subnet or gateway, and the fix, in the message.
    #[test]
    fn subnet_and_gateway_messages_say_what_and_how() {
        for (text, what, help) in [
            (
                "[network]\nsubnet = \"10.89.5.0\"\n",
                "`network.subnet` = \"10.89.5.0\" is not a valid subnet: there is no prefix length",
                "such as 10.89.5.0/24",
            ),
            (
                "[network]\nsubnet = \"10.89.500.0/24\"\n",
                "`10.89.500.0` is not an IP address",
                "CIDR form",
            ),
            (
                "[network]\nsubnet = \"10.89.5.0/+24\"\n",
                "the prefix length `+24` is not a number from 0 to 32",
                "CIDR form",
            ),
            (
                "[network]\nsubnet = \"fd00::/129\"\n",
                "the prefix length `129` is not a number from 0 to 128",
                "CIDR form",
            ),
            (
                "[network]\nsubnet = \"10.89.5.7/24\"\n",
                "host bits are set (the subnet would be 10.89.5.0/24)",
                "write `subnet = \"10.89.5.0/24\"`",
            ),
            (
                "[network]\ngateway = \"10.89.6.1\"\n",
                "`network.gateway` = 10.89.6.1 is outside the subnet 10.89.5.0/24",
                "inside the subnet",
            ),
            (
                "[network]\ngateway = \"10.89.5.255\"\n",
                "is the network or broadcast address of 10.89.5.0/24",
                "host address",
            ),
            (
                "[network]\nsubnet = \"fd00:5::/64\"\ngateway = \"fd00:5::\"\n",
                "`network.gateway` = fd00:5:: is the network or broadcast address of fd00:5::/64",
                "host address",
            ),
        ] {
            let err = check(text).expect_err(text);
            assert!(err.what.contains(what), "{text}\n{err}");
            let given = err.help.unwrap_or_default();
            assert!(given.contains(help), "{text}\n{given}");
        }
        let d = check("[network]\nsubnet = \"fd00:5::/64\"\ngateway = \"fd00:5::1\"\n").unwrap();
        assert_eq!(d.subnet.to_string(), "fd00:5::/64");
    }

    #[test]
    fn defaults_are_the_journal_deployment() {
        let d = check("").unwrap();
        assert_eq!(d.podman_network(), "systemd-photos");
        assert_eq!(d.network_service(), "photos-network.service");
        assert_eq!(d.subnet.to_string(), "10.89.5.0/24");
        assert_eq!(
            d.dirs.postgres,
            Path::new("/mnt/btrfs-pool/subvol7-containers/postgresql-immich")
        );
        assert_eq!(
            d.dirs.library,
            Path::new("/mnt/btrfs-pool/subvol3-opptak/immich")
        );
        assert!(d.dns.is_empty());
        assert_eq!(d.scope, Scope::User);
        assert_eq!(
            d.secret_names(),
            ["postgres-password", "redis-password", "immich-jwt-secret"]
        );
    }

    #[test]
    fn absolute_directories_and_dns_are_accepted() {
        let d = check(
            "[network]\ndns = [\"192.0.2.53\"]\n[storage]\npool = \"/srv/pool/\"\nvalkey_dir = \"/srv/other/valkey\"\n",
        )
        .unwrap();
        assert_eq!(d.pool, Path::new("/srv/pool"));
        assert_eq!(d.dirs.valkey, Path::new("/srv/other/valkey"));
        assert_eq!(d.dns, ["192.0.2.53".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn valkey_without_password_needs_no_secret() {
        let d =
            check("[valkey]\nrequire_password = false\npassword_secret = \"immich-jwt-secret\"\n")
                .unwrap();
        assert_eq!(d.secret_names(), ["postgres-password", "immich-jwt-secret"]);
    }
}
