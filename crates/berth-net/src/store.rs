//! The networks: their configs under `<state>/<id>/config.json` (persistent), their live parts
//! under `<run>` (endpoints, leases, resolver, port claims: gone after a reboot), and bringing a
//! network's bridge and berth's table back whenever they are missing. It owns create, list, get,
//! remove and prune; endpoints are `endpoint.rs`'s. It never deletes a bridge or table that is
//! not berth's (the names come from the configs and the options).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::{
    self, ConfigError, CreateRequest, NetworkConfig, BRIDGE_DRIVER, DEFAULT_NETWORK,
};
use crate::dns::DnsCommand;
use crate::firewall::{Firewall, FirewallError};
use crate::link::{gateway_net, mac_for, LinkError, Netlink};
use crate::state::{self, lock, read_json, write_json, Lock};

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("network {0:?}: not found")]
    NotFound(String),
    #[error("network {0:?}: name or id prefix matches several networks")]
    Ambiguous(String),
    #[error("network {0:?}: already exists")]
    Exists(String),
    #[error("network {name:?}: in use by {count} endpoint(s)")]
    InUse { name: String, count: usize },
    #[error("network {0:?}: the default network cannot be removed")]
    Default(String),
    #[error("network {name:?}: {source}")]
    Link {
        name: String,
        #[source]
        source: LinkError,
    },
    #[error("host routes: {0}")]
    Routes(#[source] LinkError),
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    #[error("network state {path}: {source}")]
    State {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("sysctl {path}: {source}")]
    Sysctl {
        path: String,
        #[source]
        source: io::Error,
    },
}

pub(crate) fn state_err(path: &Path) -> impl FnOnce(io::Error) -> NetworkError + '_ {
    move |source| NetworkError::State {
        path: path.to_path_buf(),
        source,
    }
}

/// What the engine chooses once for every call.
#[derive(Debug, Clone)]
pub struct Options {
    /// berth's nftables table (`inet`); tests use their own.
    pub table: String,
    /// The default network's bridge.
    pub default_bridge: String,
    /// The prefix of user networks' bridges (followed by 12 hex digits of the id).
    pub bridge_prefix: String,
    /// The prefix of host-side veth names (followed by 8 random hex digits; 15 bytes at most).
    pub veth_prefix: String,
    /// Where the host's resolvers are read (for containers on `bridge` and as DNS upstreams).
    pub resolv_conf: PathBuf,
    /// How to start a user network's resolver; `None`: user networks get no DNS.
    pub dns: Option<DnsCommand>,
    /// The `nft` binary.
    pub nft: String,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            table: "berth".into(),
            default_bridge: "berth0".into(),
            bridge_prefix: "br-".into(),
            veth_prefix: "veth".into(),
            resolv_conf: "/etc/resolv.conf".into(),
            dns: None,
            nft: "nft".into(),
        }
    }
}

/// What the default network's creation found, for the CLI to say.
#[derive(Debug, Clone)]
pub struct DefaultNetwork {
    pub config: NetworkConfig,
    /// Set when it was made just now on another subnet than Docker's 172.17.0.0/16 (why, in a
    /// sentence).
    pub note: Option<String>,
}

/// berth's networks on this host.
pub struct Networks {
    pub(crate) state: PathBuf,
    pub(crate) run: PathBuf,
    pub(crate) opts: Options,
    pub(crate) fw: Firewall,
}

impl Networks {
    /// Opens (making if needed) the state and run directories, with default options.
    pub fn open(state_dir: &Path, run_dir: &Path) -> Result<Networks, NetworkError> {
        Networks::open_with(state_dir, run_dir, Options::default())
    }

    pub fn open_with(
        state_dir: &Path,
        run_dir: &Path,
        opts: Options,
    ) -> Result<Networks, NetworkError> {
        fs::create_dir_all(state_dir).map_err(state_err(state_dir))?;
        fs::create_dir_all(run_dir).map_err(state_err(run_dir))?;
        let fw = Firewall {
            table: opts.table.clone(),
            nft: opts.nft.clone(),
            runs: Default::default(),
        };
        Ok(Networks {
            state: state_dir.to_path_buf(),
            run: run_dir.to_path_buf(),
            opts,
            fw,
        })
    }

    /// How many times this value has run `nft`.
    pub fn nft_runs(&self) -> u32 {
        self.fw.runs.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    pub(crate) fn net_run(&self, id: &str) -> PathBuf {
        self.run.join(id)
    }

    pub(crate) fn lock_config(&self) -> Result<Lock, NetworkError> {
        let p = self.state.join(".lock");
        lock(&p).map_err(state_err(&p))
    }

    /// The lock of one network's endpoints. Callers re-check that the network exists after
    /// taking it (a removal deletes the file while holding it).
    pub(crate) fn lock_network(&self, id: &str) -> Result<Lock, NetworkError> {
        let p = self.run.join(format!("{id}.lock"));
        lock(&p).map_err(state_err(&p))
    }

    /// Every network, by name.
    pub fn list(&self) -> Result<Vec<NetworkConfig>, NetworkError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.state).map_err(state_err(&self.state))? {
            let e = e.map_err(state_err(&self.state))?;
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let p = e.path().join("config.json");
            if let Some(c) = read_json::<NetworkConfig>(&p).map_err(state_err(&p))? {
                out.push(c);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// A network by exact name, exact id, or unique id prefix.
    pub fn get(&self, what: &str) -> Result<NetworkConfig, NetworkError> {
        let all = self.list()?;
        if let Some(c) = all.iter().find(|c| c.name == what || c.id == what) {
            return Ok(c.clone());
        }
        let mut by_prefix = all
            .into_iter()
            .filter(|c| !what.is_empty() && c.id.starts_with(what));
        match (by_prefix.next(), by_prefix.next()) {
            (Some(c), None) => Ok(c),
            (Some(_), Some(_)) => Err(NetworkError::Ambiguous(what.into())),
            _ => Err(NetworkError::NotFound(what.into())),
        }
    }

    pub(crate) fn host_routes(&self) -> Result<Vec<crate::link::Route>, NetworkError> {
        let mut nl = Netlink::open().map_err(NetworkError::Routes)?;
        let mut routes = nl.routes(false).map_err(NetworkError::Routes)?;
        routes.extend(nl.routes(true).map_err(NetworkError::Routes)?);
        // berth's own bridges have routes too: those subnets are checked against the configs.
        let ours: Vec<String> = self.list()?.into_iter().map(|c| c.bridge).collect();
        let links = nl.links().map_err(NetworkError::Routes)?;
        let our_idx: Vec<u32> = links
            .iter()
            .filter(|l| ours.contains(&l.name))
            .map(|l| l.index)
            .collect();
        routes.retain(|r| r.oif.is_none_or(|i| !our_idx.contains(&i)));
        Ok(routes)
    }

    /// Creates a network (and its bridge). The name `bridge` is the default network's.
    pub fn create(&self, req: &CreateRequest) -> Result<NetworkConfig, NetworkError> {
        let _l = self.lock_config()?;
        self.create_locked(req)
    }

    fn create_locked(&self, req: &CreateRequest) -> Result<NetworkConfig, NetworkError> {
        if !config::valid_name(&req.name) {
            return Err(ConfigError::BadName(req.name.clone()).into());
        }
        let others = self.list()?;
        if others.iter().any(|o| o.name == req.name) {
            return Err(NetworkError::Exists(req.name.clone()));
        }
        let routes = self.host_routes()?;
        let subnet = config::choose_subnet(req, &others, &routes)?;
        let gateway = config::choose_gateway(&req.name, subnet, req.gateway)?;
        config::check_range_and_aux(req, subnet)?;
        if let Some(s6) = req.subnet6 {
            config::check_subnet(&req.name, ipnet::IpNet::V6(s6), &others, &routes)?;
        }
        let id = state::random_hex(32).map_err(state_err(&self.state))?;
        let bridge = if req.name == DEFAULT_NETWORK {
            self.opts.default_bridge.clone()
        } else {
            // Interface names have at most 15 bytes.
            let keep = 15usize
                .saturating_sub(self.opts.bridge_prefix.len())
                .min(12);
            format!("{}{}", self.opts.bridge_prefix, &id[..keep])
        };
        let cfg = NetworkConfig {
            name: req.name.clone(),
            id: id.clone(),
            driver: BRIDGE_DRIVER.into(),
            bridge,
            subnet,
            gateway,
            subnet6: req.subnet6.map(|s| s.trunc()),
            gateway6: req.subnet6.and_then(|s| s.hosts().next()),
            internal: req.internal,
            labels: req.labels.clone(),
            options: req.options.clone(),
            created: state::now_rfc3339(),
            ip_range: req.ip_range.map(|r| r.trunc()),
            aux_addresses: req.aux_addresses.clone(),
        };
        let dir = self.state.join(&id);
        fs::create_dir_all(&dir).map_err(state_err(&dir))?;
        let path = dir.join("config.json");
        write_json(&path, &cfg).map_err(state_err(&path))?;
        let done = self
            .ensure_firewall()
            .and_then(|_| self.firewall_network(&cfg, true))
            .and_then(|_| self.ensure_bridge(&cfg).map(drop));
        if let Err(e) = done {
            let _ = self.teardown(&cfg);
            return Err(e);
        }
        Ok(cfg)
    }

    /// The default network, created on first use: Docker's 172.17.0.0/16 unless a host route
    /// or another network has it, then the first free private subnet.
    pub fn default_network(&self) -> Result<DefaultNetwork, NetworkError> {
        if let Ok(config) = self.get(DEFAULT_NETWORK) {
            return Ok(DefaultNetwork { config, note: None });
        }
        let _l = self.lock_config()?;
        if let Ok(config) = self.get(DEFAULT_NETWORK) {
            return Ok(DefaultNetwork { config, note: None });
        }
        let config = self.create_locked(&CreateRequest {
            name: DEFAULT_NETWORK.into(),
            ..Default::default()
        })?;
        let docker: ipnet::Ipv4Net = "172.17.0.0/16".parse().expect("literal");
        let note = (config.subnet != docker).then(|| {
            format!(
                "default network \"bridge\": 172.17.0.0/16 is in use on this host, using {}",
                config.subnet
            )
        });
        Ok(DefaultNetwork { config, note })
    }

    /// The bridge of `cfg`, made (with its address, up, and the host settings it needs) if
    /// missing, as after a reboot. Returns its index.
    pub fn ensure_bridge(&self, cfg: &NetworkConfig) -> Result<u32, NetworkError> {
        let err = |source| NetworkError::Link {
            name: cfg.name.clone(),
            source,
        };
        let mut nl = Netlink::open().map_err(err)?;
        let link = match nl.link_by_name(&cfg.bridge).map_err(err)? {
            Some(l) if l.up => {
                // An existing bridge still gets this network's gateway (idempotent): one left by
                // another store or made by hand with another address would route nothing here.
                nl.add_address(l.index, gateway_net(cfg.gateway, cfg.subnet), &cfg.bridge)
                    .map_err(err)?;
                return Ok(l.index);
            }
            Some(l) => l,
            None => {
                match nl.add_bridge(&cfg.bridge, mac_for(cfg.gateway)) {
                    Err(e) if e.errno() == Some(libc::EEXIST) => {}
                    r => r.map_err(err)?,
                }
                nl.link_by_name(&cfg.bridge).map_err(err)?.ok_or_else(|| {
                    err(LinkError::Request {
                        what: format!("bridge {:?}", cfg.bridge),
                        source: io::Error::from_raw_os_error(libc::ENODEV),
                    })
                })?
            }
        };
        nl.add_address(
            link.index,
            gateway_net(cfg.gateway, cfg.subnet),
            &cfg.bridge,
        )
        .map_err(err)?;
        if let (Some(s6), Some(g6)) = (cfg.subnet6, cfg.gateway6) {
            let net =
                ipnet::IpNet::V6(ipnet::Ipv6Net::new(g6, s6.prefix_len()).expect("valid prefix"));
            nl.add_address(link.index, net, &cfg.bridge).map_err(err)?;
        }
        // The host's own connections to 127.0.0.1:PORT are DNAT-ed into this bridge: the kernel
        // drops loopback-sourced packets on other interfaces unless route_localnet is set.
        sysctl(&format!("net/ipv4/conf/{}/route_localnet", cfg.bridge), "1")?;
        // A host change: containers' traffic is routed by the host (documented in the README).
        sysctl("net/ipv4/ip_forward", "1")?;
        if cfg.subnet6.is_some() {
            sysctl("net/ipv6/conf/all/forwarding", "1")?;
        }
        nl.set_up(link.index, &cfg.bridge).map_err(err)?;
        Ok(link.index)
    }

    fn firewall_marker(&self) -> PathBuf {
        self.run.join("firewall.synced")
    }

    pub(crate) fn lock_firewall(&self) -> Result<Lock, NetworkError> {
        let p = self.run.join("firewall.lock");
        lock(&p).map_err(state_err(&p))
    }

    /// Loads berth's table unless this boot already did (the marker lives in the run dir).
    pub fn ensure_firewall(&self) -> Result<(), NetworkError> {
        if self.firewall_marker().exists() {
            return Ok(());
        }
        let _l = self.lock_firewall()?;
        if self.firewall_marker().exists() {
            return Ok(());
        }
        self.sync_firewall_locked()
    }

    /// Rebuilds berth's table from the configs and endpoints (the caller holds the firewall lock).
    pub(crate) fn sync_firewall_locked(&self) -> Result<(), NetworkError> {
        let nets = self.list()?;
        let mut published = Vec::new();
        for n in &nets {
            for ep in self.endpoints(&n.name).unwrap_or_default() {
                if !ep.ports.is_empty() {
                    published.push((ep.ip, ep.ports));
                }
            }
        }
        self.fw
            .sync(&nets, published.iter().map(|(ip, p)| (*ip, p.as_slice())))?;
        let m = self.firewall_marker();
        fs::write(&m, b"").map_err(state_err(&m))
    }

    pub(crate) fn firewall_network(
        &self,
        cfg: &NetworkConfig,
        add: bool,
    ) -> Result<(), NetworkError> {
        let _l = self.lock_firewall()?;
        match self.fw.network(cfg, add) {
            Ok(()) => Ok(()),
            // Elements already gone (or the table): rebuild from what the state says.
            Err(_) => self.sync_firewall_locked(),
        }
    }

    /// Removes a user network with no endpoints: its bridge, its rules, its state.
    pub fn remove(&self, what: &str) -> Result<NetworkConfig, NetworkError> {
        let _l = self.lock_config()?;
        let cfg = self.get(what)?;
        if cfg.name == DEFAULT_NETWORK {
            return Err(NetworkError::Default(cfg.name));
        }
        self.remove_locked(&cfg)?;
        Ok(cfg)
    }

    fn remove_locked(&self, cfg: &NetworkConfig) -> Result<(), NetworkError> {
        let _n = self.lock_network(&cfg.id)?;
        let count = self.endpoints(&cfg.id)?.len();
        if count > 0 {
            return Err(NetworkError::InUse {
                name: cfg.name.clone(),
                count,
            });
        }
        self.teardown(cfg)
    }

    /// Deletes what a network has on the host and on disk (no endpoint checks).
    fn teardown(&self, cfg: &NetworkConfig) -> Result<(), NetworkError> {
        crate::dns::Resolver {
            network: &cfg.name,
            dir: self.net_run(&cfg.id).join("dns"),
        }
        .stop();
        let err = |source| NetworkError::Link {
            name: cfg.name.clone(),
            source,
        };
        Netlink::open()
            .and_then(|mut nl| nl.delete_link(&cfg.bridge))
            .map_err(err)?;
        let dir = self.state.join(&cfg.id);
        fs::remove_dir_all(&dir).map_err(state_err(&dir))?;
        let _ = fs::remove_dir_all(self.net_run(&cfg.id));
        let _ = fs::remove_file(self.run.join(format!("{}.lock", cfg.id)));
        if self.list()?.is_empty() {
            // Nothing of berth's is left: neither is its table.
            let _f = self.lock_firewall()?;
            self.fw.delete_table()?;
            let _ = fs::remove_file(self.firewall_marker());
            Ok(())
        } else {
            self.firewall_network(cfg, false)
        }
    }

    /// Removes every user network without endpoints; returns their names.
    pub fn prune(&self) -> Result<Vec<String>, NetworkError> {
        let _l = self.lock_config()?;
        let mut removed = Vec::new();
        for cfg in self.list()? {
            if cfg.name == DEFAULT_NETWORK {
                continue;
            }
            match self.remove_locked(&cfg) {
                Ok(()) => removed.push(cfg.name),
                Err(NetworkError::InUse { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// Removes every network, the default one included, and berth's table (for a reset of the
    /// host, and for tests). Refused while any network has endpoints.
    pub fn remove_all(&self) -> Result<(), NetworkError> {
        let _l = self.lock_config()?;
        for cfg in self.list()? {
            self.remove_locked(&cfg)?;
        }
        let _f = self.lock_firewall()?;
        self.fw.delete_table()?;
        let _ = fs::remove_file(self.firewall_marker());
        Ok(())
    }
}

/// Writes a sysctl under /proc/sys, skipping the write when it already has the value.
pub(crate) fn sysctl(key: &str, value: &str) -> Result<(), NetworkError> {
    let path = format!("/proc/sys/{key}");
    let err = |source| NetworkError::Sysctl {
        path: path.clone(),
        source,
    };
    if fs::read_to_string(&path).map_err(err)?.trim() == value {
        return Ok(());
    }
    fs::write(&path, value).map_err(err)
}
