//! What changes when the runtime has no privilege over the host: an ordinary user (runc's
//! "rootless"), or root inside a user namespace (berth's rootless engine). Cgroups become
//! optional (made where the user was delegated them, else none), id maps beyond the caller's
//! own go through newuidmap/newgidmap (`idmap.rs`), and the state root defaults under
//! `$XDG_RUNTIME_DIR`. It decides; `create.rs` and the binary act.

use std::path::PathBuf;

use oci_spec::runtime::{LinuxResources, Spec};

use crate::error::{Context, Error, Result};

/// Who the runtime runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Privilege {
    pub euid: u32,
    pub egid: u32,
    /// In the host's user namespace (where uid 0 is the host's root).
    pub initial_userns: bool,
}

impl Privilege {
    /// This process's, read once per command.
    pub fn detect() -> Result<Privilege> {
        let initial_userns =
            berth_sys::userns::in_initial_namespace().ctx("read /proc/self/uid_map")?;
        Ok(Privilege {
            euid: nix::unistd::geteuid().as_raw(),
            egid: nix::unistd::getegid().as_raw(),
            initial_userns,
        })
    }

    /// The host's root: every cgroup is ours to make.
    pub fn root() -> Privilege {
        Privilege {
            euid: 0,
            egid: 0,
            initial_userns: true,
        }
    }

    /// The host's root (euid 0 in the initial user namespace).
    pub fn is_host_root(&self) -> bool {
        !self.is_rootless()
    }

    /// Not the host's root: cgroups may be out of reach (runc's `rootless` cgroup handling,
    /// which also applies to euid 0 in a user namespace).
    pub fn is_rootless(&self) -> bool {
        self.euid != 0 || !self.initial_userns
    }
}

/// Where container state lives by default: `/run/berth-runtime` for root (in any user
/// namespace, as runc decides by euid); an ordinary user's goes under `$XDG_RUNTIME_DIR` (as
/// runc's does), else a directory of their own under /tmp.
pub fn default_state_root() -> PathBuf {
    let euid = nix::unistd::geteuid().as_raw();
    if euid == 0 {
        return PathBuf::from("/run/berth-runtime");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("berth-runtime"),
        None => PathBuf::from(format!("/tmp/berth-runtime-{euid}")),
    }
}

/// The first cgroup controller the spec sets a limit for, if any (device rules do not count: a
/// rootless container cannot have them enforced, and has no device nodes to protect anyway).
pub fn requested_limit(r: &LinuxResources) -> Option<&'static str> {
    let some = |present: bool, name: &'static str| present.then_some(name);
    some(r.memory().is_some(), "memory")
        .or_else(|| some(r.cpu().is_some(), "cpu"))
        .or_else(|| some(r.pids().is_some(), "pids"))
        .or_else(|| some(r.block_io().is_some(), "blkio"))
        .or_else(|| {
            some(
                r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()),
                "hugetlb",
            )
        })
        .or_else(|| some(r.network().is_some(), "net_cls"))
        .or_else(|| some(r.rdma().as_ref().is_some_and(|m| !m.is_empty()), "rdma"))
        .or_else(|| {
            some(
                r.unified().as_ref().is_some_and(|m| !m.is_empty()),
                "unified",
            )
        })
}

/// Whether a cgroup error only says the user may not make or join it (runc's "ignorable" errors
/// for rootless containers): permission denied, not permitted, a read-only cgroupfs.
pub fn is_permission_error(e: &berth_cgroups::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS)
    )
}

/// Why a rootless container without a cgroup cannot have the spec's limits: runc's sentence
/// (which its tests look for), then what would make them possible; the cgroup error underneath.
pub fn no_cgroup_for_limit(controller: &str, cause: berth_cgroups::Error) -> Error {
    Error::Context {
        context: format!(
            "cannot set {controller} limit: container could not join or create cgroup \
             (rootless limits need a cgroup the user may write: a delegated cgroup v2 subtree, \
             as systemd's user@.service gives with Delegate=yes, or a cgroupsPath made and \
             chowned for them)"
        ),
        source: Box::new(Error::Cgroup(cause)),
    }
}

/// Why a rootless container cannot have the cgroup its spec names: runc's sentence (which its
/// tests look for, errno in Go's words), then what would make it possible; the cgroup error
/// underneath.
pub fn no_permission_for_cgroup_path(cause: berth_cgroups::Error) -> Error {
    Error::Context {
        context: "unable to apply cgroup configuration: permission denied                   (the spec's cgroupsPath must be made and chowned for this user, or lie in a                   delegated cgroup v2 subtree)"
            .into(),
        source: Box::new(Error::Cgroup(cause)),
    }
}

/// The resources the runtime applies itself: all of the spec's, but in a rootless container
/// no device rules (a cgroup v2 device filter is an eBPF program only the host's root may load,
/// and runc skips them too).
pub fn effective_resources(spec: &Spec, p: &Privilege) -> LinuxResources {
    let mut r = crate::devices::effective_resources(spec);
    if p.is_rootless() {
        r.set_devices(None);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxMemoryBuilder, LinuxResourcesBuilder};

    #[test]
    fn only_real_limits_are_requested_limits() {
        let none = LinuxResources::default();
        assert_eq!(requested_limit(&none), None);
        let mem = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(1 << 20)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert_eq!(requested_limit(&mem), Some("memory"));
    }

    #[test]
    fn euid_zero_in_a_user_namespace_is_rootless_too() {
        let user = Privilege {
            euid: 1000,
            egid: 1000,
            initial_userns: true,
        };
        assert!(user.is_rootless());
        let userns_root = Privilege {
            euid: 0,
            egid: 0,
            initial_userns: false,
        };
        assert!(userns_root.is_rootless());
        assert!(!Privilege::root().is_rootless());
    }
}
