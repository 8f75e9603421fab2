//! Docker's `image inspect` document for a stored image, typed: what `inspect` prints and what the
//! API serves. The image's own `config` object passes through as the image wrote it.

use crate::container::Engine;
use crate::error::{EngineError, Result};
use berth_image::images::ImageRecord;
use berth_image::manifest::MAX_MANIFEST_BYTES;
use berth_image::pull::MAX_CONFIG_BYTES;
use berth_image::store::StoreError;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    pub created: String,
    pub docker_version: Value,
    pub author: String,
    pub config: Value,
    pub architecture: String,
    pub variant: Option<String>,
    pub os: String,
    pub size: u64,
    pub graph_driver: GraphDriver,
    #[serde(rename = "RootFS")]
    pub root_fs: RootFs,
    pub metadata: Metadata,
    pub descriptor: Descriptor,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    pub name: String,
    pub data: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFs {
    #[serde(rename = "Type")]
    pub kind: String,
    pub layers: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Metadata {
    pub last_tag_time: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: usize,
}

impl Engine {
    /// The inspect document of a stored image.
    pub fn inspect_image(&self, img: &ImageRecord) -> Result<ImageInspect> {
        let config = self.image_config(img)?;
        let bytes = self
            .store
            .content
            .read(&img.id, MAX_CONFIG_BYTES)
            .map_err(StoreError::from)?;
        let raw: Value = berth_image::gojson::from_slice(&bytes)
            .map_err(|e| EngineError::msg(format!("image {}: config: {e}", img.id)))?;
        let lowers: Vec<String> = img
            .layers
            .iter()
            .rev()
            .map(|c| self.store.layers.diff_dir(c).display().to_string())
            .collect();
        let manifest_size = self
            .store
            .content
            .read(&img.manifest, MAX_MANIFEST_BYTES)
            .map(|b| b.len())
            .unwrap_or(0);
        let mut data = serde_json::Map::new();
        data.insert("LowerDir".into(), Value::String(lowers.join(":")));
        Ok(ImageInspect {
            id: img.id.to_string(),
            repo_tags: img.repo_tags.iter().map(|t| super::familiar(t)).collect(),
            repo_digests: img
                .repo_digests
                .iter()
                .map(|t| super::familiar(t))
                .collect(),
            parent: String::new(),
            comment: config
                .history
                .last()
                .and_then(|h| h.comment.clone())
                .unwrap_or_default(),
            created: img.created.clone().unwrap_or_default(),
            docker_version: raw
                .get("docker_version")
                .cloned()
                .unwrap_or(Value::from("")),
            author: config.author.clone().unwrap_or_default(),
            config: raw.get("config").cloned().unwrap_or(Value::Null),
            architecture: config.architecture,
            variant: config.variant,
            os: config.os,
            size: img.size,
            graph_driver: GraphDriver {
                name: "overlay2".into(),
                data,
            },
            root_fs: RootFs {
                kind: "layers".into(),
                layers: config
                    .rootfs
                    .diff_ids
                    .iter()
                    .map(|d| d.to_string())
                    .collect(),
            },
            metadata: Metadata {
                last_tag_time: img.added.clone(),
            },
            descriptor: Descriptor {
                media_type: img.manifest_media_type.clone(),
                digest: img.manifest.to_string(),
                size: manifest_size,
            },
        })
    }
}
