//! What a user asks of a container (Docker's `run`/`create` flags), parsed and checked before
//! anything is made. Pure data and parsing; nothing here touches the system.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RunOptions {
    pub image: String,
    pub name: Option<String>,
    pub cmd: Vec<String>,
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    pub interactive: bool,
    pub detach: bool,
    pub auto_remove: bool,
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    /// CFS quota in microseconds per 100 ms period (from `--cpus`).
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    pub devices: Vec<String>,
    pub ulimits: Vec<String>,
    pub read_only: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub security_opts: Vec<String>,
    pub init: bool,
    pub restart: String,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u64>,
    /// `--network`: `default`/`bridge`, `none`, `host`, `container:NAME`, or a user network's
    /// name (see `network::NetworkMode`).
    pub network: String,
    /// `--network-alias`: more names for the container on its user network.
    pub network_aliases: Vec<String>,
    /// `--ip`: the container's address on its user network.
    pub ip: Option<std::net::Ipv4Addr>,
    /// `-p`/`--publish` as given (`[IP:][HOSTPORT:]CTRPORT[/PROTO]`, checked at create).
    pub publish: Vec<String>,
    /// `-P`/`--publish-all`: every exposed port to a random host port.
    pub publish_all: bool,
    /// `--expose`: more exposed ports (`PORT[-END][/PROTO]`).
    pub expose: Vec<String>,
    /// `--dns`, `--dns-search`, `--dns-option`.
    pub dns: Vec<std::net::IpAddr>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// `--add-host HOST:IP` (IP may be `host-gateway`).
    pub add_hosts: Vec<String>,
    pub volumes: Vec<String>,
    pub tmpfs: Vec<String>,
    pub mounts: Vec<String>,
    pub log_opts: Vec<String>,
    pub shm_size: Option<i64>,
}

/// Parses Docker's sizes: `64m`, `1g`, `512k`, `100` (bytes), `1.5g`.
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    berth_sys::units::parse_size(s).map_err(|e| e.to_string())
}

/// The restart policy, checked: `no`, `always`, `unless-stopped`, `on-failure[:N]`.
pub fn parse_restart(s: &str) -> Result<(String, Option<u32>), String> {
    match s.split_once(':') {
        None if matches!(s, "" | "no" | "always" | "unless-stopped" | "on-failure") => {
            Ok((if s.is_empty() { "no".into() } else { s.into() }, None))
        }
        Some(("on-failure", n)) => n
            .parse::<u32>()
            .map(|n| ("on-failure".to_string(), Some(n)))
            .map_err(|_| {
                format!("invalid restart policy {s:?}: maximum retry count must be a number")
            }),
        _ => Err(format!(
            "invalid restart policy {s:?}: expected no, always, unless-stopped or on-failure[:N]"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_restart_policies_parse_like_docker() {
        assert_eq!(parse_bytes("64m").unwrap(), 67108864);
        assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("512k").unwrap(), 524288);
        assert_eq!(parse_bytes("100").unwrap(), 100);
        assert!(parse_bytes("lots").is_err());
        assert_eq!(
            parse_restart("on-failure:3").unwrap(),
            ("on-failure".into(), Some(3))
        );
        assert!(parse_restart("sometimes").is_err());
    }
}
