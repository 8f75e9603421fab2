//! A step's scratch: a directory under `<runroot>/build/<key>` (the RUN bundle, secrets, mount
//! points) and the snapshots it prepared, named `build-PID.START-N` after the process that owns
//! them. Dropped, it removes both; what a killed build left is removed by the next build (or
//! `builder prune`) once its owner is dead: the runtime container of that name, then its
//! snapshots and its directory.

use crate::container::Engine;
use crate::error::{EngineError, Result};
use berth_image::digest::Digest;
use berth_image::snapshot::Mount;
use berth_sys::process::Owner;
use std::path::PathBuf;

const PREFIX: &str = "build";

pub(crate) struct Work<'a> {
    e: &'a Engine,
    /// The step's name: its directory, its runtime container's ID, its snapshots' prefix.
    pub key: String,
    pub dir: PathBuf,
    snapshots: Vec<String>,
}

fn build_runroot(e: &Engine) -> PathBuf {
    e.runroot.join("build")
}

impl<'a> Work<'a> {
    pub fn new(e: &'a Engine) -> Result<Work<'a>> {
        let key = berth_image::staging::name(PREFIX);
        let dir = build_runroot(e).join(&key);
        std::fs::create_dir_all(&dir).map_err(|x| EngineError::io(dir.display(), x))?;
        Ok(Work {
            e,
            key,
            dir,
            snapshots: Vec::new(),
        })
    }

    /// A snapshot over `chain` named after this step and `suffix` (empty: the step's root).
    pub fn snapshot(&mut self, suffix: &str, chain: &[Digest]) -> Result<(String, Mount)> {
        let key = if suffix.is_empty() {
            self.key.clone()
        } else {
            format!("{}-{suffix}", self.key)
        };
        let m = self.e.snapshots.prepare(&key, chain)?;
        self.snapshots.push(key.clone());
        Ok((key, m))
    }

    pub fn upper(&self) -> PathBuf {
        self.e.snapshots.upper_dir(&self.key)
    }
}

impl Drop for Work<'_> {
    fn drop(&mut self) {
        for s in &self.snapshots {
            let _ = self.e.snapshots.remove(s);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The owner a step's name carries.
fn owner(name: &str) -> Option<Owner> {
    Owner::from_tag(name.strip_prefix(PREFIX)?.strip_prefix('-')?)
}

/// Removes what builds whose process died left: runtime containers, bundles, snapshots.
pub(crate) fn reclaim_dead(e: &Engine) {
    let dead = |name: &str| owner(name).is_some_and(|o| !o.alive());
    for d in std::fs::read_dir(build_runroot(e))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = d.file_name().to_string_lossy().into_owned();
        if !dead(&name) {
            continue;
        }
        let _ = berth_runtime::ops::delete(&e.runtime_root, &name, true);
        for m in ["rootfs", "src"] {
            crate::launch::unmount(&d.path().join(m));
        }
        let _ = std::fs::remove_dir_all(d.path());
    }
    for d in std::fs::read_dir(e.root.join("snapshots"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = d.file_name().to_string_lossy().into_owned();
        if dead(&name) {
            let _ = e.snapshots.remove(&name);
        }
    }
}
