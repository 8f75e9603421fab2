//! Whether a recorded process is still the same process: a pid plus its start time from
//! `/proc/<pid>/stat`, so a recycled pid never passes for the old one. Used for the resolver's
//! pid file, and offered to the engine as a ready-made owner key for leases. Reads only.

use std::fs;

/// `(state, start time in clock ticks)` of `pid`, or `None` if it does not exist.
fn stat(pid: i32) -> Option<(char, u64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain anything; fields follow the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// The start time of `pid` (0 if it is gone).
pub fn start_time(pid: i32) -> u64 {
    stat(pid).map(|s| s.1).unwrap_or(0)
}

/// Whether `pid` still runs (not a zombie) and started at `start`.
pub fn alive(pid: i32, start: u64) -> bool {
    matches!(stat(pid), Some((st, t)) if t == start && st != 'Z' && st != 'X')
}

/// An owner key for a live process: `pid:<pid>:<start time>`.
pub fn process_key(pid: i32) -> String {
    format!("pid:{pid}:{}", start_time(pid))
}

/// Whether the process a `process_key` names is still alive. Keys of another shape are taken
/// as alive (they are the engine's to judge).
pub fn process_key_alive(key: &str) -> bool {
    let mut it = key.split(':');
    match (it.next(), it.next(), it.next()) {
        (Some("pid"), Some(pid), Some(start)) => match (pid.parse(), start.parse()) {
            (Ok(pid), Ok(start)) => alive(pid, start),
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
