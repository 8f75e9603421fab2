//! From an image's config and the user's flags to the container's OCI spec (`config.json`), with
//! Docker's defaults: its 14 capabilities, masked and read-only paths, a default seccomp profile,
//! no_new_privs, a 64 MiB `/dev/shm`, and generated `/etc/hostname`, `/etc/hosts`,
//! `/etc/resolv.conf`. Builds oci-spec's types, one part per module; it never writes the spec.

mod devices;
mod error;
mod mounts;
mod namespaces;
mod process;
mod resources;
mod seccomp;
mod security;

pub use devices::{parse_device, DeviceRequest};
pub use error::SpecError;
pub use security::{capabilities, DEFAULT_CAPS};

use crate::options::RunOptions;
use crate::record::MountRecord;
use crate::user::ResolvedUser;
use oci_spec::runtime::{LinuxBuilder, RootBuilder, Spec, SpecBuilder};
use std::collections::HashMap;

/// The runtime spec version berth writes.
const OCI_VERSION: &str = "1.1.0";

/// Everything `spec` needs besides the user's flags.
pub struct SpecInput<'a> {
    pub opts: &'a RunOptions,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: ResolvedUser,
    pub hostname: String,
    pub container_dir: &'a std::path::Path,
    pub cgroup_path: String,
    pub mounts: &'a [MountRecord],
    pub tmpfs: Vec<(String, String)>,
}

/// The container's spec. Flags are checked part by part, in this order, and the first bad one
/// is the error.
pub fn spec(i: &SpecInput) -> Result<Spec, SpecError> {
    let o = i.opts;
    let confinement = security::confinement(o)?;
    let process = process::process(i, &confinement)?;
    let mounts = mounts::mounts(i)?;
    let namespaces = namespaces::namespaces(&o.network)?;
    let devices = devices::host_devices(&o.devices)?;
    let device_rules = devices::cgroup_rules(o.privileged, &devices)?;
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(&i.cgroup_path)
        .resources(resources::resources(o, device_rules)?)
        .devices(devices.into_iter().map(|d| d.node).collect::<Vec<_>>())
        .masked_paths(security::masked_paths(o))
        .readonly_paths(security::readonly_paths(o))
        .build()?;
    linux.set_seccomp(confinement.seccomp);
    let root = RootBuilder::default()
        .path("rootfs")
        .readonly(o.read_only)
        .build()?;
    Ok(SpecBuilder::default()
        .version(OCI_VERSION)
        .annotations(annotations(o))
        .process(process)
        .root(root)
        .hostname(&i.hostname)
        .mounts(mounts)
        .linux(linux)
        .build()?)
}

/// The annotations berth's runtime reads: `--init` asks it for its own init as pid 1.
fn annotations(o: &RunOptions) -> HashMap<String, String> {
    let mut annotations = HashMap::new();
    if o.init {
        let init = berth_runtime::init::INIT_ANNOTATION;
        annotations.insert(init.to_string(), "true".to_string());
    }
    annotations
}

/// `name` read as the runtime will read it from config.json (oci-spec's own names:
/// `CAP_NET_RAW`, `RLIMIT_NOFILE`), or None if it names nothing oci-spec knows.
fn from_name<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    use serde::de::{value::Error, IntoDeserializer};
    T::deserialize(IntoDeserializer::<Error>::into_deserializer(name)).ok()
}

#[cfg(test)]
mod equivalence;
#[cfg(test)]
mod legacy;
