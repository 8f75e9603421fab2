//! `stop` and `restart`: the stop signal, then the grace period waited for on the event feed,
//! holding no worker however long `t` is, then SIGKILL. The stop runs as a task of its own, so a
//! client that leaves does not cut it short (Docker's stop goes on too); only the short engine
//! steps run on the blocking pool.

use crate::error::{ApiError, ApiResult};
use crate::http::{self, Query, Resp};
use crate::state::App;
use hyper::StatusCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// `POST /containers/{id}/stop?t=`: 204, or 304 when it was not running.
pub async fn stop(app: &Arc<App>, id: &str, q: &Query) -> ApiResult<Resp> {
    let t = grace(q)?;
    let (_, ran) = stop_container(app, id.to_string(), t).await?;
    Ok(http::empty(if ran {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_MODIFIED
    }))
}

/// `POST /containers/{id}/restart?t=`: stopped as `stop` stops it (when it runs), then started.
pub async fn restart(app: &Arc<App>, id: &str, q: &Query) -> ApiResult<Resp> {
    let t = grace(q)?;
    let (full, _) = stop_container(app, id.to_string(), t).await?;
    let rec = app.blocking(move |e| Ok(e.start_again(&full)?)).await?;
    app.adopt_keeper(rec.state.keeper_pid);
    Ok(http::empty(StatusCode::NO_CONTENT))
}

/// `t` in seconds (a negative one waits none).
fn grace(q: &Query) -> ApiResult<Option<u64>> {
    Ok(q.number::<i64>("t")?.map(|t| t.max(0) as u64))
}

/// Stops `what`: its full id, and whether it was running.
async fn stop_container(app: &Arc<App>, what: String, t: Option<u64>) -> ApiResult<(String, bool)> {
    let app = app.clone();
    let task = tokio::spawn(async move {
        // Subscribed before the signal: an exit in between is seen.
        let mut feed = app.events.subscribe();
        let began = app
            .blocking(move |e| {
                let rec = e.get(&what)?;
                let grace = e.begin_stop(&rec, None, t)?;
                Ok((rec, grace))
            })
            .await?;
        let (mut rec, grace) = match began {
            (rec, Some(grace)) => (rec, grace),
            (rec, None) => return Ok((rec.id, false)),
        };
        let id = rec.id.clone();
        if !ended_within(&app, &mut feed, &id, Duration::from_secs(grace)).await {
            let id = id.clone();
            app.blocking(move |e| Ok(e.force_stop(&id)?)).await?;
        }
        app.blocking(move |e| Ok(e.end_stop(&mut rec)?)).await?;
        Ok((id, true))
    });
    task.await
        .map_err(|e| ApiError::Internal(format!("stopping the container: {e}")))?
}

/// Whether container `id` stopped running within `grace`: woken by its `die` event, and looked
/// at once a second besides (a watcher killed before its event is caught by reconciling).
pub(crate) async fn ended_within(
    app: &Arc<App>,
    feed: &mut tokio::sync::broadcast::Receiver<Arc<berth_engine::events::Event>>,
    id: &str,
    grace: Duration,
) -> bool {
    // A grace past what the clock holds (`-t 9223372036854775807`) waits for the exit alone.
    let deadline = tokio::time::Instant::now().checked_add(grace);
    let until_deadline = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(until_deadline);
    let mut look = true;
    loop {
        if look && !runs(app, id).await {
            return true;
        }
        look = false;
        tokio::select! {
            ev = feed.recv() => match ev {
                Ok(e) if e.actor.id == id && e.action == "die" => return true,
                Ok(_) => {}
                Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => look = true,
            },
            _ = tokio::time::sleep(Duration::from_secs(1)) => look = true,
            _ = &mut until_deadline => return !runs(app, id).await,
        }
    }
}

/// Whether the container runs now (reconciled); a container that is gone does not.
async fn runs(app: &Arc<App>, id: &str) -> bool {
    let id = id.to_string();
    app.blocking(move |e| Ok(e.get(&id).ok().is_some_and(|r| r.is_active())))
        .await
        .unwrap_or(false)
}
