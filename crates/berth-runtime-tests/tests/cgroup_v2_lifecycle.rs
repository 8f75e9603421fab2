//! A container's cgroup2 directory through its life on the real kernel: freezing for
//! pause/resume, what the container sees of its cgroup (with and without a cgroup namespace),
//! exec joining it (or a sub-cgroup of it), and delete removing the whole tree it made.
//! Every test skips on a host that is not pure v2 (scripts/v2-lane.sh runs them).

use berth_runtime_tests::cgroup::{self, keyed};
use berth_runtime_tests::{fixture::cgroups_path_for, wait_for, Fixture};
use std::path::PathBuf;
use std::time::Duration;

fn cg_dir(fx: &Fixture) -> PathBuf {
    cgroup::v2_dir(&cgroups_path_for(&fx.id))
}

fn cg_read(fx: &Fixture, file: &str) -> String {
    let path = cg_dir(fx).join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// The counter a looping init writes to /tmp/n every 50 ms.
fn counter(fx: &Fixture) -> u64 {
    std::fs::read_to_string(fx.bundle.rootfs().join("tmp/n"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn pause_freezes_through_cgroup_freeze_and_resume_thaws() {
    if cgroup::skip_unless_v2() {
        return;
    }
    let script = "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done";
    let fx = Fixture::new("v2freeze", &["sh", "-c", script]);
    fx.run_detached();
    assert!(wait_for(Duration::from_secs(10), || counter(&fx) > 0));
    fx.rt.exec(&["pause", &fx.id]).ok();
    assert_eq!(fx.rt.status(&fx.id), "paused");
    assert_eq!(cg_read(&fx, "cgroup.freeze"), "1");
    assert_eq!(keyed(&cg_read(&fx, "cgroup.events"), "frozen"), Some(1));
    let frozen_at = counter(&fx);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(counter(&fx), frozen_at, "the counter moved while frozen");
    fx.rt.exec(&["resume", &fx.id]).ok();
    assert_eq!(fx.rt.status(&fx.id), "running");
    assert_eq!(cg_read(&fx, "cgroup.freeze"), "0");
    assert_eq!(keyed(&cg_read(&fx, "cgroup.events"), "frozen"), Some(0));
    assert!(
        wait_for(Duration::from_secs(10), || counter(&fx) > frozen_at),
        "the counter did not move after resume"
    );
}

#[test]
fn cgroup_namespace_shows_the_container_its_own_root() {
    if cgroup::skip_unless_v2() {
        return;
    }
    let mut fx = Fixture::new("v2cgns", &["sleep", "100"]);
    fx.bundle.set_namespace("cgroup", None);
    fx.bundle
        .set_resource("pids", serde_json::json!({"limit": 77}));
    fx.run_detached();
    let own = fx.exec_in(&[], &["cat", "/proc/self/cgroup"]).ok();
    assert_eq!(own.stdout.trim(), "0::/", "{own}");
    // /sys/fs/cgroup is a cgroup2 mount rooted at the container's cgroup.
    let max = fx.exec_in(&[], &["cat", "/sys/fs/cgroup/pids.max"]).ok();
    assert_eq!(max.stdout.trim(), "77");
    let procs = fx
        .exec_in(&[], &["cat", "/sys/fs/cgroup/cgroup.procs"])
        .ok();
    assert!(procs.stdout.lines().any(|l| l.trim() == "1"), "{procs}");
    // The host still sees the full path.
    let pid = fx.rt.pid(&fx.id);
    let host_view = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(host_view.trim(), format!("0::{}", cgroups_path_for(&fx.id)));
}

#[test]
fn without_a_cgroup_namespace_sys_fs_cgroup_is_still_the_containers_cgroup() {
    if cgroup::skip_unless_v2() {
        return;
    }
    let mut fx = Fixture::new("v2nocgns", &["sleep", "100"]);
    fx.bundle.remove_namespace("cgroup");
    fx.bundle
        .set_resource("pids", serde_json::json!({"limit": 66}));
    fx.run_detached();
    let own = fx.exec_in(&[], &["cat", "/proc/self/cgroup"]).ok();
    assert_eq!(
        own.stdout.trim(),
        format!("0::{}", cgroups_path_for(&fx.id))
    );
    let max = fx.exec_in(&[], &["cat", "/sys/fs/cgroup/pids.max"]).ok();
    assert_eq!(max.stdout.trim(), "66");
    let write = fx
        .exec_in(&[], &["sh", "-c", "echo 1 > /sys/fs/cgroup/pids.max"])
        .failed();
    assert!(write.stderr.contains("Read-only file system"), "{write}");
}

#[test]
fn exec_joins_the_container_cgroup_or_a_sub_cgroup_of_it() {
    if cgroup::skip_unless_v2() {
        return;
    }
    let fx = Fixture::new("v2exec", &["sleep", "100"]);
    fx.run_detached();
    let dir = cg_dir(&fx);
    let own = fx.exec_in(&[], &["cat", "/proc/self/cgroup"]).ok();
    assert_eq!(
        own.stdout.trim(),
        format!("0::{}", cgroups_path_for(&fx.id))
    );
    std::fs::create_dir(dir.join("sub")).unwrap();
    let sub = fx
        .exec_in(&["--cgroup", "sub"], &["cat", "/proc/self/cgroup"])
        .ok();
    assert_eq!(
        sub.stdout.trim(),
        format!("0::{}/sub", cgroups_path_for(&fx.id))
    );
    fx.exec_in(&["--cgroup", "nonexistent"], &["true"]).failed();
    fx.exec_in(&["--cgroup", "memory:sub"], &["true"]).failed();
}

#[test]
fn delete_removes_the_cgroup_its_children_and_the_parent_it_made() {
    if cgroup::skip_unless_v2() {
        return;
    }
    let fx = Fixture::new("v2delete", &["sleep", "100"]);
    fx.run_detached();
    let dir = cg_dir(&fx);
    let parent = dir.parent().unwrap().to_path_buf();
    std::fs::create_dir(dir.join("child")).unwrap();
    // A process of the container's in a child cgroup: delete must kill it and remove both.
    fx.exec_in(&["-d", "--cgroup", "child"], &["sleep", "100"])
        .ok();
    let in_child = std::fs::read_to_string(dir.join("child/cgroup.procs")).unwrap();
    assert_eq!(in_child.lines().count(), 1, "{in_child}");
    fx.rt.exec(&["delete", "-f", &fx.id]).ok();
    assert!(!dir.exists(), "{} left", dir.display());
    assert!(!parent.exists(), "{} left", parent.display());
    assert!(fx.rt.state(&fx.id).is_none());
}
