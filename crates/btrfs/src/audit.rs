//! Auditing a tree for files that NOCOW never reached.
//!
//! `chattr +C` on a directory only affects files created in it afterwards: files
//! that were there before keep copy-on-write, and so do directories (with what
//! they hold) that existed already. The audit walks the tree with a few threads
//! (one `open` and one `ioctl` per file, no process per file), finds those files,
//! and sums the bytes used per directory along the way.
//!
//! The same walk, without the attribute reads, measures a tree on any
//! filesystem ([`disk_usage`]).

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, StatxFlags};
use rustix::io::Errno;

use crate::attributes::{self, Attributes};
use crate::error::{Error, Result, from_errno, from_io};
use crate::migrate;
use crate::path::file_in_the_way;
use crate::statfs::filesystem;

/// A regular file that is copy-on-write below a NOCOW directory.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CowFile {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Bytes it occupies on disk.
    pub allocated: u64,
}

/// The files below one directory and the bytes they use, subdirectories included.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirUsage {
    /// The directory.
    pub path: PathBuf,
    /// Regular files below it.
    pub files: u64,
    /// Their total size in bytes (files with several links counted once).
    pub bytes: u64,
    /// Bytes they occupy on disk, as `du` counts them.
    pub allocated: u64,
}

/// Why part of the tree was not audited.
#[derive(Debug)]
#[non_exhaustive]
pub enum SkipReason {
    /// Another filesystem is mounted there; the audit stays on the root's mount.
    OtherMount,
    /// It could not be read.
    Unreadable(Error),
}

/// A part of the tree the audit did not look into.
#[derive(Debug)]
#[non_exhaustive]
pub struct Skipped {
    /// The file or directory.
    pub path: PathBuf,
    /// Why.
    pub reason: SkipReason,
}

/// What [`audit`] found. Lists are sorted by path.
#[derive(Debug)]
#[non_exhaustive]
pub struct AuditReport {
    /// The audited directory.
    pub root: PathBuf,
    /// Whether the audited directory itself is NOCOW.
    pub root_nocow: bool,
    /// Regular files that are copy-on-write although a directory above them (up
    /// to the root) is NOCOW: the files to migrate.
    pub cow_files: Vec<CowFile>,
    /// Directories that are copy-on-write below a NOCOW directory: files created
    /// in them will be copy-on-write too.
    pub cow_dirs: Vec<PathBuf>,
    /// Every directory of the tree with its usage, the root first.
    pub dirs: Vec<DirUsage>,
    /// Temporary copies an interrupted migration left (see
    /// [`clean_leftovers`](crate::clean_leftovers)).
    pub leftovers: Vec<PathBuf>,
    /// What was not looked into.
    pub skipped: Vec<Skipped>,
}

impl AuditReport {
    /// Whether nothing below a NOCOW directory is copy-on-write, no leftovers
    /// were found and nothing was skipped.
    pub fn is_clean(&self) -> bool {
        self.cow_files.is_empty()
            && self.cow_dirs.is_empty()
            && self.leftovers.is_empty()
            && self.skipped.is_empty()
    }

    /// Total size of the copy-on-write files.
    pub fn cow_bytes(&self) -> u64 {
        self.cow_files.iter().map(|f| f.size).sum()
    }

    /// The usage of the whole tree (the root's entry).
    pub fn total(&self) -> Option<&DirUsage> {
        self.dirs.first()
    }
}

/// Audits the tree below `root` with as many threads as [`default_threads`].
///
/// # Errors
/// [`Error::NotFound`], [`Error::NotADirectory`], [`Error::PermissionDenied`] for
/// the root; [`Error::NotSupported`] when the root is not on BTRFS. Problems below
/// the root are reported in [`AuditReport::skipped`].
pub fn audit(root: impl AsRef<Path>) -> Result<AuditReport> {
    audit_with_threads(root, default_threads())
}

/// Threads [`audit`] uses: two per CPU (the walk mostly waits on metadata), at
/// most 16.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(4, |n| (n.get() * 2).min(16))
}

/// A directory waiting to be read.
struct Job {
    path: PathBuf,
    /// Whether a directory above it is NOCOW; `None` for the root.
    under_nocow: Option<bool>,
}

struct Queue {
    jobs: Vec<Job>,
    busy: usize,
}

/// What one thread found.
#[derive(Default)]
struct Found {
    root_nocow: bool,
    cow_files: Vec<CowFile>,
    cow_dirs: Vec<PathBuf>,
    dirs: Vec<DirUsage>,
    leftovers: Vec<PathBuf>,
    skipped: Vec<Skipped>,
}

struct Walk {
    /// Whether to read NOCOW attributes and look for migration leftovers; a
    /// walk that only measures does neither.
    audit: bool,
    queue: Mutex<Queue>,
    wake: Condvar,
    root_mount: Option<u64>,
    /// (device, inode) of files with several links already counted.
    linked: Mutex<HashSet<(u64, u64)>>,
}

/// [`audit`] with `threads` threads (at least one).
///
/// # Errors
/// As [`audit`].
pub fn audit_with_threads(root: impl AsRef<Path>, threads: usize) -> Result<AuditReport> {
    let root = root.as_ref();
    // First, as it names the file in the way of a root below one.
    let fs = filesystem(root)?;
    let meta = std::fs::metadata(root).map_err(|e| from_io(root, "auditing", e))?;
    if !meta.is_dir() {
        return Err(Error::NotADirectory {
            path: root.to_path_buf(),
        });
    }
    if !fs.is_btrfs() {
        return Err(Error::NotSupported {
            path: root.to_path_buf(),
            filesystem: fs,
        });
    }
    let found = walk(root, threads, true)?;
    let mut report = AuditReport {
        root: root.to_path_buf(),
        root_nocow: false,
        cow_files: Vec::new(),
        cow_dirs: Vec::new(),
        dirs: Vec::new(),
        leftovers: Vec::new(),
        skipped: Vec::new(),
    };
    for f in found {
        report.root_nocow |= f.root_nocow;
        report.cow_files.extend(f.cow_files);
        report.cow_dirs.extend(f.cow_dirs);
        report.dirs.extend(f.dirs);
        report.leftovers.extend(f.leftovers);
        report.skipped.extend(f.skipped);
    }
    report.cow_files.sort_by(|a, b| a.path.cmp(&b.path));
    report.cow_dirs.sort();
    report.leftovers.sort();
    report.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    report.dirs = add_up(report.dirs);
    Ok(report)
}

/// Walks the tree below `root` with `threads` threads; each returns what it
/// found.
fn walk(root: &Path, threads: usize, audit: bool) -> Result<Vec<Found>> {
    let action = if audit { "auditing" } else { "measuring" };
    let root_fd = open_dir(root, false).map_err(|e| match e {
        Errno::NOTDIR => Error::NotADirectory {
            path: file_in_the_way(root),
        },
        e => from_errno(root, action, e),
    })?;
    let walk = Walk {
        audit,
        queue: Mutex::new(Queue {
            jobs: vec![Job {
                path: root.to_path_buf(),
                under_nocow: None,
            }],
            busy: 0,
        }),
        wake: Condvar::new(),
        root_mount: mount_id(root_fd.as_fd()),
        linked: Mutex::new(HashSet::new()),
    };
    drop(root_fd);
    Ok(std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| s.spawn(|| walk.work()))
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    }))
}

/// The regular files below `root` and the bytes they use, on any filesystem:
/// the figures of [`AuditReport::total`] without the audit, as `du -sx` counts
/// file data (files with several links once, directories themselves not).
///
/// The walk stays on the root's mount. What cannot be read, or vanishes while
/// the walk runs, is left out of the figures rather than failing them.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// std::fs::create_dir(dir.path().join("base"))?;
/// std::fs::write(dir.path().join("base/16384"), vec![1u8; 20_000])?;
/// let usage = homelab_btrfs::disk_usage(dir.path())?;
/// assert_eq!((usage.files, usage.bytes), (1, 20_000));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::NotFound`], [`Error::NotADirectory`], [`Error::PermissionDenied`] for
/// the root.
#[doc(alias = "du")]
pub fn disk_usage(root: impl AsRef<Path>) -> Result<DirUsage> {
    let root = root.as_ref();
    let mut total = DirUsage {
        path: root.to_path_buf(),
        files: 0,
        bytes: 0,
        allocated: 0,
    };
    for dir in walk(root, default_threads(), false)?
        .into_iter()
        .flat_map(|f| f.dirs)
    {
        total.files += dir.files;
        total.bytes += dir.bytes;
        total.allocated += dir.allocated;
    }
    Ok(total)
}

/// Turns per-directory figures (files directly inside) into totals per subtree,
/// sorted by path (so the root, a prefix of every other path, comes first).
fn add_up(mut dirs: Vec<DirUsage>) -> Vec<DirUsage> {
    dirs.sort_by(|a, b| a.path.cmp(&b.path));
    let index: HashMap<PathBuf, usize> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| (d.path.clone(), i))
        .collect();
    // Deepest first, so a directory is complete before it is added to its parent.
    let mut order: Vec<usize> = (0..dirs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(dirs[i].path.components().count()));
    for i in order {
        if let Some(&parent) = dirs[i].path.parent().and_then(|p| index.get(p)) {
            let (files, bytes, allocated) = (dirs[i].files, dirs[i].bytes, dirs[i].allocated);
            let p = &mut dirs[parent];
            p.files += files;
            p.bytes += bytes;
            p.allocated += allocated;
        }
    }
    dirs
}

fn open_dir(path: &Path, nofollow: bool) -> rustix::io::Result<OwnedFd> {
    let mut flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    if nofollow {
        flags |= OFlags::NOFOLLOW;
    }
    rustix::fs::open(path, flags, Mode::empty())
}

fn mount_id(fd: BorrowedFd<'_>) -> Option<u64> {
    let st = rustix::fs::statx(fd, "", AtFlags::EMPTY_PATH, StatxFlags::MNT_ID).ok()?;
    (st.stx_mask & StatxFlags::MNT_ID.bits() != 0).then_some(st.stx_mnt_id)
}

/// The size, disk usage and identity of a file.
struct FileFacts {
    size: u64,
    allocated: u64,
    shared: Option<(u64, u64)>,
}

fn facts(st: &rustix::fs::Statx) -> FileFacts {
    FileFacts {
        size: st.stx_size,
        allocated: st.stx_blocks.saturating_mul(512),
        shared: (st.stx_nlink > 1).then(|| {
            (
                (u64::from(st.stx_dev_major) << 32) | u64::from(st.stx_dev_minor),
                st.stx_ino,
            )
        }),
    }
}

const FACTS: StatxFlags = StatxFlags::SIZE
    .union(StatxFlags::BLOCKS)
    .union(StatxFlags::NLINK)
    .union(StatxFlags::INO)
    .union(StatxFlags::TYPE);

/// Hands a visited directory's subdirectories to the queue and marks the visit
/// finished, also if it panicked, so that the other threads never wait for it
/// forever.
struct Done<'a> {
    walk: &'a Walk,
    new_jobs: Vec<Job>,
}

impl Drop for Done<'_> {
    fn drop(&mut self) {
        let mut q = self
            .walk
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        q.busy -= 1;
        q.jobs.append(&mut self.new_jobs);
        drop(q);
        // New work, or possibly the end of the walk: whoever waits must look.
        self.walk.wake.notify_all();
    }
}

impl Walk {
    fn work(&self) -> Found {
        let mut found = Found::default();
        loop {
            let job = {
                let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    if let Some(job) = q.jobs.pop() {
                        q.busy += 1;
                        break Some(job);
                    }
                    if q.busy == 0 {
                        break None;
                    }
                    q = self.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
                }
            };
            let Some(job) = job else {
                self.wake.notify_all();
                return found;
            };
            let mut done = Done {
                walk: self,
                new_jobs: Vec::new(),
            };
            self.visit(job, &mut found, &mut done.new_jobs);
        }
    }

    fn skip(found: &mut Found, path: PathBuf, action: &'static str, e: Errno) {
        let reason = SkipReason::Unreadable(from_errno(&path, action, e));
        found.skipped.push(Skipped { path, reason });
    }

    /// Reads one directory: its own NOCOW state, its files, and queues its
    /// subdirectories.
    fn visit(&self, job: Job, found: &mut Found, new_jobs: &mut Vec<Job>) {
        let is_root = job.under_nocow.is_none();
        let fd = match open_dir(&job.path, !is_root) {
            Ok(fd) => fd,
            // Removed or replaced since it was listed.
            Err(Errno::NOENT | Errno::LOOP | Errno::NOTDIR) => return,
            Err(e) => return Self::skip(found, job.path, "opening", e),
        };
        if !is_root && self.root_mount.is_some() && mount_id(fd.as_fd()) != self.root_mount {
            found.skipped.push(Skipped {
                path: job.path,
                reason: SkipReason::OtherMount,
            });
            return;
        }
        let nocow = match self.audit.then(|| attributes::get(&fd, &job.path)) {
            None => false,
            Some(Ok(a)) => a.is_nocow(),
            Some(Err(e)) => {
                found.skipped.push(Skipped {
                    path: job.path.clone(),
                    reason: SkipReason::Unreadable(e),
                });
                false
            }
        };
        if is_root {
            found.root_nocow = nocow;
        }
        if job.under_nocow == Some(true) && !nocow {
            found.cow_dirs.push(job.path.clone());
        }
        let under_nocow = job.under_nocow.unwrap_or(false) || nocow;
        let mut usage = DirUsage {
            path: job.path.clone(),
            files: 0,
            bytes: 0,
            allocated: 0,
        };
        let dirfd = fd.as_fd();
        let mut buf = Vec::with_capacity(64 * 1024);
        let mut entries = rustix::fs::RawDir::new(dirfd, buf.spare_capacity_mut());
        while let Some(entry) = entries.next() {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    Self::skip(found, job.path.clone(), "listing", e);
                    break;
                }
            };
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let mut kind = entry.file_type();
            if kind == FileType::Unknown {
                match rustix::fs::statx(dirfd, name, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE) {
                    Ok(st) => kind = FileType::from_raw_mode(u32::from(st.stx_mode)),
                    Err(_) => continue,
                }
            }
            match kind {
                FileType::Directory => new_jobs.push(Job {
                    path: job.path.join(name),
                    under_nocow: Some(under_nocow),
                }),
                FileType::RegularFile => {
                    if self.audit && migrate::is_leftover(dirfd, name) {
                        found.leftovers.push(job.path.join(name));
                        continue;
                    }
                    let Some((facts, file_nocow)) =
                        Self::file(dirfd, &job.path, name, under_nocow, found)
                    else {
                        continue;
                    };
                    let counted = match facts.shared {
                        Some(id) => self
                            .linked
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .insert(id),
                        None => true,
                    };
                    if counted {
                        usage.files += 1;
                        usage.bytes += facts.size;
                        usage.allocated += facts.allocated;
                    }
                    if under_nocow && !file_nocow {
                        found.cow_files.push(CowFile {
                            path: job.path.join(name),
                            size: facts.size,
                            allocated: facts.allocated,
                        });
                    }
                }
                _ => {}
            }
        }
        found.dirs.push(usage);
    }

    /// The facts of one regular file, and whether it is NOCOW (only looked at
    /// below a NOCOW directory: elsewhere a `statx` is all it costs).
    fn file(
        dirfd: BorrowedFd<'_>,
        dir: &Path,
        name: &OsStr,
        under_nocow: bool,
        found: &mut Found,
    ) -> Option<(FileFacts, bool)> {
        if !under_nocow {
            return match rustix::fs::statx(dirfd, name, AtFlags::SYMLINK_NOFOLLOW, FACTS) {
                Ok(st) => Some((facts(&st), false)),
                Err(Errno::NOENT) => None,
                Err(e) => {
                    Self::skip(found, dir.join(name), "examining", e);
                    None
                }
            };
        }
        let fd = match rustix::fs::openat(
            dirfd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            // Gone, or replaced by a link, since it was listed.
            Err(Errno::NOENT | Errno::LOOP) => return None,
            Err(e) => {
                Self::skip(found, dir.join(name), "opening", e);
                return None;
            }
        };
        let attrs = match rustix::fs::ioctl_getflags(&fd) {
            Ok(f) => Attributes::from_bits_retain(f.bits()),
            Err(e) => {
                Self::skip(found, dir.join(name), "reading the attributes of", e);
                return None;
            }
        };
        match rustix::fs::statx(&fd, "", AtFlags::EMPTY_PATH, FACTS) {
            Ok(st) => Some((facts(&st), attrs.is_nocow())),
            Err(e) => {
                Self::skip(found, dir.join(name), "examining", e);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(path: &str, files: u64, bytes: u64) -> DirUsage {
        DirUsage {
            path: path.into(),
            files,
            bytes,
            allocated: bytes * 2,
        }
    }

    #[test]
    fn usage_adds_up_from_the_leaves() {
        let dirs = add_up(vec![
            usage("/d/a/b", 1, 10),
            usage("/d", 2, 1),
            usage("/d/a", 0, 0),
            usage("/d/c", 3, 100),
            usage("/d/a/b/e", 1, 1000),
        ]);
        let got: Vec<(&str, u64, u64, u64)> = dirs
            .iter()
            .map(|d| (d.path.to_str().unwrap(), d.files, d.bytes, d.allocated))
            .collect();
        assert_eq!(
            got,
            [
                ("/d", 7, 1111, 2222),
                ("/d/a", 2, 1010, 2020),
                ("/d/a/b", 2, 1010, 2020),
                ("/d/a/b/e", 1, 1000, 2000),
                ("/d/c", 3, 100, 200),
            ]
        );
    }

    #[test]
    fn the_root_comes_first_even_with_similar_names() {
        let dirs = add_up(vec![
            usage("/d-x", 1, 1),
            usage("/d/z", 1, 1),
            usage("/d", 1, 1),
        ]);
        assert_eq!(dirs[0].path, Path::new("/d"));
    }

    #[test]
    fn a_missing_root_is_an_error_not_an_empty_report() {
        let err = audit("/nonexistent/idbt-audit-root").unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    }
}
