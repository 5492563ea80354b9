//! Checks a set of units together, for the mistakes that make units fail to
//! generate, start in the wrong order, or leak secrets.
//!
//! Every finding has a stable [`Code`]. The errors of the first group are the
//! generator's own refusals: the generator of the target podman release writes no
//! service for the file ([`Code::is_refusal`]), exactly as that release's generator
//! decides (see [`crate::version::KNOWN_RELEASES`]). The other errors are found
//! when the service runs: the generator converts the file.
//!
//! | code | severity | what |
//! |------|----------|------|
//! | `parse-error` | error, refusal | the file is not unit syntax as the target reads it (the generator skips it) |
//! | `unknown-key` | error, refusal | a key no podman knows in that section |
//! | `too-new` | error, refusal | a key or file kind newer than the target podman |
//! | `missing-section` | error, refusal | no main section in a kind of file that needs keys (`[Container]` in a `.container` file) |
//! | `missing-image` | error, refusal | a container without `Image=` or `Rootfs=` |
//! | `missing-key` | error, refusal | a key the file needs: `Yaml=`, `ImageTag=`, `Subnet=` for a `Gateway=`, `User=` for a `Group=`... |
//! | `conflicting-keys` | error, refusal | keys the generator refuses together: `Image=` and `Rootfs=`, `Remap*=` beside `UserNS=`... |
//! | `invalid-value` | error, refusal | a value the generator itself refuses (`KillMode=`, `ExposeHostPort=`, `RemapUsers=`, `Pod=`...) |
//! | `unknown-unit` | error, refusal | a reference (`Network=x.network`, `Pod=x.pod`, `After=x.container`) the generator cannot resolve |
//! | `generator-crash` | error, refusal | a value the generator crashes on: no file of the directory gets a service |
//! | `unusable-value` | error | a value the generator passes on but podman or systemd reject when the service starts |
//! | `value-too-new` | error | a value whose meaning is newer than the target (`Notify=healthy` before 5.0): the service does not do what it says |
//! | `unknown-dependency` | error | `Requires=`/`After=`/`Wants=`... on a Quadlet-style service no unit generates |
//! | `secret-in-environment` | error | a password or token in plain `Environment=` |
//! | `shared-private-relabel` | error | `Volume=...:Z` on a host path another unit also mounts |
//! | `duplicate-service` | error | two files generate the same service |
//! | `missing-network-dependency` | warning | `Network=` by podman name without a dependency on the network's service |
//! | `missing-install` | warning | no `[Install]`: the unit does not start at boot |
//! | `user-unit-multi-user-target` | warning | `WantedBy=multi-user.target` in a user unit |
//! | `unknown-section` | warning | a section neither systemd nor the generator reads |
//! | `open-continuation` | warning | a final `\` continuation the generator drops |
//! | `network-by-name` | info | `Network=` by podman name where the `.network` file would add the dependencies |

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::Error;
pub use crate::finding::{Code, Finding, Scope, Severity};
use crate::naming::{self, DependencyKind, UnitKind};
use crate::set::{SourceUnit, UnitSet};
use crate::suggest::{closest, suggest_unit};
use crate::syntax::{Entry, Syntax};
use crate::values::{
    AutoUpdate, Duration, HealthInterval, HealthOnFailure, IpRange, KeyValue, Notify, PullPolicy,
    Relabel, RestartPolicy, Secret, TimeSpan, ValueError, VolumeMount, parse_bool, parse_ip_net,
};
use crate::version::{Feature, PodmanVersion, QUADLET_SECTION};
use crate::words;

/// What to check against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LintOptions {
    /// The podman release the units are for.
    pub target: PodmanVersion,
    /// The manager that runs them.
    pub scope: Scope,
}

impl LintOptions {
    /// Options for user units on podman `target`.
    pub fn new(target: PodmanVersion) -> Self {
        Self {
            target,
            scope: Scope::User,
        }
    }

    /// Runs every check on `set`; findings are sorted by file, line and column.
    pub fn run(&self, set: &UnitSet) -> Vec<Finding> {
        // Read the files as the target's generator reads unit syntax.
        let syntax = Syntax::of(self.target);
        let reparsed;
        let set = if syntax == Syntax::V5_4 {
            set
        } else {
            reparsed = set.reparsed(syntax);
            &reparsed
        };
        let mut lint = Lint {
            options: *self,
            set,
            findings: Vec::new(),
        };
        lint.run();
        let mut findings = lint.findings;
        findings.sort_by(|a, b| {
            (&a.file, a.line, a.column, a.code.as_str()).cmp(&(
                &b.file,
                b.line,
                b.column,
                b.code.as_str(),
            ))
        });
        findings.dedup();
        findings
    }
}

/// Checks `set` as user units for podman `target` (see [`LintOptions`] for system
/// units).
///
/// ```
/// use homelab_quadlet::{lint, Code, PodmanVersion, UnitSet};
///
/// let mut set = UnitSet::new();
/// set.insert("db.container", "[Container]\nImage=docker.io/library/postgres:17\n\
///     Environment=POSTGRES_PASSWORD=hunter2\n\n[Install]\nWantedBy=default.target\n")?;
/// let findings = lint(&set, PodmanVersion::new(5, 4, 2));
/// assert_eq!(findings[0].code, Code::SecretInEnvironment);
/// assert!(!findings[0].to_string().contains("hunter2"));
/// # Ok::<(), homelab_quadlet::Error>(())
/// ```
pub fn lint(set: &UnitSet, target: PodmanVersion) -> Vec<Finding> {
    LintOptions::new(target).run(set)
}

struct Lint<'a> {
    options: LintOptions,
    set: &'a UnitSet,
    findings: Vec<Finding>,
}

/// Network modes of `Network=` that are not network names.
const NETWORK_MODES: &[&str] = &[
    "host",
    "none",
    "private",
    "bridge",
    "slirp4netns",
    "pasta",
    "default",
];

impl<'a> Lint<'a> {
    fn add(
        &mut self,
        unit: &Path,
        line: Option<usize>,
        column: Option<usize>,
        code: Code,
        message: String,
        fix: Option<String>,
    ) {
        self.findings.push(Finding {
            file: unit.to_path_buf(),
            line,
            column,
            severity: code.severity(),
            code,
            message,
            fix,
        });
    }

    fn at(
        &mut self,
        unit: &SourceUnit,
        entry: &Entry,
        code: Code,
        message: String,
        fix: Option<String>,
    ) {
        self.add(
            &unit.path,
            Some(entry.line()),
            Some(entry.column()),
            code,
            message,
            fix,
        );
    }

    fn run(&mut self) {
        let target = self.options.target;
        let legacy = Syntax::of(target) != Syntax::V5_4;
        for failure in self.set.failures() {
            match failure {
                Error::Parse { file, source }
                    if source.kind == crate::syntax::ParseErrorKind::StuckContinuation =>
                {
                    self.add(
                        file,
                        Some(source.line),
                        Some(source.column),
                        Code::GeneratorCrash,
                        format!(
                            "{source}: the generator of podman {target} never finishes reading it, and no file of any directory gets a service"
                        ),
                        Some("remove the whitespace around the continued line".into()),
                    );
                }
                Error::Parse { file, source } => self.add(
                    file,
                    Some(source.line),
                    Some(source.column),
                    Code::ParseError,
                    format!("{source}; the generator of podman {target} skips this file"),
                    Some(if legacy {
                        format!(
                            "make every line a [Section] header, a KEY=VALUE assignment or a \
                             comment starting with #; podman {target} reads a line starting \
                             with ; as an entry{}",
                            if target < PodmanVersion::V4_6 {
                                ", and does not trim lines: start every line at its first column, with no blank line of spaces"
                            } else {
                                ""
                            }
                        )
                    } else {
                        "make every line a [Section] header, a KEY=VALUE assignment or a \
                         comment starting with # or ;"
                            .into()
                    }),
                ),
                Error::NotUtf8 { path } => self.add(
                    path,
                    None,
                    None,
                    Code::ParseError,
                    "not UTF-8 text; the generator cannot read it as a unit".into(),
                    Some("save the file as UTF-8".into()),
                ),
                other => self.add(
                    Path::new(""),
                    None,
                    None,
                    Code::ParseError,
                    other.to_string(),
                    None,
                ),
            }
        }
        let set = self.set;
        self.findings
            .extend(crate::rules::refusals(set, target, self.options.scope));
        for unit in set.units() {
            if unit.kind.since() > target {
                continue;
            }
            self.check_sections(unit);
            self.check_value_features(unit);
            self.check_values(unit);
            self.check_references(unit);
            self.check_dependencies(unit);
            self.check_install(unit);
            self.check_secrets(unit);
            if let Some(line) = unit.file.open_continuation() {
                self.add(
                    &unit.path,
                    Some(line),
                    None,
                    Code::OpenContinuation,
                    "this line ends with `\\` but only comments follow: the generator drops the entry".into(),
                    Some("remove the trailing backslash".into()),
                );
            }
        }
        self.check_duplicates();
        self.check_shared_relabel();
    }

    fn check_sections(&mut self, unit: &SourceUnit) {
        let kind = unit.kind;
        let target = self.options.target;
        let section = kind.section();
        let quadlet_known = target >= PodmanVersion::V5_3;
        let known = ["Unit", "Service", "Install", QUADLET_SECTION, section];
        for name in unit.file.sections() {
            if name.starts_with("X-") || (known.contains(&name) && name != QUADLET_SECTION) {
                continue;
            }
            if name == QUADLET_SECTION {
                if !quadlet_known {
                    self.add(
                        &unit.path,
                        unit.file.section_line(name),
                        None,
                        Code::UnknownSection,
                        format!(
                            "the generator reads [{QUADLET_SECTION}] from podman 5.3 on; podman {target} leaves it to systemd, which ignores it"
                        ),
                        Some("remove it, or target podman 5.3 or later".into()),
                    );
                }
                continue;
            }
            let fix = if let Some(other) = UnitKind::ALL.iter().find(|k| k.section() == name) {
                Some(format!("[{name}] belongs in a .{} file", other.extension()))
            } else {
                closest(name, &known, 3).map(|s| format!("did you mean [{s}]?"))
            };
            self.add(
                &unit.path,
                unit.file.section_line(name),
                None,
                Code::UnknownSection,
                format!(
                    "section [{name}] is read by neither the generator nor systemd (prefix it with X- to keep private data)"
                ),
                fix,
            );
        }
    }

    /// Values whose meaning is newer than their key: the generator passes them on
    /// (the file converts), but the service does not do what they say.
    fn check_value_features(&mut self, unit: &SourceUnit) {
        let target = self.options.target;
        for entry in unit.file.entries(unit.kind.section()) {
            let feature = Feature::of_value(unit.kind, entry);
            if let Some(feature) = feature
                && feature.since() > target
            {
                self.at(
                    unit,
                    entry,
                    Code::ValueTooNew,
                    format!(
                        "{} needs podman {}: podman {target}'s generator converts the file, but {}",
                        feature.describe(),
                        feature.since(),
                        feature.effect_before()
                    ),
                    Some(format!(
                        "target podman {} or later, or write it another way",
                        feature.since()
                    )),
                );
            }
        }
    }

    fn check_values(&mut self, unit: &SourceUnit) {
        let section = unit.kind.section();
        for (name, entry) in unit.file.all_entries() {
            if entry.value().is_empty() {
                continue;
            }
            let result = if name == section {
                check_value(unit.kind, entry)
            } else if name == "Service" {
                match entry.key() {
                    "TimeoutStartSec" | "TimeoutStopSec" | "RestartSec" => {
                        entry.unquoted().parse::<TimeSpan>().map(drop)
                    }
                    "Restart" => entry.unquoted().parse::<RestartPolicy>().map(drop),
                    _ => Ok(()),
                }
            } else if name == QUADLET_SECTION && entry.key() == "DefaultDependencies" {
                parse_bool(entry.unquoted()).map(drop)
            } else {
                Ok(())
            };
            if let Err(error) = result {
                let effect = if name == "Service" {
                    "the generator passes it on, and systemd ignores it when it loads the service"
                } else if BOOLEAN_KEYS.contains(&entry.key()) {
                    "the generator reads it as `false`"
                } else {
                    "the generator converts the file, but podman refuses the value when the service starts"
                };
                self.at(
                    unit,
                    entry,
                    Code::UnusableValue,
                    format!("`{}=` in [{name}]: {error}; {effect}", entry.key()),
                    None,
                );
            }
        }
    }

    fn check_references(&mut self, unit: &SourceUnit) {
        let set = self.set;
        let target = self.options.target;
        for reference in naming::references(unit.file_name(), &unit.file) {
            let name = reference.file_name.as_str();
            let Some(kind) = UnitKind::of_file_name(name) else {
                continue;
            };
            let entry = unit
                .file
                .entries(unit.kind.section())
                .find(|e| e.line() == reference.line && e.key() == reference.key);
            let (resolved, refused) = resolution(reference.key, kind);
            if target < resolved {
                // `Network=x.container` before 5.3 is a value feature of its own.
                if reference.key != "Network" || kind != UnitKind::Container {
                    let message = format!(
                        "`{}={name}` names a Quadlet file, which podman resolves from {resolved} on: podman {target}'s generator converts {}, but passes the name on to podman as it is, which does not find such an object (or makes an empty volume of that name)",
                        reference.key,
                        unit.file_name()
                    );
                    let fix = Some(format!(
                        "target podman {resolved} or later, or name the podman object itself"
                    ));
                    self.reference_finding(
                        unit,
                        entry,
                        reference.line,
                        Code::ValueTooNew,
                        message,
                        fix,
                    );
                }
                continue;
            }
            let present = set.get(name).is_some_and(|u| u.kind.since() <= target);
            if present || target >= refused {
                // Refused by the generator: reported with the generator's rules.
                continue;
            }
            let fix = suggest_unit(set, reference.key, name);
            let service = service_of(set, name);
            let message = format!(
                "`{}={name}` names a file that is not in this set: podman {target}'s generator converts {} anyway, but its service then needs {service}, which nothing generates, and fails when it starts",
                reference.key,
                unit.file_name()
            );
            self.reference_finding(
                unit,
                entry,
                reference.line,
                Code::UnknownDependency,
                message,
                fix,
            );
        }
        // Network= by podman name.
        if !matches!(
            unit.kind,
            UnitKind::Container | UnitKind::Pod | UnitKind::Kube
        ) {
            return;
        }
        let deps = unit_dependencies(set, unit);
        for entry in unit.file.get_all_entries(unit.kind.section(), "Network") {
            let name = entry.value().split(':').next().unwrap_or_default();
            if name.contains('.') && UnitKind::of_file_name(name).is_some()
                || NETWORK_MODES.contains(&name)
            {
                continue;
            }
            let Some(network) = set
                .units()
                .iter()
                .find(|u| u.kind == UnitKind::Network && u.names.resource.as_deref() == Some(name))
            else {
                continue;
            };
            let service = &network.names.service;
            let ordered = deps.iter().any(|(k, s)| k == "After" && s == service);
            let required = deps
                .iter()
                .any(|(k, s)| (k == "Requires" || k == "BindsTo") && s == service);
            if ordered && required {
                self.at(
                    unit,
                    entry,
                    Code::NetworkByName,
                    format!(
                        "`Network={name}` names the podman network of {}, which adds no dependency by itself (the Requires= and After= here cover it)",
                        network.file_name()
                    ),
                    Some(format!(
                        "`Network={}` would add Requires= and After= on {service} automatically",
                        network.file_name()
                    )),
                );
            } else {
                self.at(
                    unit,
                    entry,
                    Code::MissingNetworkDependency,
                    format!(
                        "`Network={name}` names the podman network of {}, but nothing orders this unit after {service}: it may start before the network exists",
                        network.file_name()
                    ),
                    Some(format!(
                        "write `Network={}` (adds Requires= and After= on {service}), or add `Requires={service}` and `After={service}` to [Unit]",
                        network.file_name()
                    )),
                );
            }
        }
        let _ = target;
    }

    fn reference_finding(
        &mut self,
        unit: &SourceUnit,
        entry: Option<&Entry>,
        line: usize,
        code: Code,
        message: String,
        fix: Option<String>,
    ) {
        match entry {
            Some(entry) => self.at(unit, entry, code, message, fix),
            None => self.add(&unit.path, Some(line), None, code, message, fix),
        }
    }

    fn check_dependencies(&mut self, unit: &SourceUnit) {
        let set = self.set;
        let target = self.options.target;
        for entry in unit.file.entries("Unit") {
            if !naming::DEPENDENCY_KEYS.contains(&entry.key()) {
                continue;
            }
            for name in words::split_list(entry.value()) {
                if let Some(kind) = UnitKind::of_file_name(&name) {
                    let since = if kind == UnitKind::Artifact {
                        PodmanVersion::V5_7
                    } else {
                        Feature::UnitFileDependencies.since()
                    };
                    // From `since`, a name not in the set is refused by the generator.
                    if since > target {
                        let service = set.get(&name).map_or_else(
                            || naming::default_service_name(&name, kind),
                            |u| u.names.service.clone(),
                        );
                        self.at(
                            unit,
                            entry,
                            Code::ValueTooNew,
                            format!(
                                "`{}={name}` names a Quadlet file; podman translates those to services from {since} on, so podman {target}'s generator leaves it to systemd, which has no unit called {name}: the dependency fails when the service starts",
                                entry.key(),
                            ),
                            Some(format!("write `{}={service}`", entry.key())),
                        );
                    }
                    continue;
                }
                if !name.ends_with(".service") || set.by_service(&name).is_some() {
                    continue;
                }
                if let Some((culprit, why)) = self.mistaken_service(&name) {
                    self.at(
                        unit,
                        entry,
                        Code::UnknownDependency,
                        format!(
                            "`{}={name}`: no unit generates {name}; {why}. The generator converts the file, but the dependency fails when the service starts",
                            entry.key()
                        ),
                        Some(format!("write `{}={}`", entry.key(), culprit.names.service)),
                    );
                } else if let Some(suffix) = ["-network", "-volume", "-pod", "-image", "-build"]
                    .iter()
                    .find(|s| name.ends_with(&format!("{s}.service")))
                {
                    let services: Vec<&str> = set
                        .units()
                        .iter()
                        .map(|u| u.names.service.as_str())
                        .collect();
                    let fix = closest(&name, &services, 6).map_or_else(
                        || {
                            format!(
                                "add the .{} file that generates it, or remove the dependency",
                                suffix.trim_start_matches('-')
                            )
                        },
                        |s| format!("write `{}={s}`", entry.key()),
                    );
                    self.at(
                        unit,
                        entry,
                        Code::UnknownDependency,
                        format!(
                            "`{}={name}`: no unit in this set generates {name}; the generator converts the file, but the dependency fails when the service starts",
                            entry.key()
                        ),
                        Some(fix),
                    );
                }
            }
        }
    }

    /// A unit whose service the name was probably meant to be: the name built from
    /// its podman name, file name or container name.
    fn mistaken_service(&self, name: &str) -> Option<(&'a SourceUnit, String)> {
        let stem = name.strip_suffix(".service")?;
        for u in self.set.units() {
            let suffix = u.kind.service_suffix();
            let file_base = naming::base_name(u.file_name());
            if let Some(resource) = &u.names.resource
                && (stem == format!("{resource}{suffix}") || stem == resource.as_str())
            {
                return Some((
                    u,
                    format!(
                        "{} generates {} (services are named after the file, `{file_base}`, not the podman name `{resource}`)",
                        u.file_name(),
                        u.names.service
                    ),
                ));
            }
            if stem == u.file_name() {
                return Some((
                    u,
                    format!("{} generates {}", u.file_name(), u.names.service),
                ));
            }
        }
        None
    }

    fn check_install(&mut self, unit: &SourceUnit) {
        let scope = self.options.scope;
        // Only these make the service start with a target.
        let install: Vec<&Entry> = unit
            .file
            .entries("Install")
            .filter(|e| {
                matches!(e.key(), "WantedBy" | "RequiredBy" | "UpheldBy") && !e.value().is_empty()
            })
            .collect();
        if scope == Scope::User {
            for entry in unit.file.entries("Install") {
                if matches!(entry.key(), "WantedBy" | "RequiredBy" | "UpheldBy")
                    && words::split_list(entry.value())
                        .iter()
                        .any(|t| t == "multi-user.target")
                {
                    self.at(
                        unit,
                        entry,
                        Code::UserUnitMultiUserTarget,
                        "multi-user.target does not exist in a user's systemd manager: the unit will not start at boot".into(),
                        Some(format!("write `{}=default.target`", entry.key())),
                    );
                }
            }
        }
        if !install.is_empty()
            || !matches!(
                unit.kind,
                UnitKind::Container | UnitKind::Pod | UnitKind::Kube
            )
        {
            return;
        }
        // Started by another unit of the set?
        let service = &unit.names.service;
        let pulled_in = self.set.units().iter().any(|other| {
            unit_dependencies(self.set, other).iter().any(|(k, s)| {
                matches!(k.as_str(), "Requires" | "Wants" | "BindsTo" | "Upholds") && s == service
            })
        }) || (unit.kind == UnitKind::Container
            && unit
                .file
                .get("Container", "Pod")
                .is_some_and(|p| self.set.get(p).is_some()));
        if pulled_in {
            return;
        }
        let target = scope.boot_target();
        self.add(
            &unit.path,
            None,
            None,
            Code::MissingInstall,
            format!(
                "no [Install] section: {service} will not start at boot, and `systemctl enable` does not work on generated units"
            ),
            Some(format!("add an `[Install]` section with `WantedBy={target}`")),
        );
    }

    fn check_secrets(&mut self, unit: &SourceUnit) {
        let section = unit.kind.section();
        for (name, entry) in unit.file.all_entries() {
            let candidates: Vec<KeyValue> = match (name, entry.key()) {
                (s, "Environment") if s == section || s == "Service" => words::split(entry.value())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|w| w.parse().ok())
                    .collect(),
                (s, "PodmanArgs") if s == section => env_args(entry.value()),
                _ => continue,
            };
            for kv in candidates {
                if kv.value.as_deref().is_none_or(str::is_empty) || !is_secret_name(&kv.key) {
                    continue;
                }
                let variable = &kv.key;
                let secret_name = variable.to_ascii_lowercase().replace('_', "-");
                let fix = if name == section && unit.kind == UnitKind::Container {
                    format!(
                        "store it as a podman secret (`podman secret create {secret_name} -`, reading it from standard input) and write `Secret={secret_name},type=env,target={variable}`"
                    )
                } else {
                    format!(
                        "store it as a podman secret (`podman secret create {secret_name} -`) and give it to the container with `Secret={secret_name},type=env,target={variable}`"
                    )
                };
                self.at(
                    unit,
                    entry,
                    Code::SecretInEnvironment,
                    format!(
                        "`{}=` in [{name}] sets {variable} in plain text: the generator converts the file, but anyone who can read the unit file, the journal or `podman inspect` can read it",
                        entry.key()
                    ),
                    Some(fix),
                );
            }
        }
    }

    fn check_duplicates(&mut self) {
        let mut services: HashMap<&str, Vec<&SourceUnit>> = HashMap::new();
        for unit in self.set.units() {
            services
                .entry(unit.names.service.as_str())
                .or_default()
                .push(unit);
        }
        let mut duplicates: Vec<(&str, Vec<&SourceUnit>)> = services
            .into_iter()
            .filter(|(_, units)| units.len() > 1)
            .collect();
        duplicates.sort_by_key(|(s, _)| *s);
        for (service, units) in duplicates {
            for unit in &units {
                let others: Vec<&str> = units
                    .iter()
                    .filter(|u| u.path != unit.path)
                    .map(|u| u.file_name())
                    .collect();
                self.add(
                    &unit.path,
                    None,
                    None,
                    Code::DuplicateService,
                    format!(
                        "{} and {} both generate {service}: the generator converts each, but systemd runs only one of them (a problem when the units run, not a refusal)",
                        unit.file_name(),
                        others.join(", ")
                    ),
                    Some("rename one of the files or change its `ServiceName=`".into()),
                );
            }
        }
    }

    fn check_shared_relabel(&mut self) {
        struct Mount<'u> {
            unit: &'u SourceUnit,
            entry: &'u Entry,
            path: String,
            relabel: Option<Relabel>,
        }
        let mut mounts: Vec<Mount<'_>> = Vec::new();
        for unit in self.set.units() {
            if !matches!(unit.kind, UnitKind::Container | UnitKind::Pod) {
                continue;
            }
            for entry in unit.file.get_all_entries(unit.kind.section(), "Volume") {
                let Ok(volume) = entry.value().parse::<VolumeMount>() else {
                    continue;
                };
                if !volume.is_host_path() {
                    continue;
                }
                let Some(source) = volume.source.as_deref() else {
                    continue;
                };
                let path = normalize(source, &unit.path);
                mounts.push(Mount {
                    unit,
                    entry,
                    path,
                    relabel: volume.relabel(),
                });
            }
        }
        let mut reported = HashSet::new();
        for m in &mounts {
            if m.relabel != Some(Relabel::Private) {
                continue;
            }
            let others: Vec<&Mount<'_>> = mounts
                .iter()
                .filter(|o| {
                    o.unit.path != m.unit.path
                        && (is_within(&o.path, &m.path) || is_within(&m.path, &o.path))
                })
                .collect();
            if others.is_empty() || !reported.insert((m.unit.path.clone(), m.entry.line())) {
                continue;
            }
            let names: Vec<String> = others
                .iter()
                .map(|o| format!("{} (line {})", o.unit.file_name(), o.entry.line()))
                .collect();
            self.findings.push(Finding {
                file: m.unit.path.clone(),
                line: Some(m.entry.line()),
                column: Some(m.entry.column()),
                severity: Code::SharedPrivateRelabel.severity(),
                code: Code::SharedPrivateRelabel,
                message: format!(
                    "`:Z` relabels {} for this container alone, but {} also mounts it: the generator converts both, but when they run SELinux denies the other container access",
                    m.path,
                    names.join(", ")
                ),
                fix: Some(
                    "use `:z` (a label shared by containers) in every unit that mounts it, or give each container its own directory".into(),
                ),
            });
        }
    }
}

/// From which release the generator resolves a reference through `key` to a
/// `kind` file, and from which it refuses a file whose reference it cannot
/// resolve.
fn resolution(key: &str, kind: UnitKind) -> (PodmanVersion, PodmanVersion) {
    match (key, kind) {
        ("Network", UnitKind::Container) | ("Mount", UnitKind::Image) => {
            (PodmanVersion::V5_3, PodmanVersion::V5_3)
        }
        ("Network" | "Volume", _) | ("Mount", UnitKind::Volume) if kind != UnitKind::Artifact => {
            let resolved = if key == "Mount" {
                PodmanVersion::V4_5
            } else {
                PodmanVersion::V4_4
            };
            (resolved, PodmanVersion::V5_3)
        }
        ("Image", UnitKind::Image) => (PodmanVersion::V4_8, PodmanVersion::V4_8),
        ("Image", UnitKind::Build) => (PodmanVersion::V5_2, PodmanVersion::V5_2),
        ("Pod", _) => (PodmanVersion::V5_0, PodmanVersion::V5_0),
        (_, UnitKind::Artifact) => (PodmanVersion::V5_7, PodmanVersion::V5_7),
        _ => (PodmanVersion::V4_4, PodmanVersion::V5_3),
    }
}

/// Checks the value of a main-section key against what the key accepts.
fn check_value(kind: UnitKind, entry: &Entry) -> Result<(), ValueError> {
    let text = entry.unquoted();
    let each_word = |f: &dyn Fn(&str) -> Result<(), ValueError>| -> Result<(), ValueError> {
        let split = words::split(entry.value()).map_err(|e| ValueError {
            what: "quoted words",
            value: String::new(),
            reason: e.to_string(),
        })?;
        split.iter().try_for_each(|w| f(w))
    };
    let number = |t: &str| {
        t.parse::<u64>().map(drop).map_err(|_| ValueError {
            what: "number",
            value: t.to_owned(),
            reason: "expected a whole number, 0 or more".into(),
        })
    };
    let address = |t: &str| {
        t.parse::<IpAddr>().map(drop).map_err(|_| ValueError {
            what: "IP address",
            value: t.to_owned(),
            reason: "expected an address such as 10.89.5.1".into(),
        })
    };
    if BOOLEAN_KEYS.contains(&entry.key()) {
        return parse_bool(text).map(drop);
    }
    match (kind, entry.key()) {
        // `podman build --secret` has a syntax of its own: only containers' are checked.
        (UnitKind::Container, "Secret") => each_word(&|w| w.parse::<Secret>().map(drop)),
        (UnitKind::Container | UnitKind::Pod, "Volume") => {
            entry.value().parse::<VolumeMount>().map(drop)
        }
        (UnitKind::Network, "Subnet") => parse_ip_net(entry.value()).map(drop),
        (UnitKind::Network, "IPRange") => entry.value().parse::<IpRange>().map(drop),
        (UnitKind::Network, "Gateway" | "DNS") => address(entry.value()),
        (UnitKind::Container, "Notify") => text.parse::<Notify>().map(drop),
        (UnitKind::Container, "AutoUpdate") => text.parse::<AutoUpdate>().map(drop),
        (UnitKind::Container, "Pull") => text.parse::<PullPolicy>().map(drop),
        (UnitKind::Container, "HealthOnFailure") => text.parse::<HealthOnFailure>().map(drop),
        (UnitKind::Container, "HealthInterval" | "HealthStartupInterval") => {
            text.parse::<HealthInterval>().map(drop)
        }
        (UnitKind::Container, "HealthTimeout" | "HealthStartPeriod" | "HealthStartupTimeout") => {
            text.parse::<Duration>().map(drop)
        }
        (
            UnitKind::Container,
            "HealthRetries"
            | "HealthStartupRetries"
            | "HealthStartupSuccess"
            | "StopTimeout"
            | "HealthMaxLogCount"
            | "HealthMaxLogSize",
        ) => number(text),
        (UnitKind::Container | UnitKind::Pod, "IP" | "IP6") => address(text),
        _ => Ok(()),
    }
}

/// Keys the generator reads as booleans: anything but 1, yes, true or on is false.
const BOOLEAN_KEYS: &[&str] = &[
    "Internal",
    "IPv6",
    "DisableDNS",
    "ReadOnly",
    "ReadOnlyTmpfs",
    "NoNewPrivileges",
    "RunInit",
    "EnvironmentHost",
    "SecurityLabelDisable",
    "SecurityLabelNested",
    "Copy",
    "StartWithPod",
    "NetworkDeleteOnStop",
    "VolatileTmp",
    "DefaultDependencies",
    "HttpProxy",
    "AllTags",
    "TLSVerify",
    "ForceRM",
    "KubeDownForce",
    "Quiet",
];

/// `KEY=VALUE` pairs passed with `-e`/`--env` in a `PodmanArgs=` line.
fn env_args(value: &str) -> Vec<KeyValue> {
    let args = words::split(value).unwrap_or_default();
    let mut out = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let pair = if arg == "-e" || arg == "--env" {
            iter.next().map(String::as_str)
        } else {
            arg.strip_prefix("--env=")
                .or_else(|| arg.strip_prefix("-e="))
        };
        if let Some(kv) = pair.and_then(|p| p.parse().ok()) {
            out.push(kv);
        }
    }
    out
}

/// Whether an environment variable name says it holds a secret.
fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let tokens: Vec<&str> = upper
        .split(['_', '-', '.'])
        .filter(|t| !t.is_empty())
        .collect();
    if tokens.last().is_some_and(|t| {
        matches!(
            *t,
            "FILE" | "PATH" | "DIR" | "LENGTH" | "ALGORITHM" | "METHOD" | "TYPE"
        )
    }) {
        return false;
    }
    let single = [
        "PASSWORD",
        "PASSWD",
        "PASS",
        "PASSPHRASE",
        "SECRET",
        "TOKEN",
        "APIKEY",
        "CREDENTIAL",
        "CREDENTIALS",
    ];
    tokens.iter().any(|t| single.contains(t))
        || tokens.windows(2).any(|w| {
            w[1] == "KEY"
                && matches!(
                    w[0],
                    "API" | "PRIVATE" | "ACCESS" | "SECRET" | "AUTH" | "ENCRYPTION"
                )
        })
}

/// The service a Quadlet file name stands for.
fn service_of(set: &UnitSet, file_name: &str) -> String {
    set.get(file_name).map_or_else(
        || {
            UnitKind::of_file_name(file_name)
                .map(|k| naming::default_service_name(file_name, k))
                .unwrap_or_default()
        },
        |u| u.names.service.clone(),
    )
}

/// `[Unit]` dependencies of a unit (key, unit name; Quadlet file names translated
/// to their services), with those its references imply.
fn unit_dependencies(set: &UnitSet, unit: &SourceUnit) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in unit.file.entries("Unit") {
        if naming::DEPENDENCY_KEYS.contains(&entry.key()) {
            for name in words::split_list(entry.value()) {
                let name = if naming::is_quadlet_file_name(&name) {
                    service_of(set, &name)
                } else {
                    name
                };
                out.push((entry.key().to_owned(), name));
            }
        }
    }
    for reference in naming::references(unit.file_name(), &unit.file) {
        let service = service_of(set, &reference.file_name);
        for kind in reference.implies {
            let key = match kind {
                DependencyKind::Requires => "Requires",
                DependencyKind::After => "After",
                DependencyKind::BindsTo => "BindsTo",
                DependencyKind::Wants => "Wants",
                DependencyKind::Before => "Before",
            };
            out.push((key.to_owned(), service.clone()));
        }
    }
    out
}

/// A host path without `.` and empty components or a trailing slash; relative paths
/// are taken from the unit's directory.
fn normalize(source: &str, unit_path: &Path) -> String {
    let joined = if source.starts_with('/') {
        PathBuf::from(source)
    } else {
        unit_path
            .parent()
            .unwrap_or_else(|| Path::new(""))
            .join(source)
    };
    let mut parts: Vec<String> = Vec::new();
    for component in joined.components() {
        match component {
            std::path::Component::Normal(c) => parts.push(c.to_string_lossy().into_owned()),
            std::path::Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    format!("/{}", parts.join("/"))
}

/// Whether `inner` is `outer` or below it.
fn is_within(inner: &str, outer: &str) -> bool {
    inner == outer
        || outer == "/"
        || inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for name in [
            "POSTGRES_PASSWORD",
            "REDIS_PASSWORD",
            "DB_PASS",
            "JWT_SECRET",
            "API_KEY",
            "GITHUB_TOKEN",
            "aws_secret_key",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "POSTGRES_PASSWORD_FILE",
            "POSTGRES_USER",
            "POSTGRES_DB",
            "PWD",
            "TOKEN_PATH",
            "PASSWORD_LENGTH",
            "KEYBOARD",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn paths() {
        assert_eq!(normalize("/a//b/./c/", Path::new("x.container")), "/a/b/c");
        assert_eq!(
            normalize("./data", Path::new("/etc/containers/systemd/x.container")),
            "/etc/containers/systemd/data"
        );
        assert!(is_within("/a/b", "/a"));
        assert!(!is_within("/ab", "/a"));
    }

    #[test]
    fn podman_args_env() {
        let pairs = env_args("--env A=1 -e B=2 --env=C=3 --other D=4");
        let keys: Vec<&str> = pairs.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(keys, ["A", "B", "C"]);
    }
}
