//! Exec instances: made by `POST /containers/{id}/exec` (kept in the service's memory, as
//! Docker's daemon keeps them), run by `POST /exec/{id}/start` through the engine's exec helper
//! (hijacked with the client's streams, or detached), resized, inspected with their exit code.

use crate::docker::{ExecCreate, ExecStart};
use crate::error::{ApiError, ApiResult};
use crate::hijack::{self, Chunk, Input};
use crate::http::{self, Query, Resp};
use crate::router::Req;
use crate::state::{App, ExecInstance, ExecState};
use berth_engine::events::Event;
use berth_engine::exec::ExecRequest;
use berth_engine::exec_spawn::{self, ExecChild};
use hyper::StatusCode;
use serde_json::json;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

static FINISHED: AtomicU64 = AtomicU64::new(0);

pub async fn create(app: &Arc<App>, id: &str, req: Req) -> ApiResult<Resp> {
    let body = http::read_body(req.into_body(), http::MAX_JSON_BODY).await?;
    let c: ExecCreate = http::parse_json(&body)?;
    let command = c.cmd.map(|w| w.into_vec()).unwrap_or_default();
    if command.is_empty() {
        return Err(ApiError::bad("No exec command specified"));
    }
    if c.privileged == Some(true) {
        return Err(ApiError::bad(
            "exec --privileged is not supported: the container's capability set applies",
        ));
    }
    let tty = c.tty.unwrap_or(false);
    let attach_stdin = c.attach_stdin.unwrap_or(false);
    let request = ExecRequest {
        command,
        // As given: a bare name stays bare, never resolved against the service's environment.
        env: c.env.unwrap_or_default(),
        workdir: c.working_dir.filter(|w| !w.is_empty()),
        user: c.user.filter(|u| !u.is_empty()),
        tty,
        interactive: attach_stdin,
        detach: false,
        privileged: false,
        // The service ends a session on the detach keys itself.
        detach_keys: None,
    };
    let what = id.to_string();
    let shown = request.command.join(" ");
    let container_id = app
        .blocking(move |e| {
            let r = e.get(&what)?;
            runnable(&r)?;
            e.emit(Event::container(&r, &format!("exec_create: {shown}")));
            Ok(r.id)
        })
        .await?;
    let exec_id = berth_engine::names::new_id();
    let size = c.console_size.filter(|s| s.len() == 2);
    app.add_exec(Arc::new(ExecInstance {
        id: exec_id.clone(),
        container_id,
        request,
        attach_stdin,
        attach_stdout: c.attach_stdout.unwrap_or(true),
        attach_stderr: c.attach_stderr.unwrap_or(true),
        detach_keys: c.detach_keys.unwrap_or_default(),
        state: Mutex::new(ExecState {
            console: size.map(|s| (s[0], s[1])),
            ..ExecState::default()
        }),
    }));
    Ok(http::json(StatusCode::CREATED, &json!({"Id": exec_id})))
}

/// Docker's 409 for an exec into a container that is not running.
fn runnable(r: &berth_engine::record::Record) -> ApiResult<()> {
    match r.state.status.as_str() {
        "running" => Ok(()),
        "paused" => Err(ApiError::Conflict(format!(
            "Container {} is paused, unpause the container before exec",
            r.id
        ))),
        _ => Err(ApiError::Conflict(format!(
            "Container {} is not running",
            r.id
        ))),
    }
}

/// Marks the instance started (once only).
fn claim(x: &ExecInstance) -> ApiResult<()> {
    let mut s = x
        .state
        .lock()
        .map_err(|_| ApiError::Internal("exec state".into()))?;
    if s.started {
        return Err(ApiError::Conflict(format!(
            "Exec instance {} has already been started",
            x.id
        )));
    }
    s.started = true;
    s.running = true;
    Ok(())
}

pub async fn start(app: &Arc<App>, id: &str, req: Req) -> ApiResult<Resp> {
    let x = app.exec(id)?;
    let (parts, body) = req.into_parts();
    let bytes = http::read_body(body, http::MAX_JSON_BODY).await?;
    let s: ExecStart = http::parse_json(&bytes)?;
    let upgrade = hijack::take_upgrade(&mut hyper::Request::from_parts(parts, ()));
    claim(&x)?;
    let detach = s.detach.unwrap_or(false);
    let keys = hijack::detach_keys(
        Some(&x.detach_keys)
            .filter(|k| !k.is_empty())
            .map(String::as_str),
    )?;
    let xr = x.clone();
    let child = app
        .blocking(move |e| {
            // The container may have stopped since the create: Docker's 409, not a helper
            // spawned into nothing.
            runnable(&e.get(&xr.container_id)?)?;
            Ok(e.spawn_exec(&xr.container_id, &xr.request)?)
        })
        .await;
    let mut child = match child {
        Ok(c) => c,
        Err(err) => {
            finish(&x, 126);
            return Err(err);
        }
    };
    let master = child.master.take().map(Arc::new);
    if let Ok(mut st) = x.state.lock() {
        st.pid = child.pid;
        st.master = master.clone();
        if let (Some(m), Some((h, w))) = (&master, st.console) {
            // A size the pty refuses leaves it at its old size; the exec runs on.
            let _ = exec_spawn::resize_terminal(m, h, w);
        }
    }
    if let (Some(m), Some(size)) = (&master, s.console_size.filter(|s| s.len() == 2)) {
        // As above: a refused size is not the exec's failure.
        let _ = exec_spawn::resize_terminal(m, size[0], size[1]);
    }
    let (out_tx, out_rx) = mpsc::channel::<Chunk>(64);
    let (in_tx, in_rx) = mpsc::channel::<Input>(64);
    let app2 = app.clone();
    let x2 = x.clone();
    crate::state::stream_thread(move || {
        run_child(&app2, &x2, child, master, out_tx, in_rx, detach)
    });
    if detach {
        return Ok(http::empty(StatusCode::OK));
    }
    // Docker frames the stream by the start's `Tty`, not the create's: a client that starts a
    // terminal exec with `Tty: false` (docker-py's default) reads multiplexed frames.
    Ok(hijack::session(
        upgrade,
        s.tty.unwrap_or(false),
        out_rx,
        x.attach_stdin.then_some(in_tx),
        keys,
        app.busy(),
    ))
}

/// Copies the helper's output and input until it ends, then records its exit code (before the
/// output channel closes: a client reads the code right after the stream ends).
fn run_child(
    app: &Arc<App>,
    x: &ExecInstance,
    child: ExecChild,
    master: Option<Arc<OwnedFd>>,
    out_tx: mpsc::Sender<Chunk>,
    mut in_rx: mpsc::Receiver<Input>,
    detach: bool,
) {
    let ExecChild {
        pid,
        stdin,
        stdout,
        stderr,
        ..
    } = child;
    let (want_out, want_err) = (x.attach_stdout && !detach, x.attach_stderr && !detach);
    let mut readers = Vec::new();
    let sources: Vec<(OwnedFd, bool)> = match &master {
        Some(m) => m
            .try_clone()
            .map(|fd| vec![(fd, false)])
            .unwrap_or_default(),
        None => stdout
            .into_iter()
            .map(|f| (f, false))
            .chain(stderr.into_iter().map(|f| (f, true)))
            .collect(),
    };
    for (fd, is_err) in sources {
        let tx = out_tx.clone();
        let keep = if is_err { want_err } else { want_out };
        readers.push(std::thread::spawn(move || copy_out(fd, is_err, keep, tx)));
    }
    drop(out_tx);
    let input: Option<std::fs::File> = match (&master, stdin) {
        (Some(m), _) => m.try_clone().ok().map(std::fs::File::from),
        (None, Some(w)) => Some(std::fs::File::from(w)),
        (None, None) => None,
    };
    let tty = master.is_some();
    let writer = std::thread::spawn(move || {
        let mut input = input;
        while let Some(i) = in_rx.blocking_recv() {
            let written = match (i, input.as_mut()) {
                (Input::Data(d), Some(f)) => f.write_all(&d),
                // Without a terminal, the end of the client's stdin closes the process's.
                (Input::End, _) if !tty => {
                    input = None;
                    Ok(())
                }
                _ => Ok(()),
            };
            if written.is_err() {
                return;
            }
        }
    });
    let code = exec_spawn::wait_exec(pid);
    // The helper is gone: what it wrote is drained, then the stream ends.
    let senders: Vec<_> = readers.into_iter().map(|r| r.join()).collect();
    // The code first: the client inspects the instance as soon as its stream ends, which is
    // when the last sender goes.
    finish(x, code);
    drop(senders);
    drop(writer);
    if let Ok(e) = app.engine() {
        if let Ok(r) = e.get(&x.container_id) {
            e.emit(
                Event::container(&r, "exec_die")
                    .attr("execID", &x.id)
                    .attr("exitCode", code),
            );
        }
    }
}

fn copy_out(fd: OwnedFd, is_err: bool, keep: bool, tx: mpsc::Sender<Chunk>) -> mpsc::Sender<Chunk> {
    let mut f = std::fs::File::from(fd);
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match f.read(&mut buf) {
            // EIO: a pty whose slave side is all closed.
            Ok(0) | Err(_) => return tx,
            Ok(n) if keep => {
                let c = if is_err {
                    Chunk::Stderr(buf[..n].to_vec())
                } else {
                    Chunk::Stdout(buf[..n].to_vec())
                };
                // A client that left only stops the copying to it; the pipe is still drained.
                let _ = tx.blocking_send(c);
            }
            Ok(_) => {}
        }
    }
}

fn finish(x: &ExecInstance, code: i32) {
    if let Ok(mut s) = x.state.lock() {
        s.running = false;
        s.exit_code = Some(code);
        s.master = None;
        s.finished_seq = FINISHED.fetch_add(1, Ordering::Relaxed);
    }
}

pub async fn resize(app: &Arc<App>, id: &str, q: &Query) -> ApiResult<Resp> {
    let x = app.exec(id)?;
    let h: u16 = q.number("h")?.unwrap_or(0);
    let w: u16 = q.number("w")?.unwrap_or(0);
    let master = x.state.lock().ok().and_then(|s| s.master.clone());
    match master {
        Some(m) => exec_spawn::resize_terminal(&m, h, w)
            .map_err(|e| ApiError::Internal(format!("resize: {e}")))?,
        None if x.request.tty => {
            return Err(ApiError::Conflict(format!(
                "Exec instance {} is not running",
                x.id
            )))
        }
        None => {}
    }
    Ok(http::empty(StatusCode::OK))
}

pub async fn inspect(app: &Arc<App>, id: &str) -> ApiResult<Resp> {
    let x = app.exec(id)?;
    let s = x
        .state
        .lock()
        .map_err(|_| ApiError::Internal("exec state".into()))?;
    let r = &x.request;
    let doc = json!({
        "ID": x.id,
        "Running": s.running,
        "ExitCode": s.exit_code,
        "ProcessConfig": {
            "tty": r.tty,
            "entrypoint": r.command.first(),
            "arguments": r.command.get(1..).unwrap_or(&[]),
            "privileged": false,
            "user": r.user.clone().unwrap_or_default(),
        },
        "OpenStdin": x.attach_stdin,
        "OpenStderr": x.attach_stderr,
        "OpenStdout": x.attach_stdout,
        "CanRemove": false,
        "ContainerID": x.container_id,
        "DetachKeys": x.detach_keys,
        "Pid": s.pid,
    });
    Ok(http::json(StatusCode::OK, &doc))
}
