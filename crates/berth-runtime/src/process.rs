//! The last steps before the user's program runs, shared by a container's init and `exec`: rlimits,
//! umask, user and groups, capabilities, no_new_privs, seccomp, closing stray fds, and execve.
//! Order matters and follows runc's: caps are set after the uid switch, seccomp as late as possible.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci_spec::runtime::{Capabilities, PosixRlimitType, Process};

use crate::error::{Context, Error, ErrorKind, Result};

/// setrlimit's resource type: glibc's enum, an int elsewhere (musl).
#[cfg(target_env = "gnu")]
type RlimitResource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type RlimitResource = libc::c_int;

fn rlimit_resource(t: PosixRlimitType) -> RlimitResource {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

pub fn set_rlimits(p: &Process) -> Result<()> {
    for r in p.rlimits().iter().flatten() {
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: lim is a valid rlimit.
        if unsafe { libc::setrlimit(rlimit_resource(r.typ()), &lim) } != 0 {
            return Err(Error::msg(format!(
                "rlimit {}: {}",
                r.typ(),
                std::io::Error::last_os_error()
            )));
        }
    }
    Ok(())
}

pub fn set_oom_score_adj(p: &Process) -> Result<()> {
    if let Some(adj) = p.oom_score_adj() {
        // Written by the parent already when it could and we cannot (root in a user namespace
        // may not write its own: the file is the host root's).
        let now = std::fs::read_to_string("/proc/self/oom_score_adj").ctx("oom_score_adj")?;
        if now.trim() != adj.to_string() {
            std::fs::write("/proc/self/oom_score_adj", adj.to_string()).ctx("oom_score_adj")?;
        }
    }
    Ok(())
}

/// The parent's write of a child's oom_score_adj, for a child in a user namespace of its own.
pub fn write_oom_score_adj(pid: i32, p: Option<&Process>) -> Result<()> {
    if let Some(adj) = p.and_then(|p| p.oom_score_adj()) {
        std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string())
            .ctx("oom_score_adj")?;
    }
    Ok(())
}

/// Capability numbers known to this kernel.
fn cap_last() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

fn cap_bits(set: &Option<Capabilities>, last: u32) -> u64 {
    let mut bits = 0u64;
    for c in set.iter().flatten() {
        if let Ok(cap) = caps::Capability::from_str(&format!("CAP_{c}")) {
            let i = cap.index() as u32;
            if i <= last {
                bits |= 1 << i;
            }
        }
    }
    bits
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Drops the bounding set, then (after the uid switch) sets effective/permitted/inheritable and ambient.
pub struct CapPlan {
    bounding: u64,
    effective: u64,
    permitted: u64,
    inheritable: u64,
    ambient: u64,
    last: u32,
}

impl CapPlan {
    pub fn new(p: &Process) -> Option<CapPlan> {
        let c = p.capabilities().as_ref()?;
        let last = cap_last();
        Some(CapPlan {
            bounding: cap_bits(c.bounding(), last),
            effective: cap_bits(c.effective(), last),
            permitted: cap_bits(c.permitted(), last),
            inheritable: cap_bits(c.inheritable(), last),
            ambient: cap_bits(c.ambient(), last),
            last,
        })
    }

    pub fn drop_bounding(&self) -> Result<()> {
        for i in 0..=self.last {
            if self.bounding & (1 << i) == 0 {
                // SAFETY: prctl with integer arguments.
                if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, i as libc::c_ulong, 0, 0, 0) } != 0 {
                    let e = std::io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::EINVAL) {
                        return Err(Error::msg(format!(
                            "drop capability {i} from the bounding set: {e}"
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn apply(&self) -> Result<()> {
        let hdr = CapHeader {
            version: 0x2008_0522,
            pid: 0,
        };
        let mut data = [CapData::default(); 2];
        for (i, d) in data.iter_mut().enumerate() {
            let sh = 32 * i;
            d.effective = (self.effective >> sh) as u32;
            d.permitted = (self.permitted >> sh) as u32;
            d.inheritable = (self.inheritable >> sh) as u32;
        }
        // SAFETY: header and two data structs as capset v3 expects.
        if unsafe { libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) } != 0
        {
            return Err(Error::msg(format!(
                "set capabilities: {}",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: prctl with integer arguments.
        unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                0,
                0,
                0,
            )
        };
        for i in 0..=self.last {
            if self.ambient & (1 << i) != 0 {
                // SAFETY: as above. Failure (not in permitted+inheritable) is ignored, like runc.
                unsafe {
                    libc::prctl(
                        libc::PR_CAP_AMBIENT,
                        libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                        i as libc::c_ulong,
                        0,
                        0,
                    )
                };
            }
        }
        Ok(())
    }
}

/// stdin/out/err belong to the process's user (a pipe or a terminal the runtime was handed), so it
/// can reopen them through /proc/self/fd; /dev/null and what it already owns are left alone.
fn fix_stdio_owner(uid: u32) {
    // SAFETY: stat is plain data; stat/fstat fill it.
    let mut null: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and out-pointer.
    let null_ok = unsafe { libc::stat(c"/dev/null".as_ptr(), &mut null) } == 0;
    for fd in 0..3 {
        // SAFETY: as above.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat on a maybe-closed fd only returns EBADF.
        if unsafe { libc::fstat(fd, &mut st) } != 0 || st.st_uid == uid {
            continue;
        }
        if null_ok && st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == null.st_rdev {
            continue;
        }
        // SAFETY: fchown on our own fd; failure (e.g. a read-only fs) is ignored, as runc does for EINVAL/EPERM.
        unsafe { libc::fchown(fd, uid, u32::MAX) };
    }
}

/// setgroups + setresgid + setresuid, keeping capabilities across the switch for CapPlan::apply.
pub fn switch_user(p: &Process, setgroups_allowed: bool) -> Result<()> {
    let u = p.user();
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    if setgroups_allowed {
        let gids: Vec<libc::gid_t> = u.additional_gids().clone().unwrap_or_default();
        // SAFETY: gids is a valid array of gids.
        if unsafe { libc::setgroups(gids.len(), gids.as_ptr()) } != 0 {
            return Err(Error::msg(format!(
                "setgroups {gids:?}: {}",
                std::io::Error::last_os_error()
            )));
        }
    }
    // SAFETY: plain syscalls with integer arguments.
    if unsafe { libc::setresgid(u.gid(), u.gid(), u.gid()) } != 0 {
        return Err(Error::msg(format!(
            "setgid {}: {}",
            u.gid(),
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: as above.
    if unsafe { libc::setresuid(u.uid(), u.uid(), u.uid()) } != 0 {
        return Err(Error::msg(format!(
            "setuid {}: {}",
            u.uid(),
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    Ok(())
}

pub fn set_umask(p: &Process) {
    let m = p.user().umask().unwrap_or(0o022);
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(m as libc::mode_t) };
}

pub fn set_no_new_privs() -> Result<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(Error::msg(format!(
            "no_new_privs: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// Marks every fd from `first` up close-on-exec (CVE-2024-21626: nothing of the runtime's leaks in).
pub fn cloexec_from(first: u32) {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r != 0 {
        for fd in first..4096 {
            // SAFETY: F_SETFD on a maybe-invalid fd only returns EBADF.
            unsafe { libc::fcntl(fd as i32, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
}

/// Creates `process.cwd` if the image lacks it, as runc does (a pod's `workingDir` need not exist
/// in its image). Called in the new root, after pivot_root, so every path, symlinks included,
/// resolves inside the container; and before the root is made read-only, so that works too.
pub fn make_cwd(p: &Process) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(p.cwd())
        .with_ctx(|| format!("process.cwd {}", p.cwd().display()))
}

/// Resolves args[0] through the process's own PATH, as execvp would, but with the container's env.
pub fn lookup(arg0: &str, env: &[String]) -> Result<PathBuf> {
    if arg0.contains('/') {
        // A path is used as given: a missing program is reported when the process is executed (after
        // `start`), so `create` of a bundle whose program arrives later still succeeds.
        return Ok(PathBuf::from(arg0));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':') {
        let cand = Path::new(if dir.is_empty() { "." } else { dir }).join(arg0);
        if let Ok(m) = std::fs::metadata(&cand) {
            use std::os::unix::fs::PermissionsExt;
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Ok(cand);
            }
        }
    }
    Err(Error::Exec {
        kind: ErrorKind::CommandNotFound,
        message: format!("exec: {arg0:?}: executable file not found in $PATH"),
    })
}

/// Restores the signal state a fresh program expects: nothing blocked, SIGPIPE default (Rust ignores it).
pub fn reset_signals() {
    // SAFETY: plain signal-state syscalls on our own process.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// execve; returns only on failure, with the kind its errno means (127 or 126 to Docker).
pub fn exec(path: &Path, args: &[String], env: &[String]) -> Error {
    let strings = (
        CString::new(path.as_os_str().as_encoded_bytes()).ctx("exec: the program path"),
        CStrings::new("argument", args.iter().map(|a| a.as_bytes().to_vec())),
        CStrings::new(
            "environment entry",
            env.iter().map(|e| e.as_bytes().to_vec()),
        ),
    );
    let (p, argv, envp) = match strings {
        (Ok(p), Ok(a), Ok(e)) => (p, a, e),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return e,
    };
    // SAFETY: null-terminated arrays of valid C strings that outlive the call.
    unsafe { libc::execve(p.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    let os = std::io::Error::last_os_error();
    Error::Exec {
        kind: ErrorKind::of_exec_errno(os.raw_os_error().unwrap_or(libc::ENOENT)),
        message: format!("exec {}: {}", path.display(), os),
    }
}

/// A NULL-terminated `char *[]` for execve and friends, owning its strings.
pub struct CStrings {
    _owned: Vec<CString>,
    ptrs: Vec<*const libc::c_char>,
}

impl CStrings {
    /// The strings as C strings; one holding a NUL byte is an error naming it (`what` says what
    /// the strings are: "argument", "environment entry"), never silently emptied.
    pub fn new(what: &str, items: impl Iterator<Item = Vec<u8>>) -> Result<CStrings> {
        let owned: Vec<CString> = items
            .enumerate()
            .map(|(i, b)| {
                CString::new(b).map_err(|e| {
                    Error::msg(format!(
                        "{what} {i} ({:?}) holds a NUL byte",
                        String::from_utf8_lossy(&e.into_vec()).replace('\0', "\\0")
                    ))
                })
            })
            .collect::<Result<_>>()?;
        let mut ptrs: Vec<*const libc::c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        Ok(CStrings {
            _owned: owned,
            ptrs,
        })
    }

    pub fn as_ptr(&self) -> *const *const libc::c_char {
        self.ptrs.as_ptr()
    }
}

/// Everything from the user switch to just before execve, for init and exec alike.
/// `seccomp` is installed here: before the caps drop when no_new_privs is off (it needs CAP_SYS_ADMIN),
/// else last.
/// `on_listener` receives a notify filter's listener the moment the filter is installed: every
/// later syscall may already wait on the agent, so it must be handed over first.
pub fn finalize(
    p: &Process,
    seccomp: Option<&berth_seccomp::Filter>,
    setgroups_allowed: bool,
    on_listener: &mut dyn FnMut(OwnedFd) -> Result<()>,
) -> Result<()> {
    let nnp = p.no_new_privileges().unwrap_or(false);
    // Without no_new_privs the filter goes in now, while CAP_SYS_ADMIN is still held.
    if let Some(f) = seccomp.filter(|_| !nnp) {
        if let Some(fd) = f.install()? {
            on_listener(fd)?;
        }
    }
    let caps = CapPlan::new(p);
    if let Some(c) = &caps {
        c.drop_bounding()?;
    }
    // cwd first as root (a directory only root can enter still works, as in runc), and again as the
    // user if that failed (a network filesystem may refuse root but admit the user).
    let early_cwd = std::env::set_current_dir(p.cwd()).is_ok();
    fix_stdio_owner(p.user().uid());
    switch_user(p, setgroups_allowed)?;
    if !early_cwd {
        std::env::set_current_dir(p.cwd())
            .with_ctx(|| format!("chdir to cwd {}", p.cwd().display()))?;
    }
    if let Some(c) = &caps {
        c.apply()?;
    }
    if nnp {
        set_no_new_privs()?;
        // With it, the filter goes in last, after the identity change, and before the start gate and
        // startContainer hooks, which run under it (as with runc).
        if let Some(f) = seccomp {
            if let Some(fd) = f.install()? {
                on_listener(fd)?;
            }
        }
    }
    Ok(())
}

/// The process's terminal: a pty from the container's devpts, its master sent over `sock` (runc's
/// console-socket protocol), the slave owned by the process's user and made the controlling
/// terminal on 0, 1 and 2. With `dev_console`, /dev/console is bound to it too (init only).
pub fn attach_terminal(sock: &OwnedFd, p: &Process, dev_console: bool) -> Result<()> {
    use crate::console;
    use std::os::fd::{AsFd, AsRawFd};
    let (master, slave, name) = console::open_pty().map_err(|e| Error::msg(e.to_string()))?;
    if let Some(sz) = p.console_size() {
        let _ = console::set_size(master.as_fd(), sz.height() as u16, sz.width() as u16);
    }
    if dev_console {
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/dev/console");
        crate::rootfs::mount(Some(&name), "/dev/console", None, libc::MS_BIND, None)?;
    }
    console::send_master(sock, &master, console::MASTER_NAME)
        .map_err(|e| Error::msg(e.to_string()))?;
    drop(master);
    // The terminal belongs to the process's user (its group stays devpts' gid=, the tty group).
    // SAFETY: fchown on a valid fd.
    unsafe { libc::fchown(slave.as_raw_fd(), p.user().uid(), u32::MAX) };
    console::make_controlling(&slave).map_err(|e| Error::msg(e.to_string()))
}
