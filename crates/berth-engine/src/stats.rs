//! A running container's resource usage in Docker's `stats` document (`container.StatsResponse`):
//! cgroup figures (CPU, memory, pids, block I/O), the host's CPU time from /proc/stat for the
//! client's percentage, and the network counters from the container's own /proc/PID/net/dev;
//! and the figures Docker's CLI computes from two of them (CPU %, memory without the inactive
//! page cache, network and block I/O totals). The API serves the document, `berth stats` prints
//! the figures. Reads only.

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

impl ContainerStats {
    /// Docker's CPU %: the container's share of the host's CPU time since the previous sample
    /// (`precpu_stats`), times the online CPUs (one busy CPU is 100%); 0 without a previous one.
    pub fn cpu_percent(&self) -> f64 {
        let (now, pre) = (&self.cpu_stats, &self.precpu_stats);
        let cpu = now
            .cpu_usage
            .total_usage
            .saturating_sub(pre.cpu_usage.total_usage) as f64;
        let system = match (now.system_cpu_usage, pre.system_cpu_usage) {
            (Some(n), Some(p)) => n.saturating_sub(p) as f64,
            _ => 0.0,
        };
        if cpu <= 0.0 || system <= 0.0 {
            return 0.0;
        }
        cpu / system * f64::from(now.online_cpus.unwrap_or(1).max(1)) * 100.0
    }

    /// Memory in use without the page cache the kernel can drop at once, as Docker's CLI shows.
    pub fn memory_used(&self) -> u64 {
        let m = &self.memory_stats;
        let inactive = m.stats.get("total_inactive_file").copied().unwrap_or(0);
        if inactive < m.usage {
            m.usage - inactive
        } else {
            m.usage
        }
    }

    /// Memory used as a share of the limit, in percent.
    pub fn memory_percent(&self) -> f64 {
        match self.memory_stats.limit {
            0 => 0.0,
            limit => self.memory_used() as f64 / limit as f64 * 100.0,
        }
    }

    /// Bytes received and sent over every interface but loopback.
    pub fn net_bytes(&self) -> (u64, u64) {
        self.networks.values().fold((0, 0), |(rx, tx), n| {
            (rx.saturating_add(n.rx_bytes), tx.saturating_add(n.tx_bytes))
        })
    }

    /// Bytes read and written by block devices.
    pub fn block_bytes(&self) -> (u64, u64) {
        self.blkio_stats
            .io_service_bytes_recursive
            .iter()
            .fold((0, 0), |(r, w), b| match b.op.as_str() {
                "read" => (r + b.value, w),
                "write" => (r, w + b.value),
                _ => (r, w),
            })
    }
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
        // Docker's CLI subtracts the inactive page cache: v1's key and v2's.
        memory.insert("total_inactive_file".into(), s.memory.inactive_file);
        memory.insert("inactive_file".into(), s.memory.inactive_file);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_percent_is_dockers_share_times_cpus() {
        let at = |cpu, system| CpuStats {
            cpu_usage: CpuUsage {
                total_usage: cpu,
                ..CpuUsage::default()
            },
            system_cpu_usage: Some(system),
            online_cpus: Some(4),
            ..CpuStats::default()
        };
        // Half of one CPU's time on a 4-CPU host: 0.5 s of 4 s is 12.5%, times 4 CPUs.
        let s = ContainerStats {
            cpu_stats: at(500_000_000, 4_000_000_000),
            precpu_stats: at(0, 0),
            ..ContainerStats::default()
        };
        assert!((s.cpu_percent() - 50.0).abs() < 1e-9);
        let first = ContainerStats {
            cpu_stats: at(500_000_000, 4_000_000_000),
            ..ContainerStats::default()
        };
        assert_eq!(first.cpu_percent(), 0.0);
    }

    #[test]
    fn memory_leaves_out_the_inactive_page_cache() {
        let mut s = ContainerStats::default();
        s.memory_stats.usage = 100;
        s.memory_stats.limit = 400;
        s.memory_stats
            .stats
            .insert("total_inactive_file".into(), 40);
        assert_eq!(s.memory_used(), 60);
        assert!((s.memory_percent() - 15.0).abs() < 1e-9);
    }
}
