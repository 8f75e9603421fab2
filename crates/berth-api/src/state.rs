//! What the service holds between requests, and nothing the engine keeps on disk: how to open
//! the engine, the live event feed (one follower of the store's journal, fanned out), exec
//! instances (Docker keeps these in its daemon's memory too), attach sessions waiting for their
//! container's start or open for a resize, and the keepers of containers it started (reaped so
//! no zombie stays while the service lives).

use crate::error::{ApiError, ApiResult};
use berth_engine::attach_client::InputWriter;
use berth_engine::events::Event;
use berth_engine::exec::ExecRequest;
use berth_engine::Engine;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, Notify};

/// How many exec instances are remembered (finished ones are forgotten first).
const MAX_EXECS: usize = 1024;

pub struct App {
    pub root: PathBuf,
    pub runroot: PathBuf,
    pub insecure: Vec<String>,
    pub events: broadcast::Sender<Arc<Event>>,
    pub execs: Mutex<HashMap<String, Arc<ExecInstance>>>,
    pub attaches: Mutex<HashMap<String, AttachSlot>>,
    pub keepers: Mutex<Vec<i32>>,
    pub activity: Activity,
    /// Uploads read on the blocking pool at once (`UPLOAD_SLOTS`): a client that sends its
    /// tarball slowly holds a worker, and this many of them leave the rest of the pool free.
    uploads: Arc<tokio::sync::Semaphore>,
}

/// Runs a response's producer on a thread of its own: a stream that lives as long as its client
/// (logs that follow, stats, an attach's or exec's copy) or goes at its pace (a tarball, a pull's
/// or build's progress). On the blocking pool, enough of them (`docker stats` opens one per
/// running container) would leave no worker for anything else. Resolves when it ends; a thread
/// that cannot be made ends at once, and its stream with it.
pub fn stream_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> tokio::sync::oneshot::Receiver<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("berth-stream".into())
        .spawn(move || {
            // The caller may have stopped waiting: nothing to tell then.
            let _ = tx.send(f());
        });
    if let Err(e) = spawned {
        eprintln!("berth serve: a stream's thread: {e}");
    }
    rx
}

/// How many request bodies (tarballs to load, import, extract or build from) are read at once;
/// more wait, holding no worker, until one ends. The blocking pool has 128.
const UPLOAD_SLOTS: usize = 32;

/// A container's attach sessions: clients waiting for it to start, and the input of the one
/// attached (for `resize`).
#[derive(Default)]
pub struct AttachSlot {
    pub waiting: Vec<Arc<Notify>>,
    pub input: Option<InputWriter>,
}

/// One exec instance: what it runs, and what became of it.
pub struct ExecInstance {
    pub id: String,
    pub container_id: String,
    pub request: ExecRequest,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub detach_keys: String,
    pub state: Mutex<ExecState>,
}

#[derive(Default)]
pub struct ExecState {
    pub started: bool,
    pub running: bool,
    pub exit_code: Option<i32>,
    pub pid: i32,
    /// The pty master while it runs with a terminal (for `resize`).
    pub master: Option<Arc<OwnedFd>>,
    /// The client's terminal size at create (`ConsoleSize`), applied at start.
    pub console: Option<(u16, u16)>,
    pub finished_seq: u64,
}

/// Open connections and sessions, for `--timeout` (the service exits after that long with none).
#[derive(Default)]
pub struct Activity {
    open: AtomicUsize,
    /// Connections and sessions ever opened: an idle period is one in which it did not change.
    opened: AtomicUsize,
    pub changed: Notify,
}

/// One open connection or session; dropped when it ends.
pub struct Busy(Arc<App>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.activity.open.fetch_sub(1, Ordering::SeqCst);
        self.0.activity.changed.notify_waiters();
    }
}

impl Activity {
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    pub fn opened(&self) -> usize {
        self.opened.load(Ordering::SeqCst)
    }
}

impl App {
    pub fn new(root: PathBuf, runroot: PathBuf, insecure: Vec<String>) -> Arc<App> {
        let (events, _) = broadcast::channel(1024);
        Arc::new(App {
            root,
            runroot,
            insecure,
            events,
            execs: Mutex::new(HashMap::new()),
            attaches: Mutex::new(HashMap::new()),
            keepers: Mutex::new(Vec::new()),
            activity: Activity::default(),
            uploads: Arc::new(tokio::sync::Semaphore::new(UPLOAD_SLOTS)),
        })
    }

    /// A reader of a request's body for the blocking pool, once an upload slot is free.
    pub async fn body_reader(
        &self,
        body: hyper::body::Incoming,
        limit: u64,
    ) -> ApiResult<crate::http::BodyReader> {
        let slot = self
            .uploads
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ApiError::Internal(format!("upload slots: {e}")))?;
        Ok(crate::http::BodyReader::spawn(body, limit, slot))
    }

    /// Marks the service busy until the guard drops.
    pub fn busy(self: &Arc<App>) -> Busy {
        self.activity.open.fetch_add(1, Ordering::SeqCst);
        self.activity.opened.fetch_add(1, Ordering::SeqCst);
        self.activity.changed.notify_waiters();
        Busy(self.clone())
    }

    /// The engine over the service's store, opened for one request (as the CLI opens it for
    /// one command: nothing of one request's engine leaks into another's).
    pub fn engine(&self) -> ApiResult<Engine> {
        let mut e = Engine::open(&self.root, &self.runroot)?;
        e.insecure = self.insecure.clone();
        Ok(e)
    }

    /// Runs `f` with an engine on the blocking pool (engine calls read files, take locks and
    /// fork; they never run on the reactor).
    pub async fn blocking<T: Send + 'static>(
        self: &Arc<App>,
        f: impl FnOnce(&Engine) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let app = self.clone();
        tokio::task::spawn_blocking(move || f(&app.engine()?))
            .await
            .map_err(|e| ApiError::Internal(format!("worker failed: {e}")))?
    }

    /// Remembers a keeper this service forked, to reap it when it ends.
    pub fn adopt_keeper(&self, pid: i32) {
        if pid > 0 {
            if let Ok(mut k) = self.keepers.lock() {
                k.push(pid);
            }
        }
    }

    /// Reaps the keepers that ended.
    pub fn reap_keepers(&self) {
        let Ok(mut k) = self.keepers.lock() else {
            return;
        };
        k.retain(|&pid| {
            // SAFETY: a non-blocking wait for a child of ours.
            let r = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
            r == 0
        });
    }

    /// A client waiting to attach to `id` once it starts.
    pub fn wait_for_start(&self, id: &str) -> Arc<Notify> {
        let n = Arc::new(Notify::new());
        if let Ok(mut a) = self.attaches.lock() {
            a.entry(id.to_string()).or_default().waiting.push(n.clone());
        }
        n
    }

    /// Whether a client waits for `id` to start.
    pub fn has_waiting_attach(&self, id: &str) -> bool {
        self.attaches
            .lock()
            .is_ok_and(|a| a.get(id).is_some_and(|s| !s.waiting.is_empty()))
    }

    /// Wakes the clients waiting for `id` to start.
    pub fn started(&self, id: &str) {
        if let Ok(mut a) = self.attaches.lock() {
            if let Some(s) = a.get_mut(id) {
                for n in s.waiting.drain(..) {
                    n.notify_one();
                }
            }
        }
    }

    /// Forgets a waiting client (it left, or attached).
    pub fn stop_waiting(&self, id: &str, n: &Arc<Notify>) {
        if let Ok(mut a) = self.attaches.lock() {
            if let Some(s) = a.get_mut(id) {
                s.waiting.retain(|w| !Arc::ptr_eq(w, n));
                if s.waiting.is_empty() && s.input.is_none() {
                    a.remove(id);
                }
            }
        }
    }

    /// The attached session's input of `id` (set while one is attached).
    pub fn set_attached_input(&self, id: &str, input: Option<InputWriter>) {
        if let Ok(mut a) = self.attaches.lock() {
            let slot = a.entry(id.to_string()).or_default();
            slot.input = input;
            if slot.input.is_none() && slot.waiting.is_empty() {
                a.remove(id);
            }
        }
    }

    pub fn attached_input(&self, id: &str) -> Option<InputWriter> {
        let a = self.attaches.lock().ok()?;
        a.get(id)?.input.as_ref()?.try_clone().ok()
    }

    pub fn exec(&self, id: &str) -> ApiResult<Arc<ExecInstance>> {
        self.execs
            .lock()
            .ok()
            .and_then(|m| m.get(id).cloned())
            .ok_or_else(|| ApiError::NotFound(format!("No such exec instance: {id}")))
    }

    /// Keeps a new exec instance, forgetting the oldest finished ones past `MAX_EXECS`.
    pub fn add_exec(&self, e: Arc<ExecInstance>) {
        let Ok(mut m) = self.execs.lock() else { return };
        if m.len() >= MAX_EXECS {
            let mut done: Vec<(u64, String)> = m
                .values()
                .filter_map(|x| {
                    let s = x.state.lock().ok()?;
                    (!s.running).then(|| (s.finished_seq, x.id.clone()))
                })
                .collect();
            done.sort();
            for (_, id) in done.into_iter().take(m.len() + 1 - MAX_EXECS) {
                m.remove(&id);
            }
        }
        m.insert(e.id.clone(), e);
    }
}
