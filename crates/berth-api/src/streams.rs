//! A container's streams: attach (hijacked, through its watcher's attach socket), logs (with
//! follow, in Docker's multiplexed frames without a terminal), stats (streamed or one sample),
//! wait (Docker's conditions, woken by the event feed) and resize.

use crate::error::{ApiError, ApiResult};
use crate::hijack::{self, Chunk, Input};
use crate::http::{self, Query, Resp};
use crate::router::Req;
use crate::state::App;
use berth_engine::attach_client::{self, Output};
use berth_engine::logstream::LogQuery;
use berth_engine::record::Record;
use bytes::Bytes;
use hyper::StatusCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

fn active(r: &Record) -> bool {
    matches!(r.state.status.as_str(), "running" | "paused" | "restarting")
}

/// `POST /containers/{id}/attach`: joins the container's streams; before its start, waits for
/// it (and its watcher waits for us, so no output is lost).
pub async fn attach(app: &Arc<App>, id: &str, q: &Query, mut req: Req) -> ApiResult<Resp> {
    let what = id.to_string();
    let rec = app.blocking(move |e| Ok(e.get(&what)?)).await?;
    let keys = hijack::detach_keys(q.get("detachKeys"))?;
    let want_stdin = q.flag("stdin") && rec.open_stdin;
    let (want_out, want_err) = (q.flag_or("stdout", false), q.flag_or("stderr", false));
    let logs = q.flag("logs");
    let stream = q.flag_or("stream", true);
    let (out_tx, out_rx) = mpsc::channel::<Chunk>(64);
    let (in_tx, in_rx) = mpsc::channel::<Input>(64);
    // Registered before the response: the client starts the container only after it.
    let waiting = (stream && !active(&rec)).then(|| app.wait_for_start(&rec.id));
    let hijacked = req.headers().contains_key(hyper::header::UPGRADE);
    let resp = match hijack::websocket_key(&req) {
        // `attach/ws`: the same streams over a websocket.
        Some(key) => hijack::websocket(req, &key, out_rx, want_stdin.then_some(in_tx), app.busy()),
        None => hijack::session(
            hijack::take_upgrade(&mut req),
            rec.tty,
            out_rx,
            want_stdin.then_some(in_tx),
            keys,
            app.busy(),
        ),
    };
    let app = app.clone();
    tokio::spawn(async move {
        if logs {
            if hijacked {
                // docker-py reads the 101's headers through a buffered reader and then reads
                // the raw socket: bytes that came with the headers are lost to it (its
                // `attach(logs=True, stream=False)` then shows nothing). dockerd's backlog is
                // never that quick; berth's waits as long.
                tokio::time::sleep(BACKLOG_AFTER_UPGRADE).await;
            }
            send_backlog(&app, &rec, want_out, want_err, &out_tx).await;
        }
        if !stream {
            return;
        }
        if let Some(n) = &waiting {
            tokio::select! {
                _ = wait_started(&app, &rec.id, n) => {}
                // The client left before the start: nothing to attach.
                _ = out_tx.closed() => {
                    app.stop_waiting(&rec.id, n);
                    return;
                }
            }
            app.stop_waiting(&rec.id, n);
        }
        let filter = (want_out, want_err);
        let runroot = app.runroot.clone();
        let id = rec.id.clone();
        let connected = tokio::task::spawn_blocking(move || {
            attach_client::connect(&runroot, &id, Duration::from_secs(5))
        })
        .await;
        let Ok(Ok((reader, writer))) = connected else {
            return;
        };
        app.set_attached_input(&rec.id, writer.try_clone().ok());
        pump_attach(reader, writer, out_tx, in_rx, filter, rec.tty).await;
        app.set_attached_input(&rec.id, None);
    });
    Ok(resp)
}

/// How long an attach's log backlog waits after the upgrade (see `attach`).
const BACKLOG_AFTER_UPGRADE: Duration = Duration::from_millis(20);

/// Waits until the service started `id`, or anyone did (checked every 200 ms).
async fn wait_started(app: &Arc<App>, id: &str, n: &tokio::sync::Notify) {
    loop {
        tokio::select! {
            _ = n.notified() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                let what = id.to_string();
                match app.blocking(move |e| Ok(e.get(&what)?)).await {
                    Ok(r) if active(&r) => return,
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        }
    }
}

/// The log on record, framed as the attach stream is.
async fn send_backlog(
    app: &Arc<App>,
    rec: &Record,
    out: bool,
    err: bool,
    tx: &mpsc::Sender<Chunk>,
) {
    let id = rec.id.clone();
    let entries = app
        .blocking(move |e| {
            let mut s = e.log_stream(&id, LogQuery::default());
            Ok(s.next_batch(Duration::ZERO, |_| false).unwrap_or_default())
        })
        .await
        .unwrap_or_default();
    for e in entries {
        let c = match e.stream.as_str() {
            "stderr" if err => Chunk::Stderr(e.log.into_bytes()),
            "stdout" if out => Chunk::Stdout(e.log.into_bytes()),
            _ => continue,
        };
        if tx.send(c).await.is_err() {
            return;
        }
    }
}

/// Copies the watcher's frames to the client and the client's input to the watcher, each on a
/// thread of its own (the attach socket is blocking); either side's end hangs up both.
async fn pump_attach(
    mut reader: attach_client::OutputReader,
    writer: attach_client::InputWriter,
    out_tx: mpsc::Sender<Chunk>,
    mut in_rx: mpsc::Receiver<Input>,
    (want_out, want_err): (bool, bool),
    tty: bool,
) {
    let hang = writer.try_clone().ok();
    let output = crate::state::stream_thread(move || {
        while let Some(o) = reader.next_output() {
            let c = match o {
                Output::Stdout(d) if want_out => Chunk::Stdout(d),
                Output::Stderr(d) if want_err => Chunk::Stderr(d),
                Output::Exit(_) => return,
                _ => continue,
            };
            if out_tx.blocking_send(c).is_err() {
                return;
            }
        }
    });
    // Ends with the client's input, or at the first write after the hang-up below.
    let input = crate::state::stream_thread(move || {
        let mut w = writer;
        while let Some(i) = in_rx.blocking_recv() {
            let sent = match i {
                Input::Data(d) => w.input(&d),
                Input::End if !tty => w.close_stdin(),
                Input::End => Ok(()),
            };
            if sent.is_err() {
                return;
            }
        }
    });
    let _ = output.await;
    if let Some(h) = hang {
        h.hang_up();
    }
    drop(input);
}

/// `POST /containers/{id}/resize?h=&w=`: through the attached session, or a short one.
pub async fn resize(app: &Arc<App>, id: &str, q: &Query) -> ApiResult<Resp> {
    let h: u16 = q.number("h")?.unwrap_or(0);
    let w: u16 = q.number("w")?.unwrap_or(0);
    let what = id.to_string();
    let app2 = app.clone();
    app.blocking(move |e| {
        let r = e.get(&what)?;
        if !active(&r) {
            return Err(ApiError::Conflict(format!(
                "Container {} is not running",
                r.id
            )));
        }
        if !r.tty {
            return Ok(());
        }
        match app2.attached_input(&r.id) {
            Some(mut input) => input
                .resize(h, w)
                .map_err(|x| ApiError::Internal(format!("resize: {x}"))),
            // Nobody attached: nothing reads the size now; the next attach sends its own.
            None => Ok(()),
        }
    })
    .await?;
    Ok(http::empty(StatusCode::OK))
}

/// `GET /containers/{id}/logs`: stdout/stderr entries (framed without a terminal), since,
/// until, tail, timestamps, follow.
pub async fn logs(app: &Arc<App>, id: &str, q: &Query) -> ApiResult<Resp> {
    let (out, err) = (q.flag("stdout"), q.flag("stderr"));
    if !out && !err {
        return Err(ApiError::bad("You must choose at least one stream"));
    }
    let time = |k: &str| -> ApiResult<Option<i128>> {
        match q.get(k).filter(|v| !v.is_empty() && *v != "0") {
            None => Ok(None),
            Some(v) => berth_sys::time::parse_timestamp_nanos(v)
                .map(Some)
                .ok_or_else(|| ApiError::bad(format!("invalid value for {k}: {v:?}"))),
        }
    };
    let query = LogQuery {
        since: time("since")?,
        until: time("until")?,
        tail: match q.get("tail") {
            None | Some("all") | Some("") => None,
            Some(n) => Some(
                n.parse()
                    .map_err(|_| ApiError::bad(format!("invalid value for tail: {n:?}")))?,
            ),
        },
        follow: q.flag("follow"),
    };
    let timestamps = q.flag("timestamps");
    let what = id.to_string();
    let rec = app.blocking(move |e| Ok(e.get(&what)?)).await?;
    let tty = rec.tty;
    let content = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let (tx, resp) = http::stream(StatusCode::OK, content);
    let app2 = app.clone();
    let busy = app.busy();
    crate::state::stream_thread(move || {
        let _busy = busy;
        let Ok(e) = app2.engine() else { return };
        let mut s = e.log_stream(&rec.id, query);
        // A client that left ends the follow even while the container is silent. The record is
        // read at most twice a second (the log file is polled every 50 ms): a follow ends at
        // most half a second after its container, and a hundred followers cost little.
        let checked = std::cell::Cell::new(None::<(std::time::Instant, bool)>);
        let alive = |id: &str| {
            if tx.is_closed() {
                return false;
            }
            match checked.get() {
                Some((at, running)) if at.elapsed() < Duration::from_millis(500) => running,
                _ => {
                    let running = e.get(id).is_ok_and(|r| active(&r));
                    checked.set(Some((std::time::Instant::now(), running)));
                    running
                }
            }
        };
        while let Some(batch) = s.next_batch(Duration::from_millis(50), alive) {
            for entry in batch {
                let stream = if entry.stream == "stderr" { 2 } else { 1 };
                if (stream == 1 && !out) || (stream == 2 && !err) {
                    continue;
                }
                let text = if timestamps {
                    format!("{} {}", entry.time, entry.log)
                } else {
                    entry.log
                };
                let b = if tty {
                    Bytes::from(text)
                } else {
                    hijack::frame(stream, text.as_bytes())
                };
                if tx.blocking_send(b).is_err() {
                    return;
                }
            }
        }
    });
    Ok(resp)
}

/// `GET /containers/{id}/stats`: one sample per second while `stream`, else one (with a
/// `precpu` a second before unless `one-shot`).
pub async fn stats(app: &Arc<App>, id: &str, q: &Query) -> ApiResult<Resp> {
    let stream = q.flag_or("stream", true);
    let one_shot = q.flag("one-shot");
    let what = id.to_string();
    let rec = app.blocking(move |e| Ok(e.get(&what)?)).await?;
    let (tx, resp) = http::stream(StatusCode::OK, "application/json");
    let app2 = app.clone();
    let busy = app.busy();
    crate::state::stream_thread(move || {
        let _busy = busy;
        let Ok(e) = app2.engine() else { return };
        let mut pre = None;
        if !stream && !one_shot {
            pre = Some(e.container_stats(&rec, None));
            std::thread::sleep(Duration::from_millis(500));
        }
        loop {
            let rec = e.get(&rec.id).unwrap_or_else(|_| rec.clone());
            let s = e.container_stats(&rec, pre.as_ref());
            let mut line = serde_json::to_vec(&s).expect("stats serialize");
            line.push(b'\n');
            if tx.blocking_send(Bytes::from(line)).is_err() || !stream {
                return;
            }
            pre = Some(s);
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    Ok(resp)
}

/// Docker's wait conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    NotRunning,
    NextExit,
    Removed,
}

/// `POST /containers/{id}/wait?condition=`: the headers at once (clients start the container
/// after them), the status when the condition holds; woken by the event feed.
pub async fn wait(app: &Arc<App>, id: &str, q: &Query) -> ApiResult<Resp> {
    let cond = match q.get("condition").unwrap_or("") {
        "" | "not-running" => Condition::NotRunning,
        "next-exit" => Condition::NextExit,
        "removed" => Condition::Removed,
        other => return Err(ApiError::bad(format!("invalid condition: {other:?}"))),
    };
    // Subscribed before the state is read: an exit in between is seen.
    let mut feed = app.events.subscribe();
    let what = id.to_string();
    let rec = app.blocking(move |e| Ok(e.get(&what)?)).await?;
    let (tx, resp) = http::stream(StatusCode::OK, "application/json");
    let app2 = app.clone();
    let busy = app.busy();
    tokio::spawn(async move {
        let _busy = busy;
        let done = |code: i32| {
            let mut b = serde_json::to_vec(&serde_json::json!({"StatusCode": code, "Error": null}))
                .expect("serializes");
            b.push(b'\n');
            Bytes::from(b)
        };
        if cond == Condition::NotRunning && !active(&rec) {
            let _ = tx.send(done(rec.state.exit_code)).await;
            return;
        }
        let mut last_exit = rec.state.exit_code;
        loop {
            let ev = tokio::select! {
                ev = feed.recv() => ev,
                _ = tx.closed() => return,
                // A monitor that died without its `die` event is caught by reconciling.
                _ = tokio::time::sleep(Duration::from_secs(2)) => Err(tokio::sync::broadcast::error::RecvError::Lagged(0)),
            };
            match ev {
                Ok(e) if e.actor.id == rec.id => match e.action.as_str() {
                    "die" => {
                        last_exit = e
                            .actor
                            .attributes
                            .get("exitCode")
                            .and_then(|c| c.parse().ok())
                            .unwrap_or(last_exit);
                        if cond != Condition::Removed {
                            let _ = tx.send(done(last_exit)).await;
                            return;
                        }
                    }
                    "destroy" => {
                        let _ = tx.send(done(last_exit)).await;
                        return;
                    }
                    _ => {}
                },
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let id = rec.id.clone();
                    let now = app2
                        .blocking(move |e| Ok(e.get(&id).ok()))
                        .await
                        .ok()
                        .flatten();
                    match (now, cond) {
                        (None, _) => {
                            let _ = tx.send(done(last_exit)).await;
                            return;
                        }
                        (Some(r), Condition::NotRunning) if !active(&r) => {
                            let _ = tx.send(done(r.state.exit_code)).await;
                            return;
                        }
                        (Some(r), Condition::NextExit)
                            if !active(&r) && r.state.finished_at > rec.state.finished_at =>
                        {
                            let _ = tx.send(done(r.state.exit_code)).await;
                            return;
                        }
                        (Some(r), _) => last_exit = r.state.exit_code,
                    }
                }
            }
        }
    });
    Ok(resp)
}
