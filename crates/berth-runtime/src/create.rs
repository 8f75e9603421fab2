//! The create path, parent side: validate everything, make the state dir, cgroup and start gate,
//! clone the init process into its namespaces, map ids, put it in its cgroup, run the runtime-side
//! hooks, and record the state. On any failure everything made so far is undone.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxNamespaceType;

use crate::error::{Context, Error, Result};
use crate::init::{self, InitArgs};
use crate::namespaces::{self, Plan};
use crate::rootless::{self, Privilege};
use crate::spec::Bundle;
use crate::state::{self, ContainerState, Status};
use crate::sync::{self, Msg};

pub struct CreateOptions {
    pub root: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// `run` in the foreground: when the process wants a terminal and no console socket is given,
    /// receive the pty master here and hand it back (`Created::master`) for the caller to proxy.
    pub proxy_terminal: bool,
    /// A signal the container's init gets when the process that created it dies (a client whose
    /// container must not outlive it); None: the container lives on.
    pub parent_death_signal: Option<i32>,
}

/// A created container, and the pty master when `CreateOptions::proxy_terminal` applied.
pub struct Created {
    pub state: ContainerState,
    pub master: Option<OwnedFd>,
    /// `exec.fifo`, open read-write: `ops::start_created` opens the start gate through it.
    pub gate: OwnedFd,
}

/// Undoes a half-made container when dropped, unless disarmed.
struct Undo {
    dir: Option<PathBuf>,
    cgroup: Option<berth_cgroups::Cgroup>,
    pid: Option<i32>,
    /// Holds what `create_unified` made before the clone, until the whole cgroup exists.
    unified: Option<berth_cgroups::Cgroup>,
    /// Set when the container shares our mount namespace: its mounts under the rootfs are ours to undo.
    shared_mount_rootfs: Option<PathBuf>,
}

impl Undo {
    /// The container is complete: keep everything.
    fn disarm(&mut self) {
        // Field by field: assigning a whole new Undo would drop (and so run) the old one.
        self.dir = None;
        self.cgroup = None;
        self.pid = None;
        self.unified = None;
        self.shared_mount_rootfs = None;
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            // SAFETY: signalling and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.kill_all(libc::SIGKILL);
            let _ = cg.destroy();
        }
        if let (Some(u), None) = (&self.unified, &self.cgroup) {
            let _ = u.destroy_unified();
        }
        if let Some(r) = &self.shared_mount_rootfs {
            let _ = crate::rootfs::unmount_under(r);
        }
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

pub fn default_cgroup_path(id: &str) -> String {
    format!("/{id}")
}

/// Creates the container; returns its state with the init waiting at the start gate.
pub fn create(opts: CreateOptions, hierarchy: &berth_cgroups::Hierarchy) -> Result<Created> {
    crate::id::validate(&opts.id)?;
    let bundle = Bundle::load(&opts.bundle)?;
    crate::trace("bundle loaded");
    let spec = &bundle.spec;
    let terminal =
        crate::spec::check_terminal(spec, opts.console_socket.is_some(), opts.proxy_terminal)?;
    let plan = Plan::from_spec(spec);
    crate::spec::check_for_host(spec, plan.has_mount_ns(), hierarchy.is_v2())?;
    let privilege = Privilege::detect()?;
    let dir = make_state_dir(&opts)?;
    let mut undo = Undo {
        dir: Some(dir.clone()),
        cgroup: None,
        pid: None,
        shared_mount_rootfs: (!plan.has_mount_ns()).then(|| bundle.rootfs.clone()),
        unified: None,
    };
    let cgroup = container_cgroup(hierarchy, spec, &opts.id, &privilege)?;
    // Without a user namespace or a joined mount namespace, the child sets up its mounts while we
    // create the cgroup (two cores, half the wait); it joins the cgroup when told. Rootless, the
    // cgroup may not be ours to make: that is known before the clone.
    let early_clone = !hierarchy.is_v2()
        && !privilege.is_rootless()
        && !plan.new_user
        && !plan.joins(LinuxNamespaceType::User)
        && !plan.joins(LinuxNamespaceType::Mount);
    let cgroup = if early_clone {
        Some(cgroup)
    } else {
        make_cgroup(cgroup, spec, &privilege, &mut undo)?
    };
    let fifo_fd = make_start_gate(&dir)?;
    let (console, proxy_end) = connect_console(&opts, terminal)?;
    let pid_ns = join_pid_namespace(&plan)?;
    // Cloning a mount takes CAP_SYS_ADMIN over our mount namespace: an ordinary user's binds
    // are made by path in the child.
    let bind_sources =
        if (plan.new_user || plan.joins(LinuxNamespaceType::User)) && privilege.euid == 0 {
            crate::rootfs::open_bind_sources(spec, &bundle.dir)?
        } else {
            Vec::new()
        };
    let (parent, child) = sync::pair()?;
    let cgroup_join = match &cgroup {
        Some(cg) if early_clone => crate::cgjoin::SelfJoin::deferred(cg),
        Some(cg) => crate::cgjoin::SelfJoin::open(cg)?,
        None => crate::cgjoin::SelfJoin::none(),
    };
    let args = InitArgs {
        cgroup_join: &cgroup_join,
        bundle: &bundle,
        plan: &plan,
        cgroup: cgroup.as_ref(),
        seccomp: bundle.seccomp.as_ref(),
        chan: &child,
        fifo: &fifo_fd,
        console: console.as_ref(),
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        preserve_fds: opts.preserve_fds,
        id: &opts.id,
        early_clone,
        bind_sources: &bind_sources,
        rootless: privilege.is_rootless(),
    };
    // v2 (cgroup made above) or a hybrid host's unified directory: clone straight into it.
    let into = match &cgroup {
        Some(cg) => crate::cgjoin::IntoCgroup::open(cg, early_clone)?,
        None => None,
    };
    if early_clone {
        undo.unified = cgroup.clone();
    }
    // On the early path the clone makes only the pid namespace (the one unshare cannot give the
    // caller itself); the child unshares the others on the second core while we make the cgroup
    // (a new network namespace alone costs a few hundred microseconds).
    let clone_flags = if early_clone {
        plan.clone_flags & libc::CLONE_NEWPID
    } else {
        plan.clone_flags
    };
    crate::debug("nsexec container setup: cloning the container's init");
    let pid = clone_init(clone_flags, into.as_ref().map(|i| &i.fd), || {
        parent.close_in_child();
        if let Some(sig) = opts.parent_death_signal {
            // SAFETY: a process-attribute prctl in the fresh child. Should the parent already be
            // gone, the closed sync channel ends the set-up instead.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) };
        }
        init::run(&args)
    });
    drop(pid_ns);
    let pid = pid?;
    undo.pid = Some(pid);
    drop(child);
    drop(console);
    crate::trace("cloned");
    // make_cgroup records which directories it made (and so which `delete` removes): the state
    // keeps the cgroup it returns, never the description made before.
    let cgroup = match cgroup {
        Some(cg) if early_clone => make_cgroup(cg, spec, &privilege, &mut undo)?,
        other => other,
    };
    if plan.new_user {
        crate::idmap::write(pid, spec, &privilege)?;
        if privilege.is_host_root() {
            crate::process::write_oom_score_adj(pid, spec.process().as_ref())?;
        }
    }
    if let (false, None, Some(cg)) = (cgroup_join.by_child(), &into, &cgroup) {
        cg.add_process(pid)?;
    }
    let pass_tasks = early_clone && cgroup_join.by_child();
    send_go(&parent, cgroup.as_ref().filter(|_| pass_tasks))?;
    crate::trace("go sent");

    let mut st = ContainerState {
        id: opts.id.clone(),
        pid,
        pid_start: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: state::rfc3339_now(),
        owner: String::new(),
        cgroup: cgroup.clone(),
        config: spec.clone(),
    };
    // Written beside state.json while the init finishes its set-up (we would only wait there);
    // renamed into place once it is ready.
    st.pid_start = state::proc_stat(pid).map(|s| s.1).unwrap_or(0);
    st.stage(&opts.root)?;
    wait_ready(&parent, &st, pid)?;
    // Sent by the init before `Ready`, so this never waits.
    let master = proxy_end.as_ref().map(receive_master).transpose()?;
    st.commit(&opts.root)?;
    crate::trace("state saved");
    if let Some(pf) = &opts.pid_file {
        write_pid_file(pf, pid)?;
    }
    undo.disarm();
    Ok(Created {
        state: st,
        master,
        gate: fifo_fd,
    })
}

/// `<root>/<id>`, made exclusively: an existing id is an error.
fn make_state_dir(opts: &CreateOptions) -> Result<PathBuf> {
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(&opts.root)
        .with_ctx(|| format!("state root {}", opts.root.display()))?;
    let dir = state::container_dir(&opts.root, &opts.id);
    match std::fs::create_dir(&dir) {
        Ok(()) => Ok(dir),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            crate::bail!("container {:?} already exists", opts.id)
        }
        Err(e) => Err(e).with_ctx(|| dir.display().to_string()),
    }
}

/// The spec's `linux.cgroupsPath`, or runc's default for the id.
fn cgroup_path(spec: &oci_spec::runtime::Spec, id: &str) -> String {
    spec.linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| default_cgroup_path(id))
}

/// `exec.fifo`, the start gate the init blocks on, held open read-write.
fn make_start_gate(dir: &Path) -> Result<OwnedFd> {
    let fifo = dir.join(state::EXEC_FIFO);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .with_ctx(|| format!("mkfifo {}", fifo.display()))?;
    open_fifo(&fifo)
}

/// Where the init sends the pty master: the console socket, or (proxying the terminal) our end
/// of a socketpair, returned second.
fn connect_console(
    opts: &CreateOptions,
    terminal: crate::spec::Terminal,
) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    use crate::spec::Terminal;
    match (terminal, &opts.console_socket) {
        (Terminal::Socket, Some(p)) => {
            let sock = crate::console::connect_socket(p).map_err(|e| Error::msg(e.to_string()))?;
            Ok((Some(sock), None))
        }
        (Terminal::Proxied, _) => {
            let (theirs, ours) = crate::ttyproxy::socketpair()?;
            Ok((Some(theirs), Some(ours)))
        }
        _ => Ok((None, None)),
    }
}

/// A pid namespace joined by path applies to our children: joined before the clone. The guard
/// puts our children's pid namespace back when dropped: a caller that goes on (the engine runs
/// create in-process) could otherwise start no thread (CLONE_THREAD across pid namespaces is
/// refused) and its later children would land in the container's namespace.
fn join_pid_namespace(plan: &Plan) -> Result<Option<PidNsGuard>> {
    let mut guard = None;
    for (t, p) in &plan.join {
        if *t == LinuxNamespaceType::Pid {
            let own = namespaces::open_ns(std::path::Path::new("/proc/self/ns/pid"))?;
            namespaces::setns(&namespaces::open_ns(p)?, *t, &p.display().to_string())?;
            guard = Some(PidNsGuard(own));
        }
    }
    Ok(guard)
}

/// Our own pid namespace, set back as our children's when dropped.
struct PidNsGuard(OwnedFd);

impl Drop for PidNsGuard {
    fn drop(&mut self) {
        let _ = namespaces::setns(&self.0, LinuxNamespaceType::Pid, "of berth itself");
    }
}

/// Tells the init to go on (with the `tasks` files of `pass_tasks`' cgroup when it joins them
/// itself). The init may have failed already (it sets up its mounts while we make the cgroup):
/// its own message says why, better than the broken pipe our `Go` would meet.
fn send_go(parent: &sync::Channel, pass_tasks: Option<&berth_cgroups::Cgroup>) -> Result<()> {
    if let Some(Msg::Failed(why)) = parent.try_recv() {
        return Err(why.into_error());
    }
    let opened = pass_tasks.map(crate::cgjoin::SelfJoin::open).transpose()?;
    let sent = parent.send(&Msg::Go).and_then(|()| match &opened {
        Some(o) => o.pass(parent),
        None => Ok(()),
    });
    sent.map_err(|e| match parent.try_recv() {
        Some(Msg::Failed(why)) => why.into_error(),
        _ => e,
    })
}

/// Serves the init until it is ready at the start gate: the runtime-side hooks when it asks, a
/// seccomp listener to hand over; its failure becomes ours.
fn wait_ready(parent: &sync::Channel, st: &ContainerState, pid: i32) -> Result<()> {
    let spec = &st.config;
    loop {
        match parent.recv()? {
            Some(Msg::RunHooks) => {
                let json =
                    serde_json::to_vec(&st.to_oci_json(Status::Creating)).ctx("state json")?;
                if let Some(h) = spec.hooks() {
                    run_hooks("prestart", h.prestart(), &json)?;
                    run_hooks("createRuntime", h.create_runtime(), &json)?;
                }
                parent.send(&Msg::HooksDone)?;
            }
            Some(Msg::Ready) => return Ok(()),
            Some(Msg::SeccompFd) => {
                crate::notify::parent_forward(parent, spec, pid, st.to_oci_json(Status::Creating))?;
            }
            Some(Msg::Failed(e)) => return Err(e.into_error()),
            Some(m) => crate::bail!("container init: unexpected message {m:?}"),
            None => crate::bail!("container init exited during set-up"),
        }
    }
}

/// The pty master the init sent to our end of the proxy socketpair.
fn receive_master(sock: &OwnedFd) -> Result<OwnedFd> {
    crate::console::recv_master(sock)
        .map(|(m, _)| m)
        .map_err(|e| Error::msg(e.to_string()))
}

/// The container's cgroup, described (nothing is made yet). Rootless on a hybrid host, the
/// cgroup2 directory that only tracks processes is root's and is left out.
fn container_cgroup(
    hierarchy: &berth_cgroups::Hierarchy,
    spec: &oci_spec::runtime::Spec,
    id: &str,
    privilege: &Privilege,
) -> Result<berth_cgroups::Cgroup> {
    let path = cgroup_path(spec, id);
    if privilege.is_rootless() {
        Ok(berth_cgroups::Cgroup::new(
            &hierarchy.without_unified(),
            &path,
        )?)
    } else {
        Ok(berth_cgroups::Cgroup::new(hierarchy, &path)?)
    }
}

/// Makes the cgroup and applies the spec's resources. Rootless, a cgroup the user may not make
/// is no cgroup (None) unless the spec names its path or asks for a limit, as with runc: then
/// the error says which limit could not be had.
fn make_cgroup(
    cgroup: berth_cgroups::Cgroup,
    spec: &oci_spec::runtime::Spec,
    privilege: &Privilege,
    undo: &mut Undo,
) -> Result<Option<berth_cgroups::Cgroup>> {
    if let Err(e) = cgroup.create() {
        if !privilege.is_rootless() || !rootless::is_permission_error(&e) {
            return Err(e.into());
        }
        // Whatever part of it was made is removed before we go on without it.
        cgroup.destroy()?;
        let explicit = spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref());
        if explicit.is_some() {
            return Err(rootless::no_permission_for_cgroup_path(e));
        }
        let resources = rootless::effective_resources(spec, privilege);
        if let Some(controller) = rootless::requested_limit(&resources) {
            return Err(rootless::no_cgroup_for_limit(controller, e));
        }
        crate::trace("rootless: no cgroup");
        return Ok(None);
    }
    // A frozen cgroup (even one controller's, left frozen by someone) would freeze the init as it
    // joins: refuse, like runc.
    if cgroup.is_frozen().unwrap_or(false) {
        if !cgroup.preexisted() {
            undo.cgroup = Some(cgroup.clone());
        }
        crate::bail!(
            "container's cgroup unexpectedly frozen: thaw it or choose another cgroupsPath"
        );
    }
    if cgroup.preexisted() {
        // Not ours to remove on failure.
        if cgroup.procs().is_ok_and(|p| !p.is_empty()) {
            crate::warn("berth-runtime: warning: container's cgroup is not empty: its processes will share the container's limits");
        }
    } else {
        undo.cgroup = Some(cgroup.clone());
    }
    crate::trace("cgroup created");
    cgroup.apply(&rootless::effective_resources(spec, privilege))?;
    crate::trace("cgroup applied");
    Ok(Some(cgroup))
}

pub fn run_hooks(
    kind: &str,
    hooks: &Option<Vec<oci_spec::runtime::Hook>>,
    state: &[u8],
) -> Result<()> {
    match hooks {
        Some(h) if !h.is_empty() => {
            crate::hooks::run_hooks(kind, h, state).map_err(|e| Error::msg(e.to_string()))
        }
        _ => Ok(()),
    }
}

/// O_RDWR never blocks on a fifo: the init holds it as a reader and blocks in read() until `start` writes.
fn open_fifo(path: &Path) -> Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .with_ctx(|| format!("open {}", path.display()))?;
    Ok(OwnedFd::from(f))
}

pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ctx("cwd")?.join(path)
    };
    let tmp = path.with_extension("berth-tmp");
    std::fs::write(&tmp, pid.to_string()).with_ctx(|| format!("pid file {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_ctx(|| format!("pid file {}", path.display()))
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone without a new stack: fork semantics plus namespace flags; with `cgroup`, clone3 places the
/// child straight into that cgroup2 directory (CLONE_INTO_CGROUP). The child runs `f` and exits.
pub fn clone_init<F: FnOnce() -> i32>(
    flags: libc::c_int,
    cgroup: Option<&OwnedFd>,
    f: F,
) -> Result<i32> {
    let r = match cgroup {
        Some(cg) => {
            let args = CloneArgs {
                flags: flags as u32 as u64 | CLONE_INTO_CGROUP,
                exit_signal: libc::SIGCHLD as u64,
                cgroup: cg.as_raw_fd() as u64,
                ..Default::default()
            };
            // SAFETY: as below; clone3 with stack 0 also shares nothing and copies our stack.
            unsafe {
                libc::syscall(
                    libc::SYS_clone3,
                    &args as *const CloneArgs,
                    std::mem::size_of::<CloneArgs>(),
                )
            }
        }
        // SAFETY: without CLONE_VM the child gets a copy-on-write copy of our address space and stack,
        // exactly like fork(2). The runtime is single-threaded here, so no lock can be held by
        // another thread.
        None => unsafe {
            libc::syscall(
                libc::SYS_clone,
                (flags | libc::SIGCHLD) as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        },
    };
    if r < 0 {
        return Err(Error::msg(format!(
            "clone (namespaces {flags:#x}): {}",
            std::io::Error::last_os_error()
        )));
    }
    if r == 0 {
        let code = f();
        // SAFETY: leave the child without running the parent's atexit handlers or destructors.
        unsafe { libc::_exit(code) };
    }
    Ok(r as i32)
}

pub fn fd_raw(fd: &OwnedFd) -> i32 {
    fd.as_raw_fd()
}
