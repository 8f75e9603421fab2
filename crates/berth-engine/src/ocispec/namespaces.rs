//! Which namespaces the container gets: its own pid, ipc, uts, mount and cgroup namespaces
//! always, and for the network a new one, the host's (none named), or another container's (a
//! path to join). Names the namespaces only; joining or making them is the runtime's job.

use super::SpecError;
use crate::network::NetNamespace;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType};

/// The container's namespaces for its network namespace `net`.
pub fn namespaces(net: &NetNamespace) -> Result<Vec<LinuxNamespace>, SpecError> {
    use LinuxNamespaceType::*;
    let mut all: Vec<LinuxNamespace> = [Pid, Ipc, Uts, Mount, Cgroup]
        .into_iter()
        .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build())
        .collect::<Result<_, _>>()?;
    match net {
        NetNamespace::Host => {}
        NetNamespace::New => all.push(LinuxNamespaceBuilder::default().typ(Network).build()?),
        NetNamespace::Join(path) => all.push(
            LinuxNamespaceBuilder::default()
                .typ(Network)
                .path(path.clone())
                .build()?,
        ),
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use LinuxNamespaceType::*;

    fn types(net: &NetNamespace) -> Vec<LinuxNamespaceType> {
        namespaces(net).unwrap().iter().map(|n| n.typ()).collect()
    }

    #[test]
    fn a_new_network_namespace_unless_host_or_joined() {
        assert_eq!(
            types(&NetNamespace::New),
            [Pid, Ipc, Uts, Mount, Cgroup, Network]
        );
        assert!(namespaces(&NetNamespace::New)
            .unwrap()
            .iter()
            .all(|n| n.path().is_none()));
        assert_eq!(types(&NetNamespace::Host), [Pid, Ipc, Uts, Mount, Cgroup]);
        let join = NetNamespace::Join("/proc/42/ns/net".into());
        let all = namespaces(&join).unwrap();
        let net = all.iter().find(|n| n.typ() == Network).unwrap();
        assert_eq!(
            net.path().as_deref(),
            Some(std::path::Path::new("/proc/42/ns/net"))
        );
    }
}
