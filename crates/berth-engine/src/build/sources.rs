//! What a COPY source names, as items to place: from the context's walked snapshot (symlinks
//! followed only inside the context), or from another stage's or an image's mounted root
//! (resolved in that root, directories walked without following a symlink, wildcards matched
//! component by component). Reads only; `copy.rs` writes.

use super::fsops;
use super::BuildError;
use berth_build::context::{Context, EntryKind};
use berth_image::tree::{file_type, handle_at, names};
use nix::sys::stat::{fstat, SFlag};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// One entry a source brings: its name relative to where the source lands.
pub(crate) struct Item {
    pub rel: String,
    /// Its path in the source (the context, or the source root), free of symlinks.
    pub real: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub owner: Option<(u32, u32)>,
    pub mtime: Option<(i64, i64)>,
}

/// What one source of a COPY names.
pub(crate) struct SourceSet {
    pub items: Vec<Item>,
    /// The source is one file (or one symlink), placed by `name` or as the destination itself.
    pub single: Option<String>,
}

pub(crate) fn context_set(
    ctx: &Context,
    spec: &str,
    excludes: &[String],
) -> std::result::Result<SourceSet, BuildError> {
    let resolved = ctx.copy_sources(&[spec.to_string()], excludes)?;
    let mut items = Vec::new();
    for r in resolved {
        for (rel, real, e) in r.items {
            items.push(Item {
                rel,
                real,
                kind: e.kind,
                mode: e.mode,
                owner: None,
                mtime: None,
            });
        }
    }
    let wildcard = spec.contains(['*', '?', '[']);
    let is_dir = !wildcard
        && ctx.resolve_path(spec)?.is_some_and(|real| {
            real.is_empty()
                || ctx
                    .entries()
                    .get(&real)
                    .is_some_and(|e| e.kind == EntryKind::Dir)
        });
    if wildcard && items.is_empty() {
        return Err(berth_build::context::ContextError::NotFound(spec.to_string()).into());
    }
    let single =
        (!is_dir && items.len() == 1 && !items[0].rel.contains('/')).then(|| items[0].rel.clone());
    Ok(SourceSet { items, single })
}

/// A source in another stage's (or an image's) root: resolved in that root, a directory walked
/// without following any symlink in it, wildcards matched component by component.
pub(crate) fn root_set(root: BorrowedFd<'_>, spec: &str) -> std::io::Result<SourceSet> {
    let clean = berth_build::plan::values::normalize_source(spec);
    let mut items = Vec::new();
    if clean.contains(['*', '?', '[']) {
        let mut matches = Vec::new();
        glob_root(root, "", &clean, &mut matches)?;
        if matches.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no source files were specified: {spec} matches nothing"),
            ));
        }
        for m in &matches {
            let base = m.rsplit('/').next().unwrap_or(m).to_string();
            walk_root(root, m, &base, &mut items)?;
        }
        let single =
            (items.len() == 1 && items[0].kind != EntryKind::Dir).then(|| items[0].rel.clone());
        return Ok(SourceSet { items, single });
    }
    let real = resolve_in_root(root, &clean)?;
    let base = clean.rsplit('/').next().unwrap_or("").to_string();
    walk_root(root, &real, &base, &mut items)?;
    match items.first() {
        Some(first) if first.kind == EntryKind::Dir => {
            // A directory: its contents, not itself.
            items.remove(0);
            let prefix = format!("{base}/");
            for i in &mut items {
                i.rel = i.rel.strip_prefix(&prefix).unwrap_or(&i.rel).to_string();
            }
            Ok(SourceSet {
                items,
                single: None,
            })
        }
        _ => Ok(SourceSet {
            single: Some(base),
            items,
        }),
    }
}

/// The symlink-free path of `path` in `root`, symlinks on the way followed inside the root.
fn resolve_in_root(root: BorrowedFd<'_>, path: &str) -> std::io::Result<String> {
    let fd = berth_sys::root::open_at(
        root,
        path.as_bytes(),
        nix::fcntl::OFlag::O_PATH,
        berth_sys::root::Resolve::InRoot,
    )
    .map_err(|e| std::io::Error::new(e.kind(), format!("{path}: {e}")))?;
    // The kernel's name for what it resolved, relative to the root's own name.
    let got = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fd)
    ))?;
    let top = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&root)
    ))?;
    let rel = got
        .strip_prefix(&top)
        .map_err(|_| std::io::Error::other(format!("{path}: resolved outside its root")))?;
    Ok(format!("/{}", rel.display()))
}

/// Mode bits, owner (uid, gid) and mtime (seconds, nanoseconds) of an entry.
type EntryMeta = (u32, Option<(u32, u32)>, Option<(i64, i64)>);

fn meta_of(st: &nix::sys::stat::FileStat) -> EntryMeta {
    (
        st.st_mode & 0o7777,
        Some((st.st_uid, st.st_gid)),
        Some((st.st_mtime, st.st_mtime_nsec)),
    )
}

/// Lists `real` (a symlink-free path in `root`) and everything below it as items named under `rel`.
fn walk_root(
    root: BorrowedFd<'_>,
    real: &str,
    rel: &str,
    out: &mut Vec<Item>,
) -> std::io::Result<()> {
    let handle = berth_sys::root::open_at(
        root,
        real.as_bytes(),
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_NOFOLLOW,
        berth_sys::root::Resolve::BeneathNoSymlinks,
    )?;
    walk_handle(&handle, real, rel, out)
}

fn walk_handle(h: &OwnedFd, real: &str, rel: &str, out: &mut Vec<Item>) -> std::io::Result<()> {
    let st = fstat(h.as_fd())?;
    let (mode, owner, mtime) = meta_of(&st);
    let kind = match file_type(&st) {
        SFlag::S_IFDIR => EntryKind::Dir,
        SFlag::S_IFREG => EntryKind::File,
        SFlag::S_IFLNK => {
            let t = nix::fcntl::readlinkat(h.as_fd(), "")?;
            EntryKind::Symlink(t.to_string_lossy().into_owned())
        }
        _ => EntryKind::Other,
    };
    let is_dir = kind == EntryKind::Dir;
    out.push(Item {
        rel: rel.to_string(),
        real: real.to_string(),
        kind,
        mode,
        owner,
        mtime,
    });
    if is_dir {
        for n in names(h.as_fd())? {
            let name = n.to_string_lossy().into_owned();
            let child = handle_at(h.as_fd(), &n)?;
            walk_handle(
                &child,
                &format!("{}/{name}", real.trim_end_matches('/')),
                &format!("{rel}/{name}"),
                out,
            )?;
        }
    }
    Ok(())
}

/// Paths in `root` matching `pattern` (absolute, clean), component by component.
fn glob_root(
    root: BorrowedFd<'_>,
    at: &str,
    pattern: &str,
    out: &mut Vec<String>,
) -> std::io::Result<()> {
    let pattern = pattern.trim_start_matches('/');
    let (head, rest) = pattern.split_once('/').unwrap_or((pattern, ""));
    let here = if at.is_empty() {
        "/".to_string()
    } else {
        at.to_string()
    };
    let candidates: Vec<String> = if head.contains(['*', '?', '[']) {
        let Ok(dir) = fsops::open_dir(root, &here) else {
            return Ok(());
        };
        names(dir.as_fd())?
            .into_iter()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| berth_build::context::glob_match(head, n).unwrap_or(false))
            .collect()
    } else {
        vec![head.to_string()]
    };
    for c in candidates {
        let path = format!("{}/{c}", at.trim_end_matches('/'));
        if rest.is_empty() {
            if berth_sys::root::open_at(
                root,
                path.as_bytes(),
                nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_NOFOLLOW,
                berth_sys::root::Resolve::BeneathNoSymlinks,
            )
            .is_ok()
            {
                out.push(path);
            }
        } else {
            glob_root(root, &path, rest, out)?;
        }
    }
    Ok(())
}
