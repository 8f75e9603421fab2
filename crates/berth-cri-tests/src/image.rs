//! The two images a node needs here, built with no network: a `pause` sandbox image (berth's
//! static pause, `pause/pause.rs`, built by build.rs: one 1.3 KiB file) and a `busybox` workload
//! image (Debian's busybox-static, every applet). Each is one uncompressed OCI layer, its config
//! and an OCI manifest, as bytes ready to push; nothing here talks to a registry.

use sha2::{Digest as _, Sha256};
use std::path::Path;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// berth's pause, a static executable with no libc (see `pause/pause.rs`): it waits for ever,
/// reaps the orphans of a shared PID namespace and leaves with status 0 on SIGTERM or SIGINT.
pub const PAUSE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pause"));

/// `sha256:<hex>` of `data`.
pub fn digest(data: &[u8]) -> String {
    let hash = Sha256::digest(data);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// One image as a registry stores it.
pub struct Image {
    pub layer: Vec<u8>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
}

impl Image {
    /// An image whose single layer is the tree at `rootfs`, started as `entrypoint`.
    pub fn from_rootfs(rootfs: &Path, entrypoint: &[&str], cmd: &[&str]) -> Image {
        let layer = tar_of(rootfs);
        let config = serde_json::json!({
            "architecture": goarch(),
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Entrypoint": entrypoint,
                "Cmd": cmd,
                "WorkingDir": "/",
            },
            "rootfs": {"type": "layers", "diff_ids": [digest(&layer)]},
            "history": [{"created_by": "berth-cri-tests: busybox-static"}],
        });
        let config = serde_json::to_vec(&config).expect("config JSON");
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest(&config), "size": config.len()},
            "layers": [{"mediaType": OCI_LAYER, "digest": digest(&layer), "size": layer.len()}],
        });
        let manifest = serde_json::to_vec(&manifest).expect("manifest JSON");
        Image {
            layer,
            config,
            manifest,
        }
    }

    /// The sandbox image: `/pause` alone, its entrypoint.
    pub fn pause(scratch: &Path) -> Image {
        let rootfs = scratch.join("pause-rootfs");
        std::fs::create_dir_all(&rootfs).expect("pause rootfs");
        let pause = rootfs.join("pause");
        std::fs::write(&pause, PAUSE).expect("pause binary");
        std::fs::set_permissions(&pause, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("pause mode");
        Image::from_rootfs(&rootfs, &["/pause"], &[])
    }

    /// The workload image: every busybox applet (httpd, wget, nc, dd…), `sh` by default.
    pub fn busybox(scratch: &Path) -> Image {
        let rootfs = scratch.join("busybox-rootfs");
        berth_runtime_tests::bundle::make_rootfs(&rootfs);
        Image::from_rootfs(&rootfs, &[], &["sh"])
    }
}

/// Go's name for this machine's architecture, as image configs carry it.
fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// An uncompressed tar of the tree at `dir` (symlinks kept as links, owners root).
fn tar_of(dir: &Path) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Deterministic);
    builder
        .append_dir_all(".", dir)
        .unwrap_or_else(|e| panic!("tar of {}: {e}", dir.display()));
    builder.into_inner().expect("tar")
}
