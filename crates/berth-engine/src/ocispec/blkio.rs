//! Block I/O limits: `--blkio-weight`, `--blkio-weight-device DEVICE:WEIGHT` and the per-device
//! throttles `--device-{read,write}-{bps,iops} DEVICE:RATE`. Parses Docker's forms and resolves
//! each device path to its block device's major:minor (a stat of the host's path, symlinks
//! followed as Docker's stat does); it never writes a cgroup file.

use super::SpecError;
use crate::options::RunOptions;
use oci_spec::runtime::{
    LinuxBlockIo, LinuxThrottleDevice, LinuxThrottleDeviceBuilder, LinuxWeightDevice,
    LinuxWeightDeviceBuilder,
};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// One of the four throttle flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    ReadBps,
    WriteBps,
    ReadIops,
    WriteIops,
}

impl Throttle {
    pub fn flag(self) -> &'static str {
        match self {
            Throttle::ReadBps => "--device-read-bps",
            Throttle::WriteBps => "--device-write-bps",
            Throttle::ReadIops => "--device-read-iops",
            Throttle::WriteIops => "--device-write-iops",
        }
    }

    /// A rate in bytes (a size such as `1mb`) rather than a count of operations.
    fn is_bytes(self) -> bool {
        matches!(self, Throttle::ReadBps | Throttle::WriteBps)
    }
}

/// A device path and the number given for it (a rate, or a weight).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceValue {
    pub path: String,
    pub value: u64,
}

/// `DEVICE:VALUE` split as Docker splits it, the device an absolute path under `/dev/`.
fn split<'a>(flag: &'static str, s: &'a str) -> Result<(&'a str, &'a str), SpecError> {
    match s.split_once(':') {
        Some((path, value)) if path.starts_with("/dev/") && !value.is_empty() => Ok((path, value)),
        _ => Err(SpecError::BlkioDeviceSyntax {
            flag,
            value: s.to_string(),
        }),
    }
}

/// `--device-*-bps DEVICE:RATE` (a size: `1048576`, `1mb`) or `--device-*-iops DEVICE:N`.
pub fn parse_throttle(kind: Throttle, s: &str) -> Result<DeviceValue, SpecError> {
    let flag = kind.flag();
    let (path, rate) = split(flag, s)?;
    let bad = || SpecError::BlkioRate {
        flag,
        value: s.to_string(),
    };
    let value = if kind.is_bytes() {
        let n = berth_sys::units::parse_size(rate).map_err(|_| bad())?;
        u64::try_from(n).map_err(|_| bad())?
    } else {
        rate.parse::<u64>().map_err(|_| bad())?
    };
    Ok(DeviceValue {
        path: path.to_string(),
        value,
    })
}

/// `--blkio-weight-device DEVICE:WEIGHT`, the weight 10 to 1000 (0 clears it, as Docker).
pub fn parse_weight_device(s: &str) -> Result<DeviceValue, SpecError> {
    let (path, weight) = split("--blkio-weight-device", s)?;
    match weight.parse::<u64>() {
        Ok(w) if w == 0 || (10..=1000).contains(&w) => Ok(DeviceValue {
            path: path.to_string(),
            value: w,
        }),
        _ => Err(SpecError::BlkioWeightDevice(s.to_string())),
    }
}

/// The block device at `path` on the host, as (major, minor).
fn block_device(flag: &'static str, path: &str) -> Result<(i64, i64), SpecError> {
    let meta = std::fs::metadata(path).map_err(|source| SpecError::BlkioDeviceStat {
        flag,
        path: path.to_string(),
        source,
    })?;
    if !meta.file_type().is_block_device() {
        return Err(SpecError::NotABlockDevice {
            flag,
            path: path.to_string(),
        });
    }
    let rdev = meta.rdev();
    Ok((i64::from(libc::major(rdev)), i64::from(libc::minor(rdev))))
}

fn throttles(kind: Throttle, list: &[String]) -> Result<Vec<LinuxThrottleDevice>, SpecError> {
    list.iter()
        .map(|s| {
            let d = parse_throttle(kind, s)?;
            let (major, minor) = block_device(kind.flag(), &d.path)?;
            Ok(LinuxThrottleDeviceBuilder::default()
                .major(major)
                .minor(minor)
                .rate(d.value)
                .build()?)
        })
        .collect()
}

fn weight_devices(list: &[String]) -> Result<Vec<LinuxWeightDevice>, SpecError> {
    list.iter()
        .map(|s| {
            let d = parse_weight_device(s)?;
            let (major, minor) = block_device("--blkio-weight-device", &d.path)?;
            Ok(LinuxWeightDeviceBuilder::default()
                .major(major)
                .minor(minor)
                .weight(d.value as u16)
                .build()?)
        })
        .collect()
}

/// None for an empty list (the spec leaves the key out).
fn some<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

/// `--blkio-weight` (10 to 1000), `--blkio-weight-device` and the device throttles; None when
/// no flag asks for any.
pub fn block_io(o: &RunOptions) -> Result<Option<LinuxBlockIo>, SpecError> {
    let mut b = LinuxBlockIo::default();
    if let Some(weight) = o.blkio_weight {
        if !(10..=1000).contains(&weight) {
            return Err(SpecError::BlkioWeight(weight));
        }
        b.set_weight(Some(weight));
    }
    b.set_weight_device(some(weight_devices(&o.blkio_weight_device)?));
    b.set_throttle_read_bps_device(some(throttles(Throttle::ReadBps, &o.device_read_bps)?));
    b.set_throttle_write_bps_device(some(throttles(Throttle::WriteBps, &o.device_write_bps)?));
    b.set_throttle_read_iops_device(some(throttles(Throttle::ReadIops, &o.device_read_iops)?));
    b.set_throttle_write_iops_device(some(throttles(Throttle::WriteIops, &o.device_write_iops)?));
    Ok((b != LinuxBlockIo::default()).then_some(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_weight_is_10_to_1000() {
        let weight = |w: u16| {
            block_io(&RunOptions {
                blkio_weight: Some(w),
                ..RunOptions::default()
            })
        };
        for w in [10, 500, 1000] {
            assert_eq!(weight(w).unwrap().unwrap().weight(), Some(w));
        }
        for w in [0, 9, 1001] {
            let want = format!("invalid --blkio-weight {w}: range is 10 to 1000");
            assert_eq!(weight(w).unwrap_err().to_string(), want);
        }
        assert_eq!(block_io(&RunOptions::default()).unwrap(), None);
    }

    #[test]
    fn throttles_read_sizes_or_counts() {
        let t = parse_throttle(Throttle::ReadBps, "/dev/sda:1mb").unwrap();
        assert_eq!((t.path.as_str(), t.value), ("/dev/sda", 1 << 20));
        let t = parse_throttle(Throttle::WriteIops, "/dev/sda:300").unwrap();
        assert_eq!(t.value, 300);
        let err = |k, s| parse_throttle(k, s).unwrap_err().to_string();
        assert_eq!(
            err(Throttle::WriteIops, "/dev/sda:1mb"),
            "invalid --device-write-iops \"/dev/sda:1mb\": the rate must be a positive number"
        );
        assert!(err(Throttle::ReadBps, "/dev/sda:-5").contains("--device-read-bps"));
        assert!(err(Throttle::ReadBps, "sda:5").contains("expected /dev/"));
        assert!(err(Throttle::ReadBps, "/dev/sda").contains("expected /dev/"));
    }

    #[test]
    fn weight_devices_are_10_to_1000() {
        assert_eq!(parse_weight_device("/dev/sda:200").unwrap().value, 200);
        for bad in ["/dev/sda:5", "/dev/sda:1001", "/dev/sda:x"] {
            let e = parse_weight_device(bad).unwrap_err().to_string();
            assert!(e.contains("10 to 1000") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn a_device_that_is_not_a_block_device_is_refused_by_name() {
        let o = RunOptions {
            device_read_bps: vec!["/dev/null:1mb".into()],
            ..RunOptions::default()
        };
        assert_eq!(
            block_io(&o).unwrap_err().to_string(),
            "--device-read-bps /dev/null: not a block device"
        );
        let o = RunOptions {
            device_write_iops: vec!["/dev/nosuchdisk:10".into()],
            ..RunOptions::default()
        };
        let e = block_io(&o).unwrap_err().to_string();
        assert!(
            e.starts_with("--device-write-iops /dev/nosuchdisk: "),
            "{e}"
        );
    }
}
