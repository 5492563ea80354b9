//! The `[Volume]` section of `.volume` files.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::model::{Body, RawEntry, Reader, Writer, private};
use crate::naming::UnitKind;
use crate::syntax::{EntryError, UnitFile};
use crate::values::KeyValue;

/// The `[Volume]` section: what `podman volume create` the service performs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Volume {
    /// `VolumeName=`: podman's name for the volume (default `systemd-<file name>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_name: Option<String>,
    /// `Driver=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// `Device=`: what to mount (with `Type=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// `Type=`: the filesystem type of `Device=` (`bind`, `btrfs`, ...).
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    pub fs_type: Option<String>,
    /// `Options=`: mount options of `Device=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<String>,
    /// `Copy=`: copy the image's content into the new volume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy: Option<bool>,
    /// `User=`: owner of the volume (numeric).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `Group=`: group of the volume (numeric).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `Image=`: the image of an `image` driver volume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `Label=`.
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

impl Body for Volume {
    const KIND: UnitKind = UnitKind::Volume;
}

impl private::Sealed for Volume {
    fn read_section(file: &UnitFile, path: &Path) -> Result<Self, Error> {
        let r = Reader {
            file: path,
            section: "Volume",
        };
        let mut v = Self::default();
        for e in file.entries("Volume") {
            match e.key() {
                "VolumeName" => Reader::text(&mut v.volume_name, e),
                "Driver" => Reader::text(&mut v.driver, e),
                "Device" => Reader::text(&mut v.device, e),
                "Type" => Reader::text(&mut v.fs_type, e),
                "Options" => Reader::text(&mut v.options, e),
                "Copy" => r.boolean(&mut v.copy, e)?,
                "User" => Reader::text(&mut v.user, e),
                "Group" => Reader::text(&mut v.group, e),
                "Image" => Reader::text(&mut v.image, e),
                "Label" => r.words(&mut v.label, e)?,
                "PodmanArgs" => Reader::raw_line(&mut v.podman_args, e),
                "ServiceName" => Reader::text(&mut v.service_name, e),
                key => v.other.push(RawEntry::new(key, e.value())),
            }
        }
        Ok(v)
    }

    fn write_section(&self) -> Result<Vec<(String, String)>, EntryError> {
        let mut writer = Writer::new();
        let w = &mut writer;
        let Self {
            volume_name,
            driver,
            device,
            fs_type,
            options,
            copy,
            user,
            group,
            image,
            label,
            podman_args,
            service_name,
            other,
        } = self;
        w.single("VolumeName", volume_name.as_ref());
        w.single("Driver", driver.as_ref());
        w.single("Device", device.as_ref());
        w.single("Type", fs_type.as_ref());
        w.single("Options", options.as_ref());
        w.boolean("Copy", *copy);
        w.single("User", user.as_ref());
        w.single("Group", group.as_ref());
        w.single("Image", image.as_ref());
        w.words("Label", label);
        w.lines("PodmanArgs", podman_args);
        w.single("ServiceName", service_name.as_ref());
        w.other(other);
        writer.into_entries()
    }
}
