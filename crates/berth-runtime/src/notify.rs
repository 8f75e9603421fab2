//! Seccomp user notification: the listener fd of a container's filter is handed to the agent at
//! `linux.seccomp.listenerPath` with the runtime-spec `ContainerProcessState` JSON, as runc does.
//! The child passes the fd to the parent over the sync channel; the parent connects and sends.

use std::os::fd::{AsRawFd, OwnedFd};

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};
use crate::sync::{Channel, Msg};

/// In the child: hand the listener to the parent and wait until it was delivered.
pub fn child_send(chan: &Channel, fd: OwnedFd) -> Result<()> {
    chan.send(&Msg::SeccompFd)?;
    chan.send_fd(&fd)?;
    chan.expect(Msg::SeccompDone)
}

/// In the parent: receive the listener and deliver it to `listenerPath`.
pub fn parent_forward(
    chan: &Channel,
    spec: &Spec,
    pid: i32,
    state: serde_json::Value,
) -> Result<()> {
    let fd = chan.recv_fd()?;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let path = seccomp
        .and_then(|s| s.listener_path().clone())
        .ok_or_else(|| Error::msg("seccomp notify: no listenerPath"))?;
    let msg = serde_json::json!({
        "ociVersion": "1.1.0",
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": seccomp.and_then(|s| s.listener_metadata().clone()).unwrap_or_default(),
        "state": state,
    });
    let sock = crate::console::connect_socket(&path).map_err(|e| {
        Error::msg(format!(
            "failed to connect with seccomp agent specified in the seccomp profile ({}): {e}",
            path.display()
        ))
    })?;
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let body = msg.to_string();
    let iov = [std::io::IoSlice::new(body.as_bytes())];
    let fds = [fd.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| {
        Error::msg(format!(
            "seccomp listenerPath {}: send: {e}",
            path.display()
        ))
    })?;
    chan.send(&Msg::SeccompDone)
}
