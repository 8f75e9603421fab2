//! File trees and tar streams, both ways, through file descriptors: a tree (a container's upper
//! layer, its root, a directory of the host) written as a tar stream (`tar`), a tar stream
//! extracted into a tree that may be hostile (`untar`), and what a writable layer changed against
//! the layers below it (`diff`). Every entry is reached with `*at` calls relative to its parent's
//! fd and never followed when it is a symlink. Layers themselves are unpacked by `unpack`.

pub mod diff;
pub mod tar;
pub mod untar;

use nix::dir::Dir;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

/// Whether this process runs in a user namespace of its own (rootless berth): overlay is then
/// mounted with `userxattr`, and its marks are `user.overlay.*`, the namespace it may write.
pub fn in_user_namespace() -> io::Result<bool> {
    Ok(!berth_sys::userns::in_initial_namespace()?)
}

/// The overlayfs xattr that marks a directory whose lower contents are hidden: the one the
/// overlay this process mounts reads (`trusted.overlay.opaque`, rootless `user.overlay.opaque`).
pub fn opaque_xattr() -> io::Result<&'static CStr> {
    Ok(if in_user_namespace()? {
        c"user.overlay.opaque"
    } else {
        c"trusted.overlay.opaque"
    })
}

pub fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// An overlayfs whiteout: a character device 0/0.
pub fn is_whiteout(st: &FileStat) -> bool {
    file_type(st) == SFlag::S_IFCHR && st.st_rdev == 0
}

/// Opens `name` in `dir` as an `O_PATH` handle on the entry itself (a symlink is not followed).
pub fn handle_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

/// A readable directory fd from an `O_PATH` handle on a directory.
pub fn open_dir(handle: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    Ok(openat(
        handle,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

/// A readable fd on the regular file an `O_PATH` handle names (reopened through `/proc/self/fd`,
/// which names that very inode, never a path in the tree).
pub fn reopen_file(handle: BorrowedFd<'_>) -> io::Result<std::fs::File> {
    let f = std::fs::File::open(format!("/proc/self/fd/{}", handle.as_raw_fd()))?;
    Ok(f)
}

/// The names in a directory (without `.` and `..`), sorted so archives are reproducible.
pub fn names(dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    let mut d = Dir::from_fd(open_dir(dir)?)?;
    let mut out = Vec::new();
    for e in d.iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push(OsString::from_vec(n.to_vec()));
        }
    }
    out.sort();
    Ok(out)
}

/// The extended attributes of an open file or directory that a tar may carry into a layer (the
/// same allow-list the unpacker applies: overlayfs's own `trusted.overlay.*` never leave).
pub fn xattrs(fd: BorrowedFd<'_>) -> Vec<(CString, Vec<u8>)> {
    let mut list = vec![0u8; 4096];
    // SAFETY: the buffer is valid for its length; the kernel writes at most that many bytes.
    let n = unsafe { libc::flistxattr(fd.as_raw_fd(), list.as_mut_ptr().cast(), list.len()) };
    if n <= 0 {
        return Vec::new();
    }
    list.truncate(n as usize);
    list.split(|b| *b == 0)
        .filter(|n| !n.is_empty() && crate::unpack::xattr_allowed(n))
        .filter_map(|n| CString::new(n).ok())
        .filter_map(|n| get_xattr(fd, &n).map(|v| (n, v)))
        .collect()
}

pub fn get_xattr(fd: BorrowedFd<'_>, name: &CStr) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: name is NUL-terminated and the buffer valid for its length.
    let n = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

/// Whether an open directory carries overlayfs's opaque mark.
pub fn is_opaque(dir: BorrowedFd<'_>) -> bool {
    // Known by now: every mount and unpack of this process asked first, and failed on error.
    let Ok(name) = opaque_xattr() else {
        return false;
    };
    get_xattr(dir, name).is_some_and(|v| v == b"y")
}
