//! Docker's image list entry (`image.Summary`): one per image (not per tag), with its names,
//! digests, size, labels and how many containers use it. What the API's `/images/json` and
//! `system df` serve.

use crate::container::Engine;
use crate::error::Result;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    pub id: String,
    pub parent_id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub created: i64,
    pub size: u64,
    pub shared_size: i64,
    pub virtual_size: u64,
    pub labels: BTreeMap<String, String>,
    pub containers: i64,
}

impl Engine {
    /// Every image, newest first.
    pub fn image_summaries(&self) -> Result<Vec<ImageSummary>> {
        self.image_summaries_filtered(&crate::filters::Filters::default())
    }

    /// The images `filters` keep (`images --filter`'s, parsed with `IMAGE_FILTERS`: the same
    /// rules as the CLI's list; `reference` keeps an image when any of its names matches),
    /// newest first.
    pub fn image_summaries_filtered(
        &self,
        filters: &crate::filters::Filters,
    ) -> Result<Vec<ImageSummary>> {
        let index = self.store.index()?;
        let q = self.image_query(filters)?;
        let records = self.records.list();
        let mut imgs: Vec<_> = index.images.values().collect();
        imgs.sort_by(|x, y| y.created.cmp(&x.created).then(y.added.cmp(&x.added)));
        let references = filters.values("reference");
        let mut kept = Vec::new();
        for img in imgs {
            if !self.image_passes(&q, img)? {
                continue;
            }
            if !references.is_empty() && !any_name_matches(references, &img.repo_tags)? {
                continue;
            }
            kept.push(img);
        }
        Ok(kept
            .into_iter()
            .map(|img| {
                let labels = self
                    .image_config(img)
                    .ok()
                    .and_then(|c| c.config.and_then(|r| r.labels))
                    .unwrap_or_default();
                let id = img.id.to_string();
                ImageSummary {
                    containers: records.iter().filter(|r| r.image_id == id).count() as i64,
                    id,
                    parent_id: String::new(),
                    repo_tags: img.repo_tags.iter().map(|t| super::familiar(t)).collect(),
                    repo_digests: img
                        .repo_digests
                        .iter()
                        .map(|d| super::familiar(d))
                        .collect(),
                    created: img
                        .created
                        .as_deref()
                        .and_then(berth_sys::time::parse_rfc3339)
                        .unwrap_or(0),
                    size: img.size,
                    shared_size: -1,
                    virtual_size: img.size,
                    labels,
                }
            })
            .collect())
    }
}

/// Whether any of an image's names matches a `reference` pattern (the first that does ends it).
fn any_name_matches(patterns: &[String], names: &[String]) -> Result<bool> {
    for n in names {
        if super::list::reference_matches(patterns, n)? {
            return Ok(true);
        }
    }
    Ok(false)
}
