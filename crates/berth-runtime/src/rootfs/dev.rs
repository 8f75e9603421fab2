//! /dev inside the container: the default device nodes (or, in a user namespace, binds of the
//! host's), the spec's `linux.devices`, and the standard symlinks. Paths are resolved inside the
//! root; it never creates a node anywhere else.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use oci_spec::runtime::LinuxDeviceType;

use super::{mount, RootfsContext};
use crate::error::{Context, Error, Result};
use berth_sys::root::{self as inroot, Leaf};

struct Dev {
    path: &'static str,
    major: u64,
    minor: u64,
}

const DEFAULT_DEVICES: &[Dev] = &[
    Dev {
        path: "/dev/null",
        major: 1,
        minor: 3,
    },
    Dev {
        path: "/dev/zero",
        major: 1,
        minor: 5,
    },
    Dev {
        path: "/dev/full",
        major: 1,
        minor: 7,
    },
    Dev {
        path: "/dev/random",
        major: 1,
        minor: 8,
    },
    Dev {
        path: "/dev/urandom",
        major: 1,
        minor: 9,
    },
    Dev {
        path: "/dev/tty",
        major: 5,
        minor: 0,
    },
];

pub(super) fn create_default_devices(ctx: &RootfsContext, root: &OwnedFd) -> Result<()> {
    if !ctx.userns {
        return mknod_default_devices(ctx, root);
    }
    for d in DEFAULT_DEVICES {
        let spec_has = ctx
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.devices().as_ref())
            .is_some_and(|v| v.iter().any(|x| x.path() == Path::new(d.path)));
        if !spec_has {
            make_device(
                ctx,
                root,
                Path::new(d.path),
                libc::S_IFCHR,
                d.major,
                d.minor,
                0o666,
                0,
                0,
            )?;
        }
    }
    Ok(())
}

/// The common case, kept to one syscall per node: a fresh /dev tmpfs, root creating root-owned
/// nodes, so with umask 0 the mode is exact and no chmod, chown or unlink is needed.
fn mknod_default_devices(ctx: &RootfsContext, root: &OwnedFd) -> Result<()> {
    let dev = inroot::open(root.as_raw_fd(), Path::new("/dev"), libc::O_DIRECTORY).ctx("/dev")?;
    let spec_devices = ctx.spec.linux().as_ref().and_then(|l| l.devices().as_ref());
    // SAFETY: umask cannot fail; restored below.
    let old = unsafe { libc::umask(0) };
    let mut result = Ok(());
    for d in DEFAULT_DEVICES {
        if spec_devices.is_some_and(|v| v.iter().any(|x| x.path() == Path::new(d.path))) {
            continue;
        }
        let name = CString::new(&d.path[5..]).unwrap_or_default();
        // SAFETY: valid dir fd and C string; makedev is pure.
        let r = unsafe {
            libc::mknodat(
                dev.as_raw_fd(),
                name.as_ptr(),
                libc::S_IFCHR | 0o666,
                libc::makedev(d.major as u32, d.minor as u32),
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                result = Err(Error::msg(format!("mknod {}: {e}", d.path)));
                break;
            }
        }
    }
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    result
}

pub(super) fn create_spec_devices(ctx: &RootfsContext, root: &OwnedFd) -> Result<()> {
    for d in ctx
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
        // /dev/ptmx is always the link to the container's own devpts (`dev_symlinks`), as runc
        // makes it: a node asked for there would shadow it (and, bound from the host's in a user
        // namespace, open the host's pty instance or nothing).
        .filter(|d| normalized(d.path()) != Path::new("/dev/ptmx"))
    {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => crate::bail!(
                "device {}: type \"a\" is not a device node",
                d.path().display()
            ),
        };
        let mode = d.file_mode().unwrap_or(0o666) & 0o7777;
        make_device(
            ctx,
            root,
            d.path(),
            kind,
            d.major() as u64,
            d.minor() as u64,
            mode,
            d.uid().unwrap_or(0),
            d.gid().unwrap_or(0),
        )?;
    }
    Ok(())
}

/// `path` without `.` components and repeated slashes (`//dev/./ptmx` is `/dev/ptmx`).
fn normalized(path: &Path) -> std::path::PathBuf {
    path.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn make_device(
    ctx: &RootfsContext,
    root: &OwnedFd,
    path: &Path,
    kind: libc::mode_t,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .ok_or_else(|| Error::msg(format!("device {}: no file name", path.display())))?;
    // An O_PATH directory fd serves the *at calls directly.
    let dirfd = inroot::open_or_create(root.as_raw_fd(), parent, Leaf::Dir)?;
    let cname = CString::new(name.as_bytes()).map_err(|_| Error::msg("device name has NUL"))?;
    // Replace whatever is there (a bind-mounted device cannot be, /dev is fresh).
    // SAFETY: valid dir fd and C string.
    unsafe { libc::unlinkat(dirfd.as_raw_fd(), cname.as_ptr(), 0) };
    if ctx.userns {
        // mknod is not allowed in a user namespace: bind the host's node onto an empty file.
        // SAFETY: as above.
        let fd = unsafe {
            libc::openat(
                dirfd.as_raw_fd(),
                cname.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                0o644,
            )
        };
        if fd < 0 {
            return Err(Error::msg(format!(
                "create {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: fd is ours.
        unsafe { libc::close(fd) };
        let f = inroot::open(root.as_raw_fd(), path, 0).with_ctx(|| path.display().to_string())?;
        return mount(
            Some(&path.to_string_lossy()),
            &inroot::proc_fd_path(&f),
            None,
            libc::MS_BIND,
            None,
        );
    }
    // SAFETY: valid fd and name; makedev is pure.
    let r = unsafe {
        libc::mknodat(
            dirfd.as_raw_fd(),
            cname.as_ptr(),
            kind | mode,
            libc::makedev(major as u32, minor as u32),
        )
    };
    if r < 0 {
        return Err(Error::msg(format!(
            "mknod {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: valid fd and name.
    unsafe {
        libc::fchmodat(dirfd.as_raw_fd(), cname.as_ptr(), mode, 0);
        libc::fchownat(
            dirfd.as_raw_fd(),
            cname.as_ptr(),
            uid,
            gid,
            libc::AT_SYMLINK_NOFOLLOW,
        );
    }
    Ok(())
}

pub(super) fn dev_symlinks(root: &OwnedFd) -> Result<()> {
    let dev = inroot::open(root.as_raw_fd(), Path::new("/dev"), libc::O_DIRECTORY).ctx("/dev")?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        let (t, n) = (
            CString::new(target).unwrap_or_default(),
            CString::new(name).unwrap_or_default(),
        );
        // SAFETY: valid C strings and dir fd.
        unsafe { libc::symlinkat(t.as_ptr(), dev.as_raw_fd(), n.as_ptr()) };
    }
    // /dev/ptmx points at the container's own devpts instance.
    // SAFETY: as above.
    unsafe {
        libc::unlinkat(dev.as_raw_fd(), c"ptmx".as_ptr(), 0);
        libc::symlinkat(c"pts/ptmx".as_ptr(), dev.as_raw_fd(), c"ptmx".as_ptr());
    }
    Ok(())
}
