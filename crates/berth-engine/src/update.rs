//! `update`: a container's resource limits (memory, swap and reservation, CPUs, CPU shares,
//! CFS and real-time period/quota, cpusets, pids, block I/O weight) and restart policy changed
//! after it was made. Checked with the same rules as at
//! create (`ocispec::resources`), written to its options (so the next start uses them) and its
//! inspect record, and applied to the cgroup of a running container through the runtime.

use crate::error::{EngineError, Result};
use crate::events::Event;
use crate::ocispec::resources;
use crate::options::RunOptions;
use crate::Engine;
use oci_spec::runtime::LinuxResources;

/// What to change; None leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct UpdateRequest {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    pub cpuset_mems: Option<String>,
    pub memory_reservation: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_rt_period: Option<u64>,
    pub cpu_rt_runtime: Option<i64>,
    /// `no`, `always`, `unless-stopped`, `on-failure[:N]`.
    pub restart: Option<String>,
}

impl UpdateRequest {
    /// Values no setting can take (an API client's `Memory: -5`), refused by name before
    /// anything changes; zero keeps its meaning of "no limit" and -1 of "unlimited" where Docker
    /// gives it one.
    fn check(&self) -> Result<()> {
        let bad = |what: &str, v: String| {
            Err(EngineError::msg(format!(
                "invalid {what}: {v}: it cannot be negative"
            )))
        };
        for (what, v) in [
            ("memory", self.memory),
            ("memory reservation", self.memory_reservation),
        ] {
            if let Some(v) = v.filter(|v| *v < 0) {
                return bad(what, v.to_string());
            }
        }
        if let Some(v) = self.memory_swap.filter(|v| *v < -1) {
            return bad("memory swap", v.to_string());
        }
        if let Some(v) = self.cpus.filter(|v| *v < 0.0 || !v.is_finite()) {
            return bad("cpus", v.to_string());
        }
        if let Some(v) = self.cpu_quota.filter(|v| *v < -1) {
            return bad("cpu quota", v.to_string());
        }
        Ok(())
    }

    fn apply_to(&self, o: &mut RunOptions) {
        if let Some(m) = self.memory {
            o.memory = (m > 0).then_some(m);
            if self.memory_swap.is_none() && o.memory_swap.is_some_and(|s| s != -1 && m > s) {
                // Docker keeps swap at least memory: a raised limit takes swap with it.
                o.memory_swap = Some(m.saturating_mul(2));
            }
        }
        if let Some(s) = self.memory_swap {
            o.memory_swap = (s != 0).then_some(s);
        }
        if let Some(c) = self.cpus {
            o.cpus = (c > 0.0).then_some(c);
        }
        if let Some(s) = self.cpu_shares {
            o.cpu_shares = (s > 0).then_some(s);
        }
        if let Some(c) = &self.cpuset_cpus {
            o.cpuset_cpus = (!c.is_empty()).then(|| c.clone());
        }
        if let Some(p) = self.pids_limit {
            o.pids_limit = Some(p);
        }
        if let Some(w) = self.blkio_weight {
            o.blkio_weight = (w > 0).then_some(w);
        }
        if let Some(m) = &self.cpuset_mems {
            o.cpuset_mems = (!m.is_empty()).then(|| m.clone());
        }
        if let Some(r) = self.memory_reservation {
            o.memory_reservation = (r > 0).then_some(r);
        }
        if let Some(p) = self.cpu_period {
            o.cpu_period = (p > 0).then_some(p);
        }
        if let Some(q) = self.cpu_quota {
            o.cpu_quota = (q != 0).then_some(q);
        }
        if let Some(p) = self.cpu_rt_period {
            o.cpu_rt_period = (p > 0).then_some(p);
        }
        if let Some(r) = self.cpu_rt_runtime {
            o.cpu_rt_runtime = Some(r);
        }
        if let Some(r) = &self.restart {
            o.restart = r.clone();
        }
    }
}

/// The limits of `o` as the runtime applies them to a live cgroup (devices untouched).
fn live_resources(o: &RunOptions) -> Result<LinuxResources> {
    let mut r = LinuxResources::default();
    r.set_memory(resources::memory(o)?)
        .set_cpu(resources::cpu(o)?)
        .set_pids(resources::pids(o)?)
        .set_block_io(resources::block_io(o)?);
    Ok(r)
}

impl Engine {
    /// Updates container `what`; returns Docker's warnings (none so far).
    pub fn update(&self, what: &str, req: &UpdateRequest) -> Result<Vec<String>> {
        let id = self.get(what)?.id;
        let _lock = self.records.lock(&id)?;
        let mut rec = self.records.load(&id)?;
        let mut o = self.options(&rec)?;
        req.check()?;
        req.apply_to(&mut o);
        let (policy, _) = crate::options::parse_restart(&o.restart).map_err(EngineError::msg)?;
        if rec.auto_remove && policy != "no" && req.restart.is_some() {
            return Err(EngineError::msg(
                "Restart policy cannot be updated because AutoRemove is enabled for the container",
            ));
        }
        let live = live_resources(&o)?;
        if rec.is_active() {
            berth_runtime::ops::update(&self.runtime_root, &id, &live)?;
        }
        crate::record::write_atomic(
            &self.records.dir(&id).join("options.json"),
            &serde_json::to_vec(&o).expect("options serialize"),
        )
        .map_err(|e| EngineError::io(format!("container {}: options", rec.name), e))?;
        let hc = &mut rec.host_config;
        hc["Memory"] = o.memory.unwrap_or(0).into();
        hc["MemorySwap"] = o.memory_swap.unwrap_or(0).into();
        hc["NanoCpus"] = o.cpus.map_or(0, |c| (c * 1e9) as i64).into();
        hc["CpuShares"] = o.cpu_shares.unwrap_or(0).into();
        hc["CpusetCpus"] = o.cpuset_cpus.clone().unwrap_or_default().into();
        hc["PidsLimit"] = o.pids_limit.into();
        hc["BlkioWeight"] = o.blkio_weight.unwrap_or(0).into();
        hc["CpusetMems"] = o.cpuset_mems.clone().unwrap_or_default().into();
        hc["MemoryReservation"] = o.memory_reservation.unwrap_or(0).into();
        hc["CpuPeriod"] = o.cpu_period.unwrap_or(0).into();
        hc["CpuQuota"] = o.cpu_quota.unwrap_or(0).into();
        hc["CpuRealtimePeriod"] = o.cpu_rt_period.unwrap_or(0).into();
        hc["CpuRealtimeRuntime"] = o.cpu_rt_runtime.unwrap_or(0).into();
        hc["RestartPolicy"]["Name"] = policy.clone().into();
        rec.restart_policy = if o.restart.is_empty() {
            "no".into()
        } else {
            o.restart.clone()
        };
        self.records.save(&rec)?;
        self.emit(Event::container(&rec, "update"));
        Ok(Vec::new())
    }
}
