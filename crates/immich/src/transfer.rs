//! Loading a backup into another PostgreSQL: the way over to a Kubernetes
//! cluster (CloudNativePG's service, reached through `kubectl port-forward`),
//! or to any server this host reaches.
//!
//! The backup is checked first (manifest, size, SHA-256). The target is asked
//! over the network as the given role, with the given password: whether it
//! answers, takes the password, and is empty (or `force` is given). The
//! backup is then loaded in one transaction by the `pg_restore` of the
//! deployment's own PostgreSQL image, run with the host's network (so that it
//! reaches a port-forward on loopback), in a container removed afterwards; its
//! release must read the backup's archive. Last, the target's relations are
//! counted.
//!
//! The password is never in a process's arguments, an environment variable
//! podman records, or a file on disk: it goes on the container's standard
//! input, ahead of the dump, and a shell there writes it into a password file
//! in the container's memory (`/dev/shm`) for `pg_restore` alone.

use std::io::{IsTerminal as _, Read};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use homelab_secrets::SecretValue;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::backup;
use crate::backups::Manifest;
use crate::config::Deployment;
use crate::error::{Error, ErrorKind, Result};
use crate::progress::{Event, Progress};

/// The port PostgreSQL listens on unless the URL names another.
const DEFAULT_PORT: u16 = 5432;

/// How long connecting to the target may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most a password file or standard input may hold.
const PASSWORD_LIMIT: u64 = 4096;

/// A PostgreSQL database to load a backup into:
/// `postgresql://USER@HOST:PORT/DATABASE`, without a password.
///
/// ```
/// use homelab_immich::transfer::Target;
///
/// let target = Target::parse("postgresql://immich@127.0.0.1:15432/immich")?;
/// assert_eq!((target.host(), target.port()), ("127.0.0.1", 15432));
/// // A password in the URL would be in the command's arguments: refused,
/// // and not repeated in the error.
/// let err = Target::parse("postgresql://immich:hunter2@db/immich").unwrap_err();
/// assert!(!err.to_string().contains("hunter2"));
/// # Ok::<(), homelab_immich::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    user: String,
    host: String,
    port: u16,
    database: String,
}

impl Target {
    /// Parses `postgresql://USER@HOST[:PORT]/DATABASE` (or `postgres://`);
    /// `HOST` is a name or an address (one of IP version 6 in brackets).
    ///
    /// # Errors
    /// Bad input for anything else, in particular a URL with a password
    /// (which the error does not repeat) or with parameters.
    pub fn parse(url: &str) -> Result<Self> {
        const FORM: &str = "write it as postgresql://USER@HOST:PORT/DATABASE, such as postgresql://immich@127.0.0.1:15432/immich";
        let bad = |what: String| {
            Error::bad_input(format!("--target: {what}"))
                .at("--target")
                .help(format!("{FORM}; nothing was changed"))
        };
        let Some(rest) = url
            .strip_prefix("postgresql://")
            .or_else(|| url.strip_prefix("postgres://"))
        else {
            return Err(bad(
                "the target is not a postgresql:// URL (a local restore takes no --target)".into(),
            ));
        };
        // Whatever else is wrong, a password is refused first, wherever in
        // the URL it is, and not repeated.
        let before_query = rest.split('?').next().unwrap_or_default();
        if let Some((userinfo, _)) = before_query.rsplit_once('@')
            && userinfo.contains(':')
        {
            return Err(password_in_url());
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if path.contains('?') || path.contains('#') {
            let query = path.split_once('?').map_or("", |(_, q)| q);
            if query
                .split('&')
                .any(|p| p.split('=').next() == Some("password"))
            {
                return Err(password_in_url());
            }
            return Err(bad(
                "parameters after `?` are not taken (the password comes from --password-stdin or --password-file)".into(),
            ));
        }
        let Some((user, host_port)) = authority.rsplit_once('@') else {
            return Err(bad("the URL names no user (USER@ before the host)".into()));
        };
        let (host, port) = split_host_port(host_port).map_err(bad)?;
        let name = |what: &str, value: &str| -> Result<String> {
            let plain = !value.is_empty()
                && value.len() <= 63
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'$'));
            if plain {
                Ok(value.to_owned())
            } else {
                Err(bad(format!(
                    "the {what} {value:?} is not a plain PostgreSQL name (letters, digits, `_`, `-`, `.`, up to 63)"
                )))
            }
        };
        Ok(Self {
            user: name("user", user)?,
            database: name("database", path)?,
            host,
            port,
        })
    }

    /// The role the backup is loaded as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The server's host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database the backup is loaded into.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// `HOST:PORT`, with an address of IP version 6 in brackets.
    fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "postgresql://{}@{}/{}",
            self.user,
            self.address(),
            self.database
        )
    }
}

impl Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn password_in_url() -> Error {
    Error::bad_input(
        "--target holds a password: it would be in this command's arguments, which every user of the host can read",
    )
    .at("--target")
    .help("remove it from the URL (postgresql://USER@HOST:PORT/DATABASE) and give it on standard input with --password-stdin, or in a file with --password-file; nothing was changed")
}

fn split_host_port(text: &str) -> std::result::Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{text:?}: an IPv6 address in brackets lacks its `]`"))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{host:?} is not an IPv6 address"));
        }
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err(format!("{text:?}: expected `:PORT` after the address")),
        };
        (host.to_owned(), port)
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (text.to_owned(), None),
        }
    };
    let valid_name = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':'));
    if !valid_name {
        return Err(format!("{host:?} is not a host name or address"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("the port {p:?} is not a number from 1 to 65535"))?,
    };
    Ok((host, port))
}

/// Where the target's password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordSource {
    /// Standard input (which must not be a terminal).
    Stdin,
    /// A file.
    File(PathBuf),
}

/// Reads the password: the whole input, one trailing newline dropped.
///
/// # Errors
/// Bad input when it cannot be read, is empty, holds a line break or a NUL
/// byte, or is longer than a password; standard input that is a terminal is
/// refused (the password would be echoed).
pub fn read_password(source: &PasswordSource) -> Result<SecretValue> {
    match source {
        PasswordSource::Stdin => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                return Err(Error::bad_input(
                    "--password-stdin: standard input is a terminal, where the password would be shown",
                )
                .help("pipe it in, such as `kubectl get secret … | base64 -d | immich-db restore --target … --password-stdin FILE`, or use --password-file"));
            }
            password_from(stdin.lock(), "standard input")
        }
        PasswordSource::File(path) => {
            let file = std::fs::File::open(path).map_err(|e| {
                Error::bad_input(format!(
                    "cannot read the password file {}: {e}",
                    path.display()
                ))
                .at("--password-file")
            })?;
            password_from(file, &path.display().to_string())
        }
    }
}

/// Reads a password from `input` (named `what` in errors).
fn password_from(input: impl Read, what: &str) -> Result<SecretValue> {
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    input
        .take(PASSWORD_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::bad_input(format!("cannot read the password from {what}: {e}")))?;
    if bytes.len() as u64 > PASSWORD_LIMIT {
        return Err(Error::bad_input(format!(
            "{what} holds more than {PASSWORD_LIMIT} bytes: that is not a password"
        ))
        .help("give the password alone"));
    }
    let mut end = bytes.len();
    if bytes[..end].ends_with(b"\n") {
        end -= 1;
        if bytes[..end].ends_with(b"\r") {
            end -= 1;
        }
    }
    let password = &bytes[..end];
    if password.is_empty() {
        return Err(Error::bad_input(format!("the password from {what} is empty"))
            .help("give the target role's password (a CloudNativePG cluster keeps it in the Secret its README names)"));
    }
    if password.iter().any(|b| matches!(b, b'\n' | b'\r' | 0)) {
        return Err(Error::bad_input(format!(
            "the password from {what} holds a line break or a NUL byte"
        ))
        .help("give the password alone, on one line"));
    }
    Ok(SecretValue::new(password.to_vec()))
}

/// What to load, and where.
#[derive(Debug)]
#[non_exhaustive]
pub struct TargetRestore {
    /// The backup (its `.dump` or its manifest).
    pub file: PathBuf,
    /// Where it goes.
    pub target: Target,
    /// The target role's password.
    pub password: SecretValue,
    /// Load into a database that is not empty: everything the target role
    /// owns there is dropped first.
    pub force: bool,
}

impl TargetRestore {
    /// Loads `file` into `target` as its role, with `password`, refusing a
    /// database that is not empty.
    pub fn new(file: impl Into<PathBuf>, target: Target, password: SecretValue) -> Self {
        Self {
            file: file.into(),
            target,
            password,
            force: false,
        }
    }

    /// Whether a database that is not empty is emptied first.
    #[must_use]
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }
}

/// The `pg_restore` that loaded the backup.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PgRestore {
    /// The image it ran from (the deployment's PostgreSQL image).
    pub image: String,
    /// Its version.
    pub version: String,
}

/// A backup loaded into another PostgreSQL.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TargetRestoreReport {
    /// The target, without a password.
    pub target: Target,
    /// The dump loaded.
    pub restored: PathBuf,
    /// Its manifest (the database it was made of: `manifest.database`).
    pub manifest: Manifest,
    /// The target server's version.
    pub server_version: String,
    /// The `pg_restore` that loaded it.
    pub pg_restore: PgRestore,
    /// The target's relations (tables, views, sequences, ...) before, not
    /// counting those of extensions.
    pub relations_before: u64,
    /// The same, after.
    pub relations_after: u64,
    /// The tables `pg_restore` created.
    pub tables_restored: u64,
    /// The target's tables after.
    pub tables_after: u64,
    /// Whether what the target role owned there was dropped first (`force`).
    pub replaced_existing: bool,
    /// Whether comments were loaded (only where the role is a superuser: a
    /// role that is not may not comment on extensions it does not own).
    pub comments_restored: bool,
}

/// Loads a backup into the PostgreSQL `request` names, with the `pg_restore`
/// of the deployment's PostgreSQL image, and counts what landed there.
///
/// # Errors
/// Bad input: the backup is corrupt, the password is refused, the database
/// does not exist or is not empty (without `force`). A precondition: the
/// target cannot be reached, the image is not on this host or its
/// `pg_restore` is older than the backup. Failed: `pg_restore` failed (its
/// transaction is rolled back) or the tables it created are not there.
pub async fn restore(
    d: &Deployment,
    request: &TargetRestore,
    progress: &dyn Progress,
) -> Result<TargetRestoreReport> {
    let target = &request.target;
    let checked = backup::check(&request.file)?;
    let manifest = &checked.manifest;
    progress.event(Event::Phase(&format!(
        "{}: checksum and size match its manifest (database {}, PostgreSQL {}, {})",
        checked.dump.display(),
        manifest.database,
        manifest.postgres_version,
        manifest.created
    )));

    progress.event(Event::Phase(&format!("asking {target}")));
    let before = survey(target, &request.password).await?;
    if before.relations > 0 && !request.force {
        return Err(Error::bad_input(format!(
            "the target database {} is not empty ({} table(s), view(s) or sequence(s)): refusing to load the backup over it",
            target.database, before.relations
        ))
        .at("--target")
        .help(format!(
            "nothing was changed; to drop everything {} owns there and load the backup, add --force",
            target.user
        )));
    }
    let dump_major = major(&manifest.postgres_version);
    if let Some(dump_major) = dump_major
        && before.server_major < dump_major
    {
        progress.event(Event::Warning(&format!(
            "the target runs PostgreSQL {}, older than the backup's {}: the load may fail on what the older server lacks",
            before.server_version, manifest.postgres_version
        )));
    }
    if manifest.database != target.database {
        progress.event(Event::Warning(&format!(
            "the backup is of database {}; it is loaded into {}",
            manifest.database, target.database
        )));
    }

    let image = &d.config.postgres.image;
    progress.event(Event::Phase(&format!("checking pg_restore in {image}")));
    let version = pg_restore_version(image).await?;
    if let (Some(tool), Some(dump)) = (major(&version), dump_major)
        && tool < dump
    {
        return Err(Error::precondition(format!(
            "pg_restore {version} of {image} is older than the backup's PostgreSQL {}: it cannot read the backup",
            manifest.postgres_version
        ))
        .at("[postgres] image")
        .help(format!(
            "set [postgres] image to an image of PostgreSQL {dump} or newer (the one that made the backup); nothing was changed"
        )));
    }

    let replaced_existing = before.relations > 0;
    if replaced_existing {
        progress.event(Event::Phase(&format!(
            "--force: dropping everything {} owns in {}",
            target.user, target.database
        )));
        drop_owned(target, &request.password).await?;
    }
    progress.event(Event::Phase(&format!(
        "loading the backup into {target} with pg_restore {version}"
    )));
    let comments_restored = before.superuser;
    let run = load(
        image,
        target,
        &request.password,
        &checked,
        comments_restored,
        progress,
    )
    .await
    .map_err(|e| {
        if replaced_existing && e.kind == ErrorKind::Failed {
            e.help("the objects the role owned were dropped before the load, which was rolled back: the database holds none of them now; fix the cause and run the command again")
        } else {
            e
        }
    })?;

    let after = survey(target, &request.password).await?;
    if after.tables < run.tables {
        return Err(Error::failed(format!(
            "pg_restore reported success, but {} holds {} table(s) where it created {}",
            target, after.tables, run.tables
        ))
        .help("look at the target database with psql; then run the command again with --force"));
    }
    progress.event(Event::Done(&format!(
        "{} holds {} relation(s), {} table(s) ({} created by pg_restore)",
        target, after.relations, after.tables, run.tables
    )));
    Ok(TargetRestoreReport {
        target: target.clone(),
        restored: checked.dump.clone(),
        manifest: checked.manifest.clone(),
        server_version: after.server_version,
        pg_restore: PgRestore {
            image: image.clone(),
            version,
        },
        relations_before: before.relations,
        relations_after: after.relations,
        tables_restored: run.tables,
        tables_after: after.tables,
        replaced_existing,
        comments_restored,
    })
}

/// The major version at the start of a version string (`17.6 (Debian …)`,
/// or `pg_restore (PostgreSQL) 17.12 …`).
fn major(version: &str) -> Option<u32> {
    let start = version.find(|c: char| c.is_ascii_digit())?;
    let digits: String = version[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// What the target holds, as its role sees it.
#[derive(Debug)]
struct Survey {
    server_version: String,
    server_major: u32,
    superuser: bool,
    relations: u64,
    tables: u64,
}

/// The relations of the database outside the system schemas, not counting
/// those that belong to an extension (an operator may have created some).
const SURVEY: &str = "SELECT current_setting('server_version'), \
     current_setting('server_version_num')::int / 10000, \
     (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), \
     count(*) FILTER (WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')), \
     count(*) FILTER (WHERE c.relkind IN ('r', 'p')) \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
     AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass \
     AND e.objid = c.oid AND e.deptype = 'e')";

async fn connect(target: &Target, password: &SecretValue) -> Result<tokio_postgres::Client> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&target.host)
        .port(target.port)
        .user(&target.user)
        .dbname(&target.database)
        .password(password.expose())
        .application_name("immich-db")
        .connect_timeout(CONNECT_TIMEOUT);
    let connecting = config.connect(tokio_postgres::NoTls);
    let (client, connection) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| {
            unreachable(
                target,
                &format!("no answer in {} s", CONNECT_TIMEOUT.as_secs()),
            )
        })?
        .map_err(|e| connect_error(target, &e))?;
    tokio::spawn(connection);
    Ok(client)
}

fn unreachable(target: &Target, why: &str) -> Error {
    Error::precondition(format!(
        "cannot reach PostgreSQL at {}: {why}",
        target.address()
    ))
    .at("--target")
    .help("check the address; for a cluster, run `kubectl port-forward` to it in another terminal first; nothing was changed")
}

/// The server's refusal as bad input (the password, the role, the database),
/// anything else as the target out of reach.
fn connect_error(target: &Target, e: &tokio_postgres::Error) -> Error {
    let Some(db) = e.as_db_error() else {
        let why = std::error::Error::source(e).map_or_else(|| e.to_string(), ToString::to_string);
        return unreachable(target, &why);
    };
    let code = db.code().code();
    let (what, help) = match code {
        "28P01" => (
            format!(
                "{} refused the password of {}: {}",
                target.address(),
                target.user,
                db.message()
            ),
            "give the password of that role (a CloudNativePG cluster keeps it in the Secret its README names)",
        ),
        "3D000" => (
            format!(
                "there is no database {} at {}",
                target.database,
                target.address()
            ),
            "name the database the backup goes into; CloudNativePG creates it with the cluster",
        ),
        _ => (
            format!(
                "{} refused the connection as {} to {}: {} ({code})",
                target.address(),
                target.user,
                target.database,
                db.message()
            ),
            "check the role, the database and the server's pg_hba.conf",
        ),
    };
    Error::bad_input(what)
        .at("--target")
        .help(format!("{help}; nothing was changed"))
}

async fn survey(target: &Target, password: &SecretValue) -> Result<Survey> {
    let client = connect(target, password).await?;
    let messages = client
        .simple_query(SURVEY)
        .await
        .map_err(|e| Error::failed(format!("cannot survey {target}: {e}")))?;
    let row = messages
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        })
        .ok_or_else(|| Error::failed(format!("{target} answered the survey with no row")))?;
    let field = |i: usize| row.get(i).unwrap_or_default().to_owned();
    let number = |i: usize| field(i).parse::<u64>().unwrap_or(0);
    Ok(Survey {
        server_version: field(0),
        server_major: u32::try_from(number(1)).unwrap_or(0),
        superuser: field(2) == "t",
        relations: number(3),
        tables: number(4),
    })
}

async fn drop_owned(target: &Target, password: &SecretValue) -> Result<()> {
    let client = connect(target, password).await?;
    client
        .batch_execute("DROP OWNED BY CURRENT_USER")
        .await
        .map_err(|e| {
            let why = e.as_db_error().map_or_else(|| e.to_string(), |db| db.message().to_owned());
            Error::failed(format!(
                "cannot drop what {} owns in {}: {why}",
                target.user, target.database
            ))
            .help("nothing of the backup was loaded; empty the database by hand, or load into another")
        })
}

/// `podman run` of a one-off container of `image` with the host's network,
/// removed when it exits, with `entrypoint` and `args`.
fn podman_run(
    image: &str,
    network: &str,
    entrypoint: &str,
    args: &[&str],
) -> tokio::process::Command {
    tracing::debug!(image, network, entrypoint, ?args, "podman run");
    let mut command = tokio::process::Command::new("podman");
    command
        .args(["run", "--rm", "--pull=never", "--network", network])
        .args(["--entrypoint", entrypoint])
        .arg("-i")
        .arg(image)
        .args(args)
        .kill_on_drop(true);
    command
}

/// The failure of a container that did not start (podman's own exit codes).
fn container_error(image: &str, code: Option<i32>, stderr: &str) -> Option<Error> {
    let missing = stderr.contains("image not known") || stderr.contains("no such image");
    if missing {
        return Some(
            Error::precondition(format!("the image {image} is not on this host"))
                .at("[postgres] image")
                .help(format!(
                    "pull it (`podman pull {image}`), or set [postgres] image to one that is; nothing was changed"
                )),
        );
    }
    matches!(code, Some(125..=127)).then(|| {
        Error::precondition(format!("podman could not run {image}: {}", stderr.trim()))
            .help("nothing was changed")
    })
}

/// `pg_restore --version` in the image.
async fn pg_restore_version(image: &str) -> Result<String> {
    let out = podman_run(image, "none", "pg_restore", &["--version"])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| Error::precondition(format!("cannot run podman: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Some(e) = container_error(image, out.status.code(), &stderr) {
        return Err(e);
    }
    let version = stdout
        .trim()
        .strip_prefix("pg_restore (PostgreSQL) ")
        .filter(|_| out.status.success())
        .ok_or_else(|| {
            Error::precondition(format!(
                "the image {image} has no pg_restore: `pg_restore --version` answered {:?}",
                format!("{}{}", stdout.trim(), stderr.trim())
            ))
            .at("[postgres] image")
            .help("use an image of PostgreSQL, such as the deployment's; nothing was changed")
        })?;
    Ok(version.to_owned())
}

/// The shell that runs `pg_restore` in the container: it reads the first
/// line of standard input (the password file's line) into a file in the
/// container's memory that only its owner reads, and leaves the rest of
/// standard input, the dump, to `pg_restore`.
const LOAD_SCRIPT: &str = "IFS= read -r line || exit 97; umask 077; \
     printf '%s\\n' \"$line\" > /dev/shm/.pgpass || exit 98; line=; \
     export PGPASSFILE=/dev/shm/.pgpass PGCONNECT_TIMEOUT=10 PGAPPNAME=immich-db; \
     exec pg_restore -w --verbose --single-transaction --exit-on-error --no-owner --no-privileges \"$@\"";

/// A line of a password file that matches every server, with `:` and `\`
/// escaped as libpq reads them.
fn passfile_line(password: &SecretValue) -> zeroize::Zeroizing<Vec<u8>> {
    let mut line = zeroize::Zeroizing::new(b"*:*:*:*:".to_vec());
    for b in password.expose() {
        if matches!(b, b':' | b'\\') {
            line.push(b'\\');
        }
        line.push(*b);
    }
    line.push(b'\n');
    line
}

/// What a load did.
#[derive(Debug)]
struct Loaded {
    /// The tables `pg_restore` created.
    tables: u64,
}

async fn load(
    image: &str,
    target: &Target,
    password: &SecretValue,
    checked: &backup::Checked,
    comments: bool,
    progress: &dyn Progress,
) -> Result<Loaded> {
    let port = target.port.to_string();
    let mut args = vec![
        "-c",
        LOAD_SCRIPT,
        "sh",
        "-h",
        target.host.as_str(),
        "-p",
        port.as_str(),
        "-U",
        target.user.as_str(),
        "-d",
        target.database.as_str(),
    ];
    if !comments {
        args.push("--no-comments");
    }
    let mut file = tokio::fs::File::open(&checked.dump)
        .await
        .map_err(|e| Error::bad_input(format!("cannot read {}: {e}", checked.dump.display())))?;
    let total = checked.manifest.size;
    let mut child = podman_run(image, "host", "sh", &args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::precondition(format!("cannot run podman: {e}")))?;
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(Error::failed("podman run has no standard streams"));
    };
    let send = async {
        let mut hasher = Sha256::new();
        let mut sent = 0u64;
        stdin.write_all(&passfile_line(password)).await?;
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buffer).await?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            stdin.write_all(&buffer[..n]).await?;
            sent += n as u64;
            progress.event(Event::Bytes {
                what: "restore",
                done: sent,
                total: Some(total),
            });
        }
        stdin.shutdown().await?;
        drop(stdin);
        Ok::<_, std::io::Error>(backup::hex(&hasher.finalize()))
    };
    let mut out = Vec::new();
    let mut err = Vec::new();
    let (streamed, _, _) = tokio::join!(
        send,
        stdout.read_to_end(&mut out),
        stderr.read_to_end(&mut err)
    );
    let status = child
        .wait()
        .await
        .map_err(|e| Error::failed(format!("cannot wait for podman: {e}")))?;
    let stderr = String::from_utf8_lossy(&err);
    if !status.success() {
        if let Some(e) = container_error(image, status.code(), &stderr) {
            return Err(e);
        }
        return Err(load_error(status.code(), &stderr, &checked.manifest));
    }
    match streamed {
        Ok(sha256) if sha256 == checked.manifest.sha256 => {}
        Ok(_) => {
            return Err(Error::failed(format!(
                "{} changed while it was being loaded: the target holds what was read, which is not the backup that was checked",
                checked.dump.display()
            ))
            .help("load a backup nothing writes to, with --force"));
        }
        Err(e) => {
            return Err(Error::failed(format!(
                "cannot send {} to pg_restore: {e}",
                checked.dump.display()
            )));
        }
    }
    Ok(Loaded {
        tables: created_tables(&stderr),
    })
}

/// The tables `pg_restore --verbose` says it created.
fn created_tables(stderr: &str) -> u64 {
    stderr
        .lines()
        .filter(|l| l.starts_with("pg_restore: creating TABLE \""))
        .count() as u64
}

/// `pg_restore`'s failure, its error lines without the verbose ones.
fn load_error(code: Option<i32>, stderr: &str, manifest: &Manifest) -> Error {
    if stderr.contains("unsupported version") {
        return Error::precondition(format!(
            "this pg_restore cannot read the backup (made by PostgreSQL {}): {}",
            manifest.postgres_version,
            stderr
                .lines()
                .find(|l| l.contains("unsupported version"))
                .unwrap_or_default()
        ))
        .at("[postgres] image")
        .help("set [postgres] image to an image of the backup's PostgreSQL or newer; nothing was changed");
    }
    let routine = [
        "creating ",
        "processing ",
        "connecting ",
        "executing ",
        "restoring ",
        "setting owner",
    ];
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            let rest = l.strip_prefix("pg_restore: ");
            !l.trim().is_empty() && rest.is_none_or(|r| !routine.iter().any(|p| r.starts_with(p)))
        })
        .collect();
    let tail = lines[lines.len().saturating_sub(12)..].join("\n");
    let mut failure = Error::failed(format!(
        "pg_restore failed (exit {}); its single transaction was rolled back: {tail}",
        code.map_or_else(|| "by a signal".to_owned(), |c| c.to_string())
    ));
    failure = if stderr.contains("permission denied to create extension") {
        failure.help("the target role may not create that extension: create it as a superuser first (CloudNativePG's postInitApplicationSQL, as the rendered Cluster does for vchord and earthdistance), then run the command again")
    } else {
        failure.help("read pg_restore's message above, fix the cause, and run the command again")
    };
    failure
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_the_documented_form_are_taken() {
        let t = Target::parse("postgresql://immich@127.0.0.1:15432/immich").unwrap();
        assert_eq!(
            (t.user(), t.host(), t.port(), t.database()),
            ("immich", "127.0.0.1", 15432, "immich")
        );
        assert_eq!(t.to_string(), "postgresql://immich@127.0.0.1:15432/immich");
        let t = Target::parse("postgres://app@db.example.internal/photos").unwrap();
        assert_eq!((t.host(), t.port()), ("db.example.internal", 5432));
        let t = Target::parse("postgresql://immich@[::1]:5433/immich").unwrap();
        assert_eq!((t.host(), t.port()), ("::1", 5433));
        assert_eq!(t.to_string(), "postgresql://immich@[::1]:5433/immich");
        assert_eq!(
            serde_json::to_value(&t).unwrap(),
            "postgresql://immich@[::1]:5433/immich"
        );
    }

    #[test]
    fn a_password_in_the_url_is_refused_and_not_repeated() {
        for url in [
            "postgresql://immich:s3cretPw@127.0.0.1:5432/immich",
            "postgresql://immich:s3cretPw@127.0.0.1/immich",
            "postgresql://immich:@127.0.0.1/immich",
            "postgresql://immich:s3cretPw/x@127.0.0.1/immich",
            "postgresql://immich@127.0.0.1/immich?password=s3cretPw",
            "postgresql://immich@127.0.0.1/immich?sslmode=disable&password=s3cretPw",
        ] {
            let err = Target::parse(url).unwrap_err();
            assert_eq!(err.kind, ErrorKind::BadInput, "{url}");
            let shown = format!("{err}{}", serde_json::to_string(&err).unwrap());
            assert!(!shown.contains("s3cretPw"), "{url}: {shown}");
            assert!(err.what.contains("holds a password"), "{url}: {err}");
            assert!(err.help.as_deref().unwrap().contains("--password-stdin"));
        }
    }

    #[test]
    fn malformed_urls_say_what_is_wrong() {
        for (url, what) in [
            ("immich@127.0.0.1/immich", "not a postgresql:// URL"),
            ("mysql://immich@127.0.0.1/immich", "not a postgresql:// URL"),
            ("postgresql://127.0.0.1:5432/immich", "names no user"),
            ("postgresql://immich@127.0.0.1:0/immich", "port \"0\""),
            (
                "postgresql://immich@127.0.0.1:99999/immich",
                "port \"99999\"",
            ),
            ("postgresql://immich@127.0.0.1:/immich", "port \"\""),
            ("postgresql://immich@/immich", "not a host"),
            ("postgresql://immich@127.0.0.1:5432", "database \"\""),
            (
                "postgresql://immich@127.0.0.1/im mich",
                "database \"im mich\"",
            ),
            (
                "postgresql://immich@127.0.0.1/immich?sslmode=require",
                "parameters",
            ),
            ("postgresql://immich@[::1/immich", "lacks its `]`"),
            (
                "postgresql://immich@[10.0.0.1]/immich",
                "not an IPv6 address",
            ),
        ] {
            let err = Target::parse(url).unwrap_err();
            assert_eq!(err.kind, ErrorKind::BadInput, "{url}");
            assert!(err.what.contains(what), "{url}: {err}");
            assert_eq!(err.location.as_deref(), Some("--target"));
        }
    }

    #[test]
    fn a_password_is_read_without_its_newline() {
        let p = password_from(&b"pass:word\\\n"[..], "t").unwrap();
        assert_eq!(p.expose(), b"pass:word\\");
        let p = password_from(&b"crlf\r\n"[..], "t").unwrap();
        assert_eq!(p.expose(), b"crlf");
        let p = password_from(&b" spaced "[..], "t").unwrap();
        assert_eq!(p.expose(), b" spaced ");
        for bad in [&b""[..], b"\n", b"two\nlines\n", b"nul\0byte"] {
            let err = password_from(bad, "t").unwrap_err();
            assert_eq!(err.kind, ErrorKind::BadInput, "{bad:?}");
        }
        let long = vec![b'a'; 5000];
        assert!(
            password_from(&long[..], "t")
                .unwrap_err()
                .what
                .contains("more than")
        );
    }

    #[test]
    fn the_password_file_line_escapes_what_libpq_reads_as_separators() {
        let line = passfile_line(&SecretValue::new("a:b\\c"));
        assert_eq!(&line[..], b"*:*:*:*:a\\:b\\\\c\n");
    }

    #[test]
    fn the_password_is_not_in_the_command() {
        // The arguments of the load, as they are built: only the target.
        let script = LOAD_SCRIPT;
        assert!(script.contains("PGPASSFILE=/dev/shm/.pgpass"));
        assert!(!script.contains("PGPASSWORD"));
        let command = podman_run("img", "host", "sh", &["-c", script]);
        let shown = format!("{:?}", command.as_std());
        assert!(
            shown.contains("--rm") && shown.contains("--pull=never"),
            "{shown}"
        );
    }

    #[test]
    fn versions_are_read_by_their_major() {
        assert_eq!(major("17.6 (Debian 17.6-1.pgdg120+1)"), Some(17));
        assert_eq!(major("14.19"), Some(14));
        assert_eq!(
            major("pg_restore (PostgreSQL) 17.12 (Debian 17.12-0+deb13u1)"),
            Some(17)
        );
        assert_eq!(major("unknown"), None);
    }

    #[test]
    fn pg_restore_output_is_read() {
        let verbose = "pg_restore: connecting to database for restore\n\
             pg_restore: creating EXTENSION \"vector\"\n\
             pg_restore: creating TABLE \"public.assets\"\n\
             pg_restore: creating TABLE \"public.albums\"\n\
             pg_restore: processing data for table \"public.assets\"\n\
             pg_restore: creating CONSTRAINT \"public.assets assets_pkey\"\n";
        assert_eq!(created_tables(verbose), 2);

        let manifest: Manifest = serde_json::from_value(serde_json::json!({
            "format": 1, "file": "x.dump", "created": "t", "created_unix_ms": 0,
            "database": "immich", "user": "immich", "container": "c",
            "postgres_version": "17.2", "size": 0, "sha256": "", "dump_format": "custom",
            "tool": "t"
        }))
        .unwrap();
        let failed = format!(
            "{verbose}pg_restore: while PROCESSING TOC:\n\
             pg_restore: from TOC entry 3663; 0 0 COMMENT EXTENSION vector\n\
             pg_restore: error: could not execute query: ERROR:  must be owner of extension vector\n\
             Command was: COMMENT ON EXTENSION vector IS 'x';\n"
        );
        let err = load_error(Some(1), &failed, &manifest);
        assert_eq!(err.kind, ErrorKind::Failed);
        assert!(
            err.what.contains("must be owner of extension vector"),
            "{err}"
        );
        assert!(err.what.contains("rolled back"), "{err}");
        assert!(!err.what.contains("creating TABLE"), "{err}");

        let old = "pg_restore: error: unsupported version (1.16) in file header\n";
        let err = load_error(Some(1), old, &manifest);
        assert_eq!(err.kind, ErrorKind::Precondition);
        assert!(err.what.contains("PostgreSQL 17.2"), "{err}");
        assert_eq!(err.location.as_deref(), Some("[postgres] image"));
    }

    #[test]
    fn a_missing_image_is_a_precondition() {
        let err = container_error(
            "localhost/none:1",
            Some(125),
            "Error: localhost/none:1: image not known\n",
        )
        .unwrap();
        assert_eq!(err.kind, ErrorKind::Precondition);
        assert!(err.help.unwrap().contains("podman pull localhost/none:1"));
        assert!(container_error("i", Some(1), "pg_restore: error: x").is_none());
    }

    #[test]
    fn an_unreachable_target_is_a_precondition() {
        crate::backup::tests::block_on(async {
            // A port that was free a moment ago: nothing listens there.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let target =
                Target::parse(&format!("postgresql://immich@127.0.0.1:{port}/immich")).unwrap();
            let err = survey(&target, &SecretValue::new("p")).await.unwrap_err();
            assert_eq!(err.kind, ErrorKind::Precondition, "{err}");
            assert!(
                err.what.contains("cannot reach PostgreSQL at 127.0.0.1"),
                "{err}"
            );
            assert!(err.help.unwrap().contains("port-forward"));
        });
    }
}
