//! Rootless berth: an ordinary user's store and runroot, and the user and mount namespaces every
//! command of theirs runs in. The first command makes them (a pause process holds them, its pid
//! in the runroot); every later one joins them, so the overlay mounts one command makes are
//! there for the next. Root in them is the user; ids 1… are the user's subordinate ids from
//! /etc/subuid and /etc/subgid (written by newuidmap/newgidmap). It never runs as the host's root.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use berth_image::snapshot::IdMapping;

#[derive(Debug, thiserror::Error)]
pub enum RootlessError {
    #[error("rootless: {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("rootless: {what}: {source}")]
    Sys {
        what: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("rootless: writing the id maps: {0}")]
    Maps(#[source] berth_runtime::Error),
    /// The runroot is not a directory berth may take (see `storedir`).
    #[error("{0}")]
    Dir(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> RootlessError {
    let what = what.into();
    move |source| RootlessError::Io { what, source }
}

/// Whether this process is rootless berth (in a user namespace, not the host's root).
pub fn is_rootless() -> Result<bool, RootlessError> {
    let initial =
        berth_sys::userns::in_initial_namespace().map_err(io_err("read /proc/self/uid_map"))?;
    Ok(!initial)
}

/// Whether group `gid` is mapped in this process's user namespace (a user without subordinate
/// ids has their own id alone: gid 0). An unreadable map answers no.
pub fn gid_mapped(gid: u32) -> bool {
    let text = std::fs::read_to_string("/proc/self/gid_map").unwrap_or_default();
    text.lines().any(|l| {
        let f: Vec<u64> = l
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        matches!(f[..], [inside, _, count] if (inside..inside + count).contains(&u64::from(gid)))
    })
}

/// On cgroup v2, the cgroup a rootless container's cgroup goes under: the parent of this
/// process's own cgroup, when the user may write it (a delegated subtree, as systemd's
/// Delegate=yes gives: the directory, its cgroup.procs and cgroup.subtree_control theirs).
/// `None` elsewhere (v1, nothing delegated): the container runs without a cgroup, and a limit
/// asked for is an error that says how to get delegation.
pub fn delegated_cgroup_parent() -> Option<String> {
    let Ok(berth_cgroups::Hierarchy::V2 { root }) = berth_cgroups::Hierarchy::detect() else {
        return None;
    };
    let parent = v2_parent(&std::fs::read_to_string("/proc/self/cgroup").ok()?)?;
    let dir = root.join(parent.trim_start_matches('/'));
    let writable = |p: &Path| nix::unistd::access(p, nix::unistd::AccessFlags::W_OK).is_ok();
    let delegated = writable(&dir)
        && writable(&dir.join("cgroup.procs"))
        && writable(&dir.join("cgroup.subtree_control"));
    delegated.then_some(parent)
}

/// The parent of this process's cgroup v2 path (`0::/user/shell` → `/user`); none at the root.
fn v2_parent(proc_self_cgroup: &str) -> Option<String> {
    let own = proc_self_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))?;
    let parent = Path::new(own.trim()).parent()?;
    (parent != Path::new("/")).then(|| parent.display().to_string())
}

/// `$XDG_DATA_HOME/berth`, else `~/.local/share/berth`.
pub fn default_root() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty());
    match xdg {
        Some(d) => Some(PathBuf::from(d).join("berth")),
        None => home().map(|h| h.join(".local/share/berth")),
    }
}

/// `$XDG_RUNTIME_DIR/berth`, else a private `/tmp/berth-run-UID`.
pub fn default_runroot() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d).join("berth"),
        None => PathBuf::from(format!("/tmp/berth-run-{}", nix::unistd::geteuid())),
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::geteuid())
                .ok()
                .flatten()
                .map(|u| u.dir)
        })
}

/// The caller's subordinate range in `file` (by name or uid), if any.
fn subordinate(file: &str, name: &str, id: u32) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.trim().split(':');
        let (who, start, count) = (f.next()?, f.next()?, f.next()?);
        (who == name || who == id.to_string())
            .then(|| Some((start.parse().ok()?, count.parse().ok()?)))
            .flatten()
    })
}

/// The maps of the rootless namespace: root is the user; 1… the subordinate ids, if any.
fn maps(own: u32, sub: Option<(u32, u32)>) -> Vec<IdMapping> {
    let mut v = vec![IdMapping {
        container_id: 0,
        host_id: own,
        size: 1,
    }];
    if let Some((start, count)) = sub {
        v.push(IdMapping {
            container_id: 1,
            host_id: start,
            size: count,
        });
    }
    v
}

/// Joins the user's rootless namespaces (made now if no live pause process holds them). Call
/// it while the process has one thread: setns into a user namespace refuses otherwise.
pub fn enter(runroot: &Path) -> Result<(), RootlessError> {
    use crate::storedir::{check, make_private, Kind};
    check(runroot, Kind::Runroot)
        .and_then(|()| make_private(runroot))
        .map_err(|e| RootlessError::Dir(e.to_string()))?;
    let pidfile = runroot.join("pause.pid");
    if let Some(pid) = live_pause(&pidfile) {
        if join(pid).is_ok() {
            return Ok(());
        }
    }
    let pid = make_pause()?;
    std::fs::write(
        &pidfile,
        format!("{pid} {}\n", berth_sys::process::start_time(pid)),
    )
    .map_err(io_err(format!("{}", pidfile.display())))?;
    join(pid)
}

/// Ends the pause process recorded in `runroot` (if it still runs) and forgets it: the next
/// command makes the namespaces anew, with the maps /etc/subuid and /etc/subgid give then.
/// The caller makes sure no container runs in them.
pub fn stop_pause(runroot: &Path) -> Result<(), RootlessError> {
    let pidfile = runroot.join("pause.pid");
    if let Some(pid) = live_pause(&pidfile) {
        let start = berth_sys::process::start_time(pid);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL)
            .map_err(|source| RootlessError::Sys {
                what: "end the pause process",
                source,
            })?;
        // Not our child (its maker has exited): wait for the kernel to take it.
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while berth_sys::process::alive(pid, start) && std::time::Instant::now() < end {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    match std::fs::remove_file(&pidfile) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(io_err(format!("{}", pidfile.display()))(e))
        }
        _ => Ok(()),
    }
}

/// The pause process recorded in `pidfile`, if it is still that process.
fn live_pause(pidfile: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(pidfile).ok()?;
    let mut f = text.split_whitespace();
    let pid: i32 = f.next()?.parse().ok()?;
    let start: u64 = f.next()?.parse().ok()?;
    (berth_sys::process::start_time(pid) == start && start != 0).then_some(pid)
}

fn join(pid: i32) -> Result<(), RootlessError> {
    use nix::sched::{setns, CloneFlags};
    let open = |ns: &str| {
        std::fs::File::open(format!("/proc/{pid}/ns/{ns}"))
            .map_err(io_err(format!("open /proc/{pid}/ns/{ns}")))
    };
    let (user, mnt) = (open("user")?, open("mnt")?);
    // Joining a mount namespace moves the working directory to its root: relative paths the
    // user gave (`import ./x.tar`, `cp f c:/`) must keep meaning what they meant.
    remember_host_namespaces();
    let cwd_path = std::env::current_dir().map_err(io_err("the working directory"))?;
    let cwd = std::fs::File::open(&cwd_path).map_err(io_err(cwd_path.display().to_string()))?;
    setns(user.as_fd(), CloneFlags::CLONE_NEWUSER).map_err(|source| RootlessError::Sys {
        what: "join the user namespace",
        source,
    })?;
    setns(mnt.as_fd(), CloneFlags::CLONE_NEWNS).map_err(|source| RootlessError::Sys {
        what: "join the mount namespace",
        source,
    })?;
    restore_cwd(&cwd_path, &cwd)
}

/// The inodes of the user's own user and mount namespaces, read before berth joins its pause
/// process's: what "shared with the host" means for a rootless container (`explain`).
static HOST_NAMESPACES: std::sync::OnceLock<[(&'static str, Option<u64>); 2]> =
    std::sync::OnceLock::new();

fn remember_host_namespaces() {
    use std::os::unix::fs::MetadataExt;
    let ino = |ns| {
        std::fs::metadata(format!("/proc/self/ns/{ns}"))
            .ok()
            .map(|m| m.ino())
    };
    HOST_NAMESPACES.get_or_init(|| [("user", ino("user")), ("mnt", ino("mnt"))]);
}

/// The host's inode of namespace `ns` when this rootless process has left it (user, mnt);
/// None where this process still is in the host's.
pub fn host_namespace(ns: &str) -> Option<u64> {
    HOST_NAMESPACES
        .get()?
        .iter()
        .find(|(n, _)| *n == ns)
        .and_then(|(_, ino)| *ino)
}

/// The same directory again: by its path in the joined namespace when that is still it (its
/// mounts then show), else through the descriptor opened before the join.
fn restore_cwd(path: &Path, before: &std::fs::File) -> Result<(), RootlessError> {
    use std::os::unix::fs::MetadataExt;
    let was = before.metadata().map_err(io_err("the working directory"))?;
    let same = std::fs::metadata(path).is_ok_and(|m| m.dev() == was.dev() && m.ino() == was.ino());
    if same && std::env::set_current_dir(path).is_ok() {
        return Ok(());
    }
    nix::unistd::fchdir(before.as_fd()).map_err(|source| RootlessError::Sys {
        what: "return to the working directory",
        source,
    })
}

/// Forks the pause process: it unshares a user and a mount namespace, waits for its maps, and
/// sleeps in a session of its own for as long as it lives.
fn make_pause() -> Result<i32, RootlessError> {
    use nix::unistd::{fork, pipe, ForkResult};
    let sys = |what| move |source| RootlessError::Sys { what, source };
    let (ready_r, ready_w) = pipe().map_err(sys("pipe"))?;
    let (go_r, go_w) = pipe().map_err(sys("pipe"))?;
    // SAFETY: the caller is single-threaded (see `enter`); the child only unshares, talks over
    // the pipes, and pauses.
    match unsafe { fork() }.map_err(sys("fork"))? {
        ForkResult::Child => {
            drop(ready_r);
            drop(go_w);
            let ok = nix::sched::unshare(
                nix::sched::CloneFlags::CLONE_NEWUSER | nix::sched::CloneFlags::CLONE_NEWNS,
            )
            .is_ok();
            let mut ready = std::fs::File::from(ready_w);
            let _ = ready.write_all(&[u8::from(!ok)]);
            drop(ready);
            let mut go = [0u8; 1];
            let mut go_r = std::fs::File::from(go_r);
            if !ok || go_r.read_exact(&mut go).is_err() || go[0] != 0 {
                // SAFETY: leaving the forked child without running the parent's destructors.
                unsafe { libc::_exit(1) };
            }
            // It outlives the command that made it: it must hold none of that command's
            // files (a caller reading our stdout to its end would wait for it forever).
            if let Ok(null) = std::fs::File::options()
                .read(true)
                .write(true)
                .open("/dev/null")
            {
                for fd in 0..3 {
                    // SAFETY: dup2 of an fd we hold onto a standard stream number.
                    unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), fd) };
                }
            }
            // SAFETY: closing every fd above stderr; nothing in this process uses them again.
            unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
            let _ = nix::unistd::setsid();
            // SAFETY: PR_SET_NAME with a NUL-terminated name of at most 16 bytes.
            unsafe { libc::prctl(libc::PR_SET_NAME, c"berth-pause".as_ptr(), 0, 0, 0) };
            let _ = std::env::set_current_dir("/");
            loop {
                nix::unistd::pause();
            }
        }
        ForkResult::Parent { child } => {
            drop(ready_w);
            drop(go_r);
            let pid = child.as_raw();
            let mut b = [1u8; 1];
            let read = std::fs::File::from(ready_r).read_exact(&mut b);
            let mapped = match read {
                Ok(()) if b[0] == 0 => write_maps(pid),
                Ok(()) => Err(RootlessError::Io {
                    what: "unshare a user namespace".into(),
                    source: io::Error::from_raw_os_error(libc::EPERM),
                }),
                Err(e) => Err(io_err("the pause process")(e)),
            };
            let verdict = u8::from(mapped.is_err());
            let _ = std::fs::File::from(go_w).write_all(&[verdict]);
            if let Err(e) = mapped {
                let _ = nix::sys::wait::waitpid(child, None);
                return Err(e);
            }
            Ok(pid)
        }
    }
}

fn write_maps(pid: i32) -> Result<(), RootlessError> {
    let (uid, gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let name = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_default();
    let group = nix::unistd::Group::from_gid(nix::unistd::getegid())
        .ok()
        .flatten()
        .map(|g| g.name)
        .unwrap_or_default();
    let subuid = subordinate("/etc/subuid", &name, uid);
    let subgid =
        subordinate("/etc/subgid", &group, gid).or_else(|| subordinate("/etc/subgid", &name, uid));
    if subuid.is_none() || subgid.is_none() {
        eprintln!(
            "berth: note: no subordinate ids for {name} in /etc/subuid and /etc/subgid: \
             containers get your uid as root and no other id (images whose files belong to \
             other users cannot be unpacked)"
        );
    }
    let to_oci = |v: Vec<IdMapping>| {
        v.into_iter()
            .map(|m| {
                oci_spec::runtime::LinuxIdMappingBuilder::default()
                    .container_id(m.container_id)
                    .host_id(m.host_id)
                    .size(m.size)
                    .build()
                    .map_err(|e| io_err("an id map")(io::Error::other(e)))
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let (uids, gids) = (
        to_oci(maps(uid, subuid.filter(|_| subgid.is_some())))?,
        to_oci(maps(gid, subgid.filter(|_| subuid.is_some())))?,
    );
    berth_runtime::idmap::write_maps(pid, &uids, &gids).map_err(RootlessError::Maps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delegated_parent_is_the_own_cgroups_parent_never_the_root() {
        assert_eq!(
            v2_parent("0::/lane-user/shell\n").as_deref(),
            Some("/lane-user")
        );
        assert_eq!(v2_parent("0::/shell\n"), None);
        assert_eq!(v2_parent("0::/\n"), None);
        assert_eq!(v2_parent("4:memory:/x/y\n"), None, "v1 lines are not v2's");
    }

    #[test]
    fn root_is_the_user_and_the_rest_their_subordinate_ids() {
        assert_eq!(maps(1000, None).len(), 1);
        let m = maps(1000, Some((100000, 65536)));
        assert_eq!(
            (m[0].host_id, m[1].container_id, m[1].host_id, m[1].size),
            (1000, 1, 100000, 65536)
        );
    }
}
