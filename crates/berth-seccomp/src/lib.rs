//! berth-seccomp: compiles an OCI runtime-spec `linux.seccomp` section into a classic
//! BPF program (pure Rust, no libseccomp) and installs it on the calling thread.
//! [`compile`] validates and makes no syscalls; only [`Filter::install`] touches the
//! kernel, and it never sets no_new_privs or capabilities: that is the caller's job.
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

mod arch;
mod bpf;
mod compile;
mod install;

#[cfg(test)]
mod tests;

pub use compile::BAD_ARCH_ACTION;

/// Why a profile cannot be compiled or a filter cannot be installed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("seccomp: defaultAction: SCMP_ACT_NOTIFY cannot be the default action")]
    NotifyDefault,
    #[error("seccomp: SCMP_ACT_NOTIFY needs listenerPath")]
    NotifyNeedsListener,
    /// The runtime itself must write to hand the listener over; a notified write could deadlock it.
    #[error("seccomp: SCMP_ACT_NOTIFY cannot be used for the write syscall")]
    NotifyWrite,
    #[error("seccomp: syscalls[{0}]: names must be non-empty strings")]
    NoNames(usize),
    #[error("seccomp: {field}: errnoRet {value} does not fit in 16 bits")]
    ErrnoRange { field: String, value: u32 },
    #[error("seccomp: syscall {name:?}: argument index {index} is out of range 0-5")]
    ArgIndex { name: String, index: usize },
    #[error("seccomp: filter needs {0} instructions, over the kernel's limit of 4096")]
    TooLong(usize),
    #[error("seccomp: TSYNC: thread {0} could not take the filter")]
    Tsync(i64),
    #[error("seccomp: installing filter: {0}")]
    Install(#[source] std::io::Error),
}

/// A compiled seccomp filter, ready to install.
#[derive(Clone)]
pub struct Filter {
    instructions: Vec<libc::sock_filter>,
    flags: u32,
    notify: bool,
    skipped: Vec<String>,
    skipped_arches: Vec<String>,
}

/// Compiles and validates a profile, making no syscalls. Semantics follow runc on
/// libseccomp: the native arch plus listed ones each get a section (others meet
/// [`BAD_ARCH_ACTION`]; x32 calls on x86_64 too unless x32 is listed); ERRNO and TRACE
/// data default to EPERM; entries apply in config order and the first whose conditions
/// all hold decides; conditions repeating an argument index are OR-ed, as runc does;
/// rules equal to the default action are dropped; names unknown on every arch are
/// skipped and listed in [`Filter::skipped`]; argument comparisons are unsigned and
/// 64-bit on 64-bit arches (low word only on x86, x32 and arm, as libseccomp).
pub fn compile(s: &oci_spec::runtime::LinuxSeccomp) -> Result<Filter, Error> {
    compile::compile(s)
}

impl Filter {
    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.instructions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.instructions.is_empty()
    }

    /// Whether some rule returns SECCOMP_RET_USER_NOTIF, so installing yields a listener fd.
    pub fn uses_notify(&self) -> bool {
        self.notify
    }

    /// The program, as the kernel will see it.
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.instructions
    }

    /// The `SECCOMP_FILTER_FLAG_*` bits passed to seccomp(2).
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Syscall names unknown on every architecture of the filter, left out as runc
    /// does; the caller should log them.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Listed architectures this crate has no syscall table for (`SCMP_ARCH_PPC64LE`,
    /// …): calls from them meet [`BAD_ARCH_ACTION`], as any unlisted arch's do.
    pub fn skipped_arches(&self) -> &[String] {
        &self.skipped_arches
    }
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("len", &self.instructions.len())
            .field("flags", &format_args!("{:#x}", self.flags))
            .field("notify", &self.notify)
            .field("skipped", &self.skipped)
            .field("skipped_arches", &self.skipped_arches)
            .finish()
    }
}

/// Every syscall name this crate knows for the host's own architecture family (x86_64 with its
/// 32-bit x86 names, or the one native table elsewhere): what an allow-list profile that means
/// "everything but…" is written from.
pub fn known_syscalls() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        names.extend(syscalls::x86_64::Sysno::iter().map(|s| s.name()));
        names.extend(syscalls::x86::Sysno::iter().map(|s| s.name()));
    }
    #[cfg(target_arch = "aarch64")]
    names.extend(syscalls::aarch64::Sysno::iter().map(|s| s.name()));
    #[cfg(target_arch = "riscv64")]
    names.extend(syscalls::riscv64::Sysno::iter().map(|s| s.name()));
    names.sort_unstable();
    names.dedup();
    names
}
