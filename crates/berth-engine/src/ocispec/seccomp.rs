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
