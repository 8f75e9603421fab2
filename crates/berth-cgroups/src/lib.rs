//! berth-cgroups: one container's cgroup on cgroup v1 (hybrid hosts included) or v2, behind one
//! type, [`Cgroup`]. It creates, limits, joins, freezes, measures, signals and removes a cgroup;
//! it never decides what the limits are (that is the runtime's spec) and never forks processes.
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

mod cgroupfs;
mod convert;
mod devices_bpf;
mod error;
mod hierarchy;
mod stats;
mod v1;
mod v1_resources;
mod v2;
mod v2_resources;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub use convert::{blkio_weight_to_io_weight, shares_to_weight};
pub use devices_bpf::{device_filter, Insn};
pub use error::{Error, Result};
pub use hierarchy::Hierarchy;
pub use stats::{BlkioEntry, CpuStats, HugetlbStats, MemoryStats, PidsStats, Stats};

/// One container's cgroup. Serializable so the runtime can keep it in its state file and
/// `delete` later removes exactly the directories `create` made.
#[derive(Debug, Serialize, Deserialize)]
pub struct Cgroup {
    hierarchy: Hierarchy,
    /// Normalised, relative to the hierarchy root (or each v1 controller's mountpoint).
    path: PathBuf,
    /// Directories `create` made (outermost first), beyond the leaf which is always ours.
    #[serde(default)]
    created: Mutex<Vec<PathBuf>>,
}

impl Clone for Cgroup {
    fn clone(&self) -> Self {
        Cgroup {
            hierarchy: self.hierarchy.clone(),
            path: self.path.clone(),
            created: Mutex::new(self.created_dirs()),
        }
    }
}

impl Cgroup {
    /// Describes the cgroup at `path` (an OCI cgroupsPath); touches nothing on disk.
    pub fn new(h: &Hierarchy, path: &str) -> Result<Cgroup> {
        Ok(Cgroup {
            hierarchy: h.clone(),
            path: convert::normalise_path(path)?,
            created: Mutex::new(Vec::new()),
        })
    }

    pub fn hierarchy(&self) -> &Hierarchy {
        &self.hierarchy
    }

    /// The normalised path relative to the root.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the cgroup directories (every v1 controller, or the v2 dir with controllers
    /// enabled in the parents' cgroup.subtree_control) and remembers which ones it made.
    pub fn create(&self) -> Result<()> {
        let mut made = Vec::new();
        let res = match &self.hierarchy {
            Hierarchy::V1 { mounts } => v1::create(mounts, &self.path, &mut made),
            Hierarchy::V2 { root } => v2::create(root, &self.path, &mut made),
        };
        self.created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(made);
        res
    }

    /// Writes every resource in `r`; used at create time and by `update`.
    pub fn apply(&self, r: &LinuxResources) -> Result<()> {
        match &self.hierarchy {
            Hierarchy::V1 { mounts } => v1_resources::apply(mounts, &self.path, r),
            Hierarchy::V2 { root } => v2_resources::apply(&root.join(&self.path), r),
        }
    }

    /// Moves `pid` (a whole process) into the cgroup.
    pub fn add_process(&self, pid: i32) -> Result<()> {
        match &self.hierarchy {
            Hierarchy::V1 { mounts } => v1::add_process(mounts, &self.path, pid),
            Hierarchy::V2 { root } => cgroupfs::write(
                "cgroup",
                &root.join(&self.path),
                "cgroup.procs",
                &pid.to_string(),
            ),
        }
    }

    /// Signals every process in any of the cgroup's directories (v1: every hierarchy, not just
    /// the one `procs` lists): for what someone moved into one controller's cgroup by hand.
    pub fn signal_stragglers(&self, sig: i32) -> Result<()> {
        let mut pids = Vec::new();
        for dir in self.paths() {
            if dir.exists() {
                cgroupfs::procs_recursive("cgroup", &dir, &mut pids)?;
            }
        }
        pids.sort_unstable();
        pids.dedup();
        cgroupfs::signal_all(&pids, sig)
    }

    /// Every pid in the cgroup, child cgroups included.
    pub fn procs(&self) -> Result<Vec<i32>> {
        let mut pids = Vec::new();
        match &self.hierarchy {
            Hierarchy::V1 { mounts } => {
                let (ctl, dir) = v1::procs_dir(mounts, &self.path)?;
                cgroupfs::procs_recursive(&ctl, &dir, &mut pids)?;
            }
            Hierarchy::V2 { root } => {
                cgroupfs::procs_recursive("cgroup", &root.join(&self.path), &mut pids)?
            }
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Freezes every task and returns once the kernel reports the cgroup FROZEN.
    pub fn freeze(&self) -> Result<()> {
        match &self.hierarchy {
            Hierarchy::V1 { mounts } => v1::set_frozen(mounts, &self.path, true),
            Hierarchy::V2 { root } => v2::set_frozen(&root.join(&self.path), true),
        }
    }

    /// Thaws the cgroup and returns once it is THAWED.
    pub fn thaw(&self) -> Result<()> {
        match &self.hierarchy {
            Hierarchy::V1 { mounts } => v1::set_frozen(mounts, &self.path, false),
            Hierarchy::V2 { root } => v2::set_frozen(&root.join(&self.path), false),
        }
    }

    /// True only when the kernel reports the cgroup fully frozen.
    pub fn is_frozen(&self) -> Result<bool> {
        match &self.hierarchy {
            Hierarchy::V1 { mounts } => v1::is_frozen(mounts, &self.path),
            Hierarchy::V2 { root } => v2::is_frozen(&root.join(&self.path)),
        }
    }

    /// CPU, memory, pids, block I/O, hugetlb and OOM statistics; absent files read as zero.
    pub fn stats(&self) -> Result<Stats> {
        match &self.hierarchy {
            Hierarchy::V1 { mounts } => stats::v1(mounts, &self.path),
            Hierarchy::V2 { root } => stats::v2(&root.join(&self.path)),
        }
    }

    /// How many times the OOM killer killed a task in this cgroup.
    pub fn oom_kill_count(&self) -> Result<u64> {
        match &self.hierarchy {
            Hierarchy::V1 { mounts } => {
                let dir = v1::dir(mounts, &self.path, "memory")
                    .ok_or_else(|| Error::missing("memory", "oom_kill count"))?;
                let text = cgroupfs::read("memory", &dir, "memory.oom_control")?;
                Ok(cgroupfs::keyed(&text, "oom_kill").unwrap_or(0))
            }
            Hierarchy::V2 { root } => {
                let text = cgroupfs::read("memory", &root.join(&self.path), "memory.events")?;
                Ok(cgroupfs::keyed(&text, "oom_kill").unwrap_or(0))
            }
        }
    }

    /// Sends `sig` to every process in the cgroup. The cgroup is frozen while signalling so a
    /// forking process cannot slip a child past us; v2 uses cgroup.kill for SIGKILL.
    pub fn kill_all(&self, sig: i32) -> Result<()> {
        if let Hierarchy::V2 { root } = &self.hierarchy {
            let dir = root.join(&self.path);
            if sig == libc::SIGKILL && dir.join("cgroup.kill").exists() {
                return cgroupfs::write("cgroup", &dir, "cgroup.kill", "1");
            }
        }
        // Nothing to signal: no freeze either (freezing patches kernel code on some hosts, and
        // every container's delete calls this).
        if self.procs()?.is_empty() {
            return Ok(());
        }
        let frozen = self.freeze().is_ok();
        let res = self
            .procs()
            .and_then(|pids| cgroupfs::signal_all(&pids, sig));
        if frozen {
            self.thaw()?;
        }
        res
    }

    /// Removes the cgroup directories `create` made (child cgroups first, retrying briefly while
    /// tasks are reaped), then any parent directories `create` made that nothing else uses.
    /// Missing dirs are fine. A directory that was there before is not touched (see
    /// `remove_preexisting_if_unused`).
    pub fn destroy(&self) -> Result<()> {
        let created = self.created_dirs();
        let paths = self.paths();
        for dir in paths.iter().filter(|d| has(&created, d)) {
            cgroupfs::remove_tree(dir)?;
        }
        for dir in created.iter().rev().filter(|d| !has(&paths, d)) {
            cgroupfs::remove_parent_if_unused(dir)?;
        }
        Ok(())
    }

    /// The container's directories that were there before it (another container's, or prepared by
    /// a user): removed if nothing is left in them, as runc's delete does; a busy one stays.
    /// Every directory is tried; the first error is returned.
    pub fn remove_preexisting_if_unused(&self) -> Result<()> {
        let created = self.created_dirs();
        let mut first = Ok(());
        for dir in self.paths().iter().filter(|d| !has(&created, d)) {
            let res = cgroupfs::remove_parent_if_unused(dir);
            if first.is_ok() {
                first = res;
            }
        }
        first
    }

    /// The cgroup's directories: one per distinct v1 mountpoint, or the single v2 directory.
    pub fn paths(&self) -> Vec<PathBuf> {
        match &self.hierarchy {
            Hierarchy::V1 { mounts } => v1::mountpoints(mounts)
                .map(|m| m.join(&self.path))
                .collect(),
            Hierarchy::V2 { root } => vec![root.join(&self.path)],
        }
    }

    /// v1 only: (controller directory name such as `cpu,cpuacct` or `systemd`, this cgroup's
    /// host directory), for binding into the container at /sys/fs/cgroup/<name>. Empty on v2.
    pub fn v1_mounts(&self) -> Vec<(String, PathBuf)> {
        match &self.hierarchy {
            Hierarchy::V1 { mounts } => v1::mountpoints(mounts)
                .map(|m| {
                    let name = m.file_name().map(|n| n.to_string_lossy().into_owned());
                    (name.unwrap_or_default(), m.join(&self.path))
                })
                .collect(),
            Hierarchy::V2 { .. } => Vec::new(),
        }
    }

    /// True when `create` found the container's own directory already there (another container's
    /// or a leftover): the caller warns about processes in it and refuses a frozen one, like runc.
    pub fn preexisted(&self) -> bool {
        let created = self.created_dirs();
        !self.controller_paths().iter().any(|p| has(&created, p))
    }

    /// `paths` without a hybrid host's cgroup2 (`unified`) directory: the controllers' own.
    pub fn controller_paths(&self) -> Vec<PathBuf> {
        let unified = self.unified_dir();
        self.paths()
            .into_iter()
            .filter(|p| {
                unified
                    .as_ref()
                    .is_none_or(|u| u.as_os_str() != p.as_os_str())
            })
            .collect()
    }

    /// Removes what `create_unified` made (the runtime's undo when the rest was never created).
    pub fn destroy_unified(&self) -> Result<()> {
        let Some(dir) = self.unified_dir() else {
            return Ok(());
        };
        let created = self.created_dirs();
        if has(&created, &dir) {
            cgroupfs::remove_tree(&dir)?;
        }
        for d in created
            .iter()
            .rev()
            .filter(|d| dir.starts_with(d) && **d != dir)
        {
            cgroupfs::remove_parent_if_unused(d)?;
        }
        Ok(())
    }

    /// Creates only the hybrid host's cgroup2 directory (recorded like `create`'s, so `destroy`
    /// removes what it made): the runtime clones into it before making the rest.
    pub fn create_unified(&self) -> Result<()> {
        let Some(dir) = self.unified_dir() else {
            return Ok(());
        };
        let mut made = Vec::new();
        let res = cgroupfs::mkdir_all(&dir, &mut made);
        self.created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(made);
        res
    }

    /// A hybrid host's cgroup2 directory for this cgroup (None on pure v1 and on v2).
    pub fn unified_dir(&self) -> Option<PathBuf> {
        match &self.hierarchy {
            Hierarchy::V1 { mounts } => mounts.get(hierarchy::UNIFIED).map(|m| m.join(&self.path)),
            Hierarchy::V2 { .. } => None,
        }
    }

    fn created_dirs(&self) -> Vec<PathBuf> {
        self.created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Is `p` in `list`? By bytes: every path here is built the same way from mountinfo's strings, and
/// Path's `==` (which parses components) showed up in start-up profiles.
fn has(list: &[PathBuf], p: &Path) -> bool {
    list.iter().any(|x| x.as_os_str() == p.as_os_str())
}
