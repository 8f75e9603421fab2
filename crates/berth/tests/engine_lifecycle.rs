//! Containers after `berth run` returns: detached containers kept alive by their monitor, their
//! json-file logs (`logs`, `--tail`, `--timestamps`, `--since`, `-f`, rotation), `stop`, `kill`,
//! `restart`, `wait`, restart policies, `--rm`, `create`/`start`, `ps` and its filters, name
//! conflicts and `rm` of a running container. Each test checks the kernel's view as well as berth's.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;

use fixture::{cgroup_dirs, monitors_of, pid_alive, processes_of, wait_until, Sandbox, IMAGE};
use std::time::{Duration, Instant};

/// A shell loop that exits 7 on SIGTERM (a trap runs between the short sleeps).
const TERM_7: &str = "trap 'echo got-term; exit 7' TERM; echo up; while true; do sleep 0.1; done";
/// A shell loop that ignores SIGTERM.
const DEAF: &str = "trap '' TERM; echo up; while true; do sleep 0.1; done";

fn pid_of(sb: &Sandbox, c: &str) -> i64 {
    sb.inspect(c)["State"]["Pid"].as_i64().expect("State.Pid")
}

/// Waits until the container's output reached the log (the shell's trap is set by then).
fn wait_for_log(sb: &Sandbox, c: &str, want: &str) {
    wait_until(
        &format!("{c} logs {want:?}"),
        Duration::from_secs(10),
        || sb.ok(&["logs", c]).contains(want),
    );
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

#[test]
fn detached_container_outlives_the_cli_and_its_monitor_logs_json_file() {
    let sb = Sandbox::new();
    let id = sb.run_d(&[
        "--name",
        "bg",
        IMAGE,
        "sh",
        "-c",
        "echo out; echo err >&2; sleep 30",
    ]);
    // The CLI has exited; the container runs on, a child of its monitor.
    let v = sb.inspect("bg");
    assert_eq!(
        (
            v["State"]["Status"].as_str(),
            v["State"]["Running"].as_bool()
        ),
        (Some("running"), Some(true))
    );
    let pid = v["State"]["Pid"].as_i64().unwrap();
    assert!(pid_alive(pid), "the container's init {pid} runs");
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cgroup.contains(&format!("/berth/{id}")), "{cgroup}");
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

    wait_for_log(&sb, "bg", "out");
    wait_until("both lines logged", Duration::from_secs(10), || {
        std::fs::read_to_string(sb.log_file(&id))
            .unwrap_or_default()
            .lines()
            .count()
            == 2
    });
    let log = std::fs::read_to_string(sb.log_file(&id)).unwrap();
    let mut entries: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    entries.sort_by_key(|e| e["stream"].as_str().unwrap().to_string());
    assert_eq!(
        (entries[0]["log"].as_str(), entries[0]["stream"].as_str()),
        (Some("err\n"), Some("stderr"))
    );
    assert_eq!(
        (entries[1]["log"].as_str(), entries[1]["stream"].as_str()),
        (Some("out\n"), Some("stdout"))
    );
    assert!(entries[1]["time"].as_str().unwrap().ends_with('Z'), "{log}");
    let (code, out, err) = sb.cli("logs bg");
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "out\n", "err\n"),
        "streams kept apart"
    );
    let ps = sb.cli_ok("ps");
    assert!(
        ps.lines()
            .any(|l| l.starts_with(&id[..12]) && l.contains(" Up ") && l.ends_with("bg")),
        "{ps}"
    );
    sb.remove_all_and_assert_clean();
}

#[test]
fn logs_tail_timestamps_and_since() {
    let sb = Sandbox::new();
    let id = sb.run_d(&["--name", "counter", IMAGE, "seq", "1", "5"]);
    wait_until("counter exits", Duration::from_secs(10), || {
        sb.status(&id) == "exited"
    });
    assert_eq!(sb.cli_ok("logs counter"), "1\n2\n3\n4\n5\n");
    assert_eq!(sb.cli_ok("logs --tail 2 counter"), "4\n5\n");
    assert_eq!(sb.cli_ok("logs -n 0 counter"), "");
    assert_eq!(sb.cli_ok("logs --tail all counter"), "1\n2\n3\n4\n5\n");
    let stamped = sb.cli_ok("logs -t --tail 1 counter");
    let (time, line) = stamped.split_once(' ').unwrap();
    assert_eq!(line, "5\n");
    assert!(
        time.len() >= 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "{stamped}"
    );
    assert_eq!(sb.cli_ok("logs --since 1h counter"), "1\n2\n3\n4\n5\n");
    assert_eq!(sb.cli_ok("logs --since 2999-01-01T00:00:00Z counter"), "");
    let (code, _, err) = sb.cli("logs --tail many counter");
    assert_eq!(code, 125, "{err}");
    sb.remove_all_and_assert_clean();
}

#[test]
fn logs_follow_ends_when_the_container_exits() {
    let sb = Sandbox::new();
    sb.run_d(&[
        "--name",
        "f",
        IMAGE,
        "sh",
        "-c",
        "echo first; sleep 1; echo last",
    ]);
    let start = Instant::now();
    let (code, out, _) = sb.cli("logs -f f");
    assert_eq!((code, out.as_str()), (0, "first\nlast\n"));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "-f returned {:?} after the exit",
        start.elapsed()
    );
    assert_eq!(sb.status("f"), "exited");
    sb.remove_all_and_assert_clean();
}

#[test]
fn stop_sends_sigterm_then_records_the_exit_code() {
    let sb = Sandbox::new();
    let id = sb.run_d(&["--name", "svc", IMAGE, "sh", "-c", TERM_7]);
    wait_for_log(&sb, "svc", "up");
    let pid = pid_of(&sb, "svc");
    let start = Instant::now();
    assert_eq!(sb.cli_ok("stop svc"), "svc\n");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    let v = sb.inspect("svc");
    assert_eq!(
        (
            v["State"]["Status"].as_str(),
            v["State"]["ExitCode"].as_i64()
        ),
        (Some("exited"), Some(7))
    );
    assert_eq!(v["State"]["Running"], false);
    assert!(!pid_alive(pid));
    assert_eq!(sb.cli_ok("logs svc"), "up\ngot-term\n");
    assert!(
        processes_of(&id).is_empty() && cgroup_dirs(&id).is_empty(),
        "stopped is gone from the kernel"
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
    sb.run_d(&["--name", "deaf", IMAGE, "sh", "-c", DEAF]);
    wait_for_log(&sb, "deaf", "up");
    let start = Instant::now();
    assert_eq!(sb.cli_ok("stop -t 1 deaf"), "deaf\n");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(8),
        "took {took:?}"
    );
    assert_eq!(sb.inspect("deaf")["State"]["ExitCode"], 137);
    sb.remove_all_and_assert_clean();
}

#[test]
fn stop_signal_and_stop_timeout_flags_change_what_stop_does() {
    let sb = Sandbox::new();
    let usr1 = "trap 'exit 9' USR1; echo up; while true; do sleep 0.1; done";
    sb.run_d(&[
        "--name",
        "u",
        "--stop-signal",
        "USR1",
        IMAGE,
        "sh",
        "-c",
        usr1,
    ]);
    sb.run_d(&[
        "--name",
        "t",
        "--stop-timeout",
        "1",
        IMAGE,
        "sh",
        "-c",
        DEAF,
    ]);
    wait_for_log(&sb, "u", "up");
    wait_for_log(&sb, "t", "up");
    sb.cli_ok("stop u");
    assert_eq!(sb.inspect("u")["State"]["ExitCode"], 9, "stop sent SIGUSR1");
    let start = Instant::now();
    sb.cli_ok("stop t");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(8),
        "took {took:?}"
    );
    assert_eq!(sb.inspect("t")["State"]["ExitCode"], 137);
    sb.remove_all_and_assert_clean();
}

#[test]
fn kill_sends_the_named_signal_and_wait_prints_the_code() {
    let sb = Sandbox::new();
    let usr1 = "trap 'exit 9' USR1; echo up; while true; do sleep 0.1; done";
    sb.run_d(&["--name", "k1", IMAGE, "sh", "-c", usr1]);
    sb.run_d(&["--name", "k2", IMAGE, "sleep", "30"]);
    sb.run_d(&["--name", "w", IMAGE, "sh", "-c", "sleep 0.5; exit 42"]);
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
    sb.remove_all_and_assert_clean();
}

#[test]
fn restart_runs_a_new_process_in_the_same_container() {
    let sb = Sandbox::new();
    let id = sb.run_d(&["--name", "r", IMAGE, "sh", "-c", "echo boot; sleep 100"]);
    wait_for_log(&sb, "r", "boot");
    let old = pid_of(&sb, "r");
    assert_eq!(sb.cli_ok("restart -t 1 r"), "r\n");
    let v = sb.inspect("r");
    assert_eq!(
        (v["Id"].as_str(), v["State"]["Status"].as_str()),
        (Some(id.as_str()), Some("running"))
    );
    let new = v["State"]["Pid"].as_i64().unwrap();
    assert!(
        new != old && pid_alive(new) && !pid_alive(old),
        "old {old}, new {new}"
    );
    wait_until("two boots logged", Duration::from_secs(10), || {
        sb.cli_ok("logs r") == "boot\nboot\n"
    });
    assert_eq!(
        monitors_of(&id).len(),
        1,
        "one monitor after restart: {:?}",
        processes_of(&id)
    );
    sb.remove_all_and_assert_clean();
}

#[test]
fn restart_on_failure_retries_twice_then_gives_up_and_stop_ends_always() {
    let sb = Sandbox::new();
    sb.run_d(&[
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        IMAGE,
        "sh",
        "-c",
        "echo run; exit 5",
    ]);
    wait_until("flaky gives up", Duration::from_secs(20), || {
        let v = sb.inspect("flaky");
        v["State"]["Status"] == "exited" && v["RestartCount"] == 2
    });
    let v = sb.inspect("flaky");
    assert_eq!(v["State"]["ExitCode"], 5);
    assert_eq!(v["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(
        sb.cli_ok("logs flaky"),
        "run\nrun\nrun\n",
        "the first run and two restarts"
    );
    sb.run_d(&["--name", "ok", "--restart", "on-failure", IMAGE, "true"]);
    wait_until("ok exits", Duration::from_secs(10), || {
        sb.status("ok") == "exited"
    });
    assert_eq!(
        sb.inspect("ok")["RestartCount"],
        0,
        "exit 0 is not a failure"
    );

    let id = sb.run_d(&["--name", "always", "--restart", "always", IMAGE, "true"]);
    wait_until("always restarts", Duration::from_secs(10), || {
        sb.inspect("always")["RestartCount"].as_u64() >= Some(1)
    });
    sb.cli_ok("stop always");
    let count = sb.inspect("always")["RestartCount"].clone();
    std::thread::sleep(Duration::from_secs(2));
    let v = sb.inspect("always");
    assert_eq!(
        (v["State"]["Status"].as_str(), &v["RestartCount"]),
        (Some("exited"), &count),
        "stop ends the loop"
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
    let id = sb.run_d(&["--rm", "--name", "gone", IMAGE, "sh", "-c", "sleep 0.3"]);
    assert_eq!(sb.status("gone"), "running");
    wait_until("gone is removed", Duration::from_secs(10), || {
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
        IMAGE,
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
    let v = sb.inspect("c");
    assert_eq!(
        (v["State"]["Status"].as_str(), v["State"]["Pid"].as_i64()),
        (Some("created"), Some(0))
    );
    assert_eq!(sb.cli_ok("ps -a --format {{.Status}}"), "Created\n");
    assert!(sb.cli_ok("ps -q").is_empty(), "created is not running");
    assert!(processes_of(&id).is_empty(), "create starts nothing");
    let (code, out, _) = sb.cli("start -a c");
    assert_eq!(
        (code, out.as_str()),
        (4, "hi\n"),
        "start -a gives the container's output and code"
    );
    assert_eq!(sb.inspect("c")["State"]["ExitCode"], 4);
    assert_eq!(sb.cli_ok("start c"), "c\n");
    assert_eq!(sb.cli_ok("wait c"), "4\n");
    assert_eq!(sb.cli_ok("logs c"), "hi\nhi\n");
    sb.remove_all_and_assert_clean();
}

#[test]
fn ps_filters_format_quiet_and_no_trunc() {
    let sb = Sandbox::new();
    let web = sb.run_d(&["--name", "web", "-l", "team=a", IMAGE, "sleep", "30"]);
    let (code, _, _) = sb.code(&[
        "run", "--name", "job", "-l", "team=b", IMAGE, "sh", "-c", "exit 3",
    ]);
    assert_eq!(code, 3);
    let job = sb.id_of("job");
    let fresh = sb.cli_ok("create --name fresh bb true").trim().to_string();
    sb.track(&fresh);
    assert_eq!(sb.cli_ok("ps -q"), format!("{}\n", &web[..12]));
    assert_eq!(sb.cli_ok("ps -a -q").lines().count(), 3);
    assert_eq!(
        sb.cli_ok("ps -a -q --no-trunc --filter label=team=b"),
        format!("{job}\n")
    );
    assert_eq!(
        sb.cli_ok("ps -a -q --filter label=team"),
        format!("{}\n{}\n", &job[..12], &web[..12])
    );
    assert_eq!(
        sb.cli_ok("ps -a --filter status=exited --format {{.Names}}"),
        "job\n"
    );
    assert_eq!(
        sb.cli_ok("ps -a --filter status=created --format {{.Names}}"),
        "fresh\n"
    );
    assert_eq!(
        sb.cli_ok(&format!(
            "ps -a --filter id={} --format {{{{.Names}}}}",
            &web[..6]
        )),
        "web\n"
    );
    let out = sb.ok(&[
        "ps",
        "-a",
        "--filter",
        "name=job",
        "--format",
        "{{.Names}} {{.State}} {{.Status}}",
    ]);
    assert!(out.starts_with("job exited Exited (3) "), "{out}");
    let table = sb.cli_ok("ps --no-trunc");
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .split("  ")
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
    assert_eq!(header.iter().map(|h| h.trim()).collect::<Vec<_>>(), want);
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
#[ignore = "bug: any --filter makes ps list stopped containers (berth/src/containers.rs ps: the running-only check is skipped when `a.filter` is non-empty); Docker lists only running ones unless -a: `ps --filter label=team=b` shows the exited job"]
fn ps_filter_without_all_lists_only_running_containers() {
    let sb = Sandbox::new();
    sb.ok(&["run", "--name", "job", "-l", "team=b", IMAGE, "true"]);
    sb.id_of("job");
    assert_eq!(sb.cli_ok("ps -q --filter label=team=b"), "");
    sb.remove_all_and_assert_clean();
}

#[test]
fn names_are_unique_and_rm_refuses_a_running_container_without_force() {
    let sb = Sandbox::new();
    let id = sb.run_d(&["--name", "dup", IMAGE, "sleep", "30"]);
    for cmd in [
        "run -d --name dup bb true",
        "create --name dup bb true",
        "run --rm --name /dup bb true",
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
    let id = sb.run_d(&[
        "--name",
        "chatty",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=2",
        IMAGE,
        "seq",
        "1",
        "500",
    ]);
    wait_until("chatty exits", Duration::from_secs(10), || {
        sb.status("chatty") == "exited"
    });
    let log = sb.log_file(&id);
    let rotated = std::path::PathBuf::from(format!("{}.1", log.display()));
    assert!(
        std::fs::metadata(&log).unwrap().len() <= 2048,
        "the live file stays under max-size"
    );
    assert!(rotated.exists(), "one rotated file");
    assert!(
        !std::path::Path::new(&format!("{}.2", log.display())).exists(),
        "max-file=2 keeps two files"
    );
    let out = sb.cli_ok("logs chatty");
    let nums: Vec<u32> = out.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(nums.last(), Some(&500));
    assert!(
        nums[0] > 1 && nums.windows(2).all(|w| w[1] == w[0] + 1),
        "the oldest lines were dropped, the rest in order"
    );
    let (code, _, err) = sb.cli("run --rm --log-opt colour=blue bb true");
    assert_eq!(code, 125, "{err}");
    sb.remove_all_and_assert_clean();
}
