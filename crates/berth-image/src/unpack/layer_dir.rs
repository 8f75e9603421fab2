//! The layer directory as a tree of fds. Every parent directory is opened with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` relative to the layer root, so no symlink or
//! `..` in the layer leads out of it; final components are made and removed with `*at` calls that
//! never follow a symlink. Never joins an entry name onto a host path.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

/// How every directory is opened: readable (fsetxattr, fchmod and futimens need a real fd), close-on-exec.
const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_CLOEXEC);

/// Mode of directories the layer does not list but its entries need.
const IMPLICIT_DIR_MODE: u32 = 0o755;

/// The root of one layer's diff directory and the directory the latest entry was made in.
pub(super) struct LayerDir {
    root: OwnedFd,
    /// The directory of the latest operation below the root, by cleaned path. Tar streams list a
    /// directory's entries together, so this saves most resolutions. It stays right because an
    /// entry replaces (removes) only a name in the directory just resolved: the cached one, or the
    /// root, which clears the cache.
    cached: Option<(Vec<u8>, OwnedFd)>,
}

impl LayerDir {
    pub(super) fn open(dest: &Path) -> io::Result<LayerDir> {
        let root = openat(nix::fcntl::AT_FDCWD, dest, DIR_FLAGS, Mode::empty())?;
        Ok(LayerDir { root, cached: None })
    }

    pub(super) fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// The directory at cleaned path `path` (empty: the root), creating missing ones (mode 0755).
    pub(super) fn dir(&mut self, path: &[u8]) -> io::Result<BorrowedFd<'_>> {
        if path.is_empty() {
            self.cached = None;
            return Ok(self.root.as_fd());
        }
        match &mut self.cached {
            Some((p, _)) if p.as_slice() == path => {}
            slot => {
                let fd = resolve_dir(self.root.as_fd(), path)?;
                *slot = Some((path.to_vec(), fd));
            }
        }
        Ok(match &self.cached {
            Some((_, fd)) => fd.as_fd(),
            None => self.root.as_fd(),
        })
    }

    /// Makes `fd` (the directory at `path`, just made) the cached one: its entries come next.
    pub(super) fn cache(&mut self, path: &[u8], fd: OwnedFd) {
        match &mut self.cached {
            Some((p, old)) => {
                p.clear();
                p.extend_from_slice(path);
                *old = fd;
            }
            slot => *slot = Some((path.to_vec(), fd)),
        }
    }
}

/// Opens the existing directory at `path` inside the layer, never leaving it.
pub(super) fn open_dir_in_root(
    root: BorrowedFd<'_>,
    path: &[u8],
    extra: OFlag,
) -> io::Result<OwnedFd> {
    berth_sys::root::open_at(
        root,
        path,
        DIR_FLAGS | extra,
        berth_sys::root::Resolve::InRoot,
    )
}

fn resolve_dir(root: BorrowedFd<'_>, path: &[u8]) -> io::Result<OwnedFd> {
    match open_dir_in_root(root, path, OFlag::empty()) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => create_dirs(root, path),
        r => r,
    }
}

/// Walks `path` one component at a time, making the missing ones. Once one is missing, the rest are
/// made without lookups.
fn create_dirs(root: BorrowedFd<'_>, path: &[u8]) -> io::Result<OwnedFd> {
    let mut cur: Option<OwnedFd> = None;
    let mut missing = false;
    let mut end = 0;
    for comp in path.split(|&b| b == b'/') {
        end += comp.len();
        let found = if missing {
            None
        } else {
            match open_dir_in_root(root, &path[..end], OFlag::empty()) {
                Ok(fd) => Some(fd),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => None,
                Err(e) => return Err(e),
            }
        };
        let fd = match found {
            Some(fd) => fd,
            None => {
                missing = true;
                let parent = cur.as_ref().map_or(root, |f| f.as_fd());
                match mkdirat(parent, comp, Mode::from_bits_truncate(IMPLICIT_DIR_MODE)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                // A dangling symlink in the way fails here (ELOOP) instead of being followed.
                openat(parent, comp, DIR_FLAGS | OFlag::O_NOFOLLOW, Mode::empty())?
            }
        };
        cur = Some(fd);
        end += 1;
    }
    cur.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Makes directory `name` in `parent` (or keeps the directory already there; anything else there is
/// removed first) and opens it.
pub(super) fn make_dir(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    let mode = Mode::from_bits_truncate(IMPLICIT_DIR_MODE);
    match mkdirat(parent, name, mode) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            let st = fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
            if st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFDIR.bits() {
                remove(parent, name)?;
                mkdirat(parent, name, mode)?;
            }
        }
        Err(e) => return Err(e.into()),
    }
    Ok(openat(
        parent,
        name,
        DIR_FLAGS | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )?)
}

/// Runs `create`; if `name` already exists in `parent`, removes it (a later entry wins) and runs
/// `create` once more.
pub(super) fn replacing<T>(
    parent: BorrowedFd<'_>,
    name: &[u8],
    mut create: impl FnMut() -> nix::Result<T>,
) -> io::Result<T> {
    match create() {
        Err(Errno::EEXIST) => {
            remove(parent, name)?;
            Ok(create()?)
        }
        r => Ok(r?),
    }
}

/// Removes `name` from `parent`, a directory with everything under it; never follows a symlink.
pub(super) fn remove(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    match unlinkat(parent, name, UnlinkatFlags::NoRemoveDir) {
        Err(Errno::EISDIR) => remove_tree(parent, name),
        r => Ok(r?),
    }
}

fn remove_tree(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let fd = openat(parent, name, DIR_FLAGS | OFlag::O_NOFOLLOW, Mode::empty())?;
    let mut dir = Dir::from_fd(fd)?;
    let mut children: Vec<CString> = Vec::new();
    for entry in dir.iter() {
        let name = entry?.file_name().to_owned();
        if !matches!(name.as_bytes(), b"." | b"..") {
            children.push(name);
        }
    }
    for child in &children {
        match unlinkat(dir.as_fd(), child.as_c_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(Errno::EISDIR) => remove_tree(dir.as_fd(), child.as_bytes())?,
            Err(e) => return Err(e.into()),
        }
    }
    drop(dir);
    Ok(unlinkat(parent, name, UnlinkatFlags::RemoveDir)?)
}
