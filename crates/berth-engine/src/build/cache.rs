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

    /// The record for `key` whose layers are all still in the store. A hit is marked used now
    /// (the record's mtime: what `builder prune --filter until` and `--keep-storage` go by).
    pub fn get(&self, e: &Engine, key: &CacheKey) -> Option<CacheEntry> {
        let path = self.path(key);
        let bytes = std::fs::read(&path).ok()?;
        let entry: CacheEntry = serde_json::from_slice(&bytes).ok()?;
        let hit = entry.layers.iter().all(|l| l.present(e));
        if hit {
            // Best effort: a record whose time cannot be set is only pruned a little early.
            let _ = std::fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        }
        hit.then_some(entry)
    }

    pub fn put(&self, key: &CacheKey, entry: &CacheEntry) -> Result<()> {
        let path = self.path(key);
        let bytes = serde_json::to_vec(entry).expect("a cache record serializes");
        crate::record::write_atomic(&path, &bytes).map_err(|x| EngineError::io(path.display(), x))
    }

    fn entries(&self) -> Vec<CacheEntry> {
        self.records().into_iter().map(|r| r.entry).collect()
    }

    /// Every readable record with its path and when it was last used.
    fn records(&self) -> Vec<Record> {
        std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|d| {
                let path = d.path();
                let used = d.metadata().ok()?.modified().ok()?;
                let entry = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
                Some(Record { path, used, entry })
            })
            .collect()
    }

    /// `builder prune --filter until=… --keep-storage SIZE`: forgets the records and cache
    /// mounts last used before `until`, then the least recently used ones until what is left
    /// (the layers only the cache keeps, and the cache mounts) fits in `keep`. Returns the
    /// bytes of cache mounts removed (the caller collects the layers nothing keeps any more).
    pub fn prune(&self, e: &Engine, policy: &CachePrune) -> Result<u64> {
        let index = e.store.index()?;
        let used_by_images: HashSet<&Digest> =
            index.images.values().flat_map(|i| &i.layers).collect();
        let mut items: Vec<Item> = self
            .records()
            .into_iter()
            .map(|r| Item {
                used: r.used,
                path: r.path,
                layers: r
                    .entry
                    .layers
                    .into_iter()
                    .map(|l| l.chain_id)
                    .filter(|c| !used_by_images.contains(c))
                    .collect(),
                mount_size: 0,
            })
            .collect();
        for d in std::fs::read_dir(&self.mounts)
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(used) = d.metadata().and_then(|m| m.modified()) else {
                continue;
            };
            items.push(Item {
                used,
                mount_size: berth_image::staging::disk_usage(&d.path()),
                path: d.path(),
                layers: Vec::new(),
            });
        }
        items.sort_by_key(|i| i.used);
        // How many kept items hold each cache-only layer, and the bytes those layers take.
        let mut holders: std::collections::HashMap<&Digest, usize> = Default::default();
        for l in items.iter().flat_map(|i| &i.layers) {
            *holders.entry(l).or_default() += 1;
        }
        let size_of = |c: &Digest| e.store.layers.info(c).map(|i| i.size).unwrap_or(0);
        let mut kept: u64 = holders.keys().map(|c| size_of(c)).sum::<u64>()
            + items.iter().map(|i| i.mount_size).sum::<u64>();
        let mut freed = 0;
        for item in &items {
            let old = policy.until.is_some_and(|t| item.used < t);
            let over = policy.keep.is_some_and(|k| kept > k);
            if !(old || over || policy.is_all()) {
                continue;
            }
            remove_item(&item.path)?;
            freed += item.mount_size;
            kept = kept.saturating_sub(item.mount_size);
            for l in &item.layers {
                let n = holders.get_mut(l).expect("counted above");
                *n -= 1;
                if *n == 0 {
                    kept = kept.saturating_sub(size_of(l));
                }
            }
        }
        Ok(freed)
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

    /// One item per record, newest use last (`system df -v`, the API's `BuildCache`): the
    /// layer its step made (none for a step that changed no file) and whether an image shares it.
    pub fn items(&self, e: &Engine) -> Result<Vec<CacheItem>> {
        let index = e.store.index()?;
        let used: HashSet<&Digest> = index.images.values().flat_map(|i| &i.layers).collect();
        let mut items: Vec<CacheItem> = self
            .records()
            .into_iter()
            .map(|r| {
                let own = (!r.entry.empty).then(|| r.entry.layers.last()).flatten();
                CacheItem {
                    id: r
                        .path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    size: own
                        .and_then(|l| e.store.layers.info(&l.chain_id).ok())
                        .map_or(0, |i| i.size),
                    shared: own.is_some_and(|l| used.contains(&l.chain_id)),
                    created: r.entry.created,
                    last_used: r
                        .used
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs() as i64),
                }
            })
            .collect();
        items.sort_by_key(|i| i.last_used);
        Ok(items)
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

/// A cached step as `system df -v` and the API show it.
#[derive(Debug, Clone)]
pub struct CacheItem {
    /// The step's cache key (hex).
    pub id: String,
    /// Bytes of the layer the step made (0: it changed no file).
    pub size: u64,
    /// An image uses that layer too.
    pub shared: bool,
    /// When the step ran (RFC 3339).
    pub created: String,
    /// When a build last used it (seconds since the epoch).
    pub last_used: i64,
}

/// What `builder prune` removes: without a bound, everything.
#[derive(Debug, Clone, Default)]
pub struct CachePrune {
    /// Only what was last used before this time.
    pub until: Option<std::time::SystemTime>,
    /// Then the least recently used, until the cache holds at most this many bytes.
    pub keep: Option<u64>,
}

impl CachePrune {
    /// From `--filter` values (Docker's `until=`; other keys are refused by name) and
    /// `--keep-storage` (Docker's sizes: `512m`, `1g`, bytes).
    pub fn parse(filters: &[String], keep_storage: Option<&str>) -> Result<CachePrune> {
        let f = crate::filters::Filters::parse(filters, &["until"])?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let until = f
            .until(now)?
            .map(|t| std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64));
        let keep = keep_storage
            .map(|k| {
                berth_sys::units::parse_size(k)
                    .map(|n| n as u64)
                    .map_err(|e| EngineError::msg(format!("--keep-storage: {e}")))
            })
            .transpose()?;
        Ok(CachePrune { until, keep })
    }

    fn is_all(&self) -> bool {
        self.until.is_none() && self.keep.is_none()
    }
}

/// A record as found, with when it was last used.
struct Record {
    path: PathBuf,
    used: std::time::SystemTime,
    entry: CacheEntry,
}

/// A record or a cache mount, as `prune` weighs it.
struct Item {
    used: std::time::SystemTime,
    path: PathBuf,
    /// The cache-only layers a record holds (none for a mount).
    layers: Vec<Digest>,
    mount_size: u64,
}

fn remove_item(path: &std::path::Path) -> Result<()> {
    let removed = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match removed {
        Err(x) if x.kind() != std::io::ErrorKind::NotFound => {
            Err(EngineError::io(path.display(), x))
        }
        _ => Ok(()),
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
