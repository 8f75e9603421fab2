//! A pod's whole life through the CRI, once with the `berth` handler (berth-runtime) and once
//! with `runc`, on the same containerd in the same run: the sandbox (with pod sysctls) and two
//! containers sharing its network and IPC (one serves on 127.0.0.1, the other fetches from it,
//! in a working directory its image lacks), ExecSync output and exit codes, CRI log files, a
//! memory update seen from inside, stats, a sidecar in the pod's pid namespace, a privileged
//! container whose Bidirectional mount reaches the host, a terminal, a failed start, an exit
//! code and an OOM kill reported through the shim, stop and removal, then nothing left: no
//! cgroup below the pod's parent, no mount, no process, no shim or shim socket, no runtime
//! state. A table compares the two handlers' times. As root; a missing tool fails the test
//! unless `BERTH_ALLOW_SKIP=1`.

use berth_cri_tests::pod::*;
use berth_cri_tests::{cri::CallResult, handlers, have, missing_tools, parse_cri_log, Node};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const MIB: i64 = 1024 * 1024;

/// The steps of one handler's run, in order, with their times.
#[derive(Default)]
struct Report {
    handler: String,
    steps: Vec<(&'static str, Duration)>,
    /// Things that are allowed to differ between handlers, shown side by side.
    notes: BTreeMap<&'static str, String>,
}

impl Report {
    fn time<T>(&mut self, step: &'static str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        self.steps.push((step, t.elapsed()));
        out
    }
}

/// Unwraps a CRI answer, failing with containerd's last log lines.
#[track_caller]
fn ok<T>(node: &Node, r: CallResult<T>) -> T {
    r.unwrap_or_else(|e| {
        panic!(
            "{e}\n--- containerd log (tail)\n{}",
            node.containerd.log_tail(30)
        )
    })
}

/// Waits for a container to reach `state` (a CRI ContainerState value).
#[track_caller]
fn wait_state(node: &Node, id: &str, state: i32) -> k8s_cri::v1::ContainerStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = ok(node, node.cri.container_status(id));
        if st.state == state {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "container {id} never reached state {state}: {st:?}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// ExecSync, returning (stdout, stderr, exit code).
#[track_caller]
fn exec(node: &Node, id: &str, cmd: &[&str]) -> (String, String, i32) {
    let r = ok(node, node.cri.exec_sync(id, cmd, 10));
    (
        String::from_utf8_lossy(&r.stdout).into_owned(),
        String::from_utf8_lossy(&r.stderr).into_owned(),
        r.exit_code,
    )
}

/// The namespace links (net, ipc, uts, pid) a process in the container sees for itself.
#[track_caller]
fn namespaces_inside(node: &Node, id: &str) -> Vec<String> {
    let (out, err, code) = exec(
        node,
        id,
        &[
            "sh",
            "-c",
            "for ns in net ipc uts pid; do readlink /proc/self/ns/$ns; done",
        ],
    );
    assert_eq!(code, 0, "readlink in {id}: {err}");
    out.lines().map(str::to_string).collect()
}

fn namespaces_of_pid(pid: i64) -> Vec<String> {
    ["net", "ipc", "uts", "pid"]
        .iter()
        .map(|ns| {
            std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_else(|e| panic!("/proc/{pid}/ns/{ns}: {e}"))
        })
        .collect()
}

/// The memory limit as the container's own /sys/fs/cgroup shows it (v1 file, or v2's).
const READ_MEMORY_LIMIT: &str =
    "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max";

const SERVER: &str = "mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www";
const CLIENT: &str = "trap 'exit 0' TERM; until wget -q -O - http://127.0.0.1:8080/; do sleep 0.1; done; echo to-stderr >&2; sleep 3600 & wait";

/// A host directory bind-mounted on itself and made shared (what a Bidirectional mount needs);
/// unmounted, with whatever a container propagated into it, when dropped.
struct SharedMount(std::path::PathBuf);

impl SharedMount {
    fn new(dir: &std::path::Path) -> SharedMount {
        use nix::mount::{mount, MsFlags};
        mount(Some(dir), dir, None::<&str>, MsFlags::MS_BIND, None::<&str>).expect("bind mount");
        let me = SharedMount(dir.to_path_buf());
        mount(
            None::<&str>,
            dir,
            None::<&str>,
            MsFlags::MS_SHARED,
            None::<&str>,
        )
        .expect("make shared");
        me
    }
}

impl Drop for SharedMount {
    fn drop(&mut self) {
        berth_runtime_tests::leaks::unmount_under(&self.0);
    }
}

fn pod_lifecycle(node: &Node, handler: &str) -> Report {
    let mut r = Report {
        handler: handler.to_string(),
        ..Default::default()
    };
    let cri = &node.cri;
    let uid = format!("{handler}-{}", std::process::id());
    let parent = node.cgroups.pod(&uid);
    let logs = node.log_dir(handler);
    std::fs::create_dir_all(&logs).unwrap();
    let name = format!("web-{handler}");
    let mut sandbox = sandbox_config(&name, &uid, &logs.display().to_string(), &parent);
    // Pod sysctls, set in the sandbox's namespaces (its netns is containerd's, joined by path).
    let linux = sandbox.linux.as_mut().unwrap();
    linux
        .sysctls
        .insert("net.ipv4.ip_local_port_range".into(), "20000 30000".into());
    linux
        .sysctls
        .insert("kernel.shm_rmid_forced".into(), "1".into());
    // A pod that may hold a privileged container (the one with the Bidirectional mount below).
    linux.security_context.as_mut().unwrap().privileged = true;

    // The sandbox, through this handler's binary.
    let pod = ok(
        node,
        r.time("RunPodSandbox", || cri.run_pod_sandbox(&sandbox, handler)),
    );
    let status = ok(node, cri.pod_sandbox_status(&pod));
    let st = status.status.as_ref().expect("pod status");
    assert_eq!(st.state, SANDBOX_READY, "pod {pod}: {st:?}");
    let ip = st
        .network
        .as_ref()
        .map(|n| n.ip.clone())
        .unwrap_or_default();
    assert_eq!(ip, "192.0.2.10", "the pod's address from CNI");
    let info: serde_json::Value =
        serde_json::from_str(status.info.get("info").expect("verbose info")).expect("info JSON");
    let sandbox_pid = info["pid"].as_i64().expect("sandbox pid");
    // containerd asks the shim, which asks the runtime (`state`).
    assert_eq!(info["processStatus"], "running", "sandbox info: {info}");
    let runtime_root = node.containerd.runtime_root(handler);
    assert!(
        runtime_root.join(&pod).join("state.json").exists(),
        "{handler} holds no state for the sandbox in {}",
        runtime_root.display()
    );
    let shim_socket = node.containerd.shim_socket(&pod);
    assert!(
        shim_socket.exists(),
        "no shim socket at {}",
        shim_socket.display()
    );

    // Two containers in the pod: a server on 127.0.0.1 and a client that fetches from it.
    let server_cfg = container_config("server", &node.busybox, &["sh", "-c", SERVER], 64 * MIB);
    let mut client_cfg = container_config("client", &node.busybox, &["sh", "-c", CLIENT], 0);
    client_cfg.working_dir = "/work/dir".into(); // not in the image: the runtime makes it
    let server = ok(
        node,
        r.time("CreateContainer", || {
            cri.create_container(&pod, &server_cfg, &sandbox)
        }),
    );
    ok(
        node,
        r.time("StartContainer", || cri.start_container(&server)),
    );
    let client = ok(node, cri.create_container(&pod, &client_cfg, &sandbox));
    ok(node, cri.start_container(&client));
    wait_state(node, &server, CONTAINER_RUNNING);
    wait_state(node, &client, CONTAINER_RUNNING);

    // Namespaces: net, ipc and uts are the sandbox's (joined by path), pid is each one's own.
    let sb = namespaces_of_pid(sandbox_pid);
    let s = namespaces_inside(node, &server);
    let c = namespaces_inside(node, &client);
    for (i, kind) in ["net", "ipc", "uts"].iter().enumerate() {
        assert_eq!(s[i], sb[i], "server's {kind} namespace is not the pod's");
        assert_eq!(c[i], sb[i], "client's {kind} namespace is not the pod's");
    }
    assert!(
        s[3] != c[3] && s[3] != sb[3],
        "each container has its own pid namespace: {s:?} {c:?} {sb:?}"
    );

    // RuntimeDefault seccomp is on (filter mode) and the kubelet's oom_score_adj is applied.
    let (out, _, _) = exec(node, &server, &["sh", "-c", "grep ^Seccomp: /proc/1/status /proc/self/status; cat /proc/1/oom_score_adj /proc/self/oom_score_adj"]);
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        words[..5],
        [
            "/proc/1/status:Seccomp:",
            "2",
            "/proc/self/status:Seccomp:",
            "2",
            "1000"
        ],
        "{out}"
    );
    r.notes
        .insert("oom_score_adj of an ExecSync process", words[5].to_string());

    // ExecSync: output, stderr and exit code; the pod's loopback reaches the server.
    let (out, _, code) = r.time("ExecSync", || {
        exec(
            node,
            &client,
            &["wget", "-q", "-O", "-", "http://127.0.0.1:8080/"],
        )
    });
    assert_eq!(
        (out.as_str(), code),
        (format!("hello from {name}\n").as_str(), 0)
    );
    let (out, err, code) = exec(
        node,
        &client,
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    assert_eq!((out.as_str(), err.as_str(), code), ("out\n", "err\n", 3));
    let missing = cri.exec_sync(&client, &["no-such-command"], 10);
    r.notes.insert(
        "ExecSync of a missing command",
        match &missing {
            Ok(x) => format!("exit {}", x.exit_code),
            Err(e) => format!("error: {}", e.message()),
        },
    );
    match missing {
        Ok(x) => assert_ne!(x.exit_code, 0, "a missing command succeeded"),
        Err(e) => assert!(e.message().contains("no-such-command"), "{e}"),
    }

    // The working directory, and the pod's sysctls seen from a container sharing its namespaces.
    let (out, _, _) = exec(
        node,
        &client,
        &[
            "sh",
            "-c",
            "pwd; cat /proc/sys/net/ipv4/ip_local_port_range /proc/sys/kernel/shm_rmid_forced",
        ],
    );
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["/work/dir", "20000", "30000", "1"]
    );

    // IPC: /dev/shm is the pod's, seen by both.
    let (token, _, code) = exec(
        node,
        &server,
        &[
            "sh",
            "-c",
            "echo shared-$$ > /dev/shm/token && cat /dev/shm/token",
        ],
    );
    assert_eq!(code, 0);
    let (seen, _, _) = exec(node, &client, &["cat", "/dev/shm/token"]);
    assert_eq!(seen, token, "the client does not see the server's /dev/shm");

    // The CRI log file: the client printed the page to stdout and a line to stderr.
    let client_log = logs.join("client.log");
    let logged = berth_cri_tests::wait_for(Duration::from_secs(10), || {
        let lines = parse_cri_log(&client_log);
        lines.iter().any(|l| l.0 == "stderr" && l.2 == "to-stderr")
    });
    let lines = parse_cri_log(&client_log);
    assert!(logged, "client log {}: {lines:?}", client_log.display());
    // (Two streams, two pipes: their lines may come in either order.)
    let page = (
        "stdout".to_string(),
        "F".to_string(),
        format!("hello from {name}"),
    );
    assert!(
        lines.contains(&page),
        "client log {}: {lines:?}",
        client_log.display()
    );

    // UpdateContainerResources: a new memory limit, read from inside the container.
    let before = exec(node, &server, &["sh", "-c", READ_MEMORY_LIMIT]).0;
    assert_eq!(before.trim(), (64 * MIB).to_string());
    let update = k8s_cri::v1::LinuxContainerResources {
        cpu_shares: 2,
        memory_limit_in_bytes: 96 * MIB,
        oom_score_adj: 1000,
        ..Default::default()
    };
    ok(
        node,
        r.time("UpdateContainerResources", || {
            cri.update_container_resources(&server, update)
        }),
    );
    let after = exec(node, &server, &["sh", "-c", READ_MEMORY_LIMIT]);
    assert_eq!(
        after.0.trim(),
        (96 * MIB).to_string(),
        "the update is not seen inside: {after:?}"
    );

    // Stats: the shim finds the container's cgroups from its pid and reads them.
    let stats = ok(
        node,
        r.time("ContainerStats", || cri.container_stats(&server)),
    );
    let memory = stats
        .memory
        .and_then(|m| m.working_set_bytes)
        .map(|v| v.value);
    let cpu = stats
        .cpu
        .and_then(|c| c.usage_core_nano_seconds)
        .map(|v| v.value);
    assert!(
        memory.is_some_and(|m| m > 0) && cpu.is_some_and(|c| c > 0),
        "stats: memory {memory:?}, cpu {cpu:?}"
    );

    // A sidecar in the pod's pid namespace (joined by path), read-only root, not root. Its init
    // is not pid 1 there, so on stop the shim kills all of its processes (`kill --all`).
    let mut sidecar_cfg = container_config(
        "sidecar",
        &node.busybox,
        &["sh", "-c", "sleep 3600 & sleep 3600 & wait"],
        0,
    );
    let sec = security(&mut sidecar_cfg);
    sec.namespace_options.as_mut().unwrap().pid = NS_POD;
    sec.readonly_rootfs = true;
    sec.run_as_user = Some(k8s_cri::v1::Int64Value { value: 65534 });
    let sidecar = ok(node, cri.create_container(&pod, &sidecar_cfg, &sandbox));
    ok(node, cri.start_container(&sidecar));
    wait_state(node, &sidecar, CONTAINER_RUNNING);
    let ns = namespaces_inside(node, &sidecar);
    assert_eq!(
        ns[3], sb[3],
        "the sidecar is not in the pod's pid namespace"
    );
    let (out, _, _) = exec(
        node,
        &sidecar,
        &["sh", "-c", "id -u; cat /proc/1/cmdline | tr '\\0' ' '"],
    );
    assert!(
        out.starts_with("65534\n") && out.contains("/pause"),
        "sidecar sees: {out:?}"
    );
    let (_, err, code) = exec(node, &sidecar, &["touch", "/written"]);
    assert!(
        code != 0 && err.contains("Read-only file system"),
        "{code} {err}"
    );
    let sidecar_cgroup = format!("{parent}/{sidecar}");
    ok(
        node,
        r.time("StopContainer (shared pid ns)", || {
            cri.stop_container(&sidecar, 10)
        }),
    );
    let st = wait_state(node, &sidecar, CONTAINER_EXITED);
    assert_eq!(st.exit_code, 143, "{st:?}");
    let left = berth_runtime_tests::cgroup::read("pids", &sidecar_cgroup, "cgroup.procs")
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "the sidecar's processes outlived its stop: {left}"
    );

    // A privileged container with a Bidirectional mount: a mount it makes inside shows on the host
    // (containerd asks for rootfsPropagation shared and an rshared bind of a shared host mount).
    let shared = node.dir.join(format!("shared-{handler}"));
    std::fs::create_dir_all(shared.join("inner")).unwrap();
    let shared_mount = SharedMount::new(&shared);
    let mut priv_cfg = container_config(
        "privileged",
        &node.busybox,
        &[
            "sh",
            "-c",
            "mount -t tmpfs bidir /shared/inner && exec sleep 3600",
        ],
        0,
    );
    security(&mut priv_cfg).privileged = true;
    priv_cfg.mounts.push(k8s_cri::v1::Mount {
        container_path: "/shared".into(),
        host_path: shared.display().to_string(),
        propagation: k8s_cri::v1::MountPropagation::PropagationBidirectional as i32,
        ..Default::default()
    });
    let privileged = ok(node, cri.create_container(&pod, &priv_cfg, &sandbox));
    ok(
        node,
        r.time("StartContainer (privileged)", || {
            cri.start_container(&privileged)
        }),
    );
    wait_state(node, &privileged, CONTAINER_RUNNING);
    let inner = shared.join("inner");
    let propagated = berth_cri_tests::wait_for(Duration::from_secs(10), || {
        berth_runtime_tests::leaks::mounts_under(&inner).contains(&inner)
    });
    assert!(
        propagated,
        "the container's mount did not reach the host at {}",
        inner.display()
    );
    ok(node, cri.stop_container(&privileged, 0));
    wait_state(node, &privileged, CONTAINER_EXITED);
    drop(shared_mount); // the propagated tmpfs and the bind: the test's own mounts

    // A container with a terminal (the shim's console socket): its output reaches the log.
    let mut tty_cfg = container_config("tty", &node.busybox, &["sh", "-c", "tty; echo done"], 0);
    tty_cfg.tty = true;
    let tty = ok(node, cri.create_container(&pod, &tty_cfg, &sandbox));
    ok(node, cri.start_container(&tty));
    let st = wait_state(node, &tty, CONTAINER_EXITED);
    assert_eq!(
        (st.exit_code, st.reason.as_str()),
        (0, "Completed"),
        "{st:?}"
    );
    let tty_log = parse_cri_log(&logs.join("tty.log"));
    assert!(
        tty_log.iter().any(|l| l.2.starts_with("/dev/pts/"))
            && tty_log.iter().any(|l| l.2.trim_end() == "done"),
        "tty log: {tty_log:?}"
    );

    // A command that does not exist: the runtime's create fails, and containerd says why.
    let bad_cfg = container_config("bad", &node.busybox, &["no-such-command"], 0);
    let bad = ok(node, cri.create_container(&pod, &bad_cfg, &sandbox));
    let start = cri.start_container(&bad);
    let message = start
        .as_ref()
        .err()
        .map(|e| e.message())
        .unwrap_or_default();
    assert!(
        message.contains("no-such-command"),
        "StartContainer of a missing command: {start:?}"
    );
    r.notes
        .insert("StartContainer of a missing command", message);
    let st = ok(node, cri.container_status(&bad));
    r.notes.insert(
        "StartContainer of a missing command, then its status",
        format!("{} {} {}", st.state, st.exit_code, st.reason),
    );

    // Exit codes through the shim: a plain exit 3, and an OOM kill (137, OOMKilled). The hog's
    // limit leaves room for the runtime's own init before the exec (runc's init alone came close
    // to 16 MiB in the v2 guest and was killed before StartContainer returned).
    let exit3_cfg = container_config("exit3", &node.busybox, &["sh", "-c", "echo bye; exit 3"], 0);
    let exit3 = ok(node, cri.create_container(&pod, &exit3_cfg, &sandbox));
    ok(node, cri.start_container(&exit3));
    let st = wait_state(node, &exit3, CONTAINER_EXITED);
    assert_eq!((st.exit_code, st.reason.as_str()), (3, "Error"), "{st:?}");
    let hog_cfg = container_config(
        "hog",
        &node.busybox,
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"],
        64 * MIB,
    );
    let hog = ok(node, cri.create_container(&pod, &hog_cfg, &sandbox));
    ok(node, cri.start_container(&hog));
    let st = r.time("OOM kill reported", || {
        wait_state(node, &hog, CONTAINER_EXITED)
    });
    assert_eq!(
        (st.exit_code, st.reason.as_str()),
        (137, "OOMKilled"),
        "{st:?}"
    );

    // Stop: the client traps SIGTERM and exits 0; the server (httpd as pid 1 ignores it) is
    // killed after the grace period.
    ok(
        node,
        r.time("StopContainer (SIGTERM)", || {
            cri.stop_container(&client, 10)
        }),
    );
    let st = wait_state(node, &client, CONTAINER_EXITED);
    assert_eq!(st.exit_code, 0, "{st:?}");
    ok(
        node,
        r.time("StopContainer (SIGKILL after 1 s)", || {
            cri.stop_container(&server, 1)
        }),
    );
    let st = wait_state(node, &server, CONTAINER_EXITED);
    assert_eq!(st.exit_code, 137, "{st:?}");
    r.notes
        .insert("server's reason after SIGKILL", st.reason.clone());

    // Removal, then nothing left.
    r.time("RemoveContainer x8", || {
        for id in [
            &client,
            &server,
            &exit3,
            &hog,
            &sidecar,
            &privileged,
            &tty,
            &bad,
        ] {
            ok(node, cri.remove_container(id));
        }
    });
    ok(
        node,
        r.time("StopPodSandbox", || cri.stop_pod_sandbox(&pod)),
    );
    ok(
        node,
        r.time("RemovePodSandbox", || cri.remove_pod_sandbox(&pod)),
    );
    assert!(ok(node, cri.list_pod_sandboxes())
        .iter()
        .all(|p| p.id != pod));
    let gone = berth_cri_tests::wait_for(Duration::from_secs(10), || !shim_socket.exists());
    assert!(gone, "the shim's socket {} is left", shim_socket.display());
    let left = node.cgroups.children_of(&parent);
    assert!(left.is_empty(), "cgroups left below {parent}: {left:?}");
    assert!(
        node.cgroups.remove_pod(&parent),
        "the pod's parent {parent} could not be removed"
    );
    let state: Vec<_> = std::fs::read_dir(&runtime_root)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        state.is_empty(),
        "{handler} state left in {}: {state:?}",
        runtime_root.display()
    );
    let mounts = node.mounts();
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    let procs = node.stray_processes();
    assert!(procs.is_empty(), "processes left: {procs:?}");
    r
}

fn print_comparison(reports: &[Report]) {
    let mut out = String::from("\nCRI pod lifecycle, same containerd, same run (ms):\n");
    out.push_str(&format!("{:<36}", "step"));
    for r in reports {
        out.push_str(&format!("{:>10}", r.handler));
    }
    out.push('\n');
    for (i, (step, _)) in reports[0].steps.iter().enumerate() {
        out.push_str(&format!("{step:<36}"));
        for r in reports {
            let ms = r.steps.get(i).map(|s| s.1.as_secs_f64() * 1000.0);
            out.push_str(&format!("{:>10.1}", ms.unwrap_or(f64::NAN)));
        }
        out.push('\n');
    }
    for key in reports[0].notes.keys() {
        out.push_str(&format!("{key}:\n"));
        for r in reports {
            out.push_str(&format!(
                "  {:<8}{}\n",
                r.handler,
                r.notes.get(key).cloned().unwrap_or_default()
            ));
        }
    }
    println!("{out}");
}

#[test]
fn a_pod_lives_and_dies_through_the_cri_with_berth_as_with_runc() {
    if let Some(missing) = missing_tools() {
        assert!(
            std::env::var_os("BERTH_ALLOW_SKIP").is_some_and(|v| v == "1"),
            "the CRI test needs {missing} (.ci/run installs them; BERTH_ALLOW_SKIP=1 skips)"
        );
        eprintln!("skipped: missing {missing}");
        return;
    }
    let node = Node::start(&handlers());
    ok(&node, node.cri.pull_image(&node.busybox));
    ok(&node, node.cri.pull_image(&node.pause));
    let reports: Vec<Report> = handlers()
        .iter()
        .map(|h| pod_lifecycle(&node, &h.name))
        .collect();
    print_comparison(&reports);
    let status_of_bad =
        |r: &Report| r.notes["StartContainer of a missing command, then its status"].clone();
    assert_eq!(
        status_of_bad(&reports[0]),
        status_of_bad(&reports[1]),
        "a failed start is reported differently"
    );
}

/// The section of a `containerd config dump` that starts at `header`, up to the next header.
fn section<'a>(dump: &'a str, header: &str) -> &'a str {
    let start = dump
        .find(header)
        .unwrap_or_else(|| panic!("no {header} in the dump"));
    let rest = &dump[start + header.len()..];
    &rest[..rest.find("\n\n").unwrap_or(rest.len())]
}

/// docs/cri/containerd-config.toml is a config containerd 1.6 takes: its `config dump` shows
/// the berth handler (the runc v2 shim running berth-runtime, without systemd cgroups) beside
/// runc, runc as the default; and the documented RuntimeClass names that handler.
#[test]
fn the_documented_containerd_config_registers_berth_beside_runc() {
    if !have("containerd") {
        assert!(
            std::env::var_os("BERTH_ALLOW_SKIP").is_some_and(|v| v == "1"),
            "containerd is not installed (.ci/run installs it; BERTH_ALLOW_SKIP=1 skips)"
        );
        return;
    }
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cri");
    let out = std::process::Command::new("containerd")
        .arg("--config")
        .arg(docs.join("containerd-config.toml"))
        .args(["config", "dump"])
        .output()
        .expect("containerd config dump");
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cri = r#"[plugins."io.containerd.grpc.v1.cri".containerd"#;
    assert!(section(&dump, &format!("{cri}]")).contains(r#"default_runtime_name = "runc""#));
    for handler in ["runc", "berth"] {
        let runtime = section(&dump, &format!("{cri}.runtimes.{handler}]"));
        assert!(
            runtime.contains(r#"runtime_type = "io.containerd.runc.v2""#),
            "{runtime}"
        );
        let options = section(&dump, &format!("{cri}.runtimes.{handler}.options]"));
        assert!(options.contains("SystemdCgroup = false"), "{options}");
    }
    let berth = section(&dump, &format!("{cri}.runtimes.berth.options]"));
    assert!(
        berth.contains(r#"BinaryName = "/usr/local/bin/berth-runtime""#),
        "{berth}"
    );
    let class = std::fs::read_to_string(docs.join("runtimeclass.yaml")).unwrap();
    assert!(class.contains("kind: RuntimeClass") && class.contains("\nhandler: berth\n"));
}
