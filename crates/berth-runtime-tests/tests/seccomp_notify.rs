//! Seccomp user notification: a filter with `SCMP_ACT_NOTIFY` hands its listener fd to
//! the agent at `linux.seccomp.listenerPath` with the runtime-spec ContainerProcessState.
//! The agent here is a thread in the test that receives exactly one message.

use berth_runtime_tests::Fixture;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::{json, Value};
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What the agent received: the JSON payload and the fds sent with it.
struct Received {
    payload: Value,
    fds: Vec<OwnedFd>,
}

/// Accepts one connection on `listener` (within `timeout`) and reads one message.
fn receive_one(listener: UnixListener, timeout: Duration) -> Result<Received, String> {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + timeout;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err("the runtime never connected to listenerPath".into());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(format!("accept: {e}")),
        }
    };
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| format!("recvmsg: {e}"))?;
    let n = msg.bytes;
    let mut fds = Vec::new();
    for c in msg.cmsgs().map_err(|e| format!("cmsgs: {e}"))? {
        if let ControlMessageOwned::ScmRights(got) = c {
            // SAFETY: the kernel just installed these fds in our table; we own them now.
            fds.extend(
                got.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    let payload = serde_json::from_slice(&buf[..n]).map_err(|e| {
        format!(
            "payload is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&buf[..n])
        )
    })?;
    Ok(Received { payload, fds })
}

#[test]
fn seccomp_notify_listener_receives_state_metadata_and_a_seccomp_notify_fd() {
    let mut fx = Fixture::new("seccompnotify", &["echo", "ran"]);
    let sock: PathBuf = fx.base.join("agent.sock");
    fx.bundle.spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock.display().to_string(),
        "listenerMetadata": "meta1",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
    });
    let listener = UnixListener::bind(&sock).unwrap();
    let agent = std::thread::spawn(move || {
        let got = receive_one(listener, Duration::from_secs(20))?;
        // The fd's link must be read while we still hold it.
        let links: Vec<String> = got
            .fds
            .iter()
            .map(|fd| {
                std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_else(|e| format!("readlink failed: {e}"))
            })
            .collect();
        Ok::<_, String>((got.payload, links, got.fds))
    });
    let out = fx.run();
    let (payload, links, _fds) = agent
        .join()
        .expect("agent thread panicked")
        .unwrap_or_else(|e| panic!("{e}; run: {out}"));
    let out = out.ok();
    assert_eq!(out.stdout.trim(), "ran", "{out}");
    assert_eq!(payload["fds"], json!(["seccompFd"]), "{payload}");
    assert_eq!(payload["metadata"], json!("meta1"), "{payload}");
    assert!(
        payload["pid"].as_i64().is_some_and(|p| p > 0),
        "pid missing or not positive: {payload}"
    );
    assert_eq!(payload["state"]["id"], json!(fx.id), "{payload}");
    assert_eq!(links.len(), 1, "expected exactly one fd, got {links:?}");
    assert_eq!(links[0], "anon_inode:seccomp notify", "{payload}");
}

#[test]
fn seccomp_notify_with_no_agent_at_listener_path_fails_without_leftovers() {
    let mut fx = Fixture::new("seccompnoagent", &["echo", "ran"]);
    let sock = fx.base.join("nobody-listens.sock");
    fx.bundle.spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock.display().to_string(),
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
    });
    let out = fx.run().failed();
    assert!(
        !out.stdout.contains("ran"),
        "container ran without its agent: {out}"
    );
    assert!(
        out.stderr.contains("listenerPath") || out.stderr.contains("nobody-listens.sock"),
        "error does not name the listener: {out}"
    );
    let entries: Vec<_> = std::fs::read_dir(&fx.rt.root)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(entries.is_empty(), "state left: {entries:?}");
}
