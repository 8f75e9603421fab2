//! The build cache: for each step key (berth-build's chain of key texts and content digests) the
//! layers of the root filesystem after that step, whether the step made a layer, and when it
//! ran. A record is written (atomically) only once its layer and blob are in the store, so a
//! killed build never leaves a record naming half a layer; a record whose layer has gone since is
//! a miss. Its layers and blobs are kept by `collect_garbage` until `builder prune`.

use super::layer::LayerRef;
use crate::container::Engine;
use crate::error::{EngineError, Result};
use berth_build::plan::CacheKey;
use berth_image::digest::Digest;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::PathBuf;

/// What a cached step left.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CacheEntry {
    /// The stage's layers after the step, bottom first.
    pub layers: Vec<LayerRef>,
    /// The step changed no file (its history entry is an empty layer).
    pub empty: bool,
    /// When the step ran (its history entry's time, kept so a cached rebuild is the same image).
    pub created: String,
}

/// What the cache holds, for `system df`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheUsage {
    pub records: usize,
    /// Layers only the cache keeps (no image uses them), and their apparent size.
    pub layers: usize,
    pub size: u64,
    /// Bytes in `RUN --mount=type=cache` directories.
    pub mounts_size: u64,
}

pub(crate) struct Cache {
    dir: PathBuf,
    mounts: PathBuf,
}

/// `<root>/build`: the cache's records and cache mounts.
pub(crate) fn build_dir(e: &Engine) -> PathBuf {
    e.root.join("build")
}

impl Cache {
    pub fn open(e: &Engine) -> Result<Cache> {
        let dir = build_dir(e).join("cache");
        let mounts = build_dir(e).join("mounts");
        for d in [&dir, &mounts] {
            std::fs::create_dir_all(d).map_err(|x| EngineError::io(d.display(), x))?;
        }
        Ok(Cache { dir, mounts })
    }

    /// Where `RUN --mount=type=cache` directories live.
    pub fn mounts_dir(&self) -> &std::path::Path {
        &self.mounts
    }

    fn path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(key.hex())
    }

    /// The record for `key` whose layers are all still in the store.
    pub fn get(&self, e: &Engine, key: &CacheKey) -> Option<CacheEntry> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        let entry: CacheEntry = serde_json::from_slice(&bytes).ok()?;
        entry.layers.iter().all(|l| l.present(e)).then_some(entry)
    }

    pub fn put(&self, key: &CacheKey, entry: &CacheEntry) -> Result<()> {
        let path = self.path(key);
        let bytes = serde_json::to_vec(entry).expect("a cache record serializes");
        crate::record::write_atomic(&path, &bytes).map_err(|x| EngineError::io(path.display(), x))
    }

    fn entries(&self) -> Vec<CacheEntry> {
        std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|d| std::fs::read(d.path()).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect()
    }

    /// Forgets every record and cache mount; returns the bytes of cache mounts removed.
    pub fn clear(&self) -> Result<u64> {
        let freed = berth_image::staging::disk_usage(&self.mounts);
        for d in [&self.dir, &self.mounts] {
            std::fs::remove_dir_all(d).map_err(|x| EngineError::io(d.display(), x))?;
            std::fs::create_dir_all(d).map_err(|x| EngineError::io(d.display(), x))?;
        }
        Ok(freed)
    }

    pub fn usage(&self, e: &Engine) -> Result<CacheUsage> {
        let index = e.store.index()?;
        let used: HashSet<&Digest> = index.images.values().flat_map(|i| &i.layers).collect();
        let mut only_cache: HashSet<Digest> = HashSet::new();
        let mut records = 0;
        for entry in self.entries() {
            records += 1;
            only_cache.extend(
                entry
                    .layers
                    .iter()
                    .map(|l| l.chain_id.clone())
                    .filter(|c| !used.contains(c)),
            );
        }
        let size = only_cache
            .iter()
            .filter_map(|c| e.store.layers.info(c).ok())
            .map(|i| i.size)
            .sum();
        Ok(CacheUsage {
            records,
            layers: only_cache.len(),
            size,
            mounts_size: berth_image::staging::disk_usage(&self.mounts),
        })
    }
}

/// The layers (chain IDs) and blobs the cache keeps alive through a garbage collection.
pub(crate) fn gc_roots(e: &Engine) -> (HashSet<Digest>, HashSet<Digest>) {
    let mut layers = HashSet::new();
    let mut blobs = HashSet::new();
    if let Ok(c) = Cache::open(e) {
        for entry in c.entries() {
            for l in entry.layers {
                layers.insert(l.chain_id);
                blobs.insert(l.blob);
            }
        }
    }
    (layers, blobs)
}
