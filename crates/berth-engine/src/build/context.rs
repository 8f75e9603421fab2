//! The build's inputs before anything runs: the context directory (the user's, or a scratch
//! directory a stdin tar is unpacked into, owned by this process and reclaimed if it dies) and
//! the Dockerfile's bytes, read with a bound. The context itself is walked later, on first use.

use super::{BuildContext, BuildError, BuildRequest, DockerfileSource};
use crate::container::Engine;
use crate::error::{EngineError, Result};
use berth_build::context::tar::{read_stdin_context, StdinContext};
use berth_build::context::ContextLimits;
use berth_build::Limits;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The context directory and the Dockerfile, ready to plan.
pub(crate) struct Input {
    pub dir: PathBuf,
    pub dockerfile: Vec<u8>,
    /// The Dockerfile's path when it has one (its `<name>.dockerignore` wins).
    pub dockerfile_path: Option<PathBuf>,
    /// A scratch context, removed when the build ends.
    _scratch: Option<Scratch>,
}

/// A directory under the store's staging, removed when dropped (or by the next command that
/// takes the store if this process is killed: its name carries the owner).
pub(crate) struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(e: &Engine, prefix: &str) -> Result<Scratch> {
        let dir = e
            .store
            .root()
            .join("layers/tmp")
            .join(berth_image::staging::name(prefix));
        std::fs::create_dir(&dir).map_err(|x| EngineError::io(dir.display(), x))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn open(e: &Engine, req: &BuildRequest, context: BuildContext) -> Result<Input> {
    let max = Limits::default().max_dockerfile_bytes;
    let (dir, scratch, stdin_dockerfile) = match context {
        BuildContext::Dir(d) => {
            let meta = std::fs::metadata(&d).map_err(|x| BuildError::input(d.display(), x))?;
            if !meta.is_dir() {
                return Err(BuildError::invalid(format!(
                    "build context {}: not a directory",
                    d.display()
                ))
                .into());
            }
            (d, None, None)
        }
        BuildContext::Stream(r) => {
            let s = Scratch::new(e, "build-context")?;
            let got = read_stdin_context(r, &s.0, &ContextLimits::default(), max)
                .map_err(BuildError::from)?;
            let df = match got {
                StdinContext::Unpacked => None,
                StdinContext::Dockerfile(bytes) => Some(bytes),
            };
            (s.0.clone(), Some(s), df)
        }
    };
    let (dockerfile, dockerfile_path) = match (&req.dockerfile, stdin_dockerfile) {
        (DockerfileSource::Text(t), _) => (t.clone(), None),
        (DockerfileSource::Path(p), None) => {
            // A relative `-f` inside a stdin tar names a file of the tar (read in its root: a
            // symlink in the tar cannot reach a host file).
            if scratch.is_some() && p.is_relative() {
                (read_in_context(&dir, p, max)?, Some(dir.join(p)))
            } else {
                (read_bounded(p, max)?, Some(p.clone()))
            }
        }
        (DockerfileSource::Path(_), Some(_)) => {
            return Err(BuildError::invalid(
                "a Dockerfile was given on stdin: -f cannot name another one",
            )
            .into())
        }
        (DockerfileSource::InContext, Some(bytes)) => (bytes, None),
        (DockerfileSource::InContext, None) => {
            let p = default_dockerfile(&dir);
            let rel = p
                .strip_prefix(&dir)
                .unwrap_or(Path::new("Dockerfile"))
                .to_path_buf();
            (read_in_context(&dir, &rel, max)?, Some(p))
        }
    };
    Ok(Input {
        dir,
        dockerfile,
        dockerfile_path,
        _scratch: scratch,
    })
}

/// `Dockerfile`, or `dockerfile` when only that exists (as Docker).
fn default_dockerfile(dir: &Path) -> PathBuf {
    let upper = dir.join("Dockerfile");
    let lower = dir.join("dockerfile");
    if !upper.exists() && lower.exists() {
        lower
    } else {
        upper
    }
}

/// A Dockerfile inside the context, resolved in the context's root (a symlink may point
/// anywhere inside it, never out), at most `max` bytes.
fn read_in_context(dir: &Path, rel: &Path, max: usize) -> Result<Vec<u8>> {
    let shown = dir.join(rel).display().to_string();
    berth_sys::root::read_file(dir, rel, max as u64).map_err(|x| {
        let what = match x.kind() {
            std::io::ErrorKind::NotFound => format!("failed to read dockerfile: open {shown}"),
            std::io::ErrorKind::InvalidData => {
                return BuildError::invalid(format!(
                    "{shown}: the Dockerfile is larger than {max} bytes"
                ))
                .into()
            }
            _ => shown.clone(),
        };
        BuildError::input(what, x).into()
    })
}

/// A Dockerfile of at most `max` bytes (a bigger one is refused while it is read).
fn read_bounded(p: &Path, max: usize) -> Result<Vec<u8>> {
    let shown = p.display().to_string();
    let f = std::fs::File::open(p).map_err(|x| {
        let what = if x.kind() == std::io::ErrorKind::NotFound {
            format!("failed to read dockerfile: open {shown}")
        } else {
            shown.clone()
        };
        BuildError::input(what, x)
    })?;
    let mut bytes = Vec::new();
    f.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|x| BuildError::input(&shown, x))?;
    if bytes.len() > max {
        return Err(BuildError::invalid(format!(
            "{shown}: the Dockerfile is larger than {max} bytes"
        ))
        .into());
    }
    Ok(bytes)
}
