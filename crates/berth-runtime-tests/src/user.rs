//! A real unprivileged user for rootless tests: `useradd`, a range of subordinate ids in
//! /etc/subuid and /etc/subgid, and a guard whose Drop (also on a failing test) kills the
//! user's processes, removes exactly the lines it added and deletes the user. It never edits
//! another line of those files.

use std::fs::OpenOptions;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// How many subordinate ids each test user gets (enough for an image's 65534 nobody).
pub const SUBID_COUNT: u32 = 65536;

pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// First host id of the user's subordinate range (the same for uids and gids); 0 for a
    /// user made without one.
    pub subid_start: u32,
    subid_lines: bool,
}

impl TestUser {
    /// Creates the user and gives it `SUBID_COUNT` subordinate uids and gids.
    pub fn create() -> TestUser {
        TestUser::create_with(true)
    }

    /// Creates the user without any line in /etc/subuid or /etc/subgid (useradd's own range,
    /// if it added one, is taken out): rootless berth then maps their own id alone.
    pub fn create_without_subids() -> TestUser {
        TestUser::create_with(false)
    }

    fn create_with(subids: bool) -> TestUser {
        assert!(crate::is_root(), "creating a test user needs root");
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let name = format!("brt{pid}x{n}");
        // Ranges far above ordinary users, one per (process, user) pair.
        let slot = (pid.wrapping_mul(16).wrapping_add(n)) % 8192;
        let subid_start = 100_000_000 + slot * SUBID_COUNT;
        let mut user = TestUser {
            name: name.clone(),
            uid: 0,
            gid: 0,
            subid_start,
            subid_lines: false,
        };
        // useradd and userdel rewrite /etc/subuid themselves (by rename): one user is made or
        // removed at a time, by any test process.
        let _lock = users_lock();
        run(Command::new("useradd").args([
            "-M",
            "-U",
            "-s",
            "/bin/sh",
            "-d",
            "/nonexistent",
            &name,
        ]));
        user.uid = id_of(&name, "-u");
        user.gid = id_of(&name, "-g");
        let line = if subids {
            format!("{name}:{subid_start}:{SUBID_COUNT}\n")
        } else {
            user.subid_start = 0;
            String::new()
        };
        user.subid_lines = true;
        // useradd may have given the user a range of its own (SUB_UID_MIN…): ours replaces it,
        // so `subid_start` is the one newuidmap finds.
        let prefix = format!("{name}:");
        for file in ["/etc/subuid", "/etc/subgid"] {
            edit_locked(file, |text| {
                *text = text
                    .lines()
                    .filter(|l| !l.starts_with(&prefix))
                    .map(|l| format!("{l}\n"))
                    .collect();
                text.push_str(&line);
            });
        }
        user
    }

    /// Chowns `path` (recursively) to the user, as a bundle of their own would be.
    pub fn give(&self, path: &std::path::Path) {
        run(Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", self.uid, self.gid))
            .arg(path));
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn id_of(name: &str, flag: &str) -> u32 {
    let out = Command::new("id").args([flag, name]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("id {flag} {name}: {e}"))
}

/// An exclusive flock on a lock file of the tests' own, held until the file is dropped
/// (flock locks belong to the open file, so threads of one test binary exclude each other too).
fn users_lock() -> std::fs::File {
    let path = "/run/lock/berth-test-users.lock";
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {path}: {e}"));
    // SAFETY: flock on an fd we own; the lock goes with the fd when `f` is dropped.
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
    f
}

/// Rewrites `file` in place; the caller holds `users_lock`.
fn edit_locked(file: &str, edit: impl FnOnce(&mut String)) {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .unwrap_or_else(|e| panic!("open {file}: {e}"));
    let mut text = String::new();
    f.read_to_string(&mut text).unwrap();
    edit(&mut text);
    f.rewind().unwrap();
    f.set_len(0).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// The pids of every process whose uid `mine` accepts.
fn processes_of(mine: &dyn Fn(u32) -> bool) -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<i32>().ok()?;
            mine(e.metadata().ok()?.uid()).then_some(pid)
        })
        .collect()
}

impl Drop for TestUser {
    fn drop(&mut self) {
        if self.uid != 0 {
            let sub = match self.subid_start {
                0 => 0..0,
                start => start..start + SUBID_COUNT,
            };
            let mine = |uid: u32| uid == self.uid || sub.contains(&uid);
            for pid in processes_of(&mine) {
                // SAFETY: kill(2) with a pid and a signal number.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            crate::wait_for(Duration::from_secs(2), || processes_of(&mine).is_empty());
        }
        let _lock = users_lock();
        if self.subid_lines {
            let prefix = format!("{}:", self.name);
            for file in ["/etc/subuid", "/etc/subgid"] {
                edit_locked(file, |text| {
                    *text = text
                        .lines()
                        .filter(|l| !l.starts_with(&prefix))
                        .map(|l| format!("{l}\n"))
                        .collect();
                });
            }
        }
        let out = Command::new("userdel").arg(&self.name).output();
        if !out.as_ref().is_ok_and(|o| o.status.success()) {
            eprintln!("test user {}: userdel failed: {out:?}", self.name);
        }
        // useradd -U made a group of the same name; userdel removes it unless shared.
        let _ = Command::new("groupdel").arg(&self.name).output();
    }
}
