//! Watching a container: the foreground `run` (its own monitor: signals forwarded, output copied to
//! the terminal and the log) and the detached monitor, a forked process like conmon that is the
//! container's parent and subreaper, logs its output, records its exit, applies the restart policy
//! and `--rm`. Above the monitor sits its keeper, a small subreaper that inherits the container if
//! the monitor is killed and finishes the watch with the real exit status. No threads are running
//! when either clones the container. The hidden command lines of both are built and decoded here.

mod keeper;
mod spawner;
mod streams;

/// `berth serve` starts one, so its detached starts skip the keeper's exec.
pub use spawner::start_spawner;
/// Also what an idle `berth serve` sheds (its start-up and request code stays in the page cache).
pub use streams::drop_code_pages;

use crate::container::Engine;
use crate::error::{EngineError, Failure, Result};
use crate::launch::{Launched, Watcher};
use crate::logs::LogWriter;
use crate::options::RunOptions;
use crate::record::Record;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use streams::{devnull, dup, dup2, pipe, set_cloexec, ContainerEnds, WatcherEnds};

/// `berth run` without `-d`: returns the container's exit status.
pub fn run_foreground(engine: &Engine, rec: &mut Record, o: &RunOptions) -> Result<i32> {
    berth_runtime::signals::block_all();
    let mut log = streams::open_log(engine, rec)?;
    if rec.tty {
        let l = engine.launch(rec, o, Watcher::Foreground)?;
        let Launched { pid, state, master } = l;
        let _prober = engine.start_probing(&rec.id, pid, rec.health_check.as_ref());
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
    let saved = (dup(0)?, dup(1)?, dup(2)?);
    let null = devnull()?;
    // Input when the container keeps stdin open and this caller attaches it (`run -i`,
    // `start -i`; never `start -a` alone).
    if !(rec.open_stdin && o.interactive) {
        dup2(null.as_raw_fd(), 0);
    }
    dup2(out_w.as_raw_fd(), 1);
    dup2(err_w.as_raw_fd(), 2);
    let launched = engine.launch(rec, o, Watcher::Foreground);
    dup2(saved.0.as_raw_fd(), 0);
    dup2(saved.1.as_raw_fd(), 1);
    dup2(saved.2.as_raw_fd(), 2);
    drop((out_w, err_w));
    let l = launched?;
    let _prober = engine.start_probing(&rec.id, l.pid, rec.health_check.as_ref());
    // `-a`: only the named output streams reach the terminal (all are logged).
    let shown = |s: &str| o.attach.is_empty() || o.attach.iter().any(|a| a == s);
    let echo = (
        if shown("stdout") {
            saved.1.as_raw_fd()
        } else {
            null.as_raw_fd()
        },
        if shown("stderr") {
            saved.2.as_raw_fd()
        } else {
            null.as_raw_fd()
        },
    );
    let copier = std::thread::spawn(move || {
        streams::copy_output(out_r, err_r, &mut log, Some(echo));
        log
    });
    let code = if o.no_sig_proxy {
        match streams::wait_without_proxy(l.pid) {
            Ok(code) => code,
            // berth was told to stop, not the container: it runs on unwatched (reconciled
            // when it ends), as a Docker container outlives its killed client.
            Err(sig) => return Ok(128 + sig),
        }
    } else {
        berth_runtime::signals::forward_until_exit(l.pid).unwrap_or(255)
    };
    let log = copier.join().ok();
    if let Some(failure) = log.as_ref().and_then(|l| l.failure()) {
        rec.state.error = failure.to_string();
    }
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

/// What the monitor tells `start_detached` once the container started, or why it did not.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
enum Ready {
    Started,
    Failed { kind: Failure, message: String },
}

fn report(ready: Option<std::fs::File>, what: &Ready) {
    if let Some(mut r) = ready {
        let line = serde_json::to_vec(what).expect("the ready message serializes");
        // The caller may have been killed; the record says the same.
        let _ = r.write_all(&line);
    }
}

/// `berth run -d` / `berth start`: starts the keeper and monitor (a fresh exec of this binary, so
/// they carry nothing of the CLI's memory), waits until the container started (or failed), and
/// returns. The monitor lives on as the container's parent.
pub fn start_detached(engine: &Engine, rec: &mut Record) -> Result<()> {
    start_detached_with(engine, rec, false)
}

/// `start_detached`, telling the watcher (with `attach_first`) to wait for its first attach
/// client before it reads the container's output: a client that attached before the start
/// (the API's `docker run`) loses nothing. Passed in the monitor's environment, never set in
/// this process's own (the API service has threads).
pub fn start_detached_with(engine: &Engine, rec: &mut Record, attach_first: bool) -> Result<()> {
    let (ready_r, ready_w) = pipe()?;
    if spawner::spawn(engine, &rec.id, attach_first, &ready_w) {
        drop(ready_w);
        return await_ready(engine, rec, ready_r, None);
    }
    let argv = self_argv(
        engine,
        MONITOR_COMMAND,
        &[rec.id.clone(), ready_w.as_raw_fd().to_string()],
    )?;
    let envp = attach_first.then(monitor_env).transpose()?;
    let pid = spawn_self(&argv, envp.as_ref(), ready_w.as_raw_fd())?;
    drop(ready_w);
    await_ready(engine, rec, ready_r, Some(pid))
}

/// Forks and execs this binary with `argv` (and `envp`, else this process's environment) in a
/// session of its own, its stdio on /dev/null (it must not hold the caller's stdout/stderr open:
/// a pipe reader would never see EOF) and `pass` left open across the exec. Its pid.
fn spawn_self(
    argv: &berth_runtime::process::CStrings,
    envp: Option<&berth_runtime::process::CStrings>,
    pass: RawFd,
) -> Result<i32> {
    let null = devnull()?;
    // SAFETY: the child only calls async-signal-safe functions (fcntl, dup2, setsid, execv(e),
    // _exit) on memory prepared before the fork.
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
            libc::fcntl(pass, libc::F_SETFD, 0);
            for fd in 0..3 {
                libc::dup2(null.as_raw_fd(), fd);
            }
            libc::setsid();
            match envp {
                Some(env) => libc::execve(c"/proc/self/exe".as_ptr(), argv.as_ptr(), env.as_ptr()),
                None => libc::execv(c"/proc/self/exe".as_ptr(), argv.as_ptr()),
            };
            libc::_exit(127);
        }
    }
    Ok(pid)
}

/// Reads the monitor's answer on the ready pipe (to its end: every copy of the write end is
/// closed once the monitor answered or died) and reloads the record it saved.
fn await_ready(
    engine: &Engine,
    rec: &mut Record,
    ready_r: OwnedFd,
    keeper: Option<i32>,
) -> Result<()> {
    let mut msg = Vec::new();
    let read = std::fs::File::from(ready_r).read_to_end(&mut msg);
    // The keeper double-forks nothing: reap it if it already ended, else leave it to init.
    if let Some(pid) = keeper {
        // SAFETY: non-blocking reap of our own child.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
    }
    match serde_json::from_slice::<Ready>(&msg) {
        Ok(Ready::Started) => {
            *rec = engine.records.load(&rec.id)?;
            Ok(())
        }
        Ok(Ready::Failed { kind, message }) => Err(EngineError::Reported { kind, message }),
        Err(_) => Err(EngineError::msg(match read {
            Err(e) => format!("reading the monitor's answer: {e}"),
            Ok(_) => "the monitor died before the container started".to_string(),
        })),
    }
}

/// This process's environment with `ATTACH_FIRST` added, for the monitor.
fn monitor_env() -> Result<berth_runtime::process::CStrings> {
    let vars = std::env::vars_os()
        .filter(|(k, _)| k != crate::attach::ATTACH_FIRST)
        .map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            kv
        })
        .chain(std::iter::once(
            format!("{}=1", crate::attach::ATTACH_FIRST).into_bytes(),
        ));
    berth_runtime::process::CStrings::new("monitor environment", vars)
        .map_err(|e| EngineError::msg(e.to_string()))
}

/// The hidden command line of the keeper: `berth --root R --runroot R __monitor ID FD`.
const MONITOR_COMMAND: &str = "__monitor";
/// The hidden command line of the watcher: `berth --root R --runroot R __watch ID PID OUT ERR IN
/// LISTENER LOG KEEPER` (KEEPER is -1 when the watcher has no keeper).
const WATCH_COMMAND: &str = "__watch";
/// The hidden command line of a health probe: `berth --root R --runroot R __probe ID CMD…` (the
/// check's command run in the container; its status is the probe's).
pub(crate) const PROBE_COMMAND: &str = "__probe";

/// Runs the keeper, the spawner or the watcher when `argv` is one of their hidden command lines
/// (`main` asks before any parsing); None for any other command line.
pub fn entry(argv: &[String]) -> Option<i32> {
    let (root, runroot) = (Path::new(argv.get(2)?), Path::new(argv.get(4)?));
    let n = |i: usize| {
        argv.get(i)
            .and_then(|s| s.parse::<i32>().ok())
            .unwrap_or(-1)
    };
    match (argv.len(), argv.get(5).map(String::as_str)) {
        (8, Some(MONITOR_COMMAND)) => Some(keeper::main(root, runroot, &argv[6], n(7))),
        (7, Some(spawner::SPAWNER_COMMAND)) => Some(spawner::main(root, runroot, n(6))),
        (14, Some(WATCH_COMMAND)) => {
            let fds = [n(8), n(9), n(10), n(11), n(12)];
            Some(watch_entry(root, runroot, &argv[6], n(7), fds, n(13)))
        }
        (n, Some(PROBE_COMMAND)) if n >= 8 => {
            Some(probe_entry(root, runroot, &argv[6], &argv[7..]))
        }
        _ => None,
    }
}

/// A health probe: the check's command in the running container, with this process's stdio.
fn probe_entry(root: &Path, runroot: &Path, id: &str, command: &[String]) -> i32 {
    let Ok(engine) = Engine::open(root, runroot) else {
        return 125;
    };
    let req = crate::exec::ExecRequest {
        command: command.to_vec(),
        ..Default::default()
    };
    let code = match engine.exec(id, &req) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            e.exit_code() as i32
        }
    };
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{}{code}", crate::health::TRAILER);
    let _ = out.flush();
    code
}

/// `berth --root R --runroot R COMMAND ARGS…`: how this binary re-executes itself as a keeper
/// or a watcher (`entry` recognises both).
fn self_argv(
    engine: &Engine,
    command: &str,
    args: &[String],
) -> Result<berth_runtime::process::CStrings> {
    let head = [
        "berth".to_string(),
        "--root".into(),
        engine.root.display().to_string(),
        "--runroot".into(),
        engine.runroot.display().to_string(),
        command.into(),
    ];
    berth_runtime::process::CStrings::new(
        "monitor argument",
        head.iter().chain(args).map(|a| a.as_bytes().to_vec()),
    )
    .map_err(|e| EngineError::msg(e.to_string()))
}

/// The monitor proper, in the keeper's child: opens the container's stdio, log and attach
/// socket, launches the container, hands copies of the watcher's ends to the keeper and becomes
/// the watcher. A failure before the start is reported and recorded; the container does not run.
fn monitor_main(
    engine: &Engine,
    rec: &mut Record,
    o: &RunOptions,
    ready: Option<std::fs::File>,
    keeper: Option<&berth_runtime::sync::Channel>,
) -> i32 {
    // SAFETY: PR_SET_NAME with a NUL-terminated name (what `ps` shows), and the subreaper flag.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, c"berth-monitor".as_ptr(), 0, 0, 0);
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    berth_runtime::signals::block_all();
    let fail = |rec: &mut Record, ready, e: EngineError| {
        rec.state.status = if rec.state.restart_count > 0 {
            "exited".into()
        } else {
            "created".into()
        };
        rec.state.error = e.to_string();
        rec.state.exit_code = e.exit_code() as i32;
        let _ = std::fs::remove_file(crate::attach::socket_path(&engine.runroot, &rec.id));
        engine.started(rec);
        // The report below carries the failure to the caller; a record that cannot be saved
        // is reconciled by the next command that reads it (the start hold says what to undo).
        let _ = engine.records.save(rec);
        report(
            ready,
            &Ready::Failed {
                kind: e.failure(),
                message: e.to_string(),
            },
        );
        1
    };
    // The start is recorded before anything is made for it (the attach socket first): a monitor
    // killed from here on leaves a hold that tells the next command what to undo.
    let held = engine
        .records
        .lock(&rec.id)
        .map_err(EngineError::from)
        .and_then(|_lock| engine.hold_for_start(rec));
    if let Err(e) = held {
        return fail(rec, ready, e);
    }
    let (cends, wends) = match streams::detached_ends(engine, rec).and_then(|e| Ok((e, devnull()?)))
    {
        Ok((ends, null)) => {
            dup2(null.as_raw_fd(), 0);
            ends
        }
        Err(e) => return fail(rec, ready, e),
    };
    let ContainerEnds { out, err, stdin } = cends;
    if let Some(r) = &stdin {
        dup2(r.as_raw_fd(), 0);
    }
    dup2(out.as_raw_fd(), 1);
    dup2(err.as_raw_fd(), 2);
    rec.state.keeper_pid = keeper::pid_of_parent(keeper);
    rec.state.keeper_start = berth_sys::process::start_time(rec.state.keeper_pid);
    let launched = engine.launch(rec, o, Watcher::Monitor);
    if let Ok(null) = devnull() {
        for fd in 0..3 {
            dup2(null.as_raw_fd(), fd);
        }
    }
    drop((out, err, stdin));
    let l = match launched {
        Ok(l) => l,
        Err(e) => return fail(rec, ready, e),
    };
    let watched = match watched_streams(rec, l.master, wends) {
        Ok(w) => w,
        Err(e) => {
            // No way to read the container's output: it cannot run unwatched.
            let _ = berth_runtime::ops::kill(&engine.runtime_root, &rec.id, libc::SIGKILL, true);
            rec.state.error = e.to_string();
            let code = streams::wait_exit(l.pid);
            return finish_watch(engine, &rec.id, code, None, None, keeper);
        }
    };
    keeper::hand_over(keeper, &watched);
    report(ready, &Ready::Started);
    exec_watcher(engine, &rec.id, l.pid, &watched, keeper);
    // Only when the exec failed: watch from here.
    watch(engine, &rec.id, l.pid, watched, keeper)
}

/// Everything the watcher holds: the container's output (a pty master, or stdout and stderr
/// pipes), where client input goes, the attach socket and the log.
pub(crate) struct Watched {
    out: OwnedFd,
    err: OwnedFd,
    input: OwnedFd,
    listener: UnixListener,
    log: LogWriter,
    tty: bool,
    has_input: bool,
}

impl Watched {
    fn fds(&self) -> [RawFd; 5] {
        [
            self.out.as_raw_fd(),
            self.err.as_raw_fd(),
            self.input.as_raw_fd(),
            self.listener.as_raw_fd(),
            self.log.file().as_raw_fd(),
        ]
    }

    /// Rebuilds the set from five fds in `fds()` order (handed over across exec or a socket).
    fn from_fds(engine: &Engine, rec: &Record, fds: [OwnedFd; 5]) -> std::io::Result<Watched> {
        let [out, err, input, listener, log] = fds;
        let log = LogWriter::adopt(
            &engine.log_path(&rec.id),
            std::fs::File::from(log),
            rec.log_max_size,
            rec.log_max_file,
        )?;
        Ok(Watched {
            out,
            err,
            input,
            listener: UnixListener::from(listener),
            log,
            tty: rec.tty,
            has_input: rec.tty || rec.open_stdin,
        })
    }
}

/// The watcher's streams once the container runs: with a terminal, its master is the output and
/// the input (a placeholder stands in for stderr); without, the pipes.
fn watched_streams(rec: &Record, master: Option<OwnedFd>, w: WatcherEnds) -> Result<Watched> {
    let placeholder = || devnull();
    let (out, err, input) = match master {
        Some(m) => {
            let input = dup(m.as_raw_fd())?;
            (m, placeholder()?, input)
        }
        None => {
            let input = match w.input {
                Some(i) => i,
                None => placeholder()?,
            };
            (w.out, w.err, input)
        }
    };
    Ok(Watched {
        out,
        err,
        input,
        listener: w.listener,
        log: w.log,
        tty: rec.tty,
        has_input: rec.tty || rec.open_stdin,
    })
}

fn exec_watcher(
    engine: &Engine,
    id: &str,
    pid: i32,
    w: &Watched,
    keeper: Option<&berth_runtime::sync::Channel>,
) {
    let fds = w.fds();
    let keeper_fd = keeper.map_or(-1, |k| k.raw());
    for fd in fds.into_iter().chain((keeper_fd >= 0).then_some(keeper_fd)) {
        set_cloexec(fd, false);
    }
    let mut args = vec![id.to_string(), pid.to_string()];
    args.extend(fds.iter().map(|f| f.to_string()));
    args.push(keeper_fd.to_string());
    let Ok(argv) = self_argv(engine, WATCH_COMMAND, &args) else {
        return;
    };
    // SAFETY: NUL-terminated argv of C strings that outlive the call; returns only on failure.
    unsafe { libc::execv(c"/proc/self/exe".as_ptr(), argv.as_ptr()) };
    for fd in fds.into_iter().chain((keeper_fd >= 0).then_some(keeper_fd)) {
        set_cloexec(fd, true);
    }
}

/// Entry point of the watcher.
fn watch_entry(
    root: &Path,
    runroot: &Path,
    id: &str,
    pid: i32,
    fds: [RawFd; 5],
    keeper: RawFd,
) -> i32 {
    // SAFETY: PR_SET_NAME with a NUL-terminated name; the subreaper flag again for safety.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, c"berth-monitor".as_ptr(), 0, 0, 0);
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    if fds.iter().any(|&f| f < 0) {
        return 1;
    }
    for fd in fds {
        set_cloexec(fd, true);
    }
    // SAFETY: the fds were handed over by the monitor across exec and are ours alone.
    let owned = fds.map(|f| unsafe { OwnedFd::from_raw_fd(f) });
    let keeper = (keeper >= 0).then(|| {
        set_cloexec(keeper, true);
        // SAFETY: as above: the keeper's channel, handed over across exec.
        berth_runtime::sync::Channel::from_fd(unsafe { OwnedFd::from_raw_fd(keeper) })
    });
    let Ok(engine) = Engine::open(root, runroot) else {
        return 1;
    };
    let Ok(rec) = engine.records.load(id) else {
        return 1;
    };
    match Watched::from_fds(&engine, &rec, owned) {
        Ok(w) => watch(&engine, id, pid, w, keeper.as_ref()),
        Err(e) => {
            let mut rec = rec;
            rec.state.error = format!("the watcher lost the container's log: {e}");
            let _ = engine.records.save(&rec);
            1
        }
    }
}

/// Copies the container's output into its log and to attached clients until it exits, records
/// the exit, and applies `--rm` and the restart policy.
fn watch(
    engine: &Engine,
    id: &str,
    pid: i32,
    w: Watched,
    keeper: Option<&berth_runtime::sync::Channel>,
) -> i32 {
    let shed = streams::drop_code_pages_soon();
    let Watched {
        out,
        err,
        input,
        listener,
        mut log,
        tty,
        has_input,
    } = w;
    let streams = crate::attach::Streams {
        out,
        err: (!tty).then_some(err),
        input: has_input.then_some(input),
        tty,
    };
    let check = engine.records.load(id).ok().and_then(|r| r.health_check);
    let prober = engine.start_probing(id, pid, check.as_ref());
    let client = crate::attach::serve(streams, listener, &mut log);
    log.finish();
    let code = streams::wait_exit(pid);
    drop(prober);
    drop(shed);
    finish_watch(engine, id, code, log.failure(), client, keeper)
}

/// Records a watched container's end (`code` None: its status was lost), tells the attached
/// client, removes the attach socket, then applies `--rm` or the restart policy.
fn finish_watch(
    engine: &Engine,
    id: &str,
    code: Option<i32>,
    log_failure: Option<&str>,
    client: Option<std::os::unix::net::UnixStream>,
    keeper: Option<&berth_runtime::sync::Channel>,
) -> i32 {
    let socket = crate::attach::socket_path(&engine.runroot, id);
    let (lock, lock_failure) = match engine.records.lock(id) {
        Ok(l) => (Some(l), None),
        Err(crate::record::RecordError::NoSuch(_)) => {
            let _ = std::fs::remove_file(&socket);
            return 0; // removed meanwhile (`rm -f`)
        }
        Err(e) => (None, Some(format!("locking the record: {e}"))),
    };
    // Re-read what `stop`/`rm -f` may have changed while we waited.
    let Ok(mut rec) = engine.records.load(id) else {
        let _ = std::fs::remove_file(&socket);
        return 0;
    };
    let st = berth_runtime::state::ContainerState::load(&engine.runtime_root, id).ok();
    let notes: Vec<&str> = [log_failure, lock_failure.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    if !notes.is_empty() {
        rec.state.error = notes.join("; ");
    }
    // Finishing removes the socket too; the client already connected keeps its connection.
    // A restart is recorded in the same save as the exit.
    let (code, restarting) = engine.finish_watched_then(&mut rec, st.as_ref(), code, |r, c| {
        !r.auto_remove && should_restart(r, c)
    });
    crate::attach::send_exit(client, code);
    if rec.auto_remove {
        let _ = engine.remove_files(&rec, true);
        return 0;
    }
    if !restarting {
        return 0;
    }
    drop(lock);
    rec.state.monitor_pid = std::process::id() as i32;
    rec.state.monitor_start = berth_sys::process::start_time(std::process::id() as i32);
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
    let o = match engine.options(&rec) {
        Ok(o) => o,
        Err(e) => {
            rec.state.status = "exited".into();
            rec.state.error = e.to_string();
            let _ = engine.records.save(&rec);
            return 1;
        }
    };
    monitor_main(engine, &mut rec, &o, None, keeper)
}
