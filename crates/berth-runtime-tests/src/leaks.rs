//! Finds what a container may leave behind on the host: mounts under a directory,
//! cgroup directories named after the id, processes carrying the test's marker, and
//! removes each one it finds. It reports; the fixture decides whether to fail.

use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Mount points at or below `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.to_string_lossy().into_owned();
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|m| m == &prefix || m.starts_with(&format!("{prefix}/")))
        .map(PathBuf::from)
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    found.dedup();
    found
}

fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4].iter().all(u8::is_ascii_digit)
        {
            let s = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap();
            out.push(u8::from_str_radix(s, 8).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Lazily unmounts every mount at or below `dir` (repeats for stacked mounts).
pub fn unmount_under(dir: &Path) {
    for _ in 0..8 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            return;
        }
        for m in mounts {
            let _ = umount2(&m, MntFlags::MNT_DETACH);
        }
    }
}

/// True when `name` contains `id` not followed by another id character
/// (so "c-1" does not match "c-10").
fn names_id(name: &str, id: &str) -> bool {
    name.match_indices(id).any(|(i, _)| {
        name[i + id.len()..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_ascii_alphanumeric())
    })
}

/// Cgroup directories (any controller on v1, any depth) whose name contains `id`. The walk
/// starts at /sys/fs/cgroup itself: its entries are controllers on v1 and cgroups on v2.
pub fn cgroups_named(id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    walk_cgroups(Path::new(crate::cgroup::ROOT), id, &mut found);
    found.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    found
}

fn walk_cgroups(dir: &Path, id: &str, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = e.path();
        if names_id(&e.file_name().to_string_lossy(), id) {
            found.push(path.clone());
        }
        walk_cgroups(&path, id, found);
    }
}

/// Thaws a cgroup, kills its processes and removes it (children first: the list from
/// `cgroups_named` is deepest first).
pub fn remove_cgroup(dir: &Path) {
    let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
    let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    for _ in 0..100 {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Processes whose environment holds `BERTH_TEST_ID=<marker>`, or whose command line or
/// root directory points into one of `paths`.
pub fn processes_matching(marker: &str, paths: &[&Path]) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let env_entry = format!("BERTH_TEST_ID={marker}");
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let proc_dir = e.path();
        let cmdline = std::fs::read(proc_dir.join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let environ = std::fs::read(proc_dir.join("environ")).unwrap_or_default();
        let root = std::fs::read_link(proc_dir.join("root")).unwrap_or_default();
        let by_env = environ
            .split(|b| *b == 0)
            .any(|kv| kv == env_entry.as_bytes());
        let by_path = paths.iter().any(|p| {
            let p = p.to_string_lossy();
            cmd.contains(p.as_ref()) || root.starts_with(p.as_ref())
        });
        if by_env || by_path {
            found.push((pid, cmd.trim().to_string()));
        }
    }
    found
}

/// SIGKILLs `pids` and waits briefly for them to go.
pub fn kill_all(pids: &[(i32, String)]) {
    for (pid, _) in pids {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    crate::wait_for(Duration::from_secs(2), || {
        pids.iter().all(|(pid, _)| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.is_empty() || stat.contains(") Z ")
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_match_does_not_match_a_longer_id() {
        assert!(names_id("c-1", "c-1"));
        assert!(names_id("berth-c-1.scope", "c-1"));
        assert!(!names_id("c-10", "c-1"));
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
    }
}
