//! The build context: a directory (or a tar read into a scratch directory) seen through its
//! `.dockerignore`. It is walked once with `*at` calls that never follow a symlink; COPY sources are
//! then resolved on that snapshot, symlinks followed only inside the context root (an absolute
//! target or `..` stays in it, as BuildKit), and content digests for cache keys are computed from
//! file contents, modes and names, never mtimes or owners.

mod fsat;
mod sources;
pub mod tar;
mod walk;

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

pub use fsat::open_file_nofollow;
pub use sources::{glob_match, ResolvedSource};

use crate::ignore::{read_ignore_file, PatternMatcher};

/// What a context entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// A symlink and its target, as stored (never followed by the walk).
    Symlink(String),
    /// A FIFO, socket or device: listed, never read.
    Other,
}

/// One file of the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: EntryKind,
    /// Permission bits with setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub size: u64,
}

/// Failures reading a context.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("build context {path:?}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("build context: more than {0} entries")]
    TooManyEntries(usize),
    #[error("build context: path {0:?} is too long")]
    PathTooLong(String),
    #[error("build context: file name {0:?} is not valid UTF-8")]
    InvalidName(String),
    #[error("failed to compute cache key: {0:?} not found")]
    NotFound(String),
    #[error("build context: {path:?}: too many levels of symbolic links")]
    SymlinkLoop { path: String },
    #[error(".dockerignore: {0}")]
    Pattern(#[from] crate::ignore::PatternError),
    #[error("context tar: {0}")]
    Tar(String),
}

pub(crate) fn io_err(path: &str, source: std::io::Error) -> ContextError {
    ContextError::Io {
        path: path.to_string(),
        source,
    }
}

/// Bounds on a context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextLimits {
    pub max_entries: usize,
    pub max_path_bytes: usize,
    /// Tar contexts: all file data together.
    pub max_total_bytes: u64,
    /// Tar contexts: one name (long names included).
    pub max_name_bytes: usize,
}

impl Default for ContextLimits {
    fn default() -> ContextLimits {
        ContextLimits {
            max_entries: 1_000_000,
            max_path_bytes: 4096,
            max_total_bytes: 16 << 30,
            max_name_bytes: 4096,
        }
    }
}

/// An opened build context and its walked, filtered snapshot.
#[derive(Debug)]
pub struct Context {
    root: OwnedFd,
    path: PathBuf,
    ignore: PatternMatcher,
    /// Included entries by relative path (`a/b`); the root is not listed.
    entries: BTreeMap<String, Entry>,
}

/// The ignore file for a Dockerfile: `<Dockerfile>.dockerignore` beside it wins over the context's
/// `.dockerignore`, as BuildKit.
pub fn ignore_patterns(
    context: &Path,
    dockerfile: Option<&Path>,
) -> Result<Vec<String>, ContextError> {
    const MAX: u64 = 4 << 20;
    // (the path shown, the file as read): inside the context a file is read in the context's
    // root, so a symlinked ignore file of a hostile context cannot pull in a host file.
    let mut candidates: Vec<(PathBuf, std::io::Result<Vec<u8>>)> = Vec::new();
    let in_context = |rel: &Path| berth_sys::root::read_file(context, rel, MAX);
    if let Some(df) = dockerfile {
        let mut name = df.as_os_str().to_owned();
        name.push(".dockerignore");
        let p = PathBuf::from(name);
        let read = match p.strip_prefix(context) {
            Ok(rel) => in_context(rel),
            Err(_) => read_outside(&p, MAX),
        };
        candidates.push((p, read));
    }
    candidates.push((
        context.join(".dockerignore"),
        in_context(Path::new(".dockerignore")),
    ));
    for (c, read) in candidates {
        match read {
            Ok(bytes) => return Ok(read_ignore_file(&bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&c.display().to_string(), e)),
        }
    }
    Ok(Vec::new())
}

/// A file the user named outside the context, at most `max` bytes.
fn read_outside(p: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(p)?
        .take(max + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {} MiB", max >> 20),
        ));
    }
    Ok(bytes)
}

impl Context {
    /// Opens and walks `dir` with its ignore file (see `ignore_patterns`).
    pub fn open(dir: &Path, dockerfile: Option<&Path>) -> Result<Context, ContextError> {
        let patterns = ignore_patterns(dir, dockerfile)?;
        Context::open_with(dir, &patterns, &ContextLimits::default())
    }

    /// Opens and walks `dir` with explicit ignore patterns.
    pub fn open_with(
        dir: &Path,
        patterns: &[String],
        limits: &ContextLimits,
    ) -> Result<Context, ContextError> {
        let name = dir.display().to_string();
        let root = nix::fcntl::open(dir, fsat::DIR_FLAGS, nix::sys::stat::Mode::empty())
            .map_err(|e| io_err(&name, e.into()))?;
        let ignore = PatternMatcher::new(patterns)?;
        let entries = walk::walk(&root, &ignore, limits)?;
        Ok(Context {
            root,
            path: dir.to_path_buf(),
            ignore,
            entries,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn ignore(&self) -> &PatternMatcher {
        &self.ignore
    }

    /// Every included entry, by relative path, in order.
    pub fn entries(&self) -> &BTreeMap<String, Entry> {
        &self.entries
    }

    /// Opens an included regular file (relative, resolved path) without following any symlink.
    pub fn open_file(&self, path: &str) -> Result<std::fs::File, ContextError> {
        if !matches!(
            self.entries.get(path),
            Some(Entry {
                kind: EntryKind::File,
                ..
            })
        ) {
            return Err(ContextError::NotFound(path.to_string()));
        }
        open_file_nofollow(&self.root, path).map_err(|e| io_err(path, e))
    }
}
