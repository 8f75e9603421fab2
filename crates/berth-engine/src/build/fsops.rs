//! Writing into a step's root filesystem, which earlier steps (and base images) may have filled
//! with hostile symlinks: every parent directory is resolved by the kernel with
//! `openat2(RESOLVE_IN_ROOT)` against the root's fd, and every entry is made with an `*at` call
//! that never follows a final symlink. Nothing here can reach a path outside the root.

use berth_sys::root::{open_at, Resolve};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstatat, futimens, mkdirat, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// Owner, permissions and modification time of an entry being made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub uid: u32,
    pub gid: u32,
    /// Permission bits with setuid, setgid and sticky.
    pub mode: u32,
    /// Seconds and nanoseconds; None: now.
    pub mtime: Option<(i64, i64)>,
}

/// The directory at `path` (absolute inside the root) opened for `*at` calls.
pub(crate) fn open_dir(root: BorrowedFd<'_>, path: &str) -> io::Result<OwnedFd> {
    open_at(
        root,
        path.as_bytes(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        Resolve::InRoot,
    )
}

/// What is at `name` in `dir`, not following a symlink.
pub(crate) fn kind_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<Option<SFlag>> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(SFlag::from_bits_truncate(
            st.st_mode & SFlag::S_IFMT.bits(),
        ))),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Makes the directories of `path` that are missing (mode 0755, owned by `owner`), following
/// symlinks on the way only inside the root; returns the last one.
pub(crate) fn mkdir_all(
    root: BorrowedFd<'_>,
    path: &str,
    owner: (u32, u32),
) -> io::Result<OwnedFd> {
    let mut cur = open_dir(root, "/")?;
    let mut walked = String::new();
    for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        walked.push('/');
        walked.push_str(comp);
        match open_dir(root, &walked) {
            Ok(fd) => {
                cur = fd;
                continue;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(named(&walked, e)),
        }
        if comp == ".." {
            return Err(named(&walked, Errno::ENOENT.into()));
        }
        match mkdirat(&cur, comp, Mode::from_bits_truncate(0o755)) {
            Ok(()) => {
                fchownat(
                    &cur,
                    comp,
                    Some(Uid::from_raw(owner.0)),
                    Some(Gid::from_raw(owner.1)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| named(&walked, e.into()))?;
            }
            // A symlink to a missing directory: what it names is made inside the root.
            Err(Errno::EEXIST) => {
                berth_sys::root::open_or_create(
                    root.as_raw_fd(),
                    std::path::Path::new(&walked),
                    berth_sys::root::Leaf::Dir,
                )
                .map_err(|e| named(&walked, e))?;
            }
            Err(e) => return Err(named(&walked, e.into())),
        }
        cur = open_dir(root, &walked).map_err(|e| named(&walked, e))?;
    }
    Ok(cur)
}

fn named(path: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{path}: {e}"))
}

/// Clears the way for a new entry `name` in `dir`: a non-directory there is removed; a
/// directory is kept when `dir_wanted` (Ok(true)), else it is an error.
pub(crate) fn clear_for(dir: BorrowedFd<'_>, name: &str, dir_wanted: bool) -> io::Result<bool> {
    match kind_at(dir, name)? {
        None => Ok(false),
        Some(SFlag::S_IFDIR) if dir_wanted => Ok(true),
        Some(SFlag::S_IFDIR) => Err(io::Error::other(format!(
            "cannot replace directory {name:?} with a non-directory"
        ))),
        Some(_) => {
            unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)?;
            Ok(false)
        }
    }
}

/// Sets owner, mode (after the owner: chown clears setuid) and mtime on an open entry.
pub(crate) fn set_meta(fd: BorrowedFd<'_>, m: &Meta) -> io::Result<()> {
    fchown(fd, Some(Uid::from_raw(m.uid)), Some(Gid::from_raw(m.gid)))?;
    fchmod(fd, Mode::from_bits_truncate(m.mode & 0o7777))?;
    if let Some((s, ns)) = m.mtime {
        let t = TimeSpec::new(s, ns);
        futimens(fd, &t, &t)?;
    }
    Ok(())
}

/// Writes a regular file `name` in `dir` from `data`; returns the bytes written.
pub(crate) fn write_file(
    dir: BorrowedFd<'_>,
    name: &str,
    data: &mut dyn Read,
    m: &Meta,
) -> io::Result<u64> {
    clear_for(dir, name, false)?;
    let fd = openat(
        dir,
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )?;
    let mut f = std::fs::File::from(fd);
    let n = io::copy(data, &mut f)?;
    set_meta(f.as_fd(), m)?;
    Ok(n)
}

/// Makes (or keeps) directory `name` in `dir` and returns it open; its metadata is set by the
/// caller once its contents are in (so its mtime survives them).
pub(crate) fn make_dir(dir: BorrowedFd<'_>, name: &str) -> io::Result<OwnedFd> {
    if !clear_for(dir, name, true)? {
        mkdirat(dir, name, Mode::from_bits_truncate(0o700))?;
    }
    Ok(openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

/// Makes symlink `name` → `target` in `dir`, owned by `m`'s owner.
pub(crate) fn make_symlink(
    dir: BorrowedFd<'_>,
    name: &str,
    target: &std::ffi::OsStr,
    m: &Meta,
) -> io::Result<()> {
    clear_for(dir, name, false)?;
    symlinkat(target, dir, name)?;
    fchownat(
        dir,
        name,
        Some(Uid::from_raw(m.uid)),
        Some(Gid::from_raw(m.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

/// `--chmod` applied to an entry's mode: octal (`755`) or symbolic (`u+x,go-w`, with `X`).
pub(crate) fn apply_chmod(spec: &str, mode: u32, is_dir: bool) -> u32 {
    if !spec.is_empty() && spec.bytes().all(|b| b.is_ascii_digit()) {
        return u32::from_str_radix(spec, 8).unwrap_or(mode) & 0o7777;
    }
    let mut m = mode & 0o7777;
    for clause in spec.split(',') {
        let who_end = clause
            .find(|c: char| !"ugoa".contains(c))
            .unwrap_or(clause.len());
        let who = &clause[..who_end];
        let mask = if who.is_empty() || who.contains('a') {
            0o7777
        } else {
            who.chars().fold(0, |acc, c| {
                acc | match c {
                    'u' => 0o4700,
                    'g' => 0o2070,
                    _ => 0o1007,
                }
            })
        };
        let mut rest = &clause[who_end..];
        while let Some(op) = rest.chars().next() {
            let perms_end = rest[1..]
                .find(['+', '-', '='])
                .map_or(rest.len(), |i| i + 1);
            let perms = &rest[1..perms_end];
            let mut bits = 0;
            for p in perms.chars() {
                bits |= match p {
                    'r' => 0o444,
                    'w' => 0o222,
                    'x' => 0o111,
                    'X' if is_dir || m & 0o111 != 0 => 0o111,
                    's' => 0o6000,
                    't' => 0o1000,
                    _ => 0,
                };
            }
            let bits = bits & mask;
            m = match op {
                '+' => m | bits,
                '-' => m & !bits,
                _ => (m & !mask) | bits,
            };
            rest = &rest[perms_end..];
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::apply_chmod;

    #[test]
    fn chmod_octal_and_symbolic() {
        assert_eq!(apply_chmod("755", 0o600, false), 0o755);
        assert_eq!(apply_chmod("u+x", 0o644, false), 0o744);
        assert_eq!(apply_chmod("go-r", 0o644, false), 0o600);
        assert_eq!(apply_chmod("a=r", 0o755, false), 0o444);
        assert_eq!(apply_chmod("a+X", 0o644, true), 0o755);
        assert_eq!(apply_chmod("a+X", 0o644, false), 0o644);
        assert_eq!(apply_chmod("u=rwx,g=rx,o=", 0o600, false), 0o750);
    }
}
