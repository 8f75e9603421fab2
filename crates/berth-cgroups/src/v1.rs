//! cgroup v1 lifecycle: one directory per mounted hierarchy (co-mounted controllers share one),
//! creation with cpuset inheritance, joining, freezing through freezer.state. Resource writes
//! live in `v1_resources`; this module never touches v2 files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cgroupfs;
use crate::{Error, Result};

const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// Distinct mountpoints, each once, in controller-name order.
pub fn mountpoints(mounts: &BTreeMap<String, PathBuf>) -> impl Iterator<Item = &PathBuf> {
    let mut seen: Vec<&PathBuf> = Vec::new();
    mounts.values().filter(move |m| {
        // Byte equality: these are mountinfo's own strings (Path's `==` parses components, and
        // this runs for every hierarchy many times per container start).
        if seen.iter().any(|s| s.as_os_str() == m.as_os_str()) {
            false
        } else {
            seen.push(m);
            true
        }
    })
}

/// This cgroup's directory in `controller`'s hierarchy, if that controller is mounted.
pub fn dir(mounts: &BTreeMap<String, PathBuf>, rel: &Path, controller: &str) -> Option<PathBuf> {
    mounts.get(controller).map(|m| m.join(rel))
}

/// Makes the directory in every hierarchy; a new cpuset cgroup inherits its parent's cpus and
/// mems (an empty cpuset refuses tasks with ENOSPC).
pub fn create(
    mounts: &BTreeMap<String, PathBuf>,
    rel: &Path,
    made: &mut Vec<PathBuf>,
) -> Result<()> {
    for m in mountpoints(mounts) {
        cgroupfs::mkdir_all(&m.join(rel), made)?;
    }
    if let Some(root) = mounts.get("cpuset") {
        inherit_cpuset(root, rel)?;
    }
    Ok(())
}

/// Walks from the top of `rel` down, filling empty cpuset.cpus / cpuset.mems from the parent.
fn inherit_cpuset(root: &Path, rel: &Path) -> Result<()> {
    let mut parent = root.to_path_buf();
    for comp in rel.components() {
        let child = parent.join(comp);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let own = cgroupfs::read("cpuset", &child, file)?;
            if own.trim().is_empty() {
                let from_parent = cgroupfs::read("cpuset", &parent, file)?;
                cgroupfs::write("cpuset", &child, file, from_parent.trim())?;
            }
        }
        parent = child;
    }
    Ok(())
}

/// Writes `pid` to cgroup.procs in every hierarchy.
pub fn add_process(mounts: &BTreeMap<String, PathBuf>, rel: &Path, pid: i32) -> Result<()> {
    for m in mountpoints(mounts) {
        cgroupfs::write(
            first_name_for(mounts, m),
            &m.join(rel),
            "cgroup.procs",
            &pid.to_string(),
        )?;
    }
    Ok(())
}

/// The first controller name (in map order) mounted at `m`, for error messages.
fn first_name_for<'a>(mounts: &'a BTreeMap<String, PathBuf>, m: &Path) -> &'a str {
    mounts
        .iter()
        .find(|(_, p)| p.as_path() == m)
        .map(|(k, _)| k.as_str())
        .unwrap_or("")
}

/// Where to list the cgroup's pids: the freezer (what kill_all freezes), else any hierarchy.
pub fn procs_dir(mounts: &BTreeMap<String, PathBuf>, rel: &Path) -> Result<(String, PathBuf)> {
    ["freezer", "memory", "pids", "cpu"]
        .iter()
        .find_map(|c| dir(mounts, rel, c).map(|d| (c.to_string(), d)))
        .or_else(|| mounts.iter().next().map(|(c, m)| (c.clone(), m.join(rel))))
        .ok_or_else(|| Error::missing("freezer", "process list"))
}

/// Writes FROZEN/THAWED to freezer.state until the kernel reports that state.
pub fn set_frozen(mounts: &BTreeMap<String, PathBuf>, rel: &Path, frozen: bool) -> Result<()> {
    let dir = dir(mounts, rel, "freezer").ok_or_else(|| Error::missing("freezer", "freeze"))?;
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let done = cgroupfs::wait_until(FREEZE_TIMEOUT, || {
        // Re-writing is harmless and nudges a FREEZING cgroup whose tasks raced with us.
        cgroupfs::write("freezer", &dir, "freezer.state", want)?;
        Ok(cgroupfs::read("freezer", &dir, "freezer.state")?.trim() == want)
    })?;
    if done {
        Ok(())
    } else {
        Err(Error::Timeout {
            controller: "freezer".into(),
            path: dir,
            state: want,
        })
    }
}

pub fn is_frozen(mounts: &BTreeMap<String, PathBuf>, rel: &Path) -> Result<bool> {
    let dir =
        dir(mounts, rel, "freezer").ok_or_else(|| Error::missing("freezer", "freeze state"))?;
    Ok(cgroupfs::read("freezer", &dir, "freezer.state")?.trim() == "FROZEN")
}
