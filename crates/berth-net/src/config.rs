//! A network's persistent description (`<state>/<id>/config.json`) and the rules a new one must
//! follow: Docker's name syntax, a subnet that overlaps no other network and no host route, a
//! gateway inside it. Pure: it reads no state and changes nothing on the host.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::link::{overlapping_route, overlaps, Route};

/// The one driver there is.
pub const BRIDGE_DRIVER: &str = "bridge";
/// The default network's name, as Docker's.
pub const DEFAULT_NETWORK: &str = "bridge";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkConfig {
    pub name: String,
    /// 64 hex digits.
    pub id: String,
    pub driver: String,
    /// The Linux bridge's name (`berth0`, `br-<id12>`).
    pub bridge: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet6: Option<Ipv6Net>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<std::net::Ipv6Addr>,
    pub internal: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// RFC 3339, UTC.
    pub created: String,
    /// `--ip-range`: addresses are handed out only from here (a static `--ip` may be anywhere
    /// in the subnet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<Ipv4Net>,
    /// `--aux-address NAME=IP`: addresses in the subnet that are never handed out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aux_addresses: BTreeMap<String, Ipv4Addr>,
}

impl NetworkConfig {
    /// Whether containers on it get berth's resolver (user networks) or the host's (`bridge`).
    pub fn has_dns(&self) -> bool {
        self.name != DEFAULT_NETWORK
    }
}

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    /// `None`: the first free private subnet.
    pub subnet: Option<Ipv4Net>,
    /// `None`: the subnet's first address.
    pub gateway: Option<Ipv4Addr>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// `Some`: also give containers IPv6 addresses from this subnet.
    pub subnet6: Option<Ipv6Net>,
    /// `--ip-range`: inside the subnet (which must be given).
    pub ip_range: Option<Ipv4Net>,
    /// `--aux-address NAME=IP`: inside the subnet (which must be given).
    pub aux_addresses: BTreeMap<String, Ipv4Addr>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("network name {0:?}: invalid (allowed: [a-zA-Z0-9][a-zA-Z0-9_.-]*)")]
    BadName(String),
    #[error("network {name:?}: subnet {subnet} overlaps network {other:?}")]
    OverlapsNetwork {
        name: String,
        subnet: IpNet,
        other: String,
    },
    #[error("network {name:?}: subnet {subnet} overlaps the host's route to {route}")]
    OverlapsRoute {
        name: String,
        subnet: IpNet,
        route: IpNet,
    },
    #[error("network {name:?}: gateway {gateway} is not a host address of subnet {subnet}")]
    GatewayOutside {
        name: String,
        gateway: Ipv4Addr,
        subnet: Ipv4Net,
    },
    #[error("network {name:?}: subnet {subnet} is too small (at most /30)")]
    TooSmall { name: String, subnet: IpNet },
    #[error("network {name:?}: no free private subnet left")]
    NoFreeSubnet { name: String },
    #[error("network {name:?}: --{flag} needs the IPv4 --subnet it lies in")]
    NeedsSubnet { name: String, flag: &'static str },
    #[error("network {name:?}: ip range {range} is not inside subnet {subnet}")]
    RangeOutside {
        name: String,
        range: Ipv4Net,
        subnet: Ipv4Net,
    },
    #[error(
        "network {name:?}: auxiliary address {aux}={ip} is not a host address of subnet {subnet}"
    )]
    AuxOutside {
        name: String,
        aux: String,
        ip: Ipv4Addr,
        subnet: Ipv4Net,
    },
}

/// Checks `--ip-range` and `--aux-address` against the subnet they were given with.
pub fn check_range_and_aux(req: &CreateRequest, subnet: Ipv4Net) -> Result<(), ConfigError> {
    let needs = |flag| ConfigError::NeedsSubnet {
        name: req.name.clone(),
        flag,
    };
    if let Some(range) = req.ip_range {
        if req.subnet.is_none() {
            return Err(needs("ip-range"));
        }
        if !subnet.contains(&range) {
            return Err(ConfigError::RangeOutside {
                name: req.name.clone(),
                range,
                subnet,
            });
        }
    }
    if !req.aux_addresses.is_empty() && req.subnet.is_none() {
        return Err(needs("aux-address"));
    }
    for (aux, ip) in &req.aux_addresses {
        if !subnet.contains(ip) || *ip == subnet.network() || *ip == subnet.broadcast() {
            return Err(ConfigError::AuxOutside {
                name: req.name.clone(),
                aux: aux.clone(),
                ip: *ip,
                subnet,
            });
        }
    }
    Ok(())
}

/// Docker's network name rule.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name.len() <= 128
}

/// The pool new networks are taken from when no subnet is given: Docker's 172.17–31.0.0/16, then
/// 192.168.0.0/16 cut into /20s.
pub fn default_pool() -> impl Iterator<Item = Ipv4Net> {
    let b16 = (17u8..=31).map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).unwrap());
    let c20 = (0u8..16).map(|i| Ipv4Net::new(Ipv4Addr::new(192, 168, i * 16, 0), 20).unwrap());
    b16.chain(c20)
}

/// Checks a subnet (v4 or v6) against the other networks and the host's routes.
pub fn check_subnet(
    name: &str,
    subnet: IpNet,
    others: &[NetworkConfig],
    routes: &[Route],
) -> Result<(), ConfigError> {
    if let Some(o) = others.iter().find(|o| {
        overlaps(&subnet, &IpNet::V4(o.subnet))
            || o.subnet6
                .is_some_and(|s6| overlaps(&subnet, &IpNet::V6(s6)))
    }) {
        return Err(ConfigError::OverlapsNetwork {
            name: name.into(),
            subnet,
            other: o.name.clone(),
        });
    }
    if let Some(route) = overlapping_route(&subnet, routes) {
        return Err(ConfigError::OverlapsRoute {
            name: name.into(),
            subnet,
            route,
        });
    }
    Ok(())
}

/// The subnet for a request: the one asked for (checked), or the first free one of the pool.
pub fn choose_subnet(
    req: &CreateRequest,
    others: &[NetworkConfig],
    routes: &[Route],
) -> Result<Ipv4Net, ConfigError> {
    if let Some(s) = req.subnet {
        let s = s.trunc();
        if s.prefix_len() > 30 {
            return Err(ConfigError::TooSmall {
                name: req.name.clone(),
                subnet: IpNet::V4(s),
            });
        }
        check_subnet(&req.name, IpNet::V4(s), others, routes)?;
        return Ok(s);
    }
    default_pool()
        .find(|s| check_subnet(&req.name, IpNet::V4(*s), others, routes).is_ok())
        .ok_or_else(|| ConfigError::NoFreeSubnet {
            name: req.name.clone(),
        })
}

/// The gateway for a subnet: the one asked for, which must be a host address, or the first.
pub fn choose_gateway(
    name: &str,
    subnet: Ipv4Net,
    gateway: Option<Ipv4Addr>,
) -> Result<Ipv4Addr, ConfigError> {
    let first = u32::from(subnet.network()) + 1;
    let Some(g) = gateway else {
        return Ok(Ipv4Addr::from(first));
    };
    let n = u32::from(g);
    if !subnet.contains(&g) || n == u32::from(subnet.network()) || g == subnet.broadcast() {
        return Err(ConfigError::GatewayOutside {
            name: name.into(),
            gateway: g,
            subnet,
        });
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(name: &str, subnet: &str) -> NetworkConfig {
        NetworkConfig {
            name: name.into(),
            id: "0".repeat(64),
            driver: BRIDGE_DRIVER.into(),
            bridge: "br-x".into(),
            subnet: subnet.parse().unwrap(),
            gateway: "10.0.0.1".parse().unwrap(),
            subnet6: None,
            gateway6: None,
            internal: false,
            labels: Default::default(),
            options: Default::default(),
            created: String::new(),
            ip_range: None,
            aux_addresses: Default::default(),
        }
    }

    #[test]
    fn names_follow_docker() {
        assert!(valid_name("front") && valid_name("a.b-c_d") && valid_name("9x"));
        assert!(!valid_name("") && !valid_name("-x") && !valid_name("a b") && !valid_name("a/b"));
    }

    #[test]
    fn overlapping_subnet_names_the_other_network() {
        let others = vec![net("back", "10.1.0.0/16")];
        let req = CreateRequest {
            name: "front".into(),
            subnet: Some("10.1.2.0/24".parse().unwrap()),
            ..Default::default()
        };
        let e = choose_subnet(&req, &others, &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "network \"front\": subnet 10.1.2.0/24 overlaps network \"back\""
        );
    }

    #[test]
    fn pool_skips_used_subnets_and_host_routes() {
        let others = vec![net("bridge", "172.17.0.0/16")];
        let routes = vec![Route {
            destination: "172.18.5.0/24".parse().unwrap(),
            gateway: None,
            oif: None,
        }];
        let req = CreateRequest {
            name: "n".into(),
            ..Default::default()
        };
        assert_eq!(
            choose_subnet(&req, &others, &routes).unwrap().to_string(),
            "172.19.0.0/16"
        );
    }

    #[test]
    fn gateway_must_be_a_host_address_of_the_subnet() {
        let s: Ipv4Net = "10.5.0.0/24".parse().unwrap();
        assert_eq!(
            choose_gateway("n", s, None).unwrap().to_string(),
            "10.5.0.1"
        );
        assert!(choose_gateway("n", s, Some("10.5.0.254".parse().unwrap())).is_ok());
        for bad in ["10.5.0.0", "10.5.0.255", "10.6.0.1"] {
            assert!(
                choose_gateway("n", s, Some(bad.parse().unwrap())).is_err(),
                "{bad}"
            );
        }
    }
}
