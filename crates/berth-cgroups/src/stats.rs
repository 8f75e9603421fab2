//! Resource usage statistics for `berth stats`/`runc events`: one `Stats` shape filled from v1
//! or v2 files. Missing files read as zero (controllers and kernels differ); it never writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cgroupfs::{keyed, read_optional, read_u64};
use crate::{v1, Result};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    /// Bytes read/written per device.
    pub blkio_bytes: Vec<BlkioEntry>,
    /// I/O operations per device.
    pub blkio_ios: Vec<BlkioEntry>,
    /// Page size (e.g. "2MB") -> usage.
    pub hugetlb: BTreeMap<String, HugetlbStats>,
    pub oom_kill: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuStats {
    pub usage_total_ns: u64,
    pub usage_user_ns: u64,
    pub usage_kernel_ns: u64,
    /// v1 only (cpuacct.usage_percpu); empty on v2.
    pub usage_per_cpu_ns: Vec<u64>,
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time_ns: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStats {
    pub usage: u64,
    pub max_usage: u64,
    /// `u64::MAX` (or the kernel's v1 "unlimited" value) when unlimited.
    pub limit: u64,
    pub failcnt: u64,
    pub cache: u64,
    /// Page cache the kernel can drop at once (`total_inactive_file`, v2 `inactive_file`):
    /// Docker's `stats` leaves it out of a container's usage.
    #[serde(default)]
    pub inactive_file: u64,
    pub rss: u64,
    pub swap_usage: u64,
    pub swap_limit: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidsStats {
    pub current: u64,
    /// `None` when unlimited.
    pub limit: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    /// "Read", "Write", "Sync", "Async", "Discard" or "Total" (v1 names; v2 maps onto them).
    pub op: String,
    pub value: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HugetlbStats {
    pub usage: u64,
    pub max_usage: u64,
    pub failcnt: u64,
}

fn text(ctl: &str, dir: &Path, file: &str) -> Result<String> {
    Ok(read_optional(ctl, dir, file)?.unwrap_or_default())
}

fn limit_or_none(v: Option<u64>) -> Option<u64> {
    v.filter(|&v| v != u64::MAX)
}

/// Page sizes for which `dir` has hugetlb files with the given suffix (`.current`, `.usage_in_bytes`).
fn hugetlb_sizes(dir: &Path, suffix: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut sizes: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let size = name.strip_prefix("hugetlb.")?.strip_suffix(suffix)?;
            (!size.contains('.')).then(|| size.to_string())
        })
        .collect();
    sizes.sort();
    sizes
}

pub fn v1(mounts: &BTreeMap<String, PathBuf>, rel: &Path) -> Result<Stats> {
    let mut s = Stats::default();
    let dir = |c: &str| v1::dir(mounts, rel, c);
    if let Some(d) = dir("cpuacct") {
        let c = &mut s.cpu;
        c.usage_total_ns = read_u64(&d, "cpuacct.usage").unwrap_or(0);
        c.usage_per_cpu_ns = text("cpuacct", &d, "cpuacct.usage_percpu")?
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        match (
            read_u64(&d, "cpuacct.usage_user"),
            read_u64(&d, "cpuacct.usage_sys"),
        ) {
            (Some(u), Some(k)) => (c.usage_user_ns, c.usage_kernel_ns) = (u, k),
            _ => {
                // cpuacct.stat counts USER_HZ ticks (100 per second on Linux).
                let t = text("cpuacct", &d, "cpuacct.stat")?;
                c.usage_user_ns = keyed(&t, "user").unwrap_or(0) * 10_000_000;
                c.usage_kernel_ns = keyed(&t, "system").unwrap_or(0) * 10_000_000;
            }
        }
    }
    if let Some(d) = dir("cpu") {
        let t = text("cpu", &d, "cpu.stat")?;
        s.cpu.periods = keyed(&t, "nr_periods").unwrap_or(0);
        s.cpu.throttled_periods = keyed(&t, "nr_throttled").unwrap_or(0);
        s.cpu.throttled_time_ns = keyed(&t, "throttled_time").unwrap_or(0);
    }
    if let Some(d) = dir("memory") {
        let m = &mut s.memory;
        m.usage = read_u64(&d, "memory.usage_in_bytes").unwrap_or(0);
        m.max_usage = read_u64(&d, "memory.max_usage_in_bytes").unwrap_or(0);
        m.limit = read_u64(&d, "memory.limit_in_bytes").unwrap_or(u64::MAX);
        m.failcnt = read_u64(&d, "memory.failcnt").unwrap_or(0);
        let t = text("memory", &d, "memory.stat")?;
        m.cache = keyed(&t, "total_cache")
            .or_else(|| keyed(&t, "cache"))
            .unwrap_or(0);
        m.rss = keyed(&t, "total_rss")
            .or_else(|| keyed(&t, "rss"))
            .unwrap_or(0);
        m.inactive_file = keyed(&t, "total_inactive_file")
            .or_else(|| keyed(&t, "inactive_file"))
            .unwrap_or(0);
        let memsw = read_u64(&d, "memory.memsw.usage_in_bytes").unwrap_or(m.usage);
        m.swap_usage = memsw.saturating_sub(m.usage);
        m.swap_limit = read_u64(&d, "memory.memsw.limit_in_bytes").unwrap_or(u64::MAX);
        s.oom_kill = keyed(&text("memory", &d, "memory.oom_control")?, "oom_kill").unwrap_or(0);
    }
    if let Some(d) = dir("pids") {
        s.pids.current = read_u64(&d, "pids.current").unwrap_or(0);
        s.pids.limit = limit_or_none(read_u64(&d, "pids.max"));
    }
    if let Some(d) = dir("blkio") {
        // CFQ/BFQ files when present, else the throttle layer's (always there).
        let pick = |a: &str, b: &str| -> Result<String> {
            read_optional("blkio", &d, a)?
                .filter(|t| !t.trim().is_empty())
                .map_or_else(|| text("blkio", &d, b), Ok)
        };
        s.blkio_bytes = parse_v1_blkio(&pick(
            "blkio.io_service_bytes_recursive",
            "blkio.throttle.io_service_bytes_recursive",
        )?);
        s.blkio_ios = parse_v1_blkio(&pick(
            "blkio.io_serviced_recursive",
            "blkio.throttle.io_serviced_recursive",
        )?);
    }
    if let Some(d) = dir("hugetlb") {
        for size in hugetlb_sizes(&d, ".usage_in_bytes") {
            let f = |k: &str| read_u64(&d, &format!("hugetlb.{size}.{k}")).unwrap_or(0);
            let h = HugetlbStats {
                usage: f("usage_in_bytes"),
                max_usage: f("max_usage_in_bytes"),
                failcnt: f("failcnt"),
            };
            s.hugetlb.insert(size, h);
        }
    }
    Ok(s)
}

/// Lines like `8:0 Read 4096`; the trailing `Total N` line (no device) is skipped.
fn parse_v1_blkio(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, op, value) = (f.next()?, f.next()?, f.next()?);
            let (major, minor) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.into(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

pub fn v2(dir: &Path) -> Result<Stats> {
    let mut s = Stats::default();
    let cpu = text("cpu", dir, "cpu.stat")?;
    let us = |k: &str| keyed(&cpu, k).unwrap_or(0) * 1000;
    s.cpu = CpuStats {
        usage_total_ns: us("usage_usec"),
        usage_user_ns: us("user_usec"),
        usage_kernel_ns: us("system_usec"),
        usage_per_cpu_ns: Vec::new(),
        periods: keyed(&cpu, "nr_periods").unwrap_or(0),
        throttled_periods: keyed(&cpu, "nr_throttled").unwrap_or(0),
        throttled_time_ns: us("throttled_usec"),
    };
    let stat = text("memory", dir, "memory.stat")?;
    let events = text("memory", dir, "memory.events")?;
    s.memory = MemoryStats {
        usage: read_u64(dir, "memory.current").unwrap_or(0),
        max_usage: read_u64(dir, "memory.peak").unwrap_or(0),
        limit: read_u64(dir, "memory.max").unwrap_or(u64::MAX),
        failcnt: keyed(&events, "max").unwrap_or(0),
        cache: keyed(&stat, "file").unwrap_or(0),
        inactive_file: keyed(&stat, "inactive_file").unwrap_or(0),
        rss: keyed(&stat, "anon").unwrap_or(0),
        swap_usage: read_u64(dir, "memory.swap.current").unwrap_or(0),
        swap_limit: read_u64(dir, "memory.swap.max").unwrap_or(u64::MAX),
    };
    s.oom_kill = keyed(&events, "oom_kill").unwrap_or(0);
    s.pids = PidsStats {
        current: read_u64(dir, "pids.current").unwrap_or(0),
        limit: limit_or_none(read_u64(dir, "pids.max")),
    };
    (s.blkio_bytes, s.blkio_ios) = parse_io_stat(&text("io", dir, "io.stat")?);
    for size in hugetlb_sizes(dir, ".current") {
        let f = |k: &str| read_u64(dir, &format!("hugetlb.{size}.{k}"));
        let failcnt = read_optional("hugetlb", dir, &format!("hugetlb.{size}.events"))?
            .and_then(|t| keyed(&t, "max"))
            .unwrap_or(0);
        let h = HugetlbStats {
            usage: f("current").unwrap_or(0),
            max_usage: 0,
            failcnt,
        };
        s.hugetlb.insert(size, h);
    }
    Ok(s)
}

/// `8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0` -> (bytes, ios) in v1's op names.
fn parse_io_stat(text: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let (mut bytes, mut ios) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some((major, minor)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "dbytes" => (&mut bytes, "Discard"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                "dios" => (&mut ios, "Discard"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value,
            });
        }
    }
    (bytes, ios)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_blkio_lines_parse_and_total_is_skipped() {
        let e = parse_v1_blkio("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n");
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].major, e[0].minor, e[0].op.as_str(), e[0].value),
            (8, 0, "Read", 4096)
        );
    }

    #[test]
    fn v2_io_stat_maps_onto_v1_names() {
        let (b, i) = parse_io_stat("259:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(b.iter().map(|e| e.value).collect::<Vec<_>>(), [10, 20, 0]);
        assert_eq!(i[1].op, "Write");
        assert_eq!(i[1].value, 2);
    }
}
