//! Which cgroup hierarchy this host has: v1 (including "hybrid" hosts that also mount an empty
//! cgroup2, which must be treated as v1) or pure v2. Owns the parsing of /proc/self/mountinfo,
//! read once per process; it never creates or writes anything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// v1 controllers we know how to drive (plus any `name=...` named hierarchy).
/// The key of a hybrid host's cgroup2 mount in a v1 hierarchy's mount map.
pub const UNIFIED: &str = "unified";

const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "rdma",
    "misc",
];

/// The host's cgroup layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hierarchy {
    /// Controller name (`memory`, `name=systemd`, …) -> its mountpoint. Co-mounted controllers
    /// (`cpu,cpuacct`) share one mountpoint.
    V1 { mounts: BTreeMap<String, PathBuf> },
    /// The cgroup2 mountpoint.
    V2 { root: PathBuf },
}

static DETECTED: OnceLock<Hierarchy> = OnceLock::new();

impl Hierarchy {
    /// Reads /proc/self/mountinfo (once per process; later calls return the cached answer).
    pub fn detect() -> Result<Hierarchy> {
        if let Some(h) = DETECTED.get() {
            return Ok(h.clone());
        }
        let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(Error::Mountinfo)?;
        let h = Self::from_mountinfo(&text)?;
        Ok(DETECTED.get_or_init(|| h).clone())
    }

    /// A v2 hierarchy rooted at `root` (tests use a temp dir laid out like cgroupfs).
    pub fn v2_at(root: impl Into<PathBuf>) -> Hierarchy {
        Hierarchy::V2 { root: root.into() }
    }

    /// A v1 hierarchy with the given controller mountpoints.
    pub fn v1_at(mounts: BTreeMap<String, PathBuf>) -> Hierarchy {
        Hierarchy::V1 { mounts }
    }

    pub fn is_v2(&self) -> bool {
        matches!(self, Hierarchy::V2 { .. })
    }

    /// This hierarchy without a hybrid host's cgroup2 mount (which only tracks processes, and
    /// whose directories a rootless container cannot make).
    pub fn without_unified(&self) -> Hierarchy {
        match self {
            Hierarchy::V1 { mounts } => {
                let mut mounts = mounts.clone();
                mounts.remove(UNIFIED);
                Hierarchy::V1 { mounts }
            }
            v2 => v2.clone(),
        }
    }

    /// Decides from mountinfo text: any v1 controller mount makes the host v1 (hybrid included).
    pub fn from_mountinfo(text: &str) -> Result<Hierarchy> {
        let mut mounts = BTreeMap::new();
        let mut v2_root: Option<PathBuf> = None;
        for line in text.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let Some(mountpoint) = pre.split(' ').nth(4) else {
                continue;
            };
            let mut post = post.split(' ');
            let (fstype, _source, opts) = (post.next(), post.next(), post.next().unwrap_or(""));
            let mountpoint = PathBuf::from(unescape(mountpoint));
            match fstype {
                Some("cgroup") => {
                    for opt in opts.split(',') {
                        if V1_CONTROLLERS.contains(&opt) || opt.starts_with("name=") {
                            mounts
                                .entry(opt.to_string())
                                .or_insert_with(|| mountpoint.clone());
                        }
                    }
                }
                Some("cgroup2")
                    if v2_root.is_none() || mountpoint == Path::new("/sys/fs/cgroup") =>
                {
                    v2_root = Some(mountpoint);
                }
                _ => {}
            }
        }
        if mounts.keys().any(|k| !k.starts_with("name=")) {
            // Hybrid: the (controller-less) cgroup2 tree tracks processes too, as systemd and runc
            // use it; the container gets a directory there under the key UNIFIED.
            if let Some(root) = v2_root {
                mounts.insert(UNIFIED.to_string(), root);
            }
            return Ok(Hierarchy::V1 { mounts });
        }
        v2_root
            .map(|root| Hierarchy::V2 { root })
            .ok_or(Error::NotMounted)
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_host_is_treated_as_v1() {
        let Hierarchy::V1 { mounts } = Hierarchy::from_mountinfo(HYBRID).unwrap() else {
            panic!("expected v1")
        };
        assert_eq!(mounts["cpu"], PathBuf::from("/sys/fs/cgroup/cpu"));
        assert_eq!(mounts["cpuacct"], PathBuf::from("/sys/fs/cgroup/cpuacct"));
        assert_eq!(
            mounts["name=systemd"],
            PathBuf::from("/sys/fs/cgroup/systemd")
        );
        assert!(!mounts.contains_key("xattr") && !mounts.contains_key("rw"));
        if HYBRID.contains("cgroup2") {
            assert_eq!(mounts[UNIFIED], PathBuf::from("/sys/fs/cgroup/unified"));
        }
    }

    #[test]
    fn comounted_controllers_share_a_mountpoint() {
        let text = "1 0 0:1 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let Hierarchy::V1 { mounts } = Hierarchy::from_mountinfo(text).unwrap() else {
            panic!()
        };
        assert_eq!(mounts["cpu"], mounts["cpuacct"]);
        assert_eq!(mounts["cpu"], PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
    }

    #[test]
    fn pure_v2_host_is_v2() {
        let text = "\
22 1 0:5 / /proc rw - proc proc rw
30 22 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
";
        assert_eq!(
            Hierarchy::from_mountinfo(text).unwrap(),
            Hierarchy::v2_at("/sys/fs/cgroup")
        );
    }

    #[test]
    fn no_cgroup_mount_is_an_error() {
        assert!(matches!(
            Hierarchy::from_mountinfo("1 0 0:1 / / rw - ext4 /dev/sda rw\n"),
            Err(Error::NotMounted)
        ));
    }

    #[test]
    fn escaped_mountpoints_are_decoded() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape(r"/plain\"), r"/plain\");
    }
}
