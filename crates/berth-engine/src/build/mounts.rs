//! `RUN --mount`: each mount made ready for the step's helper. Bind mounts read a directory of
//! the context or another stage's root, resolved by the helper inside that root (a symlink there
//! cannot lead to the host) and, when writable, through an overlay whose writes are thrown away;
//! cache mounts are directories of the store kept between builds (`sharing=locked` holds a lock
//! for the step); secrets are copied into the step's private directory, bound read-only and
//! removed with it; tmpfs is a tmpfs.

use super::stage::Builder;
use super::work::Work;
use super::{BuildError, SecretSource};
use crate::error::{EngineError, Result};
use berth_build::instructions::{MountType, Sharing};
use berth_build::plan::{RunMount, Source};
use berth_image::snapshot::Mount;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// BuildKit's bound on a secret's size.
const MAX_SECRET_BYTES: u64 = 500 << 10;

/// A bind mount of the step's container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JobBind {
    /// A directory of berth's own (a cache, the step's directory), or the root `in_root` is
    /// resolved in.
    pub source: PathBuf,
    /// A path inside `source`, resolved there by the helper (symlinks stay inside it).
    pub in_root: Option<String>,
    pub destination: String,
    pub rw: bool,
}

/// An overlay the helper mounts at `target` before the container (a stage's root, or a
/// writable view of the context).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JobOverlay {
    pub mount: Mount,
    pub target: PathBuf,
}

/// Everything the mounts of one RUN need.
#[derive(Default)]
pub(crate) struct Prepared {
    pub binds: Vec<JobBind>,
    pub overlays: Vec<JobOverlay>,
    pub tmpfs: Vec<(String, String)>,
    /// `env=` secrets: in the process's environment only.
    pub env: Vec<String>,
    /// `sharing=locked` caches, held until the step ends.
    _locks: Vec<crate::record::Lock>,
}

pub(crate) fn prepare(
    b: &Builder<'_>,
    work: &mut Work<'_>,
    mounts: &[RunMount],
    line: usize,
) -> std::result::Result<Prepared, BuildError> {
    let mut p = Prepared::default();
    for (n, m) in mounts.iter().enumerate() {
        let step = |e: EngineError| BuildError::Step {
            line,
            instruction: format!("RUN --mount=type={}", m.mount.kind.as_str()),
            source: Box::new(e),
        };
        let target = m.mount.target.clone().unwrap_or_default();
        match m.mount.kind {
            MountType::Bind => bind(b, work, m, n, target, &mut p).map_err(step)?,
            MountType::Cache => cache(b, m, target, &mut p).map_err(step)?,
            MountType::Tmpfs => {
                let size = m.mount.size_limit;
                let opts = if size > 0 {
                    format!("size={size}")
                } else {
                    String::new()
                };
                p.tmpfs.push((target, format!("exec,{opts}")));
            }
            MountType::Secret => secret(b, work, m, n, &mut p).map_err(step)?,
            MountType::Ssh => {
                return Err(BuildError::Unsupported {
                    line,
                    what: "RUN --mount=type=ssh".into(),
                })
            }
        }
    }
    Ok(p)
}

fn bind(
    b: &Builder<'_>,
    work: &mut Work<'_>,
    m: &RunMount,
    n: usize,
    target: String,
    p: &mut Prepared,
) -> Result<()> {
    let source =
        berth_build::plan::values::normalize_source(m.mount.source.as_deref().unwrap_or("/"));
    let rw = !m.mount.read_only;
    let chain = match m.from.as_ref().unwrap_or(&Source::Context) {
        Source::Context if !rw => {
            p.binds.push(JobBind {
                source: b.context_dir().to_path_buf(),
                in_root: Some(source),
                destination: target,
                rw: false,
            });
            return Ok(());
        }
        Source::Context => None,
        Source::Stage(i) => Some(super::layer::chain(&b.stage_layers(*i)?)),
        Source::Image(r) => Some(super::layer::chain(&b.image_layers(r)?)),
    };
    let mount = match chain {
        Some(chain) => work.snapshot(&format!("m{n}"), &chain)?.1,
        None => context_overlay(b, work, n)?,
    };
    let at = work.dir.join(format!("m{n}"));
    p.overlays.push(JobOverlay {
        mount,
        target: at.clone(),
    });
    p.binds.push(JobBind {
        source: at,
        in_root: Some(source),
        destination: target,
        rw,
    });
    Ok(())
}

/// A writable view of the context whose writes land in the step's directory.
fn context_overlay(b: &Builder<'_>, work: &Work<'_>, n: usize) -> Result<Mount> {
    let scratch = work.dir.join(format!("m{n}-rw"));
    for d in ["upper", "work"] {
        let p = scratch.join(d);
        std::fs::create_dir_all(&p).map_err(|x| EngineError::io(p.display(), x))?;
    }
    let lower = b.context_dir().to_path_buf();
    Ok(Mount {
        kind: "overlay".into(),
        source: "overlay".into(),
        options: vec![
            format!("lowerdir={}", lower.display()),
            format!("upperdir={}", scratch.join("upper").display()),
            format!("workdir={}", scratch.join("work").display()),
        ],
        lowers: vec![lower],
        idmap: None,
    })
}

fn cache(b: &Builder<'_>, m: &RunMount, target: String, p: &mut Prepared) -> Result<()> {
    let id = m.mount.id.clone().unwrap_or_else(|| target.clone());
    let name = berth_image::digest::Digest::of_bytes(id.as_bytes())
        .hex()
        .to_string();
    let dir = b.cache.mounts_dir().join(&name[..32]);
    if !dir.exists() {
        let tmp = b
            .cache
            .mounts_dir()
            .join(format!(".{}", berth_image::staging::name("new")));
        std::fs::create_dir(&tmp).map_err(|x| EngineError::io(tmp.display(), x))?;
        let mode = m.mount.mode.unwrap_or(0o755);
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
            .map_err(|x| EngineError::io(tmp.display(), x))?;
        std::os::unix::fs::chown(
            &tmp,
            Some(m.mount.uid.unwrap_or(0)),
            Some(m.mount.gid.unwrap_or(0)),
        )
        .map_err(|x| EngineError::io(tmp.display(), x))?;
        if std::fs::rename(&tmp, &dir).is_err() {
            // Another build made it first.
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    if matches!(
        m.mount.sharing,
        Some(Sharing::Locked) | Some(Sharing::Private)
    ) {
        let lock = b.cache.mounts_dir().join(format!("{}.lock", &name[..32]));
        p._locks
            .push(crate::record::flock(&lock).map_err(|x| EngineError::io(lock.display(), x))?);
    }
    p.binds.push(JobBind {
        source: dir,
        in_root: None,
        destination: target,
        rw: !m.mount.read_only,
    });
    Ok(())
}

fn secret(
    b: &Builder<'_>,
    work: &Work<'_>,
    m: &RunMount,
    n: usize,
    p: &mut Prepared,
) -> Result<()> {
    let id = m
        .mount
        .id
        .clone()
        .or_else(|| {
            m.mount
                .target
                .as_ref()
                .and_then(|t| t.rsplit('/').next().map(str::to_string))
        })
        .unwrap_or_default();
    let Some(given) = b.req.secrets.iter().find(|s| s.id == id) else {
        if m.mount.required {
            return Err(EngineError::msg(format!("secret {id} not found")));
        }
        return Ok(());
    };
    let data = match &given.source {
        SecretSource::File(path) => {
            let f = std::fs::File::open(path)
                .map_err(|x| EngineError::io(format!("secret {id}: {}", path.display()), x))?;
            let mut data = Vec::new();
            f.take(MAX_SECRET_BYTES + 1)
                .read_to_end(&mut data)
                .map_err(|x| EngineError::io(format!("secret {id}: {}", path.display()), x))?;
            data
        }
        SecretSource::Env(var) => std::env::var_os(var)
            .map(|v| v.into_encoded_bytes())
            .ok_or_else(|| {
                EngineError::msg(format!(
                    "secret {id}: environment variable {var} is not set"
                ))
            })?,
    };
    if data.len() as u64 > MAX_SECRET_BYTES {
        return Err(EngineError::msg(format!(
            "secret {id}: larger than {MAX_SECRET_BYTES} bytes"
        )));
    }
    if let Some(var) = &m.mount.env {
        p.env
            .push(format!("{var}={}", String::from_utf8_lossy(&data)));
        if m.mount.target.is_none() {
            return Ok(());
        }
    }
    let file = work.dir.join(format!("secret-{n}"));
    std::fs::write(&file, &data).map_err(|x| EngineError::io(file.display(), x))?;
    std::fs::set_permissions(
        &file,
        std::fs::Permissions::from_mode(m.mount.mode.unwrap_or(0o400)),
    )
    .map_err(|x| EngineError::io(file.display(), x))?;
    std::os::unix::fs::chown(
        &file,
        Some(m.mount.uid.unwrap_or(0)),
        Some(m.mount.gid.unwrap_or(0)),
    )
    .map_err(|x| EngineError::io(file.display(), x))?;
    p.binds.push(JobBind {
        source: file,
        in_root: None,
        destination: m
            .mount
            .target
            .clone()
            .unwrap_or_else(|| format!("/run/secrets/{id}")),
        rw: false,
    });
    Ok(())
}
