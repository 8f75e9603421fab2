//! The default bundle configuration written by `berth-runtime spec`: the same document as
//! runc 1.1.5's `runc spec` (and `runc spec --rootless`), built as plain JSON.
//! It only produces and writes that document; it never reads a bundle, inspects an image or
//! overwrites an existing `config.json`.

use std::fs::{OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use serde_json::{json, Value};

/// The `ociVersion` runc 1.1.5 writes (its vendored runtime-spec is 1.0.2-dev).
pub const OCI_VERSION: &str = "1.0.2-dev";

/// Name of the bundle's configuration file.
const CONFIG_FILE: &str = "config.json";

/// Mode of a freshly written `config.json`.
const CONFIG_MODE: u32 = 0o644;

/// runc's default `config.json`. Like runc, a `cgroup` namespace is added when the host runs
/// the unified cgroup v2 hierarchy. `rootless` applies runc's `ToRootless` conversion, mapping
/// container root to the caller's effective uid and gid.
pub fn spec(rootless: bool) -> Value {
    let ids = rootless.then(|| {
        (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    });
    build(host_uses_cgroup2(), ids)
}

/// Writes [`spec`] as `dir/config.json` (tab-indented, mode 0644) and refuses to replace an
/// existing file, with runc's message.
pub fn write_spec(dir: &Path, rootless: bool) -> io::Result<()> {
    let mut data = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut data,
        serde_json::ser::PrettyFormatter::with_indent(b"\t"),
    );
    serde::Serialize::serialize(&spec(rootless), &mut ser).map_err(io::Error::other)?;

    let path = dir.join(CONFIG_FILE);
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(CONFIG_MODE)
        .open(&path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("File {CONFIG_FILE} exists. Remove it first"),
            ));
        }
        Err(e) => return Err(e),
    };
    // The umask may have narrowed the creation mode; runc's file is world-readable.
    file.set_permissions(Permissions::from_mode(CONFIG_MODE))?;
    file.write_all(&data)
}

/// True when `/sys/fs/cgroup` is a cgroup2 mount (the unified hierarchy).
fn host_uses_cgroup2() -> bool {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
    statfs("/sys/fs/cgroup").is_ok_and(|fs| fs.filesystem_type() == CGROUP2_SUPER_MAGIC)
}

/// The document itself. `cgroup_ns` adds the cgroup namespace; `rootless_ids` holds the
/// (euid, egid) to map container root to when a rootless spec is wanted.
fn build(cgroup_ns: bool, rootless_ids: Option<(u32, u32)>) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut spec = json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": true,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
                "ambient": caps
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "runc",
        "mounts": default_mounts(),
        "linux": {
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": default_namespaces(cgroup_ns),
            "maskedPaths": [
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger"
            ]
        }
    });
    if let Some((uid, gid)) = rootless_ids {
        make_rootless(&mut spec, uid, gid);
    }
    spec
}

fn default_mounts() -> Value {
    json!([
        { "destination": "/proc", "type": "proc", "source": "proc" },
        {
            "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]
        },
        {
            "destination": "/dev/pts", "type": "devpts", "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
        },
        {
            "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
        },
        {
            "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"]
        },
        {
            "destination": "/sys", "type": "sysfs", "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"]
        },
        {
            "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]
        }
    ])
}

fn default_namespaces(cgroup_ns: bool) -> Value {
    let mut types = vec!["pid", "network", "ipc", "uts", "mount"];
    if cgroup_ns {
        types.push("cgroup");
    }
    types.into_iter().map(|t| json!({ "type": t })).collect()
}

/// runc's `ToRootless`: no network namespace, a user namespace mapping container root to
/// (`uid`, `gid`), no `uid=`/`gid=` mount options, `/sys` bind-mounted from the host, and no
/// cgroup resources.
fn make_rootless(spec: &mut Value, uid: u32, gid: u32) {
    let linux = &mut spec["linux"];
    if let Some(namespaces) = linux["namespaces"].as_array_mut() {
        namespaces.retain(|ns| !matches!(ns["type"].as_str(), Some("network" | "user")));
        namespaces.push(json!({ "type": "user" }));
    }
    linux["uidMappings"] = json!([{ "containerID": 0, "hostID": uid, "size": 1 }]);
    linux["gidMappings"] = json!([{ "containerID": 0, "hostID": gid, "size": 1 }]);
    if let Some(linux) = linux.as_object_mut() {
        linux.remove("resources");
    }

    let Some(mounts) = spec["mounts"].as_array_mut() else {
        return;
    };
    for mount in mounts.iter_mut() {
        if mount["destination"] == "/sys" {
            *mount = json!({
                "destination": "/sys", "type": "none", "source": "/sys",
                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]
            });
            continue;
        }
        let Some(options) = mount["options"].as_array_mut() else {
            continue;
        };
        options.retain(|o| {
            let o = o.as_str().unwrap_or_default();
            !o.starts_with("uid=") && !o.starts_with("gid=")
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxNamespaceType, Spec};

    fn parse(value: &Value) -> Spec {
        serde_json::from_value(value.clone()).expect("default spec must parse as an OCI Spec")
    }

    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("berth-defaults-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn default_spec_round_trips_through_oci_spec_with_runc_values() {
        let spec = parse(&build(false, None));
        assert_eq!(spec.version(), OCI_VERSION);
        assert_eq!(spec.hostname().as_deref(), Some("runc"));
        let root = spec.root().as_ref().unwrap();
        assert_eq!(root.path().to_str(), Some("rootfs"));
        assert_eq!(root.readonly(), Some(true));

        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.terminal(), Some(true));
        assert_eq!(process.args().as_ref().unwrap(), &["sh"]);
        assert_eq!(process.cwd().to_str(), Some("/"));
        assert_eq!(process.no_new_privileges(), Some(true));
        assert_eq!((process.user().uid(), process.user().gid()), (0, 0));
        let caps = process.capabilities().as_ref().unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 3);
        assert_eq!(caps.ambient(), caps.bounding());
        assert!(caps.inheritable().is_none());
        let rlimit = &process.rlimits().as_ref().unwrap()[0];
        assert_eq!((rlimit.hard(), rlimit.soft()), (1024, 1024));

        let mounts = spec.mounts().as_ref().unwrap();
        let dests: Vec<_> = mounts
            .iter()
            .map(|m| m.destination().to_str().unwrap())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup"
            ]
        );
        assert!(mounts[0].options().is_none());

        let linux = spec.linux().as_ref().unwrap();
        let ns: Vec<_> = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect();
        use LinuxNamespaceType::*;
        assert_eq!(ns, [Pid, Network, Ipc, Uts, Mount]);
        let devices = linux
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .as_ref()
            .unwrap();
        assert!(!devices[0].allow());
        assert_eq!(devices[0].access().as_deref(), Some("rwm"));
        assert_eq!(linux.masked_paths().as_ref().unwrap().len(), 10);
        assert_eq!(linux.readonly_paths().as_ref().unwrap().len(), 5);
    }

    #[test]
    fn cgroup2_host_adds_cgroup_namespace_last() {
        let value = build(true, None);
        let ns = value["linux"]["namespaces"].as_array().unwrap();
        assert_eq!(ns.last().unwrap()["type"], "cgroup");
        assert_eq!(ns.len(), 6);
    }

    #[test]
    fn rootless_spec_maps_caller_and_drops_network_gid_and_resources() {
        let value = build(true, Some((1000, 100)));
        let spec = parse(&value);
        let linux = spec.linux().as_ref().unwrap();
        let ns: Vec<_> = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect();
        use LinuxNamespaceType::*;
        assert_eq!(ns, [Pid, Ipc, Uts, Mount, Cgroup, User]);
        let uid = &linux.uid_mappings().as_ref().unwrap()[0];
        assert_eq!(
            (uid.container_id(), uid.host_id(), uid.size()),
            (0, 1000, 1)
        );
        let gid = &linux.gid_mappings().as_ref().unwrap()[0];
        assert_eq!((gid.container_id(), gid.host_id(), gid.size()), (0, 100, 1));
        assert!(linux.resources().is_none());

        let mounts = spec.mounts().as_ref().unwrap();
        let pts = mounts
            .iter()
            .find(|m| m.destination().to_str() == Some("/dev/pts"))
            .unwrap();
        assert!(!pts
            .options()
            .as_ref()
            .unwrap()
            .iter()
            .any(|o| o.starts_with("gid=")));
        let sys = mounts
            .iter()
            .find(|m| m.destination().to_str() == Some("/sys"))
            .unwrap();
        assert_eq!(sys.typ().as_deref(), Some("none"));
        assert_eq!(sys.source().as_ref().unwrap().to_str(), Some("/sys"));
        assert_eq!(sys.options().as_ref().unwrap()[0], "rbind");
    }

    #[test]
    fn write_spec_creates_0644_file_and_refuses_to_overwrite() {
        let dir = TempDir::new("write");
        write_spec(&dir.0, false).unwrap();
        let path = dir.0.join("config.json");
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o644);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\n\t\"ociVersion\": \"1.0.2-dev\""));
        parse(&serde_json::from_str(&text).unwrap());

        let err = write_spec(&dir.0, true).unwrap_err();
        assert_eq!(err.to_string(), "File config.json exists. Remove it first");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }
}
