//! `run`/`create` flags for the container's cgroup, block I/O, OCI annotations and addresses
//! on its network beyond `--ip`, as Docker names them. Parsing only: each lands in `RunOptions` as given and the engine checks it (at
//! create, before anything is made).

use berth_engine::options::RunOptions;
use berth_engine::EngineError;
use clap::Args;

#[derive(Args, Clone, Default)]
pub struct CgroupFlags {
    /// Optional parent cgroup for the container (a cgroupfs path from the root; ".." is refused)
    #[arg(long = "cgroup-parent")]
    cgroup_parent: Option<String>,
    /// Cgroup namespace to use: private (its own, berth's default on v1 and v2) or host
    #[arg(long)]
    cgroupns: Option<String>,
    /// Block IO weight of a device (DEVICE:WEIGHT, 10 to 1000)
    #[arg(long = "blkio-weight-device")]
    blkio_weight_device: Vec<String>,
    /// Limit read rate (bytes per second) from a device (DEVICE:RATE, e.g. /dev/sda:1mb)
    #[arg(long = "device-read-bps")]
    device_read_bps: Vec<String>,
    /// Limit write rate (bytes per second) to a device (DEVICE:RATE)
    #[arg(long = "device-write-bps")]
    device_write_bps: Vec<String>,
    /// Limit read rate (IO per second) from a device (DEVICE:N)
    #[arg(long = "device-read-iops")]
    device_read_iops: Vec<String>,
    /// Limit write rate (IO per second) to a device (DEVICE:N)
    #[arg(long = "device-write-iops")]
    device_write_iops: Vec<String>,
    /// Tune container memory swappiness (0 to 100; -1 keeps the host's)
    #[arg(long = "memory-swappiness", allow_hyphen_values = true)]
    memory_swappiness: Option<i64>,
    /// Add an annotation to the container, passed to the OCI runtime (KEY=VALUE)
    #[arg(long)]
    annotation: Vec<String>,
    /// Container MAC address on its bridge network (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address")]
    mac_address: Option<String>,
    /// IPv6 address on a user network with an IPv6 subnet (e.g., 2001:db8::33)
    #[arg(long)]
    ip6: Option<std::net::Ipv6Addr>,
    /// Container IPv4/IPv6 link-local addresses (user networks)
    #[arg(long = "link-local-ip")]
    link_local_ip: Vec<std::net::IpAddr>,
}

impl CgroupFlags {
    /// Puts the flags into `o`; an annotation without `=` is refused here, by name.
    pub fn apply(&self, o: &mut RunOptions) -> Result<(), EngineError> {
        o.cgroup_parent = self.cgroup_parent.clone().unwrap_or_default();
        o.cgroupns = self.cgroupns.clone().unwrap_or_default();
        o.blkio_weight_device = self.blkio_weight_device.clone();
        o.device_read_bps = self.device_read_bps.clone();
        o.device_write_bps = self.device_write_bps.clone();
        o.device_read_iops = self.device_read_iops.clone();
        o.device_write_iops = self.device_write_iops.clone();
        o.memory_swappiness = self.memory_swappiness;
        o.mac_address = self.mac_address.clone();
        o.ip6 = self.ip6;
        o.link_local_ips = self.link_local_ip.clone();
        for a in &self.annotation {
            let Some((k, v)) = a.split_once('=') else {
                return Err(EngineError::msg(format!(
                    "invalid --annotation {a:?}: expected KEY=VALUE"
                )));
            };
            o.annotations.insert(k.to_string(), v.to_string());
        }
        Ok(())
    }
}
