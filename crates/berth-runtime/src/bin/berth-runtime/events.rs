//! `events`: JSON lines about a container: `stats` every interval (or once with --stats), and `oom`
//! the moment the kernel OOM-kills one of its processes. Ends when the container stops.

use std::path::Path;
use std::time::{Duration, Instant};

use berth_runtime::error::{Error, Result};
use berth_runtime::state::{ContainerState, Status};

pub fn parse_duration(s: &str) -> Result<Duration> {
    let t = s.trim();
    let (num, unit) = t.split_at(
        t.find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len()),
    );
    let n: f64 = num
        .parse()
        .map_err(|_| Error::msg(format!("invalid duration {s:?}")))?;
    let secs = match unit {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(Error::msg(format!("invalid duration {s:?}"))),
    };
    if secs <= 0.0 {
        return Err(Error::msg(format!("duration {s:?} must be positive")));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn emit(kind: &str, id: &str, data: Option<serde_json::Value>) {
    let line = match data {
        Some(d) => serde_json::json!({"type": kind, "id": id, "data": d}),
        None => serde_json::json!({"type": kind, "id": id}),
    };
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

pub fn run(root: &Path, id: &str, once: bool, interval: &str) -> Result<()> {
    let every = parse_duration(interval)?;
    let st = ContainerState::load(root, id)?;
    let cg = st
        .cgroup
        .clone()
        .ok_or_else(|| Error::msg(format!("container {id:?} has no cgroup")))?;
    if st.status(root) == Status::Stopped {
        berth_runtime::bail!("container {id:?} is stopped");
    }
    let stats = || -> Result<serde_json::Value> { Ok(runc_stats(&cg.stats()?)) };
    if once {
        emit("stats", id, Some(stats()?));
        return Ok(());
    }
    let mut ooms = cg.oom_kill_count().unwrap_or(0);
    let mut next = Instant::now() + every;
    while st.status(root) != Status::Stopped {
        let now = cg.oom_kill_count().unwrap_or(ooms);
        if now > ooms {
            emit("oom", id, None);
            ooms = now;
        }
        if Instant::now() >= next {
            emit("stats", id, Some(stats()?));
            next += every;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// The stats in runc's `events` JSON shape (libcontainer's types.Stats), which tools parse.
fn runc_stats(s: &berth_cgroups::Stats) -> serde_json::Value {
    let blkio = |v: &[berth_cgroups::BlkioEntry]| -> Vec<serde_json::Value> {
        v.iter().map(|e| serde_json::json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value})).collect()
    };
    let hugetlb: serde_json::Map<String, serde_json::Value> = s
        .hugetlb
        .iter()
        .map(|(k, h)| {
            (
                k.clone(),
                serde_json::json!({"usage": h.usage, "max": h.max_usage, "failcnt": h.failcnt}),
            )
        })
        .collect();
    serde_json::json!({
        "cpu": {
            "usage": {"total": s.cpu.usage_total_ns, "percpu": s.cpu.usage_per_cpu_ns, "kernel": s.cpu.usage_kernel_ns, "user": s.cpu.usage_user_ns},
            "throttling": {"periods": s.cpu.periods, "throttledPeriods": s.cpu.throttled_periods, "throttledTime": s.cpu.throttled_time_ns},
        },
        "memory": {
            "cache": s.memory.cache,
            "usage": {"limit": s.memory.limit, "usage": s.memory.usage, "max": s.memory.max_usage, "failcnt": s.memory.failcnt},
            "swap": {"limit": s.memory.swap_limit, "usage": s.memory.swap_usage, "failcnt": 0},
            "raw": {"rss": s.memory.rss, "cache": s.memory.cache},
        },
        "pids": {"current": s.pids.current, "limit": s.pids.limit.unwrap_or(0)},
        "blkio": {"ioServiceBytesRecursive": blkio(&s.blkio_bytes), "ioServicedRecursive": blkio(&s.blkio_ios)},
        "hugetlb": hugetlb,
        "intel_rdt": {},
        "network_interfaces": null,
    })
}
