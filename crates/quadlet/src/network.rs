//! The `[Network]` section of `.network` files.

use std::net::IpAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::model::{Body, RawEntry, Reader, Writer, private};
use crate::naming::UnitKind;
use crate::syntax::{EntryError, UnitFile};
use crate::values::{IpNet, IpRange, KeyValue, parse_ip_net};

/// The `[Network]` section: what `podman network create` the service performs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Network {
    /// `NetworkName=`: podman's name for the network (default `systemd-<file name>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_name: Option<String>,
    /// `Driver=`: `bridge` (default), `macvlan`, `ipvlan`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// `Subnet=`, one per line; gateways and ranges pair with subnets in order.
    #[serde(
        with = "crate::values::ip_nets_as_text",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub subnet: Vec<IpNet>,
    /// `Gateway=`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gateway: Vec<IpAddr>,
    /// `IPRange=`.
    #[serde(rename = "IPRange", skip_serializing_if = "Vec::is_empty")]
    pub ip_range: Vec<IpRange>,
    /// `IPv6=`.
    #[serde(rename = "IPv6", skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<bool>,
    /// `Internal=`: no route out of the network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal: Option<bool>,
    /// `DisableDNS=`.
    #[serde(rename = "DisableDNS", skip_serializing_if = "Option::is_none")]
    pub disable_dns: Option<bool>,
    /// `DNS=`: servers the network's resolver forwards to.
    #[serde(rename = "DNS", skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<IpAddr>,
    /// `IPAMDriver=`.
    #[serde(rename = "IPAMDriver", skip_serializing_if = "Option::is_none")]
    pub ipam_driver: Option<String>,
    /// `Options=`: driver options.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<KeyValue>,
    /// `Label=`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub label: Vec<KeyValue>,
    /// `InterfaceName=` (podman 5.6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface_name: Option<String>,
    /// `NetworkDeleteOnStop=`: remove the network when the service stops (podman 5.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_delete_on_stop: Option<bool>,
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

impl Body for Network {
    const KIND: UnitKind = UnitKind::Network;
}

impl private::Sealed for Network {
    fn read_section(file: &UnitFile, path: &Path) -> Result<Self, Error> {
        let r = Reader {
            file: path,
            section: "Network",
        };
        let mut n = Self::default();
        for e in file.entries("Network") {
            match e.key() {
                "NetworkName" => Reader::text(&mut n.network_name, e),
                "Driver" => Reader::text(&mut n.driver, e),
                "Subnet" => r.line_with(&mut n.subnet, e, parse_ip_net)?,
                "Gateway" => {
                    if e.value().is_empty() {
                        n.gateway.clear();
                    } else {
                        let mut one: Option<IpAddr> = None;
                        r.single(&mut one, e)?;
                        n.gateway.extend(one);
                    }
                }
                "IPRange" => r.line(&mut n.ip_range, e)?,
                "IPv6" => r.boolean(&mut n.ipv6, e)?,
                "Internal" => r.boolean(&mut n.internal, e)?,
                "DisableDNS" => r.boolean(&mut n.disable_dns, e)?,
                "DNS" => {
                    if e.value().is_empty() {
                        n.dns.clear();
                    } else {
                        let mut one: Option<IpAddr> = None;
                        r.single(&mut one, e)?;
                        n.dns.extend(one);
                    }
                }
                "IPAMDriver" => Reader::text(&mut n.ipam_driver, e),
                "Options" => r.words(&mut n.options, e)?,
                "Label" => r.words(&mut n.label, e)?,
                "InterfaceName" => Reader::text(&mut n.interface_name, e),
                "NetworkDeleteOnStop" => r.boolean(&mut n.network_delete_on_stop, e)?,
                "PodmanArgs" => Reader::raw_line(&mut n.podman_args, e),
                "ServiceName" => Reader::text(&mut n.service_name, e),
                key => n.other.push(RawEntry::new(key, e.value())),
            }
        }
        Ok(n)
    }

    fn write_section(&self) -> Result<Vec<(String, String)>, EntryError> {
        let mut writer = Writer::new();
        let w = &mut writer;
        let Self {
            network_name,
            driver,
            subnet,
            gateway,
            ip_range,
            ipv6,
            internal,
            disable_dns,
            dns,
            ipam_driver,
            options,
            label,
            interface_name,
            network_delete_on_stop,
            podman_args,
            service_name,
            other,
        } = self;
        w.single("NetworkName", network_name.as_ref());
        w.single("Driver", driver.as_ref());
        w.lines("Subnet", subnet);
        w.lines("Gateway", gateway);
        w.lines("IPRange", ip_range);
        w.boolean("IPv6", *ipv6);
        w.boolean("Internal", *internal);
        w.boolean("DisableDNS", *disable_dns);
        w.lines("DNS", dns);
        w.single("IPAMDriver", ipam_driver.as_ref());
        w.words("Options", options);
        w.words("Label", label);
        w.single("InterfaceName", interface_name.as_ref());
        w.boolean("NetworkDeleteOnStop", *network_delete_on_stop);
        w.lines("PodmanArgs", podman_args);
        w.single("ServiceName", service_name.as_ref());
        w.other(other);
        writer.into_entries()
    }
}
