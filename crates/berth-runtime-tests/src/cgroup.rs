//! Where a container's cgroup files live on this host, so one test reads the right file on a
//! v1 (or hybrid) host and on a pure v2 one, and a scratch loop device for block I/O tests.
//! It only reads cgroupfs (setting limits is the runtime's job under test).

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where every hierarchy is mounted.
pub const ROOT: &str = "/sys/fs/cgroup";

/// True when /sys/fs/cgroup is itself a cgroup2 mount (a pure v2 host; hybrid hosts are v1).
pub fn is_v2() -> bool {
    nix::sys::statfs::statfs(ROOT)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// For v2-only tests: prints why the test does nothing and returns true unless the host is pure v2.
pub fn skip_unless_v2() -> bool {
    if is_v2() {
        return false;
    }
    eprintln!("skipped: {ROOT} is not a pure cgroup v2 hierarchy (run scripts/v2-lane.sh)");
    true
}

/// True inside the v2 lane's guest (scripts/v2-lane.sh), where the tests must not skip parts
/// for want of kernel features: the lane's kernel has them all.
pub fn in_v2_lane() -> bool {
    std::env::var_os("BERTH_V2_LANE").is_some()
}

/// The directory of `controller` for the cgroup at `cgroups_path`: one directory per
/// controller on v1, the same single directory for every controller on v2.
pub fn dir(controller: &str, cgroups_path: &str) -> PathBuf {
    let rel = cgroups_path.trim_start_matches('/');
    if is_v2() {
        Path::new(ROOT).join(rel)
    } else {
        Path::new(ROOT).join(controller).join(rel)
    }
}

/// The single cgroup2 directory of the cgroup at `cgroups_path` (pure v2 hosts).
pub fn v2_dir(cgroups_path: &str) -> PathBuf {
    Path::new(ROOT).join(cgroups_path.trim_start_matches('/'))
}

/// Reads (trimmed) `file` of `controller` for the cgroup at `cgroups_path`.
pub fn read(controller: &str, cgroups_path: &str, file: &str) -> Option<String> {
    std::fs::read_to_string(dir(controller, cgroups_path).join(file))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The value of `key` in a flat-keyed cgroup file (`key value` lines: memory.events, cpu.stat).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// The number of online CPUs listed in /sys/devices/system/cpu/online, and the last one.
pub fn last_online_cpu() -> u32 {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    text.trim()
        .rsplit([',', '-'])
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A loop device over a file of its own (a block device any test may read, write and throttle
/// without touching a real disk); detached on drop.
pub struct LoopDevice {
    pub path: PathBuf,
    pub major: u32,
    pub minor: u32,
    dev: std::fs::File,
}

const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LOOP_SET_FD: libc::c_ulong = 0x4C00;
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;

impl LoopDevice {
    /// Attaches a zero-filled file of `bytes` at `backing`; None (with a note) when the host
    /// has no loop devices.
    pub fn new(backing: &Path, bytes: u64) -> Option<LoopDevice> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(backing)
            .unwrap();
        file.set_len(bytes).unwrap();
        let control = match std::fs::File::open("/dev/loop-control") {
            Ok(f) => f,
            Err(e) => {
                eprintln!("note: no loop devices: /dev/loop-control: {e}");
                return None;
            }
        };
        // Another process may take the free device first: ask again.
        for _ in 0..20 {
            // SAFETY: an ioctl without an argument on a file we own.
            let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
            assert!(
                n >= 0,
                "LOOP_CTL_GET_FREE: {}",
                std::io::Error::last_os_error()
            );
            let path = PathBuf::from(format!("/dev/loop{n}"));
            let dev = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
            // SAFETY: LOOP_SET_FD takes the backing file's descriptor by value.
            let r = unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_SET_FD, file.as_raw_fd()) };
            if r != 0 {
                let err = std::io::Error::last_os_error();
                assert_eq!(err.raw_os_error(), Some(libc::EBUSY), "LOOP_SET_FD: {err}");
                continue;
            }
            let meta = dev.metadata().unwrap();
            let rdev = meta.rdev();
            return Some(LoopDevice {
                path,
                major: libc::major(rdev),
                minor: libc::minor(rdev),
                dev,
            });
        }
        panic!("no free loop device after 20 tries");
    }

    /// `MAJ:MIN`, as cgroup files name a device.
    pub fn devno(&self) -> String {
        format!("{}:{}", self.major, self.minor)
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        // SAFETY: an ioctl without an argument on a file we own.
        unsafe { libc::ioctl(self.dev.as_raw_fd(), LOOP_CLR_FD) };
    }
}
