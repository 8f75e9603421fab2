//! Recent mount and namespace features: a container without a mount namespace of its own
//! (chroot, its mounts in the host's table, all undone on delete), masked paths refused
//! there, the hostname and sysctls set in joined namespaces (a pod's, as containerd hands them
//! over), and each rootfsPropagation mode, also with the rootfs a mount point of its own.

use berth_runtime_tests::leaks::mounts_under;
use berth_runtime_tests::runtime::is_runc;
use berth_runtime_tests::{host_namespace, Fixture};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A fixture whose container shares the host's mount namespace.
fn no_mount_ns(name: &str, args: &[&str]) -> Fixture {
    let mut fx = Fixture::new(name, args);
    fx.bundle.remove_namespace("mount");
    let linux = fx.bundle.spec["linux"].as_object_mut().unwrap();
    linux.remove("maskedPaths");
    linux.remove("readonlyPaths");
    fx.bundle.spec["root"]["readonly"] = json!(false);
    fx.bundle.write();
    fx
}

fn assert_no_state(fx: &Fixture) {
    let entries: Vec<_> = std::fs::read_dir(&fx.rt.root)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(entries.is_empty(), "state left: {entries:?}");
}

#[test]
fn run_without_mount_namespace_sees_its_rootfs_and_leaves_no_mounts() {
    if is_runc() {
        eprintln!(
            "skipped: runc 1.1 leaves a shared-namespace container's mounts in the host's table"
        );
        return;
    }
    let fx = no_mount_ns("nomntns", &["ls", "/"]);
    std::fs::write(fx.bundle.rootfs().join("rootfs-marker"), "").unwrap();
    let out = fx.run().ok();
    let names: Vec<&str> = out.stdout.split_whitespace().collect();
    for want in ["bin", "etc", "proc", "rootfs-marker"] {
        assert!(names.contains(&want), "`ls /` lacks {want}: {out}");
    }
    assert!(
        !names.contains(&"bundle"),
        "container sees the host, not its rootfs: {out}"
    );
    let left = mounts_under(&fx.bundle.dir);
    assert!(left.is_empty(), "mounts left after run: {left:?}");
}

#[test]
fn delete_without_mount_namespace_undoes_the_mounts_made_in_the_host_table() {
    if is_runc() {
        eprintln!(
            "skipped: runc 1.1 leaves a shared-namespace container's mounts in the host's table"
        );
        return;
    }
    let fx = no_mount_ns("nomntnsdel", &["sleep", "100"]);
    fx.run_detached();
    let during = mounts_under(&fx.bundle.rootfs());
    assert!(
        !during.is_empty(),
        "no mount under the rootfs in the host's table while running (is it really sharing?)"
    );
    fx.rt.exec(&["kill", &fx.id, "KILL"]).ok();
    fx.rt.wait_status(&fx.id, "stopped");
    fx.rt.exec(&["delete", &fx.id]).ok();
    let left = mounts_under(&fx.bundle.dir);
    assert!(left.is_empty(), "mounts left after delete: {left:?}");
    assert_no_state(&fx);
}

#[test]
fn masked_paths_without_mount_namespace_are_refused_without_leftovers() {
    let mut fx = no_mount_ns("nomntnsmask", &["true"]);
    fx.bundle.spec["linux"]["maskedPaths"] = json!(["/proc/kcore"]);
    let out = fx.create().failed();
    // runc 1.1 says only "unable to restrict sys entries without a private MNT namespace".
    assert!(
        is_runc() || out.stderr.contains("maskedPaths"),
        "error does not name maskedPaths: {out}"
    );
    assert_no_state(&fx);
    let left = mounts_under(&fx.bundle.dir);
    assert!(left.is_empty(), "mounts left after failed create: {left:?}");
}

/// A helper process in a fresh namespace of `kind` (unshare flag), killed on drop.
struct Holder(Child);

impl Holder {
    fn new(flag: &str, kind: &str) -> Holder {
        let child = Command::new("unshare")
            .args([flag, "sleep", "100"])
            .stdout(Stdio::null())
            .spawn()
            .expect("unshare");
        let holder = Holder(child);
        let link = holder.ns_path(kind);
        let host = host_namespace(kind);
        let ok = berth_runtime_tests::wait_for(Duration::from_secs(5), || {
            std::fs::read_link(&link).is_ok_and(|l| l.to_string_lossy() != host)
        });
        assert!(ok, "unshare {flag} never entered a new {kind} namespace");
        holder
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn ns_path(&self, kind: &str) -> String {
        format!("/proc/{}/ns/{kind}", self.pid())
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn host_hostname() -> String {
    nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn hostname_is_set_in_a_joined_uts_namespace() {
    let holder = Holder::new("--uts", "uts");
    let before = host_hostname();
    let mut fx = Fixture::new("joinuts", &["hostname"]);
    fx.bundle.set_namespace("uts", Some(&holder.ns_path("uts")));
    fx.bundle.spec["hostname"] = json!("joined-box");
    let out = fx.run().ok();
    assert_eq!(out.stdout.trim(), "joined-box", "{out}");
    let inside = Command::new("nsenter")
        .args(["-t", &holder.pid().to_string(), "-u", "hostname"])
        .output()
        .expect("nsenter");
    assert_eq!(
        String::from_utf8_lossy(&inside.stdout).trim(),
        "joined-box",
        "hostname not set in the joined namespace"
    );
    assert_eq!(host_hostname(), before, "host hostname changed");
}

/// Runs `head -n1 /proc/self/mountinfo` with `rootfsPropagation` set to `mode`.
fn first_mountinfo_line(mode: &str) -> String {
    let mut fx = Fixture::new(
        &format!("prop{mode}"),
        &["head", "-n1", "/proc/self/mountinfo"],
    );
    fx.bundle.spec["linux"]["rootfsPropagation"] = json!(mode);
    let out = fx.run().ok();
    out.stdout.trim().to_string()
}

#[test]
fn rootfs_propagation_unbindable_makes_the_root_unbindable() {
    if is_runc() {
        eprintln!("skipped: runc 1.1 cannot make the rootfs unbindable (added in runc 1.2)");
        return;
    }
    let line = first_mountinfo_line("unbindable");
    assert!(
        line.split(" - ")
            .next()
            .unwrap_or_default()
            .contains("unbindable"),
        "root mount is not unbindable: {line:?}"
    );
}

/// The optional fields of a mountinfo line (between the mount options and " - ").
fn optional_fields(line: &str) -> Vec<String> {
    let head = line.split(" - ").next().unwrap_or_default();
    head.split(' ').skip(6).map(str::to_string).collect()
}

#[test]
fn rootfs_propagation_private_rslave_and_shared_all_run() {
    let private = first_mountinfo_line("private");
    let fields = optional_fields(&private);
    assert!(
        fields
            .iter()
            .all(|f| !f.starts_with("shared:") && !f.starts_with("master:")),
        "private root has propagation peers: {private:?}"
    );
    // A slave of the host's root: never shared itself (master: only when the host's is shared).
    let rslave = first_mountinfo_line("rslave");
    assert!(
        optional_fields(&rslave)
            .iter()
            .all(|f| !f.starts_with("shared:")),
        "rslave root is shared: {rslave:?}"
    );
    let shared = first_mountinfo_line("shared");
    // runc 1.1 runs it but leaves the pivoted root private.
    assert!(
        is_runc()
            || optional_fields(&shared)
                .iter()
                .any(|f| f.starts_with("shared:")),
        "shared root is not shared: {shared:?}"
    );
}

#[test]
fn failed_start_without_mount_namespace_leaves_no_mounts() {
    if is_runc() {
        eprintln!(
            "skipped: runc 1.1 leaves a shared-namespace container's mounts in the host's table"
        );
        return;
    }
    let fx = no_mount_ns("nomntnsfail", &["/no/such/binary"]);
    fx.run().failed();
    let left = mounts_under(&fx.bundle.dir);
    assert!(left.is_empty(), "mounts left after a failed run: {left:?}");
}

#[test]
fn force_delete_of_running_container_without_mount_namespace_leaves_no_mounts() {
    if is_runc() {
        eprintln!(
            "skipped: runc 1.1 leaves a shared-namespace container's mounts in the host's table"
        );
        return;
    }
    let fx = no_mount_ns("nomntnsforce", &["sleep", "100"]);
    fx.run_detached();
    fx.rt.exec(&["delete", "-f", &fx.id]).ok();
    let left = mounts_under(&fx.bundle.dir);
    assert!(left.is_empty(), "mounts left after delete -f: {left:?}");
    assert_no_state(&fx);
}

/// A pod's `net.*` sysctls, as containerd hands them to the sandbox: the network namespace is the
/// pod's (made by containerd, joined by path), not a new one. It is applied there, not on the host.
#[test]
fn net_sysctl_applies_in_a_network_namespace_joined_by_path() {
    let holder = Holder::new("--net", "net");
    let mut fx = Fixture::new(
        "sysctljoin",
        &["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"],
    );
    fx.bundle
        .set_namespace("network", Some(&holder.ns_path("net")));
    fx.bundle.spec["linux"]["sysctl"] = json!({"net.ipv4.ip_unprivileged_port_start": "80"});
    let host = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap();
    let out = fx.run().ok();
    assert_eq!(out.stdout.trim(), "80", "{out}");
    let inside = Command::new("nsenter")
        .args(["-t", &holder.pid().to_string(), "-n", "cat"])
        .arg("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .output()
        .expect("nsenter");
    assert_eq!(String::from_utf8_lossy(&inside.stdout).trim(), "80");
    let after = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap();
    assert_eq!(after, host, "the host's sysctl changed");
}

/// Joining the runtime's own network namespace by path is still the host's: a sysctl is refused.
#[test]
fn net_sysctl_in_the_hosts_network_namespace_joined_by_path_is_refused() {
    let mut fx = Fixture::new("sysctlhost", &["true"]);
    let own = format!("/proc/{}/ns/net", std::process::id());
    fx.bundle.set_namespace("network", Some(&own));
    fx.bundle.spec["linux"]["sysctl"] = json!({"net.ipv4.ip_unprivileged_port_start": "80"});
    let out = fx.create().failed();
    assert!(
        out.stderr.contains("net.ipv4.ip_unprivileged_port_start"),
        "error does not name the sysctl: {out}"
    );
    assert_no_state(&fx);
}

/// Unmounts (lazily) a mount the test made, also when the test fails.
struct MountGuard(std::path::PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// containerd mounts the image's overlay at the bundle's `rootfs` and asks for `rshared` when a
/// pod has a Bidirectional mount: pivot_root needs the rootfs mount itself made private first.
#[test]
fn rootfs_propagation_rshared_with_the_rootfs_a_mount_point_runs() {
    let mut fx = Fixture::new("proprootmnt", &["head", "-n1", "/proc/self/mountinfo"]);
    fx.bundle.spec["linux"]["rootfsPropagation"] = json!("rshared");
    let rootfs = fx.bundle.rootfs();
    nix::mount::mount(
        Some(&rootfs),
        &rootfs,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .expect("bind the rootfs onto itself");
    let _unmount = MountGuard(rootfs);
    let out = fx.run().ok();
    assert!(
        is_runc()
            || optional_fields(&out.stdout)
                .iter()
                .any(|f| f.starts_with("shared:")),
        "shared root is not shared: {out}"
    );
}
