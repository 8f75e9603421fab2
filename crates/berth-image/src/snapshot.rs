//! Snapshots: a writable layer over an image's chain, returned as the overlayfs mount that joins
//! them (containerd-style: the caller mounts or hands the mount to the runtime). Lower layers are
//! named by short links under `l/` so 125+ layers fit the one-page option limit; `mount` uses the
//! new mount API's `lowerdir+` when the kernel has it, which has no such limit.

use crate::digest::Digest;
use crate::layers::LayerStore;
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot {key}: {source}")]
    Io { key: String, source: io::Error },
    #[error("snapshot {key}: layer {chain} is not in the store")]
    MissingLayer { key: String, chain: Digest },
    #[error("snapshot {0}: already exists")]
    Exists(String),
    #[error("snapshot key {0:?}: only [A-Za-z0-9_.-] allowed")]
    BadKey(String),
    #[error("overlay mount on {target}: {source}")]
    Mount { target: PathBuf, source: io::Error },
}

/// One mount, as runtime-spec and containerd describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    #[serde(rename = "type")]
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
    /// Lower directories top first (also folded into `options`, via short links).
    #[serde(default)]
    pub lowers: Vec<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SnapshotInfo {
    parent_chain: Vec<Digest>,
}

#[derive(Debug, Clone)]
pub struct Snapshots {
    root: PathBuf,
    layers: LayerStore,
}

impl Snapshots {
    pub fn open(root: &Path, layers: LayerStore) -> Result<Snapshots, SnapshotError> {
        let dir = root.join("snapshots");
        fs::create_dir_all(&dir).map_err(|source| SnapshotError::Io {
            key: "-".into(),
            source,
        })?;
        fs::create_dir_all(root.join("l/empty")).map_err(|source| SnapshotError::Io {
            key: "-".into(),
            source,
        })?;
        Ok(Snapshots {
            root: root.to_path_buf(),
            layers,
        })
    }

    fn dir(&self, key: &str) -> PathBuf {
        self.root.join("snapshots").join(key)
    }

    /// Makes `upper/` and `work/` for `key` over `chain` (bottom to top) and returns its mount.
    pub fn prepare(&self, key: &str, chain: &[Digest]) -> Result<Mount, SnapshotError> {
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            || key.starts_with('.')
        {
            return Err(SnapshotError::BadKey(key.into()));
        }
        let io = |source| SnapshotError::Io {
            key: key.into(),
            source,
        };
        for c in chain {
            if !self.layers.has(c) {
                return Err(SnapshotError::MissingLayer {
                    key: key.into(),
                    chain: c.clone(),
                });
            }
        }
        let dir = self.dir(key);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(SnapshotError::Exists(key.into()))
            }
            Err(e) => return Err(io(e)),
        }
        let made = (|| {
            fs::create_dir(dir.join("upper"))?;
            fs::create_dir(dir.join("work"))?;
            let info = SnapshotInfo {
                parent_chain: chain.to_vec(),
            };
            fs::write(
                dir.join("snapshot.json"),
                serde_json::to_vec(&info).expect("serializes"),
            )
        })();
        if let Err(e) = made {
            let _ = fs::remove_dir_all(&dir);
            return Err(io(e));
        }
        self.mounts(key)
    }

    /// The mount of an existing snapshot.
    pub fn mounts(&self, key: &str) -> Result<Mount, SnapshotError> {
        let io = |source| SnapshotError::Io {
            key: key.into(),
            source,
        };
        let dir = self.dir(key);
        let info: SnapshotInfo =
            serde_json::from_slice(&fs::read(dir.join("snapshot.json")).map_err(io)?)
                .map_err(|e| io(io::Error::new(io::ErrorKind::InvalidData, e)))?;
        let (lowers, short) = self.lowers(key, &info.parent_chain, 1)?;
        let options = vec![
            format!("lowerdir={}", short.join(":")),
            format!("upperdir={}", dir.join("upper").display()),
            format!("workdir={}", dir.join("work").display()),
            "index=off".to_string(),
        ];
        Ok(Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options,
            lowers,
        })
    }

    /// The lower directories of `chain` (bottom to top) top first, and their short links; padded
    /// with the empty directory to `at_least` (overlayfs wants one lower with an upper, two
    /// without).
    fn lowers(
        &self,
        key: &str,
        chain: &[Digest],
        at_least: usize,
    ) -> Result<(Vec<PathBuf>, Vec<String>), SnapshotError> {
        let mut lowers = Vec::new();
        let mut short = Vec::new();
        for c in chain.iter().rev() {
            let li = self
                .layers
                .info(c)
                .map_err(|_| SnapshotError::MissingLayer {
                    key: key.into(),
                    chain: c.clone(),
                })?;
            lowers.push(self.layers.diff_dir(c));
            short.push(self.layers.link_path(&li).display().to_string());
        }
        while lowers.len() < at_least {
            // An image without layers (or a view of one layer) gets an empty lower.
            lowers.push(self.root.join("l/empty"));
            short.push(self.root.join("l/empty").display().to_string());
        }
        Ok((lowers, short))
    }

    /// A read-only view of `chain` (bottom to top): the image's files as a container first sees
    /// them, with no writable layer (a volume's copy-up reads it).
    pub fn view(&self, chain: &[Digest]) -> Result<Mount, SnapshotError> {
        let (lowers, short) = self.lowers("view", chain, 2)?;
        Ok(Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                format!("lowerdir={}", short.join(":")),
                "index=off".to_string(),
            ],
            lowers,
        })
    }

    pub fn upper_dir(&self, key: &str) -> PathBuf {
        self.dir(key).join("upper")
    }

    /// The chains every snapshot uses (live for the layer store's gc).
    pub fn live_layers(&self) -> Vec<Digest> {
        let Ok(rd) = fs::read_dir(self.root.join("snapshots")) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| fs::read(e.path().join("snapshot.json")).ok())
            .filter_map(|b| serde_json::from_slice::<SnapshotInfo>(&b).ok())
            .flat_map(|i| i.parent_chain)
            .collect()
    }

    /// Removes a snapshot (it must not be mounted).
    pub fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        let dir = self.dir(key);
        let doomed = self.root.join("snapshots").join(format!(".rm-{key}"));
        match fs::rename(&dir, &doomed) {
            Ok(()) => fs::remove_dir_all(&doomed).map_err(|source| SnapshotError::Io {
                key: key.into(),
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(SnapshotError::Io {
                key: key.into(),
                source,
            }),
        }
    }
}

// The fsconfig commands (linux/mount.h).
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;

fn cstr(s: &str) -> CString {
    CString::new(s).expect("paths from the store have no NUL")
}

/// Mounts an overlay `Mount` on `target`: with `fsopen`/`fsconfig` and one `lowerdir+` per layer
/// where the kernel has it (6.8+), else with the classic option string. The classic string names
/// lowers relative to the store root (`l/<26 chars>`), so 125+ layers fit its one page; the mount
/// runs in a forked child that has `chdir`ed there, leaving this process's cwd alone.
pub fn mount(m: &Mount, target: &Path) -> Result<(), SnapshotError> {
    let err = |source| SnapshotError::Mount {
        target: target.into(),
        source,
    };
    if std::env::var_os("BERTH_OVERLAY_CLASSIC").is_none() {
        match mount_new_api(m, target) {
            Ok(()) => return Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
                ) => {}
            Err(e) => return Err(err(e)),
        }
    }
    mount_classic(m, target).map_err(err)
}

fn mount_classic(m: &Mount, target: &Path) -> io::Result<()> {
    // The lower paths in `options` are `<root>/l/<link>`: make them relative to `<root>`.
    let lowerdir = m
        .options
        .iter()
        .find_map(|o| o.strip_prefix("lowerdir="))
        .unwrap_or("");
    let first = lowerdir.split(':').next().unwrap_or("");
    let root = Path::new(first)
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf);
    let (cwd, data) = match &root {
        Some(r) => {
            let prefix = format!("{}/", r.display());
            let rel: Vec<&str> = lowerdir
                .split(':')
                .map(|l| l.strip_prefix(prefix.as_str()).unwrap_or(l))
                .collect();
            let mut opts: Vec<String> = m
                .options
                .iter()
                .filter(|o| !o.starts_with("lowerdir="))
                .cloned()
                .collect();
            opts.insert(0, format!("lowerdir={}", rel.join(":")));
            (Some(cstr(&r.display().to_string())), opts.join(","))
        }
        None => (None, m.options.join(",")),
    };
    let (src, fstype, tgt, data) = (
        cstr(&m.source),
        cstr(&m.kind),
        cstr(&target.display().to_string()),
        cstr(&data),
    );
    // SAFETY: the child only calls chdir, mount and _exit (async-signal-safe) on memory prepared
    // before the fork; the parent reaps it.
    unsafe {
        let pid = libc::fork();
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            if let Some(c) = &cwd {
                if libc::chdir(c.as_ptr()) != 0 {
                    libc::_exit(*libc::__errno_location());
                }
            }
            let r = libc::mount(
                src.as_ptr(),
                tgt.as_ptr(),
                fstype.as_ptr(),
                0,
                data.as_ptr().cast(),
            );
            libc::_exit(if r == 0 { 0 } else { *libc::__errno_location() });
        }
        let mut status = 0;
        while libc::waitpid(pid, &mut status, 0) < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        match libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)) {
            Some(0) => Ok(()),
            Some(errno) => Err(io::Error::from_raw_os_error(errno)),
            None => Err(io::Error::other("overlay mount helper died")),
        }
    }
}

fn mount_new_api(m: &Mount, target: &Path) -> io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let fstype = cstr(&m.kind);
    // SAFETY: fsopen takes a NUL-terminated name; the result is a new fd we own.
    let fs_fd = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), 1u32) };
    if fs_fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fs_fd was just returned by fsopen and is owned by nobody else.
    let fs_fd = unsafe { OwnedFd::from_raw_fd(fs_fd as i32) };
    let set = |key: &str, value: Option<&str>| -> io::Result<()> {
        let k = cstr(key);
        let v = value.map(cstr);
        let (cmd, vptr) = match &v {
            Some(v) => (FSCONFIG_SET_STRING, v.as_ptr()),
            None => (FSCONFIG_SET_FLAG, std::ptr::null()),
        };
        // SAFETY: key and value are NUL-terminated and outlive the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs_fd.as_raw_fd(),
                cmd,
                k.as_ptr(),
                vptr,
                0,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    for l in &m.lowers {
        set("lowerdir+", Some(&l.display().to_string()))?;
    }
    for opt in &m.options {
        if opt.starts_with("lowerdir=") {
            continue;
        }
        match opt.split_once('=') {
            Some((k, v)) => set(k, Some(v))?,
            None => set(opt, None)?,
        }
    }
    // SAFETY: plain syscall on our fs context fd.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs_fd.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fsmount on a created context; returns a new fd we own.
    let mnt = unsafe { libc::syscall(libc::SYS_fsmount, fs_fd.as_raw_fd(), 1u32, 0) };
    if mnt < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: mnt was just returned by fsmount.
    let mnt = unsafe { OwnedFd::from_raw_fd(mnt as i32) };
    let tgt = cstr(&target.display().to_string());
    let empty = cstr("");
    // SAFETY: move_mount with our detached mount fd and a NUL-terminated absolute target.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            tgt.as_ptr(),
            4u32,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
