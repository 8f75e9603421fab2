//! Idmapped mounts (mount_setattr(2) with MOUNT_ATTR_IDMAP): a user namespace that holds given
//! maps (made by a short-lived child and kept only as an fd), and a detached clone of a directory
//! tree whose owners show through those maps. Needs root over the tree's mount; it never changes
//! a file on disk.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::userns::{IdMaps, IdRange};

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `struct mount_attr` (linux/mount.h).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn map_text(ranges: &[IdRange]) -> String {
    ranges.iter().map(|r| format!("{r}\n")).collect()
}

/// A user namespace with `maps`, as an fd (`/proc/PID/ns/user` of a child that made it and is
/// gone by the time this returns). Writing another namespace's maps needs CAP_SETUID and
/// CAP_SETGID over the parent namespace: root.
pub fn userns_with(maps: &IdMaps) -> io::Result<OwnedFd> {
    let mut ready = [0 as libc::c_int; 2];
    let mut hold = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills the two-int arrays; the fds are wrapped right after.
    if unsafe { libc::pipe2(ready.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above; both fds of `ready` are owned from here.
    let (ready_r, ready_w) = unsafe {
        (
            OwnedFd::from_raw_fd(ready[0]),
            OwnedFd::from_raw_fd(ready[1]),
        )
    };
    // SAFETY: as above.
    if unsafe { libc::pipe2(hold.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    let (hold_r, hold_w) =
        unsafe { (OwnedFd::from_raw_fd(hold[0]), OwnedFd::from_raw_fd(hold[1])) };
    // SAFETY: the child calls only unshare, write, read and _exit (async-signal-safe), on fds
    // opened before the fork; the parent reaps it below.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: async-signal-safe calls only; the child never returns.
        unsafe {
            libc::close(ready_r.as_raw_fd());
            libc::close(hold_w.as_raw_fd());
            let code: u8 = if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                0
            } else {
                1
            };
            libc::write(ready_w.as_raw_fd(), (&code as *const u8).cast(), 1);
            let mut b = 0u8;
            // Blocks until the parent closes its end: the namespace lives that long.
            libc::read(hold_r.as_raw_fd(), (&mut b as *mut u8).cast(), 1);
            libc::_exit(0);
        }
    }
    drop(ready_w);
    drop(hold_r);
    let result = (|| {
        let mut code = [1u8];
        // SAFETY: reading one byte into a one-byte buffer from an fd we own.
        let n = unsafe { libc::read(ready_r.as_raw_fd(), code.as_mut_ptr().cast(), 1) };
        if n != 1 || code[0] != 0 {
            return Err(io::Error::other(
                "unshare(CLONE_NEWUSER) failed in the helper child",
            ));
        }
        std::fs::write(format!("/proc/{pid}/uid_map"), map_text(&maps.uid))?;
        std::fs::write(format!("/proc/{pid}/gid_map"), map_text(&maps.gid))?;
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/user"))?;
        Ok(OwnedFd::from(ns))
    })();
    drop(hold_w);
    let mut status = 0;
    // SAFETY: reaping our own child; EINTR is retried.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break;
        }
    }
    result
}

/// A detached clone of the tree at `path` (not recursive) whose file owners are seen through
/// `userns`'s maps: a file owned by uid 0 on disk shows as the host uid that container uid 0 maps
/// to, and a file written through it is stored with the reverse map applied.
pub fn idmapped_tree(path: &Path, userns: &OwnedFd) -> io::Result<OwnedFd> {
    let c = cpath(path)?;
    // SAFETY: open_tree with a NUL-terminated path; a non-negative result is a new fd we own.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by open_tree and is owned by nobody else.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: mount_setattr on our detached tree with an empty path, AT_EMPTY_PATH, and a
    // correctly sized mount_attr that outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(tree)
}

/// Attaches a detached tree (from `idmapped_tree`) on `target`.
pub fn attach(tree: &OwnedFd, target: &Path) -> io::Result<()> {
    let c = cpath(target)?;
    // SAFETY: move_mount from our detached tree fd (empty path) to a NUL-terminated target.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    #[test]
    fn an_idmapped_tree_shows_root_owned_files_as_the_mapped_id() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let base = std::env::temp_dir().join(format!("berth-idmapped-{}", std::process::id()));
        let (src, dst) = (base.join("src"), base.join("dst"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        std::fs::write(src.join("f"), "x").unwrap();
        let range = IdRange {
            inside: 0,
            outside: 300_000,
            count: 65536,
        };
        let maps = IdMaps {
            uid: vec![range],
            gid: vec![range],
        };
        let ns = userns_with(&maps).unwrap();
        let tree = idmapped_tree(&src, &ns).unwrap();
        attach(&tree, &dst).unwrap();
        let seen = std::fs::metadata(dst.join("f")).map(|m| (m.uid(), m.gid()));
        let c = cpath(&dst).unwrap();
        // SAFETY: umount2 with a NUL-terminated path.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        let on_disk = std::fs::metadata(src.join("f")).unwrap().uid();
        std::fs::remove_dir_all(&base).unwrap();
        assert_eq!(seen.unwrap(), (300_000, 300_000));
        assert_eq!(on_disk, 0);
    }
}
