//! The test fixture: its own state and run directories, nftables table, bridge and veth names and
//! network namespaces (made with `ip netns add`, so a "container" is a namespace file), an
//! "outside" host in a namespace of its own routed through the host, and small TCP/UDP/DNS peers
//! run on threads that entered a namespace. `finish` removes everything and asserts the kernel and
//! the state directories kept nothing; a failing test's guard (Drop) removes what it can.

#![allow(dead_code)]

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use berth_net::link::Netlink;
use berth_net::{AttachRequest, DnsCommand, Endpoint, Networks, Options, PortSpec};

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sh_quiet(cmd: &str) {
    let _ = Command::new("sh").arg("-c").arg(cmd).output();
}

/// Runs `f` on a thread inside the namespace `ns` (the host's if `None`).
pub fn in_netns<T: Send + 'static>(ns: Option<&Path>, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.map(Path::to_path_buf);
    std::thread::spawn(move || {
        if let Some(ns) = ns {
            let f = std::fs::File::open(&ns).expect("netns file");
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        }
        f()
    })
    .join()
    .expect("netns thread")
}

/// A server on a thread in a namespace: TCP answers each connection with the peer's address,
/// UDP answers each datagram with it. Stops when dropped.
pub struct Peer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Peer {
    pub fn tcp(ns: Option<&Path>, port: u16) -> Peer {
        Peer::start(ns, move |stop| {
            let l = TcpListener::bind(("0.0.0.0", port)).expect("bind tcp peer");
            l.set_nonblocking(true).unwrap();
            while !stop.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut c, peer)) => {
                        let _ = c.write_all(format!("{}\n", peer.ip()).as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        })
    }

    pub fn udp(ns: Option<&Path>, port: u16) -> Peer {
        Peer::start(ns, move |stop| {
            let s = UdpSocket::bind(("0.0.0.0", port)).expect("bind udp peer");
            s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            let mut buf = [0u8; 512];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((_, peer)) = s.recv_from(&mut buf) {
                    let _ = s.send_to(format!("{}\n", peer.ip()).as_bytes(), peer);
                }
            }
        })
    }

    /// An upstream DNS server: `names` get A answers, everything else NXDOMAIN.
    pub fn dns(ns: Option<&Path>, addr: Ipv4Addr, names: Vec<(String, Ipv4Addr)>) -> Peer {
        use hickory_proto::op::{Message, ResponseCode};
        use hickory_proto::rr::{rdata::A, RData, Record};
        Peer::start(ns, move |stop| {
            let s = UdpSocket::bind((addr, 53)).expect("bind dns peer");
            s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            let mut buf = [0u8; 512];
            while !stop.load(Ordering::Relaxed) {
                let Ok((n, peer)) = s.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let mut r = Message::response(q.metadata.id, q.metadata.op_code);
                r.queries = q.queries.clone();
                let name = q.queries[0]
                    .name()
                    .to_ascii()
                    .trim_end_matches('.')
                    .to_string();
                match names.iter().find(|(n, _)| *n == name) {
                    Some((_, ip)) => {
                        r.answers.push(Record::from_rdata(
                            q.queries[0].name().clone(),
                            5,
                            RData::A(A(*ip)),
                        ));
                    }
                    None => r.metadata.response_code = ResponseCode::NXDomain,
                }
                let _ = s.send_to(&r.to_vec().unwrap(), peer);
            }
        })
    }

    fn start(ns: Option<&Path>, body: impl FnOnce(Arc<AtomicBool>) + Send + 'static) -> Peer {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let ns = ns.map(Path::to_path_buf);
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            if let Some(ns) = ns {
                let f = std::fs::File::open(&ns).expect("netns file");
                nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            }
            tx.send(()).unwrap();
            body(s)
        });
        rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(20)); // bound by now
        Peer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects from namespace `ns` to `addr` and returns what the peer said (its view of our address).
pub fn tcp_ask(ns: Option<&Path>, addr: SocketAddr) -> io::Result<String> {
    in_netns(ns, move || {
        let mut c = TcpStream::connect_timeout(&addr, Duration::from_millis(700))?;
        c.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut s = String::new();
        c.read_to_string(&mut s)?;
        Ok(s.trim().to_string())
    })
}

pub fn udp_ask(ns: Option<&Path>, addr: SocketAddr) -> io::Result<String> {
    in_netns(ns, move || {
        let s = UdpSocket::bind("0.0.0.0:0")?;
        s.set_read_timeout(Some(Duration::from_millis(700)))?;
        s.send_to(b"hi", addr)?;
        let mut buf = [0u8; 64];
        let (n, _) = s.recv_from(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).trim().to_string())
    })
}

/// Asks `server` for `name`'s A records from namespace `ns`: the addresses, or the response code.
pub fn dns_ask(ns: Option<&Path>, server: Ipv4Addr, name: &str) -> Result<Vec<Ipv4Addr>, String> {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RData, RecordType};
    let name = name.to_string();
    in_netns(ns, move || {
        let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut q = Message::query();
        q.metadata.recursion_desired = true;
        q.queries.push(Query::query(
            Name::from_ascii(&name).unwrap(),
            RecordType::A,
        ));
        s.send_to(&q.to_vec().unwrap(), (server, 53))
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 1500];
        let n = s.recv(&mut buf).map_err(|e| e.to_string())?;
        let r = Message::from_vec(&buf[..n]).map_err(|e| e.to_string())?;
        if r.answers.is_empty() {
            return Err(format!("{:?}", r.metadata.response_code));
        }
        Ok(r.answers
            .iter()
            .filter_map(|a| match &a.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect())
    })
}

/// The outside host: namespace `<tag>o`, linked to the host by a veth over a /30, with no route
/// to any container subnet (so an answer reaching a container proves masquerade).
pub struct Outside {
    pub ns: PathBuf,
    pub host_ip: Ipv4Addr,
    pub ip: Ipv4Addr,
}

pub struct Fixture {
    pub tag: String,
    pub dir: tempfile::TempDir,
    pub nets: Networks,
    pub opts: Options,
    netns: Vec<String>,
    links: Vec<String>,
    pub outside: Option<Outside>,
    finished: bool,
}

pub fn dns_command() -> DnsCommand {
    DnsCommand {
        program: env!("CARGO_BIN_EXE_berth-net-dns").into(),
        args: vec![],
    }
}

impl Fixture {
    pub fn new() -> Fixture {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{:03x}", (std::process::id() * 7 + n * 131) & 0xfff);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
        let opts = Options {
            table: format!("berth-t{tag}"),
            default_bridge: format!("btd{tag}"),
            bridge_prefix: "br-".into(),
            veth_prefix: format!("vt{tag}"),
            resolv_conf: dir.path().join("resolv.conf"),
            dns: Some(dns_command()),
            nft: "nft".into(),
        };
        let nets = Networks::open_with(
            &dir.path().join("state"),
            &dir.path().join("run"),
            opts.clone(),
        )
        .unwrap();
        Fixture {
            tag,
            dir,
            nets,
            opts,
            netns: vec![],
            links: vec![],
            outside: None,
            finished: false,
        }
    }

    /// A fresh network namespace (a "container"); returns its file.
    pub fn netns(&mut self, name: &str) -> PathBuf {
        let full = format!("{}{}", self.tag, name);
        sh(&format!("ip netns add {full}"));
        self.netns.push(full.clone());
        PathBuf::from(format!("/run/netns/{full}"))
    }

    /// The outside host on 10.254.<octet>.0/30 (host .1, outside .2).
    pub fn outside(&mut self, octet: u8) -> &Outside {
        let ns = self.netns("o");
        let name = ns.file_name().unwrap().to_string_lossy().into_owned();
        let link = format!("vo{}", self.tag);
        self.links.push(link.clone());
        let host_ip = Ipv4Addr::new(10, 254, octet, 1);
        let ip = Ipv4Addr::new(10, 254, octet, 2);
        sh(&format!(
            "ip link add {link} type veth peer name eth0 netns {name} && ip addr add {host_ip}/30 dev {link} && ip link set {link} up && \
             ip -n {name} addr add {ip}/30 dev eth0 && ip -n {name} link set eth0 up && ip -n {name} link set lo up"
        ));
        std::fs::write(self.opts.resolv_conf.clone(), format!("nameserver {ip}\n")).unwrap();
        self.outside = Some(Outside { ns, host_ip, ip });
        self.outside.as_ref().unwrap()
    }

    pub fn attach(
        &self,
        network: &str,
        ns: &Path,
        cid: &str,
        names: &[&str],
        ports: &[&str],
    ) -> Endpoint {
        self.try_attach(network, ns, cid, names, ports)
            .unwrap_or_else(|e| panic!("attach {cid}: {e}"))
    }

    pub fn try_attach(
        &self,
        network: &str,
        ns: &Path,
        cid: &str,
        names: &[&str],
        ports: &[&str],
    ) -> Result<Endpoint, berth_net::EndpointError> {
        self.nets.attach(&AttachRequest {
            network: network.into(),
            container_id: cid.into(),
            liveness: format!("test:{cid}"),
            netns: ns.to_path_buf(),
            ifname: "eth0".into(),
            names: names.iter().map(|s| s.to_string()).collect(),
            ip: None,
            ports: ports
                .iter()
                .map(|p| p.parse::<PortSpec>().unwrap())
                .collect(),
            ..Default::default()
        })
    }

    fn our_links(&self, bridges: &HashSet<String>) -> Vec<String> {
        let mut nl = Netlink::open().unwrap();
        nl.links()
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .filter(|n| {
                n.starts_with(&self.opts.veth_prefix)
                    || bridges.contains(n)
                    || self.links.contains(n)
            })
            .collect()
    }

    fn dns_processes(&self) -> Vec<(i32, String)> {
        let needle = self.dir.path().to_string_lossy().into_owned();
        let mut out = vec![];
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                if cmd.contains("berth-net-dns") && cmd.contains(&needle) {
                    let pid = e.file_name().to_string_lossy().parse().unwrap_or(0);
                    out.push((pid, cmd));
                }
            }
        }
        out
    }

    fn cleanup(&mut self) -> HashSet<String> {
        let bridges: HashSet<String> = self
            .nets
            .list()
            .unwrap_or_default()
            .into_iter()
            .map(|n| n.bridge)
            .collect();
        for n in self.nets.list().unwrap_or_default() {
            for ep in self.nets.endpoints(&n.id).unwrap_or_default() {
                let _ = self.nets.detach(&n.id, &ep.container_id);
            }
        }
        let _ = self.nets.remove_all();
        for ns in self.netns.drain(..) {
            sh_quiet(&format!("ip netns delete {ns}"));
        }
        for l in &self.links {
            sh_quiet(&format!("ip link delete {l}"));
        }
        bridges
    }

    /// Removes everything and asserts that nothing was left behind.
    pub fn finish(mut self) {
        self.finished = true;
        let mut bridges = self.cleanup();
        bridges.insert(self.opts.default_bridge.clone());
        // The kernel removes a deleted namespace's links asynchronously.
        let until = Instant::now() + Duration::from_secs(3);
        while !self.our_links(&bridges).is_empty() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            self.our_links(&bridges),
            Vec::<String>::new(),
            "leaked links"
        );
        let tables = sh("nft list tables");
        assert!(
            !tables.contains(&format!("berth-t{} ", self.tag))
                && !tables.lines().any(|l| l.ends_with(&self.opts.table)),
            "leaked table: {tables}"
        );
        let netns = sh("ip netns list");
        assert!(
            !netns.lines().any(|l| l.starts_with(&self.tag)),
            "leaked netns: {netns}"
        );
        assert_eq!(self.dns_processes(), vec![], "leaked resolver");
        let mut left = vec![];
        for e in walk(self.dir.path()) {
            let rel = e
                .strip_prefix(self.dir.path())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if !e.is_dir() && !rel.ends_with(".lock") && rel != "resolv.conf" {
                left.push(rel);
            }
        }
        assert_eq!(left, Vec::<String>::new(), "leaked state files");
    }
}

fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.extend(walk(&path));
            }
            out.push(path);
        }
    }
    out
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if !self.finished {
            self.cleanup();
            sh_quiet(&format!("nft delete table inet {}", self.opts.table));
            // Resolvers this fixture started (their config is under its unique directory).
            for (pid, _) in self.dns_processes() {
                sh_quiet(&format!("kill -9 {pid}"));
            }
        }
    }
}
