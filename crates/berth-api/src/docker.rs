//! Docker's request bodies as typed data: a container's create (`Config` with `HostConfig` and
//! `NetworkingConfig`), update, exec, volume and network requests, registry auth. Every field is
//! optional and a JSON `null` reads as absent (clients send both). Unknown fields are ignored,
//! as Docker ignores them.

use base64::Engine as _;
use berth_image::registry::auth::Credentials;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// A command as a list, or (older clients) one string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Words {
    List(Vec<String>),
    One(String),
}

impl Words {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Words::List(v) => v,
            Words::One(s) => s.split_whitespace().map(str::to_string).collect(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateBody {
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub user: Option<String>,
    pub attach_stdin: Option<bool>,
    pub tty: Option<bool>,
    pub open_stdin: Option<bool>,
    pub stdin_once: Option<bool>,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Words>,
    pub entrypoint: Option<Words>,
    pub image: Option<String>,
    pub volumes: Option<BTreeMap<String, Value>>,
    pub working_dir: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    pub network_disabled: Option<bool>,
    pub mac_address: Option<String>,
    pub healthcheck: Option<Healthcheck>,
    pub host_config: Option<HostConfig>,
    pub networking_config: Option<NetworkingConfig>,
}

/// `Config.Healthcheck`: the test (`["CMD-SHELL", cmd]`, `["CMD", arg…]`, `["NONE"]`, or
/// empty for the image's) and durations in nanoseconds, 0 for the default.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Healthcheck {
    pub test: Option<Vec<String>>,
    pub interval: Option<i64>,
    pub timeout: Option<i64>,
    pub retries: Option<i64>,
    pub start_period: Option<i64>,
    pub start_interval: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    pub binds: Option<Vec<String>>,
    pub log_config: Option<LogConfig>,
    pub network_mode: Option<String>,
    pub port_bindings: Option<BTreeMap<String, Option<Vec<PortBinding>>>>,
    pub auto_remove: Option<bool>,
    pub volumes_from: Option<Vec<String>>,
    pub mounts: Option<Vec<Mount>>,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub dns: Option<Vec<String>>,
    pub dns_options: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub extra_hosts: Option<Vec<String>>,
    pub group_add: Option<Vec<String>>,
    pub ipc_mode: Option<String>,
    pub links: Option<Vec<String>>,
    pub pid_mode: Option<String>,
    pub privileged: Option<bool>,
    pub publish_all_ports: Option<bool>,
    pub readonly_rootfs: Option<bool>,
    pub security_opt: Option<Vec<String>>,
    pub tmpfs: Option<BTreeMap<String, String>>,
    #[serde(rename = "UTSMode")]
    pub uts_mode: Option<String>,
    pub userns_mode: Option<String>,
    pub shm_size: Option<i64>,
    pub sysctls: Option<BTreeMap<String, String>>,
    pub runtime: Option<String>,
    pub cgroup_parent: Option<String>,
    pub cgroupns_mode: Option<String>,
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub resources: Resources,
    pub init: Option<bool>,
    /// Kept wide, so a value out of i32 is refused as out of range rather than as bad JSON.
    pub oom_score_adj: Option<i64>,
    /// `--gpus` (refused by name: berth has no device plugins).
    pub device_requests: Option<Vec<serde_json::Value>>,
    /// `--volume-driver` (refused unless `local`).
    pub volume_driver: Option<String>,
    /// `--storage-opt` (refused: the overlay snapshots have no per-container size).
    pub storage_opt: Option<BTreeMap<String, String>>,
}

/// The resource fields of `HostConfig`, also the body of `update`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Resources {
    pub cpu_shares: Option<i64>,
    pub memory: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub blkio_weight: Option<u16>,
    pub memory_reservation: Option<i64>,
    pub device_cgroup_rules: Option<Vec<String>>,
    pub devices: Option<Vec<Device>>,
    pub memory_swap: Option<i64>,
    pub pids_limit: Option<i64>,
    pub ulimits: Option<Vec<Ulimit>>,
    pub oom_kill_disable: Option<bool>,
    pub restart_policy: Option<RestartPolicy>,
    pub cpu_realtime_period: Option<i64>,
    pub cpu_realtime_runtime: Option<i64>,
    pub memory_swappiness: Option<i64>,
    pub blkio_weight_device: Option<Vec<DeviceRate>>,
    pub blkio_device_read_bps: Option<Vec<DeviceRate>>,
    pub blkio_device_write_bps: Option<Vec<DeviceRate>>,
    #[serde(rename = "BlkioDeviceReadIOps")]
    pub blkio_device_read_iops: Option<Vec<DeviceRate>>,
    #[serde(rename = "BlkioDeviceWriteIOps")]
    pub blkio_device_write_iops: Option<Vec<DeviceRate>>,
}

/// A `BlkioWeightDevice` (`Path`, `Weight`) or throttle device (`Path`, `Rate`) entry.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceRate {
    pub path: Option<String>,
    pub weight: Option<u64>,
    pub rate: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: Option<String>,
    pub config: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    pub host_ip: Option<String>,
    pub host_port: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    pub name: Option<String>,
    pub maximum_retry_count: Option<u32>,
}

impl RestartPolicy {
    /// As `--restart` spells it.
    pub fn flag(&self) -> String {
        match (self.name.as_deref().unwrap_or(""), self.maximum_retry_count) {
            ("", _) => "no".into(),
            ("on-failure", Some(n)) if n > 0 => format!("on-failure:{n}"),
            (name, _) => name.into(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Mount {
    #[serde(rename = "Type")]
    pub kind: Option<String>,
    pub source: Option<String>,
    pub target: Option<String>,
    pub read_only: Option<bool>,
    pub volume_options: Option<VolumeOptions>,
    pub tmpfs_options: Option<TmpfsOptions>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeOptions {
    pub no_copy: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TmpfsOptions {
    pub size_bytes: Option<i64>,
    pub mode: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Device {
    pub path_on_host: Option<String>,
    pub path_in_container: Option<String>,
    pub cgroup_permissions: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    pub name: Option<String>,
    pub soft: Option<i64>,
    pub hard: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    pub endpoints_config: Option<BTreeMap<String, Option<EndpointConfig>>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointConfig {
    pub aliases: Option<Vec<String>>,
    pub mac_address: Option<String>,
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<IpamEndpoint>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct IpamEndpoint {
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: Option<String>,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: Option<String>,
    #[serde(rename = "LinkLocalIPs")]
    pub link_local_ips: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecCreate {
    pub attach_stdin: Option<bool>,
    pub attach_stdout: Option<bool>,
    pub attach_stderr: Option<bool>,
    /// docker-py spells it `detachKeys` (Go's decoder takes either).
    #[serde(alias = "detachKeys")]
    pub detach_keys: Option<String>,
    pub tty: Option<bool>,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Words>,
    pub privileged: Option<bool>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    /// `[rows, columns]` of the client's terminal.
    pub console_size: Option<Vec<u16>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecStart {
    pub detach: Option<bool>,
    pub tty: Option<bool>,
    pub console_size: Option<Vec<u16>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeCreate {
    pub name: Option<String>,
    pub driver: Option<String>,
    pub driver_opts: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkCreate {
    pub name: Option<String>,
    pub driver: Option<String>,
    pub internal: Option<bool>,
    #[serde(rename = "IPAM")]
    pub ipam: Option<Ipam>,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: Option<bool>,
    pub options: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
    /// Swarm's (refused when set): an ingress network, a config-only one or one built from it,
    /// a swarm scope.
    pub ingress: Option<bool>,
    pub config_only: Option<bool>,
    pub config_from: Option<serde_json::Value>,
    pub scope: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ipam {
    /// Only Docker's `default` IPAM driver is berth's.
    pub driver: Option<String>,
    pub config: Option<Vec<IpamPool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamPool {
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    #[serde(rename = "IPRange")]
    pub ip_range: Option<String>,
    pub auxiliary_addresses: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkConnect {
    pub container: Option<String>,
    pub endpoint_config: Option<EndpointConfig>,
    pub force: Option<bool>,
}

/// `X-Registry-Auth` and `/auth`'s body. Its Debug never shows the secret.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    pub username: String,
    pub password: String,
    pub auth: String,
    #[serde(rename = "serveraddress")]
    pub server_address: String,
    #[serde(rename = "identitytoken")]
    pub identity_token: String,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuthConfig({}, ***)", self.username)
    }
}

impl AuthConfig {
    /// From the `X-Registry-Auth` header: base64url (or standard base64) JSON; None when empty
    /// or `null`. An error says what the header is not, never what it holds.
    pub fn from_header(h: &str) -> Result<Option<AuthConfig>, String> {
        let h = h.trim();
        if h.is_empty() {
            return Ok(None);
        }
        let raw = base64::engine::general_purpose::URL_SAFE
            .decode(h)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h))
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(h))
            .map_err(|_| "X-Registry-Auth is not base64".to_string())?;
        serde_json::from_slice::<Option<AuthConfig>>(&raw)
            .map_err(|_| "X-Registry-Auth is not a JSON object of credentials".to_string())
    }

    /// Username and password (from `auth`, base64 of `user:password`, when they are not given).
    pub fn credentials(&self) -> Option<Credentials> {
        if !self.username.is_empty() {
            return Some(Credentials {
                username: self.username.clone(),
                password: self.password.clone(),
            });
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&self.auth)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (u, p) = text.split_once(':')?;
        Some(Credentials {
            username: u.into(),
            password: p.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_and_both_command_shapes_read() {
        let b: CreateBody = serde_json::from_str(
            r#"{"Image":"bb","Cmd":"sh -c true","Entrypoint":null,"Env":null,"HostConfig":{"Memory":0,"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":2},"Binds":null}}"#,
        )
        .unwrap();
        assert_eq!(b.cmd.unwrap().into_vec(), ["sh", "-c", "true"]);
        assert_eq!(
            b.host_config
                .unwrap()
                .resources
                .restart_policy
                .unwrap()
                .flag(),
            "on-failure:2"
        );
    }

    #[test]
    fn registry_auth_header_decodes_and_never_shows_the_password() {
        let h = base64::engine::general_purpose::URL_SAFE
            .encode(br#"{"username":"u","password":"s3cret","serveraddress":"r:5000"}"#);
        let a = AuthConfig::from_header(&h).unwrap().unwrap();
        assert_eq!(a.credentials().unwrap().username, "u");
        assert!(!format!("{a:?}").contains("s3cret"));
        assert!(AuthConfig::from_header("%%%").is_err());
        // `user:s3cret` in base64: not JSON, and the error does not show it.
        let e = AuthConfig::from_header("dXNlcjpzM2NyZXQ=").unwrap_err();
        assert!(
            e.contains("not a JSON object") && !e.contains("s3cret"),
            "{e}"
        );
        assert!(AuthConfig::from_header("").unwrap().is_none());
        assert!(
            AuthConfig::from_header("bnVsbA==").unwrap().is_none(),
            "null"
        );
        assert!(AuthConfig::from_header("e30=").unwrap().is_some(), "{{}}");
    }
}
