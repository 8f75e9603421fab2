//! Image endpoints: list, pull (`/images/create`, streamed progress) and import, inspect,
//! history, tag, push (streamed), remove, prune, save (`get`) and load tarballs, and commit.

use crate::docker::AuthConfig;
use crate::error::{ApiError, ApiResult};
use crate::http::{self, BodyWriter, Query, Resp};
use crate::progress::{error_line, line, JsonProgress};
use crate::router::Req;
use crate::state::App;
use berth_engine::commit::CommitOptions;
use berth_engine::images::{familiar, Removed};
use hyper::StatusCode;
use serde_json::json;
use std::sync::Arc;

/// The most a loaded tarball or an imported rootfs may be.
const MAX_TARBALL: u64 = 64 << 30;

pub async fn list(app: &Arc<App>, q: &Query) -> ApiResult<Resp> {
    // The engine's filters, the CLI's: `dangling`, `label`, `before`, `since`, `until`,
    // `reference`, checked as it checks them.
    let raw: Vec<String> = q
        .filters()?
        .into_iter()
        .flat_map(|(k, vs)| vs.into_iter().map(move |v| format!("{k}={v}")))
        .collect();
    let filters = berth_engine::filters::Filters::parse(&raw, berth_engine::images::IMAGE_FILTERS)
        .map_err(|e| ApiError::bad(e.to_string()))?;
    let rows = app
        .blocking(move |e| Ok(e.image_summaries_filtered(&filters)?))
        .await?;
    Ok(http::json(StatusCode::OK, &rows))
}

/// The client's registry credentials (`X-Registry-Auth`), if it sent any; never logged. None
/// leaves the service's own Docker config to supply them.
fn registry_auth(req: &Req) -> ApiResult<Option<berth_image::registry::auth::Credentials>> {
    let Some(h) = req.headers().get("X-Registry-Auth") else {
        return Ok(None);
    };
    let h = h
        .to_str()
        .map_err(|_| ApiError::bad("X-Registry-Auth is not base64"))?;
    Ok(AuthConfig::from_header(h)
        .map_err(ApiError::BadRequest)?
        .and_then(|a| a.credentials()))
}

fn reference(q: &Query, image: &str) -> String {
    match q.get("tag").filter(|t| !t.is_empty()) {
        Some(t) if t.starts_with("sha256:") => format!("{image}@{t}"),
        Some(t) => format!("{image}:{t}"),
        None => image.to_string(),
    }
}

/// `POST /images/create`: a pull (`fromImage`) or an import (`fromSrc`), streamed.
pub async fn create(app: &Arc<App>, q: &Query, req: Req) -> ApiResult<Resp> {
    let creds = registry_auth(&req)?;
    if let Some(src) = q.get("fromSrc").filter(|s| !s.is_empty()) {
        return import(app, q, src, req).await;
    }
    let image = q
        .get("fromImage")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad("fromImage or fromSrc is required"))?;
    let name = reference(q, image);
    let platform = q
        .get("platform")
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    let (tx, resp) = http::stream(StatusCode::OK, "application/json");
    let app2 = app.clone();
    let busy = app.busy();
    crate::state::stream_thread(move || {
        let _busy = busy;
        let p = JsonProgress::new(tx.clone(), "Downloading");
        if let Ok(r) = berth_image::reference::Reference::parse(&name) {
            let shown = r.tag.clone().or(r.digest.as_ref().map(|d| d.to_string()));
            p.send(json!({"status": format!("Pulling from {}", r.repository), "id": shown.unwrap_or_else(|| "latest".into())}));
        }
        let pulled = app2
            .engine()
            .and_then(|e| Ok(e.pull_as(&name, platform.as_deref(), &p, creds)?));
        match pulled {
            Ok(r) => {
                p.status(&format!("Digest: {}", r.digest));
                let shown = familiar(&r.reference.to_string());
                p.status(&if r.up_to_date {
                    format!("Status: Image is up to date for {shown}")
                } else {
                    format!("Status: Downloaded newer image for {shown}")
                });
            }
            Err(e) => {
                let _ = tx.blocking_send(error_line(&e.to_string()));
            }
        }
    });
    Ok(resp)
}

fn image_repo(name: &str) -> &str {
    let no_digest = name.split('@').next().unwrap_or(name);
    match no_digest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => no_digest,
    }
}

/// `fromSrc=-`: the body is a rootfs tarball (a URL source is refused), with `changes`.
async fn import(app: &Arc<App>, q: &Query, src: &str, req: Req) -> ApiResult<Resp> {
    if src != "-" {
        return Err(ApiError::bad("importing from a URL is not supported by berth: send the tarball as the body (fromSrc=-)"));
    }
    let repo = q
        .get("repo")
        .filter(|r| !r.is_empty())
        .map(|r| reference(q, r));
    let message = q
        .get("message")
        .filter(|m| !m.is_empty())
        .map(str::to_string);
    // `changes`: Dockerfile instructions for the config (`docker import -c`), one per value.
    let changes = q.all("changes");
    // `docker import --platform os/arch[/variant]`.
    let platform = q
        .get("platform")
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    let reader = app.body_reader(req.into_body(), MAX_TARBALL).await?;
    let img = app
        .blocking(move |e| {
            // Its sentences are about the client's tarball or `changes`.
            e.import(
                reader,
                "-",
                repo.as_deref(),
                message.as_deref(),
                &changes,
                platform.as_deref(),
            )
            .map_err(ApiError::refused)
        })
        .await?;
    Ok(http::bytes(
        StatusCode::OK,
        "application/json",
        line(&json!({"status": img.id.to_string()})),
    ))
}

pub async fn inspect(app: &Arc<App>, name: &str) -> ApiResult<Resp> {
    let name = name.to_string();
    let doc = app
        .blocking(move |e| {
            let img = e.image(&name)?;
            Ok(e.inspect_image(&img)?)
        })
        .await?;
    Ok(http::json(StatusCode::OK, &doc))
}

pub async fn history(app: &Arc<App>, name: &str) -> ApiResult<Resp> {
    let name = name.to_string();
    let rows = app
        .blocking(move |e| {
            let img = e.image(&name)?;
            let tags: Vec<String> = img.repo_tags.iter().map(|t| familiar(t)).collect();
            Ok(e.image_history(&name)?
                .into_iter()
                .map(|h| {
                    json!({
                        "Id": h.id.as_ref().map_or("<missing>".to_string(), |d| d.to_string()),
                        "Created": h.created.as_deref().and_then(berth_sys::time::parse_rfc3339).unwrap_or(0),
                        "CreatedBy": h.created_by,
                        "Tags": if h.id.is_some() { json!(tags) } else { json!(null) },
                        "Size": h.size,
                        "Comment": h.comment,
                    })
                })
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(http::json(StatusCode::OK, &rows))
}

pub async fn tag(app: &Arc<App>, name: &str, q: &Query) -> ApiResult<Resp> {
    let repo = q
        .get("repo")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::bad("repo is required"))?;
    let target = reference(q, repo);
    berth_image::reference::Reference::parse(&target).map_err(|e| ApiError::bad(e.to_string()))?;
    let name = name.to_string();
    app.blocking(move |e| Ok(e.tag_image(&name, &target)?))
        .await?;
    Ok(http::empty(StatusCode::CREATED))
}

/// `POST /images/{name}/push?tag=`: streamed like a pull.
pub async fn push(app: &Arc<App>, name: &str, q: &Query, req: Req) -> ApiResult<Resp> {
    let creds = registry_auth(&req)?;
    let target = reference(q, name);
    let (tx, resp) = http::stream(StatusCode::OK, "application/json");
    let app2 = app.clone();
    let busy = app.busy();
    crate::state::stream_thread(move || {
        let _busy = busy;
        let p = JsonProgress::new(tx.clone(), "Pushing");
        p.status(&format!(
            "The push refers to repository [{}]",
            image_repo(&target)
        ));
        match app2
            .engine()
            .and_then(|e| Ok(e.push_as(&target, &p, creds)?))
        {
            Ok(r) => {
                p.status(&format!("{}: digest: {} size: {}", r.tag, r.digest, r.size));
                p.send(json!({"progressDetail": {}, "aux": {"Tag": r.tag, "Digest": r.digest.to_string(), "Size": r.size}}));
            }
            Err(e) => {
                let _ = tx.blocking_send(error_line(&e.to_string()));
            }
        }
    });
    Ok(resp)
}

pub async fn remove(app: &Arc<App>, name: &str, q: &Query) -> ApiResult<Resp> {
    let name = name.to_string();
    let force = q.flag("force");
    let removed = app
        .blocking(move |e| Ok(e.remove_image(&name, force)?))
        .await?;
    let rows: Vec<_> = removed
        .iter()
        .map(|r| match r {
            Removed::Untagged(t) => json!({"Untagged": t}),
            Removed::Deleted(id) => json!({"Deleted": id}),
        })
        .collect();
    Ok(http::json(StatusCode::OK, &rows))
}

/// `POST /images/prune`: dangling images, or every unused one with `dangling=false`.
pub async fn prune(app: &Arc<App>, q: &Query) -> ApiResult<Resp> {
    let filters = q.filters()?;
    let all = filters
        .get("dangling")
        .is_some_and(|v| v.iter().any(|d| d == "false" || d == "0"));
    let (removed, freed) = app.blocking(move |e| Ok(e.prune_images(all)?)).await?;
    let deleted: Vec<_> = removed
        .iter()
        .map(|i| json!({"Deleted": i.id.to_string()}))
        .collect();
    Ok(http::json(
        StatusCode::OK,
        &json!({"ImagesDeleted": deleted, "SpaceReclaimed": freed}),
    ))
}

/// `GET /images/get?names=…`: a `docker save` tarball, streamed.
pub async fn save(app: &Arc<App>, names: Vec<String>) -> ApiResult<Resp> {
    if names.is_empty() {
        return Err(ApiError::bad("no image names given"));
    }
    // Checked before the 200: a missing image is a 404, not a broken tarball.
    let check = names.clone();
    app.blocking(move |e| {
        for n in &check {
            e.image(n)?;
        }
        Ok(())
    })
    .await?;
    let (tx, resp) = http::stream(StatusCode::OK, "application/x-tar");
    let app2 = app.clone();
    let busy = app.busy();
    crate::state::stream_thread(move || {
        let _busy = busy;
        if let Ok(e) = app2.engine() {
            // A failure mid-stream can only cut the tarball short (the client sees it truncated).
            if let Err(x) = e.save(&names, BodyWriter::new(tx)) {
                eprintln!("berth serve: save: {x}");
            }
        }
    });
    Ok(resp)
}

/// `POST /images/load`: a `docker save` (or OCI) tarball as the body.
pub async fn load(app: &Arc<App>, q: &Query, req: Req) -> ApiResult<Resp> {
    let quiet = q.flag("quiet");
    let reader = app.body_reader(req.into_body(), MAX_TARBALL).await?;
    // API 1.45 has no `platform` here (1.48's is a JSON platform): the host's is loaded. Its
    // sentences are about the client's tarball.
    let loaded = app
        .blocking(move |e| e.load(reader, None).map_err(ApiError::refused))
        .await?;
    let mut out = Vec::new();
    for (img, tags) in loaded {
        if tags.is_empty() {
            out.extend_from_slice(&line(
                &json!({"stream": format!("Loaded image ID: {}\n", img.id)}),
            ));
        }
        for t in tags {
            out.extend_from_slice(&line(
                &json!({"stream": format!("Loaded image: {}\n", familiar(&t))}),
            ));
        }
    }
    let _ = quiet;
    // Streamed (chunked), as Docker's: docker-py reads a load's answer as a JSON stream only
    // when it comes in chunks, and one body of several lines fails its JSON parse.
    let (tx, resp) = http::stream(StatusCode::OK, "application/json");
    tokio::spawn(async move {
        // A client gone before the answer loses only the answer: the images are loaded.
        let _ = tx.send(bytes::Bytes::from(out)).await;
    });
    Ok(resp)
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`.
pub async fn commit(app: &Arc<App>, q: &Query, req: Req) -> ApiResult<Resp> {
    // The body (a Config to merge) is read and bounded; `changes` is how clients set config.
    let _ = http::read_body(req.into_body(), http::MAX_JSON_BODY).await?;
    let container = q
        .get("container")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad("container is required"))?
        .to_string();
    let o = CommitOptions {
        message: q.get("comment").map(str::to_string),
        author: q.get("author").map(str::to_string),
        changes: q
            .all("changes")
            .iter()
            .flat_map(|c| c.lines().map(str::to_string).collect::<Vec<_>>())
            .filter(|c| !c.trim().is_empty())
            .collect(),
        pause: q.flag_or("pause", true),
        reference: q
            .get("repo")
            .filter(|r| !r.is_empty())
            .map(|r| reference(q, r)),
    };
    if let Some(r) = &o.reference {
        berth_image::reference::Reference::parse(r).map_err(|e| ApiError::bad(e.to_string()))?;
    }
    // Its sentences are about `changes`.
    let img = app
        .blocking(move |e| {
            berth_engine::commit::commit(e, &container, &o).map_err(ApiError::refused)
        })
        .await?;
    Ok(http::json(
        StatusCode::CREATED,
        &json!({"Id": img.id.to_string()}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_read_as_dockers() {
        assert_eq!(image_repo("127.0.0.1:5000/bb:v1"), "127.0.0.1:5000/bb");
        assert_eq!(image_repo("127.0.0.1:5000/bb"), "127.0.0.1:5000/bb");
        assert_eq!(reference(&Query::parse(Some("tag=v2")), "bb"), "bb:v2");
    }
}
