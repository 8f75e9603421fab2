//! Docker's `run`/`create` flags, each proven from inside the container or from the kernel:
//! `--sysctl`, `--group-add`, `--ipc`, `--pid`, `--uts`, `--oom-kill-disable`,
//! `--memory-reservation`, `--cpu-period/--cpu-quota`, `--device-cgroup-rule`, `--volumes-from`,
//! `--cidfile`, `--log-driver`, `-a`, `--sig-proxy`, health checks, `HOSTNAME`, `--restart`'s
//! refusals; and what `inspect`, `ps` and `logs` show of them.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;

use fixture::{wait_until, Sandbox, IMAGE};
use std::time::Duration;

/// The container's cgroup v1 file `controller/file` (this host is v1).
fn cgroup_file(id: &str, controller: &str, file: &str) -> String {
    std::fs::read_to_string(format!("/sys/fs/cgroup/{controller}/berth-{id}/{file}"))
        .unwrap_or_else(|e| panic!("{controller}/{file}: {e}"))
}

#[test]
fn namespaced_sysctls_group_add_and_hostname_env() {
    let sb = Sandbox::new();
    let out = sb.sh_ok(
        "--sysctl net.ipv4.ip_unprivileged_port_start=2000 --sysctl kernel.shmmax=12345 \
         --group-add staff --group-add 4242 --user alice --hostname box",
        "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmax; id -G; echo $HOSTNAME",
    );
    assert_eq!(out, "2000\n12345\n1000 50 4242\nbox\n");
    // A parameter of the whole host is refused; net.* with the host's network too.
    let (code, _, err) = sb.cli("run --rm --sysctl kernel.panic=1 bb true");
    assert_eq!(code, 125);
    assert!(
        err.contains("kernel.panic") && err.contains("not allowed"),
        "{err}"
    );
    let (code, _, err) = sb.cli("run --rm --network host --sysctl net.ipv4.ip_forward=1 bb true");
    assert_eq!(code, 125);
    assert!(err.contains("host's network"), "{err}");
    let (code, _, err) = sb.cli("run --rm --group-add nosuchgroup bb true");
    assert_ne!(code, 0);
    assert!(err.contains("nosuchgroup"), "{err}");
    sb.remove_all_and_assert_clean();
}

#[test]
fn ipc_pid_and_uts_sharing() {
    let sb = Sandbox::new();
    let host_ipc = std::fs::read_link("/proc/self/ns/ipc").unwrap();
    let host_uts_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let out = sb.sh_ok(
        "--ipc host --uts host",
        "readlink /proc/self/ns/ipc; hostname",
    );
    assert_eq!(out, format!("{}\n{}", host_ipc.display(), host_uts_name));
    let (code, _, err) = sb.cli("run --rm --uts host --hostname x bb true");
    assert_eq!(code, 125);
    assert!(err.contains("hostname and the UTS mode"), "{err}");
    // A container shares another's IPC and PID namespaces (and sees its processes and /dev/shm).
    let first = sb.run_d(&[
        "--name",
        "first",
        "--ipc",
        "shareable",
        IMAGE,
        "sh",
        "-c",
        "echo hi > /dev/shm/note; sleep 60",
    ]);
    wait_until("first wrote its note", Duration::from_secs(10), || {
        sb.berth(&["exec", "first", "cat", "/dev/shm/note"]).stdout == "hi\n"
    });
    let first_pid = sb.inspect(&first)["State"]["Pid"].as_i64().unwrap();
    let first_ipc = std::fs::read_link(format!("/proc/{first_pid}/ns/ipc")).unwrap();
    let out = sb.sh_ok(
        "--ipc container:first --pid container:first",
        "readlink /proc/self/ns/ipc; cat /dev/shm/note; ls /proc | grep -c '^[0-9]'",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], first_ipc.display().to_string());
    assert_eq!(lines[1], "hi");
    assert!(
        lines[2].parse::<u32>().unwrap() >= 3,
        "sees first's processes: {out}"
    );
    sb.run_d(&["--name", "private", IMAGE, "sleep", "60"]);
    let (code, _, err) = sb.cli("run --rm --ipc container:private bb true");
    assert_ne!(code, 0);
    assert!(err.contains("non-shareable IPC"), "{err}");
    let (code, _, err) = sb.cli("run --rm --ipc container:nosuch bb true");
    assert_ne!(code, 0);
    assert!(err.contains("nosuch"), "{err}");
    let (code, _, err) = sb.cli("run --rm --ipc bogus bb true");
    assert_eq!(code, 125);
    assert!(err.contains("--ipc"), "{err}");
    // --ipc none: no /dev/shm at all.
    let out = sb.sh_ok("--ipc none", "test -e /dev/shm && echo shm || echo none");
    assert_eq!(out, "none\n");
    sb.remove_all_and_assert_clean();
}

#[test]
fn memory_and_cpu_flags_reach_the_cgroup() {
    let sb = Sandbox::new();
    let id = sb.run_d(&[
        "--memory",
        "64m",
        "--memory-reservation",
        "32m",
        "--oom-kill-disable",
        "--cpu-period",
        "50000",
        "--cpu-quota",
        "25000",
        "--device-cgroup-rule",
        "c 42:7 rw",
        IMAGE,
        "sleep",
        "60",
    ]);
    assert_eq!(
        cgroup_file(&id, "memory", "memory.soft_limit_in_bytes").trim(),
        (32u64 << 20).to_string()
    );
    assert!(cgroup_file(&id, "memory", "memory.oom_control").contains("oom_kill_disable 1"));
    assert_eq!(cgroup_file(&id, "cpu", "cpu.cfs_period_us").trim(), "50000");
    assert_eq!(cgroup_file(&id, "cpu", "cpu.cfs_quota_us").trim(), "25000");
    assert!(cgroup_file(&id, "devices", "devices.list").contains("c 42:7 rw"));
    let hc = &sb.inspect(&id)["HostConfig"];
    assert_eq!(hc["MemoryReservation"], 32 << 20);
    assert_eq!(hc["CpuPeriod"], 50000);
    assert_eq!(hc["OomKillDisable"], true);
    assert_eq!(hc["DeviceCgroupRules"], serde_json::json!(["c 42:7 rw"]));
    for (flags, want) in [
        ("--cpus 1 --cpu-period 50000", "Nano CPUs and CPU Period"),
        ("--cpu-period 10", "cfs period"),
        (
            "--memory 32m --memory-reservation 64m",
            "memory reservation",
        ),
        ("--device-cgroup-rule x", "--device-cgroup-rule"),
        ("--restart on-failure:-1", "cannot be negative"),
        ("--restart always:3", "only be used with 'on-failure'"),
    ] {
        let (code, _, err) = sb.cli(&format!("run --rm {flags} bb true"));
        assert_eq!(code, 125, "{flags}: {err}");
        assert!(err.contains(want), "{flags}: {err}");
    }
    sb.remove_all_and_assert_clean();
}

#[test]
fn volumes_from_cidfile_and_log_driver() {
    let sb = Sandbox::new();
    sb.ok(&[
        "create",
        "--name",
        "data",
        "-v",
        "shared:/data",
        IMAGE,
        "true",
    ]);
    sb.sh_ok("--volumes-from data", "echo kept > /data/f");
    assert_eq!(sb.sh_ok("--volumes-from data:ro", "cat /data/f"), "kept\n");
    let (code, _) = sb.sh("--volumes-from data:ro", "echo x > /data/f");
    assert_ne!(code, 0, "read-only volumes-from");
    let cid = sb.dir().join("cid");
    let cid_arg = cid.display().to_string();
    let id = sb.ok(&["create", "--cidfile", &cid_arg, IMAGE, "true"]);
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), id.trim());
    let (code, _, err) = sb.code(&["create", "--cidfile", &cid_arg, IMAGE, "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("Container ID file found"), "{err}");
    assert_eq!(
        sb.inspect(id.trim())["HostConfig"]["ContainerIDFile"],
        cid_arg
    );
    // --log-driver none: output goes nowhere, logs says so.
    let quiet = sb.run_d(&["--log-driver", "none", IMAGE, "echo", "hidden"]);
    wait_until("it exits", Duration::from_secs(10), || {
        sb.status(&quiet) == "exited"
    });
    let (code, _, err) = sb.code(&["logs", &quiet]);
    assert_eq!(code, 1);
    assert!(err.contains("does not support reading"), "{err}");
    assert_eq!(
        sb.inspect(&quiet)["HostConfig"]["LogConfig"]["Type"],
        "none"
    );
    let (code, _, err) = sb.cli("run --rm --log-driver syslog bb true");
    assert_eq!(code, 125);
    assert!(err.contains("syslog"), "{err}");
    // logs --until keeps what came before.
    let talker = sb.run_d(&[IMAGE, "sh", "-c", "echo early; sleep 3; echo late"]);
    wait_until("it exits", Duration::from_secs(15), || {
        sb.status(&talker) == "exited"
    });
    let until = sb.ok(&["logs", "--until", "2s", &talker]);
    assert_eq!(until, "early\n", "--until 2s (two seconds ago)");
    sb.remove_all_and_assert_clean();
}

#[test]
fn attach_streams_and_sig_proxy() {
    let sb = Sandbox::new();
    let (code, out, err) = sb.code(&[
        "run",
        "--rm",
        "-a",
        "stderr",
        IMAGE,
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    // (The store's first run may also warn about the default network's subnet.)
    assert_eq!((code, out.as_str()), (0, ""));
    assert!(err.ends_with("err\n") && !err.contains("out"), "{err}");
    let (code, _, err) = sb.code(&["run", "-d", "-a", "stdout", IMAGE, "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("--attach and --detach"), "{err}");
    // --sig-proxy=false: a SIGTERM to berth ends berth, the container runs on.
    let mut cmd = sb.b.command(&[
        "run",
        "--name",
        "stay",
        "--sig-proxy=false",
        IMAGE,
        "sleep",
        "60",
    ]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = common::Reaped(cmd.spawn().unwrap());
    wait_until("stay runs", Duration::from_secs(10), || {
        sb.berth(&["inspect", "-f", "{{.State.Status}}", "stay"])
            .stdout
            == "running\n"
    });
    // SAFETY: SIGTERM to our own child process.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
    sb.id_of("stay");
    assert_eq!(
        sb.status("stay"),
        "running",
        "the container outlives its client"
    );
    sb.remove_all_and_assert_clean();
}

#[test]
fn health_checks_report_healthy_then_unhealthy() {
    let sb = Sandbox::new();
    let id = sb.run_d(&[
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "--health-timeout",
        "2s",
        IMAGE,
        "sh",
        "-c",
        "touch /tmp/ok; sleep 60",
    ]);
    let health = |sb: &Sandbox| sb.inspect(&id)["State"]["Health"].clone();
    wait_until("healthy", Duration::from_secs(20), || {
        health(&sb)["Status"] == "healthy"
    });
    let ps = sb.ok(&["ps", "--format", "{{.Status}}"]);
    assert!(ps.contains("(healthy)"), "{ps}");
    assert_eq!(
        sb.ok(&["ps", "-q", "--filter", "health=healthy"]).trim(),
        &id[..12]
    );
    sb.ok(&["exec", &id, "rm", "/tmp/ok"]);
    wait_until("unhealthy", Duration::from_secs(20), || {
        health(&sb)["Status"] == "unhealthy"
    });
    let h = health(&sb);
    assert!(h["FailingStreak"].as_u64().unwrap() >= 2, "{h}");
    let log = h["Log"].as_array().unwrap();
    assert!(!log.is_empty() && log.len() <= 5, "{h}");
    assert_ne!(log.last().unwrap()["ExitCode"], 0);
    let cfg = &sb.inspect(&id)["Config"]["Healthcheck"];
    assert_eq!(
        cfg["Test"],
        serde_json::json!(["CMD-SHELL", "test -f /tmp/ok"])
    );
    assert_eq!(cfg["Interval"], 200_000_000);
    // A probe past its timeout fails and the container keeps running.
    let slow = sb.run_d(&[
        "--health-cmd",
        "sleep 5",
        "--health-interval",
        "300ms",
        "--health-timeout",
        "300ms",
        "--health-retries",
        "1",
        IMAGE,
        "sleep",
        "60",
    ]);
    wait_until(
        "the slow check is unhealthy",
        Duration::from_secs(20),
        || sb.inspect(&slow)["State"]["Health"]["Status"] == "unhealthy",
    );
    let out = sb.inspect(&slow)["State"]["Health"]["Log"][0]["Output"].clone();
    assert!(out.as_str().unwrap().contains("exceeded timeout"), "{out}");
    let (code, _, err) = sb.cli("run --rm --health-interval soon --health-cmd true bb true");
    assert_eq!(code, 125);
    assert!(err.contains("--health-interval"), "{err}");
    sb.remove_all_and_assert_clean();
}

#[test]
fn inspect_has_dockers_keys_and_ps_its_selectors() {
    let sb = Sandbox::new();
    let a = sb.run_d(&[
        "--name",
        "alpha-1",
        "--restart",
        "on-failure:3",
        "--ulimit",
        "nofile=100:200",
        IMAGE,
        "sleep",
        "60",
    ]);
    std::thread::sleep(Duration::from_millis(1100));
    let b = sb.run_d(&["--name", "beta-1", IMAGE, "sleep", "60"]);
    let v = sb.inspect(&a);
    for key in [
        "Id",
        "Created",
        "Path",
        "Args",
        "State",
        "Image",
        "ResolvConfPath",
        "HostnamePath",
        "HostsPath",
        "LogPath",
        "Name",
        "RestartCount",
        "Driver",
        "Platform",
        "MountLabel",
        "ProcessLabel",
        "AppArmorProfile",
        "ExecIDs",
        "HostConfig",
        "GraphDriver",
        "Mounts",
        "Config",
        "NetworkSettings",
    ] {
        assert!(v.get(key).is_some(), "inspect has {key}");
    }
    let hc = &v["HostConfig"];
    assert_eq!(
        hc["RestartPolicy"],
        serde_json::json!({"Name": "on-failure", "MaximumRetryCount": 3})
    );
    assert_eq!(
        hc["Ulimits"],
        serde_json::json!([{"Name": "nofile", "Hard": 200, "Soft": 100}])
    );
    assert_eq!(hc["LogConfig"]["Type"], "json-file");
    assert!(hc["Binds"].is_null());
    assert_eq!(v["Config"]["Hostname"], &a[..12]);
    assert_eq!(v["Platform"], "linux");
    // ps: newest first, -n/-l, -s, regular-expression names.
    let names = sb.ok(&["ps", "--format", "{{.Names}}"]);
    assert_eq!(names, "beta-1\nalpha-1\n");
    assert_eq!(sb.ok(&["ps", "-l", "-q"]).trim(), &b[..12]);
    assert_eq!(sb.ok(&["ps", "-n", "2", "-q"]).lines().count(), 2);
    assert_eq!(
        sb.ok(&["ps", "-q", "--filter", "name=^/alpha-[0-9]$"])
            .trim(),
        &a[..12]
    );
    assert_eq!(
        sb.ok(&["ps", "-q", "--filter", "before=beta-1"]).trim(),
        &a[..12]
    );
    assert_eq!(
        sb.ok(&["ps", "-q", "--filter", "since=alpha-1"]).trim(),
        &b[..12]
    );
    let sized = sb.ok(&["ps", "-s", "--format", "{{.Size}}"]);
    assert!(sized.lines().all(|l| l.contains("(virtual ")), "{sized}");
    let table = sb.ok(&["ps", "-s"]);
    assert!(table.lines().next().unwrap().ends_with("SIZE"), "{table}");
    let (code, _, err) = sb.cli("ps --filter name=[");
    assert_eq!(code, 125);
    assert!(err.contains("invalid filter"), "{err}");
    sb.remove_all_and_assert_clean();
}

#[test]
fn label_file_is_read_first_and_label_overrides_it() {
    let sb = Sandbox::new();
    let file = sb.dir().join("labels");
    std::fs::write(&file, "# a comment\n\ntier=db\nowner=ops\nflag\n").unwrap();
    let line = format!(
        "create --name labelled --label-file {} -l owner=dev bb true",
        file.display()
    );
    let (code, _, err) = sb.cli(&line);
    assert_eq!(code, 0, "{err}");
    let labels = &sb.inspect("labelled")["Config"]["Labels"];
    assert_eq!(
        labels,
        &serde_json::json!({"tier": "db", "owner": "dev", "flag": ""}),
        "{labels}"
    );
    let (code, _, err) = sb.cli("create --label-file /nonexistent/labels bb true");
    assert_eq!(code, 125);
    assert!(err.contains("--label-file /nonexistent/labels"), "{err}");
    sb.remove_all_and_assert_clean();
}

#[test]
fn stop_takes_a_signal_and_timeout_and_exec_an_env_file() {
    let sb = Sandbox::new();
    let id = sb.run_d_sh(
        "--name trapper --network none",
        "trap 'echo got USR1; exit 3' USR1; while true; do sleep 0.1; done",
    );
    // exec --env-file: the file first, -e overrides it.
    let env = sb.dir().join("env");
    std::fs::write(&env, "# comment\nA=from-file\nB=from-file\n").unwrap();
    let envs = env.display().to_string();
    assert_eq!(
        sb.ok(&[
            "exec",
            "--env-file",
            &envs,
            "-e",
            "B=flag",
            "trapper",
            "sh",
            "-c",
            "echo $A $B"
        ]),
        "from-file flag\n"
    );
    // stop -s USR1 --timeout 10: the trap runs and the container exits with its own status.
    assert_eq!(
        sb.ok(&["stop", "-s", "USR1", "--timeout", "10", "trapper"]),
        "trapper\n"
    );
    assert_eq!(sb.exit_state(&id), ("exited".into(), 3));
    assert_eq!(sb.ok(&["logs", "trapper"]), "got USR1\n");
    assert_eq!(sb.ok(&["logs", "--details", "trapper"]), " got USR1\n");
    let (code, _, err) = sb.code(&["stop", "-s", "NOSUCH", "trapper"]);
    assert_eq!(
        (code, err.as_str()),
        (125, "berth: invalid signal: NOSUCH\n")
    );
    // --time stays as Docker's hidden, deprecated spelling.
    sb.ok(&["start", "trapper"]);
    assert_eq!(sb.ok(&["restart", "--time", "1", "trapper"]), "trapper\n");
    sb.remove_all_and_assert_clean();
}

#[test]
fn inspect_finds_every_kind_of_object_and_type_keeps_one() {
    let sb = Sandbox::new();
    sb.ok(&["create", "--name", "both", "-v", "both:/data", "bb", "true"]);
    let id = sb.id_of("both");
    // A container and a volume share the name: the container comes first, --type picks.
    let kind_of = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["inspect"];
        all.extend_from_slice(args);
        serde_json::from_str(&sb.ok(&all)).unwrap()
    };
    assert_eq!(kind_of(&["both"])[0]["Id"], id.as_str());
    assert_eq!(kind_of(&["--type", "volume", "both"])[0]["Name"], "both");
    assert_eq!(kind_of(&["bridge"])[0]["Name"], "bridge");
    let sized = kind_of(&["-s", "both"]);
    assert!(
        sized[0]["SizeRw"].is_u64() && sized[0]["SizeRootFs"].as_u64() > Some(0),
        "{sized}"
    );
    assert!(
        kind_of(&["both"])[0].get("SizeRw").is_none(),
        "no sizes without -s"
    );
    let sized: serde_json::Value =
        serde_json::from_str(&sb.ok(&["container", "inspect", "--size", "both"])).unwrap();
    assert!(sized[0].get("SizeRootFs").is_some(), "{sized}");
    let (code, _, err) = sb.code(&["inspect", "--type", "image", "both"]);
    assert_eq!((code, err.as_str()), (1, "berth: No such image: both\n"));
    let (code, _, err) = sb.code(&["inspect", "--type", "bogus", "both"]);
    assert_eq!(
        (code, err.as_str()),
        (1, "berth: \"bogus\" is not a valid value for --type\n")
    );
    sb.ok(&["rm", "-v", "both"]);
    sb.ok(&["volume", "rm", "both"]);
    sb.remove_all_and_assert_clean();
}

#[test]
fn domainname_is_the_containers_own() {
    let sb = Sandbox::new();
    let host = std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    assert_eq!(
        sb.sh_ok(
            "--domainname example.org --network none",
            "cat /proc/sys/kernel/domainname"
        ),
        "example.org\n"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap(),
        host,
        "the host's domain name is untouched"
    );
    sb.ok(&[
        "create",
        "--name",
        "dn",
        "--domainname",
        "example.org",
        "bb",
        "true",
    ]);
    assert_eq!(sb.inspect("dn")["Config"]["Domainname"], "example.org");
    sb.remove_all_and_assert_clean();
}

#[test]
fn oom_score_adj_reaches_the_containers_processes() {
    let sb = Sandbox::new();
    assert_eq!(
        sb.sh_ok(
            "--oom-score-adj 500 --network none",
            "cat /proc/self/oom_score_adj"
        ),
        "500\n"
    );
    sb.ok(&[
        "create",
        "--name",
        "adj",
        "--oom-score-adj=-200",
        "bb",
        "true",
    ]);
    assert_eq!(sb.inspect("adj")["HostConfig"]["OomScoreAdj"], -200);
    let (code, _, err) = sb.code(&["run", "--rm", "--oom-score-adj", "1001", "bb", "true"]);
    assert_eq!(
        (code, err.as_str()),
        (
            125,
            "berth: Invalid value 1001, range for oom score adj is [-1000, 1000]\n"
        )
    );
    sb.remove_all_and_assert_clean();
}

#[test]
fn cpuset_mems_reaches_the_cgroup() {
    let sb = Sandbox::new();
    let id = sb.run_d_sh("--cpuset-mems 0 --network none", "sleep 60");
    assert_eq!(cgroup_file(&id, "cpuset", "cpuset.mems").trim(), "0");
    assert_eq!(sb.inspect(&id)["HostConfig"]["CpusetMems"], "0");
    // This host has node 0 only, the value a cgroup inherits anyway: a node it lacks is
    // refused before the container is made, in Docker's words.
    let (code, _, err) = sb.cli("run --rm --network none --cpuset-mems 7 bb true");
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("Requested memory nodes are not available - requested 7, available: 0"),
        "{err}"
    );
    sb.remove_all_and_assert_clean();
}
