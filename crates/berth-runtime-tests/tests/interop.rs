//! Real peers drive the runtime: podman (`--runtime`) and containerd (`ctr run
//! --runc-binary`), each with private storage under the fixture's temp dir and a busybox
//! image imported locally (no network). Skipped, with the reason printed, when absent.

use berth_runtime_tests::{bundle::make_rootfs, runtime::runtime_binary, wait_for, Fixture};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const IMAGE: &str = "localhost/berth-busybox:latest";

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[track_caller]
fn check(what: &str, out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// podman with private storage (vfs: no overlay mounts to leak) and this runtime.
fn podman(fx: &Fixture) -> Command {
    let dir = fx.scratch("podman");
    let conf = dir.join("containers.conf");
    // This host's hard nofile limit is below podman's default ulimit.
    std::fs::write(&conf, "[containers]\ndefault_ulimits = []\n").unwrap();
    let mut cmd = Command::new("podman");
    cmd.env("CONTAINERS_CONF", &conf)
        .arg("--root")
        .arg(dir.join("storage"))
        .arg("--runroot")
        .arg(dir.join("run"))
        .arg("--tmpdir")
        .arg(dir.join("tmp"))
        .args([
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ])
        .arg("--runtime")
        .arg(runtime_binary())
        .stdin(Stdio::null());
    cmd
}

/// A tarball of the busybox rootfs.
fn rootfs_tarball(fx: &Fixture) -> PathBuf {
    let rootfs = fx.scratch("image-rootfs");
    make_rootfs(&rootfs);
    let tar = fx.base.join("busybox.tar");
    check(
        "tar",
        Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()
            .unwrap(),
    );
    tar
}

fn podman_import(fx: &Fixture) {
    let tar = rootfs_tarball(fx);
    check(
        "podman import",
        podman(fx)
            .arg("import")
            .arg(&tar)
            .arg(IMAGE)
            .output()
            .unwrap(),
    );
}

#[test]
fn podman_runs_a_container_with_this_runtime() {
    if !have("podman") {
        eprintln!("skipped: podman is not installed");
        return;
    }
    let fx = Fixture::new("podman", &["true"]);
    podman_import(&fx);
    let name = fx.new_id("podman-ctr");
    let out = podman(&fx)
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--name",
            &name,
            IMAGE,
            "sh",
            "-c",
            "echo hi; echo pid=$$",
        ])
        .output()
        .unwrap();
    let stdout = check("podman run", out);
    assert_eq!(stdout.lines().collect::<Vec<_>>(), ["hi", "pid=1"]);
}

/// A containerd started for one test; killed (and waited for) on drop.
struct Containerd {
    child: Child,
    address: PathBuf,
}

impl Containerd {
    fn start(dir: &Path) -> Containerd {
        let address = dir.join("containerd.sock");
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{}\"\nstate = \"{}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{}\"\n",
                dir.join("root").display(),
                dir.join("state").display(),
                address.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd");
        let up = wait_for(Duration::from_secs(20), || address.exists());
        let me = Containerd { child, address };
        assert!(
            up,
            "containerd did not come up; see {}",
            dir.join("containerd.log").display()
        );
        me
    }

    fn ctr(&self) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(&self.address)
            .args(["--namespace", "berth-test"])
            .stdin(Stdio::null());
        cmd
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn containerd_runs_a_container_with_this_runtime() {
    if !have("ctr") || !have("containerd") {
        eprintln!("skipped: containerd is not installed");
        return;
    }
    if !have("podman") {
        eprintln!("skipped: podman is needed to build the image archive for containerd");
        return;
    }
    let fx = Fixture::new("ctrd", &["true"]);
    podman_import(&fx);
    let archive = fx.base.join("busybox-docker.tar");
    check(
        "podman save",
        podman(&fx)
            .args(["save", "--format", "docker-archive", "-o"])
            .arg(&archive)
            .arg(IMAGE)
            .output()
            .unwrap(),
    );
    let cd = Containerd::start(&fx.scratch("containerd"));
    check(
        "ctr image import",
        cd.ctr()
            .args(["image", "import", "--snapshotter", "native"])
            .arg(&archive)
            .output()
            .unwrap(),
    );
    let id = fx.new_id("ctr-ctr");
    let out = cd
        .ctr()
        .args(["run", "--rm", "--snapshotter", "native", "--runc-binary"])
        .arg(runtime_binary())
        .args([IMAGE, &id, "sh", "-c", "echo hi; echo pid=$$"])
        .output()
        .unwrap();
    let stdout = check("ctr run", out);
    assert_eq!(stdout.lines().collect::<Vec<_>>(), ["hi", "pid=1"]);
}
