//! The end of a build: the target stage's layers, history and config written as an image config
//! (Docker's fields; `created` is the last step's time, so a fully cached rebuild is the same
//! image), registered with its tags — or exported with `--output` as files or a tar of the
//! final root filesystem instead.

use super::copy::{with_private_mounts, Mounted};
use super::stage::{Builder, StageResult};
use super::work::Work;
use super::{BuildError, BuildEvent, BuildOutcome, BuildOutput};
use crate::error::{EngineError, Result};
use berth_build::plan::{ImageConfig, StagePlan};
use berth_image::digest::Digest;
use berth_image::manifest::History;
use berth_image::reference::Reference;
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::Ordering;

#[derive(Serialize)]
struct RootFs<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    diff_ids: Vec<String>,
}

/// The image config document.
#[derive(Serialize)]
struct ConfigFile<'a> {
    architecture: &'a str,
    os: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    variant: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    author: Option<&'a str>,
    config: &'a ImageConfig,
    rootfs: RootFs<'a>,
    history: &'a [History],
}

/// `-t` values, checked before anything is built, normalized (`docker.io/library/x:latest`).
pub(crate) fn check_tags(tags: &[String]) -> Result<Vec<String>> {
    tags.iter()
        .map(|t| {
            let r = Reference::parse(t)
                .map_err(|e| BuildError::invalid(format!("invalid tag {t:?}: {e}")))?;
            if r.digest.is_some() {
                return Err(BuildError::invalid(format!(
                    "invalid tag {t:?}: a tag cannot hold a digest"
                ))
                .into());
            }
            Ok(r.to_string())
        })
        .collect()
}

pub(crate) fn finish(
    b: &Builder<'_>,
    s: &StagePlan,
    r: &StageResult,
    tags: &[String],
) -> Result<BuildOutcome> {
    let mut config = s.config.clone();
    config.labels.extend(b.req.labels.clone());
    let bytes = serde_json::to_vec(&ConfigFile {
        architecture: &s.platform.arch,
        os: &s.platform.os,
        variant: &s.platform.variant,
        created: r.created.as_deref(),
        author: s.author.as_deref(),
        config: &config,
        rootfs: RootFs {
            kind: "layers",
            diff_ids: r.layers.iter().map(|l| l.diff_id.to_string()).collect(),
        },
        history: &r.history,
    })
    .expect("an image config serializes");
    let image_id = Digest::of_bytes(&bytes);
    let id = b.next_id();
    let exporting = if b.req.outputs.is_empty() {
        "exporting to image"
    } else {
        "exporting to client"
    };
    b.progress.event(BuildEvent::Started {
        id,
        name: exporting,
    });
    let done = export(b, r, &bytes, &image_id, tags, id);
    match &done {
        Ok(_) => b.progress.event(BuildEvent::Done { id }),
        Err(e) => b.progress.event(BuildEvent::Failed {
            id,
            error: &e.to_string(),
        }),
    }
    Ok(BuildOutcome {
        image: done?,
        image_id,
        tags: tags.to_vec(),
        steps: b.steps.load(Ordering::Relaxed),
        cached: b.cached.load(Ordering::Relaxed),
        warnings: Vec::new(),
    })
}

fn export(
    b: &Builder<'_>,
    r: &StageResult,
    config: &[u8],
    image_id: &Digest,
    tags: &[String],
    id: usize,
) -> Result<Option<berth_image::images::ImageRecord>> {
    if b.req.outputs.is_empty() {
        let layers: Vec<_> = r.layers.iter().map(|l| l.local()).collect();
        let rec = berth_image::archive::register(&b.engine.store, config, &layers, tags)?;
        let text = format!("writing image {image_id} done");
        b.progress.event(BuildEvent::Status { id, text: &text });
        for t in tags {
            let text = format!("naming to {t} done");
            b.progress.event(BuildEvent::Status { id, text: &text });
        }
        return Ok(Some(rec));
    }
    for o in &b.req.outputs {
        let (what, dest) = match o {
            BuildOutput::Local(d) => ("copying files", d),
            BuildOutput::Tar(f) => ("sending tarball", f),
        };
        let text = format!("{what} to {}", dest.display());
        b.progress.event(BuildEvent::Status { id, text: &text });
        write_output(b, r, o)?;
    }
    Ok(None)
}

/// The final root filesystem (all layers merged) into an output.
fn write_output(b: &Builder<'_>, r: &StageResult, o: &BuildOutput) -> Result<()> {
    let mut work = Work::new(b.engine)?;
    let (_, m) = work.snapshot("", &super::layer::chain(&r.layers))?;
    let dir = work.dir.clone();
    match o {
        BuildOutput::Tar(dest) => {
            let f =
                std::fs::File::create(dest).map_err(|x| BuildError::input(dest.display(), x))?;
            with_private_mounts(|| {
                let root = Mounted::new(&m, &dir.join("rootfs"))?;
                tar_root(&root, std::io::BufWriter::new(f))
            })
        }
        BuildOutput::Local(dest) => {
            let scratch = super::context::Scratch::new(b.engine, "build-output")?;
            let tmp = scratch.0.join("rootfs.tar");
            let f = std::fs::File::create(&tmp).map_err(|x| EngineError::io(tmp.display(), x))?;
            with_private_mounts(|| {
                let root = Mounted::new(&m, &dir.join("rootfs"))?;
                tar_root(&root, std::io::BufWriter::new(f))
            })?;
            untar_into(&tmp, dest)
        }
    }
}

fn tar_root(root: &Mounted, out: impl std::io::Write) -> Result<()> {
    let what = |x: std::io::Error| EngineError::io("exporting the root filesystem", x);
    let dir = berth_image::tree::diff::open_store_dir(&root.path).map_err(what)?;
    let mut w = berth_image::tree::tar::TreeWriter::new(out, false);
    w.add_contents(&dir, Path::new("")).map_err(what)?;
    let mut out = w.finish().map_err(what)?;
    out.flush().map_err(what)
}

fn untar_into(tar: &Path, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest).map_err(|x| BuildError::input(dest.display(), x))?;
    let root = std::fs::File::open(dest).map_err(|x| BuildError::input(dest.display(), x))?;
    let f = std::fs::File::open(tar).map_err(|x| EngineError::io(tar.display(), x))?;
    let target = berth_image::tree::untar::Target {
        root: std::os::fd::AsFd::as_fd(&root),
        base: "/".into(),
        keep_owner: true,
        owners: None,
    };
    berth_image::tree::untar::untar(std::io::BufReader::new(f), &target)
        .map_err(|x| EngineError::io(format!("writing {}", dest.display()), x))?;
    Ok(())
}
