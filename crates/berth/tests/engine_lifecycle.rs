//! Containers after `berth run` returns: detached containers kept alive by their monitor, their
//! json-file logs (`logs`, `--tail`, `--timestamps`, `--since`, `-f`, rotation), `stop`, `kill`,
//! `restart`, `wait`, restart policies, `--rm`, `create`/`start`, `ps` and its filters, name
//! conflicts and `rm` of a running container. Each test checks the kernel's view as well as berth's.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;

use fixture::{cgroup_dirs, monitors_of, pid_alive, processes_of, wait_until, Sandbox};
use std::time::{Duration, Instant};

const SECS_10: Duration = Duration::from_secs(10);
/// A shell loop that exits 7 on SIGTERM (a trap runs between the short sleeps).
const TERM_7: &str = "trap 'echo got-term; exit 7' TERM; echo up; while true; do sleep 0.1; done";
/// A shell loop that ignores SIGTERM.
const DEAF: &str = "trap '' TERM; echo up; while true; do sleep 0.1; done";
/// A shell loop that exits 9 on SIGUSR1.
const USR1_9: &str = "trap 'exit 9' USR1; echo up; while true; do sleep 0.1; done";

fn pid_of(sb: &Sandbox, c: &str) -> i64 {
    sb.inspect(c)["State"]["Pid"].as_i64().expect("State.Pid")
}

/// Waits until the container's output reached the log (the shell's trap is set by then).
fn wait_for_log(sb: &Sandbox, c: &str, want: &str) {
    wait_until(&format!("{c} logs {want:?}"), SECS_10, || {
        sb.ok(&["logs", c]).contains(want)
    });
}

fn wait_exited(sb: &Sandbox, c: &str) {
    wait_until(&format!("{c} exits"), SECS_10, || sb.status(c) == "exited");
}

fn ppid(pid: i64) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(") ").next().unwrap_or_default();
    after
        .split(' ')
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

/// Asserts `stop` took at least `min` and well under the default 10 s.
fn assert_took(start: Instant, min: Duration) {
    let took = start.elapsed();
    assert!(
        took >= min && took < Duration::from_secs(8),
        "took {took:?}"
    );
}

#[test]
fn detached_container_outlives_the_cli_and_its_monitor_logs_json_file() {
    let sb = Sandbox::new();
    let id = sb.run_d_sh("--name bg", "echo out; echo err >&2; sleep 30");
    // The CLI has exited; the container runs on, a child of its monitor.
    let v = sb.inspect("bg");
    assert_eq!(
        (&v["State"]["Status"], &v["State"]["Running"]),
        (&"running".into(), &true.into())
    );
    let pid = v["State"]["Pid"].as_i64().unwrap();
    assert!(pid_alive(pid), "the container's init {pid} runs");
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cgroup.contains(&format!("/berth-{id}")), "{cgroup}");
    assert!(
        !cgroup_dirs(&id).is_empty(),
        "its cgroups exist while it runs"
    );
    let monitors = monitors_of(&id);
    assert_eq!(
        monitors.len(),
        1,
        "one berth-monitor: {:?}",
        processes_of(&id)
    );
    assert_eq!(
        ppid(pid),
        i64::from(monitors[0]),
        "the monitor is the container's parent"
    );

    let log_lines = || std::fs::read_to_string(sb.log_file(&id)).unwrap_or_default();
    wait_until("both lines logged", SECS_10, || {
        log_lines().lines().count() == 2
    });
    let log = log_lines();
    let mut entries: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    entries.sort_by_key(|e| e["stream"].as_str().unwrap().to_string());
    let fields = |e: &serde_json::Value| (e["log"].clone(), e["stream"].clone());
    assert_eq!(
        fields(&entries[0]),
        ("err\n".into(), "stderr".into()),
        "{log}"
    );
    assert_eq!(
        fields(&entries[1]),
        ("out\n".into(), "stdout".into()),
        "{log}"
    );
    assert!(entries[1]["time"].as_str().unwrap().ends_with('Z'), "{log}");
    let (code, out, err) = sb.cli("logs bg");
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "out\n", "err\n"),
        "streams kept apart"
    );
    let ps = sb.cli_ok("ps");
    let row = ps
        .lines()
        .find(|l| l.starts_with(&id[..12]))
        .unwrap_or_default();
    assert!(row.contains(" Up ") && row.ends_with("bg"), "{ps}");
    sb.remove_all_and_assert_clean();
}

#[test]
fn logs_tail_timestamps_and_since() {
    let sb = Sandbox::new();
    sb.run_d_sh("--name counter", "seq 1 5");
    wait_exited(&sb, "counter");
    let all = "1\n2\n3\n4\n5\n";
    assert_eq!(sb.cli_ok("logs counter"), all);
    assert_eq!(sb.cli_ok("logs --tail 2 counter"), "4\n5\n");
    assert_eq!(sb.cli_ok("logs -n 0 counter"), "");
    assert_eq!(sb.cli_ok("logs --tail all counter"), all);
    let stamped = sb.cli_ok("logs -t --tail 1 counter");
    let (time, line) = stamped.split_once(' ').unwrap();
    assert_eq!(line, "5\n");
    assert!(
        time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "{stamped}"
    );
    assert_eq!(sb.cli_ok("logs --since 1h counter"), all);
    assert_eq!(sb.cli_ok("logs --since 2999-01-01T00:00:00Z counter"), "");
    let (code, _, err) = sb.cli("logs --tail many counter");
    assert_eq!(code, 125, "{err}");
    sb.remove_all_and_assert_clean();
}

#[test]
fn logs_follow_ends_when_the_container_exits() {
    let sb = Sandbox::new();
    sb.run_d_sh("--name f", "echo first; sleep 1; echo last");
    let start = Instant::now();
    let (code, out, _) = sb.cli("logs -f f");
    assert_eq!((code, out.as_str()), (0, "first\nlast\n"));
    assert!(
        start.elapsed() < SECS_10,
        "-f returned after {:?}",
        start.elapsed()
    );
    assert_eq!(sb.status("f"), "exited");
    sb.remove_all_and_assert_clean();
}

#[test]
fn stop_sends_sigterm_then_records_the_exit_code() {
    let sb = Sandbox::new();
    let id = sb.run_d_sh("--name svc", TERM_7);
    wait_for_log(&sb, "svc", "up");
    let pid = pid_of(&sb, "svc");
    let start = Instant::now();
    assert_eq!(sb.cli_ok("stop svc"), "svc\n");
    assert_took(start, Duration::ZERO);
    assert_eq!(sb.exit_state("svc"), ("exited".into(), 7));
    assert_eq!(sb.inspect("svc")["State"]["Running"], false);
    assert!(!pid_alive(pid));
    assert_eq!(sb.cli_ok("logs svc"), "up\ngot-term\n");
    assert!(
        processes_of(&id).is_empty() && cgroup_dirs(&id).is_empty(),
        "gone from the kernel"
    );
    assert_eq!(
        sb.cli_ok("stop svc"),
        "svc\n",
        "stopping a stopped container is fine"
    );
    sb.remove_all_and_assert_clean();
}

#[test]
fn stop_timeout_kills_a_container_that_ignores_sigterm() {
    let sb = Sandbox::new();
    sb.run_d_sh("--name deaf", DEAF);
    wait_for_log(&sb, "deaf", "up");
    let start = Instant::now();
    assert_eq!(sb.cli_ok("stop -t 1 deaf"), "deaf\n");
    assert_took(start, Duration::from_secs(1));
    assert_eq!(sb.exit_state("deaf"), ("exited".into(), 137));
    sb.remove_all_and_assert_clean();
}

#[test]
fn stop_signal_and_stop_timeout_flags_change_what_stop_does() {
    let sb = Sandbox::new();
    sb.run_d_sh("--name u --stop-signal USR1", USR1_9);
    sb.run_d_sh("--name t --stop-timeout 1", DEAF);
    wait_for_log(&sb, "u", "up");
    wait_for_log(&sb, "t", "up");
    sb.cli_ok("stop u");
    assert_eq!(
        sb.exit_state("u"),
        ("exited".into(), 9),
        "stop sent SIGUSR1"
    );
    let start = Instant::now();
    sb.cli_ok("stop t");
    assert_took(start, Duration::from_secs(1));
    assert_eq!(sb.exit_state("t"), ("exited".into(), 137));
    sb.remove_all_and_assert_clean();
}

#[test]
fn kill_sends_the_named_signal_and_wait_prints_the_code() {
    let sb = Sandbox::new();
    sb.run_d_sh("--name k1", USR1_9);
    sb.run_d_sh("--name k2", "sleep 30");
    sb.run_d_sh("--name w", "sleep 0.5; exit 42");
    wait_for_log(&sb, "k1", "up");
    assert_eq!(sb.cli_ok("kill -s USR1 k1"), "k1\n");
    assert_eq!(sb.cli_ok("wait k1"), "9\n");
    assert_eq!(sb.cli_ok("kill k2"), "k2\n");
    assert_eq!(
        sb.cli_ok("wait k2 w"),
        "137\n42\n",
        "one code per container, in order"
    );
    let (code, _, err) = sb.cli("kill k2");
    assert_eq!(code, 1);
    assert!(err.contains("is not running"), "{err}");
    let (code, _, err) = sb.cli("kill -s NOSUCHSIG k1");
    assert_eq!(code, 125, "{err}");
    // A SIGKILL answers once the run has ended: a plain `rm` right after it finds it exited,
    // and a container its restart policy starts again does not keep the kill waiting.
    sb.run_d_sh("--name k3", "sleep 30");
    sb.cli_ok("kill k3");
    assert_eq!(
        sb.cli_ok("rm k3"),
        "k3
"
    );
    sb.run_d_sh("--name k4 --restart always", "sleep 30");
    let start = Instant::now();
    sb.cli_ok("kill k4");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    sb.remove_all_and_assert_clean();
}

#[test]
fn restart_runs_a_new_process_in_the_same_container() {
    let sb = Sandbox::new();
    let id = sb.run_d_sh("--name r", "echo boot; sleep 100");
    wait_for_log(&sb, "r", "boot");
    let old = pid_of(&sb, "r");
    assert_eq!(sb.cli_ok("restart -t 1 r"), "r\n");
    let v = sb.inspect("r");
    assert_eq!(
        (v["Id"].as_str(), sb.status("r").as_str()),
        (Some(id.as_str()), "running")
    );
    let new = v["State"]["Pid"].as_i64().unwrap();
    assert!(
        new != old && pid_alive(new) && !pid_alive(old),
        "old {old}, new {new}"
    );
    wait_until("two boots logged", SECS_10, || {
        sb.cli_ok("logs r") == "boot\nboot\n"
    });
    assert_eq!(
        monitors_of(&id).len(),
        1,
        "one monitor: {:?}",
        processes_of(&id)
    );
    sb.remove_all_and_assert_clean();
}

#[test]
fn restart_on_failure_retries_twice_then_gives_up_and_stop_ends_always() {
    let sb = Sandbox::new();
    sb.run_d_sh("--name flaky --restart on-failure:2", "echo run; exit 5");
    wait_until("flaky gives up", Duration::from_secs(20), || {
        let v = sb.inspect("flaky");
        v["State"]["Status"] == "exited" && v["RestartCount"] == 2
    });
    assert_eq!(sb.exit_state("flaky"), ("exited".into(), 5));
    let policy = &sb.inspect("flaky")["HostConfig"]["RestartPolicy"]["Name"];
    assert_eq!(policy, "on-failure");
    assert_eq!(
        sb.cli_ok("logs flaky"),
        "run\nrun\nrun\n",
        "the first run and two restarts"
    );
    sb.run_d_sh("--name ok --restart on-failure", "true");
    wait_exited(&sb, "ok");
    assert_eq!(
        sb.inspect("ok")["RestartCount"],
        0,
        "exit 0 is not a failure"
    );

    let id = sb.run_d_sh("--name always --restart always", "true");
    wait_until("always restarts", SECS_10, || {
        sb.inspect("always")["RestartCount"].as_u64() >= Some(1)
    });
    sb.cli_ok("stop always");
    let count = sb.inspect("always")["RestartCount"].clone();
    std::thread::sleep(Duration::from_secs(2));
    let v = sb.inspect("always");
    assert_eq!(
        (&v["State"]["Status"], &v["RestartCount"]),
        (&"exited".into(), &count)
    );
    assert!(
        monitors_of(&id).is_empty(),
        "its monitor left: {:?}",
        processes_of(&id)
    );
    sb.remove_all_and_assert_clean();
}

#[test]
fn rm_flag_with_detach_removes_the_container_after_it_exits() {
    let sb = Sandbox::new();
    let id = sb.run_d_sh("--rm --name gone", "sleep 0.3");
    assert_eq!(sb.status("gone"), "running");
    wait_until("gone is removed", SECS_10, || {
        sb.container_dirs().is_empty()
    });
    let (code, _, err) = sb.code(&["inspect", &id]);
    assert_ne!(code, 0);
    assert!(err.contains("No such"), "{err}");
    let (code, _, err) = sb.cli("run -d --rm --restart always bb true");
    assert_eq!(code, 125, "--rm and --restart conflict: {err}");
    sb.assert_clean();
}

#[test]
fn create_then_start_and_start_attach() {
    let sb = Sandbox::new();
    let out = sb.ok(&[
        "create",
        "--name",
        "c",
        fixture::IMAGE,
        "sh",
        "-c",
        "echo hi; exit 4",
    ]);
    let id = out.trim().to_string();
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{out}"
    );
    sb.track(&id);
    assert_eq!(sb.inspect("c")["State"]["Pid"], 0);
    assert_eq!(sb.exit_state("c").0, "created");
    assert_eq!(sb.cli_ok("ps -a --format {{.Status}}"), "Created\n");
    assert!(sb.cli_ok("ps -q").is_empty(), "created is not running");
    assert!(processes_of(&id).is_empty(), "create starts nothing");
    let (code, out, _) = sb.cli("start -a c");
    assert_eq!(
        (code, out.as_str()),
        (4, "hi\n"),
        "start -a gives the output and the code"
    );
    assert_eq!(sb.exit_state("c"), ("exited".into(), 4));
    assert_eq!(sb.cli_ok("start c"), "c\n");
    assert_eq!(sb.cli_ok("wait c"), "4\n");
    assert_eq!(sb.cli_ok("logs c"), "hi\nhi\n");
    sb.remove_all_and_assert_clean();
}

#[test]
fn ps_filters_format_quiet_and_no_trunc() {
    let sb = Sandbox::new();
    let web = sb.run_d_sh("--name web -l team=a", "sleep 30");
    assert_eq!(sb.cli("run --name job -l team=b bb false").0, 1);
    let job = sb.id_of("job");
    sb.track(sb.cli_ok("create --name fresh bb true").trim());
    let (web12, job12) = (&web[..12], &job[..12]);
    assert_eq!(sb.inspect("web")["Config"]["Labels"]["team"], "a");
    assert_eq!(sb.cli_ok("ps -q"), format!("{web12}\n"));
    assert_eq!(sb.cli_ok("ps -a -q").lines().count(), 3);
    assert_eq!(
        sb.cli_ok("ps -a -q --no-trunc --filter label=team=b"),
        format!("{job}\n")
    );
    assert_eq!(
        sb.cli_ok("ps -a -q --filter label=team"),
        format!("{job12}\n{web12}\n")
    );
    let names =
        |filter: &str| sb.cli_ok(&format!("ps -a --filter {filter} --format {{{{.Names}}}}"));
    assert_eq!(names("status=exited"), "job\n");
    assert_eq!(names("status=created"), "fresh\n");
    assert_eq!(names(&format!("id={}", &web[..6])), "web\n");
    assert_eq!(names("name=fre"), "fresh\n");
    let format = "{{.Names}} {{.State}} {{.Status}}";
    let out = sb.ok(&["ps", "-a", "--filter", "name=job", "--format", format]);
    assert!(out.starts_with("job exited Exited (1) "), "{out}");
    let table = sb.cli_ok("ps --no-trunc");
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let want = [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    assert_eq!(header, want);
    let row = lines.next().unwrap();
    assert!(
        row.starts_with(&web) && row.ends_with("web") && lines.next().is_none(),
        "{table}"
    );
    let (code, _, err) = sb.cli("ps --filter colour=blue");
    assert_eq!(code, 125, "{err}");
    sb.remove_all_and_assert_clean();
}

#[test]
fn ps_filter_without_all_lists_only_running_containers() {
    let sb = Sandbox::new();
    sb.cli_ok("run --name job -l team=b bb true");
    sb.id_of("job");
    assert_eq!(sb.cli_ok("ps -q --filter label=team=b"), "");
    sb.remove_all_and_assert_clean();
}

#[test]
fn names_are_unique_and_rm_refuses_a_running_container_without_force() {
    let sb = Sandbox::new();
    let id = sb.run_d_sh("--name dup", "sleep 30");
    for cmd in [
        "run -d --name dup bb true",
        "create --name dup bb true",
        "run --name /dup bb true",
    ] {
        let (code, _, err) = sb.cli(cmd);
        assert_eq!(code, 125, "{cmd}");
        assert!(
            err.contains("container name \"/dup\" is already in use"),
            "{cmd}: {err}"
        );
    }
    assert_eq!(
        sb.container_dirs(),
        vec![id.clone()],
        "no second container was made"
    );
    let (code, _, err) = sb.cli("run --rm --name bad/name bb true");
    assert_eq!(code, 125, "{err}");

    let (code, out, err) = sb.cli("rm dup");
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("container is running"), "{err}");
    let pid = pid_of(&sb, "dup");
    assert!(
        pid_alive(pid) && sb.status("dup") == "running",
        "a refused rm leaves it running"
    );
    assert_eq!(sb.cli_ok("rm -f dup"), "dup\n");
    assert!(!pid_alive(pid));
    sb.assert_clean();
    assert_eq!(
        sb.cli_ok("run --rm --name dup bb echo free"),
        "free\n",
        "the name is free again"
    );
    let (code, _, err) = sb.cli("rm nosuch");
    assert_eq!(code, 1);
    assert!(err.contains("No such container: nosuch"), "{err}");
    sb.assert_clean();
}

#[test]
fn log_opt_max_size_rotates_the_json_log() {
    let sb = Sandbox::new();
    let id = sb.run_d_sh(
        "--name chatty --log-opt max-size=2k --log-opt max-file=2",
        "seq 1 500",
    );
    wait_exited(&sb, "chatty");
    let log = sb.log_file(&id);
    let rotated = |n: u32| std::path::PathBuf::from(format!("{}.{n}", log.display()));
    assert!(
        std::fs::metadata(&log).unwrap().len() <= 2048,
        "the live file stays under 2k"
    );
    assert!(
        rotated(1).exists() && !rotated(2).exists(),
        "max-file=2 keeps two files"
    );
    let out = sb.cli_ok("logs chatty");
    let nums: Vec<u32> = out.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(nums.last(), Some(&500));
    assert!(nums[0] > 1, "the oldest lines were dropped");
    assert!(
        nums.windows(2).all(|w| w[1] == w[0] + 1),
        "the rest in order: {nums:?}"
    );
    let (code, _, err) = sb.cli("run --rm --log-opt colour=blue bb true");
    assert_eq!(code, 125, "{err}");
    sb.remove_all_and_assert_clean();
}

#[test]
fn init_runs_a_reaping_pid_1_that_passes_the_status_and_signals_on() {
    let sb = Sandbox::new();
    // PID 1 is berth's reaper, the command is its child, and the command's status comes out.
    let out = sb.sh_ok("--init", "cat /proc/1/comm; echo $$");
    assert_eq!(out, "init\n2\n");
    assert_eq!(sb.sh("--init", "exit 9").0, 9);
    // An orphan is reaped: a backgrounded child outlives its parent and leaves no zombie.
    let out = sb.sh_ok(
        "--init",
        "sh -c 'sleep 0.2 &' ; sleep 0.5; ps -o stat= | grep -c Z || true",
    );
    assert_eq!(out.trim(), "0", "no zombie under the reaper");
    // `stop` reaches the command through the reaper (a shell as PID 1 would ignore SIGTERM).
    let c = sb.run_d(&["--init", "--name", "r", "bb", "sleep", "60"]);
    let t = std::time::Instant::now();
    sb.ok(&["stop", "-t", "10", "r"]);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "SIGTERM was forwarded: {:?}",
        t.elapsed()
    );
    assert_eq!(sb.exit_state(&c).1, 143);
    sb.remove_all_and_assert_clean();
}

#[test]
fn image_stop_signal_and_labels_are_honoured_and_unless_stopped_stays_stopped() {
    let sb = Sandbox::new();
    // An image whose config says STOPSIGNAL SIGUSR1 and carries a label.
    sb.ok(&["create", "--name", "base", "bb", "true"]);
    sb.ok(&[
        "commit",
        "-c",
        "STOPSIGNAL SIGUSR1",
        "-c",
        "LABEL team=x",
        "base",
        "sig:1",
    ]);
    let c = sb.run_d(&[
        "--name",
        "s",
        "sig:1",
        "sh",
        "-c",
        "trap 'exit 42' USR1; while true; do sleep 0.1; done",
    ]);
    let cfg = sb.inspect(&c);
    assert_eq!(cfg["Config"]["StopSignal"], "SIGUSR1", "{cfg}");
    assert_eq!(cfg["Config"]["Labels"]["team"], "x", "{cfg}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    sb.ok(&["stop", "-t", "5", "s"]);
    assert_eq!(sb.exit_state(&c).1, 42, "stop sent the image's stop signal");
    // --restart unless-stopped: a stopped container is not brought back.
    sb.run_d(&[
        "--restart",
        "unless-stopped",
        "--name",
        "u",
        "bb",
        "sleep",
        "60",
    ]);
    sb.ok(&["stop", "-t", "1", "u"]);
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(sb.status("u"), "exited");
    sb.remove_all_and_assert_clean();
}

#[test]
fn start_after_stop_brings_the_restart_policy_back() {
    let sb = Sandbox::new();
    let c = sb.run_d(&[
        "--restart",
        "always",
        "--name",
        "a",
        "bb",
        "sh",
        "-c",
        "sleep 0.3; exit 1",
    ]);
    sb.ok(&["stop", "-t", "1", "a"]);
    assert_eq!(sb.status("a"), "exited");
    // `start` undoes the `stop`: when the process ends again, `always` restarts it.
    sb.ok(&["start", "a"]);
    let before = sb.inspect(&c)["RestartCount"].as_i64().unwrap();
    fixture::wait_until(
        "the container is restarted",
        std::time::Duration::from_secs(10),
        || sb.inspect(&c)["RestartCount"].as_i64().unwrap() > before,
    );
    sb.remove_all_and_assert_clean();
}
