//! Typed values of Quadlet keys, each with a [`FromStr`] that accepts what the
//! generator accepts and a [`Display`](fmt::Display) that writes it back so that
//! parsing it again gives the same value.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration as StdDuration;

/// Why a value is not valid for its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct ValueError {
    /// What kind of value was expected ("duration", "secret", ...).
    pub what: &'static str,
    /// The rejected text.
    pub value: String,
    /// What is wrong, and how to write it instead.
    pub reason: String,
}

impl ValueError {
    pub(crate) fn new(what: &'static str, value: &str, reason: impl Into<String>) -> Self {
        Self {
            what,
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Serialises a type as its `Display` text and deserialises it with `FromStr`.
macro_rules! serde_as_string {
    ($($ty:ty),* $(,)?) => {$(
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

/// Reads a boolean the way the generator does (`1`, `yes`, `true`, `on` and their
/// opposites, any case).
pub fn parse_bool(text: &str) -> Result<bool, ValueError> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Ok(true),
        "0" | "no" | "false" | "off" => Ok(false),
        _ => Err(ValueError::new(
            "boolean",
            text,
            "write `true` or `false` (or yes/no, on/off, 1/0)",
        )),
    }
}

/// A duration in podman's (Go's) syntax: `10s`, `1m30s`, `500ms`, `1.5h`.
///
/// ```
/// use homelab_quadlet::values::Duration;
///
/// let d: Duration = "1m30s".parse()?;
/// assert_eq!(d.as_std(), std::time::Duration::from_secs(90));
/// assert_eq!(Duration::from_secs(10).to_string(), "10s");
/// # Ok::<(), homelab_quadlet::values::ValueError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(StdDuration);

impl Duration {
    /// Whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(StdDuration::from_secs(secs))
    }

    /// Milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Self(StdDuration::from_millis(millis))
    }

    /// The standard library duration.
    pub const fn as_std(self) -> StdDuration {
        self.0
    }
}

impl From<StdDuration> for Duration {
    fn from(d: StdDuration) -> Self {
        Self(d)
    }
}

const GO_UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Reads `<number><unit>` pairs; returns nanoseconds.
fn parse_units(text: &str, units: &[(&str, u128)], what: &'static str) -> Result<u128, ValueError> {
    let bad = |reason: &str| ValueError::new(what, text, reason);
    let mut rest = text.trim_start();
    let mut total: u128 = 0;
    if rest.is_empty() {
        return Err(bad("it is empty"));
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number.matches('.').count() > 1 || number == "." {
            return Err(bad("expected a number"));
        }
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        let Some(&(_, scale)) = units.iter().find(|(u, _)| *u == unit) else {
            return Err(bad(&format!(
                "unknown unit {unit:?} (use {})",
                units
                    .iter()
                    .map(|(u, _)| *u)
                    .filter(|u| !u.is_empty())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad("number too large"))?
        };
        let mut value = whole.checked_mul(scale).ok_or_else(|| bad("too large"))?;
        let mut divisor = 1u128;
        for digit in fraction.chars().take(18) {
            divisor *= 10;
            value += u128::from(digit.to_digit(10).unwrap_or(0)) * scale / divisor;
        }
        total = total.checked_add(value).ok_or_else(|| bad("too large"))?;
    }
    Ok(total)
}

fn nanos_to_std(nanos: u128, what: &'static str, text: &str) -> Result<StdDuration, ValueError> {
    let secs = u64::try_from(nanos / 1_000_000_000)
        .map_err(|_| ValueError::new(what, text, "too large"))?;
    // The remainder is below 10^9, so it fits.
    let sub = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
    Ok(StdDuration::new(secs, sub))
}

impl FromStr for Duration {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "0" {
            return Ok(Self::default());
        }
        if s.contains(char::is_whitespace) {
            return Err(ValueError::new(
                "duration",
                s,
                "spaces are not allowed (write `1m30s`)",
            ));
        }
        let nanos = parse_units(s, GO_UNITS, "duration")?;
        nanos_to_std(nanos, "duration", s).map(Self)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        for (unit, scale) in [
            ("h", 3_600_000_000_000u128),
            ("m", 60_000_000_000),
            ("s", 1_000_000_000),
            ("ms", 1_000_000),
            ("us", 1_000),
            ("ns", 1),
        ] {
            if nanos >= scale {
                write!(f, "{}{unit}", nanos / scale)?;
                nanos %= scale;
            }
        }
        Ok(())
    }
}

/// How often a health check runs: a [`Duration`], or `disable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HealthInterval {
    /// Run the check at this interval.
    Every(Duration),
    /// Never run it on a timer (`disable`).
    Disabled,
}

impl FromStr for HealthInterval {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "disable" {
            Ok(Self::Disabled)
        } else {
            s.parse().map(Self::Every)
        }
    }
}

impl fmt::Display for HealthInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Every(d) => d.fmt(f),
            Self::Disabled => f.write_str("disable"),
        }
    }
}

impl From<Duration> for HealthInterval {
    fn from(d: Duration) -> Self {
        Self::Every(d)
    }
}

/// A systemd time span (`TimeoutStartSec=`, `RestartSec=`): `900`, `5min`,
/// `1h 30min`, `infinity`. A bare number is seconds.
///
/// ```
/// use homelab_quadlet::values::TimeSpan;
///
/// assert_eq!("5min".parse::<TimeSpan>()?, TimeSpan::from_secs(300));
/// assert_eq!(TimeSpan::from_secs(900).to_string(), "900");
/// # Ok::<(), homelab_quadlet::values::ValueError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimeSpan {
    /// A finite span.
    Finite(StdDuration),
    /// No limit (`infinity`).
    Infinity,
}

impl TimeSpan {
    /// Whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self::Finite(StdDuration::from_secs(secs))
    }
}

const SYSTEMD_UNITS: &[(&str, u128)] = &[
    ("", 1_000_000_000),
    ("usec", 1_000),
    ("us", 1_000),
    ("µs", 1_000),
    ("msec", 1_000_000),
    ("ms", 1_000_000),
    ("seconds", 1_000_000_000),
    ("second", 1_000_000_000),
    ("sec", 1_000_000_000),
    ("s", 1_000_000_000),
    ("minutes", 60_000_000_000),
    ("minute", 60_000_000_000),
    ("min", 60_000_000_000),
    ("m", 60_000_000_000),
    ("hours", 3_600_000_000_000),
    ("hour", 3_600_000_000_000),
    ("hr", 3_600_000_000_000),
    ("h", 3_600_000_000_000),
    ("days", 86_400_000_000_000),
    ("day", 86_400_000_000_000),
    ("d", 86_400_000_000_000),
    ("weeks", 604_800_000_000_000),
    ("week", 604_800_000_000_000),
    ("w", 604_800_000_000_000),
];

impl FromStr for TimeSpan {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "infinity" {
            return Ok(Self::Infinity);
        }
        let nanos = parse_units(s, SYSTEMD_UNITS, "time span")?;
        nanos_to_std(nanos, "time span", s).map(Self::Finite)
    }
}

impl fmt::Display for TimeSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Infinity => f.write_str("infinity"),
            Self::Finite(d) if d.subsec_nanos() == 0 => write!(f, "{}", d.as_secs()),
            Self::Finite(d) if d.subsec_nanos() % 1_000 == 0 => write!(f, "{}us", d.as_micros()),
            // systemd has no unit below microseconds; round up to one.
            Self::Finite(d) => write!(f, "{}us", d.as_micros() + 1),
        }
    }
}

/// An IP network in CIDR notation, `10.89.5.0/24`: the [`ipnet`] crate's type,
/// which `homelab-podman` takes too, so one value serves both.
///
/// Its address is kept as written (`10.89.5.7/24` stays that), so that a value
/// read from a file renders back unchanged; [`IpNet::network`] is the first
/// address of the network and [`IpNet::trunc`] the network written with it.
/// Read one with [`parse_ip_net`], which says what is wrong with bad text;
/// [`IpNetExt`] adds what the checks of this crate ask of a network.
pub use ipnet::IpNet;

/// Reads a network in CIDR notation as the generator accepts it for `Subnet=`
/// and `IPRange=`: an `IPv4` or `IPv6` address, `/`, and a prefix length of at
/// most 32 or 128 bits written in digits. The address is kept as written.
///
/// ```
/// use homelab_quadlet::values::{IpNetExt, parse_ip_net};
///
/// let photos = parse_ip_net("10.89.5.0/24")?;
/// assert!(photos.contains(&"10.89.5.1".parse::<std::net::IpAddr>()?));
/// assert!(photos.overlaps(&parse_ip_net("10.89.0.0/16")?));
/// assert!(!photos.overlaps(&parse_ip_net("10.89.6.0/24")?));
///
/// let written = parse_ip_net("10.89.5.7/24")?;
/// assert_eq!(written.to_string(), "10.89.5.7/24");
/// assert!(written.has_host_bits());
/// assert_eq!(written.trunc(), photos);
///
/// let err = parse_ip_net("10.89.5.0/33").unwrap_err();
/// assert_eq!(err.reason, "the prefix length `33` is not a number from 0 to 32");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn parse_ip_net(text: &str) -> Result<IpNet, ValueError> {
    let bad = |reason: &str| ValueError::new("CIDR network", text, reason);
    let (addr, prefix) = text.split_once('/').ok_or_else(|| {
        bad("there is no prefix length: expected ADDRESS/PREFIX, such as 10.89.5.0/24")
    })?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| bad(&format!("`{addr}` is not an IP address")))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    // Digits only: `u8::from_str` would also take `+24`.
    Some(prefix)
        .filter(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|p| p.parse::<u8>().ok())
        .and_then(|p| IpNet::new(addr, p).ok())
        .ok_or_else(|| {
            bad(&format!(
                "the prefix length `{prefix}` is not a number from 0 to {max}"
            ))
        })
}

/// What the checks of this crate ask of an [`IpNet`] beyond what the `ipnet`
/// crate answers.
pub trait IpNetExt: sealed::Sealed {
    /// Whether the address is written with host bits set (`10.89.5.7/24`),
    /// which podman refuses for a `Subnet=`.
    fn has_host_bits(&self) -> bool;

    /// Whether the two networks share at least one address. Two networks
    /// either nest or are apart, so they overlap exactly when one contains the
    /// other; networks of different families never overlap.
    fn overlaps(&self, other: &IpNet) -> bool;

    /// Whether `ip` is an address of the network that no host (and no
    /// gateway) can take: in a network of more than two addresses, its first
    /// address and, for `IPv4`, its broadcast address (the last one).
    /// Point-to-point (`/31`, `/127`) and single-address networks reserve none.
    fn is_reserved(&self, ip: IpAddr) -> bool;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::IpNet {}
}

impl IpNetExt for IpNet {
    fn has_host_bits(&self) -> bool {
        self.addr() != self.network()
    }

    fn overlaps(&self, other: &IpNet) -> bool {
        self.contains(other) || other.contains(self)
    }

    fn is_reserved(&self, ip: IpAddr) -> bool {
        let host_bits = self.max_prefix_len() - self.prefix_len();
        if !self.contains(&ip) || host_bits < 2 {
            return false;
        }
        ip == self.network() || (ip.is_ipv4() && ip == self.broadcast())
    }
}

/// Serde for `Subnet=` lists: each network as the unit file writes it, read
/// back with [`parse_ip_net`].
pub(crate) mod ip_nets_as_text {
    use serde::de::Error as _;
    use serde::{Deserialize as _, Deserializer, Serializer};

    use super::{IpNet, parse_ip_net};

    pub(crate) fn serialize<S: Serializer>(
        nets: &[IpNet],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(nets.iter().map(ToString::to_string))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<IpNet>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|text| parse_ip_net(text).map_err(D::Error::custom))
            .collect()
    }
}

/// The addresses a network hands out: a CIDR network or a `START-END` span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpRange {
    /// `10.89.5.128/25`.
    Cidr(IpNet),
    /// `10.89.5.10-10.89.5.20`.
    Span {
        /// First address.
        start: IpAddr,
        /// Last address.
        end: IpAddr,
    },
}

impl FromStr for IpRange {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some((start, end)) = s.split_once('-') {
            let parse = |a: &str| {
                a.parse::<IpAddr>().map_err(|_| {
                    ValueError::new(
                        "IP range",
                        s,
                        "expected START-END addresses or a CIDR network",
                    )
                })
            };
            Ok(Self::Span {
                start: parse(start)?,
                end: parse(end)?,
            })
        } else {
            parse_ip_net(s).map(Self::Cidr)
        }
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cidr(net) => net.fmt(f),
            Self::Span { start, end } => write!(f, "{start}-{end}"),
        }
    }
}

/// How a secret reaches the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretType {
    /// As an environment variable (`type=env`).
    Env,
    /// As a file under `/run/secrets` (`type=mount`, podman's default).
    Mount,
}

/// A `Secret=` value: `name[,type=env|mount][,target=X][,uid=N][,gid=N][,mode=0NNN]`,
/// where the name may also be given as a `source=NAME` option (it is then
/// written first).
///
/// ```
/// use homelab_quadlet::values::{Secret, SecretType};
///
/// let s: Secret = "postgres-password,type=env,target=POSTGRES_PASSWORD".parse()?;
/// assert_eq!(s.name, "postgres-password");
/// assert_eq!(s.secret_type, Some(SecretType::Env));
/// let s: Secret = "source=postgres-password,type=env,target=POSTGRES_PASSWORD".parse()?;
/// assert_eq!(s.to_string(), "postgres-password,type=env,target=POSTGRES_PASSWORD");
/// assert_eq!(Secret::env("redis-password", "REDIS_PASSWORD").to_string(),
///            "redis-password,type=env,target=REDIS_PASSWORD");
/// # Ok::<(), homelab_quadlet::values::ValueError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Secret {
    /// The podman secret's name.
    pub name: String,
    /// `type=`.
    pub secret_type: Option<SecretType>,
    /// `target=`: the variable name (env) or file path (mount).
    pub target: Option<String>,
    /// `uid=` of the mounted file.
    pub uid: Option<u32>,
    /// `gid=` of the mounted file.
    pub gid: Option<u32>,
    /// `mode=` of the mounted file (octal).
    pub mode: Option<u32>,
}

impl Secret {
    /// A secret given to the container as environment variable `variable`.
    pub fn env(name: impl Into<String>, variable: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            secret_type: Some(SecretType::Env),
            target: Some(variable.into()),
            ..Self::default()
        }
    }

    /// A secret mounted as a file at `target` (relative paths are under
    /// `/run/secrets`).
    pub fn mount(name: impl Into<String>, target: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            secret_type: Some(SecretType::Mount),
            target: Some(target.into()),
            ..Self::default()
        }
    }
}

impl FromStr for Secret {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| ValueError::new("secret", s, reason);
        let mut parts: Vec<&str> = s.split(',').collect();
        // The name comes first (a lone word is all name), or as `source=` among
        // the options.
        let mut name = None;
        if parts.len() == 1 || !parts[0].contains('=') {
            name = Some(parts.remove(0));
        }
        let mut secret = Self::default();
        let mut mount_only = None;
        for part in parts {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| bad(format!("option {part:?} is not KEY=VALUE")))?;
            let number = |v: &str, radix: u32| {
                u32::from_str_radix(v, radix)
                    .map_err(|_| bad(format!("`{key}=` needs a number, not {v:?}")))
            };
            match key {
                "source" => name = Some(value),
                "type" => {
                    if secret.secret_type.is_some() {
                        return Err(bad("more than one `type=`".into()));
                    }
                    secret.secret_type = Some(match value {
                        "env" => SecretType::Env,
                        "mount" => SecretType::Mount,
                        _ => return Err(bad(format!("type is `env` or `mount`, not {value:?}"))),
                    });
                }
                "target" => secret.target = (!value.is_empty()).then(|| value.to_owned()),
                "uid" | "UID" => {
                    secret.uid = Some(number(value, 10)?);
                    mount_only = Some(key);
                }
                "gid" | "GID" => {
                    secret.gid = Some(number(value, 10)?);
                    mount_only = Some(key);
                }
                "mode" => {
                    secret.mode = Some(number(value, 8)?);
                    mount_only = Some(key);
                }
                _ => {
                    return Err(bad(format!(
                        "unknown option {key:?} (known: source, type, target, uid, gid, mode)"
                    )));
                }
            }
        }
        match name {
            Some(name) if name.contains(char::is_whitespace) => {
                return Err(bad("a secret's name has no whitespace".into()));
            }
            Some(name) if !name.is_empty() => name.clone_into(&mut secret.name),
            _ => {
                return Err(bad(
                    "no secret name: start with it, such as `db-password,type=env,target=DB_PASSWORD`, or give it as `source=`".into(),
                ));
            }
        }
        if let (Some(SecretType::Env), Some(key)) = (secret.secret_type, mount_only) {
            return Err(bad(format!(
                "`{key}=` is for mounted secrets, not `type=env`"
            )));
        }
        Ok(secret)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            name,
            secret_type,
            target,
            uid,
            gid,
            mode,
        } = self;
        f.write_str(name)?;
        match secret_type {
            Some(SecretType::Env) => f.write_str(",type=env")?,
            Some(SecretType::Mount) => f.write_str(",type=mount")?,
            None => {}
        }
        if let Some(target) = target {
            write!(f, ",target={target}")?;
        }
        if let Some(uid) = uid {
            write!(f, ",uid={uid}")?;
        }
        if let Some(gid) = gid {
            write!(f, ",gid={gid}")?;
        }
        if let Some(mode) = mode {
            write!(f, ",mode={mode:04o}")?;
        }
        Ok(())
    }
}

/// `SELinux` relabelling asked for by a volume's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relabel {
    /// `z`: a label every container may share.
    Shared,
    /// `Z`: a label private to this container (others lose access).
    Private,
}

/// A `Volume=` value: `[SOURCE:]TARGET[:OPTIONS]`, where SOURCE is a host path, a
/// podman volume name or a `.volume` file.
///
/// ```
/// use homelab_quadlet::values::{Relabel, VolumeMount};
///
/// let v: VolumeMount = "/srv/pg:/var/lib/postgresql/data:Z".parse()?;
/// assert!(v.is_host_path());
/// assert_eq!(v.relabel(), Some(Relabel::Private));
/// assert_eq!(v.to_string(), "/srv/pg:/var/lib/postgresql/data:Z");
/// # Ok::<(), homelab_quadlet::values::ValueError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct VolumeMount {
    /// Host path, volume name or `.volume` file (`None` for an anonymous volume).
    pub source: Option<String>,
    /// Path in the container.
    pub target: String,
    /// Options such as `Z`, `z`, `ro`, `U` (joined with commas).
    pub options: Vec<String>,
}

impl VolumeMount {
    /// `source:target` with no options.
    pub fn bind(source: impl Into<String>, target: impl Into<String>) -> Self {
        Self {
            source: Some(source.into()),
            target: target.into(),
            options: Vec::new(),
        }
    }

    /// Adds an option (`Z`, `ro`, ...).
    #[must_use]
    pub fn with_option(mut self, option: impl Into<String>) -> Self {
        self.options.push(option.into());
        self
    }

    /// Whether the source is a host path (absolute, or relative to the unit file).
    pub fn is_host_path(&self) -> bool {
        self.source
            .as_deref()
            .is_some_and(|s| s.starts_with('/') || s.starts_with('.'))
    }

    /// The `.volume` file the source names, if it names one.
    pub fn volume_unit(&self) -> Option<&str> {
        self.source.as_deref().filter(|s| s.ends_with(".volume"))
    }

    /// The `SELinux` relabelling asked for (`Z` wins over `z`).
    pub fn relabel(&self) -> Option<Relabel> {
        if self.options.iter().any(|o| o == "Z") {
            Some(Relabel::Private)
        } else if self.options.iter().any(|o| o == "z") {
            Some(Relabel::Shared)
        } else {
            None
        }
    }
}

impl FromStr for VolumeMount {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| ValueError::new("volume", s, reason);
        let mut parts = s.splitn(3, ':');
        let first = parts.next().unwrap_or_default();
        let (source, target) = match parts.next() {
            Some(target) => (Some(first), target),
            None => (None, first),
        };
        let options = parts
            .next()
            .map_or_else(Vec::new, |o| o.split(',').map(str::to_owned).collect());
        if target.is_empty() {
            return Err(bad(
                "the path in the container is empty (write SOURCE:TARGET[:OPTIONS])",
            ));
        }
        if source == Some("") {
            return Err(bad("the source is empty (write SOURCE:TARGET[:OPTIONS])"));
        }
        Ok(Self {
            source: source.map(str::to_owned),
            target: target.to_owned(),
            options,
        })
    }
}

impl fmt::Display for VolumeMount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(source) = &self.source {
            write!(f, "{source}:")?;
        }
        f.write_str(&self.target)?;
        if !self.options.is_empty() {
            write!(f, ":{}", self.options.join(","))?;
        }
        Ok(())
    }
}

/// `KEY=VALUE` (`Environment=`, `Label=`, `Annotation=`, `Options=`), or a bare `KEY`
/// (for `Environment=`, the value then comes from the host; podman 5.6).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct KeyValue {
    /// The name.
    pub key: String,
    /// The value (`None` for a bare key).
    pub value: Option<String>,
}

impl KeyValue {
    /// `key=value`.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: Some(value.into()),
        }
    }
}

impl FromStr for KeyValue {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (key, value) = match s.split_once('=') {
            Some((k, v)) => (k, Some(v.to_owned())),
            None => (s, None),
        };
        if key.is_empty() {
            // The text is left out: values here may be secrets.
            return Err(ValueError::new(
                "KEY=VALUE pair",
                "",
                "the key before `=` is empty",
            ));
        }
        Ok(Self {
            key: key.to_owned(),
            value,
        })
    }
}

impl fmt::Display for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={v}", self.key),
            None => f.write_str(&self.key),
        }
    }
}

/// Defines a keyword enum with `FromStr`, `Display` and serde as its text.
macro_rules! keyword_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident => $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),*
        }

        impl $name {
            /// The keyword as written in unit files.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),*
                }
            }
        }

        impl FromStr for $name {
            type Err = ValueError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)*
                    _ => Err(ValueError::new($what, s, concat!("expected one of:" $(, " ", $text)*))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        serde_as_string!($name);
    };
}

keyword_enum!(
    /// `AutoUpdate=`: what `podman auto-update` compares.
    AutoUpdate, "auto-update policy" {
        /// Pull from the registry when the image there is newer.
        Registry => "registry",
        /// Restart when the local image changed.
        Local => "local",
    }
);

keyword_enum!(
    /// `Pull=`: when to pull the image.
    PullPolicy, "pull policy" {
        /// Always pull.
        Always => "always",
        /// Pull when missing (podman's default).
        Missing => "missing",
        /// Never pull.
        Never => "never",
        /// Pull when the registry has a newer image.
        Newer => "newer",
    }
);

keyword_enum!(
    /// `Restart=` of `[Service]`.
    RestartPolicy, "restart policy" {
        /// Never restart.
        No => "no",
        /// Restart after a clean exit.
        OnSuccess => "on-success",
        /// Restart after a failure.
        OnFailure => "on-failure",
        /// Restart after a signal, timeout or watchdog.
        OnAbnormal => "on-abnormal",
        /// Restart after a watchdog timeout.
        OnWatchdog => "on-watchdog",
        /// Restart after an unclean signal.
        OnAbort => "on-abort",
        /// Always restart.
        Always => "always",
    }
);

keyword_enum!(
    /// `HealthOnFailure=`: what podman does when the container turns unhealthy.
    HealthOnFailure, "health failure action" {
        /// Nothing.
        None => "none",
        /// Kill the container.
        Kill => "kill",
        /// Restart the container.
        Restart => "restart",
        /// Stop the container.
        Stop => "stop",
    }
);

/// `Notify=`: when systemd considers the container started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Notify {
    /// When conmon has started it (`false`, the default).
    #[default]
    Conmon,
    /// When the container itself notifies systemd (`true`).
    Container,
    /// When its health check first passes (`healthy`; podman 5.0).
    Healthy,
}

impl FromStr for Notify {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("healthy") {
            return Ok(Self::Healthy);
        }
        match parse_bool(s) {
            Ok(true) => Ok(Self::Container),
            Ok(false) => Ok(Self::Conmon),
            Err(_) => Err(ValueError::new(
                "notify mode",
                s,
                "expected `true`, `false` or `healthy`",
            )),
        }
    }
}

impl fmt::Display for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Conmon => "false",
            Self::Container => "true",
            Self::Healthy => "healthy",
        })
    }
}

serde_as_string!(
    Duration,
    HealthInterval,
    TimeSpan,
    IpRange,
    Secret,
    VolumeMount,
    KeyValue,
    Notify
);

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: FromStr + fmt::Display + PartialEq + fmt::Debug>(text: &str)
    where
        T::Err: fmt::Debug,
    {
        let value: T = text.parse().unwrap();
        let again: T = value.to_string().parse().unwrap();
        assert_eq!(value, again, "{text}");
    }

    #[test]
    fn durations() {
        assert_eq!("10s".parse::<Duration>().unwrap(), Duration::from_secs(10));
        assert_eq!("1m30s".parse::<Duration>().unwrap().to_string(), "1m30s");
        assert_eq!(
            "1.5h".parse::<Duration>().unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!("500ms".parse::<Duration>().unwrap().to_string(), "500ms");
        assert_eq!("0".parse::<Duration>().unwrap().to_string(), "0s");
        for bad in ["", "10", "5 s", "1x", "s", "-1s", "1..5s"] {
            assert!(bad.parse::<Duration>().is_err(), "{bad:?}");
        }
        assert_eq!(
            "disable".parse::<HealthInterval>().unwrap(),
            HealthInterval::Disabled
        );
        round_trip::<Duration>("1h2m3s4ms5us6ns");
    }

    #[test]
    fn time_spans() {
        assert_eq!("900".parse::<TimeSpan>().unwrap(), TimeSpan::from_secs(900));
        assert_eq!(
            "1h 30min".parse::<TimeSpan>().unwrap(),
            TimeSpan::from_secs(5400)
        );
        assert_eq!("infinity".parse::<TimeSpan>().unwrap(), TimeSpan::Infinity);
        assert_eq!("500ms".parse::<TimeSpan>().unwrap().to_string(), "500000us");
        round_trip::<TimeSpan>("2min 500ms");
        assert!("forever".parse::<TimeSpan>().is_err());
    }

    #[test]
    fn networks() {
        let photos = net("10.89.5.0/24");
        assert!(photos.contains(&ip("10.89.5.1")));
        assert!(!photos.contains(&ip("10.89.6.1")));
        assert!(!photos.contains(&ip("::1")));
        for (bad, reason) in [
            ("10.89.5.0", "no prefix length"),
            ("10.89.5/24", "`10.89.5` is not an IP address"),
            ("/24", "`` is not an IP address"),
            ("10.89.5.0/33", "`33` is not a number from 0 to 32"),
            ("fd00::/129", "`129` is not a number from 0 to 128"),
            ("10.89.5.0/", "not a number"),
            ("10.89.5.0/+4", "`+4` is not a number"),
            ("10.89.5.0/2x", "not a number"),
            ("10.89.5.0/0024", "not a number"),
        ] {
            let err = parse_ip_net(bad).unwrap_err();
            assert!(err.reason.contains(reason), "{bad}: {err}");
            assert_eq!(err.value, bad);
        }
        for text in ["fd00::/64", "10.89.5.7/24", "0.0.0.0/0", "::/128"] {
            assert_eq!(net(text).to_string(), text);
        }
        round_trip::<IpRange>("10.89.5.10-10.89.5.20");
        round_trip::<IpRange>("10.89.5.128/25");
    }

    fn net(text: &str) -> IpNet {
        parse_ip_net(text).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn network_addresses_and_host_bits() {
        assert_eq!(net("10.89.5.7/24").network(), ip("10.89.5.0"));
        assert_eq!(net("10.89.5.7/24").trunc(), net("10.89.5.0/24"));
        assert!(net("10.89.5.7/24").has_host_bits());
        assert!(!net("10.89.5.0/24").has_host_bits());
        assert!(!net("0.0.0.0/0").has_host_bits());
        assert!(net("fd00::1/64").has_host_bits());
        assert_eq!(net("fd00::1/64").network(), ip("fd00::"));
        assert_eq!(net("10.89.5.7/32").network(), ip("10.89.5.7"));
        // A prefix longer than the family's width cannot be built.
        assert!(IpNet::new(ip("10.89.5.7"), 40).is_err());
        assert!(IpNet::new(ip("fd00::"), 129).is_err());
    }

    #[test]
    fn overlaps() {
        let photos = net("10.89.5.0/24");
        // Podman's default range of networks holds the photos network.
        assert!(net("10.89.0.0/16").overlaps(&photos));
        assert!(photos.overlaps(&net("10.89.0.0/16")));
        assert!(photos.overlaps(&photos));
        assert!(photos.overlaps(&net("10.89.5.64/26")));
        assert!(photos.overlaps(&net("10.89.5.255/32")));
        // Neighbours touch but share nothing.
        assert!(!photos.overlaps(&net("10.89.6.0/24")));
        assert!(!photos.overlaps(&net("10.89.4.0/24")));
        assert!(!net("10.89.5.0/25").overlaps(&net("10.89.5.128/25")));
        // Another family shares nothing, even the whole of it.
        assert!(!photos.overlaps(&net("::/0")));
        assert!(net("fd00:89:5::/48").overlaps(&net("fd00:89:5:1::/64")));
        assert!(!net("fd00:89:5::/48").overlaps(&net("fd00:89:6::/48")));
        // Written with host bits, a value stands for its whole network.
        assert!(net("10.89.5.9/24").overlaps(&net("10.89.5.200/30")));
    }

    #[test]
    fn reserved_addresses() {
        let photos = net("10.89.5.0/24");
        assert!(photos.is_reserved(ip("10.89.5.0")));
        assert!(photos.is_reserved(ip("10.89.5.255")));
        assert!(!photos.is_reserved(ip("10.89.5.1")));
        assert!(!photos.is_reserved(ip("10.89.5.254")));
        assert!(!photos.is_reserved(ip("10.89.6.0")), "outside");
        // Point-to-point and single-address networks use every address.
        assert!(net("10.89.5.0/30").is_reserved(ip("10.89.5.3")));
        assert!(!net("10.89.5.0/30").is_reserved(ip("10.89.5.2")));
        assert!(!net("10.89.5.0/31").is_reserved(ip("10.89.5.0")));
        assert!(!net("10.89.5.0/31").is_reserved(ip("10.89.5.1")));
        assert!(!net("10.89.5.7/32").is_reserved(ip("10.89.5.7")));
        assert!(!net("fd00::/127").is_reserved(ip("fd00::")));
        // IPv6 has no broadcast address; its first address is the subnet
        // router anycast address.
        let v6 = net("fd00::/64");
        assert!(v6.is_reserved(ip("fd00::")));
        assert!(!v6.is_reserved(ip("fd00::ffff:ffff:ffff:ffff")));
        assert!(!v6.is_reserved(ip("fd00::1")));
    }

    #[test]
    fn secrets() {
        let s: Secret = "pw,type=mount,target=pw.txt,uid=999,gid=999,mode=0400"
            .parse()
            .unwrap();
        assert_eq!(s.mode, Some(0o400));
        assert_eq!(
            s.to_string(),
            "pw,type=mount,target=pw.txt,uid=999,gid=999,mode=0400"
        );
        for bad in [
            "",
            ",type=env",
            "a,type=file",
            "a,colour=red",
            "a,uid=x",
            "a b",
            "type=env,target=X",
            "a,type=env,type=mount",
            "a,type=env,mode=0400",
        ] {
            assert!(bad.parse::<Secret>().is_err(), "{bad:?}");
        }
        // The name may come as `source=`, anywhere among the options.
        let s: Secret = "type=env,source=pw,target=PW".parse().unwrap();
        assert_eq!(s.to_string(), "pw,type=env,target=PW");
        let s: Secret = "pw,UID=7,GID=8".parse().unwrap();
        assert_eq!((s.uid, s.gid), (Some(7), Some(8)));
    }

    #[test]
    fn volumes() {
        let v: VolumeMount = "/data".parse().unwrap();
        assert_eq!((v.source, v.target.as_str()), (None, "/data"));
        let v: VolumeMount = "db.volume:/var/lib/x:ro,z".parse().unwrap();
        assert_eq!(v.volume_unit(), Some("db.volume"));
        assert_eq!(v.relabel(), Some(Relabel::Shared));
        assert!(":/x".parse::<VolumeMount>().is_err());
        assert!("/x:".parse::<VolumeMount>().is_err());
        round_trip::<VolumeMount>("a:b:c:d");
    }

    #[test]
    fn keywords() {
        assert_eq!("healthy".parse::<Notify>().unwrap(), Notify::Healthy);
        assert_eq!("yes".parse::<Notify>().unwrap(), Notify::Container);
        assert!("maybe".parse::<Notify>().is_err());
        assert_eq!(
            "registry".parse::<AutoUpdate>().unwrap(),
            AutoUpdate::Registry
        );
        let err = "sometimes".parse::<PullPolicy>().unwrap_err();
        assert!(err.reason.contains("always"), "{err}");
        assert_eq!(RestartPolicy::OnFailure.to_string(), "on-failure");
        assert!(parse_bool("On").unwrap());
    }
}
