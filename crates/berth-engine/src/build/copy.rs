//! COPY, ADD and WORKDIR's mkdir on a step's snapshot. The snapshot (and a `--from` source's) is
//! mounted on a thread that has a mount namespace of its own, so the mounts vanish with the
//! thread, even if berth is killed. Sources are read from the context snapshot (no symlink
//! followed out of it) or a source root (resolved in that root), and written through
//! `fsops` (resolved in the destination root), so no path in either leads to the host.

use super::fsops::{self, Meta};
use super::sources::{context_set, root_set, Item, SourceSet};
use super::BuildError;
use crate::error::{EngineError, Result};
use berth_build::context::{Context, EntryKind};
use berth_build::plan::{CopyStep, InlineFile};
use nix::mount::MsFlags;
use nix::sys::stat::fstat;
use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Runs `f` on a new thread in a mount namespace of its own (a slave of the host's: the host's
/// mounts reach it, its own never leave it). What it mounts goes when the thread ends.
pub(crate) fn with_private_mounts<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
                .map_err(|x| EngineError::io("unshare(CLONE_NEWNS)", x.into()))?;
            nix::mount::mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_SLAVE,
                None::<&str>,
            )
            .map_err(|x| EngineError::io("making / a slave mount", x.into()))?;
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(EngineError::msg("build: a step's worker thread panicked")))
    })
}

/// A snapshot mounted in the calling thread's namespace, unmounted when dropped.
pub(crate) struct Mounted {
    pub path: PathBuf,
    pub fd: OwnedFd,
}

impl Mounted {
    pub fn new(m: &berth_image::snapshot::Mount, target: &Path) -> Result<Mounted> {
        std::fs::create_dir_all(target).map_err(|x| EngineError::io(target.display(), x))?;
        berth_image::snapshot::mount(m, target)?;
        let fd = nix::fcntl::open(
            target,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|x| EngineError::io(target.display(), x.into()));
        match fd {
            Ok(fd) => Ok(Mounted {
                path: target.to_path_buf(),
                fd,
            }),
            Err(e) => {
                crate::launch::unmount(target);
                Err(e)
            }
        }
    }

    pub fn root(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        crate::launch::unmount(&self.path);
    }
}

/// Where a COPY reads from.
pub(crate) enum From<'a> {
    Context(&'a Context),
    /// Another stage's or an image's root, mounted.
    Root(&'a Mounted),
}

/// Copies `step`'s sources into the root at `dst` (mounted at `dst_path`).
pub(crate) fn copy(
    step: &CopyStep,
    from: &From<'_>,
    dst: &Mounted,
    line: usize,
) -> std::result::Result<(), BuildError> {
    let fail = |e: std::io::Error| step_error(line, step, e);
    let mut sets = Vec::new();
    for s in &step.sources {
        sets.push(match from {
            From::Context(ctx) => context_set(ctx, s, &step.excludes)?,
            From::Root(m) => root_set(m.root(), s).map_err(fail)?,
        });
    }
    let owner = match &step.chown {
        Some(c) => Some(resolve_owner(&dst.path, c).map_err(|e| step_error(line, step, e))?),
        None => None,
    };
    let dest = step.dest.trim_end_matches('/');
    let dest = if dest.is_empty() { "/" } else { dest };
    let many = sets.len() + step.inline.len() > 1 || sets.iter().any(|s| s.single.is_none());
    if many && !step.dest.ends_with('/') && sets.len() + step.inline.len() > 1 {
        return Err(step_error(
            line,
            step,
            format!(
                "{} sources to {:?}: when using COPY with more than one source file, the destination must be a directory and end with a /",
                sets.len() + step.inline.len(),
                step.dest
            ),
        ));
    }
    let dest_is_dir = step.dest.ends_with('/') || many || fsops::open_dir(dst.root(), dest).is_ok();
    let parents = owner.unwrap_or((0, 0));
    let w = Writer {
        root: dst.root(),
        from,
        chmod: step.chmod.as_deref(),
        owner,
        parents,
        unpack: step.add && step.unpack,
    };
    for set in &sets {
        w.place(set, dest, dest_is_dir).map_err(fail)?;
    }
    for f in &step.inline {
        w.inline(f, dest, dest_is_dir).map_err(fail)?;
    }
    Ok(())
}

fn step_error(line: usize, step: &CopyStep, e: impl std::fmt::Display) -> BuildError {
    BuildError::Step {
        line,
        instruction: if step.add { "ADD" } else { "COPY" }.into(),
        source: Box::new(EngineError::msg(e.to_string())),
    }
}

/// `--chown` (or WORKDIR's user) as ids, names looked up in the root's own passwd and group.
pub(crate) fn resolve_owner(rootfs: &Path, spec: &str) -> std::io::Result<(u32, u32)> {
    let u = crate::user::resolve(rootfs, spec).map_err(std::io::Error::other)?;
    Ok((u.uid, u.gid))
}

/// Places items in the destination root.
struct Writer<'a> {
    root: BorrowedFd<'a>,
    from: &'a From<'a>,
    chmod: Option<&'a str>,
    /// `--chown`: every entry's owner.
    owner: Option<(u32, u32)>,
    /// The owner of directories made on the way.
    parents: (u32, u32),
    unpack: bool,
}

fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (if i == 0 { "/" } else { &path[..i] }, &path[i + 1..]),
        None => ("/", path),
    }
}

impl Writer<'_> {
    fn meta(
        &self,
        item_mode: u32,
        item_owner: Option<(u32, u32)>,
        is_dir: bool,
        mtime: Option<(i64, i64)>,
    ) -> Meta {
        let (uid, gid) = self.owner.or(item_owner).unwrap_or((0, 0));
        let mode = match self.chmod {
            Some(c) => fsops::apply_chmod(c, item_mode, is_dir),
            None => item_mode,
        };
        Meta {
            uid,
            gid,
            mode,
            mtime,
        }
    }

    fn place(&self, set: &SourceSet, dest: &str, dest_is_dir: bool) -> std::io::Result<()> {
        if let Some(name) = &set.single {
            let target = if dest_is_dir {
                format!("{}/{name}", dest.trim_end_matches('/'))
            } else {
                dest.to_string()
            };
            if let Some(item) = set.items.first() {
                if self.unpack && item.kind == EntryKind::File {
                    if let Some(()) = self.try_unpack(item, dest, dest_is_dir)? {
                        return Ok(());
                    }
                }
                self.write(item, &target)?;
            }
            return Ok(());
        }
        fsops::mkdir_all(self.root, dest, self.parents)?;
        let mut dirs: Vec<(String, Meta)> = Vec::new();
        for item in &set.items {
            let target = format!("{}/{}", dest.trim_end_matches('/'), item.rel);
            if item.kind == EntryKind::Dir {
                let (parent, name) = split(&target);
                let p = fsops::mkdir_all(self.root, parent, self.parents)?;
                fsops::make_dir(p.as_fd(), name)?;
                dirs.push((target, self.meta(item.mode, item.owner, true, item.mtime)));
            } else {
                self.write(item, &target)?;
            }
        }
        // Directories last, deepest first, so their times survive what went into them.
        for (path, m) in dirs.iter().rev() {
            let d = fsops::open_dir(self.root, path)?;
            fsops::set_meta(d.as_fd(), m)?;
        }
        Ok(())
    }

    /// One file or symlink at `target` (absolute in the root).
    fn write(&self, item: &Item, target: &str) -> std::io::Result<()> {
        let (parent, name) = split(target);
        if name.is_empty() {
            return Err(std::io::Error::other(format!(
                "cannot copy {:?} over the root directory",
                item.real
            )));
        }
        let p = fsops::mkdir_all(self.root, parent, self.parents)?;
        match &item.kind {
            EntryKind::File => {
                let (mut f, mtime) = self.open_source(item)?;
                let m = self.meta(item.mode, item.owner, false, item.mtime.or(mtime));
                fsops::write_file(p.as_fd(), name, &mut f, &m).map(drop)
            }
            EntryKind::Symlink(t) => {
                let m = self.meta(item.mode, item.owner, false, None);
                fsops::make_symlink(p.as_fd(), name, &OsString::from(t), &m)
            }
            EntryKind::Dir => {
                fsops::make_dir(p.as_fd(), name)?;
                Ok(())
            }
            EntryKind::Other => Ok(()),
        }
    }

    /// A source file opened for reading, and its mtime.
    fn open_source(&self, item: &Item) -> std::io::Result<(std::fs::File, Option<(i64, i64)>)> {
        let f = match self.from {
            From::Context(ctx) => ctx
                .open_file(&item.real)
                .map_err(|e| std::io::Error::other(e.to_string()))?,
            From::Root(m) => {
                let fd = berth_sys::root::open_at(
                    m.root(),
                    item.real.as_bytes(),
                    nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NOFOLLOW,
                    berth_sys::root::Resolve::BeneathNoSymlinks,
                )?;
                std::fs::File::from(fd)
            }
        };
        let st = fstat(f.as_fd())?;
        Ok((f, Some((st.st_mtime, st.st_mtime_nsec))))
    }

    /// ADD of a local tar (plain or gzip): extracted into the destination directory, as Docker
    /// does. None when the file is no archive (it is then copied as a file).
    fn try_unpack(
        &self,
        item: &Item,
        dest: &str,
        _dest_is_dir: bool,
    ) -> std::io::Result<Option<()>> {
        let (mut f, _) = self.open_source(item)?;
        let mut head = vec![0u8; 512];
        let n = read_full(&mut f, &mut head)?;
        head.truncate(n);
        let gzip = head.starts_with(&[0x1f, 0x8b]);
        let tar_head = if gzip {
            let mut probe = vec![0u8; 512];
            let mut gz = flate2::read::GzDecoder::new(
                std::io::Cursor::new(head.clone()).chain(self.open_source(item)?.0),
            );
            let k = read_full(&mut gz, &mut probe).unwrap_or(0);
            probe.truncate(k);
            probe
        } else {
            head.clone()
        };
        if !looks_like_tar(&tar_head) {
            return Ok(None);
        }
        let (f, _) = self.open_source(item)?;
        let reader: Box<dyn Read> = if gzip {
            Box::new(flate2::read::GzDecoder::new(f))
        } else {
            Box::new(f)
        };
        fsops::mkdir_all(self.root, dest, self.parents)?;
        let target = berth_image::tree::untar::Target {
            root: self.root,
            base: PathBuf::from(dest),
            keep_owner: true,
            owners: None,
        };
        berth_image::tree::untar::untar(reader, &target)
            .map_err(|e| std::io::Error::new(e.kind(), format!("extracting {}: {e}", item.real)))?;
        Ok(Some(()))
    }

    /// A heredoc source (`COPY <<EOF /file`).
    fn inline(&self, f: &InlineFile, dest: &str, dest_is_dir: bool) -> std::io::Result<()> {
        let target = if dest_is_dir {
            format!("{}/{}", dest.trim_end_matches('/'), f.name)
        } else {
            dest.to_string()
        };
        let (parent, name) = split(&target);
        let p = fsops::mkdir_all(self.root, parent, self.parents)?;
        let m = self.meta(f.mode, None, false, None);
        fsops::write_file(p.as_fd(), name, &mut f.data.as_bytes(), &m).map(drop)
    }
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A tar header: ustar magic, or an old-style header whose checksum holds.
fn looks_like_tar(b: &[u8]) -> bool {
    if b.len() < 512 {
        return false;
    }
    if &b[257..262] == b"ustar" {
        return true;
    }
    let stored = std::str::from_utf8(&b[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' ').to_string())
        .and_then(|s| u32::from_str_radix(&s, 8).ok());
    let sum: u32 = b[..512]
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(c)
            }
        })
        .sum();
    stored == Some(sum) && b[0] != 0
}

/// WORKDIR: the directory and its missing parents, owned by the stage's user.
pub(crate) fn mkdir(dst: &Mounted, path: &str, user: &str) -> std::io::Result<()> {
    let owner = if user.is_empty() {
        (0, 0)
    } else {
        resolve_owner(&dst.path, user)?
    };
    fsops::mkdir_all(dst.root(), path, owner).map(drop)
}
