//! Whole typed Quadlet files: `[Unit]`, the main section, `[Quadlet]`, `[Service]`,
//! `[Install]`, and any other section kept as written.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::container::Container;
use crate::model::{
    Body, InstallSection, QuadletSection, RawSection, ServiceSection, UnitSection, Writer,
    read_other_sections,
};
use crate::naming::{UnitKind, UnitNames};
use crate::network::Network;
use crate::pod::Pod;
use crate::syntax::UnitFile;
use crate::version::PodmanVersion;
use crate::volume::Volume;

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

fn parse_text(file_name: &str, text: &str) -> Result<UnitFile, Error> {
    UnitFile::parse(text).map_err(|source| Error::Parse {
        file: PathBuf::from(file_name),
        source,
    })
}

fn check_kind(file_name: &str, expected: UnitKind) -> Result<(), Error> {
    match UnitKind::of_file_name(file_name) {
        Some(found) if found == expected => Ok(()),
        Some(found) => Err(Error::WrongKind {
            file: PathBuf::from(file_name),
            expected,
            found,
        }),
        None => Err(Error::NotQuadlet {
            file: PathBuf::from(file_name),
        }),
    }
}

struct Parts<B> {
    unit: UnitSection,
    body: B,
    quadlet: QuadletSection,
    service: ServiceSection,
    install: InstallSection,
    other_sections: Vec<RawSection>,
}

fn read_parts<B: Body>(file_name: &str, file: &UnitFile) -> Result<Parts<B>, Error> {
    check_kind(file_name, B::KIND)?;
    let path = Path::new(file_name);
    let section = B::KIND.section();
    if !file.has_section(section) {
        return Err(Error::MissingSection {
            file: path.to_path_buf(),
            kind: B::KIND,
            section,
        });
    }
    Ok(Parts {
        unit: UnitSection::read(file),
        body: B::read_section(file, path)?,
        quadlet: QuadletSection::read(file, path)?,
        service: ServiceSection::read(file, path)?,
        install: InstallSection::read(file),
        other_sections: read_other_sections(
            file,
            &["Unit", section, "Quadlet", "Service", "Install"],
        ),
    })
}

fn write_parts<B: Body>(parts: &Parts<&B>, name: &Path) -> Result<UnitFile, Error> {
    let mut file = UnitFile::new();
    let mut w = Writer::new();
    parts.unit.write(&mut w);
    w.finish(&mut file, name, "Unit", false)?;
    let mut w = Writer::new();
    w.entries = parts
        .body
        .write_section()
        .map_err(|source| Error::Unwritable {
            file: name.to_path_buf(),
            section: B::KIND.section().to_owned(),
            source,
        })?;
    w.finish(&mut file, name, B::KIND.section(), true)?;
    let mut w = Writer::new();
    parts.quadlet.write(&mut w);
    w.finish(&mut file, name, "Quadlet", false)?;
    let mut w = Writer::new();
    parts.service.write(&mut w);
    w.finish(&mut file, name, "Service", false)?;
    let mut w = Writer::new();
    parts.install.write(&mut w);
    w.finish(&mut file, name, "Install", false)?;
    for section in &parts.other_sections {
        let mut w = Writer::new();
        w.other(&section.entries);
        w.finish(&mut file, name, &section.name, true)?;
    }
    Ok(file)
}

macro_rules! quadlet_unit {
    (
        $(#[$meta:meta])*
        $name:ident, $field:ident: $body:ty, $section:literal, $example:literal
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
        #[serde(default)]
        pub struct $name {
            /// `[Unit]`.
            #[serde(rename = "Unit", skip_serializing_if = "is_default")]
            pub unit: UnitSection,
            #[doc = concat!("`[", $section, "]`.")]
            #[serde(rename = $section)]
            pub $field: $body,
            /// `[Quadlet]`.
            #[serde(rename = "Quadlet", skip_serializing_if = "is_default")]
            pub quadlet: QuadletSection,
            /// `[Service]`.
            #[serde(rename = "Service", skip_serializing_if = "is_default")]
            pub service: ServiceSection,
            /// `[Install]`.
            #[serde(rename = "Install", skip_serializing_if = "is_default")]
            pub install: InstallSection,
            /// Any other section, kept as written, in order.
            #[serde(rename = "OtherSections", skip_serializing_if = "Vec::is_empty")]
            pub other_sections: Vec<RawSection>,
        }

        impl $name {
            /// Reads a file's text; `file_name` (such as
            #[doc = concat!("`", $example, "`)")]
            /// decides the kind and names the file in errors.
            ///
            /// # Errors
            /// [`Error::Parse`] for bad syntax, [`Error::WrongKind`] or
            /// [`Error::NotQuadlet`] for a file name of another kind,
            /// [`Error::MissingSection`] without the main section, and
            /// [`Error::InvalidValue`] for a value of a typed key that does not parse.
            pub fn parse(file_name: &str, text: &str) -> Result<Self, Error> {
                Self::from_unit_file(file_name, &parse_text(file_name, text)?)
            }

            /// Reads a parsed file (see [`Self::parse`]).
            ///
            /// # Errors
            /// As [`Self::parse`], without the syntax errors.
            pub fn from_unit_file(file_name: &str, file: &UnitFile) -> Result<Self, Error> {
                let Parts { unit, body, quadlet, service, install, other_sections } =
                    read_parts::<$body>(file_name, file)?;
                Ok(Self { unit, $field: body, quadlet, service, install, other_sections })
            }

            /// The unit as a [`UnitFile`], sections in the order `[Unit]`, main,
            /// `[Quadlet]`, `[Service]`, `[Install]`, others; empty ones left out
            /// (except the main section).
            ///
            /// # Errors
            /// [`Error::Unwritable`] when a value cannot be written on one line.
            pub fn to_unit_file(&self) -> Result<UnitFile, Error> {
                let name = PathBuf::from(concat!("(new)", ".", stringify!($field)));
                write_parts(
                    &Parts {
                        unit: self.unit.clone(),
                        body: &self.$field,
                        quadlet: self.quadlet.clone(),
                        service: self.service.clone(),
                        install: self.install.clone(),
                        other_sections: self.other_sections.clone(),
                    },
                    &name,
                )
            }

            /// The canonical text of the unit: deterministic, and read back by
            #[doc = concat!("[`", stringify!($name), "::parse`]")]
            /// as an equal value.
            ///
            /// # Errors
            /// [`Error::Unwritable`] when a value cannot be written on one line.
            pub fn render(&self) -> Result<String, Error> {
                Ok(self.to_unit_file()?.canonical())
            }

            /// The canonical text for a given podman release: keys that release does
            /// not know but that have an equivalent `podman` option are written as
            /// `PodmanArgs=`.
            ///
            /// # Errors
            /// [`Error::TooNew`] for a key or value the release cannot express, and
            /// the errors of [`Self::render`].
            pub fn render_for(&self, target: PodmanVersion) -> Result<String, Error> {
                let mut file = self.to_unit_file()?;
                crate::compat::adapt(
                    &mut file,
                    Path::new(concat!("(new)", ".", stringify!($field))),
                    <$body as Body>::KIND,
                    target,
                )?;
                Ok(file.canonical())
            }

            /// The names this unit gives its service and podman object when saved
            /// as `file_name`.
            ///
            /// # Errors
            /// [`Error::Unwritable`] when a value cannot be written, and
            /// [`Error::NotQuadlet`] for a file name without a Quadlet extension.
            pub fn names(&self, file_name: &str) -> Result<UnitNames, Error> {
                UnitNames::of(file_name, &self.to_unit_file()?).map_err(|_| Error::NotQuadlet {
                    file: PathBuf::from(file_name),
                })
            }
        }
    };
}

quadlet_unit!(
    /// A `.container` file.
    ///
    /// ```
    /// use homelab_quadlet::{Container, ContainerUnit, InstallSection, Secret, VolumeMount};
    ///
    /// let unit = ContainerUnit {
    ///     container: Container {
    ///         image: Some("docker.io/valkey/valkey:8".into()),
    ///         network: vec!["photos.network".into()],
    ///         secret: vec![Secret::env("redis-password", "REDIS_PASSWORD")],
    ///         volume: vec![VolumeMount::bind("/srv/redis", "/data").with_option("Z")],
    ///         ..Container::default()
    ///     },
    ///     install: InstallSection::default_target(),
    ///     ..ContainerUnit::default()
    /// };
    /// let text = unit.render()?;
    /// assert_eq!(text, "[Container]\nImage=docker.io/valkey/valkey:8\nNetwork=photos.network\n\
    ///     Secret=redis-password,type=env,target=REDIS_PASSWORD\nVolume=/srv/redis:/data:Z\n\n\
    ///     [Install]\nWantedBy=default.target\n");
    /// assert_eq!(ContainerUnit::parse("redis.container", &text)?, unit);
    /// # Ok::<(), homelab_quadlet::Error>(())
    /// ```
    ContainerUnit, container: Container, "Container", "redis.container"
);

quadlet_unit!(
    /// A `.network` file.
    ///
    /// ```
    /// use homelab_quadlet::{Network, NetworkUnit};
    ///
    /// let unit = NetworkUnit {
    ///     network: Network {
    ///         subnet: vec!["10.89.5.0/24".parse()?],
    ///         gateway: vec!["10.89.5.1".parse()?],
    ///         ..Network::default()
    ///     },
    ///     ..NetworkUnit::default()
    /// };
    /// assert_eq!(unit.render()?, "[Network]\nSubnet=10.89.5.0/24\nGateway=10.89.5.1\n");
    /// assert_eq!(unit.names("photos.network")?.service, "photos-network.service");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    NetworkUnit, network: Network, "Network", "photos.network"
);

quadlet_unit!(
    /// A `.volume` file.
    VolumeUnit, volume: Volume, "Volume", "data.volume"
);

quadlet_unit!(
    /// A `.pod` file (podman 5.0).
    PodUnit, pod: Pod, "Pod", "app.pod"
);

/// Any Quadlet file, typed when its kind has a typed model.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnyUnit {
    /// A `.container` file.
    Container(Box<ContainerUnit>),
    /// A `.network` file.
    Network(Box<NetworkUnit>),
    /// A `.volume` file.
    Volume(Box<VolumeUnit>),
    /// A `.pod` file.
    Pod(Box<PodUnit>),
    /// A `.kube`, `.image` or `.build` file, kept as parsed.
    Untyped {
        /// Its kind.
        kind: UnitKind,
        /// Its text, parsed losslessly.
        file: UnitFile,
    },
}

impl AnyUnit {
    /// Reads a file's text, typed by the extension of `file_name`.
    ///
    /// # Errors
    /// As [`ContainerUnit::parse`].
    pub fn parse(file_name: &str, text: &str) -> Result<Self, Error> {
        let file = parse_text(file_name, text)?;
        Self::from_unit_file(file_name, &file)
    }

    /// Reads a parsed file, typed by the extension of `file_name`.
    ///
    /// # Errors
    /// As [`ContainerUnit::from_unit_file`].
    pub fn from_unit_file(file_name: &str, file: &UnitFile) -> Result<Self, Error> {
        let kind = UnitKind::of_file_name(file_name).ok_or_else(|| Error::NotQuadlet {
            file: PathBuf::from(file_name),
        })?;
        Ok(match kind {
            UnitKind::Container => {
                Self::Container(Box::new(ContainerUnit::from_unit_file(file_name, file)?))
            }
            UnitKind::Network => {
                Self::Network(Box::new(NetworkUnit::from_unit_file(file_name, file)?))
            }
            UnitKind::Volume => {
                Self::Volume(Box::new(VolumeUnit::from_unit_file(file_name, file)?))
            }
            UnitKind::Pod => Self::Pod(Box::new(PodUnit::from_unit_file(file_name, file)?)),
            UnitKind::Kube | UnitKind::Image | UnitKind::Build | UnitKind::Artifact => {
                Self::Untyped {
                    kind,
                    file: file.clone(),
                }
            }
        })
    }

    /// The kind of file.
    pub fn kind(&self) -> UnitKind {
        match self {
            Self::Container(_) => UnitKind::Container,
            Self::Network(_) => UnitKind::Network,
            Self::Volume(_) => UnitKind::Volume,
            Self::Pod(_) => UnitKind::Pod,
            Self::Untyped { kind, .. } => *kind,
        }
    }

    /// The canonical text.
    ///
    /// # Errors
    /// As [`ContainerUnit::render`].
    pub fn render(&self) -> Result<String, Error> {
        match self {
            Self::Container(u) => u.render(),
            Self::Network(u) => u.render(),
            Self::Volume(u) => u.render(),
            Self::Pod(u) => u.render(),
            Self::Untyped { file, .. } => Ok(file.canonical()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::{Notify, Secret, TimeSpan, VolumeMount};

    #[test]
    fn reads_the_generator_lookup_rules() {
        let unit = ContainerUnit::parse(
            "db.container",
            "[Container]\nImage=\"docker.io/library/postgres:17\"\nExec=postgres -c \"a b\"\n\
             Environment=A=1 \"B=2 3\"\nEnvironment=\nEnvironment=C=4\nSecret=pw,type=env,target=PW other\n\
             Notify=healthy\nNotify=\nAddCapability=CAP_A CAP_B\nSecurityLabelDisable=true\n\
             [Service]\nTimeoutStartSec=5min\n[X-Mine]\nA=1\n",
        )
        .unwrap();
        let c = &unit.container;
        assert_eq!(c.image.as_deref(), Some("docker.io/library/postgres:17"));
        assert_eq!(c.exec_args().unwrap(), ["postgres", "-c", "a b"]);
        assert_eq!(c.environment.len(), 1);
        assert_eq!(c.environment[0].key, "C");
        assert_eq!(
            c.secret,
            [Secret::env("pw", "PW"), "other".parse().unwrap()]
        );
        assert_eq!(c.notify, None::<Notify>);
        assert_eq!(c.add_capability, ["CAP_A", "CAP_B"]);
        assert_eq!(c.other[0].key, "SecurityLabelDisable");
        assert_eq!(
            unit.service.timeout_start_sec,
            Some(TimeSpan::from_secs(300))
        );
        assert_eq!(unit.other_sections[0].name, "X-Mine");
        // And writes it back to an equal value.
        let again = ContainerUnit::parse("db.container", &unit.render().unwrap()).unwrap();
        assert_eq!(again, unit);
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let err = ContainerUnit::parse(
            "db.container",
            "[Container]\nImage=x\nHealthInterval=often\n",
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("db.container:3: `HealthInterval=` in [Container]"),
            "{message}"
        );
        assert!(matches!(
            ContainerUnit::parse("db.network", "[Network]\n"),
            Err(Error::WrongKind { .. })
        ));
        assert!(matches!(
            ContainerUnit::parse("db.container", "[Unit]\n"),
            Err(Error::MissingSection { .. })
        ));
        let err = NetworkUnit::parse("n.network", "[Network]\nSubnet=10.0.0.0\n").unwrap_err();
        assert!(err.to_string().contains("ADDRESS/PREFIX"), "{err}");
    }

    #[test]
    fn single_values_that_look_quoted_survive() {
        let unit = ContainerUnit {
            container: Container {
                image: Some("\"quoted\"".into()),
                health_cmd: Some(" leading space".into()),
                ..Container::default()
            },
            ..ContainerUnit::default()
        };
        let text = unit.render().unwrap();
        assert_eq!(ContainerUnit::parse("a.container", &text).unwrap(), unit);
    }

    #[test]
    fn values_that_would_read_back_differently_are_refused() {
        let mut unit = ContainerUnit::default();
        unit.container.volume = vec![VolumeMount {
            source: None,
            target: "/data".into(),
            options: vec!["Z".into()],
        }];
        let err = unit.render().unwrap_err();
        assert!(matches!(err, Error::Unwritable { .. }), "{err}");
        assert!(err.to_string().contains("`Volume=`"), "{err}");
        unit.container.volume.clear();
        unit.container.network = vec![String::new()];
        assert!(
            unit.render()
                .unwrap_err()
                .to_string()
                .contains("clear the list")
        );
        unit.container.network.clear();
        unit.container.environment = vec![crate::values::KeyValue::new("A=B", "c")];
        assert!(unit.render().is_err());
    }

    #[test]
    fn any_unit_by_extension() {
        assert_eq!(
            AnyUnit::parse("k.kube", "[Kube]\nYaml=k.yaml\n")
                .unwrap()
                .kind(),
            UnitKind::Kube
        );
        assert_eq!(
            AnyUnit::parse("p.pod", "[Pod]\n").unwrap().kind(),
            UnitKind::Pod
        );
        assert!(AnyUnit::parse("x.service", "[Service]\n").is_err());
    }
}
