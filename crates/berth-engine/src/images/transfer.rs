//! Moving images in and out of the store: pull (also as `run`'s `--pull` policy, and every tag
//! of a repository), push, load, save, import. Progress goes to the caller's `Progress`;
//! nothing is printed here.

use crate::container::Engine;
use crate::error::{EngineError, Result};
use berth_image::digest::Digest;
use berth_image::images::ImageRecord;
use berth_image::manifest::Platform;
use berth_image::pull::{Progress, PullOptions};
use berth_image::reference::Reference;
use berth_image::registry::auth;
use std::io::{Read, Write};
use std::path::Path;

/// `run --pull`: when to fetch the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    Missing,
    Never,
}

impl std::str::FromStr for PullPolicy {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<PullPolicy> {
        match s {
            "always" => Ok(PullPolicy::Always),
            "missing" => Ok(PullPolicy::Missing),
            "never" => Ok(PullPolicy::Never),
            _ => Err(EngineError::msg(format!(
                "invalid pull option {s:?}: must be one of \"always\", \"missing\" or \"never\""
            ))),
        }
    }
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullReport {
    pub reference: Reference,
    pub record: ImageRecord,
    /// The digest the registry served (index or manifest).
    pub digest: Digest,
    /// Nothing was downloaded: the store had it all.
    pub up_to_date: bool,
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushReport {
    pub tag: String,
    pub digest: Digest,
    pub size: u64,
}

fn parse_ref(name: &str) -> Result<Reference> {
    Reference::parse(name).map_err(|e| EngineError::msg(e.to_string()))
}

pub(super) fn platform(p: Option<&str>) -> Result<Platform> {
    match p {
        Some(p) => Platform::parse(p).ok_or_else(|| {
            EngineError::msg(format!(
                "invalid platform {p:?}: expected os/arch[/variant]"
            ))
        }),
        None => Ok(Platform::host()),
    }
}

impl Engine {
    /// Pulls `name` for `platform` (os/arch[/variant], default this host's).
    pub fn pull(
        &self,
        name: &str,
        platform_name: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<PullReport> {
        self.pull_as(name, platform_name, progress, None)
    }

    /// `pull` with the caller's registry credentials (the API's `X-Registry-Auth`); None uses
    /// those of Docker's config file.
    pub fn pull_as(
        &self,
        name: &str,
        platform_name: Option<&str>,
        progress: &dyn Progress,
        credentials: Option<auth::Credentials>,
    ) -> Result<PullReport> {
        let reference = parse_ref(name)?;
        let opts = PullOptions {
            platform: platform(platform_name)?,
            insecure: self.insecure.clone(),
            progress,
            parallel: 4,
        };
        let pulled = berth_image::pull::pull_as(&self.store, &reference, &opts, credentials)
            .map_err(|e| EngineError::from(e).context(format!("pull {name}")))?;
        self.emit(crate::events::Event::image(
            "pull",
            &super::familiar(&reference.to_string()),
        ));
        Ok(PullReport {
            reference,
            record: pulled.record,
            digest: pulled.digest,
            up_to_date: pulled.up_to_date,
        })
    }

    /// The image `run`/`create` uses, pulled as `policy` says; true when it was pulled.
    pub fn image_for(
        &self,
        name: &str,
        policy: PullPolicy,
        platform_name: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<(ImageRecord, bool)> {
        let local = self.store.find(name).ok();
        let need = match policy {
            PullPolicy::Always => true,
            PullPolicy::Never => false,
            PullPolicy::Missing => local.is_none(),
        };
        if !need {
            return local
                .map(|i| (i, false))
                .ok_or_else(|| EngineError::msg(format!("No such image: {name}")));
        }
        let report = self.pull(name, platform_name, progress)?;
        Ok((report.record, true))
    }

    /// Skips TLS verification (and allows plain HTTP) for the registry `name` points at, for
    /// this engine's transfers (podman's `--tls-verify=false`).
    pub fn trust_registry_of(&mut self, name: &str) -> Result<()> {
        let r = parse_ref(name)?;
        self.insecure.push(r.api_host().to_string());
        Ok(())
    }

    /// The tags the registry lists for `name`'s repository (`pull -a`).
    pub fn repository_tags(&self, name: &str) -> Result<Vec<String>> {
        let r = parse_ref(name)?;
        berth_image::pull::client_for(&r, &self.insecure)
            .list_tags(&r.repository)
            .map_err(|e| EngineError::from(berth_image::pull::PullError::from(e)))
            .map_err(|e| e.context(format!("pull {name}")))
    }

    /// `push -a`: every local tag of `repository` (a name without tag or digest), sorted.
    pub fn local_tags(&self, repository: &str) -> Result<Vec<String>> {
        let target = parse_ref(repository)?;
        let mut tags: Vec<String> = self
            .store
            .index()?
            .images
            .values()
            .flat_map(|i| i.repo_tags.iter())
            .filter(|t| Reference::parse(t).is_ok_and(|r| r.name() == target.name()))
            .cloned()
            .collect();
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    /// Pushes the local image `name` to the registry its name points at.
    pub fn push(&self, name: &str, progress: &dyn Progress) -> Result<PushReport> {
        self.push_as(name, progress, None)
    }

    /// `push` with the caller's registry credentials; None uses Docker's config file's.
    pub fn push_as(
        &self,
        name: &str,
        progress: &dyn Progress,
        credentials: Option<auth::Credentials>,
    ) -> Result<PushReport> {
        let target = parse_ref(name)?;
        let image = self.store.find(name).map_err(|_| {
            EngineError::msg(format!(
                "An image does not exist locally with the tag: {name}"
            ))
        })?;
        let digest = berth_image::push::push_as(
            &self.store,
            &image,
            &target,
            &self.insecure,
            progress,
            credentials,
        )
        .map_err(|e| EngineError::from(e).context(format!("push {name}")))?;
        let size = self.store.content.size(&digest).unwrap_or(0);
        self.store.update_index(|idx| {
            if let Some(r) = idx.images.get_mut(&image.id.to_string()) {
                let rd = format!("{}@{digest}", target.name());
                if !r.repo_digests.contains(&rd) {
                    r.repo_digests.push(rd);
                }
            }
            Ok(())
        })?;
        self.emit(crate::events::Event::image(
            "push",
            &super::familiar(&target.to_string()),
        ));
        Ok(PushReport {
            tag: target.tag.clone().unwrap_or_else(|| "latest".into()),
            digest,
            size,
        })
    }

    /// Loads a `docker save` archive or OCI layout; returns each image with its tags. With a
    /// platform (`load --platform`), only that platform's images.
    pub fn load(
        &self,
        input: impl Read,
        platform_name: Option<&str>,
    ) -> Result<Vec<(ImageRecord, Vec<String>)>> {
        let want = platform_name.map(|p| platform(Some(p))).transpose()?;
        let loaded = berth_image::archive::load(&self.store, input, want.as_ref())
            .map_err(|e| EngineError::from(e).context("load"))?;
        loaded.iter().for_each(|(img, _)| {
            self.emit(crate::events::Event::image("load", &img.id.to_string()))
        });
        Ok(loaded)
    }

    /// The images `save` writes, each with the tags it goes under (only the one named, when a
    /// name is one of its tags).
    fn images_to_save(&self, names: &[String]) -> Result<Vec<(ImageRecord, Vec<String>)>> {
        names
            .iter()
            .map(|name| {
                let img = self.image(name)?;
                let tags = match Reference::parse(name) {
                    Ok(r) if img.repo_tags.contains(&r.to_string()) => vec![r.to_string()],
                    _ => img.repo_tags.clone(),
                };
                Ok((img, tags))
            })
            .collect()
    }

    /// `save` to a stream.
    pub fn save(&self, names: &[String], out: impl Write) -> Result<()> {
        let images = self.images_to_save(names)?;
        berth_image::archive::save(&self.store, &images, out)
            .map_err(|e| EngineError::from(e).context("save"))
    }

    /// `save -o FILE`: written beside the file and renamed into place only when whole.
    pub fn save_to_file(&self, names: &[String], path: &Path) -> Result<()> {
        let images = self.images_to_save(names)?;
        let tmp = path.with_extension("berth-partial");
        let f = std::fs::File::create(&tmp)
            .map_err(|e| EngineError::io(format!("create {}", tmp.display()), e))?;
        let mut w = std::io::BufWriter::new(f);
        let written = berth_image::archive::save(&self.store, &images, &mut w)
            .map_err(|e| EngineError::from(e).context("save"))
            .and_then(|()| w.flush().map_err(|e| EngineError::io("save", e)));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, path)
            .map_err(|e| EngineError::io(format!("save {}", path.display()), e))
    }

    /// `import [-c INSTRUCTION]… [--platform P]`: a one-layer image from a root filesystem
    /// tarball, its run config the default `PATH` with the Dockerfile instructions applied (as
    /// `commit -c`), declared for `P` (default this host's platform).
    pub fn import(
        &self,
        input: impl Read,
        what: &str,
        tag: Option<&str>,
        message: Option<&str>,
        changes: &[String],
        platform_name: Option<&str>,
    ) -> Result<ImageRecord> {
        let tag = tag.map(parse_ref).transpose()?;
        let want = platform_name.map(|p| platform(Some(p))).transpose()?;
        let mut config = serde_json::Map::new();
        config.insert(
            "Env".into(),
            serde_json::json!([
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            ]),
        );
        for c in changes {
            crate::commit::apply_change(&mut config, c)?;
        }
        let img = berth_image::archive::import(
            &self.store,
            input,
            tag.as_ref(),
            message,
            config.into(),
            want.as_ref(),
        )
        .map_err(|e| EngineError::from(e).context(format!("import {what}")))?;
        self.emit(crate::events::Event::image("import", &img.id.to_string()));
        Ok(img)
    }
}
