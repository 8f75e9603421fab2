//! berth's OCI runtime library: a bundle's `config.json` becomes an isolated, limited process.
//! It owns namespaces, the root filesystem, cgroups (through `berth-cgroups`), capabilities,
//! seccomp (through `berth-seccomp`), hooks, the console and one container's state. It knows
//! nothing of images, registries or networks.

pub mod console;
pub mod defaults;
pub mod features;
pub mod hooks;
pub mod cgjoin;
pub mod create;
pub mod devices;
pub mod error;
pub mod exec;
pub mod id;
pub mod init;
pub mod inroot;
pub mod mountopts;
pub mod namespaces;
pub mod ops;
pub mod process;
pub mod rootfs;
pub mod signals;
pub mod spec;
pub mod state;
pub mod sync;

pub use error::{Error, Result};
