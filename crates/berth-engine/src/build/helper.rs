//! A RUN step, the helper's side: `berth --root R --runroot R __build-step DIR`, a fresh,
//! single-threaded process (the runtime's clone copies only the calling thread, so it must not
//! run in the build's threaded process). In a mount namespace of its own it mounts the step's
//! snapshot and bind sources (gone with it, whatever happens), writes the spec with `run`'s
//! confinement (Docker's capabilities, seccomp, masked paths, no_new_privs), creates and starts
//! the container (its stdio is the helper's: the build's pipes), joins it to the network, waits,
//! kills it if the helper is told to stop (or its build dies), removes it, removes the mount
//! targets the runtime made in the layer, and reports on fd 3.

use super::copy::Mounted;
use super::fsops;
use super::run::{StepJob, StepReport};
use super::BuildNetwork;
use crate::container::Engine;
use crate::error::{EngineError, Result};
use crate::network::Attachment;
use crate::ocispec::namespaces::{Namespaces, Source};
use crate::record::{MountRecord, Record};
use berth_runtime::create::{self, CreateOptions};
use nix::errno::Errno;
use std::io::Write;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

/// The hidden command line's verb.
pub const COMMAND: &str = "__build-step";
/// Where the helper writes its report.
pub const REPORT_FD: i32 = 3;
/// The hostname RUN steps see.
const HOSTNAME: &str = "buildkitsandbox";

/// Runs the helper when `argv` is its command line (`main` asks before parsing anything).
pub fn entry(argv: &[String]) -> Option<i32> {
    if argv.len() != 7 || argv[5] != COMMAND {
        return None;
    }
    Some(main(
        Path::new(&argv[2]),
        Path::new(&argv[4]),
        Path::new(&argv[6]),
    ))
}

fn main(root: &Path, runroot: &Path, dir: &Path) -> i32 {
    berth_runtime::signals::block_all();
    // SAFETY: getppid has no arguments and cannot fail.
    if unsafe { libc::getppid() } == 1 {
        return 1; // the build died before we blocked its death signal
    }
    let report = match run(root, runroot, dir) {
        Ok(r) => r,
        Err(e) => StepReport::Failed {
            kind: e.failure(),
            message: e.to_string(),
        },
    };
    // SAFETY: fd 3 was set up for us by the build (see run.rs) and is ours alone.
    let mut out = unsafe { std::fs::File::from_raw_fd(REPORT_FD) };
    let _ = out.write_all(&serde_json::to_vec(&report).expect("a report serializes"));
    0
}

fn run(root: &Path, runroot: &Path, dir: &Path) -> Result<StepReport> {
    let job_path = dir.join("job.json");
    let job: StepJob = serde_json::from_slice(
        &std::fs::read(&job_path).map_err(|x| EngineError::io(job_path.display(), x))?,
    )
    .map_err(|x| EngineError::msg(format!("{}: {x}", job_path.display())))?;
    let e = Engine::open(root, runroot)?;
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|x| EngineError::io("unshare(CLONE_NEWNS)", x.into()))?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|x| EngineError::io("making / a slave mount", x.into()))?;
    let rootfs = Mounted::new(&e.snapshots.mounts(&job.id)?, &dir.join("rootfs"))?;
    let mut overlays = Vec::new();
    for o in &job.overlays {
        overlays.push(Mounted::new(&o.mount, &o.target)?);
    }
    let (binds, _sources) = bind_sources(&job)?;
    let user = crate::user::resolve(&rootfs.path, &job.user)?;
    berth_sys::root::open_or_create(
        rootfs.root().as_raw_fd(),
        Path::new(&job.cwd),
        berth_sys::root::Leaf::Dir,
    )
    .map_err(|x| EngineError::io(format!("working directory {}", job.cwd), x))?;
    // Rootless: the default network is a namespace pasta connects (ended with the step).
    let rootless = crate::rootless::is_rootless()?;
    let pasta = StopPasta((rootless && job.network == BuildNetwork::Default).then(|| {
        crate::network::usermode::Pasta {
            dir: dir.to_path_buf(),
            netns: dir.join("netns"),
        }
    }));
    if let Some(p) = &pasta.0 {
        p.start(&[], crate::network::usermode::Gateway::Remote)?;
    }
    let forwarder = pasta
        .0
        .as_ref()
        .map(|_| crate::network::usermode::DNS_FORWARDER);
    write_etc(dir, job.network, None, forwarder)?;
    let mut env = job.env.clone();
    if !env.iter().any(|v| v.starts_with("HOME=")) {
        env.push(format!(
            "HOME={}",
            if user.home.is_empty() {
                "/"
            } else {
                &user.home
            }
        ));
    }
    let spec = crate::ocispec::spec(&crate::ocispec::SpecInput {
        opts: &job.options,
        args: job.args.clone(),
        env,
        cwd: job.cwd.clone(),
        user,
        hostname: HOSTNAME.into(),
        container_dir: dir,
        cgroup_path: crate::launch::cgroup_path(&job.id),
        mounts: &binds,
        tmpfs: job.tmpfs.clone(),
        namespaces: Namespaces {
            net: match (&pasta.0, job.network) {
                (Some(p), _) => Source::Join(p.netns.clone()),
                (None, BuildNetwork::Host) => Source::Host,
                (None, _) => Source::New,
            },
            ..Namespaces::default()
        },
    })?;
    let mut spec = spec;
    if rootless {
        crate::launch::rootless_spec(&mut spec, &job.id);
    }
    let stubs: Vec<String> = spec
        .mounts()
        .iter()
        .flatten()
        .filter_map(|m| missing_prefix(rootfs.root(), &m.destination().to_string_lossy()))
        .collect();
    crate::record::write_atomic(
        &dir.join("config.json"),
        &serde_json::to_vec(&spec).expect("a spec serializes"),
    )
    .map_err(|x| EngineError::io(dir.display(), x))?;
    let report = contain(&e, &job, dir, pasta.0.is_some());
    drop(pasta);
    for s in stubs.iter().rev() {
        remove_stub(rootfs.root(), s);
    }
    drop(overlays);
    drop(rootfs);
    report
}

/// Creates, joins, starts and waits for the container; it is removed on every path.
fn contain(e: &Engine, job: &StepJob, dir: &Path, user_mode: bool) -> Result<StepReport> {
    let h = berth_cgroups::Hierarchy::detect().map_err(EngineError::other)?;
    let created = create::create(
        CreateOptions {
            root: e.runtime_root.clone(),
            id: job.id.clone(),
            bundle: dir.to_path_buf(),
            pid_file: None,
            console_socket: None,
            no_pivot: false,
            no_new_keyring: false,
            preserve_fds: 0,
            proxy_terminal: false,
            parent_death_signal: Some(libc::SIGKILL),
        },
        &h,
    )?;
    let pid = created.state.pid;
    let container = Container {
        e,
        id: &job.id,
        network: None,
    };
    let mut container = container;
    if job.network == BuildNetwork::Default && !user_mode {
        let rec = Record {
            id: job.id.clone(),
            name: job.id.clone(),
            ..Record::default()
        };
        let attachment = Attachment {
            network: berth_net::DEFAULT_NETWORK.into(),
            ..Attachment::default()
        };
        let ep = e.attach_one(e.networks()?, &rec, &attachment, pid, "eth0", &[])?;
        container.network = Some(attachment.network);
        write_etc(dir, job.network, Some(&ep), None)?;
    }
    berth_runtime::ops::start_created(&e.runtime_root, created)?;
    let (code, interrupted) = wait(pid);
    drop(container);
    Ok(if interrupted {
        StepReport::Interrupted
    } else {
        StepReport::Exited { code }
    })
}

/// A rootless step's pasta, ended (with its namespace's mount) when dropped.
struct StopPasta(Option<crate::network::usermode::Pasta>);

impl Drop for StopPasta {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            p.stop();
        }
    }
}

/// The step's runtime container and network endpoint, removed when dropped.
struct Container<'a> {
    e: &'a Engine,
    id: &'a str,
    network: Option<String>,
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        if let (Some(n), Ok(nets)) = (&self.network, self.e.networks()) {
            let _ = nets.detach(n, self.id);
        }
        let _ = berth_runtime::ops::delete(&self.e.runtime_root, self.id, true);
    }
}

/// Waits for the container's init; a stop signal kills it. Returns its status and whether it
/// was killed so.
fn wait(pid: i32) -> (i32, bool) {
    let mut interrupted = false;
    loop {
        // SAFETY: zeroed sigset/siginfo are valid; sigwaitinfo fills info.
        let sig = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut set);
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::sigwaitinfo(&set, &mut info)
        };
        match sig {
            libc::SIGCHLD => {
                if let Ok(Some(code)) = berth_runtime::signals::reap(pid) {
                    return (code, interrupted);
                }
            }
            libc::SIGTERM | libc::SIGINT | libc::SIGHUP | libc::SIGQUIT => {
                interrupted = true;
                // SAFETY: killing our own child, the container's init.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            _ => {}
        }
    }
}

/// The binds of the spec: berth's own paths as they are, a path inside a root resolved there by
/// the kernel (symlinks followed only inside that root) and bound by the name it resolved to.
fn bind_sources(job: &StepJob) -> Result<(Vec<MountRecord>, Vec<OwnedFd>)> {
    let mut records = Vec::new();
    let mut held = Vec::new();
    for b in &job.binds {
        let source = match &b.in_root {
            None => b.source.clone(),
            Some(path) => {
                let root = nix::fcntl::open(
                    &b.source,
                    nix::fcntl::OFlag::O_PATH
                        | nix::fcntl::OFlag::O_DIRECTORY
                        | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .map_err(|x| EngineError::io(b.source.display(), x.into()))?;
                let fd = berth_sys::root::open_at(
                    root.as_fd(),
                    path.as_bytes(),
                    nix::fcntl::OFlag::O_PATH,
                    berth_sys::root::Resolve::InRoot,
                )
                .map_err(|x| EngineError::io(format!("mount source {path}"), x))?;
                // The kernel's own name for what it resolved: free of symlinks. (A descriptor
                // cannot be bound directly: its mount belongs to this namespace, not to the
                // container's copy of it.)
                let p = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                    .map_err(|x| EngineError::io(format!("mount source {path}"), x))?;
                held.push(fd);
                p
            }
        };
        records.push(MountRecord {
            kind: "bind".into(),
            name: None,
            source: source.display().to_string(),
            destination: b.destination.clone(),
            rw: b.rw,
            anonymous: false,
        });
    }
    Ok((records, held))
}

/// `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` of the step, in its directory; the
/// resolver is the network's, else pasta's `forwarder` (rootless), else the host's.
fn write_etc(
    dir: &Path,
    network: BuildNetwork,
    ep: Option<&berth_net::Endpoint>,
    forwarder: Option<std::net::Ipv4Addr>,
) -> Result<()> {
    let host_resolv =
        std::fs::read_to_string(crate::network::host_resolv_conf()).unwrap_or_default();
    let dns = berth_net::DnsSettings::default();
    let names = [HOSTNAME.to_string()];
    let (hosts, resolv) = match network {
        BuildNetwork::Host => (
            std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
            host_resolv,
        ),
        _ => {
            let ip: IpAddr = match ep {
                Some(ep) => ep.ip.into(),
                None => IpAddr::from([127, 0, 1, 1]),
            };
            let hosts = berth_net::hosts(Some((ip, &names)), &[], ep.map(|e| e.gateway))
                .map_err(EngineError::other)?;
            let server = ep.and_then(|e| e.dns_server).or(forwarder);
            let resolv = berth_net::resolv_conf(&host_resolv, server, &dns);
            (hosts, resolv)
        }
    };
    for (name, text) in [
        ("hostname", format!("{HOSTNAME}\n")),
        ("hosts", hosts),
        ("resolv.conf", resolv),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|x| EngineError::io(p.display(), x))?;
    }
    Ok(())
}

/// The first component of `dest` missing from the root: the runtime will make it (and what is
/// below it) as a mount target.
fn missing_prefix(root: BorrowedFd<'_>, dest: &str) -> Option<String> {
    let mut walked = String::new();
    for comp in dest.split('/').filter(|c| !c.is_empty()) {
        walked.push('/');
        walked.push_str(comp);
        match berth_sys::root::open_at(
            root,
            walked.as_bytes(),
            nix::fcntl::OFlag::O_PATH,
            berth_sys::root::Resolve::InRoot,
        ) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Some(walked),
            Err(_) => return None,
        }
    }
    None
}

/// Removes a mount target the runtime made, if it is still an empty file or holds only empty
/// directories and files (anything the step wrote there stays).
fn remove_stub(root: BorrowedFd<'_>, path: &str) {
    let (parent, name) = match path.rfind('/') {
        Some(i) => (if i == 0 { "/" } else { &path[..i] }, &path[i + 1..]),
        None => return,
    };
    let Ok(dir) = fsops::open_dir(root, parent) else {
        return;
    };
    let Ok(st) = nix::sys::stat::fstatat(&dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
    else {
        return;
    };
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => {
            if let Ok(d) = fsops::open_dir(root, path) {
                for n in berth_image::tree::names(d.as_fd()).unwrap_or_default() {
                    remove_stub(root, &format!("{path}/{}", n.to_string_lossy()));
                }
            }
            let r = nix::unistd::unlinkat(&dir, name, nix::unistd::UnlinkatFlags::RemoveDir);
            let _ = r.or_else(|e| {
                if e == Errno::ENOTEMPTY {
                    Ok(())
                } else {
                    Err(e)
                }
            });
        }
        libc::S_IFREG if st.st_size == 0 => {
            let _ = nix::unistd::unlinkat(&dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
        _ => {}
    }
}
