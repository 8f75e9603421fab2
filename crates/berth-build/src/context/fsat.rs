//! The only ways this crate touches the file system: `*at` calls relative to a directory fd, walking
//! paths one component at a time with `O_NOFOLLOW`, so a symlink anywhere on a path is an error
//! (ELOOP), never a way out. Paths handed in are already clean and relative (no `..`).

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{mkdirat, Mode};

pub(crate) const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// Opens directory `name` in `dir`, refusing symlinks.
pub(crate) fn open_dir_at(dir: impl AsFd, name: &str) -> io::Result<OwnedFd> {
    Ok(openat(dir, name, DIR_FLAGS, Mode::empty())?)
}

/// Opens the directory at `path` (components separated by `/`; empty: `root` itself).
pub(crate) fn open_dir_path(root: &OwnedFd, path: &str) -> io::Result<OwnedFd> {
    let mut cur = root.try_clone()?;
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        cur = open_dir_at(&cur, comp)?;
    }
    Ok(cur)
}

/// The parent directory of `path` and its last component.
pub(crate) fn split_last(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

/// Opens the regular file at `path` for reading, with no symlink on the way. A FIFO or device swapped
/// in is refused (opened non-blocking, then checked).
pub fn open_file_nofollow(root: &OwnedFd, path: &str) -> io::Result<std::fs::File> {
    let (parent, name) = split_last(path);
    let dir = open_dir_path(root, parent)?;
    let fd = openat(
        &dir,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    )?;
    let st = nix::sys::stat::fstat(&fd)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{path}: not a regular file"),
        ));
    }
    Ok(std::fs::File::from(fd))
}

/// Makes (or opens) the directories of `path` below `root`, mode 0755, refusing symlinks.
pub(crate) fn mkdir_all(root: &OwnedFd, path: &str) -> io::Result<OwnedFd> {
    let mut cur = root.try_clone()?;
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        match mkdirat(&cur, comp, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
        cur = open_dir_at(&cur, comp)?;
    }
    Ok(cur)
}
