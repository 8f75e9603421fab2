//! A profile shaped like Docker's default (an allow-list of 300+ syscalls, default
//! ERRNO, x86_64 + x86 + x32, a few argument rules) must compile within the kernel's
//! instruction limit and behave.

use libc::{SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO};

use super::rules::{I386, X86_64};
use super::sim::{filter, run, Call};

const ALLOWED: &str =
    "accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir \
chmod chown chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 \
clock_gettime clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range \
connect copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl \
epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve \
execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate \
fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 \
fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 \
fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64 \
futex_wait futex_waitv futex_wake futimesat getcpu getcwd getdents getdents64 getegid \
getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername \
getpgid getpgrp getpid getppid getpriority getrandom getresgid getresgid32 getresuid \
getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt \
get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch \
inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents \
io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit ipc kill \
landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32 \
lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr \
lstat lstat64 madvise map_shadow_stack membarrier memfd_create memfd_secret mincore \
mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr \
mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend \
mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock \
munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open openat openat2 \
pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll \
ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 \
pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv \
recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr rename \
renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending \
rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait \
rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr \
sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler \
sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr \
sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop \
semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto \
setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 \
setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid \
setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt \
set_thread_area set_tid_address setuid setuid32 setxattr shmat shmctl shmdt shmget \
shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall socketpair \
splice stat stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range \
syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun \
timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create \
timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill \
truncate truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat \
utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev \
arch_prctl modify_ldt chroot";

fn docker_like() -> String {
    let names: Vec<String> = ALLOWED
        .split_whitespace()
        .map(|n| format!("{n:?}"))
        .collect();
    assert!(names.len() > 300, "{} names", names.len());
    format!(
        r#"{{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
        "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
        "syscalls":[
          {{"names":[{names}],"action":"SCMP_ACT_ALLOW"}},
          {{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{{"index":0,"value":0,"op":"SCMP_CMP_EQ"}}]}},
          {{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{{"index":0,"value":8,"op":"SCMP_CMP_EQ"}}]}},
          {{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{{"index":0,"value":131072,"op":"SCMP_CMP_EQ"}}]}},
          {{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{{"index":0,"value":131080,"op":"SCMP_CMP_EQ"}}]}},
          {{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{{"index":0,"value":4294967295,"op":"SCMP_CMP_EQ"}}]}},
          {{"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}}]}},
          {{"names":["clone3"],"action":"SCMP_ACT_ERRNO","errnoRet":38}},
          {{"names":["socket"],"action":"SCMP_ACT_ALLOW","args":[{{"index":0,"value":40,"op":"SCMP_CMP_NE"}}]}},
          {{"names":["process_vm_readv","process_vm_writev","ptrace"],"action":"SCMP_ACT_ALLOW"}}
        ]}}"#,
        names = names.join(",")
    )
}

#[test]
fn docker_like_profile_fits_and_allows_only_its_list() {
    let f = filter(&docker_like());
    assert!(f.len() < 4096, "{} instructions", f.len());
    eprintln!("docker-like profile: {} instructions", f.len());
    // Pseudo-calls libseccomp maps onto socketcall; no table here has them.
    assert_eq!(f.skipped(), ["recv", "send"]);
    let eperm = SECCOMP_RET_ERRNO | 1;
    assert_eq!(run(&f, Call::new(X86_64, 0)), SECCOMP_RET_ALLOW, "read");
    assert_eq!(run(&f, Call::new(X86_64, 165)), eperm, "mount");
    assert_eq!(
        run(&f, Call::new(X86_64, 435)),
        SECCOMP_RET_ERRNO | 38,
        "clone3"
    );
    assert_eq!(run(&f, Call::new(I386, 3)), SECCOMP_RET_ALLOW, "i386 read");
    assert_eq!(run(&f, Call::new(I386, 21)), eperm, "i386 mount");
    assert_eq!(
        run(&f, Call::new(X86_64, 0x4000_0000)),
        SECCOMP_RET_ALLOW,
        "x32 read"
    );
    // clone: allowed unless a namespace flag is set.
    assert_eq!(
        run(&f, Call::new(X86_64, 56).arg(0, 0x0001_1200)),
        SECCOMP_RET_ALLOW
    );
    assert_eq!(
        run(&f, Call::new(X86_64, 56).arg(0, 0x1000_0000)),
        eperm,
        "CLONE_NEWUSER"
    );
    // personality: only the listed personas.
    assert_eq!(run(&f, Call::new(X86_64, 135).arg(0, 8)), SECCOMP_RET_ALLOW);
    assert_eq!(
        run(&f, Call::new(X86_64, 135).arg(0, 0xffff_ffff)),
        SECCOMP_RET_ALLOW
    );
    assert_eq!(run(&f, Call::new(X86_64, 135).arg(0, 0x0040_0000)), eperm);
    // socket: anything but AF_VSOCK.
    assert_eq!(run(&f, Call::new(X86_64, 41).arg(0, 2)), SECCOMP_RET_ALLOW);
    assert_eq!(run(&f, Call::new(X86_64, 41).arg(0, 40)), eperm);
}

#[test]
fn exactly_the_listed_syscalls_are_allowed_on_each_arch() {
    use crate::arch::{Arch, X32_SYSCALL_BIT};
    let f = filter(&docker_like());
    let with_args = ["personality", "clone", "socket", "clone3"];
    let extra = ["process_vm_readv", "process_vm_writev", "ptrace"];
    for arch in [Arch::X86_64, Arch::X86, Arch::X32] {
        let names = ALLOWED.split_whitespace().chain(extra);
        let allowed: Vec<u32> = names.filter_map(|n| arch.syscall(n)).collect();
        let special: Vec<u32> = with_args.iter().filter_map(|n| arch.syscall(n)).collect();
        let base = if arch == Arch::X32 {
            X32_SYSCALL_BIT
        } else {
            0
        };
        for nr in (base..base + 1100).chain([base + 0x3fff_ffff]) {
            if special.contains(&nr) || (arch != Arch::X32 && nr >= X32_SYSCALL_BIT) {
                continue;
            }
            let newest = allowed.iter().chain(&special).copied().max().unwrap_or(0);
            let want = if allowed.contains(&nr) {
                SECCOMP_RET_ALLOW
            } else if nr > newest {
                SECCOMP_RET_ERRNO | libc::ENOSYS as u32 // newer than the profile: ENOSYS stub
            } else {
                SECCOMP_RET_ERRNO | 1
            };
            assert_eq!(
                run(&f, Call::new(arch.audit(), nr)),
                want,
                "{arch:?} nr {nr:#x}"
            );
        }
    }
}

#[test]
fn kernel_accepts_the_docker_like_program_and_enforces_it() {
    let f = filter(&docker_like());
    // SAFETY: the child only makes raw syscalls and _exits (async-signal-safe).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: raw syscalls with integer arguments; install allocates nothing.
        unsafe {
            libc::alarm(20);
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || f.install().is_err() {
                libc::_exit(90);
            }
            let allowed = libc::syscall(libc::SYS_getppid) > 0;
            // kcmp is not on the list: EPERM, not the ESRCH it would give unfiltered.
            let denied = libc::syscall(libc::SYS_kcmp, 0, 0, 0, 0, 0) == -1
                && *libc::__errno_location() == libc::EPERM;
            libc::_exit(if allowed && denied { 0 } else { 1 });
        }
    }
    let mut status = 0;
    // SAFETY: our child, valid out pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "status {status:#x}");
    assert_eq!(libc::WEXITSTATUS(status), 0);
}
