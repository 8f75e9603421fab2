//! Containers as Docker lists them (`/containers/json`, `ps`): the summary of each, its status
//! sentence (`Up 3 minutes`, `Exited (0) 2 seconds ago`) and Docker's list filters. Built from
//! records the caller listed (reconciled); changes nothing.

use crate::reconcile::Listing;
use crate::record::Record;
use crate::Engine;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Docker's `container.Summary`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSummary {
    pub id: String,
    pub names: Vec<String>,
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    pub command: String,
    pub created: i64,
    pub ports: Vec<Port>,
    pub labels: BTreeMap<String, String>,
    pub state: String,
    pub status: String,
    pub host_config: SummaryHostConfig,
    pub network_settings: SummaryNetworks,
    pub mounts: Vec<SummaryMount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Port {
    #[serde(rename = "IP", skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    pub private_port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_port: Option<u16>,
    #[serde(rename = "Type")]
    pub kind: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryHostConfig {
    pub network_mode: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryNetworks {
    pub networks: BTreeMap<String, berth_net::EndpointSettings>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryMount {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub source: String,
    pub destination: String,
    pub driver: String,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
}

/// Docker's STATUS: `Up 3 minutes`, `Up 2 hours (Paused)`, `Up 1 minute (healthy)`,
/// `Exited (0) 2 seconds ago`, `Created`.
pub fn status_text(r: &Record) -> String {
    let since = |t: &str| {
        berth_sys::time::parse_rfc3339(t)
            .map(|t| berth_sys::time::human_duration(berth_sys::time::now_secs() - t))
            .unwrap_or_else(|| "N/A".into())
    };
    let health = match r.state.health.as_ref().map(|h| h.status.as_str()) {
        Some("starting") => " (health: starting)",
        Some("healthy") => " (healthy)",
        Some("unhealthy") => " (unhealthy)",
        _ => "",
    };
    let s = &r.state;
    match s.status.as_str() {
        "running" => format!("Up {}{health}", since(&s.started_at)),
        "paused" => format!("Up {} (Paused)", since(&s.started_at)),
        "restarting" => format!("Restarting ({}) {} ago", s.exit_code, since(&s.finished_at)),
        "exited" => format!("Exited ({}) {} ago", s.exit_code, since(&s.finished_at)),
        "created" => "Created".into(),
        other => other.to_string(),
    }
}

/// Docker's container list filters (`ps --filter`, `/containers/json?filters=`), each key
/// matching when any of its values does (every value, for `label`).
#[derive(Debug, Clone, Default)]
pub struct ContainerFilter {
    filters: BTreeMap<String, Vec<String>>,
    /// The `name` values as the regular expressions Docker matches against `/NAME`.
    names: Vec<regex::Regex>,
}

const FILTER_KEYS: [&str; 11] = [
    "id", "name", "label", "status", "exited", "ancestor", "network", "volume", "before", "since",
    "health",
];

impl ContainerFilter {
    pub fn new(filters: BTreeMap<String, Vec<String>>) -> Result<ContainerFilter, String> {
        if let Some(k) = filters.keys().find(|k| !FILTER_KEYS.contains(&k.as_str())) {
            return Err(format!("invalid filter '{k}'"));
        }
        let values = |k: &str| filters.get(k).into_iter().flatten();
        if let Some(s) = values("status").find(|s| {
            !matches!(
                s.as_str(),
                "created" | "restarting" | "running" | "removing" | "paused" | "exited" | "dead"
            )
        }) {
            return Err(format!("invalid filter 'status={s}'"));
        }
        if let Some(h) = values("health")
            .find(|h| !matches!(h.as_str(), "starting" | "healthy" | "unhealthy" | "none"))
        {
            return Err(format!("Unrecognised filter value for health: {h}"));
        }
        let names = values("name")
            .map(|v| regex::Regex::new(v).map_err(|e| format!("invalid filter 'name={v}': {e}")))
            .collect::<Result<_, _>>()?;
        Ok(ContainerFilter { filters, names })
    }

    /// The filters of a command line, each `KEY=VALUE`.
    pub fn from_flags(flags: &[String]) -> Result<ContainerFilter, String> {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in flags {
            let (k, v) = f
                .split_once('=')
                .ok_or_else(|| format!("bad format of filter (expected name=value): {f}"))?;
            map.entry(k.to_string()).or_default().push(v.to_string());
        }
        ContainerFilter::new(map)
    }

    /// Whether a status or exited filter asks for containers that do not run (shown without `all`).
    pub fn names_stopped(&self) -> bool {
        self.filters.contains_key("status") || self.filters.contains_key("exited")
    }

    /// Checks that the containers `before` and `since` name are among `all`.
    pub fn check(&self, all: &[Record]) -> Result<(), String> {
        for v in ["before", "since"]
            .iter()
            .flat_map(|k| self.filters.get(*k).into_iter().flatten())
        {
            if created_of(all, v).is_none() {
                return Err(format!("No such container: {v}"));
            }
        }
        Ok(())
    }

    /// Whether `r` passes; `all` is every listed record (for `before` and `since`).
    pub fn matches(&self, r: &Record, all: &[Record]) -> bool {
        self.filters.iter().all(|(k, values)| {
            let one = |v: &String| match k.as_str() {
                "id" => r.id.starts_with(v.as_str()),
                "label" => crate::filters::label_matches(v, &r.labels),
                "status" => r.state.status == *v,
                "exited" => r.state.status == "exited" && r.state.exit_code.to_string() == *v,
                "ancestor" => r.image == *v || r.image_id.contains(v.as_str()),
                "network" => r.networks.iter().any(|a| a.network == *v),
                "volume" => r
                    .mounts
                    .iter()
                    .any(|m| m.name.as_deref() == Some(v) || m.destination == *v || m.source == *v),
                "health" => {
                    r.state
                        .health
                        .as_ref()
                        .map_or("none", |h| h.status.as_str())
                        == v.as_str()
                }
                "before" => created_of(all, v).is_some_and(|c| r.created < c),
                "since" => created_of(all, v).is_some_and(|c| r.created > c),
                _ => false,
            };
            match k.as_str() {
                // Docker matches a regular expression against the name with its leading slash.
                "name" => {
                    let name = format!("/{}", r.name);
                    self.names.iter().any(|re| re.is_match(&name))
                }
                "label" => values.iter().all(one),
                _ => values.iter().any(one),
            }
        })
    }
}

/// The creation time of the container `what` (an ID prefix or a name) among `all`.
fn created_of(all: &[Record], what: &str) -> Option<String> {
    all.iter()
        .find(|o| o.id.starts_with(what) || o.name == what.trim_start_matches('/'))
        .map(|o| o.created.clone())
}

impl Engine {
    /// A listed container's endpoints: as the listing read them, else read now.
    fn listed_endpoints(&self, listing: &Listing, r: &Record) -> Vec<berth_net::Endpoint> {
        listing.endpoints(r).unwrap_or_else(|| self.endpoints(r))
    }

    /// The ports a listed container publishes.
    pub fn listed_ports(&self, listing: &Listing, r: &Record) -> Vec<berth_net::PortMapping> {
        self.published_through(r, &self.listed_endpoints(listing, r))
    }

    /// Docker's list entry for a listed container; `size` adds the writable layer's size.
    pub fn container_summary(&self, listing: &Listing, r: &Record, size: bool) -> ContainerSummary {
        let endpoints = self.listed_endpoints(listing, r);
        let published = self.published_through(r, &endpoints);
        let mut ports: Vec<Port> = Vec::new();
        for p in published.iter() {
            ports.push(Port {
                ip: Some(p.host_ip.to_string()),
                private_port: p.container_port,
                public_port: Some(p.host_port),
                kind: p.proto.to_string(),
            });
        }
        for key in &r.exposed_ports {
            let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            if !ports
                .iter()
                .any(|p| p.private_port == port && p.kind == proto)
            {
                ports.push(Port {
                    ip: None,
                    private_port: port,
                    public_port: None,
                    kind: proto.into(),
                });
            }
        }
        let settings: HashMap<&str, berth_net::EndpointSettings> = endpoints
            .iter()
            .map(|ep| (ep.network_name.as_str(), ep.settings()))
            .collect();
        let networks = r
            .networks
            .iter()
            .filter_map(|a| {
                settings
                    .get(a.network.as_str())
                    .map(|s| (a.network.clone(), s.clone()))
            })
            .collect();
        let command = std::iter::once(r.path.as_str())
            .chain(r.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        ContainerSummary {
            id: r.id.clone(),
            names: vec![format!("/{}", r.name)],
            image: r.image.clone(),
            image_id: r.image_id.clone(),
            command,
            created: berth_sys::time::parse_rfc3339(&r.created).unwrap_or(0),
            ports,
            labels: r.labels.clone(),
            state: r.state.status.clone(),
            status: status_text(r),
            host_config: SummaryHostConfig {
                network_mode: r.host_config["NetworkMode"]
                    .as_str()
                    .unwrap_or("bridge")
                    .to_string(),
            },
            network_settings: SummaryNetworks { networks },
            mounts: r
                .mounts
                .iter()
                .map(|m| SummaryMount {
                    kind: m.kind.clone(),
                    name: m.name.clone(),
                    source: m.source.clone(),
                    destination: m.destination.clone(),
                    driver: if m.kind == "volume" {
                        "local".into()
                    } else {
                        String::new()
                    },
                    mode: String::new(),
                    rw: m.rw,
                    propagation: String::new(),
                })
                .collect(),
            size_rw: size.then(|| crate::changes::upper_size(self, &r.id)),
            size_root_fs: None,
        }
    }
}
