//! Device nodes and the device cgroup: Docker's default allow list (the runtime's default
//! devices, the pty pair and tun), everything with `--privileged`, and each `--device` (a node
//! made in the container and a rule letting it through). Reads a `--device` node's metadata on
//! the host; never makes a node itself.

use super::SpecError;
// Docker's allow list beyond the deny-all rule is the runtime's default one (minor -1: any).
use berth_runtime::devices::ALLOWED_CHAR_DEVICES as DEFAULT_ALLOWED;
use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
};

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

/// Each `--device-cgroup-rule "TYPE MAJOR:MINOR ACCESS"` (`c 1:3 mr`, `b *:* rwm`, `a`): an allow
/// rule, `*` meaning any number.
pub fn user_rules(flags: &[String]) -> Result<Vec<LinuxDeviceCgroup>, SpecError> {
    flags.iter().map(|r| user_rule(r)).collect()
}

fn user_rule(r: &str) -> Result<LinuxDeviceCgroup, SpecError> {
    let bad = || SpecError::DeviceCgroupRule(r.to_string());
    let words: Vec<&str> = r.split_whitespace().collect();
    let typ = match words.first().copied() {
        Some("a") => LinuxDeviceType::A,
        Some("c") => LinuxDeviceType::C,
        Some("b") => LinuxDeviceType::B,
        _ => return Err(bad()),
    };
    if typ == LinuxDeviceType::A && words.len() == 1 {
        return Ok(LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(typ)
            .access("rwm")
            .build()?);
    }
    let [_, numbers, access] = words.as_slice() else {
        return Err(bad());
    };
    let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
    let number = |n: &str| -> Result<i64, SpecError> {
        match n {
            "*" => Ok(-1),
            n => n.parse::<u32>().map(i64::from).map_err(|_| bad()),
        }
    };
    if access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) {
        return Err(bad());
    }
    allow(typ, number(major)?, number(minor)?, access)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(host: &str, container: &str, access: &str) -> DeviceRequest {
        DeviceRequest {
            host: host.into(),
            container: container.into(),
            access: access.into(),
        }
    }

    fn rule(r: &LinuxDeviceCgroup) -> (bool, Option<LinuxDeviceType>, Option<i64>, Option<i64>) {
        (r.allow(), r.typ(), r.major(), r.minor())
    }

    #[test]
    fn device_cgroup_rules_parse_as_docker_writes_them() {
        let r = user_rules(&["c 1:3 mr".into(), "b *:* rwm".into(), "a".into()]).unwrap();
        assert_eq!(
            rule(&r[0]),
            (true, Some(LinuxDeviceType::C), Some(1), Some(3))
        );
        assert_eq!(r[0].access().as_deref(), Some("mr"));
        assert_eq!(
            rule(&r[1]),
            (true, Some(LinuxDeviceType::B), Some(-1), Some(-1))
        );
        assert_eq!(r[2].typ(), Some(LinuxDeviceType::A));
        for bad in ["", "x 1:3 r", "c 1 r", "c 1:3 rx", "c a:3 r", "c 1:3"] {
            assert!(user_rules(&[bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn device_flag_forms_parse() {
        let null = "/dev/null";
        assert_eq!(parse_device(null).unwrap(), request(null, null, "rwm"));
        assert_eq!(
            parse_device("/dev/null:rw").unwrap(),
            request(null, null, "rw")
        );
        assert_eq!(
            parse_device("/dev/null:/dev/x").unwrap(),
            request(null, "/dev/x", "rwm")
        );
        let full = parse_device("/dev/null:/dev/x:r").unwrap();
        assert_eq!(full, request(null, "/dev/x", "r"));
    }

    #[test]
    fn bad_device_flags_are_refused_naming_them() {
        let err = |d: &str| parse_device(d).unwrap_err().to_string();
        assert_eq!(
            err("/dev/null:/a:r:w"),
            r#"invalid --device "/dev/null:/a:r:w""#
        );
        let expected = r#": expected /dev/host[:/dev/container[:rwm]]"#;
        for bad in ["null", "", "/dev/null:x", "/dev/null:/dev/x:rwx"] {
            assert_eq!(err(bad), format!("invalid --device {bad:?}{expected}"));
        }
    }

    #[test]
    fn a_device_node_copies_the_host_nodes_numbers_mode_and_owner() {
        let d = host_devices(&["/dev/null:/dev/mynull:rw".into()]).unwrap();
        let node = &d[0].node;
        assert_eq!(node.path().to_str(), Some("/dev/mynull"));
        assert_eq!(
            (node.typ(), node.major(), node.minor()),
            (LinuxDeviceType::C, 1, 3)
        );
        assert_eq!(
            (node.file_mode(), node.uid(), node.gid()),
            (Some(0o666), Some(0), Some(0))
        );
        let want = (true, Some(LinuxDeviceType::C), Some(1), Some(3));
        assert_eq!(rule(&d[0].rule), want);
        assert_eq!(d[0].rule.access().as_deref(), Some("rw"));
    }

    #[test]
    fn a_missing_device_keeps_the_io_error() {
        use std::error::Error;
        let e = host_devices(&["/dev/berth-none".into()]).unwrap_err();
        assert!(
            e.to_string().starts_with("--device /dev/berth-none: "),
            "{e}"
        );
        let io = e
            .source()
            .unwrap()
            .downcast_ref::<std::io::Error>()
            .unwrap();
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn a_directory_is_not_a_device() {
        let e = host_devices(&["/".into()]).unwrap_err().to_string();
        assert_eq!(e, "--device /: not a device node");
    }

    #[test]
    fn the_cgroup_denies_all_then_allows_dockers_list_and_each_device() {
        let devices = host_devices(&["/dev/null:/dev/n:r".into()]).unwrap();
        let rules = cgroup_rules(false, &devices).unwrap();
        assert_eq!(rule(&rules[0]), (false, None, None, None));
        assert_eq!(rules[0].access().as_deref(), Some("rwm"));
        let c = Some(LinuxDeviceType::C);
        let allowed: Vec<_> = rules[1..11].iter().map(rule).collect();
        let want: Vec<_> = DEFAULT_ALLOWED
            .iter()
            .map(|&(major, minor)| (true, c, Some(major), Some(minor)))
            .collect();
        assert_eq!(allowed, want);
        assert!(rules[1..11]
            .iter()
            .all(|r| r.access().as_deref() == Some("rwm")));
        assert_eq!(rules.len(), 12);
        assert_eq!(rules[11].access().as_deref(), Some("r"));
    }

    #[test]
    fn privileged_allows_every_device() {
        let rules = cgroup_rules(true, &[]).unwrap();
        assert_eq!(
            rules.iter().map(rule).collect::<Vec<_>>(),
            [(true, None, None, None)]
        );
        assert_eq!(rules[0].access().as_deref(), Some("rwm"));
    }
}
