//! The container's init process, from clone to execve: join or finish its namespaces, build the
//! root filesystem, pivot into it, apply the process's limits and privileges, report ready, wait at
//! the start gate, and exec. Every failure is sent to the parent as one line before exiting.

use std::os::fd::{AsRawFd, OwnedFd};

use oci_spec::runtime::LinuxNamespaceType;

use crate::error::{Context, Error, Result};
use crate::namespaces::{self, Plan};
use crate::process;
use crate::rootfs::{self, RootfsContext};
use crate::spec::Bundle;
use crate::sync::{Channel, Msg};

pub struct InitArgs<'a> {
    pub bundle: &'a Bundle,
    pub plan: &'a Plan,
    /// None: a rootless container the user could not give a cgroup.
    pub cgroup: Option<&'a berth_cgroups::Cgroup>,
    pub cgroup_join: &'a crate::cgjoin::SelfJoin,
    pub seccomp: Option<&'a berth_seccomp::Filter>,
    pub chan: &'a Channel,
    pub fifo: &'a OwnedFd,
    pub console: Option<&'a OwnedFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub id: &'a str,
    pub bind_sources: &'a [(std::path::PathBuf, OwnedFd)],
    /// Cloned before the cgroup existed: wait for `Go` just before the cgroup mount.
    pub early_clone: bool,
    /// The runtime is not the host's root (runc's rootless).
    pub rootless: bool,
}

/// Runs in the cloned child; returns the exit code only on failure (exec replaces us on success).
pub fn run(a: &InitArgs) -> i32 {
    crate::debug("child process in init(): setting up the container");
    let err = match setup(a) {
        Ok(exec) => exec_after_start(a, exec),
        Err(e) => e,
    };
    let _ = a.chan.send(&crate::sync::Failure::of(&err));
    1
}

struct ExecPlan {
    path: std::path::PathBuf,
    args: Vec<String>,
    env: Vec<String>,
}

fn setup(a: &InitArgs) -> Result<ExecPlan> {
    let spec = &a.bundle.spec;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::msg("process missing"))?;
    let userns = a.plan.new_user || a.plan.joins(LinuxNamespaceType::User);
    if !userns {
        set_non_dumpable();
    }
    if a.early_clone {
        // The namespaces the parent left to us (see `create`): before anything else happens here.
        namespaces::unshare(a.plan.clone_flags & !libc::CLONE_NEWPID)?;
    }

    // Open every namespace path before joining any (a mount namespace changes what paths mean).
    let mut joins = Vec::new();
    for (t, p) in &a.plan.join {
        if *t != LinuxNamespaceType::Pid {
            joins.push((*t, namespaces::open_ns(p)?, p.display().to_string()));
        }
    }
    if let Some((t, fd, p)) = joins
        .iter()
        .find(|(t, _, _)| *t == LinuxNamespaceType::User)
    {
        namespaces::setns(fd, *t, p)?;
        namespaces::unshare(a.plan.unshare_after_userns)?;
    }
    if !a.early_clone {
        a.chan.expect(Msg::Go)?;
        a.cgroup_join.join(a.chan)?;
        crate::trace("child: cgroup joined");
    }
    if userns {
        become_root_in_userns()?;
    }
    for (t, fd, p) in joins
        .iter()
        .filter(|(t, _, _)| *t != LinuxNamespaceType::User && *t != LinuxNamespaceType::Mount)
    {
        namespaces::setns(fd, *t, p)?;
    }
    if let Some((t, fd, p)) = joins
        .iter()
        .find(|(t, _, _)| *t == LinuxNamespaceType::Mount)
    {
        namespaces::setns(fd, *t, p)?;
    }
    if a.plan.unshare_cgroup && !a.early_clone {
        namespaces::unshare(libc::CLONE_NEWCGROUP)?;
    }
    if a.plan.unshare_time {
        namespaces::unshare(0x80)?;
        namespaces::write_time_offsets(spec)?;
    }
    set_names(spec)?;
    if (a.plan.clone_flags | a.plan.unshare_after_userns) & libc::CLONE_NEWNET != 0 {
        // A new network namespace has only `lo`, down: bring it up, as runc does.
        bring_up_loopback()?;
    }

    let new_netns =
        a.plan.clone_flags & libc::CLONE_NEWNET != 0 || a.plan.joins(LinuxNamespaceType::Network);
    // Inside any user namespace but the host's (rootless berth runs the runtime in its own):
    // device nodes are bound, not made.
    let in_userns =
        userns || !berth_sys::userns::in_initial_namespace().ctx("read /proc/self/uid_map")?;
    let ctx = RootfsContext {
        spec,
        rootfs: &a.bundle.rootfs,
        bundle: &a.bundle.dir,
        cgroup: a.cgroup,
        userns: in_userns,
        new_cgroupns: a.plan.unshare_cgroup,
        new_netns,
        own_mount_ns: a.plan.has_mount_ns(),
        bind_sources: a.bind_sources,
    };
    rootfs::prepare(&ctx, &mut || {
        if a.early_clone {
            a.chan.expect(Msg::Go)?;
            a.cgroup_join.join(a.chan)?;
            crate::trace("child: cgroup joined");
            if a.plan.unshare_cgroup {
                namespaces::unshare(libc::CLONE_NEWCGROUP)?;
            }
        }
        Ok(())
    })?;
    crate::trace("child: rootfs prepared");
    let hooks = spec.hooks().as_ref();
    let runtime_hooks = hooks.is_some_and(|h| {
        h.prestart().as_ref().is_some_and(|v| !v.is_empty())
            || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
    });
    if runtime_hooks {
        a.chan.send(&Msg::RunHooks)?;
        a.chan.expect(Msg::HooksDone)?;
    }
    if let Some(h) = hooks {
        // Our pid as the host sees it: the host's /proc is still mounted here (before pivot_root).
        let host_pid: u32 = std::fs::read_link("/proc/self")
            .ok()
            .and_then(|p| p.to_str().and_then(|s| s.parse().ok()))
            .unwrap_or_else(std::process::id);
        // Run from the container's root, as runc does (hooks use paths relative to it).
        let _ = std::env::set_current_dir(&a.bundle.rootfs);
        let st = serde_json::json!({"ociVersion": "1.1.0", "id": a.id, "status": "creating", "pid": host_pid, "bundle": a.bundle.dir, "annotations": spec.annotations().clone().unwrap_or_default()});
        crate::create::run_hooks(
            "createContainer",
            h.create_container(),
            st.to_string().as_bytes(),
        )?;
    }
    rootfs::pivot(&a.bundle.rootfs, a.no_pivot, a.plan.has_mount_ns())?;
    crate::trace("child: pivoted");
    process::make_cwd(process)?;
    if let Some(sock) = a.console {
        process::attach_terminal(sock, process, true)?;
    }
    rootfs::apply_sysctls(spec)?;
    rootfs::finalize(spec, a.plan.has_mount_ns())?;
    crate::trace("child: finalized rootfs");
    if !a.no_new_keyring {
        join_session_keyring(a.id);
    }
    set_personality(spec)?;
    process::set_rlimits(process)?;
    process::set_oom_score_adj(process)?;
    process::set_umask(process);
    // Until the exec, keep what runs in the container away from this process. A rootless
    // caller that joins no namespace must still reach us (runc's rule: `exec` into a created
    // container opens our /proc/PID/ns, which a non-dumpable process closes to the user); that
    // reveals nothing the same user could not already reach, and the binary behind our
    // /proc/PID/exe is a sealed memfd either way (CVE-2019-5736).
    if !(a.rootless && a.plan.join.is_empty()) {
        set_non_dumpable();
    }
    // Denied in any user namespace mapped without newgidmap (rootless berth's single-id
    // one too, which the spec does not name): the init then leaves its groups as they are.
    let setgroups = std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() == "allow")
        .unwrap_or(true);
    process::finalize(process, a.seccomp, setgroups, &mut |fd| {
        crate::notify::child_send(a.chan, fd)
    })?;
    crate::trace("child: process finalized");
    let args = process.args().clone().unwrap_or_default();
    let env = process.env().clone().unwrap_or_default();
    let path = process::lookup(&args[0], &env)?;
    process::cloexec_from(3 + a.preserve_fds);
    Ok(ExecPlan { path, args, env })
}

/// Reports ready, waits for `start`, runs startContainer hooks, installs a late seccomp filter, execs.
fn exec_after_start(a: &InitArgs, e: ExecPlan) -> Error {
    crate::debug("init: closing the pipe to signal completion: ready, waiting for start");
    if let Err(err) = a.chan.send(&Msg::Ready) {
        return err;
    }
    let mut b = [0u8; 1];
    loop {
        // SAFETY: reading one byte into a valid buffer.
        let r = unsafe { libc::read(a.fifo.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
        if r >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    let spec = &a.bundle.spec;
    let fail = |err: Error| {
        crate::warn(&format!("berth-runtime: container {}: {err}", a.id));
        // SAFETY: exit the child without unwinding.
        unsafe { libc::_exit(127) }
    };
    if let Some(h) = spec.hooks() {
        let st = serde_json::json!({"ociVersion": "1.1.0", "id": a.id, "status": "running", "pid": 1, "bundle": a.bundle.dir, "annotations": spec.annotations().clone().unwrap_or_default()});
        if let Err(err) = crate::create::run_hooks(
            "startContainer",
            h.start_container(),
            st.to_string().as_bytes(),
        ) {
            fail(err);
        }
    }
    if spec
        .annotations()
        .as_ref()
        .is_some_and(|m| m.get(INIT_ANNOTATION).is_some_and(|v| v == "true"))
    {
        reap_as_init(&e);
    }
    process::reset_signals();
    let err = process::exec(&e.path, &e.args, &e.env);
    // Like Docker: 126 when the program exists but cannot be run, 127 when it is missing.
    let code = exec_exit_code(&err);
    crate::warn(&format!("berth-runtime: container {}: {err}", a.id));
    // SAFETY: exit the child without unwinding.
    unsafe { libc::_exit(code) }
}

/// The annotation that asks for a reaping PID 1 (`berth run --init`): the runtime's init forks the
/// user's program and stays as PID 1, forwarding signals and reaping every orphan, like tini.
pub const INIT_ANNOTATION: &str = "org.berth.init";

/// The status a process leaves with when its program could not be executed, from the error's
/// kind (a failure that is no exec failure at all, like a NUL byte in an argument, is 127 too).
fn exec_exit_code(err: &Error) -> i32 {
    match err.kind() {
        crate::error::ErrorKind::CannotInvoke => 126,
        _ => 127,
    }
}

/// `--init`: fork the program, then wait as PID 1 with every signal forwarded to it; exit with
/// its status. Never returns.
fn reap_as_init(e: &ExecPlan) -> ! {
    crate::signals::block_all();
    // SAFETY: PR_SET_NAME with a NUL-terminated name (what `ps` shows for PID 1).
    unsafe { libc::prctl(libc::PR_SET_NAME, c"init".as_ptr(), 0, 0, 0) };
    // SAFETY: the init is single-threaded; the child only resets signals and execs.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        process::reset_signals();
        let err = process::exec(&e.path, &e.args, &e.env);
        let code = exec_exit_code(&err);
        crate::warn(&format!("berth-runtime: {err}"));
        // SAFETY: leave the forked child without unwinding.
        unsafe { libc::_exit(code) }
    }
    // PID 1 never execs, so descriptors marked close-on-exec would stay open in it for the
    // container's whole life (a caller waiting for a pipe's end would wait that long): close
    // everything but stdio.
    // SAFETY: close_range on fds this process owns; none is used after this point.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    let code = if pid < 0 {
        127
    } else {
        crate::signals::forward_until_exit(pid).unwrap_or(255)
    };
    // SAFETY: PID 1 leaves with its child's status; the kernel ends the namespace's other processes.
    unsafe { libc::_exit(code) }
}

/// Never let the runtime's own process be reached through /proc by what runs in the container
/// (CVE-2019-5736). In a user namespace this waits until our own /proc files have been written.
fn set_non_dumpable() {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
}

fn become_root_in_userns() -> Result<()> {
    // SAFETY: plain id syscalls; failure only means 0 is not mapped, which is then reported.
    unsafe {
        if libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0 {
            return Err(Error::msg(format!(
                "become root in the user namespace: {}",
                std::io::Error::last_os_error()
            )));
        }
    }
    Ok(())
}

/// `ip link set lo up` with two ioctls on a datagram socket (no netlink, no external program).
fn bring_up_loopback() -> Result<()> {
    // SAFETY: a socket we close below; ifreq is zero-initialised, named "lo" (NUL-terminated),
    // and passed to SIOCGIFFLAGS/SIOCSIFFLAGS, which read and write only that struct.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(Error::msg(format!(
                "loopback: socket: {}",
                std::io::Error::last_os_error()
            )));
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        req.ifr_name[0] = b'l' as libc::c_char;
        req.ifr_name[1] = b'o' as libc::c_char;
        let mut r = libc::ioctl(sock, libc::SIOCGIFFLAGS as _, &mut req);
        if r == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            r = libc::ioctl(sock, libc::SIOCSIFFLAGS as _, &req);
        }
        let e = std::io::Error::last_os_error();
        libc::close(sock);
        if r != 0 {
            return Err(Error::msg(format!("bring up loopback: {e}")));
        }
    }
    Ok(())
}

fn set_names(spec: &oci_spec::runtime::Spec) -> Result<()> {
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).with_ctx(|| format!("sethostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|h| !h.is_empty()) {
        // SAFETY: pointer and length of a valid buffer.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
            return Err(Error::msg(format!(
                "setdomainname {d:?}: {}",
                std::io::Error::last_os_error()
            )));
        }
    }
    Ok(())
}

fn join_session_keyring(id: &str) {
    let name = std::ffi::CString::new(format!("_ses.{id}")).unwrap_or_default();
    // SAFETY: keyctl(KEYCTL_JOIN_SESSION_KEYRING, name); failure (no keyrings) is harmless.
    unsafe { libc::syscall(libc::SYS_keyctl, 1, name.as_ptr()) };
}

fn set_personality(spec: &oci_spec::runtime::Spec) -> Result<()> {
    use oci_spec::runtime::LinuxPersonalityDomain;
    let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) else {
        return Ok(());
    };
    let persona = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    // SAFETY: personality takes an integer.
    if unsafe { libc::personality(persona) } < 0 {
        return Err(Error::msg(format!(
            "personality: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}
