//! The plumbing of a watched container: its stdio pipes (the container's ends and the watcher's),
//! the copy loop from pipes into the json-file log (and a foreground terminal), and the watcher's
//! trick for a small resident set. Nothing here decides a container's fate.

use crate::error::{EngineError, Result};
use crate::logs::LogWriter;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(EngineError::msg(format!(
            "pipe: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A close-on-exec copy of `fd`.
pub(crate) fn dup(fd: RawFd) -> Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new fd we own, or -1.
    let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if n < 0 {
        return Err(EngineError::msg(format!(
            "dup: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: a fresh fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

pub(crate) fn dup2(from: RawFd, to: RawFd) {
    // SAFETY: dup2 onto a standard fd; the result is not CLOEXEC, so the container inherits it.
    unsafe { libc::dup2(from, to) };
}

pub(crate) fn devnull() -> Result<OwnedFd> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| EngineError::msg(format!("/dev/null: {e}")))
}

/// Sets or clears FD_CLOEXEC on an fd we own.
pub(crate) fn set_cloexec(fd: RawFd, on: bool) {
    // SAFETY: F_SETFD on our own fd.
    unsafe { libc::fcntl(fd, libc::F_SETFD, if on { libc::FD_CLOEXEC } else { 0 }) };
}

/// The container's ends of its stdio: what its init gets as fds 0, 1 and 2.
pub(crate) struct ContainerEnds {
    pub out: OwnedFd,
    pub err: OwnedFd,
    /// The read end of a `-i` container's stdin (without a terminal).
    pub stdin: Option<OwnedFd>,
}

/// The watcher's ends: what it copies from, where client input goes, the attach socket and the
/// log. All of it is made before the container starts, so a failure stops the start.
pub(crate) struct WatcherEnds {
    pub out: OwnedFd,
    pub err: OwnedFd,
    pub input: Option<OwnedFd>,
    pub listener: std::os::unix::net::UnixListener,
    pub log: LogWriter,
}

/// Both sets of ends for a detached container.
pub(crate) fn detached_ends(
    engine: &crate::Engine,
    rec: &crate::record::Record,
) -> Result<(ContainerEnds, WatcherEnds)> {
    let log = open_log(engine, rec)?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (stdin, input) = if rec.open_stdin && !rec.tty {
        let (r, w) = pipe()?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    // Last: nothing after it can fail and leave its socket file behind.
    let listener = crate::attach::listen(&engine.runroot, &rec.id).map_err(|e| {
        EngineError::msg(format!(
            "the attach socket {}: {e}",
            crate::attach::socket_path(&engine.runroot, &rec.id).display()
        ))
    })?;
    Ok((
        ContainerEnds {
            out: out_w,
            err: err_w,
            stdin,
        },
        WatcherEnds {
            out: out_r,
            err: err_r,
            input,
            listener,
            log,
        },
    ))
}

/// The container's json-file log, opened for appending; a failure names the file. With
/// `--log-driver none` the output goes nowhere.
pub(crate) fn open_log(engine: &crate::Engine, rec: &crate::record::Record) -> Result<LogWriter> {
    let path = if rec.log_driver == "none" {
        std::path::PathBuf::from("/dev/null")
    } else {
        engine.log_path(&rec.id)
    };
    LogWriter::open(&path, rec.log_max_size, rec.log_max_file)
        .map_err(|e| EngineError::msg(format!("the container's log {}: {e}", path.display())))
}

/// Copies the container's stdout/stderr pipes into the log (and, in the foreground, to our own
/// stdout/stderr) until both close.
pub(crate) fn copy_output(
    out: OwnedFd,
    err: OwnedFd,
    log: &mut LogWriter,
    echo: Option<(RawFd, RawFd)>,
) {
    let mut open = [true, true];
    let fds = [out.as_raw_fd(), err.as_raw_fd()];
    let mut buf = vec![0u8; 64 * 1024];
    while open[0] || open[1] {
        let mut p: Vec<libc::pollfd> = (0..2)
            .map(|i| libc::pollfd {
                fd: if open[i] { fds[i] } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: polling two valid pollfd entries.
        let r = unsafe { libc::poll(p.as_mut_ptr(), 2, -1) };
        if r < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        for i in 0..2 {
            if p[i].revents == 0 {
                continue;
            }
            // SAFETY: reading into our buffer from a pipe we own.
            let n = unsafe { libc::read(fds[i], buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                if n == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                    open[i] = false;
                }
                continue;
            }
            let data = &buf[..n as usize];
            log.write_or_note(i, data);
            if let Some((o, e)) = echo {
                let fd = if i == 0 { o } else { e };
                // SAFETY: borrowing our own stdout/stderr for a write; ManuallyDrop keeps it open.
                let mut f = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
                // The terminal may go away; the log must not stop for it.
                let _ = f.write_all(data);
            }
        }
    }
    log.finish();
}

/// How long a watcher runs before it drops its start-up pages: a container that ends sooner
/// (`docker run --rm busybox true`) is finished with fault-around on, and without the walk of
/// `/proc/self/smaps` on its critical path.
pub(super) const DROP_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

/// `drop_code_pages` on a thread of its own once the watcher has run `DROP_AFTER`. Dropping the
/// guard cancels it if it has not begun and waits for it if it has: the watcher joins it before
/// anything that may clone a container (a restart), so no thread runs then.
pub(crate) struct CodePagesDrop {
    cancel: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub(crate) fn drop_code_pages_soon() -> CodePagesDrop {
    let (cancel, cancelled) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("berth-shed".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                cancelled.recv_timeout(DROP_AFTER)
            {
                drop_code_pages();
            }
        })
        // Without the thread the pages stay: more RSS, nothing wrong.
        .ok();
    CodePagesDrop {
        cancel: Some(cancel),
        thread,
    }
}

impl Drop for CodePagesDrop {
    fn drop(&mut self) {
        drop(self.cancel.take());
        if let Some(t) = self.thread.take() {
            // Its only failure is a panic, which (panic = abort) ended the process already.
            let _ = t.join();
        }
    }
}

/// Unmaps the code and read-only data pages start-up faulted in (they stay in the page cache,
/// shared): the watcher then holds only the pages its copy loop touches, one at a time
/// (MADV_RANDOM turns off fault-around). Only file-backed mappings that were never written are
/// dropped — the next access faults the same bytes back; relocated (dirty) pages are left alone.
pub fn drop_code_pages() {
    drop_clean_file_pages(true)
}

/// Unmaps the clean, read-only file-backed pages this process faulted in; `random` also turns
/// off fault-around for them (a process that forks, as the keeper spawner does, keeps it: its
/// children fault back what they run sixteen pages at a time).
pub(crate) fn drop_clean_file_pages(random: bool) {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mut current: Option<(usize, usize, bool)> = None; // (start, len, candidate)
    let flush = |m: Option<(usize, usize, bool)>, dirty: bool| {
        if let Some((a, len, true)) = m {
            if !dirty {
                // SAFETY: advice on a private, clean, read-only file mapping of our own; it
                // changes residency only, never content.
                unsafe {
                    if random {
                        libc::madvise(a as *mut libc::c_void, len, libc::MADV_RANDOM);
                    }
                    libc::madvise(a as *mut libc::c_void, len, libc::MADV_DONTNEED);
                }
            }
        }
    };
    let mut dirty = false;
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first
            .split_once('-')
            .filter(|(a, _)| a.bytes().all(|c| c.is_ascii_hexdigit()))
        {
            flush(current.take(), dirty);
            dirty = false;
            let perms = f.next().unwrap_or("");
            let path = line.split_whitespace().nth(5).unwrap_or("");
            if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                let candidate = (perms == "r-xp" || perms == "r--p") && path.starts_with('/');
                current = Some((a, b - a, candidate));
            }
        } else if (first == "Private_Dirty:" || first == "Shared_Dirty:")
            && f.next().unwrap_or("0") != "0"
        {
            dirty = true;
        }
    }
    flush(current.take(), dirty);
}

/// Waits for `pid` (reaping every other child too: watchers are subreapers; -1: any one child).
/// None when `pid` is not our child (reaped by someone else: its status is lost).
pub(crate) fn wait_exit(pid: i32) -> Option<i32> {
    loop {
        let mut status = 0;
        // SAFETY: waiting for our children.
        let r = unsafe { libc::waitpid(-1, &mut status, 0) };
        if r < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return None;
        }
        if r == pid || pid == -1 {
            return Some(exit_status(status));
        }
    }
}

/// `--sig-proxy=false`: waits for the container without forwarding signals: its status, or
/// `Err(signal)` when a SIGINT, SIGTERM, SIGHUP or SIGQUIT sent to berth ends the wait (berth
/// leaves, the container stays).
pub(crate) fn wait_without_proxy(pid: i32) -> std::result::Result<i32, i32> {
    loop {
        // SAFETY: zeroed siginfo/sigset are valid; sigwaitinfo fills info. Every signal is
        // blocked in a foreground run, so they queue for this wait.
        let sig = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut set);
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::sigwaitinfo(&set, &mut info)
        };
        match sig {
            libc::SIGCHLD => {
                if let Ok(Some(code)) = berth_runtime::signals::reap(pid) {
                    return Ok(code);
                }
            }
            libc::SIGINT | libc::SIGTERM | libc::SIGHUP | libc::SIGQUIT => return Err(sig),
            _ => {}
        }
    }
}

/// A wait status as a shell reports it: the exit code, or 128 + the signal.
pub(crate) fn exit_status(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}
