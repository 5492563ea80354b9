//! Logical backups of the Immich database: `pg_dump` in its custom format, run in
//! the PostgreSQL container and written to a file on the host atomically, with a
//! SHA-256 checksum and a manifest; the list of backups, the pruning of old ones,
//! and the checks a restore makes before it touches the database.
//!
//! A backup is three files in the backup directory:
//!
//! - `<database>-<UTC time>.dump`: the dump (`pg_dump --format=custom`);
//! - `<database>-<UTC time>.dump.sha256`: its checksum, as `sha256sum` writes it;
//! - `<database>-<UTC time>.json`: the manifest (time, database, PostgreSQL
//!   version, size, checksum).
//!
//! The manifest is written last: a backup without one is incomplete and is never
//! restored or counted.

use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::SystemTime;

use homelab_podman::ExecSpec;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::config::Deployment;
use crate::error::{Error, Result};
use crate::files::write_atomic;
use crate::layer::Layer;
use crate::progress::Event;

/// The first bytes of every custom-format archive `pg_dump` writes.
pub(crate) const DUMP_MAGIC: &[u8] = b"PGDMP";
/// The version of the manifest's layout.
pub(crate) const MANIFEST_FORMAT: u32 = 1;
const DUMP_SUFFIX: &str = ".dump";
const MANIFEST_SUFFIX: &str = ".json";
const CHECKSUM_SUFFIX: &str = ".sha256";
const PARTIAL_SUFFIX: &str = ".partial";
const LOCK_FILE: &str = ".immich-db-backup.lock";

/// What a backup is, as its manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Manifest {
    /// The version of the manifest's layout.
    pub format: u32,
    /// The dump's file name, in the manifest's directory.
    pub file: String,
    /// When the dump started, RFC 3339 in UTC.
    pub created: String,
    /// The same, as milliseconds since the epoch (for sorting).
    pub created_unix_ms: i64,
    /// The database dumped.
    pub database: String,
    /// The role it was dumped as.
    pub user: String,
    /// The container it was dumped from.
    pub container: String,
    /// The server's version.
    pub postgres_version: String,
    /// The dump's size in bytes.
    pub size: u64,
    /// The dump's SHA-256, in hexadecimal.
    pub sha256: String,
    /// `pg_dump`'s archive format.
    pub dump_format: String,
    /// The program that wrote it.
    pub tool: String,
}

/// A complete backup on disk.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Backup {
    /// What its manifest records.
    #[serde(flatten)]
    pub manifest: Manifest,
    /// The dump.
    pub dump: PathBuf,
    /// Its manifest.
    pub manifest_path: PathBuf,
}

impl Backup {
    fn checksum_path(&self) -> PathBuf {
        with_suffix(&self.dump, CHECKSUM_SUFFIX)
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Milliseconds since the epoch, and the time as RFC 3339 and as a file-name
/// stamp (`20251108T153000Z`).
fn now() -> (i64, String, String) {
    let time: chrono::DateTime<chrono::Utc> = SystemTime::now().into();
    (
        time.timestamp_millis(),
        time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        time.format("%Y%m%dT%H%M%SZ").to_string(),
    )
}

/// Whether `path` is NOCOW, `None` where the filesystem has no such attribute.
fn nocow(path: &Path) -> Option<bool> {
    homelab_btrfs::attributes(path)
        .ok()
        .map(homelab_btrfs::Attributes::is_nocow)
}

/// Checks a backup directory given on the command line: not in or around a
/// database directory, and not NOCOW.
pub(crate) fn check_output_dir(d: &Deployment, dir: &Path) -> Result<PathBuf> {
    let absolute = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::bad_input(format!("cannot resolve {}: {e}", dir.display())))?
            .join(dir)
    };
    let resolved = std::fs::canonicalize(&absolute).unwrap_or(absolute);
    for (key, database_dir) in [
        ("postgres_dir", &d.dirs.postgres),
        ("valkey_dir", &d.dirs.valkey),
    ] {
        let database_dir = std::fs::canonicalize(database_dir).unwrap_or(database_dir.clone());
        if crate::config::backup::overlaps(&resolved, &database_dir) {
            return Err(Error::bad_input(format!(
                "{} overlaps the NOCOW database directory {} ([storage] {key})",
                resolved.display(),
                database_dir.display()
            ))
            .at("--output")
            .help("write backups to copy-on-write storage outside the database directories; nothing was changed"));
        }
    }
    Ok(resolved)
}

/// Makes sure the backup directory exists, copy-on-write and private to its
/// owner; refuses one that is NOCOW.
pub(crate) fn prepare_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        if !dir.is_dir() {
            return Err(
                Error::bad_input(format!("{} is not a directory", dir.display()))
                    .help("choose a directory for the backups with --output or `[backup] dir`"),
            );
        }
        if nocow(dir) == Some(true) {
            return Err(Error::bad_input(format!(
                "{} is NOCOW: files there have no BTRFS checksums, and snapshots do not protect them",
                dir.display()
            ))
            .help(format!(
                "use a copy-on-write directory for backups, or turn copy-on-write back on for new files with `chattr -C {}`",
                dir.display()
            )));
        }
        return Ok(());
    }
    let spec = homelab_btrfs::DirSpec::new(dir)
        .mode(0o700)
        .nocow(homelab_btrfs::Nocow::Off);
    homelab_btrfs::ensure_dir(&spec).map_err(|e| {
        Error::precondition(format!("cannot create the backup directory: {e}"))
            .at(dir.display().to_string())
    })?;
    Ok(())
}

/// An exclusive lock on a backup directory: one backup (and its pruning) at a
/// time.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

pub(crate) fn lock_dir(dir: &Path) -> Result<DirLock> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| {
            Error::precondition(format!("cannot open {}: {e}", path.display()))
                .help("check that the backup directory is writable")
        })?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
        |e| {
            if e == rustix::io::Errno::WOULDBLOCK {
                Error::precondition(format!(
                    "another backup is being written to {}",
                    dir.display()
                ))
                .help("wait for it to finish, then run the command again")
            } else {
                Error::precondition(format!("cannot lock {}: {e}", path.display()))
            }
        },
    )?;
    Ok(DirLock { _file: file })
}

/// Removes the temporary files of backups that were interrupted (the caller
/// holds the directory's lock, so no backup is writing them).
fn remove_partials(dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return removed;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.')
            && name.ends_with(PARTIAL_SUFFIX)
            && entry.file_type().is_ok_and(|t| t.is_file())
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed.push(entry.path());
        }
    }
    removed
}

/// The complete backups of this deployment in `dir`, oldest first. Files of
/// other deployments and incomplete backups are left out.
pub(crate) fn list(d: &Deployment, dir: &Path) -> Vec<Backup> {
    let pg = &d.config.postgres;
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || !name.ends_with(MANIFEST_SUFFIX) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(manifest) = serde_json::from_str::<Manifest>(&text) else {
            continue;
        };
        if manifest.container != pg.container_name
            || manifest.database != pg.database
            || manifest.file.contains('/')
        {
            continue;
        }
        let dump = dir.join(&manifest.file);
        if !dump.is_file() {
            continue;
        }
        found.push(Backup {
            manifest,
            dump,
            manifest_path: path,
        });
    }
    found.sort_by(|a, b| {
        (a.manifest.created_unix_ms, &a.manifest.file)
            .cmp(&(b.manifest.created_unix_ms, &b.manifest.file))
    });
    found
}

/// Deletes the oldest backups beyond the newest `keep`; returns the dumps
/// deleted.
pub(crate) fn prune(d: &Deployment, dir: &Path, keep: usize) -> Result<Vec<PathBuf>> {
    let backups = list(d, dir);
    let excess = backups.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for backup in backups.into_iter().take(excess) {
        // The manifest goes first: without it the rest is an incomplete backup,
        // never mistaken for a good one.
        for path in [
            backup.manifest_path.clone(),
            backup.checksum_path(),
            backup.dump.clone(),
        ] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::failed(format!(
                        "cannot delete the old backup file {}: {e}",
                        path.display()
                    )));
                }
            }
        }
        removed.push(backup.dump);
    }
    Ok(removed)
}

/// The SHA-256, size and first bytes of what passes through.
#[derive(Default)]
struct Digest {
    hasher: Sha256,
    size: u64,
    head: Vec<u8>,
}

impl Digest {
    fn update(&mut self, bytes: &[u8]) {
        if self.head.len() < DUMP_MAGIC.len() {
            let take = (DUMP_MAGIC.len() - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
        }
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
    }
}

/// A writer (the dump file) that digests what it writes.
struct DigestWriter<W> {
    inner: W,
    digest: Digest,
}

impl<W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for DigestWriter<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            this.digest.update(&buf[..n]);
        }
        poll
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A reader (a dump being restored) that digests what it reads.
struct DigestReader<R> {
    inner: R,
    digest: Digest,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for DigestReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            this.digest.update(&buf.filled()[before..]);
        }
        poll
    }
}

/// Fails unless `container` exists and runs; `needed_for` says why it must.
pub(crate) async fn require_running(ctx: &Layer, container: &str, needed_for: &str) -> Result<()> {
    let info = ctx
        .runtime
        .inspect_container(container)
        .await
        .map_err(|e| {
            if e.is_not_found() {
                Error::precondition(format!(
                    "the container {container} does not exist: {needed_for}"
                ))
                .help("deploy first with `immich-db deploy`, then run this command again")
            } else {
                ctx.podman_failure(&format!("inspecting {container}"), &e)
            }
        })?;
    if !info.state.running {
        return Err(Error::precondition(format!(
            "the container {container} is {}, not running: {needed_for}",
            info.state.status
        ))
        .help(format!(
            "start it with `immich-db deploy` (or by starting {container}.service), then run this command again"
        )));
    }
    Ok(())
}

/// Fails unless the PostgreSQL container is running.
pub(crate) async fn require_postgres(ctx: &Layer) -> Result<()> {
    require_running(
        ctx,
        &ctx.deployment.config.postgres.container_name,
        "backups and restores run in the PostgreSQL container",
    )
    .await
}

/// Runs `sql` with `psql` inside the PostgreSQL container, as the deployment's
/// role over the container's local socket, and returns its output (unaligned,
/// without headers, trimmed). The statements go on psql's standard input, so
/// none of them is in any process's arguments. A failure says what was being
/// `doing`, and psql's message.
pub(crate) async fn psql(ctx: &Layer, doing: &str, sql: &str) -> Result<String> {
    let pg = &ctx.deployment.config.postgres;
    let spec = ExecSpec::new([
        "psql",
        "-X",
        "-w",
        "-q",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-U",
        pg.user.as_str(),
        "-d",
        pg.database.as_str(),
    ])
    .stdin(format!("{sql}\n").into_bytes());
    let out = ctx
        .runtime
        .exec(&pg.container_name, &spec)
        .await
        .map_err(|e| ctx.podman_failure(doing, &e))?;
    if !out.success() {
        return Err(Error::failed(format!(
            "psql in {} failed while {doing} (exit {}): {}",
            pg.container_name,
            out.exit_code,
            out.stderr_text().trim()
        )));
    }
    Ok(out.stdout_text().trim().to_owned())
}

/// Writes a new backup into `dir` and returns it. The dump goes to a temporary
/// file that is synced and renamed; its checksum and manifest follow.
pub(crate) async fn create(ctx: &Layer, dir: &Path) -> Result<Backup> {
    let d = &ctx.deployment;
    let pg = &d.config.postgres;
    require_postgres(ctx).await?;
    let version = psql(ctx, "reading the server's version", "SHOW server_version;").await?;
    let (created_unix_ms, created, stamp) = now();
    let mut base = format!("{}-{stamp}", pg.database);
    let mut n = 1;
    while dir.join(format!("{base}{DUMP_SUFFIX}")).exists()
        || dir.join(format!("{base}{MANIFEST_SUFFIX}")).exists()
    {
        base = format!("{}-{stamp}-{n}", pg.database);
        n += 1;
    }
    let file_name = format!("{base}{DUMP_SUFFIX}");
    let final_path = dir.join(&file_name);
    let partial = dir.join(format!(".{file_name}{PARTIAL_SUFFIX}"));
    let io = |what: &str, path: &Path, e: std::io::Error| {
        Error::failed(format!("cannot {what} {}: {e}", path.display()))
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| io("create", &partial, e))?;
    let mut sink = DigestWriter {
        inner: tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(file)),
        digest: Digest::default(),
    };
    let result = match dump_into(ctx, &mut sink).await {
        Ok(()) if sink.digest.head != DUMP_MAGIC => Err(Error::failed(
            "pg_dump wrote something that is not a custom-format archive",
        )),
        Ok(()) => match sink.inner.get_ref().sync_all().await {
            Ok(()) => std::fs::rename(&partial, &final_path).map_err(|e| io("rename", &partial, e)),
            Err(e) => Err(io("sync", &partial, e)),
        },
        Err(failure) => Err(failure),
    };
    if let Err(failure) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(failure);
    }
    let digest = sink.digest;
    let sha256 = hex(&digest.hasher.finalize());
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        file: file_name.clone(),
        created,
        created_unix_ms,
        database: pg.database.clone(),
        user: pg.user.clone(),
        container: pg.container_name.clone(),
        postgres_version: version,
        size: digest.size,
        sha256: sha256.clone(),
        dump_format: "custom".into(),
        tool: format!("immich-db {}", env!("CARGO_PKG_VERSION")),
    };
    let checksum_path = with_suffix(&final_path, CHECKSUM_SUFFIX);
    write_atomic(
        &checksum_path,
        format!("{sha256}  {file_name}\n").as_bytes(),
    )
    .map_err(|e| io("write", &checksum_path, e))?;
    let manifest_path = dir.join(format!("{base}{MANIFEST_SUFFIX}"));
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| Error::failed(format!("cannot render the manifest: {e}")))?;
    write_atomic(&manifest_path, format!("{text}\n").as_bytes())
        .map_err(|e| io("write", &manifest_path, e))?;
    Ok(Backup {
        manifest,
        dump: final_path,
        manifest_path,
    })
}

/// `pg_dump` of the database in custom format, streamed into `sink` as it
/// comes: the dump never has to fit in memory.
async fn dump_into<W>(ctx: &Layer, sink: &mut DigestWriter<W>) -> Result<()>
where
    W: tokio::io::AsyncWrite + Unpin + Send,
{
    let pg = &ctx.deployment.config.postgres;
    let spec = ExecSpec::new([
        "pg_dump",
        "-w",
        "--format=custom",
        "-U",
        pg.user.as_str(),
        "-d",
        pg.database.as_str(),
    ]);
    let out = ctx
        .runtime
        .exec_streaming(&pg.container_name, &spec, None, sink)
        .await
        .map_err(|e| match e {
            homelab_podman::Error::ExecStream { source, .. } => {
                Error::failed(format!("cannot write the dump: {source}"))
                    .help("check the free space of the backup directory's filesystem")
            }
            other => ctx.podman_failure("running pg_dump", &other),
        })?;
    if !out.success() {
        return Err(Error::failed(format!(
            "pg_dump in {} failed (exit {}): {}",
            pg.container_name,
            out.exit_code,
            out.stderr_text().trim()
        )));
    }
    tokio::io::AsyncWriteExt::flush(sink)
        .await
        .map_err(|e| Error::failed(format!("cannot write the dump: {e}")))
}

/// Runs a backup the way the command and the scheduled service do: prepare and
/// lock the directory, clear interrupted attempts, dump, prune.
pub(crate) async fn run(ctx: &Layer, dir: &Path, keep: usize) -> Result<(Backup, Vec<PathBuf>)> {
    prepare_dir(dir)?;
    let _lock = lock_dir(dir)?;
    for path in remove_partials(dir) {
        ctx.tell(Event::Done(&format!(
            "removed {} (left by an interrupted backup)",
            path.display()
        )));
    }
    let backup = create(ctx, dir).await?;
    let removed = prune(&ctx.deployment, dir, keep)?;
    Ok((backup, removed))
}

/// Where the manifest of a backup file is: `X.json` beside `X.dump`, or the
/// file itself when it is a manifest.
pub(crate) fn manifest_for(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.ends_with(MANIFEST_SUFFIX) {
        return path.to_path_buf();
    }
    let base = name.strip_suffix(DUMP_SUFFIX).unwrap_or(&name);
    path.with_file_name(format!("{base}{MANIFEST_SUFFIX}"))
}

/// A backup file that passed its checks: the manifest and the dump's path.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) manifest: Manifest,
    pub(crate) dump: PathBuf,
}

/// Checks a backup before a restore: its manifest, its size, its checksum and
/// that it is a custom-format archive. Reads the file; changes nothing.
pub(crate) fn check(path: &Path) -> Result<Checked> {
    let manifest_path = manifest_for(path);
    let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
        Error::bad_input(format!(
            "cannot read the manifest {} of the backup: {e}",
            manifest_path.display()
        ))
        .at(path.display().to_string())
        .help("restore a backup made by `immich-db backup` (its manifest holds the checksum); `immich-db backup --list` shows them")
    })?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
        Error::bad_input(format!("the manifest is not valid: {e}"))
            .at(manifest_path.display().to_string())
            .help("restore another backup; `immich-db backup --list` shows them")
    })?;
    if manifest.file.contains('/') || manifest.file.starts_with('.') {
        return Err(Error::bad_input(format!(
            "the manifest names the dump {:?}, which is not a file beside it",
            manifest.file
        ))
        .at(manifest_path.display().to_string()));
    }
    let dump = manifest_path.with_file_name(&manifest.file);
    let corrupt = |what: String| {
        Error::bad_input(format!("the backup {} is corrupt: {what}", dump.display()))
            .at(dump.display().to_string())
            .help("nothing was changed; restore another backup (`immich-db backup --list`)")
    };
    let mut file = File::open(&dump).map_err(|e| {
        Error::bad_input(format!("cannot read the dump {}: {e}", dump.display()))
            .at(manifest_path.display().to_string())
    })?;
    let mut digest = Digest::default();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(|e| {
            Error::bad_input(format!("cannot read the dump {}: {e}", dump.display()))
        })?;
        if n == 0 {
            break;
        }
        digest.update(&buffer[..n]);
    }
    if digest.size != manifest.size {
        return Err(corrupt(format!(
            "it has {} bytes, the manifest records {}",
            digest.size, manifest.size
        )));
    }
    let sha256 = hex(&digest.hasher.finalize());
    if sha256 != manifest.sha256 {
        return Err(corrupt(format!(
            "its SHA-256 is {sha256}, the manifest records {}",
            manifest.sha256
        )));
    }
    if digest.head != DUMP_MAGIC {
        return Err(corrupt("it is not a pg_dump custom-format archive".into()));
    }
    Ok(Checked { manifest, dump })
}

/// The user relations (tables, views, sequences, ...) in the database.
pub(crate) async fn user_relations(ctx: &Layer) -> Result<u64> {
    let count = psql(
        ctx,
        "counting the database's relations",
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
         AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
         AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f');",
    )
    .await?;
    count.parse().map_err(|_| {
        Error::failed(format!(
            "psql answered {count:?} when asked to count relations"
        ))
    })
}

/// Restores a checked dump into the running database with `pg_restore`, in one
/// transaction: it applies entirely or not at all. With `clean`, the objects in
/// the dump are dropped first.
pub(crate) async fn restore(ctx: &Layer, checked: &Checked, clean: bool) -> Result<()> {
    let pg = &ctx.deployment.config.postgres;
    let file = tokio::fs::File::open(&checked.dump)
        .await
        .map_err(|e| Error::bad_input(format!("cannot read {}: {e}", checked.dump.display())))?;
    let mut command = vec![
        "pg_restore",
        "-w",
        "--single-transaction",
        "--exit-on-error",
        "-U",
        pg.user.as_str(),
        "-d",
        pg.database.as_str(),
    ];
    if clean {
        command.extend(["--clean", "--if-exists"]);
    }
    let spec = ExecSpec::new(command);
    let mut input = DigestReader {
        inner: tokio::io::BufReader::with_capacity(1 << 20, file),
        digest: Digest::default(),
    };
    let mut output = Vec::new();
    let out = ctx
        .runtime
        .exec_streaming(&pg.container_name, &spec, Some(&mut input), &mut output)
        .await
        .map_err(|e| ctx.podman_failure("running pg_restore", &e))?;
    if !out.success() {
        return Err(Error::failed(format!(
            "pg_restore failed (exit {}); its single transaction was rolled back, so the database is as it was: {}",
            out.exit_code,
            out.stderr_text().trim()
        ))
        .help("read pg_restore's message above; `--force` drops and recreates the objects the backup holds"));
    }
    // The file was checked before; say so if it changed while it was read.
    if hex(&input.digest.hasher.finalize()) != checked.manifest.sha256 {
        return Err(Error::failed(format!(
            "{} changed while it was being restored: the database holds what was read, which is not the backup that was checked",
            checked.dump.display()
        ))
        .help("restore a backup nothing writes to, with --force"));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    //! Backups against fakes; the context on fakes and the running container
    //! serve the rotation's tests too.

    use std::sync::{Arc, Mutex};

    use homelab_podman::{ContainerInfo, ContainerState, ContainerStatus, ExecOutput, FakeRuntime};

    use super::*;
    use crate::config::{Loaded, validate};
    use homelab_systemd::{FakeManager, Manager};

    /// A container that runs.
    pub(crate) fn running(name: &str) -> ContainerInfo {
        let mut state = ContainerState::new(ContainerStatus::Running);
        state.pid = Some(1);
        ContainerInfo::new(format!("{name}-id"), name, "image", state)
    }

    /// The default deployment, on `runtime` (also its secret store) and
    /// `systemd`.
    pub(crate) fn context_on(runtime: &FakeRuntime, systemd: Arc<dyn Manager>) -> Layer {
        Layer::new(
            deployment(),
            systemd,
            Arc::new(runtime.clone()),
            Arc::new(runtime.clone()),
        )
    }

    pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    fn deployment() -> Deployment {
        validate(&Loaded::defaults()).unwrap()
    }

    fn manifest(d: &Deployment, file: &str, ms: i64, body: &[u8]) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT,
            file: file.into(),
            created: "2025-11-08T12:00:00.000Z".into(),
            created_unix_ms: ms,
            database: d.config.postgres.database.clone(),
            user: d.config.postgres.user.clone(),
            container: d.config.postgres.container_name.clone(),
            postgres_version: "17.0".into(),
            size: body.len() as u64,
            sha256: hex(&Sha256::digest(body)),
            dump_format: "custom".into(),
            tool: "test".into(),
        }
    }

    fn write_backup(dir: &Path, m: &Manifest, body: &[u8]) {
        std::fs::write(dir.join(&m.file), body).unwrap();
        let base = m.file.strip_suffix(".dump").unwrap();
        std::fs::write(
            dir.join(format!("{base}.json")),
            serde_json::to_string(m).unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn lists_only_complete_backups_of_this_deployment_oldest_first() {
        let d = deployment();
        let dir = tempfile::tempdir().unwrap();
        let body = b"PGDMP-body";
        write_backup(dir.path(), &manifest(&d, "immich-2.dump", 2, body), body);
        write_backup(dir.path(), &manifest(&d, "immich-1.dump", 1, body), body);
        let mut other = manifest(&d, "other-1.dump", 0, body);
        other.container = "someone-else".into();
        write_backup(dir.path(), &other, body);
        // A manifest whose dump is missing, and a dump without a manifest.
        let lost = manifest(&d, "immich-3.dump", 3, body);
        std::fs::write(
            dir.path().join("immich-3.json"),
            serde_json::to_string(&lost).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.path().join("immich-4.dump"), body).unwrap();
        std::fs::write(dir.path().join("notes.json"), "{").unwrap();
        let files: Vec<String> = list(&d, dir.path())
            .into_iter()
            .map(|b| b.manifest.file)
            .collect();
        assert_eq!(files, ["immich-1.dump", "immich-2.dump"]);
    }

    #[test]
    fn prune_keeps_the_newest_and_touches_nothing_else() {
        let d = deployment();
        let dir = tempfile::tempdir().unwrap();
        let body = b"PGDMP";
        for i in 1..=4 {
            let m = manifest(&d, &format!("immich-{i}.dump"), i, body);
            write_backup(dir.path(), &m, body);
            std::fs::write(dir.path().join(format!("immich-{i}.dump.sha256")), "x").unwrap();
        }
        std::fs::write(dir.path().join("unrelated.dump"), "keep me").unwrap();
        let removed = prune(&d, dir.path(), 2).unwrap();
        assert_eq!(
            removed,
            [
                dir.path().join("immich-1.dump"),
                dir.path().join("immich-2.dump")
            ]
        );
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "immich-3.dump",
                "immich-3.dump.sha256",
                "immich-3.json",
                "immich-4.dump",
                "immich-4.dump.sha256",
                "immich-4.json",
                "unrelated.dump"
            ]
        );
    }

    #[test]
    fn check_accepts_a_good_backup_and_refuses_a_corrupt_one() {
        let d = deployment();
        let dir = tempfile::tempdir().unwrap();
        let body = b"PGDMP\x01\x0e\x00 some archive";
        let m = manifest(&d, "immich-1.dump", 1, body);
        write_backup(dir.path(), &m, body);
        let dump = dir.path().join("immich-1.dump");
        let checked = check(&dump).unwrap();
        assert_eq!(checked.manifest, m);
        // By the manifest's name too.
        check(&dir.path().join("immich-1.json")).unwrap();

        // One byte changed: same size, another checksum.
        let mut bad = body.to_vec();
        bad[10] ^= 1;
        std::fs::write(&dump, &bad).unwrap();
        let err = check(&dump).unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::BadInput);
        assert!(
            err.what.contains("corrupt") && err.what.contains("SHA-256"),
            "{err}"
        );
        assert!(err.help.as_deref().unwrap().contains("nothing was changed"));

        // Truncated.
        std::fs::write(&dump, &body[..5]).unwrap();
        let err = check(&dump).unwrap_err();
        assert!(err.what.contains("bytes"), "{err}");

        // No manifest.
        std::fs::remove_file(dir.path().join("immich-1.json")).unwrap();
        let err = check(&dump).unwrap_err();
        assert!(err.what.contains("manifest"), "{err}");
    }

    #[test]
    fn partial_files_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".immich-1.dump.partial"), "x").unwrap();
        std::fs::write(dir.path().join("immich-1.dump"), "x").unwrap();
        let removed = remove_partials(dir.path());
        assert_eq!(removed, [dir.path().join(".immich-1.dump.partial")]);
        assert!(dir.path().join("immich-1.dump").exists());
    }

    #[test]
    fn an_output_directory_inside_a_database_directory_is_refused() {
        let d = deployment();
        let err = check_output_dir(&d, &d.dirs.postgres.join("dumps")).unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::BadInput);
        assert!(err.what.contains("NOCOW"), "{err}");
        check_output_dir(&d, Path::new("/var/backups/immich")).unwrap();
    }

    /// A context on the fakes, with a PostgreSQL container whose `pg_dump`
    /// writes `archive` (or fails) and whose `pg_restore` records its input.
    fn fake_context(archive: &'static [u8], dump_fails: bool) -> (Layer, Arc<Mutex<Vec<u8>>>) {
        let d = deployment();
        let runtime = FakeRuntime::new();
        runtime.add_container(running(&d.config.postgres.container_name));
        let restored = Arc::new(Mutex::new(Vec::new()));
        let seen = restored.clone();
        runtime.script_exec(&d.config.postgres.container_name, move |spec| {
            let stdin = String::from_utf8_lossy(spec.stdin_bytes().unwrap_or_default());
            let ok = |stdout: &[u8]| ExecOutput::new(0, stdout.to_vec(), Vec::new());
            match spec.command()[0].as_str() {
                "psql" if stdin.contains("server_version") => ok(b"17.2\n"),
                "psql" => ok(b"0\n"),
                "pg_dump" if dump_fails => ExecOutput::new(
                    1,
                    b"PGDMP half".to_vec(),
                    b"pg_dump: error: connection lost\n".to_vec(),
                ),
                "pg_dump" => ok(archive),
                "pg_restore" => {
                    *seen.lock().unwrap() = spec.stdin_bytes().unwrap_or_default().to_vec();
                    ok(b"")
                }
                _ => ExecOutput::new(127, Vec::new(), Vec::new()),
            }
        });
        let ctx = context_on(&runtime, Arc::new(FakeManager::new()));
        (ctx, restored)
    }

    #[test]
    fn a_backup_is_written_checked_and_restored_byte_for_byte() {
        let archive: &'static [u8] = b"PGDMP\x01\x0f\x00 a custom-format archive";
        let (ctx, restored) = fake_context(archive, false);
        let dir = tempfile::tempdir().unwrap();
        let (made, removed) = block_on(run(&ctx, dir.path(), 3)).unwrap();
        assert!(removed.is_empty());
        assert_eq!(std::fs::read(&made.dump).unwrap(), archive);
        assert_eq!(made.manifest.size, archive.len() as u64);
        assert_eq!(made.manifest.postgres_version, "17.2");
        assert_eq!(made.manifest.sha256, hex(&Sha256::digest(archive)));
        let sums = std::fs::read_to_string(with_suffix(&made.dump, CHECKSUM_SUFFIX)).unwrap();
        assert_eq!(
            sums,
            format!(
                "{}  {}\n",
                made.manifest.sha256,
                made.dump.file_name().unwrap().to_string_lossy()
            )
        );
        let checked = check(&made.dump).unwrap();
        block_on(restore(&ctx, &checked, false)).unwrap();
        assert_eq!(*restored.lock().unwrap(), archive);
    }

    #[test]
    fn a_failed_dump_leaves_nothing_behind() {
        let (ctx, _) = fake_context(b"", true);
        let dir = tempfile::tempdir().unwrap();
        let err = block_on(run(&ctx, dir.path(), 3)).unwrap_err();
        assert!(err.what.contains("connection lost"), "{err}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with(".immich-db-backup.lock"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn something_that_is_not_an_archive_is_not_kept() {
        let (ctx, _) = fake_context(b"pg_dump: warning: not an archive", false);
        let dir = tempfile::tempdir().unwrap();
        let err = block_on(run(&ctx, dir.path(), 3)).unwrap_err();
        assert!(err.what.contains("not a custom-format archive"), "{err}");
        assert!(list(&ctx.deployment, dir.path()).is_empty());
    }
}
