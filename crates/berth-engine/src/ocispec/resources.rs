//! The container's cgroup limits from Docker's resource flags, checked with Docker's rules and
//! messages: one function per area (memory, cpu, pids, block I/O), each fed from `RunOptions`
//! and returning None when no flag asks for it. A new flag (`--cpu-period`) goes in its area's
//! function. Reads nothing from the system but the number of CPUs.

use super::SpecError;
use crate::options::RunOptions;
use oci_spec::runtime::{
    LinuxBlockIo, LinuxBlockIoBuilder, LinuxCpu, LinuxDeviceCgroup, LinuxMemory,
    LinuxMemoryBuilder, LinuxPids, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
};

/// Docker's smallest `--memory`.
const MIN_MEMORY: i64 = 6 << 20;

/// The CFS period `--cpus` is a share of, in microseconds.
const CPU_PERIOD: u64 = 100_000;

/// The limits the flags ask for, with `device_rules` as the device cgroup.
pub fn resources(
    o: &RunOptions,
    device_rules: Vec<LinuxDeviceCgroup>,
) -> Result<LinuxResources, SpecError> {
    let mut resources = LinuxResourcesBuilder::default()
        .devices(device_rules)
        .build()?;
    resources
        .set_memory(memory(o)?)
        .set_cpu(cpu(o)?)
        .set_pids(pids(o)?)
        .set_block_io(block_io(o)?);
    Ok(resources)
}

/// `--memory` and `--memory-swap`: swap (memory plus swap, as in Docker) defaults to twice the
/// memory; -1 is unlimited swap.
pub fn memory(o: &RunOptions) -> Result<Option<LinuxMemory>, SpecError> {
    let Some(limit) = o.memory else {
        if o.memory_swap.is_some_and(|s| s != -1) {
            return Err(SpecError::SwapWithoutMemory);
        }
        return Ok(None);
    };
    if limit < MIN_MEMORY {
        return Err(SpecError::MemoryTooSmall);
    }
    let swap = match o.memory_swap {
        Some(s) if s != -1 && s < limit => return Err(SpecError::SwapBelowMemory),
        Some(s) => s,
        None => limit.saturating_mul(2),
    };
    let memory = LinuxMemoryBuilder::default()
        .limit(limit)
        .swap(swap)
        .build()?;
    Ok(Some(memory))
}

/// `--cpus` (a CFS quota per 100 ms period), `--cpu-shares` and `--cpuset-cpus`.
pub fn cpu(o: &RunOptions) -> Result<Option<LinuxCpu>, SpecError> {
    let mut cpu = LinuxCpu::default();
    if let Some(cpus) = o.cpus {
        let quota = cfs_quota(cpus, CPU_PERIOD)?;
        cpu.set_period(Some(CPU_PERIOD)).set_quota(Some(quota));
    }
    cpu.set_shares(o.cpu_shares).set_cpus(o.cpuset_cpus.clone());
    Ok((cpu != LinuxCpu::default()).then_some(cpu))
}

/// The CFS quota that gives `cpus` CPUs' worth of time per `period`, if this machine has them.
fn cfs_quota(cpus: f64, period: u64) -> Result<i64, SpecError> {
    let online = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    if cpus <= 0.0 || cpus > online {
        return Err(SpecError::CpusOutOfRange { online });
    }
    Ok((cpus * period as f64) as i64)
}

/// `--pids-limit`: zero or less is unlimited (-1).
pub fn pids(o: &RunOptions) -> Result<Option<LinuxPids>, SpecError> {
    let Some(limit) = o.pids_limit else {
        return Ok(None);
    };
    let limit = if limit <= 0 { -1 } else { limit };
    Ok(Some(LinuxPidsBuilder::default().limit(limit).build()?))
}

/// `--blkio-weight`, 10 to 1000.
pub fn block_io(o: &RunOptions) -> Result<Option<LinuxBlockIo>, SpecError> {
    let Some(weight) = o.blkio_weight else {
        return Ok(None);
    };
    if !(10..=1000).contains(&weight) {
        return Err(SpecError::BlkioWeight(weight));
    }
    Ok(Some(LinuxBlockIoBuilder::default().weight(weight).build()?))
}
