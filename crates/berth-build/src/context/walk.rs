//! The context walk: depth-first over directory fds, `fstatat(AT_SYMLINK_NOFOLLOW)` on every name,
//! subdirectories opened with `O_NOFOLLOW`. An ignored directory is skipped whole unless an `!`
//! exception could bring something under it back; parents of included entries are always listed.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;

use nix::dir::Dir;
use nix::fcntl::{readlinkat, AtFlags};
use nix::sys::stat::fstatat;

use super::fsat::open_dir_at;
use super::{io_err, ContextError, ContextLimits, Entry, EntryKind};
use crate::ignore::{MatchInfo, PatternMatcher};

fn names(dir: &OwnedFd, path: &str) -> Result<Vec<String>, ContextError> {
    let fd = dir.try_clone().map_err(|e| io_err(path, e))?;
    let mut d = Dir::from_fd(fd).map_err(|e| io_err(path, e.into()))?;
    let mut out = Vec::new();
    for ent in d.iter() {
        let ent = ent.map_err(|e| io_err(path, e.into()))?;
        let name = ent.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        match std::str::from_utf8(name) {
            Ok(n) => out.push(n.to_string()),
            Err(_) => {
                return Err(ContextError::InvalidName(format!(
                    "{path}/{}",
                    String::from_utf8_lossy(name)
                )))
            }
        }
    }
    out.sort();
    Ok(out)
}

pub(super) fn walk(
    root: &OwnedFd,
    ignore: &PatternMatcher,
    limits: &ContextLimits,
) -> Result<BTreeMap<String, Entry>, ContextError> {
    let mut out = BTreeMap::new();
    // Directories seen, included or not, so an included child can list its parents.
    let mut dirs: BTreeMap<String, Entry> = BTreeMap::new();
    let mut stack: Vec<(OwnedFd, String, MatchInfo)> = vec![(
        root.try_clone().map_err(|e| io_err(".", e))?,
        String::new(),
        MatchInfo::default(),
    )];
    let mut seen = 0usize;
    while let Some((dir, path, info)) = stack.pop() {
        for name in names(&dir, if path.is_empty() { "." } else { &path })? {
            let rel = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}/{name}")
            };
            seen += 1;
            if seen > limits.max_entries {
                return Err(ContextError::TooManyEntries(limits.max_entries));
            }
            if rel.len() > limits.max_path_bytes {
                return Err(ContextError::PathTooLong(rel));
            }
            let st = fstatat(&dir, name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(|e| io_err(&rel, e.into()))?;
            let (ignored, child_info) = ignore.matches_with_parent(&rel, &info);
            let mode = st.st_mode & 0o7777;
            let kind = match st.st_mode & libc::S_IFMT {
                libc::S_IFDIR => EntryKind::Dir,
                libc::S_IFREG => EntryKind::File,
                libc::S_IFLNK => {
                    let t = readlinkat(&dir, name.as_str()).map_err(|e| io_err(&rel, e.into()))?;
                    EntryKind::Symlink(t.to_string_lossy().into_owned())
                }
                _ => EntryKind::Other,
            };
            let entry = Entry {
                kind: kind.clone(),
                mode,
                size: if kind == EntryKind::File {
                    st.st_size as u64
                } else {
                    0
                },
            };
            if kind == EntryKind::Dir {
                dirs.insert(rel.clone(), entry.clone());
                if ignored && !ignore.has_exclusions() {
                    continue;
                }
                let sub = open_dir_at(&dir, name.as_str()).map_err(|e| io_err(&rel, e))?;
                stack.push((sub, rel.clone(), child_info));
            }
            if !ignored {
                out.insert(rel, entry);
            }
        }
    }
    let parents: Vec<String> = out
        .keys()
        .flat_map(|k| {
            k.match_indices('/')
                .map(|(i, _)| k[..i].to_string())
                .collect::<Vec<_>>()
        })
        .filter(|p| !out.contains_key(p))
        .collect();
    for p in parents {
        if let Some(e) = dirs.get(&p) {
            out.insert(p, e.clone());
        }
    }
    Ok(out)
}
