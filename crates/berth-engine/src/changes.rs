//! What a container changed (`diff`), from its snapshot's writable layer against its image's
//! layers (`berth_image::tree::diff`), leaving out the mount targets the runtime made.

use crate::error::{EngineError, Result};
use crate::record::Record;
use crate::Engine;
use berth_image::tree::diff::{diff, tree_size};
pub use berth_image::tree::diff::{Change, Kind};
use std::collections::HashSet;
use std::path::PathBuf;

/// Mount targets the runtime made in the writable layer (`/proc`, `/etc/hosts`…), from the spec the
/// container last ran with: left out of `diff` and `commit` while they are empty placeholders.
pub fn placeholders(e: &Engine, rec: &Record) -> HashSet<PathBuf> {
    let spec = e.records.dir(&rec.id).join("config.json");
    let Ok(bytes) = std::fs::read(spec) else {
        return HashSet::new();
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let mut out: HashSet<PathBuf> = v["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["destination"].as_str())
        .map(|d| PathBuf::from(d.trim_start_matches('/')))
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    out.extend(
        rec.mounts
            .iter()
            .map(|m| PathBuf::from(m.destination.trim_start_matches('/'))),
    );
    out
}

/// `diff`: the container's changes, parents before children.
pub fn changes(e: &Engine, rec: &Record) -> Result<Vec<Change>> {
    let lowers = e.snapshots.mounts(&rec.id)?.lowers;
    diff(
        &e.snapshots.upper_dir(&rec.id),
        &lowers,
        &placeholders(e, rec),
    )
    .map_err(|x| EngineError::msg(format!("container {}: {x}", rec.name)))
}

/// Apparent bytes of the regular files in a container's writable layer (Docker's `SizeRw`).
pub fn upper_size(e: &Engine, id: &str) -> u64 {
    tree_size(&e.snapshots.upper_dir(id))
}
