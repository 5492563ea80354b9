//! The linter on the seed's own unit files (which must pass), on the mistakes the
//! seed's author made on the way (which must each be reported with the right fix),
//! and on each other check.

// Helpers fail the test the way the tests themselves do: by panicking.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use homelab_quadlet::{Code, Finding, LintOptions, PodmanVersion, Scope, Severity, UnitSet, lint};

const TARGET: PodmanVersion = PodmanVersion::new(5, 4, 2);

fn seed_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seed"))
}

fn seed(name: &str) -> String {
    std::fs::read_to_string(seed_dir().join(name)).unwrap()
}

/// The seed's three files, with `container` replaced by the given text.
fn seed_set_with(container: &str) -> UnitSet {
    let mut set = UnitSet::new();
    set.insert("photos.network", &seed("photos.network"))
        .unwrap();
    set.insert("redis-immich.container", &seed("redis-immich.container"))
        .unwrap();
    set.insert("postgresql-immich.container", container)
        .unwrap();
    set
}

fn problems(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .collect()
}

fn only(findings: &[Finding], code: Code) -> &Finding {
    let matching: Vec<&Finding> = findings.iter().filter(|f| f.code == code).collect();
    assert_eq!(matching.len(), 1, "expected one {code}: {findings:#?}");
    matching[0]
}

#[test]
fn the_seeds_final_files_lint_clean() {
    let set = UnitSet::load([seed_dir()]).unwrap();
    assert_eq!(set.units().len(), 3);
    let findings = lint(&set, TARGET);
    assert!(problems(&findings).is_empty(), "{findings:#?}");
    // `Network=systemd-photos` (by name) is worth a remark, not a warning: the
    // Requires= and After= lines cover it.
    let remarks: Vec<&str> = findings.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(remarks, ["network-by-name", "network-by-name"]);
    assert!(
        findings[0]
            .fix
            .as_deref()
            .unwrap()
            .contains("Network=photos.network")
    );
}

#[test]
fn network_named_by_its_podman_name_with_a_file_extension() {
    let wrong = seed("postgresql-immich.container").replace(
        "Network=systemd-photos\n",
        "Network=systemd-photos.network\n",
    );
    let findings = lint(&seed_set_with(&wrong), TARGET);
    let finding = only(&findings, Code::UnknownUnit);
    assert_eq!(finding.severity, Severity::Error);
    assert_eq!(finding.file, Path::new("postgresql-immich.container"));
    assert_eq!(finding.line, Some(12));
    assert!(
        finding.message.contains("systemd-photos.network"),
        "{finding}"
    );
    let fix = finding.fix.as_deref().unwrap();
    assert!(fix.contains("`Network=photos.network`"), "{fix}");
    assert!(fix.contains("`Network=systemd-photos`"), "{fix}");
}

#[test]
fn dependency_on_the_podman_name_instead_of_the_service() {
    let wrong = seed("postgresql-immich.container").replace(
        "After=network-online.target photos-network.service",
        "After=network-online.target systemd-photos-network.service",
    );
    let findings = lint(&seed_set_with(&wrong), TARGET);
    let finding = only(&findings, Code::UnknownDependency);
    assert_eq!(finding.severity, Severity::Error);
    assert_eq!(finding.line, Some(3));
    assert!(
        finding.message.contains("systemd-photos-network.service"),
        "{finding}"
    );
    assert_eq!(
        finding.fix.as_deref(),
        Some("write `After=photos-network.service`")
    );
}

#[test]
fn the_first_draft_from_the_journal() {
    // Both mistakes at once, as the journal's "Initial Quadlet" had them.
    let wrong = seed("postgresql-immich.container")
        .replace(
            "After=network-online.target photos-network.service\n",
            "After=systemd-photos-network.service\n",
        )
        .replace("Requires=photos-network.service\n", "")
        .replace(
            "Network=systemd-photos\n",
            "Network=systemd-photos.network\n",
        );
    let findings = lint(&seed_set_with(&wrong), TARGET);
    let codes: Vec<Code> = problems(&findings).iter().map(|f| f.code).collect();
    assert_eq!(
        codes,
        [Code::UnknownDependency, Code::UnknownUnit],
        "{findings:#?}"
    );
}

#[test]
fn network_by_name_without_dependencies_is_a_warning() {
    let wrong = seed("postgresql-immich.container")
        .replace("After=network-online.target photos-network.service\n", "")
        .replace("Requires=photos-network.service\n", "");
    let findings = lint(&seed_set_with(&wrong), TARGET);
    let finding = only(&findings, Code::MissingNetworkDependency);
    assert_eq!(finding.severity, Severity::Warning);
    assert!(
        finding
            .fix
            .as_deref()
            .unwrap()
            .contains("Network=photos.network")
    );
    // With the .network file named, the generator adds the dependencies.
    let right = wrong.replace("Network=systemd-photos\n", "Network=photos.network\n");
    assert!(problems(&lint(&seed_set_with(&right), TARGET)).is_empty());
}

#[test]
fn missing_install_and_multi_user_target() {
    let no_install =
        seed("postgresql-immich.container").replace("[Install]\nWantedBy=default.target\n", "");
    let findings = lint(&seed_set_with(&no_install), TARGET);
    let finding = only(&findings, Code::MissingInstall);
    assert!(finding.message.contains("systemctl enable"), "{finding}");
    assert!(
        finding
            .fix
            .as_deref()
            .unwrap()
            .contains("WantedBy=default.target")
    );

    let system_target = seed("postgresql-immich.container")
        .replace("WantedBy=default.target", "WantedBy=multi-user.target");
    let findings = lint(&seed_set_with(&system_target), TARGET);
    let finding = only(&findings, Code::UserUnitMultiUserTarget);
    assert_eq!(
        finding.fix.as_deref(),
        Some("write `WantedBy=default.target`")
    );
    // Fine for system units.
    let system = LintOptions {
        target: TARGET,
        scope: Scope::System,
    };
    assert!(
        !system
            .run(&seed_set_with(&system_target))
            .iter()
            .any(|f| f.code == Code::UserUnitMultiUserTarget)
    );
}

#[test]
fn passwords_in_plain_environment() {
    let leaked = seed("postgresql-immich.container").replace(
        "Secret=postgres-password,type=env,target=POSTGRES_PASSWORD\n",
        "Environment=POSTGRES_PASSWORD=correct-horse-battery\nPodmanArgs=--env REDIS_PASSWORD=staple\n",
    );
    let findings = lint(&seed_set_with(&leaked), TARGET);
    let secrets: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.code == Code::SecretInEnvironment)
        .collect();
    assert_eq!(secrets.len(), 2, "{findings:#?}");
    assert!(
        secrets[0]
            .fix
            .as_deref()
            .unwrap()
            .contains("Secret=postgres-password,type=env,target=POSTGRES_PASSWORD")
    );
    // The value itself never appears in what the linter says.
    let json = serde_json::to_string(&findings).unwrap();
    for f in &findings {
        assert!(!f.to_string().contains("correct-horse-battery"));
        assert!(!f.to_string().contains("staple"));
    }
    assert!(!json.contains("correct-horse-battery") && !json.contains("staple"));
    // A path to a secret file is not a secret.
    let file = seed("postgresql-immich.container").replace(
        "Environment=POSTGRES_DB=immich\n",
        "Environment=POSTGRES_PASSWORD_FILE=/run/secrets/pw\n",
    );
    assert!(problems(&lint(&seed_set_with(&file), TARGET)).is_empty());
}

#[test]
fn private_relabel_of_a_shared_directory() {
    let shared = seed("postgresql-immich.container").replace(
        "/mnt/btrfs-pool/subvol7-containers/postgresql-immich:",
        "/mnt/btrfs-pool/subvol7-containers/redis-immich/:",
    );
    let findings = lint(&seed_set_with(&shared), TARGET);
    let relabels: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.code == Code::SharedPrivateRelabel)
        .collect();
    // Both mount it with :Z, so both are reported.
    assert_eq!(relabels.len(), 2, "{findings:#?}");
    assert!(
        relabels[0]
            .message
            .contains("/mnt/btrfs-pool/subvol7-containers/redis-immich")
    );
    assert!(relabels[0].fix.as_deref().unwrap().contains(":z"));
    // :z on both is fine.
    let shared_z = shared.replace("/var/lib/postgresql/data:Z", "/var/lib/postgresql/data:z");
    let redis_z = seed("redis-immich.container").replace("/data:Z", "/data:z");
    let mut set = UnitSet::new();
    set.insert("photos.network", &seed("photos.network"))
        .unwrap();
    set.insert("redis-immich.container", &redis_z).unwrap();
    set.insert("postgresql-immich.container", &shared_z)
        .unwrap();
    assert!(problems(&lint(&set, TARGET)).is_empty());
    // A parent directory relabelled privately breaks the mounts below it.
    let parent = seed("postgresql-immich.container").replace(
        "/mnt/btrfs-pool/subvol7-containers/postgresql-immich:",
        "/mnt/btrfs-pool/subvol7-containers:",
    );
    let findings = lint(&seed_set_with(&parent), TARGET);
    assert!(
        findings
            .iter()
            .any(|f| f.code == Code::SharedPrivateRelabel)
    );
}

#[test]
fn unknown_and_too_new_keys() {
    let typo = seed("postgresql-immich.container").replace("HealthRetries=5", "HealthRetry=5");
    let findings = lint(&seed_set_with(&typo), TARGET);
    let finding = only(&findings, Code::UnknownKey);
    assert!(
        finding
            .message
            .contains("refuses postgresql-immich.container (no service)"),
        "{finding}"
    );
    assert_eq!(
        finding.fix.as_deref(),
        Some("did you mean `HealthRetries=`?")
    );

    let newer = seed("postgresql-immich.container")
        .replace("PodmanArgs=--shm-size=128m", "Memory=2g\nShmSize=128m");
    let findings = lint(&seed_set_with(&newer), TARGET);
    let finding = only(&findings, Code::TooNew);
    assert!(finding.message.contains("5.5.0"), "{finding}");
    assert_eq!(
        finding.fix.as_deref(),
        Some("write `PodmanArgs=--memory 2g` instead, or target podman 5.5.0")
    );
    // ShmSize= (4.7) is fine for 5.4.2, but not for 4.6.
    let old = lint(&seed_set_with(&newer), PodmanVersion::V4_6);
    assert!(
        old.iter()
            .any(|f| f.code == Code::TooNew && f.message.contains("ShmSize"))
    );
}

#[test]
fn features_newer_than_their_keys() {
    let healthy = seed("postgresql-immich.container")
        .replace("HealthRetries=5", "HealthRetries=5\nNotify=healthy");
    assert!(problems(&lint(&seed_set_with(&healthy), TARGET)).is_empty());
    // 4.9 converts the file but reads `healthy` as `no`: an error, not a refusal.
    let findings = lint(&seed_set_with(&healthy), PodmanVersion::new(4, 9, 3));
    let finding = only(&findings, Code::ValueTooNew);
    assert!(finding.message.contains("Notify=healthy"), "{finding}");
    assert!(finding.message.contains("converts the file"), "{finding}");
    assert_eq!(finding.severity, Severity::Error);
    assert!(!finding.code.is_refusal());

    // Quadlet file names in [Unit] dependencies: 5.5 and later.
    let by_file = seed("postgresql-immich.container")
        .replace("Requires=photos-network.service", "Requires=photos.network");
    let findings = lint(&seed_set_with(&by_file), TARGET);
    let finding = only(&findings, Code::ValueTooNew);
    assert_eq!(
        finding.fix.as_deref(),
        Some("write `Requires=photos-network.service`")
    );
    assert!(problems(&lint(&seed_set_with(&by_file), PodmanVersion::V5_5)).is_empty());
}

#[test]
fn values_and_sections() {
    let bad = seed("postgresql-immich.container")
        .replace("HealthInterval=10s", "HealthInterval=10 seconds")
        .replace(
            "Secret=postgres-password,type=env",
            "Secret=postgres-password,type=environment",
        )
        .replace("[Service]", "[Servce]");
    let findings = lint(&seed_set_with(&bad), TARGET);
    // podman refuses these values when the service starts; the generator does not.
    let invalid: Vec<usize> = findings
        .iter()
        .filter(|f| f.code == Code::UnusableValue)
        .filter_map(|f| f.line)
        .collect();
    assert_eq!(invalid, [16, 24], "{findings:#?}");
    assert!(
        findings.iter().all(|f| !f.code.is_refusal()),
        "{findings:#?}"
    );
    let section = only(&findings, Code::UnknownSection);
    assert_eq!(section.fix.as_deref(), Some("did you mean [Service]?"));
}

#[test]
fn duplicate_services_parse_errors_and_open_continuations() {
    let mut set = UnitSet::new();
    set.insert("a.container", "[Container]\nImage=docker.io/x/a:1\nServiceName=same\n[Install]\nWantedBy=default.target\n")
        .unwrap();
    set.insert("b.container", "[Container]\nImage=docker.io/x/b:1\nServiceName=same\n[Install]\nWantedBy=default.target\n")
        .unwrap();
    set.insert("c.container", "[Container]\nImage=docker.io/x/c:1\n[Install]\nWantedBy=default.target\nAlias=x \\\n# end\n")
        .unwrap();
    let findings = lint(&set, TARGET);
    assert_eq!(
        findings
            .iter()
            .filter(|f| f.code == Code::DuplicateService)
            .count(),
        2
    );
    let open = only(&findings, Code::OpenContinuation);
    assert_eq!(
        (open.file.as_path(), open.line),
        (Path::new("c.container"), Some(5))
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.container"),
        "[Container]\nImage=x\nnot an entry\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("README.md"), "not a unit").unwrap();
    let set = UnitSet::load([dir.path()]).unwrap();
    let findings = lint(&set, TARGET);
    let parse = only(&findings, Code::ParseError);
    assert_eq!((parse.line, parse.column), (Some(3), Some(1)));
    assert!(parse.file.ends_with("broken.container"));
}

#[test]
fn findings_serialise_for_json_output() {
    let wrong = seed("postgresql-immich.container").replace(
        "Network=systemd-photos\n",
        "Network=systemd-photos.network\n",
    );
    let findings = lint(&seed_set_with(&wrong), TARGET);
    let json: serde_json::Value = serde_json::to_value(only(&findings, Code::UnknownUnit)).unwrap();
    assert_eq!(json["code"], "unknown-unit");
    assert_eq!(json["severity"], "error");
    assert_eq!(json["file"], "postgresql-immich.container");
    assert_eq!(json["line"], 12);
    assert_eq!(json["column"], 1);
    assert!(json["fix"].as_str().unwrap().contains("photos.network"));
    let text = only(&findings, Code::UnknownUnit).to_string();
    assert!(
        text.starts_with("postgresql-immich.container:12:1: error[unknown-unit]: "),
        "{text}"
    );
}

/// The codes of the refusals lint finds in one file, for `target`.
fn refusals(file_name: &str, text: &str, target: PodmanVersion) -> Vec<Code> {
    let mut set = UnitSet::new();
    set.insert(file_name, text).unwrap();
    lint(&set, target)
        .iter()
        .filter(|f| f.code.is_refusal())
        .map(|f| f.code)
        .collect()
}

#[test]
fn the_generators_rules_by_release() {
    let v = PodmanVersion::new;
    let image = "[Container]\nImage=docker.io/library/alpine:3.20\n";
    // The `source=` form of a secret is podman's own.
    let secret = format!("{image}Secret=source=pw,type=env,target=PW\n");
    assert_eq!(refusals("s.container", &secret, v(5, 4, 2)), []);
    // `Group=` without `User=`: refused from 4.8.
    let group = format!("{image}Group=1000\n");
    assert_eq!(refusals("g.container", &group, v(4, 7, 2)), []);
    assert_eq!(
        refusals("g.container", &group, v(4, 8, 0)),
        [Code::MissingKey]
    );
    // Deprecated Remap keys beside explicit mappings: refused from 4.8.
    let remap = format!("{image}UserNS=auto\nRemapUsers=auto\n");
    assert_eq!(refusals("r.container", &remap, v(4, 6, 0)), []);
    assert_eq!(
        refusals("r.container", &remap, v(5, 8, 2)),
        [Code::ConflictingKeys]
    );
    // A container without an image, a pod that is no Quadlet file.
    assert_eq!(
        refusals("n.container", "[Container]\nExec=true\n", v(5, 4, 2)),
        [Code::MissingImage]
    );
    let pod = format!("{image}Pod=web\n");
    assert_eq!(
        refusals("p.container", &pod, v(5, 4, 2)),
        [Code::InvalidValue]
    );
    assert_eq!(refusals("p.container", &pod, v(4, 9, 3)), [Code::TooNew]);
    // Networks: a gateway needs its subnet.
    let network = "[Network]\nGateway=10.1.2.1\n";
    assert_eq!(
        refusals("n.network", network, v(4, 4, 4)),
        [Code::MissingKey]
    );
    // A .network or .pod without its section is a default one.
    assert_eq!(
        refusals("e.network", "[Unit]\nDescription=x\n", v(5, 4, 2)),
        []
    );
    assert_eq!(refusals("e.pod", "[Unit]\nDescription=x\n", v(5, 4, 2)), []);
    // Builds: a tag, and a File= or a working directory.
    let build = "[Build]\nFile=Containerfile\n";
    assert_eq!(
        refusals("b.build", build, v(5, 8, 2)),
        [Code::MissingKey, Code::MissingKey]
    );
    let args = "[Build]\nImageTag=localhost/x:1\nFile=/srv/Containerfile\nBuildArg=A=1\n";
    assert_eq!(refusals("a.build", args, v(5, 8, 2)), []);
    assert_eq!(refusals("a.build", args, v(5, 6, 0)), [Code::TooNew]);
    // Images and volumes of the image driver need `Image=`.
    assert_eq!(
        refusals("i.image", "[Image]\nArch=arm64\n", v(5, 4, 2)),
        [Code::MissingKey]
    );
    assert_eq!(
        refusals("v.volume", "[Volume]\nDriver=image\n", v(5, 4, 2)),
        [Code::MissingKey]
    );
    // Keep-id in a system unit: refused up to 5.2 only.
    let keep_id = format!("{image}RemapUsers=keep-id\n");
    let mut set = UnitSet::new();
    set.insert("k.container", &keep_id).unwrap();
    for (target, refused) in [(v(5, 2, 0), true), (v(5, 3, 0), false)] {
        let options = LintOptions {
            target,
            scope: Scope::System,
        };
        let found = options.run(&set).iter().any(|f| f.code.is_refusal());
        assert_eq!(found, refused, "{target}");
    }
    assert_eq!(refusals("k.container", &keep_id, v(5, 2, 0)), []);
}

#[test]
fn references_between_files_by_release() {
    let v = PodmanVersion::new;
    let app = "[Container]\nImage=docker.io/library/alpine:3.20\nNetwork=back.network\n";
    let broken = "[Network]\nGateway=10.1.2.1\n";
    let mut set = UnitSet::new();
    set.insert("app.container", app).unwrap();
    set.insert("back.network", broken).unwrap();
    let refused = |target| -> Vec<String> {
        let mut files: Vec<String> = lint(&set, target)
            .iter()
            .filter(|f| f.code.is_refusal())
            .map(|f| f.file.display().to_string())
            .collect();
        files.dedup();
        files
    };
    // From 5.3 a container on a refused network is refused too.
    assert_eq!(refused(v(5, 2, 0)), ["back.network"]);
    assert_eq!(refused(v(5, 3, 0)), ["app.container", "back.network"]);
    // A missing network: refused from 5.3, a failing dependency before.
    let mut set = UnitSet::new();
    set.insert("app.container", app).unwrap();
    let findings = lint(&set, v(5, 2, 0));
    let finding = only(&findings, Code::UnknownDependency);
    assert!(
        finding.message.contains("back-network.service"),
        "{finding}"
    );
    assert!(
        finding.message.contains("converts app.container"),
        "{finding}"
    );
    let findings = lint(&set, v(5, 3, 0));
    assert_eq!(only(&findings, Code::UnknownUnit).line, Some(3));
}

#[test]
fn runtime_problems_are_errors_but_not_refusals() {
    let mut set = UnitSet::new();
    for name in ["a.container", "b.container"] {
        set.insert(
            name,
            "[Container]\nImage=docker.io/x/a:1\nServiceName=same\nVolume=/srv/shared:/data:Z\n\
             [Install]\nWantedBy=default.target\n",
        )
        .unwrap();
    }
    let findings = lint(&set, TARGET);
    for code in [Code::DuplicateService, Code::SharedPrivateRelabel] {
        let found: Vec<&Finding> = findings.iter().filter(|f| f.code == code).collect();
        assert_eq!(found.len(), 2, "{findings:#?}");
        for f in found {
            assert_eq!(f.severity, Severity::Error);
            assert!(!f.code.is_refusal());
            assert!(f.message.contains("the generator converts"), "{f}");
        }
    }
}

#[test]
fn unit_syntax_as_each_release_reads_it() {
    let v = PodmanVersion::new;
    let indented = "[Container]\n  Image=docker.io/library/alpine:3.20\n";
    assert_eq!(
        refusals("i.container", indented, v(4, 4, 4)),
        [Code::ParseError]
    );
    assert_eq!(refusals("i.container", indented, v(4, 9, 3)), []);
    // `;` starts a comment from 5.4 only; `:` did before.
    let semicolon = "; note\n[Network]\n";
    assert_eq!(
        refusals("s.network", semicolon, v(5, 3, 0)),
        [Code::ParseError]
    );
    assert_eq!(refusals("s.network", semicolon, v(5, 4, 0)), []);
    // (A file that 5.4 cannot read is kept for older releases when read from disk.)
    let colons = tempfile::tempdir().unwrap();
    std::fs::write(colons.path().join("c.network"), ": note\n[Network]\n").unwrap();
    let set = UnitSet::load([colons.path()]).unwrap();
    assert!(!lint(&set, v(5, 3, 0)).iter().any(|f| f.code.is_refusal()));
    assert!(
        lint(&set, v(5, 4, 0))
            .iter()
            .any(|f| f.code == Code::ParseError)
    );
    // A continued line with a space after its backslash hangs 4.6 to 4.9.
    let stuck = "[Container]\nImage=docker.io/library/alpine:3.20\nExec=sleep \\ \n1\n";
    assert_eq!(
        refusals("h.container", stuck, v(4, 9, 3)),
        [Code::GeneratorCrash]
    );
    assert_eq!(refusals("h.container", stuck, v(5, 0, 3)), []);
    // From 5.0 a file that does not parse takes its directory with it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("good.container"),
        "[Container]\nImage=docker.io/library/alpine:3.20\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("bad.network"), "[Network]\nnot an entry\n").unwrap();
    let set = UnitSet::load([dir.path()]).unwrap();
    for (target, good_refused) in [(v(4, 9, 3), false), (v(5, 0, 3), true)] {
        let findings = lint(&set, target);
        let refused = findings
            .iter()
            .any(|f| f.code.is_refusal() && f.file.ends_with("good.container"));
        assert_eq!(refused, good_refused, "{target}: {findings:#?}");
    }
}
