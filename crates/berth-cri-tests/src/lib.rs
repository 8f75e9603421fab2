//! berth-runtime on a Kubernetes node: a real containerd (its CRI plugin, the runc v2 shim) with
//! a `berth` and a `runc` runtime handler, a real registry serving berth's static pause as the
//! sandbox image, and a CRI client over gRPC. `Node` owns all of it under one temporary directory and, when
//! dropped (also when a test panics), stops containerd, kills its shims and whatever is left in
//! the node's cgroups, unmounts and removes everything. It never touches the host's containerd.
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

pub mod cgroups;
pub mod containerd;
pub mod cri;
pub mod image;
pub mod pod;
pub mod procs;
pub mod registry;

pub use berth_runtime_tests::wait_for;
pub use containerd::{Containerd, Handler};
pub use cri::Cri;

use std::path::{Path, PathBuf};
use std::process::Command;

/// True when `tool` is on PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// What a node needs that may be missing: `None` when everything is there.
pub fn missing_tools() -> Option<String> {
    let missing: Vec<&str> = [
        "containerd",
        "containerd-shim-runc-v2",
        "docker-registry",
        "runc",
        "nsenter",
        "ip",
    ]
    .into_iter()
    .filter(|t| !have(t))
    .collect();
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// The two handlers compared: berth-runtime (the workspace's build, or `$BERTH_RUNTIME`) and
/// Debian's runc.
pub fn handlers() -> Vec<Handler> {
    let berth = berth_runtime_tests::runtime::runtime_binary();
    let berth = berth.canonicalize().unwrap_or_else(|e| {
        panic!(
            "{}: {e} (build it first: cargo build -p berth-runtime)",
            berth.display()
        )
    });
    let runc = ["/usr/sbin/runc", "/usr/bin/runc"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("runc (apt-get install runc)");
    vec![
        Handler {
            name: "berth".into(),
            binary: berth,
        },
        Handler {
            name: "runc".into(),
            binary: runc,
        },
    ]
}

/// A node: registry, images, containerd with the CRI, a connected client, the cgroup parents.
/// Fields drop in order, each part cleaning up after itself (so does a half-started node):
/// containerd and its shims first, then whatever is left in the node's cgroups, the registry,
/// and last the directory, unmounted and removed.
pub struct Node {
    pub cri: Cri,
    pub containerd: Containerd,
    pub cgroups: cgroups::NodeCgroups,
    pub registry: registry::Registry,
    /// The sandbox image's reference (containerd's `sandbox_image`).
    pub pause: String,
    /// The workload image's reference.
    pub busybox: String,
    pub dir: ScratchDir,
}

/// The node's directory: unmounted (everything below it) and removed when dropped.
pub struct ScratchDir(pub PathBuf);

impl std::ops::Deref for ScratchDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        berth_runtime_tests::leaks::unmount_under(&self.0);
        if berth_runtime_tests::leaks::mounts_under(&self.0).is_empty() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            eprintln!("node: not removing {} (still mounted)", self.0.display());
        }
    }
}

impl Node {
    /// Starts everything; `handlers` become the CRI's runtime handlers.
    pub fn start(handlers: &[Handler]) -> Node {
        assert!(
            berth_runtime_tests::is_root(),
            "a CRI node needs root (namespaces, cgroups, mounts)"
        );
        let dir = ScratchDir(nix::unistd::mkdtemp("/tmp/berth-cri-XXXXXX").expect("mkdtemp"));
        let cgroups = cgroups::NodeCgroups::new();
        let registry = registry::Registry::start(&dir);
        let scratch = dir.join("images");
        let pause = registry.push("berth/pause", "1", &image::Image::pause(&scratch));
        let busybox = registry.push("berth/busybox", "1", &image::Image::busybox(&scratch));
        containerd::registry_hosts(&dir, &registry.addr);
        containerd::cni(&dir);
        let containerd = Containerd::start(&dir, handlers, &pause);
        // The socket file can exist a moment before containerd listens on it (ECONNREFUSED).
        let mut connected = Err(String::new());
        wait_for(std::time::Duration::from_secs(20), || {
            connected = Cri::connect(&containerd.socket);
            connected.is_ok()
        });
        let cri = connected.unwrap_or_else(|e| panic!("{e}\n{}", containerd.log_tail(40)));
        let ready = wait_for(std::time::Duration::from_secs(20), || cri.version().is_ok());
        assert!(
            ready,
            "containerd's CRI never answered Version:\n{}",
            containerd.log_tail(40)
        );
        Node {
            cri,
            containerd,
            cgroups,
            registry,
            pause,
            busybox,
            dir,
        }
    }

    /// The directory pods keep their CRI logs in.
    pub fn log_dir(&self, pod: &str) -> PathBuf {
        self.dir.join("pod-logs").join(pod)
    }

    /// Mount points left under the node's directory.
    pub fn mounts(&self) -> Vec<PathBuf> {
        berth_runtime_tests::leaks::mounts_under(&self.dir)
    }

    /// Processes of this node other than containerd and the registry: shims, runtimes (their
    /// command line names the node's directory), and anything in the node's cgroups.
    pub fn stray_processes(&self) -> Vec<(i32, String)> {
        let dir = self.dir.display().to_string();
        let containerd = self.containerd.socket.display().to_string();
        procs::all()
            .into_iter()
            .filter(|(pid, cmd)| {
                let in_node_cgroup = procs::cgroups(*pid)
                    .iter()
                    .any(|c| c.starts_with(&format!("{}/", self.cgroups.top)));
                in_node_cgroup
                    || cmd.contains("containerd-shim") && cmd.contains(&containerd)
                    || (cmd.contains(&dir)
                        && !cmd.starts_with("containerd --config")
                        && !cmd.starts_with("docker-registry"))
            })
            .collect()
    }
}

/// Reads a CRI log file: (stream, tag, text) per line, panicking on a line not in the CRI's
/// format (`<RFC 3339 nano time> <stdout|stderr> <F|P> <text>`).
pub fn parse_cri_log(path: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| {
            let mut parts = line.splitn(4, ' ');
            let (Some(time), Some(stream), Some(tag)) = (parts.next(), parts.next(), parts.next())
            else {
                panic!("{}: not a CRI log line: {line:?}", path.display());
            };
            assert!(
                time.len() >= 20 && time.as_bytes()[10] == b'T',
                "{}: bad time in {line:?}",
                path.display()
            );
            assert!(
                matches!(stream, "stdout" | "stderr") && matches!(tag, "F" | "P"),
                "{}: bad stream or tag in {line:?}",
                path.display()
            );
            (
                stream.to_string(),
                tag.to_string(),
                parts.next().unwrap_or_default().to_string(),
            )
        })
        .collect()
}
