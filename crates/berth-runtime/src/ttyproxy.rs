//! The terminal of a foreground `run` or `exec -t` when no `--console-socket` is given: the runtime
//! receives the pty master itself, puts its own terminal in raw mode, copies bytes both ways,
//! follows window-size changes and forwards signals until the container's process exits.
//! It never outlives the process it serves and always restores the terminal.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::error::{Error, Result};

/// A connected socketpair: (the end given to the container's init, the end we receive on).
pub fn socketpair() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: socketpair fills two fds on success.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } != 0
    {
        return Err(Error::msg(format!(
            "socketpair: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: fresh fds owned by us.
    unsafe { Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))) }
}

/// Restores the saved terminal mode on drop.
struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    fn enter(fd: RawFd) -> Option<RawMode> {
        // SAFETY: termios is plain data; isatty/tcgetattr only read.
        unsafe {
            if libc::isatty(fd) != 1 {
                return None;
            }
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 {
                return None;
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(fd, libc::TCSANOW, &t);
            Some(RawMode { fd, saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restoring a termios we read from the same fd.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

fn copy_winsize(from: RawFd, to: RawFd) {
    // SAFETY: winsize is plain data; the ioctls read and write it.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}

fn signalfd_all() -> Result<OwnedFd> {
    // SAFETY: a full sigset (all signals are already blocked by the caller).
    let fd = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK)
    };
    if fd < 0 {
        return Err(Error::msg(format!(
            "signalfd: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn write_all(fd: RawFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n <= 0 {
            if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        buf = &buf[n as usize..];
    }
}

/// Proxies the terminal until `pid` exits; returns its shell-style exit status. Signals must be blocked.
pub fn proxy(master: OwnedFd, pid: i32) -> Result<i32> {
    match proxy_detachable(master, pid, None)? {
        Proxied::Exited(code) => Ok(code),
        Proxied::Detached(_) => Ok(0),
    }
}

/// How a terminal session ended.
pub enum Proxied {
    /// The process exited with this shell-style status.
    Exited(i32),
    /// The user typed the detach keys: the process runs on; here is its terminal's master.
    Detached(OwnedFd),
}

/// `proxy`, ended early when the user types `detach` (`exec --detach-keys`; ctrl-p ctrl-q by
/// default): then the master comes back for whoever keeps the process's terminal open.
pub fn proxy_detachable(
    master: OwnedFd,
    pid: i32,
    detach: Option<&berth_sys::keys::DetachKeys>,
) -> Result<Proxied> {
    let mut matcher = detach.map(berth_sys::keys::KeyMatcher::new);
    let m = master.as_raw_fd();
    copy_winsize(0, m);
    let _raw = RawMode::enter(0);
    let sfd = signalfd_all()?;
    let mut stdin_open = true;
    let mut status = None;
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: m,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if stdin_open { 0 } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // After the process exited, drain what the pty still holds, then stop.
        let timeout = if status.is_some() { 50 } else { -1 };
        // SAFETY: fds is a valid array of pollfd.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 3, timeout) };
        if r < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(Error::msg(format!(
                "poll: {}",
                std::io::Error::last_os_error()
            )));
        }
        if r == 0 {
            break;
        }
        if fds[0].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            // SAFETY: buf valid for its length.
            let n = unsafe { libc::read(m, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                if status.is_some() {
                    break;
                }
            } else {
                write_all(1, &buf[..n as usize]);
            }
        }
        if fds[2].revents & (libc::POLLIN | libc::POLLHUP) != 0 {
            // SAFETY: as above.
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                stdin_open = false;
                // End of input: send EOF to the pty like a user's ^D.
                write_all(m, &[4]);
            } else if let Some(keys) = matcher.as_mut() {
                let mut data = Vec::with_capacity(n as usize);
                if keys.feed(&buf[..n as usize], &mut data) {
                    return Ok(Proxied::Detached(master));
                }
                write_all(m, &data);
            } else {
                write_all(m, &buf[..n as usize]);
            }
        }
        if fds[1].revents & libc::POLLIN != 0 {
            // SAFETY: signalfd_siginfo is plain data; read fills it.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            // SAFETY: reading one struct into valid memory.
            while unsafe {
                libc::read(
                    sfd.as_raw_fd(),
                    (&mut info as *mut libc::signalfd_siginfo).cast(),
                    std::mem::size_of::<libc::signalfd_siginfo>(),
                )
            } > 0
            {
                match info.ssi_signo as i32 {
                    libc::SIGCHLD => {
                        if let Some(code) = crate::signals::reap(pid)? {
                            status = Some(code);
                        }
                    }
                    libc::SIGWINCH => copy_winsize(0, m),
                    // SAFETY: forwarding a signal to our own child.
                    sig => unsafe {
                        libc::kill(pid, sig);
                    },
                }
            }
        }
    }
    Ok(Proxied::Exited(status.unwrap_or(0)))
}
