//! `rmi` and `image prune`, as Docker's daemon decides them: a name removes only that name
//! (and its repository's digests when it was the repository's last tag), the image goes with
//! its last name; an ID removes the image. Conflicts are Docker's: a running container's image
//! cannot be removed even with force, a stopped container's or a multiply named one only with it.

use super::{familiar, Removed};
use crate::container::Engine;
use crate::error::{EngineError, Result};
use crate::filters::Filters;
use berth_image::images::{ImageIndex, ImageRecord};
use berth_image::reference::Reference;
use berth_image::store::{docker_name, StoreError};
use berth_sys::time::parse_rfc3339;

/// The keys `image prune --filter` knows (`dangling=false` is `-a`).
pub const PRUNE_FILTERS: &[&str] = &["until", "label", "label!", "dangling"];

/// A container standing on an image: its short ID and whether it runs.
struct User {
    container: String,
    running: bool,
}

/// Docker's 12-hex form of an ID (`sha256:` dropped).
fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

/// Why an image stays (Docker's `imageDeleteConflict`).
struct Conflict {
    /// Not even force removes it (a running container's image).
    hard: bool,
    /// A container uses it (as opposed to its other names keeping it).
    used: bool,
    message: String,
}

impl Conflict {
    fn into_error(self, id: &str) -> StoreError {
        let force = if self.hard {
            "cannot be forced"
        } else {
            "must be forced"
        };
        StoreError::Conflict(format!(
            "conflict: unable to delete {} ({force}) - {}",
            short(id),
            self.message
        ))
    }
}

/// Whether the names are one repository's with at most one tag (Docker's `isSingleReference`).
fn single_repository(img: &ImageRecord) -> bool {
    let repo = |s: &String| Reference::parse(s).map(|r| r.name()).unwrap_or_default();
    match img.repo_tags.len() {
        0 => {
            let mut repos: Vec<String> = img.repo_digests.iter().map(repo).collect();
            repos.dedup();
            repos.len() == 1
        }
        1 => {
            let tag_repo = repo(&img.repo_tags[0]);
            img.repo_digests.iter().all(|d| repo(d) == tag_repo)
        }
        _ => false,
    }
}

/// Whether `name` names the image by its ID (`sha256:ab12…`, `ab12…`).
fn is_id_prefix(img: &ImageRecord, name: &str) -> bool {
    let hexish = name.strip_prefix("sha256:").unwrap_or(name);
    !hexish.is_empty() && img.id.hex().starts_with(hexish)
}

/// The stored name (`docker.io/library/bb:two`, `…@sha256:…`) that `name` spells.
fn stored_name(img: &ImageRecord, name: &str) -> Option<String> {
    let r = Reference::parse(name).ok()?;
    let full = r.to_string();
    (img.repo_tags.contains(&full) || img.repo_digests.contains(&full)).then_some(full)
}

impl Engine {
    fn image_users_of(&self) -> Vec<(String, User)> {
        self.image_users()
            .into_iter()
            .map(|(image, container, running)| (image, User { container, running }))
            .collect()
    }

    /// `rmi NAME`, line by line as Docker reports it (`Untagged: …`, `Deleted: …`).
    pub fn remove_image(&self, name: &str, force: bool) -> Result<Vec<Removed>> {
        let users = self.image_users_of();
        let removed = self.store.update_index(|idx| {
            let img = idx
                .find(name)
                .cloned()
                .ok_or_else(|| StoreError::NoSuchImage(docker_name(name)))?;
            let using: Vec<&User> = users
                .iter()
                .filter(|(i, _)| *i == img.id.to_string())
                .map(|(_, u)| u)
                .collect();
            let mut out = Vec::new();
            match stored_name(&img, name).filter(|_| !is_id_prefix(&img, name)) {
                Some(full) => untag(idx, &img, &full, force, &using, &mut out)?,
                None => by_id(idx, &img, force, &using, &mut out)?,
            }
            Ok(out)
        })?;
        Ok(removed)
    }

    /// `image prune [-a]` without filters.
    pub fn prune_images(&self, all: bool) -> Result<(Vec<ImageRecord>, u64)> {
        self.prune_images_filtered(all, &Filters::default())
    }

    /// `image prune [-a] [--filter until=…|label=…|label!=…|dangling=…]`: untagged images (with `all`,
    /// every image) that no container uses, then what they leave unused; the images removed
    /// and the bytes freed.
    pub fn prune_images_filtered(
        &self,
        all: bool,
        filters: &Filters,
    ) -> Result<(Vec<ImageRecord>, u64)> {
        let until = filters
            .until(berth_sys::time::now_secs())
            .map_err(|e| EngineError::msg(e.to_string()))?;
        let dangling = filters
            .boolean("dangling")
            .map_err(|e| EngineError::msg(e.to_string()))?;
        let all = all || dangling == Some(false);
        let mut labels = std::collections::HashMap::new();
        if filters.contains("label") || filters.contains("label!") {
            for img in self.store.index()?.images.values() {
                let l = self
                    .image_config(img)?
                    .config
                    .and_then(|c| c.labels)
                    .unwrap_or_default();
                labels.insert(img.id.to_string(), l);
            }
        }
        let users = self.image_users();
        let removed = self.store.update_index(|idx| {
            let doomed: Vec<String> = idx
                .images
                .iter()
                .filter(|(k, r)| {
                    let created = r.created.as_deref().and_then(parse_rfc3339);
                    let old_enough = until.is_none_or(|u| created.is_some_and(|c| c < u));
                    let labelled = labels.get(*k).is_none_or(|l| filters.labels_match(l));
                    (all || r.repo_tags.is_empty())
                        && !users.iter().any(|(i, _, _)| i == *k)
                        && old_enough
                        && labelled
                })
                .map(|(k, _)| k.clone())
                .collect();
            Ok(doomed
                .into_iter()
                .filter_map(|k| idx.images.remove(&k))
                .collect::<Vec<_>>())
        })?;
        let freed = self.collect_garbage()?;
        Ok((removed, freed))
    }
}

/// Removes one name; the image follows when it was its last (Docker's repository-reference path).
fn untag(
    idx: &mut ImageIndex,
    img: &ImageRecord,
    full: &str,
    force: bool,
    using: &[&User],
    out: &mut Vec<Removed>,
) -> std::result::Result<(), StoreError> {
    if !force && single_repository(img) {
        if let Some(u) = using.first() {
            return Err(StoreError::Conflict(format!(
                "conflict: unable to remove repository reference \"{}\" (must force) - container {} is using its referenced image {}",
                familiar(full),
                u.container,
                short(&img.id.to_string())
            )));
        }
    }
    let id = img.id.to_string();
    let rec = idx.images.get_mut(&id).expect("found by the caller");
    rec.repo_tags.retain(|t| t != full);
    rec.repo_digests.retain(|d| d != full);
    out.push(Removed::Untagged(familiar(full)));
    // The repository's last tag gone: its digests go too.
    let removed = Reference::parse(full).ok();
    if let Some(r) = removed.filter(|r| r.digest.is_none()) {
        let same_repo = |s: &String| Reference::parse(s).is_ok_and(|x| x.name() == r.name());
        if !rec.repo_tags.iter().any(same_repo) {
            let (gone, kept): (Vec<String>, Vec<String>) =
                rec.repo_digests.drain(..).partition(same_repo);
            rec.repo_digests = kept;
            out.extend(gone.iter().map(|d| Removed::Untagged(familiar(d))));
        }
    }
    if !rec.repo_tags.is_empty() || !rec.repo_digests.is_empty() {
        return Ok(());
    }
    let left = rec.clone();
    delete(idx, &left, force, true, using, out)
}

/// The ID path: a single repository's names go with the image; several need force.
fn by_id(
    idx: &mut ImageIndex,
    img: &ImageRecord,
    force: bool,
    using: &[&User],
    out: &mut Vec<Removed>,
) -> std::result::Result<(), StoreError> {
    let id = img.id.to_string();
    if single_repository(img) {
        let conflict =
            running_conflict(using).or_else(|| if force { None } else { stopped_conflict(using) });
        if let Some(c) = conflict {
            return Err(c.into_error(&id));
        }
        let rec = idx.images.get_mut(&id).expect("found by the caller");
        for n in rec.repo_tags.drain(..).chain(rec.repo_digests.drain(..)) {
            out.push(Removed::Untagged(familiar(&n)));
        }
    }
    let current = idx.images.get(&id).expect("found by the caller").clone();
    delete(idx, &current, force, false, using, out)
}

fn running_conflict(using: &[&User]) -> Option<Conflict> {
    using.iter().find(|u| u.running).map(|u| Conflict {
        hard: true,
        used: true,
        message: format!("image is being used by running container {}", u.container),
    })
}

fn stopped_conflict(using: &[&User]) -> Option<Conflict> {
    using.iter().find(|u| !u.running).map(|u| Conflict {
        hard: false,
        used: true,
        message: format!("image is being used by stopped container {}", u.container),
    })
}

/// Deletes the image and its remaining names unless a conflict keeps it (Docker's
/// `imageDeleteHelper`); `quiet` keeps a used or named image without an error, as after an untag.
fn delete(
    idx: &mut ImageIndex,
    img: &ImageRecord,
    force: bool,
    quiet: bool,
    using: &[&User],
    out: &mut Vec<Removed>,
) -> std::result::Result<(), StoreError> {
    let id = img.id.to_string();
    let named = !img.repo_tags.is_empty() || !img.repo_digests.is_empty();
    let conflict = running_conflict(using).or_else(|| {
        if force {
            return None;
        }
        if named {
            return Some(Conflict {
                hard: false,
                used: false,
                message: "image is referenced in multiple repositories".into(),
            });
        }
        stopped_conflict(using)
    });
    if let Some(c) = conflict {
        let dangling = img.repo_tags.is_empty();
        if quiet && (!dangling || c.used) {
            return Ok(());
        }
        return Err(c.into_error(&id));
    }
    for n in img.repo_tags.iter().chain(img.repo_digests.iter()) {
        out.push(Removed::Untagged(familiar(n)));
    }
    idx.images.remove(&id);
    out.push(Removed::Deleted(id));
    Ok(())
}
