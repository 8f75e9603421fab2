//! The store (`--root`) and the runroot (`--runroot`) as directories of berth's own: a
//! directory that already holds files is taken only when berth made it (its marker, or what an
//! older berth left there), so a mistyped `--root /etc` changes no mode and writes no file; a
//! taken one is made root's alone (0700). It never looks below the directory's own entries.

use crate::error::{EngineError, Result};
use std::fs;
use std::path::Path;

/// The file that marks a directory as berth's own store or runroot.
const MARKER: &str = ".berth";

/// Which of berth's directories, for the message and for what an older berth left in it.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Root,
    Runroot,
}

impl Kind {
    fn flag(self) -> &'static str {
        match self {
            Kind::Root => "--root",
            Kind::Runroot => "--runroot",
        }
    }

    /// Whether `dir` is one an older berth made before the marker existed: a store with its
    /// content and layer directories and its lock, a runroot with the runtime's state or the
    /// rootless pause process's record.
    fn made_by_older_berth(self, dir: &Path) -> bool {
        match self {
            Kind::Root => ["blobs", "layers", "gc.lock"]
                .iter()
                .all(|n| dir.join(n).exists()),
            Kind::Runroot => ["runtime", "pause.pid"]
                .iter()
                .any(|n| dir.join(n).exists()),
        }
    }
}

/// Refuses a directory that holds files but is not berth's. A missing or empty one is fine.
pub fn check(dir: &Path, kind: Kind) -> Result<()> {
    // Every command opens the store: the marker, one stat, is the usual answer.
    if dir.join(MARKER).exists() {
        return Ok(());
    }
    let mut entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(EngineError::io(dir.display(), e)),
    };
    let empty = entries.next().is_none();
    if empty || kind.made_by_older_berth(dir) {
        return Ok(());
    }
    Err(EngineError::msg(format!(
        "{} {}: the directory holds files berth did not make: give berth a new or empty directory of its own",
        kind.flag(),
        dir.display()
    )))
}

/// Makes `dir` (and its missing parents), marks it berth's and gives it mode 0700: the store and
/// the runroot are readable by root only (or the rootless user only). Call `check` first.
pub fn make_private(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let io = |e| EngineError::io(dir.display(), e);
    let private = |m: &fs::Metadata| m.is_dir() && m.permissions().mode() & 0o7777 == 0o700;
    let marker = dir.join(MARKER);
    // The usual case, an existing store of berth's: two stats.
    if fs::metadata(dir).is_ok_and(|m| private(&m)) && marker.exists() {
        return Ok(());
    }
    // Missing parents get the usual mode (a remapped root must still walk through them to the
    // runroot's `-userns` sibling); only the directory itself is private.
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent).map_err(io)?;
    }
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(io(e)),
        _ => {}
    }
    if !marker.exists() {
        fs::write(&marker, b"").map_err(io)?;
    }
    let meta = fs::metadata(dir).map_err(io)?;
    if !private(&meta) {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| EngineError::io(format!("making {} private", dir.display()), e))?;
    }
    Ok(())
}
