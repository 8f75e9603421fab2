//! `cp` between a container and the host, with Docker's rules for files, directories, `/.` and
//! `-` (a tar stream). Every container path is resolved by the kernel with
//! `openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS)` against the container's root, and every entry
//! is then reached through fds, so no symlink in the container leads to the host
//! (CVE-2018-15664, CVE-2019-14271). Nothing of the container is ever executed.
//!
//! A running container's root is `/proc/PID/root` (its own mounts, volumes included, are seen); a
//! stopped one's snapshot is mounted for the copy and unmounted after, and a path under one of
//! its volumes or binds is resolved in that volume's directory instead (as Docker mounts them
//! for the copy), never above it.

use crate::error::{EngineError, Result};
use crate::record::{Lock, Record};
use crate::Engine;
use berth_image::tree::tar::TreeWriter;
use berth_image::tree::untar::{untar, Target};
use berth_runtime::state::ContainerState;
use berth_sys::root as inroot;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::{fstat, Mode, SFlag};
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// A container's root directory, held open for one copy. A stopped container's snapshot is
/// mounted under a hold (unmounted when the copy ends, or by the next command if it is killed);
/// fields drop in order, so the hold is released while the lock is still held.
pub struct ContainerRoot<'a> {
    fd: OwnedFd,
    /// A stopped container's volumes and binds (directories only): where each is mounted in the
    /// container, its directory on the host (`O_PATH`), and whether it is writable.
    volumes: Vec<VolumeRoot>,
    _mounted: Option<crate::holds::Held<'a>>,
    _lock: Option<Lock>,
}

struct VolumeRoot {
    destination: PathBuf,
    fd: OwnedFd,
    rw: bool,
}

/// Where a container path is: a root to resolve it in, the path within that root, and whether
/// that place may be written.
struct Resolved<'r> {
    root: std::os::fd::BorrowedFd<'r>,
    path: PathBuf,
    writable: bool,
}

fn running(rec: &Record) -> bool {
    matches!(
        rec.state.status.as_str(),
        "running" | "paused" | "restarting"
    )
}

/// Opens the root of a container: `/proc/PID/root` when it runs, else its mounted snapshot.
pub fn open_root<'a>(e: &'a Engine, rec: &Record) -> Result<ContainerRoot<'a>> {
    if running(rec) {
        let st = ContainerState::load(&e.runtime_root, &rec.id)?;
        let proc_root = format!("/proc/{}/root", st.pid);
        let fd = open(
            proc_root.as_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        );
        // Checked after the open: the pid still names the container's init, not a reused pid.
        if let (Ok(fd), true) = (fd, st.init_alive()) {
            return Ok(ContainerRoot {
                fd,
                volumes: Vec::new(),
                _mounted: None,
                _lock: None,
            });
        }
    }
    let lock = e.records.lock(&rec.id)?;
    let rootfs = e.records.dir(&rec.id).join("rootfs");
    let mounted = e.mount_for(rec, "cp")?;
    let fd = open(
        &rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|x| EngineError::msg(format!("container {}: rootfs: {x}", rec.name)))?;
    Ok(ContainerRoot {
        fd,
        volumes: volume_roots(rec),
        _mounted: mounted,
        _lock: Some(lock),
    })
}

/// The directories of a stopped container's volumes and binds, deepest mount point first. A
/// source that is gone or not a directory (a bound file) is left out: its path then reads the
/// container's own root, as before.
fn volume_roots(rec: &Record) -> Vec<VolumeRoot> {
    let mut out: Vec<VolumeRoot> = rec
        .mounts
        .iter()
        .filter_map(|m| {
            let fd = open(
                m.source.as_str(),
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ok()?;
            Some(VolumeRoot {
                destination: Path::new("/").join(&m.destination),
                fd,
                rw: m.rw,
            })
        })
        .collect();
    out.sort_by_key(|v| std::cmp::Reverse(v.destination.components().count()));
    out
}

impl ContainerRoot<'_> {
    /// Where container path `p` is: in the deepest volume whose mount point holds it, else in
    /// the root. Within a volume the path is resolved in the volume's directory, so a `..` or a
    /// symlink there stops at the volume's top, as it would at the root.
    fn resolve(&self, p: &Path) -> Resolved<'_> {
        // Cleaned by its words first, as Docker cleans a copy's path: `/vol/../etc` is `/etc`.
        let abs = crate::mountspec::clean_absolute(p);
        for v in &self.volumes {
            if let Ok(rest) = abs.strip_prefix(&v.destination) {
                return Resolved {
                    root: v.fd.as_fd(),
                    path: Path::new("/").join(rest),
                    writable: v.rw,
                };
            }
        }
        Resolved {
            root: self.fd.as_fd(),
            path: abs,
            writable: true,
        }
    }

    /// Opens container path `p` (`berth_sys::root::open` in the root or volume holding it).
    pub fn open(&self, p: &Path, flags: i32) -> io::Result<OwnedFd> {
        let r = self.resolve(p);
        inroot::open(r.root.as_raw_fd(), &r.path, flags)
    }
}

/// A path as given to `cp`, with the two suffixes that change its meaning.
#[derive(Debug, Clone)]
pub struct CpPath {
    /// Without a trailing `/` or `/.`.
    pub path: PathBuf,
    /// `dir/.`: the directory's contents, not the directory.
    pub contents: bool,
    /// `dir/`: must be a directory.
    pub dir_only: bool,
    pub shown: String,
}

impl CpPath {
    /// `container`: relative paths are relative to the container's `/`.
    pub fn parse(s: &str, container: bool) -> CpPath {
        let contents = s == "." || s.ends_with("/.");
        let dir_only = contents || s.ends_with('/');
        let mut path = if container {
            PathBuf::from("/")
        } else {
            PathBuf::new()
        };
        path.push(s);
        let mut clean = PathBuf::new();
        for c in path.components() {
            if c != Component::CurDir {
                clean.push(c);
            }
        }
        if clean.as_os_str().is_empty() {
            clean.push(".");
        }
        CpPath {
            path: clean,
            contents,
            dir_only,
            shown: s.to_string(),
        }
    }

    /// The last name, for a copy into a directory; `None` for `/` (its contents are copied).
    fn name(&self) -> Option<&OsStr> {
        match self.path.components().next_back() {
            Some(Component::Normal(n)) => Some(n),
            _ => None,
        }
    }
}

/// What a copy source is: an `O_PATH` handle and whether it is a directory.
struct Source {
    handle: OwnedFd,
    is_dir: bool,
    /// A user-namespaced container's map: owners are archived as the container sees them.
    owners: Option<berth_image::snapshot::IdMap>,
}

impl Source {
    fn check(handle: OwnedFd, p: &CpPath) -> Result<Source> {
        let st =
            fstat(handle.as_fd()).map_err(|x| EngineError::msg(format!("{}: {x}", p.shown)))?;
        let is_dir = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR;
        if p.dir_only && !is_dir {
            return Err(EngineError::msg(format!("{}: not a directory", p.shown)));
        }
        Ok(Source {
            handle,
            is_dir,
            owners: None,
        })
    }

    /// Archives the source: named `name`, or its contents at the top when `name` is `None`.
    fn write(&self, out: impl Write, name: Option<&OsStr>) -> io::Result<()> {
        let mut w = TreeWriter::new(out, false).owners(self.owners.clone());
        match name {
            Some(n) => w.add(&self.handle, Path::new(n))?,
            None => w.add_contents(&self.handle, Path::new(""))?,
        }
        w.finish()?.flush()
    }

    /// The top name in the archive when copying into an existing directory.
    fn name_into_dir<'p>(&self, p: &'p CpPath) -> Option<&'p OsStr> {
        if p.contents && self.is_dir {
            None
        } else {
            p.name()
        }
    }
}

fn not_found(p: &Path, rec: &Record) -> EngineError {
    EngineError::msg(format!(
        "Could not find the file {} in container {}",
        p.display(),
        rec.name
    ))
}

fn in_container(root: &ContainerRoot<'_>, p: &Path, flags: i32, rec: &Record) -> Result<OwnedFd> {
    root.open(p, flags).map_err(|x| match x.raw_os_error() {
        Some(libc::ENOENT) => not_found(p, rec),
        _ => EngineError::msg(format!("{} in container {}: {x}", p.display(), rec.name)),
    })
}

fn container_source(
    root: &ContainerRoot<'_>,
    p: &CpPath,
    follow: bool,
    rec: &Record,
) -> Result<Source> {
    let flags = if follow || p.dir_only {
        0
    } else {
        libc::O_NOFOLLOW
    };
    let mut s = Source::check(in_container(root, &p.path, flags, rec)?, p)?;
    s.owners = rec.idmap.clone();
    Ok(s)
}

fn host_source(p: &CpPath, follow: bool) -> Result<Source> {
    let mut flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
    if !follow && !p.dir_only {
        flags |= OFlag::O_NOFOLLOW;
    }
    let h = open(&p.path, flags, Mode::empty())
        .map_err(|x| EngineError::msg(format!("lstat {}: {}", p.shown, io::Error::from(x))))?;
    Source::check(h, p)
}

/// Where the archive goes: a directory (a container path or a host directory fd) and the top name.
struct Placement<'n> {
    base: PathBuf,
    name: Option<&'n OsStr>,
}

/// Docker's rules for a destination that is a directory, a file, or missing.
fn place<'n>(
    src: &Source,
    sp: &'n CpPath,
    dest: &'n CpPath,
    dest_is_dir: Option<bool>,
) -> Result<Placement<'n>> {
    let parent = || dest.path.parent().unwrap_or(Path::new("/")).to_path_buf();
    match dest_is_dir {
        Some(true) => Ok(Placement {
            base: dest.path.clone(),
            name: src.name_into_dir(sp),
        }),
        Some(false) if src.is_dir => Err(EngineError::msg(format!(
            "cannot copy directory {} to file {}",
            sp.shown, dest.shown
        ))),
        None if dest.dir_only && !src.is_dir => Err(EngineError::msg(format!(
            "{}: no such directory",
            dest.shown
        ))),
        _ => Ok(Placement {
            base: parent(),
            name: Some(dest.name().ok_or_else(|| {
                EngineError::msg(format!("{}: not a valid destination", dest.shown))
            })?),
        }),
    }
}

/// A `Write` that hands 64 KiB chunks to another thread.
struct ChanWriter {
    tx: SyncSender<Vec<u8>>,
    buf: Vec<u8>,
    sent: u64,
}

impl Write for ChanWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.sent += self.buf.len() as u64;
        self.tx
            .send(std::mem::take(&mut self.buf))
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

struct ChanReader {
    rx: Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(c) => (self.cur, self.pos) = (c, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Streams `src` into `target` (archive on one thread, extract on this one); returns the bytes of
/// the archive, as Docker reports them.
fn pipe(src: &Source, name: Option<&OsStr>, target: &Target<'_>) -> io::Result<u64> {
    let (tx, rx) = sync_channel(8);
    std::thread::scope(|s| {
        let writer = s.spawn(move || -> io::Result<u64> {
            let mut w = ChanWriter {
                tx,
                buf: Vec::new(),
                sent: 0,
            };
            src.write(&mut w, name)?;
            w.flush()?;
            Ok(w.sent)
        });
        let mut r = ChanReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        };
        let read = untar(&mut r, target).and_then(|_| io::copy(&mut r, &mut io::sink()));
        drop(r);
        let wrote = writer.join().expect("archive thread does not panic");
        match (wrote, read) {
            (Err(w), _) if w.kind() != io::ErrorKind::BrokenPipe => Err(w),
            (_, Err(r)) => Err(r),
            (w, Ok(_)) => w,
        }
    })
}

/// `cp CONTAINER:SRC DEST`.
pub fn copy_out(
    e: &Engine,
    rec: &Record,
    src: &CpPath,
    dest: &CpPath,
    follow: bool,
) -> Result<u64> {
    let root = open_root(e, rec)?;
    let s = container_source(&root, src, follow, rec)?;
    let dest_is_dir = match std::fs::metadata(&dest.path) {
        Ok(m) => Some(m.is_dir()),
        Err(x) if x.kind() == io::ErrorKind::NotFound => None,
        Err(x) => return Err(EngineError::msg(format!("{}: {x}", dest.shown))),
    };
    let p = place(&s, src, dest, dest_is_dir)?;
    let base = if p.base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        p.base
    };
    let dir = open(
        &base,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|x| EngineError::msg(format!("{}: {}", base.display(), io::Error::from(x))))?;
    let t = Target {
        root: dir.as_fd(),
        base: "/".into(),
        keep_owner: false,
        owners: None,
    };
    pipe(&s, p.name, &t)
        .map_err(|x| EngineError::msg(format!("copying {} to {}: {x}", src.shown, dest.shown)))
}

/// `cp CONTAINER:SRC -`: a tar of SRC on `out`.
pub fn copy_out_stream(
    e: &Engine,
    rec: &Record,
    src: &CpPath,
    out: impl Write,
    follow: bool,
) -> Result<()> {
    let root = open_root(e, rec)?;
    let s = container_source(&root, src, follow, rec)?;
    let name = if src.contents { None } else { src.name() };
    s.write(out, name).map_err(|x| {
        EngineError::msg(format!(
            "copying {} from container {}: {x}",
            src.shown, rec.name
        ))
    })
}

/// Refuses writes to a read-only root filesystem (volumes mounted read-write aside).
fn writable(rec: &Record, dest: &Path) -> Result<()> {
    let ro = rec.host_config["ReadonlyRootfs"].as_bool().unwrap_or(false);
    if ro
        && !rec
            .mounts
            .iter()
            .any(|m| m.rw && dest.starts_with(&m.destination))
    {
        return Err(EngineError::msg(format!(
            "container {}: container rootfs is marked read-only",
            rec.name
        )));
    }
    Ok(())
}

/// Where a copy into container path `base` extracts: refused in a read-only volume or bind, as
/// Docker refuses it.
fn writable_place<'r>(
    root: &'r ContainerRoot<'_>,
    base: &Path,
    rec: &Record,
) -> Result<Resolved<'r>> {
    let at = root.resolve(base);
    if !at.writable {
        return Err(EngineError::msg(format!(
            "container {}: mounted volume is marked read-only",
            rec.name
        )));
    }
    Ok(at)
}

/// Whether a container path is a directory, following symlinks inside the root; `None` if missing
/// (its parent must exist).
fn container_dest(root: &ContainerRoot<'_>, dest: &CpPath, rec: &Record) -> Result<Option<bool>> {
    match root.open(&dest.path, 0) {
        Ok(h) => {
            let st =
                fstat(h.as_fd()).map_err(|x| EngineError::msg(format!("{}: {x}", dest.shown)))?;
            Ok(Some(
                SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR,
            ))
        }
        Err(x) if x.raw_os_error() == Some(libc::ENOENT) => {
            let parent = dest.path.parent().unwrap_or(Path::new("/"));
            in_container(root, parent, libc::O_DIRECTORY, rec)?;
            Ok(None)
        }
        Err(x) => Err(EngineError::msg(format!(
            "{} in container {}: {x}",
            dest.shown, rec.name
        ))),
    }
}

/// `cp SRC CONTAINER:DEST`.
pub fn copy_in(
    e: &Engine,
    rec: &Record,
    src: &CpPath,
    dest: &CpPath,
    follow: bool,
    keep_owner: bool,
) -> Result<u64> {
    writable(rec, &dest.path)?;
    let s = host_source(src, follow)?;
    let root = open_root(e, rec)?;
    let p = place(&s, src, dest, container_dest(&root, dest, rec)?)?;
    let at = writable_place(&root, &p.base, rec)?;
    let t = Target {
        root: at.root,
        base: at.path,
        keep_owner,
        owners: rec.idmap.as_ref(),
    };
    pipe(&s, p.name, &t).map_err(|x| {
        EngineError::msg(format!(
            "copying {} to {}:{}: {x}",
            src.shown, rec.name, dest.shown
        ))
    })
}

/// `cp - CONTAINER:DEST`: a tar from `input` extracted into the directory DEST.
pub fn copy_in_stream(
    e: &Engine,
    rec: &Record,
    input: impl Read,
    dest: &CpPath,
    keep_owner: bool,
) -> Result<()> {
    writable(rec, &dest.path)?;
    let root = open_root(e, rec)?;
    if container_dest(&root, dest, rec)? != Some(true) {
        return Err(EngineError::msg(format!(
            "{}:{}: extraction point is not a directory",
            rec.name, dest.shown
        )));
    }
    let at = writable_place(&root, &dest.path, rec)?;
    let t = Target {
        root: at.root,
        base: at.path,
        keep_owner,
        owners: rec.idmap.as_ref(),
    };
    untar(io::BufReader::new(input), &t)
        .map(|_| ())
        .map_err(|x| EngineError::msg(format!("copying into {}:{}: {x}", rec.name, dest.shown)))
}
