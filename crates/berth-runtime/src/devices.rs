//! The device cgroup rules a container gets: the spec's own rules, then (as runc does) access to
//! the default devices every container has (/dev/null, zero, full, random, urandom, tty, console,
//! ptmx, pts/*, net/tun) and mknod of any node. A node from `linux.devices` is created in /dev but
//! is usable only if `linux.resources.devices` allows it (as with runc).

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources, Spec};

fn rule(
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(true);
    r.set_typ(Some(typ));
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some(access.to_string()));
    r
}

/// The character devices every container may use (runc's and Docker's list): null, zero, full,
/// random, urandom, tty, console, ptmx, the pty slaves (136, any minor: -1) and tun.
pub const ALLOWED_CHAR_DEVICES: [(i64, i64); 10] = [
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

/// The resources to apply to the container's cgroup, with the default device rules appended.
pub fn effective_resources(spec: &Spec) -> LinuxResources {
    let mut res = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    let mut rules = res.devices().clone().unwrap_or_default();
    use LinuxDeviceType::{B, C};
    rules.push(rule(C, None, None, "m"));
    rules.push(rule(B, None, None, "m"));
    for (maj, min) in ALLOWED_CHAR_DEVICES {
        rules.push(rule(C, Some(maj), (min >= 0).then_some(min), "rwm"));
    }
    res.set_devices(Some(rules));
    res
}
