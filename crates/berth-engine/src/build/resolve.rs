//! Base images and `COPY --from=IMAGE` images: found in the store or pulled (always with
//! `--pull`), then read as a build starts from them: their layers (blobs and chain IDs), their
//! history, their runtime config in berth-build's type.

use super::layer::LayerRef;
use super::{BuildEvent, BuildProgress};
use crate::container::Engine;
use crate::error::{EngineError, Result};
use berth_build::plan::{ImageConfig, ImageResolver, Platform, ResolvedImage};
use berth_image::images::ImageRecord;
use berth_image::manifest::{History, Manifest, MAX_MANIFEST_BYTES};
use berth_image::pull::MAX_CONFIG_BYTES;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// An image a build starts from, read once.
#[derive(Debug, Clone)]
pub(crate) struct BaseImage {
    pub record: ImageRecord,
    pub layers: Vec<LayerRef>,
    pub history: Vec<History>,
    pub config: ImageConfig,
    pub created: Option<String>,
}

/// Finds (or pulls) images by reference, remembering each.
pub(crate) struct Resolver<'a> {
    pub engine: &'a Engine,
    pub pull: bool,
    pub progress: &'a dyn BuildProgress,
    pub ids: &'a AtomicUsize,
    pub images: Mutex<BTreeMap<String, BaseImage>>,
}

impl Resolver<'_> {
    /// The image `reference` names, for `platform`.
    pub fn image(&self, reference: &str, platform: &Platform) -> Result<BaseImage> {
        if let Some(i) = self.images.lock().expect("images lock").get(reference) {
            return Ok(i.clone());
        }
        let local = self.engine.store.find(reference).ok();
        let record = match local.filter(|_| !self.pull) {
            Some(r) => r,
            None => {
                let id = self.ids.fetch_add(1, Ordering::Relaxed);
                let name = format!("[internal] load metadata for {reference}");
                self.progress.event(BuildEvent::Started { id, name: &name });
                let pulled = self.engine.pull(
                    reference,
                    Some(&platform.to_string()),
                    &berth_image::pull::Quiet,
                );
                match &pulled {
                    Ok(_) => self.progress.event(BuildEvent::Done { id }),
                    Err(e) => self.progress.event(BuildEvent::Failed {
                        id,
                        error: &e.to_string(),
                    }),
                }
                pulled?.record
            }
        };
        let base = read_image(self.engine, record)?;
        self.images
            .lock()
            .expect("images lock")
            .insert(reference.to_string(), base.clone());
        Ok(base)
    }
}

impl ImageResolver for &Resolver<'_> {
    fn resolve(
        &mut self,
        reference: &str,
        platform: &Platform,
    ) -> std::result::Result<ResolvedImage, String> {
        let img = self.image(reference, platform).map_err(|e| e.to_string())?;
        Ok(ResolvedImage {
            id: img.record.id.to_string(),
            config: img.config,
        })
    }
}

/// An image of the store as a build sees it.
pub(crate) fn read_image(e: &Engine, record: ImageRecord) -> Result<BaseImage> {
    let bad = |what: &str, x: &dyn std::fmt::Display| {
        EngineError::msg(format!("image {}: {what}: {x}", record.id))
    };
    let config_bytes = e.store.content.read(&record.id, MAX_CONFIG_BYTES)?;
    let parsed =
        berth_image::manifest::ImageConfig::parse(&config_bytes).map_err(|x| bad("config", &x))?;
    let raw: serde_json::Value =
        serde_json::from_slice(&config_bytes).map_err(|x| bad("config", &x))?;
    let config: ImageConfig = match raw.get("config") {
        Some(c) if !c.is_null() => {
            serde_json::from_value(c.clone()).map_err(|x| bad("config", &x))?
        }
        _ => ImageConfig::default(),
    };
    let manifest: Manifest =
        serde_json::from_slice(&e.store.content.read(&record.manifest, MAX_MANIFEST_BYTES)?)
            .map_err(|x| bad("manifest", &x))?;
    let diff_ids = &parsed.rootfs.diff_ids;
    if diff_ids.len() != manifest.layers.len() || record.layers.len() != diff_ids.len() {
        return Err(bad(
            "layers",
            &format!(
                "{} diff_ids for {} layers",
                diff_ids.len(),
                manifest.layers.len()
            ),
        ));
    }
    let layers = manifest
        .layers
        .iter()
        .zip(diff_ids)
        .zip(&record.layers)
        .map(|((l, diff_id), chain_id)| LayerRef {
            diff_id: diff_id.clone(),
            chain_id: chain_id.clone(),
            blob: l.digest.clone(),
            media_type: l.media_type.clone(),
            size: l.size,
        })
        .collect();
    Ok(BaseImage {
        layers,
        history: parsed.history.clone(),
        config,
        created: parsed.created.clone(),
        record,
    })
}
