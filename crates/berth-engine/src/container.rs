//! `Engine`: one store (images, layers, snapshots, container records) and one runroot, opened
//! once per command, and the paths of a container's files. What the engine does lives beside
//! it: `create`, `launch`, `lifecycle` (finish, stop, kill, remove), `reconcile`, `images`,
//! `exec`, `observe`, `inspect`.

use crate::options::RunOptions;
use crate::record::{Record, Records};
use berth_image::snapshot::Snapshots;
use berth_image::store::Store;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{EngineError, Result};

/// The engine over one store and runroot.
pub struct Engine {
    /// Registries (host[:port]) that may be reached over plain HTTP besides loopback ones.
    pub insecure: Vec<String>,
    pub root: PathBuf,
    pub runroot: PathBuf,
    pub store: Store,
    pub snapshots: Snapshots,
    pub records: Records,
    pub runtime_root: PathBuf,
    /// berth's networks, opened on first use (`network::Engine::networks`).
    pub(crate) net: std::sync::OnceLock<berth_net::Networks>,
    /// What the user should be told but is no failure (Docker's `Warnings`): taken by the CLI
    /// or the API after a call.
    warnings: std::sync::Mutex<Vec<String>>,
}

impl Engine {
    pub fn open(root: &Path, runroot: &Path) -> Result<Engine> {
        // The store holds every container's environment and logs (secrets): root's alone. An
        // older store made with a wider mode is tightened here.
        use crate::storedir::{check, make_private, Kind};
        // Both are checked before either is made or changed.
        check(root, Kind::Root)?;
        check(runroot, Kind::Runroot)?;
        make_private(root)?;
        make_private(runroot)?;
        let store = Store::open(root).map_err(EngineError::other)?;
        let snapshots = Snapshots::open(root, store.layers.clone()).map_err(EngineError::other)?;
        let records = Records::open(root).map_err(EngineError::other)?;
        let runtime_root = runroot.join("runtime");
        fs::create_dir_all(&runtime_root)
            .map_err(|e| EngineError::msg(format!("{}: {e}", runtime_root.display())))?;
        fs::create_dir_all(root.join("volumes"))
            .map_err(|e| EngineError::msg(format!("{}: {e}", root.display())))?;
        Ok(Engine {
            insecure: Vec::new(),
            root: root.into(),
            runroot: runroot.into(),
            store,
            snapshots,
            records,
            runtime_root,
            net: std::sync::OnceLock::new(),
            warnings: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Notes a warning for whoever called (see `take_warnings`).
    pub(crate) fn warn(&self, w: impl Into<String>) {
        if let Ok(mut v) = self.warnings.lock() {
            v.push(w.into());
        }
    }

    /// The warnings noted since the last call.
    pub fn take_warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }

    /// The options a container was created with (for `start`, `restart` and the monitor).
    pub fn options(&self, rec: &Record) -> Result<RunOptions> {
        let p = self.records.dir(&rec.id).join("options.json");
        let data = fs::read(&p).map_err(|e| EngineError::msg(format!("{}: {e}", p.display())))?;
        let mut o: RunOptions = serde_json::from_slice(&data)
            .map_err(|e| EngineError::msg(format!("{}: {e}", p.display())))?;
        o.auto_remove = rec.auto_remove;
        Ok(o)
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.records.dir(id).join(format!("{id}-json.log"))
    }

    pub(crate) fn rootfs(&self, id: &str) -> PathBuf {
        self.records.dir(id).join("rootfs")
    }

    /// The mounts and layers of a container, for `explain` and `inspect`.
    pub fn snapshot_mount(&self, id: &str) -> Option<berth_image::snapshot::Mount> {
        self.snapshots.mounts(id).ok()
    }

    pub fn upper_dir(&self, id: &str) -> PathBuf {
        self.snapshots.upper_dir(id)
    }
}
