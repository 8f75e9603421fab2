//! Architectures a filter can have a section for: their audit tokens, word size and
//! syscall name→number tables (from the `syscalls` crate, plus the x32 and ARM entries
//! it lacks). Pure lookups; this module never touches the kernel.

use std::collections::HashMap;

use oci_spec::runtime::Arch as OciArch;

/// `__X32_SYSCALL_BIT`: x32 syscalls enter the x86_64 kernel with this bit set in `nr`.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// An architecture this crate has a syscall table for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    X86_64,
    X86,
    X32,
    Aarch64,
    Arm,
    Riscv64,
}

impl Arch {
    /// The architecture this binary runs on, whose section every filter has.
    pub const fn native() -> Arch {
        #[cfg(target_arch = "x86_64")]
        {
            Arch::X86_64
        }
        #[cfg(target_arch = "x86")]
        {
            Arch::X86
        }
        #[cfg(target_arch = "aarch64")]
        {
            Arch::Aarch64
        }
        #[cfg(target_arch = "arm")]
        {
            Arch::Arm
        }
        #[cfg(target_arch = "riscv64")]
        {
            Arch::Riscv64
        }
    }

    /// Maps an OCI architecture; `None` for ones without a table here.
    pub fn from_oci(arch: OciArch) -> Option<Arch> {
        Some(match arch {
            OciArch::ScmpArchNative => Arch::native(),
            OciArch::ScmpArchX86_64 => Arch::X86_64,
            OciArch::ScmpArchX86 => Arch::X86,
            OciArch::ScmpArchX32 => Arch::X32,
            OciArch::ScmpArchAarch64 => Arch::Aarch64,
            OciArch::ScmpArchArm => Arch::Arm,
            OciArch::ScmpArchRiscv64 => Arch::Riscv64,
            _ => return None,
        })
    }

    /// The `AUDIT_ARCH_*` value the kernel puts in `seccomp_data.arch`. x32 shares
    /// x86_64's and is told apart by [`X32_SYSCALL_BIT`] in `nr`.
    pub const fn audit(self) -> u32 {
        const AUDIT_64BIT: u32 = 0x8000_0000;
        const AUDIT_LE: u32 = 0x4000_0000;
        match self {
            Arch::X86_64 | Arch::X32 => 62 | AUDIT_64BIT | AUDIT_LE,
            Arch::X86 => 3 | AUDIT_LE,
            Arch::Aarch64 => 183 | AUDIT_64BIT | AUDIT_LE,
            Arch::Arm => 40 | AUDIT_LE,
            Arch::Riscv64 => 243 | AUDIT_64BIT | AUDIT_LE,
        }
    }

    /// Whether syscall arguments are 64 bits wide, so both words must be compared.
    /// Like libseccomp, x32 counts as a 32-bit ABI.
    pub const fn args_are_64bit(self) -> bool {
        matches!(self, Arch::X86_64 | Arch::Aarch64 | Arch::Riscv64)
    }

    /// The number `name` has on this architecture, as it appears in `seccomp_data.nr`.
    pub fn syscall(self, name: &str) -> Option<u32> {
        let nr = match self {
            Arch::X86_64 => x86_64_number(name)?,
            Arch::X86 => numbers!(syscalls::x86::Sysno).get(name).copied()?,
            Arch::X32 => return x32_syscall(name),
            Arch::Aarch64 => numbers!(syscalls::aarch64::Sysno).get(name).copied()?,
            Arch::Arm => match arm_private(name) {
                Some(nr) => nr,
                None => numbers!(syscalls::arm::Sysno).get(name).copied()?,
            },
            Arch::Riscv64 => numbers!(syscalls::riscv64::Sysno).get(name).copied()?,
        };
        u32::try_from(nr).ok()
    }
}

/// A `syscalls` table as a map from name to number, made once per process: the crate's
/// `from_str` compares the name with every entry in turn, and a profile names hundreds of calls
/// for each of its architectures (a container's start compiled one in about a millisecond).
macro_rules! numbers {
    ($sysno:ty) => {{
        static TABLE: std::sync::OnceLock<HashMap<&'static str, i32>> = std::sync::OnceLock::new();
        TABLE.get_or_init(|| <$sysno>::iter().map(|s| (s.name(), s.id())).collect())
    }};
}
use numbers;

fn x86_64_number(name: &str) -> Option<i32> {
    numbers!(syscalls::x86_64::Sysno).get(name).copied()
}

/// x32 uses the x86_64 numbers with [`X32_SYSCALL_BIT`] set, except for the calls whose
/// arguments carry pointers to structures of a different layout: those have their own
/// entries from 512 on, and their 64-bit numbers are not x32 syscalls at all.
fn x32_syscall(name: &str) -> Option<u32> {
    const X32_SPECIFIC: [&str; 36] = [
        "rt_sigaction",
        "rt_sigreturn",
        "ioctl",
        "readv",
        "writev",
        "recvfrom",
        "sendmsg",
        "recvmsg",
        "execve",
        "ptrace",
        "rt_sigpending",
        "rt_sigtimedwait",
        "rt_sigqueueinfo",
        "sigaltstack",
        "timer_create",
        "mq_notify",
        "kexec_load",
        "waitid",
        "set_robust_list",
        "get_robust_list",
        "vmsplice",
        "move_pages",
        "preadv",
        "pwritev",
        "rt_tgsigqueueinfo",
        "recvmmsg",
        "sendmmsg",
        "process_vm_readv",
        "process_vm_writev",
        "setsockopt",
        "getsockopt",
        "io_setup",
        "io_submit",
        "execveat",
        "preadv2",
        "pwritev2",
    ];
    // Calls the x32 ABI does not have at all.
    const X32_ABSENT: [&str; 6] = [
        "uselib",
        "create_module",
        "get_kernel_syms",
        "query_module",
        "nfsservctl",
        "vserver",
    ];
    if X32_ABSENT.contains(&name) {
        return None;
    }
    let nr = match X32_SPECIFIC.iter().position(|n| *n == name) {
        Some(i) => 512 + i as u32,
        None => u32::try_from(x86_64_number(name)?).ok()?,
    };
    Some(nr | X32_SYSCALL_BIT)
}

/// ARM's private syscalls (`__ARM_NR_*`), which the generic tables leave out.
fn arm_private(name: &str) -> Option<i32> {
    const ARM_NR_BASE: i32 = 0x0f_0000;
    let off = match name {
        "breakpoint" => 1,
        "cacheflush" => 2,
        "usr26" => 3,
        "usr32" => 4,
        "set_tls" => 5,
        "get_tls" => 6,
        _ => return None,
    };
    Some(ARM_NR_BASE + off)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_give_each_arch_its_own_numbers() {
        assert_eq!(Arch::X86_64.syscall("read"), Some(0));
        assert_eq!(Arch::X86_64.syscall("getppid"), Some(110));
        assert_eq!(Arch::X86.syscall("getppid"), Some(64));
        assert_eq!(Arch::X86.syscall("_llseek"), Some(140));
        assert_eq!(Arch::Aarch64.syscall("getppid"), Some(173));
        assert_eq!(Arch::Aarch64.syscall("open"), None);
        assert_eq!(Arch::Arm.syscall("cacheflush"), Some(0x0f_0002));
        assert_eq!(Arch::X86_64.syscall("no_such_call"), None);
    }

    #[test]
    fn x32_numbers_carry_the_x32_bit_and_own_entries() {
        assert_eq!(Arch::X32.syscall("read"), Some(X32_SYSCALL_BIT));
        assert_eq!(Arch::X32.syscall("getppid"), Some(110 | X32_SYSCALL_BIT));
        assert_eq!(Arch::X32.syscall("ioctl"), Some(514 | X32_SYSCALL_BIT));
        assert_eq!(Arch::X32.syscall("pwritev2"), Some(547 | X32_SYSCALL_BIT));
        assert_eq!(Arch::X32.syscall("uselib"), None);
    }

    #[test]
    fn audit_tokens_match_the_oci_arch_values() {
        assert_eq!(Arch::X86_64.audit(), OciArch::ScmpArchX86_64 as u32);
        assert_eq!(Arch::X86.audit(), OciArch::ScmpArchX86 as u32);
        assert_eq!(Arch::Aarch64.audit(), OciArch::ScmpArchAarch64 as u32);
        assert_eq!(Arch::Arm.audit(), OciArch::ScmpArchArm as u32);
        assert_eq!(Arch::Riscv64.audit(), OciArch::ScmpArchRiscv64 as u32);
    }
}
