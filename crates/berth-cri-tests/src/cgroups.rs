//! The node's cgroup parents, made as the kubelet's cgroupfs driver makes them: a `/berth-cri-N`
//! tree (the kubelet's `/kubepods`) with a `pod<uid>` directory per pod, in every hierarchy
//! mounted under /sys/fs/cgroup, cpuset ones given their parent's cpus and mems. The runtime
//! creates the containers' cgroups below them; removing a parent proves nothing was left in it.

use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";

/// Mount points of every cgroup hierarchy under /sys/fs/cgroup (one on a pure v2 host).
pub fn hierarchies() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            let fstype = fields.get(sep + 1)?;
            let point = fields.get(4)?;
            (matches!(*fstype, "cgroup" | "cgroup2") && point.starts_with(ROOT))
                .then(|| PathBuf::from(point))
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

/// The node's top cgroup (`/berth-cri-<pid>`) and the pods below it.
pub struct NodeCgroups {
    /// `/berth-cri-<pid>`, relative to each hierarchy's root.
    pub top: String,
}

impl NodeCgroups {
    pub fn new() -> NodeCgroups {
        let me = NodeCgroups {
            top: format!("/berth-cri-{}", std::process::id()),
        };
        for h in hierarchies() {
            make(&h, &me.top);
        }
        me
    }

    /// Makes `<top>/pod<uid>` everywhere; returns the CRI `cgroup_parent` for it.
    pub fn pod(&self, uid: &str) -> String {
        let parent = format!("{}/pod{uid}", self.top);
        for h in hierarchies() {
            make(&h, &parent);
        }
        parent
    }

    /// Cgroup directories left below `parent` (a pod's cgroup_parent), in any hierarchy.
    pub fn children_of(&self, parent: &str) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for h in hierarchies() {
            walk(&h.join(parent.trim_start_matches('/')), &mut found);
        }
        found
    }

    /// Removes a pod's parent: true when every hierarchy's directory was empty and removed.
    pub fn remove_pod(&self, parent: &str) -> bool {
        hierarchies().iter().all(|h| {
            let dir = h.join(parent.trim_start_matches('/'));
            !dir.exists() || std::fs::remove_dir(&dir).is_ok()
        })
    }

    /// Kills whatever is left in the node's tree and removes it, deepest first (the failure path).
    pub fn destroy(&self) {
        for h in hierarchies() {
            let top = h.join(self.top.trim_start_matches('/'));
            let mut dirs = Vec::new();
            walk(&top, &mut dirs);
            dirs.push(top);
            dirs.sort_by_key(|d| std::cmp::Reverse(d.as_os_str().len()));
            for d in dirs {
                berth_runtime_tests::leaks::remove_cgroup(&d);
            }
        }
    }
}

impl Default for NodeCgroups {
    fn default() -> Self {
        NodeCgroups::new()
    }
}

impl Drop for NodeCgroups {
    fn drop(&mut self) {
        self.destroy();
    }
}

/// `mkdir` of `rel` under hierarchy `h`, level by level; a new cpuset level gets its
/// parent's cpus and mems (as the kubelet's cgroupfs driver does), or no task could join it.
fn make(h: &Path, rel: &str) {
    let mut dir = h.to_path_buf();
    for part in rel.trim_start_matches('/').split('/') {
        let parent = dir.clone();
        dir.push(part);
        if dir.exists() {
            continue;
        }
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(v) = std::fs::read_to_string(parent.join(file)) {
                if std::fs::read_to_string(dir.join(file)).is_ok_and(|s| s.trim().is_empty()) {
                    let _ = std::fs::write(dir.join(file), v.trim());
                }
            }
        }
    }
}

/// Every directory below `dir` (not `dir` itself).
fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            found.push(e.path());
            walk(&e.path(), found);
        }
    }
}
