//! `system df`'s figures, as Docker's daemon reports them: each image's size and the part of it
//! shared with other images, how many containers stand on it; each container's writable layer
//! and volume count; each volume's size and users; the build cache. Reads; changes nothing.

use crate::build::CacheUsage;
use crate::container::Engine;
use crate::error::Result;
use crate::record::Record;
use berth_image::digest::Digest;
use std::collections::HashMap;

/// One image's share of the disk.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageUsage {
    pub id: Digest,
    /// Stored names (`docker.io/library/busybox:latest`).
    pub repo_tags: Vec<String>,
    pub created: Option<String>,
    /// Its layers' bytes.
    pub size: u64,
    /// The bytes of its layers that other images use too.
    pub shared_size: u64,
    /// Containers made from it.
    pub containers: usize,
}

/// One container's writable layer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContainerUsage {
    pub record: Record,
    pub size_rw: u64,
    pub volumes: usize,
}

/// One volume's size and users.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VolumeUsage {
    pub name: String,
    pub links: usize,
    pub size: u64,
}

/// Everything `system df` counts.
#[derive(Debug, Clone)]
pub struct SystemUsage {
    /// Every unpacked layer once (Docker's `LayersSize`).
    pub layers_size: u64,
    pub images: Vec<ImageUsage>,
    pub containers: Vec<ContainerUsage>,
    pub volumes: Vec<VolumeUsage>,
    pub build_cache: CacheUsage,
    /// The build cache's steps, least recently used first.
    pub build_cache_items: Vec<crate::build::CacheItem>,
}

impl SystemUsage {
    /// The build cache's bytes: its layers and its cache mounts. Without a record there is no
    /// cache (`builder prune` empties both), only the mounts' empty directory.
    pub fn build_cache_size(&self) -> u64 {
        let c = &self.build_cache;
        if c.records == 0 {
            c.size
        } else {
            c.size + c.mounts_size
        }
    }
}

impl Engine {
    /// What images, containers, volumes and the build cache take.
    pub fn system_usage(&self) -> Result<SystemUsage> {
        let records = self.list();
        Ok(SystemUsage {
            layers_size: self.store.layers.list().iter().map(|l| l.size).sum(),
            images: self.image_usage(&records)?,
            volumes: self.volume_usage(&records),
            containers: records
                .into_iter()
                .map(|r| ContainerUsage {
                    size_rw: crate::changes::upper_size(self, &r.id),
                    volumes: r.mounts.iter().filter(|m| m.kind == "volume").count(),
                    record: r,
                })
                .collect(),
            build_cache: self.build_cache_usage()?,
            build_cache_items: self.build_cache_items()?,
        })
    }

    fn image_usage(&self, records: &[Record]) -> Result<Vec<ImageUsage>> {
        let index = self.store.index()?;
        let sizes: HashMap<Digest, u64> = self
            .store
            .layers
            .list()
            .into_iter()
            .map(|l| (l.chain_id, l.size))
            .collect();
        let mut users_of_layer: HashMap<&Digest, usize> = HashMap::new();
        for img in index.images.values() {
            for l in &img.layers {
                *users_of_layer.entry(l).or_default() += 1;
            }
        }
        let mut out: Vec<ImageUsage> = index
            .images
            .values()
            .map(|img| {
                let layer_size = |l: &Digest| sizes.get(l).copied().unwrap_or(0);
                ImageUsage {
                    id: img.id.clone(),
                    repo_tags: img.repo_tags.clone(),
                    created: img.created.clone(),
                    size: img.layers.iter().map(layer_size).sum(),
                    shared_size: img
                        .layers
                        .iter()
                        .filter(|l| users_of_layer.get(l).copied().unwrap_or(0) > 1)
                        .map(layer_size)
                        .sum(),
                    containers: records
                        .iter()
                        .filter(|r| r.image_id == img.id.to_string())
                        .count(),
                }
            })
            .collect();
        out.sort_by(|x, y| y.created.cmp(&x.created));
        Ok(out)
    }

    fn volume_usage(&self, records: &[Record]) -> Vec<VolumeUsage> {
        crate::volume::list(self)
            .into_iter()
            .map(|v| VolumeUsage {
                links: records
                    .iter()
                    .filter(|r| {
                        r.mounts
                            .iter()
                            .any(|m| m.kind == "volume" && m.name.as_deref() == Some(&v.name))
                    })
                    .count(),
                size: v.size(),
                name: v.name,
            })
            .collect()
    }
}
