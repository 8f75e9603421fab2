//! The `network` commands: create, list, inspect, remove, prune, connect and disconnect, with
//! Docker's documents and refusals. `host` and `none` are listed as Docker lists them (they are
//! modes, not networks berth makes); the default `bridge` is made when first listed or used.

use super::{valid_alias, Attachment, NetworkMode};
use crate::container::Engine;
use crate::error::{EngineError, Result};
use crate::record::Record;
use berth_net::{CreateRequest, NetworkConfig, NetworkError, DEFAULT_NETWORK};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The networks that are modes, not bridges: (name, driver).
const PREDEFINED: [(&str, &str); 2] = [("host", "host"), ("none", "null")];
/// When `host` and `none` were made: never, as a time clients can parse (Go's zero time; the
/// docker CLI refuses an empty one, and `network ls` failed for it).
const PREDEFINED_CREATED: &str = "0001-01-01T00:00:00Z";

/// A stable id for a predefined network (Docker's are random per daemon; these only need to be
/// unique and hex).
fn predefined_id(name: &str) -> String {
    berth_image::digest::Digest::of_bytes(format!("berth network {name}").as_bytes())
        .hex()
        .to_string()
}

/// One row of `network ls`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkRow {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub driver: String,
    pub scope: String,
    #[serde(rename = "IPv6")]
    pub ipv6: bool,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub created_at: String,
}

/// Docker's `network inspect` document.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkInspect {
    pub name: String,
    pub id: String,
    pub created: String,
    pub scope: String,
    pub driver: String,
    #[serde(rename = "EnableIPv4")]
    pub enable_ipv4: bool,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub config_only: bool,
    pub containers: BTreeMap<String, NetworkContainer>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ipam {
    pub driver: String,
    pub config: Vec<IpamConfig>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfig {
    pub subnet: String,
    #[serde(rename = "IPRange", skip_serializing_if = "String::is_empty")]
    pub ip_range: String,
    pub gateway: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub auxiliary_addresses: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkContainer {
    pub name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub mac_address: String,
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

fn row(c: &NetworkConfig) -> NetworkRow {
    NetworkRow {
        id: c.id.clone(),
        name: c.name.clone(),
        driver: c.driver.clone(),
        scope: "local".into(),
        ipv6: c.subnet6.is_some(),
        internal: c.internal,
        labels: c.labels.clone(),
        created_at: c.created.clone(),
    }
}

fn predefined_row(name: &str, driver: &str) -> NetworkRow {
    NetworkRow {
        id: predefined_id(name),
        name: name.into(),
        driver: driver.into(),
        scope: "local".into(),
        ipv6: false,
        internal: false,
        labels: BTreeMap::new(),
        created_at: PREDEFINED_CREATED.into(),
    }
}

/// User-defined networks are bridges with nftables rules: root's alone.
fn refuse_rootless(network: &str) -> Result<()> {
    if crate::rootless::is_rootless()? {
        return Err(EngineError::msg(format!(
            "network {network:?}: user-defined networks need root (rootless containers use the default network, through pasta)"
        )));
    }
    Ok(())
}

impl Engine {
    /// `network create`. Names that are modes (`host`, `none`, `default`, `container:…`) and
    /// the default network's are refused.
    pub fn create_network(&self, req: &CreateRequest) -> Result<NetworkConfig> {
        refuse_rootless(&req.name)?;
        if req.name == DEFAULT_NETWORK
            || PREDEFINED.iter().any(|(n, _)| *n == req.name)
            || req.name == "default"
        {
            return Err(EngineError::msg(format!(
                "network with name {} already exists (it is predefined)",
                req.name
            )));
        }
        let made = self.networks()?.create(req)?;
        self.emit(crate::events::Event::network(
            "create", &made.id, &made.name,
        ));
        Ok(made)
    }

    /// `network ls`: the default bridge (made if missing, as Docker always has it), the user
    /// networks, `host` and `none`; by name.
    pub fn network_rows(&self) -> Result<Vec<NetworkRow>> {
        let nets = self.networks()?;
        if let Some(note) = nets.default_network()?.note {
            self.warn(note);
        }
        let mut rows: Vec<NetworkRow> = nets.list()?.iter().map(row).collect();
        rows.extend(PREDEFINED.iter().map(|(n, d)| predefined_row(n, d)));
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rows)
    }

    /// `network inspect`: by name, id or unique id prefix.
    pub fn inspect_network(&self, what: &str) -> Result<NetworkInspect> {
        if let Some((name, driver)) = PREDEFINED
            .iter()
            .find(|(n, _)| *n == what || predefined_id(n).starts_with(what) && what.len() >= 3)
        {
            return Ok(self.predefined_inspect(name, driver));
        }
        let nets = self.networks()?;
        if what == DEFAULT_NETWORK {
            nets.default_network()?;
        }
        let cfg = nets.get(what)?;
        let mut containers = BTreeMap::new();
        for ep in nets.endpoints(&cfg.id)? {
            let name = self
                .records
                .load(&ep.container_id)
                .map(|r| r.name)
                .unwrap_or_default();
            let s = ep.settings();
            containers.insert(
                ep.container_id.clone(),
                NetworkContainer {
                    name,
                    endpoint_id: s.endpoint_id,
                    mac_address: s.mac_address,
                    ipv4_address: format!("{}/{}", ep.ip, ep.prefix_len),
                    ipv6_address: match (ep.ipv6, ep.prefix_len6) {
                        (Some(a), Some(p)) => format!("{a}/{p}"),
                        _ => String::new(),
                    },
                },
            );
        }
        let mut config = vec![IpamConfig {
            subnet: cfg.subnet.to_string(),
            ip_range: cfg.ip_range.map(|r| r.to_string()).unwrap_or_default(),
            gateway: cfg.gateway.to_string(),
            auxiliary_addresses: cfg
                .aux_addresses
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect(),
        }];
        if let (Some(s6), Some(g6)) = (cfg.subnet6, cfg.gateway6) {
            config.push(IpamConfig {
                subnet: s6.to_string(),
                ip_range: String::new(),
                gateway: g6.to_string(),
                auxiliary_addresses: BTreeMap::new(),
            });
        }
        let mut options = cfg.options.clone();
        options.insert("com.docker.network.bridge.name".into(), cfg.bridge.clone());
        Ok(NetworkInspect {
            name: cfg.name.clone(),
            id: cfg.id.clone(),
            created: cfg.created.clone(),
            scope: "local".into(),
            driver: cfg.driver.clone(),
            enable_ipv4: true,
            enable_ipv6: cfg.subnet6.is_some(),
            ipam: Ipam {
                driver: "default".into(),
                config,
            },
            internal: cfg.internal,
            attachable: false,
            ingress: false,
            config_only: false,
            containers,
            options,
            labels: cfg.labels.clone(),
        })
    }

    fn predefined_inspect(&self, name: &str, driver: &str) -> NetworkInspect {
        let mode = NetworkMode::parse(name);
        let containers = self
            .records
            .list()
            .into_iter()
            .filter(|r| r.is_active())
            .filter(|r| {
                self.options(r)
                    .is_ok_and(|o| NetworkMode::parse(&o.network) == mode)
            })
            .map(|r| {
                let c = NetworkContainer {
                    name: r.name.clone(),
                    endpoint_id: String::new(),
                    mac_address: String::new(),
                    ipv4_address: String::new(),
                    ipv6_address: String::new(),
                };
                (r.id, c)
            })
            .collect();
        NetworkInspect {
            name: name.into(),
            id: predefined_id(name),
            created: PREDEFINED_CREATED.into(),
            scope: "local".into(),
            driver: driver.into(),
            enable_ipv4: true,
            enable_ipv6: false,
            ipam: Ipam {
                driver: "default".into(),
                config: Vec::new(),
            },
            internal: false,
            attachable: false,
            ingress: false,
            config_only: false,
            containers,
            options: BTreeMap::new(),
            labels: BTreeMap::new(),
        }
    }

    /// `network rm`: refused while a container is on it (running, or stopped but configured),
    /// and for the predefined networks.
    pub fn remove_network(&self, what: &str) -> Result<String> {
        if what == DEFAULT_NETWORK || PREDEFINED.iter().any(|(n, _)| *n == what) {
            return Err(EngineError::msg(format!(
                "{what} is a pre-defined network and cannot be removed"
            )));
        }
        self.reclaim_networks(&berth_net::liveness::endpoint_alive);
        let nets = self.networks()?;
        let cfg = nets.get(what)?;
        let users: Vec<String> = self
            .records
            .list()
            .into_iter()
            .filter(|r| r.networks.iter().any(|a| a.network == cfg.name))
            .map(|r| r.name)
            .collect();
        if !users.is_empty() {
            return Err(EngineError::msg(format!(
                "network {} is in use by container(s) {}: remove them or disconnect them first",
                cfg.name,
                users.join(", ")
            )));
        }
        let gone = nets.remove(&cfg.id)?;
        self.emit(crate::events::Event::network(
            "destroy", &gone.id, &gone.name,
        ));
        Ok(gone.name)
    }

    /// `network prune`: every user network no container uses; their names.
    pub fn prune_networks(&self) -> Result<Vec<String>> {
        if !self.has_networks() {
            return Ok(Vec::new());
        }
        self.reclaim_networks(&berth_net::liveness::endpoint_alive);
        let nets = self.networks()?;
        let used: Vec<String> = self
            .records
            .list()
            .into_iter()
            .flat_map(|r| r.networks.into_iter().map(|a| a.network))
            .collect();
        let mut removed = Vec::new();
        for cfg in nets.list()? {
            if cfg.name == DEFAULT_NETWORK || used.contains(&cfg.name) {
                continue;
            }
            match nets.remove(&cfg.id) {
                Ok(c) => {
                    self.emit(crate::events::Event::network("destroy", &c.id, &c.name));
                    removed.push(c.name)
                }
                Err(NetworkError::InUse { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(removed)
    }

    /// `network connect`: adds the network to the container's record and, if it runs, joins it
    /// now as its next interface.
    pub fn connect_network(
        &self,
        network: &str,
        container: &str,
        aliases: Vec<String>,
        ip: Option<Ipv4Addr>,
    ) -> Result<()> {
        refuse_rootless(network)?;
        let id = self.get(container)?.id;
        let _lock = self.records.lock(&id)?;
        let mut rec = self.records.load(&id)?;
        let o = self.options(&rec)?;
        if !matches!(NetworkMode::parse(&o.network), NetworkMode::Bridge(_)) {
            return Err(EngineError::msg(format!(
                "container {} shares the network of {:?}: it cannot be connected to another network",
                rec.name, o.network
            )));
        }
        let nets = self.networks()?;
        let name = if network == DEFAULT_NETWORK {
            nets.default_network()?.config.name
        } else {
            nets.get(network)?.name
        };
        if !aliases.is_empty() && name == DEFAULT_NETWORK {
            return Err(EngineError::msg(
                "network-scoped aliases are only supported for user-defined networks",
            ));
        }
        if let Some(a) = aliases.iter().find(|a| !valid_alias(a)) {
            return Err(EngineError::msg(format!("invalid network alias {a:?}")));
        }
        if rec.networks.iter().any(|a| a.network == name) {
            return Err(EngineError::msg(format!(
                "endpoint with name {} already exists in network {name}",
                rec.name
            )));
        }
        let a = self.attachment(&name, aliases, ip)?;
        if rec.state.status == "running" || rec.state.status == "paused" {
            let ifname = next_ifname(&self.endpoints(&rec));
            self.attach_one(nets, &rec, &a, rec.state.pid, &ifname, &[])?;
        }
        rec.networks.push(a);
        self.records.save(&rec)?;
        self.emit(
            crate::events::Event::network("connect", &name, &name).attr("container", &rec.id),
        );
        Ok(())
    }

    /// `network disconnect`: leaves the network now if the container runs, and drops it from
    /// the record.
    pub fn disconnect_network(&self, network: &str, container: &str) -> Result<()> {
        let id = self.get(container)?.id;
        let _lock = self.records.lock(&id)?;
        let mut rec: Record = self.records.load(&id)?;
        let nets = self.networks()?;
        let name = match nets.get(network) {
            Ok(c) => c.name,
            // A network removed since: still dropped from the record.
            Err(NetworkError::NotFound(_)) => network.to_string(),
            Err(e) => return Err(e.into()),
        };
        let Some(i) = rec.networks.iter().position(|a| a.network == name) else {
            return Err(EngineError::msg(format!(
                "container {} is not connected to network {network}",
                rec.name
            )));
        };
        if nets.get(&name).is_ok() {
            nets.detach(&name, &rec.id)?;
        }
        let _gone: Attachment = rec.networks.remove(i);
        self.records.save(&rec)?;
        self.emit(
            crate::events::Event::network("disconnect", &name, &name).attr("container", &rec.id),
        );
        Ok(())
    }
}

/// The first `ethN` no endpoint has.
fn next_ifname(endpoints: &[berth_net::Endpoint]) -> String {
    (0..)
        .map(|i| format!("eth{i}"))
        .find(|n| endpoints.iter().all(|ep| &ep.ifname != n))
        .expect("an unused name")
}
