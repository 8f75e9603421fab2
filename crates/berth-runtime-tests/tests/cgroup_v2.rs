//! cgroup v2 limits against the real kernel: what the runtime writes to a container's cgroup2
//! directory and what the kernel then does (OOM kills, swap, failed forks, CPU throttling,
//! pinning). Every test skips on a host that is not pure v2; scripts/v2-lane.sh runs them in a
//! guest booted with `cgroup_no_v1=all`.

use berth_runtime_tests::cgroup::{self, keyed};
use berth_runtime_tests::runtime::Running;
use berth_runtime_tests::{fixture::cgroups_path_for, wait_for, Fixture};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

const MIB: u64 = 1024 * 1024;

/// The container's cgroup2 directory on the host.
fn cg_dir(fx: &Fixture) -> PathBuf {
    cgroup::v2_dir(&cgroups_path_for(&fx.id))
}

/// Reads (trimmed) a file of the container's cgroup.
fn cg_read(fx: &Fixture, file: &str) -> String {
    let path = cg_dir(fx).join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// A key of a flat-keyed file of the container's cgroup (memory.events, cpu.stat, …).
fn cg_key(fx: &Fixture, file: &str, key: &str) -> u64 {
    let text = cg_read(fx, file);
    keyed(&text, key).unwrap_or_else(|| panic!("{file} has no {key:?}: {text}"))
}

/// True when the kernel has swap and swap accounting (the lane's guest always has both).
fn has_swap() -> bool {
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    let on = swaps.lines().count() > 1;
    assert!(
        on || !cgroup::in_v2_lane(),
        "the v2 lane's guest has no swap"
    );
    on
}

#[test]
fn memory_max_low_and_swap_max_are_written_and_seen_inside() {
    if cgroup::skip_unless_v2() {
        return;
    }
    let mut fx = Fixture::new("v2mem", &["sleep", "100"]);
    fx.bundle.set_resource(
        "memory",
        json!({"limit": 32 * MIB, "swap": 48 * MIB, "reservation": 16 * MIB}),
    );
    fx.run_detached();
    assert_eq!(cg_read(&fx, "memory.max"), (32 * MIB).to_string());
    assert_eq!(cg_read(&fx, "memory.low"), (16 * MIB).to_string());
    // OCI swap is memory+swap; v2's memory.swap.max is swap alone.
    assert_eq!(cg_read(&fx, "memory.swap.max"), (16 * MIB).to_string());
    let inside = fx.exec_in(&[], &["cat", "/sys/fs/cgroup/memory.max"]).ok();
    assert_eq!(inside.stdout.trim(), (32 * MIB).to_string());
}

#[test]
fn memory_max_oom_kill_is_counted_and_reported_by_events() {
    if cgroup::skip_unless_v2() {
        return;
    }
    // The init waits for /tmp/go, then runs `tail` of an endless line (it keeps the whole line).
    let script = "while [ ! -e /tmp/go ]; do sleep 0.05; done; tail /dev/zero; \
                  echo $? > /tmp/tail-status; sleep 100";
    let mut fx = Fixture::new("v2oom", &["sh", "-c", script]);
    // memory+swap equal to the limit: memory.swap.max 0, so the lane's swap cannot save it.
    fx.bundle
        .set_resource("memory", json!({"limit": 16 * MIB, "swap": 16 * MIB}));
    fx.run_detached();
    assert_eq!(cg_key(&fx, "memory.events", "oom_kill"), 0);
    let events = Background(Some(fx.rt.spawn(&[
        "events",
        "--interval",
        "100ms",
        &fx.id,
    ])));
    let printed = |what: &str| events.0.as_ref().unwrap().stdout_so_far().contains(what);
    // Stats lines mean `events` has read the OOM count it compares against.
    assert!(
        wait_for(Duration::from_secs(10), || printed("\"stats\"")),
        "events printed no stats"
    );
    std::fs::write(fx.bundle.rootfs().join("tmp/go"), "").unwrap();
    let status_file = fx.bundle.rootfs().join("tmp/tail-status");
    let status = || std::fs::read_to_string(&status_file).unwrap_or_default();
    assert!(
        wait_for(Duration::from_secs(30), || !status().trim().is_empty()),
        "tail was never OOM-killed"
    );
    assert_eq!(status().trim(), "137");
    assert!(cg_key(&fx, "memory.events", "oom_kill") >= 1);
    assert!(cg_key(&fx, "memory.events", "max") >= 1);
    assert!(
        wait_for(Duration::from_secs(10), || printed("\"type\":\"oom\"")),
        "`events` reported no oom: {}",
        events.0.as_ref().unwrap().stdout_so_far()
    );
    // The shell survives its child's OOM kill: the container still runs.
    assert_eq!(fx.rt.status(&fx.id), "running");
}

/// A background runtime command (`events`), killed when the test ends, also on failure.
struct Background(Option<Running>);

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut running) = self.0.take() {
            let _ = running.child.kill();
            let _ = running.child.wait();
        }
    }
}

#[test]
fn swap_max_lets_a_container_exceed_memory_max_through_swap() {
    if cgroup::skip_unless_v2() || !has_swap() {
        return;
    }
    // `tail` holds 24 MiB until its input ends (in 100 s): 8+ MiB of it must go to swap.
    let script = "{ head -c 25165824 /dev/zero; sleep 100; } | tail";
    let mut fx = Fixture::new("v2swap", &["sh", "-c", script]);
    fx.bundle
        .set_resource("memory", json!({"limit": 16 * MIB, "swap": 64 * MIB}));
    fx.run_detached();
    assert_eq!(cg_read(&fx, "memory.swap.max"), (48 * MIB).to_string());
    let swapped = wait_for(Duration::from_secs(30), || {
        std::fs::read_to_string(cg_dir(&fx).join("memory.swap.current"))
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|v| v >= 8 * MIB)
    });
    assert!(
        swapped,
        "memory.swap.current {} (memory.current {})",
        cg_read(&fx, "memory.swap.current"),
        cg_read(&fx, "memory.current")
    );
    assert!(cg_read(&fx, "memory.current").parse::<u64>().unwrap() <= 16 * MIB);
    assert_eq!(cg_key(&fx, "memory.events", "oom_kill"), 0);
    assert_eq!(fx.rt.status(&fx.id), "running");
}

#[test]
fn pids_max_makes_fork_fail_and_is_counted() {
    if cgroup::skip_unless_v2() {
        return;
    }
    let mut fx = Fixture::new("v2pids", &["sleep", "100"]);
    fx.bundle.set_resource("pids", json!({"limit": 8}));
    fx.run_detached();
    assert_eq!(cg_read(&fx, "pids.max"), "8");
    // The shell dies when a fork fails; its children stay until the container goes.
    let forks = "i=0; while [ $i -lt 20 ]; do sleep 100 & i=$((i+1)); done";
    let out = fx.exec_in(&[], &["sh", "-c", forks]).failed();
    assert!(out.stderr.contains("fork"), "{out}");
    let current: u64 = cg_read(&fx, "pids.current").parse().unwrap();
    assert!((2..=8).contains(&current), "pids.current {current}");
    assert!(
        cg_key(&fx, "pids.events", "max") >= 1,
        "no fork was refused: pids.events {}",
        cg_read(&fx, "pids.events")
    );
}

#[test]
fn cpu_max_weight_and_burst_are_written_and_throttle() {
    if cgroup::skip_unless_v2() {
        return;
    }
    let mut fx = Fixture::new("v2cpu", &["sh", "-c", "while :; do :; done"]);
    fx.bundle.set_resource(
        "cpu",
        json!({"quota": 10000, "period": 100000, "shares": 1024, "burst": 5000}),
    );
    fx.run_detached();
    assert_eq!(cg_read(&fx, "cpu.max"), "10000 100000");
    // runc's conversion: 1 + (1024 - 2) * 9999 / 262142.
    assert_eq!(cg_read(&fx, "cpu.weight"), "39");
    assert_eq!(cg_read(&fx, "cpu.max.burst"), "5000");
    // A busy loop at 10% of a CPU is throttled within a few periods.
    let throttled = wait_for(Duration::from_secs(10), || {
        keyed(&cg_read(&fx, "cpu.stat"), "nr_throttled").unwrap_or(0) > 0
    });
    assert!(throttled, "never throttled: {}", cg_read(&fx, "cpu.stat"));
}

#[test]
fn cpuset_pins_the_container_to_its_cpus() {
    if cgroup::skip_unless_v2() {
        return;
    }
    let cpu = cgroup::last_online_cpu().to_string();
    let mut fx = Fixture::new("v2cpuset", &["sleep", "100"]);
    fx.bundle
        .set_resource("cpu", json!({"cpus": cpu, "mems": "0"}));
    fx.run_detached();
    assert_eq!(cg_read(&fx, "cpuset.cpus"), cpu);
    assert_eq!(cg_read(&fx, "cpuset.cpus.effective"), cpu);
    assert_eq!(cg_read(&fx, "cpuset.mems"), "0");
    let inside = fx
        .exec_in(&[], &["grep", "Cpus_allowed_list", "/proc/self/status"])
        .ok();
    assert_eq!(
        inside.stdout.split_whitespace().nth(1),
        Some(cpu.as_str()),
        "{inside}"
    );
}

#[test]
fn unified_resources_are_written_verbatim_and_last() {
    if cgroup::skip_unless_v2() {
        return;
    }
    let mut fx = Fixture::new("v2unified", &["sleep", "100"]);
    fx.bundle.set_resource("cpu", json!({"shares": 1024}));
    fx.bundle.set_resource("pids", json!({"limit": 50}));
    fx.bundle.set_resource(
        "unified",
        json!({"memory.high": "41943040", "pids.max": "9", "cpu.weight": "77"}),
    );
    fx.run_detached();
    assert_eq!(cg_read(&fx, "memory.high"), "41943040");
    // After the converted values: unified wins.
    assert_eq!(cg_read(&fx, "pids.max"), "9");
    assert_eq!(cg_read(&fx, "cpu.weight"), "77");
}

#[test]
fn unified_key_the_kernel_lacks_fails_create_in_one_line() {
    if cgroup::skip_unless_v2() {
        return;
    }
    let mut fx = Fixture::new("v2badunified", &["true"]);
    fx.bundle
        .set_resource("unified", json!({"memory.no_such_file": "1"}));
    let out = fx.create().failed();
    let err = out.stderr.trim();
    assert!(err.contains("memory.no_such_file"), "{out}");
    assert_eq!(err.lines().count(), 1, "{out}");
    assert!(fx.rt.state(&fx.id).is_none());
}

#[test]
fn update_rewrites_the_v2_files() {
    if cgroup::skip_unless_v2() {
        return;
    }
    let mut fx = Fixture::new("v2update", &["sleep", "100"]);
    fx.bundle
        .set_resource("memory", json!({"limit": 64 * MIB, "swap": 64 * MIB}));
    fx.run_detached();
    let cpu = cgroup::last_online_cpu().to_string();
    let args = [
        "update",
        "--memory",
        "96M",
        "--memory-swap",
        "128M",
        "--pids-limit",
        "33",
        "--cpu-quota",
        "40000",
        "--cpu-period",
        "50000",
        "--cpu-share",
        "2048",
        "--cpuset-cpus",
        &cpu,
        &fx.id,
    ];
    fx.rt.exec(&args).ok();
    assert_eq!(cg_read(&fx, "memory.max"), (96 * MIB).to_string());
    assert_eq!(cg_read(&fx, "memory.swap.max"), (32 * MIB).to_string());
    assert_eq!(cg_read(&fx, "pids.max"), "33");
    assert_eq!(cg_read(&fx, "cpu.max"), "40000 50000");
    // 1 + (2048 - 2) * 9999 / 262142
    assert_eq!(cg_read(&fx, "cpu.weight"), "79");
    assert_eq!(cg_read(&fx, "cpuset.cpus"), cpu);
}

#[test]
fn events_stats_read_back_the_v2_files() {
    if cgroup::skip_unless_v2() {
        return;
    }
    let script = "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; sleep 100";
    let mut fx = Fixture::new("v2stats", &["sh", "-c", script]);
    fx.bundle
        .set_resource("memory", json!({"limit": 64 * MIB, "swap": 96 * MIB}));
    fx.bundle.set_resource("pids", json!({"limit": 20}));
    fx.run_detached();
    let out = fx.rt.exec(&["events", "--stats", &fx.id]).ok();
    let ev = out.json();
    let data = &ev["data"];
    assert_eq!(ev["type"], "stats", "{out}");
    assert_eq!(data["memory"]["usage"]["limit"].as_u64(), Some(64 * MIB));
    assert_eq!(data["memory"]["swap"]["limit"].as_u64(), Some(32 * MIB));
    let usage = data["memory"]["usage"]["usage"].as_u64().unwrap_or(0);
    assert!(usage > 0 && usage <= 64 * MIB, "{out}");
    assert_eq!(data["pids"]["limit"].as_u64(), Some(20));
    assert!(data["pids"]["current"].as_u64().unwrap_or(0) >= 1, "{out}");
    // cpu.stat counts microseconds; the stats nanoseconds.
    let total = data["cpu"]["usage"]["total"].as_u64().unwrap_or(0);
    assert!(total > 0, "{out}");
    assert!(
        total <= cg_key(&fx, "cpu.stat", "usage_usec") * 1000,
        "{out}"
    );
}
