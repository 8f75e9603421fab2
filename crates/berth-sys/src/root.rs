//! Paths inside a root directory that may be hostile (a container's rootfs, an image layer),
//! resolved by the kernel with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so no symlink or
//! `..` in it can lead outside (CVE-2021-30465). Missing components are created one at a time
//! relative to an already-resolved directory fd. Never joins a path string onto a host path.

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

/// How a path may be resolved below its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// As if the directory were `/`: absolute symlinks and `..` stay inside it.
    InRoot,
    /// Below the directory only, following no symlink at all.
    BeneathNoSymlinks,
}

impl Resolve {
    fn flags(self) -> ResolveFlag {
        match self {
            Resolve::InRoot => ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            Resolve::BeneathNoSymlinks => {
                ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS
            }
        }
    }
}

/// `openat2(dir, path, flags | O_CLOEXEC, resolve)`: `path` (bytes, relative; empty is the
/// directory itself) opened below `dir`. A rename racing a `..` lookup makes the kernel ask for
/// a retry (EAGAIN): retried a few times.
pub fn open_at(
    dir: BorrowedFd<'_>,
    path: &[u8],
    flags: OFlag,
    resolve: Resolve,
) -> io::Result<OwnedFd> {
    let path: &[u8] = match path.strip_prefix(b"/").unwrap_or(path) {
        b"" => b".",
        p => p,
    };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(resolve.flags());
    let mut tries = 0;
    loop {
        match openat2(dir, path, how) {
            Err(Errno::EAGAIN) if tries < 16 => tries += 1,
            r => return r.map_err(io::Error::from),
        }
    }
}

/// `path` inside `root` as an `O_PATH` handle (plus `extra` open flags), resolved in the root.
pub fn open(root: RawFd, path: &Path, extra: i32) -> io::Result<OwnedFd> {
    // SAFETY: `root` is an open directory fd the caller holds for the duration of the call.
    let dir = unsafe { BorrowedFd::borrow_raw(root) };
    let flags = OFlag::O_PATH | OFlag::from_bits_truncate(extra);
    open_at(dir, path.as_os_str().as_bytes(), flags, Resolve::InRoot)
}

/// What to create at the last component when it is missing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    Dir,
    File,
}

/// Opens `path` inside `root` (O_PATH), creating missing directories (mode 0755) and, for
/// `Leaf::File`, an empty file at the end. Every step is resolved inside the root; a dangling
/// symlink on the way is followed (inside the root) and its target created, as a mount target
/// would be. Errors name the path.
pub fn open_or_create(root: RawFd, path: &Path, leaf: Leaf) -> io::Result<OwnedFd> {
    match open(root, path, 0) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(named(path, e)),
    }
    let mut want = path.to_path_buf();
    for _ in 0..40 {
        match create_steps(root, &want, leaf)? {
            Step::Done(fd) => return Ok(fd),
            Step::Redirect(p) => want = p,
        }
    }
    Err(io::Error::other(format!(
        "{}: too many levels of symbolic links",
        path.display()
    )))
}

/// The error with the path it concerns in front, kind and errno kept.
fn named(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

enum Step {
    Done(OwnedFd),
    Redirect(PathBuf),
}

fn create_steps(root: RawFd, path: &Path, leaf: Leaf) -> io::Result<Step> {
    let comps: Vec<Component> = path
        .components()
        .filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir))
        .collect();
    let mut cur = PathBuf::from("/");
    let mut dir = open(root, &cur, libc::O_DIRECTORY)
        .map_err(|e| io::Error::new(e.kind(), format!("rootfs: {e}")))?;
    for (i, c) in comps.iter().enumerate() {
        cur.push(c.as_os_str());
        let last = i + 1 == comps.len();
        match open(root, &cur, 0) {
            Ok(fd) => {
                dir = fd;
                continue;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(named(&cur, e)),
        }
        let Component::Normal(name) = c else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such directory", cur.display()),
            ));
        };
        let cname = CString::new(name.as_bytes()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("path {:?}: contains a NUL byte", cur),
            )
        })?;
        let r = if last && leaf == Leaf::File {
            // SAFETY: dir is a valid directory fd, cname a valid C string.
            let fd = unsafe {
                libc::openat(
                    dir.as_raw_fd(),
                    cname.as_ptr(),
                    libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_WRONLY
                        | libc::O_CLOEXEC
                        | libc::O_NOFOLLOW,
                    0o644,
                )
            };
            if fd >= 0 {
                // SAFETY: fd was just opened by us.
                unsafe { libc::close(fd) };
            }
            fd.min(0)
        } else {
            // SAFETY: as above.
            unsafe { libc::mkdirat(dir.as_raw_fd(), cname.as_ptr(), 0o755) }
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(io::Error::new(
                    e.kind(),
                    format!("create {}: {e}", cur.display()),
                ));
            }
            // It exists but cannot be opened: a dangling symlink. Follow it inside the root.
            let target = readlinkat(&dir, &cname).map_err(|e| named(&cur, e))?;
            let mut next = if target.is_absolute() {
                target
            } else {
                cur.parent().unwrap_or(Path::new("/")).join(target)
            };
            for rest in &comps[i + 1..] {
                next.push(rest.as_os_str());
            }
            return Ok(Step::Redirect(next));
        }
        dir = open(root, &cur, 0).map_err(|e| named(&cur, e))?;
    }
    Ok(Step::Done(dir))
}

fn readlinkat(dir: &OwnedFd, name: &CString) -> io::Result<PathBuf> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: buf is valid for its length; dir and name are valid.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(PathBuf::from(OsString::from_vec(buf)))
}

/// `/proc/self/fd/N`: the path through which a syscall that takes only paths (mount) reaches an fd.
pub fn proc_fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// A readable fd on what an `O_PATH` handle names (reopened through `/proc/self/fd`, which
/// names that very inode, never a path in the tree).
pub fn reopen(handle: BorrowedFd<'_>, flags: i32) -> io::Result<OwnedFd> {
    let path =
        CString::new(format!("/proc/self/fd/{}", handle.as_raw_fd())).expect("no NUL in a number");
    // SAFETY: a NUL-terminated path; the fd returned is ours.
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh fd owned by us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The contents of the regular file `path` inside the directory `root`, resolved in the root (a
/// symlink can lead anywhere in it, never out), at most `max` bytes: a bigger file is refused
/// while it is read. Anything but a regular file (a FIFO, a device) is refused too.
pub fn read_file(root: &Path, path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let dir = std::fs::File::open(root)?;
    let handle = open(dir.as_raw_fd(), path, 0)?;
    // SAFETY: the handle is an fd we own for the duration of the call.
    let file = std::fs::File::from(reopen(
        unsafe { BorrowedFd::borrow_raw(handle.as_raw_fd()) },
        libc::O_RDONLY | libc::O_NONBLOCK,
    )?);
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_file_stays_in_the_root_and_is_bounded() {
        let t = tempdir();
        let root = t.join("root");
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::write(t.join("secret"), b"host").unwrap();
        std::fs::write(root.join("secret"), b"inside").unwrap();
        std::fs::write(root.join("d/f"), b"0123456789").unwrap();
        std::os::unix::fs::symlink("/secret", root.join("abs")).unwrap();
        std::os::unix::fs::symlink(t.join("secret"), root.join("host")).unwrap();
        std::os::unix::fs::symlink("../../secret", root.join("d/rel")).unwrap();
        assert_eq!(read_file(&root, Path::new("abs"), 100).unwrap(), b"inside");
        // The host's path means that path inside the root, where there is nothing.
        assert_eq!(
            read_file(&root, Path::new("host"), 100).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            read_file(&root, Path::new("d/rel"), 100).unwrap(),
            b"inside"
        );
        assert_eq!(
            read_file(&root, Path::new("d/f"), 10).unwrap(),
            b"0123456789"
        );
        assert!(read_file(&root, Path::new("d/f"), 9).is_err());
        assert!(read_file(&root, Path::new("d"), 100).is_err());
        assert_eq!(
            read_file(&root, Path::new("missing"), 1)
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound
        );
        std::fs::remove_dir_all(&t).unwrap();
    }

    #[test]
    fn symlinks_out_of_the_root_stay_inside() {
        let t = tempdir();
        let root = t.join("root");
        std::fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("evil")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.join("up")).unwrap();
        let rfd = std::fs::File::open(&root).unwrap();
        let fd =
            open_or_create(rfd.as_raw_fd(), Path::new("/evil/passwd-x/y"), Leaf::File).unwrap();
        drop(fd);
        // Created inside root/etc, not in the host's /etc.
        assert!(root.join("etc/passwd-x/y").exists());
        assert!(!Path::new("/etc/passwd-x").exists());
        let fd = open_or_create(rfd.as_raw_fd(), Path::new("/up/tmp/z"), Leaf::Dir).unwrap();
        drop(fd);
        assert!(root.join("tmp/z").is_dir());
        // Beneath without symlinks refuses the link itself.
        let dir = rfd.as_fd_borrowed();
        assert!(open_at(dir, b"evil/x", OFlag::O_PATH, Resolve::BeneathNoSymlinks).is_err());
        assert!(open_at(dir, b"tmp/z", OFlag::O_PATH, Resolve::BeneathNoSymlinks).is_ok());
        std::fs::remove_dir_all(&t).unwrap();
    }

    trait Borrowed {
        fn as_fd_borrowed(&self) -> BorrowedFd<'_>;
    }
    impl Borrowed for std::fs::File {
        fn as_fd_borrowed(&self) -> BorrowedFd<'_> {
            std::os::fd::AsFd::as_fd(self)
        }
    }

    /// A fresh directory per call: the tests run in parallel in one process, so the process's
    /// ID alone would let one test remove another's directory.
    fn tempdir() -> PathBuf {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = std::env::temp_dir().join(format!(
            "berth-sys-root-{}-{}-{n}",
            std::process::id(),
            crate::process::start_time(std::process::id() as i32)
        ));
        let _ = std::fs::remove_dir_all(&t);
        std::fs::create_dir_all(&t).unwrap();
        t
    }
}
