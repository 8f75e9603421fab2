//! Address leases of one network: `<run>/<net>/leases/<ip>`, a symlink naming the owning
//! container. A symlink is made atomically and only once, so an address can never be leased twice
//! even without the network lock the callers hold anyway; the network address, the gateway and
//! the broadcast address (and the network's `--aux-address`es) are never leased. Allocation goes
//! round-robin, inside the `--ip-range` when the network has one, from the last address handed
//! out, so a freed address is not reused at once. It knows nothing of links or rules.

use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("network {network:?}: address {ip} is not in subnet {subnet}")]
    Outside {
        network: String,
        ip: Ipv4Addr,
        subnet: Ipv4Net,
    },
    #[error(
        "network {network:?}: address {ip} is reserved (network, gateway, broadcast or auxiliary)"
    )]
    Reserved { network: String, ip: Ipv4Addr },
    #[error("network {network:?}: address {ip} is already in use by container {owner}")]
    Taken {
        network: String,
        ip: Ipv4Addr,
        owner: String,
    },
    #[error("network {network:?}: no free address left in {subnet}")]
    Exhausted { network: String, subnet: Ipv4Net },
    #[error("network {network:?}: leases {path}: {source}")]
    State {
        network: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub struct Ipam<'a> {
    pub network: &'a str,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub dir: PathBuf,
    /// Where dynamic addresses come from (None: the whole subnet).
    pub range: Option<Ipv4Net>,
    /// Never leased (`--aux-address`).
    pub aux: Vec<Ipv4Addr>,
}

impl Ipam<'_> {
    /// The leases of network `cfg`, whose live state is under `net_run`.
    pub fn of<'a>(cfg: &'a crate::config::NetworkConfig, net_run: &Path) -> Ipam<'a> {
        Ipam {
            range: cfg.ip_range,
            aux: cfg.aux_addresses.values().copied().collect(),
            ..Ipam::new(&cfg.name, cfg.subnet, cfg.gateway, net_run)
        }
    }

    pub fn new<'a>(
        network: &'a str,
        subnet: Ipv4Net,
        gateway: Ipv4Addr,
        net_run: &Path,
    ) -> Ipam<'a> {
        Ipam {
            network,
            subnet,
            gateway,
            dir: net_run.join("leases"),
            range: None,
            aux: Vec::new(),
        }
    }

    fn err(&self, path: PathBuf) -> impl FnOnce(io::Error) -> IpamError + '_ {
        move |source| IpamError::State {
            network: self.network.to_string(),
            path,
            source,
        }
    }

    fn reserved(&self, ip: Ipv4Addr) -> bool {
        ip == self.subnet.network()
            || ip == self.subnet.broadcast()
            || ip == self.gateway
            || self.aux.contains(&ip)
    }

    /// The owner of `ip`'s lease, if leased.
    pub fn owner(&self, ip: Ipv4Addr) -> Option<String> {
        fs::read_link(self.dir.join(ip.to_string()))
            .ok()
            .map(|t| t.to_string_lossy().into_owned())
    }

    /// Every lease: (address, owner).
    pub fn leases(&self) -> Result<Vec<(Ipv4Addr, String)>, IpamError> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.err(self.dir.clone())(e)),
        };
        let mut out = Vec::new();
        for e in rd {
            let e = e.map_err(self.err(self.dir.clone()))?;
            let Ok(ip) = e.file_name().to_string_lossy().parse::<Ipv4Addr>() else {
                continue;
            };
            if let Ok(t) = fs::read_link(e.path()) {
                out.push((ip, t.to_string_lossy().into_owned()));
            }
        }
        Ok(out)
    }

    /// Leases `want` (or the next free address) to `owner`.
    pub fn allocate(&self, owner: &str, want: Option<Ipv4Addr>) -> Result<Ipv4Addr, IpamError> {
        fs::create_dir_all(&self.dir).map_err(self.err(self.dir.clone()))?;
        if let Some(ip) = want {
            if !self.subnet.contains(&ip) {
                return Err(IpamError::Outside {
                    network: self.network.into(),
                    ip,
                    subnet: self.subnet,
                });
            }
            if self.reserved(ip) {
                return Err(IpamError::Reserved {
                    network: self.network.into(),
                    ip,
                });
            }
            return match self.take(ip, owner)? {
                true => Ok(ip),
                false => Err(IpamError::Taken {
                    network: self.network.into(),
                    ip,
                    owner: self.owner(ip).unwrap_or_default(),
                }),
            };
        }
        let (mut first, mut last) = (
            u32::from(self.subnet.network()) + 1,
            u32::from(self.subnet.broadcast()) - 1,
        );
        if let Some(r) = self.range {
            first = first.max(u32::from(r.network()));
            last = last.min(u32::from(r.broadcast()));
        }
        if first > last {
            return Err(IpamError::Exhausted {
                network: self.network.into(),
                subnet: self.subnet,
            });
        }
        let size = last - first + 1;
        let cursor = self.dir.join(".last");
        let start = fs::read_to_string(&cursor)
            .ok()
            .and_then(|s| s.trim().parse::<Ipv4Addr>().ok())
            .map(u32::from)
            .filter(|n| (first..=last).contains(n))
            .map(|n| n + 1 - first)
            .unwrap_or(0);
        for i in 0..size {
            let ip = Ipv4Addr::from(first + (start + i) % size);
            if self.reserved(ip) {
                continue;
            }
            if self.take(ip, owner)? {
                // Overwritten in place (no new file: on a busy ext4 a rename costs milliseconds);
                // a torn cursor only moves where the next search starts.
                let _ = fs::OpenOptions::new()
                    .create(true)
                    .write(true)
                    .truncate(false)
                    .open(&cursor)
                    .and_then(|mut f| {
                        use std::io::Write;
                        f.write_all(format!("{ip:<15}").as_bytes())
                    });
                return Ok(ip);
            }
        }
        Err(IpamError::Exhausted {
            network: self.network.into(),
            subnet: self.subnet,
        })
    }

    /// Makes the lease symlink; `false` if the address is leased already.
    fn take(&self, ip: Ipv4Addr, owner: &str) -> Result<bool, IpamError> {
        let path = self.dir.join(ip.to_string());
        match std::os::unix::fs::symlink(owner, &path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(self.err(path)(e)),
        }
    }

    /// Frees `ip` if `owner` holds it.
    pub fn release(&self, ip: Ipv4Addr, owner: &str) {
        if self.owner(ip).as_deref() == Some(owner) {
            let _ = fs::remove_file(self.dir.join(ip.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_skips_reserved_and_taken_and_goes_round_robin() {
        let d = tempfile::tempdir().unwrap();
        let ipam = Ipam::new(
            "n",
            "10.9.0.0/29".parse().unwrap(),
            "10.9.0.1".parse().unwrap(),
            d.path(),
        );
        assert_eq!(ipam.allocate("a", None).unwrap().to_string(), "10.9.0.2");
        assert_eq!(ipam.allocate("b", None).unwrap().to_string(), "10.9.0.3");
        ipam.release("10.9.0.2".parse().unwrap(), "a");
        // Round-robin: .2 was just freed, .4 comes next.
        assert_eq!(ipam.allocate("c", None).unwrap().to_string(), "10.9.0.4");
        let e = ipam
            .allocate("d", Some("10.9.0.3".parse().unwrap()))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "network \"n\": address 10.9.0.3 is already in use by container b"
        );
        assert!(matches!(
            ipam.allocate("d", Some("10.9.0.1".parse().unwrap())),
            Err(IpamError::Reserved { .. })
        ));
        assert!(matches!(
            ipam.allocate("d", Some("10.9.1.1".parse().unwrap())),
            Err(IpamError::Outside { .. })
        ));
        for _ in 0..3 {
            ipam.allocate("x", None).unwrap(); // .5 .6 .2
        }
        assert!(matches!(
            ipam.allocate("y", None),
            Err(IpamError::Exhausted { .. })
        ));
        // Releasing with the wrong owner frees nothing.
        ipam.release("10.9.0.3".parse().unwrap(), "a");
        assert_eq!(
            ipam.owner("10.9.0.3".parse().unwrap()).as_deref(),
            Some("b")
        );
    }

    #[test]
    fn a_range_bounds_dynamic_leases_and_aux_addresses_are_never_leased() {
        let d = tempfile::tempdir().unwrap();
        let ipam = Ipam {
            range: Some("10.9.0.8/30".parse().unwrap()),
            aux: vec!["10.9.0.9".parse().unwrap()],
            ..Ipam::new(
                "n",
                "10.9.0.0/24".parse().unwrap(),
                "10.9.0.1".parse().unwrap(),
                d.path(),
            )
        };
        let got: Vec<String> = (0..3)
            .map(|i| ipam.allocate(&format!("c{i}"), None).unwrap().to_string())
            .collect();
        assert_eq!(got, ["10.9.0.8", "10.9.0.10", "10.9.0.11"]);
        assert!(matches!(
            ipam.allocate("x", None),
            Err(IpamError::Exhausted { .. })
        ));
        // A static address may be outside the range, never an auxiliary one.
        assert_eq!(
            ipam.allocate("s", Some("10.9.0.50".parse().unwrap()))
                .unwrap()
                .to_string(),
            "10.9.0.50"
        );
        let e = ipam
            .allocate("s", Some("10.9.0.9".parse().unwrap()))
            .unwrap_err();
        assert!(e.to_string().contains("auxiliary"), "{e}");
    }
}
