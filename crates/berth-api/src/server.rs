//! The service: its listeners (a unix socket made 0660 root:GROUP, sockets handed over by
//! systemd, or TCP with TLS and client certificates, never plain TCP), one hyper HTTP/1.1
//! connection per client with bounded headers and a header timeout, the live event feed and
//! the keepers' reaper, and the end: SIGTERM/SIGINT, or `--timeout` without any connection.
//! Containers never depend on it: stopping it stops none.

use crate::state::App;
use crate::tls::TlsFiles;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UnixListener};

/// The default socket (not under the runroot, which is root's alone: the socket's group must
/// reach it).
pub const DEFAULT_HOST: &str = "unix:///run/berth.sock";
/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// The most bytes of request line and headers.
const MAX_HEADERS: usize = 64 * 1024;
/// How many connections are served at once (more wait to be accepted).
const MAX_CONNECTIONS: usize = 1024;

pub struct ServeOptions {
    pub root: PathBuf,
    pub runroot: PathBuf,
    pub insecure: Vec<String>,
    /// `unix:///path`, `tcp://host:port`, or `fd://` (systemd's sockets).
    pub hosts: Vec<String>,
    /// The socket's group; None: `berth` if it exists, else root.
    pub group: Option<String>,
    /// Exit after this long without a connection.
    pub timeout: Option<Duration>,
    pub tls: Option<TlsFiles>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Setup(String),
    /// The store or runroot cannot be opened (one that is not berth's is refused).
    #[error(transparent)]
    Store(#[from] berth_engine::EngineError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
    let what = what.into();
    move |source| ServeError::Io { what, source }
}

/// A bound listener, before the runtime exists.
enum Bound {
    Unix(std::os::unix::net::UnixListener, String),
    Tcp(std::net::TcpListener, Arc<rustls::ServerConfig>),
}

/// Serves until a signal or the idle timeout; Err when a listener cannot be made.
pub fn serve(o: ServeOptions) -> Result<(), ServeError> {
    // The store first, as any command opens it: it is checked, made and marked berth's before
    // the event journal's directory is made in it, and a refused one leaves no socket behind.
    let engine = berth_engine::Engine::open(&o.root, &o.runroot)?;
    let listeners = bind_all(&o)?;
    // Set before any thread exists: the monitors this service forks must not take the sockets.
    for k in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(k);
    }
    // A client that goes away mid-response is an EPIPE for that connection, never the end of
    // the service (berth's main restores SIGPIPE's default for the CLI's pipes). Containers get
    // the default back from the runtime.
    // SAFETY: changing a signal's disposition before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // The keepers of the containers this service starts are forked from a spawner made now,
    // before any thread (without it each start execs its keeper: slower, nothing else lost).
    if let Err(e) = berth_engine::monitor::start_spawner(&engine) {
        eprintln!("berth serve: {e} (each start execs its keeper)");
    }
    drop(engine);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(128)
        .thread_keep_alive(Duration::from_secs(5))
        .enable_all()
        .build()
        .map_err(io("tokio runtime"))?;
    let app = App::new(o.root.clone(), o.runroot.clone(), o.insecure.clone());
    crate::system::start_event_feed(&app).map_err(io("event journal"))?;
    rt.block_on(run(app, listeners, o.timeout));
    Ok(())
}

fn bind_all(o: &ServeOptions) -> Result<Vec<Bound>, ServeError> {
    let activated = systemd_fds();
    if !activated.is_empty() {
        return activated.into_iter().map(|fd| adopt(fd, o)).collect();
    }
    let hosts = if o.hosts.is_empty() {
        vec![DEFAULT_HOST.to_string()]
    } else {
        o.hosts.clone()
    };
    hosts.iter().map(|h| bind(h, o)).collect()
}

/// Sockets passed by systemd socket activation (LISTEN_PID is us, LISTEN_FDS of them from fd 3).
fn systemd_fds() -> Vec<RawFd> {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let n = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok())
        .unwrap_or(0);
    if !ours {
        return Vec::new();
    }
    (3..3 + n.max(0)).collect()
}

/// A socket systemd handed over: a unix one is served as it is (systemd set its mode and
/// group); a TCP one needs TLS as any other.
fn adopt(fd: RawFd, o: &ServeOptions) -> Result<Bound, ServeError> {
    // SAFETY: setting FD_CLOEXEC on an fd systemd passed to us.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: a zeroed sockaddr_storage and its length for getsockname.
    let family = unsafe {
        let mut ss: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if libc::getsockname(
            fd,
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        ) != 0
        {
            return Err(ServeError::Setup(format!(
                "LISTEN_FDS: fd {fd} is not a socket"
            )));
        }
        ss.ss_family as i32
    };
    if family == libc::AF_UNIX {
        // SAFETY: a listening unix socket systemd gave us alone.
        let l = unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd) };
        return Ok(Bound::Unix(l, format!("fd://{fd}")));
    }
    let tls = tls_config(o, &format!("fd://{fd}"))?;
    // SAFETY: a listening TCP socket systemd gave us alone.
    Ok(Bound::Tcp(
        unsafe { std::net::TcpListener::from_raw_fd(fd) },
        tls,
    ))
}

fn tls_config(o: &ServeOptions, host: &str) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    let files = o.tls.as_ref().ok_or_else(|| {
        ServeError::Setup(format!(
            "{host}: TCP is served only with --tlsverify, --tlscacert, --tlscert and --tlskey (the API is root-equivalent)"
        ))
    })?;
    crate::tls::server_config(files).map_err(ServeError::Setup)
}

fn bind(host: &str, o: &ServeOptions) -> Result<Bound, ServeError> {
    if let Some(path) = host.strip_prefix("unix://") {
        return bind_unix(PathBuf::from(path), o.group.as_deref())
            .map(|l| Bound::Unix(l, host.into()));
    }
    if let Some(addr) = host.strip_prefix("tcp://") {
        let tls = tls_config(o, host)?;
        let addr: SocketAddr = addr
            .parse()
            .map_err(|e| ServeError::Setup(format!("{host}: {e}")))?;
        let l = std::net::TcpListener::bind(addr).map_err(io(host))?;
        return Ok(Bound::Tcp(l, tls));
    }
    Err(ServeError::Setup(format!(
        "{host}: unsupported host (unix:///PATH or tcp://ADDR:PORT)"
    )))
}

/// Binds the unix socket (a stale one nobody answers on is replaced; a live one is an error),
/// mode 0660, owned by root and the group.
fn bind_unix(
    path: PathBuf,
    group: Option<&str>,
) -> Result<std::os::unix::net::UnixListener, ServeError> {
    let shown = path.display().to_string();
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            return Err(ServeError::Setup(format!(
                "{shown}: another service is listening on it"
            )));
        }
        std::fs::remove_file(&path).map_err(io(&shown))?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(&shown))?;
    }
    let gid = socket_group(group)?;
    let l = std::os::unix::net::UnixListener::bind(&path).map_err(io(&shown))?;
    // Until these two calls the socket has the umask's mode (0755 for root: no one else may
    // connect), never a wider one.
    std::os::unix::fs::chown(&path, Some(0), Some(gid)).map_err(io(&shown))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660)).map_err(io(&shown))?;
    Ok(l)
}

/// The gid of `--group`, or of `berth` if that group exists, else root's.
fn socket_group(group: Option<&str>) -> Result<u32, ServeError> {
    let lookup = |name: &str| {
        let c = std::ffi::CString::new(name).ok()?;
        // SAFETY: getgrnam with a NUL-terminated name; the result is read at once, before
        // another call could reuse its static storage (setup is single-threaded).
        let g = unsafe { libc::getgrnam(c.as_ptr()) };
        // SAFETY: a non-null group entry from getgrnam.
        (!g.is_null()).then(|| unsafe { (*g).gr_gid })
    };
    match group {
        Some(g) => g
            .parse::<u32>()
            .ok()
            .or_else(|| lookup(g))
            .ok_or_else(|| ServeError::Setup(format!("--group {g}: no such group"))),
        None => Ok(lookup("berth").unwrap_or(0)),
    }
}

async fn run(app: Arc<App>, listeners: Vec<Bound>, timeout: Option<Duration>) {
    let limit = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    for b in listeners {
        match b {
            Bound::Unix(l, name) => {
                let _ = l.set_nonblocking(true);
                match UnixListener::from_std(l) {
                    Ok(l) => {
                        eprintln!("berth serve: listening on {name}");
                        tokio::spawn(accept_unix(app.clone(), l, limit.clone()));
                    }
                    Err(e) => eprintln!("berth serve: {name}: {e}"),
                }
            }
            Bound::Tcp(l, tls) => {
                let _ = l.set_nonblocking(true);
                let shown = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
                match TcpListener::from_std(l) {
                    Ok(l) => {
                        eprintln!("berth serve: listening on tcp://{shown} (TLS, client certificates required)");
                        tokio::spawn(accept_tcp(app.clone(), l, tls, limit.clone()));
                    }
                    Err(e) => eprintln!("berth serve: tcp://{shown}: {e}"),
                }
            }
        }
    }
    let reaper = app.clone();
    tokio::spawn(async move {
        let mut idle = IdleShedder::default();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            reaper.reap_keepers();
            if idle.due(&reaper) {
                // Reads /proc/self/smaps and advises each mapping: off the reactor. A task that
                // failed only leaves the pages resident.
                let _ = tokio::task::spawn_blocking(berth_engine::monitor::drop_code_pages).await;
            }
        }
    });
    tokio::select! {
        _ = shutdown_signal() => eprintln!("berth serve: stopping (signal); containers keep running"),
        _ = idle_timeout(&app, timeout) => eprintln!("berth serve: stopping (no connection for the --timeout)"),
    }
}

/// An idle service holds only what it needs: after `IDLE_SHED` without any connection, the code
/// pages its start-up and requests faulted in are dropped once (they stay in the page cache,
/// shared with the monitors that run the same binary; the next request faults back what it
/// touches). Idle RSS is most of the service's life.
#[derive(Default)]
struct IdleShedder {
    /// The activity count last seen, since when it has not changed, and whether this idle
    /// period was shed already.
    seen: usize,
    since: Option<std::time::Instant>,
    shed: bool,
}

const IDLE_SHED: Duration = Duration::from_secs(3);

impl IdleShedder {
    fn due(&mut self, app: &App) -> bool {
        let now = app.activity.opened();
        if now != self.seen || app.activity.open() > 0 {
            (self.seen, self.since, self.shed) = (now, Some(std::time::Instant::now()), false);
            return false;
        }
        let since = *self.since.get_or_insert_with(std::time::Instant::now);
        if self.shed || since.elapsed() < IDLE_SHED {
            return false;
        }
        self.shed = true;
        true
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! { _ = t.recv() => {}, _ = i.recv() => {} }
        }
        _ => std::future::pending().await,
    }
}

/// Resolves once the service had no connection for `timeout` (never without one).
async fn idle_timeout(app: &Arc<App>, timeout: Option<Duration>) {
    let Some(t) = timeout else {
        return std::future::pending().await;
    };
    loop {
        let changed = app.activity.changed.notified();
        if app.activity.open() > 0 {
            changed.await;
            continue;
        }
        tokio::select! {
            _ = changed => continue,
            _ = tokio::time::sleep(t) => if app.activity.open() == 0 { return },
        }
    }
}

async fn accept_unix(app: Arc<App>, l: UnixListener, limit: Arc<tokio::sync::Semaphore>) {
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        match l.accept().await {
            Ok((s, _)) => {
                let app = app.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    serve_connection(app, s).await;
                });
            }
            Err(e) => {
                eprintln!("berth serve: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn accept_tcp(
    app: Arc<App>,
    l: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    limit: Arc<tokio::sync::Semaphore>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let Ok((s, peer)) = l.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let (app, acceptor) = (app.clone(), acceptor.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(s)).await {
                Ok(Ok(tls)) => serve_connection(app, tls).await,
                Ok(Err(e)) => eprintln!("berth serve: TLS from {peer}: {e}"),
                Err(_) => eprintln!("berth serve: TLS from {peer}: handshake timed out"),
            }
        });
    }
}

/// One client connection: HTTP/1.1 with upgrades (the attach and exec hijack).
async fn serve_connection<S>(app: Arc<App>, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let _busy = app.busy();
    let service = hyper::service::service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, std::convert::Infallible>(crate::router::handle(app, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEADERS)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    // A client that goes away mid-request is no error of the service's.
    let _ = conn.await;
}
