//! The container lifecycle through runc's commands: run (foreground and detached),
//! create/start, state, list, kill, delete, and exit status and signal propagation.

use berth_runtime_tests::{wait_for, Fixture};
use std::time::Duration;

/// Waits up to 2 s for `pid` to be gone (or a zombie nobody reaped yet).
fn gone(pid: i64) -> bool {
    wait_for(Duration::from_secs(2), || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.is_empty() || stat.contains(") Z ")
    })
}

#[test]
fn run_propagates_exit_status() {
    let fx = Fixture::new("exit3", &["sh", "-c", "exit 3"]);
    assert_eq!(fx.run().code(), 3);
}

#[test]
fn run_forwards_sigterm_to_the_container() {
    let fx = Fixture::new(
        "sigfwd",
        &[
            "sh",
            "-c",
            "trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    );
    let running = fx.spawn_run();
    assert!(
        wait_for(Duration::from_secs(10), || running
            .stdout_so_far()
            .contains("ready")),
        "never ready"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(running.pid()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = running.wait(Duration::from_secs(20));
    assert!(out.stdout.contains("got-term"), "{out}");
    assert_eq!(out.code(), 42, "{out}");
}

#[test]
fn run_detached_then_state_kill_delete() {
    let fx = Fixture::new("detach", &["sleep", "100"]);
    fx.run_detached();
    let state = fx.rt.state(&fx.id).unwrap();
    assert_eq!(state["status"], "running");
    let pid = state["pid"].as_i64().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).starts_with("sleep\x00100"),
        "pid {pid} is not the init"
    );
    fx.rt.exec(&["kill", &fx.id, "KILL"]).ok();
    fx.rt.wait_status(&fx.id, "stopped");
    fx.rt.exec(&["delete", &fx.id]).ok();
    assert!(
        fx.rt.state(&fx.id).is_none(),
        "state still answers after delete"
    );
    assert!(gone(pid), "init {pid} survived delete");
}

#[test]
fn create_then_start_moves_created_running_stopped() {
    let fx = Fixture::new("cycle", &["sh", "-c", "read x < /dev/null; sleep 100"]);
    fx.create().ok();
    assert_eq!(fx.rt.status(&fx.id), "created");
    let pid = fx.rt.pid(&fx.id);
    assert!(pid > 0);
    fx.start().ok();
    fx.rt.wait_status(&fx.id, "running");
    assert_eq!(fx.rt.pid(&fx.id), pid, "start changed the init pid");
    fx.rt.exec(&["kill", &fx.id, "9"]).ok();
    fx.rt.wait_status(&fx.id, "stopped");
    fx.rt.exec(&["delete", &fx.id]).ok();
}

#[test]
fn state_json_has_runc_fields() {
    let fx = Fixture::new("statejson", &["sleep", "100"]);
    fx.run_detached();
    let st = fx.rt.state(&fx.id).unwrap();
    for key in [
        "ociVersion",
        "id",
        "status",
        "pid",
        "bundle",
        "rootfs",
        "created",
        "owner",
    ] {
        assert!(st.get(key).is_some(), "state lacks {key}: {st}");
    }
    assert_eq!(st["id"], fx.id.as_str());
    assert_eq!(st["bundle"], fx.bundle_dir().as_str());
    assert_eq!(
        st["rootfs"],
        fx.bundle.rootfs().display().to_string().as_str()
    );
    assert!(
        st["created"].as_str().unwrap().contains('T'),
        "created is not RFC 3339: {st}"
    );
}

#[test]
fn list_shows_the_container_in_all_formats() {
    let fx = Fixture::new("list", &["sleep", "100"]);
    fx.run_detached();
    let table = fx.rt.exec(&["list"]).ok().stdout;
    let header = table.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("ID") && header.contains("PID") && header.contains("STATUS"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&fx.id) && l.contains("running")),
        "{table}"
    );
    assert_eq!(fx.rt.exec(&["list", "-q"]).ok().stdout.trim(), fx.id);
    let json = fx.rt.exec(&["list", "--format", "json"]).ok().json();
    let entry = &json.as_array().expect("list json is an array")[0];
    assert_eq!(entry["id"], fx.id.as_str());
    assert_eq!(entry["status"], "running");
    assert_eq!(entry["pid"].as_i64().unwrap() as i32, fx.rt.pid(&fx.id));
}

#[test]
fn kill_all_signals_every_process_without_a_pid_namespace() {
    let mut fx = Fixture::new("killall", &["sh", "-c", "sleep 100 & sleep 100 & wait"]);
    fx.bundle.remove_namespace("pid");
    fx.run_detached();
    let procs_file = berth_runtime_tests::cgroup::dir(
        "pids",
        &berth_runtime_tests::fixture::cgroups_path_for(&fx.id),
    )
    .join("cgroup.procs");
    let count = || {
        std::fs::read_to_string(&procs_file)
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert!(
        wait_for(Duration::from_secs(5), || count() == 3),
        "expected 3 processes, got {}",
        count()
    );
    fx.rt.exec(&["kill", "-a", &fx.id, "KILL"]).ok();
    assert!(
        wait_for(Duration::from_secs(5), || count() == 0),
        "{} processes survived kill -a",
        count()
    );
    fx.rt.wait_status(&fx.id, "stopped");
}

#[test]
fn delete_force_of_a_running_container_leaves_nothing() {
    let fx = Fixture::new("delforce", &["sleep", "100"]);
    fx.run_detached();
    let pid = fx.rt.pid(&fx.id) as i64;
    fx.rt.exec(&["delete", "-f", &fx.id]).ok();
    assert!(fx.rt.state(&fx.id).is_none());
    assert!(gone(pid), "init {pid} survived delete -f");
    assert!(
        berth_runtime_tests::leaks::cgroups_named(&fx.id).is_empty(),
        "cgroups left"
    );
    assert!(!fx.rt.root.join(&fx.id).exists(), "state dir left");
}

#[test]
fn delete_removes_a_process_moved_into_the_cgroup_of_a_container_with_a_pid_namespace() {
    // The init's own pid namespace is emptied by the kernel, so delete skips signalling the
    // cgroup: a process someone moved in from outside must still not keep the cgroup alive.
    let fx = Fixture::new("outsider", &["sleep", "100"]);
    fx.run_detached();
    let mut outsider = std::process::Command::new("sleep")
        .arg("100")
        .spawn()
        .expect("spawn sleep");
    let procs = berth_runtime_tests::cgroup::dir(
        "pids",
        &berth_runtime_tests::fixture::cgroups_path_for(&fx.id),
    )
    .join("cgroup.procs");
    std::fs::write(&procs, outsider.id().to_string()).expect("move the outsider in");
    fx.rt.exec(&["kill", &fx.id, "KILL"]).ok();
    fx.rt.wait_status(&fx.id, "stopped");
    let deleted = fx.rt.exec(&["delete", &fx.id]);
    let reaped = wait_for(Duration::from_secs(5), || {
        matches!(outsider.try_wait(), Ok(Some(_)))
    });
    if !reaped {
        let _ = outsider.kill();
        let _ = outsider.wait();
    }
    deleted.ok();
    assert!(reaped, "the process moved into the cgroup survived delete");
    assert!(
        berth_runtime_tests::leaks::cgroups_named(&fx.id).is_empty(),
        "cgroups left"
    );
}

#[test]
fn a_cgroup_directory_made_before_the_container_goes_with_it_once_empty_but_not_while_busy() {
    let cg_path = berth_runtime_tests::fixture::cgroups_path_for;
    // Prepared by someone else (as runc's tests do for a cpu.rt_* parent): removed at delete,
    // as runc does, so it does not outlive the container.
    let fx = Fixture::new("precg", &["true"]);
    let dir = berth_runtime_tests::cgroup::dir("pids", &cg_path(&fx.id));
    std::fs::create_dir_all(&dir).unwrap();
    assert_eq!(fx.run().code(), 0);
    assert!(!dir.exists(), "{} outlived its container", dir.display());
    // Its parent is this test's own, as in runc's tests.
    std::fs::remove_dir(dir.parent().unwrap()).unwrap();
    assert!(
        berth_runtime_tests::leaks::cgroups_named(&fx.id).is_empty(),
        "cgroups left"
    );

    // Busy with a process of its own: kept (and the process is not killed).
    let fx = Fixture::new("busycg", &["true"]);
    let dir = berth_runtime_tests::cgroup::dir("pids", &cg_path(&fx.id));
    std::fs::create_dir_all(&dir).unwrap();
    let mut tenant = std::process::Command::new("sleep")
        .arg("100")
        .spawn()
        .expect("spawn sleep");
    std::fs::write(dir.join("cgroup.procs"), tenant.id().to_string()).unwrap();
    let out = fx.run();
    let alive = matches!(tenant.try_wait(), Ok(None));
    let kept = dir.exists();
    let _ = tenant.kill();
    let _ = tenant.wait();
    let _ = berth_runtime_tests::wait_for(Duration::from_secs(2), || {
        std::fs::remove_dir(&dir).is_ok() || !dir.exists()
    });
    let _ = std::fs::remove_dir(dir.parent().unwrap());
    assert_eq!(out.code(), 0, "{out}");
    assert!(alive, "delete killed a process it did not start");
    assert!(kept, "delete removed a cgroup that still had a process");
}

#[test]
fn a_frozen_cgroup_made_before_the_container_is_refused_and_left_as_it_was() {
    if berth_runtime_tests::cgroup::is_v2() {
        return; // the v1 freezer file; v2 freezing is covered in cgroup_v2_lifecycle
    }
    let fx = Fixture::new("frozencg", &["true"]);
    let dir = berth_runtime_tests::cgroup::dir(
        "freezer",
        &berth_runtime_tests::fixture::cgroups_path_for(&fx.id),
    );
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("freezer.state"), "FROZEN").unwrap();
    let tries: Vec<_> = (0..2).map(|_| fx.create()).collect();
    let state = std::fs::read_to_string(dir.join("freezer.state")).unwrap_or_default();
    let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
    let _ = std::fs::remove_dir(&dir);
    let _ = std::fs::remove_dir(dir.parent().unwrap());
    for out in tries {
        assert!(!out.success(), "create into a frozen cgroup succeeded");
        assert!(out.stderr.contains("unexpectedly frozen"), "{out}");
    }
    // Still there and still frozen for the second try: a failed create removes only what it made.
    assert_eq!(state.trim(), "FROZEN");
}
