//! One user network's resolver, run as its own process (`berth __dns <dir>`): answers A, AAAA and
//! PTR for the names in the network's table (re-read when the file changes) and relays every other
//! query, as raw bytes, to the host's resolvers with bounded waits. One thread, one `poll` loop;
//! TCP queries are served one at a time with short timeouts. It exits when its table is gone. It
//! never writes a file: the table and the config belong to `dns::mod`.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::table::{self, Names};
use super::ServerConfig;

const TTL: u32 = 30;
const UPSTREAM_WAIT: Duration = Duration::from_millis(1500);
const TCP_WAIT: Duration = Duration::from_secs(2);
const MAX_PENDING: usize = 256;

/// The table as last read, and what identified the file then.
struct Table {
    names: Names,
    stamp: Option<(u64, i64, i64)>,
}

impl Table {
    /// Re-reads the table if the file changed; `false` once it is gone.
    fn refresh(&mut self, path: &Path) -> bool {
        let stamp = match std::fs::metadata(path) {
            Ok(m) => (m.ino(), m.mtime(), m.mtime_nsec()),
            Err(_) => return false,
        };
        if self.stamp != Some(stamp) {
            self.names = Names::from_entries(&table::read(path).unwrap_or_default());
            self.stamp = Some(stamp);
        }
        true
    }
}

/// A relayed query waiting for its upstream.
struct Pending {
    sock: UdpSocket,
    client: SocketAddr,
    query: Vec<u8>,
    id: u16,
    upstream: usize,
    deadline: Instant,
}

/// Binds the resolver's sockets (so the caller can report a failure before detaching).
pub fn bind(cfg: &ServerConfig) -> io::Result<(UdpSocket, TcpListener)> {
    let addr = SocketAddr::new(IpAddr::V4(cfg.listen), cfg.port);
    let udp = UdpSocket::bind(addr)?;
    let tcp = TcpListener::bind(addr)?;
    udp.set_nonblocking(true)?;
    tcp.set_nonblocking(true)?;
    Ok((udp, tcp))
}

/// Serves until the table file disappears.
pub fn run(cfg: &ServerConfig, udp: UdpSocket, tcp: TcpListener) -> io::Result<()> {
    let mut table = Table {
        names: Names::default(),
        stamp: None,
    };
    let mut pending: Vec<Pending> = Vec::new();
    let mut buf = vec![0u8; 65535];
    loop {
        if !table.refresh(&cfg.table) {
            return Ok(());
        }
        let mut fds = vec![
            libc::pollfd {
                fd: udp.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: tcp.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        fds.extend(pending.iter().map(|p| libc::pollfd {
            fd: p.sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }));
        let now = Instant::now();
        let wait = pending
            .iter()
            .map(|p| p.deadline.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(1));
        // SAFETY: `fds` is a live, correctly sized array of pollfd for the duration of the call.
        let n = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                wait.as_millis() as i32 + 1,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // Replies from upstreams, back to front so removal keeps indexes valid.
        for i in (0..pending.len()).rev() {
            if fds[2 + i].revents != 0 {
                match pending[i].sock.recv(&mut buf) {
                    Ok(n) if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == pending[i].id => {
                        let p = pending.swap_remove(i);
                        let _ = udp.send_to(&buf[..n], p.client);
                    }
                    Ok(_) => {}
                    // Refused (ICMP on the connected socket): on to the next upstream now.
                    Err(_) => pending[i].deadline = Instant::now(),
                }
            }
        }
        expire(cfg, &udp, &mut pending);
        if fds[0].revents != 0 {
            while let Ok((n, client)) = udp.recv_from(&mut buf) {
                table.refresh(&cfg.table);
                handle_udp(cfg, &table.names, &udp, &buf[..n], client, &mut pending);
            }
        }
        if fds[1].revents != 0 {
            while let Ok((conn, _)) = tcp.accept() {
                table.refresh(&cfg.table);
                let _ = handle_tcp(cfg, &table.names, conn);
            }
        }
    }
}

/// Retries timed-out relays on the next upstream, or answers SERVFAIL when none is left.
fn expire(cfg: &ServerConfig, udp: &UdpSocket, pending: &mut Vec<Pending>) {
    let now = Instant::now();
    let mut i = 0;
    while i < pending.len() {
        if pending[i].deadline > now {
            i += 1;
            continue;
        }
        let mut p = pending.swap_remove(i);
        p.upstream += 1;
        if let Some(up) = cfg.upstreams.get(p.upstream) {
            if p.sock
                .connect(up)
                .and_then(|_| p.sock.send(&p.query))
                .is_ok()
            {
                p.deadline = now + UPSTREAM_WAIT;
                pending.push(p);
                continue;
            }
        }
        if let Some(reply) = error_reply(&p.query, ResponseCode::ServFail) {
            let _ = udp.send_to(&reply, p.client);
        }
    }
}

fn handle_udp(
    cfg: &ServerConfig,
    names: &Names,
    udp: &UdpSocket,
    query: &[u8],
    client: SocketAddr,
    pending: &mut Vec<Pending>,
) {
    match answer(cfg, names, query) {
        Answer::Local(reply) => {
            let _ = udp.send_to(&reply, client);
        }
        Answer::Drop => {}
        Answer::Relay => {
            let relayed = (pending.len() < MAX_PENDING)
                .then(|| relay_udp(cfg, query, client))
                .flatten();
            match relayed {
                Some(p) => pending.push(p),
                None => {
                    if let Some(r) = error_reply(query, ResponseCode::ServFail) {
                        let _ = udp.send_to(&r, client);
                    }
                }
            }
        }
    }
}

fn relay_udp(cfg: &ServerConfig, query: &[u8], client: SocketAddr) -> Option<Pending> {
    let up = cfg.upstreams.first()?;
    let bind: SocketAddr = match up {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(bind).ok()?;
    sock.set_nonblocking(true).ok()?;
    // Connected, so an ICMP refusal is reported (and only the upstream's answers are read).
    sock.connect(up).ok()?;
    sock.send(query).ok()?;
    Some(Pending {
        sock,
        client,
        query: query.to_vec(),
        id: u16::from_be_bytes([query[0], query[1]]),
        upstream: 0,
        deadline: Instant::now() + UPSTREAM_WAIT,
    })
}

/// One TCP query: answered here or relayed over TCP, each step bounded by `TCP_WAIT`.
fn handle_tcp(cfg: &ServerConfig, names: &Names, mut conn: TcpStream) -> io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(TCP_WAIT))?;
    conn.set_write_timeout(Some(TCP_WAIT))?;
    let query = read_framed(&mut conn)?;
    let reply = match answer(cfg, names, &query) {
        Answer::Local(r) => r,
        Answer::Drop => return Ok(()),
        Answer::Relay => cfg
            .upstreams
            .iter()
            .find_map(|up| relay_tcp(up, &query).ok())
            .or_else(|| error_reply(&query, ResponseCode::ServFail))
            .unwrap_or_default(),
    };
    let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
    framed.extend(reply);
    conn.write_all(&framed)?;
    let _ = conn.shutdown(Shutdown::Both);
    Ok(())
}

fn read_framed(conn: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    conn.read_exact(&mut len)?;
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    conn.read_exact(&mut msg)?;
    Ok(msg)
}

fn relay_tcp(up: &SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
    let mut c = TcpStream::connect_timeout(up, TCP_WAIT)?;
    c.set_read_timeout(Some(TCP_WAIT))?;
    c.set_write_timeout(Some(TCP_WAIT))?;
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    c.write_all(&framed)?;
    read_framed(&mut c)
}

enum Answer {
    Local(Vec<u8>),
    Relay,
    Drop,
}

/// Decides one query: a name (or address) of the network is answered here, anything else relayed
/// (or refused on a network with no way out).
fn answer(cfg: &ServerConfig, names: &Names, query: &[u8]) -> Answer {
    let Ok(msg) = Message::from_vec(query) else {
        return Answer::Drop;
    };
    if msg.metadata.message_type != MessageType::Query {
        return Answer::Drop;
    }
    let q = match msg.queries.as_slice() {
        [q] if msg.metadata.op_code == OpCode::Query => q.clone(),
        _ => return reply_code(&msg, ResponseCode::NotImp),
    };
    let name = q
        .name()
        .to_ascii()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let local = if q.query_class() != DNSClass::IN {
        None
    } else if q.query_type() == RecordType::PTR {
        ptr_target(&name)
            .and_then(|ip| names.by_addr.get(&ip))
            .map(|n| {
                let target = Name::from_ascii(format!("{n}.")).unwrap_or_default();
                vec![Record::from_rdata(
                    q.name().clone(),
                    TTL,
                    RData::PTR(PTR(target)),
                )]
            })
    } else {
        names.by_name.get(&name).map(|addrs| {
            addrs
                .iter()
                .filter_map(|a| match (a, q.query_type()) {
                    (IpAddr::V4(v4), RecordType::A) => Some(RData::A(A(*v4))),
                    (IpAddr::V6(v6), RecordType::AAAA) => Some(RData::AAAA(AAAA(*v6))),
                    _ => None,
                })
                .map(|rd| Record::from_rdata(q.name().clone(), TTL, rd))
                .collect()
        })
    };
    match local {
        Some(records) => {
            let mut reply = Message::response(msg.metadata.id, OpCode::Query);
            reply.metadata.recursion_desired = msg.metadata.recursion_desired;
            reply.metadata.recursion_available = true;
            reply.metadata.authoritative = true;
            reply.queries.push(q);
            reply.answers.extend(records);
            reply.to_vec().map(Answer::Local).unwrap_or(Answer::Drop)
        }
        None if cfg.forward && !cfg.upstreams.is_empty() => Answer::Relay,
        None => reply_code(&msg, ResponseCode::Refused),
    }
}

fn reply_code(msg: &Message, code: ResponseCode) -> Answer {
    let mut reply = Message::error_msg(msg.metadata.id, msg.metadata.op_code, code);
    reply.metadata.recursion_desired = msg.metadata.recursion_desired;
    reply.queries.extend(msg.queries.iter().cloned());
    reply.to_vec().map(Answer::Local).unwrap_or(Answer::Drop)
}

fn error_reply(query: &[u8], code: ResponseCode) -> Option<Vec<u8>> {
    let msg = Message::from_vec(query).ok()?;
    match reply_code(&msg, code) {
        Answer::Local(r) => Some(r),
        _ => None,
    }
}

/// The address a reverse name (`4.3.2.1.in-addr.arpa`) stands for (IPv4 only).
fn ptr_target(name: &str) -> Option<IpAddr> {
    let rest = name.strip_suffix(".in-addr.arpa")?;
    let octets: Vec<u8> = rest
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    match octets.as_slice() {
        [d, c, b, a] => Some(IpAddr::V4(Ipv4Addr::new(*a, *b, *c, *d))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::table::Entry;
    use hickory_proto::op::Query;

    fn cfg(forward: bool) -> ServerConfig {
        ServerConfig {
            listen: Ipv4Addr::LOCALHOST,
            port: 53,
            upstreams: vec!["127.0.0.1:5353".parse().unwrap()],
            forward,
            table: "/nonexistent".into(),
        }
    }

    fn query(name: &str, ty: RecordType) -> Vec<u8> {
        let mut m = Message::new(7, MessageType::Query, OpCode::Query);
        m.queries
            .push(Query::query(Name::from_ascii(name).unwrap(), ty));
        m.to_vec().unwrap()
    }

    fn names() -> Names {
        Names::from_entries(&[Entry {
            container_id: "c".into(),
            ipv4: "10.3.0.2".parse().unwrap(),
            ipv6: None,
            names: vec!["web".into(), "www".into()],
        }])
    }

    #[test]
    fn local_names_are_answered_case_blind_and_others_relayed() {
        let Answer::Local(r) = answer(&cfg(true), &names(), &query("WeB.", RecordType::A)) else {
            panic!("not answered locally")
        };
        let r = Message::from_vec(&r).unwrap();
        assert_eq!(r.metadata.id, 7);
        assert_eq!(r.answers.len(), 1);
        assert_eq!(r.answers[0].data, RData::A(A("10.3.0.2".parse().unwrap())));
        // A name with no IPv6 address: an empty answer, not a relay.
        let Answer::Local(r) = answer(&cfg(true), &names(), &query("www", RecordType::AAAA)) else {
            panic!()
        };
        assert!(Message::from_vec(&r).unwrap().answers.is_empty());
        let Answer::Local(r) = answer(
            &cfg(true),
            &names(),
            &query("2.0.3.10.in-addr.arpa.", RecordType::PTR),
        ) else {
            panic!()
        };
        assert_eq!(Message::from_vec(&r).unwrap().answers.len(), 1);
        assert!(matches!(
            answer(&cfg(true), &names(), &query("example.org.", RecordType::A)),
            Answer::Relay
        ));
        let Answer::Local(r) = answer(&cfg(false), &names(), &query("example.org.", RecordType::A))
        else {
            panic!()
        };
        assert_eq!(
            Message::from_vec(&r).unwrap().metadata.response_code,
            ResponseCode::Refused
        );
    }
}
