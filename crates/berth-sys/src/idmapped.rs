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

/// A user namespace with `maps`, as an fd (`/proc/PID/ns/user` of a child made in it and gone by
/// the time this returns). Writing another namespace's maps needs CAP_SETUID and CAP_SETGID over
/// the parent namespace: root.
///
/// The child shares this process's memory (`CLONE_VM`), so making it copies no page tables (a
/// fork did, a third of a millisecond of every `--userns=auto` start). It is made with every
/// signal blocked, so no handler of ours ever runs on its stack, and it waits in a raw `ppoll`
/// with no descriptors until the SIGKILL below. It calls only libc's `syscall`, which is no
/// cancellation point (a wrapper that is would mark this thread's cancellation state) and writes
/// errno only on a failure this wait never returns; it takes no lock and writes no memory of ours.
pub fn userns_with(maps: &IdMaps) -> io::Result<OwnedFd> {
    extern "C" fn hold(_: *mut libc::c_void) -> libc::c_int {
        loop {
            // SAFETY: ppoll with no descriptors, no timeout and no mask reads and writes no
            // memory; with every signal blocked it returns only if the child is killed.
            unsafe {
                libc::syscall(
                    libc::SYS_ppoll,
                    std::ptr::null_mut::<libc::pollfd>(),
                    0usize,
                    std::ptr::null::<libc::timespec>(),
                    std::ptr::null::<libc::sigset_t>(),
                    0usize,
                )
            };
        }
    }
    const STACK: usize = 16 * 1024;
    // A u128 array is 16-byte aligned, as the x86-64 and aarch64 ABIs want a stack top.
    let mut stack = vec![0u128; STACK / 16];
    let pid = with_signals_blocked(|| {
        // SAFETY: the stack top is the end of `stack`, which outlives the child (reaped below
        // before `stack` drops); `hold` never returns and uses a few bytes of it.
        unsafe {
            let top = stack.as_mut_ptr().add(stack.len()).cast::<libc::c_void>();
            libc::clone(
                hold,
                top,
                libc::CLONE_VM | libc::CLONE_NEWUSER | libc::SIGCHLD,
                std::ptr::null_mut(),
            )
        }
    })?;
    let result = (|| {
        std::fs::write(format!("/proc/{pid}/uid_map"), map_text(&maps.uid))?;
        std::fs::write(format!("/proc/{pid}/gid_map"), map_text(&maps.gid))?;
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/user"))?;
        Ok(OwnedFd::from(ns))
    })();
    // SAFETY: signalling and reaping our own child, which nothing else waits for; EINTR is
    // retried, and `stack` is dropped only after the child is gone.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        let mut status = 0;
        while libc::waitpid(pid, &mut status, 0) < 0 {
            if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                break;
            }
        }
    }
    drop(stack);
    result
}

/// Runs `f` with every signal blocked in this thread (a child cloned in `f` starts with that
/// mask), then puts the thread's mask back.
fn with_signals_blocked(f: impl FnOnce() -> libc::pid_t) -> io::Result<libc::pid_t> {
    // SAFETY: sigset_t is plain data; sigfillset and pthread_sigmask fill the sets they are given.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        let rc = libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        let pid = f();
        let err = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if pid < 0 {
            return Err(err);
        }
        Ok(pid)
    }
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
