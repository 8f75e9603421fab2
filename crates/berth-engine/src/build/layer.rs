//! A step's writable layer becomes an image layer: its upper directory written as a gzip tar
//! blob (overlayfs whiteouts and opaque directories as the image spec's `.wh.` files, through
//! `tree::tar`, as `commit` does) and then moved, not copied, into the layer store under its
//! chain ID. An upper that holds nothing makes no layer (the step is an empty layer, as BuildKit
//! records it).

use crate::container::Engine;
use crate::error::{EngineError, Result};
use berth_image::archive::LocalLayer;
use berth_image::digest::{Algorithm, Digest, HashingWriter};
use berth_image::manifest;
use berth_image::tree::diff::open_store_dir;
use berth_image::tree::tar::TreeWriter;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One layer of a stage's root filesystem: in the layer store (`chain_id`) and the content
/// store (`blob`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LayerRef {
    pub diff_id: Digest,
    pub chain_id: Digest,
    pub blob: Digest,
    pub media_type: String,
    pub size: u64,
}

impl LayerRef {
    pub fn local(&self) -> LocalLayer {
        LocalLayer {
            blob: self.blob.clone(),
            media_type: self.media_type.clone(),
            size: self.size,
            diff_id: self.diff_id.clone(),
        }
    }

    /// Both halves are still in the store (a `builder prune` or a crash may have taken them).
    pub fn present(&self, e: &Engine) -> bool {
        e.store.layers.has(&self.chain_id) && e.store.content.has(&self.blob)
    }
}

/// The chain IDs of a stack of layers, bottom first.
pub(crate) fn chain(layers: &[LayerRef]) -> Vec<Digest> {
    layers.iter().map(|l| l.chain_id.clone()).collect()
}

/// The chain ID of `diff_id` over `parent` (the image spec's rule).
fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::of_bytes(format!("{p} {diff_id}").as_bytes()),
    }
}

/// Whether a directory has no entries.
fn is_empty_dir(p: &Path) -> Result<bool> {
    let mut rd = std::fs::read_dir(p).map_err(|x| EngineError::io(p.display(), x))?;
    Ok(rd.next().is_none())
}

/// Commits `upper` as the layer over `parent`; None when it changed nothing. `upper` is gone
/// afterwards either way (moved into the store, or left for the caller's snapshot removal).
pub(crate) fn commit_upper(
    e: &Engine,
    upper: &Path,
    parent: Option<&LayerRef>,
) -> Result<Option<LayerRef>> {
    if is_empty_dir(upper)? {
        return Ok(None);
    }
    let (blob, size, diff_id) = write_blob(e, upper)?;
    let parent_chain = parent.map(|p| &p.chain_id);
    let chain_id = chain_id(parent_chain, &diff_id);
    e.store
        .layers
        .adopt(upper, &diff_id, &chain_id, parent_chain)
        .map_err(berth_image::store::StoreError::from)?;
    Ok(Some(LayerRef {
        diff_id,
        chain_id,
        blob,
        media_type: manifest::OCI_LAYER_GZIP.into(),
        size,
    }))
}

/// The tree at `upper` as a gzip tar blob: (blob digest, blob size, diff_id).
fn write_blob(e: &Engine, upper: &Path) -> Result<(Digest, u64, Digest)> {
    let what = |x: std::io::Error| EngineError::io(format!("layer of {}", upper.display()), x);
    let dir = open_store_dir(upper).map_err(what)?;
    let mut blob = e.store.content.writer(Algorithm::Sha256)?;
    let gz = flate2::write::GzEncoder::new(&mut blob, flate2::Compression::fast());
    let plain = HashingWriter::new(gz, Algorithm::Sha256);
    let mut w = TreeWriter::new(plain, true);
    w.add_contents(&dir, Path::new("")).map_err(what)?;
    let (diff_id, _, gz) = w.finish().map_err(what)?.finish();
    gz.finish().map_err(what)?;
    let size = blob.written();
    let digest = blob.commit(None, Some(size))?;
    Ok((digest, size, diff_id))
}
