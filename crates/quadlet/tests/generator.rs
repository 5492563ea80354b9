//! Conformance with podman's own generator on the test host (`quadlet -dryrun`):
//! formatting keeps the generated services, rendered units convert cleanly, and the
//! naming rules, implied dependencies and key table agree with it.

// Helpers fail the test the way the tests themselves do: by panicking.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use homelab_quadlet::{
    Container, ContainerUnit, InstallSection, KeyValue, Network, NetworkUnit, Notify, Pod, PodUnit,
    PodmanVersion, PullPolicy, RestartPolicy, Secret, ServiceSection, TimeSpan, UnitFile, UnitKind,
    UnitNames, UnitSection, Volume, VolumeMount, VolumeUnit, format, key_info, naming, version,
};
use immich_db_testhost::{Host, require_host};

const GENERATOR: &str = "/usr/libexec/podman/quadlet";

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// Runs the generator in dry-run mode over the Quadlet files of `dir`, as root's
/// user generator would.
fn generate(host: &Host, dir: &Path) -> Output {
    assert!(
        Path::new(GENERATOR).exists(),
        "{GENERATOR} is missing: podman's Quadlet generator is part of the podman package"
    );
    host.command(GENERATOR)
        .env("QUADLET_UNIT_DIRS", dir)
        .args(["-dryrun", "-user", "-no-kmsg-log"])
        .output()
        .unwrap()
}

/// The generated services by name, with `dir` replaced by `DIR`.
fn services(output: &Output, dir: &Path) -> BTreeMap<String, String> {
    let text = String::from_utf8_lossy(&output.stdout).replace(&*dir.to_string_lossy(), "DIR");
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("---").and_then(|l| l.strip_suffix("---")) {
            current = Some(name.to_owned());
            out.insert(name.to_owned(), String::new());
        } else if let Some(name) = &current {
            let body = out.get_mut(name).unwrap();
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

/// The generator's messages, without its process id and with `dir` as `DIR`.
fn messages(output: &Output, dir: &Path) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .replace(&*dir.to_string_lossy(), "DIR")
        .lines()
        .map(|l| match l.split_once("]: ") {
            Some((prefix, rest)) if prefix.starts_with("quadlet-generator[") => rest.to_owned(),
            _ => l.to_owned(),
        })
        .collect()
}

fn without_blank_lines(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn quadlet_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| UnitKind::of_file_name(n).is_some())
        })
        .collect();
    files.sort();
    files
}

fn copy_corpus(to: &Path, formatted: bool) -> usize {
    let mut changed = 0;
    for entry in std::fs::read_dir(corpus_dir()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let is_unit = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| UnitKind::of_file_name(n).is_some());
        let text = if formatted && is_unit {
            let out = format(&text).unwrap();
            changed += usize::from(out.changed);
            // Formatting is idempotent.
            assert_eq!(
                format(&out.text).unwrap().text,
                out.text,
                "{}",
                path.display()
            );
            out.text
        } else {
            text
        };
        std::fs::write(to.join(path.file_name().unwrap()), text).unwrap();
    }
    changed
}

/// Runs the generator on the units of `original` and on their formatted copies
/// in `formatted`, and asserts that it makes the same services (but for blank
/// lines), with the same exit status and messages. Returns the generator's run
/// on `original` and its services.
fn assert_formatting_keeps_meaning(
    host: &Host,
    original: &Path,
    formatted: &Path,
) -> (Output, BTreeMap<String, String>) {
    let before = generate(host, original);
    let after = generate(host, formatted);
    let before_services = services(&before, original);
    let after_services = services(&after, formatted);
    assert_eq!(
        before_services.keys().collect::<Vec<_>>(),
        after_services.keys().collect::<Vec<_>>()
    );
    for (name, text) in &before_services {
        // Formatting only changes blank lines; comments the generator copies stay.
        assert_eq!(
            without_blank_lines(text),
            without_blank_lines(&after_services[name]),
            "{name} differs after formatting"
        );
    }
    assert_eq!(before.status.code(), after.status.code());
    assert_eq!(messages(&before, original), messages(&after, formatted));
    (before, before_services)
}

#[test]
fn formatting_keeps_every_generated_service() {
    let host = require_host!();
    let original = tempfile::tempdir().unwrap();
    let formatted = tempfile::tempdir().unwrap();
    copy_corpus(original.path(), false);
    let changed = copy_corpus(formatted.path(), true);
    assert!(
        changed >= 10,
        "only {changed} corpus files changed when formatted"
    );

    let (before, before_services) =
        assert_formatting_keeps_meaning(host, original.path(), formatted.path());
    // Every corpus file converts, except the one the generator rejects on purpose.
    let files = quadlet_files(original.path());
    assert_eq!(
        before_services.len(),
        files.len() - 1,
        "{before_services:#?}"
    );
    assert!(
        messages(&before, original.path())
            .iter()
            .any(|m| m.contains("swallow.container") && m.contains("unsupported key 'WantedBy'")),
        "{:?}",
        messages(&before, original.path())
    );
}

#[test]
fn naming_and_implied_dependencies_agree_with_the_generator() {
    let host = require_host!();
    let dir = corpus_dir();
    let output = generate(host, &dir);
    let generated = services(&output, &dir);
    let mut checked = 0;
    for path in quadlet_files(&dir) {
        let file_name = path.file_name().unwrap().to_str().unwrap();
        if file_name == "swallow.container" {
            continue;
        }
        let file = UnitFile::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let names = UnitNames::of(file_name, &file).unwrap();
        let service = generated.get(&names.service).unwrap_or_else(|| {
            panic!(
                "{file_name}: no {} in {:?}",
                names.service,
                generated.keys()
            )
        });
        // The podman object's name, where the generator writes it out.
        let exec = service
            .lines()
            .find(|l| l.starts_with("ExecStart="))
            .unwrap_or_default()
            .to_owned();
        let base = names.service.trim_end_matches(".service");
        match (names.kind, &names.resource) {
            (UnitKind::Network | UnitKind::Volume, Some(resource)) => {
                assert!(
                    exec.ends_with(&format!(" {resource}")),
                    "{file_name}: {exec}"
                );
            }
            (UnitKind::Container, Some(resource)) => {
                let name = exec
                    .split(" --name ")
                    .nth(1)
                    .and_then(|r| r.split(' ').next())
                    .unwrap()
                    .replace("%N", base);
                assert_eq!(&name, resource, "{file_name}");
            }
            (UnitKind::Pod, Some(resource)) => {
                assert!(
                    service.contains(&format!("--name {resource}")),
                    "{file_name}"
                );
            }
            _ => {}
        }
        for reference in naming::references(file_name, &file) {
            let target = UnitNames::of(
                &reference.file_name,
                &UnitFile::parse(&std::fs::read_to_string(dir.join(&reference.file_name)).unwrap())
                    .unwrap(),
            )
            .unwrap();
            for dependency in reference.implies {
                let line = format!("{dependency}={}", target.service);
                assert!(
                    service.lines().any(|l| l == line),
                    "{file_name}: `{line}` missing from\n{service}"
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 18, "{checked}");
}

/// A small deterministic generator of pseudo-random numbers (xorshift).
struct Random(u64);

impl Random {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % (n as u64)).unwrap()
    }
}

/// `text` with random whitespace, blank lines, comments and line endings that the
/// generator accepts, so that formatting has work to do.
fn mutate(text: &str, random: &mut Random) -> String {
    let mut out = String::new();
    let ending = if random.below(4) == 0 { "\r\n" } else { "\n" };
    for line in text.lines() {
        for _ in 0..random.below(3) {
            match random.below(4) {
                0 => out.push_str(ending),
                1 => {
                    let _ = write!(out, "# note {}{ending}", random.below(100));
                }
                2 => {
                    let _ = write!(out, "\t; other note{ending}");
                }
                _ => {
                    let _ = write!(out, "   {ending}");
                }
            }
        }
        let indent = [" ", "\t", "  ", ""][random.below(4)];
        let mut line = line.to_owned();
        if !line.trim_start().starts_with(['#', ';', '[']) && random.below(2) == 0 {
            line = line.replacen('=', [" = ", "= ", "\t=\t", " ="][random.below(4)], 1);
        }
        let trailing = [" ", "\t", "", ""][random.below(4)];
        // A trailing space before a continuation backslash would change the value.
        let trailing = if line.ends_with('\\') { "" } else { trailing };
        out.push_str(indent);
        out.push_str(&line);
        out.push_str(trailing);
        out.push_str(ending);
    }
    for _ in 0..random.below(3) {
        out.push_str(ending);
    }
    out
}

#[test]
fn formatting_random_variants_keeps_the_generated_services() {
    let host = require_host!();
    // Self-contained corpus files (no references to other files).
    let sources = [
        "comments.container",
        "continuation.container",
        "quoting.container",
        "repeated.container",
        "nonl.container",
        "photos.network",
        "tabs.volume",
        "data.volume",
    ];
    let original = tempfile::tempdir().unwrap();
    let formatted = tempfile::tempdir().unwrap();
    let mut random = Random(0x5eed_1234_abcd_0001);
    let mut variants = 0;
    for source in sources {
        let text = std::fs::read_to_string(corpus_dir().join(source)).unwrap();
        for i in 0..25 {
            let variant = mutate(&text, &mut random);
            let (stem, extension) = source.rsplit_once('.').unwrap();
            // Only nonl.container needs empty.network; give each variant its own.
            let variant = variant.replace("empty.network", &format!("v{i}-empty.network"));
            let name = format!("v{i}-{stem}.{extension}");
            std::fs::write(original.path().join(&name), &variant).unwrap();
            let out = format(&variant).unwrap();
            assert_eq!(format(&out.text).unwrap().text, out.text, "{name}");
            std::fs::write(formatted.path().join(&name), &out.text).unwrap();
            variants += 1;
        }
    }
    for dir in [original.path(), formatted.path()] {
        for i in 0..25 {
            std::fs::copy(
                corpus_dir().join("empty.network"),
                dir.join(format!("v{i}-empty.network")),
            )
            .unwrap();
        }
    }
    let (_, before_services) =
        assert_formatting_keeps_meaning(host, original.path(), formatted.path());
    assert!(
        before_services.len() >= variants,
        "{}",
        before_services.len()
    );
}

/// Units like the ones immich-db writes, with every kind of typed value.
fn rendered_units(name: &str, data: &Path) -> Vec<(String, String)> {
    let network = NetworkUnit {
        unit: UnitSection {
            description: Some("test network".into()),
            ..UnitSection::default()
        },
        network: Network {
            subnet: vec!["10.231.7.0/24".parse().unwrap()],
            gateway: vec!["10.231.7.1".parse().unwrap()],
            ip_range: vec!["10.231.7.128/25".parse().unwrap()],
            internal: Some(true),
            label: vec![KeyValue::new("purpose", "test network")],
            ..Network::default()
        },
        install: InstallSection::default_target(),
        ..NetworkUnit::default()
    };
    let mut postgres = Container {
        image: Some("localhost/immich-db-test/postgres:latest".into()),
        container_name: Some(format!("{name}-pg")),
        network: vec![format!("{name}.network")],
        network_alias: vec!["database".into()],
        environment: vec![
            KeyValue::new("POSTGRES_USER", "immich"),
            KeyValue::new("POSTGRES_INITDB_ARGS", "--data-checksums --encoding=UTF8"),
        ],
        secret: vec![
            Secret::env(format!("{name}-pw"), "POSTGRES_PASSWORD"),
            Secret::mount(format!("{name}-pw"), "pw"),
        ],
        volume: vec![
            VolumeMount::bind(data.display().to_string(), "/var/lib/postgresql/data")
                .with_option("Z"),
            VolumeMount::bind(format!("{name}.volume"), "/backup"),
        ],
        shm_size: Some("128m".into()),
        health_cmd: Some("pg_isready -h 127.0.0.1 -U immich".into()),
        health_interval: Some("30s".parse().unwrap()),
        health_timeout: Some("5s".parse().unwrap()),
        health_retries: Some(5),
        health_start_period: Some("10s".parse().unwrap()),
        health_startup_cmd: Some("pg_isready -h 127.0.0.1".into()),
        health_startup_interval: Some("1s".parse().unwrap()),
        health_startup_retries: Some(120),
        health_startup_success: Some(1),
        health_startup_timeout: Some("5s".parse().unwrap()),
        notify: Some(Notify::Healthy),
        auto_update: Some(homelab_quadlet::AutoUpdate::Local),
        label: vec![KeyValue::new("app", "immich db")],
        stop_timeout: Some(60),
        ..Container::default()
    };
    postgres.push_podman_args(["--log-opt", "max-size=10m"]);
    postgres.set_exec(["postgres", "-c", "shared_buffers=128MB"]);
    let postgres = ContainerUnit {
        unit: UnitSection {
            description: Some("PostgreSQL for a test".into()),
            after: vec![format!("{name}-network.service")],
            ..UnitSection::default()
        },
        container: postgres,
        service: ServiceSection {
            restart: Some(RestartPolicy::Always),
            timeout_start_sec: Some(TimeSpan::from_secs(900)),
            ..ServiceSection::default()
        },
        install: InstallSection::default_target(),
        ..ContainerUnit::default()
    };
    let valkey = ContainerUnit {
        container: Container {
            image: Some("localhost/immich-db-test/valkey:latest".into()),
            pod: Some(format!("{name}.pod")),
            exec: Some("valkey-server --save 60 1".into()),
            health_cmd: Some("valkey-cli ping".into()),
            ..Container::default()
        },
        install: InstallSection::default_target(),
        ..ContainerUnit::default()
    };
    let volume = VolumeUnit {
        volume: Volume {
            label: vec![KeyValue::new("app", "test")],
            ..Volume::default()
        },
        ..VolumeUnit::default()
    };
    let pod = PodUnit {
        pod: Pod {
            network: vec![format!("{name}.network")],
            ..Pod::default()
        },
        install: InstallSection::default_target(),
        ..PodUnit::default()
    };
    // The remaining keys of [Network] and [Container], on a second network (its
    // own DNS server is its gateway: nothing outside the test) and a service with
    // a name of its own.
    let backend = NetworkUnit {
        network: Network {
            network_name: Some(format!("{name}-backend-net")),
            driver: Some("bridge".into()),
            subnet: vec!["10.231.8.0/24".parse().unwrap()],
            gateway: vec!["10.231.8.1".parse().unwrap()],
            dns: vec!["10.231.8.1".parse().unwrap()],
            options: vec![KeyValue::new("mtu", "1400")],
            internal: Some(true),
            ..Network::default()
        },
        ..NetworkUnit::default()
    };
    let web = ContainerUnit {
        container: Container {
            image: Some("localhost/immich-db-test/valkey:latest".into()),
            network: vec![format!("{name}-backend.network")],
            publish_port: vec!["127.0.0.1:18080:80".into()],
            user: Some("999".into()),
            group: Some("999".into()),
            mount: vec!["type=tmpfs,destination=/run/web".into()],
            environment_file: vec!["/etc/immich-db-test/web.env".into()],
            pull: Some(PullPolicy::Never),
            service_name: Some(format!("{name}-web-svc")),
            ..Container::default()
        },
        ..ContainerUnit::default()
    };
    vec![
        (format!("{name}.network"), network.render().unwrap()),
        (format!("{name}-pg.container"), postgres.render().unwrap()),
        (format!("{name}-valkey.container"), valkey.render().unwrap()),
        (format!("{name}.volume"), volume.render().unwrap()),
        (format!("{name}.pod"), pod.render().unwrap()),
        (format!("{name}-backend.network"), backend.render().unwrap()),
        (format!("{name}-web.container"), web.render().unwrap()),
    ]
}

/// Every one of `expected` is a line of the generated `service`.
fn assert_lines(service: &str, expected: &[String]) {
    for line in expected {
        assert!(service.lines().any(|l| l == line), "{line} in\n{service}");
    }
}

/// The `ExecStart=` line of the generated `service` holds each of `expected`.
fn assert_exec_has(service: &str, expected: &[String]) {
    let exec = service
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .unwrap_or_else(|| panic!("no ExecStart= in\n{service}"));
    for part in expected {
        assert!(exec.contains(part.as_str()), "{part} in\n{exec}");
    }
}

#[test]
fn rendered_units_convert_without_errors_or_warnings() {
    let host = require_host!();
    let name = immich_db_testhost::unique_name("render");
    let dir = tempfile::tempdir().unwrap();
    let data = host.btrfs.join(&name);
    let units = rendered_units(&name, &data);
    for (file_name, text) in &units {
        std::fs::write(dir.path().join(file_name), text).unwrap();
    }
    let output = generate(host, dir.path());
    let problems: Vec<String> = messages(&output, dir.path())
        .into_iter()
        .filter(|m| !m.starts_with("Loading source unit file"))
        .collect();
    assert!(output.status.success(), "{problems:#?}");
    assert!(problems.is_empty(), "{problems:#?}");
    let generated = services(&output, dir.path());
    assert_eq!(generated.len(), units.len(), "{generated:#?}");
    let pg = &generated[&format!("{name}-pg.service")];
    assert_lines(
        pg,
        &[
            format!("Requires={name}-network.service"),
            format!("After={name}-network.service"),
            format!("Requires={name}-volume.service"),
        ],
    );
    assert_exec_has(
        pg,
        &[
            format!("--network systemd-{name}"),
            format!("--secret {name}-pw,type=env,target=POSTGRES_PASSWORD"),
            format!("--secret {name}-pw,type=mount,target=pw"),
            "--env \"POSTGRES_INITDB_ARGS=--data-checksums --encoding=UTF8\"".to_owned(),
            "--sdnotify=healthy".to_owned(),
            "--shm-size 128m".to_owned(),
            "--health-cmd \"pg_isready -h 127.0.0.1 -U immich\"".to_owned(),
            "--log-opt max-size=10m".to_owned(),
            "postgres -c shared_buffers=128MB".to_owned(),
        ],
    );
    // The service named by ServiceName=, on the network named by NetworkName=.
    let web = &generated[&format!("{name}-web-svc.service")];
    assert_lines(
        web,
        &[
            format!("Requires={name}-backend-network.service"),
            format!("After={name}-backend-network.service"),
        ],
    );
    assert_exec_has(
        web,
        &[
            format!("--network {name}-backend-net"),
            "--publish 127.0.0.1:18080:80".to_owned(),
            "--user 999:999".to_owned(),
            "--mount type=tmpfs,destination=/run/web".to_owned(),
            "--env-file /etc/immich-db-test/web.env".to_owned(),
            "--pull never".to_owned(),
        ],
    );
    assert_exec_has(
        &generated[&format!("{name}-backend-network.service")],
        &[
            "--driver bridge".to_owned(),
            "--dns 10.231.8.1".to_owned(),
            "--opt mtu=1400".to_owned(),
            "--internal".to_owned(),
            format!(" {name}-backend-net"),
        ],
    );
    // Each rendered unit reads back as what was rendered.
    for (file_name, text) in &units {
        let again = homelab_quadlet::AnyUnit::parse(file_name, text).unwrap();
        assert_eq!(&again.render().unwrap(), text, "{file_name}");
    }
}

#[test]
fn rendering_for_an_older_podman_still_converts() {
    let host = require_host!();
    let name = immich_db_testhost::unique_name("compat");
    let dir = tempfile::tempdir().unwrap();
    // Keys newer than 5.4 become PodmanArgs=; the 5.4.2 generator must accept them.
    let unit = ContainerUnit {
        container: Container {
            image: Some("localhost/immich-db-test/valkey:latest".into()),
            memory: Some("256m".into()),
            ..Container::default()
        },
        ..ContainerUnit::default()
    };
    let as_is = unit.render().unwrap();
    let adapted = unit.render_for(PodmanVersion::V5_4).unwrap();
    assert!(as_is.contains("Memory=256m"));
    assert!(adapted.contains("PodmanArgs=--memory 256m"), "{adapted}");
    std::fs::write(dir.path().join(format!("{name}.container")), &as_is).unwrap();
    let output = generate(host, dir.path());
    assert!(
        !output.status.success(),
        "5.4's generator should reject Memory="
    );
    std::fs::write(dir.path().join(format!("{name}.container")), &adapted).unwrap();
    let output = generate(host, dir.path());
    assert!(
        output.status.success(),
        "{:?}",
        messages(&output, dir.path())
    );
    let generated = services(&output, dir.path());
    assert!(generated[&format!("{name}.service")].contains("--memory 256m"));
}

/// The podman version on the host.
fn installed_version(host: &Host) -> PodmanVersion {
    host.podman_ok(["version", "--format", "{{.Client.Version}}"])
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn the_key_table_matches_the_installed_generator() {
    let host = require_host!();
    let installed = installed_version(host);
    let mut checked = 0;
    for kind in UnitKind::ALL {
        // The generator does not read files of newer kinds at all.
        if kind.since() > installed {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let section = kind.section();
        // Other keys some kinds need before the generator looks at the key.
        let base = match kind {
            UnitKind::Container | UnitKind::Image => "Image=docker.io/library/alpine:3.20\n",
            UnitKind::Build => "ImageTag=localhost/idbt/x:1\nFile=/srv/Containerfile\n",
            UnitKind::Kube => "Yaml=/srv/k.yaml\n",
            _ => "",
        };
        let mut expected = BTreeMap::new();
        for info in version::keys(kind) {
            let file_name = format!("k-{}.{}", info.key, kind.extension());
            std::fs::write(
                dir.path().join(&file_name),
                format!("[{section}]\n{base}{}=1\n", info.key),
            )
            .unwrap();
            expected.insert(file_name, (info.key, info.since <= installed));
        }
        // Keys no generator knows.
        let file_name = format!("k-Bogus.{}", kind.extension());
        std::fs::write(
            dir.path().join(&file_name),
            format!("[{section}]\n{base}Bogus=1\n"),
        )
        .unwrap();
        expected.insert(file_name, ("Bogus", false));
        let output = generate(host, dir.path());
        let messages = messages(&output, dir.path());
        for (file_name, (key, known)) in &expected {
            let rejected = messages.iter().any(|m| {
                m.contains(&format!("\"{file_name}\""))
                    && m.contains(&format!("unsupported key '{key}' in group '{section}'"))
            });
            assert_eq!(
                !rejected,
                *known,
                "{kind}: {key} (table says {:?}, podman {installed})",
                key_info(kind, key).map(|i| i.since)
            );
            checked += 1;
        }
    }
    // [Quadlet] keys.
    let dir = tempfile::tempdir().unwrap();
    for info in version::quadlet_section_keys() {
        std::fs::write(
            dir.path().join(format!("q-{}.network", info.key)),
            format!("[Network]\n[Quadlet]\n{}=false\n", info.key),
        )
        .unwrap();
    }
    let output = generate(host, dir.path());
    let messages = messages(&output, dir.path());
    for info in version::quadlet_section_keys() {
        let rejected = messages
            .iter()
            .any(|m| m.contains(&format!("unsupported key '{}'", info.key)));
        assert_eq!(!rejected, info.since <= installed, "[Quadlet] {}", info.key);
    }
    assert!(checked > 200, "{checked}");
}
