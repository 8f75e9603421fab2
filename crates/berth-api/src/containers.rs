//! Container endpoints that answer at once: list, create, inspect, top, start, kill, update,
//! rename, pause/unpause, remove, prune (stop and restart wait: `stopping.rs`). Each parses,
//! makes one engine call on the blocking pool, and serializes its answer in Docker's shape.

use crate::config;
use crate::docker::{CreateBody, Resources};
use crate::error::{ApiError, ApiResult};
use crate::http::{self, Query, Resp};
use crate::router::Req;
use crate::state::App;
use berth_engine::error::EngineError;
use berth_engine::listing::ContainerFilter;
use berth_engine::record::Record;
use berth_engine::start::Started;
use berth_engine::update::UpdateRequest;
use hyper::StatusCode;
use serde_json::json;
use std::sync::Arc;

fn active(r: &Record) -> bool {
    r.is_active()
}

fn not_running(r: &Record) -> ApiError {
    ApiError::Conflict(format!("Container {} is not running", r.id))
}

pub async fn list(app: &Arc<App>, q: &Query) -> ApiResult<Resp> {
    let filter = ContainerFilter::new(q.filters()?).map_err(ApiError::BadRequest)?;
    let all = q.flag("all");
    let size = q.flag("size");
    let limit: Option<usize> = q
        .number::<i64>("limit")?
        .filter(|l| *l > 0)
        .map(|l| l as usize);
    let rows = app
        .blocking(move |e| {
            let listing = e.listing();
            let records = &listing.records;
            let shown = records
                .iter()
                .filter(|r| all || limit.is_some() || active(r) || filter.names_stopped())
                .filter(|r| filter.matches(r, records))
                .take(limit.unwrap_or(usize::MAX))
                .map(|r| e.container_summary(&listing, r, size))
                .collect::<Vec<_>>();
            Ok(shown)
        })
        .await?;
    Ok(http::json(StatusCode::OK, &rows))
}

pub async fn create(app: &Arc<App>, q: &Query, req: Req) -> ApiResult<Resp> {
    let body = http::read_body(req.into_body(), http::MAX_JSON_BODY).await?;
    let cb: CreateBody = http::parse_json(&body)?;
    let (o, extra) = config::run_options(cb, q.get("name").map(str::to_string))?;
    let (id, warnings) = app
        .blocking(move |e| {
            let image = e.image(&o.image)?;
            // A sentence from create is an option it refused (Docker's 400), not a failure.
            let rec = e.create(&o, &image).map_err(|x| match x {
                EngineError::Msg(m) => ApiError::BadRequest(m),
                other => other.into(),
            })?;
            for n in extra {
                if let Err(x) = e.connect_network(&n.name, &rec.id, n.aliases, n.ip) {
                    // The connect's failure is what to report; a container rm cannot take
                    // stays listed for `rm`.
                    let _ = e.remove(&rec.id, true, true);
                    return Err(x.into());
                }
            }
            Ok((rec.id, e.take_warnings()))
        })
        .await?;
    Ok(http::json(
        StatusCode::CREATED,
        &json!({"Id": id, "Warnings": warnings}),
    ))
}

pub async fn inspect(app: &Arc<App>, id: &str, q: &Query) -> ApiResult<Resp> {
    let (what, size) = (id.to_string(), q.flag("size"));
    let doc = app
        .blocking(move |e| {
            let r = e.get(&what)?;
            // The engine's document already has Docker's types (`hostconfig.rs`).
            let mut v = serde_json::to_value(e.inspect_container(&r)).expect("inspect serializes");
            if size {
                v["SizeRw"] = berth_engine::changes::upper_size(e, &r.id).into();
            }
            Ok(v)
        })
        .await?;
    Ok(http::json(StatusCode::OK, &doc))
}

pub async fn top(app: &Arc<App>, id: &str, q: &Query) -> ApiResult<Resp> {
    let what = id.to_string();
    let args: Vec<String> = q
        .get("ps_args")
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let t = app
        .blocking(move |e| {
            let r = e.get(&what)?;
            if !active(&r) {
                return Err(not_running(&r));
            }
            // Its sentences are `ps` refusing the client's `ps_args`.
            e.top(&r.id, &args).map_err(ApiError::refused)
        })
        .await?;
    Ok(http::json(StatusCode::OK, &t))
}

/// `POST /containers/{id}/start`: 204, or 304 when it runs already. A client attached before
/// the start gets everything from the first byte.
pub async fn start(app: &Arc<App>, id: &str) -> ApiResult<Resp> {
    let what = id.to_string();
    let app2 = app.clone();
    let (started, rec) = app
        .blocking(move |e| {
            let full = e.get(&what)?.id;
            let first = app2.has_waiting_attach(&full);
            Ok(e.start_container(&full, first)?)
        })
        .await?;
    if started == Started::AlreadyRunning {
        return Ok(http::empty(StatusCode::NOT_MODIFIED));
    }
    app.adopt_keeper(rec.state.keeper_pid);
    app.started(&rec.id);
    Ok(http::empty(StatusCode::NO_CONTENT))
}

pub async fn kill(app: &Arc<App>, id: &str, q: &Query) -> ApiResult<Resp> {
    let what = id.to_string();
    let name = q
        .get("signal")
        .filter(|s| !s.is_empty())
        .unwrap_or("SIGKILL")
        .to_string();
    let sig = berth_engine::lifecycle::signal_number(&name)
        .ok_or_else(|| ApiError::bad(format!("Invalid signal: {name}")))?;
    // Subscribed before the signal: the exit it causes is seen.
    let mut feed = app.events.subscribe();
    let id = app
        .blocking(move |e| {
            let r = e.get(&what)?;
            if !active(&r) {
                return Err(not_running(&r));
            }
            e.kill(&r, sig)?;
            Ok(r.id)
        })
        .await?;
    // Docker's kill with SIGKILL answers once the container has ended (clients `rm` next),
    // waiting on the event feed, holding no worker.
    if sig == libc::SIGKILL {
        crate::stopping::ended_within(app, &mut feed, &id, KILL_WAIT).await;
    }
    Ok(http::empty(StatusCode::NO_CONTENT))
}

/// How long a kill with SIGKILL waits for the container's end.
const KILL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn update(app: &Arc<App>, id: &str, req: Req) -> ApiResult<Resp> {
    let body = http::read_body(req.into_body(), http::MAX_JSON_BODY).await?;
    let r: Resources = http::parse_json(&body)?;
    if r.devices.as_ref().is_some_and(|d| !d.is_empty())
        || r.ulimits.as_ref().is_some_and(|u| !u.is_empty())
    {
        return Err(ApiError::bad("Devices and Ulimits cannot be updated"));
    }
    let u = UpdateRequest {
        memory: r.memory,
        memory_swap: r.memory_swap,
        cpus: config::cpus(&r).or(r.nano_cpus.filter(|n| *n == 0).map(|_| 0.0)),
        cpu_shares: r.cpu_shares.map(|s| s.max(0) as u64),
        cpuset_cpus: r.cpuset_cpus.clone(),
        pids_limit: r.pids_limit,
        blkio_weight: r.blkio_weight,
        cpuset_mems: r.cpuset_mems.clone(),
        memory_reservation: r.memory_reservation,
        cpu_period: r.cpu_period.map(|p| p.max(0) as u64),
        cpu_quota: r.cpu_quota,
        cpu_rt_period: r.cpu_realtime_period.map(|p| p.max(0) as u64),
        cpu_rt_runtime: r.cpu_realtime_runtime,
        restart: r.restart_policy.as_ref().map(|p| p.flag()),
    };
    let what = id.to_string();
    // Its sentences are about the values asked for (a restart policy it does not know).
    let warnings = app
        .blocking(move |e| e.update(&what, &u).map_err(ApiError::refused))
        .await?;
    Ok(http::json(StatusCode::OK, &json!({"Warnings": warnings})))
}

pub async fn rename(app: &Arc<App>, id: &str, q: &Query) -> ApiResult<Resp> {
    let what = id.to_string();
    let new = q.get("name").unwrap_or("").to_string();
    app.blocking(move |e| {
        if let Some(other) = e.records.id_by_name(new.trim_start_matches('/')) {
            return Err(ApiError::Conflict(format!(
                "Conflict. The container name \"/{}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name.",
                new.trim_start_matches('/')
            )));
        }
        // Its sentences are about the new name.
        berth_engine::rename::rename(e, &what, &new).map_err(ApiError::refused)
    })
    .await?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

pub async fn pause(app: &Arc<App>, id: &str, paused: bool) -> ApiResult<Resp> {
    let what = id.to_string();
    app.blocking(move |e| {
        let r = e.get(&what)?;
        match (r.state.status.as_str(), paused) {
            ("running", true) | ("paused", false) => Ok(e.set_paused(&r, paused)?),
            ("paused", true) => Err(ApiError::Conflict(format!(
                "Container {} is already paused",
                r.id
            ))),
            ("running", false) => Err(ApiError::Conflict(format!(
                "Container {} is not paused",
                r.id
            ))),
            _ => Err(not_running(&r)),
        }
    })
    .await?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

pub async fn remove(app: &Arc<App>, id: &str, q: &Query) -> ApiResult<Resp> {
    let what = id.to_string();
    let (force, volumes) = (q.flag("force"), q.flag("v"));
    app.blocking(move |e| {
        let r = e.get(&what)?;
        if active(&r) && !force {
            return Err(ApiError::Conflict(format!(
                "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                r.name
            )));
        }
        e.remove(&r.id, force, volumes)?;
        Ok(())
    })
    .await?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/prune`: every stopped container (matching `filters`).
pub async fn prune(app: &Arc<App>, q: &Query) -> ApiResult<Resp> {
    let mut filters = q.filters()?;
    // `until` and `label` are Docker's prune filters; `until` is not kept by berth's filter.
    filters.remove("until");
    let filter = ContainerFilter::new(filters).map_err(ApiError::BadRequest)?;
    let (deleted, reclaimed) = app
        .blocking(move |e| {
            let records = e.list();
            let mut deleted = Vec::new();
            let mut reclaimed = 0u64;
            for r in records
                .iter()
                .filter(|r| !active(r) && filter.matches(r, &records))
            {
                let size = berth_engine::changes::upper_size(e, &r.id);
                if e.remove(&r.id, false, false).is_ok() {
                    deleted.push(r.id.clone());
                    reclaimed += size;
                }
            }
            Ok((deleted, reclaimed))
        })
        .await?;
    Ok(http::json(
        StatusCode::OK,
        &json!({"ContainersDeleted": deleted, "SpaceReclaimed": reclaimed}),
    ))
}
