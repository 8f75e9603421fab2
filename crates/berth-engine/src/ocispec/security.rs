//! What confines the container, from `--cap-add`, `--cap-drop`, `--privileged` and
//! `--security-opt`: its capabilities, seccomp profile and no_new_privs, and Docker's masked and
//! read-only paths. It reads only what the kernel says it supports (`cap_last_cap`, berth's own
//! bounding set) and a seccomp file the user names; it never changes the system.

use super::{from_name, seccomp, SpecError};
use crate::options::RunOptions;
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, LinuxSeccomp};

/// Docker's default capabilities.
pub const DEFAULT_CAPS: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Docker's masked paths (hidden unless `--privileged`).
const MASKED: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths (writable only with `--privileged`).
const READONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// How the container's process is confined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confinement {
    pub capabilities: Capabilities,
    /// None: unconfined (`--privileged`, `--security-opt seccomp=unconfined`).
    pub seccomp: Option<LinuxSeccomp>,
    pub no_new_privileges: bool,
}

impl Confinement {
    /// The process's capability sets: bounding, effective and permitted all the same, and no
    /// inheritable or ambient set (so a non-root user's exec keeps none).
    pub fn capability_sets(&self) -> LinuxCapabilities {
        // Not LinuxCapabilitiesBuilder: an unset field there takes oci-spec's default, which
        // puts three capabilities in the inheritable and ambient sets.
        let mut sets = LinuxCapabilities::default();
        sets.set_bounding(Some(self.capabilities.clone()))
            .set_effective(Some(self.capabilities.clone()))
            .set_permitted(Some(self.capabilities.clone()))
            .set_inheritable(None)
            .set_ambient(None);
        sets
    }
}

/// The confinement the flags ask for: Docker's defaults (its capabilities, its seccomp profile,
/// no_new_privs) changed by the capability flags and `--security-opt`; `--privileged` turns off
/// seccomp whatever the options say (a profile named in them is still read and checked).
pub fn confinement(o: &RunOptions) -> Result<Confinement, SpecError> {
    let capabilities = capabilities(o)?;
    let mut no_new_privileges = true;
    let mut profile = Some(seccomp::default_seccomp(&capabilities)?);
    for s in &o.security_opts {
        match s.split_once(['=', ':']) {
            Some(("seccomp", "unconfined")) => profile = None,
            Some(("seccomp", file)) => profile = Some(seccomp::profile_file(file)?),
            Some(("no-new-privileges", v)) => no_new_privileges = v != "false",
            None if s == "no-new-privileges" => no_new_privileges = true,
            // Accepted for Docker compatibility; berth has neither LSM.
            Some(("apparmor", _)) | Some(("label", _)) => {}
            _ => return Err(SpecError::SecurityOpt(s.clone())),
        }
    }
    Ok(Confinement {
        capabilities,
        seccomp: profile.filter(|_| !o.privileged),
        no_new_privileges,
    })
}

/// The capability set after `--cap-add`/`--cap-drop` (`ALL` allowed in both, like Docker);
/// `--privileged` or `--cap-add ALL` is every capability berth itself holds.
pub fn capabilities(o: &RunOptions) -> Result<Capabilities, SpecError> {
    if o.privileged {
        return Ok(all_caps());
    }
    let known = known_caps();
    let is_all = |c: &&String| c.eq_ignore_ascii_case("all");
    let dropped = (o.cap_drop.iter().filter(|d| !is_all(d)))
        .map(|d| known_capability(known, "--cap-drop", d))
        .collect::<Result<Vec<_>, _>>()?;
    let mut caps = Capabilities::new();
    if !o.cap_drop.iter().any(|d| is_all(&d)) {
        caps.extend(DEFAULT_CAPS.iter().filter(|c| !dropped.contains(c)));
    }
    for a in &o.cap_add {
        if is_all(&a) {
            return Ok(all_caps());
        }
        caps.insert(known_capability(known, "--cap-add", a)?);
    }
    Ok(caps)
}

/// `name` (`net_raw`, `CAP_NET_RAW`…) if this kernel knows it.
fn known_capability(
    known: &[&str],
    flag: &'static str,
    name: &str,
) -> Result<Capability, SpecError> {
    let unknown = || SpecError::UnknownCapability {
        flag,
        name: name.into(),
    };
    let kernel_name = cap_name(name);
    if !known.contains(&kernel_name.as_str()) {
        return Err(unknown());
    }
    from_name(&kernel_name).ok_or_else(unknown)
}

/// A capability's kernel name (`CAP_NET_RAW`) from what a user may type (`net_raw`).
fn cap_name(c: &str) -> String {
    let up = c.to_ascii_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// The capability names this kernel knows, numbered by position (up to cap_last_cap).
fn known_caps() -> &'static [&'static str] {
    let all = berth_runtime::features::CAPABILITIES;
    let last: usize = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(all.len() - 1);
    &all[..=last.min(all.len() - 1)]
}

/// Every capability berth itself may grant (`--privileged`, `--cap-add ALL`): those in its own
/// bounding set, so a berth running with a reduced set still starts privileged containers.
fn all_caps() -> Capabilities {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|st| {
            st.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    known_caps()
        .iter()
        .enumerate()
        .filter(|(n, _)| bounding & (1u64 << n) != 0)
        // Every name in the runtime's table is one oci-spec knows (a test checks it).
        .filter_map(|(_, c)| from_name(c))
        .collect()
}

/// Docker's masked paths, none with `--privileged`.
pub fn masked_paths(o: &RunOptions) -> Vec<String> {
    unless_privileged(o, &MASKED)
}

/// Docker's read-only paths, none with `--privileged`.
pub fn readonly_paths(o: &RunOptions) -> Vec<String> {
    unless_privileged(o, &READONLY)
}

fn unless_privileged(o: &RunOptions, paths: &[&str]) -> Vec<String> {
    if o.privileged {
        return Vec::new();
    }
    paths.iter().map(|p| p.to_string()).collect()
}
