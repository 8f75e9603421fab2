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
    /// The snapshot's id map: its lowers are mounted idmapped through it (`mount`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idmap: Option<IdMap>,
}

/// One range of an id map: `size` ids from `container_id` are `host_id` and on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMapping {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

/// The id the kernel shows for one a user namespace does not map (/proc/sys/kernel/overflowuid).
const OVERFLOW_ID: u32 = 65534;

impl IdMapping {
    fn container_of(&self, id: u32) -> Option<u32> {
        let offset = id.checked_sub(self.host_id)?;
        (offset < self.size).then(|| self.container_id.wrapping_add(offset))
    }

    fn host_of(&self, id: u32) -> Option<u32> {
        let offset = id.checked_sub(self.container_id)?;
        (offset < self.size).then(|| self.host_id.wrapping_add(offset))
    }
}

/// The uid and gid maps of a user-namespaced container, which its snapshot is remapped to: the
/// layers stay owned by root on disk and show through idmapped mounts as the mapped ids; what
/// the container writes lands in its upper directory owned by the mapped ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    pub uid: Vec<IdMapping>,
    pub gid: Vec<IdMapping>,
}

impl IdMap {
    pub fn host_uid(&self, id: u32) -> Option<u32> {
        self.uid.iter().find_map(|m| m.host_of(id))
    }

    pub fn host_gid(&self, id: u32) -> Option<u32> {
        self.gid.iter().find_map(|m| m.host_of(id))
    }

    /// The container uid of host uid `id`; an id the map leaves out is the overflow id 65534,
    /// as the container sees it.
    pub fn container_uid(&self, id: u32) -> u32 {
        self.uid
            .iter()
            .find_map(|m| m.container_of(id))
            .unwrap_or(OVERFLOW_ID)
    }

    /// The container gid of host gid `id` (65534 when unmapped).
    pub fn container_gid(&self, id: u32) -> u32 {
        self.gid
            .iter()
            .find_map(|m| m.container_of(id))
            .unwrap_or(OVERFLOW_ID)
    }

    fn maps(&self) -> berth_sys::userns::IdMaps {
        let ranges = |v: &[IdMapping]| {
            v.iter()
                .map(|m| berth_sys::userns::IdRange {
                    inside: m.container_id,
                    outside: m.host_id,
                    count: m.size,
                })
                .collect()
        };
        berth_sys::userns::IdMaps {
            uid: ranges(&self.uid),
            gid: ranges(&self.gid),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SnapshotInfo {
    parent_chain: Vec<Digest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    idmap: Option<IdMap>,
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
        self.prepare_mapped(key, chain, None)
    }

    /// `prepare`, remapped to `idmap` when given: the upper directory's root is owned by the
    /// host ids of the container's root, and `mounts` carries the map.
    pub fn prepare_mapped(
        &self,
        key: &str,
        chain: &[Digest],
        idmap: Option<&IdMap>,
    ) -> Result<Mount, SnapshotError> {
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
            if let Some(map) = idmap {
                let (uid, gid) = map
                    .host_uid(0)
                    .zip(map.host_gid(0))
                    .ok_or_else(|| io::Error::other("the id map does not map root"))?;
                std::os::unix::fs::chown(dir.join("upper"), Some(uid), Some(gid))?;
            }
            let info = SnapshotInfo {
                parent_chain: chain.to_vec(),
                idmap: idmap.cloned(),
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
        let mut options = vec![
            format!("lowerdir={}", short.join(":")),
            format!("upperdir={}", dir.join("upper").display()),
            format!("workdir={}", dir.join("work").display()),
            "index=off".to_string(),
        ];
        // In a user namespace overlay may keep its marks only in `user.*` (the unpacker wrote
        // the layers' opaque marks there too: `tree::opaque_xattr`).
        if crate::tree::in_user_namespace().map_err(io)? {
            options.push("userxattr".to_string());
        }
        Ok(Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options,
            lowers,
            idmap: info.idmap,
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
        let mut options = vec![
            format!("lowerdir={}", short.join(":")),
            "index=off".to_string(),
        ];
        // As in `mounts`: the layers' opaque marks are `user.*` ones in a user namespace.
        let rootless = crate::tree::in_user_namespace().map_err(|source| SnapshotError::Io {
            key: "view".into(),
            source,
        })?;
        if rootless {
            options.push("userxattr".to_string());
        }
        Ok(Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options,
            lowers,
            idmap: None,
        })
    }

    pub fn upper_dir(&self, key: &str) -> PathBuf {
        self.dir(key).join("upper")
    }

    /// The id maps of every remapped snapshot: the host ids whose files they hold. Fails on a
    /// snapshot whose record cannot be read (its range would look free).
    pub fn idmaps_in_use(&self) -> Result<Vec<IdMap>, SnapshotError> {
        let io = |key: &str| {
            let key = key.to_string();
            move |source| SnapshotError::Io { key, source }
        };
        let mut out = Vec::new();
        for e in fs::read_dir(self.root.join("snapshots")).map_err(io("-"))? {
            let e = e.map_err(io("-"))?;
            let key = e.file_name().to_string_lossy().into_owned();
            let bytes = match fs::read(e.path().join("snapshot.json")) {
                Ok(b) => b,
                // Made but not yet described (nothing written in it), or being removed.
                Err(x) if x.kind() == io::ErrorKind::NotFound => continue,
                Err(x) => return Err(io(&key)(x)),
            };
            let info: SnapshotInfo = serde_json::from_slice(&bytes)
                .map_err(|x| io(&key)(io::Error::new(io::ErrorKind::InvalidData, x)))?;
            out.extend(info.idmap);
        }
        Ok(out)
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
        // Idmapped layers left attached by a mount that died half-way are detached first, and
        // their mount points removed one by one (never recursively: that would reach into a
        // layer shared with every other container of the image).
        release_idmapped(&dir).map_err(|source| SnapshotError::Io {
            key: key.into(),
            source,
        })?;
        let doomed = self.root.join("snapshots").join(format!(".rm-{key}"));
        match fs::rename(&dir, &doomed) {
            Ok(()) => remove_doomed(&doomed).map_err(|source| SnapshotError::Io {
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

impl Snapshots {
    /// Finishes removals a crash cut short: `snapshots/.rm-*` (renamed before their contents
    /// went). Until then one holds its container's id range and keeps its layers live.
    pub fn reclaim_removed(&self) -> Result<(), SnapshotError> {
        let io = |source| SnapshotError::Io {
            key: ".rm-*".into(),
            source,
        };
        for e in fs::read_dir(self.root.join("snapshots")).map_err(io)? {
            let e = e.map_err(io)?;
            if e.file_name().to_string_lossy().starts_with(".rm-") {
                remove_doomed(&e.path()).map_err(io)?;
            }
        }
        Ok(())
    }
}

/// Removes a renamed-away snapshot. Another process finishing the same removal (a listing's
/// `reclaim_removed` beside an `rm`) may take it first: that is success.
fn remove_doomed(doomed: &Path) -> io::Result<()> {
    match fs::remove_dir_all(doomed) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

// The fsconfig commands (linux/mount.h).
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;

fn cstr(s: &str) -> CString {
    CString::new(s).expect("paths from the store have no NUL")
}

/// Asks overlay not to sync the upper directory to disk (`volatile`, Linux 5.10+): for a
/// writable layer that is thrown away with its container. A crash may leave it inconsistent;
/// nothing reads it after one.
pub fn make_volatile(m: &mut Mount) {
    if !m.options.iter().any(|o| o == "volatile") {
        m.options.push("volatile".to_string());
    }
}

/// Removes the mark a `volatile` mount leaves in its work directory (`work/incompat/volatile`),
/// which makes overlay refuse the next mount of the same upper directory; called only before a
/// mount, when no overlay uses the snapshot.
fn clear_volatile_mark(m: &Mount) -> io::Result<()> {
    let Some(work) = m.options.iter().find_map(|o| o.strip_prefix("workdir=")) else {
        return Ok(());
    };
    let incompat = Path::new(work).join("work/incompat");
    for dir in [incompat.join("volatile"), incompat] {
        match fs::remove_dir(&dir) {
            Err(e)
                if !matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::DirectoryNotEmpty
                ) =>
            {
                return Err(e)
            }
            _ => {}
        }
    }
    Ok(())
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
    clear_volatile_mark(m).map_err(err)?;
    if m.idmap.is_some() {
        return mount_idmapped(m, target).map_err(err);
    }
    mount_plain(m, target).map_err(err)
}

fn mount_plain(m: &Mount, target: &Path) -> io::Result<()> {
    if std::env::var_os("BERTH_OVERLAY_CLASSIC").is_none() {
        match mount_new_api(m, target) {
            Ok(()) => return Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
                ) => {}
            Err(e) => return Err(e),
        }
    }
    mount_classic(m, target)
}

/// Where a mount of the snapshot whose upper directory is `upper` attaches its idmapped lowers
/// for the moment the overlay takes them.
fn idmapped_dir(m: &Mount) -> io::Result<PathBuf> {
    let upper = m
        .options
        .iter()
        .find_map(|o| o.strip_prefix("upperdir="))
        .ok_or_else(|| io::Error::other("an idmapped overlay needs an upper directory"))?;
    let snapshot = Path::new(upper)
        .parent()
        .ok_or_else(|| io::Error::other("upper directory without a parent"))?;
    Ok(snapshot.join(format!("idmapped.{}", std::process::id())))
}

/// The overlay over idmapped clones of its lowers (overlayfs takes idmapped layers since Linux
/// 5.19): each lower is cloned with the container's map and attached under the snapshot for
/// as long as the overlay mount takes (overlayfs keeps private clones of its layers), then
/// detached. The upper directory is not idmapped: what the container writes is stored with
/// the host ids it has.
fn mount_idmapped(m: &Mount, target: &Path) -> io::Result<()> {
    let map = m.idmap.as_ref().expect("checked by the caller");
    let ns = berth_sys::idmapped::userns_with(&map.maps())?;
    let dir = idmapped_dir(m)?;
    fs::create_dir_all(&dir)?;
    let mut attached = Vec::new();
    let made = (|| {
        for (i, lower) in m.lowers.iter().enumerate() {
            let at = dir.join(i.to_string());
            fs::create_dir(&at)?;
            let tree = berth_sys::idmapped::idmapped_tree(lower, &ns)?;
            berth_sys::idmapped::attach(&tree, &at)?;
            attached.push(at);
        }
        let joined: Vec<String> = attached.iter().map(|p| p.display().to_string()).collect();
        let mut options: Vec<String> = m
            .options
            .iter()
            .filter(|o| !o.starts_with("lowerdir="))
            .cloned()
            .collect();
        options.insert(0, format!("lowerdir={}", joined.join(":")));
        let remapped = Mount {
            options,
            lowers: attached.clone(),
            idmap: None,
            ..m.clone()
        };
        mount_plain(&remapped, target)
    })();
    let released = release_idmapped_in(&dir);
    made.and(released)
}

/// Detaches every idmapped lower a mount of the snapshot in `snapshot_dir` left attached.
fn release_idmapped(snapshot_dir: &Path) -> io::Result<()> {
    let Ok(rd) = fs::read_dir(snapshot_dir) else {
        return Ok(());
    };
    for e in rd.flatten() {
        if e.file_name().to_string_lossy().starts_with("idmapped.") {
            release_idmapped_in(&e.path())?;
        }
    }
    Ok(())
}

/// Unmounts and removes each mount point in `dir`, then `dir`: `remove_dir`, which refuses a
/// directory that still has something in it (a layer still attached).
fn release_idmapped_in(dir: &Path) -> io::Result<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for e in rd {
        let p = e?.path();
        let c = cstr(&p.display().to_string());
        // SAFETY: umount2 with a NUL-terminated path. EINVAL: nothing mounted there.
        if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINVAL) {
                return Err(err);
            }
        }
        fs::remove_dir(&p)?;
    }
    fs::remove_dir(dir)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removals_a_crash_cut_short_are_finished_and_nothing_else_is_touched() {
        let t = tempfile::tempdir().unwrap();
        let layers = LayerStore::open(t.path()).unwrap();
        let snaps = Snapshots::open(t.path(), layers).unwrap();
        let dir = t.path().join("snapshots");
        fs::create_dir_all(dir.join(".rm-a/upper/etc")).unwrap();
        fs::write(dir.join(".rm-a/snapshot.json"), "{}").unwrap();
        fs::create_dir_all(dir.join("b/upper")).unwrap();
        snaps.reclaim_removed().unwrap();
        assert!(!dir.join(".rm-a").exists());
        assert!(dir.join("b/upper").exists());
        assert!(remove_doomed(&dir.join(".rm-gone")).is_ok());
    }

    #[test]
    fn the_mark_of_a_volatile_mount_is_cleared_before_the_next_mount() {
        let t = tempfile::tempdir().unwrap();
        let work = t.path().join("work");
        fs::create_dir_all(work.join("work/incompat/volatile")).unwrap();
        let mut m = Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options: vec![format!("workdir={}", work.display())],
            lowers: Vec::new(),
            idmap: None,
        };
        make_volatile(&mut m);
        make_volatile(&mut m);
        assert_eq!(m.options.iter().filter(|o| *o == "volatile").count(), 1);
        clear_volatile_mark(&m).unwrap();
        assert!(!work.join("work/incompat").exists());
        assert!(work.join("work").exists(), "only the mark goes");
        clear_volatile_mark(&m).unwrap();
    }
}
