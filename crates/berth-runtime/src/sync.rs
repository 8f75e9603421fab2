//! The typed channel between the runtime and the process it clones (a SOCK_SEQPACKET socketpair,
//! close-on-exec). Each message has a name; an unexpected one is an error that says what was
//! expected, so an out-of-order step fails loudly instead of hanging.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{Error, ErrorKind, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// parent -> child: ids are mapped and the cgroup joined; go on.
    Go,
    /// child -> parent: the mounts are ready; run prestart and createRuntime hooks.
    RunHooks,
    /// parent -> child: hooks done.
    HooksDone,
    /// child -> parent: the container is set up and waits at the start gate.
    Ready,
    /// child -> parent: setting up failed (its kind and sentence); the child exits after this.
    Failed(Failure),
    /// child -> parent: a seccomp notify listener follows (`send_fd`); the parent answers `SeccompDone`.
    SeccompFd,
    /// parent -> child: the listener was handed to `listenerPath`.
    SeccompDone,
}

/// Why the other side failed, as it can cross a socket: the kind that decides exit codes, and the
/// sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: ErrorKind,
    pub message: String,
}

impl Failure {
    pub fn of(e: &Error) -> Msg {
        Msg::Failed(Failure {
            kind: e.kind(),
            message: e.to_string(),
        })
    }

    pub fn into_error(self) -> Error {
        Error::Remote {
            kind: self.kind,
            message: self.message,
        }
    }
}

impl Msg {
    fn encode(&self) -> Vec<u8> {
        match self {
            Msg::Go => vec![1],
            Msg::RunHooks => vec![2],
            Msg::HooksDone => vec![3],
            Msg::Ready => vec![4],
            Msg::SeccompFd => vec![6],
            Msg::SeccompDone => vec![7],
            Msg::Failed(f) => {
                let mut v = vec![5, f.kind.code()];
                v.extend_from_slice(f.message.as_bytes());
                v
            }
        }
    }

    fn decode(b: &[u8]) -> Option<Msg> {
        Some(match *b.first()? {
            1 => Msg::Go,
            2 => Msg::RunHooks,
            3 => Msg::HooksDone,
            4 => Msg::Ready,
            5 => Msg::Failed(Failure {
                kind: ErrorKind::from_code(*b.get(1)?),
                message: String::from_utf8_lossy(&b[2..]).into_owned(),
            }),
            6 => Msg::SeccompFd,
            7 => Msg::SeccompDone,
            _ => return None,
        })
    }
}

pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair: (parent end, child end).
pub fn pair() -> Result<(Channel, Channel)> {
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two fds into the array on success.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(Error::msg(format!(
            "socketpair: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: both fds are fresh and owned by nobody else.
    unsafe {
        Ok((
            Channel {
                fd: OwnedFd::from_raw_fd(fds[0]),
            },
            Channel {
                fd: OwnedFd::from_raw_fd(fds[1]),
            },
        ))
    }
}

impl Channel {
    /// A channel over an end handed over by another process (across exec).
    pub fn from_fd(fd: OwnedFd) -> Channel {
        Channel { fd }
    }

    pub fn send(&self, m: &Msg) -> Result<()> {
        let b = m.encode();
        // SAFETY: b is a valid buffer of b.len() bytes.
        let r = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                b.as_ptr().cast(),
                b.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if r < 0 {
            return Err(Error::msg(format!(
                "sync channel: send {m:?}: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(())
    }

    /// Receives one message; `None` when the other end closed (e.g. the child exec'd or died).
    pub fn recv(&self) -> Result<Option<Msg>> {
        self.recv_with(0)
            .map_err(|e| Error::msg(format!("sync channel: receive: {e}")))
    }

    /// A message already queued, without waiting (None when there is none).
    pub fn try_recv(&self) -> Option<Msg> {
        self.recv_with(libc::MSG_DONTWAIT).ok().flatten()
    }

    /// One message with `flags`, past EINTR and past a reset: when the other side exits with our
    /// messages unread, the kernel reports ECONNRESET once, ahead of what it sent before (its
    /// `Failed` above all), which is still queued.
    fn recv_with(&self, flags: libc::c_int) -> std::io::Result<Option<Msg>> {
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: buf is valid for its length.
            let r = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    flags,
                )
            };
            if r < 0 {
                let e = std::io::Error::last_os_error();
                if matches!(e.raw_os_error(), Some(libc::EINTR) | Some(libc::ECONNRESET)) {
                    continue;
                }
                return Err(e);
            }
            if r == 0 {
                return Ok(None);
            }
            return Msg::decode(&buf[..r as usize]).map(Some).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed message")
            });
        }
    }

    /// Waits for `want`; a `Failed` from the other side becomes that error.
    pub fn expect(&self, want: Msg) -> Result<()> {
        match self.recv()? {
            Some(m) if m == want => Ok(()),
            Some(Msg::Failed(f)) => Err(f.into_error()),
            Some(m) => Err(Error::msg(format!(
                "sync channel: expected {want:?}, got {m:?}"
            ))),
            None => Err(Error::msg(format!(
                "sync channel: expected {want:?}, the other side went away"
            ))),
        }
    }

    /// Passes one fd (SCM_RIGHTS).
    pub fn send_fd(&self, fd: &OwnedFd) -> Result<()> {
        self.send_fds(&[fd.as_raw_fd()])
    }

    /// Passes fds in one message (SCM_RIGHTS), in order.
    pub fn send_fds(&self, fds: &[std::os::fd::RawFd]) -> Result<()> {
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
        let iov = [std::io::IoSlice::new(b"F")];
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|e| Error::msg(format!("sync channel: pass fd: {e}")))?;
        Ok(())
    }

    pub fn recv_fd(&self) -> Result<OwnedFd> {
        self.recv_fds(1)?
            .pop()
            .ok_or_else(|| Error::msg("sync channel: expected an fd, got none"))
    }

    /// Receives exactly `n` fds sent by one `send_fds`.
    pub fn recv_fds(&self, n: usize) -> Result<Vec<OwnedFd>> {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        let mut buf = [0u8; 8];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        // Room for the cgroup v1 controllers a host can have, and more.
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 32]);
        let msg = recvmsg::<()>(
            self.fd.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(|e| Error::msg(format!("sync channel: receive fd: {e}")))?;
        let mut out = Vec::new();
        for c in msg
            .cmsgs()
            .map_err(|e| Error::msg(format!("sync channel: {e}")))?
        {
            if let ControlMessageOwned::ScmRights(fds) = c {
                // SAFETY: the kernel just gave us these fds.
                out.extend(fds.iter().map(|&fd| unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
        if out.len() != n {
            return Err(Error::msg(format!(
                "sync channel: expected {n} fds, got {}",
                out.len()
            )));
        }
        Ok(out)
    }

    /// In a cloned child: closes its copy of the other side's end, so the child's reads see EOF
    /// when that side dies (else a child whose parent was killed waits forever on itself).
    pub fn close_in_child(&self) {
        // SAFETY: the child leaves by _exit and never drops this Channel, so the fd is closed once.
        unsafe { libc::close(self.fd.as_raw_fd()) };
    }

    pub fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_sent_before_the_other_side_died_is_read_even_when_it_left_ours_unread() {
        let (parent, child) = pair().unwrap();
        // The child fails and says why; our Go is still unread in its queue when it exits, which
        // makes the kernel report ECONNRESET to us before the queued message.
        let failure = Failure {
            kind: ErrorKind::CannotInvoke,
            message: "mount proc: not a directory".into(),
        };
        child.send(&Msg::Failed(failure.clone())).unwrap();
        parent.send(&Msg::Go).unwrap();
        drop(child);
        assert_eq!(parent.recv().unwrap(), Some(Msg::Failed(failure)));
        assert_eq!(parent.recv().unwrap(), None);
    }
}
