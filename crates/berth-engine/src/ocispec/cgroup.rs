//! Where a container's cgroup goes and what it may ask of the host's cgroups: `--cgroup-parent`
//! (a cgroupfs path under each hierarchy's root, never above it), `--cgroupns`, and whether
//! this kernel can give `--cpu-rt-*` at all. Only `check_host` reads the system (the cgroup
//! mounts it is given); nothing here makes or writes a cgroup.

use super::SpecError;
use crate::options::RunOptions;
use berth_cgroups::Hierarchy;
use std::path::{Component, Path};

/// The kernel's default real-time period (`cpu.rt_period_us`), in microseconds.
const RT_PERIOD: u64 = 1_000_000;

/// `--cgroup-parent` as a path from each hierarchy's root (`/a/b`), or "" for none. Relative
/// and absolute paths both start at the root (berth runs no daemon whose own cgroup a relative
/// path could mean); `..` is refused, so no parent leads above the root.
pub fn parent(p: &str) -> Result<String, SpecError> {
    let mut out = String::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(name) => {
                out.push('/');
                out.push_str(&name.to_string_lossy());
            }
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(SpecError::CgroupParent(p.to_string()))
            }
        }
    }
    Ok(out)
}

/// The container's cgroup: `<parent>/berth-<id>` (directly under the root without a parent).
pub fn path(id: &str, cgroup_parent: &str) -> Result<String, SpecError> {
    Ok(format!("{}/berth-{id}", parent(cgroup_parent)?))
}

/// `--cgroupns`: true for `host`, false for `private` (and "", berth's default on v1 and v2).
pub fn host_namespace(mode: &str) -> Result<bool, SpecError> {
    match mode {
        "" | "private" => Ok(false),
        "host" => Ok(true),
        other => Err(SpecError::Cgroupns(other.to_string())),
    }
}

/// Checks, before anything is made, that this host can give what the cgroup flags ask:
/// `--cpu-rt-*` needs real-time group scheduling (v1's `cpu.rt_runtime_us`; v2 has none), and a
/// runtime within the period and within the parent's own real-time budget.
pub fn check_host(o: &RunOptions, h: &Hierarchy) -> Result<(), SpecError> {
    parent(&o.cgroup_parent)?;
    host_namespace(&o.cgroupns)?;
    if o.cpu_rt_period.is_none() && o.cpu_rt_runtime.is_none() {
        return Ok(());
    }
    let cpu_root = match h {
        Hierarchy::V1 { mounts } => mounts.get("cpu"),
        Hierarchy::V2 { .. } => None,
    };
    let Some(cpu_root) = cpu_root.filter(|d| d.join("cpu.rt_runtime_us").exists()) else {
        return Err(SpecError::NoRealtime);
    };
    let period = o.cpu_rt_period.unwrap_or(RT_PERIOD);
    let Some(runtime) = o.cpu_rt_runtime.filter(|r| *r > 0) else {
        return Ok(());
    };
    if runtime as u64 > period {
        return Err(SpecError::RealtimeAbovePeriod { runtime, period });
    }
    let parent = parent(&o.cgroup_parent)?;
    if !parent.is_empty() {
        let file = cpu_root
            .join(parent.trim_start_matches('/'))
            .join("cpu.rt_runtime_us");
        let budget = std::fs::read_to_string(&file)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(0);
        if budget != -1 && budget < runtime {
            return Err(SpecError::RealtimeAboveParent {
                runtime,
                parent,
                budget,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_parent_is_a_path_under_the_root() {
        assert_eq!(parent("").unwrap(), "");
        assert_eq!(parent("/").unwrap(), "");
        assert_eq!(parent("tenants/a").unwrap(), "/tenants/a");
        assert_eq!(parent("/tenants//a/./").unwrap(), "/tenants/a");
        assert_eq!(path("c0ffee", "/t").unwrap(), "/t/berth-c0ffee");
        assert_eq!(path("c0ffee", "").unwrap(), "/berth-c0ffee");
        for escape in ["..", "/../../etc", "a/../../b", "a/.."] {
            let e = parent(escape).unwrap_err().to_string();
            assert!(e.contains("--cgroup-parent") && e.contains(".."), "{e}");
        }
    }

    #[test]
    fn cgroupns_is_private_or_host() {
        assert!(!host_namespace("").unwrap());
        assert!(!host_namespace("private").unwrap());
        assert!(host_namespace("host").unwrap());
        let e = host_namespace("container:x").unwrap_err().to_string();
        assert!(e.contains("--cgroupns") && e.contains("container:x"), "{e}");
    }

    #[test]
    fn realtime_needs_the_kernels_rt_files_and_a_runtime_within_the_period() {
        let dir = std::env::temp_dir().join(format!("berth-rt-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("p")).unwrap();
        let h = Hierarchy::v1_at(BTreeMap::from([("cpu".to_string(), dir.clone())]));
        let o = |period, runtime, parent: &str| RunOptions {
            cpu_rt_period: period,
            cpu_rt_runtime: runtime,
            cgroup_parent: parent.into(),
            ..RunOptions::default()
        };
        let err = |o: RunOptions| check_host(&o, &h).unwrap_err().to_string();
        assert!(err(o(None, Some(1000), "")).contains("real-time"));
        std::fs::write(dir.join("cpu.rt_runtime_us"), "950000").unwrap();
        assert!(check_host(&o(Some(100_000), Some(50_000), ""), &h).is_ok());
        assert_eq!(
            err(o(Some(10_000), Some(20_000), "")),
            "--cpu-rt-runtime 20000 cannot be higher than --cpu-rt-period 10000"
        );
        assert!(err(o(None, Some(1000), "/p")).contains("/p"));
        std::fs::write(dir.join("p/cpu.rt_runtime_us"), "5000").unwrap();
        assert!(check_host(&o(None, Some(1000), "/p"), &h).is_ok());
        let v2 = Hierarchy::v2_at(&dir);
        assert!(check_host(&o(None, Some(1000), ""), &v2).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
