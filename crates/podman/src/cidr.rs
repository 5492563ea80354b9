//! [`Cidr`]: an IP subnet, and whether two subnets overlap.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::Error;

/// An `IPv4` or `IPv6` subnet in CIDR notation, such as `10.89.5.0/24`.
///
/// The address is kept as written (`10.89.5.7/24` stays that), so that a value
/// read from a file renders back unchanged; [`Cidr::network`] gives the first
/// address of the subnet, and comparisons of subnets ([`Cidr::overlaps`],
/// [`Cidr::contains`]) use it.
///
/// ```
/// use homelab_podman::Cidr;
///
/// let photos: Cidr = "10.89.5.0/24".parse()?;
/// assert!(photos.contains("10.89.5.1".parse()?));
/// assert!(photos.overlaps(&"10.89.0.0/16".parse()?));
/// assert!(!photos.overlaps(&"10.89.6.0/24".parse()?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// A subnet from an address and a prefix length; an error when the prefix is
    /// longer than the address (32 bits for `IPv4`, 128 for `IPv6`).
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, Error> {
        let max = max_prefix(addr);
        if prefix > max {
            return Err(Error::InvalidCidr {
                input: format!("{addr}/{prefix}"),
                reason: format!("the prefix length {prefix} is longer than {max}"),
            });
        }
        Ok(Self { addr, prefix })
    }

    /// The address as written.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The first address of the subnet (the address with its host bits cleared).
    pub fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(self.prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(self.prefix))),
        }
    }

    /// The same subnet written with its first address (`10.89.5.7/24` gives
    /// `10.89.5.0/24`).
    #[must_use]
    pub fn normalized(&self) -> Self {
        Self {
            addr: self.network(),
            prefix: self.prefix,
        }
    }

    /// Whether the address is written with host bits set (`10.89.5.7/24`), which
    /// podman refuses for a network's subnet.
    pub fn has_host_bits(&self) -> bool {
        self.addr != self.network()
    }

    /// Whether this is an `IPv4` subnet.
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// Whether `ip` lies in this subnet (never for an address of the other family).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let m = mask32(self.prefix);
                u32::from(net) & m == u32::from(ip) & m
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let m = mask128(self.prefix);
                u128::from(net) & m == u128::from(ip) & m
            }
            _ => false,
        }
    }

    /// Whether the two subnets share at least one address.
    ///
    /// Two subnets overlap exactly when the shorter prefix contains the other's
    /// first address; subnets of different families never overlap.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        if self.addr.is_ipv4() != other.addr.is_ipv4() {
            return false;
        }
        let (wide, narrow) = if self.prefix <= other.prefix {
            (self, other)
        } else {
            (other, self)
        };
        wide.contains(narrow.network())
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidCidr {
            input: s.to_owned(),
            reason: reason.to_owned(),
        };
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| invalid("there is no `/` and prefix length"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| invalid(&format!("`{addr}` is not an IP address")))?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) || prefix.len() > 3 {
            return Err(invalid(&format!(
                "`{prefix}` is not a prefix length (a number of bits)"
            )));
        }
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| invalid(&format!("`{prefix}` is too large a prefix length")))?;
        Cidr::new(addr, prefix).map_err(|_| {
            invalid(&format!(
                "the prefix length {prefix} is longer than {}",
                max_prefix(addr)
            ))
        })
    }
}

impl serde::Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_renders() {
        assert_eq!(c("10.89.5.0/24").to_string(), "10.89.5.0/24");
        assert_eq!(c("fd00::/64").to_string(), "fd00::/64");
        assert_eq!(c("10.89.5.7/24").normalized().to_string(), "10.89.5.0/24");
        assert!(c("10.89.5.7/24").has_host_bits());
        assert!(!c("0.0.0.0/0").has_host_bits());
    }

    #[test]
    fn rejects_bad_input_with_the_reason() {
        for (input, reason) in [
            ("10.89.5.0", "no `/`"),
            ("10.89.5/24", "not an IP address"),
            ("10.89.5.0/33", "longer than 32"),
            ("fd00::/129", "longer than 128"),
            ("10.89.5.0/", "not a prefix length"),
            ("10.89.5.0/+4", "not a prefix length"),
            ("10.89.5.0/2x", "not a prefix length"),
            ("10.89.5.0/9999", "not a prefix length"),
            ("/24", "not an IP address"),
        ] {
            let e = input.parse::<Cidr>().unwrap_err().to_string();
            assert!(e.contains(reason), "{input}: {e}");
            assert!(e.contains(input), "{input}: {e}");
        }
    }

    #[test]
    fn overlap_cases() {
        assert!(c("10.89.5.0/24").overlaps(&c("10.89.5.0/24")));
        assert!(c("10.89.5.0/24").overlaps(&c("10.89.5.128/25")));
        assert!(c("10.89.5.128/25").overlaps(&c("10.89.0.0/16")));
        assert!(c("0.0.0.0/0").overlaps(&c("192.168.1.0/24")));
        assert!(!c("10.89.5.0/24").overlaps(&c("10.89.4.0/24")));
        assert!(!c("10.89.5.0/25").overlaps(&c("10.89.5.128/25")));
        assert!(!c("10.0.0.0/8").overlaps(&c("fd00::/8")));
        assert!(c("fd00::/64").overlaps(&c("fd00::1:0/112")));
        assert!(!c("fd00::/64").overlaps(&c("fd00:0:0:1::/64")));
        // Written with host bits: compared by the subnet they denote.
        assert!(c("10.89.5.7/24").overlaps(&c("10.89.5.200/32")));
    }

    fn v4() -> impl Strategy<Value = Cidr> {
        (any::<u32>(), 0u8..=32).prop_map(|(a, p)| Cidr::new(IpAddr::V4(a.into()), p).unwrap())
    }

    fn v6() -> impl Strategy<Value = Cidr> {
        (any::<u128>(), 0u8..=128).prop_map(|(a, p)| Cidr::new(IpAddr::V6(a.into()), p).unwrap())
    }

    /// Brute force for small prefixes: do the two ranges of addresses intersect?
    fn ranges_intersect(a: &Cidr, b: &Cidr) -> bool {
        let range = |c: &Cidr| {
            let IpAddr::V4(n) = c.network() else {
                unreachable!()
            };
            let start = u64::from(u32::from(n));
            (start, start + (1u64 << (32 - c.prefix())) - 1)
        };
        let (a0, a1) = range(a);
        let (b0, b1) = range(b);
        a0 <= b1 && b0 <= a1
    }

    proptest! {
        #[test]
        fn render_then_parse_gives_back_the_value(cidr in prop_oneof![v4(), v6()]) {
            prop_assert_eq!(cidr.to_string().parse::<Cidr>().unwrap(), cidr);
        }

        #[test]
        fn overlap_is_symmetric_and_matches_ranges(a in v4(), b in v4()) {
            prop_assert_eq!(a.overlaps(&b), b.overlaps(&a));
            prop_assert_eq!(a.overlaps(&b), ranges_intersect(&a, &b));
        }

        #[test]
        fn a_subnet_contains_its_own_network_address(a in prop_oneof![v4(), v6()]) {
            prop_assert!(a.contains(a.network()));
            prop_assert!(a.overlaps(&a));
        }

        #[test]
        fn arbitrary_text_never_panics(s in ".{0,40}") {
            let _ = s.parse::<Cidr>();
        }
    }
}
