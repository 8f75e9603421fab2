//! `exec` on behalf of a process that cannot run it in itself (the API service: `exec` replaces
//! the caller's stdio and re-executes it from a sealed memfd, neither of which a server with
//! threads may do). A child re-executes this binary as `__exec` with the request, its stdio on
//! pipes or on a new pty whose master the caller keeps, and exits with the process's status.

use crate::error::{EngineError, Result};
use crate::exec::ExecRequest;
use crate::Engine;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The hidden command line: `berth --root R --runroot R __exec ID REQUEST-JSON`.
const EXEC_COMMAND: &str = "__exec";

/// A running exec helper and the caller's ends of its stdio.
pub struct ExecChild {
    pub pid: i32,
    /// With a terminal: the pty master (input, output, window size).
    pub master: Option<OwnedFd>,
    /// Without one: the write end of its stdin (None unless the request is interactive), and
    /// the read ends of its stdout and stderr.
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(EngineError::io("pipe", std::io::Error::last_os_error()));
    }
    // SAFETY: two fresh fds, ours alone.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A new pty: (master, slave), both opened close-on-exec (another thread's fork can never
/// inherit the slave and keep the master from seeing the helper's end).
fn openpty() -> Result<(OwnedFd, OwnedFd)> {
    let err = |what: &str| EngineError::io(what, std::io::Error::last_os_error());
    // SAFETY: posix_openpt returns a new fd or -1; ownership is taken at once.
    let m = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if m < 0 {
        return Err(err("posix_openpt"));
    }
    // SAFETY: a fresh fd, ours alone.
    let master = unsafe { OwnedFd::from_raw_fd(m) };
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: grantpt/unlockpt on our master; ptsname_r writes a NUL-terminated name into the
    // buffer of the given length.
    let ok = unsafe {
        libc::grantpt(m) == 0
            && libc::unlockpt(m) == 0
            && libc::ptsname_r(m, name.as_mut_ptr(), name.len()) == 0
    };
    if !ok {
        return Err(err("pty"));
    }
    // SAFETY: opening the NUL-terminated slave name just written.
    let s = unsafe {
        libc::open(
            name.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if s < 0 {
        return Err(err("pty slave"));
    }
    // SAFETY: a fresh fd, ours alone.
    let slave = unsafe { OwnedFd::from_raw_fd(s) };
    // This pty only relays the exec's own terminal (the container's console, which does the
    // line discipline), as the user's terminal does under the CLI, which puts it in raw mode:
    // raw here too, or every newline came out as `\r\r\n`.
    // SAFETY: termios calls on the slave we own, with a valid out-pointer.
    let raw = unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        libc::tcgetattr(s, &mut t) == 0 && {
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(s, libc::TCSANOW, &t) == 0
        }
    };
    if !raw {
        return Err(err("pty raw mode"));
    }
    Ok((master, slave))
}

fn devnull() -> Result<OwnedFd> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| EngineError::io("/dev/null", e))
}

/// The child's stdio (0, 1, 2) and whether it takes the first as its controlling terminal.
struct ChildStdio {
    fds: [OwnedFd; 3],
    ctty: bool,
}

impl Engine {
    /// Starts `req` in the running container `id` in a child process; the caller keeps its
    /// stdio ends and reaps it with `wait_exec`.
    pub fn spawn_exec(&self, id: &str, req: &ExecRequest) -> Result<ExecChild> {
        let json = serde_json::to_string(req).expect("an exec request serializes");
        let argv = berth_runtime::process::CStrings::new(
            "exec helper argument",
            [
                "berth".to_string(),
                "--root".into(),
                self.root.display().to_string(),
                "--runroot".into(),
                self.runroot.display().to_string(),
                EXEC_COMMAND.into(),
                id.into(),
                json,
            ]
            .into_iter()
            .map(String::into_bytes),
        )
        .map_err(|e| EngineError::msg(e.to_string()))?;
        let (mut child, stdio) = if req.tty {
            let (master, slave) = openpty()?;
            let fds = [
                slave.try_clone().map_err(|e| EngineError::io("dup", e))?,
                slave.try_clone().map_err(|e| EngineError::io("dup", e))?,
                slave,
            ];
            (
                ExecChild {
                    pid: 0,
                    master: Some(master),
                    stdin: None,
                    stdout: None,
                    stderr: None,
                },
                ChildStdio { fds, ctty: true },
            )
        } else {
            let (in_r, in_w) = match req.interactive {
                true => {
                    let (r, w) = pipe()?;
                    (r, Some(w))
                }
                false => (devnull()?, None),
            };
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            (
                ExecChild {
                    pid: 0,
                    master: None,
                    stdin: in_w,
                    stdout: Some(out_r),
                    stderr: Some(err_r),
                },
                ChildStdio {
                    fds: [in_r, out_w, err_w],
                    ctty: false,
                },
            )
        };
        child.pid = fork_helper(&argv, &stdio)?;
        Ok(child)
    }
}

/// Forks and execs the helper with `stdio` on 0, 1, 2 in a session of its own.
fn fork_helper(argv: &berth_runtime::process::CStrings, stdio: &ChildStdio) -> Result<i32> {
    let raw: [RawFd; 3] = [
        stdio.fds[0].as_raw_fd(),
        stdio.fds[1].as_raw_fd(),
        stdio.fds[2].as_raw_fd(),
    ];
    // SAFETY: the child calls only async-signal-safe functions (setsid, ioctl, dup2, execv,
    // _exit) on memory prepared before the fork; the caller may have threads.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(EngineError::io("fork", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: see above.
        unsafe {
            libc::setsid();
            if stdio.ctty {
                libc::ioctl(raw[0], libc::TIOCSCTTY, 0);
            }
            for (target, fd) in raw.iter().enumerate() {
                libc::dup2(*fd, target as i32);
            }
            libc::execv(c"/proc/self/exe".as_ptr(), argv.as_ptr());
            libc::_exit(127);
        }
    }
    Ok(pid)
}

/// Waits for an exec helper; its status as a shell reports it (128 + N for a signal).
pub fn wait_exec(pid: i32) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return 255;
        }
    }
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

/// Runs the helper when `argv` is its hidden command line (`main` asks before any parsing):
/// the process's exit status, or 125/126/127 with the reason on stderr.
pub fn entry(argv: &[String]) -> Option<i32> {
    if argv.len() != 8 || argv[5] != EXEC_COMMAND {
        return None;
    }
    let (root, runroot) = (
        std::path::Path::new(&argv[2]),
        std::path::Path::new(&argv[4]),
    );
    let run = || -> Result<i32> {
        let req: ExecRequest = serde_json::from_str(&argv[7])
            .map_err(|e| EngineError::msg(format!("exec request: {e}")))?;
        Engine::open(root, runroot)?.exec(&argv[6], &req)
    };
    Some(match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            i32::from(e.exit_code())
        }
    })
}

/// Sets the window size of an exec's terminal (its helper follows it with SIGWINCH).
pub fn resize_terminal(master: &OwnedFd, rows: u16, cols: u16) -> std::io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ with a valid winsize on a pty master we hold.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
