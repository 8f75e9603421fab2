//! cgroup v2 lifecycle: the single directory, enabling controllers down the tree through
//! cgroup.subtree_control, and freezing through cgroup.freeze / cgroup.events. Resource writes
//! live in `v2_resources`; this module never touches v1 files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cgroupfs;
use crate::{Error, Result};

const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// Makes `root/rel` and enables every available controller in each ancestor below `root`
/// (including `root` itself) so the leaf gets its interface files.
pub fn create(root: &Path, rel: &Path, made: &mut Vec<PathBuf>) -> Result<()> {
    let leaf = root.join(rel);
    cgroupfs::mkdir_all(&leaf, made)?;
    let mut dir = root.to_path_buf();
    for comp in rel.components() {
        enable_controllers(&dir)?;
        dir.push(comp);
    }
    Ok(())
}

/// Writes `+ctl` for every controller in cgroup.controllers not yet in cgroup.subtree_control:
/// all at once, and one by one if the kernel refuses the batch (a controller that cannot be
/// enabled surfaces later as a clear error when its resource is written).
fn enable_controllers(dir: &Path) -> Result<()> {
    let Some(available) = cgroupfs::read_optional("cgroup", dir, "cgroup.controllers")? else {
        return Ok(());
    };
    let enabled =
        cgroupfs::read_optional("cgroup", dir, "cgroup.subtree_control")?.unwrap_or_default();
    let missing: Vec<String> = available
        .split_whitespace()
        .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if cgroupfs::write("cgroup", dir, "cgroup.subtree_control", &missing.join(" ")).is_err() {
        for m in &missing {
            let _ = cgroupfs::write("cgroup", dir, "cgroup.subtree_control", m);
        }
    }
    Ok(())
}

/// Writes cgroup.freeze and waits for cgroup.events to report `frozen 1` (or `frozen 0`).
pub fn set_frozen(dir: &Path, frozen: bool) -> Result<()> {
    let want = u64::from(frozen);
    cgroupfs::write("cgroup", dir, "cgroup.freeze", &want.to_string())?;
    let done = cgroupfs::wait_until(FREEZE_TIMEOUT, || {
        let events = cgroupfs::read("cgroup", dir, "cgroup.events")?;
        Ok(cgroupfs::keyed(&events, "frozen") == Some(want))
    })?;
    if done {
        Ok(())
    } else {
        let state = if frozen { "frozen 1" } else { "frozen 0" };
        Err(Error::Timeout {
            controller: "cgroup.freeze".into(),
            path: dir.to_path_buf(),
            state,
        })
    }
}

pub fn is_frozen(dir: &Path) -> Result<bool> {
    let events = cgroupfs::read("cgroup", dir, "cgroup.events")?;
    Ok(cgroupfs::keyed(&events, "frozen") == Some(1))
}
