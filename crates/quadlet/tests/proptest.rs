//! Property tests: typed units render then parse back equal; the parser never
//! panics, is lossless, and its canonical form is a fixed point; formatting keeps
//! the entries and is idempotent; words and values read back what they write,
//! and a value a parser accepts renders to text that reads back the same.

// Helpers fail the test the way the tests themselves do: by panicking.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration as StdDuration;

use homelab_quadlet::values::{IpNetExt, SecretType, TimeSpan, parse_ip_net};
use homelab_quadlet::{
    AutoUpdate, Container, ContainerUnit, Duration, HealthInterval, InstallSection, IpNet, IpRange,
    KeyValue, Network, NetworkUnit, Notify, Pod, PodUnit, PullPolicy, QuadletSection, RawEntry,
    RawSection, RestartPolicy, Secret, ServiceSection, UnitFile, UnitSection, Volume, VolumeMount,
    VolumeUnit, format, words,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

/// Text for a value written as it is: no line breaks, no surrounding whitespace,
/// not ending with a backslash, no control characters.
fn raw_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9./:=,_%$@+-]([a-zA-Z0-9 ./:=,_%$@+\"'-]{0,20}[a-zA-Z0-9./:=,_%$@+\"'-])?"
}

/// Text for a single-valued key: anything printable (quotes and edge spaces are
/// handled by quoting), but not empty and not ending with a backslash.
fn single_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ./:=,_%$@+\"'-]{0,20}[a-zA-Z0-9./:=,_%$@+-]"
}

/// Text written as a quoted word: anything but NUL.
fn word_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ./:=,_%$@+\"'\\\\\t\u{1}é-]{1,16}"
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9.@_-]{0,12}"
}

fn key_value() -> impl Strategy<Value = KeyValue> {
    (
        "[A-Za-z_][A-Za-z0-9_.]{0,10}",
        option::of(prop_oneof![word_text(), Just(String::new())]),
    )
        .prop_map(|(key, value)| KeyValue { key, value })
}

fn duration() -> impl Strategy<Value = Duration> {
    (0u64..10_000_000_000_000).prop_map(|n| Duration::from(StdDuration::from_nanos(n)))
}

fn time_span() -> impl Strategy<Value = TimeSpan> {
    prop_oneof![
        Just(TimeSpan::Infinity),
        (0u64..10_000_000_000).prop_map(|us| TimeSpan::Finite(StdDuration::from_micros(us))),
    ]
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        any::<u128>().prop_map(|v| IpAddr::V6(Ipv6Addr::from(v))),
    ]
}

fn ip_net() -> impl Strategy<Value = IpNet> {
    ip().prop_flat_map(|addr| {
        let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
        (Just(addr), 0..=max).prop_map(|(addr, prefix)| IpNet::new(addr, prefix).unwrap())
    })
}

/// First and last address of an `IPv4` network, by arithmetic on its size.
fn v4_range(net: &IpNet) -> Option<(u64, u64)> {
    let IpAddr::V4(first) = net.network() else {
        return None;
    };
    let first = u64::from(u32::from(first));
    Some((first, first + (1u64 << (32 - net.prefix_len())) - 1))
}

fn secret() -> impl Strategy<Value = Secret> {
    (
        "[a-z][a-z0-9-]{0,12}",
        option::of(prop_oneof![Just(SecretType::Env), Just(SecretType::Mount)]),
        option::of("[A-Za-z_/][A-Za-z0-9_/. ]{0,10}"),
        option::of(any::<u32>()),
        option::of(any::<u32>()),
        option::of(0u32..0o7777),
    )
        .prop_map(|(name, secret_type, target, uid, gid, mode)| {
            // Owner and mode are for mounted secrets only (podman refuses them
            // with `type=env`).
            let mounted = secret_type != Some(SecretType::Env);
            Secret {
                name,
                secret_type,
                target,
                uid: uid.filter(|_| mounted),
                gid: gid.filter(|_| mounted),
                mode: mode.filter(|_| mounted),
            }
        })
}

fn volume_mount() -> impl Strategy<Value = VolumeMount> {
    (
        option::of("[/.a-zA-Z0-9_-][/a-zA-Z0-9 ._-]{0,16}[/a-zA-Z0-9._-]"),
        "/[a-zA-Z0-9/._-]{0,16}",
        vec("[a-zA-Z]{1,3}", 0..3),
    )
        .prop_map(|(source, target, options)| VolumeMount {
            // Options need a source: `TARGET:OPTIONS` reads as `SOURCE:TARGET`.
            options: if source.is_some() {
                options
            } else {
                Vec::new()
            },
            source,
            target,
        })
}

fn raw_entries(keys: &'static [&'static str]) -> impl Strategy<Value = Vec<RawEntry>> {
    vec(
        (
            proptest::sample::select(keys),
            prop_oneof![raw_text(), Just(String::new())],
        ),
        0..3,
    )
    .prop_map(|v| v.into_iter().map(|(k, v)| RawEntry::new(k, v)).collect())
}

fn names() -> impl Strategy<Value = Vec<String>> {
    vec(name(), 0..3)
}

fn unit_section() -> impl Strategy<Value = UnitSection> {
    (
        option::of(single_text()),
        names(),
        names(),
        names(),
        raw_entries(&["StartLimitBurst", "X-Anything", "JobTimeoutSec"]),
    )
        .prop_map(|(description, requires, wants, after, other)| UnitSection {
            description,
            requires,
            wants,
            after,
            other,
            ..UnitSection::default()
        })
}

fn service_section() -> impl Strategy<Value = ServiceSection> {
    (
        option::of(prop_oneof![
            Just(RestartPolicy::Always),
            Just(RestartPolicy::OnFailure),
            Just(RestartPolicy::No)
        ]),
        option::of(time_span()),
        option::of(time_span()),
        vec(raw_text(), 0..2),
        raw_entries(&["Environment", "KillSignal", "Type"]),
    )
        .prop_map(
            |(restart, timeout_start_sec, restart_sec, exec_start_pre, other)| ServiceSection {
                restart,
                timeout_start_sec,
                restart_sec,
                exec_start_pre,
                other,
                ..ServiceSection::default()
            },
        )
}

fn install_section() -> impl Strategy<Value = InstallSection> {
    (names(), names(), option::of(name())).prop_map(|(wanted_by, required_by, default_instance)| {
        InstallSection {
            wanted_by,
            required_by,
            default_instance,
            ..InstallSection::default()
        }
    })
}

fn other_sections() -> impl Strategy<Value = Vec<RawSection>> {
    vec(
        ("X-[A-Za-z]{1,8}", raw_entries(&["A", "Key", "Owner"])),
        0..3,
    )
    .prop_map(|sections| {
        let mut out: Vec<RawSection> = Vec::new();
        for (name, entries) in sections {
            if !out.iter().any(|s| s.name == name) {
                out.push(RawSection { name, entries });
            }
        }
        out
    })
}

fn container() -> impl Strategy<Value = Container> {
    let a = (
        option::of(single_text()),
        option::of(single_text()),
        vec(raw_text(), 0..3),
        vec(key_value(), 0..4),
        vec(secret(), 0..3),
        vec(volume_mount(), 0..3),
        option::of(raw_text()),
        option::of(single_text()),
    );
    let b = (
        option::of(prop_oneof![
            duration().prop_map(HealthInterval::Every),
            Just(HealthInterval::Disabled)
        ]),
        option::of(duration()),
        option::of(any::<u32>()),
        option::of(prop_oneof![
            Just(Notify::Conmon),
            Just(Notify::Container),
            Just(Notify::Healthy)
        ]),
        option::of(prop_oneof![
            Just(AutoUpdate::Registry),
            Just(AutoUpdate::Local)
        ]),
        option::of(prop_oneof![
            Just(PullPolicy::Always),
            Just(PullPolicy::Never)
        ]),
        vec(key_value(), 0..3),
        option::of(any::<bool>()),
    );
    let c = (
        vec("[A-Z_]{1,10}", 0..3),
        option::of(any::<u64>()),
        vec(raw_text(), 0..2),
        option::of(name()),
        raw_entries(&["AddDevice", "SecurityLabelType", "Sysctl", "Bogus"]),
        vec(word_text(), 0..2),
        option::of(any::<Ipv4Addr>()),
    );
    (a, b, c).prop_map(
        |(
            (image, container_name, network, environment, secret, volume, exec, health_cmd),
            (
                health_interval,
                health_timeout,
                health_retries,
                notify,
                auto_update,
                pull,
                label,
                read_only,
            ),
            (add_capability, stop_timeout, podman_args, service_name, other, mount, ip),
        )| Container {
            image,
            container_name,
            network,
            environment,
            secret,
            volume,
            exec,
            health_cmd,
            health_interval,
            health_timeout,
            health_retries,
            notify,
            auto_update,
            pull,
            label,
            read_only,
            add_capability,
            stop_timeout,
            podman_args,
            service_name,
            other,
            mount,
            ip,
            ..Container::default()
        },
    )
}

fn network() -> impl Strategy<Value = Network> {
    (
        option::of(single_text()),
        vec(ip_net(), 0..3),
        vec(ip(), 0..3),
        vec(
            prop_oneof![
                ip_net().prop_map(IpRange::Cidr),
                (ip(), ip()).prop_map(|(start, end)| IpRange::Span { start, end })
            ],
            0..2,
        ),
        option::of(any::<bool>()),
        vec(ip(), 0..2),
        vec(key_value(), 0..3),
        raw_entries(&["ContainersConfModule", "IPAMDriver2"]),
    )
        .prop_map(
            |(network_name, subnet, gateway, ip_range, internal, dns, options, other)| Network {
                network_name,
                subnet,
                gateway,
                ip_range,
                internal,
                dns,
                options,
                other,
                ..Network::default()
            },
        )
}

fn volume() -> impl Strategy<Value = Volume> {
    (
        option::of(single_text()),
        option::of(single_text()),
        option::of(any::<bool>()),
        vec(key_value(), 0..3),
    )
        .prop_map(|(volume_name, device, copy, label)| Volume {
            volume_name,
            device,
            copy,
            label,
            ..Volume::default()
        })
}

fn pod() -> impl Strategy<Value = Pod> {
    (
        option::of(single_text()),
        vec(raw_text(), 0..3),
        vec(volume_mount(), 0..2),
        option::of(any::<Ipv6Addr>()),
    )
        .prop_map(|(pod_name, publish_port, volume, ip6)| Pod {
            pod_name,
            publish_port,
            volume,
            ip6,
            ..Pod::default()
        })
}

fn quadlet_section() -> impl Strategy<Value = QuadletSection> {
    option::of(any::<bool>()).prop_map(|default_dependencies| QuadletSection {
        default_dependencies,
        ..QuadletSection::default()
    })
}

/// The entries of a parsed file, in order: what the generator sees.
fn meaning(file: &UnitFile) -> Vec<(String, String, String)> {
    file.all_entries()
        .map(|(s, e)| (s.to_owned(), e.key().to_owned(), e.value().to_owned()))
        .collect()
}

/// Unit-file-like text: headers, entries, comments, continuations, quotes.
fn unit_like_text() -> impl Strategy<Value = String> {
    vec(
        prop_oneof![
            Just("[Container]".to_owned()),
            Just("  [Unit]  ".to_owned()),
            Just(String::new()),
            Just("\\".to_owned()),
            "[#;] ?[a-z =\\\\]{0,10}",
            "[ \t]{0,2}[A-Za-z]{1,8}[ \t]{0,2}=[ \t]{0,2}[a-z \"'=\\\\]{0,12}[ \t]{0,2}",
            "[A-Za-z]{1,8}=[a-z ]{0,8}\\\\",
            "\t[a-z ]{0,8}",
        ],
        0..12,
    )
    .prop_flat_map(|lines| (Just(lines), any::<bool>(), any::<bool>()))
    .prop_map(|(lines, crlf, final_newline)| {
        let mut text = lines.join(if crlf { "\r\n" } else { "\n" });
        if final_newline {
            text.push('\n');
        }
        text
    })
}

/// Text shaped like each kind of value: often valid, often not.
const DURATION_LIKE: &str =
    "[0-9]{1,4}(\\.[0-9])?(ns|us|ms|s|m|h|min|x)?([0-9]{1,2}(s|m|ms))?| ?[0-9]{0,3}";
const TIME_SPAN_LIKE: &str =
    "[0-9]{1,4}( ?(s|min|ms|us|h|sec|x))?( [0-9]{1,2}(s|ms))?|infinity|disable";
const CIDR_LIKE: &str = "((1?[0-9]?[0-9]|2[0-5][0-9])\\.){3}(1?[0-9]?[0-9]|2[0-5][0-9])/([0-9]{1,2}|[0-9+x]{0,4})\
    |[0-9a-f]{0,4}(:[0-9a-f]{0,4}){2,4}/([0-9]{1,3}|[0-9+]{0,4})";
const IP_RANGE_LIKE: &str = "10\\.89\\.5\\.[0-9]{1,3}(-10\\.89\\.5\\.[0-9]{1,3}|/[0-9]{1,2})|fd00::[0-9a-f]{0,3}-fd00::[0-9a-f]{1,3}";
const SECRET_LIKE: &str = "[a-z][a-z-]{0,6}(,(type=(env|mount|x)|target=[A-Z_/]{1,6}|uid=[0-9]{1,3}|gid=[0-9x]{1,3}|mode=0?[0-7]{3}|source=[a-z]{1,4}|UID=[0-9]))*";
const VOLUME_LIKE: &str =
    "(/?[a-z.]{0,6}(\\.volume)?:)?/[a-z/]{0,8}(:(ro|rw|z|Z|U|x)(,(ro|z|U))?)?|:?/[a-z]{0,3}:?";
const KEY_VALUE_LIKE: &str = "[A-Za-z_][A-Za-z0-9_.]{0,6}(=[a-z0-9 =\"']{0,8})?|=[a-z]{0,3}";
const VERSION_LIKE: &str = " ?v?[0-9]{1,3}(\\.[0-9]{1,3}){0,3}(-(rc1|dev))?|[0-9]\\.x";

/// When `parse` accepts `text`, its value renders to text that reads back as
/// the same value and renders again the same: the rendering is canonical.
fn reads_back<T, E>(text: &str, parse: impl Fn(&str) -> Result<T, E>) -> Result<(), TestCaseError>
where
    T: std::fmt::Display + PartialEq + std::fmt::Debug,
{
    if let Ok(value) = parse(text) {
        let rendered = value.to_string();
        let Ok(again) = parse(&rendered) else {
            return Err(TestCaseError::fail(format!(
                "{text:?} renders as {rendered:?}, which does not parse"
            )));
        };
        prop_assert_eq!(&again, &value, "{:?} -> {:?}", text, rendered);
        prop_assert_eq!(again.to_string(), rendered);
    }
    Ok(())
}

/// How many of 500 texts drawn from `pattern` `parse` accepts.
fn accepted<T, E>(pattern: &str, parse: impl Fn(&str) -> Result<T, E>) -> usize {
    use proptest::strategy::ValueTree as _;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = proptest::string::string_regex(pattern).unwrap();
    (0..500)
        .filter(|_| parse(&strategy.new_tree(&mut runner).unwrap().current()).is_ok())
        .count()
}

/// The positive control of `accepted_values_render_to_text_that_reads_back_the_same`:
/// each pattern gives the parser both valid and invalid text, so the property
/// is checked on values, and not only on refusals.
#[test]
fn the_value_patterns_draw_both_valid_and_invalid_text() {
    let counts = [
        ("duration", accepted(DURATION_LIKE, str::parse::<Duration>)),
        (
            "time span",
            accepted(TIME_SPAN_LIKE, str::parse::<TimeSpan>),
        ),
        (
            "health interval",
            accepted(TIME_SPAN_LIKE, str::parse::<HealthInterval>),
        ),
        ("network", accepted(CIDR_LIKE, parse_ip_net)),
        ("range", accepted(IP_RANGE_LIKE, str::parse::<IpRange>)),
        ("secret", accepted(SECRET_LIKE, str::parse::<Secret>)),
        ("volume", accepted(VOLUME_LIKE, str::parse::<VolumeMount>)),
        (
            "key=value",
            accepted(KEY_VALUE_LIKE, str::parse::<KeyValue>),
        ),
        (
            "version",
            accepted(VERSION_LIKE, str::parse::<homelab_quadlet::PodmanVersion>),
        ),
    ];
    for (what, count) in counts {
        eprintln!("{what}: {count} of 500 accepted");
        assert!(
            (25..=475).contains(&count),
            "{what}: {count} of 500 accepted"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn container_units_round_trip(
        unit in unit_section(),
        container in container(),
        quadlet in quadlet_section(),
        service in service_section(),
        install in install_section(),
        other_sections in other_sections(),
    ) {
        let value = ContainerUnit { unit, container, quadlet, service, install, other_sections };
        let text = value.render().unwrap();
        let again = ContainerUnit::parse("x.container", &text).unwrap();
        prop_assert_eq!(&again, &value, "{}", text);
        // Rendering is deterministic and canonical.
        prop_assert_eq!(again.render().unwrap(), text.clone());
        prop_assert!(!format(&text).unwrap().changed);
        // And serde keeps it too.
        let json = serde_json::to_string(&value).unwrap();
        prop_assert_eq!(serde_json::from_str::<ContainerUnit>(&json).unwrap(), value);
    }

    #[test]
    fn network_volume_and_pod_units_round_trip(
        network in network(),
        volume in volume(),
        pod in pod(),
        unit in unit_section(),
        install in install_section(),
    ) {
        let value = NetworkUnit { network, unit: unit.clone(), install: install.clone(), ..NetworkUnit::default() };
        let text = value.render().unwrap();
        prop_assert_eq!(NetworkUnit::parse("n.network", &text).unwrap(), value.clone(), "{}", text);
        let json = serde_json::to_string(&value).unwrap();
        prop_assert_eq!(serde_json::from_str::<NetworkUnit>(&json).unwrap(), value);

        let value = VolumeUnit { volume, unit: unit.clone(), ..VolumeUnit::default() };
        let text = value.render().unwrap();
        prop_assert_eq!(VolumeUnit::parse("v.volume", &text).unwrap(), value, "{}", text);

        let value = PodUnit { pod, install, ..PodUnit::default() };
        let text = value.render().unwrap();
        prop_assert_eq!(PodUnit::parse("p.pod", &text).unwrap(), value, "{}", text);
    }

    #[test]
    fn the_parser_never_panics_and_what_it_reads_it_keeps(text in any::<String>()) {
        if let Ok(file) = UnitFile::parse(&text) {
            // Lossless, and its canonical form is a fixed point with the same
            // entries.
            prop_assert_eq!(file.render(), text);
            let canonical = file.canonical();
            let again = UnitFile::parse(&canonical).unwrap();
            prop_assert_eq!(again.canonical(), canonical.clone());
            prop_assert_eq!(meaning(&again), meaning(&file), "{:?}", canonical);
        }
    }

    #[test]
    fn lint_for_every_release_never_panics_nor_hangs(text in unit_like_text(), key in "[A-Z][a-z]{1,6}") {
        // Each release reads unit syntax its own way; none of those readings may
        // panic or loop on any text.
        let dir = tempfile::tempdir().unwrap();
        let text = format!("{text}\n[Container]\n{key}=x.container:o\nMount={text}\n");
        std::fs::write(dir.path().join("x.container"), &text).unwrap();
        let set = homelab_quadlet::UnitSet::load([dir.path()]).unwrap();
        let lines = text.lines().count();
        for release in homelab_quadlet::version::KNOWN_RELEASES {
            let findings = homelab_quadlet::lint(&set, release);
            // What each release reports is about the one file, at its lines,
            // in order.
            for f in &findings {
                prop_assert!(f.file.ends_with("x.container"), "{}", f);
                prop_assert!(f.line.is_none_or(|l| (1..=lines + 1).contains(&l)), "{} of {} lines", f, lines);
            }
            prop_assert!(findings.windows(2).all(|w| (w[0].line, w[0].column) <= (w[1].line, w[1].column)));
        }
    }

    #[test]
    fn unit_like_text_is_lossless_and_formats_to_the_same_meaning(text in unit_like_text()) {
        match UnitFile::parse(&text) {
            Ok(file) => {
                prop_assert_eq!(file.render(), text.clone());
                let formatted = format(&text).unwrap();
                let again = UnitFile::parse(&formatted.text).unwrap();
                prop_assert_eq!(meaning(&again), meaning(&file), "{:?} -> {:?}", text, formatted.text);
                prop_assert_eq!(again.open_continuation().is_some(), file.open_continuation().is_some());
                prop_assert_eq!(format(&formatted.text).unwrap().text, formatted.text);
            }
            Err(_) => prop_assert!(format(&text).is_err()),
        }
    }

    #[test]
    fn quoted_words_read_back(words_in in vec(word_text(), 0..6)) {
        let joined = words::join(&words_in);
        prop_assert_eq!(words::split(&joined).unwrap(), words_in);
    }

    #[test]
    fn split_words_join_to_text_that_splits_the_same(text in any::<String>()) {
        // A parse of the canonical rendering is a fixed point.
        if let Ok(split) = words::split(&text) {
            prop_assert_eq!(words::split(&words::join(&split)).unwrap(), split);
        }
        let _ = words::split_list(&text);
    }

    #[test]
    fn lists_without_quotes_split_on_whitespace(text in "[a-z.@ \t\r\n-]{0,30}") {
        // The oracle: the standard library's split on systemd's separators.
        let expected: Vec<&str> = text.split([' ', '\t', '\n', '\r']).filter(|w| !w.is_empty()).collect();
        prop_assert_eq!(words::split_list(&text), expected);
    }

    #[test]
    fn values_read_back(
        d in duration(),
        t in time_span(),
        n in ip_net(),
        s in secret(),
        v in volume_mount(),
        kv in key_value(),
    ) {
        prop_assert_eq!(d.to_string().parse::<Duration>().unwrap(), d);
        prop_assert_eq!(t.to_string().parse::<TimeSpan>().unwrap(), t);
        prop_assert_eq!(parse_ip_net(&n.to_string()).unwrap(), n);
        prop_assert_eq!(s.to_string().parse::<Secret>().unwrap(), s);
        prop_assert_eq!(v.to_string().parse::<VolumeMount>().unwrap(), v);
        prop_assert_eq!(kv.to_string().parse::<KeyValue>().unwrap(), kv);
    }

    #[test]
    fn network_overlap_matches_the_address_ranges(a in ip_net(), b in ip_net()) {
        prop_assert_eq!(a.overlaps(&b), b.overlaps(&a));
        prop_assert!(a.contains(&a.network()) && a.overlaps(&a));
        prop_assert!(!a.trunc().has_host_bits());
        if let (Some(ra), Some(rb)) = (v4_range(&a), v4_range(&b)) {
            prop_assert_eq!(a.overlaps(&b), ra.0 <= rb.1 && rb.0 <= ra.1, "{} {}", a, b);
        }
    }

    #[test]
    fn accepted_values_render_to_text_that_reads_back_the_same(
        duration in DURATION_LIKE,
        span in TIME_SPAN_LIKE,
        net in CIDR_LIKE,
        range in IP_RANGE_LIKE,
        secret in SECRET_LIKE,
        mount in VOLUME_LIKE,
        key_value in KEY_VALUE_LIKE,
        version in VERSION_LIKE,
    ) {
        reads_back(&duration, str::parse::<Duration>)?;
        reads_back(&span, str::parse::<TimeSpan>)?;
        reads_back(&span, str::parse::<HealthInterval>)?;
        reads_back(&net, parse_ip_net)?;
        reads_back(&range, str::parse::<IpRange>)?;
        reads_back(&secret, str::parse::<Secret>)?;
        reads_back(&mount, str::parse::<VolumeMount>)?;
        reads_back(&key_value, str::parse::<KeyValue>)?;
        reads_back(&version, str::parse::<homelab_quadlet::PodmanVersion>)?;
    }

    #[test]
    fn value_parsers_never_panic(text in any::<String>()) {
        let _ = text.parse::<Duration>();
        let _ = text.parse::<TimeSpan>();
        let _ = parse_ip_net(&text);
        let _ = text.parse::<IpRange>();
        let _ = text.parse::<Secret>();
        let _ = text.parse::<VolumeMount>();
        let _ = text.parse::<homelab_quadlet::PodmanVersion>();
    }
}
