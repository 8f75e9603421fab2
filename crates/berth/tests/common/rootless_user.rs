//! Rootless tests' harness: a real unprivileged user's directories (store, runroot, home under
//! one base, removed after), `berth` run as that user in their own environment, and what the
//! kernel shows of them afterwards (mounts in their pause process's namespace, their processes).
#![allow(dead_code)]

use crate::common;
use crate::common::image::{Compression, Image, Layer};
use crate::common::registry::Registry;
use berth_runtime_tests::user::TestUser;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A directory of the user's (store, runroot, home), removed with everything below it.
pub struct UserDirs {
    pub base: PathBuf,
}

impl UserDirs {
    pub fn new(user: &TestUser) -> UserDirs {
        let base = PathBuf::from(format!("/tmp/berth-rootless-{}", user.name));
        std::fs::create_dir_all(&base).unwrap();
        user.give(&base);
        UserDirs { base }
    }

    /// The user's pause process (holding their namespaces), if one was recorded.
    pub fn pause_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.base.join("run/berth/pause.pid")).ok()?;
        text.split_whitespace().next()?.parse().ok()
    }
}

impl Drop for UserDirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// `program` as the user, in their own environment (their directories under `dirs`).
pub fn as_user(user: &TestUser, dirs: &UserDirs, program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.uid(user.uid)
        .gid(user.gid)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", &dirs.base)
        .env("XDG_DATA_HOME", dirs.base.join("data"))
        .env("XDG_RUNTIME_DIR", dirs.base.join("run"))
        .current_dir(&dirs.base);
    cmd
}

/// `berth ARGS` as the user, in their own environment.
pub fn berth(user: &TestUser, dirs: &UserDirs, args: &[&str]) -> common::Output {
    let mut cmd = as_user(user, dirs, common::BERTH);
    cmd.args(args);
    common::run(cmd, None)
}

pub fn ok(user: &TestUser, dirs: &UserDirs, args: &[&str]) -> String {
    berth(user, dirs, args)
        .success(&format!("berth {args:?} as {}", user.name))
        .stdout
}

/// Mounts in the namespace the user's pause process holds whose line contains `needle`.
pub fn user_mounts_with(dirs: &UserDirs, needle: &str) -> Vec<String> {
    let Some(pid) = dirs.pause_pid() else {
        return Vec::new();
    };
    let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    info.lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Mounts of the user's store in the mount namespace their pause process holds.
pub fn user_mounts(dirs: &UserDirs) -> Vec<String> {
    user_mounts_with(dirs, &dirs.base.display().to_string())
}

/// Every live process owned by the user or their subordinate ids, but their pause process:
/// `(pid, comm)`.
pub fn user_processes(user: &TestUser, dirs: &UserDirs) -> Vec<(i32, String)> {
    let pause = dirs.pause_pid();
    let sub = match user.subid_start {
        0 => 0..0,
        start => start..start + berth_runtime_tests::user::SUBID_COUNT,
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(meta) = std::fs::metadata(e.path()) else {
            continue;
        };
        if (meta.uid() != user.uid && !sub.contains(&meta.uid())) || Some(pid) == pause {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let state = stat.rsplit(')').next().unwrap_or("").trim().chars().next();
        if matches!(state, Some('Z') | Some('X') | None) {
            continue;
        }
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        out.push((pid, comm.trim().to_string()));
    }
    out
}

/// Whether `pid` is a live process (a zombie is not).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !matches!(s.rsplit(')').next().map(str::trim), Some(t) if t.starts_with('Z')))
        .unwrap_or(false)
}

/// /dev/net/tun opened to every user (0666, what udev makes it on a standard system) while any
/// test of this binary needs it; its mode is put back after the last one.
pub struct TunAccess;

static TUN: Mutex<(usize, Option<u32>)> = Mutex::new((0, None));
const TUN_PATH: &str = "/dev/net/tun";

impl TunAccess {
    pub fn grant() -> TunAccess {
        let mut g = TUN.lock().unwrap_or_else(|e| e.into_inner());
        if g.0 == 0 {
            let mode = std::fs::metadata(TUN_PATH).unwrap().permissions().mode() & 0o7777;
            if mode & 0o666 != 0o666 {
                set_mode(TUN_PATH, 0o666);
                g.1 = Some(mode);
            }
        }
        g.0 += 1;
        TunAccess
    }
}

impl TunAccess {
    /// Runs `f` while /dev/net/tun is closed to ordinary users (mode 0600), once no test of
    /// this binary has it granted; its mode is put back after.
    pub fn denied<T>(f: impl FnOnce() -> T) -> T {
        loop {
            let g = TUN.lock().unwrap_or_else(|e| e.into_inner());
            if g.0 == 0 {
                let mode = std::fs::metadata(TUN_PATH).unwrap().permissions().mode() & 0o7777;
                set_mode(TUN_PATH, 0o600);
                let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
                set_mode(TUN_PATH, mode);
                drop(g);
                return out.unwrap_or_else(|p| std::panic::resume_unwind(p));
            }
            drop(g);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for TunAccess {
    fn drop(&mut self) {
        let mut g = TUN.lock().unwrap_or_else(|e| e.into_inner());
        g.0 -= 1;
        if g.0 == 0 {
            if let Some(mode) = g.1.take() {
                set_mode(TUN_PATH, mode);
            }
        }
    }
}

fn set_mode(path: &str, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// busybox as a one-layer image.
pub fn busybox_image() -> Image {
    Image::new(vec![Layer::new(
        &crate::fixture::busybox_rootfs(),
        Compression::Gzip,
    )])
}

/// `image` pushed to `reg` as `test/NAME:latest` and pulled by the user: its reference.
pub fn pulled(
    user: &TestUser,
    dirs: &UserDirs,
    reg: &Registry,
    name: &str,
    image: &Image,
) -> String {
    let repo = format!("test/{name}");
    reg.push_image(&repo, "latest", image);
    let r = reg.reference(&repo, "latest");
    ok(user, dirs, &["pull", &r]);
    r
}
