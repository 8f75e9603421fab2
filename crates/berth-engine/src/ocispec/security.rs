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

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(f: impl FnOnce(&mut RunOptions)) -> RunOptions {
        let mut o = RunOptions::default();
        f(&mut o);
        o
    }

    fn caps(f: impl FnOnce(&mut RunOptions)) -> Capabilities {
        capabilities(&opts(f)).unwrap()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// What berth itself may grant: its bounding set, as the kernel reports it.
    fn bounding_set_size() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let hex = status
            .lines()
            .find_map(|l| l.strip_prefix("CapBnd:"))
            .unwrap();
        let known = known_caps().len() as u32;
        let mask = if known >= 64 {
            u64::MAX
        } else {
            (1u64 << known) - 1
        };
        (u64::from_str_radix(hex.trim(), 16).unwrap() & mask).count_ones()
    }

    #[test]
    fn default_capabilities_are_dockers_fourteen() {
        assert_eq!(caps(|_| {}), Capabilities::from(DEFAULT_CAPS));
    }

    #[test]
    fn cap_add_and_drop_take_any_case_with_or_without_cap_prefix() {
        let c = caps(|o| {
            o.cap_add = strings(&["sys_admin", "CAP_NET_ADMIN"]);
            o.cap_drop = strings(&["net_raw", "Cap_Chown"]);
        });
        assert!(c.contains(&Capability::SysAdmin) && c.contains(&Capability::NetAdmin));
        assert!(!c.contains(&Capability::NetRaw) && !c.contains(&Capability::Chown));
        assert_eq!(c.len(), 14);
    }

    #[test]
    fn cap_drop_all_leaves_only_what_is_added() {
        assert!(caps(|o| o.cap_drop = strings(&["ALL"])).is_empty());
        let c = caps(|o| {
            o.cap_drop = strings(&["all"]);
            o.cap_add = strings(&["chown"]);
        });
        assert_eq!(c, Capabilities::from([Capability::Chown]));
    }

    #[test]
    fn cap_add_all_and_privileged_grant_berths_bounding_set() {
        let all = bounding_set_size() as usize;
        assert_eq!(caps(|o| o.cap_add = strings(&["ALL"])).len(), all);
        assert_eq!(caps(|o| o.privileged = true).len(), all);
        let c = caps(|o| {
            o.cap_add = strings(&["all"]);
            o.cap_drop = strings(&["ALL"]);
        });
        assert_eq!(
            c.len(),
            all,
            "--cap-add ALL wins over --cap-drop, as in Docker"
        );
    }

    #[test]
    fn unknown_capabilities_are_refused_naming_the_flag() {
        let err = |f: fn(&mut RunOptions)| capabilities(&opts(f)).unwrap_err().to_string();
        assert_eq!(
            err(|o| o.cap_add = vec!["CAP_BOGUS".into()]),
            r#"invalid --cap-add: unknown capability "CAP_BOGUS""#
        );
        assert_eq!(
            err(|o| o.cap_drop = vec!["ALL".into(), "bogus".into()]),
            r#"invalid --cap-drop: unknown capability "bogus""#
        );
        assert!(err(|o| o.cap_add = vec!["CAP_CAP_CHOWN".into()]).contains("CAP_CAP_CHOWN"));
    }

    #[test]
    fn every_capability_the_runtime_knows_has_an_oci_spec_name() {
        for name in berth_runtime::features::CAPABILITIES {
            let cap: Capability = from_name(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(format!("CAP_{cap}"), *name);
        }
    }

    #[test]
    fn capability_sets_have_no_inheritable_or_ambient_set() {
        let sets = confinement(&RunOptions::default())
            .unwrap()
            .capability_sets();
        let want = Some(Capabilities::from(DEFAULT_CAPS));
        assert_eq!(sets.bounding(), &want);
        assert_eq!(sets.effective(), &want);
        assert_eq!(sets.permitted(), &want);
        assert_eq!((sets.inheritable(), sets.ambient()), (&None, &None));
    }

    #[test]
    fn seccomp_and_no_new_privs_are_on_by_default() {
        let c = confinement(&RunOptions::default()).unwrap();
        assert!(c.seccomp.is_some() && c.no_new_privileges);
    }

    #[test]
    fn seccomp_unconfined_in_either_form_turns_seccomp_off() {
        for opt in ["seccomp=unconfined", "seccomp:unconfined"] {
            let c = confinement(&opts(|o| o.security_opts = vec![opt.into()])).unwrap();
            assert_eq!(c.seccomp, None, "{opt}");
        }
    }

    #[test]
    fn no_new_privileges_follows_the_last_security_opt() {
        let nnp = |v: &[&str]| {
            let o = opts(|o| o.security_opts = strings(v));
            confinement(&o).unwrap().no_new_privileges
        };
        assert!(!nnp(&["no-new-privileges=false"]));
        assert!(!nnp(&["no-new-privileges:false"]));
        assert!(nnp(&["no-new-privileges=false", "no-new-privileges"]));
        assert!(nnp(&["no-new-privileges=false", "no-new-privileges=true"]));
    }

    #[test]
    fn apparmor_and_label_are_accepted_and_other_options_refused() {
        let o = opts(|o| o.security_opts = strings(&["apparmor=x", "label:disable"]));
        assert_eq!(
            confinement(&o).unwrap(),
            confinement(&opts(|_| {})).unwrap()
        );
        for bad in ["bogus", "selinux=x", "seccomp"] {
            let o = opts(|o| o.security_opts = vec![bad.into()]);
            let e = confinement(&o).unwrap_err().to_string();
            assert_eq!(e, format!("invalid --security-opt {bad:?}"));
        }
    }

    #[test]
    fn seccomp_file_is_read_as_the_profile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        let profile = r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#;
        std::fs::write(&path, profile).unwrap();
        let opt = format!("seccomp={}", path.display());
        let c = confinement(&opts(|o| o.security_opts = vec![opt.clone()])).unwrap();
        assert_eq!(c.seccomp, Some(serde_json::from_str(profile).unwrap()));
        // --privileged drops it, but it is still read and checked.
        let o = opts(|o| {
            o.privileged = true;
            o.security_opts = vec![opt];
        });
        assert_eq!(confinement(&o).unwrap().seccomp, None);
    }

    #[test]
    fn a_missing_seccomp_file_is_an_error_keeping_the_io_error() {
        use std::error::Error;
        let o = opts(|o| o.security_opts = vec!["seccomp=/nonexistent/p.json".into()]);
        let e = confinement(&o).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("--security-opt seccomp=/nonexistent/p.json: "));
        let io = e
            .source()
            .unwrap()
            .downcast_ref::<std::io::Error>()
            .unwrap();
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn privileged_has_no_seccomp_masked_or_read_only_paths() {
        let o = opts(|o| o.privileged = true);
        assert_eq!(confinement(&o).unwrap().seccomp, None);
        assert!(masked_paths(&o).is_empty() && readonly_paths(&o).is_empty());
        let o = RunOptions::default();
        assert!(masked_paths(&o).contains(&"/proc/kcore".to_string()));
        assert!(readonly_paths(&o).contains(&"/proc/sys".to_string()));
        assert_eq!((masked_paths(&o).len(), readonly_paths(&o).len()), (11, 5));
    }
}
