//! Whether a recorded process is still the same process: a pid plus its start time from
//! `/proc/<pid>/stat`, so a recycled pid never passes for the old one. Used for the resolver's
//! pid file, and offered to the engine as a ready-made owner key for leases. Reads only.

pub use berth_sys::process::{alive, start_time};

/// An owner key for a live process: `pid:<pid>:<start time>`.
pub fn process_key(pid: i32) -> String {
    format!("pid:{pid}:{}", start_time(pid))
}

/// Whether the process an endpoint's liveness key names still runs.
pub fn endpoint_alive(ep: &crate::Endpoint) -> bool {
    process_key_alive(&ep.liveness)
}

/// Whether the process a `process_key` names is still alive. Keys of another shape are taken
/// as alive (they are the engine's to judge).
pub fn process_key_alive(key: &str) -> bool {
    let mut it = key.split(':');
    match (it.next(), it.next(), it.next()) {
        (Some("pid"), Some(pid), Some(start)) => match (pid.parse(), start.parse()) {
            // A key made for a process already gone (start 0) names no process.
            (Ok(pid), Ok(start)) => start != 0 && alive(pid, start),
            _ => true,
        },
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_a_reaped_child_is_not() {
        let me = std::process::id() as i32;
        assert!(process_key_alive(&process_key(me)));
        assert!(!process_key_alive(&format!("pid:{me}:1")));
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let key = process_key(c.id() as i32);
        c.wait().unwrap();
        assert!(!process_key_alive(&key));
        assert!(process_key_alive("container:abc"));
    }
}
