//! Processes as /proc shows them, and `Owner`: the mark a process leaves on what it stages or
//! holds (a temp file, a frozen container), which any later process can judge alive or dead.

use std::fmt;

/// (state char, start time in clock ticks since boot) of a process, from /proc/PID/stat.
pub fn stat(pid: i32) -> Option<(char, u64)> {
    if pid <= 0 {
        return None;
    }
    // One read of a buffer that holds any stat line (a command name is at most 64 bytes):
    // listings check every container's watcher, so this is on their path once per container.
    let mut buf = [0u8; 1024];
    let n = read_all(&format!("/proc/{pid}/stat"), &mut buf)?;
    let s = std::str::from_utf8(&buf[..n]).ok()?;
    // The command name is in parentheses and may hold spaces: parse after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // rest starts at field 3; starttime is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Reads a small file whole into `buf`; `None` if it cannot be read or does not fit. A proc file
/// gives its whole line in one read: the read after it (end of file) is skipped once the line
/// ends.
fn read_all(path: &str, buf: &mut [u8]) -> Option<usize> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut n = 0;
    loop {
        match f.read(&mut buf[n..]) {
            Ok(0) => return Some(n),
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
        if buf[..n].ends_with(b"\n") {
            return Some(n);
        }
        if n == buf.len() {
            return None;
        }
    }
}

/// The start time of `pid`, 0 when it is gone.
pub fn start_time(pid: i32) -> u64 {
    stat(pid).map_or(0, |(_, t)| t)
}

/// Whether `pid` is alive (not a zombie) and is the process that started at `start` (0: any).
pub fn alive(pid: i32, start: u64) -> bool {
    match stat(pid) {
        Some((state, started)) => state != 'Z' && state != 'X' && (start == 0 || started == start),
        None => false,
    }
}

/// A process by pid and start time: what owns a piece of staging or a hold on a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub pid: i32,
    pub start: u64,
}

impl Owner {
    /// This process.
    pub fn me() -> Owner {
        let pid = std::process::id() as i32;
        Owner {
            pid,
            start: start_time(pid),
        }
    }

    /// Still running (a dead owner's marks may be reclaimed by anyone).
    pub fn alive(&self) -> bool {
        self.pid > 0 && alive(self.pid, self.start)
    }

    /// `PID.START`, the form owners take in file names.
    pub fn tag(&self) -> String {
        format!("{}.{}", self.pid, self.start)
    }

    /// The owner a name begins with (`PID.START-…` or `PID.START`), if it does.
    pub fn from_tag(name: &str) -> Option<Owner> {
        let head = name.split('-').next()?;
        let (pid, start) = head.split_once('.')?;
        Some(Owner {
            pid: pid.parse().ok()?,
            start: start.parse().ok()?,
        })
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "process {} (started at tick {})", self.pid, self.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_owns_and_a_reused_pid_does_not() {
        let me = Owner::me();
        assert!(me.alive());
        assert_eq!(Owner::from_tag(&format!("{}-7", me.tag())), Some(me));
        let reused = Owner {
            start: me.start + 1,
            ..me
        };
        assert!(!reused.alive(), "same pid, other start time");
        assert!(!Owner { pid: 0, start: 0 }.alive());
        assert_eq!(
            Owner::from_tag("123-4"),
            None,
            "an old name without a start time"
        );
    }

    #[test]
    fn a_reaped_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let owner = Owner {
            pid,
            start: start_time(pid),
        };
        child.wait().unwrap();
        assert!(!owner.alive());
    }
}
