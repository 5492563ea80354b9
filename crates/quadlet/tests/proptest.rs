//! Property tests: typed units render then parse back equal; the parser never
//! panics and is lossless; formatting keeps the entries and is idempotent; words
//! and values read back what they write.

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
    fn the_parser_never_panics(text in any::<String>()) {
        if let Ok(file) = UnitFile::parse(&text) {
            prop_assert_eq!(file.render(), text);
            let _ = file.canonical();
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
        for release in homelab_quadlet::version::KNOWN_RELEASES {
            let _ = homelab_quadlet::lint(&set, release);
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
    fn splitting_never_panics(text in any::<String>()) {
        let _ = words::split(&text);
        let _ = words::split_list(&text);
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
