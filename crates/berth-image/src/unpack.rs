//! Unpacks one layer's (already decompressed) tar stream into its own empty overlayfs diff
//! directory, containerd-style: whiteouts become overlayfs whiteouts (0/0 character devices and
//! `trusted.overlay.opaque`). The stream is hostile: every path is resolved inside the layer
//! directory, nothing is ever created or followed outside it, and sizes are bounded.

mod data;
mod layer_dir;
mod meta;
mod path;

use std::borrow::Cow;
use std::cell::Cell;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use nix::unistd::{linkat, symlinkat};
use tar::EntryType;

use layer_dir::{make_dir, open_dir_in_root, replacing, LayerDir};
pub use meta::xattr_allowed;
use meta::{finish_dirs, set_dir_xattr, Meta};
use path::{BadPath, BadWhiteout, Kind, LayerPath};

/// Bounds and privileges for one unpack.
#[derive(Debug, Clone)]
pub struct UnpackOptions {
    /// Bound on the total apparent size of the layer's regular files.
    pub max_bytes: u64,
    /// Bound on the number of entries in the stream.
    pub max_entries: u64,
    /// Apply owners and make device nodes (needs root). Without it files belong to the caller and
    /// device nodes are skipped.
    pub same_owner: bool,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        UnpackOptions {
            max_bytes: 64 << 30,
            max_entries: 5_000_000,
            same_owner: nix::unistd::geteuid().is_root(),
        }
    }
}

/// What an unpack wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Entries in the stream, skipped ones included.
    pub entries: u64,
    /// Apparent bytes of regular files (hardlinks not counted again).
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer directory {}: {source}", path.display())]
    Dest { path: PathBuf, source: io::Error },
    #[error("layer: reading the tar stream{}: {source}", after_entry(.after))]
    Stream {
        /// The last entry read whole, if any.
        after: Option<String>,
        source: io::Error,
    },
    #[error("layer entry {path:?}: {problem}")]
    Entry { path: String, problem: EntryProblem },
}

fn after_entry(after: &Option<String>) -> String {
    after
        .as_ref()
        .map(|p| format!(" after entry {p:?}"))
        .unwrap_or_default()
}

/// What is wrong with one entry.
#[derive(Debug, thiserror::Error)]
pub enum EntryProblem {
    #[error("path escapes the layer")]
    Escapes,
    #[error("hardlink target {0:?} escapes the layer")]
    LinkEscapes(String),
    #[error("whiteout aims outside its directory")]
    WhiteoutEscapes,
    #[error("more entries than the bound of {0}")]
    TooManyEntries(u64),
    #[error("regular files exceed the bound of {0} bytes")]
    TooLarge(u64),
    #[error("{what} is {len} bytes long, over the bound of {MAX_NAME} (PATH_MAX)")]
    NameTooLong { what: &'static str, len: usize },
    #[error("{what} needs root: {source}")]
    NeedsRoot {
        what: &'static str,
        source: io::Error,
    },
    /// EINVAL from chown: the id has no mapping in this user namespace (a rootless user
    /// without subordinate ids, or a range too small for the image).
    #[error("owner {uid}:{gid} is not mapped in this user namespace (rootless: give your user subordinate ids in /etc/subuid and /etc/subgid, then run `berth system migrate`)")]
    UnmappedOwner { uid: u32, gid: u32 },
    #[error("{0}")]
    Invalid(String),
    #[error("{op}: {source}")]
    Io {
        op: Cow<'static, str>,
        source: io::Error,
    },
}

impl EntryProblem {
    fn op(op: &'static str, source: impl Into<io::Error>) -> EntryProblem {
        EntryProblem::Io {
            op: op.into(),
            source: source.into(),
        }
    }
}

/// Names the step that failed.
trait Context<T> {
    fn op(self, op: &'static str) -> Result<T, EntryProblem>;
}

impl<T, E: Into<io::Error>> Context<T> for Result<T, E> {
    fn op(self, op: &'static str) -> Result<T, EntryProblem> {
        self.map_err(|e| EntryProblem::op(op, e))
    }
}

/// An entry name as users see it in messages.
fn shown(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

/// What the tar crate may read on its own before handing over an entry: its header and any
/// extension headers (PAX records, GNU long names), which it holds in memory whole.
const HEADER_BUDGET: u64 = 1 << 20;

/// The longest entry name or link target: the kernel's PATH_MAX (no longer name can be made).
pub const MAX_NAME: usize = 4096;

/// Refuses a name or link target longer than `MAX_NAME`.
fn bounded_name<'n>(what: &'static str, name: &'n [u8]) -> Result<&'n [u8], EntryProblem> {
    if name.len() > MAX_NAME {
        return Err(EntryProblem::NameTooLong {
            what,
            len: name.len(),
        });
    }
    Ok(name)
}

/// The stream, with a budget that `unpack` sets to `HEADER_BUDGET` while the tar crate looks for the
/// next entry, so a stream cannot make it hold gigabytes of "headers".
struct Budgeted<'b, R> {
    inner: R,
    left: &'b Cell<u64>,
}

impl<R: Read> Read for Budgeted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left.get();
        if left == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "entry headers (PAX records, long names) exceed {} MiB",
                    HEADER_BUDGET >> 20
                ),
            ));
        }
        let len = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..len])?;
        self.left.set(left - n as u64);
        Ok(n)
    }
}

/// The tar crate's message for a broken stream quotes raw header bytes: keep it to one short line.
fn one_line(e: &io::Error) -> String {
    const MAX: usize = 160;
    let mut s: String = e
        .to_string()
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(MAX + 1)
        .collect();
    if s.chars().count() > MAX {
        s = s.chars().take(MAX).collect();
        s.push('…');
    }
    s
}

/// Unpacks the tar stream `reader` into `dest`, an existing empty directory. Reads up to the
/// end-of-archive marker. The reader should be buffered (headers are read 512 bytes at a time).
pub fn unpack(
    reader: impl Read,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    let mut layer = LayerDir::open(dest).map_err(|source| UnpackError::Dest {
        path: dest.to_path_buf(),
        source,
    })?;
    let budget = Cell::new(HEADER_BUDGET);
    let mut archive = tar::Archive::new(crate::tarfmt::Compat::new(Budgeted {
        inner: reader,
        left: &budget,
    }));
    let mut entries = archive.entries().map_err(|source| UnpackError::Stream {
        after: None,
        source,
    })?;
    let mut run = Run {
        opts,
        stats: UnpackStats::default(),
        dirs: Vec::new(),
        buf: vec![0u8; data::BUF_SIZE],
    };
    let mut last: Option<Vec<u8>> = None;
    loop {
        budget.set(HEADER_BUDGET);
        let Some(entry) = entries.next() else { break };
        let mut entry = entry.map_err(|e| UnpackError::Stream {
            after: last.as_deref().map(shown),
            source: io::Error::new(e.kind(), one_line(&e)),
        })?;
        budget.set(u64::MAX);
        let raw = entry.path_bytes().into_owned();
        let fail = |problem| UnpackError::Entry {
            path: shown(&raw),
            problem,
        };
        run.entry(&mut layer, &mut entry, &raw).map_err(fail)?;
        // Data nobody wanted (a skipped entry's) is read here, outside the header budget.
        io::copy(&mut entry, &mut io::sink())
            .op("reading the data")
            .map_err(fail)?;
        last = Some(raw);
    }
    finish_dirs(layer.root(), &run.dirs, opts.same_owner)?;
    Ok(run.stats)
}

/// The state of one unpack.
struct Run<'o> {
    opts: &'o UnpackOptions,
    stats: UnpackStats,
    /// Directory entries in stream order, for the last pass.
    dirs: Vec<(Vec<u8>, Meta)>,
    buf: Vec<u8>,
}

impl Run<'_> {
    fn entry<R: Read>(
        &mut self,
        layer: &mut LayerDir,
        entry: &mut tar::Entry<'_, R>,
        raw: &[u8],
    ) -> Result<(), EntryProblem> {
        self.stats.entries += 1;
        if self.stats.entries > self.opts.max_entries {
            return Err(EntryProblem::TooManyEntries(self.opts.max_entries));
        }
        let path = LayerPath::clean(bounded_name("the name", raw)?).map_err(|e| match e {
            BadPath::Escapes => EntryProblem::Escapes,
            BadPath::Nul => EntryProblem::Invalid("path holds a NUL byte".into()),
        })?;
        let kind = path.kind().map_err(|e| match e {
            BadWhiteout::Escapes => EntryProblem::WhiteoutEscapes,
            BadWhiteout::NoName => EntryProblem::Invalid("whiteout names no file".into()),
        })?;
        let (parent, name) = path.split().unwrap_or((b"", b""));
        match kind {
            Kind::AufsMeta => return Ok(()),
            Kind::Opaque => return opaque(layer, parent),
            Kind::Whiteout(hidden) => return whiteout(layer, parent, hidden),
            Kind::Plain => {}
        }
        let ty = entry.header().entry_type();
        if matches!(ty, EntryType::XGlobalHeader) {
            return Ok(());
        }
        let mut meta = Meta::read(entry)?;
        if path.is_root() {
            return match ty {
                EntryType::Directory => {
                    self.dir_xattrs(layer.root(), &mut meta)?;
                    self.dirs.push((Vec::new(), meta));
                    Ok(())
                }
                _ => Err(EntryProblem::Invalid(
                    "only a directory can name the layer root".into(),
                )),
            };
        }
        match ty {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.file(layer, parent, name, entry, &meta)
            }
            EntryType::Directory => self.dir(layer, path, meta),
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| EntryProblem::Invalid("symlink has no target".into()))?;
                bounded_name("the symlink target", &target)?;
                let dir = layer.dir(parent).op("opening the parent")?;
                replacing(dir, name, || symlinkat(&*target, dir, name)).op("making the symlink")?;
                meta.apply_at(dir, name, self.opts.same_owner, false)
            }
            EntryType::Link => hardlink(layer, &path, entry),
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                self.node(layer, parent, name, entry, &meta)
            }
            other => Err(EntryProblem::Invalid(format!(
                "unsupported entry type {:?}",
                other.as_byte() as char
            ))),
        }
    }

    /// A directory is made (or kept) now and becomes the cached one, since its entries come next;
    /// its owner, mode and times wait for the last pass.
    fn dir(
        &mut self,
        layer: &mut LayerDir,
        path: LayerPath,
        mut meta: Meta,
    ) -> Result<(), EntryProblem> {
        let (parent, name) = path.split().unwrap_or((b"", b""));
        let fd = make_dir(layer.dir(parent).op("opening the parent")?, name)
            .op("making the directory")?;
        self.dir_xattrs(fd.as_fd(), &mut meta)?;
        layer.cache(path.as_bytes(), fd);
        self.dirs.push((path.into_bytes(), meta));
        Ok(())
    }

    fn file<R: Read>(
        &mut self,
        layer: &mut LayerDir,
        parent: &[u8],
        name: &[u8],
        entry: &mut tar::Entry<'_, R>,
        meta: &Meta,
    ) -> Result<(), EntryProblem> {
        let size = entry.size();
        let total = self.stats.bytes.saturating_add(size);
        if total > self.opts.max_bytes {
            return Err(EntryProblem::TooLarge(self.opts.max_bytes));
        }
        self.stats.bytes = total;
        let dir = layer.dir(parent).op("opening the parent")?;
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let file = replacing(dir, name, || {
            openat(dir, name, flags, Mode::from_bits_truncate(0o600))
        })
        .op("creating the file")?;
        data::copy_sparse(entry, file.as_fd(), size, &mut self.buf).op("writing the data")?;
        meta.apply_fd(file.as_fd(), self.opts.same_owner)
    }

    fn node<R: Read>(
        &mut self,
        layer: &mut LayerDir,
        parent: &[u8],
        name: &[u8],
        entry: &mut tar::Entry<'_, R>,
        meta: &Meta,
    ) -> Result<(), EntryProblem> {
        let h = entry.header();
        let kind = match h.entry_type() {
            EntryType::Char => SFlag::S_IFCHR,
            EntryType::Block => SFlag::S_IFBLK,
            _ => SFlag::S_IFIFO,
        };
        if kind != SFlag::S_IFIFO && !self.opts.same_owner {
            return Ok(());
        }
        let number = |v: io::Result<Option<u32>>| {
            v.map(|n| u64::from(n.unwrap_or(0)))
                .map_err(|e| EntryProblem::Invalid(format!("device number: {e}")))
        };
        let dev = makedev(number(h.device_major())?, number(h.device_minor())?);
        let dir = layer.dir(parent).op("opening the parent")?;
        let perm = Mode::from_bits_truncate(meta.mode & 0o777);
        replacing(dir, name, || mknodat(dir, name, kind, perm, dev)).map_err(|e| {
            if kind != SFlag::S_IFIFO && e.raw_os_error() == Some(libc::EPERM) {
                EntryProblem::NeedsRoot {
                    what: "a device node",
                    source: e,
                }
            } else {
                EntryProblem::op("making the node", e)
            }
        })?;
        meta.apply_at(dir, name, self.opts.same_owner, true)
    }

    /// Xattrs go on a directory when it is made (chown on a directory keeps them); owner, mode and
    /// times wait for the last pass.
    fn dir_xattrs(&self, dir: BorrowedFd<'_>, meta: &mut Meta) -> Result<(), EntryProblem> {
        if meta.xattrs.is_empty() {
            return Ok(());
        }
        meta.apply_xattrs(dir, self.opts.same_owner)?;
        meta.xattrs = Vec::new();
        Ok(())
    }
}

/// `.wh..wh..opq` in directory `dir_path`: mark it opaque (making it if the layer did not list it).
fn opaque(layer: &mut LayerDir, dir_path: &[u8]) -> Result<(), EntryProblem> {
    let name = crate::tree::opaque_xattr().op("choosing the opaque mark")?;
    let dir = layer.dir(dir_path).op("opening the directory")?;
    set_dir_xattr(dir, name, b"y").map_err(|e| match e {
        Errno::EPERM => EntryProblem::NeedsRoot {
            what: "an opaque directory (overlayfs's opaque xattr)",
            source: e.into(),
        },
        e => EntryProblem::op("marking the directory opaque", e),
    })
}

/// `.wh.NAME` in `parent`: a 0/0 character device named NAME, which overlayfs reads as "deleted".
fn whiteout(layer: &mut LayerDir, parent: &[u8], hidden: &[u8]) -> Result<(), EntryProblem> {
    let dir = layer.dir(parent).op("opening the parent")?;
    replacing(dir, hidden, || {
        mknodat(dir, hidden, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
    })
    .map_err(|e| match e.raw_os_error() {
        Some(libc::EPERM) => EntryProblem::NeedsRoot {
            what: "a whiteout (a 0/0 character device)",
            source: e,
        },
        _ => EntryProblem::op("making the whiteout", e),
    })
}

/// A hardlink to an earlier entry of this layer. The target is resolved inside the layer like any
/// path; a target outside it is an error, and a symlink target is linked itself, never followed.
fn hardlink<R: Read>(
    layer: &mut LayerDir,
    path: &LayerPath,
    entry: &tar::Entry<'_, R>,
) -> Result<(), EntryProblem> {
    let raw_target = entry
        .link_name_bytes()
        .ok_or_else(|| EntryProblem::Invalid("hardlink has no target".into()))?;
    bounded_name("the hardlink target", &raw_target)?;
    let target = LayerPath::clean(&raw_target).map_err(|e| match e {
        BadPath::Escapes => EntryProblem::LinkEscapes(shown(&raw_target)),
        BadPath::Nul => EntryProblem::Invalid("hardlink target holds a NUL byte".into()),
    })?;
    if target == *path {
        return Ok(());
    }
    let (Some((tparent, tname)), Some((parent, name))) = (target.split(), path.split()) else {
        return Err(EntryProblem::Invalid("hardlink to the layer root".into()));
    };
    let target_dir = if tparent == parent {
        None
    } else {
        let fd = open_dir_in_root(layer.root(), tparent, OFlag::empty());
        Some(fd.map_err(|e| link_target_problem(&raw_target, e))?)
    };
    let dir = layer.dir(parent).op("opening the parent")?;
    let tdir = target_dir.as_ref().map_or(dir, |fd| fd.as_fd());
    replacing(dir, name, || {
        linkat(tdir, tname, dir, name, AtFlags::empty())
    })
    .map_err(|e| link_target_problem(&raw_target, e))
}

fn link_target_problem(target: &[u8], e: io::Error) -> EntryProblem {
    if e.raw_os_error() == Some(libc::ENOENT) {
        return EntryProblem::Invalid(format!(
            "hardlink target {:?} is not in this layer",
            shown(target)
        ));
    }
    EntryProblem::Io {
        op: format!("hardlink to {:?}", shown(target)).into(),
        source: e,
    }
}
