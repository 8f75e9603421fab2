//! Rootless networking: a container of an ordinary user gets a network namespace of its own,
//! connected by `pasta` (Debian's passt, podman 5's default) — a tap device in the namespace whose
//! traffic pasta carries through sockets of the user's own, `-p` ports forwarded by pasta's
//! `-t/-u`. It owns pasta's command line, the ports checked free before the start, what the
//! gateway address reaches, and pasta's end with the container; it never touches the host's
//! routing, bridges or firewall.

use berth_net::{PortMapping, PortSpec, Proto};
use serde::{Deserialize, Serialize};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// pasta's binary (Debian's `passt` package).
const PASTA: &str = "pasta";
/// The address in the container that pasta's DNS forwarder answers on (podman's choice): the
/// container's resolv.conf names it, and pasta sends the queries to the host's resolver.
pub const DNS_FORWARDER: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// The container's pasta: its pid and start time, written once pasta has configured the network.
const PID_FILE: &str = "pasta.pid";
/// What the container's pasta was started with (`Connection`). The name is older than the
/// gateway the file now also records; kept, so containers already running keep their ports.
const CONNECTION_FILE: &str = "pasta-ports.json";

#[derive(Debug, thiserror::Error)]
pub enum UserModeError {
    #[error("rootless networking: pasta (Debian's passt package) is not installed; install it, or run with --network none")]
    NoPasta,
    #[error("rootless networking: /dev/net/tun: {0} (pasta needs it; most systems make it mode 0666: as root, chmod 0666 /dev/net/tun; or run with --network none)")]
    Tun(#[source] io::Error),
    #[error("Bind for {ip}:{port} failed: port is already allocated")]
    PortTaken { ip: Ipv4Addr, port: u16 },
    #[error("rootless: cannot publish {ip}:{port}/{proto}: ports below net.ipv4.ip_unprivileged_port_start need root (publish a port above it)")]
    Privileged {
        ip: Ipv4Addr,
        port: u16,
        proto: Proto,
    },
    #[error("publishing {ip}:{port}/{proto}: {source}")]
    Bind {
        ip: Ipv4Addr,
        port: u16,
        proto: Proto,
        #[source]
        source: io::Error,
    },
    #[error("invalid publish spec {0:?}: the host port range and the container port range differ in size")]
    RangeSize(String),
    #[error("rootless networking: no free host port in {0}-{1}")]
    NoFreePort(u16, u16),
    #[error("rootless networking: pasta: {0}")]
    Pasta(String),
    #[error("rootless networking: --add-host NAME:host-gateway: the container's network has no IPv4 default route (pasta copies the host's, and the host has none), so no address in it reaches the host")]
    NoHostGateway,
    #[error("rootless networking: reading the container's gateway: {0}")]
    Gateway(#[source] berth_net::netns::NetnsError),
    #[error("rootless networking: {what}: {source}")]
    Record {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("rootless networking: {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

/// Where one container's pasta is recorded: its directory (pid, ports) and the bind mount of
/// its network namespace pasta joins (in the user's runroot, inside their mount namespace).
pub struct Pasta {
    pub dir: PathBuf,
    pub netns: PathBuf,
}

/// What the container's IPv4 gateway address reaches through pasta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gateway {
    /// Only the host's own gateway, a remote address like any other (`--no-map-gw`): the
    /// host's loopback stays out of the container's reach. The default.
    Remote,
    /// The host: pasta maps connections and datagrams to the gateway address onto the host's
    /// loopback. Asked for by `--add-host NAME:host-gateway`, which names that address.
    Host,
}

impl Gateway {
    /// `Host` only when some `--add-host` names `host-gateway`.
    pub fn for_add_hosts(add_hosts: &[String]) -> Gateway {
        if berth_net::files::asks_host_gateway(add_hosts) {
            Gateway::Host
        } else {
            Gateway::Remote
        }
    }
}

/// What a running container's pasta was started with, recorded once it has configured the
/// namespace: the published ports (for `port`, `ps`, `inspect`) and, when `Gateway::Host` was
/// asked for, the address that reaches the host (for /etc/hosts and `explain`).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Connection {
    pub ports: Vec<PortMapping>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_gateway: Option<Ipv4Addr>,
}

/// Checks what pasta needs before the container is made: the binary and /dev/net/tun.
pub fn check_prerequisites() -> Result<(), UserModeError> {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(PASTA).is_file()));
    if !found {
        return Err(UserModeError::NoPasta);
    }
    std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map(drop)
        .map_err(UserModeError::Tun)
}

/// Resolves `-p` specs to host ports, each checked free now (random ones chosen), so a taken
/// port fails the start before the container runs. pasta binds them a moment later: another
/// program taking one in between makes pasta's forward of it fail (pasta logs it).
pub fn resolve_ports(publish: &[String]) -> Result<Vec<PortMapping>, UserModeError> {
    let mut out: Vec<PortMapping> = Vec::new();
    for text in publish {
        let spec: PortSpec = text
            .parse()
            .map_err(|e: berth_net::ports::PortError| UserModeError::Pasta(e.to_string()))?;
        let ip = spec.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let (a, b) = spec.container_ports;
        for (i, container_port) in (a..=b).enumerate() {
            let host_port = match spec.host_ports {
                None => free_port(ip, spec.proto)?,
                Some((ha, hb)) if hb - ha == b - a => {
                    let port = ha + i as u16;
                    check_free(ip, port, spec.proto)?;
                    port
                }
                Some((ha, hb)) if a == b => (ha..=hb)
                    .find(|p| check_free(ip, *p, spec.proto).is_ok())
                    .ok_or(UserModeError::NoFreePort(ha, hb))?,
                Some(_) => return Err(UserModeError::RangeSize(text.clone())),
            };
            out.push(PortMapping {
                host_ip: ip,
                host_port,
                container_port,
                proto: spec.proto,
            });
        }
    }
    Ok(out)
}

fn check_free(ip: Ipv4Addr, port: u16, proto: Proto) -> Result<u16, UserModeError> {
    let addr = SocketAddr::from((ip, port));
    let bound = match proto {
        Proto::Tcp => TcpListener::bind(addr).and_then(|l| l.local_addr()),
        Proto::Udp => UdpSocket::bind(addr).and_then(|s| s.local_addr()),
    };
    bound.map(|a| a.port()).map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => UserModeError::PortTaken { ip, port },
        io::ErrorKind::PermissionDenied => UserModeError::Privileged { ip, port, proto },
        _ => UserModeError::Bind {
            ip,
            port,
            proto,
            source: e,
        },
    })
}

/// A port the kernel calls free now (bound to port 0, then let go), as podman picks them.
fn free_port(ip: Ipv4Addr, proto: Proto) -> Result<u16, UserModeError> {
    check_free(ip, 0, proto)
}

/// pasta's command line for the namespace of `pid`: the host's addresses and routes copied in
/// (`--config-net`), DNS through its forwarder, only the published ports forwarded in (no
/// `auto`), nothing forwarded from the container to the host's loopback (`-T/-U none`), and
/// the gateway not mapped to the host (`--no-map-gw`) unless `Gateway::Host` asks for it: as
/// podman runs it.
fn pasta_args(
    netns: &Path,
    ports: &[PortMapping],
    gateway: Gateway,
    pid_file: &Path,
) -> Vec<String> {
    let mut args: Vec<String> = vec!["--config-net".into(), "--quiet".into()];
    if gateway == Gateway::Remote {
        args.push("--no-map-gw".into());
    }
    args.extend([
        "--dns-forward".into(),
        DNS_FORWARDER.to_string(),
        "-T".into(),
        "none".into(),
        "-U".into(),
        "none".into(),
        "--pid".into(),
        pid_file.display().to_string(),
    ]);
    for proto in [Proto::Tcp, Proto::Udp] {
        let flag = if proto == Proto::Tcp { "-t" } else { "-u" };
        let mine: Vec<&PortMapping> = ports.iter().filter(|p| p.proto == proto).collect();
        if mine.is_empty() {
            args.extend([flag.into(), "none".into()]);
        }
        for p in mine {
            let addr = if p.host_ip.is_unspecified() {
                String::new()
            } else {
                format!("{}/", p.host_ip)
            };
            args.extend([
                flag.into(),
                format!("{addr}{}:{}", p.host_port, p.container_port),
            ]);
        }
    }
    // A namespace by path (pasta then joins no user namespace: it runs in the user's
    // already), so pasta ends itself once berth unmounts and removes the path.
    args.extend(["--netns".into(), netns.display().to_string()]);
    args
}

impl Pasta {
    /// Makes the container's network namespace, bound at `netns` (the runtime joins it, as
    /// podman's do), and connects it through a pasta of its own. pasta forks into the
    /// background once the network is configured, so the program finds its interface from its
    /// first instruction. `Gateway::Host` also reads back the gateway pasta gave the namespace
    /// (none fails the start). On failure whatever was made is undone.
    pub fn start(&self, ports: &[PortMapping], gateway: Gateway) -> Result<(), UserModeError> {
        let started = self
            .make_netns()
            .and_then(|()| self.run(ports, gateway))
            .and_then(|()| self.record(ports, gateway));
        if started.is_err() {
            self.stop();
        }
        started
    }

    /// A new network namespace bound at `netns`: a thread of our own unshares one (only that
    /// thread moves) and binds its `/proc/thread-self/ns/net` there.
    fn make_netns(&self) -> Result<(), UserModeError> {
        let io_err = |what: String| move |source| UserModeError::Io { what, source };
        if let Some(parent) = self.netns.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent.display().to_string()))?;
        }
        std::fs::File::create(&self.netns).map_err(io_err(self.netns.display().to_string()))?;
        let target = self.netns.clone();
        let made = std::thread::spawn(move || -> nix::Result<()> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
            nix::mount::mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                nix::mount::MsFlags::MS_BIND,
                None::<&str>,
            )
        })
        .join()
        .unwrap_or(Err(nix::Error::EIO));
        made.map_err(|e| UserModeError::Io {
            what: format!("make a network namespace at {}", self.netns.display()),
            source: e.into(),
        })
    }

    fn run(&self, ports: &[PortMapping], gateway: Gateway) -> Result<(), UserModeError> {
        let io_err = |what: String| move |source| UserModeError::Io { what, source };
        let raw_pid = self.dir.join("pasta.raw.pid");
        let out = Command::new(PASTA)
            .args(pasta_args(&self.netns, ports, gateway, &raw_pid))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => UserModeError::NoPasta,
                _ => UserModeError::Io {
                    what: "run pasta".into(),
                    source: e,
                },
            })?;
        // pasta's own pid file, read once: a copy left behind goes with the container's
        // directory. No pid is no pasta, refused below with what pasta said.
        let text = std::fs::read_to_string(&raw_pid).unwrap_or_default();
        let _ = std::fs::remove_file(&raw_pid);
        let pasta: Option<i32> = text.trim().parse().ok();
        if let Some(p) = pasta {
            let record = format!("{p} {}\n", berth_sys::process::start_time(p));
            let file = self.dir.join(PID_FILE);
            std::fs::write(&file, record).map_err(io_err(file.display().to_string()))?;
        }
        if !out.status.success() || pasta.is_none() {
            let said = String::from_utf8_lossy(&out.stderr);
            let last = said
                .lines()
                .map(str::trim)
                .rfind(|l| !l.is_empty() && !l.starts_with("Failed to send"))
                .unwrap_or("it exited without configuring the network")
                .to_string();
            return Err(UserModeError::Pasta(last));
        }
        Ok(())
    }

    /// Records what the configured namespace got: the ports and, for `Gateway::Host`, its IPv4
    /// default gateway (which pasta now maps to the host), read back over netlink.
    fn record(&self, ports: &[PortMapping], gateway: Gateway) -> Result<(), UserModeError> {
        let host_gateway = match gateway {
            Gateway::Remote => None,
            Gateway::Host => Some(
                berth_net::netns::ipv4_gateway(&self.netns)
                    .map_err(UserModeError::Gateway)?
                    .ok_or(UserModeError::NoHostGateway)?,
            ),
        };
        let file = self.dir.join(CONNECTION_FILE);
        let what = || file.display().to_string();
        let json = serde_json::to_vec(&Connection {
            ports: ports.to_vec(),
            host_gateway,
        })
        .map_err(|source| UserModeError::Record {
            what: what(),
            source,
        })?;
        std::fs::write(&file, json).map_err(|source| UserModeError::Io {
            what: what(),
            source,
        })
    }

    /// Ends the container's pasta (if it still runs), unmounts and removes its namespace's
    /// path, and forgets its ports. Idempotent: every end of a container (exit, kill, `rm -f`,
    /// a failed start, a reclaimed crash) comes here.
    pub fn stop(&self) {
        let file = self.dir.join(PID_FILE);
        if let Ok(text) = std::fs::read_to_string(&file) {
            let mut f = text.split_whitespace();
            let pid = f.next().and_then(|p| p.parse::<i32>().ok());
            let start = f.next().and_then(|s| s.parse::<u64>().ok());
            if let (Some(pid), Some(start)) = (pid, start) {
                end_process(pid, start);
            }
        }
        crate::launch::unmount(&self.netns);
        // Each may be missing (a start that failed early, a second stop). One left behind does
        // no harm: the next start writes the pid and connection files afresh and binds the
        // namespace again, and `rm` takes the two files with the container's directory.
        let _ = std::fs::remove_file(&self.netns);
        let _ = std::fs::remove_file(&file);
        let _ = std::fs::remove_file(self.dir.join(CONNECTION_FILE));
    }

    /// The running container's pasta, if one is recorded.
    pub fn pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.dir.join(PID_FILE)).ok()?;
        text.split_whitespace().next()?.parse().ok()
    }

    /// What the running container's pasta was started with; `None` when nothing is recorded
    /// (the container does not run on a pasta of its own).
    pub fn connection(&self) -> Result<Option<Connection>, UserModeError> {
        let file = self.dir.join(CONNECTION_FILE);
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(UserModeError::Io {
                    what: file.display().to_string(),
                    source,
                })
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| UserModeError::Record {
                what: file.display().to_string(),
                source,
            })
    }

    /// The ports the running container publishes (empty without any). For listings: one
    /// container's unreadable record shows as no ports rather than failing `ps` for all.
    pub fn published(&self) -> Vec<PortMapping> {
        self.connection()
            .ok()
            .flatten()
            .map(|c| c.ports)
            .unwrap_or_default()
    }
}

/// SIGTERM, then SIGKILL after a second, to the process `pid` that started at `start` (a
/// reused pid is never signalled); waits until it is gone (it is not our child: pasta's parent
/// is whoever adopted it).
fn end_process(pid: i32, start: u64) {
    use nix::sys::signal::{kill, Signal};
    let pid_t = nix::unistd::Pid::from_raw(pid);
    if start == 0 || !berth_sys::process::alive(pid, start) {
        return;
    }
    let _ = kill(pid_t, Signal::SIGTERM);
    let end = Instant::now() + Duration::from_secs(1);
    while berth_sys::process::alive(pid, start) {
        if Instant::now() > end {
            let _ = kill(pid_t, Signal::SIGKILL);
        }
        if Instant::now() > end + Duration::from_secs(2) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasta_forwards_only_the_published_ports() {
        let ports = [
            PortMapping {
                host_ip: Ipv4Addr::UNSPECIFIED,
                host_port: 8080,
                container_port: 80,
                proto: Proto::Tcp,
            },
            PortMapping {
                host_ip: Ipv4Addr::LOCALHOST,
                host_port: 5353,
                container_port: 53,
                proto: Proto::Udp,
            },
        ];
        let args = pasta_args(
            Path::new("/r/netns/c"),
            &ports,
            Gateway::Remote,
            Path::new("/r/p"),
        );
        let s = args.join(" ");
        assert!(s.contains("-t 8080:80"), "{s}");
        assert!(s.contains("-u 127.0.0.1/5353:53"), "{s}");
        assert!(s.contains("-T none -U none"), "{s}");
        assert!(s.contains("--no-map-gw"), "{s}");
        assert!(s.ends_with("--netns /r/netns/c"), "{s}");
        let none = pasta_args(Path::new("/n"), &[], Gateway::Remote, Path::new("/r/p")).join(" ");
        assert!(
            none.contains("-t none") && none.contains("-u none"),
            "{none}"
        );
    }

    #[test]
    fn the_gateway_is_mapped_to_the_host_only_when_host_gateway_is_asked_for() {
        let args = |add_hosts: &[&str]| {
            let add: Vec<String> = add_hosts.iter().map(|s| s.to_string()).collect();
            let gateway = Gateway::for_add_hosts(&add);
            (
                gateway,
                pasta_args(Path::new("/n"), &[], gateway, Path::new("/p")),
            )
        };
        let (gateway, plain) = args(&["db:10.0.0.9"]);
        assert_eq!(gateway, Gateway::Remote);
        assert!(plain.iter().any(|a| a == "--no-map-gw"), "{plain:?}");
        let (gateway, mapped) = args(&["db:10.0.0.9", "h:host-gateway"]);
        assert_eq!(gateway, Gateway::Host);
        assert!(!mapped.iter().any(|a| a.contains("map-gw")), "{mapped:?}");
        // The rest of the command line is the same.
        let rest: Vec<&String> = plain.iter().filter(|a| *a != "--no-map-gw").collect();
        assert_eq!(rest, mapped.iter().collect::<Vec<_>>());
    }

    #[test]
    fn a_connection_recorded_before_the_gateway_was_reads_without_one() {
        let old = br#"{"ports":[{"host_ip":"0.0.0.0","host_port":8080,"container_port":80,"proto":"tcp"}]}"#;
        let c: Connection = serde_json::from_slice(old).unwrap();
        assert_eq!((c.ports.len(), c.host_gateway), (1, None));
    }

    #[test]
    fn a_taken_port_is_refused_and_a_random_one_is_chosen() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let spec = format!("127.0.0.1:{port}:80");
        let err = resolve_ports(&[spec]).unwrap_err();
        assert!(
            err.to_string().contains("port is already allocated"),
            "{err}"
        );
        let random = resolve_ports(&["127.0.0.1::80".into()]).unwrap();
        assert_eq!(random.len(), 1);
        assert_ne!(random[0].host_port, 0);
        assert_eq!(random[0].container_port, 80);
    }
}
