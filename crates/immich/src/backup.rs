//! Logical backups of the Immich database: `pg_dump` in its custom format, run in
//! the PostgreSQL container, compressed with zstd and written to a file on the
//! host atomically, with a SHA-256 checksum and a manifest; the list of
//! backups, the pruning of old ones, the checks a restore makes before it
//! touches the database, and the restore.
//!
//! A backup is three files in the backup directory:
//!
//! - the dump: `<database>-<UTC time>.dump` (`pg_dump --format=custom
//!   --compress=zstd:1`, PostgreSQL 16 and later), or `<database>-<UTC
//!   time>.dump.zst` (`pg_dump --compress=0` streamed to the host and
//!   compressed there with zstd on every core: PostgreSQL 14 and 15, whose
//!   `pg_dump` has no zstd);
//! - `<dump>.sha256`: its checksum (of the file as stored), as `sha256sum`
//!   writes it;
//! - `<database>-<UTC time>.json`: the manifest (time, database, PostgreSQL
//!   version, size, checksum, compression, size uncompressed, and the
//!   database's and role's settings, which a custom-format dump leaves out).
//!
//! The manifest is written last: a backup without one is incomplete and is never
//! restored or counted. Backups of manifest format 1 (zlib inside the archive,
//! no settings recorded) restore as they did.
//!
//! A restore loads the dump into a new database and swaps it in once it is
//! complete (see `swap`): all or nothing, and with `pg_restore -j` reading the
//! file in place, where the PostgreSQL container mounts the backup directory.

use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::SystemTime;

use homelab_podman::ExecSpec;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt as _;

use crate::config::Deployment;
pub use crate::db_settings::Setting;
use crate::db_settings::{self, literal};
use crate::desired::BACKUP_MOUNT;
use crate::error::{Error, Result};
use crate::files::write_atomic;
use crate::layer::Layer;
pub(crate) use crate::pipe::hex;
use crate::pipe::{CHUNK, Decode, Encode, FileReader, FileWriter, Meter, Written};
use crate::progress::{Event, Progress};
use crate::swap::{self, Fresh};

/// The first bytes of every custom-format archive `pg_dump` writes.
pub(crate) const DUMP_MAGIC: &[u8] = b"PGDMP";
/// The first bytes of a zstd frame.
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
/// The version of the manifest's layout: 2 adds the compression, the size
/// uncompressed, the database's size and its settings.
pub(crate) const MANIFEST_FORMAT: u32 = 2;
/// zstd's level, in `pg_dump` and on the host: on Immich-like data level 3
/// made bigger files than level 1, and more slowly.
const ZSTD_LEVEL: i32 = 1;
/// PostgreSQL's first major whose `pg_dump` compresses with zstd.
const PG_DUMP_ZSTD_SINCE: u32 = 16;
const DUMP_SUFFIX: &str = ".dump";
const ZSTD_SUFFIX: &str = ".zst";
const MANIFEST_SUFFIX: &str = ".json";
const CHECKSUM_SUFFIX: &str = ".sha256";
const PARTIAL_SUFFIX: &str = ".partial";
const LOCK_FILE: &str = ".immich-db-backup.lock";
/// The prefix of a dump decompressed for a restore, beside the backups.
const RESTORING_PREFIX: &str = ".immich-db-restore-";

/// How a backup compresses its dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum BackupMethod {
    /// `pg_dump --compress=zstd:1` in the container: PostgreSQL 16 and later.
    PgDumpZstd,
    /// `pg_dump --compress=0`, compressed on the host with zstd (level 1) on
    /// every core as it streams: for PostgreSQL 14 and 15, whose `pg_dump`
    /// has no zstd.
    HostZstd,
}

impl BackupMethod {
    /// The method for a server of this major version.
    pub fn for_major(major: u32) -> Self {
        if major >= PG_DUMP_ZSTD_SINCE {
            Self::PgDumpZstd
        } else {
            Self::HostZstd
        }
    }
}

impl std::str::FromStr for BackupMethod {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "pg-dump-zstd" => Ok(Self::PgDumpZstd),
            "host-zstd" => Ok(Self::HostZstd),
            other => Err(
                Error::bad_input(format!("{other:?} is not a backup method"))
                    .help("use pg-dump-zstd or host-zstd"),
            ),
        }
    }
}

/// A compression algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Algorithm {
    /// zlib, as `pg_dump` compresses by default.
    Gzip,
    /// Zstandard.
    Zstd,
}

/// What compressed a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Compressor {
    /// `pg_dump`, each table's data inside the archive: the file is the
    /// archive `pg_restore` reads.
    #[serde(rename = "pg_dump")]
    PgDump,
    /// This tool, the whole archive as one zstd frame: the file is
    /// decompressed before `pg_restore` reads it.
    #[serde(rename = "immich-db")]
    ImmichDb,
}

/// How a dump is compressed, as its manifest records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Compression {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Its level; none for the algorithm's default.
    pub level: Option<i32>,
    /// What compressed it.
    pub by: Compressor,
}

impl Default for Compression {
    /// What backups before manifest format 2 are: `pg_dump`'s zlib at its
    /// default level.
    fn default() -> Self {
        Self {
            algorithm: Algorithm::Gzip,
            level: None,
            by: Compressor::PgDump,
        }
    }
}

impl Compression {
    fn of(method: BackupMethod) -> Self {
        Self {
            algorithm: Algorithm::Zstd,
            level: Some(ZSTD_LEVEL),
            by: match method {
                BackupMethod::PgDumpZstd => Compressor::PgDump,
                BackupMethod::HostZstd => Compressor::ImmichDb,
            },
        }
    }

    /// Whether the file must be decompressed before `pg_restore` reads it.
    fn whole_file(self) -> bool {
        self.by == Compressor::ImmichDb
    }
}

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
    /// The dump's size in bytes, as stored.
    pub size: u64,
    /// The dump's SHA-256 as stored, in hexadecimal.
    pub sha256: String,
    /// `pg_dump`'s archive format.
    pub dump_format: String,
    /// How the dump is compressed.
    #[serde(default)]
    pub compression: Compression,
    /// The size of the archive `pg_restore` reads: the file decompressed
    /// where this tool compressed it, else the file's own size. Not recorded
    /// before manifest format 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncompressed_size: Option<u64>,
    /// The database's size on the server when it was dumped
    /// (`pg_database_size`): what a restore grows back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_size: Option<u64>,
    /// The settings of the database, of roles in it, and of the role it was
    /// dumped as; not recorded before manifest format 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Vec<Setting>>,
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

/// Creates the backup directory when it is missing (copy-on-write, private to
/// its owner), for the PostgreSQL container to mount; returns whether it did.
/// One that exists is left as it is.
pub(crate) fn ensure_exists(dir: &Path) -> Result<bool> {
    if dir.exists() {
        return Ok(false);
    }
    prepare_dir(dir)?;
    Ok(true)
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
    psql_on(ctx, &ctx.deployment.config.postgres.database, doing, sql).await
}

/// [`psql`] connected to another database of the same server.
pub(crate) async fn psql_on(ctx: &Layer, database: &str, doing: &str, sql: &str) -> Result<String> {
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
        database,
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

/// The server's version, as text (`17.2 (Debian …)`) and as its major number.
pub(crate) async fn server_version(ctx: &Layer) -> Result<(String, u32)> {
    let out = psql(
        ctx,
        "reading the server's version",
        "SHOW server_version;\nSHOW server_version_num;",
    )
    .await?;
    let mut lines = out.lines();
    let text = lines.next().unwrap_or_default().trim().to_owned();
    let number: u32 = lines
        .next()
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| {
            Error::failed(format!(
                "psql answered {out:?} when asked for the server's version"
            ))
        })?;
    Ok((text, number / 10_000))
}

/// Parallel jobs for `pg_restore`: the host's cores, at most 8.
fn restore_jobs() -> u32 {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .clamp(1, 8)
        .try_into()
        .unwrap_or(1)
}

/// Worker threads for zstd on the host: every core.
fn zstd_workers() -> u32 {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .try_into()
        .unwrap_or(1)
}

/// Opens the partial file of a backup: new, private to its owner.
fn create_private(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::failed(format!("cannot create {}: {e}", path.display())))
}

/// Writes a new backup into `dir` and returns it: `method`, or the one for the
/// server's major version. The dump goes to a temporary file that is synced
/// and renamed; its checksum and manifest follow.
pub(crate) async fn create(
    ctx: &Layer,
    dir: &Path,
    method: Option<BackupMethod>,
) -> Result<Backup> {
    let d = &ctx.deployment;
    let pg = &d.config.postgres;
    require_postgres(ctx).await?;
    let (version, major) = server_version(ctx).await?;
    let settings = db_settings::read(ctx, &pg.database).await?;
    let database_size = swap::database_size(ctx, &pg.database, &pg.database).await?;
    let (created_unix_ms, created, stamp) = now();
    let mut base = format!("{}-{stamp}", pg.database);
    let mut n = 1;
    let taken = |base: &str| {
        [
            format!("{base}{DUMP_SUFFIX}"),
            format!("{base}{DUMP_SUFFIX}{ZSTD_SUFFIX}"),
            format!("{base}{MANIFEST_SUFFIX}"),
        ]
        .iter()
        .any(|name| dir.join(name).exists())
    };
    while taken(&base) {
        base = format!("{}-{stamp}-{n}", pg.database);
        n += 1;
    }
    let partial = dir.join(format!(".{base}{DUMP_SUFFIX}{PARTIAL_SUFFIX}"));
    let mut method = method.unwrap_or_else(|| BackupMethod::for_major(major));
    let mut written = dump_to(ctx, &partial, method).await;
    if method == BackupMethod::PgDumpZstd
        && let Err(e) = &written
        && (e.what.contains("does not support compression")
            || e.what.contains("not supported by this build"))
    {
        ctx.tell(Event::Warning(&format!(
            "this pg_dump has no zstd; compressing on the host instead ({})",
            e.what
        )));
        method = BackupMethod::HostZstd;
        let _ = std::fs::remove_file(&partial);
        written = dump_to(ctx, &partial, method).await;
    }
    let written = match written {
        Ok(written) => written,
        Err(failure) => {
            let _ = std::fs::remove_file(&partial);
            return Err(failure);
        }
    };
    let file_name = match method {
        BackupMethod::PgDumpZstd => format!("{base}{DUMP_SUFFIX}"),
        BackupMethod::HostZstd => format!("{base}{DUMP_SUFFIX}{ZSTD_SUFFIX}"),
    };
    let final_path = dir.join(&file_name);
    let io = |what: &str, path: &Path, e: std::io::Error| {
        Error::failed(format!("cannot {what} {}: {e}", path.display()))
    };
    if let Err(e) = std::fs::rename(&partial, &final_path) {
        let _ = std::fs::remove_file(&partial);
        return Err(io("rename", &partial, e));
    }
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        file: file_name.clone(),
        created,
        created_unix_ms,
        database: pg.database.clone(),
        user: pg.user.clone(),
        container: pg.container_name.clone(),
        postgres_version: version,
        size: written.size,
        sha256: written.sha256.clone(),
        dump_format: "custom".into(),
        compression: Compression::of(method),
        uncompressed_size: Some(written.input),
        database_size: Some(database_size),
        settings: Some(settings),
        tool: format!("immich-db {}", env!("CARGO_PKG_VERSION")),
    };
    let checksum_path = with_suffix(&final_path, CHECKSUM_SUFFIX);
    write_atomic(
        &checksum_path,
        format!("{}  {file_name}\n", written.sha256).as_bytes(),
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

/// `pg_dump` of the database in custom format into `path` (created new),
/// compressed as `method` says, streamed as it comes: the dump never has to fit
/// in memory. Progress is the bytes `pg_dump` wrote.
async fn dump_to(ctx: &Layer, path: &Path, method: BackupMethod) -> Result<Written> {
    let pg = &ctx.deployment.config.postgres;
    let (compress, encode) = match method {
        BackupMethod::PgDumpZstd => (format!("--compress=zstd:{ZSTD_LEVEL}"), Encode::Plain),
        BackupMethod::HostZstd => (
            "--compress=0".to_owned(),
            Encode::Zstd {
                level: ZSTD_LEVEL,
                workers: zstd_workers(),
            },
        ),
    };
    let spec = ExecSpec::new([
        "pg_dump",
        "-w",
        "--format=custom",
        compress.as_str(),
        "-U",
        pg.user.as_str(),
        "-d",
        pg.database.as_str(),
    ]);
    let file = create_private(path)?;
    let mut writer = FileWriter::start(file, encode)
        .map_err(|e| Error::failed(format!("cannot start writing the dump: {e}")))?;
    let (mut into, mut from) = tokio::io::duplex(CHUNK);
    let runtime = &ctx.runtime;
    let dumped = async move {
        let out = runtime
            .exec_streaming(&pg.container_name, &spec, None, &mut into)
            .await;
        drop(into);
        out
    };
    let mut meter = Meter::new(&*ctx.progress, "dump", None);
    let stored = async move {
        let mut done = 0u64;
        loop {
            let mut chunk = Vec::with_capacity(CHUNK);
            let mut end = false;
            while chunk.len() < CHUNK {
                if from.read_buf(&mut chunk).await? == 0 {
                    end = true;
                    break;
                }
            }
            if !chunk.is_empty() {
                done += chunk.len() as u64;
                meter.update(done);
                writer.write(chunk).await?;
            }
            if end {
                break;
            }
        }
        drop(from);
        meter.finish(done);
        writer.finish().await
    };
    let (out, stored) = tokio::join!(dumped, stored);
    let written = stored.map_err(|e| {
        Error::failed(format!("cannot write the dump: {e}"))
            .help("check the free space of the backup directory's filesystem")
    })?;
    let out = out.map_err(|e| match e {
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
    if !written.head.starts_with(DUMP_MAGIC) {
        return Err(Error::failed(
            "pg_dump wrote something that is not a custom-format archive",
        ));
    }
    Ok(written)
}

/// Runs a backup the way the command and the scheduled service do: prepare and
/// lock the directory, clear interrupted attempts, dump, prune.
pub(crate) async fn run(
    ctx: &Layer,
    dir: &Path,
    keep: usize,
    method: Option<BackupMethod>,
) -> Result<(Backup, Vec<PathBuf>)> {
    prepare_dir(dir)?;
    let _lock = lock_dir(dir)?;
    for path in remove_partials(dir) {
        ctx.tell(Event::Done(&format!(
            "removed {} (left by an interrupted backup)",
            path.display()
        )));
    }
    let backup = create(ctx, dir, method).await?;
    let removed = prune(&ctx.deployment, dir, keep)?;
    Ok((backup, removed))
}

/// Where the manifest of a backup file is: `X.json` beside `X.dump` or
/// `X.dump.zst`, or the file itself when it is a manifest.
pub(crate) fn manifest_for(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.ends_with(MANIFEST_SUFFIX) {
        return path.to_path_buf();
    }
    let name = name.strip_suffix(ZSTD_SUFFIX).unwrap_or(&name);
    let base = name.strip_suffix(DUMP_SUFFIX).unwrap_or(name);
    path.with_file_name(format!("{base}{MANIFEST_SUFFIX}"))
}

/// A backup file that passed its checks: the manifest and the dump's path.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) manifest: Manifest,
    pub(crate) dump: PathBuf,
}

impl Checked {
    /// How the file turns into the archive `pg_restore` reads.
    pub(crate) fn decode(&self) -> Decode {
        if self.manifest.compression.whole_file() {
            Decode::Zstd
        } else {
            Decode::Plain
        }
    }

    /// The archive `pg_restore` reads, from the file, on a thread of its own;
    /// progress is the bytes of the file read (`what`).
    pub(crate) fn open<'a>(
        &self,
        progress: &'a dyn Progress,
        what: &'static str,
    ) -> Result<FileReader<'a>> {
        let file = File::open(&self.dump)
            .map_err(|e| Error::bad_input(format!("cannot read {}: {e}", self.dump.display())))?;
        Ok(FileReader::start(file, self.decode(), None)
            .map_err(|e| Error::failed(format!("cannot start reading the dump: {e}")))?
            .metered(Meter::new(progress, what, Some(self.manifest.size))))
    }
}

/// Whether `path` has a manifest beside it (or is one): a backup made by this
/// tool, as opposed to another kind of dump.
pub(crate) fn has_manifest(path: &Path) -> bool {
    manifest_for(path).is_file()
}

/// Checks a backup before a restore: its manifest, its size, its checksum and
/// that it is a custom-format archive (compressed as its manifest says). Reads
/// the file; changes nothing.
pub(crate) fn check(path: &Path) -> Result<Checked> {
    let manifest_path = manifest_for(path);
    let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
        Error::bad_input(format!(
            "cannot read the manifest {} of the backup: {e}",
            manifest_path.display()
        ))
        .at(path.display().to_string())
        .help("restore a backup made by `immich-db backup` (its manifest holds the checksum), or one of Immich's own (`immich-db-backup-*.sql.gz`); `immich-db backup --list` shows this tool's")
    })?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
        Error::bad_input(format!("the manifest is not valid: {e}"))
            .at(manifest_path.display().to_string())
            .help("restore another backup; `immich-db backup --list` shows them")
    })?;
    if manifest.format > MANIFEST_FORMAT {
        return Err(Error::bad_input(format!(
            "the manifest is of format {}, made by a newer immich-db ({}); this one reads formats up to {MANIFEST_FORMAT}",
            manifest.format, manifest.tool
        ))
        .at(manifest_path.display().to_string())
        .help("restore it with the immich-db that made it, or a newer one"));
    }
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
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut head = Vec::new();
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buffer).map_err(|e| {
            Error::bad_input(format!("cannot read the dump {}: {e}", dump.display()))
        })?;
        if n == 0 {
            break;
        }
        if head.is_empty() {
            head = buffer[..n.min(64)].to_vec();
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    if size != manifest.size {
        return Err(corrupt(format!(
            "it has {size} bytes, the manifest records {}",
            manifest.size
        )));
    }
    let sha256 = hex(&hasher.finalize());
    if sha256 != manifest.sha256 {
        return Err(corrupt(format!(
            "its SHA-256 is {sha256}, the manifest records {}",
            manifest.sha256
        )));
    }
    if manifest.compression.whole_file() {
        if !head.starts_with(ZSTD_MAGIC) {
            return Err(corrupt(
                "it is not zstd-compressed, as its manifest says".into(),
            ));
        }
        let mut archive = [0u8; 5];
        let opened = zstd::stream::read::Decoder::new(File::open(&dump).map_err(|e| {
            Error::bad_input(format!("cannot read the dump {}: {e}", dump.display()))
        })?)
        .and_then(|mut decoder| decoder.read_exact(&mut archive));
        if opened.is_err() || archive != DUMP_MAGIC {
            return Err(corrupt(
                "it does not decompress into a pg_dump custom-format archive".into(),
            ));
        }
    } else if !head.starts_with(DUMP_MAGIC) {
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

/// Refuses a database that holds relations, unless they are to be replaced.
pub(crate) async fn require_empty(ctx: &Layer, replace: bool, file: &Path) -> Result<u64> {
    let pg = &ctx.deployment.config.postgres;
    let relations = user_relations(ctx).await?;
    if relations > 0 && !replace {
        return Err(Error::bad_input(format!(
            "the database {} is not empty ({relations} table(s), view(s) or sequence(s)): refusing to restore over it",
            pg.database
        ))
        .help(format!(
            "nothing was changed; to replace the database with the backup, run `immich-db restore --force {}` (take a backup first)",
            file.display()
        )));
    }
    Ok(relations)
}

/// How a restore loaded its backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Loaded {
    /// How `pg_restore` (or `psql`) read it, in a few words.
    pub how: String,
    /// The parallel jobs of `pg_restore`; 1 for a stream.
    pub jobs: u32,
    /// Database and role settings set after the load.
    pub settings: usize,
}

/// Restores a checked backup into the deployment's database: loaded into a new
/// database, which then replaces it (see [`Fresh`]), so the restore applies
/// entirely or not at all. Unless `replace`, a database that holds relations
/// is refused. The settings the backup recorded are set on the new database
/// (a backup that recorded none keeps those of the database it replaces).
pub(crate) async fn restore(ctx: &Layer, checked: &Checked, replace: bool) -> Result<Loaded> {
    let pg = &ctx.deployment.config.postgres;
    require_empty(ctx, replace, &checked.dump).await?;
    let settings = match &checked.manifest.settings {
        Some(settings) => settings.clone(),
        None => db_settings::read(ctx, &pg.database)
            .await?
            .into_iter()
            .filter(|s| s.in_database)
            .collect(),
    };
    let fresh = Fresh::create(ctx).await?;
    let loaded = match load_archive(ctx, checked, &fresh).await {
        Ok(loaded) => loaded,
        Err(e) => {
            fresh.abandon(ctx).await;
            return Err(e);
        }
    };
    let set = match apply_settings(ctx, &fresh, &settings, &checked.manifest.user).await {
        Ok(set) => set,
        Err(e) => {
            fresh.abandon(ctx).await;
            return Err(e);
        }
    };
    fresh.swap(ctx).await?;
    Ok(Loaded {
        settings: set,
        ..loaded
    })
}

/// Sets `settings` on the new database (and on the deployment's role, for
/// those of the role the backup was made as); returns how many.
pub(crate) async fn apply_settings(
    ctx: &Layer,
    fresh: &Fresh,
    settings: &[Setting],
    backup_role: &str,
) -> Result<usize> {
    if settings.is_empty() {
        return Ok(0);
    }
    let pg = &ctx.deployment.config.postgres;
    let roles = db_settings::roles(ctx, fresh.maintenance).await?;
    let (sql, skipped) =
        db_settings::statements(settings, &fresh.name, backup_role, &pg.user, &roles);
    for setting in skipped {
        ctx.tell(Event::Warning(&format!(
            "the backup's setting {}={} of the role {} is not restored: this server has no such role",
            setting.name,
            setting.value,
            setting.role.as_deref().unwrap_or("-")
        )));
    }
    if !sql.is_empty() {
        psql_on(
            ctx,
            fresh.maintenance,
            "setting the database's and the role's settings",
            &sql.join("\n"),
        )
        .await?;
    }
    Ok(sql.len())
}

/// Loads the archive into the new database: read in place by `pg_restore -j`
/// where the container sees the backup directory, else streamed into it.
async fn load_archive(ctx: &Layer, checked: &Checked, fresh: &Fresh) -> Result<Loaded> {
    let Some(place) = in_place(ctx, checked).await? else {
        return restore_stream(ctx, checked, fresh).await;
    };
    let before = std::fs::metadata(&place.host).ok();
    let jobs = restore_jobs();
    let restored = restore_file(
        ctx,
        &place.inside,
        fresh,
        jobs,
        checked.manifest.database_size,
    )
    .await;
    let after = std::fs::metadata(&place.host).ok();
    if place.decompressed {
        let _ = std::fs::remove_file(&place.host);
    }
    restored?;
    let same = |a: &std::fs::Metadata, b: &std::fs::Metadata| {
        a.ino() == b.ino()
            && a.len() == b.len()
            && a.mtime() == b.mtime()
            && a.mtime_nsec() == b.mtime_nsec()
    };
    if !matches!((&before, &after), (Some(a), Some(b)) if same(a, b)) {
        return Err(Error::failed(format!(
            "{} changed while it was being restored: the restore read something else than the backup that was checked",
            place.host.display()
        ))
        .help("nothing was changed; restore a backup nothing writes to"));
    }
    Ok(Loaded {
        how: format!(
            "pg_restore{} read {} in place",
            if jobs > 1 {
                format!(" -j {jobs}")
            } else {
                String::new()
            },
            if place.decompressed {
                "the dump decompressed beside the backups"
            } else {
                "the dump"
            }
        ),
        jobs,
        settings: 0,
    })
}

/// The archive as a file the PostgreSQL container reads.
#[derive(Debug)]
struct InPlace {
    /// Where the host has it.
    host: PathBuf,
    /// Where the container sees it.
    inside: String,
    /// Whether it was decompressed for this restore (and goes afterwards).
    decompressed: bool,
}

/// Whether the container sees the file or directory `host` at `inside` (the
/// same inode, through the backup directory's mount).
async fn sees(ctx: &Layer, host: &Path, inside: &str) -> bool {
    let Ok(meta) = std::fs::metadata(host) else {
        return false;
    };
    let spec = ExecSpec::new(["stat", "-L", "-c", "%i %s", "--", inside]);
    let Ok(out) = ctx
        .runtime
        .exec(&ctx.deployment.config.postgres.container_name, &spec)
        .await
    else {
        return false;
    };
    let want = format!("{} {}", meta.ino(), meta.len());
    out.success()
        && (out.stdout_text().trim() == want
            || meta.is_dir()
                && out.stdout_text().trim().split(' ').next() == Some(&meta.ino().to_string()))
}

/// Where `pg_restore` can read the archive in place, if it can: the backup
/// itself when it is in the backup directory the container mounts; a dump this
/// tool compressed, decompressed there first (when the disk has room).
async fn in_place(ctx: &Layer, checked: &Checked) -> Result<Option<InPlace>> {
    let dir = &ctx.deployment.backup.dir;
    if !sees(ctx, dir, BACKUP_MOUNT).await {
        return Ok(None);
    }
    if checked.manifest.compression.whole_file() {
        return decompress_beside(ctx, checked, dir).await;
    }
    let parent = checked
        .dump
        .parent()
        .and_then(|p| std::fs::canonicalize(p).ok());
    if parent.as_deref() != std::fs::canonicalize(dir).ok().as_deref() {
        return Ok(None);
    }
    let Some(name) = checked
        .dump
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
    else {
        return Ok(None);
    };
    let inside = format!("{BACKUP_MOUNT}/{name}");
    if !sees(ctx, &checked.dump, &inside).await {
        return Ok(None);
    }
    Ok(Some(InPlace {
        host: checked.dump.clone(),
        inside,
        decompressed: false,
    }))
}

/// Bytes free for this user in the filesystem of `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Decompresses a dump this tool compressed into the backup directory, where
/// the container reads it; the file's checksum is checked again on the way.
/// `None` when the directory has no room for it (the restore streams then).
async fn decompress_beside(ctx: &Layer, checked: &Checked, dir: &Path) -> Result<Option<InPlace>> {
    // Left by an interrupted restore.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(RESTORING_PREFIX)
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let needed = checked
        .manifest
        .uncompressed_size
        .unwrap_or(checked.manifest.size * 4);
    if free_bytes(dir).is_none_or(|free| free < needed.saturating_add(needed / 10)) {
        ctx.tell(Event::Warning(&format!(
            "{} has no room for the dump decompressed ({needed} bytes); it is streamed into pg_restore instead",
            dir.display()
        )));
        return Ok(None);
    }
    let (_, _, stamp) = now();
    let name = format!("{RESTORING_PREFIX}{stamp}{DUMP_SUFFIX}");
    let host = dir.join(&name);
    let failed = |e: std::io::Error| {
        Error::failed(format!(
            "cannot decompress {} into {}: {e}",
            checked.dump.display(),
            host.display()
        ))
        .help("check the free space of the backup directory's filesystem")
    };
    let result = async {
        let mut reader = checked.open(&*ctx.progress, "decompress")?;
        let mut writer = FileWriter::scratch(create_private(&host)?).map_err(failed)?;
        loop {
            let mut chunk = Vec::with_capacity(CHUNK);
            let n = (&mut reader)
                .take(CHUNK as u64)
                .read_to_end(&mut chunk)
                .await
                .map_err(|e| corrupt_while_reading(checked, &e))?;
            if n == 0 {
                break;
            }
            writer.write(chunk).await.map_err(failed)?;
        }
        let read = reader
            .finish()
            .await
            .map_err(|e| corrupt_while_reading(checked, &e))?;
        let written = writer.finish().await.map_err(failed)?;
        if read.sha256 != checked.manifest.sha256 {
            return Err(changed(checked));
        }
        if checked
            .manifest
            .uncompressed_size
            .is_some_and(|size| size != written.input)
        {
            return Err(Error::bad_input(format!(
                "the backup {} decompresses to {} bytes, its manifest records {:?}",
                checked.dump.display(),
                written.input,
                checked.manifest.uncompressed_size
            ))
            .help("nothing was changed; restore another backup"));
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = std::fs::remove_file(&host);
        return Err(e);
    }
    let inside = format!("{BACKUP_MOUNT}/{name}");
    if !sees(ctx, &host, &inside).await {
        let _ = std::fs::remove_file(&host);
        return Ok(None);
    }
    Ok(Some(InPlace {
        host,
        inside,
        decompressed: true,
    }))
}

fn corrupt_while_reading(checked: &Checked, e: &std::io::Error) -> Error {
    Error::bad_input(format!(
        "cannot read the backup {}: {e}",
        checked.dump.display()
    ))
    .help("nothing was changed; restore another backup (`immich-db backup --list`)")
}

fn changed(checked: &Checked) -> Error {
    Error::failed(format!(
        "{} changed while it was being restored: what was read is not the backup that was checked",
        checked.dump.display()
    ))
    .help("nothing was changed; restore a backup nothing writes to")
}

/// `pg_restore` of an archive the container reads at `inside` into the new
/// database, with `jobs` parallel jobs; progress is the new database's size
/// against what the manifest recorded.
async fn restore_file(
    ctx: &Layer,
    inside: &str,
    fresh: &Fresh,
    jobs: u32,
    total: Option<u64>,
) -> Result<()> {
    let pg = &ctx.deployment.config.postgres;
    let jobs_arg = jobs.to_string();
    let mut command = vec!["pg_restore", "-w", "--exit-on-error"];
    if jobs > 1 {
        command.extend(["-j", jobs_arg.as_str()]);
    }
    command.extend([
        "-U",
        pg.user.as_str(),
        "-d",
        fresh.name.as_str(),
        "--",
        inside,
    ]);
    let spec = ExecSpec::new(command);
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let restored = async {
        let out = ctx.runtime.exec(&pg.container_name, &spec).await;
        let _ = stop.send(());
        out
    };
    let watched = watch_size(ctx, fresh, total, stopped);
    let (out, ()) = tokio::join!(restored, watched);
    let out = out.map_err(|e| ctx.podman_failure("running pg_restore", &e))?;
    if !out.success() {
        return Err(pg_restore_failed(&out));
    }
    Ok(())
}

fn pg_restore_failed(out: &homelab_podman::ExecOutput) -> Error {
    Error::failed(format!(
        "pg_restore failed (exit {}); the database is as it was: {}",
        out.exit_code,
        out.stderr_text().trim()
    ))
    .help("read pg_restore's message above; nothing was changed")
}

/// `pg_restore` from a stream of the archive (decompressed on the way where
/// this tool compressed it) into the new database, in one transaction; the
/// file's checksum is checked again on the way.
async fn restore_stream(ctx: &Layer, checked: &Checked, fresh: &Fresh) -> Result<Loaded> {
    let pg = &ctx.deployment.config.postgres;
    let spec = ExecSpec::new([
        "pg_restore",
        "-w",
        "--single-transaction",
        "--exit-on-error",
        "-U",
        pg.user.as_str(),
        "-d",
        fresh.name.as_str(),
    ]);
    let mut input = checked.open(&*ctx.progress, "restore")?;
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
        homelab_podman::Error::ExecStream { source, .. } => corrupt_while_reading(checked, &source),
        other => ctx.podman_failure("running pg_restore", &other),
    })?;
    if !out.success() {
        return Err(pg_restore_failed(&out));
    }
    let read = read.map_err(|e| corrupt_while_reading(checked, &e))?;
    if read.sha256 != checked.manifest.sha256 {
        return Err(changed(checked));
    }
    Ok(Loaded {
        how: format!(
            "pg_restore read the dump{} streamed into it",
            if checked.manifest.compression.whole_file() {
                " decompressed on the host and"
            } else {
                ""
            }
        ),
        jobs: 1,
        settings: 0,
    })
}

/// Queries for [`watch_size`]'s `psql`, once a second, until told to stop;
/// then the end of its input.
struct Ticker {
    query: Vec<u8>,
    at: usize,
    every: tokio::time::Interval,
    stop: tokio::sync::oneshot::Receiver<()>,
}

impl tokio::io::AsyncRead for Ticker {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.at < this.query.len() {
            let n = (this.query.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.query[this.at..this.at + n]);
            this.at += n;
            return Poll::Ready(Ok(()));
        }
        if Pin::new(&mut this.stop).poll(cx).is_ready() {
            return Poll::Ready(Ok(()));
        }
        match this.every.poll_tick(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(_) => {
                this.at = 0;
                let n = this.query.len().min(buf.remaining());
                buf.put_slice(&this.query[..n]);
                this.at = n;
                Poll::Ready(Ok(()))
            }
        }
    }
}

/// Reads the sizes `psql` prints, a line each, into progress.
struct Sizes<'a> {
    meter: Meter<'a>,
    line: Vec<u8>,
}

impl tokio::io::AsyncWrite for Sizes<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        for &b in buf {
            if b == b'\n' {
                if let Ok(size) = std::str::from_utf8(&this.line).unwrap_or("").trim().parse() {
                    this.meter.update(size);
                }
                this.line.clear();
            } else if this.line.len() < 64 {
                this.line.push(b);
            }
        }
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Tells progress the size of the new database once a second while
/// `pg_restore` fills it (one `psql` session, connected to the maintenance
/// database), until `stop`.
async fn watch_size(
    ctx: &Layer,
    fresh: &Fresh,
    total: Option<u64>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let pg = &ctx.deployment.config.postgres;
    let spec = ExecSpec::new([
        "psql",
        "-X",
        "-w",
        "-q",
        "-A",
        "-t",
        "-U",
        pg.user.as_str(),
        "-d",
        fresh.maintenance,
    ]);
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticker = Ticker {
        query: format!("SELECT pg_database_size({});\n", literal(&fresh.name)).into_bytes(),
        at: usize::MAX,
        every,
        stop,
    };
    ticker.at = ticker.query.len();
    let mut sizes = Sizes {
        meter: Meter::new(&*ctx.progress, "restore", total),
        line: Vec::new(),
    };
    // Progress only: a failure here changes nothing of the restore.
    let _ = ctx
        .runtime
        .exec_streaming(&pg.container_name, &spec, Some(&mut ticker), &mut sizes)
        .await;
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
            compression: Compression::default(),
            uncompressed_size: None,
            database_size: None,
            settings: None,
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

    /// What the fake PostgreSQL answers `psql` with, by the statement it is
    /// given: a server of major `major` with one database setting.
    fn psql_answer(stdin: &str, major: u32) -> String {
        if stdin.contains("server_version") {
            format!("{major}.2\n{}\n", major * 10_000 + 2)
        } else if stdin.contains("pg_db_role_setting") {
            r#"[{"role":null,"in_database":true,"setting":"search_path=\"$user\", public, vectors"}]"#
                .to_owned()
        } else if stdin.contains("pg_database_size") {
            "4096".to_owned()
        } else if stdin.contains("ENCODING") {
            " ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'".to_owned()
        } else if stdin.contains("count(*) FROM pg_database") {
            "1".to_owned()
        } else if stdin.contains("pg_roles") {
            "immich\npostgres".to_owned()
        } else if stdin.contains("count(*) FROM pg_class") {
            "0".to_owned()
        } else {
            String::new()
        }
    }

    /// What a fake records as it is called.
    type Recorded<T> = Arc<Mutex<Vec<T>>>;

    /// A context on the fakes, with a PostgreSQL server of major `major`
    /// whose `pg_dump` writes `archive` (or fails, or has no zstd when
    /// `no_zstd`) and whose `pg_restore` records its input; every `psql`
    /// statement is recorded too.
    fn fake_server(
        archive: &'static [u8],
        dump_fails: bool,
        major: u32,
        no_zstd: bool,
    ) -> (Layer, Recorded<u8>, Recorded<String>) {
        let d = deployment();
        let runtime = FakeRuntime::new();
        runtime.add_container(running(&d.config.postgres.container_name));
        let restored = Arc::new(Mutex::new(Vec::new()));
        let statements = Arc::new(Mutex::new(Vec::new()));
        let seen = restored.clone();
        let said = statements.clone();
        runtime.script_exec(&d.config.postgres.container_name, move |spec| {
            let stdin = String::from_utf8_lossy(spec.stdin_bytes().unwrap_or_default()).into_owned();
            let ok = |stdout: &[u8]| ExecOutput::new(0, stdout.to_vec(), Vec::new());
            let command = spec.command();
            match command[0].as_str() {
                "psql" => {
                    let answer = psql_answer(&stdin, major);
                    said.lock().unwrap().push(stdin);
                    ok(answer.as_bytes())
                }
                "pg_dump" if dump_fails => ExecOutput::new(
                    1,
                    b"PGDMP half".to_vec(),
                    b"pg_dump: error: connection lost\n".to_vec(),
                ),
                "pg_dump" if no_zstd && command.iter().any(|a| a.contains("zstd")) => {
                    ExecOutput::new(
                        1,
                        Vec::new(),
                        b"pg_dump: error: invalid compression specification: compression algorithm \"zstd\" is not supported by this build\n".to_vec(),
                    )
                }
                "pg_dump" => ok(archive),
                "pg_restore" => {
                    *seen.lock().unwrap() = spec.stdin_bytes().unwrap_or_default().to_vec();
                    ok(b"")
                }
                _ => ExecOutput::new(127, Vec::new(), Vec::new()),
            }
        });
        let ctx = context_on(&runtime, Arc::new(FakeManager::new()));
        (ctx, restored, statements)
    }

    fn fake_context(archive: &'static [u8], dump_fails: bool) -> (Layer, Arc<Mutex<Vec<u8>>>) {
        let (ctx, restored, _) = fake_server(archive, dump_fails, 17, false);
        (ctx, restored)
    }

    #[test]
    fn the_method_follows_the_major_version() {
        assert_eq!(BackupMethod::for_major(14), BackupMethod::HostZstd);
        assert_eq!(BackupMethod::for_major(15), BackupMethod::HostZstd);
        assert_eq!(BackupMethod::for_major(16), BackupMethod::PgDumpZstd);
        assert_eq!(BackupMethod::for_major(18), BackupMethod::PgDumpZstd);
        assert_eq!(
            "host-zstd".parse::<BackupMethod>().unwrap(),
            BackupMethod::HostZstd
        );
        assert!("gzip".parse::<BackupMethod>().is_err());
    }

    #[test]
    fn a_server_before_16_is_dumped_uncompressed_and_compressed_on_the_host() {
        let archive: &'static [u8] =
            b"PGDMP\x01\x0e\x00 an uncompressed archive, compressible compressible compressible";
        let (ctx, restored, statements) = fake_server(archive, false, 14, false);
        let dir = tempfile::tempdir().unwrap();
        let (made, _) = block_on(run(&ctx, dir.path(), 3, None)).unwrap();
        assert!(
            made.dump.to_string_lossy().ends_with(".dump.zst"),
            "{}",
            made.dump.display()
        );
        let stored = std::fs::read(&made.dump).unwrap();
        assert!(stored.starts_with(ZSTD_MAGIC));
        assert_eq!(zstd::decode_all(stored.as_slice()).unwrap(), archive);
        let m = &made.manifest;
        assert_eq!(m.compression, Compression::of(BackupMethod::HostZstd));
        assert_eq!(m.uncompressed_size, Some(archive.len() as u64));
        assert_eq!(m.sha256, hex(&Sha256::digest(&stored)));
        assert_eq!(std::fs::metadata(&made.dump).unwrap().mode() & 0o777, 0o600);
        // The restore gives pg_restore the archive, and sets the setting the
        // backup recorded on the new database.
        let checked = check(&made.dump).unwrap();
        let loaded = block_on(restore(&ctx, &checked, false)).unwrap();
        assert_eq!(*restored.lock().unwrap(), archive);
        assert_eq!(loaded.settings, 1);
        let said = statements.lock().unwrap();
        assert!(
            said.iter()
                .any(|s| s.contains("ALTER DATABASE \"immich_db_restore_")
                    && s.contains("SET \"search_path\" TO '$user', 'public', 'vectors'")),
            "{said:#?}"
        );
    }

    #[test]
    fn a_pg_dump_without_zstd_falls_back_to_the_host() {
        let archive: &'static [u8] = b"PGDMP\x01\x0f\x00 archive";
        let (ctx, _, _) = fake_server(archive, false, 16, true);
        let dir = tempfile::tempdir().unwrap();
        let (made, _) = block_on(run(&ctx, dir.path(), 3, None)).unwrap();
        assert_eq!(made.manifest.compression.by, Compressor::ImmichDb);
        assert_eq!(
            zstd::decode_all(std::fs::read(&made.dump).unwrap().as_slice()).unwrap(),
            archive
        );
    }

    #[test]
    fn a_zstd_file_that_does_not_hold_an_archive_is_refused() {
        let archive: &'static [u8] = b"PGDMP\x01\x0e\x00 archive";
        let (ctx, _, _) = fake_server(archive, false, 14, false);
        let dir = tempfile::tempdir().unwrap();
        let (made, _) = block_on(run(&ctx, dir.path(), 3, None)).unwrap();
        // Another zstd file with a manifest that matches it: the checksum
        // passes, the content does not.
        let other = zstd::encode_all(&b"not an archive"[..], 1).unwrap();
        std::fs::write(&made.dump, &other).unwrap();
        let mut m = made.manifest.clone();
        m.size = other.len() as u64;
        m.sha256 = hex(&Sha256::digest(&other));
        std::fs::write(&made.manifest_path, serde_json::to_string(&m).unwrap()).unwrap();
        let err = check(&made.dump).unwrap_err();
        assert!(
            err.what.contains("does not decompress into a pg_dump"),
            "{err}"
        );
    }

    #[test]
    fn a_backup_is_written_checked_and_restored_byte_for_byte() {
        let archive: &'static [u8] = b"PGDMP\x01\x0f\x00 a custom-format archive";
        let (ctx, restored) = fake_context(archive, false);
        let dir = tempfile::tempdir().unwrap();
        let (made, removed) = block_on(run(&ctx, dir.path(), 3, None)).unwrap();
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
        let err = block_on(run(&ctx, dir.path(), 3, None)).unwrap_err();
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
        let err = block_on(run(&ctx, dir.path(), 3, None)).unwrap_err();
        assert!(err.what.contains("not a custom-format archive"), "{err}");
        assert!(list(&ctx.deployment, dir.path()).is_empty());
    }
}
