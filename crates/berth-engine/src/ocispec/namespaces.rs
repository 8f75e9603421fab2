//! Which namespaces the container gets: its own pid, ipc, uts, mount and cgroup namespaces
//! always, and a network namespace unless `--network host`. Names the namespaces only; joining
//! or making them is the runtime's job.

use super::SpecError;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType};

/// The container's new namespaces for `--network network`.
pub fn namespaces(network: &str) -> Result<Vec<LinuxNamespace>, SpecError> {
    use LinuxNamespaceType::*;
    let mut types = vec![Pid, Ipc, Uts, Mount, Cgroup];
    match network {
        "host" => {}
        // Until bridges exist, the default network is a namespace with loopback only.
        "" | "none" | "default" | "bridge" => types.push(Network),
        other => return Err(SpecError::UnknownNetwork(other.into())),
    }
    types.into_iter().map(new_namespace).collect()
}

fn new_namespace(typ: LinuxNamespaceType) -> Result<LinuxNamespace, SpecError> {
    Ok(LinuxNamespaceBuilder::default().typ(typ).build()?)
}
