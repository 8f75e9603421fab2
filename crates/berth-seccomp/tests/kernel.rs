//! Installs compiled filters in the real kernel, each in a forked child (seccomp cannot
//! be removed, so the test process itself must stay unfiltered). Children only make
//! async-signal-safe calls between fork and _exit; all compiling happens before fork.

use std::os::fd::AsRawFd;

use berth_seccomp::{compile, Filter};

fn filter(json: &str) -> Filter {
    let spec = serde_json::from_str(json).expect("test profile parses");
    compile(&spec).expect("test profile compiles")
}

fn allow_but(rule: &str) -> Filter {
    filter(&format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{rule}]}}"#
    ))
}

/// How a child ended.
#[derive(Debug, PartialEq)]
enum End {
    Exited(i32),
    Signaled(i32),
}

/// Runs `body` in a forked child and returns how it ended. `body` must not allocate,
/// lock or panic: the child of a threaded process may only do async-signal-safe things.
fn in_child(body: impl FnOnce() -> i32) -> End {
    wait(spawn(body))
}

/// Forks a child running `body`; an alarm ends it if it ever blocks for good.
fn spawn(body: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: the child runs only `body` (async-signal-safe by contract) then _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: alarm and _exit are async-signal-safe; _exit skips atexit handlers.
        unsafe {
            libc::alarm(20);
            libc::_exit(body());
        }
    }
    pid
}

fn wait(pid: libc::pid_t) -> End {
    let mut status = 0;
    // SAFETY: `pid` is our child and `status` is a valid out pointer.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid, "waitpid: {}", std::io::Error::last_os_error());
    if libc::WIFEXITED(status) {
        End::Exited(libc::WEXITSTATUS(status))
    } else {
        End::Signaled(libc::WTERMSIG(status))
    }
}

/// Sets no_new_privs and installs `f`; exit code 90/91 name a failed step.
fn install(f: &Filter) -> Result<Option<std::os::fd::OwnedFd>, i32> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(90);
    }
    f.install().map_err(|_| 91)
}

fn errno() -> i32 {
    // SAFETY: errno is thread-local and always valid to read.
    unsafe { *libc::__errno_location() }
}

/// A raw syscall without arguments; returns (result, errno).
fn raw(nr: libc::c_long) -> (libc::c_long, i32) {
    // SAFETY: the calls used here (getppid, getpid) take no arguments.
    let r = unsafe { libc::syscall(nr) };
    (r, errno())
}

#[test]
fn errno_rule_makes_getppid_fail_with_its_errno() {
    let f = allow_but(r#"{"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":38}"#);
    let end = in_child(|| {
        if let Err(code) = install(&f) {
            return code;
        }
        if raw(libc::SYS_getpid).0 <= 0 {
            return 2;
        }
        match raw(libc::SYS_getppid) {
            (-1, 38) => 0,
            (-1, _) => 3,
            _ => 4,
        }
    });
    assert_eq!(end, End::Exited(0));
}

#[test]
fn default_errno_applies_to_unlisted_calls() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,
            "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":1},
                        {"names":["exit","exit_group","getpid","prctl","seccomp"],
                         "action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let end = in_child(|| {
        if let Err(code) = install(&f) {
            return code;
        }
        match (
            raw(libc::SYS_getppid),
            raw(libc::SYS_getpid),
            raw(libc::SYS_gettid),
        ) {
            ((-1, 1), (p, _), (-1, 38)) if p > 0 => 0,
            _ => 5,
        }
    });
    assert_eq!(end, End::Exited(0));
}

#[test]
fn kill_process_ends_the_child_with_sigsys() {
    let f = allow_but(r#"{"names":["getppid"],"action":"SCMP_ACT_KILL_PROCESS"}"#);
    let end = in_child(|| {
        if let Err(code) = install(&f) {
            return code;
        }
        install_sigsys_handler();
        raw(libc::SYS_getppid);
        6
    });
    // KILL_PROCESS cannot be caught: the handler's exit code 42 must not show up.
    assert_eq!(end, End::Signaled(libc::SIGSYS));
}

extern "C" fn on_sigsys(_: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(42) };
}

fn install_sigsys_handler() {
    // SAFETY: a zeroed sigaction with a plain handler is valid; `on_sigsys` only _exits.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigsys as *const () as libc::sighandler_t;
        libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut());
    }
}

#[test]
fn trap_delivers_a_catchable_sigsys() {
    let f = allow_but(r#"{"names":["getppid"],"action":"SCMP_ACT_TRAP"}"#);
    let end = in_child(|| {
        install_sigsys_handler();
        if let Err(code) = install(&f) {
            return code;
        }
        raw(libc::SYS_getppid);
        7
    });
    assert_eq!(end, End::Exited(42));
}

#[test]
fn notify_returns_a_listener_that_answers_for_the_child() {
    let f = filter(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/berth-test-agent.sock",
            "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    );
    assert!(f.uses_notify());
    let end = in_child(|| {
        let fd = match install(&f) {
            Ok(Some(fd)) => fd,
            Ok(None) => return 10,
            Err(code) => return code,
        };
        // SAFETY: F_GETFD on an fd we own.
        let fd_flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
        if fd_flags < 0 || fd_flags & libc::FD_CLOEXEC == 0 {
            return 11;
        }
        // The grandchild inherits the filter; its getppid waits for our answer.
        let grandchild = spawn(|| match raw(libc::SYS_getppid) {
            (4242, _) => 0,
            _ => 12,
        });
        // If answering fails, our exit closes the listener and the call gets ENOSYS.
        match answer_one(fd.as_raw_fd(), 4242) {
            0 => {}
            code => return code,
        }
        match wait(grandchild) {
            End::Exited(code) => code,
            End::Signaled(_) => 13,
        }
    });
    assert_eq!(end, End::Exited(0));
}

/// Receives one notification for getppid and makes it return `val`.
fn answer_one(fd: libc::c_int, val: i64) -> i32 {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    if unsafe { libc::poll(&mut pfd, 1, 10_000) } != 1 {
        return 14;
    }
    // SAFETY: the kernel requires a zeroed seccomp_notif and fills it in.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: RECV writes one seccomp_notif into `req`.
    if unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } != 0 {
        return 15;
    }
    if req.data.nr as libc::c_long != libc::SYS_getppid {
        return 16;
    }
    let mut resp = libc::seccomp_notif_resp {
        id: req.id,
        val,
        error: 0,
        flags: 0,
    };
    // SAFETY: SEND reads one seccomp_notif_resp from `resp`.
    if unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) } != 0 {
        return 17;
    }
    0
}
