//! Namespaces as the container sees them: each new namespace differs from the host's,
//! a joined one is the one named by path, the user namespace maps ids, and
//! hostname/domainname/PID 1 hold inside.

use berth_runtime_tests::{host_namespace, Fixture};
use serde_json::json;
use std::process::{Command, Stdio};

/// Runs `readlink /proc/self/ns/<kind>` inside a container that has the namespace too.
fn namespace_inside(kind: &str, spec_type: &str) -> String {
    let link = format!("/proc/self/ns/{kind}");
    let mut fx = Fixture::new(&format!("ns-{kind}"), &["readlink", &link]);
    fx.bundle.set_namespace(spec_type, None);
    let out = fx.run().ok();
    out.stdout.trim().to_string()
}

macro_rules! namespace_differs {
    ($name:ident, $kind:expr, $spec_type:expr) => {
        #[test]
        fn $name() {
            let inside = namespace_inside($kind, $spec_type);
            let host = host_namespace($kind);
            assert!(
                inside.starts_with(&format!("{}:[", $kind)),
                "odd link {inside:?}"
            );
            assert_ne!(inside, host, "{} namespace is the host's", $kind);
        }
    };
}

namespace_differs!(pid_namespace_differs_from_host, "pid", "pid");
namespace_differs!(net_namespace_differs_from_host, "net", "network");
namespace_differs!(ipc_namespace_differs_from_host, "ipc", "ipc");
namespace_differs!(uts_namespace_differs_from_host, "uts", "uts");
namespace_differs!(mnt_namespace_differs_from_host, "mnt", "mount");
namespace_differs!(cgroup_namespace_differs_from_host, "cgroup", "cgroup");

#[test]
fn init_is_pid_1() {
    let fx = Fixture::new("pid1", &["sh", "-c", "echo $$"]);
    assert_eq!(fx.run().ok().stdout.trim(), "1");
}

#[test]
fn hostname_is_set() {
    let mut fx = Fixture::new("uts", &["hostname"]);
    fx.bundle.spec["hostname"] = json!("berth-box");
    assert_eq!(fx.run().ok().stdout.trim(), "berth-box");
}

#[test]
fn domainname_is_set() {
    if berth_runtime_tests::runtime::is_runc() {
        eprintln!("skipped: runc 1.1 ignores `domainname` (added in runc 1.2)");
        return;
    }
    let mut fx = Fixture::new("domain", &["cat", "/proc/sys/kernel/domainname"]);
    fx.bundle.spec["domainname"] = json!("example.test");
    assert_eq!(fx.run().ok().stdout.trim(), "example.test");
}

/// Chowns every file below `dir` (not following symlinks) by `offset`.
fn shift_owner(dir: &std::path::Path, offset: u32) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(dir).unwrap();
    std::os::unix::fs::lchown(dir, Some(meta.uid() + offset), Some(meta.gid() + offset)).unwrap();
    if meta.is_dir() {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            shift_owner(&e.path(), offset);
        }
    }
}

#[test]
fn user_namespace_maps_root_to_host_uid_100000() {
    let mut fx = Fixture::new(
        "userns",
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g",
        ],
    );
    fx.bundle.set_namespace("user", None);
    fx.bundle.spec["linux"]["uidMappings"] =
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    fx.bundle.spec["linux"]["gidMappings"] =
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    shift_owner(&fx.bundle.rootfs(), 100000);
    let out = fx.run().ok();
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(
        words,
        ["0", "100000", "65536", "0", "100000", "65536", "0", "0"],
        "{out}"
    );
}

#[test]
fn joins_an_existing_network_namespace_by_path() {
    let mut holder = Command::new("unshare")
        .args(["--net", "sleep", "60"])
        .stdout(Stdio::null())
        .spawn()
        .expect("unshare");
    let ns_path = format!("/proc/{}/ns/net", holder.id());
    let ok = berth_runtime_tests::wait_for(std::time::Duration::from_secs(5), || {
        std::fs::read_link(&ns_path)
            .ok()
            .map(|l| l.to_string_lossy().into_owned())
            != Some(host_namespace("net"))
    });
    let target = std::fs::read_link(&ns_path)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let result = std::panic::catch_unwind(|| {
        assert!(ok, "unshare never entered a new netns");
        let mut fx = Fixture::new("joinnet", &["readlink", "/proc/self/ns/net"]);
        fx.bundle.set_namespace("network", Some(&ns_path));
        fx.run().ok().stdout.trim().to_string()
    });
    let _ = holder.kill();
    let _ = holder.wait();
    let inside = result.unwrap_or_else(|e| std::panic::resume_unwind(e));
    assert_eq!(inside, target);
}
