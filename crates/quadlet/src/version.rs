//! Podman versions, and which Quadlet keys each one's generator knows.
//!
//! The generator rejects a whole unit when one of its keys is unknown to it, so a
//! unit written for a newer podman fails to start on an older one. The table here
//! says, for every key of every Quadlet section, the first podman release whose
//! generator accepts it: read from the generator of each release from 4.4 to 5.8,
//! and checked against the generators of podman 4.4.4, 4.9.3, 5.0.3, 5.4.2 and
//! 5.8.2 (no key was ever removed). [`KNOWN_RELEASES`] lists the releases whose
//! rules this crate knows.

use crate::naming::UnitKind;
pub use crate::release::PodmanVersion;
use crate::syntax::Entry;
use crate::words;

/// The podman releases (by minor version) whose generator rules this crate knows,
/// oldest first: the keys of every section and the checks that make the generator
/// refuse a file. A later release is checked by the rules of the last one.
pub const KNOWN_RELEASES: [PodmanVersion; 15] = [
    PodmanVersion::V4_4,
    PodmanVersion::V4_5,
    PodmanVersion::V4_6,
    PodmanVersion::V4_7,
    PodmanVersion::V4_8,
    PodmanVersion::V4_9,
    PodmanVersion::V5_0,
    PodmanVersion::V5_1,
    PodmanVersion::V5_2,
    PodmanVersion::V5_3,
    PodmanVersion::V5_4,
    PodmanVersion::V5_5,
    PodmanVersion::V5_6,
    PodmanVersion::V5_7,
    PodmanVersion::V5_8,
];

/// What the table knows of one key of one Quadlet section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyInfo {
    /// The key, as spelled in unit files.
    pub key: &'static str,
    /// The first podman release whose generator accepts it.
    pub since: PodmanVersion,
    /// The `podman` option with the same effect, for writing the key as
    /// `PodmanArgs=` for an older podman (`None` when there is no such option).
    pub flag: Option<&'static str>,
}

const fn k(key: &'static str, since: PodmanVersion) -> KeyInfo {
    KeyInfo {
        key,
        since,
        flag: None,
    }
}

const fn f(key: &'static str, since: PodmanVersion, flag: &'static str) -> KeyInfo {
    KeyInfo {
        key,
        since,
        flag: Some(flag),
    }
}

use PodmanVersion as V;

const CONTAINER_KEYS: &[KeyInfo] = &[
    k("AddCapability", V::V4_4),
    k("AddDevice", V::V4_4),
    f("AddHost", V::V5_3, "--add-host"),
    k("Annotation", V::V4_4),
    k("AppArmor", V::V5_8),
    k("AutoUpdate", V::V4_6),
    f("CgroupsMode", V::V5_3, "--cgroups"),
    k("ContainerName", V::V4_4),
    k("ContainersConfModule", V::V4_8),
    f("DNS", V::V4_7, "--dns"),
    f("DNSOption", V::V4_7, "--dns-option"),
    f("DNSSearch", V::V4_7, "--dns-search"),
    k("DropCapability", V::V4_4),
    f("Entrypoint", V::V5_0, "--entrypoint"),
    k("Environment", V::V4_4),
    k("EnvironmentFile", V::V4_4),
    k("EnvironmentHost", V::V4_4),
    k("Exec", V::V4_4),
    k("ExposeHostPort", V::V4_4),
    f("GIDMap", V::V4_8, "--gidmap"),
    k("GlobalArgs", V::V4_8),
    k("Group", V::V4_4),
    f("GroupAdd", V::V5_1, "--group-add"),
    f("HealthCmd", V::V4_5, "--health-cmd"),
    f("HealthInterval", V::V4_5, "--health-interval"),
    f("HealthLogDestination", V::V5_3, "--health-log-destination"),
    f("HealthMaxLogCount", V::V5_3, "--health-max-log-count"),
    f("HealthMaxLogSize", V::V5_3, "--health-max-log-size"),
    f("HealthOnFailure", V::V4_5, "--health-on-failure"),
    f("HealthRetries", V::V4_5, "--health-retries"),
    f("HealthStartPeriod", V::V4_5, "--health-start-period"),
    f("HealthStartupCmd", V::V4_5, "--health-startup-cmd"),
    f(
        "HealthStartupInterval",
        V::V4_5,
        "--health-startup-interval",
    ),
    f("HealthStartupRetries", V::V4_5, "--health-startup-retries"),
    f("HealthStartupSuccess", V::V4_5, "--health-startup-success"),
    f("HealthStartupTimeout", V::V4_5, "--health-startup-timeout"),
    f("HealthTimeout", V::V4_5, "--health-timeout"),
    f("HostName", V::V4_6, "--hostname"),
    k("HttpProxy", V::V5_7),
    k("IP", V::V4_5),
    k("IP6", V::V4_5),
    k("Image", V::V4_4),
    k("Label", V::V4_4),
    k("LogDriver", V::V4_5),
    f("LogOpt", V::V5_2, "--log-opt"),
    k("Mask", V::V4_6),
    f("Memory", V::V5_5, "--memory"),
    k("Mount", V::V4_5),
    k("Network", V::V4_4),
    f("NetworkAlias", V::V5_2, "--network-alias"),
    k("NoNewPrivileges", V::V4_4),
    k("Notify", V::V4_4),
    f("PidsLimit", V::V4_7, "--pids-limit"),
    k("Pod", V::V5_0),
    k("PodmanArgs", V::V4_4),
    k("PublishPort", V::V4_4),
    f("Pull", V::V4_6, "--pull"),
    k("ReadOnly", V::V4_4),
    k("ReadOnlyTmpfs", V::V4_8),
    k("ReloadCmd", V::V5_5),
    k("ReloadSignal", V::V5_5),
    k("RemapGid", V::V4_4),
    k("RemapUid", V::V4_4),
    k("RemapUidSize", V::V4_4),
    k("RemapUsers", V::V4_4),
    f("Retry", V::V5_5, "--retry"),
    f("RetryDelay", V::V5_5, "--retry-delay"),
    k("Rootfs", V::V4_5),
    k("RunInit", V::V4_4),
    k("SeccompProfile", V::V4_4),
    f("Secret", V::V4_5, "--secret"),
    k("SecurityLabelDisable", V::V4_5),
    k("SecurityLabelFileType", V::V4_5),
    k("SecurityLabelLevel", V::V4_5),
    k("SecurityLabelNested", V::V4_6),
    k("SecurityLabelType", V::V4_5),
    k("ServiceName", V::V5_3),
    f("ShmSize", V::V4_7, "--shm-size"),
    k("StartWithPod", V::V5_3),
    f("StopSignal", V::V5_2, "--stop-signal"),
    f("StopTimeout", V::V5_0, "--stop-timeout"),
    f("SubGIDMap", V::V4_8, "--subgidname"),
    f("SubUIDMap", V::V4_8, "--subuidname"),
    f("Sysctl", V::V4_6, "--sysctl"),
    k("Timezone", V::V4_4),
    f("Tmpfs", V::V4_5, "--tmpfs"),
    f("UIDMap", V::V4_8, "--uidmap"),
    f("Ulimit", V::V4_7, "--ulimit"),
    k("Unmask", V::V4_6),
    k("User", V::V4_4),
    f("UserNS", V::V4_5, "--userns"),
    k("VolatileTmp", V::V4_4),
    k("Volume", V::V4_4),
    f("WorkingDir", V::V4_6, "--workdir"),
];

const NETWORK_KEYS: &[KeyInfo] = &[
    k("ContainersConfModule", V::V4_8),
    f("DNS", V::V4_7, "--dns"),
    k("DisableDNS", V::V4_4),
    k("Driver", V::V4_4),
    k("Gateway", V::V4_4),
    k("GlobalArgs", V::V4_8),
    k("IPAMDriver", V::V4_4),
    k("IPRange", V::V4_4),
    k("IPv6", V::V4_4),
    f("InterfaceName", V::V5_6, "--interface-name"),
    k("Internal", V::V4_4),
    k("Label", V::V4_4),
    k("NetworkDeleteOnStop", V::V5_5),
    k("NetworkName", V::V4_7),
    k("Options", V::V4_4),
    k("PodmanArgs", V::V4_6),
    k("ServiceName", V::V5_3),
    k("Subnet", V::V4_4),
];

const VOLUME_KEYS: &[KeyInfo] = &[
    k("ContainersConfModule", V::V4_8),
    k("Copy", V::V4_4),
    k("Device", V::V4_4),
    k("Driver", V::V4_8),
    k("GlobalArgs", V::V4_8),
    k("Group", V::V4_4),
    k("Image", V::V4_8),
    k("Label", V::V4_4),
    k("Options", V::V4_4),
    k("PodmanArgs", V::V4_6),
    k("ServiceName", V::V5_3),
    k("Type", V::V4_4),
    k("User", V::V4_4),
    k("VolumeName", V::V4_7),
];

const POD_KEYS: &[KeyInfo] = &[
    f("AddHost", V::V5_3, "--add-host"),
    k("ContainersConfModule", V::V5_0),
    f("DNS", V::V5_3, "--dns"),
    f("DNSOption", V::V5_3, "--dns-option"),
    f("DNSSearch", V::V5_3, "--dns-search"),
    f("ExitPolicy", V::V5_6, "--exit-policy"),
    f("GIDMap", V::V5_3, "--gidmap"),
    k("GlobalArgs", V::V5_0),
    f("HostName", V::V5_5, "--hostname"),
    f("IP", V::V5_3, "--ip"),
    f("IP6", V::V5_3, "--ip6"),
    f("Label", V::V5_6, "--label"),
    k("Network", V::V5_0),
    f("NetworkAlias", V::V5_2, "--network-alias"),
    k("PodName", V::V5_0),
    k("PodmanArgs", V::V5_0),
    k("PublishPort", V::V5_0),
    k("RemapGid", V::V5_3),
    k("RemapUid", V::V5_3),
    k("RemapUidSize", V::V5_3),
    k("RemapUsers", V::V5_3),
    k("ServiceName", V::V5_3),
    f("ShmSize", V::V5_4, "--shm-size"),
    k("StopTimeout", V::V5_7),
    f("SubGIDMap", V::V5_3, "--subgidname"),
    f("SubUIDMap", V::V5_3, "--subuidname"),
    f("UIDMap", V::V5_3, "--uidmap"),
    f("UserNS", V::V5_3, "--userns"),
    k("Volume", V::V5_0),
];

const KUBE_KEYS: &[KeyInfo] = &[
    k("AutoUpdate", V::V4_7),
    k("ConfigMap", V::V4_4),
    k("ContainersConfModule", V::V4_8),
    k("ExitCodePropagation", V::V4_6),
    k("GlobalArgs", V::V4_8),
    k("KubeDownForce", V::V4_8),
    k("LogDriver", V::V4_5),
    k("LogOpt", V::V5_2),
    k("Network", V::V4_4),
    k("PodmanArgs", V::V4_6),
    k("PublishPort", V::V4_4),
    k("RemapGid", V::V4_4),
    k("RemapUid", V::V4_4),
    k("RemapUidSize", V::V4_4),
    k("RemapUsers", V::V4_4),
    k("ServiceName", V::V5_3),
    k("SetWorkingDirectory", V::V4_7),
    k("UserNS", V::V4_5),
    k("Yaml", V::V4_4),
];

const IMAGE_KEYS: &[KeyInfo] = &[
    k("AllTags", V::V4_8),
    k("Arch", V::V4_8),
    k("AuthFile", V::V4_8),
    k("CertDir", V::V4_8),
    k("ContainersConfModule", V::V4_8),
    k("Creds", V::V4_8),
    k("DecryptionKey", V::V4_8),
    k("GlobalArgs", V::V4_8),
    k("Image", V::V4_8),
    k("ImageTag", V::V4_8),
    k("OS", V::V4_8),
    k("PodmanArgs", V::V4_8),
    k("Policy", V::V5_6),
    k("Retry", V::V5_5),
    k("RetryDelay", V::V5_5),
    k("ServiceName", V::V5_3),
    k("TLSVerify", V::V4_8),
    k("Variant", V::V4_8),
];

const BUILD_KEYS: &[KeyInfo] = &[
    k("Annotation", V::V5_2),
    k("Arch", V::V5_2),
    k("AuthFile", V::V5_2),
    f("BuildArg", V::V5_7, "--build-arg"),
    k("ContainersConfModule", V::V5_2),
    k("DNS", V::V5_2),
    k("DNSOption", V::V5_2),
    k("DNSSearch", V::V5_2),
    k("Environment", V::V5_2),
    k("File", V::V5_2),
    k("ForceRM", V::V5_2),
    k("GlobalArgs", V::V5_2),
    k("GroupAdd", V::V5_2),
    f("IgnoreFile", V::V5_7, "--ignorefile"),
    k("ImageTag", V::V5_2),
    k("Label", V::V5_2),
    k("Network", V::V5_2),
    k("PodmanArgs", V::V5_2),
    k("Pull", V::V5_2),
    k("Retry", V::V5_5),
    k("RetryDelay", V::V5_5),
    k("Secret", V::V5_2),
    k("ServiceName", V::V5_3),
    k("SetWorkingDirectory", V::V5_2),
    k("TLSVerify", V::V5_2),
    k("Target", V::V5_2),
    k("Variant", V::V5_2),
    k("Volume", V::V5_2),
];

const ARTIFACT_KEYS: &[KeyInfo] = &[
    k("Artifact", V::V5_7),
    k("AuthFile", V::V5_7),
    k("CertDir", V::V5_7),
    k("ContainersConfModule", V::V5_7),
    k("Creds", V::V5_7),
    k("DecryptionKey", V::V5_7),
    k("GlobalArgs", V::V5_7),
    k("PodmanArgs", V::V5_7),
    k("Quiet", V::V5_7),
    k("Retry", V::V5_7),
    k("RetryDelay", V::V5_7),
    k("ServiceName", V::V5_7),
    k("TLSVerify", V::V5_7),
];

const QUADLET_KEYS: &[KeyInfo] = &[k("DefaultDependencies", V::V5_3)];

/// The name of the section every Quadlet file may have for generator options.
pub const QUADLET_SECTION: &str = "Quadlet";

/// Every key the generator knows in the main section of a unit kind (for example
/// `[Container]` of a `.container` file), in alphabetical order.
pub fn keys(kind: UnitKind) -> &'static [KeyInfo] {
    match kind {
        UnitKind::Container => CONTAINER_KEYS,
        UnitKind::Network => NETWORK_KEYS,
        UnitKind::Volume => VOLUME_KEYS,
        UnitKind::Pod => POD_KEYS,
        UnitKind::Kube => KUBE_KEYS,
        UnitKind::Image => IMAGE_KEYS,
        UnitKind::Build => BUILD_KEYS,
        UnitKind::Artifact => ARTIFACT_KEYS,
    }
}

/// Every key of the `[Quadlet]` section.
pub fn quadlet_section_keys() -> &'static [KeyInfo] {
    QUADLET_KEYS
}

/// What the table knows of `key` in the main section of `kind`, or `None` when no
/// podman generator knows it.
///
/// ```
/// use homelab_quadlet::{key_info, PodmanVersion, UnitKind};
///
/// assert_eq!(key_info(UnitKind::Container, "HealthCmd").unwrap().since, PodmanVersion::V4_5);
/// assert_eq!(key_info(UnitKind::Container, "ServiceName").unwrap().since, PodmanVersion::V5_3);
/// assert!(key_info(UnitKind::Network, "Image").is_none());
/// ```
pub fn key_info(kind: UnitKind, key: &str) -> Option<KeyInfo> {
    keys(kind).iter().find(|i| i.key == key).copied()
}

/// `value` of a key with this `info`, written as a `PodmanArgs=` value that podman
/// `target`'s generator accepts in a `kind` unit: `None` when the key has no
/// podman option, or when `PodmanArgs=` itself is newer than `target` in that
/// kind of unit.
pub(crate) fn as_podman_args(
    kind: UnitKind,
    info: &KeyInfo,
    value: &str,
    target: PodmanVersion,
) -> Option<String> {
    let flag = info.flag?;
    let podman_args = key_info(kind, "PodmanArgs")?;
    (podman_args.since <= target && !value.is_empty()).then(|| words::join([flag, value]))
}

/// What the table knows of a key of the `[Quadlet]` section.
pub fn quadlet_key_info(key: &str) -> Option<KeyInfo> {
    QUADLET_KEYS.iter().find(|i| i.key == key).copied()
}

/// Features that are not keys but values or unit kinds, with the release that
/// brought them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Feature {
    /// `Notify=healthy`: the unit is ready when the health check passes.
    NotifyHealthy,
    /// `Network=NAME.container`: join another Quadlet container's network.
    NetworkOfContainerUnit,
    /// Quadlet file names (`foo.network`, `db.container`) in `[Unit]` dependencies,
    /// translated to their service names.
    UnitFileDependencies,
    /// `Environment=NAME` without a value, taken from the host.
    EnvironmentFromHost,
}

impl Feature {
    /// The first release with the feature.
    pub fn since(self) -> PodmanVersion {
        match self {
            Self::NotifyHealthy => V::V5_0,
            Self::NetworkOfContainerUnit => V::V5_3,
            Self::UnitFileDependencies => V::V5_5,
            Self::EnvironmentFromHost => V::V5_6,
        }
    }

    /// How a unit writes the feature, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::NotifyHealthy => "`Notify=healthy`",
            Self::NetworkOfContainerUnit => "`Network=` naming a .container file",
            Self::UnitFileDependencies => "a Quadlet file name in a `[Unit]` dependency",
            Self::EnvironmentFromHost => "`Environment=` with a name and no value",
        }
    }

    /// What an older generator, which converts the file anyway, makes of it.
    pub fn effect_before(self) -> &'static str {
        match self {
            Self::NotifyHealthy => {
                "reads it as `Notify=no`: the service is ready as soon as the container runs, without waiting for its health check"
            }
            Self::NetworkOfContainerUnit => {
                "passes the file name to podman as the name of a network, which does not exist: the service fails when it starts"
            }
            Self::UnitFileDependencies => {
                "leaves the name to systemd, which has no unit of that name: the dependency fails when the service starts"
            }
            Self::EnvironmentFromHost => "drops the entry: the container does not get the variable",
        }
    }

    /// The feature an entry of the main section of a `kind` unit uses through
    /// its value, where that meaning is newer than the key.
    pub(crate) fn of_value(kind: UnitKind, entry: &Entry) -> Option<Self> {
        match entry.key() {
            "Notify" if entry.unquoted().eq_ignore_ascii_case("healthy") => {
                Some(Self::NotifyHealthy)
            }
            "Network"
                if entry
                    .value()
                    .split(':')
                    .next()
                    .is_some_and(|n| n.ends_with(".container")) =>
            {
                Some(Self::NetworkOfContainerUnit)
            }
            "Environment"
                if kind == UnitKind::Container
                    && words::split(entry.value())
                        .unwrap_or_default()
                        .iter()
                        .any(|w| !w.contains('=')) =>
            {
                Some(Self::EnvironmentFromHost)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_unique() {
        for kind in UnitKind::ALL {
            let table = keys(kind);
            for pair in table.windows(2) {
                assert!(
                    pair[0].key < pair[1].key,
                    "{kind:?}: {} / {}",
                    pair[0].key,
                    pair[1].key
                );
            }
            assert!(table.iter().all(|i| i.since >= kind.since()), "{kind:?}");
        }
    }
}
