//! Paths inside a container's root, resolved by the kernel with `openat2(RESOLVE_IN_ROOT)` so that no
//! symlink or `..` in the (untrusted) rootfs can lead outside it (CVE-2021-30465). Missing components
//! are created one at a time relative to an already-resolved directory fd. Never joins path strings.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

use crate::error::{Context, Error, Result};

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::msg(format!("path {p:?}: contains a NUL byte")))
}

/// openat2(dirfd, path, O_PATH|O_CLOEXEC [|extra], RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS).
pub fn open(root: RawFd, path: &Path, extra: i32) -> std::io::Result<OwnedFd> {
    let rel: &Path = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let c = CString::new(rel.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_CLOEXEC | extra) as u64,
        mode: 0,
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: c and how are valid for the call; the kernel copies them.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root,
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor owned by us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// What to create at the last component when it is missing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    Dir,
    File,
}

/// Opens `path` inside `root` (O_PATH), creating missing directories (mode 0755) and, for `Leaf::File`,
/// an empty file at the end. Every step is resolved inside the root; a dangling symlink on the way is
/// followed (inside the root) and its target created, as a mount target would be.
pub fn open_or_create(root: RawFd, path: &Path, leaf: Leaf) -> Result<OwnedFd> {
    match open(root, path, 0) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(Error::msg(format!("{}: {e}", path.display()))),
    }
    let mut want = path.to_path_buf();
    for _ in 0..40 {
        match create_steps(root, &want, leaf)? {
            Step::Done(fd) => return Ok(fd),
            Step::Redirect(p) => want = p,
        }
    }
    Err(Error::msg(format!(
        "{}: too many levels of symbolic links",
        path.display()
    )))
}

enum Step {
    Done(OwnedFd),
    Redirect(PathBuf),
}

fn create_steps(root: RawFd, path: &Path, leaf: Leaf) -> Result<Step> {
    let comps: Vec<Component> = path
        .components()
        .filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir))
        .collect();
    let mut cur = PathBuf::from("/");
    let mut dir =
        open(root, &cur, libc::O_DIRECTORY).map_err(|e| Error::msg(format!("rootfs: {e}")))?;
    for (i, c) in comps.iter().enumerate() {
        cur.push(c.as_os_str());
        let last = i + 1 == comps.len();
        match open(root, &cur, 0) {
            Ok(fd) => {
                dir = fd;
                continue;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(Error::msg(format!("{}: {e}", cur.display()))),
        }
        let Component::Normal(name) = c else {
            return Err(Error::msg(format!("{}: no such directory", cur.display())));
        };
        let cname = cstr(Path::new(name))?;
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
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(Error::msg(format!("create {}: {e}", cur.display())));
            }
            // It exists but cannot be opened: a dangling symlink. Follow it inside the root.
            let target = readlinkat(&dir, &cname).with_ctx(|| format!("{}", cur.display()))?;
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
        dir = open(root, &cur, 0).map_err(|e| Error::msg(format!("{}: {e}", cur.display())))?;
    }
    Ok(Step::Done(dir))
}

fn readlinkat(dir: &OwnedFd, name: &CString) -> std::io::Result<PathBuf> {
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
        return Err(std::io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(PathBuf::from(std::ffi::OsString::from_vec(buf)))
}

/// `/proc/self/fd/N`: the path through which a syscall that takes only paths (mount) reaches an fd.
pub fn proc_fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_out_of_root_stays_inside() {
        let t = std::env::temp_dir().join(format!("berth-inroot-{}", std::process::id()));
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
        std::fs::remove_dir_all(&t).unwrap();
    }
}
