//! `stats`' figures, as Docker's daemon gathers them and its CLI computes them: CPU time against
//! the host's (`/proc/stat`) between two samples, memory without the inactive page cache, the
//! container's network namespace counters (`/proc/<pid>/net/dev`, loopback left out), bytes
//! read and written by block devices, and its pids. Reads /proc and cgroupfs; changes nothing.

use crate::record::Record;
use crate::Engine;
use berth_runtime::state::ContainerState;
use serde::Serialize;

/// One look at a container's counters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatsSample {
    pub id: String,
    pub name: String,
    /// Whether it had processes to measure (a stopped container's sample is all zeros).
    pub running: bool,
    /// The container's CPU time, in nanoseconds.
    pub cpu_ns: u64,
    /// The host's CPU time (all CPUs, every state), in nanoseconds.
    pub system_ns: u64,
    pub online_cpus: u32,
    /// Memory in use, without the page cache the kernel can drop at once.
    pub memory: u64,
    /// The memory limit, or the host's memory when there is none (0 when stopped).
    pub memory_limit: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub block_read: u64,
    pub block_write: u64,
    pub pids: u64,
}

impl StatsSample {
    /// Docker's CPU %: the container's share of the host's CPU time since `prev`, times the
    /// online CPUs (so one busy CPU is 100%).
    pub fn cpu_percent(&self, prev: Option<&StatsSample>) -> f64 {
        let Some(p) = prev.filter(|p| p.running && self.running) else {
            return 0.0;
        };
        let cpu = self.cpu_ns.saturating_sub(p.cpu_ns) as f64;
        let system = self.system_ns.saturating_sub(p.system_ns) as f64;
        if cpu <= 0.0 || system <= 0.0 {
            return 0.0;
        }
        cpu / system * f64::from(self.online_cpus.max(1)) * 100.0
    }

    /// Memory used as a share of the limit, in percent.
    pub fn memory_percent(&self) -> f64 {
        if self.memory_limit == 0 {
            return 0.0;
        }
        self.memory as f64 / self.memory_limit as f64 * 100.0
    }
}

/// The host's CPU time in nanoseconds (the `cpu` line of `/proc/stat`, in USER_HZ ticks) and its
/// online CPUs.
fn host_cpu() -> (u64, u32) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let ticks: u64 = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    let cpus = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count() as u32;
    (ticks.saturating_mul(1_000_000_000 / hz), cpus.max(1))
}

/// Received and sent bytes over every interface of `pid`'s network namespace but loopback.
pub fn net_bytes(pid: i32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    parse_net_dev(&text)
}

/// `/proc/net/dev`'s table: `iface: rx_bytes … (8 rx fields) tx_bytes …`.
fn parse_net_dev(text: &str) -> (u64, u64) {
    let mut rx = 0u64;
    let mut tx = 0u64;
    for line in text.lines().skip(2) {
        let Some((iface, fields)) = line.split_once(':') else {
            continue;
        };
        if iface.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = fields
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if f.len() >= 9 {
            rx = rx.saturating_add(f[0]);
            tx = tx.saturating_add(f[8]);
        }
    }
    (rx, tx)
}

impl Engine {
    /// A container's counters now: zeros (and not `running`) when it has no live init.
    pub fn stats_sample(&self, r: &Record) -> StatsSample {
        let mut s = StatsSample {
            id: r.id.clone(),
            name: r.name.clone(),
            ..StatsSample::default()
        };
        if !matches!(r.state.status.as_str(), "running" | "paused") {
            return s;
        }
        let Ok(state) = ContainerState::load(&self.runtime_root, &r.id) else {
            return s;
        };
        let Some(cg) = state.cgroup.as_ref().and_then(|c| c.stats().ok()) else {
            return s;
        };
        (s.system_ns, s.online_cpus) = host_cpu();
        s.running = true;
        s.cpu_ns = cg.cpu.usage_total_ns;
        let m = &cg.memory;
        s.memory = if m.inactive_file < m.usage {
            m.usage - m.inactive_file
        } else {
            m.usage
        };
        let host = crate::observe::total_memory();
        s.memory_limit = if m.limit == 0 || m.limit >= host {
            host
        } else {
            m.limit
        };
        (s.net_rx, s.net_tx) = net_bytes(state.pid);
        for b in &cg.blkio_bytes {
            match b.op.to_ascii_lowercase().as_str() {
                "read" => s.block_read += b.value,
                "write" => s.block_write += b.value,
                _ => {}
            }
        }
        s.pids = cg.pids.current;
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_sums_every_interface_but_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:  100 1 0 0 0 0 0 0  100 1 0 0 0 0 0 0\n  eth0: 1500 10 0 0 0 0 0 0  700 7 0 0 0 0 0 0\n  eth1:   20 1 0 0 0 0 0 0    3 1 0 0 0 0 0 0\n";
        assert_eq!(parse_net_dev(text), (1520, 703));
    }

    #[test]
    fn cpu_percent_is_dockers_share_times_cpus() {
        let at = |cpu, system| StatsSample {
            running: true,
            cpu_ns: cpu,
            system_ns: system,
            online_cpus: 4,
            ..StatsSample::default()
        };
        // Half of one CPU's time on a 4-CPU host: 0.5 s of 4 s is 12.5%, times 4 CPUs.
        let p = at(0, 0);
        let n = at(500_000_000, 4_000_000_000);
        assert!((n.cpu_percent(Some(&p)) - 50.0).abs() < 1e-9);
        assert_eq!(n.cpu_percent(None), 0.0);
    }
}
