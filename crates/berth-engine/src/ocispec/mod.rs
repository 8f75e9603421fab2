//! From an image's config and the user's flags to the container's OCI spec (`config.json`), with
//! Docker's defaults: its 14 capabilities, masked and read-only paths, a default seccomp profile,
//! no_new_privs, a 64 MiB `/dev/shm`, and generated `/etc/hostname`, `/etc/hosts`,
//! `/etc/resolv.conf`. Builds oci-spec's types, one part per module; it never writes the spec.

mod blkio;
pub mod cgroup;
mod devices;
mod error;
pub(crate) mod mounts;
pub mod namespaces;
mod process;
pub(crate) mod resources;
mod seccomp;
mod security;
mod sysctls;

pub use blkio::{parse_throttle, parse_weight_device, DeviceValue, Throttle};
pub use devices::{parse_device, DeviceRequest};
pub use error::SpecError;
pub use mounts::split_tmpfs;
pub use security::{capabilities, masked_paths, readonly_paths, DEFAULT_CAPS};

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
    /// Where the shareable namespaces come from (new, the host's, another container's).
    pub namespaces: namespaces::Namespaces,
}

/// The container's spec. Flags are checked part by part, in this order, and the first bad one
/// is the error. Every field is set here or left out on purpose: a builder's unset field takes
/// oci-spec's own default (youki's hostname, mounts, namespaces, capability sets).
pub fn spec(i: &SpecInput) -> Result<Spec, SpecError> {
    let o = i.opts;
    let confinement = security::confinement(o)?;
    let process = process::process(i, &confinement)?;
    let mounts = mounts::mounts(i)?;
    let namespaces = namespaces::namespaces(&i.namespaces)?;
    let devices = devices::host_devices(&o.devices)?;
    let mut device_rules = devices::cgroup_rules(o.privileged, &devices)?;
    device_rules.extend(devices::user_rules(&o.device_cgroup_rules)?);
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(&i.cgroup_path)
        .resources(resources::resources(o, device_rules)?)
        .devices(devices.into_iter().map(|d| d.node).collect::<Vec<_>>())
        .masked_paths(security::masked_paths(o))
        .readonly_paths(security::readonly_paths(o))
        .build()?;
    linux.set_seccomp(confinement.seccomp);
    let sysctls = sysctls::sysctls(&o.sysctls, &i.namespaces)?;
    if !sysctls.is_empty() {
        linux.set_sysctl(Some(sysctls));
    }
    let root = RootBuilder::default()
        .path("rootfs")
        .readonly(o.read_only)
        .build()?;
    let mut spec = SpecBuilder::default()
        .version(OCI_VERSION)
        .annotations(annotations(o)?)
        .process(process)
        .root(root)
        .mounts(mounts)
        .linux(linux)
        .build()?;
    // Without a UTS namespace of its own the container keeps the host's name.
    let own_uts = i.namespaces.uts != namespaces::Source::Host;
    spec.set_hostname(own_uts.then(|| i.hostname.clone()));
    spec.set_domainname(o.domainname.clone().filter(|_| own_uts));
    Ok(spec)
}

/// The flags whose errors would otherwise show only at start, checked at create before
/// anything is made, as Docker checks them: capabilities, ulimits, the resource limits (block
/// devices resolved), annotations, tmpfs mounts, the shm size, the OOM score, devices (the host
/// nodes looked at), sysctls, and the cgroup flags against this host's hierarchy `h`.
pub fn check_at_create(o: &RunOptions, h: &berth_cgroups::Hierarchy) -> Result<(), SpecError> {
    security::capabilities(o)?;
    process::rlimits(&o.ulimits)?;
    resources::resources(o, Vec::new())?;
    for (k, v) in &o.annotations {
        check_annotation(k, v)?;
    }
    for t in &o.tmpfs {
        let (destination, options) = mounts::split_tmpfs(t);
        mounts::check_tmpfs(&destination, &options)?;
    }
    if o.shm_size.is_some_and(|s| s < 0) {
        return Err(SpecError::ShmSize);
    }
    if !(-1000..=1000).contains(&o.oom_score_adj) {
        return Err(SpecError::OomScoreAdj(o.oom_score_adj.into()));
    }
    devices::host_devices(&o.devices)?;
    // The namespaces a sysctl may belong to are known from the flags alone.
    let host = |mode: &str| {
        if mode == "host" {
            namespaces::Source::Host
        } else {
            namespaces::Source::New
        }
    };
    let ns = namespaces::Namespaces {
        net: host(&o.network),
        ipc: host(&o.ipc),
        ..Default::default()
    };
    sysctls::sysctls(&o.sysctls, &ns)?;
    cgroup::check_host(o, h)
}

/// Keys of annotations berth's runtime reads: the user's `--annotation` may not set them.
const RESERVED_ANNOTATIONS: [&str; 2] = ["org.berth.", "io.github.berth."];

/// `--annotation KEY=VALUE` as given (no key is empty), refusing berth's own keys.
pub fn check_annotation(key: &str, value: &str) -> Result<(), SpecError> {
    let kv = || format!("{key}={value}");
    if key.is_empty() {
        return Err(SpecError::AnnotationSyntax(kv()));
    }
    if RESERVED_ANNOTATIONS.iter().any(|p| key.starts_with(p)) {
        return Err(SpecError::AnnotationReserved(kv()));
    }
    Ok(())
}

/// The user's `--annotation`s, then those berth's runtime reads: `--init` asks it for its own
/// init as pid 1.
fn annotations(o: &RunOptions) -> Result<HashMap<String, String>, SpecError> {
    let mut annotations = HashMap::new();
    for (k, v) in &o.annotations {
        check_annotation(k, v)?;
        annotations.insert(k.clone(), v.clone());
    }
    if o.init {
        let init = berth_runtime::init::INIT_ANNOTATION;
        annotations.insert(init.to_string(), "true".to_string());
    }
    Ok(annotations)
}

/// `name` read as the runtime will read it from config.json (oci-spec's own names:
/// `CAP_NET_RAW`, `RLIMIT_NOFILE`), or None if it names nothing oci-spec knows.
fn from_name<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    use serde::de::{value::Error, IntoDeserializer};
    T::deserialize(IntoDeserializer::<Error>::into_deserializer(name)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EngineError;
    use std::path::Path;

    /// A `SpecInput` for `o`: `sh` in /srv as uid 1000 (gid 100, groups 10 and 20).
    pub(super) fn input(o: &RunOptions) -> SpecInput<'_> {
        SpecInput {
            opts: o,
            args: vec!["sh".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/srv".into(),
            user: ResolvedUser {
                uid: 1000,
                gid: 100,
                additional_gids: vec![10, 20],
                home: "/home/u".into(),
            },
            hostname: "c0ffee".into(),
            container_dir: Path::new("/var/lib/berth/containers/c0ffee"),
            cgroup_path: "/berth-c0ffee".into(),
            mounts: &[],
            tmpfs: Vec::new(),
            namespaces: namespaces::Namespaces::default(),
        }
    }

    /// Most flags at once.
    fn busy() -> RunOptions {
        RunOptions {
            cap_add: vec!["NET_ADMIN".into()],
            security_opts: vec!["no-new-privileges=false".into()],
            ulimits: vec!["nproc=50".into()],
            devices: vec!["/dev/null:/dev/mynull:rw".into()],
            memory: Some(256 << 20),
            cpus: Some(1.0),
            pids_limit: Some(64),
            blkio_weight: Some(300),
            read_only: true,
            init: true,
            tty: true,
            network: "none".into(),
            ..RunOptions::default()
        }
    }

    #[test]
    fn spec_names_its_version_root_hostname_and_cgroup() {
        let s = spec(&input(&RunOptions::default())).unwrap();
        assert_eq!(s.version(), "1.1.0");
        let root = s.root().as_ref().unwrap();
        assert_eq!(
            (root.path().to_str(), root.readonly()),
            (Some("rootfs"), Some(false))
        );
        assert_eq!(s.hostname().as_deref(), Some("c0ffee"));
        let linux = s.linux().as_ref().unwrap();
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(Path::new("/berth-c0ffee"))
        );
        assert_eq!(s.annotations().as_ref().map(|a| a.len()), Some(0));
    }

    #[test]
    fn no_field_comes_from_oci_specs_own_defaults() {
        let v = serde_json::to_value(spec(&input(&RunOptions::default())).unwrap()).unwrap();
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k.join(" ")
        };
        let top = "annotations hostname linux mounts ociVersion process root";
        assert_eq!(keys(&v), top);
        let process = "args capabilities cwd env noNewPrivileges oomScoreAdj rlimits terminal user";
        assert_eq!(keys(&v["process"]), process);
        assert_eq!(
            keys(&v["process"]["capabilities"]),
            "bounding effective permitted"
        );
        assert_eq!(keys(&v["process"]["user"]), "additionalGids gid uid");
        let linux = "cgroupsPath devices maskedPaths namespaces readonlyPaths resources seccomp";
        assert_eq!(keys(&v["linux"]), linux);
        assert_eq!(keys(&v["linux"]["resources"]), "devices");
        assert_eq!(keys(&v["root"]), "path readonly");
        assert_eq!(v["mounts"].as_array().unwrap().len(), 10);
        assert_eq!(v["process"]["rlimits"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn read_only_makes_the_root_read_only() {
        let o = RunOptions {
            read_only: true,
            ..RunOptions::default()
        };
        let s = spec(&input(&o)).unwrap();
        assert_eq!(s.root().as_ref().unwrap().readonly(), Some(true));
    }

    #[test]
    fn init_asks_the_runtime_for_its_init() {
        let o = RunOptions {
            init: true,
            ..RunOptions::default()
        };
        let s = spec(&input(&o)).unwrap();
        let annotations = s.annotations().as_ref().unwrap();
        let init = annotations.get(berth_runtime::init::INIT_ANNOTATION);
        assert_eq!(init.map(String::as_str), Some("true"));
    }

    #[test]
    fn spec_round_trips_and_the_runtime_accepts_it() {
        for o in [RunOptions::default(), busy()] {
            let s = spec(&input(&o)).unwrap();
            let written = serde_json::to_vec(&s).unwrap();
            let read: Spec = serde_json::from_slice(&written).unwrap();
            assert_eq!(read, s);
            let filter = berth_runtime::spec::validate(&read).unwrap();
            assert!(filter.is_some(), "the default seccomp profile compiles");
        }
    }

    #[test]
    fn the_first_bad_flag_is_the_error_in_part_order() {
        let mut o = RunOptions {
            cap_add: vec!["bogus".into()],
            ulimits: vec!["nofile".into()],
            devices: vec!["null".into()],
            memory: Some(1),
            ..RunOptions::default()
        };
        let mut errors = Vec::new();
        for _ in 0..4 {
            errors.push(spec(&input(&o)).unwrap_err().to_string());
            match errors.len() {
                1 => o.cap_add.clear(),
                2 => o.ulimits.clear(),
                _ => o.devices.clear(),
            }
        }
        let starts: Vec<&str> = errors.iter().map(|e| &e[..e.find(' ').unwrap()]).collect();
        assert_eq!(starts, ["invalid", "invalid", "invalid", "Minimum"]);
        assert!(errors[0].contains("--cap-add") && errors[1].contains("--ulimit"));
        assert!(errors[2].contains("--device"));
    }

    #[test]
    fn spec_errors_become_engine_errors_with_the_same_sentence() {
        let o = RunOptions {
            ulimits: vec!["nofile".into()],
            ..RunOptions::default()
        };
        let s = spec(&input(&o)).unwrap_err();
        let want = s.to_string();
        let e: EngineError = s.into();
        assert_eq!(e.to_string(), want);
        assert_eq!(e.exit_code(), 125);
    }
}
