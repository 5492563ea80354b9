//! Rewriting files into NOCOW copies: the fix for files that were created before
//! NOCOW was set on their directory, which `chattr +C` can no longer change.
//!
//! Each file is copied into a new, empty NOCOW file next to it, which then
//! replaces the original with one `rename(2)`. Until that rename the original is
//! untouched, so an interruption at any point (a crash, a kill, a full disk)
//! loses nothing: what is left is the original and, at worst, a temporary copy.
//!
//! A temporary copy is named `.nocow-migrate~NAME`, carries the extended attribute
//! `user.homelab-btrfs.migrating`, and is locked (`flock`) while it is written. A
//! later run removes such copies when no process holds their lock: the name alone
//! never gets a file deleted.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::{
    AtFlags, FlockOperation, Gid, IFlags, Mode, OFlags, SeekFrom, Timespec, Timestamps, Uid,
    XattrFlags,
};
use rustix::io::Errno;

use crate::attributes::{self, Attributes};
use crate::dir::open_dir;
use crate::error::{Error, Result, from_errno, from_io};
use crate::filesystem::Filesystem;
use crate::path::{file_in_the_way, parent};
use crate::statfs::filesystem;

/// Names of temporary copies start with this.
pub(crate) const TEMP_PREFIX: &str = ".nocow-migrate~";
/// The extended attribute that marks a file as a migration's temporary copy; its
/// value is the name of the file being copied.
pub(crate) const MARKER_XATTR: &str = "user.homelab-btrfs.migrating";
/// Attributes of the original that its NOCOW copy keeps. Compression excludes
/// NOCOW; immutable and append-only files are refused before copying.
const KEPT_ATTRIBUTES: Attributes = Attributes::NOATIME
    .union(Attributes::NODUMP)
    .union(Attributes::SYNC)
    .union(Attributes::NOCOMPRESS);
/// Bytes per `copy_file_range(2)` call: small enough that a copy makes visible
/// progress, large enough to cost nothing.
const CHUNK: u64 = 8 << 20;

/// Whether the service that uses the files is running, as the caller knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceState {
    /// Stopped: nothing writes to the files.
    Stopped,
    /// Running: migration is refused.
    Running {
        /// The service's name, for the error message (for example
        /// `postgresql-immich.service`).
        service: String,
    },
}

/// A file that was rewritten into a NOCOW copy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigratedFile {
    /// The file (the same path as before).
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

impl MigratedFile {
    /// A file of `bytes` bytes rewritten at `path`.
    pub fn new(path: impl Into<PathBuf>, bytes: u64) -> Self {
        Self {
            path: path.into(),
            bytes,
        }
    }
}

/// What [`migrate_to_nocow`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MigrateReport {
    /// Files rewritten into NOCOW copies, in the order given.
    pub migrated: Vec<MigratedFile>,
    /// Files that already were NOCOW and were left alone.
    pub already_nocow: Vec<PathBuf>,
    /// Temporary copies an interrupted earlier run had left, now removed.
    pub leftovers_removed: Vec<PathBuf>,
}

impl MigrateReport {
    /// Total bytes rewritten.
    pub fn bytes(&self) -> u64 {
        self.migrated.iter().map(|f| f.bytes).sum()
    }
}

/// FNV-1a: a stable, dependency-free hash for shortening long names.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The name of the temporary copy of the file `name`: the same for every run, so
/// a later run finds what an interrupted one left; at most 255 bytes.
pub(crate) fn temp_name(name: &OsStr) -> OsString {
    const NAME_MAX: usize = 255;
    let name = name.as_bytes();
    let mut out = TEMP_PREFIX.as_bytes().to_vec();
    if out.len() + name.len() <= NAME_MAX {
        out.extend_from_slice(name);
    } else {
        let suffix = format!("~{:016x}", fnv1a(name));
        let keep = NAME_MAX - out.len() - suffix.len();
        out.extend_from_slice(&name[..keep]);
        out.extend_from_slice(suffix.as_bytes());
    }
    OsString::from_vec(out)
}

fn is_temp_name(name: &[u8]) -> bool {
    name.starts_with(TEMP_PREFIX.as_bytes())
}

/// Whether the open file carries the marker of a migration's temporary copy.
fn has_marker(fd: BorrowedFd<'_>) -> bool {
    rustix::fs::fgetxattr_query(fd, MARKER_XATTR).is_ok()
}

/// What to do with an entry named like a temporary copy.
enum Leftover {
    /// Not a marked regular file: not ours, leave it.
    NotOurs,
    /// Marked but locked: a running migration is writing it.
    InUse,
    /// Marked and unlocked: an interrupted run left it; removed.
    Removed,
}

fn remove_if_leftover(dir: BorrowedFd<'_>, dir_path: &Path, name: &OsStr) -> Result<Leftover> {
    let path = dir_path.join(name);
    let fd = match rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::LOOP) => return Ok(Leftover::NotOurs),
        Err(e) => return Err(from_errno(&path, "examining", e)),
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| from_errno(&path, "examining", e))?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile
        || !has_marker(fd.as_fd())
    {
        return Ok(Leftover::NotOurs);
    }
    match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(Errno::WOULDBLOCK) => return Ok(Leftover::InUse),
        Err(e) => return Err(from_errno(&path, "locking", e)),
    }
    // Still the same file under that name? (It cannot be recreated while it
    // exists, as copies are created with O_EXCL.)
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(now) if now.st_ino == st.st_ino && now.st_dev == st.st_dev => {}
        Ok(_) | Err(Errno::NOENT) => return Ok(Leftover::NotOurs),
        Err(e) => return Err(from_errno(&path, "examining", e)),
    }
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(Leftover::Removed),
        Err(e) => Err(from_errno(&path, "removing the leftover copy", e)),
    }
}

/// Whether `name` in the open directory is a temporary copy a migration left
/// (named like one and carrying its marker). For the audit; never removes it.
pub(crate) fn is_leftover(dir: BorrowedFd<'_>, name: &OsStr) -> bool {
    if !is_temp_name(name.as_bytes()) {
        return false;
    }
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .is_ok_and(|fd| has_marker(fd.as_fd()))
}

/// Removes the temporary copies that interrupted migrations left in `dir`, and
/// returns their paths. Copies a running migration holds locked are left alone,
/// and so is any file that does not carry a migration's marker.
///
/// [`migrate_to_nocow`] calls this for the directories of the files it is given.
///
/// # Errors
/// [`Error::NotFound`], [`Error::NotADirectory`], [`Error::PermissionDenied`],
/// [`Error::Io`].
pub fn clean_leftovers(dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
    let dir_path = dir.as_ref();
    let fd = open_dir(dir_path, "opening")?;
    let entries =
        rustix::fs::Dir::read_from(&fd).map_err(|e| from_errno(dir_path, "listing", e))?;
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| from_errno(dir_path, "listing", e))?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if !is_temp_name(name.as_bytes()) {
            continue;
        }
        if let Leftover::Removed = remove_if_leftover(fd.as_fd(), dir_path, name)? {
            removed.push(dir_path.join(name));
        }
    }
    if !removed.is_empty() {
        rustix::fs::fsync(&fd).map_err(|e| from_errno(dir_path, "syncing", e))?;
    }
    Ok(removed)
}

/// A file checked and ready to be rewritten.
#[derive(Debug)]
struct Planned {
    path: PathBuf,
    dir: PathBuf,
    name: OsString,
    dev: u64,
    ino: u64,
    size: u64,
}

/// What checking a file found.
#[derive(Debug)]
enum Checked {
    /// Already NOCOW. A crash right after an earlier run's rename can have left
    /// the marker on the finished file: it is only a label, dropped later.
    Nocow { stray_marker: bool },
    /// To be rewritten.
    Rewrite(Planned),
}

/// Checks one file without changing anything.
fn check(path: &Path) -> Result<Checked> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| match Errno::from_io_error(&e) {
        Some(Errno::NOTDIR) => Error::NotADirectory {
            path: file_in_the_way(path),
        },
        _ => from_io(path, "examining", e),
    })?;
    if !meta.file_type().is_file() {
        return Err(Error::NotARegularFile {
            path: path.to_path_buf(),
        });
    }
    let filesystem = filesystem(path)?;
    if filesystem != Filesystem::Btrfs {
        return Err(Error::NotSupported {
            path: path.to_path_buf(),
            filesystem,
        });
    }
    let (fd, _) = attributes::open_for_attributes(path, "reading the attributes of")?;
    let attrs = attributes::get(&fd, path)?;
    if attrs.is_nocow() {
        return Ok(Checked::Nocow {
            stray_marker: has_marker(fd.as_fd()),
        });
    }
    if attrs.intersects(Attributes::IMMUTABLE | Attributes::APPEND) {
        return Err(Error::Immutable {
            path: path.to_path_buf(),
        });
    }
    if meta.nlink() > 1 {
        return Err(Error::HardLinked {
            path: path.to_path_buf(),
            links: meta.nlink(),
        });
    }
    let name = path
        .file_name()
        .ok_or_else(|| Error::InvalidName {
            path: path.to_path_buf(),
        })?
        .to_os_string();
    Ok(Checked::Rewrite(Planned {
        path: path.to_path_buf(),
        dir: parent(path),
        name,
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.len(),
    }))
}

/// Rewrites each listed file into a NOCOW copy of itself, in place: a new empty
/// file next to it gets `+C`, the data (holes stay holes), owner, mode, extended
/// attributes, the attributes `A`, `d`, `S`, `m`, and access and modification
/// times; it is synced and renamed over the original. Files that already are
/// NOCOW are left alone, so running it again after an interruption finishes the
/// job.
///
/// It refuses to start while the files' service runs, and checks every file
/// before changing any (regular, on BTRFS, not hard-linked, not immutable). It
/// also removes the temporary copies an interrupted run left in the files'
/// directories ([`clean_leftovers`]). If a file changes while it is copied, its
/// copy is discarded and the original kept.
///
/// # Errors
/// [`Error::ServiceRunning`], [`Error::NotFound`], [`Error::NotARegularFile`],
/// [`Error::NotSupported`], [`Error::HardLinked`], [`Error::Immutable`],
/// [`Error::NoSpace`], [`Error::ChangedDuringCopy`], [`Error::TempFileInTheWay`],
/// [`Error::Xattr`], [`Error::PermissionDenied`], [`Error::Io`]. Files migrated
/// before an error stay migrated; the file the error names is unchanged.
pub fn migrate_to_nocow<P: AsRef<Path>>(
    files: &[P],
    service: &ServiceState,
) -> Result<MigrateReport> {
    Migration::new(service).run(files)
}

/// A migration to NOCOW ([`migrate_to_nocow`]) that reports its progress: after
/// each chunk copied, the file being migrated and how far into it the copy has
/// come (holes are skipped, not copied). A caller can show the progress of a large database file, or
/// (a test) stop the migration at a known point.
///
/// ```no_run
/// use homelab_btrfs::{Migration, ServiceState};
///
/// let report = Migration::new(&ServiceState::Stopped)
///     .on_copied(|file, offset| eprintln!("{}: copied up to byte {offset}", file.display()))
///     .run(&["/mnt/pool/db/postgres/base/16384/2619"])?;
/// println!("{} file(s) rewritten", report.migrated.len());
/// # Ok::<(), homelab_btrfs::Error>(())
/// ```
pub struct Migration<'a> {
    service: &'a ServiceState,
    on_copied: OnCopied<'a>,
}

/// What [`Migration::on_copied`] calls: the file, and the offset reached.
type OnCopied<'a> = Box<dyn FnMut(&Path, u64) + 'a>;

impl std::fmt::Debug for Migration<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Migration")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl<'a> Migration<'a> {
    /// A migration of files whose service is in the state given (a running
    /// one is refused).
    pub fn new(service: &'a ServiceState) -> Self {
        Self {
            service,
            on_copied: Box::new(|_, _| {}),
        }
    }

    /// Calls `report` after each chunk copied, with the file being migrated
    /// and the offset the copy has reached in it.
    #[must_use]
    pub fn on_copied(mut self, report: impl FnMut(&Path, u64) + 'a) -> Self {
        self.on_copied = Box::new(report);
        self
    }

    /// Carries it out, as [`migrate_to_nocow`] describes.
    ///
    /// # Errors
    /// Those of [`migrate_to_nocow`].
    pub fn run<P: AsRef<Path>>(mut self, files: &[P]) -> Result<MigrateReport> {
        migrate(files, self.service, &mut *self.on_copied)
    }
}

fn migrate<P: AsRef<Path>>(
    files: &[P],
    service: &ServiceState,
    on_copied: &mut dyn FnMut(&Path, u64),
) -> Result<MigrateReport> {
    if let ServiceState::Running { service } = service {
        return Err(Error::ServiceRunning {
            service: service.clone(),
        });
    }
    let mut report = MigrateReport::default();
    let mut planned = Vec::new();
    let mut stray_markers = Vec::new();
    let mut seen = BTreeSet::new();
    for path in files {
        let path = path.as_ref();
        match check(path)? {
            Checked::Nocow { stray_marker } => {
                if stray_marker {
                    stray_markers.push(path);
                }
                report.already_nocow.push(path.to_path_buf());
            }
            Checked::Rewrite(p) => {
                if seen.insert((p.dev, p.ino)) {
                    planned.push(p);
                }
            }
        }
    }
    for path in stray_markers {
        // Best effort: the label does no harm where it stays.
        let _ = rustix::fs::removexattr(path, MARKER_XATTR);
    }
    let dirs: BTreeSet<&Path> = planned.iter().map(|p| p.dir.as_path()).collect();
    for dir in dirs {
        report.leftovers_removed.extend(clean_leftovers(dir)?);
    }
    for p in &planned {
        rewrite(p, on_copied)?;
        report.migrated.push(MigratedFile {
            path: p.path.clone(),
            bytes: p.size,
        });
    }
    Ok(report)
}

/// The temporary copy, removed again unless it was renamed over the original.
struct TempCopy<'a> {
    dir: BorrowedFd<'a>,
    name: OsString,
    file: File,
    renamed: bool,
}

impl Drop for TempCopy<'_> {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = rustix::fs::unlinkat(self.dir, &self.name, AtFlags::empty());
        }
    }
}

fn create_temp<'a>(dir: BorrowedFd<'a>, p: &Planned) -> Result<TempCopy<'a>> {
    let name = temp_name(&p.name);
    let temp_path = p.dir.join(&name);
    let create = || {
        rustix::fs::openat(
            dir,
            &name,
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
    };
    let fd = match create() {
        Ok(fd) => fd,
        Err(Errno::EXIST) => match remove_if_leftover(dir, &p.dir, &name)? {
            Leftover::Removed => create().map_err(|e| from_errno(&temp_path, "creating", e))?,
            Leftover::InUse | Leftover::NotOurs => {
                return Err(Error::TempFileInTheWay { path: temp_path });
            }
        },
        Err(e) => return Err(from_errno(&temp_path, "creating", e)),
    };
    let copy = TempCopy {
        dir,
        name,
        file: File::from(fd),
        renamed: false,
    };
    // Locked and marked before it holds any data, so that a later run can tell a
    // dead copy from a live one and from a user's file.
    rustix::fs::flock(&copy.file, FlockOperation::NonBlockingLockExclusive)
        .map_err(|e| from_errno(&temp_path, "locking", e))?;
    rustix::fs::fsetxattr(
        &copy.file,
        MARKER_XATTR,
        p.name.as_bytes(),
        XattrFlags::CREATE,
    )
    .map_err(|e| Error::Xattr {
        path: temp_path.clone(),
        name: MARKER_XATTR.to_owned(),
        source: e.into(),
    })?;
    Ok(copy)
}

fn rewrite(p: &Planned, on_copied: &mut dyn FnMut(&Path, u64)) -> Result<()> {
    let path = p.path.as_path();
    let dir = open_dir(&p.dir, "opening")?;
    let src = rustix::fs::openat(
        &dir,
        &p.name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| from_errno(path, "opening", e))?;
    let src = File::from(src);
    let before = src.metadata().map_err(|e| from_io(path, "examining", e))?;
    if before.dev() != p.dev || before.ino() != p.ino {
        return Err(Error::ChangedDuringCopy {
            path: path.to_path_buf(),
        });
    }
    // The copy needs what the original occupies (holes stay holes); BTRFS reports
    // compressed files at their uncompressed size, which a NOCOW copy takes.
    let needed = before.blocks().saturating_mul(512);
    let available = available_bytes(dir.as_fd(), &p.dir)?;
    if needed > available {
        return Err(Error::NoSpace {
            path: path.to_path_buf(),
            needed,
            available,
        });
    }
    let src_attrs = attributes::get(&src, path)?;

    let mut temp = create_temp(dir.as_fd(), p)?;
    let temp_path = p.dir.join(&temp.name);
    // NOCOW only takes on an empty file: first, and checked.
    attributes::set_nocow_fd(&temp.file, &temp_path, true, 0)?;

    let mut copied = |bytes: u64| on_copied(path, bytes);
    copy_data(
        &src,
        &temp.file,
        before.len(),
        path,
        &temp_path,
        &mut copied,
    )?;

    rustix::fs::fchown(
        &temp.file,
        Some(Uid::from_raw(before.uid())),
        Some(Gid::from_raw(before.gid())),
    )
    .map_err(|e| from_errno(&temp_path, "changing the owner of", e))?;
    // After chown, which clears set-id bits.
    rustix::fs::fchmod(&temp.file, Mode::from_raw_mode(before.mode() & 0o7777))
        .map_err(|e| from_errno(&temp_path, "changing the mode of", e))?;
    // After chown too, which drops file capabilities (security.capability).
    copy_xattrs(&src, &temp.file, path)?;
    let kept = src_attrs.intersection(KEPT_ATTRIBUTES) | Attributes::NOCOW;
    if kept != Attributes::NOCOW {
        rustix::fs::ioctl_setflags(&temp.file, IFlags::from_bits_retain(kept.bits()))
            .map_err(|e| from_errno(&temp_path, "setting the attributes of", e))?;
    }
    let times = Timestamps {
        last_access: timespec(before.atime(), before.atime_nsec()),
        last_modification: timespec(before.mtime(), before.mtime_nsec()),
    };
    rustix::fs::futimens(&temp.file, &times)
        .map_err(|e| from_errno(&temp_path, "setting the times of", e))?;
    temp.file
        .sync_all()
        .map_err(|e| from_io(&temp_path, "syncing", e))?;

    // Nothing may have written to the original meanwhile, and the name must still
    // be the file that was copied.
    let after = src.metadata().map_err(|e| from_io(path, "examining", e))?;
    let current = rustix::fs::statat(&dir, &p.name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| from_errno(path, "examining", e))?;
    if after.len() != before.len()
        || after.mtime() != before.mtime()
        || after.mtime_nsec() != before.mtime_nsec()
        || after.ctime() != before.ctime()
        || after.ctime_nsec() != before.ctime_nsec()
        || current.st_ino != before.ino()
        || current.st_dev != before.dev()
    {
        return Err(Error::ChangedDuringCopy {
            path: path.to_path_buf(),
        });
    }

    rustix::fs::renameat(&dir, &temp.name, &dir, &p.name)
        .map_err(|e| from_errno(path, "replacing", e))?;
    temp.renamed = true;
    // The file is complete and in place; the marker is only a label now.
    let _ = rustix::fs::fremovexattr(&temp.file, MARKER_XATTR);
    temp.file
        .sync_all()
        .map_err(|e| from_io(path, "syncing", e))?;
    rustix::fs::fsync(&dir).map_err(|e| from_errno(&p.dir, "syncing", e))?;
    Ok(())
}

fn available_bytes(fd: BorrowedFd<'_>, path: &Path) -> Result<u64> {
    let space = rustix::fs::fstatvfs(fd).map_err(|e| from_errno(path, "examining", e))?;
    Ok(space.f_bavail.saturating_mul(space.f_frsize))
}

// `tv_nsec` is an i64 here but a C long on 32-bit targets.
#[allow(clippy::useless_conversion)]
fn timespec(secs: i64, nsecs: i64) -> Timespec {
    Timespec {
        tv_sec: secs,
        tv_nsec: nsecs.try_into().unwrap_or(0),
    }
}

/// Copies `len` bytes, skipping holes, in the kernel where it can.
fn copy_data(
    src: &File,
    dst: &File,
    len: u64,
    src_path: &Path,
    dst_path: &Path,
    copied: &mut dyn FnMut(u64),
) -> Result<()> {
    let mut offset = 0;
    while offset < len {
        let data = match rustix::fs::seek(src, SeekFrom::Data(offset)) {
            Ok(d) => d,
            // No data after offset: the rest is a hole.
            Err(Errno::NXIO) => break,
            // No SEEK_DATA here: copy everything.
            Err(Errno::INVAL | Errno::OPNOTSUPP) => offset,
            Err(e) => return Err(from_errno(src_path, "reading", e)),
        };
        if data >= len {
            break;
        }
        let end = match rustix::fs::seek(src, SeekFrom::Hole(data)) {
            Ok(h) => h.min(len),
            Err(_) => len,
        };
        copy_range(src, dst, data, end, src_path, dst_path, copied)?;
        offset = end;
    }
    dst.set_len(len)
        .map_err(|e| from_io(dst_path, "setting the size of", e))
}

fn copy_range(
    src: &File,
    dst: &File,
    start: u64,
    end: u64,
    src_path: &Path,
    dst_path: &Path,
    copied: &mut dyn FnMut(u64),
) -> Result<()> {
    let mut off_in = start;
    let mut off_out = start;
    while off_in < end {
        let want = usize::try_from((end - off_in).min(CHUNK)).unwrap_or(usize::MAX);
        match rustix::fs::copy_file_range(src, Some(&mut off_in), dst, Some(&mut off_out), want) {
            // The file shrank under us; the final check reports it.
            Ok(0) => return Ok(()),
            Ok(_) => copied(off_out),
            Err(Errno::XDEV | Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                return copy_by_reading(src, dst, off_in, end, src_path, dst_path, copied);
            }
            Err(Errno::NOSPC) => {
                return Err(Error::NoSpace {
                    path: src_path.to_path_buf(),
                    needed: end - off_in,
                    available: available_bytes(dst.as_fd(), dst_path).unwrap_or(0),
                });
            }
            Err(e) => return Err(from_errno(dst_path, "copying into", e)),
        }
    }
    Ok(())
}

fn copy_by_reading(
    src: &File,
    dst: &File,
    mut offset: u64,
    end: u64,
    src_path: &Path,
    dst_path: &Path,
    copied: &mut dyn FnMut(u64),
) -> Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    while offset < end {
        let want = usize::try_from(end - offset)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = src
            .read_at(&mut buf[..want], offset)
            .map_err(|e| from_io(src_path, "reading", e))?;
        if n == 0 {
            return Ok(());
        }
        dst.write_all_at(&buf[..n], offset)
            .map_err(|e| from_io(dst_path, "writing", e))?;
        offset += n as u64;
        copied(offset);
    }
    Ok(())
}

/// Copies every extended attribute (ACLs, security labels, capabilities, user
/// attributes) except the migration marker.
fn copy_xattrs(src: &File, dst: &File, path: &Path) -> Result<()> {
    let xattr_err = |name: &[u8], e: Errno| Error::Xattr {
        path: path.to_path_buf(),
        name: String::from_utf8_lossy(name).into_owned(),
        source: e.into(),
    };
    let list = loop {
        let size = match rustix::fs::flistxattr_query(src) {
            Ok(s) => s,
            Err(Errno::OPNOTSUPP) => return Ok(()),
            Err(e) => return Err(xattr_err(b"(list)", e)),
        };
        if size == 0 {
            return Ok(());
        }
        let mut list = vec![0u8; size];
        match rustix::fs::flistxattr(src, &mut list[..]) {
            Ok(n) => {
                list.truncate(n);
                break list;
            }
            // Grew in between: ask again.
            Err(Errno::RANGE) => {}
            Err(e) => return Err(xattr_err(b"(list)", e)),
        }
    };
    for name in list.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if name == MARKER_XATTR.as_bytes() {
            continue;
        }
        let name_os = OsStr::from_bytes(name);
        let value = loop {
            let size = rustix::fs::fgetxattr_query(src, name_os).map_err(|e| xattr_err(name, e))?;
            let mut value = vec![0u8; size];
            match rustix::fs::fgetxattr(src, name_os, &mut value[..]) {
                Ok(n) => {
                    value.truncate(n);
                    break value;
                }
                Err(Errno::RANGE) => {}
                Err(e) => return Err(xattr_err(name, e)),
            }
        };
        rustix::fs::fsetxattr(dst, name_os, &value, XattrFlags::empty())
            .map_err(|e| xattr_err(name, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognisable_and_stable() {
        let t = temp_name(OsStr::new("dump.rdb"));
        assert_eq!(t, OsStr::new(".nocow-migrate~dump.rdb"));
        assert!(is_temp_name(t.as_bytes()));
        assert!(!is_temp_name(b"dump.rdb"));
        assert_eq!(t, temp_name(OsStr::new("dump.rdb")));
    }

    #[test]
    fn long_names_are_shortened_but_stay_distinct() {
        let a = "a".repeat(250);
        let b = format!("{}b", "a".repeat(249));
        let ta = temp_name(OsStr::new(&a));
        let tb = temp_name(OsStr::new(&b));
        assert_eq!(ta.len(), 255);
        assert_eq!(tb.len(), 255);
        assert_ne!(ta, tb);
        assert!(is_temp_name(ta.as_bytes()));
        let exact = "x".repeat(255 - TEMP_PREFIX.len());
        assert_eq!(temp_name(OsStr::new(&exact)).len(), 255);
        assert!(
            temp_name(OsStr::new(&exact))
                .as_bytes()
                .ends_with(exact.as_bytes())
        );
    }

    #[test]
    fn non_utf8_names_work() {
        let name = OsStr::from_bytes(b"\xff\xfe.dat");
        let t = temp_name(name);
        assert!(t.as_bytes().ends_with(b"\xff\xfe.dat"));
    }

    #[test]
    fn a_running_service_is_refused_before_anything_is_looked_at() {
        let err = migrate_to_nocow(
            &["/nonexistent/idbt-file"],
            &ServiceState::Running {
                service: "postgresql-immich.service".into(),
            },
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::ServiceRunning { ref service } if service == "postgresql-immich.service")
        );
        assert!(err.to_string().contains("nothing was changed"), "{err}");
    }

    #[test]
    fn kept_attributes_exclude_compression_and_immutability() {
        assert!(!KEPT_ATTRIBUTES.contains(Attributes::COMPRESS));
        assert!(!KEPT_ATTRIBUTES.intersects(Attributes::IMMUTABLE | Attributes::APPEND));
    }
}
