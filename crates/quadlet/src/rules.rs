//! The checks that make podman's Quadlet generator refuse a file, release by
//! release from podman 4.4 to 5.8, as each release's generator makes them.
//!
//! A refused file gets no service. Every finding made here has a code for which
//! [`Code::is_refusal`] holds; what the generator lets through but podman or
//! systemd reject later is checked in [`crate::lint`].
//!
//! The generator reads the files of a directory in an order (images first, pods
//! last) and some checks depend on what it converted before: from 5.3, a
//! `Network=x.network` of a refused `x.network` is refused too; from 4.8 to 5.2, an
//! `Image=x.image` of a refused `x.image` as well. The same order is followed here.

// The generator matches extensions case-sensitively (`x.Network` is not a network
// file); so must the rules here.
#![allow(clippy::case_sensitive_file_extension_comparisons)]

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

use crate::finding::{Code, Finding, Scope};
use crate::naming::{self, UnitKind};
use crate::set::{SourceUnit, UnitSet};
use crate::suggest::{closest, suggest_unit};
use crate::syntax::{Entry, UnitFile};
use crate::version::{self, PodmanVersion as V, QUADLET_SECTION};
use crate::words;

/// Podman 5.8.2, which strips only a matched pair of quotes from single values.
const V5_8_2: V = V::new(5, 8, 2);

/// The refusals of the units of `set` (read as `target`'s generator reads unit
/// syntax) by podman `target`'s generator, for units run by `scope`.
pub(crate) fn refusals(set: &UnitSet, target: V, scope: Scope) -> Vec<Finding> {
    // From 5.0, a file that does not parse makes the generator drop its whole
    // directory (files of kinds it does not know, it does not read).
    let mut unparsed: Vec<(&Path, &Path)> = Vec::new();
    if target >= V::V5_0 {
        for failure in set.failures() {
            if let crate::Error::Parse { file, .. } = failure
                && file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(UnitKind::of_file_name)
                    .is_some_and(|k| k.since() <= target)
            {
                unparsed.push((file.parent().unwrap_or(Path::new("")), file));
            }
        }
    }
    let mut findings = Vec::new();
    let dropped = |unit: &SourceUnit| {
        let dir = unit.path.parent().unwrap_or(Path::new(""));
        unparsed.iter().find(|(d, _)| *d == dir).map(|(_, f)| *f)
    };
    for unit in set.units() {
        if let Some(culprit) = dropped(unit) {
            findings.push(Finding {
                file: unit.path.clone(),
                line: None,
                column: None,
                severity: Code::ParseError.severity(),
                code: Code::ParseError,
                message: format!(
                    "{} in the same directory does not parse, and the generator of podman {target} then reads no file of the directory (no service)",
                    culprit.display()
                ),
                fix: Some(format!("fix the syntax of {}", culprit.display())),
            });
        }
    }
    let loaded: HashSet<&str> = set
        .units()
        .iter()
        .filter(|u| u.kind.since() <= target && dropped(u).is_none())
        .map(SourceUnit::file_name)
        .collect();
    let mut order: Vec<(u8, usize, &SourceUnit)> = set
        .units()
        .iter()
        .enumerate()
        .filter(|(_, u)| dropped(u).is_none())
        .map(|(i, u)| (class(u.kind, target), i, u))
        .collect();
    order.sort_by_key(|(class, i, _)| (*class, *i));
    let mut rules = Rules {
        set,
        target,
        scope,
        loaded,
        converted: HashSet::new(),
        findings,
    };
    for (_, _, unit) in order {
        let before = rules.findings.len();
        rules.unit(unit);
        if rules.findings.len() == before {
            rules.converted.insert(unit.file_name());
        }
    }
    rules.findings
}

/// Where a kind of file comes in the generator's order: images before volumes and
/// networks, before builds, before containers and kubes, before pods. Before 4.8
/// nothing depends on the order.
fn class(kind: UnitKind, target: V) -> u8 {
    if target < V::V4_8 {
        return 0;
    }
    match kind {
        UnitKind::Image | UnitKind::Artifact => 1,
        UnitKind::Volume | UnitKind::Network => 2,
        UnitKind::Build => 3,
        UnitKind::Container | UnitKind::Kube => 4,
        UnitKind::Pod => 5,
    }
}

struct Rules<'a> {
    set: &'a UnitSet,
    target: V,
    scope: Scope,
    /// Files the generator reads (parsed, of a kind it knows).
    loaded: HashSet<&'a str>,
    /// Files converted so far, in the generator's order.
    converted: HashSet<&'a str>,
    findings: Vec<Finding>,
}

/// One file, looked up the way the generator looks keys up.
struct Look<'f> {
    file: &'f UnitFile,
    target: V,
}

impl<'f> Look<'f> {
    fn last(&self, section: &str, key: &str) -> Option<&'f Entry> {
        self.file.last_entry(section, key)
    }

    /// The last value, trailing whitespace dropped and quotes removed as the
    /// release does (see [`unquote`]).
    fn get(&self, section: &str, key: &str) -> Option<&'f str> {
        self.last(section, key)
            .map(|e| unquote(e.value(), self.target))
    }

    /// The last value when it is not empty, with its entry.
    fn nonempty(&self, section: &str, key: &str) -> Option<(&'f str, &'f Entry)> {
        let entry = self.last(section, key)?;
        let value = unquote(entry.value(), self.target);
        (!value.is_empty()).then_some((value, entry))
    }

    /// Every value, an empty one clearing those before it.
    fn all(&self, section: &str, key: &str) -> Vec<&'f Entry> {
        self.file.get_all_entries(section, key)
    }

    /// The words of every value, as a systemd list.
    fn list(&self, section: &str, key: &str) -> Vec<(String, &'f Entry)> {
        self.all(section, key)
            .into_iter()
            .flat_map(|e| {
                words::split_list(e.value())
                    .into_iter()
                    .map(move |w| (w, e))
            })
            .collect()
    }

    /// The words of every value, as a command line (values that do not split are
    /// skipped, as the generator skips them).
    fn args(&self, section: &str, key: &str) -> Vec<(String, &'f Entry)> {
        self.all(section, key)
            .into_iter()
            .flat_map(|e| {
                words::split(e.value())
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |w| (w, e))
            })
            .collect()
    }
}

/// A single value as the generator of `target` looks it up: trailing whitespace
/// dropped, then from 5.8.2 a matched pair of quotes, from 5.0 every leading and
/// trailing quote, before 5.0 none.
fn unquote(value: &str, target: V) -> &str {
    let v = value.trim_end();
    if target < V::V5_0 {
        v
    } else if target >= V5_8_2 {
        if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
            &v[1..v.len() - 1]
        } else {
            v
        }
    } else {
        v.trim_matches('"')
    }
}

/// A missing or refused Quadlet file, as a reference sees it.
enum Unresolved {
    /// Not in the set, or not read by this release.
    Missing,
    /// Read, but refused earlier in the generator's order.
    Refused,
}

impl<'a> Rules<'a> {
    fn push_fix(
        &mut self,
        unit: &SourceUnit,
        entry: Option<&Entry>,
        code: Code,
        message: String,
        fix: Option<String>,
    ) {
        let (line, column) = match entry {
            Some(e) => (Some(e.line()), Some(e.column())),
            None => (unit.file.section_line(unit.kind.section()), None),
        };
        let mut message = message;
        let _ = write!(
            message,
            ": the generator of podman {} refuses {} (no service)",
            self.target,
            unit.file_name()
        );
        self.findings.push(Finding {
            file: unit.path.clone(),
            line,
            column,
            severity: code.severity(),
            code,
            message,
            fix,
        });
    }

    fn unit(&mut self, unit: &'a SourceUnit) {
        let kind = unit.kind;
        if kind.since() > self.target {
            self.findings.push(Finding {
                file: unit.path.clone(),
                line: None,
                column: None,
                severity: Code::TooNew.severity(),
                code: Code::TooNew,
                message: format!(
                    "podman reads .{kind} files from {} on; the generator of podman {} skips this file (no service)",
                    kind.since(),
                    self.target
                ),
                fix: Some(format!("target podman {} or later", kind.since())),
            });
            return;
        }
        let look = Look {
            file: &unit.file,
            target: self.target,
        };
        self.dependencies(unit);
        self.keys(unit);
        match kind {
            UnitKind::Container => self.container(unit, &look),
            UnitKind::Network => self.network(unit, &look),
            UnitKind::Volume => self.volume(unit, &look),
            UnitKind::Kube => self.kube(unit, &look),
            UnitKind::Pod => self.pod(unit, &look),
            UnitKind::Image => self.required(unit, &look, "Image", "Image=REGISTRY/NAME:TAG"),
            UnitKind::Build => self.build(unit, &look),
            UnitKind::Artifact => {
                self.required(unit, &look, "Artifact", "Artifact=REGISTRY/NAME:TAG");
            }
        }
    }

    /// A key the kind cannot do without.
    fn required(&mut self, unit: &SourceUnit, look: &Look<'_>, key: &str, example: &str) {
        if look.nonempty(unit.kind.section(), key).is_none() {
            self.missing(unit, key, example);
        }
    }

    fn missing(&mut self, unit: &SourceUnit, key: &str, example: &str) {
        let section = unit.kind.section();
        if unit.file.has_section(section) {
            self.push_fix(
                unit,
                None,
                Code::MissingKey,
                format!("no `{key}=` in [{section}]"),
                Some(format!("add `{example}` to [{section}]")),
            );
        } else {
            self.push_fix(
                unit,
                None,
                Code::MissingSection,
                format!("no [{section}] section, so no `{key}=`"),
                Some(format!("add a [{section}] section with `{example}`")),
            );
        }
    }

    /// `[Unit]` dependencies naming Quadlet files, which 5.5 translates to services.
    fn dependencies(&mut self, unit: &SourceUnit) {
        if self.target < V::V5_5 {
            return;
        }
        for key in naming::DEPENDENCY_KEYS {
            for entry in unit.file.get_all_entries("Unit", key) {
                for name in words::split_list(entry.value()) {
                    let extension = name
                        .rsplit('/')
                        .next()
                        .and_then(|base| base.rfind('.').map(|dot| &base[dot + 1..]));
                    let Some(kind) = extension
                        .and_then(|e| UnitKind::ALL.into_iter().find(|k| k.extension() == e))
                    else {
                        continue;
                    };
                    if kind == UnitKind::Artifact && self.target < V::V5_7 {
                        continue;
                    }
                    if !self.loaded.contains(name.as_str()) {
                        let fix = suggest_unit(self.set, key, &name);
                        self.push_fix(
                            unit,
                            Some(entry),
                            Code::UnknownUnit,
                            format!("`{key}={name}` names a Quadlet file {}", self.absent(&name)),
                            fix,
                        );
                    }
                }
            }
        }
    }

    /// Why a file the generator looks for is not there.
    fn absent(&self, file_name: &str) -> String {
        match self.set.get(file_name) {
            Some(u) if u.kind.since() > self.target => format!(
                "that podman {} does not read (.{} files arrived in {})",
                self.target,
                u.kind,
                u.kind.since()
            ),
            Some(_) => "that is not read".to_owned(),
            None => {
                if self
                    .set
                    .failures()
                    .iter()
                    .any(|f| matches!(f, crate::Error::Parse { file, .. } if file.file_name().and_then(|n| n.to_str()) == Some(file_name)))
                {
                    "that does not parse (see its parse error)".to_owned()
                } else {
                    "that is not in this set".to_owned()
                }
            }
        }
    }

    /// Keys of the main section and of `[Quadlet]` the release does not know.
    fn keys(&mut self, unit: &SourceUnit) {
        let kind = unit.kind;
        let section = kind.section();
        let names: Vec<&str> = version::keys(kind).iter().map(|i| i.key).collect();
        for entry in unit.file.entries(section) {
            match version::key_info(kind, entry.key()) {
                None => {
                    let fix = closest(entry.key(), &names, 3).map_or_else(
                        || {
                            format!(
                                "remove it, or pass the podman option through `PodmanArgs=`; keys of [{section}]: see podman-systemd.unit(5)"
                            )
                        },
                        |k| format!("did you mean `{k}=`?"),
                    );
                    self.push_fix(
                        unit,
                        Some(entry),
                        Code::UnknownKey,
                        format!("no podman knows `{}=` in [{section}]", entry.key()),
                        Some(fix),
                    );
                }
                Some(info) if info.since > self.target => {
                    let args = version::as_podman_args(kind, &info, entry.unquoted(), self.target);
                    let fix = match args {
                        Some(args) => format!(
                            "write `PodmanArgs={args}` instead, or target podman {}",
                            info.since
                        ),
                        None => format!("remove it, or target podman {} or later", info.since),
                    };
                    self.push_fix(
                        unit,
                        Some(entry),
                        Code::TooNew,
                        format!("`{}=` arrived in podman {}", entry.key(), info.since),
                        Some(fix),
                    );
                }
                Some(_) => {}
            }
        }
        // The [Quadlet] section is checked from 5.3; before, it is only a section
        // systemd ignores.
        if self.target < V::V5_3 {
            return;
        }
        let names: Vec<&str> = version::quadlet_section_keys()
            .iter()
            .map(|i| i.key)
            .collect();
        for entry in unit.file.entries(QUADLET_SECTION) {
            match version::quadlet_key_info(entry.key()) {
                Some(info) if info.since <= self.target => {}
                Some(info) => self.push_fix(
                    unit,
                    Some(entry),
                    Code::TooNew,
                    format!(
                        "`{}=` in [{QUADLET_SECTION}] arrived in podman {}",
                        entry.key(),
                        info.since
                    ),
                    Some(format!("remove it, or target podman {}", info.since)),
                ),
                None => {
                    let fix = closest(entry.key(), &names, 3).map_or_else(
                        || {
                            format!(
                                "remove it (keys of [{QUADLET_SECTION}]: {})",
                                names.join(", ")
                            )
                        },
                        |k| format!("did you mean `{k}=`?"),
                    );
                    self.push_fix(
                        unit,
                        Some(entry),
                        Code::UnknownKey,
                        format!("no podman knows `{}=` in [{QUADLET_SECTION}]", entry.key()),
                        Some(fix),
                    );
                }
            }
        }
    }

    fn container(&mut self, unit: &'a SourceUnit, look: &Look<'a>) {
        let s = "Container";
        let image = look.nonempty(s, "Image");
        if self.target < V::V4_5 {
            if image.is_none() {
                self.missing(unit, "Image", "Image=REGISTRY/NAME:TAG");
            }
        } else {
            let rootfs = look.nonempty(s, "Rootfs");
            match (image, rootfs) {
                (None, None) => {
                    if unit.file.has_section(s) {
                        self.push_fix(
                            unit,
                            None,
                            Code::MissingImage,
                            "the container has neither `Image=` nor `Rootfs=`".into(),
                            Some("add Image=REGISTRY/NAME:TAG (a fully qualified name)".into()),
                        );
                    } else {
                        self.missing(unit, "Image", "Image=REGISTRY/NAME:TAG");
                    }
                }
                (Some(_), Some((_, entry))) => self.push_fix(
                    unit,
                    Some(entry),
                    Code::ConflictingKeys,
                    "`Image=` and `Rootfs=` are both set".into(),
                    Some("keep one of them".into()),
                ),
                _ => {}
            }
        }
        if let Some((name, entry)) = image {
            self.image_source(unit, entry, name);
        }
        self.service_checks(unit, look, true);
        self.networks(unit, look);
        for entry in look.all(s, "ExposeHostPort") {
            if !is_port_range(entry.value().trim()) {
                self.push_fix(
                    unit,
                    Some(entry),
                    Code::InvalidValue,
                    format!(
                        "`ExposeHostPort={}` is not a port or port range",
                        entry.value()
                    ),
                    Some("write PORT, PORT-PORT, or either with /tcp or /udp".into()),
                );
            }
        }
        self.publish_ports(unit, look);
        if (V::V4_5..V::V5_3).contains(&self.target) {
            for entry in look.all(s, "Tmpfs") {
                if entry.value().matches(':').count() > 1 {
                    self.push_fix(
                        unit,
                        Some(entry),
                        Code::InvalidValue,
                        format!(
                            "`Tmpfs={}` has more than one `:` (podman {} reads only CONTAINER-DIR[:OPTIONS])",
                            entry.value(),
                            self.target
                        ),
                        Some("join the options with commas: `Tmpfs=/run:rw,size=64m`".into()),
                    );
                }
            }
        }
        if self.target >= V::V4_8
            && look.nonempty(s, "User").is_none()
            && let Some((_, entry)) = look.nonempty(s, "Group")
        {
            self.push_fix(
                unit,
                Some(entry),
                Code::MissingKey,
                "`Group=` is set without `User=`".into(),
                Some("add `User=` (the user to run as), or remove `Group=`".into()),
            );
        }
        self.user_mappings(unit, look, true);
        self.volumes(unit, look);
        self.mounts(unit, look);
        if self.target >= V::V5_5 {
            let signal = look.nonempty(s, "ReloadSignal");
            let command = look
                .last(s, "ReloadCmd")
                .filter(|e| words::split(e.value()).is_ok_and(|w| !w.is_empty()));
            if let (Some(_), Some(entry)) = (signal, command) {
                self.push_fix(
                    unit,
                    Some(entry),
                    Code::ConflictingKeys,
                    "`ReloadCmd=` and `ReloadSignal=` are both set".into(),
                    Some("keep one of them".into()),
                );
            }
        }
        if self.target >= V::V5_0
            && let Some((pod, entry)) = look.nonempty(s, "Pod")
        {
            if !pod.ends_with(".pod") {
                self.push_fix(
                    unit,
                    Some(entry),
                    Code::InvalidValue,
                    format!("`Pod={pod}` does not name a .pod file (the generator joins only Quadlet pods)"),
                    Some(format!("write `Pod={pod}.pod` and add that file, or use `PodmanArgs=--pod {pod}`")),
                );
            } else if !self.loaded.contains(pod) {
                let fix = suggest_unit(self.set, "Pod", pod);
                self.push_fix(
                    unit,
                    Some(entry),
                    Code::UnknownUnit,
                    format!("`Pod={pod}` names a pod file {}", self.absent(pod)),
                    fix,
                );
            }
        }
    }

    /// `KillMode=` and `Type=` of `[Service]`, which the generator of containers and
    /// kubes checks (`Type=` of kubes from 4.8).
    fn service_checks(&mut self, unit: &SourceUnit, look: &Look<'_>, check_type: bool) {
        if let Some(mode) = look.get("Service", "KillMode")
            && mode != "mixed"
            && mode != "control-group"
        {
            let entry = look.last("Service", "KillMode");
            self.push_fix(
                unit,
                entry,
                Code::InvalidValue,
                format!("`KillMode={mode}` in [Service] (only `mixed` or `control-group`)"),
                Some("remove it (the generator sets `KillMode=mixed`)".into()),
            );
        }
        if check_type
            && let Some(kind) = look.get("Service", "Type")
            && kind != "notify"
            && kind != "oneshot"
        {
            let entry = look.last("Service", "Type");
            self.push_fix(
                unit,
                entry,
                Code::InvalidValue,
                format!("`Type={kind}` in [Service] (only `notify` or `oneshot`)"),
                Some("remove it (the generator sets `Type=notify`)".into()),
            );
        }
    }

    /// `Image=` naming a .image (4.8) or .build (5.2) file.
    fn image_source(&mut self, unit: &SourceUnit, entry: &Entry, name: &str) {
        let is_image = name.ends_with(".image") && self.target >= V::V4_8;
        let is_build = name.ends_with(".build") && self.target >= V::V5_2;
        if !is_image && !is_build {
            return;
        }
        let unresolved = if self.target >= V::V5_3 {
            (!self.loaded.contains(name)).then_some(Unresolved::Missing)
        } else if is_build {
            // 5.2 knows the images of .build files that have an `ImageTag=`.
            match self.set.get(name) {
                Some(b)
                    if self.loaded.contains(name)
                        && Look {
                            file: &b.file,
                            target: self.target,
                        }
                        .nonempty("Build", "ImageTag")
                        .is_some() =>
                {
                    None
                }
                Some(_) if self.loaded.contains(name) => Some(Unresolved::Refused),
                _ => Some(Unresolved::Missing),
            }
        } else if self.converted.contains(name) {
            None
        } else if self.loaded.contains(name) {
            Some(Unresolved::Refused)
        } else {
            Some(Unresolved::Missing)
        };
        let key = entry.key();
        match unresolved {
            None => {}
            Some(Unresolved::Missing) => {
                let fix = suggest_unit(self.set, key, name);
                self.push_fix(
                    unit,
                    Some(entry),
                    Code::UnknownUnit,
                    format!("`{key}={name}` names an image file {}", self.absent(name)),
                    fix,
                );
            }
            Some(Unresolved::Refused) => self.push_fix(
                unit,
                Some(entry),
                Code::UnknownUnit,
                if is_build {
                    format!("`{key}={name}`: {name} has no `ImageTag=`, so podman {} cannot name its image", self.target)
                } else {
                    format!("`{key}={name}`: {name} is refused itself, so its image has no name")
                },
                Some(format!("fix {name} first")),
            ),
        }
    }

    /// `Network=` naming .network files (checked from 5.3) and .container files.
    fn networks(&mut self, unit: &SourceUnit, look: &Look<'_>) {
        if self.target < V::V5_3 {
            return;
        }
        let section = unit.kind.section();
        for entry in look.all(section, "Network") {
            let value = entry.value();
            let (name, options) = match value.split_once(':') {
                Some((n, o)) => (n, Some(o)),
                None => (value, None),
            };
            let is_network = name.ends_with(".network");
            let is_container = name.ends_with(".container");
            if !is_network && !is_container {
                continue;
            }
            if !self.loaded.contains(name) {
                let fix = suggest_unit(self.set, "Network", name);
                self.push_fix(
                    unit,
                    Some(entry),
                    Code::UnknownUnit,
                    format!("`Network={value}` names a file {}", self.absent(name)),
                    fix,
                );
                continue;
            }
            let named = if is_network {
                self.converted.contains(name)
            } else {
                self.container_name_known(name)
            };
            if !named {
                let why = if is_network {
                    format!("{name} is refused itself, so its network has no name")
                } else if self.target < V::V5_4
                    && self
                        .set
                        .get(name)
                        .is_some_and(|c| c.file_name() > unit.file_name())
                {
                    format!(
                        "podman {} knows a container's name only once it has converted its file, and converts {name} after {}",
                        self.target,
                        unit.file_name()
                    )
                } else {
                    format!(
                        "the generator cannot tell the name of the container of {name} (a template, or `%` in its name), or refuses it"
                    )
                };
                self.push_fix(
                    unit,
                    Some(entry),
                    Code::UnknownUnit,
                    format!("`Network={value}`: {why}"),
                    Some(if is_network {
                        format!("fix {name} first")
                    } else {
                        "give the container a `ContainerName=` without `%`, or join it with `Network=container:NAME`".into()
                    }),
                );
                continue;
            }
            if is_container && options.is_some() {
                self.push_fix(
                    unit,
                    Some(entry),
                    Code::InvalidValue,
                    format!(
                        "`Network={value}`: joining another container's network takes no options"
                    ),
                    Some(format!("write `Network={name}`")),
                );
            }
        }
    }

    /// Whether the generator knows the podman name of the container of `file_name`
    /// when it reads a `Network=` naming it.
    fn container_name_known(&self, file_name: &str) -> bool {
        let Some(container) = self.set.get(file_name) else {
            return false;
        };
        if self.target < V::V5_4 && !self.converted.contains(file_name) {
            return false;
        }
        let look = Look {
            file: &container.file,
            target: self.target,
        };
        let name = look.nonempty("Container", "ContainerName").map_or_else(
            || {
                if file_name.contains('@') {
                    "systemd-%p_%i".to_owned()
                } else {
                    "systemd-%N".to_owned()
                }
            },
            |(n, _)| n.to_owned(),
        );
        let service = container
            .names
            .service
            .strip_suffix(".service")
            .unwrap_or(&container.names.service);
        !name.replace("%N", service).contains('%')
    }

    /// `PublishPort=`, which the generator checks up to 5.2.
    fn publish_ports(&mut self, unit: &SourceUnit, look: &Look<'_>) {
        if self.target >= V::V5_3 {
            return;
        }
        for entry in look.all(unit.kind.section(), "PublishPort") {
            let value = entry.value().trim();
            let parts = split_ports(value);
            let (host, container) = match parts.as_slice() {
                [c] => ("", *c),
                [h, c] | [_, h, c] => (*h, *c),
                _ => {
                    self.push_fix(
                        unit,
                        Some(entry),
                        Code::InvalidValue,
                        format!("`PublishPort={value}` has more than three parts"),
                        Some("write [[IP:][HOST-PORT]:]CONTAINER-PORT[/PROTOCOL]".into()),
                    );
                    continue;
                }
            };
            for port in [host, container] {
                if !port.is_empty() && !is_port_range(port) {
                    self.push_fix(
                        unit,
                        Some(entry),
                        Code::InvalidValue,
                        format!("`PublishPort={value}`: {port:?} is not a port or port range (podman {} checks it)", self.target),
                        Some("write [[IP:][HOST-PORT]:]CONTAINER-PORT[/PROTOCOL]".into()),
                    );
                    break;
                }
            }
        }
    }

    /// User namespace keys: explicit mappings (4.8) and the deprecated `Remap*` keys.
    fn user_mappings(&mut self, unit: &SourceUnit, look: &Look<'_>, manual: bool) {
        let s = unit.kind.section();
        if self.target >= V::V4_8 {
            let explicit = [
                look.nonempty(s, "UserNS").map(|(_, e)| e),
                look.list(s, "UIDMap").first().map(|(_, e)| *e),
                look.list(s, "GIDMap").first().map(|(_, e)| *e),
                look.nonempty(s, "SubUIDMap").map(|(_, e)| e),
                look.nonempty(s, "SubGIDMap").map(|(_, e)| e),
            ];
            if let Some(explicit) = explicit.into_iter().flatten().next() {
                let remap = ["RemapUid", "RemapGid", "RemapUsers"]
                    .into_iter()
                    .find_map(|k| look.last(s, k));
                if let Some(remap) = remap {
                    self.push_fix(
                        unit,
                        Some(remap),
                        Code::ConflictingKeys,
                        format!(
                            "the deprecated `{}=` is set beside `{}=`",
                            remap.key(),
                            explicit.key()
                        ),
                        Some("remove the `Remap*=` keys (UserNS=, UIDMap=, GIDMap=, SubUIDMap= and SubGIDMap= replace them)".into()),
                    );
                }
                return;
            }
        } else if self.target >= V::V4_5 && look.nonempty(s, "UserNS").is_some() {
            // Before 4.8, `UserNS=` made the generator skip the Remap keys.
            return;
        }
        let uid = look.list(s, "RemapUid");
        let gid = look.list(s, "RemapGid");
        let users = look.last(s, "RemapUsers");
        let mode = users.map_or("", Entry::value);
        match mode {
            "" => {
                if let Some((_, entry)) = uid.first().or(gid.first()) {
                    self.push_fix(
                        unit,
                        Some(entry),
                        Code::MissingKey,
                        format!("`{}=` is set without `RemapUsers=`", entry.key()),
                        Some(
                            "add `RemapUsers=` (auto, keep-id or manual), or better, use `UserNS=`"
                                .into(),
                        ),
                    );
                }
            }
            "manual" if !manual => self.push_fix(
                unit,
                users,
                Code::InvalidValue,
                format!(
                    "`RemapUsers=manual` is not supported in a .{} file",
                    unit.kind
                ),
                Some("use `RemapUsers=auto` or `UserNS=`".into()),
            ),
            "manual" | "auto" => {}
            "keep-id" => {
                if self.target < V::V5_3 && self.scope == Scope::System {
                    self.push_fix(
                        unit,
                        users,
                        Code::InvalidValue,
                        format!(
                            "`RemapUsers=keep-id` is not supported in system units by podman {}",
                            self.target
                        ),
                        Some("use `RemapUsers=auto`, or run it as a user unit".into()),
                    );
                }
                if self.target >= V::V4_5 {
                    for (list, key) in [(&uid, "RemapUid"), (&gid, "RemapGid")] {
                        if list.len() > 1 {
                            self.push_fix(
                                unit,
                                Some(list[1].1),
                                Code::InvalidValue,
                                format!(
                                    "`RemapUsers=keep-id` takes one `{key}=` value, not {}",
                                    list.len()
                                ),
                                Some(format!("keep one `{key}=` value")),
                            );
                        }
                    }
                }
            }
            other => self.push_fix(
                unit,
                users,
                Code::InvalidValue,
                format!("`RemapUsers={other}` is not `auto`, `keep-id` or `manual`"),
                Some(
                    "write `RemapUsers=auto`, `keep-id` or `manual`, or better, use `UserNS=`"
                        .into(),
                ),
            ),
        }
    }

    /// A source of `Volume=` or `Mount=` naming a Quadlet file (checked from 5.3).
    fn storage_source(&mut self, unit: &SourceUnit, entry: &Entry, source: &str, image: bool) {
        if self.target < V::V5_3 || source.starts_with('.') || source.starts_with('/') {
            return;
        }
        let quadlet = source.ends_with(".volume")
            || (image && source.ends_with(".image"))
            || (self.target >= V::V5_7 && source.ends_with(".artifact"));
        if quadlet && !self.loaded.contains(source) {
            let fix = suggest_unit(self.set, entry.key(), source);
            self.push_fix(
                unit,
                Some(entry),
                Code::UnknownUnit,
                format!(
                    "`{}=` names {source}, a file {}",
                    entry.key(),
                    self.absent(source)
                ),
                fix,
            );
        }
    }

    fn volumes(&mut self, unit: &SourceUnit, look: &Look<'_>) {
        for entry in look.all(unit.kind.section(), "Volume") {
            let mut parts = entry.value().splitn(3, ':');
            let first = parts.next().unwrap_or_default();
            if parts.next().is_some() && !first.is_empty() {
                self.storage_source(unit, entry, first, false);
            }
        }
    }

    fn mounts(&mut self, unit: &SourceUnit, look: &Look<'_>) {
        if self.target < V::V4_5 {
            return;
        }
        for (mount, entry) in look.args("Container", "Mount") {
            if self.target < V::V4_8 {
                self.old_mount(unit, entry, &mount);
                continue;
            }
            let fields = match csv_fields(&mount) {
                Ok(fields) => fields,
                Err(reason) => {
                    self.push_fix(
                        unit,
                        Some(entry),
                        Code::InvalidValue,
                        format!("`Mount={mount}` is not comma-separated options: {reason}"),
                        Some("write type=TYPE,source=SOURCE,destination=PATH[,OPTION...]; quote a whole option, not part of it".into()),
                    );
                    continue;
                }
            };
            let mut mount_type = None;
            let mut tokens = Vec::new();
            for field in fields {
                match field.split('=').collect::<Vec<_>>().as_slice() {
                    ["type", t] if mount_type.is_none() => mount_type = Some((*t).to_owned()),
                    _ => tokens.push(field),
                }
            }
            let mount_type = match mount_type {
                Some(t) => t,
                None if self.target >= V::V5_6 => "volume".to_owned(),
                None => {
                    self.push_fix(
                        unit,
                        Some(entry),
                        Code::InvalidValue,
                        format!(
                            "`Mount={mount}` has no `type=` (podman {} needs one)",
                            self.target
                        ),
                        Some("add type=bind, type=volume, type=tmpfs, ...".into()),
                    );
                    continue;
                }
            };
            let resolved = matches!(mount_type.as_str(), "volume" | "bind" | "glob")
                || (mount_type == "image" && self.target >= V::V5_3)
                || (mount_type == "artifact" && self.target >= V::V5_7);
            if !resolved {
                continue;
            }
            let mut source = None;
            let mut bad = false;
            for token in &tokens {
                let (key, value) = match token.split_once('=') {
                    Some((k, v)) => (k, Some(v)),
                    None => (token.as_str(), None),
                };
                if key == "source" || key == "src" {
                    match value {
                        Some(v) => source = Some(v.to_owned()),
                        None => bad = true,
                    }
                }
            }
            if bad {
                self.push_fix(
                    unit,
                    Some(entry),
                    Code::InvalidValue,
                    format!("`Mount={mount}`: `source` has no value"),
                    Some("write source=VALUE".into()),
                );
                continue;
            }
            match source.as_deref() {
                None | Some("") if self.target < V::V5_7 => self.crash(
                    unit,
                    entry,
                    format!("`Mount={mount}` has no source, and podman {} crashes on a type={mount_type} mount without one", self.target),
                    "add source=... to the mount",
                ),
                None | Some("") => self.push_fix(
                    unit,
                    Some(entry),
                    Code::InvalidValue,
                    format!("`Mount={mount}` has no source"),
                    Some("add source=... to the mount".into()),
                ),
                Some(source) => self.storage_source(unit, entry, source, true),
            }
        }
    }

    /// `Mount=` as 4.5 to 4.7 read it: every option must be KEY=VALUE, and the
    /// source of a volume or bind mount must not be empty.
    fn old_mount(&mut self, unit: &SourceUnit, entry: &Entry, mount: &str) {
        let mut pairs = std::collections::HashMap::new();
        for option in mount.split(',') {
            let mut kv = option.split('=');
            let key = kv.next().unwrap_or_default();
            let Some(value) = kv.next() else {
                self.crash(
                    unit,
                    entry,
                    format!(
                        "`Mount={mount}`: podman {} crashes on an option without `=` ({option:?})",
                        self.target
                    ),
                    "write every option as KEY=VALUE (ro=true, not ro), or upgrade podman",
                );
                return;
            };
            pairs.insert(key, value);
        }
        let types: &[&str] = if self.target >= V::V4_7 {
            &["volume", "bind", "glob"]
        } else {
            &["volume", "bind"]
        };
        if pairs.get("type").is_some_and(|t| types.contains(t))
            && pairs.get("source").or(pairs.get("src")) == Some(&"")
        {
            self.crash(
                unit,
                entry,
                format!(
                    "`Mount={mount}`: podman {} crashes on an empty source",
                    self.target
                ),
                "give the mount a source",
            );
        }
    }

    fn crash(&mut self, unit: &SourceUnit, entry: &Entry, message: String, fix: &str) {
        let mut message = message;
        message.push_str(
            ": no file of the directory gets a service (those it converted before, at most)",
        );
        self.findings.push(Finding {
            file: unit.path.clone(),
            line: Some(entry.line()),
            column: Some(entry.column()),
            severity: Code::GeneratorCrash.severity(),
            code: Code::GeneratorCrash,
            message,
            fix: Some(fix.to_owned()),
        });
    }

    fn network(&mut self, unit: &SourceUnit, look: &Look<'_>) {
        let s = "Network";
        let subnets = look.all(s, "Subnet");
        let gateways = look.all(s, "Gateway");
        let ranges = look.all(s, "IPRange");
        if subnets.is_empty() {
            if let Some(entry) = gateways.first().or(ranges.first()) {
                self.push_fix(
                    unit,
                    Some(entry),
                    Code::MissingKey,
                    format!("`{}=` is set without `Subnet=`", entry.key()),
                    Some("add the `Subnet=` it belongs to (each Gateway= and IPRange= pairs with a Subnet=, in order)".into()),
                );
            }
            return;
        }
        for (list, key) in [(&gateways, "Gateway"), (&ranges, "IPRange")] {
            if list.len() > subnets.len() {
                self.push_fix(
                    unit,
                    Some(list[subnets.len()]),
                    Code::ConflictingKeys,
                    format!(
                        "{} `{key}=` for {} `Subnet=` (each pairs with a subnet, in order)",
                        list.len(),
                        subnets.len()
                    ),
                    Some(format!(
                        "add a `Subnet=` for each `{key}=`, or remove the extra ones"
                    )),
                );
            }
        }
    }

    fn volume(&mut self, unit: &SourceUnit, look: &Look<'_>) {
        let s = "Volume";
        if self.target >= V::V4_8 && look.get(s, "Driver") == Some("image") {
            match look.last(s, "Image") {
                None => self.push_fix(
                    unit,
                    look.last(s, "Driver"),
                    Code::MissingKey,
                    "`Driver=image` without `Image=`".into(),
                    Some("add `Image=` (the image to mount, or an .image or .build file)".into()),
                ),
                Some(entry) => {
                    let name = unquote(entry.value(), self.target);
                    self.image_source(unit, entry, name);
                }
            }
            return;
        }
        let device = look.nonempty(s, "Device");
        for key in ["Type", "Options"] {
            if device.is_none()
                && let Some((_, entry)) = look.nonempty(s, key)
            {
                self.push_fix(
                    unit,
                    Some(entry),
                    Code::MissingKey,
                    format!("`{key}=` is set without `Device=`"),
                    Some(format!("add `Device=` (what to mount), or remove `{key}=`")),
                );
            }
        }
    }

    fn kube(&mut self, unit: &SourceUnit, look: &Look<'_>) {
        let s = "Kube";
        let yamls = if self.target >= V::V5_7 {
            look.list(s, "Yaml").len()
        } else {
            usize::from(look.nonempty(s, "Yaml").is_some())
        };
        if yamls == 0 {
            self.missing(unit, "Yaml", "Yaml=FILE.yaml");
        }
        self.service_checks(unit, look, self.target >= V::V4_8);
        self.user_mappings(unit, look, false);
        self.networks(unit, look);
        self.publish_ports(unit, look);
        if self.target < V::V4_7 {
            return;
        }
        let Some((value, entry)) = look.nonempty(s, "SetWorkingDirectory") else {
            return;
        };
        if self.target < V::V5_2 && look.nonempty("Service", "WorkingDirectory").is_some() {
            return;
        }
        match value.to_ascii_lowercase().as_str() {
            "yaml" => {
                if self.target >= V::V5_7 && yamls > 1 {
                    self.push_fix(
                        unit,
                        Some(entry),
                        Code::ConflictingKeys,
                        format!("`SetWorkingDirectory=yaml` with {yamls} YAML files"),
                        Some("name one YAML file, or write `SetWorkingDirectory=unit`".into()),
                    );
                }
            }
            "unit" => {}
            _ => self.push_fix(
                unit,
                Some(entry),
                Code::InvalidValue,
                format!("`SetWorkingDirectory={value}` in a .kube file (only `yaml` or `unit`)"),
                Some("write `SetWorkingDirectory=yaml` or `SetWorkingDirectory=unit`".into()),
            ),
        }
    }

    fn pod(&mut self, unit: &SourceUnit, look: &Look<'_>) {
        self.publish_ports(unit, look);
        if self.target >= V::V5_3 {
            self.user_mappings(unit, look, true);
        }
        self.networks(unit, look);
        self.volumes(unit, look);
    }

    fn build(&mut self, unit: &SourceUnit, look: &Look<'_>) {
        let s = "Build";
        let tagged = if self.target >= V::V5_3 {
            !look.all(s, "ImageTag").is_empty()
        } else {
            look.nonempty(s, "ImageTag").is_some()
        };
        if !tagged {
            self.missing(unit, "ImageTag", "ImageTag=localhost/NAME:TAG");
        }
        self.networks(unit, look);
        self.volumes(unit, look);
        let user_directory = look.nonempty("Service", "WorkingDirectory").is_some();
        let mut context = "";
        let mut directory_set = false;
        if let Some((value, entry)) = look.nonempty(s, "SetWorkingDirectory") {
            let relative_to = match value.to_ascii_lowercase().as_str() {
                "yaml" => {
                    self.push_fix(
                        unit,
                        Some(entry),
                        Code::InvalidValue,
                        "`SetWorkingDirectory=yaml` in a .build file (only in .kube files)".into(),
                        Some("write `SetWorkingDirectory=file`, `unit`, or the build context (a path or URL)".into()),
                    );
                    return;
                }
                "file" => match look.last(s, "File") {
                    None => {
                        self.push_fix(
                            unit,
                            Some(entry),
                            Code::MissingKey,
                            "`SetWorkingDirectory=file` without `File=`".into(),
                            Some("add `File=` (the Containerfile)".into()),
                        );
                        return;
                    }
                    Some(file) => unquote(file.value(), self.target),
                },
                "unit" => "unit",
                _ => {
                    context = value;
                    if value.starts_with('/') { "" } else { "unit" }
                }
            };
            if !relative_to.is_empty() && !is_url(context) {
                if user_directory {
                    // The generator then drops the context.
                    context = "";
                } else {
                    directory_set = true;
                }
            }
        }
        let directory = user_directory || directory_set;
        let file = look.nonempty(s, "File");
        if !directory && file.is_none() && context.is_empty() {
            self.push_fix(
                unit,
                None,
                Code::MissingKey,
                "neither `SetWorkingDirectory=` nor `File=`".into(),
                Some(
                    "add `File=` (the Containerfile) or `SetWorkingDirectory=` (the build context)"
                        .into(),
                ),
            );
            return;
        }
        if context.is_empty()
            && let Some((path, entry)) = file
            && !path.starts_with('/')
            && !is_url(path)
            && !(self.target >= V::V5_7 && starts_with_specifier(path))
            && !directory
        {
            self.push_fix(
                unit,
                Some(entry),
                Code::MissingKey,
                format!("`File={path}` is relative, and there is no `SetWorkingDirectory=` to take it from"),
                Some("add `SetWorkingDirectory=unit` (or `file`, or the build context), or give `File=` an absolute path".into()),
            );
        }
    }
}

/// Whether the generator takes `value` for a port or port range: it ends with
/// digits, then perhaps `/tcp` or `/udp` (the check is that loose).
fn is_port_range(value: &str) -> bool {
    let rest = value
        .strip_suffix("/udp")
        .or_else(|| value.strip_suffix("/tcp"))
        .unwrap_or(value);
    rest.ends_with(|c: char| c.is_ascii_digit())
}

/// `PublishPort=` split at colons outside `[...]`.
fn split_ports(value: &str) -> Vec<&str> {
    let bytes = value.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut end) = (0, 0);
    while end < bytes.len() {
        match bytes[end] {
            b'[' => {
                end += 1;
                while end < bytes.len() && bytes[end] != b']' {
                    end += 1;
                }
                if end < bytes.len() {
                    end += 1;
                }
            }
            b':' => {
                parts.push(&value[start..end]);
                end += 1;
                start = end;
            }
            _ => end += 1,
        }
    }
    parts.push(&value[start..end]);
    parts
}

/// Whether the generator takes `value` for a URL (as loosely as it does).
fn is_url(value: &str) -> bool {
    value.starts_with("http")
        || value.starts_with("git://")
        || value
            .find("github.com/")
            .is_some_and(|i| value.len() > i + "github.com/".len())
}

/// Whether a path starts with a systemd specifier (`%h/...`, not `%%`).
fn starts_with_specifier(path: &str) -> bool {
    path.starts_with('%') && !path.starts_with("%%")
}

/// The fields of one CSV record, as podman reads a mount: `"..."` quotes a whole
/// field, `""` inside is a quote.
fn csv_fields(text: &str) -> Result<Vec<String>, String> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let [line] = lines.as_slice() else {
        return Err("not exactly one line".into());
    };
    let chars: Vec<char> = line.chars().collect();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let mut field = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("a quote is not closed".into()),
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        field.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(c) => {
                        field.push(*c);
                        i += 1;
                    }
                }
            }
            match chars.get(i) {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => {
                    fields.push(field);
                    i += 1;
                }
                Some(_) => return Err("text after a closing quote".into()),
            }
        } else {
            while let Some(c) = chars.get(i) {
                match c {
                    ',' => break,
                    '"' => return Err("a quote inside an unquoted option".into()),
                    c => field.push(*c),
                }
                i += 1;
            }
            let more = chars.get(i) == Some(&',');
            fields.push(field);
            if !more {
                return Ok(fields);
            }
            i += 1;
        }
        if i >= chars.len() {
            fields.push(String::new());
            return Ok(fields);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_checked_loosely() {
        for good in ["80", "8080-8090", "53/udp", "1-2/tcp", "x80", "a:80"] {
            assert!(is_port_range(good), "{good}");
        }
        for bad in ["", "http", "80/sctp", "80-", "/udp"] {
            assert!(!is_port_range(bad), "{bad}");
        }
        assert_eq!(
            split_ports("[::1]:80:8080/tcp"),
            ["[::1]", "80", "8080/tcp"]
        );
        assert_eq!(split_ports("1:2:3:4"), ["1", "2", "3", "4"]);
    }

    #[test]
    fn urls_and_specifiers() {
        assert!(is_url("https://example.org/x.git"));
        assert!(is_url("git://example.org/x"));
        assert!(is_url("example.github.com/x"));
        assert!(!is_url("github.com/"));
        assert!(!is_url("/srv/context"));
        assert!(starts_with_specifier("%h/Containerfile"));
        assert!(!starts_with_specifier("%%h"));
    }

    #[test]
    fn mounts_read_as_csv() {
        assert_eq!(
            csv_fields("type=bind,src=/a,dst=/b").unwrap(),
            ["type=bind", "src=/a", "dst=/b"]
        );
        assert_eq!(
            csv_fields("\"type=bind\",\"src=/a,b\"").unwrap(),
            ["type=bind", "src=/a,b"]
        );
        assert_eq!(csv_fields("a,\"b,c\",d").unwrap(), ["a", "b,c", "d"]);
        assert_eq!(csv_fields("a,").unwrap(), ["a", ""]);
        assert!(csv_fields("src=/a\"b").is_err());
        assert!(csv_fields("\"a\"b").is_err());
        assert!(csv_fields("\"a").is_err());
        assert!(csv_fields("").is_err());
    }
}
