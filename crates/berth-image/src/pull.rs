//! `pull`: reference → manifest (through an index, by platform) → config → layers, each layer
//! streamed from the registry through its digest check and decompression straight into the
//! unpacker, several at once. The image is recorded only when every layer is installed.

use crate::content::ContentError;
use crate::digest::Digest;
use crate::images::ImageRecord;
use crate::layers::{chain_ids, LayerError};
use crate::manifest::{Compression, Descriptor, Document, ImageConfig, Manifest, Platform};
use crate::reference::Reference;
use crate::registry::{auth, Client, RegistryError};
use crate::store::{Store, StoreError};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The largest image config berth reads.
pub const MAX_CONFIG_BYTES: u64 = 32 * 1024 * 1024;
const LAYER_ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error("manifest {digest}: {message}")]
    Manifest { digest: Digest, message: String },
    #[error("no matching manifest for {want} in the manifest list (available: {available})")]
    NoPlatform { want: String, available: String },
    #[error("layer {digest}: unsupported media type {media_type:?}")]
    UnsupportedLayer { digest: Digest, media_type: String },
    #[error("config {digest}: {message}")]
    Config { digest: Digest, message: String },
}

/// How a pull reports what it does. Implemented by the CLI (bars on a terminal, lines otherwise).
pub trait Progress: Sync {
    /// A layer starts downloading (`total` bytes when known).
    fn start(&self, id: &Digest, total: u64);
    fn advance(&self, id: &Digest, bytes: u64);
    /// A layer is done: `Pull complete`, `Already exists`.
    fn finish(&self, id: &Digest, status: &str);
    fn note(&self, message: &str);
    /// A layer's state before it moves (`Preparing`, `Waiting`); nothing by default.
    fn status(&self, id: &Digest, status: &str) {
        let _ = (id, status);
    }
}

/// Progress that reports nothing (tests, `-q`).
pub struct Quiet;
impl Progress for Quiet {
    fn start(&self, _: &Digest, _: u64) {}
    fn advance(&self, _: &Digest, _: u64) {}
    fn finish(&self, _: &Digest, _: &str) {}
    fn note(&self, _: &str) {}
}

pub struct PullOptions<'a> {
    pub platform: Platform,
    pub insecure: Vec<String>,
    pub progress: &'a dyn Progress,
    pub parallel: usize,
}

pub struct Pulled {
    pub record: ImageRecord,
    /// The digest the registry served for the reference (index or manifest).
    pub digest: Digest,
    pub up_to_date: bool,
}

/// A reader that copies everything it reads into the blob being written and reports progress.
struct Tee<'a, R> {
    src: R,
    blob: &'a mut crate::content::BlobWriter,
    progress: &'a dyn Progress,
    id: &'a Digest,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.src.read(buf)?;
        self.blob.write_all(&buf[..n])?;
        self.progress.advance(self.id, n as u64);
        Ok(n)
    }
}

pub fn client_for(reference: &Reference, insecure: &[String]) -> Client {
    Client::new(
        reference.api_host(),
        insecure,
        auth::lookup(&reference.registry),
    )
}

/// Pulls `reference` into `store`.
pub fn pull(store: &Store, reference: &Reference, opts: &PullOptions) -> Result<Pulled, PullError> {
    pull_as(store, reference, opts, None)
}

/// `pull` with the caller's credentials (the API's `X-Registry-Auth`) instead of those of
/// Docker's config file; None looks them up there.
pub fn pull_as(
    store: &Store,
    reference: &Reference,
    opts: &PullOptions,
    credentials: Option<auth::Credentials>,
) -> Result<Pulled, PullError> {
    let _adding = store.adding()?;
    let client = match credentials {
        Some(c) => Client::new(reference.api_host(), &opts.insecure, Some(c)),
        None => client_for(reference, &opts.insecure),
    };
    let repo = reference.repository.as_str();
    let top = client.get_manifest(repo, &reference.manifest_ref())?;
    let repo_digest = format!("{}@{}", reference.name(), top.digest);
    // Warm path: this exact document is already an image here with all its layers.
    let index = store.index()?;
    let warm = index.images.values().find(|i| {
        i.repo_digests.contains(&repo_digest)
            && i.layers.iter().all(|l| store.layers.has(l))
            && serves_platform(store, i, &opts.platform)
    });
    if let Some(existing) = warm {
        let record = existing.clone();
        let tag = reference.tag.as_ref().map(|_| reference.to_string());
        // Rewrite the index only when the tag moves (a warm pull should cost one request).
        if tag.as_ref().is_some_and(|t| !record.repo_tags.contains(t)) {
            store.update_index(|idx| {
                idx.put(record.clone(), tag.as_deref());
                Ok(())
            })?;
        }
        return Ok(Pulled {
            record,
            digest: top.digest,
            up_to_date: true,
        });
    }
    let doc = Document::parse(&top.bytes, top.content_type.as_deref()).map_err(|e| {
        PullError::Manifest {
            digest: top.digest.clone(),
            message: e.to_string(),
        }
    })?;
    store.content.put(&top.bytes, Some(&top.digest))?;
    let (manifest, manifest_digest, media_type) = match doc {
        Document::Manifest(m) => {
            let mt = m
                .media_type
                .clone()
                .or(top.content_type.clone())
                .unwrap_or_else(|| crate::manifest::OCI_MANIFEST.into());
            (m, top.digest.clone(), mt)
        }
        Document::Index(index) => {
            let desc = index
                .select(&opts.platform)
                .map_err(|available| PullError::NoPlatform {
                    want: opts.platform.to_string(),
                    available: if available.is_empty() {
                        "none".into()
                    } else {
                        available.join(", ")
                    },
                })?;
            let fetched = client.get_manifest(repo, &desc.digest.to_string())?;
            let m = match Document::parse_as(
                &fetched.bytes,
                fetched.content_type.as_deref(),
                Some(&desc.media_type),
            ) {
                Ok(Document::Manifest(m)) => m,
                Ok(Document::Index(_)) => {
                    return Err(PullError::Manifest {
                        digest: desc.digest.clone(),
                        message: "an index inside an index: berth follows one level \
                                  (index, then a platform's manifest)"
                            .into(),
                    })
                }
                Err(e) => {
                    return Err(PullError::Manifest {
                        digest: desc.digest.clone(),
                        message: e.to_string(),
                    })
                }
            };
            store.content.put(&fetched.bytes, Some(&fetched.digest))?;
            (m, fetched.digest, desc.media_type.clone())
        }
    };
    // Docker names the repository by its path in the registry (`library/busybox`).
    opts.progress.note(&format!(
        "{}: Pulling from {}",
        reference.manifest_ref(),
        reference.repository
    ));
    let config = fetch_config(store, &client, repo, &manifest)?;
    let record = fetch_layers(store, &client, repo, &manifest, &config, opts)?;
    let record = ImageRecord {
        id: manifest.config.digest.clone(),
        manifest: manifest_digest,
        manifest_media_type: media_type,
        repo_tags: Vec::new(),
        repo_digests: vec![repo_digest],
        created: config.created.clone(),
        ..record
    };
    let tag = reference.tag.as_ref().map(|_| reference.to_string());
    // Everything the image needs reaches the disk before the index names it.
    store.content.sync()?;
    store.update_index(|idx| {
        idx.put(record.clone(), tag.as_deref());
        Ok(())
    })?;
    Ok(Pulled {
        record,
        digest: top.digest,
        up_to_date: false,
    })
}

/// Whether a stored image (from an index, possibly of another platform) is for `want`.
fn serves_platform(store: &Store, img: &ImageRecord, want: &Platform) -> bool {
    let Ok(bytes) = store.content.read(&img.id, MAX_CONFIG_BYTES) else {
        return false;
    };
    let Ok(cfg) = ImageConfig::parse(&bytes) else {
        return false;
    };
    let have = Platform {
        architecture: cfg.architecture,
        os: cfg.os,
        variant: cfg.variant,
        os_version: None,
    };
    want.matches(&have)
}

fn fetch_config(
    store: &Store,
    client: &Client,
    repo: &str,
    m: &Manifest,
) -> Result<ImageConfig, PullError> {
    let d = &m.config.digest;
    let bad = |message: String| PullError::Config {
        digest: d.clone(),
        message,
    };
    if m.config.size > MAX_CONFIG_BYTES {
        return Err(bad(format!("larger than {MAX_CONFIG_BYTES} bytes")));
    }
    if !store.content.has(d) {
        // The reader stops one byte past the descriptor's size (checked above).
        let mut body = client.get_blob(repo, d, m.config.size)?;
        let mut w = store.content.writer(d.algorithm())?;
        io::copy(&mut body, &mut w).map_err(|e| bad(e.to_string()))?;
        w.commit(Some(d), Some(m.config.size))?;
    }
    let bytes = store.content.read(d, MAX_CONFIG_BYTES)?;
    let config = ImageConfig::parse(&bytes).map_err(|e| bad(format!("malformed: {e}")))?;
    if config.rootfs.diff_ids.len() != m.layers.len() {
        return Err(bad(format!(
            "{} diff_ids for {} layers",
            config.rootfs.diff_ids.len(),
            m.layers.len()
        )));
    }
    Ok(config)
}

/// Downloads and unpacks every missing layer, `opts.parallel` at a time.
fn fetch_layers(
    store: &Store,
    client: &Client,
    repo: &str,
    m: &Manifest,
    config: &ImageConfig,
    opts: &PullOptions,
) -> Result<ImageRecord, PullError> {
    let diff_ids = &config.rootfs.diff_ids;
    let chains = chain_ids(diff_ids);
    for l in &m.layers {
        if Compression::of_layer(&l.media_type).is_none() {
            return Err(PullError::UnsupportedLayer {
                digest: l.digest.clone(),
                media_type: l.media_type.clone(),
            });
        }
    }
    let next = AtomicUsize::new(0);
    let first_error: Mutex<Option<PullError>> = Mutex::new(None);
    let sizes: Mutex<Vec<u64>> = Mutex::new(vec![0; m.layers.len()]);
    let workers = opts.parallel.clamp(1, 8).min(m.layers.len().max(1));
    let fetch = Fetch {
        store,
        client,
        repo,
        progress: opts.progress,
    };
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= m.layers.len() || first_error.lock().expect("lock").is_some() {
                    return;
                }
                let parent = i.checked_sub(1).map(|p| &chains[p]);
                let layer = Layer {
                    desc: &m.layers[i],
                    diff_id: &diff_ids[i],
                    chain: &chains[i],
                    parent,
                };
                match fetch.layer(&layer) {
                    Ok(size) => sizes.lock().expect("lock")[i] = size,
                    Err(e) => {
                        first_error.lock().expect("lock").get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().expect("lock") {
        return Err(e);
    }
    let size = sizes.into_inner().expect("lock").iter().sum();
    Ok(ImageRecord {
        id: m.config.digest.clone(),
        manifest: m.config.digest.clone(),
        manifest_media_type: String::new(),
        repo_tags: Vec::new(),
        repo_digests: Vec::new(),
        layers: chains,
        size,
        created: None,
        added: berth_sys::time::now_rfc3339(),
    })
}

/// Where a pull's layers come from and go to.
struct Fetch<'a> {
    store: &'a Store,
    client: &'a Client,
    repo: &'a str,
    progress: &'a dyn Progress,
}

/// One layer of the manifest, with what the config says it unpacks to.
struct Layer<'a> {
    desc: &'a Descriptor,
    diff_id: &'a Digest,
    chain: &'a Digest,
    parent: Option<&'a Digest>,
}

impl Fetch<'_> {
    /// Makes sure the layer is unpacked and its blob stored; returns its unpacked size.
    fn layer(&self, l: &Layer) -> Result<u64, PullError> {
        let (store, progress) = (self.store, self.progress);
        let id = &l.desc.digest;
        let compression = Compression::of_layer(&l.desc.media_type).expect("checked by the caller");
        let have_layer = store.layers.has(l.chain);
        // A blob of the wrong size (torn by a power loss before the pull that wrote it synced) is
        // fetched again.
        let have_blob = store.content.size(id).is_ok_and(|n| n == l.desc.size);
        if have_layer && have_blob {
            progress.finish(id, "Already exists");
            return Ok(store.layers.info(l.chain)?.size);
        }
        if !have_layer && have_blob {
            let f = store.content.open_blob(id)?;
            let pending = store.layers.unpack_stream(
                io::BufReader::new(f),
                compression,
                l.diff_id,
                l.chain,
                l.parent,
            )?;
            let info = pending.install()?;
            progress.finish(id, "Pull complete");
            return Ok(info.size);
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            progress.start(id, l.desc.size);
            match self.download(l, !have_layer) {
                Ok(size) => {
                    progress.finish(id, "Pull complete");
                    return Ok(size);
                }
                // A connection that broke mid-stream is worth another try; bad content is not.
                Err(e) if attempt < LAYER_ATTEMPTS && is_transient(&e) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Streams the blob into the content store and, with `unpack`, through the unpacker.
    fn download(&self, l: &Layer, unpack: bool) -> Result<u64, PullError> {
        let store = self.store;
        let id = &l.desc.digest;
        let compression = Compression::of_layer(&l.desc.media_type).expect("checked by the caller");
        let body = self.client.get_blob(self.repo, id, l.desc.size)?;
        let mut blob = store.content.writer(id.algorithm())?;
        let mut tee = Tee {
            src: body,
            blob: &mut blob,
            progress: self.progress,
            id,
        };
        let pending = if unpack {
            Some(
                store
                    .layers
                    .unpack_stream(&mut tee, compression, l.diff_id, l.chain, l.parent)?,
            )
        } else {
            io::copy(&mut tee, &mut io::sink()).map_err(|e| LayerError::Io {
                what: id.to_string(),
                source: e,
            })?;
            None
        };
        // The blob is verified before the layer becomes visible.
        blob.commit(Some(id), Some(l.desc.size))?;
        match pending {
            Some(p) => Ok(p.install()?.size),
            None => Ok(store.layers.info(l.chain)?.size),
        }
    }
}

/// A broken or stalled connection, seen directly or as the I/O error under an unpack failure.
fn is_transient(e: &PullError) -> bool {
    if matches!(e, PullError::Registry(RegistryError::Transport { .. })) {
        return true;
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            use io::ErrorKind::*;
            return matches!(
                io.kind(),
                TimedOut | ConnectionReset | ConnectionAborted | UnexpectedEof | BrokenPipe
            );
        }
        cur = err.source();
    }
    false
}
