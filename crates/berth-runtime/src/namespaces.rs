//! Linux namespaces from the spec: which to create with clone, which to join by path (setns),
//! and the time offsets of a new time namespace (id maps are `idmap.rs`'s).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Context, Error, Result};

pub fn clone_flag(t: LinuxNamespaceType) -> libc::c_int {
    match t {
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Time => 0x80, // CLONE_NEWTIME
    }
}

pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Time => "time",
    }
}

/// The namespace plan of one container.
#[derive(Debug, Default)]
pub struct Plan {
    /// Namespaces created by clone (pid, net, mnt, ipc, uts, user).
    pub clone_flags: libc::c_int,
    /// Created by unshare in the child after it joined its cgroup (cgroup) or before exec (time).
    pub unshare_cgroup: bool,
    pub unshare_time: bool,
    /// Joined by path: (type, path).
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
    pub new_user: bool,
    /// With a user namespace joined by path: the new namespaces the child unshares after its setns.
    pub unshare_after_userns: libc::c_int,
}

impl Plan {
    pub fn from_spec(spec: &Spec) -> Plan {
        let mut p = Plan::default();
        for ns in spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .into_iter()
            .flatten()
        {
            match (ns.typ(), ns.path()) {
                (t, Some(path)) => p.join.push((t, path.clone())),
                (LinuxNamespaceType::Cgroup, None) => p.unshare_cgroup = true,
                (LinuxNamespaceType::Time, None) => p.unshare_time = true,
                (t, None) => {
                    if t == LinuxNamespaceType::User {
                        p.new_user = true;
                    }
                    p.clone_flags |= clone_flag(t)
                }
            }
        }
        // Joining a user namespace by path: the other new namespaces must be owned by it, so they are
        // unshared by the child after its setns (except pid, which only applies to children anyway).
        if p.joins(LinuxNamespaceType::User) {
            p.unshare_after_userns = p.clone_flags & !libc::CLONE_NEWPID;
            p.clone_flags &= libc::CLONE_NEWPID;
        }
        p
    }

    /// Does the container get a mount namespace of its own (new or joined)? Without one it shares
    /// the runtime's: its mounts are made under the rootfs in the host's table and it is chrooted.
    pub fn has_mount_ns(&self) -> bool {
        self.clone_flags & libc::CLONE_NEWNS != 0
            || self.joins(LinuxNamespaceType::Mount)
            || self.unshare_after_userns & libc::CLONE_NEWNS != 0
    }

    pub fn joins(&self, t: LinuxNamespaceType) -> bool {
        self.join.iter().any(|(x, _)| *x == t)
    }
}

pub fn open_ns(path: &std::path::Path) -> Result<OwnedFd> {
    let f = std::fs::File::open(path).with_ctx(|| format!("namespace {}", path.display()))?;
    Ok(OwnedFd::from(f))
}

pub fn setns(fd: &OwnedFd, t: LinuxNamespaceType, what: &str) -> Result<()> {
    // SAFETY: setns with a valid fd and a namespace type flag.
    if unsafe { libc::setns(fd.as_raw_fd(), clone_flag(t)) } != 0 {
        return Err(Error::msg(format!(
            "join {} namespace {what}: {}",
            proc_name(t),
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

pub fn unshare(flags: libc::c_int) -> Result<()> {
    if flags == 0 {
        return Ok(());
    }
    // SAFETY: unshare with namespace flags.
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(Error::msg(format!(
            "unshare namespaces {flags:#x}: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

pub fn write_time_offsets(spec: &Spec) -> Result<()> {
    let Some(offsets) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, off) in offsets {
        let name = match clock.as_str() {
            "monotonic" | "boottime" => clock.as_str(),
            other => crate::bail!("config.json: linux.timeOffsets: unknown clock {other:?}"),
        };
        text.push_str(&format!(
            "{name} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    std::fs::write("/proc/self/timens_offsets", text).ctx("write timens_offsets")
}
