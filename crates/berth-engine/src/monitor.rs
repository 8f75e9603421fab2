//! Watching a container: the foreground `run` (its own monitor: signals forwarded, output copied to
//! the terminal and the log) and the detached monitor, a forked process like conmon that is the
//! container's parent and subreaper, logs its output, records its exit, applies the restart policy
//! and `--rm`. No threads are running when either clones the container.

use crate::container::{Engine, EngineError, Launched, Result};
use crate::logs::LogWriter;
use crate::options::RunOptions;
use crate::record::Record;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
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

fn dup(fd: RawFd) -> OwnedFd {
    // SAFETY: F_DUPFD_CLOEXEC returns a new fd we own (stdio always exists here).
    unsafe { OwnedFd::from_raw_fd(libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3)) }
}

fn dup2(from: RawFd, to: RawFd) {
    // SAFETY: dup2 onto a standard fd; the result is not CLOEXEC, so the container inherits it.
    unsafe { libc::dup2(from, to) };
}

fn devnull() -> OwnedFd {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .expect("/dev/null exists");
    OwnedFd::from(f)
}

/// Copies the container's stdout/stderr pipes into the log (and, in the foreground, to our own
/// stdout/stderr) until both close.
fn copy_output(
    out: OwnedFd,
    err: OwnedFd,
    log: &mut Option<LogWriter>,
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
            if let Some(l) = log.as_mut() {
                let _ = l.write(i, data);
            }
            if let Some((o, e)) = echo {
                let fd = if i == 0 { o } else { e };
                let mut f = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
                let _ = f.write_all(data);
            }
        }
    }
    if let Some(l) = log.as_mut() {
        let _ = l.flush_partial();
    }
}

/// `berth run` without `-d`: returns the container's exit status.
pub fn run_foreground(engine: &Engine, rec: &mut Record, o: &RunOptions) -> Result<i32> {
    berth_runtime::signals::block_all();
    if rec.tty {
        let l = engine.launch(rec, o, true)?;
        let Launched { pid, state, master } = l;
        let code = match master {
            Some(m) => berth_runtime::ttyproxy::proxy(m, pid).unwrap_or(255),
            None => berth_runtime::signals::forward_until_exit(pid).unwrap_or(255),
        };
        engine.finish(rec, Some(&state), code);
        return Ok(code);
    }
    // Without a terminal: the container writes into pipes; we copy them to our stdout/stderr and
    // to the log, as Docker's daemon would.
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let saved = (dup(0), dup(1), dup(2));
    let null = devnull();
    if !rec.open_stdin {
        dup2(null.as_raw_fd(), 0);
    }
    dup2(out_w.as_raw_fd(), 1);
    dup2(err_w.as_raw_fd(), 2);
    let launched = engine.launch(rec, o, false);
    dup2(saved.0.as_raw_fd(), 0);
    dup2(saved.1.as_raw_fd(), 1);
    dup2(saved.2.as_raw_fd(), 2);
    drop((out_w, err_w));
    let l = launched?;
    let mut log = LogWriter::open(
        &engine.log_path(&rec.id),
        rec.log_max_size,
        rec.log_max_file,
    )
    .ok();
    let echo = (saved.1.as_raw_fd(), saved.2.as_raw_fd());
    let copier = std::thread::spawn(move || {
        copy_output(out_r, err_r, &mut log, Some(echo));
    });
    let code = berth_runtime::signals::forward_until_exit(l.pid).unwrap_or(255);
    let _ = copier.join();
    engine.finish(rec, Some(&l.state), code);
    Ok(code)
}

/// Whether the restart policy asks for another run after `code`.
fn should_restart(rec: &Record, code: i32) -> bool {
    if rec.manually_stopped {
        return false;
    }
    match rec
        .restart_policy
        .split_once(':')
        .map(|(p, n)| (p, n.parse::<u32>().ok()))
        .unwrap_or((rec.restart_policy.as_str(), None))
    {
        ("always", _) | ("unless-stopped", _) => true,
        ("on-failure", max) => code != 0 && max.is_none_or(|m| rec.state.restart_count < m),
        _ => false,
    }
}

/// `berth run -d` / `berth start`: starts the monitor (a fresh exec of this binary, so it carries
/// nothing of the CLI's memory), waits until the container started (or failed), and returns.
/// The monitor lives on as the container's parent.
pub fn start_detached(engine: &Engine, rec: &mut Record) -> Result<()> {
    let (ready_r, ready_w) = pipe()?;
    let argv = self_argv(
        engine,
        MONITOR_COMMAND,
        &[rec.id.clone(), ready_w.as_raw_fd().to_string()],
    );
    // The monitor must not hold the caller's stdout/stderr open (a pipe reader would never see EOF).
    let null = devnull();
    // SAFETY: the child only calls async-signal-safe functions (fcntl, setsid, execv, _exit) on
    // memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(EngineError::msg(format!(
            "fork: {}",
            std::io::Error::last_os_error()
        )));
    }
    if pid == 0 {
        // SAFETY: see above.
        unsafe {
            libc::fcntl(ready_w.as_raw_fd(), libc::F_SETFD, 0);
            for fd in 0..3 {
                libc::dup2(null.as_raw_fd(), fd);
            }
            libc::setsid();
            libc::execv(c"/proc/self/exe".as_ptr(), argv.as_ptr());
            libc::_exit(127);
        }
    }
    drop(ready_w);
    let mut msg = String::new();
    let _ = std::fs::File::from(ready_r).read_to_string(&mut msg);
    // The monitor double-forks nothing: reap it if it already ended, else leave it to init.
    // SAFETY: non-blocking reap of our own child.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
    match msg.strip_prefix("ok") {
        Some(_) => {
            *rec = engine.records.load(&rec.id)?;
            Ok(())
        }
        None => {
            let (kind, text) = msg.split_once(' ').unwrap_or(("125", msg.as_str()));
            let kind = match kind {
                "126" => crate::container::Failure::CannotInvoke,
                "127" => crate::container::Failure::NotFound,
                _ => crate::container::Failure::Engine,
            };
            let text = if text.is_empty() {
                "the monitor died before the container started"
            } else {
                text
            };
            Err(EngineError {
                kind,
                msg: text.to_string(),
            })
        }
    }
}

/// The hidden command line of the monitor: `berth --root R --runroot R __monitor ID FD`.
pub const MONITOR_COMMAND: &str = "__monitor";

/// Entry point of the monitor process (called by `main` before any argument parsing).
pub fn monitor_entry(
    root: &std::path::Path,
    runroot: &std::path::Path,
    id: &str,
    ready_fd: RawFd,
) -> i32 {
    // SAFETY: PR_SET_NAME with a NUL-terminated name (what `ps` shows as the command).
    unsafe { libc::prctl(libc::PR_SET_NAME, c"berth-monitor".as_ptr(), 0, 0, 0) };
    // SAFETY: the fd number was handed to us by our parent, open and ours alone.
    let ready = unsafe { OwnedFd::from_raw_fd(ready_fd) };
    // SAFETY: marking our own fd close-on-exec (the container must never inherit it).
    unsafe { libc::fcntl(ready.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    let fail = |ready: OwnedFd, msg: String| {
        let _ = std::fs::File::from(ready).write_all(format!("125 {msg}").as_bytes());
        1
    };
    let engine = match Engine::open(root, runroot) {
        Ok(e) => e,
        Err(e) => return fail(ready, e.msg),
    };
    let mut rec = match engine.records.load(id) {
        Ok(r) => r,
        Err(e) => return fail(ready, e.to_string()),
    };
    let o = match engine.options(&rec) {
        Ok(o) => o,
        Err(e) => return fail(ready, e.msg),
    };
    monitor_main(&engine, &mut rec, &o, Some(ready))
}

/// Launches the container and hands over to the watcher. The launch touches most of berth's
/// code; the watcher is a fresh exec of the binary (the container stays its child across exec), so
/// a detached container costs only the pages of the copy loop.
fn monitor_main(engine: &Engine, rec: &mut Record, o: &RunOptions, ready: Option<OwnedFd>) -> i32 {
    // SAFETY: a plain process-attribute syscall in the fresh monitor.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    berth_runtime::signals::block_all();
    let null = devnull();
    dup2(null.as_raw_fd(), 0);
    let mut ready = ready.map(std::fs::File::from);
    let (Ok((out_r, out_w)), Ok((err_r, err_w))) = (pipe(), pipe()) else {
        return 1;
    };
    // `-i` without a terminal: the container reads a pipe whose other end the watcher keeps
    // for attached clients.
    let stdin = if rec.open_stdin && !rec.tty {
        pipe().ok()
    } else {
        None
    };
    if let Some((r, _)) = &stdin {
        dup2(r.as_raw_fd(), 0);
    }
    dup2(out_w.as_raw_fd(), 1);
    dup2(err_w.as_raw_fd(), 2);
    let launched = engine.launch(rec, o, rec.tty);
    dup2(null.as_raw_fd(), 0);
    dup2(null.as_raw_fd(), 1);
    dup2(null.as_raw_fd(), 2);
    drop((out_w, err_w));
    let input = stdin.map(|(_, w)| w);
    let l = match launched {
        Ok(l) => l,
        Err(e) => {
            rec.state.status = if rec.state.restart_count > 0 {
                "exited".into()
            } else {
                "created".into()
            };
            rec.state.error = e.msg.clone();
            rec.state.exit_code = e.exit_code() as i32;
            let _ = engine.records.save(rec);
            if let Some(mut r) = ready.take() {
                let _ = write!(r, "{} {}", e.exit_code(), e.msg);
            }
            return 1;
        }
    };
    if let Some(mut r) = ready.take() {
        let _ = r.write_all(b"ok");
    }
    let (out, err, input) = match l.master {
        // A terminal has one stream (an already-closed pipe stands in for stderr), and its
        // input is the master itself.
        Some(m) => {
            let closed = pipe()
                .map(|(r, _)| r)
                .unwrap_or_else(|_| dup(null.as_raw_fd()));
            let input = dup(m.as_raw_fd());
            (m, closed, Some(input))
        }
        None => (out_r, err_r, input),
    };
    exec_watcher(engine, &rec.id, l.pid, &out, &err, input.as_ref());
    // Only when the exec failed: watch from here.
    watch(engine, &rec.id, l.pid, out, err, input)
}

/// `berth --root R --runroot R COMMAND ARGS…`: how this binary re-executes itself as a monitor
/// or a watcher (`main` recognises both before any other parsing).
fn self_argv(engine: &Engine, command: &str, args: &[String]) -> berth_runtime::process::CStrings {
    let head = [
        "berth".to_string(),
        "--root".into(),
        engine.root.display().to_string(),
        "--runroot".into(),
        engine.runroot.display().to_string(),
        command.into(),
    ];
    berth_runtime::process::CStrings::new(head.iter().chain(args).map(|a| a.as_bytes().to_vec()))
}

/// The hidden command line of the watcher: `berth --root R --runroot R __watch ID PID OUT ERR`.
pub const WATCH_COMMAND: &str = "__watch";

fn exec_watcher(
    engine: &Engine,
    id: &str,
    pid: i32,
    out: &OwnedFd,
    err: &OwnedFd,
    input: Option<&OwnedFd>,
) {
    for fd in [out.as_raw_fd(), err.as_raw_fd()]
        .into_iter()
        .chain(input.map(|i| i.as_raw_fd()))
    {
        // SAFETY: clearing FD_CLOEXEC on fds we own so the watcher inherits them.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
    let fd = |f: Option<&OwnedFd>| f.map(|f| f.as_raw_fd()).unwrap_or(-1).to_string();
    let args = [
        id.to_string(),
        pid.to_string(),
        fd(Some(out)),
        fd(Some(err)),
        fd(input),
    ];
    let argv = self_argv(engine, WATCH_COMMAND, &args);
    // SAFETY: NUL-terminated argv of C strings that outlive the call; returns only on failure.
    unsafe { libc::execv(c"/proc/self/exe".as_ptr(), argv.as_ptr()) };
}

/// Entry point of the watcher (called by `main` before any argument parsing).
pub fn watch_entry(
    root: &std::path::Path,
    runroot: &std::path::Path,
    id: &str,
    pid: i32,
    out: RawFd,
    err: RawFd,
    input: RawFd,
) -> i32 {
    // SAFETY: PR_SET_NAME with a NUL-terminated name; the subreaper flag again for safety.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, c"berth-monitor".as_ptr(), 0, 0, 0);
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    let Ok(engine) = Engine::open(root, runroot) else {
        return 1;
    };
    // SAFETY: the fds were handed over by the monitor across exec and are ours alone.
    let (out, err) = unsafe { (OwnedFd::from_raw_fd(out), OwnedFd::from_raw_fd(err)) };
    // SAFETY: as above; -1 means there is no input to keep.
    let input = (input >= 0).then(|| unsafe { OwnedFd::from_raw_fd(input) });
    for fd in [out.as_raw_fd(), err.as_raw_fd()]
        .into_iter()
        .chain(input.as_ref().map(|i| i.as_raw_fd()))
    {
        // SAFETY: setting FD_CLOEXEC on our own fds.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    watch(&engine, id, pid, out, err, input)
}

/// Unmaps the code and read-only data pages start-up faulted in (they stay in the page cache,
/// shared): the watcher then holds only the pages its copy loop touches, one at a time
/// (MADV_RANDOM turns off fault-around). Only file-backed mappings that were never written are
/// dropped — the next access faults the same bytes back; relocated (dirty) pages are left alone.
fn drop_code_pages() {
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
                    libc::madvise(a as *mut libc::c_void, len, libc::MADV_RANDOM);
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

/// Copies the container's output into its log until it exits, records the exit, and applies
/// `--rm` and the restart policy.
fn watch(
    engine: &Engine,
    id: &str,
    pid: i32,
    out: OwnedFd,
    err: OwnedFd,
    input: Option<OwnedFd>,
) -> i32 {
    let Ok(rec) = engine.records.load(id) else {
        return 1;
    };
    let mut log = LogWriter::open(&engine.log_path(id), rec.log_max_size, rec.log_max_file).ok();
    // Every detached container is served on its attach socket (run -it, attach); without one
    // (the socket cannot be made) the output still goes to the log.
    let listener = crate::attach::listen(&engine.runroot, id).ok();
    drop_code_pages();
    let client = match listener {
        Some(l) => {
            let streams = crate::attach::Streams {
                out,
                err: (!rec.tty).then_some(err),
                input,
                tty: rec.tty,
            };
            crate::attach::serve(streams, l, &mut log)
        }
        None => {
            copy_output(out, err, &mut log, None);
            None
        }
    };
    drop(log);
    let code = wait_exit(pid);
    let lock = engine.records.lock(id).ok();
    // Re-read what `stop`/`rm -f` may have changed while we waited.
    let Ok(mut rec) = engine.records.load(id) else {
        return 0;
    };
    let st = berth_runtime::state::ContainerState::load(&engine.runtime_root, id).ok();
    engine.finish(&mut rec, st.as_ref(), code);
    crate::attach::send_exit(client, code);
    let _ = std::fs::remove_file(crate::attach::socket_path(&engine.runroot, id));
    if rec.auto_remove {
        let _ = engine.remove_files(&rec, true);
        return 0;
    }
    if !should_restart(&rec, code) {
        return 0;
    }
    drop(lock);
    rec.state.restart_count += 1;
    rec.state.status = "restarting".into();
    rec.state.monitor_pid = std::process::id() as i32;
    rec.state.monitor_start = crate::container::start_time(std::process::id() as i32);
    let _ = engine.records.save(&rec);
    let backoff = 100u64 << rec.state.restart_count.min(8);
    std::thread::sleep(std::time::Duration::from_millis(backoff));
    match engine.records.load(id) {
        Ok(r) if !r.manually_stopped => {}
        _ => {
            rec.state.status = "exited".into();
            let _ = engine.records.save(&rec);
            return 0;
        }
    }
    let Ok(o) = engine.options(&rec) else {
        return 1;
    };
    monitor_main(engine, &mut rec, &o, None)
}

/// Waits for `pid` (reaping every other child too: the monitor is a subreaper).
fn wait_exit(pid: i32) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: waiting for our children.
        let r = unsafe { libc::waitpid(-1, &mut status, 0) };
        if r < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return 255;
        }
        if r == pid {
            return if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            };
        }
    }
}
