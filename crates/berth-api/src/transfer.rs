//! Moving files in and out of containers: `changes` (the writable layer's diff), `export` (the
//! root filesystem as a tar), and `archive` — HEAD to stat a path, GET a tar of it, PUT a tar
//! into a directory — which `docker cp` drives both ways. Paths are resolved inside the
//! container's root by the engine (`copy`, `path_stat`).

use crate::error::{ApiError, ApiResult};
use crate::http::{self, BodyWriter, Query, Resp};
use crate::router::Req;
use crate::state::App;
use base64::Engine as _;
use berth_engine::copy::{copy_in_stream, copy_out_stream, CpPath};
use berth_engine::path_stat::PathStat;
use hyper::StatusCode;
use serde_json::json;
use std::sync::Arc;

/// The most a tar sent into a container may be.
const MAX_ARCHIVE: u64 = 64 << 30;

pub async fn changes(app: &Arc<App>, id: &str) -> ApiResult<Resp> {
    let what = id.to_string();
    let rows = app
        .blocking(move |e| {
            let r = e.get(&what)?;
            Ok(berth_engine::changes::changes(e, &r)?
                .into_iter()
                .map(|c| {
                    let kind = match c.kind {
                        berth_engine::changes::Kind::Changed => 0,
                        berth_engine::changes::Kind::Added => 1,
                        berth_engine::changes::Kind::Deleted => 2,
                    };
                    json!({"Path": format!("/{}", c.path.display()), "Kind": kind})
                })
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(http::json(StatusCode::OK, &rows))
}

pub async fn export(app: &Arc<App>, id: &str) -> ApiResult<Resp> {
    let what = id.to_string();
    let rec = app.blocking(move |e| Ok(e.get(&what)?)).await?;
    let (tx, resp) = http::stream(StatusCode::OK, "application/x-tar");
    let app2 = app.clone();
    let busy = app.busy();
    crate::state::stream_thread(move || {
        let _busy = busy;
        if let Ok(e) = app2.engine() {
            if let Err(x) = e.export(&rec.id, BodyWriter::new(tx)) {
                eprintln!("berth serve: export {}: {x}", rec.name);
            }
        }
    });
    Ok(resp)
}

fn stat_header(s: &PathStat) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(serde_json::to_vec(s).expect("a stat serializes"))
}

fn path_arg(q: &Query) -> ApiResult<String> {
    q.get("path")
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad("path is required"))
}

/// A path the client gave that no file can have (too long, a loop of links, through a file):
/// Docker's 400; other failures keep their status.
fn path_error(e: berth_engine::EngineError) -> ApiError {
    let bad_path = matches!(
        &e,
        berth_engine::EngineError::Io { source, .. }
            if matches!(
                source.raw_os_error(),
                Some(libc::ENAMETOOLONG | libc::ELOOP | libc::ENOTDIR | libc::EINVAL)
            )
    );
    match bad_path {
        true => ApiError::BadRequest(e.to_string()),
        false => e.into(),
    }
}

/// The container and the stat of `path` in it (404 with Docker's message when missing).
async fn stat(
    app: &Arc<App>,
    id: &str,
    path: &str,
) -> ApiResult<(berth_engine::record::Record, PathStat)> {
    let (what, p) = (id.to_string(), path.to_string());
    app.blocking(move |e| {
        let r = e.get(&what)?;
        match e.path_stat(&r, &p).map_err(path_error)? {
            Some(s) => Ok((r, s)),
            None => Err(ApiError::NotFound(format!(
                "Could not find the file {p} in container {}",
                r.name
            ))),
        }
    })
    .await
}

pub async fn archive_stat(app: &Arc<App>, id: &str, q: &Query) -> ApiResult<Resp> {
    let path = path_arg(q)?;
    let (_, s) = stat(app, id, &path).await?;
    Ok(http::with_header(
        http::empty(StatusCode::OK),
        "X-Docker-Container-Path-Stat",
        &stat_header(&s),
    ))
}

pub async fn archive_get(app: &Arc<App>, id: &str, q: &Query) -> ApiResult<Resp> {
    let path = path_arg(q)?;
    let (rec, s) = stat(app, id, &path).await?;
    let (tx, resp) = http::stream(StatusCode::OK, "application/x-tar");
    let app2 = app.clone();
    let busy = app.busy();
    crate::state::stream_thread(move || {
        let _busy = busy;
        if let Ok(e) = app2.engine() {
            let src = CpPath::parse(&path, true);
            if let Err(x) = copy_out_stream(&e, &rec, &src, BodyWriter::new(tx), false) {
                eprintln!("berth serve: archive {}:{path}: {x}", rec.name);
            }
        }
    });
    Ok(http::with_header(
        resp,
        "X-Docker-Container-Path-Stat",
        &stat_header(&s),
    ))
}

pub async fn archive_put(app: &Arc<App>, id: &str, q: &Query, req: Req) -> ApiResult<Resp> {
    let path = path_arg(q)?;
    let keep_owner = q.flag("copyUIDGID");
    let (rec, s) = stat(app, id, &path).await?;
    if s.mode & (1 << 31) == 0 {
        return Err(ApiError::bad(format!(
            "extraction point is not a directory: {path}"
        )));
    }
    let reader = app.body_reader(req.into_body(), MAX_ARCHIVE).await?;
    app.blocking(move |e| {
        let dest = CpPath::parse(&path, true);
        // Its sentences are about the client's tarball (an entry that climbs out, a bad block).
        copy_in_stream(e, &rec, reader, &dest, keep_owner).map_err(ApiError::refused)
    })
    .await?;
    Ok(http::empty(StatusCode::OK))
}
