//! `exec`: a new process in a running container. The runtime joins the container's pid namespace
//! (for its children), clones a child that joins the other namespaces and the cgroup, applies the
//! process's identity and limits, and execs. The host binary is never reachable: the child is
//! non-dumpable and `exec` runs from a sealed memfd copy of the runtime (CVE-2019-5736).

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespaceType, Process};

use crate::error::{Context, Error, Result};
use crate::namespaces;
use crate::process;
use crate::state::{ContainerState, Status};
use crate::sync::{self, Msg};

pub struct ExecOptions {
    pub root: PathBuf,
    pub id: String,
    pub process: Process,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// `--cgroup [CONTROLLER:]PATH`: join these sub-cgroups of the container's cgroup.
    pub sub_cgroups: Vec<String>,
    /// With a proxied terminal: the keys that leave the process running (`exec
    /// --detach-keys`); None proxies until it exits.
    pub detach_keys: Option<berth_sys::keys::DetachKeys>,
}

const ORDER: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::User,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::Mount,
];

/// The inode of `/proc/PID/ns/NAME`; None only where this kernel has no such namespace (we have
/// none either). Any other failure is an error: a namespace we cannot see must never be taken
/// for one we share.
fn ns_inode(pid: &str, name: &str) -> Result<Option<u64>> {
    use std::os::unix::fs::MetadataExt;
    let path = format!("/proc/{pid}/ns/{name}");
    match std::fs::metadata(&path) {
        Ok(m) => Ok(Some(m.ino())),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && !std::path::Path::new(&format!("/proc/self/ns/{name}")).exists() =>
        {
            Ok(None)
        }
        Err(e) => Err(e).with_ctx(|| format!("stat {path}")),
    }
}

/// Runs the process; returns its exit status (or 0 when detached).
pub fn exec(opts: ExecOptions) -> Result<i32> {
    let st = ContainerState::load(&opts.root, &opts.id)?;
    match st.status(&opts.root) {
        Status::Running | Status::Created => {}
        Status::Paused if opts.ignore_paused => {}
        Status::Paused => {
            crate::bail!(
                "cannot exec in a paused container {:?} (use --ignore-paused)",
                opts.id
            )
        }
        s => crate::bail!("container {:?} is {s}: cannot exec", opts.id),
    }
    let p = &opts.process;
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        crate::bail!("exec: no command given");
    }
    let terminal = p.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() && opts.detach {
        crate::bail!("exec -t -d needs --console-socket");
    }
    // A terminal in the foreground without a console socket: we receive the master and proxy it.
    let proxy = if terminal && opts.console_socket.is_none() {
        Some(crate::ttyproxy::socketpair()?)
    } else {
        None
    };
    let seccomp = match st
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
    {
        Some(s) => Some(berth_seccomp::compile(s)?),
        None => None,
    };
    let init = st.pid.to_string();
    let mut joins: Vec<(LinuxNamespaceType, OwnedFd)> = Vec::new();
    for t in ORDER {
        let name = namespaces::proc_name(t);
        let theirs = ns_inode(&init, name)?;
        if theirs.is_some() && theirs != ns_inode("self", name)? {
            joins.push((
                t,
                namespaces::open_ns(std::path::Path::new(&format!("/proc/{init}/ns/{name}")))?,
            ));
        }
    }
    let userns = joins.iter().any(|(t, _)| *t == LinuxNamespaceType::User);
    // An ordinary user may join the container's pid namespace only from inside its user
    // namespace (setns needs CAP_SYS_ADMIN in the caller's own one too): join that first, here,
    // as runc's nsexec does; the child, cloned inside it, then skips it.
    if userns && !crate::rootless::Privilege::detect()?.is_host_root() {
        if let Some((t, fd)) = joins.iter().find(|(t, _)| *t == LinuxNamespaceType::User) {
            namespaces::setns(fd, *t, "of the container")?;
        }
        joins.retain(|(t, _)| *t != LinuxNamespaceType::User);
    }
    if let Some((t, fd)) = joins.iter().find(|(t, _)| *t == LinuxNamespaceType::Pid) {
        namespaces::setns(fd, *t, "of the container")?;
    }
    let console = match (&opts.console_socket, &proxy) {
        (_, Some((theirs, _))) => Some(theirs.try_clone().ctx("console socket")?),
        (Some(path), None) if terminal => {
            Some(crate::console::connect_socket(path).map_err(|e| Error::msg(e.to_string()))?)
        }
        _ => None,
    };
    let (parent, child) = sync::pair()?;
    let (cgroup_join, into) = match &st.cgroup {
        Some(cg) => {
            let sub = crate::cgjoin::SubCgroups::parse(&opts.sub_cgroups, cg)?;
            (
                Some(crate::cgjoin::SelfJoin::open_sub(cg, &sub)?),
                crate::cgjoin::IntoCgroup::open_sub(cg, false, &sub)?,
            )
        }
        None => (None, None),
    };
    if !opts.detach {
        crate::signals::block_all();
    }
    crate::debug("nsexec container setup: cloning the process that joins the container");
    let pid = crate::create::clone_init(0, into.as_ref().map(|i| &i.fd), || {
        parent.close_in_child();
        let c = ExecChild {
            joins: &joins,
            chan: &child,
            cgroup_join: cgroup_join.as_ref(),
            process: p,
            container_process: st.config.process().as_ref(),
            seccomp: seccomp.as_ref(),
            console: console.as_ref(),
            preserve_fds: opts.preserve_fds,
        };
        let e = match child_setup(&c) {
            Ok(e) => e,
            Err(e) => e,
        };
        let _ = child.send(&crate::sync::Failure::of(&e));
        127
    })?;
    drop(child);
    // Cloned into its cgroup2 directory already (v2, or a hybrid host's unified one), or joined
    // by the child itself (v1): otherwise the parent moves it.
    if let (Some(cg), false, None) = (
        &st.cgroup,
        cgroup_join.as_ref().is_some_and(|j| j.by_child()),
        &into,
    ) {
        if let Err(e) = cg.add_process(pid) {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            return Err(e.into());
        }
    }
    if userns && crate::rootless::Privilege::detect()?.is_host_root() {
        crate::process::write_oom_score_adj(pid, st.config.process().as_ref())?;
    }
    parent.send(&Msg::Go)?;
    let mut msg = parent.recv()?;
    if msg == Some(Msg::SeccompFd) {
        crate::notify::parent_forward(
            &parent,
            &st.config,
            pid,
            st.to_oci_json(st.status(&opts.root)),
        )?;
        msg = parent.recv()?;
    }
    match msg {
        None => {}
        Some(Msg::Failed(e)) => {
            // SAFETY: reaping our own child.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
            return Err(e.into_error());
        }
        Some(m) => crate::bail!("exec: unexpected message {m:?}"),
    }
    if let Some(pf) = &opts.pid_file {
        crate::create::write_pid_file(pf, pid)?;
    }
    if opts.detach {
        return Ok(0);
    }
    if let Some((_, ours)) = proxy {
        let (master, _) =
            crate::console::recv_master(&ours).map_err(|e| Error::msg(e.to_string()))?;
        return match crate::ttyproxy::proxy_detachable(master, pid, opts.detach_keys.as_ref())? {
            crate::ttyproxy::Proxied::Exited(code) => Ok(code),
            crate::ttyproxy::Proxied::Detached(master) => {
                keep_terminal_open(master)?;
                Ok(0)
            }
        };
    }
    crate::signals::forward_until_exit(pid)
}

/// After a detach: a keeper in a session of its own holds the process's terminal open (reading
/// and dropping its output) until the process closes it, so the process is never hung up on.
/// The process itself is left to be reaped by whoever inherits it.
fn keep_terminal_open(master: OwnedFd) -> Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: fork in a process that runs one thread here (the exec path); the child only makes
    // async-signal-safe calls (setsid, open, dup2, read, _exit).
    match unsafe { libc::fork() } {
        -1 => Err(Error::msg(format!(
            "fork keeper: {}",
            std::io::Error::last_os_error()
        ))),
        0 => {
            // SAFETY: in the child, on fds it owns; it never returns into the caller's code.
            unsafe {
                libc::setsid();
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                for fd in 0..3 {
                    libc::dup2(null, fd);
                }
                let mut buf = [0u8; 4096];
                while libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) > 0 {}
                libc::_exit(0)
            }
        }
        _ => Ok(()),
    }
}

/// In the child: join namespaces, wait for the cgroup, become the process, exec. Returns only on error.
struct ExecChild<'a> {
    joins: &'a [(LinuxNamespaceType, OwnedFd)],
    chan: &'a sync::Channel,
    cgroup_join: Option<&'a crate::cgjoin::SelfJoin>,
    process: &'a Process,
    /// The container's own process, whose oom_score_adj every exec'd process takes (as with
    /// runc: a kubelet probe counts against the container, not the shim that started it).
    container_process: Option<&'a Process>,
    seccomp: Option<&'a berth_seccomp::Filter>,
    console: Option<&'a OwnedFd>,
    preserve_fds: u32,
}

fn child_setup(c: &ExecChild) -> Result<Error> {
    crate::debug("child process in init(): joining the container");
    let ExecChild {
        joins,
        chan,
        cgroup_join,
        process: p,
        container_process,
        seccomp,
        console,
        preserve_fds,
    } = *c;
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    chan.expect(Msg::Go)?;
    if let Some(j) = cgroup_join {
        j.join(chan)?;
    }
    for (t, fd) in joins.iter().filter(|(t, _)| *t != LinuxNamespaceType::Pid) {
        namespaces::setns(fd, *t, "of the container")?;
    }
    if let Some(sock) = console {
        process::attach_terminal(sock, p, false)?;
    }
    if let Some(cp) = container_process {
        process::set_oom_score_adj(cp)?;
    }
    process::set_rlimits(p)?;
    process::set_umask(p);
    // Denied in any user namespace mapped without newgidmap (rootless berth's single-id
    // one too, which the spec does not name): the init then leaves its groups as they are.
    let setgroups = std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() == "allow")
        .unwrap_or(true);
    process::finalize(p, seccomp, setgroups, &mut |fd| {
        crate::notify::child_send(chan, fd)
    })?;
    let args = p.args().clone().unwrap_or_default();
    let env = p.env().clone().unwrap_or_default();
    let path = process::lookup(&args[0], &env)?;
    process::cloexec_from(3 + preserve_fds);
    process::reset_signals();
    crate::debug(&format!("setns_init: about to exec {}", path.display()));
    Ok(process::exec(&path, &args, &env))
}

/// The seals on berth's memfd copy of itself: nothing may change, shrink or grow it, and the
/// seals themselves are final.
const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Set to `1`, lets `exec` go on without the sealed copy when one cannot be made (the host binary
/// is then exposed to the container as in CVE-2019-5736): an explicit, documented opt-out.
pub const UNSEALED_OPT_OUT: &str = "BERTH_EXEC_UNSEALED";

/// Whether this process runs from a memfd carrying exactly our seals (checked on the binary
/// itself, not on anything the environment says).
fn running_sealed() -> bool {
    let Ok(exe) = std::fs::File::open("/proc/self/exe") else {
        return false;
    };
    // SAFETY: F_GET_SEALS on an fd we own; it only reads the seals.
    let seals = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&exe), libc::F_GET_SEALS) };
    seals == SEALS
}

/// Re-executes the current program from a sealed memfd copy of itself, so no process in a
/// container can ever open the host binary through /proc/PID/exe (CVE-2019-5736). Returns `Ok`
/// in the sealed copy. Fails closed: if the copy cannot be made, sealed and executed, this is an
/// error and the caller must not join the container, unless `BERTH_EXEC_UNSEALED=1` opts out.
pub fn reexec_from_sealed_memfd() -> Result<()> {
    use crate::error::IntoError;
    if running_sealed() {
        return Ok(());
    }
    match sealed_exec() {
        Err(e) if std::env::var_os(UNSEALED_OPT_OUT).is_some_and(|v| v == "1") => {
            crate::warn(&format!(
                "warning: {e}; going on unprotected ({UNSEALED_OPT_OUT}=1)"
            ));
            Ok(())
        }
        Err(e) => Err(e.with_context(format!(
            "refusing to exec into a container without the sealed copy of the runtime \
             (CVE-2019-5736; {UNSEALED_OPT_OUT}=1 overrides)"
        ))),
        Ok(never) => match never {},
    }
}

/// Copies /proc/self/exe into a memfd, seals it and `fexecve`s it; returns only on failure.
fn sealed_exec() -> Result<std::convert::Infallible> {
    use crate::error::IntoError;
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: memfd_create with a valid C string name.
    let fd = unsafe {
        libc::memfd_create(
            c"berth-runtime".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(Error::last_os("memfd_create"));
    }
    // SAFETY: fd is fresh and ours.
    let mut mem = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut exe = std::fs::File::open("/proc/self/exe").ctx("open /proc/self/exe")?;
    std::io::copy(&mut exe, &mut mem).ctx("copy the runtime binary into the memfd")?;
    // SAFETY: fcntl on our own fd.
    if unsafe { libc::fcntl(mem.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } != 0 {
        return Err(Error::last_os("sealing the memfd (F_ADD_SEALS)"));
    }
    let argv = process::CStrings::new(
        "argument",
        std::env::args_os().map(|a| a.into_encoded_bytes()),
    )?;
    let envp = process::CStrings::new(
        "environment entry",
        std::env::vars_os().map(|(k, v)| {
            let mut b = k.into_encoded_bytes();
            b.push(b'=');
            b.extend(v.into_encoded_bytes());
            b
        }),
    )?;
    // SAFETY: valid fd and null-terminated arrays of C strings.
    unsafe { libc::fexecve(mem.as_raw_fd(), argv.as_ptr(), envp.as_ptr()) };
    Err(std::io::Error::last_os_error().with_context("fexecve of the sealed copy".into()))
}
