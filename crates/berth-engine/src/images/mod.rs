//! Images as users see them, over the image crate's store: listing and naming them, removing and
//! pruning them (never one a container stands on), their history and inspect documents, disk
//! usage, and moving them (pull, push, load, save, import, login). Every front end (the CLI, the
//! API socket) calls these; the results are typed rows, never printed here.

mod inspect;
mod list;
mod login;
mod remove;
mod summary;
mod transfer;

pub use inspect::ImageInspect;
pub use list::IMAGE_FILTERS;
pub use login::{registry_host, Login, DEFAULT_SERVER};
pub use remove::PRUNE_FILTERS;
pub use summary::ImageSummary;
pub use transfer::{PullPolicy, PullReport, PushReport};

use crate::container::Engine;
use crate::error::{EngineError, Result};
use berth_image::digest::Digest;
use berth_image::images::ImageRecord;
use berth_image::manifest::{ImageConfig, Platform};
use berth_image::pull::MAX_CONFIG_BYTES;
use berth_image::reference::Reference;
use berth_image::store::StoreError;
use std::collections::HashSet;

/// One row of `images`: an image under one of its names (`<none>` when it has none).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageRow {
    pub repository: String,
    pub tag: String,
    /// The repo digest for this repository, `<none>` when the image has none.
    pub digest: String,
    pub id: Digest,
    pub created: Option<String>,
    pub size: u64,
}

/// One step of an image's history, newest first.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryRow {
    /// The image's ID on the newest step, None on the others (Docker's `<missing>`).
    pub id: Option<Digest>,
    pub created: Option<String>,
    pub created_by: String,
    pub size: u64,
    pub comment: String,
}

/// What removing an image did, line by line (Docker's `ImageDeleteResponseItem`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Removed {
    Untagged(String),
    Deleted(String),
}

/// Disk used by images and their layers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DiskUsage {
    pub images: usize,
    /// Unpacked layers: (chain ID, size, images using it).
    pub layers: Vec<(Digest, u64, usize)>,
    /// Bytes of all unpacked layers, each counted once.
    pub on_disk: u64,
    /// Bytes the images would take with nothing shared.
    pub sum_of_images: u64,
    /// Compressed blobs kept for push and save.
    pub blobs: u64,
}

/// A name as users write it: `busybox:latest` for `docker.io/library/busybox:latest`.
pub fn familiar(full: &str) -> String {
    match Reference::parse(full) {
        Ok(r) => r.familiar(),
        Err(_) => full.to_string(),
    }
}

impl Engine {
    /// An image by name, ID or ID prefix.
    pub fn image(&self, name: &str) -> Result<ImageRecord> {
        Ok(self.store.find(name)?)
    }

    /// The parsed config of a stored image.
    pub fn image_config(&self, img: &ImageRecord) -> Result<ImageConfig> {
        let bytes = self
            .store
            .content
            .read(&img.id, MAX_CONFIG_BYTES)
            .map_err(StoreError::from)?;
        ImageConfig::parse(&bytes)
            .map_err(|e| EngineError::msg(format!("image {}: config: {e}", img.id)))
    }

    /// An image by name that must be of `platform` (`--platform` of `save`, `history`, `rmi`
    /// and `push`): berth keeps one platform per image, so asking for another is Docker's "was
    /// found but does not match" rather than a silent use of what is there.
    pub fn image_on_platform(&self, name: &str, platform: Option<&str>) -> Result<ImageRecord> {
        let img = self.image(name)?;
        if let Some(want) = platform {
            let want = transfer::platform(Some(want))?;
            let have = self.image_platform(&img)?;
            if !want.matches(&have) {
                return Err(EngineError::msg(format!(
                    "image with reference {name} was found but does not match the specified platform: wanted {want}, actual: {have}"
                )));
            }
        }
        Ok(img)
    }

    /// The os/architecture[/variant] an image's config declares.
    pub fn image_platform(&self, img: &ImageRecord) -> Result<Platform> {
        let config = self.image_config(img)?;
        Ok(Platform {
            architecture: config.architecture,
            os: config.os,
            variant: config.variant,
            os_version: None,
        })
    }

    /// `tag SOURCE TARGET`.
    pub fn tag_image(&self, source: &str, target: &str) -> Result<()> {
        let img = self.image(source)?;
        let target_ref = Reference::parse(target).map_err(|e| EngineError::msg(e.to_string()))?;
        if target_ref.digest.is_some() {
            return Err(EngineError::msg(format!(
                "refusing to create a tag with a digest reference: {target}"
            )));
        }
        self.store.update_index(|idx| {
            idx.tag(&img.id, &target_ref.to_string());
            Ok(())
        })?;
        self.emit(
            crate::events::Event::image("tag", &img.id.to_string()).attr("name", familiar(target)),
        );
        Ok(())
    }

    /// The image's steps, newest first.
    pub fn image_history(&self, name: &str) -> Result<Vec<HistoryRow>> {
        let img = self.image(name)?;
        let config = self.image_config(&img)?;
        let mut layer_sizes = img
            .layers
            .iter()
            .rev()
            .map(|c| self.store.layers.info(c).map(|i| i.size).unwrap_or(0));
        Ok(config
            .history
            .iter()
            .rev()
            .enumerate()
            .map(|(i, h)| HistoryRow {
                id: (i == 0).then(|| img.id.clone()),
                created: h.created.clone(),
                created_by: h.created_by.clone().unwrap_or_default(),
                size: if h.empty_layer {
                    0
                } else {
                    layer_sizes.next().unwrap_or(0)
                },
                comment: h.comment.clone().unwrap_or_default(),
            })
            .collect())
    }

    /// The images containers were made from: (image ID, container short ID, running?).
    pub(crate) fn image_users(&self) -> Vec<(String, String, bool)> {
        self.records
            .list()
            .into_iter()
            .map(|r| (r.image_id.clone(), r.id[..12].to_string(), r.is_active()))
            .collect()
    }

    /// Removes layers and blobs nothing needs (images, containers' snapshots); returns the bytes
    /// freed, staging of dead processes included.
    pub fn collect_garbage(&self) -> Result<u64> {
        let mut live: HashSet<Digest> = self.snapshots.live_layers().into_iter().collect();
        let (cached, blobs) = crate::build::gc_roots(self);
        live.extend(cached);
        Ok(self.store.gc_keeping(&live, &blobs)?)
    }

    /// What images and layers take on disk.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let index = self.store.index()?;
        let layers = self.store.layers.list();
        let blobs = self
            .store
            .content
            .list()
            .map_err(StoreError::from)?
            .iter()
            .map(|(_, s)| s)
            .sum();
        Ok(DiskUsage {
            images: index.images.len(),
            on_disk: layers.iter().map(|l| l.size).sum(),
            sum_of_images: index.images.values().map(|i| i.size).sum(),
            layers: layers
                .iter()
                .map(|l| {
                    let users = index
                        .images
                        .values()
                        .filter(|i| i.layers.contains(&l.chain_id))
                        .count();
                    (l.chain_id.clone(), l.size, users)
                })
                .collect(),
            blobs,
        })
    }
}
