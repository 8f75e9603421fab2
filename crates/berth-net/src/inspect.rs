//! What `inspect` and `explain` show of a container's network: Docker's `NetworkSettings` facts
//! from the endpoint record, and the kernel's view from inside the container's namespace
//! (interfaces, addresses, routes). Reads only.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::endpoint::{Endpoint, EndpointError};
use crate::files::nameservers;
use crate::link::{format_mac, Route};
use crate::netns;
use crate::ports::PortMapping;
use crate::store::Networks;

/// Docker's per-network `NetworkSettings.Networks.NAME` facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointSettings {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub gateway: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: u8,
    pub mac_address: String,
    /// Docker's `null` when there are none.
    pub aliases: Option<Vec<String>>,
    #[serde(rename = "DNSNames")]
    pub dns_names: Vec<String>,
    /// The addresses the user asked for (`--ip`, `--ip6`, `--link-local-ip`); `null` if none.
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<IpamRequest>,
    /// Legacy links and driver options: berth has neither (`null`, as Docker shows them unset).
    pub links: Option<Vec<String>>,
    pub driver_opts: Option<std::collections::BTreeMap<String, String>>,
}

/// Docker's `EndpointIPAMConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpamRequest {
    #[serde(rename = "IPv4Address", skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    #[serde(rename = "IPv6Address", skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    #[serde(rename = "LinkLocalIPs", skip_serializing_if = "Vec::is_empty")]
    pub link_local_ips: Vec<String>,
}

impl Endpoint {
    /// The facts `inspect` shows for this network.
    pub fn settings(&self) -> EndpointSettings {
        EndpointSettings {
            network_id: self.network_id.clone(),
            endpoint_id: format!(
                "{}-{}",
                &self.network_id[..12.min(self.network_id.len())],
                self.host_veth
            ),
            gateway: self.gateway.to_string(),
            ip_address: self.ip.to_string(),
            ip_prefix_len: self.prefix_len,
            ipv6_gateway: self.gateway6.map(|g| g.to_string()).unwrap_or_default(),
            global_ipv6_address: self.ipv6.map(|a| a.to_string()).unwrap_or_default(),
            global_ipv6_prefix_len: self.prefix_len6.unwrap_or(0),
            mac_address: self.mac.clone(),
            aliases: Some(self.names.iter().skip(1).cloned().collect::<Vec<_>>())
                .filter(|a| !a.is_empty()),
            dns_names: self.names.clone(),
            ipam_config: None,
            links: None,
            driver_opts: None,
        }
    }

    /// `Ports` as Docker keys them: `"80/tcp"` → `[(HostIp, HostPort)]`.
    pub fn docker_ports(&self) -> Vec<(String, Vec<(String, String)>)> {
        let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
        for p in &self.ports {
            let key = format!("{}/{}", p.container_port, p.proto);
            let v = (p.host_ip.to_string(), p.host_port.to_string());
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some((_, list)) => list.push(v),
                None => out.push((key, vec![v])),
            }
        }
        out
    }
}

/// One interface as seen inside the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interface {
    pub name: String,
    pub mac: Option<String>,
    pub up: bool,
    pub addresses: Vec<IpNet>,
}

/// `explain`'s network section for one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explain {
    pub network: String,
    pub bridge: String,
    pub host_veth: String,
    pub interfaces: Vec<Interface>,
    /// (destination, gateway, interface name)
    pub routes: Vec<(IpNet, Option<IpAddr>, Option<String>)>,
    pub dns_servers: Vec<IpAddr>,
    pub ports: Vec<PortMapping>,
}

impl Networks {
    /// The kernel's view of an endpoint from inside its namespace.
    pub fn explain(&self, ep: &Endpoint) -> Result<Explain, EndpointError> {
        let ns = netns::open(&ep.netns)?;
        let mut nl = netns::netlink_in(&ns, &ep.netns)?;
        let lerr = |source| EndpointError::Link {
            container: ep.container_id.clone(),
            network: ep.network_name.clone(),
            source,
        };
        let links = nl.links().map_err(lerr)?;
        let addrs = nl.addresses().map_err(lerr)?;
        let mut routes: Vec<Route> = nl.routes(false).map_err(lerr)?;
        routes.extend(nl.routes(true).map_err(lerr)?);
        let name_of = |i: u32| links.iter().find(|l| l.index == i).map(|l| l.name.clone());
        let interfaces = links
            .iter()
            .map(|l| Interface {
                name: l.name.clone(),
                mac: l.mac.filter(|m| m.iter().any(|b| *b != 0)).map(format_mac),
                up: l.up,
                addresses: addrs
                    .iter()
                    .filter(|a| a.index == l.index)
                    .map(|a| a.address)
                    .collect(),
            })
            .collect();
        let dns_servers = match ep.dns_server {
            Some(gw) => vec![IpAddr::V4(gw)],
            None => {
                nameservers(&std::fs::read_to_string(&self.opts.resolv_conf).unwrap_or_default())
                    .into_iter()
                    .filter(|ip| !ip.is_loopback())
                    .collect()
            }
        };
        Ok(Explain {
            network: ep.network_name.clone(),
            bridge: ep.bridge.clone(),
            host_veth: ep.host_veth.clone(),
            interfaces,
            routes: routes
                .into_iter()
                .filter(|r| !r.destination.addr().is_multicast())
                .map(|r| (r.destination, r.gateway, r.oif.and_then(name_of)))
                .collect(),
            dns_servers,
            ports: ep.ports.clone(),
        })
    }
}
