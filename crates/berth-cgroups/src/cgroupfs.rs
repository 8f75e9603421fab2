//! Small, error-contextualised file operations on cgroupfs: write one value, read a file, parse
//! flat-keyed files, `mkdir -p` that records what it created, `rmdir` that retries on EBUSY, and
//! polling for a state. It knows file formats, never which resource means what.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// Writes `value` to `dir/file` in one write(2); the file must already exist (as on cgroupfs).
pub fn write(controller: &str, dir: &Path, file: &str, value: &str) -> Result<()> {
    let res = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(dir.join(file))
        .and_then(|mut f| f.write_all(value.as_bytes()));
    res.map_err(|err| Error::Write {
        controller: controller.into(),
        file: file.into(),
        value: value.into(),
        err,
    })
}

/// Reads `dir/file` whole.
pub fn read(controller: &str, dir: &Path, file: &str) -> Result<String> {
    fs::read_to_string(dir.join(file)).map_err(|err| Error::Read {
        controller: controller.into(),
        file: file.into(),
        err,
    })
}

/// Reads `dir/file`, or `None` when it does not exist (optional statistics and features).
pub fn read_optional(controller: &str, dir: &Path, file: &str) -> Result<Option<String>> {
    match fs::read_to_string(dir.join(file)) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(Error::Read {
            controller: controller.into(),
            file: file.into(),
            err,
        }),
    }
}

/// Reads a file holding one unsigned number; `max` reads as `u64::MAX`; missing/garbled as `None`.
pub fn read_u64(dir: &Path, file: &str) -> Option<u64> {
    parse_u64(fs::read_to_string(dir.join(file)).ok()?.trim())
}

pub fn parse_u64(s: &str) -> Option<u64> {
    if s == "max" {
        return Some(u64::MAX);
    }
    s.parse().ok()
}

/// Looks `key` up in a flat-keyed file (`key value` per line, e.g. memory.stat, cgroup.events).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| parse_u64(v.trim())).flatten()
    })
}

/// `mkdir -p dir`, appending every directory it actually created (outermost first) to `created`.
pub fn mkdir_all(dir: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    // mkdir first (one syscall when the parent exists, the usual case); parents only on ENOENT.
    let mut res = fs::create_dir(dir);
    if let (Err(e), Some(parent)) = (&res, dir.parent()) {
        if e.kind() == io::ErrorKind::NotFound {
            mkdir_all(parent, created)?;
            res = fs::create_dir(dir);
        }
    }
    match res {
        Ok(()) => {
            created.push(dir.to_path_buf());
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(Error::Dir {
            op: "mkdir",
            path: dir.to_path_buf(),
            err,
        }),
    }
}

/// Removes a cgroup directory and any child cgroups under it, deepest first. EBUSY (tasks that
/// are still being reaped) is retried for about a second; a missing directory is fine.
pub fn remove_tree(dir: &Path) -> Result<()> {
    // The common case, an empty leaf, in one syscall; children (EBUSY) are removed first below.
    match fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path())?;
            }
        }
    }
    let mut delay = Duration::from_millis(5);
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(err) => {
                return Err(Error::Dir {
                    op: "rmdir",
                    path: dir.to_path_buf(),
                    err,
                })
            }
        }
    }
}

/// Removes an (empty) parent directory we created, if nothing else lives there any more.
/// Busy or non-empty parents belong to someone else now and are left alone.
pub fn remove_parent_if_unused(dir: &Path) -> Result<()> {
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e)
            if e.kind() == io::ErrorKind::NotFound
                || matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::ENOTEMPTY)) =>
        {
            Ok(())
        }
        Err(err) => Err(Error::Dir {
            op: "rmdir",
            path: dir.to_path_buf(),
            err,
        }),
    }
}

/// Calls `check` until it returns true, sleeping a little longer each time, for at most `limit`.
pub fn wait_until(limit: Duration, mut check: impl FnMut() -> Result<bool>) -> Result<bool> {
    let deadline = Instant::now() + limit;
    let mut delay = Duration::from_micros(200);
    loop {
        if check()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(20));
    }
}

/// Parses a cgroup.procs file.
pub fn parse_pids(text: &str) -> Vec<i32> {
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// All pids in `dir` and in every child cgroup below it (cgroup.procs lists one level only).
pub fn procs_recursive(controller: &str, dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    out.extend(parse_pids(&read(controller, dir, "cgroup.procs")?));
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                procs_recursive(controller, &e.path(), out)?;
            }
        }
    }
    Ok(())
}

/// Sends `sig` to each pid; processes that already exited are not an error.
pub fn signal_all(pids: &[i32], sig: i32) -> Result<()> {
    for &pid in pids {
        // SAFETY: kill(2) takes plain integers and touches no memory of ours.
        if unsafe { libc::kill(pid, sig) } != 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::ESRCH) {
                return Err(Error::Kill { pid, sig, err });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files_parse_by_exact_key() {
        let t = "low 0\nhigh 2\nmax 3\noom 1\noom_kill 4\n";
        assert_eq!(keyed(t, "oom_kill"), Some(4));
        assert_eq!(keyed(t, "oom"), Some(1));
        assert_eq!(keyed(t, "missing"), None);
        assert_eq!(parse_u64("max"), Some(u64::MAX));
    }

    #[test]
    fn mkdir_all_records_only_what_it_created() {
        let base = std::env::temp_dir().join(format!("berth-cgfs-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        let mut made = Vec::new();
        mkdir_all(&base.join("a/b"), &mut made).unwrap();
        mkdir_all(&base.join("a/b"), &mut made).unwrap();
        assert_eq!(made, vec![base.join("a"), base.join("a/b")]);
        remove_tree(&base.join("a")).unwrap();
        assert!(!base.join("a").exists());
        remove_tree(&base.join("a")).unwrap(); // missing is fine
        std::fs::remove_dir(&base).unwrap();
    }

    #[test]
    fn pids_parse_skips_blank_lines() {
        assert_eq!(parse_pids("1\n22\n\n333\n"), vec![1, 22, 333]);
    }
}
