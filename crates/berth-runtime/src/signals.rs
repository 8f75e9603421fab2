//! Signals for foreground `run` and `exec`: every signal is blocked *before* the clone, so SIGCHLD can
//! never arrive before we wait for it (youki's `run` hangs on that race); then sigwaitinfo forwards
//! each signal to the container and returns the exit status when the child exits.

use crate::error::{Error, Result};

/// Blocks every signal in the calling (single-threaded) process.
pub fn block_all() {
    // SAFETY: plain signal-mask manipulation.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Waits for `pid` to exit, forwarding signals to it. Returns the shell-style status (128+N for a signal).
pub fn forward_until_exit(pid: i32) -> Result<i32> {
    loop {
        // SAFETY: zeroed siginfo/sigset are valid; sigwaitinfo fills info.
        let sig = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut set);
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::sigwaitinfo(&set, &mut info)
        };
        if sig < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(Error::msg(format!("sigwaitinfo: {e}")));
        }
        if sig == libc::SIGCHLD {
            if let Some(code) = reap(pid)? {
                return Ok(code);
            }
            continue;
        }
        if matches!(sig, libc::SIGURG | libc::SIGWINCH) && sig == libc::SIGURG {
            continue;
        }
        // SAFETY: forwarding a signal to our own child.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Non-blocking reap of `pid` (and any other children, e.g. reparented ones); Some(status) once `pid` exited.
pub fn reap(pid: i32) -> Result<Option<i32>> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid out-pointer.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if r <= 0 {
            return Ok(None);
        }
        if r == pid {
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            };
            return Ok(Some(code));
        }
    }
}
