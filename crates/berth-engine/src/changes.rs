//! What a container changed, read from its writable layer (the snapshot's upper directory): an
//! overlayfs whiteout is a deletion, an opaque directory a change whose contents are all new, and
//! anything else a change when the image's layers already had it, an addition when not. It reads
//! the upper and lower directories through fds and never follows a symlink in either.

use crate::container::{EngineError, Result};
use crate::record::Record;
use crate::tree_tar::{file_type, handle_at, is_opaque, is_whiteout, names, open_dir};
use crate::Engine;
use nix::fcntl::{open, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, FileStat, Mode, SFlag};
use std::collections::HashSet;
use std::os::fd::{AsFd, OwnedFd};
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

fn err(m: impl std::fmt::Display) -> EngineError {
    EngineError::msg(m.to_string())
}

/// Opens a directory of the store (trusted path) as an `O_PATH` handle.
pub(crate) fn open_store_dir(p: &Path) -> Result<OwnedFd> {
    open(
        p,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err(format!("{}: {e}", p.display())))
}

/// Mount targets the runtime made in the writable layer (`/proc`, `/etc/hosts`…), from the spec the
/// container last ran with: left out of `diff` and `commit` while they are empty placeholders.
pub fn placeholders(e: &Engine, rec: &Record) -> HashSet<PathBuf> {
    let spec = e.records.dir(&rec.id).join("config.json");
    let Ok(bytes) = std::fs::read(spec) else {
        return HashSet::new();
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let mut out: HashSet<PathBuf> = v["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["destination"].as_str())
        .map(|d| PathBuf::from(d.trim_start_matches('/')))
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    out.extend(
        rec.mounts
            .iter()
            .map(|m| PathBuf::from(m.destination.trim_start_matches('/'))),
    );
    out
}

/// The image's layers as one read-only view: lookups with overlayfs's rules.
struct Lowers(Vec<OwnedFd>);

impl Lowers {
    fn open(e: &Engine, id: &str) -> Result<Lowers> {
        let m = e.snapshots.mounts(id).map_err(err)?;
        let fds = m
            .lowers
            .iter()
            .map(|l| open_store_dir(l))
            .collect::<Result<Vec<_>>>()?;
        Ok(Lowers(fds))
    }

    fn lstat_in(layer: &OwnedFd, rel: &Path) -> Option<FileStat> {
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        let fd = openat2(layer.as_fd(), rel, how).ok()?;
        fstat(fd.as_fd()).ok()
    }

    fn opaque_in(layer: &OwnedFd, rel: &Path) -> bool {
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        openat2(layer.as_fd(), rel, how).is_ok_and(|fd| is_opaque(fd.as_fd()))
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
    fn dir(&mut self, dir: &OwnedFd, rel: &Path, all_new: bool) -> Result<bool> {
        let io = |x: std::io::Error| err(format!("writable layer /{}: {x}", rel.display()));
        let mut any = false;
        for n in names(dir.as_fd()).map_err(io)? {
            let h = handle_at(dir.as_fd(), &n).map_err(io)?;
            let st = fstat(h.as_fd()).map_err(|x| io(x.into()))?;
            any |= self.entry(&h, &st, &rel.join(&n), all_new)?;
        }
        Ok(any)
    }

    fn entry(&mut self, h: &OwnedFd, st: &FileStat, rel: &Path, all_new: bool) -> Result<bool> {
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
        let d = open_dir(h.as_fd())
            .map_err(|x| err(format!("writable layer /{}: {x}", rel.display())))?;
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

/// `diff`: the container's changes, parents before children.
pub fn changes(e: &Engine, rec: &Record) -> Result<Vec<Change>> {
    let upper = open_store_dir(&e.snapshots.upper_dir(&rec.id))
        .map_err(|x| err(format!("container {}: writable layer: {x}", rec.name)))?;
    let skip = placeholders(e, rec);
    let mut scan = Scan {
        lowers: Lowers::open(e, &rec.id)?,
        skip: &skip,
        out: Vec::new(),
    };
    scan.dir(&upper, Path::new(""), false)?;
    let mut out = scan.out;
    out.sort_by(|a, b| a.path.components().cmp(b.path.components()));
    Ok(out)
}

/// Apparent bytes of the regular files in a container's writable layer (Docker's `SizeRw`).
pub fn upper_size(e: &Engine, id: &str) -> u64 {
    tree_size(&e.snapshots.upper_dir(id))
}

/// Apparent bytes of the regular files under a directory, walked through fds.
pub(crate) fn tree_size(dir: &Path) -> u64 {
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
