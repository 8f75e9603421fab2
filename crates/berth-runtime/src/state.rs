//! One container's state on disk: `<root>/<id>/state.json`, written atomically (temp file + rename),
//! and the `exec.fifo` start gate beside it. The status is derived from the live system (is the init
//! alive with the same start time? is the fifo still there? is the cgroup frozen?), never trusted from disk.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What berth keeps about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    pub pid: i32,
    /// Start time of `pid` (field 22 of /proc/PID/stat), to notice pid reuse.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339, UTC, nanoseconds.
    pub created: String,
    pub owner: String,
    pub cgroup: Option<berth_cgroups::Cgroup>,
    /// The validated spec the container was created from (hooks, process defaults for exec).
    pub config: oci_spec::runtime::Spec,
}

pub fn container_dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

impl ContainerState {
    pub fn load(root: &Path, id: &str) -> Result<ContainerState> {
        let path = container_dir(root, id).join(STATE_FILE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::msg(format!("container {id:?} does not exist")))
            }
            Err(e) => return Err(e).with_ctx(|| path.display().to_string()),
        };
        serde_json::from_slice(&data)
            .with_ctx(|| format!("container {id:?}: state file {}", path.display()))
    }

    /// Replaces the record atomically: a reader sees the old one or this one.
    pub fn save(&self, root: &Path) -> Result<()> {
        self.stage(root)?;
        self.commit(root)
    }

    /// Writes the record beside `state.json`, for `commit` to put in place (create writes it while
    /// the init finishes its set-up, and only renames it once the init is ready).
    pub fn stage(&self, root: &Path) -> Result<()> {
        let data = serde_json::to_vec(self).ctx("encode state")?;
        let tmp = container_dir(root, &self.id).join(".state.json.tmp");
        let mut f = fs::File::create(&tmp).with_ctx(|| tmp.display().to_string())?;
        f.write_all(&data).with_ctx(|| tmp.display().to_string())
    }

    /// Puts the record `stage` wrote in place.
    pub fn commit(&self, root: &Path) -> Result<()> {
        let dir = container_dir(root, &self.id);
        fs::rename(dir.join(".state.json.tmp"), dir.join(STATE_FILE))
            .with_ctx(|| format!("save state of {:?}", self.id))
    }

    pub fn dir(&self, root: &Path) -> PathBuf {
        container_dir(root, &self.id)
    }

    /// Is the init process still the one we started, and alive (not a zombie)?
    pub fn init_alive(&self) -> bool {
        self.pid > 0
            && matches!(proc_stat(self.pid), Some((state, start)) if start == self.pid_start && state != 'Z' && state != 'X')
    }

    pub fn status(&self, root: &Path) -> Status {
        if !self.init_alive() {
            return Status::Stopped;
        }
        if self.dir(root).join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if let Some(cg) = &self.cgroup {
            if cg.is_frozen().unwrap_or(false) {
                return Status::Paused;
            }
        }
        Status::Running
    }

    pub fn annotations(&self) -> std::collections::HashMap<String, String> {
        self.config.annotations().clone().unwrap_or_default()
    }

    /// The runtime-spec State JSON plus runc's `rootfs`, `created` and `owner`.
    pub fn to_oci_json(&self, status: Status) -> serde_json::Value {
        let pid = if status == Status::Stopped {
            0
        } else {
            self.pid
        };
        serde_json::json!({
            "ociVersion": "1.1.0",
            "id": self.id,
            "pid": pid,
            "status": status.to_string(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
            "annotations": self.annotations(),
        })
    }
}

pub use berth_sys::process::stat as proc_stat;

/// Now as RFC 3339 with nanoseconds, UTC, as runc prints it.
pub fn rfc3339_now() -> String {
    berth_sys::time::now_rfc3339_nanos()
}
