//! Images built in memory by the tests: layer tars written header by header (so hostile names,
//! GNU sparse entries and whiteouts are possible), compressed as asked, with their digests and
//! diff_ids; OCI configs, manifests, indexes and on-disk OCI layouts. Nothing here trusts berth.

use super::sha256;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

/// A layer tar written entry by entry with raw headers: names and link targets go in as given.
pub struct LayerTar {
    tar: tar::Builder<Vec<u8>>,
}

impl Default for LayerTar {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerTar {
    pub fn new() -> LayerTar {
        LayerTar {
            tar: tar::Builder::new(Vec::new()),
        }
    }

    /// A GNU long-name (`L`) or long-link (`K`) record for a name that does not fit in 100 bytes.
    fn long_record(&mut self, kind: tar::EntryType, name: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().expect("gnu").name[..13].copy_from_slice(b"././@LongLink");
        h.set_entry_type(kind);
        h.set_size(name.len() as u64 + 1);
        h.set_mode(0o644);
        h.set_cksum();
        let mut data = name.to_vec();
        data.push(0);
        self.tar.append(&h, &data[..]).expect("in-memory tar");
    }

    fn header(&mut self, kind: tar::EntryType, name: &[u8], link: &[u8], mode: u32) -> tar::Header {
        if name.len() > 100 {
            self.long_record(tar::EntryType::GNULongName, name);
        }
        if link.len() > 100 {
            self.long_record(tar::EntryType::GNULongLink, link);
        }
        let mut h = tar::Header::new_gnu();
        let n = name.len().min(100);
        h.as_gnu_mut().expect("gnu").name[..n].copy_from_slice(&name[..n]);
        let l = link.len().min(100);
        h.as_gnu_mut().expect("gnu").linkname[..l].copy_from_slice(&link[..l]);
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(0);
        h
    }

    /// Any entry, its name and link target written byte for byte (`../x`, `/abs`, `.wh.x`).
    pub fn raw(mut self, kind: tar::EntryType, name: &str, link: &str, data: &[u8]) -> LayerTar {
        let mode = if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        };
        let mut h = self.header(kind, name.as_bytes(), link.as_bytes(), mode);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.tar.append(&h, data).expect("in-memory tar");
        self
    }

    pub fn dir(mut self, name: &str, mode: u32) -> LayerTar {
        let mut h = self.header(tar::EntryType::Directory, name.as_bytes(), b"", mode);
        h.set_cksum();
        self.tar.append(&h, &[][..]).expect("in-memory tar");
        self
    }

    /// A regular file owned by `uid:gid`.
    pub fn owned_file(mut self, name: &str, data: &[u8], uid: u64, gid: u64) -> LayerTar {
        let mut h = self.header(tar::EntryType::Regular, name.as_bytes(), b"", 0o644);
        h.set_size(data.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_cksum();
        self.tar.append(&h, data).expect("in-memory tar");
        self
    }

    pub fn file(mut self, name: &str, data: &[u8], mode: u32) -> LayerTar {
        let mut h = self.header(tar::EntryType::Regular, name.as_bytes(), b"", mode);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.tar.append(&h, data).expect("in-memory tar");
        self
    }

    pub fn symlink(self, name: &str, target: &str) -> LayerTar {
        self.raw(tar::EntryType::Symlink, name, target, b"")
    }

    pub fn hardlink(self, name: &str, target: &str) -> LayerTar {
        self.raw(tar::EntryType::Link, name, target, b"")
    }

    /// `.wh.NAME` in `dir` (empty: the root).
    pub fn whiteout(self, dir: &str, name: &str) -> LayerTar {
        let path = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&path, b"", 0o644)
    }

    /// A GNU sparse file of `real_size` bytes that is all hole but its last 512-byte block
    /// (`END` at the very end): the tar holds 512 bytes of data.
    pub fn sparse(mut self, name: &str, real_size: u64) -> LayerTar {
        assert!(real_size >= 512 && real_size.is_multiple_of(512));
        let mut h = self.header(tar::EntryType::GNUSparse, name.as_bytes(), b"", 0o644);
        {
            let gnu = h.as_gnu_mut().expect("gnu");
            gnu.sparse[0].set_offset(real_size - 512);
            gnu.sparse[0].set_length(512);
            gnu.set_real_size(real_size);
        }
        h.set_size(512);
        h.set_cksum();
        let mut data = [0u8; 512];
        data[509..].copy_from_slice(b"END");
        self.tar.append(&h, &data[..]).expect("in-memory tar");
        self
    }

    /// The tar stream, end-of-archive blocks included.
    pub fn finish(self) -> Vec<u8> {
        self.tar.into_inner().expect("in-memory tar")
    }
}

/// One layer blob as it goes to a registry.
#[derive(Debug, Clone)]
pub struct Layer {
    pub blob: Vec<u8>,
    pub media_type: String,
    /// Digest of the blob as stored (compressed).
    pub digest: String,
    /// Digest of the uncompressed tar.
    pub diff_id: String,
}

impl Layer {
    pub fn new(tar: &[u8], c: Compression) -> Layer {
        let blob = match c {
            Compression::None => tar.to_vec(),
            Compression::Gzip => {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(tar).expect("in-memory gzip");
                gz.finish().expect("in-memory gzip")
            }
            Compression::Zstd => zstd::stream::encode_all(tar, 3).expect("in-memory zstd"),
        };
        Layer {
            digest: sha256(&blob),
            diff_id: sha256(tar),
            blob,
            media_type: c.media_type().into(),
        }
    }

    pub fn with_media_type(mut self, media_type: &str) -> Layer {
        self.media_type = media_type.into();
        self
    }

    /// The first 12 hex digits, as berth's progress lines name the layer.
    pub fn short(&self) -> &str {
        &self.digest["sha256:".len().."sha256:".len() + 12]
    }
}

/// An image: layers, an OCI config and an OCI manifest naming them.
#[derive(Debug, Clone)]
pub struct Image {
    pub layers: Vec<Layer>,
    pub config: Vec<u8>,
    pub config_digest: String,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    pub os: String,
    pub arch: String,
}

impl Image {
    /// A linux/amd64 image over `layers` (bottom first).
    pub fn new(layers: Vec<Layer>) -> Image {
        Image::for_platform(layers, "linux", "amd64")
    }

    pub fn for_platform(layers: Vec<Layer>, os: &str, arch: &str) -> Image {
        let config = json!({
            "created": "2026-01-02T03:04:05Z",
            "architecture": arch,
            "os": os,
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": ["/bin/sh"],
                "Labels": {"org.berth.test": "yes"}
            },
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
            "history": layers.iter().enumerate().map(|(i, _)| json!({
                "created": "2026-01-02T03:04:05Z", "created_by": format!("test layer {i}")
            })).collect::<Vec<_>>(),
        });
        let config = serde_json::to_vec(&config).expect("serializes");
        let mut img = Image {
            layers,
            config_digest: sha256(&config),
            config,
            manifest: Vec::new(),
            manifest_digest: String::new(),
            os: os.into(),
            arch: arch.into(),
        };
        img.set_manifest(None);
        img
    }

    /// An image whose config is `config` as given (bytes, so duplicate keys and odd spellings
    /// survive); its `rootfs.diff_ids` must match `layers`.
    pub fn with_config(layers: Vec<Layer>, config: Vec<u8>) -> Image {
        let mut img = Image {
            layers,
            config_digest: sha256(&config),
            config,
            manifest: Vec::new(),
            manifest_digest: String::new(),
            os: "linux".into(),
            arch: "amd64".into(),
        };
        img.set_manifest(None);
        img
    }

    /// Rewrites the manifest, with `annotations` when given.
    pub fn set_manifest(&mut self, annotations: Option<Value>) {
        let mut m = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": self.config_digest, "size": self.config.len()},
            "layers": self.layers.iter().map(|l| json!({
                "mediaType": l.media_type, "digest": l.digest, "size": l.blob.len()
            })).collect::<Vec<_>>(),
        });
        if let Some(a) = annotations {
            m["annotations"] = a;
        }
        self.manifest = serde_json::to_vec(&m).expect("serializes");
        self.manifest_digest = sha256(&self.manifest);
    }

    /// The image ID berth and Docker show: the config digest.
    pub fn id(&self) -> &str {
        &self.config_digest
    }

    pub fn short_id(&self) -> &str {
        &self.config_digest["sha256:".len().."sha256:".len() + 12]
    }

    pub fn diff_ids(&self) -> Vec<String> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }

    /// This image's descriptor in an index.
    pub fn descriptor(&self) -> Value {
        json!({
            "mediaType": OCI_MANIFEST, "digest": self.manifest_digest, "size": self.manifest.len(),
            "platform": {"os": self.os, "architecture": self.arch},
        })
    }
}

/// An OCI index over `images` (each with its platform).
pub fn index(images: &[&Image]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": images.iter().map(|i| i.descriptor()).collect::<Vec<_>>(),
    }))
    .expect("serializes")
}

/// Writes `image` as an OCI image layout in `dir` (for skopeo's `oci:DIR:TAG`).
pub fn write_oci_layout(dir: &Path, image: &Image, tag: &str) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("layout dir");
    let put = |digest: &str, data: &[u8]| {
        std::fs::write(blobs.join(&digest["sha256:".len()..]), data).expect("layout blob");
    };
    for l in &image.layers {
        put(&l.digest, &l.blob);
    }
    put(&image.config_digest, &image.config);
    put(&image.manifest_digest, &image.manifest);
    let mut desc = image.descriptor();
    desc["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [desc]});
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).expect("serializes"),
    )
    .expect("index.json");
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("oci-layout");
}
