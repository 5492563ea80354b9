//! Lossless reading and writing of systemd unit syntax, exactly as Quadlet reads it.
//!
//! [`UnitFile`] keeps every physical line of the text it was parsed from, so
//! [`UnitFile::render`] gives back the original byte for byte, and edits touch only
//! the lines they change. [`UnitFile::canonical`] is the formatted rendering.
//!
//! The reading rules follow podman's generator, not systemd's:
//! - every line is trimmed of surrounding whitespace first;
//! - an empty line, or one starting with `#` or `;`, is a comment;
//! - a line ending with `\` continues on the next line: the backslash is dropped
//!   and the next (trimmed) line is appended with no separator; comment and empty
//!   lines inside a continuation are skipped; a continuation still open at the end
//!   of the file is dropped;
//! - `[Name]` starts a section (whitespace after `]` is allowed);
//! - `Key=Value` is an entry: whitespace before `=` and after it is dropped;
//! - anything else is an error, and so is an entry before the first section.

use std::fmt;

/// Why a text is not valid unit syntax, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line of the problem.
    pub line: usize,
    /// 1-based column (in characters) of the problem.
    pub column: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

/// The kinds of syntax error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// A line that is neither a section header, an entry nor a comment.
    NotAnEntry {
        /// The offending (trimmed, joined) line.
        text: String,
    },
    /// `[...]` with an empty name or one containing `[` or a control character.
    InvalidSectionName {
        /// The name between the brackets.
        name: String,
    },
    /// A `Key=Value` line before the first `[Section]`.
    EntryBeforeSection {
        /// The key of the entry.
        key: String,
    },
    /// A key that starts with a space: the generators of podman 4.4 and 4.5, which
    /// do not trim lines, read an indented entry this way.
    IndentedKey {
        /// The key, with its leading whitespace.
        key: String,
    },
    /// A continued line with whitespace before it or after its `\`, on which the
    /// generators of podman 4.6 to 4.9 never finish reading the file.
    StuckContinuation,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ParseErrorKind::NotAnEntry { text } => write!(
                f,
                "{text:?} is not a `Key=Value` entry, a `[Section]` header or a comment \
                 (comments start with `#` or `;`)"
            ),
            ParseErrorKind::InvalidSectionName { name } => write!(
                f,
                "invalid section name {name:?}: it must be non-empty, without `[` or control characters"
            ),
            ParseErrorKind::EntryBeforeSection { key } => write!(
                f,
                "entry `{key}=` comes before any `[Section]` header; move it into a section"
            ),
            ParseErrorKind::IndentedKey { key } => {
                write!(f, "key {key:?} starts with a space: the line is indented")
            }
            ParseErrorKind::StuckContinuation => {
                f.write_str("a continued line with whitespace before it or after its `\\`")
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// One entry (`Key=Value`) of a unit file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    key: String,
    value: String,
    /// The original physical lines, `None` when the entry was created or changed.
    raw: Option<Vec<String>>,
    line: usize,
    column: usize,
}

impl Entry {
    /// A new entry, checked so that it renders as one line that reads back the same.
    ///
    /// # Errors
    /// [`EntryError`] when the key or value cannot be written on one line (see its
    /// variants).
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Result<Self, EntryError> {
        let key = key.into();
        let value = value.into();
        check_key(&key)?;
        check_value(&key, &value)?;
        Ok(Self {
            key,
            value,
            raw: None,
            line: 0,
            column: 0,
        })
    }

    /// The key, as written (keys are case-sensitive).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value as the generator stores it: continuation lines joined, leading
    /// whitespace dropped, quotes kept.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The value as the generator looks up a single-valued key: trailing whitespace
    /// dropped and one pair of surrounding double quotes removed.
    pub fn unquoted(&self) -> &str {
        unquote(&self.value)
    }

    /// 1-based line where the entry starts (0 for an entry not read from a file).
    pub fn line(&self) -> usize {
        self.line
    }

    /// 1-based column of the key on its line (0 for an entry not read from a file).
    pub fn column(&self) -> usize {
        self.column
    }

    /// Whether the entry spans several physical lines.
    pub fn is_continued(&self) -> bool {
        self.raw.as_ref().is_some_and(|r| r.len() > 1)
    }

    fn render_canonical(&self, out: &mut String) {
        match &self.raw {
            Some(raw) if raw.len() > 1 || raw.first().is_some_and(|l| l.trim().ends_with('\\')) => {
                // Keep the physical lines (the value may depend on where they break),
                // normalising only what the generator ignores.
                let mut first = true;
                for line in raw {
                    let line = line.trim();
                    if line.is_empty() {
                        continue;
                    }
                    if first {
                        first = false;
                        match line.split_once('=') {
                            Some((key, rest)) if key.trim_end() == self.key => {
                                out.push_str(&self.key);
                                out.push('=');
                                out.push_str(rest.trim_start());
                            }
                            _ => out.push_str(line),
                        }
                    } else {
                        out.push_str("    ");
                        out.push_str(line);
                    }
                    out.push('\n');
                }
            }
            _ => {
                out.push_str(&self.key);
                out.push('=');
                out.push_str(&self.value);
                out.push('\n');
            }
        }
    }
}

/// Why a key or value cannot be written as a unit file entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// The key is empty, has surrounding whitespace, contains `=` or a line break,
    /// or starts with `#`, `;` or `[` (it would read back as something else).
    #[error(
        "invalid key {key:?}: keys are non-empty, without `=`, line breaks or surrounding spaces, and do not start with `#`, `;` or `[`"
    )]
    InvalidKey {
        /// The rejected key.
        key: String,
    },
    /// The value contains a line break, starts or ends with whitespace (which would
    /// be dropped), or ends with `\` (which would continue the line).
    #[error("invalid value for `{key}=`: {reason}")]
    InvalidValue {
        /// The key of the entry.
        key: String,
        /// What is wrong with the value.
        reason: &'static str,
    },
}

fn check_key(key: &str) -> Result<(), EntryError> {
    let bad = key.is_empty()
        || key.contains(['=', '\n', '\r'])
        || key.starts_with(['#', ';', '['])
        || key.trim() != key;
    if bad {
        Err(EntryError::InvalidKey {
            key: key.to_owned(),
        })
    } else {
        Ok(())
    }
}

fn check_value(key: &str, value: &str) -> Result<(), EntryError> {
    let reason = if value.contains(['\n', '\r']) {
        Some("it contains a line break")
    } else if value.trim() != value {
        Some("it starts or ends with whitespace, which the generator drops")
    } else if value.ends_with('\\') {
        Some("it ends with `\\`, which would continue the line")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(EntryError::InvalidValue {
            key: key.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The value as the generator's single-value lookup sees it.
pub(crate) fn unquote(value: &str) -> &str {
    let v = value.trim_end();
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// One line (or run of lines) of a unit file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// An empty line.
    Blank { raw: Option<String> },
    /// A line starting with `#` or `;` (kept as written, trimmed).
    Comment { raw: Option<String>, text: String },
    /// Lines the generator skips without meaning: a lone `\`, or a continuation
    /// still open at the end of the file (with everything after it).
    Ignored { raw: Vec<String>, line: usize },
    /// `[Name]`.
    Header {
        name: String,
        raw: Option<String>,
        line: usize,
    },
    /// `Key=Value`.
    Entry(Entry),
}

/// A unit file, kept line for line: comments, blank lines, order and spelling survive
/// a parse and render.
///
/// ```
/// use homelab_quadlet::UnitFile;
///
/// let text = "[Unit]\n# the network\nDescription = Photos\n\n[Network]\nSubnet=10.89.5.0/24\n";
/// let mut file = UnitFile::parse(text)?;
/// assert_eq!(file.get("Unit", "Description"), Some("Photos"));
/// assert_eq!(file.render(), text); // lossless
/// file.append("Network", "Gateway", "10.89.5.1")?;
/// assert_eq!(
///     file.render(),
///     "[Unit]\n# the network\nDescription = Photos\n\n[Network]\nSubnet=10.89.5.0/24\nGateway=10.89.5.1\n"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitFile {
    items: Vec<Item>,
    /// Whether the source text ended with a line break.
    final_newline: bool,
}

fn is_comment(trimmed: &str) -> bool {
    trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';')
}

fn is_ascii_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

fn column_of(raw: &str) -> usize {
    raw.chars().take_while(|c| c.is_whitespace()).count() + 1
}

impl UnitFile {
    /// An empty unit file.
    pub fn new() -> Self {
        Self {
            items: Vec::new(),
            final_newline: true,
        }
    }

    /// Parses unit file text, keeping every line.
    ///
    /// # Errors
    /// [`ParseError`] with the line and column of the first line the generator would
    /// reject.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let final_newline = text.ends_with('\n');
        let body = text.strip_suffix('\n').unwrap_or(text);
        let lines: Vec<&str> = body.split('\n').collect();
        let last = lines.len() - 1;
        let mut items = Vec::new();
        let mut in_section = false;
        // An open continuation: the text so far and the physical lines it spans.
        let mut pending = String::new();
        let mut pending_raw: Vec<String> = Vec::new();
        let mut pending_line = 0;

        for (index, raw) in lines.iter().enumerate() {
            let line_no = index + 1;
            let trimmed = raw.trim();
            if is_comment(trimmed) {
                if pending.is_empty() {
                    if !pending_raw.is_empty() {
                        // Only lone backslashes so far: they meant nothing.
                        items.push(Item::Ignored {
                            raw: std::mem::take(&mut pending_raw),
                            line: pending_line,
                        });
                    }
                    items.push(if trimmed.is_empty() {
                        Item::Blank {
                            raw: Some((*raw).to_owned()),
                        }
                    } else {
                        Item::Comment {
                            raw: Some((*raw).to_owned()),
                            text: trimmed.to_owned(),
                        }
                    });
                } else {
                    pending_raw.push((*raw).to_owned());
                }
                continue;
            }
            let mut content = trimmed;
            if let Some(stripped) = content.strip_suffix('\\') {
                content = stripped;
                if index != last {
                    if pending_raw.is_empty() {
                        pending_line = line_no;
                    }
                    pending.push_str(content);
                    pending_raw.push((*raw).to_owned());
                    continue;
                }
            }
            let (logical, raw_lines, start_line, start_raw) = if pending.is_empty() {
                let mut ignored = std::mem::take(&mut pending_raw);
                if !ignored.is_empty() {
                    items.push(Item::Ignored {
                        raw: std::mem::take(&mut ignored),
                        line: pending_line,
                    });
                }
                (
                    content.to_owned(),
                    vec![(*raw).to_owned()],
                    line_no,
                    (*raw).to_owned(),
                )
            } else {
                let mut logical = std::mem::take(&mut pending);
                logical.push_str(content);
                let mut raw_lines = std::mem::take(&mut pending_raw);
                raw_lines.push((*raw).to_owned());
                let first = raw_lines[0].clone();
                (logical, raw_lines, pending_line, first)
            };
            if logical.is_empty() {
                // A lone `\` on the last line: nothing.
                items.push(Item::Ignored {
                    raw: raw_lines,
                    line: start_line,
                });
                continue;
            }
            let column = column_of(&start_raw);
            let item = parse_logical(&logical, raw_lines, start_line, column, in_section)?;
            if matches!(item, Item::Header { .. }) {
                in_section = true;
            }
            items.push(item);
        }
        if !pending_raw.is_empty() {
            items.push(Item::Ignored {
                raw: pending_raw,
                line: pending_line,
            });
        }
        Ok(Self {
            items,
            final_newline,
        })
    }

    /// The text exactly as parsed, with edits applied to the lines they touched.
    pub fn render(&self) -> String {
        let mut lines: Vec<String> = Vec::new();
        for item in &self.items {
            match item {
                Item::Blank { raw } => lines.push(raw.clone().unwrap_or_default()),
                Item::Comment { raw, text } => {
                    lines.push(raw.clone().unwrap_or_else(|| text.clone()));
                }
                Item::Ignored { raw, .. } => lines.extend(raw.iter().cloned()),
                Item::Header { name, raw, .. } => {
                    lines.push(raw.clone().unwrap_or_else(|| format!("[{name}]")));
                }
                Item::Entry(entry) => match &entry.raw {
                    Some(raw) => lines.extend(raw.iter().cloned()),
                    None => lines.push(format!("{}={}", entry.key, entry.value)),
                },
            }
        }
        let mut out = lines.join("\n");
        if self.final_newline && !lines.is_empty() {
            out.push('\n');
        }
        out
    }

    /// The canonical rendering: the same meaning to the generator, with whitespace
    /// normalised.
    ///
    /// Lines are trimmed; `Key = Value` becomes `Key=Value`; continuation lines are
    /// indented by four spaces; blank lines are dropped at the start and end of the
    /// file, runs of them collapse to one, and each section header (with the comment
    /// lines right above it) is preceded by exactly one; the text ends with one line
    /// break. Comments, order, repeated keys and sections are kept.
    pub fn canonical(&self) -> String {
        let open_at_end = self.open_continuation().is_some();
        let last = self.items.len().saturating_sub(1);
        // The items to emit: no meaningless lone `\` lines, no leading, trailing or
        // repeated blank lines.
        let mut kept: Vec<&Item> = Vec::new();
        for (i, item) in self.items.iter().enumerate() {
            match item {
                Item::Ignored { .. } if !(open_at_end && i == last) => {}
                Item::Blank { .. } => {
                    if kept
                        .last()
                        .is_some_and(|l| !matches!(l, Item::Blank { .. }))
                    {
                        kept.push(item);
                    }
                }
                _ => kept.push(item),
            }
        }
        while kept.last().is_some_and(|l| matches!(l, Item::Blank { .. })) {
            kept.pop();
        }
        // Each header, with the comments directly above it, gets one blank line
        // before it unless it starts the file.
        let mut block_start = vec![false; kept.len()];
        for (i, item) in kept.iter().enumerate() {
            if matches!(item, Item::Header { .. }) {
                let mut start = i;
                while start > 0 && matches!(kept[start - 1], Item::Comment { .. }) {
                    start -= 1;
                }
                block_start[start] = start > 0;
            }
        }
        let mut out = String::new();
        let mut last_blank = true;
        for (i, item) in kept.iter().enumerate() {
            if block_start[i] && !last_blank {
                out.push('\n');
            }
            last_blank = matches!(item, Item::Blank { .. });
            match item {
                Item::Blank { .. } => out.push('\n'),
                Item::Comment { text, .. } => {
                    out.push_str(text);
                    out.push('\n');
                }
                Item::Ignored { raw, .. } => {
                    // A continuation left open at the end of the file: keep its lines
                    // so that it stays open (and ignored).
                    for line in raw {
                        out.push_str(line.trim());
                        out.push('\n');
                    }
                }
                Item::Header { name, .. } => {
                    out.push('[');
                    out.push_str(name);
                    out.push_str("]\n");
                }
                Item::Entry(entry) => entry.render_canonical(&mut out),
            }
        }
        out
    }

    /// Section names in order of first appearance (a repeated section is listed once;
    /// the generator merges repeated sections).
    pub fn sections(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for item in &self.items {
            if let Item::Header { name, .. } = item
                && !names.contains(&name.as_str())
            {
                names.push(name);
            }
        }
        names
    }

    /// Whether a section with this name exists.
    pub fn has_section(&self, section: &str) -> bool {
        self.items
            .iter()
            .any(|i| matches!(i, Item::Header { name, .. } if name == section))
    }

    /// The 1-based line of the first header of `section`.
    pub fn section_line(&self, section: &str) -> Option<usize> {
        self.items.iter().find_map(|i| match i {
            Item::Header { name, line, .. } if name == section => Some(*line),
            _ => None,
        })
    }

    /// Every entry, with the section it is in, in file order.
    pub fn all_entries(&self) -> impl Iterator<Item = (&str, &Entry)> {
        let mut section = "";
        self.items.iter().filter_map(move |item| match item {
            Item::Header { name, .. } => {
                section = name;
                None
            }
            Item::Entry(entry) => Some((section, entry)),
            _ => None,
        })
    }

    /// The entries of a section (of all its occurrences), in file order.
    pub fn entries<'a>(&'a self, section: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.all_entries()
            .filter(move |(s, _)| *s == section)
            .map(|(_, e)| e)
    }

    /// The last entry of `key` in `section`: the one that counts for single-valued keys.
    pub fn last_entry(&self, section: &str, key: &str) -> Option<&Entry> {
        self.all_entries()
            .filter(|(s, e)| *s == section && e.key == key)
            .map(|(_, e)| e)
            .last()
    }

    /// The value of a single-valued key as the generator looks it up: the last
    /// assignment, trailing whitespace and one pair of surrounding quotes removed.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.last_entry(section, key).map(Entry::unquoted)
    }

    /// The values of a list key: every assignment in order, where an empty
    /// assignment clears the ones before it. Values are as written (quotes kept).
    pub fn get_all(&self, section: &str, key: &str) -> Vec<&str> {
        self.get_all_entries(section, key)
            .into_iter()
            .map(Entry::value)
            .collect()
    }

    /// Like [`UnitFile::get_all`], but the entries (for their line numbers).
    pub fn get_all_entries(&self, section: &str, key: &str) -> Vec<&Entry> {
        let mut out = Vec::new();
        for (_, entry) in self
            .all_entries()
            .filter(|(s, e)| *s == section && e.key == key)
        {
            if entry.value.is_empty() {
                out.clear();
            } else {
                out.push(entry);
            }
        }
        out
    }

    /// Sets a single-valued key: changes the last assignment in place, or appends
    /// one. Earlier assignments (which no longer count) are left as they are.
    ///
    /// # Errors
    /// [`EntryError`] when the key or value cannot be written (see [`Entry::new`]).
    pub fn set(&mut self, section: &str, key: &str, value: &str) -> Result<(), EntryError> {
        let entry = Entry::new(key, value)?;
        let mut current = "";
        let mut found = None;
        for (i, item) in self.items.iter().enumerate() {
            match item {
                Item::Header { name, .. } => current = name,
                Item::Entry(e) if current == section && e.key == key => found = Some(i),
                _ => {}
            }
        }
        match found {
            Some(i) => {
                if let Item::Entry(e) = &mut self.items[i] {
                    e.value = entry.value;
                    e.raw = None;
                }
            }
            None => self.insert_entry(section, entry),
        }
        Ok(())
    }

    /// Adds an assignment after the last entry of `section` (creating the section at
    /// the end of the file when it does not exist).
    ///
    /// # Errors
    /// [`EntryError`] when the key or value cannot be written (see [`Entry::new`]).
    pub fn append(&mut self, section: &str, key: &str, value: &str) -> Result<(), EntryError> {
        let entry = Entry::new(key, value)?;
        self.insert_entry(section, entry);
        Ok(())
    }

    /// Removes every assignment of `key` in `section`; returns how many there were.
    pub fn remove(&mut self, section: &str, key: &str) -> usize {
        let mut current = String::new();
        let before = self.items.len();
        self.items.retain(|item| match item {
            Item::Header { name, .. } => {
                current.clone_from(name);
                true
            }
            Item::Entry(e) => !(current == section && e.key == key),
            _ => true,
        });
        before - self.items.len()
    }

    /// Removes every occurrence of a section with its entries (and the comments
    /// inside it).
    pub fn remove_section(&mut self, section: &str) {
        let mut inside = false;
        self.items.retain(|item| {
            if let Item::Header { name, .. } = item {
                inside = name == section;
            }
            !inside
        });
    }

    fn insert_entry(&mut self, section: &str, entry: Entry) {
        // After the last entry (or header) of the last occurrence of the section.
        let mut current = "";
        let mut position = None;
        for (i, item) in self.items.iter().enumerate() {
            match item {
                Item::Header { name, .. } => {
                    current = name;
                    if current == section {
                        position = Some(i + 1);
                    }
                }
                Item::Entry(_) if current == section => position = Some(i + 1),
                _ => {}
            }
        }
        let position = position.unwrap_or_else(|| self.add_section(section));
        if let Some(Item::Entry(previous)) =
            position.checked_sub(1).and_then(|p| self.items.get_mut(p))
            && previous
                .raw
                .as_ref()
                .and_then(|r| r.last())
                .is_some_and(|l| l.trim_end().ends_with('\\'))
        {
            // It ended the file, where a final backslash is dropped; followed by a
            // line it would continue onto it. Write it out from its value instead.
            previous.raw = None;
        }
        self.items.insert(position, Item::Entry(entry));
        self.final_newline = true;
    }

    /// Replaces entries of `section`: `f` returns `None` to keep an entry, or the
    /// entries to put in its place.
    pub(crate) fn rewrite_section(
        &mut self,
        section: &str,
        mut f: impl FnMut(&Entry) -> Option<Vec<(String, String)>>,
    ) {
        let mut current = String::new();
        let mut out = Vec::with_capacity(self.items.len());
        for item in std::mem::take(&mut self.items) {
            match &item {
                Item::Header { name, .. } => {
                    current.clone_from(name);
                    out.push(item);
                }
                Item::Entry(entry) if current == section => match f(entry) {
                    None => out.push(item),
                    Some(replacement) => {
                        for (key, value) in replacement {
                            out.push(Item::Entry(Entry {
                                key,
                                value,
                                raw: None,
                                line: entry.line,
                                column: entry.column,
                            }));
                        }
                    }
                },
                _ => out.push(item),
            }
        }
        self.items = out;
    }

    /// Adds `[section]` at the end of the file unless it exists.
    pub fn ensure_section(&mut self, section: &str) {
        if !self.has_section(section) {
            self.add_section(section);
            self.final_newline = true;
        }
    }

    /// Appends a header (after a blank line); returns the index after it.
    fn add_section(&mut self, section: &str) -> usize {
        // Before an open continuation, which would swallow it.
        let mut end = self.items.len();
        if self.open_continuation().is_some() {
            end -= 1;
        }
        let needs_blank = end > 0 && !matches!(self.items[end - 1], Item::Blank { .. });
        if needs_blank {
            self.items.insert(end, Item::Blank { raw: None });
            end += 1;
        }
        self.items.insert(
            end,
            Item::Header {
                name: section.to_owned(),
                raw: None,
                line: 0,
            },
        );
        end + 1
    }

    /// Lines the generator ignores although they look like content: a continuation
    /// left open at the end of the file. Returns the 1-based line where it starts.
    pub fn open_continuation(&self) -> Option<usize> {
        match self.items.last() {
            Some(Item::Ignored { raw, line })
                if raw.iter().any(|l| {
                    let t = l.trim();
                    !is_comment(t) && t != "\\"
                }) =>
            {
                Some(*line)
            }
            _ => None,
        }
    }
}

/// The ways podman's generators have read unit syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// Podman 4.4 and 4.5: lines are not trimmed (an indented line is an error or
    /// an odd key), comments start with `#` or `:`, and only a `Key=Value` line
    /// continues with `\`, into whatever the next line is.
    V4_4,
    /// Podman 4.6 to 4.9: as 4.4, but each line followed by a line break is
    /// trimmed, and a continued line with whitespace around it never ends.
    V4_6,
    /// Podman 5.0 to 5.3: as 4.6, but every line is trimmed first, and a comment
    /// does not continue.
    V5_0,
    /// Podman 5.4 and later: the rules of [`UnitFile::parse`].
    V5_4,
}

impl Syntax {
    /// The syntax of podman `version`'s generator.
    pub(crate) fn of(version: crate::release::PodmanVersion) -> Self {
        if version < crate::release::PodmanVersion::V4_6 {
            Self::V4_4
        } else if version < crate::release::PodmanVersion::V5_0 {
            Self::V4_6
        } else if version < crate::release::PodmanVersion::V5_4 {
            Self::V5_0
        } else {
            Self::V5_4
        }
    }
}

/// `data` up to the first line break at or after byte `after` (trimmed when
/// `trim`), and what follows that line break.
fn next_line(data: &str, after: usize, trim: bool) -> (&str, &str) {
    match data.get(after..).and_then(|rest| rest.find('\n')) {
        Some(i) if trim => (data[..after + i].trim(), &data[after + i + 1..]),
        Some(i) => (&data[..after + i], &data[after + i + 1..]),
        None => (data, ""),
    }
}

/// A comment line for the generators before podman 5.4 (`;` was not one).
fn is_legacy_comment(line: &str) -> bool {
    line.is_empty() || line.starts_with('#') || line.starts_with(':')
}

fn is_legacy_entry(line: &str) -> bool {
    line.find('=').is_some_and(|p| p > 0)
}

/// ASCII whitespace, which the generator drops around `=`.
fn is_go_space_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

impl UnitFile {
    /// Parses `text` as the generator of `syntax` reads it. The result is for
    /// reading only: its entries hold the values that generator stores.
    pub(crate) fn parse_as(text: &str, syntax: Syntax) -> Result<Self, ParseError> {
        match syntax {
            Syntax::V5_4 => Self::parse(text),
            Syntax::V4_4 | Syntax::V4_6 | Syntax::V5_0 => Self::parse_legacy(text, syntax),
        }
    }

    fn parse_legacy(text: &str, syntax: Syntax) -> Result<Self, ParseError> {
        let trim_lines = syntax == Syntax::V5_0;
        let trim = syntax != Syntax::V4_4;
        let physical: Vec<&str> = text.split('\n').collect();
        let data: String = if trim_lines {
            physical
                .iter()
                .map(|l| l.trim())
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            text.to_owned()
        };
        let mut items = Vec::new();
        let mut in_section = false;
        let mut rest: &str = &data;
        let mut line_no = 1;
        while !rest.is_empty() {
            let orig = rest;
            let mut count = 1;
            let (mut line, mut tail) = next_line(orig, 0, trim);
            let may_continue = !(trim_lines && is_legacy_comment(line));
            if may_continue && is_legacy_entry(line) {
                while !tail.is_empty() && line.ends_with('\\') {
                    let (next, next_tail) = next_line(orig, line.len() + 1, trim);
                    if next_tail.len() >= tail.len() {
                        return Err(ParseError {
                            line: line_no + count - 1,
                            column: 1,
                            kind: ParseErrorKind::StuckContinuation,
                        });
                    }
                    (line, tail) = (next, next_tail);
                    count += 1;
                }
            }
            let raw: Vec<String> = physical
                .iter()
                .skip(line_no - 1)
                .take(count)
                .map(|l| (*l).to_owned())
                .collect();
            let column = raw.first().map_or(1, |r| column_of(r));
            let error = |kind| ParseError {
                line: line_no,
                column,
                kind,
            };
            if is_legacy_comment(line) {
                items.push(Item::Comment {
                    raw: raw.first().cloned(),
                    text: line.to_owned(),
                });
            } else if let Some(end) = line.find(']').filter(|_| line.starts_with('['))
                && line[end + 1..].bytes().all(|b| b == b' ' || b == b'\t')
            {
                let name = &line[1..end];
                if name.is_empty() || name.chars().any(|c| c == '[' || c.is_control()) {
                    return Err(error(ParseErrorKind::InvalidSectionName {
                        name: name.to_owned(),
                    }));
                }
                in_section = true;
                items.push(Item::Header {
                    name: name.to_owned(),
                    raw: raw.first().cloned(),
                    line: line_no,
                });
            } else if is_legacy_entry(line) {
                let eq = line.find('=').unwrap_or_default();
                let mut key_end = eq;
                while key_end > 0 && is_go_space_byte(line.as_bytes()[key_end - 1]) {
                    key_end -= 1;
                }
                let key = &line[..key_end];
                if !in_section {
                    return Err(error(ParseErrorKind::EntryBeforeSection {
                        key: key.to_owned(),
                    }));
                }
                if key.is_empty() || key.starts_with(' ') || key.ends_with(' ') {
                    return Err(error(ParseErrorKind::IndentedKey {
                        key: key.to_owned(),
                    }));
                }
                let mut value_start = eq + 1;
                while value_start < line.len() && is_go_space_byte(line.as_bytes()[value_start]) {
                    value_start += 1;
                }
                // Lookups join continuation lines by dropping each `\` and line break.
                let value = line[value_start..].replace("\\\n", "");
                items.push(Item::Entry(Entry {
                    key: key.to_owned(),
                    value,
                    raw: Some(raw),
                    line: line_no,
                    column,
                }));
            } else {
                return Err(error(ParseErrorKind::NotAnEntry {
                    text: line.to_owned(),
                }));
            }
            line_no += count;
            rest = tail;
        }
        Ok(Self {
            items,
            final_newline: text.ends_with('\n'),
        })
    }
}

impl fmt::Display for UnitFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::str::FromStr for UnitFile {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn parse_logical(
    logical: &str,
    raw: Vec<String>,
    line: usize,
    column: usize,
    in_section: bool,
) -> Result<Item, ParseError> {
    if let Some(rest) = logical.strip_prefix('[')
        && let Some(end) = rest.find(']')
        && rest[end + 1..].chars().all(|c| c == ' ' || c == '\t')
    {
        let name = &rest[..end];
        if name.is_empty() || name.chars().any(|c| c == '[' || c.is_control()) {
            return Err(ParseError {
                line,
                column,
                kind: ParseErrorKind::InvalidSectionName {
                    name: name.to_owned(),
                },
            });
        }
        let raw = raw.into_iter().next();
        return Ok(Item::Header {
            name: name.to_owned(),
            raw,
            line,
        });
    }
    match logical.find('=') {
        Some(eq) if eq > 0 => {
            // The generator drops ASCII whitespace around `=`, byte by byte.
            let key = logical[..eq].trim_end_matches(is_ascii_space);
            if !in_section {
                return Err(ParseError {
                    line,
                    column,
                    kind: ParseErrorKind::EntryBeforeSection {
                        key: key.to_owned(),
                    },
                });
            }
            let value = logical[eq + 1..].trim_start_matches(is_ascii_space);
            Ok(Item::Entry(Entry {
                key: key.to_owned(),
                value: value.to_owned(),
                raw: Some(raw),
                line,
                column,
            }))
        }
        _ => Err(ParseError {
            line,
            column,
            kind: ParseErrorKind::NotAnEntry {
                text: logical.to_owned(),
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(file: &UnitFile, section: &str) -> Vec<(String, String)> {
        file.entries(section)
            .map(|e| (e.key().to_owned(), e.value().to_owned()))
            .collect()
    }

    #[test]
    fn lossless_round_trip_keeps_every_byte() {
        for text in [
            "",
            "\n",
            "[A]\n",
            "[A]",
            "# c\n\n[A]  \n  k = v  \r\n;x\n\n\n[B]\nx=1\\\n  # in\n\n 2\n",
            "[A]\nk=v\\",
            "[A]\nk=v\\\n# only comments after\n\n",
            "\\\n[A]\n\\\nk=v\n",
        ] {
            let file = UnitFile::parse(text).unwrap();
            assert_eq!(file.render(), text, "{text:?}");
        }
    }

    #[test]
    fn reads_values_like_the_generator() {
        let file = UnitFile::parse(
            "[Unit]\nDescription=hello \\\n    world\n# c1\n  ; c2\n\nAfter=a.service   \n\
             [Container]\nExec=echo \"a b\" \\\n   c\\\n# inside\n  d\nLabel = x=y\n  PodmanArgs=--foo\n",
        )
        .unwrap();
        assert_eq!(
            values(&file, "Unit"),
            [
                ("Description".into(), "hello world".into()),
                ("After".into(), "a.service".into())
            ]
        );
        assert_eq!(
            values(&file, "Container"),
            [
                ("Exec".into(), "echo \"a b\" cd".into()),
                ("Label".into(), "x=y".into()),
                ("PodmanArgs".into(), "--foo".into())
            ]
        );
        assert_eq!(file.last_entry("Container", "Label").unwrap().line(), 13);
        assert_eq!(
            file.last_entry("Container", "PodmanArgs").unwrap().column(),
            3
        );
    }

    #[test]
    fn only_ascii_whitespace_is_dropped_around_the_equals_sign() {
        let file = UnitFile::parse("[A]\nk =\u{a0}v\u{a0}\n").unwrap();
        // The line's trailing no-break space goes (the whole line is trimmed), the
        // one after `=` stays.
        assert_eq!(file.get("A", "k"), Some("\u{a0}v"));
    }

    #[test]
    fn continuation_at_end_of_file() {
        // The last line's backslash is dropped and the entry counts.
        let file = UnitFile::parse("[A]\nk=v\\").unwrap();
        assert_eq!(file.get("A", "k"), Some("v"));
        // A continuation followed only by comments is dropped.
        let file = UnitFile::parse("[A]\nk=v\\\n# c\n").unwrap();
        assert_eq!(file.get("A", "k"), None);
        assert_eq!(file.open_continuation(), Some(2));
        assert_eq!(file.canonical(), "[A]\nk=v\\\n# c\n");
    }

    #[test]
    fn errors_carry_line_and_column() {
        let err = UnitFile::parse("[A]\nk=v\n   oops\n").unwrap_err();
        assert_eq!((err.line, err.column), (3, 4));
        assert!(matches!(err.kind, ParseErrorKind::NotAnEntry { .. }));
        let err = UnitFile::parse("# c\nk=v\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(matches!(
            err.kind,
            ParseErrorKind::EntryBeforeSection { .. }
        ));
        let err = UnitFile::parse("[]\n").unwrap_err();
        assert!(matches!(
            err.kind,
            ParseErrorKind::InvalidSectionName { .. }
        ));
        let err = UnitFile::parse("[A]\n=v\n").unwrap_err();
        assert_eq!(err.line, 2);
        // `]` followed by text is not a header.
        assert!(UnitFile::parse("[A] x\n").is_err());
    }

    #[test]
    fn empty_assignment_clears_a_list() {
        let file = UnitFile::parse("[C]\nE=a\nE=b\nE=\nE=c\n").unwrap();
        assert_eq!(file.get_all("C", "E"), ["c"]);
        assert_eq!(file.get("C", "E"), Some("c"));
    }

    #[test]
    fn get_strips_one_pair_of_quotes() {
        let file = UnitFile::parse("[C]\nA=\"x y\"\nB=\"x\nC=\"\"\n").unwrap();
        assert_eq!(file.get("C", "A"), Some("x y"));
        assert_eq!(file.get("C", "B"), Some("\"x"));
        assert_eq!(file.get("C", "C"), Some(""));
    }

    #[test]
    fn canonical_normalises_whitespace_only() {
        let text = "\n\n# top\n[Unit]  \n Description = a b \n\n\n\nAfter=x\n# about\n[Container]\nExec=a \\\n        b\\\n\n   c\n\n\n";
        let file = UnitFile::parse(text).unwrap();
        let canonical = file.canonical();
        assert_eq!(
            canonical,
            "# top\n[Unit]\nDescription=a b\n\nAfter=x\n\n# about\n[Container]\nExec=a \\\n    b\\\n    c\n"
        );
        let again = UnitFile::parse(&canonical).unwrap();
        assert_eq!(values(&again, "Container"), values(&file, "Container"));
        assert_eq!(values(&again, "Unit"), values(&file, "Unit"));
        assert_eq!(again.canonical(), canonical);
    }

    #[test]
    fn edits_touch_only_their_lines() {
        let text = "[Unit]\n# keep me\nDescription = old\n\n[Container]\nImage=a\n";
        let mut file = UnitFile::parse(text).unwrap();
        file.set("Unit", "Description", "new").unwrap();
        file.append("Container", "Network", "x.network").unwrap();
        file.append("Install", "WantedBy", "default.target")
            .unwrap();
        assert_eq!(
            file.render(),
            "[Unit]\n# keep me\nDescription=new\n\n[Container]\nImage=a\nNetwork=x.network\n\n[Install]\nWantedBy=default.target\n"
        );
        assert_eq!(file.remove("Container", "Network"), 1);
        file.remove_section("Install");
        assert_eq!(
            file.render(),
            "[Unit]\n# keep me\nDescription=new\n\n[Container]\nImage=a\n\n"
        );
    }

    #[test]
    fn entries_that_cannot_be_written_are_refused() {
        assert!(Entry::new("#x", "1").is_err());
        assert!(Entry::new("a=b", "1").is_err());
        assert!(Entry::new("A", "x\ny").is_err());
        assert!(Entry::new("A", " x").is_err());
        assert!(Entry::new("A", "x\\").is_err());
        assert!(Entry::new("A", "").is_ok());
    }
}
