//! Attaching to a container with a terminal: its watcher holds the pty master and serves one
//! client at a time on a unix socket (`<runroot>/attach/<id12>.sock`); `run -it`, `start -ai` and
//! `attach` are clients. Frames both ways are `[kind u8][len u32 LE][payload]`: data (stdin in,
//! output out), a window size (in), and the exit status (out, last). Docker's detach keys
//! (ctrl-p ctrl-q) are read by the client, which then just goes away; the container runs on.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Output to stdout (from the container) or input (to it).
pub(crate) const DATA: u8 = 0;
pub(crate) const WINSIZE: u8 = 1;
pub(crate) const EXIT: u8 = 2;
/// Output to stderr (containers without a terminal).
pub(crate) const STDERR: u8 = 3;
/// The client's stdin ended: close the container's.
pub(crate) const CLOSE_STDIN: u8 = 4;

/// What the watcher serves: the container's output (a pty master, or stdout and stderr pipes)
/// and where client input goes (the master again, or the write end of its stdin pipe).
pub struct Streams {
    pub out: OwnedFd,
    pub err: Option<OwnedFd>,
    pub input: Option<OwnedFd>,
    pub tty: bool,
}

/// Set (in the environment the monitor inherits) by a client that will attach right after the
/// start: the watcher waits for it before reading the terminal.
pub const ATTACH_FIRST: &str = "BERTH_ATTACH_FIRST";

pub fn socket_path(runroot: &Path, id: &str) -> PathBuf {
    runroot
        .join("attach")
        .join(format!("{}.sock", &id[..12.min(id.len())]))
}

/// Binds the attach socket of a container (replacing a stale one).
pub fn listen(runroot: &Path, id: &str) -> io::Result<UnixListener> {
    let p = socket_path(runroot, id);
    std::fs::create_dir_all(p.parent().expect("has a parent"))?;
    let _ = std::fs::remove_file(&p);
    let l = UnixListener::bind(&p)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

pub(crate) fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + payload.len());
    v.push(kind);
    v.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    v.extend_from_slice(payload);
    v
}

pub(crate) fn read_frame(s: &mut impl Read) -> io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    s.read_exact(&mut head)?;
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > 1 << 20 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "attach frame too large",
        ));
    }
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload)?;
    Ok((head[0], payload))
}

fn poll(fds: &mut [libc::pollfd]) -> bool {
    loop {
        // SAFETY: polling a valid array of pollfd entries.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if r >= 0 {
            return true;
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return false;
        }
    }
}

fn pfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// The watcher's side: copies the container's output into `log` (and to the attached client)
/// and the client's input to the container, until the output closes. Returns the client still
/// attached, to be told the exit status.
pub fn serve(
    st: Streams,
    listener: UnixListener,
    log: &mut crate::logs::LogWriter,
) -> Option<UnixStream> {
    let mut client: Option<UnixStream> = None;
    if std::env::var_os(ATTACH_FIRST).is_some() {
        // `run -it`: nothing is read from the terminal before its user is there; what the
        // container writes meanwhile waits in the pty.
        std::env::remove_var(ATTACH_FIRST);
        let mut fds = [pfd(listener.as_raw_fd())];
        // SAFETY: polling one valid pollfd, for at most ten seconds.
        if unsafe { libc::poll(fds.as_mut_ptr(), 1, 10_000) } > 0 {
            if let Ok((s, _)) = listener.accept() {
                let _ = s.set_nonblocking(false);
                client = Some(s);
            }
        }
    }
    let mut buf = vec![0u8; 32 * 1024];
    let outs: Vec<OwnedFd> = std::iter::once(st.out).chain(st.err).collect();
    let mut open: Vec<bool> = vec![true; outs.len()];
    let mut input = st.input;
    while open.iter().any(|o| *o) {
        let mut fds: Vec<libc::pollfd> = outs
            .iter()
            .zip(&open)
            .map(|(f, o)| pfd(if *o { f.as_raw_fd() } else { -1 }))
            .collect();
        fds.push(pfd(listener.as_raw_fd()));
        if let Some(c) = &client {
            fds.push(pfd(c.as_raw_fd()));
        }
        if !poll(&mut fds) {
            return client;
        }
        for (i, f) in outs.iter().enumerate() {
            if fds[i].revents == 0 {
                continue;
            }
            // SAFETY: reading into our buffer from an output fd we own.
            let n = unsafe { libc::read(f.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                open[i] = false; // EOF, or EIO on a pty whose every slave end closed
                continue;
            }
            let data = &buf[..n as usize];
            log.write_or_note(i, data);
            if let Some(c) = client.as_mut() {
                if c.write_all(&frame(if i == 0 { DATA } else { STDERR }, data))
                    .is_err()
                {
                    client = None;
                }
            }
        }
        let li = outs.len();
        if fds[li].revents != 0 {
            if let Ok((s, _)) = listener.accept() {
                let _ = s.set_nonblocking(false);
                client = Some(s); // a new client replaces the old one, as with Docker
            }
        }
        if fds.len() > li + 1 && fds[li + 1].revents != 0 {
            let c = client.as_mut().expect("polled");
            match read_frame(c) {
                Ok((DATA, payload)) => {
                    if let Some(i) = &input {
                        let mut f = std::mem::ManuallyDrop::new(
                            // SAFETY: borrowing the input fd for a write; ManuallyDrop keeps it open.
                            unsafe { std::fs::File::from_raw_fd(i.as_raw_fd()) },
                        );
                        let _ = f.write_all(&payload);
                    }
                }
                Ok((WINSIZE, p)) if p.len() == 8 && st.tty => {
                    let ws = libc::winsize {
                        ws_row: u16::from_le_bytes([p[0], p[1]]),
                        ws_col: u16::from_le_bytes([p[2], p[3]]),
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    if let Some(m) = &input {
                        // SAFETY: TIOCSWINSZ with a valid winsize on our pty master.
                        unsafe { libc::ioctl(m.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
                    }
                }
                Ok((CLOSE_STDIN, _)) if !st.tty => input = None,
                Ok(_) => {}
                Err(_) => client = None,
            }
        }
    }
    client
}

/// Tells the attached client the container's exit status.
pub fn send_exit(client: Option<UnixStream>, code: i32) {
    if let Some(mut c) = client {
        let _ = c.write_all(&frame(EXIT, &code.to_le_bytes()));
    }
}

/// How an attached session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Detached,
    /// The watcher went away without a status.
    Closed,
}

struct Raw {
    fd: RawFd,
    saved: Option<libc::termios>,
}

impl Raw {
    fn enter(fd: RawFd) -> Raw {
        // SAFETY: termios calls on our own stdin with valid out-pointers.
        unsafe {
            if libc::isatty(fd) == 0 {
                return Raw { fd, saved: None };
            }
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 {
                return Raw { fd, saved: None };
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(fd, libc::TCSANOW, &t);
            Raw {
                fd,
                saved: Some(saved),
            }
        }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            // SAFETY: restoring the saved terminal state.
            unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, t) };
        }
    }
}

fn winsize_frame() -> Option<Vec<u8>> {
    // SAFETY: TIOCGWINSZ into a zeroed winsize.
    let ws = unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) != 0 {
            return None;
        }
        ws
    };
    let mut p = Vec::with_capacity(8);
    p.extend_from_slice(&ws.ws_row.to_le_bytes());
    p.extend_from_slice(&ws.ws_col.to_le_bytes());
    p.extend_from_slice(&[0; 4]);
    Some(frame(WINSIZE, &p))
}

pub use berth_sys::keys::{DetachKeys, KeyMatcher};

/// The client: attaches this terminal to the container until it exits or the user types the
/// detach keys (ctrl-p ctrl-q). With `stdin` false, only output is shown.
/// `tty` sets this terminal raw (the container has one); `forward`, when given, receives SIGINT,
/// SIGTERM and SIGHUP sent to this process (Docker's --sig-proxy for containers without a tty).
pub fn attach(
    runroot: &Path,
    id: &str,
    stdin: bool,
    tty: bool,
    forward: Option<&dyn Fn(i32)>,
) -> io::Result<Ended> {
    attach_with(runroot, id, stdin, tty, forward, &DetachKeys::default())
}

/// `attach` with other detach keys.
pub fn attach_with(
    runroot: &Path,
    id: &str,
    stdin: bool,
    tty: bool,
    forward: Option<&dyn Fn(i32)>,
    keys: &DetachKeys,
) -> io::Result<Ended> {
    // The watcher binds the socket just after the container started: wait for it a little.
    let path = socket_path(runroot, id);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut s = loop {
        match UnixStream::connect(&path) {
            Ok(s) => break s,
            Err(e)
                if std::time::Instant::now() < deadline
                    && matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                    ) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Err(e) => return Err(e),
        }
    };
    // SIGWINCH through a signalfd: window changes are sent as they happen.
    // SAFETY: building a signal set and a signalfd for it; the signal is blocked first.
    let sfd = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGWINCH);
        if forward.is_some() {
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::sigaddset(&mut set, sig);
            }
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        OwnedFd::from_raw_fd(libc::signalfd(-1, &set, libc::SFD_CLOEXEC))
    };
    if let Some(f) = winsize_frame() {
        s.write_all(&f)?;
    }
    let _raw = (stdin && tty).then(|| Raw::enter(0));
    let mut buf = vec![0u8; 32 * 1024];
    let mut matcher = KeyMatcher::new(keys);
    let mut stdin_open = stdin;
    loop {
        let mut fds = vec![
            pfd(s.as_raw_fd()),
            pfd(sfd.as_raw_fd()),
            pfd(if stdin_open { 0 } else { -1 }),
        ];
        if !poll(&mut fds) {
            return Ok(Ended::Closed);
        }
        if fds[0].revents != 0 {
            match read_frame(&mut s) {
                Ok((DATA, p)) => {
                    let mut out = io::stdout().lock();
                    out.write_all(&p)?;
                    out.flush()?;
                }
                Ok((STDERR, p)) => {
                    let mut err = io::stderr().lock();
                    err.write_all(&p)?;
                    err.flush()?;
                }
                Ok((EXIT, p)) if p.len() == 4 => {
                    return Ok(Ended::Exited(i32::from_le_bytes([p[0], p[1], p[2], p[3]])))
                }
                Ok(_) => {}
                Err(_) => return Ok(Ended::Closed),
            }
        }
        if fds[1].revents != 0 {
            let mut info = [0u8; 128];
            // SAFETY: draining one signalfd_siginfo into a buffer of its size.
            unsafe { libc::read(sfd.as_raw_fd(), info.as_mut_ptr().cast(), info.len()) };
            let signo = u32::from_ne_bytes([info[0], info[1], info[2], info[3]]) as i32;
            if signo == libc::SIGWINCH {
                if let Some(f) = winsize_frame() {
                    s.write_all(&f)?;
                }
            } else if let Some(f) = forward {
                f(signo);
            }
        }
        if stdin_open && fds[2].revents != 0 {
            // SAFETY: reading our own stdin into a buffer.
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                stdin_open = false;
                s.write_all(&frame(CLOSE_STDIN, &[]))?;
                continue;
            }
            let mut data = Vec::with_capacity(n as usize + 8);
            if matcher.feed(&buf[..n as usize], &mut data) {
                return Ok(Ended::Detached);
            }
            if !data.is_empty() {
                s.write_all(&frame(DATA, &data))?;
            }
        }
    }
}
