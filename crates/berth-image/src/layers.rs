//! The layer store: each layer unpacked once into `layers/<chain-id>/diff`, verified against its
//! `diff_id`, and shared by every image and snapshot whose chain includes it. A layer appears only
//! when complete (unpacked in `layers/tmp/`, then renamed); what no image or snapshot references is
//! removed by `gc`. It unpacks tar streams; it never fetches or runs anything.

use crate::digest::{Algorithm, Digest, Hasher, HashingReader};
use crate::manifest::Compression;
use crate::unpack::{self, UnpackOptions};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer {diff_id}: {source}")]
    Unpack {
        diff_id: Digest,
        source: unpack::UnpackError,
    },
    #[error("layer {expected}: uncompressed content hashes to {actual} (diff_id mismatch)")]
    DiffIdMismatch { expected: Digest, actual: Digest },
    #[error("layer {what}: {source}")]
    Io { what: String, source: io::Error },
}

/// What the store records beside each unpacked layer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerInfo {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub parent: Option<Digest>,
    /// Apparent bytes of regular files in this layer.
    pub size: u64,
    /// The short name under `l/` used in overlay options.
    pub link: String,
}

const CHUNK: usize = 256 * 1024;

/// Reads until `buf` is full or the stream ends.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The receiving end of the decompressor thread, as a `Read`.
struct ChunkReader {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.cur = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A layer unpacked and verified but not yet visible in the store.
pub struct PendingLayer {
    store: LayerStore,
    tmp: PathBuf,
    info: LayerInfo,
    installed: bool,
}

impl PendingLayer {
    /// Decompression and the diff_id hash run on a helper thread, feeding the unpacker through a
    /// bounded channel: on two cores the layer costs the slower of the two, not their sum.
    fn unpack(
        &mut self,
        compressed: impl Read + Send,
        compression: Compression,
    ) -> Result<u64, LayerError> {
        let diff_id = self.info.diff_id.clone();
        let what = || diff_id.to_string();
        let diff = self.tmp.join("diff");
        fs::create_dir_all(&diff).map_err(io_err(what()))?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(8);
        let algorithm = diff_id.algorithm();
        std::thread::scope(|s| {
            let producer = s.spawn(move || -> io::Result<Digest> {
                let plain = decompress(compressed, compression)?;
                let mut hashing = HashingReader::new(plain, algorithm);
                let mut receiver_gone = false;
                loop {
                    let mut buf = vec![0u8; CHUNK];
                    let n = match read_full(&mut hashing, &mut buf) {
                        Ok(n) => n,
                        Err(e) => {
                            let kind = e.kind();
                            let msg = e.to_string();
                            let _ = tx.send(Err(e));
                            return Err(io::Error::new(kind, msg));
                        }
                    };
                    if n == 0 {
                        break;
                    }
                    buf.truncate(n);
                    // After the unpacker stopped (end-of-archive marker) the rest is still hashed.
                    if !receiver_gone && tx.send(Ok(buf)).is_err() {
                        receiver_gone = true;
                    }
                }
                let (d, _, _) = hashing.drain()?;
                Ok(d)
            });
            let mut reader = ChunkReader {
                rx,
                cur: Vec::new(),
                pos: 0,
            };
            let stats = unpack::unpack(&mut reader, &diff, &UnpackOptions::default());
            drop(reader);
            let hashed = producer.join().expect("decompressor thread never panics");
            let stats = stats.map_err(|source| LayerError::Unpack {
                diff_id: self.info.diff_id.clone(),
                source,
            })?;
            let actual = hashed.map_err(io_err(what()))?;
            if actual != self.info.diff_id {
                return Err(LayerError::DiffIdMismatch {
                    expected: self.info.diff_id.clone(),
                    actual,
                });
            }
            Ok(stats.bytes)
        })
    }

    pub fn info(&self) -> &LayerInfo {
        &self.info
    }

    /// Makes the layer visible under its chain ID.
    pub fn install(mut self) -> Result<LayerInfo, LayerError> {
        self.store.install(&self.tmp, &self.info)?;
        self.installed = true;
        Ok(self.info.clone())
    }
}

impl Drop for PendingLayer {
    fn drop(&mut self) {
        if !self.installed {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

/// `chain(L0) = diff(L0)`, `chain(Ln) = sha256(chain(Ln-1) + " " + diff(Ln))` (the image spec's rule).
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => {
                let mut h = Hasher::new(Algorithm::Sha256);
                h.update(format!("{parent} {d}").as_bytes());
                h.finish()
            }
        };
        out.push(next);
    }
    out
}

#[derive(Debug, Clone)]
pub struct LayerStore {
    root: PathBuf,
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> LayerError {
    let what = what.into();
    move |source| LayerError::Io { what, source }
}

/// Wraps a compressed stream in the decoder its media type names.
pub fn decompress<'a>(r: impl Read + 'a, c: Compression) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(
            io::BufReader::with_capacity(256 * 1024, r),
        )),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
    })
}

impl LayerStore {
    pub fn open(root: &Path) -> Result<LayerStore, LayerError> {
        for d in ["layers/tmp", "l"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(io_err(p.display().to_string()))?;
        }
        Ok(LayerStore {
            root: root.to_path_buf(),
        })
    }

    fn dir(&self, chain_id: &Digest) -> PathBuf {
        self.root.join("layers").join(chain_id.hex())
    }

    pub fn diff_dir(&self, chain_id: &Digest) -> PathBuf {
        self.dir(chain_id).join("diff")
    }

    /// The short path (`<root>/l/<link>`) naming this layer's diff in overlay options.
    pub fn link_path(&self, info: &LayerInfo) -> PathBuf {
        self.root.join("l").join(&info.link)
    }

    pub fn has(&self, chain_id: &Digest) -> bool {
        self.dir(chain_id).join("layer.json").exists()
    }

    pub fn info(&self, chain_id: &Digest) -> Result<LayerInfo, LayerError> {
        let p = self.dir(chain_id).join("layer.json");
        let data = fs::read(&p).map_err(io_err(format!("{chain_id}")))?;
        serde_json::from_slice(&data).map_err(|e| LayerError::Io {
            what: chain_id.to_string(),
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })
    }

    /// Unpacks one layer from its (compressed) stream into a private directory and verifies its
    /// `diff_id`. Nothing is visible until `PendingLayer::install`; dropped, it leaves nothing.
    pub fn unpack_stream(
        &self,
        compressed: impl Read + Send,
        compression: Compression,
        diff_id: &Digest,
        chain_id: &Digest,
        parent: Option<&Digest>,
    ) -> Result<PendingLayer, LayerError> {
        let tmp = self.root.join("layers/tmp").join(crate::staging::name(""));
        let link = chain_id.hex()[..26].to_string();
        let info = LayerInfo {
            chain_id: chain_id.clone(),
            diff_id: diff_id.clone(),
            parent: parent.cloned(),
            size: 0,
            link,
        };
        let mut pending = PendingLayer {
            store: self.clone(),
            tmp,
            info,
            installed: false,
        };
        pending.info.size = pending.unpack(compressed, compression)?;
        Ok(pending)
    }

    /// Makes an already-written tree in the overlay "diff" form (a build step's writable layer,
    /// whiteouts as 0/0 character devices) the layer `chain_id`: it is moved (renamed, never
    /// copied) into staging and installed. If the layer exists already, `diff` is removed instead.
    pub fn adopt(
        &self,
        diff: &Path,
        diff_id: &Digest,
        chain_id: &Digest,
        parent: Option<&Digest>,
    ) -> Result<LayerInfo, LayerError> {
        let what = chain_id.to_string();
        if self.has(chain_id) {
            fs::remove_dir_all(diff).map_err(io_err(what))?;
            return self.info(chain_id);
        }
        let tmp = self.root.join("layers/tmp").join(crate::staging::name(""));
        fs::create_dir(&tmp).map_err(io_err(what.clone()))?;
        if let Err(e) = fs::rename(diff, tmp.join("diff")) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(LayerError::Io { what, source: e });
        }
        let info = LayerInfo {
            chain_id: chain_id.clone(),
            diff_id: diff_id.clone(),
            parent: parent.cloned(),
            size: crate::tree::diff::tree_size(&tmp.join("diff")),
            link: chain_id.hex()[..26].to_string(),
        };
        let installed = self.install(&tmp, &info);
        if installed.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        installed.map(|()| info)
    }

    /// Writes `layer.json`, links `l/<link>` and renames the finished directory into place.
    fn install(&self, tmp: &Path, info: &LayerInfo) -> Result<(), LayerError> {
        let what = info.chain_id.to_string();
        let meta = serde_json::to_vec(info).expect("layer info serializes");
        fs::write(tmp.join("layer.json"), meta).map_err(io_err(what.clone()))?;
        let link = self.root.join("l").join(&info.link);
        let target = format!("../layers/{}/diff", info.chain_id.hex());
        match std::os::unix::fs::symlink(&target, &link) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(LayerError::Io { what, source: e }),
        }
        match fs::rename(tmp, self.dir(&info.chain_id)) {
            Ok(()) => Ok(()),
            // Someone else installed it first (ENOTEMPTY / EEXIST): theirs is as good as ours.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST)) => {
                let _ = fs::remove_dir_all(tmp);
                Ok(())
            }
            Err(e) => Err(LayerError::Io { what, source: e }),
        }
    }

    /// Every installed layer.
    pub fn list(&self) -> Vec<LayerInfo> {
        let Ok(rd) = fs::read_dir(self.root.join("layers")) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| {
                Digest::parse(&format!("sha256:{}", e.file_name().to_string_lossy())).ok()
            })
            .filter_map(|d| self.info(&d).ok())
            .collect()
    }

    /// Removes every layer not in `live`. Unpack directories left by dead processes go with
    /// `reclaim_staging`.
    pub fn gc(&self, live: &HashSet<Digest>) -> Vec<LayerInfo> {
        let mut removed = Vec::new();
        for info in self.list() {
            if live.contains(&info.chain_id) {
                continue;
            }
            let _ = fs::remove_file(self.root.join("l").join(&info.link));
            // Rename first so a crash mid-removal never leaves a half layer under its real name.
            let doomed = self
                .root
                .join("layers/tmp")
                .join(format!("gc-{}", info.chain_id.hex()));
            if fs::rename(self.dir(&info.chain_id), &doomed).is_ok() {
                let _ = fs::remove_dir_all(&doomed);
                removed.push(info);
            }
        }
        removed
    }

    /// Removes unpack and scratch directories dead processes left in `layers/tmp`; returns the
    /// disk space freed.
    pub fn reclaim_staging(&self) -> u64 {
        crate::staging::reclaim(&self.root.join("layers/tmp"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_image_spec() {
        let a = Digest::of_bytes(b"a");
        let b = Digest::of_bytes(b"b");
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], Digest::of_bytes(format!("{a} {b}").as_bytes()));
    }
}
