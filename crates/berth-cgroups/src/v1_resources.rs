//! Writes OCI `linux.resources` to cgroup v1 files, controller by controller. A controller that
//! is not mounted is an error only when the spec asks for its resource. Kernel-memory limits are
//! ignored (as runc does); `unified` is refused. Never touches v2 files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory, LinuxNetwork,
    LinuxResources,
};

use crate::cgroupfs::{self, write};
use crate::{Error, Result};

/// One cgroup's directories in the v1 hierarchies.
struct V1<'a> {
    mounts: &'a BTreeMap<String, PathBuf>,
    rel: &'a Path,
}

impl V1<'_> {
    /// The directory for `controller`, or an error naming the resource that needed it.
    fn dir(&self, controller: &str, resource: &str) -> Result<PathBuf> {
        self.mounts
            .get(controller)
            .map(|m| m.join(self.rel))
            .ok_or_else(|| Error::missing(controller, resource))
    }
}

pub fn apply(mounts: &BTreeMap<String, PathBuf>, rel: &Path, r: &LinuxResources) -> Result<()> {
    let cg = V1 { mounts, rel };
    if let Some(m) = r.memory() {
        memory(&cg, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(&cg, c)?;
    }
    if let Some(p) = r.pids() {
        write(
            "pids",
            &cg.dir("pids", "pids limit")?,
            "pids.max",
            &crate::convert::pids_max(p.limit()),
        )?;
    }
    if let Some(b) = r.block_io() {
        block_io(&cg, b)?;
    }
    for h in r.hugepage_limits().iter().flatten() {
        let dir = cg.dir("hugetlb", "hugepage limit")?;
        let file = format!(
            "hugetlb.{}.limit_in_bytes",
            checked_page_size(h.page_size())?
        );
        write("hugetlb", &dir, &file, &h.limit().to_string())?;
    }
    if let Some(d) = r.devices() {
        devices(&cg, d)?;
    }
    if let Some(n) = r.network() {
        network(&cg, n)?;
    }
    for (dev, limit) in r.rdma().iter().flatten() {
        let dir = cg.dir("rdma", "rdma limit")?;
        let v = |o: Option<u32>| o.map_or("max".to_string(), |n| n.to_string());
        let line = format!(
            "{dev} hca_handle={} hca_object={}",
            v(limit.hca_handles()),
            v(limit.hca_objects())
        );
        write("rdma", &dir, "rdma.max", &line)?;
    }
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(Error::unsupported(
            "unified",
            "unified resources require cgroup v2",
        ));
    }
    Ok(())
}

/// Page sizes become part of a file name: allow only `2MB`-like values.
pub fn checked_page_size(size: &str) -> Result<&str> {
    if !size.is_empty() && size.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(size)
    } else {
        Err(Error::invalid(
            "hugetlb",
            "page size",
            format!("{size:?} is not like \"2MB\""),
        ))
    }
}

/// Writes two dependent files (limit and memsw, rt period and runtime): in the given order,
/// or in the other order when the kernel refuses the first write with EINVAL.
fn write_pair(ctl: &str, dir: &Path, a: (&str, String), b: (&str, String)) -> Result<()> {
    match write(ctl, dir, a.0, &a.1) {
        Ok(()) => write(ctl, dir, b.0, &b.1),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            write(ctl, dir, b.0, &b.1)?;
            write(ctl, dir, a.0, &a.1)
        }
        Err(e) => Err(e),
    }
}

fn memory(cg: &V1, m: &LinuxMemory) -> Result<()> {
    let dir = cg.dir("memory", "memory limit")?;
    let limit = m.limit().filter(|&v| v != 0);
    let swap = m.swap().filter(|&v| v != 0);
    if let (Some(l), Some(true)) = (limit, m.check_before_update()) {
        let usage = cgroupfs::read_u64(&dir, "memory.usage_in_bytes").unwrap_or(0);
        if l > 0 && usage > l as u64 {
            return Err(Error::invalid(
                "memory",
                "limit",
                format!("{l} is below current usage {usage}"),
            ));
        }
    }
    let memsw = "memory.memsw.limit_in_bytes";
    let has_memsw = dir.join(memsw).exists();
    if swap.is_some_and(|s| s > 0) && !has_memsw {
        return Err(Error::unsupported(
            "memory",
            "swap limit requested but swap accounting is off",
        ));
    }
    match (limit, swap.filter(|_| has_memsw)) {
        (Some(l), Some(s)) => write_pair(
            "memory",
            &dir,
            ("memory.limit_in_bytes", l.to_string()),
            (memsw, s.to_string()),
        )?,
        (Some(l), None) => write("memory", &dir, "memory.limit_in_bytes", &l.to_string())?,
        (None, Some(s)) => write("memory", &dir, memsw, &s.to_string())?,
        (None, None) => {}
    }
    if let Some(r) = m.reservation().filter(|&v| v != 0) {
        write("memory", &dir, "memory.soft_limit_in_bytes", &r.to_string())?;
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(Error::invalid(
                "memory",
                "swappiness",
                format!("{s} is above 100"),
            ));
        }
        write("memory", &dir, "memory.swappiness", &s.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        write("memory", &dir, "memory.oom_control", "1")?;
    }
    // `kernel` is ignored (kmem limits are gone from modern kernels; the file accepts and ignores
    // writes). The TCP buffer limit still works where the file exists.
    if let Some(t) = m.kernel_tcp() {
        if dir.join("memory.kmem.tcp.limit_in_bytes").exists() {
            write(
                "memory",
                &dir,
                "memory.kmem.tcp.limit_in_bytes",
                &t.to_string(),
            )?;
        }
    }
    Ok(())
}

fn cpu(cg: &V1, c: &LinuxCpu) -> Result<()> {
    let wants_cpu = c.shares().is_some_and(|s| s != 0)
        || c.quota().is_some()
        || c.period().is_some()
        || c.burst().is_some()
        || c.realtime_period().is_some()
        || c.realtime_runtime().is_some()
        || c.idle().is_some();
    if wants_cpu {
        let dir = cg.dir("cpu", "cpu limit")?;
        if let Some(s) = c.shares().filter(|&s| s != 0) {
            write("cpu", &dir, "cpu.shares", &s.to_string())?;
        }
        let period = c
            .period()
            .filter(|&p| p != 0)
            .map(|p| ("cpu.cfs_period_us", p.to_string()));
        let quota = c
            .quota()
            .filter(|&q| q != 0)
            .map(|q| ("cpu.cfs_quota_us", q.to_string()));
        pair_or_single("cpu", &dir, period, quota)?;
        if let Some(b) = c.burst() {
            write("cpu", &dir, "cpu.cfs_burst_us", &b.to_string())?;
        }
        let rt_period = c
            .realtime_period()
            .filter(|&p| p != 0)
            .map(|p| ("cpu.rt_period_us", p.to_string()));
        let rt_runtime = c
            .realtime_runtime()
            .filter(|&r| r != 0)
            .map(|r| ("cpu.rt_runtime_us", r.to_string()));
        pair_or_single("cpu", &dir, rt_period, rt_runtime)?;
        if let Some(i) = c.idle() {
            write("cpu", &dir, "cpu.idle", &i.to_string())?;
        }
    }
    for (file, value) in [("cpuset.cpus", c.cpus()), ("cpuset.mems", c.mems())] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            write("cpuset", &cg.dir("cpuset", file)?, file, v)?;
        }
    }
    Ok(())
}

fn pair_or_single(
    ctl: &str,
    dir: &Path,
    a: Option<(&str, String)>,
    b: Option<(&str, String)>,
) -> Result<()> {
    match (a, b) {
        (Some(a), Some(b)) => write_pair(ctl, dir, a, b),
        (Some((f, v)), None) | (None, Some((f, v))) => write(ctl, dir, f, &v),
        (None, None) => Ok(()),
    }
}

fn block_io(cg: &V1, b: &LinuxBlockIo) -> Result<()> {
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    let wants = b.weight().is_some_and(|w| w != 0)
        || b.leaf_weight().is_some_and(|w| w != 0)
        || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
        || throttles
            .iter()
            .any(|(_, t)| t.as_ref().is_some_and(|v| !v.is_empty()));
    if !wants {
        return Ok(());
    }
    let dir = cg.dir("blkio", "block I/O limit")?;
    // CFQ offers blkio.weight; with BFQ the same knob is blkio.bfq.weight.
    let prefix = if dir.join("blkio.weight").exists() {
        "blkio"
    } else {
        "blkio.bfq"
    };
    let weight_file = |name: &str| -> Result<String> {
        let f = format!("{prefix}.{name}");
        if dir.join(&f).exists() {
            Ok(f)
        } else {
            Err(Error::unsupported(
                "blkio",
                format!("blkio.{name} requested but not available (no CFQ/BFQ I/O scheduler)"),
            ))
        }
    };
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        write("blkio", &dir, &weight_file("weight")?, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight().filter(|&w| w != 0) {
        write("blkio", &dir, &weight_file("leaf_weight")?, &w.to_string())?;
    }
    for wd in b.weight_device().iter().flatten() {
        let dev = format!("{}:{}", wd.major(), wd.minor());
        if let Some(w) = wd.weight() {
            write(
                "blkio",
                &dir,
                &weight_file("weight_device")?,
                &format!("{dev} {w}"),
            )?;
        }
        if let Some(w) = wd.leaf_weight() {
            write(
                "blkio",
                &dir,
                &weight_file("leaf_weight_device")?,
                &format!("{dev} {w}"),
            )?;
        }
    }
    for (file, list) in throttles {
        for t in list.iter().flatten() {
            write(
                "blkio",
                &dir,
                file,
                &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}

/// Deny everything, then replay the rules in order (the kernel keeps the list; later wins).
fn devices(cg: &V1, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let dir = cg.dir("devices", "device rules")?;
    // One open per file, one write per rule (the kernel parses each write as one rule): a
    // container's default rules are a dozen, on the path of every start.
    let mut files = RuleFiles::new(&dir);
    files.write("devices.deny", "a")?;
    for d in rules {
        if d.access()
            .as_deref()
            .is_some_and(|a| !a.is_empty() && !a.chars().any(|c| "rwm".contains(c)))
        {
            continue; // nothing the kernel knows: the rule changes nothing
        }
        let file = if d.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        };
        files.write(file, &v1_device_rule(d))?;
    }
    Ok(())
}

/// devices.allow and devices.deny, each opened once (on its first rule).
struct RuleFiles<'a> {
    dir: &'a Path,
    allow: Option<std::fs::File>,
    deny: Option<std::fs::File>,
}

impl<'a> RuleFiles<'a> {
    fn new(dir: &'a Path) -> Self {
        RuleFiles {
            dir,
            allow: None,
            deny: None,
        }
    }

    fn write(&mut self, file: &'static str, rule: &str) -> Result<()> {
        use std::io::Write;
        let err = |err| Error::Write {
            controller: "devices".into(),
            file: file.into(),
            value: rule.into(),
            err,
        };
        let slot = if file == "devices.allow" {
            &mut self.allow
        } else {
            &mut self.deny
        };
        let f = match slot {
            Some(f) => f,
            None => slot.insert(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(self.dir.join(file))
                    .map_err(err)?,
            ),
        };
        f.write_all(rule.as_bytes()).map_err(err)
    }
}

/// `c 1:3 rwm`; a missing or negative number is `*`, a missing access is `rwm`.
pub fn v1_device_rule(d: &LinuxDeviceCgroup) -> String {
    let num = |n: Option<i64>| {
        n.filter(|&n| n >= 0)
            .map_or("*".to_string(), |n| n.to_string())
    };
    // Only r, w and m mean anything to the kernel (runc drops the rest, e.g. "rwa" is "rw").
    let access: String = match d.access().as_deref().filter(|a| !a.is_empty()) {
        Some(a) => "rwm".chars().filter(|c| a.contains(*c)).collect(),
        None => "rwm".to_string(),
    };
    let typ = match d.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => "a",
        LinuxDeviceType::B => "b",
        LinuxDeviceType::C | LinuxDeviceType::U => "c",
        LinuxDeviceType::P => "p",
    };
    format!("{typ} {}:{} {access}", num(d.major()), num(d.minor()))
}

fn network(cg: &V1, n: &LinuxNetwork) -> Result<()> {
    if let Some(id) = n.class_id() {
        write(
            "net_cls",
            &cg.dir("net_cls", "network classID")?,
            "net_cls.classid",
            &id.to_string(),
        )?;
    }
    for p in n.priorities().iter().flatten() {
        let dir = cg.dir("net_prio", "network priorities")?;
        write(
            "net_prio",
            &dir,
            "net_prio.ifpriomap",
            &format!("{} {}", p.name(), p.priority()),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    #[test]
    fn device_rules_format_like_the_kernel_expects() {
        let r = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .access("rwm")
            .build()
            .unwrap();
        assert_eq!(v1_device_rule(&r), "c 1:3 rwm");
        let all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .build()
            .unwrap();
        assert_eq!(v1_device_rule(&all), "a *:* rwm");
    }

    #[test]
    fn unmounted_controller_is_an_error_only_when_asked_for() {
        let mounts = BTreeMap::new();
        let rel = Path::new("x");
        assert!(apply(&mounts, rel, &LinuxResources::default()).is_ok());
        let r: LinuxResources =
            serde_json::from_str(r#"{"hugepageLimits":[{"pageSize":"2MB","limit":1048576}]}"#)
                .unwrap();
        let e = apply(&mounts, rel, &r).unwrap_err().to_string();
        assert!(e.contains("hugetlb") && e.contains("not available"), "{e}");
    }

    #[test]
    fn unified_is_refused_on_v1() {
        let r: LinuxResources = serde_json::from_str(r#"{"unified":{"memory.high":"1"}}"#).unwrap();
        let e = apply(&BTreeMap::new(), Path::new("x"), &r)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unified resources require cgroup v2"), "{e}");
    }

    #[test]
    fn page_sizes_cannot_escape_the_file_name() {
        assert!(checked_page_size("2MB").is_ok());
        assert!(checked_page_size("../x").is_err());
    }
}
