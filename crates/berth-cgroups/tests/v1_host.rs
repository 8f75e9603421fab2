//! Real cgroup v1 tests on this host. They need root (without it they fail, unless
//! `BERTH_ALLOW_SKIP=1`) and a v1 (or hybrid) hierarchy (on a v2 host they skip with a note). Every test owns its cgroup and children through `Fixture`, whose Drop
//! kills the children and destroys the cgroup even when an assertion fails.

mod common;

use std::path::Path;
use std::process::{Child, Command};

use berth_cgroups::{Cgroup, Hierarchy};
use oci_spec::runtime::LinuxResources;

struct Fixture {
    cg: Cgroup,
    children: Vec<Child>,
}

impl Fixture {
    /// `None` (with a note) when not root or not on cgroup v1.
    fn new(test: &str, sub: &str) -> Option<Fixture> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            // A skip in CI (which runs as root) would hide a bug: only an explicit wish skips.
            assert!(
                std::env::var_os("BERTH_ALLOW_SKIP").is_some_and(|v| v == "1"),
                "{test} needs root (BERTH_ALLOW_SKIP=1 skips it instead)"
            );
            eprintln!("note: {test} skipped: needs root");
            return None;
        }
        let h = Hierarchy::detect().expect("detect hierarchy");
        if h.is_v2() {
            eprintln!("note: {test} skipped: host is cgroup v2");
            return None;
        }
        let path = format!("/{}{sub}", common::unique("berth-test"));
        let cg = Cgroup::new(&h, &path).unwrap();
        let f = Fixture {
            cg,
            children: Vec::new(),
        };
        f.cg.create().unwrap();
        Some(f)
    }

    /// Starts `sleep` and moves it into the cgroup.
    fn spawn_member(&mut self) -> i32 {
        let child = Command::new("sleep")
            .arg("1000")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        self.children.push(child);
        self.cg.add_process(pid).unwrap();
        pid
    }

    fn dir(&self, name: &str) -> std::path::PathBuf {
        self.cg
            .v1_mounts()
            .into_iter()
            .find(|(n, _)| n.split(',').any(|c| c == name))
            .unwrap_or_else(|| panic!("{name} not mounted"))
            .1
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.cg.thaw();
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.cg.destroy().expect("destroy cgroup");
        for p in self.cg.paths() {
            assert!(!p.exists(), "leaked cgroup {}", p.display());
        }
    }
}

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn limits_land_in_v1_files_and_kernel_memory_is_ignored() {
    let Some(f) = Fixture::new("limits_land_in_v1_files", "") else {
        return;
    };
    f.cg.apply(&resources(
        r#"{"memory": {"limit": 67108864, "swap": 134217728, "kernel": 1048576, "kernelTCP": 1048576, "swappiness": 0},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000},
            "pids": {"limit": 50}}"#,
    ))
    .unwrap();
    let mem = f.dir("memory");
    assert_eq!(read(&mem, "memory.limit_in_bytes"), "67108864");
    assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), "134217728");
    assert_eq!(read(&f.dir("cpu"), "cpu.cfs_quota_us"), "50000");
    assert_eq!(read(&f.dir("cpu"), "cpu.shares"), "512");
    assert_eq!(read(&f.dir("pids"), "pids.max"), "50");

    // Raising the limit above the current memsw needs memsw written first: the fallback order.
    f.cg.apply(&resources(
        r#"{"memory": {"limit": 268435456, "swap": 536870912}}"#,
    ))
    .unwrap();
    assert_eq!(read(&mem, "memory.limit_in_bytes"), "268435456");
    assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), "536870912");
    // And lowering both again.
    f.cg.apply(&resources(
        r#"{"memory": {"limit": 33554432, "swap": 33554432}, "pids": {"limit": 0}}"#,
    ))
    .unwrap();
    assert_eq!(read(&mem, "memory.limit_in_bytes"), "33554432");
    assert_eq!(read(&f.dir("pids"), "pids.max"), "max");
    assert_eq!(f.cg.stats().unwrap().memory.limit, 33554432);
}

#[test]
fn bad_value_error_names_the_file_and_cause() {
    let Some(f) = Fixture::new("bad_value_error", "") else {
        return;
    };
    let e =
        f.cg.apply(&resources(r#"{"cpu": {"cpus": "not-a-cpu"}}"#))
            .unwrap_err()
            .to_string();
    assert_eq!(
        e,
        r#"cgroup cpuset: write cpuset.cpus = "not-a-cpu": Invalid argument"#
    );
    let e =
        f.cg.apply(&resources(
            r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}"#,
        ))
        .unwrap_err();
    assert!(e.to_string().contains("hugetlb"), "{e}");
    let e =
        f.cg.apply(&resources(r#"{"unified": {"memory.high": "1"}}"#))
            .unwrap_err();
    assert!(e
        .to_string()
        .contains("unified resources require cgroup v2"));
    // blkio weight goes to CFQ's blkio.weight or BFQ's blkio.bfq.weight, else fails by name.
    let blkio = f.dir("blkio");
    let res = f.cg.apply(&resources(r#"{"blockIO": {"weight": 500}}"#));
    if blkio.join("blkio.weight").exists() {
        assert_eq!(read(&blkio, "blkio.weight"), "500");
    } else if blkio.join("blkio.bfq.weight").exists() {
        res.unwrap();
        assert!(read(&blkio, "blkio.bfq.weight").contains("500"));
    } else {
        assert!(res.unwrap_err().to_string().contains("blkio.weight"));
    }
    if !Path::new("/sys/fs/cgroup/net_cls").exists() {
        let e =
            f.cg.apply(&resources(r#"{"network": {"classID": 1}}"#))
                .unwrap_err();
        assert!(e.to_string().contains("net_cls"), "{e}");
    }
    // Nothing asked for, nothing needed: an empty blockIO is fine.
    f.cg.apply(&resources(r#"{"blockIO": {}}"#)).unwrap();
}

#[test]
fn nested_cpuset_inherits_parent_so_a_process_can_join() {
    let Some(mut f) = Fixture::new("nested_cpuset_inherits_parent", "/inner") else {
        return;
    };
    let cpuset = f.dir("cpuset");
    let root_cpus = read(cpuset.parent().unwrap().parent().unwrap(), "cpuset.cpus");
    assert_eq!(read(&cpuset, "cpuset.cpus"), root_cpus);
    assert!(!read(&cpuset, "cpuset.mems").is_empty());
    let pid = f.spawn_member();
    assert_eq!(f.cg.procs().unwrap(), vec![pid]);
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        own.contains(&format!("cpuset:/{}", f.cg.path().display())),
        "{own}"
    );
    let s = f.cg.stats().unwrap();
    assert_eq!(s.pids.current, 1);
}

#[test]
fn destroy_removes_parents_it_created() {
    let Some(f) = Fixture::new("destroy_removes_parents", "/a/b") else {
        return;
    };
    let parents: Vec<_> =
        f.cg.paths()
            .iter()
            .map(|p| p.parent().unwrap().to_path_buf())
            .collect();
    drop(f);
    for p in parents {
        assert!(!p.exists(), "parent {} left behind", p.display());
    }
}

fn proc_state(pid: i32) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with("State:"))
        .unwrap_or("")
        .to_string()
}

#[test]
fn freeze_and_thaw_a_real_process() {
    let Some(mut f) = Fixture::new("freeze_and_thaw", "") else {
        return;
    };
    let pid = f.spawn_member();
    f.cg.freeze().unwrap();
    assert!(f.cg.is_frozen().unwrap());
    assert_eq!(read(&f.dir("freezer"), "freezer.state"), "FROZEN");
    eprintln!("frozen: {}", proc_state(pid));
    f.cg.thaw().unwrap();
    assert!(!f.cg.is_frozen().unwrap());
    assert!(
        proc_state(pid).contains("S (sleeping)"),
        "{}",
        proc_state(pid)
    );
}

#[test]
fn kill_all_signals_every_process() {
    let Some(mut f) = Fixture::new("kill_all", "") else {
        return;
    };
    f.spawn_member();
    f.spawn_member();
    assert_eq!(f.cg.procs().unwrap().len(), 2);
    f.cg.kill_all(libc::SIGKILL).unwrap();
    for c in &mut f.children {
        let st = c.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&st),
            Some(libc::SIGKILL)
        );
    }
    f.children.clear();
    assert!(f.cg.procs().unwrap().is_empty());
    assert!(!f.cg.is_frozen().unwrap(), "kill_all thaws afterwards");
    assert_eq!(f.cg.oom_kill_count().unwrap(), 0);
}

#[test]
fn device_rules_replace_the_default_allow_all() {
    let Some(f) = Fixture::new("device_rules", "") else {
        return;
    };
    f.cg.apply(&resources(
        r#"{"devices": [{"allow": false, "access": "rwm"},
                        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                        {"allow": true, "type": "c", "major": 136, "access": "rw"}]}"#,
    ))
    .unwrap();
    let list = read(&f.dir("devices"), "devices.list");
    let mut lines: Vec<&str> = list.lines().collect();
    lines.sort();
    assert_eq!(lines, ["c 136:* rw", "c 1:3 rwm"]);
}

#[test]
fn v1_mounts_name_each_hierarchy_directory() {
    let Some(f) = Fixture::new("v1_mounts", "") else {
        return;
    };
    let names: Vec<String> = f.cg.v1_mounts().into_iter().map(|(n, _)| n).collect();
    for want in ["cpu", "cpuacct", "memory", "freezer", "systemd"] {
        assert!(
            names.iter().any(|n| n.split(',').any(|c| c == want)),
            "{want} in {names:?}"
        );
    }
    assert_eq!(names.len(), f.cg.paths().len());
    let detected = Hierarchy::detect().unwrap();
    assert!(!detected.is_v2(), "hybrid host must be treated as v1");
}
