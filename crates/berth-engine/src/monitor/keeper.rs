//! The keeper: the process `start_detached` starts. It forks the monitor (the container's parent)
//! and then only waits, as a subreaper. Each time the monitor (re)launches the container it hands
//! the keeper copies of what the watch needs (output, attach socket, log) over a socket. If the
//! monitor is killed, the container becomes the keeper's child: the keeper takes over the watch
//! and records the container's real exit status, instead of the status being lost with the
//! monitor. It never launches anything itself before a takeover.

use super::{monitor_main, report, watch, Ready, Watched};
use crate::error::{EngineError, Failure};
use crate::Engine;
use berth_runtime::sync::Channel;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// Entry point of the keeper (`berth … __monitor ID READYFD`).
pub(super) fn main(root: &Path, runroot: &Path, id: &str, ready_fd: i32) -> i32 {
    // SAFETY: PR_SET_NAME with a NUL-terminated name (what `ps` shows), and the subreaper flag
    // that makes an orphaned container our child.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, c"berth-keeper".as_ptr(), 0, 0, 0);
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    if ready_fd < 0 {
        return 1;
    }
    super::set_cloexec(ready_fd, true);
    // SAFETY: the fd number was handed to us by our parent, open and ours alone.
    let ready = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(ready_fd) });
    berth_runtime::signals::block_all();
    let fail = |ready, msg: String| {
        report(
            Some(ready),
            &Ready::Failed {
                kind: Failure::Engine,
                message: msg,
            },
        );
        1
    };
    let engine = match Engine::open(root, runroot) {
        Ok(e) => e,
        Err(e) => return fail(ready, e.to_string()),
    };
    let mut rec = match engine.records.load(id) {
        Ok(r) => r,
        Err(e) => return fail(ready, e.to_string()),
    };
    let o = match engine.options(&rec) {
        Ok(o) => o,
        Err(e) => return fail(ready, e.to_string()),
    };
    let (ours, theirs) = match berth_runtime::sync::pair() {
        Ok(p) => p,
        Err(e) => return fail(ready, format!("the keeper's channel: {e}")),
    };
    // SAFETY: no thread runs here; the child goes on with plain Rust code and leaves by
    // returning from main.
    let monitor = unsafe { libc::fork() };
    if monitor < 0 {
        return fail(ready, format!("fork: {}", std::io::Error::last_os_error()));
    }
    if monitor == 0 {
        drop(ours);
        return monitor_main(&engine, &mut rec, &o, Some(ready), Some(&theirs));
    }
    drop((ready, theirs));
    // SAFETY: O_NONBLOCK on our own socket: the takeover drains it without waiting.
    unsafe { libc::fcntl(ours.raw(), libc::F_SETFL, libc::O_NONBLOCK) };
    drop_code_pages_unless_ended(monitor);
    keep(&engine, id, monitor, &ours)
}

/// Drops the keeper's start-up pages once the monitor has run `DROP_AFTER`: a container that ends
/// sooner (`docker run --rm busybox true`) never pays for the walk, and no start shares its two
/// cores with it.
fn drop_code_pages_unless_ended(monitor: i32) {
    // SAFETY: pidfd_open of our own child, not yet reaped; the fd is ours alone.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, monitor, 0) } as i32;
    if fd >= 0 {
        // SAFETY: a new fd no one else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut ended = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let wait = super::streams::DROP_AFTER.as_millis() as i32;
        // SAFETY: one pollfd of ours, for the given time.
        if unsafe { libc::poll(&mut ended, 1, wait) } != 0 {
            return; // the monitor ended (keep reaps it next), or poll failed: nothing to save
        }
    }
    super::streams::drop_code_pages();
}

/// Waits for the monitor; if it is killed, takes over.
fn keep(engine: &Engine, id: &str, monitor: i32, chan: &Channel) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: waiting for our children.
        let r = unsafe { libc::waitpid(-1, &mut status, 0) };
        if r < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return 0;
        }
        if r == monitor {
            if libc::WIFSIGNALED(status) {
                return take_over(engine, id, monitor, chan);
            }
            return 0;
        }
    }
}

/// The monitor's side: hands the keeper copies of the watch's ends for this launch. The stdin
/// of a `-i` container is not handed over (a copy would keep it from ever seeing its end).
pub(super) fn hand_over(chan: Option<&Channel>, w: &Watched) {
    let Some(chan) = chan else { return };
    let mut fds = w.fds();
    let null = (!w.tty).then(super::devnull).and_then(Result::ok);
    if let Some(n) = &null {
        fds[2] = n.as_raw_fd();
    }
    // Without a keeper that holds these, a killed monitor loses the exit status: recorded then.
    if let Err(e) = chan.send_fds(&fds) {
        berth_runtime::warn(&format!("berth-monitor: handing over to the keeper: {e}"));
    }
}

/// The keeper of the monitor running this code, when there is one (its parent).
pub(super) fn pid_of_parent(chan: Option<&Channel>) -> i32 {
    match chan {
        // SAFETY: getppid cannot fail.
        Some(_) => unsafe { libc::getppid() },
        None => 0,
    }
}

/// The last set of ends the monitor handed over (one per launch), if any.
fn latest_ends(chan: &Channel) -> Option<[OwnedFd; 5]> {
    let mut latest = None;
    while let Ok(fds) = chan.recv_fds(5) {
        latest = <[OwnedFd; 5]>::try_from(fds).ok();
    }
    latest
}

/// The monitor was killed: the container (if it still runs) is now our child. Becomes its watcher
/// and records its real exit; a container the monitor never finished starting is torn down.
fn take_over(engine: &Engine, id: &str, monitor: i32, chan: &Channel) -> i32 {
    let ends = latest_ends(chan);
    let me = std::process::id() as i32;
    let rec = {
        let Ok(_lock) = engine.records.lock(id) else {
            return 0;
        };
        let Ok(mut rec) = engine.records.load(id) else {
            return 0;
        };
        let watched_by_monitor = rec.state.monitor_pid == monitor;
        if !watched_by_monitor || !rec.is_active() {
            return 0; // finished, or already someone else's
        }
        rec.state.monitor_pid = me;
        rec.state.monitor_start = berth_sys::process::start_time(me);
        rec.state.keeper_pid = 0;
        rec.state.keeper_start = 0;
        if engine.records.save(&rec).is_err() {
            return 1;
        }
        rec
    };
    let watched = match ends.map(|fds| Watched::from_fds(engine, &rec, fds)) {
        Some(Ok(w)) => w,
        other => {
            let why = match other {
                Some(Err(e)) => {
                    format!("the monitor died and its log could not be taken over: {e}")
                }
                _ => "the monitor died while starting the container".to_string(),
            };
            abandon(engine, id, EngineError::msg(why));
            return 1;
        }
    };
    watch(engine, id, rec.state.pid, watched, None)
}

/// Kills what the dead monitor left half-started and records why.
fn abandon(engine: &Engine, id: &str, why: EngineError) {
    let _ = berth_runtime::ops::kill(&engine.runtime_root, id, libc::SIGKILL, true);
    let code = super::streams::wait_exit(-1);
    let Ok(_lock) = engine.records.lock(id) else {
        return;
    };
    if let Ok(mut rec) = engine.records.load(id) {
        rec.state.error = why.to_string();
        let st = berth_runtime::state::ContainerState::load(&engine.runtime_root, id).ok();
        engine.finish_watched(&mut rec, st.as_ref(), code);
        if rec.auto_remove {
            let _ = engine.remove_files(&rec, true);
        }
    }
}
