//! A container's networks over its life: the namespace its spec names, the attachments made
//! between the runtime's create and start (so the program finds its interfaces, addresses and
//! published ports from its first instruction), `/etc/hosts` and `/etc/resolv.conf` rewritten in
//! place once the addresses are known, and everything undone when it ends or is removed. What a
//! killed berth left is reclaimed by the next listing, judged by the container init's liveness.

use super::{addresses, host_resolv_conf, usermode, Attachment, NetworkMode};
use crate::container::Engine;
use crate::error::{EngineError, Result};
use crate::ocispec::namespaces::Source;
use crate::options::RunOptions;
use crate::record::Record;
use berth_net::endpoint::EndpointError;
use berth_net::ipam::IpamError;
use berth_net::ports::PortError;
use berth_net::{
    AttachRequest, DnsSettings, Endpoint, Networks, PortMapping, PortSpec, DEFAULT_NETWORK,
};
use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

/// The standard entries of a container's /etc/hosts when it has no address of its own.
const LOOPBACK_HOSTNAME: &str = "127.0.1.1";

impl Engine {
    /// The network namespace a starting container gets. `container:NAME` needs NAME running.
    pub(crate) fn net_namespace(&self, rec: &Record, o: &RunOptions) -> Result<Source> {
        Ok(match NetworkMode::parse(&o.network) {
            NetworkMode::Host => Source::Host,
            // Rootless: the namespace pasta connects, made just before.
            NetworkMode::Bridge(_) if self.user_mode(o)? => Source::Join(self.pasta(&rec.id).netns),
            NetworkMode::Container(other) => {
                let (_, pid) = self.sharing_target(&other)?;
                Source::Join(PathBuf::from(format!("/proc/{pid}/ns/net")))
            }
            NetworkMode::Bridge(_) | NetworkMode::None => Source::New,
        })
    }

    /// The running container whose namespace `--network container:NAME` joins, and its pid.
    fn sharing_target(&self, what: &str) -> Result<(Record, i32)> {
        let rec = self.get(what)?;
        if rec.state.status != "running" || rec.state.pid <= 0 {
            return Err(EngineError::msg(format!(
                "cannot join network of a non running container: {what}"
            )));
        }
        let pid = rec.state.pid;
        Ok((rec, pid))
    }

    /// Joins the container whose init is `pid` to every network its record lists. On failure
    /// whatever was joined is left again.
    pub(crate) fn attach_networks(&self, rec: &Record, pid: i32) -> Result<Vec<Endpoint>> {
        if rec.networks.is_empty() {
            return Ok(Vec::new());
        }
        let nets = self.networks()?;
        let mut done: Vec<Endpoint> = Vec::new();
        for (i, a) in rec.networks.iter().enumerate() {
            let ports = if i == 0 { rec.publish.as_slice() } else { &[] };
            match self.attach_one(nets, rec, a, pid, &format!("eth{i}"), ports) {
                Ok(ep) => done.push(ep),
                Err(e) => {
                    for ep in &done {
                        let _ = nets.detach(&ep.network_id, &rec.id);
                    }
                    return Err(e);
                }
            }
        }
        Ok(done)
    }

    /// Joins one network as `ifname`. A conflict that a dead container's leftovers may explain
    /// (a port, an address, an old endpoint) is retried once after reclaiming them.
    pub(crate) fn attach_one(
        &self,
        nets: &Networks,
        rec: &Record,
        a: &Attachment,
        pid: i32,
        ifname: &str,
        publish: &[String],
    ) -> Result<Endpoint> {
        if a.network == DEFAULT_NETWORK {
            if let Some(note) = nets.default_network()?.note {
                self.warn(note);
            }
        }
        let ports = publish
            .iter()
            .map(|p| p.parse::<PortSpec>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(EngineError::other)?;
        let mut names = vec![rec.name.clone()];
        names.extend(a.aliases.iter().cloned());
        names.push(rec.id[..12].to_string());
        let req = AttachRequest {
            network: a.network.clone(),
            container_id: rec.id.clone(),
            liveness: berth_net::liveness::process_key(pid),
            netns: PathBuf::from(format!("/proc/{pid}/ns/net")),
            ifname: ifname.into(),
            names,
            ip: a.ip,
            ports,
            mac: a.mac.as_deref().map(addresses::parse_mac).transpose()?,
            ip6: a.ip6,
            link_local: a
                .link_local
                .iter()
                .map(|ip| addresses::link_local_net(*ip))
                .collect::<Result<_>>()?,
        };
        let attached = match nets.attach(&req) {
            Err(e) if leftovers_may_explain(&e) => {
                // Whatever the reclaim could not free, the retried attach reports.
                let _ = nets.reclaim(&berth_net::liveness::endpoint_alive);
                nets.attach(&req)
            }
            r => r,
        };
        attached.map_err(|e| EngineError::from(e).context(format!("network {}", a.network)))
    }

    /// Rootless: makes the starting container's network namespace and connects it through
    /// pasta, its `-p` ports checked free first (before the container is made), its gateway
    /// mapped to the host only for an `--add-host NAME:host-gateway`. Nothing for other modes.
    pub(crate) fn connect_user_mode(&self, rec: &Record, o: &RunOptions) -> Result<()> {
        if !self.user_mode(o)? {
            return Ok(());
        }
        let ports = usermode::resolve_ports(&rec.publish)?;
        let gateway = usermode::Gateway::for_add_hosts(&o.add_hosts);
        self.pasta(&rec.id).start(&ports, gateway)?;
        berth_runtime::trace("engine: pasta connected");
        Ok(())
    }

    /// Ends what `connect_user_mode` made (nothing if it made nothing).
    pub(crate) fn disconnect_user_mode(&self, id: &str) {
        self.pasta(id).stop();
    }

    /// Where container `id`'s pasta is recorded: its directory, and its namespace's bind mount
    /// under the runroot.
    pub(crate) fn pasta(&self, id: &str) -> usermode::Pasta {
        usermode::Pasta {
            dir: self.records.dir(id),
            netns: self.runroot.join("netns").join(id),
        }
    }

    /// Whether the container is rootless and on the default network (connected by pasta).
    fn user_mode(&self, o: &RunOptions) -> Result<bool> {
        Ok(NetworkMode::parse(&o.network).is_user_mode() && crate::rootless::is_rootless()?)
    }

    /// The ports a running container publishes: its endpoints' (root), or its pasta's.
    pub fn published_ports(&self, rec: &Record) -> Vec<PortMapping> {
        self.published_through(rec, &self.endpoints(rec))
    }

    /// `published_ports` with the container's endpoints already read (a listing's).
    pub(crate) fn published_through(
        &self,
        rec: &Record,
        endpoints: &[Endpoint],
    ) -> Vec<PortMapping> {
        if !rec.networks.is_empty() {
            return endpoints.iter().flat_map(|e| e.ports.clone()).collect();
        }
        if !rec.is_active() {
            return Vec::new();
        }
        self.pasta(&rec.id).published()
    }

    /// Leaves every network the container is on (each step tolerates its part being gone).
    pub(crate) fn detach_networks(&self, rec: &Record) {
        self.disconnect_user_mode(&rec.id);
        if rec.networks.is_empty() {
            return;
        }
        let Ok(nets) = self.networks() else { return };
        for a in &rec.networks {
            let _ = nets.detach(&a.network, &rec.id);
        }
    }

    /// Leaves every network of a container whose processes are all gone. Its network namespace
    /// dies with them, and the kernel removes the veths with it, unless another running container
    /// shares it (`--network container:`): then they are deleted here, as Docker does.
    pub(crate) fn detach_networks_exited(&self, rec: &Record) {
        self.disconnect_user_mode(&rec.id);
        if rec.networks.is_empty() {
            return;
        }
        if self.netns_shared(rec) {
            return self.detach_networks(rec);
        }
        let Ok(nets) = self.networks() else { return };
        for a in &rec.networks {
            // Best effort at the container's end: what a failure leaves (a lease, a port claim)
            // is reclaimed by the next listing, which judges it by the init's liveness.
            let _ = nets.detach_exited(&a.network, &rec.id);
        }
    }

    /// Whether a running container joined `rec`'s network namespace (`--network container:X`).
    /// Only containers the runtime still holds are read (its state directory lists them), not
    /// every record of the store: this runs at every bridge container's end. An unreadable
    /// runtime root answers yes, which only means the veths are deleted here.
    fn netns_shared(&self, rec: &Record) -> bool {
        let Ok(live) = std::fs::read_dir(&self.runtime_root) else {
            return true;
        };
        live.flatten().any(|e| {
            let id = e.file_name();
            let Some(id) = id.to_str().filter(|id| *id != rec.id) else {
                return false;
            };
            self.records.load(id).is_ok_and(|o| {
                o.is_active()
                    && o.host_config["NetworkMode"]
                        .as_str()
                        .and_then(|m| m.strip_prefix("container:"))
                        .is_some_and(|t| t == rec.name || (t.len() >= 3 && rec.id.starts_with(t)))
            })
        })
    }

    /// Frees what containers that are gone (as `is_alive` judges their endpoints) still hold on
    /// any network: run by every listing. Returns the endpoints kept, or `None` when the
    /// reclaim failed: it is best effort (the next listing tries again), and the caller then
    /// reads a container's endpoints itself.
    pub(crate) fn reclaim_networks(
        &self,
        is_alive: &dyn Fn(&Endpoint) -> bool,
    ) -> Option<Vec<Endpoint>> {
        if !self.has_networks() {
            return Some(Vec::new());
        }
        match self.networks().map(|nets| nets.reclaim(is_alive)) {
            Ok(Ok(report)) => Some(report.live),
            _ => None,
        }
    }

    /// A running container's endpoints, in its record's order.
    pub fn endpoints(&self, rec: &Record) -> Vec<Endpoint> {
        if rec.networks.is_empty() || !rec.is_active() {
            return Vec::new();
        }
        let Ok(nets) = self.networks() else {
            return Vec::new();
        };
        rec.networks
            .iter()
            .filter_map(|a| nets.endpoint(&a.network, &rec.id).ok().flatten())
            .collect()
    }

    /// Writes the container's `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` (in place:
    /// once the container runs they are bind mounts of these very files).
    pub(crate) fn write_etc_files(
        &self,
        rec: &Record,
        o: &RunOptions,
        endpoints: &[Endpoint],
    ) -> Result<()> {
        let dir = self.records.dir(&rec.id);
        let (hosts, resolv) = match NetworkMode::parse(&o.network) {
            NetworkMode::Container(other) => {
                let (target, _) = self.sharing_target(&other)?;
                let from = self.records.dir(&target.id);
                let read = |name: &str| {
                    fs::read_to_string(from.join(name))
                        .map_err(|e| EngineError::io(from.join(name).display(), e))
                };
                (read("hosts")?, read("resolv.conf")?)
            }
            NetworkMode::Host => host_files(o)?,
            NetworkMode::Bridge(_) if self.user_mode(o)? => {
                let pasta = self.pasta(&rec.id).connection()?;
                let host_gateway = pasta.and_then(|c| c.host_gateway);
                let forwarder = Some(usermode::DNS_FORWARDER);
                bridged_files(rec, o, endpoints, forwarder, host_gateway)?
            }
            NetworkMode::Bridge(_) | NetworkMode::None => {
                bridged_files(rec, o, endpoints, None, None)?
            }
        };
        for (name, text) in [
            ("hostname", format!("{}\n", rec.hostname)),
            ("hosts", hosts),
            ("resolv.conf", resolv),
        ] {
            let p = dir.join(name);
            fs::write(&p, text).map_err(|e| EngineError::io(p.display(), e))?;
            // Its root's, as with Docker: in a user namespace that is the id root maps to.
            if let Some(map) = &rec.idmap {
                let owner = map.host_uid(0).zip(map.host_gid(0));
                let (uid, gid) =
                    owner.ok_or_else(|| EngineError::msg("the id map does not map root"))?;
                std::os::unix::fs::chown(&p, Some(uid), Some(gid))
                    .map_err(|e| EngineError::io(p.display(), e))?;
            }
        }
        Ok(())
    }
}

/// Whether an attach failure may be a dead container's leftovers.
fn leftovers_may_explain(e: &EndpointError) -> bool {
    matches!(
        e,
        EndpointError::Ports(PortError::TakenByBerth { .. })
            | EndpointError::Ipam(IpamError::Taken { .. } | IpamError::Exhausted { .. })
            | EndpointError::AlreadyAttached { .. }
    )
}

fn dns_settings(o: &RunOptions) -> DnsSettings {
    DnsSettings {
        servers: o.dns.clone(),
        search: o.dns_search.clone(),
        options: o.dns_options.clone(),
    }
}

/// On the host's stack: the host's /etc/hosts with `--add-host`s, the host's resolv.conf (its
/// loopback resolvers answer here) unless `--dns*` replace parts of it.
fn host_files(o: &RunOptions) -> Result<(String, String)> {
    let read = |p: &Path| fs::read_to_string(p).unwrap_or_default();
    let mut hosts = read(Path::new("/etc/hosts"));
    if !hosts.is_empty() && !hosts.ends_with('\n') {
        hosts.push('\n');
    }
    // Only the --add-host lines: the standard entries are the host's own.
    let standard = berth_net::hosts(None, &[], None).map_err(EngineError::other)?;
    let with_extra = berth_net::hosts(None, &o.add_hosts, None).map_err(EngineError::other)?;
    hosts += with_extra.strip_prefix(&standard).unwrap_or_default();
    let host_resolv = read(&host_resolv_conf());
    let s = dns_settings(o);
    let resolv = if s.servers.is_empty() && s.search.is_empty() && s.options.is_empty() {
        host_resolv
    } else {
        berth_net::resolv_conf(&host_resolv, None, &s)
    };
    Ok((hosts, resolv))
}

/// In a namespace of its own: the container's first address (or a loopback one) with its
/// hostname, `--add-host`s (`host-gateway` is the first network's gateway, or the address pasta
/// maps to the host, `host_gateway`), and the network's resolver (or pasta's forwarder,
/// `forwarder`) or the host's reachable ones.
fn bridged_files(
    rec: &Record,
    o: &RunOptions,
    endpoints: &[Endpoint],
    forwarder: Option<Ipv4Addr>,
    host_gateway: Option<Ipv4Addr>,
) -> Result<(String, String)> {
    let first = endpoints.first();
    let own_ip: IpAddr = match first {
        Some(ep) => ep.ip.into(),
        None => LOOPBACK_HOSTNAME.parse().expect("literal"),
    };
    let names = [rec.hostname.clone()];
    let hosts = berth_net::hosts(
        Some((own_ip, &names)),
        &o.add_hosts,
        first.map(|ep| ep.gateway).or(host_gateway),
    );
    // Before the first network is joined there is no gateway yet: `host-gateway` is written
    // once it is known.
    let hosts = match hosts {
        Err(berth_net::files::FilesError::NoGateway(_)) if !rec.networks.is_empty() => {
            berth_net::hosts(Some((own_ip, &names)), &[], None).map_err(EngineError::other)?
        }
        r => r.map_err(EngineError::other)?,
    };
    let host_resolv = fs::read_to_string(host_resolv_conf()).unwrap_or_default();
    let resolv = berth_net::resolv_conf(
        &host_resolv,
        first.and_then(|ep| ep.dns_server).or(forwarder),
        &dns_settings(o),
    );
    Ok((hosts, resolv))
}
