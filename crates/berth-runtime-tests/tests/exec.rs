//! `exec` joins the running container: same namespaces as init, exit status, env,
//! cwd and user honoured, `-d` detaches; `ps` lists the container's processes.

use berth_runtime_tests::Fixture;

#[test]
fn exec_joins_the_init_namespaces() {
    let fx = Fixture::new("execns", &["sleep", "100"]);
    fx.run_detached();
    let pid = fx.rt.pid(&fx.id);
    for kind in ["pid", "net", "ipc", "uts", "mnt"] {
        let init = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap();
        let out = fx
            .exec_in(&[], &["readlink", &format!("/proc/self/ns/{kind}")])
            .ok();
        assert_eq!(
            out.stdout.trim(),
            init.to_string_lossy(),
            "exec is not in init's {kind} namespace"
        );
    }
}

#[test]
fn exec_propagates_exit_status() {
    let fx = Fixture::new("execexit", &["sleep", "100"]);
    fx.run_detached();
    assert_eq!(fx.exec_in(&[], &["sh", "-c", "exit 7"]).code(), 7);
}

#[test]
fn exec_sets_env_cwd_and_user() {
    let fx = Fixture::new("execopts", &["sleep", "100"]);
    fx.run_detached();
    let out = fx
        .exec_in(
            &["-e", "GREETING=hello", "--cwd", "/tmp", "-u", "65534"],
            &["sh", "-c", "echo $GREETING; pwd; id -u"],
        )
        .ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, ["hello", "/tmp", "65534"], "{out}");
}

/// An exec'd process takes the container's oom_score_adj, not its caller's (a shim's, for a
/// kubelet probe), and not the one in `--process` either: runc's behaviour.
#[test]
fn exec_takes_the_containers_oom_score_adj() {
    let mut fx = Fixture::new("execoom", &["sleep", "100"]);
    fx.bundle.spec["process"]["oomScoreAdj"] = serde_json::json!(500);
    fx.run_detached();
    let out = fx.exec_in(&[], &["cat", "/proc/self/oom_score_adj"]).ok();
    assert_eq!(out.stdout.trim(), "500", "{out}");
    let mut process = fx.bundle.spec["process"].clone();
    process["args"] = serde_json::json!(["cat", "/proc/self/oom_score_adj"]);
    process["oomScoreAdj"] = serde_json::json!(700);
    let file = fx.base.join("process.json");
    std::fs::write(&file, process.to_string()).unwrap();
    let out = fx
        .exec_in(&["--process", &file.display().to_string()], &[])
        .ok();
    assert_eq!(out.stdout.trim(), "500", "{out}");
}

#[test]
fn exec_detached_leaves_the_process_running() {
    let fx = Fixture::new("execd", &["sleep", "100"]);
    fx.run_detached();
    let pid_file = fx.base.join("exec.pid");
    let pid_arg = pid_file.display().to_string();
    fx.exec_in(&["-d", "--pid-file", &pid_arg], &["sleep", "77"])
        .ok();
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline, b"sleep\x0077\x00");
    let init = fx.rt.pid(&fx.id);
    let ns = |p: i32| std::fs::read_link(format!("/proc/{p}/ns/pid")).unwrap();
    assert_eq!(
        ns(pid),
        ns(init),
        "detached exec is not in the container's pid namespace"
    );
}

#[test]
fn ps_lists_the_container_processes() {
    let fx = Fixture::new("ps", &["sleep", "100"]);
    fx.run_detached();
    let pid = fx.rt.pid(&fx.id);
    let table = fx.rt.exec(&["ps", &fx.id]).ok().stdout;
    assert!(
        table.lines().next().unwrap_or_default().contains("PID"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().any(|w| w == pid.to_string())),
        "pid {pid} missing from ps: {table}"
    );
    let json = fx.rt.exec(&["ps", "-f", "json", &fx.id]).ok().json();
    let pids: Vec<i64> = json
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_i64())
        .collect();
    assert_eq!(pids, [pid as i64]);
}
