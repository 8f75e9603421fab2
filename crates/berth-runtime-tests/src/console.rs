//! A console-socket receiver speaking runc's protocol: the runtime connects to a Unix
//! socket and sends the pty master as one SCM_RIGHTS fd. It only receives and reads;
//! it never writes to the container's terminal unless a test asks.

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct ConsoleSocket {
    pub path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn bind(path: &Path) -> ConsoleSocket {
        let listener = UnixListener::bind(path).unwrap();
        listener.set_nonblocking(true).unwrap();
        ConsoleSocket {
            path: path.to_path_buf(),
            listener,
        }
    }

    /// Accepts the runtime's connection and returns the pty master it sends.
    pub fn receive_master(&self, timeout: Duration) -> OwnedFd {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        Instant::now() < deadline,
                        "no connection on the console socket"
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept on console socket: {e}"),
            }
        };
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .expect("recvmsg on console socket");
        for c in msg.cmsgs().expect("control messages") {
            if let ControlMessageOwned::ScmRights(fds) = c {
                let fd = *fds.first().expect("SCM_RIGHTS with no fd");
                // SAFETY: the kernel just installed `fd` in our table for us; we own it now.
                return unsafe { OwnedFd::from_raw_fd(fd) };
            }
        }
        panic!("console socket message carried no fd");
    }
}

/// Reads the pty master until the slave side closes (EIO) or `timeout` passes.
pub fn read_until_closed(master: OwnedFd, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let mut file = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let fd = file.as_raw_fd();
    while Instant::now() < deadline {
        let mut pfd = [nix::poll::PollFd::new(
            // SAFETY: `fd` stays open for the whole loop (owned by `file`).
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(100u16)) {
            Ok(0) => continue,
            Ok(_) => match file.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            },
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
