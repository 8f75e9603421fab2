//! The engine's side of networks: which network a container asked for (`--network` as a
//! type), what its record keeps (the networks it joins, the ports it publishes, the ports it
//! exposes), checked once at create. Joining at each start and leaving at each end is
//! `attach.rs`; the `network` commands are `commands.rs`. The kernel work (bridges, veths,
//! leases, nftables, the resolver) is berth-net's.

mod addresses;
mod attach;
mod commands;
pub mod usermode;

pub use commands::{NetworkInspect, NetworkRow};
pub use usermode::UserModeError;

use crate::container::Engine;
use crate::error::{EngineError, Result};
use crate::options::RunOptions;
use berth_net::{Networks, Options, PortSpec, DEFAULT_NETWORK};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// `--network` as a type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkMode {
    /// A bridge network by name: `bridge` (the default) or a user network.
    Bridge(String),
    /// A namespace with loopback only.
    None,
    /// The host's own stack.
    Host,
    /// Another container's namespace (`container:NAME|ID`).
    Container(String),
}

impl NetworkMode {
    pub fn parse(s: &str) -> NetworkMode {
        match s {
            "" | "default" | DEFAULT_NETWORK => NetworkMode::Bridge(DEFAULT_NETWORK.into()),
            "none" => NetworkMode::None,
            "host" => NetworkMode::Host,
            s => match s.strip_prefix("container:") {
                Some(c) => NetworkMode::Container(c.into()),
                None => NetworkMode::Bridge(s.into()),
            },
        }
    }

    /// Docker's `HostConfig.NetworkMode`.
    pub fn docker_name(&self) -> String {
        match self {
            NetworkMode::Bridge(n) if n == DEFAULT_NETWORK => "bridge".into(),
            NetworkMode::Bridge(n) => n.clone(),
            NetworkMode::None => "none".into(),
            NetworkMode::Host => "host".into(),
            NetworkMode::Container(c) => format!("container:{c}"),
        }
    }

    fn user_network(&self) -> bool {
        matches!(self, NetworkMode::Bridge(n) if n != DEFAULT_NETWORK)
    }

    /// Whether a rootless container in this mode is connected by pasta: the default network
    /// (user networks are root's; `none`, `host` and `container:` need no pasta of their own).
    pub(crate) fn is_user_mode(&self) -> bool {
        matches!(self, NetworkMode::Bridge(n) if n == DEFAULT_NETWORK)
    }
}

/// One network a container joins, as its record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Attachment {
    /// The network's name.
    pub network: String,
    /// `--network-alias` / `network connect --alias`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// `--ip` / `network connect --ip`.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "IPAddress")]
    pub ip: Option<Ipv4Addr>,
    /// `--mac-address` (lower-case, colons), for the container's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// `--ip6`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "IPv6Address"
    )]
    pub ip6: Option<std::net::Ipv6Addr>,
    /// `--link-local-ip`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        rename = "LinkLocalIPs"
    )]
    pub link_local: Vec<std::net::IpAddr>,
}

impl Attachment {
    /// Docker's `IPAMConfig` of this attachment: the addresses asked for, if any.
    pub fn ipam_request(&self) -> Option<berth_net::IpamRequest> {
        if self.ip.is_none() && self.ip6.is_none() && self.link_local.is_empty() {
            return None;
        }
        Some(berth_net::IpamRequest {
            ipv4_address: self.ip.map(|i| i.to_string()),
            ipv6_address: self.ip6.map(|i| i.to_string()),
            link_local_ips: self.link_local.iter().map(|i| i.to_string()).collect(),
        })
    }
}

/// The network part of a new container's record, checked.
pub(crate) struct NetworkPlan {
    /// `container:NAME`'s container (whose hostname the new one takes, as Docker does).
    pub shares_with: Option<crate::record::Record>,
    pub networks: Vec<Attachment>,
    pub publish: Vec<String>,
    pub exposed: Vec<String>,
}

/// An exposed port's key as Docker writes it: `80/tcp`.
pub(crate) fn port_key(spec: &str) -> Result<Vec<String>> {
    let bad = || {
        EngineError::msg(format!(
            "invalid exposed port {spec:?}: expected PORT[-END][/tcp|udp]"
        ))
    };
    let (ports, proto) = match spec.rsplit_once('/') {
        Some((p, proto @ ("tcp" | "udp"))) => (p, proto),
        Some(_) => return Err(bad()),
        None => (spec, "tcp"),
    };
    let (a, b) = ports.split_once('-').unwrap_or((ports, ports));
    let (a, b): (u16, u16) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a == 0 || a > b {
        return Err(bad());
    }
    Ok((a..=b).map(|p| format!("{p}/{proto}")).collect())
}

/// Docker's `HostConfig.PortBindings` for `-p` specs as given (checked at create):
/// `{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}`.
pub fn port_bindings(publish: &[String]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for spec in publish.iter().filter_map(|p| p.parse::<PortSpec>().ok()) {
        let (a, b) = spec.container_ports;
        for (i, port) in (a..=b).enumerate() {
            let host_port = match spec.host_ports {
                Some((ha, hb)) if hb - ha == b - a => (ha + i as u16).to_string(),
                Some((ha, hb)) if ha == hb => ha.to_string(),
                Some((ha, hb)) => format!("{ha}-{hb}"),
                None => String::new(),
            };
            let binding = serde_json::json!({
                "HostIp": spec.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                "HostPort": host_port,
            });
            if let serde_json::Value::Array(list) = out
                .entry(format!("{port}/{}", spec.proto))
                .or_insert_with(|| serde_json::Value::Array(Vec::new()))
            {
                list.push(binding);
            }
        }
    }
    serde_json::Value::Object(out)
}

/// Docker's rule for alias and network names in DNS: letters, digits, `_.-`.
fn valid_alias(a: &str) -> bool {
    !a.is_empty()
        && a.len() <= 253
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

impl Engine {
    /// berth's networks (opened on first use: commands that never touch a network never make
    /// its directories).
    pub fn networks(&self) -> Result<&Networks> {
        if let Some(n) = self.net.get() {
            return Ok(n);
        }
        let n = Networks::open_with(
            &self.root.join("networks"),
            &self.runroot.join("networks"),
            network_options()?,
        )?;
        Ok(self.net.get_or_init(|| n))
    }

    /// Whether any network was ever made in this store (nothing to reclaim otherwise).
    fn has_networks(&self) -> bool {
        self.net.get().is_some() || self.root.join("networks").exists()
    }

    /// Checks a new container's network flags and says what its record keeps. `image_exposed`
    /// is the image's `ExposedPorts` keys.
    pub(crate) fn plan_network(
        &self,
        o: &RunOptions,
        image_exposed: &[String],
    ) -> Result<NetworkPlan> {
        let mode = NetworkMode::parse(&o.network);
        let conflict = |what: &str| {
            Err(EngineError::msg(format!(
                "conflicting options: {what} and the network mode {:?}",
                mode.docker_name()
            )))
        };
        if let NetworkMode::Container(_) = mode {
            if o.hostname.is_some() {
                return conflict("hostname");
            }
            if !o.dns.is_empty() || !o.dns_search.is_empty() || !o.dns_options.is_empty() {
                return conflict("dns");
            }
            if !o.add_hosts.is_empty() {
                return conflict("custom host-to-IP mapping");
            }
            if !o.publish.is_empty() || o.publish_all {
                return conflict("port publishing");
            }
            if !o.expose.is_empty() {
                return conflict("port exposing");
            }
        }
        if !o.network_aliases.is_empty() && !mode.user_network() {
            return Err(EngineError::msg(
                "network-scoped aliases are only supported for user-defined networks",
            ));
        }
        if let Some(a) = o.network_aliases.iter().find(|a| !valid_alias(a)) {
            return Err(EngineError::msg(format!(
                "invalid network alias {a:?}: only [a-zA-Z0-9_.-] are allowed"
            )));
        }
        if o.mac_address.is_some() && !matches!(mode, NetworkMode::Bridge(_)) {
            return conflict_mac();
        }
        if o.ip.is_some() && !mode.user_network() {
            return Err(EngineError::msg(
                "user specified IP address is supported on user defined networks only",
            ));
        }
        // Checked now so a bad one fails the create, not a later start.
        berth_net::hosts(None, &o.add_hosts, Some(Ipv4Addr::UNSPECIFIED))
            .map_err(EngineError::other)?;
        let mut exposed: Vec<String> = Vec::new();
        let mut expose = |key: String| {
            if !exposed.contains(&key) {
                exposed.push(key);
            }
        };
        for p in image_exposed.iter().chain(&o.expose) {
            port_key(p)?.into_iter().for_each(&mut expose);
        }
        let mut publish = Vec::new();
        for p in &o.publish {
            let spec: PortSpec = p.parse().map_err(|e: berth_net::ports::PortError| {
                EngineError::msg(format!("invalid publish spec: {e}"))
            })?;
            let (a, b) = spec.container_ports;
            (a..=b)
                .map(|port| format!("{port}/{}", spec.proto))
                .for_each(&mut expose);
            publish.push(p.clone());
        }
        if o.publish_all {
            publish.extend(exposed.iter().cloned());
        }
        let rootless = crate::rootless::is_rootless()?;
        if rootless && mode.user_network() {
            return Err(EngineError::msg(format!(
                "network {:?}: user-defined networks need root (rootless containers use the default network, through pasta, or none, host, container:NAME)",
                mode.docker_name()
            )));
        }
        let networks = match &mode {
            // Rootless: no bridge, no attachment; pasta connects the namespace at the start.
            NetworkMode::Bridge(_) if rootless => {
                usermode::check_prerequisites()?;
                Vec::new()
            }
            NetworkMode::Bridge(name) => {
                let mut a = self.attachment(name, o.network_aliases.clone(), o.ip)?;
                self.add_addresses(&mut a, o, mode.user_network())?;
                vec![a]
            }
            NetworkMode::Host | NetworkMode::None if !publish.is_empty() => {
                self.warn(format!(
                    "published ports are discarded when using {} network mode",
                    mode.docker_name()
                ));
                publish.clear();
                Vec::new()
            }
            _ => Vec::new(),
        };
        let shares_with = match &mode {
            NetworkMode::Container(other) => Some(self.get(other)?),
            _ => None,
        };
        Ok(NetworkPlan {
            shares_with,
            networks,
            publish,
            exposed,
        })
    }

    /// An attachment to the network `name` (checked to exist, unless it is the default one,
    /// made on first use), with `ip` checked to be in its subnet.
    fn attachment(
        &self,
        name: &str,
        aliases: Vec<String>,
        ip: Option<Ipv4Addr>,
    ) -> Result<Attachment> {
        if name == DEFAULT_NETWORK {
            // Made now if missing, so its note (another subnet than Docker's) reaches the user
            // even when a detached monitor does the attaching.
            if let Some(note) = self.networks()?.default_network()?.note {
                self.warn(note);
            }
            return Ok(Attachment {
                network: name.into(),
                aliases,
                ip,
                ..Attachment::default()
            });
        }
        let cfg = self.networks()?.get(name)?;
        if let Some(ip) = ip {
            if !cfg.subnet.contains(&ip) {
                return Err(EngineError::msg(format!(
                    "invalid --ip {ip}: not in network {:?}'s subnet {}",
                    cfg.name, cfg.subnet
                )));
            }
        }
        Ok(Attachment {
            network: cfg.name,
            aliases,
            ip,
            ..Attachment::default()
        })
    }
}

/// Docker's refusal of `--mac-address` without a bridge network of the container's own.
fn conflict_mac<T>() -> Result<T> {
    Err(EngineError::msg(
        "conflicting options: mac-address and the network mode (host, none, container:)",
    ))
}

/// The host's resolv.conf a container's is made from: systemd-resolved's list of real servers
/// when /etc/resolv.conf points only at its local stub (unreachable from a container).
pub(crate) fn host_resolv_conf() -> PathBuf {
    let etc = PathBuf::from("/etc/resolv.conf");
    let text = std::fs::read_to_string(&etc).unwrap_or_default();
    let servers = berth_net::files::nameservers(&text);
    let resolved = PathBuf::from("/run/systemd/resolve/resolv.conf");
    if !servers.is_empty() && servers.iter().all(|s| s.is_loopback()) && resolved.exists() {
        resolved
    } else {
        etc
    }
}

/// berth's names on the host: its nftables table `berth`, the default bridge `berth0`, user
/// bridges `berth-<id>` (not Docker's `br-<id>`: whose bridge it is shows in `ip link`),
/// host-side veths `bveth<hex>`. `BERTH_NETWORK_PREFIX=P` (1–6 of
/// `[a-z0-9]`) makes them `P`, `P0`, `P-<id>` and `P<hex>`, so several stores (tests) can share
/// a host. Each user network's resolver is this binary's hidden `__dns` command.
fn network_options() -> Result<Options> {
    let mut o = Options {
        bridge_prefix: "berth-".into(),
        veth_prefix: "bveth".into(),
        resolv_conf: host_resolv_conf(),
        dns: std::env::current_exe()
            .ok()
            .map(|program| berth_net::DnsCommand {
                program,
                args: vec![DNS_COMMAND.into()],
            }),
        ..Options::default()
    };
    if let Ok(p) = std::env::var("BERTH_NETWORK_PREFIX") {
        let ok = (1..=6).contains(&p.len())
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !ok {
            return Err(EngineError::msg(format!(
                "BERTH_NETWORK_PREFIX={p:?}: expected 1 to 6 of [a-z0-9]"
            )));
        }
        o.table = p.clone();
        o.default_bridge = format!("{p}0");
        o.bridge_prefix = format!("{p}-");
        o.veth_prefix = p;
    }
    Ok(o)
}

/// The hidden command line of a user network's resolver: `berth __dns CONFIG`.
const DNS_COMMAND: &str = "__dns";

/// Runs a resolver if `argv` is its command line (it forks and serves in the background).
pub fn entry(argv: &[String]) -> Option<i32> {
    if argv.len() != 3 || argv[1] != DNS_COMMAND {
        return None;
    }
    Some(
        match berth_net::dns::serve(std::path::Path::new(&argv[2])) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("berth: {e}");
                1
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_docker_names_them() {
        assert_eq!(
            NetworkMode::parse("default"),
            NetworkMode::Bridge("bridge".into())
        );
        assert_eq!(NetworkMode::parse(""), NetworkMode::Bridge("bridge".into()));
        assert_eq!(NetworkMode::parse("none"), NetworkMode::None);
        assert_eq!(NetworkMode::parse("host"), NetworkMode::Host);
        assert_eq!(
            NetworkMode::parse("container:web"),
            NetworkMode::Container("web".into())
        );
        assert_eq!(
            NetworkMode::parse("mynet"),
            NetworkMode::Bridge("mynet".into())
        );
        assert!(NetworkMode::parse("mynet").user_network());
        assert!(!NetworkMode::parse("bridge").user_network());
    }

    #[test]
    fn exposed_ports_expand_ranges_and_default_to_tcp() {
        assert_eq!(port_key("80").unwrap(), ["80/tcp"]);
        assert_eq!(port_key("53/udp").unwrap(), ["53/udp"]);
        assert_eq!(
            port_key("8000-8002/tcp").unwrap(),
            ["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        for bad in ["", "0", "80/sctp", "90-80", "x", "70000"] {
            assert!(port_key(bad).is_err(), "{bad}");
        }
    }
}
