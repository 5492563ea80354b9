//! Subnets written as CIDR (`10.89.5.0/24`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IP subnet (version 4 or 6): a network address and a prefix length, with no host
/// bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    address: IpAddr,
    prefix: u8,
}

/// Why a text is not a subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CidrError {
    /// No `/` between address and prefix.
    NoPrefix,
    /// The part before `/` is not an IP address.
    Address(String),
    /// The prefix is not a number in range for the address family.
    Prefix { prefix: String, max: u8 },
    /// Host bits are set: the subnet is `network`, not what was written.
    HostBits { network: Cidr },
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoPrefix => f.write_str("it has no prefix length (the `/24` part)"),
            Self::Address(a) => write!(f, "`{a}` is not an IP address"),
            Self::Prefix { prefix, max } => {
                write!(
                    f,
                    "prefix length `{prefix}` is not a number from 0 to {max}"
                )
            }
            Self::HostBits { network } => {
                write!(f, "host bits are set (the subnet would be {network})")
            }
        }
    }
}

fn to_bits(address: IpAddr) -> (u128, u8) {
    match address {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

fn mask(prefix: u8, width: u8) -> u128 {
    let all = if width == 32 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    if prefix == 0 {
        0
    } else {
        all & !((1u128 << (width - prefix)) - 1)
    }
}

impl Cidr {
    pub(crate) fn address(&self) -> IpAddr {
        self.address
    }

    pub(crate) fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies in this subnet.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let (net, width) = to_bits(self.address);
        let (bits, ip_width) = to_bits(ip);
        width == ip_width && bits & mask(self.prefix, width) == net
    }

    /// Whether `ip` is the network address or (for version 4) the broadcast address, which
    /// no gateway can use.
    pub(crate) fn is_reserved(&self, ip: IpAddr) -> bool {
        let (net, width) = to_bits(self.address);
        let (bits, _) = to_bits(ip);
        let host_mask = !mask(self.prefix, width) & mask(width, width);
        bits == net || (width == 32 && self.prefix < 31 && bits == net | host_mask)
    }

    /// Whether the two subnets share any address.
    #[cfg(test)]
    pub(crate) fn overlaps(&self, other: &Cidr) -> bool {
        self.contains(other.address) || other.contains(self.address)
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (address, prefix) = text.split_once('/').ok_or(CidrError::NoPrefix)?;
        let address: IpAddr = address
            .parse()
            .map_err(|_| CidrError::Address(address.to_owned()))?;
        let (bits, width) = to_bits(address);
        let prefix_err = || CidrError::Prefix {
            prefix: prefix.to_owned(),
            max: width,
        };
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(prefix_err());
        }
        let prefix: u8 = prefix.parse().map_err(|_| prefix_err())?;
        if prefix > width {
            return Err(prefix_err());
        }
        let network = bits & mask(prefix, width);
        if network != bits {
            let address = match address {
                IpAddr::V4(_) => IpAddr::V4(u32::try_from(network).unwrap_or_default().into()),
                IpAddr::V6(_) => IpAddr::V6(network.into()),
            };
            return Err(CidrError::HostBits {
                network: Cidr { address, prefix },
            });
        }
        Ok(Self { address, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_prints() {
        let c: Cidr = "10.89.5.0/24".parse().unwrap();
        assert_eq!(c.to_string(), "10.89.5.0/24");
        assert_eq!(c.prefix(), 24);
        let c: Cidr = "fd00:1::/64".parse().unwrap();
        assert_eq!(c.to_string(), "fd00:1::/64");
        assert!("0.0.0.0/0".parse::<Cidr>().is_ok());
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!("10.89.5.0".parse::<Cidr>(), Err(CidrError::NoPrefix));
        assert!(matches!(
            "10.89.5/24".parse::<Cidr>(),
            Err(CidrError::Address(_))
        ));
        assert!(matches!(
            "10.89.5.0/33".parse::<Cidr>(),
            Err(CidrError::Prefix { max: 32, .. })
        ));
        assert!(matches!(
            "10.89.5.0/+4".parse::<Cidr>(),
            Err(CidrError::Prefix { .. })
        ));
        let Err(CidrError::HostBits { network }) = "10.89.5.1/24".parse::<Cidr>() else {
            panic!()
        };
        assert_eq!(network.to_string(), "10.89.5.0/24");
    }

    #[test]
    fn membership() {
        let c: Cidr = "10.89.5.0/24".parse().unwrap();
        assert!(c.contains(ip("10.89.5.1")));
        assert!(c.contains(ip("10.89.5.255")));
        assert!(!c.contains(ip("10.89.6.1")));
        assert!(!c.contains(ip("::1")));
        assert!(c.is_reserved(ip("10.89.5.0")));
        assert!(c.is_reserved(ip("10.89.5.255")));
        assert!(!c.is_reserved(ip("10.89.5.1")));
        let wide: Cidr = "10.89.0.0/16".parse().unwrap();
        assert!(wide.overlaps(&c));
        assert!(c.overlaps(&wide));
        assert!(!c.overlaps(&"10.89.6.0/24".parse().unwrap()));
    }
}
