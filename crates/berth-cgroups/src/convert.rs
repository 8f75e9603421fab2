//! Pure conversions between OCI (v1-shaped) resource values and what the v2 files expect, plus
//! cgroup path normalisation. No I/O here: everything is unit-tested.

use std::path::{Component, Path, PathBuf};

use crate::{Error, Result};

/// v1 cpu.shares [2, 262144] -> v2 cpu.weight [1, 10000], runc's formula. 0 means "not set".
pub fn shares_to_weight(shares: u64) -> Option<u64> {
    if shares == 0 {
        return None;
    }
    let s = shares.clamp(2, 262_144);
    Some(1 + ((s - 2) * 9999) / 262_142)
}

/// v1 blkio.weight [10, 1000] -> v2 io.weight [1, 10000], runc's formula. 0 means "not set".
pub fn blkio_weight_to_io_weight(weight: u16) -> Option<u64> {
    if weight == 0 {
        return None;
    }
    let w = u64::from(weight.clamp(10, 1000));
    Some(1 + (w - 10) * 9999 / 990)
}

/// OCI `swap` (memory+swap total, v1 semantics) -> v2 memory.swap.max value.
/// `Ok(None)`: leave the file alone.
pub fn swap_to_v2(swap: Option<i64>, limit: Option<i64>) -> Result<Option<String>> {
    let Some(swap) = swap else { return Ok(None) };
    match (swap, limit.unwrap_or(0)) {
        (0, _) => Ok(None),
        (s, _) if s < 0 => Ok(Some("max".into())),
        (_, l) if l <= 0 => Err(Error::invalid(
            "memory",
            "swap",
            "a swap limit needs a memory limit as well",
        )),
        (s, l) if s < l => Err(Error::invalid(
            "memory",
            "swap",
            format!("memory+swap {s} is lower than the memory limit {l}"),
        )),
        (s, l) => Ok(Some((s - l).to_string())),
    }
}

/// A byte limit for a v2 file: negative means "max".
pub fn limit_to_v2(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// v2 `cpu.max`: "quota period", quota "max" when unlimited; `None` when neither is set.
pub fn cpu_max(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    if quota.is_none() && period.is_none() {
        return None;
    }
    let q = match quota {
        Some(q) if q > 0 => q.to_string(),
        _ => "max".to_string(),
    };
    Some(match period {
        Some(p) if p > 0 => format!("{q} {p}"),
        _ => q,
    })
}

/// pids.max value: 0 or negative means unlimited.
pub fn pids_max(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".into()
    }
}

/// Normalises an OCI cgroupsPath to a relative path below the hierarchy root. Absolute and
/// relative paths are both taken relative to the root; `.` is dropped; `..` and the root itself
/// are refused (a container must never own, or escape, the root cgroup).
pub fn normalise_path(path: &str) -> Result<PathBuf> {
    let bad = |reason| Error::InvalidPath {
        path: path.to_string(),
        reason,
    };
    let mut out = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return Err(bad("\"..\" is not allowed")),
            Component::Prefix(_) => return Err(bad("not a unix path")),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(bad("names the root cgroup"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_convert_like_runc() {
        assert_eq!(shares_to_weight(0), None);
        assert_eq!(shares_to_weight(2), Some(1));
        assert_eq!(shares_to_weight(1024), Some(39));
        assert_eq!(shares_to_weight(262_144), Some(10_000));
        assert_eq!(
            shares_to_weight(1),
            Some(1),
            "below the kernel minimum clamps"
        );
    }

    #[test]
    fn blkio_weight_converts_like_runc() {
        assert_eq!(blkio_weight_to_io_weight(0), None);
        assert_eq!(blkio_weight_to_io_weight(10), Some(1));
        assert_eq!(blkio_weight_to_io_weight(500), Some(1 + 490 * 9999 / 990));
        assert_eq!(blkio_weight_to_io_weight(1000), Some(10_000));
    }

    #[test]
    fn swap_is_memory_plus_swap_in_oci_and_swap_only_in_v2() {
        assert_eq!(
            swap_to_v2(Some(300), Some(100)).unwrap(),
            Some("200".into())
        );
        assert_eq!(swap_to_v2(Some(100), Some(100)).unwrap(), Some("0".into()));
        assert_eq!(swap_to_v2(Some(-1), Some(100)).unwrap(), Some("max".into()));
        assert_eq!(swap_to_v2(Some(-1), None).unwrap(), Some("max".into()));
        assert_eq!(swap_to_v2(None, Some(100)).unwrap(), None);
        assert!(swap_to_v2(Some(50), Some(100)).is_err());
        assert!(swap_to_v2(Some(50), None).is_err());
    }

    #[test]
    fn cpu_max_formats_quota_and_period() {
        assert_eq!(
            cpu_max(Some(50_000), Some(100_000)).as_deref(),
            Some("50000 100000")
        );
        assert_eq!(
            cpu_max(Some(-1), Some(100_000)).as_deref(),
            Some("max 100000")
        );
        assert_eq!(cpu_max(None, Some(20_000)).as_deref(), Some("max 20000"));
        assert_eq!(cpu_max(Some(10_000), None).as_deref(), Some("10000"));
        assert_eq!(cpu_max(None, None), None);
    }

    #[test]
    fn pids_zero_or_negative_is_unlimited() {
        assert_eq!(pids_max(0), "max");
        assert_eq!(pids_max(-1), "max");
        assert_eq!(pids_max(42), "42");
    }

    #[test]
    fn paths_normalise_and_refuse_dotdot() {
        assert_eq!(
            normalise_path("/berth/abc").unwrap(),
            PathBuf::from("berth/abc")
        );
        assert_eq!(
            normalise_path("berth//./abc/").unwrap(),
            PathBuf::from("berth/abc")
        );
        assert!(normalise_path("/berth/../../etc").is_err());
        assert!(normalise_path("..").is_err());
        assert!(normalise_path("/").is_err());
        assert!(normalise_path("").is_err());
    }
}
