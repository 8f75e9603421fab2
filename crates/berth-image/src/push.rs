//! `push`: an image's blobs (layers, config) uploaded unless the registry has them, then its
//! manifest under the tag. Exactly the bytes in the content store go out, so digests are kept.

use crate::digest::Digest;
use crate::images::ImageRecord;
use crate::manifest::{Manifest, MAX_MANIFEST_BYTES};
use crate::pull::{client_for, Progress, PullError};
use crate::reference::Reference;
use crate::store::Store;

/// Pushes `image` as `target`; returns the manifest digest the registry now serves for it.
pub fn push(
    store: &Store,
    image: &ImageRecord,
    target: &Reference,
    insecure: &[String],
    progress: &dyn Progress,
) -> Result<Digest, PullError> {
    push_as(store, image, target, insecure, progress, None)
}

/// `push` with the caller's credentials (the API's `X-Registry-Auth`); None looks them up in
/// Docker's config file.
pub fn push_as(
    store: &Store,
    image: &ImageRecord,
    target: &Reference,
    insecure: &[String],
    progress: &dyn Progress,
    credentials: Option<crate::registry::auth::Credentials>,
) -> Result<Digest, PullError> {
    let client = match credentials {
        Some(c) => crate::registry::Client::new(target.api_host(), insecure, Some(c)),
        None => client_for(target, insecure),
    };
    let repo = target.repository.as_str();
    let manifest_bytes = store.content.read(&image.manifest, MAX_MANIFEST_BYTES)?;
    let manifest: Manifest =
        crate::gojson::from_slice(&manifest_bytes).map_err(|e| PullError::Manifest {
            digest: image.manifest.clone(),
            message: e.to_string(),
        })?;
    let mut blobs: Vec<&Digest> = manifest.layers.iter().map(|l| &l.digest).collect();
    blobs.push(&manifest.config.digest);
    for d in blobs {
        if client.blob_exists(repo, d, true)? {
            progress.finish(d, "Layer already exists");
            continue;
        }
        progress.start(d, store.content.size(d)?);
        // Layers are read whole: pushes are rarer than pulls and a monolithic PUT is the one
        // upload every registry accepts.
        let data = std::fs::read(store.content.path(d)).map_err(|e| PullError::Manifest {
            digest: d.clone(),
            message: e.to_string(),
        })?;
        client.push_blob(repo, d, &data)?;
        progress.advance(d, data.len() as u64);
        progress.finish(d, "Pushed");
    }
    let media_type = manifest
        .media_type
        .clone()
        .unwrap_or_else(|| image.manifest_media_type.clone());
    client.put_manifest(repo, &target.manifest_ref(), &media_type, &manifest_bytes)?;
    Ok(image.manifest.clone())
}
