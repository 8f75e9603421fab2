//! A container on a network: attach (ports checked and claimed, address leased, record written,
//! name published, veth made with its peer configured inside the container's namespace, ports
//! DNAT-ed) and detach (the same, undone). The record `<run>/<net>/endpoints/<container>.json` is
//! written before anything is made on the host and removed last, so whatever a crash leaves is
//! named in a record that `reclaim` reads. It never touches the container's namespace beyond the
//! interface it adds.

use std::fs;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::config::NetworkConfig;
use crate::dns::{self, table, DnsError, Resolver};
use crate::firewall::FirewallError;
use crate::ipam::{Ipam, IpamError};
use crate::link::{format_mac, mac_for, parse_mac, LinkError, Netlink};
use crate::netns::{self, InsideConfig, NetnsError};
use crate::ports::{ephemeral_range, PortClaims, PortError, PortMapping, PortSpec};
use crate::state::{lock, random_bytes, random_hex, read_json, write_json};
use crate::store::{state_err, NetworkError, Networks};

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Ports(#[from] PortError),
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Dns(#[from] DnsError),
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    #[error("container {container}: network {network:?}: {source}")]
    Link {
        container: String,
        network: String,
        #[source]
        source: LinkError,
    },
    #[error("container {container}: already attached to network {network:?}")]
    AlreadyAttached { container: String, network: String },
    #[error("container {container}: network {network:?} is internal: ports cannot be published")]
    InternalPorts { container: String, network: String },
    #[error("container {container}: --ip6 {ip}: network {network:?} has no IPv6 subnet (berth networks are IPv4 unless made with --ipv6 --subnet)")]
    NoIpv6 {
        container: String,
        network: String,
        ip: Ipv6Addr,
    },
    #[error("container {container}: --ip6 {ip}: not a host address of network {network:?}'s subnet {subnet}")]
    Ipv6Outside {
        container: String,
        network: String,
        ip: Ipv6Addr,
        subnet: Ipv6Net,
    },
    #[error("network {network:?}: address {ip} is already in use by container {owner}")]
    Ipv6Taken {
        network: String,
        ip: Ipv6Addr,
        owner: String,
    },
}

/// What `attach` is asked.
#[derive(Debug, Clone, Default)]
pub struct AttachRequest {
    /// Name or id (prefix) of the network.
    pub network: String,
    pub container_id: String,
    /// Handed back to `reclaim`'s `is_alive` (e.g. [`crate::liveness::process_key`]).
    pub liveness: String,
    /// The container's network namespace: `/proc/PID/ns/net` or a bind-mounted file.
    pub netns: PathBuf,
    /// The interface inside (`eth0` for the first network).
    pub ifname: String,
    /// Names the network's resolver answers for this container (name, aliases).
    pub names: Vec<String>,
    /// `--ip`.
    pub ip: Option<Ipv4Addr>,
    pub ports: Vec<PortSpec>,
    /// `--mac-address` for the container's end (None: Docker's 02:42 and the IPv4 address).
    pub mac: Option<[u8; 6]>,
    /// `--ip6` (None: paired with the IPv4 lease on a network with an IPv6 subnet).
    pub ip6: Option<Ipv6Addr>,
    /// `--link-local-ip`s, added to the container's interface beside its addresses.
    pub link_local: Vec<IpNet>,
}

/// One container on one network: what `inspect` shows and what detach and reclaim undo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network_id: String,
    pub network_name: String,
    pub container_id: String,
    pub liveness: String,
    pub netns: PathBuf,
    pub ifname: String,
    pub host_veth: String,
    pub bridge: String,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_len6: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<Ipv6Addr>,
    pub names: Vec<String>,
    pub ports: Vec<PortMapping>,
    /// The network's resolver, for resolv.conf (`None`: the host's resolvers).
    pub dns_server: Option<Ipv4Addr>,
    /// `--link-local-ip`s on the interface.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link_local: Vec<IpNet>,
}

/// The IPv6 address paired with an IPv4 lease: the same host offset in the IPv6 subnet.
pub fn paired_ipv6(subnet: Ipv4Net, ip: Ipv4Addr, subnet6: Ipv6Net) -> Ipv6Addr {
    let offset = u32::from(ip) - u32::from(subnet.network());
    Ipv6Addr::from(u128::from(subnet6.network()) + u128::from(offset))
}

impl Networks {
    fn endpoints_dir(&self, id: &str) -> PathBuf {
        self.net_run(id).join("endpoints")
    }

    pub(crate) fn resolver<'a>(&self, cfg: &'a NetworkConfig) -> Resolver<'a> {
        Resolver {
            network: &cfg.name,
            dir: self.net_run(&cfg.id).join("dns"),
        }
    }

    /// The endpoints of a network (by name or id).
    pub fn endpoints(&self, network: &str) -> Result<Vec<Endpoint>, NetworkError> {
        let cfg = self.get(network)?;
        let dir = self.endpoints_dir(&cfg.id);
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(state_err(&dir)(e)),
        };
        let mut out = Vec::new();
        for e in rd {
            let p = e.map_err(state_err(&dir))?.path();
            if p.extension().is_some_and(|x| x == "json") {
                if let Some(ep) = read_json::<Endpoint>(&p).map_err(state_err(&p))? {
                    out.push(ep);
                }
            }
        }
        Ok(out)
    }

    /// A container's endpoint on a network, if attached.
    pub fn endpoint(
        &self,
        network: &str,
        container_id: &str,
    ) -> Result<Option<Endpoint>, NetworkError> {
        let cfg = self.get(network)?;
        let p = self
            .endpoints_dir(&cfg.id)
            .join(format!("{container_id}.json"));
        read_json(&p).map_err(state_err(&p))
    }

    /// Attaches a container's namespace to a network. Ports are checked before anything is made;
    /// on any failure everything made so far is undone.
    pub fn attach(&self, req: &AttachRequest) -> Result<Endpoint, EndpointError> {
        let cfg = self.get(&req.network)?;
        if cfg.internal && !req.ports.is_empty() {
            return Err(EndpointError::InternalPorts {
                container: req.container_id.clone(),
                network: cfg.name.clone(),
            });
        }
        self.ensure_firewall()?;
        self.ensure_bridge(&cfg)?;
        let claims = PortClaims::new(&self.run);
        let ports_lock = if req.ports.is_empty() {
            None
        } else {
            let p = claims.lock_path();
            Some(lock(&p).map_err(state_err(&p))?)
        };
        let (lo, hi) = ephemeral_range();
        let mut random = || {
            let r = random_bytes(2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .unwrap_or(0);
            lo + r % (hi - lo + 1)
        };
        let ports = claims.claim(&req.ports, &req.container_id, &mut random)?;
        let ep = match self.record_endpoint(&cfg, req, ports.clone()) {
            Ok(ep) => ep,
            Err(e) => {
                claims.release(&ports);
                return Err(e);
            }
        };
        drop(ports_lock);
        match self.plumb(&cfg, &ep) {
            Ok(()) => Ok(ep),
            Err(e) => {
                if let Ok(_l) = self.lock_network(&cfg.id) {
                    let _ = self.teardown_endpoint(&cfg, &ep);
                }
                Err(e)
            }
        }
    }

    /// Under the network lock: the lease, the record, the resolver's entry (and the resolver).
    fn record_endpoint(
        &self,
        cfg: &NetworkConfig,
        req: &AttachRequest,
        ports: Vec<PortMapping>,
    ) -> Result<Endpoint, EndpointError> {
        let _l = self.lock_network(&cfg.id)?;
        let cfg = &self.get(&cfg.id)?; // still there after waiting for the lock?
        let dir = self.endpoints_dir(&cfg.id);
        let path = dir.join(format!("{}.json", req.container_id));
        if path.exists() {
            return Err(EndpointError::AlreadyAttached {
                container: req.container_id.clone(),
                network: cfg.name.clone(),
            });
        }
        fs::create_dir_all(&dir).map_err(state_err(&dir))?;
        let ipam = Ipam::of(cfg, &self.net_run(&cfg.id));
        let ip = ipam.allocate(&req.container_id, req.ip)?;
        let ipv6 = match self.choose_ipv6(cfg, req, ip) {
            Ok(a) => a,
            Err(e) => {
                ipam.release(ip, &req.container_id);
                return Err(e);
            }
        };
        let suffix = random_hex(4).map_err(state_err(&dir))?;
        let use_dns = cfg.has_dns() && self.opts.dns.is_some();
        let ep = Endpoint {
            network_id: cfg.id.clone(),
            network_name: cfg.name.clone(),
            container_id: req.container_id.clone(),
            liveness: req.liveness.clone(),
            netns: req.netns.clone(),
            ifname: if req.ifname.is_empty() {
                "eth0".into()
            } else {
                req.ifname.clone()
            },
            host_veth: format!("{}{suffix}", self.opts.veth_prefix),
            bridge: cfg.bridge.clone(),
            ip,
            prefix_len: cfg.subnet.prefix_len(),
            gateway: cfg.gateway,
            mac: format_mac(req.mac.unwrap_or_else(|| mac_for(ip))),
            ipv6,
            prefix_len6: cfg.subnet6.map(|s6| s6.prefix_len()),
            gateway6: cfg.gateway6,
            names: req.names.iter().map(|n| n.to_ascii_lowercase()).collect(),
            ports,
            dns_server: use_dns.then_some(cfg.gateway),
            link_local: req.link_local.clone(),
        };
        if let Err(e) = write_json(&path, &ep) {
            ipam.release(ip, &req.container_id);
            return Err(state_err(&path)(e).into());
        }
        if use_dns {
            if let Err(e) = self.publish_name(cfg, &ep) {
                let _ = self.teardown_endpoint(cfg, &ep);
                return Err(e);
            }
        }
        Ok(ep)
    }

    /// The endpoint's IPv6 address: `--ip6` (inside the network's IPv6 subnet, never its network
    /// address or gateway), or the one paired with the IPv4 lease; either must be free among the
    /// network's endpoints. The caller holds the network lock.
    fn choose_ipv6(
        &self,
        cfg: &NetworkConfig,
        req: &AttachRequest,
        ip: Ipv4Addr,
    ) -> Result<Option<Ipv6Addr>, EndpointError> {
        let Some(s6) = cfg.subnet6 else {
            return match req.ip6 {
                Some(ip) => Err(EndpointError::NoIpv6 {
                    container: req.container_id.clone(),
                    network: cfg.name.clone(),
                    ip,
                }),
                None => Ok(None),
            };
        };
        let a = match req.ip6 {
            Some(a) if !s6.contains(&a) || a == s6.network() || Some(a) == cfg.gateway6 => {
                return Err(EndpointError::Ipv6Outside {
                    container: req.container_id.clone(),
                    network: cfg.name.clone(),
                    ip: a,
                    subnet: s6,
                })
            }
            Some(a) => a,
            None => paired_ipv6(cfg.subnet, ip, s6),
        };
        let holder = self
            .endpoints(&cfg.id)?
            .into_iter()
            .find(|e| e.ipv6 == Some(a) && e.container_id != req.container_id);
        if let Some(other) = holder {
            return Err(EndpointError::Ipv6Taken {
                network: cfg.name.clone(),
                ip: a,
                owner: other.container_id,
            });
        }
        Ok(Some(a))
    }

    /// Adds the endpoint's names to the network's table and makes sure its resolver runs.
    fn publish_name(&self, cfg: &NetworkConfig, ep: &Endpoint) -> Result<(), EndpointError> {
        let resolver = self.resolver(cfg);
        let tpath = resolver.table_path();
        fs::create_dir_all(&resolver.dir).map_err(state_err(&resolver.dir))?;
        let entry = table::Entry {
            container_id: ep.container_id.clone(),
            ipv4: ep.ip,
            ipv6: ep.ipv6,
            names: ep.names.clone(),
        };
        table::update(&tpath, &ep.container_id, Some(&entry)).map_err(state_err(&tpath))?;
        let cmd = self.opts.dns.as_ref().expect("checked by the caller");
        let scfg = dns::server_config(
            cfg.gateway,
            !cfg.internal,
            dns::upstreams(&self.opts.resolv_conf),
            tpath,
        );
        resolver.ensure(cmd, &scfg)?;
        Ok(())
    }

    /// The veth pair, the inside configuration, the DNAT elements.
    fn plumb(&self, cfg: &NetworkConfig, ep: &Endpoint) -> Result<(), EndpointError> {
        let lerr = |source| EndpointError::Link {
            container: ep.container_id.clone(),
            network: cfg.name.clone(),
            source,
        };
        let ns = netns::open(&ep.netns)?;
        let mut nl = Netlink::open().map_err(lerr)?;
        let bridge = match nl.link_by_name(&cfg.bridge).map_err(lerr)? {
            Some(l) => l.index,
            None => self.ensure_bridge(cfg)?,
        };
        use std::os::fd::AsRawFd;
        nl.add_veth(
            &ep.host_veth,
            bridge,
            &ep.ifname,
            parse_mac(&ep.mac).unwrap_or_else(|| mac_for(ep.ip)),
            ns.as_raw_fd(),
        )
        .map_err(lerr)?;
        let mut inside = netns::netlink_in(&ns, &ep.netns)?;
        let v4 = IpNet::V4(Ipv4Net::new(ep.ip, ep.prefix_len).expect("prefix of the subnet"));
        let v6 = match (ep.ipv6, ep.prefix_len6, ep.gateway6) {
            (Some(a), Some(p), Some(g)) => Some((
                IpNet::V6(Ipv6Net::new(a, p).expect("prefix of the subnet")),
                g.into(),
            )),
            _ => None,
        };
        netns::configure_inside(
            &mut inside,
            &ep.netns,
            &InsideConfig {
                ifname: &ep.ifname,
                address: v4,
                gateway: ep.gateway.into(),
                address6: v6,
                link_local: &ep.link_local,
            },
        )?;
        if !ep.ports.is_empty() {
            let _f = self.lock_firewall()?;
            self.fw.ports(ep.ip, &ep.ports, true)?;
        }
        Ok(())
    }

    /// Detaches a container from a network; `Ok(false)` if it was not attached.
    pub fn detach(&self, network: &str, container_id: &str) -> Result<bool, EndpointError> {
        self.detach_with(network, container_id, Veth::Delete)
    }

    /// Detaches a container whose network namespace is gone with its last process: the kernel
    /// destroys the veth pair with the namespace, so it is not deleted here (a delete would wait
    /// for the namespace's teardown to release the rtnl lock, 10-20 ms per container).
    pub fn detach_exited(&self, network: &str, container_id: &str) -> Result<bool, EndpointError> {
        self.detach_with(network, container_id, Veth::LeftToKernel)
    }

    fn detach_with(
        &self,
        network: &str,
        container_id: &str,
        veth: Veth,
    ) -> Result<bool, EndpointError> {
        let cfg = self.get(network)?;
        let _l = self.lock_network(&cfg.id)?;
        let Some(ep) = self.endpoint(&cfg.id, container_id)? else {
            return Ok(false);
        };
        self.teardown_with(&cfg, &ep, veth)?;
        Ok(true)
    }

    /// Undoes everything an endpoint may have (each step tolerates its part being gone); the
    /// record goes last. The caller holds the network lock.
    pub(crate) fn teardown_endpoint(
        &self,
        cfg: &NetworkConfig,
        ep: &Endpoint,
    ) -> Result<(), EndpointError> {
        self.teardown_with(cfg, ep, Veth::Delete)
    }

    fn teardown_with(
        &self,
        cfg: &NetworkConfig,
        ep: &Endpoint,
        veth: Veth,
    ) -> Result<(), EndpointError> {
        let lerr = |source| EndpointError::Link {
            container: ep.container_id.clone(),
            network: cfg.name.clone(),
            source,
        };
        if veth == Veth::Delete {
            Netlink::open()
                .and_then(|mut nl| nl.delete_link(&ep.host_veth))
                .map_err(lerr)?;
        }
        let mut resync = false;
        if !ep.ports.is_empty() {
            let _f = self.lock_firewall()?;
            // Failing means some element was gone already: rebuild once the record is gone.
            resync = self.fw.ports(ep.ip, &ep.ports, false).is_err();
            PortClaims::new(&self.run).release(&ep.ports);
        }
        let resolver = self.resolver(cfg);
        let tpath = resolver.table_path();
        let left = table::update(&tpath, &ep.container_id, None).map_err(state_err(&tpath))?;
        if left == 0 {
            resolver.stop();
        }
        Ipam::of(cfg, &self.net_run(&cfg.id)).release(ep.ip, &ep.container_id);
        let path = self
            .endpoints_dir(&cfg.id)
            .join(format!("{}.json", ep.container_id));
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(state_err(&path)(e).into()),
            _ => {}
        }
        if resync {
            let _f = self.lock_firewall()?;
            self.sync_firewall_locked()?;
        }
        Ok(())
    }
}

/// What a detach does with the endpoint's veth pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Veth {
    Delete,
    /// Its namespace died with the container: the kernel removes the pair with it.
    LeftToKernel,
}
