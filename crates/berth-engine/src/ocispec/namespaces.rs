//! Which namespaces the container gets: its own mount namespace always, and for the cgroup,
//! network, IPC, PID and UTS namespaces a new one, the host's (none named), or another
//! container's (a path to join). Names the namespaces only; joining or making them is the
//! runtime's job.

use super::SpecError;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType};
use std::path::PathBuf;

/// Where one of the container's namespaces comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Source {
    /// A new one of its own.
    #[default]
    New,
    /// The host's (`--network host`, `--ipc host`, `--pid host`, `--uts host`).
    Host,
    /// Another process's (`/proc/PID/ns/KIND`, for `container:NAME`).
    Join(PathBuf),
}

/// The sources of the namespaces a user can share.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Namespaces {
    pub net: Source,
    pub ipc: Source,
    pub pid: Source,
    pub uts: Source,
    /// `--cgroupns`: new (private, berth's default) or the host's.
    pub cgroup: Source,
    /// Where `/dev/shm` is bound from when it is shared (`--ipc shareable`: the container's own
    /// tmpfs on the host; `--ipc container:NAME`: NAME's; `--ipc host`: the host's). `None`: a
    /// tmpfs of its own inside the container.
    pub shm: Option<PathBuf>,
}

/// The container's namespaces: mount always new, the others from `n`.
pub fn namespaces(n: &Namespaces) -> Result<Vec<LinuxNamespace>, SpecError> {
    use LinuxNamespaceType::*;
    let mut all = Vec::new();
    for (typ, source) in [
        (Pid, &n.pid),
        (Ipc, &n.ipc),
        (Uts, &n.uts),
        (Mount, &Source::New),
        (Cgroup, &n.cgroup),
        (Network, &n.net),
    ] {
        let mut b = LinuxNamespaceBuilder::default().typ(typ);
        match source {
            Source::Host => continue,
            Source::New => {}
            Source::Join(path) => b = b.path(path.clone()),
        }
        all.push(b.build()?);
    }
    Ok(all)
}

/// Gives the spec a user namespace with `map` (`--userns=auto`, `--uidmap`): container root is
/// an unprivileged host id. The runtime writes the maps; the rootfs is remapped to them already.
pub fn add_user_namespace(
    spec: &mut oci_spec::runtime::Spec,
    map: &berth_image::snapshot::IdMap,
) -> Result<(), SpecError> {
    use oci_spec::runtime::{LinuxIdMapping, LinuxIdMappingBuilder};
    let ranges =
        |v: &[berth_image::snapshot::IdMapping]| -> Result<Vec<LinuxIdMapping>, SpecError> {
            v.iter()
                .map(|m| {
                    Ok(LinuxIdMappingBuilder::default()
                        .container_id(m.container_id)
                        .host_id(m.host_id)
                        .size(m.size)
                        .build()?)
                })
                .collect()
        };
    let (uid, gid) = (ranges(&map.uid)?, ranges(&map.gid)?);
    let user = LinuxNamespaceBuilder::default()
        .typ(LinuxNamespaceType::User)
        .build()?;
    let Some(linux) = spec.linux_mut() else {
        return Ok(());
    };
    let mut all = linux.namespaces().clone().unwrap_or_default();
    all.insert(0, user);
    linux.set_namespaces(Some(all));
    linux.set_uid_mappings(Some(uid));
    linux.set_gid_mappings(Some(gid));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use LinuxNamespaceType::*;

    fn types(n: &Namespaces) -> Vec<LinuxNamespaceType> {
        namespaces(n).unwrap().iter().map(|n| n.typ()).collect()
    }

    #[test]
    fn new_namespaces_unless_host_or_joined() {
        let all_new = Namespaces::default();
        assert_eq!(types(&all_new), [Pid, Ipc, Uts, Mount, Cgroup, Network]);
        assert!(namespaces(&all_new)
            .unwrap()
            .iter()
            .all(|n| n.path().is_none()));
        let host_net = Namespaces {
            net: Source::Host,
            ..Namespaces::default()
        };
        assert_eq!(types(&host_net), [Pid, Ipc, Uts, Mount, Cgroup]);
        let hosted = Namespaces {
            pid: Source::Host,
            ipc: Source::Host,
            uts: Source::Host,
            cgroup: Source::Host,
            ..Namespaces::default()
        };
        assert_eq!(types(&hosted), [Mount, Network]);
        let join = Namespaces {
            net: Source::Join("/proc/42/ns/net".into()),
            ipc: Source::Join("/proc/42/ns/ipc".into()),
            ..Namespaces::default()
        };
        let all = namespaces(&join).unwrap();
        let path = |t| all.iter().find(|n| n.typ() == t).unwrap().path().clone();
        assert_eq!(path(Network), Some("/proc/42/ns/net".into()));
        assert_eq!(path(Ipc), Some("/proc/42/ns/ipc".into()));
        assert_eq!(path(Pid), None);
    }
}
