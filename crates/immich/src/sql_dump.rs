//! Immich's own backups: the `immich-db-backup-*.sql.gz` files Immich writes
//! every night (a gzip'd `pg_dumpall --clean --if-exists`, or in newer Immich
//! releases a `pg_dump --clean --if-exists` of its one database), loaded into
//! the deployment's PostgreSQL with `psql`.
//!
//! The file is read once before anything is touched: it must be a complete dump
//! (its gzip intact, its closing line there). Then it is streamed into `psql`,
//! rewritten on the way, line by line, the way Immich's restore instructions
//! ask for, and so that the restore applies entirely or not at all:
//!
//! - the database Immich used goes into a new database, which replaces the
//!   deployment's once it is complete (see `swap`); other databases of the
//!   cluster dump (`postgres`, `template1`) are left out, and no database is
//!   dropped or created by the dump itself;
//! - `search_path` is not emptied for the restore, as Immich's instructions
//!   do with `sed`: an expression index on `ll_to_earth(…)` (earthdistance)
//!   calls functions that name `cube` and `earth()` without their schema, and
//!   fails to build under an empty `search_path`;
//! - roles: the role that owned the database in the dump (Immich's
//!   `DB_USERNAME`, `postgres` by default) becomes the deployment's role, whose
//!   attributes and password stay as they are; no role is dropped; other roles
//!   of the dump are created when this server lacks them; grants to roles that
//!   exist nowhere are left out (and named);
//! - `psql` stops at the first error (`ON_ERROR_STOP`).

use std::collections::BTreeSet;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use homelab_podman::ExecSpec;
use serde::Serialize;

use crate::backup::{Loaded, require_empty, require_postgres, server_version};
use crate::db_settings::{self, ident};
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::pipe::{self, Decode, FileReader, LineFilter, Meter};
use crate::progress::Event;
use crate::swap::Fresh;

/// The statement of every `pg_dump` that empties `search_path` for the restore.
const EMPTY_SEARCH_PATH: &str = "SELECT pg_catalog.set_config('search_path', '', false);";
/// What Immich's restore instructions put in its place (`true`: for the
/// statement's own transaction only, so the database's `search_path` holds).
const IMMICH_SEARCH_PATH: &str =
    "SELECT pg_catalog.set_config('search_path', 'public, pg_catalog', true);";
const CLUSTER_HEADER: &str = "-- PostgreSQL database cluster dump";
const CLUSTER_END: &str = "-- PostgreSQL database cluster dump complete";
const DATABASE_HEADER: &str = "-- PostgreSQL database dump";
const DATABASE_END: &str = "-- PostgreSQL database dump complete";
/// Databases every cluster has: never what Immich used, unless nothing else is.
const SYSTEM_DATABASES: &[&str] = &["template1", "postgres"];
/// Role names that are keywords in a grant, not roles.
const ROLE_KEYWORDS: &[&str] = &["public", "current_user", "session_user", "current_role"];

/// What kind of SQL dump a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SqlDumpKind {
    /// `pg_dumpall`: the roles and every database.
    Cluster,
    /// `pg_dump`: one database.
    Database,
}

/// An SQL dump that was restored, and how.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct SqlDump {
    /// `pg_dumpall` or `pg_dump`.
    pub kind: SqlDumpKind,
    /// Whether the file is gzip-compressed.
    pub gzip: bool,
    /// The file's size in bytes.
    pub size: u64,
    /// The file's SHA-256, in hexadecimal.
    pub sha256: String,
    /// The server version that made it, as the dump says.
    pub dumped_from: Option<String>,
    /// The database of a cluster dump that was restored.
    pub database: Option<String>,
    /// Other databases of the dump, left out.
    pub left_out: Vec<String>,
    /// The role that owned the database in the dump: what it owned belongs
    /// to the deployment's role now.
    pub owner: Option<String>,
    /// Roles of the dump this server did not have, created.
    pub roles_created: Vec<String>,
    /// Roles the dump grants to that exist nowhere: those grants were left
    /// out.
    pub roles_missing: Vec<String>,
}

/// Whether `path` looks like an SQL dump (gzip'd or not): the caller tells it
/// apart from this tool's own backups by their manifest.
pub(crate) fn sniff(path: &Path) -> Option<Decode> {
    let mut head = [0u8; 2];
    let mut file = std::fs::File::open(path).ok()?;
    std::io::Read::read_exact(&mut file, &mut head).ok()?;
    match head {
        [0x1f, 0x8b] => Some(Decode::Gzip),
        [b'-', b'-'] | [b'\n' | b'\\', _] | [b'S', b'E'] => Some(Decode::Plain),
        _ => None,
    }
}

/// A section of a cluster dump: one database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Section {
    name: String,
    tables: usize,
    /// From `ALTER DATABASE name OWNER TO role`.
    owner: Option<String>,
}

/// What a reading of the whole dump found.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Scan {
    kind: SqlDumpKind,
    complete: bool,
    dumped_from: Option<String>,
    sections: Vec<Section>,
    /// Roles a cluster dump creates.
    roles: Vec<String>,
    /// The first `OWNER TO` of a one-database dump.
    first_owner: Option<String>,
    restrict: bool,
}

/// A line's tokens: words, quoted names, string literals, the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Word,
    Quoted,
    Literal,
    Space,
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

fn tokens(line: &str) -> Vec<Token> {
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let b = bytes[i];
        let kind = if b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80 {
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric()
                    || bytes[i] == b'_'
                    || bytes[i] == b'$'
                    || bytes[i] >= 0x80)
            {
                i += 1;
            }
            Kind::Word
        } else if b == b'"' || b == b'\'' {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => break,
                    Some(&c) if c == b && bytes.get(i + 1) == Some(&b) => i += 2,
                    Some(&c) if c == b => {
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                }
            }
            if b == b'"' {
                Kind::Quoted
            } else {
                Kind::Literal
            }
        } else if b.is_ascii_whitespace() {
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            Kind::Space
        } else {
            i += 1;
            Kind::Other
        };
        out.push(Token {
            kind,
            start,
            end: i,
        });
    }
    out
}

/// The name a word or quoted name stands for (a word folded to lower case).
fn name_of(line: &str, token: Token) -> Option<String> {
    let text = &line[token.start..token.end];
    match token.kind {
        Kind::Word => Some(text.to_lowercase()),
        Kind::Quoted => Some(
            text.strip_prefix('"')?
                .strip_suffix('"')
                .unwrap_or(&text[1..])
                .replace("\"\"", "\""),
        ),
        _ => None,
    }
}

/// The role of `CREATE ROLE name;`.
fn created_role(line: &str) -> Option<String> {
    let rest = line.strip_prefix("CREATE ROLE ")?.strip_suffix(';')?;
    let t = tokens(rest);
    (t.len() == 1).then(|| name_of(rest, t[0])).flatten()
}

/// The role of `ALTER ROLE name WITH …`.
fn altered_role(line: &str) -> Option<String> {
    let rest = line.strip_prefix("ALTER ROLE ")?;
    let t = tokens(rest);
    let first = *t.first()?;
    let after: Vec<&Token> = t[1..].iter().filter(|t| t.kind != Kind::Space).collect();
    (after.first().map(|t| &rest[t.start..t.end]) == Some("WITH"))
        .then(|| name_of(rest, first))
        .flatten()
}

/// The database of `-- Database "name" dump`.
fn section_header(line: &str) -> Option<&str> {
    line.strip_prefix("-- Database \"")?.strip_suffix("\" dump")
}

/// Whether the line starts a `COPY … FROM stdin` (data lines follow until
/// `\.`).
fn copy_start(line: &str) -> bool {
    line.starts_with("COPY ") && line.ends_with("FROM stdin;")
}

/// The names that change, and the roles a statement may name.
#[derive(Debug, Clone, Default)]
struct Names {
    /// The role that owned the database in the dump.
    owner: Option<String>,
    /// The deployment's role, which takes its place.
    to_role: String,
    /// The database of a cluster dump that is restored.
    source: Option<String>,
    /// The new database it goes into.
    target: String,
    /// Roles that exist once the dump's roles are created.
    known: BTreeSet<String>,
}

/// A statement line rewritten.
#[derive(Debug, PartialEq, Eq)]
enum Rewrite {
    Same,
    Changed(String),
    /// It names a role that exists nowhere.
    LeftOut(String),
}

/// Rewrites the names in one statement line: the dump's owner becomes the
/// deployment's role, the restored database the new one.
fn rewrite(line: &str, names: &Names) -> Rewrite {
    let all = tokens(line);
    let significant: Vec<Token> = all
        .iter()
        .copied()
        .filter(|t| t.kind != Kind::Space)
        .collect();
    let word = |i: usize| {
        significant
            .get(i)
            .filter(|t| t.kind == Kind::Word)
            .map(|t| &line[t.start..t.end])
    };
    let mut replaced: Vec<(Token, String)> = Vec::new();
    for (i, token) in significant.iter().enumerate() {
        if !matches!(token.kind, Kind::Word | Kind::Quoted) || i == 0 {
            continue;
        }
        // A qualified name (schema.object) is never a role or a database.
        if significant
            .get(i + 1)
            .is_some_and(|n| &line[n.start..n.end] == ".")
        {
            continue;
        }
        let Some(name) = name_of(line, *token) else {
            continue;
        };
        let previous = word(i - 1);
        let role_position = matches!(previous, Some("TO" | "FROM" | "ROLE" | "AUTHORIZATION"))
            || (previous == Some("BY") && i >= 2 && word(i - 2) == Some("GRANTED"));
        if role_position {
            if names.owner.as_deref() == Some(name.as_str()) {
                replaced.push((*token, ident(&names.to_role)));
            } else if !names.known.contains(&name) && !ROLE_KEYWORDS.contains(&name.as_str()) {
                return Rewrite::LeftOut(name);
            }
        } else if previous == Some("DATABASE") && names.source.as_deref() == Some(name.as_str()) {
            replaced.push((*token, ident(&names.target)));
        }
    }
    if replaced.is_empty() {
        return Rewrite::Same;
    }
    let mut out = String::with_capacity(line.len() + 16);
    let mut at = 0;
    for (token, with) in replaced {
        out.push_str(&line[at..token.start]);
        out.push_str(&with);
        at = token.end;
    }
    out.push_str(&line[at..]);
    Rewrite::Changed(out)
}

/// Where in the dump a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// A cluster dump's roles, before its databases.
    Roles,
    /// The database that is restored.
    Kept,
    /// Another database: left out.
    LeftOut,
    /// After the last database.
    End,
}

/// The rewriting of the dump on its way to `psql`.
struct Filter {
    cluster: bool,
    part: Part,
    copy: bool,
    names: Names,
    /// Roles the dump creates that are not created (they exist, or are the
    /// owner).
    not_created: BTreeSet<String>,
    /// Whether `psql` knows `\restrict` (else those lines are left out).
    keep_restrict: bool,
    missing: Arc<Mutex<BTreeSet<String>>>,
}

impl Filter {
    fn emit_statement(&self, body: &str, line: &[u8], out: &mut Vec<u8>) {
        const REWRITTEN: &[&str] = &[
            "ALTER ",
            "GRANT ",
            "REVOKE ",
            "SET SESSION AUTHORIZATION ",
            "COMMENT ON DATABASE ",
            "SECURITY LABEL ",
        ];
        if !REWRITTEN.iter().any(|p| body.starts_with(p)) {
            out.extend_from_slice(line);
            return;
        }
        match rewrite(body, &self.names) {
            Rewrite::Same => out.extend_from_slice(line),
            Rewrite::Changed(text) => {
                out.extend_from_slice(text.as_bytes());
                out.extend_from_slice(&line[body.len()..]);
            }
            Rewrite::LeftOut(role) => {
                self.missing
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(role);
            }
        }
    }
}

impl LineFilter for Filter {
    fn line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        if self.copy {
            if self.part != Part::LeftOut {
                out.extend_from_slice(line);
            }
            if line.strip_suffix(b"\n").unwrap_or(line) == b"\\." {
                self.copy = false;
            }
            return;
        }
        let Ok(text) = std::str::from_utf8(line) else {
            if self.part != Part::LeftOut {
                out.extend_from_slice(line);
            }
            return;
        };
        let body = text.trim_end_matches(['\n', '\r']);
        if self.cluster {
            if let Some(name) = section_header(body) {
                self.part = if self.names.source.as_deref() == Some(name) {
                    Part::Kept
                } else {
                    Part::LeftOut
                };
            } else if body == CLUSTER_END {
                self.part = Part::End;
            }
        }
        if self.part == Part::LeftOut {
            self.copy = copy_start(body);
            return;
        }
        if body.starts_with("\\restrict ") || body.starts_with("\\unrestrict ") {
            if self.keep_restrict {
                out.extend_from_slice(line);
            }
            return;
        }
        if body.starts_with("\\connect") && self.part == Part::Kept {
            out.extend_from_slice(format!("\\connect {}\n", self.names.target).as_bytes());
            return;
        }
        if self.part == Part::Roles && self.cluster {
            if body.starts_with("DROP DATABASE ") || body.starts_with("DROP ROLE ") {
                return;
            }
            if created_role(body).is_some_and(|r| self.not_created.contains(&r)) {
                return;
            }
            if altered_role(body).is_some_and(|r| {
                self.names.owner.as_deref() == Some(r.as_str()) || r == self.names.to_role
            }) {
                return;
            }
        }
        if self.part == Part::Kept {
            if body.starts_with("DROP DATABASE ") || body.starts_with("CREATE DATABASE ") {
                return;
            }
            if body == EMPTY_SEARCH_PATH {
                out.extend_from_slice(IMMICH_SEARCH_PATH.as_bytes());
                out.extend_from_slice(&line[body.len()..]);
                return;
            }
        }
        if copy_start(body) {
            self.copy = true;
            out.extend_from_slice(line);
            return;
        }
        self.emit_statement(body, line, out);
    }
}

/// Reads the whole dump: what it is, its databases and roles, and whether it
/// is complete. A gzip that is damaged fails here.
fn scan(path: &Path, decode: Decode) -> std::io::Result<Scan> {
    let file = std::fs::File::open(path)?;
    let mut reader = pipe::decoded(file, decode)?;
    let mut scan = Scan {
        kind: SqlDumpKind::Database,
        complete: false,
        dumped_from: None,
        sections: Vec::new(),
        roles: Vec::new(),
        first_owner: None,
        restrict: false,
    };
    let mut line = Vec::new();
    let mut first = true;
    let mut copy = false;
    let mut in_section = false;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if copy {
            copy = line.strip_suffix(b"\n").unwrap_or(&line) != b"\\.";
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        let body = text.trim_end_matches(['\n', '\r']);
        if first && !body.is_empty() && body != "--" {
            first = false;
            scan.kind = if body == CLUSTER_HEADER {
                SqlDumpKind::Cluster
            } else if body == DATABASE_HEADER {
                SqlDumpKind::Database
            } else {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "it does not start as a dump of pg_dump or pg_dumpall does, but with {body:?}"
                    ),
                ));
            };
        }
        if copy_start(body) {
            copy = true;
            continue;
        }
        if let Some(version) = body.strip_prefix("-- Dumped from database version ") {
            scan.dumped_from.get_or_insert_with(|| version.to_owned());
        }
        if body.starts_with("\\restrict ") {
            scan.restrict = true;
        }
        match scan.kind {
            SqlDumpKind::Cluster => {
                if let Some(name) = section_header(body) {
                    in_section = true;
                    scan.sections.push(Section {
                        name: name.to_owned(),
                        ..Section::default()
                    });
                } else if body == CLUSTER_END {
                    scan.complete = true;
                    in_section = false;
                } else if !in_section {
                    if let Some(role) = created_role(body) {
                        scan.roles.push(role);
                    }
                } else if let Some(section) = scan.sections.last_mut() {
                    if body.starts_with("CREATE TABLE ") {
                        section.tables += 1;
                    }
                    let alter =
                        format!("ALTER DATABASE {} OWNER TO ", ident_or_plain(&section.name));
                    if let Some(owner) = body
                        .strip_prefix(alter.as_str())
                        .and_then(|r| r.strip_suffix(';'))
                    {
                        let t = tokens(owner);
                        if t.len() == 1 {
                            section.owner = name_of(owner, t[0]);
                        }
                    }
                }
            }
            SqlDumpKind::Database => {
                if body == DATABASE_END {
                    scan.complete = true;
                }
                if scan.first_owner.is_none()
                    && let Some(at) = body.find(" OWNER TO ")
                    && body.starts_with("ALTER ")
                {
                    let owner = body[at + " OWNER TO ".len()..].trim_end_matches(';');
                    let t = tokens(owner);
                    if t.len() == 1 {
                        scan.first_owner = name_of(owner, t[0]);
                    }
                }
            }
        }
    }
    Ok(scan)
}

/// A database name as `pg_dump` writes it in a statement: as it is when it is
/// a plain lower-case word, else quoted.
fn ident_or_plain(name: &str) -> String {
    let plain = name
        .bytes()
        .enumerate()
        .all(|(i, b)| b.is_ascii_lowercase() || b == b'_' || (i > 0 && b.is_ascii_digit()));
    if plain && !name.is_empty() {
        name.to_owned()
    } else {
        ident(name)
    }
}

/// Which database of a cluster dump holds Immich's: the deployment's name if
/// the dump has it, else the one database with tables beside the system ones.
fn pick(scan: &Scan, wanted: &str) -> std::result::Result<Option<String>, String> {
    if scan.kind == SqlDumpKind::Database {
        return Ok(None);
    }
    if scan.sections.iter().any(|s| s.name == wanted) {
        return Ok(Some(wanted.to_owned()));
    }
    let candidates: Vec<&Section> = scan
        .sections
        .iter()
        .filter(|s| !SYSTEM_DATABASES.contains(&s.name.as_str()))
        .collect();
    let with_tables: Vec<&Section> = candidates
        .iter()
        .copied()
        .filter(|s| s.tables > 0)
        .collect();
    match (candidates.as_slice(), with_tables.as_slice()) {
        ([one], _) | (_, [one]) => Ok(Some(one.name.clone())),
        _ => Err(format!(
            "it holds the databases {}, none named {wanted}",
            scan.sections
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Whether this server's `psql` knows `\restrict` (added in 13.22, 14.19,
/// 15.14, 16.10, 17.6 and 18).
fn knows_restrict(version_num: u32) -> bool {
    let (major, minor) = (version_num / 10_000, version_num % 10_000);
    match major {
        0..=12 => false,
        13 => minor >= 22,
        14 => minor >= 19,
        15 => minor >= 14,
        16 => minor >= 10,
        17 => minor >= 6,
        _ => true,
    }
}

/// A dump read and checked, ready to load.
#[derive(Debug)]
pub(crate) struct Checked {
    path: PathBuf,
    decode: Decode,
    scan: Scan,
    source: Option<String>,
}

/// Reads the whole dump, on a thread of its own, and checks it: a dump of
/// `pg_dump` or `pg_dumpall`, complete, holding a database to restore.
pub(crate) async fn check(path: &Path, decode: Decode, database: &str) -> Result<Checked> {
    let corrupt = |what: String| {
        Error::bad_input(format!("{} cannot be restored: {what}", path.display()))
            .at(path.display().to_string())
            .help("nothing was changed; restore another of Immich's backups")
    };
    let owned = path.to_path_buf();
    let scan = pipe::blocking(move || scan(&owned, decode))
        .await
        .map_err(|e| Error::failed(format!("cannot read {}: {e}", path.display())))?
        .map_err(|e| corrupt(format!("{e}")))?;
    if !scan.complete {
        return Err(corrupt(
            "it ends before the line that closes a complete dump (cut off?)".into(),
        ));
    }
    let source = pick(&scan, database).map_err(corrupt)?;
    Ok(Checked {
        path: path.to_path_buf(),
        decode,
        scan,
        source,
    })
}

impl Checked {
    /// The database of a cluster dump that is restored.
    pub(crate) fn database(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// The server version that made it.
    pub(crate) fn dumped_from(&self) -> Option<&str> {
        self.scan.dumped_from.as_deref()
    }

    /// `pg_dumpall` or `pg_dump`.
    pub(crate) fn kind(&self) -> SqlDumpKind {
        self.scan.kind
    }

    fn owner(&self) -> Option<String> {
        match self.scan.kind {
            SqlDumpKind::Cluster => self
                .scan
                .sections
                .iter()
                .find(|s| Some(&s.name) == self.source.as_ref())
                .and_then(|s| s.owner.clone()),
            SqlDumpKind::Database => self.scan.first_owner.clone(),
        }
    }
}

/// Loads a checked dump into the deployment's database, which it replaces
/// (all or nothing); refuses a database that is not empty unless `replace`.
pub(crate) async fn restore(
    ctx: &Layer,
    dump: &Checked,
    replace: bool,
) -> Result<(SqlDump, Loaded)> {
    let pg = &ctx.deployment.config.postgres;
    require_postgres(ctx).await?;
    require_empty(ctx, replace, &dump.path).await?;
    let (_, _) = server_version(ctx).await?;
    let version_num: u32 = crate::backup::psql(
        ctx,
        "reading the server's version",
        "SHOW server_version_num;",
    )
    .await?
    .parse()
    .unwrap_or(0);
    let fresh = Fresh::create(ctx).await?;
    let existing = db_settings::roles(ctx, fresh.maintenance).await?;
    let owner = dump.owner();
    let mut not_created: BTreeSet<String> = existing.iter().cloned().collect();
    not_created.extend(owner.clone());
    let roles_created: Vec<String> = dump
        .scan
        .roles
        .iter()
        .filter(|r| !not_created.contains(*r))
        .cloned()
        .collect();
    let mut known: BTreeSet<String> = existing.into_iter().collect();
    known.extend(dump.scan.roles.iter().cloned());
    known.insert(pg.user.clone());
    let missing = Arc::new(Mutex::new(BTreeSet::new()));
    let filter = Filter {
        cluster: dump.scan.kind == SqlDumpKind::Cluster,
        part: match dump.scan.kind {
            SqlDumpKind::Cluster => Part::Roles,
            SqlDumpKind::Database => Part::Kept,
        },
        copy: false,
        names: Names {
            owner: owner.clone(),
            to_role: pg.user.clone(),
            source: dump.source.clone(),
            target: fresh.name.clone(),
            known,
        },
        not_created,
        keep_restrict: knows_restrict(version_num),
        missing: missing.clone(),
    };
    let loaded = load(ctx, dump, &fresh, Box::new(filter)).await;
    let (size, sha256) = match loaded {
        Ok(read) => read,
        Err(e) => {
            fresh.abandon(ctx).await;
            return Err(e);
        }
    };
    fresh.swap(ctx).await?;
    let roles_missing: Vec<String> = missing
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .cloned()
        .collect();
    for role in &roles_missing {
        ctx.tell(Event::Warning(&format!(
            "the dump grants to the role {role}, which exists neither here nor in the dump: those grants were left out"
        )));
    }
    let report = SqlDump {
        kind: dump.scan.kind,
        gzip: dump.decode == Decode::Gzip,
        size,
        sha256,
        dumped_from: dump.scan.dumped_from.clone(),
        database: dump.source.clone(),
        left_out: dump
            .scan
            .sections
            .iter()
            .filter(|s| Some(&s.name) != dump.source.as_ref())
            .map(|s| s.name.clone())
            .collect(),
        owner,
        roles_created,
        roles_missing,
    };
    Ok((
        report,
        Loaded {
            how: format!(
                "psql read the {}dump streamed into it",
                if dump.decode == Decode::Gzip {
                    "decompressed "
                } else {
                    ""
                }
            ),
            jobs: 1,
            settings: 0,
        },
    ))
}

/// Streams the dump through `filter` into `psql`, connected to the new
/// database (a one-database dump) or to the maintenance database (a cluster
/// dump, which connects to the new one itself). Returns the file's size and
/// SHA-256.
async fn load(
    ctx: &Layer,
    dump: &Checked,
    fresh: &Fresh,
    filter: Box<dyn LineFilter>,
) -> Result<(u64, String)> {
    let pg = &ctx.deployment.config.postgres;
    let database = match dump.scan.kind {
        SqlDumpKind::Cluster => fresh.maintenance,
        SqlDumpKind::Database => fresh.name.as_str(),
    };
    let spec = ExecSpec::new([
        "psql",
        "-X",
        "-w",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-U",
        pg.user.as_str(),
        "-d",
        database,
    ]);
    let file = std::fs::File::open(&dump.path)
        .map_err(|e| Error::bad_input(format!("cannot read {}: {e}", dump.path.display())))?;
    let total = file.metadata().map(|m| m.len()).ok();
    let mut input = FileReader::start(file, dump.decode, Some(filter))
        .map_err(|e| Error::failed(format!("cannot start reading the dump: {e}")))?
        .metered(Meter::new(&*ctx.progress, "restore", total));
    let out = ctx
        .runtime
        .exec_streaming(
            &pg.container_name,
            &spec,
            Some(&mut input),
            &mut tokio::io::sink(),
        )
        .await;
    let read = input.finish().await;
    let out = out.map_err(|e| match e {
        homelab_podman::Error::ExecStream { source, .. } => {
            Error::bad_input(format!("cannot read {}: {source}", dump.path.display()))
                .help("nothing was changed; restore another of Immich's backups")
        }
        other => ctx.podman_failure("running psql", &other),
    })?;
    if !out.success() {
        return Err(Error::failed(format!(
            "psql stopped at an error (exit {}); the database is as it was: {}",
            out.exit_code,
            out.stderr_text().trim()
        ))
        .help("read psql's message above; nothing was changed"));
    }
    let read =
        read.map_err(|e| Error::failed(format!("cannot read {}: {e}", dump.path.display())))?;
    Ok((read.size, read.sha256))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names {
            owner: Some("postgres".into()),
            to_role: "immich".into(),
            source: Some("immich".into()),
            target: "immich_db_restore_1".into(),
            known: ["postgres", "immich", "reader"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
        }
    }

    #[test]
    fn owners_and_the_database_are_renamed_and_nothing_else() {
        let n = names();
        let cases = [
            (
                "ALTER TABLE public.exif OWNER TO postgres;",
                Some(r#"ALTER TABLE public.exif OWNER TO "immich";"#),
            ),
            (
                "ALTER DATABASE immich OWNER TO postgres;",
                Some(r#"ALTER DATABASE "immich_db_restore_1" OWNER TO "immich";"#),
            ),
            (
                "ALTER DATABASE immich SET search_path TO '$user', 'public', 'vectors';",
                Some(
                    r#"ALTER DATABASE "immich_db_restore_1" SET search_path TO '$user', 'public', 'vectors';"#,
                ),
            ),
            (
                "ALTER ROLE reader IN DATABASE immich SET work_mem TO '8MB';",
                Some(
                    r#"ALTER ROLE reader IN DATABASE "immich_db_restore_1" SET work_mem TO '8MB';"#,
                ),
            ),
            (
                "ALTER ROLE postgres SET statement_timeout TO '5min';",
                Some(r#"ALTER ROLE "immich" SET statement_timeout TO '5min';"#),
            ),
            (
                "GRANT reader TO postgres GRANTED BY postgres;",
                Some(r#"GRANT reader TO "immich" GRANTED BY "immich";"#),
            ),
            (
                "ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT SELECT ON TABLES TO reader;",
                Some(
                    r#"ALTER DEFAULT PRIVILEGES FOR ROLE "immich" IN SCHEMA public GRANT SELECT ON TABLES TO reader;"#,
                ),
            ),
            ("GRANT SELECT ON TABLE public.exif TO reader;", None),
            ("REVOKE USAGE ON SCHEMA public FROM PUBLIC;", None),
            // A schema named like the role, qualified: not a role.
            ("ALTER SEQUENCE public.s OWNED BY postgres.t.id;", None),
            ("ALTER TABLE ONLY postgres.t OWNER TO reader;", None),
            // Names in quotes and literals.
            (
                r#"COMMENT ON DATABASE "immich" IS 'TO postgres';"#,
                Some(r#"COMMENT ON DATABASE "immich_db_restore_1" IS 'TO postgres';"#),
            ),
            (r#"ALTER TABLE public."TO postgres" OWNER TO reader;"#, None),
        ];
        for (line, want) in cases {
            let got = rewrite(line, &n);
            match want {
                Some(text) => assert_eq!(got, Rewrite::Changed(text.into()), "{line}"),
                None => assert_eq!(got, Rewrite::Same, "{line}"),
            }
        }
        assert_eq!(
            rewrite("GRANT SELECT ON TABLE public.exif TO ghost;", &n),
            Rewrite::LeftOut("ghost".into())
        );
    }

    fn filtered(dump: &str, filter: &mut Filter) -> String {
        let mut out = Vec::new();
        for line in dump.split_inclusive('\n') {
            filter.line(line.as_bytes(), &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    /// The shape of a `pg_dumpall --clean --if-exists` of PostgreSQL 17.
    const CLUSTER: &str = "--\n-- PostgreSQL database cluster dump\n--\n\n\\restrict K1\n\
SET default_transaction_read_only = off;\n\nDROP DATABASE IF EXISTS immich;\n\
DROP ROLE IF EXISTS postgres;\nDROP ROLE IF EXISTS reader;\n\
CREATE ROLE postgres;\nALTER ROLE postgres WITH SUPERUSER INHERIT LOGIN PASSWORD 'SCRAM-SHA-256$4096:x';\n\
CREATE ROLE reader;\nALTER ROLE reader WITH NOSUPERUSER LOGIN PASSWORD 'SCRAM-SHA-256$4096:y';\n\
ALTER ROLE postgres SET statement_timeout TO '5min';\n\\unrestrict K1\n\
--\n-- Databases\n--\n\n--\n-- Database \"template1\" dump\n--\n\n\\restrict K2\n\
DROP DATABASE template1;\nCREATE DATABASE template1 WITH TEMPLATE = template0;\n\\unrestrict K2\n\\connect template1\n\
COPY public.junk (a) FROM stdin;\nDROP ROLE nobody\n\\.\n\
-- PostgreSQL database dump complete\n\n--\n-- Database \"immich\" dump\n--\n\n\\restrict K3\n\
SELECT pg_catalog.set_config('search_path', '', false);\n\
DROP DATABASE IF EXISTS immich;\n\
CREATE DATABASE immich WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE = 'en_US.utf8';\n\
ALTER DATABASE immich OWNER TO postgres;\n\\unrestrict K3\n\\connect immich\n\\restrict K3\n\
ALTER DATABASE immich SET search_path TO '$user', 'public', 'vectors';\n\\unrestrict K3\n\\connect immich\n\\restrict K3\n\
SELECT pg_catalog.set_config('search_path', '', false);\n\
CREATE TABLE public.exif (\n    id integer NOT NULL\n);\n\
ALTER TABLE public.exif OWNER TO postgres;\n\
COPY public.exif (id) FROM stdin;\n1\nALTER TABLE x OWNER TO postgres;\n\\.\n\
CREATE INDEX exif_ll ON public.exif USING gist (public.ll_to_earth(latitude, longitude));\n\
GRANT SELECT ON TABLE public.exif TO reader;\nGRANT SELECT ON TABLE public.exif TO ghost;\n\
-- PostgreSQL database dump complete\n\\unrestrict K3\n\n\
--\n-- Database \"postgres\" dump\n--\n\n\\connect postgres\nCREATE TABLE public.other (x int);\n\
-- PostgreSQL database dump complete\n\n--\n-- PostgreSQL database cluster dump complete\n--\n\n";

    fn cluster_filter(keep_restrict: bool) -> (Filter, Arc<Mutex<BTreeSet<String>>>) {
        let missing = Arc::new(Mutex::new(BTreeSet::new()));
        let filter = Filter {
            cluster: true,
            part: Part::Roles,
            copy: false,
            names: names(),
            not_created: ["postgres", "immich"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
            keep_restrict,
            missing: missing.clone(),
        };
        (filter, missing)
    }

    #[test]
    fn a_cluster_dump_keeps_one_database_and_the_roles_the_server_lacks() {
        let (mut filter, missing) = cluster_filter(true);
        let out = filtered(CLUSTER, &mut filter);
        let expected = "--\n-- PostgreSQL database cluster dump\n--\n\n\\restrict K1\n\
SET default_transaction_read_only = off;\n\n\
CREATE ROLE reader;\nALTER ROLE reader WITH NOSUPERUSER LOGIN PASSWORD 'SCRAM-SHA-256$4096:y';\n\
ALTER ROLE \"immich\" SET statement_timeout TO '5min';\n\\unrestrict K1\n\
--\n-- Databases\n--\n\n--\n-- Database \"immich\" dump\n--\n\n\\restrict K3\n\
SELECT pg_catalog.set_config('search_path', 'public, pg_catalog', true);\n\
ALTER DATABASE \"immich_db_restore_1\" OWNER TO \"immich\";\n\\unrestrict K3\n\\connect immich_db_restore_1\n\\restrict K3\n\
ALTER DATABASE \"immich_db_restore_1\" SET search_path TO '$user', 'public', 'vectors';\n\\unrestrict K3\n\\connect immich_db_restore_1\n\\restrict K3\n\
SELECT pg_catalog.set_config('search_path', 'public, pg_catalog', true);\n\
CREATE TABLE public.exif (\n    id integer NOT NULL\n);\n\
ALTER TABLE public.exif OWNER TO \"immich\";\n\
COPY public.exif (id) FROM stdin;\n1\nALTER TABLE x OWNER TO postgres;\n\\.\n\
CREATE INDEX exif_ll ON public.exif USING gist (public.ll_to_earth(latitude, longitude));\n\
GRANT SELECT ON TABLE public.exif TO reader;\n\
-- PostgreSQL database dump complete\n\\unrestrict K3\n\n\
--\n-- PostgreSQL database cluster dump complete\n--\n\n";
        assert_eq!(out, expected);
        assert_eq!(
            *missing.lock().unwrap(),
            ["ghost".to_owned()].into_iter().collect()
        );
        // A psql that does not know \restrict gets none of those lines.
        let (mut filter, _) = cluster_filter(false);
        let out = filtered(CLUSTER, &mut filter);
        assert!(!out.contains("restrict"), "{out}");
        assert!(out.contains("\\connect immich_db_restore_1\n"), "{out}");
    }

    #[test]
    fn a_scan_finds_the_databases_roles_and_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("immich-db-backup-1.sql.gz");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        std::io::Write::write_all(&mut gz, CLUSTER.as_bytes()).unwrap();
        gz.finish().unwrap();
        assert_eq!(sniff(&path), Some(Decode::Gzip));
        let found = scan(&path, Decode::Gzip).unwrap();
        assert_eq!(found.kind, SqlDumpKind::Cluster);
        assert!(found.complete);
        assert!(found.restrict);
        assert_eq!(found.roles, ["postgres", "reader"]);
        let names: Vec<(&str, usize, Option<&str>)> = found
            .sections
            .iter()
            .map(|s| (s.name.as_str(), s.tables, s.owner.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                ("template1", 0, None),
                ("immich", 1, Some("postgres")),
                ("postgres", 1, None)
            ]
        );
        assert_eq!(pick(&found, "immich").unwrap().as_deref(), Some("immich"));
        // Another name: the one database beside the system ones.
        assert_eq!(pick(&found, "photos").unwrap().as_deref(), Some("immich"));

        // Cut off: no closing line.
        let cut = &CLUSTER[..CLUSTER.len() / 2];
        std::fs::write(dir.path().join("cut.sql"), cut).unwrap();
        assert!(
            !scan(&dir.path().join("cut.sql"), Decode::Plain)
                .unwrap()
                .complete
        );
        // A damaged gzip fails the scan.
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert!(scan(&path, Decode::Gzip).is_err());
        // Not a dump.
        std::fs::write(dir.path().join("notes.sql"), "-- my notes\nSELECT 1;\n").unwrap();
        assert!(scan(&dir.path().join("notes.sql"), Decode::Plain).is_err());
    }

    #[test]
    fn a_one_database_dump_is_kept_whole_with_its_owner_renamed() {
        let dump = "--\n-- PostgreSQL database dump\n--\n\n\
SELECT pg_catalog.set_config('search_path', '', false);\n\
DROP TABLE IF EXISTS public.exif;\nCREATE TABLE public.exif (id int);\n\
ALTER TABLE public.exif OWNER TO postgres;\nGRANT SELECT ON TABLE public.exif TO reader;\n\
-- PostgreSQL database dump complete\n";
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("d.sql"), dump).unwrap();
        let found = scan(&dir.path().join("d.sql"), Decode::Plain).unwrap();
        assert_eq!(found.kind, SqlDumpKind::Database);
        assert!(found.complete);
        assert_eq!(found.first_owner.as_deref(), Some("postgres"));
        assert_eq!(pick(&found, "immich").unwrap(), None);
        let missing = Arc::new(Mutex::new(BTreeSet::new()));
        let mut filter = Filter {
            cluster: false,
            part: Part::Kept,
            copy: false,
            names: Names {
                known: ["immich".to_owned()].into_iter().collect(),
                source: None,
                ..names()
            },
            not_created: BTreeSet::new(),
            keep_restrict: true,
            missing: missing.clone(),
        };
        let out = filtered(dump, &mut filter);
        assert_eq!(
            out,
            "--\n-- PostgreSQL database dump\n--\n\n\
SELECT pg_catalog.set_config('search_path', 'public, pg_catalog', true);\n\
DROP TABLE IF EXISTS public.exif;\nCREATE TABLE public.exif (id int);\n\
ALTER TABLE public.exif OWNER TO \"immich\";\n\
-- PostgreSQL database dump complete\n"
        );
        assert_eq!(
            *missing.lock().unwrap(),
            ["reader".to_owned()].into_iter().collect()
        );
    }

    #[test]
    fn restrict_is_known_from_these_releases() {
        assert!(!knows_restrict(170_005));
        assert!(knows_restrict(170_006));
        assert!(!knows_restrict(140_018));
        assert!(knows_restrict(140_019));
        assert!(knows_restrict(180_000));
    }
}
