//! The sections every Quadlet file may have (`[Unit]`, `[Service]`, `[Install]`,
//! `[Quadlet]`), and the reading and writing rules the typed sections share.

use std::fmt::Display;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::syntax::{Entry, EntryError, UnitFile};
use crate::values::{RestartPolicy, TimeSpan, ValueError, parse_bool};
use crate::words;

/// An entry kept as written: a key the typed model does not cover, or any key of a
/// section it does not know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawEntry {
    /// The key.
    pub key: String,
    /// The value, as written (quotes and escapes kept).
    pub value: String,
}

impl RawEntry {
    /// `key=value`.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// A section the typed model does not know, kept entry by entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawSection {
    /// The section name, without brackets.
    pub name: String,
    /// Its entries, in order.
    pub entries: Vec<RawEntry>,
}

/// Turns the parse errors of value types into [`ValueError`].
pub(crate) trait ToValueError {
    fn to_value_error(self, text: &str) -> ValueError;
}

impl ToValueError for ValueError {
    fn to_value_error(self, _: &str) -> ValueError {
        self
    }
}

impl ToValueError for std::convert::Infallible {
    fn to_value_error(self, _: &str) -> ValueError {
        match self {}
    }
}

impl ToValueError for std::num::ParseIntError {
    fn to_value_error(self, text: &str) -> ValueError {
        ValueError {
            what: "number",
            value: text.to_owned(),
            reason: "expected a whole number, 0 or more".to_owned(),
        }
    }
}

impl ToValueError for std::net::AddrParseError {
    fn to_value_error(self, text: &str) -> ValueError {
        ValueError {
            what: "IP address",
            value: text.to_owned(),
            reason: "expected an address such as 10.89.5.2 or fd00::2".to_owned(),
        }
    }
}

/// Reads the entries of one section with the generator's lookup rules.
pub(crate) struct Reader<'a> {
    pub(crate) file: &'a Path,
    pub(crate) section: &'static str,
}

impl Reader<'_> {
    fn invalid(&self, entry: &Entry, source: ValueError) -> Error {
        Error::InvalidValue {
            file: self.file.to_path_buf(),
            line: entry.line(),
            section: self.section.to_owned(),
            key: entry.key().to_owned(),
            source: Box::new(source),
        }
    }

    /// A single-valued key: quotes removed; an empty value unsets it.
    pub(crate) fn single<T>(&self, slot: &mut Option<T>, entry: &Entry) -> Result<(), Error>
    where
        T: FromStr,
        T::Err: ToValueError,
    {
        let text = entry.unquoted();
        *slot = if text.is_empty() {
            None
        } else {
            Some(
                text.parse()
                    .map_err(|e: T::Err| self.invalid(entry, e.to_value_error(text)))?,
            )
        };
        Ok(())
    }

    /// A single-valued text key.
    pub(crate) fn text(slot: &mut Option<String>, entry: &Entry) {
        let text = entry.unquoted();
        *slot = (!text.is_empty()).then(|| text.to_owned());
    }

    /// A single-valued key read without removing quotes (`Exec=`).
    pub(crate) fn raw_text(slot: &mut Option<String>, entry: &Entry) {
        let text = entry.value().trim_end();
        *slot = (!text.is_empty()).then(|| text.to_owned());
    }

    /// A boolean key.
    pub(crate) fn boolean(&self, slot: &mut Option<bool>, entry: &Entry) -> Result<(), Error> {
        let text = entry.unquoted();
        *slot = if text.is_empty() {
            None
        } else {
            Some(parse_bool(text).map_err(|e| self.invalid(entry, e))?)
        };
        Ok(())
    }

    /// A list key with one value per line; an empty value clears the list.
    pub(crate) fn line<T>(&self, list: &mut Vec<T>, entry: &Entry) -> Result<(), Error>
    where
        T: FromStr<Err = ValueError>,
    {
        self.line_with(list, entry, str::parse)
    }

    /// The same, for values read by `parse`.
    pub(crate) fn line_with<T>(
        &self,
        list: &mut Vec<T>,
        entry: &Entry,
        parse: impl Fn(&str) -> Result<T, ValueError>,
    ) -> Result<(), Error> {
        if entry.value().is_empty() {
            list.clear();
        } else {
            list.push(parse(entry.value()).map_err(|e| self.invalid(entry, e))?);
        }
        Ok(())
    }

    /// A list key with one text value per line.
    pub(crate) fn raw_line(list: &mut Vec<String>, entry: &Entry) {
        if entry.value().is_empty() {
            list.clear();
        } else {
            list.push(entry.value().to_owned());
        }
    }

    /// A list key whose lines hold words (quoted, escaped), each one a value.
    pub(crate) fn words<T>(&self, list: &mut Vec<T>, entry: &Entry) -> Result<(), Error>
    where
        T: FromStr,
        T::Err: ToValueError,
    {
        if entry.value().is_empty() {
            list.clear();
            return Ok(());
        }
        let split = words::split(entry.value()).map_err(|e| {
            self.invalid(
                entry,
                ValueError {
                    what: "quoted words",
                    value: String::new(),
                    reason: e.to_string(),
                },
            )
        })?;
        for word in split {
            list.push(
                word.parse()
                    .map_err(|e: T::Err| self.invalid(entry, e.to_value_error(&word)))?,
            );
        }
        Ok(())
    }

    /// A systemd list (`After=a b`): names separated by spaces.
    pub(crate) fn names(list: &mut Vec<String>, entry: &Entry) {
        if entry.value().is_empty() {
            list.clear();
        } else {
            list.extend(words::split_list(entry.value()));
        }
    }
}

/// Collects the entries of one section, checking that each reads back as written.
pub(crate) struct Writer {
    pub(crate) entries: Vec<(String, String)>,
    problems: Vec<EntryError>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self {
            entries: Vec::new(),
            problems: Vec::new(),
        }
    }

    fn push(&mut self, key: &str, value: String) {
        self.entries.push((key.to_owned(), value));
    }

    fn problem(&mut self, key: &str, reason: &'static str) {
        self.problems.push(EntryError::InvalidValue {
            key: key.to_owned(),
            reason,
        });
    }

    /// A single value, quoted when the generator's lookup would change it.
    pub(crate) fn single<T: Display>(&mut self, key: &str, value: Option<&T>) {
        if let Some(value) = value {
            let text = value.to_string();
            if text.is_empty() {
                self.problem(key, "it is empty, which means unset");
                return;
            }
            let needs_quotes = text.trim() != text
                || (text.len() >= 2 && text.starts_with('"') && text.ends_with('"'));
            self.push(
                key,
                if needs_quotes {
                    format!("\"{text}\"")
                } else {
                    text
                },
            );
        }
    }

    /// A single value written as it is (`Exec=`).
    pub(crate) fn raw(&mut self, key: &str, value: Option<&String>) {
        if let Some(value) = value {
            if value.is_empty() {
                self.problem(key, "it is empty, which means unset");
                return;
            }
            self.push(key, value.clone());
        }
    }

    /// A boolean.
    pub(crate) fn boolean(&mut self, key: &str, value: Option<bool>) {
        if let Some(value) = value {
            self.push(key, value.to_string());
        }
    }

    /// One line per value, written as it is.
    pub(crate) fn lines<T>(&mut self, key: &str, values: &[T])
    where
        T: Display + FromStr + PartialEq,
    {
        for value in values {
            let text = value.to_string();
            if text.is_empty() {
                self.problem(key, "an empty value would clear the list");
            } else if text.parse::<T>().ok().as_ref() != Some(value) {
                self.problem(key, "it would read back as a different value (check for `:` or `,` inside its parts)");
            } else {
                self.push(key, text);
            }
        }
    }

    /// One line per value, each quoted as a word.
    pub(crate) fn words<T>(&mut self, key: &str, values: &[T])
    where
        T: Display + FromStr + PartialEq,
    {
        for value in values {
            let text = value.to_string();
            let quoted = words::quote(&text);
            let back = words::split(&quoted).ok().filter(|w| w.len() == 1);
            if text.is_empty() || text.contains('\0') {
                self.problem(key, "an empty value or a NUL character cannot be written");
            } else if back.and_then(|w| w[0].parse::<T>().ok()).as_ref() != Some(value) {
                self.problem(key, "it would read back as a different value (check for `,` or `=` inside its parts)");
            } else {
                self.push(key, quoted);
            }
        }
    }

    /// All names on one line, separated by spaces.
    pub(crate) fn names(&mut self, key: &str, values: &[String]) {
        if values.is_empty() {
            return;
        }
        let joined: Vec<String> = values
            .iter()
            .map(|v| {
                if v.contains(char::is_whitespace) {
                    format!("\"{v}\"")
                } else {
                    v.clone()
                }
            })
            .collect();
        let joined = joined.join(" ");
        if words::split_list(&joined) == values {
            self.push(key, joined);
        } else {
            self.problem(key, "a name is empty or contains quotes");
        }
    }

    /// Entries kept as written.
    pub(crate) fn other(&mut self, other: &[RawEntry]) {
        for entry in other {
            self.push(&entry.key, entry.value.clone());
        }
    }

    /// The collected entries, or the first value that cannot be written.
    pub(crate) fn into_entries(self) -> Result<Vec<(String, String)>, EntryError> {
        match self.problems.into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(self.entries),
        }
    }

    /// Appends the collected entries to `file` under `section`.
    pub(crate) fn finish(
        self,
        file: &mut UnitFile,
        name: &Path,
        section: &str,
        always: bool,
    ) -> Result<(), Error> {
        if let Some(source) = self.problems.into_iter().next() {
            return Err(Error::Unwritable {
                file: name.to_path_buf(),
                section: section.to_owned(),
                source,
            });
        }
        if always {
            file.ensure_section(section);
        }
        for (key, value) in self.entries {
            file.append(section, &key, &value)
                .map_err(|source| Error::Unwritable {
                    file: name.to_path_buf(),
                    section: section.to_owned(),
                    source,
                })?;
        }
        Ok(())
    }
}

/// The `[Unit]` section: description and ordering of the service.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UnitSection {
    /// `Description=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `Documentation=`: URLs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub documentation: Vec<String>,
    /// `Requires=`: units that must be active.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// `Wants=`: units started along, failures ignored.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub wants: Vec<String>,
    /// `After=`: units started first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// `Before=`: units started after this one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub before: Vec<String>,
    /// `BindsTo=`: units this one stops with.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub binds_to: Vec<String>,
    /// `PartOf=`: units whose stop and restart reach this one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub part_of: Vec<String>,
    /// `Conflicts=`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<String>,
    /// `RequiresMountsFor=`: paths whose mounts must be up.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requires_mounts_for: Vec<String>,
    /// Any other key, as written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<RawEntry>,
}

impl UnitSection {
    pub(crate) fn read(file: &UnitFile) -> Self {
        let mut s = Self::default();
        for entry in file.entries("Unit") {
            let list = match entry.key() {
                "Description" => {
                    Reader::text(&mut s.description, entry);
                    continue;
                }
                "Documentation" => &mut s.documentation,
                "Requires" => &mut s.requires,
                "Wants" => &mut s.wants,
                "After" => &mut s.after,
                "Before" => &mut s.before,
                "BindsTo" => &mut s.binds_to,
                "PartOf" => &mut s.part_of,
                "Conflicts" => &mut s.conflicts,
                "RequiresMountsFor" => &mut s.requires_mounts_for,
                key => {
                    s.other.push(RawEntry::new(key, entry.value()));
                    continue;
                }
            };
            Reader::names(list, entry);
        }
        s
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        let Self {
            description,
            documentation,
            requires,
            wants,
            after,
            before,
            binds_to,
            part_of,
            conflicts,
            requires_mounts_for,
            other,
        } = self;
        w.single("Description", description.as_ref());
        w.names("Documentation", documentation);
        w.names("Requires", requires);
        w.names("Wants", wants);
        w.names("After", after);
        w.names("Before", before);
        w.names("BindsTo", binds_to);
        w.names("PartOf", part_of);
        w.names("Conflicts", conflicts);
        w.names("RequiresMountsFor", requires_mounts_for);
        w.other(other);
    }
}

/// The `[Service]` section: how systemd runs the generated service.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceSection {
    /// `Restart=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartPolicy>,
    /// `RestartSec=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_sec: Option<TimeSpan>,
    /// `TimeoutStartSec=`: how long starting may take (image pulls, first start of a
    /// database).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_start_sec: Option<TimeSpan>,
    /// `TimeoutStopSec=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_stop_sec: Option<TimeSpan>,
    /// `ExecStartPre=`: command lines run before the container starts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exec_start_pre: Vec<String>,
    /// `ExecStartPost=`: command lines run after it started.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exec_start_post: Vec<String>,
    /// Any other key, as written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<RawEntry>,
}

impl ServiceSection {
    pub(crate) fn read(file: &UnitFile, path: &Path) -> Result<Self, Error> {
        let r = Reader {
            file: path,
            section: "Service",
        };
        let mut s = Self::default();
        for entry in file.entries("Service") {
            match entry.key() {
                "Restart" => r.single(&mut s.restart, entry)?,
                "RestartSec" => r.single(&mut s.restart_sec, entry)?,
                "TimeoutStartSec" => r.single(&mut s.timeout_start_sec, entry)?,
                "TimeoutStopSec" => r.single(&mut s.timeout_stop_sec, entry)?,
                "ExecStartPre" => Reader::raw_line(&mut s.exec_start_pre, entry),
                "ExecStartPost" => Reader::raw_line(&mut s.exec_start_post, entry),
                key => s.other.push(RawEntry::new(key, entry.value())),
            }
        }
        Ok(s)
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        let Self {
            restart,
            restart_sec,
            timeout_start_sec,
            timeout_stop_sec,
            exec_start_pre,
            exec_start_post,
            other,
        } = self;
        w.single("Restart", restart.as_ref());
        w.single("RestartSec", restart_sec.as_ref());
        w.single("TimeoutStartSec", timeout_start_sec.as_ref());
        w.single("TimeoutStopSec", timeout_stop_sec.as_ref());
        w.lines("ExecStartPre", exec_start_pre);
        w.lines("ExecStartPost", exec_start_post);
        w.other(other);
    }
}

/// The `[Install]` section: what starts the service at boot. Generated services
/// cannot be `systemctl enable`d; this section is how they start.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InstallSection {
    /// `WantedBy=`: `default.target` for user units, `multi-user.target` for system
    /// units.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub wanted_by: Vec<String>,
    /// `RequiredBy=`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub required_by: Vec<String>,
    /// `UpheldBy=`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub upheld_by: Vec<String>,
    /// `Alias=`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alias: Vec<String>,
    /// `DefaultInstance=` (template units).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_instance: Option<String>,
    /// Any other key, as written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<RawEntry>,
}

impl InstallSection {
    /// `WantedBy=default.target`: start with the (user) manager.
    pub fn default_target() -> Self {
        Self {
            wanted_by: vec!["default.target".to_owned()],
            ..Self::default()
        }
    }

    pub(crate) fn read(file: &UnitFile) -> Self {
        let mut s = Self::default();
        for entry in file.entries("Install") {
            match entry.key() {
                "WantedBy" => Reader::names(&mut s.wanted_by, entry),
                "RequiredBy" => Reader::names(&mut s.required_by, entry),
                "UpheldBy" => Reader::names(&mut s.upheld_by, entry),
                "Alias" => Reader::names(&mut s.alias, entry),
                "DefaultInstance" => Reader::text(&mut s.default_instance, entry),
                key => s.other.push(RawEntry::new(key, entry.value())),
            }
        }
        s
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        let Self {
            wanted_by,
            required_by,
            upheld_by,
            alias,
            default_instance,
            other,
        } = self;
        w.names("WantedBy", wanted_by);
        w.names("RequiredBy", required_by);
        w.names("UpheldBy", upheld_by);
        w.names("Alias", alias);
        w.single("DefaultInstance", default_instance.as_ref());
        w.other(other);
    }

    /// Whether the section starts the service with anything.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// The `[Quadlet]` section: options of the generator itself (podman 5.3).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct QuadletSection {
    /// `DefaultDependencies=`: `false` drops the implicit dependency on the network
    /// being online.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_dependencies: Option<bool>,
    /// Any other key, as written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<RawEntry>,
}

impl QuadletSection {
    pub(crate) fn read(file: &UnitFile, path: &Path) -> Result<Self, Error> {
        let r = Reader {
            file: path,
            section: "Quadlet",
        };
        let mut s = Self::default();
        for entry in file.entries("Quadlet") {
            match entry.key() {
                "DefaultDependencies" => r.boolean(&mut s.default_dependencies, entry)?,
                key => s.other.push(RawEntry::new(key, entry.value())),
            }
        }
        Ok(s)
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        let Self {
            default_dependencies,
            other,
        } = self;
        w.boolean("DefaultDependencies", *default_dependencies);
        w.other(other);
    }
}

/// Sections other than the known ones, kept entry by entry.
pub(crate) fn read_other_sections(file: &UnitFile, known: &[&str]) -> Vec<RawSection> {
    file.sections()
        .into_iter()
        .filter(|name| !known.contains(name))
        .map(|name| RawSection {
            name: name.to_owned(),
            entries: file
                .entries(name)
                .map(|e| RawEntry::new(e.key(), e.value()))
                .collect(),
        })
        .collect()
}

/// A typed main section of a Quadlet file (`[Container]`, `[Network]`, ...).
pub trait Body: Default + Clone + PartialEq + std::fmt::Debug + private::Sealed {
    /// The kind of file it belongs to.
    const KIND: crate::naming::UnitKind;
}

pub(crate) mod private {
    use std::path::Path;

    use crate::Error;
    use crate::syntax::{EntryError, UnitFile};

    /// Reading and writing of a main section; not implementable outside the crate.
    pub trait Sealed: Sized {
        fn read_section(file: &UnitFile, path: &Path) -> Result<Self, Error>;
        fn write_section(&self) -> Result<Vec<(String, String)>, EntryError>;
    }
}
