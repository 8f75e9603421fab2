//! The leak guard itself: a test that leaves a mount, a cgroup or a process behind
//! fails, and the guard removes what it found.

use berth_runtime_tests::{cgroup, fixture::cgroups_path_for, leaks, Fixture};
use std::panic::{catch_unwind, AssertUnwindSafe};

fn guard_report(setup: impl FnOnce(&Fixture)) -> String {
    let err = catch_unwind(AssertUnwindSafe(|| {
        let fx = Fixture::new("guard", &["true"]);
        setup(&fx);
    }))
    .expect_err("the leak guard let a leak pass");
    err.downcast_ref::<String>().cloned().unwrap_or_default()
}

#[test]
fn guard_fails_on_a_leftover_mount_and_unmounts_it() {
    let mut target = None;
    let report = guard_report(|fx| {
        let dir = fx.scratch("mnt");
        nix::mount::mount(
            Some("tmpfs"),
            &dir,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        target = Some(fx.base.clone());
    });
    assert!(report.contains("mounts left"), "{report}");
    assert!(leaks::mounts_under(&target.unwrap()).is_empty());
}

#[test]
fn guard_fails_on_a_leftover_cgroup_and_removes_it() {
    let mut id = String::new();
    let report = guard_report(|fx| {
        id = fx.id.clone();
        std::fs::create_dir_all(cgroup::dir("pids", &cgroups_path_for(&fx.id))).unwrap();
    });
    assert!(report.contains("cgroup left"), "{report}");
    assert!(leaks::cgroups_named(&id).is_empty());
}

#[test]
fn guard_fails_on_a_leftover_process_and_kills_it() {
    let mut pid = 0;
    let report = guard_report(|fx| {
        let child = std::process::Command::new("sleep")
            .arg("100")
            .env("BERTH_TEST_ID", &fx.id)
            .spawn()
            .unwrap();
        pid = child.id();
        std::mem::forget(child);
    });
    assert!(report.contains("processes left"), "{report}");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "process {pid} survived: {stat}"
    );
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid as i32), None);
}
