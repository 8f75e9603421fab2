//! COPY/ADD sources on the context snapshot: paths cleaned to the context root (`..` and absolute
//! paths cannot leave it), symlinks on the way followed inside the root only (an absolute target
//! means the context's root, as BuildKit's scoped resolution), wildcards matched as Go's
//! `filepath.Match`, directories copied by their contents, `--exclude` applied; and the content
//! digest a step's cache key takes.

use std::io::Read;

use sha2::{Digest as _, Sha256};

use super::{io_err, Context, ContextError, Entry, EntryKind};
pub use crate::ignore::glob_match;
use crate::ignore::PatternMatcher;
use crate::plan::values::{clean_path, normalize_source};
use crate::plan::{CopyStep, Digest, Source};

/// Symlinks followed while resolving one path.
const MAX_HOPS: usize = 40;

/// One source of a COPY: what it names and the entries it brings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedSource {
    /// The source as written (after expansion).
    pub spec: String,
    /// (name relative to the destination, real path in the context, entry).
    pub items: Vec<(String, String, Entry)>,
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}/{b}")
    }
}

impl Context {
    /// Resolves `path` (any form: relative, absolute, with `..`) inside the context root, following
    /// symlinks only within the root. `None`: it does not exist (or is ignored).
    pub fn resolve_path(&self, path: &str) -> Result<Option<String>, ContextError> {
        let mut pending = normalize_source(path);
        let mut hops = 0;
        'restart: loop {
            let comps: Vec<String> = pending
                .split('/')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            let mut cur = String::new();
            for (i, comp) in comps.iter().enumerate() {
                let candidate = join(&cur, comp);
                match self.entries.get(&candidate).map(|e| &e.kind) {
                    None => return Ok(None),
                    Some(EntryKind::Symlink(target)) => {
                        hops += 1;
                        if hops > MAX_HOPS {
                            return Err(ContextError::SymlinkLoop {
                                path: path.to_string(),
                            });
                        }
                        let rest = comps[i + 1..].join("/");
                        let base = if target.starts_with('/') {
                            String::new()
                        } else {
                            format!("/{cur}")
                        };
                        pending = clean_path(&format!("{base}/{target}/{rest}"));
                        continue 'restart;
                    }
                    Some(EntryKind::Dir) => cur = candidate,
                    Some(_) if i + 1 == comps.len() => cur = candidate,
                    Some(_) => return Ok(None),
                }
            }
            return Ok(Some(cur));
        }
    }

    fn items_of(
        &self,
        real: &str,
        name: &str,
        excludes: &PatternMatcher,
    ) -> Vec<(String, String, Entry)> {
        let mut items = Vec::new();
        match self.entries.get(real) {
            Some(e) if e.kind != EntryKind::Dir => {
                items.push((name.to_string(), real.to_string(), e.clone()))
            }
            _ => {
                // A directory (or the root): its contents.
                let prefix = if real.is_empty() {
                    String::new()
                } else {
                    format!("{real}/")
                };
                for (p, e) in self.entries.range(prefix.clone()..) {
                    let Some(rel) = p.strip_prefix(&prefix) else {
                        break;
                    };
                    if excludes.matches(rel) {
                        continue;
                    }
                    items.push((rel.to_string(), p.clone(), e.clone()));
                }
            }
        }
        items
    }

    /// The entries each COPY source brings, in order.
    pub fn copy_sources(
        &self,
        sources: &[String],
        excludes: &[String],
    ) -> Result<Vec<ResolvedSource>, ContextError> {
        let excludes = PatternMatcher::new(excludes)?;
        let mut out = Vec::new();
        for spec in sources {
            let mut items = Vec::new();
            if has_wildcard(spec) {
                let pattern = normalize_source(spec);
                let pattern = pattern.trim_start_matches('/');
                for p in self.entries.keys() {
                    if glob_match(pattern, p)? && !excludes.matches(p) {
                        let base = p.rsplit('/').next().unwrap_or(p);
                        let sub = self.items_of(p, base, &excludes);
                        if self.entries[p].kind == EntryKind::Dir {
                            items.extend(sub.into_iter().map(|(n, r, e)| (join(base, &n), r, e)));
                        } else {
                            items.extend(sub);
                        }
                    }
                }
            } else {
                let real = self
                    .resolve_path(spec)?
                    .ok_or_else(|| ContextError::NotFound(normalize_source(spec)))?;
                let clean = normalize_source(spec);
                let name = clean.rsplit('/').next().unwrap_or("");
                items = self.items_of(&real, name, &excludes);
            }
            out.push(ResolvedSource {
                spec: spec.clone(),
                items,
            });
        }
        Ok(out)
    }

    /// The digest of what a context COPY/ADD reads: names, kinds, modes, sizes, link targets and
    /// file contents (never mtimes or owners). Remote ADD sources and other stages are the
    /// executor's to digest.
    pub fn content_digest(&self, step: &CopyStep) -> Result<Digest, ContextError> {
        let mut h = Sha256::new();
        let mut field = |b: &[u8]| {
            h.update((b.len() as u64).to_le_bytes());
            h.update(b);
        };
        field(b"berth-build content v1");
        if step.from == Source::Context {
            for src in self.copy_sources(&step.sources, &step.excludes)? {
                field(b"source");
                field(src.spec.as_bytes());
                for (name, real, e) in &src.items {
                    field(name.as_bytes());
                    field(&e.mode.to_le_bytes());
                    match &e.kind {
                        EntryKind::Dir => field(b"dir"),
                        EntryKind::Other => field(b"other"),
                        EntryKind::Symlink(t) => {
                            field(b"symlink");
                            field(t.as_bytes());
                        }
                        EntryKind::File => {
                            field(b"file");
                            let d = self.file_digest(real)?;
                            field(&d.0);
                        }
                    }
                }
            }
        }
        for f in &step.inline {
            field(b"inline");
            field(f.name.as_bytes());
            field(f.data.as_bytes());
        }
        Ok(Digest(h.finalize().into()))
    }

    /// SHA-256 of one included file's content.
    pub fn file_digest(&self, real: &str) -> Result<Digest, ContextError> {
        let mut f = self.open_file(real)?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = f.read(&mut buf).map_err(|e| io_err(real, e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(Digest(h.finalize().into()))
    }
}
