//! The naming rules of Quadlet, in one place: which systemd service a file becomes,
//! which podman object it creates, and which dependencies its references imply.
//!
//! | file            | service                | podman object                      |
//! |-----------------|------------------------|------------------------------------|
//! | `foo.container` | `foo.service`          | container `systemd-foo` (`ContainerName=`) |
//! | `foo.network`   | `foo-network.service`  | network `systemd-foo` (`NetworkName=`)     |
//! | `foo.volume`    | `foo-volume.service`   | volume `systemd-foo` (`VolumeName=`)       |
//! | `foo.pod`       | `foo-pod.service`      | pod `systemd-foo` (`PodName=`)             |
//! | `foo.kube`      | `foo.service`          | (what the YAML says)               |
//! | `foo.image`     | `foo-image.service`    | image `Image=` (or `ImageTag=`)    |
//! | `foo.build`     | `foo-build.service`    | image `ImageTag=`                  |
//! | `foo.artifact`  | `foo-artifact.service` | artifact `Artifact=`               |
//!
//! `ServiceName=` in the main section replaces the service name (podman 5.3). A
//! container's default name follows the service name: `systemd-%N`.
//!
//! ```
//! use homelab_quadlet::naming::{UnitKind, UnitNames};
//! use homelab_quadlet::UnitFile;
//!
//! let file = UnitFile::parse("[Network]\nSubnet=10.89.5.0/24\n")?;
//! let names = UnitNames::of("photos.network", &file)?;
//! assert_eq!(names.kind, UnitKind::Network);
//! assert_eq!(names.service, "photos-network.service");
//! assert_eq!(names.resource.as_deref(), Some("systemd-photos"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// The generator matches extensions case-sensitively (`x.Network` is not a network
// file); so must the rules here.
#![allow(clippy::case_sensitive_file_extension_comparisons)]

use std::fmt;

use crate::release::PodmanVersion;
use crate::syntax::UnitFile;
use crate::words;

/// The kinds of Quadlet file, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitKind {
    /// `.container`: runs a container.
    Container,
    /// `.network`: creates a network.
    Network,
    /// `.volume`: creates a volume.
    Volume,
    /// `.pod`: creates and runs a pod (podman 5.0).
    Pod,
    /// `.kube`: plays a Kubernetes YAML file.
    Kube,
    /// `.image`: pulls an image (podman 4.8).
    Image,
    /// `.build`: builds an image (podman 5.2).
    Build,
    /// `.artifact`: pulls an OCI artifact (podman 5.7).
    Artifact,
}

impl UnitKind {
    /// Every kind.
    pub const ALL: [Self; 8] = [
        Self::Container,
        Self::Network,
        Self::Volume,
        Self::Pod,
        Self::Kube,
        Self::Image,
        Self::Build,
        Self::Artifact,
    ];

    /// The kind of a file name, by its extension (`None` when it is not a Quadlet
    /// file).
    pub fn of_file_name(file_name: &str) -> Option<Self> {
        let (_, extension) = file_name.rsplit_once('.')?;
        Self::ALL.into_iter().find(|k| k.extension() == extension)
    }

    /// The extension without the dot: `container`.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Container => "container",
            Self::Network => "network",
            Self::Volume => "volume",
            Self::Pod => "pod",
            Self::Kube => "kube",
            Self::Image => "image",
            Self::Build => "build",
            Self::Artifact => "artifact",
        }
    }

    /// The main section: `Container` for `[Container]`.
    pub fn section(self) -> &'static str {
        match self {
            Self::Container => "Container",
            Self::Network => "Network",
            Self::Volume => "Volume",
            Self::Pod => "Pod",
            Self::Kube => "Kube",
            Self::Image => "Image",
            Self::Build => "Build",
            Self::Artifact => "Artifact",
        }
    }

    /// What the generator appends to the file's base name for the service name.
    pub fn service_suffix(self) -> &'static str {
        match self {
            Self::Container | Self::Kube => "",
            Self::Network => "-network",
            Self::Volume => "-volume",
            Self::Pod => "-pod",
            Self::Image => "-image",
            Self::Build => "-build",
            Self::Artifact => "-artifact",
        }
    }

    /// The key that names the podman object, when the kind has one.
    pub fn name_key(self) -> Option<&'static str> {
        match self {
            Self::Container => Some("ContainerName"),
            Self::Network => Some("NetworkName"),
            Self::Volume => Some("VolumeName"),
            Self::Pod => Some("PodName"),
            Self::Image | Self::Build => Some("ImageTag"),
            Self::Artifact => Some("Artifact"),
            Self::Kube => None,
        }
    }

    /// The first podman release that reads this kind of file.
    pub fn since(self) -> PodmanVersion {
        match self {
            Self::Container | Self::Network | Self::Volume | Self::Kube => PodmanVersion::V4_4,
            Self::Image => PodmanVersion::V4_8,
            Self::Pod => PodmanVersion::V5_0,
            Self::Build => PodmanVersion::V5_2,
            Self::Artifact => PodmanVersion::V5_7,
        }
    }
}

impl fmt::Display for UnitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

/// The file name without its extension (`photos` for `photos.network`), as the
/// generator cuts it: at the last dot, unless the name starts with it.
pub fn base_name(file_name: &str) -> &str {
    match file_name.rfind('.') {
        Some(dot) if dot > 0 => &file_name[..dot],
        _ => file_name,
    }
}

/// The service a file becomes without `ServiceName=`: `photos-network.service` for
/// `photos.network`.
pub fn default_service_name(file_name: &str, kind: UnitKind) -> String {
    format!("{}{}.service", base_name(file_name), kind.service_suffix())
}

/// The podman object a file creates without a name key: `systemd-photos` for
/// `photos.network`.
pub fn default_resource_name(file_name: &str) -> String {
    format!("systemd-{}", base_name(file_name))
}

/// Whether a file name is a systemd template (`name@.container`) or instance
/// (`name@1.container`).
pub fn is_template(file_name: &str) -> bool {
    base_name(file_name).contains('@')
}

/// The names a Quadlet file gives to what it creates.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct UnitNames {
    /// The kind of file.
    pub kind: UnitKind,
    /// The file name: `photos.network`.
    pub file_name: String,
    /// The systemd service, with its `.service` suffix: `photos-network.service`.
    pub service: String,
    /// The podman object (container, network, volume, pod or image), when it can be
    /// known without systemd: `None` for `.kube` files and for names with `%`
    /// specifiers other than `%N`.
    pub resource: Option<String>,
}

/// Why names cannot be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NamingError {
    /// The file name has no Quadlet extension.
    #[error(
        "{file_name:?} is not a Quadlet file name (expected .container, .network, .volume, .pod, .kube, .image, .build or .artifact)"
    )]
    NotQuadlet {
        /// The file name.
        file_name: String,
    },
}

impl UnitNames {
    /// The names of a parsed file.
    ///
    /// # Errors
    /// [`NamingError::NotQuadlet`] when the file name has no Quadlet extension.
    pub fn of(file_name: &str, file: &UnitFile) -> Result<Self, NamingError> {
        let kind = UnitKind::of_file_name(file_name).ok_or_else(|| NamingError::NotQuadlet {
            file_name: file_name.to_owned(),
        })?;
        let section = kind.section();
        let service = match file.get(section, "ServiceName") {
            Some(name) => format!("{name}.service"),
            None => default_service_name(file_name, kind),
        };
        let service_base = service.strip_suffix(".service").unwrap_or(&service);
        let named = |key: &str| file.get(section, key).filter(|v| !v.is_empty());
        let resource = match kind {
            UnitKind::Container => {
                let name = named("ContainerName").map_or_else(
                    || {
                        if is_template(file_name) {
                            "systemd-%p_%i".to_owned()
                        } else {
                            "systemd-%N".to_owned()
                        }
                    },
                    str::to_owned,
                );
                let resolved = name.replace("%N", service_base);
                (!resolved.contains('%')).then_some(resolved)
            }
            UnitKind::Network => Some(
                named("NetworkName")
                    .map_or_else(|| default_resource_name(file_name), str::to_owned),
            ),
            UnitKind::Volume => Some(
                named("VolumeName").map_or_else(|| default_resource_name(file_name), str::to_owned),
            ),
            UnitKind::Pod => Some(
                named("PodName").map_or_else(|| default_resource_name(file_name), str::to_owned),
            ),
            UnitKind::Image => named("ImageTag")
                .or_else(|| named("Image"))
                .map(str::to_owned),
            UnitKind::Build => file
                .get_all(section, "ImageTag")
                .first()
                .map(|t| (*t).to_owned()),
            UnitKind::Artifact => named("Artifact").map(str::to_owned),
            UnitKind::Kube => None,
        };
        Ok(Self {
            kind,
            file_name: file_name.to_owned(),
            service,
            resource,
        })
    }
}

/// How a dependency is expressed in the generated service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum DependencyKind {
    /// `Requires=`.
    Requires,
    /// `After=`.
    After,
    /// `BindsTo=`.
    BindsTo,
    /// `Wants=`.
    Wants,
    /// `Before=`.
    Before,
}

impl fmt::Display for DependencyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Requires => "Requires",
            Self::After => "After",
            Self::BindsTo => "BindsTo",
            Self::Wants => "Wants",
            Self::Before => "Before",
        })
    }
}

/// A reference from one Quadlet file to another (`Network=photos.network`), which
/// the generator turns into service dependencies.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct UnitReference {
    /// The key that holds the reference: `Network`, `Volume`, `Mount`, `Image`, `Pod`.
    pub key: &'static str,
    /// The referenced file name: `photos.network`.
    pub file_name: String,
    /// The 1-based line of the entry.
    pub line: usize,
    /// The dependencies the reference adds to the referring service.
    pub implies: &'static [DependencyKind],
}

const REQUIRES_AFTER: &[DependencyKind] = &[DependencyKind::Requires, DependencyKind::After];
const BINDS_TO_AFTER: &[DependencyKind] = &[DependencyKind::BindsTo, DependencyKind::After];

/// The Quadlet files a file refers to through `Network=`, `Volume=`, `Mount=`,
/// `Image=` and `Pod=`, each with the dependencies it implies.
///
/// ```
/// use homelab_quadlet::naming::{references, DependencyKind};
/// use homelab_quadlet::UnitFile;
///
/// let file = UnitFile::parse("[Container]\nImage=x\nNetwork=photos.network\n")?;
/// let refs = references("db.container", &file);
/// assert_eq!(refs[0].file_name, "photos.network");
/// assert_eq!(refs[0].implies, [DependencyKind::Requires, DependencyKind::After]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn references(file_name: &str, file: &UnitFile) -> Vec<UnitReference> {
    let Some(kind) = UnitKind::of_file_name(file_name) else {
        return Vec::new();
    };
    let section = kind.section();
    let mut out = Vec::new();
    let mut push = |key: &'static str, target: &str, line: usize, implies| {
        out.push(UnitReference {
            key,
            file_name: target.to_owned(),
            line,
            implies,
        });
    };
    if matches!(
        kind,
        UnitKind::Container | UnitKind::Pod | UnitKind::Kube | UnitKind::Build
    ) {
        for entry in file.get_all_entries(section, "Network") {
            let name = entry.value().split(':').next().unwrap_or_default();
            if name.ends_with(".network") || name.ends_with(".container") {
                push("Network", name, entry.line(), REQUIRES_AFTER);
            }
        }
    }
    if matches!(kind, UnitKind::Container | UnitKind::Pod | UnitKind::Build) {
        for entry in file.get_all_entries(section, "Volume") {
            if let Some((source, _)) = entry.value().split_once(':')
                && (source.ends_with(".volume") || source.ends_with(".artifact"))
            {
                push("Volume", source, entry.line(), REQUIRES_AFTER);
            }
        }
    }
    if kind == UnitKind::Container {
        for entry in file.get_all_entries(section, "Mount") {
            for mount in words::split(entry.value()).unwrap_or_default() {
                for part in mount.split(',') {
                    if let Some(source) = part
                        .strip_prefix("source=")
                        .or_else(|| part.strip_prefix("src="))
                        && (source.ends_with(".volume")
                            || source.ends_with(".image")
                            || source.ends_with(".artifact"))
                    {
                        push("Mount", source, entry.line(), REQUIRES_AFTER);
                    }
                }
            }
        }
        if let Some(entry) = file.last_entry(section, "Pod") {
            let pod = entry.unquoted();
            if pod.ends_with(".pod") {
                push("Pod", pod, entry.line(), BINDS_TO_AFTER);
            }
        }
    }
    if matches!(kind, UnitKind::Container | UnitKind::Volume)
        && let Some(entry) = file.last_entry(section, "Image")
    {
        let image = entry.unquoted();
        if image.ends_with(".image") || image.ends_with(".build") {
            push("Image", image, entry.line(), REQUIRES_AFTER);
        }
    }
    out
}

/// Whether a name in a `[Unit]` dependency names a Quadlet file (`db.container`),
/// which podman 5.5 and later translate to its service.
pub fn is_quadlet_file_name(name: &str) -> bool {
    UnitKind::of_file_name(name).is_some()
}

/// The `[Unit]` keys whose values name other units, which podman 5.5 and later
/// translate when they name Quadlet files.
pub const DEPENDENCY_KEYS: &[&str] = &[
    "After",
    "Before",
    "BindsTo",
    "Conflicts",
    "OnFailure",
    "OnSuccess",
    "PartOf",
    "PropagatesReloadTo",
    "PropagatesStopTo",
    "ReloadPropagatedFrom",
    "Requires",
    "Requisite",
    "StopPropagatedFrom",
    "Upholds",
    "Wants",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn names(file_name: &str, text: &str) -> UnitNames {
        UnitNames::of(file_name, &UnitFile::parse(text).unwrap()).unwrap()
    }

    #[test]
    fn default_names() {
        let n = names("postgresql-immich.container", "[Container]\nImage=x\n");
        assert_eq!(n.service, "postgresql-immich.service");
        assert_eq!(n.resource.as_deref(), Some("systemd-postgresql-immich"));
        let n = names("photos.network", "[Network]\n");
        assert_eq!(n.service, "photos-network.service");
        assert_eq!(n.resource.as_deref(), Some("systemd-photos"));
        let n = names("data.volume", "[Volume]\n");
        assert_eq!(n.service, "data-volume.service");
        assert_eq!(n.resource.as_deref(), Some("systemd-data"));
        let n = names("app.pod", "[Pod]\n");
        assert_eq!(n.service, "app-pod.service");
        assert_eq!(n.resource.as_deref(), Some("systemd-app"));
        let n = names("k.kube", "[Kube]\nYaml=k.yaml\n");
        assert_eq!(n.service, "k.service");
        assert_eq!(n.resource, None);
        let n = names("a.b.network", "[Network]\n");
        assert_eq!(n.service, "a.b-network.service");
    }

    #[test]
    fn overrides() {
        let n = names(
            "photos.network",
            "[Network]\nNetworkName=photos\nServiceName=net\n",
        );
        assert_eq!(n.service, "net.service");
        assert_eq!(n.resource.as_deref(), Some("photos"));
        let n = names("db.container", "[Container]\nServiceName=pg\n");
        assert_eq!(n.resource.as_deref(), Some("systemd-pg"));
        let n = names(
            "db.container",
            "[Container]\nContainerName=\"postgresql\"\n",
        );
        assert_eq!(n.resource.as_deref(), Some("postgresql"));
        let n = names("db@.container", "[Container]\n");
        assert_eq!(n.resource, None);
        let n = names("i.image", "[Image]\nImage=docker.io/x/y:1\n");
        assert_eq!(n.resource.as_deref(), Some("docker.io/x/y:1"));
        assert!(UnitNames::of("x.service", &UnitFile::new()).is_err());
    }

    #[test]
    fn references_imply_dependencies() {
        let file = UnitFile::parse(
            "[Container]\nImage=b.build\nNetwork=n.network:ip=10.0.0.2\nNetwork=host\n\
             Volume=v.volume:/data:Z\nVolume=/srv:/srv\nMount=type=volume,source=m.volume,dst=/m\nPod=p.pod\n",
        )
        .unwrap();
        let refs: Vec<(&str, String)> = references("c.container", &file)
            .into_iter()
            .map(|r| (r.key, r.file_name))
            .collect();
        assert_eq!(
            refs,
            [
                ("Network", "n.network".to_owned()),
                ("Volume", "v.volume".to_owned()),
                ("Mount", "m.volume".to_owned()),
                ("Pod", "p.pod".to_owned()),
                ("Image", "b.build".to_owned()),
            ]
        );
    }
}
