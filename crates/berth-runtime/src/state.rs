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

/// (state char, start time) of a process, from /proc/PID/stat.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: parse after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // rest starts at field 3; starttime is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Now as RFC 3339 with nanoseconds, UTC, as runc prints it.
pub fn rfc3339_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, dd) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_420), (2025, 11, 28));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn own_stat_parses() {
        let (state, start) = proc_stat(std::process::id() as i32).unwrap();
        assert!(state == 'R' || state == 'S');
        assert!(start > 0);
    }
}
