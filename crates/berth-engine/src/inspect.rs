//! Docker's container inspect document, typed: what `inspect` prints and what the API serves.
//! Built from the record and the snapshot; nothing here changes anything.

use crate::container::Engine;
use crate::record::Record;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInspect {
    pub id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: StateInspect,
    pub image: String,
    pub resolv_conf_path: PathBuf,
    pub hostname_path: PathBuf,
    pub hosts_path: PathBuf,
    pub log_path: PathBuf,
    pub name: String,
    pub restart_count: u32,
    pub driver: String,
    pub platform: String,
    pub mount_label: String,
    pub process_label: String,
    pub app_armor_profile: String,
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    pub host_config: crate::hostconfig::HostConfig,
    pub graph_driver: GraphDriver,
    pub mounts: Vec<MountInspect>,
    pub config: ConfigInspect,
    pub network_settings: NetworkSettings,
}

/// Docker's `NetworkSettings`: the top-level address fields are the default bridge's (empty on
/// other networks, as Docker's), `Ports` has every exposed port (`null` when not published),
/// and `Networks` every network the container is configured for (addresses while it runs).
#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSettings {
    pub bridge: String,
    pub sandbox_key: String,
    pub ports: BTreeMap<String, Option<Vec<PortBinding>>>,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: u8,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    pub mac_address: String,
    pub networks: BTreeMap<String, berth_net::EndpointSettings>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StateInspect {
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::health::Health>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    pub name: String,
    pub data: GraphData,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphData {
    pub lower_dir: String,
    pub upper_dir: PathBuf,
    pub merged_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountInspect {
    #[serde(rename = "Type")]
    pub kind: String,
    pub name: Option<String>,
    pub source: String,
    pub destination: String,
    /// Docker's: a volume's driver (`local`), absent for a bind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Docker's mode string (`ro` when read-only, else empty) and propagation (`rprivate` for a
    /// bind, as berth binds them; empty for a volume).
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigInspect {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub image: String,
    pub working_dir: String,
    pub entrypoint: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub on_build: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<berth_image::manifest::HealthConfig>,
    pub volumes: Option<BTreeMap<String, serde_json::Map<String, Value>>>,
    pub stop_signal: String,
    pub stop_timeout: Option<u64>,
    /// `{"80/tcp": {}}`.
    pub exposed_ports: BTreeMap<String, serde_json::Map<String, Value>>,
}

impl Engine {
    /// The inspect document of a container (reconciled by whoever read `r`).
    pub fn inspect_container(&self, r: &Record) -> ContainerInspect {
        let lowers: Vec<String> = self
            .snapshot_mount(&r.id)
            .map(|m| m.lowers.iter().map(|p| p.display().to_string()).collect())
            .unwrap_or_default();
        let s = &r.state;
        let o = self.options(r).unwrap_or_default();
        let dir = self.records.dir(&r.id);
        let volumes: BTreeMap<String, serde_json::Map<String, Value>> = r
            .mounts
            .iter()
            .filter(|m| m.kind == "volume")
            .map(|m| (m.destination.clone(), serde_json::Map::new()))
            .collect();
        ContainerInspect {
            id: r.id.clone(),
            created: r.created.clone(),
            path: r.path.clone(),
            args: r.args.clone(),
            state: StateInspect {
                status: s.status.clone(),
                // Docker: a paused or restarting container is still running (`Running` true
                // beside `Paused` or `Restarting`).
                running: matches!(s.status.as_str(), "running" | "paused" | "restarting"),
                paused: s.status == "paused",
                restarting: s.status == "restarting",
                oom_killed: s.oom_killed,
                dead: s.status == "dead",
                pid: s.pid,
                exit_code: s.exit_code,
                error: s.error.clone(),
                started_at: s.started_at.clone(),
                finished_at: s.finished_at.clone(),
                health: s.health.clone().or_else(|| {
                    r.health_check.as_ref().map(|_| crate::health::Health {
                        status: "starting".into(),
                        ..Default::default()
                    })
                }),
            },
            image: r.image_id.clone(),
            resolv_conf_path: dir.join("resolv.conf"),
            hostname_path: dir.join("hostname"),
            hosts_path: dir.join("hosts"),
            log_path: if r.log_driver == "none" {
                PathBuf::new()
            } else {
                self.log_path(&r.id)
            },
            name: format!("/{}", r.name),
            restart_count: s.restart_count,
            driver: "overlay2".into(),
            platform: "linux".into(),
            mount_label: String::new(),
            process_label: String::new(),
            app_armor_profile: String::new(),
            exec_ids: None,
            host_config: crate::hostconfig::HostConfig::from_options(&o),
            graph_driver: GraphDriver {
                name: "overlay2".into(),
                data: GraphData {
                    lower_dir: lowers.join(":"),
                    upper_dir: self.upper_dir(&r.id),
                    merged_dir: self.records.dir(&r.id).join("rootfs"),
                },
            },
            mounts: r
                .mounts
                .iter()
                .map(|m| {
                    let bind = m.kind == "bind";
                    MountInspect {
                        kind: m.kind.clone(),
                        name: m.name.clone(),
                        source: m.source.clone(),
                        destination: m.destination.clone(),
                        driver: (m.kind == "volume").then(|| "local".to_string()),
                        mode: if m.rw { String::new() } else { "ro".into() },
                        rw: m.rw,
                        propagation: if bind {
                            "rprivate".into()
                        } else {
                            String::new()
                        },
                    }
                })
                .collect(),
            config: ConfigInspect {
                hostname: r.hostname.clone(),
                domainname: o.domainname.clone().unwrap_or_default(),
                user: r.user.clone(),
                attach_stdin: r.open_stdin && !o.detach,
                attach_stdout: !o.detach,
                attach_stderr: !o.detach,
                tty: r.tty,
                open_stdin: r.open_stdin,
                stdin_once: r.open_stdin && !o.detach,
                env: r.env.clone(),
                cmd: r.config_cmd.clone().unwrap_or_else(|| r.args.clone()),
                image: r.image.clone(),
                working_dir: r.working_dir.clone(),
                entrypoint: r
                    .config_entrypoint
                    .clone()
                    .unwrap_or_else(|| vec![r.path.clone()]),
                labels: r.labels.clone(),
                on_build: None,
                healthcheck: r.health_check.as_ref().map(|h| h.config()),
                volumes: (!volumes.is_empty()).then_some(volumes),
                stop_signal: r.stop_signal.clone(),
                stop_timeout: r.stop_timeout,
                exposed_ports: r
                    .exposed_ports
                    .iter()
                    .map(|p| (p.clone(), serde_json::Map::new()))
                    .collect(),
            },
            network_settings: self.network_settings(r),
        }
    }

    /// The container's `NetworkSettings` (see the type).
    pub fn network_settings(&self, r: &Record) -> NetworkSettings {
        let endpoints = self.endpoints(r);
        let mut ns = NetworkSettings {
            ports: r.exposed_ports.iter().map(|p| (p.clone(), None)).collect(),
            ..NetworkSettings::default()
        };
        if let Some(first) = endpoints.first() {
            ns.sandbox_key = first.netns.display().to_string();
        }
        // The first network's ports (root), or pasta's (rootless): Docker's `80/tcp` keys.
        let published = match endpoints.first() {
            Some(first) => first.ports.clone(),
            None => self.published_ports(r),
        };
        for p in published {
            let key = format!("{}/{}", p.container_port, p.proto);
            let binding = PortBinding {
                host_ip: p.host_ip.to_string(),
                host_port: p.host_port.to_string(),
            };
            match ns.ports.get_mut(&key) {
                Some(Some(list)) => list.push(binding),
                _ => {
                    ns.ports.insert(key, Some(vec![binding]));
                }
            }
        }
        for a in &r.networks {
            let mut s = match endpoints.iter().find(|ep| ep.network_name == a.network) {
                Some(ep) => ep.settings(),
                None => self.unattached_settings(&a.network),
            };
            s.aliases = Some(a.aliases.clone()).filter(|v| !v.is_empty());
            s.ipam_config = a.ipam_request();
            if a.network == berth_net::DEFAULT_NETWORK && !s.ip_address.is_empty() {
                ns.endpoint_id = s.endpoint_id.clone();
                ns.gateway = s.gateway.clone();
                ns.ip_address = s.ip_address.clone();
                ns.ip_prefix_len = s.ip_prefix_len;
                ns.mac_address = s.mac_address.clone();
                ns.global_ipv6_address = s.global_ipv6_address.clone();
                ns.global_ipv6_prefix_len = s.global_ipv6_prefix_len;
                ns.ipv6_gateway = s.ipv6_gateway.clone();
            }
            ns.networks.insert(a.network.clone(), s);
        }
        ns
    }

    /// A configured network's entry while the container is not on it: its id only.
    fn unattached_settings(&self, network: &str) -> berth_net::EndpointSettings {
        let network_id = self
            .networks()
            .ok()
            .and_then(|n| n.get(network).ok())
            .map(|c| c.id)
            .unwrap_or_default();
        berth_net::EndpointSettings {
            network_id,
            endpoint_id: String::new(),
            gateway: String::new(),
            ip_address: String::new(),
            ip_prefix_len: 0,
            ipv6_gateway: String::new(),
            global_ipv6_address: String::new(),
            global_ipv6_prefix_len: 0,
            mac_address: String::new(),
            aliases: None,
            dns_names: Vec::new(),
            ipam_config: None,
            links: None,
            driver_opts: None,
        }
    }
}
