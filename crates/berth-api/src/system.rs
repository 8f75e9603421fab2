//! System endpoints: `_ping` (the version negotiation's answer), `version`, `info`, `events`
//! (the journal's history between `since` and `until`, then the live feed), `system/df`,
//! `auth`; and the live feed itself: one thread following the store's journal for the service.

use crate::error::{ApiError, ApiResult};
use crate::http::{self, Query, Resp};
use crate::router::Req;
use crate::state::App;
use berth_engine::events::{in_window, Event, EventFilter, Journal};
use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

pub fn ping(m: &Method) -> Resp {
    let r = if *m == Method::HEAD {
        http::empty(StatusCode::OK)
    } else {
        http::bytes(StatusCode::OK, "text/plain; charset=utf-8", "OK")
    };
    let r = http::with_header(r, "Builder-Version", "1");
    let r = http::with_header(r, "Cache-Control", "no-cache, no-store, must-revalidate");
    http::with_header(r, "Pragma", "no-cache")
}

pub async fn version(_app: &Arc<App>) -> ApiResult<Resp> {
    Ok(http::json(
        StatusCode::OK,
        &berth_engine::system::version_info(),
    ))
}

pub async fn info(app: &Arc<App>) -> ApiResult<Resp> {
    let mut info = app.blocking(|e| Ok(e.system_info()?)).await?;
    info.n_events_listener = app.events.receiver_count();
    Ok(http::json(StatusCode::OK, &info))
}

/// Starts the thread that follows the journal and hands each new event to every subscriber.
pub fn start_event_feed(app: &Arc<App>) -> std::io::Result<()> {
    let (_, mut follower) = Journal::new(&app.root).snapshot()?;
    let tx = app.events.clone();
    std::thread::Builder::new()
        .name("berth-events".into())
        .spawn(move || loop {
            for e in follower.next(Duration::from_secs(5)) {
                // No subscriber is no error.
                let _ = tx.send(Arc::new(e));
            }
        })?;
    Ok(())
}

/// `since`/`until` as nanoseconds. A whole-second `until` (what the docker CLI sends for
/// `--until 0s`) takes in that whole second.
fn time_arg(q: &Query, k: &str) -> ApiResult<Option<i128>> {
    match q.get(k).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => berth_sys::time::parse_timestamp_nanos(v)
            .map(
                |n| match k == "until" && v.bytes().all(|b| b.is_ascii_digit()) {
                    true => Some(n.saturating_add(999_999_999)),
                    false => Some(n),
                },
            )
            .ok_or_else(|| ApiError::bad(format!("invalid value for {k}: {v:?}"))),
    }
}

fn now_nanos() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

fn line(e: &Event) -> Bytes {
    let mut v = serde_json::to_vec(e).expect("an event serializes");
    v.push(b'\n');
    Bytes::from(v)
}

/// `GET /events`: history (with `since`), then live events until `until` (or forever).
pub async fn events(app: &Arc<App>, q: &Query) -> ApiResult<Resp> {
    let filter = EventFilter::new(q.filters()?).map_err(ApiError::BadRequest)?;
    let since = time_arg(q, "since")?;
    let until = time_arg(q, "until")?;
    let mut live = app.events.subscribe();
    let history = match since {
        Some(_) => {
            let root = app.root.clone();
            tokio::task::spawn_blocking(move || Journal::new(&root).read(since, until))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?
        }
        None => Vec::new(),
    };
    let (tx, resp) = http::stream(StatusCode::OK, "application/json");
    let busy = app.busy();
    tokio::spawn(async move {
        let _busy = busy;
        let mut last = 0;
        for e in history.iter().filter(|e| filter.matches(e)) {
            last = e.time_nano;
            if tx.send(line(e)).await.is_err() {
                return;
            }
        }
        if until.is_some_and(|u| u <= now_nanos()) {
            return;
        }
        // An `until` past what the clock can hold is followed without a deadline (its window
        // still filters what is sent).
        let deadline = until.and_then(|u| {
            let wait = u64::try_from(u.saturating_sub(now_nanos())).unwrap_or(u64::MAX);
            tokio::time::Instant::now().checked_add(Duration::from_nanos(wait))
        });
        loop {
            let next = async {
                match deadline {
                    Some(d) => tokio::time::timeout_at(d, live.recv()).await.ok(),
                    None => Some(live.recv().await),
                }
            };
            tokio::select! {
                got = next => match got {
                    None => return,
                    Some(Ok(e)) => {
                        if e.time_nano > last && in_window(&e, since, until) && filter.matches(&e)
                            && tx.send(line(&e)).await.is_err() {
                            return;
                        }
                    }
                    Some(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
                    Some(Err(_)) => return,
                },
                _ = tx.closed() => return,
            }
        }
    });
    Ok(resp)
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DiskUsage {
    layers_size: u64,
    images: Vec<berth_engine::images::ImageSummary>,
    containers: Vec<berth_engine::listing::ContainerSummary>,
    volumes: Vec<serde_json::Value>,
    build_cache: Vec<serde_json::Value>,
}

/// `GET /system/df`: images (with their containers), containers with their writable layers'
/// sizes, volumes with their sizes and users.
pub async fn df(app: &Arc<App>) -> ApiResult<Resp> {
    let usage = app
        .blocking(|e| {
            let du = e.disk_usage()?;
            let listing = e.listing();
            let records = &listing.records;
            let volumes = berth_engine::volume::list(e)
                .into_iter()
                .map(|v| {
                    let refs = berth_engine::volume::users(e, &v.name).len();
                    let mut j = v.inspect_json();
                    j["UsageData"] = serde_json::json!({"Size": v.size(), "RefCount": refs});
                    j
                })
                .collect();
            Ok(DiskUsage {
                layers_size: du.on_disk,
                images: e.image_summaries()?,
                containers: records
                    .iter()
                    .map(|r| e.container_summary(&listing, r, true))
                    .collect(),
                volumes,
                build_cache: e
                    .build_cache_items()?
                    .into_iter()
                    .map(|c| {
                        serde_json::json!({
                            "ID": c.id, "Parent": "", "Parents": [], "Type": "regular",
                            "Description": "", "InUse": false, "Shared": c.shared,
                            "Size": c.size, "CreatedAt": c.created,
                            "LastUsedAt": berth_sys::time::rfc3339(c.last_used),
                            "UsageCount": 0,
                        })
                    })
                    .collect(),
            })
        })
        .await?;
    Ok(http::json(StatusCode::OK, &usage))
}

/// `POST /auth`: the credentials are checked against the registry and not kept (the client
/// stores them, as with Docker). Never logged.
pub async fn auth(app: &Arc<App>, req: Req) -> ApiResult<Resp> {
    let body = http::read_body(req.into_body(), http::MAX_JSON_BODY).await?;
    let a: crate::docker::AuthConfig = http::parse_json(&body)?;
    let server = if a.server_address.is_empty() {
        "docker.io".to_string()
    } else {
        a.server_address.clone()
    };
    let creds = a
        .credentials()
        .ok_or_else(|| ApiError::bad("no username and password given"))?;
    app.blocking(move |e| Ok(e.check_login(&server, &creds)?))
        .await
        .map_err(|e| match e {
            ApiError::Engine(x) => ApiError::Unauthorized(x.to_string()),
            other => other,
        })?;
    Ok(http::json(
        StatusCode::OK,
        &serde_json::json!({"Status": "Login Succeeded", "IdentityToken": ""}),
    ))
}
