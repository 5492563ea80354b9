//! Making sure a directory exists with the owner, mode and NOCOW state a service
//! needs, and saying beforehand what that would change.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use rustix::fd::OwnedFd;
use rustix::fs::{Gid, Mode, OFlags, Uid};
use rustix::io::Errno;

use crate::attributes::{self, NocowChange};
use crate::error::{Error, Result, from_errno, from_io};
use crate::filesystem::Filesystem;
use crate::path::file_in_the_way;
use crate::statfs::filesystem;

/// A numeric owner: user and group id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// What to do about NOCOW on a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Nocow {
    /// Copy-on-write off (`chattr +C`): for database files.
    On,
    /// Copy-on-write on (`chattr -C`), also when the parent is NOCOW.
    Off,
    /// Leave it as it is (or as a new directory inherits it from its parent).
    #[default]
    Leave,
}

/// The directory a service needs: where, owned by whom, with which mode, and
/// whether copy-on-write is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirSpec {
    /// The directory.
    pub path: PathBuf,
    /// Its owner; `None` leaves it (a new directory then belongs to the caller).
    pub owner: Option<Owner>,
    /// Its permission bits (at most `0o7777`); `None` leaves them (a new directory
    /// then gets `0o777` less the umask).
    pub mode: Option<u32>,
    /// Its NOCOW state.
    pub nocow: Nocow,
}

impl DirSpec {
    /// A directory at `path`, with owner, mode and NOCOW left as they are.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            owner: None,
            mode: None,
            nocow: Nocow::Leave,
        }
    }

    /// Owned by `uid`:`gid`.
    #[must_use]
    pub fn owner(mut self, uid: u32, gid: u32) -> Self {
        self.owner = Some(Owner { uid, gid });
        self
    }

    /// With these permission bits.
    #[must_use]
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    /// With this NOCOW state.
    #[must_use]
    pub fn nocow(mut self, nocow: Nocow) -> Self {
        self.nocow = nocow;
        self
    }
}

/// One thing [`ensure_dir`] changed, or [`plan_dir`] says it would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirChange {
    /// A missing parent directory is created (mode `0o777` less the umask, owned by
    /// the caller), outermost first.
    CreatedParent {
        /// The parent.
        path: PathBuf,
    },
    /// The directory itself is created, with the owner and mode asked for.
    Created,
    /// The owner of an existing directory is changed.
    OwnerChanged {
        /// The owner it had.
        from: Owner,
        /// The owner it gets.
        to: Owner,
    },
    /// The permission bits of an existing directory are changed.
    ModeChanged {
        /// The bits it had.
        from: u32,
        /// The bits it gets.
        to: u32,
    },
    /// NOCOW is turned on. Entries that already exist keep copy-on-write; audit the
    /// tree and migrate its files when this is not zero.
    NocowSet {
        /// How many entries the directory held when NOCOW was set.
        existing_entries: u64,
    },
    /// NOCOW is turned off (also for a new directory that would inherit it).
    NocowCleared,
}

/// What [`ensure_dir`] changed or [`plan_dir`] would change; no changes means the
/// directory already is as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirReport {
    /// The directory.
    pub path: PathBuf,
    /// The changes, in the order they are made.
    pub changes: Vec<DirChange>,
}

impl DirReport {
    /// Whether the directory already was as asked.
    pub fn is_unchanged(&self) -> bool {
        self.changes.is_empty()
    }
}

/// The state of an existing directory, as far as a spec asks about it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Existing {
    owner: Owner,
    mode: u32,
    filesystem: Filesystem,
    /// `None` when the filesystem has no inode attributes or NOCOW was not asked
    /// about.
    nocow: Option<bool>,
    /// Entries in it; counted only when NOCOW is about to be set.
    entries: u64,
}

/// What is on the host where a spec's directory is to be.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Observed {
    Exists(Existing),
    Missing {
        /// Parents to create, outermost first.
        parents: Vec<PathBuf>,
        /// The filesystem of the nearest existing ancestor.
        filesystem: Filesystem,
        /// Whether that ancestor is NOCOW, which new directories inherit.
        inherited_nocow: bool,
    },
}

/// The decision, without side effects: the changes that turn `observed` into
/// `spec`, or why it cannot be done.
fn decide(spec: &DirSpec, observed: &Observed) -> Result<Vec<DirChange>> {
    if let Some(mode) = spec.mode
        && mode > 0o7777
    {
        return Err(Error::InvalidMode {
            path: spec.path.clone(),
            mode,
        });
    }
    let not_supported = |filesystem| Error::NotSupported {
        path: spec.path.clone(),
        filesystem,
    };
    let mut changes = Vec::new();
    match observed {
        Observed::Exists(dir) => {
            match spec.nocow {
                Nocow::On if !dir.filesystem.is_btrfs() => {
                    return Err(not_supported(dir.filesystem));
                }
                Nocow::On if dir.nocow != Some(true) => changes.push(DirChange::NocowSet {
                    existing_entries: dir.entries,
                }),
                Nocow::Off if dir.nocow == Some(true) => changes.push(DirChange::NocowCleared),
                Nocow::On | Nocow::Off | Nocow::Leave => {}
            }
            if let Some(to) = spec.owner
                && to != dir.owner
            {
                changes.push(DirChange::OwnerChanged {
                    from: dir.owner,
                    to,
                });
            }
            if let Some(to) = spec.mode
                && to != dir.mode
            {
                changes.push(DirChange::ModeChanged { from: dir.mode, to });
            }
        }
        Observed::Missing {
            parents,
            filesystem,
            inherited_nocow,
        } => {
            if spec.nocow == Nocow::On && !filesystem.is_btrfs() {
                return Err(not_supported(*filesystem));
            }
            changes.extend(
                parents
                    .iter()
                    .map(|p| DirChange::CreatedParent { path: p.clone() }),
            );
            changes.push(DirChange::Created);
            match spec.nocow {
                Nocow::On if !inherited_nocow => changes.push(DirChange::NocowSet {
                    existing_entries: 0,
                }),
                Nocow::Off if *inherited_nocow => changes.push(DirChange::NocowCleared),
                Nocow::On | Nocow::Off | Nocow::Leave => {}
            }
        }
    }
    Ok(changes)
}

/// `""` (the parent of a one-component relative path) means the current directory.
fn non_empty(path: &Path) -> &Path {
    if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    }
}

/// Reads NOCOW of an existing directory; `None` where the filesystem has no inode
/// attributes at all.
fn read_nocow(path: &Path) -> Result<Option<bool>> {
    match attributes::attributes(path) {
        Ok(a) => Ok(Some(a.is_nocow())),
        Err(Error::NotSupported { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Looks at the host without changing it.
fn observe(spec: &DirSpec) -> Result<Observed> {
    let path = non_empty(&spec.path);
    match std::fs::metadata(path) {
        Ok(meta) => {
            if !meta.is_dir() {
                return Err(Error::NotADirectory {
                    path: path.to_path_buf(),
                });
            }
            let filesystem = filesystem(path)?;
            let nocow = if spec.nocow == Nocow::Leave {
                None
            } else {
                read_nocow(path)?
            };
            let entries = if spec.nocow == Nocow::On && nocow == Some(false) {
                let list = std::fs::read_dir(path)
                    .map_err(|e| from_io(path, "listing the entries of", e))?;
                list.count() as u64
            } else {
                0
            };
            Ok(Observed::Exists(Existing {
                owner: Owner {
                    uid: meta.uid(),
                    gid: meta.gid(),
                },
                mode: meta.mode() & 0o7777,
                filesystem,
                nocow,
                entries,
            }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if path.file_name().is_none() {
                return Err(Error::InvalidName {
                    path: path.to_path_buf(),
                });
            }
            let mut parents = Vec::new();
            let mut ancestor = non_empty(path.parent().unwrap_or(Path::new(".")));
            loop {
                match std::fs::metadata(ancestor) {
                    Ok(meta) if meta.is_dir() => break,
                    Ok(_) => {
                        return Err(Error::NotADirectory {
                            path: ancestor.to_path_buf(),
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        parents.push(ancestor.to_path_buf());
                        ancestor = non_empty(ancestor.parent().unwrap_or(Path::new(".")));
                    }
                    Err(e) => return Err(from_io(ancestor, "examining", e)),
                }
            }
            parents.reverse();
            Ok(Observed::Missing {
                parents,
                filesystem: filesystem(ancestor)?,
                inherited_nocow: read_nocow(ancestor)?.unwrap_or(false),
            })
        }
        // A file in the way of a parent.
        Err(e) if Errno::from_io_error(&e) == Some(Errno::NOTDIR) => Err(Error::NotADirectory {
            path: file_in_the_way(path),
        }),
        Err(e) => Err(from_io(path, "examining", e)),
    }
}

/// What [`ensure_dir`] would change, without changing anything: the same report,
/// or the same error, that `ensure_dir` would give now.
///
/// # Errors
/// As [`ensure_dir`].
pub fn plan_dir(spec: &DirSpec) -> Result<DirReport> {
    let observed = observe(spec)?;
    Ok(DirReport {
        path: spec.path.clone(),
        changes: decide(spec, &observed)?,
    })
}

/// Opens a directory read-only; an error says it failed while `action`.
pub(crate) fn open_dir(path: &Path, action: &'static str) -> Result<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::NOTDIR => Error::NotADirectory {
            path: file_in_the_way(path),
        },
        e => from_errno(path, action, e),
    })
}

fn mkdir(path: &Path, mode: u32) -> Result<bool> {
    match rustix::fs::mkdir(path, Mode::from_raw_mode(mode)) {
        Ok(()) => Ok(true),
        // Created meanwhile by someone else: fine if it is a directory.
        Err(Errno::EXIST) if path.is_dir() => Ok(false),
        Err(e) => Err(from_errno(path, "creating", e)),
    }
}

/// Makes the directory exist as `spec` says: creates it (and its parents), sets or
/// clears NOCOW while it is still empty, then gives it its owner and mode; or, for
/// an existing one, changes what differs. Reports what it changed.
///
/// Everything is checked before anything is changed, so an error from the checks
/// (a file in the way, NOCOW asked for on ext4, an invalid mode) changes nothing.
///
/// # Errors
/// [`Error::NotADirectory`] (naming the file in the way), [`Error::NotSupported`]
/// for NOCOW off BTRFS, [`Error::InvalidMode`], [`Error::InvalidName`],
/// [`Error::PermissionDenied`], [`Error::ReadOnly`], [`Error::Io`].
pub fn ensure_dir(spec: &DirSpec) -> Result<DirReport> {
    let changes = plan_dir(spec)?.changes;
    let path = non_empty(&spec.path);
    let mut fd = None;
    for change in &changes {
        match change {
            DirChange::CreatedParent { path } => {
                mkdir(path, 0o777)?;
            }
            DirChange::Created => {
                // Private until owner and mode are set, when those are asked for.
                let initial = if spec.mode.is_some() || spec.owner.is_some() {
                    0o700
                } else {
                    0o777
                };
                mkdir(path, initial)?;
                let dir = open_dir(path, "opening")?;
                if let Some(owner) = spec.owner {
                    chown(&dir, path, owner)?;
                }
                if let Some(mode) = spec.mode {
                    chmod(&dir, path, mode)?;
                }
                fd = Some(dir);
            }
            DirChange::NocowSet { .. } | DirChange::NocowCleared => {
                let dir = match fd.take() {
                    Some(dir) => dir,
                    None => open_dir(path, "opening")?,
                };
                let on = matches!(change, DirChange::NocowSet { .. });
                let done = attributes::set_nocow_fd(&dir, path, on, 0)?;
                debug_assert_ne!(done, NocowChange::AlreadySo);
                fd = Some(dir);
            }
            DirChange::OwnerChanged { to, .. } => {
                let dir = match fd.take() {
                    Some(dir) => dir,
                    None => open_dir(path, "opening")?,
                };
                chown(&dir, path, *to)?;
                fd = Some(dir);
            }
            DirChange::ModeChanged { to, .. } => {
                let dir = match fd.take() {
                    Some(dir) => dir,
                    None => open_dir(path, "opening")?,
                };
                chmod(&dir, path, *to)?;
                fd = Some(dir);
            }
        }
    }
    Ok(DirReport {
        path: spec.path.clone(),
        changes,
    })
}

fn chown(dir: &OwnedFd, path: &Path, owner: Owner) -> Result<()> {
    rustix::fs::fchown(
        dir,
        Some(Uid::from_raw(owner.uid)),
        Some(Gid::from_raw(owner.gid)),
    )
    .map_err(|e| from_errno(path, "changing the owner of", e))
}

fn chmod(dir: &OwnedFd, path: &Path, mode: u32) -> Result<()> {
    rustix::fs::fchmod(dir, Mode::from_raw_mode(mode))
        .map_err(|e| from_errno(path, "changing the mode of", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: Owner = Owner { uid: 0, gid: 0 };
    const PG: Owner = Owner { uid: 999, gid: 999 };

    fn existing(nocow: Option<bool>, filesystem: Filesystem) -> Observed {
        Observed::Exists(Existing {
            owner: ROOT,
            mode: 0o755,
            filesystem,
            nocow,
            entries: 3,
        })
    }

    fn missing(parents: &[&str], filesystem: Filesystem, inherited_nocow: bool) -> Observed {
        Observed::Missing {
            parents: parents.iter().map(PathBuf::from).collect(),
            filesystem,
            inherited_nocow,
        }
    }

    fn spec() -> DirSpec {
        DirSpec::new("/pool/containers/postgres")
    }

    #[test]
    fn a_directory_that_is_as_asked_needs_nothing() {
        let s = spec().owner(0, 0).mode(0o755).nocow(Nocow::On);
        let c = decide(&s, &existing(Some(true), Filesystem::Btrfs)).unwrap();
        assert!(c.is_empty(), "{c:?}");
    }

    #[test]
    fn an_existing_directory_gets_what_differs() {
        let s = spec().owner(999, 999).mode(0o700).nocow(Nocow::On);
        let c = decide(&s, &existing(Some(false), Filesystem::Btrfs)).unwrap();
        assert_eq!(
            c,
            [
                DirChange::NocowSet {
                    existing_entries: 3
                },
                DirChange::OwnerChanged { from: ROOT, to: PG },
                DirChange::ModeChanged {
                    from: 0o755,
                    to: 0o700
                },
            ]
        );
    }

    #[test]
    fn nocow_off_clears_only_what_is_set() {
        let s = spec().nocow(Nocow::Off);
        assert_eq!(
            decide(&s, &existing(Some(true), Filesystem::Btrfs)).unwrap(),
            [DirChange::NocowCleared]
        );
        assert!(
            decide(&s, &existing(Some(false), Filesystem::Btrfs))
                .unwrap()
                .is_empty()
        );
        // Off where NOCOW cannot exist is already so.
        assert!(
            decide(&s, &existing(None, Filesystem::Tmpfs))
                .unwrap()
                .is_empty()
        );
        assert!(
            decide(&s, &existing(Some(false), Filesystem::Ext4))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn leave_never_touches_nocow() {
        let s = spec();
        assert!(
            decide(&s, &existing(Some(true), Filesystem::Btrfs))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            decide(&s, &missing(&[], Filesystem::Ext4, false)).unwrap(),
            [DirChange::Created]
        );
    }

    #[test]
    fn nocow_on_off_btrfs_is_not_supported() {
        let s = spec().nocow(Nocow::On);
        for observed in [
            existing(Some(false), Filesystem::Ext4),
            existing(None, Filesystem::Tmpfs),
            missing(&["/pool/containers"], Filesystem::Xfs, false),
        ] {
            match decide(&s, &observed) {
                Err(Error::NotSupported { path, .. }) => assert_eq!(path, s.path),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_new_directory_is_created_with_its_parents_first() {
        let s = spec().owner(999, 999).mode(0o700).nocow(Nocow::On);
        let c = decide(
            &s,
            &missing(&["/pool/containers"], Filesystem::Btrfs, false),
        )
        .unwrap();
        assert_eq!(
            c,
            [
                DirChange::CreatedParent {
                    path: "/pool/containers".into()
                },
                DirChange::Created,
                DirChange::NocowSet {
                    existing_entries: 0
                },
            ]
        );
    }

    #[test]
    fn a_new_directory_inherits_nocow_from_its_parent() {
        let on = spec().nocow(Nocow::On);
        assert_eq!(
            decide(&on, &missing(&[], Filesystem::Btrfs, true)).unwrap(),
            [DirChange::Created]
        );
        let off = spec().nocow(Nocow::Off);
        assert_eq!(
            decide(&off, &missing(&[], Filesystem::Btrfs, true)).unwrap(),
            [DirChange::Created, DirChange::NocowCleared]
        );
    }

    #[test]
    fn a_mode_beyond_the_permission_bits_is_refused() {
        let s = spec().mode(0o40755);
        match decide(&s, &existing(Some(false), Filesystem::Btrfs)) {
            Err(Error::InvalidMode { mode, .. }) => assert_eq!(mode, 0o40755),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn report_without_changes_is_unchanged() {
        let r = DirReport {
            path: "/x".into(),
            changes: vec![],
        };
        assert!(r.is_unchanged());
    }
}
