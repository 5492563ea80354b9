//! Podman releases: the version numbers the rules of this crate are keyed by.

use std::fmt;
use std::str::FromStr;

use crate::values::ValueError;

/// A podman release, `major.minor.patch`.
///
/// ```
/// use homelab_quadlet::PodmanVersion;
///
/// let v: PodmanVersion = "5.4.2".parse()?;
/// assert!(v >= PodmanVersion::V5_0);
/// assert!(v < PodmanVersion::V5_5);
/// assert_eq!("v5.5.0-rc1".parse::<PodmanVersion>()?, PodmanVersion::V5_5);
/// # Ok::<(), homelab_quadlet::values::ValueError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodmanVersion {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
    /// Patch version.
    pub patch: u16,
}

impl PodmanVersion {
    /// A version from its parts.
    pub const fn new(major: u16, minor: u16, patch: u16) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Podman 4.4, the first with Quadlet.
    pub const V4_4: Self = Self::new(4, 4, 0);
    /// Podman 4.5.
    pub const V4_5: Self = Self::new(4, 5, 0);
    /// Podman 4.6.
    pub const V4_6: Self = Self::new(4, 6, 0);
    /// Podman 4.7.
    pub const V4_7: Self = Self::new(4, 7, 0);
    /// Podman 4.8.
    pub const V4_8: Self = Self::new(4, 8, 0);
    /// Podman 4.9.
    pub const V4_9: Self = Self::new(4, 9, 0);
    /// Podman 5.0.
    pub const V5_0: Self = Self::new(5, 0, 0);
    /// Podman 5.1.
    pub const V5_1: Self = Self::new(5, 1, 0);
    /// Podman 5.2.
    pub const V5_2: Self = Self::new(5, 2, 0);
    /// Podman 5.3.
    pub const V5_3: Self = Self::new(5, 3, 0);
    /// Podman 5.4.
    pub const V5_4: Self = Self::new(5, 4, 0);
    /// Podman 5.5.
    pub const V5_5: Self = Self::new(5, 5, 0);
    /// Podman 5.6.
    pub const V5_6: Self = Self::new(5, 6, 0);
    /// Podman 5.7.
    pub const V5_7: Self = Self::new(5, 7, 0);
    /// Podman 5.8.
    pub const V5_8: Self = Self::new(5, 8, 0);
    /// The newest release the key table describes.
    pub const LATEST_KNOWN: Self = Self::V5_8;
}

impl fmt::Display for PodmanVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for PodmanVersion {
    type Err = ValueError;

    /// Reads `5.4.2`, `5.4`, `v5.4.2`, and ignores a suffix such as `-rc1` or `-dev`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            ValueError::new(
                "podman version",
                s,
                "expected MAJOR.MINOR[.PATCH], such as 5.4.2",
            )
        };
        let trimmed = s.trim();
        let trimmed = trimmed.strip_prefix('v').unwrap_or(trimmed);
        let core = trimmed.split(['-', '+', '~']).next().unwrap_or_default();
        let mut parts = core.split('.');
        let mut number = |required: bool| -> Result<u16, ValueError> {
            match parts.next() {
                Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                    p.parse().map_err(|_| invalid())
                }
                None if !required => Ok(0),
                _ => Err(invalid()),
            }
        };
        let major = number(true)?;
        let minor = number(true)?;
        let patch = number(false)?;
        if parts.next().is_some() {
            return Err(invalid());
        }
        Ok(Self::new(major, minor, patch))
    }
}

impl serde::Serialize for PodmanVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PodmanVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(
            "5.4.2".parse::<PodmanVersion>().unwrap(),
            PodmanVersion::new(5, 4, 2)
        );
        assert_eq!("5.4".parse::<PodmanVersion>().unwrap(), PodmanVersion::V5_4);
        assert_eq!(
            " v4.9.3-dev ".parse::<PodmanVersion>().unwrap(),
            PodmanVersion::new(4, 9, 3)
        );
        for bad in ["", "5", "5.x", "5.4.2.1", "five", "5..1", "-5.4"] {
            assert!(bad.parse::<PodmanVersion>().is_err(), "{bad:?}");
        }
        assert_eq!(PodmanVersion::new(5, 4, 2).to_string(), "5.4.2");
        assert!(
            PodmanVersion::new(5, 4, 2) > PodmanVersion::V5_4
                && PodmanVersion::new(5, 4, 2) < PodmanVersion::V5_5
        );
    }
}
