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

#[cfg(test)]
mod tests {
    use super::*;
    use LinuxNamespaceType::*;

    fn types(network: &str) -> Vec<LinuxNamespaceType> {
        let all = namespaces(network).unwrap();
        assert!(
            all.iter().all(|n| n.path().is_none()),
            "all new, none joined"
        );
        all.iter().map(|n| n.typ()).collect()
    }

    #[test]
    fn every_network_but_host_gets_its_own_namespace() {
        for network in ["", "none", "default", "bridge"] {
            assert_eq!(
                types(network),
                [Pid, Ipc, Uts, Mount, Cgroup, Network],
                "{network}"
            );
        }
        assert_eq!(types("host"), [Pid, Ipc, Uts, Mount, Cgroup]);
    }

    #[test]
    fn an_unknown_network_is_refused() {
        let e = namespaces("mynet").unwrap_err().to_string();
        let want = r#"network "mynet" not found (berth has none and host; bridges come later)"#;
        assert_eq!(e, want);
    }
}
