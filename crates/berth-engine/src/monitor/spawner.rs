//! The keeper spawner `berth serve` holds: a fresh exec of this binary, made once when the
//! service starts, that forks one keeper per detached start it is handed. A keeper forked from it
//! skips what a keeper exec'd for each start pays before it can do anything: the fork of a big,
//! threaded service, the exec, the dynamic loader and the binary's start-up (about 2 ms of the
//! API's `docker run`). The spawner is single-threaded and does nothing else, so its fork is a
//! keeper as clean as an exec'd one. Without a spawner (the CLI), or when it died and cannot be
//! made again, `start_detached` execs the keeper itself.
//!
//! Protocol: one SOCK_SEQPACKET message per start, `[attach_first as u8] ++ id`, carrying the
//! caller's write end of the ready pipe (SCM_RIGHTS). Nothing comes back on the socket: the
//! keeper answers on the ready pipe, as an exec'd one does. The spawner ends when the service's
//! end of the socket closes (the service ended, however it ended).

use super::{keeper, self_argv, spawn_self};
use crate::container::Engine;
use crate::error::{EngineError, Result};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The hidden command line of the spawner: `berth --root R --runroot R __spawner FD`.
pub(super) const SPAWNER_COMMAND: &str = "__spawner";

/// The longest container id a message may carry (ids are 64 hex digits).
const MAX_ID: usize = 128;

/// The spawner this process started, if any (one per process: `berth serve` serves one store).
static SPAWNER: Mutex<Option<Spawner>> = Mutex::new(None);

/// A running spawner, from the service's side.
struct Spawner {
    sock: OwnedFd,
    pid: i32,
    root: PathBuf,
    runroot: PathBuf,
}

/// Starts the spawner for `engine`'s store; later detached starts of that store go through it.
pub fn start_spawner(engine: &Engine) -> Result<()> {
    let s = Spawner::start(engine)?;
    if let Ok(mut slot) = SPAWNER.lock() {
        *slot = Some(s);
    }
    Ok(())
}

/// Hands the start of `id` to the spawner: true when it took it (the keeper answers on `ready`),
/// false when this process has no spawner for this store, or it died and a new one could not
/// be made (the caller execs the keeper itself).
pub(super) fn spawn(engine: &Engine, id: &str, attach_first: bool, ready: &OwnedFd) -> bool {
    let Ok(mut slot) = SPAWNER.lock() else {
        return false;
    };
    let Some(s) = slot.as_ref() else {
        return false;
    };
    if s.root != engine.root || s.runroot != engine.runroot {
        return false;
    }
    if s.send(id, attach_first, ready.as_raw_fd()).is_ok() {
        return true;
    }
    // It died (killed, or out of memory): reap it and make another, once.
    *slot = None;
    let Ok(s) = Spawner::start(engine) else {
        return false;
    };
    let sent = s.send(id, attach_first, ready.as_raw_fd()).is_ok();
    *slot = Some(s);
    sent
}

impl Spawner {
    fn start(engine: &Engine) -> Result<Spawner> {
        let (ours, theirs) = seqpacket_pair()?;
        let argv = self_argv(engine, SPAWNER_COMMAND, &[theirs.as_raw_fd().to_string()])?;
        let pid = spawn_self(&argv, None, theirs.as_raw_fd())?;
        Ok(Spawner {
            sock: ours,
            pid,
            root: engine.root.clone(),
            runroot: engine.runroot.clone(),
        })
    }

    fn send(&self, id: &str, attach_first: bool, ready: RawFd) -> nix::Result<()> {
        let mut msg = vec![u8::from(attach_first)];
        msg.extend_from_slice(id.as_bytes());
        let iov = [std::io::IoSlice::new(&msg)];
        sendmsg::<()>(
            self.sock.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(&[ready])],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map(drop)
    }
}

impl Drop for Spawner {
    /// Ends and reaps the spawner (it is this process's child); its keepers live on.
    fn drop(&mut self) {
        // SAFETY: signalling and reaping our own child, whose pid is not reused before the reap.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| EngineError::msg(format!("the keeper spawner's socket: {e}")))
}

/// One start handed over: whether the watcher waits for its first attach client, the id, and
/// the ready pipe's write end.
struct Request {
    attach_first: bool,
    id: String,
    ready: OwnedFd,
}

/// Entry point of the spawner (`berth … __spawner FD`): forks a keeper per request until the
/// service's end of the socket closes.
pub(super) fn main(root: &Path, runroot: &Path, fd: i32) -> i32 {
    // SAFETY: PR_SET_NAME with a NUL-terminated name (what `ps` shows); SIGCHLD ignored, so the
    // kernel reaps the keepers this process forks (they are watched by their records, not by
    // us). No thread runs in this process.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, c"berth-spawner".as_ptr(), 0, 0, 0);
        libc::signal(libc::SIGCHLD, libc::SIG_IGN);
    }
    if fd < 0 {
        return 1;
    }
    super::set_cloexec(fd, true);
    // SAFETY: the fd number was handed to us by our parent, open and ours alone.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // Its own start-up pages stay in the page cache, shared, for the keepers to fault back in.
    super::streams::drop_clean_file_pages(false);
    loop {
        match receive(&sock) {
            Ok(Some(req)) => fork_keeper(root, runroot, &sock, req),
            Ok(None) => return 0,
            Err(nix::errno::Errno::EINTR) => continue,
            // A message that is not a request (never sent by berth): dropped with its fds.
            Err(nix::errno::Errno::EBADMSG) => continue,
            Err(_) => return 1,
        }
    }
}

/// The next request; None when the service's end closed.
fn receive(sock: &OwnedFd) -> nix::Result<Option<Request>> {
    let mut buf = [0u8; 1 + MAX_ID];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let len = msg.bytes;
    let truncated = msg
        .flags
        .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC);
    let mut ready = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: the kernel just gave us this fd.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                ready.get_or_insert(fd);
            }
        }
    }
    if len == 0 && ready.is_none() {
        return Ok(None);
    }
    let id = std::str::from_utf8(&buf[1..len.max(1)]).unwrap_or("");
    let valid = !truncated && !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric());
    match ready {
        Some(ready) if valid => Ok(Some(Request {
            attach_first: buf[0] != 0,
            id: id.to_string(),
            ready,
        })),
        _ => Err(nix::errno::Errno::EBADMSG),
    }
}

/// Forks the keeper of one start; the child becomes it and leaves the process when it is done.
fn fork_keeper(root: &Path, runroot: &Path, sock: &OwnedFd, req: Request) {
    // SAFETY: this process has no threads; the child goes on with plain Rust code and leaves
    // through process::exit.
    let pid = unsafe { libc::fork() };
    if pid != 0 {
        // The parent (or a failed fork, which the caller sees as the ready pipe's end without
        // an answer): the keeper holds its own copy of the ready pipe.
        return;
    }
    // SAFETY: in the child: its copy of the socket is closed (the keeper must not keep the
    // service's spawner alive), SIGCHLD back to its default (the keeper waits for its
    // children) and a session of its own, as an exec'd keeper has.
    unsafe {
        libc::close(sock.as_raw_fd());
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        libc::setsid();
    }
    if req.attach_first {
        std::env::set_var(crate::attach::ATTACH_FIRST, "1");
    }
    let code = keeper::main(root, runroot, &req.id, req.ready.into_raw_fd());
    std::process::exit(code)
}
