//! Manifests, indexes, descriptors and image configs: the OCI image-spec and Docker schema2 shapes,
//! parsed into small typed views. Raw bytes are kept by the content store, so what we push and save is
//! byte-for-byte what we pulled; these types are for reading, never for re-serializing a pulled blob.

use crate::digest::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// The largest manifest, index or config berth reads (the distribution spec's own bound).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// What a layer blob is compressed with, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn of_layer(media_type: &str) -> Option<Compression> {
        match media_type {
            OCI_LAYER | "application/vnd.oci.image.layer.nondistributable.v1.tar" => {
                Some(Compression::None)
            }
            OCI_LAYER_GZIP
            | DOCKER_LAYER_GZIP
            | DOCKER_FOREIGN_LAYER
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" => {
                Some(Compression::Gzip)
            }
            OCI_LAYER_ZSTD | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
                Some(Compression::Zstd)
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

impl Platform {
    /// The platform of this host (`linux/amd64`, `linux/arm64/v8`).
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        let variant = (architecture == "arm64").then(|| "v8".to_string());
        Platform {
            architecture: architecture.into(),
            os: "linux".into(),
            variant,
            os_version: None,
        }
    }

    /// Parses `os/arch[/variant]` (Docker's `--platform`).
    pub fn parse(s: &str) -> Option<Platform> {
        let mut parts = s.split('/');
        let os = parts.next().filter(|p| !p.is_empty())?;
        let arch = parts.next().filter(|p| !p.is_empty())?;
        let variant = parts.next().map(str::to_string);
        if parts.next().is_some() {
            return None;
        }
        let arch = match arch {
            "x86_64" | "x86-64" => "amd64",
            "aarch64" => "arm64",
            a => a,
        };
        Some(Platform {
            architecture: arch.into(),
            os: os.into(),
            variant,
            os_version: None,
        })
    }

    /// Whether an index entry for `other` serves a request for `self`.
    pub fn matches(&self, other: &Platform) -> bool {
        if self.os != other.os || self.architecture != other.architecture {
            return false;
        }
        match (&self.variant, &other.variant) {
            (Some(want), Some(have)) => want == have,
            // arm64 images often leave the variant out; v8 is implied.
            (Some(want), None) => want == "v8" && self.architecture == "arm64",
            _ => true,
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A manifest or an index, told apart by media type (from the registry's Content-Type, the
/// referring descriptor or the document's own `mediaType`) or, failing all three, by shape.
#[allow(clippy::large_enum_variant)] // parsed once per pull; boxing buys nothing
pub enum Document {
    Manifest(Manifest),
    Index(Index),
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("unsupported manifest media type {0:?}")]
    UnknownMediaType(String),
    #[error("malformed manifest: {0}")]
    Malformed(serde_json::Error),
    #[error("manifest schema version {0} is not supported (only 2)")]
    SchemaVersion(u32),
    /// The document's type and its fields or labels disagree (CVE-2021-41190): refused, since two
    /// readers could take the same bytes for two different images.
    #[error("ambiguous document: {0}")]
    Ambiguous(String),
}

/// Whether a media type names an index (true), a manifest (false), or neither (an error).
fn kind_of(media_type: &str) -> Result<bool, ManifestError> {
    match media_type {
        OCI_INDEX | DOCKER_LIST => Ok(true),
        OCI_MANIFEST | DOCKER_MANIFEST => Ok(false),
        other if other.starts_with("application/vnd.docker.distribution.manifest.v1") => Err(
            ManifestError::UnknownMediaType(format!("{other} (Docker schema 1 is deprecated)")),
        ),
        other => Err(ManifestError::UnknownMediaType(other.to_string())),
    }
}

/// A Content-Type that says something: parameters dropped, generic types ignored.
fn meaningful(content_type: Option<&str>) -> Option<&str> {
    content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .filter(|c| {
            !c.is_empty()
                && !matches!(
                    *c,
                    "application/json" | "text/plain" | "application/octet-stream"
                )
        })
}

impl Document {
    /// Parses a manifest or index served with `content_type` (a registry's header, or None).
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Document, ManifestError> {
        Document::parse_as(bytes, content_type, None)
    }

    /// Parses a document that `descriptor_type` (the media type of the descriptor that pointed at
    /// it) says it is. Every label present must agree with the others and with the fields: a
    /// manifest may not carry `manifests`, an index may not carry `layers` or `config`.
    pub fn parse_as(
        bytes: &[u8],
        content_type: Option<&str>,
        descriptor_type: Option<&str>,
    ) -> Result<Document, ManifestError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            #[serde(default)]
            schema_version: u32,
            #[serde(default)]
            media_type: Option<String>,
            #[serde(default)]
            manifests: Option<serde_json::Value>,
            #[serde(default)]
            layers: Option<serde_json::Value>,
            #[serde(default)]
            config: Option<serde_json::Value>,
            #[serde(default)]
            fs_layers: Option<serde_json::Value>,
        }
        let probe: Probe = crate::gojson::from_slice(bytes).map_err(ManifestError::Malformed)?;
        if probe.fs_layers.is_some() {
            return Err(ManifestError::UnknownMediaType(
                "Docker schema 1 (fsLayers) is deprecated".into(),
            ));
        }
        let labels = [
            ("the Content-Type", meaningful(content_type)),
            ("the descriptor", descriptor_type.filter(|d| !d.is_empty())),
            (
                "the mediaType field",
                probe.media_type.as_deref().filter(|m| !m.is_empty()),
            ),
        ];
        let mut named: Option<(&str, &str)> = None;
        for (source, label) in labels {
            let Some(label) = label else { continue };
            kind_of(label)?;
            match named {
                Some((first, seen)) if seen != label => {
                    return Err(ManifestError::Ambiguous(format!(
                        "{first} says {seen} but {source} says {label}"
                    )))
                }
                Some(_) => {}
                None => named = Some((source, label)),
            }
        }
        let has_manifest_fields = probe.layers.is_some() || probe.config.is_some();
        let is_index = match named {
            Some((_, label)) => kind_of(label)?,
            None => match (probe.manifests.is_some(), has_manifest_fields) {
                (true, true) => {
                    return Err(ManifestError::Ambiguous(
                        "untyped document with both manifests and layers/config".into(),
                    ))
                }
                (is_index, _) => is_index,
            },
        };
        if is_index && has_manifest_fields {
            return Err(ManifestError::Ambiguous(
                "an index with layers or config fields".into(),
            ));
        }
        if !is_index && probe.manifests.is_some() {
            return Err(ManifestError::Ambiguous(
                "a manifest with a manifests field".into(),
            ));
        }
        if probe.schema_version != 2 {
            return Err(ManifestError::SchemaVersion(probe.schema_version));
        }
        if is_index {
            Ok(Document::Index(
                crate::gojson::from_slice(bytes).map_err(ManifestError::Malformed)?,
            ))
        } else {
            Ok(Document::Manifest(
                crate::gojson::from_slice(bytes).map_err(ManifestError::Malformed)?,
            ))
        }
    }
}

impl Index {
    /// The manifest for `want`, or the platforms on offer when none matches.
    pub fn select(&self, want: &Platform) -> Result<&Descriptor, Vec<String>> {
        self.manifests
            .iter()
            .find(|d| d.platform.as_ref().is_some_and(|p| want.matches(p)))
            .ok_or_else(|| {
                self.manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                    .collect()
            })
    }
}

/// The parts of an image config (OCI or Docker) berth reads. Unknown fields are ignored here and kept
/// in the stored blob.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<RunConfig>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
}

/// An image's `HEALTHCHECK` (Docker's `Healthcheck`): `Test` is `["NONE"]`, `["CMD", arg…]` or
/// `["CMD-SHELL", command]`; durations are nanoseconds, zero meaning "the default".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    #[serde(default)]
    pub test: Vec<String>,
    #[serde(default)]
    pub interval: i64,
    #[serde(default)]
    pub timeout: i64,
    #[serde(default)]
    pub start_period: i64,
    #[serde(default)]
    pub start_interval: i64,
    #[serde(default)]
    pub retries: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

impl ImageConfig {
    pub fn parse(bytes: &[u8]) -> Result<ImageConfig, serde_json::Error> {
        crate::gojson::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_selection_and_variants() {
        let amd = Platform::parse("linux/amd64").unwrap();
        let arm = Platform::parse("linux/arm64").unwrap();
        assert!(amd.matches(&Platform::parse("linux/amd64").unwrap()));
        assert!(!amd.matches(&arm));
        let armv8 = Platform::parse("linux/arm64/v8").unwrap();
        assert!(armv8.matches(&arm), "arm64 without a variant serves v8");
        assert!(Platform::parse("linux").is_none());
        assert_eq!(
            Platform::parse("linux/x86_64").unwrap().architecture,
            "amd64"
        );
    }

    #[test]
    fn documents_are_told_apart_and_unknown_types_named() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let m = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{d}","size":2}},"layers":[]}}"#
        );
        assert!(matches!(
            Document::parse(m.as_bytes(), None).unwrap(),
            Document::Manifest(_)
        ));
        let i = r#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(
            Document::parse(i.as_bytes(), None).unwrap(),
            Document::Index(_)
        ));
        let e = Document::parse(m.as_bytes(), Some("application/x-weird"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("application/x-weird"), "{e}");
    }

    fn ambiguous(bytes: &str, ct: Option<&str>, desc: Option<&str>) -> String {
        match Document::parse_as(bytes.as_bytes(), ct, desc) {
            Err(e @ ManifestError::Ambiguous(_)) => e.to_string(),
            Err(e) => panic!("not refused as ambiguous: {e}"),
            Ok(_) => panic!("accepted: {bytes}"),
        }
    }

    #[test]
    fn documents_whose_type_and_fields_disagree_are_refused() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let config = format!(r#""config":{{"mediaType":"{OCI_CONFIG}","digest":"{d}","size":2}}"#);
        let desc = format!(r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":2}}"#);
        let both = format!(r#"{{"schemaVersion":2,{config},"layers":[],"manifests":[{desc}]}}"#);
        // A manifest carrying manifests, an index carrying layers or config.
        assert_eq!(
            ambiguous(&both, Some(OCI_MANIFEST), None),
            "ambiguous document: a manifest with a manifests field"
        );
        assert_eq!(
            ambiguous(&both, Some(OCI_INDEX), None),
            "ambiguous document: an index with layers or config fields"
        );
        let index_with_config = format!(r#"{{"schemaVersion":2,{config},"manifests":[]}}"#);
        assert_eq!(
            ambiguous(&index_with_config, None, Some(DOCKER_LIST)),
            "ambiguous document: an index with layers or config fields"
        );
        assert_eq!(
            ambiguous(&both, None, None),
            "ambiguous document: untyped document with both manifests and layers/config"
        );
        // The mediaType field contradicting the Content-Type or the descriptor.
        let typed =
            format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{desc}]}}"#);
        assert_eq!(
            ambiguous(&typed, Some(OCI_MANIFEST), None),
            format!("ambiguous document: the Content-Type says {OCI_MANIFEST} but the mediaType field says {OCI_INDEX}")
        );
        assert_eq!(
            ambiguous(&typed, None, Some(DOCKER_LIST)),
            format!("ambiguous document: the descriptor says {DOCKER_LIST} but the mediaType field says {OCI_INDEX}")
        );
        // Agreeing labels, and a generic Content-Type, are fine.
        assert!(matches!(
            Document::parse_as(typed.as_bytes(), Some("application/json"), Some(OCI_INDEX)),
            Ok(Document::Index(_))
        ));
    }

    #[test]
    fn duplicate_keys_in_a_manifest_read_as_go_reads_them() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let m = format!(
            r#"{{"schemaVersion":1,"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{d}","size":9}},"config":{{"mediaType":"{OCI_CONFIG}","digest":"{d}","size":2}},"Layers":[]}}"#
        );
        match Document::parse(m.as_bytes(), Some(OCI_MANIFEST)).unwrap() {
            Document::Manifest(m) => assert_eq!(m.config.size, 2),
            Document::Index(_) => panic!("an index"),
        }
        let c = ImageConfig::parse(
            br#"{"architecture":"amd64","os":"linux","OS":"linux","config":{"Env":["A=1"],"Env":["B=2"]},"rootfs":{"type":"layers","diff_ids":[]}}"#,
        )
        .unwrap();
        assert_eq!(c.config.unwrap().env, Some(vec!["B=2".to_string()]));
    }
}
