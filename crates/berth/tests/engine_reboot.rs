//! A reboot without a daemon: every process gone, every mount gone, `/run` (the runroot) emptied —
//! but `--root` kept. The next berth command must report the truth (`Exited`, not `Up`) and clean
//! what is left (cgroup directories, the container's files), and the container must start again.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;

use fixture::{cgroup_dirs, mounts_under, processes_of, wait_until, Sandbox, IMAGE};
use std::time::Duration;

/// What a reboot does to berth's state: processes killed, mounts gone, the runroot emptied. The
/// cgroup directories are left in place (a reboot would remove them; berth must cope either way).
fn simulate_reboot(sb: &Sandbox, ids: &[String]) {
    for id in ids {
        for (pid, _) in processes_of(id) {
            // SAFETY: SIGKILL to a process of this test's own container (found by its ID).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        wait_until(
            "the container's processes are gone",
            Duration::from_secs(10),
            || processes_of(id).is_empty(),
        );
    }
    for m in mounts_under(&sb.dir()).into_iter().rev() {
        let c = std::ffi::CString::new(m.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: detaching a mount this test's berth made under its own temp dir.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
    std::fs::remove_dir_all(&sb.b.runroot).expect("empty the runroot");
    std::fs::create_dir_all(&sb.b.runroot).expect("runroot");
}

#[test]
fn after_a_reboot_running_containers_read_exited_and_rm_cleans_everything() {
    let sb = Sandbox::new();
    let detached = sb.run_d(&["--name", "d1", IMAGE, "sleep", "300"]);
    let restartable = sb.run_d(&["--name", "d2", "--restart", "no", IMAGE, "sleep", "300"]);
    sb.track(&detached);
    sb.track(&restartable);
    assert_eq!(sb.status("d1"), "running");
    simulate_reboot(&sb, &[detached.clone(), restartable.clone()]);

    let ps = sb.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}} {{.Status}}"]);
    for name in ["d1", "d2"] {
        let line = ps
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} listed: {ps}"));
        assert!(line.contains(" exited Exited ("), "{line}");
    }
    assert!(
        sb.ok(&["ps", "-q"]).trim().is_empty(),
        "nothing reads as running"
    );

    // The survivor starts again after the reboot, then everything is removed without leaks.
    sb.ok(&["start", "d2"]);
    assert_eq!(sb.status("d2"), "running");
    sb.ok(&["rm", "-f", "d2"]);
    sb.ok(&["rm", "d1"]);
    assert!(
        cgroup_dirs(&detached).is_empty(),
        "{:?}",
        cgroup_dirs(&detached)
    );
    sb.assert_clean();
}
