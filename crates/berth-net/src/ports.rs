//! Published ports: Docker's `-p [IP:][HOSTPORT[-END]:]CTRPORT[-END][/tcp|udp]` as a type, and the
//! host ports berth has claimed (`<run>/ports/<proto>-<port>-<ip>` symlinks naming the owner, made
//! under `<run>/ports.lock`). A port is refused if berth holds it or a bind test fails. It never
//! writes firewall rules or listens on a port past the test.

use std::fmt;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// One `-p` as asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// `None`: every host address (0.0.0.0).
    pub host_ip: Option<Ipv4Addr>,
    /// `None`: random ports. A range with a single container port means "any free one of these".
    pub host_ports: Option<(u16, u16)>,
    pub container_ports: (u16, u16),
    pub proto: Proto,
}

/// One host port → container port, as published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    /// 0.0.0.0 for every host address.
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{}:{}->{}/{}",
            self.host_ip, self.host_port, self.container_port, self.proto
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("port spec {0:?}: invalid")]
    Syntax(String),
    #[error("port spec {0:?}: IPv6 host addresses are not supported; publish on an IPv4 address, or on every address with HOST_PORT:CONTAINER_PORT")]
    Ipv6(String),
    #[error("port spec {0:?}: only tcp and udp ports can be published")]
    Protocol(String),
    #[error("port spec {0:?}: host and container ranges differ in length")]
    RangeMismatch(String),
    #[error("port {ip}:{port}/{proto}: already published by container {owner}")]
    TakenByBerth {
        ip: Ipv4Addr,
        port: u16,
        proto: Proto,
        owner: String,
    },
    #[error("port {ip}:{port}/{proto}: already in use on the host ({source})")]
    InUse {
        ip: Ipv4Addr,
        port: u16,
        proto: Proto,
        #[source]
        source: io::Error,
    },
    #[error("port spec {spec:?}: no free host port")]
    NoFreePort { spec: String },
    #[error("published ports {path}: {source}")]
    State {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b): (u16, u16) = (a.parse().ok()?, b.parse().ok()?);
    (a > 0 && a <= b).then_some((a, b))
}

impl FromStr for PortSpec {
    type Err = PortError;
    fn from_str(spec: &str) -> Result<PortSpec, PortError> {
        let bad = || PortError::Syntax(spec.to_string());
        let (rest, proto) = match spec.rsplit_once('/') {
            Some((r, "tcp")) => (r, Proto::Tcp),
            Some((r, "udp")) => (r, Proto::Udp),
            Some((_, "sctp")) => return Err(PortError::Protocol(spec.to_string())),
            Some(_) => return Err(bad()),
            None => (spec, Proto::Tcp),
        };
        if rest.starts_with('[') {
            return Err(PortError::Ipv6(spec.to_string()));
        }
        let parts: Vec<&str> = rest.split(':').collect();
        let (ip, host, ctr) = match parts.as_slice() {
            [c] => (None, None, *c),
            [h, c] => (None, Some(*h), *c),
            [i, h, c] => (Some(*i), Some(*h), *c),
            _ => return Err(bad()),
        };
        let host_ip = match ip {
            None | Some("") => None,
            Some(i) => Some(i.parse::<Ipv4Addr>().map_err(|_| bad())?),
        };
        let host_ports = match host {
            None | Some("") => None,
            Some(h) => Some(range(h).ok_or_else(bad)?),
        };
        let container_ports = range(ctr).ok_or_else(bad)?;
        if let Some((a, b)) = host_ports {
            let clen = container_ports.1 - container_ports.0;
            if b - a != clen && clen != 0 {
                return Err(PortError::RangeMismatch(spec.to_string()));
            }
        }
        Ok(PortSpec {
            host_ip: host_ip.filter(|i| !i.is_unspecified()),
            host_ports,
            container_ports,
            proto,
        })
    }
}

/// Claims of host ports, kept under `<run>/ports`.
pub struct PortClaims {
    dir: PathBuf,
}

fn claim_name(m: &PortMapping) -> String {
    format!("{}-{}-{}", m.proto, m.host_port, m.host_ip)
}

impl PortClaims {
    pub fn new(run_dir: &Path) -> PortClaims {
        PortClaims {
            dir: run_dir.join("ports"),
        }
    }

    pub fn lock_path(&self) -> PathBuf {
        self.dir.with_extension("lock")
    }

    fn state_err(&self) -> impl Fn(io::Error) -> PortError + '_ {
        move |source| PortError::State {
            path: self.dir.clone(),
            source,
        }
    }

    /// Every claim: (claim, owner).
    pub fn all(&self) -> Result<Vec<(PortMapping, String)>, PortError> {
        let mut out = Vec::new();
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(self.state_err()(e)),
        };
        for e in rd {
            let e = e.map_err(self.state_err())?;
            let name = e.file_name().to_string_lossy().into_owned();
            let mut it = name.splitn(3, '-');
            let (Some(p), Some(port), Some(ip)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            let proto = match p {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                _ => continue,
            };
            let (Ok(host_port), Ok(host_ip)) = (port.parse(), ip.parse()) else {
                continue;
            };
            let owner = fs::read_link(e.path())
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            let m = PortMapping {
                host_ip,
                host_port,
                container_port: 0,
                proto,
            };
            out.push((m, owner));
        }
        Ok(out)
    }

    /// Resolves `specs` to mappings, checking every port against berth's claims and a bind test,
    /// then claims them for `owner`. The caller holds the ports lock. Nothing is claimed on error.
    pub fn claim(
        &self,
        specs: &[PortSpec],
        owner: &str,
        random: &mut dyn FnMut() -> u16,
    ) -> Result<Vec<PortMapping>, PortError> {
        let mut held = self.all()?;
        let mut out: Vec<PortMapping> = Vec::new();
        for spec in specs {
            let n = spec.container_ports.1 - spec.container_ports.0;
            let ip = spec.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
            for i in 0..=n {
                let cport = spec.container_ports.0 + i;
                let m = match spec.host_ports {
                    Some((a, b)) if n == 0 && b > a => {
                        let found = (a..=b).find_map(|p| {
                            let m = mapping(ip, p, cport, spec.proto);
                            check(&m, &held, &out).ok().map(|_| m)
                        });
                        found.ok_or_else(|| PortError::NoFreePort {
                            spec: format!("{}-{}:{}", a, b, cport),
                        })?
                    }
                    Some((a, _)) => {
                        let m = mapping(ip, a + i, cport, spec.proto);
                        check(&m, &held, &out)?;
                        m
                    }
                    None => (0..64)
                        .find_map(|_| {
                            let m = mapping(ip, random(), cport, spec.proto);
                            check(&m, &held, &out).ok().map(|_| m)
                        })
                        .ok_or_else(|| PortError::NoFreePort {
                            spec: cport.to_string(),
                        })?,
                };
                out.push(m);
            }
        }
        fs::create_dir_all(&self.dir).map_err(self.state_err())?;
        for (k, m) in out.iter().enumerate() {
            if let Err(e) = std::os::unix::fs::symlink(owner, self.dir.join(claim_name(m))) {
                self.release(&out[..k]);
                return Err(self.state_err()(e));
            }
            held.push((*m, owner.to_string()));
        }
        Ok(out)
    }

    /// Drops the claims of `mappings` (missing ones are fine).
    pub fn release(&self, mappings: &[PortMapping]) {
        for m in mappings {
            let _ = fs::remove_file(self.dir.join(claim_name(m)));
        }
    }

    /// Drops one claim by its owner-independent key.
    pub fn release_claim(&self, m: &PortMapping) {
        self.release(std::slice::from_ref(m));
    }
}

fn mapping(host_ip: Ipv4Addr, host_port: u16, container_port: u16, proto: Proto) -> PortMapping {
    PortMapping {
        host_ip,
        host_port,
        container_port,
        proto,
    }
}

/// Whether two host addresses conflict on one port (0.0.0.0 conflicts with every address).
fn clash(a: Ipv4Addr, b: Ipv4Addr) -> bool {
    a == b || a.is_unspecified() || b.is_unspecified()
}

fn check(
    m: &PortMapping,
    held: &[(PortMapping, String)],
    pending: &[PortMapping],
) -> Result<(), PortError> {
    let same = |o: &PortMapping| {
        o.proto == m.proto && o.host_port == m.host_port && clash(o.host_ip, m.host_ip)
    };
    if let Some((_, owner)) = held.iter().find(|(o, _)| same(o)) {
        return Err(PortError::TakenByBerth {
            ip: m.host_ip,
            port: m.host_port,
            proto: m.proto,
            owner: owner.clone(),
        });
    }
    if pending.iter().any(same) {
        return Err(PortError::TakenByBerth {
            ip: m.host_ip,
            port: m.host_port,
            proto: m.proto,
            owner: "(this container)".into(),
        });
    }
    bind_test(m)
}

/// Binds the port for a moment: a listener or bound socket already there makes it fail.
pub fn bind_test(m: &PortMapping) -> Result<(), PortError> {
    let addr = SocketAddrV4::new(m.host_ip, m.host_port);
    let r = match m.proto {
        Proto::Tcp => TcpListener::bind(addr).map(drop),
        Proto::Udp => UdpSocket::bind(addr).map(drop),
    };
    r.map_err(|source| PortError::InUse {
        ip: m.host_ip,
        port: m.host_port,
        proto: m.proto,
        source,
    })
}

/// The kernel's ephemeral port range (`ip_local_port_range`), Docker's pool for random ports.
pub fn ephemeral_range() -> (u16, u16) {
    let s = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut it = s.split_whitespace().filter_map(|x| x.parse().ok());
    match (it.next(), it.next()) {
        (Some(a), Some(b)) if a <= b => (a, b),
        _ => (32768, 60999),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PortSpec {
        s.parse().unwrap()
    }

    #[test]
    fn docker_port_syntax() {
        assert_eq!(
            p("8080:80"),
            PortSpec {
                host_ip: None,
                host_ports: Some((8080, 8080)),
                container_ports: (80, 80),
                proto: Proto::Tcp
            }
        );
        let s = p("127.0.0.1:9000-9001:90-91/udp");
        assert_eq!(s.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(
            (s.host_ports, s.container_ports, s.proto),
            (Some((9000, 9001)), (90, 91), Proto::Udp)
        );
        assert_eq!(p("80").host_ports, None);
        assert_eq!(p("0.0.0.0::80").host_ip, None);
        assert!(matches!(
            "[::1]:8080:80".parse::<PortSpec>(),
            Err(PortError::Ipv6(_))
        ));
        assert!(matches!(
            "80/sctp".parse::<PortSpec>(),
            Err(PortError::Protocol(_))
        ));
        for bad in [
            "", "x", "80/sctp", "1:2:3:4", "0", "90-80", "a:80", "[::]:80",
        ] {
            assert!(bad.parse::<PortSpec>().is_err(), "{bad}");
        }
        assert!(matches!(
            "8000-8002:80-81".parse::<PortSpec>(),
            Err(PortError::RangeMismatch(_))
        ));
    }

    #[test]
    fn claims_refuse_berths_own_ports_and_bound_ports() {
        let d = tempfile::tempdir().unwrap();
        let c = PortClaims::new(d.path());
        let mut rnd = || 0u16;
        // A port bound by someone else on loopback is refused; once dropped, it is claimed. The
        // moment between the drop and the claim is a race with the rest of the machine (another
        // process may bind the port just freed), so a port lost in it is skipped for the next.
        let (busy, m) = (20_000..30_000)
            .filter_map(|port| TcpListener::bind(("127.0.0.1", port)).ok())
            .find_map(|l| {
                let busy = l.local_addr().unwrap().port();
                let spec = [p(&format!("127.0.0.1:{busy}:80"))];
                let e = c.claim(&spec, "c1", &mut rnd).unwrap_err();
                assert!(e.to_string().contains("already in use on the host"), "{e}");
                drop(l);
                match c.claim(&spec, "c1", &mut rnd) {
                    Err(PortError::InUse { .. }) => None,
                    r => Some((busy, r.unwrap())),
                }
            })
            .unwrap();
        assert_eq!(m.len(), 1);
        // 0.0.0.0 on the same port clashes with berth's claim on 127.0.0.1.
        let e = c
            .claim(&[p(&format!("{busy}:81"))], "c2", &mut rnd)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("port 0.0.0.0:{busy}/tcp: already published by container c1")
        );
        // UDP on the same number is another port (not berth's claim; the host may hold it).
        let udp = c.claim(&[p(&format!("127.0.0.1:{busy}:80/udp"))], "c2", &mut rnd);
        assert!(
            !matches!(udp, Err(PortError::TakenByBerth { .. })),
            "{udp:?}"
        );
        c.release(&m);
        assert_eq!(c.all().unwrap().len(), udp.map_or(0, |u| u.len()));
    }
}
