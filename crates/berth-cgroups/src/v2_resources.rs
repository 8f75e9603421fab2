//! Writes OCI `linux.resources` to cgroup v2 files in one directory, converting v1-shaped
//! values (shares, blkio weights, memory+swap) the way runc does. Devices go through an eBPF
//! program (`devices_bpf`); `unified` keys are written verbatim, last. Never touches v1 files.

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use crate::cgroupfs::{self, write};
use crate::convert::{self, blkio_weight_to_io_weight, shares_to_weight};
use crate::{devices_bpf, v1_resources::checked_page_size, Error, Result};

pub fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        memory(dir, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(dir, c)?;
    }
    if let Some(p) = r.pids() {
        write("pids", dir, "pids.max", &convert::pids_max(p.limit()))?;
    }
    if let Some(b) = r.block_io() {
        io(dir, b)?;
    }
    for h in r.hugepage_limits().iter().flatten() {
        let file = format!("hugetlb.{}.max", checked_page_size(h.page_size())?);
        write("hugetlb", dir, &file, &convert::limit_to_v2(h.limit()))?;
    }
    if let Some(rules) = r.devices() {
        devices_bpf::apply(dir, rules)?;
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(Error::unsupported(
                "net_cls",
                "network classID/priorities require cgroup v1",
            ));
        }
    }
    for (dev, limit) in r.rdma().iter().flatten() {
        let v = |o: Option<u32>| o.map_or("max".to_string(), |n| n.to_string());
        let line = format!(
            "{dev} hca_handle={} hca_object={}",
            v(limit.hca_handles()),
            v(limit.hca_objects())
        );
        write("rdma", dir, "rdma.max", &line)?;
    }
    if let Some(u) = r.unified() {
        let sorted: BTreeMap<_, _> = u.iter().collect();
        for (key, value) in sorted {
            unified(dir, key, value)?;
        }
    }
    Ok(())
}

/// A unified key is a file name in this cgroup: no slashes, no dot files, no `..`.
fn unified(dir: &Path, key: &str, value: &str) -> Result<()> {
    if key.is_empty() || key.contains('/') || key.starts_with('.') {
        return Err(Error::invalid(
            "unified",
            "key",
            format!("{key:?} is not a cgroup file name"),
        ));
    }
    let controller = key.split('.').next().unwrap_or(key);
    write(controller, dir, key, value)
}

fn memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    let limit = m.limit().filter(|&v| v != 0);
    if let (Some(l), Some(true)) = (limit, m.check_before_update()) {
        let usage = cgroupfs::read_u64(dir, "memory.current").unwrap_or(0);
        if l > 0 && usage > l as u64 {
            return Err(Error::invalid(
                "memory",
                "limit",
                format!("{l} is below current usage {usage}"),
            ));
        }
    }
    if let Some(swap) = convert::swap_to_v2(m.swap(), limit)? {
        // Without swap accounting there is no memory.swap.max; "unlimited" and "no swap on top
        // of the limit" (memory+swap equal to the limit) then need no file, as with runc.
        if !(swap == "max" || swap == "0") || dir.join("memory.swap.max").exists() {
            write("memory", dir, "memory.swap.max", &swap)?;
        }
    }
    if let Some(l) = limit {
        write("memory", dir, "memory.max", &convert::limit_to_v2(l))?;
    }
    if let Some(r) = m.reservation().filter(|&v| v != 0) {
        write("memory", dir, "memory.low", &convert::limit_to_v2(r))?;
    }
    // swappiness, disableOOMKiller, kernel and kernelTCP have no v2 file: ignored, like runc.
    Ok(())
}

fn cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(w) = c.shares().and_then(shares_to_weight) {
        write("cpu", dir, "cpu.weight", &w.to_string())?;
    }
    if let Some(max) = convert::cpu_max(
        c.quota().filter(|&q| q != 0),
        c.period().filter(|&p| p != 0),
    ) {
        write("cpu", dir, "cpu.max", &max)?;
    }
    if let Some(b) = c.burst() {
        write("cpu", dir, "cpu.max.burst", &b.to_string())?;
    }
    if c.realtime_runtime().is_some_and(|r| r != 0) || c.realtime_period().is_some_and(|p| p != 0) {
        return Err(Error::unsupported(
            "cpu",
            "realtime runtime/period require cgroup v1",
        ));
    }
    if let Some(i) = c.idle() {
        write("cpu", dir, "cpu.idle", &i.to_string())?;
    }
    for (file, value) in [("cpuset.cpus", c.cpus()), ("cpuset.mems", c.mems())] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            write("cpuset", dir, file, v)?;
        }
    }
    Ok(())
}

/// io.weight ("default N", "MAJ:MIN N") and io.max ("MAJ:MIN rbps=N wbps=N riops=N wiops=N").
fn io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    if let Some(w) = b.weight().and_then(blkio_weight_to_io_weight) {
        write("io", dir, "io.weight", &format!("default {w}"))?;
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight().and_then(blkio_weight_to_io_weight) {
            write(
                "io",
                dir,
                "io.weight",
                &format!("{}:{} {w}", wd.major(), wd.minor()),
            )?;
        }
    }
    // leafWeight has no v2 equivalent and is ignored.
    let mut max: BTreeMap<(i64, i64), Vec<String>> = BTreeMap::new();
    let lists = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, list) in lists {
        for t in list.iter().flatten() {
            let rate = if t.rate() == 0 {
                "max".to_string()
            } else {
                t.rate().to_string()
            };
            max.entry((t.major(), t.minor()))
                .or_default()
                .push(format!("{key}={rate}"));
        }
    }
    for ((major, minor), settings) in max {
        write(
            "io",
            dir,
            "io.max",
            &format!("{major}:{minor} {}", settings.join(" ")),
        )?;
    }
    Ok(())
}
