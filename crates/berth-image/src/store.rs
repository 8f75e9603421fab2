//! The store as one object: the content store, the layer store, the image index and the two locks
//! that keep concurrent berth processes consistent (`index.lock` serializes index rewrites;
//! `gc.lock` is held shared by whoever adds content and exclusive by whoever removes it).

use crate::content::{ContentError, ContentStore};
use crate::digest::Digest;
use crate::images::{ImageIndex, ImageRecord, IndexError};
use crate::layers::{LayerError, LayerStore};
use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("No such image: {0}")]
    NoSuchImage(String),
    #[error("{0}")]
    Conflict(String),
}

/// A name as Docker's "No such image" names it: a reference normalized and familiar
/// (`busybox` → `busybox:latest`), anything else as given.
pub fn docker_name(name: &str) -> String {
    crate::reference::Reference::parse(name)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| name.to_string())
}

/// An `flock` held until dropped.
pub struct Lock(#[allow(dead_code)] File);

fn flock(path: &Path, exclusive: bool) -> Result<Lock, StoreError> {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|source| StoreError::Io {
            path: path.into(),
            source,
        })?;
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    loop {
        // SAFETY: flock on an fd we own; no memory is passed.
        let r = unsafe { libc::flock(f.as_raw_fd(), op) };
        if r == 0 {
            return Ok(Lock(f));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(StoreError::Io {
                path: path.into(),
                source: e,
            });
        }
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    pub content: ContentStore,
    pub layers: LayerStore,
}

impl Store {
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        fs::create_dir_all(root).map_err(|source| StoreError::Io {
            path: root.into(),
            source,
        })?;
        Ok(Store {
            root: root.to_path_buf(),
            content: ContentStore::open(root)?,
            layers: LayerStore::open(root)?,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("images.json")
    }

    /// Held (shared) while adding content, so `gc` never removes a layer about to be referenced.
    /// Whoever takes it first reclaims what killed pulls, loads and commits left in `ingest/`
    /// and `layers/tmp/` (their owners are dead, so nothing in progress is touched).
    pub fn adding(&self) -> Result<Lock, StoreError> {
        let lock = flock(&self.root.join("gc.lock"), false)?;
        self.reclaim_staging();
        Ok(lock)
    }

    /// Removes the staging of dead processes; returns the disk space freed.
    pub fn reclaim_staging(&self) -> u64 {
        self.content.clean_ingest() + self.layers.reclaim_staging()
    }

    /// The index as it is now (no lock: rewrites are atomic renames).
    pub fn index(&self) -> Result<ImageIndex, StoreError> {
        Ok(ImageIndex::load(&self.index_path())?)
    }

    /// Runs `f` on the index under the index lock and saves what it leaves.
    pub fn update_index<T>(
        &self,
        f: impl FnOnce(&mut ImageIndex) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _lock = flock(&self.root.join("index.lock"), true)?;
        let mut index = ImageIndex::load(&self.index_path())?;
        let out = f(&mut index)?;
        index.save(&self.index_path())?;
        Ok(out)
    }

    pub fn find(&self, name: &str) -> Result<ImageRecord, StoreError> {
        self.index()?
            .find(name)
            .cloned()
            .ok_or_else(|| StoreError::NoSuchImage(docker_name(name)))
    }

    /// Removes layers and blobs no image (or snapshot in `extra_live`) references, and leftovers of
    /// crashed processes. Returns the bytes freed: layer content, and the staging reclaimed.
    pub fn gc(&self, extra_live: &HashSet<Digest>) -> Result<u64, StoreError> {
        self.gc_keeping(extra_live, &HashSet::new())
    }

    /// `gc`, also keeping the blobs in `extra_blobs` (a build cache's layers, which no image
    /// may reference yet).
    pub fn gc_keeping(
        &self,
        extra_live: &HashSet<Digest>,
        extra_blobs: &HashSet<Digest>,
    ) -> Result<u64, StoreError> {
        let _gc = flock(&self.root.join("gc.lock"), true)?;
        let _idx = flock(&self.root.join("index.lock"), true)?;
        let index = ImageIndex::load(&self.index_path())?;
        let mut live_layers: HashSet<Digest> = extra_live.clone();
        let mut live_blobs: HashSet<Digest> = extra_blobs.clone();
        for img in index.images.values() {
            live_layers.extend(img.layers.iter().cloned());
            live_blobs.insert(img.id.clone());
            live_blobs.insert(img.manifest.clone());
            if let Ok(bytes) = self
                .content
                .read(&img.manifest, crate::manifest::MAX_MANIFEST_BYTES)
            {
                if let Ok(m) = crate::gojson::from_slice::<crate::manifest::Manifest>(&bytes) {
                    live_blobs.extend(m.layers.into_iter().map(|l| l.digest));
                }
            }
            for rd in &img.repo_digests {
                if let Some(d) = rd.rsplit_once('@').and_then(|(_, d)| Digest::parse(d).ok()) {
                    live_blobs.insert(d);
                }
            }
        }
        let mut freed = self.reclaim_staging();
        for info in self.layers.gc(&live_layers) {
            freed += info.size;
        }
        for (d, _) in self.content.list()? {
            if !live_blobs.contains(&d) {
                self.content.delete(&d)?;
            }
        }
        Ok(freed)
    }
}
