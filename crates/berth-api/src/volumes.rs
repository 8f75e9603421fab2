//! Volume endpoints: list, create, inspect, remove, prune (the engine's `volume` module).

use crate::docker::VolumeCreate;
use crate::error::{ApiError, ApiResult};
use crate::http::{self, Query, Resp};
use crate::router::Req;
use crate::state::App;
use berth_engine::volume;
use hyper::StatusCode;
use serde_json::json;
use std::sync::Arc;

pub async fn list(app: &Arc<App>, q: &Query) -> ApiResult<Resp> {
    let filters = q.filters()?;
    if let Some(k) = filters
        .keys()
        .find(|k| !matches!(k.as_str(), "name" | "dangling" | "label" | "driver"))
    {
        return Err(ApiError::bad(format!("invalid filter '{k}'")));
    }
    let vols = app
        .blocking(move |e| {
            Ok(volume::list(e)
                .into_iter()
                .filter(|v| {
                    crate::http::filters_match(&filters, |k, x| match k {
                        "name" => v.name.contains(x),
                        "driver" => x == "local",
                        "dangling" => {
                            (x == "true" || x == "1") == volume::users(e, &v.name).is_empty()
                        }
                        "label" => match x.split_once('=') {
                            Some((lk, lv)) => v.labels.get(lk).is_some_and(|l| l == lv),
                            None => v.labels.contains_key(x),
                        },
                        _ => false,
                    })
                })
                .map(|v| v.inspect_json())
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(http::json(
        StatusCode::OK,
        &json!({"Volumes": vols, "Warnings": []}),
    ))
}

pub async fn create(app: &Arc<App>, req: Req) -> ApiResult<Resp> {
    let body = http::read_body(req.into_body(), http::MAX_JSON_BODY).await?;
    let c: VolumeCreate = http::parse_json(&body)?;
    if let Some(d) = c
        .driver
        .as_deref()
        .filter(|d| !d.is_empty() && *d != "local")
    {
        return Err(ApiError::bad(format!(
            "volume driver {d:?} is not supported by berth (local)"
        )));
    }
    // The local driver's options (type, device, o), refused by name as `volume create --opt`.
    let options = c.driver_opts.clone().unwrap_or_default();
    let shown = c.name.as_deref().unwrap_or("");
    berth_engine::volume_opts::parse(shown, &options).map_err(|e| ApiError::bad(e.to_string()))?;
    let v = app
        .blocking(move |e| {
            // A sentence from create is the name or the options it refused.
            volume::create_with_options(
                e,
                c.name.as_deref().filter(|n| !n.is_empty()),
                c.labels.unwrap_or_default(),
                options,
            )
            .map_err(ApiError::refused)
        })
        .await?;
    Ok(http::json(StatusCode::CREATED, &v.inspect_json()))
}

pub async fn inspect(app: &Arc<App>, name: &str) -> ApiResult<Resp> {
    let name = name.to_string();
    let v = app
        .blocking(move |e| {
            // `get` fails only when there is no such volume.
            volume::get(e, &name)
                .map_err(|_| ApiError::NotFound(format!("get {name}: no such volume")))
        })
        .await?;
    Ok(http::json(StatusCode::OK, &v.inspect_json()))
}

pub async fn remove(app: &Arc<App>, name: &str, q: &Query) -> ApiResult<Resp> {
    let name = name.to_string();
    let force = q.flag("force");
    app.blocking(move |e| {
        if volume::get(e, &name).is_err() {
            return match force {
                true => Ok(()),
                false => Err(ApiError::NotFound(format!("get {name}: no such volume"))),
            };
        }
        let users = volume::users(e, &name);
        if !users.is_empty() {
            let ids: Vec<&str> = users.iter().map(|r| r.id.as_str()).collect();
            return Err(ApiError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                ids.join(", ")
            )));
        }
        Ok(volume::remove(e, &name, force)?)
    })
    .await?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

/// `POST /volumes/prune`: anonymous unused volumes, or every unused one with `all=true`.
pub async fn prune(app: &Arc<App>, q: &Query) -> ApiResult<Resp> {
    let filters = q.filters()?;
    let all = filters
        .get("all")
        .is_some_and(|v| v.iter().any(|x| x == "true" || x == "1"));
    let (gone, bytes) = app.blocking(move |e| Ok(volume::prune(e, all)?)).await?;
    Ok(http::json(
        StatusCode::OK,
        &json!({"VolumesDeleted": gone, "SpaceReclaimed": bytes}),
    ))
}
