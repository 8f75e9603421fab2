//! berth's OCI runtime library: a bundle's `config.json` becomes an isolated, limited process.
//! It owns namespaces, the root filesystem, cgroups (through `berth-cgroups`), capabilities,
//! seccomp (through `berth-seccomp`), hooks, the console and one container's state. It knows
//! nothing of images, registries or networks.

pub mod console;
pub mod defaults;
pub mod features;
pub mod hooks;
