//! The container's cgroup limits from Docker's resource flags, checked with Docker's rules and
//! messages: one function per area (memory, cpu, pids, block I/O), each fed from `RunOptions`
//! and returning None when no flag asks for it. A new flag (`--cpu-period`) goes in its area's
//! function. Reads nothing from the system but the number of CPUs.

pub use super::blkio::block_io;
use super::SpecError;
use crate::options::RunOptions;
use oci_spec::runtime::{
    LinuxCpu, LinuxDeviceCgroup, LinuxMemory, LinuxMemoryBuilder, LinuxPids, LinuxPidsBuilder,
    LinuxResources, LinuxResourcesBuilder,
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

/// `--memory`, `--memory-reservation`, `--oom-kill-disable`, `--memory-swappiness` (0 to 100;
/// -1 leaves the host's) and `--memory-swap`: swap (memory plus swap, as in Docker) defaults to twice the
/// memory; -1 is unlimited swap.
pub fn memory(o: &RunOptions) -> Result<Option<LinuxMemory>, SpecError> {
    let mut memory = memory_limits(o)?.unwrap_or_default();
    if let Some(r) = o.memory_reservation {
        if o.memory.is_some_and(|m| m < r) {
            return Err(SpecError::ReservationAboveMemory);
        }
        memory.set_reservation(Some(r));
    }
    if o.oom_kill_disable {
        memory.set_disable_oom_killer(Some(true));
    }
    match o.memory_swappiness {
        None | Some(-1) => {}
        Some(s @ 0..=100) => {
            memory.set_swappiness(Some(s as u64));
        }
        Some(s) => return Err(SpecError::Swappiness(s)),
    }
    Ok((memory != LinuxMemory::default()).then_some(memory))
}

/// `--memory` and `--memory-swap` alone.
fn memory_limits(o: &RunOptions) -> Result<Option<LinuxMemory>, SpecError> {
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

/// `--cpus` (a CFS quota per 100 ms period) or its older form `--cpu-period`/`--cpu-quota`,
/// `--cpu-rt-period`/`--cpu-rt-runtime`, `--cpu-shares` and `--cpuset-cpus`.
pub fn cpu(o: &RunOptions) -> Result<Option<LinuxCpu>, SpecError> {
    let mut cpu = LinuxCpu::default();
    if let Some(cpus) = o.cpus {
        if o.cpu_period.is_some() {
            return Err(SpecError::CpusAndPeriod);
        }
        if o.cpu_quota.is_some() {
            return Err(SpecError::CpusAndQuota);
        }
        let quota = cfs_quota(cpus, CPU_PERIOD)?;
        cpu.set_period(Some(CPU_PERIOD)).set_quota(Some(quota));
    }
    if let Some(period) = o.cpu_period.filter(|p| *p != 0) {
        if !(1000..=1_000_000).contains(&period) {
            return Err(SpecError::CpuPeriodRange);
        }
        cpu.set_period(Some(period));
    }
    if let Some(quota) = o.cpu_quota.filter(|q| *q != 0) {
        if quota > 0 && quota < 1000 {
            return Err(SpecError::CpuQuotaRange);
        }
        cpu.set_quota(Some(quota));
    }
    if let Some(runtime) = o.cpu_rt_runtime {
        if runtime < -1 {
            return Err(SpecError::RealtimeRuntime(runtime));
        }
        if let Some(period) = o
            .cpu_rt_period
            .filter(|p| runtime > 0 && (runtime as u64) > *p)
        {
            return Err(SpecError::RealtimeAbovePeriod { runtime, period });
        }
    }
    if let Some(cpus) = &o.cpuset_cpus {
        check_cpuset(
            cpus,
            "cpuset cpus",
            "CPUs",
            "/sys/devices/system/cpu/online",
        )?;
    }
    if let Some(mems) = &o.cpuset_mems {
        check_cpuset(
            mems,
            "cpuset mems",
            "memory nodes",
            "/sys/devices/system/node/online",
        )?;
    }
    cpu.set_realtime_period(o.cpu_rt_period)
        .set_realtime_runtime(o.cpu_rt_runtime);
    cpu.set_shares(o.cpu_shares)
        .set_cpus(o.cpuset_cpus.clone())
        .set_mems(o.cpuset_mems.clone());
    Ok((cpu != LinuxCpu::default()).then_some(cpu))
}

/// A cpuset list (`0-2,5`) as inclusive ranges; None when it is not one. Never expanded: a
/// range of four billion is two numbers.
fn cpuset_ranges(list: &str) -> Option<Vec<(u32, u32)>> {
    list.split(',')
        .map(|part| {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            (a <= b).then_some((a, b))
        })
        .collect()
}

/// `--cpuset-cpus`/`--cpuset-mems`: a well-formed list, every entry of which this machine has
/// online (`online` is the kernel's list of them). Docker's messages. A machine that does not
/// say (no such file: no NUMA nodes listed) is left to the kernel's own check at the start.
fn check_cpuset(
    list: &str,
    what: &'static str,
    plural: &'static str,
    online: &str,
) -> Result<(), SpecError> {
    let requested = cpuset_ranges(list).ok_or_else(|| SpecError::CpusetSyntax {
        what,
        value: list.into(),
    })?;
    let Some(available) = std::fs::read_to_string(online)
        .ok()
        .and_then(|t| cpuset_ranges(t.trim()).map(|r| (t.trim().to_string(), r)))
    else {
        return Ok(());
    };
    let covered = |&(a, b): &(u32, u32)| available.1.iter().any(|&(lo, hi)| lo <= a && b <= hi);
    if requested.iter().all(covered) {
        return Ok(());
    }
    Err(SpecError::CpusetUnavailable {
        what: plural,
        requested: list.into(),
        available: available.0,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(f: impl FnOnce(&mut RunOptions)) -> RunOptions {
        let mut o = RunOptions::default();
        f(&mut o);
        o
    }

    fn online() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    #[test]
    fn no_resource_flags_set_no_limits() {
        let r = resources(&RunOptions::default(), Vec::new()).unwrap();
        assert_eq!(
            r,
            LinuxResourcesBuilder::default()
                .devices(vec![])
                .build()
                .unwrap()
        );
    }

    #[test]
    fn reservation_oom_and_cfs_flags_follow_dockers_rules() {
        let m = memory(&opts(|o| {
            o.memory_reservation = Some(32 << 20);
            o.oom_kill_disable = true;
        }))
        .unwrap()
        .unwrap();
        assert_eq!(m.reservation(), Some(32 << 20));
        assert_eq!(m.disable_oom_killer(), Some(true));
        assert_eq!(m.limit(), None);
        let e = memory(&opts(|o| {
            o.memory = Some(64 << 20);
            o.memory_reservation = Some(128 << 20);
        }))
        .unwrap_err();
        assert!(e.to_string().contains("memory reservation"));
        let c = cpu(&opts(|o| {
            o.cpu_period = Some(50_000);
            o.cpu_quota = Some(25_000);
        }))
        .unwrap()
        .unwrap();
        assert_eq!((c.period(), c.quota()), (Some(50_000), Some(25_000)));
        let both = |f: fn(&mut RunOptions)| cpu(&opts(f)).unwrap_err().to_string();
        assert!(both(|o| {
            o.cpus = Some(0.5);
            o.cpu_period = Some(50_000);
        })
        .contains("Nano CPUs and CPU Period"));
        assert!(both(|o| o.cpu_period = Some(999)).contains("cfs period"));
        assert!(both(|o| o.cpu_quota = Some(10)).contains("cfs quota"));
        assert!(cpu(&opts(|o| o.cpu_quota = Some(-1))).is_ok());
    }

    #[test]
    fn memory_swap_defaults_to_twice_the_memory() {
        let m = memory(&opts(|o| o.memory = Some(64 << 20)))
            .unwrap()
            .unwrap();
        assert_eq!((m.limit(), m.swap()), (Some(64 << 20), Some(128 << 20)));
        let m = memory(&opts(|o| o.memory = Some(6 << 20)))
            .unwrap()
            .unwrap();
        assert_eq!(m.limit(), Some(6 << 20), "6 MB is allowed");
    }

    #[test]
    fn memory_swap_may_equal_the_memory_or_be_unlimited() {
        for swap in [64 << 20, -1, 1 << 30] {
            let o = opts(|o| {
                o.memory = Some(64 << 20);
                o.memory_swap = Some(swap);
            });
            assert_eq!(memory(&o).unwrap().unwrap().swap(), Some(swap));
        }
        assert_eq!(memory(&opts(|o| o.memory_swap = Some(-1))).unwrap(), None);
    }

    #[test]
    fn memory_flags_are_checked_with_dockers_messages() {
        let err = |f: fn(&mut RunOptions)| memory(&opts(f)).unwrap_err().to_string();
        assert_eq!(
            err(|o| o.memory = Some(1 << 20)),
            "Minimum memory limit allowed is 6MB"
        );
        assert_eq!(
            err(|o| o.memory_swap = Some(1 << 30)),
            "You should always set the Memory limit when using Memoryswap limit"
        );
        assert_eq!(
            err(|o| {
                o.memory = Some(64 << 20);
                o.memory_swap = Some(32 << 20);
            }),
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        );
    }

    #[test]
    fn a_huge_memory_limit_does_not_overflow_the_default_swap() {
        let m = memory(&opts(|o| o.memory = Some(i64::MAX)))
            .unwrap()
            .unwrap();
        assert_eq!(m.swap(), Some(i64::MAX));
    }

    #[test]
    fn cpus_is_a_quota_per_100ms_period() {
        let c = cpu(&opts(|o| o.cpus = Some(0.5))).unwrap().unwrap();
        assert_eq!((c.period(), c.quota()), (Some(100_000), Some(50_000)));
        assert_eq!((c.shares(), c.cpus()), (None, &None));
        let c = cpu(&opts(|o| o.cpus = Some(online() as f64)))
            .unwrap()
            .unwrap();
        assert_eq!(c.quota(), Some(online() as i64 * 100_000));
    }

    #[test]
    fn cpus_beyond_this_machine_or_not_positive_are_refused() {
        let n = online();
        let want =
            format!("range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available");
        for cpus in [0.0, -1.0, n as f64 + 0.5] {
            let e = cpu(&opts(|o| o.cpus = Some(cpus))).unwrap_err();
            assert_eq!(e.to_string(), want, "{cpus}");
        }
    }

    #[test]
    fn cpuset_lists_are_parsed_as_ranges_and_checked_against_what_is_online() {
        assert_eq!(cpuset_ranges("0-2,5"), Some(vec![(0, 2), (5, 5)]));
        assert_eq!(cpuset_ranges("0-4294967295"), Some(vec![(0, u32::MAX)]));
        for bad in ["", "x", "2-1", "1,", "-1", "0-1-2"] {
            assert_eq!(cpuset_ranges(bad), None, "{bad}");
        }
        let t = tempfile::tempdir().unwrap();
        let online = t.path().join("online");
        std::fs::write(&online, "0-1\n").unwrap();
        let check = |l: &str| check_cpuset(l, "cpuset cpus", "CPUs", online.to_str().unwrap());
        assert!(check("0-1").is_ok() && check("1").is_ok());
        let err = check("99").unwrap_err().to_string();
        assert_eq!(
            err,
            "Requested CPUs are not available - requested 99, available: 0-1"
        );
        assert!(check("0-4294967295").is_err());
        assert_eq!(
            check("a").unwrap_err().to_string(),
            "Invalid value a for cpuset cpus"
        );
        let missing = t.path().join("none");
        assert!(check_cpuset(
            "3",
            "cpuset mems",
            "memory nodes",
            missing.to_str().unwrap()
        )
        .is_ok());
    }

    #[test]
    fn cpu_shares_and_cpuset_need_no_quota() {
        let c = cpu(&opts(|o| {
            o.cpu_shares = Some(0);
            o.cpuset_cpus = Some("0-1".into());
        }))
        .unwrap()
        .unwrap();
        assert_eq!((c.shares(), c.cpus().as_deref()), (Some(0), Some("0-1")));
        assert_eq!((c.period(), c.quota()), (None, None));
        assert_eq!(cpu(&RunOptions::default()).unwrap(), None);
    }

    #[test]
    fn pids_limit_of_zero_or_less_is_unlimited() {
        let limit = |p: i64| {
            pids(&opts(|o| o.pids_limit = Some(p)))
                .unwrap()
                .unwrap()
                .limit()
        };
        assert_eq!((limit(100), limit(0), limit(-5)), (100, -1, -1));
        assert_eq!(pids(&RunOptions::default()).unwrap(), None);
    }

    #[test]
    fn swappiness_and_realtime_are_checked() {
        let m = memory(&opts(|o| o.memory_swappiness = Some(0)))
            .unwrap()
            .unwrap();
        assert_eq!(m.swappiness(), Some(0));
        assert_eq!(
            memory(&opts(|o| o.memory_swappiness = Some(-1))).unwrap(),
            None
        );
        for bad in [101, -2] {
            let e = memory(&opts(|o| o.memory_swappiness = Some(bad))).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "invalid --memory-swappiness {bad}: valid memory swappiness range is 0-100"
                )
            );
        }
        let c = cpu(&opts(|o| {
            o.cpu_rt_period = Some(100_000);
            o.cpu_rt_runtime = Some(10_000);
        }))
        .unwrap()
        .unwrap();
        assert_eq!(
            (c.realtime_period(), c.realtime_runtime()),
            (Some(100_000), Some(10_000))
        );
        let e = cpu(&opts(|o| {
            o.cpu_rt_period = Some(1000);
            o.cpu_rt_runtime = Some(2000);
        }))
        .unwrap_err();
        assert!(e.to_string().contains("cannot be higher"), "{e}");
        assert!(cpu(&opts(|o| o.cpu_rt_runtime = Some(-5))).is_err());
    }

    #[test]
    fn each_area_lands_in_the_resources() {
        let o = opts(|o| {
            o.memory = Some(64 << 20);
            o.cpu_shares = Some(512);
            o.pids_limit = Some(10);
            o.blkio_weight = Some(100);
        });
        let r = resources(&o, Vec::new()).unwrap();
        assert_eq!(r.memory(), &memory(&o).unwrap());
        assert_eq!(r.cpu(), &cpu(&o).unwrap());
        assert_eq!(r.pids(), &pids(&o).unwrap());
        assert_eq!(r.block_io(), &block_io(&o).unwrap());
        assert!(r.memory().is_some() && r.cpu().is_some());
        assert!(r.pids().is_some() && r.block_io().is_some());
    }
}
