//! Container records: `containers/<id>/meta.json`, written atomically, one `flock` per container so
//! two berth processes never act on it at once, and a store-wide lock for names. A record says what
//! the user asked for and what last happened; the truth about a live process is re-checked on read.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("No such container: {0}")]
    NoSuch(String),
    #[error("container name \"/{0}\" is already in use")]
    NameInUse(String),
    #[error("invalid container name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    BadName(String),
    #[error("multiple containers match {0:?}: be more precise")]
    Ambiguous(String),
    #[error("container {id}: {source}")]
    Io { id: String, source: io::Error },
    #[error("container {id}: corrupt record: {source}")]
    Corrupt {
        id: String,
        source: serde_json::Error,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct State {
    /// created, running, paused, restarting, exited, dead
    pub status: String,
    pub pid: i32,
    pub exit_code: i32,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    /// The process that watches the container (a detached container's monitor, or the foreground
    /// `berth run`), so a dead watcher can be told from a live container.
    #[serde(default)]
    pub monitor_pid: i32,
    /// The watcher's start time (field 22 of /proc/PID/stat): a reused pid is not our watcher.
    #[serde(default)]
    pub monitor_start: u64,
    #[serde(default)]
    pub restart_count: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    pub id: String,
    pub name: String,
    pub created: String,
    /// The image as the user named it, and its ID.
    pub image: String,
    pub image_id: String,
    /// The image's layer chain (bottom to top), for the snapshot.
    pub layers: Vec<String>,
    pub path: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub hostname: String,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stop_signal: String,
    pub stop_timeout: Option<u64>,
    pub auto_remove: bool,
    /// no, on-failure[:N], always, unless-stopped
    pub restart_policy: String,
    /// Resource and security settings as given (Docker's HostConfig subset), for inspect.
    pub host_config: serde_json::Value,
    /// Volumes and binds: (source on the host, destination, read-only, kind).
    #[serde(default)]
    pub mounts: Vec<MountRecord>,
    pub state: State,
    #[serde(default)]
    pub log_max_size: Option<u64>,
    #[serde(default)]
    pub log_max_file: Option<u32>,
    /// Set by `stop`: an unless-stopped or always policy does not restart it.
    #[serde(default)]
    pub manually_stopped: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct MountRecord {
    #[serde(rename = "Type")]
    pub kind: String,
    pub name: Option<String>,
    pub source: String,
    pub destination: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    /// An anonymous volume made for this container (removed by `rm -v`).
    #[serde(default)]
    pub anonymous: bool,
}

/// An `flock` held until dropped.
pub struct Lock(#[allow(dead_code)] File);

pub fn flock(path: &Path) -> io::Result<Lock> {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    loop {
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(Lock(f));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Writes `data` to `path` through a temp file and a rename: readers see the old or the new
/// record, never a torn one, whatever process dies when. No fsync (it cost a millisecond per
/// write on the hot path): ext4's replace-by-rename flushes the data before the rename commits,
/// and after a power loss `reconcile` corrects what a stale record says.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = File::create(&tmp)?;
    f.write_all(data)?;
    drop(f);
    fs::rename(&tmp, path)
}

#[derive(Debug, Clone)]
pub struct Records {
    dir: PathBuf,
}

pub fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

impl Records {
    pub fn open(root: &Path) -> io::Result<Records> {
        let dir = root.join("containers");
        fs::create_dir_all(&dir)?;
        Ok(Records { dir })
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// The store-wide lock: held while names are checked and taken, or containers listed for removal.
    pub fn names_lock(&self) -> io::Result<Lock> {
        flock(&self.dir.join(".names.lock"))
    }

    /// The container's own lock.
    pub fn lock(&self, id: &str) -> Result<Lock, RecordError> {
        flock(&self.dir(id).join("lock")).map_err(|source| match source.kind() {
            // Removed by someone else (a racing `rm`) since it was resolved.
            io::ErrorKind::NotFound => RecordError::NoSuch(id.into()),
            _ => RecordError::Io {
                id: id.into(),
                source,
            },
        })
    }

    pub fn load(&self, id: &str) -> Result<Record, RecordError> {
        let p = self.dir(id).join("meta.json");
        let data = fs::read(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => RecordError::NoSuch(id.into()),
            _ => RecordError::Io {
                id: id.into(),
                source: e,
            },
        })?;
        serde_json::from_slice(&data).map_err(|source| RecordError::Corrupt {
            id: id.into(),
            source,
        })
    }

    pub fn save(&self, r: &Record) -> Result<(), RecordError> {
        let data = serde_json::to_vec_pretty(r).expect("record serializes");
        write_atomic(&self.dir(&r.id).join("meta.json"), &data).map_err(|source| RecordError::Io {
            id: r.id.clone(),
            source,
        })
    }

    /// Every record (half-made directories without `meta.json` are skipped).
    pub fn list(&self) -> Vec<Record> {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<Record> = rd
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| self.load(&e.file_name().to_string_lossy()).ok())
            .collect();
        out.sort_by(|a, b| b.created.cmp(&a.created));
        out
    }

    /// Container directories that have no record (a crash between mkdir and the first save).
    pub fn orphans(&self) -> Vec<String> {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        rd.flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.') && !self.dir(n).join("meta.json").exists())
            .collect()
    }

    /// Resolves a full ID, a unique ID prefix, or a name.
    pub fn resolve(&self, what: &str) -> Result<String, RecordError> {
        let what = what.strip_prefix('/').unwrap_or(what);
        if self.dir(what).join("meta.json").exists() && what.len() == 64 {
            return Ok(what.into());
        }
        let all = self.list();
        if let Some(r) = all.iter().find(|r| r.name == what) {
            return Ok(r.id.clone());
        }
        let hits: Vec<&Record> = all.iter().filter(|r| r.id.starts_with(what)).collect();
        match hits.len() {
            0 => Err(RecordError::NoSuch(what.into())),
            1 => Ok(hits[0].id.clone()),
            _ => Err(RecordError::Ambiguous(what.into())),
        }
    }
}
