//! DNS for user networks: one resolver process per network, listening on the network's gateway,
//! started when the first container joins and stopped when the last leaves. This module owns the
//! network's `dns/` directory (the table, the server's config, its pid file) and the process's
//! start and stop; the process itself is `server`. It never runs the resolver inside the caller's
//! process: the engine's binary does, as a hidden subcommand calling [`serve`].

pub mod server;
pub mod table;

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::liveness;
use crate::state::{read_json, write_atomic, write_json};

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("dns for network {network:?}: {path}: {source}")]
    State {
        network: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("dns for network {network:?}: starting {program:?}: {source}")]
    Spawn {
        network: String,
        program: OsString,
        #[source]
        source: io::Error,
    },
    #[error("dns for network {network:?}: resolver did not start: {detail}")]
    NotReady { network: String, detail: String },
    #[error("dns server {config}: {source}")]
    Serve {
        config: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// How to start the resolver: a program and the arguments before the config path (the engine
/// passes its own binary and `__dns`).
#[derive(Debug, Clone)]
pub struct DnsCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

/// What a resolver process is told.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerConfig {
    pub listen: Ipv4Addr,
    pub port: u16,
    pub upstreams: Vec<SocketAddr>,
    /// Relay names that are not the network's (false on internal networks).
    pub forward: bool,
    pub table: PathBuf,
}

/// The process's main: reads the config, binds, reports `ready <pid>` (or `error: …`) on stdout,
/// and leaves the caller: it forks, the parent exits and the child serves in a new session until
/// the table is gone. Returns only on an error before the fork.
pub fn serve(config: &Path) -> Result<(), DnsError> {
    let err = |source| DnsError::Serve {
        config: config.to_path_buf(),
        source,
    };
    let cfg: ServerConfig = read_json(config)
        .map_err(err)?
        .ok_or_else(|| err(io::ErrorKind::NotFound.into()))?;
    let (udp, tcp) = match server::bind(&cfg) {
        Ok(s) => s,
        Err(e) => {
            println!("error: bind {}:{}: {e}", cfg.listen, cfg.port);
            return Err(err(e));
        }
    };
    // SAFETY: the process is single-threaded here (nothing has spawned a thread), so the child
    // may run any code after fork.
    match unsafe { libc::fork() } {
        -1 => Err(err(io::Error::last_os_error())),
        0 => {
            // SAFETY: plain syscalls on the child's own descriptors and signal state; setsid
            // leaves the caller's session and process group. A starter that blocked or ignored
            // signals (a foreground `berth run` does) must not leave the resolver deaf to stop's
            // SIGTERM: the mask is emptied and the usual signals get their default action.
            unsafe {
                let mut none: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut none);
                libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
                for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT, libc::SIGHUP] {
                    libc::signal(sig, libc::SIG_DFL);
                }
                libc::setsid();
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
                if null >= 0 {
                    for fd in 0..3 {
                        libc::dup2(null, fd);
                    }
                    libc::close(null);
                }
            }
            let code = match server::run(&cfg, udp, tcp) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            std::process::exit(code)
        }
        child => {
            let mut out = io::stdout().lock();
            let _ = writeln!(out, "ready {child}");
            let _ = out.flush();
            std::process::exit(0)
        }
    }
}

/// The host's resolvers from a resolv.conf, as upstreams (loopback ones included: the resolver
/// runs in the host's namespace, where they answer).
pub fn upstreams(resolv_conf: &Path) -> Vec<SocketAddr> {
    crate::files::nameservers(&fs::read_to_string(resolv_conf).unwrap_or_default())
        .into_iter()
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// A network's resolver files: `<run>/<net>/dns/`.
pub struct Resolver<'a> {
    pub network: &'a str,
    pub dir: PathBuf,
}

impl Resolver<'_> {
    pub fn table_path(&self) -> PathBuf {
        self.dir.join("hosts")
    }
    fn pid_path(&self) -> PathBuf {
        self.dir.join("pid")
    }

    fn state_err(&self, path: PathBuf) -> impl FnOnce(io::Error) -> DnsError + '_ {
        move |source| DnsError::State {
            network: self.network.to_string(),
            path,
            source,
        }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// The running server's pid, if any: the one its pid file names, or — when a starter was
    /// killed between starting it and recording it — the one whose command line names this
    /// network's config (then recorded, so the next call reads the file again).
    pub fn running(&self) -> Option<i32> {
        if let Some(pid) = self.recorded() {
            return Some(pid);
        }
        if !self.config_path().exists() {
            return None;
        }
        let pid = find_by_argument(self.config_path().as_os_str())?;
        let record = format!("{pid} {}\n", liveness::start_time(pid));
        let _ = write_atomic(&self.pid_path(), record.as_bytes());
        Some(pid)
    }

    fn recorded(&self) -> Option<i32> {
        let s = fs::read_to_string(self.pid_path()).ok()?;
        let mut it = s.split_whitespace();
        let (pid, start): (i32, u64) = (it.next()?.parse().ok()?, it.next()?.parse().ok()?);
        (start != 0 && liveness::alive(pid, start)).then_some(pid)
    }

    /// Starts the server unless one runs. The table must exist (the server exits without it).
    pub fn ensure(&self, cmd: &DnsCommand, cfg: &ServerConfig) -> Result<i32, DnsError> {
        if let Some(pid) = self.running() {
            return Ok(pid);
        }
        let config = self.config_path();
        write_json(&config, cfg).map_err(self.state_err(config.clone()))?;
        let spawn_err = |source| DnsError::Spawn {
            network: self.network.to_string(),
            program: cmd.program.clone().into_os_string(),
            source,
        };
        let mut child = Command::new(&cmd.program)
            .args(&cmd.args)
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(spawn_err)?;
        let mut out = child.stdout.take().expect("piped stdout");
        let text = read_bounded(&mut out, Duration::from_secs(3));
        if text.is_none() {
            let _ = child.kill();
        }
        let _ = child.wait();
        let text = text.unwrap_or_else(|| "no answer within 3 s".into());
        let pid = text
            .trim()
            .strip_prefix("ready ")
            .and_then(|p| p.parse::<i32>().ok())
            .ok_or_else(|| DnsError::NotReady {
                network: self.network.to_string(),
                detail: text.trim().to_string(),
            })?;
        let record = format!("{pid} {}\n", liveness::start_time(pid));
        write_atomic(&self.pid_path(), record.as_bytes())
            .map_err(self.state_err(self.pid_path()))?;
        Ok(pid)
    }

    /// Stops the server (if it runs) and removes its files.
    pub fn stop(&self) {
        if let Some(pid) = self.running() {
            // SAFETY: a signal to the process the pid file names, checked alive with its start
            // time just above.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let start = liveness::start_time(pid);
            let until = Instant::now() + Duration::from_millis(500);
            while liveness::alive(pid, start) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A live process (not a zombie) one of whose arguments is exactly `arg`.
fn find_by_argument(arg: &std::ffi::OsStr) -> Option<i32> {
    use std::os::unix::ffi::OsStrExt;
    let me = std::process::id() as i32;
    for e in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if cmdline.split(|b| *b == 0).any(|a| a == arg.as_bytes())
            && liveness::alive(pid, liveness::start_time(pid))
        {
            return Some(pid);
        }
    }
    None
}

/// Reads a pipe to its end, giving up after `limit`.
fn read_bounded(pipe: &mut std::process::ChildStdout, limit: Duration) -> Option<String> {
    let deadline = Instant::now() + limit;
    let mut text = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let mut pfd = libc::pollfd {
            fd: pipe.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32 + 1) };
        if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return None;
        }
        if n > 0 {
            match pipe.read(&mut buf) {
                Ok(0) => return Some(String::from_utf8_lossy(&text).into_owned()),
                Ok(k) => text.extend_from_slice(&buf[..k]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
    }
}

/// The server config for a network's gateway.
pub fn server_config(
    gateway: Ipv4Addr,
    forward: bool,
    upstreams: Vec<SocketAddr>,
    table: PathBuf,
) -> ServerConfig {
    ServerConfig {
        listen: gateway,
        port: 53,
        upstreams: upstreams
            .into_iter()
            .filter(|u| u.ip() != IpAddr::V4(gateway))
            .collect(),
        forward,
        table,
    }
}
