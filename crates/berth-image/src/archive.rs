//! Images in and out of tar archives: `import` (a root filesystem tarball → a one-layer image),
//! `save` (Docker 25's archive: an OCI layout plus `manifest.json`, loadable by docker and podman)
//! and `load` (docker-save archives of any age, and OCI layouts). Every blob is verified by digest
//! before it is stored; archive member names never become host paths.

use crate::digest::{Algorithm, Digest, HashingReader, HashingWriter};
use crate::images::ImageRecord;
use crate::layers::{chain_ids, decompress};
use crate::manifest::{
    self, Compression, Descriptor, Document, ImageConfig, Manifest, Platform, MAX_MANIFEST_BYTES,
};
use crate::pull::{PullError, MAX_CONFIG_BYTES};
use crate::reference::Reference;
use crate::store::{Store, StoreError};
use berth_sys::time::now_rfc3339;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Pull(#[from] PullError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("archive: {0}")]
    Format(String),
    #[error("archive: {what}: {source}")]
    Io { what: String, source: io::Error },
}

impl From<crate::content::ContentError> for ArchiveError {
    fn from(e: crate::content::ContentError) -> Self {
        ArchiveError::Pull(PullError::Content(e))
    }
}
impl From<crate::layers::LayerError> for ArchiveError {
    fn from(e: crate::layers::LayerError) -> Self {
        ArchiveError::Pull(PullError::Layer(e))
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> ArchiveError {
    let what = what.into();
    move |source| ArchiveError::Io { what, source }
}

/// A layer blob in the content store, with what the manifest and config need to know of it.
#[derive(Debug, Clone)]
pub struct LocalLayer {
    pub blob: Digest,
    pub media_type: String,
    pub size: u64,
    pub diff_id: Digest,
}

/// Sniffs the compression of a stream from its first bytes.
pub fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

fn layer_media_type(c: Compression) -> &'static str {
    match c {
        Compression::None => manifest::OCI_LAYER,
        Compression::Gzip => manifest::OCI_LAYER_GZIP,
        Compression::Zstd => manifest::OCI_LAYER_ZSTD,
    }
}

/// Stores `config` and a new OCI manifest over `layers`, unpacks missing layers, and records the
/// image with `tags` (normalized references).
pub fn register(
    store: &Store,
    config: &[u8],
    layers: &[LocalLayer],
    tags: &[String],
) -> Result<ImageRecord, ArchiveError> {
    let config_digest = store.content.put(config, None)?;
    let m = Manifest {
        schema_version: 2,
        media_type: Some(manifest::OCI_MANIFEST.into()),
        config: Descriptor {
            media_type: manifest::OCI_CONFIG.into(),
            digest: config_digest.clone(),
            size: config.len() as u64,
            platform: None,
            urls: None,
            annotations: None,
        },
        layers: layers
            .iter()
            .map(|l| Descriptor {
                media_type: l.media_type.clone(),
                digest: l.blob.clone(),
                size: l.size,
                platform: None,
                urls: None,
                annotations: None,
            })
            .collect(),
        annotations: None,
    };
    let bytes = serde_json::to_vec(&m).expect("manifest serializes");
    let manifest_digest = store.content.put(&bytes, None)?;
    record(store, &m, &manifest_digest, manifest::OCI_MANIFEST, tags)
}

/// Installs the layers of a stored manifest (from blobs already in the content store) and records it.
fn record(
    store: &Store,
    m: &Manifest,
    manifest_digest: &Digest,
    media_type: &str,
    tags: &[String],
) -> Result<ImageRecord, ArchiveError> {
    let config_bytes = store.content.read(&m.config.digest, MAX_CONFIG_BYTES)?;
    let config = ImageConfig::parse(&config_bytes)
        .map_err(|e| ArchiveError::Format(format!("config {}: {e}", m.config.digest)))?;
    if config.rootfs.diff_ids.len() != m.layers.len() {
        return Err(ArchiveError::Format(format!(
            "config {}: {} diff_ids for {} layers",
            m.config.digest,
            config.rootfs.diff_ids.len(),
            m.layers.len()
        )));
    }
    let chains = chain_ids(&config.rootfs.diff_ids);
    let mut size = 0;
    for (i, l) in m.layers.iter().enumerate() {
        if !store.layers.has(&chains[i]) {
            let c = Compression::of_layer(&l.media_type).ok_or_else(|| {
                PullError::UnsupportedLayer {
                    digest: l.digest.clone(),
                    media_type: l.media_type.clone(),
                }
            })?;
            let f = store.content.open_blob(&l.digest)?;
            let parent = i.checked_sub(1).map(|p| &chains[p]);
            store
                .layers
                .unpack_stream(
                    BufReader::new(f),
                    c,
                    &config.rootfs.diff_ids[i],
                    &chains[i],
                    parent,
                )?
                .install()?;
        }
        size += store.layers.info(&chains[i])?.size;
    }
    let rec = ImageRecord {
        id: m.config.digest.clone(),
        manifest: manifest_digest.clone(),
        manifest_media_type: media_type.into(),
        repo_tags: Vec::new(),
        repo_digests: Vec::new(),
        layers: chains,
        size,
        created: config.created.clone(),
        added: now_rfc3339(),
    };
    store.content.sync()?;
    store.update_index(|idx| {
        idx.put(rec.clone(), None);
        for t in tags {
            idx.tag(&rec.id, t);
        }
        Ok(())
    })?;
    Ok(store.find(&rec.id.to_string())?)
}

/// Copies a (possibly compressed) layer stream into the content store as is, hashing the
/// uncompressed tar on the way for its diff_id.
fn store_layer_file(store: &Store, path: &Path) -> Result<LocalLayer, ArchiveError> {
    let what = || path.display().to_string();
    let mut f = File::open(path).map_err(io_err(what()))?;
    let mut head = [0u8; 4];
    let n = f.read(&mut head).map_err(io_err(what()))?;
    let c = sniff(&head[..n]);
    f.rewind().map_err(io_err(what()))?;
    let mut diff = HashingReader::new(
        decompress(BufReader::new(f), c).map_err(io_err(what()))?,
        Algorithm::Sha256,
    );
    io::copy(&mut diff, &mut io::sink()).map_err(io_err(what()))?;
    let (diff_id, _, _) = diff.drain().map_err(io_err(what()))?;
    let mut w = store.content.writer(Algorithm::Sha256)?;
    let size =
        io::copy(&mut File::open(path).map_err(io_err(what()))?, &mut w).map_err(io_err(what()))?;
    let blob = w.commit(None, Some(size))?;
    Ok(LocalLayer {
        blob,
        media_type: layer_media_type(c).into(),
        size,
        diff_id,
    })
}

/// `import`: a root filesystem tarball (plain, gzip or zstd) becomes a one-layer image whose
/// run config (`config`: `Env`, `Cmd`, …) the caller gives.
pub fn import(
    store: &Store,
    source: impl Read,
    tag: Option<&Reference>,
    message: Option<&str>,
    run_config: serde_json::Value,
    platform: Option<&Platform>,
) -> Result<ImageRecord, ArchiveError> {
    let _adding = store.adding()?;
    let mut src = BufReader::with_capacity(256 * 1024, source);
    let head = src.fill_buf_peek()?;
    let c = sniff(&head);
    // Store the layer gzip-compressed (what registries and docker expect), hashing the plain tar.
    let mut w = store.content.writer(Algorithm::Sha256)?;
    let diff_id = {
        let gz = flate2::write::GzEncoder::new(&mut w, flate2::Compression::fast());
        let mut plain = HashingWriter::new(gz, Algorithm::Sha256);
        io::copy(
            &mut decompress(&mut src, c).map_err(io_err("import"))?,
            &mut plain,
        )
        .map_err(io_err("import"))?;
        let (d, _, gz) = plain.finish();
        gz.finish().map_err(io_err("import"))?;
        d
    };
    let size = w.written();
    let blob = w.commit(None, Some(size))?;
    let now = now_rfc3339();
    let platform = platform.cloned().unwrap_or_else(Platform::host);
    let comment = message
        .map(str::to_string)
        .unwrap_or_else(|| "Imported from tarball".into());
    let mut config = serde_json::json!({
        "architecture": platform.architecture, "os": platform.os, "created": now,
        "config": run_config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        "history": [{"created": now, "created_by": "berth import", "comment": comment}],
    });
    if let Some(v) = &platform.variant {
        config["variant"] = v.clone().into();
    }
    let layer = LocalLayer {
        blob,
        media_type: manifest::OCI_LAYER_GZIP.into(),
        size,
        diff_id,
    };
    let tags: Vec<String> = tag.map(|t| t.to_string()).into_iter().collect();
    register(
        store,
        &serde_json::to_vec(&config).expect("config serializes"),
        &[layer],
        &tags,
    )
}

trait PeekExt {
    fn fill_buf_peek(&mut self) -> Result<Vec<u8>, ArchiveError>;
}
impl<R: Read> PeekExt for BufReader<R> {
    fn fill_buf_peek(&mut self) -> Result<Vec<u8>, ArchiveError> {
        use io::BufRead;
        let b = self.fill_buf().map_err(io_err("input"))?;
        Ok(b[..b.len().min(4)].to_vec())
    }
}

/// An archive unpacked into a private scratch directory: member name → file. Links inside the
/// archive are resolved between members; nothing is ever written under a member's own name.
struct Extracted {
    dir: PathBuf,
    files: HashMap<String, PathBuf>,
}

impl Drop for Extracted {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn clean_name(name: &str) -> Option<String> {
    let mut parts = Vec::new();
    for p in name.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

impl Extracted {
    fn read(store: &Store, source: impl Read) -> Result<Extracted, ArchiveError> {
        let dir = store
            .root()
            .join("layers/tmp")
            .join(crate::staging::name("load"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(io_err(dir.display().to_string()))?;
        let mut ex = Extracted {
            dir,
            files: HashMap::new(),
        };
        let mut src = BufReader::with_capacity(256 * 1024, source);
        let c = sniff(&src.fill_buf_peek()?);
        let mut ar = tar::Archive::new(crate::tarfmt::Compat::new(
            decompress(src, c).map_err(io_err("archive"))?,
        ));
        let mut links: Vec<(String, String)> = Vec::new();
        for (i, entry) in ar.entries().map_err(io_err("archive"))?.enumerate() {
            let mut entry = entry.map_err(io_err("archive"))?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let Some(name) = clean_name(&raw) else {
                continue;
            };
            let kind = entry.header().entry_type();
            if kind.is_file() {
                let path = ex.dir.join(i.to_string());
                let mut out = File::create(&path).map_err(io_err(raw.clone()))?;
                io::copy(&mut entry, &mut out).map_err(io_err(raw.clone()))?;
                ex.files.insert(name, path);
            } else if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let base = if kind.is_symlink() {
                    name.rsplit_once('/')
                        .map(|(d, _)| d.to_string())
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                if let Some(t) = clean_name(&format!("{base}/{target}")) {
                    links.push((name, t));
                }
            }
        }
        for (name, target) in links {
            if let Some(p) = ex.files.get(&target).cloned() {
                ex.files.insert(name, p);
            }
        }
        Ok(ex)
    }

    fn get(&self, name: &str) -> Result<&Path, ArchiveError> {
        clean_name(name)
            .and_then(|n| self.files.get(&n))
            .map(PathBuf::as_path)
            .ok_or_else(|| ArchiveError::Format(format!("member {name:?} is missing")))
    }

    fn read_small(&self, name: &str, limit: u64) -> Result<Vec<u8>, ArchiveError> {
        let p = self.get(name)?;
        let mut data = Vec::new();
        File::open(p)
            .map_err(io_err(name))?
            .take(limit + 1)
            .read_to_end(&mut data)
            .map_err(io_err(name))?;
        if data.len() as u64 > limit {
            return Err(ArchiveError::Format(format!(
                "member {name:?} is larger than {limit} bytes"
            )));
        }
        Ok(data)
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SaveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// `load`: a docker-save archive (`manifest.json`) or an OCI layout (`index.json`). With a
/// `platform` (`load --platform`), only images of that platform are loaded (an index is
/// followed to its manifest for it), and an archive with none of it loads nothing.
pub fn load(
    store: &Store,
    source: impl Read,
    platform: Option<&Platform>,
) -> Result<Vec<(ImageRecord, Vec<String>)>, ArchiveError> {
    let _adding = store.adding()?;
    let ex = Extracted::read(store, source)?;
    let mut skipped = Vec::new();
    let (what, loaded) = if ex.files.contains_key("manifest.json") {
        (
            "manifest.json",
            load_docker(store, &ex, platform, &mut skipped)?,
        )
    } else if ex.files.contains_key("index.json") {
        ("index.json", load_oci(store, &ex, platform, &mut skipped)?)
    } else {
        return Err(ArchiveError::Format(
            "neither manifest.json (docker save) nor index.json (OCI layout) found".into(),
        ));
    };
    match (loaded.is_empty(), platform) {
        (true, Some(want)) => Err(ArchiveError::Format(format!(
            "{what} has no image for {want} (its images are for: {}): nothing was loaded",
            if skipped.is_empty() {
                "none".to_string()
            } else {
                skipped.join(", ")
            }
        ))),
        (true, None) => Err(ArchiveError::Format(format!(
            "{what} lists no image: nothing was loaded"
        ))),
        (false, _) => Ok(loaded),
    }
}

/// The platform an image config declares (os/architecture[/variant]).
fn config_platform(config: &ImageConfig) -> Platform {
    Platform {
        architecture: config.architecture.clone(),
        os: config.os.clone(),
        variant: config.variant.clone(),
        os_version: None,
    }
}

/// Whether an image of `config` is wanted by `load --platform` (any, without one); one that is
/// not is noted in `skipped` by its platform.
fn wanted(config: &ImageConfig, platform: Option<&Platform>, skipped: &mut Vec<String>) -> bool {
    let have = config_platform(config);
    match platform {
        Some(want) if !want.matches(&have) => {
            skipped.push(have.to_string());
            false
        }
        _ => true,
    }
}

fn normalize_tags(tags: &[String]) -> Result<Vec<String>, ArchiveError> {
    tags.iter()
        .map(|t| {
            Reference::parse(t)
                .map(|r| r.to_string())
                .map_err(|e| ArchiveError::Format(e.to_string()))
        })
        .collect()
}

fn load_docker(
    store: &Store,
    ex: &Extracted,
    platform: Option<&Platform>,
    skipped: &mut Vec<String>,
) -> Result<Vec<(ImageRecord, Vec<String>)>, ArchiveError> {
    let entries: Vec<SaveEntry> =
        crate::gojson::from_slice(&ex.read_small("manifest.json", MAX_MANIFEST_BYTES)?)
            .map_err(|e| ArchiveError::Format(format!("manifest.json: {e}")))?;
    let mut out = Vec::new();
    for e in entries {
        let config = ex.read_small(&e.config, MAX_CONFIG_BYTES)?;
        let parsed = ImageConfig::parse(&config)
            .map_err(|err| ArchiveError::Format(format!("{}: {err}", e.config)))?;
        if !wanted(&parsed, platform, skipped) {
            continue;
        }
        if parsed.rootfs.diff_ids.len() != e.layers.len() {
            return Err(ArchiveError::Format(format!(
                "{}: {} diff_ids for {} layers",
                e.config,
                parsed.rootfs.diff_ids.len(),
                e.layers.len()
            )));
        }
        let mut layers = Vec::new();
        for (i, l) in e.layers.iter().enumerate() {
            let layer = store_layer_file(store, ex.get(l)?)?;
            if layer.diff_id != parsed.rootfs.diff_ids[i] {
                return Err(ArchiveError::Format(format!(
                    "layer {l}: content hashes to {}, config says {}",
                    layer.diff_id, parsed.rootfs.diff_ids[i]
                )));
            }
            layers.push(layer);
        }
        let tags = normalize_tags(e.repo_tags.as_deref().unwrap_or_default())?;
        let rec = register(store, &config, &layers, &tags)?;
        out.push((rec, tags));
    }
    Ok(out)
}

/// Copies an OCI layout blob into the content store, verifying its digest.
/// A member whose size differs from its descriptor's is refused before a byte is copied.
fn copy_blob(store: &Store, ex: &Extracted, d: &Descriptor) -> Result<(), ArchiveError> {
    if store.content.has(&d.digest) {
        return Ok(());
    }
    let name = format!("blobs/{}/{}", d.digest.algorithm().name(), d.digest.hex());
    let file = File::open(ex.get(&name)?).map_err(io_err(name.clone()))?;
    let len = file.metadata().map_err(io_err(name.clone()))?.len();
    if len != d.size {
        return Err(ArchiveError::Format(format!(
            "{name}: {len} bytes, but its descriptor says {}",
            d.size
        )));
    }
    let mut w = store.content.writer(d.digest.algorithm())?;
    io::copy(&mut file.take(d.size), &mut w).map_err(io_err(name))?;
    w.commit(Some(&d.digest), Some(d.size))?;
    Ok(())
}

/// How many indexes `load` follows from `index.json` down to a manifest.
const MAX_INDEX_DEPTH: usize = 4;

fn load_oci(
    store: &Store,
    ex: &Extracted,
    platform: Option<&Platform>,
    skipped: &mut Vec<String>,
) -> Result<Vec<(ImageRecord, Vec<String>)>, ArchiveError> {
    let index: manifest::Index =
        crate::gojson::from_slice(&ex.read_small("index.json", MAX_MANIFEST_BYTES)?)
            .map_err(|e| ArchiveError::Format(format!("index.json: {e}")))?;
    let mut out = Vec::new();
    let host = platform.cloned().unwrap_or_else(Platform::host);
    for top in &index.manifests {
        let name = top.annotations.as_ref().and_then(|a| {
            a.get("io.containerd.image.name")
                .or_else(|| a.get("org.opencontainers.image.ref.name"))
        });
        let tags = match name.map(|n| Reference::parse(n)) {
            Some(Ok(r)) if r.tag.is_some() && (n_has_name(name.unwrap())) => vec![r.to_string()],
            _ => Vec::new(),
        };
        let mut desc = top.clone();
        // Follow indexes down to this host's manifest, at most MAX_INDEX_DEPTH of them.
        let mut depth = 0;
        loop {
            if desc.size > MAX_MANIFEST_BYTES {
                return Err(ArchiveError::Format(format!(
                    "{}: a manifest of {} bytes, over the bound of {MAX_MANIFEST_BYTES}",
                    desc.digest, desc.size
                )));
            }
            copy_blob(store, ex, &desc)?;
            let bytes = store.content.read(&desc.digest, MAX_MANIFEST_BYTES)?;
            match Document::parse_as(&bytes, None, Some(&desc.media_type))
                .map_err(|e| ArchiveError::Format(format!("{}: {e}", desc.digest)))?
            {
                Document::Index(_) if depth == MAX_INDEX_DEPTH => {
                    return Err(ArchiveError::Format(format!(
                        "{}: indexes nested deeper than {MAX_INDEX_DEPTH} levels",
                        top.digest
                    )))
                }
                Document::Index(i) => {
                    depth += 1;
                    desc = i
                        .select(&host)
                        .map_err(|avail| {
                            ArchiveError::Format(format!(
                                "no manifest for {host} (available: {})",
                                avail.join(", ")
                            ))
                        })?
                        .clone();
                }
                Document::Manifest(m) => {
                    if m.config.size > MAX_CONFIG_BYTES {
                        return Err(ArchiveError::Format(format!(
                            "config {}: {} bytes, over the bound of {MAX_CONFIG_BYTES}",
                            m.config.digest, m.config.size
                        )));
                    }
                    // Decided from the archive's copy, before anything of a skipped image
                    // reaches the store (a kept one is verified as it is copied).
                    let name = format!(
                        "blobs/{}/{}",
                        m.config.digest.algorithm().name(),
                        m.config.digest.hex()
                    );
                    let parsed = ImageConfig::parse(&ex.read_small(&name, MAX_CONFIG_BYTES)?)
                        .map_err(|e| {
                            ArchiveError::Format(format!("config {}: {e}", m.config.digest))
                        })?;
                    if !wanted(&parsed, platform, skipped) {
                        break;
                    }
                    copy_blob(store, ex, &m.config)?;
                    for l in &m.layers {
                        copy_blob(store, ex, l)?;
                    }
                    let rec = record(store, &m, &desc.digest, &desc.media_type, &tags)?;
                    out.push((rec, tags.clone()));
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// `org.opencontainers.image.ref.name` is often only a tag (`latest`): that names no repository.
fn n_has_name(n: &str) -> bool {
    n.contains('/') || n.contains(':')
}

/// `save`: writes Docker 25's archive (OCI layout + `manifest.json`) of `images` to `out`. Layers
/// are written uncompressed, named by their diff_id, as `docker save` does.
pub fn save(
    store: &Store,
    images: &[(ImageRecord, Vec<String>)],
    out: impl Write,
) -> Result<(), ArchiveError> {
    let mut tar = tar::Builder::new(out);
    let mut written: std::collections::HashSet<Digest> = std::collections::HashSet::new();
    let mut layer_sizes: HashMap<Digest, u64> = HashMap::new();
    let mut index_entries = Vec::new();
    let mut save_entries = Vec::new();
    let scratch = store
        .root()
        .join("layers/tmp")
        .join(crate::staging::name("save"));
    let _ = fs::remove_file(&scratch);
    let result = (|| -> Result<(), ArchiveError> {
        for (img, tags) in images {
            let m: Manifest =
                crate::gojson::from_slice(&store.content.read(&img.manifest, MAX_MANIFEST_BYTES)?)
                    .map_err(|e| ArchiveError::Format(format!("manifest {}: {e}", img.manifest)))?;
            let config = store.content.read(&img.id, MAX_CONFIG_BYTES)?;
            let parsed = ImageConfig::parse(&config)
                .map_err(|e| ArchiveError::Format(format!("config {}: {e}", img.id)))?;
            add_bytes(&mut tar, &mut written, &img.id, &config)?;
            let mut layer_descs = Vec::new();
            for (l, diff_id) in m.layers.iter().zip(&parsed.rootfs.diff_ids) {
                let c = Compression::of_layer(&l.media_type).ok_or_else(|| {
                    ArchiveError::Format(format!(
                        "layer {}: unsupported media type {}",
                        l.digest, l.media_type
                    ))
                })?;
                let size;
                if let Some(known) = layer_sizes.get(diff_id) {
                    size = *known;
                } else {
                    let mut tmp = File::options()
                        .read(true)
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .open(&scratch)
                        .map_err(io_err("save"))?;
                    let mut plain =
                        decompress(BufReader::new(store.content.open_blob(&l.digest)?), c)
                            .map_err(io_err("save"))?;
                    size = io::copy(&mut plain, &mut tmp).map_err(io_err("save"))?;
                    tmp.rewind().map_err(io_err("save"))?;
                    add_reader(
                        &mut tar,
                        &format!("blobs/sha256/{}", diff_id.hex()),
                        size,
                        tmp,
                    )?;
                    layer_sizes.insert(diff_id.clone(), size);
                }
                layer_descs.push(serde_json::json!({"mediaType": manifest::OCI_LAYER, "digest": diff_id.to_string(), "size": size}));
            }
            let oci = serde_json::json!({
                "schemaVersion": 2, "mediaType": manifest::OCI_MANIFEST,
                "config": {"mediaType": manifest::OCI_CONFIG, "digest": img.id.to_string(), "size": config.len()},
                "layers": layer_descs,
            });
            let oci_bytes = serde_json::to_vec(&oci).expect("serializes");
            let oci_digest = Digest::of_bytes(&oci_bytes);
            add_bytes(&mut tar, &mut written, &oci_digest, &oci_bytes)?;
            let familiar: Vec<String> = tags
                .iter()
                .filter_map(|t| Reference::parse(t).ok())
                .map(|r| format!("{}:{}", r.familiar_name(), r.tag.unwrap_or_default()))
                .collect();
            for (t, f) in tags.iter().zip(&familiar) {
                let tag = f.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
                index_entries.push(serde_json::json!({"mediaType": manifest::OCI_MANIFEST, "digest": oci_digest.to_string(), "size": oci_bytes.len(),
                    "annotations": {"io.containerd.image.name": t, "org.opencontainers.image.ref.name": tag}}));
            }
            if tags.is_empty() {
                index_entries.push(serde_json::json!({"mediaType": manifest::OCI_MANIFEST, "digest": oci_digest.to_string(), "size": oci_bytes.len()}));
            }
            save_entries.push(serde_json::json!({"Config": format!("blobs/sha256/{}", img.id.hex()), "RepoTags": familiar,
                "Layers": parsed.rootfs.diff_ids.iter().map(|d| format!("blobs/sha256/{}", d.hex())).collect::<Vec<_>>()}));
        }
        let index = serde_json::json!({"schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": index_entries});
        add_file(
            &mut tar,
            "index.json",
            &serde_json::to_vec(&index).expect("serializes"),
        )?;
        add_file(
            &mut tar,
            "manifest.json",
            &serde_json::to_vec(&save_entries).expect("serializes"),
        )?;
        add_file(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        tar.finish().map_err(io_err("save"))?;
        Ok(())
    })();
    let _ = fs::remove_file(&scratch);
    result
}

fn header(name: &str, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    let _ = h.set_path(name);
    h.set_cksum();
    h
}

fn add_file<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
) -> Result<(), ArchiveError> {
    let mut h = header(name, data.len() as u64, 0o644);
    tar.append_data(&mut h, name, data).map_err(io_err(name))
}

fn add_reader<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    size: u64,
    r: impl Read,
) -> Result<(), ArchiveError> {
    let mut h = header(name, size, 0o644);
    tar.append_data(&mut h, name, r).map_err(io_err(name))
}

fn add_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    written: &mut std::collections::HashSet<Digest>,
    d: &Digest,
    data: &[u8],
) -> Result<(), ArchiveError> {
    if written.insert(d.clone()) {
        add_file(tar, &format!("blobs/sha256/{}", d.hex()), data)?;
    }
    Ok(())
}
