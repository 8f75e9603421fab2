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
    /// The keeper above a detached container's monitor, which takes over the watch if the
    /// monitor is killed (0: none), and its start time.
    #[serde(default)]
    pub keeper_pid: i32,
    #[serde(default)]
    pub keeper_start: u64,
    /// A certainly fatal signal berth sent the container (SIGKILL): the exit status to record if
    /// nobody is left to reap it.
    #[serde(default)]
    pub killed_by: i32,
    /// The health check's state while the container runs a check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::health::Health>,
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
    /// `Config.Entrypoint` and `Config.Cmd` as Docker shows them (the user's or the image's,
    /// each kept apart); `path` and `args` are the two joined. None in records made before
    /// berth kept them: inspect then shows `path` as the entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_cmd: Option<Vec<String>>,
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
    /// What operations in progress did to the container (froze it, mounted its root), recorded
    /// before they did it, so the next command undoes what a killed one left.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<Hold>,
    /// The networks the container joins at each start, in order (`eth0`, `eth1`…): from
    /// `--network`, then `network connect`/`disconnect`. Empty for none, host and container:.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<crate::network::Attachment>,
    /// What to publish at each start: `-p`, and with `-P` every exposed port (random host port).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<String>,
    /// The image's `EXPOSE` ports and `--expose` (`80/tcp`), Docker's `Config.ExposedPorts`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exposed_ports: Vec<String>,
    /// The health check probed while it runs (the image's `HEALTHCHECK` under `--health-*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<crate::health::HealthCheck>,
    /// `json-file` (also for `local`) or `none`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_driver: String,
    /// Its user namespace's maps (`--userns=auto`, `--uidmap`); none: the host's ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idmap: Option<berth_image::snapshot::IdMap>,
}

/// One operation's hold on a container: who (pid and start time) and what it did.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Hold {
    /// `start`, `commit`, `cp`.
    pub op: String,
    pub pid: i32,
    pub start: u64,
    /// It froze the running container (thawed when it ends).
    #[serde(default)]
    pub froze: bool,
    /// It mounted the stopped container's root (unmounted when it ends).
    #[serde(default)]
    pub mounted: bool,
    /// It was starting the container: until the record says it runs, a runtime container, its
    /// cgroup, a shared `/dev/shm` and network endpoints may be half made (torn down if its
    /// owner dies first).
    #[serde(default)]
    pub starting: bool,
}

impl Hold {
    pub fn owner(&self) -> berth_sys::process::Owner {
        berth_sys::process::Owner {
            pid: self.pid,
            start: self.start,
        }
    }
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

/// Writes `r` as `dir/meta.json` (atomically), where `Records::save` and a staged create put it.
pub fn write_meta(dir: &Path, r: &Record) -> io::Result<()> {
    write_atomic(
        &dir.join("meta.json"),
        &serde_json::to_vec_pretty(r).expect("record serializes"),
    )
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

impl Record {
    /// Running, paused or restarting: a container someone should be watching.
    pub fn is_active(&self) -> bool {
        matches!(
            self.state.status.as_str(),
            "running" | "paused" | "restarting"
        )
    }
}

#[derive(Debug, Clone)]
pub struct Records {
    dir: PathBuf,
}

/// Docker's name rule, within a file name's 255 bytes (a name is kept as one).
pub fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b.len() <= 255
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

impl Records {
    pub fn open(root: &Path) -> io::Result<Records> {
        let dir = root.join("containers");
        fs::create_dir_all(&dir)?;
        let records = Records { dir };
        if !records.names_dir().exists() {
            records.index_names()?;
        }
        Ok(records)
    }

    /// `.names/<name>` is a symlink to the container's ID: names are taken atomically and looked
    /// up without reading every record.
    fn names_dir(&self) -> PathBuf {
        self.dir.join(".names")
    }

    /// Builds the name index from the records (a store made before it existed), in a private
    /// directory renamed into place so no reader sees it half made.
    fn index_names(&self) -> io::Result<()> {
        let tmp = self.dir.join(format!(".names-{}", std::process::id()));
        fs::create_dir_all(&tmp)?;
        for r in self.list() {
            let _ = std::os::unix::fs::symlink(&r.id, tmp.join(&r.name));
        }
        if fs::rename(&tmp, self.names_dir()).is_err() {
            let _ = fs::remove_dir_all(&tmp); // another berth indexed it first
        }
        Ok(())
    }

    /// The container holding `name`. A reservation whose container is gone (a create killed
    /// before its record appeared, a removal killed before it let go) is stale and not an owner.
    pub fn id_by_name(&self, name: &str) -> Option<String> {
        let id = fs::read_link(self.names_dir().join(name))
            .ok()?
            .to_string_lossy()
            .into_owned();
        let live = self.dir(&id).join("meta.json").exists() || self.staging_alive(&id);
        live.then_some(id)
    }

    /// The staging directory of a create in progress (`.new-<id>`), made before its record.
    pub fn staging_dir(&self, id: &str) -> PathBuf {
        self.dir.join(format!(".new-{id}"))
    }

    /// Makes the staging directory of a create, marked with its owner (this process).
    pub fn make_staging(&self, id: &str) -> io::Result<PathBuf> {
        let dir = self.staging_dir(id);
        fs::create_dir_all(dir.join("rootfs"))?;
        fs::write(dir.join("owner"), berth_sys::process::Owner::me().tag())?;
        Ok(dir)
    }

    /// Whether the create staging `.new-<id>` still belongs to a live process. A staging whose
    /// owner is dead (a killed `run`) is no owner of anything: it and its name are taken over at
    /// once. One without an owner mark (the owner died between mkdir and write) counts as live
    /// for a minute.
    pub fn staging_alive(&self, id: &str) -> bool {
        let dir = self.staging_dir(id);
        match fs::read_to_string(dir.join("owner")) {
            Ok(tag) => berth_sys::process::Owner::from_tag(tag.trim()).is_some_and(|o| o.alive()),
            Err(_) => fs::metadata(&dir)
                .and_then(|m| m.modified())
                .is_ok_and(|t| {
                    t.elapsed().unwrap_or_default() < std::time::Duration::from_secs(60)
                }),
        }
    }

    /// Takes `name` for `id` unless a live container holds it; false when taken. Call it under
    /// `names_lock` (which is what makes the stale check and the replacement one step).
    pub fn reserve_name(&self, name: &str, id: &str) -> io::Result<bool> {
        if self.id_by_name(name).is_some() {
            return Ok(false);
        }
        let link = self.names_dir().join(name);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(id, &link)?;
        Ok(true)
    }

    /// Lets go of `name` if `id` holds it.
    pub fn release_name(&self, name: &str, id: &str) {
        let link = self.names_dir().join(name);
        if fs::read_link(&link).is_ok_and(|t| t.as_os_str() == id) {
            let _ = fs::remove_file(link);
        }
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
        write_meta(&self.dir(&r.id), r).map_err(|source| RecordError::Io {
            id: r.id.clone(),
            source,
        })
    }

    /// Every record (half-made directories without `meta.json` are skipped).
    pub fn list(&self) -> Vec<Record> {
        self.scan().0
    }

    /// One pass over the containers' directory: every record, newest first, and the directories
    /// that have none (a crash between mkdir and the first save).
    pub fn scan(&self) -> (Vec<Record>, Vec<String>) {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return (Vec::new(), Vec::new());
        };
        let mut records = Vec::new();
        let mut orphans = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            match self.load(&name) {
                Ok(r) => records.push(r),
                Err(RecordError::NoSuch(_)) => orphans.push(name),
                // Unreadable or corrupt: not listed, and not an orphan to clean either.
                Err(_) => {}
            }
        }
        records.sort_by(|a, b| b.created.cmp(&a.created));
        (records, orphans)
    }

    /// Resolves a full ID, a unique ID prefix, or a name.
    pub fn resolve(&self, what: &str) -> Result<String, RecordError> {
        let what = what.strip_prefix('/').unwrap_or(what);
        if self.dir(what).join("meta.json").exists() && what.len() == 64 {
            return Ok(what.into());
        }
        if let Some(id) = self.id_by_name(what) {
            return Ok(id);
        }
        // An ID prefix: directory names only, no record is read.
        let hits: Vec<String> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                !n.starts_with('.') && n.starts_with(what) && self.dir(n).join("meta.json").exists()
            })
            .collect();
        match hits.as_slice() {
            [] => Err(RecordError::NoSuch(what.into())),
            [one] => Ok(one.clone()),
            _ => Err(RecordError::Ambiguous(what.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, name: &str) -> Record {
        Record {
            id: id.into(),
            name: name.into(),
            ..Record::default()
        }
    }

    #[test]
    fn a_store_without_the_name_index_gets_one_built_from_its_records() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("containers/c1");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("meta.json"),
            serde_json::to_vec(&record("c1", "web")).unwrap(),
        )
        .unwrap();
        let r = Records::open(d.path()).unwrap();
        assert_eq!(r.id_by_name("web").as_deref(), Some("c1"));
        assert_eq!(r.resolve("web").unwrap(), "c1");
        assert!(
            !r.reserve_name("web", "c2").unwrap(),
            "a live container keeps its name"
        );
    }

    #[test]
    fn a_stale_reservation_is_taken_over_and_only_its_owner_releases_a_name() {
        let d = tempfile::tempdir().unwrap();
        let r = Records::open(d.path()).unwrap();
        // A create killed after reserving, before any record or staging appeared.
        assert!(r.reserve_name("db", "dead").unwrap());
        assert_eq!(r.id_by_name("db"), None);
        assert!(r.reserve_name("db", "c2").unwrap());
        fs::create_dir_all(r.dir("c2")).unwrap();
        fs::write(
            r.dir("c2").join("meta.json"),
            serde_json::to_vec(&record("c2", "db")).unwrap(),
        )
        .unwrap();
        r.release_name("db", "someone-else");
        assert_eq!(r.id_by_name("db").as_deref(), Some("c2"));
        r.release_name("db", "c2");
        assert_eq!(r.id_by_name("db"), None);
    }
}
