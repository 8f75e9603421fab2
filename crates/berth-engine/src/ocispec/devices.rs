//! Device nodes and the device cgroup: Docker's default allow list (the runtime's default
//! devices, the pty pair and tun), everything with `--privileged`, and each `--device` (a node
//! made in the container and a rule letting it through). Reads a `--device` node's metadata on
//! the host; never makes a node itself.

use super::SpecError;
use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
};

/// Docker's allow list beyond the deny-all rule: null, zero, full, random, urandom, tty,
/// console, ptmx, the pty slaves (136:*) and tun. A minor of -1 is any minor.
const DEFAULT_ALLOWED: [(i64, i64); 10] = [
    (1, 3),
    (1, 5),
    (1, 7),
    (1, 8),
    (1, 9),
    (5, 0),
    (5, 1),
    (5, 2),
    (136, -1),
    (10, 200),
];

/// A `--device HOST[:CONTAINER][:PERMISSIONS]`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRequest {
    pub host: String,
    pub container: String,
    /// Some of `r`, `w` and `m`.
    pub access: String,
}

/// A host device given to the container: the node to make and the rule that lets it through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDevice {
    pub node: LinuxDevice,
    pub rule: LinuxDeviceCgroup,
}

/// Parses `--device /dev/x[:/dev/y[:rwm]]` (or `/dev/x:rwm`).
pub fn parse_device(d: &str) -> Result<DeviceRequest, SpecError> {
    let is_access = |s: &str| s.chars().all(|x| "rwm".contains(x));
    let parts: Vec<&str> = d.split(':').collect();
    let (host, container, access) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, a] if is_access(a) && !a.is_empty() => (*h, *h, *a),
        [h, c] => (*h, *c, "rwm"),
        [h, c, a] => (*h, *c, *a),
        _ => return Err(SpecError::DeviceSyntax(d.into())),
    };
    if !host.starts_with('/') || !container.starts_with('/') || !is_access(access) {
        return Err(SpecError::DevicePath(d.into()));
    }
    Ok(DeviceRequest {
        host: host.into(),
        container: container.into(),
        access: access.into(),
    })
}

/// Each `--device`, checked on the host.
pub fn host_devices(flags: &[String]) -> Result<Vec<HostDevice>, SpecError> {
    flags
        .iter()
        .map(|d| host_device(&parse_device(d)?))
        .collect()
}

/// The node and rule for `req`, with the host node's type, numbers, mode and owner.
fn host_device(req: &DeviceRequest) -> Result<HostDevice, SpecError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let m = std::fs::metadata(&req.host).map_err(|source| SpecError::DeviceStat {
        path: req.host.clone(),
        source,
    })?;
    let typ = if m.file_type().is_char_device() {
        LinuxDeviceType::C
    } else if m.file_type().is_block_device() {
        LinuxDeviceType::B
    } else {
        return Err(SpecError::NotADevice(req.host.clone()));
    };
    let (major, minor) = (libc::major(m.rdev()) as i64, libc::minor(m.rdev()) as i64);
    let node = LinuxDeviceBuilder::default()
        .path(&req.container)
        .typ(typ)
        .major(major)
        .minor(minor)
        .file_mode(m.mode() & 0o7777)
        .uid(m.uid())
        .gid(m.gid())
        .build()?;
    let rule = allow(typ, major, minor, &req.access)?;
    Ok(HostDevice { node, rule })
}

/// The device cgroup: deny all then Docker's allow list, or allow all when `privileged`; then a
/// rule for each `--device`.
pub fn cgroup_rules(
    privileged: bool,
    devices: &[HostDevice],
) -> Result<Vec<LinuxDeviceCgroup>, SpecError> {
    let mut rules = if privileged {
        vec![any_device(true)?]
    } else {
        let mut rules = vec![any_device(false)?];
        for (major, minor) in DEFAULT_ALLOWED {
            rules.push(allow(LinuxDeviceType::C, major, minor, "rwm")?);
        }
        rules
    };
    rules.extend(devices.iter().map(|d| d.rule.clone()));
    Ok(rules)
}

/// Every device allowed (or denied), for every access.
fn any_device(allow: bool) -> Result<LinuxDeviceCgroup, SpecError> {
    Ok(LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .access("rwm")
        .build()?)
}

fn allow(
    typ: LinuxDeviceType,
    major: i64,
    minor: i64,
    access: &str,
) -> Result<LinuxDeviceCgroup, SpecError> {
    Ok(LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(typ)
        .major(major)
        .minor(minor)
        .access(access)
        .build()?)
}
