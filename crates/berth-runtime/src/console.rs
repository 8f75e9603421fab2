//! The container console and runc's `--console-socket` protocol: a pty pair opened through the
//! container's own `/dev/ptmx`, its master sent over an AF_UNIX socket with SCM_RIGHTS (payload:
//! the master's file name, as runc sends it), and the slave made the controlling terminal.
//! It never reads or writes terminal data and never assumes the host's devpts.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::socket::{
    connect, recvmsg, sendmsg, socket, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockType, UnixAddr,
};
use nix::sys::stat::Mode;

/// The name runc sends with a console master: the file the master was opened from.
pub const MASTER_NAME: &str = "/dev/ptmx";

/// Longest payload accepted with a passed fd (runc's limit, exclusive).
const MAX_NAME_LEN: usize = 4096;

/// A console or console-socket operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("console socket {}: {err}", .path.display())]
    Connect { path: PathBuf, err: Errno },
    #[error("console: open {path}: {err}")]
    Open { path: String, err: Errno },
    #[error("console: {op}: {err}")]
    Pty { op: &'static str, err: Errno },
    #[error("console socket: send pty master: {err}")]
    Send { err: Errno },
    #[error("console socket: receive pty master: {err}")]
    Recv { err: Errno },
    #[error("console socket: {0}")]
    Protocol(String),
}

/// Connects to the console socket at `path` (AF_UNIX stream, close-on-exec).
pub fn connect_socket(path: &Path) -> Result<OwnedFd, ConsoleError> {
    let fail = |err| ConsoleError::Connect {
        path: path.to_owned(),
        err,
    };
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(fail)?;
    let addr = UnixAddr::new(path).map_err(fail)?;
    connect(fd.as_raw_fd(), &addr).map_err(fail)?;
    Ok(fd)
}

/// Opens a new pty pair through `/dev/ptmx` as this process sees it (inside the container,
/// its own devpts). Returns (master, slave, slave path such as `/dev/pts/0`).
pub fn open_pty() -> Result<(OwnedFd, OwnedFd, String), ConsoleError> {
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let master = open(MASTER_NAME, flags, Mode::empty()).map_err(|err| ConsoleError::Open {
        path: MASTER_NAME.to_owned(),
        err,
    })?;

    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one c_int through the pointer, which outlives the call; the
    // fd is a valid open pty master.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) };
    Errno::result(rc).map_err(|err| ConsoleError::Pty {
        op: "unlockpt",
        err,
    })?;

    let mut number: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one c_uint through the pointer, which outlives the call.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut number) };
    Errno::result(rc).map_err(|err| ConsoleError::Pty { op: "ptsname", err })?;

    let slave_path = format!("/dev/pts/{number}");
    let slave =
        open(slave_path.as_str(), flags, Mode::empty()).map_err(|err| ConsoleError::Open {
            path: slave_path.clone(),
            err,
        })?;
    Ok((master, slave, slave_path))
}

/// Sends `master` over `socket` with SCM_RIGHTS and `name` as the payload, as runc does
/// (runc sends [`MASTER_NAME`]). `name` must be 1 to 4095 bytes.
pub fn send_master(socket: &OwnedFd, master: &OwnedFd, name: &str) -> Result<(), ConsoleError> {
    if name.is_empty() || name.len() >= MAX_NAME_LEN {
        return Err(ConsoleError::Protocol(format!(
            "pty name must be 1 to {} bytes, got {}",
            MAX_NAME_LEN - 1,
            name.len()
        )));
    }
    let fds = [master.as_raw_fd()];
    let iov = [IoSlice::new(name.as_bytes())];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let sent = sendmsg::<UnixAddr>(socket.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .map_err(|err| ConsoleError::Send { err })?;
    if sent != name.len() {
        return Err(ConsoleError::Protocol(format!(
            "short send: {sent} of {} bytes",
            name.len()
        )));
    }
    Ok(())
}

/// Receives one pty master sent by [`send_master`] (or by runc): returns the fd, made
/// close-on-exec, and the name sent with it.
pub fn recv_master(socket: &OwnedFd) -> Result<(OwnedFd, String), ConsoleError> {
    let mut name = vec![0u8; MAX_NAME_LEN];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut name)];
    let msg = recvmsg::<UnixAddr>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|err| ConsoleError::Recv { err })?;
    let bytes = msg.bytes;

    let mut received = Vec::new();
    for cmsg in msg.cmsgs().map_err(|err| ConsoleError::Recv { err })? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for fd in fds {
                // SAFETY: the kernel just installed this descriptor in this process for us;
                // nothing else owns it.
                received.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    if received.len() != 1 {
        return Err(ConsoleError::Protocol(format!(
            "expected one fd with the pty name, got {}",
            received.len()
        )));
    }
    if bytes == 0 || bytes >= MAX_NAME_LEN {
        return Err(ConsoleError::Protocol(format!(
            "bad pty name length {bytes}"
        )));
    }
    let name = String::from_utf8(name[..bytes].to_vec())
        .map_err(|_| ConsoleError::Protocol("pty name is not UTF-8".to_owned()))?;
    Ok((received.remove(0), name))
}

/// Sets the window size of the terminal behind `fd` (TIOCSWINSZ).
pub fn set_size(fd: BorrowedFd, rows: u16, cols: u16) -> Result<(), ConsoleError> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize through the pointer, which outlives the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &size) };
    Errno::result(rc).map_err(|err| ConsoleError::Pty {
        op: "set window size",
        err,
    })?;
    Ok(())
}

/// Makes `slave` this process's controlling terminal and its stdin, stdout and stderr:
/// a new session (unless this process already leads one), TIOCSCTTY, then dup2 onto 0, 1, 2.
pub fn make_controlling(slave: &OwnedFd) -> Result<(), ConsoleError> {
    let tty = |op, err| ConsoleError::Pty { op, err };
    if let Err(err) = nix::unistd::setsid() {
        let leader = nix::unistd::getsid(None).map_err(|e| tty("getsid", e))?;
        if err != Errno::EPERM || leader != nix::unistd::getpid() {
            return Err(tty("setsid", err));
        }
    }
    // SAFETY: TIOCSCTTY takes an int argument (0: do not steal from another session), not a
    // pointer; the fd is a valid open terminal.
    let rc = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) };
    Errno::result(rc).map_err(|err| tty("set controlling terminal", err))?;
    nix::unistd::dup2_stdin(slave).map_err(|err| tty("dup2 stdin", err))?;
    nix::unistd::dup2_stdout(slave).map_err(|err| tty("dup2 stdout", err))?;
    nix::unistd::dup2_stderr(slave).map_err(|err| tty("dup2 stderr", err))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::socketpair;
    use std::fs::File;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixListener;

    fn stream_pair() -> (OwnedFd, OwnedFd) {
        socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap()
    }

    fn cloexec(fd: &OwnedFd) -> bool {
        let flags = nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_GETFD).unwrap();
        flags & libc::FD_CLOEXEC != 0
    }

    #[test]
    fn pty_master_round_trips_over_socket_and_carries_slave_output() {
        let (master, slave, slave_path) = open_pty().unwrap();
        assert!(slave_path.starts_with("/dev/pts/"), "{slave_path}");
        assert!(cloexec(&master) && cloexec(&slave));

        let (ours, theirs) = stream_pair();
        send_master(&ours, &master, MASTER_NAME).unwrap();
        drop(master);
        let (received, name) = recv_master(&theirs).unwrap();
        assert_eq!(name, MASTER_NAME);
        assert!(cloexec(&received));

        File::from(slave).write_all(b"hello\n").unwrap();
        let mut buf = [0u8; 64];
        let n = File::from(received).read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"hello"), "{:?}", &buf[..n]);
    }

    #[test]
    fn window_size_set_on_master_is_seen_on_slave() {
        let (master, slave, _) = open_pty().unwrap();
        set_size(master.as_fd(), 24, 80).unwrap();
        let mut size = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one winsize into `size`, which outlives the call.
        let rc = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
        assert_eq!(rc, 0);
        assert_eq!((size.ws_row, size.ws_col), (24, 80));
    }

    #[test]
    fn slave_becomes_controlling_terminal_and_stdio_of_child() {
        use nix::sys::wait::{waitpid, WaitStatus};
        use nix::unistd::{fork, ForkResult};

        let (master, slave, _) = open_pty().unwrap();
        // SAFETY: the child only makes async-signal-safe calls (setsid, ioctl, dup2, open,
        // write; make_controlling allocates only on its error path) and then _exits.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                let ok = make_controlling(&slave).is_ok();
                // Opening /dev/tty succeeds only for a process with a controlling terminal.
                // SAFETY: a NUL-terminated literal path and a constant flag.
                let tty = unsafe { libc::open(c"/dev/tty".as_ptr(), libc::O_WRONLY) };
                let msg: &[u8] = if ok && tty >= 0 {
                    b"ctty-ok\n"
                } else {
                    b"ctty-bad\n"
                };
                // SAFETY: writes `msg` to fd 1 (now the slave) and leaves without unwinding.
                unsafe {
                    libc::write(1, msg.as_ptr().cast(), msg.len());
                    libc::_exit(0)
                }
            }
            ForkResult::Parent { child } => {
                drop(slave);
                let mut buf = [0u8; 64];
                let n = File::from(master).read(&mut buf).unwrap();
                assert_eq!(waitpid(child, None).unwrap(), WaitStatus::Exited(child, 0));
                assert!(buf[..n].starts_with(b"ctty-ok"), "{:?}", &buf[..n]);
            }
        }
    }

    #[test]
    fn message_without_fd_is_a_protocol_error() {
        let (ours, theirs) = stream_pair();
        File::from(ours).write_all(b"/dev/ptmx").unwrap();
        let err = recv_master(&theirs).unwrap_err();
        assert!(matches!(err, ConsoleError::Protocol(_)), "{err}");
    }

    #[test]
    fn connect_socket_reaches_listener_and_names_missing_path() {
        let dir = std::env::temp_dir().join(format!("berth-console-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        struct Cleanup(PathBuf);
        impl Drop for Cleanup {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let _cleanup = Cleanup(dir.clone());

        let path = dir.join("console.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let fd = connect_socket(&path).unwrap();
        assert!(cloexec(&fd));
        listener.accept().unwrap();

        let missing = dir.join("missing.sock");
        let err = connect_socket(&missing).unwrap_err().to_string();
        assert!(err.contains(missing.to_str().unwrap()), "{err}");
    }
}
