//! `images [REPOSITORY[:TAG]] [--filter …]`: every image under each of its names, newest first,
//! kept or dropped as Docker's daemon filters them (dangling, label, before, since, until,
//! reference as Go's `path.Match` against the familiar name, with and without its tag).

use super::ImageRow;
use crate::container::Engine;
use crate::error::{EngineError, Result};
use crate::filters::{path_match, Filters};
use berth_image::images::ImageRecord;
use berth_image::reference::Reference;
use berth_sys::time::parse_rfc3339;

/// The keys `images --filter` knows.
pub const IMAGE_FILTERS: &[&str] = &["dangling", "label", "before", "since", "until", "reference"];

/// `(repository, tag)` of a stored tag, `<none>` for what cannot be read.
fn split_tag(t: &str) -> (String, String) {
    match Reference::parse(t) {
        Ok(r) => (r.familiar_name(), r.tag.unwrap_or_else(|| "<none>".into())),
        Err(_) => ("<none>".into(), "<none>".into()),
    }
}

/// The digest `img` was pulled by from `repository`, `<none>` when there is none.
fn repo_digest(img: &ImageRecord, repository: &str) -> String {
    img.repo_digests
        .iter()
        .filter_map(|d| d.rsplit_once('@'))
        .find(|(name, _)| Reference::parse(name).is_ok_and(|r| r.familiar_name() == repository))
        .map(|(_, d)| d.to_string())
        .unwrap_or_else(|| "<none>".into())
}

/// Docker's `reference.FamiliarMatch`: the pattern against `busybox:latest`, then `busybox`.
pub(super) fn reference_matches(patterns: &[String], full: &str) -> Result<bool> {
    let Ok(r) = Reference::parse(full) else {
        return Ok(false);
    };
    for p in patterns {
        if path_match(p, &r.familiar()).map_err(EngineError::from)?
            || path_match(p, &r.familiar_name()).map_err(EngineError::from)?
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// What the filters ask, resolved against the store once.
pub(super) struct ImageQuery<'f> {
    filters: &'f Filters,
    dangling: Option<bool>,
    before: Option<i64>,
    since: Option<i64>,
}

impl Engine {
    /// Every image under each of its names, newest first; `filter` (`REPOSITORY[:TAG]`, a Go
    /// pattern as in `images busy*`) keeps the names it matches.
    pub fn image_rows(&self, filter: Option<&str>) -> Result<Vec<ImageRow>> {
        let raw: Vec<String> = filter
            .map(|f| format!("reference={f}"))
            .into_iter()
            .collect();
        let filters = Filters::parse(&raw, IMAGE_FILTERS).map_err(EngineError::from)?;
        self.list_images(&filters)
    }

    /// `images --filter`: `filters` parsed with `IMAGE_FILTERS`.
    pub fn list_images(&self, filters: &Filters) -> Result<Vec<ImageRow>> {
        let index = self.store.index()?;
        let q = self.image_query(filters)?;
        let mut imgs: Vec<&ImageRecord> = index.images.values().collect();
        imgs.sort_by(|x, y| y.created.cmp(&x.created).then(y.added.cmp(&x.added)));
        let mut rows = Vec::new();
        for img in imgs {
            if self.image_passes(&q, img)? {
                rows.extend(self.rows_of(&q, img)?);
            }
        }
        Ok(rows)
    }

    pub(super) fn image_query<'f>(&self, filters: &'f Filters) -> Result<ImageQuery<'f>> {
        let created_of = |name: &String| -> Result<i64> {
            let img = self.image(name)?;
            Ok(img.created.as_deref().and_then(parse_rfc3339).unwrap_or(0))
        };
        let mut before = filters
            .values("before")
            .iter()
            .map(created_of)
            .last()
            .transpose()?;
        if let Some(t) = filters
            .until(berth_sys::time::now_secs())
            .map_err(EngineError::from)?
        {
            before = Some(t);
        }
        Ok(ImageQuery {
            filters,
            dangling: filters.boolean("dangling").map_err(EngineError::from)?,
            before,
            since: filters
                .values("since")
                .iter()
                .map(created_of)
                .last()
                .transpose()?,
        })
    }

    /// Whether the image itself passes the time, label and dangling filters.
    pub(super) fn image_passes(&self, q: &ImageQuery, img: &ImageRecord) -> Result<bool> {
        let created = img.created.as_deref().and_then(parse_rfc3339);
        if q.before.is_some_and(|b| created.is_none_or(|c| c >= b))
            || q.since.is_some_and(|s| created.is_none_or(|c| c <= s))
        {
            return Ok(false);
        }
        if q.filters.contains("label") {
            let labels = self
                .image_config(img)?
                .config
                .and_then(|c| c.labels)
                .unwrap_or_default();
            if !q.filters.labels_match(&labels) {
                return Ok(false);
            }
        }
        Ok(match q.dangling {
            Some(true) => img.repo_tags.is_empty(),
            Some(false) => !img.repo_tags.is_empty() || !img.repo_digests.is_empty(),
            None => true,
        })
    }

    /// The image's rows: one per tag that passes the reference filter, or one `<none>` row.
    fn rows_of(&self, q: &ImageQuery, img: &ImageRecord) -> Result<Vec<ImageRow>> {
        let patterns = q.filters.values("reference");
        let mut names = Vec::new();
        for t in &img.repo_tags {
            if patterns.is_empty() || reference_matches(patterns, t)? {
                names.push(split_tag(t));
            }
        }
        if img.repo_tags.is_empty() {
            // Untagged: its pulled-by digests name it (`busybox <none>`), else it is `<none>`.
            for d in &img.repo_digests {
                let name = d.rsplit_once('@').map_or(d.as_str(), |(n, _)| n);
                if !patterns.is_empty() && !reference_matches(patterns, d)? {
                    continue;
                }
                let repo = Reference::parse(name)
                    .map(|r| r.familiar_name())
                    .unwrap_or_else(|_| "<none>".into());
                if !names.iter().any(|(r, _)| *r == repo) {
                    names.push((repo, "<none>".into()));
                }
            }
            if names.is_empty() && patterns.is_empty() {
                names.push(("<none>".into(), "<none>".into()));
            }
        }
        Ok(names
            .into_iter()
            .map(|(repository, tag)| ImageRow {
                digest: repo_digest(img, &repository),
                repository,
                tag,
                id: img.id.clone(),
                created: img.created.clone(),
                size: img.size,
            })
            .collect())
    }
}
