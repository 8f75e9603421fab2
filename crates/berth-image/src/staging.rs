//! Staging that belongs to a process: files and directories in `ingest/` and `layers/tmp/` are
//! named after their owner (`PID.START-N`, `load-PID.START`), so any later process can tell a
//! dead owner's leftovers (its pid gone, or reused by another process) from work in progress, and
//! reclaim them. Nothing here removes what a live process is writing.

use berth_sys::process::Owner;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A fresh staging name owned by this process: `PREFIX-PID.START-N` (no prefix: `PID.START-N`).
pub fn name(prefix: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let owner = Owner::me().tag();
    if prefix.is_empty() {
        format!("{owner}-{n}")
    } else {
        format!("{prefix}-{owner}-{n}")
    }
}

/// The owner a staging name carries, after its prefix if any; None for a name that carries none
/// (left by a removal, `gc-…`, or by an older berth).
fn owner_of(name: &str) -> Option<Owner> {
    let rest = match name.split_once('-') {
        Some((head, rest)) if head.parse::<i32>().is_err() && !head.contains('.') => rest,
        _ => name,
    };
    Owner::from_tag(rest)
}

/// Whether whoever made `name` is gone. A name without an owner is judged by the pid an older
/// berth put first (`PID-N`); a removal's leftover (`gc-…`, `rm-…`) is always stale.
fn abandoned(name: &str) -> bool {
    if let Some(owner) = owner_of(name) {
        return !owner.alive();
    }
    match name.split('-').next().and_then(|p| p.parse::<i32>().ok()) {
        Some(pid) => !berth_sys::process::alive(pid, 0),
        None => name.starts_with("gc-") || name.starts_with("rm-"),
    }
}

/// Disk space used by `path` (a file or a whole tree, not following symlinks), in bytes.
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    let mut total = meta.blocks() * 512;
    if meta.is_dir() {
        for e in fs::read_dir(path).into_iter().flatten().flatten() {
            total += disk_usage(&e.path());
        }
    }
    total
}

/// Removes what dead processes left in `dir`; returns the disk space freed.
pub fn reclaim(dir: &Path) -> u64 {
    let mut freed = 0;
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !abandoned(&name) {
            continue;
        }
        let path = e.path();
        let size = disk_usage(&path);
        let gone = match e.file_type() {
            Ok(t) if t.is_dir() => fs::remove_dir_all(&path),
            _ => fs::remove_file(&path),
        };
        if gone.is_ok() {
            freed += size;
        }
    }
    freed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_owner_and_dead_owners_are_reclaimed() {
        let d = tempfile::tempdir().unwrap();
        let mine = name("");
        let mine_load = name("load");
        assert_eq!(owner_of(&mine), Some(Owner::me()));
        assert_eq!(owner_of(&mine_load), Some(Owner::me()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = Owner {
            pid: child.id() as i32,
            start: berth_sys::process::start_time(child.id() as i32),
        };
        child.wait().unwrap();
        let reused = Owner {
            start: Owner::me().start + 1,
            ..Owner::me()
        };
        for n in [&mine, &mine_load] {
            fs::write(d.path().join(n), vec![1u8; 8192]).unwrap();
        }
        let dead_file = format!("{}-0", dead.tag());
        let dead_dir = format!("load-{}-3", reused.tag());
        fs::write(d.path().join(&dead_file), vec![1u8; 8192]).unwrap();
        fs::create_dir_all(d.path().join(&dead_dir).join("diff")).unwrap();
        fs::write(d.path().join(&dead_dir).join("diff/x"), vec![1u8; 8192]).unwrap();
        fs::create_dir(d.path().join("gc-abc")).unwrap();
        let freed = reclaim(d.path());
        assert!(freed >= 16384, "{freed}");
        let mut left: Vec<String> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut want = vec![mine.clone(), mine_load.clone()];
        want.sort();
        assert_eq!(left, want);
    }
}
