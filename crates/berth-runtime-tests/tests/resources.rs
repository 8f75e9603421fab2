//! Cgroup resources seen from inside and from the host: a memory limit OOM-kills and is
//! readable in the container, a pids limit makes fork fail, the CPU quota is written,
//! `update` changes the memory limit, `pause`/`resume` freeze and thaw. Each test reads the v1
//! files on a v1 (or hybrid) host and the v2 files on a pure v2 host (the v2 lane's guest).

use berth_runtime_tests::{cgroup, fixture::cgroups_path_for, Fixture};
use serde_json::json;

const MIB: u64 = 1024 * 1024;

/// A memory limit of `bytes` with no swap on top where the host accounts swap (v2 always does;
/// the runtime leaves a missing memory.swap.max alone when the swap limit is 0).
fn limit_memory(fx: &mut Fixture, bytes: u64) {
    let mut memory = json!({"limit": bytes});
    if cgroup::is_v2()
        || std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
    {
        memory["swap"] = json!(bytes);
    }
    fx.bundle.set_resource("memory", memory);
}

/// The memory limit file as the container sees it at /sys/fs/cgroup.
fn memory_limit_file_inside() -> &'static str {
    if cgroup::is_v2() {
        "/sys/fs/cgroup/memory.max"
    } else {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    }
}

#[test]
fn memory_limit_is_visible_inside() {
    let mut fx = Fixture::new("memread", &["cat", memory_limit_file_inside()]);
    limit_memory(&mut fx, 32 * MIB);
    assert_eq!(fx.run().ok().stdout.trim(), (32 * MIB).to_string());
}

#[test]
fn memory_limit_oom_kills_the_container() {
    // `tail` of an endless line keeps the whole line in memory.
    let mut fx = Fixture::new("oom", &["tail", "/dev/zero"]);
    limit_memory(&mut fx, 32 * MIB);
    let out = fx.run();
    assert_eq!(out.code(), 137, "expected SIGKILL by the OOM killer: {out}");
}

#[test]
fn pids_limit_makes_fork_fail() {
    let mut fx = Fixture::new(
        "pids",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 20 ]; do sleep 5 & i=$((i+1)); done; echo done",
        ],
    );
    fx.bundle.set_resource("pids", json!({"limit": 10}));
    let out = fx.run();
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("fork") || all.contains("Resource temporarily unavailable"),
        "{out}"
    );
}

#[test]
fn cpu_quota_is_written_to_the_cgroup() {
    let mut fx = Fixture::new("cpuq", &["sleep", "100"]);
    fx.bundle.set_resource(
        "cpu",
        json!({"quota": 50000, "period": 100000, "shares": 512}),
    );
    fx.run_detached();
    let cg = cgroups_path_for(&fx.id);
    let read = |file: &str| cgroup::read("cpu", &cg, file);
    if cgroup::is_v2() {
        assert_eq!(read("cpu.max").as_deref(), Some("50000 100000"));
        // runc's conversion: 1 + (512 - 2) * 9999 / 262142.
        assert_eq!(read("cpu.weight").as_deref(), Some("20"));
    } else {
        assert_eq!(read("cpu.cfs_quota_us").as_deref(), Some("50000"));
        assert_eq!(read("cpu.cfs_period_us").as_deref(), Some("100000"));
        assert_eq!(read("cpu.shares").as_deref(), Some("512"));
    }
}

#[test]
fn update_memory_changes_the_limit() {
    let mut fx = Fixture::new("update", &["sleep", "100"]);
    limit_memory(&mut fx, 64 * MIB);
    fx.run_detached();
    let memsw = cgroup::is_v2()
        || std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists();
    let mut args = vec!["update", "--memory", "128M"];
    if memsw {
        args.extend(["--memory-swap", "128M"]);
    }
    args.push(&fx.id);
    fx.rt.exec(&args).ok();
    let inside = fx.exec_in(&[], &["cat", memory_limit_file_inside()]).ok();
    assert_eq!(inside.stdout.trim(), (128 * MIB).to_string());
}

#[test]
fn update_pids_limit_changes_pids_max() {
    let fx = Fixture::new("updpids", &["sleep", "100"]);
    fx.run_detached();
    fx.rt.exec(&["update", "--pids-limit", "42", &fx.id]).ok();
    let cg = cgroups_path_for(&fx.id);
    assert_eq!(cgroup::read("pids", &cg, "pids.max").as_deref(), Some("42"));
}

/// What containerd's shim does for a CRI UpdateContainerResources: the spec's whole `resources`
/// on stdin (`update --resources - ID`), device list included. Only the limits change: the
/// device rules stay those of create, default allow list and all, so /dev/null still works.
#[test]
fn update_with_the_shims_whole_resources_keeps_the_device_rules() {
    let mut fx = Fixture::new("updshim", &["sleep", "100"]);
    limit_memory(&mut fx, 64 * MIB);
    fx.run_detached();
    let mut memory = json!({"limit": 96 * MIB});
    if cgroup::is_v2()
        || std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
    {
        memory["swap"] = json!(96 * MIB);
    }
    let resources = json!({
        "devices": [{"allow": false, "access": "rwm"}],
        "memory": memory,
        "cpu": {"shares": 2},
    });
    let file = fx.base.join("resources.json");
    std::fs::write(&file, resources.to_string()).unwrap();
    let args = ["update", "--resources", "-", fx.id.as_str()];
    let mut cmd = fx.rt.command(&args);
    cmd.stdin(std::fs::File::open(&file).unwrap());
    fx.rt
        .spawn_command(cmd, &args)
        .wait(berth_runtime_tests::runtime::DEFAULT_TIMEOUT)
        .ok();
    let script = format!("echo x > /dev/null && cat {}", memory_limit_file_inside());
    let inside = fx.exec_in(&[], &["sh", "-c", &script]).ok();
    assert_eq!(inside.stdout.trim(), (96 * MIB).to_string());
}

/// v1's freezer.state, or the same word from v2's cgroup.events `frozen` key.
fn freezer_state(cg: &str) -> String {
    if cgroup::is_v2() {
        let events = cgroup::read("freezer", cg, "cgroup.events").unwrap_or_default();
        match cgroup::keyed(&events, "frozen") {
            Some(1) => "FROZEN".into(),
            Some(0) => "THAWED".into(),
            _ => format!("unknown: {events}"),
        }
    } else {
        cgroup::read("freezer", cg, "freezer.state").unwrap_or_default()
    }
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let fx = Fixture::new("pause", &["sleep", "100"]);
    fx.run_detached();
    let cg = cgroups_path_for(&fx.id);
    fx.rt.exec(&["pause", &fx.id]).ok();
    assert_eq!(fx.rt.status(&fx.id), "paused");
    assert_eq!(freezer_state(&cg), "FROZEN");
    let pid = fx.rt.pid(&fx.id);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    assert!(
        !stat.contains(") R "),
        "a frozen process is running: {stat}"
    );
    fx.rt.exec(&["resume", &fx.id]).ok();
    assert_eq!(fx.rt.status(&fx.id), "running");
    assert_eq!(freezer_state(&cg), "THAWED");
}

#[test]
fn events_stats_prints_one_json_object() {
    let mut fx = Fixture::new("events", &["sleep", "100"]);
    limit_memory(&mut fx, 64 * MIB);
    fx.run_detached();
    let out = fx.rt.exec(&["events", "--stats", &fx.id]).ok();
    let ev = out.json();
    assert_eq!(ev["type"], "stats", "{out}");
    assert_eq!(ev["id"], fx.id.as_str());
    assert_eq!(
        ev["data"]["memory"]["usage"]["limit"].as_u64(),
        Some(64 * MIB),
        "{out}"
    );
    assert!(
        ev["data"]["pids"]["current"].as_u64().unwrap_or(0) >= 1,
        "{out}"
    );
}
