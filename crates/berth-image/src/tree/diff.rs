//! What a writable layer changed against the layers below it: an overlayfs whiteout is a
//! deletion, an opaque directory a change whose contents are all new, and anything else a change
//! when the lower layers already had it, an addition when not. It reads the upper and lower
//! directories through fds and never follows a symlink in either.

use super::{file_type, handle_at, is_opaque, is_whiteout, names, open_dir};
use berth_sys::root::{open_at, Resolve::BeneathNoSymlinks};
use nix::fcntl::{open, OFlag};
use nix::sys::stat::{fstat, FileStat, Mode, SFlag};
use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Changed,
    Added,
    Deleted,
}

impl Kind {
    /// Docker's letter: `C`, `A`, `D`.
    pub fn letter(self) -> char {
        match self {
            Kind::Changed => 'C',
            Kind::Added => 'A',
            Kind::Deleted => 'D',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: Kind,
    /// Relative to the container's root, without the leading `/`.
    pub path: PathBuf,
}

/// Opens a directory of the store (a trusted path) as an `O_PATH` handle.
pub fn open_store_dir(p: &Path) -> io::Result<OwnedFd> {
    open(
        p,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("{}: {e}", p.display())))
}

/// The image's layers as one read-only view: lookups with overlayfs's rules.
struct Lowers(Vec<OwnedFd>);

impl Lowers {
    fn lstat_in(layer: &OwnedFd, rel: &Path) -> Option<FileStat> {
        let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW;
        let fd = open_at(
            layer.as_fd(),
            rel.as_os_str().as_bytes(),
            flags,
            BeneathNoSymlinks,
        );
        fstat(fd.ok()?.as_fd()).ok()
    }

    fn opaque_in(layer: &OwnedFd, rel: &Path) -> bool {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
        open_at(
            layer.as_fd(),
            rel.as_os_str().as_bytes(),
            flags,
            BeneathNoSymlinks,
        )
        .is_ok_and(|fd| is_opaque(fd.as_fd()))
    }

    /// The entry at `rel` as the merged lower layers show it: a whiteout or a non-directory in a
    /// higher layer hides what lies below, an opaque directory hides the layers under it.
    fn stat(&self, rel: &Path) -> Option<FileStat> {
        let comps: Vec<_> = rel.components().collect();
        let mut layers: Vec<&OwnedFd> = self.0.iter().collect();
        let mut prefix = PathBuf::new();
        for (i, c) in comps.iter().enumerate() {
            prefix.push(c);
            let last = i + 1 == comps.len();
            let mut next = Vec::new();
            for l in layers {
                let Some(st) = Self::lstat_in(l, &prefix) else {
                    continue;
                };
                if is_whiteout(&st) {
                    break;
                }
                if last {
                    return Some(st);
                }
                if file_type(&st) != SFlag::S_IFDIR {
                    break;
                }
                next.push(l);
                if Self::opaque_in(l, &prefix) {
                    break;
                }
            }
            if next.is_empty() {
                return None;
            }
            layers = next;
        }
        None
    }
}

struct Scan<'a> {
    lowers: Lowers,
    skip: &'a HashSet<PathBuf>,
    out: Vec<Change>,
}

impl Scan<'_> {
    /// Records what changed under `dir` (an upper directory handle at `rel`); true when anything did.
    fn dir(&mut self, dir: &OwnedFd, rel: &Path, all_new: bool) -> io::Result<bool> {
        let io = |x: io::Error| {
            io::Error::new(x.kind(), format!("writable layer /{}: {x}", rel.display()))
        };
        let mut any = false;
        for n in names(dir.as_fd()).map_err(io)? {
            let h = handle_at(dir.as_fd(), &n).map_err(io)?;
            let st = fstat(h.as_fd()).map_err(|x| io(x.into()))?;
            any |= self.entry(&h, &st, &rel.join(&n), all_new)?;
        }
        Ok(any)
    }

    fn entry(&mut self, h: &OwnedFd, st: &FileStat, rel: &Path, all_new: bool) -> io::Result<bool> {
        if is_whiteout(st) {
            self.push(Kind::Deleted, rel);
            return Ok(true);
        }
        let lower = if all_new { None } else { self.lowers.stat(rel) };
        let is_dir = file_type(st) == SFlag::S_IFDIR;
        if lower.is_none() && self.skip.contains(rel) && is_placeholder(h, st, is_dir) {
            return Ok(false);
        }
        if !is_dir {
            let kind = if lower.is_some() {
                Kind::Changed
            } else {
                Kind::Added
            };
            self.push(kind, rel);
            return Ok(true);
        }
        let d = open_dir(h.as_fd()).map_err(|x| {
            io::Error::new(x.kind(), format!("writable layer /{}: {x}", rel.display()))
        })?;
        let opaque = is_opaque(d.as_fd());
        let at = self.out.len();
        let below = self.dir(h, rel, all_new || opaque)?;
        let kind = match lower {
            None => Some(Kind::Added),
            Some(l) if opaque || below || meta_differs(&l, st) => Some(Kind::Changed),
            Some(_) => None,
        };
        if let Some(k) = kind {
            self.out.insert(
                at,
                Change {
                    kind: k,
                    path: rel.into(),
                },
            );
        }
        Ok(kind.is_some())
    }

    fn push(&mut self, kind: Kind, rel: &Path) {
        self.out.push(Change {
            kind,
            path: rel.into(),
        });
    }
}

/// An empty directory or empty regular file: what a mount target is before anything is written.
fn is_placeholder(h: &OwnedFd, st: &FileStat, is_dir: bool) -> bool {
    match file_type(st) {
        SFlag::S_IFREG => st.st_size == 0,
        _ if is_dir => names(h.as_fd()).is_ok_and(|n| n.is_empty()),
        _ => false,
    }
}

/// A directory's own change (its listing aside): mode or owner. Its mtime moves whenever a mount
/// target is made in it, so it does not count.
fn meta_differs(lower: &FileStat, upper: &FileStat) -> bool {
    lower.st_mode != upper.st_mode || lower.st_uid != upper.st_uid || lower.st_gid != upper.st_gid
}

/// The changes of the writable layer `upper` over `lowers` (top first), parents before
/// children; `skip` holds the mount targets a runtime made (relative paths), left out while they
/// are still empty placeholders.
pub fn diff(upper: &Path, lowers: &[PathBuf], skip: &HashSet<PathBuf>) -> io::Result<Vec<Change>> {
    let upper = open_store_dir(upper)?;
    let lowers = Lowers(
        lowers
            .iter()
            .map(|l| open_store_dir(l))
            .collect::<io::Result<Vec<_>>>()?,
    );
    let mut scan = Scan {
        lowers,
        skip,
        out: Vec::new(),
    };
    scan.dir(&upper, Path::new(""), false)?;
    let mut out = scan.out;
    out.sort_by(|a, b| a.path.components().cmp(b.path.components()));
    Ok(out)
}

/// Apparent bytes of the regular files under a directory, walked through fds.
pub fn tree_size(dir: &Path) -> u64 {
    fn walk(dir: &OwnedFd) -> u64 {
        let Ok(list) = names(dir.as_fd()) else {
            return 0;
        };
        let mut sum = 0;
        for n in list {
            let Ok(h) = handle_at(dir.as_fd(), &n) else {
                continue;
            };
            let Ok(st) = fstat(h.as_fd()) else { continue };
            match file_type(&st) {
                SFlag::S_IFREG => sum += st.st_size as u64,
                SFlag::S_IFDIR => sum += walk(&h),
                _ => {}
            }
        }
        sum
    }
    open_store_dir(dir).map(|d| walk(&d)).unwrap_or(0)
}
