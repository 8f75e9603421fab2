//! `push`: an image's blobs (layers, config) sent unless the registry has them — a HEAD first,
//! then a cross-repository mount from another repository of the same registry that holds the
//! image — then its manifest under the tag. Exactly the bytes in the content store go out, so
//! digests are kept.

use crate::digest::Digest;
use crate::images::ImageRecord;
use crate::manifest::{Manifest, MAX_MANIFEST_BYTES};
use crate::pull::{client_for, Progress, PullError};
use crate::reference::Reference;
use crate::registry::Client;
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
    let sources = mount_sources(image, target);
    for l in &manifest.layers {
        progress.status(&l.digest, "Preparing");
    }
    let upload = Upload {
        store,
        client: &client,
        repo,
        sources: &sources,
        progress,
    };
    for l in &manifest.layers {
        upload.blob(&l.digest, true)?;
    }
    // The config is a blob like the others, but Docker's progress never shows it.
    upload.blob(&manifest.config.digest, false)?;
    let media_type = manifest
        .media_type
        .clone()
        .unwrap_or_else(|| image.manifest_media_type.clone());
    client.put_manifest(repo, &target.manifest_ref(), &media_type, &manifest_bytes)?;
    Ok(image.manifest.clone())
}

/// Other repositories of the target's registry that hold this image (it was pulled from them,
/// pushed to them or tagged for them): the registry can link its blobs from there.
fn mount_sources(image: &ImageRecord, target: &Reference) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in image.repo_tags.iter().chain(image.repo_digests.iter()) {
        let Ok(r) = Reference::parse(name) else {
            continue;
        };
        if r.registry == target.registry
            && r.repository != target.repository
            && !out.contains(&r.repository)
        {
            out.push(r.repository);
        }
    }
    out
}

/// Where a push's blobs go.
struct Upload<'a> {
    store: &'a Store,
    client: &'a Client,
    repo: &'a str,
    sources: &'a [String],
    progress: &'a dyn Progress,
}

impl Upload<'_> {
    /// Makes sure the registry has the blob: already there, mounted, or uploaded.
    fn blob(&self, d: &Digest, shown: bool) -> Result<(), PullError> {
        let done = |status: &str| {
            if shown {
                self.progress.finish(d, status);
            }
        };
        if self.client.blob_exists(self.repo, d, true)? {
            done("Layer already exists");
            return Ok(());
        }
        for from in self.sources {
            if self.client.mount_blob(self.repo, d, from)? {
                done(&format!("Mounted from {from}"));
                return Ok(());
            }
        }
        let size = self.store.content.size(d)?;
        if shown {
            self.progress.start(d, size);
        }
        // Blobs are read whole: pushes are rarer than pulls and a monolithic PUT is the one
        // upload every registry accepts.
        let data = std::fs::read(self.store.content.path(d)).map_err(|e| PullError::Manifest {
            digest: d.clone(),
            message: e.to_string(),
        })?;
        self.client.push_blob(self.repo, d, &data)?;
        if shown {
            self.progress.advance(d, data.len() as u64);
        }
        done("Pushed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_come_from_other_repositories_of_the_same_registry() {
        let img = ImageRecord {
            id: Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap(),
            manifest: Digest::parse(&format!("sha256:{}", "b".repeat(64))).unwrap(),
            manifest_media_type: String::new(),
            repo_tags: vec![
                "reg.example:5000/team/app:1".into(),
                "reg.example:5000/other:2".into(),
                "docker.io/library/busybox:latest".into(),
            ],
            repo_digests: vec![format!(
                "reg.example:5000/team/app@sha256:{}",
                "c".repeat(64)
            )],
            layers: Vec::new(),
            size: 0,
            created: None,
            added: String::new(),
        };
        let target = Reference::parse("reg.example:5000/other:3").unwrap();
        assert_eq!(mount_sources(&img, &target), vec!["team/app".to_string()]);
    }
}
