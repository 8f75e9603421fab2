//! Seccomp profiles for the spec: Docker's default policy as a typed `LinuxSeccomp`, and a
//! profile the user names with `--security-opt seccomp=FILE`. Builds data only; compiling and
//! loading a filter is the runtime's (berth-seccomp's) job.

use super::SpecError;
use oci_spec::runtime::{
    Arch, Capabilities, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder,
    LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

/// What Docker's profile leaves out of its allow list.
const DENIED: [&str; 62] = [
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "sysfs",
    "_sysctl",
    "syslog",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vhangup",
    "vm86",
    "vm86old",
    "personality",
    "clone",
    "clone3",
];

/// The left-out calls a capability brings back, as in Docker's profile.
const GIVEN_BACK: [(Capability, &[&str]); 13] = [
    (
        Capability::SysAdmin,
        &[
            "mount",
            "umount",
            "umount2",
            "unshare",
            "setns",
            "pivot_root",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "move_mount",
            "open_tree",
            "mount_setattr",
            "quotactl",
            "quotactl_fd",
            "lookup_dcookie",
            "perf_event_open",
            "bpf",
            "name_to_handle_at",
            "clone",
            "clone3",
        ],
    ),
    (
        Capability::SysPtrace,
        &["ptrace", "process_vm_readv", "process_vm_writev", "kcmp"],
    ),
    (
        Capability::SysModule,
        &["init_module", "finit_module", "delete_module"],
    ),
    (
        Capability::SysTime,
        &["settimeofday", "stime", "clock_settime", "clock_adjtime"],
    ),
    (Capability::SysBoot, &["reboot"]),
    (Capability::SysPacct, &["acct"]),
    (Capability::SysRawio, &["iopl", "ioperm"]),
    (
        Capability::SysNice,
        &["mbind", "set_mempolicy", "get_mempolicy", "move_pages"],
    ),
    (Capability::Syslog, &["syslog"]),
    (Capability::SysTtyConfig, &["vhangup"]),
    (Capability::DacReadSearch, &["open_by_handle_at"]),
    (Capability::Bpf, &["bpf"]),
    (Capability::Perfmon, &["perf_event_open"]),
];

/// The personas `personality` may still set when it is denied: PER_LINUX, PER_LINUX32, their
/// UNAME26 forms, and the query (0xffffffff).
const HARMLESS_PERSONAS: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID and NEWNET: a `clone` without
/// CAP_SYS_ADMIN must have all of these clear.
const CLONE_NEW_NAMESPACES: u64 =
    0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000;

const EPERM: u32 = libc::EPERM as u32;
const ENOSYS: u32 = libc::ENOSYS as u32;

/// Docker's default seccomp policy, as an allow list: every syscall the kernel tables know is
/// allowed except those Docker's profile leaves out, and anything else (including syscalls
/// newer than the tables, which get ENOSYS so libc falls back) is refused with EPERM. As in
/// Docker, some of the left-out calls come back with the capability that governs them
/// (`--cap-add SYS_ADMIN` brings mount, unshare, setns…; SYS_PTRACE brings ptrace…), `clone`
/// may not ask for new namespaces without SYS_ADMIN, `clone3` gets ENOSYS (libc falls back to
/// `clone`), and `personality` accepts only the harmless personas.
pub fn default_seccomp(caps: &Capabilities) -> Result<LinuxSeccomp, SpecError> {
    let denied = denied_syscalls(caps);
    let allowed = berth_seccomp::known_syscalls()
        .into_iter()
        .filter(|n| !denied.contains(n));
    let mut rules = vec![allow(allowed)?];
    if denied.contains(&"personality") {
        for persona in HARMLESS_PERSONAS {
            rules.push(personality_rule(persona)?);
        }
    }
    if denied.contains(&"clone") {
        rules.push(clone_without_namespaces_rule()?);
    }
    if denied.contains(&"clone3") {
        rules.push(clone3_enosys_rule()?);
    }
    Ok(LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(EPERM)
        .architectures(vec![
            Arch::ScmpArchX86_64,
            Arch::ScmpArchX86,
            Arch::ScmpArchX32,
        ])
        .syscalls(rules)
        .build()?)
}

/// Docker's left-out calls, less those `caps` bring back.
fn denied_syscalls(caps: &Capabilities) -> Vec<&'static str> {
    let given_back: Vec<&str> = GIVEN_BACK
        .iter()
        .filter(|(cap, _)| caps.contains(cap))
        .flat_map(|(_, calls)| calls.iter().copied())
        .collect();
    DENIED
        .into_iter()
        .filter(|d| !given_back.contains(d))
        .collect()
}

/// `names` allowed whatever their arguments.
fn allow<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<LinuxSyscall, SpecError> {
    Ok(LinuxSyscallBuilder::default()
        .names(names.into_iter().map(String::from).collect::<Vec<_>>())
        .action(LinuxSeccompAction::ScmpActAllow)
        .build()?)
}

/// `personality(persona)` allowed.
fn personality_rule(persona: u64) -> Result<LinuxSyscall, SpecError> {
    let first_arg_is = LinuxSeccompArgBuilder::default()
        .index(0usize)
        .value(persona)
        .op(LinuxSeccompOperator::ScmpCmpEq)
        .build()?;
    Ok(LinuxSyscallBuilder::default()
        .names(vec!["personality".to_string()])
        .action(LinuxSeccompAction::ScmpActAllow)
        .args(vec![first_arg_is])
        .build()?)
}

/// `clone` allowed when its flags ask for no new namespace.
fn clone_without_namespaces_rule() -> Result<LinuxSyscall, SpecError> {
    let no_namespace_flag = LinuxSeccompArgBuilder::default()
        .index(0usize)
        .value(CLONE_NEW_NAMESPACES)
        .value_two(0u64)
        .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
        .build()?;
    Ok(LinuxSyscallBuilder::default()
        .names(vec!["clone".to_string()])
        .action(LinuxSeccompAction::ScmpActAllow)
        .args(vec![no_namespace_flag])
        .build()?)
}

/// `clone3` refused with ENOSYS: its flags live in memory seccomp cannot read, and libc falls
/// back to `clone`, whose flags it can.
fn clone3_enosys_rule() -> Result<LinuxSyscall, SpecError> {
    Ok(LinuxSyscallBuilder::default()
        .names(vec!["clone3".to_string()])
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(ENOSYS)
        .build()?)
}

/// The profile in `path` (`--security-opt seccomp=PATH`), in the OCI form the runtime reads.
pub fn profile_file(path: &str) -> Result<LinuxSeccomp, SpecError> {
    let data = std::fs::read(path).map_err(|source| SpecError::SeccompFile {
        path: path.into(),
        source,
    })?;
    serde_json::from_slice(&data).map_err(|source| SpecError::SeccompProfile {
        path: path.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocispec::security::DEFAULT_CAPS;

    fn profile(extra: &[Capability]) -> LinuxSeccomp {
        let mut caps = Capabilities::from(DEFAULT_CAPS);
        caps.extend(extra);
        default_seccomp(&caps).unwrap()
    }

    fn allowed(p: &LinuxSeccomp) -> &[String] {
        let first = &p.syscalls().as_ref().unwrap()[0];
        assert_eq!(first.action(), LinuxSeccompAction::ScmpActAllow);
        assert_eq!(first.args(), &None);
        first.names()
    }

    /// The rules after the allow list, by syscall name.
    fn conditional(p: &LinuxSeccomp, name: &str) -> Vec<LinuxSyscall> {
        let rules = &p.syscalls().as_ref().unwrap()[1..];
        rules
            .iter()
            .filter(|r| r.names() == &[name])
            .cloned()
            .collect()
    }

    #[test]
    fn anything_not_allowed_is_refused_with_eperm_on_x86() {
        let p = profile(&[]);
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(1));
        let archs = [Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32];
        assert_eq!(p.architectures().as_deref(), Some(&archs[..]));
    }

    #[test]
    fn every_known_syscall_is_allowed_but_dockers_left_out_ones() {
        let p = profile(&[]);
        let allowed = allowed(&p);
        for name in ["read", "write", "openat", "execve", "mkdir", "socket"] {
            assert!(allowed.iter().any(|a| a == name), "{name}");
        }
        for name in DENIED {
            assert!(!allowed.iter().any(|a| a == name), "{name}");
        }
        let known = berth_seccomp::known_syscalls();
        assert_eq!(
            allowed.len(),
            known.iter().filter(|n| !DENIED.contains(n)).count()
        );
    }

    #[test]
    fn each_capability_brings_back_its_calls() {
        for (cap, calls) in GIVEN_BACK {
            let p = profile(&[cap]);
            let allowed = allowed(&p);
            let known = berth_seccomp::known_syscalls();
            for call in calls.iter().filter(|c| known.contains(c)) {
                assert!(allowed.iter().any(|a| a == call), "{cap:?} brings {call}");
            }
        }
        // And only those: ptrace stays out with SYS_ADMIN.
        assert!(!allowed(&profile(&[Capability::SysAdmin])).contains(&"ptrace".to_string()));
    }

    #[test]
    fn personality_is_allowed_only_for_harmless_personas() {
        let rules = conditional(&profile(&[]), "personality");
        let personas: Vec<u64> = rules
            .iter()
            .map(|r| {
                let arg = r.args().as_ref().unwrap()[0];
                assert_eq!(
                    (arg.index(), arg.op()),
                    (0, LinuxSeccompOperator::ScmpCmpEq)
                );
                assert_eq!(r.action(), LinuxSeccompAction::ScmpActAllow);
                arg.value()
            })
            .collect();
        assert_eq!(personas, HARMLESS_PERSONAS);
    }

    #[test]
    fn clone_may_not_ask_for_new_namespaces_without_sys_admin() {
        let rules = conditional(&profile(&[]), "clone");
        assert_eq!(rules.len(), 1);
        let arg = rules[0].args().as_ref().unwrap()[0];
        assert_eq!(arg.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        assert_eq!((arg.value(), arg.value_two()), (0x7e02_0000, Some(0)));
        let with_admin = profile(&[Capability::SysAdmin]);
        assert!(conditional(&with_admin, "clone").is_empty());
        assert!(allowed(&with_admin).contains(&"clone".to_string()));
    }

    #[test]
    fn clone3_gets_enosys_so_libc_falls_back_to_clone() {
        let rules = conditional(&profile(&[]), "clone3");
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(rules[0].errno_ret(), Some(38));
        assert!(conditional(&profile(&[Capability::SysAdmin]), "clone3").is_empty());
    }

    #[test]
    fn a_profile_file_that_is_not_a_profile_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(&path, r#"{"syscalls": "none"}"#).unwrap();
        let e = profile_file(path.to_str().unwrap())
            .unwrap_err()
            .to_string();
        let want = format!("--security-opt seccomp={}: invalid type", path.display());
        assert!(e.starts_with(&want), "{e}");
    }
}
