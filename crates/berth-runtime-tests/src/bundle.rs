//! A busybox bundle in a temp dir: rootfs from Debian's busybox-static plus a config.json
//! generated here (modelled on `runc spec`, terminal off). It never asks the runtime under
//! test for a spec; the fixture that owns it removes it after unmounting anything left.

use serde_json::{json, Value};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where the busybox binary is copied from.
pub const BUSYBOX: &str = "/bin/busybox";

pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Value,
}

fn applets() -> &'static Vec<String> {
    static APPLETS: OnceLock<Vec<String>> = OnceLock::new();
    APPLETS.get_or_init(|| {
        let out = std::process::Command::new(BUSYBOX)
            .arg("--list")
            .output()
            .unwrap_or_else(|e| panic!("{BUSYBOX} --list: {e} (install busybox-static)"));
        assert!(out.status.success(), "{BUSYBOX} --list failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    })
}

/// Writes a busybox root filesystem at `rootfs`.
pub fn make_rootfs(rootfs: &Path) {
    for d in [
        "bin", "etc", "proc", "sys", "dev", "tmp", "root", "home", "var", "run",
    ] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::set_permissions(
        rootfs.join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
    for applet in applets() {
        if applet != "busybox" {
            let _ = symlink("busybox", rootfs.join("bin").join(applet));
        }
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\ntty:x:5:\ndisk:x:6:\nnogroup:x:65534:\n",
    )
    .unwrap();
}

/// The default config.json, close to `runc spec` 1.1.5 but with `terminal: false`,
/// a writable root, the given args and cgroupsPath, and a marker env var used by the
/// leak check to find the container's processes.
pub fn default_spec(args: &[&str], cgroups_path: &str, marker: &str) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
                format!("BERTH_TEST_ID={marker}"),
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps,
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true,
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "berth",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"},
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi",
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
            ],
        },
    })
}

impl Bundle {
    /// Creates `dir/rootfs` and a default spec (not yet written: call `write`).
    pub fn busybox_at(dir: PathBuf, args: &[&str], cgroups_path: &str, marker: &str) -> Bundle {
        make_rootfs(&dir.join("rootfs"));
        let bundle = Bundle {
            spec: default_spec(args, cgroups_path, marker),
            dir,
        };
        bundle.write();
        bundle
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// Writes the spec to `config.json`.
    pub fn write(&self) {
        let text = serde_json::to_string_pretty(&self.spec).unwrap();
        std::fs::write(self.config_path(), text).unwrap();
    }

    pub fn set_args(&mut self, args: &[&str]) -> &mut Self {
        self.spec["process"]["args"] = json!(args);
        self
    }

    /// Adds (or replaces) a namespace entry; `path` joins an existing one.
    pub fn set_namespace(&mut self, kind: &str, path: Option<&str>) -> &mut Self {
        self.remove_namespace(kind);
        let mut ns = json!({"type": kind});
        if let Some(p) = path {
            ns["path"] = json!(p);
        }
        self.spec["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(ns);
        self
    }

    pub fn remove_namespace(&mut self, kind: &str) -> &mut Self {
        self.spec["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != kind);
        self
    }

    /// Sets `linux.resources.<key>` to `value`.
    pub fn set_resource(&mut self, key: &str, value: Value) -> &mut Self {
        self.spec["linux"]["resources"][key] = value;
        self
    }

    pub fn add_mount(&mut self, mount: Value) -> &mut Self {
        self.spec["mounts"].as_array_mut().unwrap().push(mount);
        self
    }

    pub fn push_env(&mut self, kv: &str) -> &mut Self {
        self.spec["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!(kv));
        self
    }

    /// Sets every capability set to `caps` (ambient included) and inheritable to `inheritable`.
    pub fn set_capabilities(&mut self, caps: &[&str], inheritable: &[&str]) -> &mut Self {
        self.spec["process"]["capabilities"] = json!({
            "bounding": caps, "effective": caps, "permitted": caps,
            "inheritable": inheritable, "ambient": [],
        });
        self
    }
}

/// runc's `ToRootless` (what `runc spec --rootless` applies) on a spec: a user namespace mapping
/// container root to `uid`/`gid` alone, no network namespace, /sys bound from the host, no
/// `uid=`/`gid=` mount options, no resources. It also drops the cgroupsPath (runc's spec has
/// none; an explicit one the user may not make is an error, as with runc).
pub fn to_rootless(spec: &mut Value, uid: u32, gid: u32) {
    let linux = &mut spec["linux"];
    let namespaces = linux["namespaces"].as_array_mut().unwrap();
    namespaces.retain(|ns| !matches!(ns["type"].as_str(), Some("network" | "user")));
    namespaces.push(json!({"type": "user"}));
    linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    let linux = linux.as_object_mut().unwrap();
    linux.remove("resources");
    linux.remove("cgroupsPath");
    for mount in spec["mounts"].as_array_mut().unwrap() {
        if mount["destination"] == "/sys" {
            *mount = json!({"destination": "/sys", "type": "none", "source": "/sys",
                            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            continue;
        }
        if let Some(options) = mount["options"].as_array_mut() {
            options.retain(|o| {
                let o = o.as_str().unwrap_or_default();
                !o.starts_with("uid=") && !o.starts_with("gid=")
            });
        }
    }
}
