//! berth without a daemon, under abuse: the monitor or the CLI killed with SIGKILL while a container
//! runs (or while it is being made), then `ps` must tell the truth and `rm -f` must leave no mount,
//! cgroup or process behind; ten parallel `run --rm` and two racing `rm -f` of one container.
//! Every check of what is left asks the kernel (mountinfo, cgroupfs, /proc).

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;

use common::{run, Reaped};
use fixture::{monitors_of, pid_alive, processes_of, wait_until, Sandbox, IMAGE};
use std::process::Stdio;
use std::time::Duration;

const SECS_10: Duration = Duration::from_secs(10);

fn pid_of(sb: &Sandbox, c: &str) -> i64 {
    sb.inspect(c)["State"]["Pid"].as_i64().expect("State.Pid")
}

fn sigkill(pid: i32) {
    // SAFETY: SIGKILL to a berth process this test started (found by its container's ID).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0, "kill {pid}");
}

/// Kills the container's monitor and waits until it is gone.
fn kill_monitor(id: &str) {
    let monitors = monitors_of(id);
    assert_eq!(monitors.len(), 1, "one monitor: {:?}", processes_of(id));
    sigkill(monitors[0]);
    wait_until("the monitor is gone", SECS_10, || {
        monitors_of(id).is_empty()
    });
}

/// A foreground `berth ARGS…` with no stdio, killed and reaped if the test fails.
fn spawn(sb: &Sandbox, args: &[&str]) -> Reaped {
    let mut cmd = sb.b.command(args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Reaped(cmd.spawn().expect("spawn berth"))
}

/// Waits until container `c` exists and its init runs; returns its ID and init's pid.
fn wait_running(sb: &Sandbox, c: &str) -> (String, i64) {
    wait_until(&format!("{c} runs"), SECS_10, || {
        let (code, out, _) = sb.code(&["inspect", c]);
        code == 0 && out.contains("\"Status\": \"running\"")
    });
    let pid = pid_of(sb, c);
    assert!(pid_alive(pid), "{c}'s init {pid} is alive");
    (sb.id_of(c), pid)
}

fn state(sb: &Sandbox, c: &str) -> String {
    sb.ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("name={c}"),
        "--format",
        "{{.Names}} {{.State}}",
    ])
}

#[test]
fn monitor_killed_then_ps_tells_the_truth_once_the_container_dies() {
    let sb = Sandbox::new();
    let id = sb.run_d(&["--name", "orphan", IMAGE, "sleep", "2"]);
    let pid = pid_of(&sb, "orphan");
    kill_monitor(&id);
    assert!(
        pid_alive(pid),
        "killing the monitor does not kill the container"
    );
    assert_eq!(
        state(&sb, "orphan"),
        "orphan running\n",
        "it still runs, and berth says so"
    );
    wait_until("the orphaned init exits", SECS_10, || !pid_alive(pid));
    // The keeper, now its parent, records the exit a moment later.
    wait_until("ps says it exited", SECS_10, || {
        state(&sb, "orphan") == "orphan exited\n"
    });
    assert_eq!(
        sb.exit_state("orphan"),
        ("exited".into(), 0),
        "its real status"
    );
    let v = sb.inspect("orphan");
    assert_eq!(
        (v["State"]["Running"].as_bool(), v["State"]["Pid"].as_i64()),
        (Some(false), Some(0))
    );
    assert_eq!(
        sb.leaks(),
        Vec::<String>::new(),
        "the exited container holds nothing"
    );
    sb.cli_ok("rm orphan");
    sb.assert_clean();
}

#[test]
fn monitor_killed_then_stop_and_rm_f_still_reach_the_container() {
    let sb = Sandbox::new();
    let a = sb.run_d(&["--name", "a", IMAGE, "sleep", "30"]);
    let b = sb.run_d(&["--name", "b", IMAGE, "sleep", "30"]);
    let (pa, pb) = (pid_of(&sb, "a"), pid_of(&sb, "b"));
    kill_monitor(&a);
    kill_monitor(&b);
    assert_eq!(sb.cli_ok("stop -t 1 a"), "a\n");
    assert!(!pid_alive(pa));
    assert_eq!(state(&sb, "a"), "a exited\n");
    assert_eq!(sb.cli_ok("rm -f b"), "b\n");
    assert!(!pid_alive(pb));
    sb.remove_all_and_assert_clean();
}

#[test]
fn foreground_run_killed_then_ps_and_rm_f() {
    let sb = Sandbox::new();
    let mut cli = spawn(&sb, &["run", "--name", "fg", IMAGE, "sleep", "30"]);
    let (_, pid) = wait_running(&sb, "fg");
    cli.0.kill().unwrap();
    cli.0.wait().unwrap();
    assert!(pid_alive(pid), "the container outlives its CLI");
    assert_eq!(state(&sb, "fg"), "fg running\n");
    assert_eq!(sb.cli_ok("rm -f fg"), "fg\n");
    assert!(!pid_alive(pid));
    sb.assert_clean();
}

#[test]
fn foreground_run_killed_then_the_containers_exit_is_reported() {
    let sb = Sandbox::new();
    let mut cli = spawn(&sb, &["run", "--name", "fg", IMAGE, "sleep", "1"]);
    let (_, pid) = wait_running(&sb, "fg");
    cli.0.kill().unwrap();
    cli.0.wait().unwrap();
    wait_until("the container exits", SECS_10, || !pid_alive(pid));
    assert_eq!(state(&sb, "fg"), "fg exited\n");
    assert_eq!(
        sb.leaks(),
        Vec::<String>::new(),
        "the exited container holds nothing"
    );
    sb.cli_ok("rm fg");
    sb.assert_clean();
}

/// Runs `berth ARGS…`, failing the test if it does not finish within `limit` (a blocked lock).
fn within(sb: &Sandbox, args: &[&str], limit: Duration) -> common::Output {
    let mut cmd = sb.b.command(args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = Reaped(cmd.spawn().expect("spawn berth"));
    wait_until(&format!("berth {args:?} finishes"), limit, || {
        matches!(child.0.try_wait(), Ok(Some(_)))
    });
    let mut out = String::new();
    let mut err = String::new();
    use std::io::Read;
    let _ = child.0.stdout.take().unwrap().read_to_string(&mut out);
    let _ = child.0.stderr.take().unwrap().read_to_string(&mut err);
    let status = child.0.wait().unwrap();
    common::Output {
        status,
        stdout: out,
        stderr: err,
    }
}

#[test]
fn run_killed_at_any_point_leaves_a_store_that_ps_and_rm_f_clean() {
    let sb = Sandbox::new();
    for ms in 0..25u64 {
        let (fg, bg) = (format!("fg{ms}"), format!("bg{ms}"));
        let mut a = spawn(&sb, &["run", "--name", &fg, IMAGE, "sleep", "30"]);
        let mut b = spawn(&sb, &["run", "-d", "--name", &bg, IMAGE, "sleep", "30"]);
        std::thread::sleep(Duration::from_millis(ms));
        let _ = a.0.kill();
        let _ = b.0.kill();
        let _ = a.0.wait();
        let _ = b.0.wait();
    }
    let ids = sb.container_dirs();
    for id in &ids {
        sb.track(id);
    }
    let ps = within(&sb, &["ps", "-a", "--format", "{{.State}}"], SECS_10 * 2);
    assert!(ps.status.success(), "{}", ps.stderr);
    let states = ps.stdout.lines();
    assert!(
        states
            .clone()
            .all(|s| matches!(s, "created" | "running" | "exited")),
        "{}",
        ps.stdout
    );
    assert_eq!(
        states.count(),
        ids.len(),
        "ps lists every container directory: {ids:?}"
    );
    for id in &ids {
        let out = within(&sb, &["rm", "-f", id], SECS_10 * 2);
        assert!(out.status.success(), "rm -f {id}: {}", out.stderr);
    }
    sb.assert_clean();
}

#[test]
fn stop_killed_mid_wait_leaves_the_container_running_and_rm_f_cleans() {
    let sb = Sandbox::new();
    let deaf = "trap '' TERM; echo up; while true; do sleep 0.1; done";
    sb.run_d(&["--name", "deaf", IMAGE, "sh", "-c", deaf]);
    wait_until("deaf is up", SECS_10, || sb.cli_ok("logs deaf") == "up\n");
    let pid = pid_of(&sb, "deaf");
    let mut stop = spawn(&sb, &["stop", "-t", "30", "deaf"]);
    std::thread::sleep(Duration::from_millis(300));
    stop.0.kill().unwrap();
    stop.0.wait().unwrap();
    assert!(
        pid_alive(pid),
        "SIGTERM was ignored and the SIGKILL never came"
    );
    assert_eq!(state(&sb, "deaf"), "deaf running\n");
    assert_eq!(sb.cli_ok("rm -f deaf"), "deaf\n");
    sb.assert_clean();
}

#[test]
fn ten_parallel_run_rm_succeed_and_leave_nothing() {
    let sb = Sandbox::new();
    let cmds: Vec<_> = (0..10)
        .map(|_| sb.b.command(&["run", "--rm", IMAGE, "hostname"]))
        .collect();
    let outs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = cmds
            .into_iter()
            .map(|c| s.spawn(move || run(c, None)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut short_ids: Vec<String> = Vec::new();
    for o in outs {
        assert_eq!(o.status.code(), Some(0), "{}", o.stderr);
        short_ids.push(o.stdout.trim().to_string());
    }
    short_ids.sort();
    short_ids.dedup();
    assert_eq!(
        short_ids.len(),
        10,
        "ten containers, ten IDs: {short_ids:?}"
    );
    sb.assert_clean();
    for short in &short_ids {
        assert!(
            processes_of(short).is_empty(),
            "{short}: {:?}",
            processes_of(short)
        );
        for e in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let left: Vec<_> = std::fs::read_dir(e.path().join("berth"))
                .into_iter()
                .flatten()
                .flatten()
                .filter(|d| d.file_name().to_string_lossy().starts_with(short.as_str()))
                .collect();
            assert!(left.is_empty(), "cgroup left: {left:?}");
        }
    }
}

/// Races two `rm -f` of one running container `rounds` times; returns what each loser said.
fn race_rm_f(sb: &Sandbox, rounds: usize) -> Vec<String> {
    let mut losers = Vec::new();
    for round in 0..rounds {
        let id = sb.run_d(&[IMAGE, "sleep", "30"]);
        let pid = pid_of(sb, &id);
        let cmds = [0, 1].map(|_| sb.b.command(&["rm", "-f", &id]));
        let outs = std::thread::scope(|s| {
            let handles = cmds.map(|c| s.spawn(move || run(c, None)));
            handles.map(|h| h.join().unwrap())
        });
        let removed = outs.iter().filter(|o| o.status.success()).count();
        assert!(
            removed >= 1,
            "round {round}: neither rm -f succeeded: {outs:?}"
        );
        for o in &outs {
            if o.status.success() {
                assert_eq!(o.stdout, format!("{id}\n"));
            } else {
                assert_eq!(o.status.code(), Some(1), "round {round}: {}", o.stderr);
                losers.push(o.stderr.clone());
            }
        }
        assert!(!pid_alive(pid), "round {round}: the container still runs");
        sb.assert_clean();
    }
    losers
}

#[test]
fn two_racing_rm_f_on_one_running_container_leave_nothing() {
    let sb = Sandbox::new();
    race_rm_f(&sb, 3);
}

#[test]
fn the_loser_of_a_rm_f_race_says_no_such_container() {
    let sb = Sandbox::new();
    for said in race_rm_f(&sb, 40) {
        assert!(said.contains("No such container"), "{said}");
    }
}

#[test]
fn rm_f_of_a_running_detached_container_is_prompt() {
    let sb = Sandbox::new();
    for _ in 0..3 {
        let id = sb.run_d(&[IMAGE, "sleep", "30"]);
        let start = std::time::Instant::now();
        assert_eq!(sb.ok(&["rm", "-f", &id]), format!("{id}\n"));
        let took = start.elapsed();
        assert!(took < Duration::from_millis(500), "rm -f took {took:?}");
    }
    sb.assert_clean();
}

#[test]
fn overlapping_containers_share_no_cgroup_and_leave_none_behind() {
    let sb = Sandbox::new();
    let a = sb.run_d(&["--name", "a", IMAGE, "sleep", "30"]);
    let b = sb.run_d(&["--name", "b", IMAGE, "sleep", "30"]);
    // Each container's cgroup sits right under the hierarchy's root: there is no parent that
    // one container would create and another would keep busy at its end (a shared `/berth`
    // outlived the first container whenever its lifetime overlapped another's).
    for (c, id) in [("a", &a), ("b", &b)] {
        let cgroups = std::fs::read_to_string(format!("/proc/{}/cgroup", pid_of(&sb, c))).unwrap();
        let own = format!("/berth-{id}");
        let paths: Vec<&str> = cgroups
            .lines()
            .filter_map(|l| l.splitn(3, ':').nth(2))
            .filter(|p| *p != "/")
            .collect();
        assert!(
            !paths.is_empty() && paths.iter().all(|p| *p == own),
            "{cgroups}"
        );
    }
    // The first one made is removed while the second still runs, then the second.
    sb.ok(&["rm", "-f", "a"]);
    assert!(
        fixture::cgroup_dirs(&a).is_empty(),
        "{:?}",
        fixture::cgroup_dirs(&a)
    );
    sb.ok(&["rm", "-f", "b"]);
    assert!(
        fixture::cgroup_dirs(&b).is_empty(),
        "{:?}",
        fixture::cgroup_dirs(&b)
    );
    sb.assert_clean();
}
