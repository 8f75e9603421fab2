//! Docker's cgroup and block I/O `run` flags, each proven from inside the container or from the
//! kernel's cgroup files (this host is cgroup v1): `--cgroup-parent`, `--cgroupns`,
//! `--cpu-rt-period/--cpu-rt-runtime`, `--device-{read,write}-{bps,iops}`,
//! `--blkio-weight-device`, `--memory-swappiness`, `--annotation`; what `inspect` shows of
//! them (Docker's HostConfig keys) and the refusals, each by name, before anything is made.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;

use fixture::{Sandbox, IMAGE};
use std::path::{Path, PathBuf};

/// A `--cgroup-parent` of this test's own, removed from every v1 hierarchy (deepest first)
/// when the guard goes, whatever the test did.
struct ParentGuard {
    rel: String,
}

impl ParentGuard {
    fn new(tag: &str) -> ParentGuard {
        ParentGuard {
            rel: format!("berth-test-{tag}-{}/inner", std::process::id()),
        }
    }

    fn top(&self) -> &str {
        self.rel.split('/').next().unwrap_or_default()
    }

    /// The directories named by the parent in every hierarchy that holds them.
    fn dirs(&self) -> Vec<PathBuf> {
        controllers()
            .into_iter()
            .flat_map(|c| [c.join(&self.rel), c.join(self.top())])
            .filter(|d| d.is_dir())
            .collect()
    }
}

impl Drop for ParentGuard {
    fn drop(&mut self) {
        for d in self.dirs() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Every mounted v1 hierarchy under /sys/fs/cgroup (co-mounted ones through their symlinks).
fn controllers() -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("cgroup.procs").exists() && !p.is_symlink())
        .collect()
}

fn read(p: impl AsRef<Path>) -> String {
    let p = p.as_ref();
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn cgroup_parent_holds_the_container_and_escapes_are_refused() {
    let sb = Sandbox::new();
    let parent = ParentGuard::new("parent");
    let flag = format!("/{}", parent.rel);
    let id = sb.run_d(&["--cgroup-parent", &flag, IMAGE, "sleep", "60"]);
    let dir = Path::new("/sys/fs/cgroup/memory")
        .join(&parent.rel)
        .join(format!("berth-{id}"));
    let pid = sb.inspect(&id)["State"]["Pid"].as_i64().unwrap();
    let procs = read(dir.join("cgroup.procs"));
    assert!(procs.lines().any(|l| l == pid.to_string()), "{procs}");
    // Its own cgroup namespace (berth's default): it sees its cgroup as the root.
    let own = sb.ok(&["exec", &id, "cat", "/proc/self/cgroup"]);
    assert!(own.lines().any(|l| l.ends_with(":memory:/")), "{own}");
    assert_eq!(sb.inspect(&id)["HostConfig"]["CgroupParent"], flag.as_str());
    sb.ok(&["rm", "-f", &id]);
    assert!(!dir.exists(), "the container's cgroup goes with it");
    // A parent that would climb above the root is refused by name, before anything is made.
    for escape in ["../escape", "/a/../../b"] {
        let (code, _, err) = sb.code(&["run", "--rm", "--cgroup-parent", escape, IMAGE, "true"]);
        assert_eq!(code, 125, "{err}");
        assert!(
            err.contains("--cgroup-parent") && err.contains(escape),
            "{err}"
        );
    }
    assert!(sb.container_dirs().is_empty());
    sb.remove_all_and_assert_clean();
    drop(parent);
}

#[test]
fn cgroupns_host_shares_the_hosts_cgroup_namespace() {
    let sb = Sandbox::new();
    let host = std::fs::read_link("/proc/self/ns/cgroup").unwrap();
    let script = "readlink /proc/self/ns/cgroup; grep ':memory:' /proc/self/cgroup";
    let shared = sb.sh_ok("--cgroupns host", script);
    let lines: Vec<&str> = shared.lines().collect();
    assert_eq!(lines[0], host.display().to_string());
    assert!(lines[1].contains("/berth-"), "the host's view: {shared}");
    let private = sb.sh_ok("--cgroupns private", script);
    assert_ne!(private.lines().next(), Some(lines[0]));
    assert!(private.lines().nth(1).unwrap().ends_with(":memory:/"));
    sb.cli_ok("create --name hostns --cgroupns host bb true");
    assert_eq!(sb.inspect("hostns")["HostConfig"]["CgroupnsMode"], "host");
    sb.cli_ok("create --name own bb true");
    assert_eq!(sb.inspect("own")["HostConfig"]["CgroupnsMode"], "private");
    let (code, _, err) = sb.cli("run --rm --cgroupns container:own bb true");
    assert_eq!(code, 125);
    assert!(err.contains("--cgroupns"), "{err}");
    sb.remove_all_and_assert_clean();
}

#[test]
fn realtime_budget_reaches_the_cpu_rt_files() {
    let sb = Sandbox::new();
    let out = sb.sh_ok(
        "--cpu-rt-period 100000 --cpu-rt-runtime 5000",
        "cat /sys/fs/cgroup/cpu/cpu.rt_period_us /sys/fs/cgroup/cpu/cpu.rt_runtime_us",
    );
    assert_eq!(out, "100000\n5000\n");
    sb.cli_ok("create --name rt --cpu-rt-period 100000 --cpu-rt-runtime 5000 bb true");
    let hc = &sb.inspect("rt")["HostConfig"];
    assert_eq!(
        (
            hc["CpuRealtimePeriod"].as_i64(),
            hc["CpuRealtimeRuntime"].as_i64()
        ),
        (Some(100_000), Some(5000))
    );
    let (code, _, err) = sb.cli("run --rm --cpu-rt-period 1000 --cpu-rt-runtime 2000 bb true");
    assert_eq!(code, 125);
    assert!(
        err.contains("cannot be higher than --cpu-rt-period"),
        "{err}"
    );
    // A parent without a real-time budget of its own cannot lend one: refused before the start.
    let parent = ParentGuard::new("rt");
    let flag = format!("/{}", parent.rel);
    let (code, _, err) = sb.code(&[
        "run",
        "--rm",
        "--cgroup-parent",
        &flag,
        "--cpu-rt-runtime",
        "1000",
        IMAGE,
        "true",
    ]);
    assert_eq!(code, 125);
    assert!(
        err.contains("real-time budget") && err.contains(&flag),
        "{err}"
    );
    sb.remove_all_and_assert_clean();
    assert!(
        parent.dirs().is_empty(),
        "nothing was made: {:?}",
        parent.dirs()
    );
}

#[test]
fn device_throttles_reach_the_blkio_files_by_major_minor() {
    use std::os::unix::fs::MetadataExt;
    let sb = Sandbox::new();
    // A loop device node: a block device of its own kind, never a real disk.
    let dev = "/dev/loop0";
    let rdev = std::fs::metadata(dev).expect("loop0 exists").rdev();
    let mm = format!("{}:{}", libc::major(rdev), libc::minor(rdev));
    let flags = format!(
        "--device-read-bps {dev}:1mb --device-write-bps {dev}:2097152 \
         --device-read-iops {dev}:100 --device-write-iops {dev}:50"
    );
    let out = sb.sh_ok(
        &flags,
        "cd /sys/fs/cgroup/blkio; for f in read_bps write_bps read_iops write_iops; do \
         cat blkio.throttle.${f}_device; done",
    );
    assert_eq!(
        out,
        format!("{mm} 1048576\n{mm} 2097152\n{mm} 100\n{mm} 50\n")
    );
    let created = sb.ok(&[
        "create",
        "--name",
        "io",
        "--device-read-bps",
        &format!("{dev}:1mb"),
        "--device-write-iops",
        &format!("{dev}:50"),
        "--blkio-weight-device",
        &format!("{dev}:300"),
        IMAGE,
        "sh",
        "-c",
        "cat /sys/fs/cgroup/blkio/blkio.bfq.weight_device 2>/dev/null || \
         cat /sys/fs/cgroup/blkio/blkio.weight_device",
    ]);
    assert!(!created.trim().is_empty());
    let hc = &sb.inspect("io")["HostConfig"];
    assert_eq!(
        hc["BlkioDeviceReadBps"],
        serde_json::json!([{"Path": dev, "Rate": 1048576}])
    );
    assert_eq!(
        hc["BlkioDeviceWriteIOps"],
        serde_json::json!([{"Path": dev, "Rate": 50}])
    );
    assert_eq!(
        hc["BlkioWeightDevice"],
        serde_json::json!([{"Path": dev, "Weight": 300}])
    );
    // BFQ shows its weight files in a container's cgroup (never in the root); without a
    // CFQ/BFQ scheduler the start says which knob is missing.
    let (code, out, err) = sb.code(&["start", "-a", "io"]);
    if code == 0 {
        assert!(out.lines().any(|l| l == format!("{mm} 300")), "{out}");
    } else {
        assert!(err.contains("weight_device"), "{err}");
    }
    for (args, want) in [
        (
            vec!["--device-read-bps", "/dev/null:1mb"],
            "--device-read-bps /dev/null: not a block device",
        ),
        (
            vec!["--device-write-bps", "/dev/loop0:lots"],
            "invalid --device-write-bps \"/dev/loop0:lots\"",
        ),
        (
            vec!["--device-read-iops", "/dev/nosuchdisk:5"],
            "--device-read-iops /dev/nosuchdisk: ",
        ),
        (
            vec!["--blkio-weight-device", "/dev/loop0:5"],
            "invalid --blkio-weight-device \"/dev/loop0:5\"",
        ),
        (
            vec!["--device-write-iops", "loop0:5"],
            "expected /dev/PATH:VALUE",
        ),
    ] {
        let mut all = vec!["run", "--rm"];
        all.extend(args);
        all.extend([IMAGE, "true"]);
        let (code, _, err) = sb.code(&all);
        assert_eq!(code, 125, "{all:?}: {err}");
        assert!(err.contains(want), "{all:?}: {err}");
    }
    sb.remove_all_and_assert_clean();
}

#[test]
fn memory_swappiness_and_annotations_are_set_and_checked() {
    let sb = Sandbox::new();
    let out = sb.sh_ok(
        "--memory-swappiness 7",
        "cat /sys/fs/cgroup/memory/memory.swappiness",
    );
    assert_eq!(out, "7\n");
    for bad in ["101", "-2"] {
        let (code, _, err) = sb.code(&["run", "--rm", "--memory-swappiness", bad, IMAGE, "true"]);
        assert_eq!(code, 125);
        assert!(
            err.contains(&format!("invalid --memory-swappiness {bad}")),
            "{err}"
        );
    }
    let id = sb.run_d(&[
        "--annotation",
        "org.example.team=blue",
        "--annotation",
        "empty=",
        "--memory-swappiness",
        "0",
        IMAGE,
        "sleep",
        "60",
    ]);
    // The runtime got them in the spec it ran the container from.
    let dir = sb.log_file(&id).parent().unwrap().to_path_buf();
    let spec: serde_json::Value = serde_json::from_str(&read(dir.join("config.json"))).unwrap();
    assert_eq!(spec["annotations"]["org.example.team"], "blue");
    assert_eq!(spec["annotations"]["empty"], "");
    let hc = &sb.inspect(&id)["HostConfig"];
    assert_eq!(
        hc["Annotations"],
        serde_json::json!({"empty": "", "org.example.team": "blue"})
    );
    assert_eq!(hc["MemorySwappiness"], 0);
    assert!(sb.inspect(&id)["HostConfig"].get("Annotations").is_some());
    for (bad, want) in [
        ("novalue", "expected KEY=VALUE"),
        ("org.berth.init=true", "berth's own"),
    ] {
        let (code, _, err) = sb.code(&["run", "--rm", "--annotation", bad, IMAGE, "true"]);
        assert_eq!(code, 125);
        assert!(err.contains(want) && err.contains("--annotation"), "{err}");
    }
    sb.remove_all_and_assert_clean();
}
