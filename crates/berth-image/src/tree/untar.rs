//! A tar stream extracted into a directory tree that may be hostile (a container's root): every
//! entry's parent is resolved by the kernel with `openat2(RESOLVE_IN_ROOT)` against the tree's root
//! fd, and the entry itself is made with an `*at` call that never follows a final symlink. Entry
//! names with `..` are refused; nothing is ever created outside the root.

use super::file_type;
use berth_sys::root as inroot;
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fstatat, futimens, mkdirat, mknodat, utimensat, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use tar::EntryType;

/// Where entries land: `base` (a path inside `root`, itself resolved in the root) plus the name.
pub struct Target<'a> {
    pub root: BorrowedFd<'a>,
    pub base: PathBuf,
    /// Give entries the archive's owners (`cp -a`); otherwise they belong to the caller.
    pub keep_owner: bool,
    /// A user-namespaced container's map: the archive's owners are its ids (made host ids
    /// here), and entries not given the archive's owners belong to its root, not the caller.
    pub owners: Option<&'a crate::snapshot::IdMap>,
}

/// Whose extracted entries are: `ids` gives the host owner to set, if any.
#[derive(Clone, Copy)]
struct Owners<'a> {
    keep: bool,
    map: Option<&'a crate::snapshot::IdMap>,
}

impl Owners<'_> {
    fn ids(&self, h: &tar::Header) -> io::Result<Option<(Uid, Gid)>> {
        let (uid, gid) = match (self.keep, self.map) {
            (false, None) => return Ok(None),
            (true, None) => (h.uid()? as u32, h.gid()? as u32),
            (keep, Some(m)) => {
                let (u, g) = if keep {
                    (h.uid()? as u32, h.gid()? as u32)
                } else {
                    (0, 0)
                };
                let unmapped =
                    || io::Error::other(format!("owner {u}:{g} is not mapped in the container"));
                (
                    m.host_uid(u).ok_or_else(unmapped)?,
                    m.host_gid(g).ok_or_else(unmapped)?,
                )
            }
        };
        Ok(Some((Uid::from_raw(uid), Gid::from_raw(gid))))
    }
}

fn err(what: &Path, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{}: {e}", what.display()))
}

/// An archive name as components, or an error when it would climb out (`..`).
fn clean(raw: &[u8]) -> io::Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(OsStr::from_bytes(raw)).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(io::Error::other(format!(
                    "archive entry {:?}: path escapes the destination",
                    String::from_utf8_lossy(raw)
                )))
            }
        }
    }
    Ok(out)
}

/// Extracts `reader` into the target. Returns the bytes of file data written.
pub fn untar(reader: impl Read, t: &Target<'_>) -> io::Result<u64> {
    let mut archive = tar::Archive::new(crate::tarfmt::Compat::new(reader));
    let mut dirs: Vec<(PathBuf, tar::Header)> = Vec::new();
    let mut bytes = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let rel = clean(&entry.path_bytes())?;
        let ty = entry.header().entry_type();
        if matches!(ty, EntryType::XGlobalHeader | EntryType::XHeader) {
            continue;
        }
        if rel.as_os_str().is_empty() {
            if ty == EntryType::Directory {
                dirs.push((rel, entry.header().clone()));
            }
            continue;
        }
        let full = t.base.join(&rel);
        let parent_path = full.parent().unwrap_or(Path::new("/"));
        let name = rel
            .file_name()
            .expect("a cleaned, non-empty path has a name");
        let parent = inroot::open(t.root.as_raw_fd(), parent_path, libc::O_DIRECTORY)
            .map_err(|e| err(parent_path, e))?;
        let p = parent.as_fd();
        let existing = fstatat(p, name, AtFlags::AT_SYMLINK_NOFOLLOW).ok();
        let is_dir = existing.is_some_and(|s| file_type(&s) == SFlag::S_IFDIR);
        if ty == EntryType::Directory {
            if existing.is_some() && !is_dir {
                unlinkat(p, name, UnlinkatFlags::NoRemoveDir).map_err(|e| err(&full, e))?;
            }
            if !is_dir {
                mkdirat(p, name, Mode::from_bits_truncate(0o700)).map_err(|e| err(&full, e))?;
            }
            dirs.push((rel, entry.header().clone()));
            continue;
        }
        if is_dir {
            return Err(io::Error::other(format!(
                "cannot overwrite directory {} with non-directory",
                full.display()
            )));
        }
        if existing.is_some() {
            unlinkat(p, name, UnlinkatFlags::NoRemoveDir).map_err(|e| err(&full, e))?;
        }
        let h = entry.header().clone();
        match ty {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                bytes += file(
                    p,
                    name,
                    &mut entry,
                    &h,
                    Owners {
                        keep: t.keep_owner,
                        map: t.owners,
                    },
                )
                .map_err(|e| err(&full, e))?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| err(&full, "symlink without a target"))?;
                symlinkat(OsStr::from_bytes(&target), p, name).map_err(|e| err(&full, e))?;
                meta_at(
                    p,
                    name,
                    &h,
                    Owners {
                        keep: t.keep_owner,
                        map: t.owners,
                    },
                )
                .map_err(|e| err(&full, e))?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| err(&full, "hardlink without a target"))?;
                let target = t.base.join(clean(&target)?);
                let tparent = target.parent().unwrap_or(Path::new("/"));
                let tdir = inroot::open(t.root.as_raw_fd(), tparent, libc::O_DIRECTORY)
                    .map_err(|e| err(&target, e))?;
                let tname = target.file_name().unwrap_or_default();
                linkat(tdir.as_fd(), tname, p, name, AtFlags::empty())
                    .map_err(|e| err(&full, e))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let kind = match ty {
                    EntryType::Char => SFlag::S_IFCHR,
                    EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let dev = libc::makedev(
                    h.device_major()?.unwrap_or(0),
                    h.device_minor()?.unwrap_or(0),
                );
                mknodat(p, name, kind, Mode::from_bits_truncate(0o600), dev)
                    .map_err(|e| err(&full, e))?;
                meta_at(
                    p,
                    name,
                    &h,
                    Owners {
                        keep: t.keep_owner,
                        map: t.owners,
                    },
                )
                .map_err(|e| err(&full, e))?;
                chmod_node(p, name, &h).map_err(|e| err(&full, e))?;
            }
            other => {
                return Err(err(
                    &full,
                    format!("unsupported entry type {:?}", other.as_byte() as char),
                ))
            }
        }
    }
    // Directories last and deepest first, so their modes and times survive what went into them.
    for (rel, h) in dirs.iter().rev() {
        let full = t.base.join(rel);
        let handle = inroot::open(t.root.as_raw_fd(), &full, libc::O_DIRECTORY)
            .map_err(|e| err(&full, e))?;
        let dir = super::open_dir(handle.as_fd()).map_err(|e| err(&full, e))?;
        meta_fd(
            dir.as_fd(),
            h,
            Owners {
                keep: t.keep_owner,
                map: t.owners,
            },
        )
        .map_err(|e| err(&full, e))?;
    }
    Ok(bytes)
}

fn file(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    entry: &mut impl Read,
    h: &tar::Header,
    owners: Owners<'_>,
) -> io::Result<u64> {
    let fd = openat(
        dir,
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )?;
    let mut f = std::fs::File::from(fd);
    let n = io::copy(entry, &mut f)?;
    meta_fd(f.as_fd(), h, owners)?;
    Ok(n)
}

/// Owner, mode and mtime on an open file or directory (owner first: chown clears setuid).
fn meta_fd(fd: BorrowedFd<'_>, h: &tar::Header, owners: Owners<'_>) -> io::Result<()> {
    if let Some((uid, gid)) = owners.ids(h)? {
        fchown(fd, Some(uid), Some(gid))?;
    }
    fchmod(fd, Mode::from_bits_truncate(h.mode()? & 0o7777))?;
    let t = TimeSpec::new(h.mtime()? as i64, 0);
    futimens(fd, &t, &t)?;
    Ok(())
}

/// Owner and mtime of an entry that cannot be opened (a symlink, a device), not following it.
fn meta_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    h: &tar::Header,
    owners: Owners<'_>,
) -> io::Result<()> {
    if let Some((uid, gid)) = owners.ids(h)? {
        fchownat(
            dir,
            name,
            Some(uid),
            Some(gid),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
    }
    let t = TimeSpec::new(h.mtime()? as i64, 0);
    utimensat(dir, name, &t, &t, UtimensatFlags::NoFollowSymlink)?;
    Ok(())
}

/// The mode of a device node or fifo just made: set through an `O_PATH` handle on the node itself
/// (`fchmodat` cannot refuse to follow a symlink on every kernel).
fn chmod_node(dir: BorrowedFd<'_>, name: &OsStr, h: &tar::Header) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let handle = super::handle_at(dir, name)?;
    if file_type(&nix::sys::stat::fstat(handle.as_fd())?) == SFlag::S_IFLNK {
        return Err(Errno::ELOOP.into());
    }
    std::fs::set_permissions(
        format!("/proc/self/fd/{}", handle.as_raw_fd()),
        std::fs::Permissions::from_mode(h.mode()? & 0o7777),
    )
}
