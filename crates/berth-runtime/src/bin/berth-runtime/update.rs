//! `update`: new resource limits for a running container, from `-r FILE|-` (runc's JSON, the shape of
//! linux.resources) and/or flags; flags win. Sizes accept runc's units (k, m, g; binary).

use clap::Args;
use serde_json::{json, Map, Value};

use berth_runtime::error::{Context, Error, Result};

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct UpdateArgs {
    /// JSON file with the new resources ("-" for stdin)
    #[arg(short = 'r', long)]
    pub resources: Option<String>,
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long = "kernel-memory")]
    pub kernel_memory: Option<String>,
    #[arg(long = "kernel-memory-tcp")]
    pub kernel_memory_tcp: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    pub id: String,
}

/// "128M" -> 134217728; "-1" stays -1.
pub fn parse_size(s: &str) -> Result<i64> {
    berth_sys::units::parse_size_or_unlimited(s).map_err(|e| Error::msg(e.to_string()))
}

fn set(obj: &mut Map<String, Value>, section: &str, key: &str, v: Value) {
    let e = obj.entry(section).or_insert_with(|| json!({}));
    if let Value::Object(m) = e {
        m.insert(key.to_string(), v);
    }
}

/// The requested change as linux.resources JSON.
pub fn requested(a: &UpdateArgs) -> Result<Value> {
    let mut v: Value = match a.resources.as_deref() {
        Some("-") => {
            serde_json::from_reader(std::io::stdin()).ctx("update: resources from stdin")?
        }
        Some(path) => {
            let data = std::fs::read(path).with_ctx(|| format!("update: {path}"))?;
            serde_json::from_slice(&data).with_ctx(|| format!("update: {path}"))?
        }
        None => json!({}),
    };
    let obj = v
        .as_object_mut()
        .ok_or_else(|| Error::msg("update: resources must be a JSON object"))?;
    if let Some(m) = &a.memory {
        set(obj, "memory", "limit", json!(parse_size(m)?));
    }
    if let Some(m) = &a.memory_swap {
        set(obj, "memory", "swap", json!(parse_size(m)?));
    }
    if let Some(m) = &a.memory_reservation {
        set(obj, "memory", "reservation", json!(parse_size(m)?));
    }
    if let Some(m) = &a.kernel_memory {
        set(obj, "memory", "kernel", json!(parse_size(m)?));
    }
    if let Some(m) = &a.kernel_memory_tcp {
        set(obj, "memory", "kernelTCP", json!(parse_size(m)?));
    }
    if let Some(n) = a.pids_limit {
        set(obj, "pids", "limit", json!(n));
    }
    if let Some(n) = a.cpu_quota {
        set(obj, "cpu", "quota", json!(n));
    }
    if let Some(n) = a.cpu_period {
        set(obj, "cpu", "period", json!(n));
    }
    if let Some(n) = a.cpu_share {
        set(obj, "cpu", "shares", json!(n));
    }
    if let Some(n) = a.cpu_rt_period {
        set(obj, "cpu", "realtimePeriod", json!(n));
    }
    if let Some(n) = a.cpu_rt_runtime {
        set(obj, "cpu", "realtimeRuntime", json!(n));
    }
    if let Some(s) = &a.cpuset_cpus {
        set(obj, "cpu", "cpus", json!(s));
    }
    if let Some(s) = &a.cpuset_mems {
        set(obj, "cpu", "mems", json!(s));
    }
    if let Some(w) = a.blkio_weight {
        set(obj, "blockIO", "weight", json!(w));
    }
    // Unlimited memory with a swap limit left in place is refused by the kernel (memory+swap would
    // be below memory): like runc, unlimited memory makes swap unlimited too unless it is given.
    if let Some(mem) = v.get_mut("memory").and_then(|m| m.as_object_mut()) {
        if mem.get("limit").and_then(|l| l.as_i64()) == Some(-1) && !mem.contains_key("swap") {
            mem.insert("swap".into(), json!(-1));
        }
    }
    Ok(v)
}

pub fn run(root: &std::path::Path, a: &UpdateArgs) -> Result<()> {
    let v = requested(a)?;
    let res: oci_spec::runtime::LinuxResources =
        serde_json::from_value(v).ctx("update: resources")?;
    berth_runtime::ops::update(root, &a.id, &res)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("128M").unwrap(), 128 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("-1").unwrap(), -1);
        assert!(parse_size("12x").is_err());
    }
}
