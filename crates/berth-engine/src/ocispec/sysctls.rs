//! `--sysctl NAME=VALUE`: kernel parameters a container may set, which are those of its own
//! namespaces, as Docker allows them: the IPC ones (`kernel.msg*`, `kernel.sem`, `kernel.shm*`,
//! `fs.mqueue.*`) unless it shares the host's IPC namespace, and `net.*` unless it shares the
//! host's network namespace. A parameter of the whole host is refused, never set.

use super::namespaces::{Namespaces, Source};
use super::SpecError;
use berth_runtime::spec::sysctl_namespace;
use oci_spec::runtime::LinuxNamespaceType;
use std::collections::HashMap;

/// Each `--sysctl`, checked against the namespaces the container has.
pub fn sysctls(flags: &[String], ns: &Namespaces) -> Result<HashMap<String, String>, SpecError> {
    let mut out = HashMap::new();
    for f in flags {
        let (name, value) = f
            .split_once('=')
            .filter(|(n, _)| !n.is_empty())
            .ok_or_else(|| SpecError::SysctlSyntax(f.clone()))?;
        // `net/ipv4/ip_forward` is the same parameter as `net.ipv4.ip_forward`.
        let name = name.replace('/', ".");
        // Docker's list: the UTS names are the runtime's to set, not a flag's.
        match sysctl_namespace(&name) {
            Some(LinuxNamespaceType::Ipc) if ns.ipc == Source::Host => {
                return Err(SpecError::SysctlHostIpc(name))
            }
            Some(LinuxNamespaceType::Network) if ns.net == Source::Host => {
                return Err(SpecError::SysctlHostNetwork(name))
            }
            Some(LinuxNamespaceType::Ipc | LinuxNamespaceType::Network) => {}
            _ => return Err(SpecError::SysctlNotNamespaced(name)),
        }
        out.insert(name, value.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(flags: &[&str], ns: &Namespaces) -> Result<HashMap<String, String>, String> {
        let flags: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
        sysctls(&flags, ns).map_err(|e| e.to_string())
    }

    #[test]
    fn namespaced_parameters_pass_and_host_ones_are_refused() {
        let private = Namespaces::default();
        let got = check(
            &[
                "net.ipv4.ip_forward=1",
                "kernel.shmmax=1024",
                "fs.mqueue.msg_max=20",
            ],
            &private,
        )
        .unwrap();
        assert_eq!(got["net.ipv4.ip_forward"], "1");
        assert_eq!(got.len(), 3);
        assert_eq!(
            check(&["net/ipv4/ping_group_range=0 0"], &private).unwrap()
                ["net.ipv4.ping_group_range"],
            "0 0"
        );
        assert!(check(&["kernel.panic=1"], &private)
            .unwrap_err()
            .contains("only namespaced"));
        assert!(check(&["vm.swappiness=1"], &private).is_err());
        assert!(check(&["noequals"], &private)
            .unwrap_err()
            .contains("NAME=VALUE"));
        let host_net = Namespaces {
            net: Source::Host,
            ..Namespaces::default()
        };
        assert!(check(&["net.ipv4.ip_forward=1"], &host_net)
            .unwrap_err()
            .contains("host's network"));
        assert!(check(&["kernel.sem=1 2 3 4"], &host_net).is_ok());
        let host_ipc = Namespaces {
            ipc: Source::Host,
            ..Namespaces::default()
        };
        assert!(check(&["kernel.sem=1 2 3 4"], &host_ipc)
            .unwrap_err()
            .contains("host's IPC"));
    }
}
