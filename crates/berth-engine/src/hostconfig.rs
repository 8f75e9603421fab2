//! Docker's `HostConfig` as `inspect` and the API show it: every key Docker 28 has, with its types
//! and zero values (empty lists, `null` where Docker writes null), built from the options a
//! container was created with. Pure data: nothing here touches the system.

use crate::ocispec::Throttle;
use crate::options::RunOptions;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    pub binds: Option<Vec<String>>,
    #[serde(rename = "ContainerIDFile")]
    pub container_id_file: String,
    pub log_config: LogConfig,
    pub network_mode: String,
    pub port_bindings: serde_json::Value,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    pub volume_driver: String,
    pub volumes_from: Option<Vec<String>>,
    pub console_size: [u32; 2],
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub cgroupns_mode: String,
    pub dns: Vec<String>,
    pub dns_options: Vec<String>,
    pub dns_search: Vec<String>,
    pub extra_hosts: Option<Vec<String>>,
    pub group_add: Option<Vec<String>>,
    pub ipc_mode: String,
    pub cgroup: String,
    pub links: Option<Vec<String>>,
    pub oom_score_adj: i64,
    pub pid_mode: String,
    pub privileged: bool,
    pub publish_all_ports: bool,
    pub readonly_rootfs: bool,
    pub security_opt: Option<Vec<String>>,
    pub tmpfs: Option<BTreeMap<String, String>>,
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    pub userns_mode: String,
    pub shm_size: i64,
    pub sysctls: Option<BTreeMap<String, String>>,
    pub runtime: String,
    pub isolation: String,
    pub cpu_shares: i64,
    pub memory: i64,
    pub nano_cpus: i64,
    pub cgroup_parent: String,
    pub blkio_weight: u16,
    pub blkio_weight_device: Vec<serde_json::Value>,
    pub blkio_device_read_bps: Vec<serde_json::Value>,
    pub blkio_device_write_bps: Vec<serde_json::Value>,
    #[serde(rename = "BlkioDeviceReadIOps")]
    pub blkio_device_read_iops: Vec<serde_json::Value>,
    #[serde(rename = "BlkioDeviceWriteIOps")]
    pub blkio_device_write_iops: Vec<serde_json::Value>,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpu_realtime_period: i64,
    pub cpu_realtime_runtime: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub devices: Vec<DeviceMapping>,
    pub device_cgroup_rules: Option<Vec<String>>,
    pub device_requests: Option<Vec<serde_json::Value>>,
    pub memory_reservation: i64,
    pub memory_swap: i64,
    pub memory_swappiness: Option<i64>,
    pub oom_kill_disable: bool,
    pub pids_limit: Option<i64>,
    pub ulimits: Option<Vec<Ulimit>>,
    pub cpu_count: i64,
    pub cpu_percent: i64,
    #[serde(rename = "IOMaximumIOps")]
    pub io_maximum_iops: i64,
    #[serde(rename = "IOMaximumBandwidth")]
    pub io_maximum_bandwidth: i64,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    pub init: Option<bool>,
    /// `--annotation`s (omitted when there are none, as Docker omits them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: String,
    pub config: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    pub name: String,
    pub maximum_retry_count: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    pub name: String,
    pub hard: i64,
    pub soft: i64,
}

fn some_list(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

fn key_values(v: &[String]) -> BTreeMap<String, String> {
    v.iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// `--ulimit name=soft[:hard]` as Docker shows it (checked when the container was made).
fn ulimit(u: &str) -> Option<Ulimit> {
    let (name, values) = u.split_once('=')?;
    let (soft, hard) = values.split_once(':').unwrap_or((values, values));
    Some(Ulimit {
        name: name.to_string(),
        soft: soft.parse().ok()?,
        hard: hard.parse().ok()?,
    })
}

/// A throttle flag's devices as Docker's `ThrottleDevice` list (`[{"Path", "Rate"}]`).
fn throttles(kind: Throttle, list: &[String]) -> Vec<serde_json::Value> {
    list.iter()
        .filter_map(|s| crate::ocispec::parse_throttle(kind, s).ok())
        .map(|d| serde_json::json!({"Path": d.path, "Rate": d.value}))
        .collect()
}

impl HostConfig {
    /// The HostConfig of a container made with `o`.
    pub fn from_options(o: &RunOptions) -> HostConfig {
        let (restart, retries) =
            crate::options::parse_restart(&o.restart).unwrap_or(("no".into(), None));
        let devices = o
            .devices
            .iter()
            .filter_map(|d| crate::ocispec::parse_device(d).ok())
            .map(|d| DeviceMapping {
                path_on_host: d.host,
                path_in_container: d.container,
                cgroup_permissions: d.access,
            })
            .collect();
        let tmpfs: BTreeMap<String, String> = o
            .tmpfs
            .iter()
            .map(|t| {
                let (d, opts) = t.split_once(':').unwrap_or((t, ""));
                (d.to_string(), opts.to_string())
            })
            .collect();
        HostConfig {
            binds: some_list(&o.volumes),
            container_id_file: o.cidfile.clone().unwrap_or_default(),
            log_config: LogConfig {
                kind: if o.log_driver.is_empty() {
                    "json-file".into()
                } else {
                    o.log_driver.clone()
                },
                config: key_values(&o.log_opts),
            },
            network_mode: crate::network::NetworkMode::parse(&o.network).docker_name(),
            port_bindings: crate::network::port_bindings(&o.publish),
            restart_policy: RestartPolicy {
                name: restart,
                maximum_retry_count: i64::from(retries.unwrap_or(0)),
            },
            auto_remove: o.auto_remove,
            volume_driver: String::new(),
            volumes_from: some_list(&o.volumes_from),
            console_size: [0, 0],
            cap_add: some_list(&o.cap_add),
            cap_drop: some_list(&o.cap_drop),
            cgroupns_mode: if o.cgroupns == "host" {
                "host".into()
            } else {
                "private".into()
            },
            dns: o.dns.iter().map(|d| d.to_string()).collect(),
            dns_options: o.dns_options.clone(),
            dns_search: o.dns_search.clone(),
            extra_hosts: some_list(&o.add_hosts),
            group_add: some_list(&o.group_add),
            ipc_mode: if o.ipc.is_empty() {
                "private".into()
            } else {
                o.ipc.clone()
            },
            cgroup: String::new(),
            links: None,
            oom_score_adj: o.oom_score_adj.into(),
            pid_mode: o.pid.clone(),
            privileged: o.privileged,
            publish_all_ports: o.publish_all,
            readonly_rootfs: o.read_only,
            security_opt: some_list(&o.security_opts),
            tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
            uts_mode: o.uts.clone(),
            userns_mode: String::new(),
            shm_size: o.shm_size.unwrap_or(64 << 20),
            sysctls: (!o.sysctls.is_empty()).then(|| key_values(&o.sysctls)),
            runtime: "berth".into(),
            isolation: String::new(),
            cpu_shares: o.cpu_shares.unwrap_or(0) as i64,
            memory: o.memory.unwrap_or(0),
            nano_cpus: o.cpus.map_or(0, |c| (c * 1e9) as i64),
            cgroup_parent: o.cgroup_parent.clone(),
            blkio_weight: o.blkio_weight.unwrap_or(0),
            blkio_weight_device: o
                .blkio_weight_device
                .iter()
                .filter_map(|s| crate::ocispec::parse_weight_device(s).ok())
                .map(|d| serde_json::json!({"Path": d.path, "Weight": d.value}))
                .collect(),
            blkio_device_read_bps: throttles(Throttle::ReadBps, &o.device_read_bps),
            blkio_device_write_bps: throttles(Throttle::WriteBps, &o.device_write_bps),
            blkio_device_read_iops: throttles(Throttle::ReadIops, &o.device_read_iops),
            blkio_device_write_iops: throttles(Throttle::WriteIops, &o.device_write_iops),
            cpu_period: o.cpu_period.unwrap_or(0) as i64,
            cpu_quota: o.cpu_quota.unwrap_or(0),
            cpu_realtime_period: o.cpu_rt_period.unwrap_or(0) as i64,
            cpu_realtime_runtime: o.cpu_rt_runtime.unwrap_or(0),
            cpuset_cpus: o.cpuset_cpus.clone().unwrap_or_default(),
            cpuset_mems: o.cpuset_mems.clone().unwrap_or_default(),
            devices,
            device_cgroup_rules: some_list(&o.device_cgroup_rules),
            device_requests: None,
            memory_reservation: o.memory_reservation.unwrap_or(0),
            memory_swap: o.memory_swap.unwrap_or(if o.memory.is_some() {
                o.memory.unwrap_or(0) * 2
            } else {
                0
            }),
            memory_swappiness: o.memory_swappiness.filter(|s| *s != -1),
            oom_kill_disable: o.oom_kill_disable,
            pids_limit: o.pids_limit,
            ulimits: (!o.ulimits.is_empty())
                .then(|| o.ulimits.iter().filter_map(|u| ulimit(u)).collect()),
            cpu_count: 0,
            cpu_percent: 0,
            io_maximum_iops: 0,
            io_maximum_bandwidth: 0,
            masked_paths: crate::ocispec::masked_paths(o),
            readonly_paths: crate::ocispec::readonly_paths(o),
            init: o.init.then_some(true),
            annotations: (!o.annotations.is_empty()).then(|| o.annotations.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_dockers_types_and_zero_values() {
        let o = RunOptions {
            restart: "on-failure:3".into(),
            ulimits: vec!["nofile=1024:2048".into()],
            tmpfs: vec!["/run:size=64m".into()],
            devices: vec!["/dev/null:/dev/x:rw".into()],
            log_opts: vec!["max-size=10m".into()],
            memory: Some(64 << 20),
            ..RunOptions::default()
        };
        let v = serde_json::to_value(HostConfig::from_options(&o)).unwrap();
        assert_eq!(
            v["RestartPolicy"],
            serde_json::json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        assert_eq!(
            v["Ulimits"],
            serde_json::json!([{"Name": "nofile", "Hard": 2048, "Soft": 1024}])
        );
        assert_eq!(v["Tmpfs"], serde_json::json!({"/run": "size=64m"}));
        assert_eq!(v["Devices"][0]["PathInContainer"], "/dev/x");
        assert_eq!(
            v["LogConfig"],
            serde_json::json!({"Type": "json-file", "Config": {"max-size": "10m"}})
        );
        assert_eq!(v["MemorySwap"], 128 << 20);
        assert!(v["Binds"].is_null() && v["CapAdd"].is_null() && v["PidsLimit"].is_null());
        assert_eq!(v["Dns"], serde_json::json!([]));
        assert_eq!(v["NetworkMode"], "bridge");
        assert_eq!(v["IpcMode"], "private");
        assert!(v["MaskedPaths"].as_array().is_some_and(|m| !m.is_empty()));
        assert_eq!(v["CgroupnsMode"], "private");
        assert!(v["MemorySwappiness"].is_null() && v.get("Annotations").is_none());
    }

    #[test]
    fn cgroup_blkio_and_annotation_flags_show_in_dockers_keys() {
        let o = RunOptions {
            cgroup_parent: "/tenants".into(),
            cgroupns: "host".into(),
            cpu_rt_period: Some(100_000),
            cpu_rt_runtime: Some(5000),
            device_read_bps: vec!["/dev/loop0:1mb".into()],
            device_write_iops: vec!["/dev/loop0:50".into()],
            blkio_weight_device: vec!["/dev/loop0:300".into()],
            memory_swappiness: Some(0),
            annotations: BTreeMap::from([("a.b".into(), "c".into())]),
            ..RunOptions::default()
        };
        let v = serde_json::to_value(HostConfig::from_options(&o)).unwrap();
        assert_eq!(v["CgroupParent"], "/tenants");
        assert_eq!(v["CgroupnsMode"], "host");
        assert_eq!(
            (
                v["CpuRealtimePeriod"].as_i64(),
                v["CpuRealtimeRuntime"].as_i64()
            ),
            (Some(100_000), Some(5000))
        );
        assert_eq!(
            v["BlkioDeviceReadBps"],
            serde_json::json!([{"Path": "/dev/loop0", "Rate": 1048576}])
        );
        assert_eq!(
            v["BlkioDeviceWriteIOps"],
            serde_json::json!([{"Path": "/dev/loop0", "Rate": 50}])
        );
        assert_eq!(
            v["BlkioWeightDevice"],
            serde_json::json!([{"Path": "/dev/loop0", "Weight": 300}])
        );
        assert_eq!(v["MemorySwappiness"], 0);
        assert_eq!(v["Annotations"], serde_json::json!({"a.b": "c"}));
    }
}
