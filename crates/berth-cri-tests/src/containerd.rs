//! A containerd of the test's own: its config (the CRI plugin with a `berth` and a `runc`
//! handler, both `io.containerd.runc.v2`, the sandbox image and plain HTTP for the local
//! registry, CNI from the node's directory), root, state, socket and runtime roots all under one
//! directory. It never reads or writes /etc/containerd, /var/lib/containerd or /run/containerd's
//! socket; the shims' sockets in /run/containerd/s are named after our socket, so they are ours.

use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The CRI namespace containerd keeps Kubernetes' containers in.
pub const NAMESPACE: &str = "k8s.io";

/// One CRI runtime handler: a name Kubernetes' RuntimeClass refers to and the runc-compatible
/// binary the shim runs for it.
#[derive(Clone, Debug)]
pub struct Handler {
    pub name: String,
    pub binary: PathBuf,
}

pub struct Containerd {
    pub dir: PathBuf,
    pub socket: PathBuf,
    child: Option<Child>,
}

/// The containerd 1.6 configuration this test runs with (docs/cri.md explains each part).
pub fn config(dir: &Path, handlers: &[Handler], sandbox_image: &str) -> String {
    let d = dir.display();
    let mut toml = format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
# Plugins this node does not need: other snapshotters, tracing.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{d}/containerd.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  disable_apparmor = true
  # This machine's bounding set lacks CAP_SYS_RESOURCE, so no runtime can lower oom_score_adj
  # (the sandbox's -998): clamp it to containerd's own, as on a rootless node.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "{d}/cni/bin"
  conf_dir = "{d}/cni/conf"

[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "{d}/certs.d"

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
"#
    );
    for h in handlers {
        toml.push_str(&format!(
            r#"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}.options]
  BinaryName = "{binary}"
  Root = "{d}/runtime-root/{name}"
  SystemdCgroup = false
"#,
            name = h.name,
            binary = h.binary.display()
        ));
    }
    toml
}

/// `hosts.toml` for a plain-HTTP registry at `addr` (containerd's `config_path` layout).
pub fn registry_hosts(dir: &Path, addr: &str) {
    let host_dir = dir.join("certs.d").join(addr);
    std::fs::create_dir_all(&host_dir).expect("certs.d");
    std::fs::write(
        host_dir.join("hosts.toml"),
        format!("server = \"http://{addr}\"\n\n[host.\"http://{addr}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"),
    )
    .expect("hosts.toml");
}

/// The pod network: containerd's own loopback plugin brings `lo` up; `eth0` is one end of a veth
/// pair made, both ends, inside the pod's network namespace by a small plugin of ours, so a pod
/// has the address the CRI wants and no packet can leave it (this machine has no network for
/// pods to reach, and this kernel has no dummy devices).
pub fn cni(dir: &Path) {
    let bin = dir.join("cni/bin");
    let conf = dir.join("cni/conf");
    std::fs::create_dir_all(&bin).expect("cni bin dir");
    std::fs::create_dir_all(&conf).expect("cni conf dir");
    let loopback = ["/usr/lib/cni/loopback", "/opt/cni/bin/loopback"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("the CNI loopback plugin (apt-get install containernetworking-plugins)");
    std::os::unix::fs::symlink(loopback, bin.join("loopback")).expect("loopback link");
    let plugin = bin.join("berth-pod-net");
    std::fs::write(&plugin, DUMMY_PLUGIN).expect("cni plugin");
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("cni plugin mode");
    std::fs::write(
        conf.join("10-berth-pod.conflist"),
        r#"{"cniVersion": "1.0.0", "name": "berth-pod", "plugins": [{"type": "berth-pod-net"}]}"#,
    )
    .expect("cni conflist");
}

/// A CNI plugin (spec 1.0.0) giving the pod an `eth0` with a documentation address, its veth
/// peer in the same namespace.
const DUMMY_PLUGIN: &str = r#"#!/bin/sh
# berth-pod-net: eth0 and its veth peer both in the pod's netns (removed with the netns).
set -e
addr=192.0.2.10/24
case "$CNI_COMMAND" in
VERSION) echo '{"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0"]}' ;;
ADD)
    cat >/dev/null
    nsenter --net="$CNI_NETNS" ip link add "$CNI_IFNAME" type veth peer name "$CNI_IFNAME-peer"
    nsenter --net="$CNI_NETNS" ip addr add "$addr" dev "$CNI_IFNAME"
    # Both ends up, the peer found by listing (busybox's ip, in the v2 lane, names it itself).
    for link in $(nsenter --net="$CNI_NETNS" ip -o link | sed -n 's/^[0-9]*: \([^:@]*\).*/\1/p'); do
        nsenter --net="$CNI_NETNS" ip link set "$link" up
    done
    printf '{"cniVersion": "1.0.0", "interfaces": [{"name": "%s", "sandbox": "%s"}], "ips": [{"address": "%s", "interface": 0}]}\n' "$CNI_IFNAME" "$CNI_NETNS" "$addr"
    ;;
DEL | CHECK) cat >/dev/null ;;
*) echo "{\"code\": 4, \"msg\": \"unknown CNI_COMMAND $CNI_COMMAND\"}"; exit 1 ;;
esac
"#;

impl Containerd {
    /// Writes the config and starts containerd; waits for its socket.
    pub fn start(dir: &Path, handlers: &[Handler], sandbox_image: &str) -> Containerd {
        let conf = dir.join("containerd.toml");
        std::fs::write(&conf, config(dir, handlers, sandbox_image)).expect("containerd config");
        let socket = dir.join("containerd.sock");
        let log = std::fs::File::create(dir.join("containerd.log")).expect("containerd log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("containerd (apt-get install containerd)");
        let mut me = Containerd {
            dir: dir.to_path_buf(),
            socket,
            child: Some(child),
        };
        let up = berth_runtime_tests::wait_for(Duration::from_secs(30), || {
            me.socket.exists()
                || me
                    .child
                    .as_mut()
                    .is_some_and(|c| c.try_wait().ok().flatten().is_some())
        });
        assert!(
            up && me.socket.exists(),
            "containerd did not come up:\n{}",
            me.log_tail(40)
        );
        me
    }

    /// The last `n` lines of containerd's log (for failure messages).
    pub fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The runtime root the shim gives the handler's binary (`--root`).
    pub fn runtime_root(&self, handler: &str) -> PathBuf {
        self.dir.join("runtime-root").join(handler).join(NAMESPACE)
    }

    /// The shim's socket for the shim serving `id` (a pod's sandbox id): containerd names it
    /// after the hash of its own socket, the namespace and the id.
    pub fn shim_socket(&self, id: &str) -> PathBuf {
        let key = self.socket.join(NAMESPACE).join(id);
        let hash = Sha256::digest(key.as_os_str().as_encoded_bytes());
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        Path::new("/run/containerd/s").join(hex)
    }

    /// Shim processes started by this containerd: (pid, command line).
    pub fn shims(&self) -> Vec<(i32, String)> {
        let address = format!("-address {}", self.socket.display());
        crate::procs::all()
            .into_iter()
            .filter(|(_, cmd)| cmd.contains("containerd-shim") && cmd.contains(&address))
            .collect()
    }

    /// Stops containerd (SIGTERM, then SIGKILL after 10 s) and reaps it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills every shim of this containerd and removes their sockets (the failure path).
    pub fn kill_shims(&self) {
        for (pid, cmd) in self.shims() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            let id = cmd
                .split_whitespace()
                .skip_while(|w| *w != "-id")
                .nth(1)
                .unwrap_or_default()
                .to_string();
            if !id.is_empty() {
                let _ = std::fs::remove_file(self.shim_socket(&id));
            }
        }
    }
}

impl Drop for Containerd {
    /// Stops containerd, then kills the shims it leaves (a pod still running at the end).
    fn drop(&mut self) {
        self.stop();
        self.kill_shims();
    }
}
