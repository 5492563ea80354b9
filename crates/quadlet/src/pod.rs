//! The `[Pod]` section of `.pod` files (podman 5.0).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::model::{Body, RawEntry, Reader, Writer, private};
use crate::naming::UnitKind;
use crate::syntax::{EntryError, UnitFile};
use crate::values::{KeyValue, VolumeMount};

/// The `[Pod]` section: what `podman pod create` the service performs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Pod {
    /// `PodName=`: podman's name for the pod (default `systemd-<file name>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    /// `Network=`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub network: Vec<String>,
    /// `NetworkAlias=` (podman 5.2).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub network_alias: Vec<String>,
    /// `PublishPort=`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub publish_port: Vec<String>,
    /// `Volume=`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volume: Vec<VolumeMount>,
    /// `IP=` (podman 5.3).
    #[serde(rename = "IP", skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ipv4Addr>,
    /// `IP6=` (podman 5.3).
    #[serde(rename = "IP6", skip_serializing_if = "Option::is_none")]
    pub ip6: Option<Ipv6Addr>,
    /// `HostName=` (podman 5.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_name: Option<String>,
    /// `DNS=` (podman 5.3).
    #[serde(rename = "DNS", skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    /// `AddHost=` (podman 5.3).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub add_host: Vec<String>,
    /// `ShmSize=` (podman 5.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<String>,
    /// `UserNS=` (podman 5.3).
    #[serde(rename = "UserNS", skip_serializing_if = "Option::is_none")]
    pub user_ns: Option<String>,
    /// `Label=` (podman 5.6).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub label: Vec<KeyValue>,
    /// `PodmanArgs=`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub podman_args: Vec<String>,
    /// `ServiceName=` (podman 5.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Any other key, as written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<RawEntry>,
}

impl Body for Pod {
    const KIND: UnitKind = UnitKind::Pod;
}

impl private::Sealed for Pod {
    fn read_section(file: &UnitFile, path: &Path) -> Result<Self, Error> {
        let r = Reader {
            file: path,
            section: "Pod",
        };
        let mut p = Self::default();
        for e in file.entries("Pod") {
            match e.key() {
                "PodName" => Reader::text(&mut p.pod_name, e),
                "Network" => Reader::raw_line(&mut p.network, e),
                "NetworkAlias" => Reader::raw_line(&mut p.network_alias, e),
                "PublishPort" => Reader::raw_line(&mut p.publish_port, e),
                "Volume" => r.line(&mut p.volume, e)?,
                "IP" => r.single(&mut p.ip, e)?,
                "IP6" => r.single(&mut p.ip6, e)?,
                "HostName" => Reader::text(&mut p.host_name, e),
                "DNS" => Reader::raw_line(&mut p.dns, e),
                "AddHost" => Reader::raw_line(&mut p.add_host, e),
                "ShmSize" => Reader::text(&mut p.shm_size, e),
                "UserNS" => Reader::text(&mut p.user_ns, e),
                "Label" => r.words(&mut p.label, e)?,
                "PodmanArgs" => Reader::raw_line(&mut p.podman_args, e),
                "ServiceName" => Reader::text(&mut p.service_name, e),
                key => p.other.push(RawEntry::new(key, e.value())),
            }
        }
        Ok(p)
    }

    fn write_section(&self) -> Result<Vec<(String, String)>, EntryError> {
        let mut writer = Writer::new();
        let w = &mut writer;
        let Self {
            pod_name,
            network,
            network_alias,
            publish_port,
            volume,
            ip,
            ip6,
            host_name,
            dns,
            add_host,
            shm_size,
            user_ns,
            label,
            podman_args,
            service_name,
            other,
        } = self;
        w.single("PodName", pod_name.as_ref());
        w.lines("Network", network);
        w.lines("NetworkAlias", network_alias);
        w.lines("PublishPort", publish_port);
        w.lines("Volume", volume);
        w.single("IP", ip.as_ref());
        w.single("IP6", ip6.as_ref());
        w.single("HostName", host_name.as_ref());
        w.lines("DNS", dns);
        w.lines("AddHost", add_host);
        w.single("ShmSize", shm_size.as_ref());
        w.single("UserNS", user_ns.as_ref());
        w.words("Label", label);
        w.lines("PodmanArgs", podman_args);
        w.single("ServiceName", service_name.as_ref());
        w.other(other);
        writer.into_entries()
    }
}
