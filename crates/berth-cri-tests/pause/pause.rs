//! berth's pause: the process a pod sandbox runs so that the pod's namespaces have an owner.
//! It blocks SIGINT, SIGTERM and SIGCHLD and waits for them with sigtimedwait: SIGINT or SIGTERM
//! ends it with status 0, SIGCHLD reaps every exited child (as PID 1 it inherits orphans of a
//! shared PID namespace). Nothing else: no libc, no allocator, no files; raw system calls only.
//!
//! Built as a static executable by this crate's build.rs (one `rustc` call, `panic=abort`,
//! no start files); `docs/cri.md` gives the command for building it by hand.
#![no_std]
#![no_main]

/// System call numbers and the entry point, per architecture.
#[cfg(target_arch = "x86_64")]
mod arch {
    pub const RT_SIGPROCMASK: usize = 14;
    pub const WAIT4: usize = 61;
    pub const RT_SIGTIMEDWAIT: usize = 128;
    pub const EXIT_GROUP: usize = 231;

    // The kernel enters with the stack 16-byte aligned; a Rust function expects it 8 bytes off
    // that (a return address pushed), so `call` from here rather than being the entry itself.
    core::arch::global_asm!(
        ".globl _start",
        "_start:",
        "xor ebp, ebp",
        "and rsp, -16",
        "call {main}",
        "ud2",
        main = sym super::pause_main,
    );

    /// # Safety
    /// The caller passes arguments that are valid for system call `nr`.
    pub unsafe fn syscall4(nr: usize, a: usize, b: usize, c: usize, d: usize) -> isize {
        let ret: isize;
        // SAFETY: the `syscall` instruction with the kernel's register convention; rcx and r11
        // are clobbered by it, and the caller vouches for the arguments.
        unsafe {
            core::arch::asm!(
                "syscall",
                inlateout("rax") nr as isize => ret,
                in("rdi") a, in("rsi") b, in("rdx") c, in("r10") d,
                lateout("rcx") _, lateout("r11") _,
                options(nostack),
            );
        }
        ret
    }
}

#[cfg(target_arch = "aarch64")]
mod arch {
    pub const RT_SIGPROCMASK: usize = 135;
    pub const WAIT4: usize = 260;
    pub const RT_SIGTIMEDWAIT: usize = 137;
    pub const EXIT_GROUP: usize = 94;

    // The kernel enters with sp 16-byte aligned, as the procedure call standard wants.
    core::arch::global_asm!(
        ".globl _start",
        "_start:",
        "mov x29, #0",
        "mov x30, #0",
        "bl {main}",
        "brk #0",
        main = sym super::pause_main,
    );

    /// # Safety
    /// The caller passes arguments that are valid for system call `nr`.
    pub unsafe fn syscall4(nr: usize, a: usize, b: usize, c: usize, d: usize) -> isize {
        let ret: isize;
        // SAFETY: `svc 0` with the kernel's register convention (x8 the number, x0-x3 the
        // arguments, x0 the result); the caller vouches for the arguments.
        unsafe {
            core::arch::asm!(
                "svc 0",
                in("x8") nr,
                inlateout("x0") a as isize => ret,
                in("x1") b, in("x2") c, in("x3") d,
                options(nostack),
            );
        }
        ret
    }
}

const SIGINT: u32 = 2;
const SIGTERM: u32 = 15;
const SIGCHLD: u32 = 17;
const SIG_BLOCK: usize = 0;
const WNOHANG: usize = 1;
/// The kernel's sigset_t is 64 bits on every Linux architecture this builds for.
const SIGSET_SIZE: usize = 8;

const fn bit(sig: u32) -> u64 {
    1 << (sig - 1)
}

fn exit(code: i32) -> ! {
    // SAFETY: exit_group takes a status and does not return.
    unsafe { arch::syscall4(arch::EXIT_GROUP, code as usize, 0, 0, 0) };
    loop {}
}

/// Reaps every child that has exited, without blocking.
fn reap_children() {
    // SAFETY: wait4(-1, NULL, WNOHANG, NULL): no status or rusage is written anywhere.
    while unsafe { arch::syscall4(arch::WAIT4, usize::MAX, 0, WNOHANG, 0) } > 0 {}
}

extern "C" fn pause_main() -> ! {
    let set: u64 = bit(SIGINT) | bit(SIGTERM) | bit(SIGCHLD);
    let set_ptr = &set as *const u64 as usize;
    // SAFETY: rt_sigprocmask reads SIGSET_SIZE bytes from `set`, which lives for the call; the
    // old mask is not asked for (NULL).
    if unsafe { arch::syscall4(arch::RT_SIGPROCMASK, SIG_BLOCK, set_ptr, 0, SIGSET_SIZE) } < 0 {
        exit(1);
    }
    loop {
        // SAFETY: rt_sigtimedwait reads the set (alive for the call); no siginfo is written
        // (NULL) and no timeout is given (NULL: wait for ever). Blocked signals are never
        // ignored, so this works as PID 1 of a namespace, where unhandled signals are dropped.
        let sig = unsafe { arch::syscall4(arch::RT_SIGTIMEDWAIT, set_ptr, 0, 0, SIGSET_SIZE) };
        match sig {
            s if s == SIGINT as isize || s == SIGTERM as isize => exit(0),
            s if s == SIGCHLD as isize => reap_children(),
            _ => {} // EINTR (a stop and continue), or a signal outside the set: wait again
        }
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(2)
}
