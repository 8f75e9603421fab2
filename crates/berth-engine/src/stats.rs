//! A running container's resource usage in Docker's `stats` document (`container.StatsResponse`):
//! cgroup figures (CPU, memory, pids, block I/O), the host's CPU time from /proc/stat for the
//! client's percentage, and the network counters from the container's own /proc/PID/net/dev.
//! Reads only.

use crate::record::Record;
use crate::Engine;
use berth_runtime::state::ContainerState;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize)]
pub struct ContainerStats {
    pub name: String,
    pub id: String,
    pub read: String,
    pub preread: String,
    pub pids_stats: PidsStats,
    pub blkio_stats: BlkioStats,
    pub num_procs: u32,
    pub storage_stats: BTreeMap<String, u64>,
    pub cpu_stats: CpuStats,
    pub precpu_stats: CpuStats,
    pub memory_stats: MemoryStats,
    pub networks: BTreeMap<String, NetworkStats>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PidsStats {
    pub current: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BlkioStats {
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuStats {
    pub cpu_usage: CpuUsage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_cpu_usage: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online_cpus: Option<u32>,
    pub throttling_data: Throttling,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuUsage {
    pub total_usage: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_usage: Vec<u64>,
    pub usage_in_kernelmode: u64,
    pub usage_in_usermode: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Throttling {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MemoryStats {
    pub usage: u64,
    pub max_usage: u64,
    pub stats: BTreeMap<String, u64>,
    pub failcnt: u64,
    pub limit: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct NetworkStats {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// The host's CPU time in nanoseconds (the `cpu` line of /proc/stat, in USER_HZ ticks).
fn system_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let ticks: u64 = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(ticks * (1_000_000_000 / hz))
}

/// The interfaces of the network namespace of `pid` but loopback, from /proc/PID/net/dev.
fn network_stats(pid: i32) -> BTreeMap<String, NetworkStats> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let name = name.trim();
            let v: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if name == "lo" || v.len() < 12 {
                return None;
            }
            Some((
                name.to_string(),
                NetworkStats {
                    rx_bytes: v[0],
                    rx_packets: v[1],
                    rx_errors: v[2],
                    rx_dropped: v[3],
                    tx_bytes: v[8],
                    tx_packets: v[9],
                    tx_errors: v[10],
                    tx_dropped: v[11],
                },
            ))
        })
        .collect()
}

fn blkio(entries: &[berth_cgroups::BlkioEntry]) -> Vec<BlkioEntry> {
    entries
        .iter()
        .map(|b| BlkioEntry {
            major: b.major,
            minor: b.minor,
            op: b.op.to_ascii_lowercase(),
            value: b.value,
        })
        .collect()
}

impl Engine {
    /// A sample of `r`'s usage now, with `pre` (the previous sample, if any) as its `precpu`.
    /// A container that does not run gives zeros, as Docker's does.
    pub fn container_stats(&self, r: &Record, pre: Option<&ContainerStats>) -> ContainerStats {
        let st = ContainerState::load(&self.runtime_root, &r.id).ok();
        let running = r.state.status == "running" || r.state.status == "paused";
        let s = st
            .as_ref()
            .filter(|_| running)
            .and_then(|st| st.cgroup.as_ref().and_then(|c| c.stats().ok()))
            .unwrap_or_default();
        let usage = self.usage(r);
        let mut memory = BTreeMap::from([
            ("cache".to_string(), s.memory.cache),
            ("rss".into(), s.memory.rss),
        ]);
        memory.insert("total_inactive_file".into(), 0);
        let online = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        ContainerStats {
            name: format!("/{}", r.name),
            id: r.id.clone(),
            read: berth_sys::time::now_rfc3339_nanos(),
            preread: pre.map_or_else(|| "0001-01-01T00:00:00Z".into(), |p| p.read.clone()),
            pids_stats: PidsStats {
                current: s.pids.current,
                limit: s.pids.limit,
            },
            blkio_stats: BlkioStats {
                io_service_bytes_recursive: blkio(&s.blkio_bytes),
                io_serviced_recursive: blkio(&s.blkio_ios),
            },
            num_procs: 0,
            storage_stats: BTreeMap::new(),
            cpu_stats: CpuStats {
                cpu_usage: CpuUsage {
                    total_usage: s.cpu.usage_total_ns,
                    percpu_usage: s.cpu.usage_per_cpu_ns.clone(),
                    usage_in_kernelmode: s.cpu.usage_kernel_ns,
                    usage_in_usermode: s.cpu.usage_user_ns,
                },
                system_cpu_usage: system_cpu_ns(),
                online_cpus: Some(online),
                throttling_data: Throttling {
                    periods: s.cpu.periods,
                    throttled_periods: s.cpu.throttled_periods,
                    throttled_time: s.cpu.throttled_time_ns,
                },
            },
            precpu_stats: pre.map(|p| p.cpu_stats.clone()).unwrap_or_default(),
            memory_stats: MemoryStats {
                usage: s.memory.usage,
                max_usage: s.memory.max_usage,
                stats: memory,
                failcnt: s.memory.failcnt,
                limit: if running { usage.memory_limit } else { 0 },
            },
            networks: match (&st, running) {
                (Some(st), true) => network_stats(st.pid),
                _ => BTreeMap::new(),
            },
        }
    }
}
