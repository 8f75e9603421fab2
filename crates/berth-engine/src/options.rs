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
    /// `--domainname`: the NIS domain name of the container's own UTS namespace.
    pub domainname: Option<String>,
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
    /// `--cpuset-mems`: the memory nodes the container may use (`0-3`, `0,1`).
    pub cpuset_mems: Option<String>,
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
    /// `--log-driver`: `json-file` (the default, also for ""), `local` (kept as json-file), or
    /// `none` (output discarded, `logs` refused).
    pub log_driver: String,
    /// `--sysctl NAME=VALUE`: namespaced kernel parameters (Docker's allowed set).
    pub sysctls: Vec<String>,
    /// `--group-add`: more groups for the process, by name (the container's /etc/group) or id.
    pub group_add: Vec<String>,
    /// `--ipc`: `private` (the default, also ""), `shareable`, `none`, `host`, `container:NAME`.
    pub ipc: String,
    /// `--pid`: private (""), `host`, `container:NAME`.
    pub pid: String,
    /// `--uts`: private ("") or `host`.
    pub uts: String,
    /// `--userns`: `host` (the default, also "") or `auto`.
    pub userns: String,
    /// `--uidmap CONTAINER_ID:HOST_ID:SIZE` (repeatable).
    pub uidmap: Vec<String>,
    /// `--gidmap CONTAINER_ID:HOST_ID:SIZE` (repeatable; defaults to `--uidmap`'s).
    pub gidmap: Vec<String>,
    /// `--oom-kill-disable`.
    pub oom_kill_disable: bool,
    /// `--oom-score-adj`: the container's processes' `oom_score_adj` (-1000..=1000).
    pub oom_score_adj: i32,
    /// `--memory-reservation`: a soft limit (bytes).
    pub memory_reservation: Option<i64>,
    /// `--cpu-period`/`--cpu-quota` (microseconds), Docker's older form of `--cpus`.
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    /// `--device-cgroup-rule "c 1:3 mr"`.
    pub device_cgroup_rules: Vec<String>,
    /// `--volumes-from CONTAINER[:ro|:rw]`.
    pub volumes_from: Vec<String>,
    /// `--cidfile`: where the container's ID was written (shown by inspect).
    pub cidfile: Option<String>,
    /// `--sig-proxy=false` turns off forwarding signals to a foreground container.
    pub no_sig_proxy: bool,
    /// `-a/--attach`: the streams a foreground run attaches (`stdin`, `stdout`, `stderr`; all
    /// output when empty).
    pub attach: Vec<String>,
    /// `--detach-keys`: the key sequence that leaves an attached terminal (`ctrl-p,ctrl-q`).
    pub detach_keys: Option<String>,
    /// The health check from `--health-*` (over the image's `HEALTHCHECK`), and
    /// `--no-healthcheck`.
    pub health: HealthOptions,
    /// `--cgroup-parent`: the cgroup (a cgroupfs path from each hierarchy's root) the
    /// container's own goes under; "" is the root.
    pub cgroup_parent: String,
    /// `--cgroupns`: `private` (berth's default on v1 and v2, also "") or `host`.
    pub cgroupns: String,
    /// `--cpu-rt-period`/`--cpu-rt-runtime` (microseconds): real-time scheduling budget (v1).
    pub cpu_rt_period: Option<u64>,
    pub cpu_rt_runtime: Option<i64>,
    /// `--blkio-weight-device DEVICE:WEIGHT`.
    pub blkio_weight_device: Vec<String>,
    /// `--device-read-bps`/`--device-write-bps DEVICE:RATE` (RATE a size: `1mb`).
    pub device_read_bps: Vec<String>,
    pub device_write_bps: Vec<String>,
    /// `--device-read-iops`/`--device-write-iops DEVICE:N`.
    pub device_read_iops: Vec<String>,
    pub device_write_iops: Vec<String>,
    /// `--memory-swappiness` 0..=100 (None, or -1 as Docker sends it: the host's).
    pub memory_swappiness: Option<i64>,
    /// `--annotation KEY=VALUE`: OCI annotations in the container's spec.
    pub annotations: BTreeMap<String, String>,
    /// `--mac-address` for the container's end of its first network.
    pub mac_address: Option<String>,
    /// `--ip6`: the container's IPv6 address on its user network (one with an IPv6 subnet).
    pub ip6: Option<std::net::Ipv6Addr>,
    /// `--link-local-ip`: more addresses on its interface (169.254.0.0/16, fe80::/10).
    pub link_local_ips: Vec<std::net::IpAddr>,
}

/// `--health-cmd`, `--health-interval`, `--health-timeout`, `--health-retries`,
/// `--health-start-period`, `--health-start-interval`, `--no-healthcheck`. Durations as Go
/// writes them (`30s`, `1m30s`, `500ms`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct HealthOptions {
    pub cmd: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<u32>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub disable: bool,
}

/// How a container gets one of the namespaces it may share (`--ipc`, `--pid`, `--uts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareMode {
    /// Its own (the default).
    Private,
    /// The host's.
    Host,
    /// Another container's, by name or ID.
    Container(String),
}

impl ShareMode {
    /// `--ipc`: `private`, `shareable`, `none` (all of its own), `host`, `container:NAME`.
    pub fn ipc(s: &str) -> Result<ShareMode, String> {
        ShareMode::parse("--ipc", s, &["private", "shareable", "none"], true)
    }

    /// `--pid`: `host`, `container:NAME`, or its own.
    pub fn pid(s: &str) -> Result<ShareMode, String> {
        ShareMode::parse("--pid", s, &["private"], true)
    }

    /// `--uts`: `host`, or its own.
    pub fn uts(s: &str) -> Result<ShareMode, String> {
        ShareMode::parse("--uts", s, &["private"], false)
    }

    fn parse(flag: &str, s: &str, own: &[&str], container: bool) -> Result<ShareMode, String> {
        match s {
            "" => Ok(ShareMode::Private),
            "host" => Ok(ShareMode::Host),
            s if own.contains(&s) => Ok(ShareMode::Private),
            s => match s.strip_prefix("container:") {
                Some(c) if container && !c.is_empty() => Ok(ShareMode::Container(c.into())),
                _ => Err(format!("invalid {flag} value {s:?}")),
            },
        }
    }
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
        Some(("on-failure", n)) if n.starts_with('-') && n[1..].parse::<u32>().is_ok() => Err(
            format!("invalid restart policy {s:?}: maximum retry count cannot be negative"),
        ),
        Some(("on-failure", n)) => n
            .parse::<u32>()
            .map(|n| ("on-failure".to_string(), Some(n)))
            .map_err(|_| {
                format!("invalid restart policy {s:?}: maximum retry count must be a number")
            }),
        Some(("no" | "always" | "unless-stopped", _)) => Err(format!(
            "invalid restart policy {s:?}: maximum retry count can only be used with 'on-failure'"
        )),
        _ => Err(format!(
            "invalid restart policy {s:?}: expected no, always, unless-stopped or on-failure[:N]"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_modes_parse_per_flag() {
        assert_eq!(ShareMode::ipc("shareable"), Ok(ShareMode::Private));
        assert_eq!(ShareMode::ipc("none"), Ok(ShareMode::Private));
        assert_eq!(ShareMode::ipc("host"), Ok(ShareMode::Host));
        assert_eq!(
            ShareMode::pid("container:db"),
            Ok(ShareMode::Container("db".into()))
        );
        assert!(ShareMode::uts("container:db").is_err());
        assert!(ShareMode::pid("none").is_err());
        assert!(ShareMode::ipc("container:").is_err());
    }

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
        assert!(parse_restart("on-failure:-1")
            .unwrap_err()
            .contains("cannot be negative"));
        assert!(parse_restart("always:2")
            .unwrap_err()
            .contains("only be used with 'on-failure'"));
    }
}
