//! Loading and validating a bundle's `config.json`. Everything is checked here, before the system
//! is touched, so a bad field is a one-line error naming it and nothing is ever half-created.
//! This module reads files only; it never mounts, forks or writes.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};

use crate::error::{Context, Error, Result};
use crate::mountopts;

/// config.json larger than this is refused: a spec is a few KiB; this bounds memory on hostile input.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// A validated bundle: its directory, parsed spec and the absolute rootfs path.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
    /// `linux.seccomp` compiled once, while validating.
    pub seccomp: Option<berth_seccomp::Filter>,
}

impl Bundle {
    pub fn load(dir: &Path) -> Result<Bundle> {
        let dir = std::fs::canonicalize(dir).with_ctx(|| format!("bundle {}", dir.display()))?;
        let spec = load_config(&dir.join("config.json"))?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| Error::msg("config.json: root: missing"))?;
        let rootfs = if root.path().is_absolute() {
            root.path().clone()
        } else {
            dir.join(root.path())
        };
        let meta = std::fs::metadata(&rootfs)
            .with_ctx(|| format!("config.json: root.path {}", rootfs.display()))?;
        if !meta.is_dir() {
            crate::bail!(
                "config.json: root.path {}: not a directory",
                rootfs.display()
            );
        }
        // The kernel reports mounts by resolved path: compare against the resolved rootfs.
        let rootfs = std::fs::canonicalize(&rootfs)
            .with_ctx(|| format!("config.json: root.path {}", rootfs.display()))?;
        let seccomp = validate(&spec)?;
        Ok(Bundle {
            dir,
            spec,
            rootfs,
            seccomp,
        })
    }
}

/// Reads and parses a config.json with the size bound.
pub fn load_config(path: &Path) -> Result<Spec> {
    let file = std::fs::File::open(path).with_ctx(|| path.display().to_string())?;
    let mut buf = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut buf)
        .with_ctx(|| path.display().to_string())?;
    if buf.len() as u64 > MAX_CONFIG_BYTES {
        crate::bail!("{}: larger than {} bytes", path.display(), MAX_CONFIG_BYTES);
    }
    match serde_json::from_slice(&buf) {
        Ok(spec) => Ok(spec),
        // Only a spec that fails to parse pays for a second look.
        Err(e) => serde_json::from_slice(&buf)
            .ok()
            .and_then(|mut v: serde_json::Value| {
                let process = v.get_mut("process")?;
                drop_unknown_capabilities(process).then(|| serde_json::from_value(v))
            })
            .unwrap_or(Err(e))
            .map_err(|e| Error::msg(format!("{}: {e}", path.display()))),
    }
}

/// Removes the capability names this runtime cannot name from a process's `capabilities` sets,
/// warning once, as runc does ("ignoring unknown or unavailable capabilities"): a capability the
/// runtime cannot name is not one it could grant, and containerd may list one newer than us.
/// Returns whether any was removed.
pub fn drop_unknown_capabilities(process: &mut serde_json::Value) -> bool {
    let known = |name: &serde_json::Value| {
        serde_json::from_value::<oci_spec::runtime::Capability>(name.clone()).is_ok()
    };
    let mut unknown: Vec<String> = Vec::new();
    let Some(sets) = process
        .get_mut("capabilities")
        .and_then(|c| c.as_object_mut())
    else {
        return false;
    };
    for set in sets.values_mut().filter_map(|s| s.as_array_mut()) {
        for name in set.iter().filter(|n| !known(n)) {
            let name = name
                .as_str()
                .map_or_else(|| name.to_string(), str::to_string);
            if !unknown.contains(&name) {
                unknown.push(name);
            }
        }
        set.retain(known);
    }
    if !unknown.is_empty() {
        crate::warn(&format!(
            "berth-runtime: ignoring unknown capabilities: {}",
            unknown.join(", ")
        ));
    }
    !unknown.is_empty()
}

/// How the container's terminal reaches whoever created it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminal {
    /// No terminal.
    None,
    /// The pty master goes to `--console-socket`.
    Socket,
    /// The creator proxies the terminal itself (a foreground `run`).
    Proxied,
}

/// Checks `process.terminal` against the console socket given (or the creator's offer to proxy).
pub fn check_terminal(spec: &Spec, socket: bool, can_proxy: bool) -> Result<Terminal> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::msg("config.json: process: missing"))?;
    let terminal = process.terminal().unwrap_or(false);
    match (terminal, socket, can_proxy) {
        (true, true, _) => Ok(Terminal::Socket),
        (true, false, true) => Ok(Terminal::Proxied),
        (true, false, false) => {
            crate::bail!("config.json: process.terminal is true: --console-socket is required")
        }
        (false, true, _) => crate::bail!("--console-socket given but process.terminal is false"),
        (false, false, _) => Ok(Terminal::None),
    }
}

/// Checks what the spec asks of this host: v2-only resources on a v1 host, paths that need a
/// mount namespace of the container's own.
pub fn check_for_host(spec: &Spec, own_mount_ns: bool, cgroup_v2: bool) -> Result<()> {
    let linux = spec.linux().as_ref();
    let unified = linux
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.unified().as_ref());
    if unified.is_some_and(|u| !u.is_empty()) && !cgroup_v2 {
        crate::bail!(
            "invalid configuration: linux.resources.unified: needs cgroup v2 (this host is v1)"
        );
    }
    if own_mount_ns {
        return Ok(());
    }
    let masked = linux
        .and_then(|l| l.masked_paths().as_ref())
        .is_some_and(|v| !v.is_empty());
    let readonly = linux
        .and_then(|l| l.readonly_paths().as_ref())
        .is_some_and(|v| !v.is_empty());
    if masked || readonly {
        crate::bail!("config.json: linux.maskedPaths/readonlyPaths: need a mount namespace");
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        crate::bail!("config.json: root.readonly: needs a mount namespace");
    }
    Ok(())
}

/// Which namespaces the spec asks for: new (no path) or joined (path).
pub fn namespace(spec: &Spec, typ: LinuxNamespaceType) -> Option<Option<PathBuf>> {
    let nss = spec.linux().as_ref()?.namespaces().as_ref()?;
    nss.iter()
        .find(|n| n.typ() == typ)
        .map(|n| n.path().clone())
}

pub fn has_new_namespace(spec: &Spec, typ: LinuxNamespaceType) -> bool {
    matches!(namespace(spec, typ), Some(None))
}

/// True when the container gets a namespace of `typ` that is not the runtime's own: a new one, or
/// one joined by path (a pod's, made by containerd for its sandbox) that is a different namespace
/// from ours. A path that cannot be compared counts as ours, so a host setting is never changed.
fn owns_namespace(spec: &Spec, typ: LinuxNamespaceType) -> bool {
    use std::os::unix::fs::MetadataExt;
    match namespace(spec, typ) {
        Some(None) => true,
        Some(Some(path)) => {
            let ours = Path::new("/proc/self/ns").join(crate::namespaces::proc_name(typ));
            match (std::fs::metadata(&path), std::fs::metadata(ours)) {
                (Ok(theirs), Ok(ours)) => (theirs.dev(), theirs.ino()) != (ours.dev(), ours.ino()),
                _ => false,
            }
        }
        None => false,
    }
}

/// Checks every field; returns the compiled seccomp filter (compiling is part of checking it, and
/// the costliest part, so it is done once).
pub fn validate(spec: &Spec) -> Result<Option<berth_seccomp::Filter>> {
    let v = spec.version();
    if !v.starts_with("1.") {
        crate::bail!("config.json: ociVersion {v:?}: unsupported (need 1.x)");
    }
    if let Some(p) = spec.process() {
        validate_process(p)?;
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        validate_mount(i, m)?;
    }
    if let Some(linux) = spec.linux() {
        validate_linux(spec, linux)?;
    }
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let filter = seccomp.map(berth_seccomp::compile).transpose()?;
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty())
        && namespace(spec, LinuxNamespaceType::Uts).is_none()
    {
        crate::bail!("config.json: hostname: needs a uts namespace of the container's own");
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty())
        && namespace(spec, LinuxNamespaceType::Uts).is_none()
    {
        crate::bail!("config.json: domainname: needs a uts namespace of the container's own");
    }
    Ok(filter)
}

fn validate_process(p: &oci_spec::runtime::Process) -> Result<()> {
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        crate::bail!("config.json: process.args: must not be empty");
    }
    if !p.cwd().is_absolute() {
        crate::bail!(
            "config.json: process.cwd {:?}: must be an absolute path",
            p.cwd()
        );
    }
    for (i, a) in p.args().iter().flatten().enumerate() {
        if a.contains('\0') {
            crate::bail!("config.json: process.args[{i}] {a:?}: holds a NUL byte");
        }
    }
    for (i, e) in p.env().iter().flatten().enumerate() {
        if e.contains('\0') {
            crate::bail!("config.json: process.env[{i}] {e:?}: holds a NUL byte");
        }
        if !e.contains('=') {
            crate::bail!("config.json: process.env {e:?}: must be KEY=VALUE");
        }
    }
    for r in p.rlimits().iter().flatten() {
        if r.soft() > r.hard() {
            crate::bail!(
                "config.json: process.rlimits {}: soft limit above hard limit",
                r.typ()
            );
        }
    }
    if p.apparmor_profile()
        .as_deref()
        .is_some_and(|s| !s.is_empty())
        && !Path::new("/sys/kernel/security/apparmor").exists()
    {
        crate::bail!("config.json: process.apparmorProfile: AppArmor is not enabled on this host");
    }
    if p.selinux_label().as_deref().is_some_and(|s| !s.is_empty())
        && !Path::new("/sys/fs/selinux/enforce").exists()
    {
        crate::bail!("config.json: process.selinuxLabel: SELinux is not enabled on this host");
    }
    if let Some(adj) = p.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            crate::bail!("config.json: process.oomScoreAdj {adj}: must be within -1000..1000");
        }
    }
    Ok(())
}

fn validate_mount(i: usize, m: &Mount) -> Result<()> {
    if !m.destination().is_absolute() {
        crate::bail!(
            "config.json: mounts[{i}].destination {:?}: must be an absolute path",
            m.destination()
        );
    }
    mountopts::parse(m.options().as_deref().unwrap_or_default()).map_err(|e| {
        Error::msg(format!(
            "config.json: mounts[{i}] ({}): {e}",
            m.destination().display()
        ))
    })?;
    Ok(())
}

fn validate_linux(spec: &Spec, linux: &oci_spec::runtime::Linux) -> Result<()> {
    let mut seen = HashSet::new();
    for ns in linux.namespaces().iter().flatten() {
        if !seen.insert(ns.typ()) {
            crate::bail!("config.json: linux.namespaces: {} listed twice", ns.typ());
        }
        if let Some(p) = ns.path() {
            if !p.exists() {
                crate::bail!(
                    "config.json: linux.namespaces: {} path {}: does not exist",
                    ns.typ(),
                    p.display()
                );
            }
        }
        if ns.typ() == LinuxNamespaceType::Time
            && ns.path().is_none()
            && !Path::new("/proc/self/ns/time").exists()
        {
            crate::bail!(
                "config.json: linux.namespaces: time namespaces are not supported by this kernel"
            );
        }
    }
    let userns = namespace(spec, LinuxNamespaceType::User).is_some();
    let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if has_maps && !userns {
        crate::bail!("config.json: linux.uidMappings: needs a user namespace");
    }
    if has_new_namespace(spec, LinuxNamespaceType::User)
        && (linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty())
            || linux.gid_mappings().as_ref().is_none_or(|m| m.is_empty()))
    {
        crate::bail!(
            "config.json: linux.uidMappings and gidMappings: a new user namespace needs both"
        );
    }
    for (key, _) in linux.sysctl().iter().flatten() {
        validate_sysctl(spec, key)?;
    }
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty())
        && !has_new_namespace(spec, LinuxNamespaceType::Time)
    {
        crate::bail!("config.json: linux.timeOffsets: needs a new time namespace");
    }
    if let Some(p) = linux.rootfs_propagation() {
        if !p.is_empty() && mountopts::propagation(p).is_none() {
            crate::bail!("config.json: linux.rootfsPropagation {p:?}: unknown propagation");
        }
    }
    if linux.intel_rdt().is_some() {
        crate::bail!("config.json: linux.intelRdt: Intel RDT is not supported on this host");
    }
    if linux
        .mount_label()
        .as_deref()
        .is_some_and(|s| !s.is_empty())
        && !Path::new("/sys/fs/selinux/enforce").exists()
    {
        crate::bail!("config.json: linux.mountLabel: SELinux is not enabled on this host");
    }
    for d in linux.devices().iter().flatten() {
        if !d.path().is_absolute()
            || d.path()
                .components()
                .any(|c| c == std::path::Component::ParentDir)
        {
            crate::bail!(
                "config.json: linux.devices: path {:?}: must be absolute without ..",
                d.path()
            );
        }
    }
    Ok(())
}

fn validate_sysctl(spec: &Spec, key: &str) -> Result<()> {
    if key.contains('/') || key.contains("..") || key.is_empty() {
        crate::bail!("config.json: linux.sysctl {key:?}: not a sysctl name");
    }
    let need = |t: LinuxNamespaceType, what: &str| -> Result<()> {
        if owns_namespace(spec, t) {
            Ok(())
        } else {
            Err(Error::msg(format!(
                "config.json: linux.sysctl {key:?}: needs a {what} namespace other than the host's"
            )))
        }
    };
    match sysctl_namespace(key) {
        Some(LinuxNamespaceType::Ipc) => need(LinuxNamespaceType::Ipc, "ipc"),
        Some(LinuxNamespaceType::Network) => need(LinuxNamespaceType::Network, "network"),
        Some(LinuxNamespaceType::Uts) => need(LinuxNamespaceType::Uts, "uts"),
        _ => Err(Error::msg(format!(
            "config.json: linux.sysctl {key:?}: not namespaced, refusing to change the host"
        ))),
    }
}

/// The IPC namespace's sysctls besides `fs.mqueue.*` (runc's and Docker's list).
const IPC_SYSCTLS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The namespace a sysctl (dotted name) belongs to: IPC for the System V and mqueue ones, the
/// network's for `net.*`, UTS for the host and domain names; `None` for the whole host's.
pub fn sysctl_namespace(key: &str) -> Option<LinuxNamespaceType> {
    if IPC_SYSCTLS.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        Some(LinuxNamespaceType::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(LinuxNamespaceType::Uts)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::drop_unknown_capabilities;

    #[test]
    fn unknown_capability_names_are_dropped_from_every_set() {
        let mut p = serde_json::json!({"capabilities": {
            "bounding": ["CAP_KILL", "CAP_FUTURE_THING"],
            "effective": ["CAP_FUTURE_THING"],
            "permitted": ["CAP_KILL", 7],
        }});
        assert!(drop_unknown_capabilities(&mut p));
        assert_eq!(
            p["capabilities"]["bounding"],
            serde_json::json!(["CAP_KILL"])
        );
        assert_eq!(p["capabilities"]["effective"], serde_json::json!([]));
        assert_eq!(
            p["capabilities"]["permitted"],
            serde_json::json!(["CAP_KILL"])
        );
    }

    #[test]
    fn known_capabilities_are_kept_and_reported_as_such() {
        let mut p = serde_json::json!({"capabilities": {"bounding": ["CAP_KILL", "CAP_BPF"]}});
        assert!(!drop_unknown_capabilities(&mut p));
        assert_eq!(
            p["capabilities"]["bounding"],
            serde_json::json!(["CAP_KILL", "CAP_BPF"])
        );
        assert!(!drop_unknown_capabilities(&mut serde_json::json!({})));
    }
}
