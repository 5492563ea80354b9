//! Subnets in CIDR notation: the `ipnet` crate's [`IpNet`], which
//! `homelab-quadlet` takes too, read with this crate's [`Error::InvalidCidr`].

use std::net::IpAddr;

pub use ipnet::IpNet;

use crate::Error;

/// Reads a subnet in CIDR notation, such as `10.89.5.0/24`: an `IPv4` or `IPv6`
/// address, `/`, and a prefix length in digits of at most 32 or 128 bits. The
/// address is kept as written (`10.89.5.7/24` stays that; [`IpNet::trunc`]
/// gives `10.89.5.0/24`).
///
/// ```
/// use homelab_podman::{IpNet, parse_cidr};
///
/// let photos: IpNet = parse_cidr("10.89.5.0/24")?;
/// assert!(photos.contains(&"10.89.5.1".parse::<std::net::IpAddr>()?));
/// assert_eq!(parse_cidr("10.89.5.7/24")?.trunc(), photos);
/// let err = parse_cidr("10.89.5.0/33").unwrap_err();
/// assert!(err.to_string().contains("the prefix length 33 is longer than 32"), "{err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::InvalidCidr`], saying what is wrong with the text.
pub fn parse_cidr(text: &str) -> Result<IpNet, Error> {
    let invalid = |reason: &str| Error::InvalidCidr {
        input: text.to_owned(),
        reason: reason.to_owned(),
    };
    let (addr, prefix) = text
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
    IpNet::new(addr, prefix).map_err(|_| {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        invalid(&format!("the prefix length {prefix} is longer than {max}"))
    })
}

/// Whether two subnets share an address. Subnets either nest or are apart, so
/// they overlap exactly when one contains the other; subnets of different
/// families never overlap.
pub(crate) fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(b) || b.contains(a)
}

/// Whether the address is written with host bits set (`10.89.5.7/24`), which
/// podman refuses for a network's subnet.
pub(crate) fn has_host_bits(net: &IpNet) -> bool {
    net.addr() != net.network()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree as _;

    fn c(s: &str) -> IpNet {
        parse_cidr(s).unwrap()
    }

    #[test]
    fn parses_and_renders() {
        assert_eq!(c("10.89.5.0/24").to_string(), "10.89.5.0/24");
        assert_eq!(c("fd00::/64").to_string(), "fd00::/64");
        assert_eq!(c("10.89.5.7/24").to_string(), "10.89.5.7/24");
        assert_eq!(c("10.89.5.7/24").trunc().to_string(), "10.89.5.0/24");
        assert!(has_host_bits(&c("10.89.5.7/24")));
        assert!(!has_host_bits(&c("0.0.0.0/0")));
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
            ("10.89.5.0/999", "too large"),
            ("/24", "not an IP address"),
        ] {
            let e = parse_cidr(input).unwrap_err();
            assert!(
                matches!(&e, Error::InvalidCidr { input: i, .. } if i == input),
                "{e:?}"
            );
            let text = e.to_string();
            assert!(text.contains(reason), "{input}: {text}");
            assert!(text.contains(input), "{input}: {text}");
        }
    }

    #[test]
    fn overlap_cases() {
        let o = |a: &str, b: &str| overlaps(&c(a), &c(b));
        assert!(o("10.89.5.0/24", "10.89.5.0/24"));
        assert!(o("10.89.5.0/24", "10.89.5.128/25"));
        assert!(o("10.89.5.128/25", "10.89.0.0/16"));
        assert!(o("0.0.0.0/0", "192.168.1.0/24"));
        assert!(!o("10.89.5.0/24", "10.89.4.0/24"));
        assert!(!o("10.89.5.0/25", "10.89.5.128/25"));
        assert!(!o("10.0.0.0/8", "fd00::/8"));
        assert!(!o("0.0.0.0/0", "::/0"));
        assert!(o("fd00::/64", "fd00::1:0/112"));
        assert!(!o("fd00::/64", "fd00:0:0:1::/64"));
        // Written with host bits: compared by the subnet they denote.
        assert!(o("10.89.5.7/24", "10.89.5.200/32"));
    }

    fn v4() -> impl Strategy<Value = IpNet> {
        (any::<u32>(), 0u8..=32).prop_map(|(a, p)| IpNet::new(IpAddr::V4(a.into()), p).unwrap())
    }

    fn v6() -> impl Strategy<Value = IpNet> {
        (any::<u128>(), 0u8..=128).prop_map(|(a, p)| IpNet::new(IpAddr::V6(a.into()), p).unwrap())
    }

    /// The first and last address of an `IPv4` subnet, by arithmetic on its
    /// size: the oracle for overlaps.
    fn range(net: &IpNet) -> (u64, u64) {
        let IpAddr::V4(addr) = net.addr() else {
            unreachable!()
        };
        let size = 1u64 << (32 - net.prefix_len());
        let start = u64::from(u32::from(addr)) / size * size;
        (start, start + size - 1)
    }

    /// Text shaped like a subnet: mostly valid, sometimes with a bad octet, a
    /// leading zero, or a prefix that is too long or not a number.
    const CIDR_LIKE: &str = "((1?[0-9]?[0-9]|2[0-5][0-9])\\.){3}(1?[0-9]?[0-9]|2[0-5][0-9])/([0-9]{1,2}|[0-9+x]{0,4})\
        |[0-9a-f]{0,4}(:[0-9a-f]{0,4}){2,4}/([0-9]{1,3}|[0-9+]{0,4})";

    #[test]
    fn cidr_like_text_is_often_valid_and_often_not() {
        // The positive control of the property below: it sees both outcomes.
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = proptest::string::string_regex(CIDR_LIKE).unwrap();
        let accepted = (0..1000)
            .filter(|_| {
                let text = strategy.new_tree(&mut runner).unwrap().current();
                parse_cidr(&text).is_ok()
            })
            .count();
        assert!(
            (200..=900).contains(&accepted),
            "{accepted} of 1000 accepted"
        );
    }

    proptest! {
        #[test]
        fn render_then_parse_gives_back_the_value(cidr in prop_oneof![v4(), v6()]) {
            let text = cidr.to_string();
            prop_assert_eq!(parse_cidr(&text).unwrap(), cidr);
            prop_assert_eq!(text, format!("{}/{}", cidr.addr(), cidr.prefix_len()));
        }

        #[test]
        fn overlap_is_symmetric_and_matches_ranges(a in v4(), b in v4()) {
            prop_assert_eq!(overlaps(&a, &b), overlaps(&b, &a));
            let ((a0, a1), (b0, b1)) = (range(&a), range(&b));
            prop_assert_eq!(overlaps(&a, &b), a0 <= b1 && b0 <= a1, "{} {}", a, b);
        }

        #[test]
        fn a_subnet_holds_its_addresses_and_overlaps_itself(a in prop_oneof![v4(), v6()]) {
            prop_assert!(a.contains(&a.network()) && a.contains(&a.addr()));
            prop_assert!(overlaps(&a, &a));
            prop_assert!(!has_host_bits(&a.trunc()));
            prop_assert_eq!(has_host_bits(&a), a.trunc() != a);
        }

        #[test]
        fn cidr_like_text_reads_as_the_address_and_prefix_it_names(text in CIDR_LIKE) {
            // The oracle: the standard library's address parser and the
            // prefix's own digits.
            let (addr, prefix) = text.split_once('/').unwrap();
            let expected = addr.parse::<IpAddr>().ok().and_then(|addr| {
                let digits = !prefix.is_empty() && prefix.len() <= 3
                    && prefix.bytes().all(|b| b.is_ascii_digit());
                let prefix = prefix.parse::<u8>().ok().filter(|_| digits)?;
                IpNet::new(addr, prefix).ok()
            });
            match parse_cidr(&text) {
                Ok(net) => {
                    prop_assert_eq!(Some(net), expected);
                    // Its rendering is canonical: it reads back as itself.
                    let rendered = net.to_string();
                    prop_assert_eq!(parse_cidr(&rendered).unwrap().to_string(), rendered);
                }
                Err(Error::InvalidCidr { input, .. }) => {
                    prop_assert_eq!(expected, None);
                    prop_assert_eq!(input, text);
                }
                Err(other) => prop_assert!(false, "{other:?}"),
            }
        }

        #[test]
        fn arbitrary_text_never_panics(s in ".{0,40}") {
            let _ = parse_cidr(&s);
        }
    }
}
