//! The image index (`images.json`): which images exist (by config digest, Docker's image ID), their
//! tags, repo digests, manifests and layer chains. Rewritten whole and atomically under the store
//! lock; it records names and never touches layer data.

use crate::digest::Digest;
use crate::reference::Reference;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The config digest: Docker's image ID.
    pub id: Digest,
    /// The platform manifest this image came from (stored in the content store).
    pub manifest: Digest,
    pub manifest_media_type: String,
    /// `docker.io/library/busybox:latest`, normalized.
    #[serde(default)]
    pub repo_tags: Vec<String>,
    /// `docker.io/library/busybox@sha256:…` (the digest the registry served: index or manifest).
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// Chain IDs bottom to top.
    pub layers: Vec<Digest>,
    /// Apparent bytes of all layers unpacked.
    pub size: u64,
    #[serde(default)]
    pub created: Option<String>,
    /// When it was added to this store (RFC 3339).
    pub added: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ImageIndex {
    #[serde(default)]
    pub images: BTreeMap<String, ImageRecord>,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("image index {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("image index {path}: corrupt ({source}); move it aside to start empty")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl ImageIndex {
    pub fn load(path: &Path) -> Result<ImageIndex, IndexError> {
        match fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| IndexError::Corrupt {
                path: path.into(),
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(ImageIndex::default()),
            Err(source) => Err(IndexError::Io {
                path: path.into(),
                source,
            }),
        }
    }

    /// Writes a temp file, syncs it and renames it over the old index.
    pub fn save(&self, path: &Path) -> Result<(), IndexError> {
        let io = |source| IndexError::Io {
            path: path.into(),
            source,
        };
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let body = serde_json::to_vec_pretty(self).expect("index serializes");
        let mut f = fs::File::create(&tmp).map_err(io)?;
        f.write_all(&body).map_err(io)?;
        f.sync_data().map_err(io)?;
        fs::rename(&tmp, path).map_err(io)
    }

    /// The image a user's words name: a tag (`busybox`, `busybox:1`), a repo digest, a full or
    /// short ID (`sha256:ab12…`, `ab12…`, at least 4 hex digits and unambiguous).
    pub fn find(&self, name: &str) -> Option<&ImageRecord> {
        let hexish = name.strip_prefix("sha256:").unwrap_or(name);
        if hexish.len() >= 4 && hexish.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut hits = self
                .images
                .values()
                .filter(|r| r.id.hex().starts_with(hexish));
            if let (Some(one), None) = (hits.next(), hits.next()) {
                return Some(one);
            }
        }
        let r = Reference::parse(name).ok()?;
        if let Some(d) = &r.digest {
            let want = format!("{}@{d}", r.name());
            return self
                .images
                .values()
                .find(|i| i.repo_digests.contains(&want));
        }
        let full = r.to_string();
        self.images.values().find(|i| i.repo_tags.contains(&full))
    }

    /// Adds or updates an image and moves `tag` to it from any other image.
    pub fn put(&mut self, mut record: ImageRecord, tag: Option<&str>) {
        if let Some(t) = tag {
            for other in self.images.values_mut() {
                other.repo_tags.retain(|x| x != t);
            }
        }
        if let Some(old) = self.images.remove(&record.id.to_string()) {
            for t in old.repo_tags {
                if !record.repo_tags.contains(&t) {
                    record.repo_tags.push(t);
                }
            }
            for d in old.repo_digests {
                if !record.repo_digests.contains(&d) {
                    record.repo_digests.push(d);
                }
            }
            record.added = old.added;
        }
        if let Some(t) = tag {
            if !record.repo_tags.iter().any(|x| x == t) {
                record.repo_tags.push(t.to_string());
            }
        }
        self.images.insert(record.id.to_string(), record);
    }

    pub fn tag(&mut self, id: &Digest, tag: &str) {
        for other in self.images.values_mut() {
            other.repo_tags.retain(|x| x != tag);
        }
        if let Some(r) = self.images.get_mut(&id.to_string()) {
            r.repo_tags.push(tag.to_string());
        }
    }
}
